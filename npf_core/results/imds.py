"""The EC2 instance type, from the instance metadata service (IMDSv2), for reports.

Never slows a run off EC2: when the machine's DMI says it is not an Amazon machine,
no request is sent at all; otherwise the two requests (a session token, then the
instance type) each wait at most ``NPF_IMDS_TIMEOUT_S`` (0.5 s). Found once per
process. ``NPF_IMDS_ENDPOINT`` overrides the endpoint (tests use a local server),
``NPF_IMDS_DISABLE=1`` turns the lookup off.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["DEFAULT_ENDPOINT", "instance_type", "on_ec2"]

DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_TTL_S = 60
_DMI = ("/sys/devices/virtual/dmi/id/sys_vendor", "/sys/devices/virtual/dmi/id/board_vendor",
        "/sys/devices/virtual/dmi/id/bios_vendor")  # fmt: skip
_lock = threading.Lock()
_cache: dict[str, str | None] = {}


def on_ec2(dmi_files: tuple[str, ...] = _DMI) -> bool | None:
    """True / False from the DMI vendor strings (EC2 reports "Amazon EC2"); None when unknown."""
    seen = False
    for f in dmi_files:
        try:
            text = Path(f).read_text(errors="replace").lower()
        except OSError:
            continue
        seen = True
        if "amazon" in text:
            return True
    return False if seen else None


def _request(url: str, method: str, headers: dict[str, str], timeout: float) -> str:
    req = urllib.request.Request(url, method=method, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    with opener.open(req, timeout=timeout) as resp:
        return resp.read(256).decode("ascii", errors="replace").strip()


def lookup(endpoint: str, timeout: float) -> str | None:
    """The instance type from ``endpoint`` (IMDSv2), or None when it does not answer in time."""
    try:
        token = _request(f"{endpoint}/latest/api/token", "PUT",
                         {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_S)}, timeout)  # fmt: skip
        value = _request(f"{endpoint}/latest/meta-data/instance-type", "GET",
                         {"X-aws-ec2-metadata-token": token}, timeout)  # fmt: skip
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return value if value and len(value) < 64 and " " not in value else None


def instance_type() -> str | None:
    """This machine's EC2 instance type (e.g. ``"inf2.xlarge"``), or None off EC2."""
    if os.environ.get("NPF_IMDS_DISABLE") == "1":
        return None
    endpoint = os.environ.get("NPF_IMDS_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")
    with _lock:
        if endpoint in _cache:
            return _cache[endpoint]
    if endpoint == DEFAULT_ENDPOINT and on_ec2() is False:
        found = None
    else:
        found = lookup(endpoint, float(os.environ.get("NPF_IMDS_TIMEOUT_S", "0.5")))
    with _lock:
        _cache[endpoint] = found
    return found
