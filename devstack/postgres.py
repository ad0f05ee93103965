"""A real PostgreSQL server on a loopback port, for `make run`, the benchmark and the tests.

The server binaries are the machine's own where Debian's packages put them
(``/usr/lib/postgresql/<version>/bin``, the newest), else those the ``pgserver``
package ships. `PostgresProcess` makes a cluster with ``initdb`` (trust
authentication, loopback only: a local stack, never a deployment) and runs
``postgres`` as a child process that can be stopped and started again on the same
port and data, as the journal's outage tests need.

PostgreSQL refuses to run as root; when this process is root (CI, containers), the
cluster belongs to ``nobody`` and the server runs as that user (through util-linux's
``setpriv``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from devstack.redis import free_port

_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_START_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 10.0
_UNPRIVILEGED_USER = "nobody"
_SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
SUPERUSER = "postgres"
"""The cluster's superuser, the user of its URL."""
DATABASE = "postgres"
"""The database of the URL."""


def server_binaries() -> Path:
    """The directory holding ``initdb`` and ``postgres``: the machine's newest, else pgserver's.

    Raises:
        RuntimeError: neither is installed.
    """
    if _DEBIAN_ROOT.is_dir():
        versions = sorted(
            (entry for entry in _DEBIAN_ROOT.iterdir() if entry.name.isdigit()),
            key=lambda entry: int(entry.name),
        )
        for version in reversed(versions):
            if (version / "bin" / "postgres").is_file() and (version / "bin" / "initdb").is_file():
                return version / "bin"
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        shipped = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (shipped / "postgres").is_file():
            return shipped
    raise RuntimeError("no PostgreSQL server binaries: install Debian's postgresql or the pgserver package")


def _run_as() -> pwd.struct_passwd | None:
    """The user the server runs as when this process is root; None to run as this process's user."""
    return pwd.getpwnam(_UNPRIVILEGED_USER) if os.geteuid() == 0 else None


def reachable_by_server(path: Path) -> bool:
    """Whether the server's user can reach ``path`` (every existing parent searchable by it)."""
    user = _run_as()
    if user is None:
        return True
    for parent in path.resolve().parents:
        status = parent.stat()
        if status.st_uid != user.pw_uid and not status.st_mode & 0o001:
            return False
    return True


class PostgresProcess:
    """One PostgreSQL server child process, its cluster made on first start.

    Args:
        port: The loopback port (0: a free one, chosen now).
        data_dir: Where the cluster lives; a temporary directory, removed by `close`, when None.
        settings: Server settings (``-c name=value``), e.g. ``{"fsync": "off"}`` for tests.
        niceness: CPU niceness of the server (``nice``): 19 stands for a database on a machine of
            its own, taking only the CPU others leave (the benchmark).
    """

    def __init__(
        self,
        port: int = 0,
        data_dir: Path | None = None,
        settings: Mapping[str, str] | None = None,
        *,
        niceness: int = 0,
    ) -> None:
        self.port = port or free_port()
        self._owned = data_dir is None
        self._root = Path(tempfile.mkdtemp(prefix="postgres-")) if data_dir is None else data_dir
        self.data_dir = self._root / "data"
        self._settings = dict(settings or {})
        self._niceness = niceness
        self._binaries = server_binaries()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``postgresql://`` URL of the server's database."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        user = _run_as()
        if user is not None:
            # setpriv rather than Popen(user=...): changing users makes Python fork() instead of
            # vfork(), and a fork() while gRPC threads run (a restart under load) can crash the child.
            argv = [
                _SETPRIV,
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
                "--",
                *argv,
            ]
        with log.open("ab") as out:
            return subprocess.Popen(  # noqa: S603 - PostgreSQL's own binaries, fixed arguments
                argv,
                cwd=self._root,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
                # Out of the terminal's process group: Ctrl-C must reach the supervisor alone,
                # which stops PostgreSQL last, once the gateway has written its journal rows.
                start_new_session=True,
            )

    def _initdb(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if user is not None:
            os.chown(self._root, user.pw_uid, user.pw_gid)
        initdb = self._spawn(
            [
                str(self._binaries / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
            self._root / "initdb.log",
        )
        if initdb.wait(60) != 0:
            raise RuntimeError(f"initdb failed; see {self._root / 'initdb.log'}")

    def start(self) -> None:
        """Make the cluster if there is none, start the server, and wait until it accepts connections.

        Raises:
            RuntimeError: initdb failed, or the server exited or did not answer within 30 s.
        """
        if self.running:
            return
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            **self._settings,
        }
        argv = [str(self._binaries / "postgres"), "-D", str(self.data_dir)]
        if self._niceness:
            argv = [shutil.which("nice") or "/usr/bin/nice", "-n", str(self._niceness), *argv]
        for name, value in options.items():
            argv += ["-c", f"{name}={value}"]
        self._process = self._spawn(argv, self._root / "postgres.log")
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not self._accepts():
            if self._process.poll() is not None:
                log = self._root / "postgres.log"
                raise RuntimeError(f"postgres exited with status {self._process.returncode}; see {log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("postgres did not accept connections within 30 s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server the way ``pg_ctl stop -m fast`` does (SIGINT), SIGKILL after 10 s."""
        if self._process is None:
            return
        if self._process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown: sessions are ended, transactions rolled back.
            self._process.send_signal(2)
            try:
                self._process.wait(_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def freeze(self) -> None:
        """Stop every process of the server with SIGSTOP: a database that no longer answers, sockets open."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        """Resume the processes `freeze` stopped (SIGCONT)."""
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: signal.Signals) -> None:
        if self._process is None:
            raise RuntimeError("postgres is not running")
        # Each backend leads a process group of its own (PostgreSQL calls setsid()): the
        # postmaster's children are found by their parent, in /proc (Linux).
        postmaster = self._process.pid
        children = []
        for status in Path("/proc").glob("[0-9]*/status"):
            with contextlib.suppress(OSError):
                lines = status.read_text().splitlines()
                if f"PPid:\t{postmaster}" in lines:
                    children.append(int(status.parent.name))
        # The postmaster first when stopping (it forks no new backend meanwhile), last when resuming.
        for pid in [postmaster, *children] if signum == signal.SIGSTOP else [*children, postmaster]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def close(self) -> None:
        """Stop the server and, if the cluster is temporary, remove it."""
        self.stop()
        if self._owned:
            shutil.rmtree(self._root, ignore_errors=True)

    def _accepts(self) -> bool:
        # The startup packet of protocol 3.0 for our user: a running server answers with an
        # authentication request ('R'); one still starting answers an error ('E').
        user, database = SUPERUSER.encode(), DATABASE.encode()
        body = (196608).to_bytes(4, "big") + b"user\0" + user + b"\0database\0" + database + b"\0\0"
        packet = (len(body) + 4).to_bytes(4, "big") + body
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(packet)
                return conn.recv(1) == b"R"
        except OSError:
            return False
