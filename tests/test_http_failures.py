"""``upstream_errors``: how every cloud plugin reports a request that got no answer."""

from __future__ import annotations

import socket

import httpx
import pytest

from hub.errors import BadConfig, CannotConnect, UpdateFailed
from hub.http_failures import failure_detail, upstream_errors
from hub.netguard import OutboundPolicy
from hub.runner import new_http_client
from hub.testing import LOOPBACK


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_address_the_guard_refuses_names_the_field() -> None:
    async with new_http_client(OutboundPolicy.from_strings(())) as http:
        with (
            pytest.raises(BadConfig) as caught,
            upstream_errors("Acme at 127.0.0.1", "credentials.server_url"),
        ):
            await http.get(f"http://127.0.0.1:{closed_port()}/")
    assert caught.value.field == "credentials.server_url"
    assert "127.0.0.1" in str(caught.value)


async def test_a_fixed_upstream_refused_by_the_guard_is_unreachable() -> None:
    async with new_http_client(OutboundPolicy.from_strings(())) as http:
        with (
            pytest.raises(CannotConnect, match="cannot reach Acme: ConnectError"),
            upstream_errors("Acme", None),
        ):
            await http.get(f"http://127.0.0.1:{closed_port()}/")


async def test_a_refused_connection_says_why_without_the_url() -> None:
    port = closed_port()
    async with new_http_client(LOOPBACK) as http:
        with (
            pytest.raises(CannotConnect) as caught,
            upstream_errors(f"Acme at 127.0.0.1:{port}", "credentials.server_url"),
        ):
            await http.get(f"http://127.0.0.1:{port}/x?token=SECRET-IN-QUERY")
    text = str(caught.value)
    assert text.startswith(f"cannot reach Acme at 127.0.0.1:{port}: ConnectError")
    assert "SECRET-IN-QUERY" not in text


def raising(exc: Exception) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_a_timeout_and_an_unreadable_answer() -> None:
    async with raising(httpx.ReadTimeout("slow")) as http:
        with (
            pytest.raises(CannotConnect, match=r"^Acme did not answer in time \(ReadTimeout\)$"),
            upstream_errors("Acme", "credentials.server_url"),
        ):
            await http.get("http://acme.example/")
    async with raising(httpx.DecodingError("bad gzip")) as http:
        with (
            pytest.raises(UpdateFailed, match=r"^unreadable answer from Acme: DecodingError$"),
            upstream_errors("Acme", "credentials.server_url"),
        ):
            await http.get("http://acme.example/")


def test_the_detail_stops_before_the_url_and_is_short() -> None:
    exc = httpx.ConnectError("boom for url 'https://x/?key=SECRET'")
    assert failure_detail(exc) == "ConnectError: boom"
    assert failure_detail(httpx.ConnectError("")) == "ConnectError"
    assert len(failure_detail(httpx.ConnectError("x" * 1000))) == len("ConnectError: ") + 200
