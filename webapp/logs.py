"""Logging: JSON lines with request ids, and redaction of anything that looks like a secret.

Redaction is the last line of defence: code should never log a token in the first place, but a
third-party library's message (a URL with a query string, a request body) must not leak one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from flask import g, has_request_context

#: (pattern, replacement) pairs applied to every formatted message.
REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1[redacted]"),
    (
        re.compile(
            r"(?i)((?:access_token|refresh_token|client_secret|code|token|state|password|"
            r"secret)[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]{4,}"
        ),
        r"\1[redacted]",
    ),
    (
        re.compile(r"(?i)(cronofy-hmac-sha256[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9+/=, ]{8,}"),
        r"\1[redacted]",
    ),
    # Opaque references and one-time links in our own URL paths.
    (
        re.compile(r"(/(?:invite|hooks/cronofy/[a-z-]+|c|book|schedule/link)/)[A-Za-z0-9_-]{16,}"),
        r"\1[redacted]",
    ),
)


def redact(text: str) -> str:
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the record's message with secrets removed (args are folded in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_request_context() else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time (test capture and gunicorn swap it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure(level: str, fmt: str) -> None:
    """Send every log record through redaction and request-id tagging, as JSON or text."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_rendezvous", False)), None)
    if handler is None:
        handler = _StderrHandler()
        handler._rendezvous = True  # type: ignore[attr-defined]
        handler.addFilter(RequestIdFilter())
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root.setLevel(level)
    # Handlers other libraries attach (pytest's capture, gunicorn's) get the redaction too.
    for other in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in other.filters):
            other.addFilter(RedactingFilter())
