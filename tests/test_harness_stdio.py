"""The server against misbehaving clients, end to end over stdio; and the harness's own policies.

The first part runs the real server as a subprocess (``codex_trio.testing.harness.open_server``) and
checks what a client sees: answers to well-formed requests whatever else arrives, bounded memory,
and a clean, prompt exit (status 0, no traceback) however the client goes away. Every message the
server writes is validated against the protocol schema.

The second part proves the responder policies and the flooder against an in-memory ``Connection``
(nothing in the server asks the client anything yet), on a virtual clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import AbstractAsyncContextManager, suppress
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import trio
import trio.testing
from schema_check import ProtocolValidator, load_schema

from codex_trio.rpc.errors import ClientReturnedError, ConnectionClosed, RequestTimeout, RpcError
from codex_trio.rpc.messages import Notification, Request
from codex_trio.rpc.session import Connection, Limits, Reply
from codex_trio.testing.harness import (
    DEFAULT_RESULTS,
    MIB,
    OVERLOADED,
    OVERLOADED_MESSAGE,
    AnswerAfter,
    AnswerNormally,
    AnswerWithError,
    CloseStdinOnRequest,
    NeverAnswer,
    PerMethod,
    Responder,
    RpcClient,
    ServerOutputClosed,
    ServerRequest,
    StdioServer,
    binary_junk,
    garbage_lines,
    hermetic_env,
    huge_line,
    huge_request,
    open_rpc_client,
    open_server,
    process_gone,
    server_command,
    wait_until_gone,
)
from codex_trio.transport.stdio import StreamTransport


def serve(**kwargs: Any) -> AbstractAsyncContextManager[StdioServer]:
    """The server, with every message it writes checked against the protocol schema."""
    return open_server(validator=ProtocolValidator(), **kwargs)


# =============================================================================================
# End to end: the real server over stdio


async def test_garbage_partial_and_huge_lines_get_no_answer_and_do_not_disturb_real_requests() -> None:
    async with serve() as server:
        init = await server.initialize()
        agent = init["userAgent"]
        expected = {"userAgent": agent}

        await server.send_raw(garbage_lines())
        assert await server.call_result("getUserAgent") == expected

        await server.send_raw(binary_junk(256 * 1024, seed=7))
        assert await server.call("getUserAgent", id="ïd-✓") == {"id": "ïd-✓", "result": expected}

        # 20 MiB of junk on one line, then a 20 MiB request that must be answered.
        await server.send_raw(huge_line(20 * MIB))
        assert await server.call_result("getUserAgent") == expected
        reply = await server.call("getUserAgent", message=huge_request("big", "getUserAgent"), timeout=30)
        assert reply == {"id": "big", "result": expected}

        # One request dribbled in 3-byte writes (cutting "é" in two), interleaved with nothing else.
        await server.send_in_pieces({"id": "pièces", "method": "getUserAgent"}, piece=3, pause=0.002)
        assert await server.receive() == {"id": "pièces", "result": expected}

        # Blank lines and whitespace between messages are not messages either.
        await server.send_raw(b"\n\n  \t \n\r\n")
        assert await server.call_result("getUserAgent") == expected

        # A line cut short by the end of input: nothing to answer, and still a clean exit.
        await server.send_raw(b'{"id":"cut","method":"getUserA')
        await server.close_stdin()
        assert await server.drain(timeout=5) == []
        assert await server.wait_exit(1.0) == 0
        stderr = server.stderr_text()
    # What the client sent is never echoed into the logs (it may hold secrets).
    assert "x" * 64 not in stderr and "p" * 64 not in stderr


async def test_a_flood_of_5000_pipelined_requests_is_answered_in_order_with_bounded_memory() -> None:
    async with serve() as server:
        agent = (await server.initialize())["userAgent"]
        baseline = server.peak_rss_kib()
        flood = await server.flood(5000, "getUserAgent")
        peak = server.peak_rss_kib()
    assert flood.missing == 0
    assert flood.in_order
    # Immediate replies are never refused: "Server overloaded" is for work that runs on its own.
    assert flood.overloaded == [] and flood.other_errors == []
    assert {r["result"]["userAgent"] for r in flood.results} == {agent}
    assert baseline is not None and peak is not None
    assert peak - baseline < 32 * 1024, f"VmHWM grew by {peak - baseline} KiB"


async def _write_until_stalled(
    server: StdioServer, total: int, chunk: int, written: list[int], nursery: trio.Nursery
) -> None:
    """Write ``total`` requests in background writes of ``chunk``; returns once writing stalled
    (no progress for 0.5 s) or finished. ``written`` gets the ids sent, in order."""

    async def writer() -> None:
        # A client that hangs up interrupts its own blocked write.
        with trio.move_on_after(60), suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            while len(written) < total:
                written.extend(await server.send_requests("getUserAgent", count=chunk))

    nursery.start_soon(writer)
    last, still = -1, 0
    while len(written) < total and still < 5:
        await trio.sleep(0.1)
        still = still + 1 if len(written) == last else 0
        last = len(written)


async def test_a_client_that_stops_reading_gets_backpressure_not_unbounded_memory() -> None:
    total = 16_384
    async with serve() as server:
        agent = (await server.initialize())["userAgent"]
        baseline = server.peak_rss_kib()
        await server.pause_reading()
        written: list[Any] = []
        async with trio.open_nursery() as nursery:
            await _write_until_stalled(server, total, 256, written, nursery)
            stalled_at = len(written)
            peak = server.peak_rss_kib()
            # The server stopped reading its input instead of buffering answers nobody reads.
            assert stalled_at < total, "the server read everything although nobody read its output"
            assert baseline is not None and peak is not None
            assert peak - baseline < 32 * 1024, f"VmHWM grew by {peak - baseline} KiB"
            # Once the client reads again, every request gets its answer, in order.
            server.resume_reading()
            replies = [await server.receive() for _ in range(total)]
        assert len(written) == total
        assert [r["id"] for r in replies] == written
        assert all(r["result"] == {"userAgent": agent} for r in replies)


async def test_a_client_that_dies_without_reading_lets_the_server_exit_at_once() -> None:
    async with serve(check_exit=False) as server:
        await server.initialize()
        await server.pause_reading()
        written: list[Any] = []
        async with trio.open_nursery() as nursery:
            await _write_until_stalled(server, 1_000_000, 256, written, nursery)
            assert len(written) < 1_000_000
            # What a dying client does to its pipes: both ends close; the blocked write fails.
            await server.close_stdin()
            await server.close_output()
            assert await server.wait_exit(1.0) == 0
            nursery.cancel_scope.cancel()
        server.assert_no_traceback()


async def test_stdin_closed_mid_request_answers_what_was_read_and_exits_0_within_1s() -> None:
    async with serve(check_exit=False) as server:
        await server.initialize()
        ids = await server.send_requests("getUserAgent", count=1000)
        await server.send_raw(b'{"id":"half","method":"getUserAgent","par')
        await server.close_stdin()
        assert await server.wait_exit(1.0) == 0
        replies = await server.drain(timeout=5)
        server.assert_no_traceback()
    assert [r["id"] for r in replies] == ids


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_sigint_and_sigterm_exit_0_within_1s_without_traceback(signum: int) -> None:
    async with serve(check_exit=False, env={"CODEX_TRIO_LOG": "info"}) as server:
        await server.initialize()
        # Work in flight when the signal comes: a burst of requests not yet answered.
        await server.send_requests("getUserAgent", count=2000)
        server.send_signal(signum)
        assert await server.wait_exit(1.0) == 0
        await server.drain(timeout=5)  # every message it did write was well-formed
        server.assert_no_traceback()
        assert f"received {signal.Signals(signum).name}; shutting down" in server.stderr_text()


# The intermediate parent: starts the server on our stdin/stdout/stderr, reports its pid, waits.
PARENT_SCRIPT = """
import os, subprocess, sys
server = subprocess.Popen(sys.argv[2:])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
server.wait()
"""


async def test_the_server_exits_when_its_parent_dies_even_with_stdin_open(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "codex_home").mkdir()
    env = hermetic_env(
        home=tmp_path / "home", codex_home=tmp_path / "codex_home", overrides={"CODEX_TRIO_LOG": "info"}
    )
    pid_file = tmp_path / "server.pid"
    stderr_path = tmp_path / "stderr.log"
    stdin_read, stdin_write = os.pipe()
    server_pid: int | None = None
    try:
        with stderr_path.open("wb") as stderr_file:
            parent = await trio.lowlevel.open_process(
                [sys.executable, "-c", PARENT_SCRIPT, str(pid_file), *server_command()],
                stdin=stdin_read,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                env=env,
                cwd=tmp_path,
            )
        os.close(stdin_read)
        assert parent.stdout is not None
        # The test keeps the server's stdin open for the whole test, through its own write end.
        stdin = trio.lowlevel.FdStream(os.dup(stdin_write))
        async with open_rpc_client(stdin, parent.stdout, validator=ProtocolValidator()) as client:
            await client.initialize()
            with trio.fail_after(5):
                while not pid_file.exists():  # written right after the spawn; wait out the rename
                    await trio.sleep(0.01)
            server_pid = int(pid_file.read_text())
            assert not process_gone(server_pid)

            parent.kill()  # SIGKILL: no chance to clean up its child
            await parent.wait()
            assert await wait_until_gone(server_pid, 2.0), "the server outlived its parent by 2 s"
            # Its output closed with it; nothing half-written came out.
            assert await client.drain(timeout=2) == []
        await parent.stdout.aclose()
        stderr = stderr_path.read_text()
        assert "Traceback" not in stderr
        assert "shutting down" in stderr  # an orderly shutdown, not a kill
    finally:
        os.close(stdin_write)
        if server_pid is not None and not process_gone(server_pid):
            os.kill(server_pid, signal.SIGKILL)


# =============================================================================================
# The responder policies and the flooder, against an in-memory Connection


class AskingDispatcher:
    """Requests: ``ask {method, params, timeout}`` makes the server ask the client that and answers
    with what happened; ``echo``; ``slow`` (until released)."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[float, Any]] = []
        self.release = trio.Event()

    def dispatch(self, conn: Connection, request: Request) -> Any:
        if request.method == "echo":
            return Reply(request.params)
        if request.method == "slow":

            async def slow() -> str:
                await self.release.wait()
                return "done"

            return slow
        if request.method == "ask":
            p = request.params

            async def ask() -> Any:
                try:
                    answer = await conn.send_request(p["method"], p.get("params"), timeout=p["timeout"])
                except ConnectionClosed as exc:
                    # As real handlers do: nobody is left to answer, so no reply.
                    self.outcomes.append((trio.current_time(), exc))
                    raise
                except (ClientReturnedError, RequestTimeout) as exc:
                    self.outcomes.append((trio.current_time(), exc))
                    data = {"code": exc.code, "message": exc.message} if isinstance(
                        exc, ClientReturnedError
                    ) else None
                    raise RpcError(type(exc).__name__, data=data) from None
                self.outcomes.append((trio.current_time(), answer))
                return {"answer": answer}

            return ask
        raise RpcError("unknown")

    def notification(self, conn: Connection, notification: Notification) -> None:
        pass


