"""Who the server is logged in as, and how it recovers when the backend answers 401.

Three modes, as in the reference (Codex CLI 0.94.0):

- ``apikey``: an API key stored in ``$CODEX_HOME/auth.json``. A 401 cannot be fixed, so it fails the turn.
- ``chatgpt``: tokens from the browser login (see ``login.py``), stored in ``auth.json``. On a 401 the
  file is re-read (another process may have refreshed it) and otherwise the refresh token is exchanged at
  the token endpoint; the new tokens are written back.
- ``chatgptAuthTokens``: an id token and an access token handed in by the client application, kept in
  memory only. On a 401 the server asks the client that owns the turn for fresh ones with the request
  ``account/chatgptAuthTokens/refresh`` and waits ``chatgpt_auth_refresh_timeout_ms`` (10 s) for the reply.

The model client sees none of this: it gets an ``AuthProvider`` per thread from
:meth:`AuthManager.provider_for` that reads the current credentials for every request. Concurrent requests
that hit 401 share one refresh.

``auth.json`` has the reference's format and is always replaced atomically (a temporary file in the same
directory, then a rename) with mode 0600. Like the reference, the server does not refuse to start when it is
corrupt: the problem is logged (never its content) and the server behaves as logged out.

Secrets never reach a log line or an error message: the dataclasses here keep tokens out of their repr.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypedDict

import httpx
import trio

from ..protocol.accounts import ChatgptAuthTokensRefreshResponse, used_percent_to_v2
from ..rpc.decode import I32, DecodeError, decode, unexpected
from ..rpc.errors import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    ClientReturnedError,
    ConnectionClosed,
    RequestTimeout,
)
from .model_client import ApiKeyAuth, AuthProvider, ModelError, status_text
from .provider import ModelProviderInfo

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

AUTH_FILE = "auth.json"
AUTH_CLAIM = "https://api.openai.com/auth"
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
DEFAULT_ISSUER = "https://auth.openai.com"
REFRESH_TOKEN_URL = f"{DEFAULT_ISSUER}/oauth/token"
# The reference's variable for pointing the managed refresh at another token endpoint (tests use a mock).
REFRESH_TOKEN_URL_ENV = "CODEX_REFRESH_TOKEN_URL_OVERRIDE"
REFRESH_METHOD = "account/chatgptAuthTokens/refresh"
DEFAULT_REFRESH_TIMEOUT_MS = 10_000
# Bounds for our own HTTP calls (token endpoint, usage endpoint); the reference sets none.
HTTP_TIMEOUT_SECONDS = 30.0

AuthMode = Literal["apikey", "chatgpt", "chatgptAuthTokens"]

MSG_EXTERNAL_ACTIVE = (
    "External auth is active. Use account/login/start (chatgptAuthTokens) to update it or "
    "account/logout to clear it."
)
MSG_API_KEY_DISABLED = "API key login is disabled. Use ChatGPT login instead."
MSG_CHATGPT_DISABLED = "ChatGPT login is disabled. Use API key login instead."
MSG_EXTERNAL_DISABLED = "External ChatGPT auth is disabled. Use API key login instead."
MSG_REFRESH_CANCELED = "auth refresh request canceled: channel closed"
MSG_NO_AUTH_RATE_LIMITS = "codex account authentication required to read rate limits"
MSG_NOT_CHATGPT_RATE_LIMITS = "chatgpt authentication required to read rate limits"

REFRESH_TOKEN_EXPIRED = (
    "Your access token could not be refreshed because your refresh token has expired. "
    "Please log out and sign in again."
)
REFRESH_TOKEN_REUSED = (
    "Your access token could not be refreshed because your refresh token was already used. "
    "Please log out and sign in again."
)
REFRESH_TOKEN_INVALIDATED = (
    "Your access token could not be refreshed because your refresh token was revoked. "
    "Please log out and sign in again."
)
REFRESH_TOKEN_UNKNOWN = "Your access token could not be refreshed. Please log out and sign in again."
_PERMANENT_REFRESH_FAILURES = {
    "refresh_token_expired": REFRESH_TOKEN_EXPIRED,
    "refresh_token_reused": REFRESH_TOKEN_REUSED,
    "refresh_token_invalidated": REFRESH_TOKEN_INVALIDATED,
}

# Plan types of the id token that clients see as such; any other value is "unknown".
_KNOWN_PLANS = frozenset({"free", "go", "plus", "pro", "team", "business", "enterprise", "edu"})
# What the usage endpoint may answer for plan_type, and how clients see it.
_USAGE_PLANS = {
    "guest": "unknown",
    "free": "free",
    "go": "go",
    "plus": "plus",
    "pro": "pro",
    "free_workspace": "unknown",
    "team": "team",
    "business": "business",
    "education": "edu",
    "quorum": "unknown",
    "k12": "unknown",
    "enterprise": "enterprise",
    "edu": "edu",
}


class AuthError(Exception):
    """A failure a client sees as the error of its request (``code`` and ``message``)."""

    def __init__(self, message: str, *, code: int = INVALID_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class AuthFileError(AuthError):
    """auth.json cannot be read or does not hold credentials."""


class InvalidIdToken(AuthError):
    """An id token that cannot be decoded; ``detail`` is the reason without any prefix."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid id token: {detail}")
        self.detail = detail


