"""The gateway's own floors: no module or package of ``gateway/`` imports one on its floor or above.

A newcomer climbs them from the bottom: the parts that know nothing of a call, the registry
of habilitations and tokens (its records and the gateways' snapshot of it), the settings and
the token, the stores and upstream clients (FranceConnect with its habilitations), the call
path, its transport adapters (gRPC and REST, peers), the composition root and the admin
tools, the processes (the gateway's workers, the admin API). A package (``journal/``,
``grpc/``, ``rest/``, ``france_connect/``, ``redis/``, ``registry/``, ``admin/``,
``admin_api/``) is one unit: its modules may import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATEWAY = REPO / "gateway"

FLOORS: tuple[frozenset[str], ...] = tuple(
    frozenset(floor.split())
    for floor in (
        "gateway bounds metrics masking migrations recipient availability ratios redis usage tokens "
        "client_address call_lock rate_script revocations",
        "registry",
        "settings",
        "auth",
        "ratelimit france_connect channels journal pings forwarding delegations response_cache",
        "call_path availability_history",
        "serving",
        "grpc rest",
        "app admin",
        "workers admin_api",
        "__main__",
    )
)
"""The units of ``gateway/``, bottom floor first (``gateway``: its ``__init__``)."""
FLOOR_OF = {unit: height for height, floor in enumerate(FLOORS) for unit in floor}


def unit_of(module: str) -> str:
    """The unit of a ``gateway`` module: its top-level module or package under ``gateway``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gateway"


def imports_of(path: Path) -> set[str]:
    """The ``gateway`` modules a file imports (``from gateway.x import y`` counts ``gateway.x.y`` too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "gateway")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gateway":
            found.add(node.module)
            if node.module == "gateway":
                found.update(f"gateway.{alias.name}" for alias in node.names)
    return found


def units() -> dict[str, set[str]]:
    """Every unit of ``gateway/`` and the units it imports."""
    graph: dict[str, set[str]] = {}
    for path in GATEWAY.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        unit = unit_of(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        graph.setdefault(unit, set()).update(unit_of(module) for module in imports_of(path))
    for unit, imported in graph.items():
        imported.discard(unit)
    return graph


def test_every_unit_of_the_gateway_stands_on_a_floor() -> None:
    """A new module or package must be given its floor (the scan would otherwise let it climb)."""
    assert set(units()) == set(FLOOR_OF)


@pytest.mark.parametrize("unit", sorted(FLOOR_OF))
def test_a_unit_imports_only_the_floors_below_it(unit: str) -> None:
    """An import on the same floor or above (adapters stacked as a ladder, a cycle) fails here."""
    climbing = sorted(
        imported
        for imported in units().get(unit, set())
        if FLOOR_OF.get(imported, len(FLOORS)) >= FLOOR_OF[unit]
    )
    assert climbing == []
