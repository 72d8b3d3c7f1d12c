"""Client for the OpenAI Responses API (``POST {base_url}/responses``, streamed as server-sent events).

The base URL is the provider's; a provider without one is reached at the ChatGPT backend while the
account is logged in with ChatGPT tokens and at the OpenAI API otherwise, decided for each request
(see :meth:`ModelProviderInfo.api_base_url`), so a login after a thread started takes effect at once.

It behaves like the reference (Codex 0.94.0), checked by running it against a local mock:

- Request phase: failed connections and 5xx answers are retried up to ``provider.request_max_retries``
  times, after 200 ms, 400 ms, 800 ms … (±10 % jitter). A 429 is never retried here. ``Retry-After`` is
  not honoured, since the reference ignores it too. A 401 asks the :class:`AuthProvider` to refresh once,
  then the request is made again with fresh headers.
- Stream phase: the rate-limit headers come first as :class:`RateLimits`, then the typed events. The stream
  ends at ``response.completed``. A stream that closes before that, a ``response.failed``, or
  ``stream_idle_timeout_ms`` without an event raises :class:`ModelError`.
- Retrying a failed *stream* is the turn loop's job, as it is in the reference: the whole request is made
  again, after the failure has been reported to the client. For that, ``ModelError.retryable``,
  ``ModelError.retry_after``, :func:`backoff`, :meth:`ModelError.retry_notice` and
  ``provider.stream_max_retries`` are what a turn loop needs::

      retries = 0
      turn_state = TurnState()
      while True:
          try:
              async with client.stream(request, session_id=thread_id, turn_state=turn_state) as events:
                  async for event in events:
                      ...
              break
          except ModelError as err:
              if not err.retryable or retries >= provider.stream_max_retries:
                  raise                      # report err.message / err.codex_error_info, fail the turn
              retries += 1
              notice = err.retry_notice(retries, provider.stream_max_retries)   # willRetry: true
              await trio.sleep(err.retry_after if err.retry_after is not None else backoff(retries, rng))
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections import deque
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Literal, Protocol, TypedDict

import httpx
import trio
from typing_extensions import NotRequired

from ..rpc.decode import unexpected
from .provider import ModelProviderInfo
from .sse import SseDecoder

# --------------------------------------------------------------------------------------------------
# Request
# --------------------------------------------------------------------------------------------------

OUTPUT_SCHEMA_NAME = "codex_output_schema"
REASONING_INCLUDE = "reasoning.encrypted_content"


class ReasoningParams(TypedDict, total=False):
    effort: str
    summary: str


class TextFormat(TypedDict):
    type: Literal["json_schema"]
    strict: bool
    schema: Any
    name: str


class TextControls(TypedDict, total=False):
    verbosity: str
    format: TextFormat


class ResponsesRequest(TypedDict):
    """The JSON body of ``POST /responses``, keys in the order the reference sends them."""

    model: str
    instructions: str
    input: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: str
    parallel_tool_calls: bool
    reasoning: ReasoningParams | None
    store: bool
    stream: bool
    include: list[str]
    prompt_cache_key: str
    text: NotRequired[TextControls]


def build_request(
    *,
    model: str,
    instructions: str,
    input: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    parallel_tool_calls: bool,
    prompt_cache_key: str,
    reasoning: ReasoningParams | None = None,
    output_schema: Any = None,
    verbosity: str | None = None,
) -> ResponsesRequest:
    """The request body for one model call.

    ``reasoning`` is None for models without reasoning support; when it is given, the encrypted reasoning
    content is requested back so that it can be replayed in the next request (the store is off).
    ``verbosity`` is only sent for models that support it (the reference sends e.g. "low" for gpt-5.2).
    """
    request = ResponsesRequest(
        model=model,
        instructions=instructions,
        input=input,
        tools=tools,
        tool_choice="auto",
        parallel_tool_calls=parallel_tool_calls,
        reasoning=reasoning,
        store=False,
        stream=True,
        include=[REASONING_INCLUDE] if reasoning is not None else [],
        prompt_cache_key=prompt_cache_key,
    )
    text = TextControls()
    if verbosity is not None:
        text["verbosity"] = verbosity
    if output_schema is not None:
        text["format"] = TextFormat(
            type="json_schema", strict=True, schema=output_schema, name=OUTPUT_SCHEMA_NAME
        )
    if text:
        request["text"] = text
    return request


# --------------------------------------------------------------------------------------------------
# Usage and rate limits (wire shapes of the legacy ``token_count`` event)
# --------------------------------------------------------------------------------------------------


class TokenUsage(TypedDict):
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_output_tokens: int
    total_tokens: int


class RateLimitWindow(TypedDict):
    used_percent: float
    window_minutes: int | None
    resets_at: int | None


class CreditsSnapshot(TypedDict):
    has_credits: bool
    unlimited: bool
    balance: str | None


class RateLimitSnapshot(TypedDict):
    primary: RateLimitWindow | None
    secondary: RateLimitWindow | None
    credits: CreditsSnapshot | None
    plan_type: str | None


def parse_rate_limits(headers: Mapping[str, str]) -> RateLimitSnapshot:
    """The snapshot the ``x-codex-*`` headers describe. Like the reference, this never fails: a response
    without such headers gives a snapshot whose fields are all None (clients see those nulls)."""
    lower = {key.lower(): value for key, value in headers.items()}
    return RateLimitSnapshot(
        primary=_rate_limit_window(lower, "primary"),
        secondary=_rate_limit_window(lower, "secondary"),
        credits=_credits(lower),
        plan_type=None,
    )


def _rate_limit_window(headers: Mapping[str, str], which: str) -> RateLimitWindow | None:
    used_percent = _header_float(headers, f"x-codex-{which}-used-percent")
    if used_percent is None:
        return None
    window_minutes = _header_int(headers, f"x-codex-{which}-window-minutes")
    resets_at = _header_int(headers, f"x-codex-{which}-reset-at")
    # An all-zero window is what the server sends for "no limit here".
    if used_percent == 0.0 and not window_minutes and resets_at is None:
        return None
    return RateLimitWindow(used_percent=used_percent, window_minutes=window_minutes, resets_at=resets_at)


def _credits(headers: Mapping[str, str]) -> CreditsSnapshot | None:
    has_credits = _header_bool(headers, "x-codex-credits-has-credits")
    unlimited = _header_bool(headers, "x-codex-credits-unlimited")
    if has_credits is None or unlimited is None:
        return None
    balance = headers.get("x-codex-credits-balance", "").strip() or None
    return CreditsSnapshot(has_credits=has_credits, unlimited=unlimited, balance=balance)


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    try:
        value = float(headers[name])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


_INT_RE = re.compile(r"[+-]?[0-9]+")


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None or not _INT_RE.fullmatch(raw):
        return None
    return int(raw)


def _header_bool(headers: Mapping[str, str], name: str) -> bool | None:
    raw = headers.get(name)
    if raw is None:
        return None
    if raw.lower() == "true" or raw == "1":
        return True
    if raw.lower() == "false" or raw == "0":
        return False
    return None


# --------------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    pass


@dataclass(frozen=True)
class OutputItemAdded:
    item: dict[str, Any]


@dataclass(frozen=True)
class OutputItemDone:
    item: dict[str, Any]


@dataclass(frozen=True)
class OutputTextDelta:
    item_id: str
    delta: str


@dataclass(frozen=True)
class ReasoningSummaryDelta:
    item_id: str
    summary_index: int
    delta: str


@dataclass(frozen=True)
class ReasoningSummaryPartAdded:
    item_id: str
    summary_index: int


@dataclass(frozen=True)
class ReasoningTextDelta:
    item_id: str
    content_index: int
    delta: str


@dataclass(frozen=True)
class Completed:
    response_id: str
    usage: TokenUsage | None


@dataclass(frozen=True)
class RateLimits:
    snapshot: RateLimitSnapshot


ResponseEvent = (
    Created
    | OutputItemAdded
    | OutputItemDone
    | OutputTextDelta
    | ReasoningSummaryDelta
    | ReasoningSummaryPartAdded
    | ReasoningTextDelta
    | Completed
    | RateLimits
)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------

# The v2 ``CodexErrorInfo`` value: a camelCase string, or a one-key object such as
# {"responseTooManyFailedAttempts": {"httpStatusCode": 429}}.
CodexErrorInfo = str | dict[str, Any]

STREAM_PREFIX = "stream disconnected before completion: "
MSG_INTERNAL_SERVER_ERROR = "We're currently experiencing high demand, which may cause temporary errors."
MSG_CONTEXT_WINDOW = (
    "Codex ran out of room in the model's context window. Start a new thread or clear earlier history "
    "before retrying."
)
MSG_QUOTA_EXCEEDED = "Quota exceeded. Check your plan and billing details."
MSG_USAGE_NOT_INCLUDED = (
    "To use Codex with your ChatGPT plan, upgrade to Plus: https://chatgpt.com/explore/plus."
)
MSG_INVALID_IMAGE = "Image poisoning"
MSG_STREAM_CLOSED = "stream closed before response.completed"
MSG_IDLE_TIMEOUT = "idle timeout waiting for SSE"
MSG_RESPONSE_FAILED = "response.failed event received"
MSG_BODY_ERROR = "Transport error: network error: error decoding response body"
CLOUDFLARE_BLOCKED = (
    "Access blocked by Cloudflare. This usually happens when connecting from a restricted region"
)
_INVALID_IMAGE_MARKER = "The image data you provided does not represent a valid image"
_REQUEST_ID_HEADERS = ("cf-ray", "x-request-id", "x-oai-request-id")


@dataclass(frozen=True)
class RetryNotice:
    """What the turn loop reports before it retries a failed stream (v2 ``error`` with willRetry true)."""

    message: str
    codex_error_info: CodexErrorInfo
    additional_details: str


class ModelError(Exception):
    """Any failure of a model call. ``message`` and ``codex_error_info`` are what clients see.

    ``retryable`` is the reference's verdict on whether the turn loop may try the request again;
    ``retry_after`` (seconds) is the delay the server asked for, when it did. ``rate_limits`` comes with
    usage-limit errors (parsed from that response's headers).
    """

    def __init__(
        self,
        message: str,
        codex_error_info: CodexErrorInfo = "other",
        *,
        http_status: int | None = None,
        will_retry: bool = False,
        retryable: bool = False,
        retry_after: float | None = None,
        rate_limits: RateLimitSnapshot | None = None,
        status_in_info: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.codex_error_info = codex_error_info
        self.http_status = http_status
        self.will_retry = will_retry
        self.retryable = retryable
        self.retry_after = retry_after
        self.rate_limits = rate_limits
        # The reference only reports an HTTP status in error infos for some kinds of error (not for 500).
        self._status_in_info = status_in_info

    def __repr__(self) -> str:
        return f"ModelError({self.message!r}, {self.codex_error_info!r}, http_status={self.http_status!r})"

    def retry_notice(self, retries: int, max_retries: int) -> RetryNotice:
        return RetryNotice(
            message=f"Reconnecting... {retries}/{max_retries}",
            codex_error_info={"responseStreamDisconnected": {"httpStatusCode": self._status_in_info}},
            additional_details=self.message,
        )

    def turn_error(self) -> dict[str, Any]:
        """The v2 ``TurnError`` object for ``error`` and ``turn/completed`` notifications."""
        return {"message": self.message, "codexErrorInfo": self.codex_error_info, "additionalDetails": None}


def stream_error(detail: str, retry_after: float | None = None) -> ModelError:
    """A stream that broke before ``response.completed`` (retryable by the turn loop)."""
    return ModelError(STREAM_PREFIX + detail, "other", retryable=True, retry_after=retry_after)


# Reason phrases as the reference's HTTP library prints them; Python's differ for some codes and
# change between Python versions (413 became "Content Too Large" in 3.13).
_REASONS = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non Authoritative Information", 204: "No Content",
    205: "Reset Content", 206: "Partial Content", 207: "Multi-Status", 208: "Already Reported",
    226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required",
    412: "Precondition Failed", 413: "Payload Too Large", 414: "URI Too Long",
    415: "Unsupported Media Type", 416: "Range Not Satisfiable", 417: "Expectation Failed",
    418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Entity", 423: "Locked",
    424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required",
    429: "Too Many Requests", 431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
    507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended",
    511: "Network Authentication Required",
}  # fmt: skip


def status_text(status: int) -> str:
    """``429 Too Many Requests``, as the reference prints a status."""
    return f"{status} {_REASONS.get(status, '<unknown status code>')}"


def _request_id(headers: Mapping[str, str]) -> str | None:
    lower = {key.lower(): value for key, value in headers.items()}
    for name in _REQUEST_ID_HEADERS:
        if name in lower:
            return lower[name]
    return None


def _with_request_id(text: str, request_id: str | None) -> str:
    return f"{text}, request id: {request_id}" if request_id is not None else text


def unauthorized_error() -> ModelError:
    """A 401 that no credential refresh could fix. The body is dropped, as the reference drops it."""
    return ModelError(
        f"unexpected status {status_text(401)}: ",
        "other",
        http_status=401,
        retryable=True,
        status_in_info=401,
    )


def http_error(
    status: int,
    headers: Mapping[str, str],
    body: str,
    url: str,
    *,
    now: datetime | None = None,
) -> ModelError:
    """The error for a non-2xx answer to the request (after any retries)."""
    if status == 400:
        message = MSG_INVALID_IMAGE if _INVALID_IMAGE_MARKER in body else body
        return ModelError(message, "other", http_status=400)
    if status == 500:
        return ModelError(MSG_INTERNAL_SERVER_ERROR, "internalServerError", http_status=500, retryable=True)
    if status == 429:
        usage = _usage_limit_error(headers, body, now)
        if usage is not None:
            return usage
        return ModelError(
            _with_request_id(f"exceeded retry limit, last status: {status_text(429)}", _request_id(headers)),
            {"responseTooManyFailedAttempts": {"httpStatusCode": 429}},
            http_status=429,
            status_in_info=429,
        )
    request_id = _request_id(headers)
    if status == 403 and "Cloudflare" in body and "blocked" in body:
        message = f"{CLOUDFLARE_BLOCKED} (status {status_text(status)}), url: {url}"
    else:
        message = f"unexpected status {status_text(status)}: {body}, url: {url}"
    return ModelError(
        _with_request_id(message, request_id),
        "other",
        http_status=status,
        retryable=True,
        status_in_info=status,
    )


def _usage_limit_error(headers: Mapping[str, str], body: str, now: datetime | None) -> ModelError | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return None
    kind, plan_type, resets_at = error.get("type"), error.get("plan_type"), error.get("resets_at")
    # The reference reads this body strictly: a field of the wrong type means "not a usage error".
    if not (
        isinstance(kind, (str, type(None)))
        and isinstance(plan_type, (str, type(None)))
        and (resets_at is None or (isinstance(resets_at, int) and not isinstance(resets_at, bool)))
    ):
        return None
    if kind == "usage_limit_reached":
        return ModelError(
            usage_limit_message(plan_type, resets_at, now=now),
            "usageLimitExceeded",
            http_status=429,
            rate_limits=parse_rate_limits(headers),
        )
    if kind == "usage_not_included":
        return ModelError(MSG_USAGE_NOT_INCLUDED, "usageLimitExceeded", http_status=429)
    return None


def usage_limit_message(plan_type: str | None, resets_at: int | None, *, now: datetime | None = None) -> str:
    """The reference's text for ``usage_limit_reached``, which depends on the plan and the reset time."""
    head = "You've hit your usage limit."
    if plan_type in ("free", "go"):
        return (
            f"{head} Upgrade to Plus to continue using Codex (https://chatgpt.com/explore/plus),"
            f"{_or_retry(resets_at, now)}"
        )
    if plan_type == "plus":
        return (
            f"{head} Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
            f"https://chatgpt.com/codex/settings/usage to purchase more credits{_or_retry(resets_at, now)}"
        )
    if plan_type == "pro":
        return (
            f"{head} Visit https://chatgpt.com/codex/settings/usage to purchase more credits"
            f"{_or_retry(resets_at, now)}"
        )
    if plan_type in ("team", "business"):
        return f"{head} To get more access now, send a request to your admin{_or_retry(resets_at, now)}"
    if resets_at is None:
        return f"{head} Try again later."
    return f"{head} Try again at {format_reset_time(resets_at, now)}."


def _or_retry(resets_at: int | None, now: datetime | None) -> str:
    if resets_at is None:
        return " or try again later."
    return f" or try again at {format_reset_time(resets_at, now)}."


def format_reset_time(resets_at: int, now: datetime | None = None) -> str:
    """``3:42 PM`` when the reset falls on today's date, ``Nov 23rd, 2026 2:42 PM`` otherwise, in the
    time zone of ``now`` (the local one by default)."""
    local_now = now if now is not None and now.tzinfo is not None else datetime.now().astimezone()
    reset = datetime.fromtimestamp(resets_at, tz=timezone.utc).astimezone(local_now.tzinfo)
    hour = reset.hour % 12 or 12
    clock = f"{hour}:{reset.minute:02d} {'AM' if reset.hour < 12 else 'PM'}"
    if reset.date() == local_now.date():
        return clock
    day = reset.day
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{reset.strftime('%b')} {day}{suffix}, {reset.year} {clock}"


_RETRY_IN_RE = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(s|ms|seconds?)", re.IGNORECASE)


def _response_failed_error(response: Any) -> ModelError:
    error = response.get("error") if isinstance(response, dict) else None
    if not isinstance(error, dict):
        return stream_error(MSG_RESPONSE_FAILED)
    code = error.get("code")
    if code == "context_length_exceeded":
        return ModelError(MSG_CONTEXT_WINDOW, "contextWindowExceeded")
    if code == "insufficient_quota":
        return ModelError(MSG_QUOTA_EXCEEDED, "usageLimitExceeded")
    if code == "usage_not_included":
        return ModelError(MSG_USAGE_NOT_INCLUDED, "usageLimitExceeded")
    message = error.get("message")
    message = message if isinstance(message, str) else ""
    retry_after = None
    if code == "rate_limit_exceeded":
        match = _RETRY_IN_RE.search(message)
        if match is not None:
            value, unit = float(match.group(1)), match.group(2).lower()
            retry_after = value / 1000 if unit == "ms" else value
    return stream_error(message, retry_after)


# --------------------------------------------------------------------------------------------------
# Authentication hook
# --------------------------------------------------------------------------------------------------


class AuthProvider(Protocol):
    """Supplies credentials for each request and recovers from a 401."""

    async def headers(self) -> dict[str, str]:
        """``authorization`` (and ``chatgpt-account-id`` for ChatGPT tokens); may be empty."""
        ...

    async def refresh_after_unauthorized(self) -> bool:
        """Called once per request after a 401. True: the request is made again with fresh headers().
        False: the 401 fails the call. May raise ModelError to fail it with another message. Its waits
        are its own to bound (the reference gives a client 10 s to answer a token refresh request)."""
        ...

    def is_chatgpt(self) -> bool:
        """Whether the account is logged in with ChatGPT tokens now; read for every request, right
        after headers(), to choose the base URL of a provider that has none."""
        ...


class ApiKeyAuth:
    """A static API key: nothing to refresh, so a 401 fails the call."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "ApiKeyAuth(<redacted>)"

    async def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._key}"}

    async def refresh_after_unauthorized(self) -> bool:
        return False

    def is_chatgpt(self) -> bool:
        return False


class NoAuth:
    """For providers that take no credentials."""

    async def headers(self) -> dict[str, str]:
        return {}

    async def refresh_after_unauthorized(self) -> bool:
        return False

    def is_chatgpt(self) -> bool:
        return False


# --------------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------------

BACKOFF_BASE_SECONDS = 0.2
# How long closing a response may take once the consumer is gone or cancelled.
_CLOSE_TIMEOUT_SECONDS = 5.0


def backoff(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): 0.2 s doubling, ±10 % jitter."""
    return BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0) * rng.uniform(0.9, 1.1)


