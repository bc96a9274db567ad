"""One agency's counts over a calendar year, by month and rule, kept as an array between requests."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from rules.results import Counts


@dataclass(frozen=True)
class AgencyYearCounts:
    """What the rules count for one agency over a calendar year, and the year's sum per rule, added up
    once when counted rather than on every page that shows it.

    The months are an array, [month - 1, rule, (total, meets, exempt, pending)] over `rule_ids`: a
    city page adds up some two thousand agencies' months on every request after an upload, which is
    one numpy sum per agency kind instead of tens of thousands of tuple additions."""

    rule_ids: tuple[str, ...]
    months: np.ndarray  # shape (12, len(rule_ids), 4)
    year: Mapping[str, Counts]

    @classmethod
    def of(cls, rule_ids: tuple[str, ...], months: Mapping[int, Mapping[str, Counts]]) -> AgencyYearCounts:
        index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
        array = np.zeros((12, len(rule_ids), 4), dtype=np.int64)
        for month, per_rule in months.items():
            for rule_id, counts in per_rule.items():
                array[month - 1, index[rule_id]] = counts
        array.setflags(write=False)  # kept between requests and shared by threads
        # Every count holds an acquisition in scope (total > 0); a rule without any has no entry.
        sums = array.sum(axis=0).tolist()
        return cls(rule_ids, array, {rule_id: tuple(sums[i]) for i, rule_id in enumerate(rule_ids) if sums[i][0]})

    def only_months(self, months: Collection[int]) -> AgencyYearCounts:
        """The counts of the given months (1–12) alone, the others as if nothing was acquired in them:
        the figures of accepted months only."""
        mask = np.zeros((12, 1, 1), dtype=np.int64)
        for month in months:
            mask[month - 1] = 1
        array = self.months * mask
        array.setflags(write=False)
        sums = array.sum(axis=0).tolist()
        return AgencyYearCounts(self.rule_ids, array, {r: tuple(sums[i]) for i, r in enumerate(self.rule_ids) if sums[i][0]})

    def month(self, month: int) -> dict[str, Counts]:
        """rule id -> counts of the month (1–12), for the rules with something in scope."""
        rows = self.months[month - 1].tolist()
        return {rule_id: tuple(rows[i]) for i, rule_id in enumerate(self.rule_ids) if rows[i][0]}


NO_YEAR_COUNTS = AgencyYearCounts.of((), {})
