"""The bubblewrap sandbox, with real processes: writes outside the writable roots and network
connections are refused (and recognised as sandbox denials), writes inside work, and nothing a
sandboxed command starts survives its cancellation."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from codex_trio.core import exec as ex
from codex_trio.core.exec import ExecRequest, ExecResult, SandboxUnavailableError, run_exec
from codex_trio.core.sandbox import (
    NETWORK_DISABLED_ENV,
    SandboxSpec,
    network_env,
    network_seccomp_program,
    sandbox_available,
    sandbox_spec,
    wrap_argv,
)

ISOLATED = {"type": "workspaceWrite", "excludeSlashTmp": True, "excludeTmpdirEnvVar": True}


async def run_sandboxed(policy: dict[str, Any], cwd: Path, script: str, **kw: Any) -> ExecResult:
    spec = sandbox_spec(policy, cwd, os.environ)
    assert spec is not None
    return await run_exec(ExecRequest(["sh", "-c", script], cwd, sandbox=spec, **kw))


def test_bubblewrap_is_installed() -> None:
    # .ci/run installs it; without it every sandboxed command is refused.
    assert sandbox_available()


async def test_read_only_refuses_writes(tmp_path: Path) -> None:
    res = await run_sandboxed({"type": "readOnly"}, tmp_path, "echo x > inside.txt")
    assert res.exit_code != 0
    assert "Read-only file system" in res.stderr_text
    assert res.sandbox_denied
    assert not (tmp_path / "inside.txt").exists()


async def test_read_only_still_reads_and_writes_dev_null(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("content\n")
    res = await run_sandboxed({"type": "readOnly"}, tmp_path, "cat data.txt; echo gone > /dev/null")
    assert (res.exit_code, res.stdout, res.stderr) == (0, b"content\n", b"")
    assert not res.sandbox_denied


async def test_workspace_write_allows_the_cwd_only(tmp_path: Path) -> None:
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    res = await run_sandboxed(ISOLATED, work, "echo a > inside.txt && echo b > ../outside/o.txt")
    assert (work / "inside.txt").read_text() == "a\n"
    assert not (outside / "o.txt").exists()
    assert res.exit_code != 0 and "Read-only file system" in res.stderr_text
    assert res.sandbox_denied


async def test_workspace_write_roots_include_configured_roots_and_tmp(tmp_path: Path) -> None:
    work, extra, other = tmp_path / "work", tmp_path / "extra", tmp_path / "other"
    for d in (work, extra, other):
        d.mkdir()
    policy = {**ISOLATED, "writableRoots": [str(extra)]}
    res = await run_sandboxed(policy, work, "echo e > ../extra/e.txt && echo o > ../other/o.txt")
    assert (extra / "e.txt").read_text() == "e\n"
    assert not (other / "o.txt").exists() and res.exit_code != 0
    # With the defaults, the temp dirs are writable roots too (pytest's tmp_path lives in one).
    res = await run_sandboxed({"type": "workspaceWrite"}, work, "echo o > ../other/o.txt")
    assert res.exit_code == 0 and (other / "o.txt").read_text() == "o\n"


async def test_git_metadata_stays_read_only(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    res = await run_sandboxed(ISOLATED, repo, "echo f > file.txt; echo h > .git/HEAD")
    assert (repo / "file.txt").read_text() == "f\n"
    assert not (repo / ".git" / "HEAD").exists() and res.sandbox_denied
    # A worktree: .git is a pointer file; it and the git directory it names are both protected.
    worktree, gitdir = tmp_path / "wt", tmp_path / "wt-gitdir"
    worktree.mkdir()
    gitdir.mkdir()
    (worktree / ".git").write_text("gitdir: ../wt-gitdir\n")
    policy = {**ISOLATED, "writableRoots": [str(gitdir)]}
    res = await run_sandboxed(policy, worktree, "echo x > ../wt-gitdir/index; echo y > .git")
    assert not (gitdir / "index").exists()
    assert (worktree / ".git").read_text() == "gitdir: ../wt-gitdir\n"


async def _connect_through_sandbox(policy: dict[str, Any], cwd: Path) -> tuple[ExecResult, int]:
    """A sandboxed python connecting to a listener of ours on 127.0.0.1; returns its result and how
    many connections the listener accepted."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    accepted = 0
    script = (
        f"import socket; s = socket.create_connection(('127.0.0.1', {port}), timeout=5); print('connected')"
    )
    async with trio.open_nursery() as nursery:

        async def accept() -> None:
            nonlocal accepted
            while True:
                stream = await listeners[0].accept()
                accepted += 1
                await stream.aclose()

        nursery.start_soon(accept)
        spec = sandbox_spec(policy, cwd, os.environ)
        assert spec is not None
        res = await run_exec(ExecRequest([sys.executable, "-c", script], cwd, sandbox=spec))
        nursery.cancel_scope.cancel()
    await listeners[0].aclose()
    return res, accepted


async def test_network_is_refused_without_network_access(tmp_path: Path) -> None:
    for policy in ({"type": "readOnly"}, ISOLATED):
        res, accepted = await _connect_through_sandbox(policy, tmp_path)
        assert accepted == 0
        assert res.exit_code != 0 and "Operation not permitted" in res.stderr_text
        assert res.sandbox_denied


async def test_network_works_with_network_access(tmp_path: Path) -> None:
    res, accepted = await _connect_through_sandbox({**ISOLATED, "networkAccess": True}, tmp_path)
    assert (res.exit_code, res.stdout) == (0, b"connected\n") and accepted == 1


