"""TrustPolicies turned into what evaluation needs: compiled patterns and parsed keys.

Compilation is where key material is parsed, once per policy generation, so that admission never
re-parses a PEM. A policy that cannot be compiled raises `PolicyError` naming the policy and the
field; the operator keeps such a policy as "broken" and denies the images it governs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from signgate.errors import InvalidReferenceError, KeyFormatError, PolicyError
from signgate.policy.patterns import ImagePattern, compile_pattern
from signgate.reference import parse_reference
from signgate.signatures.authority import (
    AuthorityMaterial,
    CertificateAuthorityAuthority,
    CertificateIdentity,
    KeyAuthority,
    KeylessAuthority,
    SignedIdentityRule,
)
from signgate.signatures.keys import PublicKey, load_public_key_pem
from signgate.signatures.predicate import PredicateCondition

if TYPE_CHECKING:
    # Annotations only: the pydantic model is imported where policies are read (YAML files, the
    # cluster), so that ``signgate verify --key`` starts without pydantic.
    from signgate.policy.model import (
        Authority,
        CertificateAuthoritySpec,
        LabelSelector,
        PredicateConditionSpec,
        TrustPolicy,
    )

Mode = Literal["Enforce", "Warn", "Audit"]


@dataclass(frozen=True, slots=True)
class AttestationRule:
    """An attestation a policy requires: its predicate type and who may sign it."""

    predicate_type: str
    authorities: tuple[AuthorityMaterial, ...]
    conditions: tuple[PredicateCondition, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A TrustPolicy ready for evaluation."""

    name: str
    generation: int | None
    mode: Mode
    images: tuple[ImagePattern, ...]
    exclude_images: tuple[ImagePattern, ...]
    authorities: tuple[AuthorityMaterial, ...]
    threshold: int
    required: frozenset[str]
    signature_repository: str | None = None
    """``registry/repository`` holding the signatures, when not the image's own repository."""
    namespace_selector: LabelSelector | None = None
    require_digest: bool = False
    source: str = ""
    """Where the policy came from (a file path or ``cluster``), for messages."""
    identity: str = ""
    """Changes whenever anything that affects a decision changes: the cache key of its results."""
    error: str | None = None
    """Why this policy is broken (a key that does not parse, ...): its images are denied with it."""
    attestations: tuple[AttestationRule, ...] = ()
    signed_identity: SignedIdentityRule = field(default_factory=SignedIdentityRule)
    index_covers_children: bool = False
    _by_name: Mapping[str, AuthorityMaterial] = field(default_factory=dict, repr=False)

    @property
    def outcome_scope(self) -> bool:
        """Whether this policy's verdict on a digest depends on the repository it is pulled from.

        Signatures are about content, so verdicts are normally keyed by digest alone; a policy that
        matches the repository named inside signatures judges the (repository, digest) pair.
        """
        return self.signed_identity.match != "Any"

    def governs(self, name: str) -> bool:
        """Whether this policy applies to the normalised repository ``name``."""
        return any(p.matches(name) for p in self.images) and not any(
            p.matches(name) for p in self.exclude_images
        )

    def selects_namespace(self, labels: Mapping[str, str] | None) -> bool:
        """Whether the policy applies in a namespace with ``labels`` (None: outside a cluster)."""
        selector = self.namespace_selector
        if labels is None or selector is None:
            return True
        if any(labels.get(k) != v for k, v in selector.match_labels.items()):
            return False
        for expr in selector.match_expressions:
            present = expr.key in labels
            value = labels.get(expr.key)
            ok = {
                "In": present and value in expr.values,
                "NotIn": not present or value not in expr.values,
                "Exists": present,
                "DoesNotExist": not present,
            }[expr.operator]
            if not ok:
                return False
        return True


def _compile_authority(policy: str, authority: Authority) -> AuthorityMaterial:
    if authority.keyless is not None:
        identity = CertificateIdentity(
            issuer=authority.keyless.issuer,
            issuer_regexp=authority.keyless.issuer_regexp,
            subject=authority.keyless.subject,
            subject_regexp=authority.keyless.subject_regexp,
        )
        return KeylessAuthority(authority.name, identity, authority.requires_tlog)
    if authority.certificate_authority is not None:
        return _compile_ca(policy, authority.name, authority.certificate_authority, authority)
    source = authority.key
    assert source is not None
    if source.pem is None:
        raise PolicyError(
            f"TrustPolicy {policy!r}, authority {authority.name!r}: key.secretRef is resolved by "
            "the operator in a cluster; outside one, put the key in key.pem"
        )
    try:
        key = load_public_key_pem(source.pem)
    except KeyFormatError as exc:
        raise PolicyError(
            f"TrustPolicy {policy!r}, authority {authority.name!r}: invalid key: {exc}"
        ) from exc
    return KeyAuthority(authority.name, key, authority.requires_tlog)


