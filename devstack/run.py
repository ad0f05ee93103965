"""`make run`: start Redis, the provider services and the gateway on this machine.

Each process runs as a child with its logs in .run/logs/; the supervisor waits
until each answers health, prints what runs where and how to call it, and on
Ctrl-C (or SIGTERM) stops every child gracefully, then Redis.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.redis import RedisProcess
from gateway.admin.scopes import known_scopes

_ROOT = Path(__file__).resolve().parent.parent
_RUN_DIR = _ROOT / ".run"
_KEYS_DIR = _RUN_DIR / "keys"
_DEMO_KID = "dev"
_DEMO_RECIPIENT = "13002526500013"
_START_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Process:
    """One process of the local mesh."""

    name: str
    module: str
    port: int
    metrics_port: int

    @property
    def address(self) -> str:
        """Where it listens."""
        return f"127.0.0.1:{self.port}"


PROVIDERS = (
    Process("cnaf", "services.cnaf", 50061, 9461),
    Process("c2s", "services.c2s", 50062, 9462),
    Process("france_travail", "services.france_travail", 50063, 9463),
    Process("mesr", "services.mesr", 50064, 9464),
    Process("cnous", "services.cnous", 50065, 9465),
    Process("men", "services.men", 50066, 9466),
)
GATEWAY = Process("gateway", "gateway", 50051, 9451)

_LEFEBVRE = "--nom LEFEBVRE --prenom ALEXIS --sexe F --naissance 1982-12-27 --pays 99100 --commune 08480"
CLIENT_EXAMPLES = (
    f"call cnaf.quotient_familial {_LEFEBVRE}",
    f"lookup {_LEFEBVRE}",
    "introspect",
    "usage",
    "pings",
)
"""Arguments of the client commands `make run` prints (tests run each against a gateway)."""


def client_setup(recipient: str = _DEMO_RECIPIENT) -> str:
    """The line that gives the client the demo token and recipient, after ``export TOKEN=...``."""
    return f'export API_PARTICULIER_TOKEN="$TOKEN" API_PARTICULIER_RECIPIENT={recipient}'


def client_examples(python: str = ".venv/bin/python") -> list[str]:
    """The example command lines `make run` prints, as printed."""
    return [f"{python} -m client {arguments}" for arguments in CLIENT_EXAMPLES]


def _exists(process: Process) -> bool:
    return (_ROOT / process.module.replace(".", "/") / "__main__.py").is_file()


def _wait_until_serving(process: Process, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    with grpc.insecure_channel(process.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"{process.name} exited with status {child.returncode}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{process.name} did not become SERVING within 30 s")
            time.sleep(0.1)


class Supervisor:
    """Starts the children in order and stops them in reverse."""

    def __init__(self) -> None:
        """Nothing runs yet."""
        self.children: list[tuple[Process, subprocess.Popen[bytes]]] = []
        self.redis: RedisProcess | None = None

    def start_redis(self) -> str:
        """The Redis URL to use: REDIS_URL, or a bundled redis-server started now."""
        if url := os.environ.get("REDIS_URL"):
            return url
        self.redis = RedisProcess(port=6379 if _port_free(6379) else 0)
        self.redis.start()
        return self.redis.url

    def start(self, process: Process, env: dict[str, str]) -> None:
        """Start one child and wait until it is SERVING."""
        logs = _RUN_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{process.name}.log").open("ab") as log:
            child = subprocess.Popen(  # noqa: S603 - our own modules, run by this interpreter
                [sys.executable, "-m", process.module],
                cwd=_ROOT,
                env={
                    **os.environ,
                    **env,
                    "GRPC_HOST": "127.0.0.1",
                    "GRPC_PORT": str(process.port),
                    "METRICS_PORT": str(process.metrics_port),
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the children in order
            )
        self.children.append((process, child))
        _wait_until_serving(process, child)

    def stop(self) -> None:
        """SIGTERM every child (gateway first), wait for each, then stop Redis."""
        for _process, child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for process, child in reversed(self.children):
            try:
                child.wait(_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"{process.name} did not stop in time; killing it", file=sys.stderr)
                child.kill()
        if self.redis is not None:
            self.redis.close()


def _journal_key() -> str:
    """The local journal HMAC key, kept across runs so digests of one person stay comparable."""
    path = _RUN_DIR / "journal-hmac-key"
    if not path.exists():
        _RUN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _admin(*args: str) -> str:
    """Run the token administration CLI and return what it printed on standard output."""
    done = subprocess.run(  # noqa: S603 - our own module, run by this interpreter
        [sys.executable, "-m", "gateway.admin", *args], cwd=_ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"gateway.admin {args[0]} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def demo_token(redis_url: str) -> str:
    """A key pair for the local gateway (made once) and a one-day token holding every scope."""
    if not (_KEYS_DIR / f"{_DEMO_KID}.private.pem").exists():
        _admin("keygen", "--keys-dir", str(_KEYS_DIR), "--kid", _DEMO_KID)
    scopes = [arg for scope in sorted(known_scopes()) for arg in ("--scope", scope)]
    return _admin(
        "issue",
        "--keys-dir",
        str(_KEYS_DIR),
        "--kid",
        _DEMO_KID,
        "--label",
        "make run demo",
        "--siret",
        _DEMO_RECIPIENT,
        "--days",
        "1",
        "--redis-url",
        redis_url,
        *scopes,
    )


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> None:
    """Run the local mesh until Ctrl-C."""
    supervisor = Supervisor()
    stop_requested = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        redis_url = supervisor.start_redis()
        print(f"redis            {redis_url}{'' if supervisor.redis else ' (from REDIS_URL)'}")
        providers = [p for p in PROVIDERS if _exists(p)]
        for process in providers:
            supervisor.start(process, {})
            print(f"{process.name:<16} {process.address}  metrics :{process.metrics_port}")
        token = demo_token(redis_url)
        supervisor.start(
            GATEWAY,
            {"REDIS_URL": redis_url, "KEYS_DIR": str(_KEYS_DIR), "JOURNAL_HMAC_KEY": _journal_key()},
        )
        print(f"{GATEWAY.name:<16} {GATEWAY.address}  metrics :{GATEWAY.metrics_port}")
        print(f"\nlogs in {_RUN_DIR.relative_to(_ROOT)}/logs/; check a process with:")
        print(f"  .venv/bin/python -m devstack.probe {GATEWAY.address}")
        print(f"\ndemo token (every scope, valid one day), recipient {_DEMO_RECIPIENT}:")
        print(f"  export TOKEN={token}")
        print("\nthe command-line client (python -m client --help), with that token:")
        print(f"  {client_setup()}")
        for line in client_examples():
            print(f"  {line}")
        print("\nCtrl-C stops everything.")
        while not stop_requested:
            for process, child in supervisor.children:
                if child.poll() is not None:
                    print(f"{process.name} exited with status {child.returncode}; stopping", file=sys.stderr)
                    stop_requested = True
            time.sleep(0.2)
    finally:
        print("\nstopping…")
        supervisor.stop()
        print("stopped")


if __name__ == "__main__":
    main()
