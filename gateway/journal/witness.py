"""Chain heads kept outside the journal's database, for `journal verify` to hold the database to.

The signatures of the checkpoints prove that a gateway wrote a head, not that the database
still holds every head a gateway signed: whoever can write the database can delete a whole
chain with its checkpoints, or cut a chain back and delete the checkpoints after the cut.
So every checkpoint the writer commits is also appended, after its commit, to a witness
the database's administrators cannot rewrite: a file opened append-only
(``JOURNAL_WITNESS_FILE``), on a volume of its own. ``journal verify --witness FILE``
then fails when a chain the witness names is missing, or ends before, or differs at, a head
it names.

What the file proves depends on where it lives: on a volume the database's administrators
cannot reach (another node, an append-only mount, ``chattr +a``, shipped to an object store
with a retention lock), it shows any rewrite of the journal up to its last line; on the
database's own host, under the same administrators, it proves nothing they could not redo.
It never covers the rows after a chain's last signed head (at most
``JOURNAL_CHECKPOINT_SECONDS`` of them, which `gateway.journal.verify` bounds in time).

One line per checkpoint, JSON: ``{"chain", "month", "seq", "head", "signed_at", "key_id",
"signature"}`` (hashes and signature in hex, time in ISO 8601 UTC). Several processes may
append to one file: each line is one ``write`` on a descriptor opened ``O_APPEND``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class WitnessError(ValueError):
    """A witness file cannot be read: the message names the line, never its content."""


@dataclass(frozen=True, slots=True)
class WitnessedHead:
    """A signed chain head as the witness keeps it."""

    chain_id: uuid.UUID
    month: dt.date
    seq: int
    head: bytes
    signed_at: dt.datetime
    key_id: str
    signature: bytes

    def line(self) -> bytes:
        """The head as one line of the witness file (UTF-8 JSON and a newline)."""
        return (
            json.dumps(
                {
                    "chain": str(self.chain_id),
                    "month": self.month.isoformat(),
                    "seq": self.seq,
                    "head": self.head.hex(),
                    "signed_at": self.signed_at.astimezone(dt.UTC).isoformat(),
                    "key_id": self.key_id,
                    "signature": self.signature.hex(),
                },
                separators=(",", ":"),
            ).encode()
            + b"\n"
        )


class FileWitness:
    """Appends signed heads to a file (created, mode 0600, if absent).

    Args:
        path: ``JOURNAL_WITNESS_FILE``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, heads: Iterable[WitnessedHead]) -> None:
        """Append the heads and fsync the file (blocking: run it in a thread).

        Raises:
            OSError: the file cannot be opened or written.
        """
        data = b"".join(head.line() for head in heads)
        if not data:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def read_witness(path: Path) -> list[WitnessedHead]:
    """Every head of a witness file, in the order written.

    A last line without its newline (a write cut by a crash) is ignored.

    Raises:
        OSError: the file cannot be read.
        WitnessError: a complete line is not a witnessed head.
    """
    heads = []
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):
        try:
            fields = json.loads(line)
            heads.append(
                WitnessedHead(
                    chain_id=uuid.UUID(fields["chain"]),
                    month=dt.date.fromisoformat(fields["month"]),
                    seq=int(fields["seq"]),
                    head=bytes.fromhex(fields["head"]),
                    signed_at=dt.datetime.fromisoformat(fields["signed_at"]),
                    key_id=str(fields["key_id"]),
                    signature=bytes.fromhex(fields["signature"]),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise WitnessError(
                f"{path}: line {number} is not a witnessed head ({type(exc).__name__})"
            ) from None
    return heads
