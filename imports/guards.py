"""Limits on what a workbook holds, checked on its bytes before calamine builds anything from them.

calamine holds each sheet as a dense grid from its first to its last filled cell and gives every
cell its own copy of a shared string, so a file of a few kilobytes can ask for terabytes: one value
in XFD1048576, one 19 MB string used by forty cells, a million rows of one value each. Declared sizes
(a sheet's <dimension>, a BIFF DIMENSIONS record) can lie, so the limits are checked on the cells
the file actually holds: the sheet XML streamed in chunks, the records of a binary workbook walked
one by one. What is found beyond a limit is refused with a stable code, in a fraction of a second
and without holding more than a chunk of the file.

No library reads cell positions without building the sheet (openpyxl's read-only mode parses every
cell into objects, several times slower than calamine itself), hence the hand-written scans.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import olefile

from fleet.base.text import _
from imports.package import UnusableFile, corrupt, encrypted


@dataclass(frozen=True)
class Limits:
    """What one file may hold. A real upload of 100,000 acquisitions has 1.4 million cells and 60 MB of text."""

    rows: int = 300_000  # rows of one sheet, up to its last row holding a value
    cells: int = 3_000_000  # cells holding a value, in the whole file
    area: int = 6_000_000  # cells of the used ranges (first to last filled row and column), summed over sheets
    cell_chars: int = 32_767  # characters of one cell: Excel's own limit
    text_bytes: int = 256 << 20  # text of every cell as read, in bytes of UTF-8 (a shared string counts per use)
    depth: int = 64  # nesting of XML elements (a sheet needs 7)
    tables: int = 200  # tables of a web page (HTML)
    # Merged ranges in the whole file: a real form has a few dozen; each is filled cell by cell when read.
    merges: int = 10_000


LIMITS = Limits()
_CHUNK = 4 << 20
_WINDOW = 64 << 10


def too_large(message: str) -> UnusableFile:
    return UnusableFile("too_large", message)


def too_many_rows(rows: int, limit: int) -> UnusableFile:
    return too_large(_("工作表的行数过多（%(rows)s 行，上限 %(limit)s 行），可能在很远的行里有内容。请删除多余的行或拆分后上传。",
                       rows=rows, limit=limit))


def too_many_cells(cells: int, limit: int) -> UnusableFile:
    return too_large(_("文件中的单元格过多（至少 %(cells)s 个，上限 %(limit)s 个）。请拆分后分别上传。", cells=cells, limit=limit))


def too_wide_area(rows: int, columns: int) -> UnusableFile:
    return too_large(_("工作表的使用范围过大（%(rows)s 行 × %(columns)s 列），可能在很远的单元格里有内容。"
                       "请删除多余的行和列后重新保存上传。", rows=rows, columns=columns))


def cell_too_large(limit: int) -> UnusableFile:
    return too_large(_("有单元格的内容过长（超过 %(limit)s 个字符，Excel 单元格的上限）。请检查文件后重新保存上传。", limit=limit))


def too_much_text(limit: int) -> UnusableFile:
    return too_large(_("文件中的文字总量过大（超过 %(limit)s MB）。请拆分后分别上传。", limit=limit >> 20))


def too_many_merges(limit: int) -> UnusableFile:
    return too_large(_("文件中的合并单元格过多（超过 %(limit)s 处）。请取消合并后重新保存上传。", limit=limit))


def too_deep() -> UnusableFile:
    return UnusableFile("corrupt", _("文件结构异常（XML 嵌套过深），不是正常保存的工作簿，已拒绝读取。"))


@dataclass
class _Budget:
    """What the sheets read so far have used of the limits."""

    limits: Limits
    cells: int = 0
    area: int = 0
    text: int = 0
    merges: int = 0

    def sheet(self, last_row: int, last_column: int, cells: int) -> None:
        if last_row > self.limits.rows:
            raise too_many_rows(last_row, self.limits.rows)
        self.cells += cells
        if self.cells > self.limits.cells:
            raise too_many_cells(self.cells, self.limits.cells)
        self.area += last_row * last_column
        if self.area > self.limits.area:
            raise too_wide_area(last_row, last_column)

    def add_merges(self, count: int) -> None:
        self.merges += count
        if self.merges > self.limits.merges:
            raise too_many_merges(self.limits.merges)

    def add_text(self, size: int) -> None:
        self.text += size
        if self.text > self.limits.text_bytes:
            raise too_much_text(self.limits.text_bytes)


# --- xlsx ------------------------------------------------------------------------------------------

_SHEET_XML = re.compile(r"^xl/worksheets/[^/]+\.xml$")
# A cell holding a value: <c …>…</c>, not the self-closing <c r="A9" s="1"/> of formatting only.
_CELL = re.compile(rb'<(?:\w{1,8}:)?c r="[A-Z]{1,3}([0-9]{1,7})"[^>]*?(/?)>')
# Literal prefixes, so that the regex engine skips to each candidate instead of trying every "<".
_WIDE_CELL = re.compile(rb'c r="([A-Z]{2,3})[0-9]{1,7}"[^>]*?(/?)>')
_PREFIXED_VALUE = re.compile(rb"<\w{1,8}:(?:v|is)>")
_SHARED_CELL = re.compile(rb'<(?:\w{1,8}:)?c [^>]*?t="s"[^>]*>\s*<(?:\w{1,8}:)?v>([0-9]{1,10})<')
_STRING_ITEM = re.compile(rb"<(?:\w{1,8}:)?si[\s>/]")
_SHARED_STRINGS = "xl/sharedStrings.xml"


@dataclass
class _Depth:
    """Nesting of XML elements, followed across chunks; checked at window edges, so a nest that rises
    and falls within one window (at most a few thousand levels) goes unseen and harms nothing.
    Windows end before a "<", so that no tag is counted half in one and half in the next."""

    limit: int
    depth: int = 0
    rest: bytes = b""

    def feed(self, chunk: bytes) -> None:
        data = self.rest + chunk
        start = 0
        while len(data) - start > _WINDOW:
            cut = data.rfind(b"<", start + 1, start + _WINDOW)
            if cut < 0:
                cut = start + _WINDOW  # text without a tag in it
            self._count(data[start:cut])
            start = cut
        last = data.rfind(b"<", start)
        if last < 0 or data.find(b">", last) >= 0:
            self._count(data[start:])
            self.rest = b""
        else:
            # A tag not yet closed waits for the next chunk.
            self._count(data[start:last])
            self.rest = data[last:]

    def _count(self, window: bytes) -> None:
        opened = window.count(b"<") - window.count(b"<?") - window.count(b"<!")
        closed = 2 * window.count(b"</") + window.count(b"/>")
        self.depth += opened - closed
        if self.depth > self.limit:
            raise too_deep()


@dataclass
class _SheetScan:
    last_row: int = 0
    last_column: int = 0
    cells: int = 0
    shared_cells: int = 0
    merges: int = 0
    member: zipfile.ZipInfo | None = None


def scan_xlsx(path: Path, limits: Limits = LIMITS) -> None:
    """Refuse an xlsx whose sheets or strings go beyond the limits (members already checked for bombs)."""
    try:
        with zipfile.ZipFile(path) as package:
            budget = _Budget(limits)
            sizes = np.zeros(0, dtype=np.int64)
            sheets: list[_SheetScan] = []
            for member in package.infolist():
                name = member.filename
                if _SHEET_XML.match(name):
                    scan = _scan_sheet(package, member, limits)
                    budget.sheet(scan.last_row, scan.last_column, scan.cells)
                    budget.add_merges(scan.merges)
                    sheets.append(scan)
                elif name == _SHARED_STRINGS:
                    sizes = _string_sizes(package, member, limits)
                elif name.endswith((".xml", ".rels", ".vml")):
                    _scan_depth(package, member, limits)
            if not len(sizes):
                return
            largest = int(sizes.max())
            for scan in sheets:
                if scan.shared_cells * largest <= limits.text_bytes - budget.text:
                    # Each use of a string counted as the longest: within the limit, no need to count them.
                    budget.add_text(scan.shared_cells * largest)
                else:
                    budget.add_text(_shared_text(package, scan.member, sizes))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error):
        raise corrupt() from None


def _chunks(package: zipfile.ZipFile, member: zipfile.ZipInfo):
    with package.open(member) as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _scan_depth(package: zipfile.ZipFile, member: zipfile.ZipInfo, limits: Limits) -> None:
    depth = _Depth(limits.depth)
    for chunk in _chunks(package, member):
        depth.feed(chunk)


def _scan_sheet(package: zipfile.ZipFile, member: zipfile.ZipInfo, limits: Limits) -> _SheetScan:
    """The sheet's last row and widest column holding a value, its cells with a value, the longest cell."""
    scan = _SheetScan(last_column=26, member=member)
    depth = _Depth(limits.depth)
    tail = b""
    # A cell's text lies between two cells: no cell start for longer than a cell may be is one long cell
    # (in UTF-8 a character takes up to 4 bytes; markup and a formula may come with it).
    longest = 4 * limits.cell_chars + 4096
    since_cell = 0
    for chunk in _chunks(package, member):
        depth.feed(chunk)
        # A cell cut by the chunk's edge is found whole in tail + chunk; counting stays on chunk alone.
        data = tail + chunk
        tail = data[-128:]
        scan.last_row = max(scan.last_row, _last_value_row(data))
        for letters, empty in _WIDE_CELL.findall(data):
            if not empty:
                scan.last_column = max(scan.last_column, _column_number(letters))
        scan.cells += chunk.count(b"<v>") + chunk.count(b"<is>")
        if b":v>" in chunk or b":is>" in chunk:
            scan.cells += len(_PREFIXED_VALUE.findall(chunk))
        scan.shared_cells += chunk.count(b't="s"')
        scan.merges += chunk.count(b"mergeCell ")
        if scan.merges > limits.merges:
            raise too_many_merges(limits.merges)
        last = max(chunk.rfind(b"<c "), chunk.rfind(b":c "))
        if last < 0:
            since_cell += len(chunk)
        else:
            first = max(chunk.find(b"<c "), 0)
            if since_cell + first > longest or _longest_gap(chunk) > longest:
                raise cell_too_large(limits.cell_chars)
            since_cell = len(chunk) - last
        if since_cell > longest and b"</sheetData>" not in chunk and b":sheetData>" not in chunk:
            raise cell_too_large(limits.cell_chars)
    return scan


