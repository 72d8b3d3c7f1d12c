"""The server against misbehaving clients over websocket, end to end.

The real server runs as a subprocess listening on ``ws://127.0.0.1:0``
(``codex_trio.testing.harness.open_ws_server``); each test opens several clients (trio-websocket) and
checks what a client sees: answers to well-formed requests whatever else arrives on the same or other
connections, a bad connection closed on its own, bounded memory, and a clean exit on SIGTERM (status 0,
no traceback). Every message the server writes is validated against the protocol schema, per
connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import jwt
import pytest
import trio
from schema_check import ProtocolValidator

from codex_trio.testing import mock_responses as mr
from codex_trio.testing.harness import (
    MALFORMED_JSON_LINES,
    MIB,
    NON_MESSAGE_JSON_LINES,
    OVERLOADED,
    OVERLOADED_MESSAGE,
    TEXT,
    AnswerNormally,
    CloseStdinOnRequest,
    DisconnectOnRequest,
    PerMethod,
    Responder,
    WebSocketServer,
    WsClient,
    binary_junk,
    huge_request,
    open_ws_server,
    ws_frame,
)

REFRESH = "account/chatgptAuthTokens/refresh"


@asynccontextmanager
async def serve(**kwargs: Any) -> AsyncIterator[WebSocketServer]:
    async with open_ws_server(validator_factory=ProtocolValidator, **kwargs) as server:
        yield server


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def test_garbage_binary_partial_and_huge_frames_are_ignored_and_bad_connections_closed_alone() -> None:
    async with serve() as server, server.connect() as client, server.connect() as bystander:
        expected = {"userAgent": (await client.initialize())["userAgent"]}
        await bystander.initialize()

        # Text frames that are no JSON-RPC message get no answer; lines that are not UTF-8 cannot be
        # text frames and go as binary frames, which are ignored whatever they hold.
        for junk in (*MALFORMED_JSON_LINES, *NON_MESSAGE_JSON_LINES, b"", b" \n\t"):
            if is_utf8(junk):
                await client.send_text_frame(junk)
            else:
                await client.send_binary_frame(junk)
        await client.send_binary_frame(b'{"id":"bin","method":"getUserAgent"}')
        await client.send_binary_frame(binary_junk(256 * 1024, seed=7))
        assert await client.call_result("getUserAgent") == expected

        # 20 MiB of junk in one frame, then a 20 MiB request that must be answered.
        await client.send_text_frame(b"x" * (20 * MIB))
        reply = await client.call("getUserAgent", message=huge_request("big", "getUserAgent"), timeout=30)
        assert reply == {"id": "big", "result": expected}

        # One message in 3-byte fragments with pauses, cutting "è" in two.
        await client.send_in_pieces({"id": "pièces", "method": "getUserAgent"}, piece=3, pause=0.002)
        assert await client.receive() == {"id": "pièces", "result": expected}
        # Nothing answered the junk (no reply to ids 77-80 nor to the binary request).
        assert client.received_so_far() == []

        # A text frame that is not UTF-8 fails that connection (RFC 6455 §8.1), and no other. The
        # close frame is optional there (wsproto drops the connection), so 1006 counts too.
        async with server.connect() as broken:
            await broken.initialize()
            await broken.send_text_frame(b'{"id":1,"method":"\xff\xfe"}')
            assert await broken.drain(timeout=5) == []
            assert broken.close_code in (1006, 1007)
        # A client that drops its TCP connection in the middle of a frame...
        async with server.connect() as dropper:
            await dropper.initialize()
            await dropper.send_raw(ws_frame(TEXT, b'{"id":1,"method":"getUserAgent"}')[:12])
            await dropper.disconnect()
        # ...and one that leaves in the middle of a fragmented message, without a close frame.
        async with server.connect() as leaver:
            await leaver.send_raw(ws_frame(TEXT, b'{"id":1,"method":', fin=False))
            await leaver.disconnect()

        assert await bystander.call_result("getUserAgent") == {"userAgent": expected["userAgent"]}
        assert await client.call_result("getUserAgent") == expected
        assert bystander.received_so_far() == []
    # What clients sent is never echoed into the log (it may hold secrets).
    stderr = server.stderr_text()
    assert "x" * 64 not in stderr and "p" * 64 not in stderr
    assert "ignoring a binary websocket frame of 262145 bytes" in stderr


async def reply(client: WsClient) -> dict[str, Any]:
    """The next reply in the client's inbox (notifications skipped)."""
    while True:
        msg = await client.receive()
        if "id" in msg and "method" not in msg:
            return msg


