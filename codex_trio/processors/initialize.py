"""initialize / getUserAgent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol.initialize import InitializeParams, InitializeResponse
from ..router import Method, RequestContext
from ..rpc.errors import RpcError
from ..useragent import user_agent

if TYPE_CHECKING:
    from ..app import AppServer

ALREADY_INITIALIZED = "Already initialized"


class InitializeProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app

    def methods(self) -> list[Method]:
        return [
            Method("initialize", InitializeParams, self.initialize, inline=True),
            Method("getUserAgent", None, self.get_user_agent, inline=True),
        ]

    def initialize(self, ctx: RequestContext, params: InitializeParams) -> InitializeResponse:
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
        return {"userAgent": session.user_agent}

    def get_user_agent(self, ctx: RequestContext, params: None) -> dict[str, str]:
        return {"userAgent": ctx.session.user_agent or self.default_user_agent()}

    def default_user_agent(self) -> str:
        return user_agent("codex_cli_rs", env=self.app.env)
