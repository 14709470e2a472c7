"""Launcher plugins: where the configurations of a sweep run."""
