"""The tools besides the shell, end to end: codex-trio as a subprocess, a scripted mock model calling
apply_patch, update_plan, request_user_input, view_image, dynamic and MCP resource tools (and tools
that don't exist), a client answering the server's requests. Each test checks what the client sees
(items, notifications, server requests) and what the model gets back in its next request, against
the reference's captures (tests/fixtures/reference_captures) and the probes of Codex 0.94.0 written
up in the project notes. Every message the server writes is checked against the protocol schema by
the harness.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import trio
from e2e_util import Agent, agent, capture_turn, is_method, is_reply, skeleton

from codex_trio.testing import mock_responses as mr

Message = dict[str, Any]
Answer = Callable[[Agent, Message], Awaitable[None]]

PLAN_MODE = {
    "mode": "plan",
    "settings": {"model": "mock-model", "reasoning_effort": None, "developer_instructions": None},
}
LOOKUP = {
    "name": "lookup",
    "description": "Look something up",
    "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}
SUMMARY = "Success. Updated the following files:\n"
FREEFORM_OUTPUT = re.compile(r"Exit code: (-?\d+)\nWall time: \d+(\.\d+)? seconds\nOutput:\n(.*)\Z", re.S)


def params_of(messages: Sequence[Message], method: str) -> list[Message]:
    return [m["params"] for m in messages if m.get("method") == method and "id" not in m]


def items(messages: Sequence[Message], method: str, kind: str) -> list[Message]:
    return [p["item"] for p in params_of(messages, method) if p["item"]["type"] == kind]


def server_requests(messages: Sequence[Message]) -> list[Message]:
    return [m for m in messages if "method" in m and "id" in m]


def v2_only(messages: Sequence[Message]) -> list[Message]:
    return [
        m
        for m in messages
        if not str(m.get("method", "")).startswith("codex/event/")
        and m.get("method") not in ("account/rateLimits/updated", "thread/tokenUsage/updated")
    ]


def shape(messages: Sequence[Message]) -> list[str]:
    """The skeleton of the v2 messages, without the agent message's word deltas (our mock chunks
    text differently from the one the captures were made with)."""
    return [s for s in skeleton(v2_only(messages)) if s != "item/agentMessage/delta"]


def completed_turn(messages: Sequence[Message]) -> Message:
    turn: Message = params_of(messages, "turn/completed")[-1]["turn"]
    return turn


def output_of(mock: mr.MockResponses, index: int, call_id: str) -> str:
    item = mock.responses_requests[index].call_output(call_id)
    assert item is not None, f"request {index} does not answer {call_id}"
    output: str = item["output"]
    return output


def png(width: int, height: int) -> bytes:
    """A valid RGB PNG (all black)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def run_turn(
    server: Agent, thread_id: str, text: str, answer: Answer | None = None, **params: Any
) -> list[Message]:
    """A whole turn (turn/start reply to turn/completed); each server request on the way is passed to
    ``answer``."""
    request_id = await server.start_turn(thread_id, text, **params)
    seen = await server.until(is_reply(request_id))
    assert "result" in seen[-1], seen[-1]
    turn_id = seen[-1]["result"]["turn"]["id"]
    done = is_method("turn/completed", lambda p: p["turn"]["id"] == turn_id)
    while True:
        seen += await server.until(lambda m: done(m) or ("method" in m and "id" in m))
        if done(seen[-1]):
            return seen
        assert answer is not None, f"unexpected server request {seen[-1]}"
        await answer(server, seen[-1])


def answer_with(result: Any) -> Answer:
    async def respond(server: Agent, request: Message) -> None:
        await server.server.respond(request["id"], result)

    return respond


def answer_error(message: str = "user went away") -> Answer:
    async def respond(server: Agent, request: Message) -> None:
        await server.server.respond_error(request["id"], -32000, message)

    return respond


# --------------------------------------------------------------------------------------------
# The tools offered


def _function(name: str, properties: Message, required: Sequence[str] = ()) -> Message:
    parameters: Message = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        parameters["required"] = list(required)
    return {"type": "function", "name": name, "strict": False, "parameters": parameters}


STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING}
ESCALATION = {"justification": STRING, "prefix_rule": STRINGS, "sandbox_permissions": STRING}
RUN = {"timeout_ms": {"type": "number"}, "workdir": STRING}

