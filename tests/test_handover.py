"""The trail key's hand-over (hub/trail/handover.py), without a store: the hub's choice of how
to sign, a verifier following a chain of keys, and every way a chain can be forged, refused
with a sentence that says which rule it broke. tests/test_trail_rotation.py runs the same on
real hubs."""

from __future__ import annotations

import base64
import hashlib
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.trail import checkpoint, handover, merkle
from hub.trail import events as trail
from hub.trail import verify as trailcheck
from hub.trail.checkpoint import Checkpoint, CheckpointError, NoteKey
from hub.trail.handover import TrailKeyError, TrailKeys

AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
ORIGIN = "customs-hub/CN"
NAME = "customs-hub-CN"


def new_key() -> NoteKey:
    private = ed25519.Ed25519PrivateKey.generate()
    return NoteKey(NAME, private.public_key(), private)


def public(key: NoteKey) -> NoteKey:
    return checkpoint.parse_verifier(key.verifier())


def verifiers(keys: list[NoteKey]) -> list[str]:
    return [k.verifier() for k in keys]


def event(i: int) -> trail.Event:
    return trail.Event("queued", AT, message_id=f"m{i:04d}", recipient="NZ")


@dataclass
class Log:
    """A trail in memory: its leaves, and the notes signed over it."""

    leaves: list[bytes]
    notes: list[tuple[str, bytes]]

    def root(self, size: int) -> bytes:
        return merkle.root([merkle.leaf_hash(leaf) for leaf in self.leaves[:size]])

    def grow(self, n: int) -> int:
        start = len(self.leaves)
        self.leaves += [trail.encode(event(start + i)).data for i in range(n)]
        return len(self.leaves)

    def sign(self, plan: handover.Plan) -> bytes:
        """What the hub does at a checkpoint: the plan's leaves, then the signed note."""
        self.leaves += [trail.encode(e).data for e in plan.leaves(AT)]
        size = len(self.leaves)
        note = plan.sign(ORIGIN, size, self.root(size))
        self.notes.append((f"checkpoints/{size:020d}.note", note))
        return note

    def records(self) -> list[trailcheck.Record]:
        return [
            trailcheck.Record(i, leaf, merkle.leaf_hash(leaf)) for i, leaf in enumerate(self.leaves)
        ]

    def verify(self, key: NoteKey) -> trailcheck.Report:
        return trailcheck.verify(self.records(), self.notes, public(key), len(self.leaves))


def rotated(*keys: NoteKey) -> Log:
    """A log signed by ``keys[0]``, handed over to each next key in turn, with a checkpoint
    by each key after its hand-over."""
    log = Log([], [])
    log.grow(5)
    log.sign(handover.Plan(keys[0]))
    for old, new in itertools.pairwise(keys):
        log.grow(3)
        log.sign(TrailKeys(new, old).plan(log.notes[-1][1]))
        log.grow(4)
        log.sign(TrailKeys(new).plan(log.notes[-1][1]))
    return log


def test_the_hub_signs_with_the_key_in_force_or_hands_over_or_refuses() -> None:
    k1, k2, stranger = new_key(), new_key(), new_key()
    first = TrailKeys(k1).plan(None)
    assert (first.signer, first.successor, first.leaves(AT)) == (k1, None, [])
    note = first.sign(ORIGIN, 3, bytes(32))
    # the key that signed the newest goes on signing, even with a previous key still named
    assert TrailKeys(k1, k2).plan(note) == handover.Plan(k1)
    # the previous key signed it: a hand-over, whose leaf records the new key's digest
    plan = TrailKeys(k2, k1).plan(note)
    assert (plan.signer, plan.successor) == (k1, k2)
    [leaf] = plan.leaves(AT)
    assert leaf.kind == "config-changed"
    assert leaf.config_digest == hashlib.sha256(k2.verifier().encode()).digest()
    assert leaf.keys == {handover.INDEX_KEY: [handover.short(k2)]}
    handed = plan.sign(ORIGIN, 4, bytes(32))
    assert checkpoint.open_note(handed, public(k1)).extensions == (f"key-rotation {k2.verifier()}",)
    assert checkpoint.signed_by(handed, public(k2))
    assert TrailKeys(k2, k1).plan(handed) == handover.Plan(k2)  # done: the new key signs
    # a key nobody handed over to: refused, naming the key that signed the newest
    for keys in (TrailKeys(stranger), TrailKeys(stranger, k2)):
        with pytest.raises(TrailKeyError) as refused:
            keys.plan(note)
        assert f"signed by {handover.short(k1)}, not by the trail key" in str(refused.value)
        assert handover.short(stranger) in str(refused.value)


