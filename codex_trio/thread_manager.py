"""Loaded threads and who hears about them.

The manager builds ``CodexThread``s (new, resumed, forked), gives each a sink that projects its events
(legacy ``codex/event/*`` then v2) once and fans the notifications out to the subscribed connections,
and records each thread's rollout.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import trio

from . import REFERENCE_VERSION
from .core import events as ev
from .core.config import Config, ConfigError, RequirementsViolation
from .rpc.errors import ConnectionClosed, RpcError
from .rpc.session import Connection, Reply

# The rollout format, the thread store, the projections and the instructions load with the first
# thread (or listing), not at start-up: a server answers initialize without them.
if TYPE_CHECKING:
    import httpx

    from .app import ClientSession
    from .core import rollout as ro
    from .core.auth import AuthManager
    from .core.thread import CodexThread, TurnSettings
    from .core.thread_store import ThreadStore, ThreadSummary
    from .processors.projection import ProjectionState
    from .protocol.v2 import GitInfo, Thread

log = logging.getLogger(__name__)

Notification = tuple[str, dict[str, Any]]

# What the reference sends only to threads whose listener is v2: a conversation driven through the v1
# API gets the legacy events alone for these.
V2_LISTENER_ONLY_METHODS = frozenset(
    {"turn/diff/updated", "turn/plan/updated", "thread/name/updated", "rawResponseItem/completed"}
)

# How long an interrupted turn may take to wind down before whoever waits on it (turn/interrupt's
# answer, thread/archive) goes on anyway.
INTERRUPT_WAIT_SECONDS = 5.0


def sandbox_policy_v2(config: Config) -> dict[str, Any]:
    if config.sandbox_mode == "read-only":
        return {"type": "readOnly"}
    if config.sandbox_mode == "workspace-write":
        ws = config.sandbox_workspace_write
        return {
            "type": "workspaceWrite",
            "writableRoots": [str(p) for p in ws.writable_roots],
            "networkAccess": ws.network_access,
            "excludeTmpdirEnvVar": ws.exclude_tmpdir_env_var,
            "excludeSlashTmp": ws.exclude_slash_tmp,
        }
    return {"type": "dangerFullAccess"}


def settings_from_config(config: Config) -> TurnSettings:
    from .core.thread import TurnSettings

    return TurnSettings(
        model=config.model,
        model_provider=config.model_provider_id,
        cwd=config.cwd,
        approval_policy=config.approval_policy,
        sandbox_policy=sandbox_policy_v2(config),
        effort=config.model_reasoning_effort,
        summary=config.model_reasoning_summary,
        personality=config.personality,
    )


class RolloutRecorder:
    """Records a thread's rollout. A resumed thread's file is only opened with its first new line: like
    the reference, resuming leaves the file (and so the thread's updatedAt) untouched."""

    def __init__(self, writer: ro.RolloutWriter | None = None, *, resume: Path | None = None) -> None:
        self._writer = writer
        self._resume = resume

    @property
    def writer(self) -> ro.RolloutWriter:
        if self._writer is None:
            from .core.rollout import RolloutWriter

            assert self._resume is not None
            self._writer = RolloutWriter.open_existing(self._resume)
        return self._writer

    def record_items(self, items: list[dict[str, Any]]) -> None:
        from .core.rollout import is_persisted, response_item

        self.writer.append(response_item(i) for i in items if is_persisted(response_item(i)))

    def record_event(self, msg: dict[str, Any]) -> None:
        from .core.rollout import event_msg

        self.writer.append([event_msg(msg)])

    def record_turn_context(self, context: dict[str, Any]) -> None:
        from .core.rollout import turn_context

        self.writer.append([turn_context(context)])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class NullRecorder:
    """An ephemeral thread keeps nothing on disk."""

    def record_items(self, items: list[dict[str, Any]]) -> None:
        pass

    def record_event(self, msg: dict[str, Any]) -> None:
        pass

    def record_turn_context(self, context: dict[str, Any]) -> None:
        pass


@dataclass
class LoadedThread:
    thread: CodexThread
    config: Config
    created_at: int
    path: Path | None
    cli_version: str
    source: Any
    preview: str
    projection: ProjectionState
    # As the stored thread says, for a resumed one (a new thread is not looked up in git).
    git_info: GitInfo | None = None
    # Connections that receive this thread's notifications.
    subscribers: list[Connection] = field(default_factory=list)
    # The interrupt that is waiting to answer between turn_aborted and turn/completed.
    interrupt_ack: trio.Event | None = None
    abort_emitted: trio.Event | None = None
    # Which API's listener the thread got first; like the reference, it decides whether approvals are
    # asked with the v1 requests (execCommandApproval...) or the v2 ones. None: no listener yet.
    listener_api: Literal["v1", "v2"] | None = "v2"
    # Whether events reach the subscribers now. A v1 conversation's events (and so its approval
    # requests) wait in ``backlog`` until addConversationListener, and again once every listener is
    # removed: the reference only reads a conversation's events while a listener runs.
    listening: bool = True
    backlog: list[tuple[str, ev.EventMsg]] = field(default_factory=list)
    listening_started: trio.Event = field(default_factory=trio.Event)
    # addConversationListener subscriptions: id -> the connection that added it.
    v1_listeners: dict[str, Connection] = field(default_factory=dict)
    backlog_lock: trio.Lock = field(default_factory=trio.Lock)
    # The warnings the thread announces once started (event id, event), until announced.
    startup_warnings: list[tuple[str, ev.EventMsg]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.thread.id

    def to_thread(self, turns: Sequence[Any] = ()) -> Thread:
        return {
            "id": self.thread.id,
            "preview": self.preview,
            "modelProvider": self.config.model_provider_id,
            "createdAt": self.created_at,
            "updatedAt": self._updated_at(),
            "path": str(self.path) if self.path else None,
            "cwd": str(self.thread.settings.cwd),
            "cliVersion": self.cli_version,
            "source": self.source,
            "gitInfo": self.git_info,
            "turns": list(turns),
        }

    def _updated_at(self) -> int:
        if self.path is not None:
            try:
                return int(self.path.stat().st_mtime)
            except OSError:
                pass
        return self.created_at


class ThreadManager:
    def __init__(self, *, env: Mapping[str, str], codex_home: Path, base_config: Config | None,
                 config_error: ConfigError | None) -> None:
        self.env = env
        self.codex_home = codex_home
        self.base_config = base_config
        self.config_error = config_error
        self._store: ThreadStore | None = None
        self.threads: dict[str, LoadedThread] = {}
        self._http: httpx.AsyncClient | None = None
        self._auth: AuthManager | None = None
        # Where turns run when they must outlive the request that started them.
        self.nursery: trio.Nursery | None = None
        # The connection whose turn is running, per task: approvals and questions go to it.
        self._turn_owner: ContextVar[Connection | None] = ContextVar(f"turn-owner-{id(self)}", default=None)

    @property
    def store(self) -> ThreadStore:
        """The stored threads (sessions/ and archived_sessions/), opened on first use."""
        if self._store is None:
            from .core.thread_store import ThreadStore

            self._store = ThreadStore(self.codex_home)
        return self._store

    @property
    def auth(self) -> AuthManager:
        """The server's credentials: every thread's requests carry them, and the account API changes them.
        Built on first use: core.auth (with httpx) is not needed to answer initialize."""
        if self._auth is None:
            from .core.auth import AuthManager, AuthSettings

            self._auth = AuthManager(
                codex_home=self.codex_home,
                env=self.env,
                settings=AuthSettings.from_config(self.base_config),
                http=lambda: self.http,
            )
        return self._auth

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            from .core.model_client import make_http_client

            self._http = make_http_client()
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + 1
                await self._http.aclose()

    # ---- config ----------------------------------------------------------------------------

    def derive_config(self, params: Mapping[str, Any]) -> Config:
        base = self.base_config
        if base is None and isinstance(self.config_error, RequirementsViolation):
            # Only the files' own choice is forbidden: overrides may still make an allowed config.
            base = self.config_error.unconstrained
        if base is None:
            raise RpcError(f"error deriving config: {self.config_error}")
        cwd = params.get("cwd")
        try:
            return base.derive(
                params.get("config") or {},
                model=params.get("model"),
                model_provider=params.get("modelProvider"),
                cwd=Path(cwd) if cwd else None,
                approval_policy=params.get("approvalPolicy"),
                sandbox_mode=params.get("sandbox"),
                base_instructions=params.get("baseInstructions"),
                developer_instructions=params.get("developerInstructions"),
                personality=params.get("personality"),
            )
        except ConfigError as exc:
            raise RpcError(f"error deriving config: {exc}") from None

    def default_provider(self) -> str:
        return self.base_config.model_provider_id if self.base_config else "openai"

    # ---- threads ---------------------------------------------------------------------------

    def get(self, thread_id: str) -> LoadedThread | None:
        return self.threads.get(thread_id)

    def _build(
        self,
        *,
        thread_id: str,
        config: Config,
        session: ClientSession,
        history: list[dict[str, Any]],
        recorder: Any,
        created_at: int,
        path: Path | None,
        preview: str,
        cli_version: str = REFERENCE_VERSION,
        unrecorded: list[dict[str, Any]] | None = None,
        dynamic_tools: Sequence[Mapping[str, Any]] = (),
        await_listener: bool = False,
        include_apply_patch_tool: bool | None = None,
    ) -> LoadedThread:
        from .core.features import resolve_features
        from .core.instructions import BASE_INSTRUCTIONS
        from .core.model_client import ModelClient
        from .processors.projection import ProjectionState

        provider = config.model_provider
        features = resolve_features(config, include_apply_patch_tool=include_apply_patch_tool)
        from .core.thread import CodexThread, ToolOptions
        from .processors.client_requests import OwnerChannel

        client = ModelClient(
            provider,
            http=self.http,
            auth=self.auth.provider_for(provider),
            originator=session.originator,
            user_agent=session.user_agent or session.originator,
            environ=self.env,
        )
        loaded: LoadedThread | None = None

        async def sink(turn_id: str, msg: ev.EventMsg) -> None:
            assert loaded is not None
            await self._fan_out(loaded, turn_id, msg)

        thread = CodexThread(
            thread_id=thread_id,
            settings=settings_from_config(config),
            base_instructions=config.base_instructions or BASE_INSTRUCTIONS,
            history=history,
            recorder=recorder,
            sink=sink,
            model_stream=client.stream,
            stream_max_retries=provider.stream_max_retries,
            unrecorded=unrecorded,
            tool_options=ToolOptions(
                features=dict(features.enabled),
                web_search=features.web_search,
                view_image=config.tools.view_image,
                dynamic_tools=tuple(dict(spec) for spec in dynamic_tools),
            ),
            client=OwnerChannel(self, lambda: _require(loaded), self._turn_owner),
            env=self.env,
            shell_environment_policy=config.shell_environment_policy,
            rules_file=self.codex_home / "rules" / "default.rules",
        )
        loaded = LoadedThread(
            thread=thread,
            config=config,
            created_at=created_at,
            path=path,
            cli_version=cli_version,
            source="vscode",
            preview=preview,
            projection=ProjectionState(thread_id),
        )
        if await_listener:
            loaded.listener_api = None
            loaded.listening = False
        self.threads[thread_id] = loaded
        return loaded

    async def initial_context(self, config: Config) -> list[dict[str, Any]]:
        # Re-read on every start, resume and fork, as the reference does: the files may have changed.
        # In a worker thread: a large tree of project docs or skills must not stall the other clients.
        from .core.instructions import initial_context, user_instructions_for

        user_instructions = await trio.to_thread.run_sync(user_instructions_for, config)
        return initial_context(
            cwd=config.cwd,
            sandbox_mode=config.sandbox_mode,
            approval_policy=config.approval_policy,
            network_access=config.sandbox_workspace_write.network_access,
            developer_instructions=config.developer_instructions,
            user_instructions=user_instructions,
        )

    async def start_thread(
        self,
        config: Config,
        session: ClientSession,
        *,
        ephemeral: bool,
        dynamic_tools: Sequence[Mapping[str, Any]] = (),
        await_listener: bool = False,
        include_apply_patch_tool: bool | None = None,
    ) -> LoadedThread:
        """A new thread. ``await_listener``: a v1 conversation, whose events wait for
        addConversationListener (see ``LoadedThread.listening``). ``include_apply_patch_tool``:
        newConversation's field of that name, which overrides the config's features."""
        from .core import rollout as ro
        from .core.instructions import BASE_INSTRUCTIONS
        from .core.startup_warnings import startup_warnings

        now = ro.utc_now()
        thread_id = ro.new_thread_id(now)
        base = config.base_instructions or BASE_INSTRUCTIONS
        recorder: Any = NullRecorder()
        path = None
        if not ephemeral:
            writer = ro.RolloutWriter.create(
                self.codex_home,
                thread_id,
                ro.SessionMetaFields(
                    cwd=str(config.cwd),
                    originator=session.originator,
                    cli_version=REFERENCE_VERSION,
                    model_provider=config.model_provider_id,
                    base_instructions=base,
                ),
                created=now,
            )
            recorder = RolloutRecorder(writer)
            path = writer.path
        history = await self.initial_context(config)
        recorder.record_items(history)
        loaded = self._build(
            thread_id=thread_id,
            config=config,
            session=session,
            history=history,
            recorder=recorder,
            created_at=int(now.timestamp()),
            path=path,
            preview="",
            dynamic_tools=dynamic_tools,
            await_listener=await_listener,
            include_apply_patch_tool=include_apply_patch_tool,
        )
        loaded.startup_warnings = startup_warnings(config, include_apply_patch_tool=include_apply_patch_tool)
        return loaded

    async def resume_thread(
        self,
        path: Path,
        summary: ThreadSummary,
        config: Config,
        session: ClientSession,
        *,
        await_listener: bool = False,
        include_apply_patch_tool: bool | None = None,
    ) -> tuple[LoadedThread, list[Any]]:
        from .core import rollout as ro
        from .core.startup_warnings import startup_warnings

        rollout = await ro.aread_rollout(path)
        context = await self.initial_context(config)
        # Like the reference: the stored history, then a fresh copy of the initial context (the settings
        # may have changed since), which reaches the rollout with the next turn.
        history = ro.history_for_resume(rollout, initial_context=context) + context
        turns = ro.reconstruct_turns(rollout)
        recorder = RolloutRecorder(resume=path)
        loaded = self._build(
            thread_id=summary.id,
            config=config,
            session=session,
            history=history,
            recorder=recorder,
            created_at=summary.created_at,
            path=path,
            preview=summary.preview,
            cli_version=summary.cli_version,
            unrecorded=context,
            await_listener=await_listener,
            include_apply_patch_tool=include_apply_patch_tool,
        )
        stored = summary.to_thread()
        loaded.source, loaded.git_info = stored["source"], stored["gitInfo"]
        loaded.startup_warnings = startup_warnings(
            config, include_apply_patch_tool=include_apply_patch_tool, resumed=rollout
        )
        return loaded, turns

    async def fork_thread(
        self,
        path: Path,
        summary: ThreadSummary,
        config: Config,
        session: ClientSession,
        *,
        await_listener: bool = False,
        include_apply_patch_tool: bool | None = None,
    ) -> tuple[LoadedThread, list[Any]]:
        from .core import rollout as ro
        from .core.instructions import BASE_INSTRUCTIONS
        from .core.startup_warnings import startup_warnings

        parent = await ro.aread_rollout(path)
        now = ro.utc_now()
        thread_id = ro.new_thread_id(now)
        writer = ro.fork_rollout(
            self.codex_home,
            parent,
            thread_id=thread_id,
            fields=ro.SessionMetaFields(
                cwd=str(config.cwd),
                originator=session.originator,
                cli_version=REFERENCE_VERSION,
                model_provider=config.model_provider_id,
                base_instructions=config.base_instructions or BASE_INSTRUCTIONS,
            ),
            created=now,
        )
        recorder = RolloutRecorder(writer)
        context = await self.initial_context(config)
        history = ro.history_for_resume(parent, initial_context=context) + context
        recorder.record_items(context)
        loaded = self._build(
            thread_id=thread_id,
            config=config,
            session=session,
            history=history,
            recorder=recorder,
            created_at=int(now.timestamp()),
            path=writer.path,
            preview=summary.preview,
            await_listener=await_listener,
            include_apply_patch_tool=include_apply_patch_tool,
        )
        loaded.startup_warnings = startup_warnings(config, include_apply_patch_tool=include_apply_patch_tool)
        return loaded, ro.reconstruct_turns(parent)

    async def announce_startup(self, loaded: LoadedThread, *, startup_complete: bool = True) -> None:
        """Emits what a thread says once it is up: its startup warnings, then mcp_startup_complete
        (unless ``startup_complete`` is off). A v1 conversation keeps them for its first listener."""
        pending, loaded.startup_warnings = loaded.startup_warnings, []
        for event_id, msg in pending:
            await loaded.thread.emit(event_id, msg)
        if startup_complete:
            await loaded.thread.emit("", ev.mcp_startup_complete())

    def unload(self, thread_id: str) -> None:
        loaded = self.threads.pop(thread_id, None)
        if loaded is not None and isinstance(loaded.thread.recorder, RolloutRecorder):
            loaded.thread.recorder.close()

    def subscribe(self, loaded: LoadedThread, conn: Connection) -> None:
        if conn not in loaded.subscribers:
            loaded.subscribers.append(conn)

    def drop_connection(self, conn: Connection) -> None:
        for loaded in self.threads.values():
            for subscription_id, owner in list(loaded.v1_listeners.items()):
                if owner is conn:
                    self._remove_listener(loaded, subscription_id)
            if conn in loaded.subscribers:
                loaded.subscribers.remove(conn)

    # ---- v1 listeners (addConversationListener) --------------------------------------------

    def add_listener(self, loaded: LoadedThread, conn: Connection) -> str:
        """Subscribes ``conn`` for addConversationListener; returns the subscription id. The caller
        then runs :meth:`start_listening` (after answering, as the reference does)."""
        if loaded.listener_api is None:
            loaded.listener_api = "v1"
        from uuid import uuid4

        subscription_id = str(uuid4())
        loaded.v1_listeners[subscription_id] = conn
        self.subscribe(loaded, conn)
        return subscription_id

    async def start_listening(self, loaded: LoadedThread) -> None:
        """Delivers what the thread emitted while nobody listened, then lets its events through."""
        async with loaded.backlog_lock:
            if loaded.listening:
                return
            # Events the core emits meanwhile join the backlog, so this drains them too, in order.
            while loaded.backlog:
                turn_id, msg = loaded.backlog.pop(0)
                await self._deliver(loaded, turn_id, msg)
            loaded.listening = True
            loaded.listening_started.set()

    async def wait_listening(self, loaded: LoadedThread) -> None:
        """Returns once the thread's events reach a listener (at once but for a v1 conversation)."""
        while not loaded.listening:
            await loaded.listening_started.wait()

    def remove_listener(self, subscription_id: str) -> bool:
        """removeConversationListener; False when no thread has that subscription."""
        for loaded in self.threads.values():
            if subscription_id in loaded.v1_listeners:
                self._remove_listener(loaded, subscription_id)
                return True
        return False

    def _remove_listener(self, loaded: LoadedThread, subscription_id: str) -> None:
        conn = loaded.v1_listeners.pop(subscription_id)
        if loaded.listener_api != "v1":
            # The thread's own (v2) listener keeps running for its subscribers.
            return
        if conn in loaded.subscribers and conn not in loaded.v1_listeners.values():
            loaded.subscribers.remove(conn)
        if not loaded.v1_listeners and loaded.listening:
            loaded.listening = False
            loaded.listening_started = trio.Event()

    # ---- fan-out ---------------------------------------------------------------------------

    async def broadcast(self, loaded: LoadedThread, notes: Sequence[Notification]) -> None:
        for conn in list(loaded.subscribers):
            try:
                for method, params in notes:
                    await conn.notify(method, params)
            except ConnectionClosed:
                if conn in loaded.subscribers:
                    loaded.subscribers.remove(conn)

    async def _fan_out(self, loaded: LoadedThread, turn_id: str, msg: ev.EventMsg) -> None:
        if msg["type"] == "user_message" and not loaded.preview and _opens_thread(loaded.thread.history):
            from .core.rollout import preview_from_first_message

            loaded.preview = preview_from_first_message(msg["message"])
        if not loaded.listening:
            loaded.backlog.append((turn_id, msg))
            return
        await self._deliver(loaded, turn_id, msg)

    async def _deliver(self, loaded: LoadedThread, turn_id: str, msg: ev.EventMsg) -> None:
        from .processors.projection import legacy_notification, project, v2_notifications

        if msg["type"] == "turn_aborted" and loaded.interrupt_ack is not None:
            # The reference answers turn/interrupt between the legacy event and turn/completed.
            await self.broadcast(loaded, [legacy_notification(loaded.id, turn_id, msg)])
            if loaded.abort_emitted is not None:
                loaded.abort_emitted.set()
            with trio.move_on_after(INTERRUPT_WAIT_SECONDS):
                await loaded.interrupt_ack.wait()
            loaded.interrupt_ack = loaded.abort_emitted = None
            await self.broadcast(loaded, v2_notifications(loaded.projection, turn_id, msg))
            return
        notes = project(loaded.projection, turn_id, msg)
        if loaded.listener_api == "v1":
            notes = [note for note in notes if note[0] not in V2_LISTENER_ONLY_METHODS]
        await self.broadcast(loaded, notes)

    async def interrupt(self, loaded: LoadedThread, result: dict[str, Any]) -> Reply:
        """Interrupts whatever runs on ``loaded`` and answers ``result`` between the turn's legacy
        turn_aborted and its turn/completed, as the reference does (at once when nothing runs)."""
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

        return Reply(result, after=release)

    def start_turn_task(
        self, conn: Connection, fn: Callable[..., Awaitable[Any]], *args: Any
    ) -> None:
        async def owned() -> None:
            # A 401 during this turn asks this connection for fresh ChatGPT tokens, and approvals go to it.
            self._turn_owner.set(conn)
            with self.auth.turn_owner(conn):
                await fn(*args)

        # A turn belongs to the connection that started it (stdio: closing it cancels the turn) unless
        # the server runs turns in its own nursery (websocket: turns outlive a dropped connection).
        if self.nursery is not None:
            self.nursery.start_soon(owned)
        else:
            conn.start_soon(owned)


def _opens_thread(history: Sequence[dict[str, Any]]) -> bool:
    """Whether a user_message event just emitted is the thread's first and comes right after the message
    the user typed (the last item of ``history``). The reference's preview comes from the rollout's head,
    which ends at the first user_message event: a thread that starts with a review (whose relayed prompt
    is that event, with nothing typed before it) keeps the preview "" whatever is typed afterwards."""
    from .core.rollout import user_message_text

    for index, item in enumerate(history):
        if user_message_text(item) is not None:
            return index == len(history) - 1
    return False


def _require(loaded: LoadedThread | None) -> LoadedThread:
    assert loaded is not None
    return loaded
