"""The layout of npf_core (docs/architecture.md): every import circle is counted,
imports inside functions and under TYPE_CHECKING included (import-linter sees only
module-level ones), every module is on the map, and the engine's modules sit in wings."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import npf_core

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("npf_core", "npf_plugins")
#: modules allowed at the top of npf_core, outside the wings
TOP = {"__init__", "__main__", "api", "cli", "errors", "log", "version", "cpu", "mxnet", "tensorflow", "torch"}


def modules(packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    found = {}
    for pkg in packages:
        for path in (ROOT / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules it imports, every import statement counted. ``from pkg
    import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]], nodes: list[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_in_the_engine_or_the_plugins() -> None:
    mods = modules()
    assert circles(import_graph(mods), sorted(mods)) == []


def test_the_circle_finder_finds_circles(tmp_path: Path) -> None:
    graph: dict[str, set[str]] = defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert circles(graph, ["a", "b", "c", "d"]) == [["a", "b", "c"]]
    # a function-level import and a `from package import module` both count
    src = {"p.x": "def f():\n    from p import y\n", "p.y": "import p.x\n", "p": ""}
    paths = {}
    tmp = tmp_path
    for name, text in src.items():
        path = tmp / (name.replace(".", "/") + ("/__init__.py" if name == "p" else ".py"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths[name] = path
    assert circles(import_graph(paths), sorted(paths)) == [["p.x", "p.y"]]


def test_every_engine_module_is_on_the_map() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`([\w/]+\.py)`", text))
    missing = []
    for path in modules(("npf_core",)).values():
        rel = path.relative_to(ROOT / "npf_core").as_posix()
        wing = rel.split("/")[0] if "/" in rel else None
        # a wing's own table row names its files by base name, in the row of the wing
        row = next((line for line in text.splitlines() if wing and line.startswith(f"| `{wing}/`")), "")
        if path.name == "__init__.py" and row and f"`{path.name}`" not in row:
            continue  # a wing's docstring-only package file: the wing itself is on the map
        if rel not in named and f"`{path.name}`" not in row and not (wing is None and path.name in named):
            missing.append(rel)
    assert missing == [], f"docs/architecture.md does not name: {missing}"


def test_the_engine_lives_in_wings() -> None:
    top = {p.stem for p in (ROOT / "npf_core").glob("*.py")}
    assert top <= TOP, f"modules outside the wings: {sorted(top - TOP)}"
    wings = [p for p in (ROOT / "npf_core").iterdir() if (p / "__init__.py").is_file()]
    assert len(wings) >= 5


def test_one_exception_root() -> None:
    import inspect
    import pkgutil

    roots = set()
    for info in pkgutil.walk_packages(npf_core.__path__, "npf_core."):
        if info.name.endswith("__main__"):
            continue
        mod = __import__(info.name, fromlist=["_"])
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if obj.__module__ == info.name and issubclass(obj, BaseException):
                roots.add(next(c for c in reversed(obj.__mro__) if c.__module__.startswith("npf_core")).__name__)
    assert roots == {"NpfError"}
