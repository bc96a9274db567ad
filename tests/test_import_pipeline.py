"""The pipeline as a whole: progress reporting, the policy taken from the active rule pack, limits."""

from __future__ import annotations

import pytest
from xlsx_factory import acquisition, write_upload

from imports.package import UnusableFile
from imports.pipeline import import_file, validate_file
from imports.policy import import_policy
from rules.active import set_active_pack
from tests.factories import agency

FULL_NEV_PUYANG = {"公交车", "市政环卫车", "城市物流配送车", "邮政快递车", "巡游出租车", "网约出租车", "渣土车", "水泥罐车"}


@pytest.fixture
def bus_company(session):
    agency(session, "濮阳市公共交通有限公司", kind="国有企业", sector="公交", county="华龙区")
    session.commit()


def test_progress_runs_from_check_to_done(session, tmp_path, bus_company):
    steps: list[tuple[str, float]] = []
    import_file(session, write_upload(tmp_path / "u.xlsx", [acquisition(1)]), progress=lambda s, f: steps.append((s, f)))
    names = [s for s, _ in steps]
    assert names[0] == "check" and names[-1] == "done"
    assert {"read", "validate", "stage", "commit"} <= set(names)
    fractions = [f for _, f in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_the_puyang_pack_decides_which_categories_need_a_reason(session):
    policy = import_policy(session)
    assert policy.full_nev_categories == FULL_NEV_PUYANG
    assert [sorted(categories) for categories, _powers in policy.emission_scopes] == [["重型货车"]]
    (_categories, powers), = policy.emission_scopes
    assert "柴油" in powers and "纯电动" not in powers


def test_the_policy_follows_the_active_pack(session, tmp_path, bus_company):
    diesel_bus = acquisition(1, power="柴油", plate="豫J00001")
    path = write_upload(tmp_path / "u.xlsx", [diesel_bus])
    assert [e.code for e in validate_file(session, path).errors] == ["exemption_reason_required"]
    set_active_pack(session, "example-province")  # an 80% rule without exemptions: no reason asked
    session.commit()
    assert import_policy(session).full_nev_categories == frozenset()
    assert validate_file(session, path).errors == []


def test_the_upload_limit_is_checked_before_reading(session, tmp_path, bus_company):
    path = write_upload(tmp_path / "u.xlsx", [acquisition(1)])
    with pytest.raises(UnusableFile) as refused:
        validate_file(session, path, max_bytes=path.stat().st_size - 1)
    assert refused.value.code == "too_large"
    assert validate_file(session, path, max_bytes=path.stat().st_size).errors == []
