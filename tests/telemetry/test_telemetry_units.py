"""Device telemetry without runs: neuron-monitor's reports reduced to a configuration's
cores, its stream read in any layout, the NVML source against the fake pynvml, the
hub's choice of sources and its rows, the report fields, and where they are shown
(CSV columns, console summary, HTML chart, NeuronPerf's write_csv)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from npf_core.errors import TelemetryUnavailable, UnknownPluginError
from npf_core.neuronperf.reports import CSV_COLS, write_csv
from npf_core.plugin import NEURONPERF_CSV_COLUMNS, TELEMETRY_COLUMNS, Results, Telemetry, TelemetryTarget
from npf_core.plugin.manager import get_plugins
from npf_core.results.report import Report
from npf_core.results.telemetry import TelemetryResult, apply_telemetry, summarize
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import decode_spec
from npf_core.supervisor.telemetry import TelemetryHub
from npf_core.wire.protocol import AssignmentBlock
from npf_plugins.reporters.console import best_lines, result_line
from npf_plugins.reporters.files import CSV_COLUMNS
from npf_plugins.reporters.html import render_html
from npf_plugins.telemetry.neuron_monitor import ReportStream, monitor_config, period_text, reduce_report
from npf_plugins.telemetry.nvml import NOT_INSTALLED, NvmlTelemetry

ROOT = Path(__file__).resolve().parents[2]
FAKE_NVML = ROOT / "tests" / "fakes" / "nvml"
MODELS = ROOT / "tests" / "integration" / "models.py"


def runtime(pid: int, cores: dict[str, float], device_bytes: int, breakdown: dict[str, Any] | None = None) -> dict:
    """One ``neuron_runtime_data`` entry as the Neuron Monitor guide documents it."""
    used: dict[str, Any] = {"host": 1000, "neuron_device": device_bytes}
    if breakdown is not None:
        used["usage_breakdown"] = {"host": {}, "neuroncore_memory_usage": breakdown}
    return {
        "pid": pid, "address": "", "neuron_runtime_tag": str(pid), "error": "",
        "report": {
            "neuroncore_counters": {
                "period": 0.5,
                "neuroncores_in_use": {k: {"neuroncore_utilization": v, "flops": 1} for k, v in cores.items()},
                "error": "",
            },
            "memory_used": {"period": 0.5, "neuron_runtime_used_bytes": used, "loaded_models": [], "error": ""},
        },
    }  # fmt: skip


MIB = 2**20


# -- neuron-monitor ------------------------------------------------------------------


def test_utilisation_and_memory_of_the_configurations_cores_only() -> None:
    doc = {"neuron_runtime_data": [runtime(11, {"0": 40.0, "1": 80.0}, 512 * MIB),
                                   runtime(22, {"2": 5.0}, 256 * MIB)]}  # fmt: skip
    assert reduce_report(doc, {0, 1}, set()) == (60.0, 512 * MIB)
    assert reduce_report(doc, {2}, set()) == (5.0, 256 * MIB)
    assert reduce_report(doc, {0, 1, 2}, set()) == (pytest.approx(125 / 3), 768 * MIB)
    assert reduce_report(doc, {5}, set()) == (None, None)  # nothing of ours in it
    # a runtime known by its pid counts whole, wherever its cores are
    assert reduce_report(doc, {5}, {22}) == (None, 256 * MIB)


def test_a_runtime_spanning_other_cores_counts_only_our_cores_memory() -> None:
    breakdown = {"0": {"constants": 100, "model_code": 20, "tensors": 3},
                 "2": {"constants": 5000, "model_code": 5000, "tensors": 5000}}  # fmt: skip
    doc = {"neuron_runtime_data": [runtime(7, {"0": 30.0, "2": 90.0}, 999_999, breakdown)]}
    assert reduce_report(doc, {0}, set()) == (30.0, 123)
    # without a breakdown there is no way to split it: the runtime's whole memory
    doc = {"neuron_runtime_data": [runtime(7, {"0": 30.0, "2": 90.0}, 999_999)]}
    assert reduce_report(doc, {0}, set()) == (30.0, 999_999)


def test_garbled_entries_are_skipped() -> None:
    doc = {"neuron_runtime_data": [None, {"pid": 1}, {"report": {"neuroncore_counters": {"neuroncores_in_use": {
        "x": {"neuroncore_utilization": 50}, "0": {"neuroncore_utilization": "busy"}, "1": None}}}},
        runtime(3, {"1": 70.0}, 10)]}  # fmt: skip
    assert reduce_report(doc, {0, 1}, set()) == (70.0, 10)


def test_the_stream_reads_one_report_per_line_or_pretty_printed_in_any_chunks() -> None:
    docs = [{"neuron_runtime_data": [runtime(i, {"0": float(i)}, i)], "n": i} for i in range(3)]
    compact = "".join(json.dumps(d) + "\n" for d in docs).encode()
    pretty = ("neuron-monitor: a warning\n" + "".join(json.dumps(d, indent=2) + "\n" for d in docs)).encode()
    for data in (compact, pretty):
        for size in (1, 7, 4096, len(data)):
            stream = ReportStream()
            got = [d for i in range(0, len(data), size) for d in stream.feed(data[i : i + size])]
            assert [d["n"] for d in got] == [0, 1, 2], (size, data[:40])
    # a report cut off (the tool died mid-write) does not swallow the next one
    stream = ReportStream()
    got = list(stream.feed(b'{"a": [1,\n  2\n{"n": 5}\nnot json}\n{"n": 6}\n'))
    assert got == [{"n": 5}, {"n": 6}]


def test_the_monitor_config_asks_for_the_window_period() -> None:
    assert period_text(0.5) == "0.5s" and period_text(1.0) == "1s" and period_text(0.25) == "0.25s"
    config = monitor_config(0.5)
    assert config["period"] == "0.5s"
    kinds = {m["type"] for rt in config["neuron_runtimes"] for m in rt["metrics"]}
    assert kinds == {"neuroncore_counters", "memory_used"}


# -- NVML ------------------------------------------------------------------------------


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    monkeypatch.syspath_prepend(str(FAKE_NVML))
    import pynvml

    assert Path(pynvml.__file__).parent == FAKE_NVML
    yield pynvml
    sys.modules.pop("pynvml", None)


def target(*devices: str, pids: tuple[int, ...] = ()) -> TelemetryTarget:
    copies = [{"index": i, "pid": pids[i] if i < len(pids) else None, "devices": [d], "cpus": None, "env": {}}
              for i, d in enumerate(devices)]  # fmt: skip
    return TelemetryTarget(config_id="c", device_type="gpu", window_s=0.5, copies=copies)


def test_nvml_samples_the_copies_gpus_in_nvml_units(fake_nvml: Any) -> None:
    src = NvmlTelemetry({})
    assert src.probe(None, 0.5) is None  # type: ignore[arg-type]
    env = src.environment()["gpu"]
    assert env["driver_version"] == "550.54.15" and env["cuda_driver_version"] == "12.4"
    assert [g["uuid"][:6] for g in env["gpus"]] == ["GPU-0f", "GPU-1f"]
    src.begin(target("0"))
    assert src.sample() == {"device_util_percent": 70.0, "device_mem_used_mb": 1000.0, "power_w": 150.0,
                            "sm_clock_mhz": 1410.0}  # fmt: skip
    src.begin(target("GPU-1f9a3c1e"))  # a UUID prefix, as CUDA_VISIBLE_DEVICES takes it
    assert src.sample()["device_util_percent"] == 10.0
    src.begin(target("0", "1"))  # two GPUs: utilisation averaged, memory and power summed
    assert src.sample() == {"device_util_percent": 40.0, "device_mem_used_mb": 6000.0, "power_w": 210.0,
                            "sm_clock_mhz": 1695.0}  # fmt: skip
    src.close()
    assert fake_nvml._initialised == 0  # nvmlShutdown


def test_nvml_leaves_out_what_a_gpu_does_not_support(fake_nvml: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [dict(g) for g in fake_nvml.DEFAULT_GPUS]
    gpus[1]["power_w"] = None
    monkeypatch.setenv("NPF_FAKE_NVML_GPUS", json.dumps(gpus))
    src = NvmlTelemetry({})
    assert src.probe(None, 0.5) is None  # type: ignore[arg-type]
    src.begin(target("0", "1"))
    got = src.sample()
    assert "power_w" not in got and got["device_util_percent"] == 40.0  # not GPU 0's power alone
    src.close()


def test_nvml_says_why_it_cannot_sample(fake_nvml: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPF_FAKE_NVML_INIT_FAIL", "1")
    why = NvmlTelemetry({}).probe(None, 0.5)  # type: ignore[arg-type]
    assert why is not None and "Driver Not Loaded" in why
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert NvmlTelemetry({}).probe(None, 0.5) == NOT_INSTALLED  # type: ignore[arg-type]


# -- the hub ---------------------------------------------------------------------------


def loaded(device: str = "cpu", telemetry: Any = "auto") -> Any:
    return decode_spec({"model": {"target": f"{MODELS}:Sleepy"}, "inputs": [{"shape": [1]}], "device": device,
                        "telemetry": telemetry})  # fmt: skip


class Boom(Telemetry):
    devices = None

    def sample(self) -> dict[str, Any]:
        raise RuntimeError("meter unplugged")


class Meter(Telemetry):
    """Gives power and a number npf has no field for."""

    def sample(self) -> dict[str, Any]:
        return {"power_w": 100.0, "temperature_c": 41.0}


class Late(Telemetry):
    """Gives power too, but every other window only."""

    devices = None

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.n = 0

    def sample(self) -> dict[str, Any]:
        self.n += 1
        return {"power_w": 999.0} if self.n % 2 else {}


class Extra:
    from npf_core.plugin import hookimpl

    @staticmethod
    @hookimpl
    def npf_register_telemetry(registry: Any) -> None:
        registry.add("boom", Boom)
        registry.add("meter", Meter)
        registry.add("late", Late)


def child(index: int, devices: list[str]) -> Any:
    """What the hub reads of a supervisor's Child handle."""
    return SimpleNamespace(copy_index=index, pid=None, job=SimpleNamespace(assignment=AssignmentBlock(devices=devices)))