def _longest_gap(chunk: bytes) -> int:
    """The longest stretch of the chunk without a cell start, measured window by window (cheap)."""
    gap, longest = 0, 0
    for start in range(0, len(chunk), _WINDOW):
        window = chunk[start : start + _WINDOW]
        if b"<c " in window or b":c " in window:
            gap = 0
        else:
            gap += len(window)
            longest = max(longest, gap)
    return longest


def _string_sizes(package: zipfile.ZipFile, member: zipfile.ZipInfo, limits: Limits) -> np.ndarray:
    """The size in bytes of each shared string (with its markup), refusing one longer than a cell may be."""
    depth = _Depth(limits.depth)
    starts: list[int] = []
    offset, tail = 0, b""
    for chunk in _chunks(package, member):
        depth.feed(chunk)
        data = tail + chunk
        base = offset - len(tail)
        starts.extend(base + m.start() for m in _STRING_ITEM.finditer(data) if m.start() >= len(tail) - 8)
        tail = data[-8:]
        offset += len(chunk)
    if not starts:
        return np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.asarray([*dict.fromkeys(starts), offset], dtype=np.int64))
    if int(sizes.max()) > 4 * limits.cell_chars + 4096:
        raise cell_too_large(limits.cell_chars)
    return sizes


def _shared_text(package: zipfile.ZipFile, member: zipfile.ZipInfo, sizes: np.ndarray) -> int:
    """The text a sheet's shared-string cells will hold, each use of a string counted."""
    total, tail = 0, b""
    for chunk in _chunks(package, member):
        data = tail + chunk
        # Cells are matched in data up to the last cell start, the rest is carried to the next chunk.
        cut = max(data.rfind(b"<c "), data.rfind(b":c "))
        cut = len(data) if cut < 0 else cut
        indexes = np.asarray([int(i) for i in _SHARED_CELL.findall(data, 0, cut)], dtype=np.int64)
        indexes = indexes[indexes < len(sizes)]
        total += int(sizes[indexes].sum())
        tail = data[cut:]
    return total


