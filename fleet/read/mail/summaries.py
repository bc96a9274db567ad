"""The monthly summaries: who must be told what for a month, and the messages saying it — never the sending.

Each agency contact gets the agency's summary, each reviewer with an e-mail the city digest. A message
is identified by (month, recipient, kind) — kind "city" or "agency-<id>" — the key SentSummary
records after a successful send, so a later run of the same month skips it (never twice for the same month and recipient).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from babel.dates import format_skeleton
from flask import render_template
from sqlalchemy.orm import Session, selectinload

from fleet.base.labels import batch_status_label, result_status_label
from fleet.base.models import Acquisition, Agency, ExemptionRequest, ImportBatch, SentSummary, User, utcnow
from fleet.base.periods import Period
from fleet.base.text import LOCALES, _, force_locale, get_locale
from fleet.base.vocab import VOCABULARIES
from fleet.domain.selection import AgencyRow
from fleet.domain.timeliness import LateAcquisition, agencies_not_reported, late_acquisitions
from fleet.read.reports import compliance_workbook
from rules.engine import evaluate
from rules.packs import Rule, RulePack
from rules.results import RuleResult

CITY = "city"
XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
# The digest lists at most this many agencies behind and pending requests (the oldest first); the
# attachment and the exemptions page have them all.
DIGEST_LIST_LIMIT = 15


def agency_kind(agency_id: int) -> str:
    return f"agency-{agency_id}"


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient: the unit that is sent, recorded and retried."""

    recipient: str
    kind: str
    locale: str
    agency_id: int | None = None
    agency_name: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"recipient": self.recipient, "kind": self.kind, "locale": self.locale, "agency": self.agency_name}


# --- who must be told ---------------------------------------------------------------------------


def planned_deliveries(session: Session) -> tuple[list[Delivery], list[Agency]]:
    """Every message a month's run sends (before skipping those already sent), and the agencies that
    cannot be told because they have no contact e-mail."""
    deliveries: list[Delivery] = []
    silent: list[Agency] = []
    seen: set[tuple[str, str]] = set()

    def add(delivery: Delivery) -> None:
        key = (delivery.recipient.casefold(), delivery.kind)
        if key not in seen:
            seen.add(key)
            deliveries.append(delivery)

    english = {
        (u.agency_id, u.email.casefold())
        for u in session.scalars(sa.select(User).where(User.email.is_not(None), User.locale == "en", User.active))
    }
    for agency in session.scalars(sa.select(Agency).order_by(Agency.name)):
        emails = [e.strip() for e in agency.contact_emails or [] if e and e.strip()]
        if not emails:
            silent.append(agency)
        for email in emails:
            # Contacts are addresses, not accounts: English only when that address is an English user's.
            locale = "en" if (agency.id, email.casefold()) in english else "zh"
            add(Delivery(email, agency_kind(agency.id), locale, agency.id, agency.name))
    reviewers = sa.select(User).where(User.role == "reviewer", User.active, User.email.is_not(None)).order_by(User.id)
    for user in session.scalars(reviewers):
        if user.email.strip():
            add(Delivery(user.email.strip(), CITY, user.locale if user.locale in LOCALES else "zh"))
    return deliveries, silent


def sent_keys(session: Session, month: str) -> set[tuple[str, str]]:
    rows = session.execute(sa.select(SentSummary.recipient, SentSummary.kind).where(SentSummary.month == month))
    return {(recipient.casefold(), kind) for recipient, kind in rows}


def should_notify(delivery: Delivery, already_sent: set[tuple[str, str]], *, resend: bool = False) -> bool:
    return resend or (delivery.recipient.casefold(), delivery.kind) not in already_sent


def record_sent(session: Session, month: str, delivery: Delivery) -> None:
    """Remember that the message went out; a --resend of a recorded message updates the time."""
    existing = session.scalar(
        sa.select(SentSummary).where(
            SentSummary.month == month, SentSummary.recipient == delivery.recipient, SentSummary.kind == delivery.kind
        )
    )
    if existing is None:
        session.add(SentSummary(month=month, recipient=delivery.recipient, kind=delivery.kind))
    else:
        existing.sent_at = utcnow()


# --- what they are told ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleLine:
    rule: Rule
    month: RuleResult | None  # None when the rule came into force after the month
    ytd: RuleResult


@dataclass(frozen=True)
class Need:
    rule: Rule
    shortfall: int


