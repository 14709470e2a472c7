"""Device ``gpu``: NVIDIA GPUs through CUDA.

The GPUs copies may use are found in this order, in the supervisor, without
importing torch there:

1. ``CUDA_VISIBLE_DEVICES`` of the supervisor's environment, when set: its entries
   (indices or ``GPU-``/``MIG-`` UUIDs) in order. As in CUDA, an empty value means no
   GPU, and the list ends at the first negative index;
2. ``nvidia-smi -L``: one ``GPU <i>: ...`` line per GPU;
3. as a last resort, ``torch.cuda.device_count()`` in a short subprocess (only when
   torch is installed), so the supervisor never initialises CUDA itself — a forked
   child of a process that did cannot use CUDA.

No GPU found: ``check`` fails with :class:`~npf_core.errors.DeviceUnavailable`, one
line, and the CLI exits 2.

Copy ``i`` gets ``CUDA_VISIBLE_DEVICES`` set to its own GPU (with pipeline size
``p``: its own ``p`` GPUs), so inside the copy it is always ``cuda:0``. ``max``
model copies is the GPU count (times ``copies_per_gpu``) // pipeline size.

Options: ``{"copies_per_gpu": N}`` lets ``N`` copies share each GPU (default 1:
one GPU per copy). The ``torch`` framework moves the model and its inputs to the
GPU (``x = x.to(device)``) and synchronises after every call, so the clock stops
after the GPU's work, not when the kernels were queued.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from typing import Annotated, Any

import msgspec

from npf_core.plugin import Assignment, Device, DeviceUnavailable, Registry, decode_options, get_logger, hookimpl

__all__ = ["GpuDevice", "GpuOptions", "gpus_from_nvidia_smi", "parse_cuda_visible_devices"]

logger = get_logger(__name__)

CUDA_VISIBLE = "CUDA_VISIBLE_DEVICES"
PROBE_TIMEOUT_S = 60.0
_GPU_LINE = re.compile(r"^GPU (\d+):")


def parse_cuda_visible_devices(text: str) -> list[str]:
    """The GPUs a ``CUDA_VISIBLE_DEVICES`` value makes visible, as CUDA reads it:
    comma-separated indices or UUIDs; an empty value hides every GPU, and a negative
    index ends the list."""
    out: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            if out:
                break
            continue
        if re.fullmatch(r"-?\d+", item) and int(item) < 0:
            break
        out.append(item)
    return out


def gpus_from_nvidia_smi(text: str) -> list[str]:
    """GPU indices from ``nvidia-smi -L`` (``GPU 0: NVIDIA H100 (UUID: GPU-...)``;
    indented MIG lines belong to the GPU above them and are not counted)."""
    return [m.group(1) for line in text.splitlines() if (m := _GPU_LINE.match(line))]


def _nvidia_smi() -> list[str] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("nvidia-smi failed", error=repr(exc))
        return None
    if proc.returncode != 0:
        logger.debug("nvidia-smi -L failed", code=proc.returncode, stderr=proc.stderr[-500:])
        return None
    return gpus_from_nvidia_smi(proc.stdout)


def _torch_probe() -> list[str] | None:
    """``torch.cuda.device_count()`` asked in a child interpreter, never here."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:  # not installed (or only a folder named torch)
        return None
    code = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
        n = int(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else 0
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        logger.warning("torch GPU probe failed", error=repr(exc))
        return None
    return [str(i) for i in range(n)]


class GpuOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: how many model copies share one GPU
    copies_per_gpu: Annotated[int, msgspec.Meta(ge=1)] = 1


class GpuDevice(Device):
    """CUDA GPUs: each copy sees only its own GPU(s) through CUDA_VISIBLE_DEVICES."""

    exclusive = True
    type_name = "gpu"

    options_type = GpuOptions  # its options in `npf schema`

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, GpuOptions, "device.options")
        self._gpus: list[str] | None = None
        self._source = ""

    def gpus(self) -> list[str]:
        """The GPUs copies may use (supervisor side), found once."""
        if self._gpus is not None:
            return self._gpus
        env = os.environ.get(CUDA_VISIBLE)
        if env is not None:
            self._gpus, self._source = parse_cuda_visible_devices(env), CUDA_VISIBLE
            return self._gpus
        for source, find in (("nvidia-smi", _nvidia_smi), ("torch", _torch_probe)):
            found = find()
            if found:
                self._gpus, self._source = found, source
                return found
        self._gpus, self._source = [], "none"
        return self._gpus

    def check(self) -> None:
        if self.gpus():
            return
        env = os.environ.get(CUDA_VISIBLE)
        if env is not None:
            why = f"{CUDA_VISIBLE}={env!r} hides every GPU"
        else:
            why = "nvidia-smi is not on PATH or lists no GPU, and torch sees no CUDA device"
        raise DeviceUnavailable(
            f"device gpu: no CUDA GPU available ({why}); run on a machine with an NVIDIA GPU and driver, "
            "or use device 'cpu'"
        )

    def count(self) -> int | None:
        gpus = self.gpus()
        return len(gpus) * self.opts.copies_per_gpu if gpus else None

    def assign(self, copy_index: int, n_models: int, pipeline_size: int) -> Assignment:
        gpus = self.gpus() or ["0"]
        slots = [g for g in gpus for _ in range(self.opts.copies_per_gpu)]
        p = max(1, pipeline_size)
        mine: list[str] = []
        for k in range(copy_index * p, (copy_index + 1) * p):
            g = slots[k % len(slots)]
            if g not in mine:
                mine.append(g)
        return Assignment(env={CUDA_VISIBLE: ",".join(mine)}, cpus=None, devices=mine, label="gpu" + "+".join(mine))


@hookimpl
def npf_register_devices(registry: Registry[Device]) -> None:
    registry.add("gpu", GpuDevice)
