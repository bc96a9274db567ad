"""Reading: an uploaded file into one raw table of acquisitions, with sheet and row (import step 1).

imports.sheets reads the cells of any format (cached values for formulas); this module finds each sheet's header
by its content, under title rows and through merged cells, maps the headers (imports.headers) and
keeps the data rows up to a totals row. The values stay as written: normalising is the next step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from fleet.base.text import _
from imports.headers import (
    ACQUISITION_HEADERS,
    HeaderMatch,
    HeaderSet,
    ditto_marks,
    fold_header,
    header_min_columns,
    header_search_rows,
    is_example_marker,
    is_instruction_sheet,
    is_instruction_title,
    row_mark,
    row_mark_characters,
    stated_unit,
)
from imports.guards import LIMITS, Limits
from imports.normalise import to_numbers, to_text
from imports.package import UnusableFile
from imports.sheets import Book, Sheet, read_book

Cell = Any
# How many cells from the table's first column are looked at for a totals row or an example marker.
_LEADING_CELLS = 4
_BRACKETED_NOTE = re.compile(r"^[(（\[【].*[)）\]】]$")
# Label-value pairs above the table are separated by wide spaces: "填报单位：X    填报日期：Y".
_SEGMENTS = re.compile(r"\s{2,}|\u3000+")
# A header wider than this is no table of acquisitions; the cap keeps a very wide sheet from costing seconds.
_HEADER_COLUMNS = 200
# How many rows under the header may still belong to it (column numbers, an English header row).
_HEADER_ECHO_ROWS = 3
_SECTION = re.compile(r"^([一二三四五六七八九十]+[、.]|[(（][一二三四五六七八九十\d]+[)）]|第[一二三四五六七八九十\d]+[部分类组])")


@dataclass
class SheetTable:
    """Where a sheet's table is and what its headers mean."""

    name: str
    header_row: int  # Excel's row number of the (last) header row
    headers: dict[str, str] = field(default_factory=dict)  # key -> header text as written
    columns: dict[str, int] = field(default_factory=dict)  # key -> 0-based column index
    # Further columns joined into a key whose column says `joined` (车辆品牌 + 车辆型号 -> brand_model).
    joined: dict[str, list[int]] = field(default_factory=dict)
    columns_of: HeaderSet = ACQUISITION_HEADERS  # the kind of table: which columns the headers may name


@dataclass
class RawTable:
    """Every data row of every usable sheet, values as read, plus file-level findings."""

    frame: pd.DataFrame
    sheets: list[SheetTable]
    issues: list[dict]
    # The workbook counts its date serials from 1904 (Excel for Mac before 2011): a serial written as
    # a number or text then means another day. Cells formatted as dates are read right either way.
    date1904: bool = False


@dataclass
class _HeaderCell:
    column: int
    text: str
    match: HeaderMatch


def read_table(
    path: Path,
    *,
    name: str | None = None,
    limits: Limits = LIMITS,
    headers: HeaderSet = ACQUISITION_HEADERS,
    own_sheets: Collection[str] = (),
) -> RawTable:
    """Read the file at path (any format imports.sheets reads) into a RawTable; raise UnusableFile when
    it cannot be read or holds no usable table. name is the file's name as uploaded (a CSV's sheet).
    own_sheets are sheets the app writes itself into files that come back (the template's instructions,
    the annotated file's findings): skipped without a warning, as the user did nothing to skip."""
    book = read_book(path, name=name, limits=limits)
    if book.format == "html":
        book.sheets = page_table(book.sheets, headers)
    if own_sheets:
        book.sheets = [sheet for sheet in book.sheets if sheet.name not in own_sheets]
    return _read_sheets(book, headers)


def page_table(tables: list[Sheet], headers: HeaderSet = ACQUISITION_HEADERS) -> list[Sheet]:
    """A web page's table of acquisitions: the largest one with a recognisable header (the others lay out
    the page: titles, menus, a footer)."""
    for table in tables:
        top = [list(row) for row in table.rows[: header_search_rows() + 1]]
        if _find_header(top, headers) is not None:
            return [table]
    return tables[:1]


