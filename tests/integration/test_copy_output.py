"""What a copy prints (``print()`` in setup_fn, preprocess_fn, the model's forward) is
shown, marked with its copy, and kept in the run folder's copies.log."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import npf_core
from npf_core.results.store import resolve_results
from npf_core.supervisor.copy_output import LOG_NAME, CopyOutput

MODEL = '''
class Talky:
    def __init__(self):
        print("hello from __init__", flush=True)
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        if self.calls == 1:
            print("first call, shape", tuple(x.shape))
        return x
'''


@pytest.mark.parametrize("method", ["zygote", "fresh", "fork"])
def test_prints_of_a_copy_are_shown_and_kept(tmp_path: Path, capfd: pytest.CaptureFixture[str], method: str) -> None:
    (tmp_path / "talky.py").write_text(MODEL)
    spec = {
        "model": {"framework": "python", "target": f"{tmp_path / 'talky.py'}:Talky"},
        "inputs": [{"shape": [1, 3]}],
        "n_models": [2], "workers_per_model": [1], "duration_s": 0.3, "start_method": method,
        "device": {"type": "cpu", "options": {"oversubscribe": True}},
        "output": {"dir": str(tmp_path / "out"), "reporters": ["json"]},
    }  # fmt: skip
    reports = npf_core.benchmark(spec)
    assert [r.status for r in reports] == ["ok"]
    out = capfd.readouterr().out
    for i in (0, 1):
        assert f"[copy {i}] hello from __init__" in out, out
        assert f"[copy {i}] first call, shape (1, 3)" in out, out
    log = (resolve_results(tmp_path / "out").parent / LOG_NAME).read_text()
    config = reports[0].config_id
    assert f"{config} copy 0 | hello from __init__" in log and f"{config} copy 1 | first call, shape (1, 3)" in log


def test_neuronperf_setup_fn_print_is_shown(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The usual way NeuronPerf users debug: print() in setup_fn and preprocess_fn."""
    monkeypatch.chdir(tmp_path)

    def setup(i: int, config: dict[str, Any], model: Any) -> None:
        print(f"setting up copy {i} for batch {config['batch_size']}")

    def pre(x: Any) -> Any:
        if not getattr(pre, "done", False):
            pre.done = True  # type: ignore[attr-defined]
            print("preprocessing", x.shape)
        return x

    reports = npf_core.cpu.benchmark(npf_core.DummyModel, [np.array([[1, 2]])], n_models=1, workers_per_model=1,
                                     duration=0.3, setup_fn=setup, preprocess_fn=pre, verbosity=0)  # fmt: skip
    assert reports[0]["status"] == "finished"
    out = capfd.readouterr().out
    assert "[copy 0] setting up copy 0 for batch 1" in out and "[copy 0] preprocessing (1, 2)" in out, out


def test_output_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = io.StringIO()
    monkeypatch.setattr(sys, "stdout", shown)
    out = CopyOutput(tmp_path, show_lines=3, keep_bytes=200)
    out.feed("c1", 0, b"".join(b"line %d\n" % i for i in range(10)) + b"partial")
    out.feed("c1", 1, b"other\r\n")
    out.end("c1", 0)
    out.close()
    lines = shown.getvalue().splitlines()
    assert lines[:3] == ["[copy 0] line 0", "[copy 0] line 1", "[copy 0] line 2"]
    assert lines[3].startswith("[copy 0] ... more output of this copy is not shown; the rest is in ")
    assert lines[4:] == ["[copy 1] other"]
    kept = (tmp_path / LOG_NAME).read_text()
    assert len(kept) <= 200 + 60 and kept.startswith("c1 copy 0 | line 0\n") and "copies.log stops here" in kept
