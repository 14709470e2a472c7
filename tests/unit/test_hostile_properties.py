"""Property-based tests (hypothesis) of what npf reads from users and from disk
(issue 20): the spec decoder and the results reader, fed random JSON, random bytes,
random mutations of a valid spec or results file, files cut short and nesting
100,000 levels deep. Whatever comes in, the answer is the decoded value or one
typed error naming the field (SpecError, ResultsError: exit code 2), never another
exception, within a bound on time and memory.

The examples are derandomised, so the suite is repeatable; set ``NPF_FUZZ_EXAMPLES``
(e.g. 5000) to search more widely, with a fresh seed each run."""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from npf_core.errors import ResultsError, SpecError  # noqa: E402
from npf_core.results.report import ErrorInfo, Report  # noqa: E402
from npf_core.results.stats import Histogram  # noqa: E402
from npf_core.results.store import ResultsFile, load_resumable, read_results  # noqa: E402
from npf_core.spec.schema import decode_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "faults" / "models.py"
#: a bound no example may pass, however loaded the machine (decoding takes milliseconds)
TIME_S = 5.0
MEMORY = 64 * 2**20

_WIDE = int(os.environ.get("NPF_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_WIDE or 150,
    deadline=None,  # timed below, with a bound a busy machine cannot break by chance
    database=None,  # nothing written into the repository
    derandomize=not _WIDE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],  # fixtures here hold no per-example state
)

# ---------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------

NASTY_TEXT = st.sampled_from(
    ["", "\x00", "a\x00b", "\x1b[31m", "\n", "\u202e", "\ud800", "../../etc", "~nobody/x.py:M", "x" * 5000,
     "m.py:", ":M", "::", "a" * 300 + ".py:M", "/dev/zero:M", "max", "auto", "-1", "1e999"]
)  # fmt: skip
NASTY_NUMBER = st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**30, 0.0, -0.0, 1e308, -1e308, 5e-324,
                                float("inf"), float("-inf"), float("nan"), True, False])  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), NASTY_TEXT, NASTY_NUMBER,
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=30,
)


def _dumps(value: Any) -> bytes:
    """JSON text, with the non-standard tokens Python writes for inf and NaN."""
    return json.dumps(value, allow_nan=True).encode("utf-8", errors="surrogatepass")


@pytest.fixture(scope="module")
def base_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _bounded(call: Callable[[], Any]) -> Any:
    """Run ``call`` and check it took less than TIME_S and MEMORY."""
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        return call()
    finally:
        took = time.monotonic() - t0
        _now, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert took < TIME_S, f"took {took:.1f} s"
        assert peak < MEMORY, f"peaked at {peak / 2**20:.0f} MB"


def _spec_or_named_error(data: Any, base_dir: Path) -> SpecError | None:
    try:
        _bounded(lambda: decode_spec(data, base_dir))
    except SpecError as exc:
        assert exc.path.startswith("$"), exc.path
        assert str(exc).startswith(f"spec {exc.path}: ") and exc.problem, str(exc)
        assert "\x00" not in str(exc).replace("\\x00", "")  # the message itself is printable
        return exc
    return None


# ---------------------------------------------------------------------------
# the spec decoder
# ---------------------------------------------------------------------------

