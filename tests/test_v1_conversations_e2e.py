"""The legacy v1 conversation API end to end: codex-trio as a stdio subprocess, the Responses API mocked
on 127.0.0.1, every message the server writes checked against the protocol schema.

Each scenario below is a script a v1 client runs (newConversation, addConversationListener,
sendUserMessage...). The same scripts were run against the reference (Codex CLI 0.94.0, same mock);
its transcripts are in tests/fixtures/v1/ (see the README there). A test runs the script against
codex-trio and requires the reference's messages in the reference's order: the skeleton of requests,
results, errors (texts included), notifications, legacy events (type and turn id) and server requests,
and the key sets of every result. Ids, paths and timestamps are left out, and so is what the reference
itself orders at random (rate-limit and token-usage notifications). The tests also check what a user
sees beyond the order: files written or not, what the model was sent, what persists.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e_util import TranscriptClient, is_method, write_config
from schema_check import ProtocolValidator

from codex_trio.testing import mock_responses as mr
from codex_trio.testing.harness import open_server

FIXTURES = Path(__file__).parent / "fixtures" / "v1"
Message = dict[str, Any]
Predicate = Callable[[Message], bool]

PATCH_OK = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
PATCH_NO = "*** Begin Patch\n*** Add File: nope.txt\n+nope\n*** End Patch\n"
REJECTED = "exec command rejected by user"
MISSING_ID = "00000000-0000-7000-8000-000000000000"


# --- the client -----------------------------------------------------------------------------------


@dataclass
class V1Client(TranscriptClient):
    """The transcript-keeping client, with the v1 calls these tests make."""

    work: Path = field(kw_only=True)

    async def turn_done(self) -> list[Message]:
        return await self.until(is_method("turn/completed"))

    async def message(self, conversation_id: str, text: str) -> Message:
        return await self.call(
            "sendUserMessage",
            {"conversationId": conversation_id, "items": [{"type": "text", "data": {"text": text}}]},
        )


@asynccontextmanager
async def v1_client(
    mock: mr.MockResponses,
    codex_home: Path,
    work: Path,
    *,
    command: Sequence[str] | None = None,
    features: Sequence[str] = (),
) -> AsyncIterator[V1Client]:
    """A server (codex-trio, or ``command``) for ``mock``, initialized, with a v1 client on it."""
    write_config(codex_home, mock.base_url)
    if features:
        with (codex_home / "config.toml").open("a", encoding="utf-8") as f:
            f.write("\n[features]\n" + "".join(f"{name} = true\n" for name in features))
    work.mkdir(parents=True, exist_ok=True)
    reference = command is not None
    async with open_server(
        command=command,
        codex_home=codex_home,
        base_url=mock.base_url,
        # The reference is the yardstick, not what is checked; it may also take its time to exit.
        validator=None if reference else ProtocolValidator(),
        env={"TZ": "UTC"},
        check_exit=not reference,
    ) as server:
        await server.initialize(name="harness")
        yield V1Client(server, work=work)


def text_item(text: str) -> list[Message]:
    return [{"type": "text", "data": {"text": text}}]


def shell(command: str, call_id: str) -> mr.Script:
    return mr.function_call("shell", {"command": ["bash", "-lc", command]}, call_id=call_id)


# --- comparing with the reference ---------------------------------------------------------------

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d[-:]\d\d[-:]\d\d(\.\d+)?Z?")
# Notifications whose position the reference leaves to chance (telemetry, see reference-notes.md).
_RACY = frozenset({"account/rateLimits/updated", "thread/tokenUsage/updated", "codex/event/token_count"})


def _normalized(text: str, paths: Sequence[str]) -> str:
    for path in paths:
        text = text.replace(path, "<dir>")
    return _TIME.sub("<time>", _UUID.sub("<id>", text))


def skeleton(messages: Sequence[Message], paths: Sequence[str] = ()) -> list[str]:
    """One line per transcript entry (or per server message): kinds, methods, turn ids, item types
    and statuses, error texts, and the keys of results."""
    out: list[str] = []
    for entry in messages:
        sent = entry.get("dir") == "C"
        m: Message = entry["msg"] if "dir" in entry else entry
        method = m.get("method")
        if sent:
            out.append(f">> {method}" if method else ">> answer " + json.dumps(m.get("result")))
        elif method in _RACY:
            continue
        elif method and "id" in m:
            out.append(f"request {method} " + ",".join(m["params"]))
        elif method and method.startswith("codex/event/"):
            out.append(f"  {method[12:]} [{m['params']['id']}]")
        elif method:
            params = m.get("params") or {}
            extra = ""
            if "item" in params:
                extra = f" {params['item']['type']} {params['item'].get('status', '')}".rstrip()
            if method == "turn/completed":
                extra = f" {params['turn']['id']} {params['turn']['status']}"
            out.append(f"  {method}{extra}")
        elif "error" in m:
            out.append(f"error {m['error']['code']} {_normalized(m['error']['message'], paths)}")
        else:
            result = m["result"]
            out.append("result " + ",".join(result) if isinstance(result, dict) else f"result {result!r}")
    return out


def reference(name: str) -> list[Message]:
    lines = (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def assert_like_reference(name: str, transcript: Sequence[Message], paths: Sequence[str]) -> None:
    ours = skeleton(transcript, paths)
    theirs = skeleton(reference(name), ["<dir>"])
    assert ours == theirs


def server_messages(transcript: Sequence[Message]) -> list[Message]:
    return [entry["msg"] for entry in transcript if entry["dir"] == "S"]


def notes(transcript: Sequence[Message], method: str) -> list[Message]:
    return [m["params"] for m in server_messages(transcript) if m.get("method") == method and "id" not in m]


# --- scenarios (also run against the reference to write the fixtures) ------------------------------


@dataclass
class Scenario:
    name: str
    scripts: Callable[[], list[mr.Script]]
    features: Sequence[str] = ()


async def run_turns(client: V1Client, mock: mr.MockResponses) -> dict[str, Any]:
    """A conversation's first turns: listener gating at the start, sendUserMessage, sendUserTurn."""
    started = await client.result("newConversation", {"cwd": str(client.work)})
    cid = started["conversationId"]
    before_listener = await client.quiet(0.3)
    await client.result("addConversationListener", {"conversationId": cid})
    await client.until(is_method("codex/event/mcp_startup_complete"))
    await client.message(cid, "Say hello")
    await client.turn_done()
    turn = {
        "conversationId": cid,
        "items": text_item("Again"),
        "cwd": str(client.work),
        "approvalPolicy": "never",
        "sandboxPolicy": {"type": "workspace-write", "network_access": True},
        "model": "other-model",
        "effort": "low",
        "summary": "concise",
    }
    assert (await client.result("sendUserTurn", turn)) == {}
    await client.turn_done()
    await client.message(cid, "And again")
    await client.turn_done()
    return {"started": started, "before_listener": before_listener}


