"""Plugin discovery and registries (in process; the CLI and real runs are in
tests/integration/test_plugin_package.py)."""

from __future__ import annotations

import logging
import re
from importlib.metadata import distribution

import pytest

from npf_core.errors import PluginError, PluginLoadError, UnknownPluginError
from npf_core.plugin.hookspecs import Device, Framework, Registry, Reporter, hookimpl
from npf_core.plugin.manager import ENTRY_POINT_GROUP, get_plugin_manager, get_plugins

BUILTIN = {
    "framework": {"python"},
    "device": {"cpu"},
    "reporter": {"console", "json", "csv"},
}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_builtins_and_the_demo_package_are_discovered_through_entry_points() -> None:
    plugins = get_plugins()
    described = plugins.describe()
    for kind, names in BUILTIN.items():
        assert names <= {n for n, _ in described[kind]}, kind
    assert "demo" in plugins.frameworks
    assert "demo-report" in plugins.reporters
    dist = distribution("npf-demo-plugin")
    assert any(ep.group == ENTRY_POINT_GROUP and ep.name == "demo" for ep in dist.entry_points)
    origin = plugins.frameworks.origin("demo")
    assert norm(dist.metadata["Name"]) in norm(origin) and dist.version in origin
    assert re.fullmatch(r"python \(npf \S+\)", plugins.frameworks.origin("python"))


def test_disable_autoload_leaves_only_what_is_registered_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPF_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert get_plugins().frameworks.names() == []

    class Mine(Framework):
        pass

    class Plugin:
        @hookimpl
        def npf_register_frameworks(self, registry: Registry[Framework]) -> None:
            registry.add("mine", Mine)

    plugins = get_plugins(extra=[Plugin()])
    assert plugins.frameworks.names() == ["mine"]
    assert plugins.framework("mine", {}).options == {}


def test_disable_one_plugin_by_entry_point_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPF_DISABLE_PLUGINS", "demo")
    plugins = get_plugins()
    assert "demo" not in plugins.frameworks and "python" in plugins.frameworks


def test_unknown_name_lists_the_installed_names() -> None:
    plugins = get_plugins()
    with pytest.raises(UnknownPluginError) as info:
        plugins.framework("pytorch", {})
    err = info.value
    assert err.kind == "framework" and err.name == "pytorch"
    assert {"python", "demo"} <= set(err.installed)
    listed = str(err).split("installed framework plugins: ")[1].split(" (")[0].split(", ")
    assert listed == sorted(listed) and {"demo", "python"} <= set(listed)
    assert str(err).startswith("spec $.model.framework: unknown framework plugin 'pytorch'")


def test_html_reporter_is_built_in() -> None:
    plugins = get_plugins()
    assert plugins.reporters.get("html", "output.reporters[0]").__name__ == "HtmlReporter"


def test_registry_refuses_duplicates_and_non_subclasses() -> None:
    reg: Registry[Reporter] = Registry("reporter", Reporter)

    class R(Reporter):
        pass

    reg.add("r", R)
    with pytest.raises(PluginError, match="registered twice"):
        reg.add("r", R)
    with pytest.raises(PluginError, match="subclass of npf_core.Reporter"):
        reg.add("x", Device)  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="non-empty string"):
        reg.add("", R)


def test_two_plugins_claiming_one_name_is_an_error() -> None:
    class Clash:
        @hookimpl
        def npf_register_devices(self, registry: Registry[Device]) -> None:
            registry.add("cpu", Device)

    with pytest.raises(PluginError, match="device plugin 'cpu' is registered twice"):
        get_plugins(extra=[Clash()])


def test_lifecycle_hooks_observe_and_their_errors_are_not_fatal() -> None:
    seen: list[object] = []

    class Observer:
        @hookimpl
        def npf_run_finished(self, event: object) -> None:
            seen.append(event)

    class Broken:
        @hookimpl
        def npf_run_finished(self) -> None:  # fewer arguments than the spec: allowed
            raise RuntimeError("observer bug")

    plugins = get_plugins(extra=[Observer(), Broken()])
    plugins.notify("npf_run_finished", "the-event")
    assert seen == ["the-event"]