APPROVAL = "item/commandExecution/requestApproval"
APPROVAL_PARAMS = {"itemId": "item-1", "threadId": "thr-1", "turnId": "turn-1", "command": "ls"}


def ask(method: str = APPROVAL, timeout: float = 10, params: Any = APPROVAL_PARAMS) -> dict[str, Any]:
    return {"method": method, "params": params, "timeout": timeout}


async def serve_then_hang_up(
    conn: Connection, stream: trio.abc.Stream, *, task_status: trio.TaskStatus[Connection]
) -> None:
    try:
        await conn.serve(task_status=task_status)
    finally:
        await stream.aclose()  # what the exit of a server process does to its stdout


async def run_memory(
    nursery: trio.Nursery, limits: Limits | None = None
) -> tuple[Connection, AskingDispatcher, Any]:
    server_side, client_side = trio.testing.memory_stream_pair()
    dispatcher = AskingDispatcher()
    conn = Connection(StreamTransport(server_side, server_side), dispatcher, limits=limits)
    await nursery.start(serve_then_hang_up, conn, server_side)
    return conn, dispatcher, client_side


def client_on(client_side: Any, responder: Responder | None) -> AbstractAsyncContextManager[RpcClient]:
    # The two halves separately, so that closing "stdin" leaves the server's output readable.
    return open_rpc_client(client_side.send_stream, client_side.receive_stream, responder=responder)


