"""Accounts: the v2 ``account/*`` methods and the legacy v1 auth methods.

Every answer, error text and notification order follows the reference (Codex CLI 0.94.0):

- ``account/login/start``: ``apiKey`` answers ``{type}`` then sends ``account/login/completed`` and
  ``account/updated``; ``chatgptAuthTokens`` does the same with the tokens kept in memory; ``chatgpt``
  answers with ``loginId`` and ``authUrl`` at once, and ``account/login/completed`` (then
  ``account/updated`` on success) follows when the browser login ends.
- One browser login at a time: a new one ends the previous one ("Login cancelled"); an API key or token
  login, a logout or ``account/login/cancel`` end it too ("Login was not completed"). Its notification
  always comes after the answer to the request that ended it.
- v1 ``loginChatGpt`` is the same login reporting with ``loginChatGptComplete`` / ``authStatusChange``.

Account notifications go to every initialized client: the account is the server's, not a connection's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import trio

from ..core.ids import parse_uuid
from ..protocol.accounts import (
    CancelLoginAccountParams,
    CancelLoginChatGptParams,
    GetAccountParams,
    GetAuthStatusParams,
    LoginAccountParams,
    LoginApiKeyParams,
)
from ..router import Handler, Method, RequestContext
from ..rpc.errors import INTERNAL_ERROR, ConnectionClosed, RpcError, invalid_params
from ..rpc.session import Reply

# core.auth and core.login (and through them httpx and h11) are imported when an account method first
# needs them, not at start-up: answering initialize must not wait for them.
if TYPE_CHECKING:
    from ..app import AppServer
    from ..core.auth import AuthManager
    from ..core.login import BrowserLogin

log = logging.getLogger(__name__)

Flavor = Literal["v1", "v2"]
MSG_EMAIL_AND_PLAN_REQUIRED = "email and plan type are required for chatgpt authentication"
# How long a new browser login waits for the one it replaces to shut its callback server down.
PREVIOUS_LOGIN_WAIT_SECONDS = 5.0


class _ActiveLogin:
    # A plain class: a dataclass costs start-up time for nothing here.
    __slots__ = ("flavor", "login")

    def __init__(self, login: BrowserLogin, flavor: Flavor) -> None:
        self.login = login
        self.flavor = flavor


def _uuid_parse_error(text: str) -> str:
    """The uuid crate's complaint about ``text``, as serde reports it for a Uuid field."""
    body = text[9:] if text.startswith("urn:uuid:") else text
    for index, ch in enumerate(body, start=1):
        if not (ch == "-" or ch.isdigit() or ch.lower() in "abcdef"):
            return (
                "UUID parsing failed: invalid character: expected an optional prefix of `urn:uuid:` "
                f"followed by [0-9a-fA-F-], found `{ch}` at {index}"
            )
    return (
        "UUID parsing failed: invalid length: expected length 32 for simple format, "
        f"found {len(body.replace('-', ''))}"
    )


@contextmanager
def _auth_errors_as_rpc() -> Iterator[None]:
    """An AuthError becomes the JSON-RPC error the reference answers with."""
    from ..core.auth import AuthError

    try:
        yield
    except AuthError as exc:
        raise RpcError(exc.message, code=exc.code) from None


def auth_manager_of(app: AppServer) -> AuthManager:
    """The server's AuthManager: the thread manager's, which its model clients use for every request.

    Until the thread manager owns one, the processor makes its own: logins and account reads work, but
    threads do not see them.
    """
    from ..core.auth import AuthManager, AuthSettings

    existing = getattr(app.threads, "auth", None)
    if isinstance(existing, AuthManager):
        return existing
    threads = app.threads
    return AuthManager(
        codex_home=app.codex_home,
        env=app.env,
        settings=AuthSettings.from_config(app.config),
        http=lambda: threads.http,
    )


class AccountsProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app
        self._auth: AuthManager | None = None
        self._active: _ActiveLogin | None = None
        self._lock = trio.StrictFIFOLock()

    @property
    def auth(self) -> AuthManager:
        if self._auth is None:
            self._auth = auth_manager_of(self.app)
        return self._auth

    def methods(self) -> list[Method]:
        def account(
            name: str, params: Any, handler: Callable[[RequestContext, Any], Awaitable[Any]]
        ) -> Method:
            return Method(name, params, self._serial(handler), sequence="account")

        return [
            account("account/read", GetAccountParams, self.read),
            account("account/login/start", LoginAccountParams, self.login_start),
            account("account/login/cancel", CancelLoginAccountParams, self.login_cancel),
            account("account/logout", None, self.logout),
            Method("account/rateLimits/read", None, self.rate_limits),
            account("getAuthStatus", GetAuthStatusParams, self.get_auth_status),
            account("loginApiKey", LoginApiKeyParams, self.login_api_key_v1),
            account("loginChatGpt", None, self.login_chatgpt_v1),
            account("cancelLoginChatGpt", CancelLoginChatGptParams, self.cancel_login_v1),
            account("logoutChatGpt", None, self.logout_v1),
            Method("userInfo", None, self.user_info),
        ]

    def _serial(self, handler: Callable[[RequestContext, Any], Awaitable[Any]]) -> Handler:
        """One account operation at a time across all clients: a login and a logout never interleave.
        (Each client's own order comes from ``Method.sequence``.) Replies' follow-ups run outside."""

        async def run(ctx: RequestContext, params: Any) -> Any:
            async with self._lock:
                return await handler(ctx, params)

        return run

    # ---- notifications ----------------------------------------------------------------------

    async def _broadcast(self, *notes: tuple[str, Any]) -> None:
        for session in list(self.app.sessions):
            conn = session.conn
            if conn is None or not session.initialized or not conn.is_open:
                continue
            try:
                for method, params in notes:
                    await conn.notify(method, params)
            except ConnectionClosed:
                continue

    def _completed(self, flavor: Flavor, login_id: str | None, error: str | None) -> tuple[str, Any]:
        if flavor == "v1":
            return "loginChatGptComplete", {"loginId": login_id, "success": error is None, "error": error}
        return "account/login/completed", {"loginId": login_id, "success": error is None, "error": error}

    def _status(self, flavor: Flavor) -> tuple[str, Any]:
        if flavor == "v1":
            return "authStatusChange", {"authMethod": self.auth.mode}
        return "account/updated", {"authMode": self.auth.mode}

    # ---- browser logins ---------------------------------------------------------------------

    def _end_active_login(self, reason: str | None = None) -> _ActiveLogin | None:
        """End the browser login in progress, if any (by default as "not completed"). Its task reports
        it once it has wound down, which is after the answer to the current request: nothing here
        yields to it."""
        active, self._active = self._active, None
        if active is not None:
            # Only a started login can be active, so core.login is already imported.
            from ..core.login import MSG_NOT_COMPLETED

            active.login.cancel(MSG_NOT_COMPLETED if reason is None else reason)
        return active

    async def _start_browser_login(self, ctx: RequestContext, flavor: Flavor) -> BrowserLogin:
        from ..core.login import MSG_CANCELLED, BrowserLogin, LoginOptions, LoginStartError

        with _auth_errors_as_rpc():
            self.auth.check_chatgpt_login()
        previous = self._end_active_login(MSG_CANCELLED)
        if previous is not None:
            # Like the reference, the previous login reports its end (and frees the port) before this
            # one answers.
            with trio.move_on_after(PREVIOUS_LOGIN_WAIT_SECONDS):
                await previous.login.done.wait()
        options = LoginOptions.from_env(
            self.app.env,
            originator=ctx.session.originator,
            forced_workspace_id=self.auth.settings.forced_chatgpt_workspace_id,
        )
        try:
            login = await BrowserLogin.start(options, manager=self.auth, http=self.auth.http())
        except LoginStartError as exc:
            raise RpcError(f"failed to start login server: {exc}", code=INTERNAL_ERROR) from None
        active = _ActiveLogin(login, flavor)
        try:
            # The login belongs to the connection that asked for it: if the client goes away, so does
            # the callback server.
            ctx.conn.start_soon(self._run_login, active, name=f"login {login.login_id}")
        except ConnectionClosed:
            await login.aclose()
            raise
        self._active = active
        return login

    async def _run_login(self, active: _ActiveLogin) -> None:
        from ..core.login import MSG_TIMED_OUT

        login = active.login
        try:
            error = await login.run()
        finally:
            if self._active is active:
                self._active = None
        # The reference reports its own timeout as is, and whatever ended the callback server with a prefix.
        message = error if error in (None, MSG_TIMED_OUT) else f"Login server error: {error}"
        if error is None:
            log.info("ChatGPT login completed")
            await self._broadcast(
                self._completed(active.flavor, login.login_id, None), self._status(active.flavor)
            )
        else:
            log.info("ChatGPT login ended without signing in")
            await self._broadcast(self._completed(active.flavor, login.login_id, message))

    # ---- v2 ---------------------------------------------------------------------------------

    async def read(self, ctx: RequestContext, params: GetAccountParams) -> dict[str, Any]:
        if params["refreshToken"]:
            await self.auth.refresh_if_requested()
        if not self.auth.settings.requires_openai_auth:
            return {"account": None, "requiresOpenaiAuth": False}
        auth = self.auth.auth
        account: dict[str, Any] | None = None
        if auth is not None and auth.mode == "apikey":
            account = {"type": "apiKey"}
        elif auth is not None:
            if auth.email is None or auth.plan is None:
                raise RpcError(MSG_EMAIL_AND_PLAN_REQUIRED)
            account = {"type": "chatgpt", "email": auth.email, "planType": auth.plan}
        return {"account": account, "requiresOpenaiAuth": True}

    async def login_start(self, ctx: RequestContext, params: LoginAccountParams) -> Reply:
        if params["type"] == "apiKey":
            await self._login_api_key(params["apiKey"])
            return Reply({"type": "apiKey"}, after=self._announce_v2_login)
        if params["type"] == "chatgptAuthTokens":
            self._login_external(params["idToken"], params["accessToken"])
            return Reply({"type": "chatgptAuthTokens"}, after=self._announce_v2_login)
        login = await self._start_browser_login(ctx, "v2")
        return Reply({"type": "chatgpt", "loginId": login.login_id, "authUrl": login.auth_url})

    async def _announce_v2_login(self) -> None:
        await self._broadcast(self._completed("v2", None, None), self._status("v2"))

    async def _login_api_key(self, api_key: str) -> None:
        with _auth_errors_as_rpc():
            await self.auth.login_api_key(api_key)
        self._end_active_login()

    def _login_external(self, id_token: str, access_token: str) -> None:
        with _auth_errors_as_rpc():
            self.auth.check_external_login()
            # The reference ends a browser login in progress before it even looks at the tokens.
            self._end_active_login()
            auth = self.auth.validate_external_tokens(id_token, access_token)
        self.auth.set_external(auth)

    async def login_cancel(self, ctx: RequestContext, params: CancelLoginAccountParams) -> dict[str, Any]:
        login_id = parse_uuid(params["loginId"])
        if login_id is None:
            raise RpcError(f"invalid login id: {params['loginId']}")
        active = self._active
        if active is None or active.login.login_id != login_id:
            return {"status": "notFound"}
        self._end_active_login()
        return {"status": "canceled"}

    async def logout(self, ctx: RequestContext, params: None) -> Reply:
        await self._logout()
        return Reply({}, after=self._status_after("v2"))

    async def _logout(self) -> None:
        with _auth_errors_as_rpc():
            await self.auth.logout()
        self._end_active_login()

    def _status_after(self, flavor: Flavor) -> Callable[[], Awaitable[None]]:
        async def announce() -> None:
            await self._broadcast(self._status(flavor))

        return announce

    async def rate_limits(self, ctx: RequestContext, params: None) -> dict[str, Any]:
        user_agent = ctx.session.user_agent or ctx.session.originator
        with _auth_errors_as_rpc():
            snapshot = await self.auth.read_rate_limits(user_agent=user_agent)
        return {"rateLimits": snapshot}

    # ---- v1 ---------------------------------------------------------------------------------

    async def get_auth_status(self, ctx: RequestContext, params: GetAuthStatusParams) -> dict[str, Any]:
        include_token = bool(params["includeToken"])
        if params["refreshToken"]:
            await self.auth.refresh_if_requested()
        if not self.auth.settings.requires_openai_auth:
            return {"authMethod": None, "authToken": None, "requiresOpenaiAuth": False}
        auth = self.auth.auth
        if auth is None or not auth.token:
            return {"authMethod": None, "authToken": None, "requiresOpenaiAuth": True}
        return {
            "authMethod": auth.mode,
            "authToken": auth.token if include_token else None,
            "requiresOpenaiAuth": True,
        }

    async def login_api_key_v1(self, ctx: RequestContext, params: LoginApiKeyParams) -> Reply:
        await self._login_api_key(params["apiKey"])
        return Reply({}, after=self._status_after("v1"))

    async def login_chatgpt_v1(self, ctx: RequestContext, params: None) -> dict[str, Any]:
        login = await self._start_browser_login(ctx, "v1")
        return {"loginId": login.login_id, "authUrl": login.auth_url}

    async def cancel_login_v1(self, ctx: RequestContext, params: CancelLoginChatGptParams) -> dict[str, Any]:
        login_id = parse_uuid(params["loginId"])
        if login_id is None:
            raise invalid_params(_uuid_parse_error(params["loginId"]))
        active = self._active
        if active is None or active.login.login_id != login_id:
            raise RpcError(f"login id not found: {login_id}")
        self._end_active_login()
        return {}

    async def logout_v1(self, ctx: RequestContext, params: None) -> Reply:
        await self._logout()
        return Reply({}, after=self._status_after("v1"))

    async def user_info(self, ctx: RequestContext, params: None) -> dict[str, Any]:
        auth = self.auth.auth
        return {"allegedUserEmail": auth.email if auth is not None else None}
