"""The event projection (codex_trio.processors.projection) replayed against the reference server.

Each file in fixtures/reference_captures/ is the stdout of a real `codex app-server` 0.94.0 session
driven against the mock Responses API. Every `codex/event/<type>` notification in it is one internal
event; projecting its `msg` must give exactly that legacy notification followed by the v2
notifications the reference sent right after it. Every other v2 notification of the capture must be
accounted for by a request handler (see `_replay`); none may be left over.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from schema_check import ProtocolValidator, event_msg_types

from codex_trio.core import events as ev
from codex_trio.processors.projection import (
    LEGACY_ONLY_EVENT_TYPES,
    PROJECTED_EVENT_TYPES,
    Notification,
    ProjectionState,
    approval_completion,
    approval_request,
    codex_error_info_to_v2,
    legacy_notification,
    patch_changes_to_v2,
    project,
    rate_limits_to_v2,
    render_review_output,
    review_hint,
    round_half_away_from_zero,
    shlex_join,
    token_usage_to_v2,
    turn_item_to_v2,
    v2_notifications,
)

CAPTURES = Path(__file__).parent / "fixtures" / "reference_captures"
CAPTURE_FILES = sorted(CAPTURES.glob("*.jsonl"))

# v2 notifications the request handlers send themselves (after their response): never projected.
HANDLER_NOTIFICATIONS = frozenset({"thread/started", "turn/started"})

APPROVAL_REQUESTS = frozenset({"item/commandExecution/requestApproval", "item/fileChange/requestApproval"})

THREAD = "01a1fe8e-0000-7000-8000-000000000001"


def _load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _is_legacy(msg: dict[str, Any]) -> bool:
    return "id" not in msg and str(msg.get("method", "")).startswith("codex/event/")


def _is_projection(msg: dict[str, Any]) -> bool:
    """A v2 notification that may belong to the projection of the event before it."""
    return (
        "id" not in msg
        and "method" in msg
        and not _is_legacy(msg)
        and msg["method"] not in HANDLER_NOTIFICATIONS
    )


def _as_wire(notification: Notification) -> dict[str, Any]:
    method, params = notification
    return {"method": method, "params": params}


@dataclass
class Replay:
    events: int = 0
    v2_checked: int = 0
    event_types: set[str] = field(default_factory=set)
    v2_methods: set[str] = field(default_factory=set)
    approvals_checked: int = 0
    declines_checked: int = 0
    interrupt_responses_skipped: int = 0


def _replay(lines: list[dict[str, Any]], validator: ProtocolValidator) -> Replay:
    states: dict[str, ProjectionState] = {}
    stats = Replay()
    # The last approval event per thread, with its turn id: the server request and, on a refusal,
    # the early item/completed that follow it are built from it.
    pending_approval: dict[str, tuple[str, dict[str, Any]]] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if _is_legacy(line):
            params = line["params"]
            thread_id, turn_id, msg = params["conversationId"], params["id"], params["msg"]
            state = states.setdefault(thread_id, ProjectionState(thread_id))
            got = project(state, turn_id, msg)
            expected = [line]
            j = i + 1
            while j < len(lines) and _is_projection(lines[j]):
                expected.append(lines[j])
                j += 1
            if (
                msg["type"] == "turn_aborted"
                and j < len(lines)
                and lines[j].get("result") == {}
                and j + 1 < len(lines)
                and lines[j + 1].get("method") == "turn/completed"
            ):
                # Not a race: the reference answers the pending turn/interrupt request from its
                # turn_aborted handler, after the legacy notification and before turn/completed.
                # Our turn/interrupt handler does the same; the response is not the projection's.
                stats.interrupt_responses_skipped += 1
                j += 1
                while j < len(lines) and _is_projection(lines[j]):
                    expected.append(lines[j])
                    j += 1
            assert [_as_wire(n) for n in got] == expected, f"line {i + 1}: {msg['type']}"
            for notification in got:
                validator.check_server(_as_wire(notification))
            stats.events += 1
            stats.v2_checked += len(got) - 1
            stats.event_types.add(msg["type"])
            stats.v2_methods.update(method for method, _ in got[1:])
            if msg["type"] in ("exec_approval_request", "apply_patch_approval_request"):
                pending_approval[thread_id] = (turn_id, msg)
            i = j
            continue

        if "id" in line and line.get("method") in APPROVAL_REQUESTS:
            # A server->client request: the approval handler builds it from the approval event.
            thread_id = line["params"]["threadId"]
            turn_id, approval_msg = pending_approval[thread_id]
            assert approval_request(thread_id, approval_msg) == (line["method"], line["params"])
            validator.check_server(line)
            validator.observe_client({"id": line["id"], "result": {}})
            stats.approvals_checked += 1
            i += 1
            # A refused approval completes the item at once (status "declined"), before the core's
            # own end event; that notification comes from the approval handler.
            if i < len(lines) and lines[i].get("method") == "item/completed":
                state = states[thread_id]
                assert approval_completion(state, turn_id, approval_msg, "declined") == [
                    (lines[i]["method"], lines[i]["params"])
                ]
                stats.declines_checked += 1
                i += 1
            continue

        assert not _is_projection(line), f"line {i + 1}: v2 notification without an event: {line}"
        i += 1
    return stats


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=[p.stem for p in CAPTURE_FILES])
def test_replay_reference_capture(path: Path) -> None:
    stats = _replay(_load(path), ProtocolValidator(strict=False))
    assert stats.events > 0
    assert stats.v2_checked > 0


def test_captures_cover_the_projection() -> None:
    """The captures together exercise the projections that matter most to a client."""
    total = Replay()
    for path in CAPTURE_FILES:
        stats = _replay(_load(path), ProtocolValidator(strict=False))
        total.event_types |= stats.event_types
        total.v2_methods |= stats.v2_methods
        total.approvals_checked += stats.approvals_checked
        total.declines_checked += stats.declines_checked
        total.interrupt_responses_skipped += stats.interrupt_responses_skipped
    assert {
        "item/started",
        "item/completed",
        "item/agentMessage/delta",
        "item/reasoning/summaryTextDelta",
        "item/reasoning/summaryPartAdded",
        "item/reasoning/textDelta",
        "thread/tokenUsage/updated",
        "account/rateLimits/updated",
        "error",
        "turn/completed",
        "turn/plan/updated",
        "turn/diff/updated",
        "item/commandExecution/outputDelta",
        "item/fileChange/outputDelta",
        "thread/name/updated",
    } <= total.v2_methods
    assert {
        "turn_aborted",
        "stream_error",
        "exec_approval_request",
        "apply_patch_approval_request",
        "view_image_tool_call",
        "thread_rolled_back",
        "mcp_startup_complete",
    } <= total.event_types
    assert total.approvals_checked >= 4
    assert total.declines_checked >= 3
    assert total.interrupt_responses_skipped >= 2


# ---------------------------------------------------------------------------------------------
# The projection, event by event (shapes the captures do not reach)


def _state() -> ProjectionState:
    return ProjectionState(THREAD)


def _v2(state: ProjectionState, msg: dict[str, Any], turn_id: str = "7") -> list[Notification]:
    got = v2_notifications(state, turn_id, msg)
    validator = ProtocolValidator(strict=False)
    for notification in got:
        validator.check_server(_as_wire(notification))
    validator.check_server(_as_wire(legacy_notification(state.thread_id, turn_id, msg)))
    return got


def test_legacy_notification_shape() -> None:
    msg = {"type": "mcp_startup_complete", "ready": [], "failed": [], "cancelled": []}
    assert project(_state(), "", msg) == [
        ("codex/event/mcp_startup_complete", {"id": "", "msg": msg, "conversationId": THREAD})
    ]


def test_legacy_only_events_project_to_nothing() -> None:
    state = _state()
    for msg in (
        {"type": "warning", "message": "careful"},
        {"type": "task_started", "model_context_window": None, "collaboration_mode_kind": "custom"},
        {"type": "agent_message", "message": "hi"},
        {"type": "user_message", "message": "hi", "images": [], "local_images": [], "text_elements": []},
        {"type": "agent_reasoning", "text": "t"},
        {"type": "thread_rolled_back", "num_turns": 1},
        {
            "type": "exec_approval_request",
            "call_id": "c",
            "turn_id": "7",
            "command": ["ls"],
            "cwd": "/w",
            "parsed_cmd": [],
        },
        {"type": "web_search_begin", "call_id": "ws"},
    ):
        assert msg["type"] in LEGACY_ONLY_EVENT_TYPES
        assert _v2(state, msg) == []


def test_error_then_task_complete_fails_the_turn_once() -> None:
    state = _state()
    error = {"type": "error", "message": "boom", "codex_error_info": "internal_server_error"}
    turn_error = {"message": "boom", "codexErrorInfo": "internalServerError", "additionalDetails": None}
    assert _v2(state, error) == [
        ("error", {"error": turn_error, "willRetry": False, "threadId": THREAD, "turnId": "7"})
    ]
    done = {"type": "task_complete", "last_agent_message": None}
    assert _v2(state, done) == [
        (
            "turn/completed",
            {"threadId": THREAD, "turn": {"id": "7", "items": [], "status": "failed", "error": turn_error}},
        )
    ]
    # The error belonged to that turn only.
    assert _v2(state, done, "8")[0][1]["turn"] == {
        "id": "8",
        "items": [],
        "status": "completed",
        "error": None,
    }


def test_turn_aborted_is_interrupted_without_error() -> None:
    state = _state()
    _v2(state, {"type": "error", "message": "boom", "codex_error_info": None})
    assert _v2(state, {"type": "turn_aborted", "reason": "interrupted"}) == [
        (
            "turn/completed",
            {"threadId": THREAD, "turn": {"id": "7", "items": [], "status": "interrupted", "error": None}},
        )
    ]
    assert state.last_error is None


def test_rollback_failure_error_is_no_notification_and_no_turn_error() -> None:
    state = _state()
    msg = {"type": "error", "message": "cannot", "codex_error_info": "thread_rollback_failed"}
    assert _v2(state, msg) == []
    assert state.last_error is None


def test_stream_error_will_retry_and_does_not_fail_the_turn() -> None:
    state = _state()
    msg = {
        "type": "stream_error",
        "message": "Reconnecting... 1/5",
        "codex_error_info": {"response_stream_disconnected": {"http_status_code": 502}},
        "additional_details": "boom",
    }
    assert _v2(state, msg) == [
        (
            "error",
            {
                "error": {
                    "message": "Reconnecting... 1/5",
                    "codexErrorInfo": {"responseStreamDisconnected": {"httpStatusCode": 502}},
                    "additionalDetails": "boom",
                },
                "willRetry": True,
                "threadId": THREAD,
                "turnId": "7",
            },
        )
    ]
    assert (
        _v2(state, {"type": "task_complete", "last_agent_message": None})[0][1]["turn"]["status"]
        == "completed"
    )


def test_token_count_without_rate_limits() -> None:
    usage = {
        "input_tokens": 10,
        "cached_input_tokens": 5,
        "output_tokens": 7,
        "reasoning_output_tokens": 1,
        "total_tokens": 17,
    }
    msg = {
        "type": "token_count",
        "rate_limits": None,
        "info": {"total_token_usage": usage, "last_token_usage": usage, "model_context_window": 4096},
    }
    got = _v2(_state(), msg)
    assert [method for method, _ in got] == ["thread/tokenUsage/updated"]
    assert got[0][1]["tokenUsage"]["modelContextWindow"] == 4096
    assert _v2(_state(), {"type": "token_count", "info": None, "rate_limits": None}) == []


def test_file_change_started_once_and_its_output_is_a_file_change_delta() -> None:
    state = _state()
    changes = {
        "/w/b.txt": {"type": "delete", "content": "gone\n"},
        "/w/a.txt": {"type": "update", "unified_diff": "@@ -1 +1 @@\n-a\n+b\n", "move_path": "/w/c.txt"},
    }
    request = {"type": "apply_patch_approval_request", "call_id": "p1", "turn_id": "7", "changes": changes}
    started = _v2(state, request)
    assert [method for method, _ in started] == ["item/started"]
    assert started[0][1]["item"]["changes"] == [
        {
            "path": "/w/a.txt",
            "kind": {"type": "update", "move_path": "/w/c.txt"},
            "diff": "@@ -1 +1 @@\n-a\n+b\n\n\nMoved to: /w/c.txt",
        },
        {"path": "/w/b.txt", "kind": {"type": "delete"}, "diff": "gone\n"},
    ]
    # The begin event after an approved request starts nothing more.
    assert (
        _v2(
            state,
            {
                "type": "patch_apply_begin",
                "call_id": "p1",
                "turn_id": "7",
                "auto_approved": False,
                "changes": changes,
            },
        )
        == []
    )
    chunk = base64.b64encode("Success. ✓\n".encode()).decode()
    delta = {"type": "exec_command_output_delta", "call_id": "p1", "stream": "stdout", "chunk": chunk}
    assert _v2(state, delta) == [
        (
            "item/fileChange/outputDelta",
            {"threadId": THREAD, "turnId": "7", "itemId": "p1", "delta": "Success. ✓\n"},
        )
    ]
    end = {
        "type": "patch_apply_end",
        "call_id": "p1",
        "turn_id": "7",
        "stdout": "",
        "stderr": "bad",
        "success": False,
        "changes": changes,
    }
    assert _v2(state, end)[0][1]["item"]["status"] == "failed"
    # Once the patch ended, the same call id is no file change any more.
    assert _v2(state, delta)[0][0] == "item/commandExecution/outputDelta"


def test_invalid_utf8_output_is_replaced() -> None:
    chunk = base64.b64encode(b"ok \xff\n").decode()
    msg = {"type": "exec_command_output_delta", "call_id": "c", "stream": "stdout", "chunk": chunk}
    assert _v2(_state(), msg)[0][1]["delta"] == "ok \ufffd\n"


def test_output_chunks_made_here_keep_their_bytes_and_read_as_base64_everywhere_else() -> None:
    data = "é\n".encode() + b"\xff" + bytes(range(256))
    msg = ev.exec_command_output_delta("c", "stdout", data)
    # On the wire (the legacy notification) and in any JSON it is the base64 text...
    assert json.loads(json.dumps(msg))["chunk"] == base64.b64encode(data).decode("ascii")
    assert msg["chunk"] == base64.b64encode(data).decode("ascii")
    # ...and its v2 delta is the same as for a chunk decoded from that text.
    plain = {**msg, "chunk": str(msg["chunk"])}
    assert type(plain["chunk"]) is str
    assert _v2(_state(), msg) == _v2(_state(), plain)
    assert _v2(_state(), msg)[0][1]["delta"] == data.decode("utf-8", errors="replace")


def test_exec_command_end_failed_with_process_id() -> None:
    msg = {
        "type": "exec_command_end",
        "call_id": "c",
        "process_id": "42",
        "turn_id": "7",
        "command": ["bash", "-lc", "false"],
        "cwd": "/w",
        "parsed_cmd": [
            {"type": "read", "cmd": "cat a", "name": "a", "path": "/w/a"},
            {"type": "list_files", "cmd": "ls", "path": None},
            {"type": "search", "cmd": "rg x", "query": "x", "path": None},
        ],
        "source": "agent",
        "stdout": "",
        "stderr": "",
        "aggregated_output": "",
        "exit_code": 1,
        "duration": {"secs": 2, "nanos": 999_999_999},
        "formatted_output": "",
    }
    item = _v2(_state(), msg)[0][1]["item"]
    assert item == {
        "type": "commandExecution",
        "id": "c",
        "command": "bash -lc false",
        "cwd": "/w",
        "processId": "42",
        "status": "failed",
        "commandActions": [
            {"type": "read", "command": "cat a", "name": "a", "path": "/w/a"},
            {"type": "listFiles", "command": "ls", "path": None},
            {"type": "search", "command": "rg x", "query": "x", "path": None},
        ],
        "aggregatedOutput": None,
        "exitCode": 1,
        "durationMs": 2999,
    }


def test_terminal_interaction_plan_delta_compaction_deprecation_raw_item() -> None:
    state = _state()
    assert _v2(
        state, {"type": "terminal_interaction", "call_id": "c", "process_id": "9", "stdin": "y\n"}
    ) == [
        (
            "item/commandExecution/terminalInteraction",
            {"threadId": THREAD, "turnId": "7", "itemId": "c", "processId": "9", "stdin": "y\n"},
        )
    ]
    assert _v2(
        state, {"type": "plan_delta", "thread_id": THREAD, "turn_id": "7", "item_id": "p", "delta": "- a"}
    ) == [("item/plan/delta", {"threadId": THREAD, "turnId": "7", "itemId": "p", "delta": "- a"})]
    assert _v2(state, {"type": "context_compacted"}) == [
        ("thread/compacted", {"threadId": THREAD, "turnId": "7"})
    ]
    assert _v2(state, {"type": "deprecation_notice", "summary": "old", "details": None}) == [
        ("deprecationNotice", {"summary": "old", "details": None})
    ]
    item = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}
    assert _v2(state, {"type": "raw_response_item", "item": item}) == [
        ("rawResponseItem/completed", {"threadId": THREAD, "turnId": "7", "item": item})
    ]


def test_thread_name_cleared_omits_the_name() -> None:
    assert _v2(_state(), {"type": "thread_name_updated", "thread_id": THREAD, "thread_name": None}) == [
        ("thread/name/updated", {"threadId": THREAD})
    ]


def test_mcp_tool_call_items() -> None:
    state = _state()
    invocation = {"server": "docs", "tool": "search", "arguments": {"q": "x"}}
    started = _v2(state, {"type": "mcp_tool_call_begin", "call_id": "m", "invocation": invocation})
    assert started[0][1]["item"] == {
        "type": "mcpToolCall",
        "id": "m",
        "server": "docs",
        "tool": "search",
        "status": "inProgress",
        "arguments": {"q": "x"},
        "result": None,
        "error": None,
        "durationMs": None,
    }
    ok = {"content": [{"type": "text", "text": "found"}], "isError": True}
    end = {
        "type": "mcp_tool_call_end",
        "call_id": "m",
        "invocation": {"server": "docs", "tool": "search"},
        "duration": {"secs": 0, "nanos": 5_000_000},
        "result": {"Ok": ok},
    }
    item = _v2(state, end)[0][1]["item"]
    assert (item["status"], item["arguments"], item["durationMs"]) == ("failed", None, 5)
    assert item["result"] == {"content": [{"type": "text", "text": "found"}], "structuredContent": None}
    err = _v2(state, {**end, "result": {"Err": "server gone"}})[0][1]["item"]
    assert (err["status"], err["result"], err["error"]) == ("failed", None, {"message": "server gone"})


def test_collab_items() -> None:
    state = _state()
    spawned = _v2(
        state,
        {
            "type": "collab_agent_spawn_end",
            "call_id": "s",
            "sender_thread_id": THREAD,
            "new_thread_id": "t2",
            "prompt": "go",
            "status": "running",
        },
    )[0][1]["item"]
    assert spawned == {
        "type": "collabAgentToolCall",
        "id": "s",
        "tool": "spawnAgent",
        "status": "completed",
        "senderThreadId": THREAD,
        "receiverThreadIds": ["t2"],
        "prompt": "go",
        "agentsStates": {"t2": {"status": "running", "message": None}},
    }
    unspawned = _v2(
        state,
        {
            "type": "collab_agent_spawn_end",
            "call_id": "s",
            "sender_thread_id": THREAD,
            "new_thread_id": None,
            "prompt": "go",
            "status": "pending_init",
        },
    )[0][1]["item"]
    assert (unspawned["status"], unspawned["receiverThreadIds"], unspawned["agentsStates"]) == (
        "failed",
        [],
        {},
    )
    waited = _v2(
        state,
        {
            "type": "collab_waiting_end",
            "call_id": "w",
            "sender_thread_id": THREAD,
            "statuses": {"t2": {"completed": "done"}, "t3": {"errored": "x"}},
        },
    )[0][1]["item"]
    assert waited["status"] == "failed"
    assert waited["agentsStates"] == {
        "t2": {"status": "completed", "message": "done"},
        "t3": {"status": "errored", "message": "x"},
    }
    closing = _v2(
        state,
        {
            "type": "collab_close_begin",
            "call_id": "c",
            "sender_thread_id": THREAD,
            "receiver_thread_id": "t2",
        },
    )
    assert closing[0][0] == "item/started"
    assert closing[0][1]["item"]["tool"] == "closeAgent"


def test_review_mode_items() -> None:
    state = _state()
    entered = _v2(
        state,
        {
            "type": "entered_review_mode",
            "target": {"type": "commit", "sha": "0123456789abcdef", "title": "Fix it"},
        },
    )
    assert [method for method, _ in entered] == ["item/started", "item/completed"]
    assert entered[0][1]["item"] == {
        "type": "enteredReviewMode",
        "id": "7",
        "review": "commit 0123456: Fix it",
    }
    output = {
        "overall_correctness": "incorrect",
        "overall_explanation": "  Two issues.\n",
        "overall_confidence_score": 0.5,
        "findings": [
            {
                "title": "Bug",
                "body": "Line one\r\nLine two\n",
                "confidence_score": 0.9,
                "priority": 1,
                "code_location": {"absolute_file_path": "/w/a.py", "line_range": {"start": 3, "end": 4}},
            },
            {
                "title": "Nit",
                "body": "Style",
                "confidence_score": 0.1,
                "priority": 3,
                "code_location": {"absolute_file_path": "/w/b.py", "line_range": {"start": 1, "end": 1}},
            },
        ],
    }
    exited = _v2(state, {"type": "exited_review_mode", "review_output": output})
    assert exited[1][1]["item"]["review"] == (
        "Two issues.\n\nFull review comments:\n\n- Bug — /w/a.py:3-4\n  Line one\n  Line two\n\n"
        "- Nit — /w/b.py:1-1\n  Style"
    )
    assert render_review_output(None) == "Reviewer failed to output a response."
    assert review_hint({"type": "custom", "instructions": "  look at auth  "}) == "look at auth"
    assert review_hint({"type": "baseBranch", "branch": "main"}) == "changes against 'main'"


# ---------------------------------------------------------------------------------------------
# Conversion helpers


def test_turn_item_to_v2() -> None:
    assert turn_item_to_v2(
        {
            "type": "AgentMessage",
            "id": "m",
            "content": [{"type": "Text", "text": "Hello "}, {"type": "Text", "text": "there"}],
        }
    ) == {"type": "agentMessage", "id": "m", "text": "Hello there"}
    assert turn_item_to_v2(
        {
            "type": "UserMessage",
            "id": "u",
            "content": [
                {
                    "type": "text",
                    "text": "hi",
                    "text_elements": [{"byteRange": {"start": 0, "end": 2}, "placeholder": None}],
                },
                {"type": "image", "image_url": "data:image/png;base64,AA"},
                {"type": "local_image", "path": "/w/p.png"},
                {"type": "skill", "name": "s", "path": "/w/SKILL.md"},
                {"type": "mention", "name": "n", "path": "app://x"},
            ],
        }
    ) == {
        "type": "userMessage",
        "id": "u",
        "content": [
            {
                "type": "text",
                "text": "hi",
                "text_elements": [{"byteRange": {"start": 0, "end": 2}, "placeholder": None}],
            },
            {"type": "image", "url": "data:image/png;base64,AA"},
            {"type": "localImage", "path": "/w/p.png"},
            {"type": "skill", "name": "s", "path": "/w/SKILL.md"},
            {"type": "mention", "name": "n", "path": "app://x"},
        ],
    }
    assert turn_item_to_v2({"type": "Reasoning", "id": "r", "summary_text": ["a"], "raw_content": []}) == {
        "type": "reasoning",
        "id": "r",
        "summary": ["a"],
        "content": [],
    }
    assert turn_item_to_v2({"type": "Plan", "id": "p", "text": "1. x"}) == {
        "type": "plan",
        "id": "p",
        "text": "1. x",
    }
    assert turn_item_to_v2(
        {"type": "WebSearch", "id": "w", "query": "q", "action": {"type": "open_page", "url": "https://e.x"}}
    ) == {"type": "webSearch", "id": "w", "query": "q", "action": {"type": "openPage", "url": "https://e.x"}}
    assert turn_item_to_v2(
        {"type": "WebSearch", "id": "w", "query": "q", "action": {"type": "search", "query": "q"}}
    )["action"] == {"type": "search", "query": "q", "queries": None}
    assert turn_item_to_v2({"type": "ContextCompaction", "id": "c"}) == {
        "type": "contextCompaction",
        "id": "c",
    }
    with pytest.raises(ValueError):
        turn_item_to_v2({"type": "Bogus", "id": "x"})


def test_item_events_validate_against_the_schema() -> None:
    state = _state()
    for item in (
        {"type": "WebSearch", "id": "w", "query": "q", "action": {"type": "find_in_page"}},
        {"type": "Plan", "id": "p", "text": "x"},
        {"type": "ContextCompaction", "id": "c"},
    ):
        _v2(state, {"type": "item_completed", "thread_id": THREAD, "turn_id": "7", "item": item})


def test_codex_error_info_to_v2_covers_every_variant() -> None:
    units = {
        "context_window_exceeded": "contextWindowExceeded",
        "usage_limit_exceeded": "usageLimitExceeded",
        "internal_server_error": "internalServerError",
        "unauthorized": "unauthorized",
        "bad_request": "badRequest",
        "thread_rollback_failed": "threadRollbackFailed",
        "sandbox_error": "sandboxError",
        "other": "other",
    }
    for legacy, v2 in units.items():
        assert codex_error_info_to_v2(legacy) == v2
    for legacy, v2 in {
        "http_connection_failed": "httpConnectionFailed",
        "response_stream_connection_failed": "responseStreamConnectionFailed",
        "response_stream_disconnected": "responseStreamDisconnected",
        "response_too_many_failed_attempts": "responseTooManyFailedAttempts",
    }.items():
        assert codex_error_info_to_v2({legacy: {"http_status_code": 429}}) == {v2: {"httpStatusCode": 429}}
        assert codex_error_info_to_v2({legacy: {"http_status_code": None}}) == {v2: {"httpStatusCode": None}}
    assert codex_error_info_to_v2({"model_cap": {"model": "m", "reset_after_seconds": 30}}) == {
        "modelCap": {"model": "m", "reset_after_seconds": 30}
    }
    assert codex_error_info_to_v2(None) is None
    with pytest.raises(ValueError):
        codex_error_info_to_v2("bogus")
    validator = ProtocolValidator(strict=False)
    for info in [
        *units,
        {"model_cap": {"model": "m", "reset_after_seconds": None}},
        {"response_too_many_failed_attempts": {"http_status_code": 429}},
    ]:
        msg = {"type": "error", "message": "x", "codex_error_info": info}
        for notification in project(_state(), "1", msg):
            validator.check_server(_as_wire(notification))


def test_rate_limits_round_half_away_from_zero() -> None:
    assert [round_half_away_from_zero(v) for v in (12.5, 13.5, 0.49, 99.5, -2.5)] == [13, 14, 0, 100, -3]
    snapshot = {
        "primary": {"used_percent": 12.5, "window_minutes": 300, "resets_at": 1900000000},
        "secondary": {"used_percent": 40.0, "window_minutes": None, "resets_at": None},
        "credits": {"has_credits": True, "unlimited": False, "balance": "9.99"},
        "plan_type": "pro",
    }
    assert rate_limits_to_v2(snapshot) == {
        "primary": {"usedPercent": 13, "windowDurationMins": 300, "resetsAt": 1900000000},
        "secondary": {"usedPercent": 40, "windowDurationMins": None, "resetsAt": None},
        "credits": {"hasCredits": True, "unlimited": False, "balance": "9.99"},
        "planType": "pro",
    }


def test_token_usage_to_v2() -> None:
    total = {
        "input_tokens": 100,
        "cached_input_tokens": 25,
        "output_tokens": 50,
        "reasoning_output_tokens": 9,
        "total_tokens": 200,
    }
    last = {
        "input_tokens": 10,
        "cached_input_tokens": 5,
        "output_tokens": 7,
        "reasoning_output_tokens": 1,
        "total_tokens": 23,
    }
    assert token_usage_to_v2(
        {"total_token_usage": total, "last_token_usage": last, "model_context_window": None}
    ) == {
        "total": {
            "totalTokens": 200,
            "inputTokens": 100,
            "cachedInputTokens": 25,
            "outputTokens": 50,
            "reasoningOutputTokens": 9,
        },
        "last": {
            "totalTokens": 23,
            "inputTokens": 10,
            "cachedInputTokens": 5,
            "outputTokens": 7,
            "reasoningOutputTokens": 1,
        },
        "modelContextWindow": None,
    }


@pytest.mark.parametrize(
    ("argv", "joined"),
    [
        (["bash", "-lc", "echo hi"], "bash -lc 'echo hi'"),
        (["bash", "-lc", "true"], "bash -lc true"),
        (["echo", ""], "echo ''"),
        (["echo", "it's"], 'echo "it\'s"'),
        (["echo", "$HOME's"], "echo '$HOME'\"'s\""),
        (["printf", "a\\b"], 'printf "a\\\\b"'),
        (["echo", "^x"], "echo '^x'"),
        (["echo", "héllo"], "echo 'héllo'"),
        (["a=b", "x,y", "{z}"], "'a=b' 'x,y' '{z}'"),
        (["nul\x00"], "<command included NUL byte>"),
    ],
)
def test_shlex_join_matches_the_shlex_crate(argv: list[str], joined: str) -> None:
    assert shlex_join(argv) == joined


def test_patch_changes_to_v2_add() -> None:
    assert patch_changes_to_v2({"/w/new.txt": {"type": "add", "content": "x\n"}}) == [
        {"path": "/w/new.txt", "kind": {"type": "add"}, "diff": "x\n"}
    ]


def test_approval_completion_for_a_failed_request() -> None:
    state = _state()
    request = {
        "type": "exec_approval_request",
        "call_id": "c",
        "turn_id": "7",
        "command": ["rm", "-rf", "x"],
        "cwd": "/w",
        "parsed_cmd": [{"type": "unknown", "cmd": "rm -rf x"}],
    }
    [(method, params)] = approval_completion(state, "7", request, "failed")
    assert method == "item/completed"
    assert params["item"]["status"] == "failed"
    assert params["item"]["command"] == "rm -rf x"
    assert approval_request(THREAD, {"type": "warning", "message": "x"}) is None


def test_every_event_type_is_classified() -> None:
    """Each EventMsg type of the schema either has a v2 projection or is listed as legacy-only."""
    for event_type in sorted(event_msg_types()):
        assert (event_type in PROJECTED_EVENT_TYPES) != (event_type in LEGACY_ONLY_EVENT_TYPES), event_type