def test_after_a_hand_over_only_the_key_it_named_signs() -> None:
    """The hand-over carries the old key's signature too: a hub rolled back to the old key,
    or given any other, must refuse rather than sign what no verifier accepts."""
    old, new, other = new_key(), new_key(), new_key()
    log = Log([], [])
    log.grow(3)
    log.sign(TrailKeys(old).plan(None))
    log.grow(2)
    handed = log.sign(TrailKeys(new, old).plan(log.notes[-1][1]))
    assert checkpoint.signed_by(handed, public(old))  # what made the old key look in force
    for keys in (
        TrailKeys(old),
        TrailKeys(old, new),
        TrailKeys(old, other),
        TrailKeys(other),
        TrailKeys(other, old),
        TrailKeys(other, new),
    ):
        with pytest.raises(handover.HandedOverError) as refused:
            keys.plan(handed)
        assert refused.value.successor.verifier() == new.verifier()
        assert str(refused.value) == (
            f"the newest checkpoint (at {len(log.leaves)} entries) handed the trail key over "
            f"to {handover.short(new)}; only that key may sign next, not the trail key "
            f"{handover.short(keys.current)}"
        )
    # what the old key would have signed next is refused by every verifier from the first key
    log.grow(2)
    log.sign(handover.Plan(old))
    with pytest.raises(CheckpointError, match="not signed by"):
        handover.follow(log.notes, public(old))
    # the named key goes on, with the old key still named as previous or not
    log.notes.pop()
    for keys in (TrailKeys(new), TrailKeys(new, old)):
        assert keys.plan(handed) == handover.Plan(new)
    log.sign(TrailKeys(new).plan(handed))
    _, chain = handover.follow(log.notes, public(old))
    assert chain.keys[-1].verifier() == new.verifier()
    # a note naming the configured key but not co-signed by it puts nothing in force
    forged = resign(handed, old)
    with pytest.raises(TrailKeyError, match="is not co-signed by it") as refused:
        TrailKeys(new, old).plan(forged)
    assert not isinstance(refused.value, handover.HandedOverError)


def test_a_verifier_follows_two_hand_overs_from_the_first_key() -> None:
    k1, k2, k3 = new_key(), new_key(), new_key()
    log = rotated(k1, k2, k3)
    report = log.verify(k1)
    assert report.ok, report.summary()
    assert report.chain is not None
    assert verifiers(report.chain.keys) == verifiers([k1, k2, k3])
    assert [h.size for h in report.chain.handovers] == [9, 17]
    assert verifiers([report.chain.key_for(9), report.chain.key_for(10)]) == verifiers([k1, k2])
    assert "trail keys followed: " + report.chain.describe() in report.summary()
    # the latest note exported twice counts once
    log.notes.append(("checkpoint.note", log.notes[-1][1]))
    assert log.verify(k1).ok
    # a later key cannot vouch for what the first one signed before it
    bad = log.verify(k2)
    assert not bad.ok and f"not signed by {handover.short(k2)}" in bad.problem


