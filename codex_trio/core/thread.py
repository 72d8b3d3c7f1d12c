"""A loaded thread: its history, settings, rollout, and the turn that runs in it.

The thread knows nothing of connections or of the wire: it emits EventMsg values to a sink, which the
app-server layer projects into notifications for whoever listens.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import mimetypes
import random
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import trio

from . import events as ev
from . import model_client as mc
from . import rollout as ro
from . import tools
from .exec import reserialize_shell_output
from .instructions import (
    TURN_ABORTED,
    collaboration_mode_instructions,
    environment_context,
    message,
    permissions_instructions,
)
from .turn_diff import TurnDiffTracker

log = logging.getLogger(__name__)

EventSink = Callable[[str, ev.EventMsg], Awaitable[None]]


class TurnError(Exception):
    """What fails a turn: carries the message and the error info clients see."""

    def __init__(self, message: str, codex_error_info: Any = "other") -> None:
        super().__init__(message)
        self.message = message
        self.codex_error_info = codex_error_info


class RollbackError(Exception):
    """A thread/rollback the thread refused; the message is what the client sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


ROLLBACK_WHILE_RUNNING = "Cannot rollback while a turn is in progress."


class ModelStream(Protocol):
    """Streams one model response for a request body: the model client's typed events, in a stream that
    is also an async context manager (leaving it releases the response)."""

    def __call__(self, request: Any, *, session_id: str) -> mc.ResponseStream: ...


