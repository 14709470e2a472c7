"""The neuron device's hints for the runtime's start-up failures (NeuronPerf issues
#493 and #1040), and that the other devices give none."""

from __future__ import annotations

from npf_core.plugin.hookspecs import Device
from npf_plugins.devices.neuron import NeuronDevice


def test_neuron_failures_get_what_to_do() -> None:
    dev = NeuronDevice({})
    busy = ("load: RuntimeError: x\n"
            "ERROR  NRT:nrt_allocate_neuron_cores  NeuronCore(s) not available - Requested:1 Available:0")
    assert "another process holds the NeuronCores" in (dev.failure_hint(busy) or "")
    child = "warmup: RuntimeError: nrt_init: Incompatible runtime state: NRT_STATE_CHILD"
    assert "start_method 'fresh'" in (dev.failure_hint(child) or "")
    assert dev.failure_hint("call: ValueError: shapes do not match") is None
    assert Device({}).failure_hint(busy) is None
