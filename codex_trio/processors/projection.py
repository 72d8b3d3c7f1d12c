"""From a thread's internal event stream to what a subscribed client receives.

Every internal event is one of the schema's EventMsg values (a snake_case dict with a "type"). The
server sends it first as the legacy notification ``codex/event/<type>`` (``{id, msg,
conversationId}``), then as its v2 projection: zero or more v2 notifications, in the order and shapes
of the reference app-server (Codex CLI 0.94.0, ``bespoke_event_handling.rs`` and the conversions of
``app-server-protocol`` v2).

The projection keeps a little state per thread (:class:`ProjectionState`): the error recorded for the
running turn, so ``task_complete`` can report a failed turn, and which call ids are file changes, so
``exec_command_output_delta`` (shared by shell and apply_patch) becomes the right delta notification.
Because of that state, :func:`project` (or :func:`v2_notifications`) must run exactly once per event
per thread, whatever the number of connections; connections that opted out of some methods filter
the result.

Request handlers, not this module, send responses, ``thread/started``, ``turn/started``, and the
approval server requests; :func:`approval_request` and :func:`approval_completion` build the
messages of the approval flow so those handlers match the reference too. Where the reference
interleaves handler output with a projection (seen in its captures):

- ``turn_aborted``: the legacy notification, then the ``{}`` responses to pending turn/interrupt
  requests, then ``turn/completed`` (so send :func:`legacy_notification` and
  :func:`v2_notifications` separately there);
- ``exec_approval_request`` / ``apply_patch_approval_request``: the projection (an item/started
  for a patch), then the server request; after a refusal, :func:`approval_completion` right away;
- ``thread_rolled_back``: the legacy notification, then the thread/rollback response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict

from ..core import events as ev
from ..core.parse_command import shlex_join
from ..core.review import render_review_output, user_facing_hint
from ..protocol.accounts import RateLimitSnapshot, RateLimitWindow, used_percent_to_v2
from ..protocol.v2 import Turn, TurnError

JsonObject = dict[str, Any]
# (method, params) of one outgoing notification.
Notification = tuple[str, JsonObject]

LEGACY_EVENT_PREFIX: Final = "codex/event/"


class LegacyEventParams(TypedDict):
    id: str
    msg: JsonObject
    conversationId: str


class TokenUsageBreakdown(TypedDict):
    totalTokens: int
    inputTokens: int
    cachedInputTokens: int
    outputTokens: int
    reasoningOutputTokens: int


class ThreadTokenUsage(TypedDict):
    total: TokenUsageBreakdown
    last: TokenUsageBreakdown
    modelContextWindow: int | None


class FileUpdateChange(TypedDict):
    path: str
    kind: JsonObject
    diff: str


CommandExecutionStatus = Literal["inProgress", "completed", "failed", "declined"]
PatchApplyStatus = Literal["inProgress", "completed", "failed", "declined"]


@dataclass
class ProjectionState:
    """Per-thread projection state; lives as long as the thread is loaded."""

    thread_id: str
    # The error of the running turn (v2 TurnError); set by `error`, consumed by task_complete.
    last_error: TurnError | None = None
    # Call ids whose item/started was a fileChange: their output deltas are file-change deltas,
    # and a second begin (approval request, then patch_apply_begin) starts no second item.
    file_change_started: set[str] = field(default_factory=set)

    def _end_turn(self) -> TurnError | None:
        error = self.last_error
        self.last_error = None
        self.file_change_started.clear()
        return error


# ---------------------------------------------------------------------------------------------
# Entry points


def project(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    """Notifications for one event, in order: the legacy one first, then the v2 ones.

    ``turn_id`` is the id of the Event (the submission/turn id; "" for thread-level events such as
    mcp_startup_complete)."""
    return [legacy_notification(state.thread_id, turn_id, msg), *v2_notifications(state, turn_id, msg)]


def legacy_notification(thread_id: str, turn_id: str, msg: Mapping[str, Any]) -> Notification:
    """``codex/event/<type>`` with the event as the reference serializes its Event, plus
    ``conversationId``."""
    params: LegacyEventParams = {"id": turn_id, "msg": dict(msg), "conversationId": thread_id}
    return LEGACY_EVENT_PREFIX + str(msg["type"]), dict(params)


def v2_notifications(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    """The v2 projection of one event (possibly empty); updates ``state``."""
    handler = _HANDLERS.get(str(msg.get("type")))
    if handler is None:
        return []
    return handler(state, turn_id, msg)


# ---------------------------------------------------------------------------------------------
# Conversion helpers (core, snake_case -> v2, camelCase)

_ERROR_INFO_UNIT: Final[Mapping[str, str]] = {
    "context_window_exceeded": "contextWindowExceeded",
    "usage_limit_exceeded": "usageLimitExceeded",
    "internal_server_error": "internalServerError",
    "unauthorized": "unauthorized",
    "bad_request": "badRequest",
    "thread_rollback_failed": "threadRollbackFailed",
    "sandbox_error": "sandboxError",
    "other": "other",
}
_ERROR_INFO_WITH_STATUS: Final[Mapping[str, str]] = {
    "http_connection_failed": "httpConnectionFailed",
    "response_stream_connection_failed": "responseStreamConnectionFailed",
    "response_stream_disconnected": "responseStreamDisconnected",
    "response_too_many_failed_attempts": "responseTooManyFailedAttempts",
}


def codex_error_info_to_v2(info: Any) -> Any:
    """Legacy CodexErrorInfo -> v2: variant names become camelCase, ``http_status_code`` becomes
    ``httpStatusCode``; modelCap keeps its snake_case ``reset_after_seconds`` as the reference
    does. None stays None."""
    if info is None:
        return None
    if isinstance(info, str):
        try:
            return _ERROR_INFO_UNIT[info]
        except KeyError:
            raise ValueError(f"unknown CodexErrorInfo {info!r}") from None
    if isinstance(info, Mapping) and len(info) == 1:
        ((name, body),) = info.items()
        if name in _ERROR_INFO_WITH_STATUS and isinstance(body, Mapping):
            return {_ERROR_INFO_WITH_STATUS[name]: {"httpStatusCode": body.get("http_status_code")}}
        if name == "model_cap" and isinstance(body, Mapping):
            return {
                "modelCap": {
                    "model": body["model"],
                    "reset_after_seconds": body.get("reset_after_seconds"),
                }
            }
    raise ValueError(f"unknown CodexErrorInfo {info!r}")


def turn_error(message: str, codex_error_info: Any, additional_details: str | None = None) -> TurnError:
    """A v2 TurnError from the fields of a legacy error/stream_error event."""
    return {
        "message": message,
        "codexErrorInfo": codex_error_info_to_v2(codex_error_info),
        "additionalDetails": additional_details,
    }


def _token_breakdown(usage: Mapping[str, Any]) -> TokenUsageBreakdown:
    return {
        "totalTokens": usage["total_tokens"],
        "inputTokens": usage["input_tokens"],
        "cachedInputTokens": usage["cached_input_tokens"],
        "outputTokens": usage["output_tokens"],
        "reasoningOutputTokens": usage["reasoning_output_tokens"],
    }


def token_usage_to_v2(info: Mapping[str, Any]) -> ThreadTokenUsage:
    """Legacy TokenUsageInfo (token_count ``info``) -> v2 ThreadTokenUsage."""
    return {
        "total": _token_breakdown(info["total_token_usage"]),
        "last": _token_breakdown(info["last_token_usage"]),
        "modelContextWindow": info.get("model_context_window"),
    }


round_half_away_from_zero = used_percent_to_v2


def _rate_limit_window(window: Mapping[str, Any] | None) -> RateLimitWindow | None:
    if window is None:
        return None
    return {
        # The v2 field is an i32: the reference rounds the f64 percentage with f64::round.
        "usedPercent": round_half_away_from_zero(float(window["used_percent"])),
        "windowDurationMins": window.get("window_minutes"),
        "resetsAt": window.get("resets_at"),
    }


def rate_limits_to_v2(snapshot: Mapping[str, Any]) -> RateLimitSnapshot:
    """Legacy RateLimitSnapshot (token_count ``rate_limits``) -> v2 RateLimitSnapshot."""
    credits = snapshot.get("credits")
    return {
        "primary": _rate_limit_window(snapshot.get("primary")),
        "secondary": _rate_limit_window(snapshot.get("secondary")),
        "credits": None
        if credits is None
        else {
            "hasCredits": credits["has_credits"],
            "unlimited": credits["unlimited"],
            "balance": credits.get("balance"),
        },
        "planType": snapshot.get("plan_type"),
    }


def user_input_to_v2(item: Mapping[str, Any]) -> JsonObject:
    """Core UserInput (snake_case tags) -> v2 UserInput."""
    kind = item.get("type")
    if kind == "text":
        return {"type": "text", "text": item["text"], "text_elements": list(item.get("text_elements", []))}
    if kind == "image":
        return {"type": "image", "url": item["image_url"]}
    if kind == "local_image":
        return {"type": "localImage", "path": item["path"]}
    if kind in ("skill", "mention"):
        return {"type": kind, "name": item["name"], "path": item["path"]}
    raise ValueError(f"unsupported user input {kind!r}")


_WEB_SEARCH_ACTION_FIELDS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "search": ("search", ("query", "queries")),
    "open_page": ("openPage", ("url",)),
    "find_in_page": ("findInPage", ("url", "pattern")),
    "other": ("other", ()),
}


def web_search_action_to_v2(action: Mapping[str, Any]) -> JsonObject:
    """Core WebSearchAction (snake_case tags, absent fields) -> v2 (camelCase tags, null fields)."""
    tag, fields = _WEB_SEARCH_ACTION_FIELDS.get(str(action.get("type")), ("other", ()))
    return {"type": tag, **{name: action.get(name) for name in fields}}


def turn_item_to_v2(item: Mapping[str, Any]) -> JsonObject:
    """Core TurnItem (item_started/item_completed ``item``) -> v2 ThreadItem."""
    kind = item.get("type")
    if kind == "UserMessage":
        return {
            "type": "userMessage",
            "id": item["id"],
            "content": [user_input_to_v2(part) for part in item["content"]],
        }
    if kind == "AgentMessage":
        text = "".join(part["text"] for part in item["content"] if part.get("type") == "Text")
        return {"type": "agentMessage", "id": item["id"], "text": text}
    if kind == "Plan":
        return {"type": "plan", "id": item["id"], "text": item["text"]}
    if kind == "Reasoning":
        return {
            "type": "reasoning",
            "id": item["id"],
            "summary": list(item.get("summary_text", [])),
            "content": list(item.get("raw_content", [])),
        }
    if kind == "WebSearch":
        return {
            "type": "webSearch",
            "id": item["id"],
            "query": item["query"],
            "action": web_search_action_to_v2(item["action"]),
        }
    if kind == "ContextCompaction":
        return {"type": "contextCompaction", "id": item["id"]}
    raise ValueError(f"unsupported turn item {kind!r}")


def _command_action(parsed: Mapping[str, Any]) -> JsonObject:
    kind = parsed.get("type")
    if kind == "read":
        return {"type": "read", "command": parsed["cmd"], "name": parsed["name"], "path": parsed["path"]}
    if kind == "list_files":
        return {"type": "listFiles", "command": parsed["cmd"], "path": parsed.get("path")}
    if kind == "search":
        return {
            "type": "search",
            "command": parsed["cmd"],
            "query": parsed.get("query"),
            "path": parsed.get("path"),
        }
    return {"type": "unknown", "command": parsed["cmd"]}


def command_actions_to_v2(parsed_cmd: Sequence[Mapping[str, Any]]) -> list[JsonObject]:
    """Core ParsedCommand list -> v2 CommandAction list (``cmd`` becomes ``command``)."""
    return [_command_action(parsed) for parsed in parsed_cmd]


# The shlex crate's quoting (v1.3, used by the reference's shlex_join): words made only of these
# characters stay bare; otherwise a word is cut into runs, each single- or double-quoted.
def _file_change_diff(change: Mapping[str, Any]) -> str:
    if change["type"] in ("add", "delete"):
        return str(change["content"])
    diff = str(change["unified_diff"])
    move_path = change.get("move_path")
    return f"{diff}\n\nMoved to: {move_path}" if move_path is not None else diff


def _file_change_kind(change: Mapping[str, Any]) -> JsonObject:
    if change["type"] == "update":
        return {"type": "update", "move_path": change.get("move_path")}
    return {"type": change["type"]}


def patch_changes_to_v2(changes: Mapping[str, Mapping[str, Any]]) -> list[FileUpdateChange]:
    """Core ``{path: FileChange}`` -> v2 FileUpdateChange list, sorted by path as the reference
    does (its map has no order of its own)."""
    return [
        {"path": path, "kind": _file_change_kind(change), "diff": _file_change_diff(change)}
        for path, change in sorted(changes.items())
    ]


def duration_to_ms(duration: Mapping[str, Any]) -> int:
    """A serialized Rust Duration ``{secs, nanos}`` -> whole milliseconds (truncated)."""
    return int(duration["secs"]) * 1000 + int(duration["nanos"]) // 1_000_000


_PLAN_STEP_STATUS: Final[Mapping[str, str]] = {
    "pending": "pending",
    "in_progress": "inProgress",
    "completed": "completed",
}

_AGENT_STATUS: Final[Mapping[str, str]] = {
    "pending_init": "pendingInit",
    "running": "running",
    "shutdown": "shutdown",
    "not_found": "notFound",
}


def collab_agent_state_to_v2(status: Any) -> JsonObject:
    """Core AgentStatus -> v2 CollabAgentState ``{status, message}``."""
    if isinstance(status, str):
        return {"status": _AGENT_STATUS[status], "message": None}
    if isinstance(status, Mapping) and "completed" in status:
        return {"status": "completed", "message": status["completed"]}
    if isinstance(status, Mapping) and "errored" in status:
        return {"status": "errored", "message": status["errored"]}
    raise ValueError(f"unknown AgentStatus {status!r}")


def _agent_failed(status: Any) -> bool:
    return status == "not_found" or (isinstance(status, Mapping) and "errored" in status)


# The review texts are the core's (core.review): the same rendering is the reviewed thread's message.
review_hint = user_facing_hint


# ---------------------------------------------------------------------------------------------
# Item builders shared by the event handlers and the approval flow


def command_execution_item(
    call_id: str,
    command: Sequence[str],
    cwd: str,
    parsed_cmd: Sequence[Mapping[str, Any]],
    status: CommandExecutionStatus,
    *,
    process_id: str | None = None,
    aggregated_output: str | None = None,
    exit_code: int | None = None,
    duration_ms: int | None = None,
) -> JsonObject:
    """A v2 commandExecution ThreadItem (the call id is the item id)."""
    return {
        "type": "commandExecution",
        "id": call_id,
        "command": shlex_join(command),
        "cwd": cwd,
        "processId": process_id,
        "status": status,
        "commandActions": command_actions_to_v2(parsed_cmd),
        "aggregatedOutput": aggregated_output,
        "exitCode": exit_code,
        "durationMs": duration_ms,
    }


def file_change_item(
    call_id: str, changes: Mapping[str, Mapping[str, Any]], status: PatchApplyStatus
) -> JsonObject:
    """A v2 fileChange ThreadItem (the call id is the item id)."""
    return {"type": "fileChange", "id": call_id, "changes": patch_changes_to_v2(changes), "status": status}


def _item_started(state: ProjectionState, turn_id: str, item: JsonObject) -> Notification:
    return "item/started", {"item": item, "threadId": state.thread_id, "turnId": turn_id}


def _item_completed(state: ProjectionState, turn_id: str, item: JsonObject) -> Notification:
    return "item/completed", {"item": item, "threadId": state.thread_id, "turnId": turn_id}


def _item_delta(
    state: ProjectionState, method: str, turn_id: str, item_id: str, **extra: Any
) -> Notification:
    return method, {"threadId": state.thread_id, "turnId": turn_id, "itemId": item_id, **extra}


def _turn_completed(
    state: ProjectionState,
    turn_id: str,
    status: Literal["completed", "interrupted", "failed"],
    error: TurnError | None,
) -> Notification:
    turn: Turn = {"id": turn_id, "items": [], "status": status, "error": error}
    return "turn/completed", {"threadId": state.thread_id, "turn": dict(turn)}


# ---------------------------------------------------------------------------------------------
# Approval flow (the server requests are sent by the approval handlers; these build them)


def approval_request(thread_id: str, msg: Mapping[str, Any]) -> tuple[str, JsonObject] | None:
    """(method, params) of the v2 server request an approval event asks for; None for other events.

    The item id is the call id; ``turnId`` is the event's own ``turn_id`` field."""
    kind = msg.get("type")
    if kind == "exec_approval_request":
        return "item/commandExecution/requestApproval", {
            "threadId": thread_id,
            "turnId": msg.get("turn_id", ""),
            "itemId": msg["call_id"],
            "reason": msg.get("reason"),
            "command": shlex_join(msg["command"]),
            "cwd": msg["cwd"],
            "commandActions": command_actions_to_v2(msg["parsed_cmd"]),
            "proposedExecpolicyAmendment": msg.get("proposed_execpolicy_amendment"),
        }
    if kind == "apply_patch_approval_request":
        return "item/fileChange/requestApproval", {
            "threadId": thread_id,
            "turnId": msg.get("turn_id", ""),
            "itemId": msg["call_id"],
            "reason": msg.get("reason"),
            "grantRoot": msg.get("grant_root"),
        }
    return None


