"""Mail benchmark: `summaries send` for every agency of the dashboard benchmark's database to a local
SMTP server (aiosmtpd), the dry run, a second run, and the city's compliance report with its vehicle
detail, each timed with its peak memory against the targets.

    .venv/bin/python bench/mail.py --acquisitions 1000000 --agencies 2000

The database is bench/dashboard.py's (filled by it when missing: ~3 min); every agency has a contact
address, and the benchmark gives its reviewer one. The sends are whole `flask` processes, as cron
runs them; the messages' record of the measured month is emptied first, so the full send sends all.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _process  # noqa: E402
import dashboard  # noqa: E402  (the benchmark database: bench/dashboard.py)
import sqlalchemy as sa  # noqa: E402

DRY_RUN_SECONDS = 10
SEND_SECONDS = 60
SECOND_RUN_SECONDS = 10
REPORT_SECONDS = 60
PEAK_BYTES = 1 << 30
REVIEWER_EMAIL = "bench-reviewer@bench.example.cn"


class Counter:
    """An SMTP handler that counts what arrives without keeping it (a province's mail is large)."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.attachments = 0

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        self.bytes += len(envelope.content)
        if self.messages % 500 == 1:  # parse a sample: every message carries its report
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.attachments += sum(1 for _ in message.iter_attachments())
        return "250 OK"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def prepare(url: str, month: str) -> None:
    """A reviewer with an address (the city digest), and nothing recorded as sent for the month."""
    from fleet.base import db
    from fleet.base.models import SentSummary, User

    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.update(User).where(User.username == dashboard.REVIEWER).values(email=REVIEWER_EMAIL))
        connection.execute(sa.delete(SentSummary).where(SentSummary.month == month))
    engine.dispose()


def city_report(url: str, year: int) -> None:
    """Child process: the city's report of the year, vehicle detail included, to a file; prints its
    path, the vehicle rows written and the rows each rule should have."""
    from fleet.base import db
    from fleet.base.periods import Period
    from fleet.read.reports import compliance_workbook
    from rules.active import active_pack
    from rules.engine import evaluate

    app = dashboard.make_app(url)
    with app.app_context():
        session = db.get_session()
        pack = active_pack(session)
        period = Period.year(year)
        results = evaluate(session, pack, period)
        expected = {r.rule.title_in("zh"): r.in_scope + r.exempt for r in results if r.agency_id is None}
        path = Path(tempfile.mkdtemp(prefix="bench-report-")) / "city.xlsx"
        start = time.perf_counter()
        compliance_workbook(session, pack, period, deadline_days=app.config["REPORTING_DEADLINE_DAYS"], results=results, target=path)
        elapsed = time.perf_counter() - start
    with open("/proc/self/status") as status:
        peak = int(next(line for line in status if line.startswith("VmHWM")).split()[1]) * 1024
    print(json.dumps({"path": str(path), "seconds": elapsed, "peak": peak, "expected": expected}))


def check_report(path: Path, expected: dict[str, int]) -> tuple[bool, int]:
    """Open the report in openpyxl: every in-scope vehicle once under each rule, on as many sheets as it takes."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True)
    found: dict[str, int] = {}
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    for sheet in workbook.worksheets:
        if not sheet.title.startswith("车辆明细"):
            continue
        for row in sheet.iter_rows(min_row=4, max_col=3, values_only=True):
            key = (row[0], row[2])
            duplicates += key in seen
            seen.add(key)
            found[row[0]] = found.get(row[0], 0) + 1
    workbook.close()
    return found == {title: n for title, n in expected.items() if n} and not duplicates, sum(found.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acquisitions", type=int, default=1_000_000)
    parser.add_argument("--agencies", type=int, default=2000)
    parser.add_argument("--month", help="YYYY-MM (default: June of the benchmark's year)")
    parser.add_argument("--workers", type=int, default=2, help="summaries send --workers for the full send (default: 2, the cores)")
    parser.add_argument("--city-report", help=argparse.SUPPRESS)  # the child process of the report
    args = parser.parse_args()
    year = dashboard.benchmark_year()
    url = dashboard.database_url(args.acquisitions, args.agencies)
    if args.city_report:
        city_report(url, year)
        return
    if not dashboard.filled(url, args.acquisitions, args.agencies):
        started = time.perf_counter()
        dashboard.fill(url, args.acquisitions, args.agencies)
        print(f"  filled in {time.perf_counter() - started:.0f} s")
    month = args.month or f"{year}-06"
    prepare(url, month)

    from aiosmtpd.controller import Controller

    counter = Counter()
    port = _process.free_port()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    env = {"DATABASE_URL": url, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "MAIL_FROM": "fleet@bench.example.cn"}
    send = ["summaries", "send", "--month", month, "--json"]
    try:
        print(f"database: {url.split('@')[-1]} ({dashboard.versions(url)}); {args.acquisitions:,} acquisitions, {args.agencies:,} agencies; month {month}")
        dry_s, dry_peak, out = _process.flask_process([*send, "--dry-run"], env)
        dry = json.loads(out)
        full_s, full_peak, out = _process.flask_process(
            [*send, "--workers", str(args.workers)], env, ok_codes=(0, 1), children=args.workers if args.workers > 1 else 0
        )
        full = json.loads(out)
        again_s, again_peak, out = _process.flask_process(send, env)
        again = json.loads(out)
    finally:
        controller.stop()
    _, out = _process.python_process([str(Path(__file__)), "--acquisitions", str(args.acquisitions), "--agencies", str(args.agencies), "--city-report", "1"], {})
    report = json.loads(out)
    ok, rows = check_report(Path(report["path"]), report["expected"])
    Path(report["path"]).unlink()

    print(f"{'':<56}{'time':>9}{'peak':>10}   targets: < {DRY_RUN_SECONDS} s / < {SEND_SECONDS} s, < {PEAK_BYTES >> 20} MiB")
    lines = [
        (f"summaries send --dry-run ({len(dry['would_send'])} would send, {dry['attachments_built']} reports)", dry_s, dry_peak, DRY_RUN_SECONDS),
        (f"summaries send --workers {args.workers} ({len(full['sent'])} sent, {counter.messages} received)", full_s, full_peak, SEND_SECONDS),
        (f"summaries send again ({len(again['sent'])} sent)", again_s, again_peak, SECOND_RUN_SECONDS),
        (f"city report {year}, vehicle detail ({rows:,} rows)", report["seconds"], report["peak"], REPORT_SECONDS),
    ]
    for name, seconds, peak, target in lines:
        print(f"  {name:<54}{seconds:8.1f}s{peak / 2**20:7.0f}MiB   {verdict(seconds < target and peak < PEAK_BYTES)}")
    print(f"  mail received: {counter.bytes / 2**20:.0f} MiB; sampled messages with a report attached: {counter.attachments}")
    print(f"  second run sends nothing: {verdict(not again['sent'])}; report opens in openpyxl, every vehicle once per rule: {verdict(ok)}")


if __name__ == "__main__":
    main()
