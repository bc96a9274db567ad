"""Purchase plans (issue 17): the pre-check's arithmetic against hand-worked cases, plan against reality,
the command-line contract, and a decision made before the purchase carried to the reported purchase."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from fractions import Fraction

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from xlsx_factory import acquisition as acquisition_row
from xlsx_factory import write_upload, write_workbook

from fleet.base.models import Acquisition, Agency, ExemptionRequest, PlanLine, PlannedExemption, PurchasePlan
from fleet.domain.forecast import AT_RISK, NO_PLAN, OFF_TRACK, ON_TRACK, PlannedVehicles, project
from fleet.domain.plans import Line, decide_plan_exemption, match
from fleet.domain.users import issue_api_token
from imports.plans import PLAN_HEADERS, parse_planned_month, write_plan_template
from rules.packs import Scope, get_pack
from tests.factories import acquisition, agency, login, user

PACK = get_pack("puyang-2024")
OFFICIAL, ENFORCEMENT, BUS = PACK.rule("official-car"), PACK.rule("enforcement-car"), PACK.rule("bus")
Q4 = (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
POLICE = "濮阳市公安局"
BUS_COMPANY = "濮阳市公共交通有限公司"
CHECK_KEYS = ["file", "rows", "errors", "warnings", "year", "agency", "results", "nev_needed_total"]
RESULT_KEYS = ["rule", "agency", "actual_in_scope", "actual_nev", "planned_in_scope", "planned_nev", "projected_share", "threshold"]


def planned(category: str, power: str, count: int, exemption_state: int = 0) -> PlannedVehicles:
    return PlannedVehicles(category, "新增", power, *Q4, exemption_state, count)


def by_rule(projections):
    return {p.rule.id: p for p in projections}


# --- the arithmetic, worked by hand ------------------------------------------------------------------


def test_overlapping_rules_share_the_changes_and_independent_rules_add_up():
    # Enforcement cars: 4 petrol + 1 NEV planned = 5 in scope, 60% needs 3: change 2.
    # Official cars (enforcement included): 6 petrol + 5 enforcement = 11 in scope, 50% needs 6 (5.5
    # rounded up), 1 NEV: change 5. The 2 enforcement changes count for both: 5 changes in all, not 7.
    # Two diesel buses (100%, no exemption asked) need 2 more, independently: 7, not 9.
    plan = [planned("公务用车", "汽油", 6), planned("执法执勤用车", "汽油", 4), planned("执法执勤用车", "纯电动", 1),
            planned("公交车", "柴油", 2)]
    projections, total = project([OFFICIAL, ENFORCEMENT, BUS], {}, plan, agency_id=1, agency=POLICE, has_plan=True)
    rows = by_rule(projections)
    assert (rows["official-car"].planned_in_scope, rows["official-car"].planned[1], rows["official-car"].nev_needed) == (11, 1, 5)
    assert (rows["enforcement-car"].planned_in_scope, rows["enforcement-car"].nev_needed) == (5, 2)
    assert rows["bus"].nev_needed == 2
    assert total == 7
    assert {p.forecast for p in projections} == {OFF_TRACK}


def test_changing_an_official_car_does_not_help_the_enforcement_rule():
    # Enforcement: 2 petrol of 2 planned, 60% of 2 needs 2 → both must change; the official rule
    # (2 + 2 petrol official cars = 4, needs 2) is then met by the same two changes.
    plan = [planned("公务用车", "汽油", 2), planned("执法执勤用车", "汽油", 2)]
    projections, total = project([OFFICIAL, ENFORCEMENT], {}, plan, agency_id=1, agency=POLICE, has_plan=True)
    assert by_rule(projections)["enforcement-car"].nev_needed == 2
    assert by_rule(projections)["official-car"].nev_needed == 2
    assert total == 2
    # With one enforcement car only changeable, the enforcement rule cannot pass: no total.
    actual = {"enforcement-car": (2, 0, 0, 0), "official-car": (2, 0, 0, 0)}
    projections, total = project([OFFICIAL, ENFORCEMENT], actual, [planned("执法执勤用车", "汽油", 1)], agency_id=1, agency=POLICE, has_plan=True)
    enforcement = by_rule(projections)["enforcement-car"]
    assert (enforcement.reachable, enforcement.nev_needed, total) == (False, 2, None)  # 3 in scope need 2 NEVs


def test_the_fewest_changes_are_found_where_choosing_by_rules_helped_is_not_enough():
    # Six rules at 50%, each needing one NEV more: the planned muck truck counts for four of them, the
    # bus for three, the sanitation vehicle for the other three. Taking the vehicle that helps most
    # rules first (the muck truck) leaves two rules that need the bus and the sanitation vehicle
    # anyway: three changes. Two are enough: the bus and the sanitation vehicle.
    def rule(rule_id, categories):
        scope = Scope(frozenset(categories), None, frozenset({"新增", "更新"}), None)
        return dataclasses.replace(OFFICIAL, id=rule_id, scope=scope, threshold=Fraction(1, 2))

    rules = [rule("r1", ["公交车", "渣土车"]), rule("r2", ["公交车", "渣土车"]), rule("r3", ["公交车"]),
             rule("r4", ["市政环卫车", "渣土车"]), rule("r5", ["市政环卫车", "渣土车"]), rule("r6", ["市政环卫车"])]
    plan = [planned("公交车", "柴油", 1), planned("市政环卫车", "柴油", 1), planned("渣土车", "柴油", 1)]
    projections, total = project(rules, {}, plan, agency_id=1, agency=POLICE, has_plan=True)
    assert [p.nev_needed for p in projections] == [1] * 6
    assert total == 2


def test_a_plan_exactly_at_the_threshold_passes_but_is_at_risk():
    # Actual: 1 NEV and 2 petrol enforcement cars; plan: 2 NEV → 3 of 5 = 60% exactly: passes, and
    # fails if either planned NEV is bought as a petrol car.
    actual = {"enforcement-car": (3, 1, 0, 0), "official-car": (3, 1, 0, 0)}
    projections, total = project([OFFICIAL, ENFORCEMENT], actual, [planned("执法执勤用车", "纯电动", 2)], agency_id=1, agency=POLICE, has_plan=True)
    enforcement, official = by_rule(projections)["enforcement-car"], by_rule(projections)["official-car"]
    assert (enforcement.projected.status, enforcement.projected.share, enforcement.nev_needed) == ("pass", Fraction(3, 5), 0)
    assert enforcement.forecast == AT_RISK
    assert official.forecast == AT_RISK  # 3 of 5 against 50%: 2 of 5 would fail as well
    assert total == 0


def test_on_track_leaves_room_for_one_planned_nev_and_at_risk_does_not():
    # Official cars: 2 of 4 = 50% with 2 planned NEVs → one bought as petrol gives 1 of 4: at risk.
    actual = {"official-car": (2, 0, 0, 0)}
    projections, _ = project([OFFICIAL], actual, [planned("公务用车", "纯电动", 2)], agency_id=1, agency=POLICE, has_plan=True)
    assert projections[0].forecast == AT_RISK
    # 3 NEVs of 5: one fewer is 2 of 5 = 40%: at risk; 4 of 5: one fewer is 3 of 5, still ≥ 50%: on track.
    projections, _ = project([OFFICIAL], actual, [planned("公务用车", "纯电动", 4)], agency_id=1, agency=POLICE, has_plan=True)
    assert projections[0].forecast == ON_TRACK


def test_a_plan_of_only_exempted_non_nevs():
    approved = [planned("公交车", "柴油", 3, exemption_state=2)]
    projections, total = project([BUS], {}, approved, agency_id=1, agency=BUS_COMPANY, has_plan=True)
    bus = projections[0]
    assert (bus.planned_in_scope, bus.planned[2], bus.projected.status, bus.nev_needed, bus.forecast) == (0, 3, "no_data", 0, ON_TRACK)
    assert total == 0
    # Still pending: in scope, failing, and all three must change.
    pending = [planned("公交车", "柴油", 3, exemption_state=1)]
    projections, total = project([BUS], {}, pending, agency_id=1, agency=BUS_COMPANY, has_plan=True)
    assert (projections[0].planned_in_scope, projections[0].nev_needed, projections[0].forecast, total) == (3, 3, OFF_TRACK, 3)


def test_a_year_with_no_plan():
    projections, _ = project([OFFICIAL], {"official-car": (4, 1, 0, 0)}, [], agency_id=1, agency=POLICE, has_plan=False)
    assert projections[0].forecast == NO_PLAN
    assert projections[0].projected.status == "fail"


@pytest.mark.parametrize(
    "written, expected",
    [
        ("2026-12", (dt.date(2026, 12, 1), dt.date(2026, 12, 31))),
        ("2026年12月", (dt.date(2026, 12, 1), dt.date(2026, 12, 31))),
        ("2026Q4", Q4),
        ("2026年第四季度", Q4),
        ("２０２６ｑ１", (dt.date(2026, 1, 1), dt.date(2026, 3, 31))),
        (dt.datetime(2026, 2, 1), (dt.date(2026, 2, 1), dt.date(2026, 2, 28))),
        ("2026-13", None),
        ("下半年", None),
    ],
)
def test_planned_months_and_quarters(written, expected):
    assert parse_planned_month(written) == expected


# --- plan against reality ------------------------------------------------------------------------------


def test_bought_vehicles_consume_lines_by_category_and_power_oldest_month_first():
    march = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    june = (dt.date(2026, 6, 1), dt.date(2026, 6, 30))
    lines = [
        Line(2, "公务用车", "纯电动", "新增", 1, *june, None),
        Line(1, "公务用车", "纯电动", "新增", 2, *march, None),
        Line(3, "公务用车", "汽油", "更新", 1, *march, None),
    ]
    may, january = dt.date(2026, 5, 1), dt.date(2026, 1, 1)
    bought = {("公务用车", "纯电动", may): 2, ("公务用车", "柴油", may): 1, ("公务用车", "汽油", may): 1,
              ("公交车", "纯电动", may): 1, ("公务用车", "柴油", january): 1}
    progress = match(lines, bought)
    by_id = {p.line.id: p for p in progress.lines}
    assert (by_id[1].bought, by_id[1].remaining) == (2, 0)  # March before June
    assert (by_id[3].bought, by_id[3].remaining) == (1, 0)
    # Planned NEV, bought diesel in May, within three months of June; January's diesel is too far.
    assert (by_id[2].bought, by_id[2].differs, by_id[2].remaining) == (0, {"柴油": 1}, 0)
    assert progress.unplanned == {("公交车", "纯电动"): 1, ("公务用车", "柴油"): 1}


# --- the command line -----------------------------------------------------------------------------------

HEADER = ["单位名称", "车辆类别", "动力类型", "购置方式", "数量", "计划购置月份", "所属县区", "预算（万元）", "未选用新能源原因"]


def write_plan(path, rows, *, title: str | None = None):
    sheet = ([[title]] if title else []) + [HEADER, *rows]
    return write_workbook(path, {"购置计划": sheet})


@pytest.fixture
def police(session):
    found = agency(session, POLICE, kind="党政机关", sector="公安")
    # Bought so far in 2026: two petrol enforcement cars in March.
    for _ in range(2):
        acquisition(session, found, category="执法执勤用车", power="汽油", acquired_on=dt.date(2026, 3, 5), reported_on=dt.date(2026, 3, 20))
    session.commit()
    return found


def run_json(runner, *args):
    result = runner.invoke(args=[str(a) for a in args] + ["--json"])
    return result.exit_code, json.loads(result.output)


POLICE_PLAN = [
    [POLICE, "执法执勤用车", "汽油", "新增", 2, "2026-03", "市直", 40, None],  # bought already
    [POLICE, "执法执勤用车", "纯电动", "新增", 1, "2026年12月", "市直", 25, None],
    [POLICE, "执法执勤用车", "汽油", "更新", 2, "2026Q4", "市直", None, None],
    [POLICE, "公务用车", "汽油", "新增", 1, "2026年第四季度", "市直", None, None],
]


def test_plans_check_prints_the_pre_check_and_stores_nothing(runner, session, police, tmp_path):
    path = write_plan(tmp_path / "plan.xlsx", POLICE_PLAN, title="濮阳市公安局2026年度车辆购置计划")
    code, payload = run_json(runner, "plans", "check", path)
    assert code == 1  # the plan would fail the rules
    assert list(payload) == CHECK_KEYS
    assert (payload["file"], payload["rows"], payload["errors"], payload["year"], payload["agency"]) == ("plan.xlsx", 4, [], 2026, POLICE)
    results = {r["rule"]: r for r in payload["results"]}
    enforcement = results["puyang-2024/enforcement-car"]
    assert list(enforcement)[:8] == RESULT_KEYS and enforcement["status"] == "fail"
    # 2 bought petrol + remaining 1 NEV and 2 petrol: 1 of 5, 60% needs 3 → change 2.
    assert [enforcement[k] for k in ("actual_in_scope", "actual_nev", "planned_in_scope", "planned_nev", "projected_share", "threshold", "nev_needed")] == [2, 0, 3, 1, 0.2, 0.6, 2]
    official = results["puyang-2024/official-car"]
    # The same plus one petrol official car: 1 of 6, 50% needs 3 → change 2, the same two.
    assert [official[k] for k in ("actual_in_scope", "planned_in_scope", "planned_nev", "nev_needed")] == [2, 4, 1, 2]
    assert payload["nev_needed_total"] == 2
    assert session.scalar(sa.select(sa.func.count()).select_from(PurchasePlan)) == 0


def test_a_filled_plan_template_warns_nothing_about_its_instruction_sheet(runner, police, tmp_path):
    path = tmp_path / "template.xlsx"
    write_plan_template(path)
    book = load_workbook(path)
    row = dict(zip(HEADER, [POLICE, "执法执勤用车", "纯电动", "新增", 3, "2026-12", "市直", None, None]))
    data = book.worksheets[0]
    data.append([row.get(str(cell.value).lstrip("*")) for cell in data[1]])
    book.save(path)
    code, payload = run_json(runner, "plans", "check", path)
    assert (code, payload["errors"], payload["warnings"]) == (0, [], [])


def test_plans_check_passes_a_plan_that_meets_every_rule(runner, police, tmp_path):
    rows = [[POLICE, "执法执勤用车", "纯电动", "新增", 3, "2026-12", "市直", None, None]]
    code, payload = run_json(runner, "plans", "check", write_plan(tmp_path / "good.xlsx", rows))
    assert code == 0
    assert {r["status"] for r in payload["results"]} == {"pass"}  # 3 of 5 exactly
    assert payload["nev_needed_total"] == 0


def test_plans_check_names_sheet_row_and_column_of_bad_values(runner, police, tmp_path):
    rows = [
        [POLICE, "执法执勤用车", "纯电动", "新增", 1.5, "2026-13", "市直", None, None],
        [POLICE, "公交车", "柴油", "新增", 1, "2027-01", "市直", None, None],
    ]
    code, payload = run_json(runner, "plans", "check", write_plan(tmp_path / "bad.xlsx", rows))
    assert code == 1
    found = {(e["sheet"], e["row"], e["column"], e["code"]) for e in payload["errors"]}
    assert found == {
        ("购置计划", 2, "quantity", "quantity_invalid"),
        ("购置计划", 2, "planned_month", "month_invalid"),
        ("购置计划", 3, "exemption_reason", "exemption_reason_required"),
    }


def test_plans_check_refuses_values_outside_the_vocabularies_as_uploads_do(runner, police, tmp_path):
    """The vocabulary checks are the acquisition schema's own (imports.schema.VocabularySchema)."""
    rows = [
        [POLICE, "飞机", "纯电动", "新增", 1, "2027-01", "市直", None, None],
        [POLICE, "执法执勤用车", "混合动力", "新增", 1, "2027-01", "市直", None, None],
        [POLICE, "执法执勤用车", "纯电动", "赠送", 1, "2027-01", "郑州", None, None],
    ]
    code, payload = run_json(runner, "plans", "check", write_plan(tmp_path / "words.xlsx", rows))
    assert code == 1
    assert {(e["row"], e["column"], e["code"]) for e in payload["errors"]} == {
        (2, "category", "unknown_category"),
        (3, "power", "power_ambiguous"),
        (4, "acquisition", "unknown_acquisition_type"),
        (4, "county", "unknown_county"),
    }


