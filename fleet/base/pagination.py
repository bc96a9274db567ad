"""Pagination shared by every list: a page of rows and the links around it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    def window(self, around: int = 2) -> list[int | None]:
        """Page numbers to link: the first, the last and a few around the current; None marks a gap."""
        wanted = {1, self.pages, *range(self.page - around, self.page + around + 1)}
        numbers = sorted(n for n in wanted if 1 <= n <= self.pages)
        shown: list[int | None] = []
        for n in numbers:
            if shown and n - shown[-1] > 1:  # type: ignore[operator]
                shown.append(None)
            shown.append(n)
        return shown


def paginate(session: Session, query: sa.Select, count_query: sa.Select, page: int, per_page: int) -> Page:
    """Run a page of `query` and the total of `count_query` (which must select a count)."""
    total = session.scalar(count_query) or 0
    page = max(1, page)
    rows = list(session.execute(query.limit(per_page).offset((page - 1) * per_page)))
    return Page(items=rows, total=total, page=page, per_page=per_page)
