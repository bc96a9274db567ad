"""Loading registration extracts (issue 16): real xlsx files as the registration system exports them,
`flask registrations load PATH [--json]` with exit codes and JSON exactly as the contract says."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from tests.extract_factory import registration, write_extract
from tests.factories import agency, vin

from fleet.base.models import Registration, RegistrationExtract, UploadFile

POLICE = "濮阳市公安局"
POLICE_CODE = "11410900MB12345676"
BUSES = "濮阳市公共交通有限公司"
LOAD_KEYS = ["file", "rows", "loaded", "period", "owners", "errors", "warnings"]


@pytest.fixture
def registry(session):
    agency(session, POLICE, credit_code=POLICE_CODE)
    agency(session, BUSES, kind="国有企业", sector="公交", county="华龙区")
    session.commit()


def load(runner, path, *more):
    result = runner.invoke(args=["registrations", "load", str(path), "--json", *more])
    return result.exit_code, json.loads(result.output)


def stored(session) -> dict[str, Registration]:
    session.expire_all()
    return {r.vin: r for r in session.scalars(sa.select(Registration))}


def test_an_extract_with_abbreviations_codes_and_a_title_row_loads(runner, session, tmp_path, registry):
    rows = [
        # Matched by credit code although the name is written differently.
        registration(vin(1), owner="濮阳市公安局交警支队", owner_id=POLICE_CODE, registered_on=dt.date(2026, 1, 5)),
        # Matched by name: 有限责任公司 for 有限公司, spaces (full-width too).
        registration(vin(2), owner="濮阳市 公共交通有限责任公司", plate_kind="51", plate="J12346D", vehicle_type="K11",
                     usage="C", fuel="C", emission_standard=None, registered_on=dt.date(2026, 1, 20)),
        registration(vin(3), owner="濮阳市\u3000公共交通有限公司", plate_kind="52", plate="JF12345", fuel="O",
                     registered_on=dt.date(2026, 2, 3)),
        # A private buyer: no agency, waits for a reviewer; the person's identity number is not kept.
        registration(vin(4), owner="张三", owner_id="410902199001011234", plate="J88888", fuel="O",
                     registered_on=dt.date(2026, 2, 10)),
    ]
    code, payload = load(runner, write_extract(tmp_path / "extract.xlsx", rows))
    assert code == 0, payload
    assert list(payload) == LOAD_KEYS
    assert payload["file"] == "extract.xlsx"
    assert (payload["rows"], payload["loaded"]) == (4, 4)
    assert payload["period"] == {"first": "2026-01-05", "last": "2026-02-10"}
    # Owners are counted once however they are spelt: the bus company's two spellings are one owner.
    assert payload["owners"] == {"matched": 2, "unmatched": 1}
    assert payload["errors"] == [] and payload["warnings"] == []

    registrations = stored(session)
    police_id = session.scalar(sa.select(sa.text("id from agencies where name = :n")), {"n": POLICE})
    assert registrations[vin(1)].agency_id == police_id and registrations[vin(1)].owner_code == POLICE_CODE
    assert registrations[vin(2)].agency_id == registrations[vin(3)].agency_id != police_id
    assert registrations[vin(4)].agency_id is None and registrations[vin(4)].owner_code is None
    # The province character is the city's (豫J); the fuel code O is settled by the plate kind.
    assert registrations[vin(1)].plate == "豫J12345"
    assert registrations[vin(2)].plate == "豫J12346D" and registrations[vin(2)].power == "纯电动"
    assert registrations[vin(3)].power == "插电式混合动力"
    assert registrations[vin(4)].power == "油电混合"
    assert registrations[vin(1)].power == "汽油" and registrations[vin(1)].registered_on == dt.date(2026, 1, 5)
    extract = session.scalars(sa.select(RegistrationExtract)).one()
    assert (extract.first, extract.last, extract.rows, extract.loaded) == (dt.date(2026, 1, 5), dt.date(2026, 2, 10), 4, 4)
    assert session.get(UploadFile, extract.sha256) is not None  # the original is kept


def test_chinese_headers_and_names_load_the_same_registrations(runner, session, tmp_path, registry):
    rows = [
        registration(vin(11), plate_kind="52", plate="JD00011", fuel="C", usage="H", owner_id=POLICE_CODE),
        registration(vin(12), plate_kind="02", fuel="O", owner="濮阳市公共交通有限公司", usage="A", vehicle_type="K31"),
    ]
    code, payload = load(runner, write_extract(tmp_path / "names.xlsx", rows, abbreviations=False, names=True, title=False))
    assert code == 0, payload
    registrations = stored(session)
    assert (registrations[vin(11)].plate_kind, registrations[vin(11)].usage, registrations[vin(11)].fuel) == ("52", "H", "C")
    assert registrations[vin(11)].power == "纯电动" and registrations[vin(11)].plate == "豫JD00011"
    assert (registrations[vin(12)].vehicle_type, registrations[vin(12)].power, registrations[vin(12)].status) == ("K31", "油电混合", "A")


def test_loading_the_same_registrations_again_changes_nothing_and_a_later_extract_adds(runner, session, tmp_path, registry):
    first = write_extract(tmp_path / "january.xlsx", [registration(vin(21)), registration(vin(22), plate="J22222")])
    assert load(runner, first)[1]["loaded"] == 2
    code, again = load(runner, first)
    assert code == 0 and again["loaded"] == 0 and again["rows"] == 2
    # The same registrations in another file (another layout) are the same registrations.
    renamed = write_extract(tmp_path / "copy.xlsx", [registration(vin(22), plate="J22222"), registration(vin(21))], names=True)
    assert load(runner, renamed)[1]["loaded"] == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(RegistrationExtract)) == 1
    later = write_extract(tmp_path / "february.xlsx", [
        registration(vin(22), plate="J22222"),
        registration(vin(23), registered_on=dt.date(2026, 2, 14), plate="J33333"),
    ])
    code, payload = load(runner, later)
    assert code == 0 and payload["loaded"] == 1
    assert sorted(stored(session)) == sorted([vin(21), vin(22), vin(23)])
    periods = session.execute(sa.select(RegistrationExtract.first, RegistrationExtract.last).order_by(RegistrationExtract.id)).all()
    assert periods == [(dt.date(2026, 1, 5), dt.date(2026, 1, 5)), (dt.date(2026, 1, 5), dt.date(2026, 2, 14))]


def test_bad_rows_are_named_by_sheet_row_and_column_and_nothing_is_loaded(runner, session, tmp_path, registry):
    rows = [
        registration(vin(31)),
        registration("LZYBEV0A4R000000I", usage="Q9", fuel="W", registered_on="2026-13-01"),
        registration(vin(33), plate="J1234", status="Z", owner=None),
    ]
    code, payload = load(runner, write_extract(tmp_path / "bad.xlsx", rows))
    assert code == 1
    assert payload["loaded"] == 0
    errors = {(e["sheet"], e["row"], e["column"], e["code"]) for e in payload["errors"]}
    sheet = "机动车登记信息"
    # Row 1 is the title, row 2 the header: the second registration is on Excel row 4.
    assert errors == {
        (sheet, 4, "vin", "vin_format"),
        (sheet, 4, "usage", "unknown_usage"),
        (sheet, 4, "fuel", "unknown_fuel"),
        (sheet, 4, "registered_on", "date_invalid"),
        (sheet, 5, "owner", "required"),
    }
    bad_date = next(e for e in payload["errors"] if e["code"] == "date_invalid")
    assert bad_date["header"] == "CCDJRQ" and bad_date["value"] == "2026-13-01" and "第 4 行" in bad_date["message"]
    warnings = {(e["row"], e["column"], e["code"]) for e in payload["warnings"]}
    assert warnings == {(5, "plate", "plate_format"), (5, "status", "unknown_status")}
    assert stored(session) == {}
    assert session.scalar(sa.select(sa.func.count()).select_from(RegistrationExtract)) == 0


def test_a_missing_column_is_an_error_and_an_unusable_file_exits_2(runner, session, tmp_path, registry):
    rows = [registration(vin(41))]
    path = write_extract(tmp_path / "no-fuel.xlsx", rows)
    from openpyxl import load_workbook

    book = load_workbook(path)
    book.active.delete_cols(8)  # RLZL
    book.save(path)
    code, payload = load(runner, path)
    assert code == 1 and [e["code"] for e in payload["errors"]] == ["missing_column"]
    (tmp_path / "empty.xlsx").write_bytes(b"")
    result = runner.invoke(args=["registrations", "load", str(tmp_path / "empty.xlsx"), "--json"])
    assert result.exit_code == 2 and set(json.loads(result.output)) == {"file", "error"}
    result = runner.invoke(args=["registrations", "load", str(tmp_path / "absent.xlsx"), "--json"])
    assert result.exit_code == 2 and json.loads(result.output)["error"]["code"] == "not_found"


def test_without_json_the_command_prints_findings_and_a_summary(runner, tmp_path, registry):
    result = runner.invoke(args=["registrations", "load", str(write_extract(tmp_path / "e.xlsx", [registration(vin(51))]))])
    assert result.exit_code == 0
    assert "新载入 1 条" in result.output


def test_every_extract_code_is_documented():
    from pathlib import Path

    from fleet.domain.registrations.load import CODES

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert [code for code in CODES if f"| `{code}` |" not in readme] == []


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_a_csv_extract_loads_as_its_xlsx_twin(runner, session, tmp_path, registry, encoding):
    from tests.extract_factory import write_extract_csv

    rows = [
        registration(vin(61), owner_id=POLICE_CODE, registered_on=dt.date(2026, 3, 5)),
        registration(vin(62), owner="濮阳市公共交通有限责任公司", plate_kind="51", plate="J00062D", usage="C", fuel="C",
                     vehicle_type="K11", registered_on=dt.date(2026, 3, 9)),
    ]
    code, payload = load(runner, write_extract_csv(tmp_path / "extract.csv", rows, encoding=encoding, names=True))
    assert code == 0, payload
    assert (payload["rows"], payload["loaded"]) == (2, 2)
    assert payload["period"] == {"first": "2026-03-05", "last": "2026-03-09"}
    # GBK read as anything else would garble the owner and match no agency.
    assert payload["owners"] == {"matched": 2, "unmatched": 0}
    registrations = stored(session)
    assert registrations[vin(62)].plate == "豫J00062D" and registrations[vin(62)].usage == "C"
    assert registrations[vin(62)].power == "纯电动" and registrations[vin(61)].power == "汽油"
    bad = write_extract_csv(tmp_path / "bad.csv", [registration(vin(63), fuel="W")], encoding=encoding)
    code, payload = load(runner, bad)
    assert code == 1 and [(e["sheet"], e["row"], e["column"]) for e in payload["errors"]] == [("bad.csv", 3, "fuel")]


def test_owners_go_through_the_one_agency_name_matcher(runner, session, tmp_path):
    from fleet.domain.registrations.owners import unmatched_owners

    agency(session, POLICE, credit_code=POLICE_CODE)
    agency(session, "濮阳市城市管理局", sector="城市管理", aliases=["市城管局"])
    session.commit()
    rows = [
        registration(vin(71), owner="市城管局"),  # an alias
        registration(vin(72), owner="公安局", plate="J00072"),  # the city prefix dropped
        registration(vin(73), owner="濮阳市公安局交警支队", plate="J00073"),  # a sub-unit: never its parent silently
    ]
    code, payload = load(runner, write_extract(tmp_path / "names.xlsx", rows))
    assert code == 0 and payload["owners"] == {"matched": 2, "unmatched": 1}
    registrations = stored(session)
    city_id = session.scalar(sa.select(sa.text("id from agencies where name = '濮阳市城市管理局'")))
    police_id = session.scalar(sa.select(sa.text("id from agencies where name = :n")), {"n": POLICE})
    assert (registrations[vin(71)].agency_id, registrations[vin(72)].agency_id) == (city_id, police_id)
    assert registrations[vin(73)].agency_id is None
    [waiting] = unmatched_owners(session)
    assert (waiting.name, waiting.suggestions[0]) == ("濮阳市公安局交警支队", POLICE)
