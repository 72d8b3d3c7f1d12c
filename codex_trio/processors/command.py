"""``command/exec``: one command run for the client, outside any thread, under the server's sandbox
unless the request names another policy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from ..protocol.v2 import SandboxPolicy
from ..router import Method, RequestContext
from ..rpc.errors import INTERNAL_ERROR, RpcError
from ..thread_manager import sandbox_policy_v2

if TYPE_CHECKING:
    from ..app import AppServer


class CommandExecParams(TypedDict):
    command: list[str]
    cwd: str | None
    sandboxPolicy: SandboxPolicy | None
    timeoutMs: int | None


class CommandExecResponse(TypedDict):
    exitCode: int
    stdout: str
    stderr: str


def _exec_failed(reason: str) -> RpcError:
    # The reference reports every failure to run the command as an internal error.
    return RpcError(f"exec failed: {reason}", code=INTERNAL_ERROR)


class CommandProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app

    def methods(self) -> list[Method]:
        return [Method("command/exec", CommandExecParams, self.exec)]

    async def exec(self, ctx: RequestContext, params: CommandExecParams) -> CommandExecResponse:
        from ..core.exec import ExecError, ExecRequest, exec_env, run_exec
        from ..core.sandbox import SandboxError, network_env, sandbox_spec

        if not params["command"]:
            raise RpcError("command must not be empty")
        config = self.app.config
        # Without a usable config.toml, the reference's defaults: the server's cwd, read-only.
        base_cwd = config.cwd if config is not None else Path(os.getcwd())
        cwd = base_cwd / params["cwd"] if params["cwd"] else base_cwd
        policy: Any = params["sandboxPolicy"]
        if policy is None:
            policy = sandbox_policy_v2(config) if config is not None else {"type": "readOnly"}
        env = exec_env(self.app.env, config.shell_environment_policy if config is not None else None)
        env.update(network_env(policy))
        try:
            spec = sandbox_spec(policy, cwd, env)
        except SandboxError as exc:
            raise _exec_failed(str(exc)) from None
        timeout_ms = params["timeoutMs"]
        # A negative timeout means the default, as for the reference (it does not fit its u64).
        request = ExecRequest(
            argv=params["command"],
            cwd=cwd,
            timeout_ms=timeout_ms if timeout_ms is not None and timeout_ms >= 0 else None,
            env=env,
            sandbox=spec,
        )
        try:
            result = await run_exec(request)
        except ExecError as exc:
            raise _exec_failed(str(exc)) from None
        if result.signal is not None:
            raise _exec_failed("sandbox error: command was killed by a signal")
        if result.timed_out:
            raise _exec_failed("sandbox error: command timed out")
        stdout, stderr = result.stdout_text, result.stderr_text
        if result.sandbox_denied:
            raise _exec_failed(
                "sandbox error: sandbox denied exec error, "
                f"exit code: {result.exit_code}, stdout: {stdout}, stderr: {stderr}"
            )
        return {"exitCode": result.exit_code, "stdout": stdout, "stderr": stderr}
