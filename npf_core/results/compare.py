"""Compare two runs: each configuration's throughput, p50 and p99, with a verdict
from the data (``npf compare BASE NEW``, ``npf_core.compare(base, new)``).

A gate that fails closed. Exit code (:attr:`Comparison.exit_code`):

- **2**, with one line (:attr:`Comparison.refused`): nothing to compare (no
  configuration of NEW was measured in BASE, or none that BASE measured
  successfully), or BASE and NEW measure different models or inputs (the differing
  fields are named; ``allow_different`` compares them all the same);
- **1**: a significant regression beyond the threshold, or a configuration that was
  ok in BASE failed in NEW, or is missing from NEW although NEW's sweep had it (a
  run interrupted or crashed part way);
- **0** otherwise. A narrowed re-run (``npf run --batch-sizes 16``) is compared on
  what it shares with BASE; BASE's other configurations are listed, not missing.

Configurations are matched by what they measured (results/identity.py), never by
position or id. The figures and the test of their change (on the log ratio, so an
interval never reads below -100%) are in results/figures.py. Significance, at 95%
confidence for the comparison as a whole:

- throughput: the two runs' window throughputs (the batch means the throughput
  interval is built from), Welch's degrees of freedom; with fewer than three windows
  on a side, the reported interval as a normal one;
- p50, p99: from the latency histograms, the distribution-free (order-statistic)
  interval of each run's percentile; from the reports' stored intervals for older
  results files;
- Bonferroni: with m tests in the comparison (3 per configuration pair), each
  interval is at level 1 - 0.05/m, so the intervals hold simultaneously and two runs
  with no real difference are flagged, anywhere, at most 5% of the time.

A change is a *regression* (or an *improvement*) only when it is statistically
significant AND larger than the threshold: run-to-run drift of the machine is not
in either run's own noise, and the threshold is the change worth acting on.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec
import numpy as np

import npf_core.results.figures as figures
from npf_core.results.figures import MIN_WINDOWS, Estimate, Figure, LogRatio, log_ratio
from npf_core.results.identity import SWEEP, Identity, identity, model_reference, per_example
from npf_core.results.report import Report
from npf_core.results.store import PlanEntry, Results, comparable_spec, read_results

__all__ = [
    "MIN_WINDOWS", "Comparison", "ConfigComparison", "MetricChange", "changes", "compare", "judge", "json_safe",
    "render", "welch",
]  # fmt: skip

CONFIDENCE = 0.95
DEFAULT_THRESHOLD_PCT = 5.0
METRICS = tuple(f.name for f in figures.FIGURES)

REGRESSION, IMPROVEMENT, NO_CHANGE, NOT_TESTED = "regression", "improvement", "no significant change", "not tested"
#: a configuration's status in a comparison besides its metrics' verdicts
FAILED_IN_NEW, MISSING_IN_NEW = "failed in new", "missing in new"


@dataclass
class MetricChange:
    """One metric of one configuration, base -> new."""

    metric: str
    unit: str
    base: float
    new: float
    #: new / base - 1, in percent
    change_pct: float
    #: the interval of the change, in percent of base, simultaneous with the comparison's
    #: others at its confidence (None: no interval could be made); within (-100, +inf)
    ci_pct: tuple[float, float] | None
    method: str
    statistically_significant: bool
    beyond_threshold: bool
    verdict: str

    @property
    def regression(self) -> bool:
        return self.verdict == REGRESSION

    @property
    def significant_change(self) -> bool:
        """A regression or an improvement (what ``history`` marks)."""
        return self.verdict in (REGRESSION, IMPROVEMENT)


@dataclass
class ConfigComparison:
    config_id: str
    base_config_id: str
    #: "id" (the same config id) or "parameters" (the same identity, another id)
    matched_by: str
    metrics: list[MetricChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: FAILED_IN_NEW when it was ok in base and failed in new
    status: str = ""

    @property
    def verdict(self) -> str:
        if self.status:
            return self.status
        verdicts = {m.verdict for m in self.metrics}
        for v in (REGRESSION, IMPROVEMENT, NO_CHANGE):
            if v in verdicts:
                return v
        return NOT_TESTED


@dataclass
class Comparison:
    """The result of :func:`compare`; ``exit_code`` is what ``npf compare`` returns."""

    base: str
    new: str
    threshold_pct: float
    confidence: float
    configs: list[ConfigComparison]
    only_in_base: list[str] = field(default_factory=list)
    only_in_new: list[str] = field(default_factory=list)
    #: the statistical tests made (the Bonferroni divisor)
    tests: int = 0
    #: configurations ok in base that failed in new
    failed_in_new: list[str] = field(default_factory=list)
    #: configurations ok in base that new's sweep had but new has no result for
    missing_in_new: list[str] = field(default_factory=list)
    #: why there is nothing to judge (exit code 2); "" when compared
    refused: str = ""
    #: the fields in which base and new measure different things ("field: base vs new")
    differences: list[str] = field(default_factory=list)
    allow_different: bool = False

    @property
    def regressions(self) -> list[tuple[str, MetricChange]]:
        return [(c.config_id, m) for c in self.configs for m in c.metrics if m.regression]

    @property
    def improvements(self) -> list[tuple[str, MetricChange]]:
        return [(c.config_id, m) for c in self.configs for m in c.metrics if m.verdict == IMPROVEMENT]

    @property
    def exit_code(self) -> int:
        if self.refused:
            return 2
        return 1 if self.regressions or self.failed_in_new or self.missing_in_new else 0

    def summary(self) -> str:
        if self.refused:
            return self.refused
        how = f"(threshold {self.threshold_pct:g}%, {self.confidence:.0%} confidence over {self.tests} tests)"
        parts = []
        for what, ids in (("failed in new", self.failed_in_new), ("missing in new", self.missing_in_new)):
            if ids:
                n = len(ids)
                parts.append(f"{n} configuration{'s' * (n != 1)} ok in base {what}: " + ", ".join(ids))
        if self.regressions:
            parts.append(f"{len(self.regressions)} significant regression{'s' * (len(self.regressions) != 1)}: "
                         + ", ".join(f"{cid} {m.metric} {m.change_pct:+.1f}%" for cid, m in self.regressions))
        if self.improvements:
            parts.append(f"{len(self.improvements)} significant improvement{'s' * (len(self.improvements) != 1)}")
        if not parts:
            return f"no significant change {how}"
        if self.differences and not self.allow_different:
            parts.append("figures not compared: BASE and NEW measure different models or inputs: "
                         + "; ".join(self.differences))  # fmt: skip
        return "; ".join(parts) + (f" {how}" if self.tests else "")

    def render(self, fmt: str = "table") -> str:
        """``table``, ``markdown`` or ``json`` text, as ``npf compare --format`` prints it."""
        return render(self, fmt)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for c, d in zip(self.configs, out["configs"], strict=True):
            d["verdict"] = c.verdict
        out["summary"] = self.summary()
        out["exit_code"] = self.exit_code
        return json_safe(out)


def json_safe(value: Any) -> Any:
    """JSON-able: NaN and infinities become None, tuples lists."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's unequal-variance t: (mean(b) - mean(a), its standard error, degrees of freedom)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    se = math.sqrt(va + vb)
    if se == 0:
        return float(xb.mean() - xa.mean()), 0.0, math.inf
    df = (va + vb) ** 2 / (va**2 / (xa.size - 1) + vb**2 / (xb.size - 1))
    return float(xb.mean() - xa.mean()), se, df


