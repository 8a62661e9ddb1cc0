"""Anti-entropy's pure core (hub/core/snapshot.py): the leaf encoding and digest of an AEO list,
the bounds on queries and snapshot requests, and the bisection that finds what differs, driven
here against an in-memory "asked hub" that answers with ``RangeDigest.of`` as a real one does.
"""

from __future__ import annotations

import random
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.errors import LimitError
from hub.core.snapshot import (
    LIST_ENTRIES,
    MAX_QUERY_IDS,
    MAX_RANGES,
    WHOLE,
    AnswerError,
    Digest,
    IdRange,
    Pair,
    QueryError,
    RangeDigest,
    Reconciler,
    check_ids,
    check_ranges,
    digest,
    leaf,
    middle,
    range_digests,
    sorted_pairs,
    status_message_id,
    visible_pair,
    within,
)
from hub.trail import merkle


def test_leaf_is_the_domain_the_id_with_its_length_and_the_revision() -> None:
    assert leaf("NZAEO1", 7) == (
        b"customs-hub/aeo-entry/v1\x00" + b"\x00\x06NZAEO1" + b"\x00" * 7 + b"\x07"
    )
    # the length keeps ("a", revision with a leading byte) from colliding with ("a\x00", ...)
    assert leaf("a", 1) != leaf("a\x00", 1)
    assert leaf("é", 0)[25:27] == b"\x00\x02"  # UTF-8 bytes counted, not characters


def test_digest_is_the_rfc6962_root_over_the_leaves_in_id_order() -> None:
    pairs = [("A1", 1), ("A2", 3), ("B", 0)]
    expected = merkle.root([merkle.leaf_hash(leaf(i, r)) for i, r in pairs])
    assert digest(pairs) == Digest(3, expected)
    assert digest([]) == Digest(0, merkle.EMPTY_ROOT)
    with pytest.raises(QueryError):
        digest([("B", 0), ("A", 1)])
    with pytest.raises(QueryError):
        digest([("A", 0), ("A", 1)])
    assert digest([("A", 1)]) != digest([("A", 2)])  # a revision changes the root


def test_sorted_pairs_orders_by_code_point_and_keeps_the_highest_revision() -> None:
    assert sorted_pairs([("b", 1), ("B", 2), ("a", 3), ("b", 4), ("b", 2)]) == [
        ("B", 2),
        ("a", 3),
        ("b", 4),
    ]


def test_within_and_middle() -> None:
    pairs = [(f"ID{i:03d}", i) for i in range(10)]
    assert within(pairs, WHOLE) == pairs
    assert within(pairs, IdRange("ID003", "ID006")) == pairs[3:6]
    assert within(pairs, IdRange("ID0035", "")) == pairs[4:]
    assert within(pairs, IdRange("", "ID000")) == []
    assert middle(pairs) == "ID005"
    assert middle(pairs[:1]) == ""


def test_status_message_ids_are_uuids_fixed_by_issuer_recipient_id_and_revision() -> None:
    first = status_message_id("CN", "NZ", "CNAEO1", 3)
    assert first == status_message_id("CN", "NZ", "CNAEO1", 3)
    parsed = uuid.UUID(first)
    assert parsed.version == 8 and parsed.variant == uuid.RFC_4122
    others = {
        status_message_id("CN", "NZ", "CNAEO1", 4),
        status_message_id("CN", "SG", "CNAEO1", 3),
        status_message_id("CN", "NZ", "CNAEO2", 3),
        status_message_id("NZ", "CN", "CNAEO1", 3),
    }
    assert first not in others and len(others) == 4


def test_query_ids_are_bounded_and_checked() -> None:
    assert check_ids(["A", "B", "A"]) == ["A", "B"]
    assert len(check_ids([f"A{i}" for i in range(MAX_QUERY_IDS)])) == MAX_QUERY_IDS
    with pytest.raises(LimitError) as too_many:
        check_ids([f"A{i}" for i in range(MAX_QUERY_IDS + 1)])
    assert too_many.value.reason == "limit-exceeded"
    for bad in ([], [""], ["x" * 129], ["A\nB"]):
        with pytest.raises(QueryError) as info:
            check_ids(bad)
        assert info.value.reason == "query-invalid"


