"""Chart building: plotly figures and the data tables behind them, from plain figures (no Flask, no database).

Every builder takes the already-translated strings it shows (titles, axis labels, column headers), so
the same function serves both languages and is tested without a request.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from numbers import Real
from typing import Any

import plotly.graph_objects as go

# Browser-side options for Plotly.newPlot. Nothing may leave the intranet: no plotly logo linking out,
# and no "Share chart" button, which plotly.js 3 shows by default and which uploads the chart's data
# to Plotly Cloud. Charts follow the width of the page; the toolbar keeps download, zoom and pan.
PLOT_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "responsive": True,
    "modeBarButtonsToRemove": [
        "sendChartToCloud", "select2d", "lasso2d", "toggleSpikelines", "hoverClosestCartesian", "hoverCompareCartesian",
    ],
}

STATUS_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "no_data": "#9e9e9e"}
NEV_COLOUR = "#2e7d32"
OTHER_COLOUR = "#b0bec5"
# One colour per power type; hydrogen (燃料电池) gets a blue of its own so its growth stands out.
POWER_COLOURS = {
    "纯电动": "#1b9e77",
    "插电式混合动力": "#66c2a5",
    "增程式": "#a6d854",
    "燃料电池": "#1f5fbf",
    "汽油": "#e6ab02",
    "柴油": "#8c564b",
    "天然气": "#e7298a",
    "油电混合": "#fdbf6f",
    "其他": "#bdbdbd",
}
SERIES_COLOURS = ("#1f5fbf", "#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#66a61e", "#a6761d")
# Fonts the reader's machine has: nothing is fetched, Chinese glyphs come from the system.
FONT_FAMILY = "'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', 'Source Han Sans SC', sans-serif"
# Beyond this many agencies a ranking chart shows the ones furthest behind; the table keeps them all.
RANKED_BARS = 30


@dataclass(frozen=True)
class ChartText:
    """The words charts show, translated by the caller.

    `short_by` takes %(count)s; `lowest_shown` takes %(count)s and %(total)s.
    """

    share: str
    threshold: str
    in_scope: str
    nev: str
    other: str
    shortfall: str
    short_by: str
    lowest_shown: str
    status: str
    statuses: Mapping[str, str]
    month: str
    count: str
    total: str
    category: str
    county: str
    agency: str
    rule: str
    projected: str = ""  # the label of a share projected with the purchase plan


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True)
class Chart:
    """A figure and the table of the same numbers, shown with it for those who prefer numbers."""

    key: str
    title: str
    figure: go.Figure
    table: Table
    note: str | None = None
    # Nothing to draw (no share, no acquisition): the page says so instead of showing empty axes.
    empty: bool = False

    @cached_property
    def payload(self) -> str:
        """Figure and config as JSON that is safe inside <script type="application/json">; written
        once per chart, so a cached chart costs nothing more to show again."""
        text = '{"figure": %s, "config": %s}' % (self.figure.to_json(), json.dumps(PLOT_CONFIG))
        # Only JSON strings can hold these characters, and there the \u escapes mean the same.
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclass(frozen=True)
class ShareBar:
    """One result as a bar: an agency under a rule (ranking), or one rule of an agency."""

    label: str
    share: float | None
    in_scope: int
    nev: int
    shortfall: int
    status: str
    threshold: float | None = None


@dataclass(frozen=True)
class TrendLine:
    """A rule's month-by-month share (None where nothing was in scope) and its threshold."""

    label: str
    shares: Sequence[float | None]
    threshold: float | None = None
    projected: float | None = None  # the year's share as planned, drawn dotted to the last month


@dataclass(frozen=True)
class CountyCount:
    label: str
    total: int
    nev: int


