"""Turns over websocket, end to end: codex-trio as a subprocess listening on ws://127.0.0.1:0, its model a
mock of the Responses API on 127.0.0.1, clients on trio-websocket (``harness.open_ws_server``).

Several clients at once each run a whole turn; a client that stops reading is dropped while another one
subscribed to the same thread keeps its per-delta latency, and the turn goes on and stays resumable.
Every message the server writes is checked against the protocol schema, per connection.
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from e2e_util import NEVER, write_config
from schema_check import ProtocolValidator

from codex_trio.app import AppServer, ClientSession, ServerOptions
from codex_trio.rpc.session import Limits
from codex_trio.testing import mock_responses as mr
from codex_trio.testing.harness import WsClient, open_ws_client, open_ws_server
from codex_trio.ws_server import WebSocketOptions, serve_websocket

DELTA = "item/agentMessage/delta"
LEGACY_DELTAS = ["codex/event/agent_message_delta", "codex/event/agent_message_content_delta"]


def text_input(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "text_elements": []}]


async def start_thread(client: WsClient, work: Path, **params: Any) -> str:
    result = await client.call_result("thread/start", {"cwd": str(work), **NEVER, **params})
    await client.wait_notification("thread/started")
    return str(result["thread"]["id"])


async def run_turn(client: WsClient, thread_id: str, text: str, timeout: float = 10) -> dict[str, Any]:
    """turn/start, then everything up to that turn's turn/completed; the turn/completed params."""
    after = len(client.notifications)
    params = {"threadId": thread_id, "input": text_input(text)}
    turn = (await client.call_result("turn/start", params))["turn"]
    while True:
        done = await client.wait_notification("turn/completed", after=after, timeout=timeout)
        after = client.notifications.index(done) + 1
        if done["params"]["turn"]["id"] == turn["id"]:
            completed: dict[str, Any] = done["params"]
            return completed


def notes_of(client: WsClient, method: str) -> list[dict[str, Any]]:
    return [n["params"] for n in client.notifications if n["method"] == method]


async def test_concurrent_clients_each_run_a_whole_turn_and_hear_only_their_own_thread(
    tmp_path: Path,
) -> None:
    clients = 4
    async with mr.open_mock_responses() as mock:  # the default script echoes the user's message
        write_config(tmp_path / "home", mock.base_url)
        (tmp_path / "work").mkdir()
        async with open_ws_server(
            codex_home=tmp_path / "home", base_url=mock.base_url, validator_factory=ProtocolValidator
        ) as server:
            seen: dict[int, tuple[str, dict[str, Any], WsClient]] = {}

            async def one(i: int) -> None:
                # Client 0 opts out of the legacy deltas: opt-outs belong to its connection only.
                opt_out = LEGACY_DELTAS if i == 0 else []
                capabilities = {"experimentalApi": False, "optOutNotificationMethods": opt_out}
                async with server.connect(name=f"client-{i}") as client:
                    await client.initialize(name=f"client_{i}", capabilities=capabilities)
                    thread_id = await start_thread(client, tmp_path / "work")
                    done = await run_turn(client, thread_id, f"hello from client {i}")
                    seen[i] = (thread_id, done, client)

            async with trio.open_nursery() as nursery:
                for i in range(clients):
                    nursery.start_soon(one, i)

    assert len({thread_id for thread_id, _, _ in seen.values()}) == clients
    for i, (thread_id, done, client) in seen.items():
        assert done["turn"]["status"] == "completed"
        deltas = notes_of(client, DELTA)
        assert "".join(d["delta"] for d in deltas) == mr.friendly_reply(f"hello from client {i}")
        # Everything this client heard about a thread was about its own.
        about = {n["params"]["threadId"] for n in client.notifications if "threadId" in n.get("params", {})}
        assert about == {thread_id}
        legacy = [n for n in client.notifications if n["method"] in LEGACY_DELTAS]
        assert (legacy == []) == (i == 0)
    # Each model request carried its own client's handshake and text.
    by_originator = {r.headers["originator"]: r.last_user_text() for r in mock.responses_requests}
    assert by_originator == {f"client_{i}": f"hello from client {i}" for i in range(clients)}


# ---- a stalled subscriber --------------------------------------------------------------------------

MARK = re.compile(rb"\[d(\d{5})\]")


