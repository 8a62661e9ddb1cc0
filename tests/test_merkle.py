"""hub.trail.merkle against the transparency-dev/merkle vectors, a naive recursive model of
RFC 6962, and property tests: every proof we make verifies, and every single change to one is
refused.

The vectors are copied into tests/vectors/merkle (Apache-2.0, see its LICENSE and
tests/SOURCES.md); CUSTOMS_HUB_MERKLE_VECTORS points elsewhere. A missing corpus fails, never
skips.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.trail.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    MerkleError,
    RootBuilder,
    consistency_proof,
    inclusion_proof,
    inclusion_proofs,
    leaf_hash,
    node_hash,
    root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from tests.testdata import MERKLE_VECTORS

VECTORS = Path(
    os.environ.get(
        "CUSTOMS_HUB_MERKLE_VECTORS",
        MERKLE_VECTORS,
    )
)

# The corpus as shipped: 98 inclusion and 98 consistency files, of which 10 are the
# happy-path vectors of the numbered groups. A file lost in a copy must fail a test.
EXPECTED_FILES = {"inclusion": 98, "consistency": 98}
EXPECTED_HAPPY_PATHS = 10

# Upstream verifies hashes of any length; hub.trail.merkle accepts only 32-byte SHA-256 values. This
# vector expects success for the 16-byte "roots" b"don't care 2", so here it is refused. Its
# intent (equal sizes, equal roots, empty proof are consistent) is checked with real roots in
# test_equal_sizes_with_equal_roots_and_no_proof_are_consistent.
STRICTER_THAN_UPSTREAM = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}

# The eight-entry test tree of RFC 6962 implementations (certificate-transparency, and
# transparency-dev/merkle's testdata): every happy-path vector is a proof in a prefix of it.
REFERENCE_ENTRIES = [
    bytes.fromhex(entry)
    for entry in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
REFERENCE_LEAVES = [leaf_hash(entry) for entry in REFERENCE_ENTRIES]


# --- a naive model: RFC 6962 section 2.1 read literally -------------------------------------


def _k(n: int) -> int:
    """The largest power of two strictly smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _k(len(leaves))
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


def naive_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_mth(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_mth(leaves[:k])]


def naive_subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [naive_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], complete), naive_mth(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_mth(leaves[:k])]


def inclusion_shape(index: int, size: int) -> tuple[str, ...] | None:
    """What each proof hash is to a verifier (a left or right sibling), bottom up; None if the
    position is impossible. Equal shapes make a verifier do identical hashing."""
    if not 0 <= index < size:
        return None
    shape: list[str] = []
    while size > 1:
        k = _k(size)
        if index < k:
            shape.append("right")
            size = k
        else:
            shape.append("left")
            index, size = index - k, size - k
    return tuple(reversed(shape))


def consistency_shape(old: int, new: int) -> tuple[str, ...] | None:
    """Like inclusion_shape, for PROOF(old, D[new]); None where RFC 9162 defines no proof."""
    if old == new:
        return ("same-tree",)
    if not 0 < old < new:
        return None
    shape: list[str] = []
    complete = True
    while old != new:
        k = _k(new)
        if old <= k:
            shape.append("right")
            new = k
        else:
            shape.append("left")
            old, new, complete = old - k, new - k, False
    if not complete:
        shape.append("old-subtree")
    return tuple(reversed(shape))


# --- vectors --------------------------------------------------------------------------------


def _vector_params(kind: str) -> list[Any]:
    folder = VECTORS / kind
    files = sorted(folder.rglob("*.json")) if folder.is_dir() else []
    if not files:
        # An empty parameter set would be skipped; a missing corpus must fail.
        return [pytest.param(folder, id=f"{kind}/MISSING")]
    return [pytest.param(path, id=path.relative_to(VECTORS).as_posix()) for path in files]


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        pytest.fail(f"Merkle test vectors not found at {path}; set CUSTOMS_HUB_MERKLE_VECTORS")
    vector: dict[str, Any] = json.loads(path.read_text())
    return vector


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _proof(vector: dict[str, Any]) -> list[bytes]:
    return [_b64(h) for h in vector["proof"] or []]


def _expect_valid(path: Path, vector: dict[str, Any]) -> bool:
    """happy-path.json in a numbered group verifies, every other file there is a mutation that
    must not; 'additional' and 'single-entry' cases say so themselves in wantErr."""
    relative = path.relative_to(VECTORS).as_posix()
    group = path.parent.name
    if group.isdigit() and path.parent.parent.name != "additional":
        assert vector["wantErr"] is (path.name != "happy-path.json"), "corpus mislabelled"
    if relative in STRICTER_THAN_UPSTREAM:
        assert vector["wantErr"] is False
        return False
    return not vector["wantErr"]


