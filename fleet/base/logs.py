"""Log lines for operators: plain text, or one JSON object per line (LOG_FORMAT=json).

A request or job step writes one line with what identifies it and nothing more personal: the user's
and agency's ids, the source address, the duration and, for a fault, the error id the user was shown.
Those travel as `extra` fields of the record; the JSON form carries them as keys. Written here rather
than with python-json-logger: a dozen lines over orjson, which the app already uses.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys

import orjson

# The `extra` fields a line may carry, in the order the text form prints them.
FIELDS = ("event", "method", "path", "status", "duration_ms", "user", "agency", "address", "error_id", "batch", "step")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in FIELDS if getattr(record, name, None) is not None})
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None) is not None)
        return f"{text} {fields}" if fields else text


def configure(log_format: str) -> None:
    """One handler on the root logger, to stderr (gunicorn and systemd collect it), at INFO."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
