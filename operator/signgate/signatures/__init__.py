"""The verification core: parse and check cosign / Sigstore signature material, with no I/O.

Everything here takes bytes (and already-parsed objects) and returns frozen, verified or
parsed values; nothing reads a file, the network or the clock. Modules:

* `keys`: public keys and signature checks for every key type cosign uses.
* `cosign_key`: cosign's encrypted private key format, and a cosign-compatible signer (tooling).
* `dsse`: DSSE envelopes, PAE and in-toto statements.
* `bundle`: Sigstore bundles v0.1-v0.3.
* `trusted_root`: ``trusted_root.json``.
* `tlog`: Rekor entries: SET, inclusion proof and checkpoint, body consistency.
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

__all__ = [
    "IN_TOTO_PAYLOAD_TYPE",
    "CertificateAuthority",
    "DsseEnvelope",
    "InTotoStatement",
    "InclusionProof",
    "MessageSignature",
    "PublicKey",
    "SigstoreBundle",
    "Subject",
    "TlogEntry",
    "TransparencyLogKey",
    "TrustedRoot",
    "VerifiedTlogEntry",
    "load_public_key_pem",
    "load_trusted_root",
    "pae",
    "parse_bundle",
    "parse_bundle_tlog_entry",
    "parse_cosign_bundle_annotation",
    "parse_envelope",
    "parse_statement",
    "public_key_from_der",
    "trusted_root_from_rekor_key",
    "verify_entry_body",
    "verify_inclusion_proof",
    "verify_set",
    "verify_tlog_entry",
]
