"""`make run`: start Redis, PostgreSQL, the provider services, the gateway, the admin API and the console.

Each process runs as a child with its logs in .run/logs/; the supervisor waits
until each answers health, prints what runs where and how to call it, and on
Ctrl-C (or SIGTERM) stops every child gracefully, then Redis and PostgreSQL. The
journal's PostgreSQL, which also holds the registry the admin API writes and the gateway
reads (its demo habilitation, `devstack.demo`), keeps its data in .run/postgres/ across runs
(with the journal's HMAC and signing keys in .run/), unless ``JOURNAL_DATABASE_URL`` names another.

Every process takes its default port when it is free and another free one when it is not,
all chosen before anything starts (`plan_ports`), so that two clones run side by side; the
banner prints the ports taken. ``DEVSTACK_RUN_DIR`` moves .run/ elsewhere (the tests' stacks);
``DEVSTACK_ANY_PORTS=1`` takes a free port for every process, no default (the tests' stacks, which
start beside each other and must not plan the same defaults at once).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
from cryptography.fernet import Fernet

from contract.routes import contract_scopes
from devstack import france_connect, holders
from devstack.demo import DEMO_LABEL, demo_token
from devstack.postgres import reachable_by_server
from devstack.processes import Child, ProcessGroup, wait_until_http
from devstack.redis import free_port
from devstack.smtp import SmtpSink
from gateway.admin import keys
from gateway.admin.habilitations import ADDRESS_VARIABLE, TOKEN_VARIABLE
from gateway.admin_api.service import secret_digest
from gateway.france_connect.sandbox import SANDBOX_CLIENT_ID
from gateway.journal.signing import generate as generate_journal_key
from runtime import providers as registry

_ROOT = Path(__file__).resolve().parent.parent
_RUN_DIR = Path(os.environ.get("DEVSTACK_RUN_DIR") or _ROOT / ".run").resolve()
_KEYS_DIR = _RUN_DIR / "keys"
REDIS_DATA_DIR = _RUN_DIR / "redis"
"""Where the Redis of `make run` keeps its append-only file across runs."""
_ANY_PORTS = os.environ.get("DEVSTACK_ANY_PORTS", "") == "1"
_DEMO_KID = "dev"
_DEMO_RECIPIENT = "13002526500013"


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


PROVIDERS = tuple(
    Process(provider.name, provider.package, provider.grpc_port, provider.metrics_port)
    for provider in registry.PROVIDERS
)
"""Every provider service of the registry, on its default ports."""
GATEWAY = Process("gateway", "gateway", 50051, 9451)
"""The gateway on its default ports."""
REST_PORT = 8080
"""The gateway's REST v3/v4 front, by default."""
ADMIN = Process("admin-api", "gateway.admin_api", 50090, 9490)
"""The admin API (the registry's only writer) on its default ports, apart from the gateway's."""
ADMIN_REST_PORT = 8090
"""The admin API's REST front for a console, by default."""
SMTP_SINK_PORT = 2525
"""The SMTP sink that receives the admin API's expiry notices, by default."""
CONSOLE_PORT = 8070
"""The web console (console/), by default."""
FRANCE_CONNECT_PORT = 8071
"""The sandbox's FranceConnect (`devstack.france_connect`), by default."""


@dataclass(frozen=True)
class PortPlan:
    """The ports of one `make run`, chosen before any process starts."""

    providers: tuple[Process, ...]
    gateway: Process
    rest_port: int
    admin: Process
    admin_rest_port: int
    smtp_port: int
    console_port: int
    france_connect_port: int

    @property
    def rest_url(self) -> str:
        """The REST front's base URL."""
        return f"http://127.0.0.1:{self.rest_port}"

    def provider_addresses(self) -> dict[str, str]:
        """The gateway's ``<PROVIDER>_ADDRESS`` settings for these providers."""
        settings = {provider.name: provider.address_setting.upper() for provider in registry.PROVIDERS}
        return {settings[process.name]: process.address for process in self.providers}


