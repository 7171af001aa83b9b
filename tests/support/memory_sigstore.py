"""An in-memory Sigstore for the signature-core unit tests: a Rekor-shaped log, a Fulcio CA with
its CT log, and cosign-shaped keyless signatures logged in them.

`FakeLog` makes Rekor-shaped entries signed with real ephemeral keys for the cases no vector
covers (tampering at a chosen place, Ed25519 checkpoints, every Merkle tree shape). The Merkle
functions are written from RFC 6962 section 2.1, independently of the code under test.

`FakeFulcio` issues leaf certificates the way Fulcio does (no subject, a critical SAN, EKU
codeSigning, the OIDC issuer in ``1.3.6.1.4.1.57264.1.8`` and/or ``.1.1``, an embedded SCT) with
real ephemeral ECDSA P-256 keys, so each negative case can break exactly one thing. The SCT is
built from RFC 6962 section 3.2 independently of the code under test: the leaf is built once
without the SCT extension, its TBS is signed by the CT key as a precertificate entry, and the
final leaf is the same TBS with the SCT list appended as the last extension.

The helpers at the end make cosign-shaped keyless signatures: a legacy ``.sig`` layer (payload,
signature, certificate and Rekor bundle annotations) and a v0.3 Sigstore bundle, both logged in a
`FakeLog`. Keys, PEM, SPKI, DSSE PAE and the annotation names come from `support.formats`.

Nothing here runs a server: `support.fake_sigstore` is the real-network counterpart (Fulcio, Rekor
and a TSA on loopback, for the real cosign). The results are signgate's own types
(`TlogEntry`, `TrustedRoot`, `LegacySignature`...), ready to hand to the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signgate.signatures.found import BundleSignature, LegacySignature, SignatureFormat
from signgate.signatures.keys import PublicKey
from signgate.signatures.tlog import InclusionProof, TlogEntry
from signgate.signatures.trusted_root import CertificateAuthority, TransparencyLogKey, TrustedRoot
from support.cosign_key import sign
from support.formats import (
    BUNDLE_ANNOTATION,
    BUNDLE_V03_MEDIA_TYPE,
    CERTIFICATE_ANNOTATION,
    INTOTO_PAYLOAD_TYPE,
    SIGNATURE_ANNOTATION,
    PrivateKey,
    pae,
    public_key_of,
    spki_der,
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- RFC 6962 reference Merkle tree (section 2.1), written from the RFC, not from the code ----


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 over leaf *data*."""
    if len(leaves) == 1:
        return _leaf(leaves[0])
    k = _split(len(leaves))
    return _node(reference_root(leaves[:k]), reference_root(leaves[k:]))


def reference_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_root(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_root(leaves[:k])]


# --- a Rekor-shaped log -----------------------------------------------------------------------


