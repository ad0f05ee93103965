"""A bare HTTP/2 client that sends exactly the headers it is given, even ones no gRPC library sends.

grpcio's client refuses to send a NUL byte in a header, a malformed ``grpc-timeout`` or
a ``-bin`` header that is not base64; the tests that measure what a server answers to
them speak HTTP/2 themselves, with h2 and a socket.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events


@dataclass
class RawAnswer:
    """What came back on the stream: headers and trailers together, and whether it was reset."""

    headers: dict[str, str] = field(default_factory=dict)
    reset_code: int | None = None

    @property
    def grpc_status(self) -> int | None:
        """The gRPC status code, or None when the server sent none (reset, or plain HTTP)."""
        status = self.headers.get("grpc-status")
        return None if status is None else int(status)


def unary_call(
    address: tuple[str, int], path: str, message: bytes, extra_headers: list[tuple[bytes, bytes]]
) -> RawAnswer:
    """Send one unary gRPC call with ``extra_headers`` as they are and read the answer.

    Args:
        address: The server's host and port (plaintext HTTP/2).
        path: ``/package.Service/Method``.
        message: The serialized request.
        extra_headers: Headers sent after the required ones, unvalidated.
    """
    connection = h2.connection.H2Connection(
        h2.config.H2Configuration(
            client_side=True,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
    )
    answer = RawAnswer()
    with socket.create_connection(address, timeout=5) as sock:
        connection.initiate_connection()
        stream = connection.get_next_available_stream_id()
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", f"{address[0]}:{address[1]}".encode()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            *extra_headers,
        ]
        connection.send_headers(stream, headers)
        connection.send_data(stream, b"\x00" + len(message).to_bytes(4, "big") + message, end_stream=True)
        sock.sendall(connection.data_to_send())
        done = False
        while not done:
            data = sock.recv(65536)
            if not data:
                break
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    answer.headers.update((_text(k), _text(v)) for k, v in event.headers)
                elif isinstance(event, h2.events.StreamReset):
                    answer.reset_code = int(event.error_code)
                if isinstance(
                    event, h2.events.StreamEnded | h2.events.StreamReset | h2.events.ConnectionTerminated
                ):
                    done = True
            sock.sendall(connection.data_to_send())
    return answer


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
