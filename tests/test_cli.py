"""The entry points as a user runs them: `codex-trio app-server` and `python -m codex_trio app-server`.

Help that explains every flag, exit statuses, and logs: on stderr only (stdout carries nothing but
protocol messages, each validated against the schema), at the level CODEX_TRIO_LOG or RUST_LOG asks
for, as JSON lines with LOG_FORMAT=json, never echoing what the client sent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import trio
from schema_check import ProtocolValidator

from codex_trio import __version__
from codex_trio.cli import build_parser
from codex_trio.testing.harness import StdioServer, hermetic_env, open_server, server_command


def console_script() -> str:
    """The installed `codex-trio` command of this interpreter's environment."""
    beside = Path(sys.executable).parent / "codex-trio"
    found = str(beside) if beside.exists() else shutil.which("codex-trio")
    assert found, "the codex-trio console script is not installed (pip install -e .)"
    return found


ENTRY_POINTS = {
    "console-script": lambda: [console_script()],
    "python-m": lambda: [sys.executable, "-m", "codex_trio"],
}


async def run(argv: list[str], tmp_path: Path, **env: str) -> tuple[int, str, str]:
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "codex_home").mkdir(exist_ok=True)
    full_env = hermetic_env(home=tmp_path / "home", codex_home=tmp_path / "codex_home", overrides=env)
    with trio.fail_after(20):
        done = await trio.run_process(
            argv, stdin=b"", capture_stdout=True, capture_stderr=True, check=False, env=full_env
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def app_server_parser() -> argparse.ArgumentParser:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices["app-server"]
    raise AssertionError("no app-server subcommand")


# ---- help and exit statuses -----------------------------------------------------------------


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
async def test_app_server_help_explains_every_flag(entry: str, tmp_path: Path) -> None:
    code, out, err = await run([*ENTRY_POINTS[entry](), "app-server", "--help"], tmp_path)
    assert (code, err) == (0, "")
    flags = [a for a in app_server_parser()._actions if a.option_strings]
    assert {s for a in flags for s in a.option_strings} >= {"--help", "--listen", "--config", "-c"}
    for action in flags:
        assert action.help and action.help != argparse.SUPPRESS, f"{action.option_strings} has no help"
        for option in action.option_strings:
            assert option in out, f"{option} missing from --help"
        # The explanation itself is printed, not only the flag's name.
        assert " ".join(action.help.split()[:3]) in " ".join(out.split())
    # How it ends and what the environment changes are part of the contract.
    for word in ("stdin", "SIGINT", "SIGTERM", "parent", "CODEX_HOME", "CODEX_TRIO_LOG", "RUST_LOG",
                 "LOG_FORMAT=json", "stderr"):
        assert word in out, f"--help does not mention {word}"


async def test_both_entry_points_print_the_same_help(tmp_path: Path) -> None:
    outputs = {
        entry: await run([*argv(), "app-server", "--help"], tmp_path) for entry, argv in ENTRY_POINTS.items()
    }
    assert outputs["console-script"] == outputs["python-m"]
    top = await run([*ENTRY_POINTS["python-m"](), "--help"], tmp_path)
    assert top[0] == 0 and "app-server" in top[1]


@pytest.mark.parametrize(
    ("argv", "code", "stdout", "stderr"),
    [
        (["--version"], 0, f"codex-trio {__version__}\n", ""),
        ([], 2, "", "the following arguments are required: COMMAND"),
        (["no-such-command"], 2, "", "invalid choice: 'no-such-command'"),
        (["app-server", "--no-such-flag"], 2, "", "unrecognized arguments: --no-such-flag"),
        (["app-server", "--listen", "ftp://127.0.0.1:1"], 2, "", "unsupported --listen URL 'ftp://127.0.0.1:1'"),
        # End of input at once: a normal, successful run.
        (["app-server"], 0, "", ""),
    ],
    ids=["version", "no-command", "unknown-command", "unknown-flag", "bad-listen-url", "end-of-input"],
)
async def test_exit_statuses(argv: list[str], code: int, stdout: str, stderr: str, tmp_path: Path) -> None:
    got_code, got_out, got_err = await run([*server_command()[:3], *argv], tmp_path)
    assert got_code == code, got_err
    assert got_out == stdout  # stdout is the protocol channel: errors never go there
    assert stderr in got_err
    if not stderr:
        assert got_err == ""
    assert "Traceback" not in got_err


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
async def test_both_entry_points_serve_the_same_session(entry: str) -> None:
    command = [*ENTRY_POINTS[entry](), "app-server"]
    async with open_server(command=command, validator=ProtocolValidator()) as server:
        init = await server.initialize("same_client", "1.2.3")
        assert init["userAgent"].startswith("same_client/")
        assert await server.call("getUserAgent", id="ua") == {"id": "ua", "result": init}
        reply = await server.call("no/such/method", {})
        assert reply["error"]["code"] == -32600
        assert reply["error"]["message"].startswith("Invalid request: unknown variant `no/such/method`")
    # (open_server also checked: status 0 on end of input, no traceback.)


# Heavy modules a stdio server must not import before it answers initialize: the websocket stack is
# for --listen ws:// only, the HTTP client and auth for the first model or account request, the thread
# core, exec, the rollout format, the thread store and the projections for the first thread. Each
# costs start-up time (the issue's target is 150 ms).
NOT_AT_START_UP = (
    "httpx", "h11", "trio_websocket", "wsproto", "jwt", "tomlkit", "yaml",
    "codex_trio.ws_server", "codex_trio.ws_auth",
    "codex_trio.core.auth", "codex_trio.core.login", "codex_trio.core.model_client",
    "codex_trio.core.thread", "codex_trio.core.exec", "codex_trio.core.sandbox", "codex_trio.core.tools",
    "codex_trio.core.rollout", "codex_trio.core.thread_store", "codex_trio.processors.projection",
    "codex_trio.core.features", "codex_trio.core.instructions", "codex_trio.core.review",
)


def test_starting_the_cli_leaves_the_heavy_modules_unloaded() -> None:
    probe = f"import sys, codex_trio.cli\nprint(' '.join(m for m in {NOT_AT_START_UP!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == []
    assert result.stderr == ""


# ---- logs ----------------------------------------------------------------------------------

SECRET = "sk-proj-DoNotLogThisSecret1234567890"


def session(**env: str) -> AbstractAsyncContextManager[StdioServer]:
    return open_server(validator=ProtocolValidator(), env=env)


async def misbehave(server: StdioServer) -> None:
    """A session that gives the server things to log at every level, then ends with end of input."""
    await server.initialize()
    # Malformed JSON carrying a credential: worth a warning, never worth echoing.
    await server.send_raw(b'{"api_key": "' + SECRET.encode() + b'", oops\n')
    await server.notify("no/such/notification", {"token": SECRET})
    assert "userAgent" in await server.call_result("getUserAgent")


def json_lines(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        entry = json.loads(line)  # every line, not just most of them
        assert isinstance(entry, dict)
        entries.append(entry)
    return entries


async def test_logs_go_to_stderr_and_default_to_warnings() -> None:
    async with session() as server:
        await misbehave(server)
    stderr = server.stderr_text()
    assert "WARNING" in stderr and "ignoring input" in stderr
    assert " INFO " not in stderr and " DEBUG " not in stderr
    assert SECRET not in stderr and "DoNotLog" not in stderr


async def test_log_format_json_writes_one_json_object_per_line() -> None:
    async with session(LOG_FORMAT="json", CODEX_TRIO_LOG="debug") as server:
        await misbehave(server)
        server.send_signal(signal.SIGTERM)
        assert await server.wait_exit(1.0) == 0
    stderr = server.stderr_text()
    entries = json_lines(stderr)
    for entry in entries:
        assert {"timestamp", "level", "target", "message"} <= set(entry)
        assert entry["target"].startswith("codex_trio")
    levels = {e["level"] for e in entries}
    assert {"WARNING", "INFO"} <= levels
    assert any("received SIGTERM" in e["message"] for e in entries)
    assert SECRET not in stderr


@pytest.mark.parametrize(
    ("env", "shown", "hidden"),
    [
        ({}, {"WARNING"}, {"INFO", "DEBUG"}),
        ({"CODEX_TRIO_LOG": "error"}, set(), {"WARNING", "INFO", "DEBUG"}),
        ({"CODEX_TRIO_LOG": "debug"}, {"WARNING", "DEBUG"}, set()),
        ({"RUST_LOG": "debug"}, {"WARNING", "DEBUG"}, set()),
        ({"RUST_LOG": "codex_app_server=debug,warn"}, {"WARNING", "DEBUG"}, set()),
        # Another program's target does not turn on ours.
        ({"RUST_LOG": "hyper=debug"}, {"WARNING"}, {"DEBUG"}),
        # CODEX_TRIO_LOG wins over RUST_LOG.
        ({"CODEX_TRIO_LOG": "warn", "RUST_LOG": "debug"}, {"WARNING"}, {"DEBUG"}),
        ({"CODEX_TRIO_LOG": "off"}, set(), {"ERROR", "WARNING", "INFO", "DEBUG"}),
    ],
    ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
async def test_log_level_comes_from_codex_trio_log_or_rust_log(
    env: dict[str, str], shown: set[str], hidden: set[str]
) -> None:
    async with session(LOG_FORMAT="json", **env) as server:
        await misbehave(server)
    stderr = server.stderr_text()
    levels = {e["level"] for e in json_lines(stderr)}
    assert shown <= levels, stderr
    assert not (hidden & levels), stderr
    if not shown:
        assert stderr == ""
