"""Logging to stderr (stdout carries the protocol), with secrets scrubbed from every record."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import TextIO

_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}

# Defence in depth: code never logs credentials on purpose, and this catches what slips through.
_SECRET_PATTERNS = (
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+",
    r"\bsk-[A-Za-z0-9_-]{8,}",
    r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",  # JWTs
    r'(?i)("?(?:access_token|refresh_token|id_token|api_key|apikey|accessToken|idToken|'
    r'refreshToken|OPENAI_API_KEY|authorization|token)"?\s*[:=]\s*"?)[^",\s}]+',
)


def redact(text: str) -> str:
    # Patterns as text, compiled (and cached by re) with the first record logged rather than at
    # start-up: most runs log nothing.
    for pattern in _SECRET_PATTERNS:
        text = re.sub(pattern, lambda m: (m.group(1) if m.groups() else "") + "[REDACTED]", text)
    return text


def parse_level(spec: str | None, default: int = logging.WARNING) -> int:
    """A level from CODEX_TRIO_LOG or RUST_LOG (``info``, or RUST_LOG's ``codex=debug,warn`` form)."""
    if not spec:
        return default
    best: int | None = None
    for directive in spec.split(","):
        directive = directive.strip()
        target, _, level = directive.rpartition("=")
        value = _LEVELS.get(level.lower())
        if value is None:
            continue
        # A bare level applies to everything; a per-target level only counts for our own targets.
        if not target or "codex" in target:
            best = value if best is None else min(best, value)
    return default if best is None else best


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "target": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(env: Mapping[str, str], stream: TextIO | None = None) -> None:
    level = parse_level(env.get("CODEX_TRIO_LOG") or env.get("RUST_LOG"))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_RedactingFilter())
    if env.get("LOG_FORMAT", "").lower() == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger("codex_trio")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
