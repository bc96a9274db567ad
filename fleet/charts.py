"""Chart building: plotly figures and the data tables behind them, from plain figures (no Flask, no database).

Every builder takes the already-translated strings it shows (titles, axis labels, column headers), so
the same function serves both languages and is tested without a request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import plotly.graph_objects as go

# Browser-side options for Plotly.newPlot: no plotly logo linking outside the intranet; charts follow
# the width of the page on a laptop or a phone.
PLOT_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}

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

    def payload(self) -> str:
        """Figure and config as JSON that is safe inside <script type="application/json">."""
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


@dataclass(frozen=True)
class CountyCount:
    label: str
    total: int
    nev: int


def _layout(figure: go.Figure, title: str, height: int, **extra: Any) -> go.Figure:
    figure.update_layout(
        title={"text": title, "x": 0, "xanchor": "left"},
        height=height,
        template="plotly_white",
        font={"family": FONT_FAMILY, "size": 13},
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        **extra,
    )
    return figure


def percent(share: Real | None) -> str:
    """A share as the tables write it: 66.7%, or a dash when there is none."""
    return "—" if share is None else f"{float(share):.1%}"


def _float(value: Real | None) -> float | None:
    return None if value is None else float(value)


def _bar_text(bar: ShareBar, text: ChartText) -> str:
    label = f"{bar.share:.0%} ({bar.nev}/{bar.in_scope})"
    if bar.shortfall:
        label += " · " + text.short_by % {"count": bar.shortfall}
    return label


def _share_bars(bars: Sequence[ShareBar], text: ChartText) -> go.Bar:
    return go.Bar(
        x=[b.share for b in bars],
        y=[b.label for b in bars],
        orientation="h",
        marker_color=[STATUS_COLOURS.get(b.status, STATUS_COLOURS["no_data"]) for b in bars],
        text=[_bar_text(b, text) for b in bars],
        textposition="auto",
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
    table. Beyond `limit` agencies the chart keeps the lowest shares — the ones to follow up.
    """
    ranked = sorted((b for b in bars if b.share is not None), key=lambda b: (-b.share, b.label))
    shown = ranked[-limit:] if len(ranked) > limit else ranked
    figure = go.Figure(_share_bars(shown, text))
    line = _float(threshold)
    if line is not None:
        figure.add_shape(
            type="line", x0=line, x1=line, y0=0, y1=1, yref="paper",
            line={"color": "#212121", "width": 2, "dash": "dash"},
        )
        figure.add_annotation(
            x=line, y=1, yref="paper", yanchor="bottom", showarrow=False, text=f"{text.threshold} {line:.0%}"
        )
    _layout(
        figure,
        title,
        height=max(200, 110 + 28 * len(shown)),
        xaxis={"tickformat": ".0%", "range": [0, 1.05], "title": {"text": text.share}},
        # Highest share on top, as a ranking reads.
        yaxis={"autorange": "reversed", "automargin": True},
    )
    table = Table(
        [text.agency, text.in_scope, text.nev, text.share, text.threshold, text.shortfall, text.status],
        [
            [b.label, b.in_scope, b.nev, percent(b.share), percent(threshold), b.shortfall,
             text.statuses.get(b.status, b.status)]
            for b in ranked + [b for b in bars if b.share is None]
        ],
    )
    note = text.lowest_shown % {"count": len(shown), "total": len(ranked)} if len(shown) < len(ranked) else None
    return Chart(key, title, figure, table, note)


