"""From command-line arguments to a ready engine: policies, registry options, trusted root.

Every command that verifies (``verify``, ``serve``, ``explain``, ``audit``) builds its engine here,
so a flag means the same thing everywhere and is checked the same way. Every problem is a
`ConfigError` (one line on stderr, exit 2) raised before any registry is contacted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from signgate.engine.settings import CacheSettings, VerifierSettings
from signgate.engine.trusted_root_file import read_trusted_root
from signgate.engine.verifier import Verifier
from signgate.errors import ConfigError, KeyFormatError
from signgate.policy.compiled import (
    CompiledPolicy,
    adhoc_key_policy,
    adhoc_keyless_policy,
    compile_policy,
)
from signgate.registry import CredentialStore, RegistryClient, RegistryOptions
from signgate.signatures.authority import CertificateIdentity
from signgate.signatures.found import PREDICATE_TYPE_SHORTHANDS
from signgate.signatures.keys import PublicKey, load_public_key_pem
from signgate.signatures.trusted_root import TrustedRoot

if TYPE_CHECKING:
    from signgate.kube.api import KubeApi


@dataclass(frozen=True, slots=True)
class EngineSetup:
    """What a command verifies against, read and checked from its arguments."""

    policies: list[CompiledPolicy]
    registry: RegistryOptions
    trusted_root: TrustedRoot
    settings: VerifierSettings = field(default_factory=VerifierSettings)

    @contextlib.asynccontextmanager
    async def engine(self) -> AsyncIterator[Verifier]:
        """An engine on a registry client that is closed when the block ends."""
        async with RegistryClient(self.registry) as client:
            yield Verifier(client, trusted_root=self.trusted_root, settings=self.settings)


def engine_setup(
    args: argparse.Namespace,
    policies: list[CompiledPolicy],
    *,
    cache: CacheSettings | None = None,
) -> EngineSetup:
    """The registry options, trusted root and engine settings the arguments name.

    Raises:
        ConfigError: a registry flag or the trusted root is unusable.
    """
    registry = registry_options(args)
    trusted_root = read_trusted_root(args.trusted_root)
    settings = VerifierSettings(unmatched=args.unmatched, cache=cache or CacheSettings())
    return EngineSetup(policies, registry, trusted_root, settings)


def require_positive(value: float, flag: str) -> None:
    """Refuse a zero or negative duration.

    Raises:
        ConfigError: ``value`` is not positive.
    """
    if value <= 0:
        raise ConfigError(f"{flag} must be positive")


def read_key(path: str) -> PublicKey:
    """The PEM public key in the file at ``path``.

    Raises:
        ConfigError: unreadable, or not a public key signgate supports.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key {path}: {exc.strerror}") from exc
    try:
        return load_public_key_pem(data)
    except KeyFormatError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def file_policies(paths: Sequence[str]) -> list[CompiledPolicy]:
    """Every TrustPolicy in the YAML files at ``paths``, compiled.

    Raises:
        ConfigError: a file is unreadable or holds an invalid policy.
    """
    if not paths:
        return []
    # Imported here: YAML and the pydantic model are start-up time that ``verify --key`` skips.
    from signgate.policy.loading import load_policy_file

    return [
        compile_policy(policy, source=path) for path in paths for policy in load_policy_file(path)
    ]


def command_line_policies(
    args: argparse.Namespace, *, allow_none: bool = False
) -> list[CompiledPolicy]:
    """The policies the command line names: ``--policy`` files, plus one ad-hoc policy made of
    ``--key`` or ``--certificate-*`` flags. With ``allow_none``, [] means "the cluster's".

    Raises:
        ConfigError: contradictory or incomplete flags, or unreadable files.
    """
    policies = file_policies(args.policy)
    attestations = [PREDICATE_TYPE_SHORTHANDS.get(t, t) for t in args.attestation]
    keyless = keyless_identity(args)
    if args.key and keyless is not None:
        raise ConfigError(
            "give --key or --certificate-identity/--certificate-oidc-issuer, not both"
        )
    if args.key:
        keys = [
            (f"key-{i}" if len(args.key) > 1 else "key", read_key(p))
            for i, p in enumerate(args.key, 1)
        ]
        policies.append(
            adhoc_key_policy(keys, requires_tlog=args.tlog == "require", attestations=attestations)
        )
    elif keyless is not None:
        policies.append(adhoc_keyless_policy(keyless, attestations=attestations))
    elif args.attestation:
        raise ConfigError(
            "--attestation needs --key or --certificate-identity (policies list theirs in "
            "spec.attestations)"
        )
    if not policies and not allow_none:
        raise ConfigError(
            "nothing to verify against: give --key FILE, --certificate-identity and "
            "--certificate-oidc-issuer, or --policy FILE"
        )
    return policies