def test_default_answers_validate_against_the_protocol_response_schemas() -> None:
    request_schema = load_schema("ServerRequest.json")
    answered = set()
    for branch in request_schema["oneOf"]:
        method = branch["properties"]["method"]["enum"][0]
        if method not in DEFAULT_RESULTS:
            continue
        stem = branch["properties"]["params"]["$ref"].rsplit("/", 1)[-1].removesuffix("Params")
        sample_params = {
            "questions": [
                {
                    "id": "q1",
                    "header": "H",
                    "question": "Which?",
                    "options": [{"label": "A", "description": "a"}],
                },
                {"id": "q2", "header": "H", "question": "Free text?"},
            ]
        }
        found, result = AnswerNormally().result_for(ServerRequest(0, method, sample_params))
        assert found
        jsonschema.validate(result, load_schema(f"{stem}Response.json"))
        answered.add(method)
    # Every server request has a default except the token refresh, whose tokens a test must choose.
    assert answered == set(DEFAULT_RESULTS)
    assert len(answered) == len(request_schema["oneOf"]) - 1


async def test_answer_normally_returns_the_default_or_configured_result(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, _, side = await run_memory(nursery)
    responder = AnswerNormally({"account/chatgptAuthTokens/refresh": {"accessToken": "a", "idToken": "i"}})
    async with client_on(side, responder) as client:
        assert await client.call_result("ask", ask()) == {"answer": {"decision": "accept"}}
        refresh = ask("account/chatgptAuthTokens/refresh", params={"reason": "unauthorized"})
        assert await client.call_result("ask", refresh) == {"answer": {"accessToken": "a", "idToken": "i"}}
        # No answer configured and no default: the client says so with an error.
        reply = await client.call("ask", ask("some/unknown", params={}))
        assert reply["error"]["data"] == {
            "code": -32601,
            "message": "harness has no answer for some/unknown",
        }
        assert [r.method for r in client.server_requests] == [
            APPROVAL,
            "account/chatgptAuthTokens/refresh",
            "some/unknown",
        ]
        assert [r["id"] for r in client.replies_sent] == [0, 1, 2]


async def test_answer_after_a_delay_arrives_late_and_does_not_hold_up_the_client(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, dispatcher, side = await run_memory(nursery)
    async with client_on(side, AnswerAfter(3.0)) as client:
        started = trio.current_time()
        asked = await client.request("ask", ask(timeout=10))
        # The client keeps reading and calling while its answer is pending.
        assert await client.call_result("echo", "meanwhile") == "meanwhile"
        assert trio.current_time() - started < 0.1
        reply = await client.receive()
        assert reply == {"id": asked, "result": {"answer": {"decision": "accept"}}}
        assert dispatcher.outcomes[0][0] - started == pytest.approx(3.0)


async def test_an_answer_later_than_the_deadline_times_out_and_is_then_ignored(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, dispatcher, side = await run_memory(nursery)
    async with client_on(side, AnswerAfter(5.0)) as client:
        started = trio.current_time()
        reply = await client.call("ask", ask(timeout=2))
        assert reply["error"]["message"] == "RequestTimeout"
        assert trio.current_time() - started == pytest.approx(2.0)
        await trio.sleep(5)  # the late answer goes out now, and the server drops it
        assert len(client.replies_sent) == 1
        assert await client.call_result("echo", 1) == 1
        assert len(dispatcher.outcomes) == 1


async def test_answer_with_error_reaches_the_server_as_a_typed_error(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, dispatcher, side = await run_memory(nursery)
    async with client_on(side, AnswerWithError(-32000, "user said no", {"why": "policy"})) as client:
        reply = await client.call("ask", ask())
        assert reply["error"]["data"] == {"code": -32000, "message": "user said no"}
        (_, exc), = dispatcher.outcomes
        assert isinstance(exc, ClientReturnedError) and exc.data == {"why": "policy"}


async def test_never_answer_times_out_exactly_at_the_deadline(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, dispatcher, side = await run_memory(nursery)
    async with client_on(side, NeverAnswer()) as client:
        started = trio.current_time()
        reply = await client.call("ask", ask(timeout=7), timeout=60)
        assert reply["error"]["message"] == "RequestTimeout"
        assert dispatcher.outcomes[0][0] - started == pytest.approx(7.0)
        assert client.replies_sent == []


async def test_closing_stdin_on_a_server_request_fails_it_at_once_and_ends_the_connection(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    conn, dispatcher, side = await run_memory(nursery)
    async with client_on(side, CloseStdinOnRequest()) as client:
        started = trio.current_time()
        await client.request("ask", ask(timeout=1000))
        with trio.fail_after(5):
            await conn.closed.wait()
        (when, exc), = dispatcher.outcomes
        assert isinstance(exc, ConnectionClosed)
        assert when - started < 1  # not at the 1000 s deadline
        # Nobody is left to answer: no reply, and the output ends.
        assert await client.drain(timeout=5) == []


async def test_per_method_policies_apply_by_method(nursery: trio.Nursery, autojump_clock: Any) -> None:
    _, _, side = await run_memory(nursery)
    policy = PerMethod({"item/tool/call": AnswerWithError(-32000, "no tools")}, default=AnswerNormally())
    async with client_on(side, policy) as client:
        tool = ask("item/tool/call", params={"tool": "t"})
        assert (await client.call("ask", tool))["error"]["message"] == "ClientReturnedError"
        assert await client.call_result("ask", ask()) == {"answer": {"decision": "accept"}}


async def test_without_a_responder_server_requests_come_to_the_test(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, _, side = await run_memory(nursery)
    async with client_on(side, None) as client:
        asked = await client.request("ask", ask())
        request = await client.receive()
        assert request == {"id": 0, "method": APPROVAL, "params": APPROVAL_PARAMS}
        await client.respond(request["id"], {"decision": "decline"})
        assert await client.receive() == {"id": asked, "result": {"answer": {"decision": "decline"}}}


async def test_the_flooder_sorts_results_from_overload_refusals(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, dispatcher, side = await run_memory(nursery, Limits(max_in_flight=4))
    async with client_on(side, None) as client:

        async def release_later() -> None:
            await trio.sleep(1)
            dispatcher.release.set()

        nursery.start_soon(release_later)
        flood = await client.flood(10, "slow", batch=3)
    assert flood.missing == 0
    assert len(flood.results) == 4 and len(flood.overloaded) == 6
    assert {r["error"]["message"] for r in flood.overloaded} == {OVERLOADED_MESSAGE}
    assert all(r["error"]["code"] == OVERLOADED for r in flood.overloaded)
    # The refusals come first, so the arrival order is not the sending order.
    assert not flood.in_order
    assert sorted(r["id"] for r in flood.replies) == flood.ids


async def test_the_flooder_keeps_at_most_window_requests_unanswered(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    _, dispatcher, side = await run_memory(nursery, Limits(max_in_flight=1000))
    async with client_on(side, None) as client:

        async def release_later() -> None:
            await trio.sleep(1)
            dispatcher.release.set()

        nursery.start_soon(release_later)
        flood = await client.flood(100, "slow", window=8, batch=3)
    # With at most 8 outstanding, none was refused, and everything came back.
    assert flood.missing == 0 and len(flood.results) == 100


async def test_a_closed_output_fails_pending_calls_instead_of_hanging(
    nursery: trio.Nursery, autojump_clock: Any
) -> None:
    conn, _, side = await run_memory(nursery)
    async with client_on(side, None) as client:
        await client.request("slow")

        async def close_later() -> None:
            await trio.sleep(1)
            conn.close()

        nursery.start_soon(close_later)
        started = trio.current_time()
        with pytest.raises(ServerOutputClosed):
            await client.call("slow", timeout=100)
        assert trio.current_time() - started == pytest.approx(1.0)