def _last_value_row(data: bytes) -> int:
    """The row of the last cell in data that is not self-closing (<c r="A9" s="1"/> is formatting only)."""
    end = len(data)
    while (at := max(data.rfind(b'<c r="', 0, end), data.rfind(b':c r="', 0, end))) >= 0:
        cell = _CELL.match(data, at)
        if cell is not None and not cell[2]:
            return int(cell[1])
        end = at
    return 0


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - ord("A") + 1
    return number


# --- xls (BIFF8 in an OLE2 compound file) ----------------------------------------------------------

_BOF, _EOF, _FILEPASS, _DATEMODE, _SST, _CONTINUE = 0x0809, 0x000A, 0x002F, 0x0022, 0x00FC, 0x003C
_LABELSST, _MULRK, _MERGEDCELLS = 0x00FD, 0x00BD, 0x00E5
# Records of a cell with a value (BLANK and MULBLANK are formatting only: calamine leaves them out).
_VALUE_RECORDS = frozenset({0x0203, 0x027E, 0x00FD, 0x0204, 0x0205, 0x0006, 0x00D6, 0x00BD})
_WORKSHEET = 0x0010


@dataclass
class XlsScan:
    date1904: bool = False
    sheets: list[tuple[int, int, int]] = field(default_factory=list)  # (last row, last column, cells)


