"""The command line: ``python -m npf_core COMMAND`` (also installed as ``npf``).

Exit codes: 0 every configuration succeeded; 1 the run finished but at least one
configuration failed (results still written); 2 bad spec or usage (one line, no
traceback); 130 interrupted (finished configurations kept).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
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
    run.add_argument("--duration-s", type=float, help="seconds per configuration (overrides duration_s)")
    run.add_argument("--resume", action="store_true", help="skip configurations already in the results file")
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
    sub.add_parser("schema", help="print the JSON Schema of the spec format")

    rep = sub.add_parser("report", help="print the table of a results.json")
    rep.add_argument(
        "results", help="a results.json, a run folder, a spec's results folder (its latest run) or the output root"
    )
    ini = sub.add_parser("init", help="write a commented starter spec for a model file")
    ini.add_argument("model", help="a model file: file.py (a class or function in it), .pt/.pt2 (PyTorch)")
    ini.add_argument("-o", "--output", help="the spec file to write (default: spec.json beside the model)")
    ini.add_argument("--force", action="store_true", help="overwrite an existing spec file")
    rep.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report with charts to FILE")
    _add_compare_parser(sub)
    _add_compile_parsers(sub)
    return p


def _verbosity(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0, help="more output (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the final table and errors")


def _sweep_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sweep overrides (replace the spec's lists; see docs/cli.md)")
    g.add_argument("--n-models", metavar="N[,N...]", help="model copies, e.g. 1,max")
    g.add_argument("--workers", metavar="N[,N...]", help="worker threads per copy, e.g. 1,2")
    g.add_argument("--batch-sizes", metavar="N[,N...]", help="batch sizes (a subset of the spec's, or any "
                   "when the spec has one input described by its shape)")  # fmt: skip
    g.add_argument("--device", help="the device plugin, e.g. cpu, gpu, neuron")
    g.add_argument("--launcher", help="where configurations run: 'local' (default) or 'ray' (overrides launcher)")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
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
            return _run(args)
        if args.command == "metrics":
            from npf_core.evaluation.registry import list_metrics

            list_metrics()
            return EXIT_OK
        if args.command == "plugins":
            return _plugins()
        if args.command == "schema":
            from npf_core.spec.schema import json_schema

            print(json.dumps(json_schema(), indent=2), flush=True)
            return EXIT_OK
        if args.command == "init":
            from npf_core.spec.starter import write_starter

            path = write_starter(args.model, args.output, force=args.force)
            print(f"wrote {_shown(path)}: edit its inputs, then: {_prog()} run {_shown(path)}")
            return EXIT_OK
        if args.command == "report":
            return _report(Path(args.results), args.html)
        if args.command == "compare":
            return _compare(args)
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


def _run(args: argparse.Namespace) -> int:
    from npf_core.log import configure
    from npf_core.supervisor.run import Supervisor

    verbosity = 0 if args.quiet else 1 + args.verbose
    configure(verbosity)
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
    sup = Supervisor(args.spec, resume=args.resume, verbosity=verbosity, **overrides)
    sup.setup()  # no event loop to keep running yet: user errors surface here, plainly
    interrupted = False

    async def watch_signals(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """SIGINT (Ctrl-C) and SIGTERM stop the run cleanly: the current configuration
        is stopped, its children reaped, what finished is kept; exit 130."""
        nonlocal interrupted
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                print(f"npf: {signal.Signals(signum).name}: stopping; finished configurations are kept "
                      f"(run the same command with --resume to do the rest)", file=sys.stderr)  # fmt: skip
                interrupted = True
                sup.cancel()

    async def go() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(watch_signals)  # installed before any benchmarker starts
            await sup.run()
            tg.cancel_scope.cancel()

    anyio.run(go)
    for err in sup.reporter_errors:  # e.g. a results file that could not be written
        what = "" if err.startswith("results file: ") else "reporter failed: "
        print(f"npf: error: {what}{err}", file=sys.stderr)
    if interrupted or sup.interrupted:
        return EXIT_INTERRUPTED
    failed = sup.reporter_errors or any(r.status != "ok" for r in sup.reports)
    return EXIT_FAILED if failed else EXIT_OK


def _plugins() -> int:
    from npf_core.plugin.manager import get_plugins

    plugins = get_plugins()
    for kind, items in plugins.describe().items():
        print(f"{kind}s:")
        for name, origin in items:
            print(f"  {name:<14} {origin}")
    return EXIT_OK


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


def _compare(args: argparse.Namespace) -> int:
    from npf_core.results.compare import compare, render

    if not args.threshold >= 0:
        raise UserError(f"compare --threshold: {args.threshold} must be a percentage >= 0")
    result = compare(args.base, args.new, threshold_pct=args.threshold, confidence=args.confidence)
    print(render(result, args.format))
    return result.exit_code


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
    from npf_core.log import configure

    configure(0 if args.quiet else args.verbose)  # the progress lines below are the normal output
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
        index = model_index.filter(args.index, **criteria)
        print(f"{model_index.save(index, args.output)}: {len(index['model_configs'])} entries")
    elif cmd == "append":
        print(model_index.save(model_index.append(*args.indexes), args.output))
    elif cmd in ("copy", "move"):
        print(getattr(model_index, cmd)(args.index, args.new_index, args.new_dir))
    elif cmd == "delete":
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
