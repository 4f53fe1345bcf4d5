"""``hub.upstream_http``: ``ctx.http.fetch`` against a real server on loopback.

The server is a Starlette app served by hypercorn (``hub.testing.serve_app``); every
answer a platform may give is one route.  Each request carries a token in its query
string, which no message may show.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.netguard import OutboundPolicy
from hub.rangepoll import HttpOptions
from hub.runner import new_http_client
from hub.testing import EPOCH, LOOPBACK, FeedSource, make_hub, serve_app
from hub.upstream_http import (
    MAX_EXCERPT,
    UpstreamClient,
    decode_json,
    first_line,
    options_timeout,
    upstream_fetch,
)

TOKEN = "TOKEN-IN-THE-QUERY-8d1f"
NOW = EPOCH  # the source's clock: far from the wall clock
CAUGHT = (InvalidAuth, RateLimited, CannotConnect, UpdateFailed, BadConfig)


async def status(request: Request) -> Response:
    """``/status/{code}``: that status, with ``?retry_after=`` and ``?body=`` if given."""
    code = int(request.path_params["code"])
    headers = {}
    if "retry_after" in request.query_params:
        headers["Retry-After"] = request.query_params["retry_after"]
    body = request.query_params.get("body", "")
    return PlainTextResponse(body, status_code=code, headers=headers)


async def ok(request: Request) -> Response:
    return JSONResponse({"token": request.query_params.get("token"), "path": request.url.path})


async def garbage(request: Request) -> Response:
    return Response(b'{"devices": [1, 2', media_type="application/json")


async def page(request: Request) -> Response:
    return Response(b"<html><body>Sign in</body></html>", media_type="text/html")


async def moved(request: Request) -> Response:
    return Response(
        status_code=301, headers={"Location": f"https://new.example.com/api/x?token={TOKEN}"}
    )


async def relative(request: Request) -> Response:
    return Response(status_code=307, headers={"Location": "/elsewhere"})


async def trace(request: Request) -> Response:
    body = "java.lang.Secur\x1bityException:\x00 Operation restricted\n\tat org.Foo(...)\n"
    return PlainTextResponse(body, status_code=400)


async def long_line(request: Request) -> Response:
    return PlainTextResponse("\n\n  " + "x" * 1000 + "\nsecond line", status_code=418)


async def hang(request: Request) -> Response:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


APP = Starlette(
    routes=[
        Route("/status/{code:int}", status),
        Route("/ok", ok),
        Route("/garbage", garbage),
        Route("/page", page),
        Route("/moved", moved),
        Route("/relative", relative),
        Route("/trace", trace),
        Route("/long", long_line),
        Route("/hang", hang),
    ]
)


@pytest.fixture
async def base(nursery: trio.Nursery) -> str:
    url: str = await nursery.start(serve_app, APP)
    return url


@pytest.fixture
async def http() -> AsyncIterator[UpstreamClient]:
    async with new_http_client(LOOPBACK, upstream="Acme", timeout_s=30, now=lambda: NOW) as c:
        yield c


def host_of(base: str) -> str:
    return base.removeprefix("http://")


async def failure(call: Callable[[], Any], kind: type[Exception] = Exception) -> Exception:
    """The exception ``call()`` raises (of ``kind``), checked to show no token."""
    with pytest.raises(kind) as caught:
        await call()
    assert TOKEN not in str(caught.value)
    if isinstance(caught.value, BadConfig):
        assert TOKEN not in caught.value.reason
    return caught.value


async def test_a_json_answer_is_decoded_and_the_query_string_sent(
    base: str, http: UpstreamClient
) -> None:
    data = await http.fetch_json("GET", f"{base}/ok", params={"token": TOKEN})
    assert data == {"token": TOKEN, "path": "/ok"}
    response = await http.fetch("GET", f"{base}/ok?token={TOKEN}")
    assert response.status_code == 200


@pytest.mark.parametrize("code", [401, 403])
async def test_refused_credentials_are_invalid_auth(
    base: str, http: UpstreamClient, code: int
) -> None:
    exc = await failure(
        lambda: http.fetch("GET", f"{base}/status/{code}", params={"token": TOKEN}), InvalidAuth
    )
    assert str(exc) == f"Acme at {host_of(base)} refused the credentials (HTTP {code})"


async def test_429_is_rate_limited_with_retry_after_in_seconds_or_as_a_date(
    base: str, http: UpstreamClient
) -> None:
    url = f"{base}/status/429"
    exc = await failure(
        lambda: http.fetch("GET", url, params={"token": TOKEN, "retry_after": "42"}),
        RateLimited,
    )
    assert isinstance(exc, RateLimited) and exc.retry_after == 42.0
    assert str(exc) == f"Acme at {host_of(base)} is rate limiting (HTTP 429)"
    date = format_datetime(NOW + timedelta(seconds=120), usegmt=True)  # from the source's clock
    exc = await failure(lambda: http.fetch("GET", url, params={"retry_after": date}), RateLimited)
    assert isinstance(exc, RateLimited) and exc.retry_after == 120.0
    exc = await failure(lambda: http.fetch("GET", url), RateLimited)
    assert isinstance(exc, RateLimited) and exc.retry_after is None


@pytest.mark.parametrize("code", [500, 502, 503, 504])
async def test_5xx_is_cannot_connect_naming_host_and_path(
    base: str, http: UpstreamClient, code: int
) -> None:
    exc = await failure(
        lambda: http.fetch("GET", f"{base}/status/{code}?token={TOKEN}"), CannotConnect
    )
    assert str(exc) == f"Acme at {host_of(base)} answered HTTP {code} for /status/{code}"


async def test_a_hang_times_out_as_cannot_connect(base: str) -> None:
    async with new_http_client(LOOPBACK, upstream="Acme", timeout_s=0.5) as short:
        exc = await failure(lambda: short.fetch("GET", f"{base}/hang?token={TOKEN}"), CannotConnect)
    assert str(exc) == f"Acme at {host_of(base)} did not answer in time (ReadTimeout)"
    async with new_http_client(LOOPBACK, upstream="Acme", timeout_s=60) as long:
        exc = await failure(  # a request's own timeout_s wins
            lambda: long.fetch_json("GET", f"{base}/hang", timeout_s=0.5), CannotConnect
        )
    assert "did not answer in time" in str(exc)


async def test_a_redirect_is_bad_config_of_the_url_field(base: str, http: UpstreamClient) -> None:
    exc = await failure(
        lambda: http.fetch(
            "GET", f"{base}/moved?token={TOKEN}", url_field="credentials.server_url"
        ),
        BadConfig,
    )
    assert isinstance(exc, BadConfig) and exc.field == "credentials.server_url"
    assert exc.reason == (
        "the server redirects to https://new.example.com/api/x: use that address"
        " (redirects are not followed)"
    )
    exc = await failure(lambda: http.fetch("GET", f"{base}/relative"), UpdateFailed)
    assert str(exc) == (
        f"Acme at {host_of(base)} redirects /relative to {base}/elsewhere (HTTP 307)"
    )


async def test_garbage_and_other_content_types_are_update_failed(
    base: str, http: UpstreamClient
) -> None:
    where = f"Acme at {host_of(base)}"
    exc = await failure(lambda: http.fetch_json("GET", f"{base}/garbage?token={TOKEN}"))
    assert isinstance(exc, UpdateFailed)
    assert str(exc) == f"{where} sent broken JSON for /garbage"
    exc = await failure(lambda: http.fetch_json("GET", f"{base}/page", params={"token": TOKEN}))
    assert isinstance(exc, UpdateFailed)
    assert str(exc) == f"{where} answered text/html; charset=utf-8 instead of JSON for /page"
    exc = await failure(
        lambda: http.fetch_json("GET", f"{base}/page", url_field="credentials.server_url")
    )
    assert str(exc).endswith("for /page: is this a Acme server?")
    response = await http.fetch("GET", f"{base}/garbage")  # fetch leaves the body alone
    assert response.content == b'{"devices": [1, 2'


async def test_other_statuses_quote_the_first_line_of_the_body(
    base: str, http: UpstreamClient
) -> None:
    where = f"Acme at {host_of(base)}"
    exc = await failure(lambda: http.fetch("GET", f"{base}/trace?token={TOKEN}"), UpdateFailed)
    assert str(exc) == (
        f"{where} answered HTTP 400 for /trace: java.lang.Secur ityException: Operation restricted"
    )
    exc = await failure(lambda: http.fetch("GET", f"{base}/long"), UpdateFailed)
    assert str(exc) == f"{where} answered HTTP 418 for /long: " + "x" * MAX_EXCERPT
    exc = await failure(lambda: http.fetch("GET", f"{base}/status/404"), UpdateFailed)
    assert str(exc) == f"{where} answered HTTP 404 for /status/404"


async def test_accepted_statuses_come_back_unmapped(base: str, http: UpstreamClient) -> None:
    response = await http.fetch("GET", f"{base}/trace", accept=(400, 404))
    assert response.status_code == 400
    assert response.text.startswith("java.lang")
    answer = await http.fetch_json("GET", f"{base}/status/404", accept=(404,))
    assert isinstance(answer, httpx.Response) and answer.status_code == 404
    with pytest.raises(InvalidAuth):  # what is not accepted is still mapped
        await http.fetch("GET", f"{base}/status/401", accept=(400, 404))


async def test_no_answer_names_the_host_and_never_the_query() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x?token={TOKEN}"
    async with new_http_client(LOOPBACK, upstream="Acme") as http:
        exc = await failure(lambda: http.fetch("GET", url), CannotConnect)
    assert str(exc).startswith(f"cannot reach Acme at 127.0.0.1:{port}: ConnectError")
    async with new_http_client(OutboundPolicy.from_strings(()), upstream="Acme") as guarded:
        exc = await failure(lambda: guarded.fetch("GET", url, url_field="options.base_url"))
        assert isinstance(exc, BadConfig) and exc.field == "options.base_url"
        exc = await failure(lambda: guarded.fetch("GET", url), CannotConnect)  # a fixed upstream


async def test_the_helper_logs_nothing_at_info_or_above(
    base: str, http: UpstreamClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for path in ("/status/401", "/status/429", "/status/503", "/moved", "/trace", "/garbage"):
        with pytest.raises(CAUGHT):
            await http.fetch_json("GET", f"{base}{path}", params={"token": TOKEN})
    # httpx's own request log is kept below INFO by hub.logging_setup
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert [r for r in ours if r.levelno >= logging.INFO] == []
    assert all(TOKEN not in r.getMessage() for r in ours)


async def test_a_plain_httpx_client_gets_the_same_mapping(base: str) -> None:
    async with httpx.AsyncClient() as plain:
        exc = await failure(
            lambda: upstream_fetch(
                plain, "GET", f"{base}/status/503", upstream="Acme", params={"token": TOKEN}
            ),
            CannotConnect,
        )
        assert str(exc) == f"Acme at {host_of(base)} answered HTTP 503 for /status/503"
        response = await upstream_fetch(plain, "GET", f"{base}/ok", upstream="Acme")
        assert decode_json(response, "Acme") == {"token": None, "path": "/ok"}


def test_first_line_and_the_options_timeout() -> None:
    assert first_line("\n \n  a\tb\x07c  \nnext") == "a b c"
    assert first_line("") == ""
    assert options_timeout(HttpOptions()) == 30.0
    assert options_timeout(HttpOptions(timeout_s=4)) == 4.0
    assert options_timeout(object()) is None
    with pytest.raises(ValueError, match="timeout_s"):
        HttpOptions(timeout_s=0)


class AcmeOptions(HttpOptions):
    pass


class AcmeSource(FeedSource):
    kind = "acme"
    title = "Acme Cloud"
    Options = AcmeOptions


async def test_a_source_gets_an_upstream_client_for_its_connection(tmp_path: Any) -> None:
    wall = datetime(2031, 5, 6, 7, 8, tzinfo=UTC)

    class Fixed:
        def now(self) -> datetime:
            return wall

    hub = make_hub(tmp_path, AcmeSource, clock=Fixed())
    seen: list[UpstreamClient] = []

    async def action(source: Any) -> None:
        seen.append(source.ctx.http)

    try:
        await hub.with_source("acme", {"api_key": "k"}, {"timeout_s": 7}, action)
        await hub.with_source("acme", {"api_key": "k"}, None, action)
    finally:
        hub.store.close()
    first, second = seen
    assert isinstance(first, UpstreamClient)
    assert (first.upstream, first.timeout_s, first.now()) == ("Acme Cloud", 7.0, wall)
    assert first.timeout == httpx.Timeout(7.0)
    assert second.timeout_s == 30.0  # HttpOptions' default
    assert not first.follow_redirects
