"""Rollout files: format, persistence policy, reading, turns and resume history, against the reference."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from fixtures.reference_rollouts import helpers

from codex_trio.core.rollout import (
    Rollout,
    RolloutItem,
    RolloutWriter,
    SessionMetaFields,
    aread_rollout,
    compacted,
    drop_last_user_turns,
    encode_line,
    event_msg,
    fork_rollout,
    format_timestamp,
    history_for_resume,
    new_thread_id,
    parse_rollout_file_name,
    parse_timestamp,
    read_rollout,
    reconstruct_turns,
    response_item,
    rollout_path_for,
    user_message_text,
)

MAIN = helpers.FIXTURES / "main"


def fixture_rollout(key: str) -> Path:
    return helpers.rollout_path(MAIN, helpers.ids()[key])


def clock_from(stamps: list[str]) -> Iterator[datetime]:
    for stamp in stamps:
        moment = parse_timestamp(stamp)
        assert moment is not None
        yield moment


def fields_of(meta: dict[str, Any]) -> SessionMetaFields:
    return SessionMetaFields(
        cwd=meta["cwd"],
        originator=meta["originator"],
        cli_version=meta["cli_version"],
        model_provider=meta.get("model_provider"),
        base_instructions=meta["base_instructions"]["text"],
        source=meta["source"],
        git=meta.get("git"),
    )


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


@pytest.mark.parametrize("key", ["A", "B", "C", "D", "E"])
def test_reference_lines_reencode_to_the_same_bytes(key: str) -> None:
    path = fixture_rollout(key)
    raw_lines = path.read_bytes().splitlines(keepends=True)
    rollout = read_rollout(path)
    assert rollout.skipped == 0
    assert [encode_line(line) for line in rollout.lines] == raw_lines


def test_writer_reproduces_a_reference_rollout_byte_for_byte(tmp_path: Path) -> None:
    reference = read_rollout(fixture_rollout("A"))
    meta = reference.lines[0]["payload"]
    ticks = clock_from([line["timestamp"] for line in reference.lines])
    created = parse_timestamp(meta["timestamp"])
    assert created is not None
    writer = RolloutWriter.create(
        tmp_path, meta["id"], fields_of(meta), created=created, clock=lambda: next(ticks)
    )
    with writer:
        written = writer.append(reference.items[1:])
    assert written == len(reference.lines) - 1
    assert writer.path == rollout_path_for(tmp_path, meta["id"], created)
    assert writer.path.parent.relative_to(tmp_path).parts[0] == "sessions"
    assert writer.path.read_bytes() == fixture_rollout("A").read_bytes()


def test_fork_matches_the_reference_fork(tmp_path: Path) -> None:
    parent_full = read_rollout(fixture_rollout("A"))
    fork = read_rollout(fixture_rollout("C"))
    fork_meta = fork.lines[0]["payload"]
    assert list(fork_meta)[:2] == ["id", "forked_from_id"]
    # The parent as it was when the reference forked it.
    parent = Rollout(
        parent_full.path, [line for line in parent_full.lines if line["timestamp"] < fork_meta["timestamp"]]
    )
    copied = 1 + len(parent.lines)
    ticks = clock_from([line["timestamp"] for line in fork.lines])
    created = parse_timestamp(fork_meta["timestamp"])
    assert created is not None
    with fork_rollout(
        tmp_path,
        parent,
        thread_id=fork_meta["id"],
        fields=fields_of(fork_meta),
        created=created,
        clock=lambda: next(ticks),
    ) as writer:
        ours = writer.path.read_bytes().splitlines(keepends=True)
    theirs = fixture_rollout("C").read_bytes().splitlines(keepends=True)
    assert len(ours) == copied
    assert ours == theirs[:copied]


def test_policy_keeps_only_what_the_reference_persists(tmp_path: Path) -> None:
    start = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    fields = SessionMetaFields(cwd="/w", originator="harness", cli_version="0.94.0", model_provider="p")
    items: list[RolloutItem] = [
        event_msg({"type": "user_message", "message": "hi", "images": [], "local_images": []}),
        event_msg({"type": "agent_message_delta", "delta": "h"}),
        event_msg({"type": "exec_command_begin", "call_id": "c"}),
        event_msg({"type": "task_complete", "last_agent_message": None}),
        event_msg({"type": "error", "message": "boom"}),
        response_item({"type": "other"}),
        response_item(assistant("hello")),
        event_msg({"type": "turn_aborted", "reason": "interrupted"}),
        {"type": "turn_context", "payload": {"cwd": "/w"}},
        compacted({"message": "summary"}),
    ]
    thread_id = new_thread_id(start)
    with RolloutWriter.create(tmp_path, thread_id, fields, created=start, clock=lambda: start) as w:
        assert w.append(items) == 5
    kinds = [(line["type"], line["payload"].get("type")) for line in read_rollout(w.path).lines]
    assert kinds == [
        ("session_meta", None),
        ("event_msg", "user_message"),
        ("response_item", "message"),
        ("event_msg", "turn_aborted"),
        ("turn_context", None),
        ("compacted", None),
    ]
    first = w.path.read_text().splitlines()[0]
    assert first.startswith('{"timestamp":"2026-01-02T03:04:05.678Z","type":"session_meta","payload":{"id":"')
    meta = json.loads(first)["payload"]
    assert list(meta) == ["id", "timestamp", "cwd", "originator", "cli_version", "source", "model_provider"]
    assert meta["source"] == "vscode"


def test_torn_last_line_is_skipped_and_appending_starts_a_fresh_line(tmp_path: Path) -> None:
    source = fixture_rollout("F")
    assert not source.read_bytes().endswith(b"\n")
    target = tmp_path / source.name
    target.write_bytes(source.read_bytes())
    before = read_rollout(target)
    assert before.skipped == 1
    assert before.thread_id == helpers.ids()["F"]

    moment = datetime(2026, 11, 22, tzinfo=timezone.utc)
    with RolloutWriter.open_existing(target, clock=lambda: moment) as writer:
        assert writer.thread_id == helpers.ids()["F"]
        writer.append([response_item(user("appended"))])
    after = read_rollout(target)
    assert after.skipped == 1
    assert after.lines[:-1] == before.lines
    assert after.lines[-1]["payload"] == user("appended")


def test_unknown_record_types_and_events_are_tolerated() -> None:
    record = helpers.answers()["probe_cases"]
    uid = next(k for k, v in record.items() if v == "rollback_all")
    rollout = read_rollout(helpers.rollout_path(helpers.FIXTURES / "probes", uid))
    assert rollout.skipped == 1  # the "future_line_type" line
    assert any(line["payload"].get("type") == "unknown_future_event" for line in rollout.lines)


def recorded_reads() -> list[tuple[str, str, dict[str, Any]]]:
    cases = []
    for set_name in ("main", "probes"):
        for answer in helpers.answers()[set_name]["answers"]:
            wanted = answer["method"] == "thread/read" and answer["params"].get("includeTurns")
            if wanted and "result" in answer["response"]:
                cases.append((set_name, answer["label"], answer["response"]["result"]["thread"]))
    return cases


@pytest.mark.parametrize(("set_name", "label", "thread"), recorded_reads(), ids=lambda v: str(v)[:40])
def test_turns_match_what_the_reference_rebuilt(set_name: str, label: str, thread: dict[str, Any]) -> None:
    rollout = read_rollout(helpers.rollout_path(helpers.FIXTURES / set_name, thread["id"]))
    assert reconstruct_turns(rollout) == thread["turns"]


def test_rebuilt_turns_honour_interrupts_and_rollbacks() -> None:
    turns = reconstruct_turns(read_rollout(fixture_rollout("A")))
    assert [(t["id"], t["status"]) for t in turns] == [
        ("turn-1", "completed"),
        ("turn-2", "completed"),
        ("turn-3", "interrupted"),
        ("turn-4", "completed"),
        ("turn-5", "completed"),
    ]
    texts = [item.get("text") or item["content"][0]["text"] for t in turns for item in t["items"]]
    assert "after the interrupt" not in texts
    assert [item["id"] for t in turns for item in t["items"]] == [f"item-{i}" for i in range(1, 10)]


def said(text: str) -> RolloutItem:
    payload = {"type": "user_message", "message": text, "images": [], "local_images": [], "text_elements": []}
    return event_msg(payload)


def answered(text: str) -> RolloutItem:
    return event_msg({"type": "agent_message", "message": text})


def exchange(text: str, reply: str) -> list[RolloutItem]:
    """A plain turn's lines: the user's message and its event, the reply's event and message."""
    return [response_item(user(text)), said(text), answered(reply), response_item(assistant(reply))]