# The reference's tools (Codex 0.94.0, captured from its requests to a mock) without their prose:
# types, names, parameter schemas. The apply_patch grammar's text is not compared (ours is our own).
REFERENCE_TOOLS: dict[str, Message] = {
    "shell": _function("shell", {"command": STRINGS, **ESCALATION, **RUN}, ["command"]),
    "shell_command": _function(
        "shell_command", {"command": STRING, "login": {"type": "boolean"}, **ESCALATION, **RUN}, ["command"]
    ),
    "local_shell": {"type": "local_shell"},
    "list_mcp_resources": _function("list_mcp_resources", {"cursor": STRING, "server": STRING}),
    "list_mcp_resource_templates": _function(
        "list_mcp_resource_templates", {"cursor": STRING, "server": STRING}
    ),
    "read_mcp_resource": _function("read_mcp_resource", {"server": STRING, "uri": STRING}, ["server", "uri"]),
    "update_plan": _function(
        "update_plan",
        {
            "explanation": STRING,
            "plan": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"status": STRING, "step": STRING},
                    "required": ["step", "status"],
                    "additionalProperties": False,
                },
            },
        },
        ["plan"],
    ),
    "request_user_input": _function(
        "request_user_input",
        {
            "questions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "header": STRING,
                        "id": STRING,
                        "options": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"description": STRING, "label": STRING},
                                "required": ["label", "description"],
                                "additionalProperties": False,
                            },
                        },
                        "question": STRING,
                    },
                    "required": ["id", "header", "question", "options"],
                    "additionalProperties": False,
                },
            }
        },
        ["questions"],
    ),
    "apply_patch": {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark"}},
    "web_search": {"type": "web_search", "external_web_access": False},
    "view_image": _function("view_image", {"path": STRING}, ["path"]),
}
_COMMON = [
    "list_mcp_resources",
    "list_mcp_resource_templates",
    "read_mcp_resource",
    "update_plan",
    "request_user_input",
]
# Per model: the tools in order, and parallel_tool_calls.
REFERENCE_OFFER: dict[str, tuple[list[str], bool]] = {
    "mock-model": (["shell", *_COMMON, "web_search", "view_image"], False),
    "gpt-5.2-codex": (["shell_command", *_COMMON, "apply_patch", "web_search", "view_image"], True),
    "gpt-5.1-codex-max": (["shell_command", *_COMMON, "apply_patch", "web_search", "view_image"], False),
    "codex-mini-latest": (["local_shell", *_COMMON, "web_search", "view_image"], False),
}


def without_prose(value: Any, in_properties: bool = False) -> Any:
    """A tool entry with its descriptions left out (a property that happens to be called
    "description" stays), and the freeform grammar's text."""
    if isinstance(value, dict):
        return {
            k: without_prose(v, k == "properties" and not in_properties)
            for k, v in value.items()
            if in_properties or k not in ("description", "definition")
        }
    if isinstance(value, list):
        return [without_prose(v) for v in value]
    return value


