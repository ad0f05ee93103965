"""Fixtures shared by the whole suite: a real Redis and real gRPC servers on loopback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import grpc
import pytest

from devstack.postgres import PostgresProcess
from devstack.redis import RedisProcess
from runtime.logs import configure_logging
from runtime.server import GrpcServer
from runtime.settings import LogFormat

REPO = Path(__file__).resolve().parent.parent

LOG_DIR = Path(
    os.environ.get("TEST_LOG_DIR")
    or Path(tempfile.gettempdir())
    / f"apiparticulier-tests-{os.environ.get('PYTEST_XDIST_TESTRUNUID', os.getpid())}"
)
"""The run's logs, one file per test process: `make test` names it for its parallel run and the audit."""

LOG_FILE = LOG_DIR / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}.log"
"""Every event this process's in-process servers log, audited by tests/test_personal_data.py."""


AUDIT_MARK = "runs_last"
"""Marks the audits of what the whole run left behind (tests/test_personal_data.py)."""


def pytest_configure(config: pytest.Config) -> None:
    """Declare the mark of the run's audits."""
    config.addinivalue_line("markers", f"{AUDIT_MARK}: an audit of the whole run, run after every other test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the audits last whatever their file's name, so they read what every other test logged.

    A parallel worker leaves them out: it cannot know when the other workers are done, so
    `make test` runs them in a process of their own after the parallel run.
    """
    audits = [item for item in items if item.get_closest_marker(AUDIT_MARK) is not None]
    if "PYTEST_XDIST_WORKER" in os.environ and audits:
        config.hook.pytest_deselected(items=audits)
        items[:] = [item for item in items if item not in audits]
        return
    items.sort(key=lambda item: item.get_closest_marker(AUDIT_MARK) is not None)


@pytest.fixture(scope="session", autouse=True)
def log_file() -> Iterator[Path]:
    """Send the run's structlog events, as JSON lines, to one file kept for the audit."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with LOG_FILE.open("w", encoding="utf-8") as stream:
        configure_logging("debug", LogFormat.JSON, stream, cache_loggers=False)
        yield LOG_FILE


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    """A real redis-server for the session, on a free loopback port."""
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresProcess]:
    """A real PostgreSQL for the session, on a free loopback port (fsync off: the tests crash no machine)."""
    server = PostgresProcess(settings={"fsync": "off"})
    server.start()
    yield server
    server.close()


@asynccontextmanager
async def running(server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    """Start a server (bound to port 0 by its settings) and yield a channel to it."""
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield channel
    finally:
        await channel.close(grace=None)
        await server.stop(0)


def run_python(*arguments: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``python <arguments>`` from the repository with ``env``, its output captured, within 30 s."""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@contextmanager
def _environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``changes`` (None: unset) for the block, as it was afterwards."""
    before = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_main(
    main: Callable[[Sequence[str]], int], *arguments: str, env: Mapping[str, str | None]
) -> subprocess.CompletedProcess[str]:
    """A command line's ``main(arguments)`` in this process, with ``env``'s variables (None: unset).

    Shaped as the ``subprocess.run`` of ``python -m <its package> <arguments>``: ``returncode`` is
    what the process would exit with (``SystemExit``'s code included: argparse's 2, a message's
    1), ``stdout`` and ``stderr`` what it would have printed. A process costs seconds of
    interpreter start and imports a command on a loaded machine, and behaves the same: a CLI's
    tests run most commands this way and keep a few processes for its entry point.
    """
    stdout, stderr = io.StringIO(), io.StringIO()
    with _environment(env), redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            code = main(list(arguments))
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:  # as the interpreter does: the message on standard error, exit status 1
                print(exit_.code, file=stderr)
                code = 1
    return subprocess.CompletedProcess(list(arguments), code, stdout.getvalue(), stderr.getvalue())
