"""The command-line contract of issue 3: validate, import, template — exit codes and JSON shapes exactly."""

from __future__ import annotations

import gc
import json

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from xlsx_factory import HEADERS, acquisition, write_upload

from fleet.base.models import Acquisition, ImportBatch, UploadFile
from tests.factories import agency, user

BUS_COMPANY = "濮阳市公共交通有限公司"
REPORT_KEYS = ["file", "sheets", "rows", "valid_rows", "errors", "warnings"]
FINDING_KEYS = ["sheet", "row", "column", "header", "value", "code", "severity", "message"]


@pytest.fixture
def bus_company(session):
    agency(session, BUS_COMPANY, kind="国有企业", sector="公交", county="华龙区")
    session.commit()


def run(runner, *args):
    result = runner.invoke(args=[str(a) for a in args])
    return result.exit_code, result.output


def run_json(runner, *args):
    code, output = run(runner, *args, "--json")
    return code, json.loads(output)


def test_validate_a_clean_file_exits_0(runner, tmp_path, bus_company):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1)])
    code, payload = run_json(runner, "validate", path)
    assert code == 0
    assert payload == {"file": "buses.xlsx", "sheets": ["车辆购置"], "rows": 1, "valid_rows": 1, "errors": [], "warnings": []}


def test_validate_data_errors_exit_1_with_findings(runner, tmp_path, bus_company):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2, county="火星", plate="京AD00002")])
    code, payload = run_json(runner, "validate", path)
    assert code == 1
    assert list(payload) == REPORT_KEYS
    assert (payload["rows"], payload["valid_rows"]) == (2, 1)
    (error,) = payload["errors"]
    (warning,) = payload["warnings"]
    assert list(error) == FINDING_KEYS
    assert {k: error[k] for k in FINDING_KEYS if k != "message"} == {
        "sheet": "车辆购置", "row": 3, "column": "county", "header": HEADERS["county"],
        "value": "火星", "code": "unknown_county", "severity": "error",
    }
    assert (warning["code"], warning["severity"]) == ("plate_not_local", "warning")


def test_validate_without_json_lists_findings_and_a_summary(runner, tmp_path, bus_company):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1, county="火星")])
    code, output = run(runner, "validate", path)
    assert code == 1
    lines = output.strip().splitlines()
    assert "unknown_county" in lines[0] and "工作表“车辆购置”第 2 行“所属县区”" in lines[0]
    assert "buses.xlsx" in lines[-1] and "1 个错误" in lines[-1]


def test_validate_accepts_a_language(runner, tmp_path, bus_company):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1, county="火星")])
    code, payload = run_json(runner, "validate", path, "--lang", "en")
    assert code == 1 and payload["errors"][0]["code"] == "unknown_county"


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"\x00\x01 not a workbook at all", "not_xlsx"), (b"", "not_xlsx"), (b"PK\x03\x04truncated", "corrupt")],
)
def test_an_unusable_file_exits_2(runner, tmp_path, content, code):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(content)
    exit_code, payload = run_json(runner, "validate", path)
    assert exit_code == 2
    assert list(payload) == ["file", "error"] and list(payload["error"]) == ["code", "message"]
    assert payload["error"]["code"] == code and payload["error"]["message"]


def test_a_missing_path_exits_2_without_a_traceback(runner, tmp_path):
    code, output = run(runner, "validate", tmp_path / "nowhere.xlsx")
    assert code == 2 and "Traceback" not in output and "nowhere.xlsx" in output


def test_a_file_over_the_upload_limit_is_refused(app, runner, tmp_path, bus_company):
    app.config["MAX_UPLOAD_MB"] = 0
    code, payload = run_json(runner, "import", write_upload(tmp_path / "big.xlsx", [acquisition(1)]))
    assert (code, payload["error"]["code"]) == (2, "too_large")


def test_import_commits_a_clean_file_and_recognises_it_again(runner, session, tmp_path, bus_company):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2)])
    code, payload = run_json(runner, "import", path)
    assert code == 0
    assert list(payload) == [*REPORT_KEYS, "batch", "inserted", "updated", "unchanged", "duplicate_of"]
    assert (payload["inserted"], payload["updated"], payload["unchanged"], payload["duplicate_of"]) == (2, 0, 0, None)
    assert session.get(ImportBatch, payload["batch"]).status == "committed"

    code, again = run_json(runner, "import", path)
    assert (code, again["batch"], again["inserted"], again["duplicate_of"]) == (0, None, 0, payload["batch"])
    code, output = run(runner, "import", path)
    assert code == 0 and str(payload["batch"]) in output


def test_import_with_errors_exits_1_and_commits_nothing(runner, session, tmp_path, bus_company):
    code, payload = run_json(runner, "import", write_upload(tmp_path / "b.xlsx", [acquisition(1, power="核动力")]))
    assert code == 1
    assert payload["errors"][0]["code"] == "unknown_power_type"
    assert payload["inserted"] == 0 and payload["batch"] is not None
    assert session.get(ImportBatch, payload["batch"]).status == "invalid"
    assert session.scalar(sa.select(sa.func.count()).select_from(Acquisition)) == 0


def test_import_as_an_agency_user_limits_the_agencies(runner, session, tmp_path, bus_company):
    agency(session, "濮阳市公安局")
    user(session, "police", agency_name="濮阳市公安局")
    user(session, "bus", agency_name=BUS_COMPANY)
    session.commit()
    path = write_upload(tmp_path / "b.xlsx", [acquisition(1)])
    code, payload = run_json(runner, "import", path, "--as", "police")
    assert (code, [e["code"] for e in payload["errors"]]) == (1, ["agency_not_allowed"])
    code, payload = run_json(runner, "import", path, "--as", "bus")
    assert (code, payload["inserted"]) == (0, 1)
    assert session.get(ImportBatch, payload["batch"]).uploaded_by.username == "bus"


def test_import_as_an_unknown_user_exits_2(runner, tmp_path, bus_company):
    code, payload = run_json(runner, "import", write_upload(tmp_path / "b.xlsx", [acquisition(1)]), "--as", "ghost")
    assert (code, payload["error"]["code"]) == (2, "unknown_user")


def test_an_unusable_import_stores_nothing(runner, session, tmp_path):
    path = tmp_path / "renamed.xlsx"
    path.write_text("单位名称,车辆识别代号\n濮阳市公安局,LFV\n", encoding="utf-8")
    code, payload = run_json(runner, "import", path)
    assert code == 2 and payload["file"] == "renamed.xlsx"
    assert session.scalar(sa.select(sa.func.count()).select_from(UploadFile)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(ImportBatch)) == 0


def test_template_writes_the_template(runner, tmp_path):
    path = tmp_path / "template.xlsx"
    code, _output = run(runner, "template", path)
    assert code == 0
    headers = [c.value for c in next(s for s in load_workbook(path).worksheets if s.max_column >= len(HEADERS))[1]]
    assert any(h and "单位名称" in str(h) for h in headers)


@pytest.mark.parametrize("command", ["validate", "import"])
def test_the_commands_keep_what_is_loaded_out_of_the_cycle_collectors_way(runner, tmp_path, bus_company, command):
    # Modules and the app live until the process ends: frozen, the collector neither walks them at
    # every collection nor once more on the way out.
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1)])
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        assert run(runner, command, path)[0] == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
