"""Real npf runs of the installed plugin: ``python -m npf_core run`` in a child
interpreter, benchmarker processes, results files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers import add_mul, matmul_relu, npf, reports, write_spec

DURATION = "0.5"


def spec_for(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "ort",
        "model": {"framework": "onnxruntime", "path": model},
        "inputs": [{"shape": [4, 16], "dtype": "float32"}],
        "batch_sizes": [4],
        "n_models": [1],
        "workers_per_model": [1],
        **extra,
    }


def run_ok(tmp_path: Path, spec: dict[str, Any], *args: str, env: dict[str, str] | None = None) -> list[dict]:
    path = write_spec(tmp_path, spec)
    proc = npf("run", str(path), "--output-dir", "out", "--duration-s", DURATION, "-q", *args, cwd=tmp_path, env=env)
    assert proc.returncode == 0, f"npf exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return reports(tmp_path / "out")


def test_a_2x2_sweep_of_a_matmul_relu_model_is_all_ok(tmp_path: Path) -> None:
    matmul_relu(tmp_path / "model.onnx")
    rows = run_ok(tmp_path, spec_for("model.onnx", n_models=[1, 2], workers_per_model=[1, 2]))
    assert [(r["n_models"], r["workers_per_model"]) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for r in rows:
        assert r["status"] == "ok", r.get("error")
        assert r["model_filename"] == "model.onnx"
        assert r["start_method"] == "zygote"  # what "auto" means for this framework
        assert r["total_infs"] > 0 and r["latency_ms_p50"] > 0


def test_named_inputs_reach_a_two_input_model(tmp_path: Path) -> None:
    add_mul(tmp_path / "two.onnx")
    spec = spec_for(
        "two.onnx",
        inputs=[  # one example of three named tensors, in an order that is not the model's
            [
                {"name": "k", "shape": [2, 1], "dtype": "int64"},
                {"name": "a", "shape": [2, 4]},
                {"name": "b", "shape": [2, 4]},
            ]
        ],
        batch_sizes=[2],
    )
    (row,) = run_ok(tmp_path, spec)
    assert row["status"] == "ok", row.get("error")


@pytest.mark.parametrize("method", ["fresh", "fork"])
def test_copies_also_run_in_fresh_interpreters_and_forks_of_a_clean_supervisor(tmp_path: Path, method: str) -> None:
    # the CLI's supervisor never imports onnxruntime, so a fork of it is as clean as the zygote
    matmul_relu(tmp_path / "model.onnx")
    rows = run_ok(tmp_path, spec_for("model.onnx", n_models=[2], start_method=method))
    assert [(r["status"], r["start_method"]) for r in rows] == [("ok", method)]


def test_on_a_gpu_device_a_copy_asks_for_cuda_on_its_own_gpu(tmp_path: Path) -> None:
    """The gpu code path in real copies. With a CPU build of onnxruntime the copy must
    fail saying so, rather than quietly run on the CPU (benchmarks/gpu_check.sh runs
    the same path on a real GPU)."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: benchmarks/gpu_check.sh covers a real GPU")
    matmul_relu(tmp_path / "model.onnx")
    path = write_spec(tmp_path, spec_for("model.onnx", device="gpu"))
    # the gpu device takes the GPUs from CUDA_VISIBLE_DEVICES when set
    proc = npf("run", str(path), "--output-dir", "out", "--duration-s", DURATION, "-q", cwd=tmp_path,
               env={"CUDA_VISIBLE_DEVICES": "0"})  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    (row,) = reports(tmp_path / "out")
    assert (row["status"], row["device_type"]) == ("error", "gpu")
    message = row["error"]["message"]
    assert "CUDAExecutionProvider is not available in onnxruntime" in message
    assert "install onnxruntime-gpu" in message


@pytest.mark.parametrize(
    ("model", "extra", "words"),
    [
        ("model.onnx", {"options": {"intra_op_num_threads": 0}}, "spec $.model.options.intra_op_num_threads:"),
        ("model.onnx", {"options": {"intra_op_threads": 2}}, "did you mean 'intra_op_num_threads'"),
        ("model.onnx", {"options": {"provider_options": {"CUDAExecutionProvider": {}}}},
         "spec $.model.options.provider_options.CUDAExecutionProvider: options for 'CUDAExecutionProvider', which "
         "a copy on device 'cpu' does not use"),
        ("missing.onnx", {}, "spec $.model.path: file not found"),
        ("model.pt", {}, "spec $.model.path: 'model.pt' is not a file the onnxruntime framework loads"),
    ],
)  # fmt: skip
def test_a_bad_spec_fails_before_anything_starts_with_one_line(
    tmp_path: Path, model: str, extra: dict[str, Any], words: str
) -> None:
    matmul_relu(tmp_path / "model.onnx")
    (tmp_path / "model.pt").write_bytes(b"")
    spec = spec_for(model)
    spec["model"].update(extra)
    proc = npf("run", str(write_spec(tmp_path, spec)), "--output-dir", "out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("results.json"))


def test_a_target_instead_of_a_file_is_refused(tmp_path: Path) -> None:
    spec = spec_for("x.onnx")
    spec["model"] = {"framework": "onnxruntime", "target": "os:getcwd"}
    proc = npf("run", str(write_spec(tmp_path, spec)), cwd=tmp_path)
    assert proc.returncode == 2
    assert "spec $.model.target: the onnxruntime framework loads a model file" in proc.stderr


def test_fork_from_a_caller_that_imported_onnxruntime_is_refused(tmp_path: Path) -> None:
    matmul_relu(tmp_path / "model.onnx")
    write_spec(tmp_path, spec_for("model.onnx", start_method="fork"))
    script = (
        "import onnxruntime, npf_core, sys\n"
        "try:\n"
        "    npf_core.benchmark('spec.json', duration_s=0.2, reporters=[], results=False)\n"
        "except npf_core.SpecError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(0)\n"
        "sys.exit('the run started')\n"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("spec $.start_method: this process has imported onnxruntime")
    assert "leave start_method at 'auto'" in proc.stdout