def approval_completion(
    state: ProjectionState,
    turn_id: str,
    request_msg: Mapping[str, Any],
    status: Literal["declined", "failed"],
) -> list[Notification]:
    """The item/completed the reference sends as soon as an approval is refused: "declined" for a
    decline or cancel decision, "failed" when the request itself failed. Accepted approvals send
    nothing here (the end event completes the item). The core's end event still follows with its
    own item/completed."""
    kind = request_msg.get("type")
    if kind == "exec_approval_request":
        item = command_execution_item(
            request_msg["call_id"],
            request_msg["command"],
            request_msg["cwd"],
            request_msg["parsed_cmd"],
            status,
        )
        return [_item_completed(state, turn_id, item)]
    if kind == "apply_patch_approval_request":
        state.file_change_started.discard(request_msg["call_id"])
        item = file_change_item(request_msg["call_id"], request_msg["changes"], status)
        return [_item_completed(state, turn_id, item)]
    raise ValueError(f"{kind!r} is no approval request")


# ---------------------------------------------------------------------------------------------
# Per-event handlers


def _on_task_complete(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    error = state._end_turn()
    if error is None:
        return [_turn_completed(state, turn_id, "completed", None)]
    return [_turn_completed(state, turn_id, "failed", error)]


def _on_turn_aborted(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    # An interrupted turn never reports the error it may have recorded.
    state._end_turn()
    return [_turn_completed(state, turn_id, "interrupted", None)]


def _on_error(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    if msg.get("codex_error_info") == "thread_rollback_failed":
        # Answered as the failure of the pending thread/rollback request, not as a notification.
        return []
    error = turn_error(msg["message"], msg.get("codex_error_info"))
    state.last_error = error
    return [
        ("error", {"error": dict(error), "willRetry": False, "threadId": state.thread_id, "turnId": turn_id})
    ]


def _on_stream_error(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    # A retry in progress: reported, but it does not make the turn fail.
    error = turn_error(msg["message"], msg.get("codex_error_info"), msg.get("additional_details"))
    return [
        ("error", {"error": dict(error), "willRetry": True, "threadId": state.thread_id, "turnId": turn_id})
    ]


def _on_token_count(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    out: list[Notification] = []
    info = msg.get("info")
    if info is not None:
        usage = token_usage_to_v2(info)
        out.append(
            (
                "thread/tokenUsage/updated",
                {"threadId": state.thread_id, "turnId": turn_id, "tokenUsage": dict(usage)},
            )
        )
    rate_limits = msg.get("rate_limits")
    if rate_limits is not None:
        out.append(("account/rateLimits/updated", {"rateLimits": dict(rate_limits_to_v2(rate_limits))}))
    return out


def _on_item_started(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    return [_item_started(state, turn_id, turn_item_to_v2(msg["item"]))]


def _on_item_completed(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    return [_item_completed(state, turn_id, turn_item_to_v2(msg["item"]))]


def _on_agent_message_content_delta(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    return [_item_delta(state, "item/agentMessage/delta", turn_id, msg["item_id"], delta=msg["delta"])]


def _on_plan_delta(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    return [_item_delta(state, "item/plan/delta", turn_id, msg["item_id"], delta=msg["delta"])]


def _on_reasoning_content_delta(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    return [
        _item_delta(
            state,
            "item/reasoning/summaryTextDelta",
            turn_id,
            msg["item_id"],
            delta=msg["delta"],
            summaryIndex=msg["summary_index"],
        )
    ]


def _on_reasoning_raw_content_delta(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    return [
        _item_delta(
            state,
            "item/reasoning/textDelta",
            turn_id,
            msg["item_id"],
            delta=msg["delta"],
            contentIndex=msg["content_index"],
        )
    ]


def _on_reasoning_section_break(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    return [
        _item_delta(
            state,
            "item/reasoning/summaryPartAdded",
            turn_id,
            msg["item_id"],
            summaryIndex=msg["summary_index"],
        )
    ]


def _on_exec_command_begin(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    item = command_execution_item(
        msg["call_id"],
        msg["command"],
        msg["cwd"],
        msg["parsed_cmd"],
        "inProgress",
        process_id=msg.get("process_id"),
    )
    return [_item_started(state, turn_id, item)]


def _decode_chunk(chunk: str) -> str:
    # The legacy event carries the raw bytes base64-encoded; v2 sends them as UTF-8 text, with
    # invalid sequences replaced (String::from_utf8_lossy).
    return ev.chunk_bytes(chunk).decode("utf-8", errors="replace")


def _on_exec_command_output_delta(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    call_id = msg["call_id"]
    # apply_patch reports its output through the same event; its item is a fileChange.
    method = (
        "item/fileChange/outputDelta"
        if call_id in state.file_change_started
        else "item/commandExecution/outputDelta"
    )
    return [_item_delta(state, method, turn_id, call_id, delta=_decode_chunk(msg["chunk"]))]


def _on_terminal_interaction(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    return [
        _item_delta(
            state,
            "item/commandExecution/terminalInteraction",
            turn_id,
            msg["call_id"],
            processId=msg["process_id"],
            stdin=msg["stdin"],
        )
    ]


def _on_exec_command_end(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    exit_code = int(msg["exit_code"])
    aggregated = msg.get("aggregated_output", "")
    item = command_execution_item(
        msg["call_id"],
        msg["command"],
        msg["cwd"],
        msg["parsed_cmd"],
        "completed" if exit_code == 0 else "failed",
        process_id=msg.get("process_id"),
        aggregated_output=aggregated or None,
        exit_code=exit_code,
        duration_ms=duration_to_ms(msg["duration"]),
    )
    return [_item_completed(state, turn_id, item)]


def _start_file_change(
    state: ProjectionState, turn_id: str, call_id: str, changes: Mapping[str, Mapping[str, Any]]
) -> list[Notification]:
    # The approval request and the begin event both announce the patch; one item/started only.
    if call_id in state.file_change_started:
        return []
    state.file_change_started.add(call_id)
    return [_item_started(state, turn_id, file_change_item(call_id, changes, "inProgress"))]


def _on_patch_apply_begin(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    return _start_file_change(state, turn_id, msg["call_id"], msg["changes"])


def _on_apply_patch_approval_request(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    return _start_file_change(state, turn_id, msg["call_id"], msg["changes"])


def _on_patch_apply_end(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    state.file_change_started.discard(msg["call_id"])
    status: PatchApplyStatus = "completed" if msg["success"] else "failed"
    return [_item_completed(state, turn_id, file_change_item(msg["call_id"], msg["changes"], status))]


def _on_turn_diff(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    return [
        ("turn/diff/updated", {"threadId": state.thread_id, "turnId": turn_id, "diff": msg["unified_diff"]})
    ]


def _on_plan_update(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    plan = [{"step": step["step"], "status": _PLAN_STEP_STATUS[step["status"]]} for step in msg["plan"]]
    return [
        (
            "turn/plan/updated",
            {
                "threadId": state.thread_id,
                "turnId": turn_id,
                "explanation": msg.get("explanation"),
                "plan": plan,
            },
        )
    ]


def _on_thread_name_updated(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    params: JsonObject = {"threadId": msg["thread_id"]}
    # The reference omits a cleared name rather than sending null.
    if msg.get("thread_name") is not None:
        params["threadName"] = msg["thread_name"]
    return [("thread/name/updated", params)]


def _on_context_compacted(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    return [("thread/compacted", {"threadId": state.thread_id, "turnId": turn_id})]


def _on_deprecation_notice(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    return [("deprecationNotice", {"summary": msg["summary"], "details": msg.get("details")})]


def _on_raw_response_item(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    return [
        ("rawResponseItem/completed", {"threadId": state.thread_id, "turnId": turn_id, "item": msg["item"]})
    ]


def _started_and_completed(state: ProjectionState, turn_id: str, item: JsonObject) -> list[Notification]:
    return [_item_started(state, turn_id, item), _item_completed(state, turn_id, dict(item))]


def _on_view_image(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    return _started_and_completed(
        state, turn_id, {"type": "imageView", "id": msg["call_id"], "path": msg["path"]}
    )


def _on_entered_review_mode(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    hint = msg.get("user_facing_hint")
    review = hint if hint is not None else review_hint(msg["target"])
    # The review items take the turn id as their item id.
    return _started_and_completed(
        state, turn_id, {"type": "enteredReviewMode", "id": turn_id, "review": review}
    )


def _on_exited_review_mode(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    review = render_review_output(msg.get("review_output"))
    return _started_and_completed(
        state, turn_id, {"type": "exitedReviewMode", "id": turn_id, "review": review}
    )


def _mcp_item(msg: Mapping[str, Any], status: str) -> JsonObject:
    invocation = msg["invocation"]
    arguments = invocation.get("arguments")
    return {
        "type": "mcpToolCall",
        "id": msg["call_id"],
        "server": invocation["server"],
        "tool": invocation["tool"],
        "status": status,
        "arguments": arguments,
        "result": None,
        "error": None,
        "durationMs": None,
    }


def _on_mcp_tool_call_begin(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    return [_item_started(state, turn_id, _mcp_item(msg, "inProgress"))]


def _on_mcp_tool_call_end(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    # The core serializes Result<CallToolResult, String> as {"Ok": …} or {"Err": "…"}.
    result = msg["result"]
    if isinstance(result, Mapping) and "Ok" in result:
        ok = result["Ok"]
        success = not bool(ok.get("isError") or False)
        item = _mcp_item(msg, "completed" if success else "failed")
        item["result"] = {
            "content": list(ok.get("content", [])),
            "structuredContent": ok.get("structuredContent"),
        }
    else:
        message = result.get("Err") if isinstance(result, Mapping) else result
        item = _mcp_item(msg, "failed")
        item["error"] = {"message": str(message)}
    item["durationMs"] = duration_to_ms(msg["duration"])
    return [_item_completed(state, turn_id, item)]


def _collab_item(
    msg: Mapping[str, Any],
    tool: str,
    status: str,
    receivers: list[str],
    prompt: str | None,
    states: JsonObject,
) -> JsonObject:
    return {
        "type": "collabAgentToolCall",
        "id": msg["call_id"],
        "tool": tool,
        "status": status,
        "senderThreadId": msg["sender_thread_id"],
        "receiverThreadIds": receivers,
        "prompt": prompt,
        "agentsStates": states,
    }


def _on_collab_spawn_begin(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    item = _collab_item(msg, "spawnAgent", "inProgress", [], msg["prompt"], {})
    return [_item_started(state, turn_id, item)]


def _on_collab_spawn_end(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    new_thread = msg.get("new_thread_id")
    agent_status = msg["status"]
    failed = _agent_failed(agent_status) or new_thread is None
    receivers = [] if new_thread is None else [new_thread]
    states = {} if new_thread is None else {new_thread: collab_agent_state_to_v2(agent_status)}
    item = _collab_item(
        msg, "spawnAgent", "failed" if failed else "completed", receivers, msg["prompt"], states
    )
    return [_item_completed(state, turn_id, item)]


def _on_collab_interaction_begin(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    item = _collab_item(msg, "sendInput", "inProgress", [msg["receiver_thread_id"]], msg["prompt"], {})
    return [_item_started(state, turn_id, item)]


def _on_collab_interaction_end(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    receiver = msg["receiver_thread_id"]
    status = "failed" if _agent_failed(msg["status"]) else "completed"
    item = _collab_item(
        msg,
        "sendInput",
        status,
        [receiver],
        msg["prompt"],
        {receiver: collab_agent_state_to_v2(msg["status"])},
    )
    return [_item_completed(state, turn_id, item)]


def _on_collab_waiting_begin(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    item = _collab_item(msg, "wait", "inProgress", list(msg["receiver_thread_ids"]), None, {})
    return [_item_started(state, turn_id, item)]


def _on_collab_waiting_end(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    statuses: Mapping[str, Any] = msg["statuses"]
    status = "failed" if any(_agent_failed(s) for s in statuses.values()) else "completed"
    item = _collab_item(
        msg,
        "wait",
        status,
        list(statuses),
        None,
        {thread: collab_agent_state_to_v2(s) for thread, s in statuses.items()},
    )
    return [_item_completed(state, turn_id, item)]


def _on_collab_close_begin(
    state: ProjectionState, turn_id: str, msg: Mapping[str, Any]
) -> list[Notification]:
    item = _collab_item(msg, "closeAgent", "inProgress", [msg["receiver_thread_id"]], None, {})
    return [_item_started(state, turn_id, item)]


def _on_collab_close_end(state: ProjectionState, turn_id: str, msg: Mapping[str, Any]) -> list[Notification]:
    receiver = msg["receiver_thread_id"]
    status = "failed" if _agent_failed(msg["status"]) else "completed"
    item = _collab_item(
        msg, "closeAgent", status, [receiver], None, {receiver: collab_agent_state_to_v2(msg["status"])}
    )
    return [_item_completed(state, turn_id, item)]


_HANDLERS: Final = {
    "task_complete": _on_task_complete,
    "turn_aborted": _on_turn_aborted,
    "error": _on_error,
    "stream_error": _on_stream_error,
    "token_count": _on_token_count,
    "item_started": _on_item_started,
    "item_completed": _on_item_completed,
    "agent_message_content_delta": _on_agent_message_content_delta,
    "plan_delta": _on_plan_delta,
    "reasoning_content_delta": _on_reasoning_content_delta,
    "reasoning_raw_content_delta": _on_reasoning_raw_content_delta,
    "agent_reasoning_section_break": _on_reasoning_section_break,
    "exec_command_begin": _on_exec_command_begin,
    "exec_command_output_delta": _on_exec_command_output_delta,
    "terminal_interaction": _on_terminal_interaction,
    "exec_command_end": _on_exec_command_end,
    "apply_patch_approval_request": _on_apply_patch_approval_request,
    "patch_apply_begin": _on_patch_apply_begin,
    "patch_apply_end": _on_patch_apply_end,
    "turn_diff": _on_turn_diff,
    "plan_update": _on_plan_update,
    "thread_name_updated": _on_thread_name_updated,
    "context_compacted": _on_context_compacted,
    "deprecation_notice": _on_deprecation_notice,
    "raw_response_item": _on_raw_response_item,
    "view_image_tool_call": _on_view_image,
    "entered_review_mode": _on_entered_review_mode,
    "exited_review_mode": _on_exited_review_mode,
    "mcp_tool_call_begin": _on_mcp_tool_call_begin,
    "mcp_tool_call_end": _on_mcp_tool_call_end,
    "collab_agent_spawn_begin": _on_collab_spawn_begin,
    "collab_agent_spawn_end": _on_collab_spawn_end,
    "collab_agent_interaction_begin": _on_collab_interaction_begin,
    "collab_agent_interaction_end": _on_collab_interaction_end,
    "collab_waiting_begin": _on_collab_waiting_begin,
    "collab_waiting_end": _on_collab_waiting_end,
    "collab_close_begin": _on_collab_close_begin,
    "collab_close_end": _on_collab_close_end,
}

# Event types whose v2 projection is empty: the legacy notification is all a client gets.
LEGACY_ONLY_EVENT_TYPES: Final = frozenset(
    {
        "warning",
        "task_started",
        "agent_message",
        "user_message",
        "agent_message_delta",
        "agent_reasoning",
        "agent_reasoning_delta",
        "agent_reasoning_raw_content",
        "agent_reasoning_raw_content_delta",
        "session_configured",
        "mcp_startup_update",
        "mcp_startup_complete",
        "web_search_begin",
        "web_search_end",
        "exec_approval_request",
        "request_user_input",
        "dynamic_tool_call_request",
        "elicitation_request",
        "background_event",
        "undo_started",
        "undo_completed",
        "thread_rolled_back",
        "get_history_entry_response",
        "mcp_list_tools_response",
        "list_custom_prompts_response",
        "list_skills_response",
        "shutdown_complete",
        "skills_update_available",
    }
)

# Event types with a v2 projection (possibly empty for some payloads, e.g. a token_count without
# info nor rate limits).
PROJECTED_EVENT_TYPES: Final = frozenset(_HANDLERS)