def make_http_client() -> httpx.AsyncClient:
    """An httpx client suited to this module: no httpx timeouts (every wait is bounded here, by the
    provider's idle timeout), redirects followed and proxies taken from the environment, like the
    reference's HTTP client."""
    return httpx.AsyncClient(timeout=None, follow_redirects=True, trust_env=True)


class _Unauthorized(Exception):
    pass


TURN_STATE_HEADER = "x-codex-turn-state"


class TurnState:
    """Sticky routing within one turn: the first ``x-codex-turn-state`` a response carries is sent back
    on every later request of the same turn (the reference keeps the first value and ignores later
    ones). The turn loop makes one per turn and passes it to each ``stream()`` call."""

    def __init__(self) -> None:
        self.value: str | None = None


@dataclass(frozen=True)
class _Call:
    body: bytes
    session_id: str
    turn_state: TurnState | None
    web_search_eligible: bool


class ModelClient:
    """Streams Responses API calls to one provider.

    ``http`` is owned by the caller (one client can serve many threads); ``originator`` and
    ``user_agent`` are the values the reference derives from the connected client's name. Waits use
    trio's clock, so tests run them on a MockClock.
    """

    def __init__(
        self,
        provider: ModelProviderInfo,
        *,
        http: httpx.AsyncClient,
        auth: AuthProvider,
        originator: str,
        user_agent: str,
        environ: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self._http = http
        self._auth = auth
        self._originator = originator
        self._user_agent = user_agent
        self._environ = environ if environ is not None else os.environ
        self._rng = rng if rng is not None else random.Random()

    @property
    def stream_max_retries(self) -> int:
        return self.provider.stream_max_retries

    @property
    def idle_timeout(self) -> float:
        return self.provider.stream_idle_timeout_ms / 1000

    def url(self) -> str:
        """Where the next request goes, with the credentials the auth provider holds now."""
        base_url = self.provider.api_base_url(chatgpt_auth=self._auth.is_chatgpt())
        url = base_url.rstrip("/") + "/responses"
        if self.provider.query_params:
            # Unencoded, as the reference joins them; httpx percent-encodes what must be.
            url += "?" + "&".join(f"{key}={value}" for key, value in self.provider.query_params.items())
        return url

    def stream(
        self,
        request: ResponsesRequest | dict[str, Any],
        *,
        session_id: str,
        turn_state: TurnState | None = None,
        web_search_eligible: bool = True,
    ) -> ResponseStream:
        """One model call: iterate the result with ``async for``, inside ``async with`` when the loop body
        can be cancelled or can stop early (see :class:`ResponseStream`). Nothing is sent until the first
        event is asked for."""
        body = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return ResponseStream(self._events(_Call(body, session_id, turn_state, web_search_eligible)))

    async def _headers(self, call: _Call) -> dict[str, str]:
        headers: dict[str, str] = dict(self.provider.http_headers)
        for name, variable in self.provider.env_http_headers.items():
            value = self._environ.get(variable, "")
            if value.strip():
                headers[name] = value
        if call.web_search_eligible:
            headers["x-oai-web-search-eligible"] = "true"
        if call.turn_state is not None and call.turn_state.value is not None:
            headers[TURN_STATE_HEADER] = call.turn_state.value
        headers["session_id"] = call.session_id
        headers["accept"] = "text/event-stream"
        headers.update(await self._auth.headers())
        headers["content-type"] = "application/json"
        headers["user-agent"] = self._user_agent
        headers["originator"] = self._originator
        return headers

    async def _events(self, call: _Call) -> AsyncGenerator[ResponseEvent, None]:
        response = await self._open(call)
        try:
            turn_state = response.headers.get(TURN_STATE_HEADER)
            if call.turn_state is not None and call.turn_state.value is None and turn_state:
                call.turn_state.value = turn_state
            yield RateLimits(parse_rate_limits(response.headers))
            async with aclosing(self._read(response)) as events:
                async for event in events:
                    if isinstance(event, Completed):
                        # The reference stops reading at response.completed; the connection goes now, so
                        # a consumer that stops iterating here leaves nothing open.
                        await _close_response(response)
                    yield event
        finally:
            await _close_response(response)

    async def _open(self, call: _Call) -> httpx.Response:
        try:
            return await self._open_with_retries(call)
        except _Unauthorized:
            pass
        if not await self._auth.refresh_after_unauthorized():
            raise unauthorized_error()
        try:
            return await self._open_with_retries(call)
        except _Unauthorized:
            raise unauthorized_error() from None

    async def _open_with_retries(self, call: _Call) -> httpx.Response:
        max_retries = max(self.provider.request_max_retries, 0)
        attempt = 0
        while True:
            headers = await self._headers(call)
            # Read with no checkpoint since headers(): the URL matches the credentials just taken.
            request = self._http.build_request("POST", self.url(), headers=headers, content=call.body)
            # The reference's HTTP stack sends neither; keeping the request identical keeps mocks honest.
            for name in ("accept-encoding", "connection"):
                if name not in {key.lower() for key in headers}:
                    request.headers.pop(name, None)
            response: httpx.Response | None = None
            failure: ModelError | None = None
            # Waiting for the response head is bounded like the wait for each event.
            with trio.move_on_after(self.idle_timeout):
                try:
                    response = await self._http.send(request, stream=True)
                except httpx.TransportError:
                    failure = stream_error(f"error sending request for url ({request.url})")
            if response is not None:
                if response.is_success:
                    return response
                status = response.status_code
                text = await self._read_error_body(response)
                if status == 401:
                    raise _Unauthorized
                failure = http_error(status, response.headers, text, str(request.url))
                if status < 500:
                    raise failure
            elif failure is None:
                failure = stream_error(MSG_IDLE_TIMEOUT)
            if attempt >= max_retries:
                raise failure
            attempt += 1
            await trio.sleep(backoff(attempt, self._rng))

    async def _read_error_body(self, response: httpx.Response) -> str:
        chunks: list[bytes] = []
        try:
            with trio.move_on_after(self.idle_timeout):
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
        except httpx.HTTPError:
            pass
        finally:
            await _close_response(response)
        return b"".join(chunks).decode("utf-8", errors="replace")

    async def _read(self, response: httpx.Response) -> AsyncGenerator[ResponseEvent, None]:
        decoder = SseDecoder()
        chunks = response.aiter_bytes().__aiter__()
        pending: deque[str] = deque()
        response_error: ModelError | None = None
        while True:
            data: str | None = None
            ended = False
            with trio.move_on_after(self.idle_timeout):
                while not pending:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        ended = True
                        break
                    except httpx.HTTPError:
                        raise stream_error(MSG_BODY_ERROR) from None
                    pending.extend(event.data for event in decoder.feed(chunk))
                if pending:
                    data = pending.popleft()
            if data is None and not ended:
                raise stream_error(MSG_IDLE_TIMEOUT)
            if data is None:
                raise response_error if response_error is not None else stream_error(MSG_STREAM_CLOSED)
            try:
                payload = json.loads(data)
            except ValueError:
                continue
            if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
                continue
            kind = payload["type"]
            if kind in ("response.completed", "response.done"):
                if "response" not in payload or payload["response"] is None:
                    continue
                try:
                    yield _parse_completed(payload["response"])
                    return
                except _ParseError as exc:
                    response_error = stream_error(f"failed to parse ResponseCompleted: {exc}")
                continue
            if kind == "response.failed":
                if payload.get("response") is not None:
                    response_error = _response_failed_error(payload["response"])
                continue
            event = _parse_event(kind, payload)
            if event is not None:
                yield event


async def _close_response(response: httpx.Response) -> None:
    # Shielded so that a cancelled consumer still releases the connection, and bounded so that a broken
    # peer cannot hold the closing task.
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + _CLOSE_TIMEOUT_SECONDS
        with suppress(httpx.HTTPError):
            await response.aclose()


class _ParseError(Exception):
    pass


def _parse_completed(response: Any) -> Completed:
    if not isinstance(response, dict):
        raise _ParseError(f"invalid type: {unexpected(response)}, expected struct ResponseCompleted")
    response_id = _required(response, "id", str)
    usage = response.get("usage")
    return Completed(response_id=response_id, usage=_parse_usage(usage) if usage is not None else None)


def _parse_usage(usage: Any) -> TokenUsage:
    if not isinstance(usage, dict):
        raise _ParseError(f"invalid type: {unexpected(usage)}, expected struct ResponseCompletedUsage")
    input_details = usage.get("input_tokens_details")
    output_details = usage.get("output_tokens_details")
    return TokenUsage(
        input_tokens=_required(usage, "input_tokens", int),
        cached_input_tokens=(
            _required(input_details, "cached_tokens", int) if input_details is not None else 0
        ),
        output_tokens=_required(usage, "output_tokens", int),
        reasoning_output_tokens=(
            _required(output_details, "reasoning_tokens", int) if output_details is not None else 0
        ),
        total_tokens=_required(usage, "total_tokens", int),
    )


def _required(obj: Any, key: str, kind: type) -> Any:
    if not isinstance(obj, dict):
        raise _ParseError(f"invalid type: {unexpected(obj)}, expected a map")
    if key not in obj:
        raise _ParseError(f"missing field `{key}`")
    value = obj[key]
    if kind is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise _ParseError(f"invalid type: {unexpected(value)}, expected i64")
    if kind is str and not isinstance(value, str):
        raise _ParseError(f"invalid type: {unexpected(value)}, expected a string")
    return value


def _parse_event(kind: str, payload: dict[str, Any]) -> ResponseEvent | None:
    """The typed event for one SSE payload; None for unknown types and for payloads missing a field the
    event needs (the reference skips both)."""
    # The reference does not need item ids on deltas; an event without one still counts, with "".
    raw_id = payload.get("item_id")
    item_id = raw_id if isinstance(raw_id, str) else ""
    delta = payload.get("delta")
    if kind == "response.created":
        return Created() if payload.get("response") is not None else None
    if kind in ("response.output_item.added", "response.output_item.done"):
        item = payload.get("item")
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            return None
        return OutputItemAdded(item) if kind == "response.output_item.added" else OutputItemDone(item)
    if kind == "response.output_text.delta":
        return OutputTextDelta(item_id, delta) if isinstance(delta, str) else None
    if kind == "response.reasoning_summary_text.delta":
        index = _index(payload, "summary_index")
        if not isinstance(delta, str) or index is None:
            return None
        return ReasoningSummaryDelta(item_id, index, delta)
    if kind == "response.reasoning_text.delta":
        index = _index(payload, "content_index")
        if not isinstance(delta, str) or index is None:
            return None
        return ReasoningTextDelta(item_id, index, delta)
    if kind == "response.reasoning_summary_part.added":
        index = _index(payload, "summary_index")
        return ReasoningSummaryPartAdded(item_id, index) if index is not None else None
    return None


def _index(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ResponseStream:
    """The events of one model call: an async iterator that is also an async context manager.

    The HTTP response is released when the iteration ends, fails, or is cancelled while waiting for the
    next event. A consumer that can be cancelled (or can stop) while it handles an event, between two
    ``__anext__`` calls, wraps the loop in ``async with`` (or ``contextlib.aclosing``) so that the response
    is released right then and not when the garbage collector gets to it.
    """

    def __init__(self, events: AsyncGenerator[ResponseEvent, None]) -> None:
        self._events = events
        self._closed = False

    def __aiter__(self) -> ResponseStream:
        return self

    async def __anext__(self) -> ResponseEvent:
        if self._closed:
            raise StopAsyncIteration
        try:
            return await self._events.__anext__()
        except BaseException:
            # Whatever ended the generator (exhaustion, ModelError, the consumer's cancellation) went
            # through its cleanup, which closed the HTTP response; there is nothing left to close.
            self._closed = True
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + _CLOSE_TIMEOUT_SECONDS
            await self._events.aclose()

    async def __aenter__(self) -> ResponseStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
