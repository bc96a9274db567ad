"""Administration over HTTP: agencies (one by one and in bulk), users, API tokens, the rule pack."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from fleet.base.models import Agency, AuditEntry, Setting, User
from fleet.domain.identity import password_matches
from fleet.domain.users import user_for_token
from tests import factories

AGENCY = {"name": "濮阳市城市管理局", "kind": "党政机关", "sector": "城市管理", "county": "市直",
          "contact_emails": "a@puyang.gov.cn; b@puyang.gov.cn", "credit_code": ""}


@pytest.fixture
def admin_client(client, session):
    factories.agency(session, "濮阳市公安局")
    factories.user(session, "admin", "admin")
    factories.user(session, "police", "agency", "濮阳市公安局")
    session.commit()
    factories.login(client, "admin")
    return client


def test_admin_pages_open(admin_client):
    for url in ("/admin/", "/admin/audit", "/admin/audit?action=user.", "/admin/agencies", "/admin/agencies/new", "/admin/users", "/admin/users/new", "/admin/rule-pack"):
        assert admin_client.get(url).status_code == 200, url


def test_create_and_edit_an_agency(admin_client, session):
    assert admin_client.post("/admin/agencies/new", data=AGENCY).status_code == 302
    agency = session.scalar(sa.select(Agency).where(Agency.name == AGENCY["name"]))
    assert agency.contact_emails == ["a@puyang.gov.cn", "b@puyang.gov.cn"]
    edited = admin_client.post(f"/admin/agencies/{agency.id}", data={**AGENCY, "county": "华龙区"})
    assert edited.status_code == 302
    session.expire_all()
    assert session.get(Agency, agency.id).county == "华龙区"


def test_an_agencys_aliases_are_kept_and_one_naming_two_agencies_is_refused(admin_client, session):
    created = admin_client.post("/admin/agencies/new", data={**AGENCY, "aliases": "市城管局；城管局, 濮阳市城市管理执法局"})
    assert created.status_code == 302
    agency = session.scalar(sa.select(Agency).where(Agency.name == AGENCY["name"]))
    assert agency.aliases == ["市城管局", "城管局", "濮阳市城市管理执法局"]
    assert "市城管局；城管局；濮阳市城市管理执法局" in admin_client.get("/admin/agencies").get_data(as_text=True)
    assert 'value="市城管局; 城管局; 濮阳市城市管理执法局"' in admin_client.get(f"/admin/agencies/{agency.id}").get_data(as_text=True)

    # 公安局 is 濮阳市公安局 without the city: as an alias of another agency it would name two
    refused = admin_client.post(f"/admin/agencies/{agency.id}", data={**AGENCY, "aliases": "市城管局; 公安局"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "别名会同时指向两个单位" in html and "濮阳市公安局" in html and "濮阳市城市管理局" in html
    session.expire_all()
    assert session.get(Agency, agency.id).aliases == ["市城管局", "城管局", "濮阳市城市管理执法局"]

    # a new agency named as another's alias
    named = admin_client.post("/admin/agencies/new", data={**AGENCY, "name": "城管局", "aliases": ""})
    assert named.status_code == 400 and "单位名称会与其他单位的别名混淆" in named.get_data(as_text=True)


def test_agency_form_names_the_bad_field(admin_client):
    response = admin_client.post("/admin/agencies/new", data={**AGENCY, "contact_emails": "not-an-address", "credit_code": "123"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "“not-an-address”不是电子邮箱地址" in html and "<li>“123”不是有效的统一社会信用代码</li>" in html


def test_agency_form_says_what_is_wrong_once_in_the_users_language(admin_client):
    admin_client.post("/language", data={"locale": "en", "next": "/"})
    response = admin_client.post("/admin/agencies/new", data={**AGENCY, "credit_code": "91410900MA1234567X"})
    errors = re.findall(r'<ul class="field-errors"><li>(.*?)</li></ul>', response.get_data(as_text=True))
    assert errors == ["&#34;91410900MA1234567X&#34; is not a valid unified social credit code"]


def test_a_second_agency_with_the_same_name_is_refused(admin_client):
    response = admin_client.post("/admin/agencies/new", data={**AGENCY, "name": "濮阳市公安局"})
    assert response.status_code == 400 and "已有同名单位" in response.get_data(as_text=True)


def _registry(rows: list[list[str]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["单位名称", "单位类型", "行业", "所属县区", "联系邮箱"])
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_bulk_load_is_all_or_nothing_and_lists_row_errors(admin_client, session):
    bad = _registry([["清丰县公交公司", "国有企业", "公交", "清丰县", ""], ["某单位", "外星机构", "公交", "清丰县", ""]])
    response = admin_client.post("/admin/agencies/load", data={"file": (io.BytesIO(bad), "名录.xlsx")})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "外星机构" in html and ">3<" in html
    assert session.scalar(sa.select(Agency.id).where(Agency.name == "清丰县公交公司")) is None
    good = _registry([["清丰县公交公司", "国有企业", "公交", "清丰县", "bus@qf.gov.cn"]])
    response = admin_client.post("/admin/agencies/load", data={"file": (io.BytesIO(good), "名录.xlsx")})
    assert response.status_code == 302
    assert session.scalar(sa.select(Agency.id).where(Agency.name == "清丰县公交公司")) is not None


def test_bulk_load_accepts_csv_and_refuses_other_files(admin_client, session):
    csv = "单位名称,单位类型,行业,所属县区\n南乐县环卫处,事业单位,环卫,南乐县\n".encode()
    assert admin_client.post("/admin/agencies/load", data={"file": (io.BytesIO(csv), "r.csv")}).status_code == 302
    assert session.scalar(sa.select(Agency.id).where(Agency.name == "南乐县环卫处")) is not None
    admin_client.post("/admin/agencies/load", data={"file": (io.BytesIO(b"x"), "r.pdf")})
    assert "Excel、OpenDocument、CSV 或网页表格" in admin_client.get("/admin/agencies").get_data(as_text=True)


def test_create_users_of_each_role(admin_client, session):
    new = {"username": "clerk", "role": "agency", "agency": "濮阳市公安局", "email": "clerk@puyang.gov.cn",
           "locale": "zh", "password": "long-enough-1"}
    assert admin_client.post("/admin/users/new", data=new).status_code == 302
    assert admin_client.post("/admin/users/new", data={**new, "username": "rev", "role": "reviewer", "agency": ""}).status_code == 302
    refused = admin_client.post("/admin/users/new", data={**new, "username": "lost", "agency": ""})
    assert refused.status_code == 400 and "必须属于一个单位" in refused.get_data(as_text=True)
    taken = admin_client.post("/admin/users/new", data=new)
    assert taken.status_code == 400 and "already exists" in taken.get_data(as_text=True)
    assert session.scalar(sa.select(User.role).where(User.username == "rev")) == "reviewer"


def _police(session) -> User:
    session.expire_all()
    return session.scalar(sa.select(User).where(User.username == "police"))


def test_a_reset_sets_the_password_ends_sessions_lifts_lockouts_and_asks_for_a_change(admin_client, app, session):
    police_browser = app.test_client()
    assert factories.login(police_browser, "police").status_code == 302
    guesser = factories.client_at(app, "10.9.9.9")
    for _ in range(5):
        factories.login(guesser, "police", "Wrong-guess-1")
    assert factories.login(guesser, "police").status_code == 429

    police = _police(session)
    response = admin_client.post(f"/admin/users/{police.id}/password", data={"password": "Fresh-secret-2"})
    assert response.status_code == 302
    police = _police(session)
    assert password_matches(police, "Fresh-secret-2") and police.must_change_password
    # The session opened before the reset is over; the lockout is lifted; the new login must change it.
    assert police_browser.get("/account/password").status_code == 302
    assert factories.login(guesser, "police", "Fresh-secret-2").status_code == 302
    assert guesser.get("/vehicles/").headers["Location"].endswith("/account/password")
    entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.password_reset")).one()
    admin = session.scalar(sa.select(User).where(User.username == "admin"))
    assert (entry.user_id, entry.target_id, entry.address) == (admin.id, police.id, "127.0.0.1")


def test_a_reset_to_a_weak_password_is_refused(admin_client, session):
    police = _police(session)
    for weak in ("00000000", "aaaaaaaaaaaa", "Password123!", "police-Car-1"):
        response = admin_client.post(f"/admin/users/{police.id}/password", data={"password": weak}, follow_redirects=True)
        assert "密码" in response.get_data(as_text=True) and "已重置" not in response.get_data(as_text=True), weak
        assert password_matches(_police(session), factories.PASSWORD)


def test_deactivation_revokes_the_token_ends_sessions_and_reactivation_brings_back_only_the_login(admin_client, app, session):
    police_browser = app.test_client()
    assert factories.login(police_browser, "police").status_code == 302
    police = _police(session)
    page = admin_client.post(f"/admin/users/{police.id}/token")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    token = page.get_data(as_text=True).split('id="token">')[1].split("<")[0]
    assert user_for_token(session, token).id == police.id
    assert token not in admin_client.get("/admin/users").get_data(as_text=True)
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/acquisitions", headers=bearer).status_code == 200

    assert admin_client.post(f"/admin/users/{police.id}/active").status_code == 302
    police = _police(session)
    assert police.active is False
    assert police.api_token_hash is None  # revoked, not merely filtered out while inactive
    assert police_browser.get("/account/password").status_code == 302
    assert factories.login(app.test_client(), "police").status_code == 200  # refused: the form again

    assert admin_client.post(f"/admin/users/{police.id}/active").status_code == 302
    assert _police(session).active is True
    assert api.get("/api/v1/acquisitions", headers=bearer).status_code == 401
    assert factories.login(app.test_client(), "police").status_code == 302
    actions = [(e.action, e.user_id) for e in session.scalars(sa.select(AuditEntry).where(AuditEntry.action.startswith("user.")).order_by(AuditEntry.id))]
    admin_id = session.scalar(sa.select(User.id).where(User.username == "admin"))
    assert [a for a in actions if a[0] in ("user.token_issued", "user.deactivate", "user.activate")] == [
        ("user.token_issued", admin_id), ("user.deactivate", admin_id), ("user.activate", admin_id)
    ]
    log = admin_client.get("/admin/audit?action=user.").get_data(as_text=True)
    assert "user.deactivate" in log and "agencies.load" not in log


def test_an_admin_unlocks_an_account(admin_client, app, session):
    guesser = factories.client_at(app, "10.1.1.1")
    for _ in range(5):
        factories.login(guesser, "police", "Wrong-guess-1")
    assert factories.login(guesser, "police").status_code == 429
    police = _police(session)
    assert "登录已锁定" in admin_client.get("/admin/users").get_data(as_text=True)
    assert admin_client.post(f"/admin/users/{police.id}/unlock").status_code == 302
    assert factories.login(guesser, "police").status_code == 302
    assert session.scalar(sa.select(AuditEntry.action).where(AuditEntry.action == "user.unlock")) == "user.unlock"


def test_users_created_by_an_admin_name_the_admin_and_change_their_password_first(admin_client, app, session):
    new = {"username": "clerk", "role": "reviewer", "agency": "", "email": "", "locale": "zh", "password": "Initial-pass-7"}
    assert admin_client.post("/admin/users/new", data=new).status_code == 302
    admin_id = session.scalar(sa.select(User.id).where(User.username == "admin"))
    entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.add").order_by(AuditEntry.id.desc())).first()
    assert entry.user_id == admin_id and entry.address == "127.0.0.1"
    clerk = app.test_client()
    assert factories.login(clerk, "clerk", "Initial-pass-7").headers["Location"].endswith("/account/password")
    assert clerk.get("/").status_code == 302
    assert clerk.get("/api/v1/acquisitions").get_json()["error"]["code"] == "password_change_required"
    changed = clerk.post("/account/password", data={"current_password": "Initial-pass-7", "new_password": "Own-choice-2026", "confirm": "Own-choice-2026"})
    assert changed.status_code == 302
    assert clerk.get("/").status_code == 200


def test_admin_cannot_deactivate_itself(admin_client, session):
    me = session.scalar(sa.select(User).where(User.username == "admin"))
    response = admin_client.post(f"/admin/users/{me.id}/active", follow_redirects=True)
    assert response.status_code == 200 and "不能停用自己的账户" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(User, me.id).active


def test_the_rule_pack_choice_names_packs_in_the_users_language(client, session):
    factories.user(session, "admin-en", "admin", locale="en")
    session.commit()
    factories.login(client, "admin-en")
    page = client.get("/admin/rule-pack").get_data(as_text=True)
    assert "puyang-2024 — Puyang pollution and carbon reduction plan (items 11 and 12)" in page


def test_choose_the_active_rule_pack(admin_client, session):
    page = admin_client.get("/admin/rule-pack").get_data(as_text=True)
    assert "puyang-2024" in page and "example-province" in page
    # The demonstration pack is offered under its own heading, after the packs in force.
    assert page.index("puyang-2024 —") < page.index('label="示例规则包（仅供演示，不是现行政策）"') < page.index("example-province —")
    unconfirmed = admin_client.post("/admin/rule-pack", data={"pack": "example-province"})
    assert unconfirmed.status_code == 200 and "确认更换" in unconfirmed.get_data(as_text=True)
    assert session.get(Setting, "rule_pack") is None
    assert admin_client.post("/admin/rule-pack", data={"pack": "example-province", "confirm": "y"}).status_code == 302
    assert session.get(Setting, "rule_pack").value == "example-province"
    assert admin_client.post("/admin/rule-pack", data={"pack": "no-such-pack", "confirm": "y"}).status_code == 200
    session.expire_all()
    assert session.get(Setting, "rule_pack").value == "example-province"


def test_the_user_list_tells_a_state_from_the_action_that_changes_it(client, session):
    factories.user(session, "admin-en", "admin", locale="en")
    factories.user(session, "clerk", "reviewer")
    session.commit()
    factories.login(client, "admin-en")
    page = client.get("/admin/users").get_data(as_text=True)
    assert ">Active</span>" in page
    assert "Deactivate" in page and "Activate<" not in page.replace("Deactivate", "")


def test_names_with_line_breaks_are_refused_in_the_form_and_the_registry_file(admin_client, session):
    response = admin_client.post("/admin/agencies/new", data={**AGENCY, "name": "濮阳市\r\n城市管理局"})
    assert response.status_code == 400 and "控制字符" in response.get_data(as_text=True)
    bad = _registry([["清丰县\n公交公司", "国有企业", "公交", "清丰县", ""]])
    assert admin_client.post("/admin/agencies/load", data={"file": (io.BytesIO(bad), "名录.xlsx")}).status_code == 400
    assert session.scalar(sa.select(sa.func.count()).select_from(Agency).where(Agency.name.contains("\n"))) == 0


def test_the_audit_log_names_the_actor_and_reads_as_words(admin_client, session):
    """An agency made in the form is its own action by its admin, not a registry load by nobody; the
    details are words and values (no JSON with \\u escapes), and the action is named in words."""
    assert admin_client.post("/admin/agencies/new", data=AGENCY).status_code == 302
    entry = session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry.action == "agency.create"
    assert entry.user_id == session.scalar(sa.select(User.id).where(User.username == "admin"))
    session.add(AuditEntry(action="exemption.approve", user_id=entry.user_id, detail={"comment": "同意，夜班线路", "acquisition_id": 7}))
    session.commit()
    html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert "新建单位" in html and "批准豁免申请" in html
    assert "审核意见：同意，夜班线路" in html and "\\u" not in html
    row = html[html.index("新建单位") - 400 : html.index("新建单位")]
    assert "<td>admin</td>" in row
