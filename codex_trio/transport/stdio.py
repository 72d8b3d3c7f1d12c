"""The stdio transport: newline-delimited JSON on stdin/stdout."""

from __future__ import annotations

import os
from collections.abc import Sequence

import trio

from .framing import DEFAULT_MAX_LINE, LineReader, frame_lines


class StreamTransport:
    """Newline-delimited messages over any pair of trio byte streams (stdio, pipes, memory streams)."""

    def __init__(
        self,
        receive: trio.abc.ReceiveStream,
        send: trio.abc.SendStream,
        *,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        self._reader = LineReader(receive, max_line=max_line)
        self._receive = receive
        self._send = send

    async def receive_message(self) -> bytes | None:
        return await self._reader.receive_line()

    async def send_messages(self, messages: Sequence[bytes]) -> None:
        await self._send.send_all(frame_lines(messages))

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def open_stdio_transport(*, max_line: int = DEFAULT_MAX_LINE) -> StreamTransport:
    # Duplicates, so that closing the transport never closes the process's own fds 0 and 1.
    stdin = trio.lowlevel.FdStream(os.dup(0))
    stdout = trio.lowlevel.FdStream(os.dup(1))
    return StreamTransport(stdin, stdout, max_line=max_line)
