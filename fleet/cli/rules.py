"""Commands of the rules area: `flask compliance` (results of a period) and `flask rules check` (pack validation)."""

from __future__ import annotations

import datetime as dt
import sys
import unicodedata
from pathlib import Path
from typing import NoReturn

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from fleet.base import db
from fleet.base.labels import result_status_label
from fleet.base.periods import Period
from fleet.base.text import _
from fleet.base.vocab import ACQUISITION_KINDS, AGENCY_KINDS, CATEGORIES, POWER_TYPES, Vocabulary
from fleet.cli.console import emit_json, fail
from fleet.cli.reporting import due_day as reporting_due_day
from fleet.domain.agency_names import match_agency, not_registered
from fleet.domain.registrations.figures import with_registrations, year_of
from fleet.domain.registrations.reconcile import reconcile
from rules.active import active_pack_id
from rules.engine import evaluate
from rules.packs import PACKS_DIR, PackError, RulePack, check_packs, get_pack, load_pack, threshold_text
from rules.results import RuleResult, compliance_json


def _refuse(message: str, as_json: bool) -> NoReturn:
    if as_json:
        emit_json({"error": message})
        sys.exit(1)
    fail(message)


def _width(text: str) -> int:
    # Chinese characters take two columns in a terminal.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _result_rows(results: list[RuleResult]) -> list[list[str]]:
    rows = []
    for r in results:
        rows.append(
            [
                r.rule.qualified_id,
                r.agency or _("全市合计"),
                str(r.in_scope),
                str(r.nev),
                str(r.exempt),
                str(r.pending),
                "-" if r.share is None else f"{float(r.share) * 100:.1f}%",
                threshold_text(r.threshold),
                result_status_label(r.status),
                str(r.shortfall),
            ]
        )
    return rows


@click.command("compliance")
@click.option("--year", type=int, required=True, help="Calendar year, YYYY.")
@click.option("--month", "month_text", help="One month of that year, YYYY-MM.")
@click.option("--agency", "agency_name", help="One agency, by its registered name.")
@click.option("--pack", "pack_id", help="A rule pack id (default: the active pack).")
@click.option("--accepted-only", is_flag=True, help="Count only the months whose monthly report is accepted (official statements).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--with-registrations", "registrations", is_flag=True,
    help="Count as the registration record says: unreported registrations in scope, power types as registered.",
)
@with_appcontext
def compliance_command(
    year: int, month_text: str | None, agency_name: str | None, pack_id: str | None, accepted_only: bool, as_json: bool, registrations: bool
) -> None:
    """Compliance of each rule, city-wide and per agency, for a year or a month."""
    session = db.get_session()
    if month_text:
        try:
            period = Period.parse_month(month_text)
        except ValueError:
            _refuse(_("--month 应写作 YYYY-MM，收到 %(value)s", value=month_text), as_json)
        if period.start.year != year:
            _refuse(_("--month %(month)s 不在 --year %(year)s 内", month=month_text, year=year), as_json)
    else:
        period = Period.year(year)
    try:
        pack = get_pack(pack_id or active_pack_id(session))
    except PackError as exc:
        _refuse(str(exc), as_json)
    agency_id = None
    if agency_name:
        match = match_agency(session, agency_name)
        if not match.found:
            _refuse(not_registered(match), as_json)
        agency_id = match.agency_id
    if registrations:
        found = reconcile(session, year_of(period), today=dt.date.today(), due_day=reporting_due_day())
        results = with_registrations(session, pack, period, found.findings, agency_id=agency_id, accepted_only=accepted_only)
    else:
        results = evaluate(session, pack, period, agency_id=agency_id, accepted_only=accepted_only)
    if as_json:
        payload = compliance_json(pack, period, results)
        if accepted_only:
            payload["accepted_only"] = True
        if registrations:
            payload["view"] = "registrations"
        emit_json(payload)
        return
    view = "  " + _("（按登记信息）") if registrations else ""
    click.echo(f"{pack.title['zh']}  ({pack.id})  {period.label}" + (_("（仅计已通过审核的月份）") if accepted_only else "") + view)
    if not results:
        click.echo(_("该单位在此期间没有适用的规则。") if agency_id else _("该期间内没有生效的规则。"))
        return
    header = [_("规则"), _("单位"), _("范围内"), _("新能源"), _("豁免"), _("待审"), _("比例"), _("要求"), _("状态"), _("缺口")]
    click.echo(_table(header, _result_rows(results)))


rules_cli = AppGroup("rules", help="Rule packs.")


