"""Which client a request comes from, for throttling and logs.

The peer address of the connection is the client, unless the peer is one of the
``trusted_proxies`` (a setting: addresses or CIDRs of the reverse proxies in front of the
hub).  Then ``X-Forwarded-For`` is read from the right, skipping the trusted proxies'
own addresses: the first address that is not a trusted proxy is the client.  Anything
left of it was written by the client itself and is ignored, so a client cannot choose
its address by sending the header.  Without trusted proxies the header is never read:
behind an untrusted proxy, every client shares the proxy's address.

Throttling keys an IPv6 client by its /64 network (one host commonly owns a whole /64);
an IPv4-mapped IPv6 address is its IPv4 address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["AddressResolver", "throttle_key"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


def parse_networks(values: Iterable[str], setting: str = "trusted_proxies") -> list[IPNetwork]:
    """CIDRs (or single addresses); a bad one is a ``ValueError`` naming the setting."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"setting {setting!r}: {value!r} is not an IP address or network"
            ) from None
    return out


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it: ``203.0.113.7``, ``2001:db8::1``, ``[2001:db8::1]``,
    with or without ``:port``; ``None`` when it is not an address (``unknown``, a name)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def throttle_key(address: IPAddress | None) -> str:
    """What failed attempts are counted against: the IPv4 address, or the IPv6 /64."""
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class AddressResolver:
    """The client address of an ASGI scope (see the module's docstring)."""

    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        self.trusted = parse_networks(trusted_proxies)

    def is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.trusted)

    def client(self, scope: Mapping[str, Any]) -> IPAddress | None:
        peer = scope.get("client")
        address = parse_address(str(peer[0])) if peer else None
        if address is None or not self.trusted or not self.is_trusted(address):
            return address
        hops = [
            hop
            for name, value in scope.get("headers", ())
            if name.lower() == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
            if hop.strip()
        ]
        for hop in reversed(hops):
            forwarded = parse_address(hop)
            if forwarded is None:  # garbage from a trusted proxy: stop at that proxy
                return address
            address = forwarded
            if not self.is_trusted(address):
                return address
        return address
