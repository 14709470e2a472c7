"""The compile worker: one model variant, compiled in a fresh interpreter.

``python -m npf_core.compilation.worker REQUEST.json RESULT.json [--plugin MODULE]... [--parent PID] [--payload FD]``

It reads a :class:`~npf_core.wire.compile.CompileRequest`, finds the framework plugin
through the installed entry points (plus the ``--plugin`` modules), calls its
``compile(request)`` and writes a :class:`~npf_core.wire.compile.CompileResult`. An
exception is a result with status ``"error"``; anything else (a crash, a kill)
leaves no result, and the parent reports how the process ended. A model given as a
live object (an instance) arrives in the inherited payload ``--payload``
(:mod:`npf_core.wire.transfer`), resolvable by its token. Started by
:mod:`npf_core.compilation.compiler` only; compilers and runtimes live and die here.
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback
from pathlib import Path

import msgspec

from npf_core.wire.compile import CompileRequest, CompileResult


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m npf_core.compilation.worker")
    parser.add_argument("request", help="the CompileRequest (JSON)")
    parser.add_argument("result", help="where to write the CompileResult (JSON)")
    parser.add_argument("--plugin", action="append", default=[], help="a plugin module to register too")
    parser.add_argument("--parent", type=int, default=0, help="the parent's pid: die with it")
    parser.add_argument("--payload", type=int, default=-1, help="the API objects (the model given as an object)")
    args = parser.parse_args(argv)
    if args.parent:
        from npf_core.child.process import set_parent_death_signal

        set_parent_death_signal(args.parent)
    request = msgspec.json.decode(Path(args.request).read_bytes(), type=CompileRequest)
    try:
        if args.payload >= 0:
            from npf_core.plugin.references import share_objects
            from npf_core.wire.transfer import load_objects

            share_objects(load_objects(args.payload))
        from npf_core.plugin.manager import get_plugins

        plugins = get_plugins([importlib.import_module(m) for m in args.plugin])
        framework = plugins.framework(request.framework, dict(request.framework_options))
        t0 = time.perf_counter()
        info = framework.compile(request)
        compile_s = time.perf_counter() - t0
        result = CompileResult(status="finished", compile_s=compile_s, info=_jsonable(info))
    except Exception as exc:  # noqa: BLE001 - every failure is the variant's result
        result = CompileResult(
            status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
        )
        traceback.print_exc()
    Path(args.result).write_bytes(msgspec.json.encode(result))
    return 0


def _jsonable(info: object) -> object:
    """The framework's return value if it can be written as JSON, else its repr."""
    if info is None:
        return None
    try:
        msgspec.json.encode(info)
    except (TypeError, msgspec.EncodeError):
        return repr(info)
    return info


if __name__ == "__main__":
    raise SystemExit(main())
