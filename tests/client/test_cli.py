"""The client against the gateway fixture: output, exit status, error lines; its ``main`` in this
process, and ``python -m client`` as the lines `make run` prints, run by a shell."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from apiparticulier.gateway.v1 import gateway_pb2
from client.cli import (
    UsageError,
    build_parser,
    build_request,
    choose_route,
    load_subject,
    lookup_request,
    main,
)
from contract.catalog import ApiCatalog
from contract.routes import RouteTable, build_routes, contract_scopes
from devstack.redis import RedisProcess, free_port
from devstack.run import client_examples, client_setup
from gateway.rate_script import rate_key
from tests.conftest import run_main
from tests.gateway.conftest import Mesh
from tests.gateway.tokens import TokenFactory

REPO = Path(__file__).resolve().parents[2]
RECIPIENT = "13002526500013"
LEFEBVRE = [
    "--nom",
    "LEFEBVRE",
    "--prenom",
    "ALEXIS",
    "--sexe",
    "F",
    "--naissance",
    "1982-12-27",
    "--pays",
    "99100",
]


@dataclass
class Done:
    code: int
    out: str
    err: str


def address(mesh: Mesh) -> str:
    channel: Any = mesh.channel
    target: str = channel._channel.target.decode()
    return target.removeprefix("ipv4:")


def all_scopes(mesh: Mesh) -> TokenFactory:
    return TokenFactory(mesh.factory.key, scopes=sorted(contract_scopes()))


async def run(mesh: Mesh, *args: str, token: str | None = None, env: dict[str, str] | None = None) -> Done:
    """The client's ``main(args)`` in this process (`tests.conftest.run_main`), off the event loop.

    ``env``: more variables, ``"<unset>"`` to unset one. The entry point itself, ``python -m
    client``, runs as a process in `test_the_commands_make_run_prints_work_as_printed`.
    """
    environment = {
        "API_PARTICULIER_ADDRESS": address(mesh),
        "API_PARTICULIER_RECIPIENT": RECIPIENT,
        **({"API_PARTICULIER_TOKEN": token} if token else {}),
        **(env or {}),
    }
    changes = {name: None if value == "<unset>" else value for name, value in environment.items()}
    # The gateway runs on this test's event loop: the client's blocking gRPC calls run in a thread.
    done = await asyncio.to_thread(run_main, main, *args, env=changes)
    assert "Traceback" not in done.stderr, done.stderr
    return Done(done.returncode, done.stdout, done.stderr)


async def test_the_commands_make_run_prints_work_as_printed(mesh: Mesh) -> None:
    """Each printed line, after the printed export line, run by a shell as a person would paste it."""
    token = all_scopes(mesh).token()
    outputs = []
    for line in client_examples():
        script = f"export TOKEN={token}\n{client_setup(address(mesh))}\n{line}\n"
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            script,
            cwd=REPO,
            env=dict(os.environ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, (line, err.decode())
        assert not err.decode().strip(), (line, err.decode())
        outputs.append(out.decode())
    qf, lookup, introspect, usage, pings = outputs
    assert "cnaf.quotient_familial (GetQuotientFamilialByIdentity): OK" in qf
    assert "fournisseur: CNAF" in qf and "nom_naissance: LEFEBVRE" in qf
    assert "cnaf.quotient_familial: OK" in lookup
    assert "c2s.complementaire_sante_solidaire: OK" in lookup
    # The APIs named and no other (data minimisation): France Travail, not named, is not asked.
    assert "france_travail" not in lookup
    assert "token_id:" in introspect and "cnaf_quotient_familial" in introspect
    assert usage.startswith(("day", "no call"))
    assert "provider" in pings and "cnaf" in pings and "men" in pings


MOREAU = [
    "--nom",
    "MOREAU",
    "--prenom",
    "JEAN",
    "--sexe",
    "M",
    "--naissance",
    "1958-04-03",
    "--pays",
    "99100",
]


async def test_json_output_is_the_exact_v3_data_object(mesh: Mesh) -> None:
    """false and null are printed as the v3 API sends them, not dropped."""
    done = await run(
        mesh, "call", "cnaf.revenu_solidarite_active", *MOREAU, "--json", token=all_scopes(mesh).token()
    )
    assert done.code == 0, done.err
    assert json.loads(done.out) == {
        "data": {"est_beneficiaire": False, "avec_majoration": None, "date_debut_droit": None},
        "withheld": [],
    }


async def test_withheld_fields_are_named_not_shown_empty(mesh: Mesh) -> None:
    """A token without the household scopes: the lists are withheld, named, and not printed as empty."""
    token = TokenFactory(mesh.factory.key, scopes=["cnaf_quotient_familial"]).token()
    done = await run(mesh, "call", "cnaf.quotient_familial", *LEFEBVRE, "--json", token=token)
    assert done.code == 0, done.err
    body = json.loads(done.out)
    assert body["withheld"] == ["allocataires", "enfants", "adresse"]
    assert list(body["data"]) == ["quotient_familial"]
    readable = await run(mesh, "call", "cnaf.quotient_familial", *LEFEBVRE, token=token)
    assert "(withheld: allocataires, enfants, adresse)" in readable.out
    assert "enfants" not in readable.out.replace("(withheld: allocataires, enfants, adresse)", "")


async def test_lookup_json_gives_each_api_its_v3_answer_or_error(mesh: Mesh) -> None:
    """One entry per API asked: its label with the v3 data and withheld paths, or the error."""
    token = TokenFactory(
        mesh.factory.key, scopes=["revenu_solidarite_active", "cnaf_quotient_familial"]
    ).token()
    done = await run(
        mesh,
        "lookup",
        "cnaf.revenu_solidarite_active",
        "france_travail.statut",
        *MOREAU,
        "--json",
        token=token,
    )
    assert done.code == 0, done.err
    rsa, statut = json.loads(done.out)["results"]
    assert rsa == {
        "api": "cnaf.revenu_solidarite_active",
        "data": {"est_beneficiaire": False, "date_debut_droit": None},
        "withheld": ["avec_majoration"],
    }
    assert statut["api"] == "france_travail.statut" and statut["error"]["code"] == "00100"


async def test_subject_file_with_flags_on_top(mesh: Mesh, tmp_path: Path) -> None:
    """The proto3 JSON of the request in a file; a flag given too wins."""
    subject = tmp_path / "subject.json"
    subject.write_text(
        json.dumps(
            {
                "identite": {
                    "nomNaissance": "MOREAU",
                    "prenoms": ["JEAN"],
                    "anneeDateNaissance": 1982,
                    "moisDateNaissance": 12,
                    "jourDateNaissance": 27,
                    "sexeEtatCivil": "F",
                    "codeCogInseePaysNaissance": "99100",
                }
            }
        )
    )
    done = await run(
        mesh,
        "call",
        "cnaf.quotient_familial",
        "--subject-file",
        str(subject),
        "--nom",
        "LEFEBVRE",
        "--prenom",
        "ALEXIS",
        token=all_scopes(mesh).token(),
    )
    assert done.code == 0, done.err
    assert "nom_naissance: LEFEBVRE" in done.out


async def test_france_connect_token_through_the_client(mesh: Mesh) -> None:
    done = await run(
        mesh, "call", "cnaf.quotient_familial", "--fc-token", "fc-lefebvre", token=mesh.factory.token()
    )
    assert done.code == 0, done.err
    assert "(GetQuotientFamilialByFranceConnect): OK" in done.out
    expired = await run(
        mesh, "call", "cnaf.quotient_familial", "--fc-token", "fc-expired", token=mesh.factory.token()
    )
    assert expired.code == 1
    assert "UNAUTHENTICATED 51502 Accès non autorisé" in expired.err


async def test_usage_is_a_table(mesh: Mesh) -> None:
    token = all_scopes(mesh).token()
    await run(mesh, "call", "cnaf.quotient_familial", *LEFEBVRE, token=token)
    for _ in range(50):
        done = await run(mesh, "usage", "--days", "1", token=token)
        if "cnaf.quotient_familial" in done.out:
            break
        await asyncio.sleep(0.1)
    lines = done.out.splitlines()
    assert lines[0].split() == ["day", "api", "outcome", "calls"]
    assert lines[2].split()[1:] == ["cnaf.quotient_familial", "OK", "1"]


@pytest.mark.parametrize(
    ("args", "token", "code", "expected"),
    [
        (["introspect"], None, 2, "no token: set API_PARTICULIER_TOKEN or pass --token"),
        (["introspect"], "not-a-jwt", 1, "UNAUTHENTICATED 00101 Interdit : Votre token n'est pas valide"),
        (["call", "cnaf.quotient_familial", *LEFEBVRE, "--recipient", "12345678901234"], "ok", 1, "00210"),
        (["call", "cnaf.nothing", *LEFEBVRE], "ok", 2, "unknown API 'cnaf.nothing'"),
        (["call", "mesr.statut_etudiant", "--ine", "bad"], "ok", 1, "INVALID_ARGUMENT 00360"),
        (["call", "cnaf.quotient_familial", "--nom", "INCONNU"], "ok", 1, "champs : identite."),
        (["call", "cnaf.quotient_familial", "--naissance", "27/12/1982"], "ok", 2, "expected YYYY"),
        (["call", "france_travail.statut", "--ine", "1234567890A"], "ok", 2, "cannot be asked by ine"),
        (["lookup"], "ok", 2, "no subject"),
        (["frobnicate"], "ok", 2, "invalid choice"),
    ],
)
async def test_error_lines_and_exit_status(
    mesh: Mesh, args: list[str], token: str | None, code: int, expected: str
) -> None:
    """One line on standard error, the right exit status, never a traceback."""
    real = all_scopes(mesh).token() if token == "ok" else token
    done = await run(
        mesh, *args, token=real, env={"API_PARTICULIER_TOKEN": "<unset>"} if token is None else None
    )
    assert done.code == code, (done.out, done.err)
    assert expected in done.err
    assert len(done.err.strip().splitlines()) <= 2  # argparse adds its usage line


async def test_provider_error_names_code_provider_and_retry(mesh: Mesh) -> None:
    """A provider timeout: status, code, title and detail, provider, retry delay."""
    done = await run(
        mesh,
        "call",
        "cnaf.quotient_familial",
        "--nom",
        "DELAI",
        "--prenom",
        "MARC",
        "--sexe",
        "M",
        "--naissance",
        "1979-02-28",
        "--pays",
        "99100",
        token=all_scopes(mesh).token(),
    )
    assert done.code == 1
    assert done.err.startswith("error: DEADLINE_EXCEEDED 37002 Intermédiaire hors-délai")
    assert "[fournisseur : CNAV]" in done.err and "réessayer dans 10 s" in done.err


async def test_json_error_for_scripts(mesh: Mesh) -> None:
    done = await run(
        mesh,
        "call",
        "cnaf.quotient_familial",
        *LEFEBVRE,
        "--json",
        "--recipient",
        "1",
        token=all_scopes(mesh).token(),
    )
    assert done.code == 1
    error = json.loads(done.out)["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == "00210"
    assert error["field_violations"][0]["field"] == "x-recipient"


async def test_gateway_unreachable(mesh: Mesh) -> None:
    done = await run(mesh, "pings", "--address", f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert done.code == 3
    assert "cannot reach the gateway" in done.err


async def test_rate_limit_shows_the_retry_delay(mesh: Mesh, redis_server: RedisProcess) -> None:
    """A refused call shows its code and when to try again."""
    jti = str(uuid.uuid4())
    token = mesh.factory.token(rate_limit=1, jti=jti)
    # The token's bucket empty for a minute, as a token that spent it finds it: spending it with one
    # call would not do, the CLI's process can take longer to start than the second it refills in.
    with redis.Redis.from_url(redis_server.url) as client:
        seconds, microseconds = client.time()
        client.set(rate_key(jti), seconds * 1_000_000 + microseconds + 60_000_000, px=60_000)
    done = await run(mesh, "introspect", token=token)
    assert done.code == 1
    assert "RESOURCE_EXHAUSTED 00429 Trop de requêtes" in done.err and "réessayer dans" in done.err


async def test_proofs_and_pings_need_no_token(mesh: Mesh) -> None:
    proofs = await run(mesh, "proofs", env={"API_PARTICULIER_TOKEN": "<unset>"})
    assert proofs.code == 0 and "proofs avoided over the last 30 days" in proofs.out
    pings = await run(mesh, "pings", "--json", env={"API_PARTICULIER_TOKEN": "<unset>"})
    assert pings.code == 0
    assert {p["provider"] for p in json.loads(pings.out)["providers"]} >= {"cnaf", "c2s"}


def test_lookup_flags_carry_the_school_search() -> None:
    """`lookup --annee-scolaire … --code-etablissement …` puts the MEN search into the lookup's parameters."""
    args = build_parser().parse_args(
        [
            "lookup",
            "men.scolarite",
            "--nom",
            "ROCHE",
            "--prenom",
            "Léa",
            "--sexe",
            "F",
            "--naissance",
            "2013-04-09",
            "--annee-scolaire",
            "2025-2026",
            "--code-etablissement",
            "0132733A",
        ]
    )
    request = lookup_request(args, ApiCatalog(build_routes()))
    assert list(request.apis) == [gateway_pb2.API_SCOLARITE]
    assert request.parameters.annee_scolaire == "2025-2026"
    assert request.parameters.code_etablissement == "0132733A"
    assert request.identite.nom_naissance == "ROCHE"