def plan_ports(is_free: Callable[[int], bool] | None = None) -> PortPlan:
    """Each process's default ports where they are free, else free ones; no port given twice.

    Args:
        is_free: Whether a loopback port can be bound now (the real check by default).
    """
    check = is_free or _port_free
    taken: set[int] = set()

    def take(default: int) -> int:
        port = default
        while port in taken or not check(port) or (_ANY_PORTS and port == default):
            port = free_port()
        taken.add(port)
        return port

    def placed(process: Process) -> Process:
        return replace(process, port=take(process.port), metrics_port=take(process.metrics_port))

    providers = tuple(placed(process) for process in PROVIDERS)
    return PortPlan(
        providers,
        placed(GATEWAY),
        take(REST_PORT),
        placed(ADMIN),
        take(ADMIN_REST_PORT),
        take(SMTP_SINK_PORT),
        take(CONSOLE_PORT),
        take(FRANCE_CONNECT_PORT),
    )


_LEFEBVRE = "--nom LEFEBVRE --prenom ALEXIS --sexe F --naissance 1982-12-27 --pays 99100 --commune 08480"
CLIENT_EXAMPLES = (
    f"call cnaf.quotient_familial {_LEFEBVRE}",
    f"lookup cnaf.quotient_familial c2s.complementaire_sante_solidaire {_LEFEBVRE}",
    "introspect",
    "usage",
    "pings",
)
"""Arguments of the client commands `make run` prints (tests run each against a gateway)."""


_LEFEBVRE_QUERY = (
    "nomNaissance=LEFEBVRE&prenoms[]=ALEXIS&sexeEtatCivil=F&anneeDateNaissance=1982&moisDateNaissance=12"
    "&jourDateNaissance=27&codeCogInseePaysNaissance=99100&codeCogInseeCommuneNaissance=08480"
)


def curl_examples(base_url: str = f"http://127.0.0.1:{REST_PORT}") -> list[str]:
    """The ``curl`` calls `make run` prints: LEFEBVRE's quotient familial by identity, then by FranceConnect.

    ``-g`` keeps curl from reading ``prenoms[]`` as a glob; ``-i`` shows the headers
    (``RateLimit-*``, ``X-Request-ID``).
    """
    qf = f"{base_url}/v3/dss/quotient_familial"
    return [
        f'curl -gi -H "Authorization: Bearer $TOKEN" '
        f"'{qf}/identite?recipient={_DEMO_RECIPIENT}&{_LEFEBVRE_QUERY}'",
        f"curl -gi -H 'Authorization: Bearer fc-lefebvre' '{qf}/france_connect?recipient={_DEMO_RECIPIENT}'",
    ]


def client_setup(address: str = GATEWAY.address, recipient: str = _DEMO_RECIPIENT) -> str:
    """The line that gives the client its gateway, the demo token and recipient (after ``export TOKEN=``)."""
    return (
        f'export API_PARTICULIER_ADDRESS={address} API_PARTICULIER_TOKEN="$TOKEN" '
        f"API_PARTICULIER_RECIPIENT={recipient}"
    )


def client_examples(python: str = ".venv/bin/python") -> list[str]:
    """The example command lines `make run` prints, as printed."""
    return [f"{python} -m client {arguments}" for arguments in CLIENT_EXAMPLES]


def _journal_key() -> str:
    """The local journal HMAC key, kept across runs so digests of one person stay comparable."""
    path = _RUN_DIR / "journal-hmac-key"
    if not path.exists():
        _RUN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _response_cache_keys() -> str:
    """``RESPONSE_CACHE_KEYS`` of the local gateway: one key, kept across runs as the cache is in Redis."""
    path = _RUN_DIR / "response-cache-key"
    if not path.exists():
        _RUN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))
        path.chmod(0o600)
    return f"dev:{path.read_text().strip()}"


# -- the journal (issue 15) ------------------------------------------------------------------------


def shown(path: Path) -> str:
    """``path`` as the banner prints it: relative to the repository when inside it."""
    return str(path.relative_to(_ROOT)) if path.is_relative_to(_ROOT) else str(path)


