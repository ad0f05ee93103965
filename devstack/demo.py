"""`make run`'s demo habilitation and its token, made through the admin API as an operator would.

The habilitation ``make run demo`` (SIRET of the demo recipient, its name and use case as citizens
see them, every scope of the contract) is made once and kept in the registry across runs; each run
brings its scopes up to the contract's (a scope added to the mesh is in the demo at the next run)
and its holder's name to `DEMO_ORGANISATION`, issues it a token valid one day and
maps the sandbox FranceConnect client to it, so that the sandbox's FranceConnect tokens call alone
under it. A demo habilitation revoked or archived (in the console, say) is left so: the run makes
another.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from apiparticulier.admin.v1 import admin_pb2, admin_pb2_grpc

DEMO_LABEL = "make run demo"
"""The demo habilitation's label, by which a later run finds it again."""
DEMO_ORGANISATION = "Mairie de démonstration"
"""The demo holder's name, as citizens' "Mes données" shows it."""
DEMO_USE_CASE = "Tarification sociale de la restauration scolaire"
"""What the demo habilitation is for, as citizens' "Mes données" shows it."""
_TIMEOUT_SECONDS = 15.0


def demo_token(
    admin_address: str, operator_secret: str, siret: str, scopes: Iterable[str], france_connect_client: str
) -> str:
    """The JWT of a new one-day token of the demo habilitation, made or brought up to ``scopes`` first.

    Args:
        admin_address: The admin API's gRPC ``host:port`` (plain: the local mesh is on loopback).
        operator_secret: An admin operator's secret.
        siret: The demo habilitation's holder (the demo recipient).
        scopes: Every scope the demo habilitation holds.
        france_connect_client: The FranceConnect client whose calls count under it.

    Raises:
        grpc.RpcError: the admin API refused or could not be reached (the caller stops the run).
    """
    metadata = (("authorization", f"Bearer {operator_secret}"),)
    wanted = sorted(scopes)
    with grpc.insecure_channel(admin_address) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        listed = admin.ListHabilitations(
            admin_pb2.ListHabilitationsRequest(), metadata=metadata, timeout=_TIMEOUT_SECONDS
        )
        kept = [
            habilitation
            for habilitation in listed.habilitations
            if habilitation.label == DEMO_LABEL
            and habilitation.siret == siret
            and habilitation.status == admin_pb2.HABILITATION_STATUS_VALIDATED
        ]
        if kept:
            habilitation_id = kept[-1].id
            if sorted(kept[-1].scopes) != wanted or kept[-1].organisation_name != DEMO_ORGANISATION:
                admin.UpdateHabilitation(
                    admin_pb2.UpdateHabilitationRequest(
                        id=habilitation_id,
                        scopes=admin_pb2.StringList(values=wanted),
                        organisation_name=DEMO_ORGANISATION,
                    ),
                    metadata=metadata,
                    timeout=_TIMEOUT_SECONDS,
                )
        else:
            created = admin.CreateHabilitation(
                admin_pb2.CreateHabilitationRequest(
                    label=DEMO_LABEL,
                    siret=siret,
                    scopes=wanted,
                    organisation_name=DEMO_ORGANISATION,
                    use_case=DEMO_USE_CASE,
                ),
                metadata=metadata,
                timeout=_TIMEOUT_SECONDS,
            )
            habilitation_id = created.habilitation.id
        issued = admin.IssueToken(
            admin_pb2.IssueTokenRequest(habilitation_id=habilitation_id, days=1),
            metadata=metadata,
            timeout=_TIMEOUT_SECONDS,
        )
        admin.MapFranceConnectClient(
            admin_pb2.MapFranceConnectClientRequest(
                client_id=france_connect_client, habilitation_id=habilitation_id
            ),
            metadata=metadata,
            timeout=_TIMEOUT_SECONDS,
        )
    return str(issued.jwt)
