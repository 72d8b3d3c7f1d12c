"""``gitDiffToRemote``: the commit on a remote closest to HEAD, and the working tree's diff against it.

The reference shells out to git for this, and so do we, with the same commands in the same order (so
the diff text, its quoting and its edge cases are git's own): find the remotes (origin first), build
the candidate branches (the current one, the default one, then remote branches that contain HEAD),
keep the remote commit of the candidate fewest commits behind HEAD, then diff the working tree against
it and append a ``--no-index`` diff for each untracked file.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import trio

# Each git command gets this long, like the reference's; a command that takes longer counts as failed.
GIT_COMMAND_TIMEOUT = 5.0
# Untracked files are diffed this many at a time (the reference starts them all at once).
UNTRACKED_DIFF_CONCURRENCY = 8


@dataclass(frozen=True)
class GitDiffToRemote:
    sha: str
    diff: str


@dataclass(frozen=True)
class _Output:
    code: int
    stdout: bytes


async def _kill(process: trio.Process) -> None:
    process.kill()


class _Git:
    def __init__(self, cwd: str, env: Mapping[str, str]) -> None:
        self.cwd = cwd
        self.env = dict(env)

    async def run(self, *args: str) -> _Output | None:
        """git's exit code and output; None when it could not run or ran out of time."""
        with trio.move_on_after(GIT_COMMAND_TIMEOUT):
            try:
                done = await trio.run_process(
                    ["git", *args],
                    cwd=self.cwd,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    capture_stdout=True,
                    stderr=subprocess.DEVNULL,
                    check=False,
                    deliver_cancel=_kill,
                )
            except (OSError, ValueError):
                return None
            return _Output(done.returncode, done.stdout)
        return None

    async def text(self, *args: str) -> str | None:
        """git's output when it succeeded and is UTF-8."""
        out = await self.run(*args)
        if out is None or out.code != 0:
            return None
        try:
            return out.stdout.decode("utf-8")
        except UnicodeDecodeError:
            return None


def _components(path: str) -> list[str]:
    parts = ["/"] if path.startswith("/") else []
    parts.extend(p for p in path.split("/") if p and p != ".")
    return parts


def repo_root(cwd: str, base_dir: str) -> str | None:
    """The nearest directory at or above ``cwd`` holding a ``.git`` (a relative ``cwd`` is taken from
    ``base_dir``, and its relative parents too, down to ``base_dir`` itself)."""
    parts = _components(cwd)
    while True:
        candidate = os.path.join(base_dir, *parts)
        if os.path.exists(os.path.join(candidate, ".git")):
            return candidate
        if not parts or parts == ["/"]:
            return None
        parts.pop()


async def _remotes(git: _Git) -> list[str] | None:
    text = await git.text("remote")
    if text is None:
        return None
    remotes = text.splitlines()
    if "origin" in remotes:
        remotes.remove("origin")
        remotes.insert(0, "origin")
    return remotes


async def _default_branch(git: _Git) -> str | None:
    for remote in await _remotes(git) or []:
        symref = await git.text("symbolic-ref", "--quiet", f"refs/remotes/{remote}/HEAD")
        if symref is not None and "/" in symref.strip():
            return symref.strip().rsplit("/", 1)[1]
        shown = await git.text("remote", "show", remote)
        if shown is not None:
            for line in shown.splitlines():
                line = line.strip()
                if line.startswith("HEAD branch:"):
                    name = line[len("HEAD branch:") :].strip()
                    if name:
                        return name
    for candidate in ("main", "master"):
        verified = await git.run("rev-parse", "--verify", "--quiet", f"refs/heads/{candidate}")
        if verified is not None and verified.code == 0:
            return candidate
    return None


async def _branch_ancestry(git: _Git) -> list[str]:
    current = await git.text("rev-parse", "--abbrev-ref", "HEAD")
    current_branch = current.strip() if current is not None else None
    if current_branch == "HEAD":
        current_branch = None  # detached
    default = await _default_branch(git)
    ancestry: list[str] = []
    for name in (current_branch, default):
        if name is not None and name not in ancestry:
            ancestry.append(name)
    for remote in await _remotes(git) or []:
        listed = await git.text(
            "for-each-ref", "--format=%(refname:short)", "--contains=HEAD", f"refs/remotes/{remote}"
        )
        for line in (listed or "").splitlines():
            short = line.strip()
            prefix = f"{remote}/"
            if short.startswith(prefix) and short[len(prefix) :] and short[len(prefix) :] not in ancestry:
                ancestry.append(short[len(prefix) :])
    return ancestry


