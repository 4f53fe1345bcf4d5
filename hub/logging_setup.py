"""Logging that never leaks a secret, as text for people or JSON lines for machines.

httpx logs every request's full URL at INFO, and some upstream APIs carry tokens or
session ids in the query string; we strip query strings from those records.  A second
filter masks ``token=…``, ``password=…``, ``sid=…`` and bearer values in any message;
the formatters mask tracebacks and structured fields the same way.

``configure_logging(level, "json")`` writes one JSON object per line: ``time`` (UTC,
ISO 8601), ``level``, ``logger``, ``message``, the structured fields a record was given
with ``extra=`` (``connection_id``, ``sink_id``, ``state``, the summary's counts …) and
``exception`` when there is one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from hub.secret_forms import mask_secrets

_SECRET_RE = re.compile(
    r"(?i)\b(token|access_token|api_key|apikey|sid|eid|password|passwd|secret|authorization|"
    r"aas_token|session_?id)(\"?\s*[=:]\s*\"?)(bearer\s+|basic\s+|flespitoken\s+)?([^\s&\"',;}]+)"
)
_QUERY_RE = re.compile(r"(https?://[^\s?\"']+)\?[^\s\"']*")


def redact(text: str) -> str:
    """``text`` with URL query strings and ``key=value`` secrets masked."""
    text = _QUERY_RE.sub(r"\1?[redacted]", text)
    return _SECRET_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}[redacted]", text)


def scrub(text: str | None, secrets: Iterable[Any] = ()) -> str | None:
    """``text`` with each of ``secrets`` (and ``key=value`` secrets) masked, in every
    form an echo may give it: JSON-escaped, URL-encoded, HTML-escaped or base64
    (``hub.secret_forms``).

    For messages that come from plugins, which may quote what they were given, and for
    receivers' answers, which may quote the request.
    """
    if text is None:
        return None
    return redact(mask_secrets(text, secrets))


class MaskingAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A plugin's logger that masks its own secrets (in every form, see ``scrub``) in
    what it logs: a sink may log the answer of a receiver that echoes the request."""

    def __init__(self, logger: logging.Logger, extra: dict[str, Any], secrets: list[str]):
        super().__init__(logger, extra)
        self.secrets = list(secrets)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):  # a broken format: keep its parts apart
            text = " ".join(map(str, (msg, *args)))
        super().log(level, scrub(text, self.secrets), **kwargs)


class RedactingFilter(logging.Filter):
    """Rewrites the record's message with secrets masked (args are folded in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


_FILTER = RedactingFilter()


def install_redaction() -> None:
    """Filter httpx/httpcore records at the source, whatever handlers are configured."""
    for name in ("httpx", "httpcore", "hypercorn.access"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


LOG_FORMATS = ("text", "json")

# what every LogRecord has: anything else on a record came from ``extra=``
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _field(value: Any) -> Any:
    """A structured field as JSON: numbers, booleans and null as they are, the rest as
    redacted text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_field(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _field(v) for k, v in value.items()}
    return redact(str(value))


class TextFormatter(logging.Formatter):
    """``time level logger: message``, with tracebacks redacted too."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redact(super().formatStack(stack_info))


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        data: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in data:
                data[key] = _field(value)
        if record.exc_info:
            data["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            data["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Console logging for ``gpshub`` commands, with every record redacted.

    ``fmt`` is ``text`` (for people) or ``json`` (one object per line, for machines).
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_FILTER)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, root.level))
    install_redaction()
