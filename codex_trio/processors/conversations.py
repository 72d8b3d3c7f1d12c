"""The legacy v1 conversation API: newConversation, add/removeConversationListener, sendUserMessage,
sendUserTurn, interruptConversation, getConversationSummary, listConversations, resumeConversation,
forkConversation, archiveConversation.

A conversation is a thread of the ThreadManager like any other; these methods adapt the v1 shapes to
it. What differs from v2, as in the reference:

- no ``thread/started`` and no ``turn/started``: a conversation's events (legacy ``codex/event/*`` and
  their v2 projection) reach a client only through addConversationListener, which first delivers
  what the conversation emitted before it (starting with ``mcp_startup_complete``);
- approvals of a conversation whose first listener was v1 are asked with ``execCommandApproval`` /
  ``applyPatchApproval`` (see processors/client_requests.py);
- ids are decoded as UUIDs: a malformed one is an ``Invalid request`` with the uuid parser's text.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import trio

from ..core.ids import parse_uuid, uuid_error
from ..protocol.v1 import (
    AddConversationListenerParams,
    AddConversationSubscriptionResponse,
    ArchiveConversationParams,
    ConversationGitInfo,
    ConversationIdParams,
    ConversationSummary,
    ForkConversationParams,
    GetConversationSummaryParams,
    ListConversationsParams,
    ListConversationsResponse,
    NewConversationParams,
    NewConversationResponse,
    RemoveConversationListenerParams,
    ResumeConversationParams,
    ResumedConversationResponse,
    SendUserMessageParams,
    SendUserTurnParams,
    SessionConfiguredNotification,
    v2_sandbox_policy,
)
from ..protocol.v2 import ReasoningEffort
from ..router import Method, RequestContext
from ..rpc.errors import INTERNAL_ERROR, RpcError, invalid_params
from ..rpc.session import Reply
from ..thread_manager import INTERRUPT_WAIT_SECONDS, LoadedThread, ThreadManager

if TYPE_CHECKING:
    from ..app import AppServer
    from ..core.config import Config
    from ..core.thread_store import ThreadSummary


def conversation_id(text: str) -> str:
    """A conversation id in canonical form; serde's ThreadId error otherwise."""
    parsed = parse_uuid(text)
    if parsed is None:
        raise invalid_params(uuid_error(text))
    return parsed


def v2_input(item: dict[str, Any]) -> dict[str, Any]:
    """A v1 InputItem as the v2 UserInput the core takes."""
    data = item["data"]
    if item["type"] == "text":
        elements = [dict(element) for element in data["text_elements"] or ()]
        return {"type": "text", "text": data["text"], "text_elements": elements}
    if item["type"] == "image":
        return {"type": "image", "url": data["image_url"]}
    return {"type": "localImage", "path": data["path"]}


def _include_apply_patch_tool(overrides: NewConversationParams | None) -> bool | None:
    return overrides.get("includeApplyPatchTool") if overrides is not None else None


def _effort(effort: str | None) -> ReasoningEffort | None:
    # Thread settings hold the effort as configured, one of the protocol's values.
    return cast("ReasoningEffort | None", effort)


