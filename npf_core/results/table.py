"""The list that ``benchmark`` returns, for notebooks: displayed as an HTML table
(``_repr_html_``, which Jupyter calls) and converted with ``.to_pandas()`` (one row
per configuration; pandas is optional and imported only then).

:class:`ReportList` is a ``list`` (of :class:`~npf_core.results.report.Report` from
``npf_core.benchmark``, or of NeuronPerf's report dicts from the front door), so
everything a list does still works; a front door wraps its return value with
:func:`report_list`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from npf_core.errors import NpfError
from npf_core.results.failures import describe_error
from npf_core.results.report import NEURONPERF_COLUMNS, ErrorInfo, Report
from npf_core.results.units import fmt_latency, fmt_rate

__all__ = ["PandasMissing", "ReportList", "report_list", "report_rows"]

#: per-call data too bulky for a table row (kept in results.json)
BULKY = ("latency_histogram", "throughput_windows", "cpu_percents", "mem_percents")

#: (heading, key, how) of the HTML table, in the console's order
HTML_COLUMNS = (
    ("configuration", "config_id", "s"),
    ("inf/s", "throughput_avg", "rate"),
    ("p50", "latency_ms_p50", "ms"),
    ("p99", "latency_ms_p99", "ms"),
    ("models", "n_models", "s"),
    ("workers", "workers_per_model", "s"),
    ("pipeline", "pipeline_size", "s"),
    ("batch", "batch_size", "s"),
    ("status", "status", "s"),
)


class PandasMissing(NpfError, ImportError):
    """``.to_pandas()`` without pandas installed."""

    def __init__(self) -> None:
        super().__init__("to_pandas() needs pandas, which is not installed: pip install pandas (or 'npf[pandas]')")


def _row(item: Any) -> dict[str, Any]:
    """One configuration as a flat dict: a Report's fields or a report dict's keys,
    NaN as None, the error as ``error_type``/``error_stage``/``error_message``, the
    metrics (evaluate mode) as columns of their own, bulky per-call data left out."""
    if isinstance(item, Report):
        data = item.to_dict()
        error = item.error
    elif isinstance(item, Mapping):
        data = dict(item)
        raw = data.get("error")
        error = ErrorInfo(**{k: v for k, v in raw.items() if k in ErrorInfo.__struct_fields__}) if isinstance(
            raw, Mapping) and "type" in raw and "message" in raw else None  # fmt: skip
    else:
        raise TypeError(f"a report list holds reports or report dicts, not {type(item).__name__}")
    for key in BULKY:
        data.pop(key, None)
    raw_error = data.pop("error", None)
    if error is not None:
        data["error_type"] = error.type
        data["error_stage"] = error.stage
        data["error_message"] = describe_error(error)[1]
    elif raw_error:
        data["error_message"] = str(raw_error)
    metrics = data.pop("metrics", None)
    if isinstance(metrics, Mapping):
        for k, v in metrics.items():
            data.setdefault(k, v)
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}


def report_rows(items: Iterable[Any]) -> list[dict[str, Any]]:
    """The rows of :meth:`ReportList.to_pandas`: NeuronPerf's columns first, then the rest."""
    rows = [_row(x) for x in items]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    order = [k for k in NEURONPERF_COLUMNS if k in keys] + [k for k in keys if k not in NEURONPERF_COLUMNS]
    return [{k: r.get(k) for k in order} for r in rows]


def _cell(row: dict[str, Any], key: str, how: str) -> str:
    v = row.get(key)
    if how == "rate":
        text = fmt_rate(v)
    elif how == "ms":
        text = fmt_latency(v)
    else:
        text = "-" if v is None else str(v)
    if key == "status" and row.get("valid") is False and v == "ok":
        text = "ok?"
    align = "left" if how == "s" and key in ("config_id", "status") else "right"
    return f'<td style="text-align:{align}">{escape(text)}</td>'


def _html(items: list[Any]) -> str:
    rows = report_rows(items)
    if not rows:
        return "<p>no configurations</p>"
    cols = [c for c in HTML_COLUMNS if any(c[1] in r for r in rows)]
    if not any("config_id" in r and r["config_id"] for r in rows):
        cols = [c for c in cols if c[1] != "config_id"]
    reasons = any(r.get("error_message") for r in rows)
    head = "".join(f"<th>{escape(h)}</th>" for h, _, _ in cols) + ("<th>error</th>" if reasons else "")
    body = []
    for r in rows:
        cells = "".join(_cell(r, key, how) for _, key, how in cols)
        if reasons:
            cells += f'<td style="text-align:left">{escape(str(r.get("error_message") or ""))}</td>'
        body.append(f"<tr>{cells}</tr>")
    n = len(rows)
    caption = f"{n} configuration{'s' * (n != 1)}; latencies per call; .to_pandas() for every field"
    return (f'<table class="npf-reports"><caption style="caption-side:bottom;text-align:left">{escape(caption)}'
            f"</caption><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")  # fmt: skip


class ReportList(list):
    """A list of reports (or NeuronPerf's report dicts) that a notebook shows as a
    table; ``.to_pandas()`` gives a DataFrame with one row per configuration."""

    def _repr_html_(self) -> str:
        return _html(list(self))

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame``, one row per configuration (NeuronPerf's columns first).
        Raises :class:`PandasMissing` (an ImportError) when pandas is not installed."""
        try:
            import pandas
        except ImportError:
            raise PandasMissing() from None
        return pandas.DataFrame(report_rows(self))


def report_list(items: Iterable[Any]) -> ReportList:
    """``items`` as a :class:`ReportList` (the front door wraps its return value so)."""
    return items if isinstance(items, ReportList) else ReportList(items)
