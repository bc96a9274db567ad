"""The dashboard pages over HTTP for each role, plotly.js served by the app, and no address outside it."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from fleet.web.vendor import plotly_js_path, plotly_js_version
from tests import factories

YEAR = dt.date.today().year
# Early in the year, so the purchases are never in the future whatever day the tests run.
ON = dt.date(YEAR, 1, 2)


@pytest.fixture
def city(session):
    """Police: 2 NEVs among 5 enforcement cars (fails 60%, short by 1, needs 3 more bought);
    Qingfeng market supervision: 2 electric enforcement cars (passes)."""
    police = factories.agency(session, "濮阳市公安局")
    market = factories.agency(session, "清丰县市场监督管理局", sector="市场监管", county="清丰县")
    cars = [
        factories.acquisition(session, police, category="执法执勤用车", power=power, acquired_on=ON, reported_on=ON)
        for power in ("纯电动", "燃料电池", "汽油", "汽油", "柴油")
    ]
    cars += [
        factories.acquisition(session, market, category="执法执勤用车", power="纯电动", acquired_on=ON, reported_on=ON)
        for _ in range(2)
    ]
    factories.user(session, "police", "agency", police.name)
    factories.user(session, "reviewer", "reviewer")
    factories.user(session, "reviewer-en", "reviewer", locale="en")
    session.commit()
    return {"police": police, "market": market, "cars": cars}


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def test_anonymous_visitors_are_sent_to_log_in(client, city):
    for url in ("/", f"/agencies/{city['police'].id}", "/rules/puyang-2024/bus", f"/vendor/plotly-{plotly_js_version()}.min.js"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url


def test_reviewers_home_is_the_city_page_with_a_chart_and_table_per_rule(client, city):
    factories.login(client, "reviewer")
    html = _page(client, "/")
    assert f"全市 {YEAR} 年" in html
    assert "执法执勤用车新能源汽车比例不低于60%" in html
    assert 'data-chart="chart-rule-enforcement-car"' in html
    assert 'data-chart="chart-trend"' in html and 'data-chart="chart-power-mix"' in html
    assert 'data-chart="chart-counties"' in html
    # Every chart has its table, drawn or saying it has nothing to draw (the rules nobody bought for).
    assert html.count("<details class=\"chart-table\">") == html.count("data-chart=") + html.count("data-empty-chart=")
    assert html.count("data-empty-chart=") == 4
    table = html.split('data-chart="chart-rule-enforcement-car"')[1].split("</details>")[0]
    assert "濮阳市公安局" in table and "40.0%" in table and "清丰县市场监督管理局" in table
    # Key figures: 1 of 2 agencies passes; 4 NEVs among 7 purchases.
    assert re.search(r'<div class="value">1 / 2</div>\s*<div class="label">达标单位：执法执勤用车', html)
    assert "57.1%" in html and "4 / 7 辆" in html


def test_county_filter_keeps_to_the_countys_agencies(client, city):
    factories.login(client, "reviewer")
    html = _page(client, "/?county=清丰县")
    assert "清丰县 " + str(YEAR) in html
    assert "清丰县市场监督管理局" in html and "濮阳市公安局" not in html


def test_unusable_filters_are_explained_not_failed(client, city):
    factories.login(client, "reviewer")
    html = _page(client, "/?year=1999&county=火星区")
    assert "没有 1999 年的数据" in html and "未知县区“火星区”" in html
    assert f"全市 {YEAR} 年" in html
    assert "没有 abc 年的数据" in _page(client, "/?year=abc")


def test_agency_users_home_is_their_own_agency_page(client, city):
    factories.login(client, "police")
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/agencies/{city['police'].id}"


def test_agency_page_says_how_many_nevs_must_still_be_bought(client, city):
    factories.login(client, "police")
    html = _page(client, f"/agencies/{city['police'].id}")
    assert "还需购置 3 辆新能源汽车方可达标" in html
    assert "缺口 1 辆" in html
    assert "各级党政机关新增、更新公务用车采购新能源汽车比例不低于50%" in html  # the clause, in Chinese
    # The vehicles behind the figures, and nothing of the other agency.
    assert all(car.vin in html for car in city["cars"][:5])
    assert all(car.vin not in html for car in city["cars"][5:])
    assert 'data-chart="chart-rules"' in html and 'data-chart="chart-trend"' in html


def test_agency_page_lists_the_first_vehicles_and_says_how_many_in_all(client, city, session, monkeypatch):
    monkeypatch.setattr("fleet.read.dashboards.LISTED", 2)
    police = city["police"]
    for day in (3, 4, 5):
        factories.acquisition(session, police, category="执法执勤用车", power="汽油", acquired_on=ON, reported_on=ON + dt.timedelta(days=40 + day))
    session.commit()
    factories.login(client, "police")
    html = _page(client, f"/agencies/{police.id}")
    assert "查看这 8 辆车" in html  # 5 enforcement cars and 3 more, under each rule
    assert "仅列出前 2 辆（共 8 辆）" in html
    assert "仅列出前 2 辆（共 3 辆）" in html  # the three late reports
    assert html.count('class="mark-') == 4  # two lines under each of the two rules


def test_agency_users_get_404_for_another_agency(client, city):
    factories.login(client, "police")
    response = client.get(f"/agencies/{city['market'].id}")
    assert response.status_code == 404
    assert city["cars"][5].vin.encode() not in response.data


def test_reviewers_see_any_agency_and_404_for_none(client, city):
    factories.login(client, "reviewer")
    html = _page(client, f"/agencies/{city['market'].id}")
    assert "清丰县市场监督管理局" in html and "还需购置" not in html
    assert client.get("/agencies/999999").status_code == 404


def test_rule_page_shows_the_clause_scope_and_every_agency(client, city):
    factories.login(client, "reviewer")
    html = _page(client, "/rules/puyang-2024/enforcement-car")
    assert "其中，公安、市场监管、城市管理等执法执勤用车采购新能源汽车比例不低于60%" in html
    assert "濮环〔2024〕2号" in html and "60.0%" in html and "党政机关" in html
    assert "濮阳市公安局" in html and "清丰县市场监督管理局" in html
    assert 'data-chart="chart-ranking"' in html
    assert "其中，公安、市场监管" in _page(client, "/rules/enforcement-car")
    assert client.get("/rules/puyang-2024/no-such-rule").status_code == 404


def test_agency_users_cannot_open_rule_pages(client, city):
    factories.login(client, "police")
    assert client.get("/rules/puyang-2024/enforcement-car").status_code == 403


def test_rule_titles_follow_the_readers_language(client, city):
    factories.login(client, "reviewer-en")
    html = _page(client, "/")
    assert "At least 60% of enforcement and duty cars are NEV" in html
    assert "执法执勤用车新能源汽车比例不低于60%" not in html


@pytest.mark.parametrize(("username", "shown", "not_shown"), [
    ("reviewer", "比例要求已为非新能源汽车留有余地", "A share rule"),
    ("reviewer-en", "A share rule leaves room for non-NEVs", "比例要求已为"),
])
def test_the_rule_pages_interpretation_note_follows_the_readers_language(client, city, username, shown, not_shown):
    factories.login(client, username)
    html = _page(client, "/rules/puyang-2024/official-car")
    assert shown in html and not_shown not in html and "SPEC" not in html


def test_plotly_js_is_served_by_the_app_for_a_year(client, city):
    factories.login(client, "reviewer")
    html = _page(client, "/")
    (src,) = re.findall(r'<script src="(/vendor/[^"]+)"', html)
    response = client.get(src)
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.cache_control.max_age == 365 * 24 * 3600 and response.cache_control.immutable
    assert response.data == Path(plotly_js_path()).read_bytes()
    response.close()
    assert client.get("/vendor/plotly-0.0.1.min.js").status_code == 404


def test_pages_and_plotly_js_go_out_compressed_and_assets_are_kept_under_versioned_addresses(client, city):
    """A cold first view was 4.8 MB of plotly.js; the basic bundle compressed is a tenth of that."""
    import brotli
    import gzip

    factories.login(client, "reviewer")
    html = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert html.headers["Content-Encoding"] == "gzip"
    page = gzip.decompress(html.data).decode()
    (src,) = re.findall(r'<script src="(/vendor/[^"]+)"', page)
    original = Path(plotly_js_path()).read_bytes()
    for encoding, decompress, budget in (("gzip", gzip.decompress, 420_000), ("br", brotli.decompress, 380_000)):
        response = client.get(src, headers={"Accept-Encoding": f"{encoding}, deflate"})
        assert response.headers["Content-Encoding"] == encoding and "Accept-Encoding" in response.headers["Vary"]
        assert len(response.data) < budget and decompress(response.data) == original
        again = client.get(src, headers={"Accept-Encoding": encoding, "If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', page):
        assert re.search(r"\?v=[0-9a-f]{12}$", asset), asset
        kept = client.get(asset)
        assert kept.status_code == 200 and kept.cache_control.max_age == 365 * 24 * 3600
        kept.close()


def test_the_served_plotly_js_is_the_python_packages_version_and_draws_every_trace_the_pages_send(client, city):
    """The figures are built by the plotly Python package for its own plotly.js: the basic bundle must be
    that version and hold every trace type a page sends (it has bar, scatter and pie only)."""
    from plotly.offline import get_plotlyjs_version

    assert plotly_js_version() == get_plotlyjs_version()
    bundle = Path(plotly_js_path()).read_text(encoding="utf-8")
    assert f"plotly.js (basic - minified) v{get_plotlyjs_version()}" in bundle[:200]
    factories.login(client, "reviewer")
    sent = set()
    for url in ("/", "/?county=清丰县", f"/agencies/{city['police'].id}", f"/agencies/{city['market'].id}", "/rules/puyang-2024/official-car"):
        for payload in re.findall(r'<script type="application/json" data-chart="chart-[^"]*">(.*?)</script>', _page(client, url), re.S):
            sent |= {trace.get("type", "scatter") for trace in json.loads(payload)["figure"]["data"]}
    assert sent and sent <= {"bar", "scatter", "pie"}, sent


def test_the_favicon_is_served_to_anyone(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.data[:4] == b"\x00\x00\x01\x00"
    response.close()


def test_no_page_refers_to_an_address_outside_the_app(client, city):
    factories.login(client, "reviewer")
    for url in ("/", "/?county=清丰县", f"/agencies/{city['police'].id}", "/rules/puyang-2024/bus"):
        html = _page(client, url)
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), url
        for reference in re.findall(r'(?:src|href|action)="([^"]*)"', html):
            assert reference.startswith(("/", "#", "?")), (url, reference)


def test_reviewers_download_the_city_report(client, city):
    factories.login(client, "reviewer")
    response = client.get(f"/reports/compliance.xlsx?year={YEAR}")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in response.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(response.data))
    assert workbook.properties.title == "全市新能源汽车配备合规报告"


def test_agency_users_download_only_their_own_report(client, city):
    factories.login(client, "police")
    response = client.get(f"/reports/compliance.xlsx?year={YEAR}&agency_id={city['market'].id}")
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.data))
    assert workbook.properties.title == "濮阳市公安局 新能源汽车配备合规报告"
    cells = {str(c.value) for sheet in workbook for row in sheet.iter_rows() for c in row}
    assert city["cars"][5].vin not in cells and city["cars"][0].vin in cells


def test_a_malformed_report_month_is_a_bad_request(client, city):
    factories.login(client, "reviewer")
    assert client.get("/reports/compliance.xlsx?month=2025-13").status_code == 400
    assert client.get(f"/reports/compliance.xlsx?month={YEAR}-01").status_code == 200


def test_pages_show_new_data_at_once(client, session, city):
    factories.login(client, "reviewer")
    assert "4 / 7 辆" in _page(client, "/")
    factories.acquisition(session, city["market"], category="执法执勤用车", power="纯电动", acquired_on=ON, reported_on=ON)
    session.commit()
    html = _page(client, "/")
    assert "5 / 8 辆" in html and "4 / 7 辆" not in html


def test_an_empty_city_still_has_its_pages(client, session):
    lonely = factories.agency(session, "濮阳市龙都出租汽车有限公司", kind="民营企业", sector="出租", county="华龙区")
    factories.user(session, "admin", "admin")
    session.commit()
    factories.login(client, "admin")
    html = _page(client, "/")
    assert f"全市 {YEAR} 年" in html and "—" in html  # no share without acquisitions
    html = _page(client, f"/agencies/{lonely.id}")
    assert "没有适用于本单位的规则" in html
    assert "暂无数据" in _page(client, "/rules/puyang-2024/public-service")


def test_a_new_agency_and_a_county_without_purchases_show_no_data_not_empty_charts(client, session, city):
    """A brand-new 党政机关 has every official-car rule and nothing in scope: the page (a 500 before)
    says 无数据 where the charts would be; so does a county where nobody bought anything."""
    new = factories.agency(session, "范县新成立的局", county="范县")
    factories.user(session, "new", "agency", new.name)
    session.commit()
    factories.login(client, "new")
    html = _page(client, f"/agencies/{new.id}")
    assert 'data-empty-chart="rules"' in html and 'data-chart="chart-rules"' not in html
    client.post("/logout")
    factories.login(client, "reviewer")
    county = _page(client, "/?county=范县")
    assert 'data-empty-chart="power-mix"' in county and 'data-chart="chart-power-mix"' not in county


def test_the_emission_rule_speaks_of_the_standard_not_of_nevs(client, session, city):
    factories.acquisition(session, city["police"], category="重型货车", power="柴油", emission_standard="国五",
                          acquired_on=ON, reported_on=ON)
    session.commit()
    factories.login(client, "reviewer")
    html = _page(client, "/")
    table = html.split('data-chart="chart-rule-heavy-truck-emission"')[1].split("</details>")[0]
    assert "达到排放标准的占比" in table and "新能源占比" not in table
    html = _page(client, "/rules/puyang-2024/heavy-truck-emission")
    assert "达到排放标准（国六）的车辆占比" in html


def test_a_year_before_the_plan_shows_no_rules(client, session, city):
    factories.acquisition(session, city["police"], category="公务用车", power="汽油", acquired_on=dt.date(2023, 5, 1),
                          reported_on=dt.date(2023, 5, 3))
    session.commit()
    factories.login(client, "reviewer")
    html = _page(client, "/?year=2023")
    assert "全市 2023 年" in html and "该年度没有生效的规则" in html
    assert "该规则在 2023 年不生效" in _page(client, "/rules/puyang-2024/bus?year=2023")
    assert "没有适用于本单位的规则" in _page(client, f"/agencies/{city['police'].id}?year=2023")


def _body(html: str) -> str:
    """The part of a dashboard page below its filters (rendered once and kept with the figures)."""
    return html.split('<section class="figures"', 1)[1].split("</main>", 1)[0]


def test_a_kept_page_body_is_the_same_for_every_reviewer_and_holds_no_form_token(app, city, session):
    factories.user(session, "reviewer-2", "reviewer")
    session.commit()
    clients = [app.test_client(), app.test_client()]
    for client, username in zip(clients, ("reviewer", "reviewer-2"), strict=True):
        factories.login(client, username)
    pages = [_page(client, "/") for client in clients]
    # The export form's token is rendered per request, above the kept part.
    assert all('name="csrf_token"' in html.split('<section class="figures"')[0] for html in pages)
    assert _body(pages[0]) == _body(pages[1]) and "csrf_token" not in _body(pages[0])
    assert "reviewer-2" in pages[1] and "reviewer-2" not in _body(pages[1])


def test_an_agency_page_kept_for_a_reviewer_gives_its_own_user_no_rule_links(app, city):
    rule_link = 'href="/rules/puyang-2024/enforcement-car"'
    clients = {username: app.test_client() for username in ("reviewer", "police")}
    for username, client in clients.items():  # a login is audited, which is news to the figures: all first
        factories.login(client, username)
    pages = {}
    for username in ("reviewer", "police", "reviewer"):
        pages.setdefault(username, []).append(_page(clients[username], f"/agencies/{city['police'].id}"))
    assert all(rule_link in html for html in pages["reviewer"])
    assert rule_link not in pages["police"][0] and "执法执勤用车新能源汽车比例不低于60%" in pages["police"][0]
