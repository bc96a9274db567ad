"""Chart builders on known figures: the traces, the threshold line, the stacks and the tables behind them."""

from __future__ import annotations

import json
from fractions import Fraction

from fleet.read.charts import (
    PLOT_CONFIG,
    POWER_COLOURS,
    STATUS_COLOURS,
    ChartText,
    CountyCount,
    ShareBar,
    TrendLine,
    county_breakdown,
    percent,
    power_mix,
    ranked_shares,
    rule_shares,
    share_trend,
)

TEXT = ChartText(
    share="新能源占比",
    threshold="达标线",
    in_scope="纳入考核",
    nev="新能源",
    other="非新能源",
    shortfall="缺口",
    short_by="还差 %(count)s 辆",
    lowest_shown="仅显示占比最低的 %(count)s 个单位（共 %(total)s 个）",
    status="状态",
    statuses={"pass": "达标", "fail": "未达标", "no_data": "无数据"},
    month="月份",
    count="数量",
    total="合计",
    category="车辆类别",
    county="县区",
    agency="单位",
    rule="规则",
)

POLICE = ShareBar("市公安局", 2 / 5, in_scope=5, nev=2, shortfall=1, status="fail")
CITY_MGMT = ShareBar("市城管局", 3 / 4, in_scope=4, nev=3, shortfall=0, status="pass")
MARKET = ShareBar("市场监管局", 3 / 5, in_scope=5, nev=3, shortfall=0, status="pass")
IDLE = ShareBar("南乐县政府办", None, in_scope=0, nev=0, shortfall=0, status="no_data")


def test_ranking_puts_highest_share_first_and_draws_the_threshold_line():
    chart = ranked_shares("enforcement", "执法执勤用车", [POLICE, IDLE, CITY_MGMT, MARKET], Fraction(3, 5), TEXT)
    (bars,) = chart.figure.data
    assert list(bars.y) == ["市城管局", "市场监管局", "市公安局"]
    assert list(bars.x) == [0.75, 0.6, 0.4]
    assert list(bars.marker.color) == [STATUS_COLOURS["pass"], STATUS_COLOURS["pass"], STATUS_COLOURS["fail"]]
    (line,) = chart.figure.layout.shapes
    assert line.x0 == line.x1 == 0.6
    assert "还差 1 辆" in bars.text[2] and "还差" not in bars.text[0]
    # A phone draws only the share on each bar (charts.js), which fits; nothing is cut at the axis end.
    assert bars.meta["phone_text"] == ["75%", "60%", "40%"] and bars.cliponaxis is False


def test_ranking_table_lists_agencies_without_data_last():
    chart = ranked_shares("enforcement", "执法执勤用车", [POLICE, IDLE, CITY_MGMT, MARKET], Fraction(3, 5), TEXT)
    assert chart.table.columns == ["单位", "纳入考核", "新能源", "新能源占比", "达标线", "缺口", "状态"]
    assert chart.table.rows[0] == ["市城管局", 4, 3, "75.0%", "60.0%", 0, "达标"]
    assert chart.table.rows[2] == ["市公安局", 5, 2, "40.0%", "60.0%", 1, "未达标"]
    assert chart.table.rows[3] == ["南乐县政府办", 0, 0, "—", "60.0%", 0, "无数据"]
    assert chart.note is None


def test_long_ranking_keeps_the_agencies_furthest_behind_and_says_so():
    bars = [ShareBar(f"单位{i:02d}", i / 40, 40, i, max(0, 24 - i), "pass" if i >= 24 else "fail") for i in range(40)]
    chart = ranked_shares("official", "公务用车", bars, Fraction(3, 5), TEXT, limit=10)
    assert list(chart.figure.data[0].y) == [f"单位{i:02d}" for i in range(9, -1, -1)]
    assert [row[0] for row in chart.table.rows] == [f"单位{i:02d}" for i in range(9, -1, -1)]
    assert chart.note == "仅显示占比最低的 10 个单位（共 40 个）"