def test_a_plan_spans_one_year_and_an_unusable_file_exits_2(runner, police, tmp_path):
    rows = [[POLICE, "公务用车", "纯电动", "新增", 1, "2026-12", "市直", None, None],
            [POLICE, "公务用车", "纯电动", "新增", 1, "2027-01", "市直", None, None]]
    code, payload = run_json(runner, "plans", "check", write_plan(tmp_path / "years.xlsx", rows))
    assert code == 1 and [(e["row"], e["code"]) for e in payload["errors"]] == [(3, "plan_year_mixed")]
    junk = tmp_path / "plan.xlsx"
    junk.write_bytes(b"not a workbook")
    code, payload = run_json(runner, "plans", "check", junk)
    assert code == 2 and payload["error"]["code"] in {"not_xlsx", "corrupt"}


def test_plans_import_keeps_versions_and_an_agency_user_only_its_own(runner, session, police, tmp_path):
    agency(session, BUS_COMPANY, kind="国有企业", sector="公交", county="华龙区")
    user(session, "gongan", agency_name=POLICE)
    session.commit()
    code, first = run_json(runner, "plans", "import", write_plan(tmp_path / "v1.xlsx", POLICE_PLAN), "--as", "gongan")
    assert code == 1 and first["version"] == 1 and first["plan"]
    code, second = run_json(runner, "plans", "import", write_plan(tmp_path / "v2.xlsx", POLICE_PLAN[:2]), "--as", "gongan")
    assert second["version"] == 2
    plans = session.execute(sa.select(PurchasePlan.version, PurchasePlan.status).order_by(PurchasePlan.id)).all()
    assert plans == [(1, "replaced"), (2, "current")]
    assert session.scalar(sa.select(sa.func.count()).select_from(PlanLine).join(PurchasePlan).where(PurchasePlan.version == 2)) == 2
    other = [[BUS_COMPANY, "公交车", "纯电动", "新增", 2, "2026-12", "华龙区", None, None]]
    code, refused = run_json(runner, "plans", "import", write_plan(tmp_path / "bus.xlsx", other), "--as", "gongan")
    assert code == 1 and refused["version"] is None
    assert {e["code"] for e in refused["errors"]} == {"agency_not_allowed"}
    # Kept as the uploader's agency's invalid upload, not shown to the agency the file names.
    assert session.get(PurchasePlan, refused["plan"]).agency.name == POLICE