@pytest.mark.parametrize("path", _vector_params("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    vector = _load(path)
    accepted = verify_inclusion(
        _b64(vector["leafHash"]),
        vector["leafIdx"],
        vector["treeSize"],
        _proof(vector),
        _b64(vector["root"]),
    )
    assert accepted is _expect_valid(path, vector)


@pytest.mark.parametrize("path", _vector_params("consistency"))
def test_consistency_vector(path: Path) -> None:
    vector = _load(path)
    accepted = verify_consistency(
        vector["size1"],
        vector["size2"],
        _b64(vector["root1"]),
        _b64(vector["root2"]),
        _proof(vector),
    )
    assert accepted is _expect_valid(path, vector)


def test_vector_corpus_is_complete() -> None:
    for kind, expected in EXPECTED_FILES.items():
        assert len(list((VECTORS / kind).rglob("*.json"))) == expected, kind
    assert len(list(VECTORS.rglob("happy-path.json"))) == EXPECTED_HAPPY_PATHS


def _happy_path_params() -> list[Any]:
    files = sorted(VECTORS.rglob("happy-path.json")) if VECTORS.is_dir() else []
    if not files:
        return [pytest.param(VECTORS / "happy-path.json", id="MISSING")]
    return [pytest.param(path, id=path.relative_to(VECTORS).as_posix()) for path in files]


@pytest.mark.parametrize("path", _happy_path_params())
def test_happy_path_vector_is_the_proof_we_generate(path: Path) -> None:
    """Known answers for the builders: the vectors' proofs, byte for byte."""
    vector = _load(path)
    if "leafIdx" in vector:
        index, size = vector["leafIdx"], vector["treeSize"]
        leaves = REFERENCE_LEAVES[:size]
        assert _b64(vector["leafHash"]) == leaves[index]
        assert _b64(vector["root"]) == root(leaves)
        assert inclusion_proof(leaves, index) == _proof(vector)
    else:
        old, new = vector["size1"], vector["size2"]
        assert _b64(vector["root1"]) == root(REFERENCE_LEAVES[:old])
        assert _b64(vector["root2"]) == root(REFERENCE_LEAVES[:new])
        assert consistency_proof(REFERENCE_LEAVES[:new], old) == _proof(vector)


def test_equal_sizes_with_equal_roots_and_no_proof_are_consistent() -> None:
    tree_root = root(REFERENCE_LEAVES[:1])
    assert verify_consistency(1, 1, tree_root, tree_root, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    # A tree of size 0 has one possible root.
    assert not verify_consistency(0, 0, tree_root, tree_root, [])
    # The upstream vector's 16-byte "roots" are not SHA-256 values.
    assert not verify_consistency(1, 1, b"don't care 2", b"don't care 2", [])


# --- the tree hash --------------------------------------------------------------------------


def test_root_matches_the_recursive_definition() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(130)]
    for size in range(len(leaves) + 1):
        assert root(leaves[:size]) == naive_mth(leaves[:size]), size


def test_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    # Known answer: the eight-entry reference tree.
    assert root(REFERENCE_LEAVES).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


# --- properties -----------------------------------------------------------------------------


def _tree(size: int, salt: bytes) -> list[bytes]:
    # Distinct entries: with two equal leaves, swapping their indices is not a forgery.
    return [leaf_hash(salt + i.to_bytes(2, "big")) for i in range(size)]


trees = st.builds(_tree, st.integers(min_value=1, max_value=70), st.binary(max_size=4))
hashes = st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE)


def _flip_bit(value: bytes, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[bit // 8 % len(value)] ^= 1 << (bit % 8)
    return bytes(flipped)


@settings(max_examples=200, deadline=None)
@given(leaves=trees)
def test_every_inclusion_proof_verifies(leaves: list[bytes]) -> None:
    tree_root = root(leaves)
    assert tree_root == naive_mth(leaves)
    proofs = inclusion_proofs(leaves)
    assert len(proofs) == len(leaves)
    for index, proof in enumerate(proofs):
        assert proof == naive_path(index, leaves)
        assert proof == inclusion_proof(leaves, index)
        assert root_from_inclusion_proof(leaves[index], index, len(leaves), proof) == tree_root
        assert verify_inclusion(leaves[index], index, len(leaves), proof, tree_root)


@settings(max_examples=100, deadline=None)
@given(leaves=trees)
def test_every_consistency_proof_verifies(leaves: list[bytes]) -> None:
    new_size, new_root = len(leaves), root(leaves)
    for old_size in range(1, new_size + 1):
        proof = consistency_proof(leaves, old_size)
        assert proof == naive_subproof(old_size, leaves, True)
        assert verify_consistency(old_size, new_size, root(leaves[:old_size]), new_root, proof)


INCLUSION_CHANGES = ["flip", "drop", "add", "root", "leaf", "index", "size"]


@pytest.mark.slow
@settings(max_examples=1000, deadline=None)
@given(leaves=trees, change=st.sampled_from(INCLUSION_CHANGES), data=st.data())
def test_any_single_change_to_an_inclusion_claim_is_refused(
    leaves: list[bytes], change: str, data: st.DataObject
) -> None:
    size, tree_root = len(leaves), root(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    leaf, proof = leaves[index], inclusion_proof(leaves, index)
    claim: dict[str, Any] = {
        "leaf_hash": leaf,
        "index": index,
        "size": size,
        "proof": proof,
        "root": tree_root,
    }
    bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1), label="bit")
    expected = False
    if change in ("flip", "drop") and not proof:
        change = "add"  # a one-leaf tree has no proof hash to change
    if change == "flip":
        at = data.draw(st.integers(0, len(proof) - 1), label="at")
        claim["proof"] = [*proof[:at], _flip_bit(proof[at], bit), *proof[at + 1 :]]
    elif change == "drop":
        at = data.draw(st.integers(0, len(proof) - 1), label="at")
        claim["proof"] = proof[:at] + proof[at + 1 :]
    elif change == "add":
        at = data.draw(st.integers(0, len(proof)), label="at")
        claim["proof"] = [*proof[:at], data.draw(hashes, label="added"), *proof[at:]]
    elif change == "root":
        claim["root"] = _flip_bit(tree_root, bit)
    elif change == "leaf":
        claim["leaf_hash"] = _flip_bit(leaf, bit)
    elif change == "index":
        claim["index"] = data.draw(
            st.integers(-2, 2 * size + 2).filter(lambda i: i != index), label="new index"
        )
    else:
        new_size = data.draw(
            st.one_of(
                st.integers(0, 2 * size + 2),
                st.sampled_from([-1, MAX_TREE_SIZE, MAX_TREE_SIZE + 1]),
            ).filter(lambda s: s != size),
            label="new size",
        )
        claim["size"] = new_size
        # The size is not hashed into anything: where it moves no hash to the other side (leaf 0
        # of 3 leaves and of 4), the same proof and root also hold for the other size. Only a
        # signature over size and root together binds them, as a signed tree head does.
        expected = inclusion_shape(index, new_size) == inclusion_shape(index, size)
    assert verify_inclusion(**claim) is expected


CONSISTENCY_CHANGES = ["flip", "drop", "add", "old_root", "new_root", "old_size", "new_size"]


@pytest.mark.slow
@settings(max_examples=1000, deadline=None)
@given(leaves=trees, change=st.sampled_from(CONSISTENCY_CHANGES), data=st.data())
def test_any_single_change_to_a_consistency_claim_is_refused(
    leaves: list[bytes], change: str, data: st.DataObject
) -> None:
    new_size = len(leaves)
    old_size = data.draw(st.integers(1, new_size), label="old size")
    proof = consistency_proof(leaves, old_size)
    claim: dict[str, Any] = {
        "old_size": old_size,
        "new_size": new_size,
        "old_root": root(leaves[:old_size]),
        "new_root": root(leaves),
        "proof": proof,
    }
    bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1), label="bit")
    expected = False
    if change in ("flip", "drop") and not proof:
        change = "add"  # equal sizes have an empty proof
    if change == "flip":
        at = data.draw(st.integers(0, len(proof) - 1), label="at")
        claim["proof"] = [*proof[:at], _flip_bit(proof[at], bit), *proof[at + 1 :]]
    elif change == "drop":
        at = data.draw(st.integers(0, len(proof) - 1), label="at")
        claim["proof"] = proof[:at] + proof[at + 1 :]
    elif change == "add":
        at = data.draw(st.integers(0, len(proof)), label="at")
        claim["proof"] = [*proof[:at], data.draw(hashes, label="added"), *proof[at:]]
    elif change in ("old_root", "new_root"):
        claim[change] = _flip_bit(claim[change], bit)
    else:
        other = data.draw(
            st.one_of(
                st.integers(0, 2 * new_size + 2),
                st.sampled_from([-1, MAX_TREE_SIZE, MAX_TREE_SIZE + 1]),
            ).filter(lambda s: s != claim[change]),
            label="other size",
        )
        claim[change] = other
        # As for inclusion: a size that leaves every hash where it was is not detectable.
        expected = consistency_shape(claim["old_size"], claim["new_size"]) == consistency_shape(
            old_size, new_size
        )
    assert verify_consistency(**claim) is expected


