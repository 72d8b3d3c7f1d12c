"""A loaded thread: its history, settings, rollout, and the turn that runs in it.

The thread knows nothing of connections or of the wire: it emits EventMsg values to a sink, which the
app-server layer projects into notifications for whoever listens.
"""

from __future__ import annotations

import base64
import itertools
import logging
import mimetypes
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import trio

from . import events as ev
from . import model_client as mc
from .instructions import TURN_ABORTED, message

log = logging.getLogger(__name__)

EventSink = Callable[[str, ev.EventMsg], Awaitable[None]]


class TurnError(Exception):
    """What fails a turn: carries the message and the error info clients see."""

    def __init__(self, message: str, codex_error_info: Any = "other") -> None:
        super().__init__(message)
        self.message = message
        self.codex_error_info = codex_error_info


class ModelStream(Protocol):
    """Streams one model response for a request body; yields the model client's typed events."""

    def __call__(self, request: Any, *, session_id: str) -> AsyncIterator[Any]: ...


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

    def sandbox_mode(self) -> str:
        kind = self.sandbox_policy.get("type")
        return {"readOnly": "read-only", "workspaceWrite": "workspace-write"}.get(
            str(kind), "danger-full-access"
        )


@dataclass
class ActiveTurn:
    id: str
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    status: str = "inProgress"


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


def user_input_to_response_item(inputs: list[dict[str, Any]], cwd: Path) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for item in inputs:
        kind = item["type"]
        if kind == "text":
            content.append({"type": "input_text", "text": item["text"]})
        elif kind == "image":
            content.append({"type": "input_image", "image_url": item["url"]})
        elif kind == "localImage":
            content.append({"type": "input_image", "image_url": _data_url(cwd, item["path"])})
    return {"type": "message", "role": "user", "content": content}


def _data_url(cwd: Path, path: str) -> str:
    full = (cwd / path).resolve()
    try:
        data = full.read_bytes()
    except OSError as exc:
        raise TurnError(f"could not read image {path}: {exc.strerror}") from None
    mime = mimetypes.guess_type(full.name)[0] or "application/octet-stream"
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
        self._steered: list[dict[str, Any]] = []
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

    def begin_turn(self, overrides: dict[str, Any]) -> ActiveTurn:
        """Registers a new turn (the caller has checked the thread is idle) and applies overrides."""
        if overrides:
            self.settings = replace(self.settings, **overrides)
        turn = ActiveTurn(self.next_id())
        self.active_turn = turn
        return turn

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
            await emit(ev.task_started())
            last_message: str | None = None
            failure: TurnError | None = None
            with turn.cancel_scope:
                try:
                    await self._record_user_input(turn, inputs)
                    last_message = await self._sampling_loop(turn, output_schema)
                except TurnError as exc:
                    failure = exc
            if turn.cancel_scope.cancelled_caught:
                turn.status = "interrupted"
                aborted = message("user", TURN_ABORTED)
                self.history.append(aborted)
                self.recorder.record_items([aborted])
                await emit(ev.turn_aborted("interrupted"))
                return
            if failure is not None:
                turn.status = "failed"
                await emit(ev.error(failure.message, legacy_error_info(failure.codex_error_info)))
                await emit(ev.task_complete(None))
                return
            turn.status = "completed"
            await emit(ev.task_complete(last_message))
        finally:
            if self.active_turn is turn:
                self.active_turn = None
            turn.done.set()

    def _emitter(self, turn_id: str) -> Callable[[ev.EventMsg], Awaitable[None]]:
        async def emit(msg: ev.EventMsg) -> None:
            await self.emit(turn_id, msg)

        return emit

    async def _record_user_input(self, turn: ActiveTurn, inputs: list[dict[str, Any]]) -> None:
        emit = self._emitter(turn.id)
        item = {"type": "UserMessage", "id": str(uuid.uuid4()), "content": legacy_user_content(inputs)}
        response_item = user_input_to_response_item(inputs, self.settings.cwd)
        await emit(ev.item_started(self.id, turn.id, item))
        await emit(ev.item_completed(self.id, turn.id, item))
        self.history.append(response_item)
        self.recorder.record_items([response_item])
        text = "\n".join(i["text"] for i in inputs if i["type"] == "text")
        images = [i["url"] for i in inputs if i["type"] == "image"]
        local = [i["path"] for i in inputs if i["type"] == "localImage"]
        await emit(ev.user_message(text, images, local))

    def request_body(self, output_schema: Any = None) -> dict[str, Any]:
        s = self.settings
        reasoning = None
        if _models_with_reasoning(s.model) or s.effort is not None:
            reasoning = {"effort": s.effort or "medium", "summary": s.summary or "auto"}
        body: dict[str, Any] = {
            "model": s.model,
            "instructions": self.base_instructions,
            "input": list(self.history),
            "tools": [],
            "tool_choice": "auto",
            "parallel_tool_calls": False,
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

    def turn_context(self) -> dict[str, Any]:
        s = self.settings
        return {
            "cwd": str(s.cwd),
            "approval_policy": s.approval_policy,
            "sandbox_policy": {"type": s.sandbox_mode()},
            "model": s.model,
            "effort": s.effort,
            "summary": s.summary or "auto",
        }

    async def _sampling_loop(self, turn: ActiveTurn, output_schema: Any) -> str | None:
        last_message: str | None = None
        while True:
            step = await self._sample(turn, output_schema)
            if step.last_message is not None:
                last_message = step.last_message
            if step.calls:
                outputs = [self._unsupported_call(call) for call in step.calls]
                self.history.extend(outputs)
                self.recorder.record_items(outputs)
            elif not self._take_steered_input(turn):
                return last_message

    async def _sample(self, turn: ActiveTurn, output_schema: Any) -> _Step:
        """One model request, retried like the reference when the stream breaks."""
        retries = 0
        while True:
            self.recorder.record_turn_context(self.turn_context())
            step = _Step(self, turn)
            try:
                async for event in self.model_stream(self.request_body(output_schema), session_id=self.id):
                    await step.handle(event)
                return step
            except mc.ModelError as exc:
                if not exc.retryable or retries >= self.stream_max_retries:
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

    def steer(self, inputs: list[dict[str, Any]]) -> None:
        """Input sent while a turn runs joins that turn, as the reference does."""
        self._steered.append(user_input_to_response_item(inputs, self.settings.cwd))

    def _take_steered_input(self, turn: ActiveTurn) -> bool:
        if not self._steered:
            return False
        items, self._steered = self._steered, []
        self.history.extend(items)
        self.recorder.record_items(items)
        return True

    def _unsupported_call(self, call: dict[str, Any]) -> dict[str, Any]:
        # Tool execution lands with the tools issue; until then the model learns the tool is not there.
        name = call.get("name", "")
        output = f"unsupported call: {name}"
        if call.get("type") == "custom_tool_call":
            return {"type": "custom_tool_call_output", "call_id": call.get("call_id"), "output": output}
        return {"type": "function_call_output", "call_id": call.get("call_id"), "output": output}


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
        thread.history.append(item)
        thread.recorder.record_items([item])
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
        elif kind in ("function_call", "custom_tool_call"):
            self.calls.append(item)


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


def _add_usage(info: dict[str, Any] | None, usage: Mapping[str, Any]) -> dict[str, Any]:
    total = dict(info["total_token_usage"]) if info else dict.fromkeys(usage, 0)
    for key, value in usage.items():
        total[key] = total.get(key, 0) + value
    return {
        "total_token_usage": total,
        "last_token_usage": dict(usage),
        "model_context_window": info["model_context_window"] if info else None,
    }
