"""Helpers for the agent-core end-to-end tests: codex-trio as a stdio subprocess, its model provider a
mock of the Responses API on 127.0.0.1, every message it writes checked against the protocol schema.

A test reads the server's output in order through :meth:`Agent.until` (requests sent with
:meth:`Agent.request` are answered into the same stream), so it sees exactly the interleaving of
responses and notifications a client sees.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from schema_check import ProtocolValidator

from codex_trio.testing.harness import NoMessage, StdioServer, open_server
from codex_trio.testing.mock_responses import MockResponses

CAPTURES = Path(__file__).parent / "fixtures" / "reference_captures"
NEVER = {"approvalPolicy": "never", "sandbox": "danger-full-access"}
# What every test waits at most for one expected message; turns against the mock take milliseconds.
WAIT = 10.0

Message = dict[str, Any]
Predicate = Callable[[Message], bool]


def write_config(
    codex_home: Path,
    base_url: str,
    *,
    request_max_retries: int = 0,
    stream_max_retries: int = 0,
    stream_idle_timeout_ms: int | None = None,
) -> None:
    """A config.toml whose default provider (``mock_provider``, model ``mock-model``) is the mock."""
    codex_home.mkdir(parents=True, exist_ok=True)
    lines = [
        'model = "mock-model"',
        'model_provider = "mock_provider"',
        f"chatgpt_base_url = {json.dumps(base_url)}",
        "",
        "[model_providers.mock_provider]",
        'name = "Mock"',
        f"base_url = {json.dumps(base_url)}",
        'wire_api = "responses"',
        f"request_max_retries = {request_max_retries}",
        f"stream_max_retries = {stream_max_retries}",
    ]
    if stream_idle_timeout_ms is not None:
        lines.append(f"stream_idle_timeout_ms = {stream_idle_timeout_ms}")
    (codex_home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def is_method(name: str, pred: Callable[[Any], bool] = lambda params: True) -> Predicate:
    return lambda m: m.get("method") == name and "id" not in m and pred(m.get("params") or {})


def is_reply(request_id: Any) -> Predicate:
    return lambda m: m.get("id") == request_id and "method" not in m


def methods(messages: Sequence[Message]) -> list[str]:
    """The notification methods of ``messages``, in order."""
    return [m["method"] for m in messages if "method" in m and "id" not in m]


def skeleton(messages: Sequence[Message]) -> list[str]:
    """The structure of a stretch of output: each message's kind (notification method, with the item
    type for item events; ``result`` or ``error`` for responses), in order. Ids, timestamps and texts
    are left out, so our output and the reference's compare equal when only those differ."""
    out: list[str] = []
    for m in messages:
        if "method" in m and "id" not in m:
            method = m["method"]
            params = m.get("params") or {}
            if method in ("item/started", "item/completed"):
                method += ":" + params["item"]["type"]
            out.append(method)
        elif "method" in m:
            out.append("request:" + m["method"])
        else:
            out.append("error" if "error" in m else "result")
    return out



@dataclass
class TranscriptClient:
    """A client session that keeps the transcript: what it sent (``dir`` "C") and everything the server
    wrote (``dir`` "S"), in order, for comparing whole exchanges with the reference's captures."""

    server: StdioServer
    transcript: list[Message] = field(default_factory=list)

    async def send(self, method: str, params: Any) -> Any:
        request_id = await self.server.request(method, params)
        self.transcript.append({"dir": "C", "msg": {"id": request_id, "method": method, "params": params}})
        return request_id

    async def until(self, pred: Predicate, timeout: float = WAIT) -> list[Message]:
        seen: list[Message] = []
        with trio.move_on_after(timeout):
            while True:
                msg = await self.server.receive(timeout=timeout)
                seen.append(msg)
                self.transcript.append({"dir": "S", "msg": msg})
                if pred(msg):
                    return seen
        raise NoMessage(f"nothing matched within {timeout:g}s; got {skeleton(seen)}")

    async def quiet(self, duration: float = 0.3) -> list[Message]:
        """Whatever the server writes within ``duration``."""
        seen: list[Message] = []
        with trio.move_on_after(duration):
            while True:
                msg = await self.server.receive(timeout=duration + 1)
                seen.append(msg)
                self.transcript.append({"dir": "S", "msg": msg})
        return seen

    async def call(self, method: str, params: Any) -> Message:
        """The reply to ``method`` (what came before it stays in the transcript)."""
        request_id = await self.send(method, params)
        return (await self.until(is_reply(request_id)))[-1]

    async def result(self, method: str, params: Any) -> Any:
        reply = await self.call(method, params)
        assert "result" in reply, f"{method} failed: {reply}"
        return reply["result"]

    async def answer(self, request: Message, result: Any) -> None:
        await self.server.respond(request["id"], result)
        self.transcript.append({"dir": "C", "msg": {"id": request["id"], "result": result}})

