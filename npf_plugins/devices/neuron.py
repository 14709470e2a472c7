"""Device ``neuron``: AWS NeuronCores (inf1, inf2, trn1, trn2).

The pool of NeuronCores is found in this order, in the supervisor:

1. ``NEURON_RT_VISIBLE_CORES`` of the supervisor's environment, when set: a core
   list such as ``4-11``, ``0,2,3`` or ``3-5,6`` (the runtime's own syntax);
2. ``neuron-ls --json-output`` (or ``--output-format json``, Neuron 2.34+): the
   ``neuroncore_ids`` of every device, or consecutive ids from ``nc_count`` when an
   older ``neuron-ls`` does not print ids;
3. the driver's sysfs tree, ``/sys/devices/virtual/neuron_device/neuron<N>/core_count``
   (divided by ``NEURON_LOGICAL_NC_CONFIG`` when it is set: sysfs counts physical
   cores, trn2's default LNC=2 pairs them);
4. the device option ``cores``: a count (cores ``0..N-1``) or a core list.

When none of them finds a core, ``check`` fails with
:class:`~npf_core.errors.DeviceUnavailable` (the CLI exits 2).

Copy ``i`` of a configuration with pipeline size ``p`` gets its own block of ``p``
cores, ``pool[i*p : (i+1)*p]``, as ``NEURON_RT_VISIBLE_CORES`` in its environment
(``first-last``, or a list when the block is not contiguous: the runtime then
refuses it, so give a contiguous pool). ``max`` model copies is ``len(pool) // p``.
Inside the copy the runtime renumbers its cores from 0, so every copy sees the same
local ids; the report's ``devices`` column shows the real ones (``nc4-5``).

Legacy (inf1, Neuron runtime 1.x): when the supervisor's environment sets
``NEURONCORE_GROUP_SIZES`` (or the option ``legacy_group_sizes`` is true), each copy
also gets ``NEURONCORE_GROUP_SIZES=<p>`` — one group of ``p`` cores per process, as
NeuronPerf did — so an old runtime places one model per process while a newer one
still reads the copy's ``NEURON_RT_VISIBLE_CORES``.

Any framework runs on this device, the ``python`` framework included: the device
only assigns cores and sets the environment. Frameworks that load a Neuron runtime
(``torch`` with torch-neuronx) start fresh interpreters here, so the runtime is
never initialised in the supervisor and inherited by a fork (``NRT_STATE_CHILD``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgspec

from npf_core.plugin import (
    Assignment,
    Device,
    DeviceUnavailable,
    Registry,
    SpecError,
    decode_options,
    get_logger,
    hookimpl,
)

__all__ = [
    "NeuronDevice",
    "NeuronOptions",
    "cores_from_neuron_ls",
    "format_cores",
    "neuron_ls_devices",
    "parse_cores",
]

logger = get_logger(__name__)

VISIBLE_CORES = "NEURON_RT_VISIBLE_CORES"
GROUP_SIZES = "NEURONCORE_GROUP_SIZES"
#: where the Neuron driver publishes its devices (a module constant so tests can point it elsewhere)
SYSFS_ROOT = Path("/sys/devices/virtual/neuron_device")
NEURON_LS_TIMEOUT_S = 20.0
#: the runtime's messages for a process forked after it was initialised, and for
#: NeuronCores another process holds
_STATE_CHILD = re.compile(r"NRT_STATE_CHILD|Incompatible runtime state")
_CORES_BUSY = re.compile(
    r"nrt_allocate_neuron_cores|NeuronCore\(s\) not available|cannot determine the number of available NeuronCores"
    r"|No neuron device available|NeuronCores? (?:are|is) (?:already )?in use",
    re.IGNORECASE,
)

_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_cores(text: str) -> list[int]:
    """The sorted core ids of a core list: ``"4-11"``, ``"0,2,3"``, ``"3-5,6"``.

    Raises ``ValueError`` with the offending part for anything else (empty text or
    items, negative numbers, reversed ranges, duplicates).
    """
    if not text or not text.strip():
        raise ValueError("the core list is empty")
    cores: list[int] = []
    for item in text.split(","):
        m = _ITEM.match(item)
        if m is None:
            raise ValueError(f"{item.strip()!r} is not a core id or an inclusive range like '4-11'")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        if last < first:
            raise ValueError(f"the range {item.strip()!r} runs backwards (write '{last}-{first}')")
        cores.extend(range(first, last + 1))
    seen: set[int] = set()
    for c in cores:
        if c in seen:
            raise ValueError(f"core {c} is listed twice")
        seen.add(c)
    return sorted(cores)


def format_cores(cores: list[int]) -> str:
    """The runtime's syntax for a set of cores: ``"4-5"`` when contiguous, ``"4"``
    for one, else a comma list."""
    if not cores:
        raise ValueError("no cores to format")
    if cores == list(range(cores[0], cores[0] + len(cores))):
        return str(cores[0]) if len(cores) == 1 else f"{cores[0]}-{cores[-1]}"
    return ",".join(str(c) for c in cores)


def _device_entries(data: Any) -> list[dict[str, Any]]:
    """The per-device objects of ``neuron-ls`` JSON: a top-level array (``-j``), or
    the first array of device objects inside an object (``--output-format json``,
    whose schema is not documented)."""
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        for value in data.values():
            if (
                isinstance(value, list)
                and value
                and all(isinstance(d, dict) for d in value)
                and any("nc_count" in d or "neuroncore_ids" in d for d in value)
            ):
                return value
    raise ValueError("no device list in the neuron-ls output")


def cores_from_neuron_ls(text: str) -> list[int]:
    """Core ids from ``neuron-ls --json-output``: ``neuroncore_ids`` where present
    (Neuron 2.25+), else consecutive ids numbered from ``nc_count`` in device order."""
    devices = _device_entries(json.loads(text))
    devices = sorted(devices, key=lambda d: int(d.get("neuron_device", 0)))
    cores: list[int] = []
    next_id = 0
    for d in devices:
        ids = d.get("neuroncore_ids")
        if isinstance(ids, list) and all(isinstance(i, int) for i in ids):
            cores.extend(ids)
            next_id = max([next_id, *(i + 1 for i in ids)])
            continue
        n = d.get("nc_count")
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"device {d.get('neuron_device', '?')} has no usable nc_count")
        cores.extend(range(next_id, next_id + n))
        next_id += n
    if len(set(cores)) != len(cores):
        raise ValueError("neuron-ls lists a core twice")
    return sorted(cores)


def _neuron_ls_output() -> str | None:
    """What ``neuron-ls`` prints as JSON (``--json-output``, or ``--output-format
    json`` from Neuron 2.34, tried in that order), or None when it is not on PATH,
    fails or refuses both flags."""
    exe = shutil.which("neuron-ls")
    if exe is None:
        return None
    for args in (["--json-output"], ["--output-format", "json"]):
        try:
            proc = subprocess.run(
                [exe, *args], capture_output=True, text=True, timeout=NEURON_LS_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("neuron-ls failed", error=repr(exc))
            return None
        if proc.returncode == 0:
            return proc.stdout
        logger.debug("neuron-ls refused the flags", args=args, code=proc.returncode, stderr=proc.stderr[-500:])
    return None


def neuron_ls_devices() -> list[dict[str, Any]] | None:
    """The device objects ``neuron-ls`` prints, or None when it is not on PATH,
    fails or prints no device list. For the run's environment record (telemetry)."""
    text = _neuron_ls_output()
    if text is None:
        return None
    try:
        return _device_entries(json.loads(text))
    except (ValueError, TypeError):
        return None


