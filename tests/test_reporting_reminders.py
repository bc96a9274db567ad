"""Reporting reminders end to end: `reminders send` against a real SMTP server (aiosmtpd), once and only once."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from factories import agency, user
from fleet.base.models import User
from fleet.base.periods import Period
from fleet.domain import reporting
from test_mail_summaries import Inbox, smtp_server

NOVEMBER = Period.month(2026, 11)  # due 2026-12-10


@pytest.fixture
def inbox(app):
    with smtp_server() as (inbox, port):
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, MAIL_FROM="fleet@pyjtj.example.cn")
        yield inbox


@pytest.fixture
def city(session):
    """Three agencies with contacts (one English), one without; a reviewer."""
    made = {}
    for name, emails in (
        ("濮阳市公共交通有限公司", ["jiwu@pygj.example.cn"]),
        ("濮阳市公安局", ["zhuangbei@pygaj.example.cn", "li.wei@pygaj.example.cn"]),
        ("濮阳市生态环境局", ["bgs@pysthj.example.cn"]),
        ("濮阳市城市管理局", []),
    ):
        made[name] = agency(session, name, contact_emails=emails)
        made[name].created_at = dt.datetime(2024, 1, 1)
    user(session, "liwei", "agency", "濮阳市公安局", email="li.wei@pygaj.example.cn", locale="en")
    user(session, "reviewer", role="reviewer", email="shenhe@pyjtj.example.cn")
    session.commit()
    return made


def send(runner, date: str, *options: str) -> tuple[int, dict]:
    result = runner.invoke(args=["reminders", "send", "--date", date, "--json", *options])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, json.loads(result.stdout)


def test_due_missed_and_returned_reminders_arrive_once(runner, session, inbox: Inbox, city):
    reviewer = session.query(User).filter_by(username="reviewer").one()
    # The police report their November (a zero report) before the reminders go out.
    reporting.submit(session, city["濮阳市公安局"], NOVEMBER, user=reviewer, nil=True, today=dt.date(2026, 12, 2), due_day=10)
    session.commit()

    # Too early: more than 3 days before the due date, nothing is due.
    code, report = send(runner, "2026-12-06")
    assert code == 0 and report["sent"] == [] and inbox.messages == []

    # 3 days before: the two agencies with contacts that still owe November.
    code, dry = send(runner, "2026-12-07", "--dry-run")
    assert code == 0 and {e["recipient"] for e in dry["would_send"]} == {"jiwu@pygj.example.cn", "bgs@pysthj.example.cn"}
    assert inbox.messages == []
    code, report = send(runner, "2026-12-07")
    assert code == 0
    assert sorted(m["To"] for m in inbox.messages) == ["bgs@pysthj.example.cn", "jiwu@pygj.example.cn"]
    [bus] = inbox.to("jiwu@pygj.example.cn")
    assert "2026-12-10" in bus["Subject"] and "濮阳市公共交通有限公司" in bus["Subject"]
    assert "零报告" in bus.get_body(("plain",)).get_content()
    assert bus.get_body(("html",)) is not None

    # Never twice: the next days before the due date send nothing more.
    for date in ("2026-12-08", "2026-12-10"):
        code, report = send(runner, date)
        assert code == 0 and report["sent"] == []
        assert {e["reason"] for e in report["skipped"]} == {"already_sent"}
    assert len(inbox.messages) == 2

    # The bus company submits on the due date (before the reviewer returns it); ecology misses it.
    bus_user = user(session, "bus", agency_name="濮阳市公共交通有限公司")
    from factories import acquisition

    acquisition(session, city["濮阳市公共交通有限公司"], category="公交车", power="纯电动", acquired_on=dt.date(2026, 11, 4), reported_on=dt.date(2026, 11, 5))
    reporting.submit(session, city["濮阳市公共交通有限公司"], NOVEMBER, user=bus_user, today=dt.date(2026, 12, 10), due_day=10)
    reporting.return_report(
        session, city["濮阳市公共交通有限公司"], NOVEMBER, user=reviewer, comment="请补充车辆照片说明", today=dt.date(2026, 12, 10), due_day=10
    )
    session.commit()

    code, report = send(runner, "2026-12-11")
    assert code == 0
    sent = {(e["recipient"], e["kind"]) for e in report["sent"]}
    assert sent == {
        ("bgs@pysthj.example.cn", "missed"),
        ("jiwu@pygj.example.cn", "returned"),
        ("jiwu@pygj.example.cn", "missed"),
    }
    returned = [m for m in inbox.to("jiwu@pygj.example.cn") if "退回" in m["Subject"]]
    assert len(returned) == 1 and "请补充车辆照片说明" in returned[0].get_body(("plain",)).get_content()
    total = len(inbox.messages)
    code, report = send(runner, "2026-12-12")
    assert code == 0 and report["sent"] == [] and len(inbox.messages) == total

    # A second return of the same month is told again, once.
    reporting.submit(session, city["濮阳市公共交通有限公司"], NOVEMBER, user=bus_user, today=dt.date(2026, 12, 12), due_day=10)
    reporting.return_report(session, city["濮阳市公共交通有限公司"], NOVEMBER, user=reviewer, comment="照片仍缺", today=dt.date(2026, 12, 12), due_day=10)
    session.commit()
    code, report = send(runner, "2026-12-13")
    assert [(e["recipient"], e["kind"]) for e in report["sent"]] == [("jiwu@pygj.example.cn", "returned")]
    assert inbox.to("zhuangbei@pygaj.example.cn") == []  # the police reported


def test_a_refused_recipient_is_retried_next_run(runner, session, inbox: Inbox, city):
    inbox.refuse.add("jiwu@pygj.example.cn")
    code, report = send(runner, "2026-12-08")
    assert code == 1 and [e["recipient"] for e in report["failed"]] == ["jiwu@pygj.example.cn"]
    inbox.refuse.clear()
    code, report = send(runner, "2026-12-09")
    assert code == 0 and [e["recipient"] for e in report["sent"]] == ["jiwu@pygj.example.cn"]


def test_english_contacts_get_english_reminders(runner, session, inbox: Inbox, city):
    reporting_states = reporting.month_states(session, NOVEMBER, today=dt.date(2026, 12, 8), due_day=10)
    assert {s.state for s in reporting_states} == {"open"}
    send(runner, "2026-12-08")
    [english] = inbox.to("li.wei@pygaj.example.cn")
    assert "Reminder" in english["Subject"] and english["Content-Language"] == "en"
