"""Pre-authentication encoding, key ids and pinned algorithms."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hub.core.errors import TrustError
from hub.core.signing import Algorithm, Signer, VerificationKey, key_id_of, pae


def test_pae_known_answer() -> None:
    assert pae(b"tag", b"ab", b"") == b"CHPAEv1 3 tag 2 ab 0 "


def test_pae_lengths_make_splits_distinct() -> None:
    assert pae(b"t", b"ab", b"c") != pae(b"t", b"a", b"bc")
    assert pae(b"t", b"a b", b"") != pae(b"t", b"a", b"b")


def test_key_id_is_sha256_of_spki() -> None:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_id_of(key) == hashlib.sha256(spki).hexdigest()


@pytest.mark.parametrize(
    ("make", "algorithm"),
    [
        (ed25519.Ed25519PrivateKey.generate, Algorithm.ED25519),
        (lambda: ec.generate_private_key(ec.SECP256R1()), Algorithm.ECDSA_P256_SHA256),
    ],
)
def test_sign_and_verify(make, algorithm) -> None:  # type: ignore[no-untyped-def]
    signer = Signer.from_private_key(make())
    assert signer.algorithm is algorithm
    key = signer.verification_key("CN")
    sig = signer.sign(b"declaration")
    assert key.verify(sig, b"declaration")
    assert not key.verify(sig, b"declaratioN")
    assert not key.verify(sig[:-1] + bytes([sig[-1] ^ 1]), b"declaration")


@pytest.mark.parametrize(
    "make",
    [
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
)
def test_other_algorithms_are_refused_at_load(make) -> None:  # type: ignore[no-untyped-def]
    key = make()
    with pytest.raises(TrustError) as info:
        VerificationKey.for_party("CN", key.public_key())
    assert info.value.reason == "unsupported-key"