def test_a_changed_size_can_keep_the_same_proof() -> None:
    """Why the size mutations above need an oracle: the proofs do not commit to the size."""
    leaves = REFERENCE_LEAVES[:3]
    proof = inclusion_proof(leaves, 0)
    assert verify_inclusion(leaves[0], 0, 4, proof, root(leaves))
    assert not verify_inclusion(leaves[0], 0, 5, proof, root(leaves))
    assert verify_consistency(1, 4, leaves[0], root(leaves), consistency_proof(leaves, 1))


# --- limits and malformed input -------------------------------------------------------------


def test_merkle_error_is_a_value_error_with_a_reason() -> None:
    with pytest.raises(MerkleError) as caught:
        root_from_inclusion_proof(REFERENCE_LEAVES[0], 1, 1, [])
    assert isinstance(caught.value, ValueError)
    assert caught.value.reason == "index-out-of-range"


@pytest.mark.parametrize(
    ("index", "size", "proof", "reason"),
    [
        pytest.param(0, 0, [], "index-out-of-range", id="empty-tree"),
        pytest.param(-1, 2, [b"\x00" * 32], "index-out-of-range", id="negative-index"),
        pytest.param(2, 2, [b"\x00" * 32], "index-out-of-range", id="index-equals-size"),
        pytest.param(0, -1, [], "size-out-of-range", id="negative-size"),
        pytest.param(0, MAX_TREE_SIZE + 1, [b"\x00" * 32] * 64, "size-out-of-range", id="2^64"),
        pytest.param(0, 2, [], "proof-size", id="too-short"),
        pytest.param(0, 2, [b"\x00" * 32] * 2, "proof-size", id="too-long"),
        pytest.param(0, 2, [b"\x00" * 31], "hash-size", id="short-proof-hash"),
        pytest.param(0, 2, [b"\x00" * 33], "hash-size", id="long-proof-hash"),
    ],
)
def test_root_from_inclusion_proof_refuses(
    index: int, size: int, proof: list[bytes], reason: str
) -> None:
    with pytest.raises(MerkleError) as caught:
        root_from_inclusion_proof(REFERENCE_LEAVES[0], index, size, proof)
    assert caught.value.reason == reason
    assert not verify_inclusion(REFERENCE_LEAVES[0], index, size, proof, REFERENCE_LEAVES[0])


