"""Wire types of the utility methods: ``fuzzyFileSearch``, v1 ``gitDiffToRemote`` and v1
``execOneOffCommand``."""

# No ``from __future__ import annotations`` here: TypedDict only sees NotRequired in evaluated
# annotations.
import sys
from typing import Annotated, Literal, TypedDict

from ..rpc.decode import U32, U64, Tagged

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired


class FuzzyFileSearchParams(TypedDict):
    query: str
    roots: list[str]
    cancellationToken: str | None


class FuzzyFileSearchResult(TypedDict):
    root: str
    path: str
    file_name: str
    score: Annotated[int, U32]
    indices: list[int] | None


class FuzzyFileSearchResponse(TypedDict):
    files: list[FuzzyFileSearchResult]


class GitDiffToRemoteParams(TypedDict):
    cwd: str


class GitDiffToRemoteResponse(TypedDict):
    sha: str
    diff: str


# v1 sandbox policies: kebab-case types, snake_case fields; an absent field takes its default but an
# explicit null is refused (serde ``default``, not ``Option``).
class DangerFullAccessPolicyV1(TypedDict):
    type: Literal["danger-full-access"]


class ReadOnlyPolicyV1(TypedDict):
    type: Literal["read-only"]


class ExternalSandboxPolicyV1(TypedDict):
    type: Literal["external-sandbox"]
    network_access: NotRequired[Literal["restricted", "enabled"]]


class WorkspaceWritePolicyV1(TypedDict):
    type: Literal["workspace-write"]
    writable_roots: NotRequired[list[str]]
    network_access: NotRequired[bool]
    exclude_tmpdir_env_var: NotRequired[bool]
    exclude_slash_tmp: NotRequired[bool]


SandboxPolicyV1 = Annotated[
    DangerFullAccessPolicyV1 | ReadOnlyPolicyV1 | ExternalSandboxPolicyV1 | WorkspaceWritePolicyV1,
    Tagged("SandboxPolicy"),
]


class ExecOneOffCommandParams(TypedDict):
    command: list[str]
    timeoutMs: Annotated[int, U64] | None
    cwd: str | None
    sandboxPolicy: SandboxPolicyV1 | None


class ExecOneOffCommandResponse(TypedDict):
    exitCode: int
    stdout: str
    stderr: str