# --------------------------------------------------------------------------------------------------
# Id token claims
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdTokenInfo:
    """The claims of a ChatGPT id token that matter here. The signature is not checked (the reference
    does not check it either: the token comes from the issuer over TLS, or from the client itself)."""

    raw: str = field(repr=False)
    email: str | None
    # As the token says; see ``plan`` for what clients see.
    plan_type: str | None
    account_id: str | None

    @property
    def plan(self) -> str | None:
        if self.plan_type is None:
            return None
        return self.plan_type if self.plan_type in _KNOWN_PLANS else "unknown"


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64url_error(text: str) -> str | None:
    """Why ``text`` is not unpadded base64url, in the words of the reference's decoder (None if it is)."""
    body = text.rstrip("=")
    if body != text:
        return "Invalid padding"
    for offset, ch in enumerate(text):
        if not _B64URL.fullmatch(ch):
            return f"Invalid symbol {ord(ch)}, offset {offset}."
    if len(text) % 4 == 1:
        return f"Invalid input length: {len(text)}"
    # Leftover bits of the last symbol must be zero.
    spare_bits = {2: 4, 3: 2}.get(len(text) % 4, 0)
    if spare_bits:
        value = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(text[-1])
        if value & ((1 << spare_bits) - 1):
            return f"Invalid last symbol {ord(text[-1])}, offset {len(text) - 1}."
    return None


def _json_error(exc: json.JSONDecodeError) -> str:
    return f"expected value at line {exc.lineno} column {exc.colno}"


def parse_id_token(token: str) -> IdTokenInfo:
    """Decode an id token's claims (email, plan type, workspace) without checking its signature.

    A token that is not three non-empty dot-separated parts, whose payload is not base64url JSON, or
    whose claims have the wrong types raises ``InvalidIdToken`` with the reference's reason.
    """
    parts = token.split(".")
    if len(parts) < 3 or not all(parts[:3]):
        raise InvalidIdToken("invalid ID token format")
    b64_error = _b64url_error(parts[1])
    if b64_error is not None:
        raise InvalidIdToken(b64_error)
    payload_bytes = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    try:
        payload = json.loads(payload_bytes)
    except json.JSONDecodeError as exc:
        raise InvalidIdToken(_json_error(exc)) from None
    except UnicodeDecodeError:
        raise InvalidIdToken("invalid unicode code point") from None
    if not isinstance(payload, dict):
        raise InvalidIdToken(f"invalid type: {unexpected(payload)}, expected struct IdClaims")
    # Imported here: pyjwt pulls in cryptography (~24 ms, ~9 MiB), which start-up does not need.
    import jwt

    try:
        # Only the first three parts form the JWT, as the reference reads it.
        claims: dict[str, Any] = jwt.decode(".".join(parts[:3]), options={"verify_signature": False})
    except jwt.DecodeError:
        # The payload is fine, so pyjwt objects to the header, which the reference never reads either.
        claims = payload
    email = claims.get("email")
    if email is not None and not isinstance(email, str):
        raise InvalidIdToken(f"invalid type: {unexpected(email)}, expected a string")
    auth = claims.get(AUTH_CLAIM)
    plan: str | None = None
    account: str | None = None
    if auth is not None:
        if not isinstance(auth, dict):
            raise InvalidIdToken(f"invalid type: {unexpected(auth)}, expected struct AuthClaims")
        plan = auth.get("chatgpt_plan_type")
        if plan is not None and not isinstance(plan, str):
            raise InvalidIdToken("data did not match any variant of untagged enum PlanType")
        account = auth.get("chatgpt_account_id")
        if account is not None and not isinstance(account, str):
            raise InvalidIdToken(f"invalid type: {unexpected(account)}, expected a string")
    return IdTokenInfo(raw=token, email=email, plan_type=plan, account_id=account)


