"""The processes a benchmark run starts, and what it reads from them.

Every server runs as its own OS process (a child in its own session, so Ctrl-C
reaches only the benchmark, which then stops the children in order), with its
output in the run's log directory. `Mesh` remembers everything it started and
`Mesh.close` stops it all: SIGTERM, a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.redis import RedisProcess, free_port

_ROOT = Path(__file__).resolve().parent.parent
_START_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 10.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Child:
    """One server process of the run."""

    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        """Where it listens."""
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far, all its threads together.

        Read from /proc/<pid>/stat (utime and stime, fields 14 and 15), the kernel's
        rusage of the whole thread group, so gRPC core's threads count too.
        """
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        # The command name, field 2, may hold spaces; the fields after it are counted from its ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class Mesh:
    """Starts the run's processes and stops every one of them at the end."""

    def __init__(self, log_dir: Path) -> None:
        """Nothing runs yet; logs go to ``log_dir``."""
        self.log_dir = log_dir
        self.children: list[Child] = []
        self.redis: RedisProcess | None = None

    def start_redis(self) -> RedisProcess:
        """A redis-server of the run, on a free loopback port."""
        server = RedisProcess()
        self.redis = server
        server.start()
        return server

    def start(
        self, name: str, argv: Iterable[str], env: Mapping[str, str] | None = None, port: int | None = None
    ) -> Child:
        """Start ``python <argv>`` as ``name`` and wait until it answers health checks.

        Args:
            name: Name of the process in logs and errors.
            argv: Arguments of this interpreter, such as ``["-m", "services.cnaf"]``.
            env: Environment added to this process's own; GRPC_HOST and GRPC_PORT are set here.
            port: Loopback port to serve on; a free one when None.

        Raises:
            RuntimeError: when the process exits or is not SERVING within 30 s.
        """
        port = port or free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - our own modules, run by this interpreter
                [sys.executable, *argv],
                cwd=_ROOT,
                env={**os.environ, **(env or {}), "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, port, process)
        self.children.append(child)
        _wait_until_serving(child)
        return child

    def stop(self, child: Child) -> None:
        """Stop one child: SIGTERM, then SIGKILL if it has not exited in time."""
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
        if child in self.children:
            self.children.remove(child)

    def close(self) -> None:
        """Stop every child, the last started first, then Redis."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(list(self.children)):
            self.stop(child)
        if self.redis is not None:
            self.redis.close()
            self.redis = None


def _wait_until_serving(child: Child) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    with grpc.insecure_channel(child.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with status {child.process.returncode}")
            try:
                if (
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{child.name} did not become SERVING within {_START_TIMEOUT_SECONDS:.0f} s"
                )
            time.sleep(0.05)


# -- tokens ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issuer:
    """Tokens issued by the admin CLI (``python -m gateway.admin``), as an operator would.

    Going through the CLI rather than signing here keeps the benchmark honest: the
    gateway verifies exactly the tokens it meets in production, ES256 and registered.
    """

    keys_dir: Path
    kid: str
    redis_url: str

    @classmethod
    def create(cls, keys_dir: Path, redis_url: str, kid: str = "bench-1") -> Issuer:
        """A new signing key pair in ``keys_dir``; tokens get registered in ``redis_url``."""
        _admin("keygen", "--keys-dir", str(keys_dir), "--kid", kid)
        return cls(keys_dir, kid, redis_url)

    def issue(self, scopes: Iterable[str], siret: str, rate_limit: int) -> str:
        """A token with ``scopes`` and its own rate limit, for one day."""
        scope_arguments = [argument for scope in sorted(scopes) for argument in ("--scope", scope)]
        return _admin(
            "issue",
            "--keys-dir",
            str(self.keys_dir),
            "--kid",
            self.kid,
            "--label",
            "benchmark",
            "--siret",
            siret,
            "--days",
            "1",
            "--rate-limit",
            str(rate_limit),
            "--redis-url",
            self.redis_url,
            *scope_arguments,
        )


def _admin(*arguments: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own module, run by this interpreter
        [sys.executable, "-m", "gateway.admin", *arguments],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gateway.admin {arguments[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


# -- Redis ----------------------------------------------------------------------------------------


def command_counts(client: redis.Redis) -> dict[str, int]:
    """Calls of each command since Redis started, from INFO commandstats (script commands included)."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


def command_deltas(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Commands run between two `command_counts`, without the INFO calls that took them."""
    deltas = {name: count - before.get(name, 0) for name, count in after.items() if name != "info"}
    return {name: count for name, count in deltas.items() if count}


SCRIPT_CLIENT = "?:0"
"""The client address Redis logs for commands a Lua script runs (they are not round trips)."""


def client_commands_from_slowlog(entries: Iterable[Mapping[str, object]], own_name: str) -> dict[str, int]:
    """Commands clients sent over the network, from `redis.Redis.slowlog_get` entries.

    Commands a script runs are logged with the address `SCRIPT_CLIENT` and are
    skipped, and so are those of the connection named ``own_name`` (the benchmark's own).
    """
    counts: dict[str, int] = {}
    for entry in entries:
        address, name, command = entry.get("client_address"), entry.get("client_name"), entry.get("command")
        if isinstance(address, bytes):
            address = address.decode()
        if isinstance(name, bytes):
            name = name.decode()
        if isinstance(command, bytes):
            command = command.decode(errors="replace")
        if address == SCRIPT_CLIENT or name == own_name or not isinstance(command, str) or not command:
            continue
        verb = command.split(" ", 1)[0].lower()
        counts[verb] = counts.get(verb, 0) + 1
    return counts
