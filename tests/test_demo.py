"""`flask demo`: a believable Puyang, loaded once, with a user per role.

The demo is seeded, so its figures are exact: a change to the demo data changes them on purpose."""

import datetime as dt
import io

import sqlalchemy as sa

from fleet.base.models import Acquisition, Agency, ExemptionRequest, ImportBatch, UploadFile, User
from fleet.base.vocab import COUNTIES, NEV_POWER_TYPES
from fleet.domain.agency_names import alias_conflicts, match_agency
from fleet.domain.demo import load_demo

TODAY = dt.date(2026, 11, 25)


def test_demo_city_has_agencies_across_counties_and_every_role(session):
    summary = load_demo(session, today=TODAY)
    agencies = session.scalars(sa.select(Agency)).all()
    assert summary.agencies == len(agencies) == 22
    # Every county and district of the city, and the city's own bodies (市直).
    assert {a.county for a in agencies} == set(COUNTIES.values)
    assert {u.role for u in session.scalars(sa.select(User))} == {"agency", "reviewer", "admin"}
    assert {role for _, _, role in summary.users} == {"agency", "reviewer", "admin"}


def test_demo_acquisitions_cover_a_year_with_originals_kept(session):
    summary = load_demo(session, today=TODAY)
    dates = session.execute(sa.select(sa.func.min(Acquisition.acquired_on), sa.func.max(Acquisition.acquired_on))).one()
    # Twelve months up to the day before today.
    assert dates == (dt.date(2025, 12, 1), dt.date(2026, 11, 24))
    assert session.scalar(sa.select(sa.func.count()).select_from(Acquisition)) == summary.acquisitions == 458
    # Every batch keeps an original workbook that opens as xlsx (a zip).
    batch = session.scalars(sa.select(ImportBatch)).first()
    assert session.get(UploadFile, batch.sha256).content[:2] == b"PK"
    # Some reports are late (beyond the reporting deadline) and some exemptions wait for a decision.
    late = [a for a in session.scalars(sa.select(Acquisition)) if (a.reported_on - a.acquired_on).days > 30]
    assert len(late) == 94
    assert session.scalar(sa.select(sa.func.count()).select_from(ExemptionRequest).where(ExemptionRequest.status == "pending")) == 4


def test_demo_mixes_nev_and_combustion(session):
    load_demo(session, today=TODAY)
    powers = dict(session.execute(sa.select(Acquisition.power, sa.func.count()).group_by(Acquisition.power)).all())
    assert powers == {"纯电动": 274, "插电式混合动力": 38, "增程式": 8, "燃料电池": 21,
                      "汽油": 46, "柴油": 47, "天然气": 3, "油电混合": 21}
    assert sum(n for p, n in powers.items() if p in NEV_POWER_TYPES) == 341


def test_demo_runs_twice_without_harm(runner, session):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "reviewer / Shenhe-Demo-2026 / reviewer" in first.output
    count = session.scalar(sa.select(sa.func.count()).select_from(Acquisition))
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and "already loaded" in second.output
    assert session.scalar(sa.select(sa.func.count()).select_from(Acquisition)) == count


def test_demo_uploads_pass_the_importer(session, tmp_path):
    """The demo's original workbooks are what an agency would upload: the importer finds nothing wrong."""
    from imports.pipeline import validate_file

    load_demo(session, today=TODAY)
    first_of_each_agency = {}
    for batch in session.scalars(sa.select(ImportBatch).order_by(ImportBatch.id)):
        first_of_each_agency.setdefault(batch.agency_id, batch)
    for batch in first_of_each_agency.values():
        path = tmp_path / batch.file_name
        path.write_bytes(session.get(UploadFile, batch.sha256).content)
        report = validate_file(session, path)
        assert report.errors == [], (batch.file_name, report.errors[:3])