def test_forecast_per_agency_and_city_wide(runner, session, police, tmp_path):
    agency(session, "濮阳市市场监督管理局", kind="党政机关", sector="市场监管")
    session.commit()
    run_json(runner, "plans", "import", write_plan(tmp_path / "plan.xlsx", POLICE_PLAN))
    code, payload = run_json(runner, "forecast", "--year", "2026")
    assert code == 0 and payload["year"] == 2026
    rows = {(r["rule"], r["agency"]): r for r in payload["results"]}
    assert rows[("puyang-2024/enforcement-car", POLICE)]["forecast"] == OFF_TRACK
    assert rows[("puyang-2024/enforcement-car", POLICE)]["nev_needed"] == 2
    assert rows[("puyang-2024/official-car", "濮阳市市场监督管理局")]["forecast"] == NO_PLAN
    city = rows[("puyang-2024/official-car", None)]
    assert (city["actual_in_scope"], city["planned_in_scope"], city["forecast"]) == (2, 4, OFF_TRACK)
    assert list(city)[:8] == RESULT_KEYS
    code, one = run_json(runner, "forecast", "--year", "2026", "--agency", POLICE)
    assert {r["agency"] for r in one["results"]} == {POLICE}


# --- an exemption decided before the purchase --------------------------------------------------------------


