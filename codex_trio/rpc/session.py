"""The JSON-RPC session over one transport: framing in, dispatch, the pending-request table, framing out.

This layer knows no method. A ``Dispatcher`` (the processors' router) decides what a request means; this
is the one place where what it raises becomes a wire error.

Tasks, all in the connection's nursery:
- the reader parses messages in arrival order and hands each request to the dispatcher synchronously, so
  that state a request sets up (``initialize``, a turn being registered) is in place before the next line;
- what the dispatcher defers runs in a task of its own, so a slow handler never holds up the reader;
- the writer is the only task that touches the transport's sending side, and drains the bounded
  outbound queue in batches.

Backpressure depends on who shares the process. On stdio the one client's slowness is its own: whoever
emits waits for room in the queue. On a shared transport (``Limits.slow_reader_timeout`` set) one task
fans a thread's notifications out to every subscriber, so a notification never waits for room: beyond
``outbound_queue`` it is queued anyway, up to ``outbound_queue_max``, while the writer's clock runs. A
client that keeps reading, however slowly, gets everything; one that has stopped is disconnected when a
write makes no progress for ``slow_reader_timeout``, or at once when the hard limit is reached.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from .errors import (
    INTERNAL_ERROR,
    OVERLOADED,
    OVERLOADED_MESSAGE,
    ClientReturnedError,
    ConnectionClosed,
    RequestTimeout,
    RpcError,
)
from .messages import (
    ErrorResponse,
    JsonValue,
    NotAMessage,
    Notification,
    Request,
    RequestId,
    Response,
    encode,
    parse_message,
)

log = logging.getLogger(__name__)

Deferred = Callable[[], Awaitable[JsonValue]]


@dataclass(frozen=True, slots=True)
class Reply:
    """A result, with what must happen right after it is queued.

    Returned by ``dispatch`` it answers at once, in the order requests arrived; a deferred handler may
    return one too. ``after`` runs once the response is queued, so notifications it sends (the
    reference's ``thread/started`` after the thread/start result) can never overtake the response.
    """

    result: JsonValue
    after: Callable[[], Awaitable[None]] | None = None


class Dispatcher(Protocol):
    def dispatch(self, conn: Connection, request: Request) -> Reply | Deferred:
        """Decide what a request means; runs in the reader task, so it must not block.

        Raise ``RpcError`` to answer with an error; return a ``Reply`` to answer at once, or an async
        callable to run in a task of its own (its return value is the result).
        """
        ...

    def notification(self, conn: Connection, notification: Notification) -> None:
        """A client notification; runs in the reader task."""
        ...


@dataclass
class Limits:
    # Deferred requests running at once; one more is answered "Server overloaded".
    max_in_flight: int = 256
    # Messages waiting for the writer before the queue counts as full: whoever emits more waits for
    # room, except notifications on a shared transport (see slow_reader_timeout).
    outbound_queue: int = 1024
    # Shared transports only: how far notifications may overfill the queue; one more disconnects the
    # client at once. Bounds the memory a client that stopped reading can hold.
    outbound_queue_max: int = 8192
    # How many queued messages the writer joins into one write, and how many bytes: past that a write
    # goes out at once, so that a burst of large messages (command output) reaches the client while
    # the next is encoded rather than after one copy of the whole burst.
    write_batch: int = 256
    write_batch_bytes: int = 256 * 1024
    # After the client closes its side: how long requests already read may run to get their answer out.
    close_grace: float = 0.5
    # None (stdio, one client): whoever emits waits for room in the queue, however long.
    # Set (shared transports such as websockets): notifications never wait, since the task fanning
    # them out serves every other subscriber too; a reply or server->client request (only this client
    # waits for it) waits for room. While the queue is full, every write to the client must finish
    # within this many seconds, or the client is disconnected as one that stopped reading.
    slow_reader_timeout: float | None = None


@dataclass
class _Pending:
    method: str
    done: trio.Event = field(default_factory=trio.Event)
    result: JsonValue = None
    error: BaseException | None = None


class Connection:
    """One client: its nursery, outbound queue, pending server->client requests and opt-outs."""

    def __init__(
        self,
        transport: Any,
        dispatcher: Dispatcher,
        *,
        limits: Limits | None = None,
        name: str = "client",
    ) -> None:
        self.transport = transport
        self.dispatcher = dispatcher
        self.limits = limits or Limits()
        self.name = name
        # Notification methods this client asked not to receive.
        self.suppressed_notifications: frozenset[str] = frozenset()
        self.closed = trio.Event()
        self._ids = itertools.count()
        self._pending: dict[RequestId, _Pending] = {}
        self._shared = self.limits.slow_reader_timeout is not None
        # On a shared transport the channel holds the hard limit; outbound_queue is enforced by hand.
        capacity = self.limits.outbound_queue
        if self._shared:
            capacity = max(capacity, self.limits.outbound_queue_max)
        self._send_out, self._receive_out = trio.open_memory_channel[bytes](capacity)
        # Replies waiting for the queue to drop below outbound_queue (shared transports).
        self._room = trio.lowlevel.ParkingLot()
        # Messages queued and not yet taken by the writer.
        self._backlog = 0
        # The writer's current write, so that a queue becoming full can put a deadline on it.
        self._write_scope: trio.CancelScope | None = None
        # Once the session ends: when the write in progress must be given up.
        self._flush_deadline = math.inf
        self._in_flight = 0
        self._idle = trio.Event()
        self._idle.set()
        self._nursery: trio.Nursery | None = None
        self._writer_done = trio.Event()
        # Set once the client is being dropped or the session is over: from then on nothing more is
        # queued, so fan-outs drop this client at once.
        self._closing = False

    # ---- lifecycle -------------------------------------------------------------------------

    async def serve(
        self, *, task_status: trio.TaskStatus[Connection] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until the client closes its side (or the transport breaks), then clean up."""
        async with trio.open_nursery() as outer:
            outer.start_soon(self._writer)
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    task_status.started(self)
                    await self._read_loop()
                    # The client has finished talking: nobody can answer our requests any more, but
                    # requests it already sent get a short grace to produce their answers.
                    self._fail_pending()
                    with trio.move_on_after(self.limits.close_grace):
                        await self._idle.wait()
                    nursery.cancel_scope.cancel()
            finally:
                self._nursery = None
                self._closing = True
                self._fail_pending()
                self._room.unpark_all()
                self.closed.set()
                self._send_out.close()
                # Let the writer flush what is queued (even when cancelled from outside, the write in
                # progress completes, so that no message is cut in half), but never wait long on a
                # client that stopped reading.
                self._flush_deadline = trio.current_time() + self.limits.close_grace
                if self._write_scope is not None:
                    self._write_scope.deadline = min(self._write_scope.deadline, self._flush_deadline)
                with trio.move_on_after(self.limits.close_grace) as flush:
                    flush.shield = True
                    await self._writer_done.wait()
                outer.cancel_scope.cancel()

    def close(self) -> None:
        """Stop serving this client: cancels its tasks and fails its pending requests."""
        self._closing = True
        self._fail_pending()
        # Work outside this client's nursery (a turn asking it something) may be waiting for room.
        self._room.unpark_all()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None) -> None:
        """Run work that belongs to this client (e.g. a turn) in its nursery."""
        if self._nursery is None:
            raise ConnectionClosed()
        self._nursery.start_soon(fn, *args, name=name)

    @property
    def is_open(self) -> bool:
        return self._nursery is not None and not self._closing and not self.closed.is_set()

    # ---- outgoing --------------------------------------------------------------------------

    async def notify(self, method: str, params: JsonValue = None) -> None:
        """Queue a notification. Raises ``ConnectionClosed`` once the client is gone, or when a shared
        transport's client has let its queue reach the hard limit (it is then disconnected)."""
        if method in self.suppressed_notifications:
            return
        msg: dict[str, Any] = {"method": method}
        if params is not None:
            msg["params"] = params
        data = encode(msg)
        if self._shared:
            self._enqueue_without_waiting(data)
        else:
            await self._enqueue(data)

    async def send_request(self, method: str, params: JsonValue, *, timeout: float) -> JsonValue:
        """Ask the client something and wait for its answer, at most ``timeout`` seconds.

        Raises ``ClientReturnedError`` for an error reply, ``RequestTimeout``, or ``ConnectionClosed``
        when the client goes away first (at once, not at the timeout).
        """
        if not self.is_open:
            raise ConnectionClosed(method)
        request_id = next(self._ids)
        pending = _Pending(method)
        self._pending[request_id] = pending
        try:
            msg: dict[str, Any] = {"id": request_id, "method": method}
            if params is not None:
                msg["params"] = params
            with trio.move_on_after(timeout if timeout is not None else math.inf) as scope:
                await self._enqueue(encode(msg))
                await pending.done.wait()
            if scope.cancelled_caught:
                raise RequestTimeout(method, timeout)
        finally:
            self._pending.pop(request_id, None)
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _queued(self) -> int:
        return self._backlog

    def _enqueue_without_waiting(self, data: bytes) -> None:
        if self._closing:
            raise ConnectionClosed()
        try:
            self._send_out.send_nowait(data)
        except trio.WouldBlock:
            log.warning("%s: outbound queue at its hard limit; disconnecting the client", self.name)
            self.close()
            raise ConnectionClosed() from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ConnectionClosed() from None
        self._backlog += 1
        if self._backlog >= self.limits.outbound_queue:
            self._start_stall_clock()

    async def _enqueue(self, data: bytes) -> None:
        """Queue a reply or request, waiting for room."""
        if self._closing:
            raise ConnectionClosed()
        if self._shared:
            # No timeout of its own: if the client has stopped reading, the writer's stall clock
            # disconnects it, and that ends this wait too.
            while self._queued() >= self.limits.outbound_queue:
                self._start_stall_clock()
                await self._room.park()
                if self._closing:
                    raise ConnectionClosed()
            self._enqueue_without_waiting(data)
            return
        try:
            try:
                self._send_out.send_nowait(data)
            except trio.WouldBlock:
                await self._send_out.send(data)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ConnectionClosed() from None
        self._backlog += 1

    def _start_stall_clock(self) -> None:
        """The queue is full: the write in progress must finish within slow_reader_timeout."""
        scope = self._write_scope
        if scope is not None:
            assert self.limits.slow_reader_timeout is not None
            scope.deadline = min(scope.deadline, trio.current_time() + self.limits.slow_reader_timeout)

    async def _respond(self, request_id: RequestId, result: JsonValue) -> None:
        try:
            data = encode({"id": request_id, "result": result})
        except (TypeError, ValueError):
            # A handler bug must cost one request, not the connection.
            log.exception("%s: result of request %r is not JSON", self.name, request_id)
            data = encode({"error": {"code": INTERNAL_ERROR, "message": "Internal error"}, "id": request_id})
        await self._enqueue(data)

    async def _respond_reply(self, request_id: RequestId, reply: Reply) -> None:
        await self._respond(request_id, reply.result)
        if reply.after is None:
            return
        try:
            await reply.after()
        except ConnectionClosed:
            raise
        except Exception:
            # The client already has its answer; a failure here is ours to log, not theirs to see.
            log.exception("%s: follow-up of a reply failed", self.name)

    async def _respond_error(self, request_id: RequestId, error: RpcError) -> None:
        await self._enqueue(encode({"error": error.to_wire(), "id": request_id}))

    def _fail_pending(self) -> None:
        for request_id, pending in list(self._pending.items()):
            if not pending.done.is_set():
                pending.error = ConnectionClosed(pending.method)
                pending.done.set()
            self._pending.pop(request_id, None)

    # ---- tasks -----------------------------------------------------------------------------

    async def _writer(self) -> None:
        batch: list[bytes] = []
        try:
            async for first in self._receive_out:
                batch.append(first)
                size = len(first)
                while len(batch) < self.limits.write_batch and size < self.limits.write_batch_bytes:
                    try:
                        message = self._receive_out.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    batch.append(message)
                    size += len(message)
                self._backlog -= len(batch)
                full = self._backlog >= self.limits.outbound_queue
                if not full:
                    self._room.unpark_all()
                # Shielded: a write is given up only at its own deadline (a stalled client, or the end
                # of the session's flush), never cut short by a cancellation from outside.
                with trio.CancelScope(shield=True, deadline=self._flush_deadline) as scope:
                    self._write_scope = scope
                    if full and self._shared:
                        self._start_stall_clock()
                    await self.transport.send_messages(batch)
                self._write_scope = None
                if scope.cancelled_caught:
                    # Given up mid-write: the transport is unusable now.
                    if not self._closing:
                        log.warning("%s: client stopped reading; disconnecting it", self.name)
                        self.close()
                    return
                batch.clear()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("%s: output closed (%s); stopping", self.name, type(exc).__name__)
            self.close()
        finally:
            self._writer_done.set()

    async def _read_loop(self) -> None:
        while True:
            try:
                raw = await self.transport.receive_message()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.info("%s: input closed (%s)", self.name, type(exc).__name__)
                return
            if raw is None:
                log.debug("%s: end of input", self.name)
                return
            try:
                message = parse_message(raw)
            except NotAMessage as exc:
                # The reference answers nothing here; the content may hold secrets, so log only why.
                log.warning("%s: ignoring input of %d bytes: %s", self.name, len(raw), exc)
                continue
            if isinstance(message, Request):
                try:
                    await self._on_request(message)
                except ConnectionClosed:
                    # close() was called (the client is being dropped): nothing more can be answered.
                    return
            elif isinstance(message, Notification):
                self._on_notification(message)
            else:
                self._on_reply(message)

    async def _on_request(self, request: Request) -> None:
        try:
            outcome = self.dispatcher.dispatch(self, request)
        except RpcError as err:
            await self._respond_error(request.id, err)
            return
        except Exception:
            log.exception("%s: %s failed", self.name, request.method)
            await self._respond_error(request.id, RpcError("Internal error", code=INTERNAL_ERROR))
            return
        if isinstance(outcome, Reply):
            await self._respond_reply(request.id, outcome)
            return
        if self._in_flight >= self.limits.max_in_flight:
            await self._respond_error(request.id, RpcError(OVERLOADED_MESSAGE, code=OVERLOADED))
            return
        assert self._nursery is not None
        self._in_flight += 1
        self._idle = trio.Event() if self._in_flight == 1 else self._idle
        self._nursery.start_soon(self._run_deferred, request, outcome, name=request.method)

    async def _run_deferred(self, request: Request, work: Deferred) -> None:
        try:
            try:
                result = await work()
            except RpcError as err:
                await self._respond_error(request.id, err)
            except ConnectionClosed:
                pass
            except Exception:
                # The traceback may name paths or values; the client only learns that it failed.
                log.exception("%s: %s failed", self.name, request.method)
                await self._respond_error(request.id, RpcError("Internal error", code=INTERNAL_ERROR))
            else:
                if isinstance(result, Reply):
                    await self._respond_reply(request.id, result)
                else:
                    await self._respond(request.id, result)
        except ConnectionClosed:
            pass
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    def _on_notification(self, notification: Notification) -> None:
        try:
            self.dispatcher.notification(self, notification)
        except Exception:
            log.exception("%s: notification %s failed", self.name, notification.method)

    def _on_reply(self, reply: Response | ErrorResponse) -> None:
        pending = self._pending.get(reply.id)
        if pending is None or pending.done.is_set():
            log.warning("%s: ignoring a reply to unknown request id %r", self.name, reply.id)
            return
        if isinstance(reply, ErrorResponse):
            pending.error = ClientReturnedError(pending.method, reply.code, reply.message, reply.data)
        else:
            pending.result = reply.result
        pending.done.set()