def _read_sheets(book: Book, headers: HeaderSet) -> RawTable:
    sheets: list[SheetTable] = []
    issues: list[dict] = []
    parts: list[dict[str, list]] = []
    hidden_tables: list[tuple[SheetTable, dict[str, list], list[dict]]] = []
    any_cells = False
    for sheet in book.sheets:
        rows = sheet.rows
        if not any(_filled(v) for row in rows for v in row):
            continue
        any_cells = True
        table, data, sheet_issues = _read_sheet(sheet.name, rows, sheet.merged, sheet.hidden, headers)
        if table is None:
            issues.extend(sheet_issues)
        elif sheet.hidden:
            hidden_tables.append((table, data, sheet_issues))
        else:
            sheets.append(table)
            parts.append(data)
            issues.extend(sheet_issues)
    # A hidden sheet is read only when no visible one holds a table: a workbook whose only list is
    # hidden behind a pivot or a chart is still that list.
    visible_tables = bool(sheets)
    for table, data, sheet_issues in hidden_tables:
        if visible_tables:
            issues.append(_sheet_skipped(table.name, _("工作表“%(sheet)s”是隐藏工作表，已跳过。", sheet=table.name)))
        else:
            sheets.append(table)
            parts.append(data)
            issues.extend(sheet_issues)
    if "vin" in headers.keys and any("vin" in t.columns for t in sheets):
        sheets, parts, issues = _without_summaries(sheets, parts, issues)
    if not any_cells:
        raise UnusableFile("empty_workbook", _("工作簿是空的，没有任何内容。"))
    if not sheets:
        raise UnusableFile(
            "no_header",
            _("没有找到表头：任何工作表中都没有可识别的列名（如“单位名称”“车辆识别代号”“购置日期”）。请使用模板填写。"),
        )
    frame = _frame(parts, headers)
    if frame.empty:
        raise UnusableFile("no_data", _("找到了表头，但表头下方没有数据行。"))
    return RawTable(frame=frame, sheets=sheets, issues=issues, date1904=book.date1904)


def _without_summaries(
    sheets: list[SheetTable], parts: list[dict[str, list]], issues: list[dict]
) -> tuple[list[SheetTable], list[dict[str, list]], list[dict]]:
    """Sheets without a VIN column beside sheets with one are summaries or counts, not vehicle lists."""
    summaries = {t.name for t in sheets if "vin" not in t.columns}
    if not summaries:
        return sheets, parts, issues
    kept = [(t, p) for t, p in zip(sheets, parts) if t.name not in summaries]
    issues = [i for i in issues if i["sheet"] not in summaries]
    for name in summaries:
        issues.append(_sheet_skipped(name, _("工作表“%(sheet)s”没有车辆识别代号列，像是汇总表，已跳过。", sheet=name)))
    return [t for t, _p in kept], [p for _t, p in kept], issues


def _frame(parts: list[dict[str, list]], headers: HeaderSet) -> pd.DataFrame:
    columns = [*headers.keys, "_sheet", "_row"]
    merged = {c: [v for part in parts for v in part[c]] for c in columns}
    frame = pd.DataFrame({c: pd.Series(merged[c], dtype=object) for c in columns if c != "_row"})
    frame["_row"] = pd.Series(merged["_row"], dtype="int64")
    return frame


def _read_sheet(
    name: str,
    rows: list[list[Cell]],
    merged: list[tuple[tuple[int, int], tuple[int, int]]],
    hidden: bool,
    headers: HeaderSet,
) -> tuple[SheetTable | None, dict[str, list], list[dict]]:
    if is_instruction_sheet(name) or is_instruction_title(_first_text(rows)):
        # Named so, or titled so in its first cell (“填表说明” in A1 of a sheet left as Sheet2).
        return None, {}, [_sheet_skipped(name, _("工作表“%(sheet)s”是填表说明，已跳过。", sheet=name))]
    top = [list(row) for row in rows[: header_search_rows() + 1]]
    # Header cells merged across columns name the first of them only, else every column under a
    # merged “备注” would be a duplicate 备注; merged down, they name each row they cover.
    _fill_merged(top, merged, last_row=len(top) - 1, across=False)
    found = _find_header(top, headers)
    if found is None:
        if hidden:
            return None, {}, []
        return None, {}, [_sheet_skipped(name, _("工作表“%(sheet)s”中没有可识别的表头，已跳过。", sheet=name))]
    first_row, last_row, cells = found
    table = SheetTable(name=name, header_row=last_row + 1, columns_of=headers)
    given = _title_values(top[:first_row], headers)
    issues = _map_columns(table, cells, given)
    body = rows[last_row + 1 :]
    from_merges = _fill_merged(body, merged, first_row=last_row + 1, columns=set(_used_columns(table)))
    data = _data_rows(table, body, first_excel_row=last_row + 2, header_cells=cells, from_merges=from_merges)
    for key, (label, value, excel_row) in given.items():
        if key not in table.columns:
            data[key] = [value] * len(data["_row"])
            issues.append(
                {**_issue(name, excel_row, key, label, "value_from_title", "warning",
                          _("表中没有“%(column)s”列，使用表头上方的“%(label)s：%(value)s”填入每一行。",
                            column=headers.by_key[key].header, label=label, value=value)),
                 "value": value}
            )
    amount = headers.amount_key
    if amount in table.columns:
        scale = next(c.match.scale for c in cells if c.match.key == amount and c.column == table.columns[amount])
        if scale is None:
            # Statistical tables state the unit once, above the table or beside the header: “金额单位：元”.
            scale = next(
                (u for row in top[: last_row + 1] for v in row if isinstance(v, str) and (u := stated_unit(v))), None
            )
        if scale is not None and scale != 1:
            data[amount] = _scaled_prices(data[amount], scale)
            issues.append(
                _issue(name, table.header_row, amount, table.headers[amount], "price_unit_converted", "warning",
                       _("“%(header)s”不是按万元填写，已换算为万元。", header=table.headers[amount]))
            )
    return table, data, issues


