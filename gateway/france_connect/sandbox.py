"""The sandbox's fake FranceConnect tokens and the persons they stand for (README, "FranceConnect").

`SandboxIntrospection` answers for them as FranceConnect's introspection
endpoint would, so the FranceConnect methods work with no FranceConnect at hand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.caller import Caller

SANDBOX_CLIENT_ID = "sandbox-service-provider"
"""The FranceConnect client every sandbox token was issued to: link it to a token to call the
FranceConnect routes with a sandbox token alone (`gateway.france_connect.clients`)."""


@dataclass(frozen=True, slots=True)
class SandboxToken:
    """A fake FranceConnect token of the sandbox and the person it stands for."""

    token: str
    label: str
    claims: Mapping[str, Any]
    """Identity claims, as FranceConnect names them; empty for an inactive token."""
    scopes: tuple[str, ...] = ()
    active: bool = True
    expired: bool = False


_CNAF_C2S_SCOPES = (
    "cnaf_quotient_familial",
    "cnaf_allocataires",
    "cnaf_enfants",
    "cnaf_adresse",
    "revenu_solidarite_active",
    "revenu_solidarite_active_majoration",
    "prime_activite",
    "prime_activite_majoration",
    "allocation_adulte_handicape",
    "allocation_soutien_familial",
    "cnav_allocation_enfant_handicape",
    "cnav_allocation_rentree_scolaire",
    "complementaire_sante_solidaire",
)
_LEFEBVRE = {
    "family_name": "LEFEBVRE",
    "given_name": "ALEXIS GÉRÔME",
    "given_name_array": ["ALEXIS", "GÉRÔME"],
    "gender": "female",
    "birthdate": "1982-12-27",
    "birthplace": "08480",
    "birthcountry": "99100",
}

SANDBOX_TOKENS: tuple[SandboxToken, ...] = (
    SandboxToken("fc-lefebvre", "LEFEBVRE Alexis Gérôme, CNAF and C2S scopes", _LEFEBVRE, _CNAF_C2S_SCOPES),
    SandboxToken(
        "fc-lefebvre-qf",
        "LEFEBVRE Alexis Gérôme, the quotient familial value only",
        _LEFEBVRE,
        ("cnaf_quotient_familial",),
    ),
    SandboxToken(
        "fc-moreau",
        "MOREAU Jean (MSA household, not covered by the C2S), CNAF and C2S scopes",
        {
            "family_name": "MOREAU",
            "given_name": "JEAN",
            "given_name_array": ["JEAN"],
            "gender": "male",
            "birthdate": "1958-04-03",
            "birthplace": "12202",
            "birthcountry": "99100",
        },
        _CNAF_C2S_SCOPES,
    ),
    SandboxToken(
        "fc-rochefort",
        "ROCHEFORT Anne, household with a child under 7, EAJE scopes",
        {
            "family_name": "ROCHEFORT",
            "given_name": "ANNE",
            "given_name_array": ["ANNE"],
            "gender": "female",
            "birthdate": "1991-04-12",
            "birthplace": "17300",
            "birthcountry": "99100",
        },
        (
            "cnav_participation_familiale_eaje_allocataires",
            "cnav_participation_familiale_eaje_enfants",
            "cnav_participation_familiale_eaje_adresse",
            "cnav_participation_familiale_eaje_parametres_calcul",
        ),
    ),
    SandboxToken(
        "fc-bernard",
        "BERNARD Camille, student, MESR scopes",
        {
            "family_name": "BERNARD",
            "given_name": "CAMILLE",
            "given_name_array": ["CAMILLE"],
            "gender": "female",
            "birthdate": "2005-05-17",
            "birthplace": "75115",
            "birthcountry": "99100",
        },
        (
            "mesri_admissions",
            "mesri_admission_inscrit",
            "mesri_admission_regime_formation",
            "mesri_admission_commune_etudes",
            "mesri_admission_etablissement_etudes",
        ),
    ),
    SandboxToken(
        "fc-mercier",
        "MERCIER Zoé, scholarship holder, Cnous scopes",
        {
            "family_name": "MERCIER",
            "given_name": "ZOÉ",
            "given_name_array": ["ZOÉ"],
            "gender": "female",
            "birthdate": "2006-03-21",
            "birthplace": "69123",
            "birthcountry": "99100",
        },
        (
            "cnous_statut_boursier",
            "cnous_echelon_bourse",
            "cnous_email",
            "cnous_periode_versement",
            "cnous_ville_etudes",
            "cnous_ine",
        ),
    ),
    SandboxToken(
        "fc-armand",
        "ARMAND Léo Marcel, in good standing with the service national, DSNJ scope",
        {
            "family_name": "ARMAND",
            "given_name": "LÉO MARCEL",
            "given_name_array": ["LÉO", "MARCEL"],
            "gender": "male",
            "birthdate": "2008-03-14",
            "birthplace": "35238",
            "birthcountry": "99100",
        },
        ("dsnj_statut_service_national",),
    ),
    SandboxToken(
        "fc-lavande",
        "LAVANDE Nina Rose, in service civique, GIP-MDS scopes",
        {
            "family_name": "LAVANDE",
            "given_name": "NINA ROSE",
            "given_name_array": ["NINA", "ROSE"],
            "gender": "female",
            "birthdate": "2002-04-11",
            "birthplace": "44109",
            "birthcountry": "99100",
        },
        (
            "gip_mds_service_civique_statut_actuel",
            "gip_mds_service_civique_statut_passe",
            "gip_mds_service_civique_organisme_accueil",
            "gip_mds_service_civique_dates",
        ),
    ),
    SandboxToken(
        "fc-morel",
        "MOREL Léa Claire, holder, co-holder or lessee of vehicles, ANTS scopes",
        {
            "family_name": "MOREL",
            "given_name": "LÉA CLAIRE",
            "given_name_array": ["LÉA", "CLAIRE"],
            "gender": "female",
            "birthdate": "1990-05-04",
            "birthplace": "75056",
            "birthcountry": "99100",
        },
        (
            "ants_extrait_immatriculation_vehicule_adresse_particulier",
            "ants_extrait_immatriculation_vehicule_statut_rattachement",
            "ants_extrait_immatriculation_vehicule_donnees_immatriculation_vehicule",
            "ants_extrait_immatriculation_vehicule_caracteristiques_techniques_vehicule",
        ),
    ),
    SandboxToken("fc-inactive", "a token FranceConnect no longer knows: refused, 51502", {}, active=False),
    SandboxToken(
        "fc-expired",
        "LEFEBVRE's token past its expiry: refused, 51502",
        _LEFEBVRE,
        _CNAF_C2S_SCOPES,
        expired=True,
    ),
)
"""The fake FranceConnect tokens of the sandbox; any other token is unknown (inactive)."""

_OPENID_SCOPES = (
    "openid",
    "identite_pivot",
    "given_name",
    "family_name",
    "birthdate",
    "gender",
    "birthplace",
    "birthcountry",
    "preferred_username",
)


class SandboxIntrospection:
    """Answers for the fake tokens of `SANDBOX_TOKENS` as FranceConnect would; unknown tokens are inactive.

    Args:
        tokens: The fake tokens.
        clock: Wall clock in epoch seconds, for ``iat`` and ``exp``.
    """

    def __init__(
        self, tokens: Iterable[SandboxToken] = SANDBOX_TOKENS, clock: Callable[[], float] = time.time
    ) -> None:
        self._tokens = {token.token: token for token in tokens}
        self._clock = clock

    async def introspect(self, access_token: str, caller: Caller) -> bytes:
        """The introspection answer of a fake token, in FranceConnect's shape."""
        now = int(self._clock())
        token = self._tokens.get(access_token)
        if token is None or not token.active:
            return json.dumps(
                {
                    "aud": "api-particulier",
                    "iat": now,
                    "iss": "sandbox",
                    "token_introspection": {"active": False},
                }
            ).encode()
        claims = {
            "active": True,
            "aud": SANDBOX_CLIENT_ID,
            "sub": f"sandbox-{token.token}",
            "iat": now - 60,
            # A live token has a few minutes left; the expired one ended a minute ago.
            "exp": now - 60 if token.expired else now + 600,
            "acr": "eidas1",
            "jti": f"sandbox-{token.token}",
            "scope": " ".join((*_OPENID_SCOPES, *token.scopes)),
            **token.claims,
        }
        document = {"aud": "api-particulier", "iat": now, "iss": "sandbox", "token_introspection": claims}
        return json.dumps(document).encode()

    async def close(self) -> None:
        """Nothing to release."""
