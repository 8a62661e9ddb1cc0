"""RFC 6962 / RFC 9162 Merkle roots and proofs from stored perfect-subtree hashes (pure core).

What it is for: the audit trail grows to millions of leaves, and ``hub.trail.merkle`` rebuilds every
level from the leaf hashes on each call. Here the store keeps, once and for all, the hash of
every *perfect* subtree: the node ``(level, index)`` is MTH of the leaves
``[index * 2**level, (index + 1) * 2**level)``, and level 0 holds the leaf hashes. In an
append-only log such a node never changes once its last leaf exists, so it can be written once
and read forever. Every hash in a root, an inclusion proof or a consistency proof is either one
such node or the hash of a right edge that splits into at most log2(n) of them, so a proof
needs O(log n) stored nodes and no leaf is hashed again.

The functions come in pairs so that a store needs one query per request: ``*_keys`` says which
nodes to fetch, and the matching function computes the answer from a Mapping of exactly those
nodes. ``appended_nodes`` and ``append_many`` say which nodes to write when leaves arrive.

Key counts, for a tree of n >= 1 leaves with L = floor(log2 n) and P = popcount(n) (proved in
the comments of ``_inclusion_ranges`` and ``_consistency_ranges``, checked by the tests):

- ``root_keys`` and ``frontier_keys``: P <= L + 1;
- ``inclusion_keys``: at most L + P - 1 <= 2L;
- ``consistency_keys``: at most L + P <= 2L + 1.

What it must never do: open a file, a socket or a database session, hash a leaf it was not
given, or guess a node it was not given. A missing node, a hash that is not 32 bytes, or an
impossible size or index raises ``hub.trail.merkle.MerkleError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hub.trail.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    MerkleError,
    check_hash,
    check_size,
    node_hash,
    split_point,
)

__all__ = [
    "NodeKey",
    "StoredNode",
    "append_many",
    "appended_nodes",
    "consistency_keys",
    "consistency_proof",
    "frontier_keys",
    "inclusion_keys",
    "inclusion_proof",
    "root_keys",
    "subtree_keys",
    "tree_root",
]

# (level, index): the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level).
NodeKey = tuple[int, int]
# (level, index, hash): one row to write to the store.
StoredNode = tuple[int, int, bytes]

_Range = tuple[int, int]


# --- appending ------------------------------------------------------------------------------


def frontier_keys(size: int) -> list[NodeKey]:
    """The stored nodes that appending to a tree of ``size`` leaves may combine with, left to
    right: one perfect subtree per set bit of ``size``, together covering [0, size).

    These are also ``root_keys(size)``. ``appended_nodes`` reads only those at the trailing set
    bits of ``size`` (the left siblings of the nodes the new leaf completes); ``append_many``
    may read any of them, because later leaves of a batch complete larger subtrees whose left
    halves were already complete before the batch.
    """
    check_size(size)
    return [
        (level, (size >> level) - 1)
        for level in reversed(range(size.bit_length()))
        if (size >> level) & 1
    ]


def appended_nodes(
    size: int, leaf_hash: bytes, frontier: Mapping[NodeKey, bytes]
) -> list[StoredNode]:
    """The nodes to store when ``leaf_hash`` becomes leaf number ``size`` (0-based) of a tree
    that had ``size`` leaves: the leaf at (0, size), then each perfect subtree it completes,
    lowest first. ``frontier`` needs at least the nodes named by ``frontier_keys(size)``."""
    _check_growth(size, 1)
    return _append(size, leaf_hash, lambda key: _fetch(frontier, key))


def append_many(
    size: int, leaf_hashes: Sequence[bytes], frontier: Mapping[NodeKey, bytes]
) -> list[StoredNode]:
    """The nodes to store when ``leaf_hashes`` are appended in order to a tree of ``size``
    leaves, in the order ``appended_nodes`` would give them one leaf at a time.

    Only ``frontier_keys(size)`` is read from ``frontier``; every other left sibling is a node
    made earlier in the same batch.
    """
    _check_growth(size, len(leaf_hashes))
    # The left sibling an append needs at a level is always the latest complete node of that
    # level, so remembering the latest node made per level is enough to serve the batch. The
    # index comparison below therefore always holds once a level has a node from this batch;
    # it stays so that a wrong lookup falls through to the frontier and fails loudly there.
    latest: dict[int, tuple[int, bytes]] = {}

    def lookup(key: NodeKey) -> bytes:
        made = latest.get(key[0])
        if made is not None and made[0] == key[1]:
            return made[1]
        return _fetch(frontier, key)

    nodes: list[StoredNode] = []
    for offset, leaf in enumerate(leaf_hashes):
        appended = _append(size + offset, leaf, lookup)
        for level, index, value in appended:
            latest[level] = (index, value)
        nodes.extend(appended)
    return nodes


def _append(size: int, leaf_hash: bytes, lookup: Callable[[NodeKey], bytes]) -> list[StoredNode]:
    """Leaf ``size`` and the perfect subtrees it completes: while the node just made is a
    right child (odd index), hash it with its left sibling into their parent."""
    check_hash(leaf_hash, "leaf hash")
    level, index, value = 0, size, leaf_hash
    nodes: list[StoredNode] = [(level, index, value)]
    while index & 1:
        value = node_hash(lookup((level, index - 1)), value)
        level, index = level + 1, index >> 1
        nodes.append((level, index, value))
    return nodes


# --- which nodes a request needs ------------------------------------------------------------


def subtree_keys(start: int, end: int) -> list[NodeKey]:
    """The perfect aligned subtrees, left to right, whose hashes determine MTH(D[start:end])
    by RFC 6962's split recursion (one key if the range is itself such a subtree, none if empty).

    For every range that is a node of an RFC 6962 tree (``start`` a multiple of the smallest
    power of two >= ``end - start``), which is every range this module asks for, the keys are
    one per set bit of ``end - start``. Other ranges are accepted but split further, down to
    single leaves in the worst case.
    """
    _check_range(start, end)
    keys: list[NodeKey] = []
    _collect_keys(start, end, keys)
    return keys


def root_keys(size: int) -> list[NodeKey]:
    """The nodes MTH(D[size]) is computed from: one perfect subtree per set bit of ``size``."""
    check_size(size)
    return subtree_keys(0, size)


def inclusion_keys(index: int, size: int) -> list[NodeKey]:
    """The nodes PATH(index, D[size]) is computed from (RFC 9162 2.1.3.1), without repeats."""
    return _keys_of(_inclusion_ranges(index, size))


def consistency_keys(old_size: int, new_size: int) -> list[NodeKey]:
    """The nodes PROOF(old_size, D[new_size]) is computed from (RFC 9162 2.1.4.1)."""
    return _keys_of(_consistency_ranges(old_size, new_size))


def _keys_of(ranges: Sequence[_Range]) -> list[NodeKey]:
    keys: list[NodeKey] = []
    for start, end in ranges:
        _collect_keys(start, end, keys)
    # The ranges of one proof are disjoint, so this never drops a key; it keeps the promise.
    return list(dict.fromkeys(keys))


def _collect_keys(start: int, end: int, keys: list[NodeKey]) -> None:
    if start == end:
        return
    key = _perfect_key(start, end)
    if key is not None:
        keys.append(key)
        return
    k = split_point(end - start)
    _collect_keys(start, start + k, keys)
    _collect_keys(start + k, end, keys)


def _perfect_key(start: int, end: int) -> NodeKey | None:
    """The stored node covering exactly [start, end), if there is one."""
    width = end - start
    if width & (width - 1) or start % width:
        return None
    level = width.bit_length() - 1
    return (level, start >> level)


# --- computing from fetched nodes -----------------------------------------------------------


def tree_root(size: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH(D[size]) from the nodes named by ``root_keys(size)``; the empty tree's root is
    SHA-256 of the empty string, as in ``hub.trail.merkle.root([])``."""
    check_size(size)
    return _range_hash(0, size, nodes)


