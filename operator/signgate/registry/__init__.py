"""Async, read-only OCI registry client (aiohttp): auth, tag→digest, manifests, blobs, referrers."""

from signgate.registry._transport import RegistryLimits, RegistryOptions
from signgate.registry.auth import Credentials, CredentialStore
from signgate.registry.client import FetchedManifest, Referrers, RegistryClient, fallback_tag

__all__ = [
    "CredentialStore",
    "Credentials",
    "FetchedManifest",
    "Referrers",
    "RegistryClient",
    "RegistryLimits",
    "RegistryOptions",
    "fallback_tag",
]
