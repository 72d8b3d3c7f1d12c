"""Server→client requests a running turn makes: approvals, questions for the user, dynamic tool calls.

Each goes to the connection that owns the turn (the one that started it), through that connection's
pending-request table, and the answer is turned back into what the core understands. A client that
answers with an error, sends garbage or goes away fails that one request, never the server.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..core import events as ev
from ..core.safety import approval_outcome
from ..core.tools import Decision
from ..rpc.errors import ClientRequestError
from ..rpc.session import Connection
from .projection import approval_completion, approval_request

if TYPE_CHECKING:
    from ..thread_manager import LoadedThread, ThreadManager

log = logging.getLogger(__name__)


class OwnerChannel:
    """A thread's way to its turn owner's client (see ``ClientChannel`` in core.tools)."""

    def __init__(
        self,
        manager: ThreadManager,
        loaded: Callable[[], LoadedThread],
        owner: ContextVar[Connection | None],
    ) -> None:
        self._manager = manager
        self._loaded = loaded
        self._owner = owner

    async def _ask(self, method: str, params: Mapping[str, Any]) -> Any:
        """The client's answer, or None when the request failed (logged, never raised: the tool call
        fails, the turn goes on)."""
        conn = self._owner.get()
        if conn is None:
            log.warning("%s: no client owns this turn; treating it as refused", method)
            return None
        try:
            # No timeout: a user may take their time; an interrupt or the client leaving ends the wait.
            return await conn.send_request(method, dict(params), timeout=math.inf)
        except ClientRequestError as exc:
            log.warning("%s failed: %s", method, exc)
            return None

    async def approve(self, turn_id: str, request: ev.EventMsg) -> Decision:
        loaded = self._loaded()
        built = approval_request(loaded.id, request)
        assert built is not None, request["type"]
        method, params = built
        kind = "exec" if request["type"] == "exec_approval_request" else "patch"
        answer = await self._ask(method, params)
        outcome = approval_outcome(answer, kind, client_error=answer is None)
        if outcome.item_status is not None:
            # Like the reference: the item completes at once as declined (or failed, when the request
            # itself failed); the core's end event follows.
            notes = approval_completion(loaded.projection, turn_id, request, outcome.item_status)
            await self._manager.broadcast(loaded, notes)
        return outcome.decision

    async def request_user_input(self, turn_id: str, request: ev.EventMsg) -> Mapping[str, Any] | None:
        loaded = self._loaded()
        params = {
            "threadId": loaded.id,
            "turnId": turn_id,
            "itemId": request["call_id"],
            "questions": request["questions"],
        }
        answer = await self._ask("item/tool/requestUserInput", params)
        if not isinstance(answer, Mapping) or not isinstance(answer.get("answers"), Mapping):
            return None
        return answer

    async def call_dynamic_tool(self, turn_id: str, request: ev.EventMsg) -> Mapping[str, Any] | None:
        loaded = self._loaded()
        params = {
            "threadId": loaded.id,
            "turnId": turn_id,
            "callId": request["callId"],
            "tool": request["tool"],
            "arguments": request["arguments"],
        }
        answer = await self._ask("item/tool/call", params)
        if answer is None:
            return None
        # An answer of the wrong shape is the tool's invalid response, not a failed request.
        return answer if isinstance(answer, Mapping) else {}
