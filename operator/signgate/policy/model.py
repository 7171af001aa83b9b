"""The TrustPolicy custom resource (``signgate.dev/v1alpha1``) as pydantic models.

This is the wire format: strict (``extra="forbid"``, so a typo in a field name is an error rather
than a silently ignored rule) and validated for everything that can be checked without key material.
Keys and patterns are compiled separately (`signgate.policy.compiled`), so that a policy with a bad
key can still be indexed and reported, and its images denied with the reason.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

API_VERSION: Final = "signgate.dev/v1alpha1"
KIND: Final = "TrustPolicy"
# The resource's names in the API (the CRD, the operator's watches and status writes, kubectl).
GROUP, _, VERSION = API_VERSION.partition("/")  # signgate.dev, v1alpha1
PLURAL: Final = "trustpolicies"
SINGULAR: Final = "trustpolicy"
SHORT_NAMES: Final = ("tp",)
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

AuthorityName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]
ImagePatternText = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SecretKeyRef(_Strict):
    """A public key held in a Kubernetes Secret (resolved by the operator)."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    namespace: str | None = Field(
        default=None,
        max_length=63,
        description="Namespace of the Secret; when omitted, the namespace signgate runs in.",
    )
    key: str = Field(
        default="cosign.pub",
        min_length=1,
        max_length=253,
        description="Key in the Secret's data that holds the PEM public key.",
    )


