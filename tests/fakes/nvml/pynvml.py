"""A fake ``pynvml`` (the module of nvidia-ml-py) for tests: the calls npf makes, with
the real signatures, units and errors, answering from a description of the GPUs.

Installed by putting ``tests/fakes/nvml`` first on ``PYTHONPATH`` (or ``sys.path``).
Like the real bindings, every call but ``nvmlInit`` raises ``NVMLError_Uninitialized``
before ``nvmlInit``.

Environment:
  NPF_FAKE_NVML_GPUS     JSON list of GPUs: {"name", "uuid", "util" (%), "mem_used_mib", "mem_total_mib",
                         "power_w" (null: not supported), "sm_clock_mhz"}; default: GPU 0 at 70 %, 1000 MiB,
                         150 W, 1410 MHz and GPU 1 (someone else's) at 10 %, 5000 MiB, 60 W, 1980 MHz
  NPF_FAKE_NVML_DRIVER   the driver version (default "550.54.15"); CUDA driver version 12040 ("12.4")
  NPF_FAKE_NVML_INIT_FAIL  "1": nvmlInit raises NVMLError_DriverNotLoaded
  NPF_FAKE_NVML_LOG      JSON Lines file: {"call", "pid"} for every call (who samples, and when)
"""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
}


class NVMLError(Exception):
    """As the real one: ``NVMLError(code)`` is an instance of the code's subclass."""

    _by_code: dict[int, type[NVMLError]] = {}

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._by_code.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value  # type: ignore[attr-defined]
        return obj

    def __init__(self, value: int) -> None:
        super().__init__(value)

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"Unknown Error {self.value}")  # type: ignore[attr-defined]


def _subclass(name: str, code: int) -> type[NVMLError]:
    cls = type(name, (NVMLError,), {})
    NVMLError._by_code[code] = cls
    return cls


NVMLError_Uninitialized = _subclass("NVMLError_Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_InvalidArgument = _subclass("NVMLError_InvalidArgument", NVML_ERROR_INVALID_ARGUMENT)
NVMLError_NotSupported = _subclass("NVMLError_NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NotFound = _subclass("NVMLError_NotFound", NVML_ERROR_NOT_FOUND)
NVMLError_DriverNotLoaded = _subclass("NVMLError_DriverNotLoaded", NVML_ERROR_DRIVER_NOT_LOADED)

DEFAULT_GPUS = [
    {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0f9a3c1e-1111-2222-3333-444455556666", "util": 70,
     "mem_used_mib": 1000, "mem_total_mib": 81559, "power_w": 150.0, "sm_clock_mhz": 1410},
    {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-1f9a3c1e-1111-2222-3333-444455556666", "util": 10,
     "mem_used_mib": 5000, "mem_total_mib": 81559, "power_w": 60.0, "sm_clock_mhz": 1980},
]

_initialised = 0


def _log(call: str) -> None:
    path = os.environ.get("NPF_FAKE_NVML_LOG")
    if path:
        line = json.dumps({"call": call, "pid": os.getpid(), "time": time.time()}) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _gpus() -> list[dict[str, Any]]:
    text = os.environ.get("NPF_FAKE_NVML_GPUS")
    return json.loads(text) if text else DEFAULT_GPUS


def _check(call: str) -> None:
    _log(call)
    if not _initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)


class _Handle:
    def __init__(self, index: int) -> None:
        self.index = index

    @property
    def gpu(self) -> dict[str, Any]:
        return _gpus()[self.index]


def nvmlInit() -> None:
    global _initialised
    _log("nvmlInit")
    if os.environ.get("NPF_FAKE_NVML_INIT_FAIL") == "1":
        raise NVMLError(NVML_ERROR_DRIVER_NOT_LOADED)
    _initialised += 1


def nvmlShutdown() -> None:
    global _initialised
    _check("nvmlShutdown")
    _initialised -= 1


def nvmlSystemGetDriverVersion() -> str:
    _check("nvmlSystemGetDriverVersion")
    return os.environ.get("NPF_FAKE_NVML_DRIVER", "550.54.15")


def nvmlSystemGetCudaDriverVersion() -> int:
    _check("nvmlSystemGetCudaDriverVersion")
    return 12040


def nvmlSystemGetNVMLVersion() -> str:
    _check("nvmlSystemGetNVMLVersion")
    return "12.550.54.15"


def nvmlDeviceGetCount() -> int:
    _check("nvmlDeviceGetCount")
    return len(_gpus())


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    _check("nvmlDeviceGetHandleByIndex")
    if not 0 <= index < len(_gpus()):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _Handle(index)


def nvmlDeviceGetHandleByUUID(uuid: str) -> _Handle:
    _check("nvmlDeviceGetHandleByUUID")
    for i, g in enumerate(_gpus()):
        if g["uuid"] == uuid:
            return _Handle(i)
    raise NVMLError(NVML_ERROR_NOT_FOUND)


def nvmlDeviceGetName(handle: _Handle) -> str:
    _check("nvmlDeviceGetName")
    return handle.gpu["name"]


def nvmlDeviceGetUUID(handle: _Handle) -> str:
    _check("nvmlDeviceGetUUID")
    return handle.gpu["uuid"]


def nvmlDeviceGetUtilizationRates(handle: _Handle) -> SimpleNamespace:
    _check("nvmlDeviceGetUtilizationRates")
    return SimpleNamespace(gpu=int(handle.gpu["util"]), memory=int(handle.gpu["util"]) // 2)


def nvmlDeviceGetMemoryInfo(handle: _Handle, version: Any = None) -> SimpleNamespace:
    _check("nvmlDeviceGetMemoryInfo")
    g = handle.gpu
    total, used = int(g["mem_total_mib"]) * 2**20, int(g["mem_used_mib"]) * 2**20
    return SimpleNamespace(total=total, used=used, free=total - used)


def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
    _check("nvmlDeviceGetPowerUsage")
    if handle.gpu.get("power_w") is None:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return int(round(float(handle.gpu["power_w"]) * 1000))  # milliwatts


def nvmlDeviceGetClockInfo(handle: _Handle, type: int) -> int:
    _check("nvmlDeviceGetClockInfo")
    if type != NVML_CLOCK_SM:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return int(handle.gpu["sm_clock_mhz"])
