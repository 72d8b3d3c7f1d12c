"""What the model is told besides the user's words: base instructions and the initial context.

The wording is codex-trio's own. The XML-like wrappers (``<environment_context>``, ``<permissions
instructions>``, ``<turn_aborted>``) are kept because clients and rollouts of the reference recognise
them as context rather than conversation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def agents_md_instructions(cwd: Path) -> str | None:
    """The project's AGENTS.md, if it has one, as the reference frames it."""
    path = cwd / "AGENTS.md"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not text.strip():
        return None
    return f"# AGENTS.md instructions for {cwd}\n\n<INSTRUCTIONS>\n{text.rstrip()}\n</INSTRUCTIONS>"


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
    """The context items every thread starts with (and that a resumed thread repeats)."""
    items = [
        message("developer", permissions_instructions(sandbox_mode, approval_policy, network_access))
    ]
    if developer_instructions:
        items.append(message("developer", developer_instructions))
    agents = user_instructions if user_instructions is not None else agents_md_instructions(cwd)
    if agents:
        items.append(message("user", agents))
    items.append(message("user", environment_context(str(cwd))))
    return items
