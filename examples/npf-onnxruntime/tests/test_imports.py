"""The plugin imports nothing of npf but its SDK, ``npf_core.plugin``, and the
``npf_core`` root; and importing it imports no onnxruntime (npf's supervisor and
zygote load it, and must stay free of onnxruntime: README.md)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import npf_onnxruntime

#: what of npf the plugin may import
ALLOWED = {"npf_core", "npf_core.plugin"}
OWN = "npf_onnxruntime"
LOADERS = {"import_module", "__import__"}


def _is_npf(module: str) -> bool:
    top = module.split(".")[0]
    return top.startswith("npf") and top != OWN


def npf_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every npf module ``source`` imports: import statements
    (also inside functions and ``TYPE_CHECKING`` blocks), names imported from the
    ``npf_core`` root that are its submodules, and ``importlib.import_module("...")``.
    What is imported *from* ``npf_core.plugin`` is the SDK's, whatever it is."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is_npf(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _is_npf(node.module):
            found.append((node.lineno, node.module))
            if node.module == "npf_core":  # from the root, a submodule is a way inside
                found += [(node.lineno, f"npf_core.{a.name}") for a in node.names if _submodule(f"npf_core.{a.name}")]
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            arg = node.args[0] if node.args else None
            if name in LOADERS and isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _is_npf(arg.value):
                found.append((node.lineno, arg.value))
    return sorted(found)


def _submodule(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def forbidden(source: str) -> list[tuple[int, str]]:
    return [(line, m) for line, m in npf_imports(source) if m not in ALLOWED]


def package_files() -> list[Path]:
    files = sorted(Path(npf_onnxruntime.__file__).parent.rglob("*.py"))
    assert len(files) >= 5, files  # __init__, plugin, framework, options, errors
    return files


def test_the_plugin_imports_only_the_sdk_and_the_root_of_npf() -> None:
    bad = {str(p.name): forbidden(p.read_text()) for p in package_files()}
    assert {k: v for k, v in bad.items() if v} == {}
    used = {m for p in package_files() for _, m in npf_imports(p.read_text())}
    assert used == {"npf_core.plugin"}  # and it does use the SDK


def test_the_check_finds_every_way_of_reaching_inside_npf() -> None:
    source = textwrap.dedent(
        """
        import npf_core
        from npf_core import SpecError, plugin
        from npf_core.plugin import Framework
        from npf_core.spec import decode_options
        import npf_plugins.devices.gpu
        from npf_core import errors
        from npf_core.plugin import events

        def later():
            import importlib
            importlib.import_module("npf_core.tensors")
            from npf_core.errors import SpecError
        """
    )
    assert forbidden(source) == [
        (5, "npf_core.spec"),
        (6, "npf_plugins.devices.gpu"),
        (7, "npf_core.errors"),
        (12, "npf_core.tensors"),
        (13, "npf_core.errors"),
    ]


def test_loading_the_entry_point_imports_no_onnxruntime() -> None:
    code = textwrap.dedent(
        """
        import sys
        from importlib.metadata import entry_points
        (ep,) = [e for e in entry_points(group="npf_core.plugins") if e.name == "onnxruntime"]
        module = ep.load()
        assert module.__name__ == "npf_onnxruntime.plugin", module
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("onnxruntime", "onnx")))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
