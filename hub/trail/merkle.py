"""Merkle trees over SHA-256 as defined for Certificate Transparency (pure core).

What it is: the tree hash, inclusion proofs and consistency proofs of RFC 6962 section 2.1,
with the verification procedures written as the numbered steps of RFC 9162:

- tree hash MTH and the split point k (RFC 6962 2.1, RFC 9162 2.1.1);
- inclusion proofs PATH(m, D[n]) (RFC 9162 2.1.3.1) and their verification (2.1.3.2);
- consistency proofs PROOF(m, D[n]) (RFC 9162 2.1.4.1) and their verification (2.1.4.2).

Leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right), and the empty
tree's hash is SHA-256 of the empty string. Functions take leaf *hashes* (``leaf_hash`` of
each entry), not entries, and refuse any value that is not 32 bytes long.

The hub signs one Merkle root per batch of receipts and hands each receipt its inclusion proof
(docs/adr/0005-reliable-delivery.md); the planned audit trail will use consistency proofs.

What it must never do: open a file, a socket or a database session, or accept a hash that is
not exactly 32 bytes. Malformed input raises ``MerkleError``; the ``verify_*`` functions only
ever answer True or False.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "MerkleError",
    "RootBuilder",
    "check_hash",
    "check_size",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proofs",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion_proof",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

# SHA-256 is the only hash: a proof or root of any other length is malformed, not "different".
HASH_SIZE = 32
# RFC 9162 carries tree_size and leaf_index as uint64; nothing larger can be a real tree, and
# the bound keeps every proof at most 64 hashes long.
MAX_TREE_SIZE = 2**64 - 1
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256


class MerkleError(ValueError):
    """A tree, proof or size is malformed, or a proof does not fit the claimed position.

    ``reason`` is a stable kebab-case code (``index-out-of-range``, ``size-out-of-range``,
    ``hash-size``, ``proof-size``, ``root-mismatch``) for logs and callers that map errors.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d) (RFC 6962 2.1)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right) (RFC 6962 2.1)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


# --- building -------------------------------------------------------------------------------


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) computed from the leaf hashes, level by level without recursion.

    Pairing neighbours on each level and carrying an odd last node up unchanged builds exactly
    the RFC 6962 tree: the left part of every split is a complete subtree of 2^j leaves.
    """
    _check_hashes(leaf_hashes, "leaf hash")
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [
            _sha256(_NODE_PREFIX + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) (RFC 9162 2.1.3.1): sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaf_hashes):
        raise MerkleError(
            f"leaf index must be in [0, {len(leaf_hashes)}); found {index}",
            reason="index-out-of-range",
        )
    return _path(_levels(leaf_hashes), index)


def inclusion_proofs(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """The inclusion proof of every leaf, in leaf order, from one pass over the tree.

    O(n log n) in all: the tree's levels are hashed once and each proof reads log n of them.
    """
    levels = _levels(leaf_hashes)
    return [_path(levels, index) for index in range(len(leaf_hashes))]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) (RFC 9162 2.1.4.1), with n = len(leaf_hashes).

    Empty when ``old_size`` == n. A proof from the empty tree (0 < n) is refused: every tree
    extends the empty one, so such a proof would claim nothing (RFC 9162 requires 0 < m).
    """
    new_size = len(leaf_hashes)
    if old_size == new_size:
        _check_hashes(leaf_hashes, "leaf hash")
        return []
    if not 0 < old_size < new_size:
        raise MerkleError(
            f"old tree size must be in [1, {new_size}]; found {old_size}",
            reason="size-out-of-range",
        )
    levels = _levels(leaf_hashes)
    # SUBPROOF(m, D[start:start+n], complete) unrolled: each step appends the hash of the
    # sibling subtree that the recursion would append after its own result, so the list is
    # built top-down and reversed at the end.
    proof: list[bytes] = []
    start, m, n, complete = 0, old_size, new_size, True
    while m != n:
        k = split_point(n)
        if m <= k:
            proof.append(_subtree(levels, start + k, start + n))
            n = k
        else:
            proof.append(_subtree(levels, start, start + k))
            start, m, n, complete = start + k, m - k, n - k, False
    if not complete:
        # The old tree's last complete subtree, which the verifier cannot know by itself.
        proof.append(_subtree(levels, start, start + n))
    proof.reverse()
    return proof


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    for position, value in enumerate(hashes):
        if len(value) != HASH_SIZE:
            raise MerkleError(
                f"{what} {position} must be {HASH_SIZE} bytes; found {len(value)}",
                reason="hash-size",
            )