def test_a_decision_made_on_the_plan_applies_to_the_reported_purchase(runner, session, tmp_path):
    company = agency(session, BUS_COMPANY, kind="国有企业", sector="公交", county="华龙区")
    reviewer = user(session, "reviewer", role="reviewer")
    session.commit()
    reason = "山区线路坡度大，纯电动车辆续航不足"
    plan = [[BUS_COMPANY, "公交车", "柴油", "更新", 1, "2026-09", "华龙区", 80, reason]]
    code, payload = run_json(runner, "plans", "check", write_plan(tmp_path / "plan.xlsx", plan))
    bus = next(r for r in payload["results"] if r["rule"] == "puyang-2024/bus")
    assert (code, bus["status"], bus["nev_needed"]) == (1, "fail", 1)  # the request is not decided yet
    run_json(runner, "plans", "import", tmp_path / "plan.xlsx")
    line = session.scalars(sa.select(PlanLine)).one()
    assert line.exemption_status == "pending"
    decide_plan_exemption(session, line.id, user=reviewer, approve=True, comment=None)
    session.commit()
    code, forecast = run_json(runner, "forecast", "--year", "2026", "--agency", BUS_COMPANY)
    assert next(r for r in forecast["results"] if r["rule"] == "puyang-2024/bus")["forecast"] == ON_TRACK

    # Bought in November, within 3 months of September: the decision applies without asking again.
    upload = write_upload(tmp_path / "buses.xlsx", [
        acquisition_row(1, power="柴油", plate="豫J12345", acquisition="更新", acquired_on=dt.date(2026, 11, 20),
                        emission_standard="国六", exemption_reason=reason),
        acquisition_row(2, power="柴油", plate="豫J12346", acquisition="更新", acquired_on=dt.date(2026, 11, 21),
                        emission_standard="国六", exemption_reason=reason),
    ])
    result = runner.invoke(args=["import", str(upload), "--json"])
    assert result.exit_code == 0, result.output
    requests = session.execute(
        sa.select(Acquisition.acquired_on, ExemptionRequest.status, ExemptionRequest.decided_by_id, PlannedExemption.plan_line_id)
        .join(ExemptionRequest, ExemptionRequest.acquisition_id == Acquisition.id)
        .join(PlannedExemption, PlannedExemption.exemption_request_id == ExemptionRequest.id)
    ).all()
    # The line planned one bus: the first bought takes the decision, the second must ask itself.
    assert requests == [(dt.date(2026, 11, 20), "approved", reviewer.id, line.id)]
    states = dict(session.execute(sa.select(Acquisition.acquired_on, Acquisition.exemption_state)).all())
    assert states == {dt.date(2026, 11, 20): 2, dt.date(2026, 11, 21): 0}
    assert company.id == session.scalar(sa.select(Acquisition.agency_id).limit(1))


