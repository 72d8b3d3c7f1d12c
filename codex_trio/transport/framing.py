"""Newline-delimited message framing over a byte stream."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio

log = logging.getLogger(__name__)

# The protocol promises lines of at least 16 MiB; larger is allowed, unbounded is not.
DEFAULT_MAX_LINE = 64 * 1024 * 1024
_CHUNK = 256 * 1024


class LineReader:
    """Splits a byte stream into lines without copying the buffer once per line."""

    def __init__(self, stream: trio.abc.ReceiveStream, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._stream = stream
        self._max_line = max_line
        self._buf = bytearray()
        self._start = 0  # first unconsumed byte of _buf
        self._scan = 0  # bytes before this offset are known to hold no newline
        self._discarding = False
        self._eof = False

    async def receive_line(self) -> bytes | None:
        """The next non-empty line (without its newline), or None at end of stream."""
        while True:
            idx = self._buf.find(b"\n", self._scan)
            if idx >= 0:
                line = bytes(self._buf[self._start : idx])
                self._start = self._scan = idx + 1
                if self._discarding:
                    self._discarding = False
                    continue
                if line.strip():
                    return line
                continue
            if self._eof:
                line = bytes(self._buf[self._start :])
                self._buf.clear()
                self._start = self._scan = 0
                # A last line without its newline still counts, like the reference's line reader.
                if line.strip() and not self._discarding:
                    return line
                return None
            self._scan = len(self._buf)
            if self._scan - self._start > self._max_line:
                if not self._discarding:
                    log.warning("dropping an incoming line longer than %d bytes", self._max_line)
                self._discarding = True
                self._buf.clear()
                self._start = self._scan = 0
            elif self._start:
                # Compact only when more data is needed: one move per chunk, not per line.
                del self._buf[: self._start]
                self._scan -= self._start
                self._start = 0
            data = await self._stream.receive_some(_CHUNK)
            if not data:
                self._eof = True
            else:
                self._buf += data


def frame_lines(messages: Sequence[bytes]) -> bytes:
    # One copy of the bytes: join then append would copy the whole batch twice.
    return b"\n".join([*messages, b""])
