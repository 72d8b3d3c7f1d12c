"""The config API: ``config/read``, ``config/value/write``, ``config/batchWrite``,
``configRequirements/read`` and the v1 ``getUserSavedConfig`` / ``setDefaultModel``.

Like the reference, every request reads the files again (another program may have changed them), so
answers always describe what is on disk. A successful write reloads the server's configuration, so
threads started afterwards use it.

The handlers do their file work without awaiting anything: a read-check-write cannot interleave with
another request's. They also run in one sequence per client, so edits land in the order they were sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..core.config import (
    ConfigError,
    ConfigLayer,
    effective_table,
    load_config,
    load_config_layers,
    load_requirements,
    parse_cli_overrides,
    toml_to_json,
    validate_config_value,
)
from ..protocol.config import (
    ConfigBatchWriteParams,
    ConfigLayerJson,
    ConfigLayerMetadata,
    ConfigReadParams,
    ConfigReadResponse,
    ConfigRequirementsJson,
    ConfigRequirementsReadResponse,
    ConfigValueWriteParams,
    ConfigWriteResponse,
    GetUserSavedConfigResponse,
    SetDefaultModelParams,
    SetDefaultModelResponse,
)
from ..router import Method, RequestContext
from ..rpc.errors import INTERNAL_ERROR, RpcError

if TYPE_CHECKING:
    from ..app import AppServer
    from ..core.config_edit import ConfigWriteError, ValueEdit

# The typed part of the v2 Config, in the reference's order; other keys follow as they are.
_PROFILE_FIELDS = (
    "model",
    "model_provider",
    "approval_policy",
    "model_reasoning_effort",
    "model_reasoning_summary",
    "model_verbosity",
    "web_search",
    "chatgpt_base_url",
)
_CONFIG_FIELDS = (
    "model",
    "review_model",
    "model_context_window",
    "model_auto_compact_token_limit",
    "model_provider",
    "approval_policy",
    "sandbox_mode",
    "sandbox_workspace_write",
    "forced_chatgpt_workspace_id",
    "forced_login_method",
    "web_search",
    "tools",
    "profile",
    "profiles",
    "instructions",
    "developer_instructions",
    "compact_prompt",
    "model_reasoning_effort",
    "model_reasoning_summary",
    "model_verbosity",
    "analytics",
)
_SEQUENCE = "config"


def _internal(message: str) -> RpcError:
    return RpcError(message, code=INTERNAL_ERROR)


def _write_error(err: ConfigWriteError) -> RpcError:
    return RpcError(err.message, data={"config_write_error_code": err.code})


# ---- shaping the parsed configuration for the wire --------------------------------------------


def _tools_web_search(tools: Mapping[str, Any]) -> Any:
    # `web_search_request` is the older name of the same setting.
    return tools["web_search"] if "web_search" in tools else tools.get("web_search_request")


def _sandbox_workspace_write(table: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "writable_roots": list(table.get("writable_roots", [])),
        "network_access": table.get("network_access", False),
        "exclude_tmpdir_env_var": table.get("exclude_tmpdir_env_var", False),
        "exclude_slash_tmp": table.get("exclude_slash_tmp", False),
    }


def _with_extras(table: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The typed fields (null when unset), then every other key of ``table`` as it is."""
    names = tuple(fields)
    out = {name: toml_to_json(table.get(name)) for name in names}
    out.update({k: toml_to_json(v) for k, v in table.items() if k not in names})
    return out


def api_config(effective: Mapping[str, Any]) -> dict[str, Any]:
    """``config/read``'s ``config``: the merged table as the v2 Config (typed fields first)."""
    out = _with_extras(effective, _CONFIG_FIELDS)
    sww = effective.get("sandbox_workspace_write")
    out["sandbox_workspace_write"] = (
        toml_to_json(_sandbox_workspace_write(sww)) if isinstance(sww, dict) else None
    )
    tools = effective.get("tools")
    out["tools"] = (
        {"web_search": _tools_web_search(tools), "view_image": tools.get("view_image")}
        if isinstance(tools, dict)
        else None
    )
    profiles = effective.get("profiles") or {}
    out["profiles"] = {name: _with_extras(p, _PROFILE_FIELDS) for name, p in profiles.items()}
    analytics = effective.get("analytics")
    out["analytics"] = _with_extras(analytics, ("enabled",)) if isinstance(analytics, dict) else None
    return out