def test_plan_headers_come_from_data():
    assert PLAN_HEADERS.match("计划购置时间").key == "planned_month"
    assert PLAN_HEADERS.match("车架号").key is None  # no VIN in a plan
    assert PLAN_HEADERS.match("燃料种类").key == "power"  # taken from the acquisitions' power column
    assert PLAN_HEADERS.required_keys == ("agency", "category", "power", "acquisition", "quantity", "planned_month", "county")


# --- the API -----------------------------------------------------------------------------------------------


def test_forecast_api_has_the_command_lines_shape_and_the_usual_permissions(client, runner, session, police, tmp_path):
    agency(session, BUS_COMPANY, kind="国有企业", sector="公交", county="华龙区")
    reviewer = user(session, "reviewer", role="reviewer")
    user(session, "gongan", agency_name=POLICE)
    token = issue_api_token(session, reviewer, actor_id=reviewer.id)
    session.commit()
    run_json(runner, "plans", "import", write_plan(tmp_path / "plan.xlsx", POLICE_PLAN))
    body = client.get("/api/v1/forecast?year=2026", headers={"Authorization": f"Bearer {token}"}).get_json()
    cli = run_json(runner, "forecast", "--year", "2026")[1]
    assert body == cli
    assert client.get("/api/v1/forecast", headers={"Authorization": f"Bearer {token}"}).status_code == 400
    assert client.get("/api/v1/forecast?year=2026").status_code == 401
    login(client, "gongan")
    own = client.get("/api/v1/forecast?year=2026").get_json()
    assert own["results"] and {r["agency"] for r in own["results"]} == {POLICE}  # no city-wide rows either
    assert client.get(f"/api/v1/forecast?year=2026&agency={BUS_COMPANY}").status_code == 404


