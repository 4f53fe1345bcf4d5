"""The outbound URL guard (hub.netguard): save-time URL checks and the connect-time guard.

Every real socket here is on loopback; names such as ``good.test`` only ever resolve
through an injected resolver, and a test whose resolver answers a public address uses a
recording backend that never opens a socket.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.netguard import (
    BlockedAddress,
    GuardedBackend,
    OutboundPolicy,
    blocked_reason,
    check_url,
    guarded_client,
    guarded_transport,
)

DEFAULT = OutboundPolicy()
LOOPBACK = OutboundPolicy.from_strings(["127.0.0.0/8"])
FAST = httpx.Timeout(60.0, connect=30.0)  # hang guards: loopback can be slow on a busy machine


# -- a tiny HTTP/1.1 server on 127.0.0.1 -------------------------------------------------


def reply(status: int = 200, body: bytes = b"ok", headers: dict[str, str] | None = None) -> bytes:
    head = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in head.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Server:
    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [r.split(b" ", 2)[1].decode() for r in self.requests]


@asynccontextmanager
async def http_server(
    respond: Callable[[str], bytes] = lambda _path: reply(),
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[Server]:
    """Serve on 127.0.0.1 (a free port), counting connections and recording requests."""
    server = Server()
    listener: trio.abc.Listener[Any]
    tcp = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    server.port = tcp.socket.getsockname()[1]
    listener = tcp
    if tls is not None:

        def record_sni(_obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            server.sni.append(name)

        tls.sni_callback = record_sni  # type: ignore[assignment]
        listener = trio.SSLListener(tcp, tls, https_compatible=True)

    async def handle(stream: trio.abc.Stream) -> None:
        server.connections += 1
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                data += chunk
            server.requests.append(data)
            await stream.send_all(respond(data.split(b" ", 2)[1].decode()))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, [listener])
        yield server
        nursery.cancel_scope.cancel()


def resolving(table: dict[str, list[str]], calls: list[tuple[str, int]] | None = None) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        await trio.lowlevel.checkpoint()
        if calls is not None:
            calls.append((host, port))
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records what it is asked to connect to and never opens a socket."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kw: Any) -> Any:
        self.calls.append((host, port))
        raise httpcore.ConnectError("recording backend: no sockets here")

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)


# -- check_url ---------------------------------------------------------------------------

REFUSED = [
    # numeric forms libc reads as IPv4 (here all 127.0.0.1) and other non-canonical ones
    ("http://2130706433/", "ambiguous numeric"),
    ("http://0x7f.1/", "ambiguous numeric"),
    ("http://0x7f000001/", "ambiguous numeric"),
    ("http://017700000001/", "ambiguous numeric"),
    ("http://127.1/", "ambiguous numeric"),
    ("http://127.0.0.1./", "ambiguous numeric"),
    ("http://0/", "ambiguous numeric"),
    ("http://example.123/", "ambiguous numeric"),
    ("http://1.2.3.4.5/", "ambiguous numeric"),
    # loopback, in every spelling
    ("http://127.0.0.1/", "loopback"),
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]/", "loopback"),
    ("http://[2002:7f00:1::]/", "loopback"),
    ("http://[::127.0.0.1]/", "IPv4-compatible"),
    ("http://[64:ff9b::7f00:1]/", "NAT64"),
    ("http://localhost/", "loopback"),
    ("http://LOCALHOST./", "loopback"),
    ("http://localhost:8000/x", "loopback"),
    ("http://foo.localhost/", "loopback"),
    # metadata, link-local, private, special-purpose
    ("http://169.254.169.254/latest/meta-data", "metadata"),
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://169.254.10.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "zone identifiers"),
    ("http://[fc00::1]/", "unique local"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://192.0.2.10/", "documentation"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://192.0.0.9/", "IETF protocol"),
    # credentials, schemes, shape
    ("http://a@127.0.0.1/", "user name or password"),
    ("https://user:secret@example.com/hook", "user name or password"),
    ("http://example.com\\@127.0.0.1/", "user name or password"),
    ("ftp://example.com/", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("gopher://example.com:70/", "http or https"),
    ("javascript:alert(1)", "http or https"),
    ("example.com/hook", "must start with http"),
    ("http:///path", "no host"),
    ("http://", "no host"),
    ("https://example.com/hook#frag", "fragment"),
    ("http://example.com:0/", "out of range"),
    ("http://example.com:65536/", "out of range"),
    ("http://exa%20mple.com/", "not a valid host name"),
    ("http://a..b/", "not a valid host name"),
    ("http://256.1.1.1/", "not a valid URL"),
    ("http://127.000.000.001/", "not a valid URL"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_check_url_refuses(url: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        check_url(url, DEFAULT)
    assert why in str(info.value)


def test_refusing_an_address_names_the_setting_that_allows_it() -> None:
    with pytest.raises(ValueError) as info:
        check_url("http://10.0.0.5/", DEFAULT)
    assert str(info.value) == (
        "host 10.0.0.5 is not allowed (private address); "
        "the system administrator can allow it with outbound_allow_networks"
    )


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://example.com/hook", "https://example.com/hook"),
        ("http://93.184.216.34:8080/x", "http://93.184.216.34:8080/x"),
        ("HTTPS://Example.COM/a?b=1", "https://example.com/a?b=1"),
        ("https://bücher.de/", "https://xn--bcher-kva.de/"),
        ("http://[2606:4700:4700::1111]/dns", "http://[2606:4700:4700::1111]/dns"),
        ("https://cafe.de/", "https://cafe.de/"),  # hex letters, but not a number
        ("https://0x7f.example.com/", "https://0x7f.example.com/"),
        ("https://traccar.example.com:8082/api", "https://traccar.example.com:8082/api"),
    ],
)
def test_check_url_accepts(url: str, normalised: str) -> None:
    assert check_url(url, DEFAULT) == normalised


def test_allowed_networks_open_loopback_and_localhost() -> None:
    assert check_url("http://127.0.0.1:8080/x", LOOPBACK) == "http://127.0.0.1:8080/x"
    assert check_url("http://localhost:8080/x", LOOPBACK) == "http://localhost:8080/x"
    assert check_url("http://[::ffff:127.0.0.1]/", LOOPBACK) == "http://[::ffff:127.0.0.1]/"
    with pytest.raises(ValueError, match="private"):
        check_url("http://10.0.0.1/", LOOPBACK)
    with pytest.raises(ValueError, match="ambiguous numeric"):
        check_url("http://127.1/", LOOPBACK)  # still refused: write it canonically
    assert check_url("http://[::1]/", OutboundPolicy.from_strings(["::1"])) == "http://[::1]/"


# -- OutboundPolicy ----------------------------------------------------------------------


def test_check_address_with_allowed_networks() -> None:
    LOOPBACK.check_address("127.0.0.1")
    LOOPBACK.check_address(ipaddress.ip_address("127.4.5.6"))
    LOOPBACK.check_address("::ffff:127.0.0.1")
    with pytest.raises(BlockedAddress) as info:
        LOOPBACK.check_address("10.0.0.1")
    assert (info.value.host, info.value.address, info.value.reason) == (
        "10.0.0.1",
        "10.0.0.1",
        "private address",
    )
    with pytest.raises(BlockedAddress, match="loopback"):
        LOOPBACK.check_address("::1")  # only the IPv4 loopback was allowed
    with pytest.raises(BlockedAddress, match="loopback"):
        DEFAULT.check_address("127.0.0.1")


def test_blocked_address_message() -> None:
    exc = BlockedAddress("10.0.0.5", "10.0.0.5", "private address")
    assert str(exc) == (
        "refused to connect to 10.0.0.5 (private address); "
        "the system administrator can allow it with outbound_allow_networks"
    )
    assert isinstance(exc, httpcore.ConnectError)
    named = BlockedAddress("evil.test", "10.0.0.5", "private address")
    assert str(named).startswith("refused to connect to evil.test: it resolves to 10.0.0.5")


@pytest.mark.parametrize(
    "ip", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34"]
)
def test_public_addresses_pass(ip: str) -> None:
    DEFAULT.check_address(ip)


def test_allowed_networks_win_even_over_metadata() -> None:
    link_local = OutboundPolicy.from_strings(["169.254.0.0/16"])
    link_local.check_address("169.254.169.254")  # documented: allowed networks win
    with pytest.raises(BlockedAddress, match="metadata"):
        DEFAULT.check_address("169.254.169.254")


def test_from_strings() -> None:
    policy = OutboundPolicy.from_strings([" 10.0.0.0/8 ", "", "::1", "192.168.7.7"])
    assert [str(n) for n in policy.allow] == ["10.0.0.0/8", "::1/128", "192.168.7.7/32"]
    with pytest.raises(ValueError, match="'nope'"):
        OutboundPolicy.from_strings(["10.0.0.0/8", "nope"])
    with pytest.raises(ValueError, match=re.escape("'10.0.0.1/8'")):
        OutboundPolicy.from_strings(["10.0.0.1/8"])  # host bits set: ambiguous intent


# -- the connect-time guard, against a real loopback server ------------------------------


async def test_loopback_server_is_refused_without_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with http_server() as server:
        url = f"http://127.0.0.1:{server.port}/"
        async with guarded_client(DEFAULT, timeout=FAST) as client:
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(url)
        reason = blocked_reason(info.value)
        assert reason is not None
        assert "refused to connect to 127.0.0.1 (loopback address)" in reason
        assert server.connections == 0

        # Proxy settings in the environment are ignored (the proxy is what would be vetted).
        monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        async with guarded_client(LOOPBACK, timeout=FAST) as client:
            response = await client.get(url)
        assert (response.status_code, response.text) == (200, "ok")
        assert server.connections == 1


async def test_libc_numeric_hosts_are_vetted_at_connect_time() -> None:
    # ``127.1`` is 127.0.0.1 to libc; make sure it resolves without any DNS query first.
    for host in ("127.1", "2130706433"):
        socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    async with http_server() as server:
        async with guarded_client(DEFAULT, timeout=FAST) as client:
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(f"http://2130706433:{server.port}/")
        assert "2130706433: it resolves to 127.0.0.1" in (blocked_reason(info.value) or "")
        assert server.connections == 0
        async with guarded_client(LOOPBACK, timeout=FAST) as client:
            assert (await client.get(f"http://127.1:{server.port}/")).status_code == 200


async def test_a_name_with_any_blocked_address_is_refused_before_connecting() -> None:
    calls: list[tuple[str, int]] = []
    inner = RecordingBackend()
    guard = GuardedBackend(
        DEFAULT,
        resolver=resolving({"rebind.test": ["93.184.216.34", "127.0.0.1"]}, calls),
        backend=inner,
    )
    with pytest.raises(BlockedAddress) as info:
        await guard.connect_tcp("rebind.test", 80, timeout=1.0)
    assert (info.value.host, info.value.address) == ("rebind.test", "127.0.0.1")
    assert str(info.value).startswith("refused to connect to rebind.test: it resolves to 127.0.0.1")
    assert calls == [("rebind.test", 80)]  # resolved once
    assert inner.calls == []  # and nothing was connected to


async def test_connects_to_the_vetted_address_not_the_name() -> None:
    calls: list[tuple[str, int]] = []
    async with http_server() as server:
        resolver = resolving({"good.test": ["127.0.0.1"]}, calls)
        async with guarded_client(LOOPBACK, timeout=FAST, resolver=resolver) as client:
            response = await client.get(f"http://good.test:{server.port}/path")
    assert response.status_code == 200
    assert calls == [("good.test", server.port)]
    assert server.paths() == ["/path"]
    assert f"\r\nhost: good.test:{server.port}\r\n".encode() in server.requests[0].lower()


async def test_a_name_resolving_to_loopback_is_refused_by_default() -> None:
    async with http_server() as server:
        resolver = resolving({"good.test": ["127.0.0.1"]})
        async with guarded_client(DEFAULT, timeout=FAST, resolver=resolver) as client:
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(f"http://good.test:{server.port}/")
    assert "good.test: it resolves to 127.0.0.1 (loopback" in (blocked_reason(info.value) or "")
    assert server.connections == 0


async def test_tries_the_next_vetted_address_when_one_refuses() -> None:
    async with http_server() as server:
        # 127.0.0.2 is loopback too, but nothing listens there: connection refused.
        resolver = resolving({"two.test": ["127.0.0.2", "127.0.0.1"]})
        async with guarded_client(LOOPBACK, timeout=FAST, resolver=resolver) as client:
            response = await client.get(f"http://two.test:{server.port}/")
    assert response.status_code == 200
    assert server.connections == 1


async def test_redirects_are_not_followed() -> None:
    def respond(path: str) -> bytes:
        if path == "/":
            return reply(302, b"", {"Location": "/elsewhere"})
        return reply()

    async with http_server(respond) as server, guarded_client(LOOPBACK, timeout=FAST) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/")
    assert response.status_code == 302
    assert response.headers["location"] == "/elsewhere"
    assert server.paths() == ["/"]


async def test_an_ordinary_connection_failure_is_not_a_refusal() -> None:
    with socket.socket() as closed:  # bound, not listening: connecting is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        async with guarded_client(LOOPBACK, timeout=FAST) as client:
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(f"http://127.0.0.1:{port}/")
    assert blocked_reason(info.value) is None
    assert blocked_reason(ValueError("unrelated")) is None


async def test_resolution_failures_and_timeouts() -> None:
    async with guarded_client(LOOPBACK, timeout=FAST, resolver=resolving({})) as client:
        with pytest.raises(
            httpx.ConnectError, match=re.escape("could not resolve nowhere.test")
        ) as info:
            await client.get("http://nowhere.test/")
    assert blocked_reason(info.value) is None

    async def hangs(host: str, port: int) -> list[str]:
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover

    timeout = httpx.Timeout(5.0, connect=0.05)
    async with guarded_client(LOOPBACK, timeout=timeout, resolver=hangs) as client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.get("http://slow.test/")


async def test_unix_sockets_and_proxies_are_refused() -> None:
    with pytest.raises(httpcore.ConnectError, match="unix sockets"):
        await GuardedBackend(LOOPBACK).connect_unix_socket("/run/docker.sock")
    for bypass in ({"proxy": "http://127.0.0.1:3128"}, {"uds": "/run/docker.sock"}):
        with pytest.raises(ValueError, match="cannot use"):
            guarded_transport(LOOPBACK, **bypass)


def test_guarded_client_settings() -> None:
    client = guarded_client(DEFAULT, headers={"User-Agent": "gpshub"})
    assert client.follow_redirects is False
    assert client.trust_env is False
    assert client.headers["user-agent"] == "gpshub"
    assert client.timeout == httpx.Timeout(15.0, connect=5.0)
    transport = client._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    assert isinstance(transport._pool._network_backend, GuardedBackend)


# -- TLS: pinning to an IP keeps SNI and certificate checks on the name ------------------


def make_certificates(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A CA and a certificate for good.test; returns (server context, client context)."""
    now = dt.datetime.now(dt.UTC)

    def build(subject: str, key: Any, issuer: str, issuer_key: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("good.test")]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("test CA", ca_key, "test CA", ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = build("good.test", key, "test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (tmp / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "leaf.pem", tmp / "key.pem")
    client = ssl.create_default_context(cafile=str(tmp / "ca.pem"))
    return server, client


async def test_tls_uses_the_host_name_for_sni_and_certificate(tmp_path: Path) -> None:
    server_tls, client_tls = make_certificates(tmp_path)
    resolver = resolving({"good.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    async with http_server(tls=server_tls) as server:
        transport = guarded_transport(LOOPBACK, resolver=resolver, verify=client_tls)
        async with httpx.AsyncClient(transport=transport, timeout=FAST, trust_env=False) as c:
            response = await c.get(f"https://good.test:{server.port}/")
            assert response.status_code == 200
            assert server.sni == ["good.test"]
            # The certificate is checked against the name, not the pinned IP.
            with pytest.raises(httpx.ConnectError) as info:
                await c.get(f"https://other.test:{server.port}/")
            assert blocked_reason(info.value) is None
            cause = info.value.__cause__
            while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
                cause = cause.__cause__ or cause.__context__
            assert cause is not None
            assert "other.test" in str(cause)
    assert server.sni == ["good.test", "other.test"]
