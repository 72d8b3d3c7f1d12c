"""Server-sent events framing (the WHATWG EventSource rules), fed with raw bytes as they arrive.

Only the framing lives here; what a Responses API event means is the model client's business.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None


class SseDecoder:
    """Turns a byte stream into events. Chunk boundaries may fall anywhere, even inside a UTF-8 sequence
    or between the CR and LF of a line ending."""

    def __init__(self) -> None:
        # Invalid UTF-8 is replaced rather than fatal: the JSON parse of that event fails and it is skipped.
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._first_chunk = True
        self._event_type = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        text = self._utf8.decode(chunk)
        if self._first_chunk and text:
            self._first_chunk = False
            if text.startswith("\ufeff"):
                text = text[1:]
        # Whatever was buffered before holds no line ending except possibly a final CR, so the search for
        # the next one starts near the new text instead of rescanning a long partial line each time.
        search = max(len(self._buffer) - 1, 0)
        buffer = self._buffer + text
        pos = 0
        events: list[SseEvent] = []
        while True:
            end, skip = _find_line_end(buffer, search)
            if end < 0:
                break
            event = self._process_line(buffer[pos:end])
            pos = search = end + skip
            if event is not None:
                events.append(event)
        self._buffer = buffer[pos:]
        return events

    def _process_line(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event_type = value
        elif field == "id" and "\0" not in value:
            self._last_id = value
        # "retry" and unknown fields mean nothing to a client that does not reconnect by itself.
        return None

    def _dispatch(self) -> SseEvent | None:
        event_type, data = self._event_type, self._data
        self._event_type, self._data = "", []
        # Per the spec a block without data lines dispatches nothing (it also does not count as activity).
        if not data:
            return None
        return SseEvent(event=event_type or "message", data="\n".join(data), id=self._last_id)


def _find_line_end(buffer: str, start: int) -> tuple[int, int]:
    """Index and length of the first line ending at or after ``start``; (-1, 0) when there is none yet.

    A lone CR at the very end does not count yet: the LF of a CRLF may come with the next chunk.
    """
    lf = buffer.find("\n", start)
    cr = buffer.find("\r", start, lf if lf >= 0 else len(buffer))
    if cr < 0:
        return (lf, 1) if lf >= 0 else (-1, 0)
    if cr + 1 == len(buffer):
        return -1, 0
    return cr, 2 if buffer[cr + 1] == "\n" else 1
