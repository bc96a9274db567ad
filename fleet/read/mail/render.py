"""The wording of the monthly messages: subject, plain text and HTML of each summary and of the city
digest, in the recipient's language, and the name and bytes of the report attached to each.

The figures come from fleet.read.mail.summaries; who gets which message from recipients.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from babel.dates import format_skeleton
from flask import render_template
from sqlalchemy.orm import Session

from fleet.base.labels import (
    batch_status_label,
    forecast_label,
    reporting_state_label,
    result_status_label,
)
from fleet.base.models import Agency, ExemptionRequest
from fleet.base.periods import Period
from fleet.base.text import _, get_locale, one_locale
from fleet.base.vocab import VOCABULARIES
from fleet.read.charts import percent as share_percent
from fleet.read.forecasts import advice
from fleet.read.mail.recipients import CITY, Delivery
from fleet.read.mail.summaries import (
    MonthResults,
    agency_summary,
    city_digest,
    month_results,
    pending_requests_by_agency,
)
from fleet.read.reports import Headline, agency_headlines, compliance_workbook
from rules.explain import VehicleLine, explain_by_agency
from rules.packs import Rule, RulePack

# Agencies whose vehicle detail is read together (SummaryWriter.upcoming): a month of a few dozen
# agencies' vehicles is held at a time.
READ_AHEAD = 50


@dataclass(frozen=True)
class Content:
    """A rendered message without its recipient and its attachment: shared by every recipient of the
    same kind and language."""

    locale: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Attachment:
    name: str
    content: bytes


def requirement_percent(value: Fraction | None) -> str:
    """A rule's requirement as the plan writes it, in whole percent (≥ 60%). A measured share is
    written as the dashboard writes it, always to one decimal (82.0%, 82.3%: fleet.read.charts.percent)."""
    if value is None:
        return "—"
    return f"{float(value):.0%}"


def bar_width(value: Fraction | None) -> int:
    if value is None:
        return 0
    return max(0, min(100, round(float(value) * 100)))


def text_bar(value: Fraction | None, width: int = 20) -> str:
    filled = round(bar_width(value) * width / 100)
    return "█" * filled + "░" * (width - filled)


def text_count_bar(passed: int, failed: int, no_data: int, width: int = 20) -> str:
    """█ passing, ▒ failing, ░ no data: the digest's chart for clients that show only plain text."""
    total = passed + failed + no_data
    if not total:
        return "░" * width
    filled = round(passed * width / total)
    failing = round((passed + failed) * width / total) - filled
    return "█" * filled + "▒" * failing + "░" * (width - filled - failing)


def need_text(rule: Rule, count: int) -> str:
    """What an agency still has to buy to meet the rule (the shortfall), in the rule's terms."""
    if rule.measure == "nev_share":
        return _("还需购置 %(count)s 辆新能源汽车", count=count)
    return _("还需 %(count)s 辆达到排放标准的车辆", count=count)


def counted_text(rule: Rule, counted: int, in_scope: int) -> str:
    """What the rule counts out of the vehicles in its scope: NEVs, or vehicles meeting the standard."""
    if rule.measure == "nev_share":
        return _("%(nev)s / %(in_scope)s 辆新能源", nev=counted, in_scope=in_scope)
    return _("%(counted)s / %(in_scope)s 辆达到排放标准", counted=counted, in_scope=in_scope)


def month_label(period: Period) -> str:
    return format_skeleton("yMMMM", period.start, locale=str(get_locale()))


def ytd_label(period: Period) -> str:
    return _("%(start)s 至 %(end)s", start=period.start.isoformat(), end=period.end.isoformat())


def _template_helpers(locale: str) -> dict[str, Callable[..., Any] | str]:
    return {
        "locale": locale,
        "title": lambda rule: rule.title_in(locale),
        "pct": share_percent,
        "required": requirement_percent,
        "counted_text": counted_text,
        "bar_width": bar_width,
        "text_bar": text_bar,
        "text_count_bar": text_count_bar,
        "status_label": result_status_label,
        "need_text": need_text,
        "advice": lambda projection: advice(projection, locale),
        "forecast_label": forecast_label,
        "batch_status": batch_status_label,
        "reporting_state": reporting_state_label,
        "colour": lambda status: {"pass": "#2e7d32", "fail": "#c62828"}.get(status, "#757575"),
        "vocab": lambda name, value: VOCABULARIES[name].english(value) if locale == "en" else value,
    }


