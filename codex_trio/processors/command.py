"""One command run for the client, outside any thread, under the server's sandbox unless the request
names another policy: v2 ``command/exec`` and its v1 twin ``execOneOffCommand``.

Both take the same request (the v1 one spells its sandbox policy the legacy way: kebab-case types,
snake_case fields) and give the same answers and error texts, so they share one implementation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from ..protocol.utilities import ExecOneOffCommandParams, ExecOneOffCommandResponse
from ..protocol.v1 import v2_sandbox_policy
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
        return [
            Method("command/exec", CommandExecParams, self.exec),
            Method("execOneOffCommand", ExecOneOffCommandParams, self.exec_one_off),
        ]

    async def exec(self, ctx: RequestContext, params: CommandExecParams) -> CommandExecResponse:
        timeout_ms = params["timeoutMs"]
        # A negative timeout means the default, as for the reference (it does not fit its u64).
        return await self.run(
            params["command"],
            cwd=params["cwd"],
            policy=params["sandboxPolicy"],
            timeout_ms=timeout_ms if timeout_ms is not None and timeout_ms >= 0 else None,
        )

    async def exec_one_off(
        self, ctx: RequestContext, params: ExecOneOffCommandParams
    ) -> ExecOneOffCommandResponse:
        v1_policy: Any = params["sandboxPolicy"]
        return await self.run(
            params["command"],
            cwd=params["cwd"],
            policy=v2_sandbox_policy(v1_policy) if v1_policy is not None else None,
            timeout_ms=params["timeoutMs"],
        )

    async def run(
        self, command: list[str], *, cwd: str | None, policy: Any, timeout_ms: int | None
    ) -> CommandExecResponse:
        """Run ``command`` in ``cwd`` (relative to the server's directory) under ``policy`` (a v2 sandbox
        policy; None for the configured one) and return what it printed."""
        from ..core.exec import ExecError, ExecRequest, exec_env, run_exec
        from ..core.sandbox import SandboxError, network_env, sandbox_spec

        if not command:
            raise RpcError("command must not be empty")
        config = self.app.config
        # Without a usable config.toml, the reference's defaults: the server's cwd, read-only.
        base_cwd = config.cwd if config is not None else Path(os.getcwd())
        run_cwd = base_cwd / cwd if cwd else base_cwd
        if policy is None:
            policy = sandbox_policy_v2(config) if config is not None else {"type": "readOnly"}
        elif config is not None and config.requirements is not None:
            # Like the reference, only a usable config.toml brings the requirements along.
            from ..core.config import sandbox_mode_of_policy

            violation = config.requirements.violation(sandbox_mode=sandbox_mode_of_policy(policy))
            if violation is not None:
                raise RpcError(f"invalid sandbox policy: {violation}")
        env = exec_env(self.app.env, config.shell_environment_policy if config is not None else None)
        env.update(network_env(policy))
        try:
            spec = sandbox_spec(policy, run_cwd, env)
        except SandboxError as exc:
            raise _exec_failed(str(exc)) from None
        request = ExecRequest(argv=command, cwd=run_cwd, timeout_ms=timeout_ms, env=env, sandbox=spec)
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
