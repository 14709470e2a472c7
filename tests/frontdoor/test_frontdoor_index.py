"""Model indexes as NeuronPerf wrote them: entries without input_idx, failed entries."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from npf_core.errors import SpecError
from npf_core.plugin.hookspecs import Framework, Registry, hookimpl
from npf_core.plugin.manager import Plugins, get_plugins
from npf_core.spec.schema import decode_spec
from npf_core.supervisor.plan import make_plan


class AnyFile(Framework):
    """Accepts any model file (the plan never loads it)."""

    def check(self, kind: str, ref: str, spec: Any) -> None:
        pass


class AnyFilePlugin:
    @hookimpl
    def npf_register_frameworks(self, registry: Registry[Framework]) -> None:
        registry.add("anyfile", AnyFile)


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return get_plugins(extra=[AnyFilePlugin()])


def _index(tmp_path: Path, configs: list[dict[str, Any]]) -> str:
    for c in configs:
        (tmp_path / c["filename"]).write_bytes(b"model")
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"version": "1.8.0.0+abc", "model_configs": configs}))
    return str(path)


def test_entries_without_input_idx_run_on_the_input_with_their_batch_size(tmp_path: Path, plugins: Plugins) -> None:
    np.save(tmp_path / "b2.npy", np.zeros((2, 3), dtype=np.float32))
    index = _index(tmp_path, [
        {"filename": "m_b4.pt", "batch_size": 4, "pipeline_size": 1, "compile_s": 1.0, "status": "finished"},
        {"filename": "m_b1.pt", "batch_size": 1, "pipeline_size": 1, "compile_s": 1.0, "status": "finished"},
        {"filename": "m_b2.pt", "batch_size": 2, "pipeline_size": 1, "compile_s": 1.0, "status": "finished"},
    ])  # fmt: skip
    loaded = decode_spec({
        "model": {"framework": "anyfile", "index": index},
        "inputs": [{"shape": [1, 3]}, {"file": "b2.npy"}, {"shape": [4, 3]}],
        "n_models": [1], "workers_per_model": [1],
    }, tmp_path)  # fmt: skip
    plan = make_plan(loaded, plugins)
    assert sorted((c.batch_size, c.input_idx) for c in plan) == [(1, 0), (2, 1), (4, 2)]


def test_an_entry_whose_batch_size_no_input_has_is_a_clear_error(tmp_path: Path, plugins: Plugins) -> None:
    index = _index(tmp_path, [{"filename": "m_b8.pt", "batch_size": 8, "status": "finished"}])
    loaded = decode_spec({
        "model": {"framework": "anyfile", "index": index},
        "inputs": [{"shape": [1, 3]}, {"shape": [2, 3]}], "n_models": [1], "workers_per_model": [1],
    }, tmp_path)  # fmt: skip
    with pytest.raises(SpecError, match="no input has its batch size 8"):
        make_plan(loaded, plugins)


def test_entries_that_failed_to_compile_are_skipped_with_a_warning(
    tmp_path: Path, plugins: Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    index = _index(tmp_path, [
        {"filename": "ok.pt", "input_idx": 0, "batch_size": 1, "status": "finished"},
        {"filename": "bad.pt", "input_idx": 0, "batch_size": 1, "pipeline_size": 2, "status": "error",
         "error": "neuronx-cc failed"},
    ])  # fmt: skip
    loaded = decode_spec({
        "model": {"framework": "anyfile", "index": index},
        "inputs": [{"shape": [1, 3]}], "n_models": [1], "workers_per_model": [1],
    }, tmp_path)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="npf"):
        plan = make_plan(loaded, plugins)
    logs = [{**r.npf_event, "log_level": r.levelname.lower()} for r in caplog.records if hasattr(r, "npf_event")]
    assert [Path(c.model_ref).name for c in plan] == ["ok.pt"]
    warned = [e for e in logs if e["log_level"] == "warning" and "did not compile" in e["event"]]
    assert len(warned) == 1 and warned[0]["filename"].endswith("bad.pt")
    assert warned[0]["error"] == "neuronx-cc failed"
