"""The ChatGPT browser login: PKCE, a callback server on loopback, the code exchanged for tokens.

As in the reference (Codex CLI 0.94.0): the server listens on ``127.0.0.1:1455`` and hands the client an
``authUrl`` at the issuer (``https://auth.openai.com``) whose ``redirect_uri`` is
``http://localhost:1455/auth/callback``. The browser comes back there with ``code`` and ``state``; the
code is exchanged at ``{issuer}/oauth/token`` together with the PKCE verifier, the id token's workspace is
checked against ``forced_chatgpt_workspace_id``, the tokens are written to auth.json and the browser is
sent to ``/success``, which ends the login. ``GET /cancel`` ends it too (a second login started elsewhere
uses it to free the port).

``CODEX_APP_SERVER_LOGIN_ISSUER`` points the issuer elsewhere (the name later reference versions use) and
``CODEX_APP_SERVER_LOGIN_PORT`` chooses the port (0: any free one); tests use both to run against a mock on
127.0.0.1. Nothing here logs the code, the state, the verifier or a token.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import h11
import httpx
import trio

from .auth import (
    CLIENT_ID,
    DEFAULT_ISSUER,
    AuthManager,
    ChatgptTokens,
    InvalidIdToken,
    parse_id_token,
)
from .model_client import status_text

log = logging.getLogger(__name__)

ISSUER_ENV = "CODEX_APP_SERVER_LOGIN_ISSUER"
PORT_ENV = "CODEX_APP_SERVER_LOGIN_PORT"
DEFAULT_PORT = 1455
SCOPE = "openid profile email offline_access"
# How long a login may wait for the browser, as in the reference.
LOGIN_TIMEOUT_SECONDS = 10 * 60
# Per-connection bounds of the callback server: a silent or slow browser cannot hold a task.
_REQUEST_TIMEOUT_SECONDS = 30.0
_HTTP_TIMEOUT_SECONDS = 30.0
_BIND_ATTEMPTS = 10
_BIND_RETRY_SECONDS = 0.2
_MAX_REQUEST_BYTES = 64 * 1024

MSG_CANCELLED = "Login cancelled"
MSG_NOT_COMPLETED = "Login was not completed"
MSG_TIMED_OUT = "Login timed out"

SUCCESS_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8" /><title>Sign into Codex</title></head>
<body><p>Signed in to Codex. You may now close this page.</p></body></html>
"""


class LoginStartError(Exception):
    """The callback server could not be started (the port stays busy)."""


@dataclass(frozen=True)
class LoginOptions:
    originator: str
    issuer: str = DEFAULT_ISSUER
    port: int = DEFAULT_PORT
    client_id: str = CLIENT_ID
    forced_workspace_id: str | None = None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, originator: str, forced_workspace_id: str | None
    ) -> LoginOptions:
        issuer = (env.get(ISSUER_ENV) or "").strip().rstrip("/") or DEFAULT_ISSUER
        port_text = (env.get(PORT_ENV) or "").strip()
        port = int(port_text) if port_text.isdigit() and int(port_text) < 2**16 else DEFAULT_PORT
        return cls(originator=originator, issuer=issuer, port=port, forced_workspace_id=forced_workspace_id)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Pkce:
    verifier: str = field(repr=False)
    challenge: str

    @classmethod
    def generate(cls) -> Pkce:
        verifier = _b64url(secrets.token_bytes(64))
        return cls(verifier, _b64url(hashlib.sha256(verifier.encode("ascii")).digest()))


def _encode(value: str) -> str:
    # Like the reference's urlencoding: everything but unreserved characters is escaped.
    return quote(value, safe="")


def authorize_url(options: LoginOptions, *, redirect_uri: str, pkce: Pkce, state: str) -> str:
    query = [
        ("response_type", "code"),
        ("client_id", options.client_id),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPE),
        ("code_challenge", pkce.challenge),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("state", state),
        ("originator", options.originator),
    ]
    if options.forced_workspace_id is not None:
        query.append(("allowed_workspace_id", options.forced_workspace_id))
    return f"{options.issuer}/oauth/authorize?" + "&".join(f"{k}={_encode(v)}" for k, v in query)


def workspace_error(forced: str | None, account_id: str | None) -> str | None:
    """Why a browser login's tokens are refused by ``forced_chatgpt_workspace_id`` (None: allowed)."""
    if forced is None:
        return None
    if account_id is None:
        return (
            "Login is restricted to a specific workspace, but the token did not include an "
            "chatgpt_account_id claim."
        )
    if account_id != forced:
        return f"Login is restricted to workspace id {forced}."
    return None


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Set when this answer ends the login: None for success, else the error.
    finish: bool = False
    error: str | None = None


