"""Telemetry source ``nvml``: NVIDIA GPUs through NVML (the ``nvidia-ml-py``
package, module ``pynvml``: ``pip install 'npf[gpu]'``).

For device ``gpu``. NVML is the driver's management library: it needs no CUDA
context, so the supervisor never initialises CUDA by sampling (a fork of a process
that did could not use CUDA). At probe it calls ``nvmlInit`` and records the driver
and CUDA driver versions (``nvmlSystemGetDriverVersion``,
``nvmlSystemGetCudaDriverVersion``) and each GPU's name, UUID and memory in the
run's environment, under ``gpu``. Per window, for the GPUs the configuration's copies
were given (the device plugin's ``CUDA_VISIBLE_DEVICES`` entries: an index, as
``nvidia-smi`` numbers GPUs, or a ``GPU-``/``MIG-`` UUID or its unique prefix):

- ``device_util_percent``: ``nvmlDeviceGetUtilizationRates(h).gpu``, the share of
  NVML's last sample period (1/6 s to 1 s, by product) in which a kernel ran,
  averaged over the GPUs;
- ``device_mem_used_mb``: ``nvmlDeviceGetMemoryInfo(h).used`` (bytes -> MiB), summed
  (the GPU's whole use, other processes' included: NVML counts per GPU);
- ``power_w``: ``nvmlDeviceGetPowerUsage(h)`` (milliwatts -> W), summed: on Ampere and
  newer (except GA100) NVML averages it over one second, on older GPUs it is
  instantaneous;
- ``sm_clock_mhz``: ``nvmlDeviceGetClockInfo(h, NVML_CLOCK_SM)``, averaged.

A figure a GPU does not support (power on some boards, utilisation under MIG) is left
out for the configuration rather than summed over part of its GPUs.
"""

from __future__ import annotations

import importlib
from typing import Any

import structlog

from npf_core.plugin import Device, Registry, Telemetry, TelemetryTarget, hookimpl

__all__ = ["NvmlTelemetry", "cuda_version_text"]

logger = structlog.get_logger(__name__)

NOT_INSTALLED = "pynvml is not installed (pip install 'npf[gpu]', which brings nvidia-ml-py)"


def cuda_version_text(value: int) -> str:
    """NVML's CUDA driver version number as text: 12040 -> ``"12.4"``."""
    return f"{value // 1000}.{value % 1000 // 10}"


class NvmlTelemetry(Telemetry):
    """Utilisation, memory, power and SM clock of the configuration's GPUs."""

    devices = ("gpu",)
    requires = ("pynvml",)  # nvidia-ml-py: pip install 'npf[gpu]'

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.nvml: Any = None
        self._env: dict[str, Any] = {}
        self._handles: list[Any] = []
        self._unsupported: set[str] = set()

    def probe(self, device: Device, window_s: float) -> str | None:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError:
            return NOT_INSTALLED
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            return f"NVML cannot start: {exc} (is the NVIDIA driver loaded?)"
        self.nvml = nvml
        env: dict[str, Any] = {}
        for key, call in (
            ("driver_version", lambda: nvml.nvmlSystemGetDriverVersion()),
            ("cuda_driver_version", lambda: cuda_version_text(nvml.nvmlSystemGetCudaDriverVersion())),
            ("nvml_version", lambda: nvml.nvmlSystemGetNVMLVersion()),
        ):
            try:
                env[key] = _text(call())
            except Exception as exc:  # NVMLError, or a binding too old to have the call
                logger.debug("NVML version query failed", key=key, error=repr(exc))
        gpus = []
        try:
            for i in range(nvml.nvmlDeviceGetCount()):
                h = nvml.nvmlDeviceGetHandleByIndex(i)
                gpu: dict[str, Any] = {"index": i}
                for key, query in (
                    ("name", lambda h: _text(nvml.nvmlDeviceGetName(h))),
                    ("uuid", lambda h: _text(nvml.nvmlDeviceGetUUID(h))),
                    ("memory_total_mb", lambda h: nvml.nvmlDeviceGetMemoryInfo(h).total / 2**20),
                ):
                    try:
                        gpu[key] = query(h)
                    except Exception as exc:  # not supported by this GPU or binding: left out
                        logger.debug("NVML device query failed", index=i, key=key, error=repr(exc))
                gpus.append(gpu)
        except Exception as exc:
            logger.debug("NVML device listing failed", error=repr(exc))
        env["gpus"] = gpus
        self._env = {"gpu": env}
        return None

    def environment(self) -> dict[str, Any]:
        return self._env

    def _handle(self, ident: str) -> Any:
        nvml = self.nvml
        if ident.isdigit():
            return nvml.nvmlDeviceGetHandleByIndex(int(ident))
        try:
            return nvml.nvmlDeviceGetHandleByUUID(ident)
        except nvml.NVMLError:
            # CUDA_VISIBLE_DEVICES takes a unique prefix of a UUID; NVML wants it whole
            for i in range(nvml.nvmlDeviceGetCount()):
                h = nvml.nvmlDeviceGetHandleByIndex(i)
                if _text(nvml.nvmlDeviceGetUUID(h)).startswith(ident):
                    return h
            raise

    def begin(self, target: TelemetryTarget) -> None:
        self._handles = []
        self._unsupported = set()
        for ident in target.devices:
            try:
                self._handles.append(self._handle(ident))
            except Exception as exc:  # NVMLError: not found
                logger.warning("NVML does not know a GPU the copies were given; it is not sampled", gpu=ident,
                               error=str(exc))  # fmt: skip

    def _each(self, metric: str, read: Any) -> list[float] | None:
        """``read(handle)`` for every GPU, or None when one of them cannot say."""
        if metric in self._unsupported or not self._handles:
            return None
        out = []
        for h in self._handles:
            try:
                out.append(float(read(h)))
            except Exception as exc:  # NVMLError (not supported), or a binding without the call
                logger.debug("NVML query not supported; left out for this configuration", metric=metric,
                             error=str(exc))  # fmt: skip
                self._unsupported.add(metric)
                return None
        return out

    def sample(self) -> dict[str, Any]:
        nvml = self.nvml
        out: dict[str, Any] = {}
        util = self._each("device_util_percent", lambda h: nvml.nvmlDeviceGetUtilizationRates(h).gpu)
        if util:
            out["device_util_percent"] = sum(util) / len(util)
        mem = self._each("device_mem_used_mb", lambda h: nvml.nvmlDeviceGetMemoryInfo(h).used / 2**20)
        if mem:
            out["device_mem_used_mb"] = sum(mem)
        power = self._each("power_w", lambda h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0)
        if power:
            out["power_w"] = sum(power)
        clock = self._each("sm_clock_mhz", lambda h: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM))
        if clock:
            out["sm_clock_mhz"] = sum(clock) / len(clock)
        return out

    def end(self) -> None:
        self._handles = []

    def close(self) -> None:
        if self.nvml is not None:
            try:
                self.nvml.nvmlShutdown()
            except self.nvml.NVMLError:
                pass
            self.nvml = None


def _text(value: Any) -> str:
    """NVML strings: ``str`` from nvidia-ml-py 11.5+, ``bytes`` from older bindings."""
    return value.decode() if isinstance(value, bytes) else str(value)


@hookimpl
def npf_register_telemetry(registry: Registry[Telemetry]) -> None:
    registry.add("nvml", NvmlTelemetry)
