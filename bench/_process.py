"""`flask` run as a process of its own, timed, with its own peak resident memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs `flask` and, on the way out, prints its own peak resident memory (VmHWM, counted from exec;
# wait4's ru_maxrss would include this benchmark's memory, inherited at fork).
_PEAK_WRAPPER = (
    "import atexit, resource, sys\n"
    "def peak():\n"
    "    with open('/proc/self/status') as status:\n"
    "        sys.stderr.write(next(line for line in status if line.startswith('VmHWM')))\n"
    "    sys.stderr.write('Children: %d kB\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "atexit.register(peak)\n"
    "from flask.cli import main\n"
    "sys.argv[0] = 'flask'\n"
    "main()\n"
)


def flask_process(
    args: list[str], env: dict[str, str], *, ok_codes: tuple[int, ...] = (0,), children: int = 0
) -> tuple[float, int, bytes]:
    """`flask --app app ARGS` with the environment's additions: wall time, peak RSS in bytes, stdout.

    With `children` (processes the command starts, all at once): its peak plus that many times the
    largest child's, an upper bound of what they held together."""
    argv = [sys.executable, "-c", _PEAK_WRAPPER, "--app", "app", *args]
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, env={"SECRET_KEY": "bench-only", **os.environ, **env}, capture_output=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in ok_codes:
        raise SystemExit(f"flask {' '.join(args)} exited {result.returncode}: {result.stderr.decode()[-2000:]}")
    peak_kib = int(result.stderr.decode().rsplit("VmHWM:", 1)[1].split()[0])
    if children:
        peak_kib += children * int(result.stderr.decode().rsplit("Children:", 1)[1].split()[0])
    return elapsed, peak_kib * 1024, result.stdout


def python_process(args: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    """`python ARGS` (a benchmark's own child, which reports its memory itself): wall time, stdout."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env={"SECRET_KEY": "bench-only", **os.environ, **env}, capture_output=True)
    if result.returncode:
        raise SystemExit(f"python {' '.join(args)} exited {result.returncode}: {result.stderr.decode()[-2000:]}")
    return time.perf_counter() - start, result.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