def test_an_auditor_given_only_the_hand_overs_follows_them() -> None:
    k1, k2, k3 = new_key(), new_key(), new_key()
    log = rotated(k1, k2, k3)
    hashes = [merkle.leaf_hash(leaf) for leaf in log.leaves]

    def proven(name_note: tuple[str, bytes]) -> handover.ProvenHandover:
        size = checkpoint.read_unverified(name_note[1]).size
        proof = merkle.inclusion_proof(hashes[:size], size - 1)
        return handover.ProvenHandover(name_note[1], size - 1, log.leaves[size - 1], proof)

    given = [proven(n) for n in log.notes if b"key-rotation" in n[1]]
    chain, points = handover.follow_proven(given, public(k1))
    assert verifiers(chain.keys) == verifiers([k1, k2, k3]) and sorted(points) == [9, 17]
    # from the second key: it joins at the hand-over that named it
    joined = handover.follow_proven(given, public(k2))[0]
    assert verifiers(joined.keys) == verifiers([k2, k3])
    # an entry that is not the hand-over's, or a proof that does not verify
    wrong = [given[0], handover.ProvenHandover(given[1].note, 15, log.leaves[15], [])]
    with pytest.raises(CheckpointError, match="does not come with its last entry"):
        handover.follow_proven(wrong, public(k1))
    other = handover.ProvenHandover(given[1].note, 16, log.leaves[15], given[1].proof)
    with pytest.raises(CheckpointError, match="not the config-changed leaf recording it"):
        handover.follow_proven([given[0], other], public(k1))
    cut = handover.ProvenHandover(given[1].note, 16, log.leaves[16], given[1].proof[1:])
    with pytest.raises(CheckpointError, match="inclusion proof of its entry does not verify"):
        handover.follow_proven([given[0], cut], public(k1))


def resign(note: bytes, *keys: NoteKey, extensions: tuple[str, ...] | None = None) -> bytes:
    """The checkpoint ``note`` says, with other extension lines if given, signed by ``keys``."""
    point = checkpoint.read_unverified(note)
    if extensions is not None:
        point = Checkpoint(point.origin, point.size, point.root, extensions)
    return checkpoint.sign(point, *keys)


def forge(log: Log, index: int, note: bytes) -> Log:
    notes = list(log.notes)
    notes[index] = (notes[index][0], note)
    return Log(log.leaves, notes)


K1, K2, THIEF = new_key(), new_key(), new_key()
HONEST = rotated(K1, K2)  # checkpoints at 5, 9 (the hand-over), 13
HANDOVER_NOTE = HONEST.notes[1][1]
LINE = f"key-rotation {K2.verifier()}"
# (name, the forged log, what verification must say)
FORGERIES = [
    (
        "a checkpoint by a new key with no hand-over",
        Log(HONEST.leaves, [HONEST.notes[0], HONEST.notes[2]]),
        f"13.note: note is not signed by {handover.short(K1)}, the key in force; a checkpoint "
        "by another key counts only after a hand-over checkpoint",
    ),
    (
        "a thief's own key at the latest size",
        forge(HONEST, 2, resign(HONEST.notes[2][1], THIEF)),
        "counts only after a hand-over checkpoint signed by the key in force",
    ),
    (
        "a hand-over signed only by the new key",
        forge(HONEST, 1, resign(HANDOVER_NOTE, K2)),
        f"a hand-over to {handover.short(K2)} not signed by {handover.short(K1)}, the key in force",
    ),
    (
        "a hand-over to a thief's key, signed by the thief",
        forge(
            HONEST,
            1,
            resign(HANDOVER_NOTE, THIEF, extensions=(f"key-rotation {THIEF.verifier()}",)),
        ),
        "only the key in force can name its successor",
    ),
    (
        "a hand-over signed by the old key without the new key's co-signature",
        forge(HONEST, 1, resign(HANDOVER_NOTE, K1)),
        f"names the key {handover.short(K2)} but is not co-signed by it",
    ),
    (
        "a hand-over naming one key, co-signed by another",
        forge(
            HONEST,
            1,
            resign(HANDOVER_NOTE, K1, THIEF, extensions=(f"key-rotation {K2.verifier()}",)),
        ),
        f"names the key {handover.short(K2)} but is not co-signed by it",
    ),
    (
        "a forged key-rotation line under the old signatures",
        forge(
            HONEST,
            1,
            HANDOVER_NOTE.replace(K2.verifier().encode(), THIEF.verifier().encode()),
        ),
        f"signature by {handover.short(K1)} does not verify",
    ),
    (
        "a key-rotation line added to a signed checkpoint",
        forge(
            HONEST,
            0,
            HONEST.notes[0][1].replace(b"\n\n", f"\n{LINE}\n\n".encode(), 1),
        ),
        "only the key in force can name its successor",
    ),
    (
        "a malformed key-rotation line, signed",
        forge(HONEST, 1, resign(HANDOVER_NOTE, K1, K2, extensions=(LINE + " ",))),
        "malformed key-rotation line",
    ),
    (
        "two key-rotation lines, signed",
        forge(
            HONEST,
            1,
            resign(HANDOVER_NOTE, K1, K2, extensions=(LINE, f"key-rotation {THIEF.verifier()}")),
        ),
        "names more than one next key",
    ),
    (
        "the old key signing after its hand-over",
        forge(HONEST, 2, resign(HONEST.notes[2][1], K1)),
        f"not signed by {handover.short(K2)}, the key in force since the hand-over at 9; a "
        "checkpoint by another key counts only after a hand-over",
    ),
]