@dataclass
class AgencySummary:
    agency: Agency
    month: Period
    ytd: Period
    lines: list[RuleLine]
    pending: list[ExemptionRequest]
    reported: bool
    late: list[LateAcquisition]
    deadline_days: int
    month_label: str = ""
    ytd_label: str = ""

    @property
    def needs(self) -> list[Need]:
        return [Need(line.rule, line.ytd.shortfall) for line in self.lines if line.ytd.shortfall]


@dataclass(frozen=True)
class StatusCounts:
    passed: int = 0
    failed: int = 0
    no_data: int = 0


@dataclass(frozen=True)
class RuleCounts:
    rule: Rule
    month: StatusCounts
    ytd: StatusCounts


@dataclass
class CityDigest:
    month: Period
    ytd: Period
    rule_counts: list[RuleCounts]
    behind: list[RuleResult]
    uploads: list[ImportBatch]
    pending: list[ExemptionRequest]  # the oldest DIGEST_LIST_LIMIT
    pending_total: int
    not_reported: list[AgencyRow]
    late_count: int
    deadline_days: int
    month_label: str = ""
    ytd_label: str = ""


def year_to_date(month: Period) -> Period:
    return Period.year_to_date(month.end)


def _pending_requests(session: Session, agency_id: int | None = None) -> list[ExemptionRequest]:
    query = (
        sa.select(ExemptionRequest)
        .join(ExemptionRequest.acquisition)
        .where(ExemptionRequest.status == "pending")
        .options(selectinload(ExemptionRequest.acquisition).selectinload(Acquisition.agency))
        .order_by(ExemptionRequest.requested_at, ExemptionRequest.id)
    )
    if agency_id is not None:
        query = query.where(Acquisition.agency_id == agency_id)
    return list(session.scalars(query))


def _by_rule(results: list[RuleResult]) -> dict[str, RuleResult]:
    return {r.rule.id: r for r in results}


def agency_summary(
    session: Session, pack: RulePack, month: Period, agency: Agency, *, deadline_days: int
) -> AgencySummary:
    """An agency's month: each applicable rule for the month and the year to date, reporting, exemptions."""
    ytd = year_to_date(month)
    # The engine decides which rules apply to the agency (its kind, or what it bought this year).
    month_results = _by_rule(evaluate(session, pack, month, agency_id=agency.id))
    ytd_results = _by_rule(evaluate(session, pack, ytd, agency_id=agency.id))
    lines = [RuleLine(rule, month_results.get(rule.id), ytd_results[rule.id]) for rule in pack.rules if rule.id in ytd_results]
    not_reported = {a.id for a in agencies_not_reported(session, month)}
    return AgencySummary(
        agency=agency,
        month=month,
        ytd=ytd,
        lines=lines,
        pending=_pending_requests(session, agency.id),
        reported=agency.id not in not_reported,
        late=late_acquisitions(session, month, deadline_days=deadline_days, agency_id=agency.id),
        deadline_days=deadline_days,
    )


def _counts(results: list[RuleResult]) -> StatusCounts:
    statuses = [r.status for r in results]
    return StatusCounts(statuses.count("pass"), statuses.count("fail"), statuses.count("no_data"))


def city_digest(session: Session, pack: RulePack, month: Period, *, deadline_days: int) -> CityDigest:
    """The bureau's month: rules × pass/fail, who is furthest behind, uploads, exemptions, silence."""
    ytd = year_to_date(month)
    month_results = [r for r in evaluate(session, pack, month) if r.agency_id is not None]
    ytd_results = [r for r in evaluate(session, pack, ytd) if r.agency_id is not None]
    rule_counts = [
        RuleCounts(
            rule,
            _counts([r for r in month_results if r.rule.id == rule.id]),
            _counts([r for r in ytd_results if r.rule.id == rule.id]),
        )
        for rule in pack.rules
    ]
    pending = _pending_requests(session)
    behind = sorted((r for r in ytd_results if r.shortfall), key=lambda r: (-r.shortfall, r.agency, r.rule.id))
    uploads = session.scalars(
        sa.select(ImportBatch)
        .where(ImportBatch.uploaded_at >= _midnight(month.start), ImportBatch.uploaded_at < _midnight(month.end, 1))
        .options(selectinload(ImportBatch.agency))
        .order_by(ImportBatch.uploaded_at, ImportBatch.id)
    )
    return CityDigest(
        month=month,
        ytd=ytd,
        rule_counts=rule_counts,
        behind=behind[:DIGEST_LIST_LIMIT],
        uploads=list(uploads),
        pending=pending[:DIGEST_LIST_LIMIT],
        pending_total=len(pending),
        not_reported=list(agencies_not_reported(session, month)),
        late_count=len(late_acquisitions(session, month, deadline_days=deadline_days)),
        deadline_days=deadline_days,
    )


