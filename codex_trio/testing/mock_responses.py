"""A scriptable local stand-in for the OpenAI Responses API, served over HTTP/1.1 on trio.

It answers ``POST {prefix}/responses`` with a Server-Sent-Events stream shaped like the real API's
(``event: <type>`` + ``data: <json>``, with ``sequence_number``, item ids, ``output_index`` and
``content_index``), so the same mock drives codex-trio's end-to-end tests, the offline demo and
benchmarks that also run the reference server against it.

Usage::

    async with open_mock_responses(text("Hello there"), function_call("shell", {...})) as mock:
        ...  # point the provider's base_url at mock.base_url
        first = (await mock.wait_for_requests(1, path="responses"))[0]
        assert first.last_user_text() == "hi"

Each ``POST /responses`` consumes one queued :class:`Script` (or responder callable); once the queue is
empty the ``default`` responder answers (by default a friendly echo of the last user message, streamed
word by word). ``python -m codex_trio.testing.mock_responses`` serves that default until killed.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import secrets
import ssl
import sys
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal
from urllib.parse import parse_qs

import h11
import trio

if sys.version_info < (3, 11):
    # Only present on 3.10, where trio depends on it.
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

JsonObject = dict[str, Any]

DEFAULT_PREFIX = "/v1"
DEFAULT_MODEL = "mock-model"
# Writes are grouped up to this size: large enough that a 5,000-delta turn is a handful of
# syscalls, small enough that a reader sees the first events without waiting for the whole body.
_BATCH_BYTES = 64 * 1024
_READ_BYTES = 64 * 1024
# Non-ASCII text goes out as raw UTF-8 rather than \u escapes, so clients are exercised on
# multi-byte characters split across reads.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Recorded requests


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the mock received it."""

    method: str
    path: str
    # Raw query string without the "?" ("" when absent).
    query: str
    # Lower-cased names; repeated headers are joined with ", ".
    headers: dict[str, str]
    # The JSON body parsed, or None when the body is empty or not JSON.
    body: Any
    raw_body: bytes = field(repr=False)

    @property
    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def input_items(self) -> list[JsonObject]:
        """The ``input`` array of a Responses request body ([] when absent)."""
        if not isinstance(self.body, dict):
            return []
        items = self.body.get("input")
        if not isinstance(items, list):
            return []
        return [item for item in items if isinstance(item, dict)]

    def message_texts(self, role: str) -> list[str]:
        """Text spans of every ``message`` input item with ``role``, in order."""
        texts: list[str] = []
        for item in self.input_items():
            if item.get("type", "message") != "message" or item.get("role") != role:
                continue
            content = item.get("content")
            if isinstance(content, str):
                texts.append(content)
                continue
            if not isinstance(content, list):
                continue
            for span in content:
                if (
                    isinstance(span, dict)
                    and span.get("type") in ("input_text", "output_text")
                    and isinstance(span.get("text"), str)
                ):
                    texts.append(span["text"])
        return texts

    def last_user_text(self) -> str | None:
        """The text of the last user message: what the user typed for this turn."""
        texts = self.message_texts("user")
        return texts[-1] if texts else None

    def call_output(self, call_id: str) -> JsonObject | None:
        """The ``function_call_output``/``custom_tool_call_output`` item answering ``call_id``."""
        for item in self.input_items():
            if item.get("call_id") == call_id and item.get("type") in (
                "function_call_output",
                "custom_tool_call_output",
            ):
                return item
        return None


# --------------------------------------------------------------------------------------------
# Scripts


