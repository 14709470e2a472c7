"""Launcher ``ray``: spread a sweep over the nodes of a Ray cluster (see docs/ray.md).

The driver (this process) plans the sweep as for a local run; each node it uses
gets one agent, a Ray actor (:class:`NodeAgent`, pinned with a hard node-affinity
strategy, holding the node's whole device resource) that runs the ordinary local
supervisor there for the whole run. The driver sends a node one configuration at a
time and the agent streams its events back (a Ray streaming generator); between
configurations the agent keeps its supervisor side: its zygote and, with
``reuse_copies``, the model copies it loaded. A benchmark needs its node to itself,
so configurations run in parallel only across nodes; a free node takes the next
configuration of the model it holds loaded.

Ray is imported only when a spec asks for this launcher: install ``npf[ray]``.
"""

from __future__ import annotations

import io
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
import msgspec

from npf_core.plugin import (
    DeviceUnavailable,
    ErrorInfo,
    Launcher,
    LaunchHost,
    PluginError,
    Registry,
    Report,
    RunConfig,
    SpecError,
    UserError,
    decode_options,
    error_report,
    hookimpl,
)
from npf_core.plugin import events as ev

__all__ = ["DEVICE_RESOURCES", "RayLauncher", "RayOptions"]

#: the Ray resource a device plugin's configurations need on a node
DEVICE_RESOURCES = {"neuron": "neuron_cores", "gpu": "GPU"}
_END = object()


class RayOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """``launcher.options`` of ``ray``."""

    #: the cluster: "auto" (the one this machine belongs to), "ray://host:10001", a
    #: GCS address, or null for a new single-machine Ray
    address: str | None = "auto"
    #: how model files and inputs reach the nodes: "shared" (the spec's folder is at
    #: the same path on every node) or "ship" (sent through Ray as the working dir)
    files: Literal["ship", "shared"] = "ship"
    #: the largest spec folder "ship" sends, in MB
    max_ship_mb: Annotated[float, msgspec.Meta(gt=0)] = 100.0
    #: a configuration whose node or Ray worker died is run again elsewhere this often
    retries: Annotated[int, msgspec.Meta(ge=0, le=5)] = 0
    #: the node resource that marks an eligible node; default from the device
    #: (neuron -> neuron_cores, gpu -> GPU, otherwise any node)
    node_resource: str | None = None
    #: only nodes whose label ``instance_label`` has this value (e.g. "inf2.xlarge")
    instance_type: str | None = None
    instance_label: str = "instance-type"
    #: CPUs each configuration's task asks Ray for
    num_cpus: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    #: more runtime_env for the tasks (pip, env_vars, ...); "ship" adds working_dir
    runtime_env: dict[str, Any] = {}