async def _remote_sha_and_distance(
    git: _Git, branch: str, remotes: Sequence[str]
) -> tuple[str | None, int] | None:
    """The branch's commit on the first remote that has it, and how many commits HEAD is ahead of the
    branch; None when git could not tell."""
    remote_sha: str | None = None
    remote_ref: str | None = None
    for remote in remotes:
        ref = f"refs/remotes/{remote}/{branch}"
        verified = await git.run("rev-parse", "--verify", "--quiet", ref)
        if verified is None:
            return None
        if verified.code != 0:
            continue
        try:
            remote_sha = verified.stdout.decode("utf-8").strip()
        except UnicodeDecodeError:
            return None
        remote_ref = ref
        break
    counted = await git.run("rev-list", "--count", f"{branch}..HEAD")
    if counted is None or counted.code != 0:
        if remote_ref is None:
            return None
        counted = await git.run("rev-list", "--count", f"{remote_ref}..HEAD")
        if counted is None:
            return None
    if counted.code != 0:
        return None
    try:
        return remote_sha, int(counted.stdout.decode("utf-8").strip())
    except (UnicodeDecodeError, ValueError):
        return None


async def _closest_remote_sha(git: _Git, branches: Sequence[str], remotes: Sequence[str]) -> str | None:
    closest: tuple[str, int] | None = None
    for branch in branches:
        found = await _remote_sha_and_distance(git, branch, remotes)
        if found is None:
            continue
        sha, distance = found
        if sha is None:
            continue  # not on any remote
        if closest is None or distance < closest[1]:
            closest = (sha, distance)
    return closest[0] if closest is not None else None


async def _diff_against(git: _Git, sha: str) -> str | None:
    tracked = await git.run("diff", "--no-textconv", "--no-ext-diff", sha)
    # 1 means "there are differences", not a failure.
    if tracked is None or tracked.code not in (0, 1):
        return None
    try:
        diff = tracked.stdout.decode("utf-8")
    except UnicodeDecodeError:
        return None
    listed = await git.run("ls-files", "--others", "--exclude-standard")
    if listed is None or listed.code != 0:
        return diff
    try:
        untracked = [line for line in listed.stdout.decode("utf-8").splitlines() if line]
    except UnicodeDecodeError:
        return None
    pieces: list[str | None] = [None] * len(untracked)
    limiter = trio.CapacityLimiter(UNTRACKED_DIFF_CONCURRENCY)

    async def one(i: int, path: str) -> None:
        async with limiter:
            # "--" keeps a file named like an option from being read as one.
            out = await git.run(
                "diff", "--no-textconv", "--no-ext-diff", "--binary", "--no-index", "--", os.devnull, path
            )
        if out is not None and out.code in (0, 1):
            # A diff that is not UTF-8 is left out, as the reference does.
            with contextlib.suppress(UnicodeDecodeError):
                pieces[i] = out.stdout.decode("utf-8")

    async with trio.open_nursery() as nursery:
        for i, path in enumerate(untracked):
            nursery.start_soon(one, i, path)
    return diff + "".join(p for p in pieces if p is not None)


async def git_diff_to_remote(cwd: str, *, base_dir: str, env: Mapping[str, str]) -> GitDiffToRemote | None:
    """The diff of the working tree at ``cwd`` against the closest commit that is on a remote, or None
    when there is no repository, no remote commit, or git fails."""
    # An empty cwd names no directory to run git in (the reference's lookup of the repository still
    # starts from the server's directory, but git then cannot start).
    if repo_root(cwd, base_dir) is None or not cwd:
        return None
    git = _Git(os.path.join(base_dir, cwd), env)
    remotes = await _remotes(git)
    if remotes is None:
        return None
    branches = await _branch_ancestry(git)
    sha = await _closest_remote_sha(git, branches, remotes)
    if sha is None:
        return None
    diff = await _diff_against(git, sha)
    if diff is None:
        return None
    return GitDiffToRemote(sha, diff)


def _escape_char(c: str) -> str:
    if c in "\\\"":
        return "\\" + c
    special = {"\t": "\\t", "\r": "\\r", "\n": "\\n", "\0": "\\0"}.get(c)
    if special is not None:
        return special
    if c == "'":
        return c
    if not c.isprintable() or _grapheme_extend(c):
        return f"\\u{{{ord(c):x}}}"
    return c


def _grapheme_extend(c: str) -> bool:
    o = ord(c)
    if o == 0x200C or 0xFF9E <= o <= 0xFF9F or 0xE0020 <= o <= 0xE007F or 0x1F3FB <= o <= 0x1F3FF:
        return True
    return unicodedata.category(c) in ("Mn", "Me")


def rust_debug_path(path: str) -> str:
    """A path as Rust's ``{:?}`` prints it, which is how the reference names it in error messages."""
    return '"' + "".join(_escape_char(c) for c in path) + '"'
