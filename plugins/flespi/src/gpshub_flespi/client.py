"""The flespi REST calls the plugin makes, and how their failures map to hub errors.

Every request carries ``Authorization: FlespiToken <token>``; nothing secret goes in a
URL.  flespi answers ``{"result": [...]}``, with ``errors`` entries (``code``, ``reason``
and, for one item of a multi-item selector, ``id``) next to it or instead of it:

* ``hub.upstream_http`` maps what every platform shares: 429 is ``RateLimited`` with
  ``Retry-After``, 5xx, timeouts and transport errors ``CannotConnect``, another status
  ``UpdateFailed``;
* flespi's own meanings stay here: 401 and 403 are ``InvalidAuth`` (403: the token lacks
  gw/devices read access); 400 is ``UpdateFailed`` quoting flespi's reason; 404 is
  ``DevicesNotFound`` carrying the ids flespi named, so the caller can skip those devices
  and keep the rest;
* an answer that is not the JSON envelope is ``UpdateFailed``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from hub.clock import Clock, SystemClock
from hub.errors import InvalidAuth, UpdateFailed
from hub.upstream_http import DEFAULT_TIMEOUT_S, upstream_fetch

DEFAULT_BASE_URL = "https://flespi.io"
DEVICE_FIELDS = "id,name,configuration,metadata,device_type_id,connected"
FLESPI_STATUSES = (400, 401, 403, 404)
"""What flespi means by these is told here, not by ``hub.upstream_http``."""


class DevicesNotFound(UpdateFailed):
    """flespi answered 404: ``ids`` are the device ids it named (may be empty)."""

    def __init__(self, message: str, ids: set[str]) -> None:
        super().__init__(message)
        self.ids = ids


@dataclass(slots=True)
class Answer:
    """A successful answer: its ``result`` items and the ids of per-item ``errors``."""

    result: list[Any]
    failed: dict[str, str] = field(default_factory=dict)  # device id -> reason


class FlespiClient:
    """Calls on one flespi account through the hub's HTTP client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        *,
        base_url: str | None = None,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        clock: Clock | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._http = http
        self._clock = clock or SystemClock()
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"FlespiToken {token}", "Accept": "application/json"}
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._custom_url = base_url is not None
        self.log = log or logging.getLogger(__name__)

    async def token_info(self) -> dict[str, Any]:
        """``GET /auth/info``: what flespi knows of the token (``cid``, ``info``...)."""
        answer = await self.get("/auth/info")
        first = answer.result[0] if answer.result else {}
        return dict(first) if isinstance(first, Mapping) else {}

    async def devices(self, fields: str = DEVICE_FIELDS) -> list[Any]:
        """``GET /gw/devices/all?fields=...``: every device the token can see."""
        return (await self.get("/gw/devices/all", {"fields": fields})).result

    async def messages(self, ids: Sequence[str], data: Mapping[str, Any]) -> Answer:
        """``GET /gw/devices/{ids}/messages?data=...`` for several devices at once."""
        text = json.dumps(dict(data), separators=(",", ":"))
        return await self.get(f"/gw/devices/{','.join(ids)}/messages", {"data": text})

    async def telemetry(self, ids: Sequence[str]) -> Answer:
        """``GET /gw/devices/{ids}/telemetry/all``: the latest value of every parameter."""
        return await self.get(f"/gw/devices/{','.join(ids)}/telemetry/all")

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Answer:
        response = await upstream_fetch(
            self._http,
            "GET",
            f"{self.base_url}{path}",
            upstream="flespi",
            now=self._clock.now,
            timeout_s=self.timeout_s,
            # the guard can refuse only a base URL the user set: flespi's own is public
            url_field="options.base_url" if self._custom_url else None,
            accept=FLESPI_STATUSES,
            params=params,
            headers=self._headers,
        )
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> Answer:
        status = response.status_code
        body = _json(response.content)
        errors = _errors(body)
        reason = "; ".join(e["reason"] for e in errors if e.get("reason")) or ""
        if status == 401:
            raise InvalidAuth(
                "flespi rejected the token (HTTP 401): it is wrong, expired or deleted"
            )
        if status == 403:
            raise InvalidAuth(
                "the flespi token lacks read access to gw/devices (HTTP 403); "
                "use a Standard token or an ACL token allowing gw/devices"
            )
        if status == 404:
            ids = {i for e in errors if (i := _id(e.get("id"))) is not None}
            raise DevicesNotFound(f"flespi answered 404: {reason or 'not found'}", ids)
        if status == 400:
            raise UpdateFailed(f"flespi refused the request (HTTP 400): {reason or 'bad request'}")
        if not isinstance(body, Mapping):
            raise UpdateFailed(f"flespi answered HTTP {status} with a body that is not JSON")
        result = body.get("result")
        if result is None and errors:
            raise UpdateFailed(f"flespi answered with errors only: {reason or 'no reason given'}")
        if not isinstance(result, list):
            raise UpdateFailed("flespi's answer has no 'result' list")
        failed: dict[str, str] = {}
        for e in errors:
            key = _id(e.get("id"))
            if key is not None:
                failed[key] = str(e.get("reason") or "failed")
            else:
                self.log.warning("flespi reported a problem: %s", e.get("reason") or e)
        return Answer(result, failed)


def _json(content: bytes) -> Any:
    try:
        return orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return None


def _errors(body: Any) -> list[dict[str, Any]]:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if not isinstance(errors, list):
        return []
    out = []
    for e in errors:
        if isinstance(e, Mapping):
            reason = e.get("reason")
            out.append({**e, "reason": str(reason)[:300] if reason is not None else ""})
    return out


def _id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    return None


def chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])