class KeySource(_Strict):
    """Where a key authority's public key comes from: inline PEM or a Secret."""

    pem: str | None = Field(
        default=None,
        max_length=64 * 1024,
        description="PEM public key (ECDSA, RSA or Ed25519), as in cosign.pub.",
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        alias="secretRef",
        description="A Secret that holds the PEM public key.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> KeySource:
        if (self.pem is None) == (self.secret_ref is None):
            raise ValueError("set exactly one of 'pem' and 'secretRef'")
        return self


def _check_regexp(value: str | None, field_name: str) -> None:
    if value is None:
        return
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{field_name} is not a valid regular expression: {exc}") from exc


class KeylessIdentity(_Strict):
    """A Fulcio certificate identity: OIDC issuer and subject, exact or full-match regexp."""

    issuer: str | None = Field(
        default=None, description="OIDC issuer of the signing certificate, exactly."
    )
    issuer_regexp: str | None = Field(
        default=None,
        alias="issuerRegExp",
        description="Regular expression the whole OIDC issuer must match.",
    )
    subject: str | None = Field(
        default=None,
        description="Identity (SAN: email, URI) of the signing certificate, exactly.",
    )
    subject_regexp: str | None = Field(
        default=None,
        alias="subjectRegExp",
        description="Regular expression the whole certificate identity must match.",
    )

    @model_validator(mode="after")
    def _one_of_each(self) -> KeylessIdentity:
        if (self.issuer is None) == (self.issuer_regexp is None):
            raise ValueError("set exactly one of 'issuer' and 'issuerRegExp'")
        if (self.subject is None) == (self.subject_regexp is None):
            raise ValueError("set exactly one of 'subject' and 'subjectRegExp'")
        _check_regexp(self.issuer_regexp, "issuerRegExp")
        _check_regexp(self.subject_regexp, "subjectRegExp")
        return self


class CertificateAuthoritySpec(_Strict):
    """Your own PKI: signers' certificates must chain to these CA certificates (cosign's
    ``--certificate-chain``)."""

    pem: str = Field(
        min_length=1,
        max_length=256 * 1024,
        description="PEM certificates: the root CA and any intermediates (in any order).",
    )
    subject: str | None = Field(
        default=None,
        description="The SAN (email, URI, DNS name) the signing certificate must name.",
    )
    subject_regexp: str | None = Field(
        default=None,
        alias="subjectRegExp",
        description="Regular expression one SAN must match in full.",
    )

    @model_validator(mode="after")
    def _at_most_one_subject(self) -> CertificateAuthoritySpec:
        if self.subject is not None and self.subject_regexp is not None:
            raise ValueError("set at most one of 'subject' and 'subjectRegExp'")
        _check_regexp(self.subject_regexp, "subjectRegExp")
        return self


class Authority(_Strict):
    """Someone whose signature counts: a key, or a keyless (Fulcio) identity."""

    name: AuthorityName = Field(
        description="Unique within the policy; named by 'required' and in admission decisions."
    )
    key: KeySource | None = Field(
        default=None, description="Signatures made with this public key count (cosign --key)."
    )
    keyless: KeylessIdentity | None = Field(
        default=None,
        description="Signatures with a Fulcio certificate for this OIDC identity count.",
    )
    certificate_authority: CertificateAuthoritySpec | None = Field(
        default=None,
        alias="certificateAuthority",
        description="Signatures with a certificate issued by this CA count (your own PKI).",
    )
    transparency_log: Literal["Require", "Ignore"] | None = Field(
        default=None,
        alias="transparencyLog",
        description="Whether a signature needs a verified Rekor entry. Default: Ignore for keys "
        "and certificate authorities (air-gapped clusters), Require for keyless.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Authority:
        kinds = [self.key, self.keyless, self.certificate_authority]
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError(
                f"authority {self.name!r}: set exactly one of 'key', 'keyless' and "
                "'certificateAuthority'"
            )
        return self

    @property
    def requires_tlog(self) -> bool:
        """Default: ignore for keys (air-gapped clusters), require for keyless."""
        if self.transparency_log is None:
            return self.keyless is not None
        return self.transparency_log == "Require"


class LabelSelectorRequirement(_Strict):
    """One ``matchExpressions`` entry of a Kubernetes LabelSelector."""

    key: str = Field(description="The namespace label the requirement applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the label's value relates to 'values'."
    )
    values: list[str] = Field(
        default_factory=list, description="Values for In and NotIn; empty otherwise."
    )


class LabelSelector(_Strict):
    """A Kubernetes LabelSelector over namespace labels."""

    match_labels: dict[str, str] = Field(
        default_factory=dict,
        alias="matchLabels",
        description="Labels the namespace must have, with these values.",
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list,
        alias="matchExpressions",
        description="Requirements the namespace's labels must all meet.",
    )


class PredicateConditionSpec(_Strict):
    """A condition on one field of an attestation's predicate."""

    field: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[^.]+(\.[^.]+)*$",
        description="Dot-separated path into the predicate, e.g. runDetails.builder.id or "
        "buildDefinition.buildType; a number indexes a list (materials.0.uri).",
    )
    equals: str | None = Field(
        default=None,
        max_length=4096,
        description="The field's value, exactly (numbers and booleans as JSON text: 3, true).",
    )
    matches: str | None = Field(
        default=None,
        max_length=1024,
        description="A regular expression the whole value must match.",
    )
    one_of: list[Annotated[str, StringConstraints(max_length=4096)]] | None = Field(
        default=None,
        alias="oneOf",
        min_length=1,
        max_length=64,
        description="Values the field may have.",
    )

    @model_validator(mode="after")
    def _one_operator(self) -> PredicateConditionSpec:
        given = [self.equals is not None, self.matches is not None, self.one_of is not None]
        if sum(given) != 1:
            raise ValueError(
                f"condition on {self.field!r}: set exactly one of equals, matches, oneOf"
            )
        _check_regexp(self.matches, "matches")
        return self


class AttestationRequirement(_Strict):
    """An in-toto attestation (cosign attest) that must be attached to the image and verified."""

    predicate_type: str = Field(
        alias="predicateType",
        min_length=1,
        max_length=512,
        description="in-toto predicate type, exactly, e.g. https://slsa.dev/provenance/v1 "
        "(cosign attest --type slsaprovenance1) or https://cyclonedx.org/bom (--type cyclonedx).",
    )
    authorities: list[AuthorityName] = Field(
        default_factory=list,
        max_length=64,
        description="Names of the authorities whose attestation counts; empty: any authority "
        "of the policy.",
    )
    conditions: list[PredicateConditionSpec] = Field(
        default_factory=list,
        max_length=16,
        description="Conditions the attestation's predicate must meet, all of them (e.g. the "
        "SLSA builder id); an attestation that fails one does not count.",
    )


class SignedIdentity(_Strict):
    """Which repository a signature must name (legacy ``docker-reference``), if any.

    cosign ignores the repository written into a signature; so does signgate by default, which is
    what lets an image and its signatures be copied between registries (Harbor replication, mirrors)
    and still verify.
    """

    match: Literal["Any", "ImageRepository", "Repositories"] = Field(
        default="Any",
        description="Any: the signed repository is not checked (as cosign verify). "
        "ImageRepository: the signature must name the repository the image is pulled from. "
        "Repositories: it must name a repository matching one of 'repositories' (e.g. the "
        "registry the images are signed in before replication). Only legacy signatures "
        "(simple-signing payloads) name a repository; with ImageRepository or Repositories, "
        "a signature that names none does not count.",
    )
    repositories: list[ImagePatternText] = Field(
        default_factory=list,
        max_length=256,
        description="Patterns (as in 'images') for match: Repositories.",
    )

    @model_validator(mode="after")
    def _patterns_iff_repositories(self) -> SignedIdentity:
        if (self.match == "Repositories") != bool(self.repositories):
            raise ValueError("'repositories' is set exactly when match is Repositories")
        return self


class TrustPolicySpec(_Strict):
    """What a TrustPolicy says: which images, who may sign them, and what happens otherwise."""

    images: list[ImagePatternText] = Field(
        min_length=1,
        max_length=256,
        description="Repository patterns this policy governs, matched against the normalised "
        "repository (nginx is docker.io/library/nginx): '*' matches within one path segment, "
        "'**' any number of segments.",
    )
    exclude_images: list[ImagePatternText] = Field(
        default_factory=list,
        alias="excludeImages",
        max_length=256,
        description="Repository patterns taken out of 'images'.",
    )
    namespace_selector: LabelSelector | None = Field(
        default=None,
        alias="namespaceSelector",
        description="Namespaces whose workloads the policy applies to; omitted or empty: all.",
    )
    mode: Literal["Enforce", "Warn", "Audit"] = Field(
        default="Enforce",
        description="Enforce denies an image that fails the policy; Warn admits it with a "
        "warning; Audit admits it and records the failure.",
    )
    authorities: list[Authority] = Field(
        min_length=1,
        max_length=64,
        description="Who may sign the images: public keys or keyless identities.",
    )
    threshold: int = Field(
        default=1,
        ge=0,
        description="How many distinct authorities must have a valid signature on the image. "
        "0 only with 'attestations': the attestations are checked, not image signatures "
        "(as cosign verify-attestation).",
    )
    required: list[AuthorityName] = Field(
        default_factory=list,
        description="Names of authorities that must be among those with a valid signature.",
    )
    signature_repository: str = Field(
        default="",
        alias="signatureRepository",
        max_length=512,
        description="Repository where the signatures are stored (cosign's COSIGN_REPOSITORY); "
        "empty: next to the image.",
    )
    require_digest: bool = Field(
        default=False,
        alias="requireDigest",
        description="Deny image references without @sha256:... instead of pinning them "
        "(for GitOps setups whose manifests must not be mutated).",
    )
    attestations: list[AttestationRequirement] = Field(
        default_factory=list,
        max_length=32,
        description="Attestations that must be attached to the image digest and verified, each by "
        "one of its authorities (keys only in this release).",
    )
    signed_identity: SignedIdentity = Field(
        default_factory=SignedIdentity,
        alias="signedIdentity",
        description="Whether the repository named inside a signature must match; default: not "
        "checked, so replicated images verify.",
    )
    index_covers_children: bool = Field(
        default=False,
        alias="indexCoversChildren",
        description="Admit a platform image referenced as repo:tag@sha256:<child> without its "
        "own signature when the image index the tag resolves to lists that digest and "
        "satisfies this policy (cosign sign without --recursive signs only the index).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrustPolicySpec:
        names = [a.name for a in self.authorities]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"authority names must be unique; repeated: {', '.join(duplicates)}")
        unknown = sorted(set(self.required) - set(names))
        if unknown:
            raise ValueError(f"'required' names unknown authorities: {', '.join(unknown)}")
        if self.threshold > len(self.authorities):
            raise ValueError(
                f"threshold {self.threshold} exceeds the number of authorities ({len(names)})"
            )
        if self.threshold == 0 and not self.attestations:
            raise ValueError("threshold 0 needs at least one entry in 'attestations'")
        for attestation in self.attestations:
            missing = sorted(set(attestation.authorities) - set(names))
            if missing:
                raise ValueError(
                    f"attestation {attestation.predicate_type!r} names unknown authorities: "
                    + ", ".join(missing)
                )
        return self


class ObjectMeta(BaseModel):
    """The parts of Kubernetes metadata signgate reads; the rest is kept, not interpreted."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    name: str = Field(
        min_length=1,
        max_length=253,
        description="The policy's name, given in every decision, warning and Event it causes.",
    )
    generation: int | None = Field(
        default=None,
        description="Set by the apiserver; grows with every change of the spec.",
    )
    uid: str | None = Field(default=None, description="Set by the apiserver.")
    resource_version: str | None = Field(
        default=None, alias="resourceVersion", description="Set by the apiserver."
    )


class TrustPolicy(BaseModel):
    """A whole TrustPolicy object, as in the cluster or in a ``--policy`` YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: Literal["signgate.dev/v1alpha1"] = Field(
        alias="apiVersion", description="Always signgate.dev/v1alpha1."
    )
    kind: Literal["TrustPolicy"] = Field(description="Always TrustPolicy.")
    metadata: ObjectMeta = Field(
        description="Kubernetes object metadata. TrustPolicies are cluster-scoped: no namespace."
    )
    spec: TrustPolicySpec = Field(description="What the policy requires.")
    status: dict[str, object] | None = Field(
        default=None,
        description="Written by the signgate operator; not read when deciding, and ignored in "
        "--policy files.",
    )
