"""Threads end to end: codex-trio as a subprocess, the Responses API mocked on 127.0.0.1.

thread/start, resume, fork, read, list, loaded/list, archive, unarchive, name/set and rollback as a
client sees them, and what persists: rollouts in the reference's format, resumable after a restart or a
kill, and the reference's own rollouts (tests/fixtures/reference_rollouts/) listed, read and resumed.
Every message the server writes is checked against the protocol schema by the harness.
"""

from __future__ import annotations

import json
import math
import signal
import uuid
from pathlib import Path
from typing import Any

from e2e_util import (
    agent,
    capture,
    conversation,
    is_method,
    is_reply,
    methods,
    rollout_lines,
    skeleton,
    text_of,
)
from fixtures.reference_rollouts import helpers

from codex_trio.testing import mock_responses as mr

PROVIDER = "mock_provider"


def notes(messages: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [m["params"] for m in messages if m.get("method") == method and "id" not in m]


def estimate(instructions: str, items: list[dict[str, Any]]) -> int:
    """The reference's usage estimate of a request: four bytes a token, rounded up, of the instructions
    and of each input item's compact JSON."""

    def tokens(text: str) -> int:
        return math.ceil(len(text.encode("utf-8")) / 4)

    compact = [json.dumps(i, ensure_ascii=False, separators=(",", ":")) for i in items]
    return tokens(instructions) + sum(tokens(c) for c in compact)


def line_kinds(lines: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    return [(line["type"], line["payload"].get("type"), line["payload"].get("role")) for line in lines]


async def test_start_read_list_and_loaded_list(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    # With an AGENTS.md, the initial context has the reference's three messages.
    (work / "AGENTS.md").write_text("Use tabs.\n")
    async with (
        mr.open_mock_responses(mr.text("One."), mr.text("Two."), mr.text("Three.")) as mock,
        agent(mock, tmp_path / "home", work) as server,
    ):
        request_id = await server.request("thread/start", {"cwd": str(work), "approvalPolicy": "never",
                                                            "sandbox": "danger-full-access"})  # fmt: skip
        started = await server.until(is_reply(request_id))
        started += await server.until(is_method("codex/event/mcp_startup_complete"))
        reply = started[0]["result"]
        thread = reply["thread"]
        reference = capture("text_turn.jsonl")[1]["result"]
        assert list(reply) == list(reference) and list(thread) == list(reference["thread"])
        assert {
            k: reply[k] for k in ("model", "modelProvider", "approvalPolicy", "sandbox", "reasoningEffort")
        } == {
            "model": "mock-model",
            "modelProvider": PROVIDER,
            "approvalPolicy": "never",
            "sandbox": {"type": "dangerFullAccess"},
            "reasoningEffort": None,
        }
        assert reply["cwd"] == thread["cwd"] == str(work)
        assert (thread["preview"], thread["source"], thread["cliVersion"], thread["turns"]) == (
            "",
            "vscode",
            "0.94.0",
            [],
        )
        assert thread["modelProvider"] == PROVIDER and thread["gitInfo"] is None
        assert uuid.UUID(thread["id"]).version == 7
        assert notes(started, "thread/started") == [{"thread": thread}]
        # The rollout exists at once: the session meta and the initial context.
        path = Path(thread["path"])
        assert path.parent.parent.parent.parent == tmp_path / "home" / "sessions"
        assert path.name.startswith("rollout-") and path.name.endswith(f"-{thread['id']}.jsonl")
        lines = rollout_lines(path)
        assert lines[0]["type"] == "session_meta" and lines[0]["payload"]["id"] == thread["id"]
        assert lines[0]["payload"]["originator"] == "harness" and lines[0]["payload"]["source"] == "vscode"
        assert {line["type"] for line in lines[1:]} == {"response_item"}

        # A fresh thread is not listed; one with a user message is.
        assert await server.result("thread/list", {}) == {"data": [], "nextCursor": None}
        first = thread["id"]
        await server.turn(first, "first thread")
        # The rollout, line for line of the same kinds as the reference's for a first turn.
        reference_lines = rollout_lines(helpers.rollout_path(helpers.FIXTURES / "main", helpers.ids()["A"]))
        assert line_kinds(rollout_lines(path)) == line_kinds(reference_lines[:11])
        second = (await server.start_thread())["thread"]["id"]
        await server.turn(second, "second thread")
        third = (await server.start_thread(ephemeral=True))["thread"]
        assert third["path"] is None
        await server.turn(third["id"], "ephemeral")

        listed = await server.result("thread/list", {})
        assert [t["id"] for t in listed["data"]] == [second, first]  # newest first, ephemeral not on disk
        assert [t["preview"] for t in listed["data"]] == ["second thread", "first thread"]
        assert all(t["turns"] == [] for t in listed["data"]) and listed["nextCursor"] is None
        page = await server.result("thread/list", {"limit": 1})
        assert [t["id"] for t in page["data"]] == [second]
        stamp, _, cursor_id = page["nextCursor"].partition("|")
        assert cursor_id == second and len(stamp) == len("2026-11-21T14-39-47")
        rest = await server.result("thread/list", {"limit": 1, "cursor": page["nextCursor"]})
        assert [t["id"] for t in rest["data"]] == [first]
        by_update = await server.result("thread/list", {"sortKey": "updated_at"})
        assert {t["id"] for t in by_update["data"]} == {first, second}
        assert await server.result("thread/list", {"modelProviders": ["other"]}) == {
            "data": [],
            "nextCursor": None,
        }
        assert len((await server.result("thread/list", {"modelProviders": []}))["data"]) == 2
        assert (await server.error("thread/list", {"cursor": "garbage"}))[
            "message"
        ] == "invalid cursor: garbage"

        read = (await server.result("thread/read", {"threadId": first, "includeTurns": True}))["thread"]
        assert read["preview"] == "first thread" and read["path"] == thread["path"]
        assert read["turns"] == [
            {
                "id": "turn-1",
                "items": [
                    {"type": "userMessage", "id": "item-1",
                     "content": [{"type": "text", "text": "first thread", "text_elements": []}]},
                    {"type": "agentMessage", "id": "item-2", "text": "One."},
                ],
                "status": "completed",
                "error": None,
            }
        ]  # fmt: skip
        plain = (await server.result("thread/read", {"threadId": first}))["thread"]
        assert plain["turns"] == [] and plain["id"] == first
        missing = str(uuid.uuid4())
        error = await server.error("thread/read", {"threadId": missing})
        assert error == {"code": -32600, "message": f"thread not loaded: {missing}"}
        bad = await server.error("thread/read", {"threadId": "nope"})
        assert bad["message"].startswith("invalid thread id: invalid character")

        loaded = await server.result("thread/loaded/list", {})
        assert loaded == {"data": [first, second, third["id"]], "nextCursor": None}
        page = await server.result("thread/loaded/list", {"limit": 2})
        assert page == {"data": [first, second], "nextCursor": second}
        rest = await server.result("thread/loaded/list", {"limit": 2, "cursor": second})
        assert rest == {"data": [third["id"]], "nextCursor": None}


async def test_start_overrides_and_instructions(tmp_path: Path) -> None:
    work = tmp_path / "work"
    async with mr.open_mock_responses(mr.text("ok")) as mock, agent(mock, tmp_path / "home", work) as server:
        started = await server.start_thread(
            model="other-model",
            approvalPolicy="on-request",
            sandbox="workspace-write",
            baseInstructions="Be brief.",
            developerInstructions="Prefer tabs.",
        )
        assert (started["model"], started["approvalPolicy"]) == ("other-model", "on-request")
        assert started["sandbox"] == {
            "type": "workspaceWrite",
            "writableRoots": [],
            "networkAccess": False,
            "excludeTmpdirEnvVar": False,
            "excludeSlashTmp": False,
        }
        await server.turn(started["thread"]["id"], "hi")

    (request,) = mock.responses_requests
    assert request.body["model"] == "other-model" and request.body["instructions"] == "Be brief."
    talk = conversation(request.input_items())
    assert talk[0][0] == "developer" and talk[0][1].startswith("<permissions instructions>")
    assert talk[1] == ("developer", "Prefer tabs.")
    assert talk[-1] == ("user", "hi")


async def test_archive_unarchive_and_names(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with mr.open_mock_responses(mr.text("ok")) as mock, agent(mock, home, tmp_path / "work") as server:
        thread = (await server.start_thread())["thread"]
        thread_id = thread["id"]
        await server.turn(thread_id, "keep me")

        reply, before = await server.call("thread/name/set", {"threadId": thread_id, "name": "  My thread "})
        after = await server.until(is_method("thread/name/updated"))
        assert reply["result"] == {} and before == []
        # The reference's order: the answer, then the legacy event and thread/name/updated.
        reference = capture("misc_turn.jsonl")
        index = next(i for i, m in enumerate(reference) if is_reply(8)(m))
        assert skeleton([reply, *after]) == skeleton(reference[index : index + 3])
        assert after[-1]["params"] == {"threadId": thread_id, "threadName": "My thread"}
        index_lines = (home / "session_index.jsonl").read_text().splitlines()
        assert [json.loads(line)["thread_name"] for line in index_lines] == ["My thread"]
        assert json.loads(index_lines[0])["id"] == thread_id
        empty = await server.error("thread/name/set", {"threadId": thread_id, "name": "  "})
        assert empty["message"] == "thread name must not be empty"
        unknown = str(uuid.uuid4())
        assert (await server.error("thread/name/set", {"threadId": unknown, "name": "x"}))["message"] == (
            f"thread not found: {unknown}"
        )
        listed = (await server.result("thread/list", {}))["data"]
        assert [t["id"] for t in listed] == [thread_id]

        reply, _ = await server.call("thread/archive", {"threadId": thread_id})
        assert reply["result"] == {}
        assert await server.quiet(0.2) == []
        archived = home / "archived_sessions" / Path(thread["path"]).name
        assert archived.is_file() and not Path(thread["path"]).exists()
        assert (await server.result("thread/list", {}))["data"] == []
        assert [t["id"] for t in (await server.result("thread/list", {"archived": True}))["data"]] == [
            thread_id
        ]
        assert (await server.error("thread/archive", {"threadId": unknown}))["message"] == (
            f"no rollout found for thread id {unknown}"
        )

        restored = (await server.result("thread/unarchive", {"threadId": thread_id}))["thread"]
        assert restored["id"] == thread_id and restored["path"] == thread["path"]
        assert Path(thread["path"]).is_file() and not archived.exists()
        assert restored["preview"] == "keep me"
        again = await server.error("thread/unarchive", {"threadId": thread_id})
        assert again["message"] == f"no archived rollout found for thread id {thread_id}"
        assert [t["id"] for t in (await server.result("thread/list", {}))["data"]] == [thread_id]


async def test_rollback(tmp_path: Path) -> None:
    scripts = [mr.text("Reply one."), mr.text("Reply two."), mr.stall(after_events=4), mr.text("Reply four."),
               mr.text("Ephemeral.")]  # fmt: skip
    async with (
        mr.open_mock_responses(*scripts) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        thread = (await server.start_thread())["thread"]
        thread_id = thread["id"]
        await server.turn(thread_id, "one")
        await server.turn(thread_id, "two")

        # While a turn runs: refused, with the legacy error event only (no v2 error notification).
        await server.start_turn(thread_id, "three")
        await server.until(is_method("item/started", lambda p: p["item"]["type"] == "agentMessage"))
        reply, before = await server.call("thread/rollback", {"threadId": thread_id, "numTurns": 1})
        assert reply["error"] == {
            "code": -32600,
            "message": "Cannot rollback while a turn is in progress.",
        }
        refused = [m for m in before if m.get("method") == "codex/event/error"]
        assert [m["params"]["msg"] for m in refused] == [
            {"type": "error", "message": "Cannot rollback while a turn is in progress.",
             "codex_error_info": "thread_rollback_failed"}
        ]  # fmt: skip
        assert refused[0]["params"]["id"] == "3"
        assert "error" not in methods(before)
        await server.request("turn/interrupt", {"threadId": thread_id, "turnId": "2"})
        await server.until(is_method("turn/completed"))

        zero = await server.error("thread/rollback", {"threadId": thread_id, "numTurns": 0})
        assert zero == {"code": -32600, "message": "numTurns must be >= 1"}

        # Like the reference: token usage (an estimate of what is left), the legacy event, then the
        # answer, with the turns that remain.
        reply, before = await server.call("thread/rollback", {"threadId": thread_id, "numTurns": 1})
        reference = capture("misc_turn.jsonl")
        start = next(i for i, m in enumerate(reference) if m.get("method") == "codex/event/token_count"
                     and m["params"]["id"] == "7")  # fmt: skip
        assert skeleton([*before, reply]) == skeleton(reference[start:])
        assert before[-1]["params"]["msg"] == {"type": "thread_rolled_back", "num_turns": 1}
        assert before[-1]["params"]["id"] == "5"  # the refused rollback and the interrupt used ids
        usage = notes(before, "thread/tokenUsage/updated")[0]
        assert usage["turnId"] == "5"
        last = usage["tokenUsage"]["last"]
        assert (last["inputTokens"], last["outputTokens"], last["cachedInputTokens"]) == (0, 0, 0)
        total_before = usage["tokenUsage"]["total"]
        kept = reply["result"]["thread"]
        assert kept["id"] == thread_id and kept["preview"] == "one"
        assert [t["id"] for t in kept["turns"]] == ["turn-1", "turn-2"]
        assert [t["items"][0]["content"][0]["text"] for t in kept["turns"]] == ["one", "two"]
        assert (await server.result("thread/read", {"threadId": thread_id, "includeTurns": True}))["thread"][
            "turns"
        ] == kept["turns"]

        everything = await server.result("thread/rollback", {"threadId": thread_id, "numTurns": 10})
        assert everything["thread"]["turns"] == []
        four = await server.turn(thread_id, "four")
        assert four[0]["result"]["turn"]["id"] == "7"

        unknown = str(uuid.uuid4())
        missing = await server.error("thread/rollback", {"threadId": unknown, "numTurns": 1})
        assert missing["message"] == f"thread not found: {unknown}"

        # An ephemeral thread is rolled back all the same, but has no rollout to answer from.
        ephemeral = (await server.start_thread(ephemeral=True))["thread"]["id"]
        await server.turn(ephemeral, "eph")
        reply, before = await server.call("thread/rollback", {"threadId": ephemeral, "numTurns": 1})
        assert reply["error"] == {"code": -32600, "message": "thread has no persisted rollout"}
        assert methods(before)[-1] == "codex/event/thread_rolled_back"

    one, two, _three, four_req, _ = mock.responses_requests
    # The estimate is that of the history left (the request after the last rollback, less its new
    # message): the previous one covered turns one and two.
    answer = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Reply two."}],
    }
    assert last["totalTokens"] == estimate(one.body["instructions"], [*two.input_items(), answer])
    assert total_before["totalTokens"] > 0
    talk = conversation(four_req.input_items())
    assert talk[-1] == ("user", "four")
    assert ("user", "one") not in talk and ("user", "three") not in talk
    assert four_req.input_items()[:-1] == one.input_items()[:-1]  # just the initial context is left

    lines = rollout_lines(thread["path"])
    rolled = [line["payload"] for line in lines if line["type"] == "event_msg"
              and line["payload"]["type"] in ("token_count", "thread_rolled_back")]  # fmt: skip
    assert {"type": "thread_rolled_back", "num_turns": 1} in rolled
    assert {"type": "thread_rolled_back", "num_turns": 10} in rolled


async def test_resume_after_restart_and_after_a_kill(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    async with mr.open_mock_responses(mr.text("First answer."), mr.stall(after_events=5)) as mock:
        async with agent(mock, home, work) as server:
            thread = (await server.start_thread())["thread"]
            thread_id = thread["id"]
            await server.turn(thread_id, "remember me")
        first_request = mock.responses_requests[0]

        async with agent(mock, home, work, check_exit=False) as server:
            reply, before = await server.call("thread/resume", {"threadId": thread_id})
            resumed = reply["result"]
            assert resumed["thread"]["id"] == thread_id and resumed["thread"]["preview"] == "remember me"
            assert [t["id"] for t in resumed["thread"]["turns"]] == ["turn-1"]
            assert resumed["thread"]["turns"][0]["items"][1] == {"type": "agentMessage", "id": "item-2",
                                                                 "text": "First answer."}  # fmt: skip
            assert list(resumed) == ["thread", "model", "modelProvider", "cwd", "approvalPolicy", "sandbox",
                                     "reasoningEffort"]  # fmt: skip
            # No thread/started for a resumed thread, only (like the reference) its MCP start-up
            # report before the answer; turn ids start again at "0".
            assert [m["method"] for m in before] == ["codex/event/mcp_startup_complete"]
            assert await server.quiet(0.2) == []
            running = await server.start_turn(thread_id, "and this")
            seen = await server.until(is_reply(running))
            assert seen[-1]["result"]["turn"]["id"] == "0"
            await server.until(is_method("item/agentMessage/delta"))
            # Killed mid-turn: whatever was written is on disk, line by line.
            server.server.send_signal(signal.SIGKILL)
            await server.server.wait_exit(5)

        second_request = mock.responses_requests[1]
        # The model got the stored history, then a fresh initial context (like the reference, a resumed
        # thread runs with the configured defaults, not the start's overrides; the cwd is the thread's),
        # then the message.
        stored = [
            *first_request.input_items(),
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "First answer."}],
            },
        ]
        assert second_request.input_items()[: len(stored)] == stored
        fresh = second_request.input_items()[len(stored) :]
        assert [i["role"] for i in fresh] == ["developer", "user", "user"]
        assert "read-only" in text_of(fresh[0])
        assert fresh[1] == first_request.input_items()[-2]  # the same environment context
        assert text_of(fresh[2]) == "and this"

        # A torn last line (a write cut by the kill) is skipped; the thread resumes.
        with Path(thread["path"]).open("ab") as rollout:
            rollout.write(b'{"timestamp":"2026-11-21T14:39:40.370Z","type":"response_item","pay')
        mock.enqueue(mr.text("Back again."))
        async with agent(mock, home, work) as server:
            resumed = await server.result("thread/resume", {"threadId": thread_id})
            turns = resumed["thread"]["turns"]
            assert [t["items"][0]["content"][0]["text"] for t in turns] == ["remember me", "and this"]
            again = await server.turn(thread_id, "still here")
            assert notes(again, "turn/completed")[0]["turn"]["status"] == "completed"
            listed = await server.result("thread/list", {})
            assert [t["id"] for t in listed["data"]] == [thread_id]
        talk = conversation(mock.responses_requests[-1].input_items())
        users = [text for role, text in talk if role == "user" and not text.startswith("<")]
        assert users == ["remember me", "and this", "still here"]


async def test_fork(tmp_path: Path) -> None:
    async with (
        mr.open_mock_responses(mr.text("Parent answer."), mr.text("Fork answer.")) as mock,
        agent(mock, tmp_path / "home", tmp_path / "work") as server,
    ):
        parent = (await server.start_thread())["thread"]
        await server.turn(parent["id"], "in the parent")
        reply, _ = await server.call("thread/fork", {"threadId": parent["id"]})
        announced = await server.until(is_method("thread/started"))
        fork = reply["result"]["thread"]
        assert fork["id"] != parent["id"] and fork["path"] != parent["path"]
        assert fork["preview"] == "in the parent"
        assert [t["id"] for t in fork["turns"]] == ["turn-1"]
        assert announced[-1]["params"] == {"thread": fork}
        forked_turn = await server.turn(fork["id"], "in the fork")
        assert forked_turn[0]["result"]["turn"]["id"] == "0"
        loaded = (await server.result("thread/loaded/list", {}))["data"]
        assert loaded == [parent["id"], fork["id"]]

    lines = rollout_lines(fork["path"])
    assert lines[0]["type"] == "session_meta" and lines[0]["payload"]["id"] == fork["id"]
    assert lines[0]["payload"]["forked_from_id"] == parent["id"]
    assert lines[1]["type"] == "session_meta" and lines[1]["payload"]["id"] == parent["id"]
    first, second = mock.responses_requests
    assert second.input_items()[: len(first.input_items()) + 1] == [
        *first.input_items(),
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Parent answer."}],
        },
    ]
    assert conversation(second.input_items())[-1] == ("user", "in the fork")
    assert second.headers["session_id"] == fork["id"]


async def test_the_reference_rollouts_are_listed_read_and_resumed(tmp_path: Path) -> None:
    home, record = helpers.install("main", tmp_path)
    ids = helpers.ids()
    expected_requests = json.loads((helpers.FIXTURES / "resume_requests.json").read_text())
    async with (
        mr.open_mock_responses(mr.text("Resumed.")) as mock,
        agent(mock, home, tmp_path / "work") as server,
    ):
        for answer in record["answers"]:
            expected = helpers.relocate(answer["response"], record["codex_home"], home)
            reply, _ = await server.call(answer["method"], answer["params"])
            label = answer["label"]
            if "error" in expected:
                assert reply["error"] == expected["error"], label
            elif answer["method"] == "thread/resume":
                assert reply["result"]["thread"] == expected["result"]["thread"], label
                assert reply["result"]["modelProvider"] == PROVIDER
            else:
                assert reply["result"] == expected["result"], label
        done = await server.turn(ids["A"], "after resume A")
        assert notes(done, "turn/completed")[0]["turn"]["status"] == "completed"

    # The stored history the reference sent after resuming A, item for item, then our initial context
    # (our own wording) and the new message.
    (request,) = mock.responses_requests
    reference = expected_requests["A"]
    stored = reference[: len(reference) - 4]
    assert request.input_items()[: len(stored)] == stored
    tail = conversation(request.input_items()[len(stored) :])
    assert tail[0][0] == "developer" and tail[-1] == ("user", "after resume A")
    assert any(text.startswith("<environment_context>") for _, text in tail)
    assert text_of(request.input_items()[-1]) == "after resume A"
