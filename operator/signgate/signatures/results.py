"""What verification produces: a signature decoded once (`PreparedSignature`), and for each
authority either a verified signature or attestation, or a `Rejection` saying why it does not count.

Plain frozen values, shared by `signgate.signatures.prepare`, `signgate.signatures.verify`, the
policy evaluation that collects them and the engine that caches its verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from signgate.signatures.bundle import SigstoreBundle
from signgate.signatures.found import SignatureFormat


class RejectionKind(StrEnum):
    """Why a signature did not count, in words a metric label or a test can use."""

    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown-key"
    WRONG_DIGEST = "wrong-digest"
    NOT_A_SIGNATURE = "not-a-signature"
    TLOG = "tlog"
    UNSUPPORTED = "unsupported"
    WRONG_IDENTITY = "wrong-identity"
    NOT_AN_ATTESTATION = "not-an-attestation"
    OTHER_PREDICATE = "other-predicate"
    CERTIFICATE = "certificate"
    WRONG_SIGNER = "wrong-signer"
    CONDITION = "condition"


class ClaimKind(StrEnum):
    """What a signature's signed bytes claim, and so how the claim binds to an image digest."""

    SIMPLE_SIGNING = "simple-signing"
    """A simple-signing payload naming ``docker-manifest-digest``."""
    IN_TOTO = "in-toto"
    """A DSSE envelope over an in-toto statement whose subject names the digest."""
    MESSAGE_DIGEST = "message-digest"
    """A bundle ``messageSignature`` over the image manifest itself (no statement)."""


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature that counts for ``authority``."""

    authority: str
    signer: str
    format: SignatureFormat
    source: str
    tlog_index: int | None = None


@dataclass(frozen=True, slots=True)
class VerifiedAttestation:
    """An attestation of ``predicate_type`` that counts for ``authority``."""

    authority: str
    signer: str
    predicate_type: str
    format: SignatureFormat
    source: str
    tlog_index: int | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A signature that does not count, and why."""

    source: str
    kind: RejectionKind
    reason: str


@dataclass(frozen=True, slots=True)
class PreparedSignature:
    """A signature decoded once, ready to be checked against any number of authorities."""

    source: str
    format: SignatureFormat
    claim: ClaimKind
    signature: bytes
    signed_bytes: bytes | None
    """What the signature covers: the simple-signing payload or the DSSE PAE; None for
    `ClaimKind.MESSAGE_DIGEST`, whose signature covers the image digest being checked."""
    payload: bytes
    """The claim to read once the signature verifies (payload or in-toto statement)."""
    bundle: SigstoreBundle | None = None
    legacy_tlog_annotation: str | None = None
    certificate: bytes | None = None
    """DER of the signing certificate that travels with the signature (keyless); untrusted."""
    timestamps: tuple[bytes, ...] = ()
    """RFC 3161 timestamps (DER) that travel with the signature; untrusted until verified."""
    timestamped: bytes = b""
    """What the timestamps' message imprint covers: the raw signature, or for a legacy ``.att``
    layer the layer blob (cosign-formats §1.2)."""
