"""End to end: the account API and the 401 path of the real server (a stdio subprocess), against a mock of
the Responses API and a mock OAuth issuer / ChatGPT backend on 127.0.0.1, with the fault-injection
harness answering (or not) the server's ``account/chatgptAuthTokens/refresh`` requests.

Every message the server writes is checked against the protocol schema. Expected texts and orders are
the reference's (Codex CLI 0.94.0), observed by running it against the same mocks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import stat
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import httpx
import jwt
import pytest
import trio
import trustme
from schema_check import ProtocolValidator

from codex_trio.testing import harness as h
from codex_trio.testing import mock_responses as mr

pytestmark = pytest.mark.filterwarnings("ignore::trio.TrioDeprecationWarning")

WAIT = 10.0
EXPIRED = mr.error_body("token expired", code="token_expired")

# --------------------------------------------------------------------------------------------------
# How the server is started
# --------------------------------------------------------------------------------------------------

def server_command() -> list[str]:
    return h.server_command()


# --------------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------------


def id_token(email: str = "user@example.com", plan: str = "pro", account: str | None = "org-x") -> str:
    auth: dict[str, Any] = {"chatgpt_plan_type": plan, "chatgpt_user_id": "user-1"}
    if account is not None:
        auth["chatgpt_account_id"] = account
    claims = {"email": email, "https://api.openai.com/auth": auth, "exp": 4102444800}
    return jwt.encode(claims, "a-test-signing-key-of-32-bytes!!", algorithm="HS256")


def tokens_reply(email: str, account: str | None, access: str) -> dict[str, str]:
    return {"idToken": id_token(email=email, account=account, plan="plus"), "accessToken": access}


# --------------------------------------------------------------------------------------------------
# A scripted HTTP server for the OAuth issuer and the ChatGPT backend
# --------------------------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


Route = Callable[[Seen], tuple[int, Any]]


@dataclass
class Backend:
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[Backend] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        head: h11.Request | None = None
        body = b""
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Request):
                    head = event
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return
            assert head is not None
            path, _, query = head.target.decode().partition("?")
            seen = Seen(
                head.method.decode(),
                path,
                query,
                {k.decode().lower(): v.decode() for k, v in head.headers},
                body,
            )
            self.seen.append(seen)
            route = self.routes.get((seen.method, path))
            status, payload = route(seen) if route else (404, {"error": {"message": "no route"}})
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            headers = [
                ("content-type", "application/json"),
                ("content-length", str(len(data))),
                ("connection", "close"),
            ]
            out = conn.send(h11.Response(status_code=status, headers=headers)) or b""
            out += (conn.send(h11.Data(data=data)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
            await stream.send_all(out)
        except (trio.BrokenResourceError, h11.ProtocolError):
            pass
        finally:
            await trio.aclose_forcefully(stream)


# --------------------------------------------------------------------------------------------------
# The environment of one test
# --------------------------------------------------------------------------------------------------


def write_config(
    codex_home: Path, base_url: str, chatgpt_base_url: str, extra: str = "", retries: int = 0
) -> None:
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        'model = "mock-model"\n'
        'model_provider = "mock"\n'
        f"chatgpt_base_url = {json.dumps(chatgpt_base_url)}\n"
        f"{extra}\n"
        "[model_providers.mock]\n"
        'name = "mock"\n'
        f"base_url = {json.dumps(base_url)}\n"
        'wire_api = "responses"\n'
        "requires_openai_auth = true\n"
        "request_max_retries = 0\n"
        f"stream_max_retries = {retries}\n",
        encoding="utf-8",
    )


@dataclass
class World:
    server: h.StdioServer
    model: mr.MockResponses
    backend: Backend
    codex_home: Path

    async def start_thread(self) -> str:
        result = await self.server.call_result("thread/start", {})
        return str(result["thread"]["id"])

    async def until(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = WAIT
    ) -> list[dict[str, Any]]:
        """Messages in arrival order up to and including the first one ``pred`` accepts."""
        out: list[dict[str, Any]] = []
        with trio.fail_after(timeout):
            while True:
                msg = await self.server.receive(timeout=timeout)
                out.append(msg)
                if pred(msg):
                    return out

    async def call_in_order(self, method: str, params: Any, notes: int) -> list[dict[str, Any]]:
        """The reply to a request and the ``notes`` notifications that follow, as the client reads them."""
        request_id = await self.server.request(method, params)
        seen = await self.until(lambda m: m.get("id") == request_id and "method" not in m)
        out = [m for m in seen if m.get("id") == request_id]
        for _ in range(notes):
            out.append(await self.server.receive(timeout=WAIT))
        return out

    async def turn(self, thread_id: str, text: str = "hi") -> dict[str, Any]:
        """Run a turn to its end; the ``turn/completed`` params."""
        await self.server.request(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
        )
        done = await self.until(lambda m: m.get("method") == "turn/completed")
        return dict(done[-1]["params"])

    def auth_json(self) -> dict[str, Any] | None:
        path = self.codex_home / "auth.json"
        return json.loads(path.read_text()) if path.exists() else None


@asynccontextmanager
async def world(
    *scripts: mr.Script,
    responder: h.Responder | None = None,
    config: str = "",
    env: Mapping[str, str | None] | None = None,
    retries: int = 0,
    prepare: Callable[[Path], None] | None = None,
    check_exit: bool = True,
) -> AsyncIterator[World]:
    async with mr.open_mock_responses(*scripts) as model, trio.open_nursery() as nursery:
        backend: Backend = await nursery.start(Backend().serve)
        with tempfile.TemporaryDirectory(prefix="accounts-e2e-") as tmp:
            codex_home = Path(tmp) / "codex_home"
            write_config(codex_home, model.base_url, backend.origin + "/backend-api/", config, retries)
            if prepare is not None:
                prepare(codex_home)
            full_env: dict[str, str | None] = {
                "CODEX_TRIO_LOG": "debug",
                "CODEX_REFRESH_TOKEN_URL_OVERRIDE": backend.origin + "/oauth/token",
                "CODEX_APP_SERVER_LOGIN_ISSUER": backend.origin,
                "CODEX_APP_SERVER_LOGIN_PORT": "0",
                **(env or {}),
            }
            async with h.open_server(
                command=server_command(),
                codex_home=codex_home,
                base_url=model.base_url,
                env=full_env,
                validator=ProtocolValidator(),
                responder=responder,
                check_exit=check_exit,
            ) as server:
                await server.initialize()
                yield World(server, model, backend, codex_home)
        nursery.cancel_scope.cancel()


def refresh_answers(*results: Any) -> h.Responder:
    """Answer the refresh requests with ``results`` in turn (the last one for any further request)."""
    queue = list(results)

    def next_result(params: Any) -> Any:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return h.AnswerNormally({"account/chatgptAuthTokens/refresh": next_result})


async def login_with_tokens(w: World, token: str | None = None, access: str = "at-1") -> None:
    await w.server.call_result(
        "account/login/start",
        {"type": "chatgptAuthTokens", "idToken": token or id_token(), "accessToken": access},
    )
    await w.until(lambda m: m.get("method") == "account/updated")


def bearer(request: mr.RecordedRequest) -> tuple[str | None, str | None]:
    return request.headers.get("authorization"), request.headers.get("chatgpt-account-id")


def assert_no_secret_logged(w: World, *secrets: str) -> None:
    log = w.server.stderr_text()
    assert log, "the server should log something at debug level"
    for secret in secrets:
        assert secret not in log, f"a secret appears in the server's log: {secret[:12]}..."


# --------------------------------------------------------------------------------------------------
# API key login, auth.json, logout
# --------------------------------------------------------------------------------------------------


async def test_api_key_login_writes_auth_json_privately_and_notifies_in_order() -> None:
    async with world() as w:
        msgs = await w.call_in_order(
            "account/login/start", {"type": "apiKey", "apiKey": "sk-e2e-secret-1"}, 2
        )
        assert [m.get("method", "result") for m in msgs] == [
            "result",
            "account/login/completed",
            "account/updated",
        ]
        assert msgs[0]["result"] == {"type": "apiKey"}
        assert msgs[1]["params"] == {"loginId": None, "success": True, "error": None}
        assert msgs[2]["params"] == {"authMode": "apikey"}
        path = w.codex_home / "auth.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() == '{\n  "auth_mode": "apikey",\n  "OPENAI_API_KEY": "sk-e2e-secret-1"\n}'
        assert [p.name for p in w.codex_home.iterdir() if p.name.startswith(".auth")] == []
        assert await w.server.call_result("account/read", {}) == {
            "account": {"type": "apiKey"},
            "requiresOpenaiAuth": True,
        }
        assert await w.server.call_result("getAuthStatus", {"includeToken": True}) == {
            "authMethod": "apikey",
            "authToken": "sk-e2e-secret-1",
            "requiresOpenaiAuth": True,
        }
        msgs = await w.call_in_order("account/logout", None, 1)
        assert msgs == [
            {"id": msgs[0]["id"], "result": {}},
            {"method": "account/updated", "params": {"authMode": None}},
        ]
        assert not path.exists()
        assert await w.server.call_result("account/read", {}) == {"account": None, "requiresOpenaiAuth": True}
        assert_no_secret_logged(w, "sk-e2e-secret-1")


async def test_v1_login_and_logout_send_auth_status_change() -> None:
    async with world() as w:
        msgs = await w.call_in_order("loginApiKey", {"apiKey": "sk-v1"}, 1)
        assert [m.get("params", m.get("result")) for m in msgs] == [{}, {"authMethod": "apikey"}]
        assert msgs[1]["method"] == "authStatusChange"
        msgs = await w.call_in_order("logoutChatGpt", None, 1)
        assert msgs[1] == {"method": "authStatusChange", "params": {"authMethod": None}}
        reply = await w.server.call("cancelLoginChatGpt", {"loginId": "nope"})
        assert reply["error"]["message"].startswith("Invalid request: UUID parsing failed: invalid character")
        reply = await w.server.call("cancelLoginChatGpt", {"loginId": "6F1F1A8E-1C1E-4A43-9C4A-31B3B5B0B9AA"})
        assert reply["error"] == {
            "code": -32600,
            "message": "login id not found: 6f1f1a8e-1c1e-4a43-9c4a-31b3b5b0b9aa",
        }


async def test_corrupt_auth_json_is_reported_without_its_content_and_means_logged_out() -> None:
    def corrupt(home: Path) -> None:
        (home / "auth.json").write_text('{"OPENAI_API_KEY": "sk-leak-me-not", ')

    async with world(prepare=corrupt) as w:
        assert await w.server.call_result("account/read", {}) == {"account": None, "requiresOpenaiAuth": True}
        log = w.server.stderr_text()
        assert "auth.json is not valid JSON" in log
        assert "sk-leak-me-not" not in log


async def test_openai_api_key_env_is_not_a_login_as_with_the_reference() -> None:
    async with world(mr.text("hello"), env={"OPENAI_API_KEY": "sk-from-env"}) as w:
        assert await w.server.call_result("account/read", {}) == {"account": None, "requiresOpenaiAuth": True}
        thread_id = await w.start_thread()
        assert (await w.turn(thread_id))["turn"]["status"] == "completed"
        assert bearer(w.model.responses_requests[0]) == (None, None)


# --------------------------------------------------------------------------------------------------
# Forced login method and workspace
# --------------------------------------------------------------------------------------------------


async def test_forced_chatgpt_refuses_api_keys() -> None:
    async with world(config='forced_login_method = "chatgpt"') as w:
        for method, params in (
            ("account/login/start", {"type": "apiKey", "apiKey": "sk-1"}),
            ("loginApiKey", {"apiKey": "sk-1"}),
        ):
            reply = await w.server.call(method, params)
            assert reply["error"] == {
                "code": -32600,
                "message": "API key login is disabled. Use ChatGPT login instead.",
            }
        assert w.auth_json() is None


async def test_forced_api_refuses_chatgpt_and_external_tokens() -> None:
    async with world(config='forced_login_method = "api"') as w:
        for method, params in (("account/login/start", {"type": "chatgpt"}), ("loginChatGpt", None)):
            reply = await w.server.call(method, params)
            assert reply["error"]["message"] == "ChatGPT login is disabled. Use API key login instead."
        reply = await w.server.call(
            "account/login/start", {"type": "chatgptAuthTokens", "idToken": id_token(), "accessToken": "a"}
        )
        assert reply["error"]["message"] == "External ChatGPT auth is disabled. Use API key login instead."


async def test_external_tokens_for_another_workspace_are_refused_without_notifications() -> None:
    async with world(config='forced_chatgpt_workspace_id = "org-forced"') as w:
        reply = await w.server.call(
            "account/login/start", {"type": "chatgptAuthTokens", "idToken": id_token(), "accessToken": "at"}
        )
        assert reply["error"] == {
            "code": -32600,
            "message": 'External auth must use workspace org-forced, but received Some("org-x").',
        }
        assert await w.server.call_result("account/read", {}) == {"account": None, "requiresOpenaiAuth": True}
        assert [n["method"] for n in w.server.notifications] == []


async def test_external_tokens_login_keeps_tokens_in_memory_only() -> None:
    async with world() as w:
        msgs = await w.call_in_order(
            "account/login/start",
            {"type": "chatgptAuthTokens", "idToken": id_token(), "accessToken": "at-memory-only"},
            2,
        )
        assert msgs[0]["result"] == {"type": "chatgptAuthTokens"}
        assert msgs[1]["params"] == {"loginId": None, "success": True, "error": None}
        assert msgs[2]["params"] == {"authMode": "chatgptAuthTokens"}
        assert w.auth_json() is None
        assert await w.server.call_result("account/read", {"refreshToken": True}) == {
            "account": {"type": "chatgpt", "email": "user@example.com", "planType": "pro"},
            "requiresOpenaiAuth": True,
        }
        assert w.backend.seen == []  # refreshToken in external mode sends nothing anywhere
        assert await w.server.call_result("userInfo") == {"allegedUserEmail": "user@example.com"}
        reply = await w.server.call("account/login/start", {"type": "chatgpt"})
        assert reply["error"]["message"] == (
            "External auth is active. Use account/login/start (chatgptAuthTokens) to update it or "
            "account/logout to clear it."
        )
        reply = await w.server.call(
            "account/login/start", {"type": "chatgptAuthTokens", "idToken": "not-a-jwt", "accessToken": "x"}
        )
        assert reply["error"]["message"] == "invalid id token: invalid ID token format"
        await w.server.call_result("account/logout")
        assert await w.server.call_result("account/read", {}) == {"account": None, "requiresOpenaiAuth": True}
        assert_no_secret_logged(w, "at-memory-only", id_token())


# --------------------------------------------------------------------------------------------------
# The 401 path
# --------------------------------------------------------------------------------------------------


async def test_refresh_success_retries_with_the_new_token_and_account() -> None:
    fresh = tokens_reply("new@example.com", "org-y", "at-fresh-2")
    async with world(
        mr.http_error(401, EXPIRED), mr.text("after refresh"), responder=refresh_answers(fresh)
    ) as w:
        await login_with_tokens(w)
        thread_id = await w.start_thread()
        done = await w.turn(thread_id)
        assert done["turn"]["status"] == "completed"
        assert [(r.method, r.params) for r in w.server.server_requests] == [
            ("account/chatgptAuthTokens/refresh", {"reason": "unauthorized", "previousAccountId": "org-x"})
        ]
        assert [bearer(r) for r in w.model.responses_requests] == [
            ("Bearer at-1", "org-x"),
            ("Bearer at-fresh-2", "org-y"),
        ]
        assert await w.server.call_result("account/read", {}) == {
            "account": {"type": "chatgpt", "email": "new@example.com", "planType": "plus"},
            "requiresOpenaiAuth": True,
        }
        # Like the reference: a refresh is no account change clients hear about (only the login was).
        assert [n["method"] for n in w.server.notifications].count("account/updated") == 1
        assert w.auth_json() is None
        assert_no_secret_logged(w, "at-fresh-2", fresh["idToken"])


async def _failed_turn(w: World) -> dict[str, Any]:
    await login_with_tokens(w)
    thread_id = await w.start_thread()
    done = await w.turn(thread_id)
    assert done["turn"]["status"] == "failed"
    return dict(done["turn"]["error"])


async def test_refresh_error_reply_fails_the_turn_and_the_next_401_asks_again() -> None:
    scripts = (mr.http_error(401, EXPIRED), mr.http_error(401, EXPIRED), mr.text("ok"))
    async with world(*scripts, responder=h.AnswerWithError(-32000, "no tokens for you")) as w:
        error = await _failed_turn(w)
        assert error == {
            "message": "auth refresh request canceled: channel closed",
            "codexErrorInfo": "other",
            "additionalDetails": None,
        }
        assert len(w.model.responses_requests) == 1
        second = await w.turn((await w.server.call_result("thread/loaded/list", {}))["data"][0])
        assert second["turn"]["status"] == "failed"
        assert len(w.server.server_requests) == 2


async def test_refresh_reply_with_a_malformed_id_token_fails_the_turn() -> None:
    reply = {"idToken": "not-a-jwt", "accessToken": "at-2"}
    async with world(mr.http_error(401, EXPIRED), responder=refresh_answers(reply)) as w:
        assert (await _failed_turn(w))["message"] == "invalid ID token format"
        assert await w.server.call_result("getAuthStatus", {"includeToken": True}) == {
            "authMethod": "chatgptAuthTokens",
            "authToken": "at-1",
            "requiresOpenaiAuth": True,
        }


async def test_refresh_reply_without_id_token_fails_the_turn() -> None:
    async with world(mr.http_error(401, EXPIRED), responder=refresh_answers({"accessToken": "x"})) as w:
        assert (await _failed_turn(w))["message"] == "missing field `idToken`"


async def test_refresh_to_another_workspace_fails_the_turn() -> None:
    reply = tokens_reply("a@b.c", "org-x", "at-2")
    config = 'forced_chatgpt_workspace_id = "org-forced"'
    async with world(mr.http_error(401, EXPIRED), responder=refresh_answers(reply), config=config) as w:
        await login_with_tokens(w, id_token(account="org-forced"))
        thread_id = await w.start_thread()
        done = await w.turn(thread_id)
        assert done["turn"]["error"]["message"] == (
            'external auth refresh returned workspace Some("org-x"), expected "org-forced"'
        )
        assert w.server.server_requests[0].params == {
            "reason": "unauthorized",
            "previousAccountId": "org-forced",
        }


async def test_refresh_timeout_fails_the_turn_after_10s_while_other_requests_are_answered() -> None:
    async with world(mr.http_error(401, EXPIRED), responder=h.NeverAnswer()) as w:
        await login_with_tokens(w)
        thread_id = await w.start_thread()
        await w.server.request(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "hi"}]}
        )
        with trio.fail_after(WAIT):
            while not w.server.server_requests:
                await trio.sleep(0.01)
        asked = trio.current_time()
        # Meanwhile the server answers at once.
        for _ in range(3):
            started = trio.current_time()
            assert await w.server.call_result("account/read", {}) is not None
            await w.server.call_result("getUserAgent")
            assert trio.current_time() - started < 0.5
        done = await w.until(lambda m: m.get("method") == "turn/completed", timeout=15)
        elapsed = trio.current_time() - asked
        assert 9.5 <= elapsed <= 10.5, elapsed
        assert done[-1]["params"]["turn"]["error"]["message"] == "auth refresh request timed out after 10s"


async def test_refresh_timeout_is_configurable() -> None:
    config = "chatgpt_auth_refresh_timeout_ms = 1500"
    async with world(mr.http_error(401, EXPIRED), responder=h.NeverAnswer(), config=config) as w:
        assert (await _failed_turn(w))["message"] == "auth refresh request timed out after 1s"


async def test_client_closing_stdin_during_the_refresh_ends_the_server_cleanly() -> None:
    async with world(mr.http_error(401, EXPIRED), responder=h.CloseStdinOnRequest(), check_exit=False) as w:
        await login_with_tokens(w)
        thread_id = await w.start_thread()
        await w.server.request(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "hi"}]}
        )
        assert await w.server.wait_exit(5) == 0
        w.server.assert_no_traceback()


async def test_two_turns_hitting_401_together_share_one_refresh() -> None:
    scripts = (mr.http_error(401, EXPIRED), mr.http_error(401, EXPIRED), mr.text("a"), mr.text("b"))
    slow = h.AnswerAfter(0.5, refresh_answers(tokens_reply("n@e.w", "org-x", "at-shared")))
    async with world(*scripts, responder=slow) as w:
        await login_with_tokens(w)
        first, second = await w.start_thread(), await w.start_thread()
        for thread_id in (first, second):
            await w.server.request(
                "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "x"}]}
            )
        completed = 0
        while completed < 2:
            msg = await w.server.receive(timeout=WAIT)
            if msg.get("method") == "turn/completed":
                assert msg["params"]["turn"]["status"] == "completed"
                completed += 1
        assert len(w.server.server_requests) == 1
        assert [bearer(r)[0] for r in w.model.responses_requests] == [
            "Bearer at-1",
            "Bearer at-1",
            "Bearer at-shared",
            "Bearer at-shared",
        ]


async def test_api_key_401_fails_the_turn_without_a_refresh() -> None:
    async with world(mr.http_error(401, EXPIRED)) as w:
        await w.server.call_result("account/login/start", {"type": "apiKey", "apiKey": "sk-401"})
        thread_id = await w.start_thread()
        done = await w.turn(thread_id)
        assert done["turn"]["error"] == {
            "message": "unexpected status 401 Unauthorized: ",
            "codexErrorInfo": "other",
            "additionalDetails": None,
        }
        assert w.server.server_requests == []
        assert_no_secret_logged(w, "sk-401")


def stored_chatgpt_tokens(home: Path) -> None:
    (home / "auth.json").write_text(
        json.dumps(
            {
                "OPENAI_API_KEY": None,
                "tokens": {
                    "id_token": id_token(),
                    "access_token": "at-file",
                    "refresh_token": "rt-file",
                    "account_id": "org-x",
                },
                "last_refresh": "2099-01-01T00:00:00Z",
            }
        )
    )


async def test_managed_chatgpt_refreshes_with_the_refresh_token_and_persists() -> None:
    async with world(mr.http_error(401, EXPIRED), mr.text("ok"), prepare=stored_chatgpt_tokens) as w:
        new_id = id_token(email="fresh@example.com")
        w.backend.routes[("POST", "/oauth/token")] = lambda seen: (
            200,
            {"id_token": new_id, "access_token": "at-new", "refresh_token": "rt-new"},
        )
        thread_id = await w.start_thread()
        assert (await w.turn(thread_id))["turn"]["status"] == "completed"
        assert [bearer(r) for r in w.model.responses_requests] == [
            ("Bearer at-file", "org-x"),
            ("Bearer at-new", "org-x"),
        ]
        refresh = w.backend.seen[0]
        assert json.loads(refresh.body) == {
            "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
            "grant_type": "refresh_token",
            "refresh_token": "rt-file",
            "scope": "openid profile email",
        }
        stored = w.auth_json()
        assert stored is not None
        assert stored["tokens"] == {
            "id_token": new_id,
            "access_token": "at-new",
            "refresh_token": "rt-new",
            "account_id": "org-x",
        }
        assert stat.S_IMODE((w.codex_home / "auth.json").stat().st_mode) == 0o600
        assert (await w.server.call_result("account/read", {}))["account"]["email"] == "fresh@example.com"
        assert_no_secret_logged(w, "at-new", "rt-new", "rt-file", "at-file")


async def test_managed_refresh_refused_reports_the_reference_message() -> None:
    async with world(mr.http_error(401, EXPIRED), prepare=stored_chatgpt_tokens) as w:
        w.backend.routes[("POST", "/oauth/token")] = lambda seen: (
            401,
            {"error": {"code": "refresh_token_expired"}},
        )
        done = await w.turn(await w.start_thread())
        assert done["turn"]["error"] == {
            "message": "Your access token could not be refreshed because your refresh token has expired. "
            "Please log out and sign in again.",
            "codexErrorInfo": "unauthorized",
            "additionalDetails": None,
        }


# --------------------------------------------------------------------------------------------------
# The browser login
# --------------------------------------------------------------------------------------------------


async def browser(url: str) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as client:
        return await client.get(url, follow_redirects=False, timeout=5)


def token_endpoint(backend: Backend, account: str = "org-x") -> dict[str, str]:
    tokens = {
        "id_token": id_token(account=account),
        "access_token": "at-browser",
        "refresh_token": "rt-browser",
    }

    def answer(seen: Seen) -> tuple[int, Any]:
        form = seen.form()
        if form["grant_type"] == "authorization_code":
            return 200, tokens
        return 200, {"access_token": "sk-exchanged-key"}

    backend.routes[("POST", "/oauth/token")] = answer
    return tokens


async def test_browser_login_exchanges_the_code_with_pkce_and_persists() -> None:
    async with world() as w:
        tokens = token_endpoint(w.backend)
        result = await w.server.call_result("account/login/start", {"type": "chatgpt"})
        assert result["type"] == "chatgpt"
        url = urlsplit(result["authUrl"])
        assert f"{url.scheme}://{url.netloc}" == w.backend.origin and url.path == "/oauth/authorize"
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        port = urlsplit(query["redirect_uri"]).port
        assert query["redirect_uri"] == f"http://localhost:{port}/auth/callback"
        assert query["client_id"] == "app_EMoamEEZ73f0CkXaXp7hrann"
        assert query["code_challenge_method"] == "S256"
        assert query["originator"] == "codex_trio_harness"
        wrong = await browser(f"http://127.0.0.1:{port}/auth/callback?code=c&state=forged")
        assert (wrong.status_code, wrong.text) == (400, "State mismatch")
        back = await browser(f"http://127.0.0.1:{port}/auth/callback?code=the-code&state={query['state']}")
        assert back.status_code == 302
        done = await browser(f"http://127.0.0.1:{port}/success")
        assert done.status_code == 200
        msgs = await w.until(lambda m: m.get("method") == "account/updated")
        assert msgs[-2:] == [
            {
                "method": "account/login/completed",
                "params": {"loginId": result["loginId"], "success": True, "error": None},
            },
            {"method": "account/updated", "params": {"authMode": "chatgpt"}},
        ]
        exchange = w.backend.seen[0].form()
        assert exchange["code"] == "the-code"
        challenge = base64.urlsafe_b64encode(hashlib.sha256(exchange["code_verifier"].encode()).digest())
        assert challenge.rstrip(b"=").decode() == query["code_challenge"]
        stored = w.auth_json()
        assert stored is not None and stored["auth_mode"] == "chatgpt"
        assert stored["OPENAI_API_KEY"] == "sk-exchanged-key"
        assert stored["tokens"]["access_token"] == tokens["access_token"]
        assert stat.S_IMODE((w.codex_home / "auth.json").stat().st_mode) == 0o600
        with pytest.raises(httpx.ConnectError):
            await browser(f"http://127.0.0.1:{port}/success")
        assert await w.server.call_result("account/read", {}) == {
            "account": {"type": "chatgpt", "email": "user@example.com", "planType": "pro"},
            "requiresOpenaiAuth": True,
        }
        assert_no_secret_logged(w, "the-code", "at-browser", "rt-browser", query["state"])


async def test_browser_login_for_another_workspace_fails_and_saves_nothing() -> None:
    async with world(config='forced_chatgpt_workspace_id = "org-forced"') as w:
        token_endpoint(w.backend, account="org-x")
        result = await w.server.call_result("account/login/start", {"type": "chatgpt"})
        query = {k: v[0] for k, v in parse_qs(urlsplit(result["authUrl"]).query).items()}
        assert query["allowed_workspace_id"] == "org-forced"
        port = urlsplit(query["redirect_uri"]).port
        await browser(f"http://127.0.0.1:{port}/auth/callback?code=c&state={query['state']}")
        msgs = await w.until(lambda m: m.get("method") == "account/login/completed")
        assert msgs[-1]["params"] == {
            "loginId": result["loginId"],
            "success": False,
            "error": "Login server error: Login is restricted to workspace id org-forced.",
        }
        assert w.auth_json() is None


async def test_cancel_logout_and_a_new_login_each_end_the_login_in_progress() -> None:
    async with world() as w:
        first = await w.server.call_result("account/login/start", {"type": "chatgpt"})
        port = urlsplit(parse_qs(urlsplit(first["authUrl"]).query)["redirect_uri"][0]).port
        msgs = await w.call_in_order("account/login/cancel", {"loginId": first["loginId"]}, 1)
        assert msgs[0]["result"] == {"status": "canceled"}
        assert msgs[1]["params"] == {
            "loginId": first["loginId"],
            "success": False,
            "error": "Login server error: Login was not completed",
        }
        with pytest.raises(httpx.ConnectError):
            await browser(f"http://127.0.0.1:{port}/success")
        again = await w.server.call_result("account/login/cancel", {"loginId": first["loginId"]})
        assert again == {"status": "notFound"}

        second = await w.server.call_result("account/login/start", {"type": "chatgpt"})
        msgs = await w.call_in_order("account/login/start", {"type": "chatgpt"}, 0)
        third = msgs[0]["result"]
        ended = [n for n in w.server.notifications if n["params"].get("loginId") == second["loginId"]]
        assert ended[-1]["params"]["error"] == "Login server error: Login cancelled"

        msgs = await w.call_in_order("account/logout", None, 2)
        assert [m.get("method", "result") for m in msgs] == [
            "result",
            "account/updated",
            "account/login/completed",
        ]
        assert msgs[2]["params"]["loginId"] == third["loginId"]


async def test_login_in_progress_ends_when_the_client_goes_away() -> None:
    async with world(check_exit=False) as w:
        result = await w.server.call_result("account/login/start", {"type": "chatgpt"})
        port = urlsplit(parse_qs(urlsplit(result["authUrl"]).query)["redirect_uri"][0]).port
        await w.server.close_stdin()
        assert await w.server.wait_exit(5) == 0
        with pytest.raises(httpx.ConnectError):
            await browser(f"http://127.0.0.1:{port}/success")


# --------------------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------------------


async def test_rate_limits_read_maps_the_usage_endpoint() -> None:
    async with world() as w:
        reply = await w.server.call("account/rateLimits/read")
        assert reply["error"]["message"] == "codex account authentication required to read rate limits"
        await login_with_tokens(w, access="at-usage")
        w.backend.routes[("GET", "/backend-api/wham/usage")] = lambda seen: (
            200,
            {
                "plan_type": "pro",
                "rate_limit": {
                    "allowed": True,
                    "limit_reached": False,
                    "primary_window": {
                        "used_percent": 42,
                        "limit_window_seconds": 18000,
                        "reset_after_seconds": 100,
                        "reset_at": 1900000000,
                    },
                    "secondary_window": None,
                },
                "credits": {"has_credits": True, "unlimited": False, "balance": "12.5"},
            },
        )
        assert await w.server.call_result("account/rateLimits/read") == {
            "rateLimits": {
                "primary": {"usedPercent": 42, "windowDurationMins": 300, "resetsAt": 1900000000},
                "secondary": None,
                "credits": {"hasCredits": True, "unlimited": False, "balance": "12.5"},
                "planType": "pro",
            }
        }
        usage = w.backend.seen[-1]
        assert (usage.headers["authorization"], usage.headers["chatgpt-account-id"]) == (
            "Bearer at-usage",
            "org-x",
        )


# --------------------------------------------------------------------------------------------------
# Where model requests go
# --------------------------------------------------------------------------------------------------

CHATGPT_HOST = "chatgpt.com:443"
API_HOST = "api.openai.com:443"
# The headers of a model request as the reference sends them (less host and content-length), by login.
# With ChatGPT tokens the reference also zstd-compresses the body (content-encoding: zstd); we send it
# uncompressed, as the reference itself does when its request compression is turned off.
API_KEY_HEADERS = {
    "accept",
    "authorization",
    "content-type",
    "originator",
    "session_id",
    "user-agent",
    "version",
    "x-oai-web-search-eligible",
}
CHATGPT_HEADERS = API_KEY_HEADERS | {"chatgpt-account-id"}


async def _pipe(source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope) -> None:
    try:
        while chunk := await source.receive_some(65536):
            await sink.send_all(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        done.cancel()


@dataclass
class TunnelProxy:
    """The server's HTTPS proxy, standing in for the internet: a CONNECT to a host in ``routes`` is
    tunnelled to that local port, anything else is refused. Records every target asked for."""

    routes: dict[str, int]
    targets: list[str] = field(default_factory=list)
    port: int = 0

    async def serve(self, *, task_status: trio.TaskStatus[TunnelProxy] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        head = b""
        try:
            with trio.move_on_after(WAIT):
                while b"\r\n\r\n" not in head:
                    chunk = await client.receive_some(4096)
                    if not chunk:
                        break
                    head += chunk
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            target = rest.partition(" ")[0]
            self.targets.append(target)
            port = self.routes.get(target)
            if method != "CONNECT" or port is None:
                await client.send_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                return
            async with await trio.open_tcp_stream("127.0.0.1", port) as upstream:
                await client.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_pipe, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(_pipe, upstream, client, nursery.cancel_scope)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await trio.aclose_forcefully(client)


@dataclass
class Internet:
    chatgpt: mr.MockResponses  # https://chatgpt.com/backend-api/codex
    api: mr.MockResponses  # https://api.openai.com/v1
    proxy: TunnelProxy
    env: dict[str, str | None]


@asynccontextmanager
async def internet() -> AsyncIterator[Internet]:
    """chatgpt.com and api.openai.com as TLS mocks on 127.0.0.1, reached through a tunnelling proxy
    with a certificate the server is made to trust, so that the server's own default URLs are used."""
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("chatgpt.com", "api.openai.com").configure_cert(tls)
    async with (
        mr.open_mock_responses(
            default=mr.text("backend"), prefix="/backend-api/codex", ssl_context=tls
        ) as chatgpt,
        mr.open_mock_responses(default=mr.text("api"), ssl_context=tls) as api,
        trio.open_nursery() as nursery,
    ):
        routes = {CHATGPT_HOST: chatgpt.port, API_HOST: api.port}
        proxy: TunnelProxy = await nursery.start(TunnelProxy(routes).serve)
        with tempfile.TemporaryDirectory(prefix="accounts-ca-") as tmp:
            ca_file = Path(tmp) / "ca.pem"
            ca.cert_pem.write_to_path(str(ca_file))
            url = f"http://127.0.0.1:{proxy.port}"
            env: dict[str, str | None] = {"SSL_CERT_FILE": str(ca_file)}
            for name in ("HTTPS_PROXY", "ALL_PROXY"):
                env[name] = env[name.lower()] = url
            yield Internet(chatgpt, api, proxy, env)
        nursery.cancel_scope.cancel()