async def run_listeners(client: V1Client, mock: mr.MockResponses) -> dict[str, Any]:
    """Events wait for a listener, flow once per connection, and wait again when none is left."""
    cid = (await client.result("newConversation", {"cwd": str(client.work)}))["conversationId"]
    await client.message(cid, "Before any listener")
    await mock.wait_for_requests(1, path="responses")
    unheard_1 = await client.quiet(0.5)
    first = (await client.result("addConversationListener", {"conversationId": cid}))["subscriptionId"]
    await client.turn_done()
    second = (await client.result("addConversationListener", {"conversationId": cid}))["subscriptionId"]
    await client.message(cid, "Heard once")
    await client.turn_done()
    await client.result("removeConversationListener", {"subscriptionId": second})
    await client.message(cid, "Still heard")
    await client.turn_done()
    await client.result("removeConversationListener", {"subscriptionId": first})
    await client.message(cid, "Nobody listens")
    await mock.wait_for_requests(4, path="responses")
    unheard_2 = await client.quiet(0.5)
    await client.result("addConversationListener", {"conversationId": cid})
    await client.turn_done()
    await client.call("removeConversationListener", {"subscriptionId": first})
    return {"unheard": [unheard_1, unheard_2]}


async def run_interrupt(client: V1Client, mock: mr.MockResponses) -> dict[str, Any]:
    cid = (await client.result("newConversation", {"cwd": str(client.work)}))["conversationId"]
    await client.result("addConversationListener", {"conversationId": cid})
    await client.message(cid, "Talk for long")
    await client.until(is_method("item/started", lambda p: p["item"]["type"] == "agentMessage"))
    await client.send("interruptConversation", {"conversationId": cid})
    await client.turn_done()
    await client.message(cid, "Next")
    await client.turn_done()
    return {}


