"""torch under the zygote start method: copies find torch imported (by the zygote,
once per run) and nothing else inherited; nn.Module instances and tensors given
through the API reach the copies; fork from a caller that used torch is flagged."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch.nn")

import torch  # noqa: E402

import npf_core  # noqa: E402
from npf_plugins.frameworks.torch import TorchFramework  # noqa: E402

pytestmark = pytest.mark.torch

INPUTS = [{"shape": [2, 8], "dtype": "float32"}]
PROBE = '''
import os, sys
from pathlib import Path
FOUND = "torch" in sys.modules  # before this file imports it
PARENT_HAS_TORCH = "libtorch" in Path(f"/proc/{os.getppid()}/maps").read_text()
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)
        line = f"{int(FOUND)} {int(PARENT_HAS_TORCH)} {os.getppid()}"
        Path(os.environ["NPF_PROBE_OUT"], str(os.getpid())).write_text(line)

    def forward(self, x):
        return self.fc(x)
'''


def run(model: dict[str, Any], tmp_path: Path, **overrides: Any) -> list[Any]:
    kw: dict[str, Any] = {"duration_s": 0.3, "reporters": [], "n_models": [1], "workers_per_model": [1]}
    kw.update(overrides)
    return npf_core.benchmark({"model": model, "inputs": INPUTS}, output_dir=tmp_path / "out", **kw)


def test_copies_of_a_zygote_start_with_torch_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch was loaded in the copy's parent, the zygote, before the copy existed:
    one zygote for the run, not this process."""
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE))
    out = tmp_path / "probe-out"
    out.mkdir()
    monkeypatch.setenv("NPF_PROBE_OUT", str(out))
    reports = run({"framework": "torch", "target": f"{tmp_path / 'probe.py'}:Net"}, tmp_path, n_models=[1, 2])
    assert [(r.status, r.start_method) for r in reports] == [("ok", "zygote")] * 2, [r.error for r in reports]
    seen = [[int(x) for x in m.read_text().split()] for m in out.iterdir()]
    assert len(seen) == 2  # copy 0, and copy 1 for n_models 2: each loaded once (reuse_copies)
    assert {(found, parent_has) for found, parent_has, _ in seen} == {(1, 1)}
    parents = {p for _, _, p in seen}
    assert len(parents) == 1 and os.getpid() not in parents


def test_module_instance_and_tensors_travel_to_zygote_copies(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(8, 4)
    big = torch.arange(1 << 20, dtype=torch.float32)  # 4 MiB, sent out of band
    out = tmp_path / "seen.json"

    def setup(copy_index: int, job: Any, model: Any) -> None:
        y = model(torch.ones(1, 8))[0]
        out.write_text(json.dumps({"pid": os.getpid(), "y": y.tolist(), "big": float(big.sum()),
                                   "writable": big.numpy().flags.writeable}))  # fmt: skip

    reports = npf_core.benchmark(
        {"model": {"framework": "torch", "target": net}, "inputs": INPUTS, "setup": setup},
        output_dir=tmp_path / "out", reporters=[], duration_s=0.3, n_models=[1], workers_per_model=[1],
    )  # fmt: skip
    assert [(r.status, r.start_method) for r in reports] == [("ok", "zygote")], [r.error for r in reports]
    seen = json.loads(out.read_text())
    assert seen["pid"] != os.getpid()
    assert seen["y"] == pytest.approx(net(torch.ones(1, 8)).tolist()[0])
    assert seen["big"] == float(big.sum())
    assert seen["writable"] is True  # copy-on-write pages: the copy may change its own


def test_fork_from_a_caller_that_imported_torch_is_flagged(tmp_path: Path) -> None:
    model = {"framework": "torch", "target": "torch.nn:Identity"}
    (forked,) = run(model, tmp_path, start_method="fork")
    (default,) = run(model, tmp_path)
    assert forked.status == default.status == "ok"
    assert any("already imported torch" in n for n in forked.validity_reasons), forked.validity_reasons
    assert not forked.valid
    assert default.start_method == "zygote"
    assert not any("forked" in n for n in default.validity_reasons)


def test_fork_note_names_an_initialised_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    note = TorchFramework({}).fork_note()
    assert note is not None and "initialised CUDA" in note and "'zygote'" in note
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    note = TorchFramework({}).fork_note()
    assert note is not None and "already imported torch" in note
