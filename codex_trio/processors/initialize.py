"""initialize / getUserAgent."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypedDict

# typing_extensions costs start-up time; Python 3.11's typing has NotRequired.
if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired

from ..protocol.initialize import InitializeParams, InitializeResponse
from ..router import Method, RequestContext
from ..rpc.errors import RpcError
from ..rpc.session import Reply
from ..useragent import user_agent

if TYPE_CHECKING:
    from ..app import AppServer
    from ..core.config import ConfigError

ALREADY_INITIALIZED = "Already initialized"
INVALID_CONFIG_SUMMARY = "Invalid configuration; using defaults."


class ConfigWarningNotification(TypedDict):
    summary: str
    details: str
    path: NotRequired[str]
    range: NotRequired[dict[str, Any]]


def config_warning(err: ConfigError) -> ConfigWarningNotification:
    """What the reference tells a client whose server started with unusable configuration files:
    the error, and where it sits when it comes from a file (an inclusive range, 1-based)."""
    note: ConfigWarningNotification = {"summary": INVALID_CONFIG_SUMMARY, "details": str(err)}
    if err.file is not None and err.range is not None:
        note["path"] = str(err.file)
        start, end = err.range
        note["range"] = {
            "start": {"line": start.line, "column": start.column},
            "end": {"line": end.line, "column": end.column},
        }
    return note


class InitializeProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app

    def methods(self) -> list[Method]:
        return [
            Method("initialize", InitializeParams, self.initialize, inline=True),
            Method("getUserAgent", None, self.get_user_agent, inline=True),
        ]

    def initialize(self, ctx: RequestContext, params: InitializeParams) -> Reply:
        session = ctx.session
        if session.initialized:
            raise RpcError(ALREADY_INITIALIZED)
        info = params["clientInfo"]
        session.client_name = info["name"]
        session.client_version = info["version"]
        # The client's name is the originator upstream and in rollouts, as with the reference.
        session.originator = info["name"]
        capabilities = params["capabilities"]
        session.experimental_api = bool(capabilities and capabilities["experimentalApi"])
        opt_out = (capabilities and capabilities["optOutNotificationMethods"]) or []
        ctx.conn.suppressed_notifications = frozenset(opt_out)
        session.user_agent = user_agent(
            session.originator,
            client_name=info["name"],
            client_version=info["version"],
            env=self.app.env,
        )
        session.initialized = True
        result: InitializeResponse = {"userAgent": session.user_agent}
        error = self.app.threads.config_error
        if error is None:
            return Reply(result)

        async def warn() -> None:
            # Right after the answer, before the client's `initialized`, as the reference sends it.
            await ctx.conn.notify("configWarning", dict(config_warning(error)))

        return Reply(result, after=warn)

    def get_user_agent(self, ctx: RequestContext, params: None) -> dict[str, str]:
        return {"userAgent": ctx.session.user_agent or self.default_user_agent()}

    def default_user_agent(self) -> str:
        return user_agent("codex_cli_rs", env=self.app.env)
