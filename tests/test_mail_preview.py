"""Reviewers preview each monthly message in the browser; nobody else can."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from tests import factories


@pytest.fixture
def recipients(session):
    police = factories.agency(session, "濮阳市公安局", contact_emails=["zhuangbei@pygaj.example.cn"])
    factories.agency(session, "濮阳市生态环境局", kind="党政机关", sector="其他")
    factories.user(session, "shenhe", "reviewer", email="shenhe@pyjtj.example.cn")
    factories.user(session, "gongan", "agency", police.name, email="zhuangbei@pygaj.example.cn")
    session.commit()
    return police


def test_reviewer_sees_every_planned_message_of_the_month(client, recipients):
    factories.login(client, "shenhe")
    page = client.get("/mail/preview?month=2026-10").get_data(as_text=True)
    assert "zhuangbei@pygaj.example.cn" in page and "shenhe@pyjtj.example.cn" in page
    assert "濮阳市生态环境局" in page  # listed as having no contact e-mail
    assert "未发送" in page


def test_reviewer_reads_each_part_of_a_message(client, recipients):
    factories.login(client, "shenhe")
    args = {"month": "2026-10", "kind": f"agency-{recipients.id}", "recipient": "zhuangbei@pygaj.example.cn"}
    html = client.get("/mail/preview/message", query_string={**args, "part": "html"})
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert "濮阳市公安局" in html.get_data(as_text=True)
    text = client.get("/mail/preview/message", query_string={**args, "part": "text"})
    assert text.mimetype == "text/plain" and "2026年10月" in text.get_data(as_text=True)
    xlsx = client.get("/mail/preview/message", query_string={**args, "part": "xlsx"})
    assert "总览" in load_workbook(io.BytesIO(xlsx.data)).sheetnames
    digest = client.get("/mail/preview/message", query_string={**args, "kind": "city", "recipient": "shenhe@pyjtj.example.cn"})
    assert "全市新能源汽车配备情况" in digest.get_data(as_text=True)


def test_unknown_message_or_month_is_refused_cleanly(client, recipients):
    factories.login(client, "shenhe")
    assert client.get("/mail/preview/message?month=2026-10&kind=city&recipient=nobody@x.cn").status_code == 404
    assert client.get("/mail/preview?month=2026-13").status_code == 400
    assert client.get("/mail/preview/message?month=2026-10&kind=city&recipient=shenhe@pyjtj.example.cn&part=pdf").status_code == 400


def test_agency_users_and_anonymous_users_cannot_preview(client, recipients):
    assert client.get("/mail/preview").status_code == 302
    factories.login(client, "gongan")
    assert client.get("/mail/preview").status_code == 403
    assert client.get(
        "/mail/preview/message",
        query_string={"month": "2026-10", "kind": f"agency-{recipients.id}", "recipient": "zhuangbei@pygaj.example.cn"},
    ).status_code == 403


def test_a_message_previewed_in_another_language_leaves_no_language_behind(client, recipients, session):
    """A request pins its language's catalogue when it renders; the preview renders an English message
    inside a Chinese reviewer's request: the next requests of the same thread stay Chinese."""
    factories.user(session, "review-en", "reviewer", email="review-en@pyjtj.example.cn", locale="en")
    session.commit()
    factories.login(client, "shenhe")
    args = {"month": "2026-10", "kind": "city", "recipient": "review-en@pyjtj.example.cn", "part": "html"}
    english = client.get("/mail/preview/message", query_string=args).get_data(as_text=True)
    assert "全市新能源汽车配备情况" not in english and "City" in english
    for _ in range(2):
        page = client.get("/mail/preview?month=2026-10").get_data(as_text=True)
        assert "未发送" in page and "Not sent" not in page
