"""review/start end to end: codex-trio as a subprocess, the Responses API mocked on 127.0.0.1, a git
repository as the work directory.

Each scenario is compared with the reference (Codex CLI 0.94.0) run the same way against the same mock:
tests/fixtures/review/reference.json holds the structure of its review streams (message kinds and order,
the texts a client sees), of its upstream requests (model, headers, the roles of the input, the tools)
and of its rollouts. That file is derived from raw captures with the helpers at the top of this module
(the captures stay out of the repository: they hold the reference's prompt prose). Every message the
server writes is checked against the protocol schema by the harness.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from e2e_util import Agent, agent, is_method, is_reply, rollout_lines, text_of

from codex_trio.core.review import (
    REVIEW_INSTRUCTIONS,
    InvalidReviewTarget,
    findings_block,
    normalize_target,
    parse_review_output,
    render_review_output,
)
from codex_trio.testing import mock_responses as mr

FIXTURE = Path(__file__).parent / "fixtures" / "review" / "reference.json"

Message = dict[str, Any]

# ---------------------------------------------------------------------------------------------------
# The structure compared with the reference (also what derives the fixture from raw captures)


def review_segment(messages: Sequence[Message]) -> list[Message]:
    """A review's stream: the new thread's announcements (detached), the review/start answer, and all
    up to that review turn's turn/completed."""
    start = next(i for i, m in enumerate(messages) if "reviewThreadId" in (m.get("result") or {}))
    result = messages[start]["result"]
    thread_id, turn_id = result["reviewThreadId"], result["turn"]["id"]
    first = start
    while first > 0:
        params = messages[first - 1].get("params") or {}
        method = messages[first - 1].get("method")
        announces = method == "thread/started" and params["thread"]["id"] == thread_id
        startup = (
            method == "codex/event/mcp_startup_complete"
            and params.get("conversationId") == thread_id
            and params.get("id") == ""
        )
        if not (announces or startup):
            break
        first -= 1
    before = messages[first - 1].get("result") if first > 0 else None
    if isinstance(before, dict) and (before.get("thread") or {}).get("id") == thread_id:
        # Those announced the reviewed thread itself (thread/start): an inline review announces nothing.
        first = start
    end = next(
        i
        for i in range(start, len(messages))
        if messages[i].get("method") == "turn/completed"
        and messages[i]["params"]["threadId"] == thread_id
        and messages[i]["params"]["turn"]["id"] == turn_id
    )
    return list(messages[first : end + 1])


def review_skeleton(messages: Sequence[Message]) -> list[str]:
    """Each message's kind: ``result``/``error``; a notification's method (with the item type of item
    events and the status of turn/completed); a legacy event's type (with its item type) and event id.
    Two orders the reference does not keep from run to run are fixed: turn/started right after the
    answer, and a detached thread's mcp_startup_complete before its thread/started."""
    out: list[str] = []
    for m in messages:
        method = m.get("method")
        params: Mapping[str, Any] = m.get("params") or {}
        if method is None:
            out.append("error" if "error" in m else "result")
        elif method.startswith("codex/event/"):
            msg = params["msg"]
            kind = msg["type"]
            if kind in ("item_started", "item_completed"):
                kind += ":" + msg["item"]["type"]
            out.append(f"{kind}@{params['id']}")
        elif method in ("item/started", "item/completed"):
            out.append(f"{method}:{params['item']['type']}")
        elif method == "turn/completed":
            out.append(f"{method}:{params['turn']['status']}")
        else:
            out.append(method)
    if "turn/started" in out and "result" in out:
        out.remove("turn/started")
        out.insert(out.index("result") + 1, "turn/started")
    if "thread/started" in out and "mcp_startup_complete@" in out:
        out.remove("mcp_startup_complete@")
        out.insert(out.index("thread/started"), "mcp_startup_complete@")
    return out


def is_user_instructions(item: Mapping[str, Any]) -> bool:
    # The reference lists its bundled skills there; codex-trio has none, so the message may be absent.
    return text_of(item).startswith("# AGENTS.md instructions for ")


def request_summary(headers: Mapping[str, str], body: Mapping[str, Any]) -> dict[str, Any]:
    """What the structure of an upstream request is made of (its prose and ids left out)."""
    return {
        "model": body["model"],
        "subagent": headers.get("x-openai-subagent"),
        "web_search_eligible": headers.get("x-oai-web-search-eligible"),
        "input": [
            str(item.get("role") or item.get("type"))
            for item in body["input"]
            if not is_user_instructions(item)
        ],
        "tools": [str(tool.get("name") or tool.get("type")) for tool in body["tools"]],
        "reasoning": body.get("reasoning"),
    }


