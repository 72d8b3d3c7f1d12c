"""The agent core end to end: turns, streaming, concurrency, start-up, memory and thread listing,
measured on one or more app-server commands side by side against a local mock of the Responses API.

    python benchmarks/bench_core.py \\
        --server "python -m codex_trio app-server" \\
        --server "/path/to/codex app-server" [--only NAME ...] [--runs R] [--json FILE]

Every scenario runs R times per server, interleaved (A B, then B A, ...) so that both see the same
machine load; each run starts a fresh server process. The table gives the median of the runs for each
server and, with two or more servers, the ratio of the first to the last and whether the first meets
the target set for it relative to the last (the reference). A leading ``python`` in a command means
this interpreter.

Scenarios (``--only`` takes these names; all by default):

- ``turn``: one thread, 5 warm-up turns, then 50 turns one after the other, each timed from the
  ``turn/start`` request written to its ``turn/completed`` read; a run's value is the median of its
  50 turns. The mock answers at once with a 4-word reply.
- ``stream``: one turn whose reply streams 5,000 text deltas (after a warm-up turn), timed from
  ``turn/start`` to ``turn/completed``: deltas per second. Every ``item/agentMessage/delta`` must
  arrive, in order (they are numbered), and so must the legacy ``codex/event/agent_message_delta``s.
- ``concurrent``: 50 threads started (plus one that runs a warm-up turn), then one write carrying a
  ``turn/start`` for each; the mock waits 200 ms before answering each. Timed from that write to the
  last ``turn/completed``.
- ``startup``: spawn to the ``initialize`` response; then, after 1 s idle, peak RSS (VmHWM) and RSS.
- ``memory``: after a first thread with one turn, 1 s idle, then N more threads (``--extra-threads``,
  100), each ``thread/start`` then one turn: the growth of VmHWM and VmRSS per extra thread, after the
  starts alone and after the turns.
- ``list``: ``--threads`` (10,000) stored rollouts in the reference's format (made from a rollout the
  reference wrote: tests/fixtures/reference_rollouts), spread over a year, in a CODEX_HOME shared by
  all servers. In a fresh process: the first ``thread/list`` page, then paging on with ``nextCursor``
  to the end (every thread exactly once), then the first page again. Twice per run: once after
  removing the caches a server persists in CODEX_HOME (codex-trio's thread index: "cold"), once
  with whatever the previous process left there ("index"). The reference keeps no such cache, so
  its two variants measure the same thing.

The mock (codex_trio/testing/mock_responses.py) runs in this process on 127.0.0.1. Each server runs
in a hermetic environment: fresh HOME, a CODEX_HOME whose config.toml points the provider at the mock
with no retries, OPENAI_BASE_URL the mock, every proxy a dead local port.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codex_trio.core.thread_store import INDEX_DIR
from codex_trio.testing.harness import hermetic_env, read_proc_status
from codex_trio.testing.mock_responses import RecordedRequest, Script, open_mock_responses
from codex_trio.testing.mock_responses import text as mock_text

ROOT = Path(__file__).resolve().parent.parent
PROVIDER = "mock_provider"
REPLY = "Done. All good here."
STREAM_PREFIX = "STREAM "
DELAY_PREFIX = "DELAY "
TEMPLATE_ROLLOUT = (
    ROOT
    / "tests/fixtures/reference_rollouts/main/archived_sessions"
    / "rollout-2026-11-21T14-39-46-01a1fe8c-8be5-7292-84bf-8b9df8c72ea4.jsonl"
)
# What the template says that each generated rollout says differently.
TEMPLATE_ID = "01a1fe8c-8be5-7292-84bf-8b9df8c72ea4"
TEMPLATE_TEXT = "Archive me"
# Caches servers persist under CODEX_HOME, removed before a "cold" listing.
PERSISTED_CACHES = (INDEX_DIR,)
SCENARIOS = ("turn", "stream", "concurrent", "startup", "memory", "list")
DEFAULT_RUNS = {"turn": 5, "stream": 5, "concurrent": 5, "startup": 10, "memory": 3, "list": 3}


class BenchError(Exception):
    """A server did something that makes the measurement meaningless."""


# --------------------------------------------------------------------------------------------
# Metrics and targets


@dataclass(frozen=True)
class Target:
    # "ratio_max": first/last <= value; "ratio_min": first/last >= value; "abs_max": first <= value.
    kind: str
    value: float

    def describe(self, unit: str) -> str:
        if self.kind == "ratio_max":
            return f"<= {self.value:g}x"
        if self.kind == "ratio_min":
            return f">= {self.value:g}x"
        return f"<= {self.value:g} {unit}"

    def met(self, first: float, last: float | None) -> bool | None:
        if self.kind == "abs_max":
            return first <= self.value
        if last is None or last == 0:
            return None
        ratio = first / last
        return ratio <= self.value if self.kind == "ratio_max" else ratio >= self.value


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    scenario: str
    target: Target | None = None
    digits: int = 1


METRICS = [
    Metric("turn_ms", "turn overhead, median of 50", "ms", "turn", Target("ratio_max", 0.5), 2),
    Metric("stream_rate", "5,000-delta turn", "deltas/s", "stream", Target("ratio_min", 1.5), 0),
    Metric("stream_s", "5,000-delta turn, duration", "s", "stream", None, 3),
    Metric(
        "concurrent_s", "50 concurrent turns, 200 ms upstream", "s", "concurrent", Target("abs_max", 0.4), 3
    ),
    Metric("spawn_ms", "spawn -> initialize response", "ms", "startup", Target("abs_max", 150), 1),
    Metric("idle_hwm_mib", "peak RSS idle (VmHWM)", "MiB", "startup", Target("ratio_max", 2.5), 1),
    Metric("idle_rss_mib", "RSS idle (VmRSS)", "MiB", "startup", None, 1),
    Metric("thread_hwm_kib", "per extra thread+turn, VmHWM", "KiB", "memory", Target("ratio_max", 1.0), 0),
    Metric("thread_rss_kib", "per extra thread+turn, VmRSS", "KiB", "memory", None, 0),
    Metric("start_hwm_kib", "per extra thread/start only, VmHWM", "KiB", "memory", None, 0),
    Metric("list_first_cold_ms", "thread/list first page, cold", "ms", "list", Target("ratio_max", 1.0), 1),
    Metric("list_first_ms", "thread/list first page, index", "ms", "list", Target("ratio_max", 1.0), 1),
    Metric("list_first_again_ms", "thread/list first page, 2nd call", "ms", "list", None, 1),
    Metric("list_all_cold_s", "page through all, cold", "s", "list", Target("ratio_max", 0.1), 3),
    Metric("list_all_s", "page through all, index", "s", "list", Target("ratio_max", 0.1), 3),
]


# --------------------------------------------------------------------------------------------
# A lean JSON-RPC client over the server's stdio


@dataclass
class TurnWatch:
    """What one thread's current turn streamed, as the client saw it."""

    deltas: list[str] = field(default_factory=list)
    legacy_deltas: list[str] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)
    completed_at: float = 0.0
    status: str | None = None
    error: Any = None


