"""The outbound URL guard: no server-side request forgery through user-supplied URLs.

Users give the hub URLs it then fetches by itself — webhook receivers, and the
``server_url`` of source plugins.  Without a guard, anyone allowed to save such a URL can
make the hub reach what only the hub can reach: ``127.0.0.1`` admin ports, the cloud
metadata service at ``169.254.169.254``, databases on the private network.  Every such
request therefore goes through this module, in two places:

* **When a URL is saved** — :func:`check_url`, static checks without DNS: http(s) only,
  no credentials in the URL, no fragment, and an IP-literal host (including the forms only
  libc understands, such as ``2130706433`` or ``127.1``) or ``localhost`` is judged right
  away, so the user gets a clear error instead of a delivery that always fails.
* **When a connection is opened** — :class:`GuardedBackend`, an httpcore network backend
  used by :func:`guarded_client`.  A name is resolved *once*; the connection is refused if
  *any* address it resolves to is blocked (a name answering both a public and a private
  address is how DNS rebinding gets in); then it connects to the address it vetted, not to
  the name again (pinning: a second lookup could answer differently).  TLS is unaffected:
  httpcore hands the origin's host name to ``start_tls`` separately, so SNI and the
  certificate check still use the name in the URL.

An address is allowed if it is in one of the networks the system administrator allows
(``outbound_allow_networks``, e.g. ``10.0.0.0/8`` for a self-hosted Traccar, or
``127.0.0.0/8`` in tests); otherwise it must be globally routable unicast.  Allowed networks
always win — also over the metadata addresses inside them — so the rule stays simple to
predict: allow ``169.254.0.0/16`` and the metadata service is reachable.  Blocked ranges
are listed explicitly (Python 3.11's ``is_global`` has known gaps: it calls ``64:ff9b::/96``
and ``::127.0.0.1`` global) and, in addition, ``is_global`` must hold.  IPv4-mapped
(``::ffff:a.b.c.d``) and 6to4 (``2002::/16``) addresses are judged by the IPv4 address they
embed.

The client never follows redirects (a redirect to ``http://127.0.0.1/`` would otherwise
bypass the save-time check; the connect-time guard would still stop it) and ignores proxy
settings from the environment (behind a proxy the guard would vet the proxy, not the
target).  The backend uses trio.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import trio

__all__ = [
    "ANY_ADDRESS",
    "DEFAULT_TIMEOUT",
    "BlockedAddress",
    "GuardedBackend",
    "OutboundPolicy",
    "Resolver",
    "blocked_reason",
    "check_url",
    "guarded_client",
    "guarded_transport",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves ``(host, port)`` to IP address strings, e.g. ``["93.184.216.34", "2606:…"]``."""

ALLOW_SETTING = "outbound_allow_networks"
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)

_N4, _N6 = ipaddress.IPv4Network, ipaddress.IPv6Network
# Checked in order, so the more specific entries (metadata, broadcast) come first.
_DENY_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_N4("169.254.169.254/32"), "cloud metadata address"),
    (_N4("255.255.255.255/32"), "broadcast address"),
    (_N4("0.0.0.0/8"), "unspecified address"),
    (_N4("10.0.0.0/8"), "private address"),
    (_N4("100.64.0.0/10"), "carrier-grade NAT address"),
    (_N4("127.0.0.0/8"), "loopback address"),
    (_N4("169.254.0.0/16"), "link-local address"),
    (_N4("172.16.0.0/12"), "private address"),
    (_N4("192.0.0.0/24"), "IETF protocol address"),
    (_N4("192.0.2.0/24"), "documentation address"),
    (_N4("192.168.0.0/16"), "private address"),
    (_N4("198.18.0.0/15"), "benchmarking address"),
    (_N4("198.51.100.0/24"), "documentation address"),
    (_N4("203.0.113.0/24"), "documentation address"),
    (_N4("224.0.0.0/4"), "multicast address"),
    (_N4("240.0.0.0/4"), "reserved address"),
)
_DENY_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_N6("::/128"), "unspecified address"),
    (_N6("::1/128"), "loopback address"),
    (_N6("::/96"), "IPv4-compatible address (deprecated)"),
    (_N6("64:ff9b::/96"), "NAT64 address"),
    (_N6("64:ff9b:1::/48"), "NAT64 address"),
    (_N6("100::/64"), "discard-only address"),
    (_N6("2001:db8::/32"), "documentation address"),
    (_N6("fd00:ec2::254/128"), "cloud metadata address"),
    (_N6("fc00::/7"), "unique local (private) address"),
    (_N6("fe80::/10"), "link-local address"),
    (_N6("fec0::/10"), "site-local address (deprecated)"),
    (_N6("ff00::/8"), "multicast address"),
)