class Recorder(Protocol):
    """Where a thread's rollout lines go (the rollout file, or nowhere for an ephemeral thread)."""

    def record_items(self, items: list[dict[str, Any]]) -> None: ...

    def record_event(self, msg: dict[str, Any]) -> None: ...

    def record_turn_context(self, context: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class TurnSettings:
    """What a turn runs with; turn/start overrides replace these for that turn and later ones."""

    model: str
    model_provider: str
    cwd: Path
    approval_policy: str
    sandbox_policy: dict[str, Any]
    effort: str | None = None
    summary: str | None = None
    personality: str | None = None
    # The v2 CollaborationMode ({mode, settings}) a turn/start chose; None until one does.
    collaboration_mode: dict[str, Any] | None = None

    def sandbox_mode(self) -> str:
        kind = self.sandbox_policy.get("type")
        return {"readOnly": "read-only", "workspaceWrite": "workspace-write"}.get(
            str(kind), "danger-full-access"
        )

    def network_access(self) -> bool:
        access = self.sandbox_policy.get("networkAccess")
        return access is True or access == "enabled"

    def collaboration_kind(self) -> str:
        return str(self.collaboration_mode["mode"]) if self.collaboration_mode else "custom"

    def collaboration_instructions(self) -> str | None:
        if not self.collaboration_mode:
            return None
        text = (self.collaboration_mode.get("settings") or {}).get("developer_instructions")
        return text if isinstance(text, str) and text else None


def settings_update_items(before: TurnSettings, after: TurnSettings) -> list[dict[str, Any]]:
    """What the model is told when a turn runs with other settings than it last heard of, in the
    reference's order: the new environment, the new permissions, the new collaboration mode."""
    items: list[dict[str, Any]] = []
    if after.cwd != before.cwd:
        items.append(message("user", environment_context(str(after.cwd))))
    if (after.sandbox_policy, after.approval_policy) != (before.sandbox_policy, before.approval_policy):
        text = permissions_instructions(after.sandbox_mode(), after.approval_policy, after.network_access())
        items.append(message("developer", text))
    collaboration = after.collaboration_instructions()
    if collaboration is not None and collaboration != before.collaboration_instructions():
        items.append(message("developer", collaboration_mode_instructions(collaboration)))
    return items


@dataclass(frozen=True)
class ToolOptions:
    """What, besides the model, decides the tools a thread offers: config toggles and the dynamic tools
    the client declared at thread/start."""

    features: Mapping[str, bool] = field(default_factory=dict)
    web_search: str | None = None
    view_image: bool | None = None
    dynamic_tools: tuple[Mapping[str, Any], ...] = ()


@dataclass
class ActiveTurn:
    id: str
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    status: str = "inProgress"
    # How a cancelled turn ends: "interrupted" (turn/interrupt), or "replaced" when a review took the
    # thread over (the reference then leaves no note for the model).
    abort_reason: str = "interrupted"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def legacy_error_info(info: Any) -> Any:
    """v2 CodexErrorInfo (camelCase) as the legacy EventMsg spells it (snake_case)."""
    if isinstance(info, str):
        return _snake(info)
    if isinstance(info, dict):
        return {_snake(k): legacy_error_info(v) for k, v in info.items()}
    return info


def _models_with_reasoning(model: str) -> bool:
    return model.startswith(("gpt-5", "o1", "o3", "o4", "codex-"))


async def user_input_to_response_item(inputs: list[dict[str, Any]], cwd: Path) -> dict[str, Any]:
    """The user message the model gets for a turn's input, shaped like the reference's: images are
    wrapped in ``<image>`` tags (local ones named ``[Image #N]``, counted among the local images), and a
    local image that cannot be read becomes a note saying so rather than failing the turn."""
    content: list[dict[str, Any]] = []
    local_count = 0
    for item in inputs:
        kind = item["type"]
        if kind == "text":
            content.append({"type": "input_text", "text": item["text"]})
        elif kind == "image":
            content.append({"type": "input_text", "text": IMAGE_OPEN_TAG})
            content.append({"type": "input_image", "image_url": item["url"]})
            content.append({"type": "input_text", "text": IMAGE_CLOSE_TAG})
        elif kind == "localImage":
            full = cwd / item["path"]
            try:
                data = await trio.Path(full).read_bytes()
            except OSError as exc:
                note = f"codex-trio could not read the local image at `{full}`: {exc.strerror or exc}"
                content.append({"type": "input_text", "text": note})
                continue
            local_count += 1
            content.append({"type": "input_text", "text": f"<image name=[Image #{local_count}]>"})
            content.append({"type": "input_image", "image_url": _data_url(full, data)})
            content.append({"type": "input_text", "text": IMAGE_CLOSE_TAG})
    return {"type": "message", "role": "user", "content": content}


# The function tools whose JSON outputs the freeform-patch models read as text.
_REWRITTEN_OUTPUTS = frozenset({"shell", "shell_command", "container.exec", "local_shell", "apply_patch"})

IMAGE_OPEN_TAG = "<image>"
IMAGE_CLOSE_TAG = "</image>"


def _data_url(path: Path, data: bytes) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def legacy_user_content(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in inputs:
        if item["type"] == "text":
            elements = item.get("text_elements") or []
            out.append({"type": "text", "text": item["text"], "text_elements": elements})
        elif item["type"] == "image":
            out.append({"type": "image", "image_url": item["url"]})
        elif item["type"] == "localImage":
            out.append({"type": "local_image", "path": item["path"]})
        else:
            out.append({"type": item["type"], "name": item["name"], "path": item["path"]})
    return out


class CodexThread:
    def __init__(
        self,
        *,
        thread_id: str,
        settings: TurnSettings,
        base_instructions: str,
        history: list[dict[str, Any]],
        recorder: Recorder,
        sink: EventSink,
        model_stream: ModelStream,
        stream_max_retries: int = 0,
        rng: random.Random | None = None,
        unrecorded: list[dict[str, Any]] | None = None,
        tool_options: ToolOptions | None = None,
        client: tools.ClientChannel | None = None,
        env: Mapping[str, str] | None = None,
        shell_environment_policy: Mapping[str, Any] | None = None,
        rules_file: Path | None = None,
    ) -> None:
        self.id = thread_id
        self.settings = settings
        self.base_instructions = base_instructions
        self.history = history
        self.recorder = recorder
        self.sink = sink
        self.model_stream = model_stream
        self.stream_max_retries = stream_max_retries
        self._rng = rng or random.Random()
        self.tool_options = tool_options or ToolOptions()
        # Whom a running turn asks for approvals and answers (the app layer routes it to the client
        # that owns the turn).
        self.client: tools.ClientChannel = client or tools.NoClient()
        self.env: Mapping[str, str] = env or {}
        self.shell_environment_policy: Mapping[str, Any] = shell_environment_policy or {}
        # What the user allowed for the rest of the session (and the prefixes allowed for good).
        self.approvals = tools.SessionApprovals.load(rules_file)
        # Input that arrived while a turn ran, waiting to join it (raw v2 UserInput lists).
        self._steered: list[list[dict[str, Any]]] = []
        # The settings the model was last told about (initial context or a settings update).
        self._context_settings = settings
        # History items not in the rollout yet: a resumed thread's fresh initial context, which the
        # reference writes when the next turn starts (resuming alone leaves the file untouched).
        self._unrecorded = list(unrecorded or [])
        self.active_turn: ActiveTurn | None = None
        self.token_info: dict[str, Any] | None = None
        self.rate_limits: dict[str, Any] | None = None
        # Turn ids, like the reference's submission ids: one counter per loaded thread, also used up
        # by other operations (interrupt, rollback).
        self._ids = itertools.count()

    def next_id(self) -> str:
        return str(next(self._ids))

    async def emit(self, turn_id: str, msg: ev.EventMsg) -> None:
        if msg["type"] in ev.PERSISTED_EVENT_TYPES:
            self.recorder.record_event(msg)
        await self.sink(turn_id, msg)

    # ---- turns -----------------------------------------------------------------------------

    def override_settings(self, overrides: dict[str, Any]) -> None:
        """Settings for this turn and later ones. Like the reference's own operation for it, this uses up
        a turn id."""
        self.next_id()
        self.settings = replace(self.settings, **overrides)

    def begin_turn(self, cancel_scope: trio.CancelScope | None = None) -> ActiveTurn:
        """Registers a new turn; the caller has checked the thread is idle (or replaced its turn).
        ``cancel_scope``: another thread's turn scope this turn runs under, so that interrupting
        that turn interrupts this one (a review's reviewer turn)."""
        turn = ActiveTurn(self.next_id(), cancel_scope=cancel_scope or trio.CancelScope())
        self.active_turn = turn
        return turn

    def replace_active_turn(self) -> ActiveTurn | None:
        """Stops the running turn because another takes its place (review/start on a busy thread): it
        ends as ``replaced``. Unlike an interrupt, this uses up no id. Returns the stopped turn."""
        turn = self.active_turn
        if turn is not None:
            turn.abort_reason = "replaced"
            turn.cancel_scope.cancel()
        return turn

    def record_items(self, items: list[dict[str, Any]]) -> None:
        """Adds items to the model history and the rollout, for turns that produce history without
        sampling (a review's outcome)."""
        self._record_pending_context()
        self.history.extend(items)
        self.recorder.record_items(items)

    async def rollback(self, num_turns: int) -> None:
        """Drops the last ``num_turns`` user turns from the model history, as the reference does: the
        usage estimate of what is left and ``thread_rolled_back`` are emitted (and persisted). A running
        turn makes it fail; the reference reports that as a legacy error event too."""
        sub_id = self.next_id()
        if self.active_turn is not None:
            await self.emit(sub_id, ev.error(ROLLBACK_WHILE_RUNNING, "thread_rollback_failed"))
            raise RollbackError(ROLLBACK_WHILE_RUNNING)
        # What the rollback drops must be on disk before it, so that a replay drops the same.
        self._record_pending_context()
        self.history = ro.drop_last_user_turns(self.history, num_turns)
        estimate = estimate_token_count(self.base_instructions, self.history)
        self.token_info = _with_estimate(self.token_info, estimate)
        await self.emit(sub_id, ev.token_count(self.token_info, self.rate_limits))
        await self.emit(sub_id, ev.thread_rolled_back(num_turns))

    def _record_pending_context(self) -> None:
        if self._unrecorded:
            self.recorder.record_items(self._unrecorded)
            self._unrecorded = []

    def interrupt(self) -> ActiveTurn | None:
        turn = self.active_turn
        self.next_id()
        if turn is not None:
            turn.cancel_scope.cancel()
        return turn

    async def run_turn(
        self, turn: ActiveTurn, inputs: list[dict[str, Any]], output_schema: Any = None
    ) -> None:
        emit = self._emitter(turn.id)
        try:
            if not inputs:
                # The reference ends a turn without input at once: no task_started, no model call.
                turn.status = "completed"
                await emit(ev.task_complete(None))
                return
            await emit(ev.task_started(self.settings.collaboration_kind()))
            last_message: str | None = None
            failure: TurnError | None = None
            aborted = False
            diff = TurnDiffTracker()
            with turn.cancel_scope:
                try:
                    await self._record_user_input(turn, inputs)
                    last_message = await self._sampling_loop(turn, output_schema, diff)
                except TurnError as exc:
                    failure = exc
                except tools.TurnAborted:
                    # The user cancelled from an approval: the turn ends as an interrupt does.
                    aborted = True
            if turn.cancel_scope.cancelled_caught or aborted:
                await self._end_aborted(turn)
                return
            if failure is not None:
                turn.status = "failed"
                await emit(ev.error(failure.message, legacy_error_info(failure.codex_error_info)))
                await emit(ev.task_complete(None))
                return
            turn.status = "completed"
            final_diff = diff.unified_diff()
            if final_diff is not None:
                await emit({"type": "turn_diff", "unified_diff": final_diff})
            await emit(ev.task_complete(last_message))
        finally:
            self._release(turn)

    async def run_delegated_turn(
        self,
        turn: ActiveTurn,
        work: Callable[[], Awaitable[None]],
        finish: Callable[[bool], Awaitable[None]],
    ) -> None:
        """Runs ``turn`` whose work is done by another thread's turn (a review's reviewer) that runs
        under this turn's cancel scope (see ``begin_turn``); this turn emits no task_started of its
        own. ``finish`` then learns whether an interrupt cut the work short and reports the outcome,
        before the turn ends as interrupted, or completes with no last message."""
        try:
            await work()
            interrupted = turn.cancel_scope.cancel_called
            await finish(interrupted)
            if interrupted:
                await self._end_aborted(turn)
                return
            turn.status = "completed"
            await self.emit(turn.id, ev.task_complete(None))
        finally:
            # Input sent meanwhile (turn/start steers into the running turn) had no model to go to; the
            # reference drops it with the turn.
            self._steered = []
            self._release(turn)

    async def _end_aborted(self, turn: ActiveTurn) -> None:
        turn.status = "interrupted"
        if turn.abort_reason == "interrupted":
            note = message("user", TURN_ABORTED)
            self.history.append(note)
            self.recorder.record_items([note])
        await self.emit(turn.id, ev.turn_aborted(turn.abort_reason))

    def _release(self, turn: ActiveTurn) -> None:
        if self.active_turn is turn:
            self.active_turn = None
        turn.done.set()

    def _emitter(self, turn_id: str) -> Callable[[ev.EventMsg], Awaitable[None]]:
        async def emit(msg: ev.EventMsg) -> None:
            await self.emit(turn_id, msg)

        return emit

    async def _record_user_input(self, turn: ActiveTurn, inputs: list[dict[str, Any]]) -> None:
        emit = self._emitter(turn.id)
        self._record_pending_context()
        updates = settings_update_items(self._context_settings, self.settings)
        self._context_settings = self.settings
        if updates:
            self.history.extend(updates)
            self.recorder.record_items(updates)
        item = {"type": "UserMessage", "id": str(uuid.uuid4()), "content": legacy_user_content(inputs)}
        response_item = await user_input_to_response_item(inputs, self.settings.cwd)
        await emit(ev.item_started(self.id, turn.id, item))
        await emit(ev.item_completed(self.id, turn.id, item))
        self.history.append(response_item)
        self.recorder.record_items([response_item])
        text = "\n".join(i["text"] for i in inputs if i["type"] == "text")
        images = [i["url"] for i in inputs if i["type"] == "image"]
        local = [i["path"] for i in inputs if i["type"] == "localImage"]
        await emit(ev.user_message(text, images, local))

    def tools_config(self) -> tools.ToolsConfig:
        options = self.tool_options
        return tools.ToolsConfig.for_model(
            self.settings.model,
            features=options.features,
            web_search=options.web_search,
            view_image=options.view_image,
            dynamic_tools=options.dynamic_tools,
        )

    def request_body(self, output_schema: Any = None) -> dict[str, Any]:
        s = self.settings
        tools_config = self.tools_config()
        reasoning = None
        # Only models known to reason get reasoning parameters, whatever effort a turn asked for: the
        # reference sends none to other models.
        if _models_with_reasoning(s.model):
            reasoning = {"effort": s.effort or "medium", "summary": s.summary or "auto"}
        body: dict[str, Any] = {
            "model": s.model,
            "instructions": self.base_instructions,
            "input": self._model_input(tools_config),
            "tools": tools.tool_specs(tools_config),
            "tool_choice": "auto",
            "parallel_tool_calls": tools_config.parallel_tool_calls,
            "reasoning": reasoning,
            "store": False,
            "stream": True,
            "include": ["reasoning.encrypted_content"] if reasoning else [],
            "prompt_cache_key": self.id,
        }
        if output_schema is not None:
            body["text"] = {
                "format": {
                    "type": "json_schema",
                    "strict": True,
                    "schema": output_schema,
                    "name": "codex_output_schema",
                }
            }
        return body

    def _model_input(self, tools_config: tools.ToolsConfig) -> list[dict[str, Any]]:
        """The history as the model gets it. Models offered the freeform apply_patch read the shell
        tools' JSON outputs in the freeform layout: the reference rewrites them when it sends them,
        and keeps the JSON in its history and rollouts."""
        if not tools_config.apply_patch_freeform:
            return list(self.history)
        shell_calls = {
            item.get("call_id")
            for item in self.history
            if item.get("type") == "function_call" and item.get("name") in _REWRITTEN_OUTPUTS
        }
        shell_calls.update(i.get("call_id") for i in self.history if i.get("type") == "local_shell_call")
        out: list[dict[str, Any]] = []
        for item in self.history:
            if item.get("type") == "function_call_output" and item.get("call_id") in shell_calls:
                text = item.get("output")
                rewritten = reserialize_shell_output(text) if isinstance(text, str) else None
                if rewritten is not None:
                    item = {**item, "output": rewritten}
            out.append(item)
        return out

    def turn_context(self) -> dict[str, Any]:
        s = self.settings
        context: dict[str, Any] = {
            "cwd": str(s.cwd),
            "approval_policy": s.approval_policy,
            "sandbox_policy": {"type": s.sandbox_mode()},
            "model": s.model,
        }
        if s.effort is not None:
            context["effort"] = s.effort
        if s.personality is not None:
            context["personality"] = s.personality
        collaboration = s.collaboration_mode or {}
        settings = collaboration.get("settings") or {}
        context["collaboration_mode"] = {
            "mode": s.collaboration_kind(),
            "settings": {
                "model": settings.get("model", s.model),
                "reasoning_effort": settings.get("reasoning_effort", s.effort),
                "developer_instructions": settings.get("developer_instructions"),
            },
        }
        context["summary"] = s.summary or "auto"
        return context

    async def _sampling_loop(self, turn: ActiveTurn, output_schema: Any, diff: TurnDiffTracker) -> str | None:
        last_message: str | None = None
        while True:
            step = await self._sample(turn, output_schema)
            if step.last_message is not None:
                last_message = step.last_message
            if step.calls:
                outputs = await self._run_tools(turn, step.calls, diff)
                self.history.extend(outputs)
                self.recorder.record_items(outputs)
            elif not await self._take_steered_input(turn):
                return last_message

    async def _run_tools(
        self, turn: ActiveTurn, calls: list[dict[str, Any]], diff: TurnDiffTracker
    ) -> list[dict[str, Any]]:
        s = self.settings
        config = self.tools_config()
        emit = self._emitter(turn.id)

        def context_for(call: tools.ToolCall) -> tools.ToolContext:
            return tools.ToolContext(
                thread_id=self.id,
                turn_id=turn.id,
                cwd=s.cwd,
                approval_policy=s.approval_policy,
                sandbox_policy=s.sandbox_policy,
                collaboration_mode=s.collaboration_kind(),
                tools=config,
                emit=emit,
                client=self.client,
                approvals=self.approvals,
                diff=diff,
                env=self.env,
                shell_environment_policy=self.shell_environment_policy,
                next_id=self.next_id,
            )

        def keep(items: list[dict[str, Any]]) -> None:
            self.history.extend(items)
            self.recorder.record_items(items)

        parsed = [tools.ToolCall.from_item(call) for call in calls]
        return await tools.run_calls(
            parsed, context_for, parallel=config.parallel_tool_calls, on_interrupt=keep
        )

    async def _sample(self, turn: ActiveTurn, output_schema: Any) -> _Step:
        """One model request, retried like the reference when the stream breaks."""
        retries = 0
        while True:
            self.recorder.record_turn_context(self.turn_context())
            step = _Step(self, turn)
            try:
                # ``async with``: an interrupt while an event is handled releases the response at once.
                async with self.model_stream(self.request_body(output_schema), session_id=self.id) as events:
                    async for event in events:
                        await step.handle(event)
                return step
            except mc.ModelError as exc:
                if not exc.retryable or retries >= self.stream_max_retries:
                    await self._report_usage_after(turn, exc)
                    raise TurnError(exc.message, exc.codex_error_info) from None
                retries += 1
                notice = exc.retry_notice(retries, self.stream_max_retries)
                await self.emit(
                    turn.id,
                    ev.stream_error(
                        notice.message,
                        legacy_error_info(notice.codex_error_info),
                        notice.additional_details,
                    ),
                )
                delay = exc.retry_after if exc.retry_after is not None else mc.backoff(retries, self._rng)
                await trio.sleep(delay)

    async def _report_usage_after(self, turn: ActiveTurn, exc: mc.ModelError) -> None:
        """What the reference reports about usage when a model call fails for good: the rate limits a
        usage-limit answer carried, or (context window exceeded) the context now counted as full."""
        if exc.rate_limits is not None:
            self.rate_limits = dict(exc.rate_limits)
        elif exc.codex_error_info != "contextWindowExceeded":
            return
        await self.emit(turn.id, ev.token_count(self.token_info, self.rate_limits))

    def steer(self, inputs: list[dict[str, Any]]) -> str:
        """Input sent while a turn runs joins that turn, as the reference does: the model gets it with its
        next request, no item is reported for it, and the id answered (a new one) never completes."""
        self._steered.append(inputs)
        return self.next_id()

    async def _take_steered_input(self, turn: ActiveTurn) -> bool:
        if not self._steered:
            return False
        pending, self._steered = self._steered, []
        items = [await user_input_to_response_item(inputs, self.settings.cwd) for inputs in pending]
        self.history.extend(items)
        self.recorder.record_items(items)
        return True


class _Step:
    """One model response: turns the client's stream events into thread events and history."""

    def __init__(self, thread: CodexThread, turn: ActiveTurn) -> None:
        self.thread = thread
        self.turn = turn
        self.calls: list[dict[str, Any]] = []
        self.last_message: str | None = None
        self._emit = thread._emitter(turn.id)

    async def handle(self, event: Any) -> None:
        thread, turn_id, emit = self.thread, self.turn.id, self._emit
        if isinstance(event, mc.OutputTextDelta):
            await emit(ev.agent_message_content_delta(thread.id, turn_id, event.item_id, event.delta))
            await emit(ev.agent_message_delta(event.delta))
        elif isinstance(event, mc.OutputItemAdded):
            item = event.item
            if item.get("type") == "message" and item.get("role") == "assistant":
                await emit(ev.item_started(thread.id, turn_id, _agent_message_item(item)))
            elif item.get("type") == "reasoning":
                await emit(ev.item_started(thread.id, turn_id, _reasoning_item(item)))
        elif isinstance(event, mc.OutputItemDone):
            await self._item_done(event.item)
        elif isinstance(event, mc.ReasoningSummaryPartAdded):
            await emit(ev.reasoning_section_break(event.item_id, event.summary_index))
        elif isinstance(event, mc.ReasoningSummaryDelta):
            await emit(
                ev.reasoning_content_delta(
                    thread.id, turn_id, event.item_id, event.delta, event.summary_index
                )
            )
            await emit(ev.agent_reasoning_delta(event.delta))
        elif isinstance(event, mc.ReasoningTextDelta):
            await emit(
                ev.reasoning_raw_content_delta(
                    thread.id, turn_id, event.item_id, event.delta, event.content_index
                )
            )
            await emit(ev.agent_reasoning_raw_content_delta(event.delta))
        elif isinstance(event, mc.RateLimits):
            thread.rate_limits = dict(event.snapshot)
            await emit(ev.token_count(thread.token_info, thread.rate_limits))
        elif isinstance(event, mc.Completed):
            if event.usage is not None:
                thread.token_info = _add_usage(thread.token_info, event.usage)
            await emit(ev.token_count(thread.token_info, thread.rate_limits))

    async def _item_done(self, item: dict[str, Any]) -> None:
        thread, turn_id, emit = self.thread, self.turn.id, self._emit
        kind = item.get("type")
        # The reference reports the item, then records it: its rollouts hold the agent_message event
        # before the assistant message item.
        if kind == "message" and item.get("role") == "assistant":
            done = _agent_message_item(item)
            text = "".join(part["text"] for part in done["content"])
            await emit(ev.item_completed(thread.id, turn_id, done))
            await emit(ev.agent_message(text))
            self.last_message = text
        elif kind == "reasoning":
            done = _reasoning_item(item)
            await emit(ev.item_completed(thread.id, turn_id, done))
            for text in done["summary_text"]:
                await emit(ev.agent_reasoning(text))
        elif kind in ("function_call", "custom_tool_call", "local_shell_call"):
            self.calls.append(item)
        kept = history_item(item)
        thread.history.append(kept)
        thread.recorder.record_items([kept])


def _content_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": kind, "text": part.get("text", "")}
    if kind == "input_image":
        return {"type": kind, "image_url": part.get("image_url", "")}
    return dict(part)


def history_item(item: dict[str, Any]) -> dict[str, Any]:
    """An output item as the reference keeps it in the history it sends back and in rollouts: its own
    shape of the item, without the response's item ids, statuses and annotations (so the requests, the
    rollout lines and the usage estimates match the reference's)."""
    kind = item.get("type")
    if kind == "message":
        content = [_content_part(p) for p in item.get("content") or [] if isinstance(p, dict)]
        return {"type": "message", "role": item.get("role"), "content": content}
    if kind == "reasoning":
        kept: dict[str, Any] = {
            "type": "reasoning",
            "summary": [
                {"type": "summary_text", "text": p.get("text", "")}
                for p in item.get("summary") or []
                if isinstance(p, dict)
            ],
        }
        if item.get("content"):
            kept["content"] = [
                {"type": p.get("type", "reasoning_text"), "text": p.get("text", "")}
                for p in item["content"]
                if isinstance(p, dict)
            ]
        kept["encrypted_content"] = item.get("encrypted_content")
        return kept
    if kind == "function_call":
        return {
            "type": "function_call",
            "name": item.get("name"),
            "arguments": item.get("arguments"),
            "call_id": item.get("call_id"),
        }
    if kind == "custom_tool_call":
        kept = {"type": "custom_tool_call"}
        if "status" in item:
            kept["status"] = item["status"]
        kept.update(call_id=item.get("call_id"), name=item.get("name"), input=item.get("input"))
        return kept
    return dict(item)


def _agent_message_item(item: dict[str, Any]) -> dict[str, Any]:
    content = [
        {"type": "Text", "text": part.get("text", "")}
        for part in item.get("content") or []
        if part.get("type") == "output_text"
    ]
    return {"type": "AgentMessage", "id": item.get("id") or "", "content": content}


def _reasoning_item(item: dict[str, Any]) -> dict[str, Any]:
    summary = [part.get("text", "") for part in item.get("summary") or []]
    raw = [part.get("text", "") for part in item.get("content") or []]
    return {"type": "Reasoning", "id": item.get("id") or "", "summary_text": summary, "raw_content": raw}


_USAGE_KEYS = (
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
    "total_tokens",
)


def _approx_tokens(byte_count: int) -> int:
    # The reference's rule of thumb: four bytes a token, rounded up.
    return (max(byte_count, 0) + 3) // 4


def estimate_token_count(base_instructions: str, history: list[dict[str, Any]]) -> int:
    """A coarse estimate of the context a request would use, by the reference's byte heuristic: the
    compact JSON of each history item (encrypted reasoning counted by its decoded size, less the part the
    model never sees) plus the instructions."""
    total = _approx_tokens(len(base_instructions.encode("utf-8")))
    for item in history:
        encrypted = item.get("encrypted_content") if item.get("type") == "reasoning" else None
        if isinstance(encrypted, str):
            size = max(len(encrypted) * 3 // 4 - 650, 0)
        else:
            size = len(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        total += _approx_tokens(size)
    return total


def _with_estimate(info: dict[str, Any] | None, estimate: int) -> dict[str, Any]:
    """Usage after a history rewrite: totals unchanged, ``last`` replaced by the estimate alone."""
    last = dict.fromkeys(_USAGE_KEYS, 0)
    last["total_tokens"] = estimate
    return {
        "total_token_usage": dict(info["total_token_usage"]) if info else dict.fromkeys(_USAGE_KEYS, 0),
        "last_token_usage": last,
        "model_context_window": info["model_context_window"] if info else None,
    }


def _add_usage(info: dict[str, Any] | None, usage: Mapping[str, Any]) -> dict[str, Any]:
    total = dict(info["total_token_usage"]) if info else dict.fromkeys(usage, 0)
    for key, value in usage.items():
        total[key] = total.get(key, 0) + value
    return {
        "total_token_usage": total,
        "last_token_usage": dict(usage),
        "model_context_window": info["model_context_window"] if info else None,
    }
