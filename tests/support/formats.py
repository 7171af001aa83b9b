"""Byte-exact builders for cosign's signature formats (no I/O): keys, payloads, DSSE, bundles.

Written from the cosign and go-containerregistry (ggcr) sources, independently of signgate. Each
builder reproduces the serializer the real tool uses:

* Go ``encoding/json`` (struct fields in declaration order, map keys sorted, compact) for the
  simple-signing payload, the ``.sig`` config, manifests, legacy DSSE envelopes and v0.1 statements;
* Go ``protojson`` (proto field order, empty fields omitted, map/Struct keys sorted, int64 as
  string) for in-toto v1 statements and Sigstore bundles. Real protojson randomly inserts a space
  after ``:``/``,``; we emit the compact form, which is one of its legal outputs.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from support.push import go_json, sha256_digest

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
BUNDLE_V03_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
COSIGN_SIG_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
SIMPLESIGNING_TYPE = "cosign container image signature"

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
RFC3161_ANNOTATION = "dev.sigstore.cosign/rfc3161timestamp"
PREDICATE_TYPE_ANNOTATION = "predicateType"
BUNDLE_CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
BUNDLE_PREDICATE_TYPE_ANNOTATION = "dev.sigstore.bundle.predicateType"
CREATED_ANNOTATION = "org.opencontainers.image.created"

COSIGN_SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
#: cosign refuses to append past this many layers to a ``.sig``/``.att`` manifest.
MAX_SIGNATURE_LAYERS = 1000

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
KeyKind = Literal[
    "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519"
]

# -- keys and raw signatures -----------------------------------------------------------------------

_CURVES: dict[str, ec.EllipticCurve] = {
    "ecdsa-p256": ec.SECP256R1(),
    "ecdsa-p384": ec.SECP384R1(),
    "ecdsa-p521": ec.SECP521R1(),
}


def generate_key(kind: KeyKind = "ecdsa-p256") -> PrivateKey:
    """A fresh signing key of a type cosign supports (``generate-key-pair`` makes ecdsa-p256)."""
    if kind in _CURVES:
        return ec.generate_private_key(_CURVES[kind])
    if kind.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r}")


def public_key_of(key: PrivateKey | PublicKey) -> PublicKey:
    """The public half of a private key; a public key as it is."""
    return key.public_key() if isinstance(key, PrivateKey) else key


def spki_der(key: PrivateKey | PublicKey) -> bytes:
    """DER SubjectPublicKeyInfo of the (public half of the) key."""
    return public_key_of(key).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_pem(key: PrivateKey | PublicKey) -> bytes:
    """``-----BEGIN PUBLIC KEY-----`` PEM, i.e. ``cosign.pub``."""
    return public_key_of(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_hint(key: PrivateKey | PublicKey) -> str:
    """Bundle ``verificationMaterial.publicKey.hint``: base64(sha256(SPKI DER))."""
    return base64.b64encode(hashlib.sha256(spki_der(key)).digest()).decode("ascii")


def _ecdsa_default_hash(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    return {256: hashes.SHA256(), 384: hashes.SHA384()}.get(curve.key_size, hashes.SHA512())


def sign_bytes(
    key: PrivateKey,
    data: bytes,
    *,
    ed25519ph: bool = False,
    ecdsa_hash: hashes.HashAlgorithm | None = None,
) -> bytes:
    """Sign ``data`` the way cosign's signers do.

    ECDSA: DER, with the curve's default hash (P-256 SHA-256, P-384 SHA-384, P-521 SHA-512) unless
    ``ecdsa_hash`` is given (old cosign used SHA-256 for every curve). RSA: PKCS#1 v1.5 SHA-256.
    Ed25519: pure, or Ed25519ph (SHA-512 prehash, libsodium) with ``ed25519ph=True`` as cosign's
    legacy payload signer does.
    """
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(ecdsa_hash or _ecdsa_default_hash(key.curve)))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if ed25519ph:
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        _, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        state = nacl.bindings.crypto_sign_ed25519ph_state()
        nacl.bindings.crypto_sign_ed25519ph_update(state, data)
        return bytes(nacl.bindings.crypto_sign_ed25519ph_final_create(state, secret))
    return key.sign(data)


def verify_bytes(
    key: PrivateKey | PublicKey, signature: bytes, data: bytes, *, ed25519ph: bool = False
) -> bool:
    """Check a signature made by :func:`sign_bytes` (used for cosign's duplicate detection)."""
    public = public_key_of(key)
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(_ecdsa_default_hash(public.curve)))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif ed25519ph:
            if len(signature) != nacl.bindings.crypto_sign_BYTES:
                return False
            state = nacl.bindings.crypto_sign_ed25519ph_state()
            nacl.bindings.crypto_sign_ed25519ph_update(state, data)
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return bool(nacl.bindings.crypto_sign_ed25519ph_final_verify(state, signature, raw))
        else:
            public.verify(signature, data)
    except (InvalidSignature, ValueError, nacl.exceptions.BadSignatureError):
        return False
    return True


