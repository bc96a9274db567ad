"""The monthly mail tells an agency how many of its registered vehicles it never reported (issue 16),
sent through a real SMTP server (the fixtures of test_mail_summaries)."""

from __future__ import annotations

import datetime as dt

from tests.extract_factory import registration, write_extract
from tests.factories import vin
from tests.test_mail_summaries import city, inbox, send  # noqa: F401 (fixtures)


def _body(message) -> str:
    return message.get_body(("plain",)).get_content()


def test_an_agency_is_told_how_many_registrations_it_did_not_report(runner, inbox, city, tmp_path):
    rows = [
        registration(vin(880001), plate="J88001", owner="濮阳市公安局", registered_on=dt.date(2026, 9, 3)),
        registration(vin(880002), plate="J88002", owner="濮阳市 公安局", registered_on=dt.date(2026, 9, 20)),
    ]
    result = runner.invoke(args=["registrations", "load", str(write_extract(tmp_path / "september.xlsx", rows)), "--json"])
    assert result.exit_code == 0, result.output
    code, _report = send(runner)
    assert code == 0
    police = _body(inbox.to("zhuangbei@pygaj.example.cn")[0])
    assert "本单位有 2 辆已登记的车辆尚未报送" in police
    assert "已登记的车辆尚未报送" not in _body(inbox.to("jiwu@pygj.example.cn")[0])
    english = _body(inbox.to("Li.Wei@pygaj.example.cn")[0])
    assert "registered vehicles not reported: 2" in english.lower()
