"""The error catalogue: every code raised is defined there once, with the HTTP status the v3 API gives it."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

from runtime.error_catalogue import CODES, PROVIDER_CODES, RULE_CODES, ErrorCode, entry_of, rule_entry
from runtime.errors import api_error
from runtime.providers import CNAV, FRANCE_CONNECT

REPO = Path(__file__).resolve().parents[2]
_CODE = re.compile(r"""api_error\(\s*["']([0-9]{5})["']""")
# The code a request rule's violation carries: its last argument (services.common.validation).
_RULE_CODE = re.compile(r"""FieldViolation\([^()]*(?:\([^()]*\)[^()]*)*,\s*["']([0-9]{5})["'],?\s*\)""")

# The HTTP statuses a gRPC status may stand for in the v3 API.
_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: {400, 413, 414, 422, 431},
    grpc.StatusCode.UNIMPLEMENTED: {404, 405},
    grpc.StatusCode.UNAUTHENTICATED: {401},
    grpc.StatusCode.PERMISSION_DENIED: {403},
    grpc.StatusCode.NOT_FOUND: {404},
    grpc.StatusCode.RESOURCE_EXHAUSTED: {429},
    grpc.StatusCode.INTERNAL: {500},
    grpc.StatusCode.UNKNOWN: {502},
    grpc.StatusCode.UNAVAILABLE: {503, 504},
    grpc.StatusCode.ABORTED: {409},
    grpc.StatusCode.DEADLINE_EXCEEDED: {408, 504},
}


def test_every_code_written_in_the_code_is_in_the_catalogue() -> None:
    """A literal code passed to api_error anywhere in the tree names an entry of the catalogue."""
    written = {
        code
        for folder in ("runtime", "gateway", "services", "contract")
        for path in (REPO / folder).rglob("*.py")
        for code in _CODE.findall(path.read_text(encoding="utf-8"))
    }
    assert written, "no literal code found: the scan would prove nothing"
    assert sorted(code for code in written if code not in CODES) == []


def test_every_rule_code_is_a_422_of_the_catalogue() -> None:
    """A code a request rule writes has its texts in the catalogue and is answered 422, as the real API's."""
    written = {
        code
        for path in (REPO / "services").rglob("*.py")
        for code in _RULE_CODE.findall(path.read_text(encoding="utf-8"))
    }
    assert {"00421", "00401", "00400", "00355", "00415", "39400"} <= written, "the scan would prove nothing"
    assert {code: rule_entry(code).http_status for code in written} == dict.fromkeys(written, 422)
    assert all(entry.status is grpc.StatusCode.INVALID_ARGUMENT for entry in RULE_CODES.values())


@pytest.mark.parametrize("entry", [*CODES.values(), *PROVIDER_CODES.values()], ids=lambda e: e.reason)
def test_http_status_agrees_with_the_grpc_status(entry: ErrorCode) -> None:
    assert entry.http_status in _HTTP[entry.status]


def test_provider_codes_take_their_source_prefix_and_full_codes_win() -> None:
    """37003 is the provider template's not found; 51502 is FranceConnect's own entry."""
    not_found = api_error("37003", source=CNAV)
    assert (not_found.status, not_found.title, not_found.provider) == (
        grpc.StatusCode.NOT_FOUND,
        "Entité non trouvée",
        CNAV,
    )
    assert entry_of("51502").reason == "INVALID_FRANCE_CONNECT_TOKEN"
    assert api_error("51001", source=FRANCE_CONNECT).reason == "PROVIDER_UNAVAILABLE"
    with pytest.raises(KeyError):
        entry_of("00999")
    with pytest.raises(KeyError):
        entry_of("37123")


def test_the_mesh_s_own_codes_are_marked() -> None:
    """The codes the real API does not have say so: the mesh's own."""
    assert {code for code, entry in CODES.items() if entry.own} == {
        "00000",
        "00400",
        "00404",
        "00405",
        "00440",
        "00441",
        "00442",
        "00443",
        "00503",
        "00504",
        "00505",
    }
