"""Rows of the journal and the hash chain that links them.

A row is one call: when it ended, who asked (request id, token id, the habilitation's
label, recipient SIRET), what (method, API label, provider), how it went (gRPC status,
API Particulier code, latency) and the HMAC of the person it was about; never an
identity in clear.

Each gateway process writes its rows into chains of its own, one chain per calendar
month (UTC) of the rows, so that a month's partition holds whole chains and dropping it
at the end of the retention cuts none. A chain is a sequence numbered from 1; row *n*'s
hash is SHA-256 of row *n-1*'s hash and of row *n*'s content in an unambiguous
encoding (`content_bytes`). The hash before row 1 is the chain's genesis, derived from
the chain id. Changing, inserting, removing or reordering a row changes the hashes from
that row on; signed checkpoints of the chain heads (`gateway.journal.signing`) make a
re-computed chain, or one cut back, show too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import operator
import struct
import uuid
from dataclasses import dataclass

ENCODING_VERSION = b"apiparticulier-journal/row/v1"
"""Prefix of the hashed encoding of a row that names no habilitation, editor nor delegation (`REFERENCES`)."""
ENCODING_VERSION_2 = b"apiparticulier-journal/row/v2"
"""Prefix of the hashed encoding of a row that names one: v1's, then the references."""
_GENESIS = b"apiparticulier-journal/genesis/v1"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What both the call path (`gateway.journal.recorder.Call`) and a journal row know of a call."""

    request_id: str
    """The call's x-request-id."""
    token_id: str
    """The jti of the caller's token ("" when it had none)."""
    habilitation: str
    """The label of the token's habilitation ("" without a token)."""
    recipient: str
    """SIRET of the public body receiving the data ("" for a method that needs none)."""
    method: str
    """Full gRPC method name."""
    api: str
    """The API label ("" for the gateway's own methods)."""
    provider: str
    """The provider service asked ("" for the gateway's own methods)."""
    status: str
    """gRPC status name, e.g. ``OK`` or ``NOT_FOUND`` (in a row: what the caller got, 00503's if refused)."""
    code: str
    """API Particulier error code ("" on success)."""


@dataclass(frozen=True, slots=True)
class Content(CallFacts):
    """What a row says of one call.

    The `CallFacts`, and:

    - ``entry_id``: unique per call; after a write whose outcome is unknown, it tells whether
      the row reached PostgreSQL;
    - ``occurred_at``: when the answer left (UTC, microseconds);
    - ``latency_us``: the latency in whole microseconds;
    - ``subject_digest``: the HMAC of the normalised subject ("" when the call named nobody);
    - ``habilitation_id``, ``editor_id``, ``delegation_id`` (`REFERENCES`, journal migration 2): the
      registry's ids of the habilitation the call counted against, and of the editor and the
      delegation of an editor token's call; None when unknown, and in the rows written before.
    """

    entry_id: uuid.UUID
    occurred_at: dt.datetime
    latency_us: int
    subject_digest: str
    habilitation_id: str | None = None
    editor_id: str | None = None
    delegation_id: str | None = None

    def values(self) -> tuple[object, ...]:
        """The content's values in `CONTENT_COLUMNS` order."""
        return tuple(getattr(self, column) for column in CONTENT_COLUMNS)


CONTENT_COLUMNS = tuple(column.name for column in dataclasses.fields(Content))
"""The columns of a row's content (`Content`'s fields, in order), as ``journal.calls`` names them."""

ROW_COLUMNS = ("chain_id", "seq", *CONTENT_COLUMNS, "row_hash")
"""Every column of ``journal.calls``, in the order they are written."""

_FIXED_COLUMNS = ("entry_id", "occurred_at", "latency_us")
"""The content's columns encoded as fixed-size fields (`content_bytes`)."""
REFERENCES = ("habilitation_id", "editor_id", "delegation_id")
"""The nullable columns added by journal migration 2, hashed last (`content_bytes`)."""
_TEXT_COLUMNS = tuple(column for column in CONTENT_COLUMNS if column not in (*_FIXED_COLUMNS, *REFERENCES))
"""The content's text columns, hashed in this order after the fixed fields."""
_texts = operator.attrgetter(*_TEXT_COLUMNS)
_references = operator.attrgetter(*REFERENCES)


def month_of(moment: dt.datetime) -> dt.date:
    """The first day of the UTC month of ``moment``: the chain's and the partition's key."""
    utc = moment.astimezone(dt.UTC)
    return dt.date(utc.year, utc.month, 1)


def microseconds(moment: dt.datetime) -> int:
    """``moment`` as whole microseconds since the Unix epoch (exact, unlike a float)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_FIXED = struct.Struct(">I16sIqI16sIqIq")  # chain id, seq, entry id, occurred_at, latency: length-prefixed


def content_bytes(chain_id: uuid.UUID, seq: int, content: Content) -> bytes:
    """The encoding of a row that its hash covers: version, then each column length-prefixed.

    Chain id, position, entry id, time (microseconds since the epoch) and latency come first as
    fixed-size big-endian fields, then the text columns in `CONTENT_COLUMNS` order, UTF-8. A row
    that names none of `REFERENCES` is encoded as every row was before they existed (version v1),
    so the rows written before journal migration 2 keep their hashes; one that names any is
    encoded v2: v1's columns, then each reference as a byte (0 none, 1 given) and, given, its
    length-prefixed UTF-8. Nulling a reference out of a v2 row changes its encoding, and is seen.
    """
    fixed = _FIXED.pack(
        16,
        chain_id.bytes,
        8,
        seq,
        16,
        content.entry_id.bytes,
        8,
        microseconds(content.occurred_at),
        8,
        content.latency_us,
    )
    references = _references(content)
    referenced = references != (None, None, None)
    parts = [ENCODING_VERSION_2 if referenced else ENCODING_VERSION, fixed]
    # One loop, no call per column: this runs for every row written and every row verified.
    for value in _texts(content):
        data = value.encode()
        parts += (len(data).to_bytes(4, "big"), data)
    if referenced:
        for reference in references:
            if reference is None:
                parts.append(b"\x00")
            else:
                data = reference.encode()
                parts += (b"\x01", len(data).to_bytes(4, "big"), data)
    return b"".join(parts)


def row_hash(previous: bytes, chain_id: uuid.UUID, seq: int, content: Content) -> bytes:
    """SHA-256 of the previous row's hash and this row's encoding (32 bytes)."""
    return hashlib.sha256(previous + content_bytes(chain_id, seq, content)).digest()


def genesis(chain_id: uuid.UUID) -> bytes:
    """The hash before a chain's first row."""
    return hashlib.sha256(_GENESIS + chain_id.bytes).digest()


@dataclass(frozen=True, slots=True)
class Head:
    """Where a chain stands: its last row's number and hash (0 and the genesis before any row)."""

    chain_id: uuid.UUID
    month: dt.date
    seq: int
    hash: bytes

    @classmethod
    def start(cls, month: dt.date) -> Head:
        """A new chain for ``month``, before its first row."""
        chain_id = uuid.uuid4()
        return cls(chain_id, month, 0, genesis(chain_id))

    def then(self, content: Content) -> tuple[Head, tuple[object, ...]]:
        """The head after ``content``, and the row to write (`ROW_COLUMNS` order)."""
        seq = self.seq + 1
        digest = row_hash(self.hash, self.chain_id, seq, content)
        return Head(self.chain_id, self.month, seq, digest), (self.chain_id, seq, *content.values(), digest)
