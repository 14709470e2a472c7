"""resolve_reference: import paths and file paths, and no half-executed module."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from npf_core.plugin import resolve_reference


def test_package_and_file_references(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("class A:\n    class B:\n        x = 3\n")
    assert resolve_reference("m.py:A.B", tmp_path, {}).x == 3
    assert resolve_reference("os.path:join", tmp_path, {}) is __import__("os").path.join
    with pytest.raises(AttributeError, match="has no attribute 'C'"):
        resolve_reference("m.py:C", tmp_path, {})


def test_threads_resolving_one_slow_file_all_see_it_whole(tmp_path: Path) -> None:
    """Worker threads resolve the same file at once while its top level is still
    running (a slow import): none may see the module half-executed."""
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(0.3)\nMODEL = 'ready'\n")
    got: list[object] = []
    start = threading.Barrier(4)

    def resolve() -> None:
        start.wait()
        try:
            got.append(resolve_reference("slow.py:MODEL", tmp_path, {}))
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            got.append(exc)

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["ready"] * 4


def test_a_file_that_fails_to_import_can_be_tried_again(tmp_path: Path) -> None:
    f = tmp_path / "flaky.py"
    f.write_text("raise RuntimeError('not yet')\n")
    with pytest.raises(RuntimeError, match="not yet"):
        resolve_reference("flaky.py:X", tmp_path, {})
    f.write_text("X = 1\n")
    assert resolve_reference("flaky.py:X", tmp_path, {}) == 1
