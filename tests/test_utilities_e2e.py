"""``fuzzyFileSearch``, ``gitDiffToRemote`` and ``execOneOffCommand`` end to end: codex-trio as a stdio
subprocess, every message checked against the protocol schema.

The expected answers in tests/fixtures/utilities/ were captured from the reference (Codex CLI 0.94.0)
with the same requests on the same trees and repositories (built in the server's working directory
here, so that relative paths resolve alike); ``<WORK>`` stands for that directory.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from e2e_util import Agent, is_reply, write_config
from schema_check import ProtocolValidator

from codex_trio.testing.harness import message_bytes, open_server

FIXTURES = Path(__file__).parent / "fixtures" / "utilities"
DEAD_BASE_URL = "http://127.0.0.1:9/v1"  # none of these methods reaches the model
FULL_ACCESS_V1 = {"type": "danger-full-access"}


@asynccontextmanager
async def server(tmp_path: Path) -> AsyncIterator[tuple[Agent, Path]]:
    """The server, initialized; yields it and its working directory."""
    codex_home = tmp_path / "codex_home"
    write_config(codex_home, DEAD_BASE_URL)
    async with open_server(
        codex_home=codex_home, base_url=DEAD_BASE_URL, validator=ProtocolValidator(), env={"TZ": "UTC"}
    ) as srv:
        await srv.initialize(name="harness")
        work = srv.root / "work"
        yield Agent(srv, work), work


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def placed(value: Any, work: Path) -> Any:
    """A fixture value with ``<WORK>`` standing for ``work`` again."""
    return json.loads(json.dumps(value).replace("<WORK>", str(work)))


def build_tree(base: Path, spec: list[list[str]]) -> None:
    """Entries ``[kind, path, arg]``: ``file`` (arg: content), ``file_hex`` (the path's bytes in hex, for
    names that are not UTF-8), ``symlink`` (arg: target), ``dir``."""
    for kind, path, arg in spec:
        if kind == "file_hex":
            raw = os.path.join(bytes(base), bytes.fromhex(path))
            os.makedirs(os.path.dirname(raw), exist_ok=True)
            with open(raw, "wb"):
                pass
            continue
        full = base / path
        full.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            full.write_text(arg, encoding="utf-8")
        elif kind == "dir":
            full.mkdir(parents=True, exist_ok=True)
        else:
            full.symlink_to(arg)


def endless_tree(base: Path, depth: int = 22) -> Path:
    """A tree whose walk takes far longer than any test: each level holds two links to the next, so
    there are 2**depth paths to the file at the bottom (and no link loops back)."""
    for level in range(depth + 1):
        (base / f"d{level}").mkdir(parents=True)
    for level in range(depth):
        for name in ("a", "b"):
            (base / f"d{level}" / name).symlink_to(f"../d{level + 1}")
    (base / f"d{depth}" / "bottom.txt").write_text("", encoding="utf-8")
    return base / "d0"


def search_params(query: str, roots: list[str], token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"query": query, "roots": roots}
    if token is not None:
        params["cancellationToken"] = token
    return params


async def search(agent: Agent, query: str, roots: list[str]) -> Any:
    return await agent.result("fuzzyFileSearch", search_params(query, roots))


# --------------------------------------------------------------------------------------------------
# fuzzyFileSearch


async def test_ranks_scores_and_highlights_like_the_reference(tmp_path: Path) -> None:
    fixture = load("fuzzy_ranking.json")
    async with server(tmp_path) as (agent, work):
        build_tree(work, fixture["tree"])
        for case in fixture["cases"]:
            got = await search(agent, case["query"], placed(case["roots"], work))
            assert got == placed(case["result"], work), case["query"]


async def test_walks_the_roots_like_the_reference(tmp_path: Path) -> None:
    """.gitignore (also above the root), .ignore, .git/info/exclude, hidden files, followed symlinks,
    skipped loops and dangling links, names that are not UTF-8, relative and overlapping roots."""
    fixture = load("fuzzy_walk.json")
    async with server(tmp_path) as (agent, work):
        build_tree(work, fixture["tree"])
        for case in fixture["cases"]:
            got = await search(agent, case["query"], placed(case["roots"], work))
            assert got == placed(case["result"], work), (case["query"], case["roots"])


async def test_empty_queries_roots_and_bad_params(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, work):
        (work / "main.py").write_text("", encoding="utf-8")
        assert await search(agent, "", [str(work)]) == {"files": []}
        assert await search(agent, "main", []) == {"files": []}
        assert await search(agent, "main", ["no/such/dir"]) == {"files": []}
        assert await agent.error("fuzzyFileSearch", {"query": "x"}) == {
            "code": -32600,
            "message": "Invalid request: missing field `roots`",
        }
        assert await agent.error("fuzzyFileSearch", {"query": "x", "roots": [], "cancellationToken": 5}) == {
            "code": -32600,
            "message": "Invalid request: invalid type: integer `5`, expected a string",
        }


async def test_a_newer_search_with_the_same_token_stops_the_older_one(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, work):
        endless = endless_tree(work / "endless")
        build_tree(work, [["file", "small/main.py", ""]])
        small = str(work / "small")
        older = await agent.request("fuzzyFileSearch", search_params("bottom", [str(endless)], "t"))
        await trio.sleep(0.3)  # the older search is walking by now
        # Meanwhile the server answers other requests: the walk does not hold up the event loop.
        started = trio.current_time()
        other = await agent.request("fuzzyFileSearch", search_params("main", [small]))
        seen = await agent.until(is_reply(other))
        assert not any(m.get("id") == older for m in seen)
        assert seen[-1]["result"]["files"][0]["path"] == "main.py"
        assert trio.current_time() - started < 3
        newer = await agent.request("fuzzyFileSearch", search_params("main", [small], "t"))
        with trio.fail_after(5):
            seen = await agent.until(is_reply(older))
        # The stopped search answers with what it had found so far.
        partial = seen[-1]["result"]["files"]
        assert all(f["file_name"] == "bottom.txt" and f["path"].endswith("/bottom.txt") for f in partial)
        replies = seen if any(m.get("id") == newer for m in seen) else await agent.until(is_reply(newer))
        assert next(m for m in replies if m.get("id") == newer)["result"]["files"][0]["path"] == "main.py"
        # A search still walking when the client goes away ends with the connection (the harness
        # checks the server exits promptly and cleanly).
        await agent.request("fuzzyFileSearch", search_params("bottom", [str(endless)]))
        await trio.sleep(0.2)


async def test_searches_sent_together_are_ordered_by_request_id(tmp_path: Path) -> None:
    """Requests read in one go may start in either order; the later one still wins the token."""
    async with server(tmp_path) as (agent, work):
        endless = str(endless_tree(work / "endless"))
        build_tree(work, [["file", "small/x.txt", ""]])
        small = str(work / "small")
        older, newer = agent.server.next_id(), agent.server.next_id()
        requests = [
            {"id": older, "method": "fuzzyFileSearch", "params": search_params("x", [endless], "t")},
            {"id": newer, "method": "fuzzyFileSearch", "params": search_params("x", [small], "t")},
        ]
        assert agent.server.validator is not None
        for request in requests:
            agent.server.validator.observe_client(request)
        await agent.server.send_messages([message_bytes(r) for r in requests])
        with trio.fail_after(5):
            seen = await agent.until(is_reply(older))
        replies = {m["id"]: m["result"] for m in seen if m.get("id") in (older, newer)}
        if newer not in replies:
            replies[newer] = (await agent.until(is_reply(newer)))[-1]["result"]
        assert replies[newer]["files"][0]["path"] == "x.txt"


# --------------------------------------------------------------------------------------------------
# gitDiffToRemote


def build_repos(work: Path, fixture: dict[str, Any]) -> None:
    env = {**os.environ, **fixture["git_env"]}
    for step in fixture["steps"]:
        if step[0] == "git":
            subprocess.run(step, cwd=work, env=env, check=True, capture_output=True)
        elif step[0] == "mkdir":
            (work / step[1]).mkdir(parents=True)
        else:
            path = work / step[1]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(step[2].encode() if step[0] == "write" else bytes.fromhex(step[2]))


async def test_git_diff_to_remote_like_the_reference(tmp_path: Path) -> None:
    """A repository with a bare remote, a local commit on top of the pushed one, changes and untracked
    files (one binary, one ignored), asked from its root, a subdirectory and a relative path; and the
    failures: no remote, not a repository, a missing directory, odd characters in the path."""
    fixture = load("git_diff.json")
    async with server(tmp_path) as (agent, work):
        build_repos(work, fixture)
        for case in fixture["cases"]:
            reply, _ = await agent.call("gitDiffToRemote", {"cwd": placed(case["cwd"], work)})
            reply.pop("id")
            assert reply == placed(case["response"], work), case["cwd"]


# --------------------------------------------------------------------------------------------------
# execOneOffCommand


async def exec_v1(agent: Agent, **params: Any) -> Any:
    return await agent.result("execOneOffCommand", params)


async def test_exec_one_off_command_runs_like_command_exec(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, work):
        (work / "sub").mkdir()
        mixed = await exec_v1(
            agent, command=["bash", "-c", "echo out; echo err >&2; exit 3"], sandboxPolicy=FULL_ACCESS_V1
        )
        assert mixed == {"exitCode": 3, "stdout": "out\n", "stderr": "err\n"}
        here = await exec_v1(agent, command=["pwd"], cwd="sub", sandboxPolicy=FULL_ACCESS_V1)
        assert Path(here["stdout"].strip()).resolve() == (work / "sub").resolve()
        restricted = await exec_v1(
            agent,
            command=["bash", "-c", "echo $CODEX_SANDBOX_NETWORK_DISABLED"],
            sandboxPolicy={"type": "external-sandbox"},
        )
        assert restricted == {"exitCode": 0, "stdout": "1\n", "stderr": ""}
        enabled = await exec_v1(
            agent,
            command=["bash", "-c", "echo $CODEX_SANDBOX_NETWORK_DISABLED"],
            sandboxPolicy={"type": "external-sandbox", "network_access": "enabled"},
        )
        assert enabled == {"exitCode": 0, "stdout": "\n", "stderr": ""}


async def test_exec_one_off_command_sandboxes(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, work):
        denied = await agent.error("execOneOffCommand", {"command": ["touch", "x"]})
        assert denied == {
            "code": -32603,
            "message": "exec failed: sandbox error: sandbox denied exec error, exit code: 1, stdout: , "
            "stderr: touch: cannot touch 'x': Read-only file system\n",
        }
        assert not (work / "x").exists()
        extra = work.parent / "extra"
        extra.mkdir()
        # Writable roots must be absolute; they are normalized.
        policy = {
            "type": "workspace-write",
            "writable_roots": [f"{extra}/../extra"],
            "exclude_slash_tmp": True,
        }
        wrote = await exec_v1(agent, command=["touch", "inside", str(extra / "also")], sandboxPolicy=policy)
        assert wrote["exitCode"] == 0
        assert (work / "inside").exists() and (extra / "also").exists()


async def test_exec_one_off_command_errors_in_the_references_words(tmp_path: Path) -> None:
    workspace = {"type": "workspace-write"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"command": []}, -32600, "command must not be empty"),
        (
            {"command": ["sleep", "5"], "timeoutMs": 200, "sandboxPolicy": FULL_ACCESS_V1},
            -32603,
            "exec failed: sandbox error: command timed out",
        ),
        (
            {"command": ["pwd"], "cwd": "nonexist", "sandboxPolicy": FULL_ACCESS_V1},
            -32603,
            "exec failed: No such file or directory (os error 2)",
        ),
        (
            {"command": ["pwd"], "sandboxPolicy": {"type": "dangerFullAccess"}},
            -32600,
            "Invalid request: unknown variant `dangerFullAccess`, expected one of `danger-full-access`, "
            "`read-only`, `external-sandbox`, `workspace-write`",
        ),
        (
            {"command": ["pwd"], "timeoutMs": -1},
            -32600,
            "Invalid request: invalid value: integer `-1`, expected u64",
        ),
        (
            {"command": ["pwd"], "sandboxPolicy": {**workspace, "network_access": None}},
            -32600,
            "Invalid request: invalid type: null, expected a boolean",
        ),
        (
            {"command": ["pwd"], "sandboxPolicy": {**workspace, "writable_roots": ["rel"]}},
            -32600,
            "Invalid request: AbsolutePathBuf deserialized without a base path",
        ),
        ({}, -32600, "Invalid request: missing field `command`"),
    ]
    async with server(tmp_path) as (agent, _):
        for params, code, message in cases:
            error = await agent.error("execOneOffCommand", params)
            assert error == {"code": code, "message": message}, params
