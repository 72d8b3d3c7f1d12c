"""Runs the tool calls of one model response and turns each into the history item that answers it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio

from ..exec import truncate_text
from . import misc
from .context import FunctionCallError, JsonObject, ToolCall, ToolContext, TurnAborted
from .patch import run_apply_patch
from .shell import run_shell

log = logging.getLogger(__name__)

Handler = Callable[[ToolCall, ToolContext], Awaitable[str]]

_BUILTIN: dict[str, Handler] = {
    "shell": run_shell,
    "shell_command": run_shell,
    "local_shell": run_shell,
    "container.exec": run_shell,
    "apply_patch": run_apply_patch,
    "update_plan": misc.update_plan,
    "request_user_input": misc.request_user_input,
    "view_image": misc.view_image,
    "list_mcp_resources": misc.mcp_resource_tool,
    "list_mcp_resource_templates": misc.mcp_resource_tool,
    "read_mcp_resource": misc.mcp_resource_tool,
}


def handler_for(call: ToolCall, ctx: ToolContext) -> Handler | None:
    handler = _BUILTIN.get(call.name)
    if handler is None and any(spec.get("name") == call.name for spec in ctx.tools.dynamic_tools):
        return misc.dynamic_tool
    return handler


async def run_call(call: ToolCall, ctx: ToolContext) -> list[JsonObject]:
    """The items answering one call: its output, then whatever the tool adds for the model to see.
    Anything short of a cancelled turn becomes an output the model reads."""
    handler = handler_for(call, ctx)
    if handler is None:
        kind = "custom tool call" if call.kind == "custom" else "call"
        return [call.output_item(f"unsupported {kind}: {call.name}")]
    try:
        output = await handler(call, ctx)
    except FunctionCallError as exc:
        return [call.output_item(exc.message)]
    except TurnAborted:
        raise
    except Exception as exc:  # a bug in a tool must not take the turn down with it
        log.exception("tool %s failed", call.name)
        return [call.output_item(f"tool {call.name} failed: {exc}")]
    # Like the reference, what goes back into the history is cut once more to the model's budget.
    output = truncate_text(output, ctx.tools.truncation.scaled(1.2))
    return [*ctx.before_output, call.output_item(output), *ctx.extra_items]


# Commands report an interruption in the shape of their usual output; every other tool in one line.
_SHELL_FAMILY = frozenset({"shell", "shell_command", "local_shell", "container.exec", "exec_command"})


def aborted_output(call: ToolCall, started: float) -> JsonObject:
    """What the model hears of a call the user interrupted (at least 0.1 s, like the reference)."""
    wall = max(trio.current_time() - started, 0.1)
    if call.name in _SHELL_FAMILY:
        return call.output_item(f"Wall time: {wall:.1f} seconds\naborted by user")
    return call.output_item(f"aborted by user after {wall:.1f}s")


async def run_calls(
    calls: Sequence[ToolCall],
    context_for: Callable[[ToolCall], ToolContext],
    *,
    parallel: bool,
    on_interrupt: Callable[[list[JsonObject]], None],
) -> list[JsonObject]:
    """Runs a response's calls (concurrently when the model may call tools in parallel, else one after
    the other) and returns their answers in call order. A ``cancel`` decision stops the others and
    ends the turn. When the turn is interrupted or cancelled, ``on_interrupt`` gets (synchronously, before the
    cancellation goes on) the answers so far with "aborted by user" for the unfinished calls, so the
    history stays a valid conversation."""
    answers: list[list[JsonObject] | None] = [None] * len(calls)
    started = trio.current_time()
    aborted = False
    patch_lock = trio.Lock()

    async def one(index: int, call: ToolCall, cancel_scope: trio.CancelScope | None) -> None:
        nonlocal aborted
        ctx = context_for(call)
        try:
            try:
                if call.name == "apply_patch" and cancel_scope is not None:
                    # Patches edit files: never two at once, so each sees the other's result.
                    async with patch_lock:
                        answers[index] = await run_call(call, ctx)
                else:
                    answers[index] = await run_call(call, ctx)
            finally:
                # A call the user rejected just before the turn ended keeps its rejection.
                if answers[index] is None and ctx.aborted_output is not None:
                    answers[index] = [call.output_item(ctx.aborted_output)]
        except TurnAborted:
            aborted = True
            if cancel_scope is None:
                raise
            cancel_scope.cancel()

    try:
        if not parallel or len(calls) < 2:
            for index, call in enumerate(calls):
                await one(index, call, None)
        else:
            async with trio.open_nursery() as nursery:
                for index, call in enumerate(calls):
                    nursery.start_soon(one, index, call, nursery.cancel_scope)
        if aborted:
            raise TurnAborted()
    except (trio.Cancelled, TurnAborted):
        done = [
            item
            for call, answer in zip(calls, answers, strict=True)
            for item in (answer if answer is not None else [aborted_output(call, started)])
        ]
        on_interrupt(done)
        raise
    return [item for answer in answers for item in answer or ()]