def test_snapshot_ranges_are_bounded_and_checked() -> None:
    assert check_ranges([]) == [WHOLE]
    assert check_ranges([IdRange("A", "B")]) == [IdRange("A", "B")]
    with pytest.raises(LimitError):
        check_ranges([IdRange(f"A{i}", "") for i in range(MAX_RANGES + 1)])
    for bad in (IdRange("B", "A"), IdRange("A", "A"), IdRange("x" * 129, ""), IdRange("\x00")):
        with pytest.raises(QueryError):
            check_ranges([bad])


def test_snapshot_ranges_must_not_overlap() -> None:
    # 64 copies of the whole list would cost the asked hub 64 Merkle trees of everything
    for bad in (
        [WHOLE] * MAX_RANGES,
        [IdRange("A", "C"), IdRange("A", "C")],
        [IdRange("A", "C"), IdRange("B", "D")],
        [IdRange("M", ""), IdRange("A", "N")],
        [IdRange("B", "C"), WHOLE],
    ):
        with pytest.raises(QueryError) as info:
            check_ranges(bad)
        assert info.value.reason == "query-invalid"
    # what bisection asks: adjacent halves, in any order
    halves = [IdRange("M", ""), IdRange("", "G"), IdRange("G", "M")]
    assert check_ranges(halves) == halves


def test_range_digests_sort_the_visible_pairs_once_and_digest_each_range() -> None:
    rows = [("B", 2), ("A", 1), ("C", 5), ("B", 1)]
    made = range_digests(rows, (), [IdRange("", "B"), IdRange("B", "")])
    assert [(d.count, d.entries) for d in made] == [(1, (("A", 1),)), (2, (("B", 2), ("C", 5)))]
    [hidden] = range_digests(rows, ("aeo_id",), [WHOLE])
    assert hidden.entries == (("A", 0), ("B", 0), ("C", 0))
    assert range_digests(rows, ("tin",), [WHOLE])[0].count == 0