_JOURNAL_KEYS_DIR = _RUN_DIR / "journal-keys"
_JOURNAL_KEY = "journal-signing"
_PUBLIC_KEY = shown(_JOURNAL_KEYS_DIR / f"{_JOURNAL_KEY}.public.pem")
JOURNAL_EXAMPLES = (
    "-m client accesses --fc-token fc-lefebvre --json",
    f"-m gateway.admin journal verify --public-key {_PUBLIC_KEY}",
    # Every first name: the search also finds the calls that gave only the first.
    f"-m gateway.admin journal search {_LEFEBVRE} --prenom GÉRÔME",
)
"""Arguments of the journal commands `make run` prints, after the JOURNAL_* exports."""


def _journal_signing_key() -> Path:
    """The local journal signing key, made once."""
    private = _JOURNAL_KEYS_DIR / f"{_JOURNAL_KEY}.private.pem"
    if not private.exists():
        generate_journal_key(_JOURNAL_KEYS_DIR, _JOURNAL_KEY)
    return private


def start_journal_database(group: ProcessGroup) -> str:
    """The journal's PostgreSQL: ``JOURNAL_DATABASE_URL``, or a local server kept in .run/postgres/."""
    if url := os.environ.get("JOURNAL_DATABASE_URL", ""):
        print("postgres         (from JOURNAL_DATABASE_URL)")
        return url
    data_dir = _RUN_DIR / "postgres"
    if not reachable_by_server(data_dir):
        # As root in a private directory, the server's user cannot reach .run/: a kept cluster elsewhere.
        _RUN_DIR.mkdir(parents=True, exist_ok=True)
        kept = f"apiparticulier-journal-{os.getuid()}-{_RUN_DIR.stat().st_ino}"
        data_dir = Path(tempfile.gettempdir()) / kept
    url = group.start_postgres(port=5432 if _default_port_free(5432) else 0, data_dir=data_dir).url
    print(f"postgres         {url}")
    return url


def journal_env(database_url: str) -> dict[str, str]:
    """The gateway's journal settings for the local stack."""
    return {
        "JOURNAL_HMAC_KEY": _journal_key(),
        "JOURNAL_DATABASE_URL": database_url,
        "JOURNAL_SIGNING_KEY_FILE": str(_journal_signing_key()),
    }


# -- the registry's admin API (issue 21) -----------------------------------------------------------


def _admin_secret() -> str:
    """The local admin operator's secret, kept across runs (the operators file holds its SHA-256)."""
    path = _RUN_DIR / "admin-secret"
    if not path.exists():
        _RUN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


# -- the web console (issue 24) ---------------------------------------------------------------------


def _console_session_key() -> str:
    """The console's own session key, kept across runs so that sessions outlive a restart."""
    path = _RUN_DIR / "console-session-key"
    if not path.exists():
        _RUN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()


def console_env(plan: PortPlan) -> dict[str, str]:
    """The console's settings for the local stack: the mesh's URLs, the operators file, plain HTTP."""
    return {
        "CONSOLE_HOST": "127.0.0.1",
        "CONSOLE_PORT": str(plan.console_port),
        "PUBLIC_API_URL": plan.rest_url,
        "ADMIN_API_URL": f"http://127.0.0.1:{plan.admin_rest_port}",
        "ADMIN_OPERATORS_FILE": str(_RUN_DIR / "admin-operators.json"),
        "CONSOLE_SESSION_KEY": _console_session_key(),
        "CONSOLE_ADMIN_SECRET": holders.console_secret(_RUN_DIR),
        "SANDBOX_AGENTS": "true",
        # Loopback over plain HTTP: a Secure cookie would never come back.
        "SECURE_COOKIES": "false",
        **france_connect.client_env(_RUN_DIR, plan.france_connect_port, plan.console_port),
    }


MAIL_DIR = _RUN_DIR / "mail"
"""Where `make run`'s SMTP sink writes the expiry notices, one .eml file each."""