@dataclass(frozen=True)
class Usage:
    """Token usage reported in ``response.completed`` (``total_tokens`` defaults to in + out)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int | None = None

    def to_json(self) -> JsonObject:
        total = self.total_tokens
        if total is None:
            total = self.input_tokens + self.output_tokens
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": total,
        }


@dataclass(frozen=True)
class MessageItem:
    """An assistant ``message`` streamed as ``response.output_text.delta`` events."""

    chunks: tuple[str, ...]
    # None: a fresh "msg_…" id for every response rendered from this item.
    item_id: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass(frozen=True)
class FunctionCallItem:
    """A ``function_call`` whose ``arguments`` stream as ``function_call_arguments.delta``."""

    name: str
    arguments: str
    call_id: str
    chunks: tuple[str, ...]
    item_id: str | None = None


@dataclass(frozen=True)
class CustomToolCallItem:
    """A freeform ``custom_tool_call`` (apply_patch) whose ``input`` streams in deltas."""

    name: str
    input: str
    call_id: str
    chunks: tuple[str, ...]
    item_id: str | None = None


@dataclass(frozen=True)
class ReasoningItem:
    """A ``reasoning`` item: summary parts (each a list of deltas) and raw reasoning text."""

    summary_parts: tuple[tuple[str, ...], ...]
    text_deltas: tuple[str, ...] = ()
    item_id: str | None = None
    # None: an opaque blob is invented when the request asked for "reasoning.encrypted_content".
    encrypted_content: str | None = None


OutputItem = MessageItem | FunctionCallItem | CustomToolCallItem | ReasoningItem
Outcome = Literal["completed", "failed", "incomplete"]
Cut = Literal["stall", "close"]


@dataclass(frozen=True)
class Script:
    """What the mock does for one ``POST /responses``. Build it with the functions below."""

    items: tuple[OutputItem, ...] = ()
    outcome: Outcome = "completed"
    # ``response.error`` of a failed response.
    error: JsonObject | None = None
    incomplete_reason: str = "max_output_tokens"
    # "auto": estimated from the request and the deltas; None: no usage in the final event.
    usage: Usage | Literal["auto"] | None = "auto"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    # A plain (non-SSE) body, for HTTP errors.
    body: bytes | None = None
    initial_delay: float = 0.0
    delay_per_event: float = 0.0
    # "stall": after ``cut_after`` events, hold the stream open until the client goes away.
    # "close": after ``cut_after`` events, drop the connection mid-body.
    cut: Cut | None = None
    cut_after: int = 0
    response_id: str | None = None

    def replace(self, **changes: Any) -> Script:
        return dataclasses.replace(self, **changes)

    def with_headers(self, headers: Mapping[str, str]) -> Script:
        """A copy that also sends ``headers`` (e.g. from :func:`rate_limit_headers`)."""
        return dataclasses.replace(self, headers=self.headers + tuple(headers.items()))

    def with_delays(
        self, *, initial_delay: float | None = None, delay_per_event: float | None = None
    ) -> Script:
        return dataclasses.replace(
            self,
            initial_delay=self.initial_delay if initial_delay is None else initial_delay,
            delay_per_event=self.delay_per_event if delay_per_event is None else delay_per_event,
        )


Responder = Callable[[RecordedRequest], Script]
ScriptOrResponder = Script | Responder


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def _new_call_id() -> str:
    return "call_" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


def split_words(text: str) -> list[str]:
    """Word-sized deltas (each word keeps its trailing whitespace); they join back to ``text``."""
    chunks: list[str] = []
    start = 0
    length = len(text)
    i = 0
    while i < length:
        while i < length and text[i].isspace():
            i += 1
        while i < length and not text[i].isspace():
            i += 1
        while i < length and text[i].isspace():
            i += 1
        chunks.append(text[start:i])
        start = i
    return chunks


def _split_even(text: str, count: int) -> list[str]:
    if count < 1:
        raise ValueError("chunks must be >= 1")
    # A delta cannot be empty, so a short text gives fewer deltas than asked.
    count = min(count, len(text)) or 1
    size, extra = divmod(len(text), count)
    pieces: list[str] = []
    pos = 0
    for index in range(count):
        end = pos + size + (1 if index < extra else 0)
        pieces.append(text[pos:end])
        pos = end
    return pieces


def _chunks(text: str, chunks: int | Sequence[str] | None, default_words: bool) -> tuple[str, ...]:
    if chunks is None:
        if default_words:
            return tuple(split_words(text))
        return (text,) if text else ()
    if isinstance(chunks, int):
        return tuple(_split_even(text, chunks)) if text else ()
    if isinstance(chunks, str):
        raise TypeError("chunks must be an int or a list of strings, not a str")
    pieces = tuple(chunks)
    if "".join(pieces) != text:
        raise ValueError("chunks do not join back to the text")
    return pieces


def _sse_script(
    items: Sequence[OutputItem],
    *,
    usage: Usage | Literal["auto"] | None,
    initial_delay: float,
    delay_per_event: float,
    headers: Mapping[str, str] | None,
    response_id: str | None,
) -> Script:
    return Script(
        items=tuple(items),
        usage=usage,
        initial_delay=initial_delay,
        delay_per_event=delay_per_event,
        headers=tuple((headers or {}).items()),
        response_id=response_id,
    )


def text(
    text: str | None = None,
    *,
    chunks: int | Sequence[str] | None = None,
    item_id: str | None = None,
    usage: Usage | Literal["auto"] | None = "auto",
    initial_delay: float = 0.0,
    delay_per_event: float = 0.0,
    headers: Mapping[str, str] | None = None,
    response_id: str | None = None,
) -> Script:
    """An assistant message. ``chunks``: None = word by word, an int = that many even pieces,
    a list = exactly those deltas (``text`` may then be omitted)."""
    if text is None:
        if chunks is None or isinstance(chunks, (int, str)):
            raise TypeError("text() needs the text, or chunks as a list of deltas")
        text = "".join(chunks)
    item = MessageItem(chunks=_chunks(text, chunks, default_words=True), item_id=item_id)
    return _sse_script(
        [item],
        usage=usage,
        initial_delay=initial_delay,
        delay_per_event=delay_per_event,
        headers=headers,
        response_id=response_id,
    )


def function_call(
    name: str,
    arguments: Mapping[str, Any] | str,
    *,
    call_id: str | None = None,
    item_id: str | None = None,
    chunks: int | Sequence[str] | None = None,
    usage: Usage | Literal["auto"] | None = "auto",
    initial_delay: float = 0.0,
    delay_per_event: float = 0.0,
    headers: Mapping[str, str] | None = None,
    response_id: str | None = None,
) -> Script:
    """A function tool call. A dict ``arguments`` is sent as compact JSON, a str verbatim. The
    ``call_id`` (fresh unless given) is readable as ``script.items[0].call_id``."""
    args = arguments if isinstance(arguments, str) else _JSON.encode(dict(arguments))
    item = FunctionCallItem(
        name=name,
        arguments=args,
        call_id=call_id or _new_call_id(),
        chunks=_chunks(args, chunks, default_words=False),
        item_id=item_id,
    )
    return _sse_script(
        [item],
        usage=usage,
        initial_delay=initial_delay,
        delay_per_event=delay_per_event,
        headers=headers,
        response_id=response_id,
    )


def custom_tool_call(
    name: str,
    input: str,
    *,
    call_id: str | None = None,
    item_id: str | None = None,
    chunks: int | Sequence[str] | None = None,
    usage: Usage | Literal["auto"] | None = "auto",
    initial_delay: float = 0.0,
    delay_per_event: float = 0.0,
    headers: Mapping[str, str] | None = None,
    response_id: str | None = None,
) -> Script:
    """A freeform tool call such as ``custom_tool_call("apply_patch", "*** Begin Patch…")``."""
    item = CustomToolCallItem(
        name=name,
        input=input,
        call_id=call_id or _new_call_id(),
        chunks=_chunks(input, chunks, default_words=False),
        item_id=item_id,
    )
    return _sse_script(
        [item],
        usage=usage,
        initial_delay=initial_delay,
        delay_per_event=delay_per_event,
        headers=headers,
        response_id=response_id,
    )


def reasoning(
    summary_deltas: Sequence[str] = (),
    text_deltas: Sequence[str] = (),
    *,
    summary_parts: Sequence[Sequence[str]] | None = None,
    item_id: str | None = None,
    encrypted_content: str | None = None,
    usage: Usage | Literal["auto"] | None = "auto",
    initial_delay: float = 0.0,
    delay_per_event: float = 0.0,
    headers: Mapping[str, str] | None = None,
    response_id: str | None = None,
) -> Script:
    """A reasoning item. ``summary_deltas`` are the deltas of summary part 0; ``summary_parts``
    gives several parts instead. ``text_deltas`` stream as ``response.reasoning_text.delta``."""
    if isinstance(summary_deltas, str):
        summary_deltas = [summary_deltas]
    if isinstance(text_deltas, str):
        text_deltas = [text_deltas]
    if summary_parts is None:
        parts: tuple[tuple[str, ...], ...] = (tuple(summary_deltas),) if summary_deltas else ()
    else:
        if summary_deltas:
            raise TypeError("give either summary_deltas or summary_parts, not both")
        parts = tuple(((p,) if isinstance(p, str) else tuple(p)) for p in summary_parts)
    item = ReasoningItem(
        summary_parts=parts,
        text_deltas=tuple(text_deltas),
        item_id=item_id,
        encrypted_content=encrypted_content,
    )
    return _sse_script(
        [item],
        usage=usage,
        initial_delay=initial_delay,
        delay_per_event=delay_per_event,
        headers=headers,
        response_id=response_id,
    )


def _merge_items(parts: Sequence[Script]) -> tuple[OutputItem, ...]:
    items: list[OutputItem] = []
    for part in parts:
        if part.body is not None or part.outcome != "completed" or part.cut is not None:
            raise ValueError("only plain output scripts (text, calls, reasoning) can be combined")
        items.extend(part.items)
    return tuple(items)


def _merge_headers(parts: Sequence[Script], extra: Mapping[str, str] | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    for part in parts:
        merged.update(part.headers)
    merged.update(extra or {})
    return merged


def response(
    *parts: Script,
    usage: Usage | Literal["auto"] | None = "auto",
    initial_delay: float = 0.0,
    delay_per_event: float = 0.0,
    headers: Mapping[str, str] | None = None,
    response_id: str | None = None,
) -> Script:
    """One response whose output holds the items of ``parts`` in order, e.g.
    ``response(reasoning(["Thinking"]), text("Done"))`` or several ``function_call``s."""
    return _sse_script(
        _merge_items(parts),
        usage=usage,
        initial_delay=initial_delay,
        delay_per_event=delay_per_event,
        headers=_merge_headers(parts, headers),
        response_id=response_id,
    )


def failed(
    error: Mapping[str, Any] | str,
    *parts: Script,
    initial_delay: float = 0.0,
    delay_per_event: float = 0.0,
    headers: Mapping[str, str] | None = None,
) -> Script:
    """A stream (optionally with the items of ``parts`` first) that ends in ``response.failed``.
    A str is the message of a ``server_error``; a dict is sent as ``response.error`` verbatim,
    e.g. ``{"code": "context_length_exceeded", "message": "…"}``."""
    err = {"code": "server_error", "message": error} if isinstance(error, str) else dict(error)
    return Script(
        items=_merge_items(parts),
        outcome="failed",
        error=err,
        usage=None,
        initial_delay=initial_delay,
        delay_per_event=delay_per_event,
        headers=tuple(_merge_headers(parts, headers).items()),
    )


def incomplete(
    reason: str = "max_output_tokens",
    *parts: Script,
    usage: Usage | Literal["auto"] | None = "auto",
    initial_delay: float = 0.0,
    delay_per_event: float = 0.0,
    headers: Mapping[str, str] | None = None,
) -> Script:
    """A stream that ends in ``response.incomplete`` with ``incomplete_details.reason``."""
    return Script(
        items=_merge_items(parts),
        outcome="incomplete",
        incomplete_reason=reason,
        usage=usage,
        initial_delay=initial_delay,
        delay_per_event=delay_per_event,
        headers=tuple(_merge_headers(parts, headers).items()),
    )


def http_error(
    status: int,
    body: Mapping[str, Any] | str = "",
    *,
    headers: Mapping[str, str] | None = None,
    initial_delay: float = 0.0,
) -> Script:
    """A plain HTTP error answer: a dict body is sent as JSON, a str as text/plain."""
    if isinstance(body, str):
        payload = body.encode()
        content_type = "text/plain; charset=utf-8"
    else:
        payload = _JSON.encode(dict(body)).encode()
        content_type = "application/json"
    all_headers = {"content-type": content_type, **(headers or {})}
    return Script(
        status=status,
        body=payload,
        headers=tuple(all_headers.items()),
        initial_delay=initial_delay,
        usage=None,
    )


def error_body(
    message: str,
    *,
    error_type: str | None = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    **extra: Any,
) -> JsonObject:
    """The API's error envelope ``{"error": {"message", "type", "param", "code", …}}``."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code, **extra}}


