"""Telemetry source ``neuron-monitor``: NeuronCores through AWS's ``neuron-monitor``
(package ``aws-neuronx-tools``).

For device ``neuron``. The tool is found as ``NPF_NEURON_MONITOR`` (a path), else on
``PATH``, else at ``/opt/aws/neuron/bin/neuron-monitor``. It is started **once per
run**, with a configuration file whose ``period`` is the measurement window, and
streams a JSON report every period; a background task reads the stream (reports on
one line each, or pretty-printed over several) without blocking the supervisor.

At each window's end the reports that arrived during that window (when none did,
the latest one of this measurement, if it is younger than two windows or HOLD_MIN_S:
a monitor a little slower than the window still gives every window a value) are
reduced to the configuration's own NeuronCores (the cores the device plugin gave its copies, i.e.
their ``NEURON_RT_VISIBLE_CORES``; neuron-monitor numbers cores the same way, across
the whole instance):

- ``device_util_percent``: ``neuron_runtime_data[].report.neuroncore_counters.
  neuroncores_in_use.<core>.neuroncore_utilization`` of those cores, averaged over
  the cores that report (a core in use by another process is left out);
- ``device_mem_used_mb``: ``report.memory_used.neuron_runtime_used_bytes.neuron_device``
  of the runtimes on those cores (a runtime whose pid is a copy's, or whose cores are
  all the configuration's), summed; for a runtime that spans other cores too, the
  ``usage_breakdown.neuroncore_memory_usage`` of the configuration's cores.

neuron-monitor reports no power draw, so ``power_w`` (and ``inf_per_joule``) stay null
on Neuron. At probe, ``neuron-ls`` (JSON) and the driver's module version
(``/sys/module/neuron/version``) go into the run's environment under ``neuron``, with
``neuron_hardware_info`` and ``instance_info`` from the first report.

If the supervisor is killed, neuron-monitor ends at its next write (its stdout pipe
is broken); otherwise it is stopped (SIGTERM, then SIGKILL) when the run ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import structlog

from npf_core.plugin import Device, Registry, Telemetry, TelemetryTarget, hookimpl
from npf_plugins.devices.neuron import neuron_ls_devices

__all__ = ["NeuronMonitorTelemetry", "ReportStream", "find_neuron_monitor", "monitor_config", "reduce_report"]

logger = structlog.get_logger(__name__)

ENV_PATH = "NPF_NEURON_MONITOR"
DEFAULT_PATH = Path("/opt/aws/neuron/bin/neuron-monitor")
DRIVER_VERSION = Path("/sys/module/neuron/version")
#: a report larger than this is not a report (a stream gone wrong): dropped
MAX_REPORT_BYTES = 64 * 2**20
STOP_GRACE_S = 2.0
#: a window without a new report reuses the latest one if it is at most this old (or two windows)
HOLD_MIN_S = 1.5


def find_neuron_monitor() -> tuple[str | None, str]:
    """``(path, "")`` of the tool, or ``(None, why not)``."""
    given = os.environ.get(ENV_PATH, "").strip()
    if given:
        if os.path.isfile(given) and os.access(given, os.X_OK):
            return given, ""
        found = shutil.which(given)
        if found:
            return found, ""
        return None, f"{ENV_PATH}={given!r} is not an executable file"
    found = shutil.which("neuron-monitor")
    if found:
        return found, ""
    if DEFAULT_PATH.is_file() and os.access(DEFAULT_PATH, os.X_OK):
        return str(DEFAULT_PATH), ""
    return None, f"neuron-monitor not found (install aws-neuronx-tools, put it on PATH, or set {ENV_PATH})"


def period_text(window_s: float) -> str:
    """A period for neuron-monitor's configuration, in seconds as its guide writes
    them: ``"1s"``, ``"0.5s"`` (a duration string: ``"0.5s"`` is also what Go's
    ``time.ParseDuration`` reads)."""
    return f"{round(window_s, 3):g}s"


def monitor_config(window_s: float) -> dict[str, Any]:
    """neuron-monitor's configuration: the NeuronCore counters and the memory used of
    every Neuron application, each measurement window."""
    return {
        "period": period_text(window_s),
        "neuron_runtimes": [
            {"tag_filter": ".*", "metrics": [{"type": "neuroncore_counters"}, {"type": "memory_used"}]},
        ],
        "system_metrics": [],
    }


class ReportStream:
    """JSON reports from a byte stream: one per line, or pretty-printed over several
    lines (a report then ends with a ``}`` at the start of a line). Lines that are not
    JSON are skipped."""

    def __init__(self) -> None:
        self._tail = b""
        self._lines: list[str] = []
        self._size = 0

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        self._tail += data
        *lines, self._tail = self._tail.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if not self._lines:
                if not line.lstrip().startswith("{"):
                    continue  # not a report (a warning the tool printed, a blank line)
            elif line.startswith("{"):
                self._lines, self._size = [], 0  # a new report begins: the one before never closed
            self._lines.append(line)
            self._size += len(line)
            if self._size > MAX_REPORT_BYTES:
                self._lines, self._size = [], 0
                continue
            if not (line.startswith("}") or (len(self._lines) == 1 and line.rstrip().endswith("}"))):
                continue  # a report ends on a line of its own ("}") or is one line
            try:
                doc = json.loads("\n".join(self._lines))
            except ValueError:
                if len(self._lines) == 1:
                    self._lines, self._size = [], 0  # one line that is not JSON
                continue  # else a nested "}" at the start of a line: read on
            self._lines, self._size = [], 0
            if isinstance(doc, dict):
                yield doc


def _int(key: Any) -> int | None:
    try:
        return int(key)
    except (TypeError, ValueError):
        return None


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def reduce_report(doc: dict[str, Any], cores: set[int], pids: set[int]) -> tuple[float | None, float | None]:
    """``(utilisation %, device memory bytes)`` of one neuron-monitor report, for the
    NeuronCores ``cores`` (and the runtimes of processes ``pids``); None where the
    report says nothing about them."""
    per_core: dict[int, float] = {}
    memory = 0.0
    memory_seen = False
    for entry in doc.get("neuron_runtime_data") or []:
        if not isinstance(entry, dict):
            continue
        report = entry.get("report") or {}
        counters = (report.get("neuroncore_counters") or {}).get("neuroncores_in_use") or {}
        in_use = {c for c in map(_int, counters) if c is not None}
        for key, data in counters.items():
            core = _int(key)
            util = _number((data or {}).get("neuroncore_utilization")) if isinstance(data, dict) else None
            if core in cores and util is not None:
                per_core[core] = max(per_core.get(core, 0.0), util)
        used = ((report.get("memory_used") or {}).get("neuron_runtime_used_bytes")) or {}
        total = _number(used.get("neuron_device"))
        breakdown = (used.get("usage_breakdown") or {}).get("neuroncore_memory_usage") or {}
        by_core = {c: v for c, v in ((_int(k), v) for k, v in breakdown.items()) if c is not None}
        spanned = set(by_core) or in_use
        ours = spanned & cores
        if _int(entry.get("pid")) in pids or (spanned and spanned <= cores):
            if total is not None:
                memory += total
                memory_seen = True
        elif ours:
            if by_core and set(by_core) - cores:
                memory += sum(
                    n for c in ours if isinstance(by_core.get(c), dict)
                    for n in map(_number, by_core[c].values()) if n is not None
                )  # fmt: skip
                memory_seen = True
            elif total is not None:
                memory += total
                memory_seen = True
    util = sum(per_core.values()) / len(per_core) if per_core else None
    return util, (memory if memory_seen else None)


class NeuronMonitorTelemetry(Telemetry):
    """NeuronCore utilisation and device memory of the configuration's cores."""

    devices = ("neuron",)

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.exe: str | None = None
        self._env: dict[str, Any] = {}
        self._cores: set[int] = set()
        self._pids: set[int] = set()
        self._pending: list[dict[str, Any]] | None = None  # reports of the current window, while measuring
        self._latest: tuple[float, dict[str, Any]] | None = None  # (monotonic time, report)
        self._hold_s = HOLD_MIN_S
        self._since = 0.0  # when the configuration's measurement began (monotonic)
        self.reports = 0  # reports read so far (all of them)

    def probe(self, device: Device, window_s: float) -> str | None:
        exe, why = find_neuron_monitor()
        if exe is None:
            return why
        self.exe = exe
        env: dict[str, Any] = {"neuron_monitor": exe}
        try:
            env["driver_version"] = DRIVER_VERSION.read_text().strip()
        except OSError:
            pass
        devices = neuron_ls_devices()
        if devices:
            env["device_count"] = len(devices)
            env["core_count"] = sum(int(d.get("nc_count") or 0) for d in devices)
            sizes = {d.get("memory_size") for d in devices if d.get("memory_size")}
            if len(sizes) == 1:
                env["device_memory_bytes"] = sizes.pop()
            lnc = {d.get("logical_neuroncore_config") for d in devices if d.get("logical_neuroncore_config")}
            if len(lnc) == 1:
                env["logical_neuroncore_config"] = lnc.pop()
            processes = [p for d in devices for p in d.get("neuron_processes") or [] if isinstance(p, dict)]
            runtimes = sorted({str(p["neuron_runtime_version"]) for p in processes if p.get("neuron_runtime_version")})
            if runtimes:
                env["runtime_versions"] = runtimes
            env["neuron_ls"] = devices
        self._env = env
        return None

    def environment(self) -> dict[str, Any]:
        return {"neuron": self._env}

    async def run(self, window_s: float) -> None:
        assert self.exe is not None
        fd, config = tempfile.mkstemp(prefix="npf-neuron-monitor-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(monitor_config(window_s), f)
        errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below, after the process
        proc: subprocess.Popen[bytes] | None = None
        try:
            # its own session: a Ctrl-C meant for npf reaches npf, which stops it
            proc = subprocess.Popen([self.exe, "-c", config], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=errors, start_new_session=True)  # fmt: skip
            logger.debug("neuron-monitor started", pid=proc.pid, period=period_text(window_s))
            assert proc.stdout is not None
            out = proc.stdout.fileno()
            os.set_blocking(out, False)
            stream = ReportStream()
            while True:
                await anyio.wait_readable(out)
                try:
                    data = os.read(out, 1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    break
                for doc in stream.feed(data):
                    self._take(doc)
            code = proc.wait()
            errors.seek(0)
            tail = errors.read()[-500:].decode("utf-8", "replace").strip()
            raise RuntimeError(f"neuron-monitor exited with code {code}" + (f": {tail}" if tail else ""))
        finally:
            with anyio.CancelScope(shield=True):
                if proc is not None:
                    await _stop(proc)
                errors.close()
                try:
                    os.unlink(config)
                except OSError:
                    pass

    def _take(self, doc: dict[str, Any]) -> None:
        self.reports += 1
        self._latest = (time.monotonic(), doc)
        for key in ("neuron_hardware_info", "instance_info"):
            info = doc.get(key)
            if isinstance(info, dict) and key not in self._env:
                self._env[key] = {k: v for k, v in info.items() if k != "error"}
        if self._pending is not None:
            self._pending.append(doc)

    def begin(self, target: TelemetryTarget) -> None:
        self._cores = {c for c in map(_int, target.devices) if c is not None}
        self._pids = set(target.pids)
        self._pending = []
        self._hold_s = max(HOLD_MIN_S, 2 * target.window_s)
        self._since = time.monotonic()

    def sample(self) -> dict[str, Any]:
        if self._pending is None:
            return {}
        docs, self._pending = self._pending, []
        latest = self._latest
        if not docs and latest is not None:
            since = max(self._since, time.monotonic() - self._hold_s)
            if latest[0] >= since:  # a monitor slower than the window: its last report of this measurement
                docs = [latest[1]]
        utils, mems = [], []
        for doc in docs:
            util, mem = reduce_report(doc, self._cores, self._pids)
            if util is not None:
                utils.append(util)
            if mem is not None:
                mems.append(mem)
        out: dict[str, Any] = {}
        if utils:
            out["device_util_percent"] = sum(utils) / len(utils)
        if mems:
            out["device_mem_used_mb"] = max(mems) / 2**20
        return out

    def end(self) -> None:
        self._pending = None


async def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a grace period, SIGKILL; always reaped."""
    if proc.poll() is None:
        proc.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        while proc.poll() is None and time.monotonic() < deadline:
            await anyio.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@hookimpl
def npf_register_telemetry(registry: Registry[Telemetry]) -> None:
    registry.add("neuron-monitor", NeuronMonitorTelemetry)
