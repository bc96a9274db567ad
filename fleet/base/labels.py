"""Display labels of the states the product shows everywhere: pages, e-mails, reports, the command line."""

from __future__ import annotations

from fleet.base.text import _l

RESULT_STATUSES = {"pass": _l("达标"), "fail": _l("未达标"), "no_data": _l("无数据")}
BATCH_STATUSES = {
    "received": _l("排队中"),
    "validating": _l("核查中"),
    "invalid": _l("有错误"),
    "valid": _l("待确认导入"),
    "importing": _l("导入中"),
    "committed": _l("已导入"),
    "failed": _l("导入失败"),
}
EXEMPTION_STATUSES = {"pending": _l("待审核"), "approved": _l("已批准"), "rejected": _l("已驳回")}
# The monthly reporting cycle's states (fleet.domain.reporting).
REPORTING_STATES = {
    "open": _l("待报送"),
    "submitted": _l("已报送"),
    "nil": _l("零报告"),
    "returned": _l("已退回"),
    "accepted": _l("已通过"),
    "missing": _l("逾期未报"),
}
FORECASTS = {"on_track": _l("按计划可达标"), "at_risk": _l("有风险"), "off_track": _l("按计划不达标"), "no_plan": _l("无购置计划")}


def result_status_label(status: str) -> str:
    """A compliance result's status (pass / fail / no_data) in the current language."""
    return str(RESULT_STATUSES.get(status, status))


def batch_status_label(status: str) -> str:
    return str(BATCH_STATUSES.get(status, status))


def exemption_status_label(status: str) -> str:
    return str(EXEMPTION_STATUSES.get(status, status))


def reporting_state_label(state: str) -> str:
    return str(REPORTING_STATES.get(state, state))


def forecast_label(state: str) -> str:
    """A forecast state (on_track / at_risk / off_track / no_plan) in the current language."""
    return str(FORECASTS.get(state, state))
