"""What the user writes, as data: the spec Structs and their decoding (schema), the
evaluate block, overrides from the API and the CLI, the starter spec of ``npf init``, a
configuration of the sweep (config). Imports nothing of the engine but errors."""
