"""The shell tools (``shell``, ``shell_command``, ``local_shell``): approval, sandbox, the process, and
what the client and the model hear about it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from .. import events as ev
from .. import exec as ex
from .. import safety
from .. import sandbox as sb
from ..apply_patch import PatchError, extract_shell_patch
from ..parse_command import parse_command, shell_command_argv
from .context import FunctionCallError, ToolCall, ToolContext, TurnAborted

REJECTED_BY_USER = safety.REJECTED_EXEC
# How long an interrupted approval may take to report its rejection.
_REFUSE_ON_CANCEL_SECONDS = 1.0


@dataclass(frozen=True)
class ShellRequest:
    argv: list[str]
    cwd: Path
    timeout_ms: int | None
    sandbox_permissions: str | None
    justification: str | None
    prefix_rule: list[str] | None = None


def _str_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FunctionCallError(f"failed to parse function arguments: `{what}` must be an array of strings")
    return list(value)


def _timeout(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise FunctionCallError(
            "failed to parse function arguments: `timeout_ms` must be a non-negative number"
        )
    return int(value)


def _workdir(ctx: ToolContext, workdir: Any) -> Path:
    if workdir is None or workdir == "":
        return ctx.cwd
    if not isinstance(workdir, str):
        raise FunctionCallError("failed to parse function arguments: `workdir` must be a string")
    return ctx.cwd / workdir


def shell_request(call: ToolCall, ctx: ToolContext) -> ShellRequest:
    """The command a shell-tool call asks for, from whichever of the three shapes the model used."""
    if call.kind == "local_shell":
        action = call.payload if isinstance(call.payload, Mapping) else {}
        argv = _str_list(action.get("command"), "command")
        workdir = _workdir(ctx, action.get("working_directory"))
        return ShellRequest(argv, workdir, _timeout(action.get("timeout_ms")), None, None)
    args = call.json_arguments()
    if not isinstance(args, Mapping):
        raise FunctionCallError("failed to parse function arguments: expected an object")
    if "command" not in args:
        raise FunctionCallError("failed to parse function arguments: missing field `command`")
    if call.name == "shell_command":
        command = args["command"]
        if not isinstance(command, str):
            raise FunctionCallError("failed to parse function arguments: `command` must be a string")
        login = args.get("login", True)
        argv = shell_command_argv(command, login=login is not False)
    else:
        argv = _str_list(args["command"], "command")
    permissions = args.get("sandbox_permissions")
    justification = args.get("justification")
    prefix = args.get("prefix_rule")
    return ShellRequest(
        argv,
        _workdir(ctx, args.get("workdir")),
        _timeout(args.get("timeout_ms")),
        permissions if isinstance(permissions, str) else None,
        justification if isinstance(justification, str) else None,
        _str_list(prefix, "prefix_rule") if prefix is not None else None,
    )


def _duration(seconds: float) -> dict[str, int]:
    nanos = max(int(seconds * 1e9), 0)
    return {"secs": nanos // 1_000_000_000, "nanos": nanos % 1_000_000_000}


class _Command:
    """One command's events, keyed by its call id."""

    def __init__(self, ctx: ToolContext, call_id: str, argv: Sequence[str], cwd: Path) -> None:
        self.ctx = ctx
        self.call_id = call_id
        self.argv = list(argv)
        self.cwd = str(cwd)
        self.parsed = parse_command(argv)

    def _base(self, kind: str) -> ev.EventMsg:
        return {
            "type": kind,
            "call_id": self.call_id,
            "turn_id": self.ctx.turn_id,
            "command": self.argv,
            "cwd": self.cwd,
            "parsed_cmd": self.parsed,
            "source": "agent",
        }

    async def begin(self) -> None:
        await self.ctx.emit(self._base("exec_command_begin"))

    async def output(self, stream: str, chunk: bytes) -> None:
        await self.ctx.emit(ev.exec_command_output_delta(self.call_id, stream, chunk))

    async def end(
        self, *, stdout: str, stderr: str, aggregated: str, exit_code: int, duration: float, formatted: str
    ) -> None:
        msg = self._base("exec_command_end")
        msg.update(
            stdout=stdout,
            stderr=stderr,
            aggregated_output=aggregated,
            exit_code=exit_code,
            duration=_duration(duration),
            formatted_output=formatted,
        )
        await self.ctx.emit(msg)

    async def ask(self, reason: str | None, amendment: Sequence[str] | None) -> Any:
        msg: ev.EventMsg = {
            "type": "exec_approval_request",
            "call_id": self.call_id,
            "turn_id": self.ctx.turn_id,
            "command": self.argv,
            "cwd": self.cwd,
        }
        # Like the reference's event, an absent reason is left out rather than null.
        if reason is not None:
            msg["reason"] = reason
        if amendment is not None:
            msg["proposed_execpolicy_amendment"] = list(amendment)
        msg["parsed_cmd"] = self.parsed
        await self.ctx.emit(msg)
        try:
            decision = await self.ctx.client.approve(self.ctx.turn_id, msg)
        except trio.Cancelled:
            # Like the reference: a question the interrupt left unanswered counts as a rejection, and
            # the client sees the item end before the turn does. Bounded: a server that is shutting
            # down must not wait on its own event stream.
            self.ctx.aborted_output = REJECTED_BY_USER
            with trio.CancelScope(shield=True, deadline=trio.current_time() + _REFUSE_ON_CANCEL_SECONDS):
                await self.refuse(REJECTED_BY_USER)
            raise
        self.ctx.next_id()
        return decision

    async def refuse(self, text: str, formatted: str = "") -> None:
        await self.end(
            stdout="", stderr=text, aggregated=text, exit_code=-1, duration=0.0, formatted=formatted
        )