def admin_env(database_url: str, redis_url: str, rest_port: int, smtp_port: int) -> dict[str, str]:
    """The admin API's settings for the local stack: operator ``dev`` (admin), the demo signing key."""
    operators = _RUN_DIR / "admin-operators.json"
    operators.write_text(
        json.dumps(
            {
                "operators": [
                    {"name": "dev", "role": "admin", "secret_sha256": secret_digest(_admin_secret())},
                    holders.console_operator(_RUN_DIR),
                ]
            }
        )
    )
    return {
        "REGISTRY_DATABASE_URL": database_url,
        "ADMIN_OPERATORS_FILE": str(operators),
        "KEYS_DIR": str(_KEYS_DIR),
        "TOKEN_SIGNING_KID": _DEMO_KID,
        "REDIS_URL": redis_url,
        "ADMIN_REST_PORT": str(rest_port),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        # A restarted stack sends what fell due meanwhile at once; then every ten minutes.
        "NOTICE_INTERVAL_SECONDS": "600",
    }


def admin_setup(address: str) -> str:
    """The one line that gives the admin CLI its admin API and operator secret."""
    return f"export {ADDRESS_VARIABLE}={address} {TOKEN_VARIABLE}={_admin_secret()}"


def signing_key() -> None:
    """The key pair the admin API signs the local tokens with and the gateway verifies them by (made once)."""
    if not (_KEYS_DIR / f"{_DEMO_KID}.private.pem").exists():
        keys.generate(_KEYS_DIR, _DEMO_KID)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # As redis-server binds: a port whose last connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _spawn(group: ProcessGroup, process: Process, env: dict[str, str] | None = None) -> Child:
    return group.spawn(
        process.name,
        ["-m", process.module],
        {**(env or {}), "METRICS_PORT": str(process.metrics_port)},
        port=process.port,
    )


def _print_process(process: Process) -> None:
    print(f"{process.name:<16} {process.address}  metrics :{process.metrics_port}")


def _default_port_free(port: int) -> bool:
    """Whether a server may take its default ``port``: free, and defaults allowed (DEVSTACK_ANY_PORTS)."""
    return not _ANY_PORTS and _port_free(port)


def _start(group: ProcessGroup, process: Process, env: dict[str, str] | None = None) -> None:
    group.wait(_spawn(group, process, env))
    _print_process(process)


def start_admin(group: ProcessGroup, plan: PortPlan, database_url: str, redis_url: str) -> str:
    """The SMTP sink, the admin API, then the demo habilitation's token made through it (its JWT)."""
    sink = SmtpSink(MAIL_DIR, plan.smtp_port)
    sink.start()
    print(f"{'smtp sink':<16} 127.0.0.1:{sink.port}  messages in {shown(MAIL_DIR)}/")
    _start(group, plan.admin, admin_env(database_url, redis_url, plan.admin_rest_port, sink.port))
    print(f"{'admin API REST':<16} http://127.0.0.1:{plan.admin_rest_port}/admin/v1/habilitations")
    return demo_token(
        plan.admin.address, _admin_secret(), _DEMO_RECIPIENT, contract_scopes(), SANDBOX_CLIENT_ID
    )