def usage_limit_reached(
    *,
    plan_type: str | None = None,
    resets_at: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Script:
    """429 ``usage_limit_reached``: the ChatGPT-plan quota error (no retry in the reference)."""
    extra: JsonObject = {}
    if plan_type is not None:
        extra["plan_type"] = plan_type
    if resets_at is not None:
        extra["resets_at"] = resets_at
    body = error_body("The usage limit has been reached", error_type="usage_limit_reached", **extra)
    return http_error(429, body, headers=headers)


def rate_limit_exceeded(
    message: str = "Rate limit reached. Please try again in 1s.",
    *,
    headers: Mapping[str, str] | None = None,
) -> Script:
    """429 ``rate_limit_exceeded``: retryable throttling."""
    body = error_body(message, error_type="requests", code="rate_limit_exceeded")
    return http_error(429, body, headers=headers)


def _cut(kind: Cut, after_events: int, script: Script | None) -> Script:
    if after_events < 0:
        raise ValueError("after_events must be >= 0")
    base = script if script is not None else text("This reply is cut short before it finishes.")
    if base.body is not None:
        raise ValueError("only streamed scripts can be cut")
    return dataclasses.replace(base, cut=kind, cut_after=after_events)


def stall(after_events: int = 0, script: Script | None = None) -> Script:
    """Send the first ``after_events`` events of ``script`` (a short text by default), then
    hold the stream open, silent, until the client closes it or the mock stops."""
    return _cut("stall", after_events, script)


def close_mid_stream(after_events: int = 0, script: Script | None = None) -> Script:
    """Send the first ``after_events`` events of ``script``, then drop the connection."""
    return _cut("close", after_events, script)


def _header_number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def rate_limit_headers(
    *,
    primary_used_percent: float | None = None,
    primary_window_minutes: int | None = None,
    primary_reset_at: int | None = None,
    primary_reset_after_seconds: int | None = None,
    secondary_used_percent: float | None = None,
    secondary_window_minutes: int | None = None,
    secondary_reset_at: int | None = None,
    secondary_reset_after_seconds: int | None = None,
    credits_has_credits: bool | None = None,
    credits_unlimited: bool | None = None,
    credits_balance: str | None = None,
    limit_id: str = "codex",
    limit_name: str | None = None,
    active_limit: str | None = None,
) -> dict[str, str]:
    """The ``x-codex-*`` rate-limit headers the Codex client reads from every response (the
    ``x-<limit_id>-…`` family for another metered limit). Only given values are sent."""
    prefix = "x-" + limit_id.strip().lower().replace("_", "-")
    values: list[tuple[str, float | int | str | None]] = [
        (f"{prefix}-primary-used-percent", primary_used_percent),
        (f"{prefix}-primary-window-minutes", primary_window_minutes),
        (f"{prefix}-primary-reset-at", primary_reset_at),
        (f"{prefix}-primary-reset-after-seconds", primary_reset_after_seconds),
        (f"{prefix}-secondary-used-percent", secondary_used_percent),
        (f"{prefix}-secondary-window-minutes", secondary_window_minutes),
        (f"{prefix}-secondary-reset-at", secondary_reset_at),
        (f"{prefix}-secondary-reset-after-seconds", secondary_reset_after_seconds),
        (f"{prefix}-limit-name", limit_name),
        ("x-codex-credits-balance", credits_balance),
        ("x-codex-active-limit", active_limit),
    ]
    headers = {
        name: value if isinstance(value, str) else _header_number(value)
        for name, value in values
        if value is not None
    }
    for name, flag in (
        ("x-codex-credits-has-credits", credits_has_credits),
        ("x-codex-credits-unlimited", credits_unlimited),
    ):
        if flag is not None:
            headers[name] = "true" if flag else "false"
    return headers


# --------------------------------------------------------------------------------------------
# The default responder


def friendly_reply(user_text: str | None) -> str:
    if not user_text or not user_text.strip():
        return "Hello! I'm the offline mock model. Send me a message and I'll echo it back."
    return (
        "Hello! I'm the offline mock model, so I can't do real work, "
        f"but I heard you. You said: {user_text.strip()}"
    )


def echo_responder(
    *,
    deltas: int | None = None,
    initial_delay: float = 0.0,
    delay_per_event: float = 0.0,
) -> Responder:
    """Reply with :func:`friendly_reply` to the last user text, one word per delta. With
    ``deltas``, the reply's words are cycled to exactly that many deltas (for benchmarks)."""
    if deltas is not None and deltas < 1:
        raise ValueError("deltas must be >= 1")

    def respond(request: RecordedRequest) -> Script:
        words = split_words(friendly_reply(request.last_user_text()))
        if deltas is not None:
            # Cycled words must stay separated when the reply wraps around.
            spaced = [w if w[-1].isspace() else w + " " for w in words]
            words = [spaced[i % len(spaced)] for i in range(deltas)]
            words[-1] = words[-1].rstrip() or words[-1]
        return text(
            chunks=words,
            initial_delay=initial_delay,
            delay_per_event=delay_per_event,
        )

    return respond


# --------------------------------------------------------------------------------------------
# Rendering a script into SSE bytes


def _json_str(value: str) -> str:
    return _JSON.encode(value)


class _Renderer:
    """Turns a script into the exact byte string of each SSE event, ready to write."""

    def __init__(self, script: Script, request: RecordedRequest) -> None:
        self.script = script
        self.request = request
        self.events: list[bytes] = []
        self.seq = 0
        self.delta_count = 0
        self.reasoning_delta_count = 0
        body = request.body if isinstance(request.body, dict) else {}
        model = body.get("model")
        self.model = model if isinstance(model, str) else DEFAULT_MODEL
        include = body.get("include")
        self.wants_encrypted_reasoning = isinstance(include, list) and (
            "reasoning.encrypted_content" in include
        )
        parallel = body.get("parallel_tool_calls")
        self.parallel_tool_calls = parallel if isinstance(parallel, bool) else True
        self.response_id = script.response_id or _new_id("resp")
        self.created_at = int(time.time())

    def emit(self, kind: str, fields: JsonObject) -> None:
        payload = {"type": kind, "sequence_number": self.seq, **fields}
        self.events.append(f"event: {kind}\ndata: {_JSON.encode(payload)}\n\n".encode())
        self.seq += 1

    def emit_deltas(self, kind: str, fixed: JsonObject, deltas: Sequence[str], tail: str) -> None:
        # Deltas dominate long streams; formatting them from a template avoids building and
        # serialising a dict per delta.
        head = f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":'
        mid = "," + _JSON.encode(fixed)[1:-1] + ',"delta":'
        end = tail + "}\n\n"
        seq = self.seq
        append = self.events.append
        for delta in deltas:
            append(f"{head}{seq}{mid}{_json_str(delta)}{end}".encode())
            seq += 1
        self.seq = seq
        self.delta_count += len(deltas)

    def response_object(self, status: str, output: list[JsonObject]) -> JsonObject:
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            # The real API echoes instructions and tools here; the Codex prompt alone is ~20 kB,
            # which would only bloat every created/completed event without being read.
            "instructions": None,
            "max_output_tokens": None,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": self.parallel_tool_calls,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": None,
            "user": None,
            "metadata": {},
        }

    def usage_json(self) -> JsonObject | None:
        usage = self.script.usage
        if usage is None:
            return None
        if usage == "auto":
            # Roughly four bytes per token, like the usual estimate; deterministic per request.
            usage = Usage(
                input_tokens=max(1, len(self.request.raw_body) // 4),
                output_tokens=self.delta_count,
                reasoning_tokens=self.reasoning_delta_count,
            )
        return usage.to_json()

    def render(self) -> list[bytes]:
        script = self.script
        self.emit("response.created", {"response": self.response_object("in_progress", [])})
        self.emit("response.in_progress", {"response": self.response_object("in_progress", [])})
        output: list[JsonObject] = []
        for index, item in enumerate(script.items):
            if isinstance(item, MessageItem):
                output.append(self.message(item, index))
            elif isinstance(item, FunctionCallItem):
                output.append(self.function_call(item, index))
            elif isinstance(item, CustomToolCallItem):
                output.append(self.custom_tool_call(item, index))
            else:
                output.append(self.reasoning(item, index))
        if script.outcome == "completed":
            final = self.response_object("completed", output)
            final["usage"] = self.usage_json()
            self.emit("response.completed", {"response": final})
        elif script.outcome == "incomplete":
            final = self.response_object("incomplete", output)
            final["incomplete_details"] = {"reason": script.incomplete_reason}
            final["usage"] = self.usage_json()
            self.emit("response.incomplete", {"response": final})
        else:
            final = self.response_object("failed", output)
            final["error"] = script.error
            self.emit("response.failed", {"response": final})
        return self.events

    def message(self, item: MessageItem, index: int) -> JsonObject:
        item_id = item.item_id or _new_id("msg")
        self.emit(
            "response.output_item.added",
            {
                "output_index": index,
                "item": {
                    "id": item_id,
                    "type": "message",
                    "status": "in_progress",
                    "content": [],
                    "role": "assistant",
                },
            },
        )
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        self.emit("response.content_part.added", {**where, "part": empty_part})
        self.emit_deltas("response.output_text.delta", where, item.chunks, ',"logprobs":[]')
        full = item.text
        self.emit("response.output_text.done", {**where, "text": full, "logprobs": []})
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": full}
        self.emit("response.content_part.done", {**where, "part": part})
        done = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "content": [part],
            "role": "assistant",
        }
        self.emit("response.output_item.done", {"output_index": index, "item": done})
        return done

    def function_call(self, item: FunctionCallItem, index: int) -> JsonObject:
        item_id = item.item_id or _new_id("fc")
        started = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": item.call_id,
            "name": item.name,
        }
        self.emit("response.output_item.added", {"output_index": index, "item": started})
        where = {"item_id": item_id, "output_index": index}
        self.emit_deltas("response.function_call_arguments.delta", where, item.chunks, "")
        self.emit("response.function_call_arguments.done", {**where, "arguments": item.arguments})
        done = {**started, "status": "completed", "arguments": item.arguments}
        self.emit("response.output_item.done", {"output_index": index, "item": done})
        return done

    def custom_tool_call(self, item: CustomToolCallItem, index: int) -> JsonObject:
        item_id = item.item_id or _new_id("ctc")
        started = {
            "id": item_id,
            "type": "custom_tool_call",
            "status": "in_progress",
            "call_id": item.call_id,
            "input": "",
            "name": item.name,
        }
        self.emit("response.output_item.added", {"output_index": index, "item": started})
        where = {"item_id": item_id, "output_index": index}
        self.emit_deltas("response.custom_tool_call_input.delta", where, item.chunks, "")
        self.emit("response.custom_tool_call_input.done", {**where, "input": item.input})
        done = {**started, "status": "completed", "input": item.input}
        self.emit("response.output_item.done", {"output_index": index, "item": done})
        return done

    def reasoning(self, item: ReasoningItem, index: int) -> JsonObject:
        item_id = item.item_id or _new_id("rs")
        self.emit(
            "response.output_item.added",
            {"output_index": index, "item": {"id": item_id, "type": "reasoning", "summary": []}},
        )
        before = self.delta_count
        summary: list[JsonObject] = []
        for summary_index, deltas in enumerate(item.summary_parts):
            where = {"item_id": item_id, "output_index": index, "summary_index": summary_index}
            self.emit(
                "response.reasoning_summary_part.added",
                {**where, "part": {"type": "summary_text", "text": ""}},
            )
            self.emit_deltas("response.reasoning_summary_text.delta", where, deltas, "")
            full = "".join(deltas)
            self.emit("response.reasoning_summary_text.done", {**where, "text": full})
            part = {"type": "summary_text", "text": full}
            self.emit("response.reasoning_summary_part.done", {**where, "part": part})
            summary.append(part)
        done: JsonObject = {"id": item_id, "type": "reasoning", "summary": summary}
        if item.text_deltas:
            where = {"item_id": item_id, "output_index": index, "content_index": 0}
            self.emit_deltas("response.reasoning_text.delta", where, item.text_deltas, "")
            full = "".join(item.text_deltas)
            self.emit("response.reasoning_text.done", {**where, "text": full})
            done["content"] = [{"type": "reasoning_text", "text": full}]
        encrypted = item.encrypted_content
        if encrypted is None and self.wants_encrypted_reasoning:
            encrypted = "gAAAAA" + secrets.token_urlsafe(48)
        if encrypted is not None:
            done["encrypted_content"] = encrypted
        self.reasoning_delta_count += self.delta_count - before
        self.emit("response.output_item.done", {"output_index": index, "item": done})
        return done