def _run_neuron_ls() -> list[int] | None:
    text = _neuron_ls_output()
    if text is None:
        return None
    try:
        return cores_from_neuron_ls(text)
    except (ValueError, TypeError) as exc:
        logger.warning("cannot read the output of neuron-ls", error=str(exc))
        return None


def _cores_from_sysfs(root: Path) -> list[int] | None:
    """Consecutive core ids from each ``neuron<N>/core_count`` under ``root``."""
    try:
        devices = [p for p in root.iterdir() if re.fullmatch(r"neuron\d+", p.name)]
    except OSError:
        return None
    if not devices:
        return None
    lnc_text = os.environ.get("NEURON_LOGICAL_NC_CONFIG", "").strip()
    lnc = int(lnc_text) if lnc_text.isdigit() and int(lnc_text) > 0 else 1
    total = 0
    for dev in sorted(devices, key=lambda p: int(p.name[len("neuron") :])):
        # the driver moved nodes in 2.31: look for core_count at the top, then one level down
        candidates = [dev / "core_count", *sorted(dev.glob("*/core_count"))]
        count = None
        for f in candidates:
            try:
                count = int(f.read_text().strip())
                break
            except (OSError, ValueError):
                continue
        if count is None:
            logger.warning("no readable core_count in the Neuron sysfs tree", device=str(dev))
            return None
        total += count // lnc
    return list(range(total)) if total else None


class NeuronOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: the pool when nothing else finds one: a count (cores 0..N-1) or a core list ("0-7")
    cores: int | str | None = None
    #: also give each copy NEURONCORE_GROUP_SIZES=<pipeline size> (inf1, runtime 1.x)
    legacy_group_sizes: bool = False


