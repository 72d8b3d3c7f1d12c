"""The tools that don't touch the workspace: the plan, questions for the user, images, dynamic tools
declared by the client, and MCP resources."""

from __future__ import annotations

import base64
import json
import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any, TypeAlias

import trio

from ..exec import ExecError
from .context import FunctionCallError, ToolCall, ToolContext


def _object_arguments(call: ToolCall) -> Mapping[str, Any]:
    args = call.json_arguments()
    if not isinstance(args, Mapping):
        raise FunctionCallError("failed to parse function arguments: expected an object")
    return args


# The argument structs of the reference's update_plan and request_user_input, so that arguments of
# the wrong shape get the error text the reference's JSON library (serde_json) gives the model.


@dataclass(frozen=True)
class _Seq:
    item: _Shape


@dataclass(frozen=True)
class _Optional:
    inner: _Shape


@dataclass(frozen=True)
class _Enum:
    variants: tuple[str, ...]


@dataclass(frozen=True)
class _Field:
    name: str
    shape: _Shape
    # A field that may be left out (serde's ``default``, or an Option).
    optional: bool = False


@dataclass(frozen=True)
class _Struct:
    name: str
    fields: tuple[_Field, ...]
    deny_unknown_fields: bool = False


# A scalar is named by what serde says it expected ("a string", "a boolean").
_Shape: TypeAlias = "str | _Seq | _Optional | _Enum | _Struct"

_STRING = "a string"
_BOOLEAN = "a boolean"
_PLAN_STATUSES = ("pending", "in_progress", "completed")
_UPDATE_PLAN_ARGS = _Struct(
    "UpdatePlanArgs",
    (
        _Field("explanation", _Optional(_STRING), optional=True),
        _Field(
            "plan",
            _Seq(
                _Struct(
                    "PlanItemArg",
                    (_Field("step", _STRING), _Field("status", _Enum(_PLAN_STATUSES))),
                    deny_unknown_fields=True,
                )
            ),
        ),
    ),
    deny_unknown_fields=True,
)
_QUESTION_OPTION = _Struct(
    "RequestUserInputQuestionOption", (_Field("label", _STRING), _Field("description", _STRING))
)
_REQUEST_USER_INPUT_ARGS = _Struct(
    "RequestUserInputArgs",
    (
        _Field(
            "questions",
            _Seq(
                _Struct(
                    "RequestUserInputQuestion",
                    (
                        _Field("id", _STRING),
                        _Field("header", _STRING),
                        _Field("question", _STRING),
                        _Field("isOther", _BOOLEAN, optional=True),
                        _Field("isSecret", _BOOLEAN, optional=True),
                        _Field("options", _Optional(_Seq(_QUESTION_OPTION)), optional=True),
                    ),
                )
            ),
        ),
    ),
)


@dataclass
class _Node:
    """A JSON value and where it lies in the text: ``start`` is its first character, ``end`` just
    past it. An object keeps its members in order, duplicates included, with where each key ends."""

    value: Any
    start: int
    end: int
    members: list[tuple[str, int, _Node]] | None = None
    elements: list[_Node] | None = None


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SCALARS = json.JSONDecoder()


def _skip_space(text: str, index: int) -> int:
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index


def _parse_node(text: str, index: int) -> _Node:
    """The value at ``index`` of ``text``, which is known to be valid JSON."""
    start = _skip_space(text, index)
    opener = text[start : start + 1]
    if opener == "{":
        members: list[tuple[str, int, _Node]] = []
        at = _skip_space(text, start + 1)
        while text[at] != "}":
            key, key_end = scanstring(text, at + 1)
            node = _parse_node(text, _skip_space(text, key_end) + 1)
            members.append((key, key_end, node))
            at = _skip_space(text, node.end)
            if text[at] == ",":
                at = _skip_space(text, at + 1)
        return _Node({k: n.value for k, _, n in members}, start, at + 1, members=members)
    if opener == "[":
        elements: list[_Node] = []
        at = _skip_space(text, start + 1)
        while text[at] != "]":
            node = _parse_node(text, at)
            elements.append(node)
            at = _skip_space(text, node.end)
            if text[at] == ",":
                at = _skip_space(text, at + 1)
        return _Node([e.value for e in elements], start, at + 1, elements=elements)
    value, end = _SCALARS.raw_decode(text, start)
    return _Node(value, start, end)


class _ArgumentError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def _is_container(node: _Node) -> bool:
    return node.members is not None or node.elements is not None


def _unexpected(node: _Node) -> str:
    """How serde_json names a value it did not expect."""
    value = node.value
    if node.members is not None:
        return "map"
    if node.elements is not None:
        return "sequence"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    return f"string {json.dumps(value, ensure_ascii=False)}"