def rust_debug_option(value: str | None) -> str:
    """``Some("x")`` / ``None``: how the reference prints an optional workspace id in its messages."""
    if value is None:
        return "None"
    return f"Some({rust_debug_str(value)})"


def rust_debug_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


# --------------------------------------------------------------------------------------------------
# Credentials and auth.json
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatgptTokens:
    id_token: IdTokenInfo
    access_token: str = field(repr=False)
    # Empty for tokens handed in by the client (they refresh them, not us).
    refresh_token: str = field(repr=False, default="")
    account_id: str | None = None


@dataclass(frozen=True)
class Auth:
    """One set of credentials. ``repr`` never shows a secret."""

    mode: AuthMode
    api_key: str | None = field(default=None, repr=False)
    tokens: ChatgptTokens | None = None

    @property
    def token(self) -> str:
        """What goes after ``Bearer``: the API key, or the access token."""
        if self.mode == "apikey":
            return self.api_key or ""
        return self.tokens.access_token if self.tokens is not None else ""

    @property
    def account_id(self) -> str | None:
        if self.tokens is None:
            return None
        return self.tokens.account_id or self.tokens.id_token.account_id

    @property
    def email(self) -> str | None:
        return self.tokens.id_token.email if self.tokens is not None else None

    @property
    def plan(self) -> str | None:
        return self.tokens.id_token.plan if self.tokens is not None else None

    def headers(self) -> dict[str, str]:
        headers = {"authorization": f"Bearer {self.token}"}
        if self.mode != "apikey" and self.account_id:
            headers["chatgpt-account-id"] = self.account_id
        return headers


def auth_from_json(data: Mapping[str, Any]) -> Auth:
    """The credentials an auth.json object holds, read as the reference reads them."""
    mode = data.get("auth_mode")
    api_key = data.get("OPENAI_API_KEY")
    if mode is None:
        mode = "apikey" if api_key is not None else "chatgpt"
    if mode == "apikey":
        if not isinstance(api_key, str):
            raise AuthFileError("API key auth is missing a key.")
        return Auth("apikey", api_key=api_key)
    if mode != "chatgpt":
        raise AuthFileError(f"unknown auth_mode in {AUTH_FILE}")
    tokens = data.get("tokens")
    if not isinstance(tokens, dict):
        raise AuthFileError("Token data is not available.")
    id_token, access, refresh = (tokens.get(k) for k in ("id_token", "access_token", "refresh_token"))
    if not all(isinstance(v, str) for v in (id_token, access, refresh)):
        raise AuthFileError(f"{AUTH_FILE} holds incomplete ChatGPT tokens")
    account = tokens.get("account_id")
    assert isinstance(id_token, str) and isinstance(access, str) and isinstance(refresh, str)
    try:
        info = parse_id_token(id_token)
    except InvalidIdToken as exc:
        raise AuthFileError(f"the id token in {AUTH_FILE} cannot be read ({exc.detail})") from None
    return Auth(
        "chatgpt",
        api_key=api_key if isinstance(api_key, str) else None,
        tokens=ChatgptTokens(info, access, refresh, account if isinstance(account, str) else info.account_id),
    )


