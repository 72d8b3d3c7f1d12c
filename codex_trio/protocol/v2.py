"""Wire types of the v2 thread and turn API (params decoded by the router; results built by processors)."""

# No ``from __future__ import annotations``: with evaluated annotations a TypedDict is built without
# compiling each one from a string, about twice as fast, and every server start builds these.
from typing import Annotated, Any, Literal, TypedDict

from ..rpc.decode import U32, Tagged

AskForApproval = Literal["untrusted", "on-failure", "on-request", "never"]
SandboxMode = Literal["read-only", "workspace-write", "danger-full-access"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
ReasoningSummary = Literal["auto", "concise", "detailed", "none"]
Personality = Literal["friendly", "pragmatic"]
ThreadSortKey = Literal["created_at", "updated_at"]
ModeKind = Literal["plan", "code", "pair_programming", "execute", "custom"]
ThreadSourceKind = Literal[
    "cli", "vscode", "exec", "appServer", "subAgent", "subAgentReview", "subAgentCompact",
    "subAgentThreadSpawn", "subAgentOther", "unknown",
]


class ByteRange(TypedDict):
    start: Annotated[int, U32]
    end: Annotated[int, U32]


class TextElement(TypedDict):
    byteRange: ByteRange
    placeholder: str | None


class TextInput(TypedDict):
    type: Literal["text"]
    text: str
    text_elements: list[TextElement] | None


class ImageInput(TypedDict):
    type: Literal["image"]
    url: str


class LocalImageInput(TypedDict):
    type: Literal["localImage"]
    path: str


class SkillInput(TypedDict):
    type: Literal["skill"]
    name: str
    path: str


class MentionInput(TypedDict):
    type: Literal["mention"]
    name: str
    path: str


UserInput = Annotated[
    TextInput | ImageInput | LocalImageInput | SkillInput | MentionInput, Tagged("UserInput")
]


class DangerFullAccessPolicy(TypedDict):
    type: Literal["dangerFullAccess"]


class ReadOnlyPolicy(TypedDict):
    type: Literal["readOnly"]


class ExternalSandboxPolicy(TypedDict):
    type: Literal["externalSandbox"]
    networkAccess: Literal["restricted", "enabled"] | None


class WorkspaceWritePolicy(TypedDict):
    type: Literal["workspaceWrite"]
    writableRoots: list[str] | None
    networkAccess: bool | None
    excludeTmpdirEnvVar: bool | None
    excludeSlashTmp: bool | None


SandboxPolicy = Annotated[
    DangerFullAccessPolicy | ReadOnlyPolicy | ExternalSandboxPolicy | WorkspaceWritePolicy,
    Tagged("SandboxPolicy"),
]


class CollaborationSettings(TypedDict):
    model: str
    reasoning_effort: ReasoningEffort | None
    developer_instructions: str | None


class CollaborationMode(TypedDict):
    mode: ModeKind
    settings: CollaborationSettings


class DynamicToolSpec(TypedDict):
    name: str
    description: str
    inputSchema: Any


class ThreadOverrides(TypedDict):
    model: str | None
    modelProvider: str | None
    cwd: str | None
    approvalPolicy: AskForApproval | None
    sandbox: SandboxMode | None
    config: dict[str, Any] | None
    baseInstructions: str | None
    developerInstructions: str | None


class ThreadStartParams(ThreadOverrides):
    personality: Personality | None
    ephemeral: bool | None
    dynamicTools: list[DynamicToolSpec] | None
    experimentalRawEvents: bool | None


class ThreadResumeParams(ThreadOverrides):
    threadId: str
    history: list[Any] | None
    path: str | None
    personality: Personality | None


class ThreadForkParams(ThreadOverrides):
    threadId: str
    path: str | None


class ThreadIdParams(TypedDict):
    threadId: str


class ThreadReadParams(TypedDict):
    threadId: str
    includeTurns: bool | None


class ThreadListParams(TypedDict):
    cursor: str | None
    limit: Annotated[int, U32] | None
    sortKey: ThreadSortKey | None
    modelProviders: list[str] | None
    sourceKinds: list[ThreadSourceKind] | None
    archived: bool | None


class ThreadLoadedListParams(TypedDict):
    cursor: str | None
    limit: Annotated[int, U32] | None


class ThreadSetNameParams(TypedDict):
    threadId: str
    name: str


class ThreadRollbackParams(TypedDict):
    threadId: str
    numTurns: Annotated[int, U32]


class TurnStartParams(TypedDict):
    threadId: str
    input: list[UserInput]
    cwd: str | None
    approvalPolicy: AskForApproval | None
    sandboxPolicy: SandboxPolicy | None
    model: str | None
    effort: ReasoningEffort | None
    summary: ReasoningSummary | None
    personality: Personality | None
    outputSchema: Any
    collaborationMode: CollaborationMode | None


class TurnInterruptParams(TypedDict):
    threadId: str
    turnId: str


class TurnError(TypedDict):
    message: str
    codexErrorInfo: Any
    additionalDetails: str | None


TurnStatus = Literal["completed", "interrupted", "failed", "inProgress"]


class Turn(TypedDict):
    id: str
    items: list[Any]
    status: TurnStatus
    error: TurnError | None


class GitInfo(TypedDict):
    sha: str | None
    branch: str | None
    originUrl: str | None


class Thread(TypedDict):
    id: str
    preview: str
    modelProvider: str
    createdAt: int
    updatedAt: int
    path: str | None
    cwd: str
    cliVersion: str
    source: Any
    gitInfo: GitInfo | None
    turns: list[Turn]