def keyless_identity(args: argparse.Namespace) -> CertificateIdentity | None:
    """The identity the --certificate-* flags name (cosign's flags, full-match regexps).

    Raises:
        ConfigError: not exactly one subject and one issuer flag, or a bad regular expression.
    """
    subject = (args.certificate_identity, args.certificate_identity_regexp)
    issuer = (args.certificate_oidc_issuer, args.certificate_oidc_issuer_regexp)
    if not any(subject) and not any(issuer):
        return None
    if sum(v is not None for v in subject) != 1 or sum(v is not None for v in issuer) != 1:
        raise ConfigError(
            "keyless verification needs exactly one of --certificate-identity and "
            "--certificate-identity-regexp, and exactly one of --certificate-oidc-issuer and "
            "--certificate-oidc-issuer-regexp"
        )
    for flag, value in (
        ("--certificate-identity-regexp", args.certificate_identity_regexp),
        ("--certificate-oidc-issuer-regexp", args.certificate_oidc_issuer_regexp),
    ):
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(
                    f"{flag} {value!r} is not a valid regular expression: {exc}"
                ) from exc
    return CertificateIdentity(
        issuer=args.certificate_oidc_issuer,
        issuer_regexp=args.certificate_oidc_issuer_regexp,
        subject=args.certificate_identity,
        subject_regexp=args.certificate_identity_regexp,
    )


def registry_options(args: argparse.Namespace) -> RegistryOptions:
    """``--insecure-registry``, ``--registry-ca`` and ``--registry-config``.

    Raises:
        ConfigError: a malformed flag, or a file that cannot be read.
    """
    ca_files: dict[str, str] = {}
    for item in args.registry_ca:
        host, sep, path = item.partition("=")
        if not sep or not host or not path:
            raise ConfigError(f"--registry-ca {item!r}: expected HOST:PORT=FILE")
        if not Path(path).is_file():
            raise ConfigError(f"--registry-ca {item!r}: {path} is not a readable file")
        ca_files[host.lower()] = path
    credentials = (
        CredentialStore.from_docker_config_file(args.registry_config)
        if args.registry_config
        else CredentialStore.empty()
    )
    insecure = frozenset(
        h.lower().removeprefix("http://").removeprefix("https://") for h in args.insecure_registry
    )
    return RegistryOptions(insecure_hosts=insecure, ca_files=ca_files, credentials=credentials)


async def cluster_view(
    policies: list[CompiledPolicy], *, need_cluster: bool
) -> tuple[KubeApi | None, list[CompiledPolicy], dict[str, dict[str, str]] | None]:
    """(API client, policies, namespace labels): the command line's policies, else the cluster's.

    The caller closes the client. Kopf is imported only when a cluster is used.

    Raises:
        ConfigError: no credentials, or the cluster cannot be read.
    """
    if policies and not need_cluster:
        return None, policies, None
    from signgate.kube import snapshot
    from signgate.kube.api import KubeApiError

    api = snapshot.connect()
    try:
        labels = await snapshot.namespace_labels(api)
        if not policies:
            namespace = os.environ.get("POD_NAMESPACE") or "signgate"
            policies = await snapshot.cluster_policies(api, namespace)
    except KubeApiError as exc:
        await api.close()
        raise ConfigError(f"cannot read the cluster: {exc}") from exc
    return api, policies, labels