def utc_timestamp(now: datetime | None = None) -> str:
    """``last_refresh`` as the reference writes it (RFC 3339, UTC, ``Z``)."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chatgpt_auth_json(
    tokens: ChatgptTokens, *, api_key: str | None, now: datetime | None = None
) -> dict[str, Any]:
    return {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": api_key,
        "tokens": {
            "id_token": tokens.id_token.raw,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "account_id": tokens.account_id,
        },
        "last_refresh": utc_timestamp(now),
    }


def api_key_auth_json(api_key: str) -> dict[str, Any]:
    return {"auth_mode": "apikey", "OPENAI_API_KEY": api_key}


def read_auth_file(codex_home: Path) -> dict[str, Any] | None:
    """The parsed auth.json, None when there is none; ``AuthFileError`` (without content) otherwise."""
    path = codex_home / AUTH_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise AuthFileError(f"cannot read {path}: {reason}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position only: the content holds secrets.
        raise AuthFileError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise AuthFileError(f"{path} does not hold a JSON object")
    return data


def load_auth(codex_home: Path) -> Auth | None:
    """The stored credentials; None when there are none or they cannot be used (logged, never raised)."""
    try:
        data = read_auth_file(codex_home)
        return auth_from_json(data) if data is not None else None
    except AuthFileError as exc:
        log.error("ignoring stored credentials: %s", exc.message)
        return None


def write_auth_file(codex_home: Path, data: Mapping[str, Any]) -> None:
    """Replace auth.json atomically: readers see the old file or the new one, never a torn one, and the
    file is never readable by others, not even for a moment."""
    from .files import write_atomically

    write_atomically(codex_home / AUTH_FILE, json.dumps(data, indent=2, ensure_ascii=False))


def delete_auth_file(codex_home: Path) -> bool:
    try:
        (codex_home / AUTH_FILE).unlink()
    except FileNotFoundError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# The manager
# --------------------------------------------------------------------------------------------------


class RefreshChannel(Protocol):
    """Where a ``chatgptAuthTokens`` refresh request goes: the connection that owns the turn."""

    @property
    def is_open(self) -> bool: ...

    async def send_request(self, method: str, params: Any, *, timeout: float) -> Any: ...


@dataclass(frozen=True)
class AuthSettings:
    """What the manager needs from the configuration."""

    forced_login_method: str | None = None
    forced_chatgpt_workspace_id: str | None = None
    chatgpt_base_url: str = "https://chatgpt.com/backend-api/"
    refresh_timeout_ms: int = DEFAULT_REFRESH_TIMEOUT_MS
    requires_openai_auth: bool = True

    @classmethod
    def from_config(cls, config: Config | None) -> AuthSettings:
        """From the server's configuration (None, when it could not be loaded: the defaults)."""
        if config is None:
            return cls()
        return cls(
            forced_login_method=config.forced_login_method,
            forced_chatgpt_workspace_id=config.forced_chatgpt_workspace_id,
            chatgpt_base_url=config.chatgpt_base_url,
            refresh_timeout_ms=config.chatgpt_auth_refresh_timeout_ms,
            requires_openai_auth=config.model_provider.requires_openai_auth,
        )


