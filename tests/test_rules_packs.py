"""Rule packs: the Puyang pack as the plan says it, exact thresholds, and broken packs refused by name."""

from __future__ import annotations

import re

import datetime as dt
import os
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from fleet.base.periods import Period, split_at_whole_months
from imports.policy import full_nev_categories
from rules.packs import (
    PACKS_DIR,
    PackError,
    check_packs,
    get_pack,
    load_pack,
    parse_threshold,
    threshold_text,
)


def test_puyang_pack_encodes_items_eleven_and_twelve():
    pack = get_pack("puyang-2024")
    assert (pack.source_date, pack.example) == (dt.date(2024, 1, 10), False)
    assert "濮环〔2024〕2号" in pack.source
    assert [r.qualified_id for r in pack.rules] == [
        "puyang-2024/bus",
        "puyang-2024/sanitation",
        "puyang-2024/public-service",
        "puyang-2024/official-car",
        "puyang-2024/enforcement-car",
        "puyang-2024/heavy-truck-emission",
    ]
    thresholds = {r.id: r.threshold for r in pack.rules}
    assert thresholds == {
        "bus": 1,
        "sanitation": 1,
        "public-service": 1,
        "official-car": Fraction(1, 2),
        "enforcement-car": Fraction(3, 5),
        "heavy-truck-emission": 1,
    }
    assert {r.id for r in pack.rules if r.level == "in_principle"} == {"public-service"}
    for rule in pack.rules:
        assert rule.effective_from == dt.date(2024, 1, 10) and rule.effective_to is None
        # The Puyang pack's reading: both kinds of acquisition for every rule (a replacement is a new purchase).
        assert rule.scope.acquisition_kinds == {"新增", "更新"}
        assert rule.title["zh"] and rule.title["en"]
        # Shown on the rule page in the reader's language: no developer notes, no internal documents.
        assert re.search(r"[\u4e00-\u9fff]", rule.note["zh"]) and re.search(r"[A-Za-z]{3,}", rule.note["en"])
        assert not any("SPEC" in text or "§" in text for text in rule.note.values())


def test_puyang_scopes():
    pack = get_pack("puyang-2024")
    assert pack.rule("public-service").scope.categories == {"城市物流配送车", "邮政快递车", "巡游出租车", "网约出租车", "渣土车", "水泥罐车"}
    assert pack.rule("official-car").scope.categories == {"公务用车", "执法执勤用车"}
    assert pack.rule("official-car").scope.agency_kinds == {"党政机关"}
    assert pack.rule("enforcement-car").scope.categories == {"执法执勤用车"}
    assert pack.rule("bus").scope.agency_kinds is None
    truck = pack.rule("puyang-2024/heavy-truck-emission")
    assert (truck.measure, truck.standards) == ("standard_share", {"国六"})
    assert "纯电动" not in truck.scope.power_types and "柴油" in truck.scope.power_types


def test_clauses_quote_the_plan():
    pack = get_pack("puyang-2024")
    assert pack.rule("bus").clause == "除新能源汽车无法满足使用需求情况外，新增公交车、市政环卫车全部使用新能源汽车"
    assert pack.rule("official-car").clause == "各级党政机关新增、更新公务用车采购新能源汽车比例不低于50%"
    assert pack.rule("enforcement-car").clause == "其中，公安、市场监管、城市管理等执法执勤用车采购新能源汽车比例不低于60%"
    assert "重型车国六排放标准" in pack.rule("heavy-truck-emission").clause


def test_example_pack_is_marked_as_an_example_with_other_thresholds():
    pack = get_pack("example-province")
    assert pack.example
    assert "示例" in pack.title["zh"]
    assert [r.threshold for r in pack.rules] == [Fraction(4, 5)]
    assert pack.rules[0].effective_to == dt.date(2025, 12, 31)


@pytest.mark.parametrize(
    ("written", "exact"),
    [(1, Fraction(1)), ("1", Fraction(1)), ("1/2", Fraction(1, 2)), ("3/5", Fraction(3, 5)), ("60%", Fraction(3, 5)), ("62.5%", Fraction(5, 8)), ("100%", Fraction(1))],
)
def test_thresholds_are_exact(written, exact):
    assert parse_threshold(written) == exact


