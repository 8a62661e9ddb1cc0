"""Auditors' bearer tokens: JWTs the hub issues and verifies for its Audit service (pure core).

A token is a JWT (RFC 7519) signed with EdDSA (Ed25519) by the hub's audit key and typed
``at+jwt`` (RFC 9068). It names the auditor (``sub``), the hub that issued it (``iss``) and the
hub it is for (``aud``), when it is valid (``iat``, ``nbf``, ``exp``), its id (``jti``), what it
may read (``scope``: space-separated, RFC 8693 4.2) and, optionally, the partners whose
messages and trail entries it may see (``partners``; absent means every partner).

The algorithm is pinned to the key: the header never chooses it, so ``alg: none``, HMAC tokens
keyed with the public key and RSA/ECDSA headers are refused before any claim is read. Scopes
this hub does not know are refused when issuing and grant nothing when verifying.

What it must never do: accept a token without checking size, algorithm, signature, audience,
issuer, validity period and the required claims; echo a token or a key in an error; read a
file, a socket or a database (keys are passed in as ``cryptography`` objects).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.core.errors import HubError, Status
from hub.core.trust import PARTY_ID

ALGORITHM = "EdDSA"
TRAIL_READ = "trail:read"
MESSAGES_READ = "messages:read"
SCOPES = frozenset({TRAIL_READ, MESSAGES_READ})
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti", "scope")
# A token of this hub is a few hundred bytes; 8 KiB also fits a long partner list, stays well
# below gRPC's 16 KiB default metadata limit, and bounds what is parsed before the signature.
MAX_TOKEN_BYTES = 8 * 1024
# An audit engagement is reviewed monthly: no token outlives 31 days, so a lost one expires.
MAX_TOKEN_TTL = timedelta(days=31)
# Clock skew tolerated on exp, nbf and iat between the issuing and the verifying host.
LEEWAY = timedelta(seconds=30)
# RFC 6750 2.1: "Bearer" (case-insensitive) then a b64token.
_BEARER_SCHEME = re.compile(r"(?i:bearer)(?: +|$)")
_B64TOKEN = re.compile(r"[A-Za-z0-9_.~+/-]+=*")


class AuthError(HubError):
    """An auditor's token is refused; the two subclasses say why."""

    status = Status.UNAUTHENTICATED
    default_reason = "token-malformed"


class TokenInvalidError(AuthError):
    """No valid token of this hub was presented (UNAUTHENTICATED)."""

    status = Status.UNAUTHENTICATED
    default_reason = "token-malformed"


class ForbiddenError(AuthError):
    """The token is valid but does not allow this (PERMISSION_DENIED)."""

    status = Status.PERMISSION_DENIED
    default_reason = "scope-missing"


@dataclass(frozen=True)
class Grant:
    """What a verified token allows."""

    subject: str
    scopes: frozenset[str]
    partners: frozenset[str] | None  # None: every partner
    token_id: str
    expires_at: datetime  # UTC

    def require(self, scope: str) -> None:
        """ForbiddenError (scope-missing) unless the token grants ``scope``."""
        if scope not in SCOPES:  # a typo in a servicer must fail loudly, not deny everyone
            raise ValueError(f"{scope!r} is not one of {', '.join(sorted(SCOPES))}")
        if scope not in self.scopes:
            raise ForbiddenError(
                f"this call needs scope {scope}; the token grants "
                f"{' '.join(sorted(self.scopes)) or 'none'}",
                reason="scope-missing",
            )

    def may_see(self, *parties: str) -> bool:
        """Whether an entry or message between these parties is visible to this token."""
        return self.partners is None or any(p in self.partners for p in parties if p)


def _party_ids(partners: Iterable[object]) -> frozenset[str]:
    """The party ids of a partner restriction; ValueError if any is not one."""
    if isinstance(partners, str | bytes):  # "NZ" would otherwise become {"N", "Z"}
        raise ValueError("partners is a list of party ids, not one string")
    found: set[str] = set()
    for party in partners:
        if not isinstance(party, str) or not PARTY_ID.fullmatch(party):
            shown = repr(party)[:20] if isinstance(party, str) else type(party).__name__
            raise ValueError(f"partner {shown} is not a party id such as 'NZ'")
        found.add(party)
    if not found:
        raise ValueError("a partner restriction names at least one partner")
    return frozenset(found)


