"""Which tools a turn offers the model, and how each is described upstream.

The names, parameter schemas and the choice of tools per model family follow the reference (that is
the contract a model trained against it expects); the descriptions are our own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..exec import DEFAULT_TRUNCATION, TOKENS_TRUNCATION, TruncationPolicy

JsonObject = dict[str, Any]
ShellTool = Literal["shell", "shell_command", "local_shell"]

# Model families the reference gives the string-command shell and the freeform apply_patch tool.
_SHELL_COMMAND_FAMILIES = ("gpt-5-codex", "gpt-5.1", "gpt-5.2", "codex-1", "exp-")
# Model families that may call several tools in one response.
_PARALLEL_FAMILIES = ("gpt-5.2",)


@dataclass(frozen=True)
class ToolsConfig:
    """What the offered tool set depends on."""

    shell: ShellTool
    apply_patch_freeform: bool
    parallel_tool_calls: bool
    web_search: str | None  # "disabled" | "cached" | "live" | None (cached)
    view_image: bool
    dynamic_tools: tuple[Mapping[str, Any], ...] = ()
    # How much of a tool's output the model gets back.
    truncation: TruncationPolicy = DEFAULT_TRUNCATION

    @classmethod
    def for_model(
        cls,
        model: str,
        *,
        features: Mapping[str, bool],
        web_search: str | None,
        view_image: bool | None,
        dynamic_tools: Sequence[Mapping[str, Any]] = (),
    ) -> ToolsConfig:
        """``features`` and ``web_search``: what core/features.py resolves from the thread's config
        (old names and switches included)."""
        shell: ShellTool = "shell"
        freeform = False
        if model.startswith("codex-mini"):
            shell = "local_shell"
        elif model.startswith(_SHELL_COMMAND_FAMILIES):
            shell = "shell_command"
            freeform = True
        # As in the reference, the feature gives apply_patch to a model without it; turned off, it does
        # not take it from a model that has it.
        if features.get("apply_patch_freeform"):
            freeform = True
        return cls(
            shell=shell,
            apply_patch_freeform=freeform,
            parallel_tool_calls=model.startswith(_PARALLEL_FAMILIES),
            web_search=web_search,
            view_image=view_image is not False,
            dynamic_tools=tuple(dynamic_tools),
            # The codex models count their budget in tokens, the others in bytes.
            truncation=TOKENS_TRUNCATION if "codex" in model else DEFAULT_TRUNCATION,
        )


def _function(
    name: str, description: str, properties: JsonObject, required: Sequence[str] = ()
) -> JsonObject:
    parameters: JsonObject = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = list(required)
    parameters["additionalProperties"] = False
    return {
        "type": "function",
        "name": name,
        "description": description,
        "strict": False,
        "parameters": parameters,
    }


_STRING = {"type": "string"}

_ESCALATION_PROPERTIES: JsonObject = {
    "justification": {
        "type": "string",
        "description": 'Only with sandbox_permissions "require_escalated": a one-sentence question for '
        "the user explaining why the command must run outside the sandbox.",
    },
    "prefix_rule": {
        "type": "array",
        "items": _STRING,
        "description": 'Only with sandbox_permissions "require_escalated": a short command prefix '
        '(e.g. ["git", "pull"]) the user could allow for later commands of the same kind.',
    },
    "sandbox_permissions": {
        "type": "string",
        "description": '"use_default" (the default) or "require_escalated" to ask the user to run '
        "this command without the sandbox.",
    },
    "timeout_ms": {"type": "number", "description": "How long the command may run, in milliseconds."},
    "workdir": {"type": "string", "description": "The directory to run the command in."},
}


def shell_tool() -> JsonObject:
    return _function(
        "shell",
        "Runs a command and returns what it printed.\n"
        '- `command` is an argv list executed directly; use ["bash", "-lc", "<script>"] for shell syntax.\n'
        "- Set `workdir` rather than using `cd`.",
        {
            "command": {"type": "array", "items": _STRING, "description": "The argv to run."},
            **_ESCALATION_PROPERTIES,
        },
        ["command"],
    )


def shell_command_tool() -> JsonObject:
    return _function(
        "shell_command",
        "Runs a shell script and returns what it printed.\n- Set `workdir` rather than using `cd`.",
        {
            "command": {"type": "string", "description": "The script, run by the user's shell."},
            "justification": _ESCALATION_PROPERTIES["justification"],
            "login": {
                "type": "boolean",
                "description": "Run the shell as a login shell (the default, true).",
            },
            **{k: v for k, v in _ESCALATION_PROPERTIES.items() if k != "justification"},
        },
        ["command"],
    )


def _mcp_tools() -> list[JsonObject]:
    server = {"type": "string", "description": "An MCP server's configured name; all servers when omitted."}
    cursor = {"type": "string", "description": "The cursor a previous call returned, to continue a listing."}
    return [
        _function(
            "list_mcp_resources",
            "Lists the resources (files, schemas, other context) that configured MCP servers offer.",
            {"cursor": cursor, "server": server},
        ),
        _function(
            "list_mcp_resource_templates",
            "Lists the parameterised resource templates that configured MCP servers offer.",
            {"cursor": cursor, "server": server},
        ),
        _function(
            "read_mcp_resource",
            "Reads one resource from an MCP server.",
            {
                "server": {"type": "string", "description": "The MCP server's name, as listed."},
                "uri": {"type": "string", "description": "The resource URI, as listed."},
            },
            ["server", "uri"],
        ),
    ]


def update_plan_tool() -> JsonObject:
    step = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "description": "pending, in_progress or completed"},
            "step": _STRING,
        },
        "required": ["step", "status"],
        "additionalProperties": False,
    }
    return _function(
        "update_plan",
        "Records the plan for the task: a list of steps with their status, at most one in_progress, "
        "and an optional explanation of the change.\n",
        {"explanation": _STRING, "plan": {"type": "array", "items": step, "description": "The steps."}},
        ["plan"],
    )


def request_user_input_tool() -> JsonObject:
    option = {
        "type": "object",
        "properties": {
            "description": {"type": "string", "description": "What choosing it means, in one sentence."},
            "label": {"type": "string", "description": "A short label (a few words)."},
        },
        "required": ["label", "description"],
        "additionalProperties": False,
    }
    question = {
        "type": "object",
        "properties": {
            "header": {"type": "string", "description": "A very short title for the question."},
            "id": {"type": "string", "description": "A snake_case id the answer is keyed by."},
            "options": {
                "type": "array",
                "items": option,
                "description": "Two or three exclusive choices, the recommended one first; the client "
                "adds a free-form answer itself.",
            },
            "question": {"type": "string", "description": "The question, in one sentence."},
        },
        "required": ["id", "header", "question", "options"],
        "additionalProperties": False,
    }
    return _function(
        "request_user_input",
        "Asks the user one to three short questions and waits for the answers.",
        {"questions": {"type": "array", "items": question, "description": "The questions (prefer one)."}},
        ["questions"],
    )


def view_image_tool() -> JsonObject:
    return _function(
        "view_image",
        "Attaches a local image file to the conversation so you can see it (for a path the user gave "
        "that is not attached yet).",
        {"path": {"type": "string", "description": "The image file's path."}},
        ["path"],
    )


# The Codex patch format as a Lark grammar: the model's freeform apply_patch input must match it.
APPLY_PATCH_GRAMMAR = r"""start: "*** Begin Patch" NL file_op+ "*** End Patch" NL?

