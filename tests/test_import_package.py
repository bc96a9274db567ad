"""Files that cannot be used are refused before parsing, with a stable code and a clear message."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
import xlwt
from msoffcrypto.format.ooxml import OOXMLFile
from openpyxl import Workbook
from openpyxl.styles import Font

from imports.package import UnusableFile, check_package
from imports.read import read_table
from imports.sheets import read_book
from tests.xlsx_factory import acquisition, write_upload

MB = 1 << 20


def refused(path: Path, **limits: int) -> UnusableFile:
    with pytest.raises(UnusableFile) as caught:
        check_package(path, max_bytes=limits.pop("max_bytes", 50 * MB), **limits)
    return caught.value


def unreadable(path: Path) -> UnusableFile:
    with pytest.raises(UnusableFile) as caught:
        read_table(path)
    return caught.value


def _zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> Path:
    """A zip written by hand: (name, data as stored, method, crc, inflated size) per member.

    zipfile would have to deflate a bomb's 1.5 GB to write it; here its deflate stream is repeated.
    """
    local, central = b"", b""
    for name, data, method, crc, size in members:
        encoded = name.encode()
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 33, crc, len(data), size, len(encoded), 0)
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 33, crc, len(data), size, len(encoded), 0, 0, 0, 0, 0,
            len(local),
        ) + encoded
        local += header + encoded + data
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, 0, zlib.crc32(data), len(data)


def _zeros(name: str, megabytes: int) -> tuple[str, bytes, int, int, int]:
    """A deflated member of `megabytes` MB of zeros: one flushed deflate block repeated."""
    chunk = bytes(MB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(chunk, crc)
    return name, block * megabytes + compressor.flush(), 8, crc, megabytes * MB


def _one_long_string(megabytes: int) -> tuple[str, bytes, int, int, int]:
    """A deflated shared-strings part, valid XML throughout, holding one string of `megabytes` MB."""
    head = b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>'
    chunk, tail = b"A" * MB, b"</t></si></sst>"
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    for _ in range(megabytes):
        crc = zlib.crc32(chunk, crc)
    data = start + block * megabytes + compressor.compress(tail) + compressor.flush()
    return "xl/sharedStrings.xml", data, 8, zlib.crc32(tail, crc), len(head) + megabytes * MB + len(tail)


def _bomb(path: Path, megabytes: int) -> Path:
    return _zip(path, [
        _stored("[Content_Types].xml", b"<Types/>"),
        _stored("xl/workbook.xml", b"<workbook/>"),
        _zeros("xl/worksheets/sheet1.xml", megabytes),
    ])


def test_file_over_the_upload_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.xlsx"
    path.write_bytes(os.urandom(3 * MB))
    error = refused(path, max_bytes=2 * MB)
    assert error.code == "too_large"
    assert "2.0 MB" in error.message


def test_random_bytes_are_not_an_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "noise.xlsx"
    path.write_bytes(os.urandom(5000))
    assert refused(path).code == "not_xlsx"


def test_empty_file_is_not_an_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    assert refused(path).code == "not_xlsx"


@pytest.mark.parametrize("encoding", ["utf-8", "gbk", "utf-8-sig"])
def test_csv_named_xlsx_is_read_as_csv(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "export.xlsx"
    path.write_bytes("单位名称,车架号,购置日期\n濮阳市公安局,LZYBEV0A9R0000001,2025-03-05\n".encode(encoding))
    check_package(path, max_bytes=50 * MB)
    book = read_book(path, name="export.xlsx")
    assert book.format == "csv"
    assert book.sheets[0].name == "export.xlsx"
    assert book.sheets[0].rows[1] == ["濮阳市公安局", "LZYBEV0A9R0000001", "2025-03-05"]


@pytest.mark.parametrize("suffix, code", [(".csv", "csv_format"), (".xls", "xls_format"), (".xlsx", "not_xlsx")])
def test_file_that_claims_a_format_and_is_not_it(tmp_path: Path, suffix: str, code: str) -> None:
    path = tmp_path / f"export{suffix}"
    path.write_bytes(bytes(range(256)) * 20)
    error = refused(path)
    assert error.code == code
    assert suffix in error.message or "xlsx" in error.message


def test_old_xls_named_xlsx_is_read_as_xls(tmp_path: Path) -> None:
    book = xlwt.Workbook()
    book.add_sheet("车辆").write(0, 0, "单位名称")
    path = tmp_path / "old.xlsx"
    book.save(str(path))
    check_package(path, max_bytes=50 * MB)
    read = read_book(path)
    assert read.format == "xls"
    assert read.sheets[0].rows == [["单位名称"]]


def test_word_document_named_xls_says_xls_format(tmp_path: Path) -> None:
    path = tmp_path / "letter.xls"
    path.write_bytes(_ole_with_stream(tmp_path / "x.xls").read_bytes().replace("Workbook".encode("utf-16-le"), "WordDocu".encode("utf-16-le")))
    error = refused(path)
    assert error.code == "xls_format"


def test_wps_et_file_names_its_format_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "fleet.et"
    path.write_bytes(_ole_with_stream(tmp_path / "x.xls").read_bytes().replace("Workbook".encode("utf-16-le"), "WordDocu".encode("utf-16-le")))
    error = refused(path)
    assert error.code == "not_xlsx"
    assert "WPS" in error.message and ".et" in error.message and "另存为" in error.message


def _ole_with_stream(path: Path) -> Path:
    book = xlwt.Workbook()
    book.add_sheet("车辆").write(0, 0, "单位名称")
    book.save(str(path))
    return path


def test_password_protected_workbook_is_encrypted(tmp_path: Path) -> None:
    plain = write_upload(tmp_path / "plain.xlsx", [acquisition()])
    path = tmp_path / "secret.xlsx"
    with plain.open("rb") as source, path.open("wb") as target:
        OOXMLFile(source).encrypt("secret", target)
    assert refused(path).code == "encrypted"
    assert unreadable(path).code == "encrypted"


def test_truncated_download_is_corrupt(tmp_path: Path) -> None:
    whole = write_upload(tmp_path / "whole.xlsx", [acquisition(i) for i in range(1, 50)]).read_bytes()
    path = tmp_path / "cut.xlsx"
    path.write_bytes(whole[: len(whole) // 2])
    error = refused(path)
    assert error.code == "corrupt"
    assert "损坏" in error.message


def test_excel_2003_xml_named_xls_says_save_as_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "export.xls"
    path.write_bytes(
        '\ufeff<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"></Workbook>'.encode()
    )
    error = refused(path)
    assert error.code == "not_xlsx"
    assert "XML" in error.message and "另存为" in error.message


def test_opendocument_text_is_not_a_spreadsheet(tmp_path: Path) -> None:
    path = tmp_path / "letter.ods"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", "<office:document-content/>")
    error = refused(path)
    assert error.code == "not_xlsx"


def test_zip_that_is_no_workbook_is_not_an_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert refused(path).code == "not_xlsx"


def test_broken_workbook_xml_is_corrupt_not_a_traceback(tmp_path: Path) -> None:
    path = _zip(tmp_path / "broken.xlsx", [
        _stored("[Content_Types].xml", b"<Types/>"),
        _stored("xl/workbook.xml", b"<workbook><sheets><sheet name="),
    ])
    check_package(path, max_bytes=50 * MB)
    assert unreadable(path).code == "corrupt"


def test_decompression_bomb_is_refused_before_inflating_with_flat_memory(tmp_path: Path) -> None:
    # Refused from the declared sizes alone: inflating 1.5 GB would show in the peak. (Speed is
    # measured in bench/, not asserted in tests that share a busy CI machine.)
    path = _bomb(tmp_path / "bomb.xlsx", 1500)
    assert path.stat().st_size < 3 * MB
    tracemalloc.start()
    error = refused(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert error.code == "decompression_bomb"
    assert peak < 10 * MB
    assert unreadable(path).code == "decompression_bomb"


def test_member_inflating_beyond_its_declared_size_is_corrupt_and_never_inflated(tmp_path: Path) -> None:
    # Declared sizes can lie: 300 MB behind a declared 1,000 bytes passes the checks of the declared
    # sizes, and the reader must stop at the declared size instead of inflating what follows.
    with zipfile.ZipFile(write_upload(tmp_path / "real.xlsx", [acquisition(1)])) as source:
        members = [_stored(m.filename, source.read(m)) for m in source.infolist() if m.filename != "xl/sharedStrings.xml"]
    name, data, method, crc, inflated = _one_long_string(300)
    path = _zip(tmp_path / "liar.xlsx", [*members, (name, data, method, crc, 1000)])
    assert inflated > 300 * MB
    check_package(path, max_bytes=50 * MB)
    # In a process of its own, so that its peak memory is the read's alone: VmHWM counts from exec,
    # where getrusage's ru_maxrss keeps the peak of the forking test process (pytest's few hundred MB).
    probe = (
        "import sys\n"
        "from imports.read import read_table\n"
        "from imports.package import UnusableFile\n"
        "try:\n    read_table(sys.argv[1])\nexcept UnusableFile as e:\n    print(e.code)\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(status.split('VmHWM:')[1].split()[0]) // 1024)\n"
    )
    code, peak_mb = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent
    ).stdout.split()
    assert code == "corrupt"
    assert int(peak_mb) < 250


def test_bomb_below_the_total_limit_is_refused_by_its_ratio(tmp_path: Path) -> None:
    path = _bomb(tmp_path / "small-bomb.xlsx", 100)
    assert refused(path).code == "decompression_bomb"


def test_total_limit_is_a_parameter(tmp_path: Path) -> None:
    path = write_upload(tmp_path / "ok.xlsx", [acquisition(i) for i in range(1, 20)])
    check_package(path, max_bytes=50 * MB)
    assert refused(path, max_uncompressed_bytes=1000).code == "decompression_bomb"


def test_empty_workbook(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    Workbook().save(path)
    check_package(path, max_bytes=50 * MB)
    error = unreadable(path)
    assert error.code == "empty_workbook"


def test_no_recognisable_header_anywhere(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["会议纪要"])
    book.active.append(["时间", "地点", "参会人员"])
    book.active.append(["周一", "三楼", "张三"])
    path = tmp_path / "minutes.xlsx"
    book.save(path)
    error = unreadable(path)
    assert error.code == "no_header"
    assert "表头" in error.message


def test_header_without_data_rows(tmp_path: Path) -> None:
    path = write_upload(tmp_path / "header-only.xlsx", [])
    assert unreadable(path).code == "no_data"



def _far_cell_workbook(path: Path, *, value: str | None, dimension: bool = True) -> Path:
    """An ordinary upload plus one cell in the sheet's last row and column (a value, or formatting only)."""
    book = Workbook()
    sheet = book.active
    sheet.append(["单位名称", "车架号", "车辆类型", "燃料种类", "购置日期", "所属县区", "购置方式"])
    sheet.append(["濮阳市公安局", "LZYBEV0A9R0000001", "公务用车", "汽油", "2025-03-05", "市直", "新增"])
    sheet["XFD1048576"].value = value
    sheet["XFD1048576"].font = Font(bold=True)
    book.save(path)
    if not dimension:
        # Some writers (openpyxl's write-only mode among them) leave the dimension out.
        with zipfile.ZipFile(path) as source:
            members = {name: source.read(name) for name in source.namelist()}
        members["xl/worksheets/sheet1.xml"] = re.sub(rb"<dimension[^>]*/>", b"", members["xl/worksheets/sheet1.xml"])
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
            for name, content in members.items():
                target.writestr(name, content)
    return path


@pytest.mark.parametrize("dimension", [True, False], ids=["with-dimension", "without-dimension"])
def test_value_in_a_far_cell_is_refused_instead_of_exhausting_memory(tmp_path: Path, dimension: bool) -> None:
    path = _far_cell_workbook(tmp_path / "far.xlsx", value="x", dimension=dimension)
    error = unreadable(path)
    assert error.code == "too_large"
    assert "1048576" in error.message


@pytest.mark.parametrize("dimension", [True, False], ids=["with-dimension", "without-dimension"])
def test_formatting_to_the_end_of_the_sheet_is_not_a_used_area(tmp_path: Path, dimension: bool) -> None:
    path = _far_cell_workbook(tmp_path / "styled.xlsx", value=None, dimension=dimension)
    check_package(path, max_bytes=50 * MB)
    assert read_table(path).frame["vin"].tolist() == ["LZYBEV0A9R0000001"]