def test_demo_agencies_have_aliases_each_naming_one_agency(session):
    load_demo(session, today=TODAY)
    agencies = session.scalars(sa.select(Agency)).all()
    assert sum(1 for a in agencies if a.aliases) >= 10
    assert alias_conflicts((a.name, a.aliases) for a in agencies) == []
    assert [match_agency(session, name).agency_name for name in ("市公安局", "公交公司", "濮阳市环境保护局")] == [
        "濮阳市公安局", "濮阳市公共交通有限公司", "濮阳市生态环境局"
    ]


def test_demo_reporting_has_a_realistic_mix_of_states(session):
    from fleet.domain import reporting

    load_demo(session, today=TODAY, due_day=10)
    months = reporting.recent_months(TODAY, 6)
    by_month = {m.label: reporting.summary(reporting.month_states(session, m, today=TODAY, due_day=10)) for m in months}
    # On 2026-11-25 October (due 2026-11-10) is past its due date; older months are mostly accepted.
    oldest = by_month[months[-1].label]
    assert oldest["accepted"] > sum(oldest.values()) / 2
    seen = {state for counts in by_month.values() for state, n in counts.items() if n}
    assert {"accepted", "submitted", "nil", "missing", "returned"} <= seen
    late = [s for m in months for s in reporting.month_states(session, m, today=TODAY, due_day=10) if s.late]
    assert late
# Words in a model's name that say what drives it.
POWER_WORDS = {"柴油": "柴油", "汽油": "汽油", "天然气": "天然气", "CNG": "天然气", "LNG": "天然气", "HNG": "天然气",
               "氢燃料": "燃料电池", "纯电动": "纯电动", "增程": "增程式", "DM-i": "插电式混合动力", "双擎": "油电混合"}


def test_demo_brands_agree_with_their_power_types(session):
    load_demo(session, today=TODAY)
    for model, power in session.execute(sa.select(Acquisition.brand_model, Acquisition.power).distinct()):
        named = {kind for word, kind in POWER_WORDS.items() if word in model}
        assert named <= {power}, (model, power)


def test_the_demos_own_original_read_again_is_unchanged(session, tmp_path):
    """Re-uploading a demo upload gave every vehicle a bogus version 2 with no visible change: the
    demo kept brand models as the importer never writes them."""
    from imports.pipeline import import_file

    load_demo(session, today=TODAY)
    session.commit()
    batch = session.scalars(sa.select(ImportBatch).order_by(ImportBatch.id)).first()
    path = tmp_path / "again.xlsx"
    # The same rows in a file of other bytes (saved again), so it is not refused as already imported.
    content = session.get(UploadFile, batch.sha256).content
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(content))
    book.properties.title = "saved again"
    book.save(path)
    outcome = import_file(session, path, reported_on=TODAY)
    assert outcome.duplicate_of is None
    assert (outcome.inserted, outcome.updated) == (0, 0) and outcome.unchanged == batch.inserted


def test_demo_has_a_registration_extract_with_a_handful_of_each_finding(session):
    from fleet.base.periods import Period
    from fleet.domain.registrations.owners import unmatched_owners
    from fleet.domain.registrations.reconcile import reconcile

    summary = load_demo(session, today=TODAY)
    assert summary.registrations > 50
    # The extract covers August to October; on 20 December every report of those months is due.
    counts = reconcile(session, Period.year(2026), today=dt.date(2026, 12, 20), due_day=10).counts
    for code in ("unreported", "power_mismatch", "owner_mismatch", "plate_mismatch", "usage_mismatch", "not_registered"):
        assert 1 <= counts[code] <= 6, (code, counts)
    assert counts["pending_report"] == 0
    # On 25 November October's reports were due; with a due day late in the month they were not yet.
    early = reconcile(session, Period.year(2026), today=TODAY, due_day=28).counts
    assert early["pending_report"] >= 1
    assert {o.name for o in unmatched_owners(session)} == {"濮阳市城市管理局华龙区大队", "王某某"}
