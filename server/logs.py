"""Logging setup: human-readable lines by default, one JSON object per line
with SEATMAP_LOG_FORMAT=json. Context (a request or connection id) travels
in a contextvar and is added to every record logged while it is set."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

context_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("seatmap_context_id", default=None)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.context_id = context_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if identity := getattr(record, "context_id", None):
            entry["id"] = identity
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if identity := getattr(record, "context_id", None):
            line += f" [{identity}]"
        return line


class _QuietWebsockets(logging.Filter):
    """uvicorn logs every websocket accept at INFO: 10,000 lines at a drop's
    opening. Those go to DEBUG level; errors still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.name == "uvicorn.error":
            message = str(record.msg)
            if '"WebSocket ' in message or message.startswith("connection "):
                return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def configure(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    handler.addFilter(_QuietWebsockets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # one line per outgoing request is noise (the stripe SDK and health probes use httpx)
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