def _figure(
    traces: Sequence[go.Bar | go.Scatter], height: int, *, xaxis: dict[str, Any], yaxis: dict[str, Any], **layout: Any
) -> go.Figure:
    """A figure without a title of its own: the page writes the title above it as a heading, where it
    neither collides with the legend nor hides from screen readers. The layout goes into the
    constructor in one piece, validated once (update_layout takes several times longer)."""
    return go.Figure(
        data=list(traces),
        layout={
            "height": height,
            # No named template: plotly.js defaults look clean, and the JSON stays small (a template
            # adds 6 kB to every chart) and quick to build.
            "template": "none",
            "font": {"family": FONT_FAMILY, "size": 13},
            "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
            # A legend outside the plot pushes the margin as far as it needs.
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
            "xaxis": {"automargin": True, **xaxis},
            "yaxis": {"automargin": True, **yaxis},
            **layout,
        },
    )


def percent(share: Real | None) -> str:
    """A share as the tables write it: 66.7%, or a dash when there is none."""
    return "—" if share is None else f"{float(share):.1%}"


def _float(value: Real | None) -> float | None:
    return None if value is None else float(value)


def _wrap(label: str, width: int = 16) -> str:
    """A long label broken into lines, so a rule's title does not squeeze its bar off the chart:
    English between words (never mid-word), Chinese, which has no spaces, every `width` characters."""
    if " " in label.strip():
        return "<br>".join(textwrap.wrap(label, width=max(width, 24), break_long_words=False)) or label
    return "<br>".join(label[i : i + width] for i in range(0, len(label), width)) or label


def _bar_text(bar: ShareBar, text: ChartText) -> str:
    if bar.share is None:
        # Nothing in scope: no bar, and the words of the no-data status where it would be.
        return text.statuses.get("no_data", "")
    label = f"{bar.share:.0%} ({bar.nev}/{bar.in_scope})"
    if bar.shortfall:
        label += " · " + text.short_by % {"count": bar.shortfall}
    return label


def _phone_text(bar: ShareBar, text: ChartText) -> str:
    return text.statuses.get("no_data", "") if bar.share is None else f"{bar.share:.0%}"


def _share_bars(bars: Sequence[ShareBar], text: ChartText) -> go.Bar:
    return go.Bar(
        x=[b.share for b in bars],
        y=[_wrap(b.label) for b in bars],
        orientation="h",
        marker_color=[STATUS_COLOURS.get(b.status, STATUS_COLOURS["no_data"]) for b in bars],
        text=[_bar_text(b, text) for b in bars],
        textposition="auto",
        # Drawn past the axis end rather than cut there; on a phone (charts.js) the bar says only its
        # share, which fits, and the rest is in the hover and the table.
        cliponaxis=False,
        meta={"phone_text": [_phone_text(b, text) for b in bars]},
        customdata=[[b.nev, b.in_scope, b.shortfall] for b in bars],
        hovertemplate=(
            f"%{{y}}<br>{text.share} %{{x:.1%}}<br>{text.nev} %{{customdata[0]}} / {text.in_scope} "
            f"%{{customdata[1]}}<br>{text.shortfall} %{{customdata[2]}}<extra></extra>"
        ),
        name=text.share,
        showlegend=False,
    )


