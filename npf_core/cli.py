"""The command line: ``python -m npf_core COMMAND`` (also installed as ``npf``).

Exit codes: 0 every configuration succeeded; 1 the run finished but at least one
configuration failed (results still written); 2 bad spec or usage (one line, no
traceback); 130 interrupted (finished configurations kept).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.abc

from npf_core.errors import ResultsError, UserError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"npf: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m npf_core", description="Benchmark ML model inference.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a spec file's sweep")
    run.add_argument("spec", help="the run spec (JSON)")
    run.add_argument("--output-dir", help="where results go (overrides output.dir)")
    run.add_argument("--duration-s", type=float, help="seconds per configuration (overrides duration_s)")
    run.add_argument("--resume", action="store_true", help="skip configurations already in the results file")
    run.add_argument("--launcher", help="where configurations run: 'local' (default) or 'ray' (overrides launcher)")
    _verbosity(run)

    sub.add_parser("plugins", help="list installed plugins by kind, with their origin")
    sub.add_parser("schema", help="print the JSON Schema of the spec format")

    rep = sub.add_parser("report", help="print the table of a results.json")
    rep.add_argument("results", help="a results.json file (or the folder holding it)")
    _add_compile_parsers(sub)
    return p


def _verbosity(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0, help="more output (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the final table and errors")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "plugins":
            return _plugins()
        if args.command == "schema":
            from npf_core.spec import json_schema

            print(json.dumps(json_schema(), indent=2))
            return EXIT_OK
        if args.command == "report":
            return _report(Path(args.results))
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
    from npf_core.supervisor import Supervisor

    verbosity = 0 if args.quiet else 1 + args.verbose
    configure(verbosity)
    overrides = {}
    if args.output_dir:
        overrides["output_dir"] = str(Path(args.output_dir).resolve())
    if args.duration_s is not None:
        overrides["duration_s"] = args.duration_s
    if args.launcher:
        overrides["launcher"] = args.launcher
    sup = Supervisor(args.spec, resume=args.resume, verbosity=verbosity, **overrides)
    interrupted = False

    async def watch_signals(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """SIGINT (Ctrl-C) and SIGTERM stop the run cleanly: the current configuration
        is stopped, its children reaped, what finished is kept; exit 130."""
        nonlocal interrupted
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                print(f"npf: {signal.Signals(signum).name}: stopping; finished configurations are kept",
                      file=sys.stderr)  # fmt: skip
                interrupted = True
                sup.cancel()

    async def go() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(watch_signals)  # installed before any benchmarker starts
            await sup.run()
            tg.cancel_scope.cancel()

    anyio.run(go)
    for err in sup.reporter_errors:  # e.g. a results file that could not be written
        print(f"npf: error: reporter failed: {err}", file=sys.stderr)
    if interrupted or sup.interrupted:
        return EXIT_INTERRUPTED
    failed = sup.reporter_errors or any(r.status != "ok" for r in sup.reports)
    return EXIT_FAILED if failed else EXIT_OK


def _plugins() -> int:
    from npf_core.plugins import get_plugins

    plugins = get_plugins()
    for kind, items in plugins.describe().items():
        print(f"{kind}s:")
        for name, origin in items:
            print(f"  {name:<14} {origin}")
    return EXIT_OK


def _report(path: Path) -> int:
    from npf_core.results import load_results
    from npf_plugins.reporters.console import make_console, report_table, validity_notes

    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        raise ResultsError(f"no results file at {str(path)!r}")
    _, reports = load_results(path)
    console = make_console()
    console.print(report_table(reports, title=str(path)))
    for note in validity_notes(reports):
        console.print(note, style="yellow", markup=False)
    return EXIT_OK


# ---------------------------------------------------------------------------
# compile and index (docs/model-index-and-compile.md)
# ---------------------------------------------------------------------------


def _add_compile_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    from npf_core.compiler import compile_spec
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
    from npf_core import model_index

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
