"""v2 turn methods: turn/start and turn/interrupt."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import events as ev
from ..core.config import Config, sandbox_mode_of_policy
from ..protocol.v2 import TurnInterruptParams, TurnStartParams
from ..router import Method, RequestContext
from ..rpc.errors import RpcError
from ..rpc.session import Reply
from ..thread_manager import LoadedThread, ThreadManager
from .threads import check_thread_id

if TYPE_CHECKING:
    from ..app import AppServer



def _requirements_violation(config: Config, params: TurnStartParams) -> str | None:
    """Why the administrator's requirements (those the thread started under) forbid this turn's
    approval policy or sandbox policy; None when they allow them."""
    if config.requirements is None:
        return None
    policy = params["sandboxPolicy"]
    return config.requirements.violation(
        approval_policy=params["approvalPolicy"],
        sandbox_mode=sandbox_mode_of_policy(policy) if policy is not None else None,
    )


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
        overrides = self._overrides(thread.settings.cwd, params)
        inputs = [dict(item) for item in params["input"]]
        rejected: tuple[str, str] | None = None
        if overrides is not None:
            violation = _requirements_violation(loaded.config, params)
            if violation is None:
                thread.override_settings(overrides)
            else:
                # As in the reference: the override, a separate operation, fails as a whole (its id
                # used up, reported as an error event) and the turn runs on the settings it had.
                rejected = (thread.next_id(), violation)
        # Like the reference, input for a busy thread joins the running turn; the id it answers is new.
        turn_id = thread.steer(inputs) if thread.active_turn is not None else thread.begin_turn().id
        response = {"turn": in_progress_turn(turn_id)}

        async def begin() -> None:
            await self.manager.broadcast(
                loaded, [("turn/started", {"threadId": loaded.id, "turn": in_progress_turn(turn_id)})]
            )
            if rejected is not None:
                await thread.emit(rejected[0], ev.error(rejected[1], "bad_request"))
            active = thread.active_turn
            if active is not None and active.id == turn_id:
                self.manager.start_turn_task(
                    ctx.conn, thread.run_turn, active, inputs, params["outputSchema"]
                )

        return Reply(response, after=begin)

    @staticmethod
    def _overrides(cwd: Path, params: TurnStartParams) -> dict[str, Any] | None:
        """The settings a turn/start changes, or None when it names none (an output schema alone is no
        override: it applies to that turn only)."""
        named = (
            params["cwd"],
            params["approvalPolicy"],
            params["sandboxPolicy"],
            params["model"],
            params["effort"],
            params["summary"],
            params["personality"],
            params["collaborationMode"],
        )
        if all(value is None for value in named):
            return None
        overrides: dict[str, Any] = {}
        if params["cwd"] is not None:
            # A relative cwd is taken relative to the thread's (the reference would pass it on as is).
            overrides["cwd"] = cwd / params["cwd"]
        if params["approvalPolicy"] is not None:
            overrides["approval_policy"] = params["approvalPolicy"]
        if params["sandboxPolicy"] is not None:
            overrides["sandbox_policy"] = dict(params["sandboxPolicy"])
        if params["model"] is not None:
            overrides["model"] = params["model"]
        if params["effort"] is not None:
            overrides["effort"] = params["effort"]
        if params["summary"] is not None:
            overrides["summary"] = params["summary"]
        if params["personality"] is not None:
            overrides["personality"] = params["personality"]
        mode = params["collaborationMode"]
        if mode is not None:
            overrides["collaboration_mode"] = {"mode": mode["mode"], "settings": dict(mode["settings"])}
            overrides["model"] = mode["settings"]["model"]
            if mode["settings"]["reasoning_effort"] is not None:
                overrides["effort"] = mode["settings"]["reasoning_effort"]
        return overrides

    async def interrupt(self, ctx: RequestContext, params: TurnInterruptParams) -> Reply:
        loaded = self._loaded(params["threadId"])
        # The reference interrupts whatever runs on the thread, whichever turn id was named.
        return await self.manager.interrupt(loaded, {})