def _tests(a: Report, b: Report) -> list[tuple[Figure, LogRatio]]:
    """Each figure both reports carry, as a change base -> new."""
    out = []
    for f in figures.FIGURES:  # read at each call: a figure added there is compared at once
        ea, eb = f.estimate(a), f.estimate(b)
        if ea is None and eb is None:
            continue  # a figure neither run has (e.g. one a load mode adds)
        change = log_ratio(ea or _MISSING, eb or _MISSING)
        if f.comparable is not None and not f.comparable(a, b):
            change = dataclasses.replace(change, se=None)  # shown, not tested
        out.append((f, change))
    return out


_MISSING = Estimate(math.nan, None, math.inf, "none")


def _verdict(f: Figure, t: LogRatio, alpha: float, threshold_pct: float) -> MetricChange:
    """The figure's change, its interval at level ``1 - alpha`` and the verdict."""
    change = t.change_pct
    if not math.isfinite(change):
        return MetricChange(f.name, f.unit, t.base, t.new, math.nan, None, t.method, False, False, NOT_TESTED)
    beyond = abs(change) > threshold_pct
    ci = t.interval_pct(alpha)
    if ci is None:
        return MetricChange(f.name, f.unit, t.base, t.new, change, None, t.method, False, beyond, NOT_TESTED)
    significant = ci[0] > 0 or ci[1] < 0
    verdict = NO_CHANGE
    if significant and beyond:
        worse = change < 0 if f.higher_is_better else change > 0
        verdict = REGRESSION if worse else IMPROVEMENT
    return MetricChange(f.name, f.unit, t.base, t.new, change, ci, t.method, significant, beyond, verdict)


