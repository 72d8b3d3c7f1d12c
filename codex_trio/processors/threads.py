"""v2 thread methods: start, resume, fork, read, list, loaded/list, archive, unarchive, name/set,
rollback."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ..core import events as ev
from ..core.ids import parse_uuid, uuid_error
from ..protocol.v2 import (
    ThreadForkParams,
    ThreadIdParams,
    ThreadListParams,
    ThreadLoadedListParams,
    ThreadReadParams,
    ThreadResumeParams,
    ThreadRollbackParams,
    ThreadSetNameParams,
    ThreadStartParams,
)
from ..router import Method, RequestContext
from ..rpc.errors import RpcError
from ..rpc.session import Reply
from ..thread_manager import INTERRUPT_WAIT_SECONDS, LoadedThread, ThreadManager, sandbox_policy_v2

if TYPE_CHECKING:
    from ..app import AppServer


def check_thread_id(thread_id: str) -> str:
    """Thread ids are UUIDs; the reference rejects anything else with uuid's own wording."""
    parsed = parse_uuid(thread_id)
    if parsed is None:
        raise RpcError(f"invalid thread id: {uuid_error(thread_id)}")
    return parsed


class ThreadsProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app

    @property
    def manager(self) -> ThreadManager:
        return self.app.threads

    def methods(self) -> list[Method]:
        return [
            Method("thread/start", ThreadStartParams, self.start, sequence="threads"),
            Method("thread/resume", ThreadResumeParams, self.resume, sequence="threads"),
            Method("thread/fork", ThreadForkParams, self.fork, sequence="threads"),
            Method("thread/read", ThreadReadParams, self.read, sequence="threads"),
            Method("thread/list", ThreadListParams, self.list, sequence="threads"),
            Method("thread/loaded/list", ThreadLoadedListParams, self.loaded_list, inline=True),
            Method("thread/archive", ThreadIdParams, self.archive, sequence="threads"),
            Method("thread/unarchive", ThreadIdParams, self.unarchive, sequence="threads"),
            Method("thread/name/set", ThreadSetNameParams, self.set_name, sequence="threads"),
            Method("thread/rollback", ThreadRollbackParams, self.rollback, sequence="threads"),
        ]

    def _response(self, loaded: LoadedThread, turns: Sequence[Any] = ()) -> dict[str, Any]:
        config = loaded.config
        return {
            "thread": loaded.to_thread(turns),
            "model": loaded.thread.settings.model,
            "modelProvider": config.model_provider_id,
            "cwd": str(loaded.thread.settings.cwd),
            "approvalPolicy": loaded.thread.settings.approval_policy,
            "sandbox": loaded.thread.settings.sandbox_policy or sandbox_policy_v2(config),
            "reasoningEffort": loaded.thread.settings.effort,
        }

    async def start(self, ctx: RequestContext, params: ThreadStartParams) -> Reply:
        config = self.manager.derive_config(params)
        loaded = await self.manager.start_thread(
            config,
            ctx.session,
            ephemeral=bool(params["ephemeral"]),
            dynamic_tools=[dict(spec) for spec in params["dynamicTools"] or ()],
        )
        self.manager.subscribe(loaded, ctx.conn)
        response = self._response(loaded)

        async def announce() -> None:
            await self.manager.broadcast(loaded, [("thread/started", {"thread": loaded.to_thread()})])
            await self.manager.announce_startup(loaded)

        return Reply(response, after=announce)

    async def _stored_path(self, thread_id: str, path: str | None) -> Path:
        if path:
            candidate = Path(path)
            if (
                not candidate.is_absolute()
                or candidate.suffix != ".jsonl"
                or not await trio.Path(candidate).is_file()
            ):
                raise RpcError(f"no rollout found for thread id {thread_id}")
            return candidate
        found = await self.manager.store.find_rollout(thread_id)
        if found is None:
            raise RpcError(f"no rollout found for thread id {thread_id}")
        return found

    async def resume(self, ctx: RequestContext, params: ThreadResumeParams) -> dict[str, Any]:
        thread_id = check_thread_id(params["threadId"])
        loaded = self.manager.get(thread_id)
        if loaded is not None:
            self.manager.subscribe(loaded, ctx.conn)
            turns = await self._turns_of(loaded)
            return self._response(loaded, turns)
        path = await self._stored_path(thread_id, params["path"])
        summary = await self.manager.store.read_summary(
            path, default_provider=self.manager.default_provider()
        )
        config = self.manager.derive_config({**params, "cwd": params["cwd"] or summary.cwd})
        loaded, turns = await self.manager.resume_thread(path, summary, config, ctx.session)
        self.manager.subscribe(loaded, ctx.conn)
        # The reference's resumed thread warns before the answer.
        await self.manager.announce_startup(loaded)
        return self._response(loaded, turns)

    async def fork(self, ctx: RequestContext, params: ThreadForkParams) -> Reply:
        thread_id = check_thread_id(params["threadId"])
        loaded = self.manager.get(thread_id)
        path = loaded.path if loaded is not None and loaded.path else None
        if path is None:
            path = await self._stored_path(thread_id, params["path"])
        summary = await self.manager.store.read_summary(
            path, default_provider=self.manager.default_provider()
        )
        config = self.manager.derive_config({**params, "cwd": params["cwd"] or summary.cwd})
        forked, turns = await self.manager.fork_thread(path, summary, config, ctx.session)
        self.manager.subscribe(forked, ctx.conn)
        # Like a resumed thread, the fork warns before the answer (and thread/started).
        await self.manager.announce_startup(forked)
        response = self._response(forked, turns)

        async def announce() -> None:
            await self.manager.broadcast(forked, [("thread/started", {"thread": forked.to_thread(turns)})])

        return Reply(response, after=announce)

    async def _turns_of(self, loaded: LoadedThread) -> list[Any]:
        if loaded.path is None:
            return []
        thread = await self.manager.store.read_thread(
            loaded.path, default_provider=self.manager.default_provider(), include_turns=True
        )
        return list(thread["turns"])

    async def read(self, ctx: RequestContext, params: ThreadReadParams) -> dict[str, Any]:
        thread_id = check_thread_id(params["threadId"])
        include_turns = bool(params["includeTurns"])
        loaded = self.manager.get(thread_id)
        if loaded is not None:
            turns = await self._turns_of(loaded) if include_turns else []
            return {"thread": loaded.to_thread(turns)}
        path = await self.manager.store.find_rollout(thread_id)
        if path is None:
            raise RpcError(f"thread not loaded: {thread_id}")
        thread = await self.manager.store.read_thread(
            path, default_provider=self.manager.default_provider(), include_turns=include_turns
        )
        return {"thread": thread}

    async def list(self, ctx: RequestContext, params: ThreadListParams) -> dict[str, Any]:
        page = await self.manager.store.list_threads(
            default_provider=self.manager.default_provider(),
            cursor=params["cursor"],
            limit=params["limit"],
            sort_key=params["sortKey"] or "created_at",
            model_providers=params["modelProviders"],
            source_kinds=params["sourceKinds"],
            archived=bool(params["archived"]),
        )
        return {"data": [t.to_thread() for t in page.threads], "nextCursor": page.next_cursor}

    def loaded_list(self, ctx: RequestContext, params: ThreadLoadedListParams) -> dict[str, Any]:
        ids = list(self.manager.threads)
        start = 0
        if params["cursor"] is not None:
            if params["cursor"] not in ids:
                raise RpcError(f"invalid cursor: {params['cursor']}")
            start = ids.index(params["cursor"]) + 1
        limit = params["limit"]
        page = ids[start:] if limit is None else ids[start : start + max(limit, 1)]
        more = limit is not None and start + len(page) < len(ids)
        return {"data": page, "nextCursor": page[-1] if more and page else None}

    async def archive(self, ctx: RequestContext, params: ThreadIdParams) -> dict[str, Any]:
        thread_id = check_thread_id(params["threadId"])
        loaded = self.manager.get(thread_id)
        turn = loaded.thread.interrupt() if loaded is not None else None
        if turn is not None:
            with trio.move_on_after(INTERRUPT_WAIT_SECONDS):
                await turn.done.wait()
        await self.manager.store.archive(thread_id)
        self.manager.unload(thread_id)
        return {}

    async def unarchive(self, ctx: RequestContext, params: ThreadIdParams) -> dict[str, Any]:
        thread_id = check_thread_id(params["threadId"])
        summary = await self.manager.store.unarchive(
            thread_id, default_provider=self.manager.default_provider()
        )
        return {"thread": summary.to_thread()}

    async def set_name(self, ctx: RequestContext, params: ThreadSetNameParams) -> Reply:
        thread_id = check_thread_id(params["threadId"])
        name = params["name"].strip()
        if not name:
            raise RpcError("thread name must not be empty")
        loaded = self.manager.get(thread_id)
        if loaded is None and await self.manager.store.find_rollout(thread_id) is None:
            raise RpcError(f"thread not found: {thread_id}")
        await self.manager.store.set_name(thread_id, name)

        async def announce() -> None:
            if loaded is not None:
                await loaded.thread.emit(loaded.thread.next_id(), ev.thread_name_updated(thread_id, name))
            else:
                await ctx.conn.notify("thread/name/updated", {"threadId": thread_id, "threadName": name})

        return Reply({}, after=announce)

    async def rollback(self, ctx: RequestContext, params: ThreadRollbackParams) -> dict[str, Any]:
        num_turns = params["numTurns"]
        if num_turns == 0:
            raise RpcError("numTurns must be >= 1")
        thread_id = check_thread_id(params["threadId"])
        loaded = self.manager.get(thread_id)
        if loaded is None:
            raise RpcError(f"thread not found: {thread_id}")
        # Not imported at start-up (core.thread is heavy); a loaded thread means it is imported already.
        from ..core.thread import RollbackError

        try:
            await loaded.thread.rollback(num_turns)
        except RollbackError as exc:
            raise RpcError(exc.message) from None
        # Like the reference, the answer is the thread as its rollout now reads; an ephemeral thread has
        # been rolled back all the same, but there is nothing to read it from.
        if loaded.path is None:
            raise RpcError("thread has no persisted rollout")
        return {"thread": loaded.to_thread(await self._turns_of(loaded))}
