"""/etc/codex/requirements.toml end to end: codex-trio as a stdio subprocess inside a bubblewrap mount
namespace whose /etc/codex holds a test's requirements file (the real /etc is never written; there is
deliberately no environment variable to point the server elsewhere). Texts are the reference's (Codex
CLI 0.94.0), captured the same way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from e2e_util import Agent, write_config
from schema_check import ProtocolValidator

from codex_trio.testing.harness import open_server, server_command

DEAD_BASE_URL = "http://127.0.0.1:9/v1"  # nothing here reaches the model
ETC_CODEX = "/etc/codex"


def fake_etc_args(codex_dir: Path) -> list[str]:
    """bwrap arguments: the host's file system, but /etc a tmpfs showing the host's entries (read-only)
    plus ``codex_dir`` as /etc/codex."""
    args = ["--bind", "/", "/", "--tmpfs", "/etc"]
    for name in sorted(os.listdir("/etc")):
        entry = Path("/etc") / name
        if name == "codex":
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry), str(entry)]
        else:
            args += ["--ro-bind", str(entry), str(entry)]
    args += ["--ro-bind", str(codex_dir), ETC_CODEX, "--dev-bind", "/dev", "/dev", "--proc", "/proc"]
    return args


def _bwrap_problem() -> str | None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        probe = subprocess.run(
            [bwrap, "--bind", "/", "/", "--tmpfs", "/etc", "--", "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap cannot run here: {exc}"
    if probe.returncode != 0:
        return f"bwrap cannot make a mount namespace here: {probe.stderr.decode(errors='replace').strip()}"
    return None


BWRAP_PROBLEM = _bwrap_problem()
pytestmark = pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=str(BWRAP_PROBLEM))


@asynccontextmanager
async def server_under(tmp_path: Path, requirements: str) -> AsyncIterator[Agent]:
    codex_dir = tmp_path / "etc_codex"
    codex_dir.mkdir()
    (codex_dir / "requirements.toml").write_text(requirements, encoding="utf-8")
    codex_home = tmp_path / "codex_home"
    write_config(codex_home, DEAD_BASE_URL)
    command = ["bwrap", *fake_etc_args(codex_dir), "--", *server_command()]
    async with open_server(
        command=command,
        codex_home=codex_home,
        base_url=DEAD_BASE_URL,
        validator=ProtocolValidator(),
        env={"TZ": "UTC"},
    ) as srv:
        await srv.initialize(name="harness")
        yield Agent(srv, srv.root / "work")


async def test_the_system_requirements_file_constrains_threads(tmp_path: Path) -> None:
    requirements = (
        'allowed_approval_policies = ["never", "on-request"]\n'
        'allowed_sandbox_modes = ["read-only", "external-sandbox"]\n'
    )
    async with server_under(tmp_path, requirements) as agent:
        # external-sandbox has no name in the protocol: the reference leaves it out.
        assert await agent.result("configRequirements/read") == {
            "requirements": {
                "allowedApprovalPolicies": ["never", "on-request"],
                "allowedSandboxModes": ["read-only"],
                "enforceResidency": None,
            }
        }
        cwd = str(agent.work)
        assert await agent.error("thread/start", {"cwd": cwd, "approvalPolicy": "untrusted"}) == {
            "code": -32600,
            "message": "error deriving config: invalid value for `approval_policy`: `UnlessTrusted` is not "
            "in the allowed set [Never, OnRequest] (set by /etc/codex/requirements.toml)",
        }
        assert await agent.error("thread/start", {"cwd": cwd, "sandbox": "danger-full-access"}) == {
            "code": -32600,
            "message": "error deriving config: invalid value for `sandbox_mode`: `DangerFullAccess` is not "
            "in the allowed set [ReadOnly, ExternalSandbox] (set by /etc/codex/requirements.toml)",
        }
        started = await agent.result("thread/start", {"cwd": cwd, "approvalPolicy": "never"})
        assert (started["approvalPolicy"], started["sandbox"]) == ("never", {"type": "readOnly"})


async def test_a_malformed_requirements_file_fails_threads_and_config_reads(tmp_path: Path) -> None:
    problem = (
        "Error parsing requirements file /etc/codex/requirements.toml: TOML parse error at line 1, "
        "column 30\n"
        "  |\n"
        '1 | allowed_approval_policies = ["bogus"]\n'
        "  |                              ^^^^^^^\n"
        "unknown variant `bogus`, expected one of `untrusted`, `on-failure`, `on-request`, `never`\n"
    )
    async with server_under(tmp_path, 'allowed_approval_policies = ["bogus"]\n') as agent:
        # The server still starts; every thread fails.
        assert await agent.error("thread/start", {"cwd": str(agent.work), "approvalPolicy": "never"}) == {
            "code": -32600,
            "message": f"error deriving config: {problem}",
        }
        layers_error = {"code": -32603, "message": f"failed to read configuration layers: {problem}"}
        assert await agent.error("config/read", {}) == layers_error
        assert await agent.error("configRequirements/read") == layers_error
