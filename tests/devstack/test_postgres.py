"""The bundled PostgreSQL: the machine's binaries or pgserver's, stopped and started on the same data."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

import devstack.postgres
from devstack.postgres import PostgresProcess, reachable_by_server, server_binaries


def test_the_machines_binaries_are_preferred_when_installed() -> None:
    found = server_binaries()
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    assert (found / "postgres").is_file()
    if debian:
        assert found == debian[-1].parent


def test_a_server_keeps_its_data_across_a_stop_and_a_start() -> None:
    # In the system's temporary directory: pytest's tmp_path is private to root, whom PostgreSQL refuses.
    tmp_path = Path(tempfile.mkdtemp(prefix="test-postgres-"))
    tmp_path.chmod(0o755)
    assert reachable_by_server(tmp_path / "pg")
    server = PostgresProcess(data_dir=tmp_path / "pg", settings={"fsync": "off"})
    try:
        server.start()
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        server.stop()
        assert not server.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url, connect_timeout=2)
        server.start()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]
    finally:
        server.close()
    assert (tmp_path / "pg" / "data" / "PG_VERSION").exists()  # a given data directory is kept
    shutil.rmtree(tmp_path)


def test_without_the_machines_binaries_pgservers_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devstack.postgres, "_DEBIAN_ROOT", Path("/nonexistent"))
    assert "pgserver" in str(server_binaries())
    server = PostgresProcess(settings={"fsync": "off"})
    try:
        server.start()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.close()