@pytest.mark.parametrize(
    ("document", "method"),
    [
        ({"ine": "2406123457A"}, "GetEtudiantBoursierV5ByIne"),
        ({"identite": {"nomNaissance": "MERCIER"}}, "GetEtudiantBoursierV5ByIdentity"),
        ({"franceConnect": {"accessToken": "fc-mercier"}}, "GetEtudiantBoursierV5ByFranceConnect"),
    ],
)
def test_call_by_label_takes_the_current_method(document: dict[str, Any], method: str) -> None:
    """`call cnous.etudiant_boursier` asks the v4 method, not its deprecated v3 twin, in any order."""
    reversed_table = RouteTable(tuple(reversed(build_routes().routes)))
    assert choose_route(reversed_table, "cnous.etudiant_boursier", document).method == method


def test_flags_reach_the_sdh_and_ants_requests() -> None:
    """`call sdh.… --identifiant` asks by the sportsperson's identifiant; `--immatriculation` reaches ANTS."""
    routes = build_routes()
    sdh = build_parser().parse_args(["call", "sdh.statut_sportif", "--identifiant", "700001"])
    route = choose_route(routes, "sdh.statut_sportif", load_subject(sdh))
    assert (route.method, build_request(route, load_subject(sdh)).identifiant) == (  # type: ignore[attr-defined]
        "GetStatutSportifByIdentifiant",
        "700001",
    )
    ants = build_parser().parse_args(
        [
            "call",
            "ants.extrait_immatriculation_vehicule",
            "--fc-token",
            "fc-morel",
            "--immatriculation",
            "SB-101-AA",
        ]
    )
    route = choose_route(routes, "ants.extrait_immatriculation_vehicule", load_subject(ants))
    assert build_request(route, load_subject(ants)).immatriculation == "SB-101-AA"  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="cannot be asked by identity"):
        choose_route(routes, "ants.extrait_immatriculation_vehicule", {"identite": {"nomNaissance": "MOREL"}})
    lookup = build_parser().parse_args(
        [
            "lookup",
            "sdh.statut_sportif",
            "--nom",
            "X",
            "--identifiant-sportif",
            "700001",
            "--immatriculation",
            "AB",
        ]
    )
    parameters = lookup_request(lookup, ApiCatalog(routes)).parameters
    assert (parameters.identifiant_sportif, parameters.immatriculation) == ("700001", "AB")
