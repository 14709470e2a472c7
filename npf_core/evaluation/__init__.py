"""Evaluate mode: the metric registry of the caller (registry) and the engine side of
metrics (runner: per worker in the copies, aggregated in the supervisor)."""
