"""Logging: one JSON object per line by default (for log pipelines), or a readable console format.

Structured fields travel in `extra={"fields": {...}}`; they are merged into the
JSON object, or appended as `key=value` on the console.

Field values often come from callers (a token's `sub`, a tool name). On the console
the message and every value are escaped (control characters, line and paragraph
separators), values holding a space, `=` or `"` are quoted, and long values are cut
with a marker: one record is exactly one line, and no caller can forge another.
JSON output needs none of this (the encoder escapes).

Audit lines (logger `mcp_anything.audit`, one per authorization decision) have a
destination of their own (`server.audit_log`) and are written whatever the log level:
an operator who turns logging down to warnings must not lose the audit trail.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker, with --workers
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: anything a terminal or a
# line-based log reader may treat as a new line or a command (ANSI escapes start with ESC, \x1b).
_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_IN_MESSAGE = re.compile(f"[{_CONTROL}]")
_IN_VALUE = re.compile(f'[{_CONTROL}\\\\"]')  # in values also `\` and `"`, so a quoted value has one reading
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", '"': '\\"'}
MAX_CONSOLE_FIELD = 512  # characters of one console field value; longer ones end with a marker


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def console_value(value: Any) -> str:
    """One field value as console text: cut to MAX_CONSOLE_FIELD characters, escaped, quoted when it must be."""
    text = str(value)
    if len(text) > MAX_CONSOLE_FIELD:
        text = f"{text[:MAX_CONSOLE_FIELD]}...[{len(text) - MAX_CONSOLE_FIELD} more chars]"
    escaped = _IN_VALUE.sub(_escaped, text)
    return f'"{escaped}"' if escaped == "" or escaped != text or any(c in text for c in " =") else text


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The message may carry caller text through %-arguments.
        record.message = _IN_MESSAGE.sub(_escaped, record.message)
        line = super().formatMessage(record)
        fields = getattr(record, "fields", {})
        return line + "".join(f" {k}={console_value(v)}" for k, v in fields.items())

    def formatException(self, ei: Any) -> str:
        # A traceback keeps its lines, indented, so an exception message quoting caller text cannot start a
        # line that looks like a record (records start with their time, in the first column).
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("  " + _IN_MESSAGE.sub(_escaped, line) for line in text.split("\n"))


AUDIT_LOGGER = "mcp_anything.audit"


def configure_logging(fmt: str = "json", level: str = "info", audit: str | Path = "stderr") -> None:
    """`audit`: stderr, stdout, off, or a file (appended to; reopened when logrotate moves it).

    Raises OSError when the audit file cannot be opened.
    """
    formatter = JsonFormatter() if fmt == "json" else ConsoleFormatter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger("mcp_anything")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # The server's own warnings and errors (uvicorn) in the same format and stream.
    server = logging.getLogger("uvicorn")
    server.handlers[:] = [handler]
    server.propagate = False

    audit_logger = logging.getLogger(AUDIT_LOGGER)
    audit_logger.propagate = False
    if audit == "off":
        audit_logger.handlers[:] = []
        audit_logger.setLevel(logging.CRITICAL + 1)
        return
    audit_handler: logging.Handler
    if audit == "stderr":
        audit_handler = logging.StreamHandler(sys.stderr)
    elif audit == "stdout":
        audit_handler = logging.StreamHandler(sys.stdout)
    else:
        audit_handler = logging.handlers.WatchedFileHandler(audit, encoding="utf-8")
    audit_handler.setFormatter(formatter)
    audit_logger.handlers[:] = [audit_handler]
    audit_logger.setLevel(logging.INFO)
