"""The v3 extract of a registration file, for the person of the file who is the user.

Codes of the European and national nomenclatures come with their labels
(``nomenclatures.json``). The environmental class is read off the SIV's raw
reception text ("70/220*2003/76EURO4" is Euro 4; 5a/5b count as Euro 5 and
6b/6c/6d as Euro 6, as the real API reads them); a text without a Euro level is
passed through, without label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from apiparticulier.ants.v1 import ants_pb2
from services.ants.backend import Extrait
from services.ants.matching import Match
from services.ants.siv import Dossier

NOMENCLATURES_FILE = Path(__file__).with_name("nomenclatures.json")
_EURO = re.compile(r"EURO\s*(VI|[1-6][A-D]?)")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


@cache
def nomenclatures() -> Mapping[str, Any]:
    """The label tables: categorie_vehicule, genre_national, type_carburant, classe_environnementale."""
    loaded: Mapping[str, Any] = json.loads(NOMENCLATURES_FILE.read_text(encoding="utf-8"))
    return loaded


def _labelled(table: str, code: str | None) -> ants_pb2.CodeLabel:
    return ants_pb2.CodeLabel(code=code, label=nomenclatures()[table].get(code or ""))


def classe_environnementale(raw: str | None) -> ants_pb2.CodeLabel:
    """The Euro level of the SIV's raw environmental class, with its label."""
    classes = nomenclatures()["classe_environnementale"]
    level = _EURO.search((raw or "").upper())
    code = classes["codes"].get(f"EURO{level.group(1)}") if level else None
    if code is None:
        return ants_pb2.CodeLabel(code=raw)
    return ants_pb2.CodeLabel(code=code, label=classes["labels"].get(code))


def _number(value: str | None) -> int | None:
    """A SIV figure as the real serializer writes it: a whole number (its fraction dropped)."""
    if value is None:
        return None
    try:
        number = int(float(value))
    except (ValueError, OverflowError):
        return None
    return number if -(2**31) <= number < 2**31 else None


def _identite(match: Match) -> ants_pb2.IdentiteParticulier:
    identite = match.personne.identite
    born = _DATE.fullmatch(identite.get("date_naissance") or "")
    year, month, day = (int(part) for part in born.groups()) if born else (None, None, None)
    return ants_pb2.IdentiteParticulier(
        nom=match.nom,
        prenom=next(iter(match.prenoms), None),
        sexe_etat_civil=identite.get("sexe"),
        annee_date_naissance=year,
        mois_date_naissance=month,
        jour_date_naissance=day,
        code_departement_naissance=identite.get("code_dep_naissance"),
    )


def _adresse(adresse: Mapping[str, str | None]) -> ants_pb2.AdresseParticulier:
    return ants_pb2.AdresseParticulier(
        complement_information=adresse.get("compl_adresse"),
        num_voie=adresse.get("num_voie"),
        type_voie=adresse.get("type_voie"),
        libelle_voie=adresse.get("libelle_voie"),
        code_postal_ville=adresse.get("code_postal"),
        libelle_commune=adresse.get("libelle_commune"),
        lieu_dit=adresse.get("lieudit_ou_bp"),
        etage_escalier_appartement=adresse.get("point_remise"),
        extension=adresse.get("extension"),
        pays=adresse.get("pays"),
    )


def extrait(dossier: Dossier, match: Match) -> Extrait:
    """The extract of the file for the person who matched, with the identity check in meta."""
    immatriculation, vehicule = dossier.immatriculation, dossier.caracteristiques
    data = ants_pb2.ExtraitImmatriculationVehiculeData(
        identite_particulier=_identite(match),
        adresse_particulier=_adresse(match.personne.adresse),
        statut_rattachement=(match.personne.libelle_type_personne or "").lower() or None,
        donnees_immatriculation_vehicule=ants_pb2.DonneesImmatriculationVehicule(
            numero_immatriculation=immatriculation.get("num_immat"),
            date_premiere_immatriculation=immatriculation.get("date_prem_immat"),
            statut_location=ants_pb2.CodeLabel(
                code=immatriculation.get("code_type_immat"), label=immatriculation.get("libelle_type_immat")
            ),
        ),
        caracteristiques_techniques_vehicule=ants_pb2.CaracteristiquesTechniquesVehicule(
            marque=vehicule.get("marque_vehicule"),
            type_variante_version=vehicule.get("tvv"),
            denomination_commerciale=vehicule.get("denomination_com"),
            masse_charge_maximale=_number(vehicule.get("ptac")),
            categorie_vehicule=_labelled("categorie_vehicule", vehicule.get("categorie_ce")),
            genre_national=_labelled("genre_national", vehicule.get("genre_national")),
            cylindree=_number(vehicule.get("cylindree")),
            type_carburant=_labelled("type_carburant", vehicule.get("energie")),
            taux_co2=_number(vehicule.get("co2")),
            classe_environnementale=classe_environnementale(vehicule.get("classe_environnement_ce")),
        ),
    )
    meta = ants_pb2.ExtraitImmatriculationVehiculeMeta(identity_matching=match.identity_matching)
    return Extrait(data=data, meta=meta)
