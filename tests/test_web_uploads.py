"""The upload flow over HTTP: template, upload, preview with row-level findings, annotated workbook,
commit, history, the original kept byte for byte, and what another agency or a bad file gets."""

from __future__ import annotations

import io
import re
import os
import time

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from xlsx_factory import acquisition, write_upload

from fleet.base.models import Acquisition, ImportBatch, UploadFile
from tests.factories import agency, login, user

BUS_COMPANY = "濮阳市公共交通有限公司"
POLICE = "濮阳市公安局"


@pytest.fixture
def people(session):
    """A bus company with its fleet manager, the police with theirs, and a reviewer."""
    agency(session, BUS_COMPANY, kind="国有企业", sector="公交", county="华龙区")
    agency(session, POLICE, kind="党政机关", sector="公安", county="市直")
    user(session, "bus", agency_name=BUS_COMPANY)
    user(session, "police", agency_name=POLICE)
    user(session, "reviewer", role="reviewer")
    user(session, "admin", role="admin")
    session.commit()


def upload(client, path, **fields):
    data = {"file": (io.BytesIO(path.read_bytes()), path.name), **fields}
    return client.post("/uploads/", data=data, content_type="multipart/form-data")


def batch_of(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def count(session, model) -> int:
    session.rollback()  # see what the requests committed
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def agency_id(session, name: str) -> int:
    return agency(session, name).id


def test_the_preview_names_sheet_row_and_column_of_each_error(client, session, people, tmp_path):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2, county="火星"), acquisition(3)])
    login(client, "bus")
    page = client.get(f"/uploads/{batch_of(upload(client, path))}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-code="unknown_county"' in html
    row = html.split('data-code="unknown_county"')[1].split("</tr>")[0]
    assert "车辆购置" in row and ">3<" in row and "所属县区" in row and "火星" in row
    assert "发现 1 个错误" in html
    assert "确认导入" not in html
    assert count(session, Acquisition) == 0


def test_the_annotated_workbook_opens_with_the_bad_cell_flagged(client, session, people, tmp_path):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2, county="火星")])
    login(client, "bus")
    batch_id = batch_of(upload(client, path))
    response = client.get(f"/uploads/{batch_id}/annotated")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    workbook = load_workbook(io.BytesIO(response.data))
    sheet = workbook["车辆购置"]
    flagged = [c for row in sheet.iter_rows() for c in row if c.comment is not None]
    assert [(c.row, sheet.cell(row=1, column=c.column).value) for c in flagged] == [(3, "所属县区")]
    assert "火星" in flagged[0].comment.text


def test_a_clean_file_is_committed_only_when_confirmed(client, session, people, tmp_path):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2)])
    login(client, "bus")
    batch_id = batch_of(upload(client, path))
    page = client.get(f"/uploads/{batch_id}").get_data(as_text=True)
    assert "核查通过" in page and "确认导入" in page
    assert count(session, Acquisition) == 0

    assert client.post(f"/uploads/{batch_id}/commit").status_code == 302
    assert count(session, Acquisition) == 2
    batch = session.get(ImportBatch, batch_id)
    assert (batch.status, batch.inserted, batch.agency_id) == ("committed", 2, agency_id(session, BUS_COMPANY))
    assert "新增 2 辆" in client.get(f"/uploads/{batch_id}").get_data(as_text=True)

    again = client.post(f"/uploads/{batch_id}/commit", follow_redirects=True)
    assert "只能导入一次" in again.get_data(as_text=True)
    assert count(session, Acquisition) == 2


def test_an_invalid_batch_cannot_be_committed(client, session, people, tmp_path):
    path = write_upload(tmp_path / "bad.xlsx", [acquisition(1, vin="LZYBEV0A0R000000X")])
    login(client, "bus")
    batch_id = batch_of(upload(client, path))
    client.post(f"/uploads/{batch_id}/commit")
    assert session.get(ImportBatch, batch_id).status == "invalid"
    assert count(session, Acquisition) == 0


