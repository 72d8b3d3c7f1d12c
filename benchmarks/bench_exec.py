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
Server launching, the JSON-RPC client and the hermetic environment are bench_core's.
"""

from __future__ import annotations

import argparse
import base64
import json
import shlex
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_core import BenchError, Env, Server, fmt, launch, parse_command, short_label

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
    ("seconds", "turn/start -> turn/completed", "s", 3),
    ("mib_per_s", "v2 delta bytes per second", "MiB/s", 1),
    ("deltas", "v2 outputDelta notifications", "", 0),
    ("delta_mib", "v2 delta bytes received", "MiB", 2),
    ("legacy_deltas", "legacy exec_command_output_delta", "", 0),
    ("legacy_mib", "legacy chunk bytes received", "MiB", 2),
    ("aggregated_kib", "item/completed aggregatedOutput", "KiB", 0),
]


def report(labels: list[str], samples: dict[str, list[list[float]]]) -> list[dict[str, Any]]:
    compare = len(labels) >= 2
    head = f"{'metric':<36}{'unit':>7}" + "".join(f"{lab[:14]:>15}" for lab in labels)
    if compare:
        head += f"{'ratio':>9}"
    print()
    print(head)
    print("-" * len(head))
    rows = []
    for key, label, unit, digits in METRICS:
        medians = [statistics.median(s) if s else None for s in samples.get(key, [])]
        line = f"{label:<36}{unit:>7}" + "".join(f"{fmt(m, digits):>15}" for m in medians)
        row: dict[str, Any] = {"key": key, "label": label, "unit": unit, "samples": samples.get(key)}
        row["medians"] = medians
        if compare:
            first, last = medians[0], medians[-1]
            ratio = first / last if first is not None and last else None
            line += f"{fmt(ratio, 2):>9}"
            row["ratio"] = ratio
        print(line)
        rows.append(row)
    return rows


async def bench(args: argparse.Namespace) -> None:
    commands = [parse_command(c) for c in args.server or ["python -m codex_trio app-server"]]
    labels = [short_label(c) for c in commands]
    if len(set(labels)) != len(labels):
        labels = [f"{i + 1}:{lab}" for i, lab in enumerate(labels)]
    size = int(args.mib * 2**20)
    workdir = Path(tempfile.mkdtemp(prefix="bench-exec-", dir=args.workdir))
    samples: dict[str, list[list[float]]] = {}
    try:
        for label, command in zip(labels, commands, strict=True):
            print(f"{label}: {shlex.join(command)}")
        async with open_mock_responses(default=responder(size)) as mock:
            env = Env(mock.base_url, workdir, workdir / "pycache")
            for label, command in zip(labels, commands, strict=True):
                # Unmeasured: fills the OS page cache and the bytecode cache.
                async with launch(command, label, env) as (server, _):
                    await server.initialize()
            print(f"{args.mib:g} MiB through shell: {args.runs} run(s) per server, interleaved", flush=True)
            for run in range(args.runs):
                order = list(range(len(commands)))
                if run % 2:
                    order.reverse()
                for which in order:
                    mock.requests.clear()
                    result = await run_once(commands[which], labels[which], env, size)
                    for key, value in result.items():
                        samples.setdefault(key, [[] for _ in commands])[which].append(value)
                    shown = ", ".join(f"{k} {v:,.3f}" for k, v in result.items())
                    print(f"  run {run + 1}/{args.runs} {labels[which]}: {shown}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = report(labels, samples)
    if args.json:
        payload = {
            "servers": [
                {"label": lab, "command": shlex.join(c)} for lab, c in zip(labels, commands, strict=True)
            ],
            "mib": args.mib,
            "metrics": rows,
        }
        await trio.Path(args.json).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


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