def scan_xls(path: Path, limits: Limits = LIMITS) -> XlsScan:
    """Walk the workbook stream's records: refuse an encrypted workbook, a far cell, too many cells or too
    much text; calamine would build every sheet's grid when the file is opened."""
    try:
        with olefile.OleFileIO(str(path)) as ole:
            # A stream is read sector by sector: a size in the directory beyond the file's gives what is there.
            data = ole.openstream("Workbook").read()
    except (OSError, ValueError, struct.error, IndexError):
        raise corrupt() from None
    budget = _Budget(limits)
    found = XlsScan()
    sst: list[bytes] = []
    sst_open = False
    labels: list[int] = []
    unpack = struct.unpack_from
    end = len(data) - 4
    pos = 0
    last_row = last_column = cells = 0
    in_sheet = False
    while pos <= end:
        kind, size = unpack("<HH", data, pos)
        body = pos + 4
        if kind in _VALUE_RECORDS and in_sheet and size >= 4:
            row, column = unpack("<HH", data, body)
            if kind == _MULRK and size >= 6:
                column = unpack("<H", data, body + size - 2)[0]
                cells += (size - 6) // 6
            else:
                cells += 1
            if row >= last_row:
                last_row = row + 1
            if column >= last_column:
                last_column = column + 1
            if kind == _LABELSST and size >= 10:
                labels.append(unpack("<I", data, body + 6)[0])
        elif kind == _BOF and size >= 4:
            in_sheet = unpack("<H", data, body + 2)[0] == _WORKSHEET
            last_row = last_column = cells = 0
        elif kind == _EOF and in_sheet:
            budget.sheet(last_row, last_column, cells)
            found.sheets.append((last_row, last_column, cells))
            in_sheet = False
        elif kind == _MERGEDCELLS and in_sheet and size >= 2:
            budget.add_merges(unpack("<H", data, body)[0])
        elif kind == _FILEPASS:
            raise encrypted()
        elif kind == _DATEMODE and size >= 2:
            found.date1904 = unpack("<H", data, body)[0] == 1
        if kind == _SST:
            sst_open = True
        elif kind != _CONTINUE:
            sst_open = False
        if sst_open:
            sst.append(data[body : body + size])
        pos = body + size
    if labels and sst:
        sizes = np.asarray(_sst_lengths(sst, limits), dtype=np.int64)
        indexes = np.asarray(labels, dtype=np.int64)
        budget.add_text(int(sizes[indexes[indexes < len(sizes)]].sum()))
    return found


