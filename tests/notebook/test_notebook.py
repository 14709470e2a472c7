"""NeuronPerf's guide in a Jupyter notebook (tests/notebook/neuronperf_guide.ipynb),
executed in a real kernel with nbclient: npf.cpu.benchmark, npf.torch.compile and
npf.torch.benchmark on the Neuron fakes, return_timers, npf.torch.evaluate, a copy's
print() shown in the cell, and npf's own benchmark / await abenchmark in cells
(a kernel runs its cells inside an event loop)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
pytest.importorskip("torch.nn")

pytestmark = pytest.mark.notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "neuronperf_guide.ipynb"
FAKES = HERE.parent / "fakes"


def _outputs(cell: dict, stream: str = "stdout") -> str:
    text = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == stream:
            text.append(out["text"])
        elif "data" in out:
            text.append(out["data"].get("text/plain", ""))
    return "".join(text)


def test_the_guide_runs_in_a_notebook_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel (the caller) and its copies see the fake Neuron boundary, as a Neuron host
    for name in ("NEURON_RT_VISIBLE_CORES", "NEURONCORE_GROUP_SIZES", "NEURON_LOGICAL_NC_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKES), *([old] if old else [])]))
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKES / "bin"), os.environ.get("PATH", "")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()  # a cell that raises (its asserts included) fails the test
    code = [c for c in nb.cells if c.cell_type == "code"]
    shown = {c.source.splitlines()[0]: _outputs(c) for c in code}
    printed = next(out for src, out in shown.items() if src.startswith("def setup_fn"))
    assert "[copy 0] copy 0 is ready for batch size 1" in printed
    cpu = next(out for src, out in shown.items() if src.startswith("inputs = torch.zeros(1, 8)"))
    # the table on stdout (the log goes to stderr)
    assert cpu.splitlines()[0].split() == ["throughput_avg", "latency_ms_p50", "latency_ms_p99", "n_models",
                                           "pipeline_size", "workers_per_model", "batch_size", "model_filename"]
    assert "awaited: ok" in _outputs(code[-1])
    assert (tmp_path / "model_index.json").exists() and list(tmp_path.glob("*.results-*.csv"))
