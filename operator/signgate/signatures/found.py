"""Signatures as discovered in a registry, before any verification.

Discovery (which does I/O) produces these; verification (which does none) consumes them. Each
carries ``source``, a human-readable location used in every message about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class SignatureFormat(StrEnum):
    """How the signature was stored."""

    LEGACY_TAG = "cosign .sig tag"
    """cosign v1/v2 (and v3 with ``--new-bundle-format=false``): ``sha256-<hex>.sig`` layers."""
    LEGACY_REFERRER = "cosign OCI 1.1 referrer"
    """cosign v2 ``--registry-referrers-mode=oci-1-1``: the same layers in a referrer manifest."""
    BUNDLE = "sigstore bundle"
    """cosign v3 default: a sigstore bundle in an OCI 1.1 referrer."""
    LEGACY_ATTESTATION = "cosign .att tag"
    """cosign v1/v2 ``attest``: DSSE envelopes as layers of ``sha256-<hex>.att``."""


COSIGN_SIGNATURE_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
"""The in-toto predicate of a cosign v3 *signature*; every other predicate is an attestation."""

PREDICATE_TYPE_SHORTHANDS = {
    "custom": "https://cosign.sigstore.dev/attestation/v1",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "link": "https://in-toto.io/Link/v1",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "openvex": "https://openvex.dev/ns",
}
"""cosign's ``--type`` shorthands (``attest``, ``verify-attestation``) and the predicate types
they stand for; any other value is a predicate type URI itself."""

ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_CHAIN = "dev.sigstore.cosign/chain"
ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle"
ANNOTATION_RFC3161 = "dev.sigstore.cosign/rfc3161timestamp"


@dataclass(frozen=True, slots=True)
class LegacySignature:
    """One legacy layer: the exact blob bytes and the layer's annotations.

    The blob is a simple-signing payload (``.sig``), or a DSSE envelope (``.att``, `format`
    `SignatureFormat.LEGACY_ATTESTATION`) whose signature is inside it, not in an annotation.
    """

    source: str
    format: SignatureFormat
    payload: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def signature_b64(self) -> str | None:
        """The base64 signature annotation, if present."""
        return self.annotations.get(ANNOTATION_SIGNATURE)


@dataclass(frozen=True, slots=True)
class BundleSignature:
    """A sigstore bundle found as an OCI 1.1 referrer (bytes not yet parsed)."""

    source: str
    raw: bytes
    predicate_type_hint: str | None = None
    """The referrer's ``dev.sigstore.bundle.predicateType`` annotation (display only)."""

    @property
    def format(self) -> SignatureFormat:
        """Always `SignatureFormat.BUNDLE`."""
        return SignatureFormat.BUNDLE


@dataclass(frozen=True, slots=True)
class UnusableSignature:
    """Something that looked like a signature but cannot be one, and why."""

    source: str
    reason: str


FoundSignature = LegacySignature | BundleSignature | UnusableSignature


@dataclass(frozen=True, slots=True)
class Discovery:
    """Everything found for one digest in one signature repository."""

    repository: str
    signatures: tuple[FoundSignature, ...]
    notes: tuple[str, ...] = ()
    """Facts worth telling a person (e.g. "referrers API not supported; used the fallback tag")."""
    errors: tuple[str, ...] = ()
    """Why part of the signatures could not be read (the rest were): part of any denial."""
