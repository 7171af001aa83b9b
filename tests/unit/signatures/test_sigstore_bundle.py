"""signgate.signatures.bundle: parsing Sigstore bundles v0.1-v0.3 and their structural rules."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from signgate.errors import BundleFormatError
from signgate.signatures.bundle import parse_bundle
from signgate.signatures.dsse import IN_TOTO_PAYLOAD_TYPE
from signgate.signatures.keys import load_public_key_pem

Reader = Callable[..., bytes]


@pytest.fixture
def key_bundle(conformance: Reader) -> dict[str, Any]:
    """managed-key-happy-path as a mutable document (v0.3, publicKey, messageSignature)."""
    return json.loads(conformance("managed-key-happy-path"))  # type: ignore[no-any-return]


@pytest.fixture
def dsse_bundle(conformance: Reader) -> dict[str, Any]:
    """happy-path-intoto-in-dsse-v3 as a mutable document (v0.3, certificate, DSSE)."""
    return json.loads(conformance("happy-path-intoto-in-dsse-v3"))  # type: ignore[no-any-return]


@pytest.fixture
def v01_bundle(conformance: Reader) -> dict[str, Any]:
    """signature-mismatch_fail: a structurally valid v0.1 bundle with x509CertificateChain."""
    return json.loads(conformance("signature-mismatch_fail"))  # type: ignore[no-any-return]


def _parse(document: dict[str, Any]) -> Any:
    return parse_bundle(json.dumps(document).encode())


def test_managed_key_bundle_parses(conformance: Reader, artifact: bytes) -> None:
    raw = conformance("managed-key-happy-path")
    key = load_public_key_pem(conformance("managed-key-happy-path", "key.pub"))

    bundle = parse_bundle(raw)

    assert bundle.raw == raw
    assert bundle.media_type == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle.version == (0, 3)
    assert bundle.public_key_hint == key.key_id
    assert bundle.certificate_chain == ()
    assert bundle.dsse is None
    assert bundle.message_signature is not None
    assert bundle.message_signature.digest_algorithm == "SHA2_256"
    assert bundle.message_signature.digest == hashlib.sha256(artifact).digest()
    assert bundle.signature == bundle.message_signature.signature
    assert len(bundle.rfc3161_timestamps) == 1
    assert bundle.rfc3161_timestamps[0].startswith(b"\x30")  # DER SEQUENCE
    (entry,) = bundle.tlog_entries
    assert (entry.log_index, entry.kind, entry.kind_version) == (771488337, "hashedrekord", "0.0.1")
    assert entry.integrated_time == 1766077479
    assert entry.inclusion_proof is not None
    assert entry.inclusion_proof.log_index == 649584075
    assert entry.inclusion_proof.tree_size == 649584076
    assert len(entry.inclusion_proof.hashes) == 20


def test_keyless_v03_bundle_with_the_legacy_media_type_parses(conformance: Reader) -> None:
    bundle = parse_bundle(conformance("happy-path-v0.3"))

    assert bundle.media_type == "application/vnd.dev.sigstore.bundle+json;version=0.3"
    assert bundle.version == (0, 3)
    assert bundle.public_key_hint is None
    assert len(bundle.certificate_chain) == 1
    assert bundle.certificate_chain[0].startswith(b"\x30\x82")


def test_dsse_bundle_parses_with_one_signature(conformance: Reader) -> None:
    bundle = parse_bundle(conformance("happy-path-intoto-in-dsse-v3"))

    assert bundle.message_signature is None
    assert bundle.dsse is not None
    assert bundle.dsse.payload_type == IN_TOTO_PAYLOAD_TYPE
    assert bundle.signature == bundle.dsse.signatures[0]
    assert bundle.tlog_entries[0].kind == "dsse"


def test_v01_bundle_with_a_certificate_chain_parses(conformance: Reader) -> None:
    bundle = parse_bundle(conformance("signature-mismatch_fail"))

    assert bundle.version == (0, 1)
    assert len(bundle.certificate_chain) == 1


@pytest.mark.parametrize(
    "case",
    [
        "managed-key-happy-path",
        "managed-key-wrong-key_fail",
        "happy-path-v0.3",
        "happy-path-intoto-in-dsse-v3",
        "dsse-invalid-sig_fail",
        "signature-mismatch_fail",
    ],
)
def test_every_conformance_bundle_is_well_formed(conformance: Reader, case: str) -> None:
    # The _fail cases break a cryptographic step, never the format.
    assert parse_bundle(conformance(case)).tlog_entries


@pytest.mark.parametrize(
    ("media_type", "version"),
    [
        ("application/vnd.dev.sigstore.bundle+json;version=0.1", (0, 1)),
        ("application/vnd.dev.sigstore.bundle+json;version=0.2", (0, 2)),
        ("application/vnd.dev.sigstore.bundle.v0.2+json", (0, 2)),
    ],
)
def test_older_media_types_parse(
    dsse_bundle: dict[str, Any], media_type: str, version: tuple[int, int]
) -> None:
    # An inclusion proof and a SET satisfy every version's rule.
    dsse_bundle["mediaType"] = media_type

    assert _parse(dsse_bundle).version == version


@pytest.mark.parametrize(
    ("media_type", "message"),
    [
        ("application/vnd.dev.sigstore.bundle.v0.4+json", "unsupported bundle version 0.4"),
        ("application/vnd.dev.sigstore.bundle.v1.0+json", "unsupported bundle version 1.0"),
        (
            "application/vnd.dev.sigstore.bundle+json;version=0.4",
            "not a Sigstore bundle media type",
        ),
        ("application/json", "not a Sigstore bundle media type"),
        ("", "mediaType: must not be empty"),
        (None, "mediaType: missing"),
    ],
)
def test_unknown_or_newer_media_types_are_refused(
    key_bundle: dict[str, Any], media_type: str | None, message: str
) -> None:
    key_bundle["mediaType"] = media_type

    with pytest.raises(BundleFormatError, match=message):
        _parse(key_bundle)


def test_verification_material_needs_exactly_one_key_source(key_bundle: dict[str, Any]) -> None:
    material = key_bundle["verificationMaterial"]
    del material["publicKey"]
    with pytest.raises(BundleFormatError, match=r"exactly one of .* \(found none\)"):
        _parse(key_bundle)

    material["publicKey"] = {"hint": "AA=="}
    material["certificate"] = {"rawBytes": "AA=="}
    with pytest.raises(BundleFormatError, match=r"found publicKey, certificate"):
        _parse(key_bundle)


def test_v03_bundle_must_not_carry_a_certificate_chain(
    dsse_bundle: dict[str, Any], v01_bundle: dict[str, Any]
) -> None:
    material = dsse_bundle["verificationMaterial"]
    del material["certificate"]
    material["x509CertificateChain"] = v01_bundle["verificationMaterial"]["x509CertificateChain"]

    with pytest.raises(BundleFormatError, match=r"not allowed in a v0\.3 bundle"):
        _parse(dsse_bundle)


def test_v01_entries_need_an_inclusion_promise(v01_bundle: dict[str, Any]) -> None:
    del v01_bundle["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]

    with pytest.raises(BundleFormatError, match=r"tlogEntries\[0\]: a v0.1 bundle needs an incl"):
        _parse(v01_bundle)


@pytest.mark.parametrize("media_type", ["v0.2", "v0.3"])
def test_later_entries_need_an_inclusion_proof(key_bundle: dict[str, Any], media_type: str) -> None:
    key_bundle["mediaType"] = f"application/vnd.dev.sigstore.bundle.{media_type}+json"
    del key_bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]

    with pytest.raises(BundleFormatError, match=f"a {media_type} bundle needs an inclusionProof"):
        _parse(key_bundle)


def test_a_bundle_without_tlog_entries_parses(key_bundle: dict[str, Any]) -> None:
    # Key-signed with --tlog-upload=false: the verifier decides whether that is acceptable.
    del key_bundle["verificationMaterial"]["tlogEntries"]

    assert _parse(key_bundle).tlog_entries == ()


def test_content_must_be_exactly_one_of_message_signature_and_dsse(
    key_bundle: dict[str, Any], dsse_bundle: dict[str, Any]
) -> None:
    both = copy.deepcopy(key_bundle)
    both["dsseEnvelope"] = dsse_bundle["dsseEnvelope"]
    with pytest.raises(BundleFormatError, match=r"exactly one of .* \(found both\)"):
        _parse(both)

    del key_bundle["messageSignature"]
    with pytest.raises(BundleFormatError, match=r"\(found neither\)"):
        _parse(key_bundle)


def test_dsse_envelope_in_a_bundle_needs_exactly_one_signature(
    dsse_bundle: dict[str, Any],
) -> None:
    signatures = dsse_bundle["dsseEnvelope"]["signatures"]
    signatures.append(signatures[0])

    with pytest.raises(BundleFormatError, match="exactly one signature, found 2"):
        _parse(dsse_bundle)


@pytest.mark.parametrize(
    ("where", "count", "message"),
    [
        ("tlogEntries", 65, "65 items, more than the limit of 64"),
        ("timestamps", 33, "33 items, more than the limit of 32"),
        ("certificates", 11, "11 items, more than the limit of 10"),
    ],
)
def test_repeated_fields_are_capped(
    key_bundle: dict[str, Any], v01_bundle: dict[str, Any], where: str, count: int, message: str
) -> None:
    if where == "tlogEntries":
        entries = key_bundle["verificationMaterial"]["tlogEntries"]
        entries[:] = entries * count
        document = key_bundle
    elif where == "timestamps":
        stamps = key_bundle["verificationMaterial"]["timestampVerificationData"][
            "rfc3161Timestamps"
        ]
        stamps[:] = stamps * count
        document = key_bundle
    else:
        chain = v01_bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]
        chain[:] = chain * count
        document = v01_bundle

    with pytest.raises(BundleFormatError, match=message):
        _parse(document)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("771488337", 771488337),
        (771488337, 771488337),
        ("0", 0),
        ("9223372036854775807", 9223372036854775807),
        ("0771488337", None),
        ("+1", None),
        ("1.0", None),
        (1.0, None),
        (" 1", None),
        ("-1", None),
        ("9223372036854775808", None),
        (True, None),
        ("", None),
        ([], None),
    ],
)
def test_int64_fields_are_parsed_strictly(
    key_bundle: dict[str, Any], value: object, accepted: int | None
) -> None:
    key_bundle["verificationMaterial"]["tlogEntries"][0]["logIndex"] = value

    if accepted is None:
        with pytest.raises(BundleFormatError, match=r"tlogEntries\[0\]\.logIndex"):
            _parse(key_bundle)
    else:
        assert _parse(key_bundle).tlog_entries[0].log_index == accepted


def test_zero_or_absent_integrated_time_means_none(key_bundle: dict[str, Any]) -> None:
    entry = key_bundle["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = "0"
    assert _parse(key_bundle).tlog_entries[0].integrated_time is None

    del entry["integratedTime"]
    assert _parse(key_bundle).tlog_entries[0].integrated_time is None


def test_message_digest_is_optional(key_bundle: dict[str, Any]) -> None:
    del key_bundle["messageSignature"]["messageDigest"]

    message = _parse(key_bundle).message_signature

    assert (message.digest_algorithm, message.digest) == ("", b"")


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ({"algorithm": "MD5", "digest": "AAAA"}, "unsupported digest algorithm 'MD5'"),
        ({"algorithm": "SHA2_256", "digest": "AAAA"}, "3 bytes, SHA2_256 has 32"),
        ({"algorithm": 1, "digest": "AAAA"}, "algorithm: expected a string"),
    ],
)
def test_bad_message_digest_is_refused(
    key_bundle: dict[str, Any], digest: dict[str, object], message: str
) -> None:
    key_bundle["messageSignature"]["messageDigest"] = digest

    with pytest.raises(BundleFormatError, match=message):
        _parse(key_bundle)


@pytest.mark.parametrize("hint", ["not base64!", "", None])
def test_a_hint_that_is_not_base64_is_no_hint(key_bundle: dict[str, Any], hint: object) -> None:
    key_bundle["verificationMaterial"]["publicKey"] = {"hint": hint}

    assert _parse(key_bundle).public_key_hint is None


def test_a_certificate_that_is_not_der_is_refused(dsse_bundle: dict[str, Any]) -> None:
    dsse_bundle["verificationMaterial"]["certificate"]["rawBytes"] = base64.b64encode(
        b"not a certificate"
    ).decode()

    with pytest.raises(BundleFormatError, match=r"certificate\.rawBytes: not a DER X\.509"):
        _parse(dsse_bundle)


def test_a_certificate_with_an_invalid_version_is_refused(dsse_bundle: dict[str, Any]) -> None:
    # Found by scripts/fuzz: cryptography raises InvalidVersion (not a ValueError) for a version
    # other than v1-v3, which escaped prepare() and made the whole image an internal error.
    certificate = dsse_bundle["verificationMaterial"]["certificate"]
    der = base64.b64decode(certificate["rawBytes"])
    assert der.count(b"\xa0\x03\x02\x01\x02") == 1
    certificate["rawBytes"] = base64.b64encode(
        der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x42")
    ).decode()

    with pytest.raises(BundleFormatError, match=r"certificate\.rawBytes: not a DER X\.509"):
        _parse(dsse_bundle)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("canonicalizedBody"), r"tlogEntries\[0\].canonicalizedBody: missing"),
        (lambda e: e["logId"].update(keyId="%%%"), r"logId.keyId: not base64"),
        (lambda e: e.pop("kindVersion"), r"kindVersion: missing"),
        (lambda e: e["kindVersion"].update(kind=""), r"kindVersion.kind: must not be empty"),
        (
            lambda e: e["inclusionProof"].update(rootHash="AAAA"),
            r"inclusionProof.rootHash: 3 bytes, expected 32",
        ),
        (
            lambda e: e["inclusionProof"]["hashes"].append("AAAA"),
            r"inclusionProof.hashes\[20\]: 3 bytes, expected 32",
        ),
        (
            lambda e: e["inclusionProof"]["hashes"].append(7),
            r"hashes\[20\]: expected a base64 string, got a number",
        ),
        (
            lambda e: e["inclusionProof"].update(logIndex="649584076"),
            r"inclusionProof.logIndex: 649584076 is not inside a tree of size 649584076",
        ),
        (
            lambda e: e["inclusionProof"].update(treeSize="0"),
            r"inclusionProof.treeSize: 0 is below the minimum 1",
        ),
        (lambda e: e["inclusionProof"].pop("checkpoint"), r"inclusionProof.checkpoint: missing"),
        (
            lambda e: e["inclusionPromise"].update(signedEntryTimestamp=[]),
            r"signedEntryTimestamp: expected a string",
        ),
        (
            lambda e: e.update(integratedTime="99999999999999"),
            r"integratedTime: 99999999999999 is not a plausible time",
        ),
    ],
)
def test_malformed_tlog_entries_name_the_field(
    key_bundle: dict[str, Any], mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    mutate(key_bundle["verificationMaterial"]["tlogEntries"][0])

    with pytest.raises(BundleFormatError, match=message):
        _parse(key_bundle)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "sigstore bundle is not valid JSON"),
        (b"{", "sigstore bundle is not valid JSON"),
        (b"null", "expected a JSON object, got null"),
        (b'{"mediaType": "a", "mediaType": "b"}', "duplicate key 'mediaType'"),
        (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}', "verificationMat"),
    ],
)
def test_malformed_bundle_bytes_are_refused_with_a_reason(raw: bytes, message: str) -> None:
    with pytest.raises(BundleFormatError, match=message):
        parse_bundle(raw)


def test_unknown_fields_are_tolerated(key_bundle: dict[str, Any]) -> None:
    key_bundle["extension"] = {"anything": [1, 2]}
    key_bundle["verificationMaterial"]["tlogEntries"][0]["future"] = True

    assert _parse(key_bundle).version == (0, 3)