@dataclass
class _Slot:
    done: trio.Event = field(default_factory=trio.Event)
    reply: dict[str, Any] | None = None


class Server:
    def __init__(self, process: trio.Process, label: str, stderr_path: Path) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.label = label
        self.stderr_path = stderr_path
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._ids = 0
        self._slots: dict[int, _Slot] = {}
        self.turns: dict[str, TurnWatch] = {}
        self.errors: list[Any] = []
        self.closed = trio.Event()

    # -- reading

    async def read_loop(self) -> None:
        buf = b""
        try:
            while True:
                data = await self._stdout.receive_some(1 << 20)
                if not data:
                    return
                now = time.perf_counter()
                buf += data
                if b"\n" not in data:
                    continue
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._dispatch(json.loads(line), now)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            self.closed.set()
            for slot in self._slots.values():
                slot.done.set()

    def _dispatch(self, msg: dict[str, Any], now: float) -> None:
        method = msg.get("method")
        if method is None:
            slot = self._slots.pop(msg.get("id"), None)  # type: ignore[arg-type]
            if slot is not None:
                slot.reply = msg
                slot.done.set()
            return
        params = msg.get("params") or {}
        if "id" in msg:
            # No scenario asks for approval; an unexpected server request is a failure to see.
            self.errors.append(msg)
            return
        if method == "item/agentMessage/delta":
            watch = self.turns.get(str(params.get("threadId")))
            if watch is not None:
                watch.deltas.append(params["delta"])
        elif method == "codex/event/agent_message_delta":
            watch = self.turns.get(str(params.get("conversationId")))
            if watch is not None:
                watch.legacy_deltas.append(params["msg"]["delta"])
        elif method == "turn/completed":
            watch = self.turns.get(str(params.get("threadId")))
            if watch is not None:
                turn = params.get("turn") or {}
                watch.status = turn.get("status")
                watch.error = turn.get("error")
                watch.completed_at = now
                watch.done.set()
        elif method == "error":
            self.errors.append(msg)

    # -- writing

    def _request(self, method: str, params: Any) -> tuple[bytes, _Slot]:
        self._ids += 1
        slot = _Slot()
        self._slots[self._ids] = slot
        msg: dict[str, Any] = {"id": self._ids, "method": method}
        if params is not None:
            msg["params"] = params
        return json.dumps(msg).encode() + b"\n", slot

    async def send_raw(self, data: bytes) -> None:
        await self._stdin.send_all(data)

    async def call(self, method: str, params: Any = None, timeout: float = 30.0) -> Any:
        data, slot = self._request(method, params)
        with trio.fail_after(timeout):
            await self.send_raw(data)
            await slot.done.wait()
        return self._result(method, slot)

    def _result(self, method: str, slot: _Slot) -> Any:
        reply = slot.reply
        if reply is None:
            raise BenchError(f"{self.label}: output closed before the answer to {method}")
        if "error" in reply:
            raise BenchError(f"{self.label}: {method} failed: {reply['error']}")
        return reply.get("result")

    async def notify(self, method: str) -> None:
        await self.send_raw(json.dumps({"method": method}).encode() + b"\n")

    async def initialize(self) -> None:
        await self.call("initialize", {"clientInfo": {"name": "bench_core", "version": "1.0"}})
        await self.notify("initialized")

    async def thread_start(self) -> str:
        result = await self.call("thread/start", {})
        return str(result["thread"]["id"])

    def _turn_request(self, thread_id: str, text: str) -> tuple[bytes, _Slot, TurnWatch]:
        watch = TurnWatch()
        self.turns[thread_id] = watch
        params = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
        data, slot = self._request("turn/start", params)
        return data, slot, watch

    async def turns_at_once(
        self, work: Sequence[tuple[str, str]], timeout: float = 60.0
    ) -> tuple[float, list[TurnWatch]]:
        """Start a turn on each (thread, text) in one write; seconds until the last completes."""
        requests = [self._turn_request(thread_id, text) for thread_id, text in work]
        payload = b"".join(data for data, _, _ in requests)
        with trio.fail_after(timeout):
            began = time.perf_counter()
            await self.send_raw(payload)
            for _, slot, watch in requests:
                await slot.done.wait()
                self._result("turn/start", slot)
                await watch.done.wait()
        watches = [watch for _, _, watch in requests]
        for watch in watches:
            if watch.status != "completed":
                raise BenchError(f"{self.label}: a turn ended {watch.status}: {watch.error}")
        return max(w.completed_at for w in watches) - began, watches

    async def turn(self, thread_id: str, text: str, timeout: float = 60.0) -> tuple[float, TurnWatch]:
        elapsed, (watch,) = await self.turns_at_once([(thread_id, text)], timeout)
        return elapsed, watch

    # -- process

    def status_kib(self, key: str) -> int:
        value = read_proc_status(self.process.pid).get(key, "")
        parts = value.split()
        if not parts or not parts[0].isdigit():
            raise BenchError(f"{self.label}: no {key} in /proc/{self.process.pid}/status")
        return int(parts[0])

    def stderr_tail(self, chars: int = 1500) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Env:
    """Where servers run: the mock's URL and a directory for throwaway homes."""

    base_url: str
    workdir: Path
    pycache: Path