def ranked_shares(
    key: str,
    title: str,
    bars: Sequence[ShareBar],
    threshold: Real | None,
    text: ChartText,
    *,
    limit: int = RANKED_BARS,
) -> Chart:
    """Agencies under one rule, highest share first, coloured by status, against the threshold line.

    Agencies with nothing in scope have no share: they stay out of the chart and at the end of the
    table. Beyond `limit` agencies the chart and its table keep the lowest shares — the ones to follow
    up — so that a province of thousands of agencies stays a readable page; the rule page lists all.
    """
    ranked = sorted((b for b in bars if b.share is not None), key=lambda b: (-b.share, b.label))
    shown = ranked[-limit:] if len(ranked) > limit else ranked
    line = _float(threshold)
    marks: dict[str, Any] = {}
    if line is not None:
        marks["shapes"] = [
            {"type": "line", "x0": line, "x1": line, "y0": 0, "y1": 1, "yref": "paper",
             "line": {"color": "#212121", "width": 2, "dash": "dash"}}
        ]
        marks["annotations"] = [
            # Written on the side of the line with room, so 100% does not run off the chart.
            {"x": line, "y": 1, "yref": "paper", "yanchor": "bottom", "showarrow": False,
             "xanchor": "right" if line > 0.5 else "left", "text": f"{text.threshold} {line:.0%}"}
        ]
    figure = _figure(
        [_share_bars(shown, text)],
        height=max(200, 110 + 28 * len(shown)),
        xaxis={"tickformat": ".0%", "range": [0, 1.05], "title": {"text": text.share}},
        # Highest share on top, as a ranking reads.
        yaxis={"autorange": "reversed"},
        **marks,
    )
    table = Table(
        [text.agency, text.in_scope, text.nev, text.share, text.threshold, text.shortfall, text.status],
        [
            [b.label, b.in_scope, b.nev, percent(b.share), percent(threshold), b.shortfall,
             text.statuses.get(b.status, b.status)]
            for b in (shown if len(shown) < len(ranked) else ranked + [b for b in bars if b.share is None])
        ],
    )
    note = text.lowest_shown % {"count": len(shown), "total": len(ranked)} if len(shown) < len(ranked) else None
    return Chart(key, title, figure, table, note, empty=not shown)


def rule_shares(key: str, title: str, bars: Sequence[ShareBar], text: ChartText) -> Chart:
    """One agency's rules, each as its share with a marker at that rule's own threshold."""
    with_threshold = [b for b in bars if b.threshold is not None]
    thresholds = go.Scatter(
        x=[b.threshold for b in with_threshold],
        y=[_wrap(b.label) for b in with_threshold],
        mode="markers",
        marker={"symbol": "line-ns", "size": 34, "line": {"width": 3, "color": "#212121"}},
        name=text.threshold,
        hovertemplate=f"{text.threshold} %{{x:.0%}}<extra></extra>",
    )
    figure = _figure(
        [_share_bars(bars, text), thresholds],
        height=max(200, 110 + 44 * len(bars)),
        xaxis={"tickformat": ".0%", "range": [0, 1.05], "title": {"text": text.share}},
        yaxis={"autorange": "reversed"},
    )
    table = Table(
        [text.rule, text.in_scope, text.nev, text.share, text.threshold, text.shortfall, text.status],
        [
            [b.label, b.in_scope, b.nev, percent(b.share), percent(b.threshold), b.shortfall,
             text.statuses.get(b.status, b.status)]
            for b in bars
        ],
    )
    return Chart(key, title, figure, table, empty=all(b.share is None for b in bars))


def share_trend(key: str, title: str, months: Sequence[str], lines: Sequence[TrendLine], text: ChartText) -> Chart:
    """Month-by-month share of each rule, each with its threshold as a dashed line of the same colour."""
    traces: list[go.Scatter] = []
    for index, line in enumerate(lines):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        traces.append(
            go.Scatter(
                x=list(months), y=list(line.shares), mode="lines+markers", name=line.label,
                line={"color": colour}, connectgaps=False, legendgroup=line.label,
                hovertemplate=f"{line.label}<br>%{{x}} %{{y:.1%}}<extra></extra>",
            )
        )
        if line.projected is not None and months:
            # From the last month with a share (the first month when none has one) to the year's end.
            start = max((i for i, share in enumerate(line.shares) if share is not None), default=0)
            start_share = line.shares[start] if line.shares[start] is not None else line.projected
            traces.append(
                go.Scatter(
                    x=[months[start], months[-1]], y=[start_share, line.projected], mode="lines+markers",
                    name=f"{line.label} · {text.projected}", legendgroup=line.label, showlegend=False,
                    line={"color": colour, "dash": "dot"},
                    hovertemplate=f"{line.label} {text.projected} %{{y:.1%}}<extra></extra>",
                )
            )
        if line.threshold is not None:
            traces.append(
                go.Scatter(
                    x=list(months), y=[line.threshold] * len(months), mode="lines",
                    name=f"{line.label} · {text.threshold}", legendgroup=line.label, showlegend=False,
                    line={"color": colour, "dash": "dash", "width": 1},
                    hovertemplate=f"{line.label} {text.threshold} %{{y:.0%}}<extra></extra>",
                )
            )
    figure = _figure(
        traces,
        height=380,
        xaxis={"title": {"text": text.month}, "type": "category"},
        yaxis={"tickformat": ".0%", "range": [0, 1.05], "title": {"text": text.share}},
    )
    rows = [[month] + [percent(line.shares[i]) for line in lines] for i, month in enumerate(months)]
    if any(line.projected is not None for line in lines):
        rows.append([text.projected] + [percent(line.projected) for line in lines])
    table = Table([text.month] + [line.label for line in lines], rows)
    empty = all(share is None for line in lines for share in line.shares) and all(line.projected is None for line in lines)
    return Chart(key, title, figure, table, empty=empty)


