"""Unusable-file checks: refuse a file that is not a readable xlsx before anything parses it.

Everything here looks at bytes and at the zip's central directory only, so a hostile or broken file
(a renamed .xls or CSV, a truncated download, an encrypted workbook, a decompression bomb) is turned
away in milliseconds with a clear message instead of a traceback or an exhausted machine.
"""

from __future__ import annotations

import codecs
import re
import zipfile
import zlib
from pathlib import Path

from fleet.base.text import _

# Declared sizes above these are refused before any member is inflated. A real 100k-row upload
# inflates to ~100 MB with a ratio near 10; zero-filled bombs reach ratios of 1000.
MAX_UNCOMPRESSED_BYTES = 1 << 30
MAX_RATIO = 200
RATIO_CHECKED_ABOVE = 20 << 20

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An encrypted xlsx is an OLE2 compound file holding the streams EncryptionInfo and EncryptedPackage;
# directory entry names are stored in UTF-16LE.
_ENCRYPTION_STREAM = "EncryptionInfo".encode("utf-16-le")
_SNIFF_BYTES = 64 << 10
_MARKUP = re.compile(rb"^(\xef\xbb\xbf|\xff\xfe|\xfe\xff)?\s*<(\?xml|!doctype|html|table|meta|head|body|workbook)", re.IGNORECASE)
# calamine holds a sheet as a dense grid from its first to its last filled cell, so a single value in
# XFD1048576 of a tiny file asks for half a terabyte and aborts the process: the used area is checked
# first, from the sheet's <dimension> when it is small, else by scanning the sheet's XML.
MAX_SHEET_CELLS = 10_000_000
_SHEET_XML = re.compile(r"^xl/worksheets/[^/]+\.xml$")
_DIMENSION = re.compile(
    rb'<(?:\w+:)?dimension\s+ref="\$?([A-Z]{1,3})\$?([0-9]{1,7})(?::\$?([A-Z]{1,3})\$?([0-9]{1,7}))?"'
)
_CELL = re.compile(rb'c r="[A-Z]{1,3}([0-9]{1,7})"[^>]*?(/?)>')
_WIDE_CELL = re.compile(rb'c r="([A-Z]{2,3})[0-9]{1,7}"[^>]*?(/?)>')
_SCAN_CHUNK = 4 << 20


class UnusableFile(Exception):
    """The file itself cannot be used; `code` is stable, `message` is for the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


def check_package(path: Path, *, max_bytes: int, max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES) -> None:
    """Raise UnusableFile unless path is an xlsx/xlsm of acceptable size whose members may be inflated."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise UnusableFile(
            "too_large",
            _("文件过大（%(size)s MB），上限为 %(limit)s MB。请拆分后分别上传。",
              size=_megabytes(size), limit=_megabytes(max_bytes)),
        )
    check_contents(path, max_uncompressed_bytes=max_uncompressed_bytes)


def check_contents(path: Path, *, max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES) -> None:
    """The format and zip checks of check_package, without the upload size limit."""
    path = Path(path)
    stat = path.stat()
    # check_package then read_table is the usual sequence: the same unchanged file is checked once.
    seen = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, max_uncompressed_bytes)
    if seen in _passed:
        return
    _check_contents(path, max_uncompressed_bytes)
    _passed.append(seen)
    del _passed[:-8]


_passed: list[tuple[str, int, int, int]] = []


def _check_contents(path: Path, max_uncompressed_bytes: int) -> None:
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head:
        raise UnusableFile("not_xlsx", _("文件是空的（0 字节），不是 Excel 工作簿。"))
    if head.startswith(_OLE2_MAGIC):
        _refuse_compound_file(path)
    if not head.startswith(_ZIP_MAGIC):
        if _MARKUP.match(head):
            # Web systems often export an HTML table or an Excel 2003 XML file and name it .xls.
            raise UnusableFile(
                "not_xlsx",
                _("这是网页（HTML）或 XML 格式导出的表格，不是 xlsx 工作簿。请用 Excel 打开后“另存为” Excel 工作簿（*.xlsx）再上传。"),
            )
        if _looks_like_text_table(head):
            raise UnusableFile(
                "csv_format",
                _("这是 CSV 或文本文件，不是 xlsx 工作簿。请用 Excel 打开后“另存为” Excel 工作簿（*.xlsx）再上传。"),
            )
        raise UnusableFile("not_xlsx", _("文件不是 Excel 工作簿（xlsx）。请上传用 Excel 保存的 .xlsx 文件。"))
    try:
        with zipfile.ZipFile(path) as package:
            members = package.infolist()
            _check_members(members, max_uncompressed_bytes)
            for member in members:
                if _SHEET_XML.match(member.filename):
                    _check_sheet_area(package, member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, zlib.error):
        raise UnusableFile("corrupt", _("文件已损坏或不完整（可能下载或复制中断），无法打开。请重新保存后上传。")) from None