def _first_text(rows: list[list[Cell]]) -> str:
    for row in rows[: header_search_rows()]:
        for value in row:
            if _filled(value):
                return value if isinstance(value, str) else ""
    return ""


def _filled(value: Cell) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _fill_merged(
    rows: list[list[Cell]],
    merged: list[tuple[tuple[int, int], tuple[int, int]]],
    *,
    first_row: int = 0,
    last_row: int | None = None,
    columns: set[int] | None = None,
    across: bool = True,
) -> dict[int, set[int]]:
    """Give every cell of a merged range the value of its top-left cell (rows[0] is sheet row first_row).

    Returns, per index into rows, the columns that were given a value this way.
    """
    end = first_row + len(rows) - 1 if last_row is None else last_row
    given: dict[int, set[int]] = {}
    for (r0, c0), (r1, c1) in merged:
        if r0 < first_row or r0 > end:
            continue
        value = rows[r0 - first_row][c0] if c0 < len(rows[r0 - first_row]) else None
        for r in range(r0, min(r1, end) + 1):
            row = rows[r - first_row]
            for c in range(c0, min(c1 if across else c0, len(row) - 1) + 1):
                if (columns is None or c in columns) and (r, c) != (r0, c0):
                    row[c] = value
                    given.setdefault(r - first_row, set()).add(c)
    return given


def _find_header(top: list[list[Cell]], headers: HeaderSet) -> tuple[int, int, list[_HeaderCell]] | None:
    """The best header: the row (or pair of rows) naming the most distinct columns.

    On a tie the single row wins over a pair and the upper over the lower, so a title row above the
    header is never read as part of it.
    """
    best: tuple[tuple[float, int], int, int, list[_HeaderCell]] | None = None
    for r in range(len(top)):
        candidates = [(r, r, _header_cells(top[r], None, headers))]
        if r + 1 < len(top):
            candidates.append((r, r + 1, _header_cells(top[r], top[r + 1], headers)))
        for first, last, cells in candidates:
            # A row of bracketed notes under the header ("（万元）", "（必填）") belongs to it.
            rank = (_score(cells), 2 if first != last and _annotations(top[last]) else int(first == last))
            if rank[0] >= header_min_columns() and (best is None or rank > best[0]):
                best = (rank, first, last, cells)
    if best is None:
        return None
    return best[1], best[2], best[3]


def _annotations(row: list[Cell]) -> bool:
    filled = [v for v in row if _filled(v)]
    return bool(filled) and all(isinstance(v, str) and _BRACKETED_NOTE.match(v.strip()) for v in filled)


def _score(cells: list[_HeaderCell]) -> float:
    keys = {c.match.key for c in cells if c.match.key}
    if len(keys) < 2:
        return 0
    # An ambiguous header is half a sign of a header row: enough to prefer it, never to invent one.
    return len(keys) + 0.5 * sum(1 for c in cells if c.match.ambiguous)


def _header_cells(upper: list[Cell], lower: list[Cell] | None, headers: HeaderSet) -> list[_HeaderCell]:
    """The header cells of one row, or of two rows read together (a group title above sub-headers)."""
    cells = []
    for c, value in enumerate(upper[:_HEADER_COLUMNS]):
        text = _header_text(value)
        if lower is not None:
            below = _header_text(lower[c]) if c < len(lower) else ""
            text = _combine(text, below, headers)
        if text:
            cells.append(_HeaderCell(c, text, headers.match(text)))
    return cells


def _header_text(value: Cell) -> str:
    return value.strip() if isinstance(value, str) else ""


