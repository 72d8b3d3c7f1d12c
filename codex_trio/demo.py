"""``codex-trio demo``: one turn through the real server, printed for a person.

It starts ``codex-trio app-server`` as a stdio subprocess (as an editor would), drives initialize ->
thread/start -> turn/start through the protocol, and prints the turn as it streams. By default the
model is the bundled local mock, in a throwaway CODEX_HOME, so it needs no account and no network;
``--openai`` uses the real API with ``OPENAI_API_KEY`` (still in a throwaway CODEX_HOME).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import trio
from jsonrpcclient import Error, Ok, parse, request

from .testing.mock_responses import open_mock_responses

DEFAULT_PROMPT = "Say hello and tell me what you can do."


class DemoError(Exception):
    pass


class _Client:
    """The client side of the protocol over the server's stdin/stdout."""

    def __init__(self, proc: trio.Process) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._buf = bytearray()

    async def send(self, message: dict[str, Any]) -> None:
        await self._stdin.send_all(json.dumps(message).encode() + b"\n")

    async def receive(self) -> dict[str, Any]:
        while True:
            index = self._buf.find(b"\n")
            if index >= 0:
                line = bytes(self._buf[:index])
                del self._buf[: index + 1]
                if line.strip():
                    message: dict[str, Any] = json.loads(line)
                    return message
                continue
            chunk = await self._stdout.receive_some(65536)
            if not chunk:
                raise DemoError("the server closed its output")
            self._buf += chunk

    async def call(self, method: str, params: Any, on_message: Any = None) -> Any:
        req = request(method, params=params)
        await self.send(req)
        while True:
            message = await self.receive()
            if message.get("id") == req["id"] and "method" not in message:
                outcome = parse(message)
                if isinstance(outcome, Error):
                    raise DemoError(f"{method} failed: {outcome.message}")
                assert isinstance(outcome, Ok)
                return outcome.result
            if on_message is not None:
                await on_message(message)


def _write_demo_config(codex_home: Path, base_url: str, *, openai: bool = False) -> None:
    if openai:
        # A provider that takes its key from OPENAI_API_KEY: the app-server, like the reference's,
        # does not treat that variable as a login, and the demo must not write the user's auth.json.
        model, provider, extra = "gpt-5.2-codex", "openai-env", 'env_key = "OPENAI_API_KEY"\n'
    else:
        retries = "request_max_retries = 0\nstream_max_retries = 0\n"
        model, provider, extra = "mock-model", "demo-mock", retries
    (codex_home / "config.toml").write_text(
        "# Written by `codex-trio demo` into a throwaway CODEX_HOME.\n"
        f'model = "{model}"\n'
        f'model_provider = "{provider}"\n'
        'approval_policy = "never"\n'
        'sandbox_mode = "read-only"\n'
        "\n"
        f"[model_providers.{provider}]\n"
        f'name = "codex-trio demo ({provider})"\n'
        f'base_url = "{base_url}"\n'
        'wire_api = "responses"\n' + extra,
        encoding="utf-8",
    )


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.status: str | None = None
        self.error: str | None = None
        self._open_line = False

    def _line(self, text: str) -> None:
        if self._open_line:
            self.out.write("\n")
            self._open_line = False
        self.out.write(text + "\n")
        self.out.flush()

    async def on_message(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params") or {}
        if method == "item/agentMessage/delta":
            self.out.write(params["delta"])
            self.out.flush()
            self._open_line = True
        elif method == "item/started":
            kind = params["item"]["type"]
            if kind == "agentMessage":
                self._line("assistant: ")
                self._open_line = False
                self.out.write("  ")
            elif kind != "userMessage":
                self._line(f"[{kind} started]")
        elif method == "item/completed":
            item = params["item"]
            if item["type"] == "userMessage":
                texts = [c.get("text", "") for c in item["content"] if c.get("type") == "text"]
                self._line("you: " + " ".join(texts))
            elif item["type"] == "agentMessage":
                self._line("")
            else:
                self._line(f"[{item['type']} completed]")
        elif method == "error":
            self._line(f"error: {params['error']['message']}")
        elif method == "thread/tokenUsage/updated":
            total = params["tokenUsage"]["total"]
            self._line(f"[tokens: {total['inputTokens']} in, {total['outputTokens']} out]")
        elif method == "turn/completed":
            turn = params["turn"]
            self.status = turn["status"]
            if turn.get("error"):
                self.error = turn["error"]["message"]
            self._line(f"turn {turn['id']} {turn['status']}")


async def run_demo(
    prompt: str,
    *,
    use_openai: bool = False,
    env: Mapping[str, str] | None = None,
    out: TextIO = sys.stdout,
    timeout: float = 120.0,
) -> int:
    env = dict(os.environ if env is None else env)
    printer = _Printer(out)
    with tempfile.TemporaryDirectory(prefix="codex-trio-demo-") as tmp:
        workdir = Path(tmp) / "work"
        workdir.mkdir()
        async with open_mock_responses() as mock:
            codex_home = Path(tmp) / "codex-home"
            codex_home.mkdir()
            server_env = {**env, "CODEX_HOME": str(codex_home)}
            if use_openai:
                if not env.get("OPENAI_API_KEY"):
                    raise DemoError("--openai needs OPENAI_API_KEY in the environment")
                base_url = env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
                _write_demo_config(codex_home, base_url, openai=True)
            else:
                _write_demo_config(codex_home, mock.base_url)
                server_env.pop("OPENAI_API_KEY", None)
                printer._line(f"(offline demo: the model is the bundled mock at {mock.base_url})")
            command = [sys.executable, "-m", "codex_trio", "app-server"]
            async with trio.open_nursery() as nursery:
                proc: trio.Process = await nursery.start(
                    partial(
                        trio.run_process,
                        command,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        env=server_env,
                        cwd=workdir,
                        check=False,
                    )
                )
                client = _Client(proc)
                try:
                    with trio.fail_after(timeout):
                        await _drive(client, prompt, str(workdir), printer)
                except trio.TooSlowError:
                    raise DemoError(f"no turn/completed within {timeout:g}s") from None
                finally:
                    assert proc.stdin is not None
                    await proc.stdin.aclose()
    return 0 if printer.status == "completed" else 1


async def _drive(client: _Client, prompt: str, cwd: str, printer: _Printer) -> None:
    init = await client.call("initialize", {"clientInfo": {"name": "codex-trio-demo", "version": "1"}})
    printer._line(f"connected: {init['userAgent']}")
    started = await client.call("thread/start", {"cwd": cwd}, printer.on_message)
    printer._line(f"thread {started['thread']['id']} (model {started['model']})")
    await client.call(
        "turn/start",
        {"threadId": started["thread"]["id"], "input": [{"type": "text", "text": prompt}]},
        printer.on_message,
    )
    while printer.status is None:
        await printer.on_message(await client.receive())
