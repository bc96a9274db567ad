"""Exemptions where an NEV cannot do the job: requests and decisions, and the no-NEV catalogue.

The rule engine reads the outcome directly: ExemptionRequest.status and Acquisition.catalogue_entry_id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fleet.base import audit
from fleet.base.models import (
    Acquisition,
    Agency,
    ExemptionRequest,
    NoNevCatalogueEntry,
    PlanLine,
    PlannedExemption,
    PurchasePlan,
    User,
    utcnow,
)
from fleet.base.pagination import Page, paginate
from fleet.base.periods import Period
from fleet.base.vocab import CATEGORIES, EXEMPTION_REASONS, NEV_POWER_TYPES, is_nev
from rules.active import active_pack
from rules.engine import evaluate
from rules.packs import Rule, RulePack
from rules.results import RuleResult

MIN_REASON_LENGTH = 5
# A catalogue pattern needs this many characters besides wildcards, so it cannot match every model.
MIN_PATTERN_CHARACTERS = 2
# A request that is pending or approved blocks another one; after a rejection the agency may ask again.
OPEN_STATUSES = ("pending", "approved")
# The reason category of a request whose reason names none.
OTHER_REASON = "其他"


class ExemptionError(ValueError):
    """A request or decision that cannot be made; `code` says why (views turn it into a message)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


# --- requests and decisions ------------------------------------------------------------------------


def _open_request(session: Session, acquisition_id: int) -> ExemptionRequest | None:
    return session.scalar(
        sa.select(ExemptionRequest).where(
            ExemptionRequest.acquisition_id == acquisition_id, ExemptionRequest.status.in_(OPEN_STATUSES)
        )
    )


def covering_rules(session: Session, acquisition: Acquisition) -> list[Rule]:
    """The rules of the active pack that count the acquisition."""
    return _covering(active_pack(session), acquisition)


def _covering(pack: RulePack, acquisition: Acquisition) -> list[Rule]:
    # Through the relationship: a page of one agency's vehicles loads the agency once, not per row.
    kind = acquisition.agency.kind
    return [
        rule
        for rule in pack.rules
        if rule.covers(
            category=acquisition.category,
            agency_kind=kind,
            acquisition_kind=acquisition.acquisition_kind,
            power=acquisition.power,
            acquired_on=acquisition.acquired_on,
        )
    ]


def request_blocker(session: Session, acquisition: Acquisition) -> str | None:
    """Why no exemption can be requested for the acquisition, as an error code, or None when it can.

    An approved exemption only changes a figure where a rule covering the vehicle counts exemptions
    (the 100% rules); a share rule (50%, 60%) leaves room for non-NEVs and counts none, so a request
    there would be approved and change nothing."""
    return _blocker(session, active_pack(session), acquisition)


def requestable(session: Session, acquisitions: Iterable[Acquisition]) -> set[int]:
    """The ids of the acquisitions (a page of them) for which an exemption can be requested: those
    request_blocker() lets through, the active pack read once."""
    pack = active_pack(session)
    return {acquisition.id for acquisition in acquisitions if _blocker(session, pack, acquisition) is None}


def _blocker(session: Session, pack: RulePack, acquisition: Acquisition) -> str | None:
    if is_nev(acquisition.power):
        return "is_nev"
    if acquisition.catalogue_entry_id is not None:
        return "catalogue_exempt"
    rules = _covering(pack, acquisition)
    if not rules:
        return "not_in_scope"
    if not any(rule.exemptions_allowed for rule in rules):
        return "exemptions_not_counted"
    if _open_request(session, acquisition.id) is not None:
        return "already_open"
    return None


def request_exemption(
    session: Session,
    acquisition_id: int,
    *,
    user: User,
    reason_category: str,
    reason: str,
    scope_agency_id: int | None,
) -> ExemptionRequest:
    """Ask to take a non-NEV acquisition out of scope; one open request per acquisition."""
    query = sa.select(Acquisition).where(Acquisition.id == acquisition_id)
    if scope_agency_id is not None:
        query = query.where(Acquisition.agency_id == scope_agency_id)
    acquisition = session.scalar(query)
    if acquisition is None:
        raise ExemptionError("not_found")
    blocker = request_blocker(session, acquisition)
    if blocker:
        raise ExemptionError(blocker)
    if reason_category not in EXEMPTION_REASONS.values:
        raise ExemptionError("unknown_reason_category")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ExemptionError("reason_too_short")
    exemption = ExemptionRequest(
        acquisition_id=acquisition.id,
        reason_category=reason_category,
        reason=reason.strip(),
        requested_by_id=user.id,
        status="pending",
    )
    session.add(exemption)
    session.flush()
    audit.record(
        session,
        "exemption.request",
        user_id=user.id,
        target_type="exemption_request",
        target_id=exemption.id,
        detail={"acquisition_id": acquisition.id, "vin": acquisition.vin, "reason_category": reason_category},
    )
    return exemption