def origins(layers: Sequence[ConfigLayer]) -> dict[str, ConfigLayerMetadata]:
    """For every value (leaves; array elements by index) the enabled layer that sets it last."""
    out: dict[str, ConfigLayerMetadata] = {}
    for layer in layers:
        if not layer.enabled:
            continue
        meta: ConfigLayerMetadata = {"name": layer.name_json(), "version": layer.version}

        def record(node: Any, path: list[str], meta: ConfigLayerMetadata = meta) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    record(value, [*path, key])
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    record(value, [*path, str(index)])
            elif path:
                out[".".join(path)] = meta

        record(layer.config, [])
    return out


def layer_json(layer: ConfigLayer) -> ConfigLayerJson:
    out: ConfigLayerJson = {
        "name": layer.name_json(),
        "version": layer.version,
        "config": toml_to_json(layer.config),
    }
    if layer.disabled_reason is not None:
        out["disabledReason"] = layer.disabled_reason
    return out


def user_saved_config(table: Mapping[str, Any]) -> dict[str, Any]:
    """v1 ``UserSavedConfig`` of a merged table."""
    sww = table.get("sandbox_workspace_write")
    tools = table.get("tools")
    profiles = table.get("profiles") or {}
    return {
        "approvalPolicy": table.get("approval_policy"),
        "sandboxMode": table.get("sandbox_mode"),
        "sandboxSettings": (
            {
                "writableRoots": list(sww.get("writable_roots", [])),
                "networkAccess": sww.get("network_access", False),
                "excludeTmpdirEnvVar": sww.get("exclude_tmpdir_env_var", False),
                "excludeSlashTmp": sww.get("exclude_slash_tmp", False),
            }
            if isinstance(sww, dict)
            else None
        ),
        "forcedChatgptWorkspaceId": table.get("forced_chatgpt_workspace_id"),
        "forcedLoginMethod": table.get("forced_login_method"),
        "model": table.get("model"),
        "modelReasoningEffort": table.get("model_reasoning_effort"),
        "modelReasoningSummary": table.get("model_reasoning_summary"),
        "modelVerbosity": table.get("model_verbosity"),
        "tools": (
            {"webSearch": _tools_web_search(tools), "viewImage": tools.get("view_image")}
            if isinstance(tools, dict)
            else None
        ),
        "profile": table.get("profile"),
        "profiles": {
            name: {
                "model": p.get("model"),
                "modelProvider": p.get("model_provider"),
                "approvalPolicy": p.get("approval_policy"),
                "modelReasoningEffort": p.get("model_reasoning_effort"),
                "modelReasoningSummary": p.get("model_reasoning_summary"),
                "modelVerbosity": p.get("model_verbosity"),
                "chatgptBaseUrl": p.get("chatgpt_base_url"),
            }
            for name, p in profiles.items()
        },
    }


def requirements_json(path: Path) -> ConfigRequirementsJson | None:
    requirements = load_requirements(path)
    if requirements is None:
        return None
    policies = requirements.allowed_approval_policies
    modes = requirements.allowed_sandbox_modes
    return cast(
        ConfigRequirementsJson,
        {
            "allowedApprovalPolicies": list(policies) if policies is not None else None,
            # The protocol has no name for an external sandbox: the reference leaves it out.
            "allowedSandboxModes": (
                [m for m in modes if m != "external-sandbox"] if modes is not None else None
            ),
            "enforceResidency": requirements.enforce_residency,
        },
    )


# ---- the processor ----------------------------------------------------------------------------