def write_config(codex_home: Path, base_url: str) -> None:
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        'model = "mock-model"\n'
        f'model_provider = "{PROVIDER}"\n'
        f"chatgpt_base_url = {json.dumps(base_url)}\n"
        "\n"
        f"[model_providers.{PROVIDER}]\n"
        'name = "mock"\n'
        f"base_url = {json.dumps(base_url)}\n"
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n",
        encoding="utf-8",
    )


@asynccontextmanager
async def launch(
    command: list[str], label: str, env: Env, codex_home: Path | None = None
) -> AsyncIterator[tuple[Server, float]]:
    """Start the server; yields it and the perf_counter() reading taken just before the spawn."""
    root = Path(tempfile.mkdtemp(prefix="bench-core-", dir=env.workdir))
    try:
        for sub in ("home", "work"):
            (root / sub).mkdir()
        home = codex_home if codex_home is not None else root / "codex_home"
        write_config(home, env.base_url)
        # Bytecode is cached (outside the repo) as an installed package's would be: compiling every
        # module at each spawn is not what a user's start-up costs.
        overrides: dict[str, str | None] = {
            "TZ": "UTC",
            "PYTHONDONTWRITEBYTECODE": None,
            "PYTHONPYCACHEPREFIX": str(env.pycache),
        }
        full_env = hermetic_env(
            home=root / "home", codex_home=home, base_url=env.base_url, overrides=overrides
        )
        stderr_path = root / "stderr.log"
        with stderr_path.open("wb") as stderr_file:
            spawned = time.perf_counter()
            process = await trio.lowlevel.open_process(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                env=full_env,
                cwd=root / "work",
            )
        server = Server(process, label, stderr_path)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.read_loop)
                try:
                    yield server, spawned
                except BaseException as exc:
                    if isinstance(exc, BenchError):
                        exc.args = (f"{exc.args[0]}\n--- stderr tail ---\n{server.stderr_tail()}",)
                    raise
                with trio.move_on_after(5):
                    await server._stdin.aclose()
                    await process.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                    with trio.move_on_after(5):
                        await process.wait()
            if server.errors:
                print(f"    ({label}: {len(server.errors)} error notification(s), first: {server.errors[0]})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The mock's answers, chosen by what the user typed


def stream_chunks(n: int) -> list[str]:
    return [f"{i} " for i in range(n)]


def respond(request: RecordedRequest) -> Script:
    user = request.last_user_text() or ""
    if user.startswith(STREAM_PREFIX):
        return mock_text(chunks=stream_chunks(int(user[len(STREAM_PREFIX) :])))
    if user.startswith(DELAY_PREFIX):
        return mock_text(REPLY, initial_delay=float(user[len(DELAY_PREFIX) :]))
    return mock_text(REPLY)


# --------------------------------------------------------------------------------------------
# Scenarios: one run on one server, returning {metric key: value}

Sample = dict[str, float]


def check_reply(label: str, watch: TurnWatch, expected: str) -> None:
    got = "".join(watch.deltas)
    if got != expected:
        raise BenchError(f"{label}: streamed text differs from the reply ({len(watch.deltas)} deltas)")


async def run_turn(command: list[str], label: str, env: Env, args: argparse.Namespace) -> Sample:
    async with launch(command, label, env) as (server, _):
        await server.initialize()
        thread = await server.thread_start()
        for _ in range(5):
            await server.turn(thread, "warm up")
        times = []
        for i in range(args.turns):
            elapsed, watch = await server.turn(thread, f"turn {i}")
            check_reply(label, watch, REPLY)
            times.append(elapsed)
    return {"turn_ms": statistics.median(times) * 1000}


async def run_stream(command: list[str], label: str, env: Env, args: argparse.Namespace) -> Sample:
    n = args.deltas
    expected = "".join(stream_chunks(n))
    async with launch(command, label, env) as (server, _):
        await server.initialize()
        thread = await server.thread_start()
        await server.turn(thread, "warm up")
        elapsed, watch = await server.turn(thread, f"{STREAM_PREFIX}{n}", timeout=120)
    if len(watch.deltas) != n or "".join(watch.deltas) != expected:
        raise BenchError(f"{label}: {len(watch.deltas)} of {n} v2 deltas, or out of order")
    if len(watch.legacy_deltas) != n or "".join(watch.legacy_deltas) != expected:
        raise BenchError(f"{label}: {len(watch.legacy_deltas)} of {n} legacy deltas, or out of order")
    return {"stream_rate": n / elapsed, "stream_s": elapsed}


async def run_concurrent(command: list[str], label: str, env: Env, args: argparse.Namespace) -> Sample:
    async with launch(command, label, env) as (server, _):
        await server.initialize()
        warm = await server.thread_start()
        await server.turn(warm, "warm up")
        threads = [await server.thread_start() for _ in range(args.concurrent)]
        work = [(t, f"{DELAY_PREFIX}{args.upstream_delay}") for t in threads]
        elapsed, watches = await server.turns_at_once(work)
    for watch in watches:
        check_reply(label, watch, REPLY)
    return {"concurrent_s": elapsed}


async def run_startup(command: list[str], label: str, env: Env, args: argparse.Namespace) -> Sample:
    async with launch(command, label, env) as (server, spawned):
        await server.initialize()
        ready = time.perf_counter()
        await trio.sleep(args.settle)
        hwm, rss = server.status_kib("VmHWM"), server.status_kib("VmRSS")
    return {"spawn_ms": (ready - spawned) * 1000, "idle_hwm_mib": hwm / 1024, "idle_rss_mib": rss / 1024}


async def run_memory(command: list[str], label: str, env: Env, args: argparse.Namespace) -> Sample:
    n = args.extra_threads
    async with launch(command, label, env) as (server, _):
        await server.initialize()
        first = await server.thread_start()
        await server.turn(first, "warm up")
        await trio.sleep(args.settle)
        hwm0, rss0 = server.status_kib("VmHWM"), server.status_kib("VmRSS")
        threads = [await server.thread_start() for _ in range(n)]
        await trio.sleep(args.settle)
        hwm1 = server.status_kib("VmHWM")
        for i, thread in enumerate(threads):
            await server.turn(thread, f"hello {i}")
        await trio.sleep(args.settle)
        hwm2, rss2 = server.status_kib("VmHWM"), server.status_kib("VmRSS")
    return {
        "start_hwm_kib": (hwm1 - hwm0) / n,
        "thread_hwm_kib": (hwm2 - hwm0) / n,
        "thread_rss_kib": (rss2 - rss0) / n,
    }


async def list_pass(server: Server, expect: int) -> tuple[float, float, float, int]:
    """(first page, all pages, first page again) in seconds, and the number of pages; every thread
    listed exactly once."""
    seen: set[str] = set()
    pages = 1
    began = time.perf_counter()
    page = await server.call("thread/list", {}, timeout=300)
    first = time.perf_counter() - began
    while True:
        for thread in page["data"]:
            if thread["id"] in seen:
                raise BenchError(f"{server.label}: thread {thread['id']} listed twice")
            seen.add(thread["id"])
        cursor = page.get("nextCursor")
        if cursor is None:
            break
        page = await server.call("thread/list", {"cursor": cursor}, timeout=300)
        pages += 1
    total = time.perf_counter() - began
    if len(seen) != expect:
        raise BenchError(f"{server.label}: listed {len(seen)} threads of {expect}")
    began = time.perf_counter()
    await server.call("thread/list", {}, timeout=300)
    return first, total, time.perf_counter() - began, pages


def read_all(directory: Path) -> None:
    """Read every file under ``directory``, so that each server finds the rollouts in the OS page
    cache: "cold" is about codex-trio's own index, and the page cache, which the kernel may have
    trimmed since the last run, would otherwise favour whichever server runs second."""
    for walked, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(walked, name), "rb") as handle:
                while handle.read(1 << 20):
                    pass