def test_history_lists_uploads_with_status_and_the_original_comes_back_unchanged(client, session, people, tmp_path):
    good = write_upload(tmp_path / "good.xlsx", [acquisition(1)])
    bad = write_upload(tmp_path / "bad.xlsx", [acquisition(2, county="火星")])
    login(client, "bus")
    first, second = batch_of(upload(client, good)), batch_of(upload(client, bad))
    client.post(f"/uploads/{first}/commit")

    history = client.get("/uploads/").get_data(as_text=True)
    assert history.index(f"#{second}") < history.index(f"#{first}")  # newest first
    assert "已导入" in history and "有错误" in history

    original = client.get(f"/uploads/{second}/original")
    assert original.status_code == 200
    assert original.data == bad.read_bytes()
    assert "bad.xlsx" in original.headers["Content-Disposition"]


def test_another_agencys_batch_is_not_found(client, session, people, tmp_path):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1)])
    login(client, "bus")
    batch_id = batch_of(upload(client, path))
    client.post("/logout")

    login(client, "police")
    for url in ("", "/status", "/annotated", "/original"):
        assert client.get(f"/uploads/{batch_id}{url}").status_code == 404, url
    assert client.post(f"/uploads/{batch_id}/commit").status_code == 404
    assert f"#{batch_id}" not in client.get("/uploads/").get_data(as_text=True)
    assert session.get(ImportBatch, batch_id).status == "valid"


def test_an_agency_user_uploads_only_for_its_own_agency(client, session, people, tmp_path):
    path = write_upload(tmp_path / "mixed.xlsx", [acquisition(1), acquisition(2, agency=POLICE)])
    login(client, "bus")
    assert "代哪个单位上传" not in client.get("/uploads/").get_data(as_text=True)
    batch_id = batch_of(upload(client, path, agency=str(agency_id(session, POLICE))))
    batch = session.get(ImportBatch, batch_id)
    assert batch.agency_id == agency_id(session, BUS_COMPANY)
    assert [(e["row"], e["code"]) for e in batch.report["errors"]] == [(3, "agency_not_allowed")]


def test_a_reviewer_uploads_on_behalf_of_the_agency_it_chooses(client, session, people, tmp_path):
    path = write_upload(tmp_path / "mixed.xlsx", [acquisition(1), acquisition(2, agency=POLICE)])
    login(client, "reviewer")
    assert "代哪个单位上传" in client.get("/uploads/").get_data(as_text=True)
    batch_id = batch_of(upload(client, path, agency=str(agency_id(session, BUS_COMPANY))))
    batch = session.get(ImportBatch, batch_id)
    assert (batch.agency_id, batch.uploaded_by.username) == (agency_id(session, BUS_COMPANY), "reviewer")
    assert [(e["row"], e["code"]) for e in batch.report["errors"]] == [(3, "agency_not_allowed")]

    clean = write_upload(tmp_path / "clean.xlsx", [acquisition(3)])
    clean_id = batch_of(upload(client, clean, agency=str(agency_id(session, BUS_COMPANY))))
    client.post(f"/uploads/{clean_id}/commit")
    assert session.get(ImportBatch, clean_id).status == "committed"

    police_only = client.get(f"/uploads/?agency={agency_id(session, POLICE)}").get_data(as_text=True)
    assert f"#{clean_id}" not in police_only and f"#{batch_id}" not in police_only
    assert f"#{clean_id}" in client.get(f"/uploads/?agency={agency_id(session, BUS_COMPANY)}").get_data(as_text=True)
    client.post("/logout")

    login(client, "bus")  # the agency sees what the reviewer uploaded for it, and only its own
    assert f"#{clean_id}" in client.get("/uploads/").get_data(as_text=True)
    assert f"#{clean_id}" in client.get(f"/uploads/?agency={agency_id(session, POLICE)}").get_data(as_text=True)


def test_a_reviewer_must_choose_a_registered_agency(client, session, people, tmp_path):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1)])
    login(client, "reviewer")
    assert upload(client, path, agency="999999").status_code == 400
    unchosen = upload(client, path, agency="")
    assert unchosen.status_code == 400
    assert "请选择代哪个单位上传" in unchosen.get_data(as_text=True)
    assert upload(client, path).status_code == 400
    assert count(session, ImportBatch) == 0