def render_events(script: Script, request: RecordedRequest) -> list[bytes]:
    """The SSE events ``script`` produces for ``request``, one encoded event per entry."""
    if script.body is not None:
        raise ValueError("an HTTP error script has no events")
    return _Renderer(script, request).render()


# --------------------------------------------------------------------------------------------
# The server


def _wire(conn: h11.Connection, event: h11.Event) -> bytes:
    data = conn.send(event)
    # h11 returns None only for ConnectionClosed, which the mock never sends.
    assert data is not None
    return data


def _loopback_host(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"the mock binds to a loopback IP address only, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"the mock binds to a loopback IP address only, not {host!r}")
    return host


def _decode_body(raw: bytes, encoding: str | None) -> bytes:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(raw, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompress(raw)
    return raw


class MockResponses:
    """The mock's state: the script queue, the default responder and what it has received.

    Start it with :func:`open_mock_responses` or :func:`serve_mock_responses` (or
    ``await nursery.start(mock.serve)``)."""

    def __init__(
        self,
        *scripts: ScriptOrResponder,
        prefix: str = DEFAULT_PREFIX,
        default: ScriptOrResponder | None = None,
        models: Mapping[str, Any] | None = None,
    ) -> None:
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.requests: list[RecordedRequest] = []
        self.default: ScriptOrResponder = default if default is not None else echo_responder()
        # GET {prefix}/models answers 404 unless a body is given here.
        self.models = models
        # Streams the client abandoned before the mock finished writing them.
        self.client_disconnects = 0
        # TCP connections accepted: with keep-alive, fewer than requests.
        self.connections = 0
        self._queue: deque[ScriptOrResponder] = deque(scripts)
        self._changed = trio.Event()
        self._host: str | None = None
        self._port: int | None = None
        self._scheme = "http"

    # -- configuration ------------------------------------------------------------------------

    def enqueue(self, *scripts: ScriptOrResponder) -> None:
        """Queue answers for the next ``POST /responses`` requests, in order."""
        self._queue.extend(scripts)

    @property
    def pending(self) -> int:
        """Queued scripts not consumed yet."""
        return len(self._queue)

    # -- addresses ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the mock is not serving yet")
        return self._port

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with TLS)."""
        if self._host is None:
            raise RuntimeError("the mock is not serving yet")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{self._scheme}://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a provider's ``base_url`` / ``OPENAI_BASE_URL`` should be, e.g. ``…/v1``."""
        return self.origin + self.prefix

    # -- observation --------------------------------------------------------------------------

    def _full_path(self, path: str) -> str:
        return path if path.startswith("/") else f"{self.prefix}/{path}"

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Requests for ``path`` (absolute, or relative to the prefix such as "responses")."""
        full = self._full_path(path)
        return [r for r in self.requests if r.path == full and (method is None or r.method == method)]

    @property
    def responses_requests(self) -> list[RecordedRequest]:
        """The ``POST {prefix}/responses`` requests, in arrival order."""
        return self.requests_to("responses", "POST")

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        with trio.fail_after(timeout):
            while not ready():
                await self._changed.wait()

    async def wait_for_requests(
        self, n: int, *, path: str | None = None, timeout: float = 10.0
    ) -> list[RecordedRequest]:
        """Wait until ``n`` requests (to ``path`` if given, e.g. "responses") have arrived and
        return them; raises ``trio.TooSlowError`` after ``timeout`` seconds."""

        def matching() -> list[RecordedRequest]:
            return self.requests if path is None else self.requests_to(path)

        await self._wait_until(lambda: len(matching()) >= n, timeout)
        return list(matching())

    async def wait_for_client_disconnects(self, n: int, *, timeout: float = 10.0) -> None:
        """Wait until the client has abandoned ``n`` streams (e.g. after an interrupt)."""
        await self._wait_until(lambda: self.client_disconnects >= n, timeout)

    # -- serving ------------------------------------------------------------------------------

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        task_status: trio.TaskStatus[MockResponses] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and serve until cancelled; ``task_status.started(self)`` once bound."""
        host = _loopback_host(host)
        tcp_listeners = await trio.open_tcp_listeners(port, host=host)
        sockname = tcp_listeners[0].socket.getsockname()
        listeners: list[trio.abc.Listener[Any]] = list(tcp_listeners)
        if ssl_context is not None:
            listeners = [
                trio.SSLListener(listener, ssl_context, https_compatible=True) for listener in tcp_listeners
            ]
            self._scheme = "https"
        self._host, self._port = host, sockname[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(trio.serve_listeners, self._handle_connection, listeners))
            task_status.started(self)

    async def _handle_connection(self, stream: trio.abc.Stream) -> None:
        conn = h11.Connection(h11.SERVER)
        self.connections += 1
        try:
            while True:
                request = await self._receive_request(conn, stream)
                if request is None:
                    return
                self.requests.append(request)
                self._notify()
                if not await self._respond(conn, stream, request):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The client went away (or a TLS handshake failed); nothing left to answer.
            return
        finally:
            await trio.aclose_forcefully(stream)

    async def _receive_request(self, conn: h11.Connection, stream: trio.abc.Stream) -> RecordedRequest | None:
        head: h11.Request | None = None
        body: list[bytes] = []
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                await self._reject(conn, stream, exc)
                return None
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    await stream.send_all(_wire(conn, h11.InformationalResponse(status_code=100, headers=[])))
                data = await stream.receive_some(_READ_BYTES)
                conn.receive_data(data if isinstance(data, bytes) else bytes(data))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return self._record(head, b"".join(body))
            else:
                # ConnectionClosed between requests: a normal end of keep-alive.
                return None

    async def _reject(
        self, conn: h11.Connection, stream: trio.abc.Stream, exc: h11.RemoteProtocolError
    ) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        payload = f"bad request: {exc}\n".encode()
        headers = [
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", str(len(payload))),
            ("connection", "close"),
        ]
        out = _wire(conn, h11.Response(status_code=exc.error_status_hint, headers=headers))
        out += _wire(conn, h11.Data(data=payload))
        out += _wire(conn, h11.EndOfMessage())
        await stream.send_all(out)

    def _record(self, head: h11.Request, raw: bytes) -> RecordedRequest:
        headers: dict[str, str] = {}
        for name, value in head.headers:
            key = name.decode("latin-1").lower()
            text_value = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text_value}" if key in headers else text_value
        target = head.target.decode("latin-1")
        path, _, query = target.partition("?")
        body: Any = None
        if raw:
            try:
                body = json.loads(_decode_body(raw, headers.get("content-encoding")))
            except (ValueError, zlib.error):
                body = None
        return RecordedRequest(
            method=head.method.decode("latin-1"),
            path=path,
            query=query,
            headers=headers,
            body=body,
            raw_body=raw,
        )

    def _next_script(self, request: RecordedRequest) -> Script:
        entry = self._queue.popleft() if self._queue else self.default
        return entry if isinstance(entry, Script) else entry(request)

    async def _respond(self, conn: h11.Connection, stream: trio.abc.Stream, request: RecordedRequest) -> bool:
        """Answer one request; False when the connection must not be reused."""
        if request.method == "POST" and request.path == f"{self.prefix}/responses":
            return await self._send_script(conn, stream, self._next_script(request), request)
        if request.method == "GET" and request.path == f"{self.prefix}/models" and self.models is not None:
            payload = _JSON.encode(dict(self.models)).encode()
            await self._send_plain(conn, stream, 200, payload, [("content-type", "application/json")])
            return True
        # Shaped like the real API's answer for an unknown route.
        not_found = error_body(f"Invalid URL ({request.method} {request.path})")
        payload = _JSON.encode(not_found).encode()
        await self._send_plain(conn, stream, 404, payload, [("content-type", "application/json")])
        return True

    async def _send_plain(
        self,
        conn: h11.Connection,
        stream: trio.abc.Stream,
        status: int,
        payload: bytes,
        headers: Sequence[tuple[str, str]],
    ) -> None:
        all_headers = [*headers, ("content-length", str(len(payload)))]
        out = _wire(conn, h11.Response(status_code=status, headers=all_headers))
        out += _wire(conn, h11.Data(data=payload))
        out += _wire(conn, h11.EndOfMessage())
        await stream.send_all(out)

    async def _send_script(
        self,
        conn: h11.Connection,
        stream: trio.abc.Stream,
        script: Script,
        request: RecordedRequest,
    ) -> bool:
        if script.initial_delay > 0:
            await trio.sleep(script.initial_delay)
        if script.body is not None:
            await self._send_plain(conn, stream, script.status, script.body, script.headers)
            return True
        events = render_events(script, request)
        if script.cut is not None:
            events = events[: script.cut_after]
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            # No x-request-id unless scripted: the reference appends it to some error messages,
            # and a random one would make those messages unpredictable.
            *script.headers,
        ]
        try:
            # No content-length: h11 frames the body with chunked transfer encoding, as the API.
            head = h11.Response(status_code=script.status, headers=headers)
            await stream.send_all(_wire(conn, head))
            if script.delay_per_event > 0:
                for event in events:
                    await trio.sleep(script.delay_per_event)
                    await stream.send_all(_wire(conn, h11.Data(data=event)))
            else:
                await self._send_batched(conn, stream, events)
            if script.cut == "stall":
                await self._wait_for_peer_close(stream)
                self._note_disconnect()
                return False
            if script.cut == "close":
                return False
            await stream.send_all(_wire(conn, h11.EndOfMessage()))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._note_disconnect()
            return False
        return True

    @staticmethod
    async def _send_batched(conn: h11.Connection, stream: trio.abc.Stream, events: Sequence[bytes]) -> None:
        batch: list[bytes] = []
        size = 0
        for event in events:
            batch.append(event)
            size += len(event)
            if size >= _BATCH_BYTES:
                await stream.send_all(_wire(conn, h11.Data(data=b"".join(batch))))
                batch.clear()
                size = 0
        if batch:
            await stream.send_all(_wire(conn, h11.Data(data=b"".join(batch))))

    @staticmethod
    async def _wait_for_peer_close(stream: trio.abc.Stream) -> None:
        # Reading is how a silent server notices the client hanging up; anything the client
        # sends meanwhile is dropped, since this connection is not reused.
        try:
            while await stream.receive_some(_READ_BYTES):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def _note_disconnect(self) -> None:
        self.client_disconnects += 1
        self._notify()