async def run_list(command: list[str], label: str, env: Env, args: argparse.Namespace) -> Sample:
    home: Path = args.list_home_path
    for cache in PERSISTED_CACHES:
        shutil.rmtree(home / cache, ignore_errors=True)
    await trio.to_thread.run_sync(read_all, home / "sessions")
    async with launch(command, label, env, codex_home=home) as (server, _):
        await server.initialize()
        first_cold, all_cold, _, _ = await list_pass(server, args.threads)
    async with launch(command, label, env, codex_home=home) as (server, _):
        await server.initialize()
        first, total, again, pages = await list_pass(server, args.threads)
    return {
        "list_first_cold_ms": first_cold * 1000,
        "list_all_cold_s": all_cold,
        "list_first_ms": first * 1000,
        "list_all_s": total,
        "list_first_again_ms": again * 1000,
        "list_pages": pages,
    }


RUNNERS = {
    "turn": run_turn,
    "stream": run_stream,
    "concurrent": run_concurrent,
    "startup": run_startup,
    "memory": run_memory,
    "list": run_list,
}


# --------------------------------------------------------------------------------------------
# Stored threads in the reference's format


def uuid7(moment: datetime, rng: random.Random) -> str:
    ms = int(moment.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_TIMESTAMP = re.compile(r'"timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z"')


def _iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def generate_rollouts(home: Path, count: int, seed: int = 7) -> None:
    """``count`` one-turn rollouts copied from one the reference wrote, each with its own id, time
    and user text; created over the year before last month, last modified minutes after creation."""
    template = TEMPLATE_ROLLOUT.read_text(encoding="utf-8").splitlines(keepends=True)
    base = datetime.strptime(_TIMESTAMP.search(template[0]).group(1), "%Y-%m-%dT%H:%M:%S.%f")  # type: ignore[union-attr]
    base = base.replace(tzinfo=timezone.utc)
    # Each line as pieces between its timestamps, with each timestamp as an offset from the first.
    parts: list[tuple[list[str], list[timedelta]]] = []
    for line in template:
        pieces, offsets, last = [], [], 0
        for match in _TIMESTAMP.finditer(line):
            pieces.append(line[last : match.start(1)])
            moment = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
            offsets.append(moment - base)
            last = match.end(1)
        pieces.append(line[last:])
        parts.append((pieces, offsets))
    rng = random.Random(seed)
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=30)
    start = end - timedelta(days=365)
    sessions = home / "sessions"
    for i in range(count):
        created = start + timedelta(seconds=rng.randrange(365 * 24 * 3600), milliseconds=rng.randrange(1000))
        thread_id = uuid7(created, rng)
        user_text = f"Please look at issue #{i}: the build fails on step {rng.randrange(100)}"
        out = []
        for pieces, offsets in parts:
            line = pieces[0]
            for offset, piece in zip(offsets, pieces[1:], strict=True):
                line += _iso_ms(created + offset) + piece
            out.append(line.replace(TEMPLATE_ID, thread_id).replace(TEMPLATE_TEXT, user_text))
        directory = sessions / created.strftime("%Y/%m/%d")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"rollout-{created.strftime('%Y-%m-%dT%H-%M-%S')}-{thread_id}.jsonl"
        path.write_text("".join(out), encoding="utf-8")
        updated = (created + timedelta(minutes=rng.randrange(1, 600))).timestamp()
        os.utime(path, (updated, updated))
    past = (end - timedelta(days=1)).timestamp()
    for walked, _, _ in os.walk(sessions):
        os.utime(walked, (past, past))


