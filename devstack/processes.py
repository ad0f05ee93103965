"""Server processes of the local mesh: started as children, waited for, stopped in order.

`make run`, `make bench` and the tests that need real separate processes (several
gateway replicas) all start their servers through a `ProcessGroup`: every server is
a child in its own session (so Ctrl-C reaches only the parent, which stops the
children in order) with its output in a log file, and `ProcessGroup.close` stops
everything it started: SIGTERM, a bounded wait, then SIGKILL. `Issuer` makes keys
and tokens through the admin CLI, as an operator would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.postgres import PostgresProcess
from devstack.redis import RedisProcess, free_port

_ROOT = Path(__file__).resolve().parent.parent
# A bound, not a wait: the loop returns as soon as the child serves (a busy machine takes long).
_START_TIMEOUT_SECONDS = 90.0
_STOP_TIMEOUT_SECONDS = 10.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Child:
    """One server process of the group."""

    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        """Where it listens."""
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process and those it started have used so far.

        Read from /proc/<pid>/stat (utime and stime, fields 14 and 15), the kernel's
        rusage of each whole thread group, so gRPC core's threads count too; a gateway's
        workers (`gateway.workers`) are counted with their supervisor.
        """
        return sum(_cpu_seconds(pid) for pid in _process_tree(self.process.pid))


def _process_tree(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    tree, index = [pid], 0
    while index < len(tree):
        children = Path(f"/proc/{tree[index]}/task/{tree[index]}/children")
        if children.exists():
            tree.extend(int(child) for child in children.read_text().split())
        index += 1
    return tree


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # ended between the listing and now
        return 0.0
    # The command name, field 2, may hold spaces; the fields after it are counted from its ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class ProcessGroup:
    """Starts server processes and stops every one of them at the end."""

    def __init__(self, log_dir: Path) -> None:
        """Nothing runs yet; logs go to ``log_dir``."""
        self.log_dir = log_dir
        self.children: list[Child] = []
        self.redis: RedisProcess | None = None
        self.postgres: PostgresProcess | None = None

    def start_redis(self, port: int = 0, data_dir: Path | None = None) -> RedisProcess:
        """A redis-server of the group, on ``port`` (0: a free loopback port), persistent in ``data_dir``."""
        server = RedisProcess(port, data_dir=data_dir)
        self.redis = server
        server.start()
        return server

    def start_postgres(
        self, port: int = 0, data_dir: Path | None = None, niceness: int = 0
    ) -> PostgresProcess:
        """A PostgreSQL of the group, on ``port`` (0: a free loopback port), its cluster in ``data_dir``."""
        server = PostgresProcess(port, data_dir, niceness=niceness)
        self.postgres = server
        server.start()
        return server

    def start(
        self,
        name: str,
        argv: Iterable[str],
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        ready: Callable[[Child], None] | None = None,
    ) -> Child:
        """Start ``python <argv>`` as ``name`` and wait until it answers health checks.

        Args:
            name: Name of the process in logs and errors.
            argv: Arguments of this interpreter, such as ``["-m", "services.cnaf"]``.
            env: Environment added to this process's own; GRPC_HOST and GRPC_PORT are set here.
            port: Loopback port to serve on; a free one when None.
            ready: Blocks until the child serves, raising RuntimeError if it does not:
                `wait_until_serving` (gRPC health) by default, `wait_until_http` for an HTTP server.

        Raises:
            RuntimeError: when the process exits or is not SERVING within 30 s.
        """
        child = self.spawn(name, argv, env, port)
        self.wait(child, ready)
        return child

    def spawn(
        self, name: str, argv: Iterable[str], env: Mapping[str, str] | None = None, port: int | None = None
    ) -> Child:
        """Start ``python <argv>`` as ``name`` without waiting (`wait` then): children start side by side."""
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
        return child

    def wait(self, child: Child, ready: Callable[[Child], None] | None = None) -> None:
        """Block until a spawned child serves (``ready``: as for `start`).

        Raises:
            RuntimeError: when the process exits or does not serve in time; the message ends with
                the last line it logged.
        """
        try:
            (ready or wait_until_serving)(child)
        except RuntimeError as error:
            log = self.log_dir / f"{child.name}.log"
            raise RuntimeError(f"{error}; its log says: {_last_line(log)}") from None

    def stop(self, child: Child, *, signalled: bool = False) -> None:
        """Stop one child: SIGTERM (unless ``signalled`` already), then SIGKILL if it has not exited in time.

        A second SIGTERM would cut the child's drain short (its forced shutdown).
        """
        if child.process.poll() is None and not signalled:
            child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
        if child in self.children:
            self.children.remove(child)

    def close(self) -> None:
        """Stop every child, the last started first, then Redis and PostgreSQL."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(list(self.children)):
            self.stop(child, signalled=True)
        if self.redis is not None:
            self.redis.close()
            self.redis = None
        if self.postgres is not None:
            self.postgres.close()
            self.postgres = None


def _last_line(log: Path) -> str:
    """The last line a process logged (a JSON event or a traceback's message), to say why it stopped."""
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(nothing)"


def wait_until_serving(child: Child) -> None:
    """Block until the child answers SERVING on its health service.

    Raises:
        RuntimeError: when it exits first or is not SERVING within 30 s.
    """
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


def wait_until_http(path: str) -> Callable[[Child], None]:
    """A ``ready`` check of `ProcessGroup.start`: ``GET http://<child>/<path>`` answers 200.

    Raises (the check):
        RuntimeError: when the child exits first or does not answer 200 in time.
    """

    def check(child: Child) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        url = f"http://{child.address}{path}"
        while True:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with status {child.process.returncode}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{child.name} did not answer {path} within {_START_TIMEOUT_SECONDS:.0f} s"
                )
            time.sleep(0.05)

    return check


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
        admin("keygen", "--keys-dir", str(keys_dir), "--kid", kid)
        return cls(keys_dir, kid, redis_url)

    def issue(
        self, scopes: Iterable[str], siret: str, rate_limit: int | None = None, label: str = "benchmark"
    ) -> str:
        """A token with ``scopes`` (and its own rate limit, when given), for one day."""
        scope_arguments = [argument for scope in sorted(scopes) for argument in ("--scope", scope)]
        return admin(
            "issue",
            "--keys-dir",
            str(self.keys_dir),
            "--kid",
            self.kid,
            "--label",
            label,
            "--siret",
            siret,
            "--days",
            "1",
            *(("--rate-limit", str(rate_limit)) if rate_limit is not None else ()),
            "--redis-url",
            self.redis_url,
            *scope_arguments,
        )


def admin(*arguments: str) -> str:
    """Run the token administration CLI and return what it printed on standard output.

    Raises:
        RuntimeError: the CLI refused, with its message.
    """
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
