"""The command line: ``python -m npf_core COMMAND`` (also installed as ``npf``).

Exit codes: 0 every configuration succeeded; 1 the run finished but at least one
configuration failed (results still written); 2 bad spec or usage (one line, no
traceback); 130 interrupted (finished configurations kept). ``compare`` (a CI gate
that fails closed): 0 no significant regression; 1 a significant regression, or a
configuration ok in BASE that failed or is missing in NEW; 2 nothing to compare, or
BASE and NEW measure different models or inputs (unless ``--allow-different``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from npf_core.errors import UserError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"npf: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _prog() -> str:
    """``npf`` when run as the installed script, ``python -m npf_core`` otherwise."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m npf_core" if name in ("", "-c", "__main__.py", "-m") or name.endswith(".py") else name


def _parser() -> argparse.ArgumentParser:
    from npf_core.version import __version__

    p = _Parser(prog=_prog(), description="Benchmark ML model inference.")
    p.add_argument("--version", action="version", version=f"npf {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a spec file's sweep")
    run.add_argument("spec", help="the run spec (JSON)")
    run.add_argument("--output-dir", help="where results go (overrides output.dir)")
    run.add_argument("--duration-s", type=_duration, metavar="SECONDS|auto",
                     help='seconds per configuration, or "auto": until its p99 is supported '
                          '(overrides duration_s)')  # fmt: skip
    run.add_argument("--resume", action="store_true", help="skip configurations already in the results file")
    run.add_argument("--label", metavar="TEXT",
                     help="a label for the run, kept in results.json, shown by 'history' (e.g. a version)")  # fmt: skip
    run.add_argument("--slo-p99-ms", type=float, metavar="MS",
                     help="find each configuration's capacity at this p99 budget (load mode 'capacity')")  # fmt: skip
    _sweep_flags(run)
    _verbosity(run)

    ev = sub.add_parser("evaluate", help="run a spec in evaluate mode: its dataset once, with metrics")
    ev.add_argument("spec", help="the run spec (JSON)")
    ev.add_argument("--metrics", help="comma-separated metric names (added to the spec's evaluate block)")
    ev.add_argument("--output-dir", help="where results go (overrides output.dir)")
    ev.add_argument("--duration-s", type=float, help="seconds per configuration (default 0: the dataset once)")
    ev.add_argument("--resume", action="store_true", help="skip configurations already in the results file")
    _sweep_flags(ev)
    _verbosity(ev)
    sub.add_parser("metrics", help="list the accuracy metrics (built-in, plugins')")
    sub.add_parser("plugins", help="list installed plugins by kind, with their origin")
    sch = sub.add_parser("schema", help="print the JSON Schema of the spec format (--results: of results.json)")
    sch.add_argument("--results", action="store_true", help="the schema of results.json instead of the spec's")

    rep = sub.add_parser("report", help="print the table of a results.json")
    rep.add_argument(
        "results", help="a results.json, a run folder, a spec's results folder (its latest run) or the output root"
    )
    rep.add_argument("--format", choices=REPORT_FORMATS, default="table",
                     help="table (the console's), or to stdout: json, csv (NeuronPerf's columns first), "
                          "markdown")  # fmt: skip
    ini = sub.add_parser("init", help="write a commented starter spec for a model file")
    ini.add_argument("model", help="a model file: file.py (a class or function in it), .pt/.pt2 (PyTorch)")
    ini.add_argument("-o", "--output", help="the spec file to write (default: spec.json beside the model)")
    ini.add_argument("--force", action="store_true", help="overwrite an existing spec file")
    rep.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report with charts to FILE")
    _add_compare_parser(sub)
    _add_history_parser(sub)
    _add_compile_parsers(sub)
    return p