def decide_exemption(
    session: Session, request_id: int, *, user: User, approve: bool, comment: str | None, now: dt.datetime | None = None
) -> ExemptionRequest:
    """Approve or reject a pending request; the decision, who made it and when go to the audit log."""
    exemption = session.get(ExemptionRequest, request_id)
    if exemption is None:
        raise ExemptionError("not_found")
    if exemption.status != "pending":
        raise ExemptionError("not_pending")
    comment = (comment or "").strip() or None
    if not approve and comment is None:
        raise ExemptionError("comment_required")
    exemption.status = "approved" if approve else "rejected"
    exemption.decided_by_id = user.id
    exemption.decided_at = now or utcnow()
    exemption.comment = comment
    audit.record(
        session,
        "exemption.approve" if approve else "exemption.reject",
        user_id=user.id,
        target_type="exemption_request",
        target_id=exemption.id,
        detail={"acquisition_id": exemption.acquisition_id, "comment": comment},
    )
    return exemption


@dataclass(frozen=True)
class DecisionEffect:
    """One rule's result for the requesting agency over the acquisition's year: as it stands, and as it
    would be once the request is approved or rejected."""

    now: RuleResult
    approved: RuleResult
    rejected: RuleResult


def decision_effects(session: Session, exemption: ExemptionRequest) -> list[DecisionEffect]:
    """What deciding a pending request does to its agency's figures, under each rule of the active pack
    that covers the vehicle. The rule engine evaluates the agency with the request decided each way in a
    savepoint that is rolled back: the figures are the engine's own (the database keeps the counts as
    requests are decided), not a second reckoning of what an exemption takes out."""
    if exemption.status != "pending":
        return []
    acquisition = exemption.acquisition
    covering = {rule.id for rule in covering_rules(session, acquisition)}
    pack = active_pack(session)
    period = Period.year(acquisition.acquired_on.year)

    def results() -> dict[str, RuleResult]:
        found = evaluate(session, pack, period, agency_id=acquisition.agency_id)
        return {result.rule.id: result for result in found if result.rule.id in covering}

    now = results()
    decided: dict[str, dict[str, RuleResult]] = {}
    for status in ("approved", "rejected"):
        savepoint = session.begin_nested()
        try:
            exemption.status = status
            session.flush()
            decided[status] = results()
        finally:
            savepoint.rollback()
    return [DecisionEffect(now[rule], decided["approved"][rule], decided["rejected"][rule]) for rule in now]


@dataclass(frozen=True)
class ExemptionRow:
    request: ExemptionRequest
    acquisition: Acquisition
    agency_name: str