class Node(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    host: str
    resources: dict[str, float]
    labels: dict[str, str]
    instance_type: str | None = None


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise PluginError(
            f"spec $.launcher: the 'ray' launcher needs Ray, which is not installed ({exc}); "
            "install it with: pip install 'npf[ray]'"
        ) from None
    return ray


def _dts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"


SKIP_DIRS = (".git", "__pycache__", ".nox", ".venv", ".pytest_cache")


def pack_folder(folder: Path) -> bytes:
    """A folder's files as zip bytes (relative names; caches and VCS folders left out)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            for f in files:
                path = Path(root, f)
                if path.is_file():
                    z.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def folder_size(folder: Path, limit: int) -> int:
    """Bytes of the files under ``folder``, counting stops once past ``limit``."""
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                continue
            if total > limit:
                return total
    return total


class RayLauncher(Launcher):
    """Each configuration as a Ray task on a node of its own (see the module doc)."""

    options_type = RayOptions  # its options in `npf schema`
    requires = ("ray",)

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, RayOptions, "launcher.options")
        self.nodes: list[Node] = []
        self.resource: str | None = None
        self._payload: Any = None
        self._runtime_env: dict[str, Any] = {}
        self._owns_ray = False
        self._agent_cls: Any = None
        self._agents: dict[str, Any] = {}  # node id -> its NodeAgent actor
        self._waiting: list[str] = []
        self._last: dict[str, RunConfig] = {}

    # -- before anything runs ---------------------------------------------------

    def check(self, run: LaunchHost) -> None:
        ray = import_ray()
        o = self.opts
        loaded = run.loaded
        self.resource = o.node_resource or DEVICE_RESOURCES.get(loaded.device.type)
        self._runtime_env = dict(o.runtime_env)
        blob = self._pack(loaded) if o.files == "ship" else None
        if not ray.is_initialized():
            try:
                ray.init(address=o.address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserError(
                    f"spec $.launcher.options.address: cannot connect to a Ray cluster at {o.address!r}: {exc} "
                    "(start one with 'ray start --head', or give its address)"
                ) from None
            self._owns_ray = True
        try:
            self._check_cluster(ray, run, loaded, blob)
        except BaseException:
            if self._owns_ray:  # we connected for nothing: disconnect again
                ray.shutdown()
                self._owns_ray = False
            raise

    def _check_cluster(self, ray: Any, run: LaunchHost, loaded: Any, blob: bytes | None) -> None:
        self.nodes = self.eligible_nodes(ray.nodes())
        if not self.nodes:
            raise DeviceUnavailable(self._no_node_message(ray.nodes()))
        need = max(c.n_models * c.pipeline_size for c in run.plan)
        if self.resource is not None and self.resource != "CPU":
            have = max(n.resources.get(self.resource, 0) for n in self.nodes)
            if have < need:
                raise DeviceUnavailable(
                    f"spec $.n_models: a configuration needs {need} {self.resource} on one node, but the "
                    f"largest eligible Ray node has {have:g}"
                )
        # the spec's folder goes to the nodes once, through the object store
        self._payload = (loaded, ray.put(blob) if blob is not None else None)  # both top-level task arguments

    def _pack(self, loaded: Any) -> bytes:
        """The spec's folder as a zip for the nodes; errors for what cannot be shipped."""
        base = loaded.base_dir
        spec = loaded.spec
        paths = [("model.path", spec.model.path), ("model.index", spec.model.index)]
        for i, entry in enumerate(spec.inputs or []):
            for item in entry if isinstance(entry, list) else [entry]:
                paths.append((f"inputs[{i}].file", item.file))
        for where, value in paths:
            if value is None:
                continue
            if Path(value).expanduser().is_absolute():
                raise SpecError(
                    where,
                    f"{value!r} is an absolute path, which a node that receives the spec's folder through "
                    "launcher files 'ship' does not have",
                    "give it relative to the spec's folder, or set launcher.options.files to 'shared' "
                    "when every node has it at that path",
                )
            p = loaded.resolve(value).resolve()
            if p != base and base not in p.parents:
                raise SpecError(
                    where,
                    f"{str(p)!r} is outside the spec's folder {str(base)!r}, so launcher files 'ship' cannot send it",
                    "keep model files and inputs under the spec's folder, or put them on a path every node "
                    "shares and set launcher.options.files to 'shared'",
                )
        limit = int(self.opts.max_ship_mb * 1e6)
        size = folder_size(base, limit)
        if size > limit:
            raise SpecError(
                "launcher.options.files",
                f"the spec's folder {str(base)!r} holds over {self.opts.max_ship_mb:g} MB "
                f"(launcher.options.max_ship_mb): too much to ship to every node through Ray",
                "put the files on a path every node shares and set files to 'shared', "
                "or raise max_ship_mb (every node's Ray object store must hold the folder)",
            )
        return pack_folder(base)

    def eligible_nodes(self, table: list[dict[str, Any]]) -> list[Node]:
        """The alive nodes with the device resource (and instance type) the spec needs."""
        out = []
        for n in table:
            if not n.get("Alive"):
                continue
            res = {k: float(v) for k, v in (n.get("Resources") or {}).items()}
            labels = {str(k): str(v) for k, v in (n.get("Labels") or {}).items()}
            if self.resource is not None and res.get(self.resource, 0) <= 0:
                continue
            itype = labels.get(self.opts.instance_label)
            if self.opts.instance_type is not None and itype != self.opts.instance_type:
                continue
            if res.get("CPU", 0) < self.opts.num_cpus:
                continue
            out.append(Node(id=n["NodeID"], host=n.get("NodeManagerHostname", ""), resources=res,
                            labels=labels, instance_type=itype))  # fmt: skip
        return out

    def _no_node_message(self, table: list[dict[str, Any]]) -> str:
        alive = [n for n in table if n.get("Alive")]
        want = []
        if self.resource is not None:
            want.append(f"resource {self.resource!r}")
        if self.opts.instance_type is not None:
            want.append(f"label {self.opts.instance_label}={self.opts.instance_type}")
        want.append(f"{self.opts.num_cpus:g} CPU")
        seen = sorted({k for n in alive for k in (n.get("Resources") or {}) if not k.startswith("node:")})
        return (
            f"spec $.launcher: no alive Ray node has {' and '.join(want)} "
            f"({len(alive)} alive node(s), with resources: {', '.join(seen) or 'none'}); "
            "start the nodes with that resource, or set launcher.options.node_resource / instance_type"
        )

    # -- the run ----------------------------------------------------------------

    async def run(self, run: LaunchHost, todo: list[tuple[int, RunConfig]]) -> None:
        ray = import_ray()
        pool = NodePool(self.nodes)
        #: configurations not handed to a node yet: what the nodes keep idle copies for
        self._waiting = [c.config_id for _, c in todo]
        self._last = {}  # node id -> the configuration it ran last
        clean = False
        try:
            async with anyio.create_task_group() as tg:
                while self._waiting:
                    node = await pool.acquire()
                    index, config = self._next_for(node, todo)
                    self._waiting.remove(config.config_id)
                    if node is None:
                        run.config_started(index, config)
                        run.config_done(index, config, self._failure(config, time.time(), "NoRayNode",
                                                                     "no eligible Ray node is alive"))
                        continue
                    self._last[node.id] = config
                    tg.start_soon(self._one, ray, run, pool, index, config, node)
            clean = True
        finally:
            with anyio.CancelScope(shield=True):
                await self._close_agents(ray, graceful=clean)
            if self._owns_ray:
                ray.shutdown()
                self._owns_ray = False

    def _next_for(self, node: Node | None, todo: list[tuple[int, RunConfig]]) -> tuple[int, RunConfig]:
        """The next configuration for ``node``: the first waiting one of the model (and
        pipeline size) the node ran last, whose copies it keeps loaded; else the first
        waiting one."""
        still = set(self._waiting)
        waiting = [(i, c) for i, c in todo if c.config_id in still]
        last = self._last.get(node.id) if node is not None else None
        if last is not None:
            for i, c in waiting:
                if (c.model_ref, c.pipeline_size, c.performance_level) == (
                    last.model_ref, last.pipeline_size, last.performance_level
                ):
                    return i, c
        return waiting[0]

    async def _one(self, ray: Any, run: Any, pool: NodePool, index: int, config: Any, node: Node | None) -> None:
        run.config_started(index, config)
        tries = 0
        fault = ""
        try:
            while True:
                assert node is not None
                try:
                    report, fault = await self._remote(ray, run, index, config, node)
                except Exception as exc:  # a bug (npf's or Ray's): this configuration fails, the sweep goes on
                    report, fault = self._failure(config, time.time(), type(exc).__name__,
                                                  f"unexpected error launching on Ray: {exc!r}", node), ""
                    self._drop_agent(ray, node)
                if not fault or tries >= self.opts.retries:
                    break
                tries += 1
                failed, node = node, None
                await self._release(ray, pool, failed, fault)
                node = await pool.acquire(avoid=failed.id)
                if node is None:
                    break
        finally:
            if node is not None:
                with anyio.CancelScope(shield=True):
                    await self._release(ray, pool, node, fault)
        if tries:
            report = msgspec.structs.replace(report, validity_reasons=[*report.validity_reasons,
                                             f"ran {tries + 1} times: a Ray node or worker died before"])  # fmt: skip
        run.config_done(index, config, report)

    async def _release(self, ray: Any, pool: NodePool, node: Node, fault: str) -> None:
        """Back to the pool, unless the node died. A node that just ran a configuration
        without a fault is alive: no need to ask Ray; a NodeDiedError is believed at
        once. After any other fault the node must answer a probe: Ray lists a node that
        vanished as alive until its heartbeats have been missed for a while (seconds),
        and the error the lost agent raises then (ActorUnavailableError, ActorDiedError)
        does not say whether the node or only the agent's worker died."""
        if not fault:
            pool.release(node)
            return
        self._drop_agent(ray, node)
        if fault != "node" and await self._answers(ray, node):
            pool.release(node)
        else:
            pool.drop(node)

    async def _answers(self, ray: Any, node: Node) -> bool:
        """Whether ``node`` is listed alive and runs a no-op task pinned to it within
        :data:`NODE_PROBE_S`."""
        table = await anyio.to_thread.run_sync(ray.nodes)
        if not any(n.get("NodeID") == node.id and n.get("Alive") for n in table):
            return False
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ref = (
            ray.remote(_noop)
            .options(scheduling_strategy=NodeAffinitySchedulingStrategy(node.id, soft=False), num_cpus=0, max_retries=0)
            .remote()
        )
        ready, _ = await anyio.to_thread.run_sync(lambda: ray.wait([ref], timeout=NODE_PROBE_S), abandon_on_cancel=True)
        if not ready:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - not scheduled anywhere, or already gone
                pass
            return False
        try:
            await anyio.to_thread.run_sync(ray.get, ref)
        except ray.exceptions.RayError:
            return False
        return True

    # -- the node agents: one Ray actor per node, kept across its configurations ----

    def _agent(self, ray: Any, node: Node) -> Any:
        """The node's agent (started on first use): a Ray actor pinned to the node
        that holds its whole device resource and runs the local supervisor there,
        with its zygote and kept model copies, for every configuration the node runs."""
        agent = self._agents.get(node.id)
        if agent is not None:
            return agent
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if self._agent_cls is None:
            self._agent_cls = ray.remote(NodeAgent)
        opts: dict[str, Any] = {
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node.id, soft=False),
            "num_cpus": self.opts.num_cpus,
            "max_restarts": 0,
            "max_task_retries": 0,
        }
        if self.resource == "GPU":
            opts["num_gpus"] = node.resources["GPU"]
        elif self.resource is not None and self.resource != "CPU":
            opts["resources"] = {self.resource: node.resources[self.resource]}  # the node's whole device
        if self._runtime_env:
            opts["runtime_env"] = self._runtime_env
        agent = self._agent_cls.options(**opts).remote(*self._payload)
        self._agents[node.id] = agent
        return agent

    def _drop_agent(self, ray: Any, node: Node) -> None:
        """An agent whose worker or node died, or that failed: ended (its supervisor
        process, with every copy it kept); the node's next configuration starts another."""
        agent = self._agents.pop(node.id, None)
        self._last.pop(node.id, None)
        if agent is not None:
            try:
                ray.kill(agent, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass

    async def _close_agents(self, ray: Any, graceful: bool) -> None:
        """The run ends: each agent releases its copies and its zygote (graceful), and
        its actor ends (at once when the run was interrupted)."""
        agents, self._agents = dict(self._agents), {}
        if graceful and agents:
            refs = [a.close.remote() for a in agents.values()]
            with anyio.move_on_after(AGENT_CLOSE_S):
                await anyio.to_thread.run_sync(lambda: ray.wait(refs, num_returns=len(refs), timeout=AGENT_CLOSE_S),
                                               abandon_on_cancel=True)  # fmt: skip
        for agent in agents.values():
            try:
                ray.kill(agent, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass

    async def _remote(self, ray: Any, run: Any, index: int, config: Any, node: Node) -> tuple[Report, str]:
        """Run one configuration on ``node``'s agent; the report, and what failed if
        not the configuration itself: "node" (it died), "worker" (its Ray worker, the
        agent, died) or ""."""
        started = time.time()
        agent = self._agent(ray, node)
        gen = agent.run.options(num_returns="streaming").remote(config.config_id, list(self._waiting))
        report: Report | None = None
        where = f"Ray node {node.host} ({node.id[:12]})"
        ended = False
        try:
            while True:
                ref = await anyio.to_thread.run_sync(_next_ref, gen, abandon_on_cancel=True)
                if ref is None:
                    break
                item = await anyio.to_thread.run_sync(ray.get, ref, abandon_on_cancel=True)
                if isinstance(item, ev.Progress):
                    run.emit(msgspec.structs.replace(item, index=index, total=len(run.plan), config=config))
                elif isinstance(item, (ev.ConfigFinished, ev.ConfigFailed)):
                    report = item.report
            ended = True
        except ray.exceptions.RayTaskError as exc:  # npf itself raised on the node: a bad spec there, a bug
            ended = True
            self._drop_agent(ray, node)
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            return self._failure(config, started, type(cause).__name__, f"on {where}: {cause}", node), ""
        except ray.exceptions.RayError as exc:  # the agent's worker or the node died
            ended = True
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            msg = f"{where} lost the configuration: {type(exc).__name__}: {first}"
            fault = "node" if isinstance(exc, ray.exceptions.NodeDiedError) else "worker"
            return self._failure(config, started, type(exc).__name__, msg, node), fault
        finally:
            if not ended:  # cancelled (Ctrl-C, the embedding task): end the node's work now
                with anyio.CancelScope(shield=True):
                    self._drop_agent(ray, node)
        if report is None:
            msg = f"{where}: the task ended without a report"
            return self._failure(config, started, "RayTaskEnded", msg, node), "worker"
        return self._stamp(report, node), ""

    def _stamp(self, report: Report, node: Node | None) -> Report:
        if node is None:
            return report
        return msgspec.structs.replace(
            report, node_host=node.host, node_id=node.id, instance_type=node.instance_type or report.instance_type
        )

    def _failure(self, config: Any, started: float, kind: str, message: str, node: Node | None = None) -> Report:
        info = ErrorInfo(type=kind, message=message, stage="ray")
        return self._stamp(error_report(config, info, start_dts=_dts(started), stop_dts=_dts(time.time())), node)


class NodePool:
    """The nodes free to take a configuration: one configuration per node at a time."""

    def __init__(self, nodes: list[Node]) -> None:
        self.free = list(nodes)
        self.alive = {n.id for n in nodes}
        self._changed = anyio.Event()

    async def acquire(self, avoid: str | None = None) -> Node | None:
        """A free node (not ``avoid`` while another is alive); None when none is alive."""
        while True:
            if not self.alive:
                return None
            others = [n for n in self.free if n.id != avoid]
            pick = others[0] if others else None
            if pick is None and self.free and not (self.alive - {avoid}):
                pick = self.free[0]
            if pick is not None:
                self.free.remove(pick)
                return pick
            await self._changed.wait()

    def release(self, node: Node) -> None:
        self.free.append(node)
        self._wake()

    def drop(self, node: Node) -> None:
        self.alive.discard(node.id)
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


def _noop() -> bool:
    """The liveness probe's task (see :meth:`RayLauncher._answers`)."""
    return True


def _next_ref(gen: Any) -> Any:
    try:
        return next(gen)
    except StopIteration:
        return None


# -- on the node ------------------------------------------------------------------

#: how long the driver waits for the agents to release their copies at the end of a run
AGENT_CLOSE_S = 30.0
#: how long a node that lost a configuration has to run a no-op task before it is
#: taken out of the run (a live node needs a Ray worker's start, about a second)
NODE_PROBE_S = 15.0


class NodeAgent:
    """The Ray actor on one node: the local supervisor (with ``reuse_copies``, its
    zygote and the model copies it keeps) runs in a thread of its own for the whole
    run, and serves the configurations the driver sends, one at a time (:meth:`run`
    streams each one's events back). The thread lives until every benchmarker it
    started is reaped: they are forked from it, and die with it."""

    def __init__(self, loaded: Any, blob: bytes | None) -> None:
        from npf_core import Supervisor

        self.folder: Path | None = None
        if blob is not None:  # the spec's folder, shipped: unpacked here for the run
            self.folder = Path(tempfile.mkdtemp(prefix="npf-ship-"))
            with zipfile.ZipFile(io.BytesIO(blob)) as z:
                z.extractall(self.folder)
            loaded = msgspec.structs.replace(loaded, base_dir=self.folder)
        self.requests: queue.Queue[Any] = queue.Queue()
        self.events: queue.Queue[Any] = queue.Queue()
        self.errors: list[BaseException] = []
        self.ended = False
        self.sup = Supervisor(loaded, reporters=[], results=False, launcher="local")  # the driver keeps the results
        self.sup.setup()
        self.plan = list(self.sup.plan)
        self.sup.launcher = _Served(self)
        self.thread = threading.Thread(target=self._main, name="npf-supervisor", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        async def main() -> None:
            async with self.sup:
                async for event in self.sup.events():
                    if isinstance(event, (ev.Progress, ev.ConfigFinished, ev.ConfigFailed)):
                        self.events.put(event)

        try:
            anyio.run(main)
        except BaseException as exc:  # noqa: BLE001 - raised again in run()
            self.errors.append(exc)
        finally:
            self.events.put(_END)

    def run(self, config_id: str, waiting: list[str]) -> Any:
        """One configuration (a streaming generator of its events). ``waiting``: the
        driver's configurations not handed out yet, which copies are kept for."""
        if not any(c.config_id == config_id for c in self.plan):
            where = socket.gethostname()
            raise SpecError("launcher", f"configuration {config_id!r} is not in the plan made on {where} "
                                        "(its device count differs from the driver's?)")  # fmt: skip
        if self.ended:
            raise RuntimeError("the node's supervisor has ended")
        self.requests.put((config_id, set(waiting)))
        while True:
            item = self.events.get()
            if item is _END:
                self.ended = True
                if self.errors:
                    raise self.errors[0]
                raise RuntimeError("the node's supervisor ended before the configuration did")
            yield item
            if isinstance(item, (ev.ConfigFinished, ev.ConfigFailed)) and item.config.config_id == config_id:
                return

    def close(self) -> None:
        """Release the kept copies and the zygote, end the supervisor."""
        self.requests.put(None)
        self.thread.join(AGENT_CLOSE_S)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class _Served(Launcher):
    """The node supervisor's launcher: the configurations the driver sends."""

    def __init__(self, agent: NodeAgent) -> None:
        super().__init__({})
        self.agent = agent

    async def run(self, run: LaunchHost, todo: list[tuple[int, RunConfig]]) -> None:
        where = {c.config_id: (i, c) for i, c in todo}
        while True:
            request = await anyio.to_thread.run_sync(self.agent.requests.get, abandon_on_cancel=True)
            if request is None:
                return
            config_id, waiting = request
            index, config = where[config_id]
            # what this node may still be asked for: the rest of its kept copies are released
            self.agent.sup.plan = [c for c in self.agent.plan if c.config_id in waiting or c is config]
            run.config_started(index, config)
            report = await run.run_config(index, config)
            run.config_done(index, config, report)


@hookimpl
def npf_register_launchers(registry: Registry[Launcher]) -> None:
    registry.add("ray", RayLauncher)
