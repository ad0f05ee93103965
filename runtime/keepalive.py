"""HTTP/2 keepalive: the pings the mesh's channels send, and what its servers accept of them.

One interval, declared here, sets both sides. A channel that pings a server more often
than the server accepts is answered GOAWAY ``ENHANCE_YOUR_CALM`` "too_many_pings" and
torn down, breaking every stream on it: grpc-core's server defaults accept a ping without
data at most every 5 minutes, and every 2 hours on a connection without a call. So the
channels (`Keepalive.channel_options`, the gateway's to its providers) ping every
``interval_seconds``, and every server of the mesh (`Keepalive.server_options`, in
`runtime.server.GrpcServer`) accepts pings twice as often as that, calls or not, for the
jitter between two pings' arrivals. A caller that pings faster still (one the mesh does
not control, a client of the gateway) gets ``MAX_PING_STRIKES`` pings too soon, then the
GOAWAY: a ping flood costs it its connection.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PING_STRIKES = 2
"""Pings too soon a server lets pass before its GOAWAY; any data it sends clears them (grpc-core's own)."""


@dataclass(frozen=True, slots=True)
class Keepalive:
    """The keepalive of one channel and of the servers it reaches.

    Attributes:
        interval_seconds: Seconds between two pings of a channel, calls or not (grpc-core
            sends one a second at most); a server accepts them ``interval_seconds / 2`` apart.
        timeout_seconds: Seconds a ping may wait for its acknowledgement before the
            channel gives up the connection as dead.
    """

    interval_seconds: float = 30.0
    timeout_seconds: float = 10.0

    def channel_options(self) -> tuple[tuple[str, int], ...]:
        """The options of a channel that pings every ``interval_seconds``, calls or not."""
        return (
            ("grpc.keepalive_time_ms", _ms(self.interval_seconds)),
            ("grpc.keepalive_timeout_ms", _ms(self.timeout_seconds)),
            ("grpc.keepalive_permit_without_calls", 1),
            # grpc-core's default stops pinging after two pings without data.
            ("grpc.http2.max_pings_without_data", 0),
        )

    def server_options(self) -> tuple[tuple[str, int], ...]:
        """The options of a server that accepts those pings, and no more than twice as many."""
        return (
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", _ms(self.interval_seconds / 2)),
            ("grpc.http2.max_ping_strikes", MAX_PING_STRIKES),
        )


KEEPALIVE = Keepalive()
"""The mesh's keepalive: a ping every 30 s, acknowledged within 10 s; servers accept one every 15 s."""


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
