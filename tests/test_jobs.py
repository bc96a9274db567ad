"""Background imports: a thread by default, an RQ worker on Redis when REDIS_URL is set; status and
progress kept in the database; a batch is committed once, and a bad stored file ends with a message."""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from xlsx_factory import HEADERS, acquisition, write_upload

from fleet import jobs
from fleet.base import db
from fleet.base.models import Acquisition, ImportBatch, UploadFile, utcnow
from imports.pipeline import ImportFailed, import_file
from imports.report import CODES
from imports.stage import stage_batch
from tests.factories import agency, login, user

BUS_COMPANY = "濮阳市公共交通有限公司"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def manager(session):
    agency(session, BUS_COMPANY, kind="国有企业", sector="公交", county="华龙区")
    manager = user(session, "bus", agency_name=BUS_COMPANY)
    session.commit()
    return manager


def received_batch(session, manager, path) -> int:
    batch = stage_batch(session, path.read_bytes(), None, file_name=path.name, user=manager, agency_id=manager.agency_id)
    session.commit()
    return batch.id


def fresh(session, batch_id: int) -> ImportBatch:
    session.rollback()  # see what the job committed from its own session
    return session.get(ImportBatch, batch_id)


def acquisitions(session) -> int:
    session.rollback()
    return session.scalar(sa.select(sa.func.count()).select_from(Acquisition))


def test_a_job_validates_then_commits_a_batch(session, manager, tmp_path):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(n) for n in range(1, 6)])
    batch_id = received_batch(session, manager, path)
    assert fresh(session, batch_id).status == "received"

    assert jobs.run_import_job(batch_id) == "valid"
    batch = fresh(session, batch_id)
    assert (batch.status, batch.progress, batch.message, batch.rows) == ("valid", 100, None, 5)
    assert acquisitions(session) == 0

    assert jobs.run_import_job(batch_id, commit=True) == "committed"
    batch = fresh(session, batch_id)
    assert (batch.status, batch.progress, batch.inserted, batch.message) == ("committed", 100, 5, None)
    assert acquisitions(session) == 5

    # A second run (a retried job, another worker) finds nothing left to do.
    assert jobs.run_import_job(batch_id, commit=True) == "committed"
    assert acquisitions(session) == 5


def test_the_job_annotates_a_large_file_with_findings_and_the_download_serves_it(app, client, session, manager, tmp_path):
    app.config["IMPORT_BACKGROUND_BYTES"] = 1  # every file counts as large here
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2, vin="LZYBEV0A0R000000X")])
    batch_id = received_batch(session, manager, path)
    assert jobs.run_import_job(batch_id) == "invalid"
    session.rollback()
    stored = session.scalar(sa.select(ImportBatch.annotated_workbook).where(ImportBatch.id == batch_id))
    assert stored is not None
    login(client, "bus")
    response = client.get(f"/uploads/{batch_id}/annotated")
    assert response.status_code == 200 and response.data == stored
    workbook = load_workbook(io.BytesIO(response.data))
    assert workbook.sheetnames[0] == "错误清单"
    findings = [[cell.value for cell in row] for row in workbook["错误清单"].iter_rows(min_row=2)]
    # Sheet, row, header, value, what the code means (in words), severity, message.
    assert [f[:5] for f in findings] == [
        ["车辆购置", 3, HEADERS["vin"], "LZYBEV0A0R000000X", str(CODES["vin_check_digit"].description)]
    ]

    clean = received_batch(session, manager, write_upload(tmp_path / "clean.xlsx", [acquisition(3)]))
    assert jobs.run_import_job(clean) == "valid"
    session.rollback()
    assert session.scalar(sa.select(ImportBatch.annotated_workbook).where(ImportBatch.id == clean)) is None


def test_a_batch_is_not_committed_before_it_is_validated(session, manager, tmp_path):
    batch_id = received_batch(session, manager, write_upload(tmp_path / "buses.xlsx", [acquisition(1)]))
    assert jobs.run_import_job(batch_id, commit=True) == "received"
    assert acquisitions(session) == 0


