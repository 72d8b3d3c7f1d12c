"""An in-memory client for session-level tests: a Connection on one end of a memory stream pair."""

from __future__ import annotations

import json
from typing import Any

import trio
import trio.testing

from codex_trio.transport.framing import LineReader
from codex_trio.transport.stdio import StreamTransport


class MemoryClient:
    def __init__(self, stream: trio.abc.Stream, validator: Any = None) -> None:
        self.stream = stream
        self.reader = LineReader(stream)
        # A ProtocolValidator when the peer is the real application (not a fake dispatcher).
        self.validator = validator

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send(self, obj: Any) -> None:
        if self.validator is not None:
            self.validator.observe_client(obj)
        await self.stream.send_all(json.dumps(obj).encode() + b"\n")

    async def request(self, request_id: Any, method: str, params: Any = None) -> None:
        msg: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            msg["params"] = params
        await self.send(msg)

    async def receive(self, timeout: float = 5) -> Any:
        with trio.fail_after(timeout):
            line = await self.reader.receive_line()
        assert line is not None, "server closed its output"
        message = json.loads(line)
        if self.validator is not None:
            self.validator.check_server(message)
        return message

    async def call(self, request_id: Any, method: str, params: Any = None) -> Any:
        await self.request(request_id, method, params)
        return await self.receive()

    async def close(self) -> None:
        await self.stream.send_eof()  # type: ignore[attr-defined]


def memory_transport_pair(validator: Any = None) -> tuple[StreamTransport, MemoryClient]:
    server_side, client_side = trio.testing.memory_stream_pair()
    return StreamTransport(server_side, server_side), MemoryClient(client_side, validator)