# --- the projection on the pages and in the monthly e-mail ---------------------------------------------------


def test_the_dashboard_and_the_agency_page_show_the_forecast(client, runner, session, police, tmp_path):
    user(session, "reviewer", role="reviewer")
    user(session, "gongan", agency_name=POLICE)
    session.commit()
    login(client, "reviewer")
    # The pages are kept until the data changes: a plan uploaded after they were shown is a change.
    before = client.get(f"/agencies/{police.id}?year=2026").get_data(as_text=True)
    assert "年底将达到 20%" not in before and "尚未上传本年度购置计划" in before
    run_json(runner, "plans", "import", write_plan(tmp_path / "plan.xlsx", POLICE_PLAN))
    assert "年底将达到 20%" in client.get(f"/agencies/{police.id}?year=2026").get_data(as_text=True)
    city = client.get("/?year=2026").get_data(as_text=True)
    assert 'id="forecast"' in city and "按计划不达标" in city
    client.post("/logout")
    login(client, "gongan")
    page = client.get(f"/agencies/{police.id}?year=2026").get_data(as_text=True)
    # Enforcement cars: 1 of 5 planned and bought → 20%; change 2 of the 2 planned petrol cars.
    assert "按此计划，年底将达到 20%（要求 ≥ 60%）：须把计划中的 2 辆汽油车中的 2 辆改为新能源汽车。" in page
    assert "按计划预计（年底）" in page  # the dotted line to December on the trend chart and its table row