def test_a_stored_file_that_cannot_be_read_ends_invalid_with_the_reason(session, manager, tmp_path):
    path = tmp_path / "vehicles.xlsx"
    path.write_bytes(b"VIN,plate\nLZYBEV0A0R0000001,\n")  # a CSV renamed: refused with a message
    batch_id = received_batch(session, manager, path)
    assert jobs.run_import_job(batch_id) == "invalid"
    batch = fresh(session, batch_id)
    assert batch.status == "invalid" and batch.message and batch.report is None
    assert session.get(UploadFile, batch.sha256) is not None  # the original is kept all the same


def test_the_progress_writer_keeps_the_batch_current_but_never_undoes_the_end(session, manager, tmp_path):
    batch_id = received_batch(session, manager, write_upload(tmp_path / "buses.xlsx", [acquisition(1)]))
    session.execute(sa.update(ImportBatch).where(ImportBatch.id == batch_id).values(status="validating"))
    session.commit()
    writer = jobs.ProgressWriter(db.engine(), batch_id)
    writer("read", 0.05)
    writer("validate", 0.5)
    writer.flush()
    batch = fresh(session, batch_id)
    assert (batch.progress, batch.message) == (50, "validate")

    batch.status = "valid"
    session.commit()
    writer("done", 1.0)
    writer.flush()
    assert (fresh(session, batch_id).progress, fresh(session, batch_id).message) == (50, "validate")


def test_the_progress_writer_beats_while_the_step_stays_the_same(session, manager, tmp_path):
    batch_id = received_batch(session, manager, write_upload(tmp_path / "buses.xlsx", [acquisition(1)]))
    session.execute(sa.update(ImportBatch).where(ImportBatch.id == batch_id).values(status="importing"))
    session.commit()
    writer = jobs.ProgressWriter(db.engine(), batch_id, heartbeat=0.0)
    writer("commit", 0.8)
    writer.flush()
    first = fresh(session, batch_id).heartbeat_at
    assert first is not None
    time.sleep(0.01)
    writer.flush()  # nothing new to say, but the job is alive
    assert fresh(session, batch_id).heartbeat_at > first


def test_a_running_batch_whose_job_went_silent_is_failed_by_the_reaper_not_by_a_page(app, client, session, manager, tmp_path):
    dead = received_batch(session, manager, write_upload(tmp_path / "dead.xlsx", [acquisition(1)]))
    alive = received_batch(session, manager, write_upload(tmp_path / "alive.xlsx", [acquisition(2)]))
    now = utcnow()
    session.execute(
        sa.update(ImportBatch).where(ImportBatch.id == dead).values(status="importing", heartbeat_at=now - dt.timedelta(minutes=6))
    )
    session.execute(
        sa.update(ImportBatch).where(ImportBatch.id == alive).values(status="validating", heartbeat_at=now - dt.timedelta(minutes=1))
    )
    session.commit()
    login(client, "bus")
    # Showing a batch writes nothing.
    assert client.get(f"/uploads/{dead}/status").get_json()["status"] == "importing"
    assert fresh(session, dead).status == "importing"

    assert jobs.housekeeping(session, keep_reports=dt.timedelta(days=7)) == {
        "failed_batches": 1, "failed_reports": 0, "dropped_reports": 0, "forgotten_login_counters": 0,
    }
    status = client.get(f"/uploads/{dead}/status").get_json()
    assert (status["status"], status["running"]) == ("failed", False)
    assert "意外中断" in status["message"]
    assert "意外中断" in client.get(f"/uploads/{dead}").get_data(as_text=True)
    assert client.get(f"/uploads/{alive}/status").get_json()["status"] == "validating"
    # A job that was only slow and comes back finds its batch failed and leaves it so.
    assert jobs.run_import_job(dead, True) == "failed"
    assert acquisitions(session) == 0