def _rfc3339_seconds(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta_timestamp(path: Path) -> str | None:
    """The session_meta's own timestamp (the first line of a rollout). Blocking."""
    from ..core.rollout import parse_rollout_line

    try:
        with open(path, "rb") as handle:
            line = parse_rollout_line(handle.readline())
    except OSError:
        return None
    if line is None or line["type"] != "session_meta":
        return None
    stamp = line["payload"].get("timestamp")
    return stamp if isinstance(stamp, str) and stamp else None


def conversation_summary(summary: ThreadSummary, timestamp: str | None) -> ConversationSummary:
    git: ConversationGitInfo | None = None
    if summary.git is not None:
        git = {
            "sha": summary.git.get("commit_hash"),
            "branch": summary.git.get("branch"),
            "origin_url": summary.git.get("repository_url"),
        }
    return {
        "conversationId": summary.id,
        "path": summary.path,
        "preview": summary.preview,
        "timestamp": timestamp,
        "updatedAt": _rfc3339_seconds(summary.updated_at),
        "modelProvider": summary.model_provider,
        "cwd": summary.cwd,
        "cliVersion": summary.cli_version,
        "source": summary.source,
        "gitInfo": git,
    }


def _io_error_text(exc: OSError) -> str:
    # Rust's io::Error prints like this, and the reference's messages embed it.
    if exc.errno is not None:
        return f"{os.strerror(exc.errno)} (os error {exc.errno})"
    return str(exc)


class ConversationsProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app

    @property
    def manager(self) -> ThreadManager:
        return self.app.threads

    def methods(self) -> list[Method]:
        return [
            Method("newConversation", NewConversationParams, self.new, sequence="threads"),
            Method("getConversationSummary", GetConversationSummaryParams, self.summary, sequence="threads"),
            Method("listConversations", ListConversationsParams, self.list_conversations, sequence="threads"),
            Method("resumeConversation", ResumeConversationParams, self.resume, sequence="threads"),
            Method("forkConversation", ForkConversationParams, self.fork, sequence="threads"),
            Method("archiveConversation", ArchiveConversationParams, self.archive, sequence="threads"),
            # In the lifecycle sequence: a listener added right behind newConversation finds it.
            Method(
                "addConversationListener",
                AddConversationListenerParams,
                self.add_listener,
                sequence="threads",
            ),
            Method(
                "removeConversationListener",
                RemoveConversationListenerParams,
                self.remove_listener,
                sequence="threads",
            ),
            # Inline, like turn/start: an interrupt pipelined right behind must find the turn.
            Method("sendUserMessage", SendUserMessageParams, self.send_user_message, inline=True),
            Method("sendUserTurn", SendUserTurnParams, self.send_user_turn, inline=True),
            Method("interruptConversation", ConversationIdParams, self.interrupt),
        ]

    # ---- lifecycle -------------------------------------------------------------------------------

    def _config(self, params: NewConversationParams | None, cwd: str | None = None) -> Config:
        overrides: dict[str, Any] = dict(params) if params is not None else {}
        # The fields thread/start lacks are config keys, set like `-c key=...` (so a missing profile
        # fails with the config's own error text).
        keys = {
            "profile": overrides.get("profile"),
            "compact_prompt": overrides.get("compactPrompt"),
            "include_apply_patch_tool": overrides.get("includeApplyPatchTool"),
        }
        extra = {key: value for key, value in keys.items() if value is not None}
        if extra:
            overrides["config"] = {**(overrides.get("config") or {}), **extra}
        if overrides.get("cwd") is None and cwd is not None:
            overrides["cwd"] = cwd
        return self.manager.derive_config(overrides)

    async def new(self, ctx: RequestContext, params: NewConversationParams) -> NewConversationResponse:
        config = self._config(params)
        loaded = await self.manager.start_thread(
            config,
            ctx.session,
            ephemeral=False,
            await_listener=True,
            include_apply_patch_tool=params.get("includeApplyPatchTool"),
        )
        # Held for the first listener, like everything the conversation emits before one.
        await self.manager.announce_startup(loaded)
        assert loaded.path is not None
        return {
            "conversationId": loaded.id,
            "model": loaded.thread.settings.model,
            "reasoningEffort": _effort(loaded.thread.settings.effort),
            "rolloutPath": str(loaded.path),
        }

    async def _rollout_summary(self, path: Path) -> ThreadSummary:
        """The stored conversation at ``path`` (resume and fork), with the reference's errors."""
        from ..core.thread_store import RolloutReadError

        try:
            return await self.manager.store.read_summary(
                path, default_provider=self.manager.default_provider()
            )
        except OSError as exc:
            reason = _io_error_text(exc)
        except RolloutReadError:
            reason = "failed to parse thread ID from rollout file"
        raise RpcError(f"failed to load rollout `{path}`: {reason}")

    async def _rollout_by_id(self, thread_id: str) -> Path:
        loaded = self.manager.get(thread_id)
        if loaded is not None and loaded.path is not None:
            return loaded.path
        found = await self.manager.store.find_rollout(thread_id)
        if found is None:
            raise RpcError(f"no rollout found for conversation id {thread_id}")
        return found

    async def _stored_events(self, path: Path) -> list[dict[str, Any]]:
        from ..core.rollout import aread_rollout

        try:
            rollout = await aread_rollout(path)
        except OSError as exc:
            raise RpcError(f"failed to load rollout `{path}`: {_io_error_text(exc)}") from None
        return [dict(line["payload"]) for line in rollout.lines if line["type"] == "event_msg"]

    async def _configured(
        self, ctx: RequestContext, loaded: LoadedThread, events: list[dict[str, Any]]
    ) -> ResumedConversationResponse:
        """Announces the conversation to the requesting client, then its answer (in that order)."""
        assert loaded.path is not None
        settings = loaded.thread.settings
        note: SessionConfiguredNotification = {
            "sessionId": loaded.id,
            "model": settings.model,
            "reasoningEffort": _effort(settings.effort),
            "historyLogId": 0,
            "historyEntryCount": 0,
            "initialMessages": events,
            "rolloutPath": str(loaded.path),
        }
        await ctx.conn.notify("sessionConfigured", dict(note))
        return {
            "conversationId": loaded.id,
            "model": settings.model,
            "initialMessages": events,
            "rolloutPath": str(loaded.path),
        }

    async def resume(
        self, ctx: RequestContext, params: ResumeConversationParams
    ) -> ResumedConversationResponse:
        if params["path"] is not None:
            path = Path(params["path"])
        elif params["conversationId"] is not None:
            path = await self._rollout_by_id(conversation_id(params["conversationId"]))
        elif params["history"]:
            raise RpcError("resumeConversation from a history is not supported by codex-trio")
        else:
            raise RpcError("either path, conversation id or non empty history must be provided")
        summary = await self._rollout_summary(path)
        events = await self._stored_events(path)
        loaded = self.manager.get(summary.id)
        if loaded is None:
            config = self._config(params["overrides"], cwd=summary.cwd)
            loaded, _ = await self.manager.resume_thread(
                path,
                summary,
                config,
                ctx.session,
                await_listener=True,
                include_apply_patch_tool=_include_apply_patch_tool(params["overrides"]),
            )
            await self.manager.announce_startup(loaded)
        return await self._configured(ctx, loaded, events)

    async def fork(self, ctx: RequestContext, params: ForkConversationParams) -> ResumedConversationResponse:
        if params["path"] is not None:
            path = Path(params["path"])
        elif params["conversationId"] is not None:
            path = await self._rollout_by_id(conversation_id(params["conversationId"]))
        else:
            raise RpcError("either path or conversation id must be provided")
        summary = await self._rollout_summary(path)
        events = await self._stored_events(path)
        config = self._config(params["overrides"], cwd=summary.cwd)
        forked, _ = await self.manager.fork_thread(
            path,
            summary,
            config,
            ctx.session,
            await_listener=True,
            include_apply_patch_tool=_include_apply_patch_tool(params["overrides"]),
        )
        await self.manager.announce_startup(forked)
        return await self._configured(ctx, forked, events)

    async def archive(self, ctx: RequestContext, params: ArchiveConversationParams) -> dict[str, Any]:
        thread_id = conversation_id(params["conversationId"])
        given = params["rolloutPath"]
        sessions = self.manager.store.sessions_dir

        def resolve() -> Path | None:
            try:
                resolved = Path(given).resolve(strict=True)
                if resolved.is_relative_to(sessions.resolve(strict=True)):
                    return resolved
            except OSError:
                pass
            return None

        resolved = await trio.to_thread.run_sync(resolve)
        if resolved is None:
            raise RpcError(f"rollout path `{given}` must be in sessions directory")
        if not resolved.name.endswith(f"{thread_id}.jsonl"):
            raise RpcError(f"rollout path `{given}` does not match thread id {thread_id}")
        loaded = self.manager.get(thread_id)
        if loaded is not None:
            # An idle conversation is only shut down (one operation, so one id used up).
            turn = loaded.thread.interrupt() if loaded.thread.active_turn is not None else None
            if turn is not None:
                with trio.move_on_after(INTERRUPT_WAIT_SECONDS):
                    await turn.done.wait()
            # What a listener hears last of an archived conversation (nothing when none listens).
            await loaded.thread.emit(loaded.thread.next_id(), {"type": "shutdown_complete"})
        await self.manager.store.archive(thread_id)
        self.manager.unload(thread_id)
        return {}

    # ---- listing ---------------------------------------------------------------------------------

    async def summary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        from ..core.thread_store import RolloutReadError

        if "rolloutPath" in params:
            path = Path(params["rolloutPath"])
            if not path.is_absolute():
                path = self.manager.codex_home / path
        else:
            thread_id = parse_uuid(params["conversationId"])
            if thread_id is None:
                # serde tried both variants of the untagged params and neither fit.
                raise invalid_params(
                    "data did not match any variant of untagged enum GetConversationSummaryParams"
                )
            found = await self.manager.store.find_rollout(thread_id)
            if found is None:
                raise RpcError(f"no rollout found for conversation id {thread_id}")
            path = found
        try:
            stored = await self.manager.store.read_summary(
                path, default_provider=self.manager.default_provider()
            )
        except OSError as exc:
            reason = _io_error_text(exc)
        except RolloutReadError as exc:
            reason = str(exc)
        else:
            timestamp = await trio.to_thread.run_sync(_meta_timestamp, path)
            return {"summary": conversation_summary(stored, timestamp)}
        raise RpcError(f"failed to load conversation summary from {path}: {reason}", code=INTERNAL_ERROR)

    async def list_conversations(
        self, ctx: RequestContext, params: ListConversationsParams
    ) -> ListConversationsResponse:
        page = await self.manager.store.list_threads(
            default_provider=self.manager.default_provider(),
            cursor=params["cursor"],
            limit=params["pageSize"],
            model_providers=params["modelProviders"],
        )

        def timestamps() -> list[str | None]:
            return [_meta_timestamp(Path(summary.path)) for summary in page.threads]

        stamps = await trio.to_thread.run_sync(timestamps)
        items = [conversation_summary(s, stamp) for s, stamp in zip(page.threads, stamps, strict=True)]
        return {"items": items, "nextCursor": page.next_cursor}

    # ---- listeners -------------------------------------------------------------------------------

    def _loaded(self, raw_id: str, missing: str) -> LoadedThread:
        thread_id = conversation_id(raw_id)
        loaded = self.manager.get(thread_id)
        if loaded is None:
            raise RpcError(f"{missing}: {thread_id}")
        return loaded

    async def add_listener(self, ctx: RequestContext, params: AddConversationListenerParams) -> Reply:
        loaded = self._loaded(params["conversationId"], "thread not found")
        response: AddConversationSubscriptionResponse = {
            "subscriptionId": self.manager.add_listener(loaded, ctx.conn)
        }

        async def listen() -> None:
            await self.manager.start_listening(loaded)

        return Reply(dict(response), after=listen)

    async def remove_listener(
        self, ctx: RequestContext, params: RemoveConversationListenerParams
    ) -> dict[str, Any]:
        subscription_id = parse_uuid(params["subscriptionId"])
        if subscription_id is None:
            raise invalid_params(f"UUID parsing failed: {uuid_error(params['subscriptionId'])}")
        if not self.manager.remove_listener(subscription_id):
            raise RpcError(f"subscription not found: {subscription_id}")
        return {}

    # ---- turns -----------------------------------------------------------------------------------

    def _begin(
        self, ctx: RequestContext, loaded: LoadedThread, inputs: list[dict[str, Any]], output_schema: Any
    ) -> Reply:
        thread = loaded.thread
        # Like turn/start: input for a busy conversation joins the running turn.
        turn_id = thread.steer(inputs) if thread.active_turn is not None else thread.begin_turn().id

        async def begin() -> None:
            active = thread.active_turn
            if active is not None and active.id == turn_id:
                self.manager.start_turn_task(ctx.conn, thread.run_turn, active, inputs, output_schema)

        return Reply({}, after=begin)

    def send_user_message(self, ctx: RequestContext, params: SendUserMessageParams) -> Reply:
        loaded = self._loaded(params["conversationId"], "conversation not found")
        inputs = [v2_input(dict(item)) for item in params["items"]]
        return self._begin(ctx, loaded, inputs, None)

    def send_user_turn(self, ctx: RequestContext, params: SendUserTurnParams) -> Reply:
        # First: a relative writable root is a params error in the reference, raised while decoding.
        sandbox_policy = v2_sandbox_policy(params["sandboxPolicy"])
        loaded = self._loaded(params["conversationId"], "conversation not found")
        thread = loaded.thread
        inputs = [v2_input(dict(item)) for item in params["items"]]
        requirements = loaded.config.requirements
        if requirements is not None:
            from ..core import events as ev
            from ..core.config import sandbox_mode_of_policy

            violation = requirements.violation(
                approval_policy=params["approvalPolicy"],
                sandbox_mode=sandbox_mode_of_policy(sandbox_policy),
            )
            if violation is not None:
                # The reference's user-turn operation fails as a whole: its id used up, an error
                # event, no turn, nothing changed.
                sub_id = thread.next_id()

                async def report() -> None:
                    await thread.emit(sub_id, ev.error(violation, "bad_request"))

                return Reply({}, after=report)
        # One operation in the reference (so one turn id): the turn's full settings, kept for later turns.
        thread.settings = replace(
            thread.settings,
            cwd=thread.settings.cwd / params["cwd"],
            approval_policy=params["approvalPolicy"],
            sandbox_policy=sandbox_policy,
            model=params["model"],
            effort=params["effort"],
            summary=params["summary"],
        )
        return self._begin(ctx, loaded, inputs, params["outputSchema"])

    async def interrupt(self, ctx: RequestContext, params: ConversationIdParams) -> Reply:
        loaded = self._loaded(params["conversationId"], "conversation not found")
        # As turn/interrupt does: answered between turn_aborted and turn/completed.
        return await self.manager.interrupt(loaded, {"abortReason": "interrupted"})