def _accepted(ctx: ToolContext, key: tuple[Any, ...], decision: Any) -> bool:
    """Whether the user let the command run; remembers what they allowed beyond this call."""
    if decision == "approved_for_session":
        ctx.approvals.commands.add(key)
        return True
    if isinstance(decision, Mapping) and "approved_execpolicy_amendment" in decision:
        prefix = list(decision["approved_execpolicy_amendment"].get("proposed_execpolicy_amendment") or [])
        if prefix:
            ctx.approvals.rules.append(safety.PrefixRule(tuple(prefix)))
            ctx.approvals.save_rule(safety.format_allow_rule(prefix))
            # The model hears the rule was saved, just before the call's output.
            ctx.before_output.append(
                {
                    "type": "message",
                    "role": "developer",
                    "content": [{"type": "input_text", "text": safety.amendment_saved_message(prefix)}],
                }
            )
        return True
    return decision == "approved"


async def _decide(cmd: _Command, key: tuple[Any, ...], decision: Any) -> None:
    """Ends the command when the user said no: the model hears it was rejected, and ``cancel`` ends
    the turn."""
    if _accepted(cmd.ctx, key, decision):
        return
    await cmd.refuse(REJECTED_BY_USER)
    if decision == "abort":
        cmd.ctx.aborted_output = REJECTED_BY_USER
        raise TurnAborted()
    raise FunctionCallError(REJECTED_BY_USER)


EMPTY_COMMAND = "command args are empty"


async def run_shell(call: ToolCall, ctx: ToolContext) -> str:
    request = shell_request(call, ctx)
    if not request.argv:
        # The reference reports this as a command that failed at once, not as bad arguments.
        cmd = _Command(ctx, call.call_id, request.argv, request.cwd)
        await cmd.begin()
        await cmd.refuse(EMPTY_COMMAND, formatted=EMPTY_COMMAND)
        return EMPTY_COMMAND
    try:
        patch = extract_shell_patch(request.argv, request.cwd)
    except PatchError as exc:
        raise FunctionCallError(exc.message) from None
    if patch is not None:
        # The reference runs ``apply_patch`` given to the shell as a patch, not as a process, and
        # answers in the shell's JSON layout whatever the tool.
        from .patch import run_patch_text

        return await run_patch_text(call, ctx, patch.patch, patch.cwd, freeform=False)
    assessment = safety.assess_exec(
        request.argv,
        cwd=request.cwd,
        approval_policy=ctx.approval_policy,
        sandbox_policy=ctx.sandbox_policy,
        sandbox_permissions=request.sandbox_permissions,
        justification=request.justification,
        prefix_rule=request.prefix_rule,
        approved_for_session=ctx.approvals.commands,
        rules=ctx.approvals.rules,
    )
    if assessment.action == "reject":
        raise FunctionCallError(assessment.reason or REJECTED_BY_USER)
    key = safety.exec_approval_key(request.argv, request.cwd, request.sandbox_permissions)
    cmd = _Command(ctx, call.call_id, request.argv, request.cwd)
    await cmd.begin()
    if assessment.action == "forbidden":
        reason = assessment.reason or REJECTED_BY_USER
        await cmd.refuse(reason, formatted=reason)
        return reason
    user_approved = assessment.user_approved
    if assessment.action == "ask":
        await _decide(cmd, key, await cmd.ask(assessment.reason, assessment.proposed_execpolicy_amendment))
        user_approved = True
    spec = sb.sandbox_spec(ctx.sandbox_policy, request.cwd, ctx.env) if assessment.sandboxed else None
    try:
        result = await _execute(cmd, request, spec, ctx)
        if spec is not None and result.sandbox_denied:
            retry = safety.retry_decision(
                "exec",
                ctx.approval_policy,
                user_approved=user_approved,
                cached_for_session=key in ctx.approvals.commands,
            )
            if retry == "ask":
                # Like the reference's on-failure: the sandbox stopped it, so offer to run it without one.
                reason = safety.RETRY_WITHOUT_SANDBOX_REASON
                await _decide(cmd, key, await cmd.ask(reason, assessment.proposed_execpolicy_amendment))
            if retry != "no_retry":
                result = await _execute(cmd, request, None, ctx)
    except ex.ExecError as exc:
        text = exc.model_text
        await cmd.refuse(text, formatted=text)
        return text
    policy = ctx.tools.truncation
    # A command killed by a signal is an error for the reference, not an output.
    signal_error = ex.format_signal_error(result.signal) if result.signal is not None else None
    await cmd.end(
        stdout=result.stdout_text,
        stderr=result.stderr_text,
        aggregated=result.aggregated_text,
        exit_code=result.exit_code,
        duration=result.duration,
        formatted=signal_error or ex.formatted_output(result, policy),
    )
    if signal_error is not None:
        return signal_error
    # (Models that get the freeform apply_patch read JSON outputs in the freeform layout: the
    # request builder rewrites them, and the history keeps them as the reference records them.)
    if call.name == "shell_command":
        return ex.format_output_freeform(result, policy)
    return ex.format_output_json(result, policy)


async def _execute(
    cmd: _Command, request: ShellRequest, spec: sb.SandboxSpec | None, ctx: ToolContext
) -> ex.ExecResult:
    env = ex.exec_env(ctx.env, ctx.shell_environment_policy)
    if spec is None:
        # A sandbox other than ours (externalSandbox) still tells commands the network is off.
        env.update(sb.network_env(ctx.sandbox_policy))
    exec_request = ex.ExecRequest(
        argv=request.argv, cwd=request.cwd, timeout_ms=request.timeout_ms, env=env, sandbox=spec
    )
    return await ex.run_exec(exec_request, on_output=cmd.output)
