"""The gpu device: counting without torch in the supervisor, one GPU per copy, and
a clear exit 2 on a machine without a GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from npf_core.errors import DeviceUnavailable, SpecError
from npf_core.results.store import results_file
from npf_plugins.devices import gpu as gpu_mod
from npf_plugins.devices.gpu import GpuDevice, gpus_from_nvidia_smi, parse_cuda_visible_devices

pytestmark = pytest.mark.torch

SMI = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0f9a3c1e-1111-2222-3333-444455556666)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-1f9a3c1e-1111-2222-3333-444455556666)
  MIG 1g.10gb     Device  0: (UUID: MIG-5f9a3c1e-1111-2222-3333-444455556666)
GPU 2: NVIDIA H100 80GB HBM3 (UUID: GPU-2f9a3c1e-1111-2222-3333-444455556666)
"""


@pytest.mark.parametrize(
    ("value", "gpus"),
    [
        ("0,1", ["0", "1"]),
        ("3", ["3"]),
        ("", []),
        ("-1", []),
        ("2,-1,3", ["2"]),
        ("GPU-abc, 1", ["GPU-abc", "1"]),
    ],
)
def test_parse_cuda_visible_devices(value: str, gpus: list[str]) -> None:
    assert parse_cuda_visible_devices(value) == gpus


def test_nvidia_smi_listing() -> None:
    assert gpus_from_nvidia_smi(SMI) == ["0", "1", "2"]
    assert gpus_from_nvidia_smi("No devices were found\n") == []


def test_copies_get_their_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3,5")
    dev = GpuDevice({})
    dev.check()
    assert dev.count() == 3
    envs = [dev.assign(i, 3, 1)["env"]["CUDA_VISIBLE_DEVICES"] for i in range(3)]
    assert envs == ["2", "3", "5"]
    assert dev.assign(0, 1, 2)["env"]["CUDA_VISIBLE_DEVICES"] == "2,3"
    shared = GpuDevice({"copies_per_gpu": 2})
    assert shared.count() == 6
    assert [shared.assign(i, 4, 1)["env"]["CUDA_VISIBLE_DEVICES"] for i in range(4)] == ["2", "2", "3", "3"]


def test_count_from_a_fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    listing = tmp_path / "smi.txt"
    listing.write_text(SMI)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f'#!/bin/sh\n[ "$1" = "-L" ] || exit 9\ncat "{listing}"\n')
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(gpu_mod, "_torch_probe", lambda: pytest.fail("torch was asked although nvidia-smi answered"))
    dev = GpuDevice({})
    assert dev.count() == 3
    assert [dev.assign(i, 3, 1)["env"]["CUDA_VISIBLE_DEVICES"] for i in range(3)] == ["0", "1", "2"]


def test_empty_visible_devices_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(DeviceUnavailable, match="CUDA_VISIBLE_DEVICES='' hides every GPU"):
        GpuDevice({}).check()


def test_bad_option() -> None:
    with pytest.raises(SpecError, match=r"device\.options\.copies_per_gpu"):
        GpuDevice({"copies_per_gpu": 0})


def _run_cli(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "spec.json"
    spec.write_text(
        '{"model": {"framework": "python", "target": "m.py:M"}, "inputs": [{"shape": [1]}], "device": "gpu"}'
    )
    (tmp_path / "m.py").write_text("class M:\n    def __call__(self, x):\n        return x\n")
    return subprocess.run(
        [sys.executable, "-m", "npf_core", "run", str(spec), "--output-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli_exits_2_without_a_gpu(tmp_path: Path) -> None:
    """Portable: CUDA_VISIBLE_DEVICES='' hides every GPU, even on a GPU machine."""
    proc = _run_cli(tmp_path, {**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "device gpu: no CUDA GPU available" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not results_file(tmp_path / "out").exists()


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi")
def test_cli_exits_2_on_this_machine(tmp_path: Path) -> None:
    """No CUDA_VISIBLE_DEVICES, no nvidia-smi: the torch probe (a CPU build) finds none."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    proc = _run_cli(tmp_path, env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("npf: error: device gpu: no CUDA GPU available")