def test_the_monthly_mail_says_where_the_plan_leads(app, runner, session, police, tmp_path):
    from tests.test_mail_summaries import smtp_server

    police.contact_emails = ["zhuangbei@pygaj.example.cn"]
    session.commit()
    run_json(runner, "plans", "import", write_plan(tmp_path / "plan.xlsx", POLICE_PLAN))
    with smtp_server() as (inbox, port):
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, MAIL_FROM="fleet@pyjtj.example.cn")
        result = runner.invoke(args=["summaries", "send", "--month", "2026-11", "--json"])
        assert result.exit_code == 0, result.output
    [message] = [m for m in inbox.messages if m["To"] == "zhuangbei@pygaj.example.cn"]
    for part in ("plain", "html"):
        body = message.get_body((part,)).get_content()
        # Official cars: 1 NEV of 6 → 17%; 2 of the 3 planned petrol cars must change.
        assert "按此计划，年底将达到 17%（要求 ≥ 50%）：须把计划中的 3 辆汽油车中的 2 辆改为新能源汽车。" in body


def test_the_demo_city_has_plans_for_most_agencies(session):
    from fleet.domain.demo import load_demo
    from fleet.domain.plans import forecast

    summary = load_demo(session, today=dt.date(2026, 11, 15))
    session.commit()
    agencies = session.scalar(sa.select(sa.func.count()).select_from(Agency))
    assert summary.plans == session.scalar(sa.select(sa.func.count()).select_from(PurchasePlan).where(PurchasePlan.status == "current"))
    assert summary.plans >= agencies * 3 // 4
    states = {p.forecast for p in forecast(session, PACK, 2026)}
    assert NO_PLAN in states and states - {NO_PLAN}  # most have a plan, some have none
    assert session.scalar(sa.select(sa.func.count()).select_from(PlannedExemption)) > 0  # decisions carried to purchases