@pytest.mark.parametrize("written", [0.6, "0.6", 0, "0%", "3/2", "120%", "1/0", True, "half", None])
def test_inexact_or_impossible_thresholds_are_refused(written):
    with pytest.raises(ValueError):
        parse_threshold(written)


def test_threshold_text():
    assert [threshold_text(Fraction(n, d)) for n, d in ((3, 5), (1, 1), (5, 8), (2, 3))] == ["60%", "100%", "62.5%", "2/3"]


def test_full_nev_categories_are_the_hundred_percent_rules_with_exemptions():
    pack = get_pack("puyang-2024")
    expected = {"公交车", "市政环卫车", "城市物流配送车", "邮政快递车", "巡游出租车", "网约出租车", "渣土车", "水泥罐车"}
    assert full_nev_categories(pack) == expected
    assert full_nev_categories(pack, dt.date(2024, 1, 9)) == frozenset()
    assert full_nev_categories(pack, dt.date(2024, 1, 10), agency_kind="民营企业", acquisition_kind="更新") == expected
    assert full_nev_categories(get_pack("example-province")) == frozenset()


# --- Broken packs ---------------------------------------------------------------------------------


def _puyang() -> dict:
    return yaml.safe_load((PACKS_DIR / "puyang-2024.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _refusal(path: Path) -> PackError:
    with pytest.raises(PackError) as caught:
        load_pack(path)
    return caught.value


def _breaks(change) -> dict:
    data = _puyang()
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "rule", "field", "words"),
    [
        (lambda d: d["rules"][0]["scope"].update(categories=["公交车", "电车"]), "bus", "scope.categories", "电车"),
        (lambda d: d["rules"][3].update(threshold=0.5), "official-car", "threshold", "exactly"),
        (lambda d: d["rules"][3].update(threshold="150%"), "official-car", "threshold", "between"),
        (lambda d: d["rules"][4].pop("threshold"), "enforcement-car", "threshold", "required"),
        (lambda d: d["rules"][2].update(level="mostly"), "public-service", "level", "mandatory"),
        (lambda d: d["rules"][3]["scope"].update(agency_kinds=["政府"]), "official-car", "scope.agency_kinds", "政府"),
        (lambda d: d["rules"][5].pop("standards"), "heavy-truck-emission", "standards", "accepted emission standards"),
        (lambda d: d["rules"][0].update(standards=["国六"]), "bus", "standards", "only a standard_share"),
        (lambda d: d["rules"][5].update(standards=["欧六"]), "heavy-truck-emission", "standards", "欧六"),
        (lambda d: d["rules"][5]["scope"].update(power_types=["柴油", "煤"]), "heavy-truck-emission", "scope.power_types", "煤"),
        (lambda d: d["rules"][1].update(effective={"from": dt.date(2024, 1, 10), "to": dt.date(2023, 1, 1)}), "sanitation", "effective", "before"),
        (lambda d: d["rules"][1].update(measure="ev_share"), "sanitation", "measure", "nev_share"),
        (lambda d: d["rules"][0].update(thresold=1), "bus", "thresold", "Extra"),
        (lambda d: d["rules"][0]["title"].pop("en"), "bus", "title.en", "required"),
        (lambda d: d["rules"][2]["scope"].update(acquisition_kinds=["租赁"]), "public-service", "scope.acquisition_kinds", "租赁"),
    ],
)
def test_broken_rule_is_refused_naming_file_rule_and_field(tmp_path, change, rule, field, words):
    error = _refusal(_write(tmp_path, _breaks(change)))
    headline = str(error).splitlines()[0]
    assert headline.startswith(f"broken.yaml: rule {rule}, field {field}:")
    assert words in headline
    assert (error.rule, error.field) == (rule, field)


def test_every_problem_is_listed(tmp_path):
    def change(d):
        d["rules"][0].update(level="sometimes")
        d["rules"][3].update(threshold="0.5")

    message = str(_refusal(_write(tmp_path, _breaks(change))))
    assert "rule bus, field level" in message and "rule official-car, field threshold" in message


def test_duplicate_rule_ids_are_refused(tmp_path):
    error = _refusal(_write(tmp_path, _breaks(lambda d: d["rules"][1].update(id="bus"))))
    assert "'bus' is used twice" in str(error)


