"""The websocket transport: one JSON-RPC message per text frame, over a trio-websocket connection.

The handshake (and the HTTP in front of it) belongs to ``codex_trio.ws_server``; this module only moves
messages once the connection is open.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

log = logging.getLogger(__name__)

# RFC 6455 close codes this server sends or reports specially.
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
_ORDINARY_CLOSES = frozenset({NORMAL_CLOSURE, GOING_AWAY})


class CoalescingStream(trio.abc.Stream):
    """A stream whose writes can be held back and then sent with one ``send_all``.

    trio-websocket writes every frame with a ``send_all`` of its own: one system call per message.
    Put under it, this lets a batch of messages leave in one write, as they do on stdio.
    """

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._held: bytearray | None = None
        # Keeps held bytes ahead of whatever another task (trio-websocket's pong or close reply)
        # writes after the hold ends.
        self._lock = trio.StrictFIFOLock()
        # Set when a write to the stream failed or was cancelled: part of a frame may have gone
        # out, and nothing written after it would parse.
        self.interrupted = False

    def hold(self) -> None:
        if self._held is None:
            self._held = bytearray()

    def drop(self) -> None:
        self._held = None

    async def release(self) -> None:
        """Send what was held back (in one write) and stop holding."""
        held, self._held = self._held, None
        if held:
            await self._write(held)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            self._held += data
            return
        await self._write(data)

    async def _write(self, data: bytes | bytearray | memoryview) -> None:
        async with self._lock:
            try:
                await self._stream.send_all(data)
            except BaseException:
                self.interrupted = True
                raise

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        self._held = None
        await self._stream.aclose()


class WebSocketTransport:
    """A ``MessageTransport`` over an accepted websocket.

    ``stream``, when given, is the ``CoalescingStream`` under ``ws``: batches then go out in one write.
    """

    def __init__(
        self, ws: WebSocketConnection, *, name: str = "ws", stream: CoalescingStream | None = None
    ) -> None:
        self._ws = ws
        self._stream = stream
        self.name = name
        # Set once the peer's side is over (close frame, or the TCP connection gone), as opposed to
        # the server deciding to end the connection.
        self.peer_closed = False

    @property
    def cut_short(self) -> bool:
        """A write was interrupted (the session gave up on a client that stopped reading): part of a
        frame may have gone out, so the connection can only be dropped."""
        return self._stream is not None and self._stream.interrupted

    @property
    def close_code(self) -> int | None:
        """The close code of the connection once it is closed (1006: no close frame was exchanged)."""
        reason = self._ws.closed
        return None if reason is None else reason.code

    async def receive_message(self) -> bytes | None:
        while True:
            try:
                message = await self._ws.get_message()
            except ConnectionClosed as exc:
                self.peer_closed = True
                reason = exc.reason
                if reason is None or reason.code in _ORDINARY_CLOSES:
                    log.debug("%s: websocket closed (%s)", self.name, reason)
                else:
                    # 1002 protocol error, 1007 invalid UTF-8, 1009 frame too big, 1006 dropped...
                    # int(): IntEnum prints as its name on 3.10 and as its value from 3.11 on.
                    log.info("%s: websocket closed: %d %s", self.name, int(reason.code), reason.name)
                return None
            if isinstance(message, str):
                # The session parses bytes, as it does for stdio lines; the copy is cheap next to
                # the JSON parse that follows.
                return message.encode("utf-8")
            # Only text frames carry messages; like a malformed line, a binary frame is reported (by
            # size only: it may hold anything) and skipped.
            log.warning("%s: ignoring a binary websocket frame of %d bytes", self.name, len(message))

    async def send_messages(self, messages: Sequence[bytes]) -> None:
        batch = self._stream if len(messages) > 1 else None
        if batch is not None:
            batch.hold()
        try:
            for message in messages:
                await self._ws.send_message(message.decode("utf-8"))
        except BaseException as exc:
            if batch is not None:
                # Failed or cancelled mid-batch: the connection is over, nothing more goes out.
                batch.drop()
            if isinstance(exc, ConnectionClosed):
                raise trio.BrokenResourceError("websocket closed") from None
            raise
        if batch is not None:
            await batch.release()

    async def aclose(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close with ``code`` (the closing handshake waits for the peer; bound it with a timeout).

        After an interrupted write there is no handshake: a close frame behind a truncated frame
        would reach the client as garbage, so the connection is dropped instead (the client sees
        1006).
        """
        if self.cut_short:
            if self._stream is not None:
                await trio.aclose_forcefully(self._stream)
            return
        await self._ws.aclose(code, reason)
