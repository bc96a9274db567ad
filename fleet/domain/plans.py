"""Annual purchase plans (年度车辆购置计划): checked against the rules before the money is spent.

A plan is a versioned whole per agency and year: a new upload replaces it and the earlier versions are
kept. Bought vehicles consume plan lines by category and power, the oldest planned month first; a
purchase that differs from its line in power (planned NEV, bought diesel) consumes a line of its
category after that. What is left of the lines is the plan not yet bought, which fleet.domain.forecast
adds to the year's acquisitions so far to project each rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from fleet.base import audit
from fleet.base.models import (
    AcquisitionTally,
    Agency,
    PlanLine,
    PurchasePlan,
    User,
    utcnow,
)
from fleet.base.periods import Period
from fleet.base.vocab import NEV_POWER_TYPES
from fleet.domain.exemptions import (
    MIN_REASON_LENGTH,
    PLANNED_MONTHS_LEEWAY,
    ExemptionError,
    apply_planned_exemptions,
    months_after_end,
    months_before,
)
from fleet.domain.forecast import PlannedVehicles, Projection, actual_counts, project
from fleet.domain.selection import agency_rows
from imports.plans import ValidatedPlan, validate_plan
from imports.policy import full_nev_categories
from imports.stage import store_upload
from rules.engine import evaluate
from rules.packs import Rule, RulePack
from rules.results import RuleResult

# --- lines ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """A plan line as the arithmetic sees it, stored or only read from a file."""

    id: int | None
    category: str
    power: str
    acquisition_kind: str
    quantity: int
    first_day: dt.date
    last_day: dt.date
    exemption_status: str | None  # pending / approved / rejected / None

    @property
    def exemption_state(self) -> int:
        return {"approved": 2, "pending": 1}.get(self.exemption_status or "", 0)

    @property
    def nev(self) -> bool:
        return self.power in NEV_POWER_TYPES


def _line(line: PlanLine) -> Line:
    return Line(line.id, line.category, line.power, line.acquisition_kind, line.quantity, line.first_day, line.last_day, line.exemption_status)


def _same_request(a: Line | PlanLine, b: PlanLine) -> bool:
    """A line of a new version asking what a line of the version before asked (its decision carries over)."""
    return (a.category, a.power, a.acquisition_kind, a.first_day, a.last_day) == (
        b.category, b.power, b.acquisition_kind, b.first_day, b.last_day
    ) and a.quantity <= b.quantity


def _requested(pack: RulePack, row: Any) -> bool:
    """A planned non-NEV with a reason, in a category under a 100% rule that allows exemptions."""
    reason = row["exemption_reason"]
    return (
        row["power"] not in NEV_POWER_TYPES
        and isinstance(reason, str)
        and len(reason.strip()) >= MIN_REASON_LENGTH
        and row["category"] in full_nev_categories(pack)
    )


def _file_lines(validated: ValidatedPlan, pack: RulePack, earlier: Sequence[PlanLine]) -> list[tuple[dict[str, Any], Line, PlanLine | None]]:
    """The rows of a file without errors as lines, each with the decision of an identical line of the
    current version when there is one (and that line)."""
    bad = {(f.sheet, f.row) for f in validated.report.errors}
    lines = []
    for row in validated.frame.to_dict("records"):
        if (row["_sheet"], row["_row"]) in bad or not isinstance(row["planned_month"], tuple):
            continue
        first, last = row["planned_month"]
        status = "pending" if _requested(pack, row) else None
        candidate = Line(None, row["category"], row["power"], row["acquisition"], int(row["quantity"]), first, last, status)
        decided = None
        if status is not None:
            decided = next((old for old in earlier if old.exemption_status and _same_request(candidate, old)), None)
            if decided is not None:
                candidate = dataclasses.replace(candidate, exemption_status=decided.exemption_status)
        lines.append((row, candidate, decided))
    return lines


# --- plan against reality ---------------------------------------------------------------------------------


@dataclass
class LineProgress:
    """How far a line is bought: as planned, differently (power -> count), and what is left."""

    line: Line
    bought: int = 0
    differs: dict[str, int] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        return self.line.quantity - self.bought - sum(self.differs.values())


@dataclass
class PlanProgress:
    lines: list[LineProgress]
    unplanned: dict[tuple[str, str], int]  # (category, power) -> purchases no line accounts for


Bought = dict[tuple[str, str, dt.date], int]  # (category, power, first day of the month) -> vehicles


def _within_reach(line: Line, month: dt.date) -> bool:
    return months_before(line.first_day, PLANNED_MONTHS_LEEWAY) <= month <= months_after_end(line.last_day, PLANNED_MONTHS_LEEWAY)


def match(lines: Sequence[Line], bought: Bought) -> PlanProgress:
    """Bought vehicles against the plan lines: by category and power first, the oldest planned month
    first (and the earliest purchases first); then a line's category bought in another power within
    PLANNED_MONTHS_LEEWAY months of its month (planned NEV, bought diesel); the rest was not planned."""
    left = dict(sorted(bought.items(), key=lambda item: (item[0][2], item[0])))
    progress = [LineProgress(line) for line in sorted(lines, key=lambda line: (line.first_day, line.last_day, line.id or 0))]
    for p in progress:
        for key, count in left.items():
            if (key[0], key[1]) == (p.line.category, p.line.power) and count and p.remaining:
                take = min(p.remaining, count)
                p.bought += take
                left[key] -= take
    for p in progress:
        for (category, power, month), count in left.items():
            if category == p.line.category and count and p.remaining and _within_reach(p.line, month):
                take = min(p.remaining, count)
                p.differs[power] = p.differs.get(power, 0) + take
                left[(category, power, month)] -= take
    unplanned: dict[tuple[str, str], int] = {}
    for (category, power, _month), count in left.items():
        if count:
            unplanned[(category, power)] = unplanned.get((category, power), 0) + count
    return PlanProgress(progress, unplanned)


def bought_counts(session: Session, year: int, agency_id: int | None = None) -> dict[int, Bought]:
    """agency id -> (category, power, month) -> vehicles acquired in the year, from the monthly tallies."""
    period = Period.year(year)
    query = (
        sa.select(AcquisitionTally.agency_id, AcquisitionTally.category, AcquisitionTally.power, AcquisitionTally.month,
                  sa.func.sum(AcquisitionTally.acquisitions))
        .where(AcquisitionTally.month.between(period.start, period.end))
        .group_by(AcquisitionTally.agency_id, AcquisitionTally.category, AcquisitionTally.power, AcquisitionTally.month)
    )
    if agency_id is not None:
        query = query.where(AcquisitionTally.agency_id == agency_id)
    counts: dict[int, Bought] = {}
    for agency, category, power, month, total in session.execute(query):
        if total:
            counts.setdefault(agency, {})[(category, power, month)] = int(total)
    return counts


def remaining_vehicles(progress: PlanProgress) -> list[PlannedVehicles]:
    return [
        PlannedVehicles(p.line.category, p.line.acquisition_kind, p.line.power, p.line.first_day, p.line.last_day, p.line.exemption_state, p.remaining)
        for p in progress.lines
        if p.remaining > 0
    ]


# --- the pre-check ----------------------------------------------------------------------------------------


def plan_rules(pack: RulePack, year: int) -> list[Rule]:
    """The rules a plan is checked against: NEV-share rules in force in the year. A plan names no
    emission standard, so the standard-share rules wait for the purchases."""
    period = Period.year(year)
    return [r for r in pack.rules if r.measure == "nev_share" and r.effective_within(period.start, period.end) is not None]


def _agency_projections(
    rules: Sequence[Rule], agency: Agency | Any, actual: dict[str, RuleResult], planned: list[PlannedVehicles], *, has_plan: bool
) -> tuple[list[Projection], int | None]:
    """The rules that apply to the agency — every rule naming its kind, and a rule open to any kind
    when it bought or plans something in its scope — projected."""
    applicable = [
        rule
        for rule in rules
        if rule.applies_to_kind(agency.kind)
        and (
            rule.scope.agency_kinds is not None
            or rule.id in actual
            or any(rule.covers_between(v.category, v.acquisition_kind, v.power, v.first_day, v.last_day) for v in planned)
        )
    ]
    counts = {rule_id: actual_counts(result) for rule_id, result in actual.items()}
    return project(applicable, counts, planned, agency_id=agency.id, agency=agency.name, has_plan=has_plan)


def _actual_results(session: Session, pack: RulePack, year: int, agency_id: int | None) -> list[RuleResult]:
    return evaluate(session, pack, Period.year(year), agency_id=agency_id)


@dataclass
class PlanCheck:
    validated: ValidatedPlan
    projections: list[Projection]
    nev_needed_total: int | None

    @property
    def passes(self) -> bool:
        return all(p.projected.status != "fail" for p in self.projections)

    def as_json(self) -> dict[str, Any]:
        report = self.validated.report.as_json()
        return {
            "file": report["file"],
            "rows": report["rows"],
            "errors": report["errors"],
            "warnings": report["warnings"],
            "year": self.validated.year,
            "agency": self.validated.agency,
            "results": [p.as_dict(forecast=False) for p in self.projections],
            "nev_needed_total": self.nev_needed_total,
        }


def current_plan(session: Session, agency_id: int, year: int) -> PurchasePlan | None:
    return session.scalar(
        sa.select(PurchasePlan)
        .where(PurchasePlan.agency_id == agency_id, PurchasePlan.year == year, PurchasePlan.status == "current")
        .options(selectinload(PurchasePlan.lines))
    )


def check_plan(
    session: Session, path: Path, pack: RulePack, *, file_name: str, max_bytes: int, user: User | None = None
) -> PlanCheck:
    """Validate a plan file and project the year with it, storing nothing. Raises UnusableFile."""
    validated = validate_plan(
        session, path, file_name=file_name, full_nev_categories=full_nev_categories(pack), max_bytes=max_bytes, user=user
    )
    if validated.agency_id is None or validated.year is None:
        return PlanCheck(validated, [], None)
    agency = session.get(Agency, validated.agency_id)
    earlier = current_plan(session, agency.id, validated.year)
    lines = [line for _row, line, _decided in _file_lines(validated, pack, earlier.lines if earlier else [])]
    progress = match(lines, bought_counts(session, validated.year, agency.id).get(agency.id, {}))
    actual = {r.rule.id: r for r in _actual_results(session, pack, validated.year, agency.id)}
    projections, total = _agency_projections(plan_rules(pack, validated.year), agency, actual, remaining_vehicles(progress), has_plan=True)
    return PlanCheck(validated, projections, total)


# --- storing a plan ------------------------------------------------------------------------------------


def _stored(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value


def store_plan(session: Session, check: PlanCheck, content: bytes, pack: RulePack, *, user: User | None, file_name: str) -> PurchasePlan:
    """Keep the original and record the upload: a clean plan becomes the agency's current plan for
    its year (the one before it `replaced`, decisions on identical lines carried over), a plan with
    errors is kept as `invalid`. The caller commits."""
    validated = check.validated
    # An agency user's upload is its agency's, whatever the file names (another agency's rows are errors).
    owner = user.agency_id if user is not None and user.role == "agency" else validated.agency_id
    plan = PurchasePlan(
        agency_id=owner,
        year=validated.year,
        status="invalid",
        file_name=file_name[-255:],
        sha256=store_upload(session, content).sha256,
        uploaded_by_id=user.id if user is not None else None,
        rows=validated.report.rows,
        report=validated.report.to_record(),
    )
    session.add(plan)
    if validated.report.ok and validated.agency_id is not None and validated.year is not None:
        earlier = current_plan(session, validated.agency_id, validated.year)
        highest = session.scalar(
            sa.select(sa.func.max(PurchasePlan.version)).where(
                PurchasePlan.agency_id == validated.agency_id, PurchasePlan.year == validated.year
            )
        )
        if earlier is not None:
            earlier.status = "replaced"
            session.flush()
        plan.status, plan.version = "current", (highest or 0) + 1
        for row, line, carried in _file_lines(validated, pack, earlier.lines if earlier else []):
            plan.lines.append(
                PlanLine(
                    source_sheet=row["_sheet"],
                    source_row=int(row["_row"]),
                    category=line.category,
                    power=line.power,
                    acquisition_kind=line.acquisition_kind,
                    quantity=line.quantity,
                    first_day=line.first_day,
                    last_day=line.last_day,
                    county=row["county"],
                    budget=None if _stored(row["budget"]) is None else Decimal(str(round(row["budget"], 4))),
                    exemption_reason=_stored(row["exemption_reason"]),
                    remark=_stored(row["remark"]),
                    exemption_status=line.exemption_status,
                    exemption_requested_by_id=(carried.exemption_requested_by_id if carried else (user.id if user and line.exemption_status else None)),
                    exemption_decided_by_id=carried.exemption_decided_by_id if carried else None,
                    exemption_decided_at=carried.exemption_decided_at if carried else None,
                    exemption_comment=carried.exemption_comment if carried else None,
                )
            )
    session.flush()
    audit.record(
        session, "plan.upload", user_id=user.id if user is not None else None, target_type="purchase_plan", target_id=plan.id,
        detail={"agency_id": plan.agency_id, "year": plan.year, "version": plan.version, "status": plan.status},
    )
    if plan.status == "current":
        apply_planned_exemptions(session, agency_id=plan.agency_id)
    return plan


def decide_plan_exemption(
    session: Session, line_id: int, *, user: User, approve: bool, comment: str | None, now: dt.datetime | None = None
) -> PlanLine:
    """Approve or reject the exemption a current plan line asks for, before the purchase; purchases
    already reported for the line take the decision at once, later ones when they are reported."""
    line = session.get(PlanLine, line_id)
    if line is None or line.plan.status != "current":
        raise ExemptionError("not_found")
    if line.exemption_status != "pending":
        raise ExemptionError("not_pending")
    comment = (comment or "").strip() or None
    if not approve and comment is None:
        raise ExemptionError("comment_required")
    line.exemption_status = "approved" if approve else "rejected"
    line.exemption_decided_by_id = user.id
    line.exemption_decided_at = now or utcnow()
    line.exemption_comment = comment
    session.flush()
    audit.record(
        session, "plan_exemption.approve" if approve else "plan_exemption.reject", user_id=user.id,
        target_type="plan_line", target_id=line.id, detail={"plan_id": line.plan_id, "comment": comment},
    )
    apply_planned_exemptions(session, agency_id=line.plan.agency_id)
    return line


def plan_progress(session: Session, plan: PurchasePlan) -> PlanProgress:
    return match([_line(line) for line in plan.lines], bought_counts(session, plan.year, plan.agency_id).get(plan.agency_id, {}))


# --- the forecast ----------------------------------------------------------------------------------------


def _current_lines(session: Session, year: int, agency_id: int | None) -> dict[int, list[Line]]:
    query = (
        sa.select(PurchasePlan.agency_id, PlanLine)
        .join(PlanLine, PlanLine.plan_id == PurchasePlan.id)
        .where(PurchasePlan.year == year, PurchasePlan.status == "current")
    )
    if agency_id is not None:
        query = query.where(PurchasePlan.agency_id == agency_id)
    lines: dict[int, list[Line]] = {}
    for agency, line in session.execute(query):
        lines.setdefault(agency, []).append(_line(line))
    planned = sa.select(PurchasePlan.agency_id).where(PurchasePlan.year == year, PurchasePlan.status == "current")
    for agency in session.scalars(planned if agency_id is None else planned.where(PurchasePlan.agency_id == agency_id)):
        lines.setdefault(agency, [])
    return lines


def forecast(session: Session, pack: RulePack, year: int, *, agency_id: int | None = None) -> list[Projection]:
    """Each rule's city-wide forecast (agency None; left out when one agency is asked for), then each
    agency's, by rule and agency name: the year's acquisitions so far plus the current plans not yet
    bought. An agency without a current plan for the year is `no_plan`."""
    rules = plan_rules(pack, year)
    actual_all = _actual_results(session, pack, year, agency_id)
    actual: dict[int | None, dict[str, RuleResult]] = {}
    for result in actual_all:
        actual.setdefault(result.agency_id, {})[result.rule.id] = result
    plans = _current_lines(session, year, agency_id)
    bought = bought_counts(session, year, agency_id)
    agencies = agency_rows(session, agency_id=agency_id)
    remaining: dict[int, list[PlannedVehicles]] = {
        agency: remaining_vehicles(match(lines, bought.get(agency, {}))) for agency, lines in plans.items()
    }
    by_agency: list[Projection] = []
    for agency in agencies:
        if agency.id not in plans and agency.id not in actual:
            continue
        projections, _total = _agency_projections(rules, agency, actual.get(agency.id, {}), remaining.get(agency.id, []), has_plan=agency.id in plans)
        by_agency.extend(projections)
    city: list[Projection] = []
    if agency_id is None:
        kinds = {a.id: a.kind for a in agencies}
        for rule in rules:
            planned = [v for agency, vehicles in remaining.items() if rule.applies_to_kind(kinds.get(agency, "")) for v in vehicles]
            has_plan = any(rule.applies_to_kind(kinds.get(agency, "")) for agency in plans)
            counts = {rule.id: actual_counts(actual.get(None, {}).get(rule.id))}
            city.extend(project([rule], counts, planned, agency_id=None, agency=None, has_plan=has_plan)[0])
    order = {rule.id: i for i, rule in enumerate(rules)}
    by_agency.sort(key=lambda p: (order[p.rule.id], p.agency or ""))
    return city + by_agency


def forecast_json(year: int, projections: Iterable[Projection]) -> dict[str, Any]:
    """`forecast --json` and GET /api/v1/forecast."""
    return {"year": year, "results": [p.as_dict(forecast=True) for p in projections]}