async def test_environment_marks_a_disabled_network(tmp_path: Path) -> None:
    script = f'echo "[${NETWORK_DISABLED_ENV}]"'
    assert (await run_sandboxed({"type": "readOnly"}, tmp_path, script)).stdout == b"[1]\n"
    assert (await run_sandboxed({**ISOLATED, "networkAccess": True}, tmp_path, script)).stdout == b"[]\n"
    assert network_env({"type": "externalSandbox"}) == {NETWORK_DISABLED_ENV: "1"}
    assert network_env({"type": "externalSandbox", "networkAccess": "enabled"}) == {}
    assert network_env({"type": "dangerFullAccess"}) == {}
    assert network_env({"type": "workspaceWrite", "networkAccess": True}) == {}


async def test_without_bubblewrap_a_sandboxed_command_is_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ex, "bwrap_path", lambda: None)
    with pytest.raises(SandboxUnavailableError, match="bubblewrap"):
        await run_sandboxed(ISOLATED, tmp_path, "touch ran")
    assert not (tmp_path / "ran").exists()


def _pids_running(argv: list[str]) -> list[int]:
    wanted = "\0".join(argv).encode() + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/cmdline").read_bytes() == wanted:
                    found.append(int(entry))
            except OSError:
                pass
    return found


async def _wait_for_pids(argv: list[str]) -> list[int]:
    with trio.fail_after(5):
        while not (pids := _pids_running(argv)):
            await trio.sleep(0.01)
    return pids


async def _assert_none_running(argv: list[str]) -> None:
    with trio.move_on_after(5):
        while _pids_running(argv):
            await trio.sleep(0.01)
    leftovers = _pids_running(argv)
    for pid in leftovers:
        os.kill(pid, 9)
    assert not leftovers, f"survivors: {leftovers}"


async def test_cancellation_kills_even_processes_that_left_the_group(tmp_path: Path) -> None:
    # setsid puts the sleeper in its own session, out of reach of a process-group kill; the PID
    # namespace takes it down anyway.
    marker = ["sleep", f"{600 + os.getpid() % 1000}.5"]
    spec = sandbox_spec(ISOLATED, tmp_path, os.environ)
    assert spec is not None
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                run_exec,
                ExecRequest(["sh", "-c", f"setsid {' '.join(marker)} & wait"], tmp_path, sandbox=spec),
            )
            await _wait_for_pids(marker)
            scope.cancel()
    await _assert_none_running(marker)


async def test_timeout_kills_the_sandboxed_command(tmp_path: Path) -> None:
    marker = ["sleep", f"{600 + os.getpid() % 1000}.25"]
    res = await run_sandboxed(
        ISOLATED, tmp_path, f"setsid {' '.join(marker)} & echo started; wait", timeout_ms=500
    )
    assert res.timed_out and res.exit_code == 124 and res.stdout == b"started\n"
    assert not res.sandbox_denied
    await _assert_none_running(marker)


def test_policy_to_spec(tmp_path: Path) -> None:
    cwd = tmp_path / "w"
    assert sandbox_spec({"type": "dangerFullAccess"}, cwd, {}) is None
    assert sandbox_spec({"type": "externalSandbox", "networkAccess": "restricted"}, cwd, {}) is None
    assert sandbox_spec({"type": "readOnly"}, cwd, {}) == SandboxSpec("read-only", (), network=False)
    spec = sandbox_spec(
        {"type": "workspaceWrite", "writableRoots": ["/srv/a"], "networkAccess": True},
        cwd,
        {"TMPDIR": "/var/tmp/x"},
    )
    assert spec == SandboxSpec(
        "workspace-write", (cwd, Path("/srv/a"), Path("/tmp"), Path("/var/tmp/x")), True
    )
    spec = sandbox_spec({**ISOLATED, "writableRoots": []}, cwd, {"TMPDIR": "/var/tmp/x"})
    assert spec == SandboxSpec("workspace-write", (cwd,), network=False)
    # A relative TMPDIR is ignored.
    spec = sandbox_spec({"type": "workspaceWrite", "excludeSlashTmp": True}, cwd, {"TMPDIR": "rel"})
    assert spec is not None and spec.writable_roots == (cwd,)


def test_bwrap_command_line(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    spec = SandboxSpec("workspace-write", (tmp_path, Path("/nonexistent-root")), network=False)
    argv = wrap_argv(["echo", "hi"], spec, tmp_path, seccomp_fd=7, bwrap="/usr/bin/bwrap")
    assert argv[:5] == [
        "/usr/bin/bwrap",
        "--new-session",
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-net",
    ]
    joined = " ".join(argv)
    assert f"--bind {tmp_path} {tmp_path} --ro-bind {tmp_path}/.git {tmp_path}/.git" in joined
    assert "/nonexistent-root" not in joined
    assert argv[-7:] == ["--seccomp", "7", "--chdir", str(tmp_path), "--", "echo", "hi"]
    online = wrap_argv(["true"], SandboxSpec("read-only", (), network=True), tmp_path, bwrap="bwrap")
    assert "--unshare-net" not in online and "--bind" not in online and "--seccomp" not in online


def test_seccomp_program_per_architecture() -> None:
    program = network_seccomp_program("x86_64")
    assert program is not None and len(program) == 10 * 8
    assert network_seccomp_program("aarch64") is not None
    assert network_seccomp_program("riscv64") is None