_LOOPBACKS = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))
# WHATWG's "ends in a number": a last label like this makes resolvers read the host as IPv4.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


class BlockedAddress(httpcore.ConnectError):
    """A connection refused by the guard: ``host`` resolved to a blocked ``address``.

    A subclass of ``httpcore.ConnectError``, so httpx raises it as ``httpx.ConnectError``
    (use :func:`blocked_reason` to tell it from an ordinary failure).
    """

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        target = address if host == address else f"{host}: it resolves to {address}"
        super().__init__(
            f"refused to connect to {target} ({reason}); "
            f"the system administrator can allow it with {ALLOW_SETTING}"
        )


def _parse_address(ip: str | IPAddress) -> IPAddress:
    return ip if isinstance(ip, IPAddress) else ipaddress.ip_address(ip)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped or 6to4 IPv6 address stands for."""
    if isinstance(ip, ipaddress.IPv6Address):
        return ip.ipv4_mapped or ip.sixtofour
    return None


def _deny_reason(ip: IPAddress) -> str | None:
    table = _DENY_V4 if isinstance(ip, ipaddress.IPv4Address) else _DENY_V6
    for network, reason in table:
        if ip in network:
            return reason
    if not ip.is_global:
        return "non-global address"
    return None


@dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses the hub may connect to: globally routable ones, plus ``allow``."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_strings(cls, values: Iterable[str]) -> OutboundPolicy:
        """Build a policy from CIDR strings (``"10.0.0.0/8"``, ``"::1"``); blanks are skipped."""
        networks: list[IPNetwork] = []
        for value in values:
            text = value.strip()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text))
            except ValueError as exc:
                raise ValueError(f"{ALLOW_SETTING}: {value!r} is not a network: {exc}") from None
        return cls(tuple(networks))

    def is_allowed(self, ip: str | IPAddress) -> bool:
        """Whether ``ip`` is in an allowed network (not whether it is public)."""
        address = _parse_address(ip)
        candidates = [address, _embedded_ipv4(address)]
        return any(c is not None and c in net for c in candidates for net in self.allow)

    def check_address(self, ip: str | IPAddress, *, host: str | None = None) -> None:
        """Raise :class:`BlockedAddress` unless the hub may connect to ``ip``.

        ``host`` (the name ``ip`` was resolved from) only goes into the message.  A string
        that is not an IP address raises ``ValueError``.
        """
        address = _parse_address(ip)
        if self.is_allowed(address):
            return
        embedded = _embedded_ipv4(address)
        reason = _deny_reason(embedded if embedded is not None else address)
        if reason is not None:
            raise BlockedAddress(host or str(address), str(address), reason)


ANY_ADDRESS = OutboundPolicy((ipaddress.IPv4Network("0.0.0.0/0"), ipaddress.IPv6Network("::/0")))
"""A policy allowing every address: for checking a URL's syntax alone."""


# -- save time ---------------------------------------------------------------------------