def capture(name: str) -> list[Message]:
    """A reference capture: everything the reference wrote on stdout in one scenario."""
    lines = (CAPTURES / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def capture_turn(name: str, request_id: int) -> list[Message]:
    """From the reference's answer to request ``request_id`` (a turn/start) to that turn's
    turn/completed."""
    messages = capture(name)
    start = next(i for i, m in enumerate(messages) if is_reply(request_id)(m))
    turn_id = messages[start]["result"]["turn"]["id"]
    done = is_method("turn/completed", lambda p: p["turn"]["id"] == turn_id)
    end = next(i for i in range(start, len(messages)) if done(messages[i]))
    return messages[start : end + 1]


class Agent:
    """The server under test plus the bookkeeping tests need: ordered output, thread and turn helpers."""

    def __init__(self, server: StdioServer, work: Path) -> None:
        self.server = server
        self.work = work

    async def request(self, method: str, params: Any = None) -> Any:
        return await self.server.request(method, params)

    async def until(self, pred: Predicate, timeout: float = WAIT) -> list[Message]:
        """Everything the server writes until (and including) the first message matching ``pred``."""
        seen: list[Message] = []
        with trio.move_on_after(timeout):
            while True:
                msg = await self.server.receive(timeout=timeout)
                seen.append(msg)
                if pred(msg):
                    return seen
        raise NoMessage(f"nothing matched within {timeout:g}s; got {skeleton(seen)}")

    async def quiet(self, duration: float = 0.2) -> list[Message]:
        """Whatever the server writes during ``duration`` seconds (a check that nothing more comes)."""
        seen: list[Message] = []
        with trio.move_on_after(duration):
            while True:
                seen.append(await self.server.receive(timeout=duration + 1))
        return seen

    async def call(self, method: str, params: Any = None) -> tuple[Message, list[Message]]:
        """A request and its reply, with everything written before the reply."""
        request_id = await self.request(method, params)
        seen = await self.until(is_reply(request_id))
        return seen[-1], seen[:-1]

    async def result(self, method: str, params: Any = None) -> Any:
        reply, _ = await self.call(method, params)
        assert "result" in reply, f"{method} failed: {reply}"
        return reply["result"]

    async def error(self, method: str, params: Any = None) -> dict[str, Any]:
        reply, _ = await self.call(method, params)
        assert "error" in reply, f"{method} did not fail: {reply}"
        error: dict[str, Any] = reply["error"]
        return error

    async def start_thread(self, **params: Any) -> dict[str, Any]:
        """thread/start in the work directory (never ask, full access unless overridden); waits for the
        announcements that follow it."""
        full = {"cwd": str(self.work), **NEVER, **params}
        request_id = await self.request("thread/start", full)
        seen = await self.until(is_reply(request_id))
        assert "result" in seen[-1], seen[-1]
        result: dict[str, Any] = seen[-1]["result"]
        pending = {"thread/started", "codex/event/mcp_startup_complete"}
        while pending:
            more = await self.until(lambda m: m.get("method") in pending)
            pending.discard(more[-1]["method"])
        return result

    async def start_turn(self, thread_id: str, input: str | list[dict[str, Any]], **params: Any) -> Any:
        """Sends turn/start; returns its request id (the reply comes through :meth:`until`)."""
        items = [{"type": "text", "text": input, "text_elements": []}] if isinstance(input, str) else input
        return await self.request("turn/start", {"threadId": thread_id, "input": items, **params})

    async def turn(self, thread_id: str, input: str | list[dict[str, Any]], **params: Any) -> list[Message]:
        """A whole turn: everything from the turn/start reply to the turn's turn/completed."""
        request_id = await self.start_turn(thread_id, input, **params)
        seen = await self.until(is_reply(request_id))
        assert "result" in seen[-1], seen[-1]
        turn_id = seen[-1]["result"]["turn"]["id"]
        seen += await self.until(is_method("turn/completed", lambda p: p["turn"]["id"] == turn_id))
        return seen


@asynccontextmanager
async def agent(
    mock: MockResponses,
    codex_home: Path,
    work: Path,
    *,
    env: Mapping[str, str | None] | None = None,
    check_exit: bool = True,
    **config: Any,
) -> AsyncIterator[Agent]:
    """codex-trio over stdio with ``codex_home`` (config.toml written for ``mock``), initialized as the
    client "harness"; on exit it must close cleanly (status 0, no traceback) unless ``check_exit`` is
    off (a test that kills it)."""
    write_config(codex_home, mock.base_url, **config)
    work.mkdir(parents=True, exist_ok=True)
    overrides: dict[str, str | None] = {"TZ": "UTC", **(env or {})}
    async with open_server(
        codex_home=codex_home,
        base_url=mock.base_url,
        validator=ProtocolValidator(),
        env=overrides,
        check_exit=check_exit,
    ) as server:
        await server.initialize(name="harness")
        yield Agent(server, work)


def rollout_lines(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]


def text_of(item: Mapping[str, Any]) -> str:
    """The text spans of a message input item, joined."""
    return "".join(
        part.get("text", "")
        for part in item.get("content") or []
        if part.get("type") in ("input_text", "output_text")
    )


def conversation(input_items: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(role, text) of each message of a request's input (other items as (type, ""))."""
    out: list[tuple[str, str]] = []
    for item in input_items:
        if item.get("type") == "message":
            out.append((str(item.get("role")), text_of(item)))
        else:
            out.append((str(item.get("type")), ""))
    return out
