"""Wire types of the catalogue methods a client calls to fill its UI: models, collaboration modes,
skills, apps, MCP servers, feedback."""

# No ``from __future__ import annotations`` here: TypedDict only sees NotRequired in evaluated
# annotations.
import sys
from typing import Annotated, Any, TypedDict

from ..rpc.decode import I64, U32

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired


class ModelListParams(TypedDict):
    cursor: str | None
    limit: Annotated[int, U32] | None


class AppsListParams(TypedDict):
    cursor: str | None
    limit: Annotated[int, U32] | None


class AppsListResponse(TypedDict):
    data: list[dict[str, Any]]
    nextCursor: str | None


class ListMcpServerStatusParams(TypedDict):
    cursor: str | None
    limit: Annotated[int, U32] | None


class McpServerStatus(TypedDict):
    name: str
    tools: dict[str, Any]
    resources: list[Any]
    resourceTemplates: list[Any]
    authStatus: str


class ListMcpServerStatusResponse(TypedDict):
    data: list[McpServerStatus]
    nextCursor: str | None


class McpServerOauthLoginParams(TypedDict):
    name: str
    scopes: list[str] | None
    timeoutSecs: Annotated[int, I64] | None


class SkillsListParams(TypedDict):
    # Paths, checked by the handler: the reference's message for a non-string is "expected path string".
    cwds: NotRequired[list[object]]
    forceReload: NotRequired[bool]


class SkillsListEntry(TypedDict):
    cwd: str
    skills: list[dict[str, Any]]
    errors: list[dict[str, str]]


class SkillsListResponse(TypedDict):
    data: list[SkillsListEntry]


class SkillsConfigWriteParams(TypedDict):
    enabled: bool
    # A path, checked by the handler (see SkillsListParams.cwds).
    path: object


class SkillsConfigWriteResponse(TypedDict):
    effectiveEnabled: bool


class FeedbackUploadParams(TypedDict):
    classification: str
    reason: str | None
    threadId: str | None
    includeLogs: bool