def test_rule_shares_marks_each_rule_at_its_own_threshold():
    bars = [
        ShareBar("公务用车", 0.5, 4, 2, 0, "pass", threshold=0.5),
        ShareBar("执法执勤用车", 0.4, 5, 2, 1, "fail", threshold=0.6),
    ]
    chart = rule_shares("rules", "各项规则", bars, TEXT)
    shares, thresholds = chart.figure.data
    assert list(shares.x) == [0.5, 0.4]
    assert list(thresholds.x) == [0.5, 0.6] and list(thresholds.y) == ["公务用车", "执法执勤用车"]
    assert chart.table.rows[1] == ["执法执勤用车", 5, 2, "40.0%", "60.0%", 1, "未达标"]


def test_a_rule_with_nothing_in_scope_says_no_data_instead_of_failing():
    """A brand-new agency: every rule applies, nothing is in scope yet."""
    bars = [ShareBar("公务用车", None, 0, 0, 0, "no_data", threshold=0.5)]
    chart = rule_shares("rules", "各项规则", bars, TEXT)
    assert list(chart.figure.data[0].text) == ["无数据"]
    assert chart.figure.data[0].meta["phone_text"] == ["无数据"]
    assert chart.table.rows[0][-1] == "无数据"


def test_trend_has_a_dashed_threshold_per_rule_and_gaps_for_empty_months():
    months = ["2026-01", "2026-02", "2026-03"]
    lines = [TrendLine("公交车", [1.0, None, 0.5], 1.0), TrendLine("执法执勤用车", [0.2, 0.4, 0.6], 0.6)]
    chart = share_trend("trend", "月度趋势", months, lines, TEXT)
    names = [trace.name for trace in chart.figure.data]
    assert names == ["公交车", "公交车 · 达标线", "执法执勤用车", "执法执勤用车 · 达标线"]
    bus, bus_threshold, _, enforcement_threshold = chart.figure.data
    assert list(bus.y) == [1.0, None, 0.5]
    assert list(enforcement_threshold.y) == [0.6, 0.6, 0.6] and enforcement_threshold.line.dash == "dash"
    assert bus_threshold.line.color == bus.line.color
    assert chart.table.columns == ["月份", "公交车", "执法执勤用车"]
    assert chart.table.rows[1] == ["2026-02", "—", "40.0%"]


def test_power_mix_stacks_power_types_and_shows_fuel_cell_in_its_own_colour():
    counts = {("公交车", "纯电动"): 8, ("公交车", "燃料电池"): 2, ("公务用车", "汽油"): 3, ("公务用车", "纯电动"): 1}
    categories = [("公交车", "公交车"), ("市政环卫车", "市政环卫车"), ("公务用车", "公务用车")]
    powers = [("纯电动", "纯电动"), ("燃料电池", "燃料电池"), ("汽油", "汽油"), ("柴油", "柴油")]
    chart = power_mix("mix", "动力类型构成", counts, categories, powers, TEXT)
    assert chart.figure.layout.barmode == "stack"
    traces = {trace.name: trace for trace in chart.figure.data}
    assert list(traces) == ["纯电动", "燃料电池", "汽油"]  # no 柴油 bought: no empty trace
    assert list(traces["燃料电池"].x) == ["公交车", "公务用车"]  # no 市政环卫车 bought
    assert list(traces["燃料电池"].y) == [2, 0]
    assert traces["燃料电池"].marker.color == POWER_COLOURS["燃料电池"]
    assert len({trace.marker.color for trace in chart.figure.data}) == 3
    assert chart.table.columns == ["车辆类别", "纯电动", "燃料电池", "汽油", "合计"]
    assert chart.table.rows == [["公交车", 8, 2, 0, 10], ["公务用车", 1, 0, 3, 4]]


def test_power_mix_uses_the_labels_it_is_given():
    chart = power_mix("mix", "Power mix", {("公交车", "燃料电池"): 1}, [("公交车", "Bus")], [("燃料电池", "Fuel cell")], TEXT)
    assert chart.figure.data[0].name == "Fuel cell" and list(chart.figure.data[0].x) == ["Bus"]


