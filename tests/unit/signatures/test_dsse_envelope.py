"""signgate.signatures.dsse: PAE, DSSE envelopes and in-toto statements."""

from __future__ import annotations

import base64
import json

import pytest

from signgate.errors import BundleFormatError
from signgate.signatures.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    DsseEnvelope,
    pae,
    parse_envelope,
    parse_statement,
)

DIGEST = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"


def _statement(**overrides: object) -> dict[str, object]:
    statement: dict[str, object] = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "a.txt", "digest": {"sha256": DIGEST}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }
    statement.update(overrides)
    return statement


def _raw(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_pae_matches_the_dsse_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t\u00e9", b"\x00\xff") == b"DSSEv1 3 t\xc3\xa9 2 \x00\xff"


def test_pae_of_an_empty_payload() -> None:
    assert pae(IN_TOTO_PAYLOAD_TYPE, b"") == b"DSSEv1 28 application/vnd.in-toto+json 0 "


def test_envelope_parses_and_pae_covers_the_decoded_payload() -> None:
    envelope = parse_envelope(
        {
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "payload": base64.b64encode(b"{}").decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(b"sig").decode()}],
        }
    )

    assert envelope == DsseEnvelope(IN_TOTO_PAYLOAD_TYPE, b"{}", (b"sig",))
    assert envelope.pae() == pae(IN_TOTO_PAYLOAD_TYPE, b"{}")


@pytest.mark.parametrize(
    "encoded",
    ["+/+/", "-_-_", "-_8", "-_8=", "+/8"],
    ids=["std", "urlsafe", "urlsafe-unpadded", "urlsafe-padded", "std-unpadded"],
)
def test_envelope_accepts_std_and_urlsafe_base64_padded_or_not(encoded: str) -> None:
    envelope = parse_envelope(
        {"payloadType": "t", "payload": encoded, "signatures": [{"sig": encoded}]}
    )

    assert envelope.payload == base64.b64decode(encoded.replace("-", "+").replace("_", "/") + "==")


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        ([], "dsseEnvelope: expected a JSON object, got an array"),
        ({"payload": "", "signatures": [{"sig": "AA"}]}, "dsseEnvelope.payloadType: missing"),
        (
            {"payloadType": 1, "payload": "", "signatures": [{"sig": "AA"}]},
            "payloadType: expected a string, got a number",
        ),
        (
            {"payloadType": "t", "payload": "a b", "signatures": [{"sig": "AA"}]},
            "payload: not base64",
        ),
        (
            {"payloadType": "t", "payload": "+_", "signatures": [{"sig": "AA"}]},
            "payload: not base64",
        ),
        (
            {"payloadType": "t", "payload": "A", "signatures": [{"sig": "AA"}]},
            "payload: not base64 \\(bad length",
        ),
        (
            {"payloadType": "t", "payload": "AA=", "signatures": [{"sig": "AA"}]},
            "bad length or padding",
        ),
        ({"payloadType": "t", "payload": "", "signatures": []}, "signatures: must not be empty"),
        ({"payloadType": "t", "payload": "", "signatures": "AA"}, "expected an array"),
        ({"payloadType": "t", "payload": "", "signatures": [{"sig": ""}]}, "sig: must not be"),
        ({"payloadType": "t", "payload": "", "signatures": ["AA"]}, r"signatures\[0\]: expected"),
        (
            {"payloadType": "t", "payload": "", "signatures": [{"sig": "AA"}] * 17},
            "17 items, more than the limit of 16",
        ),
        (
            {"payloadType": "\ud800", "payload": "", "signatures": [{"sig": "AA"}]},
            "not valid Unicode",
        ),
    ],
)
def test_malformed_envelope_is_a_bundle_format_error_naming_the_field(
    envelope: object, message: str
) -> None:
    with pytest.raises(BundleFormatError, match=message):
        parse_envelope(envelope)


