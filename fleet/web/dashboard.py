"""Dashboard pages: the city page (reviewers' home), an agency's page and a rule's page, with plotly charts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from fleet.base.db import get_session
from fleet.base.labels import RESULT_STATUSES
from fleet.base.models import Agency, ReportJob
from fleet.base.periods import Period
from fleet.base.vocab import CATEGORIES, COUNTIES, POWER_TYPES, Vocabulary
from fleet.jobs.reports import UNFINISHED, launch_report
from fleet.read import charts
from fleet.read.agency_figures import AgencyFigures
from fleet.read.dashboards import (
    LISTED,
    AcquisitionCounts,
    FigureCache,
    agency_dashboard,
    available_years,
    city_dashboard,
    data_version,
    rule_dashboard,
    still_needed,
)
from fleet.read.forecasts import advice, agency_forecast, city_forecast
from fleet.read.registration_figures import registration_view
from fleet.read.report_jobs import request_report, vehicle_rows
from fleet.read.reports import compliance_workbook
from fleet.web.auth import agency_scope, can_see_agency, role_required
from fleet.web.labels import term_label
from fleet.web.params import id_arg
from fleet.web.reporting import due_day as reporting_due_day
from rules.active import active_pack
from rules.engine import evaluate
from rules.packs import PackError, Rule, RulePack
from rules.results import RuleResult

bp = Blueprint("dashboard", __name__)
T = TypeVar("T")

# Vehicle lists on a page stop here; the vehicle list page has the rest, with filters and pages.
# Lists of agencies on the city page (late reports, not reported) stop here; the count says how many.
MAX_AGENCIES = 50
CACHE = "fleet.figure_cache"
AGENCY_FIGURES = "fleet.read.agency_figures"


@bp.record_once
def _figure_cache(state) -> None:
    state.app.extensions[CACHE] = FigureCache()
    state.app.extensions[AGENCY_FIGURES] = AgencyFigures()


def _kept() -> AgencyFigures:
    """Each agency's figures, kept by this process until the agency's tallies change."""
    return current_app.extensions[AGENCY_FIGURES]


def _figures(pack: RulePack, key: tuple, compute: Callable[[], T]) -> T:
    """A page's figures and charts, counted and drawn once per change of the data and per language
    (see fleet.read.dashboards.FigureCache)."""
    version = data_version(get_session(), pack)
    return current_app.extensions[CACHE].get((*key, str(get_locale()), version), compute)


def _with_body(template: str, figures: dict[str, Any], **context: Any) -> dict[str, Any]:
    """The figures and the part of the page drawn from them alone, rendered now to be kept with them:
    rendering it was most of a cached page's cost. The template holds nothing of the reader (no form
    token, no user), or the reader's kind is part of the figures' key."""
    return {**figures, "body": Markup(render_template(template, **figures, **context))}


def chart_text() -> charts.ChartText:
    return charts.ChartText(
        share=_("新能源占比"),
        threshold=_("达标线"),
        in_scope=_("纳入考核"),
        nev=_("新能源"),
        other=_("非新能源"),
        shortfall=_("缺口（辆）"),
        short_by=_("还差 %(count)s 辆"),
        lowest_shown=_("仅显示占比最低的 %(count)s 个单位（共 %(total)s 个）；全部单位见规则页。"),
        status=_("状态"),
        statuses={status: str(label) for status, label in RESULT_STATUSES.items()},
        month=_("月份"),
        count=_("购置数量（辆）"),
        total=_("合计"),
        category=_("车辆类别"),
        county=_("县区"),
        agency=_("单位"),
        rule=_("规则"),
        projected=_("按计划预计（年底）"),
    )


def measure_text(rules: list[Rule], text: charts.ChartText) -> charts.ChartText:
    """The chart words for what the rules measure: an emission rule counts vehicles meeting the
    standard, not NEVs, and a chart of both kinds speaks of shares meeting the rule."""
    measures = {rule.measure for rule in rules}
    if measures <= {"nev_share"}:
        return text
    if measures == {"standard_share"}:
        return dataclasses.replace(text, share=_("达到排放标准的占比"), nev=_("达标车辆"))
    return dataclasses.replace(text, share=_("达标占比"), nev=_("新能源或达标车辆"))


def rule_title(rule: Rule) -> str:
    return rule.title_in(str(get_locale()))


def _today() -> dt.date:
    return dt.date.today()


def _year(years: list[int]) -> int:
    """The year asked for, or this year; a year without data is refused with a message, not an error."""
    raw = request.args.get("year", "").strip()
    if not raw:
        return years[0]
    if raw.isdigit() and len(raw) <= 4 and int(raw) in years:
        return int(raw)
    flash(_("没有 %(year)s 年的数据，已显示 %(shown)s 年。", year=raw, shown=years[0]), "warning")
    return years[0]


def _county() -> str | None:
    raw = request.args.get("county", "").strip()
    if not raw:
        return None
    county = COUNTIES.lookup(raw)
    if county is None:
        flash(_("未知县区“%(county)s”，已显示全市。", county=raw), "warning")
    return county


def _bars(results: list[RuleResult], label: Callable[[RuleResult], str]) -> list[charts.ShareBar]:
    return [
        charts.ShareBar(
            label(r),
            None if r.share is None else float(r.share),
            r.in_scope,
            r.nev,
            r.shortfall,
            r.status,
            float(r.threshold),
        )
        for r in results
    ]


def _trend(
    key: str,
    title: str,
    series: dict[str, list[RuleResult]],
    rules: list[Rule],
    text: charts.ChartText,
    projected: dict[str, float | None] | None = None,
) -> charts.Chart:
    """The monthly shares of the rules; `projected` (rule id -> the year's share as planned) adds a
    dotted line to December."""
    text = measure_text(rules, text)
    months = list(series)
    lines = []
    for rule in rules:
        by_month = {m: next((r for r in results if r.rule.id == rule.id), None) for m, results in series.items()}
        shares = [None if r is None or r.share is None else float(r.share) for r in by_month.values()]
        lines.append(charts.TrendLine(rule_title(rule), shares, float(rule.threshold), (projected or {}).get(rule.id)))
    return charts.share_trend(key, title, months, lines, text)


def _mix_and_counties(counts: AcquisitionCounts, text: charts.ChartText, *, counties: bool) -> list[charts.Chart]:
    def terms(vocabulary: Vocabulary) -> list[tuple[str, str]]:
        return [(v, term_label(v)) for v in vocabulary.values]

    result = [
        charts.power_mix(
            "power-mix", _("各类车辆的动力类型构成"), counts.by_category_power, terms(CATEGORIES), terms(POWER_TYPES), text
        )
    ]
    if counties:
        rows = [
            charts.CountyCount(term_label(c), *counts.by_county[c]) for c in COUNTIES.values if c in counts.by_county
        ]
        result.append(charts.county_breakdown("counties", _("各县区新能源汽车购置情况"), rows, text))
    return result


@bp.get("/")
@role_required()
def city():
    if current_user.role == "agency":
        # An agency's home is its own page; the city's figures are for the bureau.
        return redirect(url_for("dashboard.agency", agency_id=current_user.agency_id))
    session = get_session()
    today = _today()
    years = available_years(session, today)
    year, county = _year(years), _county()
    pack = active_pack(session)
    deadline = current_app.config["REPORTING_DEADLINE_DAYS"]
    due_day = reporting_due_day()
    # Official statements count only the months whose monthly report is accepted.
    accepted_only = request.args.get("accepted") == "1"

    def page() -> dict[str, Any]:
        data = city_dashboard(
            session, pack, year, today=today, deadline_days=deadline, due_day=due_day, county=county, kept=_kept(),
            accepted_only=accepted_only,
        )
        text = chart_text()
        ranking = {
            o.rule.id: charts.ranked_shares(
                f"rule-{o.rule.id}", rule_title(o.rule), _bars(o.agencies, lambda r: r.agency), o.rule.threshold,
                measure_text([o.rule], text),
            )
            for o in data.rules
        }
        figures = {
            "data": data,
            "registrations": registration_view(session, pack, year, today=today, due_day=due_day, county=county),
            "ranking": ranking,
            "trend": _trend("trend", _("各规则月度达标占比"), data.trend, [o.rule for o in data.rules], text),
            "breakdown": _mix_and_counties(data.counts, text, counties=county is None),
            # A plan's upload and each decision on it change data_version: the forecast is kept with the page.
            "forecast": city_forecast(session, pack, year) if county is None else [],
        }
        return _with_body(
            "dashboard/_city_figures.html", figures, rule_title=rule_title, max_agencies=MAX_AGENCIES, deadline_days=deadline
        )

    return render_template(
        "dashboard/city.html",
        **_figures(pack, ("city", year, county, today, deadline, due_day, accepted_only), page),
        years=years,
        counties=[(c, term_label(c)) for c in COUNTIES.values],
    )


@bp.get("/agencies/<int:agency_id>")
@role_required()
def agency(agency_id: int):
    # Another agency's page answers 404 like a missing one, so an agency user learns nothing of it.
    if not can_see_agency(agency_id):
        abort(404)
    session = get_session()
    record = session.get(Agency, agency_id)
    if record is None:
        abort(404)
    today = _today()
    years = available_years(session, today)
    year = _year(years)
    pack = active_pack(session)
    deadline = current_app.config["REPORTING_DEADLINE_DAYS"]
    due_day = reporting_due_day()

    def page() -> dict[str, Any]:
        data = agency_dashboard(session, pack, record, year, today=today, deadline_days=deadline, due_day=due_day, kept=_kept())
        text = chart_text()
        # A plan's upload and each decision on it change data_version: the forecast is kept with the page.
        projections = agency_forecast(session, pack, year, agency_id)
        projected = {
            p.rule.id: None if p.projected.share is None else float(p.projected.share) for p in projections if p.forecast != "no_plan"
        }
        bars = _bars(data.results, lambda r: rule_title(r.rule))
        figures = {
            "data": data,
            "registrations": registration_view(session, pack, year, today=today, due_day=due_day, agency_id=agency_id),
            "rules_chart": charts.rule_shares(
                "rules", _("各项规则：占比与达标线"), bars, measure_text([r.rule for r in data.results], text)
            ),
            "breakdown": _mix_and_counties(data.counts, text, counties=False),
            "needed": {r.rule.qualified_id: still_needed(r) for r in data.results},
            "trend": _trend("trend", _("月度达标占比"), data.trend, [r.rule for r in data.results], text, projected),
            "forecast": projections,
        }
        return _with_body(
            "dashboard/_agency_figures.html", figures, advice=advice, rule_title=rule_title, listed=LISTED, deadline_days=deadline
        )

    # Agency users get the page without links to the bureau's rule pages: kept apart.
    key = ("agency", agency_id, year, today, deadline, due_day, current_user.role == "agency")
    return render_template("dashboard/agency.html", **_figures(pack, key, page), years=years)


@bp.get("/rules/<path:rule_id>")
@role_required("reviewer", "admin")
def rule(rule_id: str):
    session = get_session()
    pack = active_pack(session)
    try:
        found = pack.rule(rule_id)
    except PackError:
        abort(404)
    years = available_years(session, _today())
    year, county = _year(years), _county()
    deadline = current_app.config["REPORTING_DEADLINE_DAYS"]

    def page() -> dict[str, Any]:
        data = rule_dashboard(session, pack, found, year, deadline_days=deadline, county=county, kept=_kept())
        # The page's own table lists every agency, so the ranking's note points there.
        text = dataclasses.replace(
            chart_text(), lowest_shown=_("仅显示占比最低的 %(count)s 个单位（共 %(total)s 个）；全部单位见下表。")
        )
        ranking = None
        if data.overview is not None:
            ranking = charts.ranked_shares(
                "ranking", rule_title(found), _bars(data.overview.agencies, lambda r: r.agency), found.threshold,
                measure_text([found], text),
            )
        return {
            "data": data,
            "ranking": ranking,
            "trend": _trend("trend", _("全市月度达标占比"), {m: [r] for m, r in data.trend.items()}, [found], text),
            # Formatted here rather than by macros in the template: a province lists thousands of agencies.
            "statuses": text.statuses,
            "agencies": sorted(data.overview.agencies, key=lambda r: r.agency) if data.overview else [],
        }

    return render_template(
        "dashboard/rule.html",
        **_figures(pack, ("rule", found.id, year, county, deadline), page),
        years=years,
        counties=[(c, term_label(c)) for c in COUNTIES.values],
        title=rule_title(found),
        percent=charts.percent,
    )


@dataclasses.dataclass(frozen=True)
class _ReportSelection:
    period: Period
    agency_id: int | None
    county: str | None
    name: str

    @property
    def file_name(self) -> str:
        return _("%(name)s合规报告-%(period)s.xlsx", name=self.name, period=self.period.label)


def _report_selection() -> _ReportSelection:
    """The report asked for: a year (or ?month=YYYY-MM), the city's for reviewers or one agency's
    (?agency_id=); an agency user always gets its own agency's, whatever it asks for."""
    session = get_session()
    month = request.args.get("month", "").strip()
    if month:
        try:
            period = Period.parse_month(month)
        except ValueError:
            abort(400)
    else:
        period = Period.year(_year(available_years(session, _today())))
    agency_id = agency_scope() if current_user.role == "agency" else id_arg("agency_id")
    county = _county() if agency_id is None else None
    name = _("全市") if county is None else term_label(county)
    if agency_id is not None:
        record = session.get(Agency, agency_id)
        if record is None:
            abort(404)
        name = record.name
    return _ReportSelection(period, agency_id, county, name)


def _xlsx(content: bytes, name: str):
    return send_file(
        io.BytesIO(content),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=name,
    )


@bp.get("/reports/compliance.xlsx")
@role_required()
def compliance_report():
    """The compliance report, written by this request: beyond REPORT_VEHICLE_ROWS_ONLINE vehicle rows
    without its vehicle detail (summary sheets only, and it says so); the export button asks for the
    whole report through a report job instead (export_compliance_report)."""
    return _report_now(_report_selection())


def _report_now(selection: _ReportSelection, results: list[RuleResult] | None = None):
    session = get_session()
    pack = active_pack(session)
    if results is None:
        results = evaluate(session, pack, selection.period, agency_id=selection.agency_id, county=selection.county)
    rows = vehicle_rows(results, agency_id=selection.agency_id)
    content = compliance_workbook(
        session, pack, selection.period, agency_id=selection.agency_id, county=selection.county,
        locale=str(get_locale()), results=results, deadline_days=current_app.config["REPORTING_DEADLINE_DAYS"],
        vehicles=rows <= current_app.config["REPORT_VEHICLE_ROWS_ONLINE"],
    )
    return _xlsx(content, selection.file_name)


@bp.post("/reports/compliance")
@role_required()
def export_compliance_report():
    """The export button: the whole report at once when its vehicle detail is small, else a report
    job built in the background, whose page follows its progress and then offers the file."""
    selection = _report_selection()
    session = get_session()
    results = evaluate(session, active_pack(session), selection.period, agency_id=selection.agency_id, county=selection.county)
    rows = vehicle_rows(results, agency_id=selection.agency_id)
    if rows <= current_app.config["REPORT_VEHICLE_ROWS_ONLINE"]:
        return _report_now(selection, results)
    job = request_report(
        session, current_user, selection.period, agency_id=selection.agency_id, county=selection.county,
        locale=str(get_locale()), vehicle_rows=rows, file_name=selection.file_name,
    )
    session.commit()
    launch_report(job.id)
    return redirect(url_for(".report_job", job_id=job.id), 303)


def _report_job(job_id: int) -> ReportJob:
    """The job, if the user may see it: an agency user only its own agency's reports (others: 404)."""
    job = get_session().get(ReportJob, job_id)
    if job is None or not can_see_agency(job.agency_id):
        abort(404)
    return job


def _job_state(job: ReportJob) -> dict[str, Any]:
    done = job.status == "done"
    return {
        "id": job.id,
        "status": job.status,
        "progress": job.progress,
        "vehicle_rows": job.vehicle_rows,
        "file_name": job.file_name,
        "download_url": url_for(".report_job_download", job_id=job.id) if done else None,
    }


@bp.get("/reports/jobs/<int:job_id>")
@role_required()
def report_job(job_id: int):
    """The report job's progress (the page polls while it runs), then the link to the file."""
    job = _report_job(job_id)
    return render_template("dashboard/report_job.html", job=job, state=_job_state(job), unfinished=job.status in UNFINISHED)


@bp.get("/reports/jobs/<int:job_id>.json")
@role_required()
def report_job_status(job_id: int):
    return jsonify(_job_state(_report_job(job_id)))


@bp.get("/reports/jobs/<int:job_id>/download")
@role_required()
def report_job_download(job_id: int):
    job = _report_job(job_id)
    if job.status != "done":
        abort(404)
    return _xlsx(job.content, job.file_name)
