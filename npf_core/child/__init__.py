"""Code that runs in a model copy or the zygote: the benchmarker, its worker threads, the
zygote that forks copies, and process plumbing (dying with the parent, quiet signals).
Never imports the supervisor, anyio or rich."""
