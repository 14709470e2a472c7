"""Logging: the library only emits through structlog; the CLI (or an embedding
application that opts in) calls :func:`configure` to decide how it looks."""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure", "library_default"]


class _Stderr:
    """``sys.stderr`` looked up at each write, not when logging was configured: while
    the console's live display runs, rich replaces ``sys.stderr`` so that log lines
    are printed above the display instead of tearing it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()

LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


def configure(verbosity: int = 1, *, json: bool | None = None) -> None:
    """Render logs on stderr: readable on a terminal, JSON lines otherwise.

    :param verbosity: 0 warnings and errors, 1 info (default), 2 debug — as NeuronPerf.
    :param json: force JSON lines (True) or the console renderer (False).
    """
    level = LEVELS.get(max(0, min(verbosity, 2)), logging.INFO)
    as_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    if as_json:
        processors.append(structlog.processors.dict_tracebacks)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(_Stderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=processors)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def library_default() -> None:
    """In library use (nothing configured structlog): log lines go to stderr, not to
    structlog's default stdout, so that an application's output stays its own. An
    application that configures structlog itself, before or after, is left alone."""
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=_Stderr()))  # type: ignore[arg-type]
