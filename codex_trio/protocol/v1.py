"""Wire types of the legacy v1 conversation API (``newConversation``, ``sendUserMessage``...) and of the
v1 approval requests the server sends for conversations driven through it."""

# No ``from __future__ import annotations``: with evaluated annotations a TypedDict is built without
# compiling each one from a string, about twice as fast, and every server start builds these.
import os
import sys
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypedDict

from ..rpc.decode import USIZE, Tagged, Untagged
from ..rpc.errors import invalid_params
from .v2 import AskForApproval, ReasoningEffort, ReasoningSummary, SandboxMode

# typing_extensions costs start-up time; Python 3.11's typing has NotRequired.
if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired

# ---- params (decoded by the router) -----------------------------------------------------------
#
# Ids are strings here: the reference decodes them as UUIDs, so the processor checks them and answers
# with the uuid parser's wording itself (the decoder has no UUID type).


class NewConversationParams(TypedDict):
    model: str | None
    modelProvider: str | None
    profile: str | None
    cwd: str | None
    approvalPolicy: AskForApproval | None
    sandbox: SandboxMode | None
    config: dict[str, Any] | None
    baseInstructions: str | None
    developerInstructions: str | None
    compactPrompt: str | None
    includeApplyPatchTool: bool | None


class V1ByteRange(TypedDict):
    start: Annotated[int, USIZE]
    end: Annotated[int, USIZE]


class V1TextElement(TypedDict):
    byteRange: V1ByteRange
    placeholder: str | None


class TextData(TypedDict):
    text: str
    text_elements: list[V1TextElement] | None


class ImageData(TypedDict):
    image_url: str


class LocalImageData(TypedDict):
    path: str


class TextInputItem(TypedDict):
    type: Literal["text"]
    data: TextData


class ImageInputItem(TypedDict):
    type: Literal["image"]
    data: ImageData


class LocalImageInputItem(TypedDict):
    type: Literal["localImage"]
    data: LocalImageData


InputItem = Annotated[TextInputItem | ImageInputItem | LocalImageInputItem, Tagged("InputItem")]


# The core's SandboxPolicy, tagged in kebab-case with snake_case fields (v2 renamed it to camelCase).
# An absent field takes its default but an explicit null is refused (serde ``default``, not
# ``Option``), as the reference answers sendUserTurn and execOneOffCommand alike.
class DangerFullAccessSandbox(TypedDict):
    type: Literal["danger-full-access"]


class ReadOnlySandbox(TypedDict):
    type: Literal["read-only"]


class ExternalSandbox(TypedDict):
    type: Literal["external-sandbox"]
    network_access: NotRequired[Literal["restricted", "enabled"]]


class WorkspaceWriteSandbox(TypedDict):
    type: Literal["workspace-write"]
    writable_roots: NotRequired[list[str]]
    network_access: NotRequired[bool]
    exclude_tmpdir_env_var: NotRequired[bool]
    exclude_slash_tmp: NotRequired[bool]


V1SandboxPolicy = Annotated[
    DangerFullAccessSandbox | ReadOnlySandbox | ExternalSandbox | WorkspaceWriteSandbox,
    Tagged("SandboxPolicy"),
]


