"""Run a command with TEST_DATABASE_URL set to a fresh PostgreSQL database, dropped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg

SERVER = os.environ.get("POSTGRES_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")


def main(command: list[str]) -> int:
    name = f"fleet_ci_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL does not answer at {SERVER}: {exc}; skipping the PostgreSQL run.")
        return 0
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = SERVER.rsplit("/", 1)[0] + "/" + name
            return subprocess.call(command, env={**os.environ, "TEST_DATABASE_URL": url})
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