NOTE = "<user_action>\n  <context>review</context>\n  <action>review</action>\n</user_action>\n\n"


def inline_review(prompt: str, output: dict[str, Any] | None, message: str) -> list[RolloutItem]:
    """The lines the reference (0.94.0) writes to a thread's rollout for an inline review: the prompt's
    user_message relayed twice, the note and the assistant message around exited_review_mode."""
    target = {"type": "custom", "instructions": prompt}
    return [
        event_msg({"type": "entered_review_mode", "target": target, "user_facing_hint": prompt}),
        said(prompt),
        said(prompt),
        response_item(user(NOTE)),
        event_msg({"type": "exited_review_mode", "review_output": output}),
        response_item(assistant(message)),
        answered(message),
    ]


def test_rebuilt_turns_leave_review_mode_out_like_the_reference() -> None:
    output = {"findings": [], "overall_correctness": "ok", "overall_explanation": "Fine.",
              "overall_confidence_score": 0.5}
    turns = reconstruct_turns([*inline_review("look", output, "Fine."), *exchange("X turn", "X reply")])
    shapes = [(t["id"], t["status"], [(i["type"], i["id"]) for i in t["items"]]) for t in turns]
    # What the reference's thread/read showed for the same lines.
    assert shapes == [
        ("turn-1", "completed", [("userMessage", "item-1")]),
        ("turn-2", "completed", [("userMessage", "item-2"), ("agentMessage", "item-3")]),
        ("turn-3", "completed", [("userMessage", "item-4"), ("agentMessage", "item-5")]),
    ]
    assert turns[1]["items"][1]["text"] == "Fine."

    interrupted = [
        *inline_review("review then interrupt", None, "Review was interrupted."),
        response_item(user("<turn_aborted>\nx\n</turn_aborted>")),
        event_msg({"type": "turn_aborted", "reason": "interrupted"}),
    ]
    turns = reconstruct_turns(interrupted)
    assert [(t["status"], [i["type"] for i in t["items"]]) for t in turns] == [
        ("completed", ["userMessage"]),
        ("interrupted", ["userMessage", "agentMessage"]),
    ]

    # thread/rollback of one turn after a review drops its second half (the reference's answer), and
    # the model's history loses the review: its note is a user turn.
    first = exchange("A turn", "Hello.")
    review = inline_review("rev", output, "Fine.")
    rolled_back = event_msg({"type": "thread_rolled_back", "num_turns": 1})
    turns = reconstruct_turns([*first, *review, rolled_back])
    assert [[i["type"] for i in t["items"]] for t in turns] == [
        ["userMessage", "agentMessage"],
        ["userMessage"],
    ]
    assert history_for_resume([*first, *review, rolled_back]) == [user("A turn"), assistant("Hello.")]