# -- tags ------------------------------------------------------------------------------------------


def signature_tag(digest: str, suffix: str = "sig") -> str:
    """cosign's legacy tag for a digest: ``sha256-<hex>.sig`` (``.att``, ``.sbom``)."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}.{suffix}"


def fallback_tag(digest: str) -> str:
    """The OCI referrers fallback tag for a subject: ``sha256-<hex>``."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}"


# -- payloads --------------------------------------------------------------------------------------


def _sorted_value(value: Any) -> Any:
    """Sort every JSON object's keys, as Go does for maps and protojson does for Struct."""
    if isinstance(value, Mapping):
        return {k: _sorted_value(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted_value(v) for v in value]
    return value


def simple_signing_payload(
    docker_reference: str, digest: str, optional: Mapping[str, Any] | None = None
) -> bytes:
    """The simple-signing JSON exactly as Go ``json.Marshal`` emits it (cosign-formats §2)."""
    return go_json(
        {
            "critical": {
                "identity": {"docker-reference": docker_reference},
                "image": {"docker-manifest-digest": digest},
                "type": SIMPLESIGNING_TYPE,
            },
            "optional": _sorted_value(optional) if optional is not None else None,
        }
    )


def statement_v1(
    digest: str,
    predicate_type: str = COSIGN_SIGN_PREDICATE_TYPE,
    predicate: Mapping[str, Any] | None = None,
    *,
    subject_annotations: Mapping[str, Any] | None = None,
) -> bytes:
    """An in-toto Statement v1 as cosign v3 ``sign`` emits it (protojson, no subject ``name``).

    ``subject.annotations`` is ``{}`` when empty because cosign always sets the Struct.
    """
    algorithm, _, hex_digest = digest.partition(":")
    return go_json(
        {
            "_type": STATEMENT_V1,
            "subject": [
                {
                    "digest": {algorithm: hex_digest},
                    "annotations": _sorted_value(subject_annotations or {}),
                }
            ],
            "predicateType": predicate_type,
            "predicate": _sorted_value(predicate or {}),
        }
    )


def statement_v01(
    name: str, digest: str, predicate_type: str, predicate: Mapping[str, Any] | Sequence[Any]
) -> bytes:
    """An in-toto Statement v0.1 as legacy ``cosign attest`` emits it (Go json.Marshal)."""
    algorithm, _, hex_digest = digest.partition(":")
    return go_json(
        {
            "_type": STATEMENT_V01,
            "predicateType": predicate_type,
            "subject": [{"name": name, "digest": {algorithm: hex_digest}}],
            "predicate": _sorted_value(predicate),
        }
    )


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the bytes a DSSE signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def legacy_dsse_envelope(payload: bytes, signature: bytes, payload_type: str) -> bytes:
    """A DSSE envelope as go-securesystemslib marshals it (legacy ``.att`` layers)."""
    return go_json(
        {
            "payloadType": payload_type,
            "payload": _b64(payload),
            "signatures": [{"keyid": "", "sig": _b64(signature)}],
        }
    )


@dataclass(frozen=True, slots=True)
class MessageSignature:
    """Bundle content ``messageSignature``: a signature over some artifact's bytes."""

    artifact: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class DSSEContent:
    """Bundle content ``dsseEnvelope``: a signature over ``pae(payload_type, payload)``."""

    payload: bytes
    signature: bytes
    payload_type: str = INTOTO_PAYLOAD_TYPE


def bundle_v03(
    key: PrivateKey | PublicKey,
    content: DSSEContent | MessageSignature,
    *,
    emit_empty_tlog_entries: bool = False,
    extra_verification_material: Mapping[str, Any] | None = None,
) -> bytes:
    """A Sigstore bundle v0.3 for key-based signing with no transparency log.

    protojson omits empty repeated fields, so ``tlogEntries`` is absent (what cosign
    ``--tlog-upload=false`` writes); ``emit_empty_tlog_entries=True`` writes ``"tlogEntries":[]``
    as some other producers do.
    """
    material: dict[str, Any] = {"publicKey": {"hint": key_hint(key)}}
    if emit_empty_tlog_entries:
        material["tlogEntries"] = []
    material.update(extra_verification_material or {})
    bundle: dict[str, Any] = {"mediaType": BUNDLE_V03_MEDIA_TYPE, "verificationMaterial": material}
    if isinstance(content, MessageSignature):
        bundle["messageSignature"] = {
            "messageDigest": {
                "algorithm": "SHA2_256",
                "digest": _b64(hashlib.sha256(content.artifact).digest()),
            },
            "signature": _b64(content.signature),
        }
    else:
        bundle["dsseEnvelope"] = {
            "payload": _b64(content.payload),
            "payloadType": content.payload_type,
            "signatures": [{"sig": _b64(content.signature)}],
        }
    return go_json(bundle)


# -- manifests -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer to put in a signature manifest: its blob, media type and annotations."""

    blob: bytes
    media_type: str = SIMPLESIGNING_MEDIA_TYPE
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """sha256 of the blob."""
        return sha256_digest(self.blob)

    @property
    def signature(self) -> bytes:
        """The raw signature of a cosign ``.sig`` layer: its signature annotation, decoded."""
        return base64.b64decode(self.annotations[SIGNATURE_ANNOTATION])

    def descriptor(self) -> dict[str, Any]:
        """The manifest layer descriptor (ggcr field order, annotations sorted)."""
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "size": len(self.blob),
            "digest": self.digest,
        }
        if self.annotations:
            desc["annotations"] = dict(sorted(self.annotations.items()))
        return desc


