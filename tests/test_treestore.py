"""hub.trail.tree against hub.trail.merkle: a store of perfect-subtree hashes, filled by
appending leaves one at a time and in batches, serves roots and proofs byte-identical to
hub.trail.merkle's, from only the nodes its ``*_keys`` functions name, and those are O(log n) even
for a million leaves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.trail import merkle
from hub.trail import tree as treestore
from hub.trail.merkle import MAX_TREE_SIZE, MerkleError, leaf_hash
from hub.trail.tree import NodeKey

Store = dict[NodeKey, bytes]

SMALL_SIZES = range(71)
BIG_SIZE = 5_000  # built once per module: a few thousand appends take milliseconds
MILLION = 1_000_000


def declaration_leaves(count: int) -> list[bytes]:
    return [leaf_hash(b"declaration %d" % number) for number in range(count)]


def exists_at(key: NodeKey, size: int) -> bool:
    """Whether a tree of ``size`` leaves has the perfect subtree ``key`` complete."""
    level, index = key
    return level >= 0 and index >= 0 and (index + 1) << level <= size


def expected_keys(size: int) -> set[NodeKey]:
    return {
        (level, index)
        for level in range(max(size, 1).bit_length())
        for index in range(size >> level)
    }


def fetch(store: Mapping[NodeKey, bytes], keys: Sequence[NodeKey], size: int) -> Store:
    """What one store query returns: exactly the named nodes, each complete at ``size``."""
    assert len(set(keys)) == len(keys), f"repeated keys {keys}"
    for key in keys:
        assert exists_at(key, size), f"key {key} is not a complete node of a tree of {size}"
    return {key: store[key] for key in keys}


def put(store: Store, nodes: Iterable[tuple[int, int, bytes]]) -> None:
    for level, index, value in nodes:
        assert (level, index) not in store, f"node {(level, index)} written twice"
        store[(level, index)] = value


def append_one(store: Store, size: int, leaf: bytes) -> None:
    frontier = fetch(store, treestore.frontier_keys(size), size)
    put(store, treestore.appended_nodes(size, leaf, frontier))


def append_batch(store: Store, size: int, leaves: Sequence[bytes]) -> None:
    frontier = fetch(store, treestore.frontier_keys(size), size)
    put(store, treestore.append_many(size, leaves, frontier))


def build_one_by_one(leaves: Sequence[bytes]) -> Store:
    store: Store = {}
    for size, leaf in enumerate(leaves):
        append_one(store, size, leaf)
    return store


def build_in_batches(leaves: Sequence[bytes], cuts: Iterable[int]) -> Store:
    """Appends ``leaves`` in batches ending at the sorted, de-duplicated ``cuts``."""
    store: Store = {}
    size = 0
    for cut in [*sorted(set(cuts)), len(leaves)]:
        if size <= cut <= len(leaves):
            append_batch(store, size, leaves[size:cut])
            size = cut
    return store


def root_from_store(store: Store, size: int) -> bytes:
    return treestore.tree_root(size, fetch(store, treestore.root_keys(size), size))


def path_from_store(store: Store, index: int, size: int) -> list[bytes]:
    keys = treestore.inclusion_keys(index, size)
    return treestore.inclusion_proof(index, size, fetch(store, keys, size))


def proof_from_store(store: Store, old_size: int, new_size: int) -> list[bytes]:
    keys = treestore.consistency_keys(old_size, new_size)
    return treestore.consistency_proof(old_size, new_size, fetch(store, keys, new_size))


def check_consistency(store: Store, leaves: Sequence[bytes], old_size: int) -> None:
    new_size = len(leaves)
    if old_size == 0 < new_size:  # refused, as by hub.trail.merkle: such a proof claims nothing
        with pytest.raises(MerkleError):
            treestore.consistency_keys(old_size, new_size)
        with pytest.raises(MerkleError):
            merkle.consistency_proof(leaves, old_size)
        return
    proof = proof_from_store(store, old_size, new_size)
    assert proof == merkle.consistency_proof(leaves, old_size)
    old_root, new_root = merkle.root(leaves[:old_size]), merkle.root(leaves)
    assert merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)


@functools.cache
def big_tree() -> tuple[list[bytes], Store]:
    leaves = declaration_leaves(BIG_SIZE)
    return leaves, build_one_by_one(leaves)


# --- what is stored -------------------------------------------------------------------------


def test_every_small_size_appended_one_at_a_time_matches_hub_merkle() -> None:
    leaves = declaration_leaves(max(SMALL_SIZES))
    store: Store = {}
    for size in SMALL_SIZES:
        if size:
            append_one(store, size - 1, leaves[size - 1])
        prefix = leaves[:size]
        # Exactly the perfect subtrees, each the MTH of its leaves.
        assert set(store) == expected_keys(size)
        assert len(store) == sum(size >> level for level in range(size.bit_length()))
        for (level, index), value in store.items():
            assert value == merkle.root(prefix[index << level : (index + 1) << level])
        root = root_from_store(store, size)
        assert root == merkle.root(prefix)
        for index, expected in enumerate(merkle.inclusion_proofs(prefix)):
            path = path_from_store(store, index, size)
            assert path == expected
            assert merkle.verify_inclusion(prefix[index], index, size, path, root)
        for old_size in range(size + 1):
            check_consistency(store, prefix, old_size)


def test_empty_tree() -> None:
    assert treestore.root_keys(0) == []
    assert treestore.frontier_keys(0) == []
    assert treestore.tree_root(0, {}) == merkle.root([]) == merkle.EMPTY_ROOT
    assert treestore.consistency_keys(0, 0) == []
    assert treestore.consistency_proof(0, 0, {}) == []
    assert treestore.append_many(0, [], {}) == []


@pytest.mark.parametrize("size", SMALL_SIZES)
def test_appended_nodes_are_the_leaf_and_the_subtrees_it_completes(size: int) -> None:
    leaves = declaration_leaves(size + 1)
    store = build_one_by_one(leaves[:size])
    # Only the left siblings on the trailing set bits of ``size`` are read.
    trailing = (size ^ (size + 1)).bit_length() - 1
    needed = {(level, (size >> level) - 1) for level in range(trailing)}
    assert needed <= set(treestore.frontier_keys(size))
    nodes = treestore.appended_nodes(size, leaves[size], {key: store[key] for key in needed})
    assert [(level, index) for level, index, _ in nodes] == [
        (level, size >> level) for level in range(trailing + 1)
    ]
    assert nodes[0] == (0, size, leaves[size])


@pytest.mark.parametrize("size", SMALL_SIZES)
def test_frontier_is_the_root_decomposition(size: int) -> None:
    keys = treestore.frontier_keys(size)
    assert keys == treestore.root_keys(size)
    assert len(keys) == size.bit_count()
    assert sum(1 << level for level, _ in keys) == size


@settings(max_examples=30, deadline=None)
@given(
    size=st.integers(0, 3_000),
    cuts=st.lists(st.integers(0, 3_000), max_size=25),
    data=st.data(),
)
def test_batches_build_the_same_store_and_answers(
    size: int, cuts: list[int], data: st.DataObject
) -> None:
    leaves = declaration_leaves(size)
    store = build_in_batches(leaves, cuts)
    assert store == build_one_by_one(leaves)
    assert len(store) == sum(size >> level for level in range(size.bit_length()))
    root = root_from_store(store, size)
    assert root == merkle.root(leaves)
    if size:
        for index in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=5)):
            path = path_from_store(store, index, size)
            assert path == merkle.inclusion_proof(leaves, index)
            assert merkle.verify_inclusion(leaves[index], index, size, path, root)
    for old_size in data.draw(st.lists(st.integers(0, size), min_size=1, max_size=5)):
        check_consistency(store, leaves, old_size)


def test_append_many_with_a_whole_tree_in_one_batch() -> None:
    leaves, store = big_tree()
    assert dict.fromkeys(store, b"") == dict.fromkeys(expected_keys(BIG_SIZE), b"")
    batch: Store = {}
    put(batch, treestore.append_many(0, leaves, {}))
    assert batch == store


# --- answers from a big store ---------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_prefixes_of_a_big_store_match_hub_merkle(data: st.DataObject) -> None:
    leaves, store = big_tree()
    size = data.draw(st.integers(1, BIG_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old_size = data.draw(st.integers(0, size), label="old_size")
    prefix = leaves[:size]
    root = root_from_store(store, size)
    assert root == merkle.root(prefix)
    path = path_from_store(store, index, size)
    assert path == merkle.inclusion_proof(prefix, index)
    assert merkle.verify_inclusion(prefix[index], index, size, path, root)
    check_consistency(store, prefix, old_size)


# --- how many keys a request needs ----------------------------------------------------------


def floor_log2(size: int) -> int:
    return size.bit_length() - 1


def inclusion_bound(size: int) -> int:
    """floor(log2 n) + popcount(n) - 1 <= 2 floor(log2 n), see treestore._inclusion_ranges."""
    return floor_log2(size) + size.bit_count() - 1


def consistency_bound(size: int) -> int:
    """floor(log2 n) + popcount(n) <= 2 floor(log2 n) + 1, see treestore._consistency_ranges."""
    return floor_log2(size) + size.bit_count()


@pytest.mark.parametrize("size", range(1, 300))
def test_key_counts_reach_but_never_pass_the_bounds(size: int) -> None:
    inclusion = [len(treestore.inclusion_keys(index, size)) for index in range(size)]
    assert max(inclusion) == inclusion_bound(size) <= 2 * floor_log2(size)
    assert len(treestore.root_keys(size)) == size.bit_count() <= floor_log2(size) + 1
    if size > 1:
        consistency = [len(treestore.consistency_keys(old, size)) for old in range(1, size)]
        assert max(consistency) <= consistency_bound(size) <= 2 * floor_log2(size) + 1
        # Reached from old size 2^L - 1 once that needs a step right inside the leftmost
        # subtree (L >= 2); for 2 and 3 leaves the old tree's last subtree is never sent.
        if size >= 4:
            assert max(consistency) == consistency_bound(size)


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, MILLION - 1), old_size=st.integers(1, MILLION))
def test_a_million_leaves_need_few_nodes(index: int, old_size: int) -> None:
    # 10^6 has floor(log2) = 19 and 7 set bits: at most 25 and 26 keys, within 2 * 19 + 1.
    inclusion = treestore.inclusion_keys(index, MILLION)
    consistency = treestore.consistency_keys(old_size, MILLION)
    assert len(inclusion) <= inclusion_bound(MILLION) == 25
    assert len(consistency) <= consistency_bound(MILLION) == 26
    assert len(treestore.root_keys(MILLION)) == 7
    for key in [*inclusion, *consistency, *treestore.root_keys(MILLION)]:
        assert exists_at(key, MILLION)
    assert len(set(inclusion)) == len(inclusion)
    assert len(set(consistency)) == len(consistency)


def test_worst_cases_for_all_ones_size() -> None:
    size = 2**20 - 1  # twenty set bits: the bounds 2 * 19 and 2 * 19 + 1 are reached
    assert len(treestore.inclusion_keys(0, size)) == 38
    assert len(treestore.consistency_keys(2**19 - 1, size)) == 39


def test_largest_tree_needs_at_most_127_keys() -> None:
    size = MAX_TREE_SIZE  # 64 set bits, floor(log2) = 63
    assert len(treestore.root_keys(size)) == 64
    assert len(treestore.inclusion_keys(0, size)) == 2 * 63
    assert len(treestore.inclusion_keys(size - 1, size)) <= 2 * 63
    assert len(treestore.consistency_keys(2**63 - 1, size)) == 2 * 63 + 1


def test_a_perfect_aligned_range_is_one_key() -> None:
    assert treestore.subtree_keys(0, 1) == [(0, 0)]
    assert treestore.subtree_keys(1024, 2048) == [(10, 1)]
    assert treestore.subtree_keys(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert treestore.subtree_keys(8, 8) == []
    # Not a node of any tree: still the RFC recursion, split down to aligned pieces.
    assert treestore.subtree_keys(1, 3) == [(0, 1), (0, 2)]


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_subtree_keys_give_the_hash_of_any_range(data: st.DataObject) -> None:
    leaves, store = big_tree()
    end = data.draw(st.integers(0, 300))
    start = data.draw(st.integers(0, end))
    keys = treestore.subtree_keys(start, end)
    assert sum(1 << level for level, _ in keys) == end - start
    fetched = fetch(store, keys, end)
    assert treestore._range_hash(start, end, fetched) == merkle.root(leaves[start:end])


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "index", "old_size"), [(1, 0, 1), (13, 5, 6), (13, 12, 7), (64, 0, 63), (70, 69, 33)]
)
def test_every_named_key_is_needed_and_a_missing_one_is_named(
    size: int, index: int, old_size: int
) -> None:
    store = build_one_by_one(declaration_leaves(size))
    requests: list[tuple[list[NodeKey], Callable[[Mapping[NodeKey, bytes]], object]]] = [
        (treestore.root_keys(size), lambda nodes: treestore.tree_root(size, nodes)),
        (
            treestore.inclusion_keys(index, size),
            lambda nodes: treestore.inclusion_proof(index, size, nodes),
        ),
        (
            treestore.consistency_keys(old_size, size),
            lambda nodes: treestore.consistency_proof(old_size, size, nodes),
        ),
    ]
    for keys, compute in requests:
        for missing in keys:
            nodes = {key: store[key] for key in keys if key != missing}
            pattern = rf"\({missing[0]}, {missing[1]}\) is missing"
            with pytest.raises(MerkleError, match=pattern) as caught:
                compute(nodes)
            assert caught.value.reason == "missing-node"


def test_a_missing_frontier_node_is_named() -> None:
    leaves = declaration_leaves(8)
    store = build_one_by_one(leaves[:7])
    frontier = {key: store[key] for key in treestore.frontier_keys(7) if key != (1, 2)}
    with pytest.raises(MerkleError, match=r"\(1, 2\) is missing") as caught:
        treestore.appended_nodes(7, leaves[7], frontier)
    assert caught.value.reason == "missing-node"
    with pytest.raises(MerkleError, match=r"\(0, 6\) is missing"):
        treestore.append_many(7, leaves[7:], {})
    # A batch reads frontier nodes that the single append before it did not need.
    frontier = {key: store[key] for key in treestore.frontier_keys(5) if key != (2, 0)}
    assert treestore.appended_nodes(5, leaves[5], frontier)
    with pytest.raises(MerkleError, match=r"\(2, 0\) is missing"):
        treestore.append_many(5, leaves[5:8], frontier)


def test_a_stored_node_of_the_wrong_length_is_refused() -> None:
    store = build_one_by_one(declaration_leaves(6))
    store[(2, 0)] = store[(2, 0)][:31]
    with pytest.raises(MerkleError, match="must be 32 bytes") as caught:
        treestore.tree_root(6, store)
    assert caught.value.reason == "hash-size"
    with pytest.raises(MerkleError, match="must be 32 bytes"):
        treestore.appended_nodes(6, b"\x00" * 33, store)


@pytest.mark.parametrize(
    ("index", "size"),
    [(0, 0), (5, 5), (6, 5), (-1, 5), (0, -1), (0, MAX_TREE_SIZE + 1)],
)
def test_impossible_inclusion_requests_are_refused(index: int, size: int) -> None:
    with pytest.raises(MerkleError) as caught:
        treestore.inclusion_keys(index, size)
    with pytest.raises(MerkleError) as again:
        treestore.inclusion_proof(index, size, {})
    assert caught.value.reason == again.value.reason
    assert caught.value.reason in {"index-out-of-range", "size-out-of-range"}


@pytest.mark.parametrize(
    ("old_size", "new_size"),
    [(6, 5), (-1, 5), (0, -1), (1, MAX_TREE_SIZE + 1), (MAX_TREE_SIZE + 1, MAX_TREE_SIZE + 1)],
)
def test_impossible_consistency_requests_are_refused(old_size: int, new_size: int) -> None:
    with pytest.raises(MerkleError) as caught:
        treestore.consistency_keys(old_size, new_size)
    with pytest.raises(MerkleError):
        treestore.consistency_proof(old_size, new_size, {})
    assert caught.value.reason == "size-out-of-range"


@pytest.mark.parametrize("size", [-1, MAX_TREE_SIZE + 1])
def test_impossible_sizes_are_refused(size: int) -> None:
    calls: list[Callable[[], object]] = [
        lambda: treestore.root_keys(size),
        lambda: treestore.tree_root(size, {}),
        lambda: treestore.frontier_keys(size),
        lambda: treestore.appended_nodes(size, leaf_hash(b""), {}),
        lambda: treestore.append_many(size, [], {}),
    ]
    for call in calls:
        with pytest.raises(MerkleError) as caught:
            call()
        assert caught.value.reason == "size-out-of-range"


def test_appending_past_the_largest_tree_is_refused() -> None:
    with pytest.raises(MerkleError) as caught:
        treestore.appended_nodes(MAX_TREE_SIZE, leaf_hash(b""), {})
    assert caught.value.reason == "size-out-of-range"
    with pytest.raises(MerkleError):
        treestore.append_many(MAX_TREE_SIZE - 1, [leaf_hash(b"")] * 2, {})


@pytest.mark.parametrize(("start", "end"), [(3, 2), (-1, 2), (0, MAX_TREE_SIZE + 1)])
def test_impossible_ranges_are_refused(start: int, end: int) -> None:
    with pytest.raises(MerkleError):
        treestore.subtree_keys(start, end)