def _invalid_type(node: _Node, expected: str) -> _ArgumentError:
    # serde_json reads a scalar before complaining about it, but only peeks at a container's opener.
    offset = node.start + 1 if _is_container(node) else node.end
    return _ArgumentError(f"invalid type: {_unexpected(node)}, expected {expected}", offset)


def _one_of(names: Sequence[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return "one of " + ", ".join(quoted)


def _check(node: _Node, shape: _Shape) -> None:
    """Raises the first error serde would meet deserializing ``node`` as ``shape``: it reads the text
    in order, so the first mismatch in the text is the one reported."""
    if isinstance(shape, _Optional):
        if node.value is not None or _is_container(node):
            _check(node, shape.inner)
    elif isinstance(shape, str):
        wanted = str if shape == _STRING else bool
        if _is_container(node) or not isinstance(node.value, wanted):
            raise _invalid_type(node, shape)
    elif isinstance(shape, _Seq):
        if node.elements is None:
            raise _invalid_type(node, "a sequence")
        for element in node.elements:
            _check(element, shape.item)
    elif isinstance(shape, _Enum):
        if _is_container(node) or not isinstance(node.value, str):
            raise _ArgumentError("expected value", node.start + 1)
        if node.value not in shape.variants:
            expected = _one_of(shape.variants)
            raise _ArgumentError(f"unknown variant `{node.value}`, expected {expected}", node.end)
    else:
        _check_struct(node, shape)


def _check_struct(node: _Node, shape: _Struct) -> None:
    if node.members is None:
        raise _invalid_type(node, f"struct {shape.name}")
    fields = {f.name: f for f in shape.fields}
    seen: set[str] = set()
    for key, key_end, value in node.members:
        spec = fields.get(key)
        if spec is None:
            if shape.deny_unknown_fields:
                raise _ArgumentError(f"unknown field `{key}`, expected {_one_of(list(fields))}", key_end)
            continue
        if key in seen:
            raise _ArgumentError(f"duplicate field `{key}`", key_end)
        seen.add(key)
        _check(value, spec.shape)
    # Missing fields are noticed once the whole object has been read.
    for spec in shape.fields:
        if spec.name not in seen and not spec.optional:
            raise _ArgumentError(f"missing field `{spec.name}`", node.end)


def _checked_arguments(call: ToolCall, shape: _Struct) -> Mapping[str, Any]:
    """The call's arguments, parsed and checked against ``shape``. A mismatch goes to the model as
    the reference words it: serde_json's message, with its line and column (counted in bytes)."""
    if call.kind != "function":
        # A freeform call to a function tool: there is no JSON to read.
        raise FunctionCallError(f"{call.name} handler received unsupported payload")
    args = call.json_arguments()
    text = call.payload if isinstance(call.payload, str) and call.payload else "{}"
    try:
        _check(_parse_node(text, 0), shape)
    except _ArgumentError as exc:
        line_start = text.rfind("\n", 0, exc.offset) + 1
        line = text.count("\n", 0, exc.offset) + 1
        column = len(text[line_start : exc.offset].encode("utf-8", "surrogatepass"))
        raise FunctionCallError(
            f"failed to parse function arguments: {exc.message} at line {line} column {column}"
        ) from None
    assert isinstance(args, Mapping)  # the check above saw an object
    return args


async def update_plan(call: ToolCall, ctx: ToolContext) -> str:
    args = _checked_arguments(call, _UPDATE_PLAN_ARGS)
    steps = [{"step": step["step"], "status": step["status"]} for step in args["plan"]]
    await ctx.emit({"type": "plan_update", "explanation": args.get("explanation"), "plan": steps})
    return "Plan updated"


async def request_user_input(call: ToolCall, ctx: ToolContext) -> str:
    if ctx.collaboration_mode != "plan":
        # Like the reference: the model may only ask questions while planning.
        raise FunctionCallError(f"request_user_input is unavailable in {ctx.collaboration_mode.title()} mode")
    questions = _checked_arguments(call, _REQUEST_USER_INPUT_ARGS)["questions"]
    if any(not q.get("options") for q in questions):
        raise FunctionCallError("request_user_input requires non-empty options for every question")
    shaped = [
        {
            "id": q["id"],
            "header": q["header"],
            "question": q["question"],
            # The client always offers a free-form answer besides the options.
            "isOther": True,
            "isSecret": q.get("isSecret") is True,
            "options": [{"label": o["label"], "description": o["description"]} for o in q["options"]],
        }
        for q in questions
    ]
    request = {
        "type": "request_user_input",
        "call_id": call.call_id,
        "turn_id": ctx.turn_id,
        "questions": shaped,
    }
    await ctx.emit(request)
    # Interrupted while the question is open: the model hears that the question went unanswered, in
    # the reference's words, rather than the generic "aborted by user".
    ctx.aborted_output = "request_user_input was cancelled before receiving a response"
    answer = await ctx.client.request_user_input(ctx.turn_id, request)
    ctx.aborted_output = None
    ctx.next_id()
    # A failed or unreadable answer is an empty one, as the reference treats it.
    if not isinstance(answer, Mapping) or not _valid_answers(answer.get("answers")):
        answer = {"answers": {}}
    return json.dumps({"answers": answer["answers"]}, separators=(",", ":"))


def _valid_answers(answers: Any) -> bool:
    return isinstance(answers, Mapping) and all(
        isinstance(a, Mapping)
        and isinstance(a.get("answers"), list)
        and all(isinstance(x, str) for x in a["answers"])
        for a in answers.values()
    )


# Image formats a model accepts, by their leading bytes.
_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


async def view_image(call: ToolCall, ctx: ToolContext) -> str:
    args = _object_arguments(call)
    raw = args.get("path")
    if not isinstance(raw, str):
        raise FunctionCallError("failed to parse function arguments: missing field `path`")
    path = ctx.cwd / raw
    try:
        is_file = await trio.Path(path).is_file()
        if is_file:
            data = await trio.Path(path).read_bytes()
        else:
            await trio.Path(path).stat()
    except OSError as exc:
        reason = ExecError.from_os_error(exc).message
        raise FunctionCallError(f"unable to locate image at `{path}`: {reason}") from None
    if not is_file:
        raise FunctionCallError(f"image path `{path}` is not a file")
    await ctx.emit({"type": "view_image_tool_call", "call_id": call.call_id, "path": str(path)})
    ctx.extra_items.append({"type": "message", "role": "user", "content": [_image_content(path, data)]})
    return "attached local image path"


def _image_content(path: Path, data: bytes) -> dict[str, Any]:
    """The picture for the model, or (a file that isn't one) a note saying why it can't see it."""
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not mime.startswith("image/"):
        text = f"Codex could not read the local image at `{path}`: unsupported MIME type `{mime}`"
        return {"type": "input_text", "text": text}
    if not data.startswith(_IMAGE_MAGIC.get(mime, (b"",))) or mime not in _IMAGE_MAGIC:
        text = f"Codex cannot attach image at `{path}`: unsupported image format `{mime}`."
        return {"type": "input_text", "text": text}
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "input_image", "image_url": url}


async def dynamic_tool(call: ToolCall, ctx: ToolContext) -> str:
    arguments = call.json_arguments()
    request = {
        "type": "dynamic_tool_call_request",
        "callId": call.call_id,
        "turnId": ctx.turn_id,
        "tool": call.name,
        "arguments": arguments,
    }
    await ctx.emit(request)
    answer = await ctx.client.call_dynamic_tool(ctx.turn_id, request)
    if answer is None:
        raise FunctionCallError("dynamic tool request failed")
    output = answer.get("output") if isinstance(answer, Mapping) else None
    if not isinstance(output, str) or not isinstance(answer.get("success"), bool):
        raise FunctionCallError("dynamic tool response was invalid")
    return output


# codex-trio connects to no MCP servers: listings are empty and a named server is unknown. The calls
# still show as mcpToolCall items, with "codex" as the server when none is named, like the reference's.
_MCP_TOOLS = {
    "list_mcp_resources": ("resources/list", "resources"),
    "list_mcp_resource_templates": ("resources/templates/list", "resourceTemplates"),
    "read_mcp_resource": ("resources/read", None),
}


async def mcp_resource_tool(call: ToolCall, ctx: ToolContext) -> str:
    args = _object_arguments(call)
    operation, key = _MCP_TOOLS[call.name]
    server = args.get("server")
    if key is None:
        for field_name in ("server", "uri"):
            if not isinstance(args.get(field_name), str):
                raise FunctionCallError(f"failed to parse function arguments: missing field `{field_name}`")
    invocation = {
        "server": server if isinstance(server, str) and server else "codex",
        "tool": call.name,
        "arguments": dict(args),
    }
    base = {"call_id": call.call_id, "invocation": invocation}
    await ctx.emit({"type": "mcp_tool_call_begin", **base})
    started = trio.current_time()
    if key is not None and not (isinstance(server, str) and server):
        text = json.dumps({key: []}, separators=(",", ":"))
        result: dict[str, Any] = {"Ok": {"content": [{"text": text, "type": "text"}], "isError": False}}
    else:
        text = f"{operation} failed: unknown MCP server '{server}'"
        result = {"Err": text}
    elapsed = max(trio.current_time() - started, 0.0)
    duration = {"secs": int(elapsed), "nanos": int((elapsed % 1) * 1e9)}
    await ctx.emit({"type": "mcp_tool_call_end", **base, "duration": duration, "result": result})
    if "Err" in result:
        raise FunctionCallError(text)
    return text