def _levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first; an odd last node is carried up unchanged, so
    node j of level h is MTH of leaves [j * 2^h, min((j + 1) * 2^h, n))."""
    _check_hashes(leaf_hashes, "leaf hash")
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        level = [
            _sha256(_NODE_PREFIX + below[i] + below[i + 1]).digest()
            for i in range(0, len(below) - 1, 2)
        ]
        if len(below) % 2:
            level.append(below[-1])
        levels.append(level)
    return levels


def _path(levels: list[list[bytes]], index: int) -> list[bytes]:
    path: list[bytes] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        # A node without a right sibling is carried up; the RFC tree has no node there.
        if sibling < len(level):
            path.append(level[sibling])
        index >>= 1
    return path


def _subtree(levels: list[list[bytes]], start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range that is a node of the tree: ``start`` is a multiple of
    2^h, where 2^h is the smallest power of two >= end - start."""
    height = (end - start - 1).bit_length()
    return levels[height][start >> height]


class RootBuilder:
    """The root of a tree that grows one leaf at a time, in O(log n) memory: what a verifier
    needs to check a log of millions of entries against checkpoints at any of its sizes.

    It keeps the perfect subtrees that cover the leaves so far, one per set bit of the size,
    largest first; the root folds them from the right (RFC 6962 2.1: the left part of every
    split is the largest perfect subtree)."""

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (leaves in the subtree, its hash)
        self.size = 0

    def add(self, leaf: bytes) -> None:
        """Append a leaf hash."""
        check_hash(leaf, "leaf hash")
        if self.size >= MAX_TREE_SIZE:
            raise MerkleError(
                "the tree cannot grow past 2^64 - 1 leaves", reason="size-out-of-range"
            )
        stack = self._stack
        count, value = 1, leaf
        while stack and stack[-1][0] == count:
            _, left = stack.pop()
            value = _sha256(_NODE_PREFIX + left + value).digest()
            count *= 2
        stack.append((count, value))
        self.size += 1

    def root(self) -> bytes:
        """MTH of the leaves added so far."""
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = _sha256(_NODE_PREFIX + left + value).digest()
        return value


