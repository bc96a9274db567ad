"""What every command prints: JSON for scripts on stdout, errors on stderr with a non-zero exit."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click
import orjson


def emit_json(payload: Any) -> None:
    # orjson writes the same indented UTF-8 text as json.dumps(indent=2, ensure_ascii=False) in a
    # fraction of the time: the standard library indents in pure Python (bench/README.md). Dates, times and numbers JSON has no type for (Decimal, Fraction) are
    # written with str(), as before: `2025-03-05 09:30:00`, not orjson's own ISO `T`.
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
    text = orjson.dumps(payload, default=str, option=options)
    click.echo(text.decode())


def fail(message: str, exit_code: int = 1) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(exit_code)