def _midnight(day: dt.date, plus_days: int = 0) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=plus_days), dt.time())


# --- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """A rendered message without its recipient: shared by every recipient of the same kind and language."""

    locale: str
    subject: str
    text: str
    html: str
    attachment_name: str
    attachment: bytes


def percent(value: Fraction | None) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.1f}%".replace(".0%", "%")


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
    """What an agency still has to buy to meet the rule (the result's shortfall), in the rule's terms."""
    if rule.measure == "nev_share":
        return _("还需购置 %(count)s 辆新能源汽车", count=count)
    return _("还需 %(count)s 辆达到排放标准的车辆", count=count)


def month_label(period: Period) -> str:
    return format_skeleton("yMMMM", period.start, locale=str(get_locale()))


def ytd_label(period: Period) -> str:
    return _("%(start)s 至 %(end)s", start=period.start.isoformat(), end=period.end.isoformat())


def _template_helpers(locale: str) -> dict[str, Callable[..., Any] | str]:
    return {
        "locale": locale,
        "title": lambda rule: rule.title_in(locale),
        "pct": percent,
        "bar_width": bar_width,
        "text_bar": text_bar,
        "text_count_bar": text_count_bar,
        "status_label": result_status_label,
        "need_text": need_text,
        "batch_status": batch_status_label,
        "colour": lambda status: {"pass": "#2e7d32", "fail": "#c62828"}.get(status, "#757575"),
        "vocab": lambda name, value: VOCABULARIES[name].english(value) if locale == "en" else value,
    }


@dataclass
class SummaryWriter:
    """Renders each month's messages once per kind and language, however many recipients share them."""

    session: Session
    pack: RulePack
    month: Period
    deadline_days: int
    _cache: dict[tuple[str, str], Content] = field(default_factory=dict)

    def content(self, delivery: Delivery) -> Content:
        key = (delivery.kind, delivery.locale)
        if key not in self._cache:
            with force_locale(delivery.locale):
                if delivery.kind == CITY:
                    self._cache[key] = self._city(delivery.locale)
                else:
                    agency = self.session.get(Agency, delivery.agency_id)
                    self._cache[key] = self._agency(agency, delivery.locale)
        return self._cache[key]

    def _agency(self, agency: Agency, locale: str) -> Content:
        summary = agency_summary(self.session, self.pack, self.month, agency, deadline_days=self.deadline_days)
        summary.month_label, summary.ytd_label = month_label(self.month), ytd_label(summary.ytd)
        subject = _("新能源汽车配备情况月报：%(month)s · %(agency)s", month=summary.month_label, agency=agency.name)
        context = {"summary": summary, "subject": subject, **_template_helpers(locale)}
        workbook = compliance_workbook(self.session, self.pack, self.month, agency_id=agency.id, locale=locale)
        return Content(
            locale=locale,
            subject=subject,
            text=render_template("email/agency_summary.txt", **context),
            html=render_template("email/agency_summary.html", **context),
            attachment_name=_("合规报告-%(agency)s-%(month)s.xlsx", agency=agency.name, month=self.month_key),
            attachment=workbook,
        )

    def _city(self, locale: str) -> Content:
        digest = city_digest(self.session, self.pack, self.month, deadline_days=self.deadline_days)
        digest.month_label, digest.ytd_label = month_label(self.month), ytd_label(digest.ytd)
        subject = _("新能源汽车配备情况月报：%(month)s · %(agency)s", month=digest.month_label, agency=_("全市汇总"))
        context = {"digest": digest, "subject": subject, **_template_helpers(locale)}
        workbook = compliance_workbook(self.session, self.pack, self.month, locale=locale)
        return Content(
            locale=locale,
            subject=subject,
            text=render_template("email/city_digest.txt", **context),
            html=render_template("email/city_digest.html", **context),
            attachment_name=_("合规报告-全市-%(month)s.xlsx", month=self.month_key),
            attachment=workbook,
        )

    @property
    def month_key(self) -> str:
        return self.month.label


def build_message(content: Content, *, sender: str, to: str) -> EmailMessage:
    """The MIME message: plain text first, then HTML (clients show the last part they understand), and
    the report attached."""
    message = EmailMessage()
    message["Subject"] = content.subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    # Out-of-office replies and the like should not answer an automatic message (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    message.add_attachment(
        content.attachment, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=content.attachment_name
    )
    # Set last: turning the message multipart moves Content-* headers into the first part.
    message["Content-Language"] = content.locale
    return message