def test_the_housekeeping_command_runs_the_reaper(runner, session, manager, tmp_path):
    dead = received_batch(session, manager, write_upload(tmp_path / "dead.xlsx", [acquisition(1)]))
    session.execute(sa.update(ImportBatch).where(ImportBatch.id == dead).values(status="importing", heartbeat_at=utcnow() - dt.timedelta(minutes=6)))
    session.commit()
    result = runner.invoke(args=["housekeeping"])
    assert result.exit_code == 0 and '"failed_batches": 1' in result.output
    assert fresh(session, dead).status == "failed"


def test_a_killed_command_line_import_ends_failed_not_valid(app, session, manager, tmp_path, database_url):
    """kill -9 of `flask import` during its commit: the batch was written as importing with a heartbeat,
    so the reaper fails it; nothing of the file is in the database."""
    path = write_upload(tmp_path / "many.xlsx", [acquisition(n) for n in range(1, 20001)])
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "kill-test"}
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "import", str(path)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline and process.poll() is None:
        session.rollback()
        status = session.scalar(sa.select(ImportBatch.status).order_by(ImportBatch.id.desc()).limit(1))
        if status == "importing":
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(timeout=30)
    if status != "importing":
        pytest.skip("the import finished before it could be killed during its commit")
    batch_id = session.scalar(sa.select(ImportBatch.id).order_by(ImportBatch.id.desc()).limit(1))
    assert fresh(session, batch_id).status == "importing"
    session.execute(sa.update(ImportBatch).where(ImportBatch.id == batch_id).values(heartbeat_at=utcnow() - dt.timedelta(minutes=6)))
    session.commit()
    jobs.housekeeping(session, keep_reports=dt.timedelta(days=7))
    batch = fresh(session, batch_id)
    assert (batch.status, batch.message) == ("failed", jobs.INTERRUPTED)
    assert acquisitions(session) == 0


def test_two_imports_at_once_on_sqlite_end_with_a_message_and_no_sql(session, manager, tmp_path, database_url):
    """Another writer holds SQLite's lock through this import's commit: the batch fails, saying so."""
    if not database_url.startswith("sqlite:///"):
        pytest.skip("SQLite's single writer only")
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2)])
    rival = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)

    def progress(step: str, _fraction: float) -> None:
        if step == "commit":
            session.execute(sa.text("PRAGMA busy_timeout=200"))
            rival.execute("BEGIN IMMEDIATE")

    class ReleaseOnLog(logging.Handler):
        # The failure is logged after the rollback and before the batch is marked: the rival's
        # transaction ends there, as a concurrent import's would.
        def emit(self, record: logging.LogRecord) -> None:
            if rival.in_transaction:
                rival.execute("ROLLBACK")

    handler = ReleaseOnLog()
    logging.getLogger("imports.pipeline").addHandler(handler)
    try:
        with pytest.raises(ImportFailed) as failed:
            import_file(session, path, user=manager, progress=progress, max_bytes=10**7)
    finally:
        logging.getLogger("imports.pipeline").removeHandler(handler)
        session.execute(sa.text("PRAGMA busy_timeout=10000"))
        rival.close()
    batch = fresh(session, failed.value.batch_id)
    assert batch.status == "failed" and "正忙" in batch.message
    for text in (batch.message, failed.value.message):
        assert not any(word in text for word in ("INSERT", "SELECT", "locked", "acquisitions", "[SQL"))
    assert acquisitions(session) == 0


def join_job_thread(batch_id: int) -> None:
    for thread in threading.enumerate():
        if thread.name == f"import-batch-{batch_id}":
            thread.join(timeout=60)


def test_without_redis_the_job_runs_in_a_thread(app, session, manager, tmp_path):
    batch_id = received_batch(session, manager, write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2)]))
    jobs.launch_import(batch_id)
    join_job_thread(batch_id)
    assert fresh(session, batch_id).status == "valid"

    session.execute(sa.update(ImportBatch).where(ImportBatch.id == batch_id).values(status="importing"))
    session.commit()
    jobs.launch_import(batch_id, commit=True)
    join_job_thread(batch_id)
    assert fresh(session, batch_id).status == "committed"
    assert acquisitions(session) == 2


