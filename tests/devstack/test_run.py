"""`make run` on the ports it can take, and the README's token commands against it.

The whole stack is started as `make run` starts it (`python -m devstack`), in a run directory
of its own, while this test holds the gateway's default gRPC and REST ports as another program
would: it must start, serve and print the ports it took.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import jwt
import pytest

from devstack.run import ADMIN, ADMIN_REST_PORT, GATEWAY, PROVIDERS, REST_PORT, SMTP_SINK_PORT, plan_ports
from tests.conftest import REPO
from tests.people import LEFEBVRE_QUERY

_BANNER_END = "Ctrl-C stops everything."
_START_SECONDS = 150.0
_SNAPSHOT_BOUND_SECONDS = 2.0
"""How soon every gateway takes a registry change (README, Habilitations and the admin API)."""


def test_the_plan_keeps_free_defaults_and_replaces_taken_ones() -> None:
    """A taken default gets another port; a free default is kept; no port is given twice."""
    taken = {GATEWAY.port, REST_PORT, PROVIDERS[0].metrics_port, ADMIN.port, SMTP_SINK_PORT}
    plan = plan_ports(lambda port: port not in taken)
    assert plan.gateway.port not in taken and plan.rest_port not in taken
    assert plan.admin.port not in taken and plan.smtp_port not in taken
    assert (plan.admin.metrics_port, plan.admin_rest_port) == (ADMIN.metrics_port, ADMIN_REST_PORT)
    assert plan.providers[0].metrics_port not in taken
    assert plan.gateway.metrics_port == GATEWAY.metrics_port
    assert [p.port for p in plan.providers] == [p.port for p in PROVIDERS]
    every = [plan.rest_port, plan.gateway.port, plan.gateway.metrics_port, plan.admin_rest_port]
    every += [plan.admin.port, plan.admin.metrics_port, plan.smtp_port]
    every += [port for p in plan.providers for port in (p.port, p.metrics_port)]
    assert len(every) == len(set(every))
    assert plan.provider_addresses()["CNAF_ADDRESS"] == f"127.0.0.1:{PROVIDERS[0].port}"


def _hold(port: int) -> socket.socket | None:
    """Listen on ``port`` as another program would; None when someone already does."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", port))
    except OSError:
        holder.close()
        return None
    holder.listen()
    return holder


def _tokens_section() -> list[str]:
    """The shell commands of the README's "Tokens" section's first block, continuation lines joined."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Tokens", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[str]:
    """`python -m devstack` with the gateway's, the admin API's and the SMTP sink's default ports held by
    another program; its banner once it serves."""
    with ExitStack() as holding:
        for port in (GATEWAY.port, REST_PORT, ADMIN.port, SMTP_SINK_PORT):
            if (holder := _hold(port)) is not None:
                holding.callback(holder.close)
        env = {**os.environ, "DEVSTACK_RUN_DIR": str(tmp_path / "run"), "PYTHONUNBUFFERED": "1"}
        env.pop("REDIS_URL", None)
        env.pop("JOURNAL_DATABASE_URL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            banner: list[str] = []
            deadline = time.monotonic() + _START_SECONDS
            assert process.stdout is not None
            for line in process.stdout:
                banner.append(line)
                if _BANNER_END in line or time.monotonic() > deadline:
                    break
            assert _BANNER_END in "".join(banner), "".join(banner)
            yield "".join(banner)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()


def _shell(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run README lines as a shell would, from the repository, with this interpreter."""
    done = subprocess.run(
        script.replace(".venv/bin/python", sys.executable),
        shell=True,
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def _qf(rest_url: str, token: str, path: str = "identite") -> httpx.Response:
    return httpx.get(
        f"{rest_url}/v3/dss/quotient_familial/{path}",
        params=LEFEBVRE_QUERY if path == "identite" else {"recipient": LEFEBVRE_QUERY["recipient"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


@pytest.mark.timeout(300)
def test_make_run_serves_beside_taken_ports_and_the_readme_tokens_work(stack: str) -> None:
    """The banner names the ports taken; its demo token and a token made by the README's commands through
    the admin API are accepted by its gateway, which reads the registry: a scope withdrawn holds within the
    snapshot's bound, the README's revocation from the next call."""
    rest = re.search(r"gateway REST\s+(http://127\.0\.0\.1:(\d+))", stack)
    grpc_address = re.search(r"^gateway\s+127\.0\.0\.1:(\d+)", stack, re.MULTILINE)
    demo = re.search(r"^  export TOKEN=(\S+)$", stack, re.MULTILINE)
    assert rest is not None and grpc_address is not None and demo is not None, stack
    assert int(rest.group(2)) != REST_PORT and int(grpc_address.group(1)) != GATEWAY.port
    assert f"API_PARTICULIER_ADDRESS=127.0.0.1:{grpc_address.group(1)}" in stack
    smtp = re.search(r"^smtp sink\s+127\.0\.0\.1:(\d+)", stack, re.MULTILINE)
    assert smtp is not None and int(smtp.group(1)) != SMTP_SINK_PORT, stack
    assert f"ADMIN_API_ADDRESS=127.0.0.1:{ADMIN.port} " not in stack
    assert f"'{rest.group(1)}/v3/dss/quotient_familial/identite?" in stack
    maintenance = "  .venv/bin/python -m gateway.admin maintenance --list\n"
    assert maintenance in stack, stack

    # The demo token: the demo habilitation's, every scope; the sandbox FranceConnect client mapped to it.
    served = _qf(rest.group(1), demo.group(1))
    assert served.status_code == 200, served.text
    assert _qf(rest.group(1), "fc-lefebvre", "france_connect").status_code == 200

    # The README's lines, with the one export line the admin CLI needs.
    admin_export = re.search(r"^  export (ADMIN_API_ADDRESS=\S+ ADMIN_API_TOKEN=\S+)$", stack, re.MULTILINE)
    assert admin_export is not None, stack
    admin_env = dict(pair.split("=", 1) for pair in admin_export.group(1).split())
    create, issue, listing, revoke = _tokens_section()
    assert "habilitation create" in create and "token issue --habilitation" in issue
    done = _shell(f'{create}\necho "$habilitation"\n{issue}\n{listing}\nprintf "%s\\n" "$TOKEN"', admin_env)
    printed = done.stdout.splitlines()
    habilitation = printed[0]
    assert printed and printed[-1].count(".") == 2, done.stderr
    token = printed[-1]
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert any(line.startswith(jti) for line in printed), printed
    answer = _qf(rest.group(1), token)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["quotient_familial"]["valeur"] == 2550

    # A scope change through the admin API holds on the next calls (the gateway's snapshot): no new token.
    update = f".venv/bin/python -m gateway.admin habilitation update {habilitation}"
    _shell(f"{update} --scope complementaire_sante_solidaire", admin_env)
    deadline = time.monotonic() + _SNAPSHOT_BOUND_SECONDS
    while (answer := _qf(rest.group(1), token)).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert answer.status_code == 403, answer.text
    assert answer.json()["errors"][0]["code"] == "00100"

    assert "<token id>" in revoke
    _shell(revoke.replace("<token id>", jti), admin_env)
    # A token's revocation is in Redis too, read with the rate decision: refused from the very next call.
    refused = _qf(rest.group(1), token)
    assert refused.status_code == 401, refused.text
    assert refused.json()["errors"][0]["code"] == "00105"

    # The banner's maintenance line works with the admin line alone (no REDIS_URL).
    _shell(maintenance.strip(), admin_env)
