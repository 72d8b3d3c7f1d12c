"""What the model is told besides the user's words: base instructions and the initial context.

The wording is codex-trio's own. The XML-like wrappers (``<environment_context>``, ``<permissions
instructions>``, ``<turn_aborted>``) are kept because clients and rollouts of the reference recognise
them as context rather than conversation.

The user instructions are assembled as the reference (Codex CLI 0.94.0) does: $CODEX_HOME's
AGENTS.override.md or AGENTS.md, the project docs from the git root down to the cwd, the skills list
(its headings and line format are the reference's, the guidance is ours), all in one user message
headed ``# AGENTS.md instructions for <cwd>``.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from .config import Config
    from .skills import SkillLoadOutcome

log = logging.getLogger(__name__)

BASE_INSTRUCTIONS = """\
You are a coding agent embedded in the user's application through the codex-trio app-server. You work
in the user's workspace on their behalf: you read code, run commands and edit files with the tools you
are given, and you explain what you did.

How to work:
- Understand before you change: read the relevant files and run the relevant commands first.
- Keep changes small and focused on the request; follow the conventions of the code around them.
- Prefer doing over describing: when a tool can answer a question or make a change, use it.
- Check your work: run the tests or the program when you can, and say plainly what you could not check.
- Never invent results. If a command fails or a file is missing, say so and adapt.

How to answer:
- Be concise and concrete. Lead with the outcome, then the details that matter to the user.
- Refer to files by path and, where it helps, by line.
- When something needs the user's decision, ask one clear question.
"""

_SANDBOX_TEXT = {
    "read-only": (
        "The sandbox is read-only: commands may read files anywhere but cannot write them, and "
        "network access is blocked."
    ),
    "workspace-write": (
        "The sandbox allows writing inside the workspace (the working directory and the configured "
        "writable roots) and temporary directories; writes elsewhere fail."
    ),
    "danger-full-access": "There is no sandbox: commands run with the user's full permissions.",
}

_APPROVAL_TEXT = {
    "untrusted": (
        "Commands that are not known to be safe need the user's approval before they run; ask through "
        "the tool call and wait for the decision."
    ),
    "on-failure": (
        "Commands run in the sandbox without asking; if one fails because of the sandbox, you may ask "
        "the user to run it again without the sandbox."
    ),
    "on-request": (
        "Commands run in the sandbox; when a command needs more than the sandbox allows, request "
        "escalated permissions with a short justification and the user will decide."
    ),
    "never": (
        "Never ask the user for approval: work within what the sandbox allows and report what could "
        "not be done."
    ),
}


def permissions_instructions(sandbox_mode: str, approval_policy: str, network_access: bool) -> str:
    network = "enabled" if network_access or sandbox_mode == "danger-full-access" else "restricted"
    return (
        "<permissions instructions>\n"
        f"Sandbox mode: {sandbox_mode}. {_SANDBOX_TEXT.get(sandbox_mode, '')}\n"
        f"Network access: {network}.\n"
        f"Approval policy: {approval_policy}. {_APPROVAL_TEXT.get(approval_policy, '')}\n"
        "</permissions instructions>"
    )


def environment_context(cwd: str, shell: str = "bash") -> str:
    return (
        "<environment_context>\n"
        f"  <cwd>{cwd}</cwd>\n"
        f"  <shell>{shell}</shell>\n"
        "</environment_context>"
    )


# ------------------------------------------------------------------------------------------------
# User instructions: the AGENTS.md files, the skills list and the nested-AGENTS.md note, framed as the
# one user message the reference sends (its heading and <INSTRUCTIONS> wrapper are what clients and
# rollout readers look for).

# Names looked for in $CODEX_HOME and in each project directory, in order of preference.
OVERRIDE_DOC_FILENAME = "AGENTS.override.md"
DEFAULT_DOC_FILENAME = "AGENTS.md"
DEFAULT_PROJECT_DOC_MAX_BYTES = 32 * 1024
# Between the global instructions and the project docs (the reference's marker, seen by the model).
PROJECT_DOC_SEPARATOR = "\n\n--- project-doc ---\n\n"

# What Rust's str::trim strips (the Unicode White_Space property): Python's str.strip() would also
# strip U+001C..U+001F, and an instructions file is compared and trimmed exactly as the reference does.
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

SKILLS_INTRO = (
    "Skills are task-specific instructions kept in `SKILL.md` files on disk. Each line below gives a "
    "skill's name, what it is for and the path of its file."
)
SKILLS_USAGE = """\
- When to use: the user names a skill (as `$name` or in plain words), or the task plainly fits a \
description above. Use every skill that applies, for the turn that asked for it only.
- How to use: read the skill's `SKILL.md` first, as far as the task needs. Resolve relative paths it \
mentions from the skill's own folder, and open its extra files (references, scripts, assets) only when \
the task calls for them.
- Reuse what a skill ships: run or adapt its scripts and fill in its templates rather than writing \
them again.
- Tell the user in one short line which skills you are using, and why you skip one that seems to \
apply.
- If a skill is not listed, its file cannot be read or its steps do not fit, say so briefly and go on \
with the best alternative."""

CHILD_AGENTS_NOTE = """\
AGENTS.md files can sit in any directory, inside or outside a repository. Each one carries guidance \
from people to you: conventions, notes on the layout, how to build and test, even the wording a pull \
request description needs. Follow it.