def hashedrekord_body(signature: bytes, verifier_pem: bytes, artifact_sha256: bytes) -> bytes:
    body = {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": artifact_sha256.hex()}},
            "signature": {
                "content": base64.b64encode(signature).decode(),
                "publicKey": {"content": base64.b64encode(verifier_pem).decode()},
            },
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


class FakeLog:
    """An append-only log that signs SETs and checkpoints like Rekor v1 (ECDSA) or v2 (Ed25519)."""

    def __init__(self, key: PrivateKey, *, name: str = "fake.rekor.example") -> None:
        self.key = key
        self.name = name
        self.origin = f"{name} - 42"
        self.public = PublicKey.from_key(key.public_key())
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.public_key().public_bytes_raw()
            # C2SP signed-note Ed25519 key ID, which Rekor v2 also uses as its log ID.
            self.log_id = hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()
        else:
            self.log_id = self.public.key_id
        self.leaves: list[bytes] = []

    def append(self, body: bytes) -> int:
        self.leaves.append(body)
        return len(self.leaves) - 1

    def sign_checkpoint(self, tree_size: int, root_hash: bytes, *, extra: str = "") -> str:
        note = f"{self.origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n{extra}"
        signature = sign(self.key, note.encode())
        line = base64.b64encode(self.log_id[:4] + signature).decode()
        return f"{note}\n\u2014 {self.name} {line}\n"

    def set_for(self, body: bytes, index: int, integrated_time: int) -> bytes:
        payload = {
            "body": base64.b64encode(body).decode(),
            "integratedTime": integrated_time,
            "logID": self.log_id.hex(),
            "logIndex": index,
        }
        return sign(self.key, json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())

    def entry(
        self,
        index: int,
        *,
        integrated_time: int | None = 1_700_000_000,
        with_set: bool = True,
        with_proof: bool = True,
        kind: str = "hashedrekord",
    ) -> TlogEntry:
        body = self.leaves[index]
        size = len(self.leaves)
        root = reference_root(self.leaves)
        proof = InclusionProof(
            log_index=index,
            root_hash=root,
            tree_size=size,
            hashes=tuple(reference_path(index, self.leaves)),
            checkpoint=self.sign_checkpoint(size, root),
        )
        return TlogEntry(
            log_index=index,
            log_id=self.log_id,
            kind=kind,
            kind_version="0.0.1",
            integrated_time=integrated_time,
            signed_entry_timestamp=(
                self.set_for(body, index, integrated_time)
                if with_set and integrated_time is not None
                else None
            ),
            inclusion_proof=proof if with_proof else None,
            canonicalized_body=body,
        )

    def trusted_root(
        self, *, valid_from: datetime | None = None, valid_until: datetime | None = None
    ) -> TrustedRoot:
        start = valid_from or datetime(2020, 1, 1, tzinfo=UTC)
        log = TransparencyLogKey(self.log_id, self.public, "", start, valid_until)
        return TrustedRoot(tlogs=(log,))


# --- a Fulcio CA and its CT log ----------------------------------------------------------

OID_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OID_OTHERNAME_SAN = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
OID_SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")

DEFAULT_ISSUER = "https://issuer.example"
SIGNED_AT = 1_700_000_000
"""`FakeLog.entry`'s default integratedTime (2023-11-14T22:13:20Z)."""
SIGNED_AT_TIME = datetime.fromtimestamp(SIGNED_AT, UTC)
CA_START = datetime(2020, 1, 1, tzinfo=UTC)
CA_END = datetime(2035, 1, 1, tzinfo=UTC)

IssuerExtension = Literal["v2", "v1", "both"] | None


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def der_utf8_string(text: str) -> bytes:
    """DER ``UTF8String`` (tag 0x0c)."""
    value = text.encode("utf-8")
    return b"\x0c" + _der_length(len(value)) + value


def der_octet_string(value: bytes) -> bytes:
    """DER ``OCTET STRING`` (tag 0x04)."""
    return b"\x04" + _der_length(len(value)) + value


def certificate_pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()


def _unix_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _ca_certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    path_length: int,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


class FakeFulcio:
    """A root CA, an intermediate that issues leaves, and a CT log that signs their SCTs.

    Two instances made with the same ``name`` have identically named CAs with different keys: a
    leaf of one does not chain to the other (an impostor CA).
    """

    def __init__(
        self,
        *,
        name: str = "fake-fulcio",
        not_before: datetime = CA_START,
        not_after: datetime = CA_END,
    ) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        root_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "signgate.test"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-root"),
            ]
        )
        intermediate_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "signgate.test"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-intermediate"),
            ]
        )
        self.root = _ca_certificate(
            root_name,
            self.root_key,
            root_name,
            self.root_key,
            path_length=1,
            not_before=not_before,
            not_after=not_after,
        )
        self.intermediate = _ca_certificate(
            intermediate_name,
            self.intermediate_key,
            root_name,
            self.root_key,
            path_length=0,
            not_before=not_before,
            not_after=not_after,
        )
        self.uri = f"https://{name}.example"

    @property
    def chain(self) -> tuple[bytes, bytes]:
        """DER of (intermediate, root), as a trusted root's ``certChain`` lists them."""
        return (
            self.intermediate.public_bytes(serialization.Encoding.DER),
            self.root.public_bytes(serialization.Encoding.DER),
        )

    @staticmethod
    def log_id_of(key: ec.EllipticCurvePrivateKey) -> bytes:
        """RFC 6962 log ID of a CT log with ``key``: sha256 of its SPKI DER."""
        return hashlib.sha256(spki_der(key.public_key())).digest()

    @property
    def ct_log_id(self) -> bytes:
        """This CT log's ID."""
        return self.log_id_of(self.ct_key)

    def certificate_authority(
        self, *, valid_from: datetime = CA_START, valid_until: datetime | None = None
    ) -> CertificateAuthority:
        return CertificateAuthority(self.uri, self.chain, valid_from, valid_until)

    def ct_log(
        self, *, valid_from: datetime = CA_START, valid_until: datetime | None = None
    ) -> TransparencyLogKey:
        public = PublicKey.from_key(self.ct_key.public_key())
        return TransparencyLogKey(self.ct_log_id, public, "", valid_from, valid_until)

    def trusted_root(
        self,
        log: FakeLog,
        *,
        ca_valid_from: datetime = CA_START,
        ca_valid_until: datetime | None = None,
    ) -> TrustedRoot:
        """A trusted root with this CA, this CT log and ``log``'s Rekor key."""
        return TrustedRoot(
            tlogs=log.trusted_root().tlogs,
            ctlogs=(self.ct_log(),),
            certificate_authorities=(
                self.certificate_authority(valid_from=ca_valid_from, valid_until=ca_valid_until),
            ),
        )

    def issue(
        self,
        subject_key: PrivateKey | CertificatePublicKeyTypes,
        *,
        email: str | None = None,
        uri: str | None = None,
        username: str | None = None,
        issuer: str = DEFAULT_ISSUER,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        code_signing: bool = True,
        sct: bool = True,
        sct_log_key: ec.EllipticCurvePrivateKey | None = None,
        sct_timestamp: datetime | None = None,
        corrupt_sct: bool = False,
        issuer_extension: IssuerExtension = "both",
        extra_extensions: Sequence[x509.ExtensionType] = (),
    ) -> bytes:
        """A DER leaf certificate shaped like Fulcio's.

        Args:
            subject_key: the key being certified (a private key is certified by its public key).
            email: an ``rfc822Name`` SAN.
            uri: a URI SAN (CI workflow identities).
            username: Fulcio's OtherName SAN (``1.3.6.1.4.1.57264.1.7``, a UTF8String).
            issuer: the OIDC issuer.
            not_before: defaults to two minutes before `SIGNED_AT`.
            not_after: defaults to ten minutes after ``not_before``.
            code_signing: EKU codeSigning; False gives an EKU of serverAuth only.
            sct: embed an SCT list.
            sct_log_key: the CT key that signs the SCT (default: this Fulcio's CT log).
            sct_timestamp: the SCT's timestamp (default: ``not_before``).
            corrupt_sct: flip one bit of the SCT's signature (still a well-formed DER ECDSA
                signature, over the right data, that does not verify).
            issuer_extension: which OIDC issuer extensions carry ``issuer``: ``"v2"``
                (``.1.8``, DER UTF8String), ``"v1"`` (``.1.1``, raw bytes), ``"both"`` (as
                Fulcio issues today), or None.
            extra_extensions: appended (non-critical) after the issuer extensions.
        """
        start = not_before or SIGNED_AT_TIME - timedelta(minutes=2)
        end = not_after or start + timedelta(minutes=10)
        public = public_key_of(subject_key)
        names: list[x509.GeneralName] = []
        if email is not None:
            names.append(x509.RFC822Name(email))
        if uri is not None:
            names.append(x509.UniformResourceIdentifier(uri))
        if username is not None:
            names.append(x509.OtherName(OID_OTHERNAME_SAN, der_utf8_string(username)))
        usage = (
            ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.SERVER_AUTH
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.intermediate_key.public_key()
                ),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=True)
        if issuer_extension in ("v1", "both"):
            builder = builder.add_extension(
                x509.UnrecognizedExtension(OID_ISSUER_V1, issuer.encode()), critical=False
            )
        if issuer_extension in ("v2", "both"):
            builder = builder.add_extension(
                x509.UnrecognizedExtension(OID_ISSUER_V2, der_utf8_string(issuer)), critical=False
            )
        for extension in extra_extensions:
            builder = builder.add_extension(extension, critical=False)
        draft = builder.sign(self.intermediate_key, hashes.SHA256())
        if not sct:
            return draft.public_bytes(serialization.Encoding.DER)
        sct_list = self._sct_list(
            draft,
            sct_log_key or self.ct_key,
            _unix_ms(sct_timestamp or start),
            corrupt=corrupt_sct,
        )
        final = builder.add_extension(
            x509.UnrecognizedExtension(OID_SCT_LIST, der_octet_string(sct_list)), critical=False
        ).sign(self.intermediate_key, hashes.SHA256())
        # The SCT signs the precertificate TBS: the final TBS minus the SCT extension.
        assert final.tbs_precertificate_bytes == draft.tbs_certificate_bytes
        return final.public_bytes(serialization.Encoding.DER)

    def _sct_list(
        self,
        draft: x509.Certificate,
        log_key: ec.EllipticCurvePrivateKey,
        timestamp_ms: int,
        *,
        corrupt: bool,
    ) -> bytes:
        """A TLS ``SignedCertificateTimestampList`` holding one v1 precertificate SCT."""
        issuer_key_hash = hashlib.sha256(spki_der(self.intermediate_key.public_key())).digest()
        tbs = draft.tbs_certificate_bytes
        extensions = b""
        # RFC 6962 3.2 digitally-signed struct: sct_version v1(0), signature_type
        # certificate_timestamp(0), timestamp, entry_type precert_entry(1), PreCert, extensions.
        signed = (
            struct.pack(">BBQH", 0, 0, timestamp_ms, 1)
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + len(extensions).to_bytes(2, "big")
            + extensions
        )
        signature = log_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        if corrupt:
            # The last byte belongs to the INTEGER s: the DER stays well-formed.
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
        sct = (
            b"\x00"
            + self.log_id_of(log_key)
            + struct.pack(">Q", timestamp_ms)
            + len(extensions).to_bytes(2, "big")
            + extensions
            + b"\x04\x03"  # hash sha256(4), signature ecdsa(3)
            + len(signature).to_bytes(2, "big")
            + signature
        )
        serialized = len(sct).to_bytes(2, "big") + sct
        return len(serialized).to_bytes(2, "big") + serialized


