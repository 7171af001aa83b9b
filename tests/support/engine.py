"""Helpers for tests that run the real signgate engine against real registries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from signgate.deadline import Deadline
from signgate.engine import CacheSettings, Verifier, VerifierSettings
from signgate.policy.compiled import CompiledPolicy, adhoc_key_policy
from signgate.policy.evaluate import ImageDecision
from signgate.registry import CredentialStore, RegistryClient, RegistryOptions
from signgate.signatures.keys import PublicKey
from support.formats import PrivateKey
from support.registry import RegistryServer


def options_for(registry: RegistryServer, **overrides: object) -> RegistryOptions:
    """How a user would point signgate at this registry: CA, credentials, or insecure HTTP."""
    if registry.ca_file is None:
        base = RegistryOptions(insecure_hosts=frozenset({registry.host}))
    else:
        credentials = CredentialStore.empty()
        if registry.username is not None:
            config = registry.workdir / "docker-config.json"
            credentials = CredentialStore.from_docker_config_file(registry.docker_config(config))
        base = RegistryOptions(
            ca_files={registry.host: str(registry.ca_file)}, credentials=credentials
        )
    if overrides:
        from dataclasses import replace

        return replace(base, **overrides)  # type: ignore[arg-type]
    return base


def key_policy(*keys: PrivateKey, requires_tlog: bool = False) -> CompiledPolicy:
    """The policy ``signgate verify --key`` builds for these keys."""
    named = [(f"key-{i}", PublicKey.from_key(k.public_key())) for i, k in enumerate(keys, 1)]
    return adhoc_key_policy(named, requires_tlog=requires_tlog)


class Checker:
    """Runs the real engine against one registry."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        # No caching: these tests change signatures between checks of the same image.
        no_cache = CacheSettings(tag_ttl=0, verified_ttl=0, unverified_ttl=0)
        self.verifier = Verifier(client, settings=VerifierSettings(cache=no_cache))

    async def __call__(
        self, image: str, policies: Sequence[CompiledPolicy], *, timeout: float = 20.0
    ) -> ImageDecision:
        return await self.verifier.verify_image(image, policies, Deadline.after(timeout))


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)
