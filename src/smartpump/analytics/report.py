"""CQI report: every metric as CSV sections, or one self-contained HTML page with inline SVG charts.

The HTML uses no script, no CDN and no external asset; every text (drug names included) is escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from io import StringIO
from typing import Final

import polars as pl

from smartpump.analytics import metrics
from smartpump.analytics.metrics import Dimension

SYNTHETIC_BANNER: Final = "SYNTHETIC DATA - NOT FROM REAL PATIENTS"
FORMULA_START: Final = r"^[=+\-@\t\r]"
"""A text cell a spreadsheet would run as a formula (OWASP CSV injection): written with a ``'`` first."""


@dataclass(frozen=True, slots=True)
class Section:
    """One report section: title, the metric table and the column charted (None: table only)."""

    title: str
    table: pl.DataFrame
    chart_column: str | None


def sections(
    events: pl.DataFrame, latest_version: int, progress: Callable[[str], None] | None = None
) -> list[Section]:
    """Compute every CQI metric for the report (by care area, by week, top entries)."""
    area, week = Dimension.CARE_AREA, Dimension.WEEK
    plan: list[tuple[str, Callable[[], pl.DataFrame], str | None]] = [
        (
            "DERS compliance by care area (target 95 %)",
            lambda: metrics.compliance(events, area),
            "compliance",
        ),
        ("DERS compliance by week", lambda: metrics.compliance(events, week), "compliance"),
        ("Alerts per 100 infusions by care area", lambda: metrics.alerts(events, area), "soft_per_100"),
        ("Overrides by care area", lambda: metrics.overrides(events, area), "override_rate"),
        ("Good catches by care area", lambda: metrics.good_catches(events, area), "good_catches"),
        ("Hard-stop hits by care area", lambda: metrics.hard_stops(events, area), "hard_stops"),
        ("Top alerting entries", lambda: metrics.top_alerting_entries(events), "alerts"),
        (
            f"Outdated library use (latest version {latest_version})",
            lambda: metrics.outdated_library(events, area, latest_version),
            "outdated_share",
        ),
        ("Auto-programmed share", lambda: metrics.auto_programmed(events, area), "auto_programmed_share"),
        ("Alarms per pump-hour by care area and type", lambda: metrics.alarms(events, area), None),
    ]
    out: list[Section] = []
    for title, compute, column in plan:
        if progress is not None:
            progress(title)
        out.append(Section(title, compute(), column))
    return out


def to_csv(parts: list[Section]) -> str:
    """All sections as one CSV text: a ``# title`` line, then the table with its header. Text that
    arrived with the telemetry (care areas, entries, drugs) is formula-safe: a cell starting with
    ``= + - @``, tab or CR gets a leading ``'``, so a spreadsheet shows it instead of running it."""
    buffer = StringIO()
    for part in parts:
        buffer.write(f"# {part.title}\n")
        flat = part.table.with_columns(pl.col(pl.List(pl.String)).list.join(";"))
        safe = flat.with_columns(pl.col(pl.String).str.replace(FORMULA_START, "'$0"))
        buffer.write(safe.write_csv())
        buffer.write("\n")
    return buffer.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value))


def _table(frame: pl.DataFrame) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def bar_chart(labels: list[str], values: list[float], title: str) -> str:
    """A horizontal bar chart as inline SVG (escaped labels, no external assets)."""
    width, bar_h, label_w = 640, 18, 220
    top = max([v for v in values if v == v] or [0.0]) or 1.0
    height = bar_h * len(labels) + 24
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 20 + i * bar_h
        length = 0.0 if value != value else (width - label_w - 80) * value / top
        bars.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{length:.1f}" height="{bar_h - 4}" fill="#3b6ea5"/>'
            f'<text x="{label_w + length + 4:.1f}" y="{y + 13}">{value:.3g}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">'
        f'<text x="0" y="12" font-weight="bold">{escape(title)}</text>{"".join(bars)}</svg>'
    )


def to_html(parts: list[Section], *, title: str, synthetic: bool) -> str:
    """A self-contained HTML report: one chart and one table per section."""
    body: list[str] = []
    if synthetic:
        body.append(f'<p class="banner">{escape(SYNTHETIC_BANNER)}</p>')
    for part in parts:
        body.append(f"<h2>{escape(part.title)}</h2>")
        column = part.chart_column
        if column is not None and not part.table.is_empty():
            labels = [str(v) for v in part.table[part.table.columns[0]].to_list()]
            values = [float("nan") if v is None else float(v) for v in part.table[column].to_list()]
            body.append(bar_chart(labels, values, column))
        body.append(_table(part.table) if not part.table.is_empty() else "<p>No data.</p>")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}.banner{background:#fde68a;padding:6px}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{style}</style></head>"
        f"<body><h1>{escape(title)}</h1>{''.join(body)}</body></html>"
    )