def v2_sandbox_policy(policy: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 sandbox policy in its v2 spelling, defaults filled in. Writable roots must be absolute (the
    reference's ``AbsolutePathBuf``) and are normalized as it normalizes them."""
    kind = policy["type"]
    if kind == "danger-full-access":
        return {"type": "dangerFullAccess"}
    if kind == "read-only":
        return {"type": "readOnly"}
    if kind == "external-sandbox":
        return {"type": "externalSandbox", "networkAccess": policy.get("network_access") or "restricted"}
    roots = policy.get("writable_roots") or []
    for root in roots:
        if not os.path.isabs(root):
            raise invalid_params("AbsolutePathBuf deserialized without a base path")
    return {
        "type": "workspaceWrite",
        "writableRoots": [os.path.normpath(r) for r in roots],
        "networkAccess": bool(policy.get("network_access")),
        "excludeTmpdirEnvVar": bool(policy.get("exclude_tmpdir_env_var")),
        "excludeSlashTmp": bool(policy.get("exclude_slash_tmp")),
    }


class ConversationIdParams(TypedDict):
    conversationId: str


class AddConversationListenerParams(TypedDict):
    conversationId: str
    experimentalRawEvents: bool | None


class RemoveConversationListenerParams(TypedDict):
    subscriptionId: str


class SendUserMessageParams(TypedDict):
    conversationId: str
    items: list[InputItem]


class SendUserTurnParams(TypedDict):
    conversationId: str
    items: list[InputItem]
    cwd: str
    approvalPolicy: AskForApproval
    sandboxPolicy: V1SandboxPolicy
    model: str
    effort: ReasoningEffort | None
    summary: ReasoningSummary
    outputSchema: Any


class SummaryByPath(TypedDict):
    rolloutPath: str


class SummaryById(TypedDict):
    conversationId: str


GetConversationSummaryParams = Annotated[
    SummaryByPath | SummaryById, Untagged("GetConversationSummaryParams")
]


class ListConversationsParams(TypedDict):
    pageSize: Annotated[int, USIZE] | None
    cursor: str | None
    modelProviders: list[str] | None


class ResumeConversationParams(TypedDict):
    path: str | None
    conversationId: str | None
    history: list[Any] | None
    overrides: NewConversationParams | None


class ForkConversationParams(TypedDict):
    path: str | None
    conversationId: str | None
    overrides: NewConversationParams | None


class ArchiveConversationParams(TypedDict):
    conversationId: str
    rolloutPath: str


# ---- results and notifications -------------------------------------------------------------------


class NewConversationResponse(TypedDict):
    conversationId: str
    model: str
    reasoningEffort: ReasoningEffort | None
    rolloutPath: str


class AddConversationSubscriptionResponse(TypedDict):
    subscriptionId: str


class InterruptConversationResponse(TypedDict):
    abortReason: Literal["interrupted", "replaced", "review_ended"]


class ConversationGitInfo(TypedDict):
    sha: str | None
    branch: str | None
    origin_url: str | None


class ConversationSummary(TypedDict):
    conversationId: str
    path: str
    preview: str
    # The session_meta's own timestamp (milliseconds), and the rollout's mtime (seconds), RFC 3339.
    timestamp: str | None
    updatedAt: str | None
    modelProvider: str
    cwd: str
    cliVersion: str
    source: Any
    gitInfo: ConversationGitInfo | None


class ListConversationsResponse(TypedDict):
    items: list[ConversationSummary]
    nextCursor: str | None


class ResumedConversationResponse(TypedDict):
    """resumeConversation's and forkConversation's result."""

    conversationId: str
    model: str
    # The stored events (EventMsg dicts) of the conversation, oldest first.
    initialMessages: list[dict[str, Any]] | None
    rolloutPath: str


class SessionConfiguredNotification(TypedDict):
    sessionId: str
    model: str
    reasoningEffort: ReasoningEffort | None
    historyLogId: int
    historyEntryCount: int
    initialMessages: list[dict[str, Any]] | None
    rolloutPath: str


# ---- server -> client requests -------------------------------------------------------------------


class ExecCommandApprovalParams(TypedDict):
    conversationId: str
    callId: str
    command: list[str]
    cwd: str
    reason: str | None
    # The legacy ParsedCommand list (``{"type": "unknown", "cmd": ...}``...).
    parsedCmd: list[dict[str, Any]]


class ApplyPatchApprovalParams(TypedDict):
    conversationId: str
    callId: str
    # Absolute path -> the legacy FileChange (``{"type": "add", "content": ...}``...).
    fileChanges: dict[str, Any]
    reason: str | None
    grantRoot: str | None


# The v1 ReviewDecision: the core's own decision values, which v1 clients answer with directly.
ReviewDecisionName = Literal["approved", "approved_for_session", "denied", "abort"]