def builtin_openai_provider(home: Path) -> None:
    """The built-in ``openai`` provider, as most users run it (chatgpt_base_url stays the backend mock)."""
    config = home / "config.toml"
    config.write_text(config.read_text().replace('model_provider = "mock"\n', ""))


def builtin_openai_provider_with_stored_chatgpt_tokens(home: Path) -> None:
    builtin_openai_provider(home)
    stored_chatgpt_tokens(home)


@pytest.mark.parametrize("login", ["chatgptAuthTokens", "chatgpt"])
async def test_chatgpt_logins_reach_the_chatgpt_backend_and_api_keys_the_api(login: str) -> None:
    # As the reference: with no OPENAI_BASE_URL, a ChatGPT login (handed-in tokens, or a browser login's
    # tokens in auth.json) sends model requests to https://chatgpt.com/backend-api/codex/responses, not
    # to chatgpt_base_url; an API key to https://api.openai.com/v1/responses. Chosen per request, so
    # switching logins within a thread takes effect at the next turn.
    tokens = login == "chatgptAuthTokens"
    prepare = builtin_openai_provider if tokens else builtin_openai_provider_with_stored_chatgpt_tokens
    async with internet() as net, world(env={**net.env, "OPENAI_BASE_URL": None}, prepare=prepare) as w:
        thread_id = await w.start_thread()
        if tokens:
            await login_with_tokens(w)
        assert (await w.turn(thread_id))["turn"]["status"] == "completed"
        await w.server.call_result("account/logout")
        await w.server.call_result("account/login/start", {"type": "apiKey", "apiKey": "sk-e2e-api"})
        assert (await w.turn(thread_id))["turn"]["status"] == "completed"

        assert net.proxy.targets == [CHATGPT_HOST, API_HOST]
        [to_backend] = net.chatgpt.requests
        assert (to_backend.method, to_backend.path) == ("POST", "/backend-api/codex/responses")
        assert bearer(to_backend) == ("Bearer at-1" if tokens else "Bearer at-file", "org-x")
        assert set(to_backend.headers) - {"host", "content-length"} == CHATGPT_HEADERS
        [to_api] = net.api.requests
        assert (to_api.method, to_api.path) == ("POST", "/v1/responses")
        assert bearer(to_api) == ("Bearer sk-e2e-api", None)
        assert set(to_api.headers) - {"host", "content-length"} == API_KEY_HEADERS
        assert to_backend.headers["session_id"] == to_api.headers["session_id"] == thread_id
        # chatgpt_base_url (the backend mock) and the configured mock provider are not used for turns.
        assert w.backend.seen == [] and w.model.requests == []


async def test_openai_base_url_wins_over_a_chatgpt_login() -> None:
    async with internet() as net, world(env=net.env, prepare=builtin_openai_provider) as w:
        thread_id = await w.start_thread()
        await login_with_tokens(w)
        assert (await w.turn(thread_id))["turn"]["status"] == "completed"
        [request] = w.model.requests
        assert (request.method, request.path) == ("POST", "/v1/responses")
        assert bearer(request) == ("Bearer at-1", "org-x")
        assert net.proxy.targets == []