async def test_tools_offered_per_model_match_the_reference_with_dynamic_tools_last(tmp_path: Path) -> None:
    models = list(REFERENCE_OFFER)
    async with (
        mr.open_mock_responses(*[mr.text("ok") for _ in models]) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        for model in models:
            thread_id = (await server.start_thread(model=model, dynamicTools=[LOOKUP]))["thread"]["id"]
            await server.turn(thread_id, "hi")
    mismatches: list[tuple[str, Any, Any]] = []
    for model, request in zip(models, mock.responses_requests, strict=True):
        body = request.body
        assert body["model"] == model
        *builtin, dynamic = body["tools"]
        names, parallel = REFERENCE_OFFER[model]
        assert [t.get("name", t["type"]) for t in builtin] == names, model
        assert body["parallel_tool_calls"] is parallel, model
        mismatches += [
            (model, without_prose(ours), theirs)
            for ours, theirs in zip(builtin, (REFERENCE_TOOLS[n] for n in names), strict=True)
            if without_prose(ours) != theirs
        ]
        # The declared tool goes last, its schema as the client gave it.
        assert dynamic == {
            "type": "function",
            "name": "lookup",
            "description": "Look something up",
            "strict": False,
            "parameters": LOOKUP["inputSchema"],
        }
        # The prose is ours, but there is some wherever the reference has a description.
        for tool in builtin:
            if tool["type"] in ("function", "custom"):
                assert tool.get("description"), tool["name"]
    assert mismatches == []


# The tools the reference offered a thread started with each legacy switch (in thread/start's config
# map or newConversation's params; see tests/fixtures/warnings/README.md).
TOOL_SWITCHES: dict[str, Message] = json.loads(
    (Path(__file__).parent / "fixtures" / "warnings" / "tool_switches.json").read_text(encoding="utf-8")
)


def offered(tools: Sequence[Message]) -> list[str]:
    """Tool names as the fixture writes them: the freeform ones marked, web search with its mode."""
    names = []
    for tool in tools:
        if tool["type"] == "web_search":
            names.append("web_search(live)" if tool["external_web_access"] else "web_search(cached)")
        else:
            names.append(tool.get("name", tool["type"]) + ("(custom)" if tool["type"] == "custom" else ""))
    return names


async def test_legacy_feature_switches_choose_the_tools_like_the_reference(tmp_path: Path) -> None:
    # The old names turn apply_patch and web search on and off as their features would; a model that
    # has apply_patch keeps it whatever they say.
    cases = list(TOOL_SWITCHES.items())
    async with (
        mr.open_mock_responses(*[mr.text("ok") for _ in cases]) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        for name, case in cases:
            if case["method"] == "thread/start":
                thread_id = (await server.start_thread(**case["params"]))["thread"]["id"]
                await server.turn(thread_id, name)
                continue
            started = await server.result("newConversation", case["params"])
            cid = started["conversationId"]
            await server.result("addConversationListener", {"conversationId": cid})
            items = [{"type": "text", "data": {"text": name}}]
            await server.result("sendUserMessage", {"conversationId": cid, "items": items})
            await server.until(is_method("codex/event/task_complete"))
    requests = mock.responses_requests
    assert [r.last_user_text() for r in requests] == [name for name, _ in cases]
    mismatches = [
        (name, offered(request.body["tools"]), case["tools"])
        for (name, case), request in zip(cases, requests, strict=True)
        if offered(request.body["tools"]) != case["tools"]
    ]
    assert mismatches == []


# --------------------------------------------------------------------------------------------
# apply_patch


FULL_PATCH = """*** Begin Patch
*** Add File: hello.txt
+hello
*** Update File: existing.txt
@@
 one
-two
+deux
*** Delete File: gone.txt
*** Update File: old.txt
*** Move to: sub/new.txt
@@
-old
+new
*** End Patch
"""


async def test_freeform_apply_patch_adds_updates_deletes_and_moves_like_the_reference(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "existing.txt").write_text("one\ntwo\n")
    (work / "gone.txt").write_text("bye\n")
    (work / "old.txt").write_text("old\n")
    async with (
        mr.open_mock_responses(
            mr.custom_tool_call("apply_patch", FULL_PATCH, call_id="call_patch"),
            mr.text("Patched."),
        ) as mock,
        agent(mock, tmp_path / "home", work) as server,
    ):
        thread_id = (await server.start_thread(model="gpt-5.2-codex"))["thread"]["id"]
        turn = await server.turn(thread_id, "patch")

    assert shape(turn) == shape(capture_turn("items_turn.jsonl", 4))
    summary = SUMMARY + "A hello.txt\nM existing.txt\nM sub/new.txt\nD gone.txt\n"
    started = items(turn, "item/started", "fileChange")
    completed = items(turn, "item/completed", "fileChange")
    assert len(started) == len(completed) == 1
    assert started[0]["id"] == completed[0]["id"] == "call_patch"
    assert (started[0]["status"], completed[0]["status"]) == ("inProgress", "completed")
    changes = {c["path"]: c for c in started[0]["changes"]}
    assert changes == {
        str(work / "hello.txt"): {
            "path": str(work / "hello.txt"),
            "kind": {"type": "add"},
            "diff": "hello\n",
        },
        str(work / "existing.txt"): {
            "path": str(work / "existing.txt"),
            "kind": {"type": "update", "move_path": None},
            "diff": "@@ -1,2 +1,2 @@\n one\n-two\n+deux\n",
        },
        str(work / "gone.txt"): {"path": str(work / "gone.txt"), "kind": {"type": "delete"}, "diff": "bye\n"},
        str(work / "old.txt"): {
            "path": str(work / "old.txt"),
            "kind": {"type": "update", "move_path": str(work / "sub" / "new.txt")},
            # The client is told about the move after the diff, as the reference does.
            "diff": f"@@ -1 +1 @@\n-old\n+new\n\n\nMoved to: {work / 'sub' / 'new.txt'}",
        },
    }
    assert sorted(completed[0]["changes"], key=lambda c: c["path"]) == sorted(
        started[0]["changes"], key=lambda c: c["path"]
    )
    deltas = params_of(turn, "item/fileChange/outputDelta")
    assert {d["itemId"] for d in deltas} == {"call_patch"}
    assert "".join(d["delta"] for d in deltas) == summary

    # The turn's diff: twice right after the patch's item completes, once more before turn/completed.
    v2 = [m.get("method") for m in v2_only(turn)]
    done_at = next(
        i
        for i, m in enumerate(v2_only(turn))
        if m.get("params", {}).get("item", {}).get("type") == "fileChange" and m["method"] == "item/completed"
    )
    assert v2[done_at + 1 : done_at + 3] == ["turn/diff/updated", "turn/diff/updated"]
    assert v2[-2:] == ["turn/diff/updated", "turn/completed"]
    assert v2.count("turn/diff/updated") == 3
    diffs = [p["diff"] for p in params_of(turn, "turn/diff/updated")]
    assert len(set(diffs)) == 1
    for fragment in (
        "+hello",
        "-two\n+deux",
        "-bye",
        str(work / "existing.txt"),
        str(work / "sub" / "new.txt"),
    ):
        assert fragment in diffs[0], fragment

    assert (work / "hello.txt").read_text() == "hello\n"
    assert (work / "existing.txt").read_text() == "one\ndeux\n"
    assert (work / "sub" / "new.txt").read_text() == "new\n"
    assert not (work / "gone.txt").exists() and not (work / "old.txt").exists()

    answer = mock.responses_requests[1].call_output("call_patch")
    assert answer is not None and answer["type"] == "custom_tool_call_output"
    match = FREEFORM_OUTPUT.match(answer["output"])
    assert match, answer["output"]
    assert (match[1], match[3]) == ("0", summary)
    assert completed_turn(turn)["status"] == "completed"


async def test_a_patch_that_does_not_apply_writes_nothing_and_tells_the_model(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("alpha\n")
    (work / "b.txt").write_text("beta\n")
    (work / "blocker").write_text("a file where a directory is needed\n")
    mismatch = (
        "*** Begin Patch\n*** Update File: a.txt\n@@\n-alpha\n+ALPHA\n"
        "*** Update File: b.txt\n@@\n-gamma\n+GAMMA\n*** End Patch\n"
    )
    # Checks out against the files, but the second write can't happen: the first is undone.
    unwritable = (
        "*** Begin Patch\n*** Update File: a.txt\n@@\n-alpha\n+ALPHA\n"
        "*** Add File: blocker/x.txt\n+x\n*** End Patch\n"
    )
    async with (
        mr.open_mock_responses(
            mr.custom_tool_call("apply_patch", mismatch, call_id="call_mismatch"),
            mr.text("It did not apply."),
            mr.custom_tool_call("apply_patch", unwritable, call_id="call_unwritable"),
            mr.text("It failed."),
        ) as mock,
        agent(mock, tmp_path / "home", work) as server,
    ):
        thread_id = (await server.start_thread(model="gpt-5.2-codex"))["thread"]["id"]
        first = await server.turn(thread_id, "patch")
        second = await server.turn(thread_id, "patch again")

    # Verification fails before anything happens: no item, no diff, the error goes to the model.
    assert completed_turn(first)["status"] == "completed"
    assert items(first, "item/started", "fileChange") == []
    assert params_of(first, "turn/diff/updated") == []
    output = output_of(mock, 1, "call_mismatch")
    assert output.startswith(
        f"apply_patch verification failed: Failed to find expected lines in {work / 'b.txt'}"
    )
    assert "gamma" in output

    # Failing while writing: the item fails, the model hears why, the first file is restored.
    assert completed_turn(second)["status"] == "completed"
    assert [i["status"] for i in items(second, "item/completed", "fileChange")] == ["failed"]
    match = FREEFORM_OUTPUT.match(output_of(mock, 3, "call_unwritable"))
    assert match and match[1] == "1", output_of(mock, 3, "call_unwritable")
    assert "blocker" in match[3]

    assert (work / "a.txt").read_text() == "alpha\n"
    assert (work / "b.txt").read_text() == "beta\n"
    assert (work / "blocker").read_text() == "a file where a directory is needed\n"
    assert sorted(p.name for p in work.iterdir()) == ["a.txt", "b.txt", "blocker"]


async def test_patch_approvals_under_untrusted_accept_and_decline(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "existing.txt").write_text("one\ntwo\n")
    add = "*** Begin Patch\n*** Add File: added.txt\n+added\n*** End Patch\n"
    update = "*** Begin Patch\n*** Update File: existing.txt\n@@\n one\n-two\n+deux\n*** End Patch\n"
    async with (
        mr.open_mock_responses(
            mr.custom_tool_call("apply_patch", add, call_id="call_patch_acc"),
            mr.text("Patch accepted."),
            mr.custom_tool_call("apply_patch", update, call_id="call_patch_dec"),
            mr.text("Patch declined."),
        ) as mock,
        agent(mock, tmp_path / "home", work) as server,
    ):
        thread_id = (await server.start_thread(model="gpt-5.2-codex", approvalPolicy="untrusted"))["thread"][
            "id"
        ]
        accepted = await run_turn(server, thread_id, "patch accept", answer_with({"decision": "accept"}))
        declined = await run_turn(server, thread_id, "patch decline", answer_with({"decision": "decline"}))

    assert shape(accepted) == shape(capture_turn("approvals_turn.jsonl", 4))
    assert shape(declined) == shape(capture_turn("approvals_turn.jsonl", 5))
    for turn, call_id in ((accepted, "call_patch_acc"), (declined, "call_patch_dec")):
        [request] = server_requests(turn)
        assert request["method"] == "item/fileChange/requestApproval"
        assert request["params"] == {
            "threadId": thread_id,
            "turnId": completed_turn(turn)["id"],
            "itemId": call_id,
            "reason": None,
            "grantRoot": None,
        }

    assert [i["status"] for i in items(accepted, "item/completed", "fileChange")] == ["completed"]
    assert (work / "added.txt").read_text() == "added\n"
    match = FREEFORM_OUTPUT.match(output_of(mock, 1, "call_patch_acc"))
    assert match and (match[1], match[3]) == ("0", SUMMARY + "A added.txt\n")

    assert [i["status"] for i in items(declined, "item/completed", "fileChange")] == ["declined", "failed"]
    assert params_of(declined, "turn/diff/updated") == []
    assert output_of(mock, 3, "call_patch_dec") == "patch rejected by user"
    assert (work / "existing.txt").read_text() == "one\ntwo\n"
    assert completed_turn(declined)["status"] == "completed"


def heredoc(name: str) -> str:
    return f"apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: {name}\n+{name}\n*** End Patch\nEOF\n"


async def test_apply_patch_given_to_the_shell_is_applied_as_a_patch(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    direct = "*** Begin Patch\n*** Add File: direct.txt\n+direct.txt\n*** End Patch\n"
    async with (
        mr.open_mock_responses(
            mr.function_call("shell", {"command": ["apply_patch", direct]}, call_id="call_direct"),
            mr.function_call("shell", {"command": ["bash", "-lc", heredoc("bash.txt")]}, call_id="call_bash"),
            mr.text("Both applied."),
            mr.function_call("shell_command", {"command": heredoc("script.txt")}, call_id="call_script"),
            mr.text("Applied."),
        ) as mock,
        agent(mock, tmp_path / "home", work) as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        turn = await server.turn(thread_id, "patch through the shell")
        codex_thread = (await server.start_thread(model="gpt-5.2-codex"))["thread"]["id"]
        turn += await server.turn(codex_thread, "patch through the shell script")

    assert items(turn, "item/started", "commandExecution") == []
    calls = [("call_direct", "direct.txt"), ("call_bash", "bash.txt"), ("call_script", "script.txt")]
    assert [(i["id"], i["status"]) for i in items(turn, "item/completed", "fileChange")] == [
        (call_id, "completed") for call_id, _ in calls
    ]
    assert [[c["path"] for c in i["changes"]] for i in items(turn, "item/started", "fileChange")] == [
        [str(work / name)] for _, name in calls
    ]
    for _, name in calls:
        assert (work / name).read_text() == f"{name}\n"
    # The shell's own output format: JSON for `shell`, text for `shell_command`.
    for index, (call_id, name) in enumerate(calls[:2], 1):
        output = json.loads(output_of(mock, index, call_id))
        assert output["output"] == f"{SUMMARY}A {name}\n"
        assert output["metadata"]["exit_code"] == 0
    script_output = output_of(mock, 4, "call_script")
    match = FREEFORM_OUTPUT.match(script_output)
    assert match and (match[1], match[3]) == ("0", f"{SUMMARY}A script.txt\n"), script_output


# --------------------------------------------------------------------------------------------
# update_plan


async def test_update_plan_reports_the_plan_and_rejects_a_bad_status(tmp_path: Path) -> None:
    plan = {
        "explanation": "Two steps",
        "plan": [
            {"step": "Look", "status": "completed"},
            {"step": "Fix", "status": "in_progress"},
            {"step": "Test", "status": "pending"},
        ],
    }
    async with (
        mr.open_mock_responses(
            mr.function_call("update_plan", plan, call_id="call_plan"),
            mr.text("Planned."),
            mr.function_call("update_plan", {"plan": [{"step": "a", "status": "bogus"}]}, call_id="call_bad"),
            mr.text("Oops."),
            mr.function_call("update_plan", {"explanation": "x"}, call_id="call_noplan"),
            mr.text("Oops again."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        good = await server.turn(thread_id, "plan")
        bad = await server.turn(thread_id, "bad plan")
        missing = await server.turn(thread_id, "no plan")

    assert shape(good) == shape(capture_turn("misc_turn.jsonl", 2))
    assert params_of(good, "turn/plan/updated") == [
        {
            "threadId": thread_id,
            "turnId": completed_turn(good)["id"],
            "explanation": "Two steps",
            "plan": [
                {"step": "Look", "status": "completed"},
                {"step": "Fix", "status": "inProgress"},
                {"step": "Test", "status": "pending"},
            ],
        }
    ]
    assert output_of(mock, 1, "call_plan") == "Plan updated"

    for turn in (bad, missing):
        assert params_of(turn, "turn/plan/updated") == []
        assert completed_turn(turn)["status"] == "completed"
    assert output_of(mock, 3, "call_bad") == (
        "failed to parse function arguments: unknown variant `bogus`, expected one of "
        "`pending`, `in_progress`, `completed` at line 1 column 37"
    )
    assert output_of(mock, 5, "call_noplan") == (
        "failed to parse function arguments: missing field `plan` at line 1 column 19"
    )


# --------------------------------------------------------------------------------------------
# request_user_input


QUESTIONS = {
    "questions": [
        {
            "id": "color",
            "header": "Color",
            "question": "Pick one",
            "isOther": False,
            "options": [
                {"label": "Red (Recommended)", "description": "warm"},
                {"label": "Blue", "description": "cool"},
            ],
        }
    ]
}


NO_OPTIONS = {"questions": [{"id": "a", "header": "A", "question": "Which?"}]}


async def test_request_user_input_is_refused_outside_plan_mode(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(
            mr.function_call("request_user_input", QUESTIONS, call_id="call_rui"),
            mr.text("Fine."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        turn = await server.turn(thread_id, "ask me")

    assert server_requests(turn) == []
    assert shape(turn) == shape(capture_turn("misc_turn.jsonl", 6))
    assert output_of(mock, 1, "call_rui") == "request_user_input is unavailable in Custom mode"
    assert completed_turn(turn)["status"] == "completed"


async def test_request_user_input_in_plan_mode_asks_the_client(tmp_path: Path) -> None:
    answer = {"answers": {"color": {"answers": ["Red (Recommended)"]}}}
    async with (
        mr.open_mock_responses(
            mr.function_call("request_user_input", QUESTIONS, call_id="call_rui"),
            mr.text("Red it is."),
            mr.function_call("request_user_input", QUESTIONS, call_id="call_rui_err"),
            mr.text("No answer."),
            mr.response(
                mr.function_call("request_user_input", {"questions": "x"}, call_id="call_rui_bad"),
                mr.function_call("request_user_input", NO_OPTIONS, call_id="call_rui_no_options"),
            ),
            mr.text("Bad questions."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        answered = await run_turn(
            server, thread_id, "ask me", answer_with(answer), collaborationMode=PLAN_MODE
        )
        failed = await run_turn(server, thread_id, "ask again", answer_error(), collaborationMode=PLAN_MODE)
        bad = await run_turn(server, thread_id, "ask badly", collaborationMode=PLAN_MODE)

    [request] = server_requests(answered)
    assert request["method"] == "item/tool/requestUserInput"
    assert request["params"] == {
        "threadId": thread_id,
        "turnId": completed_turn(answered)["id"],
        "itemId": "call_rui",
        "questions": [
            {
                "id": "color",
                "header": "Color",
                "question": "Pick one",
                # The client always offers a free answer, whatever the model said.
                "isOther": True,
                "isSecret": False,
                "options": [
                    {"label": "Red (Recommended)", "description": "warm"},
                    {"label": "Blue", "description": "cool"},
                ],
            }
        ],
    }
    # No item for the question: only the user's message and the answer's text.
    for turn in (answered, failed):
        kinds = {p["item"]["type"] for p in params_of(turn, "item/started")}
        assert kinds == {"userMessage", "agentMessage"}
        assert completed_turn(turn)["status"] == "completed"
    assert output_of(mock, 1, "call_rui") == '{"answers":{"color":{"answers":["Red (Recommended)"]}}}'
    assert [r["method"] for r in server_requests(failed)] == ["item/tool/requestUserInput"]
    assert output_of(mock, 3, "call_rui_err") == '{"answers":{}}'

    # Questions the reference can't read are refused before the client is asked.
    assert server_requests(bad) == []
    assert output_of(mock, 5, "call_rui_bad") == (
        "failed to parse function arguments: "
        'invalid type: string "x", expected a sequence at line 1 column 16'
    )
    assert output_of(mock, 5, "call_rui_no_options") == (
        "request_user_input requires non-empty options for every question"
    )


# --------------------------------------------------------------------------------------------
# view_image


async def test_view_image_attaches_the_picture_for_the_model(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    picture = png(2, 2)
    (work / "pixel.png").write_bytes(picture)
    async with (
        mr.open_mock_responses(
            mr.function_call("view_image", {"path": "pixel.png"}, call_id="call_img"),
            mr.text("Saw it."),
            mr.function_call("view_image", {"path": "nope.png"}, call_id="call_missing"),
            mr.text("Not there."),
        ) as mock,
        agent(mock, tmp_path / "home", work) as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        seen = await server.turn(thread_id, "image")
        missing = await server.turn(thread_id, "missing image")

    assert shape(seen) == shape(capture_turn("misc_turn.jsonl", 5))
    item = {"type": "imageView", "id": "call_img", "path": str(work / "pixel.png")}
    assert items(seen, "item/started", "imageView") == [item]
    assert items(seen, "item/completed", "imageView") == [item]
    assert output_of(mock, 1, "call_img") == "attached local image path"
    history = mock.responses_requests[1].input_items()
    at = next(i for i, it in enumerate(history) if it.get("type") == "function_call_output")
    assert history[at + 1] == {
        "type": "message",
        "role": "user",
        "content": [
            {
                "type": "input_image",
                "image_url": "data:image/png;base64," + base64.b64encode(picture).decode(),
            }
        ],
    }

    assert items(missing, "item/started", "imageView") == []
    assert output_of(mock, 3, "call_missing") == (
        f"unable to locate image at `{work / 'nope.png'}`: No such file or directory (os error 2)"
    )
    assert completed_turn(missing)["status"] == "completed"


# --------------------------------------------------------------------------------------------
# Dynamic tools


async def test_dynamic_tools_are_called_through_the_client(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(
            mr.function_call("lookup", {"q": "x"}, call_id="call_found"),
            mr.text("Found."),
            mr.function_call("lookup", {"q": "y"}, call_id="call_error"),
            mr.text("Failed."),
            mr.function_call("lookup", {"q": "z"}, call_id="call_invalid"),
            mr.text("Invalid."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread(dynamicTools=[LOOKUP]))["thread"]["id"]
        found = await run_turn(server, thread_id, "look", answer_with({"output": "found", "success": True}))
        errored = await run_turn(server, thread_id, "look again", answer_error("tool crashed"))
        invalid = await run_turn(server, thread_id, "look once more", answer_with({"foo": 1}))

    assert mock.responses_requests[0].body["tools"][-1]["name"] == "lookup"
    [request] = server_requests(found)
    assert request["method"] == "item/tool/call"
    assert request["params"] == {
        "threadId": thread_id,
        "turnId": completed_turn(found)["id"],
        "callId": "call_found",
        "tool": "lookup",
        "arguments": {"q": "x"},
    }
    for turn in (found, errored, invalid):
        assert [r["method"] for r in server_requests(turn)] == ["item/tool/call"]
        assert {p["item"]["type"] for p in params_of(turn, "item/started")} == {"userMessage", "agentMessage"}
        assert completed_turn(turn)["status"] == "completed"
    assert output_of(mock, 1, "call_found") == "found"
    assert output_of(mock, 3, "call_error") == "dynamic tool request failed"
    assert output_of(mock, 5, "call_invalid") == "dynamic tool response was invalid"


def interrupt_instead(thread_id: str) -> Answer:
    """Leaves the client's request unanswered and interrupts the turn."""

    async def respond(server: Agent, request: Message) -> None:
        await server.request("turn/interrupt", {"threadId": thread_id, "turnId": request["params"]["turnId"]})

    return respond


async def test_interrupting_an_unanswered_question_or_tool_call_tells_the_model_so(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(
            mr.function_call("request_user_input", QUESTIONS, call_id="call_rui"),
            mr.text("Asked."),
            mr.function_call("lookup", {"q": "x"}, call_id="call_lookup"),
            mr.text("Looked."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread(dynamicTools=[LOOKUP]))["thread"]["id"]
        asked = await run_turn(
            server, thread_id, "ask me", interrupt_instead(thread_id), collaborationMode=PLAN_MODE
        )
        await run_turn(server, thread_id, "next")
        looked = await run_turn(server, thread_id, "look", interrupt_instead(thread_id))
        await run_turn(server, thread_id, "next")

    for turn in (asked, looked):
        assert completed_turn(turn)["status"] == "interrupted"
    # The reference's words: the question went unanswered; any other tool reports how long it ran.
    assert output_of(mock, 1, "call_rui") == "request_user_input was cancelled before receiving a response"
    assert re.fullmatch(r"aborted by user after \d+\.\ds", output_of(mock, 3, "call_lookup"))


# --------------------------------------------------------------------------------------------
# MCP resources (no servers configured)


async def test_mcp_resource_tools_without_servers(tmp_path: Path) -> None:
    calls = [
        ("call_list", "list_mcp_resources", {}),
        ("call_templates", "list_mcp_resource_templates", {}),
        ("call_unknown", "list_mcp_resources", {"server": "x"}),
        ("call_read", "read_mcp_resource", {"server": "x", "uri": "y"}),
    ]
    async with (
        mr.open_mock_responses(
            mr.response(*[mr.function_call(name, args, call_id=call_id) for call_id, name, args in calls]),
            mr.text("Nothing there."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        turn = await server.turn(thread_id, "resources")

    started = {i["id"]: i for i in items(turn, "item/started", "mcpToolCall")}
    completed = {i["id"]: i for i in items(turn, "item/completed", "mcpToolCall")}
    assert list(started) == list(completed) == [c[0] for c in calls]
    for call_id, name, args in calls:
        assert started[call_id] == {
            "type": "mcpToolCall",
            "id": call_id,
            "server": args.get("server", "codex"),
            "tool": name,
            "status": "inProgress",
            "arguments": args,
            "result": None,
            "error": None,
            "durationMs": None,
        }
    listing = {"call_list": '{"resources":[]}', "call_templates": '{"resourceTemplates":[]}'}
    for call_id, text in listing.items():
        done = completed[call_id]
        assert (done["status"], done["error"]) == ("completed", None)
        assert done["result"] == {"content": [{"text": text, "type": "text"}], "structuredContent": None}
        assert isinstance(done["durationMs"], int)
        assert output_of(mock, 1, call_id) == text
    failures = {
        "call_unknown": "resources/list failed: unknown MCP server 'x'",
        "call_read": "resources/read failed: unknown MCP server 'x'",
    }
    for call_id, text in failures.items():
        done = completed[call_id]
        assert (done["status"], done["result"], done["error"]) == ("failed", None, {"message": text})
        assert output_of(mock, 1, call_id) == text
    assert completed_turn(turn)["status"] == "completed"


# --------------------------------------------------------------------------------------------
# Calls that can't run


async def test_unknown_tools_and_bad_arguments_go_back_to_the_model(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(
            mr.response(
                mr.function_call("no_such_tool", {}, call_id="call_unknown"),
                mr.custom_tool_call("nonexistent_freeform", "x", call_id="call_custom"),
                mr.function_call("shell", "not json", call_id="call_bad_args"),
            ),
            mr.text("Unknown."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        turn = await server.turn(thread_id, "unknown")

    # Nothing for the client to see but the turn itself, as in the reference's capture.
    assert shape(turn) == shape(capture_turn("misc_turn.jsonl", 6))
    assert completed_turn(turn)["status"] == "completed"
    assert output_of(mock, 1, "call_unknown") == "unsupported call: no_such_tool"
    custom = mock.responses_requests[1].call_output("call_custom")
    assert custom == {
        "type": "custom_tool_call_output",
        "call_id": "call_custom",
        "output": "unsupported custom tool call: nonexistent_freeform",
    }
    assert output_of(mock, 1, "call_bad_args").startswith("failed to parse function arguments: ")


# --------------------------------------------------------------------------------------------
# Parallel calls


async def test_parallel_shell_calls_run_concurrently_and_answer_in_call_order(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(
            mr.response(
                mr.function_call("shell_command", {"command": "sleep 1; echo a"}, call_id="call_a"),
                mr.function_call("shell_command", {"command": "sleep 1; echo b"}, call_id="call_b"),
            ),
            mr.text("Both ran."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread(model="gpt-5.2-codex"))["thread"]["id"]
        started = trio.current_time()
        turn = await server.turn(thread_id, "parallel")
        elapsed = trio.current_time() - started

    assert mock.responses_requests[0].body["parallel_tool_calls"] is True
    assert elapsed < 1.8, f"the two one-second commands took {elapsed:.2f}s together"
    done = {i["id"]: i for i in items(turn, "item/completed", "commandExecution")}
    assert {k: (v["status"], v["aggregatedOutput"]) for k, v in done.items()} == {
        "call_a": ("completed", "a\n"),
        "call_b": ("completed", "b\n"),
    }
    history = [
        (i["type"], i["call_id"])
        for i in mock.responses_requests[1].input_items()
        if i.get("type") in ("function_call", "function_call_output")
    ]
    assert history == [
        ("function_call", "call_a"),
        ("function_call", "call_b"),
        ("function_call_output", "call_a"),
        ("function_call_output", "call_b"),
    ]
    for call_id, letter in (("call_a", "a"), ("call_b", "b")):
        match = FREEFORM_OUTPUT.match(output_of(mock, 1, call_id))
        assert match and (match[1], match[3]) == ("0", f"{letter}\n"), output_of(mock, 1, call_id)
    assert completed_turn(turn)["status"] == "completed"