def hub_for(device: str, telemetry: Any = "auto") -> TelemetryHub:
    plugins = get_plugins((Extra(),))
    spec = loaded(device, telemetry)
    dev = plugins.device(spec.device.type, spec.device.options)
    return TelemetryHub(spec, plugins, dev, 0.5)


def test_auto_picks_the_sources_made_for_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    names = lambda hub: [n for _, n, _, _ in hub._chosen]  # noqa: E731
    assert names(hub_for("cpu")) == ["host", "boom", "late"]  # host, then third parties made for any device
    assert names(hub_for("gpu")) == ["nvml", "host", "boom", "late"]
    assert names(hub_for("neuron", ["meter", "auto"]))[:3] == ["meter", "neuron-monitor", "host"]
    assert names(hub_for("gpu", "off")) == []
    with pytest.raises(UnknownPluginError, match=r"telemetry\[1\].*'nvm'"):
        hub_for("cpu", ["host", "nvm"])


def test_a_named_source_that_cannot_sample_is_an_error_before_anything_runs(
    fake_nvml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NPF_FAKE_NVML_INIT_FAIL", "1")
    hub = hub_for("cpu", ["host", "nvml"])
    with pytest.raises(TelemetryUnavailable, match=r"spec \$\.telemetry\[1\]: telemetry source 'nvml' cannot"):
        hub.probe()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    auto = hub_for("gpu", ["auto"])
    auto.probe()  # under "auto" it is left out, with its reason
    assert "nvml" in auto.unavailable and "Driver Not Loaded" in auto.unavailable["nvml"]


def run_windows(hub: TelemetryHub, n: int, devices: list[str] | None = None) -> TelemetryResult:
    config = RunConfig(config_id="c", model_name="m", framework="python", model_kind="target", model_ref="m",
                       model_filename="m", input_idx=0, batch_size=1, n_models=1, workers_per_model=1,
                       pipeline_size=1, start_method="zygote", device_type="cpu")  # fmt: skip
    hub.begin(config, [child(0, devices or [])], 100.0)
    for i in range(n):
        hub.tick(100.0 + 0.5 * (i + 1))
    result = hub.end()
    assert result is not None
    return result


def test_rows_per_window_precedence_and_a_failing_source_dropped() -> None:
    hub = hub_for("cpu", ["late", "meter", "boom", "host"])
    hub.probe()
    result = run_windows(hub, 4)
    w = result.windows
    assert w["t_s"] == [0.5, 1.0, 1.5, 2.0]
    # "late" is listed first and owns power_w: its gaps stay gaps, "meter" does not fill them
    assert w["power_w"] == [999.0, None, 999.0, None] and result.sources["power_w"] == "late"
    assert w["temperature_c"] == [41.0] * 4 and result.sources["temperature_c"] == "meter"
    assert [n for n, _ in hub.active] == ["late", "meter", "host"]  # boom dropped at its first sample
    assert "boom: failed in sample: RuntimeError: meter unplugged" in result.note
    # the next configuration goes on without it
    again = run_windows(hub, 2)
    assert "boom" not in again.sources.values() and again.windows["temperature_c"] == [41.0, 41.0]


def test_the_note_says_why_device_figures_are_null() -> None:
    cpu = hub_for("cpu", ["host"])
    cpu.probe()
    assert run_windows(cpu, 2).note == (
        "null: utilisation, device memory, power (no device telemetry source for device 'cpu')"
    )
    off = hub_for("cpu", "off")
    off.probe()
    assert off.end() is None  # no configuration sampling
    assert "telemetry is off" in run_windows(off, 1).note


# -- report fields ---------------------------------------------------------------------


def test_summaries_of_the_windows() -> None:
    windows = {"t_s": [0.5, 1.0, 1.5], "device_util_percent": [50.0, None, 70.0], "device_mem_used_mb": [10, 30, 20],
               "power_w": [100.0, 200.0, None], "temperature_c": [40, 44, None], "label": ["a", "b", "c"],
               "copy_rss_mb": [[1.0, None], [3.0, 2.0], [2.0]]}  # fmt: skip
    got = summarize(windows, throughput=600.0)
    assert got["device_util_avg_percent"] == 60.0 and got["device_util_peak_percent"] == 70.0
    assert got["device_mem_used_peak_mb"] == 30 and got["power_avg_w"] == 150.0 and got["power_peak_w"] == 200.0
    assert got["inf_per_joule"] == 4.0  # 600 inf/s over 150 J/s
    assert got["telemetry_avg"] == {"temperature_c": 42.0}
    assert got["copy_rss_peak_mb"] == [3.0, 2.0]
    empty = summarize({"t_s": [0.5], "power_w": [None]}, throughput=600.0)
    assert empty["power_avg_w"] is None and empty["inf_per_joule"] is None
    assert summarize({"power_w": [0.0]}, throughput=5.0)["inf_per_joule"] is None


def report(**kw: Any) -> Report:
    base = dict(model_name="m", n_models=1, workers_per_model=1, pipeline_size=1, batch_size=1, config_id="c1",
                throughput_avg=900.0, latency_ms_p50=1.0, latency_ms_p99=2.0)  # fmt: skip
    return Report(**{**base, **kw})


def test_apply_keeps_the_rows_and_json_round_trips() -> None:
    result = TelemetryResult(windows={"t_s": [0.5], "device_util_percent": [38.0], "power_w": [150.0]},
                             sources={"device_util_percent": "nvml", "power_w": "nvml"})  # fmt: skip
    r = apply_telemetry(report(), result)
    assert r.device_util_avg_percent == 38.0 and r.inf_per_joule == 6.0 and r.telemetry_sources["power_w"] == "nvml"
    back = Report.from_dict(json.loads(json.dumps(r.to_dict(), allow_nan=False)))
    assert back.telemetry_windows == r.telemetry_windows and back.power_avg_w == 150.0
    old = Report.from_dict({k: v for k, v in report().to_dict().items() if not k.startswith(("device_", "power"))})
    assert old.device_util_avg_percent is None  # results files from before telemetry read as null


def test_the_csv_has_neuronperfs_26_columns_then_the_telemetry_ones() -> None:
    assert CSV_COLUMNS[:26] == NEURONPERF_CSV_COLUMNS and CSV_COLUMNS[19] == "total_infs"
    assert CSV_COLUMNS[26:30] == TELEMETRY_COLUMNS
    assert "telemetry_windows" not in CSV_COLUMNS and "copy_rss_peak_mb" in CSV_COLUMNS


def test_neuronperf_write_csv_keeps_its_columns_and_adds_telemetry_when_asked(tmp_path: Path) -> None:
    measured = report(device_util_avg_percent=61.0, power_avg_w=150.0, inf_per_joule=6.0).to_dict()
    plain = tmp_path / "plain.csv"
    write_csv([measured], str(plain))  # NeuronPerf's header exactly, telemetry or not
    assert next(csv.reader(plain.read_text().splitlines())) == CSV_COLS
    rich = tmp_path / "rich.csv"
    write_csv([measured], str(rich), cols=[*CSV_COLS, *TELEMETRY_COLUMNS])
    header, row = list(csv.reader(rich.read_text().splitlines()))
    assert header == [*CSV_COLS, *TELEMETRY_COLUMNS] and header[19] == "total_infs"
    assert dict(zip(header, row, strict=True))["device_mem_used_peak_mb"] == "N/A"
    assert float(dict(zip(header, row, strict=True))["device_util_avg_percent"]) == 61.0


def test_the_console_says_when_the_best_device_was_not_saturated() -> None:
    slow = report(config_id="a", throughput_avg=100.0, device_util_avg_percent=90.0)
    best = report(config_id="b", throughput_avg=900.0, device_util_avg_percent=38.2, power_avg_w=150.0)
    lines = best_lines([slow, best])
    assert lines[1] == "device at 38 %: more copies or a larger batch may help"
    assert not any("device at" in x for x in best_lines([slow]))  # 90 %: saturated
    assert not any("device at" in x for x in best_lines([report()]))  # no telemetry: nothing said
    assert result_line(best).endswith(", device 38 %, 150 W")
    assert "device" not in result_line(report())


def test_the_html_report_charts_utilisation_over_time() -> None:
    def with_rows(cid: str, util: list[float]) -> Report:
        result = TelemetryResult(windows={"t_s": [0.5 * (i + 1) for i in range(len(util))],
                                          "device_util_percent": list(util)})  # fmt: skip
        return apply_telemetry(report(config_id=cid), result)

    page = render_html(Results(path=Path("r.json"), reports=[with_rows("a", [40.0, 60.0, 80.0]),
                                                             with_rows("b", [90.0, 95.0])]))  # fmt: skip
    assert page.count('<svg class="chart" id="chart-utilisation"') == 1
    chart = page[page.index('id="chart-utilisation"') :].split("</svg>")[0]
    assert chart.count('class="series"') == 2 and 'data-series="a"' in chart
    assert "<th class=\"\">device %</th>" in page and 'data-v="60.0"' in page
    plain = render_html(Results(path=Path("r.json"), reports=[report()]))
    assert "chart-utilisation" not in plain and "device %" not in plain
    assert "no device utilisation in these results" in plain


def test_a_window_without_a_report_holds_the_last_one_of_this_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    import npf_plugins.telemetry.neuron_monitor as nm

    now = [100.0]
    monkeypatch.setattr(nm.time, "monotonic", lambda: now[0])
    src = nm.NeuronMonitorTelemetry({})
    doc = {"neuron_runtime_data": [runtime(11, {"0": 40.0, "1": 80.0}, 512 * MIB)]}
    src._take(doc)  # arrived before GO (while the copies loaded): never used for this configuration
    now[0] = 101.0
    copies = [{"index": 0, "pid": None, "devices": ["0", "1"], "cpus": None, "env": {}}]
    src.begin(TelemetryTarget(config_id="c", device_type="neuron", window_s=0.5, copies=copies))
    now[0] = 101.5
    assert src.sample() == {}
    src._take(doc)
    now[0] = 102.0
    assert src.sample() == {"device_util_percent": 60.0, "device_mem_used_mb": 512.0}
    now[0] = 102.5  # no new report: the last one (1 s old) holds
    assert src.sample()["device_util_percent"] == 60.0
    now[0] = 103.6  # 2.1 s old: older than two windows and 1.5 s, dropped
    assert src.sample() == {}
    src.end()
    src._take(doc)
    assert src.sample() == {}  # not measuring
