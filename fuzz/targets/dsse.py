"""DSSE envelopes and in-toto statements (`signgate.signatures.dsse`).

Every input is read both as an envelope (JSON, as in a ``.att`` layer or a bundle) and as the
statement bytes inside one.
"""

from __future__ import annotations

from fuzz.harness import refused
from signgate.errors import BundleFormatError
from signgate.signatures import _json
from signgate.signatures.dsse import parse_envelope, parse_statement

ACCEPTED: tuple[type[Exception], ...] = (BundleFormatError,)


def run(data: bytes) -> None:
    with refused(*ACCEPTED):
        statement = parse_statement(data)
        assert statement.subjects
        assert statement.predicate_type
        statement.subject_digests()
    envelope = parse_envelope(_json.loads(data, what="DSSE envelope", error=BundleFormatError))
    assert envelope.signatures
    envelope.pae()