def compare_reports(
    a: Report, b: Report, threshold_pct: float = DEFAULT_THRESHOLD_PCT, confidence: float = CONFIDENCE
) -> list[MetricChange]:
    """The figures of one configuration, base ``a`` -> new ``b``, at ``confidence``
    for them together."""
    tests = _tests(a, b)
    alpha = (1 - confidence) / max(1, sum(t.testable for _, t in tests))
    return [_verdict(f, t, alpha, threshold_pct) for f, t in tests]


# ---------------------------------------------------------------------------
# the two runs, matching, and the entry point
# ---------------------------------------------------------------------------


@dataclass
class _Run:
    name: str
    reports: list[Report]
    spec: dict[str, Any]
    #: the identities of the configurations the run's sweep had (None: not recorded)
    plan: list[Identity] | None

    def ids(self) -> list[Identity]:
        return [identity(r, self.spec) for r in self.reports]


def _plan(entries: Sequence[Mapping[str, Any]] | None) -> list[Identity] | None:
    """The identities of results.json's ``plan`` (None: an older file, or one unreadable)."""
    if entries is None:
        return None
    try:
        plan = [msgspec.convert(e, PlanEntry) for e in entries]
    except msgspec.ValidationError:
        return None
    return [Identity(params=tuple(getattr(e, f) for f in SWEEP), inputs=e.input_signature or None,
                     device=e.device_type) for e in plan]  # fmt: skip


def _load(x: Results | Sequence[Report] | str | os.PathLike[str]) -> _Run:
    if isinstance(x, (str, os.PathLike)):
        x = read_results(x)
    if isinstance(x, Results):
        return _Run(str(x.path), list(x.reports), dict(x.spec), _plan(x.plan))
    return _Run("<reports>", list(x), {}, None)


Pair = tuple[Report, Report, str]


def match(
    base: Sequence[Report], new: Sequence[Report], *, strict: bool = True,
    base_spec: Mapping[str, Any] | None = None, new_spec: Mapping[str, Any] | None = None,
) -> tuple[list[Pair], list[Report], list[Report]]:  # fmt: skip
    """Pairs (base, new, "id" | "parameters") of the configurations that measured the
    same thing, then the reports found only in base, only in new. A configuration
    pairs when exactly one of the other run's matches it (an unknown input signature,
    in older files, matches any); ``strict`` False (``--allow-different``) matches on
    the sweep's parameters alone."""
    ib = [identity(r, base_spec) for r in base]
    inew = [identity(r, new_spec) for r in new]
    used: set[int] = set()
    pairs: list[Pair] = []
    only_new: list[Report] = []
    for j, r in enumerate(new):
        cands = [i for i in range(len(base)) if i not in used and ib[i].matches(inew[j], strict=strict)]
        exact = [i for i in cands if ib[i] == inew[j]]
        pick = exact if len(exact) == 1 else cands
        if len(pick) > 1:  # a tie (two base configurations alike): the one of the same id, if any
            pick = [i for i in pick if base[i].config_id == r.config_id] or pick
        if len(pick) == 1:
            i = pick[0]
            used.add(i)
            pairs.append((base[i], r, "id" if base[i].config_id == r.config_id else "parameters"))
        else:
            only_new.append(r)
    only_base = [r for i, r in enumerate(base) if i not in used]
    return pairs, only_base, only_new


def _framework(spec: Mapping[str, Any]) -> str | None:
    model = spec.get("model")
    return str(model.get("framework", "python")) if isinstance(model, Mapping) else None


