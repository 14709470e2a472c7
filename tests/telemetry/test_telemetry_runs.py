"""Device telemetry in real runs (``python -m npf_core run``, real copies) against the
stand-ins: the fake ``neuron-monitor`` and ``neuron-ls`` on PATH, the fake ``pynvml``
on PYTHONPATH. Figures are constant in the stand-ins, so they are checked to the
issue's tolerance whatever the machine's load does to the number of windows."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from npf_core.plugin import NEURONPERF_CSV_COLUMNS, TELEMETRY_COLUMNS, hookimpl
from npf_core.results.store import resolve_results

ROOT = Path(__file__).resolve().parents[2]
FAKE_BIN = ROOT / "tests" / "fakes" / "bin"
FAKE_NVML = ROOT / "tests" / "fakes" / "nvml"
MODELS = ROOT / "tests" / "integration" / "models.py"
TIMEOUT_S = 180
GPU0 = "GPU-0f9a3c1e-1111-2222-3333-444455556666"
GPU1 = "GPU-1f9a3c1e-1111-2222-3333-444455556666"
NULL_FIELDS = ("device_util_avg_percent", "device_mem_used_peak_mb", "power_avg_w", "inf_per_joule")


def spec(tmp: Path, **extra: Any) -> Path:
    data = {
        "model": {"framework": "python", "target": f"{MODELS}:Sleepy"},
        "inputs": [{"shape": [1, 4], "dtype": "float32"}],
        "n_models": [2],
        "workers_per_model": [1],
        "duration_s": 1.5,
        "output": {"dir": "out", "reporters": ["json", "csv"]},
        **extra,
    }
    path = tmp / "spec.json"
    path.write_text(json.dumps(data))
    return path


def run(tmp: Path, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """``python -m npf_core run spec.json`` in ``tmp`` with ``env`` added; and its pid."""
    full = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "NEURON_RT_VISIBLE_CORES")}
    full.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "npf_core", "run", "spec.json", *args], cwd=tmp, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)  # fmt: skip
    out, err = proc.communicate(timeout=TIMEOUT_S)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), proc.pid


def results(tmp: Path) -> tuple[dict[str, Any], list[list[str]]]:
    path = resolve_results(tmp / "out")
    return json.loads(path.read_text()), list(csv.reader(path.with_name("results.csv").read_text().splitlines()))


def neuron_env(tmp: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}", "NPF_FAKE_NEURON_LOG": str(tmp / "neuron.jsonl"),
            **extra}  # fmt: skip


def log(tmp: Path, name: str) -> list[dict[str, Any]]:
    path = tmp / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_neuroncores_of_the_copies_only_memory_from_the_monitor_and_the_csv_columns(tmp_path: Path) -> None:
    """Copies on cores 0 and 1 (40 % and 80 % busy), core 2 busy at 5 % for someone else."""
    spec(tmp_path, device="neuron", n_models=[1, 2])
    proc, _ = run(tmp_path, neuron_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc, table = results(tmp_path)
    one, two = doc["reports"]
    assert (one["devices"], two["devices"]) == (["nc0"], ["nc0", "nc1"])
    assert one["device_util_avg_percent"] == pytest.approx(40, abs=1.5)
    assert two["device_util_avg_percent"] == pytest.approx(60, abs=1.5)
    assert two["device_mem_used_peak_mb"] == 512  # runtime 4242's (cores 0 and 1), not 4343's (core 2)
    # one copy (core 0) has only part of runtime 4242: its breakdown of core 0 (constants, code, tensors)
    assert one["device_mem_used_peak_mb"] == (1024 + 2048 + 4096) / 2**20
    assert two["telemetry_sources"]["device_util_percent"] == "neuron-monitor"
    assert two["power_avg_w"] is None and two["inf_per_joule"] is None
    assert "power: not reported by neuron-monitor" in two["telemetry_note"]
    assert all(v == 60.0 for v in two["telemetry_windows"]["device_util_percent"] if v is not None)
    assert len(two["telemetry_windows"]["t_s"]) >= 1
    header = table[0]
    assert tuple(header[:26]) == NEURONPERF_CSV_COLUMNS and tuple(header[26:30]) == TELEMETRY_COLUMNS
    row = dict(zip(header, table[2], strict=True))
    assert float(row["device_util_avg_percent"]) == pytest.approx(60, abs=1.5) and row["power_avg_w"] == ""
    env = doc["environment"]
    assert env["neuron"]["core_count"] == 4 and env["neuron"]["neuron_hardware_info"]["neuron_device_type"]
    assert env["telemetry"]["sources"] == ["neuron-monitor", "host"]
    # neuron-monitor: started once for the whole run, its period the window, stopped at the end
    starts = [r for r in log(tmp_path, "neuron.jsonl") if r["event"] == "neuron-monitor"]
    assert len(starts) == 1, starts
    assert starts[0]["config"]["period"] == f"{two['window_s']:g}s"
    assert not psutil.pid_exists(starts[0]["pid"]) or psutil.Process(starts[0]["pid"]).status() == "zombie"
    assert any(r["event"] == "neuron-monitor-exit" for r in log(tmp_path, "neuron.jsonl"))


def test_a_pretty_printed_stream_with_noise_reads_the_same(tmp_path: Path) -> None:
    spec(tmp_path, device="neuron")
    proc, _ = run(tmp_path, neuron_env(tmp_path, NPF_FAKE_NEURON_MONITOR_PRETTY="1", NPF_FAKE_NEURON_MONITOR_NOISE="1"))
    assert proc.returncode == 0, proc.stderr
    (r,) = results(tmp_path)[0]["reports"]
    assert r["device_util_avg_percent"] == pytest.approx(60, abs=1.5) and r["device_mem_used_peak_mb"] == 512


def test_a_monitor_that_dies_is_noted_and_the_sweep_goes_on(tmp_path: Path) -> None:
    spec(tmp_path, device="neuron", n_models=[1, 2], duration_s=1.0)
    proc, _ = run(tmp_path, neuron_env(tmp_path, NPF_FAKE_NEURON_MONITOR_EXIT_AFTER="1"))
    assert proc.returncode == 0, proc.stderr
    last = results(tmp_path)[0]["reports"][-1]
    assert last["status"] == "ok" and last["device_util_avg_percent"] is None
    assert "neuron-monitor exited with code 3: neuron-monitor: fake failure: lost the driver" in last["telemetry_note"]


def test_no_monitor_on_path_leaves_null_fields_with_the_reason(tmp_path: Path) -> None:
    spec(tmp_path, device="neuron", n_models=[1])
    only_ls = tmp_path / "bin"
    only_ls.mkdir()
    (only_ls / "neuron-ls").symlink_to(FAKE_BIN / "neuron-ls")
    proc, _ = run(tmp_path, {"PATH": f"{only_ls}{os.pathsep}{os.environ['PATH']}", "NPF_NEURON_MONITOR": ""})
    assert proc.returncode == 0, proc.stderr
    (r,) = results(tmp_path)[0]["reports"]
    assert all(r[f] is None for f in NULL_FIELDS)
    assert "neuron-monitor: neuron-monitor not found" in r["telemetry_note"]


def test_one_gpu_at_70_percent_1000_mib_150_w(tmp_path: Path) -> None:
    spec(tmp_path, device="gpu", n_models=[1], workers_per_model=[1, 2], output={"dir": "out",
         "reporters": ["json", "csv", "html"]})  # fmt: skip
    nvml_log = tmp_path / "nvml.jsonl"
    proc, pid = run(tmp_path, {"CUDA_VISIBLE_DEVICES": "0", "PYTHONPATH": str(FAKE_NVML),
                               "NPF_FAKE_NVML_LOG": str(nvml_log)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc, table = results(tmp_path)
    for r in doc["reports"]:
        assert r["device_util_avg_percent"] == pytest.approx(70, rel=0.01)
        assert r["device_mem_used_peak_mb"] == pytest.approx(1000, rel=0.01)
        assert r["power_avg_w"] == pytest.approx(150, rel=0.01)
        assert r["inf_per_joule"] == pytest.approx(r["throughput_avg"] / 150, rel=1e-9)
        assert r["device_clock_avg_mhz"] == 1410 and r["telemetry_note"] == ""
    assert doc["environment"]["gpu"]["driver_version"] == "550.54.15"
    assert doc["environment"]["gpu"]["cuda_driver_version"] == "12.4"
    # every NVML call came from the supervisor, none from a copy
    calls = log(tmp_path, "nvml.jsonl")
    assert {c["pid"] for c in calls} == {pid}
    assert sum(c["call"] == "nvmlDeviceGetPowerUsage" for c in calls) >= 2
    assert calls[-1]["call"] == "nvmlShutdown"
    header = table[0]
    assert tuple(header[:26]) == NEURONPERF_CSV_COLUMNS and tuple(header[26:30]) == TELEMETRY_COLUMNS
    page = (resolve_results(tmp_path / "out").parent / "report.html").read_text()
    assert 'id="chart-utilisation"' in page and "550.54.15" in page


def test_the_gpu_given_by_uuid_is_the_one_sampled(tmp_path: Path) -> None:
    spec(tmp_path, device="gpu", n_models=[1])
    proc, _ = run(tmp_path, {"CUDA_VISIBLE_DEVICES": GPU1, "PYTHONPATH": str(FAKE_NVML)})
    assert proc.returncode == 0, proc.stderr
    (r,) = results(tmp_path)[0]["reports"]
    assert r["device_util_avg_percent"] == 10 and r["power_avg_w"] == 60 and r["device_mem_used_peak_mb"] == 5000


def test_a_cpu_run_without_any_source_exits_0_with_null_fields(tmp_path: Path) -> None:
    spec(tmp_path, n_models=[1])
    proc, _ = run(tmp_path, {"PYTHONPATH": str(FAKE_NVML), "PATH": f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    doc, table = results(tmp_path)
    (r,) = doc["reports"]
    assert r["status"] == "ok" and all(r[f] is None for f in NULL_FIELDS)
    assert r["telemetry_note"] == (
        "null: utilisation, device memory, power (no device telemetry source for device 'cpu')"
    )
    assert r["copy_cores_util_avg_percent"] is not None and r["copy_rss_peak_mb"][0] > 1
    row = dict(zip(table[0], table[1], strict=True))
    assert [row[c] for c in TELEMETRY_COLUMNS] == ["", "", "", ""]
    assert "device at" not in proc.stdout


def test_a_named_source_that_cannot_sample_exits_2_before_anything_runs(tmp_path: Path) -> None:
    spec(tmp_path, telemetry=["host", "nvml"])
    proc, _ = run(tmp_path, {"PYTHONPATH": str(FAKE_NVML), "NPF_FAKE_NVML_INIT_FAIL": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "spec $.telemetry[1]: telemetry source 'nvml' cannot sample here: NVML cannot start: Driver Not Loaded" in (
        proc.stderr
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("results.json"))


def test_telemetry_off_samples_nothing(tmp_path: Path) -> None:
    spec(tmp_path, device="gpu", n_models=[1], telemetry="off")
    nvml_log = tmp_path / "nvml.jsonl"
    proc, _ = run(tmp_path, {"CUDA_VISIBLE_DEVICES": "0", "PYTHONPATH": str(FAKE_NVML),
                             "NPF_FAKE_NVML_LOG": str(nvml_log)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (r,) = results(tmp_path)[0]["reports"]
    assert all(r[f] is None for f in NULL_FIELDS) and set(r["telemetry_windows"]) <= {"t_s"}
    assert "telemetry is off" in r["telemetry_note"] and not nvml_log.exists()


# -- a third party's source, registered through the API --------------------------------


class Steady:
    """A power meter and a thermometer (a third party's source, programmatic)."""

    from npf_core.plugin import Telemetry

    class Meter(Telemetry):
        devices = None

        def sample(self) -> dict[str, Any]:
            return {"power_w": 120.0, "temperature_c": 45.0}

    @staticmethod
    @hookimpl
    def npf_register_telemetry(registry: Any) -> None:
        registry.add("steady-meter", Steady.Meter)


def test_a_third_party_source_gives_power_and_its_own_metric(tmp_path: Path) -> None:
    import npf_core

    s = json.loads(spec(tmp_path, n_models=[1], duration_s=1.0).read_text())
    started = time.monotonic()
    (r,) = npf_core.benchmark(s, extra_plugins=(Steady(),), output_dir=str(tmp_path / "api"), reporters=[])
    assert time.monotonic() - started < TIMEOUT_S
    assert r.status == "ok" and r.power_avg_w == 120.0
    assert r.inf_per_joule == pytest.approx(r.throughput_avg / 120.0)
    assert r.telemetry_avg == {"temperature_c": 45.0} and r.telemetry_sources["power_w"] == "steady-meter"
    assert r.device_util_avg_percent is None  # nobody measured utilisation


class BrokenLauncher:
    """A launcher that fails: its error reaches the caller as it is, not wrapped in an
    exception group by the telemetry's task group around the run."""

    from npf_core.plugin import Launcher

    class Failing(Launcher):
        async def run(self, run: Any, todo: Any) -> None:
            from npf_core.plugin import SpecError

            raise SpecError("launcher.options", "no such cluster", "give a reachable address")

    @staticmethod
    @hookimpl
    def npf_register_launchers(registry: Any) -> None:
        registry.add("failing", BrokenLauncher.Failing)


def test_an_error_of_the_run_is_not_wrapped_by_the_telemetry_around_it(tmp_path: Path) -> None:
    import npf_core
    from npf_core.plugin import SpecError

    s = json.loads(spec(tmp_path, n_models=[1]).read_text())
    with pytest.raises(SpecError, match="no such cluster"):
        npf_core.benchmark(s, extra_plugins=(BrokenLauncher(),), launcher="failing", output_dir=str(tmp_path / "o"),
                           reporters=[])  # fmt: skip