async def silent_backend(*, task_status: trio.TaskStatus[str]) -> None:
    """An HTTP server that accepts connections and never answers: every request to it hangs."""

    async def hold(stream: trio.SocketStream) -> None:
        async with stream:
            with suppress(trio.BrokenResourceError):
                while await stream.receive_some():
                    pass

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    task_status.started(f"http://127.0.0.1:{port}")
    await trio.serve_listeners(hold, listeners)


async def test_floods_are_answered_in_order_with_bounded_memory_and_excess_work_is_refused(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    # account/rateLimits/read asks the ChatGPT backend, which here never answers: such requests stay
    # in flight, and the server must refuse them beyond its limit rather than pile them up.
    backend = await nursery.start(silent_backend)
    write_chatgpt_config(tmp_path, backend)
    async with serve(codex_home=tmp_path) as server, server.connect() as one, server.connect() as two:
        agent = (await one.initialize())["userAgent"]
        await two.initialize()
        baseline = server.peak_rss_kib()
        floods: dict[str, Any] = {}

        async def flood(name: str, client: WsClient) -> None:
            floods[name] = await client.flood(5000, "getUserAgent")

        async with trio.open_nursery() as clients:
            clients.start_soon(flood, "one", one)
            clients.start_soon(flood, "two", two)
        peak = server.peak_rss_kib()
        for result in floods.values():
            assert result.missing == 0 and result.in_order
            assert result.overloaded == [] and result.other_errors == []
            assert {r["result"]["userAgent"] for r in result.results} == {agent}
        assert baseline is not None and peak is not None
        assert peak - baseline < 32 * 1024, f"VmHWM grew by {peak - baseline} KiB"

        await login_with_tokens(one)
        stuck = await one.send_requests("account/rateLimits/read", count=300)
        refused = [await reply(one) for _ in range(300 - 256)]
        assert [r["id"] for r in refused] == stuck[256:]
        assert {json.dumps(r["error"]) for r in refused} == {
            json.dumps({"code": OVERLOADED, "message": OVERLOADED_MESSAGE})
        }
        # The limit is per connection: the other one is served as before, and so is this one's
        # immediate work.
        assert await two.call_result("getUserAgent") == {"userAgent": agent}
        assert await one.call_result("getUserAgent") == {"userAgent": agent}
    # Shutting down with 256 requests hanging is still a clean exit (checked by the harness).


async def test_a_client_that_stops_reading_is_disconnected_and_the_others_keep_their_latency() -> None:
    async with (
        serve() as server,
        server.connect(receive_buffer=4096, name="stalled") as stalled,
        server.connect(name="fast") as fast,
    ):
        # Every answer the stalled client gets carries its 4 KiB version string.
        await stalled.initialize(version="v" * 4096)
        await fast.initialize()
        await stalled.pause_reading()
        # Far more answers than the outbound queue (1024) and the kernel's buffers hold.
        ids = await stalled.send_requests("getUserAgent", count=4000)
        latencies = []
        with trio.fail_after(10):
            while "client stopped reading; disconnecting it" not in server.stderr_text():
                started = time.perf_counter()
                await fast.call_result("getUserAgent")
                latencies.append(time.perf_counter() - started)
        for _ in range(20):
            started = time.perf_counter()
            await fast.call_result("getUserAgent")
            latencies.append(time.perf_counter() - started)
        # Waiting for the stalled client took ~2 s (its answers may wait that long for room), and
        # none of it was spent by the fast client.
        assert len(latencies) > 40
        assert max(latencies) < 0.5, max(latencies)
        # Reading again, the stalled client gets whole answers, in order, up to where the server gave
        # up in the middle of a write; after that half-sent frame no close frame could parse, so the
        # connection was dropped (1006).
        stalled.resume_reading()
        rest = await stalled.drain(timeout=10)
        assert 0 < len(rest) < len(ids)
        assert [r["id"] for r in rest] == ids[: len(rest)]
        assert stalled.close_code == 1006


def id_token(account: str = "org-x") -> str:
    auth = {"chatgpt_plan_type": "pro", "chatgpt_user_id": "user-1", "chatgpt_account_id": account}
    claims = {"email": "user@example.com", "https://api.openai.com/auth": auth, "exp": 4102444800}
    return jwt.encode(claims, "a-test-signing-key-of-32-bytes!!", algorithm="HS256")


def write_chatgpt_config(codex_home: Path, base_url: str, chatgpt_base_url: str | None = None) -> None:
    """A mock provider that needs ChatGPT (or API key) auth, no retries."""
    (codex_home / "config.toml").write_text(
        'model = "mock-model"\n'
        'model_provider = "mock"\n'
        f"chatgpt_base_url = {json.dumps(chatgpt_base_url or base_url)}\n"
        "[model_providers.mock]\n"
        'name = "mock"\n'
        f"base_url = {json.dumps(base_url)}\n"
        'wire_api = "responses"\n'
        "requires_openai_auth = true\n"
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n",
        encoding="utf-8",
    )


async def login_with_tokens(client: WsClient) -> None:
    login = {"type": "chatgptAuthTokens", "idToken": id_token(), "accessToken": "at-1"}
    assert await client.call_result("account/login/start", login) == {"type": "chatgptAuthTokens"}
    await client.wait_notification("account/updated")


def turn_params(thread_id: str, text: str) -> dict[str, Any]:
    return {"threadId": thread_id, "input": [{"type": "text", "text": text, "text_elements": []}]}


@pytest.mark.parametrize(
    "leave", [DisconnectOnRequest(), CloseStdinOnRequest()], ids=["dropped", "closing-handshake"]
)
async def test_the_turn_owner_leaving_during_a_token_refresh_fails_that_turn_at_once_for_the_others(
    leave: Responder, tmp_path: Path
) -> None:
    expired = mr.http_error(401, mr.error_body("token expired", code="token_expired"))
    async with mr.open_mock_responses(expired, mr.text("after the owner left")) as mock:
        write_chatgpt_config(tmp_path, mock.base_url)
        async with (
            serve(codex_home=tmp_path, base_url=mock.base_url) as server,
            # The owner hangs up as soon as the server asks it for fresh tokens.
            server.connect(name="owner", responder=PerMethod({REFRESH: leave})) as owner,
            server.connect(name="watcher", responder=AnswerNormally()) as watcher,
        ):
            await owner.initialize()
            await watcher.initialize()
            await login_with_tokens(owner)
            thread_id = (await owner.call_result("thread/start", {"ephemeral": True}))["thread"]["id"]
            await watcher.call_result("thread/resume", {"threadId": thread_id})
            await owner.call_result("turn/start", turn_params(thread_id, "hi"))
            await owner.wait_server_request(REFRESH)
            asked = trio.current_time()
            done = await watcher.wait_notification("turn/completed", timeout=5)
            # Failed at once (not at the 10 s refresh timeout), with the reference's message.
            assert trio.current_time() - asked < 1
            await owner.drain(timeout=5)  # the owner's connection is over
            assert done["params"]["turn"]["status"] == "failed"
            error = done["params"]["turn"]["error"]
            assert error["message"] == "auth refresh request canceled: channel closed"
            assert [r.method for r in owner.server_requests] == [REFRESH]
            # The thread lives on for the other connection: its next turn runs to the end.
            after = len(watcher.notifications)
            await watcher.call_result("turn/start", turn_params(thread_id, "again"))
            done = await watcher.wait_notification("turn/completed", after=after, timeout=5)
            assert done["params"]["turn"]["status"] == "completed"
            deltas = [
                n["params"]["delta"]
                for n in watcher.notifications[after:]
                if n["method"] == "item/agentMessage/delta"
            ]
            assert "".join(deltas) == "after the owner left"
    assert "at-1" not in server.stderr_text()


async def test_sigterm_closes_every_client_with_going_away_and_exits_cleanly() -> None:
    async with serve(check_exit=False) as server, server.connect() as one, server.connect() as two:
        await one.initialize()
        await two.initialize()
        await one.send_requests("getUserAgent", count=500)
        await server.finish(timeout=5)
        for client in (one, two):
            await client.drain(timeout=5)
            assert (client.close_code, client.close_reason) == (1001, "server shutting down")
