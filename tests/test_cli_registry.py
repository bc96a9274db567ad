"""`agencies load` and `users add`: the registry and accounts from the command line."""

import json

import sqlalchemy as sa
from openpyxl import Workbook

from fleet.base.models import Agency, User

HEADER = ["单位名称", "单位类型", "行业", "所属县区", "联系邮箱"]


def _xlsx(path, rows, header=HEADER):
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def _agencies(session):
    return {a.name: a for a in session.scalars(sa.select(Agency))}


def test_load_inserts_then_updates_by_name(runner, session, tmp_path):
    path = _xlsx(
        tmp_path / "registry.xlsx",
        [
            ["濮阳市公安局", "党政机关", "公安", "市直", "a@pygaj.cn; b@pygaj.cn"],
            ["濮阳市公共交通有限公司", "国企", "公交", "市直", "jiwu@pygj.cn，anquan@pygj.cn"],
            ["华龙区城市管理局", "党政机关", "城管", "华龙", None],
        ],
    )
    result = runner.invoke(args=["agencies", "load", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 added" in result.output
    agencies = _agencies(session)
    assert agencies["濮阳市公共交通有限公司"].kind == "国有企业"
    assert agencies["濮阳市公共交通有限公司"].contact_emails == ["jiwu@pygj.cn", "anquan@pygj.cn"]
    assert agencies["华龙区城市管理局"].sector == "城市管理" and agencies["华龙区城市管理局"].county == "华龙区"

    _xlsx(path, [["濮阳市公安局", "党政机关", "公安", "市直", "new@pygaj.cn"]])
    result = runner.invoke(args=["agencies", "load", str(path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["updated"] == 1
    session.expire_all()
    assert _agencies(session)["濮阳市公安局"].contact_emails == ["new@pygaj.cn"]


def test_load_accepts_csv(runner, session, tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text(",".join(HEADER) + "\n濮阳市邮政分公司,国有企业,邮政,市直,post@py.cn\n", encoding="utf-8-sig")
    result = runner.invoke(args=["agencies", "load", str(path)])
    assert result.exit_code == 0, result.output
    assert "濮阳市邮政分公司" in _agencies(session)


def test_bad_rows_are_named_and_nothing_is_written(runner, session, tmp_path):
    path = _xlsx(
        tmp_path / "bad.xlsx",
        [
            ["濮阳市公安局", "党政机关", "公安", "市直", "a@pygaj.cn"],
            ["濮阳市某某局", "外星机构", "公安", "市直", "x@py.cn"],
            ["", "党政机关", "公安", "火星县", "not-an-email"],
        ],
    )
    result = runner.invoke(args=["agencies", "load", str(path)])
    assert result.exit_code == 1
    assert "row 3, kind" in result.output and "外星机构" in result.output
    assert "row 4, name" in result.output and "row 4, county" in result.output and "row 4, contact_emails" in result.output
    assert "nothing was written" in result.output
    assert _agencies(session) == {}


def test_unreadable_file_is_a_clear_error(runner, tmp_path):
    path = tmp_path / "registry.xlsx"
    path.write_bytes(b"\x00\x01 not a workbook")
    result = runner.invoke(args=["agencies", "load", str(path)])
    assert result.exit_code == 2
    assert "registry.xlsx" in result.output and "不是可读取的表格" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(args=["agencies", "load", "--json", str(path)])
    assert result.exit_code == 2
    assert json.loads(result.output)["code"] == "not_xlsx"


def test_missing_column_is_a_clear_error(runner, tmp_path):
    path = _xlsx(tmp_path / "registry.xlsx", [["濮阳市公安局", "党政机关"]], header=["单位名称", "单位类型"])
    result = runner.invoke(args=["agencies", "load", str(path)])
    assert result.exit_code == 2
    assert "行业" in result.output and "所属县区" in result.output


def test_users_add(runner, session, tmp_path):
    runner.invoke(args=["agencies", "load", str(_xlsx(tmp_path / "r.xlsx", [["濮阳市公安局", "党政机关", "公安", "市直", ""]]))])
    result = runner.invoke(args=["users", "add", "gongan", "--role", "agency", "--agency", "濮阳市公安局", "--password", "s3cret-pass", "--email", "g@py.cn"])
    assert result.exit_code == 0, result.output
    user = session.scalar(sa.select(User).where(User.username == "gongan"))
    assert user.role == "agency" and user.agency.name == "濮阳市公安局" and user.email == "g@py.cn"
    assert user.password_hash != "s3cret-pass"

    result = runner.invoke(args=["users", "add", "gongan", "--role", "reviewer", "--password", "Another-pass-1"])
    assert result.exit_code == 1 and "already exists" in result.output
    result = runner.invoke(args=["users", "add", "x", "--role", "agency", "--agency", "不存在的单位", "--password", "Long-enough-1"])
    assert result.exit_code == 1 and "not registered" in result.output
    result = runner.invoke(args=["users", "add", "y", "--role", "reviewer", "--password", "short"])
    assert result.exit_code == 1 and "至少需要 10 个字符" in result.output
    result = runner.invoke(args=["users", "add", "z", "--role", "boss", "--password", "long-enough"])
    assert result.exit_code == 2


ALIAS_HEADER = [*HEADER, "别名"]


def test_load_keeps_aliases_separated_by_semicolons_or_commas(runner, session, tmp_path):
    path = _xlsx(
        tmp_path / "registry.xlsx",
        [
            ["濮阳市公安局", "党政机关", "公安", "市直", "", "市公安局"],
            ["濮阳市公共交通有限公司", "国有企业", "公交", "市直", "", "公交公司；市公交公司, 濮阳公交，公交公司、濮阳市公共交通有限公司"],
            ["濮阳市生态环境局", "党政机关", "其他", "市直", "", "濮阳市环境保护局;"],
        ],
        header=ALIAS_HEADER,
    )
    result = runner.invoke(args=["agencies", "load", str(path)])
    assert result.exit_code == 0, result.output
    agencies = _agencies(session)
    assert agencies["濮阳市公安局"].aliases == ["市公安局"]
    # each alias once, and not the agency's own name
    assert agencies["濮阳市公共交通有限公司"].aliases == ["公交公司", "市公交公司", "濮阳公交"]
    assert agencies["濮阳市生态环境局"].aliases == ["濮阳市环境保护局"]

    # A file without the column leaves the aliases as they are; a blank cell clears them.
    _xlsx(path, [["濮阳市公安局", "党政机关", "公安", "市直", "new@pygaj.cn"]])
    assert runner.invoke(args=["agencies", "load", str(path)]).exit_code == 0
    session.expire_all()
    assert _agencies(session)["濮阳市公安局"].aliases == ["市公安局"]
    _xlsx(path, [["濮阳市公安局", "党政机关", "公安", "市直", "", ""]], header=ALIAS_HEADER)
    assert runner.invoke(args=["agencies", "load", str(path)]).exit_code == 0
    session.expire_all()
    assert _agencies(session)["濮阳市公安局"].aliases == []


def test_an_alias_that_would_name_two_agencies_is_refused_naming_both(runner, session, tmp_path):
    path = _xlsx(
        tmp_path / "registry.xlsx",
        [
            ["濮阳市公共交通有限公司", "国有企业", "公交", "市直", "", "公交公司"],
            ["濮阳市公交集团有限公司", "国有企业", "公交", "市直", "", "市公交公司"],  # 公交公司 once 市 is dropped
        ],
        header=ALIAS_HEADER,
    )
    result = runner.invoke(args=["agencies", "load", str(path), "--json"])
    assert result.exit_code == 1
    errors = json.loads(result.output)["errors"]
    assert {(e["row"], e["column"]) for e in errors} == {(2, "aliases"), (3, "aliases")}
    assert all("濮阳市公共交通有限公司" in e["message"] and "濮阳市公交集团有限公司" in e["message"] for e in errors)
    assert _agencies(session) == {}


def test_an_alias_is_checked_against_the_registry_already_loaded(runner, session, tmp_path):
    first = _xlsx(tmp_path / "first.xlsx", [["濮阳市公安局", "党政机关", "公安", "市直", "", "市公安局"]], header=ALIAS_HEADER)
    assert runner.invoke(args=["agencies", "load", str(first)]).exit_code == 0
    # another agency's alias that is the registered agency's name without the city
    second = _xlsx(tmp_path / "second.xlsx", [["濮阳市公安局交通警察支队", "党政机关", "公安", "市直", "", "公安局"]], header=ALIAS_HEADER)
    result = runner.invoke(args=["agencies", "load", str(second)])
    assert result.exit_code == 1
    assert "row 2, aliases" in result.output and "濮阳市公安局" in result.output and "濮阳市公安局交通警察支队" in result.output
    # a new agency named as a registered agency's alias
    third = _xlsx(tmp_path / "third.xlsx", [["市公安局", "党政机关", "公安", "市直", ""]])
    result = runner.invoke(args=["agencies", "load", str(third)])
    assert result.exit_code == 1 and "row 2, name" in result.output and "'市公安局'" in result.output
    assert set(_agencies(session)) == {"濮阳市公安局"}


def test_every_bad_cell_is_named_with_its_code_and_nothing_is_written(runner, session, tmp_path):
    path = _xlsx(
        tmp_path / "registry.xlsx",
        [
            ["濮阳市公安局", "党政机关", "公安", "市直", "a@pygaj.cn"],
            ["濮阳市公安局\n交警支队", "党政机关", "公安", "市直", ""],
            ["濮阳市公安局", "党政机关", "公安", "市直", "b@pygaj.cn; 不是邮箱"],
            ["濮阳市城管局", "", "城管", "华龙区", ""],
        ],
        header=[*HEADER, "统一社会信用代码"],
    )
    result = runner.invoke(args=["agencies", "load", "--json", str(path)])
    assert result.exit_code == 1
    errors = json.loads(result.output)["errors"]
    assert [(e["row"], e["column"], e["code"]) for e in errors] == [
        (3, "name", "control_characters"),
        (4, "name", "duplicate_name"),
        (4, "contact_emails", "email_invalid"),
        (5, "kind", "required"),
    ]
    assert errors[1]["message"] == "与第 2 行重复" and "不是邮箱" in errors[2]["message"]
    assert _agencies(session) == {}
