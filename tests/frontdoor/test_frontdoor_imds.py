"""instance_type from IMDSv2: a local server on 127.0.0.1 stands in for the metadata
service; no test sends traffic anywhere else."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from npf_core.results import imds


class Imds(BaseHTTPRequestHandler):
    token = "tok-123"
    seen: list[tuple[str, str, str | None]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_PUT(self) -> None:  # noqa: N802
        self.seen.append(("PUT", self.path, self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")))
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._reply(200, self.token)
        else:
            self._reply(400, "bad")

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append(("GET", self.path, self.headers.get("X-aws-ec2-metadata-token")))
        if self.headers.get("X-aws-ec2-metadata-token") != self.token:
            self._reply(401, "unauthorized")  # IMDSv2 only: no token, no answer
        elif self.path == "/latest/meta-data/instance-type":
            self._reply(200, "inf2.xlarge")
        else:
            self._reply(404, "")

    def _reply(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("NPF_IMDS_DISABLE", raising=False)
    monkeypatch.setenv("NPF_IMDS_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    imds._cache.clear()
    yield
    imds._cache.clear()


@pytest.fixture
def server() -> Iterator[str]:
    Imds.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Imds)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_instance_type_from_imdsv2(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPF_IMDS_ENDPOINT", server)
    assert imds.instance_type() == "inf2.xlarge"
    assert [s[:2] for s in Imds.seen] == [("PUT", "/latest/api/token"), ("GET", "/latest/meta-data/instance-type")]
    assert Imds.seen[1][2] == "tok-123"
    imds.instance_type()
    assert len(Imds.seen) == 2  # found once per process


def test_a_silent_endpoint_costs_at_most_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(8)  # accepts connections, never answers
    try:
        monkeypatch.setenv("NPF_IMDS_ENDPOINT", f"http://127.0.0.1:{sink.getsockname()[1]}")
        monkeypatch.setenv("NPF_IMDS_TIMEOUT_S", "0.2")
        t0 = time.monotonic()
        assert imds.instance_type() is None
        assert time.monotonic() - t0 < 1.5
    finally:
        sink.close()


def test_off_ec2_no_request_is_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vendor = tmp_path / "sys_vendor"
    vendor.write_text("QEMU\n")
    assert imds.on_ec2((str(vendor),)) is False
    vendor.write_text("Amazon EC2\n")
    assert imds.on_ec2((str(vendor),)) is True
    assert imds.on_ec2((str(tmp_path / "missing"),)) is None
    monkeypatch.setattr(imds, "on_ec2", lambda: False)
    monkeypatch.delenv("NPF_IMDS_ENDPOINT", raising=False)  # the real endpoint: must not be asked

    def no_network(*args: object, **kwargs: object) -> str:
        raise AssertionError("sent a request off EC2")

    monkeypatch.setattr(imds, "_request", no_network)
    assert imds.instance_type() is None
    monkeypatch.setenv("NPF_IMDS_DISABLE", "1")
    assert imds.instance_type() is None


def test_reports_carry_the_instance_type(server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import numpy as np
    from fd_models import Doubler

    import npf_core as npf

    monkeypatch.setenv("NPF_IMDS_ENDPOINT", server)
    (r,) = npf.cpu.benchmark(Doubler, np.ones(2), n_models=1, workers_per_model=1, duration=0.3, verbosity=0)
    assert r["instance_type"] == "inf2.xlarge"