def test_statement_v1_parses_keeping_the_exact_bytes() -> None:
    raw = _raw(_statement())

    statement = parse_statement(raw)

    assert statement.statement_type == "https://in-toto.io/Statement/v1"
    assert statement.predicate_type == "https://sigstore.dev/cosign/sign/v1"
    assert statement.predicate == {}
    assert statement.raw == raw
    assert [(s.name, dict(s.digests)) for s in statement.subjects] == [
        ("a.txt", {"sha256": DIGEST})
    ]
    assert statement.subject_digests() == {DIGEST}


def test_statement_v01_without_predicate_parses() -> None:
    doc = _statement(_type="https://in-toto.io/Statement/v0.1")
    del doc["predicate"]

    statement = parse_statement(_raw(doc))

    assert statement.predicate is None


def test_cosign_v3_statement_without_subject_name_keeps_annotations() -> None:
    # cosign v3 `sign` writes no subject name and puts `-a key=value` in subject annotations.
    subject = {"digest": {"sha256": DIGEST}, "annotations": {"env": "prod"}}

    statement = parse_statement(_raw(_statement(subject=[subject])))

    assert statement.subjects[0].name == ""
    assert dict(statement.subjects[0].annotations) == {"env": "prod"}


def test_other_digest_algorithms_are_kept_as_given() -> None:
    subject = {"name": "x", "digest": {"sha512": "AB", "gitCommit": "deadbeef"}}

    statement = parse_statement(_raw(_statement(subject=[subject])))

    assert dict(statement.subjects[0].digests) == {"sha512": "AB", "gitCommit": "deadbeef"}
    assert statement.subject_digests() == frozenset()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not valid JSON"),
        (b"\xff", "not valid JSON"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b"[]", "statement: expected a JSON object, got an array"),
        (b'{"_type": "a", "_type": "b"}', "duplicate key '_type'"),
        (
            _raw(_statement()).replace(b'"predicate": {}', b'"predicate": {"a": 1, "a": 2}'),
            "duplicate key 'a'",
        ),
        (_raw(_statement()).replace(b'"predicate": {}', b'"predicate": NaN'), "NaN"),
        (_raw(_statement()).replace(b'"predicate": {}', b'"predicate": 1e999'), "overflows"),
        (_raw(_statement(_type="https://in-toto.io/Statement/v2")), "unsupported statement type"),
        (_raw(_statement(_type=None)), "statement._type: missing"),
        (_raw(_statement(subject=[])), "statement.subject: must not be empty"),
        (_raw(_statement(subject={})), "statement.subject: expected an array"),
        (_raw(_statement(subject=[{"name": "x"}])), r"subject\[0\].digest: missing"),
        (_raw(_statement(subject=[{"digest": {}}])), r"subject\[0\].digest: must not be empty"),
        (
            _raw(_statement(subject=[{"digest": {"sha256": DIGEST.upper()}}])),
            "expected 64 lowercase hex",
        ),
        (_raw(_statement(subject=[{"digest": {"sha256": "abc"}}])), "expected 64 lowercase hex"),
        (_raw(_statement(subject=[{"digest": {"sha256": 1}}])), "sha256: expected a string"),
        (_raw(_statement(subject=[{"name": 1, "digest": {"sha256": DIGEST}}])), "name: expected"),
        (_raw(_statement(predicateType="")), "predicateType: must not be empty"),
        (_raw(_statement(predicateType=["x"])), "predicateType: expected a string"),
        (b"[" * 100_000, "not valid JSON"),
        (
            _raw(_statement(subject=[{"digest": {"sha\n256": 1}}])),
            r"digest\.'sha 256': expected a string",
        ),
    ],
    ids=lambda value: None if isinstance(value, bytes) else value[:30],
)
def test_malformed_statement_is_a_bundle_format_error(raw: bytes, message: str) -> None:
    with pytest.raises(BundleFormatError, match=message) as info:
        parse_statement(raw)

    assert "\n" not in str(info.value)
