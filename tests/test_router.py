"""Dispatch through the real application over an in-memory transport: the reference's texts exactly."""

from __future__ import annotations

import os
import tempfile

import trio
from memclient import MemoryClient, memory_transport_pair
from schema_check import ProtocolValidator

from codex_trio.app import AppServer, ServerOptions
from codex_trio.protocol.methods import CLIENT_REQUEST_METHODS

INIT = {"clientInfo": {"name": "harness", "version": "0.0.1"}}


def isolated_env() -> dict[str, str]:
    """The developer's own ~/.codex must never shape (or be touched by) these tests."""
    return {**os.environ, "TERM": "xterm", "CODEX_HOME": tempfile.mkdtemp(prefix="codex-trio-test-")}


async def start(nursery: trio.Nursery) -> tuple[AppServer, MemoryClient]:
    app = AppServer(ServerOptions(env=isolated_env()))
    transport, client = memory_transport_pair(ProtocolValidator())
    await nursery.start(app.serve_transport, transport)
    return app, client


async def test_requests_before_initialize_are_refused(nursery: trio.Nursery) -> None:
    _, client = await start(nursery)
    assert await client.call(1, "getUserAgent") == {
        "error": {"code": -32600, "message": "Not initialized"},
        "id": 1,
    }


async def test_unknown_method_lists_every_method_even_before_initialize(nursery: trio.Nursery) -> None:
    _, client = await start(nursery)
    reply = await client.call("a", "bogus/method", {})
    expected = ", ".join(f"`{m}`" for m in CLIENT_REQUEST_METHODS)
    assert reply == {
        "error": {
            "code": -32600,
            "message": f"Invalid request: unknown variant `bogus/method`, expected one of {expected}",
        },
        "id": "a",
    }


async def test_initialize_then_already_initialized(nursery: trio.Nursery) -> None:
    _, client = await start(nursery)
    reply = await client.call(1, "initialize", INIT)
    ua = reply["result"]["userAgent"]
    assert ua.startswith("harness/0.94.0 (") and ua.endswith(") xterm (harness; 0.0.1)")
    assert await client.call(2, "initialize", INIT) == {
        "error": {"code": -32600, "message": "Already initialized"},
        "id": 2,
    }
    assert await client.call(3, "getUserAgent") == {"id": 3, "result": {"userAgent": ua}}


async def test_params_errors_name_the_field(nursery: trio.Nursery) -> None:
    _, client = await start(nursery)
    assert (await client.call(1, "initialize", {}))["error"]["message"] == (
        "Invalid request: missing field `clientInfo`"
    )
    assert (await client.call(2, "initialize"))["error"]["message"] == (
        "Invalid request: missing field `params`"
    )
    bad = {"clientInfo": {"name": 5, "version": "1"}}
    assert (await client.call(3, "initialize", bad))["error"]["message"] == (
        "Invalid request: invalid type: integer `5`, expected a string"
    )



async def test_methods_without_params_take_nothing_null_or_an_empty_object(nursery: trio.Nursery) -> None:
    _, client = await start(nursery)
    await client.call(0, "initialize", INIT)
    # As the reference answers (checked on getUserAgent, userInfo, account/logout and the others).
    for request_id, params in enumerate([None, {}], start=1):
        assert "result" in await client.call(request_id, "getUserAgent", params)
    for request_id, (params, kind) in enumerate(
        [({"x": 1}, "map"), ([], "sequence"), (5, "integer `5`"), ("x", 'string "x"')], start=10
    ):
        assert await client.call(request_id, "getUserAgent", params) == {
            "error": {"code": -32600, "message": f"Invalid request: invalid type: {kind}, expected unit"},
            "id": request_id,
        }

async def test_pipelined_requests_see_initialize(nursery: trio.Nursery) -> None:
    _, client = await start(nursery)
    await client.request(1, "initialize", INIT)
    await client.request(2, "getUserAgent")
    first, second = await client.receive(), await client.receive()
    assert first["id"] == 1 and second["id"] == 2 and "result" in second


async def test_capabilities_are_recorded_on_the_connection(nursery: trio.Nursery) -> None:
    app, client = await start(nursery)
    params = {
        **INIT,
        "capabilities": {"experimentalApi": True, "optOutNotificationMethods": ["thread/started"]},
    }
    await client.call(1, "initialize", params)
    # The session of this connection is the only one.
    (session,) = [s for s in app.sessions]
    assert session.experimental_api is True
    assert session.conn is not None
    assert session.conn.suppressed_notifications == frozenset({"thread/started"})


async def test_requests_of_one_sequence_run_in_arrival_order(autojump_clock: object) -> None:
    from codex_trio.processors.initialize import InitializeProcessor
    from codex_trio.router import Method, Router

    log: list[str] = []

    async def slow(ctx: object, params: None) -> str:
        log.append("slow started")
        await trio.sleep(1)
        log.append("slow done")
        return "slow"

    async def fast(ctx: object, params: None) -> str:
        log.append("fast ran")
        return "fast"

    async def other(ctx: object, params: None) -> str:
        log.append("other ran")
        return "other"

    app = AppServer(ServerOptions(env=isolated_env()))
    app.router = Router(
        [
            *InitializeProcessor(app).methods(),
            Method("userInfo", None, slow, sequence="s"),
            Method("account/logout", None, fast, sequence="s"),
            Method("getUserSavedConfig", None, other),
        ]
    )
    transport, client = memory_transport_pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(app.serve_transport, transport)
        await client.call(0, "initialize", INIT)
        for i, method in enumerate(["userInfo", "account/logout", "getUserSavedConfig"], start=1):
            await client.request(i, method)
        replies = [await client.receive() for _ in range(3)]
        nursery.cancel_scope.cancel()
    # The unsequenced request overtakes; the second of the sequence waits for the first.
    assert [r["id"] for r in replies] == [3, 1, 2]
    assert log.index("slow done") < log.index("fast ran")