def _ref_field(run: _Run) -> str:
    """The spec field that names the model: ``model.target``, ``model.path`` or ``model.index``."""
    model = run.spec.get("model")
    if isinstance(model, Mapping):
        for key in ("target", "path", "index"):
            if model.get(key) is not None:
                return f"model.{key}"
    return "model_filename"


def _vs(field: str, a: set[str], b: set[str]) -> str:
    def text(values: set[str]) -> str:
        return ", ".join(repr(v) for v in sorted(values)) or "-"

    return f"{field}: {text(a)} vs {text(b)}"


def differences(a: _Run, b: _Run) -> list[str]:
    """The fields in which two runs measure different things, as ``field: base vs new``:
    the framework (``model.framework``); the model, when both its name (``model_name``)
    and its reference (``model.target``, ``model.path``, ``model.index``) differ —
    renaming the spec or moving the model keeps it the same model, and a new version of
    the model, the usual thing to compare, keeps both; the inputs (``inputs``: no example
    shape in common); the device (``device_type``: none in common)."""
    out = []
    fa, fb = _framework(a.spec), _framework(b.spec)
    if fa and fb and fa != fb:
        out.append(_vs("model.framework", {fa}, {fb}))
    names = [{r.model_name for r in run.reports} for run in (a, b)]
    refs = [{model_reference(r, run.spec) for r in run.reports} - {""} for run in (a, b)]
    if all(names) and not names[0] & names[1] and (not all(refs) or not refs[0] & refs[1]):
        out.append(_vs("model_name", *names))
        if all(refs):
            fields = {_ref_field(a), _ref_field(b)}
            out.append(_vs(fields.pop() if len(fields) == 1 else "model", *refs))
    sigs = [{per_example(i.inputs) for i in run.ids() if i.inputs} for run in (a, b)]
    if all(sigs) and not sigs[0] & sigs[1]:
        out.append(_vs("inputs", *sigs))
    devices = [{r.device_type for r in run.reports if r.device_type} for run in (a, b)]
    if all(devices) and not devices[0] & devices[1]:
        out.append(_vs("device_type", *devices))
    return out


def _side(run: _Run) -> str:
    """A few words on what a run measured (for the 'nothing to compare' line)."""
    ids = run.ids()
    if not ids:
        return "no configuration"
    batches = sorted({r.batch_size for r in run.reports})
    text = f"{len(ids)} configuration{'s' * (len(ids) != 1)}, batch {', '.join(map(str, batches))}"
    return text + f", {', '.join(sorted({i.device for i in ids}))}"


def _expected(base_id: Identity, new: _Run, same_sweep: bool) -> bool:
    """Whether new's sweep had a configuration like ``base_id``."""
    if new.plan is not None:
        return any(base_id.matches(p) for p in new.plan)
    return same_sweep


