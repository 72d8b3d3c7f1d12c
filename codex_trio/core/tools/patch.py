"""The apply_patch tool: approval, the atomic edit, the fileChange item and the turn's diff."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import apply_patch as ap
from .. import events as ev
from .. import exec as ex
from .. import safety
from .context import FunctionCallError, ToolCall, ToolContext, TurnAborted

REJECTED_BY_USER = safety.REJECTED_PATCH


def _patch_text(call: ToolCall) -> str:
    if call.kind == "custom":
        return str(call.payload)
    args = call.json_arguments()
    if not isinstance(args, Mapping) or not isinstance(args.get("input"), str):
        raise FunctionCallError("failed to parse function arguments: missing field `input`")
    return str(args["input"])


async def run_apply_patch(call: ToolCall, ctx: ToolContext) -> str:
    return await run_patch_text(call, ctx, _patch_text(call), ctx.cwd, freeform=call.kind == "custom")


def _output(text: str, exit_code: int, duration: float, freeform: bool) -> str:
    result = ex.ExecResult(
        exit_code=exit_code,
        stdout=text.encode(),
        stderr=b"",
        aggregated_output=text.encode(),
        duration=duration,
        timed_out=False,
        sandbox_denied=False,
    )
    return ex.format_output_freeform(result) if freeform else ex.format_output_json(result)


def _touched(plan: ap.PatchPlan) -> list[Path]:
    """Every path the patch writes: its files and the destinations of moves."""
    paths = [Path(p) for p in plan.changes]
    for change in plan.changes.values():
        move = change.get("move_path") if isinstance(change, Mapping) else None
        if move:
            paths.append(Path(str(move)))
    return paths


async def run_patch_text(call: ToolCall, ctx: ToolContext, text: str, cwd: Path, *, freeform: bool) -> str:
    started = time.monotonic()
    try:
        plan = ap.plan_patch(text, cwd)
    except ap.PatchError as exc:
        raise FunctionCallError(exc.message) from None
    paths = _touched(plan)
    assessment = safety.assess_patch(
        paths,
        cwd=cwd,
        approval_policy=ctx.approval_policy,
        sandbox_policy=ctx.sandbox_policy,
        approved_for_session=ctx.approvals.paths,
        env=ctx.env,
    )
    if assessment.action == "reject":
        raise FunctionCallError(assessment.reason or REJECTED_BY_USER)
    changes: Mapping[str, Any] = plan.changes
    base: ev.EventMsg = {"call_id": call.call_id, "turn_id": ctx.turn_id}
    await ctx.emit(
        {"type": "patch_apply_begin", **base, "auto_approved": assessment.auto_approved, "changes": changes}
    )

    async def ask(reason: str | None) -> None:
        request: ev.EventMsg = {"type": "apply_patch_approval_request", **base, "changes": changes}
        # Like the reference's event, the optional fields are left out rather than null.
        if reason is not None:
            request["reason"] = reason
        if assessment.grant_root is not None:
            request["grant_root"] = assessment.grant_root
        await ctx.emit(request)
        decision = await ctx.client.approve(ctx.turn_id, request)
        ctx.next_id()
        if decision == "approved_for_session":
            ctx.approvals.paths.update(safety.patch_approval_keys(paths, cwd))
        elif decision != "approved":
            end = {"stdout": "", "stderr": REJECTED_BY_USER, "success": False, "changes": changes}
            await ctx.emit({"type": "patch_apply_end", **base, **end})
            if decision == "abort":
                ctx.aborted_output = REJECTED_BY_USER
                raise TurnAborted()
            raise FunctionCallError(REJECTED_BY_USER)

    user_approved = assessment.user_approved
    if assessment.action == "ask":
        await ask(assessment.reason)
        user_approved = True
    if assessment.sandboxed and not safety.patch_allowed_in_sandbox(
        paths, cwd=cwd, sandbox_policy=ctx.sandbox_policy, env=ctx.env
    ):
        # The sandbox would refuse the write: like the reference, offer to write without it.
        retry = safety.retry_decision("patch", ctx.approval_policy, user_approved=user_approved)
        if retry == "no_retry":
            message = f"patch rejected: {safety.PATCH_OUTSIDE_PROJECT}"
            end = {"stdout": "", "stderr": message, "success": False, "changes": changes}
            await ctx.emit({"type": "patch_apply_end", **base, **end})
            raise FunctionCallError(message)
        if retry == "ask":
            await ask(safety.RETRY_WITHOUT_SANDBOX_REASON)
    ctx.diff.on_patch_begin(plan)
    try:
        summary = ap.apply_plan(plan)
    except ap.PatchError as exc:
        end = {"stdout": "", "stderr": exc.message, "success": False, "changes": changes}
        await ctx.emit({"type": "patch_apply_end", **base, **end})
        await _report_diff(ctx)
        if isinstance(exc, ap.PatchCwdError):
            # The reference could not even start: the model gets the error itself.
            return exc.message
        return _output(exc.message, 1, time.monotonic() - started, freeform)
    await ctx.emit(ev.exec_command_output_delta(call.call_id, "stdout", summary.encode()))
    end = {"stdout": summary, "stderr": "", "success": True, "changes": changes}
    await ctx.emit({"type": "patch_apply_end", **base, **end})
    await _report_diff(ctx)
    return _output(summary, 0, time.monotonic() - started, freeform)


async def _report_diff(ctx: ToolContext) -> None:
    diff = ctx.diff.unified_diff()
    if diff is not None:
        # The reference reports the diff twice after each patch (from the patch's end and from its
        # tracker); clients that count updates see the same number from us.
        for _ in range(2):
            await ctx.emit({"type": "turn_diff", "unified_diff": diff})


