"""``command/exec`` end to end: codex-trio as a stdio subprocess, every message checked against the
protocol schema. Results and error texts are the reference's (Codex CLI 0.94.0, run with the same
requests); where the reference cannot run a sandboxed command on Linux ("codex-linux-sandbox was
required but not provided"), we run it under bubblewrap and report denials in the reference's words.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from e2e_util import Agent, write_config
from schema_check import ProtocolValidator

from codex_trio.testing.harness import open_server

FULL_ACCESS = {"type": "dangerFullAccess"}
DEAD_BASE_URL = "http://127.0.0.1:9/v1"  # command/exec never reaches the model


@asynccontextmanager
async def server(tmp_path: Path, config: str = "") -> AsyncIterator[tuple[Agent, Path]]:
    """The server (config.toml plus ``config`` lines), initialized; yields it and its cwd."""
    codex_home = tmp_path / "codex_home"
    write_config(codex_home, DEAD_BASE_URL)
    path = codex_home / "config.toml"
    # Top-level keys go before the provider's table.
    path.write_text(config + path.read_text(encoding="utf-8"), encoding="utf-8")
    async with open_server(
        codex_home=codex_home, base_url=DEAD_BASE_URL, validator=ProtocolValidator(), env={"TZ": "UTC"}
    ) as srv:
        await srv.initialize(name="harness")
        work = srv.root / "work"
        yield Agent(srv, work), work


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def exec_ok(agent: Agent, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = await agent.result("command/exec", params)
    return result


async def test_runs_the_command_and_returns_its_streams(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, _):
        assert await exec_ok(agent, command=["echo", "hi"], sandboxPolicy=FULL_ACCESS) == {
            "exitCode": 0,
            "stdout": "hi\n",
            "stderr": "",
        }
        mixed = await exec_ok(
            agent, command=["bash", "-c", "echo out; echo err >&2; exit 3"], sandboxPolicy=FULL_ACCESS
        )
        assert mixed == {"exitCode": 3, "stdout": "out\n", "stderr": "err\n"}


async def test_empty_command_is_refused(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, _):
        assert await agent.error("command/exec", {"command": []}) == {
            "code": -32600,
            "message": "command must not be empty",
        }


async def test_cwd_defaults_to_the_servers_and_relative_ones_resolve_there(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, work):
        (work / "sub").mkdir()
        here = await exec_ok(agent, command=["pwd"], sandboxPolicy=FULL_ACCESS)
        assert Path(here["stdout"].strip()).resolve() == work.resolve()
        sub = await exec_ok(agent, command=["pwd"], cwd="sub", sandboxPolicy=FULL_ACCESS)
        assert Path(sub["stdout"].strip()).resolve() == (work / "sub").resolve()


async def test_timeout_kills_the_command_and_fails_the_request(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, work):
        started = trio.current_time()
        error = await agent.error(
            "command/exec",
            {
                "command": ["bash", "-c", "echo $$ > pid; sleep 5"],
                "timeoutMs": 300,
                "sandboxPolicy": FULL_ACCESS,
            },
        )
        assert error == {"code": -32603, "message": "exec failed: sandbox error: command timed out"}
        assert trio.current_time() - started < 3
        pid = int((work / "pid").read_text())
        with trio.move_on_after(5):
            while _alive(pid):
                await trio.sleep(0.01)
        assert not _alive(pid)


async def test_run_failures_in_the_references_words(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, _):
        missing = await agent.error(
            "command/exec", {"command": ["no_such_program_q"], "sandboxPolicy": FULL_ACCESS}
        )
        assert missing == {"code": -32603, "message": "exec failed: No such file or directory (os error 2)"}
        killed = await agent.error(
            "command/exec", {"command": ["bash", "-c", "kill -9 $$"], "sandboxPolicy": FULL_ACCESS}
        )
        assert killed == {
            "code": -32603,
            "message": "exec failed: sandbox error: command was killed by a signal",
        }


async def test_default_sandbox_is_the_servers_read_only(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, work):
        error = await agent.error("command/exec", {"command": ["touch", "x"]})
        assert error == {
            "code": -32603,
            "message": "exec failed: sandbox error: sandbox denied exec error, exit code: 1, stdout: , "
            "stderr: touch: cannot touch 'x': Read-only file system\n",
        }
        assert not (work / "x").exists()
        marked = await exec_ok(agent, command=["bash", "-c", "echo $CODEX_SANDBOX_NETWORK_DISABLED"])
        assert marked == {"exitCode": 0, "stdout": "1\n", "stderr": ""}


async def test_configured_full_access_applies_when_no_policy_is_given(tmp_path: Path) -> None:
    async with server(tmp_path, 'sandbox_mode = "danger-full-access"\n') as (agent, work):
        assert (await exec_ok(agent, command=["touch", "x"]))["exitCode"] == 0
        assert (work / "x").exists()
        unmarked = await exec_ok(agent, command=["bash", "-c", 'echo "[$CODEX_SANDBOX_NETWORK_DISABLED]"'])
        assert unmarked["stdout"] == "[]\n"


async def test_workspace_write_policy_from_the_request(tmp_path: Path) -> None:
    policy = {"type": "workspaceWrite", "excludeSlashTmp": True, "excludeTmpdirEnvVar": True}
    async with server(tmp_path) as (agent, work):
        assert (await exec_ok(agent, command=["touch", "inside"], sandboxPolicy=policy))["exitCode"] == 0
        assert (work / "inside").exists()
        error = await agent.error(
            "command/exec", {"command": ["touch", "../outside"], "sandboxPolicy": policy}
        )
        assert error["code"] == -32603
        assert error["message"].startswith(
            "exec failed: sandbox error: sandbox denied exec error, exit code: 1"
        )
        assert not (work.parent / "outside").exists()


async def test_each_stream_is_capped_at_one_mebibyte(tmp_path: Path) -> None:
    script = "head -c 2000000 /dev/zero | tr '\\0' a; head -c 3000 /dev/zero | tr '\\0' b >&2"
    async with server(tmp_path) as (agent, _):
        result = await exec_ok(agent, command=["bash", "-c", script], sandboxPolicy=FULL_ACCESS)
        assert result["exitCode"] == 0
        assert result["stdout"] == "a" * 1024 * 1024
        assert result["stderr"] == "b" * 3000
        assert len(json.dumps(result)) < 1024 * 1024 + 4000
