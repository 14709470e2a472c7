"""The core owns results.json: written after every configuration and read by
``--resume`` whatever reporters run; and building a run never blocks the
embedding application's event loop, even on a device whose probe is slow."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from npf_core import Supervisor
from npf_core.plugin import Device, Registry, hookimpl
from npf_core.results.store import resolve_results

from .conftest import sweep_spec

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("reporters", [[], ["console", "csv"], ["csv"], ["json"]])
async def test_resume_works_with_any_reporter_set(tmp_path: Path, reporters: list[str]) -> None:
    out = tmp_path / "out"
    spec = sweep_spec(out, workers_per_model=[1, 2], start_method="fork")
    spec["output"]["reporters"] = reporters
    first = await Supervisor(spec).run()
    assert [r.status for r in first] == ["ok", "ok"]
    saved = json.loads(resolve_results(out).read_text())
    assert [r["config_id"] for r in saved["reports"]] == [r.config_id for r in first]

    sup = Supervisor(spec, resume=True)
    again = await sup.run()
    # nothing ran again: the very same reports (their measured figures) came back
    assert [r.throughput_avg for r in again] == [r.throughput_avg for r in first]
    assert [r.start_dts for r in again] == [r.start_dts for r in first]


async def test_resume_takes_results_written_with_position_ids(tmp_path: Path) -> None:
    """A run made before configuration ids named parameters (``Sleepy-i0-b1-...``, no
    input signature) resumes: nothing runs again, and the ids are today's."""
    out = tmp_path / "out"
    spec = sweep_spec(out, workers_per_model=[1, 2], start_method="fork")
    first = await Supervisor(spec).run()
    path = resolve_results(out)
    doc = json.loads(path.read_text())
    for r in doc["reports"]:
        r["config_id"] = r["config_id"].replace("Sleepy-", "Sleepy-i0-")
        del r["input_signature"]
    for key in ("plan", "label", "commit", "commit_dirty", "started_at"):
        del doc[key]
    path.write_text(json.dumps(doc))
    again = await Supervisor(spec, resume=True).run()
    assert [r.start_dts for r in again] == [r.start_dts for r in first]  # not run again
    assert [r.config_id for r in again] == ["Sleepy-b1-p1-n1-w1", "Sleepy-b1-p1-n1-w2"]
    assert {r.input_signature for r in again} == {"float32[1x4]"}


async def test_results_false_writes_no_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = sweep_spec(out, start_method="fork")
    spec["output"] = {"dir": str(out), "reporters": [], "results": False}
    (report,) = await Supervisor(spec).run()
    assert report.status == "ok"
    assert not out.exists() or list(out.iterdir()) == []


class SlowProbe(Device):
    """A cpu-like device whose probe blocks for a while (as nvidia-smi, or a
    ``python -c 'import torch'`` probe, can)."""

    PROBE_S = 1.5

    def check(self) -> None:
        time.sleep(self.PROBE_S)

    def count(self) -> int | None:
        time.sleep(self.PROBE_S)
        return 1


class SlowProbePlugin:
    @hookimpl
    def npf_register_devices(self, registry: Registry[Device]) -> None:
        registry.add("slow-probe", SlowProbe)


async def test_the_callers_loop_keeps_ticking_while_a_run_is_built_and_run(tmp_path: Path) -> None:
    spec = sweep_spec(tmp_path / "out", start_method="fork", duration_s=0.5)
    spec["device"] = "slow-probe"
    gaps: list[float] = []
    done = anyio.Event()

    async def heartbeat() -> None:
        last = time.monotonic()
        while not done.is_set():
            await anyio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat)
        await anyio.sleep(0.05)
        t0 = time.monotonic()
        sup = Supervisor(spec, extra_plugins=(SlowProbePlugin(),))  # cheap: decoding only
        reports = await sup.run()
        elapsed = time.monotonic() - t0
        done.set()
    assert [r.status for r in reports] == ["ok"]
    assert elapsed >= 2 * SlowProbe.PROBE_S  # the probes did run, once each
    assert len(gaps) > 100
    # a probe run on the loop would stall it for PROBE_S (1.5 s); the bound leaves room for
    # what a busy 2-core machine does to any thread now and then (a 131 ms gap seen once in CI)
    assert max(gaps) < SlowProbe.PROBE_S / 5, f"the event loop stalled for {max(gaps) * 1000:.0f} ms"
    assert sorted(gaps)[len(gaps) // 2] < 0.02  # and it ticked on time most of the run


async def test_a_user_error_found_while_building_raises_from_run(tmp_path: Path) -> None:
    from npf_core.errors import UnknownPluginError

    spec: dict[str, Any] = sweep_spec(tmp_path / "out", start_method="fork")
    spec["device"] = "no-such-device"
    sup = Supervisor(spec)
    with pytest.raises(UnknownPluginError, match="no-such-device"):
        await sup.run()
    with pytest.raises(UnknownPluginError):
        async with Supervisor(spec):
            pass
