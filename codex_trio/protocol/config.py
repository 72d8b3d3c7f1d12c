"""Wire types of the config API: v2 ``config/*`` and ``configRequirements/read``, and the legacy v1
``getUserSavedConfig`` and ``setDefaultModel``."""

# No ``from __future__ import annotations``: with evaluated annotations a TypedDict is built without
# compiling each one from a string, about twice as fast, and every server start builds these.
from typing import Any, Literal, TypedDict

from .v2 import AskForApproval, ReasoningEffort, SandboxMode

MergeStrategy = Literal["replace", "upsert"]
WriteStatus = Literal["ok", "okOverridden"]


# ---- params (decoded by the router) -----------------------------------------------------------


# Keys that may be missing are declared in a total=False base: with postponed annotations, a
# NotRequired[...] would not reach the TypedDict's required keys.
class _ConfigReadDefaults(TypedDict, total=False):
    # serde(default): may be missing, but not null.
    includeLayers: bool


class ConfigReadParams(_ConfigReadDefaults):
    cwd: str | None


class ConfigValueWriteParams(TypedDict):
    keyPath: str
    # Any JSON value, and required: null is a value here (it removes the key).
    value: object
    mergeStrategy: MergeStrategy
    filePath: str | None
    expectedVersion: str | None


class ConfigEdit(TypedDict):
    keyPath: str
    value: object
    mergeStrategy: MergeStrategy


class ConfigBatchWriteParams(TypedDict):
    edits: list[ConfigEdit]
    filePath: str | None
    expectedVersion: str | None


class SetDefaultModelParams(TypedDict):
    model: str | None
    reasoningEffort: ReasoningEffort | None


# ---- results ----------------------------------------------------------------------------------


class ConfigLayerMetadata(TypedDict):
    name: dict[str, str]
    version: str


class _ConfigLayerOptional(TypedDict, total=False):
    disabledReason: str


class ConfigLayerJson(_ConfigLayerOptional):
    name: dict[str, str]
    version: str
    config: Any


class _ConfigReadOptional(TypedDict, total=False):
    # Left out when the client did not ask for the layers.
    layers: list[ConfigLayerJson]


class ConfigReadResponse(_ConfigReadOptional):
    config: dict[str, Any]
    origins: dict[str, ConfigLayerMetadata]


class ConfigWriteResponse(TypedDict):
    status: WriteStatus
    version: str
    filePath: str
    overriddenMetadata: dict[str, Any] | None


class ConfigRequirementsJson(TypedDict):
    allowedApprovalPolicies: list[AskForApproval] | None
    allowedSandboxModes: list[SandboxMode] | None
    enforceResidency: Literal["us"] | None


class ConfigRequirementsReadResponse(TypedDict):
    requirements: ConfigRequirementsJson | None


class GetUserSavedConfigResponse(TypedDict):
    config: dict[str, Any]


class SetDefaultModelResponse(TypedDict):
    pass
