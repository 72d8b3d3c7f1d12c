"""The Responses API client against in-memory HTTP (httpx.MockTransport), on trio's mock clock.

Expected texts and shapes were taken from the reference (codex 0.94.0) run against a local mock.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from codex_trio.core.model_client import (
    ApiKeyAuth,
    Completed,
    Created,
    ModelClient,
    ModelError,
    NoAuth,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    RateLimits,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ReasoningTextDelta,
    ResponseEvent,
    TurnState,
    backoff,
    build_request,
    format_reset_time,
    status_text,
    usage_limit_message,
)
from codex_trio.core.provider import ModelProviderInfo
from codex_trio.core.sse import SseDecoder

UA = "harness/0.94.0 (Debian 12.0.0; x86_64) xterm (harness; 0.0.1)"
SESSION = "01a1fe8c-85b9-7461-ad46-f8c884991a7c"
EMPTY_LIMITS = {"primary": None, "secondary": None, "credits": None, "plan_type": None}


# ------------------------------------------------------------------------------------------ helpers


class Body(httpx.AsyncByteStream):
    """A response body that arrives in the given chunks, then ends, hangs, or breaks."""

    def __init__(self, chunks: list[bytes], *, then: str = "end") -> None:
        self.chunks = chunks
        self.then = then
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            await trio.sleep(0)
            yield chunk
        if self.then == "hang":
            await trio.sleep_forever()
        if self.then == "break":
            raise httpx.ReadError("connection reset by peer")

    async def aclose(self) -> None:
        self.closed = True


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n".encode() for ev in events)


def chunked(data: bytes, size: int = 7) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


CREATED = {"type": "response.created", "response": {"id": "resp_1"}}
MSG_ADDED = {
    "type": "response.output_item.added",
    "item": {"type": "message", "role": "assistant", "id": "msg_1", "content": []},
}
MSG_DONE = {
    "type": "response.output_item.done",
    "item": {
        "type": "message",
        "role": "assistant",
        "id": "msg_1",
        "content": [{"type": "output_text", "text": "Hello world"}],
    },
}
USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 2},
    "output_tokens": 5,
    "output_tokens_details": {"reasoning_tokens": 1},
    "total_tokens": 15,
}
COMPLETED = {"type": "response.completed", "response": {"id": "resp_1", "usage": USAGE}}


def delta(text: str) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "item_id": "msg_1", "delta": text}


Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Server:
    """Answers requests from a script (the last answer repeats) and keeps what it received."""

    def __init__(self, *answers: Callable[[], httpx.Response]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []
        self.bodies: list[Body] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(trio.current_time())
        answer = self.answers[min(len(self.requests) - 1, len(self.answers) - 1)]
        response = answer()
        if isinstance(response.stream, Body):
            self.bodies.append(response.stream)
        return response


def ok(
    body: bytes, *, headers: dict[str, str] | None = None, then: str = "end"
) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(
        200,
        headers={"content-type": "text/event-stream", **(headers or {})},
        stream=Body(chunked(body), then=then),
    )


def status(code: int, body: str = "", headers: dict[str, str] | None = None) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(code, headers=headers or {}, content=body.encode())


def provider(**overrides: Any) -> ModelProviderInfo:
    fields: dict[str, Any] = {
        "id": "mock_provider",
        "name": "mock",
        "base_url": "http://127.0.0.1:9999/v1",
        "request_max_retries": 0,
        "stream_max_retries": 0,
        "stream_idle_timeout_ms": 300_000,
    }
    fields.update(overrides)
    return ModelProviderInfo(**fields)


def client(
    server: Server | Handler,
    *,
    auth: Any = None,
    environ: dict[str, str] | None = None,
    **provider_overrides: Any,
) -> ModelClient:
    return ModelClient(
        provider(**provider_overrides),
        http=httpx.AsyncClient(transport=httpx.MockTransport(server)),
        auth=auth if auth is not None else NoAuth(),
        originator="harness",
        user_agent=UA,
        environ=environ or {},
        rng=random.Random(7),
    )


def simple_request(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "model": "mock-model",
        "instructions": "You are a coding agent.",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [],
        "parallel_tool_calls": False,
        "prompt_cache_key": SESSION,
    }
    fields.update(overrides)
    return dict(build_request(**fields))


async def collect(mc: ModelClient, request: dict[str, Any] | None = None) -> list[ResponseEvent]:
    return [event async for event in mc.stream(request or simple_request(), session_id=SESSION)]


async def failure(mc: ModelClient) -> ModelError:
    with pytest.raises(ModelError) as info:
        await collect(mc)
    return info.value


# ------------------------------------------------------------------------------------------ streams


async def test_text_stream_becomes_events_in_order() -> None:
    server = Server(ok(sse(CREATED, MSG_ADDED, delta("Hello"), delta(" world"), MSG_DONE, COMPLETED)))
    events = await collect(client(server))
    assert events == [
        RateLimits(EMPTY_LIMITS),  # type: ignore[arg-type]
        Created(),
        OutputItemAdded(MSG_ADDED["item"]),
        OutputTextDelta("msg_1", "Hello"),
        OutputTextDelta("msg_1", " world"),
        OutputItemDone(MSG_DONE["item"]),
        Completed(
            "resp_1",
            {
                "input_tokens": 10,
                "cached_input_tokens": 2,
                "output_tokens": 5,
                "reasoning_output_tokens": 1,
                "total_tokens": 15,
            },
        ),
    ]


async def test_tool_call_items_pass_through_unchanged() -> None:
    function_call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "shell",
        "arguments": '{"command":["echo","hi"]}',
    }
    custom_call = {
        "type": "custom_tool_call",
        "call_id": "call_2",
        "name": "apply_patch",
        "input": "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch",
    }
    body = sse(
        CREATED,
        {"type": "response.output_item.added", "item": function_call},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "{"},
        {"type": "response.output_item.done", "item": function_call},
        {"type": "response.output_item.done", "item": custom_call},
        COMPLETED,
    )
    events = await collect(client(Server(ok(body))))
    assert [e for e in events if isinstance(e, (OutputItemAdded, OutputItemDone))] == [
        OutputItemAdded(function_call),
        OutputItemDone(function_call),
        OutputItemDone(custom_call),
    ]


async def test_reasoning_events() -> None:
    body = sse(
        CREATED,
        {"type": "response.output_item.added", "item": {"type": "reasoning", "id": "rs_1", "summary": []}},
        {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "summary_index": 0},
        {
            "type": "response.reasoning_summary_text.delta",
            "item_id": "rs_1",
            "summary_index": 0,
            "delta": "Plan",
        },
        {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "summary_index": 1},
        {
            "type": "response.reasoning_summary_text.delta",
            "item_id": "rs_1",
            "summary_index": 1,
            "delta": "Act",
        },
        {"type": "response.reasoning_text.delta", "item_id": "rs_1", "content_index": 0, "delta": "raw"},
        # Without the index the reference drops these.
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "delta": "lost"},
        {"type": "response.reasoning_text.delta", "item_id": "rs_1", "delta": "lost"},
        COMPLETED,
    )
    events = await collect(client(Server(ok(body))))
    assert events[3:-1] == [
        ReasoningSummaryPartAdded("rs_1", 0),
        ReasoningSummaryDelta("rs_1", 0, "Plan"),
        ReasoningSummaryPartAdded("rs_1", 1),
        ReasoningSummaryDelta("rs_1", 1, "Act"),
        ReasoningTextDelta("rs_1", 0, "raw"),
    ]


async def test_unknown_and_malformed_events_are_skipped() -> None:
    body = (
        b": keep-alive\n\n"
        + sse(CREATED, {"type": "response.in_progress", "response": {"id": "resp_1"}})
        + b"data: {not json\n\n"
        + b"data: [1, 2]\n\n"
        + sse({"type": "response.output_text.done", "item_id": "msg_1", "text": "Hi"})
        + sse({"type": "response.output_item.done", "item": {"no_type": True}})
        + sse(delta("Hi"), COMPLETED)
    )
    events = await collect(client(Server(ok(body))))
    assert [type(e) for e in events] == [RateLimits, Created, OutputTextDelta, Completed]


async def test_sse_framing_crlf_multiline_data_and_split_chunks() -> None:
    completed = json.dumps({"type": "response.completed", "response": {"id": "r"}})
    head, tail = completed.split(", ", 1)
    raw = (
        b"\xef\xbb\xbf: hello\r\n\r\n"
        + f"event: response.completed\r\ndata: {head},\r\ndata: {tail}\r\n\r\n".encode()
    )
    for size in (1, 2, 5, len(raw)):
        decoder = SseDecoder()
        events = [ev for i in range(0, len(raw), size) for ev in decoder.feed(raw[i : i + size])]
        assert [(e.event, json.loads(e.data)) for e in events] == [
            ("response.completed", {"type": "response.completed", "response": {"id": "r"}})
        ]
    # A block without a data line dispatches nothing; one with a bare "data" line carries "".
    assert [e.data for e in SseDecoder().feed(b"event: x\n\ndata\n\n")] == [""]


async def test_usage_defaults_and_absence() -> None:
    no_details = {
        "type": "response.completed",
        "response": {"id": "r", "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}},
    }
    events = await collect(client(Server(ok(sse(CREATED, no_details)))))
    assert events[-1] == Completed(
        "r",
        {
            "input_tokens": 3,
            "cached_input_tokens": 0,
            "output_tokens": 4,
            "reasoning_output_tokens": 0,
            "total_tokens": 7,
        },
    )
    null_usage = {"type": "response.completed", "response": {"id": "r", "usage": None}}
    events = await collect(client(Server(ok(sse(CREATED, null_usage)))))
    assert events[-1] == Completed("r", None)


async def test_unparsable_completed_is_reported_when_the_stream_ends() -> None:
    bad = {"type": "response.completed", "response": {"usage": None}}
    err = await failure(client(Server(ok(sse(CREATED, bad)))))
    assert err.message == (
        "stream disconnected before completion: failed to parse ResponseCompleted: missing field `id`"
    )


async def test_rate_limit_headers_come_first() -> None:
    headers = {
        "x-codex-primary-used-percent": "12.5",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": "1704069000",
        # An all-zero window means no limit; the reference drops it.
        "x-codex-secondary-used-percent": "0",
        "x-codex-secondary-window-minutes": "0",
        "x-codex-credits-has-credits": "true",
        "x-codex-credits-unlimited": "0",
        "x-codex-credits-balance": " 5 ",
    }
    events = await collect(client(Server(ok(sse(CREATED, COMPLETED), headers=headers))))
    assert events[0] == RateLimits(
        {
            "primary": {"used_percent": 12.5, "window_minutes": 300, "resets_at": 1704069000},
            "secondary": None,
            "credits": {"has_credits": True, "unlimited": False, "balance": "5"},
            "plan_type": None,
        }
    )
    assert isinstance(events[1], Created)


async def test_the_stream_stops_at_completed_and_releases_the_connection() -> None:
    late = {"type": "response.output_item.done", "item": {"type": "message", "role": "assistant"}}
    server = Server(ok(sse(CREATED, COMPLETED, late), then="hang"))
    seen: list[ResponseEvent] = []
    async for event in client(server).stream(simple_request(), session_id=SESSION):
        seen.append(event)
        if isinstance(event, Completed):
            # Closed before the consumer even asks for more.
            assert server.bodies[0].closed
    # The item after response.completed is never read, and the hanging body does not block the end.
    assert [type(e) for e in seen] == [RateLimits, Created, Completed]


# ------------------------------------------------------------------------------------------ request


async def test_request_body_and_headers() -> None:
    server = Server(ok(sse(CREATED, COMPLETED)))
    mc = client(
        server,
        auth=ApiKeyAuth("sk-test-123"),
        environ={"MY_ENV_H": "envval", "EMPTY_H": "  "},
        query_params={"api-version": "2025-01-01"},
        http_headers={"X-Extra": "v1"},
        env_http_headers={"X-Env": "MY_ENV_H", "X-Empty": "EMPTY_H", "X-Missing": "NOT_SET"},
    )
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    request = simple_request(
        model="gpt-5.2",
        reasoning={"effort": "high", "summary": "auto"},
        output_schema=schema,
        verbosity="low",
        parallel_tool_calls=True,
    )
    await collect(mc, request)
    sent = server.requests[0]
    assert sent.method == "POST"
    assert str(sent.url) == "http://127.0.0.1:9999/v1/responses?api-version=2025-01-01"
    assert list(json.loads(sent.content)) == [
        "model",
        "instructions",
        "input",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "store",
        "stream",
        "include",
        "prompt_cache_key",
        "text",
    ]
    assert json.loads(sent.content) == {
        "model": "gpt-5.2",
        "instructions": "You are a coding agent.",
        "input": request["input"],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "high", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": SESSION,
        "text": {
            "verbosity": "low",
            "format": {
                "type": "json_schema",
                "strict": True,
                "schema": schema,
                "name": "codex_output_schema",
            },
        },
    }
    headers = {k: v for k, v in sent.headers.items() if k not in ("host", "content-length")}
    assert headers == {
        "x-extra": "v1",
        "x-env": "envval",
        "x-oai-web-search-eligible": "true",
        "session_id": SESSION,
        "accept": "text/event-stream",
        "authorization": "Bearer sk-test-123",
        "content-type": "application/json",
        "user-agent": UA,
        "originator": "harness",
    }


async def test_request_without_reasoning_or_schema() -> None:
    body = build_request(
        model="mock-model",
        instructions="i",
        input=[],
        tools=[],
        parallel_tool_calls=False,
        prompt_cache_key="k",
    )
    assert body == {
        "model": "mock-model",
        "instructions": "i",
        "input": [],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": None,
        "store": False,
        "stream": True,
        "include": [],
        "prompt_cache_key": "k",
    }
    server = Server(ok(sse(CREATED, COMPLETED)))
    await collect(client(server))
    assert "authorization" not in server.requests[0].headers


# ------------------------------------------------------------------------------------------ HTTP errors


async def test_500_is_retried_with_backoff_then_fails(autojump_clock: trio.testing.MockClock) -> None:
    server = Server(status(500, '{"error":{"message":"boom"}}'))
    err = await failure(client(server, request_max_retries=2))
    assert len(server.requests) == 3
    waits = [b - a for a, b in zip(server.times, server.times[1:], strict=False)]
    assert 0.18 <= waits[0] <= 0.22 and 0.36 <= waits[1] <= 0.44
    assert err.message == "We're currently experiencing high demand, which may cause temporary errors."
    assert err.codex_error_info == "internalServerError"
    assert err.http_status == 500 and err.retryable and not err.will_retry
    assert err.turn_error() == {
        "message": err.message,
        "codexErrorInfo": "internalServerError",
        "additionalDetails": None,
    }


async def test_500_then_success(autojump_clock: trio.testing.MockClock) -> None:
    server = Server(status(500), ok(sse(CREATED, COMPLETED)))
    events = await collect(client(server, request_max_retries=1))
    assert isinstance(events[-1], Completed) and len(server.requests) == 2


async def test_other_5xx_after_retries(autojump_clock: trio.testing.MockClock) -> None:
    server = Server(status(503, "unavailable", {"x-request-id": "req_9", "x-oai-request-id": "oai_9"}))
    err = await failure(client(server, request_max_retries=1))
    assert len(server.requests) == 2
    assert err.message == (
        "unexpected status 503 Service Unavailable: unavailable, "
        "url: http://127.0.0.1:9999/v1/responses, request id: req_9"
    )
    assert err.codex_error_info == "other" and err.retryable
    notice = err.retry_notice(1, 5)
    assert notice.message == "Reconnecting... 1/5"
    assert notice.codex_error_info == {"responseStreamDisconnected": {"httpStatusCode": 503}}
    assert notice.additional_details == err.message


async def test_429_rate_limit_is_not_retried() -> None:
    body = json.dumps(
        {
            "error": {
                "type": "rate_limit_exceeded",
                "code": "rate_limit_exceeded",
                "message": "Rate limit reached. Please try again in 1s.",
            }
        }
    )
    server = Server(status(429, body))
    err = await failure(client(server, request_max_retries=3))
    assert len(server.requests) == 1
    assert err.message == "exceeded retry limit, last status: 429 Too Many Requests"
    assert err.codex_error_info == {"responseTooManyFailedAttempts": {"httpStatusCode": 429}}
    assert err.http_status == 429 and not err.retryable
    server = Server(status(429, body, {"x-request-id": "req_abc"}))
    err = await failure(client(server))
    assert err.message == "exceeded retry limit, last status: 429 Too Many Requests, request id: req_abc"


async def test_usage_limit_reached_is_not_retried() -> None:
    body = json.dumps({"error": {"type": "usage_limit_reached", "plan_type": "pro", "message": "x"}})
    server = Server(status(429, body, {"x-codex-primary-used-percent": "100"}))
    err = await failure(client(server, request_max_retries=3))
    assert len(server.requests) == 1
    assert err.message == (
        "You've hit your usage limit. Visit https://chatgpt.com/codex/settings/usage to purchase more "
        "credits or try again later."
    )
    assert err.codex_error_info == "usageLimitExceeded" and not err.retryable
    assert err.rate_limits == {
        "primary": {"used_percent": 100.0, "window_minutes": None, "resets_at": None},
        "secondary": None,
        "credits": None,
        "plan_type": None,
    }
    body = json.dumps({"error": {"type": "usage_not_included"}})
    err = await failure(client(Server(status(429, body))))
    assert (
        err.message
        == "To use Codex with your ChatGPT plan, upgrade to Plus: https://chatgpt.com/explore/plus."
    )
    assert err.codex_error_info == "usageLimitExceeded"


def test_usage_limit_texts_per_plan() -> None:
    utc = timezone.utc
    now = datetime(2026, 11, 21, 14, 42, tzinfo=utc)
    later_today = int((now + timedelta(hours=1)).timestamp())
    in_two_days = int(datetime(2026, 11, 23, 14, 42, tzinfo=utc).timestamp())
    assert usage_limit_message(None, None) == "You've hit your usage limit. Try again later."
    assert usage_limit_message("enterprise", later_today, now=now) == (
        "You've hit your usage limit. Try again at 3:42 PM."
    )
    assert usage_limit_message("team", in_two_days, now=now) == (
        "You've hit your usage limit. To get more access now, send a request to your admin or try again "
        "at Nov 23rd, 2026 2:42 PM."
    )
    assert usage_limit_message("plus", 1704069000, now=now) == (
        "You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
        "https://chatgpt.com/codex/settings/usage to purchase more credits or try again at "
        "Jan 1st, 2024 12:30 AM."
    )
    assert usage_limit_message("free", None) == (
        "You've hit your usage limit. Upgrade to Plus to continue using Codex "
        "(https://chatgpt.com/explore/plus), or try again later."
    )
    assert usage_limit_message("go", None) == usage_limit_message("free", None)
    assert usage_limit_message("business", None) == usage_limit_message("team", None)
    assert usage_limit_message("something-new", None) == "You've hit your usage limit. Try again later."
    assert format_reset_time(int(datetime(2026, 12, 12, 0, 5, tzinfo=utc).timestamp()), now) == (
        "Dec 12th, 2026 12:05 AM"
    )


async def test_400_message_is_the_raw_body() -> None:
    body = '{"error": {"message": "Bad thing", "type": "invalid_request_error"}}'
    server = Server(status(400, body, {"x-request-id": "req_1"}))
    err = await failure(client(server, request_max_retries=2))
    assert len(server.requests) == 1
    assert err.message == body
    assert err.codex_error_info == "other" and err.http_status == 400 and not err.retryable


async def test_403_cloudflare_and_404() -> None:
    server = Server(status(403, "<html>Cloudflare: you have been blocked</html>", {"cf-ray": "ray1"}))
    err = await failure(client(server))
    assert err.message == (
        "Access blocked by Cloudflare. This usually happens when connecting from a restricted region "
        "(status 403 Forbidden), url: http://127.0.0.1:9999/v1/responses, request id: ray1"
    )
    err = await failure(client(Server(status(404, "nope"))))
    assert err.message == "unexpected status 404 Not Found: nope, url: http://127.0.0.1:9999/v1/responses"


async def test_connection_errors_are_retried(autojump_clock: trio.testing.MockClock) -> None:
    attempts: list[float] = []

    async def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(trio.current_time())
        raise httpx.ConnectError("connection refused")

    err = await failure(client(refuse, request_max_retries=1))
    assert len(attempts) == 2
    assert err.message == (
        "stream disconnected before completion: error sending request for url "
        "(http://127.0.0.1:9999/v1/responses)"
    )
    assert err.codex_error_info == "other" and err.retryable


# ------------------------------------------------------------------------------------------ 401


class RefreshingAuth:
    def __init__(self, *, succeeds: bool = True) -> None:
        self.token = "old-token"
        self.refreshes = 0
        self.succeeds = succeeds

    async def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", "chatgpt-account-id": "org-x"}

    async def refresh_after_unauthorized(self) -> bool:
        self.refreshes += 1
        self.token = "new-token"
        return self.succeeds

    def is_chatgpt(self) -> bool:
        return True


async def test_401_refreshes_once_and_retries_with_new_headers() -> None:
    auth = RefreshingAuth()
    server = Server(status(401, '{"error":"expired"}'), ok(sse(CREATED, COMPLETED)))
    events = await collect(client(server, auth=auth, request_max_retries=3))
    assert isinstance(events[-1], Completed)
    assert auth.refreshes == 1
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer old-token", "Bearer new-token"]
    assert server.requests[1].headers["chatgpt-account-id"] == "org-x"


class SwitchingAuth:
    """ChatGPT tokens until the 401, after which the refresh leaves an API key login."""

    def __init__(self) -> None:
        self.chatgpt = True

    async def headers(self) -> dict[str, str]:
        if self.chatgpt:
            return {"authorization": "Bearer at-1", "chatgpt-account-id": "org-x"}
        return {"authorization": "Bearer sk-later"}

    async def refresh_after_unauthorized(self) -> bool:
        self.chatgpt = False
        return True

    def is_chatgpt(self) -> bool:
        return self.chatgpt


@pytest.mark.parametrize(
    ("auth", "url"),
    [
        (RefreshingAuth(), "https://chatgpt.com/backend-api/codex/responses?api-version=1"),
        (ApiKeyAuth("sk-x"), "https://api.openai.com/v1/responses?api-version=1"),
        (NoAuth(), "https://api.openai.com/v1/responses?api-version=1"),
    ],
)
async def test_without_a_base_url_the_login_chooses_the_endpoint(auth: Any, url: str) -> None:
    server = Server(ok(sse(CREATED, COMPLETED)))
    await collect(client(server, auth=auth, base_url=None, query_params={"api-version": "1"}))
    assert [str(r.url) for r in server.requests] == [url]


async def test_a_configured_base_url_wins_over_chatgpt_tokens() -> None:
    server = Server(ok(sse(CREATED, COMPLETED)))
    await collect(client(server, auth=RefreshingAuth()))
    assert str(server.requests[0].url) == "http://127.0.0.1:9999/v1/responses"
    assert server.requests[0].headers["chatgpt-account-id"] == "org-x"


async def test_the_endpoint_follows_a_login_change_between_requests() -> None:
    server = Server(status(401), ok(sse(CREATED, COMPLETED)))
    await collect(client(server, auth=SwitchingAuth(), base_url=None))
    assert [(str(r.url), r.headers["authorization"]) for r in server.requests] == [
        ("https://chatgpt.com/backend-api/codex/responses", "Bearer at-1"),
        ("https://api.openai.com/v1/responses", "Bearer sk-later"),
    ]
    assert "chatgpt-account-id" not in server.requests[1].headers


async def test_a_second_401_fails() -> None:
    auth = RefreshingAuth()
    server = Server(status(401, "nope"))
    err = await failure(client(server, auth=auth))
    assert auth.refreshes == 1 and len(server.requests) == 2
    assert err.message == "unexpected status 401 Unauthorized: "
    assert err.codex_error_info == "other" and err.http_status == 401


async def test_a_refresh_hook_can_fail_the_call_its_own_way() -> None:
    class Failing(RefreshingAuth):
        async def refresh_after_unauthorized(self) -> bool:
            raise ModelError("auth refresh request timed out after 10s")

    server = Server(status(401))
    err = await failure(client(server, auth=Failing()))
    assert err.message == "auth refresh request timed out after 10s" and len(server.requests) == 1


async def test_401_with_an_api_key_fails_without_leaking_it() -> None:
    server = Server(status(401, '{"error":{"message":"Incorrect API key provided: sk-secret-42"}}'))
    auth = ApiKeyAuth("sk-secret-42")
    err = await failure(client(server, auth=auth, request_max_retries=2))
    assert len(server.requests) == 1
    assert err.message == "unexpected status 401 Unauthorized: "
    assert "sk-secret" not in repr(err) + str(err) + repr(auth)
    assert err.retry_notice(1, 1).codex_error_info == {"responseStreamDisconnected": {"httpStatusCode": 401}}


# ------------------------------------------------------------------------------------------ broken streams


async def test_idle_timeout(autojump_clock: trio.testing.MockClock) -> None:
    server = Server(ok(sse(CREATED), then="hang"))
    mc = client(server, stream_idle_timeout_ms=1000)
    start = trio.current_time()
    seen: list[ResponseEvent] = []
    with pytest.raises(ModelError) as info:
        async for event in mc.stream(simple_request(), session_id=SESSION):
            seen.append(event)
    assert [type(e) for e in seen] == [RateLimits, Created]
    assert trio.current_time() - start == pytest.approx(1.0, abs=0.01)
    assert info.value.message == "stream disconnected before completion: idle timeout waiting for SSE"
    assert info.value.codex_error_info == "other" and info.value.retryable
    assert server.bodies[0].closed


async def test_comments_alone_do_not_keep_the_stream_alive(autojump_clock: trio.testing.MockClock) -> None:
    class Trickle(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            while True:
                await trio.sleep(0.4)
                yield b": ping\n\n"

    mc = client(lambda request: _async(httpx.Response(200, stream=Trickle())), stream_idle_timeout_ms=1000)
    err = await failure(mc)
    assert err.message.endswith("idle timeout waiting for SSE")


async def _async(response: httpx.Response) -> httpx.Response:
    return response


async def test_no_response_head_within_the_idle_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError

    err = await failure(client(silent, stream_idle_timeout_ms=2000))
    assert err.message == "stream disconnected before completion: idle timeout waiting for SSE"
    assert trio.current_time() == pytest.approx(2.0, abs=0.01)


async def test_stream_closed_before_completed() -> None:
    server = Server(ok(sse(CREATED, MSG_ADDED, delta("Hel"))))
    err = await failure(client(server))
    assert err.message == "stream disconnected before completion: stream closed before response.completed"
    assert err.codex_error_info == "other" and err.retryable
    # response.incomplete is not an event the reference knows: the stream just ends without completing.
    server = Server(ok(sse(CREATED, {"type": "response.incomplete", "response": {"id": "resp_1"}})))
    err = await failure(client(server))
    assert err.message.endswith("stream closed before response.completed")


async def test_a_broken_connection_mid_stream() -> None:
    server = Server(ok(sse(CREATED, delta("Hel")), then="break"))
    err = await failure(client(server))
    assert err.message == (
        "stream disconnected before completion: Transport error: network error: error decoding response body"
    )
    assert server.bodies[0].closed


async def test_response_failed() -> None:
    def failed(error: dict[str, Any] | None) -> Callable[[], httpx.Response]:
        response: dict[str, Any] = {"id": "resp_1"}
        if error is not None:
            response["error"] = error
        return ok(sse(CREATED, {"type": "response.failed", "response": response}))

    err = await failure(client(Server(failed({"code": "server_error", "message": "Something broke"}))))
    assert err.message == "stream disconnected before completion: Something broke"
    assert err.codex_error_info == "other" and err.retryable and err.retry_after is None
    err = await failure(client(Server(failed(None))))
    assert err.message == "stream disconnected before completion: response.failed event received"
    err = await failure(
        client(
            Server(
                failed(
                    {
                        "code": "rate_limit_exceeded",
                        "message": "Rate limit reached. Please try again in 1.5s.",
                    }
                )
            )
        )
    )
    assert err.retry_after == 1.5 and err.retryable
    err = await failure(
        client(Server(failed({"code": "rate_limit_exceeded", "message": "try again in 250ms"})))
    )
    assert err.retry_after == 0.25
    err = await failure(client(Server(failed({"code": "context_length_exceeded", "message": "too long"}))))
    assert err.message == (
        "Codex ran out of room in the model's context window. Start a new thread or clear earlier history "
        "before retrying."
    )
    assert err.codex_error_info == "contextWindowExceeded" and not err.retryable
    err = await failure(client(Server(failed({"code": "insufficient_quota", "message": "q"}))))
    assert (err.message, err.codex_error_info) == (
        "Quota exceeded. Check your plan and billing details.",
        "usageLimitExceeded",
    )


async def test_response_failed_waits_for_the_end_of_the_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    failed = {"type": "response.failed", "response": {"id": "r", "error": {"message": "boom"}}}
    server = Server(ok(sse(CREATED, failed), then="hang"))
    err = await failure(client(server, stream_idle_timeout_ms=3000))
    # Like the reference, the failure is only reported once the stream ends (here: goes idle).
    assert err.message.endswith("idle timeout waiting for SSE")


# ------------------------------------------------------------------------------------------ cancellation


async def test_cancelling_the_consumer_closes_the_http_stream() -> None:
    server = Server(ok(sse(CREATED, delta("Hel")), then="hang"))
    mc = client(server)
    seen: list[ResponseEvent] = []
    with trio.move_on_after(5) as scope:
        async for event in mc.stream(simple_request(), session_id=SESSION):
            seen.append(event)
            if isinstance(event, OutputTextDelta):
                scope.cancel()
    assert scope.cancelled_caught
    assert server.bodies[0].closed


async def test_cancelled_while_waiting_for_the_next_event() -> None:
    server = Server(ok(sse(CREATED), then="hang"))
    mc = client(server)
    async with trio.open_nursery() as nursery:

        async def consume() -> None:
            async for _ in mc.stream(simple_request(), session_id=SESSION):
                pass

        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert server.bodies[0].closed


async def test_async_with_closes_an_abandoned_stream() -> None:
    server = Server(ok(sse(CREATED, delta("a"), delta("b"), COMPLETED)))
    async with client(server).stream(simple_request(), session_id=SESSION) as events:
        async for event in events:
            if isinstance(event, Created):
                break
    assert server.bodies[0].closed


def test_backoff_doubles_with_jitter() -> None:
    rng = random.Random(1)
    for attempt, base in ((1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6)):
        assert base * 0.9 <= backoff(attempt, rng) <= base * 1.1


async def test_cancelled_while_handling_an_event_inside_async_with() -> None:
    server = Server(ok(sse(CREATED, delta("Hel")), then="hang"))
    with trio.move_on_after(5) as scope:
        async with client(server).stream(simple_request(), session_id=SESSION) as events:
            async for event in events:
                if isinstance(event, OutputTextDelta):
                    # The turn is interrupted while it is busy with this event, not while it waits.
                    scope.cancel()
                    await trio.sleep(1)
    assert scope.cancelled_caught
    assert server.bodies[0].closed


async def test_turn_state_is_sent_back_for_the_rest_of_the_turn() -> None:
    server = Server(
        ok(sse(CREATED, COMPLETED), headers={"x-codex-turn-state": "ts-abc"}),
        ok(sse(CREATED, COMPLETED), headers={"x-codex-turn-state": "ts-def"}),
        ok(sse(CREATED, COMPLETED)),
    )
    mc = client(server)
    turn = TurnState()
    for _ in range(3):
        async for _event in mc.stream(simple_request(), session_id=SESSION, turn_state=turn):
            pass
    # The first value wins; a request without a TurnState (a new turn) sends none.
    assert [r.headers.get("x-codex-turn-state") for r in server.requests] == [None, "ts-abc", "ts-abc"]
    async for _event in mc.stream(simple_request(), session_id=SESSION, web_search_eligible=False):
        pass
    assert "x-codex-turn-state" not in server.requests[3].headers
    assert "x-oai-web-search-eligible" not in server.requests[3].headers


def test_status_texts_match_the_reference() -> None:
    assert status_text(413) == "413 Payload Too Large"
    assert status_text(429) == "429 Too Many Requests"
    assert status_text(599) == "599 <unknown status code>"
