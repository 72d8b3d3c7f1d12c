"""Turns end to end: codex-trio as a subprocess, the Responses API mocked on 127.0.0.1.

What a client sees of turn/start and turn/interrupt (streamed notifications, their order and shapes,
errors, retries) and what the model sees (the requests, with the history of earlier turns), compared
with the reference's captures in tests/fixtures/reference_captures/ where one exists: ids, timestamps and
texts differ, the structure and order must not. Every message the server writes is checked against the
protocol schema (tests/schema_check.py) by the harness.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import trio
from e2e_util import (
    agent,
    capture_turn,
    conversation,
    is_method,
    is_reply,
    methods,
    rollout_lines,
    skeleton,
    text_of,
)

from codex_trio.testing import mock_responses as mr

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
DELTA_EVENTS = {
    "codex/event/agent_message_content_delta",
    "item/agentMessage/delta",
    "codex/event/agent_message_delta",
}


def params_of(messages: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [m["params"] for m in messages if m.get("method") == method and "id" not in m]


def last_user_content(request: mr.RecordedRequest) -> list[dict[str, Any]]:
    users = [i for i in request.input_items() if i.get("type") == "message" and i.get("role") == "user"]
    content: list[dict[str, Any]] = users[-1]["content"]
    return content


def after_context(request: mr.RecordedRequest) -> list[tuple[str, str]]:
    """The conversation after the initial context (which ends with the environment context)."""
    talk = conversation(request.input_items())
    start = max(i for i, (role, text) in enumerate(talk) if text.startswith("<environment_context>"))
    return talk[start + 1 :]


async def test_text_turns_stream_like_the_reference_and_carry_the_history(tmp_path: Path) -> None:
    reply = "Hello from the mock: streamed word by word."
    async with (
        mr.open_mock_responses(mr.text(reply, item_id="msg_text_turn_1"), mr.text("Once more.")) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        started = await server.start_thread()
        thread_id = started["thread"]["id"]
        first = await server.turn(thread_id, "Say hello")

        assert skeleton(first) == skeleton(capture_turn("text_turn.jsonl", 2))
        assert first[0]["result"] == {"turn": {"id": "0", "items": [], "status": "inProgress", "error": None}}
        assert params_of(first, "turn/started") == [
            {"threadId": thread_id, "turn": first[0]["result"]["turn"]}
        ]
        user_item = params_of(first, "item/started")[0]
        assert user_item["item"]["type"] == "userMessage"
        assert user_item["item"]["content"] == [{"type": "text", "text": "Say hello", "text_elements": []}]
        assert (user_item["threadId"], user_item["turnId"]) == (thread_id, "0")
        agent_started = params_of(first, "item/started")[1]["item"]
        assert agent_started == {"type": "agentMessage", "id": "msg_text_turn_1", "text": ""}
        deltas = params_of(first, "item/agentMessage/delta")
        assert "".join(d["delta"] for d in deltas) == reply
        assert {(d["itemId"], d["turnId"]) for d in deltas} == {("msg_text_turn_1", "0")}
        assert params_of(first, "item/completed")[1]["item"] == {
            "type": "agentMessage",
            "id": "msg_text_turn_1",
            "text": reply,
        }
        usage = params_of(first, "thread/tokenUsage/updated")[0]
        assert usage["turnId"] == "0" and usage["tokenUsage"]["modelContextWindow"] is None
        assert usage["tokenUsage"]["total"] == usage["tokenUsage"]["last"]
        assert params_of(first, "turn/completed") == [
            {
                "threadId": thread_id,
                "turn": {"id": "0", "items": [], "status": "completed", "error": None},
            }
        ]

        second = await server.turn(thread_id, "And again")
        assert second[0]["result"]["turn"]["id"] == "1"
        assert params_of(second, "turn/completed")[0]["turn"]["status"] == "completed"

    one, two = mock.responses_requests
    assert one.headers["session_id"] == thread_id
    assert one.headers["originator"] == "harness"
    assert list(one.body) == [
        "model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls", "reasoning",
        "store", "stream", "include", "prompt_cache_key",
    ]  # fmt: skip
    assert one.body["prompt_cache_key"] == thread_id and one.body["model"] == "mock-model"
    assert one.body["reasoning"] is None and one.body["store"] is False and one.body["stream"] is True
    assert after_context(one) == [("user", "Say hello")]
    # The later request carries the whole conversation, the answer as the reference keeps it (no ids).
    assert two.input_items()[: len(one.input_items())] == one.input_items()
    assert two.input_items()[len(one.input_items()) :] == [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": reply}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "And again"}]},
    ]


async def test_image_inputs_and_per_turn_overrides(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "pixel.png").write_bytes(PNG)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    scripts = [mr.text(f"r{i}") for i in range(8)]
    async with mr.open_mock_responses(*scripts) as mock, agent(mock, tmp_path / "home", work) as server:
        thread_id = (await server.start_thread())["thread"]["id"]
        turn_ids = []

        async def turn(input: Any, **params: Any) -> list[dict[str, Any]]:
            messages = await server.turn(thread_id, input, **params)
            turn_ids.append(messages[0]["result"]["turn"]["id"])
            assert params_of(messages, "turn/completed")[0]["turn"]["status"] == "completed"
            return messages

        await turn("plain")
        images = [
            {"type": "text", "text": "look", "text_elements": []},
            {"type": "image", "url": "https://example.com/a.png"},
            {"type": "localImage", "path": str(work / "pixel.png")},
        ]
        looked = await turn(images)
        overrides = {
            "cwd": str(work / "sub"),
            "model": "other-model",
            "effort": "high",
            "summary": "detailed",
            "approvalPolicy": "on-request",
            "sandboxPolicy": {"type": "readOnly"},
        }
        await turn("overrides", outputSchema=schema, **overrides)
        await turn("after")
        mode = {"mode": "plan", "settings": {"model": "collab-model", "reasoning_effort": "low",
                                             "developer_instructions": "Plan only."}}  # fmt: skip
        collab = await turn("collab", collaborationMode=mode)
        await turn("last")
        await turn([{"type": "localImage", "path": str(work / "missing.png")}])
        await turn("think", model="gpt-5.2-codex", effort="high", summary="detailed")

        # Nothing to send: the turn ends at once, without a model call.
        empty = await server.turn(thread_id, [])
        assert methods(empty) == ["turn/started", "codex/event/task_complete", "turn/completed"]

    # An override is an operation of its own in the reference: it uses up a turn id.
    assert turn_ids == ["0", "1", "3", "4", "6", "7", "8", "10"]
    assert empty[0]["result"]["turn"]["id"] == "11"
    _plain, look, over, after, collab_req, last, missing, think = mock.responses_requests

    item = params_of(looked, "item/started")[0]["item"]
    assert item["content"] == [
        {"type": "text", "text": "look", "text_elements": []},
        {"type": "image", "url": "https://example.com/a.png"},
        {"type": "localImage", "path": str(work / "pixel.png")},
    ]
    legacy = params_of(looked, "codex/event/user_message")[0]["msg"]
    assert (legacy["message"], legacy["images"], legacy["local_images"]) == (
        "look",
        ["https://example.com/a.png"],
        [str(work / "pixel.png")],
    )
    assert last_user_content(look) == [
        {"type": "input_text", "text": "look"},
        {"type": "input_text", "text": "<image>"},
        {"type": "input_image", "image_url": "https://example.com/a.png"},
        {"type": "input_text", "text": "</image>"},
        {"type": "input_text", "text": "<image name=[Image #1]>"},
        {"type": "input_image", "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        {"type": "input_text", "text": "</image>"},
    ]

    # The overridden turn: its model and schema, and the model is told about the new cwd and permissions.
    assert over.body["model"] == "other-model"
    assert over.body["reasoning"] is None  # not a reasoning model: no effort or summary is sent
    assert over.body["text"] == {
        "format": {"type": "json_schema", "strict": True, "schema": schema, "name": "codex_output_schema"}
    }
    news = over.input_items()[len(look.input_items()) + 1 :]
    assert [(i["role"], text_of(i).split("\n")[0]) for i in news] == [
        ("user", "<environment_context>"),
        ("developer", "<permissions instructions>"),
        ("user", "overrides"),
    ]
    assert f"<cwd>{work / 'sub'}</cwd>" in text_of(news[0])
    assert "read-only" in text_of(news[1]) and "on-request" in text_of(news[1])
    # Overrides last; the output schema was for that turn only; nothing changed, nothing re-sent.
    assert after.body["model"] == "other-model" and "text" not in after.body
    assert after_context(after)[-2:] == [("assistant", "r2"), ("user", "after")]

    assert collab_req.body["model"] == "collab-model"
    assert after_context(collab_req)[-2:] == [
        ("developer", "<collaboration_mode>Plan only.</collaboration_mode>"),
        ("user", "collab"),
    ]
    assert params_of(collab, "codex/event/task_started")[0]["msg"]["collaboration_mode_kind"] == "plan"
    assert last.body["model"] == "collab-model"
    assert after_context(last)[-2:] == [("assistant", "r4"), ("user", "last")]

    note = text_of(missing.input_items()[-1])
    assert note.startswith("codex-trio could not read the local image at") and "missing.png" in note

    assert think.body["model"] == "gpt-5.2-codex"
    assert think.body["reasoning"] == {"effort": "high", "summary": "detailed"}
    assert think.body["include"] == ["reasoning.encrypted_content"]


async def test_interrupt_mid_stream(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(mr.stall(after_events=6), mr.text("After the interrupt.")) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        started = await server.start_thread()
        thread_id = started["thread"]["id"]
        request_id = await server.start_turn(thread_id, "stall")
        seen = await server.until(is_method("item/agentMessage/delta"))
        interrupt_id = await server.request("turn/interrupt", {"threadId": thread_id, "turnId": "0"})
        seen += await server.until(is_method("turn/completed"))
        await mock.wait_for_client_disconnects(1)
        again = await server.turn(thread_id, "again")

    assert is_reply(request_id)(seen[0])
    # The reference answers the interrupt between its legacy turn_aborted and turn/completed.
    tail = [m for m in seen if m.get("method") not in DELTA_EVENTS]
    reference = [m for m in capture_turn("interrupt_turn.jsonl", 2) if m.get("method") not in DELTA_EVENTS]
    assert skeleton(tail) == skeleton(reference)
    assert tail[-2] == {"id": interrupt_id, "result": {}}
    assert tail[-3]["params"]["msg"] == {"type": "turn_aborted", "reason": "interrupted"}
    assert tail[-1]["params"] == {
        "threadId": thread_id,
        "turn": {"id": "0", "items": [], "status": "interrupted", "error": None},
    }
    assert "error" not in methods(seen)

    # The interrupt used up an id; the model learns its previous turn was cut short.
    assert again[0]["result"]["turn"]["id"] == "2"
    assert params_of(again, "turn/completed")[0]["turn"]["status"] == "completed"
    talk = after_context(mock.responses_requests[1])
    assert [role for role, _ in talk] == ["user", "user", "user"]
    assert talk[0][1] == "stall" and talk[1][1].startswith("<turn_aborted>") and talk[2][1] == "again"

    lines = rollout_lines(started["thread"]["path"])
    events = [line["payload"]["type"] for line in lines if line["type"] == "event_msg"]
    assert "turn_aborted" in events
    aborted = [
        line
        for line in lines
        if line["type"] == "response_item" and text_of(line["payload"]).startswith("<turn_aborted>")
    ]
    assert len(aborted) == 1


async def test_turn_start_on_a_busy_thread_joins_the_running_turn(tmp_path: Path) -> None:
    scripts = [mr.text("first reply here", delay_per_event=0.08), mr.text("second"), mr.text("third")]
    async with (
        mr.open_mock_responses(*scripts) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        await server.start_turn(thread_id, "one")
        seen = await server.until(is_method("item/agentMessage/delta"))
        busy = await server.start_turn(thread_id, "two")
        seen += await server.until(is_method("turn/completed"))
        # The id answered for the joined input never completes.
        later = await server.quiet(0.3)
        third = await server.turn(thread_id, "three")

    reply = next(m for m in seen if is_reply(busy)(m))
    assert reply["result"] == {"turn": {"id": "1", "items": [], "status": "inProgress", "error": None}}
    index = seen.index(reply)
    assert seen[index + 1] == {
        "method": "turn/started",
        "params": {"threadId": thread_id, "turn": reply["result"]["turn"]},
    }
    # No item is reported for the joined input; the running turn makes another model call with it.
    users = [p["item"] for p in params_of(seen, "item/started") if p["item"]["type"] == "userMessage"]
    assert [u["content"][0]["text"] for u in users] == ["one"]
    completed = params_of(seen, "turn/completed")
    assert [c["turn"]["id"] for c in completed] == ["0"]
    assert params_of(seen, "codex/event/task_complete")[0]["msg"]["last_agent_message"] == "second"
    assert "turn/completed" not in methods(later)
    _first, joined, last = mock.responses_requests
    assert after_context(joined) == [("user", "one"), ("assistant", "first reply here"), ("user", "two")]
    assert third[0]["result"]["turn"]["id"] == "2"
    assert after_context(last)[-1] == ("user", "three")


async def test_upstream_errors_reach_the_client_as_the_reference_shapes_them(tmp_path: Path) -> None:
    # The scripts of the reference's capture, turn for turn, with no retries configured.
    scripts = [
        mr.http_error(500, mr.error_body("boom", error_type="server_error")),
        mr.rate_limit_exceeded(),
        mr.usage_limit_reached(resets_at=1900000000),
        mr.http_error(400, mr.error_body("Bad thing")),
        mr.failed("The model failed"),
        mr.failed({"code": "context_length_exceeded", "message": "too long"}),
        mr.incomplete("max_output_tokens", mr.text("partial")),
        mr.close_mid_stream(after_events=6),
        mr.http_error(401, mr.error_body("bad key", code="invalid_api_key")),
        mr.text("recovered").with_headers(
            mr.rate_limit_headers(
                primary_used_percent=12.5, primary_window_minutes=300, primary_reset_at=1900000000,
                secondary_used_percent=40, secondary_window_minutes=10080, secondary_reset_at=1900500000,
                credits_has_credits=True, credits_unlimited=False, credits_balance="9.99",
            )
        ),
    ]  # fmt: skip
    async with (
        mr.open_mock_responses(*scripts) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        turns = [await server.turn(thread_id, f"turn {i}") for i in range(len(scripts))]

    for index, ours in enumerate(turns):
        theirs = capture_turn("errors_turn.jsonl", index + 2)
        assert skeleton(ours) == skeleton(theirs), f"turn {index}"
        for method in ("error", "turn/completed", "account/rateLimits/updated"):
            assert [{k: v for k, v in p.items() if k != "threadId"} for p in params_of(ours, method)] == [
                {k: v for k, v in p.items() if k != "threadId"} for p in params_of(theirs, method)
            ], f"turn {index}: {method}"
    # A failed turn's user message (and any partial answer) stays in the history.
    assert after_context(mock.responses_requests[-1]) == [
        *[("user", f"turn {i}") for i in range(7)],
        ("assistant", "partial"),
        ("user", "turn 7"),
        ("user", "turn 8"),
        ("user", "turn 9"),
    ]


async def test_request_retries_then_stream_retries(tmp_path: Path) -> None:
    boom = mr.http_error(500, mr.error_body("boom", error_type="server_error"))
    scripts = [
        # request_max_retries = 1: a 500 is retried once, quietly.
        boom, mr.text("ok after 500"),
        # ... and twice in a row fails the turn (the stream retry then tries the request again).
        boom, boom, boom, boom,
        # A 429 is not retried at all.
        mr.rate_limit_exceeded(),
        # stream_max_retries = 1: a broken stream is retried once, announced with willRetry.
        mr.close_mid_stream(after_events=5), mr.text("ok after reconnecting"),
    ]  # fmt: skip
    async with (
        mr.open_mock_responses(*scripts) as mock,
        agent(
            mock, tmp_path / "home", tmp_path / "work", request_max_retries=1, stream_max_retries=1
        ) as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        quiet = await server.turn(thread_id, "t1")
        assert len(mock.responses_requests) == 2
        exhausted = await server.turn(thread_id, "t2")
        assert len(mock.responses_requests) == 6
        limited = await server.turn(thread_id, "t3")
        assert len(mock.responses_requests) == 7
        # A fresh thread, as in the reference's capture (no usage known yet).
        fresh = (await server.start_thread())["thread"]["id"]
        reconnected = await server.turn(fresh, "t4")
        assert len(mock.responses_requests) == 9

    assert "error" not in methods(quiet)
    assert params_of(quiet, "turn/completed")[0]["turn"]["status"] == "completed"

    high_demand = "We're currently experiencing high demand, which may cause temporary errors."
    errors = params_of(exhausted, "error")
    assert [(e["willRetry"], e["error"]["message"]) for e in errors] == [
        (True, "Reconnecting... 1/1"),
        (False, high_demand),
    ]
    assert errors[0]["error"] == {
        "message": "Reconnecting... 1/1",
        "codexErrorInfo": {"responseStreamDisconnected": {"httpStatusCode": None}},
        "additionalDetails": high_demand,
    }
    assert params_of(exhausted, "turn/completed")[0]["turn"]["error"] == {
        "message": high_demand,
        "codexErrorInfo": "internalServerError",
        "additionalDetails": None,
    }

    assert [e["error"]["codexErrorInfo"] for e in params_of(limited, "error")] == [
        {"responseTooManyFailedAttempts": {"httpStatusCode": 429}}
    ]

    # The reference's capture of the same scenario (a stream cut after 5 events, then a good one).
    assert skeleton(reconnected) == skeleton(capture_turn("retry_turn.jsonl", 2))
    notice = params_of(reconnected, "error")[0]
    assert notice["willRetry"] is True and notice["error"]["message"] == "Reconnecting... 1/1"
    assert notice["error"]["codexErrorInfo"] == {"responseStreamDisconnected": {"httpStatusCode": None}}
    assert notice["error"]["additionalDetails"].startswith("stream disconnected before completion: ")
    assert params_of(reconnected, "turn/completed")[0]["turn"]["status"] == "completed"


async def test_a_stalled_stream_is_an_error_after_the_idle_timeout(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(mr.stall(after_events=4), mr.text("fine")) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work", stream_idle_timeout_ms=300) as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        started = trio.current_time()
        stalled = await server.turn(thread_id, "wait")
        waited = trio.current_time() - started
        await mock.wait_for_client_disconnects(1)
        fine = await server.turn(thread_id, "again")

    assert 0.3 <= waited < 5
    assert skeleton(stalled) == skeleton(capture_turn("stall_turn.jsonl", 2))
    idle = "stream disconnected before completion: idle timeout waiting for SSE"
    assert params_of(stalled, "error") == [
        {
            "error": {"message": idle, "codexErrorInfo": "other", "additionalDetails": None},
            "willRetry": False,
            "threadId": params_of(stalled, "error")[0]["threadId"],
            "turnId": "0",
        }
    ]
    assert params_of(stalled, "turn/completed")[0]["turn"]["status"] == "failed"
    assert params_of(fine, "turn/completed")[0]["turn"]["status"] == "completed"