# --- keyless signatures -----------------------------------------------------------------------


def rekor_annotation(log: FakeLog, body: bytes, integrated_time: int) -> str:
    """cosign's ``dev.sigstore.cosign/bundle`` annotation for ``body``, appended to ``log``."""
    index = log.append(body)
    entry = log.entry(index, integrated_time=integrated_time, with_proof=False)
    assert entry.signed_entry_timestamp is not None
    return json.dumps(
        {
            "SignedEntryTimestamp": base64.b64encode(entry.signed_entry_timestamp).decode(),
            "Payload": {
                "body": base64.b64encode(body).decode(),
                "integratedTime": integrated_time,
                "logIndex": index,
                "logID": log.log_id.hex(),
            },
        }
    )


def keyless_signature(
    log: FakeLog,
    key: ec.EllipticCurvePrivateKey,
    certificate: bytes,
    payload: bytes,
    *,
    integrated_time: int = SIGNED_AT,
    source: str = "r/app:sha256-ab.sig layer 1",
) -> LegacySignature:
    """A cosign keyless ``.sig`` layer: ``payload`` signed by ``key``, the leaf ``certificate``
    (DER) as PEM, and a Rekor hashedrekord entry naming that certificate, logged at
    ``integrated_time``."""
    signature = sign(key, payload)
    pem = certificate_pem(certificate)
    body = hashedrekord_body(signature, pem.encode(), hashlib.sha256(payload).digest())
    return LegacySignature(
        source,
        SignatureFormat.LEGACY_TAG,
        payload,
        {
            SIGNATURE_ANNOTATION: base64.b64encode(signature).decode(),
            CERTIFICATE_ANNOTATION: pem,
            BUNDLE_ANNOTATION: rekor_annotation(log, body, integrated_time),
        },
    )


