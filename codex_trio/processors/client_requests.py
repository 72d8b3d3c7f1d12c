"""Server→client requests a running turn makes: approvals, questions for the user, dynamic tool calls.

Each goes to the connection that owns the turn (the one that started it), through that connection's
pending-request table, and the answer is turned back into what the core understands. A client that
answers with an error, sends garbage or goes away fails that one request, never the server.

A thread whose first listener was a v1 addConversationListener is asked in v1 terms, as the reference
does: ``execCommandApproval`` / ``applyPatchApproval``, answered with the core's own decisions
(approved, approved_for_session, denied, abort), and no early item/completed for a refusal. Such a
request goes out only while the conversation has a listener.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

import trio

from ..core import events as ev
from ..core.safety import approval_outcome
from ..core.tools import Decision
from ..protocol.v1 import ApplyPatchApprovalParams, ExecCommandApprovalParams
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
        await self._manager.wait_listening(loaded)
        if loaded.listener_api == "v1":
            return await self._approve_v1(loaded, request)
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

    async def _approve_v1(self, loaded: LoadedThread, request: ev.EventMsg) -> Decision:
        method, params = v1_approval_request(loaded.id, request)
        conn = self._owner.get()
        if conn is None:
            log.warning("%s: no client owns this turn; treating it as denied", method)
            return "denied"
        try:
            answer = await conn.send_request(method, dict(params), timeout=math.inf)
        except ClientRequestError as exc:
            if method == "applyPatchApproval":
                log.warning("%s failed: %s; treating it as denied", method, exc)
                return "denied"
            # Like the reference, a failed execCommandApproval leaves the approval pending: the turn
            # waits until it is interrupted.
            log.warning("%s failed: %s; the approval stays pending", method, exc)
            await trio.sleep_forever()
        return v1_decision(answer)

    async def request_user_input(self, turn_id: str, request: ev.EventMsg) -> Mapping[str, Any] | None:
        loaded = self._loaded()
        await self._manager.wait_listening(loaded)
        if loaded.listener_api == "v1":
            # The reference asks v1 clients nothing and answers the tool with no answers.
            log.warning("request_user_input is only supported on api v2 (call_id: %s)", request["call_id"])
            return {"answers": {}}
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


def v1_approval_request(
    thread_id: str, msg: Mapping[str, Any]
) -> tuple[str, ExecCommandApprovalParams | ApplyPatchApprovalParams]:
    """(method, params) of the v1 server request an approval event asks for."""
    if msg["type"] == "exec_approval_request":
        exec_params: ExecCommandApprovalParams = {
            "conversationId": thread_id,
            "callId": msg["call_id"],
            "command": list(msg["command"]),
            "cwd": str(msg["cwd"]),
            "reason": msg.get("reason"),
            "parsedCmd": list(msg["parsed_cmd"]),
        }
        return "execCommandApproval", exec_params
    if msg["type"] == "apply_patch_approval_request":
        patch_params: ApplyPatchApprovalParams = {
            "conversationId": thread_id,
            "callId": msg["call_id"],
            "fileChanges": dict(msg["changes"]),
            "reason": msg.get("reason"),
            "grantRoot": msg.get("grant_root"),
        }
        return "applyPatchApproval", patch_params
    raise ValueError(f"{msg['type']!r} is no approval request")


_V1_DECISIONS = frozenset({"approved", "approved_for_session", "denied", "abort"})


def v1_decision(answer: Any) -> Decision:
    """The decision of an ExecCommandApprovalResponse / ApplyPatchApprovalResponse; like the reference,
    an answer that does not parse is a denial."""
    decision = answer.get("decision") if isinstance(answer, Mapping) else None
    if isinstance(decision, Mapping) and len(decision) == 1:
        # serde also reads a unit variant written as a map to null.
        (name, value), = decision.items()
        if value is None:
            decision = name
    if isinstance(decision, str) and decision in _V1_DECISIONS:
        return cast(Decision, decision)
    if isinstance(decision, Mapping) and set(decision) == {"approved_execpolicy_amendment"}:
        body = decision["approved_execpolicy_amendment"]
        amendment = body.get("proposed_execpolicy_amendment") if isinstance(body, Mapping) else None
        if isinstance(amendment, list) and all(isinstance(word, str) for word in amendment):
            return {"approved_execpolicy_amendment": {"proposed_execpolicy_amendment": list(amendment)}}
    log.warning("unreadable v1 approval answer; treating it as denied")
    return "denied"
