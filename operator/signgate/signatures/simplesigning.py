"""The cosign simple-signing payload: what a legacy ``.sig`` layer signs.

Parsed only after the signature over its exact bytes has verified, and strictly: duplicate keys, or
two spellings of ``docker-manifest-digest`` differing only in case (Go's decoder would take either),
make the payload ambiguous, and an ambiguous claim is refused rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from signgate.errors import SignatureError
from signgate.strictjson import loads

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"
MAX_PAYLOAD_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class SimpleSigningPayload:
    """The claims of a simple-signing payload that signgate uses."""

    manifest_digest: str
    """``critical.image.docker-manifest-digest``: the only binding cosign checks."""
    docker_reference: str | None
    """``critical.identity.docker-reference``: where it was signed (cosign ignores it)."""
    signature_type: str
    optional: dict[str, Any] | None


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SignatureError(f"simple-signing payload: {where} is not an object")
    return value


def _case_insensitive(obj: dict[str, Any], key: str, where: str) -> object:
    # Go's encoding/json matches field names case-insensitively, so cosign would accept
    # "Docker-manifest-digest"; we accept it too, but never two competing spellings.
    matches = [k for k in obj if k.lower() == key]
    if len(matches) > 1:
        raise SignatureError(f"simple-signing payload: {where} has {len(matches)} '{key}' fields")
    return obj[matches[0]] if matches else None


def parse_simple_signing(raw: bytes) -> SimpleSigningPayload:
    """Parse a simple-signing payload (after its signature verified).

    Raises:
        SignatureError: not JSON, ambiguous, or missing the digest claim or the cosign type.
    """
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise SignatureError(
            f"simple-signing payload is {len(raw)} bytes (limit {MAX_PAYLOAD_BYTES})"
        )

    doc = loads(raw, what="simple-signing payload", error=SignatureError)
    doc = _object(doc, "the payload")
    critical = _object(_case_insensitive(doc, "critical", "the payload"), "'critical'")
    image = _object(_case_insensitive(critical, "image", "'critical'"), "'critical.image'")
    digest = _case_insensitive(image, "docker-manifest-digest", "'critical.image'")
    if not isinstance(digest, str) or not digest:
        raise SignatureError("simple-signing payload has no critical.image.docker-manifest-digest")
    signature_type = _case_insensitive(critical, "type", "'critical'")
    if signature_type != COSIGN_SIGNATURE_TYPE:
        raise SignatureError(
            f"simple-signing payload type is {signature_type!r}, not {COSIGN_SIGNATURE_TYPE!r}"
        )
    identity = _case_insensitive(critical, "identity", "'critical'")
    reference = None
    if isinstance(identity, dict):
        value = _case_insensitive(identity, "docker-reference", "'critical.identity'")
        reference = value if isinstance(value, str) else None
    optional = _case_insensitive(doc, "optional", "the payload")
    return SimpleSigningPayload(
        manifest_digest=digest,
        docker_reference=reference,
        signature_type=signature_type,
        optional=optional if isinstance(optional, dict) else None,
    )
