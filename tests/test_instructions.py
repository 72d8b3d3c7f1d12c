"""The user-instructions message on trees built in tmp: which AGENTS.md files are read, how they are
joined, cut and framed, and the skills list. Expected texts are what the reference (Codex CLI 0.94.0)
sent for the same trees (captured against the mock; see tests/test_instructions_e2e.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codex_trio.core.config import Config, load_config
from codex_trio.core.instructions import (
    CHILD_AGENTS_NOTE,
    SKILLS_INTRO,
    SKILLS_USAGE,
    compose_user_instructions,
    global_instructions,
    initial_context,
    project_doc_paths,
    read_project_docs,
    skills_section,
    user_instructions_for,
)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def repo(root: Path) -> Path:
    (root / ".git").mkdir(parents=True)
    return root


def skill(root: Path, name: str, description: str, folder: str | None = None) -> Path:
    text = f"---\nname: {name}\ndescription: {description}\n---\n\n# {name}\n"
    return write(root / (folder or name) / "SKILL.md", text)


def config_for(tmp_path: Path, cwd: Path, toml: str = "") -> Config:
    codex_home = tmp_path / "codex_home"
    write(codex_home / "config.toml", toml)
    return load_config(
        codex_home, cwd=cwd, env={"HOME": str(tmp_path / "home")}, system_config_path=None
    )


# ---- $CODEX_HOME ---------------------------------------------------------------------------------


def test_global_instructions_prefer_the_override_and_are_trimmed(tmp_path: Path) -> None:
    assert global_instructions(tmp_path) is None
    write(tmp_path / "AGENTS.md", "\n\n  Global rules.  \n\n")
    assert global_instructions(tmp_path) == "Global rules."
    write(tmp_path / "AGENTS.override.md", "override\n")
    assert global_instructions(tmp_path) == "override"


@pytest.mark.parametrize("override", ["  \n\n", b"bad \xff utf-8"], ids=["blank", "not-utf8"])
def test_an_unusable_global_override_falls_back_to_agents_md(tmp_path: Path, override: str | bytes) -> None:
    write(tmp_path / "AGENTS.override.md", override)
    write(tmp_path / "AGENTS.md", "plain")
    assert global_instructions(tmp_path) == "plain"


def test_global_trimming_is_unicode_white_space_only(tmp_path: Path) -> None:
    # U+001F is whitespace to Python's str.strip but not to the reference; U+3000 is to both.
    write(tmp_path / "AGENTS.md", "\u3000\x1fkept\x1f\u3000")
    assert global_instructions(tmp_path) == "\x1fkept\x1f"


# ---- discovery -----------------------------------------------------------------------------------


def test_docs_come_from_the_git_root_down_to_the_cwd(tmp_path: Path) -> None:
    write(tmp_path / "AGENTS.md", "above the repository: never read")
    root = repo(tmp_path / "repo")
    write(root / "AGENTS.md", "root doc\n")
    write(root / "mid" / "README.md", "no doc here")
    write(root / "mid" / "sub" / "AGENTS.md", "  sub doc  \n\n")
    cwd = root / "mid" / "sub" / "deep"
    cwd.mkdir()
    assert project_doc_paths(cwd) == [root / "AGENTS.md", root / "mid" / "sub" / "AGENTS.md"]
    # Joined by a blank line, each doc as it is (not trimmed).
    assert read_project_docs(cwd) == "root doc\n\n\n  sub doc  \n\n"


def test_a_git_file_marks_the_root_too(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root / ".git", "gitdir: /nowhere\n")
    write(root / "AGENTS.md", "root doc")
    write(root / "sub" / "AGENTS.md", "sub doc")
    assert read_project_docs(root / "sub") == "root doc\n\nsub doc"


def test_outside_a_repository_only_the_cwd_counts(tmp_path: Path) -> None:
    write(tmp_path / "outer" / "AGENTS.md", "outer doc")
    write(tmp_path / "outer" / "work" / "AGENTS.md", "cwd doc")
    assert read_project_docs(tmp_path / "outer" / "work") == "cwd doc"
    assert read_project_docs(tmp_path / "outer" / "work" / "missing") is None


def test_one_doc_per_directory_override_first_then_fallbacks(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    write(root / "AGENTS.md", "root plain")
    write(root / "AGENTS.override.md", "root override")
    write(root / "EXAMPLE.md", "example at root")
    write(root / "a" / "OTHER.md", "other at a")
    write(root / "a" / "b" / "AGENTS.md", "agents at b")
    write(root / "a" / "b" / "EXAMPLE.md", "example at b")
    fallbacks = ["EXAMPLE.md", "", "OTHER.md", "AGENTS.md"]
    assert read_project_docs(root / "a" / "b", fallback_filenames=fallbacks) == (
        "root override\n\nother at a\n\nagents at b"
    )
    assert read_project_docs(root / "a" / "b") == "root override\n\nagents at b"


def test_a_blank_doc_hides_the_other_names_of_its_directory(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    write(root / "AGENTS.override.md", "\n \n")
    write(root / "AGENTS.md", "root plain")
    write(root / "sub" / "AGENTS.md", "")
    write(root / "sub" / "FALLBACK.md", "sub fallback")
    assert read_project_docs(root / "sub", fallback_filenames=["FALLBACK.md"]) is None


def test_directories_are_passed_over_and_dangling_links_skipped(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    (root / "AGENTS.override.md").mkdir()
    write(root / "AGENTS.md", "root plain")
    (root / "a").mkdir()
    os.symlink(root / "nowhere.md", root / "a" / "AGENTS.override.md")
    write(root / "a" / "AGENTS.md", "hidden by the dangling override")
    write(root / "a" / "b" / "AGENTS.md", b"bad \xff\xfe utf8\n")
    assert read_project_docs(root / "a" / "b") == "root plain\n\nbad \ufffd\ufffd utf8\n"


def test_a_doc_that_is_a_link_to_a_directory_is_an_error(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    write(root / "AGENTS.md", "root plain")
    (root / "sub" / "real").mkdir(parents=True)
    os.symlink(root / "sub" / "real", root / "sub" / "AGENTS.md")
    with pytest.raises(OSError):
        read_project_docs(root / "sub")


def test_a_cwd_reached_through_a_link_finds_the_repository_of_its_target(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    write(root / "AGENTS.md", "root doc")
    write(root / "sub" / "AGENTS.md", "sub doc")
    os.symlink(root / "sub", tmp_path / "link")
    assert read_project_docs(tmp_path / "link") == "root doc\n\nsub doc"


# ---- the byte limit ------------------------------------------------------------------------------


def test_the_limit_cuts_the_doc_that_crosses_it_and_drops_the_rest(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    write(root / "AGENTS.md", "0123456789\n")
    write(root / "a" / "AGENTS.md", "   \n")  # blank: skipped, uses none of the budget
    write(root / "a" / "b" / "AGENTS.md", "abcdefghij" * 3)
    write(root / "a" / "b" / "c" / "AGENTS.md", "never read")
    assert read_project_docs(root / "a" / "b" / "c", max_bytes=20) == "0123456789\n\n\nabcdefghi"


def test_a_cut_inside_a_character_leaves_a_replacement_character(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    write(root / "AGENTS.md", "ab\u00e9\u00e9\u00e9")
    assert read_project_docs(root, max_bytes=5) == "ab\u00e9\ufffd"


def test_the_default_limit_is_32_kib_and_zero_turns_docs_off(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    text = "".join(f"line {i:05d}\n" for i in range(4000))
    write(root / "AGENTS.md", text)
    assert read_project_docs(root) == text[: 32 * 1024]
    assert read_project_docs(root, max_bytes=0) is None


# ---- composition ---------------------------------------------------------------------------------


def test_skills_section_lists_name_description_and_path(tmp_path: Path) -> None:
    from codex_trio.core.skills import discover_skills

    skill(tmp_path, "zeta", "Last by name")
    skill(tmp_path, "alpha", "First by name", folder="group/alpha-dir")
    skills = discover_skills([(tmp_path, "user")]).skills
    assert skills_section(skills) == "\n".join(
        [
            "## Skills",
            SKILLS_INTRO,
            "### Available skills",
            f"- alpha: First by name (file: {tmp_path}/group/alpha-dir/SKILL.md)",
            f"- zeta: Last by name (file: {tmp_path}/zeta/SKILL.md)",
            "### How to use skills",
            SKILLS_USAGE,
        ]
    )
    assert skills_section([]) is None


def test_compose_joins_the_parts_in_order() -> None:
    assert compose_user_instructions(global_text=None, project_docs=None) is None
    assert compose_user_instructions(global_text="g", project_docs=None) == "g"
    assert compose_user_instructions(global_text=None, project_docs="p\n") == "p\n"
    assert compose_user_instructions(global_text="g", project_docs="p") == "g\n\n--- project-doc ---\n\np"
    assert compose_user_instructions(global_text=None, project_docs=None, child_agents_md=True) == (
        CHILD_AGENTS_NOTE
    )
    assert compose_user_instructions(global_text="g", project_docs="p\n", child_agents_md=True) == (
        f"g\n\n--- project-doc ---\n\np\n\n\n{CHILD_AGENTS_NOTE}"
    )


def test_the_message_frames_the_text_as_it_is(tmp_path: Path) -> None:
    items = initial_context(
        cwd=tmp_path,
        sandbox_mode="read-only",
        approval_policy="never",
        network_access=False,
        developer_instructions=None,
        user_instructions="doc with newline\n",
    )
    assert [item["role"] for item in items] == ["developer", "user", "user"]
    framed = f"# AGENTS.md instructions for {tmp_path}\n\n<INSTRUCTIONS>\ndoc with newline\n\n</INSTRUCTIONS>"
    assert items[1]["content"] == [{"type": "input_text", "text": framed}]
    no_docs = initial_context(
        cwd=tmp_path,
        sandbox_mode="read-only",
        approval_policy="never",
        network_access=False,
        developer_instructions="dev",
        user_instructions=None,
    )
    assert [item["role"] for item in no_docs] == ["developer", "developer", "user"]


# ---- from a configuration ------------------------------------------------------------------------


def test_user_instructions_for_a_config(tmp_path: Path) -> None:
    codex_home = tmp_path / "codex_home"
    write(codex_home / "AGENTS.md", "global\n")
    skills = codex_home / "skills"
    skill(skills, "zeta", "Last by name")
    skill(skills, "multi", "line one\n  continues here")
    off = skill(skills, "off", "Disabled")
    write(skills / "broken" / "SKILL.md", "no front matter\n")  # an error: left out, the rest listed
    root = repo(tmp_path / "repo")
    skill(root / ".codex" / "skills", "repo-skill", "From the repo")
    write(root / "AGENTS.md", "0123456789\n")
    write(root / "sub" / "NOTES.md", "abcdefghij" * 3)
    toml = (
        "project_doc_max_bytes = 20\n"
        'project_doc_fallback_filenames = ["NOTES.md"]\n'
        f'[[skills.config]]\npath = "{off}"\nenabled = false\n'
    )
    config = config_for(tmp_path, root / "sub", toml)
    assert user_instructions_for(config) == "\n".join(
        [
            "global\n\n--- project-doc ---\n\n0123456789\n\n\nabcdefghi\n",
            "## Skills",
            SKILLS_INTRO,
            "### Available skills",
            f"- repo-skill: From the repo (file: {root}/.codex/skills/repo-skill/SKILL.md)",
            f"- multi: line one continues here (file: {skills}/multi/SKILL.md)",
            f"- zeta: Last by name (file: {skills}/zeta/SKILL.md)",
            "### How to use skills",
            SKILLS_USAGE,
        ]
    )


def test_project_root_markers_do_not_move_the_docs_root(tmp_path: Path) -> None:
    outer = repo(tmp_path / "outer")
    write(outer / "AGENTS.md", "git root doc")
    (outer / "proj" / ".hg").mkdir(parents=True)
    write(outer / "proj" / "sub" / "AGENTS.md", "sub doc")
    for markers in ('[".hg"]', "[]"):
        config = config_for(tmp_path, outer / "proj" / "sub", f"project_root_markers = {markers}\n")
        assert user_instructions_for(config) == "git root doc\n\nsub doc"


def test_unreadable_project_docs_leave_the_global_ones(tmp_path: Path) -> None:
    write(tmp_path / "codex_home" / "AGENTS.md", "global plain")
    root = repo(tmp_path / "repo")
    write(root / "AGENTS.md", "root plain")
    (root / "real").mkdir()
    (root / "sub").mkdir()
    os.symlink(root / "real", root / "sub" / "AGENTS.md")
    assert user_instructions_for(config_for(tmp_path, root / "sub")) == "global plain"


def test_nothing_to_say_means_no_message(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    write(root / "AGENTS.md", " \n")
    assert user_instructions_for(config_for(tmp_path, root)) is None
    config = config_for(tmp_path, root, "[features]\nchild_agents_md = true\n")
    assert user_instructions_for(config) == CHILD_AGENTS_NOTE


def test_a_huge_limit_reads_the_docs_whole(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    write(root / "AGENTS.md", "x" * 100_000)
    assert read_project_docs(root, max_bytes=2**64 - 1) == "x" * 100_000
