"""What every command prints: JSON for scripts on stdout, errors on stderr with a non-zero exit."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click


def emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


def fail(message: str, exit_code: int = 1) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(exit_code)
