"""Wire types of the utility methods: ``fuzzyFileSearch``, v1 ``gitDiffToRemote`` and v1
``execOneOffCommand``."""

# No ``from __future__ import annotations``, like the other protocol modules: evaluated annotations
# build TypedDicts faster.
from typing import Annotated, TypedDict

from ..rpc.decode import U32, U64
from .v1 import V1SandboxPolicy


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


class ExecOneOffCommandParams(TypedDict):
    command: list[str]
    timeoutMs: Annotated[int, U64] | None
    cwd: str | None
    sandboxPolicy: V1SandboxPolicy | None


class ExecOneOffCommandResponse(TypedDict):
    exitCode: int
    stdout: str
    stderr: str
