"""What the session layer needs from a transport: whole messages in, whole messages out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class MessageTransport(Protocol):
    """Moves already-encoded JSON-RPC messages; knows nothing of their content."""

    async def receive_message(self) -> bytes | None:
        """The next message, or None once the peer has closed its side."""
        ...

    async def send_messages(self, messages: Sequence[bytes]) -> None:
        """Write a batch of messages, in order. Raises trio.BrokenResourceError if the peer is gone."""
        ...

    async def aclose(self) -> None: ...
