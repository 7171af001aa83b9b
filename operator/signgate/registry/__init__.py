"""The registry side: an async, read-only OCI registry client — auth, tag → digest, manifests,
blobs, referrers — every read bounded by the caps in `RegistryLimits` and by one deadline.

Layers, bottom up: `_http` (one capped, retried HTTP exchange over a `RoundTrip`), `_transport`
(the 401 challenge → token flow), `client` (the OCI distribution API), `oci` (parsing manifests,
indexes and referrers). `RegistryClient` is the entry point.
"""

from signgate.registry._http import (
    RegistryLimits,
    RegistryOptions,
    Response,
    RoundTrip,
    read_capped,
)
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
    "Response",
    "RoundTrip",
    "fallback_tag",
    "read_capped",
]
