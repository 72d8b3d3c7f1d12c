"""End-to-end tests of the Responses API mock, through httpx on real loopback sockets."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
import trio
import trio.testing
import trustme

from codex_trio.testing import mock_responses as mr

USER_BODY = {
    "model": "gpt-test",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "x"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi there"}]},
    ],
    "stream": True,
}


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs; checks the event line matches the data's type."""
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        assert lines[0].startswith("event: ")
        assert lines[1].startswith("data: ")
        name = lines[0][len("event: ") :]
        data = json.loads(lines[1][len("data: ") :])
        assert data["type"] == name
        events.append((name, data))
    return events


def client(**kwargs: Any) -> httpx.AsyncClient:
    # trust_env=False: a proxy configured in the environment must not intercept loopback calls.
    return httpx.AsyncClient(trust_env=False, timeout=10, **kwargs)


async def post_events(
    mock: mr.MockResponses, body: dict[str, Any] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    async with client() as http:
        reply = await http.post(f"{mock.base_url}/responses", json=body or USER_BODY)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    return parse_sse(reply.text)


def names(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [name for name, _ in events]


async def test_text_stream_parses_back_to_the_scripted_reply() -> None:
    async with mr.open_mock_responses(
        mr.text("Hello wörld, how are you?", item_id="msg_1", usage=mr.Usage(10, 5, 2, 1))
    ) as mock:
        assert mock.base_url == f"http://127.0.0.1:{mock.port}/v1"
        events = await post_events(mock)

    assert names(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 5,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    deltas = [d for n, d in events if n == "response.output_text.delta"]
    assert [d["delta"] for d in deltas] == ["Hello ", "wörld, ", "how ", "are ", "you?"]
    assert {(d["item_id"], d["output_index"], d["content_index"]) for d in deltas} == {
        ("msg_1", 0, 0)
    }
    added = events[2][1]["item"]
    assert added == {
        "id": "msg_1",
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }
    done = events[-2][1]["item"]
    assert done["status"] == "completed"
    assert done["content"][0]["text"] == "Hello wörld, how are you?"
    final = events[-1][1]["response"]
    assert final["status"] == "completed"
    assert final["model"] == "gpt-test"
    assert final["id"] == events[0][1]["response"]["id"]
    assert final["id"].startswith("resp_")
    assert final["output"] == [done]
    assert final["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 15,
    }


async def test_text_chunking_options() -> None:
    async with mr.open_mock_responses(
        mr.text("abcdefg", chunks=3), mr.text(chunks=["a", "bc"]), mr.text("", usage=None)
    ) as mock:
        even = await post_events(mock)
        given = await post_events(mock)
        empty = await post_events(mock)

    def deltas(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
        return [d["delta"] for n, d in events if n == "response.output_text.delta"]

    assert deltas(even) == ["abc", "de", "fg"]
    assert deltas(given) == ["a", "bc"]
    assert deltas(empty) == []
    assert empty[-1][1]["response"]["usage"] is None
    with pytest.raises(ValueError):
        mr.text("abc", chunks=["a", "b"])


async def test_function_call_streams_arguments() -> None:
    call = mr.function_call("shell", {"command": ["bash", "-lc", "echo hi"]}, chunks=3)
    call_id = call.items[0].call_id
    async with mr.open_mock_responses(call) as mock:
        events = await post_events(mock)

    arguments = '{"command":["bash","-lc","echo hi"]}'
    assert names(events)[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = events[2][1]["item"]
    assert added["type"] == "function_call"
    assert added["arguments"] == ""
    assert added["id"].startswith("fc_")
    assert "".join(d["delta"] for n, d in events if n.endswith("arguments.delta")) == arguments
    done = events[-2][1]["item"]
    assert done == {
        "id": added["id"],
        "type": "function_call",
        "status": "completed",
        "arguments": arguments,
        "call_id": call_id,
        "name": "shell",
    }
    assert call_id.startswith("call_")


async def test_custom_tool_call_and_composed_response() -> None:
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
    scripted = mr.response(
        mr.reasoning(["Think", "ing"], ["raw"], encrypted_content="opaque"),
        mr.custom_tool_call("apply_patch", patch, call_id="call_p"),
        mr.function_call("shell", "{}", call_id="call_a"),
        mr.function_call("shell", "{}", call_id="call_b"),
        mr.text("done"),
    )
    async with mr.open_mock_responses(scripted) as mock:
        events = await post_events(mock)

    done_items = [d["item"] for n, d in events if n == "response.output_item.done"]
    assert [item["type"] for item in done_items] == [
        "reasoning",
        "custom_tool_call",
        "function_call",
        "function_call",
        "message",
    ]
    assert [d["output_index"] for n, d in events if n == "response.output_item.done"] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert done_items[0]["summary"] == [{"type": "summary_text", "text": "Thinking"}]
    assert done_items[0]["content"] == [{"type": "reasoning_text", "text": "raw"}]
    assert done_items[0]["encrypted_content"] == "opaque"
    summary_deltas = [d for n, d in events if n == "response.reasoning_summary_text.delta"]
    assert [(d["delta"], d["summary_index"]) for d in summary_deltas] == [
        ("Think", 0),
        ("ing", 0),
    ]
    assert "response.reasoning_summary_part.added" in names(events)
    assert done_items[1]["input"] == patch
    assert done_items[1]["call_id"] == "call_p"
    assert [item.get("call_id") for item in done_items[2:4]] == ["call_a", "call_b"]
    assert events[-1][1]["response"]["output"] == done_items


async def test_reasoning_summary_parts_and_encrypted_content_on_request() -> None:
    body = {**USER_BODY, "include": ["reasoning.encrypted_content"]}
    async with mr.open_mock_responses(
        mr.reasoning(summary_parts=[["a", "b"], ["c"]]), mr.reasoning(["x"])
    ) as mock:
        asked = await post_events(mock, body)
        plain = await post_events(mock)

    deltas = [d for n, d in asked if n == "response.reasoning_summary_text.delta"]
    assert [(d["delta"], d["summary_index"]) for d in deltas] == [("a", 0), ("b", 0), ("c", 1)]
    item = asked[-2][1]["item"]
    assert item["summary"] == [
        {"type": "summary_text", "text": "ab"},
        {"type": "summary_text", "text": "c"},
    ]
    assert isinstance(item["encrypted_content"], str)
    assert "content" not in item
    assert asked[-1][1]["response"]["usage"]["output_tokens_details"] == {"reasoning_tokens": 3}
    assert "encrypted_content" not in plain[-2][1]["item"]


async def test_failed_and_incomplete_end_events() -> None:
    async with mr.open_mock_responses(
        mr.failed({"code": "context_length_exceeded", "message": "too long"}),
        mr.incomplete("max_output_tokens", mr.text("partial")),
    ) as mock:
        failed = await post_events(mock)
        incomplete = await post_events(mock)

    assert names(failed) == ["response.created", "response.in_progress", "response.failed"]
    assert failed[-1][1]["response"]["status"] == "failed"
    assert failed[-1][1]["response"]["error"] == {
        "code": "context_length_exceeded",
        "message": "too long",
    }
    assert names(incomplete)[-1] == "response.incomplete"
    final = incomplete[-1][1]["response"]
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["content"][0]["text"] == "partial"


async def test_http_error_statuses_and_headers() -> None:
    limits = mr.rate_limit_headers(
        primary_used_percent=12.5, primary_window_minutes=300, credits_has_credits=True
    )
    async with mr.open_mock_responses(
        mr.usage_limit_reached(plan_type="plus", resets_at=1_900_000_000, headers=limits),
        mr.rate_limit_exceeded(),
        mr.http_error(500, "upstream exploded"),
        mr.http_error(400, mr.error_body("Bad thing")),
        mr.http_error(401, mr.error_body("bad key", code="invalid_api_key")),
        mr.text("ok").with_headers(limits),
    ) as mock, client() as http:
        url = f"{mock.base_url}/responses"
        replies = [await http.post(url, json=USER_BODY) for _ in range(6)]

    usage, throttled, server, bad, unauthorized, ok = replies
    assert usage.status_code == 429
    assert usage.json()["error"]["type"] == "usage_limit_reached"
    assert usage.json()["error"]["plan_type"] == "plus"
    assert usage.json()["error"]["resets_at"] == 1_900_000_000
    assert usage.headers["x-codex-primary-used-percent"] == "12.5"
    assert usage.headers["x-codex-primary-window-minutes"] == "300"
    assert usage.headers["x-codex-credits-has-credits"] == "true"
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "rate_limit_exceeded"
    assert (server.status_code, server.text) == (500, "upstream exploded")
    assert bad.status_code == 400
    assert bad.json() == {
        "error": {
            "message": "Bad thing",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert unauthorized.status_code == 401
    assert ok.status_code == 200
    assert ok.headers["x-codex-primary-used-percent"] == "12.5"
    assert parse_sse(ok.text)[-1][0] == "response.completed"


async def test_requests_are_recorded_and_awaitable() -> None:
    async with mr.open_mock_responses() as mock, client() as http:
        arrived: list[list[mr.RecordedRequest]] = []

        async def waiter() -> None:
            arrived.append(await mock.wait_for_requests(2, path="responses", timeout=5))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            await http.get(f"{mock.base_url}/models?client_version=1.2.3")
            await http.post(
                f"{mock.base_url}/responses",
                json=USER_BODY,
                headers={"Authorization": "Bearer k", "Session_ID": "s-1"},
            )
            assert arrived == []
            await http.post(f"{mock.base_url}/responses", json={"input": []})
            await http.post(f"{mock.origin}/other", content=b"{not json")

        with pytest.raises(trio.TooSlowError):
            await mock.wait_for_requests(5, timeout=0.05)

    first, second = arrived[0]
    assert (first.method, first.path, first.query) == ("POST", "/v1/responses", "")
    assert first.headers["authorization"] == "Bearer k"
    assert first.headers["session_id"] == "s-1"
    assert first.body == USER_BODY
    assert first.last_user_text() == "hi there"
    assert first.message_texts("user") == ["first", "hi there"]
    assert second.body == {"input": []}
    models = mock.requests[0]
    assert (models.method, models.path) == ("GET", "/v1/models")
    assert models.query_params == {"client_version": ["1.2.3"]}
    assert mock.responses_requests == [first, second]
    malformed = mock.requests[3]
    assert (malformed.path, malformed.body, malformed.raw_body) == ("/other", None, b"{not json")
    assert len(mock.requests) == 4


async def test_default_responder_echoes_the_user_word_by_word() -> None:
    async with mr.open_mock_responses(mr.text("scripted first")) as mock:
        assert mock.pending == 1
        scripted = await post_events(mock)
        echoed = await post_events(mock)
        assert mock.pending == 0

    def reply(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
        return [d["delta"] for n, d in events if n == "response.output_text.delta"]

    assert "".join(reply(scripted)) == "scripted first"
    words = reply(echoed)
    assert "".join(words) == mr.friendly_reply("hi there")
    assert "".join(words).endswith("You said: hi there")
    assert len(words) == len("".join(words).split())


async def test_callable_responder_and_custom_default() -> None:
    def shout(request: mr.RecordedRequest) -> mr.Script:
        return mr.text((request.last_user_text() or "").upper())

    async with mr.open_mock_responses(shout, default=mr.text("fallback")) as mock:
        first = await post_events(mock)
        second = await post_events(mock)
    assert first[-1][1]["response"]["output"][0]["content"][0]["text"] == "HI THERE"
    assert second[-1][1]["response"]["output"][0]["content"][0]["text"] == "fallback"


async def test_unknown_routes_and_models() -> None:
    async with mr.open_mock_responses() as mock, client() as http:
        models = await http.get(f"{mock.base_url}/models?client_version=0.94.0")
        other = await http.get(f"{mock.origin}/elsewhere")
        wrong_method = await http.get(f"{mock.base_url}/responses")
    assert models.status_code == 404
    assert models.json()["error"]["message"] == "Invalid URL (GET /v1/models)"
    assert other.status_code == 404
    assert wrong_method.status_code == 404

    catalogue = {"models": [{"slug": "mock-model"}]}
    async with mr.open_mock_responses(models=catalogue, prefix="/api") as mock, client() as http:
        assert mock.base_url.endswith("/api")
        reply = await http.get(f"{mock.base_url}/models")
    assert reply.status_code == 200
    assert reply.json() == catalogue


async def test_stall_holds_the_stream_until_the_client_leaves() -> None:
    async with mr.open_mock_responses(mr.stall(after_events=3)) as mock, client() as http:
        received = b""
        async with http.stream("POST", f"{mock.base_url}/responses", json=USER_BODY) as reply:
            chunks = reply.aiter_raw()
            with trio.fail_after(5):
                while received.count(b"\n\n") < 3:
                    received += await chunks.__anext__()
            with trio.move_on_after(0.2) as silence:
                received += await chunks.__anext__()
            assert silence.cancelled_caught
        await mock.wait_for_client_disconnects(1, timeout=5)
    assert names(parse_sse(received.decode())) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ]


async def test_close_mid_stream_drops_the_connection() -> None:
    async with mr.open_mock_responses(mr.close_mid_stream(after_events=4)) as mock:
        async with client() as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post(f"{mock.base_url}/responses", json=USER_BODY)
        # The next request, on a new connection, is served normally.
        events = await post_events(mock)
    assert names(events)[-1] == "response.completed"


async def test_initial_delay_is_served_concurrently() -> None:
    delay = 0.3
    streams = 20
    async with mr.open_mock_responses(
        default=mr.echo_responder(initial_delay=delay)
    ) as mock, client(limits=httpx.Limits(max_connections=streams)) as http:
        finished: list[float] = []

        async def one() -> None:
            reply = await http.post(f"{mock.base_url}/responses", json=USER_BODY)
            assert parse_sse(reply.text)[-1][0] == "response.completed"
            finished.append(time.monotonic())

        start = time.monotonic()
        async with trio.open_nursery() as nursery:
            for _ in range(streams):
                nursery.start_soon(one)
    elapsed = max(finished) - start
    assert len(finished) == streams
    # Served one after another this would take streams * delay = 6 s.
    assert delay <= elapsed < delay * 4


async def test_delay_per_event_paces_the_stream() -> None:
    async with mr.open_mock_responses(mr.text("a b c", delay_per_event=0.02)) as mock:
        start = time.monotonic()
        events = await post_events(mock)
        elapsed = time.monotonic() - start
    # 2 + 1 + 1 + 3 + 3 + 1 events, each preceded by the delay.
    assert len(events) == 11
    assert elapsed >= 11 * 0.02


async def test_five_thousand_deltas_stream_quickly() -> None:
    async with mr.open_mock_responses(default=mr.echo_responder(deltas=5000)) as mock:
        start = time.monotonic()
        events = await post_events(mock)
        elapsed = time.monotonic() - start
    deltas = [d["delta"] for n, d in events if n == "response.output_text.delta"]
    assert len(deltas) == 5000
    assert "".join(deltas) == events[-1][1]["response"]["output"][0]["content"][0]["text"]
    # About 0.05 s on a quiet machine; the bound only catches a per-event write or sleep.
    assert elapsed < 3


async def test_tls_with_a_trusted_certificate() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async with mr.open_mock_responses(
        mr.text("secure hello"), ssl_context=server_context
    ) as mock, client(verify=client_context) as http:
        assert mock.base_url.startswith("https://127.0.0.1:")
        reply = await http.post(f"{mock.base_url}/responses", json=USER_BODY)
        again = await http.post(f"{mock.base_url}/responses", json=USER_BODY)
    assert reply.status_code == again.status_code == 200
    final = parse_sse(reply.text)[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == "secure hello"
    assert mock.connections == 1


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with mr.open_mock_responses(mr.text("one"), mr.http_error(500, "x")) as mock:
        async with client() as http:
            first = await http.post(f"{mock.base_url}/responses", json=USER_BODY)
            second = await http.post(f"{mock.base_url}/responses", json=USER_BODY)
            third = await http.get(f"{mock.base_url}/models")
        assert (first.status_code, second.status_code, third.status_code) == (200, 500, 404)
        assert len(mock.requests) == 3
        assert mock.connections == 1


async def test_malformed_http_gets_400() -> None:
    async with mr.open_mock_responses() as mock:
        stream = await trio.open_tcp_stream("127.0.0.1", mock.port)
        async with stream:
            await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
            reply = b""
            with trio.fail_after(5):
                while chunk := await stream.receive_some():
                    reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert mock.requests == []


async def test_only_loopback_addresses_are_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        async with mr.open_mock_responses(host="0.0.0.0"):
            pass


async def test_command_line_prints_base_url_and_serves() -> None:
    command = [sys.executable, "-m", "codex_trio.testing.mock_responses", "--deltas", "7"]
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            lambda task_status: trio.run_process(
                command, stdout=subprocess.PIPE, check=False, task_status=task_status
            )
        )
        try:
            assert process.stdout is not None
            line = b""
            with trio.fail_after(20):
                while not line.endswith(b"\n"):
                    chunk = await process.stdout.receive_some(1)
                    assert chunk, "the mock exited before printing its address"
                    line += chunk
            base_url = line.decode().strip()
            assert base_url.startswith("http://127.0.0.1:")
            assert base_url.endswith("/v1")
            async with client() as http:
                reply = await http.post(f"{base_url}/responses", json=USER_BODY)
            deltas = [n for n, _ in parse_sse(reply.text) if n == "response.output_text.delta"]
            assert len(deltas) == 7
        finally:
            process.terminate()