def inclusion_proof(index: int, size: int, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 2.1.3.1) from the nodes named by ``inclusion_keys``;
    equal, hash for hash, to ``hub.trail.merkle.inclusion_proof`` over the same leaves."""
    return [_range_hash(start, end, nodes) for start, end in _inclusion_ranges(index, size)]


def consistency_proof(old_size: int, new_size: int, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """PROOF(old_size, D[new_size]) (RFC 9162 2.1.4.1) from the nodes named by
    ``consistency_keys``; equal to ``hub.trail.merkle.consistency_proof`` for 0 < old_size.

    Empty when ``old_size`` == ``new_size`` (SUBPROOF(m, D[m], true) = {}) and when
    ``old_size`` is 0: every tree extends the empty one, so there is nothing to prove.
    ``hub.trail.merkle`` refuses to make or accept a proof from the empty tree; a caller that hands
    such a proof to ``hub.trail.merkle.verify_consistency`` gets False.
    """
    return [
        _range_hash(start, end, nodes) for start, end in _consistency_ranges(old_size, new_size)
    ]


def _range_hash(start: int, end: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH(D[start:end]) by the same split recursion as ``_collect_keys``, reading only the
    nodes that ``subtree_keys(start, end)`` names."""
    if start == end:
        return EMPTY_ROOT
    key = _perfect_key(start, end)
    if key is not None:
        return _fetch(nodes, key)
    k = split_point(end - start)
    return node_hash(_range_hash(start, start + k, nodes), _range_hash(start + k, end, nodes))