_ZERO_TIME = "0001-01-01T00:00:00Z"


def signature_config(diff_ids: Sequence[str]) -> bytes:
    """The dummy image config of a ``.sig``/``.att`` manifest after ggcr ``mutate.Append``.

    ``empty.Image``'s config plus one ``rootfs.diff_ids`` entry and one zero-time history entry per
    appended layer (a cosign signature layer's diff ID equals its digest). For one layer this is
    233 bytes, the size in cosign-formats §1.2's example.
    """
    return _marshal_config({}, list(diff_ids), [{"created": _ZERO_TIME} for _ in diff_ids])


def append_to_config(config: Mapping[str, Any], diff_id: str) -> bytes:
    """Append one layer to an existing image config the way ggcr does (diff ID + history entry)."""
    rootfs = config.get("rootfs") or {}
    diff_ids = [*(rootfs.get("diff_ids") or []), diff_id]
    history = [*(config.get("history") or []), {"created": _ZERO_TIME}]
    return _marshal_config(config, diff_ids, history)


def _marshal_config(
    config: Mapping[str, Any], diff_ids: list[str], history: list[dict[str, Any]]
) -> bytes:
    """Marshal like ggcr ``v1.ConfigFile``: struct order, Go omitempty, unknown fields dropped."""
    out: dict[str, Any] = {"architecture": config.get("architecture", "")}
    for name in ("author", "container"):
        if config.get(name):
            out[name] = config[name]
    out["created"] = config.get("created") or _ZERO_TIME
    if config.get("docker_version"):
        out["docker_version"] = config["docker_version"]
    if history:
        out["history"] = history
    out["os"] = config.get("os", "")
    rootfs = config.get("rootfs") or {}
    out["rootfs"] = {"type": rootfs.get("type", "layers"), "diff_ids": diff_ids or None}
    out["config"] = config.get("config") or {}
    for name in ("os.version", "variant", "os.features"):
        if config.get(name):
            out[name] = config[name]
    return go_json(out)


def image_manifest(
    config: Mapping[str, Any],
    layers: Sequence[Mapping[str, Any]],
    *,
    media_type: str,
    annotations: Mapping[str, str] | None = None,
    subject: Mapping[str, Any] | None = None,
    artifact_type: str | None = None,
) -> bytes:
    """An image manifest in Go field order (cosign's ``referrerManifest``: artifactType last)."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": dict(config),
        "layers": [dict(layer) for layer in layers],
    }
    if annotations:
        doc["annotations"] = dict(sorted(annotations.items()))
    if subject is not None:
        doc["subject"] = dict(subject)
    if artifact_type:
        doc["artifactType"] = artifact_type
    return go_json(doc)
