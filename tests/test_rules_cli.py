"""The command-line contract: `flask compliance` and `flask rules check`."""

from __future__ import annotations

import datetime as dt
import json

import yaml

from rules.packs import PACKS_DIR
from tests import factories

KEYS = ["rule", "agency", "in_scope", "nev", "exempt", "pending", "share", "threshold", "status", "shortfall"]


def _data(session):
    police = factories.agency(session, "濮阳市公安局")
    company = factories.agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交")
    factories.acquisition(session, police, category="执法执勤用车", power="纯电动", acquired_on=dt.date(2025, 3, 5))
    factories.acquisition(session, police, category="执法执勤用车", power="汽油", acquired_on=dt.date(2025, 4, 5))
    factories.acquisition(session, company, category="公交车", power="柴油", acquired_on=dt.date(2025, 4, 6))
    session.commit()


def test_compliance_json_for_a_year(runner, session):
    _data(session)
    result = runner.invoke(args=["compliance", "--year", "2025", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert list(payload) == ["pack", "period", "results"]
    assert (payload["pack"], payload["period"]) == ("puyang-2024", "2025")
    assert all(list(r) == KEYS for r in payload["results"])
    rows = {(r["rule"], r["agency"]): r for r in payload["results"]}
    enforcement = rows[("puyang-2024/enforcement-car", "濮阳市公安局")]
    assert (enforcement["in_scope"], enforcement["nev"], enforcement["share"], enforcement["threshold"]) == (2, 1, 0.5, 0.6)
    assert (enforcement["status"], enforcement["shortfall"]) == ("fail", 1)
    assert rows[("puyang-2024/bus", None)]["status"] == "fail"


def test_compliance_for_a_month_and_an_agency(runner, session):
    _data(session)
    result = runner.invoke(args=["compliance", "--year", "2025", "--month", "2025-03", "--agency", "濮阳市公安局", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["period"] == "2025-03"
    assert {(r["rule"], r["agency"], r["status"]) for r in payload["results"]} == {
        ("puyang-2024/official-car", "濮阳市公安局", "pass"),
        ("puyang-2024/enforcement-car", "濮阳市公安局", "pass"),
    }


def test_compliance_names_an_agency_as_uploads_do(runner, session):
    _data(session)
    result = runner.invoke(args=["compliance", "--year", "2025", "--agency", "公安局", "--json"])
    assert result.exit_code == 0, result.output
    assert {r["agency"] for r in json.loads(result.output)["results"]} == {"濮阳市公安局"}
    result = runner.invoke(args=["compliance", "--year", "2025", "--agency", "濮阳市公安局交警支队"])
    assert result.exit_code == 1 and "是否指：“濮阳市公安局”" in result.output


def test_compliance_with_another_pack(runner, session):
    _data(session)
    payload = json.loads(runner.invoke(args=["compliance", "--year", "2025", "--pack", "example-province", "--json"]).output)
    assert payload["pack"] == "example-province"
    assert {r["rule"] for r in payload["results"]} == {"example-province/public-fleet"}


def test_compliance_table(runner, session):
    _data(session)
    result = runner.invoke(args=["compliance", "--year", "2025"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "puyang-2024" in lines[0] and "2025" in lines[0]
    row = next(line for line in lines if line.startswith("puyang-2024/enforcement-car") and "濮阳市公安局" in line)
    assert row.split()[2:] == ["2", "1", "0", "0", "50.0%", "60%", "未达标", "1"]


def test_compliance_refuses_unknown_agency_pack_and_month(runner, session):
    _data(session)
    result = runner.invoke(args=["compliance", "--year", "2025", "--agency", "不存在的单位"])
    assert result.exit_code == 1 and "不存在的单位" in result.output
    result = runner.invoke(args=["compliance", "--year", "2025", "--pack", "nowhere", "--json"])
    assert result.exit_code == 1 and "nowhere" in json.loads(result.output)["error"]
    result = runner.invoke(args=["compliance", "--year", "2025", "--month", "2025-3x"])
    assert result.exit_code == 1 and "YYYY-MM" in result.output
    result = runner.invoke(args=["compliance", "--year", "2025", "--month", "2024-03"])
    assert result.exit_code == 1 and "2024-03" in result.output
    assert "Traceback" not in result.output


def test_rules_check_prints_the_packs(runner):
    result = runner.invoke(args=["rules", "check"])
    assert result.exit_code == 0, result.output
    assert "puyang-2024/enforcement-car" in result.output and "60%" in result.output
    assert "example-province/public-fleet" in result.output
    result = runner.invoke(args=["rules", "check", str(PACKS_DIR / "puyang-2024.yaml"), "--json"])
    payload = json.loads(result.output)
    assert payload["errors"] == []
    assert [r["threshold"] for r in payload["packs"][0]["rules"]] == ["100%", "100%", "100%", "50%", "60%", "100%"]


def test_rules_check_refuses_a_broken_pack(runner, tmp_path):
    data = yaml.safe_load((PACKS_DIR / "puyang-2024.yaml").read_text(encoding="utf-8"))
    data["rules"][3]["scope"]["categories"] = ["公务车辆"]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = runner.invoke(args=["rules", "check", str(path)])
    assert result.exit_code == 1
    assert "broken.yaml: rule official-car, field scope.categories" in result.output
    result = runner.invoke(args=["rules", "check", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1


def test_rules_check_json_describes_each_rule(runner):
    payload = json.loads(runner.invoke(args=["rules", "check", "--json"]).output)
    puyang = next(p for p in payload["packs"] if p["id"] == "puyang-2024")
    truck = puyang["rules"][-1]
    assert truck["rule"] == "puyang-2024/heavy-truck-emission"
    assert (truck["measure"], truck["standards"], truck["agency_kinds"]) == ("standard_share", ["国六"], None)
    assert truck["power_types"] == ["汽油", "柴油", "天然气", "油电混合", "其他"]
    assert puyang["rules"][3]["agency_kinds"] == ["党政机关"]
    assert puyang["rules"][0]["effective_from"] == "2024-01-10"


def test_start_up_names_an_unavailable_pack(database_url, caplog):
    from app import create_app

    create_app({"TESTING": True, "DATABASE_URL": database_url, "RULE_PACK": "no-such-pack"})
    assert "the configured rule pack 'no-such-pack' is not available" in caplog.text


def test_rules_check_of_a_directory_without_packs(runner, tmp_path):
    result = runner.invoke(args=["rules", "check", str(tmp_path)])
    assert result.exit_code == 1 and "没有规则包" in result.output


def test_agency_without_applicable_rules_is_told_so(runner, session):
    factories.agency(session, "濮阳市顺通城市配送有限公司", kind="民营企业", sector="物流")
    session.commit()
    result = runner.invoke(args=["compliance", "--year", "2025", "--agency", "濮阳市顺通城市配送有限公司"])
    assert result.exit_code == 0 and "没有适用的规则" in result.output
