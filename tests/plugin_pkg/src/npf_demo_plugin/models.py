"""Functions the ``demo`` framework can benchmark."""

from __future__ import annotations

import time
from typing import Any


def checksum(*arrays: Any) -> float:
    """Sum of every input, after about a millisecond of pretend work."""
    time.sleep(0.001)
    return float(sum(float(a.sum()) for a in arrays))
