"""The JSON-RPC session on its own: a fake dispatcher, since the session knows no method."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
from memclient import MemoryClient, memory_transport_pair

from codex_trio.rpc.errors import ClientReturnedError, ConnectionClosed, RequestTimeout, RpcError
from codex_trio.rpc.messages import Notification, Request
from codex_trio.rpc.session import Connection, Limits, Reply
from codex_trio.transport.stdio import StreamTransport


class FakeDispatcher:
    def __init__(self) -> None:
        self.release = trio.Event()
        self.notifications: list[Notification] = []
        self.asked: list[Any] = []

    def dispatch(self, conn: Connection, request: Request) -> Any:
        if request.method == "echo":
            return Reply(request.params)
        if request.method == "fail":
            raise RpcError("nope", data={"why": 1})
        if request.method == "boom":

            async def boom() -> None:
                raise RuntimeError("secret sk-abcdefghijklmnop leaked?")

            return boom
        if request.method == "slow":

            async def slow() -> str:
                await self.release.wait()
                return "slow done"

            return slow
        if request.method == "ask":

            async def ask() -> Any:
                try:
                    return await conn.send_request("client/thing", {"q": 1}, timeout=request.params)
                except (ClientReturnedError, RequestTimeout, ConnectionClosed) as exc:
                    self.asked.append(exc)
                    raise RpcError(type(exc).__name__) from None

            return ask
        raise RpcError("unknown")

    def notification(self, conn: Connection, notification: Notification) -> None:
        self.notifications.append(notification)


async def start(
    nursery: trio.Nursery, limits: Limits | None = None
) -> tuple[Connection, MemoryClient, FakeDispatcher]:
    transport, client = memory_transport_pair()
    dispatcher = FakeDispatcher()
    conn: Connection = await nursery.start(Connection(transport, dispatcher, limits=limits).serve)
    return conn, client, dispatcher


async def test_ids_are_echoed_and_jsonrpc_field_is_accepted_but_not_sent(nursery: trio.Nursery) -> None:
    _, client, _ = await start(nursery)
    await client.send({"jsonrpc": "2.0", "id": "abc-1", "method": "echo", "params": {"x": 1}})
    assert await client.receive() == {"id": "abc-1", "result": {"x": 1}}
    await client.send({"id": 7, "method": "echo", "params": [1]})
    assert await client.receive() == {"id": 7, "result": [1]}


async def test_blank_lines_and_garbage_get_no_answer_and_do_not_disturb(nursery: trio.Nursery) -> None:
    _, client, dispatcher = await start(nursery)
    await client.send_raw(b'\n\n   \n{not json\n[1,2]\n"str"\n{"foo":1}\n{"id":77}\n\xff\xfe\n')
    await client.send({"method": "some/notification", "params": {"a": 1}})
    await client.send({"id": 1, "method": "echo", "params": "ok"})
    assert await client.receive() == {"id": 1, "result": "ok"}
    assert dispatcher.notifications == [Notification("some/notification", {"a": 1})]


async def test_a_16_mib_line_is_accepted(nursery: trio.Nursery) -> None:
    _, client, _ = await start(nursery)
    big = "x" * (16 * 1024 * 1024 + 10)
    async with trio.open_nursery() as inner:
        inner.start_soon(client.send, {"id": 1, "method": "echo", "params": big})
        reply = await client.receive(timeout=30)
    assert reply["result"] == big


async def test_a_slow_handler_does_not_block_other_requests(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, client, dispatcher = await start(nursery)
    await client.request(1, "slow")
    await client.request(2, "echo", "fast")
    assert await client.receive() == {"id": 2, "result": "fast"}
    dispatcher.release.set()
    assert await client.receive() == {"id": 1, "result": "slow done"}


async def test_rpc_errors_become_error_responses(nursery: trio.Nursery) -> None:
    _, client, _ = await start(nursery)
    assert await client.call(3, "fail") == {
        "error": {"code": -32600, "message": "nope", "data": {"why": 1}},
        "id": 3,
    }


async def test_an_exception_in_a_handler_leaks_nothing_and_the_connection_stays_up(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    _, client, _ = await start(nursery)
    reply = await client.call(4, "boom")
    assert reply == {"error": {"code": -32603, "message": "Internal error"}, "id": 4}
    assert await client.call(5, "echo", 1) == {"id": 5, "result": 1}
    assert "RuntimeError" in caplog.text  # the traceback goes to the log


async def test_server_request_gets_the_client_result(nursery: trio.Nursery) -> None:
    _, client, _ = await start(nursery)
    await client.request("r", "ask", 5)
    asked = await client.receive()
    assert asked == {"id": 0, "method": "client/thing", "params": {"q": 1}}
    await client.send({"id": 0, "result": {"answer": 42}})
    assert await client.receive() == {"id": "r", "result": {"answer": 42}}


async def test_server_request_error_reply_raises_a_typed_error(nursery: trio.Nursery) -> None:
    _, client, dispatcher = await start(nursery)
    await client.request("r", "ask", 5)
    asked = await client.receive()
    await client.send({"id": asked["id"], "error": {"code": -32000, "message": "denied"}})
    assert (await client.receive())["error"]["message"] == "ClientReturnedError"
    (err,) = dispatcher.asked
    assert isinstance(err, ClientReturnedError)
    assert (err.code, err.message) == (-32000, "denied")


async def test_server_request_times_out_at_its_deadline_and_late_replies_are_dropped(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, client, _dispatcher = await start(nursery)
    await client.request("r", "ask", 10)
    asked = await client.receive()
    started = trio.current_time()
    reply = await client.receive(timeout=60)
    assert reply["error"]["message"] == "RequestTimeout"
    assert trio.current_time() - started == pytest.approx(10)
    # A late answer to the expired request is ignored; the connection goes on.
    await client.send({"id": asked["id"], "result": {}})
    assert await client.call(9, "echo", "still here") == {"id": 9, "result": "still here"}
    # The next server request uses the next id.
    await client.request("r2", "ask", 10)
    assert (await client.receive())["id"] == asked["id"] + 1


async def test_pending_requests_fail_at_once_when_the_client_goes_away(autojump_clock: Any) -> None:
    transport, client = memory_transport_pair()
    dispatcher = FakeDispatcher()
    conn = Connection(transport, dispatcher)
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.serve)
        await client.request("r", "ask", 1000)
        await client.receive()
        started = trio.current_time()
        await client.close()
        with trio.fail_after(5):
            await conn.closed.wait()
    assert trio.current_time() - started < 1
    (err,) = dispatcher.asked
    assert isinstance(err, ConnectionClosed)
    with pytest.raises(ConnectionClosed):
        await conn.send_request("client/thing", None, timeout=1)


async def test_requests_beyond_the_in_flight_limit_are_refused_as_overloaded(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, client, dispatcher = await start(nursery, Limits(max_in_flight=2))
    for i in range(3):
        await client.request(i, "slow")
    assert await client.receive() == {
        "error": {"code": -32001, "message": "Server overloaded; retry later."},
        "id": 2,
    }
    dispatcher.release.set()
    replies = {json.dumps(await client.receive()) for _ in range(2)}
    assert replies == {json.dumps({"id": i, "result": "slow done"}) for i in range(2)}
    assert await client.call(5, "slow") == {"id": 5, "result": "slow done"}


async def test_end_of_input_answers_what_was_read_then_cancels_the_rest(autojump_clock: Any) -> None:
    transport, client = memory_transport_pair()
    dispatcher = FakeDispatcher()
    conn = Connection(transport, dispatcher, limits=Limits(close_grace=0.5))
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.serve)
        await client.request(1, "echo", "answered")
        await client.request(2, "slow")  # never released: cancelled after the grace
        await client.close()
        started = trio.current_time()
        assert await client.receive() == {"id": 1, "result": "answered"}
        with trio.fail_after(5):
            await conn.closed.wait()
    assert trio.current_time() - started <= 1.0


async def test_notifications_opted_out_are_not_sent(nursery: trio.Nursery) -> None:
    conn, client, _ = await start(nursery)
    conn.suppressed_notifications = frozenset({"noisy"})
    await conn.notify("noisy", {"a": 1})
    await conn.notify("wanted", {"b": 2})
    assert await client.receive() == {"method": "wanted", "params": {"b": 2}}


async def test_a_result_that_is_not_json_becomes_an_internal_error(nursery: trio.Nursery) -> None:
    _, client, _ = await start(nursery)
    await client.send({"id": 1, "method": "echo", "params": None})
    assert await client.receive() == {"id": 1, "result": None}
    conn_dispatcher = FakeDispatcher()
    transport, client2 = memory_transport_pair()

    class Unencodable(FakeDispatcher):
        def dispatch(self, conn: Connection, request: Request) -> Any:
            return Reply({"value": object()})

    del conn_dispatcher
    await nursery.start(Connection(transport, Unencodable()).serve)
    assert await client2.call(7, "anything") == {
        "error": {"code": -32603, "message": "Internal error"},
        "id": 7,
    }
    assert await client2.call(8, "again") == {"error": {"code": -32603, "message": "Internal error"}, "id": 8}


# ---- a client that stops reading ----------------------------------------------------------------


def lockstep_connection(limits: Limits) -> tuple[Connection, MemoryClient]:
    """A connection whose writes go through only as fast as the client reads (no buffer between)."""
    server_side, client_side = trio.testing.lockstep_stream_pair()
    conn = Connection(StreamTransport(server_side, server_side), FakeDispatcher(), limits=limits)
    return conn, MemoryClient(client_side)


SHARED = Limits(outbound_queue=4, outbound_queue_max=16, write_batch=1, slow_reader_timeout=5)


async def test_on_a_shared_transport_notifications_never_wait_and_the_hard_limit_drops_the_client(
    autojump_clock: Any,
) -> None:
    conn, client = lockstep_connection(SHARED)
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.serve)
        started = trio.current_time()
        sent = 0
        with pytest.raises(ConnectionClosed):
            for i in range(100):
                await conn.notify("note", {"i": i})
                sent += 1
        # Whoever fans notifications out to other clients too is never held up by this one.
        assert trio.current_time() == started
        assert sent in (16, 17)  # the hard limit, plus the one the writer may have taken already
        assert not conn.is_open
        with pytest.raises(ConnectionClosed):
            await conn.notify("note", {"i": "after"})
        with pytest.raises(ConnectionClosed):
            await conn.send_request("client/thing", None, timeout=1)
        # If it reads now, the client still gets what had been queued, in order.
        with trio.fail_after(5):
            received = [(await client.receive())["params"]["i"] for _ in range(sent)]
            await conn.closed.wait()
        assert received == list(range(sent))
        nursery.cancel_scope.cancel()


async def test_on_a_shared_transport_a_client_that_stopped_reading_is_dropped_after_the_timeout(
    autojump_clock: Any,
) -> None:
    conn, _client = lockstep_connection(SHARED)
    outcome: list[tuple[float, BaseException]] = []

    async def ask() -> None:
        # As a turn asking for approval does, from outside the connection's nursery.
        try:
            await conn.send_request("client/thing", None, timeout=100)
        except ConnectionClosed as exc:
            outcome.append((trio.current_time(), exc))

    async with trio.open_nursery() as nursery:
        await nursery.start(conn.serve)
        started = trio.current_time()
        for i in range(8):  # over outbound_queue, under the hard limit: queued without waiting
            await conn.notify("note", {"i": i})
        assert trio.current_time() == started and conn.is_open
        nursery.start_soon(ask)  # waits for room
        with trio.fail_after(60):
            await conn.closed.wait()
        # The write that made no progress for slow_reader_timeout is what gave the client away, and
        # the request waiting for room failed with it, not at its own timeout.
        assert trio.current_time() - started == pytest.approx(5)
        assert [when - started for when, _ in outcome] == [pytest.approx(5)]


async def test_on_a_shared_transport_a_slow_but_steady_reader_keeps_its_connection(
    autojump_clock: Any,
) -> None:
    conn, client = lockstep_connection(SHARED)
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.serve)
        for i in range(15):
            await conn.notify("note", {"i": i})
        # One message every 4 s: the queue stays full for a minute, yet every write completes within
        # slow_reader_timeout (5 s).
        received = []
        for _ in range(15):
            await trio.sleep(4)
            received.append((await client.receive())["params"]["i"])
        assert received == list(range(15))
        assert conn.is_open
        assert await client.call(1, "echo", "still here") == {"id": 1, "result": "still here"}
        nursery.cancel_scope.cancel()


async def test_on_stdio_a_full_queue_makes_the_notifier_wait_for_the_client(autojump_clock: Any) -> None:
    conn, client = lockstep_connection(Limits(outbound_queue=4, write_batch=1))
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.serve)
        sent: list[int] = []

        async def notifier() -> None:
            for i in range(20):
                await conn.notify("note", {"i": i})
                sent.append(i)

        nursery.start_soon(notifier)
        await trio.sleep(60)
        # A minute later the notifier still waits for room, and the client is still connected.
        assert 4 <= len(sent) < 20 and conn.is_open
        assert [(await client.receive())["params"]["i"] for _ in range(20)] == list(range(20))
        assert sent == list(range(20)) and conn.is_open
        nursery.cancel_scope.cancel()


async def test_on_a_shared_transport_a_reply_waits_for_room_at_most_slow_reader_timeout(
    autojump_clock: Any,
) -> None:
    conn, client = lockstep_connection(Limits(outbound_queue=4, write_batch=1, slow_reader_timeout=3))
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.serve)
        started = trio.current_time()
        # Pipelined requests whose answers the client never reads: the reader waits for room in the
        # queue (slowing this client's own requests down) until slow_reader_timeout says it has had
        # long enough.
        requests = b"".join(b'{"id": %d, "method": "echo", "params": 1}\n' % i for i in range(50))
        nursery.start_soon(client.send_raw, requests)
        with trio.fail_after(60):
            await conn.closed.wait()
        assert 3 <= trio.current_time() - started <= 3 + conn.limits.close_grace + 0.1
        nursery.cancel_scope.cancel()


class RecordingTransport:
    """Records the batches the writer hands over; the client never sends anything."""

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []

    async def receive_message(self) -> bytes | None:
        await trio.sleep_forever()
        return None

    async def send_messages(self, messages: Any) -> None:
        self.batches.append(list(messages))
        await trio.sleep(1)  # a slow pipe: the queue fills behind this write

    async def aclose(self) -> None:
        pass


async def test_the_writer_caps_a_batch_by_bytes_as_well_as_by_count(autojump_clock: Any) -> None:
    transport = RecordingTransport()
    limits = Limits(outbound_queue=64, write_batch=16, write_batch_bytes=250_000)
    conn = Connection(transport, FakeDispatcher(), limits=limits)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.serve)
        await conn.notify("first", {})
        for i in range(6):
            await conn.notify("big", {"i": i, "text": "a" * 100_000})
        for i in range(40):
            await conn.notify("small", {"i": i})
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    sent = [json.loads(m) for batch in transport.batches for m in batch]
    assert [m["method"] for m in sent] == ["first"] + ["big"] * 6 + ["small"] * 40
    for batch in transport.batches:
        # A write stops taking messages once it holds 250,000 bytes, or 16 messages.
        assert len(batch) <= 16
        assert sum(len(m) for m in batch[:-1]) < 250_000
    # So the six large ones went out in two writes of three, however the first was taken.
    bigs = [sum(json.loads(m)["method"] == "big" for m in batch) for batch in transport.batches]
    assert [n for n in bigs if n] == [3, 3]
