"""The wire between the supervisor and a benchmarker: messages and framing.

A frame is a 4-byte big-endian length followed by one msgpack-encoded message of
the tagged union :data:`AnyMessage`. The channel is a dedicated socket (never
stdout or stderr, which user code may write to freely). Decoding is typed: a
frame that is too long, truncated, or not a known message raises
:class:`~npf_core.errors.ProtocolError`.

Conversation, per benchmarker (one model copy)::

    child  -> Hello(protocol, pid)
    parent -> Setup(job)                     what to load and how to run it
    child  -> Loaded()                       the model is loaded; warm-up begins
    child  -> Ready(load_ns, warmup_ns)      or Failed
    parent -> Go(go_at_ns, stop_at_ns)       one common start for all copies
    child  -> Progress(...)                  once per window while measuring
    parent -> Stop()                         optional: early stop or cancel
    child  -> Result(...)                    or Failed, then the child exits

A copy kept for the next configurations (``Job.reuse``, see
:mod:`npf_core.supervisor.copy_pool`) does not exit after its Result: it keeps its
loaded model and blocks on the wire until the supervisor sends::

    parent -> Reconfigure(job)               the next configuration, same loaded model
    child  -> Ready(reused=True)             rebuilt workers and inputs, warmed up again
    ...                                      Go, Progress, Result as above
    parent -> Release()                      or a hang-up: the copy exits

A copy loaded ahead for a later configuration (``Job.preload``) answers its Setup
with Ready once loaded, runs nothing (no warm-up, no Go), and waits for
Reconfigure or Release like a kept copy.

A job with ``repeat`` (the capacity search's probes) keeps its copy loaded after a
Result: the next ``Go`` measures again, with the loaded model and the same worker
threads, under the load that Go names (``load_mode``, ``rate_per_copy``); ``Stop``
or a closed wire ends it (the capacity search does not keep copies between
configurations)::

    parent -> Go(go_at_ns, stop_at_ns, load_mode, rate_per_copy)
    child  -> Progress(...) ... Result(...)
    parent -> Stop(reason="done")            no more probes: the child exits

(A Stop with another reason that arrives between measurements is the early stop of
the one just finished, crossed on the wire with its Result: it is ignored.)

New fields always get defaults, so old and new ends can talk.
"""

from __future__ import annotations

import enum
import select
import socket
import struct
import threading
from typing import Any, Union

import msgspec

from npf_core.errors import ProtocolError
from npf_core.spec.schema import DatasetSpec, DeviceSpec, InputItem

__all__ = [
    "ChildExit",
    "AssignmentBlock",
    "CallStamps",
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "STOP_DONE",
    "AnyMessage",
    "Channel",
    "EvalJob",
    "Failed",
    "Go",
    "Hello",
    "Hist",
    "Job",
    "Loaded",
    "Progress",
    "Ready",
    "Reconfigure",
    "Release",
    "Result",
    "Setup",
    "Stop",
    "decode_frames",
    "encode_frame",
]

PROTOCOL_VERSION = 2  # 2: Reconfigure and Release (copies kept across configurations)
MAX_FRAME = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")


class Message(msgspec.Struct, tag=True, tag_field="msg", kw_only=True):
    """Base of every wire message; the tag is the class name."""


class Hello(Message, kw_only=True):
    protocol: int
    pid: int


class ChildExit(enum.IntEnum):
    """A benchmarker's own exit codes (a negative code is the signal that killed it)."""

    OK = 0  # sent its Result
    FAILED = 1  # sent Failed: the report has the reason
    NO_SETUP = 3  # the wire closed before the job arrived or while running
    BAD_HANDSHAKE = 4  # the first message was not Setup
    ORPHANED = 70  # the supervisor was already gone at start-up
    SUPERVISOR_GONE = 75  # the wire hung up: the supervisor is gone

    @classmethod
    def describe(cls, code: int) -> str:
        """A word for the codes no model would use by chance (the low ones may be
        the model's own ``sys.exit``)."""
        if code in (cls.ORPHANED, cls.SUPERVISOR_GONE):
            return cls(code).name.lower().replace("_", " ")
        return ""


