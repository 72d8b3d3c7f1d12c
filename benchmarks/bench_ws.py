"""Messages per second and turn overhead over the websocket transport, beside stdio.

The server is the real command line (``python -m codex_trio app-server``, and the same with ``--listen
ws://127.0.0.1:0``), each in a hermetic environment whose model provider is the mock Responses API
running in this script. After ``initialize``, three measures per transport:

- round trips: one ``getUserAgent`` at a time, waiting for each answer (latency-bound);
- pipelined: a burst of ``getUserAgent`` requests sent while the answers are read (throughput-bound);
- turns: on a fresh thread, ``--turns`` turns in a row, each from the ``turn/start`` write to its
  ``turn/completed``, the mock streaming a reply of ``--deltas`` deltas at once (every delta is three
  notifications: v2 and the two legacy ones). A run's value is the median of its turns.

Each is reported as a rate or a time and as the server's CPU time per unit (from /proc, steadier than
wall time on a shared machine): the median of ``--runs`` runs that alternate between the transports,
then the ratio ws / stdio. Both clients are lean, so that the server is what is measured: the stdio one
splits lines, the websocket one drives wsproto (the protocol engine under trio-websocket) directly over
a TCP stream; neither parses more JSON than it needs to find the end of a turn.

    python benchmarks/bench_ws.py [--runs 5] [--round-trips 2000] [--burst 20000] [--turns 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from wsproto import ConnectionType, WSConnection
from wsproto import events as wsevents

from codex_trio.testing import mock_responses as mr
from codex_trio.testing.harness import hermetic_env, server_command, write_provider_config
from codex_trio.transport.framing import LineReader

INIT = {
    "id": 0,
    "method": "initialize",
    "params": {"clientInfo": {"name": "bench", "title": None, "version": "1.0"}, "capabilities": None},
}
LISTENING = b"codex-trio: listening on "


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
    """Requests per second, one at a time."""
    request = json.dumps({"id": 1, "method": "getUserAgent"}).encode()
    started = time.perf_counter()
    for _ in range(count):
        await endpoint.send(request)
        await endpoint.receive()
    return count / (time.perf_counter() - started)


async def pipelined(endpoint: Endpoint, count: int) -> float:
    """Replies per second to a burst of requests written while the replies are read."""
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


_ids = iter(range(1_000_000, 2_000_000))


async def call(endpoint: Endpoint, method: str, params: object) -> dict[str, object]:
    """A request and its result; messages before the reply are skipped."""
    request_id = next(_ids)
    await endpoint.send(json.dumps({"id": request_id, "method": method, "params": params}).encode())
    marker = f'"id":{request_id},'.encode()
    while True:
        message = await endpoint.receive()
        if marker in message and b'"method"' not in message:
            reply = json.loads(message)
            assert "result" in reply, reply
            result: dict[str, object] = reply["result"]
            return result


async def turns(endpoint: Endpoint, count: int, work: str) -> list[float]:
    """Seconds from each turn/start write to its turn/completed, on a fresh thread."""
    thread = await call(endpoint, "thread/start", {"cwd": work, "approvalPolicy": "never", "ephemeral": True})
    thread_id = thread["thread"]["id"]  # type: ignore[index]
    params = {"threadId": thread_id, "input": [{"type": "text", "text": "go", "text_elements": []}]}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await endpoint.send(json.dumps({"id": next(_ids), "method": "turn/start", "params": params}).encode())
        while b'"method":"turn/completed"' not in await endpoint.receive():
            pass
        times.append(time.perf_counter() - started)
    return times


def server_cpu_seconds(proc: trio.Process) -> float:
    """User + system CPU time of the server process so far (Linux)."""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- servers ------------------------------------------------------------------------------------


class Server:
    def __init__(self, kind: str, proc: trio.Process, endpoint: Endpoint) -> None:
        self.kind = kind
        self.proc = proc
        self.endpoint = endpoint


async def listening_url(stderr: trio.abc.ReceiveStream) -> str:
    reader = LineReader(stderr)
    while True:
        line = await reader.receive_line()
        if line is None:
            raise RuntimeError("the websocket server exited before listening")
        if line.startswith(LISTENING):
            return line.removeprefix(LISTENING).decode().strip()


async def drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some():
        pass


async def start_server(
    nursery: trio.Nursery, kind: str, env: dict[str, str], work: str
) -> Server:
    args = ["--listen", "ws://127.0.0.1:0"] if kind == "ws" else []
    proc = await trio.lowlevel.open_process(
        server_command(args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE if kind == "stdio" else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=work,
    )
    assert proc.stderr is not None
    endpoint: Endpoint
    if kind == "stdio":
        endpoint = StdioEndpoint(proc)
    else:
        url = await listening_url(proc.stderr)
        host, _, port = url.removeprefix("ws://").rpartition(":")
        ws = WsEndpoint(await trio.open_tcp_stream(host, int(port)), host)
        await ws.handshake()
        endpoint = ws
    # Whatever the server logs must not fill the pipe and stall it.
    nursery.start_soon(drain, proc.stderr)
    await endpoint.send(json.dumps(INIT).encode())
    assert b"userAgent" in await endpoint.receive()
    await round_trips(endpoint, 200)  # warm-up
    await turns(endpoint, 2, work)
    return Server(kind, proc, endpoint)


COLUMNS = ("round trips/s", "CPU us/rt", "pipelined msgs/s", "CPU us/msg", "turn ms", "CPU ms/turn")


async def measure(server: Server, args: argparse.Namespace, work: str) -> dict[str, float]:
    row: dict[str, float] = {}
    cpu = server_cpu_seconds(server.proc)
    row["round trips/s"] = await round_trips(server.endpoint, args.round_trips)
    row["CPU us/rt"] = (server_cpu_seconds(server.proc) - cpu) / args.round_trips * 1e6
    cpu = server_cpu_seconds(server.proc)
    row["pipelined msgs/s"] = await pipelined(server.endpoint, args.burst)
    row["CPU us/msg"] = (server_cpu_seconds(server.proc) - cpu) / args.burst * 1e6
    cpu = server_cpu_seconds(server.proc)
    row["turn ms"] = statistics.median(await turns(server.endpoint, args.turns, work)) * 1e3
    row["CPU ms/turn"] = (server_cpu_seconds(server.proc) - cpu) / args.turns * 1e3
    return row


async def main(args: argparse.Namespace) -> None:
    reply = " ".join(f"w{i}" for i in range(args.deltas))
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        root = Path(tmp)
        work = str(root / "work")
        (root / "work").mkdir()
        async with (
            mr.open_mock_responses(default=mr.text(reply, chunks=args.deltas)) as mock,
            trio.open_nursery() as nursery,
        ):
            servers = []
            for kind in ("stdio", "ws"):
                home = root / kind
                (home / "codex_home").mkdir(parents=True)
                write_provider_config(home / "codex_home", mock.base_url)
                env = hermetic_env(
                    home=home, codex_home=home / "codex_home", base_url=mock.base_url, overrides={"TZ": "UTC"}
                )
                servers.append(await start_server(nursery, kind, env, work))
            with trio.fail_after(1800):
                # Runs alternate (A B, B A, ...), so that a busy moment of the machine hits both.
                for run in range(args.runs):
                    for server in servers if run % 2 == 0 else reversed(servers):
                        row = results.setdefault(server.kind, {column: [] for column in COLUMNS})
                        for column, value in (await measure(server, args, work)).items():
                            row[column].append(value)
            for server in servers:
                assert server.proc.stdin is not None
                await server.proc.stdin.aclose()
                server.proc.terminate()
                await server.proc.wait()
            nursery.cancel_scope.cancel()
    print(
        f"median of {args.runs} runs; {args.round_trips} round trips, bursts of {args.burst}, "
        f"{args.turns} turns of {args.deltas} deltas"
    )
    print(f"{'':<14}" + "".join(f"{column:>18}" for column in COLUMNS))
    medians = {kind: {c: statistics.median(v) for c, v in row.items()} for kind, row in results.items()}
    for kind, row in medians.items():
        print(f"{kind:<14}" + "".join(f"{row[column]:>18.1f}" for column in COLUMNS))
    ratios = "".join(f"{medians['ws'][c] / medians['stdio'][c]:>18.2f}" for c in COLUMNS)
    print(f"{'ws / stdio':<14}" + ratios)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=20000)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--deltas", type=int, default=100)
    trio.run(main, parser.parse_args())
