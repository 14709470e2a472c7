"""What a spec may hold, whatever its source: how deep it nests, how big its file
is, and which characters and numbers its values may carry.

These checks run before the spec's Structs are built (a dict from the API, a
spec file's size) or right after (every string and number of the decoded spec),
so that input that gets past the types cannot do harm later: a structure nested
so deep that decoding, encoding or pickling it overflows the stack; a NUL that no
path, environment variable or command line can carry; a control character in a
name that becomes a folder and is printed to a terminal; an infinite number.
Each problem is a :class:`~npf_core.errors.SpecError` naming the field.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from npf_core.errors import SpecError

__all__ = [
    "MAX_NAME_CHARS",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "check_data_depth",
    "check_values",
    "deep_text_path",
    "exists",
    "path_of",
    "too_deep",
]

#: how deep a spec may nest objects and lists (the root object is level 1); a real
#: spec needs about 6, plugin options a few more
MAX_SPEC_DEPTH = 64
#: the largest spec file read (a spec is settings, not data: tensors go in files)
MAX_SPEC_BYTES = 16 * 1024 * 1024
#: the longest ``name`` (it becomes a folder name, at most 255 bytes on most file systems)
MAX_NAME_CHARS = 200

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# a JSON string (with a following colon: an object key), or a structural character
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"(?:\s*:)?|[\[\]{},]')


def path_of(parts: list[str | int]) -> str:
    """``["model", "options", "a b", 0]`` -> ``$.model.options["a b"][0]``; a path of
    more than 12 steps is shortened in its middle (``$.a.b...[0][0]``, 70 levels)."""
    out = "$"
    if len(parts) > 12:
        return f"{path_of(parts[:6])}...{path_of(parts[-2:])[1:]} ({len(parts)} levels)"
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENT.match(p):
            out += f".{p}"
        else:
            out += f"[{json.dumps(p)}]"
    return out


def exists(path: Path, *, file: bool = False) -> bool:
    """Whether ``path`` exists (is a file, with ``file``); a path the system cannot
    even look up (too long, a bad character) does not."""
    try:
        return path.is_file() if file else path.exists()
    except (OSError, ValueError):
        return False


def too_deep(path: str) -> SpecError:
    """The error for a value nested deeper than :data:`MAX_SPEC_DEPTH`."""
    return SpecError(
        path,
        f"nested more than {MAX_SPEC_DEPTH} levels deep",
        "a spec is settings: flatten this value, or put the data in a file the plugin reads",
    )


def deep_text_path(text: str | bytes, limit: int = MAX_SPEC_DEPTH) -> str | None:
    """The path where JSON ``text`` first nests deeper than ``limit`` levels (None if
    it never does). A linear scan, no recursion: for a document too deep to decode."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", errors="replace")
    stack: list[list[Any]] = []  # [kind, key or index] per open container
    for m in _TOKEN.finditer(text):
        tok = m.group()
        ch = tok[0]
        if ch == '"':
            if tok.endswith(":") and stack and stack[-1][0] == "{":
                raw = tok[:-1].rstrip()
                try:
                    stack[-1][1] = json.loads(raw)
                except ValueError:
                    stack[-1][1] = raw[1:-1]
        elif ch in "[{":
            if len(stack) >= limit:
                return path_of([entry[1] for entry in stack if entry[1] is not None])
            stack.append([ch, 0 if ch == "[" else None])
        elif ch in "]}":
            if stack:
                stack.pop()
        elif stack and stack[-1][0] == "[":  # a comma in a list: the next element
            stack[-1][1] += 1
    return None


def check_data_depth(data: Any, limit: int = MAX_SPEC_DEPTH) -> None:
    """Raise a :class:`SpecError` naming the path where plain data (dicts, lists,
    tuples: a spec given as a dict) nests deeper than ``limit`` levels, or holds
    text that is not valid Unicode (a lone surrogate, which no file, environment or
    JSON can carry). Iterative, so that a structure too deep (or cyclic) never
    overflows the stack."""
    todo: list[tuple[Any, list[str | int]]] = [(data, [])]
    while todo:
        value, parts = todo.pop()
        if isinstance(value, Mapping):
            items: Any = [(k, v) for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        else:
            continue
        if len(parts) >= limit:
            raise too_deep(path_of(parts))
        for key, item in items:
            where = [*parts, key if isinstance(key, (str, int)) else str(key)]
            for text in (key, item):
                if isinstance(text, str) and not _encodable(text):
                    raise SpecError(path_of(where), "is not valid Unicode text (it holds a lone surrogate)")
            if isinstance(item, (Mapping, list, tuple)):
                todo.append((item, where))


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _problem(parts: list[str | int], value: str) -> tuple[str, str] | None:
    """What is wrong with a string at ``parts`` (None when nothing)."""
    if "\x00" in value:
        return "contains a NUL character (\\x00)", "no path, name or reference can hold one"
    if parts == ["name"]:
        bad = next((ch for ch in value if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")), None)
        if bad is not None:
            return (f"contains the control character {bad!r}",
                    "a name becomes a folder name and is printed: use letters, digits, spaces, - _ .")  # fmt: skip
        if len(value) > MAX_NAME_CHARS:
            return f"is {len(value)} characters long, over {MAX_NAME_CHARS}", "give a shorter name"
    return None


def check_values(spec: Any, limit: int = MAX_SPEC_DEPTH) -> None:
    """Every string and number of a decoded spec (Structs, and the plain data of
    its ``options`` blocks): no NUL anywhere, no control character in ``name``,
    no infinite or NaN number, and no nesting beyond ``limit``. Raises a
    :class:`SpecError` naming the first field at fault. Iterative."""
    todo: list[tuple[Any, list[str | int]]] = [(spec, [])]
    while todo:
        value, parts = todo.pop()
        if isinstance(value, str):
            problem = _problem(parts, value)
            if problem is not None:
                raise SpecError(path_of(parts), *problem)
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise SpecError(path_of(parts), f"{value} is not a finite number", "give a finite number")
            continue
        if isinstance(value, msgspec.Struct):
            cls = type(value)  # the class attributes: msgspec.structs.fields() evaluates annotations each call
            names = zip(cls.__struct_fields__, cls.__struct_encode_fields__, strict=True)
            items: Any = [(encoded, getattr(value, name)) for name, encoded in names]
        elif isinstance(value, Mapping):
            items = [(k, v) for k, v in value.items()]
            for k, _ in items:
                if isinstance(k, str) and "\x00" in k:
                    raise SpecError(path_of([*parts, k]), "a key contains a NUL character (\\x00)")
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        else:
            continue
        if len(parts) >= limit:
            raise too_deep(path_of(parts))
        for key, item in reversed(items):  # in document order: the first fault is reported
            todo.append((item, [*parts, key if isinstance(key, (str, int)) else str(key)]))