def _combine(upper: str, lower: str, headers: HeaderSet) -> str:
    """The header of a column under a two-row header: the sub-header, else the two read as one."""
    if not lower or fold_header(lower) == fold_header(upper):
        return upper
    if not upper:
        return lower
    below = headers.match(lower)
    if below.key or below.ambiguous or below.ignored:
        return lower
    both = f"{upper} {lower}"
    if headers.match(both).key:
        return both
    return upper if headers.match(upper).key else both


def _title_values(rows: list[list[Cell]], headers: HeaderSet) -> dict[str, tuple[str, str, int]]:
    """Values that forms state once above the table for every row: “填报单位（盖章）：濮阳市城市管理局”.

    Returns key -> (label, value, Excel row) for labels that name a column; vehicle identifiers are
    never taken.
    """
    found: dict[str, tuple[str, str, int]] = {}
    for r, row in enumerate(rows):
        texts = list(dict.fromkeys(v.strip() for v in row if isinstance(v, str) and v.strip()))
        for i, text in enumerate(texts):
            for segment in _SEGMENTS.split(text):
                label, colon, value = segment.replace("：", ":").partition(":")
                if not colon or stated_unit(segment) is not None:
                    continue
                value = value.strip(" _")
                if not value and i + 1 < len(texts) and ":" not in texts[i + 1].replace("：", ":"):
                    value = texts[i + 1].strip(" _")
                key = headers.match(label).key
                if value and key and key in headers.from_title:
                    found.setdefault(key, (label.strip(), value, r + 1))
    return found


def _map_columns(table: SheetTable, cells: list[_HeaderCell], given: dict[str, tuple[str, str, int]]) -> list[dict]:
    """Choose the column for each key (strongest match, then leftmost) and report everything else."""
    issues: list[dict] = []
    row = table.header_row
    chosen: dict[str, _HeaderCell] = {}
    for cell in sorted((c for c in cells if c.match.key), key=lambda c: (-c.match.strength, c.column)):
        if cell.match.key in chosen and table.columns_of.by_key[cell.match.key].joined:
            table.joined.setdefault(cell.match.key, []).append(cell.column)
        elif cell.match.key in chosen:
            kept = chosen[cell.match.key]
            issues.append(
                _issue(table.name, row, cell.match.key, cell.text, "duplicate_column", "warning",
                       _("“%(header)s”与“%(kept)s”都像是“%(column)s”，已使用“%(kept)s”，忽略此列。",
                         header=cell.text, kept=kept.text, column=table.columns_of.by_key[cell.match.key].header))
            )
        else:
            chosen[cell.match.key] = cell
    for key in table.columns_of.keys:
        if key in chosen:
            table.columns[key] = chosen[key].column
            table.headers[key] = chosen[key].text
    for key, more in table.joined.items():
        # Joined in the order of the sheet, so 品牌 comes before 型号 whichever matched more strongly.
        ordered = sorted([table.columns[key], *more])
        table.columns[key], table.joined[key] = ordered[0], ordered[1:]
        texts = {c.column: c.text for c in cells}
        table.headers[key] = " + ".join(texts[c] for c in ordered)
    possible: set[str] = set()
    for cell in cells:
        # An ambiguous header whose every meaning is already a column of the sheet is just another column.
        open_keys = [k for k in cell.match.candidates if k not in chosen]
        if open_keys:
            possible.update(open_keys)
            names = "、".join(f"“{table.columns_of.by_key[k].header}”" for k in cell.match.candidates)
            issues.append(
                _issue(table.name, row, None, cell.text, "ambiguous_header", "error",
                       _("表头“%(header)s”含义不明确，可能是 %(columns)s。请改为模板中的列名。",
                         header=cell.text, columns=names))
            )
        elif cell.match.key is None and not cell.match.ignored:
            issues.append(
                _issue(table.name, row, None, cell.text, "unknown_column", "warning",
                       _("无法识别的列“%(header)s”，已忽略。", header=cell.text))
            )
    for key in table.columns_of.required_keys:
        if key not in chosen and key not in possible and key not in given:
            header = table.columns_of.by_key[key].header
            issues.append(
                _issue(table.name, row, key, header, "missing_column", "error",
                       _("工作表“%(sheet)s”缺少必填列“%(header)s”。", sheet=table.name, header=header))
            )
    return issues


