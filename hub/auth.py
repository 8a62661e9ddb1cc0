"""Auditors' bearer tokens: JWTs the hub issues and verifies (pure core).

A token is a JWT (RFC 7519) signed with EdDSA (Ed25519) by the hub's audit key. It names the
auditor (``sub``), the hub that issued it (``iss``) and the hub it is for (``aud``), when it
stops being valid (``exp``), what it may read (``scope``: space-separated, RFC 8693 4.2) and,
optionally, the partners whose messages it may see (``partners``). The algorithm is pinned to
the key: a token's header never chooses it, so ``alg: none`` and HMAC tokens keyed with the
public key are refused before their claims are looked at.

What it must never do: accept a token without checking signature, audience, issuer and expiry;
echo a token or a key in an error; read a file or a socket.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519

from hub.errors import HubError

ALGORITHM = "EdDSA"
TRAIL_READ = "trail:read"
MESSAGES_READ = "messages:read"
SCOPES = frozenset({TRAIL_READ, MESSAGES_READ})
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti", "scope")
# A token of this hub is a few hundred bytes; 8 KiB also fits long partner lists and is far
# below gRPC's 16 KiB default metadata limit, and bounds what is parsed before the signature.
MAX_TOKEN_BYTES = 8 * 1024
# An audit engagement is reviewed monthly: no token outlives 31 days, so a lost one expires.
MAX_TOKEN_TTL = timedelta(days=31)
# Clock skew tolerated on exp and nbf between the issuing and the verifying host.
LEEWAY = timedelta(seconds=30)
_PARTY = re.compile(r"[A-Z]{2}[A-Z0-9-]{0,14}")
_BEARER = re.compile(r"(?i:bearer) +([A-Za-z0-9_.~+/=-]+)")


class AuthError(HubError):
    """The caller is not who it must be (UNAUTHENTICATED)."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "token-invalid"


class ForbiddenError(AuthError):
    """The token is valid but does not allow this (PERMISSION_DENIED)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "scope-missing"


@dataclass(frozen=True)
class Grant:
    """What a verified token allows."""

    subject: str
    scopes: frozenset[str]
    partners: frozenset[str] | None  # None: every partner
    token_id: str
    expires_at: datetime

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise ForbiddenError(
                f"this call needs scope {scope}; the token grants "
                f"{' '.join(sorted(self.scopes)) or 'none'}",
                reason="scope-missing",
            )

    def may_see(self, *parties: str) -> bool:
        """Whether an entry or message between these parties is visible to this token."""
        return self.partners is None or any(p in self.partners for p in parties if p)


def _check_partners(partners: Iterable[str]) -> frozenset[str]:
    found = frozenset(partners)
    for party in found:
        if not isinstance(party, str) or not _PARTY.fullmatch(party):
            raise ValueError(f"partner {party!r} is not a party id such as 'NZ'")
    if not found:
        raise ValueError("a partner restriction names at least one partner")
    return found


class TokenIssuer:
    def __init__(self, key: ed25519.Ed25519PrivateKey, issuer: str, audience: str) -> None:
        self._key, self.issuer, self.audience = key, issuer, audience

    def issue(
        self,
        subject: str,
        scopes: Iterable[str],
        ttl: timedelta,
        partners: Iterable[str] | None = None,
        now: datetime | None = None,
    ) -> str:
        granted = frozenset(scopes)
        if not subject or not subject.isprintable():
            raise ValueError("a token names its subject: one printable line")
        if not granted or not granted <= SCOPES:
            raise ValueError(
                f"scopes must be some of {', '.join(sorted(SCOPES))}; found "
                f"{', '.join(sorted(granted)) or 'none'}"
            )
        if not timedelta(0) < ttl <= MAX_TOKEN_TTL:
            raise ValueError(f"a token lives more than 0 s and at most {MAX_TOKEN_TTL.days} days")
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(sorted(granted)),
        }
        if partners is not None:
            claims["partners"] = sorted(_check_partners(partners))
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"typ": "at+jwt"})


class TokenVerifier:
    def __init__(
        self,
        public_key: ed25519.Ed25519PublicKey,
        issuer: str,
        audience: str,
        leeway: timedelta = LEEWAY,
    ) -> None:
        self._key, self.issuer, self.audience, self.leeway = public_key, issuer, audience, leeway

    def verify(self, token: str) -> Grant:
        """The grant of a valid token; AuthError (UNAUTHENTICATED) with a reason otherwise."""
        # 1. Bounded before anything is parsed.
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError(
                f"the token is {len(token)} bytes; at most {MAX_TOKEN_BYTES}",
                reason="token-too-large",
            )
        # 2. The header's algorithm is the pinned one (the key decides, never the token).
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("the token is not a JWT", reason="token-malformed") from None
        if header.get("alg") != ALGORITHM:
            raise AuthError(
                f"tokens are signed with {ALGORITHM}; this one says "
                f"{str(header.get('alg'))[:16]!r}",
                reason="token-algorithm",
            )
        # 3. Signature, audience, issuer, expiry and the required claims.
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired", reason="token-expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("the token is not valid yet", reason="token-not-yet-valid") from None
        except jwt.InvalidAudienceError:
            raise AuthError(
                f"the token is not for {self.audience}", reason="token-wrong-audience"
            ) from None
        except jwt.InvalidIssuerError:
            raise AuthError(
                f"the token was not issued by {self.issuer}", reason="token-wrong-issuer"
            ) from None
        except jwt.InvalidSignatureError:
            raise AuthError(
                "the token's signature does not verify with this hub's audit key",
                reason="token-signature",
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(
                f"the token has no {exc.claim} claim", reason="token-malformed"
            ) from None
        except jwt.PyJWTError as exc:
            raise AuthError(
                f"the token is not valid: {type(exc).__name__}", reason="token-malformed"
            ) from None
        # 4. The claims this hub adds are well-formed.
        scope, subject = claims["scope"], claims["sub"]
        if not isinstance(scope, str) or not isinstance(subject, str) or not subject:
            raise AuthError(
                "the token's scope or subject is not a string", reason="token-malformed"
            )
        partners = claims.get("partners")
        restriction: frozenset[str] | None = None
        if partners is not None:
            if not isinstance(partners, list):
                raise AuthError("the token's partners is not a list", reason="token-malformed")
            try:
                restriction = _check_partners(partners)
            except ValueError as exc:
                raise AuthError(f"the token's partners: {exc}", reason="token-malformed") from None
        return Grant(
            subject=subject,
            scopes=frozenset(scope.split()) & SCOPES,  # scopes this hub does not know grant nothing
            partners=restriction,
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )


def bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The token of an ``authorization: Bearer <token>`` header in gRPC metadata."""
    values = [v for k, v in metadata or () if k.lower() == "authorization"]
    if not values:
        raise AuthError(
            "this service needs an 'authorization: Bearer <token>' header "
            "(customs-hub token issue)",
            reason="token-missing",
        )
    if len(values) > 1:
        raise AuthError("more than one authorization header", reason="token-malformed")
    value = values[0]
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    match = _BEARER.fullmatch(text.strip())
    if match is None:
        raise AuthError(
            "the authorization header must be 'Bearer <token>'", reason="token-malformed"
        )
    return match.group(1)
