"""docs/ in step with the code: every spec field in docs/spec.md (with its default),
every hook and base-class method of npf_core/plugin/hookspecs.py in docs/plugins.md with its
signature, and every page in the mkdocs nav."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from npf_core.plugin import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs"
MKDOCS = DOCS.parent / "mkdocs.yml"


def _annotation(text: Any) -> str:
    """An annotation as written in the docs: module prefixes dropped (``ev.Event`` -> ``Event``)."""
    return re.sub(r"\b[a-z_]+\.(?=[A-Z])", "", str(text))


def signature(fn: Any, *, prefix: str = "") -> str:
    """``name(arg: T, ...) -> R`` from the function's (string) annotations."""
    sig = inspect.signature(fn)
    params = []
    for p in sig.parameters.values():
        text = p.name
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        params.append(text)
    ret = f" -> {_annotation(sig.return_annotation)}" if sig.return_annotation is not sig.empty else ""
    return f"{prefix}{fn.__name__}({', '.join(params)}){ret}"


# -- the spec reference ---------------------------------------------------------


def struct_tables(text: str) -> dict[str, dict[str, list[str]]]:
    """``<!-- struct: Name -->`` markers -> {field: [cells]} of the table after each."""
    tables: dict[str, dict[str, list[str]]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.fullmatch(r"<!-- struct: (\w+) -->", line.strip())
        if not m:
            continue
        rows: dict[str, list[str]] = {}
        for row in lines[i + 1 :]:
            if not row.startswith("|"):
                break
            cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
            name = re.fullmatch(r"`(\w+)`", cells[0])
            if name:
                rows[name.group(1)] = cells
        tables[m.group(1)] = rows
    return tables


def default_texts(field: Any) -> set[str] | None:
    """How a field's default may be written in the docs, or None when it is not a
    plain JSON value (required, null, a nested object)."""
    if field.default is not msgspec.NODEFAULT:
        value = field.default
    elif field.default_factory is not msgspec.NODEFAULT:
        value = field.default_factory()
    else:
        return None
    if value is None or isinstance(value, msgspec.Struct):
        return None
    texts = {json.dumps(value)}
    if isinstance(value, float) and value.is_integer():
        texts.add(json.dumps(int(value)))
    return {f"`{t}`" for t in texts}


@pytest.fixture(scope="module")
def spec_doc() -> dict[str, dict[str, list[str]]]:
    return struct_tables((DOCS / "spec.md").read_text())


def test_every_spec_struct_has_a_table(spec_struct_types: dict[str, Any], spec_doc: dict[str, Any]) -> None:
    missing = sorted(set(spec_struct_types) - set(spec_doc))
    assert not missing, f"docs/spec.md has no '<!-- struct: NAME -->' table for {missing}"
    stale = sorted(set(spec_doc) - set(spec_struct_types))
    assert not stale, f"docs/spec.md documents structs the spec no longer has: {stale}"


def test_every_spec_field_is_documented_with_its_default(
    spec_struct_types: dict[str, Any], spec_doc: dict[str, Any]
) -> None:
    problems = []
    for name, info in spec_struct_types.items():
        rows = spec_doc.get(name, {})
        fields = {f.encode_name: f for f in info.fields}
        tag = info.cls.__struct_config__.tag_field
        for fname, field in fields.items():
            row = rows.get(fname)
            if row is None:
                problems.append(f"{name}.{fname}: missing from its table in docs/spec.md")
                continue
            if len(row) != 4:
                problems.append(f"{name}.{fname}: row needs 4 cells (field, type, default, meaning)")
                continue
            if field.required and row[2] != "required":
                problems.append(f"{name}.{fname}: required, but the docs give default {row[2]!r}")
            expected = default_texts(field)
            if expected is not None and not any(t in row[2] for t in expected):
                problems.append(f"{name}.{fname}: default should read {sorted(expected)[0]}, docs say {row[2]!r}")
        for fname in set(rows) - set(fields) - ({tag} if tag else set()):
            problems.append(f"{name}.{fname}: documented in docs/spec.md but not a field any more")
    assert not problems, "\n".join(problems)


def test_the_struct_tables_parser_finds_rows() -> None:
    text = (
        "<!-- struct: X -->\n| field | type | default | meaning |\n| --- | --- | --- | --- |\n"
        "| `a` | int | `1` | A. |\n\n"
    )
    assert struct_tables(text) == {"X": {"a": ["`a`", "int", "`1`", "A."]}}


# -- the plugin author guide ----------------------------------------------------


def hooks() -> list[Any]:
    return [
        fn
        for name, fn in vars(hookspecs).items()
        if name.startswith("npf_") and callable(fn) and hasattr(fn, "npf_spec")
    ]


def test_hookspecs_are_found() -> None:
    names = {fn.__name__ for fn in hooks()}
    assert {"npf_register_frameworks", "npf_register_reporters", "npf_run_started", "npf_run_finished"} <= names
    assert signature(hookspecs.npf_run_started) == "npf_run_started(event: RunStarted) -> None"


@pytest.mark.parametrize("hook", hooks(), ids=lambda fn: fn.__name__)
def test_every_hook_is_in_the_plugin_guide_with_its_signature(hook: Any) -> None:
    text = (DOCS / "plugins.md").read_text()
    sig = signature(hook)
    assert f"def {sig}" in text, f"docs/plugins.md lacks `def {sig}`"


def test_the_plugin_guide_names_no_hook_that_does_not_exist() -> None:
    text = (DOCS / "plugins.md").read_text()
    known = {fn.__name__ for fn in hooks()}
    mentioned = set(re.findall(r"\bnpf_[a-z_]+(?=\()", text))
    assert mentioned <= known, f"docs/plugins.md shows hooks that hookspecs.py lacks: {sorted(mentioned - known)}"


BASES = [hookspecs.Framework, hookspecs.Device, hookspecs.Dataset, hookspecs.Reporter, hookspecs.Launcher,
         hookspecs.Telemetry]


def members(cls: type) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in vars(cls).items() if not k.startswith("_") or k == "__init__"]


@pytest.mark.parametrize("base", BASES, ids=lambda c: c.__name__)
def test_every_base_class_member_is_in_the_plugin_guide(base: type) -> None:
    text = (DOCS / "plugins.md").read_text()
    assert f"class {base.__name__}:" in text
    missing = []
    for name, value in members(base):
        if inspect.isfunction(value):
            needle = signature(value, prefix="def ")
            if needle not in text:
                missing.append(needle)
        else:
            annotation = base.__annotations__.get(name, "")
            needle = f"{name}: {annotation}" if "ClassVar" not in str(annotation) else f"{name}: ClassVar"
            if needle not in text:
                missing.append(needle)
    assert not missing, f"docs/plugins.md lacks members of {base.__name__}: {missing}"


def test_the_guide_shows_the_entry_point_group() -> None:
    from npf_core.plugin.manager import ENTRY_POINT_GROUP

    assert f'[project.entry-points."{ENTRY_POINT_GROUP}"]' in (DOCS / "plugins.md").read_text()


# -- the site -------------------------------------------------------------------


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    nav = re.findall(r"^\s+- [^:]+: (\S+\.md)\s*$", MKDOCS.read_text(), re.M)
    assert nav, "no nav in mkdocs.yml"
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert set(nav) <= pages, f"nav entries without a page: {sorted(set(nav) - pages)}"
    assert pages <= set(nav), f"pages missing from the nav in mkdocs.yml: {sorted(pages - set(nav))}"
    for required in ("index.md", "getting-started.md", "spec.md", "plugins.md", "embedding.md", "cli.md"):
        assert required in nav