def _fetch(nodes: Mapping[NodeKey, bytes], key: NodeKey) -> bytes:
    try:
        value = nodes[key]
    except KeyError:
        level, index = key
        raise MerkleError(
            f"stored node (level, index) = ({level}, {index}) is missing",
            reason="missing-node",
        ) from None
    if len(value) != HASH_SIZE:
        raise MerkleError(
            f"stored node {key} must be {HASH_SIZE} bytes; found {len(value)}",
            reason="hash-size",
        )
    return value


# --- the proofs as ranges of leaves ---------------------------------------------------------


def _inclusion_ranges(index: int, size: int) -> list[_Range]:
    """The leaf ranges whose MTH make up PATH(index, D[size]), leaf level first.

    RFC 9162 2.1.3.1 unrolled top-down: for k = split_point(n), PATH(m, D[n]) is
    PATH(m, D[0:k]) followed by MTH(D[k:n]) if m < k, else PATH(m - k, D[k:n]) followed by
    MTH(D[0:k]).

    Bound: write n's set bits as levels b_1 > ... > b_P, so D[n] is P perfect subtrees S_1..S_P
    left to right, and let the leaf be in S_j. Moving right passes S_1..S_{j-1}: j - 1 perfect
    nodes. Then (if j < P) one step left, whose sibling MTH(S_{j+1}..S_P) is the only range
    that is not perfect: P - j keys. Inside the perfect S_j every sibling is perfect: b_j keys.
    In all b_j + P - 1 <= L + P - 1 keys, and since the other P - 1 bits are distinct levels
    below L + 1 other than b_j, that is at most 2L.
    """
    check_size(size)
    if not 0 <= index < size:
        raise MerkleError(
            f"leaf index must be in [0, {size}); found {index}", reason="index-out-of-range"
        )
    ranges: list[_Range] = []
    start, m, n = 0, index, size
    while n > 1:
        k = split_point(n)
        if m < k:
            ranges.append((start + k, start + n))
            n = k
        else:
            ranges.append((start, start + k))
            start, m, n = start + k, m - k, n - k
    ranges.reverse()
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[_Range]:
    """The leaf ranges whose MTH make up PROOF(old_size, D[new_size]), in proof order.

    RFC 9162 2.1.4.1 unrolled top-down: SUBPROOF(m, D[n], b) for k = split_point(n) is
    SUBPROOF(m, D[0:k], b) followed by MTH(D[k:n]) if m <= k, else SUBPROOF(m - k, D[k:n],
    false) followed by MTH(D[0:k]); it ends at m == n with {} if b is still true, else with
    MTH(D[m]) of that subtree (always a left half, so perfect).

    Bound, with S_1..S_P as in ``_inclusion_ranges`` and S_j the subtree where the first step
    left happens: j - 1 perfect nodes passed on the right, P - j keys for the one range that is
    not perfect (the first step left), and inside the perfect S_j at most b_j splits, each a
    perfect sibling, plus the final perfect node: at most b_j + P <= L + P <= 2L + 1 keys.
    """
    check_size(old_size)
    check_size(new_size)
    if old_size == new_size:
        return []
    # as hub.trail.merkle: a proof from the empty tree would claim nothing (RFC 9162 requires 0 < m)
    if not 0 < old_size < new_size:
        raise MerkleError(
            f"old tree size must be in [1, {new_size}]; found {old_size}",
            reason="size-out-of-range",
        )
    ranges: list[_Range] = []
    start, m, n, complete = 0, old_size, new_size, True
    while m != n:
        k = split_point(n)
        if m <= k:
            ranges.append((start + k, start + n))
            n = k
        else:
            ranges.append((start, start + k))
            start, m, n, complete = start + k, m - k, n - k, False
    if not complete:
        # The old tree's last perfect subtree, which the verifier cannot know by itself.
        ranges.append((start, start + n))
    ranges.reverse()
    return ranges


# --- checks ---------------------------------------------------------------------------------


def _check_growth(size: int, count: int) -> None:
    check_size(size)
    if size + count > MAX_TREE_SIZE:
        raise MerkleError(
            f"appending {count} leaves to {size} would exceed 2^64 - 1",
            reason="size-out-of-range",
        )


def _check_range(start: int, end: int) -> None:
    check_size(end)
    if not 0 <= start <= end:
        raise MerkleError(
            f"range start must be in [0, {end}]; found {start}", reason="index-out-of-range"
        )