def _condition(spec: PredicateConditionSpec) -> PredicateCondition:
    if spec.one_of is not None:
        return PredicateCondition(spec.field, "oneOf", tuple(spec.one_of))
    if spec.matches is not None:
        return PredicateCondition(spec.field, "matches", (spec.matches,))
    assert spec.equals is not None  # the model allows exactly one operator
    return PredicateCondition(spec.field, "equals", (spec.equals,))


def _compile_ca(
    policy: str, name: str, spec: CertificateAuthoritySpec, authority: Authority
) -> CertificateAuthorityAuthority:
    where = f"TrustPolicy {policy!r}, authority {name!r}: certificateAuthority.pem"
    try:
        certificates = x509.load_pem_x509_certificates(spec.pem.encode())
        for certificate in certificates:
            # Names and extensions are parsed lazily: a malformed one must fail here, not when
            # an image is verified.
            _ = certificate.issuer, certificate.subject, certificate.extensions
    except (ValueError, x509.InvalidVersion, x509.DuplicateExtension) as exc:
        raise PolicyError(f"{where}: not PEM certificates: {exc}") from exc
    if not certificates:
        raise PolicyError(f"{where}: no certificate")
    roots = [c for c in certificates if c.issuer == c.subject]
    if not roots:
        raise PolicyError(f"{where}: no self-signed root CA among the certificates")
    return CertificateAuthorityAuthority(
        name=name,
        certificates=tuple(c.public_bytes(serialization.Encoding.DER) for c in certificates),
        subject=spec.subject,
        subject_regexp=spec.subject_regexp,
        requires_tlog=authority.requires_tlog,
        label=roots[0].subject.rfc4514_string(),
    )


def compile_policy(
    policy: TrustPolicy, *, source: str = "", resolved_keys: Mapping[str, str] | None = None
) -> CompiledPolicy:
    """Compile a validated TrustPolicy.

    Args:
        policy: the validated model.
        source: where it came from, for messages.
        resolved_keys: PEM by authority name for ``secretRef`` keys the caller has already read.

    Raises:
        PolicyError: an image pattern, key or signature repository is invalid.
    """
    name = policy.metadata.name
    spec = policy.spec
    try:
        images = tuple(compile_pattern(p) for p in spec.images)
        excludes = tuple(compile_pattern(p) for p in spec.exclude_images)
    except PolicyError as exc:
        raise PolicyError(f"TrustPolicy {name!r}: {exc}") from exc
    authorities: list[AuthorityMaterial] = []
    for authority in spec.authorities:
        if resolved_keys and authority.name in resolved_keys and authority.key is not None:
            authority = authority.model_copy(
                update={
                    "key": authority.key.model_copy(
                        update={"pem": resolved_keys[authority.name], "secret_ref": None}
                    )
                }
            )
        authorities.append(_compile_authority(name, authority))
    by_name = {a.name: a for a in authorities}
    attestations = tuple(
        AttestationRule(
            a.predicate_type,
            tuple(by_name[n] for n in a.authorities) if a.authorities else tuple(authorities),
            tuple(_condition(c) for c in a.conditions),
        )
        for a in spec.attestations
    )
    try:
        signed_identity = SignedIdentityRule(
            spec.signed_identity.match,
            tuple(compile_pattern(p) for p in spec.signed_identity.repositories),
        )
    except PolicyError as exc:
        raise PolicyError(f"TrustPolicy {name!r}: signedIdentity: {exc}") from exc
    signature_repository = None
    if spec.signature_repository:
        try:
            ref = parse_reference(spec.signature_repository)
        except InvalidReferenceError as exc:
            raise PolicyError(f"TrustPolicy {name!r}: signatureRepository: {exc.reason}") from exc
        if spec.signature_repository.rsplit("/", 1)[-1].count(":") or ref.digest is not None:
            raise PolicyError(
                f"TrustPolicy {name!r}: signatureRepository names a repository, not a tag or digest"
            )
        signature_repository = ref.name
    fingerprint = {
        "name": name,
        "uid": policy.metadata.uid,
        "spec": policy.spec.model_dump(mode="json", by_alias=True),
        "keys": dict(resolved_keys or {}),
    }
    identity = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:32]
    return CompiledPolicy(
        name=name,
        generation=policy.metadata.generation,
        mode=spec.mode,
        images=images,
        exclude_images=excludes,
        authorities=tuple(authorities),
        threshold=spec.threshold,
        required=frozenset(spec.required),
        signature_repository=signature_repository,
        namespace_selector=spec.namespace_selector,
        require_digest=spec.require_digest,
        source=source,
        identity=identity,
        attestations=attestations,
        signed_identity=signed_identity,
        index_covers_children=spec.index_covers_children,
        _by_name=by_name,
    )