@pytest.mark.parametrize(
    ("forged", "problem"), [(f, p) for _, f, p in FORGERIES], ids=[n for n, _, _ in FORGERIES]
)
def test_every_forged_chain_is_refused_with_the_rule_it_broke(forged: Log, problem: str) -> None:
    assert HONEST.verify(K1).ok
    report = forged.verify(K1)
    assert not report.ok
    assert problem in report.problem, report.problem


def test_a_hand_over_must_end_with_the_leaf_that_records_it() -> None:
    """Both keys signed it, but the hub did not record it in the tree: refused at the entry
    where the record should be."""
    log = rotated(K1)
    log.grow(2)
    plan = TrailKeys(K2, K1).plan(log.notes[-1][1])
    size = len(log.leaves)
    log.notes.append(("handover.note", handover.Plan(K1, K2).sign(ORIGIN, size, log.root(size))))
    report = log.verify(K1)
    assert plan.successor == K2 and not report.ok
    assert report.first_bad == size - 1
    assert "does not end with the config-changed entry recording its new key" in report.problem


def spec_open(note: bytes, verifier: str) -> list[str]:
    """An independent reading of c2sp.org/signed-note and tlog-checkpoint, from the spec's
    text and nothing of hub/trail: the body's lines if a signature line of ``verifier``'s key
    verifies over the body."""
    name, key_hash, encoded = verifier.split("+", 2)
    raw = base64.b64decode(encoded)
    assert raw[0] == 1  # Ed25519
    assert hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == key_hash
    text = note.decode()
    body, signatures = text[: text.rindex("\n\n") + 1], text[text.rindex("\n\n") + 2 :]
    for line in signatures.splitlines():
        dash, signer, signature = line.split(" ")
        blob = base64.b64decode(signature)
        if dash == "\u2014" and signer == name and blob[:4].hex() == key_hash:
            ed25519.Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], body.encode())
            return body.splitlines()
    raise AssertionError(f"no signature by {name}+{key_hash}")


def test_a_hand_over_note_reads_as_the_specs_say() -> None:
    """Extension lines are the spec's: an independent reader finds the three checkpoint
    lines, the key-rotation line after them, and both keys' signatures over the same body."""
    lines = spec_open(HANDOVER_NOTE, K1.verifier())
    assert spec_open(HANDOVER_NOTE, K2.verifier()) == lines
    assert lines[0] == ORIGIN and lines[1] == "9"
    assert base64.b64decode(lines[2]) == HONEST.root(9)
    assert lines[3:] == [LINE]
    assert spec_open(HONEST.notes[2][1], K2.verifier())[3:] == []
