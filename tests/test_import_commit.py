"""Stage and commit: the original is kept, a clean file is committed in one transaction, nothing twice, history kept."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

import pytest
import sqlalchemy as sa
from xlsx_factory import acquisition, write_upload

import imports.commit
from fleet.base.models import (
    Acquisition,
    AcquisitionVersion,
    AuditEntry,
    ImportBatch,
    UploadFile,
)
from imports.pipeline import ImportFailed, import_file
from tests.factories import agency, user

BUS_COMPANY = "濮阳市公共交通有限公司"


@pytest.fixture
def bus_company(session):
    company = agency(session, BUS_COMPANY, kind="国有企业", sector="公交", county="华龙区")
    session.commit()
    return company


def count(session, model) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_clean_file_is_committed_with_its_original(session, tmp_path, bus_company):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1), acquisition(2)])
    manager = user(session, "bus", agency_name=BUS_COMPANY)
    session.commit()
    outcome = import_file(session, path, user=manager)

    assert (outcome.inserted, outcome.updated, outcome.unchanged, outcome.duplicate_of) == (2, 0, 0, None)
    batch = session.get(ImportBatch, outcome.batch.id)
    assert (batch.status, batch.rows, batch.valid_rows, batch.inserted) == ("committed", 2, 2, 2)
    assert (batch.uploaded_by_id, batch.agency_id, batch.file_name) == (manager.id, bus_company.id, "buses.xlsx")
    assert batch.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert session.get(UploadFile, batch.sha256).content == path.read_bytes()
    assert batch.report["rows"] == 2
    stored = session.scalars(sa.select(Acquisition).order_by(Acquisition.source_row)).all()
    assert [(a.source_sheet, a.source_row, a.acquisition_kind, a.agency_id, a.batch_id) for a in stored] == [
        ("车辆购置", 2, "新增", bus_company.id, batch.id),
        ("车辆购置", 3, "新增", bus_company.id, batch.id),
    ]


def test_every_field_reads_back_as_written(session, tmp_path, bus_company):
    # New vehicles go in by the driver's executemany (SQLite) or COPY (PostgreSQL): both must store
    # the same values as SQLAlchemy would.
    written = [
        acquisition(1),
        acquisition(2, category="公务用车", power="汽油", plate="豫J12345", price=18, emission_standard="国六",
                    credit_code="91110000600037341L", acquired_on=dt.date(2024, 12, 31),
                    exemption_reason="执法执勤特殊需要", remark="O'Brien \\N"),
    ]
    outcome = import_file(session, write_upload(tmp_path / "buses.xlsx", written), reported_on=dt.date(2025, 4, 1))
    assert [(e.code, e.column) for e in outcome.report.errors] == [] and outcome.inserted == 2
    stored = session.scalars(sa.select(Acquisition).order_by(Acquisition.source_row)).all()
    assert [
        (a.vin, a.plate, a.category, a.power, a.acquired_on, float(a.price), a.credit_code, a.emission_standard,
         a.exemption_reason, a.remark, a.brand_model, a.county, a.version, a.catalogue_entry_id)
        for a in stored
    ] == [
        (written[0]["vin"], "豫JD00001", "公交车", "纯电动", dt.date(2025, 3, 5), 120.5, None, None,
         None, None, "宇通牌ZK6105BEVG", "华龙区", 1, None),
        (written[1]["vin"], "豫J12345", "公务用车", "汽油", dt.date(2024, 12, 31), 18.0, "91110000600037341L", "国六",
         "执法执勤特殊需要", "O'Brien \\N", "宇通牌ZK6105BEVG", "华龙区", 1, None),
    ]
    assert all(a.reported_on == dt.date(2025, 4, 1) for a in stored)
    assert all(isinstance(a.created_at, dt.datetime) and a.created_at == a.updated_at for a in stored)


def test_a_file_with_errors_is_kept_but_never_committed(session, tmp_path, bus_company):
    path = write_upload(tmp_path / "bad.xlsx", [acquisition(1), acquisition(2, county="火星")])
    outcome = import_file(session, path)
    assert not outcome.report.ok
    batch = session.get(ImportBatch, outcome.batch.id)
    assert (batch.status, batch.error_count, batch.valid_rows) == ("invalid", 1, 1)
    assert batch.report["errors"][0]["code"] == "unknown_county"
    assert session.get(UploadFile, batch.sha256) is not None
    assert count(session, Acquisition) == 0


def test_the_same_file_twice_is_recognised(session, tmp_path, bus_company):
    path = write_upload(tmp_path / "buses.xlsx", [acquisition(1)])
    first = import_file(session, path)
    again = import_file(session, path)
    assert again.duplicate_of == first.batch.id
    assert again.batch is None
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 0)
    assert again.report.rows == 1
    assert count(session, ImportBatch) == 1
    assert count(session, UploadFile) == 1


def test_a_reupload_with_a_change_keeps_the_old_version(session, tmp_path, bus_company):
    first = import_file(session, write_upload(tmp_path / "v1.xlsx", [acquisition(1, price=100), acquisition(2)]))
    second = import_file(session, write_upload(tmp_path / "v2.xlsx", [acquisition(1, price=95.5), acquisition(2)]))
    assert (second.inserted, second.updated, second.unchanged) == (0, 1, 1)
    changed = session.scalars(sa.select(Acquisition).where(Acquisition.price == 95.5)).one()
    assert changed.version == 2 and changed.batch_id == second.batch.id
    (history,) = session.scalars(sa.select(AcquisitionVersion)).all()
    assert (history.acquisition_id, history.version, history.batch_id) == (changed.id, 1, first.batch.id)
    assert history.replaced_by_batch_id == second.batch.id
    assert float(history.data["price"]) == 100


def test_a_crash_mid_import_leaves_the_database_unchanged(session, tmp_path, bus_company, monkeypatch, caplog):
    import_file(session, write_upload(tmp_path / "v1.xlsx", [acquisition(1, price=100)]))
    before = session.execute(sa.select(Acquisition.vin, Acquisition.price, Acquisition.version)).all()
    real_record = imports.commit.record_acquisition_columns

    def record_then_crash(*args, **kwargs):
        real_record(*args, **kwargs)  # the inserts and updates are written…
        raise OSError("disk full")  # …then the process fails before the commit

    monkeypatch.setattr(imports.commit, "record_acquisition_columns", record_then_crash)
    path = write_upload(tmp_path / "v2.xlsx", [acquisition(1, price=90), acquisition(2), acquisition(3)])
    with caplog.at_level(logging.ERROR, logger="imports.pipeline"), pytest.raises(ImportFailed) as failure:
        import_file(session, path)

    session.rollback()
    assert session.execute(sa.select(Acquisition.vin, Acquisition.price, Acquisition.version)).all() == before
    assert count(session, AcquisitionVersion) == 0
    assert count(session, AuditEntry) == session.scalar(
        sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action != "import.commit")
    ) + 1  # only the first import's entry
    batch = session.get(ImportBatch, failure.value.batch_id)
    assert (batch.status, batch.inserted, batch.committed_at) == ("failed", 0, None)
    # The user reads an error id; the cause is in the log under that id.
    (logged,) = [r for r in caplog.records if r.exc_info and "disk full" in str(r.exc_info[1])]
    assert logged.getMessage().split("error id ")[1].rstrip(")") in batch.message
    assert session.get(UploadFile, batch.sha256).content == path.read_bytes()


def test_an_imported_vehicle_of_a_catalogued_configuration_is_exempt_at_once(session, tmp_path, bus_company):
    from fleet.domain.exemptions import add_catalogue_entry

    reviewer = user(session, "shenhe", role="reviewer")
    entry = add_catalogue_entry(
        session, category="公交车", model_pattern="ZK6126HNG", description="城际长线天然气客车",
        reason="沿线无加氢、充电设施", user=reviewer,
    )
    session.commit()
    gas_bus = acquisition(
        2, power="天然气", plate="豫JA1234", brand_model="宇通 ZK6126HNG", exemption_reason="城际长线无充电设施",
    )
    import_file(session, write_upload(tmp_path / "buses.xlsx", [acquisition(1), gas_bus]))
    marks = dict(session.execute(sa.select(Acquisition.source_row, Acquisition.catalogue_entry_id)).all())
    assert marks == {2: None, 3: entry.id}
