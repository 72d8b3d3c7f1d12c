"""Command output streaming end to end: a ``shell`` tool call printing 50 MiB, from the mock model's
call through the server to the client's ``item/commandExecution/outputDelta`` notifications and
``turn/completed``, measured on one or more app-server commands side by side.

    python benchmarks/bench_exec.py \\
        --server "python -m codex_trio app-server" \\
        --server "/path/to/codex app-server" [--runs R] [--mib N] [--json FILE]

Each run starts a fresh server (approval "never", sandbox "danger-full-access", model "mock-model",
which is offered ``shell``) and runs one turn: the mock answers the first request with a ``shell``
call running ``head -c <N MiB> /dev/zero | tr '\\0' a`` (timeout 5 minutes) and the next one with a
short text. Timed from the ``turn/start`` write to ``turn/completed``. The client counts the v2
output deltas and their bytes, the legacy ``exec_command_output_delta`` chunks, and the size of the
``aggregatedOutput`` in the ``commandExecution`` item's ``item/completed``. Runs alternate between
servers (A B, then B A, ...); the table gives medians and, with two servers, the ratio first/last.
Server launching, the JSON-RPC client, the hermetic environment, the interleaved runs and the table are
bench_core's.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_core import (
    BenchError,
    Env,
    Metric,
    Server,
    interleaved,
    launch,
    parse_command,
    report,
    server_labels,
    warm_up,
    write_json,
)

from codex_trio.testing.mock_responses import (
    RecordedRequest,
    Script,
    function_call,
    open_mock_responses,
)
from codex_trio.testing.mock_responses import text as mock_text

CALL_ID = "call_bench_exec"
NEVER = {"approvalPolicy": "never", "sandbox": "danger-full-access"}


@dataclass
class Received:
    """What the client saw of the command."""

    deltas: int = 0
    delta_bytes: int = 0
    legacy_deltas: int = 0
    legacy_bytes: int = 0
    aggregated_bytes: int | None = None
    exit_code: int | None = None
    statuses: list[str] = field(default_factory=list)


def watch_exec(server: Server, received: Received) -> None:
    """Count the command's notifications as the server's reader dispatches them."""
    dispatch = server._dispatch

    def counting(msg: dict[str, Any], now: float) -> None:
        method = msg.get("method")
        params = msg.get("params") or {}
        if method == "item/commandExecution/outputDelta":
            received.deltas += 1
            received.delta_bytes += len(params["delta"].encode())
        elif method == "codex/event/exec_command_output_delta":
            received.legacy_deltas += 1
            received.legacy_bytes += len(base64.b64decode(params["msg"]["chunk"]))
        elif method == "item/completed" and params.get("item", {}).get("type") == "commandExecution":
            item = params["item"]
            received.statuses.append(item["status"])
            received.exit_code = item.get("exitCode")
            output = item.get("aggregatedOutput")
            received.aggregated_bytes = len(output.encode()) if output is not None else 0
        dispatch(msg, now)

    server._dispatch = counting  # type: ignore[method-assign]


def responder(size: int) -> Any:
    command = ["bash", "-c", f"head -c {size} /dev/zero | tr '\\0' a"]

    def respond(request: RecordedRequest) -> Script:
        if request.call_output(CALL_ID) is not None:
            return mock_text("Printed it.")
        return function_call("shell", {"command": command, "timeout_ms": 300_000}, call_id=CALL_ID)

    return respond


async def run_once(command: list[str], label: str, env: Env, size: int) -> dict[str, float]:
    received = Received()
    async with launch(command, label, env) as (server, _):
        watch_exec(server, received)
        await server.initialize()
        result = await server.call("thread/start", NEVER)
        thread_id = str(result["thread"]["id"])
        elapsed, watch = await server.turn(thread_id, "print a lot", timeout=600)
    if watch.status != "completed":
        raise BenchError(f"{label}: the turn ended {watch.status}: {watch.error}")
    if received.statuses != ["completed"] or received.exit_code != 0:
        raise BenchError(f"{label}: the command item ended {received.statuses}, exit {received.exit_code}")
    return {
        "seconds": elapsed,
        "mib_per_s": received.delta_bytes / elapsed / 2**20,
        "deltas": received.deltas,
        "delta_mib": received.delta_bytes / 2**20,
        "legacy_deltas": received.legacy_deltas,
        "legacy_mib": received.legacy_bytes / 2**20,
        "aggregated_kib": (received.aggregated_bytes or 0) / 1024,
    }


METRICS = [
    Metric("seconds", "turn/start -> turn/completed", "s", "exec", None, 3),
    Metric("mib_per_s", "v2 delta bytes per second", "MiB/s", "exec", None, 1),
    Metric("deltas", "v2 outputDelta notifications", "", "exec", None, 0),
    Metric("delta_mib", "v2 delta bytes received", "MiB", "exec", None, 2),
    Metric("legacy_deltas", "legacy exec_command_output_delta", "", "exec", None, 0),
    Metric("legacy_mib", "legacy chunk bytes received", "MiB", "exec", None, 2),
    Metric("aggregated_kib", "item/completed aggregatedOutput", "KiB", "exec", None, 0),
]


async def bench(args: argparse.Namespace) -> None:
    commands = [parse_command(c) for c in args.server or ["python -m codex_trio app-server"]]
    labels = server_labels(commands)
    size = int(args.mib * 2**20)
    workdir = Path(tempfile.mkdtemp(prefix="bench-exec-", dir=args.workdir))
    samples: dict[str, list[list[float]]] = {}
    try:
        async with open_mock_responses(default=responder(size)) as mock:
            env = Env(mock.base_url, workdir, workdir / "pycache")
            await warm_up(commands, labels, env)
            print(f"{args.mib:g} MiB through shell: {args.runs} run(s) per server, interleaved", flush=True)

            async def run_one(which: int) -> dict[str, float]:
                mock.requests.clear()
                return await run_once(commands[which], labels[which], env, size)

            await interleaved(labels, args.runs, run_one, samples)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = report(labels, samples, METRICS)
    if args.json:
        await write_json(args.json, labels, commands, rows, mib=args.mib)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--server",
        action="append",
        metavar="CMD",
        help='server command line (default "python -m codex_trio app-server"); repeat to compare',
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per server (3)")
    parser.add_argument("--mib", type=float, default=50, help="MiB the command prints (50)")
    parser.add_argument("--json", metavar="FILE", help="also write samples, medians and ratios as JSON")
    parser.add_argument("--workdir", default=None, help="where temporary homes go (default: the temp dir)")
    args = parser.parse_args(argv)
    trio.run(bench, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
