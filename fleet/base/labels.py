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


def result_status_label(status: str) -> str:
    """A compliance result's status (pass / fail / no_data) in the current language."""
    return str(RESULT_STATUSES.get(status, status))


def batch_status_label(status: str) -> str:
    return str(BATCH_STATUSES.get(status, status))


def exemption_status_label(status: str) -> str:
    return str(EXEMPTION_STATUSES.get(status, status))
