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

from npf_core.errors import UserError

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
    _verbosity(run)

    sub.add_parser("plugins", help="list installed plugins by kind, with their origin")
    sub.add_parser("schema", help="print the JSON Schema of the spec format")

    rep = sub.add_parser("report", help="print the table of a results.json")
    rep.add_argument("results", help="a results.json file (or the folder holding it)")
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
    sup = Supervisor(args.spec, resume=args.resume, verbosity=verbosity, **overrides)
    interrupted = False

    async def go() -> None:
        nonlocal interrupted
        async with anyio.create_task_group() as tg:

            async def watch_signals() -> None:
                nonlocal interrupted
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        interrupted = True
                        sup.cancel()

            tg.start_soon(watch_signals)
            await sup.run()
            tg.cancel_scope.cancel()

    anyio.run(go)
    if interrupted or sup.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(r.status != "ok" for r in sup.reports) else EXIT_OK


def _plugins() -> int:
    from npf_core.plugins import get_plugins

    plugins = get_plugins()
    for kind, items in plugins.describe().items():
        print(f"{kind}s:")
        for name, origin in items:
            print(f"  {name:<14} {origin}")
    return EXIT_OK


def _report(path: Path) -> int:
    from rich.console import Console

    from npf_core.results import load_results
    from npf_plugins.reporters.console import report_table

    if path.is_dir():
        path = path / "results.json"
    _, reports = load_results(path)
    Console(highlight=False).print(report_table(reports, title=str(path)))
    return EXIT_OK
