"""Each agency's figures of a year, kept between requests and counted again only for the agencies
whose acquisition tallies changed.

Counted from scratch, a province's city page is several passes over a year's tallies (some hundred
thousand rows for a million acquisitions). But an upload changes one agency, and the database says
which: triggers raise `agencies.tally_version` whenever one of the agency's tallies changes
(migration 0004), and every write that can move a figure — an import, an edit, a deletion, an
exemption request or decision, a catalogue match — moves a tally. So the dashboards keep, per agency,
what the rules count month by month, its acquisitions by category and power type and its reports on
time and late; after an upload they count the uploading agency alone and sum the rest from memory.
The registry (names, kinds, counties) and the pack's rules are applied on every request, and the
pack's id and file time are part of the key, so neither can go stale.

Kept per process: each web worker counts everything once, on its first request for a year.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from cachetools import LRUCache
from sqlalchemy.orm import Session

from fleet.base.models import AcquisitionTally, Agency
from fleet.base.periods import Period
from fleet.base.vocab import NEV_POWER_TYPES
from fleet.domain.selection import selected_agencies
from fleet.domain.timeliness import late_counts
from rules.engine import agency_months
from rules.packs import RulePack
from rules.year_counts import NO_YEAR_COUNTS, AgencyYearCounts

# Beyond this many agencies to count again, counting every agency is quicker than naming them.
COUNT_ALL_BEYOND = 200


@dataclass(frozen=True)
class AgencyYear:
    """One agency's figures of a calendar year."""

    version: int  # agencies.tally_version they were counted at
    counts: AgencyYearCounts  # what the rules count, by month and for the year (rules.engine.agency_months)
    by_category_power: dict[tuple[str, str], int]  # acquisitions
    reported: int  # acquisitions first reported in the year
    late: int  # of which reported late
    acquired: int  # acquisitions in the year
    nev: int  # of which NEVs


NOTHING = AgencyYear(0, NO_YEAR_COUNTS, {}, 0, 0, 0, 0)


def by_category_power(session: Session, year: int, agency_ids: Collection[int] | None = None) -> dict[int, dict[tuple[str, str], int]]:
    """agency id -> (category, power type) -> acquisitions in the calendar year, from the tallies."""
    t = AcquisitionTally
    query = (
        sa.select(t.agency_id, t.category, t.power, sa.func.sum(t.acquisitions))
        .where(t.month.between(dt.date(year, 1, 1), dt.date(year, 12, 1)), *selected_agencies(t.agency_id, None, None, agency_ids))
        .group_by(t.agency_id, t.category, t.power)
    )
    counts: dict[int, dict[tuple[str, str], int]] = {}
    for agency, category, power, count in session.execute(query):
        counts.setdefault(agency, {})[(category, power)] = int(count)
    return counts


def count_agency_years(
    session: Session,
    pack: RulePack,
    year: int,
    *,
    deadline_days: int,
    versions: Mapping[int, int],
    agency_ids: Collection[int] | None = None,
) -> dict[int, AgencyYear]:
    """The figures of the agencies of agency_ids (or of every agency in `versions`), each marked with
    its version from `versions`, read before counting: a write committed in between leaves a newer
    version behind, and the agency is counted again next time."""
    counts = agency_months(session, pack, year, agency_ids)
    powers = by_category_power(session, year, agency_ids)
    reports = {c.agency_id: c for c in late_counts(session, Period.year(year), deadline_days=deadline_days, agency_ids=agency_ids)}
    figures = {}
    for agency in versions if agency_ids is None else agency_ids:
        report = reports.get(agency)
        acquired = powers.get(agency, {})
        figures[agency] = AgencyYear(
            versions[agency], counts.get(agency, NOTHING.counts), acquired,
            report.reported if report else 0, report.late if report else 0,
            sum(acquired.values()), sum(n for (_, power), n in acquired.items() if power in NEV_POWER_TYPES),
        )  # fmt: skip
    return figures


class AgencyFigures:
    """AgencyYears by pack, year and reporting deadline, for the few latest such keys; shared by the
    threads of one process. Two threads counting the same agency at once both count, which is harmless."""

    def __init__(self, keys: int = 4) -> None:
        self._kept: LRUCache[Hashable, dict[int, AgencyYear]] = LRUCache(maxsize=keys)
        self._lock = threading.Lock()

    def year(
        self, session: Session, pack: RulePack, year: int, *, deadline_days: int, agency_ids: Collection[int] | None = None
    ) -> dict[int, AgencyYear]:
        """agency id -> its figures of the year, for the agencies of agency_ids (or every agency);
        only the agencies whose tallies changed since they were kept are counted."""
        query = sa.select(Agency.id, Agency.tally_version)
        if agency_ids is not None:
            query = query.where(Agency.id.in_(sorted(agency_ids)))
        versions = {agency: version for agency, version in session.execute(query)}
        key = (pack.id, pack.path.stat().st_mtime_ns, year, deadline_days)
        with self._lock:
            kept = dict(self._kept.get(key, {}))
        stale = [agency for agency, version in versions.items() if agency not in kept or kept[agency].version != version]
        if stale:
            counted = count_agency_years(
                session, pack, year, deadline_days=deadline_days, versions=versions,
                agency_ids=stale if len(stale) <= COUNT_ALL_BEYOND else agency_ids,
            )  # fmt: skip
            kept.update(counted)
            with self._lock:
                self._kept[key] = {**self._kept.get(key, {}), **counted}
        return {agency: kept.get(agency, NOTHING) for agency in versions}