def test_leaf_hash_must_be_a_sha256_value() -> None:
    for wrong in (b"", b"\x00" * 31, b"\x00" * 33):
        with pytest.raises(MerkleError, match="leaf hash"):
            root_from_inclusion_proof(wrong, 0, 1, [])
        with pytest.raises(MerkleError, match="leaf hash"):
            root([*REFERENCE_LEAVES[:2], wrong])
        with pytest.raises(MerkleError, match="leaf hash"):
            inclusion_proofs([*REFERENCE_LEAVES[:2], wrong])


def test_largest_tree_size_is_accepted_and_the_next_is_not() -> None:
    proof = [b"\x00" * 32] * 64  # leaf 0 of 2^64 - 1 leaves sits 64 levels down
    assert len(root_from_inclusion_proof(REFERENCE_LEAVES[0], 0, MAX_TREE_SIZE, proof)) == 32
    assert not verify_consistency(1, MAX_TREE_SIZE + 1, REFERENCE_LEAVES[0], EMPTY_ROOT, proof)


def test_an_overlong_proof_is_refused_without_reading_it_all() -> None:
    # The 100th hash is malformed; the proof is refused as too long before it is reached.
    proof = [b"\x00" * 32] * 99 + [b"x"] + [b"\x00" * 32] * 100_000
    with pytest.raises(MerkleError) as caught:
        root_from_inclusion_proof(REFERENCE_LEAVES[0], 0, MAX_TREE_SIZE, proof)
    assert caught.value.reason == "proof-size"
    assert not verify_consistency(3, MAX_TREE_SIZE, EMPTY_ROOT, EMPTY_ROOT, proof)


@pytest.mark.parametrize(
    ("size", "old_size"),
    [(8, 0), (8, 9), (8, -1), (0, 1)],
    ids=["from-empty-tree", "old-beyond-new", "negative", "empty-tree"],
)
def test_consistency_proof_refuses_impossible_sizes(size: int, old_size: int) -> None:
    with pytest.raises(MerkleError) as caught:
        consistency_proof(REFERENCE_LEAVES[:size], old_size)
    assert caught.value.reason == "size-out-of-range"


def test_inclusion_proof_refuses_impossible_indices() -> None:
    for index in (-1, 8):
        with pytest.raises(MerkleError):
            inclusion_proof(REFERENCE_LEAVES, index)
    assert inclusion_proofs([]) == []
    assert consistency_proof([], 0) == []


def test_root_builder_gives_the_root_of_every_prefix() -> None:
    leaves = [leaf_hash(bytes([i % 256, i // 256])) for i in range(300)]
    builder = RootBuilder()
    assert builder.root() == root([])
    for i, leaf in enumerate(leaves):
        builder.add(leaf)
        assert builder.size == i + 1
        assert builder.root() == root(leaves[: i + 1]), f"prefix of {i + 1}"
    with pytest.raises(MerkleError):
        builder.add(b"short")