def _bundle(
    log: FakeLog, certificate: bytes, body: bytes, kind: str, integrated_time: int
) -> dict[str, Any]:
    """A v0.3 bundle without its content: the certificate and a Rekor entry with both a SET and
    an inclusion proof (in a tree with other leaves, so the audit path is not empty)."""
    for filler in (b"earlier entry 1", b"earlier entry 2"):
        log.append(filler)
    index = log.append(body)
    log.append(b"later entry")
    entry = log.entry(index, integrated_time=integrated_time, kind=kind)
    assert entry.signed_entry_timestamp is not None and entry.inclusion_proof is not None
    proof = entry.inclusion_proof
    return {
        "mediaType": BUNDLE_V03_MEDIA_TYPE,
        "verificationMaterial": {
            "certificate": {"rawBytes": _b64(certificate)},
            "tlogEntries": [
                {
                    "logIndex": str(index),
                    "logId": {"keyId": _b64(log.log_id)},
                    "kindVersion": {"kind": kind, "version": "0.0.1"},
                    "integratedTime": str(integrated_time),
                    "inclusionPromise": {
                        "signedEntryTimestamp": _b64(entry.signed_entry_timestamp)
                    },
                    "inclusionProof": {
                        "logIndex": str(proof.log_index),
                        "rootHash": _b64(proof.root_hash),
                        "treeSize": str(proof.tree_size),
                        "hashes": [_b64(h) for h in proof.hashes],
                        "checkpoint": {"envelope": proof.checkpoint},
                    },
                    "canonicalizedBody": _b64(body),
                }
            ],
        },
    }


