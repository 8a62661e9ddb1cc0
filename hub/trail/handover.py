"""Rotating the trail key: the hand-over checkpoint, and following a chain of them (pure core).

Auditors hold a hub's verifier key for years; a new trail key must be provably the hub's, or
a thief of the store could start a new history under a key of their own (docs/adr/0010). So
the key that signed the newest checkpoint names its successor: the hand-over checkpoint
carries, after its three lines, the extension line ``key-rotation <new verifier key>``, is
signed by the old key and co-signed by the new one, and covers, as its last entry, a
``config-changed`` leaf whose ``config_digest`` is SHA-256 of the new verifier key string.
From the next checkpoint on only the new key signs.

A verifier starts from the key it was given and, in size order, accepts a checkpoint only if
the key in force signed it; a hand-over it accepts puts the named key in force for every
larger size. ``TrailKeys.plan`` is the hub's side of the same rule: it signs with the key
that signed its newest checkpoint, or hands over from ``trail.previous_key`` to
``trail.key``, or refuses; after a hand-over only the key it named may sign, so a hub rolled
back to the old key refuses to start rather than sign checkpoints no verifier accepts.

What it must never do: put a key in force that the key in force did not name in a note it
signed and the named key co-signed; trust a note's claims before a signature says so; read a
file or a database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hub.trail import checkpoint, merkle
from hub.trail import events as trail
from hub.trail.checkpoint import Checkpoint, CheckpointError, NoteKey

ROTATION = "key-rotation"  # the extension line's keyword
# The hand-over leaf's detail begins with this, then the new key's name+hash.
HANDOVER_DETAIL = "trail key handed over to "
# ... and it names the new key's name+hash under this key in the trail's index, so that the
# store finds hand-overs without reading every checkpoint (``trail query --key trail-key=``).
INDEX_KEY = "trail-key"


class TrailKeyError(CheckpointError):
    """The configured trail keys cannot continue this trail's history."""


class HandedOverError(TrailKeyError):
    """The newest checkpoint handed the trail key over to ``successor``, and the configured
    ``trail.key`` is another key: only the successor may sign next (what the operator does
    about it differs from a key that never signed here, hence its own class)."""

    def __init__(self, message: str, successor: NoteKey) -> None:
        super().__init__(message)
        self.successor = successor


def short(key: NoteKey) -> str:
    """``name+hash``: how a key is named in messages (the hash tells keys of one name apart)."""
    return f"{key.name}+{key.hash.hex()}"


def rotation_line(new: NoteKey) -> str:
    return f"{ROTATION} {new.verifier()}"


def key_digest(key: NoteKey) -> bytes:
    """What the hand-over leaf records: SHA-256 of the new verifier key string."""
    return hashlib.sha256(key.verifier().encode()).digest()


def handover_event(new: NoteKey, at: datetime) -> trail.Event:
    """The ``config-changed`` leaf a hand-over checkpoint covers as its last entry."""
    return trail.Event(
        "config-changed",
        at,
        config_digest=key_digest(new),
        detail=HANDOVER_DETAIL + short(new),
        keys={INDEX_KEY: [short(new)]},
    )


def is_handover_leaf(detail: str) -> bool:
    return detail.startswith(HANDOVER_DETAIL)


def named_key(point: Checkpoint) -> NoteKey | None:
    """The next key a checkpoint names, or None if it names none. A ``key-rotation`` line
    must be the keyword, one space and a verifier key exactly as ``NoteKey.verifier`` writes
    it; anything else, or two such lines, is refused as forged."""
    lines = [line for line in point.extensions if line.split(" ", 1)[0] == ROTATION]
    if not lines:
        return None
    if len(lines) > 1:
        raise CheckpointError(f"the checkpoint at {point.size} names more than one next key")
    _, _, text = lines[0].partition(" ")
    try:
        key = checkpoint.parse_verifier(text)
    except CheckpointError as exc:
        raise CheckpointError(
            f"the checkpoint at {point.size} has a malformed {ROTATION} line: {exc}"
        ) from None
    if lines[0] != rotation_line(key):
        raise CheckpointError(
            f"the checkpoint at {point.size} has a malformed {ROTATION} line: not "
            f"'{ROTATION} <verifier key>' exactly"
        )
    return key