@pytest.mark.parametrize("key", ["A", "C", "E", "F"])
def test_resume_history_is_what_the_reference_sent_upstream(key: str) -> None:
    sent = json.loads((helpers.FIXTURES / "resume_requests.json").read_text())[key]
    history = history_for_resume(read_rollout(fixture_rollout(key)))
    # After the stored history the reference sends a fresh initial context and the new message.
    assert sent[: len(history)] == history
    tail = sent[len(history) :]
    assert [item["role"] for item in tail] == ["developer", "user", "user", "user"]
    assert tail[-1]["content"][0]["text"] == f"after resume {key}"


def test_rollback_drops_user_turns_but_keeps_injected_context() -> None:
    history = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "perm"}]},
        user("# AGENTS.md instructions for /w\n\n<INSTRUCTIONS>\nx\n</INSTRUCTIONS>"),
        user("<environment_context>\n</environment_context>"),
        user("one"),
        assistant("r1"),
        user("two"),
        user("<turn_aborted>\nx\n</turn_aborted>"),
        user("three"),
        assistant("r3"),
    ]
    assert drop_last_user_turns(history, 1) == history[:7]
    assert drop_last_user_turns(history, 2) == history[:5]
    assert drop_last_user_turns(history, 9) == history[:3]
    assert drop_last_user_turns(history, 0) == history