def test_a_small_range_is_listed_a_large_one_named_by_its_middle() -> None:
    pairs = [(f"ID{i:05d}", 1) for i in range(LIST_ENTRIES + 1)]
    small = RangeDigest.of(pairs, IdRange("", pairs[LIST_ENTRIES][0]))
    assert small.count == LIST_ENTRIES and small.entries == tuple(pairs[:LIST_ENTRIES])
    large = RangeDigest.of(pairs, WHOLE)
    assert large.entries is None and large.middle == pairs[(LIST_ENTRIES + 1) // 2][0]
    assert (large.count, large.root) == (digest(pairs).count, digest(pairs).root)


def reconcile(local: list[Pair], remote: list[Pair]) -> tuple[Reconciler, int]:
    """Run a Reconciler against ``remote`` as the asked hub; returns it and the calls made."""
    reconciler = Reconciler(local)
    calls = 0
    while not reconciler.done:
        asked = reconciler.ranges()
        assert 0 < len(asked) <= MAX_RANGES
        reconciler.take(asked, [RangeDigest.of(remote, span) for span in asked])
        calls += 1
    return reconciler, calls


def test_equal_lists_take_one_call() -> None:
    pairs = [(f"CN{i:06d}", i % 5) for i in range(5000)]
    reconciler, calls = reconcile(pairs, pairs)
    assert calls == 1 and reconciler.fetch == [] and reconciler.rounds == 0
    assert reconciler.top is not None and reconciler.top.count == 5000


def test_bisection_finds_exactly_what_is_missing_older_or_only_here() -> None:
    rng = random.Random(18)
    remote = [(f"CN{i:06d}", rng.randrange(1, 9)) for i in range(20_000)]
    local = dict(remote)
    missing = rng.sample([i for i, _ in remote], 40)
    older = rng.sample([i for i, _ in remote if i not in missing], 30)
    newer = rng.sample([i for i, _ in remote if i not in missing and i not in older], 5)
    for aeo_id in missing:
        del local[aeo_id]
    for aeo_id in older:
        local[aeo_id] -= 1
    for aeo_id in newer:
        local[aeo_id] += 1
    local["CN999999X"] = 1  # one the asked hub does not list
    reconciler, calls = reconcile(sorted(local.items()), remote)
    assert sorted(reconciler.fetch) == sorted(missing + older)
    assert sorted(reconciler.newer_here) == sorted(newer)
    assert reconciler.only_here == ["CN999999X"]
    # about log2(20000 / 256) levels; ranges that agree are not split again
    assert reconciler.rounds <= 8 and calls <= 40
    # what the fetch brings makes the lists equal but for what only this side holds
    fixed = {**local, **{i: dict(remote)[i] for i in reconciler.fetch}}
    for aeo_id in [*newer, "CN999999X"]:
        fixed.pop(aeo_id)
    assert digest(sorted(fixed.items())) == digest([p for p in remote if p[0] not in newer])


def test_an_empty_registry_fetches_everything_listed() -> None:
    remote = [(f"NZ{i:05d}", 1) for i in range(3000)]
    reconciler, _ = reconcile([], remote)
    assert reconciler.fetch == [i for i, _ in remote]


@settings(max_examples=60, deadline=None)
@given(
    remote=st.dictionaries(st.text(min_size=1, max_size=6), st.integers(0, 3), max_size=700),
    local=st.dictionaries(st.text(min_size=1, max_size=6), st.integers(0, 3), max_size=700),
)
def test_bisection_agrees_with_a_plain_comparison(
    remote: dict[str, int], local: dict[str, int]
) -> None:
    reconciler, _ = reconcile(sorted(local.items()), sorted(remote.items()))
    assert sorted(reconciler.fetch) == sorted(i for i, r in remote.items() if local.get(i, -1) < r)
    assert sorted(reconciler.only_here) == sorted(i for i in local if i not in remote)
    assert sorted(reconciler.newer_here) == sorted(
        i for i, r in remote.items() if i in local and local[i] > r
    )


def test_an_answer_that_does_not_answer_the_ranges_asked_is_refused() -> None:
    remote = [(f"A{i:04d}", 1) for i in range(1000)]
    reconciler = Reconciler([])
    asked = reconciler.ranges()
    with pytest.raises(AnswerError) as info:
        reconciler.take(asked, [RangeDigest.of(remote, IdRange("A", ""))])
    assert info.value.reason == "answer-invalid"
    with pytest.raises(AnswerError):
        reconciler.take(asked, [])


def test_a_split_that_would_not_shrink_is_refused() -> None:
    remote = [(f"A{i:04d}", 1) for i in range(1000)]
    span = IdRange("A0000", "A9")
    honest = RangeDigest.of(remote, span)
    for cut in ("", "0", "A0000", "B"):  # none, below, at the range's start, beyond its end
        reconciler = Reconciler([])
        reconciler.pending = [span]
        asked = reconciler.ranges()
        lying = RangeDigest(span, honest.count, honest.root, cut, None)
        with pytest.raises(AnswerError):
            reconciler.take(asked, [lying])


def test_listed_entries_must_be_the_range_s_digest() -> None:
    remote = [(f"A{i:03d}", 1) for i in range(10)]
    honest = RangeDigest.of(remote, WHOLE)
    assert honest.entries is not None
    for entries in (
        honest.entries[:-1],  # fewer than counted
        (*honest.entries[:-1], ("A009", 2)),  # not what the root covers
        (*honest.entries[:-1], ("A000", 1)),  # an id twice
    ):
        reconciler = Reconciler([])
        asked = reconciler.ranges()
        with pytest.raises(AnswerError):
            reconciler.take(asked, [RangeDigest(WHOLE, 10, honest.root, "", entries)])


def test_visible_pair_follows_the_shared_fields() -> None:
    assert visible_pair("A", 3, ()) == ("A", 3)
    assert visible_pair("A", 3, ("aeo_id", "revision", "status")) == ("A", 3)
    assert visible_pair("A", 3, ("aeo_id", "status")) == ("A", 0)
    assert visible_pair("A", 3, ("tin", "revision")) is None
