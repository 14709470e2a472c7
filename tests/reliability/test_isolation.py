"""What one model copy can do to the others and to the machine (issue 20): the
run's object payload is sealed, so a copy cannot change what later copies read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import npf_core
from npf_core.wire import transfer

from .conftest import sweep_spec


def _payload_fd() -> int | None:
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("/memfd:npf-objects"):
                return int(name)
        except OSError:
            continue
    return None


def test_the_payload_cannot_be_written_resized_or_unsealed(tmp_path: Path) -> None:
    import fcntl
    import mmap

    payload = transfer.pack({"<object:model.target>": [1, 2, 3]}, [], "fresh")
    assert payload is not None
    try:
        with pytest.raises(PermissionError):
            os.pwrite(payload.fd, b"X", 0)
        with pytest.raises(PermissionError):
            os.ftruncate(payload.fd, 1)
        with pytest.raises(PermissionError):
            os.ftruncate(payload.fd, payload.size * 2)
        with pytest.raises(PermissionError):
            mmap.mmap(payload.fd, 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        with pytest.raises(PermissionError):
            fcntl.fcntl(payload.fd, fcntl.F_ADD_SEALS, 0)  # F_SEAL_SEAL: no seal can be taken off
        assert transfer.load_objects(payload.fd) == {"<object:model.target>": [1, 2, 3]}
    finally:
        payload.close()


@pytest.mark.parametrize("method", ["fresh", "zygote"])
def test_a_copy_cannot_change_what_later_copies_read(method: str, tmp_path: Path) -> None:
    """Each copy tries to overwrite the payload it inherited, then reports what it read;
    every copy, of every configuration, reads the original."""
    marks = tmp_path / "marks"
    marks.mkdir()
    table = [7.0] * 1000  # travels in the payload with the model

    class Tamperer:
        def __init__(self) -> None:
            fd = _payload_fd()
            outcome = "no payload"
            if fd is not None:
                try:
                    os.pwrite(fd, b"\xff" * 4096, 4096)
                    outcome = "wrote"
                except OSError as exc:
                    outcome = f"refused {exc.errno}"
            (marks / f"{os.getpid()}.txt").write_text(f"{outcome} {sum(table)}")

        def __call__(self, *inputs: Any) -> int:
            return 1

    spec = sweep_spec(
        tmp_path / "out", model={"framework": "python", "target": Tamperer}, n_models=[2],
        workers_per_model=[1, 2], start_method=method, duration_s=0.05,
    )  # fmt: skip
    reports = npf_core.benchmark(spec)
    assert [r.status for r in reports] == ["ok", "ok"], [r.error for r in reports]
    seen = sorted(p.read_text() for p in marks.iterdir())
    assert len(seen) == 4
    assert all(s.startswith("refused") and s.endswith(" 7000.0") for s in seen), seen