class TokenIssuer:
    """Mints auditors' tokens with the hub's audit key."""

    def __init__(self, key: ed25519.Ed25519PrivateKey, issuer: str, audience: str) -> None:
        if not isinstance(key, ed25519.Ed25519PrivateKey):  # the key pins the algorithm
            raise TypeError(f"the audit key must be Ed25519; found {type(key).__name__}")
        if not issuer or not audience:
            raise ValueError("a token issuer names its issuer and audience")
        self._key, self.issuer, self.audience = key, issuer, audience

    def issue(
        self,
        subject: str,
        scopes: Iterable[str],
        ttl: timedelta,
        partners: Iterable[str] | None = None,
        now: datetime | None = None,
    ) -> str:
        """A signed token; ValueError if the request is one the hub must not grant."""
        if not isinstance(subject, str) or not subject or not subject.isprintable():
            raise ValueError("a token names its subject: one printable line")
        if isinstance(scopes, str):
            raise ValueError("scopes is a list of scopes, not one string")
        granted = frozenset(scopes)
        if not granted or not granted <= SCOPES:
            raise ValueError(
                f"scopes must be some of {', '.join(sorted(SCOPES))}; found "
                f"{', '.join(sorted(map(str, granted))) or 'none'}"
            )
        seconds = int(ttl.total_seconds())  # NumericDate has whole seconds
        if seconds < 1 or ttl > MAX_TOKEN_TTL:
            raise ValueError(
                f"a token lives at least 1 s and at most {MAX_TOKEN_TTL.days} days; "
                f"found {ttl.total_seconds():g} s"
            )
        if now is not None and now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        issued = int((now or datetime.now(UTC)).timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + seconds,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(sorted(granted)),
        }
        if partners is not None:
            claims["partners"] = sorted(_party_ids(partners))
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"typ": "at+jwt"})


