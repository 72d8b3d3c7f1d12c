"""The thread store against the reference's recorded answers, and under change by other processes."""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fixtures.reference_rollouts import helpers

from codex_trio.core import thread_store as ts
from codex_trio.core.rollout import (
    RolloutWriter,
    SessionMetaFields,
    event_msg,
    new_thread_id,
    parse_rollout_line,
    response_item,
)
from codex_trio.core.thread_store import RolloutReadError, ThreadStore, ThreadStoreError

PROVIDER = helpers.DEFAULT_PROVIDER
NOW_NS = 1_800_000_000 * 10**9


def error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def answer(store: ThreadStore, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """What a thread/list, thread/read or thread/resume handler built on the store answers."""
    if method == "thread/list":
        try:
            page = await store.list_threads(
                default_provider=PROVIDER,
                cursor=params.get("cursor"),
                limit=params.get("limit"),
                sort_key=params.get("sortKey") or "created_at",
                model_providers=params.get("modelProviders"),
                source_kinds=params.get("sourceKinds"),
                archived=bool(params.get("archived")),
            )
        except ThreadStoreError as exc:
            return error(exc.code, exc.message)
        return {"result": {"data": [t.to_thread() for t in page.threads], "nextCursor": page.next_cursor}}
    thread_id = params["threadId"]
    path = await store.find_rollout(thread_id)
    if path is None:
        if method == "thread/read":
            return error(-32600, f"thread not loaded: {thread_id}")
        return error(-32600, f"no rollout found for thread id {thread_id}")
    include_turns = method == "thread/resume" or bool(params.get("includeTurns"))
    try:
        thread = await store.read_thread(path, default_provider=PROVIDER, include_turns=include_turns)
    except RolloutReadError as exc:
        return error(-32603, f"failed to load rollout `{path}` for thread {thread_id}: {exc}")
    return {"result": {"thread": thread}}


def recorded(set_name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(set_name, a) for a in helpers.answers()[set_name]["answers"]]


ALL_RECORDED = recorded("main") + recorded("probes") + recorded("scan")


@pytest.mark.parametrize(
    ("set_name", "recorded_answer"), ALL_RECORDED, ids=[f"{s}-{a['label']}" for s, a in ALL_RECORDED]
)
async def test_answers_match_the_reference(
    tmp_path: Path, set_name: str, recorded_answer: dict[str, Any]
) -> None:
    home, record = helpers.install(set_name, tmp_path)
    expected = helpers.relocate(recorded_answer["response"], record["codex_home"], home)
    expected.pop("id")
    if recorded_answer["method"] == "thread/resume" and "result" in expected:
        expected["result"] = {"thread": expected["result"]["thread"]}
    store = ThreadStore(home)
    assert await answer(store, recorded_answer["method"], recorded_answer["params"]) == expected


async def test_paging_through_the_reference_threads_twice_reads_each_head_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, _ = helpers.install("main", tmp_path)
    scans: list[str] = []
    real_scan = ts.scan_list_head
    monkeypatch.setattr(ts, "scan_list_head", lambda path: scans.append(path) or real_scan(path))
    store = ThreadStore(home)
    for _ in range(2):
        seen, cursor = [], None
        while True:
            page = await store.list_threads(
                default_provider=PROVIDER, cursor=cursor, limit=2, model_providers=[]
            )
            seen += [t.id for t in page.threads]
            cursor = page.next_cursor
            if cursor is None:
                break
        ids = helpers.ids()
        assert seen == [ids[k] for k in "ECAFG"]
    assert sorted(scans) == sorted(set(scans))


def write_thread(
    home: Path,
    created: datetime,
    first_message: str | None,
    *,
    provider: str = PROVIDER,
    thread_id: str | None = None,
) -> Path:
    tid = thread_id or new_thread_id(created)
    fields = SessionMetaFields(cwd="/work", originator="test", cli_version="0.94.0", model_provider=provider)
    with RolloutWriter.create(home, tid, fields, created=created, clock=lambda: created) as writer:
        if first_message is not None:
            writer.append(
                [
                    response_item(
                        {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": first_message}],
                        }
                    ),
                    event_msg(
                        {
                            "type": "user_message",
                            "message": first_message,
                            "images": [],
                            "local_images": [],
                            "text_elements": [],
                        }
                    ),
                ]
            )
    return writer.path


def age(path: Path, mtime: datetime) -> None:
    """Give a file (and its directory) an old mtime, as files untouched for a while have."""
    ns = int(mtime.timestamp()) * 10**9
    os.utime(path, ns=(ns, ns))


def age_tree(home: Path, mtime: datetime) -> None:
    for directory, _, files in os.walk(home):
        for name in files:
            age(Path(directory) / name, mtime)
        age(Path(directory), mtime)


BASE = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


async def list_ids(store: ThreadStore, **kwargs: Any) -> list[str]:
    page = await store.list_threads(default_provider=PROVIDER, limit=100, **kwargs)
    assert page.next_cursor is None
    return [t.id for t in page.threads]


def thread_id_of(path: Path) -> str:
    return path.name[-len("00000000-0000-0000-0000-000000000000.jsonl") : -len(".jsonl")]


async def test_changes_by_another_process_show_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path
    a = write_thread(home, BASE, "first")
    b = write_thread(home, BASE + timedelta(hours=1), "second")
    c = write_thread(home, BASE + timedelta(days=1), "third")
    age_tree(home, BASE + timedelta(days=2))
    scans: list[str] = []
    real_scan = ts.scan_list_head
    monkeypatch.setattr(ts, "scan_list_head", lambda path: scans.append(path) or real_scan(path))
    store = ThreadStore(home)
    assert await list_ids(store) == [thread_id_of(p) for p in (c, b, a)]
    assert len(scans) == 3

    # Untouched files are served from the cache.
    assert await list_ids(store) == [thread_id_of(p) for p in (c, b, a)]
    assert len(scans) == 3

    # Meanwhile, another process appends to a, deletes b, archives c and starts d.
    with open(a, "ab") as handle:
        handle.write(b'{"timestamp":"2026-03-03T00:00:00.000Z","type":"event_msg","payload":{"type":"x"}}\n')
    age(a, BASE + timedelta(days=3))
    b.unlink()
    (home / "archived_sessions").mkdir()
    os.rename(c, home / "archived_sessions" / c.name)
    d = write_thread(home, BASE + timedelta(hours=2), "fourth")

    page = await store.list_threads(default_provider=PROVIDER)
    assert [t.id for t in page.threads] == [thread_id_of(d), thread_id_of(a)]
    assert page.threads[1].updated_at == int((BASE + timedelta(days=3)).timestamp())
    assert await list_ids(store, archived=True) == [thread_id_of(c)]
    assert await list_ids(store, sort_key="updated_at") == [thread_id_of(d), thread_id_of(a)]


async def page_ids(store: ThreadStore, limit: int = 2) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = await store.list_threads(default_provider=PROVIDER, limit=limit, cursor=cursor)
        ids += [t.id for t in page.threads]
        cursor = page.next_cursor
        if cursor is None:
            return ids


async def test_a_new_process_pages_from_the_persisted_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [write_thread(tmp_path, BASE + timedelta(minutes=i), f"message {i}") for i in range(5)]
    age_tree(tmp_path, BASE + timedelta(days=1))
    first = ThreadStore(tmp_path)
    expected = [thread_id_of(p) for p in reversed(paths)]
    assert await page_ids(first) == expected
    assert (tmp_path / ".codex-trio" / "thread_index.v1.json").is_file()

    scans: list[str] = []
    real_scan = ts.scan_list_head
    monkeypatch.setattr(ts, "scan_list_head", lambda path: scans.append(path) or real_scan(path))
    second = ThreadStore(tmp_path)
    assert await page_ids(second) == expected
    # The first page reads its own two files (cheaper than loading the index); later pages come
    # from the index the first process left.
    assert scans == [str(paths[4]), str(paths[3])]

    # The index is not trusted over the file: a changed rollout is read again.
    scans.clear()
    paths[0].write_text(paths[0].read_text().replace("message 0", "changed 0"))
    age(paths[0], BASE + timedelta(days=2))
    third = ThreadStore(tmp_path)
    assert await page_ids(third) == expected
    page = await third.list_threads(default_provider=PROVIDER)
    assert page.threads[-1].preview == "changed 0"
    assert str(paths[0]) in scans and str(paths[1]) not in scans


async def test_recently_written_files_are_never_served_from_the_cache(tmp_path: Path) -> None:
    # mtimes are "now": a change in the same clock tick could keep (size, mtime), so no trust yet.
    path = write_thread(tmp_path, BASE, "before")
    store = ThreadStore(tmp_path)
    first = await store.list_threads(default_provider=PROVIDER)
    assert [t.preview for t in first.threads] == ["before"]
    stat = path.stat()
    path.write_text(path.read_text().replace("before", "after!"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = await store.list_threads(default_provider=PROVIDER)
    assert [t.preview for t in second.threads] == ["after!"]


async def test_paging_covers_every_thread_once_in_order(tmp_path: Path) -> None:
    written: list[tuple[datetime, str, Path]] = []
    for i in range(45):
        # Several threads share a creation second; days and months change along the way.
        created = BASE + timedelta(hours=9 * (i // 3))
        tid = new_thread_id(created + timedelta(milliseconds=i))
        written.append((created, tid, write_thread(tmp_path, created, f"thread {i}", thread_id=tid)))
        age(written[-1][2], BASE + timedelta(days=30, seconds=i % 7))
    write_thread(tmp_path, BASE + timedelta(days=3), None)  # never used: not listed
    store = ThreadStore(tmp_path)

    newest_first = sorted(written, key=lambda w: (int(w[0].timestamp()), w[1]), reverse=True)
    by_created = [tid for _, tid, _ in newest_first]
    mtime = {tid: int(path.stat().st_mtime) for _, tid, path in written}
    by_updated = sorted(mtime, key=lambda tid: (mtime[tid], tid), reverse=True)

    for sort_key, expected in (("created_at", by_created), ("updated_at", by_updated)):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await store.list_threads(
                default_provider=PROVIDER, cursor=cursor, limit=7, sort_key=sort_key
            )
            pages += 1
            seen += [t.id for t in page.threads]
            if page.next_cursor is None:
                break
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\|[0-9a-f-]{36}", page.next_cursor)
            assert page.next_cursor.endswith(page.threads[-1].id)
            cursor = page.next_cursor
        assert seen == expected, sort_key
        assert pages == 7


async def test_page_size_defaults_and_limits(tmp_path: Path) -> None:
    for i in range(120):
        write_thread(tmp_path, BASE + timedelta(seconds=i), f"t{i}")
    store = ThreadStore(tmp_path)
    assert len((await store.list_threads(default_provider=PROVIDER)).threads) == 25
    assert len((await store.list_threads(default_provider=PROVIDER, limit=1000)).threads) == 100
    assert len((await store.list_threads(default_provider=PROVIDER, limit=0)).threads) == 1


async def test_provider_filter(tmp_path: Path) -> None:
    mine = write_thread(tmp_path, BASE, "mine")
    other = write_thread(tmp_path, BASE + timedelta(minutes=1), "other", provider="openai")
    store = ThreadStore(tmp_path)
    assert await list_ids(store) == [thread_id_of(mine)]
    assert await list_ids(store, model_providers=[]) == [thread_id_of(other), thread_id_of(mine)]
    assert await list_ids(store, model_providers=["openai"]) == [thread_id_of(other)]
    assert await list_ids(store, model_providers=["nobody"]) == []


BAD_CURSORS = [
    "garbage",
    "2026-11-21T14-39-47",
    "2026-11-21T14-39-47|nope",
    "2026-13-01T00-00-00|" + "0" * 32,
]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_bad_cursors(tmp_path: Path, cursor: str) -> None:
    store = ThreadStore(tmp_path)
    with pytest.raises(ThreadStoreError) as caught:
        await store.list_threads(default_provider=PROVIDER, cursor=cursor)
    assert (caught.value.code, caught.value.message) == (-32600, f"invalid cursor: {cursor}")


async def test_listing_an_empty_home(tmp_path: Path) -> None:
    store = ThreadStore(tmp_path / "missing")
    page = await store.list_threads(default_provider=PROVIDER, archived=True)
    assert (page.threads, page.next_cursor) == ([], None)


async def test_archive_and_unarchive(tmp_path: Path) -> None:
    home, _ = helpers.install("main", tmp_path)
    ids = helpers.ids()
    store = ThreadStore(home, clock_ns=lambda: NOW_NS)
    original = await store.find_rollout(ids["A"])
    assert original is not None

    archived = await store.archive(ids["A"])
    assert archived == home / "archived_sessions" / original.name
    assert not original.exists()
    assert await store.find_rollout(ids["A"]) is None
    assert await store.find_archived(ids["A"]) == archived
    assert ids["A"] not in await list_ids(store, model_providers=[])
    assert await list_ids(store, archived=True) == [ids["B"], ids["A"]]
    with pytest.raises(ThreadStoreError) as caught:
        await store.archive(ids["A"])
    assert caught.value.message == f"no rollout found for thread id {ids['A']}"

    summary = await store.unarchive(ids["A"], default_provider=PROVIDER)
    assert summary.path == str(original)
    assert summary.updated_at == NOW_NS // 10**9
    assert summary.preview == "What is 2+2?"
    assert await list_ids(store, archived=True) == [ids["B"]]
    with pytest.raises(ThreadStoreError) as caught:
        await store.unarchive(ids["A"], default_provider=PROVIDER)
    message = f"no archived rollout found for thread id {ids['A']}"
    assert (caught.value.code, caught.value.message) == (-32600, message)


async def test_unarchive_answers_like_the_reference(tmp_path: Path) -> None:
    home, _ = helpers.install("main", tmp_path)
    transcript = json.loads((helpers.FIXTURES / "session_transcript.json").read_text())
    recorded_thread = transcript["answers"]["s2_unarchive_B"]["result"]["thread"]
    expected = helpers.relocate(recorded_thread, "/work/scratch/rollouts/run/codex_home", home)
    store = ThreadStore(home, clock_ns=lambda: NOW_NS)
    thread = (await store.unarchive(helpers.ids()["B"], default_provider=PROVIDER)).to_thread()
    assert thread == {**expected, "updatedAt": NOW_NS // 10**9}
    assert Path(thread["path"] or "").is_file()


async def test_archive_refuses_a_rollout_outside_sessions(tmp_path: Path) -> None:
    home = tmp_path / "home"
    outside = write_thread(tmp_path / "elsewhere", BASE, "outside")
    link = home / "sessions" / "misc" / outside.name
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    store = ThreadStore(home)
    with pytest.raises(ThreadStoreError) as caught:
        await store.archive(thread_id_of(outside))
    message = f"rollout path `{link}` must be in sessions directory"
    assert (caught.value.code, caught.value.message) == (-32600, message)
    assert outside.exists()


async def test_thread_names(tmp_path: Path) -> None:
    home, _ = helpers.install("main", tmp_path)
    ids = helpers.ids()
    store = ThreadStore(home, clock_ns=lambda: NOW_NS + 123_450_000)
    assert await store.get_name(ids["A"]) == "Arithmetic, renamed"
    assert await store.get_name(ids["E"]) is None

    assert await store.set_name(ids["E"], "  Recovered  ") == "Recovered"
    assert await store.get_name(ids["E"]) == "Recovered"
    assert await store.get_names([ids["A"], ids["E"], ids["C"]]) == {
        ids["A"]: "Arithmetic, renamed",
        ids["E"]: "Recovered",
    }
    last = (home / "session_index.jsonl").read_text().splitlines()[-1]
    stamp = "2027-01-15T08:00:00.12345Z"
    assert last == f'{{"id":"{ids["E"]}","thread_name":"Recovered","updated_at":"{stamp}"}}'
    with pytest.raises(ThreadStoreError) as caught:
        await store.set_name(ids["E"], "   ")
    assert (caught.value.code, caught.value.message) == (-32600, "thread name must not be empty")


async def test_read_summary_of_a_fresh_thread(tmp_path: Path) -> None:
    path = write_thread(tmp_path, BASE, None)
    store = ThreadStore(tmp_path)
    thread = (await store.read_summary(path, default_provider=PROVIDER)).to_thread()
    assert thread["preview"] == ""
    assert thread["createdAt"] == int(BASE.timestamp())
    assert thread["source"] == "vscode"
    assert thread["gitInfo"] is None
    empty = tmp_path / "sessions" / "rollout-2026-03-01T12-00-00-00000000-0000-7000-8000-000000000000.jsonl"
    empty.write_text("")
    with pytest.raises(RolloutReadError, match="is empty"):
        await store.read_summary(empty, default_provider=PROVIDER)


@pytest.mark.parametrize("instructions", ["plain", 'quote and brace "} inside', "ends in a backslash \\", ""])
@pytest.mark.parametrize("git", [None, {"commit_hash": "abc", "branch": "main", "repository_url": "u"}])
async def test_listing_reads_any_session_meta_like_a_full_parse(
    tmp_path: Path, instructions: str, git: dict[str, Any] | None
) -> None:
    fields = SessionMetaFields(
        cwd="/w",
        originator="o",
        cli_version="0.94.0",
        model_provider=PROVIDER,
        base_instructions=instructions,
        git=git,
    )
    tid = new_thread_id(BASE)
    with RolloutWriter.create(tmp_path, tid, fields, created=BASE, clock=lambda: BASE) as writer:
        writer.append(
            [
                response_item(
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]}
                ),
                event_msg({"type": "user_message", "message": "q", "images": [], "local_images": []}),
            ]
        )
    store = ThreadStore(tmp_path)
    [listed] = (await store.list_threads(default_provider=PROVIDER)).threads
    read = await store.read_summary(writer.path, default_provider=PROVIDER)
    assert listed == read
    expected_git = None if git is None else {"sha": "abc", "branch": "main", "originUrl": "u"}
    assert (listed.id, listed.preview, listed.to_thread()["gitInfo"]) == (tid, "q", expected_git)


def _line(kind: str, payload: dict[str, Any]) -> str:
    # Compact, in the reference's key order, like the rollouts listing reads byte-wise.
    return json.dumps(
        {"timestamp": "2026-03-01T12:00:00.000Z", "type": kind, "payload": payload},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _said(*texts: str) -> str:
    content = [{"type": "input_text", "text": text} for text in texts]
    return _line("response_item", {"type": "message", "role": "user", "content": content})


AGENTS = "# AGENTS.md instructions for /w\n\n<INSTRUCTIONS>\nbe brief\n</INSTRUCTIONS>"
ENVIRONMENT = "<environment_context>\n  <cwd>/w</cwd>\n</environment_context>"
IMAGE_ONLY = _line(
    "response_item",
    {"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": "u"}]},
)
REVIEW_NOTE = "<user_action>\n  <context>review</context>\n  <action>review</action>\n</user_action>\n\n"


def _event(text: str) -> str:
    return _line("event_msg", {"type": "user_message", "message": text, "images": [], "local_images": []})


NOT_JSON = (
    '{"timestamp":"2026-03-01T12:00:00.000Z","type":"response_item","payload":{"type":"message",'
    '"role":"user","content":[{"type":"input_text","text":"bad \\q escape"}]}}'
)


@pytest.mark.parametrize(
    ("head", "preview"),
    [
        ([_said(AGENTS), _said(ENVIRONMENT), _said("q")], "q"),
        # Context is a whole single-part message; with a second part it is something the user sent.
        ([_said(AGENTS, " and more")], AGENTS + " and more"),
        ([_said(ENVIRONMENT, "q")], None),
        ([_said("  <ENVIRONMENT_CONTEXT>\n</ENVIRONMENT_CONTEXT>"), _said("q")], "q"),
        ([_said('say "hi" \\ to \u00e9t\u00e9 \U0001f600\n')], 'say "hi" \\ to \u00e9t\u00e9 \U0001f600\n'),
        ([NOT_JSON, _said("q")], "q"),
        ([NOT_JSON[:-30], _said("q")], "q"),
        ([_said("## My request for Codex:\n fix the build ")], "fix the build"),
        ([IMAGE_ONLY, _said("q")], ""),
        (
            [_line("response_item", {"type": "message", "role": "assistant", "content": []}), _said("q")],
            "q",
        ),
        # The head ends at the first user_message event: a review's relayed prompt comes before its note
        # and before anything typed later (the reference answered so for such rollouts).
        ([_event("rev"), _event("rev"), _said(REVIEW_NOTE), _said("q")], None),
        ([_event("rev"), _said("q")], None),
        ([_said(REVIEW_NOTE), _said("q")], REVIEW_NOTE),
    ],
    ids=[
        "context-then-typed",
        "context-prefix-with-two-parts",
        "environment-part-first",
        "context-in-other-spelling",
        "escapes",
        "not-json",
        "torn",
        "legacy-request-prefix",
        "image-only",
        "assistant-first",
        "review-first",
        "event-before-typed",
        "note-before-event",
    ],
)
async def test_previews_come_from_the_first_message_the_user_typed(
    tmp_path: Path, head: list[str], preview: str | None
) -> None:
    path = write_thread(tmp_path, BASE, None)
    event = _line("event_msg", {"type": "user_message", "message": "q", "images": [], "local_images": []})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in [*head, event]))
    store = ThreadStore(tmp_path)
    listed = (await store.list_threads(default_provider=PROVIDER)).threads
    # A thread with no message the user typed among its first records is not listed.
    assert [t.preview for t in listed] == ([] if preview is None else [preview])
    # thread/read parses every line in full; the listing must show the same thread.
    read = await store.read_summary(path, default_provider=PROVIDER)
    assert (listed == [read]) if listed else (read.preview == "")


def plain_head(path: Path) -> ts.HeadSummary:
    """The head as the reference reads it, every line parsed in full: at most 10 records (session_meta
    and response items), from the first 10 lines plus up to 200 more while a session_meta but no
    user_message event has been seen, and no further once both have."""
    records: list[tuple[str, dict[str, Any]]] = []
    saw_meta = saw_user = False
    scanned = 0
    for raw in path.read_bytes().split(b"\n"):
        if not raw.strip():
            continue
        if scanned >= 10 and not (saw_meta and not saw_user and scanned < 210):
            break
        scanned += 1
        line = parse_rollout_line(raw)
        if line is None:
            continue
        if line["type"] in ("session_meta", "response_item"):
            saw_meta = saw_meta or line["type"] == "session_meta"
            if len(records) < 10:
                records.append((line["type"], line["payload"]))
        elif line["type"] == "event_msg" and line["payload"]["type"] == "user_message":
            saw_user = True
        else:
            continue
        if saw_meta and saw_user:
            break
    return ts._summarize_head(records, saw_meta, saw_user)


def random_rollout(rng: random.Random, thread_id: str) -> str:
    """Lines like those of real rollouts (the reference's compact JSON, some spelled otherwise), in a
    random order, with torn, blank and garbage lines among them."""
    meta = {
        "id": thread_id,
        "timestamp": "2026-03-01T12:00:00.000Z",
        "cwd": "/w",
        "originator": "o",
        "cli_version": "0.94.0",
        "source": rng.choice(["vscode", "cli", {"subagent": "review"}]),
        "model_provider": PROVIDER,
        "base_instructions": {"text": rng.choice(["be good", 'quote "} and \\', ""])},
    }
    texts = [
        "q",
        'say "hi" \\ \u00e9t\u00e9',
        "## My request for Codex:\n do it ",
        REVIEW_NOTE,
        AGENTS,
        ENVIRONMENT,
        "  <Environment_Context>x",
        "<turn_aborted>\nx\n</turn_aborted>",
        "",
    ]
    pool: list[Callable[[], str]] = [
        lambda: _said(rng.choice(texts)),
        lambda: _said(rng.choice(texts), rng.choice(texts)),
        lambda: IMAGE_ONLY,
        lambda: _line("response_item", {"type": "message", "role": "developer", "content": []}),
        lambda: _line("response_item", {"type": "message", "role": "assistant",
                                        "content": [{"type": "output_text", "text": rng.choice(texts)}]}),
        lambda: _line("response_item", {"type": "function_call", "name": "shell", "arguments": "{}",
                                        "call_id": "c"}),
        lambda: _event(rng.choice(texts)),
        lambda: _line("event_msg", {"type": "agent_message", "message": "r"}),
        lambda: _line("event_msg", {"type": "entered_review_mode", "target": {"type": "custom",
                                                                                   "instructions": "x"}}),
        lambda: _line("event_msg", {"type": "token_count", "info": None}),
        lambda: _line("turn_context", {"cwd": "/w", "model": "m"}),
        lambda: _line("session_meta", meta),
        lambda: json.dumps({"timestamp": "2026-03-01T12:00:00.000Z", "type": "response_item",
                            "payload": {"type": "message", "role": "user",
                                        "content": [{"type": "input_text", "text": rng.choice(texts)}]}}),
        lambda: json.dumps({"timestamp": "2026-03-01T12:00:00.000Z", "type": "event_msg",
                            "payload": {"type": "user_message", "message": "spaced"}}),
        lambda: "",
        lambda: "not json at all",
    ]
    lines = [_line("session_meta", meta)] if rng.random() < 0.9 else []
    for _ in range(rng.randrange(0, 16)):
        line = rng.choice(pool)()
        if line and rng.random() < 0.05:
            line = line[: rng.randrange(1, len(line))]  # torn
        lines.append(line)
    if rng.random() < 0.1:
        lines[1:1] = [_line("turn_context", {"cwd": "/w"})] * rng.randrange(8, 220)
    return "".join(f"{line}\n" for line in lines)


async def test_listing_reads_heads_like_a_full_parse(tmp_path: Path) -> None:
    """The listing tells most lines apart from their first bytes; on random rollouts it must see what
    parsing every line sees, and show what thread/read shows."""
    rng = random.Random(20260301)
    listable = 0
    for n in range(400):
        tid = str(uuid.UUID(int=(0x01A1FE00_0000_7000_8000 << 48) + n))
        path = tmp_path / f"rollout-2026-03-01T12-00-00-{tid}.jsonl"
        path.write_text(random_rollout(rng, tid), encoding="utf-8")
        head = ts.scan_list_head(path)
        assert head == plain_head(path), path.read_text(encoding="utf-8")
        if head.saw_meta and head.saw_user_event and head.first_is_meta and head.preview is not None:
            listable += 1
            read = await ThreadStore(tmp_path).read_summary(path, default_provider=PROVIDER)
            assert (read.id, read.preview) == (head.thread_id, head.preview)
    assert 40 < listable < 360


async def test_a_new_process_that_only_confirms_the_index_leaves_it_alone(tmp_path: Path) -> None:
    paths = [write_thread(tmp_path, BASE + timedelta(minutes=i), f"message {i}") for i in range(5)]
    age_tree(tmp_path, BASE + timedelta(days=1))
    expected = [thread_id_of(p) for p in reversed(paths)]
    assert await page_ids(ThreadStore(tmp_path)) == expected
    index = tmp_path / ".codex-trio" / "thread_index.v1.json"
    written = (index.read_bytes(), index.stat().st_mtime_ns)
    assert await page_ids(ThreadStore(tmp_path)) == expected
    assert (index.read_bytes(), index.stat().st_mtime_ns) == written

    # A change seen before the index was read is saved, though.
    paths[4].write_text(paths[4].read_text().replace("message 4", "changed 4"))
    age(paths[4], BASE + timedelta(days=2))
    assert await page_ids(ThreadStore(tmp_path)) == expected
    assert b"changed 4" in index.read_bytes()


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no read-ahead hints on this platform")
async def test_a_slow_disk_is_read_ahead_without_changing_the_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [write_thread(tmp_path, BASE + timedelta(minutes=i), f"message {i}") for i in range(80)]
    age_tree(tmp_path, BASE + timedelta(days=1))
    events: list[tuple[str, str]] = []
    real_scan = ts.scan_list_head
    monkeypatch.setattr(ts, "scan_list_head", lambda path: events.append(("scan", path)) or real_scan(path))

    def advise(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_WILLNEED
        events.append(("hint", os.readlink(f"/proc/self/fd/{fd}")))

    monkeypatch.setattr(ts.os, "posix_fadvise", advise)
    # Every read counts as one that waited for the disk.
    monkeypatch.setattr(ts, "_SLOW_SCAN_S", -1.0)
    store = ThreadStore(tmp_path)
    expected = [thread_id_of(p) for p in reversed(paths)]
    assert await page_ids(store, limit=10) == expected
    scanned = [path for kind, path in events if kind == "scan"]
    hinted = [path for kind, path in events if kind == "hint"]
    assert sorted(scanned) == sorted(str(p) for p in paths)
    # Once reads have been slow for a while, the files ahead are hinted once each, before their scan.
    assert hinted and len(hinted) == len(set(hinted))
    for path in hinted:
        assert events.index(("hint", path)) < events.index(("scan", path))
    assert set(scanned[ts._SCAN_STRETCH + 1 :]) <= set(hinted)
