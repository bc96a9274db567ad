"""The validation report: every problem found in an upload as data (a Finding), with stable codes.

Errors are data, as in frictionless: each code has a severity, a one-line description (CODES, the
table the README documents) and a message template. Messages are written in Chinese and name the
sheet, row and column the way the user sees them; English comes from the translation catalog.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from fleet.base.text import LazyString, _l

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Code:
    severity: str
    description: LazyString
    template: LazyString


# code -> severity, description, message template. The template's named parameters are filled from
# the finding: value (as written), plus what the code names (choices, first_row, owner, …).
CODES: dict[str, Code] = {
    "missing_column": Code(ERROR, _l("缺少必填列"), _l("缺少必填列")),
    "ambiguous_header": Code(ERROR, _l("表头可能指两个不同的列，无法判断"), _l("表头含义不明确")),
    "unknown_column": Code(WARNING, _l("无法识别的列，已忽略"), _l("无法识别的列，已忽略")),
    "duplicate_column": Code(WARNING, _l("两列都像同一列，只使用其中一列"), _l("与另一列重复，已忽略")),
    "price_unit_converted": Code(WARNING, _l("价格不是按万元填写，已换算为万元"), _l("已换算为万元")),
    "value_from_title": Code(WARNING, _l("表中缺少的列取自表头上方的说明（如 填报单位：…）"), _l("已取自表头上方的说明")),
    "sheet_skipped": Code(WARNING, _l("工作表中没有可识别的表头，已跳过"), _l("没有可识别的表头，已跳过")),
    "required": Code(ERROR, _l("必填项为空"), _l("必须填写")),
    "vin_format": Code(
        ERROR,
        _l("车辆识别代号不是 17 位数字和字母（不含 I、O、Q）"),
        _l("“%(value)s”不是有效的车辆识别代号：应为 17 位数字和大写字母，不含 I、O、Q"),
    ),
    "vin_check_digit": Code(
        ERROR,
        _l("车辆识别代号第 9 位校验位不正确（国产车为错误，进口车为警告）"),
        _l("“%(value)s”的第 9 位校验位应为 %(expected)s，请核对车辆识别代号"),
    ),
    "plate_format": Code(ERROR, _l("号牌号码不符合 GA 36 格式"), _l("“%(value)s”不是有效的号牌号码")),
    "plate_not_local": Code(
        WARNING, _l("号牌不是本地（豫J）号牌"), _l("号牌“%(value)s”不是本地号牌，请确认车辆登记地")
    ),
    "plate_power_mismatch": Code(
        ERROR,
        _l("号牌种类与动力类型不符"),
        _l("号牌“%(value)s”与动力类型“%(power)s”不符（纯电动用 D 类新能源号牌，其他新能源用 F 类，燃油车用普通号牌）"),
    ),
    "unknown_category": Code(
        ERROR, _l("车辆类别不在可选范围内"), _l("“%(value)s”不是有效的车辆类别，可选：%(choices)s")
    ),
    "unknown_power_type": Code(
        ERROR, _l("动力类型不在可选范围内"), _l("“%(value)s”不是有效的动力类型，可选：%(choices)s")
    ),
    "power_ambiguous": Code(
        ERROR,
        _l("“混合动力”无法区分插电式混合动力与油电混合"),
        _l("“%(value)s”无法区分插电式混合动力与油电混合：请填写其中之一，或填写号牌号码"),
    ),
    "unknown_acquisition_type": Code(
        ERROR, _l("购置方式不是“新增”或“更新”"), _l("“%(value)s”不是有效的购置方式，可选：%(choices)s")
    ),
    "unknown_county": Code(
        ERROR, _l("所属县区不在可选范围内"), _l("“%(value)s”不是有效的县区，可选：%(choices)s")
    ),
    "unknown_agency": Code(
        ERROR, _l("单位未在单位名录中登记"), _l("单位“%(value)s”未在单位名录中登记，请核对名称或联系管理员")
    ),
    "agency_from_user": Code(
        WARNING,
        _l("单位用户的文件中单位名称为空（或没有单位名称列），按本单位填入"),
        _l("单位名称为空，按本单位（%(own)s）填入"),
    ),
    "agency_not_allowed": Code(
        ERROR,
        _l("单位用户上传了其他单位的车辆"),
        _l("只能上传本单位（%(own)s）的车辆，不能上传“%(value)s”的车辆"),
    ),
    "date_invalid": Code(ERROR, _l("购置日期不是有效日期"), _l("“%(value)s”不是有效日期")),
    "date_out_of_range": Code(
        ERROR,
        _l("购置日期早于 2015 年或晚于今天"),
        _l("日期 %(value)s 应在 2015-01-01 至今天（%(today)s）之间"),
    ),
    "price_invalid": Code(ERROR, _l("购置价格不是大于等于 0 的数字"), _l("“%(value)s”不是大于等于 0 的数字")),
    "credit_code_invalid": Code(
        ERROR, _l("统一社会信用代码无效（GB 32100 校验）"), _l("“%(value)s”不是有效的统一社会信用代码")
    ),
    "duplicate_vin": Code(
        ERROR,
        _l("同一文件中车辆识别代号重复（第二次及以后出现）"),
        _l("车辆识别代号“%(value)s”与工作表“%(first_sheet)s”第 %(first_row)s 行重复"),
    ),
    "vin_registered_elsewhere": Code(
        ERROR,
        _l("车辆识别代号已登记在其他单位名下"),
        _l("车辆识别代号“%(value)s”已登记在“%(owner)s”名下"),
    ),
    "exemption_reason_required": Code(
        ERROR,
        _l("须全部选用新能源汽车的类别中，非新能源车辆未填写原因（至少 5 个字）"),
        _l("%(category)s须全部选用新能源汽车：非新能源车辆须填写未选用新能源原因（至少 5 个字）"),
    ),
    # A warning instead when the user chose to import the other rows: the row is then left out.
    "month_locked": Code(
        ERROR,
        _l("购置日期所在月份的月报已通过审核并锁定，不能新增或修改该月的购置"),
        _l("%(month)s 的月报已通过审核并锁定，不能新增或修改该月的购置（如需更正，请联系审核员重新开放该月）"),
    ),
    # The annual purchase plan (imports.plans).
    "quantity_invalid": Code(ERROR, _l("数量不是大于等于 1 的整数"), _l("“%(value)s”不是有效的数量：应为大于等于 1 的整数")),
    "month_invalid": Code(
        ERROR,
        _l("计划购置月份不是月份或季度"),
        _l("“%(value)s”不是有效的月份或季度，请写作 2026-12、2026年12月、2026Q4 或 2026年第四季度"),
    ),
    "budget_invalid": Code(ERROR, _l("预算不是大于等于 0 的数字"), _l("“%(value)s”不是大于等于 0 的数字")),
    "plan_agency_mixed": Code(
        ERROR, _l("一份计划只能属于一个单位"), _l("计划属于“%(agency)s”，此行是“%(value)s”：每个单位单独上传计划")
    ),
    "plan_year_mixed": Code(
        ERROR, _l("一份计划只能属于一个年度"), _l("计划年度为 %(year)s，此行是 %(value)s：每个年度单独上传计划")
    ),
}

# `required` on the emission standard is conditional; its message says when it applies.
EMISSION_REQUIRED = _l("燃油%(category)s必须填写排放标准（如国六）")
# An unknown agency with registered names like it (fleet.domain.agency_names), and an agency user's
# sheet without the 单位名称 column.
UNKNOWN_AGENCY_SUGGESTED = _l("单位“%(value)s”未在单位名录中登记。是否指：%(suggested)s？")
AGENCY_COLUMN_FROM_USER = _l("表中没有单位名称列，各行按本单位（%(own)s）填入")


def severity_of(code: str) -> str:
    return CODES[code].severity


def shown(value: Any) -> str | None:
    """A cell value as the report shows it: text, dates as ISO dates, whole numbers without .0."""
    if value is None or pd.isna(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# Where a finding is, before what it says: the sheet, the row and the column as the user wrote it.
_AT_SHEET = _l("工作表“%(sheet)s”：%(problem)s")
_AT_ROW = _l("工作表“%(sheet)s”第 %(row)s 行：%(problem)s")
_AT_CELL = _l("工作表“%(sheet)s”第 %(row)s 行“%(header)s”：%(problem)s")


@dataclass(frozen=True)
class Finding:
    sheet: str | None
    row: int | None
    column: str | None
    header: str | None
    value: str | None
    code: str
    severity: str
    message: str
    # Registered names like an unknown agency's, most similar first (unknown_agency only; else None).
    suggestions: list[str] | None = None

    def as_json(self) -> dict[str, Any]:
        found = {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "header": self.header,
            "value": self.value,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
        }
        if self.suggestions is not None:
            found["suggestions"] = list(self.suggestions)
        return found


class Messages:
    """Findings with their messages in the current locale. Each template is translated once, as a
    report may hold a finding for every one of 100,000 rows."""

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}

    def _text(self, template: LazyString) -> str:
        text = self._texts.get(id(template))
        if text is None:
            text = self._texts[id(template)] = str(template)
        return text

    def locate(self, sheet: str | None, row: int | None, header: str | None, problem: str) -> str:
        if sheet is None:
            return problem
        if row is None:
            return self._text(_AT_SHEET) % {"sheet": sheet, "problem": problem}
        if header is None:
            return self._text(_AT_ROW) % {"sheet": sheet, "row": row, "problem": problem}
        # A header written over several lines ("购车价格\n（万元）") reads as one in a sentence.
        shown_header = " ".join(header.split())
        return self._text(_AT_CELL) % {"sheet": sheet, "row": row, "header": shown_header, "problem": problem}

    def finding(
        self,
        code: str,
        *,
        sheet: str | None,
        row: int | None,
        column: str | None,
        header: str | None,
        value: Any = None,
        severity: str | None = None,
        template: LazyString | None = None,
        suggestions: list[str] | None = None,
        **params: Any,
    ) -> Finding:
        text = shown(value)
        problem = self._text(template or CODES[code].template) % {"value": text, **params}
        return Finding(
            sheet=sheet,
            row=row,
            column=column,
            header=header,
            value=text,
            code=code,
            severity=severity or severity_of(code),
            message=self.locate(sheet, row, header, problem),
            suggestions=suggestions,
        )


@dataclass(frozen=True)
class SheetLayout:
    """Where a sheet's table sits: what the annotated workbook needs to find a finding's cell."""

    header_row: int
    columns: dict[str, int]  # key -> 0-based column index
    headers: dict[str, str]  # key -> header as written


@dataclass(frozen=True)
class PreviewRow:
    """A row as the importer understood it, for the check page before the user commits: each column's
    value as it will be stored, written as text (dates ISO, prices in 万元, vocabulary values canonical),
    and the severity of the findings in the row and in each of its cells."""

    sheet: str
    row: int
    values: dict[str, str | None]
    severity: str | None = None
    flagged: dict[str, str] = field(default_factory=dict)  # key -> severity of its worst finding


@dataclass
class ValidationReport:
    file: str
    sheets: list[str]
    rows: int
    valid_rows: int
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    layout: dict[str, SheetLayout] = field(default_factory=dict)
    preview: list[PreviewRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sheets": self.sheets,
            "rows": self.rows,
            "valid_rows": self.valid_rows,
            "errors": [f.as_json() for f in self.errors],
            "warnings": [f.as_json() for f in self.warnings],
        }

    def to_record(self) -> dict[str, Any]:
        """What an ImportBatch keeps: the JSON report plus the layout, so the workbook can be annotated later,
        and the rows' preview for the check page (neither is part of the JSON report's contract)."""
        return {
            **self.as_json(),
            "layout": {name: asdict(layout) for name, layout in self.layout.items()},
            "preview": [asdict(row) for row in self.preview],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ValidationReport:
        return cls(
            file=record["file"],
            sheets=list(record["sheets"]),
            rows=record["rows"],
            valid_rows=record["valid_rows"],
            errors=[Finding(**f) for f in record["errors"]],
            warnings=[Finding(**f) for f in record["warnings"]],
            layout={
                name: SheetLayout(
                    header_row=layout["header_row"],
                    columns={k: int(v) for k, v in layout["columns"].items()},
                    headers=dict(layout["headers"]),
                )
                for name, layout in record.get("layout", {}).items()
            },
            # Batches checked before the preview existed have none.
            preview=[PreviewRow(**row) for row in record.get("preview", [])],
        )