class AssignmentBlock(msgspec.Struct, kw_only=True):
    """A device's share for one copy (the device plugin's ``Assignment``), typed for
    the wire; keys a plugin adds beyond these travel in ``extra``."""

    env: dict[str, str] = {}
    cpus: list[int] | None = None
    devices: list[str] = []
    label: str = ""
    extra: dict[str, Any] = {}

    @classmethod
    def of(cls, assignment: dict[str, Any]) -> AssignmentBlock:
        known = {"env", "cpus", "devices", "label"}
        return cls(
            env={str(k): str(v) for k, v in (assignment.get("env") or {}).items()},
            cpus=[int(c) for c in assignment["cpus"]] if assignment.get("cpus") is not None else None,
            devices=[str(d) for d in assignment.get("devices") or []],
            label=str(assignment.get("label") or ""),
            extra={k: v for k, v in assignment.items() if k not in known},
        )

    def as_dict(self) -> dict[str, Any]:
        """The plugin's view: the ``Assignment`` keys, plus what it added."""
        return {"env": dict(self.env), "cpus": self.cpus, "devices": list(self.devices), "label": self.label,
                **self.extra}  # fmt: skip


class EvalJob(msgspec.Struct, kw_only=True):
    """Evaluate mode of a job: which metrics to keep per worker (spec strings: names,
    references or API tokens; ``keys`` are their report names), where the target is in
    an example, an optional reference model, and whether to run the dataset once."""

    metrics: list[str] = []
    keys: list[str] = []
    target_col: int | None = -1
    reference: dict[str, Any] | None = None
    once: bool = True


class Job(msgspec.Struct, kw_only=True):
    """Everything a benchmarker needs to load a model and run one configuration.
    What the spec gives a default for (device, load mode, warm-up, window) has no
    default here: the supervisor always copies the spec's value, so a default is
    written once, in the spec's Structs."""

    config_id: str
    copy_index: int
    n_models: int
    workers: int
    batch_size: int
    pipeline_size: int
    input_idx: int = 0
    framework: str
    model_kind: str  # "target", "path" or an index entry's "path"
    model_ref: str
    model_options: dict[str, Any] = {}
    base_dir: str = "."
    inputs: list[InputItem] | None = None  # one example: its input items
    dataset: DatasetSpec | None = None
    device: DeviceSpec
    assignment: AssignmentBlock = msgspec.field(default_factory=AssignmentBlock)
    preprocess: str | None = None
    postprocess: str | None = None
    setup: str | None = None
    env_setup: str | None = None
    load_mode: str
    rate_per_copy: float = 0.0  # open loop: this copy's share of the spec's rate (calls/s)
    warmup_iterations: int
    warmup_s: float
    window_ns: int
    seed: int = 0
    evaluate: EvalJob | None = None
    #: keep each call's stamps, up to this many calls per copy (NeuronPerf's return_timers)
    keep_calls: int = 0
    #: after its Result the copy waits for Reconfigure or Release instead of exiting
    reuse: bool = False
    #: load only, ahead of the configuration that needs the copy: Ready, then wait
    #: (no warm-up, no measurement) for Reconfigure or Release
    preload: bool = False
    #: after its Result the copy waits for another Go (or Stop) instead of exiting
    repeat: bool = False
    #: calls slower than this (ns) are counted (Progress.over, Result.over); 0: not counted
    slo_ns: int = 0


class Setup(Message, kw_only=True):
    job: Job


class Loaded(Message, kw_only=True):
    """The model is loaded (and set up, inputs made): warm-up begins. Tells the
    supervisor which stage a copy that dies before Ready died in."""


class Reconfigure(Message, kw_only=True):
    """The next configuration for a copy that has its model loaded: the same model
    (the supervisor checks what the copy holds), new workers, inputs and timing."""

    job: Job


class Release(Message, kw_only=True):
    """A kept copy is not needed any more: it exits (code 0)."""


class Ready(Message, kw_only=True):
    load_ns: int
    setup_ns: int = 0
    env_setup_ns: int = 0
    warmup_ns: int
    warmup_calls: int = 0
    #: with ``Job.keep_calls``: stage -> [start, end] (perf_counter_ns) of env_setup, load, setup, warmup
    stamps: dict[str, list[int]] = {}
    #: the copy was already loaded (Reconfigure): load_ns, setup_ns and env_setup_ns are 0
    reused: bool = False


