"""What model copies print: their ``print()`` (in ``setup_fn``, ``preprocess_fn``, the
model's ``forward``, ...) and whatever else they write to stdout or stderr.

Each line is shown on the caller's stdout, marked with its copy (``[copy 0] ...``;
looked up at each write, so that a live display prints it above itself), and kept in
the run folder's ``copies.log`` (``CONFIG_ID copy N | ...``). Both are bounded: after
:data:`SHOW_LINES` lines of one copy in a configuration the rest goes to the file
only (one line says so), and the file stops growing at :data:`KEEP_BYTES`. The last
lines of a failed copy are also in its error report (``output_tail``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

__all__ = ["KEEP_BYTES", "LOG_NAME", "SHOW_LINES", "CopyOutput"]

LOG_NAME = "copies.log"
#: lines of one copy shown per configuration
SHOW_LINES = 200
#: how large copies.log may grow
KEEP_BYTES = 16 * 1024 * 1024


class CopyOutput:
    """Lines of every copy of a run: shown, and kept in ``folder`` (None: shown only)."""

    def __init__(self, folder: Path | None, *, show_lines: int = SHOW_LINES, keep_bytes: int = KEEP_BYTES) -> None:
        self.folder = folder
        self.show_lines = show_lines
        self.keep_bytes = keep_bytes
        self._partial: dict[tuple[str, int], bytearray] = {}
        self._shown: dict[tuple[str, int], int] = {}
        self._file: IO[str] | None = None
        self._kept = 0

    @property
    def path(self) -> Path | None:
        return None if self.folder is None else self.folder / LOG_NAME

    def feed(self, config_id: str, copy_index: int, data: bytes) -> None:
        """Bytes a copy wrote: each complete line is shown and kept."""
        key = (config_id, copy_index)
        buf = self._partial.setdefault(key, bytearray())
        buf += data
        *lines, rest = bytes(buf).split(b"\n")
        buf[:] = rest
        for line in lines:
            self._line(key, line.decode("utf-8", errors="replace").rstrip("\r"))

    def end(self, config_id: str, copy_index: int) -> None:
        """The copy is gone: its last line, if it had no newline."""
        buf = self._partial.pop((config_id, copy_index), None)
        if buf:
            self._line((config_id, copy_index), bytes(buf).decode("utf-8", errors="replace"))

    def close(self) -> None:
        for config_id, copy_index in list(self._partial):
            self.end(config_id, copy_index)
        if self._file is not None:
            self._file.close()
            self._file = None

    def _line(self, key: tuple[str, int], text: str) -> None:
        config_id, copy_index = key
        self._keep(f"{config_id} copy {copy_index} | {text}\n")
        shown = self._shown.get(key, 0)
        self._shown[key] = shown + 1
        if shown < self.show_lines:
            self._show(f"[copy {copy_index}] {text}\n")
        elif shown == self.show_lines:
            where = f"; the rest is in {self.path}" if self.path is not None else ""
            self._show(f"[copy {copy_index}] ... more output of this copy is not shown{where}\n")

    def _show(self, text: str) -> None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, ValueError):  # a closed or broken stdout: the file keeps it
            pass

    def _keep(self, text: str) -> None:
        if self.folder is None or self._kept >= self.keep_bytes:
            return
        try:
            if self._file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._file = open(self.folder / LOG_NAME, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            if self._kept + len(text) > self.keep_bytes:
                text = f"... copies.log stops here: {self.keep_bytes} bytes\n"
            self._file.write(text)
            self._file.flush()
            self._kept += len(text)
        except OSError:
            self.folder = None  # cannot keep it: shown only
