"""The agency matcher against a registry loaded with `agencies load`, aliases (别名) included."""

from __future__ import annotations

import json

import pytest
from openpyxl import Workbook

from fleet.domain.agency_names import AgencyIndex, match_agency

HEADER = ["单位名称", "单位类型", "行业", "所属县区", "联系邮箱", "统一社会信用代码", "别名"]
CREDIT_CODE = "91110000600037341L"
REGISTRY = [
    ["濮阳市公安局", "党政机关", "公安", "市直", "", "", "市公安局"],
    ["濮阳市公共交通有限公司", "国有企业", "公交", "市直", "", CREDIT_CODE, "公交公司；市公交公司"],
    ["濮阳市生态环境局", "党政机关", "其他", "市直", "", "", "濮阳市环境保护局"],
    ["濮阳县公安局", "党政机关", "公安", "濮阳县", "", "", ""],
    ["台前县公安局", "党政机关", "公安", "台前县", "", "", ""],
    ["清丰县公安局", "党政机关", "公安", "清丰县", "", "", ""],
    ["南乐县公安局", "党政机关", "公安", "南乐县", "", "", ""],
    ["华龙区城市管理局", "党政机关", "城市管理", "华龙区", "", "", "华龙区城管局"],
    ["濮阳市城市管理局", "党政机关", "城市管理", "市直", "", "", ""],
    ["濮阳市龙都出租汽车有限公司", "民营企业", "出租", "华龙区", "", "", ""],
]


def _xlsx(path, rows, header=HEADER):
    book = Workbook()
    book.active.append(header)
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


@pytest.fixture
def registry(runner, session, tmp_path):
    result = runner.invoke(args=["agencies", "load", str(_xlsx(tmp_path / "registry.xlsx", REGISTRY)), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["inserted"] == len(REGISTRY)
    return AgencyIndex.load(session)


@pytest.mark.parametrize(
    ("written", "agency", "matched_by"),
    [
        ("濮阳市公安局", "濮阳市公安局", "exact"),
        ("濮阳市 公安局", "濮阳市公安局", "normalised"),
        ("濮阳市龙都出租汽车有限责任公司", "濮阳市龙都出租汽车有限公司", "normalised"),
        # the table, with aliases loaded
        ("市公安局", "濮阳市公安局", "alias"),
        ("公安局", "濮阳市公安局", "city_prefix"),
        ("市公交公司", "濮阳市公共交通有限公司", "alias"),
        ("濮阳公交公司", "濮阳市公共交通有限公司", "city_prefix"),
        # a former name, with and without the city
        ("濮阳市环境保护局", "濮阳市生态环境局", "alias"),
        ("环境保护局", "濮阳市生态环境局", "city_prefix"),
        ("濮阳市华龙区城市管理局", "华龙区城市管理局", "city_prefix"),
    ],
)
def test_each_step_matches_what_it_should(registry, written, agency, matched_by):
    match = registry.match(written)
    assert (match.agency_name, match.matched_by, match.suggestions) == (agency, matched_by, ())


def test_a_sub_unit_is_never_its_parent_but_the_parent_is_suggested(registry):
    for written in ("濮阳市公安局交警支队", "濮阳市公安局交通警察支队"):
        match = registry.match(written)
        assert not match.found and match.agency_id is None
        assert match.suggestions[0] == "濮阳市公安局"


def test_a_county_named_after_the_city_keeps_its_name(registry):
    # 濮阳县 is a county: 县公安局 could be any county's bureau, so it matches none of them.
    assert registry.match("濮阳县公安局").matched_by == "exact"
    assert not registry.match("县公安局").found
    assert registry.match("公安局").agency_name == "濮阳市公安局"


def test_suggestions_are_ranked_at_most_three_and_none_when_nothing_is_close(registry):
    assert registry.match("华龙区城管理局").suggestions == ("华龙区城市管理局", "濮阳市城市管理局")
    assert registry.match("市城管局").suggestions == ("濮阳市城市管理局", "华龙区城市管理局")
    # five bureaus are alike: the most similar first (公安局 once the city prefix is dropped), then
    # equally similar ones in the order of their names, three in all
    assert registry.match("县公安局").suggestions == ("濮阳市公安局", "南乐县公安局", "台前县公安局")
    assert registry.match("濮阳县公安").suggestions == ("濮阳县公安局",)
    assert registry.match("环保局").suggestions == ("濮阳市生态环境局",)  # by its former name
    assert registry.match("某某科技有限公司").suggestions == ()  # shares only 有限公司
    assert registry.match("北京市朝阳区环卫所").suggestions == ()


def test_suggestions_are_limited_to_the_agencies_given(registry, session):
    police = match_agency(session, "市公安局").agency_id
    assert registry.match("濮阳市公安局交警支队", suggest_among={police}).suggestions == ("濮阳市公安局",)
    assert registry.match("公交", suggest_among={police}).suggestions == ()
    assert registry.match("公交", suggest=False).suggestions == ()


def test_a_credit_code_comes_first(registry):
    match = registry.match("某个写错的名称", CREDIT_CODE)
    assert (match.agency_name, match.matched_by) == ("濮阳市公共交通有限公司", "credit_code")
    assert registry.match("濮阳市公安局", "91410900MA00000000").matched_by == "exact"  # an unknown code: the name


def test_match_agency_takes_a_session_or_an_index(registry, session):
    assert match_agency(session, "市公交公司").agency_name == "濮阳市公共交通有限公司"
    assert match_agency(registry, "市公交公司").agency_name == "濮阳市公共交通有限公司"
    assert match_agency(session, "  ").found is False


def test_a_name_two_agencies_answer_is_not_guessed(session):
    # Entries as a registry would be before the entry checks: the index itself never picks one.
    index = AgencyIndex.of([(1, "濮阳市公安局", [], None), (2, "市公安局", [], None), (3, "濮阳市交通运输局", ["交通局"], None)])
    assert index.match("市公安局").matched_by == "exact"
    both = index.match("公安局")  # 濮阳市公安局 without 濮阳市, 市公安局 without 市
    assert not both.found and sorted(both.suggestions[:2]) == ["市公安局", "濮阳市公安局"]