class Go(Message, kw_only=True):
    go_at_ns: int
    stop_at_ns: int
    #: a repeat job's load for this measurement ("closed", "poisson", "constant"); "" keeps the job's
    load_mode: str = ""
    #: the open loop's rate for this measurement (calls/s of this copy); with ``load_mode``
    rate_per_copy: float = 0.0


#: the reason of the Stop that ends a repeat job between measurements
STOP_DONE = "done"


class Stop(Message, kw_only=True):
    reason: str = "deadline"


class Progress(Message, kw_only=True):
    window: int
    completed: int
    #: of those, calls slower than the job's ``slo_ns``
    over: int = 0


class Hist(msgspec.Struct, array_like=True):
    """A sparse log-linear histogram (see npf_core.results.stats): bucket indices and counts,
    plus exact count, sum, min and max, all in nanoseconds."""

    index: list[int]
    counts: list[int]
    n: int
    total: int
    lo: int
    hi: int


class CallStamps(msgspec.Struct, kw_only=True):
    """One worker's kept calls (``Job.keep_calls``): ``stamps`` holds ``n`` rows of ``k``
    int64 ``perf_counter_ns`` stamps (row-major, native byte order); ``stages`` maps a
    stage to its (start, end) columns, ``e2e`` included. ``completed`` counts every call
    of the worker, kept or not; ``worker`` is its loop's [start, end]."""

    n: int
    k: int
    stamps: bytes
    stages: dict[str, tuple[int, int]]
    completed: int
    worker: list[int] = []


class Result(Message, kw_only=True):
    completed: int
    interval_ns: int
    stages: dict[str, Hist]
    latency: Hist
    windows: list[int]
    scheduled: int = 0
    late: int = 0
    dropped: int = 0
    max_lag_ns: int = 0
    stopped_by: str = "deadline"
    #: evaluate mode: report name -> one pickled ``vars(metric)`` per worker thread
    #: (the state only: the supervisor rebuilds each with the class it resolved)
    metric_states: dict[str, list[bytes]] = {}
    eval_examples: int = 0
    #: with ``Job.keep_calls``: one per worker thread
    calls: list[CallStamps] = []
    #: calls slower than the job's ``slo_ns``
    over: int = 0


class Failed(Message, kw_only=True):
    stage: str
    type: str
    message: str
    traceback: str = ""


AnyMessage = Union[Hello, Setup, Loaded, Ready, Go, Stop, Progress, Result, Failed, Reconfigure, Release]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyMessage)


def encode_frame(msg: Message) -> bytes:
    """One message as a length-prefixed frame."""
    body = _encoder.encode(msg)
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"message {type(msg).__name__} is {len(body)} bytes, over the {MAX_FRAME}-byte limit")
    return _HEADER.pack(len(body)) + body


def decode_frames(buffer: bytearray, max_frame: int = MAX_FRAME) -> list[Message]:
    """Take every complete frame off the front of ``buffer`` (which is consumed)."""
    out: list[Message] = []
    while len(buffer) >= 4:
        (size,) = _HEADER.unpack_from(buffer)
        if size > max_frame:
            raise ProtocolError(
                f"frame of {size} bytes announced, over the {max_frame}-byte limit (garbage on the wire?)"
            )
        if len(buffer) < 4 + size:
            break
        body = bytes(buffer[4 : 4 + size])
        del buffer[: 4 + size]
        try:
            out.append(_decoder.decode(body))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"undecodable message on the wire: {exc}") from None
    return out


class Channel:
    """The blocking end of the wire, used in the benchmarker process."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        self.sock = sock
        self._buffer = bytearray()
        self._pending: list[Message] = []
        self._send_lock = threading.Lock()

    def send(self, msg: Message) -> None:
        frame = encode_frame(msg)
        with self._send_lock:
            self.sock.sendall(frame)

    def recv(self, timeout: float | None = None) -> Message | None:
        """The next message; None on timeout. Raises EOFError when the peer is gone."""
        while not self._pending:
            try:
                readable, _, _ = select.select([self.sock], [], [], timeout)
                if not readable:
                    return None
                chunk = self.sock.recv(1 << 16)
            except OSError as exc:
                raise EOFError(str(exc)) from None
            if not chunk:
                raise EOFError("supervisor closed the channel")
            self._buffer += chunk
            self._pending.extend(decode_frames(self._buffer))
        return self._pending.pop(0)