def compare(
    base: Results | Sequence[Report] | str | os.PathLike[str],
    new: Results | Sequence[Report] | str | os.PathLike[str],
    *,
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    threshold: float | None = None,
    confidence: float = CONFIDENCE,
    allow_different: bool = False,
) -> Comparison:
    """Compare two runs (results.json files, folders holding one, read :class:`Results`,
    or lists of reports). ``threshold_pct`` (or its alias ``threshold``, as on the
    command line) is the smallest change, in percent, that counts as a regression;
    ``allow_different`` compares runs that measure different models or inputs (on
    the sweep's parameters). Raises :class:`npf_core.errors.ResultsError` for a path
    that holds no readable results."""
    if threshold is not None:
        threshold_pct = threshold
    if not 0.5 <= confidence < 1:
        from npf_core.errors import UserError

        raise UserError(f"compare: confidence {confidence!r} must be in [0.5, 1)")
    if not (threshold_pct >= 0 and math.isfinite(threshold_pct)):
        from npf_core.errors import UserError

        raise UserError(f"compare: threshold {threshold_pct!r} must be a percentage >= 0")
    a, b = _load(base), _load(new)
    result = Comparison(a.name, b.name, threshold_pct, confidence, [], allow_different=allow_different)
    result.differences = differences(a, b)
    pairs, only_base, only_new = match(a.reports, b.reports, strict=not allow_different,
                                       base_spec=a.spec, new_spec=b.spec)  # fmt: skip
    if result.differences and not allow_different:
        # the figures of different models are not compared; but a configuration that was
        # ok in BASE and failed in NEW fails the gate first (a broken new run never passes
        # as "different")
        for ra, rb, how in pairs:
            if ra.status == "ok" and rb.status != "ok":
                result.configs.append(_failed(ra, rb, how))
                result.failed_in_new.append(rb.config_id)
        if not result.failed_in_new:
            result.refused = ("BASE and NEW measure different models or inputs: " + "; ".join(result.differences)
                              + " (--allow-different compares them all the same)")  # fmt: skip
        return result
    same_sweep = bool(a.spec) and comparable_spec(a.spec) == comparable_spec(b.spec)
    result.only_in_new = [r.config_id for r in only_new]
    for r in only_base:
        if r.status == "ok" and _expected(identity(r, a.spec), b, same_sweep):
            result.missing_in_new.append(r.config_id)
        else:
            result.only_in_base.append(r.config_id)
    tests: list[list[tuple[Figure, LogRatio]]] = []
    for ra, rb, how in pairs:
        if ra.status == "ok" and rb.status != "ok":
            result.configs.append(_failed(ra, rb, how))
            result.failed_in_new.append(rb.config_id)
            tests.append([])
            continue
        c = ConfigComparison(config_id=rb.config_id, base_config_id=ra.config_id, matched_by=how)
        if ra.status != "ok" or rb.status != "ok":
            c.notes.append("failed in " + " and ".join(n for n, r in (("base", ra), ("new", rb)) if r.status != "ok"))
            tests.append([])
        else:
            tests.append(_tests(ra, rb))
            for n, r in (("base", ra), ("new", rb)):
                if not r.valid:
                    c.notes.append(f"{n} figures to read with care: " + "; ".join(r.validity_reasons))
        result.configs.append(c)
    if not any(ra.status == "ok" for ra, _, _ in pairs) and not result.missing_in_new:
        why = ("no configuration of NEW was measured in BASE" if not pairs
               else "every configuration they share failed in BASE")  # fmt: skip
        result.refused = f"nothing to compare: {why} (base: {_side(a)}; new: {_side(b)})"
        return result
    verdicts, result.tests = judge(tests, threshold_pct, confidence)
    for c, ms in zip(result.configs, verdicts, strict=True):
        c.metrics = ms
    return result


def _failed(ra: Report, rb: Report, how: str) -> ConfigComparison:
    """A configuration ok in base that failed in new, with new's error."""
    c = ConfigComparison(config_id=rb.config_id, base_config_id=ra.config_id, matched_by=how, status=FAILED_IN_NEW)
    note = "failed in new"
    if rb.error is not None:
        first = rb.error.message.splitlines()[0] if rb.error.message else ""
        note += f" ({rb.error.type}: {first})" if first else f" ({rb.error.type})"
    c.notes.append(note)
    return c


def judge(
    tests: Sequence[Sequence[tuple[Figure, LogRatio]]], threshold_pct: float, confidence: float
) -> tuple[list[list[MetricChange]], int]:
    """The verdicts of each pair's changes, and the number of tests made. Bonferroni:
    every interval at 1 - alpha/m, so that with no real change anywhere the whole
    comparison flags nothing with probability >= ``confidence``."""
    m = sum(t.testable for ts in tests for _, t in ts)
    alpha = (1 - confidence) / max(1, m)
    return [[_verdict(f, t, alpha, threshold_pct) for f, t in ts] for ts in tests], m


def changes(a: Report, b: Report) -> list[tuple[Figure, LogRatio]]:
    """The changes of every figure of one configuration, base ``a`` -> new ``b``,
    before they are judged (none when either failed)."""
    return _tests(a, b) if a.status == "ok" and b.status == "ok" else []


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------

_HEAD = ("configuration", "metric", "base", "new", "change", "95% interval", "verdict")


def _rows(c: Comparison) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for cc in c.configs:
        name = cc.config_id if cc.matched_by == "id" else f"{cc.base_config_id} -> {cc.config_id}"
        if not cc.metrics:
            rows.append((name, "-", "-", "-", "-", "-", "; ".join(cc.notes) or NOT_TESTED))
        for m in cc.metrics:
            fmt = (lambda v: f"{v:,.1f}") if m.unit == "inf/s" else (lambda v: f"{v:.3f}")
            ci = f"[{m.ci_pct[0]:+.1f}%, {m.ci_pct[1]:+.1f}%]" if m.ci_pct else "-"
            change = f"{m.change_pct:+.1f}%" if math.isfinite(m.change_pct) else "-"
            rows.append((name, f"{m.metric} {m.unit}", fmt(m.base), fmt(m.new), change, ci, m.verdict))
    return rows