def _in_order(values: frozenset[str], vocabulary: Vocabulary) -> list[str]:
    # The vocabularies' own order, as the bureau lists them.
    return [v for v in vocabulary.values if v in values]


def _describe(pack: RulePack) -> list[str]:
    lines = [f"{pack.id}  {pack.title['zh']}" + ("  [" + _("示例") + "]" if pack.example else "")]
    lines.append("  " + _("来源：%(document)s（%(date)s）", document=pack.source, date=pack.source_date.isoformat()))
    any_kind = _("任何单位")
    rows = []
    for rule in pack.rules:
        measure = _("新能源比例") if rule.measure == "nev_share" else _("排放标准 %(standards)s", standards="/".join(sorted(rule.standards)))
        rows.append(
            [
                rule.qualified_id,
                "、".join(_in_order(rule.scope.categories, CATEGORIES)),
                "、".join(_in_order(rule.scope.agency_kinds, AGENCY_KINDS)) if rule.scope.agency_kinds else any_kind,
                "/".join(_in_order(rule.scope.acquisition_kinds, ACQUISITION_KINDS)),
                f"{measure} ≥ {threshold_text(rule.threshold)}",
                _("强制") if rule.level == "mandatory" else _("原则上"),
                _("可豁免") if rule.exemptions_allowed else _("不豁免"),
                f"{rule.effective_from.isoformat()} ~ {rule.effective_to.isoformat() if rule.effective_to else ''}",
            ]
        )
    lines += ["  " + line for line in _table([_("规则"), _("车辆类别"), _("单位类型"), _("购置方式"), _("要求"), _("级别"), _("豁免"), _("生效")], rows).splitlines()]
    return lines


def _pack_json(pack: RulePack) -> dict:
    return {
        "id": pack.id,
        "path": str(pack.path),
        "title": pack.title,
        "example": pack.example,
        "source": pack.source,
        "source_date": pack.source_date.isoformat(),
        "rules": [
            {
                "rule": rule.qualified_id,
                "title": rule.title,
                "clause": rule.clause,
                "categories": _in_order(rule.scope.categories, CATEGORIES),
                "agency_kinds": None if rule.scope.agency_kinds is None else _in_order(rule.scope.agency_kinds, AGENCY_KINDS),
                "acquisition_kinds": _in_order(rule.scope.acquisition_kinds, ACQUISITION_KINDS),
                "power_types": None if rule.scope.power_types is None else _in_order(rule.scope.power_types, POWER_TYPES),
                "measure": rule.measure,
                "standards": sorted(rule.standards),
                "threshold": threshold_text(rule.threshold),
                "level": rule.level,
                "exemptions_allowed": rule.exemptions_allowed,
                "effective_from": rule.effective_from.isoformat(),
                "effective_to": rule.effective_to.isoformat() if rule.effective_to else None,
            }
            for rule in pack.rules
        ],
    }


@rules_cli.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def rules_check(path: Path | None, as_json: bool) -> None:
    """Validate a rule pack file (or every pack of a directory, by default rules/packs) and print its rules."""
    path = path or PACKS_DIR
    if not path.exists():
        _refuse(_("%(path)s：文件不存在", path=str(path)), as_json)
    if path.is_dir():
        found, errors = check_packs(path)
        packs = list(found.values())
    else:
        packs, errors = [], []
        try:
            packs.append(load_pack(path))
        except PackError as exc:
            errors.append(exc)
    if not packs and not errors:
        _refuse(_("%(path)s：没有规则包（*.yaml）", path=str(path)), as_json)
    if as_json:
        emit_json({"packs": [_pack_json(p) for p in packs], "errors": [str(e) for e in errors]})
    else:
        for pack in packs:
            click.echo("\n".join(_describe(pack)))
        for error in errors:
            click.echo(_("错误：%(message)s", message=str(error)), err=True)
    if errors:
        sys.exit(1)


def init_app(app: Flask) -> None:
    """Check the rule packs at start-up and register the `compliance` and `rules` commands.

    A broken pack is refused and logged with its file, rule and field; the app still starts so that
    `flask rules check` can say what is wrong and the other packs stay usable."""
    packs, errors = check_packs()
    for error in errors:
        app.logger.error("rule pack refused: %s", error)
    if app.config.get("RULE_PACK") not in packs:
        app.logger.error("the configured rule pack %r is not available", app.config.get("RULE_PACK"))
    app.cli.add_command(compliance_command)
    app.cli.add_command(rules_cli)