def prepare_list_home(args: argparse.Namespace, workdir: Path) -> Path:
    home: Path = Path(args.list_home) if args.list_home else workdir / "list_home"
    marker = home / f".bench_core_{args.threads}"
    if marker.exists():
        print(f"list: reusing {args.threads:,} rollouts under {home}")
        return home
    shutil.rmtree(home / "sessions", ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    for stale in home.glob(".bench_core_*"):
        stale.unlink()
    began = time.perf_counter()
    generate_rollouts(home, args.threads)
    marker.touch()
    print(f"list: generated {args.threads:,} rollouts under {home} in {time.perf_counter() - began:.1f} s")
    return home


# --------------------------------------------------------------------------------------------
# Driver


def parse_command(text: str) -> list[str]:
    argv = shlex.split(text)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def short_label(command: list[str]) -> str:
    if "codex_trio" in command:
        return "codex-trio"
    if command[0] == sys.executable and len(command) > 1:
        # A module or a script: name it, not the interpreter.
        target = command[2] if command[1] == "-m" and len(command) > 2 else command[1]
        return Path(target).name
    return Path(command[0]).name


def fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def report(
    labels: list[str], samples: dict[str, list[list[float]]], metrics: Sequence[Metric]
) -> list[dict[str, Any]]:
    """Print the table of medians (and, with two or more servers, ratios and targets); return its rows."""
    rows: list[dict[str, Any]] = []
    compare = len(labels) >= 2
    head = f"{'metric':<40}{'unit':>9}" + "".join(f"{lab[:14]:>15}" for lab in labels)
    if compare:
        head += f"{'ratio':>9}  {'target':<12}{'met':>4}"
    print()
    print(head)
    print("-" * len(head))
    for metric in metrics:
        if metric.key not in samples:
            continue
        per_server = samples[metric.key]
        medians = [statistics.median(s) if s else None for s in per_server]
        line = f"{metric.label:<40}{metric.unit:>9}"
        line += "".join(f"{fmt(m, metric.digits):>15}" for m in medians)
        row: dict[str, Any] = {
            "key": metric.key,
            "label": metric.label,
            "unit": metric.unit,
            "samples": per_server,
            "medians": medians,
        }
        if compare:
            first, last = medians[0], medians[-1]
            ratio = first / last if first is not None and last else None
            met = metric.target.met(first, last) if metric.target and first is not None else None
            target = metric.target.describe(metric.unit) if metric.target else ""
            verdict = "" if met is None else ("yes" if met else "NO")
            line += f"{fmt(ratio, 2):>9}  {target:<12}{verdict:>4}"
            row.update(ratio=ratio, target=target, met=met)
        print(line)
        rows.append(row)
    return rows


def server_labels(commands: list[list[str]]) -> list[str]:
    labels = [short_label(c) for c in commands]
    if len(set(labels)) != len(labels):
        labels = [f"{i + 1}:{lab}" for i, lab in enumerate(labels)]
    for label, command in zip(labels, commands, strict=True):
        print(f"{label}: {shlex.join(command)}")
    return labels


async def warm_up(commands: list[list[str]], labels: list[str], env: Env) -> None:
    """One unmeasured start per server: fills the OS page cache and the bytecode cache."""
    for label, command in zip(labels, commands, strict=True):
        async with launch(command, label, env) as (server, _):
            await server.initialize()


async def interleaved(
    labels: list[str],
    runs: int,
    run_one: Callable[[int], Awaitable[dict[str, float]]],
    samples: dict[str, list[list[float]]],
) -> None:
    """``runs`` runs per server, alternating the order (A B, then B A, ...) so that all see the same load.

    ``run_one(i)`` measures server ``i``; its values are appended to ``samples[key][i]``.
    """
    for run in range(runs):
        order = list(range(len(labels)))
        if run % 2:
            order.reverse()
        for which in order:
            result = await run_one(which)
            for key, value in result.items():
                samples.setdefault(key, [[] for _ in labels])[which].append(value)
            shown = ", ".join(f"{k} {v:,.3f}" for k, v in result.items())
            print(f"  run {run + 1}/{runs} {labels[which]}: {shown}", flush=True)


async def write_json(
    path: str, labels: list[str], commands: list[list[str]], rows: list[dict[str, Any]], **extra: Any
) -> None:
    servers = [{"label": lab, "command": shlex.join(c)} for lab, c in zip(labels, commands, strict=True)]
    payload = {
        "servers": servers,
        **extra,
        "metrics": rows,
    }
    await trio.Path(path).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


async def bench(args: argparse.Namespace) -> None:
    commands = [parse_command(c) for c in args.server or ["python -m codex_trio app-server"]]
    labels = server_labels(commands)
    chosen = [s for s in SCENARIOS if not args.only or s in args.only]
    workdir = Path(tempfile.mkdtemp(prefix="bench-core-", dir=args.workdir))
    samples: dict[str, list[list[float]]] = {}
    try:
        if "list" in chosen:
            args.list_home_path = prepare_list_home(args, workdir)
        async with open_mock_responses(default=respond) as mock:
            env = Env(mock.base_url, workdir, Path(args.pycache or workdir / "pycache"))
            await warm_up(commands, labels, env)
            for scenario in chosen:
                runs = args.runs or DEFAULT_RUNS[scenario]
                print(f"{scenario}: {runs} run(s) per server, interleaved", flush=True)

                async def run_one(which: int, scenario: str = scenario) -> dict[str, float]:
                    mock.requests.clear()
                    return await RUNNERS[scenario](commands[which], labels[which], env, args)

                await interleaved(labels, runs, run_one, samples)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = report(labels, samples, [m for m in METRICS if m.scenario in chosen])
    if args.json:
        await write_json(args.json, labels, commands, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server",
        action="append",
        metavar="CMD",
        help='server command line (default "python -m codex_trio app-server"); repeat to compare, '
        "the last one being the reference the targets refer to",
    )
    parser.add_argument(
        "--only", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)"
    )
    parser.add_argument("--runs", type=int, help="runs per server and scenario (default: per scenario)")
    parser.add_argument("--json", metavar="FILE", help="also write samples, medians and ratios as JSON")
    parser.add_argument("--turns", type=int, default=50, help="timed turns per run in 'turn' (50)")
    parser.add_argument("--deltas", type=int, default=5000, help="deltas of the 'stream' turn (5,000)")
    parser.add_argument("--concurrent", type=int, default=50, help="turns at once in 'concurrent' (50)")
    parser.add_argument(
        "--upstream-delay", type=float, default=0.2, help="mock delay in 'concurrent' (0.2 s)"
    )
    parser.add_argument("--extra-threads", type=int, default=100, help="threads added in 'memory' (100)")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before reading memory (1)")
    parser.add_argument("--threads", type=int, default=10_000, help="stored threads in 'list' (10,000)")
    parser.add_argument("--list-home", metavar="DIR", help="keep the generated rollouts here and reuse them")
    parser.add_argument("--workdir", default=None, help="where temporary homes go (default: the temp dir)")
    parser.add_argument(
        "--pycache", metavar="DIR", help="PYTHONPYCACHEPREFIX of the servers (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    trio.run(bench, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
