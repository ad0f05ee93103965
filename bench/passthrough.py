"""A bare pass-through gRPC proxy: the baseline the gateway is measured against.

It does what any gRPC proxy must do and nothing the gateway adds: receive a call,
forward its bytes unchanged (identity serializers, no protobuf parsing) over one
channel, and return the answer or the status. No authentication, no Redis, no
masking, no journal. The ratio gateway/pass-through thus isolates the cost of the
gateway's own work from the cost of being a Python gRPC hop at all.

Started as its own process by the benchmark::

    python -m bench.passthrough --port 50070 --upstream 127.0.0.1:50061

``--route`` sends the services whose full name starts with a prefix to another
upstream, and ``--delay-ms`` holds every call that long before forwarding it:
together they stand in for six slow providers behind one process in the fan-out
measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import cast

import grpc
import uvloop

from bench.loadgen import check_loopback

# Metadata the gRPC stack sets itself on every hop; forwarding it would duplicate it.
_HOP_BY_HOP = ("user-agent", "grpc-", ":")

_Behavior = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


class PassThrough(grpc.GenericRpcHandler):
    """Forwards every unary call to an upstream chosen by the called service's name."""

    def __init__(self, upstream: str, routes: Mapping[str, str] | None = None, delay: float = 0.0) -> None:
        """Prepare the channels; nothing is connected until the first call.

        Args:
            upstream: ``host:port`` that receives every call no route names.
            routes: service-name prefix -> ``host:port``, the longest prefix winning.
            delay: seconds each call waits before it is forwarded.
        """
        self._delay = delay
        self._default = grpc.aio.insecure_channel(upstream)
        self._routes = sorted(
            ((prefix, grpc.aio.insecure_channel(address)) for prefix, address in (routes or {}).items()),
            key=lambda route: len(route[0]),
            reverse=True,
        )
        self._handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes]:
        """The forwarding handler of the called method, made once per method."""
        method: str = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None:
            forward: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self._channel_for(method).unary_unary(
                method, request_serializer=None, response_deserializer=None
            )
            handler = grpc.unary_unary_rpc_method_handler(self._behavior(forward))
            self._handlers[method] = handler
        return handler

    async def close(self) -> None:
        """Close every upstream channel."""
        for channel in (self._default, *(channel for _prefix, channel in self._routes)):
            await channel.close(grace=None)

    def _channel_for(self, method: str) -> grpc.aio.Channel:
        service = method.lstrip("/").partition("/")[0]
        for prefix, channel in self._routes:
            if service.startswith(prefix):
                return channel
        return self._default

    def _behavior(self, forward: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]) -> _Behavior:
        delay = self._delay

        async def behavior(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            if delay:
                await asyncio.sleep(delay)
            metadata = tuple(
                (key, value)
                for key, value in context.invocation_metadata() or ()
                if not key.startswith(_HOP_BY_HOP)
            )
            try:
                return await forward(request, timeout=context.time_remaining(), metadata=metadata)
            except grpc.aio.AioRpcError as error:
                # The details (grpc-status-details-bin) ride in the trailers: pass them on as they are.
                trailers = _pairs(error.trailing_metadata())
                await context.abort(error.code(), error.details() or "", trailers)
                raise  # unreachable: abort raises

        return behavior


def _pairs(metadata: object) -> tuple[tuple[str, str | bytes], ...]:
    # At run time metadata iterates as (key, value) tuples; the stubs say otherwise.
    return tuple(cast(Iterable[tuple[str, str | bytes]], metadata or ()))


async def serve(port: int, upstream: str, routes: Mapping[str, str], delay: float) -> None:
    """Serve on loopback ``port`` until SIGTERM or SIGINT."""
    proxy = PassThrough(upstream, routes, delay)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((proxy,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(1)
    await proxy.close()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench.passthrough", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    parser.add_argument("--upstream", required=True, help="host:port calls are forwarded to")
    parser.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="PREFIX=HOST:PORT",
        help="forward services whose full name starts with PREFIX to HOST:PORT (repeatable)",
    )
    parser.add_argument("--delay-ms", type=float, default=0.0, help="hold each call this long first")
    args = parser.parse_args(argv)
    routes: dict[str, str] = {}
    for route in args.route:
        prefix, sep, address = route.partition("=")
        if not sep:
            parser.error(f"--route wants PREFIX=HOST:PORT, got {route!r}")
        routes[prefix] = address
    for address in (args.upstream, *routes.values()):
        check_loopback(address)
    uvloop.run(serve(args.port, args.upstream, routes, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
