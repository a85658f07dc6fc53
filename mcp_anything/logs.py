"""Logging: one JSON object per line by default (for log pipelines), or a readable console format.

Structured fields travel in `extra={"fields": {...}}`; they are merged into the
JSON object, or appended as `key=value` on the console.

Audit lines (logger `mcp_anything.audit`, one per authorization decision) have a
destination of their own (`server.audit_log`) and are written whatever the log level:
an operator who turns logging down to warnings must not lose the audit trail.
"""

from __future__ import annotations

import logging
import logging.handlers
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
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        line = super().format(record)
        return line + "".join(f" {k}={v}" for k, v in fields.items()) if fields else line


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
