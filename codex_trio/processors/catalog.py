"""What a client lists to fill its UI: ``model/list``, ``collaborationMode/list``, ``skills/list`` and
``skills/config/write``, ``app/list``, the MCP server methods and ``feedback/upload``.

Answers follow the reference (Codex CLI 0.94.0). Where the reference would do something codex-trio
cannot, the client gets an error that names the limitation instead of a pretend success:

- MCP servers: codex-trio starts none. With no server configured (or only disabled ones, whose status
  needs no connection) the answers are the reference's; otherwise ``mcpServerStatus/list`` and
  ``config/mcpServer/reload`` fail, and ``mcpServer/oauth/login`` fails for HTTP servers.
- Apps (ChatGPT connectors): with the ``apps`` feature off the list is empty, as in the reference;
  with it on, ``app/list`` fails.
- Feedback: the reference sends it to a remote service. codex-trio sends nothing anywhere, so after
  the reference's own checks ``feedback/upload`` fails like a failed upload.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ..protocol.catalog import (
    AppsListParams,
    AppsListResponse,
    FeedbackUploadParams,
    ListMcpServerStatusParams,
    ListMcpServerStatusResponse,
    McpServerOauthLoginParams,
    McpServerStatus,
    ModelListParams,
    SkillsConfigWriteParams,
    SkillsConfigWriteResponse,
    SkillsListEntry,
    SkillsListParams,
    SkillsListResponse,
)
from ..router import Method, RequestContext
from ..rpc.decode import unexpected
from ..rpc.errors import INTERNAL_ERROR, RpcError, invalid_params

if TYPE_CHECKING:
    from ..app import AppServer
    from ..core.config import Config
    from ..core.models import ModelsCatalog, ModelsRequest
    from ..core.skills import SkillLoadOutcome

CONFIG_SEQUENCE = "config"
MCP_UNSUPPORTED = "MCP servers are not supported by codex-trio"
APPS_UNSUPPORTED = "ChatGPT apps (connectors) are not supported by codex-trio"
MCP_OAUTH_UNSUPPORTED = "OAuth login to MCP servers is not supported by codex-trio"
FEEDBACK_UNSUPPORTED = "codex-trio does not send feedback to any service"


def _internal(message: str) -> RpcError:
    return RpcError(message, code=INTERNAL_ERROR)


def _path_param(value: object) -> str:
    if not isinstance(value, str):
        raise invalid_params(f"invalid type: {unexpected(value)}, expected path string")
    return value


class CatalogProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app
        self._models: ModelsCatalog | None = None
        # skills/list results per cwd (as the client wrote it), until forceReload or a config write.
        self._skills: dict[str, SkillLoadOutcome] = {}

    def methods(self) -> list[Method]:
        return [
            Method("model/list", ModelListParams, self.model_list),
            # Any params are accepted, as by the reference (its params type has no fields).
            Method("collaborationMode/list", None, self.collaboration_modes),
            Method("skills/list", SkillsListParams, self.skills_list),
            Method("skills/config/write", SkillsConfigWriteParams, self.skills_config_write,
                   sequence=CONFIG_SEQUENCE),
            Method("app/list", AppsListParams, self.app_list),
            Method("mcpServerStatus/list", ListMcpServerStatusParams, self.mcp_server_status),
            Method("config/mcpServer/reload", None, self.mcp_server_reload, sequence=CONFIG_SEQUENCE),
            Method("mcpServer/oauth/login", McpServerOauthLoginParams, self.mcp_oauth_login),
            Method("feedback/upload", FeedbackUploadParams, self.feedback_upload),
        ]

    # ---- configuration, as the reference re-reads it for these methods -----------------------

    def _server_cwd(self) -> Path:
        config = self.app.config
        return config.cwd if config is not None else Path(os.getcwd())

    def _load_config(self, cwd: Path | None = None) -> Config:
        """config.toml as it is on disk now (raises ConfigError)."""
        from ..core.config import load_config, parse_cli_overrides

        return load_config(
            self.app.codex_home,
            cli_overrides=parse_cli_overrides(self.app.options.cli_overrides),
            cwd=cwd,
            env=self.app.env,
        )

    async def _reloaded_config(self) -> Config:
        from ..core.config import ConfigError

        try:
            return await trio.to_thread.run_sync(self._load_config)
        except ConfigError as exc:
            raise _internal(f"failed to reload config: {exc}") from None

    # ---- model/list ----------------------------------------------------------------------------

    def _models_request(self, ctx: RequestContext, chatgpt: bool) -> ModelsRequest | None:
        """Where to ask for the current catalogue: OpenAI's own provider, whatever the configured one
        is. None without OPENAI_BASE_URL and without ChatGPT tokens (see core.models)."""
        from ..core.config import OPENAI_PROVIDER_ID, built_in_model_providers
        from ..core.models import ModelsRequest

        provider = built_in_model_providers(self.app.env)[OPENAI_PROVIDER_ID]
        if provider.base_url is None and not chatgpt:
            return None
        headers = dict(provider.http_headers)
        for name, variable in provider.env_http_headers.items():
            value = self.app.env.get(variable, "")
            if value.strip():
                headers[name] = value
        auth = self.app.threads.auth.auth
        if chatgpt and auth is not None:
            headers.update(auth.headers())
        session = ctx.session
        headers["user-agent"] = session.user_agent or session.originator
        headers["originator"] = session.originator
        return ModelsRequest(provider.api_base_url(chatgpt_auth=chatgpt), headers)

    async def model_list(self, ctx: RequestContext, params: ModelListParams) -> dict[str, Any]:
        from ..core.models import CursorError, ModelsCatalog, next_cursor, page_bounds

        if self._models is None:
            self._models = ModelsCatalog(self.app.codex_home)
        auth = self.app.threads.auth
        chatgpt = auth.is_chatgpt
        # With an API key the reference keeps its catalogue as it is: no cache, no request.
        if auth.mode != "apikey":
            await self._models.refresh(self.app.threads.http, self._models_request(ctx, chatgpt))
        models = self._models.models(chatgpt=chatgpt)
        try:
            start, end = page_bounds(params["cursor"], params["limit"], len(models), "models")
        except CursorError as exc:
            raise RpcError(str(exc)) from None
        return {"data": models[start:end], "nextCursor": next_cursor(end, len(models))}

    # ---- collaborationMode/list ----------------------------------------------------------------

    async def collaboration_modes(self, ctx: RequestContext, params: object) -> dict[str, Any]:
        from ..core.models import COLLABORATION_MODE_PRESETS

        return {"data": [dict(preset) for preset in COLLABORATION_MODE_PRESETS]}

    # ---- skills --------------------------------------------------------------------------------

    def _skills_entry(
        self, cwd: str, cached: SkillLoadOutcome | None
    ) -> tuple[SkillsListEntry, SkillLoadOutcome | None]:
        """One cwd's skills (blocking: reads config and skill files). Returns the entry and the
        outcome to cache (None when the configuration could not be read)."""
        from ..core.config import ConfigError
        from ..core.skills import disabled_skill_paths, discover_skills, skill_roots

        path = Path(cwd)
        try:
            config = self._load_config(path if path.is_absolute() else self._server_cwd() / path)
        except ConfigError as exc:
            return {"cwd": cwd, "skills": [], "errors": [{"path": cwd, "message": str(exc)}]}, None
        outcome = cached if cached is not None else discover_skills(skill_roots(config))
        disabled = disabled_skill_paths(config)
        entry: SkillsListEntry = {
            "cwd": cwd,
            "skills": [skill.to_wire(enabled=skill.path not in disabled) for skill in outcome.skills],
            "errors": [error.to_wire() for error in outcome.errors],
        }
        return entry, outcome

    async def skills_list(self, ctx: RequestContext, params: SkillsListParams) -> SkillsListResponse:
        cwds = [_path_param(cwd) for cwd in params["cwds"] or []]
        if not cwds:
            cwds = [str(self._server_cwd())]
        force = bool(params["forceReload"])
        data: list[SkillsListEntry] = []
        for cwd in cwds:
            cached = None if force else self._skills.get(cwd)
            entry, outcome = await trio.to_thread.run_sync(self._skills_entry, cwd, cached)
            if outcome is not None:
                self._skills[cwd] = outcome
            data.append(entry)
        return {"data": data}

    async def skills_config_write(
        self, ctx: RequestContext, params: SkillsConfigWriteParams
    ) -> SkillsConfigWriteResponse:
        from ..core.config import CONFIG_TOML_FILE
        from ..core.skills import SkillConfigWriteError, set_skill_enabled

        path = _path_param(params["path"])
        enabled = params["enabled"]
        config_file = self.app.codex_home / CONFIG_TOML_FILE
        try:
            changed = await trio.to_thread.run_sync(set_skill_enabled, config_file, path, enabled)
        except SkillConfigWriteError as exc:
            raise _internal(f"failed to update skill settings: {exc}") from None
        self._skills.clear()
        if changed:
            # Threads started from now on see the file as it is now, as in the reference.
            self.app.reload_config()
        return {"effectiveEnabled": enabled}

    # ---- apps ----------------------------------------------------------------------------------

    async def app_list(self, ctx: RequestContext, params: AppsListParams) -> AppsListResponse:
        from ..core.features import resolve_features

        config = await self._reloaded_config()
        # Through the resolver: the deprecated `connectors` switch turns apps on too.
        if resolve_features(config).enabled.get("apps"):
            raise _internal(f"failed to list apps: {APPS_UNSUPPORTED}")
        return {"data": [], "nextCursor": None}

    # ---- MCP servers ---------------------------------------------------------------------------

    async def mcp_server_status(
        self, ctx: RequestContext, params: ListMcpServerStatusParams
    ) -> ListMcpServerStatusResponse:
        from ..core.models import CursorError, next_cursor, page_bounds

        servers = _mcp_servers(await self._reloaded_config())
        # The reference connects to enabled servers to list their tools, and asks a disabled HTTP
        # server without a bearer token whether it supports OAuth.
        needs_connection = [
            name for name, server in servers.items()
            if _enabled(server) or (_is_http(server) and "bearer_token_env_var" not in server)
        ]
        if needs_connection:
            raise _internal(f"{MCP_UNSUPPORTED} (cannot reach: {', '.join(needs_connection)})")
        statuses: list[McpServerStatus] = [
            {
                "name": name,
                "tools": {},
                "resources": [],
                "resourceTemplates": [],
                "authStatus": "bearerToken" if _is_http(server) else "unsupported",
            }
            for name, server in servers.items()
        ]
        try:
            start, end = page_bounds(params["cursor"], params["limit"], len(statuses), "MCP servers")
        except CursorError as exc:
            raise RpcError(str(exc)) from None
        return {"data": statuses[start:end], "nextCursor": next_cursor(end, len(statuses))}

    async def mcp_server_reload(self, ctx: RequestContext, params: object) -> dict[str, Any]:
        servers = _mcp_servers(await self._reloaded_config())
        enabled = [name for name, server in servers.items() if _enabled(server)]
        if enabled:
            names = ", ".join(enabled)
            raise _internal(f"failed to reload MCP servers: {MCP_UNSUPPORTED} (configured: {names})")
        self.app.reload_config()
        return {}

    async def mcp_oauth_login(
        self, ctx: RequestContext, params: McpServerOauthLoginParams
    ) -> dict[str, Any]:
        name = params["name"]
        server = _mcp_servers(await self._reloaded_config()).get(name)
        if server is None:
            raise RpcError(f"No MCP server named '{name}' found.")
        if not _is_http(server):
            raise RpcError("OAuth login is only supported for streamable HTTP servers.")
        raise _internal(f"failed to login to MCP server '{name}': {MCP_OAUTH_UNSUPPORTED}")

    # ---- feedback/upload -----------------------------------------------------------------------

    async def feedback_upload(self, ctx: RequestContext, params: FeedbackUploadParams) -> dict[str, Any]:
        from .threads import check_thread_id

        config = self.app.config
        feedback = config.raw.get("feedback") if config is not None else None
        if isinstance(feedback, dict) and feedback.get("enabled") is False:
            raise RpcError("sending feedback is disabled by configuration")
        if params["threadId"] is not None:
            check_thread_id(params["threadId"])
        raise _internal(f"failed to upload feedback: {FEEDBACK_UNSUPPORTED}")


def _mcp_servers(config: Config) -> dict[str, Mapping[str, Any]]:
    """``[mcp_servers.<name>]`` tables, by name."""
    table = config.raw.get("mcp_servers")
    if not isinstance(table, dict):
        return {}
    return {name: server for name, server in sorted(table.items()) if isinstance(server, dict)}


def _enabled(server: Mapping[str, Any]) -> bool:
    return server.get("enabled") is not False


def _is_http(server: Mapping[str, Any]) -> bool:
    return "url" in server and "command" not in server