# --- verifying ------------------------------------------------------------------------------


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` yields for ``leaf_hash`` at ``index`` in a tree of ``size``.

    RFC 9162 2.1.3.2, steps 1 to 5 except the final comparison with a known root, which is the
    caller's (``verify_inclusion``, or a signature check over the returned root). Raises
    ``MerkleError`` if the position is impossible or the proof has the wrong length.
    """
    check_size(size)
    check_hash(leaf_hash, "leaf hash")
    # 1. leaf_index must be smaller than tree_size.
    if not 0 <= index < size:
        raise MerkleError(
            f"leaf index must be in [0, {size}); found {index}", reason="index-out-of-range"
        )
    # 2. fn = leaf_index, sn = tree_size - 1.
    fn, sn = index, size - 1
    # 3. r = hash.
    r = leaf_hash
    # 4. For each p in inclusion_path:
    for p in proof:
        # 4a. The path is longer than the tree is high.
        if sn == 0:
            raise MerkleError("inclusion proof has too many hashes", reason="proof-size")
        check_hash(p, "proof hash")
        # 4b. p is a left sibling, or the node is the last on its level (its parent is higher).
        if fn & 1 or fn == sn:
            r = _sha256(_NODE_PREFIX + p + r).digest()
            # Skip the levels where this node is carried up as the last, unpaired node.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(_NODE_PREFIX + r + p).digest()
        # 4c.
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0: the path reached the root. (Comparing r is the caller's.)
    if sn != 0:
        raise MerkleError("inclusion proof has too few hashes", reason="proof-size")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True if ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``size`` with
    ``root`` (RFC 9162 2.1.3.2). Never raises for malformed input: it answers False."""
    try:
        calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    except MerkleError:
        return False
    # 5. r must equal root_hash.
    return calculated == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True if ``proof`` shows the tree (``new_size``, ``new_root``) extends the tree
    (``old_size``, ``old_root``) (RFC 9162 2.1.4.2). Never raises for malformed input."""
    try:
        _check_consistency(old_size, new_size, old_root, new_root, proof)
    except MerkleError:
        return False
    return True


def _check_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, proof: Sequence[bytes]
) -> None:
    check_size(first)
    check_size(second)
    check_hash(first_hash, "old root")
    check_hash(second_hash, "new root")
    if first > second:
        raise MerkleError(
            f"old tree size must not exceed new tree size {second}; found {first}",
            reason="size-out-of-range",
        )
    if first == second:
        # Outside RFC 9162 (which needs first < second): a tree is consistent with itself,
        # with an empty proof, and a tree of size 0 can only have the empty root.
        if proof:
            raise MerkleError("proof between equal sizes must be empty", reason="proof-size")
        if first_hash != second_hash or (first == 0 and first_hash != EMPTY_ROOT):
            raise MerkleError("roots differ for equal tree sizes", reason="root-mismatch")
        return
    if first == 0:
        raise MerkleError(
            "a consistency proof from the empty tree proves nothing", reason="size-out-of-range"
        )
    # RFC 9162 2.1.4.2, for 0 < first < second.
    # 1. An empty consistency_path fails.
    if not proof:
        raise MerkleError("consistency proof is empty", reason="proof-size")
    path = list(proof)
    # 2. If first is an exact power of 2, prepend first_hash.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = first - 1, second - 1
    # 4. While LSB(fn) is set, right-shift fn and sn.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = the first value of consistency_path.
    check_hash(path[0], "proof hash")
    fr = sr = path[0]
    # 6. For each subsequent value c:
    for c in path[1:]:
        # 6a. The path is longer than the tree is high.
        if sn == 0:
            raise MerkleError("consistency proof has too many hashes", reason="proof-size")
        check_hash(c, "proof hash")
        # 6b. c is left of the old tree's right border: it is in both trees.
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE_PREFIX + c + fr).digest()
            sr = _sha256(_NODE_PREFIX + c + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        # 6c. Otherwise c is only in the new tree, to the right.
        else:
            sr = _sha256(_NODE_PREFIX + sr + c).digest()
        # 6d.
        fn >>= 1
        sn >>= 1
    # 7. fr == first_hash, sr == second_hash, and sn == 0.
    if sn != 0:
        raise MerkleError("consistency proof has too few hashes", reason="proof-size")
    if fr != first_hash:
        raise MerkleError("proof does not yield the old root", reason="root-mismatch")
    if sr != second_hash:
        raise MerkleError("proof does not yield the new root", reason="root-mismatch")


def check_size(size: int) -> None:
    """Refuse a tree size outside [0, 2^64 - 1]."""
    if not 0 <= size <= MAX_TREE_SIZE:
        raise MerkleError(
            f"tree size must be in [0, 2^64 - 1]; found {size}", reason="size-out-of-range"
        )


def check_hash(value: bytes, what: str) -> None:
    """Refuse a hash that is not exactly 32 bytes."""
    if len(value) != HASH_SIZE:
        raise MerkleError(
            f"{what} must be {HASH_SIZE} bytes; found {len(value)}", reason="hash-size"
        )