def render(c: Comparison, fmt: str = "table") -> str:
    """``table`` (aligned text), ``markdown`` (a pipe table) or ``json``."""
    if fmt == "json":
        import json

        return json.dumps(c.to_dict(), indent=1)
    if c.refused:
        return f"**npf compare**: {c.refused}" if fmt == "markdown" else c.refused
    rows = _rows(c)
    lines = []
    if fmt == "markdown":
        lines.append(f"**npf compare** `{c.base}` → `{c.new}`\n")
        lines.append("| " + " | ".join(_HEAD) + " |")
        lines.append("|" + "|".join("---:" if i in (2, 3, 4) else "---" for i in range(len(_HEAD))) + "|")
        lines += ["| " + " | ".join(r).replace("`", "") + " |" for r in rows]
        extra = _extras(c)
        if extra:
            lines.append("")
            lines += [f"- {e}" for e in extra]
        lines.append(f"\n**{c.summary()}**")
    else:
        lines = _table(c)
    return "\n".join(lines)


#: the table format's width: a terminal's 80 columns
WIDTH = 80


def _wrap(text: str, indent: str = "  ") -> list[str]:
    """A line wrapped at :data:`WIDTH` between words (a path or a figure with its
    unit is never split), continued with ``indent``."""
    import textwrap

    return textwrap.wrap(text, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False) or [""]


def _table(c: Comparison) -> list[str]:
    """The table format, within 80 columns: each configuration on a line of its own,
    its metrics under it; every figure with its unit (``1.23 ms``, ``31,133``)."""
    from npf_core.results.units import fmt_latency, fmt_rate

    head = ("metric", "base", "new", "change", "95% interval", "verdict")
    rows: list[tuple[str, ...] | str] = []
    for cc in c.configs:
        name = cc.config_id if cc.matched_by == "id" else f"{cc.base_config_id} -> {cc.config_id}"
        rows.append(name)
        if not cc.metrics:
            rows.append(("-", "-", "-", "-", "-", "; ".join(cc.notes) or NOT_TESTED))
        for m in cc.metrics:
            fmt = fmt_rate if m.unit == "inf/s" else fmt_latency
            metric = "inf/s" if m.unit == "inf/s" else m.metric  # as the console table heads its column
            ci = f"[{m.ci_pct[0]:+.1f}%, {m.ci_pct[1]:+.1f}%]" if m.ci_pct else "-"
            change = f"{m.change_pct:+.1f}%" if math.isfinite(m.change_pct) else "-"
            rows.append((metric, fmt(m.base), fmt(m.new), change, ci, m.verdict))
    table = [r for r in rows if isinstance(r, tuple)]
    widths = [max(len(x) for x in col) for col in zip(head, *table, strict=True)]
    right = {1, 2, 3}

    def line(r: tuple[str, ...]) -> str:
        cells = zip(r, widths, strict=False)  # (a row without its verdict: one cell fewer)
        return "  " + "  ".join(x.rjust(w) if i in right else x.ljust(w) for i, (x, w) in enumerate(cells))

    lines = []
    for r in (head, *rows):
        if isinstance(r, str):
            lines += _wrap(r, "    ")
        elif len(line(r).rstrip()) > WIDTH:  # a long verdict or note: on lines of its own
            lines.append(line(r[:-1]).rstrip())
            lines += _wrap(" " * 4 + r[-1], " " * 6)
        else:
            lines.append(line(r).rstrip())
    for extra in _extras(c):
        lines += _wrap(extra)
    lines += _wrap(c.summary())
    return lines


def _extras(c: Comparison) -> list[str]:
    out = [f"note {cc.config_id}: {n}" for cc in c.configs if cc.metrics for n in cc.notes]
    if c.missing_in_new:
        out.append("missing in new (its sweep had them; ok in base): " + ", ".join(c.missing_in_new))
    if c.only_in_base:
        out.append("only in base (not compared): " + ", ".join(c.only_in_base))
    if c.only_in_new:
        out.append("only in new (not compared): " + ", ".join(c.only_in_new))
    return out
