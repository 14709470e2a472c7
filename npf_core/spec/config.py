"""A configuration of the sweep, as data: what the plan makes, what reports and
events carry, what a results file keeps."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["RunConfig"]


class RunConfig(msgspec.Struct, kw_only=True, frozen=True):
    """One configuration of the sweep: everything that varies between runs."""

    config_id: str
    model_name: str
    framework: str
    model_kind: str
    model_ref: str
    model_filename: str
    input_idx: int
    batch_size: int
    n_models: int
    workers_per_model: int
    pipeline_size: int
    start_method: str
    device_type: str
    performance_level: Any = None
    #: the shapes and dtypes of one example (``float32[8x128]``): with the sweep's
    #: parameters, what identifies the configuration across runs (results/identity.py)
    input_signature: str = ""