def _data_rows(
    table: SheetTable,
    body: list[list[Cell]],
    first_excel_row: int,
    header_cells: list[_HeaderCell],
    from_merges: dict[int, set[int]],
) -> dict[str, list]:
    """The rows under the header up to the end of the table, without blank, example or repeated header rows.

    A row is blank when it holds nothing of its own: an agency merged down past the last vehicle does
    not make the rows below it data.
    """
    used = _used_columns(table)
    start = min(c.column for c in header_cells)
    leading = slice(start, start + _LEADING_CELLS)
    repeated = set(table.headers.values())
    anchors = used[:2]
    mark_characters = row_mark_characters()
    kept: list[int] = []
    # One pass over every row: the cheap tests first, the folding ones only for rows that hold text.
    for i, row in enumerate(body):
        given = from_merges.get(i, ())
        for c in used:
            value = row[c]
            if value != "" and not (value.__class__ is str and value.isspace()) and c not in given:
                break
        else:
            continue
        texts = [v for v in row[leading] if v.__class__ is str and v and not v.isspace()][:3]
        if texts:
            if any(v[0] in mark_characters or v[-1] in mark_characters for v in texts):
                marks = [row_mark(v) for v in texts]
                if "end" in marks:
                    break
                if "subtotal" in marks:
                    continue
            if is_example_marker(texts[0]):
                continue
        # A header repeated inside the table (sheets pasted together, print titles) is not data.
        if any(row[c] in repeated for c in anchors) and sum(
            1 for c in used if row[c].__class__ is str and row[c].strip() in repeated
        ) >= 2:
            continue
        if _section_title(row, used):
            continue
        if not kept and i < _HEADER_ECHO_ROWS and _header_echo(row, table):
            continue
        kept.append(i)
    rows = [body[i] for i in kept]
    data: dict[str, list] = {}
    for key in table.columns_of.keys:
        c = table.columns.get(key)
        if c is None:
            data[key] = [None] * len(kept)
        else:
            # calamine gives an empty cell as "".
            data[key] = [None if (value := row[c]) == "" else value for row in rows]
    for key, more in table.joined.items():
        parts = [table.columns[key], *more]
        data[key] = [" ".join(t for c in parts if (t := to_text(row[c]))) or None for row in rows]
    for key in table.columns:
        _fill_dittos(data[key])
    data["_sheet"] = [table.name] * len(kept)
    data["_row"] = [first_excel_row + i for i in kept]
    return data


def _fill_dittos(values: list[Cell]) -> None:
    """同上 / 〃 under a value is that value again."""
    marks = ditto_marks()
    if marks.isdisjoint(values):
        return
    for i in range(1, len(values)):
        if values[i] in marks:
            values[i] = values[i - 1]


def _used_columns(table: SheetTable) -> list[int]:
    return sorted({*table.columns.values(), *(c for more in table.joined.values() for c in more)})


def _section_title(row: list[Cell], used: list[int]) -> bool:
    """A row that only names a group of the rows below (“一、公交车”), often merged across the table."""
    first: str | None = None
    count = 0
    for c in used:
        value = row[c]
        if value == "" or (value.__class__ is str and value.isspace()):
            continue
        if first is None:
            if value.__class__ is not str:
                return False
            first = value
        elif value != first:
            return False
        count += 1
    return first is not None and (count >= 3 or bool(_SECTION.match(first.strip())))


def _header_echo(row: list[Cell], table: SheetTable) -> bool:
    """A row right under the header that is part of it: column numbers (1, 2, 3 …) or headers in English."""
    numbered = [(c, _whole_number(row[c])) for c in _used_columns(table) if _filled(row[c])]
    if len(numbered) >= 2 and all(n is not None for _, n in numbered):
        # Column numbers go up by one from each column to the next, whatever lies between.
        return len({n - c for c, n in numbered}) == 1
    filled = [(k, row[c]) for k, c in table.columns.items() if _filled(row[c])]
    echoed = sum(1 for k, v in filled if isinstance(v, str) and table.columns_of.match(v).key == k)
    return len(filled) >= 2 and echoed >= max(2, len(filled) // 2)


def _whole_number(value: Cell) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _scaled_prices(values: list[Cell], scale: float) -> list[Cell]:
    numbers = to_numbers(pd.Series(values, dtype=object))
    return [v * scale if isinstance(v, float) else v for v in numbers]


def _sheet_skipped(sheet: str, message: str) -> dict:
    return _issue(sheet, None, None, None, "sheet_skipped", "warning", message)


def _issue(sheet: str, row: int | None, column: str | None, header: str | None, code: str, severity: str, message: str) -> dict:
    return {"sheet": sheet, "row": row, "column": column, "header": header, "value": None, "code": code,
            "severity": severity, "message": message}