async def serve_mock_responses(
    *scripts: ScriptOrResponder,
    host: str = "127.0.0.1",
    port: int = 0,
    prefix: str = DEFAULT_PREFIX,
    ssl_context: ssl.SSLContext | None = None,
    default: ScriptOrResponder | None = None,
    models: Mapping[str, Any] | None = None,
    task_status: trio.TaskStatus[MockResponses] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a new mock until cancelled; ``await nursery.start(serve_mock_responses, …)``
    returns the :class:`MockResponses`."""
    mock = MockResponses(*scripts, prefix=prefix, default=default, models=models)
    await mock.serve(host=host, port=port, ssl_context=ssl_context, task_status=task_status)


@asynccontextmanager
async def open_mock_responses(
    *scripts: ScriptOrResponder,
    host: str = "127.0.0.1",
    port: int = 0,
    prefix: str = DEFAULT_PREFIX,
    ssl_context: ssl.SSLContext | None = None,
    default: ScriptOrResponder | None = None,
    models: Mapping[str, Any] | None = None,
) -> AsyncIterator[MockResponses]:
    """Run a mock for the duration of the block; every connection is closed on exit."""
    try:
        async with trio.open_nursery() as nursery:
            mock: MockResponses = await nursery.start(
                partial(
                    serve_mock_responses,
                    *scripts,
                    host=host,
                    port=port,
                    prefix=prefix,
                    ssl_context=ssl_context,
                    default=default,
                    models=models,
                )
            )
            try:
                yield mock
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nursery wraps whatever the block raised; a test's pytest.raises or an assertion
        # should see the exception itself, as with any other context manager.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


# --------------------------------------------------------------------------------------------
# Command line


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m codex_trio.testing.mock_responses",
        description="Serve a local mock of the OpenAI Responses API (echoes the user's text).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="path prefix (default /v1)")
    parser.add_argument("--deltas", type=int, default=None, help="stream exactly N text deltas per reply")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds to wait before each reply's headers"
    )
    parser.add_argument(
        "--delay-per-event", type=float, default=0.0, help="seconds to wait before each event"
    )
    return parser.parse_args(argv)


async def _serve_cli(args: argparse.Namespace) -> None:
    responder = echo_responder(
        deltas=args.deltas, initial_delay=args.delay, delay_per_event=args.delay_per_event
    )
    async with open_mock_responses(
        host=args.host, port=args.port, prefix=args.prefix, default=responder
    ) as mock:
        sys.stdout.write(mock.base_url + "\n")
        sys.stdout.flush()
        await trio.sleep_forever()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        trio.run(_serve_cli, args)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
