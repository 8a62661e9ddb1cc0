"""Auditors' tokens: what a valid token grants, and every forged or misused token refused
with its reason and status code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.auth import (
    MAX_TOKEN_BYTES,
    MESSAGES_READ,
    TRAIL_READ,
    AuthError,
    ForbiddenError,
    TokenIssuer,
    TokenVerifier,
    bearer,
)

KEY = ed25519.Ed25519PrivateKey.generate()
OTHER = ed25519.Ed25519PrivateKey.generate()
HUB = "customs-hub/CN"
ISSUER = TokenIssuer(KEY, HUB, HUB)
VERIFIER = TokenVerifier(KEY.public_key(), HUB, HUB)
HOUR = timedelta(hours=1)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes: object) -> dict[str, object]:
    now = int(datetime.now(UTC).timestamp())
    base: dict[str, object] = {
        "iss": HUB,
        "aud": HUB,
        "sub": "auditor",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": "j1",
        "scope": TRAIL_READ,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def unsigned(header: dict[str, object], payload: dict[str, object], signature: bytes) -> str:
    parts = [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode())]
    return ".".join([*parts, b64(signature)])


def hs256_with_public_key(secret: bytes) -> str:
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


PUBLIC_RAW = KEY.public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw
)
PUBLIC_PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def tampered() -> str:
    head, _, sig = ISSUER.issue("auditor", [TRAIL_READ], HOUR).split(".")
    body = b64(json.dumps(claims(scope=f"{TRAIL_READ} {MESSAGES_READ}")).encode())
    return f"{head}.{body}.{sig}"


def signed(payload: dict[str, object], key: ed25519.Ed25519PrivateKey = KEY) -> str:
    return jwt.encode(payload, key, algorithm="EdDSA")


# (name, token, reason): every one refused as UNAUTHENTICATED, before it grants anything
REFUSED: list[tuple[str, Callable[[], str], str]] = [
    ("alg none", lambda: unsigned({"alg": "none", "typ": "JWT"}, claims(), b""), "token-algorithm"),
    (
        "HS256 keyed with the raw public key",
        lambda: hs256_with_public_key(PUBLIC_RAW),
        "token-algorithm",
    ),
    (
        "HS256 keyed with the PEM public key",
        lambda: hs256_with_public_key(PUBLIC_PEM),
        "token-algorithm",
    ),
    (
        "RS256 header",
        lambda: unsigned({"alg": "RS256"}, claims(), b"\x00" * 256),
        "token-algorithm",
    ),
    ("ES256 header", lambda: unsigned({"alg": "ES256"}, claims(), b"\x00" * 64), "token-algorithm"),
    (
        "expired",
        lambda: ISSUER.issue("auditor", [TRAIL_READ], HOUR, now=datetime.now(UTC) - 2 * HOUR),
        "token-expired",
    ),
    (
        "not yet valid",
        lambda: ISSUER.issue("auditor", [TRAIL_READ], HOUR, now=datetime.now(UTC) + HOUR),
        "token-not-yet-valid",
    ),
    (
        "wrong audience",
        lambda: TokenIssuer(KEY, HUB, "customs-hub/NZ").issue("auditor", [TRAIL_READ], HOUR),
        "token-wrong-audience",
    ),
    (
        "wrong issuer",
        lambda: TokenIssuer(KEY, "someone-else", HUB).issue("auditor", [TRAIL_READ], HOUR),
        "token-wrong-issuer",
    ),
    (
        "signed by another key",
        lambda: TokenIssuer(OTHER, HUB, HUB).issue("auditor", [TRAIL_READ], HOUR),
        "token-signature",
    ),
    ("payload changed after signing", tampered, "token-signature"),
    ("no expiry", lambda: signed(claims(exp=None)), "token-malformed"),
    ("no scope", lambda: signed(claims(scope=None)), "token-malformed"),
    ("no audience", lambda: signed(claims(aud=None)), "token-malformed"),
    ("scope not a string", lambda: signed(claims(scope=["trail:read"])), "token-malformed"),
    ("partners not a list", lambda: signed(claims(partners="NZ")), "token-malformed"),
    ("partners not party ids", lambda: signed(claims(partners=["nz; drop"])), "token-malformed"),
    ("not a JWT", lambda: "not-a-token", "token-malformed"),
    ("too large", lambda: "a" * (MAX_TOKEN_BYTES + 1), "token-too-large"),
]


@pytest.mark.parametrize(("name", "make", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_forged_and_misused_tokens_are_refused(
    name: str, make: Callable[[], str], reason: str
) -> None:
    with pytest.raises(AuthError) as caught:
        VERIFIER.verify(make())
    assert type(caught.value) is AuthError, name
    assert caught.value.reason == reason
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "eyJ" not in str(caught.value)  # no token echoed


def test_a_valid_token_grants_what_it_names() -> None:
    token = ISSUER.issue("national-audit-office", [TRAIL_READ, MESSAGES_READ], HOUR, ["NZ", "SG"])
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "typ": "at+jwt"}
    grant = VERIFIER.verify(token)
    assert grant.subject == "national-audit-office"
    assert grant.scopes == {TRAIL_READ, MESSAGES_READ}
    assert grant.partners == {"NZ", "SG"}
    assert grant.expires_at - datetime.now(UTC) <= HOUR
    assert grant.may_see("NZ", "") and grant.may_see("domestic", "SG")
    assert not grant.may_see("CN", "") and not grant.may_see("", "")
    grant.require(MESSAGES_READ)


def test_a_missing_scope_or_partner_is_forbidden() -> None:
    grant = VERIFIER.verify(ISSUER.issue("auditor", [TRAIL_READ], HOUR, ["NZ"]))
    with pytest.raises(ForbiddenError) as caught:
        grant.require(MESSAGES_READ)
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.reason == "scope-missing"
    assert not grant.may_see("SG", "CN")
    unrestricted = VERIFIER.verify(ISSUER.issue("auditor", [TRAIL_READ], HOUR))
    assert unrestricted.partners is None and unrestricted.may_see("SG")


def test_unknown_scopes_grant_nothing() -> None:
    grant = VERIFIER.verify(signed(claims(scope="trail:read trail:write admin")))
    assert grant.scopes == {TRAIL_READ}


@pytest.mark.parametrize(
    ("subject", "scopes", "ttl", "partners"),
    [
        ("", [TRAIL_READ], HOUR, None),
        ("auditor", [], HOUR, None),
        ("auditor", ["trail:write"], HOUR, None),
        ("auditor", [TRAIL_READ], timedelta(0), None),
        ("auditor", [TRAIL_READ], timedelta(days=32), None),
        ("auditor", [TRAIL_READ], HOUR, []),
        ("auditor", [TRAIL_READ], HOUR, ["nz"]),
    ],
)
def test_the_issuer_refuses_tokens_it_should_not_mint(
    subject: str, scopes: list[str], ttl: timedelta, partners: list[str] | None
) -> None:
    with pytest.raises(ValueError):
        ISSUER.issue(subject, scopes, ttl, partners)


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "token-missing"),
        ((("x-other", "1"),), "token-missing"),
        ((("authorization", "Basic dXNlcjpwdw=="),), "token-malformed"),
        ((("authorization", "Bearer"),), "token-malformed"),
        ((("authorization", "Bearer a"), ("authorization", "Bearer b")), "token-malformed"),
    ],
)
def test_bearer_headers_are_parsed_strictly(
    metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    with pytest.raises(AuthError) as caught:
        bearer(metadata)
    assert caught.value.reason == reason


def test_bearer_finds_the_token() -> None:
    assert bearer([("authorization", "Bearer abc.def.ghi")]) == "abc.def.ghi"
    assert bearer([("Authorization", "bearer abc.def.ghi")]) == "abc.def.ghi"
