"""Authentication of websocket clients, checked on the HTTP upgrade request before any JSON-RPC.

Two modes, both reading ``Authorization: Bearer <token>``:
- capability-token: the token must equal the content of a file read at start-up. Only its sha256 digest
  is kept, and digests are compared in constant time, so neither the length nor a prefix of the secret
  leaks through timing.
- signed-bearer-token: an HS256 JWT signed with a shared secret; ``exp`` is required, ``iss``/``aud``
  are checked when configured, with a clock-skew allowance.

A failure is an ``AuthFailure`` whose reason is one of a few fixed phrases: it becomes the body of the
401 and the log line, and never contains any part of the token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .ws_args import DEFAULT_MAX_CLOCK_SKEW_SECONDS, AuthMode

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_SHARED_SECRET_BYTES = 32


class AuthConfigError(ValueError):
    """The auth configuration cannot work; reported at start-up, never per connection."""


class AuthFailure(Exception):
    """A client failed authentication; ``reason`` is short and safe to show and log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


MISSING_TOKEN = "missing bearer token"
BAD_HEADER = "invalid authorization header"
INVALID_TOKEN = "invalid token"
EXPIRED_TOKEN = "expired token"
NOT_YET_VALID = "token not valid yet"
NO_EXPIRY = "token has no exp claim"
ISSUER_MISMATCH = "issuer mismatch"
AUDIENCE_MISMATCH = "audience mismatch"


class Authenticator(Protocol):
    @property
    def mode(self) -> AuthMode: ...

    def verify(self, token: str) -> None:
        """Return if ``token`` is acceptable, else raise ``AuthFailure``."""
        ...


def _read_secret(path: Path, what: str) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AuthConfigError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None
    secret = raw.strip()
    if not secret:
        raise AuthConfigError(f"the {what} file {path} is empty")
    return secret


@dataclass(frozen=True)
class CapabilityTokenAuth:
    token_sha256: bytes = field(repr=False)
    mode: AuthMode = "capability-token"

    @classmethod
    def from_file(cls, path: Path) -> CapabilityTokenAuth:
        return cls(hashlib.sha256(_read_secret(path, "websocket token")).digest())

    def verify(self, token: str) -> None:
        offered = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        if not hmac.compare_digest(offered, self.token_sha256):
            raise AuthFailure(INVALID_TOKEN)


@dataclass(frozen=True)
class SignedBearerTokenAuth:
    shared_secret: bytes = field(repr=False)
    issuer: str | None = None
    audience: str | None = None
    max_clock_skew_seconds: float = DEFAULT_MAX_CLOCK_SKEW_SECONDS
    mode: AuthMode = "signed-bearer-token"

    def __post_init__(self) -> None:
        if len(self.shared_secret) < MIN_SHARED_SECRET_BYTES:
            raise AuthConfigError(
                f"the websocket shared secret must be at least {MIN_SHARED_SECRET_BYTES} bytes "
                f"(got {len(self.shared_secret)}); generate one with e.g. `openssl rand -hex 32`"
            )
        if self.max_clock_skew_seconds < 0:
            raise AuthConfigError("--ws-max-clock-skew-seconds must not be negative")

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        max_clock_skew_seconds: float = DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    ) -> SignedBearerTokenAuth:
        return cls(
            _read_secret(path, "websocket shared secret"),
            issuer=issuer,
            audience=audience,
            max_clock_skew_seconds=max_clock_skew_seconds,
        )

    def verify(self, token: str) -> None:
        # Imported here: pyjwt pulls in cryptography, which a stdio server never needs.
        import jwt

        try:
            jwt.decode(
                token,
                self.shared_secret,
                algorithms=["HS256"],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.max_clock_skew_seconds,
                options={
                    "require": ["exp"],
                    # A token may name audiences we were not told to check; that is not a reason to
                    # refuse it.
                    "verify_aud": self.audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure(EXPIRED_TOKEN) from None
        except jwt.ImmatureSignatureError:
            raise AuthFailure(NOT_YET_VALID) from None
        except jwt.MissingRequiredClaimError as exc:
            reason = {"iss": ISSUER_MISMATCH, "aud": AUDIENCE_MISMATCH}.get(exc.claim, NO_EXPIRY)
            raise AuthFailure(reason) from None
        except jwt.InvalidIssuerError:
            raise AuthFailure(ISSUER_MISMATCH) from None
        except jwt.InvalidAudienceError:
            raise AuthFailure(AUDIENCE_MISMATCH) from None
        except jwt.PyJWTError:
            # Bad signature, wrong algorithm, malformed: pyjwt's message may quote the token's parts.
            raise AuthFailure(INVALID_TOKEN) from None


def bearer_token(headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The token of the (single) ``Authorization: Bearer`` header; header names must be lowercase."""
    values = [value for name, value in headers if name == b"authorization"]
    if not values:
        raise AuthFailure(MISSING_TOKEN)
    if len(values) > 1:
        raise AuthFailure(BAD_HEADER)
    try:
        text = values[0].decode("ascii")
    except UnicodeDecodeError:
        raise AuthFailure(BAD_HEADER) from None
    scheme, _, token = text.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthFailure(BAD_HEADER)
    return token


def authorize(headers: Sequence[tuple[bytes, bytes]], auth: Authenticator | None) -> None:
    """Raise ``AuthFailure`` unless the request may open a websocket under ``auth`` (None: no auth)."""
    if auth is not None:
        auth.verify(bearer_token(headers))