# --- the pages ---------------------------------------------------------------------------------------------


def test_upload_a_plan_on_the_web_decide_its_exemption_and_keep_others_out(client, session, tmp_path):
    agency(session, BUS_COMPANY, kind="国有企业", sector="公交", county="华龙区")
    agency(session, POLICE)
    user(session, "gongjiao", agency_name=BUS_COMPANY)
    user(session, "gongan", agency_name=POLICE)
    user(session, "reviewer", role="reviewer")
    session.commit()
    reason = "山区线路坡度大，纯电动车辆续航不足"
    rows = [[BUS_COMPANY, "公交车", "柴油", "更新", 2, "2026年第四季度", "华龙区", 160, reason],
            [BUS_COMPANY, "公交车", "纯电动", "新增", 3, "2026-12", "华龙区", None, None]]
    login(client, "gongjiao")
    with write_plan(tmp_path / "公交计划.xlsx", rows).open("rb") as fh:
        response = client.post("/plans/", data={"file": (fh, "公交计划.xlsx")}, content_type="multipart/form-data")
    assert response.status_code == 302
    plan = session.scalars(sa.select(PurchasePlan)).one()
    page = client.get(f"/plans/{plan.id}").get_data(as_text=True)
    assert "按计划不达标" in page and "须把计划中的 2 辆柴油车中的 2 辆改为新能源汽车" in page
    assert "批准" not in page  # only a reviewer decides
    assert client.get("/plans/template").status_code == 200
    client.post("/logout")

    login(client, "gongan")
    assert client.get(f"/plans/{plan.id}").status_code == 404
    assert client.get(f"/plans/{plan.id}/annotated").status_code == 404
    assert BUS_COMPANY not in client.get("/plans/").get_data(as_text=True)
    client.post("/logout")

    login(client, "reviewer")
    line = session.scalars(sa.select(PlanLine).where(PlanLine.exemption_status == "pending")).one()
    assert client.post(f"/plans/lines/{line.id}/decision", data={"decision": "reject", "comment": ""}).status_code == 302
    session.expire_all()
    assert session.get(PlanLine, line.id).exemption_status == "pending"  # a rejection needs a comment
    client.post(f"/plans/lines/{line.id}/decision", data={"decision": "approve", "comment": ""})
    session.expire_all()
    assert session.get(PlanLine, line.id).exemption_status == "approved"
    page = client.get(f"/plans/{plan.id}").get_data(as_text=True)
    assert "按计划可达标" in page or "有风险" in page


def test_a_plan_with_errors_is_kept_with_an_annotated_workbook(client, session, tmp_path):
    agency(session, POLICE)
    user(session, "gongan", agency_name=POLICE)
    session.commit()
    login(client, "gongan")
    rows = [[POLICE, "执法执勤用车", "纯电动", "新增", 0, "明年", "市直", None, None]]
    with write_plan(tmp_path / "bad.xlsx", rows).open("rb") as fh:
        client.post("/plans/", data={"file": (fh, "bad.xlsx")}, content_type="multipart/form-data")
    plan = session.scalars(sa.select(PurchasePlan)).one()
    assert (plan.status, plan.version) == ("invalid", None)
    page = client.get(f"/plans/{plan.id}").get_data(as_text=True)
    assert 'data-code="quantity_invalid"' in page and 'data-code="month_invalid"' in page
    response = client.get(f"/plans/{plan.id}/annotated")
    workbook = load_workbook(io.BytesIO(response.data))
    assert workbook.sheetnames[0] == "错误清单"
    assert workbook["购置计划"]["E2"].comment is not None  # 数量, column E, row 2