VALID: dict[str, Any] = {
    "name": "fuzz",
    "model": {"framework": "python", "target": f"{MODELS}:Sleepy", "options": {"a": [1, {"b": "c"}]}},
    "inputs": [{"shape": [1, 4], "dtype": "float32"}, [{"name": "a", "shape": [2, 4]}, {"name": "b", "shape": [2]}]],
    "batch_sizes": [1, 2],
    "n_models": [1, "max"],
    "workers_per_model": [1, 2],
    "pipeline_sizes": [1],
    "duration_s": 1.5,
    "load": {"mode": "poisson", "rate": 100.0},
    "warmup": {"iterations": 2, "seconds": 0.5},
    "window_s": 0.5,
    "stability": {"windows": 3, "tolerance": 0.05, "min_s": 1.0},
    "device": {"type": "cpu", "options": {"oversubscribe": True}},
    "timeouts": {"load_s": 10.0, "stop_s": 1.0, "grace_s": 1.0},
    "output": {"dir": "out", "reporters": ["csv"]},
    "start_method": "fork",
    "cost_per_hour": 1.5,
    "_comment": ["fuzzed"],
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``value`` (dict keys, list indexes), the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(VALID)
_GONE = object()


def _walk(value: Any, path: tuple[Any, ...]) -> tuple[Any, Any]:
    """(the container holding the end of ``path``, the value there); _GONE as the
    value when the path no longer leads anywhere (through dicts and lists only)."""
    holder: Any = None
    node = value
    for key in path:
        inside = isinstance(node, dict) and key in node
        inside = inside or isinstance(node, list) and isinstance(key, int) and key < len(node)
        if inside:
            holder, node = node, node[key]
        else:
            return None, _GONE
    return holder, node


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    """VALID with one to four random edits: a value replaced (by random JSON or a
    nasty value), a key deleted or added, a value wrapped in a list."""
    spec: Any = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        holder, node = _walk(spec, path)
        if node is _GONE:
            continue  # an earlier edit changed the shape there
        edit = draw(st.sampled_from(["replace", "nasty", "delete", "add", "wrap"]))
        if edit == "add" and isinstance(node, dict):
            node[draw(st.text(max_size=8))] = draw(JSON)
            continue
        if edit == "wrap":
            value: Any = [node]
        elif edit == "nasty":
            value = draw(st.one_of(NASTY_TEXT, NASTY_NUMBER))
        elif edit == "delete":
            value = None
        else:
            value = draw(JSON)
        if holder is None:
            spec = value
        elif edit == "delete" and isinstance(holder, dict):
            del holder[path[-1]]
        else:
            holder[path[-1]] = value
    return spec


def test_the_valid_spec_decodes(base_dir: Path) -> None:
    """The mutations start from a spec that is valid: what they find is theirs."""
    assert _spec_or_named_error(VALID, base_dir) is None
    assert _spec_or_named_error(_dumps(VALID), base_dir) is None


@FUZZ
@given(value=JSON)
def test_random_json_decodes_or_names_the_field(value: Any, base_dir: Path) -> None:
    _spec_or_named_error(_dumps(value), base_dir)
    if isinstance(value, dict):
        _spec_or_named_error(value, base_dir)  # the same, as a dict from the API


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_decode_or_name_the_field(data: bytes, base_dir: Path) -> None:
    _spec_or_named_error(data, base_dir)


@FUZZ
@given(spec=mutated_specs())
def test_a_mutated_spec_decodes_or_names_the_field(spec: Any, base_dir: Path) -> None:
    as_text = _spec_or_named_error(_dumps(spec), base_dir)
    if isinstance(spec, dict):
        as_dict = _spec_or_named_error(spec, base_dir)
        if as_text is None:  # what JSON text may say, a dict may say too, and the reverse
            assert as_dict is None, as_dict


@FUZZ
@given(spec=mutated_specs(), cut=st.floats(0.0, 1.0))
def test_a_spec_cut_short_names_where(spec: Any, cut: float, base_dir: Path) -> None:
    text = _dumps(spec)
    _spec_or_named_error(text[: int(len(text) * cut)], base_dir)


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 40))
@given(
    depth=st.integers(1, 200_000),
    opening=st.sampled_from(["[", '{"k":']),
    where=st.sampled_from(["model.options", "device.options", "top", "inputs"]),
)
def test_deep_nesting_is_refused_quickly_naming_where(depth: int, opening: str, where: str, base_dir: Path) -> None:
    closing = "]" if opening == "[" else "}"
    hole = opening * depth + "0" * (opening == "[") + ('"v"' if opening != "[" else "") + closing * depth
    spec = copy.deepcopy(VALID)
    if where == "model.options":
        spec["model"]["options"] = {"deep": "HOLE"}
    elif where == "device.options":
        spec["device"]["options"] = {"deep": "HOLE"}
    elif where == "inputs":
        spec["inputs"] = "HOLE"
    else:
        spec["deep"] = "HOLE"
    text = _dumps(spec).replace(b'"HOLE"', hole.encode())
    err = _spec_or_named_error(text, base_dir)
    if depth + 3 > 64:  # beyond MAX_SPEC_DEPTH, wherever it is
        assert err is not None and "levels deep" in err.problem or err is not None and where in ("top", "inputs")


