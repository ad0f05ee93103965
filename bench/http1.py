"""A minimal HTTP/1.1 keep-alive client for the load generator: one GET at a time per connection.

The request is built once, as bytes, and the answer's body is read and dropped, so
the client spends next to nothing per call and what is measured is the server, as
with the gRPC client and its identity serializers. It reads what the REST front
sends: a status line, headers with ``content-length``, a body; anything else
(chunked bodies, a closed connection) is an error of the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

_HEAD_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"


def http_status_name(status: int) -> str:
    """How the load generator counts an HTTP status: ``OK`` for 200, else ``HTTP_<status>``."""
    return "OK" if status == 200 else f"HTTP_{status}"


def get_request(target: str, path: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """The bytes of ``GET path`` to ``target`` (``host:port``), keep-alive, with ``headers``."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {target}", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Connection:
    """One keep-alive connection; `get` sends the prepared request and reads the answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, target: str) -> Connection:
        """Connect to ``host:port``."""
        host, _, port = target.rpartition(":")
        reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        return cls(reader, writer)

    async def get(self, request: bytes) -> int:
        """Send ``request`` and read the whole answer; its HTTP status.

        Raises:
            ConnectionError: the server closed the connection or sent what this client does not read.
        """
        self._writer.write(request)
        try:
            head = await self._reader.readuntil(_HEAD_END)
        except asyncio.IncompleteReadError as error:
            raise ConnectionError("the server closed the connection") from error
        start = head.lower().find(_LENGTH)
        if start < 0:
            raise ConnectionError("an answer without content-length")
        end = head.index(b"\r\n", start + len(_LENGTH))
        await self._reader.readexactly(int(head[start + len(_LENGTH) : end]))
        return int(head[9:12])

    async def close(self) -> None:
        """Close the connection."""
        self._writer.close()
        await self._writer.wait_closed()