def test_compaction_replaces_the_history_before_it() -> None:
    items: list[RolloutItem] = [
        response_item(user("one")),
        response_item(assistant("r1")),
        compacted({"message": "sum", "replacement_history": [user("one"), user("summary of r1")]}),
        response_item(user("two")),
    ]
    assert history_for_resume(items) == [user("one"), user("summary of r1"), user("two")]

    legacy: list[RolloutItem] = [
        response_item(user("<environment_context>x</environment_context>")),
        response_item(user("one")),
        response_item(assistant("r1")),
        response_item({"type": "ghost_snapshot", "ghost_commit": {}}),
        compacted({"message": "the summary"}),
        response_item(user("two")),
    ]
    context = [user("<environment_context>y</environment_context>")]
    assert history_for_resume(legacy, initial_context=context) == [
        context[0],
        user("one"),
        user("the summary"),
        user("two"),
    ]


def test_user_message_recognition() -> None:
    assert user_message_text(user("hello")) == "hello"
    assert user_message_text(user("  <Environment_Context>x")) is None
    assert user_message_text(user("<user_shell_command>ls</user_shell_command>")) is None
    assert user_message_text(assistant("hello")) is None
    image_only = {"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": "u"}]}
    assert user_message_text(image_only) == ""


def test_thread_ids_are_time_ordered_uuid7() -> None:
    first = datetime(2026, 1, 1, tzinfo=timezone.utc)
    a = new_thread_id(first)
    b = new_thread_id(first + timedelta(milliseconds=1))
    parsed = uuid.UUID(a)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert int(a.replace("-", "")[:12], 16) == int(first.timestamp() * 1000)
    assert a < b
    name = f"rollout-2026-01-01T00-00-00-{a}.jsonl"
    assert parse_rollout_file_name(name) == (datetime(2026, 1, 1), a)
    assert parse_rollout_file_name("rollout-garbage.jsonl") is None


def test_timestamps() -> None:
    moment = datetime(2026, 11, 21, 14, 39, 40, 45999, tzinfo=timezone.utc)
    assert format_timestamp(moment) == "2026-11-21T14:39:40.045Z"
    offset = parse_timestamp("2026-11-02T02:23:09.5+02:00")
    assert offset is not None
    assert offset.timestamp() == datetime(2026, 11, 2, 0, 23, 9, 500000, tzinfo=timezone.utc).timestamp()
    assert parse_timestamp("garbage") is None
    assert parse_timestamp("2026-11-02T00:22:07Z") == datetime(2026, 11, 2, 0, 22, 7, tzinfo=timezone.utc)


async def test_async_read() -> None:
    rollout = await aread_rollout(fixture_rollout("E"))
    assert rollout.thread_id == helpers.ids()["E"]
    meta = cast(dict[str, Any], rollout.meta)
    assert meta["source"] == "vscode"