def _duration(text: str) -> float | str:
    """``--duration-s``: seconds, or ``auto`` (the spec's ``duration_s: "auto"``)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value):  # (a number out of range is the spec's to reject, naming $.duration_s)
        raise argparse.ArgumentTypeError(f'{text!r}: give seconds (a number > 0) or "auto"')
    return value


def _verbosity(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more log lines: -v info, -vv debug (default: warnings and errors)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="only the final table and errors")
    p.add_argument("--log-format", choices=("text", "json"), default=None,
                   help="log lines as plain text (default) or JSON objects (also NPF_LOG_FORMAT=json)")  # fmt: skip


def _configure_logs(args: argparse.Namespace) -> None:
    """-q errors, default warnings, -v info, -vv debug; text unless JSON is asked for."""
    from npf_core.log import configure, log_format

    configure(-1 if args.quiet else min(args.verbose, 2), json=log_format(args.log_format) == "json")


def _sweep_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sweep overrides (replace the spec's lists; see docs/cli.md)")
    g.add_argument("--n-models", metavar="N[,N...]", help="model copies, e.g. 1,max")
    g.add_argument("--workers", metavar="N[,N...]", help="worker threads per copy, e.g. 1,2")
    g.add_argument("--batch-sizes", metavar="N[,N...]", help="batch sizes (a subset of the spec's, or any "
                   "when the spec has one input described by its shape)")  # fmt: skip
    g.add_argument("--device", help="the device plugin, e.g. cpu, gpu, neuron")
    g.add_argument("--launcher", help="where configurations run: 'local' (default) or 'ray' (overrides launcher)")
    g.add_argument("--no-reuse", action="store_true", help="load every configuration's model copies afresh "
                   "(reuse_copies false: for models whose state must not carry over)")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """The command line. Called with no ``argv`` it is the process's entry point (the
    ``npf`` script, ``python -m npf_core``): once a run's outcome is decided, later
    SIGINT and SIGTERM are ignored while the interpreter exits, so that a second
    Ctrl-C cannot turn exit code 130 into death by a signal."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before a command's own handling (e.g. while parsing the arguments)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``npf schema | head``): not an error, and no traceback.
        # Python would complain again flushing stdout at exit; point it at /dev/null.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK


def _main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("run", "evaluate"):
            with _Interrupts(process_entry=argv is None) as interrupts:
                return _run(args, interrupts)
        if args.command == "metrics":
            from npf_core.evaluation.registry import list_metrics

            list_metrics()
            return EXIT_OK
        if args.command == "plugins":
            return _plugins()
        if args.command == "schema" and args.results:
            from npf_core.results.store import results_schema

            print(json.dumps(results_schema(), indent=2), flush=True)
            return EXIT_OK
        if args.command == "schema":
            return _schema()
        if args.command == "init":
            from npf_core.spec.starter import write_starter

            path = write_starter(args.model, args.output, force=args.force)
            print(f"wrote {_shown(path)}: edit its inputs, then: {_prog()} run {_shown(path)}")
            return EXIT_OK
        if args.command == "report" and args.format != "table":
            return _report_as(Path(args.results), args.format, args.html)
        if args.command == "report":
            return _report(Path(args.results), args.html)
        if args.command == "compare":
            return _compare(args)
        if args.command == "history":
            return _history(args)
        if args.command == "compile":
            return _compile(args)
        if args.command == "index":
            return _index(args)
    except UserError as exc:
        print(f"npf: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    raise AssertionError(args.command)


class _Interrupts:
    """SIGINT and SIGTERM over the whole of ``run``, so that each is honoured at every
    stage and ends in exit code 130: while the run is built (plugins, device probes,
    the plan) either raises KeyboardInterrupt, since nothing has started yet; while
    it runs, the event loop's receiver stops it cleanly (``watch_signals``); once it
    has stopped, a further one is only noted. On leaving, the previous handlers come
    back, or for the process's entry point both signals are ignored from then on."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, process_entry: bool) -> None:
        self.process_entry = process_entry
        self.seen: int | None = None
        self._saved: dict[int, Any] = {}
        self._active = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> _Interrupts:
        if self._active:
            self._saved = {sig: signal.getsignal(sig) for sig in self.SIGNALS}
            self._install(self._raise)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self._active:
            return
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_IGN if self.process_entry else self._saved[sig])

    def settle(self) -> None:
        """The run has stopped (its signal receiver is gone): note further signals."""
        if self._active:
            self._install(self._note)

    def _install(self, handler: Any) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, handler)

    def _raise(self, signum: int, frame: object) -> None:
        self.seen = signum
        raise KeyboardInterrupt

    def _note(self, signum: int, frame: object) -> None:
        self.seen = signum


def _run(args: argparse.Namespace, interrupts: _Interrupts) -> int:
    from npf_core.supervisor.run import Supervisor

    verbosity = 0 if args.quiet else 1 + args.verbose  # the reporters': 0 quiet, 1 normal, 2+ verbose
    _configure_logs(args)
    overrides: dict[str, Any] = {}
    if args.output_dir:
        overrides["output_dir"] = str(Path(args.output_dir).resolve())
    if args.duration_s is not None:
        overrides["duration_s"] = args.duration_s
    if getattr(args, "slo_p99_ms", None) is not None:
        overrides["slo_p99_ms"] = args.slo_p99_ms
    from npf_core.spec.overrides import sweep_overrides

    overrides.update(
        sweep_overrides(args.spec, n_models=args.n_models, workers=args.workers,
                        batch_sizes=args.batch_sizes, device=args.device)
    )  # fmt: skip
    if args.command == "evaluate":
        overrides.setdefault("duration_s", 0.0)
        metrics = [m.strip() for m in (args.metrics or "").split(",") if m.strip()]
        from npf_core.spec.schema import load_spec

        current = load_spec(args.spec).spec.evaluate
        overrides["eval_metrics"] = [*(current.metrics if current else []), *metrics]
    if args.launcher:
        overrides["launcher"] = args.launcher
    label = getattr(args, "label", None)
    if args.no_reuse:
        overrides["reuse_copies"] = False
    if interrupts.process_entry:  # npf's own process: orphans of what copies start come here
        from npf_core.child.process import become_subreaper

        become_subreaper()
    sup = Supervisor(args.spec, resume=args.resume, verbosity=verbosity, label=label, **overrides)
    sup.setup()  # no event loop to keep running yet: user errors surface here, plainly
    interrupted = False

    async def watch_signals(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """SIGINT (Ctrl-C) and SIGTERM stop the run cleanly: the current configuration
        is stopped, its children reaped, what finished is kept; exit 130."""
        nonlocal interrupted
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for signum in signals:
                    print(f"npf: {signal.Signals(signum).name}: stopping; finished configurations are kept "
                          f"(run the same command with --resume to do the rest)", file=sys.stderr)  # fmt: skip
                    interrupted = True
                    sup.cancel()
        finally:
            interrupts.settle()  # at once: the receiver's exit put back the default handlers

    refused: UserError | None = None

    async def go() -> None:
        nonlocal refused
        async with anyio.create_task_group() as tg:
            await tg.start(watch_signals)  # installed before any benchmarker starts
            try:
                await sup.run()
            except UserError as exc:  # found while running (more copies than the machine takes): exit 2
                refused = exc
            tg.cancel_scope.cancel()

    anyio.run(go)
    if interrupts.process_entry:
        from npf_core.supervisor.lineage import end_adopted

        end_adopted()  # the run is over: any child left is an adopted orphan
    interrupted = interrupted or interrupts.seen is not None
    for err in sup.reporter_errors:  # e.g. a results file that could not be written
        what = "" if err.startswith("results file: ") else "reporter failed: "
        print(f"npf: error: {what}{err}", file=sys.stderr)
    if refused is not None:
        raise refused  # one line, exit 2; what finished is kept
    if interrupted or sup.interrupted:
        return EXIT_INTERRUPTED
    failed = sup.reporter_errors or any(r.status != "ok" for r in sup.reports)
    return EXIT_FAILED if failed else EXIT_OK


#: the extra of npf that installs what a built-in plugin requires
EXTRAS = {"torch": "torch", "tensorflow": "tensorflow", "mxnet": "mxnet", "ray": "ray", "pynvml": "gpu"}


def _plugins() -> int:
    """Each kind's plugins in aligned columns: name, the package that provides it, its
    entry point; a plugin whose required libraries are missing is marked so."""
    from npf_core.plugin.manager import get_plugins

    plugins = get_plugins()
    missing = plugins.missing()
    rows = {kind: [(name, *_origin_parts(origin)) for name, origin in items]
            for kind, items in plugins.describe().items()}  # fmt: skip
    every = [r for rs in rows.values() for r in rs]
    widths = [max([len(h), *(len(r[i]) for r in every)]) for i, h in enumerate(("name", "package", "entry point"))]
    print(f"  {'name':<{widths[0]}}  {'package':<{widths[1]}}  {'entry point':<{widths[2]}}  status")
    for kind, items in rows.items():
        print(f"{kind}:" if kind == "telemetry" else f"{kind}s:")
        for name, package, entry in items:
            lacking = missing.get((kind, name))
            status = f"missing {', '.join(lacking)}" if lacking else "ok"
            print(f"  {name:<{widths[0]}}  {package:<{widths[1]}}  {entry:<{widths[2]}}  {status}")
    needed = sorted({m for ms in missing.values() for m in ms})
    if needed:
        extras = [EXTRAS[m] for m in needed if m in EXTRAS]
        print(f"missing: not installed here: {', '.join(needed)}")
        if extras:
            print(f"  to use those plugins: pip install 'npf[{','.join(extras)}]'")
    return EXIT_OK


def _schema() -> int:
    """The spec's JSON Schema, with the options of every installed plugin that
    declares its ``options_type``."""
    from npf_core.plugin.hookspecs import Registry
    from npf_core.plugin.manager import get_plugins
    from npf_core.spec.schema import json_schema

    plugins = get_plugins()
    registries: dict[str, Registry[Any]] = {
        "framework": plugins.frameworks,
        "device": plugins.devices,
        "dataset": plugins.datasets,
        "launcher": plugins.launchers,
    }
    options = {
        kind: {name: t for name in reg.names() if (t := getattr(reg.get(name), "options_type", None)) is not None}
        for kind, reg in registries.items()
    }
    print(json.dumps(json_schema(options), indent=2), flush=True)
    return EXIT_OK
def _origin_parts(origin: str) -> tuple[str, str]:
    """``"demo (npf-demo-plugin 0.3.1)"`` -> ``("npf-demo-plugin 0.3.1", "demo")``."""
    entry, sep, package = origin.partition(" (")
    if sep and package.endswith(")"):
        package = package[:-1]
        if package == "built in":
            return f"{entry} (built in)", "-"
        return package, entry
    return origin, "-"


def _report(path: Path, html: str | None = None) -> int:
    """Show a results file again through the ``console`` reporter plugin (the engine
    renders nothing itself; the reports are replayed as the run's last event), and
    with ``--html FILE`` export it through the ``html`` reporter plugin."""
    import npf_core.plugin.events as ev
    from npf_core.plugin.hookspecs import ReporterContext
    from npf_core.plugin.manager import get_plugins
    from npf_core.results.store import read_results

    results = read_results(path)
    reports = results.reports
    print(f"npf: {len(reports)} configuration{'s' * (len(reports) != 1)} from {results.path}")
    for line in results.damaged:  # shown as missing, and marked "ok?" in the table
        print(f"npf: warning: damaged in the results file (edited or cut short?): {line}", file=sys.stderr)
    plugins = get_plugins()
    ctx = ReporterContext(output_dir=results.path.parent, spec=results.spec, verbosity=1)
    reporter = plugins.reporters.get("console", "report")(ctx)
    failed = sum(r.status != "ok" for r in reports)
    reporter.on_event(ev.RunFinished(reports=reports, interrupted=False, failed=failed))
    reporter.close()
    if html:
        plugins.reporters.get("html", "report --html")(ctx).export(results, Path(html))
        print(f"html report: {html}")
    return EXIT_OK


REPORT_FORMATS = ("table", "json", "csv", "markdown")


def _report_as(path: Path, fmt: str, html: str | None = None) -> int:
    """``report --format json|csv|markdown``: the run as data on stdout and nothing
    else there (json and markdown: results/export.py; csv: the ``csv`` reporter's
    text, the rows of results.csv)."""
    from npf_core.plugin.hookspecs import ReporterContext
    from npf_core.plugin.manager import get_plugins
    from npf_core.results.export import results_json, results_markdown
    from npf_core.results.store import read_results

    results = read_results(path)
    plugins = get_plugins()
    ctx = ReporterContext(output_dir=results.path.parent, spec=results.spec, verbosity=1)
    if fmt == "csv":
        text = plugins.reporters.get("csv", "report --format csv")(ctx).text(results.reports)
    else:
        text = results_json(results) if fmt == "json" else results_markdown(results)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
    if html:
        plugins.reporters.get("html", "report --html")(ctx).export(results, Path(html))
        print(f"html report: {html}", file=sys.stderr)
    return EXIT_OK


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    cmp = sub.add_parser(
        "compare", help="compare two runs: throughput, p50, p99 with significance (exit 1 on a regression)"
    )
    cmp.add_argument("base", help="the baseline: a results.json or the folder holding it")
    cmp.add_argument("new", help="the run to judge: a results.json or the folder holding it")
    cmp.add_argument("--threshold", type=float, default=5.0, metavar="PCT",
                     help="smallest change, in percent, that counts as a regression (default 5)")  # fmt: skip
    cmp.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    cmp.add_argument("--confidence", type=float, default=0.95, metavar="P",
                     help="for the comparison as a whole: with no real change, nothing is flagged with this "
                          "probability (default 0.95)")  # fmt: skip
    cmp.add_argument("--allow-different", action="store_true",
                     help="compare runs that measure different models or inputs (by batch, copies, workers, "
                          "pipeline) instead of exiting 2")  # fmt: skip


def _compare(args: argparse.Namespace) -> int:
    from npf_core.results.compare import compare, render

    if not args.threshold >= 0:
        raise UserError(f"compare --threshold: {args.threshold} must be a percentage >= 0")
    result = compare(args.base, args.new, threshold_pct=args.threshold, confidence=args.confidence,
                     allow_different=args.allow_different)  # fmt: skip
    if result.refused:
        # one line, as for a usage error; --format json also gets the document on stdout
        if args.format == "json":
            print(render(result, "json"))
        print(f"npf compare: {result.refused}", file=sys.stderr)
        return result.exit_code
    print(render(result, args.format))
    return result.exit_code


def _add_history_parser(sub: argparse._SubParsersAction) -> None:
    his = sub.add_parser("history", help="a spec's runs in time order: labels, commits, figures, significant changes")
    his.add_argument("path", help="a spec's results folder (npf-results/NAME), an output root holding one, "
                                  "or a spec file or its folder (its npf-results)")  # fmt: skip
    his.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    his.add_argument("--html", metavar="FILE", help="also write the trend charts of every configuration to FILE")
    his.add_argument("--threshold", type=float, default=5.0, metavar="PCT",
                     help="smallest change, in percent, that is marked (default 5, as compare)")  # fmt: skip
    his.add_argument("--confidence", type=float, default=0.95, metavar="P",
                     help="confidence of the test between a run and the one before (default 0.95, as compare)")


def _history(args: argparse.Namespace) -> int:
    from npf_core.results.history import history

    if not (args.threshold >= 0 and args.threshold < float("inf")):
        raise UserError(f"history --threshold: {args.threshold} must be a percentage >= 0")
    if not 0.5 <= args.confidence < 1:
        raise UserError(f"history --confidence: {args.confidence} must be in [0.5, 1)")
    h = history(args.path, threshold_pct=args.threshold, confidence=args.confidence)
    print(h.render(args.format))
    if args.html:
        from npf_core.plugin.hookspecs import ReporterContext
        from npf_core.plugin.manager import get_plugins

        ctx = ReporterContext(output_dir=Path(h.path), spec={}, verbosity=1)
        get_plugins().reporters.get("html", "history --html")(ctx).export_history(h, Path(args.html))
        print(f"html history: {args.html}", file=sys.stdout if args.format == "table" else sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------
# compile and index (docs/model-index-and-compile.md)
# ---------------------------------------------------------------------------


def _add_compile_parsers(sub: argparse._SubParsersAction) -> None:
    comp = sub.add_parser("compile", help="compile every variant of a spec's model and write a model index")
    comp.add_argument("spec", help="the run spec (JSON) with an optional 'compile' block")
    comp.add_argument("--models-dir", help="where artifacts go (overrides compile.models_dir)")
    comp.add_argument("--index", help="the model index to write (overrides compile.filename)")
    comp.add_argument("--timeout-s", type=float, help="seconds one variant may take (overrides compile.timeout_s)")
    _verbosity(comp)

    idx = sub.add_parser("index", help="show or edit model indexes")
    isub = idx.add_subparsers(dest="index_command", required=True, parser_class=_Parser)
    isub.add_parser("show", help="list an index's entries").add_argument("index")
    flt = isub.add_parser("filter", help="write the entries that match KEY=VALUE[,VALUE...] to a new index")
    flt.add_argument("index")
    flt.add_argument("output")
    flt.add_argument("criteria", nargs="+", metavar="KEY=VALUES", help="e.g. batch_size=1,4 status=finished")
    app = isub.add_parser("append", help="combine indexes (duplicates removed) into OUTPUT")
    app.add_argument("output")
    app.add_argument("indexes", nargs="+")
    for name, what in (("copy", "copy"), ("move", "move")):
        c = isub.add_parser(name, help=f"{what} an index and its model files to NEW_DIR, writing NEW_INDEX")
        c.add_argument("index")
        c.add_argument("new_index")
        c.add_argument("new_dir")
    isub.add_parser("delete", help="delete an index and every model file it lists").add_argument("index")


def _compile(args: argparse.Namespace) -> int:
    from npf_core.compilation.compiler import compile_spec

    _configure_logs(args)  # the progress lines below are the normal output
    signal.signal(signal.SIGTERM, _raise_interrupt)  # so the running compile process is killed too
    failed = 0

    def progress(i: int, n: int, entry: dict[str, object]) -> None:
        nonlocal failed
        if entry["status"] == "finished":
            print(f"[{i + 1}/{n}] finished {_shown(entry['filename'])} ({entry['compile_s']} s)", flush=True)
        else:
            failed += 1
            print(f"[{i + 1}/{n}] error    {_shown(entry['filename'])}: {entry['error']}", flush=True)

    path = compile_spec(
        args.spec, models_dir=args.models_dir, filename=args.index, timeout_s=args.timeout_s, on_variant=progress
    )
    print(f"model index: {path}" + (f" ({failed} of the variants failed)" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _index(args: argparse.Namespace) -> int:
    import npf_core.compilation.model_index as model_index

    cmd = args.index_command
    if cmd == "show":
        index = model_index.load(args.index)
        print(f"{args.index}: model {index.get('model_name') or '-'}, {len(index['model_configs'])} entries")
        for e in index["model_configs"]:
            cast = e.get("performance_level", e.get("cast_mode"))
            line = (
                f"  {e['status']:<9} input {e['input_idx']}  batch {e['batch_size']}  pipeline {e['pipeline_size']}"
                + (f"  cast {cast}" if cast is not None else "")
                + (f"  {e['compile_s']} s" if e.get("compile_s") is not None else "")
                + f"  {_shown(e['filename'])}"
            )
            print(line)
            if e.get("error"):
                print(f"            {str(e['error']).splitlines()[0]}")
    elif cmd == "filter":
        criteria = {}
        for c in args.criteria:
            key, sep, values = c.partition("=")
            if not sep or not key:
                raise UserError(f"index filter: {c!r} is not KEY=VALUE[,VALUE...]")
            criteria[key] = [_parse_value(v) for v in values.split(",")]
        index = model_index.rebased(model_index.filter(args.index, **criteria), args.index, args.output)
        print(f"{model_index.save(index, args.output)}: {len(index['model_configs'])} entries")
    elif cmd == "append":
        parts = [model_index.rebased(model_index.load(i), i, args.output) for i in args.indexes]
        print(model_index.save(model_index.append(*parts), args.output))
    elif cmd in ("copy", "move"):
        print(getattr(model_index, cmd)(args.index, args.new_index, args.new_dir))
    elif cmd == "delete":
        if not Path(args.index).exists():
            raise UserError(f"index delete: no model index {args.index!r}")
        model_index.delete(args.index)
    return EXIT_OK


def _shown(filename: object) -> str:
    """A path as printed: relative to the current directory when inside it."""
    p = Path(str(filename))
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _parse_value(text: str) -> object:
    """A filter value: a JSON number/null/bool when it reads as one, else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text
