"""From a request to its processor: method lookup, params decoding, the initialization gate.

Processors describe their methods with ``Method``; the router is the only place that decodes params and
turns a decoding failure into the reference's ``Invalid request: ...`` error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from .protocol.methods import CLIENT_REQUEST_METHODS, METHODS_WITHOUT_PARAMS
from .rpc.decode import DecodeError, decoder_for, unexpected, unknown_variant
from .rpc.errors import RpcError, invalid_params
from .rpc.messages import JsonValue, Notification, Request, RequestId
from .rpc.session import Connection, Deferred, Reply

if TYPE_CHECKING:
    from .app import ClientSession

log = logging.getLogger(__name__)

NOT_INITIALIZED = "Not initialized"


@dataclass(frozen=True)
class RequestContext:
    conn: Connection
    session: ClientSession
    request_id: RequestId


Handler = Callable[[RequestContext, Any], "Awaitable[JsonValue] | JsonValue"]


@dataclass(frozen=True)
class Method:
    name: str
    # The TypedDict of its params, or None for a method that takes none.
    params: Any
    handler: Handler
    # Answered by the reader itself, in arrival order: for cheap handlers whose effect later requests
    # must see (initialize). Such a handler must be a plain function.
    inline: bool = False
    # Deferred requests naming the same sequence start in the order the client sent them, each once the
    # previous one is done (trio schedules new tasks in no fixed order); other requests still overlap.
    sequence: str | None = None


class Router:
    def __init__(self, methods: Iterable[Method]) -> None:
        self._methods: dict[str, Method] = {}
        for m in methods:
            if m.name not in CLIENT_REQUEST_METHODS:
                raise ValueError(f"{m.name} is not a method of the protocol")
            if m.name in self._methods:
                raise ValueError(f"{m.name} registered twice")
            self._methods[m.name] = m
        self._decoders = {m.name: decoder_for(m.params) for m in self._methods.values() if m.params}

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(self._methods)

    def dispatch(self, session: ClientSession, conn: Connection, request: Request) -> Reply | Deferred:
        name = request.method
        method = self._methods.get(name)
        if method is None and name not in CLIENT_REQUEST_METHODS:
            raise invalid_params(str(unknown_variant(name, CLIENT_REQUEST_METHODS)))
        # Like the reference, the whole request is decoded before the initialization check.
        params = None
        if name in METHODS_WITHOUT_PARAMS:
            # Their params are serde's unit: absent, null or {} only.
            if request.params is not None and request.params != {}:
                raise invalid_params(f"invalid type: {unexpected(request.params)}, expected unit")
        elif request.params is None:
            raise invalid_params("missing field `params`")
        decoder = self._decoders.get(name)
        if decoder is not None:
            try:
                params = decoder(request.params)
            except DecodeError as exc:
                raise invalid_params(str(exc)) from None
        if not session.initialized and name != "initialize":
            raise RpcError(NOT_INITIALIZED)
        if method is None:
            raise RpcError(f"{name} is not supported by codex-trio")
        ctx = RequestContext(conn, session, request.id)
        if method.inline:
            result = method.handler(ctx, params)
            return result if isinstance(result, Reply) else Reply(result)

        if method.sequence is None:

            async def run() -> JsonValue:
                return await method.handler(ctx, params)

            return run
        previous = session.sequence_tails.get(method.sequence)
        done = trio.Event()
        session.sequence_tails[method.sequence] = done

        async def run_in_sequence() -> JsonValue:
            try:
                if previous is not None:
                    await previous.wait()
                return await method.handler(ctx, params)
            finally:
                done.set()

        return run_in_sequence

    def notification(self, session: ClientSession, notification: Notification) -> None:
        if notification.method == "initialized":
            session.client_initialized = True
            return
        # The reference ignores notifications it does not know; so do we, leaving a trace.
        log.warning("ignoring unknown notification %s", notification.method[:200])