def list_requests(
    session: Session,
    *,
    status: str | None = None,
    agency_id: int | None = None,
    scope_agency_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[ExemptionRow]:
    """Requests newest first; `agency_id` filters, `scope_agency_id` limits an agency user to its own."""
    conditions = []
    if status:
        conditions.append(ExemptionRequest.status == status)
    for agency in (agency_id, scope_agency_id):
        if agency is not None:
            conditions.append(Acquisition.agency_id == agency)
    query = (
        sa.select(ExemptionRequest, Acquisition, Agency.name)
        .join(Acquisition, Acquisition.id == ExemptionRequest.acquisition_id)
        .join(Agency, Agency.id == Acquisition.agency_id)
        .where(*conditions)
        .order_by(ExemptionRequest.requested_at.desc(), ExemptionRequest.id.desc())
    )
    count = (
        sa.select(sa.func.count())
        .select_from(ExemptionRequest)
        .join(Acquisition, Acquisition.id == ExemptionRequest.acquisition_id)
        .where(*conditions)
    )
    raw = paginate(session, query, count, page, per_page)
    return Page([ExemptionRow(*row) for row in raw.items], raw.total, raw.page, raw.per_page)


def pending_count(session: Session) -> int:
    """Requests waiting for a reviewer's decision."""
    return session.scalar(sa.select(sa.func.count()).select_from(ExemptionRequest).where(ExemptionRequest.status == "pending")) or 0


def visible_request(session: Session, request_id: int, scope_agency_id: int | None) -> ExemptionRow | None:
    query = (
        sa.select(ExemptionRequest, Acquisition, Agency.name)
        .join(Acquisition, Acquisition.id == ExemptionRequest.acquisition_id)
        .join(Agency, Agency.id == Acquisition.agency_id)
        .where(ExemptionRequest.id == request_id)
    )
    if scope_agency_id is not None:
        query = query.where(Acquisition.agency_id == scope_agency_id)
    row = session.execute(query).first()
    return ExemptionRow(*row) if row else None


# --- the no-NEV catalogue --------------------------------------------------------------------------


def like_pattern(model_pattern: str) -> str:
    """The SQL LIKE pattern (escape character backslash) of a catalogue model pattern.

    Without wildcards the pattern is a substring of the brand/model; with * (any text) or ? (one
    character) it must match the whole brand/model. Users never write SQL or regular expressions."""
    escaped = model_pattern.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if "*" in escaped or "?" in escaped:
        return escaped.replace("*", "%").replace("?", "_")
    return f"%{escaped}%"


def check_catalogue_values(category: str, model_pattern: str, description: str, reason: str) -> None:
    if category not in CATEGORIES.values:
        raise ExemptionError("unknown_category")
    if len(model_pattern.strip().replace("*", "").replace("?", "")) < MIN_PATTERN_CHARACTERS:
        raise ExemptionError("pattern_too_broad")
    if not description.strip():
        raise ExemptionError("description_required")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ExemptionError("reason_too_short")


def add_catalogue_entry(
    session: Session, *, category: str, model_pattern: str, description: str, reason: str, user: User
) -> NoNevCatalogueEntry:
    check_catalogue_values(category, model_pattern, description, reason)
    entry = NoNevCatalogueEntry(
        category=category,
        model_pattern=model_pattern.strip(),
        description=description.strip(),
        reason=reason.strip(),
        created_by_id=user.id,
    )
    session.add(entry)
    session.flush()
    audit.record(
        session, "catalogue.add", user_id=user.id, target_type="catalogue_entry", target_id=entry.id,
        detail={"category": category, "model_pattern": entry.model_pattern},
    )
    refresh_catalogue_matches(session)
    return entry


def update_catalogue_entry(
    session: Session,
    entry_id: int,
    *,
    category: str,
    model_pattern: str,
    description: str,
    reason: str,
    active: bool,
    user: User,
) -> NoNevCatalogueEntry:
    entry = session.get(NoNevCatalogueEntry, entry_id)
    if entry is None:
        raise ExemptionError("not_found")
    check_catalogue_values(category, model_pattern, description, reason)
    entry.category = category
    entry.model_pattern = model_pattern.strip()
    entry.description = description.strip()
    entry.reason = reason.strip()
    entry.active = active
    audit.record(
        session, "catalogue.update", user_id=user.id, target_type="catalogue_entry", target_id=entry.id,
        detail={"category": category, "model_pattern": entry.model_pattern, "active": active},
    )
    refresh_catalogue_matches(session)
    return entry


@dataclass(frozen=True)
class CatalogueRow:
    entry: NoNevCatalogueEntry
    matches: int


def catalogue(session: Session) -> list[CatalogueRow]:
    """Every entry, active first, with how many acquisitions it exempts."""
    matches = (
        sa.select(sa.func.count())
        .where(Acquisition.catalogue_entry_id == NoNevCatalogueEntry.id)
        .correlate(NoNevCatalogueEntry)
        .scalar_subquery()
    )
    query = sa.select(NoNevCatalogueEntry, matches).order_by(
        NoNevCatalogueEntry.active.desc(), NoNevCatalogueEntry.category, NoNevCatalogueEntry.id
    )
    return [CatalogueRow(entry, count) for entry, count in session.execute(query)]


def refresh_catalogue_matches(session: Session, *, batch_id: int | None = None) -> int:
    """Point every non-NEV acquisition that matches an active catalogue entry at it (the oldest entry
    wins) and clear stale links; returns how many acquisitions changed. One set-based UPDATE; the
    importer limits it to the acquisitions its batch wrote (batch_id)."""
    entries = session.execute(
        sa.select(NoNevCatalogueEntry.id, NoNevCatalogueEntry.category, NoNevCatalogueEntry.model_pattern)
        .where(NoNevCatalogueEntry.active)
        .order_by(NoNevCatalogueEntry.id)
    ).all()
    non_nev = Acquisition.power.not_in(sorted(NEV_POWER_TYPES))
    if entries:
        wanted: sa.ColumnElement = sa.case(
            *[
                (
                    sa.and_(
                        non_nev,
                        Acquisition.category == category,
                        Acquisition.brand_model.ilike(like_pattern(pattern), escape="\\"),
                    ),
                    entry_id,
                )
                for entry_id, category, pattern in entries
            ],
            else_=sa.null(),
        )
    else:
        wanted = sa.null()
    stale = Acquisition.catalogue_entry_id.is_distinct_from(wanted)
    result = session.execute(
        sa.update(Acquisition)
        .where(stale if batch_id is None else sa.and_(stale, Acquisition.batch_id == batch_id))
        .values(catalogue_entry_id=wanted)
        .execution_options(synchronize_session=False)
    )
    # Loaded acquisitions would keep the old link otherwise.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Acquisition):
            session.expire(obj, ["catalogue_entry_id"])
    return result.rowcount


# --- decisions made before the purchase, in a purchase plan ----------------------------------------

# A purchase is the planned one when bought within this many months of the planned month (or quarter).
PLANNED_MONTHS_LEEWAY = 3
_PLAN_DECISION_COMMENT = "购置计划中已预先决定"


def months_before(day: dt.date, months: int) -> dt.date:
    """The first day of the month `months` months before day's month."""
    index = day.year * 12 + day.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def months_after_end(day: dt.date, months: int) -> dt.date:
    """The last day of the month `months` months after day's month."""
    first_after = months_before(day, -months - 1)
    return first_after - dt.timedelta(days=1)


def apply_planned_exemptions(session: Session, *, agency_id: int | None = None, batch_id: int | None = None) -> int:
    """Give each reported purchase that a decided plan line foresaw the line's decision, without
    asking again: the same agency, category and power, bought within PLANNED_MONTHS_LEEWAY months of
    the planned month, a non-NEV with no request of its own and no catalogue match. A line covers at
    most its quantity of purchases, the earliest bought first. Limited to one agency's plans, or to
    the purchases of one import batch; returns how many requests were made."""
    lines_query = (
        sa.select(PlanLine, PurchasePlan.agency_id)
        .join(PurchasePlan, PurchasePlan.id == PlanLine.plan_id)
        .where(PurchasePlan.status == "current", PlanLine.exemption_status.in_(("approved", "rejected")))
        .order_by(PlanLine.first_day, PlanLine.id)
    )
    if agency_id is not None:
        lines_query = lines_query.where(PurchasePlan.agency_id == agency_id)
    if batch_id is not None:
        lines_query = lines_query.where(
            PurchasePlan.agency_id.in_(sa.select(Acquisition.agency_id).where(Acquisition.batch_id == batch_id))
        )
    made = 0
    for line, owner in session.execute(lines_query).all():
        used = session.scalar(
            sa.select(sa.func.count()).select_from(PlannedExemption).where(PlannedExemption.plan_line_id == line.id)
        ) or 0
        if used >= line.quantity:
            continue
        purchases = session.scalars(
            sa.select(Acquisition)
            .where(
                Acquisition.agency_id == owner,
                Acquisition.category == line.category,
                Acquisition.power == line.power,
                Acquisition.power.not_in(sorted(NEV_POWER_TYPES)),
                Acquisition.catalogue_entry_id.is_(None),
                Acquisition.acquired_on.between(
                    months_before(line.first_day, PLANNED_MONTHS_LEEWAY), months_after_end(line.last_day, PLANNED_MONTHS_LEEWAY)
                ),
                ~sa.exists().where(ExemptionRequest.acquisition_id == Acquisition.id),
                *([Acquisition.batch_id == batch_id] if batch_id is not None else []),
            )
            .order_by(Acquisition.acquired_on, Acquisition.id)
            .limit(line.quantity - used)
        ).all()
        for acquisition in purchases:
            request = ExemptionRequest(
                acquisition_id=acquisition.id,
                reason_category=EXEMPTION_REASONS.lookup(line.exemption_reason or "") or OTHER_REASON,
                reason=line.exemption_reason or "",
                requested_by_id=line.exemption_requested_by_id,
                status=line.exemption_status,
                decided_by_id=line.exemption_decided_by_id,
                decided_at=line.exemption_decided_at,
                comment=line.exemption_comment or _PLAN_DECISION_COMMENT,
            )
            session.add(request)
            session.flush()
            session.add(PlannedExemption(exemption_request_id=request.id, plan_line_id=line.id))
            audit.record(
                session, "exemption.from_plan", user_id=line.exemption_decided_by_id, target_type="exemption_request",
                target_id=request.id, detail={"acquisition_id": acquisition.id, "plan_line_id": line.id, "status": request.status},
            )
            made += 1
    if made:
        session.flush()
        for obj in list(session.identity_map.values()):
            if isinstance(obj, Acquisition):
                session.expire(obj, ["exemption_state"])
    return made
