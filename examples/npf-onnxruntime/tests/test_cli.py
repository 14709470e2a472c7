"""What npf's command line shows of the installed plugin."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import msgspec

import npf_onnxruntime
from helpers import npf
from npf_onnxruntime.options import OnnxruntimeOptions

DIST = "npf-onnxruntime"


def test_npf_plugins_lists_the_framework_with_this_distribution_and_its_version(tmp_path: Path) -> None:
    proc = npf("plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # columns: name, package (distribution and version), entry point, status
    rows = [re.split(r"\s{2,}", line.strip()) for line in proc.stdout.splitlines() if line.startswith("  onnxruntime ")]
    assert rows == [["onnxruntime", f"{DIST} {version(DIST)}", "onnxruntime", "ok"]]
    assert version(DIST) == npf_onnxruntime.__version__


def _objects_with_properties(node: Any) -> list[set[str]]:
    found: list[set[str]] = []
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            found.append(set(node["properties"]))
        for value in node.values():
            found += _objects_with_properties(value)
    elif isinstance(node, list):
        for value in node:
            found += _objects_with_properties(value)
    return found


def test_npf_schema_includes_the_onnxruntime_options(tmp_path: Path) -> None:
    proc = npf("schema", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    fields = {f.encode_name for f in msgspec.structs.fields(OnnxruntimeOptions)}
    assert any(fields <= props for props in _objects_with_properties(schema)), "no object in the schema has them"
    assert "onnxruntime" in proc.stdout