async def _approval(client: V1Client, method: str, decision: Any) -> Message:
    request = (await client.until(lambda m: m.get("method") == method and "id" in m))[-1]
    await client.answer(request, {"decision": decision})
    return request


async def run_approvals(client: V1Client, mock: mr.MockResponses) -> dict[str, Any]:
    """v1 approvals for a v1 conversation, whatever API starts the turn; v2 ones for a v2 thread."""
    params = {"cwd": str(client.work), "approvalPolicy": "untrusted", "sandbox": "workspace-write"}
    cid = (await client.result("newConversation", params))["conversationId"]
    await client.result("addConversationListener", {"conversationId": cid})
    requests = []
    for text, method, decision in (
        ("Approve it", "execCommandApproval", "approved"),
        ("Deny it", "execCommandApproval", "denied"),
        ("Patch it", "applyPatchApproval", "approved"),
        ("Deny the patch", "applyPatchApproval", "denied"),
        ("Abort it", "execCommandApproval", "abort"),
    ):
        await client.message(cid, text)
        requests.append(await _approval(client, method, decision))
        await client.turn_done()
    # A v2 turn on the v1 conversation: turn/started, and still the v1 request.
    turn = {"threadId": cid, "input": [{"type": "text", "text": "From v2"}]}
    await client.result("turn/start", turn)
    requests.append(await _approval(client, "execCommandApproval", "approved"))
    await client.turn_done()
    # A v2 thread keeps asking in v2 terms, with a v1 listener added.
    tid = (await client.result("thread/start", params))["thread"]["id"]
    await client.until(is_method("codex/event/mcp_startup_complete"))
    await client.result("addConversationListener", {"conversationId": tid})
    await client.result("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "v2 thread"}]})
    requests.append(await _approval(client, "item/commandExecution/requestApproval", "accept"))
    await client.turn_done()
    return {"requests": requests, "conversation": cid}


async def run_lifecycle(client: V1Client, mock: mr.MockResponses) -> dict[str, Any]:
    """Summaries, listing, resume, fork and archive within one server; v1 and v2 views of a thread."""
    a = await client.result("newConversation", {"cwd": str(client.work)})
    cid = a["conversationId"]
    await client.result("addConversationListener", {"conversationId": cid})
    await client.message(cid, "Hello there")
    await client.turn_done()
    home = client.server.codex_home
    relative = str(Path(a["rolloutPath"]).relative_to(home))
    by_id = await client.result("getConversationSummary", {"conversationId": cid})
    by_path = await client.result("getConversationSummary", {"rolloutPath": relative})
    listed = await client.result("listConversations", {})
    await client.call("listConversations", {"modelProviders": ["other"]})
    v2_listed = await client.result("thread/list", {})
    await client.call("thread/loaded/list", {})
    b = await client.result("newConversation", {"cwd": str(client.work)})
    # Resuming a loaded conversation answers for it as it stands. (The reference then runs a second
    # instance of it, which a listener added before does not hear: this script stays clear of that.)
    await client.call("resumeConversation", {"conversationId": b["conversationId"]})
    fork = await client.result("forkConversation", {"conversationId": cid})
    await client.call("thread/loaded/list", {})
    await client.call("archiveConversation", {"conversationId": fork["conversationId"],
                                              "rolloutPath": fork["rolloutPath"]})  # fmt: skip
    await client.call("archiveConversation", {"conversationId": cid, "rolloutPath": a["rolloutPath"]})
    await client.call("thread/loaded/list", {})
    after = await client.result("listConversations", {})
    await client.message(cid, "Anyone?")
    return {
        "a": a,
        "b": b,
        "by_id": by_id,
        "by_path": by_path,
        "listed": listed,
        "v2_listed": v2_listed,
        "fork": fork,
        "after": after,
    }


async def run_resume(client: V1Client, mock: mr.MockResponses, stored: dict[str, Any]) -> dict[str, Any]:
    """A later server: resume from a path, listen, talk on; fork by path."""
    b = stored["b"]
    resumed = await client.result("resumeConversation", {"path": b["rolloutPath"]})
    await client.result("addConversationListener", {"conversationId": b["conversationId"]})
    await client.until(is_method("codex/event/mcp_startup_complete"))
    await client.message(b["conversationId"], "After the restart")
    await client.turn_done()
    forked = await client.result("forkConversation", {"path": b["rolloutPath"]})
    return {"resumed": resumed, "forked": forked}


def error_requests(cid: str, rollout: str) -> list[tuple[str, Any]]:
    turn = {"items": [], "cwd": "/", "approvalPolicy": "never", "sandboxPolicy": {"type": "read-only"},
            "model": "m", "summary": "auto"}  # fmt: skip
    return [
        ("sendUserMessage", {"conversationId": MISSING_ID, "items": []}),
        ("sendUserMessage", {"conversationId": "nope", "items": []}),
        ("sendUserMessage", {"conversationId": cid}),
        ("sendUserMessage", {"conversationId": cid, "items": [{"type": "bogus"}]}),
        ("sendUserTurn", {"conversationId": MISSING_ID, **turn}),
        ("sendUserTurn", {"conversationId": cid, "items": []}),
        ("addConversationListener", {"conversationId": MISSING_ID}),
        ("addConversationListener", {"conversationId": "nope"}),
        ("removeConversationListener", {"subscriptionId": "nope"}),
        ("removeConversationListener", {"subscriptionId": MISSING_ID}),
        ("interruptConversation", {"conversationId": MISSING_ID}),
        ("getConversationSummary", {"conversationId": MISSING_ID}),
        ("getConversationSummary", {"conversationId": "nope"}),
        ("getConversationSummary", {"rolloutPath": "/nonexistent.jsonl"}),
        ("getConversationSummary", {}),
        ("resumeConversation", {"conversationId": MISSING_ID}),
        ("resumeConversation", {"conversationId": "nope"}),
        ("resumeConversation", {"path": "/nonexistent.jsonl"}),
        ("resumeConversation", {}),
        ("forkConversation", {"conversationId": MISSING_ID}),
        ("forkConversation", {"path": "/nonexistent.jsonl"}),
        ("forkConversation", {}),
        ("archiveConversation", {"conversationId": MISSING_ID, "rolloutPath": "/nonexistent.jsonl"}),
        ("archiveConversation", {"conversationId": MISSING_ID, "rolloutPath": rollout}),
        ("archiveConversation", {"conversationId": "nope", "rolloutPath": rollout}),
        ("newConversation", {"approvalPolicy": "sometimes"}),
        ("newConversation", {"profile": "nope"}),
        ("listConversations", {"cursor": "garbage"}),
    ]


async def run_errors(client: V1Client, mock: mr.MockResponses) -> dict[str, Any]:
    started = await client.result("newConversation", {"cwd": str(client.work)})
    for method, params in error_requests(started["conversationId"], started["rolloutPath"]):
        await client.call(method, params)
    return {}


SCENARIOS = {
    "turns": Scenario(
        "turns", lambda: [mr.text("First reply."), mr.text("Second reply."), mr.text("Third.")]
    ),
    "listeners": Scenario("listeners", lambda: [mr.text(f"Reply {n}.") for n in range(1, 6)]),
    "interrupt": Scenario(
        "interrupt",
        lambda: [mr.stall(after_events=4, script=mr.text("A reply that is cut short.")), mr.text("After.")],
    ),
    "approvals": Scenario(
        "approvals",
        lambda: [
            shell("touch approved.txt", "call_yes"),
            mr.text("Ran it."),
            shell("touch denied.txt", "call_no"),
            mr.text("Did not run."),
            mr.custom_tool_call("apply_patch", PATCH_OK, call_id="call_patch_yes"),
            mr.text("Patched."),
            mr.custom_tool_call("apply_patch", PATCH_NO, call_id="call_patch_no"),
            mr.text("Not patched."),
            # The aborted turn ends with the call: no reply follows it.
            shell("touch aborted.txt", "call_abort"),
            shell("touch from_v2.txt", "call_v2_turn"),
            mr.text("Ran from v2."),
            shell("touch v2_thread.txt", "call_v2_thread"),
            mr.text("Ran in the v2 thread."),
        ],
        features=("apply_patch_freeform",),
    ),
    "lifecycle": Scenario("lifecycle", lambda: [mr.text("Hi."), mr.text("Hi again.")]),
    "errors": Scenario("errors", lambda: []),
}


async def run_scenario(
    name: str, tmp_path: Path, command: Sequence[str] | None = None
) -> tuple[list[Message], dict[str, Any], mr.MockResponses]:
    """Runs scenario ``name`` against codex-trio (or ``command``); the transcript, what the scenario
    returned, and the mock (its requests)."""
    scenario = SCENARIOS[name]
    home, work = tmp_path / "home", tmp_path / "work"
    async with mr.open_mock_responses(*scenario.scripts()) as mock:
        transcript: list[Message] = []
        async with v1_client(mock, home, work, command=command, features=scenario.features) as client:
            runner = {
                "turns": run_turns,
                "listeners": run_listeners,
                "interrupt": run_interrupt,
                "approvals": run_approvals,
                "lifecycle": run_lifecycle,
                "errors": run_errors,
            }[name]
            out = await runner(client, mock)
            transcript += client.transcript
        if name == "lifecycle":
            async with v1_client(mock, home, work, command=command) as client:
                transcript.append({"dir": "C", "msg": {"restart": True}})
                out.update(await run_resume(client, mock, out))
                transcript += client.transcript
    return transcript, out, mock


# --- tests ------------------------------------------------------------------------------------------


async def test_a_v1_turn_flows_like_the_reference(tmp_path: Path) -> None:
    transcript, out, mock = await run_scenario("turns", tmp_path)
    assert_like_reference("turns", transcript, [str(tmp_path)])
    started = out["started"]
    assert list(started) == ["conversationId", "model", "reasoningEffort", "rolloutPath"]
    assert started["model"] == "mock-model" and started["reasoningEffort"] is None
    assert Path(started["rolloutPath"]).is_file()
    # Nothing reaches the client before it listens; then never thread/started nor turn/started.
    assert out["before_listener"] == []
    methods = {m.get("method") for m in server_messages(transcript)}
    assert not methods & {"thread/started", "turn/started"}
    legacy = notes(transcript, "codex/event/agent_message")
    assert [n["msg"]["message"] for n in legacy] == ["First reply.", "Second reply.", "Third."]
    assert {n["conversationId"] for n in legacy} == {started["conversationId"]}
    assert [n["turn"]["id"] for n in notes(transcript, "turn/completed")] == ["0", "1", "2"]
    # sendUserTurn's settings hold for the turns after it.
    bodies = [r.body for r in mock.responses_requests]
    assert [b["model"] for b in bodies] == ["mock-model", "other-model", "other-model"]


async def test_events_wait_for_a_listener_and_flow_once_per_connection(tmp_path: Path) -> None:
    transcript, out, mock = await run_scenario("listeners", tmp_path)
    assert_like_reference("listeners", transcript, [str(tmp_path)])
    assert out["unheard"] == [[], []]
    # What the conversation said while nobody listened arrives whole when a listener is added.
    said = [n["msg"]["message"] for n in notes(transcript, "codex/event/user_message")]
    assert said == ["Before any listener", "Heard once", "Still heard", "Nobody listens"]
    assert len(mock.responses_requests) == 4


async def test_interrupt_conversation_answers_between_the_abort_and_turn_completed(tmp_path: Path) -> None:
    transcript, _, mock = await run_scenario("interrupt", tmp_path)
    assert_like_reference("interrupt", transcript, [str(tmp_path)])
    messages = server_messages(transcript)
    answer = next(m for m in messages if m.get("result") == {"abortReason": "interrupted"})
    at = messages.index(answer)
    assert messages[at - 1]["method"] == "codex/event/turn_aborted"
    assert messages[at + 1]["method"] == "turn/completed"
    assert messages[at + 1]["params"]["turn"]["status"] == "interrupted"
    # The next turn tells the model about the interruption.
    assert "<turn_aborted>" in json.dumps(mock.responses_requests[-1].body["input"])


async def test_v1_approvals_accepted_denied_and_aborted(tmp_path: Path) -> None:
    transcript, out, mock = await run_scenario("approvals", tmp_path)
    assert_like_reference("approvals", transcript, [str(tmp_path)])
    work = tmp_path / "work"
    cid = out["conversation"]
    first = out["requests"][0]
    assert first["method"] == "execCommandApproval"
    assert first["params"] == {
        "conversationId": cid,
        "callId": "call_yes",
        "command": ["bash", "-lc", "touch approved.txt"],
        "cwd": str(work),
        "reason": None,
        "parsedCmd": [{"type": "unknown", "cmd": "touch approved.txt"}],
    }
    patch = out["requests"][2]
    assert patch["params"] == {
        "conversationId": cid,
        "callId": "call_patch_yes",
        "fileChanges": {str(work / "hello.txt"): {"type": "add", "content": "hello\n"}},
        "reason": None,
        "grantRoot": None,
    }
    created = sorted(p.name for p in work.iterdir())
    assert created == ["approved.txt", "from_v2.txt", "hello.txt", "v2_thread.txt"]
    outputs = [r.call_output("call_no") for r in mock.responses_requests if r.call_output("call_no")]
    assert outputs and REJECTED in json.dumps(outputs[0])
    statuses = [n["turn"]["status"] for n in notes(transcript, "turn/completed")]
    assert statuses == ["completed"] * 4 + ["interrupted", "completed", "completed"]
    # A refused v1 approval completes its item once (no early "declined" item as in v2).
    completed = notes(transcript, "item/completed")
    denied = [n["item"]["status"] for n in completed if n["item"]["id"] == "call_no"]
    assert denied == ["failed"]


async def test_summaries_listing_resume_fork_and_archive(tmp_path: Path) -> None:
    transcript, out, mock = await run_scenario("lifecycle", tmp_path)
    assert_like_reference("lifecycle", transcript, [str(tmp_path)])
    a, home = out["a"], tmp_path / "home"
    summary = out["by_id"]["summary"]
    assert out["by_path"] == out["by_id"]
    assert list(summary) == ["conversationId", "path", "preview", "timestamp", "updatedAt", "modelProvider",
                             "cwd", "cliVersion", "source", "gitInfo"]  # fmt: skip
    assert summary["conversationId"] == a["conversationId"] and summary["path"] == a["rolloutPath"]
    assert summary["preview"] == "Hello there" and summary["source"] == "vscode"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", summary["timestamp"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", summary["updatedAt"])
    # v1 and v2 list the same stored conversations.
    v2_ids = [t["id"] for t in out["v2_listed"]["data"]]
    assert [s["conversationId"] for s in out["listed"]["items"]] == v2_ids == [a["conversationId"]]
    # Resume and fork announce the conversation to the client that asked, with its stored events.
    configured = notes(transcript, "sessionConfigured")
    announced = [c["sessionId"] for c in configured[:2]]
    assert announced == [out["b"]["conversationId"], out["fork"]["conversationId"]]
    events = [e["type"] for e in out["fork"]["initialMessages"]]
    assert events[0] == "user_message" and "agent_message" in events
    # Archived rollouts move out of sessions/.
    archived = sorted(p.name for p in (home / "archived_sessions").iterdir())
    assert archived == sorted(Path(x["rolloutPath"]).name for x in (a, out["fork"]))
    assert [s["conversationId"] for s in out["after"]["items"]] == []
    # After a restart: the stored conversation resumes with no events (it had no turn), and talks on.
    assert out["resumed"]["initialMessages"] == []
    assert mock.responses_requests[-1].last_user_text() == "After the restart"
    assert out["forked"]["initialMessages"][0]["type"] == "user_message"


