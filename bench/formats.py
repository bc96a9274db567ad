"""Read time of the same acquisitions as xlsx, xls, CSV (GBK and UTF-8) and an HTML table.

    .venv/bin/python bench/formats.py --rows 100000

Writes the rows of bench/import.py's workbook once in each format (bench/.cache/) — the .xls in
sheets of 50,000 rows, since Excel 97-2003 holds at most 65,536 rows a sheet — then times, median of
--repeat runs in this process: the guarded reader alone (imports.sheets.read_book: the guards' scan
and the cells) and the import's whole read step (imports.read.read_table: header, rows), and prints
each against the xlsx. Peak memory of one read_table per format is measured in a process of its own.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import html
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _data  # noqa: E402

XLS_SHEET_ROWS = 50_000


def _rows(path: Path) -> list[list]:
    from imports.sheets import read_book

    return read_book(path).sheets[0].rows


def _text(value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return f"{value.year}/{value.month}/{value.day}"
    return str(value)


def write_xls(rows: list[list], path: Path) -> None:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    dates = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    title, header, body = rows[0], rows[1], rows[2:]
    for part in range(0, len(body), XLS_SHEET_ROWS):
        sheet = book.add_sheet(f"车辆购置{part // XLS_SHEET_ROWS + 1}")
        for r, row in enumerate([title, header, *body[part : part + XLS_SHEET_ROWS]]):
            for c, value in enumerate(row):
                if isinstance(value, dt.datetime):
                    sheet.write(r, c, value, dates)
                elif value not in (None, ""):
                    sheet.write(r, c, value)
    book.save(str(path))


def write_csv(rows: list[list], path: Path, encoding: str) -> None:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows([_text(v) for v in row] for row in rows)


def write_html(rows: list[list], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("<html><body><table>")
        fh.writelines("<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row) + "</tr>\n" for row in rows)
        fh.write("</table></body></html>")


def files(rows: int, agencies: int) -> dict[str, Path]:
    xlsx = _data.cached_workbook(rows, agencies)
    stem = xlsx.with_suffix("")
    made = {
        "xls": (Path(f"{stem}.xls"), write_xls),
        "csv (GBK)": (Path(f"{stem}-gbk.csv"), lambda r, p: write_csv(r, p, "gbk")),
        "csv (UTF-8 BOM)": (Path(f"{stem}-utf8.csv"), lambda r, p: write_csv(r, p, "utf-8-sig")),
        "html named .xls": (Path(f"{stem}-html.xls"), write_html),
    }
    content: list[list] | None = None
    for path, write in made.values():
        if not path.exists():
            content = content or _rows(xlsx)
            write(content, path)
    return {"xlsx": xlsx, **{name: path for name, (path, _write) in made.items()}}


def median_seconds(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


_PEAK = """
import sys
from imports.read import read_table
read_table(sys.argv[1])
print(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024)
"""


def peak_mb(path: Path) -> int:
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, check=True, cwd=ROOT)
    return int(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--agencies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from imports.read import read_table
    from imports.sheets import read_book

    paths = files(args.rows, args.agencies)
    print(f"{args.rows:,} rows; median of {args.repeat}; read_book = guards + cells, read_table = the import's read step")
    print(f"{'format':<18}{'MB':>7}{'read_book s':>13}{'read_table s':>14}{'vs xlsx':>9}{'peak MB':>9}")
    baseline = None
    for name, path in paths.items():
        book = median_seconds(lambda: read_book(path), args.repeat)
        table = median_seconds(lambda: read_table(path), args.repeat)
        baseline = baseline or table
        size = path.stat().st_size / (1 << 20)
        print(f"{name:<18}{size:>7.1f}{book:>13.2f}{table:>14.2f}{table / baseline:>9.2f}{peak_mb(path):>9}")


if __name__ == "__main__":
    main()