# ---------------------------------------------------------------------------
# the results reader
# ---------------------------------------------------------------------------


def _report(i: int, ok: bool) -> Report:
    h = Histogram()
    h.add([1_000_000 + 1000 * k for k in range(50)])
    return Report(
        model_name="m", n_models=1, workers_per_model=i + 1, pipeline_size=1, batch_size=1, config_id=f"m-w{i + 1}",
        throughput_avg=100.0, throughput_peak=110.0, latency_ms_p0=1.0, latency_ms_p50=1.5, latency_ms_p90=2.0,
        latency_ms_p95=2.5, latency_ms_p99=3.0, latency_ms_p100=4.0, total_infs=1000, total_s=10.0,
        throughput_windows=[99.0, 101.0], latency_histogram=h.to_stored(), status="ok" if ok else "error",
        error=None if ok else ErrorInfo(type="LoadTimeout", message="not ready", stage="load"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def results_doc() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        f = ResultsFile(Path(d) / "results.json")
        f.start("run1", {"model": {"framework": "python", "target": "m.py:M"}})
        for i, ok in enumerate((True, False, True)):
            f.record(i, _report(i, ok))
        return dict(json.loads(f.path.read_text()))


@st.composite
def mutated_results(draw: st.DrawFn, doc: dict[str, Any]) -> Any:
    value: Any = copy.deepcopy(doc)
    paths = _paths(value)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        holder, node = _walk(value, path)
        if node is _GONE:
            continue
        edit = draw(st.sampled_from(["replace", "nasty", "delete"]))
        new = draw(JSON) if edit == "replace" else draw(st.one_of(NASTY_TEXT, NASTY_NUMBER))
        if holder is None:
            value = new
        elif edit == "delete" and isinstance(holder, dict):
            del holder[path[-1]]
        else:
            holder[path[-1]] = new
    return value


def _read_or_named_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "results.json"
        path.write_bytes(data)
        for read in (read_results, load_resumable):
            try:
                got = _bounded(lambda read=read: read(path))  # type: ignore[misc]
            except ResultsError as exc:
                assert "results file" in str(exc), str(exc)
                continue
            for report in got.reports:  # what is read is finite, or missing (NaN)
                for name in report.__struct_fields__:
                    v = getattr(report, name)
                    assert not (isinstance(v, float) and v in (float("inf"), float("-inf"))), (name, v)


def test_the_results_file_reads(results_doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "results.json"
        path.write_text(json.dumps(results_doc))
        assert [r.status for r in read_results(path).reports] == ["ok", "error", "ok"]
        found = load_resumable(path)
        assert len(found.reports) == 3 and found.damaged == []


@FUZZ
@given(data=st.data())
def test_a_mutated_results_file_reads_or_names_the_field(data: st.DataObject, results_doc: dict[str, Any]) -> None:
    doc = data.draw(mutated_results(results_doc))
    _read_or_named_error(_dumps(doc))


@FUZZ
@given(data=st.data(), cut=st.floats(0.0, 1.0))
def test_a_results_file_cut_short_is_refused_clearly(
    data: st.DataObject, cut: float, results_doc: dict[str, Any]
) -> None:
    text = _dumps(data.draw(mutated_results(results_doc)))
    _read_or_named_error(text[: int(len(text) * cut)])


@FUZZ
@given(value=JSON)
def test_random_json_as_results_reads_or_names_the_field(value: Any) -> None:
    _read_or_named_error(_dumps(value))


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 25))
@given(data=st.data())
def test_report_on_a_mutated_results_file_is_never_a_traceback(
    data: st.DataObject, results_doc: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line over the same files: exit 0 (shown, damage flagged) or 2."""
    from npf_core import cli

    doc = data.draw(mutated_results(results_doc))
    assume(isinstance(doc, dict))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "results.json"
        path.write_bytes(_dumps(doc))
        code = cli.main(["report", str(path)])
    out = capsys.readouterr()
    assert code in (0, 2), out.err
    assert "Traceback" not in out.err
