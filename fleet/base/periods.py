"""Reporting periods: a calendar year, a year to date, a month (inclusive dates, labelled for display)."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


@dataclass(frozen=True)
class Period:
    kind: str  # "year" | "ytd" | "month"
    start: dt.date
    end: dt.date  # inclusive
    label: str  # "2025", "2025 YTD", "2025-03"

    @classmethod
    def year(cls, year: int) -> Period:
        return cls("year", dt.date(year, 1, 1), dt.date(year, 12, 31), f"{year:04d}")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        if not 1 <= month <= 12:
            raise ValueError(f"month {month} is not between 1 and 12")
        last = calendar.monthrange(year, month)[1]
        return cls("month", dt.date(year, month, 1), dt.date(year, month, last), f"{year:04d}-{month:02d}")

    @classmethod
    def parse_month(cls, text: str) -> Period:
        """A month written YYYY-MM; ValueError says what was expected."""
        m = _MONTH.match(text or "")
        if not m:
            raise ValueError(f"{text!r} is not a month written YYYY-MM")
        return cls.month(int(m.group(1)), int(m.group(2)))

    @classmethod
    def year_to_date(cls, day: dt.date) -> Period:
        return cls("ytd", dt.date(day.year, 1, 1), day, f"{day.year:04d} YTD")

    def months(self) -> list[Period]:
        """The months the period touches, each whole."""
        return months_touched(self.start, self.end)


def split_at_whole_months(first: dt.date, last: dt.date) -> tuple[tuple[dt.date, dt.date] | None, list[tuple[dt.date, dt.date]]]:
    """[first, last] as the run of whole months inside it (None when there is none) and the days
    outside that run, at either end: monthly tallies count the first, single rows the second."""
    start = first if first.day == 1 else _next_month(first)
    end = last if last.day == calendar.monthrange(last.year, last.month)[1] else last.replace(day=1) - dt.timedelta(days=1)
    if start > end:
        return None, [(first, last)]
    edges = []
    if first < start:
        edges.append((first, start - dt.timedelta(days=1)))
    if end < last:
        edges.append((end + dt.timedelta(days=1), last))
    return (start, end), edges


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + 1, 1, 1) if day.month == 12 else dt.date(day.year, day.month + 1, 1)


def months_touched(start: dt.date, end: dt.date) -> list[Period]:
    """The whole months that dates from start to end (inclusive) fall in."""
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(Period.month(year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
