"""Who calls: the address a habilitation's IP allowlist is checked against (ACCESS-MODEL.md §6).

The caller's address is the connection's peer, unless that peer is a trusted proxy
(``TRUSTED_PROXIES``: the Kubernetes ingress's range), in which case it is the address the
proxy forwarded in ``TRUSTED_PROXY_HEADER``, the same HTTP header or gRPC metadata key on
both transports:

- ``x-forwarded-for`` (the default, what ingress-nginx writes): ``client, proxy1, proxy2``;
- ``forwarded`` (RFC 7239): ``for=client;proto=https, for="[2001:db8::1]:4711"``.

Only the one header the proxy writes is read: a proxy passes the other one through as the
caller wrote it, so reading both would let any caller name its own address. The hops are
read from the right, the proxies' end, skipping trusted proxies; the first other hop is the
caller (what Rack's ``req.ip`` does, which the real API checks). A caller can only prepend
hops, which are never reached. With no trusted proxy, the headers are never read.

An address that cannot be told (a Unix socket, a malformed hop where the caller should be)
is None: a habilitation with an allowlist refuses it, one without admits it. Nothing here
raises on what a caller sends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

X_FORWARDED_FOR = "x-forwarded-for"
FORWARDED = "forwarded"
PROXY_HEADERS = (X_FORWARDED_FOR, FORWARDED)
"""The headers a trusted proxy may be set to write the caller's address in (``TRUSTED_PROXY_HEADER``)."""


def parse_address(text: str) -> Address | None:
    """An IP address as written, an IPv4-mapped IPv6 one as its IPv4; None when it is none."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def grpc_peer_host(peer: str | None) -> str | None:
    """The host of a gRPC peer (``ipv4:10.0.0.1:5000``, ``ipv6:[::1]:5000``); None for another kind."""
    if not peer:
        return None
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return None


def _forwarded_for(value: str) -> str:
    """The ``for=`` node of one element of a ``Forwarded`` header, without quotes, brackets or port."""
    for pair in value.split(";"):
        name, _, node = pair.partition("=")
        if name.strip().lower() != "for":
            continue
        node = node.strip().strip('"')
        if node.startswith("["):  # "[2001:db8::1]:4711"
            host, bracket, _ = node[1:].partition("]")
            return host if bracket else ""
        host, colon, port = node.rpartition(":")
        # IPv4 with a port: one colon; a bare IPv6 (not allowed unquoted, taken all the same) has more.
        return host if colon and host.count(":") == 0 and port.isdigit() else node
    return ""


def forwarded_hops(header: str, values: Iterable[str]) -> list[str]:
    """The hops of every ``header`` value, in order (several header lines are one list, RFC 9110 §5.3)."""
    hops = [hop.strip() for value in values for hop in value.split(",")]
    if header == FORWARDED:
        return [_forwarded_for(hop) for hop in hops]
    return hops


class ClientAddresses:
    """The rule that tells the caller's address from its connection and what its proxies forwarded.

    Args:
        trusted_proxies: The networks of the proxies whose forwarded address is believed.
        header: The one header (metadata key) they write it in: one of `PROXY_HEADERS`.

    Raises:
        ValueError: ``header`` is not one of `PROXY_HEADERS`.
    """

    def __init__(self, trusted_proxies: Sequence[Network], header: str = X_FORWARDED_FOR) -> None:
        if header not in PROXY_HEADERS:
            raise ValueError(f"a trusted proxy writes one of {PROXY_HEADERS}, not {header!r}")
        self._trusted = tuple(trusted_proxies)
        self._header = header

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)

    def of(self, peer_host: str | None, metadata: Iterable[tuple[str, str | bytes]]) -> Address | None:
        """The caller's address.

        Args:
            peer_host: The connection's remote host as an IP address text (`grpc_peer_host` of a gRPC
                peer, the ASGI scope's ``client`` host); None when the transport tells none.
            metadata: The call's metadata (gRPC) or headers (HTTP), keys in lower case.

        Returns:
            The peer; when the peer is a trusted proxy, the rightmost forwarded hop that is not one
            (the leftmost when all are); None when it cannot be told.
        """
        peer = parse_address(peer_host) if peer_host else None
        if peer is None or not self._trusted or not self._is_trusted(peer):
            return peer
        values = [value for key, value in metadata if key == self._header and isinstance(value, str)]
        hops = forwarded_hops(self._header, values)
        if not hops:
            return peer  # the proxy forwarded nothing: it is the caller
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                return None
            if not self._is_trusted(address):
                return address
        return parse_address(hops[0])
