"""Unusable-file checks: what a file is, and refusing what cannot be read before anything parses it.

Everything here looks at the file's first bytes and at the zip's or compound file's directory only,
so an unreadable or broken file (another program's file, a truncated download, an encrypted workbook,
a decompression bomb) is turned away in milliseconds with a clear message. The limits on what a
readable file holds are checked while it is read (imports.guards, imports.sheets).
"""

from __future__ import annotations

import codecs
import re
import struct
import zipfile
import zlib
from pathlib import Path

import olefile

from fleet.base.text import _

# Declared sizes above these are refused before any member is inflated. A real 100k-row upload
# inflates to ~100 MB with a ratio near 10; zero-filled bombs reach ratios of 1000.
MAX_UNCOMPRESSED_BYTES = 1 << 30
MAX_RATIO = 200
RATIO_CHECKED_ABOVE = 20 << 20

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SNIFF_BYTES = 64 << 10
_MARKUP = re.compile(rb"^(\xef\xbb\xbf|\xff\xfe|\xfe\xff)?\s*<(\?xml|!doctype|html|table|meta|head|body|workbook)", re.IGNORECASE)
_HTML_TABLE = re.compile(rb"<table[\s>]", re.IGNORECASE)
_HTML_SNIFF_BYTES = 1 << 20
_TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})


class UnusableFile(Exception):
    """The file itself cannot be used; `code` is stable, `message` is for the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class ReaderFault(UnusableFile):
    """Reading failed through a fault of the program, not of the file: code internal_error, with an id
    the user can quote and that the logged traceback carries."""

    def __init__(self, error_id: str) -> None:
        super().__init__(
            "internal_error",
            _("读取文件时程序出错（错误编号 %(id)s），文件本身可能没有问题。请把错误编号告诉系统管理员。", id=error_id),
        )
        self.error_id = error_id


def check_package(path: Path, *, max_bytes: int, max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES) -> None:
    """Raise UnusableFile unless path is a readable format (sniff_format) of acceptable size whose members
    may be inflated."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise UnusableFile(
            "too_large",
            _("文件过大（%(size)s MB），上限为 %(limit)s MB。请拆分后分别上传。",
              size=_megabytes(size), limit=_megabytes(max_bytes)),
        )
    check_contents(path, max_uncompressed_bytes=max_uncompressed_bytes)


def check_contents(path: Path, *, max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES) -> str:
    """The format and zip checks of check_package, without the upload size limit; returns the format."""
    path = Path(path)
    stat = path.stat()
    # check_package then read_table is the usual sequence: the same unchanged file is checked once.
    seen = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, max_uncompressed_bytes)
    if seen in _passed:
        return _passed[seen]
    kind = _check_contents(path, max_uncompressed_bytes)
    _passed[seen] = kind
    while len(_passed) > 8:
        del _passed[next(iter(_passed))]
    return kind


_passed: dict[tuple[str, int, int, int], str] = {}


def _check_contents(path: Path, max_uncompressed_bytes: int) -> str:
    kind = sniff_format(path)
    if kind in ("xlsx", "xlsb", "ods"):
        try:
            with zipfile.ZipFile(path) as package:
                _check_members(package.infolist(), max_uncompressed_bytes)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, zlib.error):
            raise corrupt() from None
    return kind


def sniff_format(path: Path) -> str:
    """What the file is, from its bytes whatever its name says: xlsx (also xlsm), xlsb, ods, xls, html or csv.

    Raises UnusableFile for what cannot be read: an encrypted workbook, a format calamine does not read
    (named, with what to do), a file that claims a format by its name and is not it."""
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    suffix = path.suffix.lower()
    if not head:
        raise UnusableFile("not_xlsx", _("文件是空的（0 字节），不是 Excel 工作簿。"))
    if head.startswith(_OLE2_MAGIC):
        return _compound_file_format(path)
    if head.startswith(_ZIP_MAGIC):
        return _package_format(path)
    if _MARKUP.match(head):
        if _HTML_TABLE.search(head) or _HTML_TABLE.search(_tail(path)):
            return "html"
        # Excel 2003 XML (SpreadsheetML) and other markup without a table.
        raise UnusableFile(
            "not_xlsx",
            _("这是 XML 格式导出的表格（如 Excel 2003 XML），无法读取。请用 Excel 打开后“另存为” Excel 工作簿（*.xlsx）再上传。"),
        )
    if _looks_like_text_table(head):
        return "csv"
    if suffix in _TEXT_SUFFIXES:
        raise UnusableFile("csv_format", _("文件名是 %(suffix)s，但内容不是可读取的文本表格（CSV）。请用 Excel 打开后另存为 CSV 或 xlsx 再上传。", suffix=suffix))
    if suffix == ".xls":
        raise UnusableFile("xls_format", _("文件名是 .xls，但内容不是 Excel 97-2003 工作簿，也不是网页表格。请用 Excel 打开后“另存为” Excel 工作簿（*.xlsx）再上传。"))
    raise UnusableFile("not_xlsx", _unreadable_message())