def test_county_breakdown_stacks_nev_over_other_with_share():
    counties = [CountyCount("华龙区", total=10, nev=7), CountyCount("范县", total=0, nev=0)]
    chart = county_breakdown("counties", "各县区", counties, TEXT)
    nev, other = chart.figure.data
    # Lying bars: the county names on the vertical axis, level and never rotated, first county on top.
    assert nev.orientation == other.orientation == "h" and list(nev.y) == ["华龙区", "范县"]
    assert chart.figure.layout.yaxis.autorange == "reversed"
    assert list(nev.x) == [7, 0] and list(other.x) == [3, 0]
    # The share after the whole bar, not squeezed into the NEV part, with room kept for it.
    assert list(other.text) == ["70.0%", ""] and other.textposition == "outside" and other.cliponaxis is False
    assert chart.figure.layout.margin.r >= 50
    assert chart.table.rows == [["华龙区", 10, 7, "70.0%"], ["范县", 0, 0, "—"]]


def test_payload_is_plotly_json_with_config_and_cannot_close_the_script_tag():
    hostile = ShareBar("</script><script>alert(1)</script>", 0.5, 2, 1, 0, "pass")
    chart = ranked_shares("x", "排名", [hostile], Fraction(1, 2), TEXT)
    text = chart.payload
    assert "</script>" not in text and "<" not in text
    payload = json.loads(text)
    assert payload["config"] == PLOT_CONFIG
    # No logo linking to plotly.com, no button uploading the chart to Plotly Cloud.
    assert payload["config"]["displaylogo"] is False and payload["config"]["showSendToCloud"] is False
    assert "sendChartToCloud" in payload["config"]["modeBarButtonsToRemove"]
    assert payload["figure"]["data"][0]["type"] == "bar"
    assert payload["figure"]["data"][0]["y"][0].startswith("</script>")


def test_long_rule_titles_are_broken_into_lines():
    bar = ShareBar("党政机关新增、更新公务用车新能源汽车比例不低于50%", 0.5, 2, 1, 0, "pass", threshold=0.5)
    chart = rule_shares("rules", "各项规则", [bar], TEXT)
    assert chart.figure.data[0].y[0] == "党政机关新增、更新公务用车新能源<br>汽车比例不低于50%"
    assert chart.table.rows[0][0] == bar.label


def test_english_rule_titles_break_between_words():
    title = "At least 50% of official cars bought by party and government bodies are NEV"
    chart = rule_shares("rules", "Rules", [ShareBar(title, 0.5, 2, 1, 0, "pass", threshold=0.5)], TEXT)
    lines = chart.figure.data[0].y[0].split("<br>")
    assert " ".join(lines) == title and all(len(line) <= 24 for line in lines)
    assert all(word in title.split() for line in lines for word in line.split())


def test_figures_carry_no_address_outside_the_app():
    chart = power_mix("mix", "动力类型构成", {("公交车", "燃料电池"): 1}, [("公交车", "公交车")], [("燃料电池", "燃料电池")], TEXT)
    assert "http://" not in chart.payload and "https://" not in chart.payload


def test_percent_writes_one_decimal_or_a_dash():
    assert percent(Fraction(2, 3)) == "66.7%" and percent(None) == "—" and percent(1) == "100.0%"


def test_charts_with_nothing_to_draw_say_so():
    """A brand-new agency, a county without purchases: no empty frames of axes."""
    assert rule_shares("rules", "各项规则", [IDLE], TEXT).empty
    assert ranked_shares("r", "规则", [IDLE], 1, TEXT).empty
    assert share_trend("t", "趋势", ["2025-01"], [TrendLine("公务用车", [None], 0.5)], TEXT).empty
    assert power_mix("p", "构成", {}, [("公交车", "公交车")], [("纯电动", "纯电动")], TEXT).empty
    assert county_breakdown("c", "县区", [CountyCount("范县", 0, 0)], TEXT).empty
    assert not rule_shares("rules", "各项规则", [POLICE], TEXT).empty
