"""Messages per second over the websocket transport, beside stdio.

The server runs in a subprocess (this script with ``--serve ws`` or ``--serve stdio``: the same
``AppServer`` either way), the client in this process. After ``initialize``, two measures per transport:

- round trips: one ``getUserAgent`` at a time, waiting for each answer (latency-bound);
- pipelined: a burst of ``getUserAgent`` requests sent while the answers are read (throughput-bound).

Each is reported as messages per second and as the server's CPU time per request/response pair (read
from /proc, steadier than wall time on a shared machine), the median of several runs that alternate
between the transports. Both clients are lean, so that the server is what is measured: the stdio one
splits lines, the websocket one drives wsproto (the protocol engine under trio-websocket) directly over
a TCP stream. Turn overhead (a full turn against the mock model) is not measured here yet.

    python benchmarks/bench_ws.py [--runs 5] [--round-trips 2000] [--burst 20000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto import events as wsevents

from codex_trio.app import AppServer, ServerOptions
from codex_trio.transport.framing import LineReader
from codex_trio.transport.stdio import open_stdio_transport
from codex_trio.ws_server import WebSocketOptions, serve_websocket

INIT = {
    "id": 0,
    "method": "initialize",
    "params": {"clientInfo": {"name": "bench", "title": None, "version": "1.0"}, "capabilities": None},
}


# ---- servers (in the subprocess) ----------------------------------------------------------------


async def serve(kind: str) -> None:
    app = AppServer(ServerOptions(env=dict(os.environ)))
    if kind == "stdio":
        await app.serve_transport(open_stdio_transport(), name="stdio")
        return
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve_websocket, app, WebSocketOptions(host="127.0.0.1", port=0))
        print(bound.url, flush=True)
        # Until the parent closes our stdin.
        stdin = trio.lowlevel.FdStream(os.dup(0))
        while await stdin.receive_some():
            pass
        nursery.cancel_scope.cancel()


# ---- clients ------------------------------------------------------------------------------------


class Endpoint:
    send: Callable[[bytes], Awaitable[None]]
    receive: Callable[[], Awaitable[bytes]]


class StdioEndpoint(Endpoint):
    def __init__(self, proc: trio.Process) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._stdin = proc.stdin
        self._reader = LineReader(proc.stdout)

    async def send(self, data: bytes) -> None:
        await self._stdin.send_all(data + b"\n")

    async def receive(self) -> bytes:
        line = await self._reader.receive_line()
        assert line is not None
        return line


class WsEndpoint(Endpoint):
    def __init__(self, stream: trio.SocketStream, host: str) -> None:
        self._stream = stream
        self._host = host
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._messages: deque[bytes] = deque()
        self._parts: list[str] = []

    async def handshake(self) -> None:
        await self._stream.send_all(self._ws.send(wsevents.Request(host=self._host, target="/")))
        while not await self._pump(accept=True):
            pass

    async def _pump(self, *, accept: bool = False) -> bool:
        data = await self._stream.receive_some(256 * 1024)
        assert data, "server closed the connection"
        self._ws.receive_data(data)
        for event in self._ws.events():
            if isinstance(event, wsevents.AcceptConnection):
                return True
            if isinstance(event, wsevents.TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    self._messages.append("".join(self._parts).encode())
                    self._parts.clear()
            elif isinstance(event, wsevents.Ping):
                await self._stream.send_all(self._ws.send(event.response()))
            else:
                raise AssertionError(f"unexpected {event!r}")
        return accept is False

    async def send(self, data: bytes) -> None:
        await self._stream.send_all(self._ws.send(wsevents.TextMessage(data=data.decode())))

    async def receive(self) -> bytes:
        while not self._messages:
            await self._pump()
        return self._messages.popleft()


async def round_trips(endpoint: Endpoint, count: int) -> float:
    request = json.dumps({"id": 1, "method": "getUserAgent"}).encode()
    started = time.perf_counter()
    for _ in range(count):
        await endpoint.send(request)
        await endpoint.receive()
    return count / (time.perf_counter() - started)


async def pipelined(endpoint: Endpoint, count: int) -> float:
    requests = [json.dumps({"id": i, "method": "getUserAgent"}).encode() for i in range(count)]

    async def send_all() -> None:
        for request in requests:
            await endpoint.send(request)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_all)
        for _ in range(count):
            await endpoint.receive()
    return count / (time.perf_counter() - started)


def server_cpu_seconds(proc: trio.Process) -> float:
    """User + system CPU time of the server process so far (Linux), steadier than wall time on a
    shared machine."""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(proc: trio.Process, run: Callable[[], Awaitable[float]], count: int) -> tuple[float, float]:
    """(messages per second, server CPU microseconds per request/response pair)."""
    cpu = server_cpu_seconds(proc)
    rate = await run()
    return rate, (server_cpu_seconds(proc) - cpu) / count * 1e6


def server_command(kind: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--serve", kind]


def partial_run(command: list[str], **kwargs: Any) -> Callable[..., Awaitable[Any]]:
    async def run(*, task_status: trio.TaskStatus[trio.Process]) -> None:
        await trio.run_process(command, check=False, task_status=task_status, **kwargs)

    return run


async def start_server(nursery: trio.Nursery, kind: str) -> tuple[trio.Process, Endpoint]:
    proc: trio.Process = await nursery.start(
        partial_run(server_command(kind), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    )
    assert proc.stdout is not None
    endpoint: Endpoint
    if kind == "stdio":
        endpoint = StdioEndpoint(proc)
    else:
        url = (await LineReader(proc.stdout).receive_line() or b"").decode()
        host, _, port = url.removeprefix("ws://").rpartition(":")
        ws = WsEndpoint(await trio.open_tcp_stream(host, int(port)), host)
        await ws.handshake()
        endpoint = ws
    await endpoint.send(json.dumps(INIT).encode())
    assert b"userAgent" in await endpoint.receive()
    await round_trips(endpoint, 200)  # warm-up
    return proc, endpoint


COLUMNS = ("round trips/s", "CPU us/rt", "pipelined msgs/s", "CPU us/msg")


async def main(args: argparse.Namespace) -> None:
    results: dict[str, dict[str, list[float]]] = {}
    async with trio.open_nursery() as nursery:
        with trio.fail_after(900):
            servers = {kind: await start_server(nursery, kind) for kind in ("stdio", "ws")}
            # Runs alternate between the transports, so that a busy moment of the machine hits both.
            for _ in range(args.runs):
                for kind, (proc, endpoint) in servers.items():
                    row = results.setdefault(kind, {column: [] for column in COLUMNS})
                    count = args.round_trips
                    rate, cpu = await timed(proc, partial(round_trips, endpoint, count), count)
                    row["round trips/s"].append(rate)
                    row["CPU us/rt"].append(cpu)
                    rate, cpu = await timed(proc, partial(pipelined, endpoint, args.burst), args.burst)
                    row["pipelined msgs/s"].append(rate)
                    row["CPU us/msg"].append(cpu)
        for proc, _ in servers.values():
            assert proc.stdin is not None
            await proc.stdin.aclose()
    print(f"median of {args.runs} runs; {args.round_trips} round trips, bursts of {args.burst}")
    print(f"{'':<8}" + "".join(f"{column:>18}" for column in COLUMNS))
    for kind, row in results.items():
        print(f"{kind:<8}" + "".join(f"{statistics.median(row[column]):>18.0f}" for column in COLUMNS))
    medians = {kind: {c: statistics.median(v) for c, v in row.items()} for kind, row in results.items()}
    ratios = ", ".join(f"{c} {medians['ws'][c] / medians['stdio'][c]:.2f}" for c in COLUMNS)
    print(f"ws / stdio: {ratios}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", choices=("ws", "stdio"), help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=20000)
    arguments = parser.parse_args()
    if arguments.serve:
        trio.run(serve, arguments.serve)
    else:
        trio.run(main, arguments)
