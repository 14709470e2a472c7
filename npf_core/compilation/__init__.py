"""Compiling model variants: the compiler (caller side), one compile worker per variant (a
fresh interpreter), the model index."""