def test_a_file_over_the_limit_is_refused_with_a_clear_message(app, client, session, people, tmp_path):
    app.config["MAX_CONTENT_LENGTH"] = 20_000
    path = tmp_path / "huge.xlsx"
    path.write_bytes(os.urandom(30_000))
    login(client, "bus")
    response = upload(client, path)
    assert response.status_code == 413
    assert "上传的文件太大" in response.get_data(as_text=True)
    assert count(session, UploadFile) == 0


def test_random_bytes_get_a_clear_message_and_nothing_is_stored(client, session, people, tmp_path):
    path = tmp_path / "vehicles.xlsx"
    path.write_bytes(os.urandom(5000))
    login(client, "bus")
    response = upload(client, path)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'class="error-box"' in html and "Traceback" not in html
    assert count(session, UploadFile) == 0 and count(session, ImportBatch) == 0


def test_a_missing_file_is_asked_for(client, session, people):
    login(client, "bus")
    response = client.post("/uploads/", data={}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "请选择要上传的文件" in response.get_data(as_text=True)


def test_the_template_downloads_as_a_workbook(client, session, people):
    login(client, "bus")
    response = client.get("/uploads/template")
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.data))
    assert len(workbook.sheetnames) >= 1


def test_anonymous_users_do_not_upload_and_admins_do_as_reviewers(client, session, people):
    assert client.get("/uploads/").status_code == 302  # to the login page
    login(client, "admin")
    # The README: an admin has all a reviewer has, uploads for an agency included.
    page = client.get("/uploads/")
    assert page.status_code == 200 and 'name="agency"' in page.get_data(as_text=True)


def wait_until_finished(client, session, batch_id: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The test's requests share the test's session (one app context): let them see the job's commits.
        session.rollback()
        status = client.get(f"/uploads/{batch_id}/status").get_json()
        if not status["running"]:
            return status
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} still running after {timeout} s")


def test_a_large_file_is_processed_in_the_background_with_progress(app, client, session, people, tmp_path):
    app.config["IMPORT_BACKGROUND_BYTES"] = 0  # every file counts as large
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(n) for n in range(1, 41)])
    login(client, "bus")
    batch_id = batch_of(upload(client, path))
    page = client.get(f"/uploads/{batch_id}").get_data(as_text=True)
    if session.get(ImportBatch, batch_id).status in ("received", "validating"):
        assert "data-upload-status" in page and "<progress" in page and "js/uploads.js" in page

    status = wait_until_finished(client, session, batch_id)
    assert (status["status"], status["progress"], status["rows"], status["errors"]) == ("valid", 100, 40, 0)
    assert client.post(f"/uploads/{batch_id}/commit").status_code == 302
    status = wait_until_finished(client, session, batch_id)
    assert status["status"] == "committed"
    assert count(session, Acquisition) == 40


def test_a_chinese_file_name_is_kept_and_given_back(client, session, people, tmp_path):
    path = write_upload(tmp_path / "公交车购置（3月）.xlsx", [acquisition(1)])
    login(client, "bus")
    batch_id = batch_of(upload(client, path))
    assert session.get(ImportBatch, batch_id).status == "valid"
    assert "公交车购置（3月）.xlsx" in client.get("/uploads/").get_data(as_text=True)
    disposition = client.get(f"/uploads/{batch_id}/original").headers["Content-Disposition"]
    assert "filename*=UTF-8''%E5%85%AC%E4%BA%A4" in disposition


