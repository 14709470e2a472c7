"""The NeuronPerf guide's and examples' PyTorch code on npf, as written (only the
import line changed): torch models the tests build, on cpu and on the Neuron fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fd_models import read_records

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

import npf_core as npf  # noqa: E402
from npf_core.errors import DeviceUnavailable  # noqa: E402

HERE = Path(__file__).resolve().parent
EXAMPLES = Path("/work/shared/reference/neuronperf_docs")
SHORT = 0.5
ONE_DEVICE = [{"neuron_device": 0, "nc_count": 2, "neuroncore_ids": [0, 1], "neuron_processes": []}]


def _as_npf(source: str, duration: float = SHORT) -> str:
    """The example with only its import lines changed, plus (test time only) a short
    default duration instead of NeuronPerf's 60 s per configuration."""
    lines = []
    for line in source.splitlines():
        if line.strip() in ("import neuronperf as npf", "import neuronperf.torch"):
            if line.strip() == "import neuronperf as npf":
                lines.append("import npf_core as npf")
                lines.append(f"import npf_core.neuronperf.api as _api; _api.BENCHMARK_SECS = {duration}")
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def _run_script(path: Path, cwd: Path, timeout: int = 500) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(path)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@pytest.fixture
def one_neuron_device(neuron_fakes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "neuron-ls.json"
    out.write_text(json.dumps(ONE_DEVICE))
    monkeypatch.setenv("NPF_FAKE_NEURON_LS_OUTPUT", str(out))
    return neuron_fakes


def test_example_test_simple_pt_runs_on_inf1_fakes(one_neuron_device: Path, tmp_path: Path) -> None:
    """neuronperf_examples.rst "Benchmark a Model from Source" (test_simple_pt.py):
    torch.neuron (torch-neuron, Inf1) traces; npf.torch.benchmark on the default
    device "neuron" runs the default sweep; print_reports and write_csv."""
    source = (EXAMPLES / "example_test_simple_pt.py").read_text()
    # torch-neuron installs itself as torch.neuron; the fake is the torch_neuron package only
    source = source.replace("import torch.neuron\n", "import torch_neuron\ntorch.neuron = torch_neuron\n")
    script = tmp_path / "test_simple_pt.py"
    script.write_text(_as_npf(source))
    done = _run_script(script, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == npf.SUMMARY_COLS)
    rows = [line.split() for line in lines[header + 1:] if line.strip()]
    # n_models {1, MAX = 2 cores} x workers {1, 2}
    assert sorted((r[3], r[5]) for r in rows) == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    assert all(r[-1].endswith("model_neuron_b1.pt") for r in rows)
    table = (tmp_path / "model_neuron_b1.csv").read_text().splitlines()
    assert table[0].split(",") == npf.CSV_COLS and len(table) == 5
    # the benchmarkers imported torch_neuron (Inf1), not torch_neuronx
    events = read_records(one_neuron_device)
    imports = [e for e in events if e["event"] == "import"]
    assert imports and all(e.get("package") == "torch_neuron" for e in imports)
    assert len({e["pid"] for e in imports}) >= 1 + 1 + 2 + 2  # the tracing script and each copy


def test_benchmark_a_compiled_model_on_neuron_fakes(one_neuron_device: Path, tmp_path: Path) -> None:
    """neuronperf_examples.rst "Benchmark a Compiled Model": a torch-neuronx model,
    then the two-configuration call with model_name, and write_json."""
    code = (
        "import sys, warnings, torch, torch_neuronx\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from fd_torch_models import Model\n"
        "m = torch_neuronx.trace(Model().eval(), torch.ones(1, 3, 224, 224))\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        f"torch.jit.save(m, {str(tmp_path / 'your_model_file.pt')!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, env=os.environ.copy())
    os.chdir(tmp_path)
    batch_sizes = 1
    input_shape = (batch_sizes, 3, 224, 224)
    inputs = torch.ones(input_shape)
    filename = "your_model_file.pt"
    reports = npf.torch.benchmark(filename, inputs, batch_sizes, n_models=1, workers_per_model=[1, 2],
                                  duration=SHORT, model_name="MyFancyModel", verbosity=0)  # fmt: skip
    assert [(r["n_models"], r["workers_per_model"]) for r in reports] == [(1, 1), (1, 2)]
    for r in reports:
        assert r["status"] == "finished", r.get("error")
        assert r["device_type"] == "neuron" and r["model_name"] == "MyFancyModel"
        assert r["multiinterpreter"] is True  # Neuron models load in fresh interpreters
    written = npf.write_json(reports)
    assert json.loads(Path(written).read_text())[0]["model_filename"] == "your_model_file.pt"
    imports = [e for e in read_records(one_neuron_device) if e["event"] == "import" and e["pid"] != os.getpid()]
    assert all(e.get("package") != "torch_neuron" for e in imports)
    assert "torch_neuronx" not in sys.modules and "torch_neuron" not in sys.modules


def test_multi_input_tuple_and_list_of_tuples_on_cpu(record: Path) -> None:
    from fd_torch_models import ThreeInputs

    x, y, z = torch.ones(1, 5), torch.ones(1, 5), torch.ones(1, 5)
    inputs = (x, y, z)
    (r,) = npf.cpu.benchmark(ThreeInputs, inputs, n_models=1, workers_per_model=1, duration=SHORT, verbosity=0)
    assert r["status"] == "finished", r.get("error")
    inputs = [(x, y, z), (torch.ones(3, 5), torch.ones(3, 5), torch.ones(3, 5))]
    reports = npf.torch.benchmark(ThreeInputs, inputs, batch_sizes=[1, 3], n_models=1, workers_per_model=1,
                                  duration=SHORT, device_type="cpu", verbosity=0)  # fmt: skip
    assert [r["batch_size"] for r in reports] == [1, 3] and all(r["status"] == "finished" for r in reports)
    calls = [e for e in read_records(record) if e["event"] == "call"]
    assert sorted(e["shapes"][0][0] for e in calls) == [1, 1, 3] and {e["type"] for e in calls} == {"Tensor"}


def test_preprocess_for_multiple_inputs_and_postprocess_argmax() -> None:
    from fd_torch_models import ThreeInputs

    def preprocess_fn(x, y, z):
        return x / 255, y / 255, z / 255

    def postprocess_fn(x):
        return x.argmax()

    inputs = (torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4))
    (r,) = npf.cpu.benchmark(ThreeInputs, inputs, batch_sizes=2, n_models=1, workers_per_model=1, duration=SHORT,
                             preprocess_fn=preprocess_fn, postprocess_fn=postprocess_fn, verbosity=0)  # fmt: skip
    assert r["status"] == "finished", r.get("error")
    assert r["preprocess_avg_ms"] > 0 and r["postprocess_avg_ms"] > 0


def test_a_torch_dataset_runs_once_per_copy(record: Path) -> None:
    """The guide's "Custom Datasets": batch_sizes=[8], preprocess_fn=lambda x: x[0],
    loop_dataset=False; n_models=2 runs the dataset through twice, in parallel."""
    from fd_torch_models import Counting, Items

    dataset = Items(40)
    reports = npf.torch.benchmark(Counting, inputs=dataset, batch_sizes=[8], preprocess_fn=lambda x: x[0],
                                  loop_dataset=False, n_models=2, workers_per_model=2, duration=30,
                                  device_type="cpu", verbosity=0)  # fmt: skip
    (r,) = reports
    assert r["status"] == "finished", r.get("error")
    assert r["stopped_by"] == "exhausted"  # the passes ended, not the 30 s
    batches = [e for e in read_records(record) if e["event"] == "batch"]
    # per copy: one warm-up call per worker from its own pass, then the 5 batches of one pass
    measured = r["total_calls"]
    assert measured == 2 * 5 and r["total_infs"] == 2 * 40
    firsts = sorted(e["first"] for e in batches)
    assert firsts.count(32.0) >= 2 and all(e["n"] == 8 for e in batches)


def test_cpu_benchmark_of_a_torch_module_class_and_gpu_without_a_gpu() -> None:
    from fd_torch_models import Model

    (r,) = npf.cpu.benchmark(Model, torch.ones(1, 6), n_models=1, workers_per_model=1, duration=SHORT, verbosity=0)
    assert r["status"] == "finished" and r["device_type"] == "cpu"
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU machine: the no-GPU error does not apply")
    with pytest.raises(DeviceUnavailable):
        npf.torch.benchmark(Model, torch.ones(1, 6), device_type="gpu", duration=SHORT, verbosity=0)


@pytest.mark.parametrize("given", ["class", "instance"])
def test_compile_then_benchmark_the_index_with_filters(neuron_fakes: Path, tmp_path: Path, given: str) -> None:
    """The resnet example's shape (compile, then benchmark the index), with a model
    class or, as NeuronPerf's docs write it, an instance (it reaches the compile
    process by cloudpickle), and benchmark(batch_sizes=...) as a filter on the index."""
    from fd_torch_models import Model

    os.chdir(tmp_path)
    batch_sizes = [1, 2]
    inputs = [torch.zeros([b, 3, 8, 8], dtype=torch.float32) for b in batch_sizes]
    model = Model if given == "class" else Model().eval()
    filename = npf.torch.compile(model, inputs, batch_sizes=batch_sizes, filename="model.json")
    assert Path(filename).exists()
    index = npf.model_index.load(filename)
    assert [c["batch_size"] for c in index["model_configs"]] == [1, 2]
    reports = npf.torch.benchmark(filename, inputs, batch_sizes=2, n_models=1, workers_per_model=1,
                                  duration=SHORT, verbosity=0)  # fmt: skip
    assert [(r["batch_size"], r["status"]) for r in reports] == [(2, "finished")]