def _sst_lengths(parts: list[bytes], limits: Limits) -> list[int]:
    """Each shared string's length in bytes of UTF-8 at most (3 per character), from the SST record and
    its CONTINUE records; a string's characters may run on into the next record."""
    lengths: list[int] = []
    if not parts or len(parts[0]) < 8:
        return lengths
    count = struct.unpack_from("<I", parts[0], 4)[0]
    part, pos = 0, 8
    unpack = struct.unpack_from

    def advance(skip: int) -> None:
        nonlocal part, pos
        pos += skip
        while part < len(parts) and pos >= len(parts[part]):
            pos -= len(parts[part])
            part += 1

    try:
        for _index in range(count):
            advance(0)
            if part >= len(parts):
                break
            block = parts[part]
            chars, flags = unpack("<HB", block, pos)
            rich = unpack("<H", block, pos + 3)[0] if flags & 0x08 else 0
            extra = unpack("<I", block, pos + 3 + (2 if flags & 0x08 else 0))[0] if flags & 0x04 else 0
            advance(3 + (2 if flags & 0x08 else 0) + (4 if flags & 0x04 else 0))
            left, wide = chars, flags & 0x01
            while left > 0 and part < len(parts):
                block = parts[part]
                fit = min(left, (len(block) - pos) // (2 if wide else 1))
                left -= fit
                advance(fit * (2 if wide else 1))
                if left > 0 and part < len(parts):
                    # A continued string starts its next record with a flags byte of its own.
                    wide = parts[part][pos] & 0x01
                    advance(1)
            advance(4 * rich + extra)
            if chars > limits.cell_chars:
                raise cell_too_large(limits.cell_chars)
            lengths.append(3 * chars)
    except (struct.error, IndexError):
        raise corrupt() from None
    return lengths


# --- ods -------------------------------------------------------------------------------------------

# A row or cell repeated N times: a repeat of empty cells is how OpenDocument writes blank space, but a
# repeated value is held N times by the reader.
_REPEAT = re.compile(rb'number-(rows|columns)-repeated="([0-9]{1,10})"[^>]*?(/?)>')


def scan_ods(path: Path, limits: Limits = LIMITS) -> None:
    """Refuse an OpenDocument spreadsheet that repeats values beyond the limits or nests too deep."""
    try:
        with zipfile.ZipFile(path) as package:
            for member in package.infolist():
                if not member.filename.endswith(".xml"):
                    continue
                if member.filename != "content.xml":
                    _scan_depth(package, member, limits)
                    continue
                _scan_ods_content(package, member, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error):
        raise corrupt() from None


def _scan_ods_content(package: zipfile.ZipFile, member: zipfile.ZipInfo, limits: Limits) -> None:
    depth = _Depth(limits.depth)
    cells = 0
    tail = b""
    for chunk in _chunks(package, member):
        depth.feed(chunk)
        data = tail + chunk
        tail = data[-4096:]
        cells += chunk.count(b"<table:table-cell ") + chunk.count(b"<table:table-cell>")
        for repeat in _REPEAT.finditer(data):
            what, times, empty = repeat[1], int(repeat[2]), repeat[3]
            after = data[repeat.end() : repeat.end() + 2048]
            holds_value = (not empty and what == b"columns") or (
                what == b"rows" and (b"office:value" in after.split(b"</table:table-row>")[0]
                                     or b"<text:" in after.split(b"</table:table-row>")[0])
            )
            if holds_value and times > 1:
                cells += times
        if cells > limits.cells:
            raise too_many_cells(cells, limits.cells)


# --- xlsb ------------------------------------------------------------------------------------------

_BRT_ROW, _BRT_CELLS, _BRT_SST_ITEM = 0, frozenset(range(1, 12)), 19
_XLSB_SHEET = re.compile(r"^xl/worksheets/[^/]+\.bin$")


def scan_xlsb(path: Path, limits: Limits = LIMITS) -> None:
    """Walk the records of an Excel binary workbook's sheets: the last row and column holding a value,
    cells with a value, the longest shared string."""
    try:
        with zipfile.ZipFile(path) as package:
            budget = _Budget(limits)
            for member in package.infolist():
                if _XLSB_SHEET.match(member.filename):
                    budget.sheet(*_xlsb_sheet(package.read(member)))
                elif member.filename == "xl/sharedStrings.bin":
                    for kind, start, size in _records(package.read(member)):
                        if kind == _BRT_SST_ITEM and size > 2 * limits.cell_chars + 16:
                            raise cell_too_large(limits.cell_chars)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, struct.error, IndexError):
        raise corrupt() from None


def _xlsb_sheet(data: bytes) -> tuple[int, int, int]:
    row = last_row = last_column = cells = 0
    for kind, start, size in _records(data):
        if kind == _BRT_ROW and size >= 4:
            row = struct.unpack_from("<I", data, start)[0] + 1
        elif kind in _BRT_CELLS and kind != 1 and size >= 4:
            cells += 1
            last_row = max(last_row, row)
            last_column = max(last_column, struct.unpack_from("<I", data, start)[0] + 1)
    return last_row, last_column, cells


def _records(data: bytes):
    """(type, start of the body, size) of each record: both numbers are variable-length, 7 bits a byte."""
    pos, end = 0, len(data)
    while pos < end:
        kind = data[pos] & 0x7F
        if data[pos] & 0x80:
            kind |= (data[pos + 1] & 0x7F) << 7
            pos += 1
        pos += 1
        size, shift = 0, 0
        for _i in range(4):
            byte = data[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        yield kind, pos, size
        pos += size
