"""The shell tools end to end, under each approval policy and sandbox: codex-trio as a stdio subprocess,
its model a scripted mock. Each test checks what a client sees (notifications in order, the approval
requests and their params) and what the model is told (the call's output in the next request), against
what the reference (Codex CLI 0.94.0) did when run against the same mock: its capture where one exists
(tests/fixtures/reference_captures/approvals_turn.jsonl), otherwise the texts and orders it was seen to
produce. Every message is checked against the schema by the harness.

Server→client requests land in the harness inbox (no responder): a test finds the approval request in
what it reads and answers it itself.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from e2e_util import (
    Agent,
    Predicate,
    agent,
    capture_turn,
    conversation,
    is_method,
    is_reply,
    skeleton,
    write_config,
)
from schema_check import ProtocolValidator

from codex_trio.core.parse_command import default_shell_path
from codex_trio.testing import mock_responses as mr
from codex_trio.testing.harness import open_ws_server, wait_until_gone

Message = dict[str, Any]

APPROVAL = "item/commandExecution/requestApproval"
REJECTED = "exec command rejected by user"
RETRY_REASON = "command failed; retry without sandbox?"
# A sandbox whose only writable root is the cwd: pytest's tmp_path is under /tmp, so a path there is
# "outside the writable roots" only once /tmp and $TMPDIR are excluded.
WORKSPACE_ONLY = {
    "type": "workspaceWrite",
    "writableRoots": [],
    "networkAccess": False,
    "excludeTmpdirEnvVar": True,
    "excludeSlashTmp": True,
}
# Stands for a JSON-RPC error as the client's answer to an approval request.
ERROR_REPLY = object()


# --- reading what the client sees ---------------------------------------------------------------


def is_request(method: str) -> Predicate:
    return lambda m: m.get("method") == method and "id" in m


def requests_in(messages: Sequence[Message], method: str = APPROVAL) -> list[Message]:
    return [m for m in messages if m.get("method") == method and "id" in m]


def item_events(messages: Sequence[Message], method: str, kind: str = "commandExecution") -> list[Message]:
    return [
        m["params"]["item"]
        for m in messages
        if m.get("method") == method and "id" not in m and m["params"]["item"]["type"] == kind
    ]


def v2_only(messages: Sequence[Message]) -> list[Message]:
    """What a v2 client looks at: no legacy events, no token/rate-limit bookkeeping, no text deltas
    (the mock and the reference's mock split texts differently)."""
    return [
        m
        for m in messages
        if not str(m.get("method", "")).startswith("codex/event/")
        and m.get("method")
        not in ("account/rateLimits/updated", "thread/tokenUsage/updated", "item/agentMessage/delta")
    ]


def outcome(item: Message) -> tuple[Any, ...]:
    """What a completed command item says about how it ended."""
    return item["status"], item["aggregatedOutput"], item["exitCode"], item["durationMs"]


def output_deltas(messages: Sequence[Message]) -> str:
    return "".join(
        m["params"]["delta"]
        for m in messages
        if m.get("method") == "item/commandExecution/outputDelta" and "id" not in m
    )


def turn_status(messages: Sequence[Message]) -> str:
    done = [m for m in messages if m.get("method") == "turn/completed"]
    assert len(done) == 1, skeleton(messages)
    status: str = done[0]["params"]["turn"]["status"]
    return status


def turn_aborted_notice(text: str) -> bool:
    """The user message telling the model its previous turn was stopped (the wording is ours; the
    tag is the reference's, which clients and rollouts recognise)."""
    return text.startswith("<turn_aborted>\n") and text.endswith("\n</turn_aborted>")


def model_output(mock: mr.MockResponses, request: int, call_id: str) -> str:
    """The output the model got for ``call_id`` in its ``request``-th request (0-based)."""
    item = mock.responses_requests[request].call_output(call_id)
    assert item is not None, f"request {request} has no output for {call_id}"
    output: str = item["output"]
    return output


def json_output(mock: mr.MockResponses, request: int, call_id: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(model_output(mock, request, call_id))
    return out


def shell(command: str, call_id: str, **args: Any) -> mr.Script:
    """The model calls ``shell`` with ``bash -lc command``."""
    return mr.function_call("shell", {"command": ["bash", "-lc", command], **args}, call_id=call_id)


# --- driving turns --------------------------------------------------------------------------------


async def answer(server: Agent, request: Message, decision: Any) -> None:
    if decision is ERROR_REPLY:
        await server.server.respond_error(request["id"], -32000, "user went away")
    else:
        await server.server.respond(request["id"], {"decision": decision})


async def turn_id_of(server: Agent, request_id: Any) -> tuple[str, list[Message]]:
    seen = await server.until(is_reply(request_id))
    assert "result" in seen[-1], seen[-1]
    return str(seen[-1]["result"]["turn"]["id"]), seen


def turn_done(turn_id: str) -> Predicate:
    return is_method("turn/completed", lambda p: p["turn"]["id"] == turn_id)


async def turn(
    server: Agent, thread_id: str, text: str, decisions: Sequence[Any] = (), **params: Any
) -> list[Message]:
    """A whole turn (from the turn/start reply to its turn/completed) whose approval requests are
    answered, in order, with ``decisions``; any request beyond those fails the test."""
    turn_id, seen = await turn_id_of(server, await server.start_turn(thread_id, text, **params))
    seen = seen[-1:]
    for decision in decisions:
        seen += await server.until(is_request(APPROVAL))
        await answer(server, seen[-1], decision)
    seen += await server.until(turn_done(turn_id))
    assert len(requests_in(seen)) == len(decisions), skeleton(seen)
    return seen


@asynccontextmanager
async def untrusted(
    tmp_path: Path, *scripts: mr.Script
) -> AsyncIterator[tuple[mr.MockResponses, Agent, str]]:
    """A mock model with ``scripts``, the server, and a thread that asks before running anything not
    known to be safe (full access otherwise, as in the reference's approvals capture)."""
    async with (
        mr.open_mock_responses(*scripts) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread_id = (await server.start_thread(approvalPolicy="untrusted"))["thread"]["id"]
        yield mock, server, thread_id


def approval_params(thread: str, turn: str, call_id: str, command: str, cwd: Path, **rest: Any) -> Message:
    return {
        "threadId": thread,
        "turnId": turn,
        "itemId": call_id,
        "command": command,
        "cwd": str(cwd),
        **rest,
    }


# --- untrusted: every decision ----------------------------------------------------------------------


async def test_untrusted_accept_asks_then_runs_like_the_reference(tmp_path: Path) -> None:
    script = [shell("touch a.txt", "call_acc"), mr.text("Accepted.")]
    async with untrusted(tmp_path, *script) as (mock, server, tid):
        seen = await turn(server, tid, "approve it", ["accept"])
        assert skeleton(v2_only(seen)) == skeleton(v2_only(capture_turn("approvals_turn.jsonl", 2)))
        turn_id = seen[0]["result"]["turn"]["id"]
        [request] = requests_in(seen)
        assert request["params"] == approval_params(
            tid,
            turn_id,
            "call_acc",
            "bash -lc 'touch a.txt'",
            server.work,
            reason=None,
            commandActions=[{"type": "unknown", "command": "touch a.txt"}],
            proposedExecpolicyAmendment=["touch", "a.txt"],
        )
        # The item is announced before the question.
        [started] = [
            m for m in seen if m.get("method") == "item/started" and m["params"]["item"]["id"] == "call_acc"
        ]
        assert seen.index(started) < seen.index(request)
        [done] = item_events(seen, "item/completed")
        assert (done["status"], done["aggregatedOutput"], done["exitCode"]) == ("completed", None, 0)
        assert (server.work / "a.txt").exists()
        out = json_output(mock, 1, "call_acc")
        assert out["output"] == "" and out["metadata"]["exit_code"] == 0
        assert turn_status(seen) == "completed"


async def test_accept_for_session_is_not_asked_again_for_the_same_command(tmp_path: Path) -> None:
    async with untrusted(
        tmp_path,
        shell("echo run >> log.txt", "call_1"),
        mr.text("Ran once."),
        shell("echo run >> log.txt", "call_2"),
        mr.text("Ran twice."),
        shell("echo run >> log.txt", "call_3", workdir="sub"),
        mr.text("Not in sub."),
    ) as (mock, server, tid):
        (server.work / "sub").mkdir()
        await turn(server, tid, "first", ["acceptForSession"])
        second = await turn(server, tid, "again", [])
        assert [i["status"] for i in item_events(second, "item/completed")] == ["completed"]
        assert (server.work / "log.txt").read_text() == "run\nrun\n"
        assert json_output(mock, 3, "call_2")["metadata"]["exit_code"] == 0
        # The same argv in another directory is another command: asked again.
        third = await turn(server, tid, "in sub", ["decline"])
        assert requests_in(third)[0]["params"]["cwd"] == str(server.work / "sub")
        assert not (server.work / "sub" / "log.txt").exists()


async def test_decline_completes_the_item_twice_and_tells_the_model(tmp_path: Path) -> None:
    script = [shell("touch b.txt", "call_dec"), mr.text("Declined.")]
    async with untrusted(tmp_path, *script) as (mock, server, tid):
        seen = await turn(server, tid, "decline it", ["decline"])
        assert skeleton(v2_only(seen)) == skeleton(v2_only(capture_turn("approvals_turn.jsonl", 3)))
        completions = item_events(seen, "item/completed")
        assert [outcome(i) for i in completions] == [
            ("declined", None, None, None),
            ("failed", REJECTED, -1, 0),
        ]
        assert not (server.work / "b.txt").exists()
        assert model_output(mock, 1, "call_dec") == REJECTED
        assert turn_status(seen) == "completed"


async def test_cancel_ends_the_turn_and_the_next_turn_hears_why(tmp_path: Path) -> None:
    script = [shell("touch c.txt", "call_cancel"), mr.text("Next.")]
    async with untrusted(tmp_path, *script) as (mock, server, tid):
        seen = await turn(server, tid, "cancel it", ["cancel"])
        assert skeleton(v2_only(seen)) == skeleton(v2_only(capture_turn("approvals_turn.jsonl", 6)))
        assert turn_status(seen) == "interrupted"
        assert [i["status"] for i in item_events(seen, "item/completed")] == ["declined", "failed"]
        assert not (server.work / "c.txt").exists()
        # No further model request in the cancelled turn.
        assert len(mock.responses_requests) == 1
        await turn(server, tid, "go on")
        following = mock.responses_requests[1]
        assert model_output(mock, 1, "call_cancel") == REJECTED
        talk = conversation(following.input_items())[-4:]
        assert [kind for kind, _ in talk] == ["function_call", "function_call_output", "user", "user"]
        assert turn_aborted_notice(talk[2][1]) and talk[3][1] == "go on"


async def test_an_error_reply_to_the_approval_fails_the_item_and_the_turn_goes_on(tmp_path: Path) -> None:
    script = [shell("touch e.txt", "call_err"), mr.text("Refused.")]
    async with untrusted(tmp_path, *script) as (mock, server, tid):
        seen = await turn(server, tid, "ask and fail", [ERROR_REPLY])
        completions = item_events(seen, "item/completed")
        assert [outcome(i) for i in completions] == [
            ("failed", None, None, None),
            ("failed", REJECTED, -1, 0),
        ]
        assert not (server.work / "e.txt").exists()
        assert model_output(mock, 1, "call_err") == REJECTED
        assert turn_status(seen) == "completed"
        assert server.server.returncode is None


async def test_accept_with_execpolicy_amendment_saves_the_rule(tmp_path: Path) -> None:
    async with untrusted(
        tmp_path,
        shell("touch t7.txt", "call_rule"),
        mr.text("Saved."),
        shell("touch other.txt", "call_after"),
        mr.text("Not asked."),
    ) as (mock, server, tid):
        amendment = {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["touch"]}}
        seen = await turn(server, tid, "remember touch", [amendment])
        assert [i["status"] for i in item_events(seen, "item/completed")] == ["completed"]
        assert (server.work / "t7.txt").exists()
        rules = tmp_path / "home" / "rules" / "default.rules"
        assert rules.read_text() == 'prefix_rule(pattern=["touch"], decision="allow")\n'
        # The model hears about the rule right before the call's output.
        items = mock.responses_requests[1].input_items()
        index = next(i for i, item in enumerate(items) if item.get("type") == "function_call_output")
        saved = 'Approved command prefix saved:\n- ["touch"]'
        assert conversation(items[index - 1 : index]) == [("developer", saved)]
        assert json.loads(items[index]["output"])["metadata"]["exit_code"] == 0
        # A later command the rule matches runs without asking.
        later = await turn(server, tid, "touch again", [])
        assert [i["status"] for i in item_events(later, "item/completed")] == ["completed"]
        assert (server.work / "other.txt").exists()


async def test_known_safe_command_is_not_asked_about(tmp_path: Path) -> None:
    script = [shell("ls", "call_ls"), mr.text("Listed.")]
    async with untrusted(tmp_path, *script) as (mock, server, tid):
        (server.work / "visible.txt").write_text("x")
        seen = await turn(server, tid, "list", [])
        [done] = item_events(seen, "item/completed")
        assert outcome(done)[:3] == ("completed", "visible.txt\n", 0)
        assert done["commandActions"] == [{"type": "listFiles", "command": "ls", "path": None}]
        assert json_output(mock, 1, "call_ls")["output"] == "visible.txt\n"


# --- on-request + read-only ------------------------------------------------------------------------


async def test_on_request_read_only_sandbox_refuses_writes_and_escalation_asks(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(
            mr.function_call("shell", {"command": ["touch", "x.txt"]}, call_id="call_ro"),
            mr.text("It failed."),
            mr.function_call(
                "shell",
                {
                    "command": ["touch", "x.txt"],
                    "sandbox_permissions": "require_escalated",
                    "justification": "Need to create x.txt in the project",
                },
                call_id="call_esc",
            ),
            mr.text("Done."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        tid = (await server.start_thread(approvalPolicy="on-request", sandbox="read-only"))["thread"]["id"]
        refused = await turn(server, tid, "touch it", [])
        [done] = item_events(refused, "item/completed")
        assert (done["status"], done["exitCode"]) == ("failed", 1)
        assert "touch: cannot touch 'x.txt'" in done["aggregatedOutput"]
        assert output_deltas(refused) == done["aggregatedOutput"]
        out = json_output(mock, 1, "call_ro")
        assert out["output"] == done["aggregatedOutput"] and out["metadata"]["exit_code"] == 1
        assert not (server.work / "x.txt").exists()

        escalated = await turn(server, tid, "really touch it", ["accept"])
        [request] = requests_in(escalated)
        assert request["params"] == approval_params(
            tid,
            escalated[0]["result"]["turn"]["id"],
            "call_esc",
            "touch x.txt",
            server.work,
            reason="Need to create x.txt in the project",
            commandActions=[{"type": "unknown", "command": "touch x.txt"}],
            proposedExecpolicyAmendment=["touch", "x.txt"],
        )
        [done] = item_events(escalated, "item/completed")
        assert (done["status"], done["exitCode"]) == ("completed", 0)
        assert (server.work / "x.txt").exists()


# --- workspace-write: writes outside the roots, the network ----------------------------------------


async def test_on_failure_offers_to_rerun_a_sandbox_refusal_without_the_sandbox(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target, declined = outside / "f.txt", outside / "g.txt"
    async with (
        mr.open_mock_responses(
            mr.function_call("shell", {"command": ["touch", str(target)]}, call_id="call_x"),
            mr.text("Done."),
            mr.function_call("shell", {"command": ["touch", str(declined)]}, call_id="call_y"),
            mr.text("Not done."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        tid = (await server.start_thread())["thread"]["id"]
        policy = {"approvalPolicy": "on-failure", "sandboxPolicy": WORKSPACE_ONLY}
        seen = await turn(server, tid, "write outside", ["accept"], **policy)
        [request] = requests_in(seen)
        assert request["params"] == approval_params(
            tid,
            seen[0]["result"]["turn"]["id"],
            "call_x",
            f"touch {target}",
            server.work,
            reason=RETRY_REASON,
            commandActions=[{"type": "unknown", "command": f"touch {target}"}],
            proposedExecpolicyAmendment=["touch", str(target)],
        )
        # The sandboxed attempt ran and streamed its refusal before the question.
        assert f"touch: cannot touch '{target}'" in output_deltas(seen[: seen.index(request)])
        assert len(item_events(seen, "item/started")) == 1
        [done] = item_events(seen, "item/completed")
        # Only the unsandboxed rerun's output counts.
        assert (done["status"], done["aggregatedOutput"], done["exitCode"]) == ("completed", None, 0)
        assert target.exists()
        out = json_output(mock, 1, "call_x")
        assert out["output"] == "" and out["metadata"]["exit_code"] == 0

        # Declining the rerun is a decline: the sandboxed attempt's output is dropped.
        seen = await turn(server, tid, "write outside again", ["decline"], **policy)
        assert requests_in(seen)[0]["params"]["reason"] == RETRY_REASON
        assert [outcome(i) for i in item_events(seen, "item/completed")] == [
            ("declined", None, None, None),
            ("failed", REJECTED, -1, 0),
        ]
        assert not declined.exists()
        assert model_output(mock, 3, "call_y") == REJECTED


async def test_an_approved_command_the_sandbox_refuses_reruns_without_asking_again(tmp_path: Path) -> None:
    script = [shell("touch g.txt", "call_g"), mr.text("Done.")]
    async with (
        mr.open_mock_responses(*script) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        tid = (await server.start_thread(approvalPolicy="untrusted", sandbox="read-only"))["thread"]["id"]
        seen = await turn(server, tid, "touch it", ["accept"])
        assert requests_in(seen)[0]["params"]["reason"] is None
        # The sandboxed run was refused (and streamed), then it ran again without the sandbox.
        assert "touch: cannot touch 'g.txt'" in output_deltas(seen)
        [done] = item_events(seen, "item/completed")
        assert (done["status"], done["aggregatedOutput"], done["exitCode"]) == ("completed", None, 0)
        assert (server.work / "g.txt").exists()
        assert json_output(mock, 1, "call_g")["metadata"]["exit_code"] == 0


async def test_never_reports_a_sandbox_refusal_to_the_model_without_asking(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "f.txt"
    async with (
        mr.open_mock_responses(
            mr.function_call("shell", {"command": ["touch", str(target)]}, call_id="call_x"),
            mr.text("It failed."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        tid = (await server.start_thread())["thread"]["id"]
        seen = await turn(
            server, tid, "write outside", [], approvalPolicy="never", sandboxPolicy=WORKSPACE_ONLY
        )
        [done] = item_events(seen, "item/completed")
        assert (done["status"], done["exitCode"]) == ("failed", 1)
        assert done["aggregatedOutput"].startswith(f"touch: cannot touch '{target}'")
        assert not target.exists()
        out = json_output(mock, 1, "call_x")
        assert out["output"] == done["aggregatedOutput"] and out["metadata"]["exit_code"] == 1
        assert turn_status(seen) == "completed"


async def test_never_refuses_escalation_and_dangerous_commands(tmp_path: Path) -> None:
    escalate = {"sandbox_permissions": "require_escalated", "justification": "please"}
    async with (
        mr.open_mock_responses(
            mr.function_call("shell", {"command": ["touch", "esc.txt"], **escalate}, call_id="call_esc"),
            mr.text("Refused."),
            shell("rm -rf victim", "call_rm"),
            mr.text("Blocked."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        (server.work / "victim").mkdir()
        tid = (await server.start_thread(sandbox="workspace-write"))["thread"]["id"]
        # Asking for escalation when nobody may be asked: refused before anything runs or shows.
        seen = await turn(server, tid, "escalate")
        assert item_events(seen, "item/started") == []
        assert model_output(mock, 1, "call_esc") == (
            "approval policy is Never; reject command — you should not ask for escalated permissions "
            "if the approval policy is Never"
        )
        assert not (server.work / "esc.txt").exists()
        # A dangerous command is shown, then fails as blocked.
        seen = await turn(server, tid, "remove")
        blocked = "`bash -lc 'rm -rf victim'` rejected: blocked by policy"
        assert [i["status"] for i in item_events(seen, "item/started")] == ["inProgress"]
        assert [outcome(i) for i in item_events(seen, "item/completed")] == [("failed", blocked, -1, 0)]
        assert model_output(mock, 3, "call_rm") == blocked
        assert (server.work / "victim").is_dir()


async def test_sandbox_network_follows_network_access(tmp_path: Path) -> None:
    [listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    connect = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"
    accepted = 0

    async def accept_all() -> None:
        nonlocal accepted
        while True:
            stream = await listener.accept()
            accepted += 1
            await stream.aclose()

    async with (
        mr.open_mock_responses(
            mr.function_call("shell", {"command": ["bash", "-c", connect]}, call_id="call_off"),
            mr.text("Blocked."),
            mr.function_call("shell", {"command": ["bash", "-c", connect]}, call_id="call_on"),
            mr.text("Connected."),
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(accept_all)
        tid = (await server.start_thread())["thread"]["id"]
        off = await turn(server, tid, "no network", [], approvalPolicy="never", sandboxPolicy=WORKSPACE_ONLY)
        [done] = item_events(off, "item/completed")
        assert (done["status"], done["exitCode"]) == ("failed", 1)
        assert "Operation not permitted" in done["aggregatedOutput"]
        assert json_output(mock, 1, "call_off")["metadata"]["exit_code"] == 1
        assert accepted == 0

        on = await turn(
            server,
            tid,
            "network",
            [],
            approvalPolicy="never",
            sandboxPolicy={**WORKSPACE_ONLY, "networkAccess": True},
        )
        [done] = item_events(on, "item/completed")
        assert (done["status"], done["aggregatedOutput"], done["exitCode"]) == ("completed", "connected\n", 0)
        assert json_output(mock, 3, "call_on")["output"] == "connected\n"
        assert accepted == 1
        nursery.cancel_scope.cancel()
    await listener.aclose()


# --- interrupt, timeout ----------------------------------------------------------------------------


async def test_interrupt_kills_the_command_and_its_children(tmp_path: Path) -> None:
    script = "sleep 30 & echo $! > child.pid; echo started; wait"
    async with (
        mr.open_mock_responses(shell(script, "call_sleep"), mr.text("Next.")) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        tid = (await server.start_thread())["thread"]["id"]
        turn_id, seen = await turn_id_of(server, await server.start_turn(tid, "sleep"))
        seen += await server.until(is_method("item/commandExecution/outputDelta"))
        assert seen[-1]["params"]["delta"] == "started\n"
        child = int((server.work / "child.pid").read_text())
        interrupt = await server.request("turn/interrupt", {"threadId": tid, "turnId": turn_id})
        after = await server.until(turn_done(turn_id))
        after += await server.quiet(0.2)
        assert turn_status(after) == "interrupted"
        replies = [m for m in after if is_reply(interrupt)(m)]
        assert replies == [{"id": interrupt, "result": {}}]
        # Like the reference, the item is left without a completion.
        assert item_events(seen + after, "item/completed") == []
        assert await wait_until_gone(child, 1.0), f"background child {child} survived the interrupt"

        await turn(server, tid, "what happened?")
        output = model_output(mock, 1, "call_sleep")
        assert re.fullmatch(r"Wall time: \d+\.\d seconds\naborted by user", output), output
        talk = conversation(mock.responses_requests[1].input_items())[-4:]
        assert [kind for kind, _ in talk] == ["function_call", "function_call_output", "user", "user"]
        assert turn_aborted_notice(talk[2][1]) and talk[3][1] == "what happened?"


async def test_interrupt_while_an_approval_is_pending_rejects_the_command(tmp_path: Path) -> None:
    script = [shell("touch late.txt", "call_late"), mr.text("Next.")]
    async with untrusted(tmp_path, *script) as (mock, server, tid):
        turn_id, _ = await turn_id_of(server, await server.start_turn(tid, "ask"))
        [request] = requests_in(await server.until(is_request(APPROVAL)))
        interrupt = await server.request("turn/interrupt", {"threadId": tid, "turnId": turn_id})
        seen = await server.until(turn_done(turn_id))
        assert turn_status(seen) == "interrupted"
        assert [outcome(i) for i in item_events(seen, "item/completed")] == [("failed", REJECTED, -1, 0)]
        assert [m for m in seen if is_reply(interrupt)(m)] == [{"id": interrupt, "result": {}}]
        # A late answer to the stale request changes nothing.
        await answer(server, request, "accept")
        assert [
            m for m in await server.quiet(0.2) if "id" in m or m.get("method", "").startswith("item/")
        ] == []
        assert not (server.work / "late.txt").exists()
        await turn(server, tid, "and now?")
        assert model_output(mock, 1, "call_late") == REJECTED
        talk = conversation(mock.responses_requests[1].input_items())[-2:]
        assert turn_aborted_notice(talk[0][1]) and talk[1] == ("user", "and now?")


async def test_a_command_that_times_out_fails_with_exit_code_124(tmp_path: Path) -> None:
    script = "echo before; sleep 5 & echo $! > child.pid; wait"
    async with (
        mr.open_mock_responses(shell(script, "call_slow", timeout_ms=500), mr.text("Too slow.")) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        tid = (await server.start_thread())["thread"]["id"]
        started = trio.current_time()
        seen = await turn(server, tid, "sleep")
        assert trio.current_time() - started < 3
        [done] = item_events(seen, "item/completed")
        assert (done["status"], done["aggregatedOutput"], done["exitCode"]) == ("failed", "before\n", 124)
        assert 500 <= done["durationMs"] < 2000
        assert await wait_until_gone(int((server.work / "child.pid").read_text()), 1.0)
        out = json_output(mock, 1, "call_slow")
        assert re.fullmatch(r"command timed out after \d+ milliseconds\nbefore\n", out["output"]), out
        assert out["metadata"]["exit_code"] == 124
        assert turn_status(seen) == "completed"


# --- shell_command (gpt-5.2-codex) -------------------------------------------------------------------


async def test_shell_command_runs_in_the_login_shell_with_freeform_output(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(
            mr.function_call("shell_command", {"command": "echo hi"}, call_id="call_sc"), mr.text("Said hi.")
        ) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        tid = (await server.start_thread(model="gpt-5.2-codex"))["thread"]["id"]
        seen = await turn(server, tid, "say hi")
        tools = [t.get("name") for t in mock.responses_requests[0].body["tools"]]
        assert "shell_command" in tools and "shell" not in tools
        [started] = item_events(seen, "item/started")
        assert started["command"] == shlex.join([default_shell_path(), "-lc", "echo hi"])
        [done] = item_events(seen, "item/completed")
        assert (done["status"], done["aggregatedOutput"], done["exitCode"]) == ("completed", "hi\n", 0)
        output = model_output(mock, 1, "call_sc")
        assert re.fullmatch(r"Exit code: 0\nWall time: \d+(\.\d+)? seconds\nOutput:\nhi\n", output), output


# --- a client that goes away while asked -------------------------------------------------------------


async def test_closing_stdin_while_an_approval_is_pending_ends_the_server_cleanly(tmp_path: Path) -> None:
    script = [shell("touch gone.txt", "call_gone"), mr.text("Unreachable.")]
    async with untrusted(tmp_path, *script) as (_, server, tid):
        await server.start_turn(tid, "ask me")
        await server.until(is_request(APPROVAL))
        started = trio.current_time()
        await server.server.close_stdin()
        assert await server.server.wait_exit(3.0) == 0
        assert trio.current_time() - started < 2
        server.server.assert_no_traceback()
        assert not (server.work / "gone.txt").exists()


async def test_a_websocket_client_leaving_with_an_approval_pending_fails_the_item_only(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    text = [{"type": "text", "text": "ask", "text_elements": []}]
    async with mr.open_mock_responses(shell("touch gone.txt", "call_gone"), mr.text("Rejected.")) as mock:
        write_config(tmp_path / "home", mock.base_url)
        async with (
            open_ws_server(
                codex_home=tmp_path / "home", base_url=mock.base_url, validator_factory=ProtocolValidator
            ) as ws,
            ws.connect(name="watcher") as watcher,
        ):
            await watcher.initialize(name="watcher")
            async with ws.connect(name="leaver") as leaver:
                await leaver.initialize(name="leaver")
                params = {"cwd": str(work), "approvalPolicy": "untrusted", "sandbox": "danger-full-access"}
                tid = (await leaver.call_result("thread/start", params))["thread"]["id"]
                await watcher.call_result("thread/resume", {"threadId": tid})
                await leaver.call_result("turn/start", {"threadId": tid, "input": text})
                await leaver.wait_server_request(APPROVAL)
                await leaver.disconnect()
            # The turn goes on without its client: the item fails, the model hears the command was
            # rejected, and the turn completes.
            done = await watcher.wait_notification("turn/completed")
            assert done["params"]["turn"]["status"] == "completed"
            assert watcher.server_requests == []
            completions = item_events(watcher.notifications, "item/completed")
            assert [(i["status"], i["aggregatedOutput"]) for i in completions] == [
                ("failed", None),
                ("failed", REJECTED),
            ]
            assert model_output(mock, 1, "call_gone") == REJECTED
            assert not (work / "gone.txt").exists()
            # And the server still serves its other client.
            fresh = await watcher.call_result("thread/start", {"cwd": str(work)})
            assert fresh["thread"]["id"] != tid
