"""The least a trio stdio server does before it answers ``initialize``: the floor of the start-up target.

    python benchmarks/bench_core.py --only startup --server "codex-trio app-server" \\
        --server "python $PWD/benchmarks/trio_floor.py" --server "codex app-server"

Imports trio (as codex-trio must), reads the first line, answers it with a fixed ``initialize`` result
and reads until end of input. What codex-trio adds on top of this program is start-up time that is its
own to cut; the rest belongs to the interpreter and trio's import.
"""

from __future__ import annotations

import json
import sys

import trio


async def main() -> None:
    stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
    stdout = trio.lowlevel.FdStream(sys.stdout.fileno())
    buffer = b""
    answered = False
    while data := await stdin.receive_some(65536):
        buffer += data
        while not answered and b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            request = json.loads(line)
            result = {"userAgent": "trio_floor/0.0.0", "platformFamily": "unix", "platformOs": "linux"}
            await stdout.send_all(json.dumps({"id": request["id"], "result": result}).encode() + b"\n")
            answered = True


if __name__ == "__main__":
    trio.run(main)