def _patterns(raw: object) -> tuple[ImagePattern, ...]:
    compiled: list[ImagePattern] = []
    for text in raw if isinstance(raw, list) else ():
        try:
            compiled.append(compile_pattern(text) if isinstance(text, str) else compile_pattern(""))
        except PolicyError:
            continue  # a pattern that names nothing cannot be enforced; the rest still are
    return tuple(compiled)


def broken_policy(
    name: str,
    spec: Mapping[str, Any],
    error: str,
    *,
    generation: int | None = None,
    source: str = "",
) -> CompiledPolicy:
    """A policy that cannot be compiled, kept so that the images it governs are denied with why.

    Built from the raw ``spec`` so that even a policy that fails validation keeps governing what
    its image patterns name: dropping it would silently remove a constraint that other policies'
    AND does not replace. Every part that cannot be read errs towards governing more: an exclude
    pattern or namespaceSelector that does not parse is ignored, an unknown mode is Enforce. Only
    image patterns that do not compile are dropped (they name nothing); if none is left, the
    policy governs nothing and its images fall to the unmatched rule (deny by default).
    """
    # Imported here: pydantic is start-up time that ``signgate verify --key`` does not need.
    from pydantic import ValidationError

    from signgate.policy.model import LabelSelector

    mode: Mode = spec.get("mode") if spec.get("mode") in ("Warn", "Audit") else "Enforce"  # type: ignore[assignment]
    try:
        selector = LabelSelector.model_validate(spec.get("namespaceSelector") or {})
    except ValidationError:
        selector = None
    fingerprint = json.dumps(
        {"name": name, "error": error, "spec": spec}, sort_keys=True, default=str
    )
    return CompiledPolicy(
        name=name,
        generation=generation,
        mode=mode,
        images=_patterns(spec.get("images")),
        exclude_images=_patterns(spec.get("excludeImages")),
        authorities=(),
        threshold=1,
        required=frozenset(),
        namespace_selector=selector if spec.get("namespaceSelector") else None,
        source=source,
        identity="broken:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32],
        error=error,
    )


def adhoc_key_policy(
    keys: Iterable[tuple[str, PublicKey]],
    *,
    requires_tlog: bool,
    attestations: Sequence[str] = (),
) -> CompiledPolicy:
    """The policy ``signgate verify --key`` builds: every image, any one key (like cosign).

    With ``attestations`` (predicate types), it checks those attestations instead of a signature,
    as ``cosign verify-attestation --type`` does.
    """
    authorities = tuple(KeyAuthority(name, key, requires_tlog) for name, key in keys)
    if not authorities:
        raise PolicyError("no keys given")
    rules = tuple(AttestationRule(t, authorities) for t in dict.fromkeys(attestations))
    fingerprint = ",".join(
        [f"{a.name}={a.key.fingerprint}:{a.requires_tlog}" for a in authorities]
        + [f"attestation={r.predicate_type}" for r in rules]
    )
    return CompiledPolicy(
        name="command-line",
        generation=None,
        mode="Enforce",
        images=(compile_pattern("**"),),
        exclude_images=(),
        authorities=authorities,
        threshold=0 if rules else 1,
        required=frozenset(),
        source="--key",
        identity="adhoc:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32],
        attestations=rules,
        _by_name={a.name: a for a in authorities},
    )


def adhoc_keyless_policy(
    identity: CertificateIdentity, *, attestations: Sequence[str] = ()
) -> CompiledPolicy:
    """The policy ``signgate verify --certificate-identity … --certificate-oidc-issuer …`` builds:
    every image, signed keyless by that identity (with the transparency log, as cosign)."""
    authority = KeylessAuthority("keyless", identity, requires_tlog=True)
    rules = tuple(AttestationRule(t, (authority,)) for t in dict.fromkeys(attestations))
    fingerprint = json.dumps(
        {
            "identity": dataclasses.asdict(identity),
            "attestations": [r.predicate_type for r in rules],
        },
        sort_keys=True,
    )
    return CompiledPolicy(
        name="command-line",
        generation=None,
        mode="Enforce",
        images=(compile_pattern("**"),),
        exclude_images=(),
        authorities=(authority,),
        threshold=0 if rules else 1,
        required=frozenset(),
        source="--certificate-identity",
        identity="adhoc-keyless:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32],
        attestations=rules,
        _by_name={authority.name: authority},
    )