@pytest.fixture
def redis_queue(app):
    """A queue of its own on the real Redis, every key of it removed afterwards."""
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    connection = Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except RedisConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}: the RQ path needs it (the thread path is tested without)")
    name = f"fleet-test-{uuid.uuid4().hex}"
    app.config.update(REDIS_URL=REDIS_URL, IMPORT_QUEUE=name)
    yield name
    for key in connection.scan_iter(match=f"*{name}*"):
        connection.delete(key)
    for members in ("rq:workers", f"rq:workers:{name}"):
        for member in connection.smembers(members):
            if name.encode() in member:
                connection.srem(members, member)
    connection.close()


def run_worker(queue_name: str) -> None:
    from redis import Redis
    from rq import Queue, SimpleWorker

    connection = Redis.from_url(REDIS_URL)
    worker = SimpleWorker([Queue(queue_name, connection=connection)], connection=connection, name=f"{queue_name}-worker")
    worker.work(burst=True)
    connection.close()


def test_with_redis_an_rq_worker_runs_the_job(app, session, manager, tmp_path, redis_queue):
    from redis import Redis
    from rq import Queue

    batch_id = received_batch(session, manager, write_upload(tmp_path / "buses.xlsx", [acquisition(n) for n in range(1, 4)]))
    jobs.launch_import(batch_id)
    queue = Queue(redis_queue, connection=Redis.from_url(REDIS_URL))
    assert queue.count == 1
    assert fresh(session, batch_id).status == "received"  # queued, not run by the web process

    run_worker(redis_queue)
    batch = fresh(session, batch_id)
    assert (batch.status, batch.progress, batch.rows) == ("valid", 100, 3)

    session.execute(sa.update(ImportBatch).where(ImportBatch.id == batch_id).values(status="importing"))
    session.commit()
    jobs.launch_import(batch_id, commit=True)
    assert fresh(session, batch_id).status == "importing"
    assert acquisitions(session) == 0

    run_worker(redis_queue)
    batch = fresh(session, batch_id)
    assert (batch.status, batch.inserted, batch.message) == ("committed", 3, None)
    assert acquisitions(session) == 3
    assert queue.count == 0


def test_the_upload_page_hands_a_large_file_to_the_rq_worker(app, client, session, manager, tmp_path, redis_queue):
    app.config["IMPORT_BACKGROUND_BYTES"] = 0
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2)])
    login(client, "bus")
    response = client.post("/uploads/", data={"file": (io.BytesIO(path.read_bytes()), path.name)},
                           content_type="multipart/form-data")
    batch_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    session.rollback()
    status = client.get(f"/uploads/{batch_id}/status").get_json()
    assert (status["status"], status["running"]) == ("received", True)
    assert "<progress" in client.get(f"/uploads/{batch_id}").get_data(as_text=True)

    run_worker(redis_queue)
    session.rollback()
    assert client.get(f"/uploads/{batch_id}/status").get_json()["status"] == "valid"
    client.post(f"/uploads/{batch_id}/commit")
    session.rollback()
    assert client.get(f"/uploads/{batch_id}/status").get_json()["status"] == "importing"
    run_worker(redis_queue)
    session.rollback()
    assert client.get(f"/uploads/{batch_id}/status").get_json()["status"] == "committed"
    assert acquisitions(session) == 2


def test_each_job_step_is_logged_with_its_batch_and_duration(session, manager, tmp_path, caplog):
    batch_id = received_batch(session, manager, write_upload(tmp_path / "buses.xlsx", [acquisition(1)]))
    with caplog.at_level(logging.INFO, logger="fleet.jobs.progress"):
        assert jobs.run_import_job(batch_id) == "valid"
    steps = [r for r in caplog.records if getattr(r, "event", None) == "job_step"]
    assert [r.step for r in steps] == ["check", "read", "normalise", "validate", "validated", "done"]
    assert all(r.batch == batch_id and r.duration_ms >= 0 for r in steps)