async def test_errors_read_like_the_reference(tmp_path: Path) -> None:
    transcript, _, _ = await run_scenario("errors", tmp_path)
    assert_like_reference("errors", transcript, [str(tmp_path)])



async def test_send_user_turn_decodes_its_sandbox_policy_like_execoneoffcommand(tmp_path: Path) -> None:
    # The reference's texts (one SandboxPolicy type for both methods): an explicit null and a relative
    # writable root are params errors; absent fields take their defaults.
    async with mr.open_mock_responses() as mock, v1_client(mock, tmp_path / "home", tmp_path / "work") as c:
        conversation = await c.result("newConversation", {})
        turn = {
            "conversationId": conversation["conversationId"],
            "items": text_item("hi"),
            "cwd": str(tmp_path),
            "approvalPolicy": "never",
            "model": "mock-model",
            "effort": None,
            "summary": "auto",
        }
        cases = [
            ({"type": "workspace-write", "network_access": None}, "invalid type: null, expected a boolean"),
            ({"type": "workspace-write", "writable_roots": ["rel/dir"]},
             "AbsolutePathBuf deserialized without a base path"),
            ({"type": "external-sandbox", "network_access": None},
             "invalid type: null, expected string or map"),
        ]  # fmt: skip
        for policy, message in cases:
            reply = await c.call("sendUserTurn", {**turn, "sandboxPolicy": policy})
            assert reply["error"] == {"code": -32600, "message": f"Invalid request: {message}"}
        assert await c.result("sendUserTurn", {**turn, "sandboxPolicy": {"type": "workspace-write"}}) == {}

