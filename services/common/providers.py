"""The data providers as the error model names them: one constant each, for services and gateway.

The code prefix and label are those of the real API's error codes (CONTRACT §4.3).
"""

from __future__ import annotations

from runtime.errors import Provider

CNAV = Provider("37", "CNAV")
"""The Sécurité sociale gateway run by the CNAV: transport and unknown-answer errors of cnaf and c2s."""
CNAF_MSA = Provider("35", "CNAF & MSA")
"""The caisses behind it: a person registered with neither is not found."""
CNAF = Provider("23", "CNAF")
"""The CNAF, when it answered that it has no file for the person."""
MSA = Provider("10", "MSA")
"""The MSA, when it answered that it has no file for the person."""
RNCPS = Provider("40", "RNCPS")
"""The RNCPS, which answers for the complémentaire santé solidaire."""
FRANCE_TRAVAIL = Provider("24", "France Travail")
"""France Travail."""
MESRI = Provider("25", "MESRI")
"""The ministry of higher education (student status)."""
CNOUS = Provider("26", "CNOUS")
"""The Cnous (scholarship status)."""
MEN = Provider("30", "MEN")
"""The ministry of national education (pupil status)."""

TRANSPORT_PROVIDER: dict[str, Provider] = {
    "cnaf": CNAV,
    "c2s": CNAV,
    "france_travail": FRANCE_TRAVAIL,
    "mesr": MESRI,
    "cnous": CNOUS,
    "men": MEN,
}
"""For each provider service, whom the error model names when the service itself cannot be reached."""
