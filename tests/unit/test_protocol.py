"""The wire: length-prefixed msgpack frames of a typed, tagged union."""

from __future__ import annotations

import socket
import struct
import threading

import msgspec
import pytest

from npf_core.errors import ProtocolError
from npf_core.spec.schema import DeviceSpec, InputItem
from npf_core.wire import protocol as pr


def job() -> pr.Job:
    return pr.Job(
        config_id="m-b1-p1-n1-w1",
        copy_index=0,
        n_models=1,
        workers=2,
        batch_size=4,
        pipeline_size=1,
        framework="python",
        model_kind="target",
        model_ref="models.py:Sleepy",
        inputs=[InputItem(shape=[4, 8], dtype="float32")],
        assignment=pr.AssignmentBlock.of({"env": {"X": 1}, "cpus": [0, 1], "vendor_key": "kept"}),
        device=DeviceSpec(),
        load_mode="closed",
        warmup_iterations=1,
        warmup_s=0.0,
        window_ns=500_000_000,
    )


MESSAGES: list[pr.Message] = [
    pr.Hello(protocol=pr.PROTOCOL_VERSION, pid=1234),
    pr.Setup(job=job()),
    pr.Loaded(),
    pr.Ready(load_ns=10, setup_ns=2, warmup_ns=30, warmup_calls=1),
    pr.Go(go_at_ns=1_000, stop_at_ns=2_000),
    pr.Go(go_at_ns=1_000, stop_at_ns=2_000, load_mode="poisson", rate_per_copy=120.5),  # a capacity probe
    pr.Stop(reason="stable"),
    pr.Progress(window=3, completed=99),
    pr.Progress(window=3, completed=99, over=4),
    pr.Result(
        completed=7,
        interval_ns=1_000_000,
        stages={"infer": pr.Hist([1, 5], [3, 4], 7, 700, 90, 110)},
        latency=pr.Hist([2], [7], 7, 800, 100, 120),
        windows=[3, 4],
        stopped_by="deadline",
    ),
    pr.Failed(stage="load", type="ImportError", message="no module x", traceback="Traceback ..."),
    pr.Reconfigure(job=msgspec.structs.replace(job(), workers=2, batch_size=8, reuse=True)),
    pr.Ready(load_ns=0, warmup_ns=30, reused=True),
    pr.Release(),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: pr.Message) -> None:
    buf = bytearray(pr.encode_frame(msg))
    (size,) = struct.unpack(">I", buf[:4])
    assert size == len(buf) - 4
    out = pr.decode_frames(buf)
    assert out == [msg]
    assert type(out[0]) is type(msg)
    assert buf == b""


def test_many_frames_in_one_buffer_keep_their_order() -> None:
    buf = bytearray(b"".join(pr.encode_frame(m) for m in MESSAGES))
    assert pr.decode_frames(buf) == MESSAGES
    assert not buf


def test_partial_frames_wait_for_the_rest() -> None:
    data = b"".join(pr.encode_frame(m) for m in MESSAGES)
    buf = bytearray()
    got: list[pr.Message] = []
    for i in range(len(data)):  # one byte at a time: the worst a socket can do
        buf += data[i : i + 1]
        got += pr.decode_frames(buf)
    assert got == MESSAGES
    assert not buf


def test_a_truncated_header_or_body_stays_buffered() -> None:
    frame = pr.encode_frame(pr.Stop())
    for cut in (1, 3, 4, len(frame) - 1):
        buf = bytearray(frame[:cut])
        assert pr.decode_frames(buf) == []
        assert bytes(buf) == frame[:cut]


def test_oversized_frame_announced_is_refused_before_reading_it() -> None:
    buf = bytearray(struct.pack(">I", pr.MAX_FRAME + 1))
    with pytest.raises(ProtocolError, match="over the"):
        pr.decode_frames(buf)
    small = bytearray(pr.encode_frame(pr.Progress(window=0, completed=1)))
    with pytest.raises(ProtocolError):
        pr.decode_frames(small, max_frame=4)


def test_oversized_message_is_refused_by_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pr, "MAX_FRAME", 16)
    with pytest.raises(ProtocolError, match="over the 16-byte limit"):
        pr.encode_frame(pr.Failed(stage="call", type="X", message="m" * 100))


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # never-used msgpack byte
        msgspec.msgpack.encode({"msg": "Nonsense", "x": 1}),  # unknown tag
        msgspec.msgpack.encode({"msg": "Go", "go_at_ns": "soon", "stop_at_ns": 1}),  # wrong type
        msgspec.msgpack.encode({"msg": "Hello"}),  # missing fields
        msgspec.msgpack.encode([1, 2, 3]),  # not a message at all
    ],
    ids=["bad-msgpack", "unknown-tag", "wrong-type", "missing-fields", "array"],
)
def test_garbage_is_a_protocol_error(body: bytes) -> None:
    buf = bytearray(struct.pack(">I", len(body)) + body)
    with pytest.raises(ProtocolError, match="undecodable message"):
        pr.decode_frames(buf)


def test_text_on_the_wire_is_a_protocol_error() -> None:
    buf = bytearray(b"Traceback (most recent call last):\n")  # 'Trac' as a length: ~1.4 GB
    with pytest.raises(ProtocolError, match="garbage on the wire"):
        pr.decode_frames(buf)


def test_unknown_extra_fields_are_ignored_for_compatibility() -> None:
    body = msgspec.msgpack.encode({"msg": "Stop", "reason": "x", "added_in_v2": [1, 2]})
    assert pr.decode_frames(bytearray(struct.pack(">I", len(body)) + body)) == [pr.Stop(reason="x")]


def test_channel_over_a_socketpair() -> None:
    a, b = socket.socketpair()
    try:
        chan = pr.Channel(b)
        big = pr.Failed(stage="call", type="E", message="x" * 300_000)  # several recv() calls

        def peer() -> None:
            a.sendall(b"".join(pr.encode_frame(m) for m in [*MESSAGES, big]))

        t = threading.Thread(target=peer)
        t.start()
        got = [chan.recv(5) for _ in range(len(MESSAGES) + 1)]
        t.join()
        assert got == [*MESSAGES, big]
        assert chan.recv(0.01) is None  # nothing more: a timeout, not an error
        chan.send(pr.Stop(reason="deadline"))
        buf = bytearray(a.recv(1 << 16))
        assert pr.decode_frames(buf) == [pr.Stop(reason="deadline")]
        a.close()
        with pytest.raises(EOFError):
            chan.recv(5)
    finally:
        a.close()
        b.close()


def test_an_assignment_travels_typed_and_keeps_what_a_plugin_added() -> None:
    block = pr.AssignmentBlock.of({"env": {"X": 1}, "cpus": (0, 1), "label": "cpu0-1", "vendor_key": [3]})
    back = msgspec.msgpack.decode(msgspec.msgpack.encode(block), type=pr.AssignmentBlock)
    assert back.env == {"X": "1"} and back.cpus == [0, 1] and back.label == "cpu0-1"
    assert back.as_dict() == {"env": {"X": "1"}, "cpus": [0, 1], "devices": [], "label": "cpu0-1", "vendor_key": [3]}
