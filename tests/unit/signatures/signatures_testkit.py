"""Helpers for the signature-core tests: a reference Merkle tree and a tiny Rekor-shaped log.

`FakeLog` makes Rekor-shaped entries signed with real ephemeral keys for the cases no vector
covers (tampering at a chosen place, Ed25519 checkpoints, every Merkle tree shape). The Merkle
functions are written from RFC 6962 section 2.1, independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from signgate.signatures.keys import PublicKey
from signgate.signatures.tlog import InclusionProof, TlogEntry
from signgate.signatures.trusted_root import TransparencyLogKey, TrustedRoot
from support.cosign_key import SigningKey, sign

CONFORMANCE = "sigstore-conformance/test/assets/bundle-verify"
CONTAINERS = "containers-image/signature"
PRODUCTION_ROOT = "sigstore-python/sigstore/_store/tuf-repo-cdn.sigstore.dev/trusted_root.json"
PUBLIC_GOOD_ROOT = "sigstore-go/pkg/testing/data/trusted-roots/public-good.json"
REKOR_V1_LOG_ID = bytes.fromhex("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")


@dataclass(frozen=True)
class LegacyLayer:
    """One cosign ``.sig`` layer as containers/image stores it."""

    mime_type: str
    payload: bytes
    annotations: dict[str, str]

    @property
    def signature(self) -> bytes:
        return base64.b64decode(self.annotations["dev.cosignproject.cosign/signature"])


def public_pem(key: SigningKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- RFC 6962 reference Merkle tree (section 2.1), written from the RFC, not from the code ----


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 over leaf *data*."""
    if len(leaves) == 1:
        return _leaf(leaves[0])
    k = _split(len(leaves))
    return _node(reference_root(leaves[:k]), reference_root(leaves[k:]))


def reference_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_root(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_root(leaves[:k])]


# --- a Rekor-shaped log -----------------------------------------------------------------------


def hashedrekord_body(signature: bytes, verifier_pem: bytes, artifact_sha256: bytes) -> bytes:
    body = {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": artifact_sha256.hex()}},
            "signature": {
                "content": base64.b64encode(signature).decode(),
                "publicKey": {"content": base64.b64encode(verifier_pem).decode()},
            },
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


class FakeLog:
    """An append-only log that signs SETs and checkpoints like Rekor v1 (ECDSA) or v2 (Ed25519)."""

    def __init__(self, key: SigningKey, *, name: str = "fake.rekor.example") -> None:
        self.key = key
        self.name = name
        self.origin = f"{name} - 42"
        self.public = PublicKey.from_key(key.public_key())
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.public_key().public_bytes_raw()
            # C2SP signed-note Ed25519 key ID, which Rekor v2 also uses as its log ID.
            self.log_id = hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()
        else:
            self.log_id = self.public.key_id
        self.leaves: list[bytes] = []

    def append(self, body: bytes) -> int:
        self.leaves.append(body)
        return len(self.leaves) - 1

    def sign_checkpoint(self, tree_size: int, root_hash: bytes, *, extra: str = "") -> str:
        note = f"{self.origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n{extra}"
        signature = sign(self.key, note.encode())
        line = base64.b64encode(self.log_id[:4] + signature).decode()
        return f"{note}\n\u2014 {self.name} {line}\n"

    def set_for(self, body: bytes, index: int, integrated_time: int) -> bytes:
        payload = {
            "body": base64.b64encode(body).decode(),
            "integratedTime": integrated_time,
            "logID": self.log_id.hex(),
            "logIndex": index,
        }
        return sign(self.key, json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())

    def entry(
        self,
        index: int,
        *,
        integrated_time: int | None = 1_700_000_000,
        with_set: bool = True,
        with_proof: bool = True,
        kind: str = "hashedrekord",
    ) -> TlogEntry:
        body = self.leaves[index]
        size = len(self.leaves)
        root = reference_root(self.leaves)
        proof = InclusionProof(
            log_index=index,
            root_hash=root,
            tree_size=size,
            hashes=tuple(reference_path(index, self.leaves)),
            checkpoint=self.sign_checkpoint(size, root),
        )
        return TlogEntry(
            log_index=index,
            log_id=self.log_id,
            kind=kind,
            kind_version="0.0.1",
            integrated_time=integrated_time,
            signed_entry_timestamp=(
                self.set_for(body, index, integrated_time)
                if with_set and integrated_time is not None
                else None
            ),
            inclusion_proof=proof if with_proof else None,
            canonicalized_body=body,
        )

    def trusted_root(
        self, *, valid_from: datetime | None = None, valid_until: datetime | None = None
    ) -> TrustedRoot:
        start = valid_from or datetime(2020, 1, 1, tzinfo=UTC)
        log = TransparencyLogKey(self.log_id, self.public, "", start, valid_until)
        return TrustedRoot(tlogs=(log,))