def test_pack_level_problems_name_the_field(tmp_path):
    error = _refusal(_write(tmp_path, _breaks(lambda d: d["source"].pop("date"))))
    assert str(error).startswith("broken.yaml: field source.date:")
    error = _refusal(_write(tmp_path, _breaks(lambda d: d.update(rules=[]))))
    assert str(error).startswith("broken.yaml: field rules:")


def test_a_rule_without_an_id_is_named_by_position(tmp_path):
    error = _refusal(_write(tmp_path, _breaks(lambda d: d["rules"][2].pop("id"))))
    assert str(error).startswith("broken.yaml: rule #3, field id:")


def test_not_yaml_or_not_a_mapping_is_refused(tmp_path):
    assert "not valid YAML" in str(_refusal(_write(tmp_path, "id: [unclosed\n")))
    assert "is a mapping" in str(_refusal(_write(tmp_path, "- just\n- a list\n")))


def test_a_broken_pack_is_refused_and_the_others_stay_available(tmp_path):
    _write(tmp_path, _puyang(), "puyang-2024.yaml")
    _write(tmp_path, _breaks(lambda d: d.update(id="other") or d["rules"][0].update(threshold=2)), "other.yaml")
    packs, errors = check_packs(tmp_path)
    assert list(packs) == ["puyang-2024"]
    assert len(errors) == 1 and str(errors[0]).startswith("other.yaml: rule bus, field threshold:")
    with pytest.raises(PackError, match="broken"):
        get_pack("other", tmp_path)
    with pytest.raises(PackError, match="no rule pack 'missing'"):
        get_pack("missing", tmp_path)


def test_two_files_with_one_pack_id_are_refused(tmp_path):
    _write(tmp_path, _puyang(), "a.yaml")
    _write(tmp_path, _puyang(), "b.yaml")
    packs, errors = check_packs(tmp_path)
    assert list(packs) == ["puyang-2024"]
    assert "b.yaml: field id" in str(errors[0])


def test_an_edited_pack_is_read_again(tmp_path):
    path = _write(tmp_path, _puyang(), "puyang-2024.yaml")
    assert get_pack("puyang-2024", tmp_path).rule("bus").threshold == 1
    data = _puyang()
    data["rules"][0]["threshold"] = "90%"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert get_pack("puyang-2024", tmp_path).rule("bus").threshold == Fraction(9, 10)


def test_unknown_rule_of_a_pack():
    with pytest.raises(PackError, match="no rule 'trams'"):
        get_pack("puyang-2024").rule("trams")


def test_periods():
    assert Period.parse_month("2025-03") == Period("month", dt.date(2025, 3, 1), dt.date(2025, 3, 31), "2025-03")
    assert Period.month(2024, 2).end == dt.date(2024, 2, 29)
    assert Period.year(2025).label == "2025"
    assert Period.year_to_date(dt.date(2025, 5, 6)).end == dt.date(2025, 5, 6)
    assert [p.label for p in Period.year_to_date(dt.date(2025, 3, 2)).months()] == ["2025-01", "2025-02", "2025-03"]
    for bad in ("2025-13", "2025/03", "March", ""):
        with pytest.raises(ValueError):
            Period.parse_month(bad)


@pytest.mark.parametrize(
    ("first", "last", "whole", "edges"),
    [
        ("2025-01-01", "2025-12-31", ("2025-01-01", "2025-12-31"), []),
        ("2024-01-10", "2024-12-31", ("2024-02-01", "2024-12-31"), [("2024-01-10", "2024-01-31")]),
        ("2025-01-01", "2025-03-05", ("2025-01-01", "2025-02-28"), [("2025-03-01", "2025-03-05")]),
        ("2025-01-10", "2025-03-05", ("2025-02-01", "2025-02-28"), [("2025-01-10", "2025-01-31"), ("2025-03-01", "2025-03-05")]),
        ("2025-01-10", "2025-02-20", None, [("2025-01-10", "2025-02-20")]),
        ("2024-02-01", "2024-02-29", ("2024-02-01", "2024-02-29"), []),
    ],
)
def test_split_at_whole_months(first, last, whole, edges):
    day = dt.date.fromisoformat
    found_whole, found_edges = split_at_whole_months(day(first), day(last))
    assert found_whole == (tuple(map(day, whole)) if whole else None)
    assert found_edges == [tuple(map(day, edge)) for edge in edges]
