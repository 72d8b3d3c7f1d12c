"""Constructors for the internal event stream: the schema's EventMsg values, one place for their shapes.

A thread emits these; the app-server layer turns each into the legacy ``codex/event/*`` notification and
its v2 projection, and the rollout keeps the ones the reference persists.
"""

from __future__ import annotations

import base64
from typing import Any

EventMsg = dict[str, Any]

# The event_msg types the reference writes to rollouts; the rest exist only on the wire.
PERSISTED_EVENT_TYPES = frozenset(
    {
        "user_message",
        "agent_message",
        "agent_reasoning",
        "agent_reasoning_raw_content",
        "token_count",
        "entered_review_mode",
        "exited_review_mode",
        "thread_rolled_back",
        "undo_completed",
        "turn_aborted",
        "context_compacted",
    }
)


def task_started(collaboration_mode_kind: str = "custom") -> EventMsg:
    return {
        "type": "task_started",
        "model_context_window": None,
        "collaboration_mode_kind": collaboration_mode_kind,
    }


def task_complete(last_agent_message: str | None) -> EventMsg:
    return {"type": "task_complete", "last_agent_message": last_agent_message}


def turn_aborted(reason: str = "interrupted") -> EventMsg:
    return {"type": "turn_aborted", "reason": reason}


def item_started(thread_id: str, turn_id: str, item: dict[str, Any]) -> EventMsg:
    return {"type": "item_started", "thread_id": thread_id, "turn_id": turn_id, "item": item}


def item_completed(thread_id: str, turn_id: str, item: dict[str, Any]) -> EventMsg:
    return {"type": "item_completed", "thread_id": thread_id, "turn_id": turn_id, "item": item}


def user_message(message: str, images: list[str], local_images: list[str]) -> EventMsg:
    return {
        "type": "user_message",
        "message": message,
        "images": images,
        "local_images": local_images,
        "text_elements": [],
    }


def agent_message_content_delta(thread_id: str, turn_id: str, item_id: str, delta: str) -> EventMsg:
    return {
        "type": "agent_message_content_delta",
        "thread_id": thread_id,
        "turn_id": turn_id,
        "item_id": item_id,
        "delta": delta,
    }


def agent_message_delta(delta: str) -> EventMsg:
    return {"type": "agent_message_delta", "delta": delta}


def agent_message(message: str) -> EventMsg:
    return {"type": "agent_message", "message": message}


def reasoning_section_break(item_id: str, summary_index: int) -> EventMsg:
    return {"type": "agent_reasoning_section_break", "item_id": item_id, "summary_index": summary_index}


def reasoning_content_delta(
    thread_id: str, turn_id: str, item_id: str, delta: str, summary_index: int
) -> EventMsg:
    return {
        "type": "reasoning_content_delta",
        "thread_id": thread_id,
        "turn_id": turn_id,
        "item_id": item_id,
        "delta": delta,
        "summary_index": summary_index,
    }


def agent_reasoning_delta(delta: str) -> EventMsg:
    return {"type": "agent_reasoning_delta", "delta": delta}


def reasoning_raw_content_delta(
    thread_id: str, turn_id: str, item_id: str, delta: str, content_index: int
) -> EventMsg:
    return {
        "type": "reasoning_raw_content_delta",
        "thread_id": thread_id,
        "turn_id": turn_id,
        "item_id": item_id,
        "delta": delta,
        "content_index": content_index,
    }


def agent_reasoning_raw_content_delta(delta: str) -> EventMsg:
    return {"type": "agent_reasoning_raw_content_delta", "delta": delta}


def agent_reasoning(text: str) -> EventMsg:
    return {"type": "agent_reasoning", "text": text}


def token_count(info: dict[str, Any] | None, rate_limits: dict[str, Any] | None) -> EventMsg:
    return {"type": "token_count", "info": info, "rate_limits": rate_limits}


def error(message: str, codex_error_info: Any) -> EventMsg:
    return {"type": "error", "message": message, "codex_error_info": codex_error_info}


def stream_error(message: str, codex_error_info: Any, additional_details: str | None = None) -> EventMsg:
    return {
        "type": "stream_error",
        "message": message,
        "codex_error_info": codex_error_info,
        "additional_details": additional_details,
    }


def thread_rolled_back(num_turns: int) -> EventMsg:
    return {"type": "thread_rolled_back", "num_turns": num_turns}


def thread_name_updated(thread_id: str, name: str | None) -> EventMsg:
    return {"type": "thread_name_updated", "thread_id": thread_id, "thread_name": name}


def mcp_startup_complete() -> EventMsg:
    return {"type": "mcp_startup_complete", "ready": [], "failed": [], "cancelled": []}


class Base64Chunk(str):
    """The base64 text of some bytes, which also keeps the bytes (``raw``).

    Command output travels base64-encoded in ``exec_command_output_delta`` (as legacy clients get it)
    while its v2 projection needs the bytes back: kept here, a stream of tens of MiB is not decoded
    again chunk by chunk. Everywhere else it is an ordinary string.
    """

    raw: bytes

    @classmethod
    def of(cls, data: bytes) -> Base64Chunk:
        chunk = cls(base64.b64encode(data).decode("ascii"))
        chunk.raw = data
        return chunk


def chunk_bytes(chunk: str) -> bytes:
    """The bytes of an ``exec_command_output_delta`` chunk (decoded only if it came from elsewhere)."""
    return chunk.raw if isinstance(chunk, Base64Chunk) else base64.b64decode(chunk)


def exec_command_output_delta(call_id: str, stream: str, data: bytes) -> EventMsg:
    return {
        "type": "exec_command_output_delta",
        "call_id": call_id,
        "stream": stream,
        "chunk": Base64Chunk.of(data),
    }


def warning(message: str) -> EventMsg:
    return {"type": "warning", "message": message}


def deprecation_notice(summary: str, details: str | None = None) -> EventMsg:
    # Without details the reference leaves the field out of the legacy event (v2 sends it as null).
    msg: EventMsg = {"type": "deprecation_notice", "summary": summary}
    if details is not None:
        msg["details"] = details
    return msg


def entered_review_mode(target: dict[str, Any], user_facing_hint: str) -> EventMsg:
    return {"type": "entered_review_mode", "target": target, "user_facing_hint": user_facing_hint}


def exited_review_mode(review_output: dict[str, Any] | None) -> EventMsg:
    return {"type": "exited_review_mode", "review_output": review_output}
