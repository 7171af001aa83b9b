"""The engine: resolve → discover → verify → decide, for one image or many, under one deadline.

`Verifier` is what every caller uses (``signgate verify``, the webhook, the operator, explain,
audit): it resolves a tag to its digest in the registry, finds the signatures attached to that
digest (`discover_signatures`), has each governing policy evaluate them (`signgate.policy
.evaluate`, over the verification core `signgate.signatures`), and combines the outcomes into one
`ImageDecision` — with caches that only make it faster. It never raises for a bad image,
registry or signature: every failure to decide is a decision with its reason.

Modules: `verifier` (the engine and its caches), `discovery` (where cosign and Sigstore put
signatures in a registry), `trace` (what a traced run saw, for explain), `trusted_root_file` (the
Sigstore trusted root, from the package or a file, re-read when it changes).
"""

from signgate.engine.discovery import DiscoveryLimits, discover_signatures
from signgate.engine.settings import CacheSettings, VerifierSettings
from signgate.engine.trace import Trace
from signgate.engine.trusted_root_file import (
    TrustedRootFile,
    default_trusted_root,
    read_trusted_root,
)
from signgate.engine.verifier import Verifier

__all__ = [
    "CacheSettings",
    "DiscoveryLimits",
    "Trace",
    "TrustedRootFile",
    "Verifier",
    "VerifierSettings",
    "default_trusted_root",
    "discover_signatures",
    "read_trusted_root",
]
