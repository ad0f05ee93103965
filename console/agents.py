"""The sandbox's fictional state agents, whom the holders' sign-in offers on `make run` (``SANDBOX_AGENTS``).

Each stands for a person ProConnect would sign in: an e-mail, which the admin API matches against
the contacts of habilitations and editors (`gateway.admin_api.holders`), and a name. None is a
sandbox *person* (someone the APIs answer about): the tests check their names against the sandbox
populations. `SANDBOX_HABILITATIONS` and `SANDBOX_EDITOR` are what `make run` records for them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SandboxAgent:
    """A fictional agent of the sandbox."""

    key: str
    """What the sign-in form sends: never the e-mail, so no address travels in a form."""
    email: str
    given_name: str
    usual_name: str
    organisation: str

    @property
    def name(self) -> str:
        """Their name, as the pages greet them."""
        return f"{self.given_name} {self.usual_name}"


SANDBOX_AGENTS = (
    SandboxAgent(
        "ccas", "dominique.ferrand@ccas-demo.sandbox.example", "Dominique", "Ferrand", "CCAS de démonstration"
    ),
    SandboxAgent(
        "mairie",
        "yannick.berthou@mairie-demo.sandbox.example",
        "Yannick",
        "Berthou",
        "Mairie de démonstration",
    ),
    SandboxAgent(
        "editeur",
        "romane.guillot@editeur-demo.sandbox.example",
        "Romane",
        "Guillot",
        "Éditeur de démonstration",
    ),
)
"""The agents the sandbox sign-in lists, in this order."""
BY_KEY = {agent.key: agent for agent in SANDBOX_AGENTS}

SANDBOX_SIRET = "13002526500013"
"""The SIRET of the sandbox's habilitations: one the sandbox accepts as a recipient."""
SANDBOX_HABILITATIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("CCAS de démonstration - quotient familial", "ccas", ("cnaf_quotient_familial", "cnaf_allocataires")),
    ("Mairie de démonstration - cantine", "mairie", ("cnaf_quotient_familial",)),
)
"""Each habilitation `make run` records: its label, its contact's agent and its scopes."""
SANDBOX_EDITOR = ("Éditeur de démonstration", "editeur")
"""The editor `make run` records (its name and its contact's agent), delegated the CCAS's habilitation."""