def main() -> None:
    """Run the local mesh until Ctrl-C."""
    group = ProcessGroup(_RUN_DIR / "logs")
    stop_requested = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    exit_status = 0
    plan = plan_ports()
    try:
        redis_url = _redis(group)
        journal = journal_env(start_journal_database(group))
        database_url = journal["JOURNAL_DATABASE_URL"]
        # The providers start side by side (each is seconds of imports); the admin API then the
        # gateway follow, one after the other, as both migrate the database, and the demo token is
        # made through the admin API between them, so that the gateway's first snapshot holds it.
        providers = [_spawn(group, process) for process in plan.providers]
        signing_key()
        for process, child in zip(plan.providers, providers, strict=True):
            group.wait(child)
            _print_process(process)
        token = start_admin(group, plan, database_url, redis_url)
        holders.seed(f"http://127.0.0.1:{plan.admin_rest_port}", _admin_secret())
        gateway = _spawn(
            group,
            plan.gateway,
            {
                "REDIS_URL": redis_url,
                "KEYS_DIR": str(_KEYS_DIR),
                # Loopback only, as every other process of the local mesh.
                "REST_HOST": "127.0.0.1",
                "REST_PORT": str(plan.rest_port),
                **plan.provider_addresses(),
                **journal,
                # The registry the admin API writes: its revocations and changes hold on these calls.
                "REGISTRY_DATABASE_URL": database_url,
                "RESPONSE_CACHE_KEYS": _response_cache_keys(),
            },
        )
        console = group.spawn("console", ["-m", "console"], console_env(plan), plan.console_port)
        sign_in = france_connect.spawn(group, _RUN_DIR, plan.france_connect_port, plan.console_port)
        group.wait(gateway)
        _print_process(plan.gateway)
        print(f"{'gateway REST':<16} {plan.rest_url}  (spec: /openapi.yaml)")
        group.wait(console, wait_until_http("/healthz"))
        print(f"{'console':<16} http://127.0.0.1:{plan.console_port}/")
        france_connect.wait(group, sign_in)
        _print_banner(plan, token, journal)
        while not stop_requested:
            for child in group.children:
                if child.process.poll() is not None:
                    print(
                        f"{child.name} exited with status {child.process.returncode}; stopping",
                        file=sys.stderr,
                    )
                    stop_requested = True
            time.sleep(0.2)
    except RuntimeError as error:
        # A process that could not start (a bad setting, a port taken since the plan): say which and why.
        print(f"make run: {error}", file=sys.stderr)
        exit_status = 1
    except grpc.RpcError as error:
        print(f"make run: the admin API refused the demo habilitation: {error.details()}", file=sys.stderr)
        exit_status = 1
    finally:
        print("\nstopping…")
        group.close()
        print("stopped")
    sys.exit(exit_status)


def _redis(group: ProcessGroup) -> str:
    """The URL of ``REDIS_URL``'s Redis, else of one started here (6379 when free)."""
    if redis_url := os.environ.get("REDIS_URL", ""):
        print(f"redis            {redis_url} (from REDIS_URL)")
        return redis_url
    # Persistent: a revoked token stays revoked, and tokens stay listed, across runs.
    redis_url = group.start_redis(port=6379 if _default_port_free(6379) else 0, data_dir=REDIS_DATA_DIR).url
    print(f"redis            {redis_url}")
    return redis_url


def _print_banner(plan: PortPlan, token: str, journal: dict[str, str]) -> None:
    """How to call what runs: the addresses are the ones taken, the commands work as printed."""
    print(f"\nlogs in {shown(_RUN_DIR)}/logs/; check a process with:")
    print(f"  .venv/bin/python -m devstack.probe {plan.gateway.address}")
    print(f"\ndemo token (habilitation {DEMO_LABEL!r}, every scope; one day), recipient {_DEMO_RECIPIENT}:")
    print(f"  export TOKEN={token}")
    print("\nmore tokens, through the admin API (README, Tokens), operator dev:")
    print(f"  {admin_setup(plan.admin.address)}")
    print("  .venv/bin/python -m gateway.admin habilitation list")
    print("\nthe command-line client (python -m client --help), with that token:")
    print(f"  {client_setup(plan.gateway.address)}")
    for line in client_examples():
        print(f"  {line}")
    print("\nthe REST v3/v4 front, as the real API (the FranceConnect token alone on /france_connect):")
    for line in curl_examples(plan.rest_url):
        print(f"  {line}")
    print("\nmaintenance windows (README, Tokens), through the admin API with the line above:")
    print("  .venv/bin/python -m gateway.admin maintenance --list")
    print("\nthe journal: a citizen's own access history (no API token), then the auditor's commands:")
    print(
        f"  export JOURNAL_DATABASE_URL={journal['JOURNAL_DATABASE_URL']} "
        f"JOURNAL_HMAC_KEY=$(cat {shown(_RUN_DIR / 'journal-hmac-key')})"
    )
    for arguments in JOURNAL_EXAMPLES:
        print(f"  .venv/bin/python {arguments}")
    print(f"\nthe web console: http://127.0.0.1:{plan.console_port}/ (operator space: the secret above;")
    print(f"  holders' space: http://127.0.0.1:{plan.console_port}/agent/connexion, as a sandbox agent)")
    print("\nCtrl-C stops everything.", flush=True)


if __name__ == "__main__":
    main()
