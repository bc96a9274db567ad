"""Import benchmark: each pipeline stage and the whole validate and import, against pandas on the same file.

    .venv/bin/python bench/import.py --rows 100000

Makes a realistic workbook once (bench/.cache/), times pandas.read_excel(engine="openpyxl") on it as
the baseline, then each stage in this process (read, map, normalise, validate, stage, commit), then
`flask validate` and `flask import` as whole processes (median of --repeat runs) with their peak
memory (VmHWM). The database is SQLite in bench/.cache/, or TEST_DATABASE_URL (PostgreSQL), emptied first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _data  # noqa: E402
import _process  # noqa: E402
import sqlalchemy as sa  # noqa: E402

# Targets of issue 7.
VALIDATE_VS_PANDAS = 0.35
IMPORT_VS_VALIDATE = 1.5
IMPORT_PEAK_BYTES = 1024**3


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    _data.CACHE.mkdir(exist_ok=True)
    return "sqlite:///" + str(_data.CACHE / "bench-import.sqlite3")


def prepare_database(url: str, agency_count: int) -> None:
    """The schema, empty tables, and the agencies the workbook names."""
    from fleet.base import db
    from fleet.base.models import Base
    from fleet.domain.agencies import upsert_agencies

    engine = db.make_engine(url)
    db.upgrade(engine)
    with engine.begin() as connection:
        empty(connection, reversed(Base.metadata.sorted_tables))
    engine.dispose()
    app = make_app(url)
    with app.app_context():
        session = db.get_session()
        upsert_agencies(session, _data.agencies(agency_count))
        session.commit()
    app.extensions["fleet.engine"].dispose()


def empty(connection: sa.Connection, tables: Iterable[sa.Table]) -> None:
    """Empty the tables (children first), and on PostgreSQL those referring to them. By TRUNCATE
    there, not DELETE: a DELETE leaves the 100k deleted rows in every index of acquisitions until a
    vacuum, and the next import's unique check of each VIN visits its dead twin (seconds of a run
    that no real upload, of VINs never seen before, would spend)."""
    tables = list(tables)
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("TRUNCATE " + ", ".join(table.name for table in tables) + " CASCADE"))
    else:
        for table in tables:
            connection.execute(table.delete())


def empty_imports(url: str) -> None:
    """Forget what an import wrote, keeping the agencies, so the next import starts the same way."""
    from fleet.base import db
    from fleet.base.models import Acquisition, AcquisitionTally, AcquisitionVersion, AuditEntry, ImportBatch, UploadFile

    engine = db.make_engine(url)
    with engine.begin() as connection:
        models = (AcquisitionVersion, Acquisition, AcquisitionTally, AuditEntry, ImportBatch, UploadFile)
        empty(connection, (model.__table__ for model in models))
    engine.dispose()


def make_app(url: str):
    from app import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-only"})


def stages(path: Path, url: str) -> dict[str, float]:
    """Each stage of the pipeline in this process, as the pipeline chains them."""
    from python_calamine import CalamineWorkbook

    from fleet.base import db
    from imports.commit import commit_batch
    from imports.normalise import normalise
    from imports.policy import import_policy
    from imports.read import read_table
    from imports.stage import stage_batch
    from imports.validate import validate_table

    def cells() -> int:
        with CalamineWorkbook.from_path(str(path)) as workbook:
            return sum(len(workbook.get_sheet_by_name(n).to_python(skip_empty_area=False)) for n in workbook.sheet_names)

    app = make_app(url)
    times: dict[str, float] = {}
    with app.app_context():
        session = db.get_session()
        times["read"], _ = timed(cells)
        read_and_map, raw = timed(lambda: read_table(path))
        # read_table reads the cells, then finds the header and maps the columns: the rest is mapping.
        times["map"] = max(0.0, read_and_map - times["read"])
        times["normalise"], frame = timed(lambda: normalise(raw.frame, date1904=raw.date1904))
        policy = import_policy(session)
        times["validate"], validated = timed(
            lambda: validate_table(session, raw, frame, file_name=path.name, policy=policy, user=None)
        )
        if not validated.report.ok:
            raise SystemExit(f"the benchmark workbook has errors: {validated.report.errors[:3]}")
        content = path.read_bytes()

        def stage():
            batch = stage_batch(session, content, validated.report, file_name=path.name, user=None, agency_id=None)
            session.commit()
            return batch

        times["stage"], batch = timed(stage)

        def commit():
            counts = commit_batch(session, batch, validated, reported_on=dt.date.today())
            session.commit()
            return counts

        times["commit"], counts = timed(commit)
        if counts.inserted != validated.report.rows:
            raise SystemExit(f"commit inserted {counts.inserted} of {validated.report.rows} rows")
    app.extensions["fleet.engine"].dispose()
    return times


def whole_process(command: str, path: Path, url: str) -> tuple[float, int, dict]:
    """`flask validate|import PATH --json` as its own process: wall time, peak RSS in bytes, its JSON."""
    elapsed, peak, stdout = _process.flask_process([*command.split(), str(path), "--json"], {"DATABASE_URL": url})
    return elapsed, peak, json.loads(stdout)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--agencies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each whole process; the median counts")
    args = parser.parse_args()

    import pandas as pd

    started = time.perf_counter()
    path = _data.cached_workbook(args.rows, args.agencies)
    made = time.perf_counter() - started
    url = database_url()
    print(f"workbook: {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.1f} MB, {args.rows} rows, "
          f"{len(_data.HEADERS)} columns; {'made' if made > 1 else 'cached'})")
    print(f"database: {url.split('@')[-1]}")

    pandas_openpyxl, frame = timed(lambda: pd.read_excel(path, engine="openpyxl"))
    pandas_calamine, _ = timed(lambda: pd.read_excel(path, engine="calamine"))
    assert len(frame) == args.rows + 1  # the title row above the header makes the header a data row

    prepare_database(url, args.agencies)
    stage_times = stages(path, url)
    empty_imports(url)
    validate_runs, import_runs = [], []
    for _ in range(args.repeat):
        validate_runs.append(whole_process("validate", path, url))
        import_runs.append(whole_process("import", path, url))
        empty_imports(url)
    report, outcome = validate_runs[0][2], import_runs[0][2]
    if report["errors"] or outcome["inserted"] != args.rows:
        raise SystemExit(f"unexpected outcome: {len(report['errors'])} errors, {outcome['inserted']} inserted")
    validate_time = statistics.median(t for t, _, _ in validate_runs)
    import_time = statistics.median(t for t, _, _ in import_runs)
    validate_rss = max(m for _, m, _ in validate_runs)
    import_rss = max(m for _, m, _ in import_runs)

    rows = args.rows
    print()
    print(f"{'step':<34}{'seconds':>9}{'rows/s':>12}")
    for name, seconds in stage_times.items():
        print(f"  stage {name:<28}{seconds:9.2f}{rows / seconds if seconds else float('inf'):12,.0f}")
    print(f"  validate, whole process (median){validate_time:9.2f}{rows / validate_time:12,.0f}"
          f"   peak RSS {validate_rss / 2**20:,.0f} MiB")
    print(f"  import, whole process (median)  {import_time:9.2f}{rows / import_time:12,.0f}"
          f"   peak RSS {import_rss / 2**20:,.0f} MiB")
    print(f"  pandas.read_excel(openpyxl)     {pandas_openpyxl:9.2f}{rows / pandas_openpyxl:12,.0f}")
    print(f"  pandas.read_excel(calamine)     {pandas_calamine:9.2f}{rows / pandas_calamine:12,.0f}")
    print()
    validate_ratio = validate_time / pandas_openpyxl
    import_ratio = import_time / validate_time
    print("targets (issue 7)")
    print(f"  validate / pandas+openpyxl read = {validate_ratio:.2f}  (<= {VALIDATE_VS_PANDAS})   "
          f"{verdict(validate_ratio <= VALIDATE_VS_PANDAS)}")
    print(f"  import / validate               = {import_ratio:.2f}  (< {IMPORT_VS_VALIDATE})    "
          f"{verdict(import_ratio < IMPORT_VS_VALIDATE)}")
    print(f"  import peak memory              = {import_rss / 2**20:,.0f} MiB (< 1024 MiB) "
          f"{verdict(import_rss < IMPORT_PEAK_BYTES)}")


if __name__ == "__main__":
    main()