# --- pure conversions -------------------------------------------------------------------------------


def test_v1_decisions_pass_through_and_anything_else_is_a_denial() -> None:
    from codex_trio.processors.client_requests import v1_decision

    for name in ("approved", "approved_for_session", "denied", "abort"):
        assert v1_decision({"decision": name}) == name
    assert v1_decision({"decision": {"approved_for_session": None}}) == "approved_for_session"
    amendment = {"approved_execpolicy_amendment": {"proposed_execpolicy_amendment": ["touch", "x"]}}
    assert v1_decision({"decision": amendment}) == amendment
    # v2 words, unknown words, bad shapes and null all deny, as the reference's fallback does.
    refusals: list[Any] = [{"decision": "accept"}, {"decision": "bogus"}, {"decision": {"approved": 1}}]
    for answer in [*refusals, {}, None, []]:
        assert v1_decision(answer) == "denied"


def test_v1_sandbox_policies_become_the_v2_ones_thread_settings_hold() -> None:
    from codex_trio.protocol.v1 import v2_sandbox_policy

    assert v2_sandbox_policy({"type": "read-only"}) == {"type": "readOnly"}
    assert v2_sandbox_policy({"type": "danger-full-access"}) == {"type": "dangerFullAccess"}
    assert v2_sandbox_policy({"type": "external-sandbox", "network_access": None}) == {
        "type": "externalSandbox",
        "networkAccess": "restricted",
    }
    workspace = {"type": "workspace-write", "writable_roots": ["/data"], "network_access": True,
                 "exclude_tmpdir_env_var": None, "exclude_slash_tmp": None}  # fmt: skip
    assert v2_sandbox_policy(workspace) == {
        "type": "workspaceWrite",
        "writableRoots": ["/data"],
        "networkAccess": True,
        "excludeTmpdirEnvVar": False,
        "excludeSlashTmp": False,
    }
