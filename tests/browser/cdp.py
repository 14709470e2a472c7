"""Open a page in headless Chromium, offline, and record what a person would see:
console errors, uncaught exceptions, network requests, a full-page screenshot.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe``
(JSON messages, NUL-terminated, on the child's fds 3 and 4): no port is opened.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("NPF_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_S = 60.0


@dataclass
class PageVisit:
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    evaluated: Any = None
    screenshot: bytes = b""
    #: PNG screenshots of the boxes the expression named (its value's "boxes": {name: [x, y, w, h]})
    clips: dict[str, bytes] = field(default_factory=dict)


def _high_fd(fd: int) -> int:
    """A copy of ``fd`` numbered 10 or more (so the shell's 3< / 4> cannot clobber it)."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return new


class _Pipe:
    def __init__(self, to_child: int, from_child: int) -> None:
        self.w, self.r = to_child, from_child
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            m = self._read(deadline - time.monotonic())
            self.events.append(m)
            if m.get("method") == method:
                return m

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (not self.buf and not select.select([self.r], [], [], left)[0]):
                return
            self.events.append(self._read(max(left, 0.1)))

    def _read(self, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed its DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)


def visit(url: str, expression: str, *, width: int = 1280) -> PageVisit:
    """Load ``url``, evaluate ``expression`` (its value returned by value), take a
    full-page screenshot; record console errors, exceptions and every request."""
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    a_r, b_w = _high_fd(a_r), _high_fd(b_w)
    profile = tempfile.mkdtemp(prefix="npf-chromium-")
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
        "--disable-component-update", "--disable-dev-shm-usage", "--remote-debugging-pipe",
        f"--user-data-dir={profile}", f"--window-size={width},900", "about:blank",
    ]  # fmt: skip
    proc = subprocess.Popen(
        ["bash", "-c", f'exec "$@" 3<&{a_r} 4>&{b_w} {a_r}<&- {b_w}>&-', "chromium", *args],
        pass_fds=(a_r, b_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    os.close(a_r)
    os.close(b_w)
    pipe = _Pipe(a_w, b_r)
    out = PageVisit()
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            pipe.send(f"{domain}.enable", session=sid)
        pipe.send("Page.navigate", {"url": url}, session=sid)
        pipe.wait_event("Page.loadEventFired")
        pipe.drain(0.5)
        height = pipe.send("Runtime.evaluate", {"expression": "document.documentElement.scrollHeight",
                                                "returnByValue": True}, session=sid)["result"]["value"]  # fmt: skip
        pipe.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": int(height), "deviceScaleFactor": 1, "mobile": False}, session=sid)
        pipe.drain(0.3)
        res = pipe.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=sid)
        if "exceptionDetails" in res:
            out.errors.append(f"evaluate: {res['exceptionDetails']}")
        out.evaluated = res.get("result", {}).get("value")
        shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=sid)
        out.screenshot = base64.b64decode(shot["data"])
        boxes = out.evaluated.get("boxes", {}) if isinstance(out.evaluated, dict) else {}
        for name, (x, y, w, h) in boxes.items():
            clip = {"x": x, "y": y, "width": w, "height": h, "scale": 1}
            shot = pipe.send("Page.captureScreenshot", {"format": "png", "clip": clip}, session=sid)
            out.clips[name] = base64.b64decode(shot["data"])
        pipe.drain(0.2)
        try:
            pipe.send("Browser.close")
        except (EOFError, TimeoutError):
            pass
    finally:
        os.close(a_w)
        os.close(b_r)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # what chromium started (zygotes, renderers)
        except ProcessLookupError:
            pass
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
        subprocess.run(["rm", "-rf", profile], check=False)
    for e in pipe.events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.errors.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = (str(a.get("value", a.get("description"))) for a in p["args"])
            out.errors.append("console.error: " + " ".join(args))
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            out.errors.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}".rstrip())
        elif m == "Network.requestWillBeSent":
            out.requests.append(p["request"]["url"])
    return out


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit RGB/RGBA, non-interlaced PNG."""
    import numpy as np

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = ctype = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
        elif kind == b"IDAT":
            idat += body
    bpp = 4 if ctype == 6 else 3
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width * bpp + 1)
    prev = np.zeros((width, bpp), dtype=np.int64)
    rows: list[bytes] = []
    for y in range(height):
        f = int(raw[y, 0])
        line = raw[y, 1:].reshape(width, bpp).astype(np.int64)
        if f == 1:
            line = np.cumsum(line, axis=0) & 255
        elif f == 2:
            line = (line + prev) & 255
        elif f in (3, 4):
            cur = line.tolist()
            up = prev.tolist()
            left = [0] * bpp
            ul = [0] * bpp
            for x in range(width):
                px, u = cur[x], up[x]
                for c in range(bpp):
                    if f == 3:
                        px[c] = (px[c] + (left[c] + u[c]) // 2) & 255
                    else:
                        a, b, d = left[c], u[c], ul[c]
                        p = a + b - d
                        pa, pb, pc = abs(p - a), abs(p - b), abs(p - d)
                        px[c] = (px[c] + (a if pa <= pb and pa <= pc else b if pb <= pc else d)) & 255
                left, ul = px, u
            line = np.asarray(cur, dtype=np.int64)
        prev = line
        rows.append(line[:, :3].astype(np.uint8).tobytes())
    return width, height, rows


def count_colour(rows: list[bytes], box: tuple[int, int, int, int], rgb: tuple[int, int, int], tol: int = 12) -> int:
    """Pixels within ``tol`` of ``rgb`` in the box (x, y, w, h)."""
    x0, y0, w, h = box
    n = 0
    for row in rows[max(y0, 0) : y0 + h]:
        for x in range(max(x0, 0), min(x0 + w, len(row) // 3)):
            r, g, b = row[3 * x : 3 * x + 3]
            if abs(r - rgb[0]) <= tol and abs(g - rgb[1]) <= tol and abs(b - rgb[2]) <= tol:
                n += 1
    return n


def page_url(path: Path) -> str:
    return path.resolve().as_uri()


def visit_offline(page: Path, expression: str, shot: str) -> PageVisit:
    """:func:`visit` a file page, keep its screenshot as ``shot`` (in $NPF_SCREENSHOT_DIR,
    else beside the page) and check it loaded with no console error and fetched nothing
    but local files."""
    seen = visit(page_url(page), expression)
    shots = Path(os.environ.get("NPF_SCREENSHOT_DIR") or page.parent)
    shots.mkdir(parents=True, exist_ok=True)
    (shots / shot).write_bytes(seen.screenshot)
    assert seen.errors == []
    assert all(u.startswith("file://") for u in seen.requests), seen.requests  # nothing fetched from elsewhere
    return seen