def power_mix(
    key: str,
    title: str,
    counts: Mapping[tuple[str, str], int],
    categories: Sequence[tuple[str, str]],
    powers: Sequence[tuple[str, str]],
    text: ChartText,
) -> Chart:
    """Acquisitions per category, stacked by power type; `categories` and `powers` are (value, label)
    in display order. Categories and power types without any acquisition are left out."""
    shown_categories = [(v, label) for v, label in categories if any(counts.get((v, p), 0) for p, _ in powers)]
    shown_powers = [(v, label) for v, label in powers if any(counts.get((c, v), 0) for c, _ in categories)]
    figure = _figure(
        [
            go.Bar(
                x=[label for _, label in shown_categories],
                y=[counts.get((category, power), 0) for category, _ in shown_categories],
                name=power_label,
                marker_color=POWER_COLOURS.get(power, POWER_COLOURS["其他"]),
                hovertemplate=f"%{{x}}<br>{power_label} %{{y}}<extra></extra>",
            )
            for power, power_label in shown_powers
        ],
        height=420,
        barmode="stack",
        xaxis={"title": {"text": text.category}},
        yaxis={"title": {"text": text.count}},
    )
    table = Table(
        [text.category] + [label for _, label in shown_powers] + [text.total],
        [
            [label]
            + [counts.get((category, power), 0) for power, _ in shown_powers]
            + [sum(counts.get((category, power), 0) for power, _ in shown_powers)]
            for category, label in shown_categories
        ],
    )
    return Chart(key, title, figure, table, empty=not shown_categories)


def county_breakdown(key: str, title: str, counties: Sequence[CountyCount], text: ChartText) -> Chart:
    """Acquisitions per county, NEV and other stacked, with the NEV share written after each bar.

    The bars lie down, one county per row: county names stay level and whole at any width (standing
    bars rotated and shrank them, and cut the last one), and the first county is on top as in the table."""
    labels = [c.label for c in counties]
    figure = _figure(
        [
            go.Bar(
                y=labels, x=[c.nev for c in counties], name=text.nev, marker_color=NEV_COLOUR, orientation="h",
                hovertemplate=f"%{{y}}<br>{text.nev} %{{x}}<extra></extra>",
            ),
            go.Bar(
                y=labels, x=[c.total - c.nev for c in counties], name=text.other, marker_color=OTHER_COLOUR, orientation="h",
                # The share goes after the whole bar (the last of the stack), where it is never squeezed
                # into a thin NEV segment.
                text=[percent(c.nev / c.total) if c.total else "" for c in counties], textposition="outside",
                cliponaxis=False, hovertemplate=f"%{{y}}<br>{text.other} %{{x}}<extra></extra>",
            ),
        ],
        height=max(220, 120 + 34 * len(counties)),
        barmode="stack",
        xaxis={"title": {"text": text.count}},
        yaxis={"autorange": "reversed"},
        # Room on the right for the share written after the longest bar.
        margin={"l": 10, "r": 56, "t": 30, "b": 10},
    )
    table = Table(
        [text.county, text.total, text.nev, text.share],
        [[c.label, c.total, c.nev, percent(c.nev / c.total if c.total else None)] for c in counties],
    )
    return Chart(key, title, figure, table, empty=not any(c.total for c in counties))