def _refuse_compound_file(path: Path) -> None:
    """OLE2 is either an old .xls or an encrypted xlsx; both are refused, with a message for each."""
    content = path.read_bytes()
    if _ENCRYPTION_STREAM in content:
        raise UnusableFile("encrypted", _("工作簿设有打开密码（已加密），无法读取。请取消密码后重新保存上传。"))
    raise UnusableFile(
        "xls_format",
        _("这是旧版 Excel 97-2003 文件（.xls）。请用 Excel 打开后“另存为” Excel 工作簿（*.xlsx）再上传。"),
    )


def _check_members(members: list[zipfile.ZipInfo], max_uncompressed_bytes: int) -> None:
    names = {m.filename for m in members}
    if "[Content_Types].xml" not in names or not any(n.endswith("workbook.xml") for n in names):
        if "mimetype" in names or any(n.endswith("workbook.bin") for n in names):
            raise UnusableFile(
                "not_xlsx",
                _("这是 OpenDocument（.ods）或 Excel 二进制（.xlsb）工作簿。请用 Excel 打开后“另存为” Excel 工作簿（*.xlsx）再上传。"),
            )
        raise UnusableFile("not_xlsx", _("文件是压缩包但不是 Excel 工作簿（xlsx）。请上传用 Excel 保存的 .xlsx 文件。"))
    if any(m.flag_bits & 0x1 for m in members):
        raise UnusableFile("encrypted", _("工作簿设有打开密码（已加密），无法读取。请取消密码后重新保存上传。"))
    declared = sum(m.file_size for m in members)
    inflated_too_far = any(
        m.file_size > RATIO_CHECKED_ABOVE and m.file_size > MAX_RATIO * max(m.compress_size, 1) for m in members
    )
    if declared > max_uncompressed_bytes or inflated_too_far:
        raise UnusableFile(
            "decompression_bomb",
            _("文件解压后过大（%(size)s MB），疑似异常文件，已拒绝读取。", size=_megabytes(declared)),
        )


def _check_sheet_area(package: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    with package.open(member) as fh:
        head = fh.read(_SNIFF_BYTES)
    dimension = _DIMENSION.search(head)
    if dimension is not None:
        first_column, first_row, last_column, last_row = dimension.groups()
        rows = int(last_row or first_row) - int(first_row) + 1
        columns = _column_number(last_column or first_column) - _column_number(first_column) + 1
        if rows * columns <= MAX_SHEET_CELLS:
            return
    # No dimension, or one that counts formatted empty cells: find the last row and the widest filled cell.
    rows, columns = _scanned_area(package, member)
    if rows * columns > MAX_SHEET_CELLS:
        raise UnusableFile(
            "too_large",
            _("工作表的使用范围过大（%(rows)s 行 × %(columns)s 列），可能在很远的单元格里有内容。"
              "请删除多余的行和列后重新保存上传。", rows=rows, columns=columns),
        )


def _scanned_area(package: zipfile.ZipFile, member: zipfile.ZipInfo) -> tuple[int, int]:
    """Last row and widest column holding a value, reading the sheet XML in chunks (rows from 1: an overestimate)."""
    last_row, columns, tail = 0, 26, b""
    with package.open(member) as fh:
        while chunk := fh.read(_SCAN_CHUNK):
            data = tail + chunk
            tail = data[-64:]
            last_row = max(last_row, _last_value_row(data))
            for letters, empty in _WIDE_CELL.findall(data):
                if not empty:
                    columns = max(columns, _column_number(letters))
    return last_row, columns


def _last_value_row(data: bytes) -> int:
    """The row of the last cell in data that is not self-closing (<c r="A9" s="1"/> is formatting only)."""
    end = len(data)
    while (at := data.rfind(b'c r="', 0, end)) >= 0:
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


def _looks_like_text_table(head: bytes) -> bool:
    """Printable text with separators or several lines: a CSV or tab-separated export renamed to .xlsx."""
    sample = head[:4096]
    encodings = ["utf-16"] if sample[:2] in (b"\xff\xfe", b"\xfe\xff") else ["utf-8-sig", "gb18030"]
    for encoding in encodings:
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
        if not text.strip() or printable < 0.98 * len(text):
            return False
        lines = [line for line in text.splitlines() if line.strip()]
        return any(sep in lines[0] for sep in (",", "\t", ";", "，")) or len(lines) > 1
    return False


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f}"