An AGENTS.md applies to the directory that holds it and to everything below. Whenever you change a \
file, obey every AGENTS.md whose directory contains that file; rules about style or naming stay \
within that scope unless the file says otherwise.

Where two AGENTS.md files disagree, the deeper one wins. Instructions given in the conversation by \
the system, the developer or the user take precedence over any AGENTS.md.
"""


class SkillEntry(Protocol):
    """What the skills list needs of a skill (core.skills.Skill fits)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def path(self) -> Path: ...


def _rust_trim(text: str) -> str:
    return text.strip(_WHITESPACE)


def global_instructions(codex_home: Path) -> str | None:
    """``$CODEX_HOME/AGENTS.override.md``, else ``$CODEX_HOME/AGENTS.md``: the first one that can be
    read as UTF-8 and is not blank, trimmed."""
    for name in (OVERRIDE_DOC_FILENAME, DEFAULT_DOC_FILENAME):
        try:
            text = (codex_home / name).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        trimmed = _rust_trim(text)
        if trimmed:
            return trimmed
    return None


def doc_filenames(fallback_filenames: Sequence[str]) -> list[str]:
    """The names tried in each project directory: the two defaults, then the configured fallbacks
    (empty names and repeats dropped)."""
    names = [OVERRIDE_DOC_FILENAME, DEFAULT_DOC_FILENAME]
    for name in fallback_filenames:
        if name and name not in names:
            names.append(name)
    return names


def _exists(path: Path) -> bool:
    """Whether ``path`` exists (following symlinks); only "not found" counts as absent, any other
    failure is raised."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    return True


def project_doc_paths(cwd: Path, fallback_filenames: Sequence[str] = ()) -> list[Path]:
    """The project doc of each directory from the git root down to ``cwd`` (only ``cwd`` outside a
    repository), at most one per directory: the first candidate name that is a file or a symlink.

    The git root is the nearest directory with a ``.git`` entry (``project_root_markers`` does not
    apply here). Raises OSError for failures other than "not found", which leave the project without
    docs.
    """
    try:
        start = Path(os.path.realpath(cwd, strict=True))
    except OSError:
        start = cwd
    chain = [start]
    git_root: Path | None = None
    cursor = start
    # The filesystem root itself is never taken for a repository root.
    while cursor.parent != cursor:
        if _exists(cursor / ".git"):
            git_root = cursor
            break
        cursor = cursor.parent
        chain.append(cursor)
    search_dirs = list(reversed(chain)) if git_root is not None else [cwd]
    names = doc_filenames(fallback_filenames)
    found: list[Path] = []
    for directory in search_dirs:
        for name in names:
            candidate = directory / name
            try:
                mode = os.lstat(candidate).st_mode
            except FileNotFoundError:
                continue
            # A dangling symlink is chosen here and skipped when read.
            if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                found.append(candidate)
                break
    return found


def _read_at_most(file: BinaryIO, limit: int) -> bytes:
    # In pieces: read(limit) would allocate all of a limit as large as a usize up front.
    chunks: list[bytes] = []
    while limit > 0:
        chunk = file.read(min(limit, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


def read_project_docs(
    cwd: Path, max_bytes: int = DEFAULT_PROJECT_DOC_MAX_BYTES, fallback_filenames: Sequence[str] = ()
) -> str | None:
    """The project docs joined by blank lines, ``max_bytes`` in all (the doc that crosses the limit is
    cut, invalid UTF-8 is replaced, later docs are dropped). Blank docs are skipped and use none of
    the budget. Raises OSError as ``project_doc_paths`` does, and for a doc that cannot be read
    (a missing one is skipped)."""
    if max_bytes <= 0:
        return None
    remaining = max_bytes
    parts: list[str] = []
    for path in project_doc_paths(cwd, fallback_filenames):
        if remaining == 0:
            break
        try:
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                data = _read_at_most(file, remaining)
        except FileNotFoundError:
            continue
        if size > remaining:
            log.warning("project doc %s is larger than the %d bytes left: truncated", path, remaining)
        text = data.decode("utf-8", errors="replace")
        if _rust_trim(text):
            parts.append(text)
            remaining -= len(data)
    return "\n\n".join(parts) if parts else None


def skills_section(skills: Sequence[SkillEntry]) -> str | None:
    """The ``## Skills`` section listing ``skills`` in the given order; None for no skills."""
    if not skills:
        return None
    lines = ["## Skills", SKILLS_INTRO, "### Available skills"]
    for skill in skills:
        path = str(skill.path).replace("\\", "/")
        lines.append(f"- {skill.name}: {skill.description} (file: {path})")
    lines += ["### How to use skills", SKILLS_USAGE]
    return "\n".join(lines)


