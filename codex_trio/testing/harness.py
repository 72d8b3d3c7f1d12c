"""Fault injection for end-to-end tests: the real app-server as a subprocess (on stdio, or listening on
a websocket), and clients that misbehave on purpose.

Usage::

    async with open_server(validator=ProtocolValidator()) as server:
        await server.initialize()
        await server.send_raw(huge_line())                 # garbage the server must ignore
        reply = await server.call("getUserAgent")          # ... while still answering this
        flood = await server.flood(5_000, "getUserAgent")  # pipelined requests
    # leaving the block closes stdin and checks: exit status 0, in time, no traceback on stderr

The client side is transport-agnostic (:class:`RpcClient` works over any pair of trio byte streams, so
the same responder policies and flooder run against an in-memory ``Connection`` in unit tests).

Over websocket, the same API, one message per text frame, and several clients per server::

    async with open_ws_server(validator_factory=ProtocolValidator) as server:
        async with server.connect() as client, server.connect(receive_buffer=4096) as stalled:
            await client.send_text_frame(b"{not json")         # a frame the server must ignore
            await client.send_in_pieces(request, piece=3)      # one message in fragments
            await stalled.pause_reading()                      # a client that stops reading
    # leaving the block sends SIGTERM and checks: exit status 0, in time, no traceback on stderr

``open_ws_client`` connects the same client to any ``ws://`` URL (an in-process listener, too).

Server->client requests (approvals, token refresh) go to a pluggable *responder*: answer normally
(:class:`AnswerNormally`), late (:class:`AnswerAfter`), with a JSON-RPC error (:class:`AnswerWithError`),
never (:class:`NeverAnswer`), by hanging up on receipt (:class:`CloseStdinOnRequest`: stdin closed, or
a websocket closing handshake) or by dying (:class:`DisconnectOnRequest`); :class:`PerMethod` mixes
them. Without a responder, server requests land in the inbox like any other message and the test
answers them with :meth:`RpcClient.respond`.

Every message read from the server goes through the ``validator`` (an object with ``observe_client``
and ``check_server``, e.g. tests/schema_check.py's ``ProtocolValidator``) before anything else sees it;
whatever the client sends as a message is shown to it first. A violation fails the test at once.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast
from urllib.parse import urlsplit

import trio

import codex_trio

from ..transport.framing import LineReader

if TYPE_CHECKING:
    # Only the websocket client needs it; imported where used.
    import trio_websocket

if sys.version_info < (3, 11):
    # Only present on 3.10, where trio depends on it.
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

WireMessage = dict[str, Any]
RequestId = int | str

# Nothing listens on the discard port: whatever the server tries to reach there fails at once, locally.
DEAD_URL = "http://127.0.0.1:9"
DEFAULT_TIMEOUT = 10.0
MIB = 1024 * 1024
OVERLOADED = -32001
OVERLOADED_MESSAGE = "Server overloaded; retry later."
TRACEBACK_MARKERS = ("Traceback (most recent call last)", "Exception Group Traceback")


# --------------------------------------------------------------------------------------------
# Failures the harness reports (AssertionError, so pytest shows them as test failures)


class HarnessFailure(AssertionError):
    """The server did something a user would see as broken."""


class ServerOutputClosed(HarnessFailure):
    """The server closed stdout while the client still expected a message."""


class NoMessage(HarnessFailure):
    """Nothing (or not the expected message) arrived in time."""


class ServerMisbehaved(HarnessFailure):
    """The server wrote something that is not a JSON message on stdout."""


class ServerHung(HarnessFailure):
    """The server did not exit in time."""


class RpcCallFailed(HarnessFailure):
    """A call expected to succeed got a JSON-RPC error."""

    def __init__(self, method: str, reply: WireMessage) -> None:
        super().__init__(f"{method} failed: {reply.get('error')!r}")
        self.method = method
        self.reply = reply
        self.error: dict[str, Any] = reply.get("error") or {}


class MessageChecker(Protocol):
    """What the harness needs from a protocol validator."""

    def observe_client(self, msg: Any) -> object: ...

    def check_server(self, msg: Any) -> object: ...


# --------------------------------------------------------------------------------------------
# Server->client requests and the responder policies


@dataclass(frozen=True)
class ServerRequest:
    id: RequestId
    method: str
    params: Any = None


class Responder(Protocol):
    async def __call__(self, client: RpcClient, request: ServerRequest) -> None: ...


ResultSpec = Any  # a JSON value, or a callable(params) -> JSON value


def _user_input_answers(params: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for question in (params or {}).get("questions") or []:
        options = question.get("options") or []
        answers[question["id"]] = {"answers": [options[0]["label"]] if options else ["ok"]}
    return {"answers": answers}


# What an agreeable client answers; every entry validates against the protocol's response schema.
DEFAULT_RESULTS: Mapping[str, ResultSpec] = {
    "item/commandExecution/requestApproval": {"decision": "accept"},
    "item/fileChange/requestApproval": {"decision": "accept"},
    "item/tool/requestUserInput": _user_input_answers,
    "item/tool/call": {"output": "ok", "success": True},
    "applyPatchApproval": {"decision": "approved"},
    "execCommandApproval": {"decision": "approved"},
    # account/chatgptAuthTokens/refresh has no sensible default: tokens are the test's business.
}

# What a client answers to a request it has no answer for.
METHOD_NOT_FOUND = -32601


@dataclass
class AnswerNormally:
    """Answer at once: ``results`` (by method; a value or a callable of the params) over the defaults.

    A method with no result configured gets a ``-32601`` error, as a real client would send.
    """

    results: Mapping[str, ResultSpec] = field(default_factory=dict)

    def result_for(self, request: ServerRequest) -> tuple[bool, Any]:
        spec = self.results.get(request.method, DEFAULT_RESULTS.get(request.method, _MISSING))
        if spec is _MISSING:
            return False, None
        return True, spec(request.params) if callable(spec) else spec

    async def __call__(self, client: RpcClient, request: ServerRequest) -> None:
        found, result = self.result_for(request)
        if found:
            await client.respond(request.id, result)
        else:
            await client.respond_error(
                request.id, METHOD_NOT_FOUND, f"harness has no answer for {request.method}"
            )


_MISSING = object()


@dataclass
class AnswerAfter:
    """Answer ``delay`` seconds late (with ``then``, by default as ``AnswerNormally`` would)."""

    delay: float
    then: Responder = field(default_factory=AnswerNormally)

    async def __call__(self, client: RpcClient, request: ServerRequest) -> None:
        await trio.sleep(self.delay)
        await self.then(client, request)


@dataclass
class AnswerWithError:
    code: int = -32000
    message: str = "request refused by the harness client"
    data: Any = None

    async def __call__(self, client: RpcClient, request: ServerRequest) -> None:
        await client.respond_error(request.id, self.code, self.message, self.data)


@dataclass
class NeverAnswer:
    async def __call__(self, client: RpcClient, request: ServerRequest) -> None:
        return None


@dataclass
class CloseStdinOnRequest:
    """Hang up as soon as a server request arrives: close the server's stdin (on a websocket, the
    closing handshake)."""

    async def __call__(self, client: RpcClient, request: ServerRequest) -> None:
        await client.close_stdin()


@dataclass
class DisconnectOnRequest:
    """Die (``RpcClient.disconnect``: both directions closed, no goodbye) as soon as a server request
    arrives."""

    async def __call__(self, client: RpcClient, request: ServerRequest) -> None:
        await client.disconnect()


@dataclass
class PerMethod:
    """A policy per method; ``default`` for the others."""

    policies: Mapping[str, Responder]
    default: Responder = field(default_factory=AnswerNormally)

    async def __call__(self, client: RpcClient, request: ServerRequest) -> None:
        await self.policies.get(request.method, self.default)(client, request)


# --------------------------------------------------------------------------------------------
# Misbehaving input


# Lines that are not JSON at all: no answer, no disturbance.
MALFORMED_JSON_LINES: tuple[bytes, ...] = (
    b"{not json",
    b'{"id":1,"method":',
    b"}",
    b"nul",
    b'{"id":2 "method":"getUserAgent"}',
    b'{"id":3,"method":"getUserAgent",}',
    b"\xff\xfe\xfd",
    b'{"id":4,"method":"getUserAgent","x":"\xc3"}',  # invalid UTF-8 inside a string
)

# Well-formed JSON that is no JSON-RPC message the server should answer.
NON_MESSAGE_JSON_LINES: tuple[bytes, ...] = (
    b"[1,2]",
    b'"a string"',
    b"42",
    b"null",
    b"true",
    b"{}",
    b'{"foo":1}',
    b'{"id":77}',  # read as a reply to a request the server never sent
    b'{"id":78,"result":{}}',
    b'{"id":79,"error":{"code":-1,"message":"unasked"}}',
    b'{"method":"no/such/notification","params":{"a":1}}',
    b'[{"id":80,"method":"getUserAgent"}]',  # a JSON-RPC batch: not supported, not answered
)


def garbage_lines() -> bytes:
    """Every malformed and non-message line above, newline-terminated."""
    return b"".join(line + b"\n" for line in (*MALFORMED_JSON_LINES, *NON_MESSAGE_JSON_LINES))


def binary_junk(size: int = 64 * 1024, *, seed: int = 0) -> bytes:
    """Random bytes (newlines included); ends with a newline so the next message stays intact."""
    rng = random.Random(seed)
    return rng.randbytes(size) + b"\n"


def huge_line(size: int = 20 * MIB, fill: bytes = b"x") -> bytes:
    """One line of ``size`` bytes that is not JSON."""
    return fill * size + b"\n"


def huge_request(request_id: RequestId, method: str, size: int = 20 * MIB) -> WireMessage:
    """A valid request padded past ``size`` bytes with a member the server must ignore."""
    return {"id": request_id, "method": method, "padding": "p" * size}


def message_bytes(msg: Any) -> bytes:
    """One message as JSON, without framing."""
    try:
        return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8; escaped, they reach the server as the client wrote them.
        return json.dumps(msg, separators=(",", ":")).encode("ascii")


def encode_message(msg: Any) -> bytes:
    """One message, newline-terminated, as a client would frame it on stdio."""
    return message_bytes(msg) + b"\n"


# --------------------------------------------------------------------------------------------
# The client


class _Waiter(Protocol):
    def deliver(self, msg: WireMessage) -> None: ...

    def output_closed(self) -> None: ...


class _CallSlot:
    def __init__(self) -> None:
        self.done = trio.Event()
        self.reply: WireMessage | None = None

    def deliver(self, msg: WireMessage) -> None:
        self.reply = msg
        self.done.set()

    def output_closed(self) -> None:
        self.done.set()


@dataclass
class FloodResult:
    """The replies that came back for the requests ``ids`` (in sending order), in arrival order."""

    ids: list[RequestId]
    replies: list[WireMessage]
    elapsed: float
    # Replies missing when the server closed its output.
    missing: int = 0

    @property
    def results(self) -> list[WireMessage]:
        return [r for r in self.replies if "result" in r]

    @property
    def overloaded(self) -> list[WireMessage]:
        return [r for r in self.replies if (r.get("error") or {}).get("code") == OVERLOADED]

    @property
    def other_errors(self) -> list[WireMessage]:
        return [r for r in self.replies if "error" in r and r["error"].get("code") != OVERLOADED]

    @property
    def in_order(self) -> bool:
        return [r.get("id") for r in self.replies] == self.ids

    @property
    def rate(self) -> float:
        """Replies per second."""
        return len(self.replies) / self.elapsed if self.elapsed > 0 else math.inf


class _FloodCollector:
    def __init__(self, expected: int, window: float) -> None:
        self.expected = expected
        self.window = window
        self.replies: list[WireMessage] = []
        self.outstanding = 0
        self.done = trio.Event()
        self.room = trio.Event()
        self.closed = False

    def deliver(self, msg: WireMessage) -> None:
        self.replies.append(msg)
        self.outstanding -= 1
        if self.outstanding < self.window:
            self.room.set()
        if len(self.replies) == self.expected:
            self.done.set()

    def output_closed(self) -> None:
        self.closed = True
        self.room.set()
        self.done.set()


def _id_key(value: Any) -> str | None:
    # 1 and "1" are different ids; bools are no ids.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    return json.dumps(value)


class RpcClient:
    """A JSON-RPC client over a pair of byte streams (the server's stdin and stdout, or memory)."""

    def __init__(
        self,
        send_stream: trio.abc.SendStream,
        receive_stream: trio.abc.ReceiveStream,
        *,
        validator: MessageChecker | None = None,
        responder: Responder | None = None,
        name: str = "client",
    ) -> None:
        self.name = name
        self.validator = validator
        self.responder = responder
        self._send_stream = send_stream
        self._receive_stream = receive_stream
        self._reader = LineReader(receive_stream)
        self._send_lock = trio.StrictFIFOLock()
        self._ids = 0
        self._waiters: dict[str, _Waiter] = {}
        self._inbox_send, self._inbox = trio.open_memory_channel[WireMessage](math.inf)
        self._nursery: trio.Nursery | None = None
        self._reader_scope: trio.CancelScope | None = None
        self._reader_stopped = trio.Event()
        self._reader_stopped.set()
        self._new_message = trio.Event()
        self.stdin_closed = False
        self.output_done = False
        # Records, in arrival order.
        self.notifications: list[WireMessage] = []
        # When each of ``notifications`` was read (trio's clock), for latency measurements.
        self.notification_times: list[float] = []
        self.server_requests: list[ServerRequest] = []
        self.replies_sent: list[WireMessage] = []
        self.messages_received = 0

    # ---- lifecycle (driven by open_rpc_client / open_server) --------------------------------

    def _attach(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def resume_reading(self) -> None:
        """(Re)start reading the server's output; at start-up this happens by itself."""
        if self._nursery is None:
            raise RuntimeError("the client is not running")
        if not self._reader_stopped.is_set():
            return
        self._reader_stopped = trio.Event()
        self._reader_scope = trio.CancelScope()
        self._nursery.start_soon(self._read_loop, self._reader_scope, self._reader_stopped)

    async def pause_reading(self) -> None:
        """Stop reading the server's output (it piles up in the pipe) until ``resume_reading``."""
        if self._reader_scope is not None:
            self._reader_scope.cancel()
        await self._reader_stopped.wait()

    @property
    def reading(self) -> bool:
        return not self._reader_stopped.is_set()

    async def _read_loop(self, scope: trio.CancelScope, stopped: trio.Event) -> None:
        try:
            with scope:
                while True:
                    try:
                        line = await self._receive_message()
                    except (trio.ClosedResourceError, trio.BrokenResourceError):
                        line = None
                    if line is None:
                        self._end_of_output()
                        return
                    self._on_line(line)
        finally:
            stopped.set()

    async def _receive_message(self) -> bytes | None:
        """The next message the server wrote (one line), None at the end of its output."""
        return await self._reader.receive_line()

    def _end_of_output(self) -> None:
        if self.output_done:
            return
        self.output_done = True
        self._inbox_send.close()
        for waiter in self._waiters.values():
            waiter.output_closed()
        self._waiters.clear()
        self._wake()

    def _wake(self) -> None:
        # Only wait_notification waits on this; a fresh Event per message would cost a flood dearly.
        if self._new_message.statistics().tasks_waiting:
            self._new_message.set()
            self._new_message = trio.Event()

    def _on_line(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError as exc:
            shown = line[:300].decode("utf-8", "replace")
            raise ServerMisbehaved(
                f"{self.name}: the server wrote a non-JSON line ({exc}): {shown!r}"
            ) from None
        if self.validator is not None:
            self.validator.check_server(msg)
        self.messages_received += 1
        if not isinstance(msg, dict):
            raise ServerMisbehaved(f"{self.name}: the server wrote a JSON {type(msg).__name__}")
        if "method" in msg and "id" in msg:
            request = ServerRequest(msg["id"], msg["method"], msg.get("params"))
            self.server_requests.append(request)
            if self.responder is not None and self._nursery is not None:
                self._nursery.start_soon(self._answer, request, name=f"answer {request.method}")
                self._wake()
                return
        elif "method" in msg:
            self.notifications.append(msg)
            self.notification_times.append(trio.current_time())
        else:
            key = _id_key(msg.get("id"))
            waiter = self._waiters.pop(key, None) if key is not None else None
            if waiter is not None:
                waiter.deliver(msg)
                self._wake()
                return
        self._inbox_send.send_nowait(msg)
        self._wake()

    async def _answer(self, request: ServerRequest) -> None:
        assert self.responder is not None
        # The server (or the policy itself) may have closed the pipe: nobody is left to answer.
        with suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            await self.responder(self, request)

    # ---- sending -----------------------------------------------------------------------------

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are: no framing, not shown to the validator."""
        async with self._send_lock:
            await self._send_stream.send_all(data)

    async def send_messages(self, messages: Sequence[bytes]) -> None:
        """Send already-encoded messages (``message_bytes``), each framed as the transport frames a
        message, in order; not shown to the validator."""
        await self.send_raw(b"".join(m + b"\n" for m in messages))

    async def send_in_pieces(self, data: Any, *, piece: int = 1, pause: float = 0.005) -> None:
        """Write ``data`` in ``piece``-byte writes with a pause between them (partial lines).

        ``data`` is raw bytes, or a message (framed, and shown to the validator first).
        """
        if not isinstance(data, bytes):
            if self.validator is not None:
                self.validator.observe_client(data)
            data = encode_message(data)
        async with self._send_lock:
            for start in range(0, len(data), piece):
                await self._send_stream.send_all(data[start : start + piece])
                await trio.sleep(pause)

    async def send(self, msg: Any) -> None:
        """Send one message (any JSON value), framed; the validator sees it first."""
        if self.validator is not None:
            self.validator.observe_client(msg)
        await self.send_messages([message_bytes(msg)])

    async def request(self, method: str, params: Any = None, *, id: RequestId | None = None) -> RequestId:
        """Send a request without waiting for its reply (it arrives in the inbox); returns its id."""
        request_id = self.next_id() if id is None else id
        await self.send(_request(request_id, method, params))
        return request_id

    async def send_requests(self, method: str, *, count: int, params: Any = None) -> list[RequestId]:
        """Write ``count`` requests at once, without waiting for any reply (they go to the inbox,
        in order); returns their ids. The write blocks while the server does not read."""
        ids: list[RequestId] = [self.next_id() for _ in range(count)]
        messages = [_request(request_id, method, params) for request_id in ids]
        if self.validator is not None:
            for msg in messages:
                self.validator.observe_client(msg)
        await self.send_messages([message_bytes(msg) for msg in messages])
        return ids

    async def notify(self, method: str, params: Any = None) -> None:
        msg: WireMessage = {"method": method}
        if params is not None:
            msg["params"] = params
        await self.send(msg)

    async def respond(self, request_id: RequestId, result: Any) -> None:
        """Answer a server->client request."""
        msg = {"id": request_id, "result": result}
        self.replies_sent.append(msg)
        await self.send(msg)

    async def respond_error(
        self, request_id: RequestId, code: int, message: str, data: Any = None
    ) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        msg = {"id": request_id, "error": error}
        self.replies_sent.append(msg)
        await self.send(msg)

    async def close_stdin(self) -> None:
        """Hang up: the server sees end of input. Interrupts a write that is blocked."""
        self.stdin_closed = True
        await self._send_stream.aclose()

    async def close_output(self) -> None:
        """Close our end of the server's output, as a client that dies does. Whatever was not
        read is lost; pending calls fail with ``ServerOutputClosed``."""
        await self.pause_reading()
        await self._receive_stream.aclose()
        self._end_of_output()

    async def disconnect(self) -> None:
        """Go away as a client that dies does: both directions at once, no goodbye."""
        if not self.stdin_closed:
            await self.close_stdin()
        await self.close_output()

    # ---- receiving ---------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        params: Any = None,
        *,
        id: RequestId | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        message: WireMessage | None = None,
    ) -> WireMessage:
        """Send a request and return its reply (result or error), within ``timeout`` seconds.

        ``message`` sends that exact request object instead (it must carry ``id``).
        """
        if message is None:
            message = _request(self.next_id() if id is None else id, method, params)
        msg = message
        key = _id_key(msg.get("id"))
        if key is None:
            raise ValueError(f"cannot wait for a reply to id {msg.get('id')!r}")
        if self.output_done:
            raise ServerOutputClosed(f"{self.name}: output already closed before {method}")
        slot = _CallSlot()
        self._waiters[key] = slot
        try:
            with trio.move_on_after(timeout) as scope:
                await self.send(msg)
                await slot.done.wait()
        finally:
            self._waiters.pop(key, None)
        if scope.cancelled_caught:
            raise NoMessage(f"{self.name}: no reply to {method} (id {msg['id']!r}) within {timeout:g}s")
        if slot.reply is None:
            raise ServerOutputClosed(f"{self.name}: the server closed its output before answering {method}")
        return slot.reply

    async def call_result(
        self, method: str, params: Any = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Any:
        """The result of a call expected to succeed; ``RpcCallFailed`` for an error reply."""
        reply = await self.call(method, params, timeout=timeout)
        if "error" in reply:
            raise RpcCallFailed(method, reply)
        return reply["result"]

    async def initialize(
        self,
        name: str = "codex_trio_harness",
        version: str = "0.0.1",
        *,
        capabilities: Mapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Any:
        """The handshake: ``initialize``, then the ``initialized`` notification. Returns the result."""
        params: dict[str, Any] = {"clientInfo": {"name": name, "version": version}}
        if capabilities is not None:
            params["capabilities"] = dict(capabilities)
        result = await self.call_result("initialize", params, timeout=timeout)
        await self.notify("initialized")
        return result

    async def receive(self, timeout: float = DEFAULT_TIMEOUT) -> WireMessage:
        """The next message not claimed by ``call``/``flood`` (nor answered by the responder)."""
        if not self.reading and not self.output_done:
            try:
                return self._inbox.receive_nowait()
            except trio.WouldBlock:
                raise RuntimeError("receive() while reading is paused and nothing is left") from None
        with trio.move_on_after(timeout) as scope:
            try:
                return await self._inbox.receive()
            except trio.EndOfChannel:
                raise ServerOutputClosed(f"{self.name}: the server closed its output") from None
        assert scope.cancelled_caught
        raise NoMessage(f"{self.name}: no message within {timeout:g}s")

    def received_so_far(self) -> list[WireMessage]:
        """Whatever sits in the inbox now, without waiting."""
        out: list[WireMessage] = []
        while True:
            try:
                out.append(self._inbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return out

    async def drain(self, timeout: float = DEFAULT_TIMEOUT) -> list[WireMessage]:
        """Every message left until the server closes its output (``NoMessage`` if it does not)."""
        out: list[WireMessage] = []
        with trio.move_on_after(timeout) as scope:
            async for msg in self._inbox:
                out.append(msg)
            return out
        assert scope.cancelled_caught
        raise NoMessage(f"{self.name}: output still open after {timeout:g}s; got {len(out)} message(s)")

    async def wait_notification(
        self, method: str, *, after: int = 0, timeout: float = DEFAULT_TIMEOUT
    ) -> WireMessage:
        """The first notification ``method`` at or after index ``after`` of ``notifications``
        (it stays in the inbox too)."""
        with trio.move_on_after(timeout):
            while True:
                for note in self.notifications[after:]:
                    if note.get("method") == method:
                        return note
                after = len(self.notifications)
                if self.output_done:
                    raise ServerOutputClosed(f"{self.name}: output closed before {method}")
                await self._new_message.wait()
        raise NoMessage(f"{self.name}: no {method} notification within {timeout:g}s")

    async def wait_server_request(
        self, method: str, *, after: int = 0, timeout: float = DEFAULT_TIMEOUT
    ) -> ServerRequest:
        """The first server->client request ``method`` at or after index ``after`` of
        ``server_requests`` (whether the responder or the inbox took it)."""
        with trio.move_on_after(timeout):
            while True:
                for request in self.server_requests[after:]:
                    if request.method == method:
                        return request
                after = len(self.server_requests)
                if self.output_done:
                    raise ServerOutputClosed(f"{self.name}: output closed before a {method} request")
                await self._new_message.wait()
        raise NoMessage(f"{self.name}: no {method} request within {timeout:g}s")

    async def flood(
        self,
        n: int,
        method: str,
        params: Any = None,
        *,
        window: int | None = None,
        batch: int = 64,
        timeout: float = 60.0,
    ) -> FloodResult:
        """Pipeline ``n`` requests (at most ``window`` unanswered, unlimited by default) and collect
        every reply. The requests go out in writes of ``batch`` while the replies are read
        concurrently, as a client that never waits for an answer before its next request."""
        if not self.reading:
            raise RuntimeError("flood() needs the output to be read")
        limit = window if window is not None else math.inf
        ids: list[RequestId] = [self.next_id() for _ in range(n)]
        collector = _FloodCollector(n, limit)
        for request_id in ids:
            self._waiters[json.dumps(request_id)] = collector
        started = trio.current_time()
        with trio.move_on_after(timeout) as scope:
            i = 0
            while i < n and not collector.closed:
                room = limit - collector.outstanding
                if room <= 0:
                    collector.room = trio.Event()
                    await collector.room.wait()
                    continue
                count = int(min(batch, n - i, room))
                chunk = ids[i : i + count]
                if self.validator is not None:
                    for request_id in chunk:
                        self.validator.observe_client(_request(request_id, method, params))
                encoded = [message_bytes(_request(request_id, method, params)) for request_id in chunk]
                collector.outstanding += count
                await self.send_messages(encoded)
                i += count
            await collector.done.wait()
        elapsed = trio.current_time() - started
        for request_id in ids:
            self._waiters.pop(json.dumps(request_id), None)
        if scope.cancelled_caught:
            raise NoMessage(
                f"{self.name}: flood of {n} {method}: only {len(collector.replies)} replies "
                f"within {timeout:g}s"
            )
        return FloodResult(ids, collector.replies, elapsed, missing=n - len(collector.replies))


def _request(request_id: RequestId, method: str, params: Any) -> WireMessage:
    msg: WireMessage = {"id": request_id, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


@asynccontextmanager
async def open_rpc_client(
    send_stream: trio.abc.SendStream,
    receive_stream: trio.abc.ReceiveStream,
    *,
    validator: MessageChecker | None = None,
    responder: Responder | None = None,
    name: str = "client",
) -> AsyncIterator[RpcClient]:
    """A client reading ``receive_stream`` for the duration of the block (e.g. over memory streams)."""
    client = RpcClient(send_stream, receive_stream, validator=validator, responder=responder, name=name)
    async with _unwrapping_nursery() as nursery:
        client._attach(nursery)
        client.resume_reading()
        yield client
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def _unwrapping_nursery() -> AsyncIterator[trio.Nursery]:
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        # The failing test (or a validator) should see its own exception, as with any other context.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


# --------------------------------------------------------------------------------------------
# The server subprocess


def server_command(args: Sequence[str] = ()) -> list[str]:
    """The codex-trio app-server, run by this interpreter."""
    return [sys.executable, "-m", "codex_trio", "app-server", *args]


def _package_root() -> str:
    return str(Path(codex_trio.__file__).resolve().parent.parent)


def hermetic_env(
    *,
    home: str | os.PathLike[str],
    codex_home: str | os.PathLike[str],
    base_url: str | None = None,
    overrides: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """An environment that cannot reach the internet: a fresh HOME and CODEX_HOME, OpenAI endpoints
    at ``base_url`` (a dead local port by default), every proxy a dead local port (loopback exempt,
    so local mocks stay reachable). Nothing else of the caller's environment leaks in but PATH, so a
    developer's CODEX_TRIO_LOG or OPENAI_API_KEY never changes what a test sees.

    ``overrides`` sets (or, with None, removes) variables on top.
    """
    api = base_url or f"{DEAD_URL}/v1"
    dead_proxy = DEAD_URL
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "HOME": os.fspath(home),
        "CODEX_HOME": os.fspath(codex_home),
        "OPENAI_BASE_URL": api,
        "PYTHONPATH": _package_root(),
        "PYTHONDONTWRITEBYTECODE": "1",
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = dead_proxy
    for name, value in (overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def write_provider_config(codex_home: str | os.PathLike[str], base_url: str | None = None) -> Path:
    """A config.toml whose default provider is a mock at ``base_url`` (dead by default), with no
    retries: what the reference binary needs to be run safely."""
    url = base_url or f"{DEAD_URL}/v1"
    path = Path(codex_home) / "config.toml"
    path.write_text(
        'model = "mock-model"\n'
        'model_provider = "mock"\n'
        "\n"
        "[model_providers.mock]\n"
        'name = "mock"\n'
        f"base_url = {json.dumps(url)}\n"
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n",
        encoding="utf-8",
    )
    return path


def read_proc_status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as a dict; empty once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (exited, or a zombie nobody reaped yet)."""
    state = read_proc_status(pid).get("State", "")
    return not state or state[0] in "ZX"


def _kib(value: str) -> int | None:
    parts = value.split()
    return int(parts[0]) if parts and parts[0].isdigit() else None


class ServerProcess:
    """What a test can check of the server process whatever the transport: exit, memory, CPU, stderr."""

    process: trio.Process
    pid: int
    root: Path
    home: Path
    codex_home: Path
    stderr_path: Path
    exit_elapsed: float | None
    _final_stderr: str | None

    def _init_process(
        self, process: trio.Process, *, root: Path, codex_home: Path, stderr_path: Path
    ) -> None:
        self.process = process
        self.pid = process.pid
        self.root = root
        self.home = root / "home"
        self.codex_home = codex_home
        self.stderr_path = stderr_path
        self.exit_elapsed = None
        # What stderr held when the temporary directory went away with the block.
        self._final_stderr = None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait_exit(self, timeout: float = 1.0) -> int:
        """The exit status, once the process has exited; ``ServerHung`` after ``timeout`` seconds."""
        started = trio.current_time()
        with trio.move_on_after(timeout):
            returncode = await self.process.wait()
            self.exit_elapsed = trio.current_time() - started
            return returncode
        raise ServerHung(f"the server still runs {timeout:g}s later; stderr ends with:\n{self.stderr_tail()}")

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def peak_rss_kib(self) -> int | None:
        """VmHWM: the most resident memory the process has used so far (None once it is gone)."""
        return _kib(read_proc_status(self.pid).get("VmHWM", ""))

    def rss_kib(self) -> int | None:
        return _kib(read_proc_status(self.pid).get("VmRSS", ""))

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the process (all its threads) has used; None once it is gone."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        # The command name (field 2) may hold spaces; the fields after its ")" are fixed.
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stderr_text(self) -> str:
        """Everything the server wrote on stderr so far (still available after the block)."""
        if self._final_stderr is not None:
            return self._final_stderr
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stderr_tail(self, chars: int = 2000) -> str:
        return self.stderr_text()[-chars:]

    def assert_no_traceback(self) -> None:
        text = self.stderr_text()
        for marker in TRACEBACK_MARKERS:
            if marker in text:
                raise HarnessFailure(f"the server printed a traceback on stderr:\n{text[-4000:]}")

    def _check_clean_exit(self, returncode: int) -> None:
        if returncode != 0:
            raise HarnessFailure(f"the server exited with status {returncode}; stderr:\n{self.stderr_tail()}")
        self.assert_no_traceback()


class StdioServer(RpcClient, ServerProcess):
    """The server subprocess and the client talking to it over its stdin/stdout."""

    def __init__(
        self,
        process: trio.Process,
        *,
        root: Path,
        codex_home: Path,
        stderr_path: Path,
        validator: MessageChecker | None,
        responder: Responder | None,
    ) -> None:
        assert process.stdin is not None and process.stdout is not None
        super().__init__(
            process.stdin, process.stdout, validator=validator, responder=responder, name="server"
        )
        self._init_process(process, root=root, codex_home=codex_home, stderr_path=stderr_path)

    async def finish(self, timeout: float = 5.0) -> int:
        """Close stdin and require a clean exit: status 0, in time, no traceback on stderr."""
        if not self.stdin_closed:
            await self.close_stdin()
        returncode = await self.wait_exit(timeout)
        self._check_clean_exit(returncode)
        return returncode


@contextmanager
def _server_dirs(codex_home: str | os.PathLike[str] | None) -> Iterator[tuple[Path, Path]]:
    """A fresh temporary directory with home/ and work/ in it; (root, CODEX_HOME)."""
    with tempfile.TemporaryDirectory(prefix="codex-trio-harness-") as tmp:
        root = Path(tmp)
        for sub in ("home", "work"):
            (root / sub).mkdir()
        home = Path(codex_home) if codex_home is not None else root / "codex_home"
        home.mkdir(parents=True, exist_ok=True)
        yield root, home


@asynccontextmanager
async def open_server(
    args: Sequence[str] = (),
    *,
    command: Sequence[str] | None = None,
    env: Mapping[str, str | None] | None = None,
    codex_home: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    validator: MessageChecker | None = None,
    responder: Responder | None = None,
    check_exit: bool = True,
    exit_timeout: float = 5.0,
) -> AsyncIterator[StdioServer]:
    """Run the app-server (``command``, default codex-trio's, plus ``args``) as a stdio subprocess
    in a hermetic environment (see ``hermetic_env``; ``env`` overrides it) for the block.

    A fresh temporary directory holds HOME, the working directory, stderr (``server.stderr_path``)
    and, unless ``codex_home`` is given, CODEX_HOME. When the block ends normally and ``check_exit``
    is set, stdin is closed and the server must exit with status 0 within ``exit_timeout`` seconds
    without a traceback on stderr. Whatever happens, the process does not outlive the block.
    """
    with _server_dirs(codex_home) as (root, home):
        stderr_path = root / "stderr.log"
        cmd = [*(command if command is not None else server_command()), *args]
        full_env = hermetic_env(home=root / "home", codex_home=home, base_url=base_url, overrides=env)
        with stderr_path.open("wb") as stderr_file:
            process = await trio.lowlevel.open_process(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                env=full_env,
                cwd=root / "work",
            )
        server = StdioServer(
            process,
            root=root,
            codex_home=home,
            stderr_path=stderr_path,
            validator=validator,
            responder=responder,
        )
        try:
            async with _unwrapping_nursery() as nursery:
                server._attach(nursery)
                server.resume_reading()
                yield server
                if check_exit:
                    await server.finish(exit_timeout)
                nursery.cancel_scope.cancel()
        finally:
            await _reap(process)
            server._final_stderr = server.stderr_text()


async def _reap(process: trio.Process) -> None:
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            process.kill()
            with trio.move_on_after(5):
                await process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                await stream.aclose()


# --------------------------------------------------------------------------------------------
# The server over websocket (``--listen ws://127.0.0.1:0``)

# What the server prints on stderr once it accepts connections.
LISTENING_PREFIX = "codex-trio: listening on "
# RFC 6455 opcodes, for frames built by hand.
CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2


def _masked(payload: bytes, key: bytes) -> bytes:
    # One translate per key byte over every fourth byte: fast enough for frames of tens of MiB.
    out = bytearray(payload)
    for i in range(4):
        out[i::4] = out[i::4].translate(bytes(b ^ key[i] for b in range(256)))
    return bytes(out)


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """One client-to-server frame (RFC 6455 §5.2), masked as a client's must be.

    Built by hand so that a test can send what a websocket library never would: invalid UTF-8 in a
    text frame, a message in fragments with pauses between them, a frame cut short.
    """
    key = os.urandom(4) if mask is None else mask
    size = len(payload)
    head = bytearray([(0x80 if fin else 0) | opcode])
    if size < 126:
        head.append(0x80 | size)
    elif size < 1 << 16:
        head.append(0x80 | 126)
        head += size.to_bytes(2, "big")
    else:
        head.append(0x80 | 127)
        head += size.to_bytes(8, "big")
    return bytes(head) + key + _masked(payload, key)


def fragments(payload: bytes, piece: int, opcode: int = TEXT) -> list[bytes]:
    """``payload`` as one message in frames of at most ``piece`` bytes (continuations after the first)."""
    chunks = [payload[i : i + piece] for i in range(0, len(payload), piece)] or [b""]
    return [
        ws_frame(opcode if i == 0 else CONTINUATION, chunk, fin=i == len(chunks) - 1)
        for i, chunk in enumerate(chunks)
    ]


class _SerializedStream(trio.abc.Stream):
    """One writer at a time on the TCP stream: the websocket library (frames, close and pong replies
    from its reader task) and the test's raw bytes share it."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._lock = trio.StrictFIFOLock()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        async with self._lock:
            await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.stream.aclose()


class WsClient(RpcClient):
    """A client on one websocket connection (trio-websocket), with the ``RpcClient`` API: one message
    per text frame. ``send_raw`` writes bytes on the TCP connection as they are (use ``ws_frame``).

    Ways to misbehave, beyond ``RpcClient``'s: ``send_text_frame`` / ``send_binary_frame`` (any
    payload), ``send_in_pieces`` (one message in fragments, with pauses), ``pause_reading`` (the
    library stops reading the socket once ``message_queue_size`` messages wait), ``close_stdin``
    (a closing handshake) and ``disconnect`` (the TCP connection dropped, no close frame).
    """

    def __init__(
        self,
        ws: trio_websocket.WebSocketConnection,
        stream: _SerializedStream,
        *,
        validator: MessageChecker | None,
        responder: Responder | None,
        name: str,
        close_timeout: float,
    ) -> None:
        super().__init__(stream, stream, validator=validator, responder=responder, name=name)
        self.ws = ws
        self._tcp = stream.stream
        self._close_timeout = close_timeout

    @property
    def close_code(self) -> int | None:
        """The close code once the websocket is closed (1006: dropped without a close frame)."""
        reason = self.ws.closed
        return None if reason is None else int(reason.code)

    @property
    def close_reason(self) -> str | None:
        reason = self.ws.closed
        return None if reason is None else reason.reason

    async def _receive_message(self) -> bytes | None:
        import trio_websocket

        try:
            message = await self.ws.get_message()
        except trio_websocket.ConnectionClosed:
            return None
        if isinstance(message, bytes):
            raise ServerMisbehaved(f"{self.name}: the server sent a binary frame of {len(message)} bytes")
        return message.encode("utf-8")

    async def send_messages(self, messages: Sequence[bytes]) -> None:
        import trio_websocket

        async with self._send_lock:
            try:
                for message in messages:
                    await self.ws.send_message(message.decode("utf-8"))
            except trio_websocket.ConnectionClosed:
                raise trio.BrokenResourceError(f"{self.name}: the websocket is closed") from None

    async def send_text_frame(self, payload: bytes) -> None:
        """One text frame with exactly ``payload`` (not necessarily UTF-8, nor JSON)."""
        await self.send_raw(ws_frame(TEXT, payload))

    async def send_binary_frame(self, payload: bytes) -> None:
        await self.send_raw(ws_frame(BINARY, payload))

    async def send_in_pieces(self, data: Any, *, piece: int = 1, pause: float = 0.005) -> None:
        """Send ``data`` as one text message in frames of ``piece`` bytes, pausing between them.

        ``data`` is the raw payload, or a message (encoded, and shown to the validator first).
        """
        if not isinstance(data, bytes):
            if self.validator is not None:
                self.validator.observe_client(data)
            data = message_bytes(data)
        async with self._send_lock:
            for frame in fragments(data, piece):
                await self._send_stream.send_all(frame)
                await trio.sleep(pause)

    async def close_stdin(self) -> None:
        """Hang up politely: the closing handshake (1000), waited for at most ``close_timeout``."""
        self.stdin_closed = True
        with trio.move_on_after(self._close_timeout):
            await self.ws.aclose()

    async def close_output(self) -> None:
        await self.disconnect()

    async def disconnect(self) -> None:
        """Drop the TCP connection without a close frame, as a client that dies (or loses its
        network) does. What was not read is lost; pending calls fail with ``ServerOutputClosed``."""
        self.stdin_closed = True
        await self.pause_reading()
        await trio.aclose_forcefully(self._tcp)
        self._end_of_output()


@asynccontextmanager
async def open_ws_client(
    url: str,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    validator: MessageChecker | None = None,
    responder: Responder | None = None,
    name: str = "ws-client",
    receive_buffer: int | None = None,
    message_queue_size: int = 1,
    max_message_size: int = 64 * MIB,
    close_timeout: float = 2.0,
) -> AsyncIterator[WsClient]:
    """A websocket client of the server at ``url`` (``ws://host:port``) for the block
    (``trio_websocket.ConnectionRejected`` if the server refuses the upgrade).

    ``receive_buffer`` sets SO_RCVBUF, so that a client that stops reading is not hidden behind
    megabytes of kernel buffers; ``message_queue_size`` is how many messages trio-websocket reads
    ahead. On exit the client closes politely unless it is gone already.
    """
    import trio_websocket

    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname is None or parts.port is None:
        raise ValueError(f"expected ws://host:port, not {url!r}")
    host = parts.hostname
    sock = trio.socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    with trio.fail_after(DEFAULT_TIMEOUT):
        await sock.connect((host, parts.port))
    tcp = trio.SocketStream(sock)
    try:
        async with _unwrapping_nursery() as nursery:
            stream = _SerializedStream(tcp)
            with trio.fail_after(DEFAULT_TIMEOUT):
                ws = await trio_websocket.wrap_client_stream(
                    nursery,
                    # Annotated as a socket or TLS stream, but only the Stream interface is used
                    # (as wrap_server_stream's annotation says).
                    cast("trio.SocketStream", stream),
                    host,
                    "/",
                    extra_headers=list(headers),
                    message_queue_size=message_queue_size,
                    max_message_size=max_message_size,
                )
            client = WsClient(
                ws, stream, validator=validator, responder=responder, name=name, close_timeout=close_timeout
            )
            client._attach(nursery)
            client.resume_reading()
            yield client
            if not client.stdin_closed:
                await client.close_stdin()
            nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(tcp)


class WebSocketServer(ServerProcess):
    """The server subprocess listening on ``url``; ``connect`` opens clients."""

    def __init__(
        self,
        process: trio.Process,
        *,
        root: Path,
        codex_home: Path,
        stderr_path: Path,
        url: str,
        validator_factory: Callable[[], MessageChecker] | None,
    ) -> None:
        self._init_process(process, root=root, codex_home=codex_home, stderr_path=stderr_path)
        self.url = url
        self.validator_factory = validator_factory
        self._clients = 0

    def connect(
        self,
        *,
        validator: MessageChecker | Literal["default"] | None = "default",
        name: str | None = None,
        **options: Any,
    ) -> AbstractAsyncContextManager[WsClient]:
        """A client of this server (see ``open_ws_client`` for ``options``); ``validator`` defaults
        to a new one from the server's factory, since each connection is a client of its own."""
        self._clients += 1
        if validator == "default":
            validator = self.validator_factory() if self.validator_factory is not None else None
        return open_ws_client(
            self.url, validator=validator, name=name or f"ws-client-{self._clients}", **options
        )

    async def finish(self, timeout: float = 5.0) -> int:
        """SIGTERM, and require a clean exit: status 0, in time, no traceback on stderr."""
        if self.returncode is None:
            self.send_signal(signal.SIGTERM)
        returncode = await self.wait_exit(timeout)
        self._check_clean_exit(returncode)
        return returncode


async def _copy_stderr(
    stderr: trio.abc.ReceiveStream, path: Path, *, task_status: trio.TaskStatus[str]
) -> None:
    """Copy the server's stderr to ``path`` (as ``open_server`` has it written there); reports the
    listener's URL once the server prints it."""
    seen = b""
    started = False
    with path.open("ab") as out:
        while chunk := await stderr.receive_some(64 * 1024):
            out.write(chunk)
            out.flush()
            if started:
                continue
            seen += chunk
            # Whole lines only: a chunk may end in the middle of the URL.
            complete = seen[: seen.rfind(b"\n") + 1]
            for line in complete.decode("utf-8", "replace").splitlines():
                if line.startswith(LISTENING_PREFIX):
                    task_status.started(line.removeprefix(LISTENING_PREFIX).strip())
                    started = True
                    break
    if not started:
        shown = seen.decode("utf-8", "replace")
        raise HarnessFailure(f"the server exited without listening; stderr:\n{shown}")


@asynccontextmanager
async def open_ws_server(
    args: Sequence[str] = (),
    *,
    listen: str = "ws://127.0.0.1:0",
    command: Sequence[str] | None = None,
    env: Mapping[str, str | None] | None = None,
    codex_home: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    validator_factory: Callable[[], MessageChecker] | None = None,
    check_exit: bool = True,
    exit_timeout: float = 5.0,
    start_timeout: float = DEFAULT_TIMEOUT,
) -> AsyncIterator[WebSocketServer]:
    """Run the app-server with ``--listen listen`` (plus ``args``) as a subprocess for the block, in
    the same hermetic environment as ``open_server``; returns once it accepts connections.

    ``validator_factory`` makes each connection's validator (e.g. ``ProtocolValidator``). When the
    block ends normally and ``check_exit`` is set, the server gets SIGTERM and must exit with status 0
    within ``exit_timeout`` seconds, without a traceback on stderr. Whatever happens, the process does
    not outlive the block.
    """
    with _server_dirs(codex_home) as (root, home):
        stderr_path = root / "stderr.log"
        cmd = [*(command if command is not None else server_command()), "--listen", listen, *args]
        full_env = hermetic_env(home=root / "home", codex_home=home, base_url=base_url, overrides=env)
        process = await trio.lowlevel.open_process(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=root / "work",
        )
        server: WebSocketServer | None = None
        try:
            async with _unwrapping_nursery() as nursery:
                assert process.stderr is not None
                with trio.fail_after(start_timeout):
                    url = await nursery.start(_copy_stderr, process.stderr, stderr_path)
                server = WebSocketServer(
                    process,
                    root=root,
                    codex_home=home,
                    stderr_path=stderr_path,
                    url=url,
                    validator_factory=validator_factory,
                )
                yield server
                if check_exit:
                    await server.finish(exit_timeout)
                nursery.cancel_scope.cancel()
        finally:
            await _reap(process)
            if server is not None:
                server._final_stderr = server.stderr_text()


# --------------------------------------------------------------------------------------------
# Convenience for tests that drive a process by hand


async def wait_until_gone(pid: int, timeout: float) -> bool:
    """Poll /proc until ``pid`` is gone (or a zombie); False if it still runs after ``timeout``."""
    with trio.move_on_after(timeout):
        while not process_gone(pid):  # noqa: ASYNC110 - nothing signals the exit of a non-child
            await trio.sleep(0.02)
        return True
    return False


__all__ = [
    "BINARY",
    "CONTINUATION",
    "DEAD_URL",
    "DEFAULT_RESULTS",
    "MALFORMED_JSON_LINES",
    "NON_MESSAGE_JSON_LINES",
    "OVERLOADED",
    "OVERLOADED_MESSAGE",
    "TEXT",
    "AnswerAfter",
    "AnswerNormally",
    "AnswerWithError",
    "CloseStdinOnRequest",
    "DisconnectOnRequest",
    "FloodResult",
    "HarnessFailure",
    "MessageChecker",
    "NeverAnswer",
    "NoMessage",
    "PerMethod",
    "Responder",
    "RpcCallFailed",
    "RpcClient",
    "ServerHung",
    "ServerMisbehaved",
    "ServerOutputClosed",
    "ServerProcess",
    "ServerRequest",
    "StdioServer",
    "WebSocketServer",
    "WsClient",
    "binary_junk",
    "encode_message",
    "fragments",
    "garbage_lines",
    "hermetic_env",
    "huge_line",
    "huge_request",
    "message_bytes",
    "open_rpc_client",
    "open_server",
    "open_ws_client",
    "open_ws_server",
    "process_gone",
    "read_proc_status",
    "server_command",
    "wait_until_gone",
    "write_provider_config",
    "ws_frame",
]
