"""The AuthManager on its own: id tokens, auth.json, the refreshers and the browser login's pieces.

The external refresher talks to a real ``Connection`` over memory streams; waits run on trio's virtual
clock (``autojump_clock``), so the 10 s refresh timeout takes no real time. HTTP endpoints are
``httpx.MockTransport``s; only the callback server of the browser login listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
import trio
import trio.testing
from memclient import MemoryClient, memory_transport_pair

from codex_trio.core import auth as auth_mod
from codex_trio.core.auth import (
    Auth,
    AuthError,
    AuthFileError,
    AuthManager,
    AuthSettings,
    ChatgptTokens,
    InvalidIdToken,
    auth_from_json,
    load_auth,
    parse_id_token,
    read_auth_file,
    write_auth_file,
)
from codex_trio.core.login import (
    MSG_CANCELLED,
    MSG_NOT_COMPLETED,
    MSG_TIMED_OUT,
    BrowserLogin,
    LoginOptions,
    Pkce,
    authorize_url,
    workspace_error,
)
from codex_trio.core.model_client import ApiKeyAuth, ModelError
from codex_trio.core.provider import ModelProviderInfo
from codex_trio.rpc.messages import Notification, Request
from codex_trio.rpc.session import Connection, Reply


def id_token(
    email: str | None = "user@example.com", plan: str | None = "pro", account: str | None = "org-x"
) -> str:
    auth: dict[str, Any] = {}
    if plan is not None:
        auth["chatgpt_plan_type"] = plan
    if account is not None:
        auth["chatgpt_account_id"] = account
    claims: dict[str, Any] = {"https://api.openai.com/auth": auth}
    if email is not None:
        claims["email"] = email
    return jwt.encode(claims, "a-test-signing-key-of-32-bytes!!", algorithm="HS256")


def raw_token(payload: str | object) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = payload if isinstance(payload, str) else b64(json.dumps(payload).encode())
    return f"{b64(b'{}')}.{body}.sig"


# --------------------------------------------------------------------------------------------------
# Id tokens
# --------------------------------------------------------------------------------------------------


def test_id_token_claims_are_read_without_checking_the_signature() -> None:
    info = parse_id_token(id_token())
    assert (info.email, info.plan_type, info.plan, info.account_id) == (
        "user@example.com",
        "pro",
        "pro",
        "org-x",
    )
    # The header does not matter either, as in the reference.
    assert parse_id_token("x." + id_token().split(".")[1] + ".sig").email == "user@example.com"
    assert "eyJ" not in repr(info)


@pytest.mark.parametrize(
    ("plan", "seen"),
    [("go", "go"), ("edu", "edu"), ("education", "unknown"), ("k12", "unknown"), ("weird", "unknown")],
)
def test_plan_types_outside_the_protocol_are_unknown(plan: str, seen: str) -> None:
    assert parse_id_token(id_token(plan=plan)).plan == seen


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not-a-jwt", "invalid ID token format"),
        ("a..c", "invalid ID token format"),
        ("a.b.c", "Invalid input length: 1"),
        (raw_token("!!!!"), "Invalid symbol 33, offset 0."),
        (raw_token("e30="), "Invalid padding"),
        (raw_token({"email": 5}), "invalid type: integer `5`, expected a string"),
        (
            raw_token({"https://api.openai.com/auth": "str"}),
            'invalid type: string "str", expected struct AuthClaims',
        ),
        (
            raw_token({"https://api.openai.com/auth": {"chatgpt_plan_type": 5}}),
            "data did not match any variant of untagged enum PlanType",
        ),
        (raw_token([1]), "invalid type: sequence, expected struct IdClaims"),
    ],
)
def test_malformed_id_tokens_are_rejected_with_a_clear_reason(token: str, reason: str) -> None:
    with pytest.raises(InvalidIdToken) as caught:
        parse_id_token(token)
    assert caught.value.detail == reason
    assert caught.value.message == f"invalid id token: {reason}"


def test_a_token_without_claims_is_accepted_with_nothing_known() -> None:
    info = parse_id_token(raw_token({}))
    assert (info.email, info.plan, info.account_id) == (None, None, None)


# --------------------------------------------------------------------------------------------------
# auth.json
# --------------------------------------------------------------------------------------------------


def test_auth_json_is_written_atomically_and_privately(tmp_path: Path) -> None:
    write_auth_file(tmp_path, {"auth_mode": "apikey", "OPENAI_API_KEY": "sk-1"})
    path = tmp_path / "auth.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == '{\n  "auth_mode": "apikey",\n  "OPENAI_API_KEY": "sk-1"\n}'
    path.chmod(0o644)
    write_auth_file(tmp_path, {"auth_mode": "apikey", "OPENAI_API_KEY": "sk-2"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auth.json"]


def test_a_failed_write_leaves_the_old_auth_json_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_auth_file(tmp_path, {"OPENAI_API_KEY": "sk-old"})

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        write_auth_file(tmp_path, {"OPENAI_API_KEY": "sk-new"})
    assert json.loads((tmp_path / "auth.json").read_text()) == {"OPENAI_API_KEY": "sk-old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auth.json"]


def test_corrupt_or_unreadable_auth_json_is_a_clear_error_without_its_content(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text('{"OPENAI_API_KEY": "sk-secret",')
    with pytest.raises(AuthFileError) as caught:
        read_auth_file(tmp_path)
    assert "is not valid JSON (line 1, column 32)" in caught.value.message
    assert "sk-secret" not in caught.value.message
    assert load_auth(tmp_path) is None
    path.write_text("[]")
    with pytest.raises(AuthFileError, match="does not hold a JSON object"):
        read_auth_file(tmp_path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(AuthFileError, match="not UTF-8"):
        read_auth_file(tmp_path)


def test_auth_json_modes_are_read_like_the_reference() -> None:
    assert auth_from_json({"OPENAI_API_KEY": "sk-1"}) == Auth("apikey", api_key="sk-1")
    assert auth_from_json({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-1"}).mode == "apikey"
    with pytest.raises(AuthFileError, match=re.escape("API key auth is missing a key.")):
        auth_from_json({"auth_mode": "apikey"})
    with pytest.raises(AuthFileError, match=re.escape("Token data is not available.")):
        auth_from_json({"OPENAI_API_KEY": None})
    chatgpt = auth_from_json(
        {
            "OPENAI_API_KEY": None,
            "tokens": {
                "id_token": id_token(),
                "access_token": "at",
                "refresh_token": "rt",
                "account_id": "org-x",
            },
        }
    )
    assert chatgpt.mode == "chatgpt"
    assert chatgpt.headers() == {"authorization": "Bearer at", "chatgpt-account-id": "org-x"}
    with pytest.raises(AuthFileError, match=re.escape("id token in auth.json cannot be read")):
        auth_from_json({"tokens": {"id_token": "bad", "access_token": "a", "refresh_token": "r"}})


# --------------------------------------------------------------------------------------------------
# The manager and its refreshers
# --------------------------------------------------------------------------------------------------


class NoMethods:
    def dispatch(self, conn: Connection, request: Request) -> Reply:
        return Reply(None)

    def notification(self, conn: Connection, notification: Notification) -> None:
        pass


def unreachable(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no HTTP expected, got {request.url}")


def manager(
    codex_home: Path,
    handler: Callable[[httpx.Request], httpx.Response] = unreachable,
    **settings: Any,
) -> AuthManager:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AuthManager(
        codex_home=codex_home,
        env={"CODEX_REFRESH_TOKEN_URL_OVERRIDE": "https://issuer.test/oauth/token"},
        settings=AuthSettings(**settings),
        http=lambda: client,
    )


async def connected(nursery: trio.Nursery) -> tuple[Connection, MemoryClient]:
    transport, client = memory_transport_pair()
    conn: Connection = await nursery.start(Connection(transport, NoMethods()).serve)
    return conn, client


def external(m: AuthManager, account: str | None = "org-x", access: str = "at-1") -> None:
    m.set_external(m.validate_external_tokens(id_token(account=account), access))


async def test_external_refresh_asks_the_owning_connection_and_uses_the_answer(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    m = manager(tmp_path)
    external(m)
    conn, client = await connected(nursery)
    provider = m.provider_for(ModelProviderInfo(id="p", name="p", base_url="http://x"))
    assert await provider.headers() == {"authorization": "Bearer at-1", "chatgpt-account-id": "org-x"}

    async def answer() -> None:
        request = await client.receive()
        assert request == {
            "id": 0,
            "method": "account/chatgptAuthTokens/refresh",
            "params": {"reason": "unauthorized", "previousAccountId": "org-x"},
        }
        await client.send({"id": 0, "result": {"idToken": id_token(account="org-y"), "accessToken": "at-2"}})

    nursery.start_soon(answer)
    with m.turn_owner(conn):
        assert await provider.refresh_after_unauthorized() is True
    assert await provider.headers() == {"authorization": "Bearer at-2", "chatgpt-account-id": "org-y"}


async def refresh_fails(m: AuthManager, conn: Connection | None) -> str:
    with pytest.raises(ModelError) as caught:
        if conn is None:
            await m.refresh_after_unauthorized(m.generation)
        else:
            with m.turn_owner(conn):
                await m.refresh_after_unauthorized(m.generation)
    assert caught.value.codex_error_info == "other" and caught.value.retryable
    return caught.value.message


async def test_no_answer_within_10s_fails_the_refresh(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    m = manager(tmp_path)
    external(m)
    conn, _client = await connected(nursery)
    started = trio.current_time()
    assert await refresh_fails(m, conn) == "auth refresh request timed out after 10s"
    assert trio.current_time() - started == pytest.approx(10.0)


async def test_the_refresh_timeout_comes_from_the_configuration(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    m = manager(tmp_path, refresh_timeout_ms=2500)
    external(m)
    conn, _client = await connected(nursery)
    started = trio.current_time()
    assert await refresh_fails(m, conn) == "auth refresh request timed out after 2s"
    assert trio.current_time() - started == pytest.approx(2.5)


async def test_an_error_answer_or_a_closed_connection_cancel_the_refresh(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    m = manager(tmp_path)
    external(m)
    conn, client = await connected(nursery)

    async def refuse() -> None:
        request = await client.receive()
        await client.send({"id": request["id"], "error": {"code": -32000, "message": "no"}})

    nursery.start_soon(refuse)
    assert await refresh_fails(m, conn) == "auth refresh request canceled: channel closed"

    async def hang_up() -> None:
        await client.receive()
        await client.close()

    nursery.start_soon(hang_up)
    started = trio.current_time()
    assert await refresh_fails(m, conn) == "auth refresh request canceled: channel closed"
    assert trio.current_time() - started < 1
    # No connection owns the turn at all: nobody can be asked.
    assert await refresh_fails(m, None) == "auth refresh request canceled: channel closed"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"idToken": "not-a-jwt", "accessToken": "x"}, "invalid ID token format"),
        ({"accessToken": "x"}, "missing field `idToken`"),
        (
            {"idToken": id_token(account="org-x"), "accessToken": "x"},
            'external auth refresh returned workspace Some("org-x"), expected "org-forced"',
        ),
        (
            {"idToken": id_token(account=None), "accessToken": "x"},
            'external auth refresh returned workspace None, expected "org-forced"',
        ),
    ],
)
async def test_unusable_answers_fail_the_refresh_and_keep_the_old_tokens(
    nursery: trio.Nursery, tmp_path: Path, answer: Any, reason: str
) -> None:
    m = manager(tmp_path, forced_chatgpt_workspace_id="org-forced")
    external(m, account="org-forced")
    conn, client = await connected(nursery)

    async def reply() -> None:
        request = await client.receive()
        await client.send({"id": request["id"], "result": answer})

    nursery.start_soon(reply)
    assert await refresh_fails(m, conn) == reason
    assert m.auth is not None and m.auth.token == "at-1"


async def test_concurrent_401s_share_one_refresh_request(nursery: trio.Nursery, tmp_path: Path) -> None:
    m = manager(tmp_path)
    external(m)
    conn, client = await connected(nursery)
    seen = m.generation
    results: list[bool] = []

    async def hit_401() -> None:
        with m.turn_owner(conn):
            results.append(await m.refresh_after_unauthorized(seen))

    async with trio.open_nursery() as turns:
        for _ in range(3):
            turns.start_soon(hit_401)
        request = await client.receive()
        await trio.testing.wait_all_tasks_blocked()
        await client.send({"id": request["id"], "result": {"idToken": id_token(), "accessToken": "at-2"}})
    assert results == [True, True, True]
    assert m.auth is not None and m.auth.token == "at-2"
    # A request that failed with credentials already replaced is retried at once, without asking.
    assert await m.refresh_after_unauthorized(seen) is True
    with trio.move_on_after(0.1):
        await client.receive()
        pytest.fail("no further refresh request expected")


async def test_a_refresh_whose_turn_is_cancelled_is_taken_over_by_the_next_waiter(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    m = manager(tmp_path)
    external(m)
    conn, client = await connected(nursery)
    seen = m.generation
    outcome: list[bool] = []

    async def waiter() -> None:
        with m.turn_owner(conn):
            outcome.append(await m.refresh_after_unauthorized(seen))

    leader_scope = trio.CancelScope()

    async def leader() -> None:
        with leader_scope, m.turn_owner(conn):
            await m.refresh_after_unauthorized(seen)

    async with trio.open_nursery() as turns:
        turns.start_soon(leader)
        first = await client.receive()
        turns.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        leader_scope.cancel()
        second = await client.receive()
        assert second["id"] != first["id"]
        await client.send({"id": second["id"], "result": {"idToken": id_token(), "accessToken": "at-3"}})
    assert outcome == [True]


async def test_api_keys_and_no_auth_are_not_refreshed(tmp_path: Path) -> None:
    m = manager(tmp_path)
    assert await m.refresh_after_unauthorized(m.generation) is False
    await m.login_api_key("sk-key")
    assert m.mode == "apikey"
    assert await m.refresh_after_unauthorized(m.generation) is False
    assert (
        isinstance(
            m.provider_for(ModelProviderInfo(id="p", name="p", base_url="http://x", env_key="MY_KEY")),
            ApiKeyAuth,
        )
        is False
    )  # MY_KEY is not set: the stored key is used
    m.env = {"MY_KEY": "sk-env"}
    provider = m.provider_for(ModelProviderInfo(id="p", name="p", base_url="http://x", env_key="MY_KEY"))
    assert await provider.headers() == {"authorization": "Bearer sk-env"}


async def test_the_login_chooses_the_base_url_of_a_provider_without_one(tmp_path: Path) -> None:
    # As the reference: ChatGPT tokens, stored or handed in, mean the ChatGPT backend; an API key or no
    # login the OpenAI API. A provider's env_key changes the bearer token, not that choice.
    m = manager(tmp_path)
    m.env = {"MY_KEY": "sk-env"}
    plain = ModelProviderInfo(id="p", name="p", base_url=None)
    keyed = ModelProviderInfo(id="p", name="p", base_url=None, env_key="MY_KEY")
    auths = [m.provider_for(plain), m.provider_for(keyed)]

    def urls() -> set[str]:
        return {plain.api_base_url(chatgpt_auth=auth.is_chatgpt()) for auth in auths}

    api, backend = {"https://api.openai.com/v1"}, {"https://chatgpt.com/backend-api/codex"}
    assert urls() == api
    await m.login_api_key("sk-key")
    assert urls() == api
    external(m)
    assert urls() == backend
    assert await auths[1].headers() == {"authorization": "Bearer sk-env"}
    await m.logout()
    assert urls() == api
    stored_chatgpt(tmp_path)
    await m.reload()
    assert urls() == backend
    # A base URL set in the configuration (or by OPENAI_BASE_URL) wins over the login.
    assert ModelProviderInfo(id="p", name="p", base_url="http://mock/v1").api_base_url(chatgpt_auth=True) == (
        "http://mock/v1"
    )


def stored_chatgpt(codex_home: Path, **extra: Any) -> None:
    data = {
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": id_token(),
            "access_token": "at-file",
            "refresh_token": "rt-file",
            "account_id": "org-x",
        },
        "last_refresh": "2099-01-01T00:00:00Z",
        **extra,
    }
    (codex_home / "auth.json").write_text(json.dumps(data))


async def test_managed_refresh_exchanges_the_refresh_token_and_persists(tmp_path: Path) -> None:
    stored_chatgpt(tmp_path, custom="kept")
    asked: list[Any] = []

    def issuer(request: httpx.Request) -> httpx.Response:
        asked.append((str(request.url), json.loads(request.content)))
        return httpx.Response(200, json={"access_token": "at-new", "refresh_token": "rt-new"})

    m = manager(tmp_path, issuer)
    assert await m.refresh_after_unauthorized(m.generation) is True
    assert asked == [
        (
            "https://issuer.test/oauth/token",
            {
                "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
                "grant_type": "refresh_token",
                "refresh_token": "rt-file",
                "scope": "openid profile email",
            },
        )
    ]
    assert m.auth is not None and m.auth.token == "at-new"
    data = json.loads((tmp_path / "auth.json").read_text())
    assert data["tokens"]["access_token"] == "at-new" and data["tokens"]["refresh_token"] == "rt-new"
    assert data["tokens"]["id_token"] == id_token()  # none in the answer: the old one stays
    assert data["custom"] == "kept" and "auth_mode" not in data
    assert data["last_refresh"].endswith("Z") and not data["last_refresh"].startswith("2099")
    assert stat.S_IMODE((tmp_path / "auth.json").stat().st_mode) == 0o600


async def test_tokens_refreshed_by_another_process_are_used_without_asking(tmp_path: Path) -> None:
    stored_chatgpt(tmp_path)
    m = manager(tmp_path)
    data = json.loads((tmp_path / "auth.json").read_text())
    data["tokens"]["access_token"] = "at-by-cli"
    (tmp_path / "auth.json").write_text(json.dumps(data))
    assert await m.refresh_after_unauthorized(m.generation) is True
    assert m.auth is not None and m.auth.token == "at-by-cli"


@pytest.mark.parametrize(
    ("status", "body", "message", "info"),
    [
        (401, {"error": {"code": "refresh_token_expired"}}, auth_mod.REFRESH_TOKEN_EXPIRED, "unauthorized"),
        (401, {"error": "refresh_token_reused"}, auth_mod.REFRESH_TOKEN_REUSED, "unauthorized"),
        (401, {"code": "refresh_token_invalidated"}, auth_mod.REFRESH_TOKEN_INVALIDATED, "unauthorized"),
        (401, {}, auth_mod.REFRESH_TOKEN_UNKNOWN, "unauthorized"),
        (
            500,
            {"error": {"message": "server sad"}},
            "Failed to refresh token: 500 Internal Server Error: server sad",
            "other",
        ),
    ],
)
async def test_managed_refresh_failures_read_like_the_reference(
    tmp_path: Path, status: int, body: Any, message: str, info: str
) -> None:
    stored_chatgpt(tmp_path)
    m = manager(tmp_path, lambda request: httpx.Response(status, json=body))
    with pytest.raises(ModelError) as caught:
        await m.refresh_after_unauthorized(m.generation)
    assert (caught.value.message, caught.value.codex_error_info) == (message, info)
    assert json.loads((tmp_path / "auth.json").read_text())["tokens"]["access_token"] == "at-file"


async def test_logout_forgets_external_tokens_and_removes_auth_json(tmp_path: Path) -> None:
    m = manager(tmp_path)
    await m.login_api_key("sk-1")
    external(m)
    assert m.mode == "chatgptAuthTokens"
    with pytest.raises(AuthError, match="External auth is active"):
        m.check_api_key_login()
    await m.logout()
    assert m.auth is None and not (tmp_path / "auth.json").exists()


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://chatgpt.com/backend-api/", "https://chatgpt.com/backend-api/wham/usage"),
        ("https://chatgpt.com", "https://chatgpt.com/backend-api/wham/usage"),
        ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/api/codex/usage"),
    ],
)
def test_usage_endpoint_follows_the_base_url(tmp_path: Path, base: str, url: str) -> None:
    assert manager(tmp_path, chatgpt_base_url=base).usage_url() == url


async def test_rate_limits_map_the_usage_payload_and_report_its_errors(tmp_path: Path) -> None:
    payloads: list[tuple[int, bytes]] = [
        (
            200,
            json.dumps(
                {
                    "plan_type": "education",
                    "rate_limit": {
                        "allowed": True,
                        "limit_reached": False,
                        "primary_window": {
                            "used_percent": 5,
                            "limit_window_seconds": 604799,
                            "reset_after_seconds": 1,
                            "reset_at": 7,
                        },
                        "secondary_window": {
                            "used_percent": 0,
                            "limit_window_seconds": 0,
                            "reset_after_seconds": 0,
                            "reset_at": 0,
                        },
                    },
                    "credits": None,
                }
            ).encode(),
        ),
        (200, b'{"nope": 1}'),
        (404, b"gone"),
    ]

    def usage(request: httpx.Request) -> httpx.Response:
        status, body = payloads.pop(0)
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    m = manager(tmp_path, usage, chatgpt_base_url="https://backend.test/backend-api")
    with pytest.raises(AuthError, match=re.escape(auth_mod.MSG_NO_AUTH_RATE_LIMITS)):
        await m.read_rate_limits(user_agent="ua")
    external(m)
    assert await m.read_rate_limits(user_agent="ua") == {
        "primary": {"usedPercent": 5, "windowDurationMins": 10080, "resetsAt": 7},
        "secondary": {"usedPercent": 0, "windowDurationMins": None, "resetsAt": 0},
        "credits": None,
        "planType": "edu",
    }
    with pytest.raises(AuthError) as caught:
        await m.read_rate_limits(user_agent="ua")
    assert caught.value.code == -32603
    assert caught.value.message == (
        "failed to fetch codex rate limits: Decode error for https://backend.test/backend-api/wham/usage: "
        'missing field `plan_type`; content-type=application/json; body={"nope": 1}'
    )
    with pytest.raises(AuthError) as caught:
        await m.read_rate_limits(user_agent="ua")
    assert caught.value.message == (
        "failed to fetch codex rate limits: GET https://backend.test/backend-api/wham/usage failed: "
        "404 Not Found; content-type=application/json; body=gone"
    )


# --------------------------------------------------------------------------------------------------
# The browser login's pieces
# --------------------------------------------------------------------------------------------------


def test_authorize_url_has_the_reference_parameters_in_order() -> None:
    pkce = Pkce("verifier", "challenge")
    options = LoginOptions(originator="my app", forced_workspace_id="org-1")
    url = authorize_url(options, redirect_uri="http://localhost:1455/auth/callback", pkce=pkce, state="st")
    assert url == (
        "https://auth.openai.com/oauth/authorize?response_type=code&client_id=app_EMoamEEZ73f0CkXaXp7hrann"
        "&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback"
        "&scope=openid%20profile%20email%20offline_access&code_challenge=challenge&code_challenge_method=S256"
        "&id_token_add_organizations=true&codex_cli_simplified_flow=true&state=st&originator=my%20app"
        "&allowed_workspace_id=org-1"
    )


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    pkce = Pkce.generate()
    assert len(pkce.verifier) == 86
    digest = base64.urlsafe_b64encode(hashlib.sha256(pkce.verifier.encode()).digest()).rstrip(b"=")
    assert pkce.challenge == digest.decode()
    assert pkce.verifier not in repr(pkce)


def test_workspace_restriction_messages() -> None:
    assert workspace_error(None, "org-x") is None
    assert workspace_error("org-x", "org-x") is None
    assert workspace_error("org-f", "org-x") == "Login is restricted to workspace id org-f."
    assert workspace_error("org-f", None) == (
        "Login is restricted to a specific workspace, but the token did not include an "
        "chatgpt_account_id claim."
    )


def test_login_options_come_from_the_environment() -> None:
    options = LoginOptions.from_env(
        {"CODEX_APP_SERVER_LOGIN_ISSUER": "http://127.0.0.1:9/", "CODEX_APP_SERVER_LOGIN_PORT": "0"},
        originator="o",
        forced_workspace_id=None,
    )
    assert (options.issuer, options.port) == ("http://127.0.0.1:9", 0)
    assert LoginOptions.from_env({}, originator="o", forced_workspace_id=None).port == 1455


async def start_login(tmp_path: Path) -> BrowserLogin:
    options = LoginOptions(originator="t", port=0, issuer="https://issuer.test")
    client = httpx.AsyncClient(transport=httpx.MockTransport(unreachable))
    return await BrowserLogin.start(options, manager=manager(tmp_path), http=client)


async def get(port: int, path: str) -> tuple[int, str]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


async def assert_closed(port: int) -> None:
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)


async def test_cancelled_login_shuts_its_callback_server(nursery: trio.Nursery, tmp_path: Path) -> None:
    login = await start_login(tmp_path)
    query = {k: v[0] for k, v in parse_qs(urlsplit(login.auth_url).query).items()}
    assert query["redirect_uri"] == f"http://localhost:{login.port}/auth/callback"
    outcome: list[str | None] = []

    async def run() -> None:
        outcome.append(await login.run())

    nursery.start_soon(run)
    assert await get(login.port, "/auth/callback?code=x&state=forged") == (400, "State mismatch")
    assert await get(login.port, f"/auth/callback?state={query['state']}") == (
        400,
        "Missing authorization code",
    )
    assert await get(login.port, "/success") == (400, MSG_NOT_COMPLETED)
    assert await get(login.port, "/elsewhere") == (404, "Not Found")
    login.cancel()
    await login.done.wait()
    assert outcome == [MSG_NOT_COMPLETED]
    await assert_closed(login.port)


async def test_get_cancel_ends_the_login(nursery: trio.Nursery, tmp_path: Path) -> None:
    login = await start_login(tmp_path)
    outcome: list[str | None] = []

    async def run() -> None:
        outcome.append(await login.run())

    nursery.start_soon(run)
    assert await get(login.port, "/cancel") == (200, MSG_CANCELLED)
    await login.done.wait()
    assert outcome == [MSG_CANCELLED]
    await assert_closed(login.port)


async def test_an_abandoned_login_times_out_after_10_minutes(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    login = await start_login(tmp_path)
    started = trio.current_time()
    assert await login.run() == MSG_TIMED_OUT
    assert trio.current_time() - started == pytest.approx(600)
    await assert_closed(login.port)


async def test_a_login_whose_task_is_cancelled_still_closes_its_port(tmp_path: Path) -> None:
    login = await start_login(tmp_path)
    with trio.move_on_after(0.05):
        await login.run()
    assert login.done.is_set()
    await assert_closed(login.port)


def test_tokens_never_show_in_reprs() -> None:
    tokens = ChatgptTokens(parse_id_token(id_token()), "at-secret", "rt-secret", "org-x")
    shown = repr(Auth("chatgpt", api_key="sk-secret", tokens=tokens))
    for secret in ("at-secret", "rt-secret", "sk-secret", "eyJ"):
        assert secret not in shown