class TokenVerifier:
    """Checks auditors' tokens against the hub's audit public key.

    There is no ``now`` parameter: pyjwt reads the clock itself, and re-implementing its
    exp/nbf/iat checks to inject one would duplicate security logic. Tests mint tokens with a
    past or future ``now`` instead.
    """

    def __init__(
        self,
        public_key: ed25519.Ed25519PublicKey | Callable[[], Sequence[ed25519.Ed25519PublicKey]],
        issuer: str,
        audience: str,
        leeway: timedelta = LEEWAY,
        revoked: Callable[[], Collection[str]] | None = None,
    ) -> None:
        """``public_key`` is the audit key, or what gives the keys accepted now: while the
        audit key rotates, the new one and those it replaced (a token is signed by one of
        them; asked afresh for each token, so a reload takes effect at once)."""
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            fixed = (public_key,)
            self._keys: Callable[[], Sequence[ed25519.Ed25519PublicKey]] = lambda: fixed
        elif callable(public_key):
            self._keys = public_key
        else:  # the key pins the algorithm
            raise TypeError(f"the audit key must be Ed25519; found {type(public_key).__name__}")
        if not issuer or not audience:
            raise ValueError("a token verifier names its issuer and audience")
        if leeway < timedelta(0):
            raise ValueError("the leeway is not negative")
        self.issuer, self.audience, self.leeway = issuer, audience, leeway
        # the ids (jti) of tokens revoked before they expire, asked afresh for each token, so
        # a deny-list re-read while the hub runs takes effect at once
        self._revoked = revoked

    def verify(self, token: str) -> Grant:
        """The grant of a valid token; TokenInvalidError (UNAUTHENTICATED) otherwise."""
        # 1. Bounded before anything is parsed (in bytes: a str of N chars may be 4N bytes).
        if not isinstance(token, str):
            raise TokenInvalidError(
                f"the token is a {type(token).__name__}, not text", reason="token-malformed"
            )
        if len(token) > MAX_TOKEN_BYTES or len(token.encode("utf-8", "replace")) > MAX_TOKEN_BYTES:
            raise TokenInvalidError(
                f"the token is more than {MAX_TOKEN_BYTES} bytes", reason="token-too-large"
            )
        # 2. The header's algorithm is the pinned one (the key decides, never the token). Its
        #    typ is not checked: the audit key signs nothing but these tokens (load_audit_key in
        #    hub/app/keys.py refuses a key shared with the trail or envelopes), so no other JWT
        #    type can be confused with them, and pyjwt writes typ JWT by default.
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, RecursionError):  # not every pyjwt>=2.10 wraps them
            raise TokenInvalidError("the token is not a JWT", reason="token-malformed") from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise TokenInvalidError(
                f"tokens are signed with {ALGORITHM}; this one says {str(alg)[:16]!r}",
                reason="token-algorithm",
            )
        # 3. Signature, then audience, issuer, validity period and the required claims.
        claims = self._decode(token)
        # 4. The claims this hub reads are well-formed.
        grant = _grant(claims)
        # 5. The token was not revoked (its jti is not on the deny-list).
        if self._revoked is not None and grant.token_id in self._revoked():
            raise TokenInvalidError("the token has been revoked", reason="token-revoked")
        return grant

    def _decode(self, token: str) -> dict[str, Any]:
        """The claims of a token signed by one of the keys accepted now (the current one is
        tried first; pyjwt checks the signature before any claim, so a wrong key fails as
        such and the next is tried)."""
        found: TokenInvalidError | None = None
        for key in self._keys():
            try:
                return self._decode_with(token, key)
            except TokenInvalidError as exc:
                if exc.reason != "token-signature":
                    raise
                found = exc
        raise found or TokenInvalidError("this hub has no audit key", reason="token-signature")

    def _decode_with(self, token: str, key: ed25519.Ed25519PublicKey) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_iat": True,
                    "require": list(REQUIRED_CLAIMS),
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenInvalidError(
                "the token's signature does not verify with this hub's audit key",
                reason="token-signature",
            ) from None
        except jwt.InvalidAlgorithmError:
            raise TokenInvalidError(
                f"tokens are signed with {ALGORITHM}", reason="token-algorithm"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenInvalidError(
                f"the token has no {exc.claim} claim", reason="token-malformed"
            ) from None
        except jwt.ExpiredSignatureError:
            raise TokenInvalidError("the token has expired", reason="token-expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenInvalidError(
                "the token is not valid yet (nbf or iat is in the future)",
                reason="token-not-yet-valid",
            ) from None
        except jwt.InvalidAudienceError:
            raise TokenInvalidError(
                f"the token must be for {self.audience}", reason="token-wrong-audience"
            ) from None
        except jwt.InvalidIssuerError:
            raise TokenInvalidError(
                f"the token must be issued by {self.issuer}", reason="token-wrong-issuer"
            ) from None
        except (jwt.PyJWTError, ValueError, RecursionError) as exc:
            raise TokenInvalidError(
                f"the token is not valid: {type(exc).__name__}", reason="token-malformed"
            ) from None


def _grant(claims: dict[str, Any]) -> Grant:
    """The grant of claims whose signature and standard checks passed."""

    def malformed(what: str) -> TokenInvalidError:
        return TokenInvalidError(f"the token's {what}", reason="token-malformed")

    subject, scope, token_id = claims["sub"], claims["scope"], claims["jti"]
    if not isinstance(subject, str) or not subject or not subject.isprintable():
        raise malformed("sub is not one printable line")
    if not isinstance(scope, str):
        raise malformed("scope is not a space-separated string")
    if not isinstance(token_id, str) or not token_id:
        raise malformed("jti is not a string")
    # pyjwt accepts any int()-able value; NumericDate here is a JSON integer (not a bool).
    for name in ("exp", "iat", "nbf"):
        if type(claims[name]) is not int:
            raise malformed(f"{name} is not an integer")
    try:
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    except (OverflowError, OSError, ValueError):
        raise malformed("exp is out of range") from None
    restriction: frozenset[str] | None = None
    partners = claims.get("partners")
    if partners is not None:
        if not isinstance(partners, list):
            raise malformed("partners is not a list")
        try:
            restriction = _party_ids(partners)
        except ValueError as exc:
            raise malformed(f"partners: {exc}") from None
    return Grant(
        subject=subject,
        scopes=frozenset(scope.split()) & SCOPES,  # scopes this hub does not know grant nothing
        partners=restriction,
        token_id=token_id,
        expires_at=expires_at,
    )


def bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The token of the one ``authorization: Bearer <token>`` entry in gRPC metadata.

    TokenInvalidError ``token-missing`` if no Bearer credentials are presented (no header, or
    another scheme), ``token-malformed`` if there are several headers or the credentials are
    not a b64token (RFC 6750 2.1).
    """
    values = [v for k, v in metadata or () if k.lower() == "authorization"]
    if not values:
        raise TokenInvalidError(
            "this service needs an 'authorization: Bearer <token>' header "
            "(customs-hub token issue)",
            reason="token-missing",
        )
    if len(values) > 1:
        raise TokenInvalidError(
            f"expected one authorization header; found {len(values)}", reason="token-malformed"
        )
    value = values[0]
    try:
        text = value.decode("ascii") if isinstance(value, bytes) else value
    except UnicodeDecodeError:
        raise TokenInvalidError(
            "the authorization header is not ASCII", reason="token-malformed"
        ) from None
    text = text.strip(" ")
    scheme = _BEARER_SCHEME.match(text)
    if scheme is None:
        raise TokenInvalidError(
            "the authorization header must use the Bearer scheme", reason="token-missing"
        )
    credentials = text[scheme.end() :]
    if not _B64TOKEN.fullmatch(credentials):
        raise TokenInvalidError(
            "the authorization header must be 'Bearer <token>'", reason="token-malformed"
        )
    return credentials
