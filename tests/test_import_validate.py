"""Validation of real xlsx uploads against the schema and the database: every code, where it points, what it says."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from xlsx_factory import HEADERS, acquisition, sheet_rows, vin, write_upload, write_workbook

from fleet.base.models import Acquisition, Agency
from imports.pipeline import import_file, validate_file
from imports.report import CODES, ValidationReport
from tests.factories import acquisition as recorded_acquisition
from tests.factories import agency, user

BUS_COMPANY = "濮阳市公共交通有限公司"


@pytest.fixture
def bus_company(session):
    company = agency(session, BUS_COMPANY, kind="国有企业", sector="公交", county="华龙区")
    session.commit()
    return company


def codes(report: ValidationReport) -> list[tuple[int | None, str | None, str]]:
    return [(f.row, f.column, f.code) for f in [*report.errors, *report.warnings]]


def check(session, tmp_path: Path, rows, **kwargs) -> ValidationReport:
    return validate_file(session, write_upload(tmp_path / "upload.xlsx", rows), **kwargs)


def test_a_clean_file_has_no_findings(session, tmp_path, bus_company):
    report = check(session, tmp_path, [acquisition(1), acquisition(2)])
    assert report.as_json() == {
        "file": "upload.xlsx",
        "sheets": ["车辆购置"],
        "rows": 2,
        "valid_rows": 2,
        "errors": [],
        "warnings": [],
    }


@pytest.mark.parametrize(
    ("overrides", "column", "code"),
    [
        ({"agency": None}, "agency", "required"),
        ({"vin": "LZYBEV0A0R000001"}, "vin", "vin_format"),
        ({"vin": "LZYBEV0A1R0000001"}, "vin", "vin_check_digit"),
        ({"plate": "豫J-1"}, "plate", "plate_format"),
        ({"plate": "豫JF00001"}, "plate", "plate_power_mismatch"),
        ({"category": "飞行汽车"}, "category", "unknown_category"),
        ({"power": "核动力"}, "power", "unknown_power_type"),
        ({"power": "混合动力", "plate": None}, "power", "power_ambiguous"),
        ({"acquisition": "租赁"}, "acquisition", "unknown_acquisition_type"),
        ({"county": "郑州市"}, "county", "unknown_county"),
        ({"agency": "不存在的单位"}, "agency", "unknown_agency"),
        ({"acquired_on": "2025/2/30"}, "acquired_on", "date_invalid"),
        ({"acquired_on": dt.date(2014, 6, 1)}, "acquired_on", "date_out_of_range"),
        ({"price": "-5"}, "price", "price_invalid"),
        ({"credit_code": "91410900MA1234567X"}, "credit_code", "credit_code_invalid"),
        ({"power": "柴油", "plate": "豫J00001"}, "exemption_reason", "exemption_reason_required"),
        ({"category": "重型货车", "power": "柴油", "plate": "豫J00001"}, "emission_standard", "required"),
    ],
)
def test_each_code_points_at_its_cell(session, tmp_path, bus_company, overrides, column, code):
    report = check(session, tmp_path, [acquisition(1, **overrides)])
    assert codes(report) == [(2, column, code)]
    assert report.valid_rows == 0
    (error,) = report.errors
    assert error.sheet == "车辆购置"
    assert error.header == HEADERS[column]
    assert error.severity == "error"
    assert f"工作表“车辆购置”第 2 行“{HEADERS[column]}”" in error.message


def test_the_value_is_reported_as_written_not_as_normalised(session, tmp_path, bus_company):
    report = check(session, tmp_path, [acquisition(1, vin="ｌｚｙbev0a1r0000001", acquired_on="2025年2月30日")])
    assert [(f.code, f.value) for f in report.errors] == [
        ("vin_check_digit", "ｌｚｙbev0a1r0000001"),
        ("date_invalid", "2025年2月30日"),
    ]


def test_the_header_is_reported_as_written(session, tmp_path, bus_company):
    path = write_upload(tmp_path / "u.xlsx", [acquisition(1, vin="BAD")], headers={"vin": "车架号"})
    (error,) = validate_file(session, path).errors
    assert (error.header, error.column, error.code) == ("车架号", "vin", "vin_format")
    assert "“车架号”" in error.message


def test_rows_are_excel_rows_below_title_rows(session, tmp_path, bus_company):
    rows = [["2025年度车辆购置情况统计表"], [], *sheet_rows([acquisition(1), acquisition(2, county="火星")])]
    report = validate_file(session, write_workbook(tmp_path / "u.xlsx", {"车辆": rows}))
    assert codes(report) == [(5, "county", "unknown_county")]


def test_imported_vehicle_check_digit_is_a_warning(session, tmp_path, bus_company):
    report = check(session, tmp_path, [acquisition(1, vin="KMHBEV0A1R0000001")])
    assert report.errors == []
    assert [(w.code, w.severity) for w in report.warnings] == [("vin_check_digit", "warning")]
    assert report.valid_rows == 1


def test_plate_from_elsewhere_is_a_warning(session, tmp_path, bus_company):
    report = check(session, tmp_path, [acquisition(1, plate="京AD00001")])
    assert report.errors == []
    assert codes(report) == [(2, "plate", "plate_not_local")]


def test_duplicate_vin_names_the_first_occurrence_across_sheets(session, tmp_path, bus_company):
    path = write_workbook(
        tmp_path / "u.xlsx",
        {"一月": sheet_rows([acquisition(1)]), "二月": sheet_rows([acquisition(2), acquisition(1)])},
    )
    report = validate_file(session, path)
    assert [(f.sheet, f.row, f.code) for f in report.errors] == [("二月", 3, "duplicate_vin")]
    assert "工作表“一月”第 2 行" in report.errors[0].message
    assert report.valid_rows == 2


def test_agency_names_match_despite_spaces_and_full_width(session, tmp_path):
    agency(session, "濮阳市ABC物流有限公司", kind="民营企业", sector="物流")
    session.commit()
    row = acquisition(1, agency=" 濮阳市ＡＢＣ物流 有限公司", category="公务用车")
    assert check(session, tmp_path, [row]).errors == []


def test_an_agency_user_may_only_upload_its_own_vehicles(session, tmp_path, bus_company):
    agency(session, "濮阳市公安局")
    police_manager = user(session, "police", agency_name="濮阳市公安局")
    session.commit()
    report = check(session, tmp_path, [acquisition(1)], user=police_manager)
    assert codes(report) == [(2, "agency", "agency_not_allowed")]
    assert "濮阳市公安局" in report.errors[0].message
    reviewer = user(session, "reviewer", role="reviewer")
    session.commit()
    assert check(session, tmp_path, [acquisition(1)], user=reviewer).errors == []


def test_a_vin_recorded_for_another_agency_is_refused(session, tmp_path, bus_company):
    police = agency(session, "濮阳市公安局")
    recorded_acquisition(session, police, vin=vin(1))
    recorded_acquisition(session, bus_company, vin=vin(2))
    session.commit()
    report = check(session, tmp_path, [acquisition(1), acquisition(2)])
    assert codes(report) == [(2, "vin", "vin_registered_elsewhere")]
    assert "濮阳市公安局" in report.errors[0].message


def test_a_missing_column_is_one_error_not_one_per_row(session, tmp_path, bus_company):
    keys = [k for k in HEADERS if k != "category"]
    path = write_upload(tmp_path / "u.xlsx", [acquisition(1), acquisition(2)], keys=keys)
    report = validate_file(session, path)
    assert [(f.column, f.code) for f in report.errors] == [("category", "missing_column")]
    assert report.valid_rows == 0


def test_a_bad_row_reports_each_bad_value_once(session, tmp_path, bus_company):
    row = acquisition(1, vin=None, power="核动力", plate="豫J00001", county="火星", agency="无名单位")
    report = check(session, tmp_path, [row])
    assert sorted(codes(report)) == sorted(
        [(2, "agency", "unknown_agency"), (2, "vin", "required"), (2, "power", "unknown_power_type"), (2, "county", "unknown_county")]
    )


def test_every_code_is_documented():
    documented = set(CODES)
    issue_codes = {
        "missing_column", "required", "vin_format", "vin_check_digit", "plate_format", "plate_power_mismatch",
        "unknown_category", "unknown_power_type", "unknown_acquisition_type", "unknown_county", "unknown_agency",
        "agency_not_allowed", "date_invalid", "date_out_of_range", "price_invalid", "credit_code_invalid",
        "duplicate_vin", "vin_registered_elsewhere", "exemption_reason_required", "power_ambiguous", "plate_not_local",
    }
    assert issue_codes <= documented
    assert all(str(code.description) for code in CODES.values())


def test_a_header_on_two_lines_reads_as_one_in_messages():
    from imports.report import Messages

    found = Messages().finding("price_invalid", sheet="车辆", row=8, column="price", header="购车价格\n（万元）", value=-3)
    assert "购车价格 （万元）" in found.message and "\n" not in found.message
    assert found.header == "购车价格\n（万元）"  # the report keeps the header as written


# --- agency names as clerks write them (aliases, the city prefix, suggestions) ------------------------


@pytest.fixture
def registry_with_aliases(session, bus_company):
    bus_company.aliases = ["公交公司", "市公交公司"]
    police = agency(session, "濮阳市公安局", aliases=["市公安局"])
    session.commit()
    return police


@pytest.mark.parametrize(
    ("written", "registered"),
    [
        ("市公安局", "濮阳市公安局"),
        ("公安局", "濮阳市公安局"),
        ("市公交公司", BUS_COMPANY),
        ("濮阳公交公司", BUS_COMPANY),
    ],
)
def test_names_as_clerks_write_them_are_the_registered_agency(session, tmp_path, registry_with_aliases, written, registered):
    outcome = import_file(session, write_upload(tmp_path / "u.xlsx", [acquisition(1, agency=written)]))
    assert outcome.report.errors == [] and outcome.inserted == 1
    stored = session.scalars(sa.select(Agency.name).join(Acquisition, Acquisition.agency_id == Agency.id)).all()
    assert stored == [registered]


def test_a_sub_unit_is_unknown_with_its_parent_suggested(session, tmp_path, registry_with_aliases):
    report = check(session, tmp_path, [acquisition(1, agency="濮阳市公安局交警支队"), acquisition(2, agency="火星探测局")])
    assert codes(report) == [(2, "agency", "unknown_agency"), (3, "agency", "unknown_agency")]
    sub_unit, unrelated = report.as_json()["errors"]
    assert sub_unit["suggestions"] == ["濮阳市公安局"]
    assert sub_unit["message"].endswith("单位“濮阳市公安局交警支队”未在单位名录中登记。是否指：“濮阳市公安局”？")
    assert unrelated["suggestions"] == []
    assert "是否指" not in unrelated["message"]
    # other codes carry no suggestions key: the JSON of every other finding is as it was
    other = check(session, tmp_path, [acquisition(1, county="火星")]).as_json()["errors"][0]
    assert "suggestions" not in other


def test_suggestions_survive_the_stored_report(session, tmp_path, registry_with_aliases):
    report = check(session, tmp_path, [acquisition(1, agency="濮阳市公安局交警支队")])
    again = ValidationReport.from_record(report.to_record())
    assert again.errors[0].suggestions == ["濮阳市公安局"] and again.as_json() == report.as_json()


def test_an_agency_user_is_offered_only_its_own_agency(session, tmp_path, registry_with_aliases):
    manager = user(session, "police", agency_name="濮阳市公安局")
    session.commit()
    report = check(session, tmp_path, [acquisition(1, agency="濮阳市公安局交警支队"), acquisition(2, agency="濮阳市公交集团")], user=manager)
    assert [f.suggestions for f in report.errors] == [["濮阳市公安局"], []]
    # an alias of another agency is that agency, and so not allowed
    report = check(session, tmp_path, [acquisition(1, agency="市公交公司")], user=manager)
    assert codes(report) == [(2, "agency", "agency_not_allowed")]


def test_a_blank_agency_cell_is_the_agency_users_own(session, tmp_path, bus_company):
    manager = user(session, "bus", agency_name=BUS_COMPANY)
    session.commit()
    path = write_upload(tmp_path / "u.xlsx", [acquisition(1, agency=None), acquisition(2)])
    outcome = import_file(session, path, user=manager)
    assert outcome.report.errors == []
    assert codes(outcome.report) == [(2, "agency", "agency_from_user")]
    (warning,) = outcome.report.warnings
    assert warning.severity == "warning" and BUS_COMPANY in warning.message and warning.header == HEADERS["agency"]
    assert outcome.inserted == 2 and outcome.batch.agency_id == bus_company.id
    assert stored_agency_ids(session) == {bus_company.id}


def stored_agency_ids(session) -> set[int]:
    return set(session.scalars(sa.select(Acquisition.agency_id)))


def test_a_blank_agency_cell_is_still_an_error_for_a_reviewer(session, tmp_path, bus_company):
    reviewer = user(session, "reviewer", role="reviewer")
    session.commit()
    report = check(session, tmp_path, [acquisition(1, agency=None)], user=reviewer)
    assert codes(report) == [(2, "agency", "required")] and report.valid_rows == 0


def test_a_sheet_without_the_agency_column_is_the_agency_users_own(session, tmp_path, bus_company):
    keys = [k for k in HEADERS if k != "agency"]
    sheets = {"一月": sheet_rows([acquisition(1), acquisition(2)], keys=keys), "二月": sheet_rows([acquisition(3)], keys=keys)}
    path = write_workbook(tmp_path / "u.xlsx", sheets)
    manager = user(session, "bus", agency_name=BUS_COMPANY)
    reviewer = user(session, "reviewer", role="reviewer")
    session.commit()

    refused = validate_file(session, path, user=reviewer)
    assert [(f.sheet, f.code) for f in refused.errors] == [("一月", "missing_column"), ("二月", "missing_column")]

    outcome = import_file(session, path, user=manager)
    assert outcome.report.errors == []
    # said once per sheet, not once per row
    assert [(f.sheet, f.row, f.column, f.code) for f in outcome.report.warnings] == [
        ("一月", 1, "agency", "agency_from_user"),
        ("二月", 1, "agency", "agency_from_user"),
    ]
    assert BUS_COMPANY in outcome.report.warnings[0].message
    assert outcome.inserted == 3 and stored_agency_ids(session) == {bus_company.id}