def rule_shares(key: str, title: str, bars: Sequence[ShareBar], text: ChartText) -> Chart:
    """One agency's rules, each as its share with a marker at that rule's own threshold."""
    figure = go.Figure(_share_bars(bars, text))
    with_threshold = [b for b in bars if b.threshold is not None]
    figure.add_trace(
        go.Scatter(
            x=[b.threshold for b in with_threshold],
            y=[b.label for b in with_threshold],
            mode="markers",
            marker={"symbol": "line-ns", "size": 34, "line": {"width": 3, "color": "#212121"}},
            name=text.threshold,
            hovertemplate=f"{text.threshold} %{{x:.0%}}<extra></extra>",
        )
    )
    _layout(
        figure,
        title,
        height=max(200, 110 + 44 * len(bars)),
        xaxis={"tickformat": ".0%", "range": [0, 1.05], "title": {"text": text.share}},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    table = Table(
        [text.rule, text.in_scope, text.nev, text.share, text.threshold, text.shortfall, text.status],
        [
            [b.label, b.in_scope, b.nev, percent(b.share), percent(b.threshold), b.shortfall,
             text.statuses.get(b.status, b.status)]
            for b in bars
        ],
    )
    return Chart(key, title, figure, table)


def share_trend(key: str, title: str, months: Sequence[str], lines: Sequence[TrendLine], text: ChartText) -> Chart:
    """Month-by-month share of each rule, each with its threshold as a dashed line of the same colour."""
    figure = go.Figure()
    for index, line in enumerate(lines):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        figure.add_trace(
            go.Scatter(
                x=list(months), y=list(line.shares), mode="lines+markers", name=line.label,
                line={"color": colour}, connectgaps=False, legendgroup=line.label,
                hovertemplate=f"{line.label}<br>%{{x}} %{{y:.1%}}<extra></extra>",
            )
        )
        if line.threshold is not None:
            figure.add_trace(
                go.Scatter(
                    x=list(months), y=[line.threshold] * len(months), mode="lines",
                    name=f"{line.label} · {text.threshold}", legendgroup=line.label, showlegend=False,
                    line={"color": colour, "dash": "dash", "width": 1},
                    hovertemplate=f"{line.label} {text.threshold} %{{y:.0%}}<extra></extra>",
                )
            )
    _layout(
        figure,
        title,
        height=380,
        xaxis={"title": {"text": text.month}, "type": "category"},
        yaxis={"tickformat": ".0%", "range": [0, 1.05], "title": {"text": text.share}},
    )
    table = Table(
        [text.month] + [line.label for line in lines],
        [[month] + [percent(line.shares[i]) for line in lines] for i, month in enumerate(months)],
    )
    return Chart(key, title, figure, table)


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
    figure = go.Figure(
        [
            go.Bar(
                x=[label for _, label in shown_categories],
                y=[counts.get((category, power), 0) for category, _ in shown_categories],
                name=power_label,
                marker_color=POWER_COLOURS.get(power, POWER_COLOURS["其他"]),
                hovertemplate=f"%{{x}}<br>{power_label} %{{y}}<extra></extra>",
            )
            for power, power_label in shown_powers
        ]
    )
    _layout(
        figure,
        title,
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
    return Chart(key, title, figure, table)


def county_breakdown(key: str, title: str, counties: Sequence[CountyCount], text: ChartText) -> Chart:
    """Acquisitions per county, NEV and other stacked, with the NEV share written on each bar."""
    labels = [c.label for c in counties]
    figure = go.Figure(
        [
            go.Bar(
                x=labels, y=[c.nev for c in counties], name=text.nev, marker_color=NEV_COLOUR,
                text=[percent(c.nev / c.total) if c.total else "" for c in counties], textposition="inside",
            ),
            go.Bar(x=labels, y=[c.total - c.nev for c in counties], name=text.other, marker_color=OTHER_COLOUR),
        ]
    )
    _layout(
        figure,
        title,
        height=380,
        barmode="stack",
        xaxis={"title": {"text": text.county}},
        yaxis={"title": {"text": text.count}},
    )
    table = Table(
        [text.county, text.total, text.nev, text.share],
        [[c.label, c.total, c.nev, percent(c.nev / c.total if c.total else None)] for c in counties],
    )
    return Chart(key, title, figure, table)