class TimingRelay:
    """A TCP relay between the server and the mock model that notes when each marked delta passes
    (``[d00042]`` in the text): the moment the server could first have seen it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.passed: dict[int, float] = {}

    async def serve(self, *, task_status: trio.TaskStatus[str]) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/v1")
        await trio.serve_listeners(self._relay, listeners)

    async def _relay(self, downstream: trio.SocketStream) -> None:
        upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        async with downstream, upstream, trio.open_nursery() as nursery:
            nursery.start_soon(self._pipe, downstream, upstream, False)
            await self._pipe(upstream, downstream, True)
            nursery.cancel_scope.cancel()

    async def _pipe(self, source: trio.SocketStream, sink: trio.SocketStream, watch: bool) -> None:
        tail = b""
        try:
            while data := await source.receive_some(65536):
                if watch:
                    now = trio.current_time()
                    window = tail + data
                    for match in MARK.finditer(window):
                        self.passed.setdefault(int(match.group(1)), now)
                    tail = window[-12:]
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def marked_reply(start: int, count: int) -> mr.Script:
    chunks = [f"[d{start + k:05d}] word " for k in range(count)]
    return mr.text(chunks=chunks, delay_per_event=0.002)


def delta_latencies(client: WsClient, relay: TimingRelay, after: int) -> list[float]:
    """For each delta the client got (from notification ``after`` on): when it arrived minus when it
    left the model."""
    out = []
    for note, arrived in zip(client.notifications[after:], client.notification_times[after:], strict=True):
        if note["method"] == DELTA:
            match = MARK.search(note["params"]["delta"].encode())
            assert match is not None
            out.append(arrived - relay.passed[int(match.group(1))])
    return out


@asynccontextmanager
async def in_process_server(
    codex_home: Path, limits: Limits, slow_reader_timeout: float
) -> AsyncIterator[tuple[AppServer, str]]:
    """The app and its websocket listener in this process, as ``app-server --listen`` runs them, with
    limits small enough for a test to reach in a moment; (app, URL)."""
    env = {"CODEX_HOME": str(codex_home), "HOME": str(codex_home), "PATH": os.defpath, "TZ": "UTC"}
    app = AppServer(ServerOptions(env=env, limits=limits, turns_outlive_connection=True))
    options = WebSocketOptions(host="127.0.0.1", port=0, slow_reader_timeout=slow_reader_timeout)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        bound = await nursery.start(serve_websocket, app, options)
        yield app, bound.url
        nursery.cancel_scope.cancel()


def session_named(app: AppServer, name: str) -> ClientSession:
    (session,) = [s for s in app.sessions if s.client_name == name]
    return session


async def test_a_stalled_subscriber_is_dropped_while_another_keeps_its_per_delta_latency(
    tmp_path: Path, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    deltas = 300
    slow_reader_timeout = 1.5
    # The first message's echoes (item/started, item/completed, legacy events) fill the stalled
    # client's socket buffers, so that its outbound queue fills with the deltas.
    big = "x" * (256 * 1024)
    async with mr.open_mock_responses(marked_reply(0, deltas), marked_reply(deltas, deltas)) as mock:
        relay = TimingRelay(mock.port)
        write_config(tmp_path / "home", await nursery.start(relay.serve))
        (tmp_path / "work").mkdir()
        limits = Limits(outbound_queue=64)
        async with (
            in_process_server(tmp_path / "home", limits, slow_reader_timeout) as (app, url),
            open_ws_client(url, name="fast", validator=ProtocolValidator()) as fast,
        ):
            await fast.initialize(name="fast")
            thread_id = await start_thread(fast, tmp_path / "work")

            # Alone on the thread: the latency to beat.
            after = len(fast.notifications)
            assert (await run_turn(fast, thread_id, big + " one"))["turn"]["status"] == "completed"
            alone = delta_latencies(fast, relay, after)

            # Another client joins the thread, starts a turn and stops reading.
            async with open_ws_client(
                url, name="stalled", receive_buffer=4096, validator=ProtocolValidator()
            ) as stalled:
                await stalled.initialize(name="stalled")
                stalled_conn = session_named(app, "stalled").conn
                assert stalled_conn is not None
                await stalled.call_result("thread/resume", {"threadId": thread_id})
                after = len(fast.notifications)
                turn = await stalled.call_result(
                    "turn/start", {"threadId": thread_id, "input": text_input(big + " two")}
                )
                await stalled.pause_reading()
                done = await fast.wait_notification("turn/completed", after=after, timeout=15)
                shared = delta_latencies(fast, relay, after)
                with trio.fail_after(slow_reader_timeout + 5):
                    await stalled_conn.closed.wait()
                # The turn it started went on to the end without it.
                assert done["params"]["turn"] == {**turn["turn"], "status": "completed"}
                text = "".join(d["delta"] for d in notes_of(fast, DELTA)[deltas:])
                assert text == "".join(f"[d{k:05d}] word " for k in range(deltas, 2 * deltas))
                stalled.resume_reading()
                await stalled.drain(timeout=10)
                assert stalled.close_code == 1006

            # And it stays resumable: a new connection finds both turns, the second one whole.
            async with open_ws_client(url, validator=ProtocolValidator()) as later:
                await later.initialize(name="later")
                resumed = await later.call_result("thread/resume", {"threadId": thread_id})
                turns = resumed["thread"]["turns"]
                assert [t["status"] for t in turns] == ["completed", "completed"]
                agent = [i for i in turns[1]["items"] if i["type"] == "agentMessage"]
                assert [i["text"] for i in agent] == [text]

    assert len(alone) == len(shared) == deltas
    # Had the fan-out waited for the stalled client, deltas would have been up to the slow-reader
    # timeout late; the fast client sees no such gap, and its typical latency holds.
    assert max(shared) < slow_reader_timeout / 2, max(shared)
    assert statistics.median(shared) < 3 * statistics.median(alone) + 0.02, (
        statistics.median(shared),
        statistics.median(alone),
    )
