"""The user-instructions message end to end: codex-trio as a subprocess against the mock Responses API,
on a tree with global and project AGENTS files, a fallback name, the byte limit and skills. The first
request of a thread, and the first after a resume in a new process, must carry what the reference
(Codex CLI 0.94.0) sent for the same tree: tests/fixtures/instructions/reference_inputs.json, captured
from the reference with the same requests, its own skills and guidance prose left out (markers)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from e2e_util import Agent, conversation, write_config
from schema_check import ProtocolValidator

from codex_trio.core.instructions import SKILLS_INTRO, SKILLS_USAGE
from codex_trio.testing import mock_responses as mr
from codex_trio.testing.harness import open_server

FIXTURE = Path(__file__).parent / "fixtures" / "instructions" / "reference_inputs.json"
# Stand-ins in the fixture for the root of the tree and for the guidance prose (ours differs).
ROOT_MARK = "<T>"
PROSE_MARKS = {"<skills intro>": SKILLS_INTRO, "<skills usage>": SKILLS_USAGE}
PERMISSIONS_MARK = "<permissions>"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def skill(root: Path, name: str, description: str, folder: str | None = None) -> Path:
    text = f"---\nname: {name}\ndescription: {description}\n---\n"
    return write(root / (folder or name) / "SKILL.md", text)


def build_tree(root: Path) -> tuple[Path, str]:
    """The files of the scenario under ``root``; returns the thread's cwd and top-level config.toml
    lines (the reference's capture uses this same function)."""
    codex_home = root / "codex_home"
    write(codex_home / "AGENTS.override.md", "\n  Global override.  \n")
    write(codex_home / "AGENTS.md", "Not read: the override wins.")
    skills = codex_home / "skills"
    skill(skills, "zeta", "Last by name.")
    skill(skills, "alpha", "First by name.", folder="group/alpha-dir")
    disabled = skill(skills, "off", "Disabled in config.toml.")
    write(skills / "broken" / "SKILL.md", "no front matter\n")
    write(root / "AGENTS.md", "Above the repository: not read.")
    repo = root / "repo"
    (repo / ".git").mkdir(parents=True)
    skill(repo / ".codex" / "skills", "repo-skill", "From the repository.")
    write(repo / "AGENTS.md", "Root doc.\n")
    write(repo / "pkg" / "NOTES.md", "Package notes, found by a fallback name.\n")
    write(repo / "pkg" / "app" / "AGENTS.override.md", "App override, cut by the byte limit.\n")
    write(repo / "pkg" / "app" / "AGENTS.md", "Not read: the override wins.")
    config = (
        "project_doc_max_bytes = 64\n"
        'project_doc_fallback_filenames = ["NOTES.md"]\n'
        'developer_instructions = "Developer note."\n'
        f"skills = {{ config = [{{ path = {json.dumps(str(disabled))}, enabled = false }}] }}\n"
    )
    return repo / "pkg" / "app", config


def change_tree(root: Path) -> None:
    """What changes before the resume: the fresh context reads the files again."""
    write(root / "repo" / "AGENTS.md", "Root doc, changed.\n")


def expected(key: str, root: Path) -> list[tuple[str, str]]:
    reference = json.loads(FIXTURE.read_text(encoding="utf-8"))[key]
    out = []
    for role, text in reference:
        text = text.replace(ROOT_MARK, str(root))
        for mark, prose in PROSE_MARKS.items():
            text = text.replace(mark, prose)
        out.append((role, text))
    return out


def seen(request: mr.RecordedRequest) -> list[tuple[str, str]]:
    """The request's messages, our permissions text (own prose) replaced by its marker."""
    out = []
    for role, text in conversation(request.input_items()):
        if role == "developer" and text.startswith("<permissions instructions>"):
            text = PERMISSIONS_MARK
        out.append((role, text))
    return out


@asynccontextmanager
async def server_for(mock: mr.MockResponses, root: Path, cwd: Path, config: str) -> AsyncIterator[Agent]:
    codex_home = root / "codex_home"
    write_config(codex_home, mock.base_url)
    path = codex_home / "config.toml"
    path.write_text(config + path.read_text(encoding="utf-8"), encoding="utf-8")
    async with open_server(
        codex_home=codex_home, base_url=mock.base_url, validator=ProtocolValidator(), env={"TZ": "UTC"}
    ) as server:
        await server.initialize(name="harness")
        yield Agent(server, cwd)


async def test_first_request_and_resume_carry_the_reference_instructions(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    cwd, config = build_tree(root)
    async with mr.open_mock_responses() as mock:
        async with server_for(mock, root, cwd, config) as server:
            thread: dict[str, Any] = (await server.start_thread())["thread"]
            await server.turn(thread["id"], "Read the docs.")
        first = mock.responses_requests[0]
        assert seen(first) == expected("first", root)

        # A new process resumes the thread: the stored context, then a fresh one read again.
        change_tree(root)
        async with server_for(mock, root, cwd, config) as server:
            await server.result("thread/resume", {"threadId": thread["id"]})
            await server.turn(thread["id"], "Again.")
        assert seen(mock.responses_requests[1]) == expected("resumed", root)


async def test_no_docs_and_no_skills_mean_no_instructions_message(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "work").mkdir()
    # Blank: as good as absent. (The reference, blocked from unpacking its bundled skills, sent no
    # instructions message either.)
    write(root / "work" / "AGENTS.md", " \n")
    async with mr.open_mock_responses() as mock, server_for(mock, root, root / "work", "") as server:
        thread = (await server.start_thread())["thread"]
        await server.turn(thread["id"], "Hello.")
    assert [role for role, _ in seen(mock.responses_requests[0])] == ["developer", "user", "user"]
    assert seen(mock.responses_requests[0])[1][1].startswith("<environment_context>")
