"""The verification core: parse and check cosign / Sigstore signature material, with no I/O.

Everything here takes bytes (and already-parsed objects) and returns frozen, verified or
parsed values; nothing reads a file, the network or the clock (an import-linter contract keeps
asyncio, aiohttp, Kopf and the registry client out). The entry points, in pipeline order:

* `prepare`: decode a discovered signature (`found`) once into a `PreparedSignature`;
* `verify_with_authority` / `verify_attestation` (`verify`): check it against one authority of a
  policy for one digest, returning a `VerifiedSignature` / `VerifiedAttestation` or a `Rejection`
  that says why (`results`).

The parsers they build on: `keys` (every key type cosign uses), `dsse` (envelopes, PAE, in-toto
statements), `bundle` (Sigstore bundles v0.1-v0.3), `tlog` (Rekor entries: SET, inclusion proof,
checkpoint, body consistency), `certificate` (Fulcio and your own CA), `timestamp` (RFC 3161),
`trusted_root` (``trusted_root.json``), `simplesigning`, `predicate` (attestation conditions),
`describe` (what explain shows about a signature).
"""

from signgate.signatures.bundle import MessageSignature, SigstoreBundle, parse_bundle
from signgate.signatures.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    DsseEnvelope,
    InTotoStatement,
    Subject,
    pae,
    parse_envelope,
    parse_statement,
)
from signgate.signatures.keys import PublicKey, load_public_key_pem, public_key_from_der
from signgate.signatures.prepare import prepare
from signgate.signatures.results import (
    PreparedSignature,
    Rejection,
    RejectionKind,
    VerifiedAttestation,
    VerifiedSignature,
)
from signgate.signatures.tlog import (
    InclusionProof,
    TlogEntry,
    VerifiedTlogEntry,
    parse_bundle_tlog_entry,
    parse_cosign_bundle_annotation,
    verify_entry_body,
    verify_inclusion_proof,
    verify_set,
    verify_tlog_entry,
)
from signgate.signatures.trusted_root import (
    CertificateAuthority,
    TransparencyLogKey,
    TrustedRoot,
    load_trusted_root,
    trusted_root_from_rekor_key,
)
from signgate.signatures.verify import verify_attestation, verify_with_authority

__all__ = [
    "IN_TOTO_PAYLOAD_TYPE",
    "CertificateAuthority",
    "DsseEnvelope",
    "InTotoStatement",
    "InclusionProof",
    "MessageSignature",
    "PreparedSignature",
    "PublicKey",
    "Rejection",
    "RejectionKind",
    "SigstoreBundle",
    "Subject",
    "TlogEntry",
    "TransparencyLogKey",
    "TrustedRoot",
    "VerifiedAttestation",
    "VerifiedSignature",
    "VerifiedTlogEntry",
    "load_public_key_pem",
    "load_trusted_root",
    "pae",
    "parse_bundle",
    "parse_bundle_tlog_entry",
    "parse_cosign_bundle_annotation",
    "parse_envelope",
    "parse_statement",
    "prepare",
    "public_key_from_der",
    "trusted_root_from_rekor_key",
    "verify_attestation",
    "verify_entry_body",
    "verify_inclusion_proof",
    "verify_set",
    "verify_tlog_entry",
    "verify_with_authority",
]