def compose_user_instructions(
    *,
    global_text: str | None,
    project_docs: str | None,
    skills: Sequence[SkillEntry] = (),
    child_agents_md: bool = False,
) -> str | None:
    """The body of the user-instructions message: the global instructions, the project docs after the
    project-doc marker, the skills section and, with the ``child_agents_md`` feature, the note on
    nested AGENTS.md files; None when all are absent."""
    output = global_text or ""
    if project_docs:
        if output:
            output += PROJECT_DOC_SEPARATOR
        output += project_docs
    for section in (skills_section(skills), CHILD_AGENTS_NOTE if child_agents_md else None):
        if section:
            if output:
                output += "\n\n"
            output += section
    return output or None


def user_instructions_for(config: Config, skills: SkillLoadOutcome | None = None) -> str | None:
    """The user-instructions body for a thread with ``config``: $CODEX_HOME's instructions, the
    project docs of its cwd, its enabled skills (``skills``: the cwd's skills as already loaded, else
    they are discovered now). Reads the filesystem (blocking)."""
    from .features import resolve_features
    from .skills import disabled_skill_paths, discover_skills, skill_roots

    max_bytes = config.raw.get("project_doc_max_bytes", DEFAULT_PROJECT_DOC_MAX_BYTES)
    fallbacks = config.raw.get("project_doc_fallback_filenames") or []
    try:
        docs = read_project_docs(config.cwd, max_bytes, fallbacks)
    except OSError as exc:
        # As the reference: a project whose docs cannot be read gets none of them.
        log.error("cannot read the project docs of %s: %s", config.cwd, exc)
        docs = None
    if skills is None:
        skills = discover_skills(skill_roots(config))
    disabled = disabled_skill_paths(config)
    return compose_user_instructions(
        global_text=global_instructions(config.codex_home),
        project_docs=docs,
        # Skills that failed to load are left out; the others are listed all the same.
        skills=[skill for skill in skills.skills if skill.path not in disabled],
        child_agents_md=bool(resolve_features(config).enabled.get("child_agents_md", False)),
    )


def user_instructions_message(cwd: Path, text: str) -> str:
    """The user-instructions body framed as the reference frames it (the text is kept as is)."""
    return f"# AGENTS.md instructions for {cwd}\n\n<INSTRUCTIONS>\n{text}\n</INSTRUCTIONS>"


TURN_ABORTED = (
    "<turn_aborted>\n"
    "The user stopped the previous turn on purpose. Commands or edits it started may have run only in "
    "part: check the current state before you repeat anything.\n"
    "</turn_aborted>"
)


def collaboration_mode_instructions(text: str) -> str:
    """The developer message a collaboration mode's instructions travel in (the reference's wrapper)."""
    return f"<collaboration_mode>{text}</collaboration_mode>"


def message(role: str, text: str) -> dict[str, Any]:
    """A ResponseItem message with one text part."""
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def initial_context(
    *,
    cwd: Path,
    sandbox_mode: str,
    approval_policy: str,
    network_access: bool,
    developer_instructions: str | None,
    user_instructions: str | None,
) -> list[dict[str, Any]]:
    """The context items every thread starts with (and that a resumed thread repeats).
    ``user_instructions``: the body from ``user_instructions_for``, framed here."""
    items = [
        message("developer", permissions_instructions(sandbox_mode, approval_policy, network_access))
    ]
    if developer_instructions:
        items.append(message("developer", developer_instructions))
    if user_instructions:
        items.append(message("user", user_instructions_message(cwd, user_instructions)))
    items.append(message("user", environment_context(str(cwd))))
    return items