def test_the_same_file_uploaded_again_says_it_was_imported_and_changes_nothing(client, session, people, tmp_path):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2)])
    login(client, "bus")
    first = batch_of(upload(client, path))
    client.post(f"/uploads/{first}/commit")
    again = batch_of(upload(client, path))
    page = client.get(f"/uploads/{again}").get_data(as_text=True)
    assert f'data-duplicate-of="{first}"' in page and "未重复导入" in page
    assert f"/uploads/{again}/commit" not in page  # nothing to confirm
    refused = client.post(f"/uploads/{again}/commit", follow_redirects=True)
    assert "未重复导入" in refused.get_data(as_text=True)
    session.rollback()
    assert session.get(ImportBatch, again).status == "valid"
    assert session.scalar(sa.select(sa.func.max(Acquisition.version))) == 1


def test_upload_times_are_shown_in_the_users_time_zone(client, session, people, tmp_path):
    import datetime as dt

    login(client, "bus")
    batch_id = batch_of(upload(client, write_upload(tmp_path / "buses.xlsx", [acquisition(1)])))
    session.rollback()
    session.get(ImportBatch, batch_id).uploaded_at = dt.datetime(2026, 3, 1, 20, 30)  # UTC, as stored
    session.commit()
    history = client.get("/uploads/").get_data(as_text=True)
    assert "2026-03-02 04:30" in history and "2026-03-01 20:30" not in history and "UTC" not in history


def test_an_unknown_time_zone_stops_the_app(monkeypatch, tmp_path):
    from fleet.base.config import ConfigError, from_environment

    monkeypatch.setenv("TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="TIMEZONE"):
        from_environment(str(tmp_path))


def test_the_english_check_page_counts_findings_in_english(client, session, people, tmp_path):
    user(session, "bus-en", agency_name=BUS_COMPANY, locale="en")
    session.commit()
    login(client, "bus-en")
    batch_id = batch_of(upload(client, write_upload(tmp_path / "bad.xlsx", [acquisition(1, county="火星")])))
    page = client.get(f"/uploads/{batch_id}").get_data(as_text=True)
    assert "Errors: 1" in page and "Error (1)" not in page and "（" not in page.split("<main")[1].split("<table")[0]


def preview_rows(html: str) -> dict[int, str]:
    """The check page's preview rows by their row number in the sheet."""
    table = html.split("data-preview>")[1].split("</table>")[0]
    return {int(re.search(r'data-row="(\d+)"', tr)[1]): tr for tr in table.split("<tr ")[1:]}


def cell(row: str, key: str) -> str:
    return re.search(rf'<td data-key="{key}"[^>]*>(.*?)</td>', row)[1]


def test_the_check_page_shows_the_rows_as_they_were_read_before_the_commit(client, session, people, tmp_path):
    written = acquisition(1, plate="豫j d00001", power="插混", acquired_on="2025年3月5日", price=" 18.5 ")
    rows = [written, *(acquisition(n) for n in range(2, 13)), acquisition(13, county="火星"), acquisition(14)]
    login(client, "bus")
    html = client.get(f"/uploads/{batch_of(upload(client, write_upload(tmp_path / 'buses.xlsx', rows)))}").get_data(as_text=True)
    shown = preview_rows(html)
    # The first ten rows (sheet rows 2 to 11), then only the row with a finding.
    assert sorted(shown) == [*range(2, 12), 14]
    first = shown[2]
    assert "车辆购置" in first
    assert (cell(first, "plate"), cell(first, "power"), cell(first, "acquired_on"), cell(first, "price")) == (
        "豫JD00001", "插电式混合动力", "2025-03-05", "18.5")
    assert re.search(r'<td data-key="county" class="cell-error">火星</td>', shown[14])
    assert "<th>购置价格（万元）</th>" in html.split("data-preview>")[1].split("</thead>")[0]
    assert count(session, Acquisition) == 0


def test_the_preview_is_in_the_users_language(client, session, people, tmp_path):
    login(client, "bus")
    client.post("/language", data={"locale": "en", "next": "/"})
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1, power="插混")])
    html = client.get(f"/uploads/{batch_of(upload(client, path))}").get_data(as_text=True)
    assert "How the rows were read" in html
    row = preview_rows(html)[2]
    assert cell(row, "power") == "Plug-in hybrid" and cell(row, "category") == "Bus"
    assert "<th>Power type</th>" in html
