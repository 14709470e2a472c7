"""Tokens that stand for Python objects in a decoded spec (the Python API's live
objects: classes, functions, tensors, metrics) until they reach the copies."""

from __future__ import annotations

__all__ = ["OBJECT_PREFIX"]

OBJECT_PREFIX = "<object:"
