"""Auditors' tokens: what a valid token grants, and every forged or misused token refused with
its reason and status code. Keys are generated fresh per test run."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.auth import (
    MAX_TOKEN_BYTES,
    MAX_TOKEN_TTL,
    MESSAGES_READ,
    SCOPES,
    TRAIL_READ,
    AuthError,
    ForbiddenError,
    Grant,
    TokenInvalidError,
    TokenIssuer,
    TokenVerifier,
    bearer,
)
from hub.core.errors import Status

KEY = ed25519.Ed25519PrivateKey.generate()
OTHER = ed25519.Ed25519PrivateKey.generate()
HUB = "customs-hub/CN"
ISSUER = TokenIssuer(KEY, HUB, HUB)
VERIFIER = TokenVerifier(KEY.public_key(), HUB, HUB)
HOUR = timedelta(hours=1)
PUBLIC_RAW = KEY.public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw
)
PUBLIC_PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes: object) -> dict[str, object]:
    """Valid claims; a change to None removes the claim."""
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


def by_hand(header: dict[str, object], payload: dict[str, object], signature: bytes) -> str:
    parts = [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode())]
    return ".".join([*parts, b64(signature)])


def hs256_with_public_key(secret: bytes) -> str:
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def tampered() -> str:
    head, _, sig = ISSUER.issue("auditor", [TRAIL_READ], HOUR).split(".")
    body = b64(json.dumps(claims(scope=f"{TRAIL_READ} {MESSAGES_READ}")).encode())
    return f"{head}.{body}.{sig}"


def signed(
    payload: dict[str, object],
    key: ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey = KEY,
    headers: dict[str, object] | None = None,
) -> str:
    return jwt.encode(payload, key, algorithm="EdDSA", headers=headers)


def issued(now_offset: timedelta = timedelta(0), ttl: timedelta = HOUR) -> str:
    return ISSUER.issue("auditor", [TRAIL_READ], ttl, now=datetime.now(UTC) + now_offset)


# (name, token, reason): every one refused as TokenInvalidError, UNAUTHENTICATED
REFUSED: list[tuple[str, Callable[[], str], str]] = [
    ("alg none", lambda: by_hand({"alg": "none", "typ": "JWT"}, claims(), b""), "token-algorithm"),
    (
        "HS256 keyed with raw public key",
        lambda: hs256_with_public_key(PUBLIC_RAW),
        "token-algorithm",
    ),
    (
        "HS256 keyed with PEM public key",
        lambda: hs256_with_public_key(PUBLIC_PEM),
        "token-algorithm",
    ),
    ("RS256 header", lambda: by_hand({"alg": "RS256"}, claims(), b"\x00" * 256), "token-algorithm"),
    ("ES256 header", lambda: by_hand({"alg": "ES256"}, claims(), b"\x00" * 64), "token-algorithm"),
    (
        "alg in wrong case",
        lambda: by_hand({"alg": "eddsa"}, claims(), b"\0" * 64),
        "token-algorithm",
    ),
    ("no alg", lambda: by_hand({"typ": "at+jwt"}, claims(), b"\x00" * 64), "token-algorithm"),
    ("expired", lambda: issued(-2 * HOUR), "token-expired"),
    ("expired beyond the leeway", lambda: issued(-HOUR - timedelta(seconds=90)), "token-expired"),
    ("not yet valid", lambda: issued(HOUR), "token-not-yet-valid"),
    ("iat in the future", lambda: signed(claims(iat=int(9e9))), "token-not-yet-valid"),
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
        "signed by another Ed25519 key",
        lambda: TokenIssuer(OTHER, HUB, HUB).issue("auditor", [TRAIL_READ], HOUR),
        "token-signature",
    ),
    (
        "signed by an Ed448 key",
        lambda: signed(claims(), ed448.Ed448PrivateKey.generate()),
        "token-signature",
    ),
    ("payload changed after signing", tampered, "token-signature"),
    ("signature cut off", lambda: issued().rsplit(".", 1)[0] + ".", "token-signature"),
    *(
        (f"no {claim}", lambda c=claim: signed(claims(**{c: None})), "token-malformed")
        for claim in ("exp", "iat", "nbf", "iss", "aud", "sub", "jti", "scope")
    ),
    (
        "crit extension",
        lambda: signed(claims(), headers={"crit": ["x"], "x": 1}),
        "token-malformed",
    ),
    ("scope not a string", lambda: signed(claims(scope=[TRAIL_READ])), "token-malformed"),
    ("sub not a string", lambda: signed(claims(sub=7)), "token-malformed"),
    ("sub empty", lambda: signed(claims(sub="")), "token-malformed"),
    ("sub with a newline", lambda: signed(claims(sub="a\nb")), "token-malformed"),
    ("jti not a string", lambda: signed(claims(jti=7)), "token-malformed"),
    ("exp a string", lambda: signed(claims(exp="9999999999")), "token-malformed"),
    ("exp out of range", lambda: signed(claims(exp=10**30)), "token-malformed"),
    ("partners not a list", lambda: signed(claims(partners="NZ")), "token-malformed"),
    ("partners empty", lambda: signed(claims(partners=[])), "token-malformed"),
    ("partners not party ids", lambda: signed(claims(partners=["nz; drop"])), "token-malformed"),
    ("partners unhashable", lambda: signed(claims(partners=[{"a": 1}])), "token-malformed"),
    ("not a JWT", lambda: "not-a-token", "token-malformed"),
    ("empty", lambda: "", "token-malformed"),
    ("header nested deeply", lambda: b64(b"[" * 5000) + ".e30.", "token-malformed"),
    ("header not an object", lambda: b64(b"[]") + ".e30.", "token-malformed"),
    ("too large", lambda: "a" * (MAX_TOKEN_BYTES + 1), "token-too-large"),
    ("too large in bytes", lambda: "é" * (MAX_TOKEN_BYTES // 2 + 1), "token-too-large"),
]


@pytest.mark.parametrize(("name", "make", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_forged_and_misused_tokens_are_refused(
    name: str, make: Callable[[], str], reason: str
) -> None:
    token = make()
    with pytest.raises(TokenInvalidError) as caught:
        VERIFIER.verify(token)
    assert type(caught.value) is TokenInvalidError, name
    assert caught.value.reason == reason
    assert caught.value.status == Status.UNAUTHENTICATED
    text = str(caught.value)
    assert "eyJ" not in text and (len(token) < 8 or token not in text)  # no token echoed


def test_a_valid_token_grants_what_it_names() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    token = ISSUER.issue("national-audit-office", [TRAIL_READ, MESSAGES_READ], HOUR, ["SG", "NZ"])
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "typ": "at+jwt"}
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["scope"] == "messages:read trail:read"
    assert payload["partners"] == ["NZ", "SG"]
    assert payload["iat"] == payload["nbf"] == payload["exp"] - 3600
    grant = VERIFIER.verify(token)
    assert grant.subject == "national-audit-office"
    assert grant.scopes == {TRAIL_READ, MESSAGES_READ}
    assert grant.partners == {"NZ", "SG"}
    assert len(grant.token_id) == 32 and grant.token_id == payload["jti"]
    assert before + HOUR <= grant.expires_at <= datetime.now(UTC) + HOUR
    assert grant.expires_at.tzinfo is UTC
    grant.require(MESSAGES_READ)
    grant.require(TRAIL_READ)


def test_every_token_has_its_own_id() -> None:
    ids = {VERIFIER.verify(issued()).token_id for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: issued(-HOUR - timedelta(seconds=10)), id="expired within leeway"),
        pytest.param(lambda: issued(timedelta(seconds=10)), id="not yet valid within leeway"),
        pytest.param(lambda: signed(claims()), id="typ JWT (not checked)"),
        pytest.param(lambda: signed(claims(), headers={"typ": None}), id="no typ (not checked)"),
        pytest.param(lambda: signed(claims(aud=["other", HUB])), id="audience in a list"),
    ],
)
def test_tokens_at_the_edges_pass_the_check_they_test(make: Callable[[], str]) -> None:
    assert VERIFIER.verify(make()).scopes == {TRAIL_READ}


def test_a_token_at_the_size_limit_is_parsed() -> None:
    padded = signed(claims(pad="x" * MAX_TOKEN_BYTES))[:MAX_TOKEN_BYTES]
    with pytest.raises(TokenInvalidError) as caught:
        VERIFIER.verify(padded)
    assert caught.value.reason != "token-too-large"
    token = signed(claims(pad=""))
    token = signed(claims(pad="x" * ((MAX_TOKEN_BYTES - len(token)) * 3 // 4)))
    assert MAX_TOKEN_BYTES - 4 <= len(token) <= MAX_TOKEN_BYTES
    assert VERIFIER.verify(token).subject == "auditor"


def test_the_leeway_is_configurable() -> None:
    strict = TokenVerifier(KEY.public_key(), HUB, HUB, leeway=timedelta(0))
    with pytest.raises(TokenInvalidError) as caught:
        strict.verify(issued(-HOUR - timedelta(seconds=10)))
    assert caught.value.reason == "token-expired"
    with pytest.raises(TokenInvalidError) as caught:
        strict.verify(issued(timedelta(seconds=10)))
    assert caught.value.reason == "token-not-yet-valid"


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        ("trail:read trail:write admin", {TRAIL_READ}),
        ("admin", set()),
        ("", set()),
        (f"  {MESSAGES_READ}   {TRAIL_READ} ", SCOPES),
    ],
)
def test_unknown_scopes_grant_nothing(scope: str, granted: set[str]) -> None:
    assert VERIFIER.verify(signed(claims(scope=scope))).scopes == granted


@pytest.mark.parametrize(
    ("scope", "needed"),
    [
        (TRAIL_READ, MESSAGES_READ),
        (MESSAGES_READ, TRAIL_READ),
        ("admin messages:write", TRAIL_READ),
        ("", MESSAGES_READ),
    ],
)
def test_a_missing_scope_is_forbidden(scope: str, needed: str) -> None:
    grant = VERIFIER.verify(signed(claims(scope=scope)))
    with pytest.raises(ForbiddenError) as caught:
        grant.require(needed)
    assert type(caught.value) is ForbiddenError
    assert caught.value.reason == "scope-missing"
    assert caught.value.status == Status.PERMISSION_DENIED
    assert isinstance(caught.value, AuthError)  # the Audit servicer catches the family


def test_requiring_a_scope_the_hub_does_not_know_is_a_bug() -> None:
    with pytest.raises(ValueError, match="not one of"):
        VERIFIER.verify(issued()).require("trail:write")


# (restriction, parties, visible)
VISIBILITY: list[tuple[list[str] | None, tuple[str, ...], bool]] = [
    (None, ("SG",), True),
    (None, (), True),
    (["NZ"], ("NZ", ""), True),
    (["NZ", "SG"], ("domestic", "SG"), True),
    (["NZ"], ("SG", "CN"), False),
    (["NZ"], ("", ""), False),
    (["NZ"], (), False),
    (["NZ"], ("nz",), False),
]


@pytest.mark.parametrize(("restriction", "parties", "visible"), VISIBILITY)
def test_a_partner_restriction_limits_what_is_visible(
    restriction: list[str] | None, parties: tuple[str, ...], visible: bool
) -> None:
    grant = VERIFIER.verify(ISSUER.issue("auditor", [TRAIL_READ], HOUR, restriction))
    assert grant.partners == (None if restriction is None else frozenset(restriction))
    assert grant.may_see(*parties) is visible


@pytest.mark.parametrize(
    ("subject", "scopes", "ttl", "partners"),
    [
        pytest.param("", [TRAIL_READ], HOUR, None, id="empty subject"),
        pytest.param("a\nb", [TRAIL_READ], HOUR, None, id="subject of two lines"),
        pytest.param("auditor", [], HOUR, None, id="no scope"),
        pytest.param("auditor", ["trail:write"], HOUR, None, id="unknown scope"),
        pytest.param("auditor", [TRAIL_READ, "admin"], HOUR, None, id="one unknown scope"),
        pytest.param("auditor", TRAIL_READ, HOUR, None, id="scopes as one string"),
        pytest.param("auditor", [TRAIL_READ], timedelta(0), None, id="ttl zero"),
        pytest.param("auditor", [TRAIL_READ], -HOUR, None, id="ttl negative"),
        pytest.param("auditor", [TRAIL_READ], timedelta(milliseconds=500), None, id="ttl < 1 s"),
        pytest.param(
            "auditor", [TRAIL_READ], MAX_TOKEN_TTL + timedelta(seconds=1), None, id="ttl too long"
        ),
        pytest.param("auditor", [TRAIL_READ], HOUR, [], id="empty restriction"),
        pytest.param("auditor", [TRAIL_READ], HOUR, ["nz"], id="lower-case party"),
        pytest.param("auditor", [TRAIL_READ], HOUR, ["N"], id="party too short"),
        pytest.param("auditor", [TRAIL_READ], HOUR, ["NZ" + "X" * 15], id="party too long"),
        pytest.param("auditor", [TRAIL_READ], HOUR, "NZ", id="partners as one string"),
    ],
)
def test_the_issuer_refuses_tokens_it_should_not_mint(
    subject: str, scopes: list[str], ttl: timedelta, partners: list[str] | None
) -> None:
    with pytest.raises(ValueError):
        ISSUER.issue(subject, scopes, ttl, partners)


def test_the_issuer_accepts_the_longest_ttl_and_an_aware_now() -> None:
    now = datetime.now(timezone(timedelta(hours=12)))  # Wellington: not UTC, but aware
    grant = VERIFIER.verify(ISSUER.issue("auditor", [TRAIL_READ], MAX_TOKEN_TTL, now=now))
    assert grant.expires_at == (now + MAX_TOKEN_TTL).replace(microsecond=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ISSUER.issue("auditor", [TRAIL_READ], HOUR, now=datetime.now())


def test_keys_and_names_are_checked_when_built() -> None:
    other_kind = ed448.Ed448PrivateKey.generate()
    with pytest.raises(TypeError):
        TokenIssuer(other_kind, HUB, HUB)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TokenVerifier(other_kind.public_key(), HUB, HUB)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TokenIssuer(KEY, "", HUB)
    with pytest.raises(ValueError):
        TokenVerifier(KEY.public_key(), HUB, "")
    with pytest.raises(ValueError):
        TokenVerifier(KEY.public_key(), HUB, HUB, leeway=timedelta(seconds=-1))


# (name, metadata, reason): every one TokenInvalidError, UNAUTHENTICATED
BEARER_REFUSED: list[tuple[str, list[tuple[str, str | bytes]] | None, str]] = [
    ("no metadata", None, "token-missing"),
    ("empty metadata", [], "token-missing"),
    ("other headers only", [("x-other", "1")], "token-missing"),
    ("basic scheme", [("authorization", "Basic dXNlcjpwdw==")], "token-missing"),
    ("scheme run into the token", [("authorization", "Bearerabc")], "token-missing"),
    ("empty header", [("authorization", "")], "token-missing"),
    ("no credentials", [("authorization", "Bearer")], "token-malformed"),
    ("blank credentials", [("authorization", "Bearer   ")], "token-malformed"),
    ("two credentials", [("authorization", "Bearer a b")], "token-malformed"),
    ("not a b64token", [("authorization", "Bearer a,b")], "token-malformed"),
    ("tab separator", [("authorization", "Bearer\ta")], "token-missing"),
    ("non-ASCII bytes", [("authorization", b"Bearer \xff")], "token-malformed"),
    (
        "two headers",
        [("authorization", "Bearer a"), ("authorization", "Bearer b")],
        "token-malformed",
    ),
]


@pytest.mark.parametrize(
    ("name", "metadata", "reason"), BEARER_REFUSED, ids=[r[0] for r in BEARER_REFUSED]
)
def test_bearer_headers_are_parsed_strictly(
    name: str, metadata: list[tuple[str, str | bytes]] | None, reason: str
) -> None:
    with pytest.raises(TokenInvalidError) as caught:
        bearer(metadata)
    assert type(caught.value) is TokenInvalidError, name
    assert caught.value.reason == reason
    assert caught.value.status == Status.UNAUTHENTICATED


@pytest.mark.parametrize(
    "metadata",
    [
        [("authorization", "Bearer abc.def.ghi")],
        [("Authorization", "bearer abc.def.ghi")],
        [("x-other", "1"), ("authorization", "BEARER   abc.def.ghi ")],
        [("authorization", b"Bearer abc.def.ghi")],
    ],
)
def test_bearer_finds_the_token(metadata: list[tuple[str, str | bytes]]) -> None:
    assert bearer(metadata) == "abc.def.ghi"


def test_a_token_from_the_header_verifies() -> None:
    token = issued()
    grant = VERIFIER.verify(bearer([("authorization", f"Bearer {token}")]))
    assert isinstance(grant, Grant) and grant.subject == "auditor"


def _segment(data: bytes | dict[str, object]) -> str:
    return b64(json.dumps(data).encode() if isinstance(data, dict) else data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=200) | st.binary(max_size=200).map(b64))
def test_any_text_is_refused_with_our_one_error(text: str) -> None:
    with pytest.raises(TokenInvalidError):
        VERIFIER.verify(text)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None)
@given(
    header=st.dictionaries(st.sampled_from(["alg", "typ", "crit", "kid", "b64"]), JSON)
    | st.just({"alg": "EdDSA"}),
    payload=st.dictionaries(st.sampled_from([*claims(), "partners"]), JSON) | st.binary(),
    signature=st.binary(max_size=80),
)
def test_any_jwt_shaped_token_is_refused_with_our_one_error(
    header: dict[str, object], payload: dict[str, object] | bytes, signature: bytes
) -> None:
    with pytest.raises(TokenInvalidError):
        VERIFIER.verify(f"{_segment(header)}.{_segment(payload)}.{b64(signature)}")


@pytest.mark.slow
@settings(max_examples=200, deadline=None, database=None)
@given(payload=st.dictionaries(st.sampled_from([*claims(), "partners"]), JSON))
def test_any_claims_signed_with_the_key_give_a_grant_or_our_one_error(
    payload: dict[str, object],
) -> None:
    head = _segment({"alg": "EdDSA"}) + "." + _segment({**claims(), **payload})
    token = f"{head}.{b64(KEY.sign(head.encode()))}"
    try:
        grant = VERIFIER.verify(token)
    except TokenInvalidError:
        return
    assert grant.scopes <= SCOPES and grant.subject
