"""A local SMTP sink: accepts every message and writes it to a directory, one ``.eml`` file each.

For `make run` (the admin API's expiry notices go there) and the tests; never a mail server:
it relays nothing, checks nothing, and listens on loopback only.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path

_MAX_LINE = 65536
_MAX_MESSAGE = 10 * 1024 * 1024


class SmtpSink:
    """The sink, serving on ``127.0.0.1:<port>`` (0 picks a free one) from a thread of its own."""

    def __init__(self, directory: Path, port: int = 0) -> None:
        """Write the messages to ``directory``."""
        self.directory = directory
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._numbers = itertools.count(1)

    def start(self) -> None:
        """Listen and serve in a background thread."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", self.port, limit=_MAX_LINE)
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._thread = threading.Thread(target=self._loop.run_forever, name="smtp-sink", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        if self._thread is None or self._server is None:
            return
        server = self._server

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._thread = None

    def messages(self) -> list[bytes]:
        """The messages received, oldest first."""
        return [path.read_bytes() for path in sorted(self.directory.glob("*.eml"))]

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"DATA":
                    writer.write(b"354 end with <CRLF>.<CRLF>\r\n")
                    data = await reader.readuntil(b"\r\n.\r\n")
                    if len(data) <= _MAX_MESSAGE:
                        name = f"{next(self._numbers):06d}.eml"
                        (self.directory / name).write_bytes(
                            data[: -len(b".\r\n")].replace(b"\r\n..", b"\r\n.")
                        )
                    writer.write(b"250 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                else:  # EHLO, HELO, MAIL, RCPT, RSET, NOOP: all accepted
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
