"""``hub.upstream_http``'s platform hooks and JSON errors: ``reason`` (the platform's error
text in a 5xx message), ``rate_limit`` (a rate limit in a 2xx body), ``NotJson`` /
``BrokenJson`` and ``lenient`` decoding, over an in-memory transport."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from hub.errors import CannotConnect, RateLimited, UpdateFailed
from hub.rangepoll import HttpOptions
from hub.upstream_http import (
    DEFAULT_CLIENT_TIMEOUT,
    DEFAULT_TIMEOUT_S,
    BrokenJson,
    NotJson,
    UpstreamClient,
    error_text,
)

URL = "https://acme.example/api/units?token=SECRET"


def client(answer: Callable[[httpx.Request], httpx.Response]) -> UpstreamClient:
    return UpstreamClient(upstream="Acme", transport=httpx.MockTransport(answer))


def reply(status: int, content: bytes, kind: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=content, headers={"content-type": kind})


async def test_a_5xx_message_quotes_the_platforms_reason() -> None:
    body = b'{"error": {"code": 7, "message": "database is down"}}'
    async with client(reply(503, body, "application/json")) as http:
        with pytest.raises(CannotConnect) as caught:
            await http.fetch("GET", URL, reason=error_text)
        without = await _error(http, CannotConnect)
    assert (
        str(caught.value)
        == "Acme at acme.example answered HTTP 503 for /api/units: database is down"
    )
    assert str(without) == "Acme at acme.example answered HTTP 503 for /api/units"
    assert "SECRET" not in str(caught.value)


async def test_error_text_reads_the_usual_fields_or_the_first_line() -> None:
    def answer(content: bytes) -> httpx.Response:
        return httpx.Response(500, content=content)

    assert error_text(answer(b'{"reason": "quota", "message": "over quota"}')) == "over quota"
    assert error_text(answer(b'{"error": "invalid_grant"}')) == "invalid_grant"
    assert (
        error_text(answer(b"\n  Fatal error: out of memory\nin x.php"))
        == "Fatal error: out of memory"
    )
    assert error_text(answer(b"")) is None


async def test_a_rate_limit_in_a_200_body_is_rate_limited() -> None:
    def signal(response: httpx.Response) -> float | bool | None:
        body = response.json()
        return 60.0 if body.get("error") == 1003 else None

    async with client(reply(200, b'{"error": 1003}', "application/json")) as http:
        with pytest.raises(RateLimited) as caught:
            await http.fetch_json("POST", URL, rate_limit=signal)
    assert caught.value.retry_after == 60.0
    async with client(reply(200, b'{"error": 0}', "application/json")) as http:
        assert await http.fetch_json("POST", URL, rate_limit=signal) == {"error": 0}
    async with client(reply(200, b"ERROR: API call limit exceeded", "text/html")) as http:
        with pytest.raises(RateLimited) as caught:
            await http.fetch("GET", URL, rate_limit=lambda r: r.text.startswith("ERROR: API call"))
    assert caught.value.retry_after is None


async def test_not_json_and_broken_json_are_told_apart() -> None:
    async with client(reply(200, b"<html>portal</html>", "text/html")) as http:
        with pytest.raises(NotJson) as caught:
            await http.fetch_json("GET", URL)
    assert "answered text/html instead of JSON for /api/units" in str(caught.value)
    async with client(reply(200, b'{"units": [1, 2', "application/json")) as http:
        with pytest.raises(BrokenJson) as broken:
            await http.fetch_json("GET", URL)
    assert str(broken.value) == "Acme at acme.example sent broken JSON for /api/units"
    assert isinstance(caught.value, UpdateFailed) and isinstance(broken.value, UpdateFailed)


async def test_lenient_decoding_takes_json_whatever_its_content_type() -> None:
    async with client(reply(200, b'{"units": []}', "text/html; charset=utf-8")) as http:
        assert await http.fetch_json("GET", URL, lenient=True) == {"units": []}
        with pytest.raises(NotJson):
            await http.fetch_json("GET", URL)
    async with client(reply(200, b"<html>", "text/html")) as http:
        with pytest.raises(BrokenJson):
            await http.fetch_json("GET", URL, lenient=True)
    async with client(reply(200, b'{"a": 1}', "text/javascript")) as http:
        assert await http.fetch_json("GET", URL) == {"a": 1}


def test_one_timeout_default() -> None:
    assert HttpOptions().timeout_s == DEFAULT_TIMEOUT_S == 30.0
    assert DEFAULT_CLIENT_TIMEOUT.read == DEFAULT_TIMEOUT_S
    assert UpstreamClient().timeout_s == DEFAULT_TIMEOUT_S


async def _error(http: UpstreamClient, kind: type[Exception]) -> Exception:
    with pytest.raises(kind) as caught:
        await http.fetch("GET", URL)
    return caught.value


async def test_an_error_page_is_quoted_by_its_title_or_text_not_its_markup() -> None:
    page = (
        b"<!DOCTYPE html>\n<html><head><style>p{}</style><title>Error 404 (Not Found)!!1"
        b"</title></head><body><p>That&#8217;s an error.</p></body></html>"
    )
    async with client(reply(404, page, "text/html; charset=UTF-8")) as http:
        with pytest.raises(UpdateFailed) as titled:
            await http.fetch("GET", URL)
    untitled = b"<html><body>\n<h1>Bad &amp; broken</h1><p>more</p></body></html>"
    async with client(reply(400, untitled, "text/html")) as http:
        with pytest.raises(UpdateFailed) as text:
            await http.fetch("GET", URL)
    async with client(reply(409, b"conflict: unit busy\nat line 3", "text/plain")) as http:
        with pytest.raises(UpdateFailed) as plain:
            await http.fetch("GET", URL)
    assert str(titled.value).endswith("HTTP 404 for /api/units: Error 404 (Not Found)!!1")
    assert str(text.value).endswith("HTTP 400 for /api/units: Bad & broken")
    assert str(plain.value).endswith("HTTP 409 for /api/units: conflict: unit busy")
    assert error_text(
        httpx.Response(502, content=untitled, headers={"content-type": "text/html"})
    ) == ("Bad & broken")