def check_url(url: str, policy: OutboundPolicy) -> str:
    """Check a user-supplied outbound URL without DNS; return it normalised.

    Raises ``ValueError`` saying what is wrong (the caller adds the field name).  Passing
    this does not make a URL safe — a name can still resolve to a blocked address — the
    connect-time guard of :func:`guarded_client` decides that.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        if not parsed.scheme:
            raise ValueError("the URL must start with http:// or https://")
        raise ValueError(f"the URL scheme must be http or https, not {parsed.scheme!r}")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise ValueError("the URL has no host")
    if parsed.userinfo:
        raise ValueError(
            "a user name or password in the URL is not allowed; send credentials in headers"
        )
    normalised = str(parsed)
    if "#" in normalised:
        raise ValueError("the URL must not have a fragment ('#…')")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ValueError(f"port {parsed.port} is out of range (1–65535)")
    _check_host(host, policy)
    return normalised


def _check_host(host: str, policy: OutboundPolicy) -> None:
    if ":" in host:  # an IPv6 literal; httpx has validated it
        if "%" in host:
            raise ValueError(f"host {host}: IPv6 zone identifiers are not allowed")
        _check_literal(host, policy)
        return
    if not _HOST_NAME.fullmatch(host):
        raise ValueError(f"host {host!r} is not a valid host name")
    name = host.removesuffix(".")
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(
                f"host {host!r} is an ambiguous numeric address (resolvers read it as IPv4);"
                " write an IPv4 address as four decimal numbers, e.g. 93.184.216.34"
            ) from None
        _check_literal(str(address), policy)
        return
    if (name == "localhost" or name.endswith(".localhost")) and not any(
        policy.is_allowed(ip) for ip in _LOOPBACKS
    ):
        raise ValueError(
            f"host {host} is not allowed (loopback address); "
            f"the system administrator can allow it with {ALLOW_SETTING}"
        )


def _check_literal(host: str, policy: OutboundPolicy) -> None:
    try:
        policy.check_address(host)
    except BlockedAddress as exc:
        raise ValueError(
            f"host {host} is not allowed ({exc.reason}); "
            f"the system administrator can allow it with {ALLOW_SETTING}"
        ) from None


# -- connect time ------------------------------------------------------------------------


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the system resolver (A and AAAA), in getaddrinfo's preference order."""
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, vets and pins every TCP connection.

    ``resolver`` replaces the system resolver (tests); ``backend`` is the backend that
    opens the vetted connections (default: httpcore's trio backend).  Unix sockets are
    refused.
    """

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolver: Resolver | None = None,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self._resolve = resolver or system_resolver
        self._backend = backend or httpcore.TrioBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        try:
            with trio.fail_at(deadline):
                addresses = await self._vetted(host, port)
                return await self._connect_any(
                    addresses, port, deadline, local_address, socket_options
                )
        except trio.TooSlowError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None

    async def _vetted(self, host: str, port: int) -> list[str]:
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve {host}: no addresses")
        for address in addresses:
            try:
                self.policy.check_address(address, host=host)
            except ValueError:
                raise httpcore.ConnectError(
                    f"could not resolve {host}: {address!r} is not an IP address"
                ) from None
        return addresses

    async def _connect_any(
        self,
        addresses: list[str],
        port: int,
        deadline: float,
        local_address: str | None,
        socket_options: Iterable[Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first address that answers (each try gets a share of the time)."""
        options = list(socket_options or [])
        error: Exception = httpcore.ConnectError("no addresses to connect to")
        for left, address in zip(range(len(addresses), 0, -1), addresses, strict=True):
            now = trio.current_time()
            try:
                with trio.fail_at(now + (deadline - now) / left):
                    return await self._backend.connect_tcp(
                        address, port, local_address=local_address, socket_options=options
                    )
            except trio.TooSlowError:
                error = httpcore.ConnectTimeout(f"timed out connecting to {address} port {port}")
            except httpcore.ConnectError as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound connections over unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def guarded_transport(
    policy: OutboundPolicy, *, resolver: Resolver | None = None, **kwargs: Any
) -> httpx.AsyncHTTPTransport:
    """An ``httpx.AsyncHTTPTransport`` whose connections go through :class:`GuardedBackend`.

    ``kwargs`` go to ``AsyncHTTPTransport`` (``verify``, ``limits``, ``http2``, …), except
    ``proxy`` and ``uds``, which would bypass the guard.  httpx has no parameter for the
    network backend, so this sets httpcore's private ``AsyncConnectionPool._network_backend``
    (read whenever the pool opens a connection); it checks the attribute is there so that an
    httpcore upgrade that renames it fails loudly instead of silently unguarded.  With
    ``retries=``, httpcore retries a refusal like any ``ConnectError`` (each retry is
    resolved and vetted again, so it is only wasted time).
    """
    for bypass in ("proxy", "uds"):
        if kwargs.get(bypass) is not None:
            raise ValueError(f"a guarded transport cannot use {bypass}=")
    transport = httpx.AsyncHTTPTransport(**kwargs)
    pool = transport._pool
    if type(pool) is not httpcore.AsyncConnectionPool or not isinstance(
        getattr(pool, "_network_backend", None), httpcore.AsyncNetworkBackend
    ):
        raise RuntimeError(
            "httpcore internals changed: AsyncConnectionPool._network_backend is missing;"
            " the outbound guard cannot be installed"
        )
    pool._network_backend = GuardedBackend(policy, resolver=resolver)
    return transport


def guarded_client(
    policy: OutboundPolicy,
    *,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    headers: dict[str, str] | None = None,
    limits: httpx.Limits | None = None,
    resolver: Resolver | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for user-supplied URLs: guarded, no redirects, no env proxies."""
    extra: dict[str, Any] = {} if limits is None else {"limits": limits}
    return httpx.AsyncClient(
        transport=guarded_transport(policy, resolver=resolver, **extra),
        timeout=timeout,
        headers=headers,
        follow_redirects=False,
        trust_env=False,
    )


def blocked_reason(exc: BaseException) -> str | None:
    """The guard's message if ``exc`` (e.g. an ``httpx.ConnectError``) is a refusal, else None."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BlockedAddress):
            return str(current)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None
