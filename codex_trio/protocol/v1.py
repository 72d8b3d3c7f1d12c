"""Wire types of the legacy v1 conversation API (``newConversation``, ``sendUserMessage``...) and of the
v1 approval requests the server sends for conversations driven through it."""

# No ``from __future__ import annotations``: with evaluated annotations a TypedDict is built without
# compiling each one from a string, about twice as fast, and every server start builds these.
from typing import Annotated, Any, Literal, TypedDict

from ..rpc.decode import USIZE, Tagged, Untagged
from .v2 import AskForApproval, ReasoningEffort, ReasoningSummary, SandboxMode

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


class DangerFullAccessSandbox(TypedDict):
    type: Literal["danger-full-access"]


class ReadOnlySandbox(TypedDict):
    type: Literal["read-only"]


class ExternalSandbox(TypedDict):
    type: Literal["external-sandbox"]
    network_access: Literal["restricted", "enabled"] | None


class WorkspaceWriteSandbox(TypedDict):
    type: Literal["workspace-write"]
    writable_roots: list[str] | None
    network_access: bool | None
    exclude_tmpdir_env_var: bool | None
    exclude_slash_tmp: bool | None


# The core's SandboxPolicy, tagged in kebab-case (v2 renamed it to camelCase).
V1SandboxPolicy = Annotated[
    DangerFullAccessSandbox | ReadOnlySandbox | ExternalSandbox | WorkspaceWriteSandbox,
    Tagged("SandboxPolicy"),
]


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