def _unreadable_message() -> str:
    return _("文件不是可读取的表格。可上传 Excel 工作簿（.xlsx、.xlsm、.xls、.xlsb）、OpenDocument 表格（.ods）、CSV 或制表符分隔的文本、网页表格（HTML）。")


def _tail(path: Path) -> bytes:
    """More of a web page than its head: a long <head> (scripts, styles) can push the first table far down."""
    with path.open("rb") as fh:
        return fh.read(_HTML_SNIFF_BYTES)


def _compound_file_format(path: Path) -> str:
    """An OLE2 compound file: an Excel 97-2003 workbook, an encrypted xlsx, or another program's file."""
    try:
        with olefile.OleFileIO(str(path)) as ole:
            streams = {"/".join(entry).lower() for entry in ole.listdir(streams=True, storages=False)}
    except (OSError, ValueError, struct.error, IndexError):
        raise corrupt() from None
    if "encryptioninfo" in streams:
        raise encrypted()
    if "workbook" in streams:
        return "xls"
    if "book" in streams:
        raise UnusableFile(
            "xls_format",
            _("这是 Excel 5.0/95 格式的旧工作簿，无法读取。请用 Excel 打开后“另存为” Excel 工作簿（*.xlsx）再上传。"),
        )
    if path.suffix.lower() == ".et" or any(s.startswith("wps") or s == "etf" for s in streams):
        raise UnusableFile(
            "not_xlsx",
            _("这是 WPS 表格文件（.et），无法直接读取。请在 WPS 中“另存为” Excel 工作簿（*.xlsx）再上传。"),
        )
    if path.suffix.lower() == ".xls":
        raise UnusableFile("xls_format", _("文件名是 .xls，但其中没有 Excel 工作簿（可能是 Word 等其他程序的文件）。请上传 Excel 文件。"))
    raise UnusableFile("not_xlsx", _unreadable_message())


def _package_format(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as package:
            names = set(package.namelist())
            if "mimetype" in names:
                mimetype = package.read("mimetype")[:100].strip()
                if mimetype == b"application/vnd.oasis.opendocument.spreadsheet":
                    return "ods"
                raise UnusableFile("not_xlsx", _("这是 OpenDocument 文档，但不是电子表格（.ods）。请上传表格文件。"))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, zlib.error):
        raise corrupt() from None
    if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
        return "xlsx"
    if "[Content_Types].xml" in names and "xl/workbook.bin" in names:
        return "xlsb"
    if path.suffix.lower() == ".et":
        raise UnusableFile(
            "not_xlsx",
            _("这是 WPS 表格文件（.et），无法直接读取。请在 WPS 中“另存为” Excel 工作簿（*.xlsx）再上传。"),
        )
    raise UnusableFile("not_xlsx", _("文件是压缩包但不是 Excel 工作簿（xlsx）。请上传用 Excel 保存的 .xlsx 文件。"))


def corrupt() -> UnusableFile:
    return UnusableFile("corrupt", _("文件已损坏或不完整（可能下载或复制中断），无法打开。请重新保存后上传。"))


def encrypted() -> UnusableFile:
    return UnusableFile("encrypted", _("工作簿设有打开密码（已加密），无法读取。请取消密码后重新保存上传。"))


def _check_members(members: list[zipfile.ZipInfo], max_uncompressed_bytes: int) -> None:
    if any(m.flag_bits & 0x1 for m in members):
        raise encrypted()
    declared = sum(m.file_size for m in members)
    inflated_too_far = any(
        m.file_size > RATIO_CHECKED_ABOVE and m.file_size > MAX_RATIO * max(m.compress_size, 1) for m in members
    )
    if declared > max_uncompressed_bytes or inflated_too_far:
        raise UnusableFile(
            "decompression_bomb",
            _("文件解压后过大（%(size)s MB），疑似异常文件，已拒绝读取。", size=_megabytes(declared)),
        )


def _looks_like_text_table(head: bytes) -> bool:
    """Printable text with separators or several lines: a CSV or tab-separated export, whatever its name."""
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
