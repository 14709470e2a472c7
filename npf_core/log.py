"""Logging: npf's modules log through :func:`get_logger` (structlog's API: an event
and key-values), and every line becomes a record of the standard library's
``logging`` under the ``npf`` logger (``npf.supervisor.run``, ``npf.plugins.devices.gpu``).

- **Library use** (``npf_core.benchmark`` in a script, a notebook, an application):
  nothing is configured. The host's logging configuration decides what is shown and
  how; with none, Python shows warnings and errors on stderr, as plain text. npf
  never touches structlog's global configuration nor the root logger, so a host that
  uses structlog or ``logging.basicConfig`` keeps its own.
- **The command line** (or a host that opts in) calls :func:`configure`: one handler
  on the ``npf`` logger, plain text on stderr (a terminal, a pipe, a CI log, a
  notebook alike), coloured on a terminal unless ``NO_COLOR`` is set; JSON lines only
  when asked (``--log-format json`` or ``NPF_LOG_FORMAT=json``).
"""

from __future__ import annotations

import json as _json
import logging
import os
import sys
import time
from typing import Any

import structlog

__all__ = ["LOGGER", "configure", "get_logger", "log_format", "logger_name", "unconfigure"]

#: the standard library logger every npf log line goes to (and its children)
LOGGER = "npf"
#: verbosity -> level: -1 errors, 0 warnings, 1 info, 2 debug (NeuronPerf's 0..2)
LEVELS = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}
FORMATS = ("text", "json")


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


def logger_name(name: str) -> str:
    """The ``logging`` name of a module's logger: ``npf_core.supervisor.run`` ->
    ``npf.supervisor.run``, ``npf_plugins.devices.gpu`` -> ``npf.plugins.devices.gpu``."""
    for prefix, to in (("npf_core", LOGGER), ("npf_plugins", f"{LOGGER}.plugins")):
        if name == prefix or name.startswith(prefix + "."):
            return to + name[len(prefix) :]
    if name == LOGGER or name.startswith(LOGGER + "."):
        return name
    return f"{LOGGER}.{name}"


def _to_stdlib(logger: Any, method: str, event: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The last processor: the event as a plain-text message (what a host's handler or
    Python's last-resort handler prints) with the structured event kept on the record
    (``record.npf_event``) for :func:`configure`'s formatter."""
    kwargs: dict[str, Any] = {}
    for key in ("exc_info", "stack_info"):
        if key in event:
            kwargs[key] = event.pop(key)
    if kwargs.get("exc_info") is True:
        kwargs["exc_info"] = sys.exc_info()
    text = str(event.get("event", ""))
    rest = {k: v for k, v in event.items() if k != "event"}
    if rest:
        text += " (" + ", ".join(f"{k}={v}" for k, v in rest.items()) + ")"
    kwargs["extra"] = {"npf_event": dict(event)}
    return (text,), kwargs


_PROCESSORS: list[Any] = [structlog.stdlib.filter_by_level, structlog.contextvars.merge_contextvars, _to_stdlib]


def get_logger(name: str) -> Any:
    """A structlog logger (``logger.warning("event", key=value)``) whose lines go to the
    ``logging`` logger :func:`logger_name` (``name``), whatever structlog's global
    configuration: a host's structlog set-up is neither needed nor changed."""
    return structlog.wrap_logger(
        logging.getLogger(logger_name(name)),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=False,
    )


def log_format(value: str | None = None) -> str:
    """``text`` or ``json``: ``value`` (a flag), else ``NPF_LOG_FORMAT``; text otherwise."""
    chosen = (value or os.environ.get("NPF_LOG_FORMAT") or "text").strip().lower()
    return chosen if chosen in FORMATS else "text"


def _colors(stream: Any) -> bool:
    """Colour on a terminal, unless NO_COLOR is set to anything (no-color.org) or TERM is dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


_LEVEL_COLOURS = {"debug": "\x1b[2m", "info": "\x1b[32m", "warning": "\x1b[33m", "error": "\x1b[31m",
                  "critical": "\x1b[1;31m"}  # fmt: skip


class Formatter(logging.Formatter):
    """npf's records (and any other) as one line of plain text or a JSON object."""

    def __init__(self, *, as_json: bool = False, colors: bool = False) -> None:
        super().__init__()
        self.as_json = as_json
        self.colors = colors

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "npf_event", None)
        if isinstance(event, dict):
            message = str(event.get("event", ""))
            fields = {k: v for k, v in event.items() if k != "event"}
        else:
            message, fields = record.getMessage(), {}
        level = record.levelname.lower()
        if self.as_json:
            doc: dict[str, Any] = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": level,
                "logger": record.name,
                "event": message,
                **fields,
            }
            if record.exc_info:
                doc["exception"] = self.formatException(record.exc_info)
            return _json.dumps(doc, default=str)
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        shown = f"{level:<7}"
        if self.colors:
            shown = f"{_LEVEL_COLOURS.get(level, '')}{shown}\x1b[0m"
        line = f"{stamp} {shown} {message}"
        if fields:
            line += "  " + " ".join(f"{k}={_value(v)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _value(v: Any) -> str:
    text = str(v)
    return repr(text) if not text or any(c.isspace() for c in text) else text


def configure(verbosity: int = 1, *, json: bool | None = None, level: int | None = None) -> None:
    """Show npf's log lines on stderr (the command line calls this; a host may too).

    :param verbosity: -1 errors, 0 warnings, 1 info (default), 2 debug — as NeuronPerf.
    :param json: JSON lines (True) or plain text (False); None: ``NPF_LOG_FORMAT``
        (``json`` or ``text``), plain text by default.
    :param level: a ``logging`` level, in place of ``verbosity``.
    """
    if level is None:
        level = LEVELS[max(-1, min(int(verbosity), 2))]
    as_json = (log_format() == "json") if json is None else json
    stream = _Stderr()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(Formatter(as_json=as_json, colors=not as_json and _colors(stream)))
    handler._npf = True  # type: ignore[attr-defined]  # ours, replaced by the next configure()
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = [h for h in logger.handlers if not getattr(h, "_npf", False)] + [handler]
    logger.setLevel(level)
    logger.propagate = False  # shown once, here, not again by a handler of the root logger


def unconfigure() -> None:
    """Undo :func:`configure`: npf's lines go to the host's logging configuration again."""
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = [h for h in logger.handlers if not getattr(h, "_npf", False)]
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
