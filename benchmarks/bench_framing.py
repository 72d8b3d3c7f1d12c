"""Framing throughput: small requests per second answered by an app-server through a stdio pipe.

Each run starts a fresh server, initializes it, then pipelines N small requests, keeping at most
WINDOW of them unanswered, and times from the first write to the last reply. Every reply must be the
expected one, in order; a run that loses or refuses a request fails the benchmark.

The request is ``getUserAgent`` by default. ``--method initialize`` sends a repeated ``initialize``
instead, which both servers refuse at once ("Already initialized"): use it to compare framing with
the reference, whose getUserAgent runs ``lsb_release -a``, ``getconf`` and ``uname`` on every call
(about 20 ms each, serialized), so that its getUserAgent rate measures that, not its framing.

    python benchmarks/bench_framing.py                          # codex-trio, 5 runs of 20,000
    python benchmarks/bench_framing.py \\
        --server-cmd "python -m codex_trio app-server" \\
        --server-cmd "/path/to/codex app-server"                # side by side, runs interleaved

With two servers the runs alternate (A B A B ...) so that both see the same machine load, and the
ratio of the medians is printed. A leading ``python`` in a command means this interpreter.

Every server runs in a hermetic environment (fresh HOME and CODEX_HOME, a config.toml whose provider
and OPENAI_BASE_URL point at a dead local port, every proxy a dead local port): this is safe for the
reference ``codex`` binary too, which reaches for the network on some requests (not on these).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codex_trio.testing.harness import open_server, write_provider_config


@dataclass
class Run:
    rate: float
    elapsed: float
    peak_rss_kib: int | None
    # CPU seconds used during the measured flood, per request, in microseconds.
    server_cpu_us: float | None
    client_cpu_us: float


def parse_command(text: str) -> list[str]:
    argv = shlex.split(text)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


CLIENT_INFO = {"clientInfo": {"name": "bench_framing", "version": "1.0"}}


def expected_reply(method: str, agent: str) -> dict[str, Any]:
    if method == "initialize":
        return {"error": {"code": -32600, "message": "Already initialized"}}
    return {"result": {"userAgent": agent}}


async def one_run(
    command: list[str], method: str, n: int, window: int, batch: int, warmup: int
) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-framing-") as tmp:
        codex_home = Path(tmp) / "codex_home"
        codex_home.mkdir()
        write_provider_config(codex_home)
        async with open_server(command=command, codex_home=codex_home) as server:
            agent = (await server.initialize("bench_framing", "1.0"))["userAgent"]
            params = CLIENT_INFO if method == "initialize" else None
            if warmup:
                await server.flood(warmup, method, params, window=window, batch=batch, timeout=600)
            server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
            flood = await server.flood(n, method, params, window=window, batch=batch, timeout=3600)
            server_cpu_after, client_cpu_after = server.cpu_seconds(), time.process_time()
            peak = server.peak_rss_kib()
        if flood.missing or not flood.in_order:
            raise SystemExit(
                f"{shlex.join(command)}: {flood.missing} missing, in order: {flood.in_order}"
            )
        expected = expected_reply(method, agent)
        wrong = [r for r in flood.replies if {k: v for k, v in r.items() if k != "id"} != expected]
        if wrong:
            raise SystemExit(f"{shlex.join(command)}: {len(wrong)} unexpected replies, e.g. {wrong[0]}")
        per_request = 1e6 / n
        server_us = (
            (server_cpu_after - server_cpu) * per_request
            if server_cpu is not None and server_cpu_after is not None
            else None
        )
        return Run(flood.rate, flood.elapsed, peak, server_us, (client_cpu_after - client_cpu) * per_request)


async def bench(args: argparse.Namespace) -> None:
    commands = [parse_command(c) for c in args.server_cmd or ["python -m codex_trio app-server"]]
    labels = [shlex.join(c) for c in commands]
    runs: list[list[Run]] = [[] for _ in commands]
    print(
        f"framing: {args.requests:,} {args.method} per run, window {args.window}, "
        f"{args.runs} run(s) per server, {args.warmup:,} warm-up requests"
    )
    for index in range(args.runs):
        for which, command in enumerate(commands):
            run = await one_run(command, args.method, args.requests, args.window, args.batch, args.warmup)
            runs[which].append(run)
            peak = f"{run.peak_rss_kib / 1024:.0f} MiB" if run.peak_rss_kib else "?"
            server_cpu = f"{run.server_cpu_us:.1f}" if run.server_cpu_us is not None else "?"
            print(
                f"  run {index + 1}/{args.runs}  {labels[which]}: {run.rate:,.0f} req/s "
                f"({run.elapsed:.3f} s; CPU per request: server {server_cpu} us, "
                f"client {run.client_cpu_us:.1f} us; peak RSS {peak})",
                flush=True,
            )
    medians = [statistics.median(r.rate for r in server_runs) for server_runs in runs]
    print("median requests/second (and median server CPU per request):")
    for label, median, server_runs in zip(labels, medians, runs, strict=True):
        cpu = [r.server_cpu_us for r in server_runs if r.server_cpu_us is not None]
        cpu_text = f"{statistics.median(cpu):6.1f} us" if cpu else "     ?"
        print(f"  {median:>12,.0f}  ({cpu_text})  {label}")
    print(
        "(a client CPU per request close to the wall time per request means the client, not the "
        "server, set the pace)"
    )
    if len(medians) == 2:
        print(f"ratio (first / second): {medians[0] / medians[1]:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server-cmd",
        action="append",
        metavar="CMD",
        help='server command line (default "python -m codex_trio app-server"); give it twice to compare',
    )
    parser.add_argument(
        "--method",
        choices=("getUserAgent", "initialize"),
        default="getUserAgent",
        help="the request: getUserAgent (default) or a repeated, refused initialize",
    )
    parser.add_argument("-n", "--requests", type=int, default=20_000, help="requests per run (20,000)")
    parser.add_argument("--window", type=int, default=256, help="most requests unanswered at once (256)")
    parser.add_argument("--batch", type=int, default=64, help="requests per write (64)")
    parser.add_argument("--runs", type=int, default=5, help="runs per server; the median is reported (5)")
    parser.add_argument("--warmup", type=int, default=1_000, help="unmeasured requests first (1,000)")
    args = parser.parse_args(argv)
    if args.server_cmd and len(args.server_cmd) > 2:
        parser.error("give --server-cmd at most twice")
    trio.run(bench, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