file_op: added | deleted | updated
added: "*** Add File: " PATH NL plus_line+
deleted: "*** Delete File: " PATH NL
updated: "*** Update File: " PATH NL moved? edit?
moved: "*** Move to: " PATH NL

plus_line: "+" TEXT NL
edit: (anchor | diff_line)+ end_of_file?
anchor: "@@" (" " TEXT)? NL
diff_line: /[ +-]/ TEXT NL
end_of_file: "*** End of File" NL

PATH: /.+/
TEXT: /.*/
NL: "\n"
"""


def apply_patch_freeform_tool() -> JsonObject:
    return {
        "type": "custom",
        "name": "apply_patch",
        "description": "Edits files with a patch in the Codex patch format. Send the patch text itself, "
        "not JSON.",
        "format": {"type": "grammar", "syntax": "lark", "definition": APPLY_PATCH_GRAMMAR},
    }


def dynamic_tool(spec: Mapping[str, Any]) -> JsonObject:
    return {
        "type": "function",
        "name": spec["name"],
        "description": spec.get("description", ""),
        "strict": False,
        "parameters": spec.get("inputSchema") or {"type": "object", "properties": {}},
    }


def tool_specs(config: ToolsConfig) -> list[JsonObject]:
    """The request's ``tools``, in the reference's order."""
    tools: list[JsonObject] = []
    if config.shell == "shell":
        tools.append(shell_tool())
    elif config.shell == "shell_command":
        tools.append(shell_command_tool())
    else:
        tools.append({"type": "local_shell"})
    tools.extend(_mcp_tools())
    tools.append(update_plan_tool())
    tools.append(request_user_input_tool())
    if config.apply_patch_freeform:
        tools.append(apply_patch_freeform_tool())
    if config.web_search != "disabled":
        tools.append({"type": "web_search", "external_web_access": config.web_search == "live"})
    if config.view_image:
        tools.append(view_image_tool())
    tools.extend(dynamic_tool(spec) for spec in config.dynamic_tools)
    return tools
