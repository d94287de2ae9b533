"""Logging: one line per event on stderr, as plain text, JSON or logfmt.

Every line carries the time (UTC, RFC 3339 with milliseconds), the level, the logger
and the process id (each worker logs under its own). Events may carry structured
fields (`log.info("...", extra={"fields": {...}})`): in JSON they are keys of the
object, in logfmt and text they follow the message as `key=value` pairs.

- text:   `2026-11-29T20:01:02.345Z INFO gslb.server[123]: loaded zone example.com.`
- json:   `{"ts": "...", "level": "info", "logger": "gslb.server", "pid": 123, "msg": "..."}`
- logfmt: `ts=... level=info logger=gslb.server pid=123 msg="loaded zone example.com."`
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

FORMATS = ("text", "json", "logfmt")


_second: tuple[int, str] = (-1, "")  # the last whole second written, and its text


def timestamp(created: float) -> str:
    """RFC 3339 UTC with milliseconds, as every format writes it. The text of the
    second is made once per second, not once per line."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int(created % 1 * 1000):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


def logfmt_value(value: Any) -> str:
    """A logfmt value: bare when it has no space, quote or equals sign, else quoted."""
    text = "" if value is None else str(value)
    if text and not any(c in text for c in ' ="\\') and text.isprintable():
        return text
    return json.dumps(text, ensure_ascii=False)


def logfmt_pairs(fields: dict[str, Any]) -> str:
    return " ".join(f"{key}={logfmt_value(value)}" for key, value in fields.items())


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (f"{timestamp(record.created)} {record.levelname} {record.name}"
                f"[{record.process}]: {record.getMessage()}")
        fields = _fields(record)
        if fields:
            line += " " + logfmt_pairs(fields)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _event(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """The fields of one line, in the order JSON and logfmt write them."""
    event: dict[str, Any] = {
        "ts": timestamp(record.created),
        "level": record.levelname.lower(),
        "logger": record.name,
        "pid": record.process,
        "msg": record.getMessage(),
    }
    event.update(_fields(record))
    if record.exc_info:
        event["exc"] = formatter.formatException(record.exc_info)
    return event


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_event(record, self), ensure_ascii=False, default=str)


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return logfmt_pairs(_event(record, self))


_FORMATTERS: dict[str, type[logging.Formatter]] = {
    "text": TextFormatter, "json": JsonFormatter, "logfmt": LogfmtFormatter,
}


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send every logger's lines to stderr in `fmt` (text, json or logfmt) from `level` up."""
    if fmt not in _FORMATTERS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(FORMATS)}")
    # What no format writes is not gathered for each line: the caller's file and line
    # (a walk up the stack), the thread and the multiprocessing name (the logging
    # documentation's "Optimization" section)
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FORMATTERS[fmt]())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
