"""Signed trail checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes (pure core).

A checkpoint says "this log, at this size, has this root". Its body is three lines, each
ending in a newline: the origin (the log's name), the tree size in decimal, and the root hash
in standard base64 (c2sp.org/tlog-checkpoint), then any extension lines, which the spec
leaves to the log (this hub writes one only to hand its trail key over: hub/trail/handover.py).
A signed note is the body, a blank line, and
one line per signature: an em dash, a space, the key name, a space, and base64 of the 4-byte
key hash followed by the signature (c2sp.org/signed-note). For Ed25519 the key hash is the
first 4 bytes of SHA-256(key name || 0x0A || 0x01 || 32-byte public key) and the signature
covers the body exactly as written.

The hub signs checkpoints with its own trail key, not its message-signing key. A verifier
needs the verifier key string ``name+hex(key hash)+base64(0x01 || public key)``.

What it must never do: accept a note it could not verify, or read a file or a database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.trail.merkle import HASH_SIZE, MAX_TREE_SIZE

ED25519 = 0x01
DASH = "\u2014"
MAX_NOTE_BYTES = 16 * 1024
# Extension lines a checkpoint may carry. The hub writes at most one (a key hand-over); a few
# more leave room for what witnesses or later versions add, and a note of hundreds is hostile.
MAX_EXTENSIONS = 8


class CheckpointError(ValueError):
    pass


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()  # the lines after the root, each without its newline

    def body(self) -> bytes:
        if not self.origin or not self.origin.isprintable():
            raise CheckpointError(f"origin {self.origin!r} is not one printable line")
        if not 0 <= self.size <= MAX_TREE_SIZE or len(self.root) != HASH_SIZE:
            raise CheckpointError("checkpoint size or root is out of range")
        if len(self.extensions) > MAX_EXTENSIONS:
            raise CheckpointError(f"a checkpoint carries at most {MAX_EXTENSIONS} extension lines")
        for line in self.extensions:
            if not line or not line.isprintable():
                raise CheckpointError("an extension line is empty or not one printable line")
        root = base64.b64encode(self.root).decode()
        extra = "".join(f"{line}\n" for line in self.extensions)
        return f"{self.origin}\n{self.size}\n{root}\n{extra}".encode()


def valid_name(name: str) -> bool:
    """Key names and origins: non-empty, printable, no spaces and no '+'."""
    return bool(name) and name.isprintable() and not any(c.isspace() or c == "+" for c in name)


def key_hash(name: str, public_key: ed25519.Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + raw).digest()[:4]


@dataclass(frozen=True)
class NoteKey:
    """A named Ed25519 key for signing (``private`` set) or only verifying notes."""

    name: str
    public: ed25519.Ed25519PublicKey
    private: ed25519.Ed25519PrivateKey | None = None

    def __post_init__(self) -> None:
        if not valid_name(self.name):
            raise CheckpointError(f"key name {self.name!r} is not valid")

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.public)

    def verifier(self) -> str:
        """The verifier key string an auditor is given: name+hash+key."""
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        encoded = base64.b64encode(bytes([ED25519]) + raw).decode()
        return f"{self.name}+{self.hash.hex()}+{encoded}"


def parse_verifier(text: str) -> NoteKey:
    """A NoteKey from a verifier key string; refuses anything but Ed25519 and a matching
    key hash."""
    parts = text.strip().split("+", 2)  # base64 may hold "+" too
    if len(parts) != 3:
        raise CheckpointError("a verifier key is name+hash+key")
    name, hash_hex, encoded = parts
    try:
        raw = base64.b64decode(encoded, validate=True)
        expected = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError):
        raise CheckpointError("verifier key is not well-formed") from None
    if len(raw) != 33 or raw[0] != ED25519:
        raise CheckpointError("verifier key is not an Ed25519 key")
    key = NoteKey(name, ed25519.Ed25519PublicKey.from_public_bytes(raw[1:]))
    if key.hash != expected:
        raise CheckpointError("verifier key's hash does not match its name and key")
    return key


def sign(checkpoint: Checkpoint, key: NoteKey, *cosigners: NoteKey) -> bytes:
    """The signed note for ``checkpoint``: one signature line by ``key``, then one by each
    cosigner (a signed note may carry several; a verifier picks the line of the key it
    holds)."""
    signers = (key, *cosigners)
    if len({(k.name, k.hash) for k in signers}) != len(signers):
        raise CheckpointError("a note is signed once by each key")
    body = checkpoint.body()
    lines = []
    for signer in signers:
        if signer.private is None:
            raise CheckpointError(f"key {signer.name} has no private part")
        signature = base64.b64encode(signer.hash + signer.private.sign(body)).decode()
        lines.append(f"{DASH} {signer.name} {signature}\n")
    return body + b"\n" + "".join(lines).encode()


def _split(note: bytes) -> tuple[str, list[tuple[str, str]]]:
    """The body (with its final newline) and the (key name, base64) of each signature line,
    nothing verified yet."""
    if len(note) > MAX_NOTE_BYTES:
        raise CheckpointError("note is too large")
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError("note is not UTF-8") from None
    body, sep, signatures = text.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise CheckpointError("note has no signature block")
    lines = []
    for line in signatures[:-1].split("\n"):
        dash, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if dash != DASH or not name or not encoded:
            raise CheckpointError("malformed signature line")
        lines.append((name, encoded))
    return body + "\n", lines


def signed_by(note: bytes, key: NoteKey) -> bool:
    """Whether ``note`` carries a signature line by ``key`` that verifies."""
    try:
        open_note(note, key)
    except CheckpointError:
        return False
    return True


def signers(note: bytes) -> list[str]:
    """``name+hash`` of each key that claims to have signed ``note`` (nothing verified):
    what an operator is told when a note is not signed by the key they configured."""
    _, lines = _split(note)
    named = []
    for name, encoded in lines:
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        named.append(f"{name}+{blob[:4].hex()}")
    return named


def read_unverified(note: bytes) -> Checkpoint:
    """The checkpoint a note says, before any signature is checked: only to order notes and
    pick the key to check them with, never to trust."""
    body, _ = _split(note)
    return parse_body(body)


def open_note(note: bytes, key: NoteKey) -> Checkpoint:
    """Verify a signed checkpoint with ``key`` and return it. Signatures by other keys are
    ignored; at least one must be ``key``'s and verify."""
    body, lines = _split(note)
    verified = False
    for name, encoded in lines:
        if name != key.name:
            continue
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError("signature is not base64") from None
        if len(blob) != 4 + 64 or blob[:4] != key.hash:
            continue
        try:
            key.public.verify(blob[4:], body.encode())
        except InvalidSignature:
            raise CheckpointError(
                f"signature by {key.name}+{key.hash.hex()} does not verify"
            ) from None
        verified = True
    if not verified:
        raise CheckpointError(f"note is not signed by {key.name}+{key.hash.hex()}")
    return parse_body(body)


def parse_body(body: str) -> Checkpoint:
    """Origin, size and root, then the extension lines (c2sp.org/tlog-checkpoint: any
    number, each non-empty; bounded here by MAX_EXTENSIONS)."""
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise CheckpointError("checkpoint body must have origin, size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    extensions = tuple(lines[3:-1])
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError("checkpoint size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CheckpointError("checkpoint root is not base64") from None
    checkpoint = Checkpoint(origin, int(size_text), root, extensions)
    checkpoint.body()  # range, name and extension checks
    return checkpoint


def trail_key_name(party: str) -> str:
    """The key name a hub signs its checkpoints under."""
    return f"customs-hub-{party}"