def _text(status: int, text: str) -> _Reply:
    return _Reply(status, text.encode("utf-8"), [("content-type", "text/plain; charset=UTF-8")])


class ExchangeError(Exception):
    pass


async def _bind(port: int) -> trio.SocketListener:
    """Listen on 127.0.0.1:port. When another login holds the port, ask it to stop (GET /cancel), as the
    reference does, and try again for a while."""
    cancel_sent = False
    for attempt in range(_BIND_ATTEMPTS):
        try:
            listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise LoginStartError(str(exc.strerror or exc)) from None
            if not cancel_sent:
                cancel_sent = True
                await _send_cancel(port)
            if attempt + 1 < _BIND_ATTEMPTS:
                await trio.sleep(_BIND_RETRY_SECONDS)
            continue
        return listeners[0]
    raise LoginStartError(f"Port 127.0.0.1:{port} is already in use")


async def _send_cancel(port: int) -> None:
    with trio.move_on_after(2):
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            return
        try:
            request = f"GET /cancel HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            await stream.send_all(request.encode("ascii"))
            await stream.receive_some(64)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await trio.aclose_forcefully(stream)


class BrowserLogin:
    """One browser login attempt: create it with :meth:`start`, then ``await run()`` in a task.

    ``run`` returns None on success and the error text otherwise; it always closes the listener, whether
    the login succeeds, fails, times out, is cancelled with :meth:`cancel` or its task is cancelled.
    """

    def __init__(
        self,
        listener: trio.SocketListener,
        options: LoginOptions,
        *,
        manager: AuthManager,
        http: httpx.AsyncClient,
    ) -> None:
        self.listener = listener
        self.options = options
        self.port: int = listener.socket.getsockname()[1]
        self.login_id = str(uuid.uuid4())
        self.redirect_uri = f"http://localhost:{self.port}/auth/callback"
        self._pkce = Pkce.generate()
        self._state = _b64url(secrets.token_bytes(32))
        self.auth_url = authorize_url(
            options, redirect_uri=self.redirect_uri, pkce=self._pkce, state=self._state
        )
        self._manager = manager
        self._http = http
        self._exchange_lock = trio.Lock()
        self._signed_in = False
        self._scope = trio.CancelScope()
        self._error: str | None = MSG_NOT_COMPLETED
        self._finished = False
        self.done = trio.Event()

    @classmethod
    async def start(
        cls, options: LoginOptions, *, manager: AuthManager, http: httpx.AsyncClient
    ) -> BrowserLogin:
        listener = await _bind(options.port)
        return cls(listener, options, manager=manager, http=http)

    def __repr__(self) -> str:
        return f"BrowserLogin(login_id={self.login_id!r}, port={self.port})"

    def cancel(self, reason: str = MSG_NOT_COMPLETED) -> None:
        """End the login with ``reason`` (no effect once it has ended)."""
        self._finish(reason)

    def _finish(self, error: str | None) -> None:
        if self._finished:
            return
        self._finished = True
        self._error = error
        self._scope.cancel()

    async def aclose(self) -> None:
        """Close the listener of a login whose ``run`` never started."""
        with trio.CancelScope(shield=True):
            await self.listener.aclose()

    async def run(self) -> str | None:
        try:
            with self._scope:
                with trio.move_on_after(LOGIN_TIMEOUT_SECONDS) as timeout:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(trio.serve_listeners, self._handle, [self.listener])
                if timeout.cancelled_caught:
                    self._finish(MSG_TIMED_OUT)
            return self._error
        finally:
            self._finished = True
            with trio.CancelScope(shield=True):
                await self.listener.aclose()
            self.done.set()

    # ---- the callback server ----------------------------------------------------------------

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST_BYTES)
        try:
            while True:
                target = None
                with trio.move_on_after(_REQUEST_TIMEOUT_SECONDS):
                    target = await self._receive_request(conn, stream)
                if target is None:
                    return
                reply = await self._route(target)
                await self._send(conn, stream, reply)
                if reply.finish:
                    self._finish(reply.error)
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError, OSError):
            return
        finally:
            await trio.aclose_forcefully(stream)

    async def _receive_request(self, conn: h11.Connection, stream: trio.SocketStream) -> str | None:
        target: str | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(16 * 1024)
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    return None
            elif isinstance(event, h11.Request):
                target = event.target.decode("latin-1")
            elif isinstance(event, h11.EndOfMessage):
                return target
            elif isinstance(event, (h11.ConnectionClosed, h11.PAUSED)):
                return None

    async def _send(self, conn: h11.Connection, stream: trio.SocketStream, reply: _Reply) -> None:
        headers = [*reply.headers, ("content-length", str(len(reply.body)))]
        if reply.finish:
            headers.append(("connection", "close"))
        data = conn.send(h11.Response(status_code=reply.status, headers=headers)) or b""
        data += conn.send(h11.Data(data=reply.body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(data)

    async def _route(self, target: str) -> _Reply:
        parts = urlsplit(target)
        log.debug("login callback server: %s", parts.path)
        if parts.path == "/auth/callback":
            return await self._callback({k: v[0] for k, v in parse_qs(parts.query).items()})
        if parts.path == "/success":
            if not self._signed_in:
                # Unlike the reference, a stray visit does not count as a finished login.
                return _text(400, MSG_NOT_COMPLETED)
            return _Reply(200, SUCCESS_PAGE, [("content-type", "text/html; charset=utf-8")], finish=True)
        if parts.path == "/cancel":
            return _Reply(200, MSG_CANCELLED.encode(), finish=True, error=MSG_CANCELLED)
        return _text(404, "Not Found")

    async def _callback(self, params: dict[str, str]) -> _Reply:
        if not secrets.compare_digest(params.get("state", ""), self._state):
            log.warning("login callback with a state that does not match; ignored")
            return _text(400, "State mismatch")
        code = params.get("code", "")
        if not code:
            return _text(400, "Missing authorization code")
        async with self._exchange_lock:
            if self._signed_in:
                return _Reply(302, b"", [("location", f"http://localhost:{self.port}/success")])
            try:
                tokens = await self._exchange(code)
            except ExchangeError as exc:
                log.error("login: token exchange failed")
                return _text(500, f"Token exchange failed: {exc}")
            refusal = workspace_error(self.options.forced_workspace_id, tokens.id_token.account_id)
            if refusal is not None:
                log.error("login: workspace restriction refused the token")
                return _Reply(
                    403,
                    refusal.encode(),
                    [("content-type", "text/plain; charset=UTF-8")],
                    finish=True,
                    error=refusal,
                )
            api_key = await self._obtain_api_key(tokens.id_token.raw)
            try:
                # Shielded: a cancel arriving mid-write must not leave auth.json and memory out of step.
                with trio.CancelScope(shield=True):
                    await self._manager.save_chatgpt_tokens(tokens, api_key=api_key)
            except OSError as exc:
                log.error("login: cannot save the credentials: %s", exc.strerror or type(exc).__name__)
                return _text(500, f"Unable to persist auth file: {exc.strerror or exc}")
            self._signed_in = True
            return _Reply(302, b"", [("location", f"http://localhost:{self.port}/success")])

    async def _post_form(self, fields: list[tuple[str, str]]) -> httpx.Response:
        url = f"{self.options.issuer}/oauth/token"
        body = "&".join(f"{k}={_encode(v)}" for k, v in fields)
        with trio.move_on_after(_HTTP_TIMEOUT_SECONDS):
            try:
                return await self._http.post(
                    url,
                    content=body.encode("ascii"),
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )
            except httpx.HTTPError:
                pass
        raise ExchangeError(f"error sending request for url ({url})")

    async def _exchange(self, code: str) -> ChatgptTokens:
        response = await self._post_form(
            [
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.redirect_uri),
                ("client_id", self.options.client_id),
                ("code_verifier", self._pkce.verifier),
            ]
        )
        if not response.is_success:
            raise ExchangeError(
                f"token endpoint returned status {status_text(response.status_code)}: {response.text}"
            )
        try:
            data: Any = response.json()
        except ValueError:
            raise ExchangeError("error decoding response body") from None
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) for k in ("id_token", "access_token", "refresh_token")
        ):
            raise ExchangeError("error decoding response body")
        try:
            info = parse_id_token(data["id_token"])
        except InvalidIdToken as exc:
            raise ExchangeError(exc.message) from None
        return ChatgptTokens(info, data["access_token"], data["refresh_token"], info.account_id)

    async def _obtain_api_key(self, id_token: str) -> str | None:
        """The API key the reference also asks the issuer for; a failure only means there is none."""
        try:
            response = await self._post_form(
                [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                    ("client_id", self.options.client_id),
                    ("requested_token", "openai-api-key"),
                    ("subject_token", id_token),
                    ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                ]
            )
        except ExchangeError:
            return None
        if not response.is_success:
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        key = data.get("access_token") if isinstance(data, dict) else None
        return key if isinstance(key, str) and key else None
