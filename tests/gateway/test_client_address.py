"""The caller's address: the peer, or what a trusted proxy forwarded in the one header it writes."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.client_address import FORWARDED, ClientAddresses, grpc_peer_host

_INGRESS = [ipaddress.ip_network("10.244.0.0/16"), ipaddress.ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:127.0.0.1:50412", "127.0.0.1"),
        ("ipv6:[::1]:50412", "::1"),
        ("ipv6:[::ffff:10.1.2.3]:1", "::ffff:10.1.2.3"),
        ("unix:/tmp/socket", None),
        ("", None),
        (None, None),
    ],
)
def test_the_host_of_a_grpc_peer(peer: str | None, host: str | None) -> None:
    assert grpc_peer_host(peer) == host


def test_without_trusted_proxies_the_peer_is_the_caller_whatever_it_forwards() -> None:
    addresses = ClientAddresses(())

    forwarding = [("x-forwarded-for", "192.0.2.1")]
    assert addresses.of("10.244.0.5", forwarding) == ipaddress.ip_address("10.244.0.5")
    assert addresses.of("::ffff:192.0.2.9", ()) == ipaddress.ip_address("192.0.2.9")
    assert addresses.of(None, ()) is None
    assert addresses.of("no address", ()) is None


@pytest.mark.parametrize(
    ("lines", "caller"),
    [
        (["192.0.2.1"], "192.0.2.1"),
        (["198.51.100.7, 192.0.2.1"], "192.0.2.1"),  # the caller prepended a hop: never reached
        (["192.0.2.1, 10.244.1.1"], "192.0.2.1"),  # two trusted proxies in a row
        (["192.0.2.1", "10.244.1.1"], "192.0.2.1"),  # several header lines are one list
        (["10.244.1.2, 10.244.1.1"], "10.244.1.2"),  # only proxies: the leftmost
        (["2001:db8::7"], "2001:db8::7"),
        ([], "10.244.0.5"),  # nothing forwarded: the proxy calls on its own behalf
        (["garbage"], None),
        (["192.0.2.1, garbage"], None),
        ([""], None),
    ],
)
def test_a_trusted_proxys_x_forwarded_for_is_read_from_its_end(lines: list[str], caller: str | None) -> None:
    addresses = ClientAddresses(_INGRESS)
    metadata = [("x-forwarded-for", line) for line in lines] + [("forwarded", "for=203.0.113.9")]

    found = addresses.of("10.244.0.5", metadata)

    assert found == (ipaddress.ip_address(caller) if caller else None)


@pytest.mark.parametrize(
    ("line", "caller"),
    [
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        ('for="192.0.2.60:4711"', "192.0.2.60"),
        ('for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        ("For=192.0.2.1, for=10.244.3.3", "192.0.2.1"),
        ("proto=https", None),
        ("for=unknown", None),
        ("for=_hidden", None),
        ('for="[2001:db8::1', None),
    ],
)
def test_a_trusted_proxys_forwarded_header_rfc_7239(line: str, caller: str | None) -> None:
    addresses = ClientAddresses(_INGRESS, FORWARDED)

    found = addresses.of("10.244.0.5", [("forwarded", line), ("x-forwarded-for", "203.0.113.9")])

    assert found == (ipaddress.ip_address(caller) if caller else None)


def test_only_the_two_forwarding_headers_can_be_trusted() -> None:
    with pytest.raises(ValueError, match="x-real-ip"):
        ClientAddresses(_INGRESS, "x-real-ip")
