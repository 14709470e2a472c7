"""Tests of the ray launcher (nox -s ray)."""