class NeuronDevice(Device):
    """NeuronCores: one contiguous block of ``pipeline_size`` cores per model copy."""

    exclusive = True
    type_name = "neuron"

    options_type = NeuronOptions  # its options in `npf schema`

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, NeuronOptions, "device.options")
        self._option_pool = self._parse_option(self.opts.cores)
        self._pool: list[int] | None = None
        self._source = ""

    @staticmethod
    def _parse_option(value: int | str | None) -> list[int] | None:
        if value is None:
            return None
        if isinstance(value, int):
            if value < 1:
                raise SpecError("device.options.cores", f"must be at least 1, got {value}")
            return list(range(value))
        try:
            return parse_cores(value)
        except ValueError as exc:
            raise SpecError("device.options.cores", str(exc), "give a count like 8 or a core list like '0-7'") from None

    def pool(self) -> list[int] | None:
        """The NeuronCores copies may use (supervisor side), found once."""
        if self._pool is not None:
            return self._pool
        env = os.environ.get(VISIBLE_CORES)
        if env is not None and env.strip():
            try:
                self._pool, self._source = parse_cores(env), VISIBLE_CORES
            except ValueError as exc:
                raise DeviceUnavailable(
                    f"device neuron: {VISIBLE_CORES}={env!r} in the environment is not a core list: {exc} "
                    "(use a range like '4-11' or a list like '0,1,2', or unset it)"
                ) from None
            return self._pool
        for source, find in (
            ("neuron-ls", _run_neuron_ls),
            ("sysfs", lambda: _cores_from_sysfs(SYSFS_ROOT)),
            ("device.options.cores", lambda: self._option_pool),
        ):
            cores = find()
            if cores:
                self._pool, self._source = cores, source
                logger.debug("NeuronCores found", source=source, count=len(cores))
                return self._pool
        return None

    @property
    def source(self) -> str:
        """Where the pool came from (after :meth:`pool`)."""
        return self._source

    def legacy(self) -> bool:
        return self.opts.legacy_group_sizes or bool(os.environ.get(GROUP_SIZES, "").strip())

    def check(self) -> None:
        if not self.pool():
            raise DeviceUnavailable(
                f"device neuron: no NeuronCores found ({VISIBLE_CORES} is unset, neuron-ls found none or is not "
                f"on PATH, and {SYSFS_ROOT} lists no device); run on an inf/trn instance with the Neuron driver, "
                "or set device.options.cores"
            )

    def count(self) -> int | None:
        pool = self.pool()
        return len(pool) if pool else None

    def assign(self, copy_index: int, n_models: int, pipeline_size: int) -> Assignment:
        pool = self.pool() or []
        p = max(1, pipeline_size)
        block = pool[copy_index * p : (copy_index + 1) * p]
        if len(block) < p:
            # more copies than the pool holds: the planner prevents this for exclusive
            # devices, so only an unknown pool gets here; number from 0 like NeuronPerf
            block = list(range(copy_index * p, (copy_index + 1) * p))
        visible = format_cores(block)
        if "," in visible:
            logger.warning(
                "NeuronCores of one copy are not contiguous; the Neuron runtime needs a contiguous set",
                copy=copy_index,
                cores=visible,
            )
        env = {VISIBLE_CORES: visible}
        if self.legacy():
            env[GROUP_SIZES] = str(p)
        label = f"nc{block[0]}" if len(block) == 1 else f"nc{block[0]}-{block[-1]}"
        if "," in visible:
            label = "nc" + visible
        return Assignment(env=env, cpus=None, devices=[str(c) for c in block], label=label)

    def failure_hint(self, text: str) -> str | None:
        """What to do when a copy's failure shows one of the Neuron runtime's known
        start-up failures (NeuronPerf issues #1040 and #493)."""
        if _STATE_CHILD.search(text):
            return (
                "the Neuron runtime was already initialised in the process this copy was forked from "
                "(e.g. the script traced or ran a Neuron model, with torch_neuronx, before benchmarking), "
                "and a fork cannot use it: keep start_method 'fresh' (the default on Neuron), or trace "
                "and save the model in a separate script first"
            )
        if _CORES_BUSY.search(text):
            return (
                "another process holds the NeuronCores (a notebook kernel or script that loaded a Neuron "
                "model, or one that did not exit): find it with neuron-top or neuron-ls and stop it, "
                "or give this run other cores with NEURON_RT_VISIBLE_CORES"
            )
        return None


@hookimpl
def npf_register_devices(registry: Registry[Device]) -> None:
    registry.add("neuron", NeuronDevice)
