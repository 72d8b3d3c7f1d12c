"""How fast ThreadStore lists many stored threads (thread/list without the JSON-RPC layer).

Generates N rollouts shaped like the reference's (a ~20 KB session_meta with the built-in
instructions, the initial context, one turn) spread over a year, with mtimes in the past like threads
nobody touched lately, then measures, as the median of several runs:

- first page (default limit 25), newest first by created_at: with a fresh store (nothing cached,
  no persisted index), and again on a store that already listed;
- paging through all N threads: fresh store without index, a "new process" (fresh store, persisted
  index present), and a store that already paged once;
- the same for updated_at with --updated-at (every page stats every rollout, as the order needs).

"Fresh" means our caches are empty; the OS page cache is warm either way.

    python benchmarks/bench_thread_list.py [--threads 10000] [--runs 5] [--home DIR] [--updated-at]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trio

from codex_trio.core.rollout import (
    RolloutWriter,
    SessionMetaFields,
    event_msg,
    new_thread_id,
    response_item,
    turn_context,
)
from codex_trio.core.thread_store import INDEX_DIR, ThreadStore

PROVIDER = "openai"
INSTRUCTIONS = ("You are a coding agent running in the Codex CLI. " * 420)[:20_771]
AGENTS = (
    "# AGENTS.md instructions for /repo\n\n<INSTRUCTIONS>\n"
    + "Follow the house rules.\n" * 130
    + "</INSTRUCTIONS>"
)


def generate(home: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    # A year of threads that ended at least a month ago: the cache only trusts files not changed lately.
    start = datetime.now(timezone.utc) - timedelta(days=400)
    fields = SessionMetaFields(
        cwd="/repo",
        originator="codex_vscode",
        cli_version="0.94.0",
        model_provider=PROVIDER,
        base_instructions=INSTRUCTIONS,
    )
    for i in range(count):
        created = start + timedelta(seconds=rng.randrange(365 * 24 * 3600), milliseconds=rng.randrange(1000))
        text = f"Please look at issue #{i}: the build fails on step {rng.randrange(100)}"
        with RolloutWriter.create(
            home, new_thread_id(created), fields, created=created, clock=lambda at=created: at
        ) as writer:
            writer.append(
                [
                    response_item(_message("developer", "<permissions instructions>\n" + "x" * 1000)),
                    response_item(_message("user", AGENTS)),
                    response_item(
                        _message("user", "<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>")
                    ),
                    response_item(_message("user", text)),
                    event_msg(
                        {
                            "type": "user_message",
                            "message": text,
                            "images": [],
                            "local_images": [],
                            "text_elements": [],
                        }
                    ),
                    turn_context(
                        {
                            "cwd": "/repo",
                            "approval_policy": "on-request",
                            "model": "gpt-5.2-codex",
                            "user_instructions": AGENTS,
                        }
                    ),
                    event_msg({"type": "token_count", "info": None, "rate_limits": None}),
                    event_msg({"type": "agent_message", "message": "Done."}),
                    response_item(
                        {
                            "type": "message",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": "Done."}],
                        }
                    ),
                ]
            )
        updated = created + timedelta(minutes=rng.randrange(1, 600))
        ns = int(updated.timestamp() * 1e9)
        os.utime(writer.path, ns=(ns, ns))
    # Directories too were last changed a while ago.
    past = int((datetime.now(timezone.utc) - timedelta(days=1)).timestamp() * 1e9)
    for directory, _, _ in os.walk(home / "sessions"):
        os.utime(directory, ns=(past, past))


def _message(role: str, text: str) -> dict[str, object]:
    return {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}


async def first_page(store: ThreadStore, sort_key: str) -> int:
    page = await store.list_threads(default_provider=PROVIDER, sort_key=sort_key)  # type: ignore[arg-type]
    return len(page.threads)


async def all_pages(store: ThreadStore, sort_key: str) -> int:
    total, cursor = 0, None
    while True:
        page = await store.list_threads(default_provider=PROVIDER, cursor=cursor, sort_key=sort_key)  # type: ignore[arg-type]
        total += len(page.threads)
        cursor = page.next_cursor
        if cursor is None:
            return total


def timed(fn: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    async def run() -> tuple[float, int]:
        began = time.perf_counter()
        result = await fn()
        return time.perf_counter() - began, result

    return trio.run(run)


def measure(
    label: str,
    runs: int,
    setup: Callable[[], ThreadStore],
    fn: Callable[[ThreadStore], Awaitable[int]],
    expect: int,
) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        store = setup()
        elapsed, count = timed(lambda store=store: fn(store))
        assert count == expect, (label, count, expect)
        samples.append(elapsed)
    result = {"median_ms": statistics.median(samples) * 1000, "min_ms": min(samples) * 1000}
    print(
        f"{label:<52} median {result['median_ms']:9.1f} ms   min {result['min_ms']:9.1f} ms   ({runs} runs)"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--home", type=Path, help="reuse/keep this CODEX_HOME instead of a temporary one")
    parser.add_argument("--updated-at", action="store_true", help="also page through by updated_at")
    args = parser.parse_args()

    temp = None
    home = args.home
    if home is None:
        temp = tempfile.mkdtemp(prefix="bench-thread-list-")
        home = Path(temp)
    try:
        if not (home / "sessions").is_dir():
            began = time.perf_counter()
            generate(home, args.threads)
            print(f"generated {args.threads} rollouts in {time.perf_counter() - began:.1f} s under {home}")
        n = args.threads
        index = home / INDEX_DIR

        def fresh_without_index() -> ThreadStore:
            shutil.rmtree(index, ignore_errors=True)
            return ThreadStore(home)

        def fresh_with_index() -> ThreadStore:
            return ThreadStore(home)

        warm = ThreadStore(home)

        def reuse() -> ThreadStore:
            return warm

        results = {}
        for sort_key in ("created_at", "updated_at") if args.updated_at else ("created_at",):
            page = min(25, n)
            results[f"{sort_key} first page, fresh store, no index"] = measure(
                f"{sort_key}: first page, fresh store, no index",
                args.runs,
                fresh_without_index,
                lambda s, k=sort_key: first_page(s, k),
                page,
            )
            timed(lambda k=sort_key: all_pages(warm, k))
            results[f"{sort_key} first page, warm store"] = measure(
                f"{sort_key}: first page, warm store",
                args.runs,
                reuse,
                lambda s, k=sort_key: first_page(s, k),
                page,
            )
            results[f"{sort_key} all pages, fresh store, no index"] = measure(
                f"{sort_key}: all {n} threads, fresh store, no index",
                max(1, args.runs // 2),
                fresh_without_index,
                lambda s, k=sort_key: all_pages(s, k),
                n,
            )
            results[f"{sort_key} all pages, new process with index"] = measure(
                f"{sort_key}: all {n} threads, new store + persisted index",
                args.runs,
                fresh_with_index,
                lambda s, k=sort_key: all_pages(s, k),
                n,
            )
            results[f"{sort_key} all pages, warm store"] = measure(
                f"{sort_key}: all {n} threads, warm store",
                args.runs,
                reuse,
                lambda s, k=sort_key: all_pages(s, k),
                n,
            )
        print(json.dumps(results, indent=1))
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
