"""signgate.signatures.tlog: SETs, inclusion proofs, checkpoints and body consistency, offline."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from signgate.errors import BundleFormatError, TransparencyLogError
from signgate.signatures import _merkle
from signgate.signatures.bundle import SigstoreBundle, parse_bundle
from signgate.signatures.keys import PublicKey, load_public_key_pem
from signgate.signatures.tlog import (
    TlogEntry,
    VerifiedTlogEntry,
    parse_cosign_bundle_annotation,
    verify_entry_body,
    verify_inclusion_proof,
    verify_set,
    verify_tlog_entry,
)
from signgate.signatures.trusted_root import TrustedRoot, trusted_root_from_rekor_key
from support.cosign_key import sign
from support.formats import public_key_pem
from support.memory_sigstore import FakeLog, hashedrekord_body, reference_path, reference_root
from support.vectors import CONTAINERS, REKOR_V1_LOG_ID

TESTDATA = f"{CONTAINERS}/internal/testdata"
Reader = Callable[..., bytes]


def _flip(data: bytes, index: int = -1) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


# --- the legacy keyless vector (containers/image rekor-*) --------------------------------------


@dataclasses.dataclass(frozen=True)
class Keyless:
    entry: TlogEntry
    payload: bytes
    signature: bytes
    certificate: x509.Certificate
    rekor: TrustedRoot

    @property
    def cert_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def keyless(read_vector: Callable[[str], bytes]) -> Keyless:
    return Keyless(
        entry=parse_cosign_bundle_annotation(read_vector(f"{TESTDATA}/rekor-set").decode()),
        payload=read_vector(f"{TESTDATA}/rekor-payload"),
        signature=base64.b64decode(read_vector(f"{TESTDATA}/rekor-sig")),
        certificate=x509.load_pem_x509_certificate(read_vector(f"{TESTDATA}/rekor-cert")),
        rekor=trusted_root_from_rekor_key(read_vector(f"{TESTDATA}/rekor.pub")),
    )


def test_cosign_bundle_annotation_parses(keyless: Keyless) -> None:
    entry = keyless.entry

    assert (entry.kind, entry.kind_version) == ("hashedrekord", "0.0.1")
    assert (entry.log_index, entry.integrated_time) == (8949589, 1670870899)
    assert entry.log_id == REKOR_V1_LOG_ID
    assert entry.inclusion_proof is None
    assert len(keyless.payload) == 270


def test_legacy_set_verifies_with_rekor_pub(keyless: Keyless) -> None:
    verify_set(keyless.entry, keyless.rekor)


def test_legacy_set_verifies_with_the_production_trusted_root(
    keyless: Keyless, production_root: TrustedRoot
) -> None:
    verify_set(keyless.entry, production_root)


def test_legacy_hashedrekord_body_hash_is_the_payload_sha256(keyless: Keyless) -> None:
    body = json.loads(keyless.entry.canonicalized_body)

    assert body["spec"]["data"]["hash"]["value"] == hashlib.sha256(keyless.payload).hexdigest()
    verify_entry_body(
        keyless.entry,
        signature=keyless.signature,
        signed_bytes_sha256=hashlib.sha256(keyless.payload).digest(),
        verifier_der=keyless.cert_der,
    )


def test_legacy_signature_verifies_with_the_certificate_key(keyless: Keyless) -> None:
    key = PublicKey.from_key(keyless.certificate.public_key())

    assert key.verify(keyless.signature, keyless.payload)
    assert not key.verify(keyless.signature, _flip(keyless.payload))


def test_legacy_integrated_time_lies_inside_the_certificate_validity(keyless: Keyless) -> None:
    when = datetime.fromtimestamp(keyless.entry.integrated_time or 0, UTC)

    assert (
        keyless.certificate.not_valid_before_utc <= when <= keyless.certificate.not_valid_after_utc
    )


def test_legacy_entry_verifies_with_its_set_and_vouches_for_integrated_time(
    keyless: Keyless,
) -> None:
    verified = verify_tlog_entry(
        keyless.entry,
        keyless.rekor,
        require_inclusion_proof=False,
        signature=keyless.signature,
        signed_bytes_sha256=hashlib.sha256(keyless.payload).digest(),
        verifier_der=keyless.cert_der,
    )

    assert verified == VerifiedTlogEntry(8949589, 1670870899, REKOR_V1_LOG_ID)


def test_legacy_entry_fails_when_an_inclusion_proof_is_required(keyless: Keyless) -> None:
    with pytest.raises(TransparencyLogError, match="no inclusion proof, and one is required"):
        verify_tlog_entry(
            keyless.entry,
            keyless.rekor,
            require_inclusion_proof=True,
            signature=keyless.signature,
            signed_bytes_sha256=hashlib.sha256(keyless.payload).digest(),
            verifier_der=keyless.cert_der,
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: {"signed_entry_timestamp": _flip(e.signed_entry_timestamp)}, "does not verify"),
        (lambda e: {"integrated_time": e.integrated_time + 1}, "does not verify"),
        (lambda e: {"log_index": e.log_index + 1}, "does not verify"),
        (lambda e: {"canonicalized_body": e.canonicalized_body + b" "}, "does not verify"),
        (lambda e: {"log_id": _flip(e.log_id)}, "untrusted log"),
        (lambda e: {"signed_entry_timestamp": None}, "no signed entry timestamp"),
        (lambda e: {"integrated_time": None}, "no integratedTime"),
        (lambda e: {"integrated_time": 10**20}, "not a representable time"),
    ],
    ids=["set", "time", "index", "body", "log-id", "no-set", "no-time", "absurd-time"],
)
def test_tampered_set_fails(
    keyless: Keyless, change: Callable[[Any], dict[str, Any]], message: str
) -> None:
    entry = dataclasses.replace(keyless.entry, **change(keyless.entry))

    with pytest.raises(TransparencyLogError, match=message):
        verify_set(entry, keyless.rekor)


def test_set_fails_when_the_log_key_was_not_valid_at_integrated_time(keyless: Keyless) -> None:
    (log,) = keyless.rekor.tlogs
    later = dataclasses.replace(log, valid_from=datetime(2023, 1, 1, tzinfo=UTC))
    expired = dataclasses.replace(log, valid_until=datetime(2022, 1, 1, tzinfo=UTC))

    for changed in (later, expired):
        with pytest.raises(TransparencyLogError, match="was not valid at integratedTime"):
            verify_set(keyless.entry, TrustedRoot(tlogs=(changed,)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"signature": b"other"}, "signature is not the signature being verified"),
        ({"verifier_der": b"other"}, "public key or certificate is not the one"),
        ({"signed_bytes_sha256": b"\x00" * 32}, "does not match the signed artifact"),
        ({"signed_bytes_sha256": None}, "no digest was given"),
    ],
)
def test_legacy_body_mismatch_fails(keyless: Keyless, kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "signature": keyless.signature,
        "signed_bytes_sha256": hashlib.sha256(keyless.payload).digest(),
        "verifier_der": keyless.cert_der,
        **kwargs,
    }

    with pytest.raises(TransparencyLogError, match=message):
        verify_entry_body(keyless.entry, **arguments)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["Payload"].update(logID=d["Payload"]["logID"].upper()), "64 lowercase hex"),
        (lambda d: d["Payload"].update(logID="c0d2"), "64 lowercase hex"),
        (lambda d: d["Payload"].update(integratedTime="1670870899"), "expected an integer"),
        (lambda d: d["Payload"].update(logIndex=-1), "below the minimum 0"),
        (lambda d: d["Payload"].update(body="not base64!"), "Payload.body: not base64"),
        (lambda d: d["Payload"].update(body="AAAA"), "body is not valid JSON"),
        (lambda d: d.pop("Payload"), "Payload: missing"),
        (lambda d: d.pop("SignedEntryTimestamp"), "SignedEntryTimestamp: missing"),
    ],
)
def test_malformed_cosign_bundle_annotation_is_a_bundle_format_error(
    read_vector: Callable[[str], bytes], mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    document = json.loads(read_vector(f"{TESTDATA}/rekor-set"))
    mutate(document)

    with pytest.raises(BundleFormatError, match=message):
        parse_cosign_bundle_annotation(json.dumps(document))


# --- conformance bundles against the production trusted root ---------------------------------


@pytest.fixture(scope="module")
def key_case(conformance: Reader) -> tuple[SigstoreBundle, bytes]:
    """managed-key-happy-path and the DER of its key.pub."""
    key = load_public_key_pem(conformance("managed-key-happy-path", "key.pub"))
    return parse_bundle(conformance("managed-key-happy-path")), key.der


def _verify_key_case(
    bundle: SigstoreBundle, key_der: bytes, artifact: bytes, root: TrustedRoot, **changes: Any
) -> VerifiedTlogEntry:
    entry = dataclasses.replace(bundle.tlog_entries[0], **changes)
    return verify_tlog_entry(
        entry,
        root,
        require_inclusion_proof=True,
        signature=bundle.signature,
        signed_bytes_sha256=hashlib.sha256(artifact).digest(),
        verifier_der=key_der,
    )


def test_managed_key_entry_verifies_set_proof_checkpoint_and_body(
    key_case: tuple[SigstoreBundle, bytes], artifact: bytes, production_root: TrustedRoot
) -> None:
    bundle, key_der = key_case

    verified = _verify_key_case(bundle, key_der, artifact, production_root)

    assert verified == VerifiedTlogEntry(771488337, 1766077479, REKOR_V1_LOG_ID)


def test_managed_key_set_and_inclusion_proof_verify_separately(
    key_case: tuple[SigstoreBundle, bytes], production_root: TrustedRoot
) -> None:
    entry = key_case[0].tlog_entries[0]

    verify_set(entry, production_root)
    verify_inclusion_proof(entry, production_root)


def test_dsse_bundle_entry_verifies(conformance: Reader, production_root: TrustedRoot) -> None:
    bundle = parse_bundle(conformance("happy-path-intoto-in-dsse-v3"))
    assert bundle.dsse is not None

    verified = verify_tlog_entry(
        bundle.tlog_entries[0],
        production_root,
        require_inclusion_proof=True,
        signature=bundle.dsse.signatures[0],
        signed_bytes_sha256=None,
        verifier_der=bundle.certificate_chain[0],
        dsse_payload_sha256=hashlib.sha256(bundle.dsse.payload).digest(),
    )

    assert verified.log_index == 155690850
    assert verified.integrated_time == 1734374576


def test_keyless_v03_entry_verifies_with_its_certificate(
    conformance: Reader, artifact: bytes, production_root: TrustedRoot
) -> None:
    bundle = parse_bundle(conformance("happy-path-v0.3"))

    verified = verify_tlog_entry(
        bundle.tlog_entries[0],
        production_root,
        require_inclusion_proof=True,
        signature=bundle.signature,
        signed_bytes_sha256=hashlib.sha256(artifact).digest(),
        verifier_der=bundle.certificate_chain[0],
    )

    assert verified.integrated_time == 1710869186


def test_signature_mismatch_bundle_fails_the_body_check(
    conformance: Reader, artifact: bytes, production_root: TrustedRoot
) -> None:
    bundle = parse_bundle(conformance("signature-mismatch_fail"))
    entry = bundle.tlog_entries[0]
    # The log entry itself is genuine; only the bundle's signature was altered.
    verify_set(entry, production_root)
    verify_inclusion_proof(entry, production_root)

    with pytest.raises(TransparencyLogError, match="signature is not the signature being"):
        verify_entry_body(
            entry,
            signature=bundle.signature,
            signed_bytes_sha256=hashlib.sha256(artifact).digest(),
            verifier_der=bundle.certificate_chain[0],
        )


def test_dsse_invalid_sig_bundle_fails_the_body_check(
    conformance: Reader, production_root: TrustedRoot
) -> None:
    bundle = parse_bundle(conformance("dsse-invalid-sig_fail"))
    assert bundle.dsse is not None

    with pytest.raises(TransparencyLogError, match="no signature in the DSSE entry matches"):
        verify_tlog_entry(
            bundle.tlog_entries[0],
            production_root,
            require_inclusion_proof=True,
            signature=bundle.dsse.signatures[0],
            signed_bytes_sha256=None,
            verifier_der=bundle.certificate_chain[0],
            dsse_payload_sha256=hashlib.sha256(bundle.dsse.payload).digest(),
        )


def test_dsse_entry_with_another_payload_hash_fails(
    conformance: Reader, production_root: TrustedRoot
) -> None:
    bundle = parse_bundle(conformance("happy-path-intoto-in-dsse-v3"))
    assert bundle.dsse is not None

    with pytest.raises(TransparencyLogError, match="DSSE payloadHash does not match"):
        verify_entry_body(
            bundle.tlog_entries[0],
            signature=bundle.dsse.signatures[0],
            signed_bytes_sha256=None,
            verifier_der=bundle.certificate_chain[0],
            dsse_payload_sha256=hashlib.sha256(b"another statement").digest(),
        )


def _proof_change(entry: TlogEntry, **changes: Any) -> dict[str, Any]:
    assert entry.inclusion_proof is not None
    return {"inclusion_proof": dataclasses.replace(entry.inclusion_proof, **changes)}


def _checkpoint_sig_flipped(entry: TlogEntry) -> dict[str, Any]:
    assert entry.inclusion_proof is not None
    note, _, signature_line = entry.inclusion_proof.checkpoint.rstrip("\n").rpartition(" ")
    blob = base64.b64decode(signature_line)
    flipped = base64.b64encode(_flip(blob)).decode()
    return _proof_change(entry, checkpoint=f"{note} {flipped}\n")


def _checkpoint_hint_changed(entry: TlogEntry) -> dict[str, Any]:
    assert entry.inclusion_proof is not None
    note, _, signature_line = entry.inclusion_proof.checkpoint.rstrip("\n").rpartition(" ")
    blob = base64.b64decode(signature_line)
    changed = base64.b64encode(b"\x00\x00\x00\x00" + blob[4:]).decode()
    return _proof_change(entry, checkpoint=f"{note} {changed}\n")


def _hashes(entry: TlogEntry) -> tuple[bytes, ...]:
    assert entry.inclusion_proof is not None
    return entry.inclusion_proof.hashes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda e: _proof_change(
                e, hashes=(*_hashes(e)[:3], _flip(_hashes(e)[3]), *_hashes(e)[4:])
            ),
            "does not lead to the root hash",
        ),
        (lambda e: _proof_change(e, hashes=_hashes(e)[:-1]), "has 19 hashes, .* needs 20"),
        (lambda e: _proof_change(e, log_index=e.inclusion_proof.log_index - 1), "root hash"),
        (lambda e: {"canonicalized_body": e.canonicalized_body + b" "}, "root hash"),
        (_checkpoint_sig_flipped, "checkpoint signature does not verify"),
        (_checkpoint_hint_changed, "key hint c0d23d6a not found"),
        (
            lambda e: _proof_change(
                e, checkpoint=e.inclusion_proof.checkpoint.replace("649584076", "649584077", 1)
            ),
            "checkpoint is for tree size 649584077",
        ),
        (
            lambda e: _proof_change(
                e, checkpoint=e.inclusion_proof.checkpoint.replace("\n\n", "\n")
            ),
            "not a signed note",
        ),
        (lambda e: {"inclusion_proof": None}, "no inclusion proof"),
        (lambda e: {"log_id": b"\x00" * 32}, "untrusted log"),
    ],
    ids=[
        "flipped-hash",
        "short-path",
        "wrong-index",
        "other-body",
        "checkpoint-signature",
        "checkpoint-key-hint",
        "checkpoint-other-tree",
        "checkpoint-format",
        "no-proof",
        "wrong-log-id",
    ],
)
def test_tampered_inclusion_proof_or_checkpoint_fails(
    key_case: tuple[SigstoreBundle, bytes],
    production_root: TrustedRoot,
    change: Callable[[Any], dict[str, Any]],
    message: str,
) -> None:
    entry = key_case[0].tlog_entries[0]

    with pytest.raises(TransparencyLogError, match=message):
        verify_inclusion_proof(dataclasses.replace(entry, **change(entry)), production_root)


def test_a_checkpoint_from_another_tree_is_refused(
    key_case: tuple[SigstoreBundle, bytes], conformance: Reader, production_root: TrustedRoot
) -> None:
    entry = key_case[0].tlog_entries[0]
    other = parse_bundle(conformance("happy-path-intoto-in-dsse-v3")).tlog_entries[0]
    assert entry.inclusion_proof is not None
    assert other.inclusion_proof is not None
    proof = dataclasses.replace(entry.inclusion_proof, checkpoint=other.inclusion_proof.checkpoint)

    with pytest.raises(TransparencyLogError, match="checkpoint is for tree size 33786589"):
        verify_inclusion_proof(dataclasses.replace(entry, inclusion_proof=proof), production_root)


def test_entry_with_neither_set_nor_proof_fails(
    key_case: tuple[SigstoreBundle, bytes], artifact: bytes, production_root: TrustedRoot
) -> None:
    bundle, key_der = key_case
    entry = dataclasses.replace(
        bundle.tlog_entries[0], signed_entry_timestamp=None, inclusion_proof=None
    )

    with pytest.raises(TransparencyLogError, match="neither a signed entry timestamp nor"):
        verify_tlog_entry(
            entry,
            production_root,
            require_inclusion_proof=False,
            signature=bundle.signature,
            signed_bytes_sha256=hashlib.sha256(artifact).digest(),
            verifier_der=key_der,
        )


def test_entry_with_only_a_proof_verifies_but_vouches_for_no_time(
    key_case: tuple[SigstoreBundle, bytes], artifact: bytes, production_root: TrustedRoot
) -> None:
    bundle, key_der = key_case

    verified = _verify_key_case(
        bundle, key_der, artifact, production_root, signed_entry_timestamp=None
    )

    assert verified.integrated_time is None


def test_a_tampered_set_fails_even_when_the_proof_is_good(
    key_case: tuple[SigstoreBundle, bytes], artifact: bytes, production_root: TrustedRoot
) -> None:
    bundle, key_der = key_case
    entry = bundle.tlog_entries[0]
    assert entry.signed_entry_timestamp is not None

    with pytest.raises(TransparencyLogError, match="signed entry timestamp does not verify"):
        _verify_key_case(
            bundle,
            key_der,
            artifact,
            production_root,
            signed_entry_timestamp=_flip(entry.signed_entry_timestamp),
        )


def test_unsupported_entry_kind_is_refused(
    key_case: tuple[SigstoreBundle, bytes], artifact: bytes, production_root: TrustedRoot
) -> None:
    bundle, key_der = key_case

    with pytest.raises(TransparencyLogError, match=r"unsupported entry kind intoto 0\.0\.2"):
        _verify_key_case(
            bundle, key_der, artifact, production_root, kind="intoto", kind_version="0.0.2"
        )
    # difference: rekor-v2 -- Rekor v2 entries (hashedrekord/dsse 0.0.2) are not checked yet.
    with pytest.raises(TransparencyLogError, match=r"unsupported entry kind hashedrekord 0\.0\.2"):
        _verify_key_case(
            bundle, key_der, artifact, production_root, kind="hashedrekord", kind_version="0.0.2"
        )


def test_entry_whose_body_is_another_kind_than_claimed_is_refused(
    key_case: tuple[SigstoreBundle, bytes], artifact: bytes, production_root: TrustedRoot
) -> None:
    bundle, key_der = key_case

    with pytest.raises(
        TransparencyLogError, match=r"body is hashedrekord 0\.0\.1, the entry claims dsse"
    ):
        _verify_key_case(bundle, key_der, artifact, production_root, kind="dsse")


# --- synthetic logs: every tree shape, Ed25519 checkpoints, key-signed bodies ----------------


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33])
def test_inclusion_proof_matches_the_rfc6962_reference_for_every_leaf(size: int) -> None:
    leaves = [b"leaf %d" % i for i in range(size)]
    root = reference_root(leaves)

    for index in range(size):
        computed = _merkle.root_from_inclusion_proof(
            index, size, _merkle.leaf_hash(leaves[index]), reference_path(index, leaves)
        )
        assert computed == root


@settings(database=None, deadline=None, max_examples=50)
@given(size=st.integers(1, 300), data=st.data())
def test_inclusion_proof_matches_the_reference_for_random_trees(size: int, data: Any) -> None:
    index = data.draw(st.integers(0, size - 1))
    leaves = [b"%d" % i for i in range(size)]
    path = reference_path(index, leaves)

    root = _merkle.root_from_inclusion_proof(index, size, _merkle.leaf_hash(leaves[index]), path)

    assert root == reference_root(leaves)
    if path:
        wrong = [_flip(path[0]), *path[1:]]
        assert (
            _merkle.root_from_inclusion_proof(index, size, _merkle.leaf_hash(leaves[index]), wrong)
            != root
        )


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (-1, 5)])
def test_inclusion_proof_index_outside_the_tree_fails(index: int, size: int) -> None:
    with pytest.raises(TransparencyLogError, match="outside a tree"):
        _merkle.root_from_inclusion_proof(index, size, b"\x00" * 32, [])


def _fill(log: FakeLog, count: int) -> None:
    for i in range(count):
        log.append(b'{"entry": %d}' % i)


def test_ed25519_log_checkpoint_and_proof_verify(ed25519_log: FakeLog) -> None:
    _fill(ed25519_log, 11)

    verify_inclusion_proof(ed25519_log.entry(6, with_set=False), ed25519_log.trusted_root())


def test_ed25519_log_checkpoint_with_a_wrong_signature_fails(ed25519_log: FakeLog) -> None:
    _fill(ed25519_log, 3)
    entry = ed25519_log.entry(1, with_set=False)
    assert entry.inclusion_proof is not None
    other = FakeLog(ed25519.Ed25519PrivateKey.generate(), name=ed25519_log.name)
    forged = other.sign_checkpoint(3, entry.inclusion_proof.root_hash)
    # The forger's line carries the forger's hint; give it the real log's hint.
    forged_line = base64.b64decode(forged.rstrip("\n").rpartition(" ")[2])
    real_hint_line = base64.b64encode(ed25519_log.log_id[:4] + forged_line[4:]).decode()
    forged = forged.rstrip("\n").rpartition(" ")[0] + " " + real_hint_line + "\n"
    tampered = dataclasses.replace(
        entry, inclusion_proof=dataclasses.replace(entry.inclusion_proof, checkpoint=forged)
    )

    with pytest.raises(TransparencyLogError, match="checkpoint signature does not verify"):
        verify_inclusion_proof(tampered, ed25519_log.trusted_root())


def test_witness_cosignatures_and_extension_lines_are_tolerated(ecdsa_log: FakeLog) -> None:
    _fill(ecdsa_log, 5)
    entry = ecdsa_log.entry(4)
    assert entry.inclusion_proof is not None
    proof = entry.inclusion_proof
    checkpoint = ecdsa_log.sign_checkpoint(proof.tree_size, proof.root_hash, extra="Timestamp: 1\n")
    witness = base64.b64encode(b"\x01\x02\x03\x04" + b"\x00" * 64).decode()
    checkpoint += f"\u2014 witness.example {witness}\n"
    entry = dataclasses.replace(
        entry, inclusion_proof=dataclasses.replace(proof, checkpoint=checkpoint)
    )

    verify_inclusion_proof(entry, ecdsa_log.trusted_root())


@pytest.mark.parametrize(
    ("checkpoint", "message"),
    [
        ("origin\n1\nAAAA\n", "not a signed note"),
        ("origin\n01\nAAAA\n\n\u2014 n AAAAAAAA\n", "tree size is not a number"),
        ("origin\n1\n\n\u2014 n AAAAAAAA\n", "needs origin, tree size and root hash"),
        ("origin\n1\n%%%%\n\n\u2014 n AAAAAAAA\n", "root hash is not base64"),
        ("origin\n1\nAAAA\n\n- n AAAAAAAA\n", "signature line is malformed"),
        ("origin\n1\nAAAA\n\n\u2014 n AAAA\n", "signature is too short"),
        ("origin\n1\nAAAA\n\n\u2014 AAAAAAAA\n", "signature line is malformed"),
    ],
)
def test_malformed_checkpoints_fail(ecdsa_log: FakeLog, checkpoint: str, message: str) -> None:
    _fill(ecdsa_log, 1)
    entry = ecdsa_log.entry(0)
    assert entry.inclusion_proof is not None
    entry = dataclasses.replace(
        entry, inclusion_proof=dataclasses.replace(entry.inclusion_proof, checkpoint=checkpoint)
    )

    with pytest.raises(TransparencyLogError, match=message):
        verify_inclusion_proof(entry, ecdsa_log.trusted_root())


def test_ed25519ph_key_signed_hashedrekord_entry_verifies_end_to_end(ecdsa_log: FakeLog) -> None:
    # cosign signs hashedrekord with Ed25519ph when the key is Ed25519.
    signer = ed25519.Ed25519PrivateKey.generate()
    artifact = b"the artifact"
    signature = sign(signer, artifact, prehash_ed25519=True)
    key = load_public_key_pem(public_key_pem(signer))
    index = ecdsa_log.append(
        hashedrekord_body(signature, public_key_pem(signer), hashlib.sha256(artifact).digest())
    )
    entry = ecdsa_log.entry(index)

    assert key.verify(signature, artifact)
    verified = verify_tlog_entry(
        entry,
        ecdsa_log.trusted_root(),
        require_inclusion_proof=True,
        signature=signature,
        signed_bytes_sha256=hashlib.sha256(artifact).digest(),
        verifier_der=key.der,
    )
    assert verified == VerifiedTlogEntry(index, 1_700_000_000, ecdsa_log.log_id)


def test_an_entry_from_another_log_with_a_valid_set_is_untrusted(ecdsa_log: FakeLog) -> None:
    other = FakeLog(ec.generate_private_key(ec.SECP256R1()))
    _fill(ecdsa_log, 2)

    with pytest.raises(TransparencyLogError, match="untrusted log"):
        verify_set(ecdsa_log.entry(1), other.trusted_root())


def test_a_set_signed_by_another_key_under_the_right_log_id_fails(ecdsa_log: FakeLog) -> None:
    impostor = FakeLog(ec.generate_private_key(ec.SECP256R1()))
    impostor.log_id = ecdsa_log.log_id  # claims to be the trusted log
    _fill(impostor, 2)

    with pytest.raises(TransparencyLogError, match="signed entry timestamp does not verify"):
        verify_set(impostor.entry(1), ecdsa_log.trusted_root())


def test_set_and_proof_of_a_malformed_body_still_fail_the_body_check(ecdsa_log: FakeLog) -> None:
    index = ecdsa_log.append(b'{"apiVersion":"0.0.1","kind":"hashedrekord","spec":[]}')

    with pytest.raises(TransparencyLogError, match=r"body\.spec: expected a JSON object"):
        verify_tlog_entry(
            ecdsa_log.entry(index),
            ecdsa_log.trusted_root(),
            require_inclusion_proof=True,
            signature=b"s",
            signed_bytes_sha256=b"\x00" * 32,
            verifier_der=b"k",
        )
