"""Running a source outside its runner, for a connection test or a browse.

Failures become an ``ErrorDetail`` with the source's error code; messages are scrubbed
of the credentials' secret values.  Any other exception is the plugin's bug: "the plugin
failed: KeyError: 'x'", logged once at ERROR with its traceback (scrubbed too: a
plugin's message may quote what it was given).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx
import trio

from hub.blocking import run_blocking
from hub.errors import (
    BadConfig,
    CannotConnect,
    InvalidAuth,
    NotSupported,
    RateLimited,
    SourceError,
    UpdateFailed,
)
from hub.http_failures import failure_detail
from hub.logging_setup import scrub
from hub.models import Connection
from hub.source import RemoteDevice
from hub.web.credentials import SourceClass, saved_credentials, secret_values
from hub.web.errors import ApiError
from hub.web.schemas import ErrorDetail, TestOutcome

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger("hub.web")

UPSTREAM_TIMEOUT = 60.0
"""Seconds a test or a browse may take before it counts as "cannot connect"."""


def failure(exc: BaseException, secrets: Iterable[Any]) -> ErrorDetail:
    """The answer for a source's failure (``ErrorDetail`` of a test or a 502)."""
    secrets = list(secrets)

    def text(default: str) -> str:
        return scrub(str(exc), secrets) or default

    if isinstance(exc, BadConfig):
        return ErrorDetail(
            code="bad_config", message=scrub(exc.reason, secrets) or "", field=exc.field
        )
    if isinstance(exc, InvalidAuth):
        return ErrorDetail(
            code="invalid_auth", message=text("the credentials were rejected"), field=exc.field
        )
    if isinstance(exc, trio.TooSlowError):
        return ErrorDetail(
            code="cannot_connect", message=f"no answer within {UPSTREAM_TIMEOUT:.0f} s"
        )
    if isinstance(exc, CannotConnect | httpx.TransportError):
        return ErrorDetail(code="cannot_connect", message=text("the upstream is unreachable"))
    if isinstance(exc, RateLimited):
        retry = f" (retry after {exc.retry_after:.0f} s)" if exc.retry_after else ""
        return ErrorDetail(code="rate_limited", message=text("rate limited") + retry)
    if isinstance(exc, UpdateFailed):
        return ErrorDetail(code="update_failed", message=text("the upstream request failed"))
    if isinstance(exc, NotSupported):
        return ErrorDetail(code="not_supported", message=text("not supported by this source"))
    if isinstance(exc, SourceError):
        return ErrorDetail(code="source_error", message=text("the source failed"))
    return ErrorDetail(code="source_error", message=plugin_failed(exc, secrets))


def plugin_failed(exc: BaseException, secrets: Iterable[Any]) -> str:
    """ "the plugin failed: KeyError: 'x'": a plugin's bug (any exception but the hub's
    taxonomy), its message cut before a URL and scrubbed of the credentials."""
    return f"the plugin failed: {scrub(failure_detail(exc), list(secrets))}"


def _unexpected(exc: BaseException) -> bool:
    return not isinstance(exc, SourceError | trio.TooSlowError | httpx.TransportError)


def _log_unexpected(kind: str, exc: BaseException, secrets: Iterable[Any]) -> None:
    """Log a plugin's bug once at ERROR, its traceback scrubbed of the credentials."""
    if _unexpected(exc):
        trace = "".join(traceback.format_exception(exc)).rstrip()
        log.error("source %r: %s\n%s", kind, plugin_failed(exc, secrets), scrub(trace, secrets))


async def run_test(
    hub: Hub,
    cls: SourceClass,
    credentials: dict[str, Any],
    options: dict[str, Any],
    **kw: Any,
) -> TestOutcome:
    secrets = secret_values(cls, credentials)
    try:
        with trio.fail_after(UPSTREAM_TIMEOUT):
            summary = await hub.test_connection(cls.kind, credentials, options, **kw)
    except Exception as exc:
        _log_unexpected(cls.kind, exc, secrets)
        return TestOutcome(ok=False, error=failure(exc, secrets))
    return TestOutcome(ok=True, summary=scrub(summary, secrets))


async def browse(hub: Hub, cls: SourceClass, conn: Connection) -> list[RemoteDevice]:
    """The remote devices of ``conn``; 400 ``not_supported`` or 502 with the source's code."""
    if not cls.supports_browse:
        raise not_supported(cls)
    creds = await run_blocking(saved_credentials, hub, conn)
    try:
        with trio.fail_after(UPSTREAM_TIMEOUT):
            return await hub.browse(conn)
    except Exception as exc:
        secrets = secret_values(cls, creds)
        _log_unexpected(conn.kind, exc, secrets)
        detail = failure(exc, secrets)
        if detail.code == "not_supported":
            raise not_supported(cls) from None
        raise ApiError(502, detail.code, detail.message, detail.field) from None


def not_supported(cls: SourceClass) -> ApiError:
    return ApiError(
        400,
        "not_supported",
        f"{cls.title} connections cannot list their remote devices; "
        "create devices by hand with their upstream id",
    )
