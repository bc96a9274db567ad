"""The forecast as the pages and the monthly e-mail show it: a sentence per rule, the city's rules
with how many agencies are in each state, and the projected point of the trend chart."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from fleet.base.text import _
from fleet.base.vocab import POWER_TYPES
from fleet.domain.forecast import AT_RISK, NO_PLAN, OFF_TRACK, ON_TRACK, Projection
from fleet.domain.plans import forecast
from rules.packs import RulePack

STATES = (ON_TRACK, AT_RISK, OFF_TRACK, NO_PLAN)


def _percent(projection: Projection) -> str:
    share = projection.projected.share
    return "—" if share is None else f"{float(share) * 100:.0f}%"


def _vehicles(projection: Projection, locale: str) -> str:
    """The planned non-NEVs, named by their power when they share one ("汽油车")."""
    if len(projection.non_nev_powers) == 1:
        power = projection.non_nev_powers[0]
        return (POWER_TYPES.english(power) + " vehicles") if locale == "en" else power + "车"
    return _("非新能源车")


def advice(projection: Projection, locale: str = "zh") -> str:
    """Where the rule is heading and what to change: “按此计划，年底将达到 45%：须把计划中的 6 辆汽油车中的
    2 辆改为新能源汽车。”"""
    reach = _percent(projection)
    threshold = f"{float(projection.rule.threshold) * 100:g}%"
    if projection.forecast == NO_PLAN:
        return _("尚未上传本年度购置计划，无法预测。")
    if projection.forecast == OFF_TRACK and projection.reachable:
        return _(
            "按此计划，年底将达到 %(share)s（要求 ≥ %(threshold)s）：须把计划中的 %(planned)s 辆%(vehicles)s中的 %(count)s 辆改为新能源汽车。",
            share=reach, threshold=threshold, planned=projection.planned_non_nev, vehicles=_vehicles(projection, locale),
            count=projection.nev_needed,
        )
    if projection.forecast == OFF_TRACK:
        return _(
            "按此计划，年底将达到 %(share)s（要求 ≥ %(threshold)s）：即使计划中的非新能源车全部改为新能源汽车也不够，还缺 %(count)s 辆新能源汽车。",
            share=reach, threshold=threshold, count=projection.nev_needed,
        )
    if projection.forecast == AT_RISK:
        return _("按此计划，年底将达到 %(share)s（要求 ≥ %(threshold)s）：计划中的新能源汽车须全部按计划购置。", share=reach, threshold=threshold)
    return _("按此计划，年底将达到 %(share)s（要求 ≥ %(threshold)s）。", share=reach, threshold=threshold)


@dataclass(frozen=True)
class CityForecastRow:
    city: Projection
    agencies: dict[str, int]  # forecast state -> agencies in it


def city_forecast(session: Session, pack: RulePack, year: int) -> list[CityForecastRow]:
    """Each rule's city-wide forecast and how many agencies are on track, at risk, off track or without a plan."""
    projections = forecast(session, pack, year)
    rows = []
    for city in (p for p in projections if p.agency_id is None):
        counts = dict.fromkeys(STATES, 0)
        for p in projections:
            if p.agency_id is not None and p.rule.id == city.rule.id:
                counts[p.forecast] += 1
        rows.append(CityForecastRow(city, counts))
    return rows


def agency_forecast(session: Session, pack: RulePack, year: int, agency_id: int) -> list[Projection]:
    return forecast(session, pack, year, agency_id=agency_id)


def forecasts_by_agency(session: Session, pack: RulePack, year: int) -> dict[int, list[Projection]]:
    """Every agency's agency_forecast() from one forecast of the whole city (the monthly mail's)."""
    grouped: dict[int, list[Projection]] = {}
    for projection in forecast(session, pack, year):
        if projection.agency_id is not None:
            grouped.setdefault(projection.agency_id, []).append(projection)
    return grouped