@dataclass
class SummaryWriter:
    """Renders the month's messages, each once per kind and language however many recipients share it.

    The month is evaluated once, on the first message, for every agency; the agencies and their
    pending exemption requests are read once too, and each language's catalogue is looked up once
    per message (one_locale), not on every string. Only the messages of the
    latest kind are kept (an agency's contacts come one after the other, see planned_deliveries), so
    that a province's run holds one agency's message at a time, never all of them. The attachment is
    built only when asked for: a dry run builds none.

    `upcoming` are the agencies whose reports will be asked for, in the order they will be: their
    vehicle detail is read READ_AHEAD agencies at a time, one query per rule for all of them,
    rather than per agency (2,000 agencies' reports made 14,000 queries)."""

    session: Session
    pack: RulePack
    month: Period
    deadline_days: int
    due_day: int
    today: dt.date = field(default_factory=dt.date.today)  # the reporting states are told as of this day
    upcoming: Sequence[int] = ()
    attachments_built: int = 0  # reports built so far: none on a dry run
    _contents: dict[tuple[str, str], Content] = field(default_factory=dict)
    _attachments: dict[tuple[str, str], Attachment] = field(default_factory=dict)
    _period_labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    _vehicle_lines: dict[int, dict[str, list[VehicleLine]]] = field(default_factory=dict)

    @cached_property
    def results(self) -> MonthResults:
        return month_results(
            self.session, self.pack, self.month, deadline_days=self.deadline_days, due_day=self.due_day, today=self.today
        )

    @cached_property
    def agencies(self) -> dict[int, Agency]:
        # Held here: the session keeps no strong reference, so session.get would query each one again.
        return {agency.id: agency for agency in self.session.scalars(sa.select(Agency))}

    @cached_property
    def headlines(self) -> dict[int, Headline]:
        """Every agency's headline figures of the month for its report, counted once for all."""
        pending = {agency_id: len(requests) for agency_id, requests in self.pending.items()}
        return agency_headlines(self.session, self.month, deadline_days=self.deadline_days, pending=pending)

    @cached_property
    def pending(self) -> dict[int, list[ExemptionRequest]]:
        return pending_requests_by_agency(self.session)

    def content(self, delivery: Delivery) -> Content:
        return self._kept(self._contents, delivery, self._render)

    def attachment(self, delivery: Delivery) -> Attachment:
        """The compliance report attached to the message: the agency's, or the city's for the digest."""
        return self._kept(self._attachments, delivery, self._report)

    def _kept(self, kept: dict, delivery: Delivery, make: Callable[[Delivery], Any]) -> Any:
        key = (delivery.kind, delivery.locale)
        if key not in kept:
            for other in [k for k in kept if k[0] not in (delivery.kind, CITY)]:
                del kept[other]
            with one_locale(delivery.locale):
                kept[key] = make(delivery)
        return kept[key]

    def _render(self, delivery: Delivery) -> Content:
        if delivery.kind == CITY:
            return self._city(delivery.locale)
        return self._agency(self.agencies[delivery.agency_id], delivery.locale)

    def _report(self, delivery: Delivery) -> Attachment:
        self.attachments_built += 1
        common = {"deadline_days": self.deadline_days, "locale": delivery.locale}
        if delivery.kind == CITY:
            content = compliance_workbook(self.session, self.pack, self.month, results=self.results.month_results, **common)
            return Attachment(_("合规报告-全市-%(month)s.xlsx", month=self.month.label), content)
        agency = self.agencies[delivery.agency_id]
        # The agency's results of the month as evaluated for every agency: no evaluation of its own.
        results = list(self.results.of_agency(agency.id)[0].values())
        figures = self.headlines.get(agency.id) or Headline(0, 0, 0, self.deadline_days, 0)
        content = compliance_workbook(
            self.session, self.pack, self.month, agency_id=agency.id, results=results, figures=figures,
            vehicle_lines=self._lines_of(agency.id), **common
        )
        return Attachment(_("合规报告-%(agency)s-%(month)s.xlsx", agency=agency.name, month=self.month.label), content)

    def _lines_of(self, agency_id: int) -> dict[str, list[VehicleLine]] | None:
        """The agency's vehicle detail by rule id, read with the next agencies' when it is one of the
        upcoming ones; None (the report reads its own) otherwise."""
        if agency_id not in self._vehicle_lines:
            position = self._positions.get(agency_id)
            if position is None:
                return None
            ahead = self.upcoming[position : position + READ_AHEAD]
            self._vehicle_lines = {other: {} for other in ahead}
            for rule in self.pack.rules:
                found = explain_by_agency(self.session, self.pack, rule.qualified_id, self.month, ahead)
                for other, lines in found.items():
                    self._vehicle_lines[other][rule.id] = lines
        return self._vehicle_lines[agency_id]

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {agency_id: position for position, agency_id in enumerate(self.upcoming)}

    def _labels(self, locale: str) -> tuple[str, str]:
        """The month and the year to date as the messages in that language write them (Babel's
        date formatting is a millisecond each: once per language, not per message)."""
        if locale not in self._period_labels:
            self._period_labels[locale] = (month_label(self.month), ytd_label(self.results.ytd))
        return self._period_labels[locale]

    def _agency(self, agency: Agency, locale: str) -> Content:
        summary = agency_summary(self.session, self.results, agency, self.pending.get(agency.id, []))
        summary.month_label, summary.ytd_label = self._labels(locale)
        subject = _("新能源汽车配备情况月报：%(month)s · %(agency)s", month=summary.month_label, agency=agency.name)
        context = {"summary": summary, "subject": subject, **_template_helpers(locale)}
        return Content(
            locale=locale,
            subject=subject,
            text=render_template("email/agency_summary.txt", **context),
            html=render_template("email/agency_summary.html", **context),
        )

    def _city(self, locale: str) -> Content:
        digest = city_digest(self.session, self.results)
        digest.month_label, digest.ytd_label = self._labels(locale)
        subject = _("新能源汽车配备情况月报：%(month)s · %(agency)s", month=digest.month_label, agency=_("全市汇总"))
        context = {"digest": digest, "subject": subject, **_template_helpers(locale)}
        return Content(
            locale=locale,
            subject=subject,
            text=render_template("email/city_digest.txt", **context),
            html=render_template("email/city_digest.html", **context),
        )
