"""Signed checkpoints in the C2SP signed-note format, checked against a note Go's checksum
database published, and against every single-byte change."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.trail.checkpoint import (
    DASH,
    Checkpoint,
    CheckpointError,
    NoteKey,
    open_note,
    parse_body,
    parse_verifier,
    sign,
)

# Known answer: a checkpoint signed by sum.golang.org, and that log's published verifier key.
GO_VERIFIER = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
GO_NOTE = base64.b64decode(
    "Z28uc3VtIGRhdGFiYXNlIHRyZWUKNjU2NjQyNTgKV1ZWTlZEMnF4K2ZUcTMxemtqNlVBcXhUNVg2SHZHcGhHTStv"
    "OFRobmJzZz0KCuKAlCBzdW0uZ29sYW5nLm9yZyBBejNncmxpZ0ptZ1g3S0d5R1BLeWJ5a05UaDNWZ3NiTHZVdXZP"
    "d3JNNXpMVmx1bG1GcDJ3ZHZieE93NzQvZ2NOeFVSU2hYRXBiN1JYY3MzK0JZZmxZTit3MGdRPQo="
)


def hub_key(name: str = "cn-hub-trail") -> NoteKey:
    private = ed25519.Ed25519PrivateKey.generate()
    return NoteKey(name, private.public_key(), private)


def test_a_note_published_by_go_verifies_and_parses() -> None:
    key = parse_verifier(GO_VERIFIER)
    assert key.hash.hex() == "033de0ae"  # the key hash is computed as the format defines it
    assert key.verifier() == GO_VERIFIER
    checkpoint = open_note(GO_NOTE, key)
    assert checkpoint.origin == "go.sum database tree"
    assert checkpoint.size == 65664258
    assert base64.b64encode(checkpoint.root) == b"WVVNVD2qx+fTq31zkj6UAqxT5X6HvGphGM+o8Thnbsg="


def test_any_changed_byte_of_the_signed_text_is_refused() -> None:
    key = parse_verifier(GO_VERIFIER)
    text_end = GO_NOTE.index(b"\n\n") + 1
    for i in range(text_end):
        bent = bytearray(GO_NOTE)
        bent[i] ^= 0x01
        with pytest.raises(CheckpointError):
            open_note(bytes(bent), key)


def test_the_hub_signs_what_it_says_and_only_its_key_vouches() -> None:
    key = hub_key()
    checkpoint = Checkpoint("customs-hub/CN", 1234, bytes(range(32)))
    note = sign(checkpoint, key)
    text, _, signature = note.decode().partition("\n\n")
    assert text == f"customs-hub/CN\n1234\n{base64.b64encode(bytes(range(32))).decode()}"
    assert signature.startswith(f"{DASH} cn-hub-trail ") and signature.endswith("\n")
    verifier = parse_verifier(key.verifier())
    assert open_note(note, verifier) == checkpoint
    with pytest.raises(CheckpointError, match="not signed by"):
        open_note(note, hub_key())  # same name, another key
    with pytest.raises(CheckpointError, match="not signed by"):
        open_note(note, parse_verifier(GO_VERIFIER))
    # a cosigner's line is ignored, ours still counts
    other = sign(checkpoint, hub_key("witness"))
    cosigned = note + other.split(b"\n\n")[1]
    assert open_note(cosigned, verifier) == checkpoint


@pytest.mark.parametrize(
    "note",
    [
        b"",
        b"customs-hub/CN\n1\n" + base64.b64encode(b"x" * 32) + b"\n",  # no signature block
        b"origin\n12\nAAAA\n\n" + DASH.encode() + b" k AAAA\n",  # root not 32 bytes
        b"origin\n012\n" + base64.b64encode(b"x" * 32) + b"\n\n- k AAAA\n",  # hyphen, not dash
        b"\xff\xfe\n\n",
        b"x" * 20000,
    ],
)
def test_malformed_notes_are_refused(note: bytes) -> None:
    with pytest.raises(CheckpointError):
        open_note(note, hub_key())


def test_verifier_keys_and_names_are_checked() -> None:
    name, _, rest = GO_VERIFIER.partition("+")
    with pytest.raises(CheckpointError, match="hash"):
        parse_verifier(GO_VERIFIER.replace("033de0ae", "033de0af"))
    with pytest.raises(CheckpointError):
        parse_verifier(f"other.name+{rest}")  # the hash binds the name
    with pytest.raises(CheckpointError):
        parse_verifier("sum.golang.org+033de0ae")
    for bad in ("has space", "has+plus", ""):
        with pytest.raises(CheckpointError):
            hub_key(bad)
    with pytest.raises(CheckpointError):
        sign(Checkpoint("o", 1, b"x" * 32), parse_verifier(GO_VERIFIER))  # no private key
    with pytest.raises(CheckpointError):
        Checkpoint("two\nlines", 1, b"x" * 32).body()
    assert name == "sum.golang.org"


def test_extension_lines_are_signed_and_read_back_and_bounded() -> None:
    """c2sp.org/tlog-checkpoint: non-empty lines after the root, covered by the signatures;
    a note may carry several signatures, each verifiable alone."""
    key, cosigner = hub_key(), hub_key()
    point = Checkpoint("customs-hub/CN", 7, bytes(32), ("key-rotation x", "other note"))
    note = sign(point, key, cosigner)
    body, _, signatures = note.decode().partition("\n\n")
    assert body.split("\n")[3:] == ["key-rotation x", "other note"]
    assert len(signatures.splitlines()) == 2
    assert open_note(note, parse_verifier(key.verifier())) == point
    assert open_note(note, parse_verifier(cosigner.verifier())) == point
    with pytest.raises(CheckpointError, match="once by each key"):
        sign(point, key, key)
    for extensions in (("",), ("two\nlines",), tuple(f"x{i}" for i in range(9))):
        with pytest.raises(CheckpointError):
            sign(Checkpoint("o", 1, bytes(32), extensions), key)
    # an empty extension line (a blank line inside the body) is not one
    root = base64.b64encode(bytes(32)).decode()
    with pytest.raises(CheckpointError, match="empty"):
        parse_body(f"o\n1\n{root}\n\nx\n")
    assert parse_body(f"o\n1\n{root}\nx\n").extensions == ("x",)
