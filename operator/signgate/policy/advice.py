"""What to do about a denial: the last clause of every "needs signatures…" reason. No I/O.

A denial is read by whoever ran ``kubectl apply``, often not the person who wrote the policy. It
says what was found (the reason) and then one concrete next step, chosen from the most telling
rejection: a signature by a trusted signer over another digest says more than a stranger's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from signgate.errors import (
    DigestMismatchError,
    MalformedResponseError,
    NotFoundError,
    RegistryAuthError,
    RegistryError,
    RegistryHTTPError,
    ResponseTooLargeError,
)
from signgate.policy.compiled import CompiledPolicy
from signgate.signatures.authority import (
    AuthorityMaterial,
    CertificateAuthorityAuthority,
    KeyAuthority,
    KeylessAuthority,
)
from signgate.signatures.results import RejectionKind


def _how_to_sign(authority: AuthorityMaterial, image: str, attestation: str | None) -> str:
    verb = f"cosign attest --type {attestation} --predicate FILE" if attestation else "cosign sign"
    if isinstance(authority, KeyAuthority):
        return f"`{verb} --key <private key of {authority.describe}> {image}`"
    if isinstance(authority, KeylessAuthority):
        return f"`{verb} {image}` keyless, as {authority.describe}"
    assert isinstance(authority, CertificateAuthorityAuthority)
    return (
        f"`{verb} --certificate CERT --certificate-chain CHAIN {image}` with a {authority.describe}"
    )


def _where(policy: CompiledPolicy) -> str:
    if policy.signature_repository:
        return (
            f" (signatures are read from {policy.signature_repository}, the policy's "
            "signatureRepository: sign with COSIGN_REPOSITORY set to it)"
        )
    return ""


def signature_advice(
    policy: CompiledPolicy,
    image: str,
    kinds: Collection[RejectionKind],
    missing_required: Sequence[str],
) -> str:
    """The next step for an image that lacks the signatures ``policy`` needs.

    ``kinds`` are the rejections seen (empty: nothing was found), ``image`` is
    ``registry/repository@sha256:…``.
    """
    authorities = {a.name: a for a in policy.authorities}
    wanted = [authorities[n] for n in missing_required if n in authorities] or list(
        policy.authorities
    )
    first = wanted[0] if wanted else None
    sign = _how_to_sign(first, image, None) if first is not None else "sign it"
    names = ", ".join(a.name for a in policy.authorities)
    if RejectionKind.WRONG_DIGEST in kinds:
        return (
            "a signature names another digest (was the tag moved after signing?): sign this "
            f"digest, {sign}"
        )
    if RejectionKind.WRONG_IDENTITY in kinds:
        return (
            "a trusted signature names another repository: if the image was copied from where "
            "it was signed, allow that repository in spec.signedIdentity"
        )
    if RejectionKind.WRONG_SIGNER in kinds:
        return (
            f"the certificate names another identity: sign as one of [{names}], or correct the "
            "policy's subject/issuer (regular expressions must match the whole value)"
        )
    if RejectionKind.CERTIFICATE in kinds:
        return (
            "the signing certificate is not trusted: check the trusted root (--trusted-root, "
            "the chart's trustedRoot) or the policy's certificateAuthority"
        )
    if RejectionKind.TLOG in kinds:
        return (
            "the transparency log is required: sign with the Rekor upload on, or set "
            "transparencyLog: Ignore on the key authority"
        )
    if RejectionKind.NOT_A_SIGNATURE in kinds and RejectionKind.UNKNOWN_KEY not in kinds:
        return f"only attestations are attached, no signature: {sign}"
    if missing_required:
        return f"add the required signature: {sign}"
    if RejectionKind.UNKNOWN_KEY in kinds:
        return (
            f"it is signed, but by none of [{names}]: {sign}, or add the signer's public key "
            "to the policy"
        )
    if kinds:
        return f"no signature could be used: re-sign with cosign v2 or v3, {sign}"
    return f"sign it: {sign}{_where(policy)}"


def attestation_advice(
    policy: CompiledPolicy,
    image: str,
    predicate_type: str,
    authorities: Sequence[AuthorityMaterial],
) -> str:
    """The next step for an image that lacks a required attestation."""
    first = authorities[0] if authorities else None
    if first is None:
        return "attach it with cosign attest"
    return f"attach it: {_how_to_sign(first, image, predicate_type)}{_where(policy)}"


def registry_advice(exc: RegistryError) -> str:
    """The next step when the registry could not answer what a decision needs."""
    status = exc.status if isinstance(exc, RegistryHTTPError) else 0
    if isinstance(exc, RegistryAuthError) or status in (401, 403):
        return (
            "check the registry credentials signgate uses: the workload's imagePullSecrets (or "
            "its ServiceAccount's), --pull-secret, --registry-config"
        )
    if isinstance(exc, NotFoundError) or status == 404:
        return "check that the image and tag exist in that registry"
    if isinstance(exc, DigestMismatchError | MalformedResponseError | ResponseTooLargeError):
        return (
            "the registry (or a proxy in between) answered with bytes that are not what was "
            "asked for; nothing from it can be trusted until that is fixed"
        )
    return (
        "retry; if it persists, check that signgate can reach the registry in time (network "
        "policy, proxy, the registry's health and rate limits)"
    )
