"""Load: N concurrent browser-like clients against gunicorn with W workers on the demo city (SQLite).

Local only and bounded: it starts gunicorn on 127.0.0.1 on a free port, on a database of its own in
bench/.cache/, logs each client in (one after another: logins are deliberately slow), then has every
client walk the pages a reviewer or an agency user opens, for --seconds, and prints the count of
answers that were not 200, the median and the 95th percentile latency against the target.

    .venv/bin/python bench/load.py --clients 50 --workers 4 --seconds 30
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
P95_TARGET_MS = 500
# The demo's users (fleet/domain/demo.yaml): reviewers see the city, agency users their own agency.
USERS = [("reviewer", "Shenhe-Demo-2026"), ("gongan", "agency-demo-2026"), ("gongjiao", "agency-demo-2026")]
PAGES = {
    "reviewer": ["/", "/vehicles/", "/exemptions/", "/uploads/", "/api/v1/acquisitions?per_page=50"],
    "agency": ["/", "/vehicles/", "/exemptions/", "/uploads/"],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Client:
    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.pages = PAGES["reviewer" if username == "reviewer" else "agency"]
        form = self.opener.open(f"{base}/login", timeout=30).read().decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
        data = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": token}).encode()
        landed = self.opener.open(f"{base}/login", data=data, timeout=30)
        if "/login" in landed.url:
            raise SystemExit(f"login of {username} failed")

    def get(self, path: str) -> tuple[int, float]:
        start = time.perf_counter()
        try:
            with self.opener.open(self.base + path, timeout=60) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        return status, (time.perf_counter() - start) * 1000


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def server_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    args.clients = max(1, min(args.clients, 200))
    args.seconds = max(1.0, min(args.seconds, 300.0))

    CACHE.mkdir(parents=True, exist_ok=True)
    database = CACHE / "load.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": secrets.token_hex(32)}
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run([*flask, "demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}", "app:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        clients = [Client(base, *USERS[n % len(USERS)]) for n in range(args.clients)]
        for client in clients:  # every worker's first request counts the figures of the year: not measured
            client.get("/")
        results: list[tuple[int, float]] = []
        lock = threading.Lock()
        stop = time.monotonic() + args.seconds

        def walk(client: Client, offset: int) -> None:
            n = offset
            while time.monotonic() < stop:
                outcome = client.get(client.pages[n % len(client.pages)])
                with lock:
                    results.append(outcome)
                n += 1

        threads = [threading.Thread(target=walk, args=(c, i)) for i, c in enumerate(clients)]
        # Where the two cores went: the clients run on the same machine as the server.
        pids = server_pids(server.pid)
        server_before, client_before, wall_before = cpu_seconds(pids), time.process_time(), time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        server_cpu, client_cpu = cpu_seconds(pids) - server_before, time.process_time() - client_before
        wall = time.monotonic() - wall_before
    finally:
        server.terminate()
        server.wait(timeout=30)

    latencies = sorted(ms for _, ms in results)
    bad = sum(1 for status, _ in results if status != 200)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"{args.clients} clients, {args.workers} gunicorn workers, {args.seconds:.0f} s: {len(results)} requests "
          f"({len(results) / args.seconds:.0f}/s), not 200: {bad}")
    print(f"CPU over {wall:.0f} s: server {server_cpu:.1f} s ({server_cpu * 1000 / len(results):.1f} ms a request), "
          f"clients {client_cpu:.1f} s ({client_cpu * 1000 / len(results):.1f} ms a request), of {wall * (os.cpu_count() or 1):.0f} s on {os.cpu_count()} cores")
    print(f"latency ms: median {statistics.median(latencies):.0f}, p95 {p95:.0f}, max {latencies[-1]:.0f}")
    print(f"target: no non-200, p95 < {P95_TARGET_MS} ms: {'met' if bad == 0 and p95 < P95_TARGET_MS else 'NOT MET'}")


if __name__ == "__main__":
    main()