def rollout_skeleton(lines: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for line in lines:
        payload = line["payload"]
        kind = line["type"]
        if kind == "session_meta":
            forked = " forked" if "forked_from_id" in payload else ""
            out.append(f"session_meta {json.dumps(payload.get('source'))}{forked}")
        elif kind == "response_item":
            if not is_user_instructions(payload):
                out.append(f"response_item {payload.get('role') or payload.get('type')}")
        elif kind == "event_msg":
            out.append(f"event_msg {payload['type']}")
        else:
            out.append(kind)
    return out


# ---------------------------------------------------------------------------------------------------
# Running reviews

REFERENCE: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))

REVIEW: dict[str, Any] = {
    "findings": [
        {
            "title": "[P1] Off-by-one in loop",
            "body": "The loop skips the last element.\nUse <= instead.",
            "confidence_score": 0.8,
            "priority": 1,
            "code_location": {"absolute_file_path": "/tmp/x/a.py", "line_range": {"start": 3, "end": 4}},
        },
        {
            "title": "[P3] Naming",
            "body": "Rename foo.",
            "confidence_score": 0.4,
            "priority": 3,
            "code_location": {"absolute_file_path": "/tmp/x/b.py", "line_range": {"start": 10, "end": 10}},
        },
    ],
    "overall_correctness": "patch is incorrect",
    "overall_explanation": "  The change breaks iteration.  ",
    "overall_confidence_score": 0.7,
}
REVIEW_TEXT = json.dumps(REVIEW)
RENDERED = (
    "The change breaks iteration.\n\nFull review comments:\n\n"
    "- [P1] Off-by-one in loop — /tmp/x/a.py:3-4\n  The loop skips the last element.\n  Use <= instead.\n\n"
    "- [P3] Naming — /tmp/x/b.py:10-10\n  Rename foo."
)
INTERRUPTED_MESSAGE = "Review was interrupted. Please re-run /review and wait for it to complete."
# Fixed identities and dates: the commits get the captures' shas (the hints show them).
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@e",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@e",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(work: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=work, env={**os.environ, **GIT_ENV}, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def make_repo(work: Path) -> dict[str, str]:
    """The captures' repository: main with one commit, a feature branch one commit ahead, and
    uncommitted work on top (a modified and an untracked file)."""
    work.mkdir(parents=True, exist_ok=True)
    git(work, "init", "-q", "-b", "main")
    (work / "a.py").write_text("x = 1\n")
    git(work, "add", "a.py")
    git(work, "commit", "-q", "-m", "first")
    git(work, "checkout", "-q", "-b", "feature")
    (work / "a.py").write_text("x = 2\n")
    git(work, "commit", "-q", "-am", "second change")
    info = {"sha": git(work, "rev-parse", "HEAD"), "main": git(work, "rev-parse", "main")}
    (work / "a.py").write_text("x = 3\n")
    (work / "new.txt").write_text("untracked\n")
    return info


def targets(info: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    return {
        "uncommitted": {"type": "uncommittedChanges"},
        "base": {"type": "baseBranch", "branch": "main"},
        "commit": {"type": "commit", "sha": info["sha"], "title": "second change"},
        "commitnotitle": {"type": "commit", "sha": info["sha"]},
        "custom": {"type": "custom", "instructions": "  Check the tests please  "},
        "nobranch": {"type": "baseBranch", "branch": "does-not-exist"},
    }


async def start_review(
    server: Agent, thread_id: str, target: Mapping[str, Any], delivery: str | None = None
) -> Any:
    params: dict[str, Any] = {"threadId": thread_id, "target": dict(target)}
    if delivery is not None:
        params["delivery"] = delivery
    return await server.request("review/start", params)


async def review(
    server: Agent, thread_id: str, target: Mapping[str, Any], delivery: str | None = None
) -> list[Message]:
    """review/start, and everything the server writes up to that review's turn/completed."""
    request_id = await start_review(server, thread_id, target, delivery)
    seen = await server.until(is_reply(request_id))
    assert "result" in seen[-1], seen[-1]
    result = seen[-1]["result"]
    done = is_method(
        "turn/completed",
        lambda p: p["threadId"] == result["reviewThreadId"] and p["turn"]["id"] == result["turn"]["id"],
    )
    seen += await server.until(done)
    return review_segment(seen)


def summaries(requests: Sequence[mr.RecordedRequest]) -> list[dict[str, Any]]:
    return [request_summary(r.headers, r.body) for r in requests]


def rollouts(codex_home: Path, thread_ids: Sequence[str] | None = None) -> list[list[str]]:
    """The rollouts' skeletons in creation order (thread ids are UUIDv7), optionally only those of
    ``thread_ids`` and of the threads created after the first of them."""
    files = sorted((codex_home / "sessions").rglob("rollout-*.jsonl"), key=lambda p: p.name[-41:])
    if thread_ids is not None:
        first = min(i for i, p in enumerate(files) if any(t in p.name for t in thread_ids))
        files = files[first:]
    return [rollout_skeleton(rollout_lines(p)) for p in files]


def review_request_of(requests: Sequence[mr.RecordedRequest]) -> mr.RecordedRequest:
    return next(r for r in requests if r.headers.get("x-openai-subagent") == "review")


def item_texts(segment: Sequence[Message]) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in segment:
        if m.get("method") == "item/completed":
            item = m["params"]["item"]
            if item["type"] == "enteredReviewMode":
                out["hint"] = item["review"]
            elif item["type"] == "exitedReviewMode":
                out["exited"] = item["review"]
            elif item["type"] == "agentMessage" and item["id"] == "review_rollout_assistant":
                out["assistant"] = item["text"]
    return out


# ---------------------------------------------------------------------------------------------------
# Inline reviews


async def test_inline_reviews_of_every_target_match_the_reference(tmp_path: Path) -> None:
    """For each target: a first turn, the review, a turn after it; the same thread, as the reference."""
    work, codex_home = tmp_path / "work", tmp_path / "home"
    info = make_repo(work)
    names = ["uncommitted", "base", "commit", "commitnotitle", "custom", "nobranch"]
    async with mr.open_mock_responses() as mock, agent(mock, codex_home, work) as server:
        for name in names:
            reference = REFERENCE["nobranch" if name == "nobranch" else f"{name}-inline"]
            before = len(mock.responses_requests)
            if name == "nobranch":
                mock.enqueue(mr.text(REVIEW_TEXT))
            else:
                mock.enqueue(mr.text("Hello."), mr.text(REVIEW_TEXT), mr.text("After review."))
            thread_id = (await server.start_thread())["thread"]["id"]
            if name != "nobranch":
                await server.turn(thread_id, "first turn")
            segment = await review(server, thread_id, targets(info)[name])
            if name != "nobranch":
                await server.turn(thread_id, "after review")
            requests = mock.responses_requests[before:]

            expected = reference["reviews"][0]
            assert review_skeleton(segment) == expected["skeleton"], name
            assert item_texts(segment) == {k: expected[k] for k in ("hint", "exited", "assistant")}
            assert item_texts(segment)["exited"] == RENDERED
            turn_id = "1" if name != "nobranch" else "0"
            hint = expected["hint"]
            assert segment[0]["result"] == {
                "turn": {
                    "id": turn_id,
                    "items": [
                        {
                            "type": "userMessage",
                            "id": turn_id,
                            "content": [{"type": "text", "text": hint, "text_elements": []}],
                        }
                    ],
                    "status": "inProgress",
                    "error": None,
                },
                "reviewThreadId": thread_id,
            }
            assert summaries(requests) == reference["requests"], name

            # What the reviewer is asked: our instructions, the thread's initial context, the target.
            reviewer = review_request_of(requests)
            assert reviewer.body["instructions"] == REVIEW_INSTRUCTIONS
            assert reviewer.body["prompt_cache_key"] == reviewer.headers["session_id"] != thread_id
            prompt = reviewer.last_user_text() or ""
            if name == "base":
                assert f"git diff {info['main']}" in prompt and "'main'" in prompt
            elif name == "nobranch":
                assert "git merge-base HEAD does-not-exist" in prompt
            elif name == "commit":
                assert info["sha"] in prompt and '"second change"' in prompt
            elif name == "commitnotitle":
                assert info["sha"] in prompt and "titled" not in prompt
            elif name == "custom":
                assert prompt == "Check the tests please"
            else:
                assert "staged" in prompt and "untracked" in prompt

            if name != "nobranch":
                # The next turn's model sees the review: a note with the results, and the rendered text.
                after = requests[-1].input_items()
                note, answer = after[-3], after[-2]
                assert note["role"] == "user" and text_of(note).startswith("<user_action>")
                assert RENDERED.split("\n\n", 1)[1] in text_of(note)
                assert (answer["role"], text_of(answer)) == ("assistant", RENDERED)
            assert rollouts(codex_home, [thread_id]) == reference["rollouts"], name


async def test_review_output_events_keep_the_reference_types(tmp_path: Path) -> None:
    """exited_review_mode carries the parsed review as the reference types it (f32 scores), and the
    rollout of the reviewed thread records the review events."""
    work, codex_home = tmp_path / "work", tmp_path / "home"
    make_repo(work)
    async with mr.open_mock_responses(mr.text(REVIEW_TEXT)) as mock, agent(mock, codex_home, work) as server:
        started = await server.start_thread()
        segment = await review(server, started["thread"]["id"], {"type": "custom", "instructions": "look"})
    exited = next(m for m in segment if m.get("method") == "codex/event/exited_review_mode")
    output = exited["params"]["msg"]["review_output"]
    assert output["overall_explanation"] == "  The change breaks iteration.  "
    assert output["overall_confidence_score"] == 0.699999988079071
    assert [f["confidence_score"] for f in output["findings"]] == [0.800000011920929, 0.4000000059604645]
    entered = next(m for m in segment if m.get("method") == "codex/event/entered_review_mode")
    assert entered["params"]["msg"] == {
        "type": "entered_review_mode",
        "target": {"type": "custom", "instructions": "look"},
        "user_facing_hint": "look",
    }
    lines = rollout_lines(started["thread"]["path"])
    events = [line["payload"] for line in lines if line["type"] == "event_msg"]
    assert events[0]["type"] == "entered_review_mode"
    exited_event = next(e for e in events if e["type"] == "exited_review_mode")
    assert exited_event["review_output"]["findings"][0]["title"] == "[P1] Off-by-one in loop"


# ---------------------------------------------------------------------------------------------------
# Detached reviews


async def test_detached_reviews_run_on_a_fork_like_the_reference(tmp_path: Path) -> None:
    work, codex_home = tmp_path / "work", tmp_path / "home"
    info = make_repo(work)
    async with mr.open_mock_responses() as mock, agent(mock, codex_home, work) as server:
        for name in ["uncommitted", "base", "commit", "custom"]:
            reference = REFERENCE[f"{name}-detached"]
            before = len(mock.responses_requests)
            mock.enqueue(mr.text("Hello."), mr.text(REVIEW_TEXT), mr.text("After review."))
            started = await server.start_thread()
            thread_id = started["thread"]["id"]
            await server.turn(thread_id, "first turn")
            segment = await review(server, thread_id, targets(info)[name], "detached")
            after = await server.turn(thread_id, "after review")
            requests = mock.responses_requests[before:]

            expected = reference["reviews"][0]
            assert review_skeleton(segment) == expected["skeleton"], name
            assert item_texts(segment) == {k: expected[k] for k in ("hint", "exited", "assistant")}
            result = next(m["result"] for m in segment if "result" in m)
            review_thread = result["reviewThreadId"]
            assert review_thread != thread_id
            assert result["turn"]["id"] == "0"
            announced = next(m["params"]["thread"] for m in segment if m.get("method") == "thread/started")
            assert announced["id"] == review_thread
            assert (announced["preview"], announced["turns"]) == ("first turn", [])
            # The reviewed thread is left alone: its next turn is its second, and its model never hears
            # of the review.
            assert after[0]["result"]["turn"]["id"] == "1"
            assert summaries(requests) == reference["requests"], name
            assert not any("<user_action>" in text_of(i) for i in requests[-1].input_items())
            assert rollouts(codex_home, [thread_id]) == reference["rollouts"], name


# ---------------------------------------------------------------------------------------------------
# Errors, busy threads, interrupts, failures


async def test_review_errors_match_the_reference(tmp_path: Path) -> None:
    work, codex_home = tmp_path / "work", tmp_path / "home"
    make_repo(work)
    async with mr.open_mock_responses(mr.text(REVIEW_TEXT)) as mock, agent(mock, codex_home, work) as server:
        thread_id = (await server.start_thread())["thread"]["id"]
        custom = {"type": "custom", "instructions": "x"}
        calls: list[tuple[str, Any, str | None]] = [
            ("00000000-0000-0000-0000-000000000000", custom, None),
            ("not-a-uuid", custom, None),
            (thread_id, {"type": "custom", "instructions": " \n "}, None),
            (thread_id, {"type": "baseBranch", "branch": " "}, None),
            (thread_id, {"type": "commit", "sha": "  "}, None),
            (thread_id, {"type": "bogus"}, None),
            (thread_id, custom, "sideways"),
        ]
        errors = []
        for target_thread, target, delivery in calls:
            request_id = await start_review(server, target_thread, target, delivery)
            errors.append((await server.until(is_reply(request_id)))[-1]["error"])
        assert errors == REFERENCE["errors"]["errors"]
        # A sha that names no commit is the reviewer's problem, not an error.
        segment = await review(server, thread_id, {"type": "commit", "sha": "deadbeefdeadbeef"})
        assert review_skeleton(segment) == REFERENCE["errors"]["reviews"][0]["skeleton"]
        assert item_texts(segment)["hint"] == "commit deadbee"

        ephemeral = (await server.start_thread(ephemeral=True))["thread"]["id"]
        request_id = await start_review(server, ephemeral, custom, "detached")
        error = (await server.until(is_reply(request_id)))[-1]["error"]
        assert error == {"code": -32600, "message": f"no rollout found for thread id {ephemeral}"}


async def test_a_review_replaces_the_running_turn(tmp_path: Path) -> None:
    work, codex_home = tmp_path / "work", tmp_path / "home"
    make_repo(work)
    reference = REFERENCE["busy"]
    async with (
        mr.open_mock_responses(mr.stall(), mr.text(REVIEW_TEXT)) as mock,
        agent(mock, codex_home, work) as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        await server.start_turn(thread_id, "slow turn")
        # The first turn waits on a response that never ends: the review finds it running.
        await mock.wait_for_requests(1, path="responses")
        segment = await review(server, thread_id, {"type": "custom", "instructions": "busy review"})
    skeleton = review_skeleton(segment)
    # The replaced turn ends first (as interrupted, with no note for the model), then the review runs.
    replaced = skeleton[: skeleton.index("turn/completed:interrupted") + 1]
    assert replaced == ["result", "turn/started", "turn_aborted@0", "turn/completed:interrupted"]
    assert segment[0]["result"]["turn"]["id"] == "1"
    aborted = next(m for m in segment if m.get("method") == "codex/event/turn_aborted")
    assert aborted["params"]["msg"]["reason"] == "replaced"
    ref_skeleton = reference["reviews"][0]["skeleton"]
    assert skeleton == ref_skeleton
    # From the replaced turn's end on, the thread's rollout is the reference's: no note for the model.
    parent = rollouts(codex_home, [thread_id])[0]
    ref_parent = reference["rollouts"][0]
    tail = parent[parent.index("event_msg turn_aborted") :]
    assert tail == ref_parent[ref_parent.index("event_msg turn_aborted") :]


async def test_input_sent_during_a_review_is_dropped(tmp_path: Path) -> None:
    """turn/start on a thread under review answers a new turn that never runs; the model never gets
    that input, as with the reference."""
    work, codex_home = tmp_path / "work", tmp_path / "home"
    make_repo(work)
    reference = REFERENCE["steer"]
    async with (
        mr.open_mock_responses(mr.text(REVIEW_TEXT, initial_delay=0.5), mr.text("next")) as mock,
        agent(mock, codex_home, work) as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        request_id = await start_review(server, thread_id, {"type": "custom", "instructions": "steer me"})
        seen = await server.until(is_method("item/completed", lambda p: p["item"]["type"] == "userMessage"))
        steer = await server.start_turn(thread_id, "during review")
        seen += await server.until(is_method("turn/completed"))
        after = await server.turn(thread_id, "after review")
        requests = list(mock.responses_requests)
    assert review_skeleton(review_segment(seen)) == reference["reviews"][0]["skeleton"]
    assert next(m for m in seen if m.get("id") == steer)["result"]["turn"]["id"] == "1"
    assert any(m.get("id") == request_id for m in seen)
    assert after[0]["result"]["turn"]["id"] == "2"
    assert summaries(requests) == reference["requests"]
    assert not any("during review" in text_of(item) for item in requests[-1].input_items())


async def test_interrupting_a_review_ends_it_like_the_reference(tmp_path: Path) -> None:
    work, codex_home = tmp_path / "work", tmp_path / "home"
    make_repo(work)
    reference = REFERENCE["interrupt"]
    async with (
        mr.open_mock_responses(mr.stall(after_events=2), mr.text("after")) as mock,
        agent(mock, codex_home, work) as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        target = {"type": "custom", "instructions": "review then interrupt"}
        request_id = await start_review(server, thread_id, target)
        seen = await server.until(is_reply(request_id))
        turn_id = seen[-1]["result"]["turn"]["id"]
        await mock.wait_for_requests(1, path="responses")
        interrupt = await server.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
        seen += await server.until(is_method("turn/completed"))
        segment = review_segment(seen)
        after = await server.turn(thread_id, "after interrupted review")
        requests = list(mock.responses_requests)

    expected = reference["reviews"][0]
    assert review_skeleton(segment) == expected["skeleton"]
    assert any(m.get("id") == interrupt and m.get("result") == {} for m in segment)
    assert item_texts(segment) == {k: expected[k] for k in ("hint", "exited", "assistant")}
    assert item_texts(segment)["assistant"] == INTERRUPTED_MESSAGE
    assert after[0]["result"]["turn"]["id"] == "2"
    assert summaries(requests) == reference["requests"]
    # The model then hears that the review stopped, then the usual interrupted-turn note.
    talk = [(i["role"], text_of(i)) for i in requests[-1].input_items() if i.get("type") == "message"]
    assert talk[-4][0] == "user" and talk[-4][1].startswith("<user_action>")
    assert talk[-3] == ("assistant", INTERRUPTED_MESSAGE)
    assert talk[-2][1].startswith("<turn_aborted>")
    assert rollouts(codex_home) == reference["rollouts"]


async def test_interrupting_a_detached_review(tmp_path: Path) -> None:
    work, codex_home = tmp_path / "work", tmp_path / "home"
    make_repo(work)
    reference = REFERENCE["interrupt-detached"]
    async with (
        mr.open_mock_responses(mr.stall(after_events=2), mr.text("after")) as mock,
        agent(mock, codex_home, work) as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        request_id = await start_review(
            server, thread_id, {"type": "custom", "instructions": "review then interrupt"}, "detached"
        )
        seen = await server.until(is_reply(request_id))
        result = seen[-1]["result"]
        await mock.wait_for_requests(1, path="responses")
        await server.request("turn/interrupt", {"threadId": result["reviewThreadId"], "turnId": "0"})
        seen += await server.until(is_method("turn/completed"))
        after = await server.turn(thread_id, "after interrupted review")
        requests = list(mock.responses_requests)
    assert review_skeleton(review_segment(seen)) == reference["reviews"][0]["skeleton"]
    assert after[0]["result"]["turn"]["id"] == "0"
    assert summaries(requests) == reference["requests"]
    assert rollouts(codex_home) == reference["rollouts"]


async def test_a_failed_reviewer_fails_the_review_turn(tmp_path: Path) -> None:
    work, codex_home = tmp_path / "work", tmp_path / "home"
    make_repo(work)
    reference = REFERENCE["fail"]
    async with (
        mr.open_mock_responses(
            mr.http_error(400, mr.error_body("Bad review request")), mr.text("next")
        ) as mock,
        agent(mock, codex_home, work) as server,
    ):
        thread_id = (await server.start_thread())["thread"]["id"]
        segment = await review(server, thread_id, {"type": "custom", "instructions": "will fail"})
        await server.turn(thread_id, "after failed review")
        requests = list(mock.responses_requests)
    assert review_skeleton(segment) == reference["reviews"][0]["skeleton"]
    completed = segment[-1]["params"]["turn"]
    assert completed["status"] == "failed"
    assert "Bad review request" in completed["error"]["message"]
    assert item_texts(segment)["assistant"] == INTERRUPTED_MESSAGE
    assert summaries(requests) == reference["requests"]
    assert rollouts(codex_home) == reference["rollouts"]


# ---------------------------------------------------------------------------------------------------
# What the reviewer does along the way, and its model


async def test_reviewer_tools_reasoning_and_interim_messages_show_like_the_reference(tmp_path: Path) -> None:
    work, codex_home = tmp_path / "work", tmp_path / "home"
    make_repo(work)
    async with mr.open_mock_responses() as mock, agent(mock, codex_home, work) as server:
        # A reviewer that runs a command first.
        mock.enqueue(
            mr.function_call("shell", {"command": ["bash", "-lc", "git diff"]}, call_id="call_r1"),
            mr.text(REVIEW_TEXT),
        )
        thread_id = (await server.start_thread())["thread"]["id"]
        shell = await review(server, thread_id, {"type": "uncommittedChanges"})
        # A reviewer that reasons and says something before its result.
        mock.enqueue(
            mr.response(
                mr.reasoning(["Thinking ", "hard"], ["raw ", "reasoning"]),
                mr.text("Interim note."),
                mr.text(REVIEW_TEXT),
            )
        )
        thread_id = (await server.start_thread())["thread"]["id"]
        reasoning = await review(server, thread_id, {"type": "custom", "instructions": "reason"})
        # Reviewers that answer with prose, or with the review inside prose.
        embedded = {"findings": [], "overall_correctness": "ok", "overall_explanation": "embedded",
                    "overall_confidence_score": 0.5}
        mock.enqueue(mr.text("Not JSON at all, just prose."), mr.text(f"pre {json.dumps(embedded)} post"))
        thread_id = (await server.start_thread())["thread"]["id"]
        prose = await review(server, thread_id, {"type": "custom", "instructions": "r1"})
        inside = await review(server, thread_id, {"type": "custom", "instructions": "r2"})

    assert review_skeleton(shell) == REFERENCE["shell"]["reviews"][0]["skeleton"]
    command = next(
        m
        for m in shell
        if m.get("method") == "item/completed" and m["params"]["item"]["type"] == "commandExecution"
    )
    assert "a.py" in command["params"]["item"]["aggregatedOutput"]
    assert review_skeleton(reasoning) == REFERENCE["reasoning"]["reviews"][0]["skeleton"]
    interim = [
        m["params"]["msg"]["message"] for m in reasoning if m.get("method") == "codex/event/agent_message"
    ]
    assert interim == ["Interim note.", RENDERED]
    assert [review_skeleton(prose), review_skeleton(inside)] == [
        r["skeleton"] for r in REFERENCE["badjson"]["reviews"]
    ]
    assert item_texts(prose)["exited"] == "Not JSON at all, just prose."
    assert item_texts(inside)["exited"] == "embedded"


async def test_the_reviewer_uses_the_review_model_and_the_thread_configuration(tmp_path: Path) -> None:
    work, codex_home = tmp_path / "work", tmp_path / "home"
    info = make_repo(work)
    async with (
        mr.open_mock_responses(
            mr.text("ok"), mr.text(REVIEW_TEXT), mr.text("Hello."), mr.text(REVIEW_TEXT), mr.text("After.")
        ) as mock,
        agent(mock, codex_home, work) as server,
    ):
        # Turn overrides change the reviewer's model (no review_model set), not its permissions.
        thread_id = (await server.start_thread())["thread"]["id"]
        await server.turn(
            thread_id,
            "x",
            model="other-model",
            approvalPolicy="on-request",
            sandboxPolicy={"type": "readOnly"},
        )
        await review(server, thread_id, {"type": "custom", "instructions": "with overrides"})
        overrides = summaries(mock.responses_requests)
        reviewer_permissions = text_of(review_request_of(mock.responses_requests).input_items()[0])

        # review_model picks the reviewer's model, and with it the model's tools and reasoning.
        before = len(mock.responses_requests)
        started = await server.start_thread(config={"review_model": "gpt-5.1-codex"})
        thread_id = started["thread"]["id"]
        await server.turn(thread_id, "first turn")
        await review(server, thread_id, targets(info)["commit"])
        await server.turn(thread_id, "after review")
        review_model = summaries(mock.responses_requests[before:])

    assert overrides == REFERENCE["overrides"]["requests"]
    assert "danger-full-access" in reviewer_permissions
    assert review_model == REFERENCE["commit-inline.rm"]["requests"]


# ---------------------------------------------------------------------------------------------------
# Reviewed threads as thread/read, thread/list, thread/rollback and thread/resume show them


def rebuilt(*turns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Turns as the reference rebuilds them from a rollout: ``turn-N``/``item-N`` ids, each item given
    as (type, text)."""
    out: list[dict[str, Any]] = []
    item_ids = iter(range(1, 100))
    for number, items in enumerate(turns, start=1):
        built: list[dict[str, Any]] = []
        for kind, text in items:
            item_id = f"item-{next(item_ids)}"
            if kind == "userMessage":
                content = [{"type": "text", "text": text, "text_elements": []}]
                built.append({"type": kind, "id": item_id, "content": content})
            else:
                built.append({"type": kind, "id": item_id, "text": text})
        out.append({"id": f"turn-{number}", "items": built, "status": "completed", "error": None})
    return out


async def test_stored_reviews_show_like_the_reference(tmp_path: Path) -> None:
    """What the reference 0.94.0 answered in the same scenarios: a thread whose first user_message
    event is a review's relayed prompt has the preview "" for good and is never listed (the reference
    reads a rollout's head only up to its first user_message event); the review's enter/exit events
    leave no items in rebuilt turns, where the prompt shows twice, the second time with the review's
    message; the review's note to the model counts as a turn for thread/rollback."""
    work, codex_home = tmp_path / "work", tmp_path / "home"
    make_repo(work)
    custom = {"type": "custom", "instructions": "rev first"}
    reviewed = [("userMessage", "rev first")], [("userMessage", "rev first"), ("agentMessage", RENDERED)]
    turned = [("userMessage", "X turn"), ("agentMessage", "X reply")]
    async with mr.open_mock_responses() as mock:
        async with agent(mock, codex_home, work) as server:
            mock.enqueue(mr.text(REVIEW_TEXT), mr.text("X reply"))
            fresh = (await server.start_thread())["thread"]["id"]
            await review(server, fresh, custom)
            read = await server.result("thread/read", {"threadId": fresh, "includeTurns": True})
            assert (read["thread"]["preview"], read["thread"]["turns"]) == ("", rebuilt(*reviewed))
            assert (await server.result("thread/list", {}))["data"] == []
            # The reviewer's own thread is stored as a review sub-agent's, with its prompt as preview.
            sub = await server.result("thread/list", {"sourceKinds": ["subAgentReview"]})
            assert [(t["preview"], t["source"]) for t in sub["data"]] == [
                ("rev first", {"subAgent": "review"})
            ]
            await server.turn(fresh, "X turn")
            read = await server.result("thread/read", {"threadId": fresh, "includeTurns": True})
            assert (read["thread"]["preview"], read["thread"]["turns"]) == ("", rebuilt(*reviewed, turned))
            assert (await server.result("thread/list", {}))["data"] == []

            # A detached review leaves the reviewed thread as it was; the fork it runs on is like the
            # inline case.
            mock.enqueue(mr.text(REVIEW_TEXT), mr.text("X reply"))
            parent = (await server.start_thread())["thread"]["id"]
            segment = await review(server, parent, custom, "detached")
            fork = next(m["result"] for m in segment if "result" in m)["reviewThreadId"]
            await server.turn(parent, "X turn")
            read = await server.result("thread/read", {"threadId": fork, "includeTurns": True})
            assert (read["thread"]["preview"], read["thread"]["turns"]) == ("", rebuilt(*reviewed))
            read = await server.result("thread/read", {"threadId": parent, "includeTurns": True})
            assert (read["thread"]["preview"], read["thread"]["turns"]) == ("X turn", rebuilt(turned))
            listed = await server.result("thread/list", {})
            assert [(t["id"], t["preview"]) for t in listed["data"]] == [(parent, "X turn")]

            # Rolling back one turn after a review drops the review, and the model forgets it.
            mock.enqueue(mr.text("Hello."), mr.text(REVIEW_TEXT), mr.text("C reply"))
            rolled = (await server.start_thread())["thread"]["id"]
            await server.turn(rolled, "A turn")
            await review(server, rolled, {"type": "custom", "instructions": "rev"})
            back = await server.result("thread/rollback", {"threadId": rolled, "numTurns": 1})
            first = [("userMessage", "A turn"), ("agentMessage", "Hello.")]
            assert back["thread"]["turns"] == rebuilt(first, [("userMessage", "rev")])
            assert back["thread"]["preview"] == "A turn"
            await server.turn(rolled, "C turn")
            talk = [(i["role"], text_of(i)) for i in mock.responses_requests[-1].input_items()]
            assert talk[-3:] == [("user", "A turn"), ("assistant", "Hello."), ("user", "C turn")]
            listed = await server.result("thread/list", {})
            expected = [(rolled, "A turn"), (parent, "X turn")]
            assert [(t["id"], t["preview"]) for t in listed["data"]] == expected

        # Another process sees the same.
        async with agent(mock, codex_home, work) as server:
            resumed = (await server.result("thread/resume", {"threadId": fresh}))["thread"]
            assert (resumed["preview"], resumed["turns"]) == ("", rebuilt(*reviewed, turned))
            listed = await server.result("thread/list", {})
            assert [t["id"] for t in listed["data"]] == [rolled, parent]


# ---------------------------------------------------------------------------------------------------
# Units: targets, parsing and rendering


def test_targets_are_trimmed_and_blank_ones_refused() -> None:
    branch = normalize_target({"type": "baseBranch", "branch": " main\u3000"})
    assert branch == {"type": "baseBranch", "branch": "main"}
    assert normalize_target({"type": "commit", "sha": " abc ", "title": "  "}) == {
        "type": "commit",
        "sha": "abc",
        "title": None,
    }
    for target, message in [
        ({"type": "custom", "instructions": "\n\n"}, "instructions must not be empty"),
        ({"type": "baseBranch", "branch": "\t"}, "branch must not be empty"),
        ({"type": "commit", "sha": " ", "title": "x"}, "sha must not be empty"),
    ]:
        with pytest.raises(InvalidReviewTarget) as raised:
            normalize_target(target)
        assert raised.value.message == message


def test_review_output_is_parsed_as_strictly_as_the_reference() -> None:
    whole = parse_review_output(REVIEW_TEXT)
    assert whole["findings"][0]["code_location"]["line_range"] == {"start": 3, "end": 4}
    assert whole["overall_confidence_score"] == 0.699999988079071
    # An integer score is a float; a missing field, a wrong type, a fractional priority or a duplicate
    # key makes the text prose.
    integer = parse_review_output(json.dumps({**REVIEW, "overall_confidence_score": 1}))
    assert integer["overall_confidence_score"] == 1.0
    for broken in [
        {k: v for k, v in REVIEW.items() if k != "overall_correctness"},
        {**REVIEW, "overall_explanation": 3},
        {**REVIEW, "findings": [{**REVIEW["findings"][0], "priority": 1.5}]},
    ]:
        text = json.dumps(broken)
        assert parse_review_output(text)["overall_explanation"] == text
    duplicate = (
        '{"findings": [], "findings": [], "overall_correctness": "", "overall_explanation": "", '
        '"overall_confidence_score": 0}'
    )
    assert parse_review_output(duplicate)["overall_explanation"] == duplicate
    assert parse_review_output("Looks fine {not json}") == {
        "findings": [],
        "overall_correctness": "",
        "overall_explanation": "Looks fine {not json}",
        "overall_confidence_score": 0.0,
    }


def test_rendering_of_findings() -> None:
    output = parse_review_output(REVIEW_TEXT)
    assert render_review_output(output) == RENDERED
    single = render_review_output({**output, "findings": output["findings"][:1]})
    assert single.split("\n\n")[1] == "Review comment:"
    assert render_review_output({**output, "overall_explanation": " ", "findings": []}) == (
        "Reviewer failed to output a response."
    )
    assert findings_block(output["findings"]).startswith("\nFull review comments:\n\n- [P1]")
