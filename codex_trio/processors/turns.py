"""v2 turn methods: turn/start and turn/interrupt."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ..protocol.v2 import TurnInterruptParams, TurnStartParams
from ..router import Method, RequestContext
from ..rpc.errors import RpcError
from ..rpc.session import Reply
from ..thread_manager import LoadedThread, ThreadManager
from .threads import check_thread_id

if TYPE_CHECKING:
    from ..app import AppServer

# How long turn/interrupt waits for the turn to wind down before it answers anyway.
INTERRUPT_WAIT_SECONDS = 5.0


def in_progress_turn(turn_id: str) -> dict[str, Any]:
    return {"id": turn_id, "items": [], "status": "inProgress", "error": None}


class TurnsProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app

    @property
    def manager(self) -> ThreadManager:
        return self.app.threads

    def methods(self) -> list[Method]:
        return [
            # Inline: a turn/interrupt pipelined right behind must find the turn registered.
            Method("turn/start", TurnStartParams, self.start, inline=True),
            Method("turn/interrupt", TurnInterruptParams, self.interrupt),
        ]

    def _loaded(self, thread_id: str) -> LoadedThread:
        loaded = self.manager.get(check_thread_id(thread_id))
        if loaded is None:
            raise RpcError(f"thread not found: {thread_id}")
        return loaded

    def start(self, ctx: RequestContext, params: TurnStartParams) -> Reply:
        loaded = self._loaded(params["threadId"])
        thread = loaded.thread
        self.manager.subscribe(loaded, ctx.conn)
        overrides: dict[str, Any] = {}
        if params["cwd"]:
            cwd = Path(params["cwd"])
            if not cwd.is_absolute():
                cwd = thread.settings.cwd / cwd
            overrides["cwd"] = cwd
        if params["approvalPolicy"]:
            overrides["approval_policy"] = params["approvalPolicy"]
        if params["sandboxPolicy"]:
            overrides["sandbox_policy"] = dict(params["sandboxPolicy"])
        if params["model"]:
            overrides["model"] = params["model"]
        if params["effort"]:
            overrides["effort"] = params["effort"]
        if params["summary"]:
            overrides["summary"] = params["summary"]
        if params["personality"]:
            overrides["personality"] = params["personality"]
        if params["collaborationMode"]:
            settings = params["collaborationMode"]["settings"]
            overrides["model"] = settings["model"]
            if settings["reasoning_effort"]:
                overrides["effort"] = settings["reasoning_effort"]
        inputs = [dict(item) for item in params["input"]]

        if thread.active_turn is not None:
            # Like the reference: the input joins the running turn; the id it answers with is new.
            turn_id = thread.next_id()
            thread.steer(inputs)
        else:
            turn = thread.begin_turn(overrides)
            turn_id = turn.id
        response = {"turn": in_progress_turn(turn_id)}

        async def begin() -> None:
            await self.manager.broadcast(
                loaded, [("turn/started", {"threadId": loaded.id, "turn": in_progress_turn(turn_id)})]
            )
            active = thread.active_turn
            if active is not None and active.id == turn_id:
                self.manager.start_turn_task(
                    ctx.conn, thread.run_turn, active, inputs, params["outputSchema"]
                )

        return Reply(response, after=begin)

    async def interrupt(self, ctx: RequestContext, params: TurnInterruptParams) -> Reply:
        loaded = self._loaded(params["threadId"])
        # The reference interrupts whatever runs on the thread, whichever turn id was named.
        ack = trio.Event()
        emitted = trio.Event()
        if loaded.thread.active_turn is not None:
            loaded.interrupt_ack, loaded.abort_emitted = ack, emitted
        turn = loaded.thread.interrupt()
        if turn is not None:
            with trio.move_on_after(INTERRUPT_WAIT_SECONDS):
                await emitted.wait()

        async def release() -> None:
            ack.set()

        return Reply({}, after=release)
