"""Who may sign: the verification material of one TrustPolicy authority.

These are what verification needs from a policy, and nothing more; `signgate.policy` builds them
from the TrustPolicy model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from signgate.signatures.keys import PublicKey


class RepositoryMatcher(Protocol):
    """Something that decides whether a normalised ``registry/repository`` matches."""

    def matches(self, name: str) -> bool:
        """Whether ``name`` matches."""
        ...


@dataclass(frozen=True, slots=True)
class SignedIdentityRule:
    """Which repository a signature must name (simple-signing ``docker-reference``)."""

    match: Literal["Any", "ImageRepository", "Repositories"] = "Any"
    repositories: tuple[RepositoryMatcher, ...] = ()


@dataclass(frozen=True, slots=True)
class CertificateIdentity:
    """A Fulcio certificate identity: each part exact, or a regular expression matched in full."""

    issuer: str | None = None
    issuer_regexp: str | None = None
    subject: str | None = None
    subject_regexp: str | None = None


@dataclass(frozen=True, slots=True)
class KeyAuthority:
    """An authority whose signatures verify with one public key from the policy."""

    name: str
    key: PublicKey
    requires_tlog: bool

    @property
    def describe(self) -> str:
        """How a person recognises this signer in a message."""
        return f"key {self.key.fingerprint[:19]}… ({self.key.algorithm})"


@dataclass(frozen=True, slots=True)
class KeylessAuthority:
    """An authority identified by a Fulcio certificate identity (OIDC issuer and SAN)."""

    name: str
    identity: CertificateIdentity
    requires_tlog: bool

    @property
    def describe(self) -> str:
        """How a person recognises this signer in a message."""
        issuer = self.identity.issuer or f"/{self.identity.issuer_regexp}/"
        subject = self.identity.subject or f"/{self.identity.subject_regexp}/"
        return f"keyless {subject} from {issuer}"


@dataclass(frozen=True, slots=True)
class CertificateAuthorityAuthority:
    """An authority whose signers hold certificates from a CA the policy supplies (your own PKI,
    cosign's ``--certificate-chain``): the CA certificates, and optionally the SAN they must name.
    """

    name: str
    certificates: tuple[bytes, ...]
    """DER: the root(s) and any intermediates, in any order."""
    subject: str | None
    subject_regexp: str | None
    requires_tlog: bool
    label: str
    """The root's subject, for messages."""

    @property
    def describe(self) -> str:
        """How a person recognises this signer in a message."""
        who = self.subject or (f"/{self.subject_regexp}/" if self.subject_regexp else "any SAN")
        return f"certificate for {who} from CA {self.label}"


AuthorityMaterial = KeyAuthority | KeylessAuthority | CertificateAuthorityAuthority