def test_a_hook_not_in_the_contract_is_refused() -> None:
    class Typo:
        @hookimpl
        def npf_register_framework(self, registry: object) -> None:  # missing "s"
            pass

    with pytest.raises(Exception, match="npf_register_framework"):
        get_plugin_manager(autoload=False, extra=[Typo()])


def test_broken_entry_point_is_a_plugin_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import npf_core.plugin.manager as plugins_mod

    bad = EntryPoint(name="broken", value="no_such_module_xyz.plugin", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins_mod, "entry_points", lambda group: [bad])
    with pytest.raises(PluginLoadError) as info:
        get_plugin_manager()
    assert "broken = no_such_module_xyz.plugin" in str(info.value)
    assert "NPF_DISABLE_PLUGINS" in str(info.value)


def test_hooks_run_through_pluggy_so_a_wrapper_sees_every_observer_call() -> None:
    calls: list[str] = []

    class Observer:
        @hookimpl
        def npf_run_finished(self, event: object) -> None:
            calls.append(f"observer {event}")

    class Wrapper:
        @hookimpl(wrapper=True)
        def npf_run_finished(self, event: object):  # type: ignore[no-untyped-def]
            calls.append("before")
            result = yield
            calls.append("after")
            return result

    plugins = get_plugins(extra=[Observer(), Wrapper()])
    plugins.notify("npf_run_finished", "E")
    assert calls == ["before", "observer E", "after"]


def test_observers_run_in_pluggys_order_the_last_registered_first() -> None:
    order: list[str] = []

    def observer(label: str, **marks: bool) -> object:
        class Observer:
            @hookimpl(**marks)
            def npf_run_started(self) -> None:
                order.append(label)

        return Observer()

    plugins = get_plugins(extra=[observer("a"), observer("b"), observer("first", tryfirst=True)])
    plugins.notify("npf_run_started", None)
    assert order == ["first", "b", "a"]


def test_trace_plugins_logs_every_hook_call(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NPF_TRACE_PLUGINS", "1")

    class Observer:
        @hookimpl
        def npf_config_started(self, event: object) -> None:
            pass

    with caplog.at_level(logging.DEBUG, logger="npf"):
        plugins = get_plugins(extra=[Observer()])
        plugins.notify("npf_config_started", "cfg-7")
    logs = [r.npf_event for r in caplog.records if r.name == "npf.plugin.manager"]  # type: ignore[attr-defined]
    traces = [e["message"] for e in logs if e["event"] == "plugin trace"]
    assert any("npf_register_frameworks" in t for t in traces)
    assert any("npf_config_started" in t and "cfg-7" in t for t in traces)


def test_a_plugin_breaking_the_hook_contract_is_a_user_error() -> None:
    from npf_core.errors import UserError

    class BadArgs:
        @hookimpl
        def npf_run_finished(self, event: object, no_such_argument: int) -> None:
            pass

    with pytest.raises(UserError, match="no_such_argument"):
        get_plugins(extra=[BadArgs()])


def test_cpu_share_divides_the_usable_cpus_unless_the_copy_is_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    from pathlib import Path
    from types import SimpleNamespace

    from npf_core.plugin import Assignment, ChildContext

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)

    def share(n_models: int, cpus: list[int] | None) -> int:
        ctx = ChildContext(job=SimpleNamespace(n_models=n_models), base_dir=Path("."),
                           assignment=Assignment(cpus=cpus), device=Device({}), objects={})  # fmt: skip
        return ctx.cpu_share()

    assert share(1, None) == 6
    assert share(4, None) == 1  # 6 // 4
    assert share(8, None) == 1  # never 0
    assert share(3, [0, 1]) == 6  # pinned: the affinity already is the copy's share