class ConfigProcessor:
    def __init__(self, app: AppServer) -> None:
        self.app = app
        self.requirements_path = app.options.requirements_path

    def methods(self) -> list[Method]:
        return [
            Method("config/read", ConfigReadParams, self.read, sequence=_SEQUENCE),
            Method("config/value/write", ConfigValueWriteParams, self.value_write, sequence=_SEQUENCE),
            Method("config/batchWrite", ConfigBatchWriteParams, self.batch_write, sequence=_SEQUENCE),
            Method("configRequirements/read", None, self.requirements_read, sequence=_SEQUENCE),
            Method("getUserSavedConfig", None, self.get_user_saved_config, sequence=_SEQUENCE),
            Method("setDefaultModel", SetDefaultModelParams, self.set_default_model, sequence=_SEQUENCE),
        ]

    def _cli_overrides(self, context: str) -> list[tuple[str, object]]:
        try:
            return parse_cli_overrides(self.app.options.cli_overrides)
        except ConfigError as err:
            raise _internal(f"{context}: {err}") from None

    def _layers(self, context: str, *, with_overrides: bool = True) -> tuple[ConfigLayer, ...]:
        overrides = self._cli_overrides(context) if with_overrides else []
        try:
            return load_config_layers(
                self.app.codex_home,
                cli_overrides=overrides,
                env=self.app.env,
                requirements_path=self.requirements_path,
            )
        except ConfigError as err:
            raise _internal(f"{context}: {err}") from None

    async def read(self, ctx: RequestContext, params: ConfigReadParams) -> ConfigReadResponse:
        context = "failed to read configuration layers"
        cwd = params["cwd"]
        if cwd is not None:
            # As seen from a directory: the whole configuration of a thread there must load.
            overrides = self._cli_overrides(context)
            try:
                config = load_config(
                    self.app.codex_home,
                    cli_overrides=overrides,
                    cwd=Path(cwd),
                    env=self.app.env,
                    requirements_path=self.requirements_path,
                )
            except ConfigError as err:
                raise _internal(f"{context}: {err}") from None
            layers = config.layers
            effective = effective_table(layers)
        else:
            layers = self._layers(context)
            effective = effective_table(layers)
            try:
                validate_config_value(effective)
            except ConfigError as err:
                raise _internal(f"invalid configuration: {err.keyed_message()}") from None
        result: ConfigReadResponse = {"config": api_config(effective), "origins": origins(layers)}
        if params.get("includeLayers"):
            result["layers"] = [layer_json(layer) for layer in reversed(layers)]
        return result

    def _write(
        self, edits: Sequence[ValueEdit], file_path: str | None, expected_version: str | None
    ) -> ConfigWriteResponse:
        from ..core.config_edit import ConfigServiceError, ConfigWriteError, write_user_config

        overrides = self._cli_overrides("failed to load configuration")
        try:
            result = write_user_config(
                self.app.codex_home,
                edits,
                file_path=file_path,
                expected_version=expected_version,
                cli_overrides=overrides,
                env=self.app.env,
            )
        except ConfigWriteError as err:
            raise _write_error(err) from None
        except ConfigServiceError as err:
            raise _internal(str(err)) from None
        self.app.reload_config()
        return {
            "status": "okOverridden" if result.overridden is not None else "ok",
            "version": result.version,
            "filePath": str(result.file_path),
            "overriddenMetadata": result.overridden,
        }

    async def value_write(
        self, ctx: RequestContext, params: ConfigValueWriteParams
    ) -> ConfigWriteResponse:
        from ..core.config_edit import ValueEdit

        edit = ValueEdit(params["keyPath"], params["value"], params["mergeStrategy"])
        return self._write([edit], params["filePath"], params["expectedVersion"])

    async def batch_write(
        self, ctx: RequestContext, params: ConfigBatchWriteParams
    ) -> ConfigWriteResponse:
        from ..core.config_edit import ValueEdit

        edits = [ValueEdit(e["keyPath"], e["value"], e["mergeStrategy"]) for e in params["edits"]]
        return self._write(edits, params["filePath"], params["expectedVersion"])

    async def requirements_read(
        self, ctx: RequestContext, params: None
    ) -> ConfigRequirementsReadResponse:
        context = "failed to read configuration layers"
        self._layers(context)
        try:
            path = self.requirements_path
            return {"requirements": requirements_json(path) if path is not None else None}
        except ConfigError as err:
            raise _internal(f"{context}: {err}") from None

    async def get_user_saved_config(
        self, ctx: RequestContext, params: None
    ) -> GetUserSavedConfigResponse:
        # The saved configuration: the files only, without the server's -c overrides.
        layers = self._layers("failed to load configuration", with_overrides=False)
        table = effective_table(layers)
        try:
            validate_config_value(table)
        except ConfigError as err:
            raise _internal(f"failed to parse config.toml: {err.keyed_message()}") from None
        return {"config": user_saved_config(table)}

    async def set_default_model(
        self, ctx: RequestContext, params: SetDefaultModelParams
    ) -> SetDefaultModelResponse:
        from ..core.config_edit import ConfigServiceError, set_default_model

        config = self.app.config
        profile = config.active_profile if config is not None else None
        try:
            set_default_model(
                self.app.codex_home, params["model"], params["reasoningEffort"], profile
            )
        except ConfigServiceError as err:
            raise _internal(str(err)) from None
        self.app.reload_config()
        return {}
