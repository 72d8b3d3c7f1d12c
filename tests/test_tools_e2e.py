"""Tools end to end: the mock model calls a tool, codex-trio runs it (the real process, file edits,
server→client requests), streams the items, and sends the result back upstream. Compared with the
reference's captures (tests/fixtures/reference_captures) where one exists; every message is checked
against the protocol schema by the harness.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from e2e_util import agent, capture_turn, skeleton

from codex_trio.testing import mock_responses as mr

Message = dict[str, Any]


def params_of(messages: list[Message], method: str) -> list[Message]:
    return [m["params"] for m in messages if m.get("method") == method and "id" not in m]


def items(messages: list[Message], method: str, kind: str) -> list[Message]:
    return [p["item"] for p in params_of(messages, method) if p["item"]["type"] == kind]


def v2_only(messages: list[Message]) -> list[Message]:
    return [
        m
        for m in messages
        if not str(m.get("method", "")).startswith("codex/event/")
        and m.get("method") not in ("account/rateLimits/updated", "thread/tokenUsage/updated")
    ]


async def test_shell_runs_streams_and_reports_like_the_reference(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(
            mr.function_call("shell", {"command": ["bash", "-lc", "echo hi"]}, call_id="call_shell_1"),
            mr.text("The command printed hi."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        turn = await server.turn(thread_id, "Run echo hi")
        ours = [s for s in skeleton(v2_only(turn)) if s != "item/agentMessage/delta"]
        reference = capture_turn("shell_turn.jsonl", 2)
        theirs = [s for s in skeleton(v2_only(reference)) if s != "item/agentMessage/delta"]
        assert ours == theirs
        started = items(turn, "item/started", "commandExecution")[0]
        assert started == {
            "type": "commandExecution",
            "id": "call_shell_1",
            "command": "bash -lc 'echo hi'",
            "cwd": str(tmp_path / "work"),
            "processId": None,
            "status": "inProgress",
            "commandActions": [{"type": "unknown", "command": "echo hi"}],
            "aggregatedOutput": None,
            "exitCode": None,
            "durationMs": None,
        }
        assert [d["delta"] for d in params_of(turn, "item/commandExecution/outputDelta")] == ["hi\n"]
        done = items(turn, "item/completed", "commandExecution")[0]
        assert (done["status"], done["aggregatedOutput"], done["exitCode"]) == ("completed", "hi\n", 0)
        second = mock.responses_requests[1]
        output = json.loads(second.call_output("call_shell_1")["output"])
        assert output["output"] == "hi\n" and output["metadata"]["exit_code"] == 0
