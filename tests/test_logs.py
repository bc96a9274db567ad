"""Structured logs: one line per request with user, agency, address, duration and error id, as JSON
lines when LOG_FORMAT=json; nothing more personal (no query string, no user name)."""

from __future__ import annotations

import json
import logging

from fleet.base.logs import JsonFormatter, TextFormatter
from tests import factories


def test_one_line_per_request_with_who_where_and_how_long(app, client, session, caplog):
    agency = factories.agency(session, "濮阳市公安局")
    user = factories.user(session, "police", "agency", "濮阳市公安局")
    session.commit()
    factories.login(client, "police")
    # The login's own line may be kept already (when an app made earlier in the run set INFO).
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fleet.requests"):
        client.get("/vehicles/?q=LFV2A21K")
    (line,) = [r for r in caplog.records if getattr(r, "event", None) == "request"]
    assert (line.method, line.path, line.status) == ("GET", "/vehicles/", 200)
    assert (line.user, line.agency, line.address) == (user.id, agency.id, "127.0.0.1")
    assert line.duration_ms > 0 and line.error_id is None
    formatted = json.loads(JsonFormatter().format(line))
    assert formatted["path"] == "/vehicles/" and formatted["user"] == user.id and "LFV2A21K" not in json.dumps(formatted)
    assert "police" not in json.dumps(formatted)


def test_a_fault_logs_its_error_id_with_the_traceback(app, client, caplog):
    def broken():
        raise RuntimeError("secret internals")

    app.add_url_rule("/broken", "broken", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with caplog.at_level(logging.INFO):
        page = client.get("/broken")
    (request_line,) = [r for r in caplog.records if getattr(r, "event", None) == "request"]
    assert request_line.status == 500 and request_line.error_id in page.get_data(as_text=True)
    fault = [r for r in caplog.records if r.exc_info and request_line.error_id in r.getMessage()]
    assert fault and "secret internals" in JsonFormatter().format(fault[0])


def test_the_text_form_keeps_the_fields_on_the_line():
    record = logging.LogRecord("fleet.requests", logging.INFO, __file__, 1, "GET / 200", None, None)
    record.event, record.status, record.duration_ms = "request", 200, 3.2
    assert TextFormatter().format(record).endswith("event=request status=200 duration_ms=3.2")
