"""Models of the Ray launcher tests. Importing this file in a benchmarker records
the benchmarker's pid and its parent's (the Ray worker) under ``$NPF_RAY_TEST_DIR``,
named by the configuration, so a test can find and kill the worker mid-run and
check that no benchmarker outlives the run."""

from __future__ import annotations

import os
import time
from pathlib import Path

_dir = os.environ.get("NPF_RAY_TEST_DIR")
if _dir and os.environ.get("NPF_CONFIG_ID"):
    Path(_dir, f"{os.environ['NPF_CONFIG_ID']}.{os.getpid()}.{os.getppid()}").touch()


def _call(*inputs: object) -> object:
    time.sleep(0.002)
    return inputs


def nap() -> object:
    """A model of about 2 ms a call."""
    return _call
