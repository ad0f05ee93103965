"""What the REST front takes as sent, against a running gateway: HEAD, tokens, digits, /openapi.yaml."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Mapping, Sequence

import pytest
import yaml

from tests.gateway.rest.conftest import LEFEBVRE, Front
from tests.people import RECIPIENT

QF = "/v3/dss/quotient_familial/identite"
QF_FRANCE_CONNECT = "/v3/dss/quotient_familial/france_connect"


async def raw(front: Front, *lines: str) -> tuple[int, dict[str, str], bytes]:
    """Send one request written by hand (an HTTP client would tidy it), read the answer to the close."""
    port = int(front.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write("\r\n".join([*lines, "Connection: close", "", ""]).encode())
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *fields = head.decode().split("\r\n")
    headers = {name.lower(): value for name, value in (field.split(": ", 1) for field in fields)}
    return int(status_line.split()[1]), headers, body


def target(path: str, query: Mapping[str, str | Sequence[str]]) -> str:
    return f"{path}?{urllib.parse.urlencode(query, doseq=True)}"


def code_of(body: bytes) -> str:
    return str(json.loads(body)["errors"][0]["code"])


async def test_head_on_a_data_route_runs_no_call_and_spends_no_quota(front: Front) -> None:
    """Two HEADs, then the token's first GET finds its bucket full."""
    token = front.factory.token(rate_limit=1)
    for _ in range(2):
        status, headers, body = await raw(
            front, f"HEAD {target(QF, LEFEBVRE)} HTTP/1.1", "Host: a", f"Authorization: Bearer {token}"
        )
        assert (status, headers["allow"], body) == (405, "GET", b"")
        assert "ratelimit-remaining" not in headers
    answer = await front.http.get(QF, params=LEFEBVRE, headers=front.bearer(token))
    assert answer.status_code == 200
    assert int(answer.headers["ratelimit-remaining"]) == int(answer.headers["ratelimit-limit"]) - 1


@pytest.mark.parametrize("blank", [" ", "\t", "  "])
async def test_a_blank_after_the_token_is_refused_as_over_grpc(front: Front, blank: str) -> None:
    sent = (f"GET {target(QF, LEFEBVRE)} HTTP/1.1", "Host: a")
    status, _, body = await raw(front, *sent, f"Authorization: Bearer {front.token}{blank}")
    assert (status, code_of(body)) == (401, "00101")
    status, _, _ = await raw(front, *sent, f"Authorization: Bearer {front.token}")
    assert status == 200


@pytest.mark.parametrize("blank", [" ", "\t"])
async def test_a_blank_after_the_x_api_key_is_refused_as_after_a_bearer(front: Front, blank: str) -> None:
    sent = (f"GET {target(QF, LEFEBVRE)} HTTP/1.1", "Host: a")
    status, _, body = await raw(front, *sent, f"X-Api-Key: {front.token}{blank}")
    assert (status, code_of(body)) == (401, "00101")
    status, _, _ = await raw(front, *sent, f"X-Api-Key: {front.token}")
    assert status == 200


async def test_a_blank_after_the_france_connect_token_is_refused(front: Front) -> None:
    sent = (f"GET {target(QF_FRANCE_CONNECT, {'recipient': RECIPIENT})} HTTP/1.1", "Host: a")
    status, _, body = await raw(front, *sent, "Authorization: Bearer fc-lefebvre ")
    assert (status, code_of(body)) == (401, "51501")
    status, _, _ = await raw(front, *sent, "Authorization: Bearer fc-lefebvre")
    assert status == 200


@pytest.mark.parametrize("year", ["١٩٨٢", "1_982", "\uff11\uff19\uff18\uff12"])
async def test_digits_of_another_script_are_no_number(front: Front, year: str) -> None:
    """Read as no number (0), the year breaks the birth date's rule, as letters do in the real API."""
    answer = await front.http.get(QF, params={**LEFEBVRE, "anneeDateNaissance": year}, headers=front.bearer())
    assert answer.status_code == 422
    assert [(error["code"], error["source"]) for error in answer.json()["errors"]] == [("00363", None)]


async def test_openapi_yaml_never_names_the_caller_s_host(front: Front) -> None:
    """Without REST_PUBLIC_URL the server is relative: the host the document came from."""
    status, _, body = await raw(front, "GET /openapi.yaml HTTP/1.1", "Host: attacker.example")
    assert status == 200
    assert b"attacker.example" not in body
    assert [server["url"] for server in yaml.safe_load(body)["servers"]] == ["/"]