def keyless_bundle_document(
    log: FakeLog,
    key: ec.EllipticCurvePrivateKey,
    certificate: bytes,
    digest: str,
    *,
    integrated_time: int = SIGNED_AT,
) -> dict[str, Any]:
    """A v0.3 Sigstore bundle (a mutable JSON document) whose ``messageSignature`` signs the
    image ``digest`` (``sha256:<hex>``) with ``key``, carrying the leaf ``certificate``."""
    digest_bytes = bytes.fromhex(digest.removeprefix("sha256:"))
    signature = key.sign(digest_bytes, ec.ECDSA(Prehashed(hashes.SHA256())))
    body = hashedrekord_body(signature, certificate_pem(certificate).encode(), digest_bytes)
    document = _bundle(log, certificate, body, "hashedrekord", integrated_time)
    document["messageSignature"] = {
        "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest_bytes)},
        "signature": _b64(signature),
    }
    return document


def keyless_attestation_document(
    log: FakeLog,
    key: ec.EllipticCurvePrivateKey,
    certificate: bytes,
    digest: str,
    predicate_type: str,
    *,
    integrated_time: int = SIGNED_AT,
) -> dict[str, Any]:
    """A v0.3 Sigstore bundle with a DSSE in-toto statement about ``digest`` (what ``cosign
    attest`` pushes), signed by ``key``, and a Rekor ``dsse`` entry."""
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicateType": predicate_type,
            "predicate": {},
        }
    ).encode()
    signature = sign(key, pae(INTOTO_PAYLOAD_TYPE, statement))
    envelope = {
        "payloadType": INTOTO_PAYLOAD_TYPE,
        "payload": _b64(statement),
        "signatures": [{"sig": _b64(signature), "keyid": ""}],
    }
    body = {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {
                "algorithm": "sha256",
                "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest(),
            },
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(statement).hexdigest()},
            "signatures": [
                {
                    "signature": _b64(signature),
                    "verifier": _b64(certificate_pem(certificate).encode()),
                }
            ],
        },
    }
    raw_body = json.dumps(body, separators=(",", ":")).encode()
    document = _bundle(log, certificate, raw_body, "dsse", integrated_time)
    document["dsseEnvelope"] = envelope
    return document


def bundle_signature(document: dict[str, Any]) -> BundleSignature:
    """The referrer holding ``document``, as discovery finds it."""
    return BundleSignature("r/app referrer sha256:cd…", json.dumps(document).encode())
