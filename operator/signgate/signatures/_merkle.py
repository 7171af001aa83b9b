"""RFC 6962 / RFC 9162 Merkle tree hashing and inclusion-proof evaluation (internal).

The algorithm is RFC 9162 §2.1.3.2 ("Verifying an Inclusion Proof"), in the compact form used by
transparency-dev/merkle and sigstore-python: split the proof into the part below the point where
the leaf's path and the tree's right border meet ("inner") and the border part above it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from signgate.errors import TransparencyLogError

HASH_SIZE = 32
MAX_PROOF_HASHES = 64  # a tree of at most 2**63 leaves (int64 sizes) has depth < 64


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: sha256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: sha256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """Compute the tree root implied by an inclusion proof for ``leaf`` at ``index``.

    Args:
        index: the leaf's 0-based index in the tree.
        tree_size: the number of leaves in the tree the proof is for.
        leaf: the leaf hash (`leaf_hash` of the entry).
        proof: the audit path, bottom to top.

    Returns:
        The root hash; the caller compares it with the signed root.

    Raises:
        TransparencyLogError: an index outside the tree or a proof of the wrong length.
    """
    if not 0 <= index < tree_size:
        raise TransparencyLogError(
            f"inclusion proof index {index} is outside a tree of size {tree_size}"
        )
    # "inner": levels where the leaf's path and the last leaf's path have not yet joined.
    inner = (index ^ (tree_size - 1)).bit_length()
    # "border": remaining levels, where our subtree is always the left child of the right border.
    border = (index >> inner).bit_count()
    if len(proof) != inner + border:
        raise TransparencyLogError(
            f"inclusion proof has {len(proof)} hashes, a leaf at {index} in a tree of "
            f"{tree_size} needs {inner + border}"
        )
    node = leaf
    for level, sibling in enumerate(proof[:inner]):
        node = _node_hash(node, sibling) if (index >> level) & 1 == 0 else _node_hash(sibling, node)
    for sibling in proof[inner:]:
        node = _node_hash(sibling, node)
    return node