class _Flight:
    """One refresh in progress, which every request that hit 401 meanwhile waits for."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.refreshed: bool | None = None
        self.error: ModelError | None = None


def _refresh_error(message: str) -> ModelError:
    # Retryable like the reference's transient refresh errors: with stream retries the turn loop tries
    # again (and a new 401 asks again), reporting responseStreamDisconnected without a status.
    return ModelError(message, "other", retryable=True)


class AuthManager:
    """The single source of truth for credentials, shared by every connection and thread.

    ``http`` returns the HTTP client to use (the thread manager's, so nothing extra needs closing).
    """

    def __init__(
        self,
        *,
        codex_home: Path,
        env: Mapping[str, str],
        settings: AuthSettings,
        http: Callable[[], httpx.AsyncClient],
    ) -> None:
        self.codex_home = codex_home
        self.env = env
        self.settings = settings
        self._http = http
        self._stored: Auth | None = load_auth(codex_home)
        self._external: Auth | None = None
        # Bumped whenever the credentials change, so that a request that failed with old credentials is
        # retried at once instead of asking for yet another refresh.
        self.generation = 0
        self._flight: _Flight | None = None
        # The connection whose turn is running, per task (see ``turn_owner``); one variable per manager.
        self._owner: ContextVar[RefreshChannel | None] = ContextVar(f"auth-owner-{id(self)}", default=None)

    # ---- state -------------------------------------------------------------------------------

    def http(self) -> httpx.AsyncClient:
        return self._http()

    @property
    def auth(self) -> Auth | None:
        """The credentials in use: tokens handed in by the client win over auth.json."""
        return self._external if self._external is not None else self._stored

    @property
    def mode(self) -> AuthMode | None:
        auth = self.auth
        return auth.mode if auth is not None else None

    @property
    def external_active(self) -> bool:
        return self._external is not None

    def _changed(self) -> None:
        self.generation += 1

    async def reload(self) -> None:
        """Re-read auth.json (after a login wrote it)."""
        self._stored = await trio.to_thread.run_sync(load_auth, self.codex_home)
        self._changed()

    # ---- logins ------------------------------------------------------------------------------

    def check_api_key_login(self) -> None:
        if self.external_active:
            raise AuthError(MSG_EXTERNAL_ACTIVE)
        if self.settings.forced_login_method == "chatgpt":
            raise AuthError(MSG_API_KEY_DISABLED)

    def check_chatgpt_login(self) -> None:
        if self.external_active:
            raise AuthError(MSG_EXTERNAL_ACTIVE)
        if self.settings.forced_login_method == "api":
            raise AuthError(MSG_CHATGPT_DISABLED)

    async def login_api_key(self, api_key: str) -> None:
        self.check_api_key_login()
        try:
            await trio.to_thread.run_sync(write_auth_file, self.codex_home, api_key_auth_json(api_key))
        except OSError as exc:
            raise AuthError(f"failed to save api key: {exc.strerror or exc}", code=INTERNAL_ERROR) from None
        await self.reload()
        log.info("logged in with an API key (saved in %s)", AUTH_FILE)

    def check_external_login(self) -> None:
        if self.settings.forced_login_method == "api":
            raise AuthError(MSG_EXTERNAL_DISABLED)

    def validate_external_tokens(self, id_token: str, access_token: str) -> Auth:
        """The credentials for a chatgptAuthTokens login, or the reference's error for them."""
        info = parse_id_token(id_token)
        forced = self.settings.forced_chatgpt_workspace_id
        if forced is not None and info.account_id != forced:
            raise AuthError(
                f"External auth must use workspace {forced}, but received "
                f"{rust_debug_option(info.account_id)}."
            )
        return Auth("chatgptAuthTokens", tokens=ChatgptTokens(info, access_token, "", info.account_id))

    def set_external(self, auth: Auth) -> None:
        """Use tokens handed in by the client; they live in memory only."""
        self._external = auth
        self._changed()
        log.info("using ChatGPT tokens handed in by the client (kept in memory)")

    async def save_chatgpt_tokens(self, tokens: ChatgptTokens, *, api_key: str | None) -> None:
        """Persist a browser login's tokens (raises OSError) and use them."""
        data = chatgpt_auth_json(tokens, api_key=api_key)
        await trio.to_thread.run_sync(write_auth_file, self.codex_home, data)
        await self.reload()
        log.info("logged in with ChatGPT (tokens saved in %s)", AUTH_FILE)

    async def logout(self) -> None:
        """Forget every credential: the client's tokens in memory and auth.json on disk."""
        self._external = None
        try:
            await trio.to_thread.run_sync(delete_auth_file, self.codex_home)
        except OSError as exc:
            raise AuthError(f"logout failed: {exc.strerror or exc}", code=INTERNAL_ERROR) from None
        self._stored = None
        self._changed()
        log.info("logged out")

    # ---- the 401 path ------------------------------------------------------------------------

    @contextmanager
    def turn_owner(self, channel: RefreshChannel) -> Iterator[None]:
        """Within this block (a turn's task and its children), refresh requests go to ``channel``."""
        token = self._owner.set(channel)
        try:
            yield
        finally:
            self._owner.reset(token)

    def provider_for(self, provider: ModelProviderInfo) -> AuthProvider:
        """The credentials a thread's requests to ``provider`` carry, read afresh for every request."""
        if provider.env_key:
            key = self.env.get(provider.env_key, "").strip()
            if key:
                return _EnvKeyAuth(key, self)
        return _ManagedAuth(self)

    @property
    def is_chatgpt(self) -> bool:
        """Logged in with ChatGPT tokens (browser login or handed in by the client)."""
        return self.mode in ("chatgpt", "chatgptAuthTokens")

    async def refresh_after_unauthorized(self, seen_generation: int) -> bool:
        """Recover from a 401 of a request made with the credentials of ``seen_generation``.

        True: retry with the current credentials. False: nothing can be refreshed (API key, no auth).
        Raises ``ModelError`` with the reference's message when the refresh fails. Requests that fail
        while a refresh runs wait for it instead of starting another (single flight); a failed refresh is
        not remembered, so the next 401 asks again.
        """
        return await self._single_flight(seen_generation, self._refresh_now)

    async def _single_flight(self, seen_generation: int, work: Callable[[], Awaitable[bool]]) -> bool:
        while True:
            if self.generation != seen_generation:
                return True
            flight = self._flight
            if flight is None:
                break
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if flight.refreshed is not None:
                return flight.refreshed
            # The task that was refreshing was cancelled (its turn was interrupted): try again ourselves.
        flight = self._flight = _Flight()
        try:
            flight.refreshed = await work()
            return flight.refreshed
        except ModelError as exc:
            flight.error = exc
            raise
        finally:
            self._flight = None
            flight.done.set()

    async def _refresh_now(self) -> bool:
        auth = self.auth
        if auth is None or auth.mode == "apikey":
            return False
        if auth.mode == "chatgptAuthTokens":
            await self._refresh_external(auth)
            return True
        if await self._adopt_newer_stored(auth):
            return True
        await self.refresh_managed()
        return True

    async def _refresh_external(self, auth: Auth) -> None:
        channel = self._owner.get()
        if channel is None or not channel.is_open:
            raise _refresh_error(MSG_REFRESH_CANCELED)
        timeout_ms = self.settings.refresh_timeout_ms
        params = {"reason": "unauthorized", "previousAccountId": auth.account_id}
        started = self.generation
        try:
            result = await channel.send_request(REFRESH_METHOD, params, timeout=timeout_ms / 1000)
        except RequestTimeout:
            raise _refresh_error(f"auth refresh request timed out after {timeout_ms // 1000}s") from None
        except (ClientReturnedError, ConnectionClosed):
            # The reference drops the reply channel on an error answer, so both read the same.
            raise _refresh_error(MSG_REFRESH_CANCELED) from None
        try:
            reply = decode(ChatgptAuthTokensRefreshResponse, result)
        except DecodeError as exc:
            raise _refresh_error(str(exc)) from None
        try:
            info = parse_id_token(reply["idToken"])
        except InvalidIdToken as exc:
            raise _refresh_error(exc.detail) from None
        forced = self.settings.forced_chatgpt_workspace_id
        if forced is not None and info.account_id != forced:
            raise _refresh_error(
                f"external auth refresh returned workspace {rust_debug_option(info.account_id)}, "
                f"expected {rust_debug_str(forced)}"
            )
        if self._external is None:
            # Logged out while the client was answering: its tokens must not log us back in.
            raise _refresh_error(MSG_REFRESH_CANCELED)
        if self.generation != started:
            # A login replaced the tokens meanwhile; those are newer than this answer.
            return
        self._external = Auth(
            "chatgptAuthTokens", tokens=ChatgptTokens(info, reply["accessToken"], "", info.account_id)
        )
        self._changed()
        log.info("ChatGPT tokens refreshed by the client")

    async def _adopt_newer_stored(self, auth: Auth) -> bool:
        """Another process (the CLI, another server) may have refreshed auth.json: use its tokens."""
        stored = await trio.to_thread.run_sync(load_auth, self.codex_home)
        if stored is None or stored.tokens is None or auth.tokens is None:
            return False
        if stored.account_id != auth.account_id or stored.tokens.access_token == auth.tokens.access_token:
            return False
        self._stored = stored
        self._changed()
        log.info("using ChatGPT tokens refreshed by another process")
        return True

    def refresh_url(self) -> str:
        return self.env.get(REFRESH_TOKEN_URL_ENV) or REFRESH_TOKEN_URL

    async def refresh_managed(self) -> None:
        """Exchange the stored refresh token for new tokens and persist them (raises ``ModelError``)."""
        auth = self._stored
        if auth is None or auth.tokens is None:
            raise _refresh_error("Token data is not available.")
        started = self.generation
        url = self.refresh_url()
        body = {
            "client_id": CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": auth.tokens.refresh_token,
            "scope": "openid profile email",
        }
        response_body = b""
        status = 0
        with trio.move_on_after(HTTP_TIMEOUT_SECONDS) as scope:
            try:
                response = await self._http().post(url, json=body)
                status, response_body = response.status_code, response.content
            except httpx.HTTPError:
                raise _refresh_error(f"error sending request for url ({url})") from None
        if scope.cancelled_caught:
            raise _refresh_error(f"error sending request for url ({url})")
        text = response_body.decode("utf-8", errors="replace")
        if status == 401:
            code = _refresh_error_code(text)
            log.error("token refresh refused (401, code %s)", code or "none")
            raise ModelError(
                _PERMANENT_REFRESH_FAILURES.get((code or "").lower(), REFRESH_TOKEN_UNKNOWN), "unauthorized"
            )
        if not 200 <= status < 300:
            log.error("token refresh failed with status %s", status)
            raise _refresh_error(f"Failed to refresh token: {status_text(status)}: {_error_message(text)}")
        try:
            reply = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _refresh_error(f"error decoding response body: {_json_error(exc)}") from None
        if not isinstance(reply, dict):
            raise _refresh_error("error decoding response body")
        if self.generation != started:
            # Logged out or in again meanwhile: these tokens belong to credentials no longer in use.
            return
        tokens = auth.tokens
        new_id = reply.get("id_token")
        try:
            info = parse_id_token(new_id) if isinstance(new_id, str) else tokens.id_token
        except InvalidIdToken as exc:
            raise _refresh_error(exc.detail) from None
        access = reply.get("access_token")
        refresh = reply.get("refresh_token")
        tokens = ChatgptTokens(
            info,
            access if isinstance(access, str) else tokens.access_token,
            refresh if isinstance(refresh, str) else tokens.refresh_token,
            tokens.account_id,
        )
        try:
            await trio.to_thread.run_sync(self._persist_refreshed, tokens)
        except (OSError, AuthFileError) as exc:
            raise _refresh_error(f"failed to save refreshed tokens: {exc}") from None
        self._stored = replace(auth, tokens=tokens)
        self._changed()
        log.info("ChatGPT tokens refreshed")

    def _persist_refreshed(self, tokens: ChatgptTokens) -> None:
        # Keep whatever else the file holds (its auth_mode or the lack of one, the API key).
        data = read_auth_file(self.codex_home) or {}
        previous = data.get("tokens")
        data["tokens"] = {
            **(previous if isinstance(previous, dict) else {}),
            "id_token": tokens.id_token.raw,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "account_id": tokens.account_id,
        }
        data.setdefault("OPENAI_API_KEY", None)
        data["last_refresh"] = utc_timestamp()
        write_auth_file(self.codex_home, data)

    async def refresh_if_requested(self) -> None:
        """account/read and getAuthStatus with refreshToken: a managed refresh now; failures are only
        logged, and tokens handed in by the client are never refreshed this way."""
        if self.external_active or self.mode != "chatgpt":
            return

        async def refresh() -> bool:
            await self.refresh_managed()
            return True

        try:
            await self._single_flight(self.generation, refresh)
        except ModelError as exc:
            log.warning("failed to refresh token while getting account: %s", exc.message)

    # ---- rate limits -------------------------------------------------------------------------

    def usage_url(self) -> str:
        base = self.settings.chatgpt_base_url.rstrip("/")
        if base.startswith(("https://chatgpt.com", "https://chat.openai.com")) and "/backend-api" not in base:
            base += "/backend-api"
        return base + ("/wham/usage" if "/backend-api" in base else "/api/codex/usage")

    async def read_rate_limits(self, *, user_agent: str) -> dict[str, Any]:
        """The v2 RateLimitSnapshot of the ChatGPT account; ``AuthError`` as the reference words it."""
        auth = self.auth
        if auth is None:
            raise AuthError(MSG_NO_AUTH_RATE_LIMITS)
        if auth.mode == "apikey":
            raise AuthError(MSG_NOT_CHATGPT_RATE_LIMITS)
        url = self.usage_url()
        prefix = "failed to fetch codex rate limits: "
        headers = {"user-agent": user_agent, **auth.headers()}
        body = b""
        content_type = ""
        status = 0
        with trio.move_on_after(HTTP_TIMEOUT_SECONDS) as scope:
            try:
                response = await self._http().get(url, headers=headers)
                status, body = response.status_code, response.content
                content_type = response.headers.get("content-type", "")
            except httpx.HTTPError:
                raise AuthError(
                    f"{prefix}error sending request for url ({url})", code=INTERNAL_ERROR
                ) from None
        if scope.cancelled_caught:
            raise AuthError(f"{prefix}error sending request for url ({url})", code=INTERNAL_ERROR)
        text = body.decode("utf-8", errors="replace")
        tail = f"; content-type={content_type}; body={text}"
        if not 200 <= status < 300:
            raise AuthError(f"{prefix}GET {url} failed: {status_text(status)}{tail}", code=INTERNAL_ERROR)
        try:
            payload = decode(_UsagePayload, json.loads(text))
        except json.JSONDecodeError as exc:
            raise AuthError(
                f"{prefix}Decode error for {url}: {_json_error(exc)}{tail}", code=INTERNAL_ERROR
            ) from None
        except DecodeError as exc:
            raise AuthError(f"{prefix}Decode error for {url}: {exc}{tail}", code=INTERNAL_ERROR) from None
        return _rate_limit_snapshot(payload)


def _refresh_error_code(body: str) -> str | None:
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return str(error["code"])
    if isinstance(error, str):
        return error
    code = data.get("code")
    return code if isinstance(code, str) else None


def _error_message(body: str) -> str:
    """The ``error.message`` of a JSON error body, else the body itself."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return body if body.strip() else "Unknown error"


class _ManagedAuth:
    """A thread's view of the manager's credentials (the model client's AuthProvider)."""

    def __init__(self, manager: AuthManager) -> None:
        self._manager = manager
        self._seen = manager.generation

    def __repr__(self) -> str:
        return f"_ManagedAuth(mode={self._manager.mode!r})"

    async def headers(self) -> dict[str, str]:
        auth = self._manager.auth
        self._seen = self._manager.generation
        return auth.headers() if auth is not None else {}

    async def refresh_after_unauthorized(self) -> bool:
        return await self._manager.refresh_after_unauthorized(self._seen)

    def is_chatgpt(self) -> bool:
        return self._manager.is_chatgpt


class _EnvKeyAuth(ApiKeyAuth):
    """The key from a provider's ``env_key``. It is sent instead of the login's credentials, yet the
    login still chooses the base URL of a provider without one, as in the reference."""

    __slots__ = ("_manager",)

    def __init__(self, key: str, manager: AuthManager) -> None:
        super().__init__(key)
        self._manager = manager

    def is_chatgpt(self) -> bool:
        return self._manager.is_chatgpt


# ---- the usage endpoint's payload -----------------------------------------------------------------

UsagePlan = Literal[
    "guest",
    "free",
    "go",
    "plus",
    "pro",
    "free_workspace",
    "team",
    "business",
    "education",
    "quorum",
    "k12",
    "enterprise",
    "edu",
]


class _UsageWindow(TypedDict):
    used_percent: Annotated[int, I32]
    limit_window_seconds: Annotated[int, I32]
    reset_after_seconds: Annotated[int, I32]
    reset_at: Annotated[int, I32]


class _UsageLimits(TypedDict):
    allowed: bool
    limit_reached: bool
    primary_window: _UsageWindow | None
    secondary_window: _UsageWindow | None


class _UsageCredits(TypedDict):
    has_credits: bool
    unlimited: bool
    balance: str | None


class _UsagePayload(TypedDict):
    plan_type: UsagePlan
    rate_limit: _UsageLimits | None
    credits: _UsageCredits | None


def _window(window: _UsageWindow | None) -> dict[str, Any] | None:
    if window is None:
        return None
    seconds = window["limit_window_seconds"]
    minutes = math.ceil(seconds / 60) if seconds > 0 else None
    return {
        "usedPercent": used_percent_to_v2(window["used_percent"]),
        "windowDurationMins": minutes,
        "resetsAt": window["reset_at"],
    }


def _rate_limit_snapshot(payload: _UsagePayload) -> dict[str, Any]:
    limits = payload["rate_limit"]
    credits = payload["credits"]
    return {
        "primary": _window(limits["primary_window"]) if limits else None,
        "secondary": _window(limits["secondary_window"]) if limits else None,
        "credits": (
            {
                "hasCredits": credits["has_credits"],
                "unlimited": credits["unlimited"],
                "balance": credits["balance"],
            }
            if credits
            else None
        ),
        "planType": _USAGE_PLANS[payload["plan_type"]],
    }
