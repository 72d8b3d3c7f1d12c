"""The application: state shared by every connection, and the per-connection session.

``AppServer`` owns what outlives one client (configuration, threads, auth). ``ClientSession`` is one
client's view: its handshake state, and the dispatcher its ``Connection`` calls.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .core.config import (
    SYSTEM_REQUIREMENTS_TOML,
    Config,
    ConfigError,
    find_codex_home,
    load_config,
    parse_cli_overrides,
)
from .processors.accounts import AccountsProcessor
from .processors.catalog import CatalogProcessor
from .processors.command import CommandProcessor
from .processors.config import ConfigProcessor
from .processors.conversations import ConversationsProcessor
from .processors.initialize import InitializeProcessor
from .processors.review import ReviewProcessor
from .processors.threads import ThreadsProcessor
from .processors.turns import TurnsProcessor
from .processors.utilities import UtilitiesProcessor
from .router import Method, Router
from .rpc.messages import Notification, Request
from .rpc.session import Connection, Deferred, Limits, Reply
from .thread_manager import ThreadManager

log = logging.getLogger(__name__)


@dataclass
class ServerOptions:
    env: Mapping[str, str]
    cli_overrides: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    # The administrator's requirements; in-process tests point it elsewhere (no env var: that would
    # let anyone who can set the environment lift the constraints).
    requirements_path: Path | None = SYSTEM_REQUIREMENTS_TOML
    # Turns outlive the connection that started them (websocket); on stdio they end with it.
    turns_outlive_connection: bool = False


class AppServer:
    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.env = options.env
        self.codex_home = find_codex_home(options.env)
        config, error = self._load_config()
        self.config = config
        self.threads = ThreadManager(
            env=options.env, codex_home=self.codex_home, base_config=config, config_error=error
        )
        self.processors: list[Any] = [
            InitializeProcessor(self),
            ThreadsProcessor(self),
            TurnsProcessor(self),
            ReviewProcessor(self),
            AccountsProcessor(self),
            CatalogProcessor(self),
            CommandProcessor(self),
            ConfigProcessor(self),
            ConversationsProcessor(self),
            UtilitiesProcessor(self),
        ]
        methods: list[Method] = []
        for processor in self.processors:
            methods.extend(processor.methods())
        self.router = Router(methods)
        # Live client sessions: broadcasts (account/updated, thread events) go to these.
        self.sessions: set[ClientSession] = set()

    def _load_config(self) -> tuple[Config | None, ConfigError | None]:
        try:
            config = load_config(
                self.codex_home,
                cli_overrides=parse_cli_overrides(self.options.cli_overrides),
                env=self.options.env,
                requirements_path=self.options.requirements_path,
            )
        except ConfigError as exc:
            # Like the reference: the server still starts, and thread/start reports the problem.
            log.error("invalid configuration: %s", exc)
            return None, exc
        return config, None

    def reload_config(self) -> ConfigError | None:
        """Read the configuration files again (after the client changed them): threads started from now
        on use it; running threads keep theirs. Returns the error if the files are now invalid."""
        config, error = self._load_config()
        self.config = config
        self.threads.base_config = config
        self.threads.config_error = error
        return error

    async def run(self, *, task_status: trio.TaskStatus[AppServer] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold what outlives connections (the HTTP client; turns when they outlive connections)."""
        try:
            async with trio.open_nursery() as nursery:
                if self.options.turns_outlive_connection:
                    self.threads.nursery = nursery
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self.threads.nursery = None
            await self.threads.aclose()

    def new_session(self) -> ClientSession:
        return ClientSession(self)

    async def serve_transport(
        self,
        transport: Any,
        *,
        name: str = "client",
        limits: Limits | None = None,
        task_status: trio.TaskStatus[Connection] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve one client over ``transport`` until it goes away."""
        session = self.new_session()
        conn = Connection(transport, session, limits=limits or self.options.limits, name=name)
        session.conn = conn
        self.sessions.add(session)
        try:
            await conn.serve(task_status=task_status)
        finally:
            self.sessions.discard(session)
            self.threads.drop_connection(conn)


class ClientSession:
    """One client's handshake state; the Dispatcher of its Connection."""

    def __init__(self, app: AppServer) -> None:
        self.app = app
        self.conn: Connection | None = None
        self.initialized = False
        self.client_initialized = False
        self.client_name: str | None = None
        self.client_version: str | None = None
        self.originator = "codex_cli_rs"
        self.user_agent: str | None = None
        self.experimental_api = False
        # Per Method.sequence: the event set when the last request of that sequence is done.
        self.sequence_tails: dict[str, trio.Event] = {}

    def dispatch(self, conn: Connection, request: Request) -> Reply | Deferred:
        return self.app.router.dispatch(self, conn, request)

    def notification(self, conn: Connection, notification: Notification) -> None:
        self.app.router.notification(self, notification)