# --- The hub's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How the next checkpoint is signed: by ``signer`` alone, or, with ``successor``, as a
    hand-over to it (the hand-over leaf appended first)."""

    signer: NoteKey
    successor: NoteKey | None = None

    def leaves(self, at: datetime) -> list[trail.Event]:
        return [] if self.successor is None else [handover_event(self.successor, at)]

    def sign(self, origin: str, size: int, root: bytes) -> bytes:
        if self.successor is None:
            return checkpoint.sign(Checkpoint(origin, size, root), self.signer)
        point = Checkpoint(origin, size, root, (rotation_line(self.successor),))
        return checkpoint.sign(point, self.signer, self.successor)


@dataclass(frozen=True)
class TrailKeys:
    """The hub's trail keys: ``current`` (``trail.key``), and during a rotation ``previous``
    (``trail.previous_key``), the key that signed the newest checkpoint."""

    current: NoteKey
    previous: NoteKey | None = None

    def plan(self, newest: bytes | None) -> Plan:
        """How to sign after ``newest``, the newest signed note (None before the first).

        1. No checkpoint yet: the current key begins the trail's history.
        2. The newest is a hand-over: the key it names, if it is the current key and
           co-signed it, signs from now on; any other current key is refused
           (HandedOverError), whatever the previous key: the old key signed the hand-over
           too, but a verifier accepts nothing more from it.
        3. The current key signed the newest: it goes on signing.
        4. The previous key signed it: the next checkpoint hands over to the current key.
        5. Neither: TrailKeyError, naming the key that did.

        Step 2 reads the ``key-rotation`` line before any signature is checked: it can only
        refuse on the strength of it, never put a key in force.
        """
        if newest is None:
            return Plan(self.current)
        successor = _successor(newest)
        if successor is not None:
            return self._after_handover(newest, successor)
        if checkpoint.signed_by(newest, self.current):
            return Plan(self.current)
        if self.previous is not None and checkpoint.signed_by(newest, self.previous):
            return Plan(self.previous, self.current)
        try:
            size = f"at {checkpoint.read_unverified(newest).size} entries"
            by = ", ".join(checkpoint.signers(newest)) or "no key"
        except CheckpointError:
            size, by = "", "a key this hub cannot read"
        configured = short(self.current) + (
            f" nor the previous key {short(self.previous)}" if self.previous else ""
        )
        raise TrailKeyError(
            f"the newest checkpoint ({size}) is signed by {by}, not by the trail key {configured}"
        )

    def _after_handover(self, newest: bytes, successor: NoteKey) -> Plan:
        size = checkpoint.read_unverified(newest).size
        if not _same(successor, self.current):
            raise HandedOverError(
                f"the newest checkpoint (at {size} entries) handed the trail key over to "
                f"{short(successor)}; only that key may sign next, not the trail key "
                f"{short(self.current)}",
                successor,
            )
        if not checkpoint.signed_by(newest, self.current):
            raise TrailKeyError(
                f"the newest checkpoint (at {size} entries) names the trail key "
                f"{short(self.current)} as the next key but is not co-signed by it"
            )
        return Plan(self.current)


def _successor(note: bytes) -> NoteKey | None:
    """The key a note names as the next one (unverified), as a TrailKeyError if unreadable."""
    try:
        return named_key(checkpoint.read_unverified(note))
    except CheckpointError as exc:
        raise TrailKeyError(f"the newest checkpoint cannot be read: {exc}") from None


# --- The verifier's side ----------------------------------------------------------------------


@dataclass(frozen=True)
class Handover:
    size: int  # the hand-over checkpoint's size: its last entry records the hand-over
    old: NoteKey
    new: NoteKey


@dataclass
class KeyChain:
    """The keys a verifier followed from the one it was given, with the hand-overs between."""

    first: NoteKey
    handovers: list[Handover] = field(default_factory=list)

    @property
    def keys(self) -> list[NoteKey]:
        return [self.first, *(h.new for h in self.handovers)]

    def key_for(self, size: int) -> NoteKey:
        """The key that signs a checkpoint at ``size``: the one handed over to below it (a
        hand-over checkpoint itself is the old key's, which the new one co-signed)."""
        key = self.first
        for handover in self.handovers:
            if handover.size < size:
                key = handover.new
        return key

    def describe(self) -> str:
        """``k1 -> k2 (after 57) -> k3 (after 90)``: the chain as a report line shows it, each
        key with the size of the hand-over after which it signs."""
        return " -> ".join(
            [short(self.first), *(f"{short(h.new)} (after {h.size})" for h in self.handovers)]
        )


def follow(
    notes: Sequence[tuple[str, bytes]], first: NoteKey
) -> tuple[list[tuple[str, Checkpoint]], KeyChain]:
    """Every note verified with the key in force at its size, in size order, and the chain of
    keys followed; CheckpointError naming the first note that fails.

    1. Each note's size is read from its body (not trusted yet, only to order the notes);
       a note given twice (the latest checkpoint is exported twice) counts once.
    2. In size order, each note is signed by the key in force: the one given, until a
       hand-over names the next.
    3. A note that names a next key (``key-rotation``) hands over only if that key
       co-signed it; from then on the named key is in force, and the old one vouches for
       nothing larger. (One that names the key in force changes nothing: a verifier given a
       later key starts there.)
    """
    chain = KeyChain(first)
    read: list[tuple[int, str, bytes]] = []
    seen: set[bytes] = set()
    for name, note in notes:
        if note in seen:
            continue
        seen.add(note)
        try:
            read.append((checkpoint.read_unverified(note).size, name, note))
        except CheckpointError as exc:
            raise CheckpointError(f"{name}: {exc}") from None
    read.sort(key=lambda item: item[0])
    opened: list[tuple[str, Checkpoint]] = []
    in_force = first
    for _, name, note in read:
        try:
            point = checkpoint.open_note(note, in_force)
        except CheckpointError as exc:
            raise CheckpointError(f"{name}: {_unsigned(note, in_force, chain, exc)}") from None
        try:
            new = named_key(point)
        except CheckpointError as exc:
            raise CheckpointError(f"{name}: {exc}") from None
        # a hand-over to the key in force is where a verifier that was given the new key
        # joins the chain: it verified (as the co-signature), and puts no key in force
        if new is not None and not _same(new, in_force):
            if not checkpoint.signed_by(note, new):
                raise CheckpointError(
                    f"{name}: the hand-over at {point.size} names the key {short(new)} but "
                    f"is not co-signed by it; a key takes over only with its own signature"
                )
            chain.handovers.append(Handover(point.size, in_force, new))
            in_force = new
        opened.append((name, point))
    return opened, chain


def _same(a: NoteKey, b: NoteKey) -> bool:
    return a.name == b.name and a.hash == b.hash and a.public == b.public


@dataclass(frozen=True)
class ProvenHandover:
    """A hand-over as the Audit service gives it: the note, and its last entry with the
    inclusion proof in the note's tree."""

    note: bytes
    index: int
    leaf: bytes
    proof: Sequence[bytes]


def follow_proven(
    handovers: Sequence[ProvenHandover], first: NoteKey
) -> tuple[KeyChain, dict[int, Checkpoint]]:
    """The chain of keys from ``first`` through the hand-overs an auditor was given, and the
    hand-over checkpoints by size; CheckpointError at the first that fails.

    1. The notes follow from ``first`` (``follow``, steps 1-3).
    2. Each hand-over's entry is its checkpoint's last (index = size - 1), and a
       config-changed leaf whose config_digest is SHA-256 of the key it names.
    3. That entry's inclusion proof verifies under the hand-over checkpoint's root.
    """
    opened, chain = follow(
        [(f"hand-over checkpoint {i + 1}", h.note) for i, h in enumerate(handovers)], first
    )
    points = {point.size: point for _, point in opened}
    by_size = {h.index + 1: h for h in handovers}
    for step in chain.handovers:
        proven = by_size.get(step.size)
        where = f"the hand-over at {step.size} to {short(step.new)}"
        if proven is None:
            raise CheckpointError(f"{where} does not come with its last entry")
        try:
            event = trail.decode(proven.leaf)
        except trail.TrailError as exc:
            raise CheckpointError(f"{where}: entry {proven.index}: {exc}") from None
        if event.kind != "config-changed" or event.config_digest != key_digest(step.new):
            raise CheckpointError(
                f"{where}: entry {proven.index} is not the config-changed leaf recording it"
            )
        try:
            included = merkle.verify_inclusion(
                merkle.leaf_hash(proven.leaf),
                proven.index,
                step.size,
                list(proven.proof),
                points[step.size].root,
            )
        except merkle.MerkleError:
            included = False
        if not included:
            raise CheckpointError(f"{where}: the inclusion proof of its entry does not verify")
    return chain, points


def _unsigned(note: bytes, in_force: NoteKey, chain: KeyChain, error: CheckpointError) -> str:
    """Why a note is refused, in the words of the rotation rules."""
    since = ""
    if chain.handovers:
        since = f" since the hand-over at {chain.handovers[-1].size}"
    try:
        point = checkpoint.read_unverified(note)
        names = named_key(point)
    except CheckpointError:
        names = None
    if names is not None:
        return (
            f"a hand-over to {short(names)} not signed by {short(in_force)}, the key in "
            f"force{since} ({error}); only the key in force can name its successor"
        )
    if "does not verify" in str(error):
        return str(error)
    return (
        f"{error}, the key in force{since}; a checkpoint by another key counts only after a "
        f"hand-over checkpoint signed by the key in force and co-signed by the new one"
    )
