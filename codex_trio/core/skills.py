"""Skills: the ``SKILL.md`` files a client lists with ``skills/list``, found and read as the reference
(Codex CLI 0.94.0) does.

Roots, highest precedence first, taken from the configuration layers of the cwd:

- ``repo``: ``.codex/skills`` next to each project ``.codex`` folder between the cwd and the project
  root (untrusted ones included);
- ``user``: ``$CODEX_HOME/skills``;
- ``system``: ``$CODEX_HOME/skills/.system``, where the reference unpacks the skills it ships (we ship
  none; skills another install left there are listed);
- ``admin``: ``/etc/codex/skills``.

Each root is searched breadth first, at most six levels deep and 2000 directories, skipping names that
start with a dot; symlinked directories are followed except under ``system``. A ``SKILL.md`` starts with
YAML front matter between ``---`` lines that must give ``name`` and ``description`` (and may give
``metadata.short-description``); an optional ``agents/openai.yaml`` next to it adds ``interface`` and
``dependencies``. Unreadable skills are reported as errors (except system ones); bad optional metadata
is only logged. ``[[skills.config]]`` entries of config.toml with ``enabled = false`` disable a skill by
path.

YAML is parsed by PyYAML (imported when a skill is read) and decoded as the reference's serde_yaml
decodes it into its structs: the same implicit types, the same order of errors and the same messages.
"""

from __future__ import annotations

import logging
import math
import os
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

SkillScope = Literal["repo", "user", "system", "admin"]

SKILLS_FILENAME = "SKILL.md"
SKILLS_DIR_NAME = "skills"
SYSTEM_SKILLS_DIR_NAME = ".system"
METADATA_DIR = "agents"
METADATA_FILENAME = "openai.yaml"
MAX_NAME_LEN = 64
MAX_DESCRIPTION_LEN = 1024
MAX_SCAN_DEPTH = 6
MAX_DIRS_PER_ROOT = 2000
_SCOPE_RANK: dict[str, int] = {"repo": 0, "user": 1, "system": 2, "admin": 3}


# ------------------------------------------------------------------------------------------------
# YAML, decoded the way serde_yaml decodes it
#
# PyYAML does the scanning and parsing, with libyaml when it was built with it: serde_yaml's parser is
# a port of that C library, so syntax errors read the same (PyYAML's Python scanner words them its own
# way, and refuses a tab after a colon). Its events are assembled into nodes here rather than by
# ``yaml.compose`` because serde_yaml decodes a document from its events as far as the parser got: a
# value of the wrong type is reported even when the text breaks further on, and a break is only
# reported once decoding reaches it.

_TAG_PREFIX = "tag:yaml.org,2002:"
_NULL_TAG = _TAG_PREFIX + "null"
_BOOL_TAG = _TAG_PREFIX + "bool"
_INT_TAG = _TAG_PREFIX + "int"
_FLOAT_TAG = _TAG_PREFIX + "float"

# The implicit types of plain scalars as serde_yaml tells them apart (YAML 1.2's core schema, with its
# spellings): ``yes``, ``on``, ``017``, ``1_000``, ``0X1F`` and dates are strings.
_NULL_WORDS = frozenset({"~", "null", "Null", "NULL"})
_BOOL_WORDS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_RADIX_INT = re.compile(r"([-+]?)0(?:x([0-9a-fA-F]+)|o([0-7]+)|b([01]+))")
_DECIMAL_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_DECIMAL_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?")
# What an explicit !!float accepts: integers too.
_TAGGED_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {
    **{sign + word: math.inf for sign in ("", "+") for word in (".inf", ".Inf", ".INF")},
    **{"-" + word: -math.inf for word in (".inf", ".Inf", ".INF")},
    **{word: math.nan for word in (".nan", ".NaN", ".NAN")},
}
_IMPLICIT_TYPES = (
    (_NULL_TAG, rf"(?:{'|'.join(map(re.escape, sorted(_NULL_WORDS)))})?\Z", ["", "~", "n", "N"]),
    (_BOOL_TAG, rf"(?:{'|'.join(_BOOL_WORDS)})\Z", list("tTfF")),
    (_INT_TAG, rf"(?:{_RADIX_INT.pattern}|{_DECIMAL_INT.pattern})\Z", list("-+0123456789")),
    (
        _FLOAT_TAG,
        rf"(?:{_DECIMAL_FLOAT.pattern}|{'|'.join(map(re.escape, _SPECIAL_FLOATS))})\Z",
        list("-+.0123456789"),
    ),
)


def yaml_core_loader() -> Any:
    """A PyYAML loader class (the C one when libyaml is there) whose plain scalars take serde_yaml's
    implicit types instead of YAML 1.1's: ``yaml.load(text, Loader=yaml_core_loader())`` reads
    ``on: yes`` as ``{"on": "yes"}`` and ``0o17`` as 15."""
    import yaml

    base = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    loader: Any = type("CoreSchemaLoader", (base,), {"yaml_implicit_resolvers": {}})
    for tag, pattern, first in _IMPLICIT_TYPES:
        loader.add_implicit_resolver(tag, re.compile(pattern), first)
    return loader


class YamlError(Exception):
    """A YAML text that cannot be read; ``str()`` is the reference's message."""


@dataclass(eq=False)
class YamlNode:
    """A node as PyYAML's events describe it (an alias is the node it names)."""

    kind: Literal["scalar", "seq", "map"]
    line: int  # 0-based, as libyaml counts (a character is one column)
    column: int
    value: str = ""
    # Scalars: the tag written in the text, else the implicit type of a plain scalar (str when quoted).
    tag: str = ""
    explicit: bool = False
    plain: bool = False
    # A sequence's items; a mapping's keys and values in turn.
    items: list[YamlNode] = field(default_factory=list)
    # The parse error that cut this collection short (its end, or the value of its last key, is missing).
    broken: YamlError | None = None


@dataclass
class YamlDocument:
    root: YamlNode
    # Something follows the first document: serde_yaml refuses that once the first one is decoded.
    more: bool = False


def _position(line: int, column: int) -> str:
    """serde_yaml leaves the position out at the very start of the text."""
    return f" at line {line + 1} column {column + 1}" if line or column else ""


def _place(mark: Any, bom: int) -> tuple[int, int]:
    """A mark's line and column. PyYAML does not count a byte order mark at the start of the text;
    serde_yaml's libyaml counts it as the first column (``bom`` is 1 then)."""
    return mark.line, mark.column + (bom if mark.line == 0 else 0)


def _syntax_message(exc: Exception, bom: int) -> str:
    """libyaml's problem and context, laid out as serde_yaml shows them."""
    import yaml

    if isinstance(exc, yaml.reader.ReaderError):
        return exc.reason + (f" at position {exc.position}" if exc.position else "")
    if not isinstance(exc, yaml.MarkedYAMLError):
        return str(exc)
    # libyaml's spelling, corrected in the port serde_yaml uses.
    message = (exc.problem or "").replace("hexdecimal", "hexadecimal")
    problem_at = _position(*_place(exc.problem_mark, bom)) if exc.problem_mark else ""
    message += problem_at
    if exc.context:
        message += f", {exc.context}"
        if exc.context_mark is not None:
            context_at = _position(*_place(exc.context_mark, bom))
            if context_at != problem_at:
                message += context_at
    return message


def parse_yaml(text: str) -> YamlDocument:
    """The first document of ``text``, as far as it parses: collections cut short by an error carry it
    (raised when decoding reaches it). Raises YamlError when not even the first node could be read."""
    import yaml

    bom = 1 if text.startswith("\ufeff") else 0
    try:
        # The pure Python reader checks the characters here (libyaml's while parsing).
        loader = yaml_core_loader()(text)
    except yaml.YAMLError as exc:
        raise YamlError(_syntax_message(exc, bom)) from None
    root: YamlNode | None = None
    stack: list[YamlNode] = []
    anchors: dict[str, YamlNode] = {}
    ended = more = False
    error: YamlError | None = None
    try:
        while True:
            event = loader.get_event()
            line, column = _place(event.start_mark, bom)
            if isinstance(event, yaml.StreamEndEvent):
                if root is None:
                    # An empty text reads as an empty plain scalar where the stream ends, which libyaml
                    # puts at the start of a line (PyYAML's Python scanner does not).
                    line, column = (line + 1, 0) if column else (line, column)
                    root = YamlNode("scalar", line, column, tag=_NULL_TAG, plain=True)
                break
            if ended:
                more = True
                break
            if isinstance(event, yaml.DocumentEndEvent):
                ended = True
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                stack.pop()
                continue
            if isinstance(event, yaml.AliasEvent):
                target = anchors.get(event.anchor) if event.anchor is not None else None
                if target is None:
                    error = YamlError("unknown anchor" + _position(line, column))
                    break
                node = target
            elif isinstance(event, yaml.ScalarEvent):
                explicit = event.tag is not None
                tag = event.tag or loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                node = YamlNode(
                    "scalar", line, column, event.value, tag, explicit, plain=not event.style
                )
            elif isinstance(event, yaml.CollectionStartEvent):
                kind: Literal["seq", "map"] = "seq" if isinstance(event, yaml.SequenceStartEvent) else "map"
                node = YamlNode(kind, line, column)
            else:  # the starts of the stream and of the document
                continue
            if not isinstance(event, yaml.AliasEvent) and event.anchor is not None:
                anchors[event.anchor] = node
            if stack:
                stack[-1].items.append(node)
            elif root is None:
                root = node
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append(node)
    except yaml.YAMLError as exc:
        if ended or (root is not None and not stack):
            more = True
        else:
            error = YamlError(_syntax_message(exc, bom))
    finally:
        loader.dispose()
    if error is not None:
        if root is None:
            raise error
        for node in stack:
            node.broken = error
    assert root is not None
    return YamlDocument(root, more)


# ------------------------------------------------------------------------------------------------
# Typed reading, with serde's wording


class _DecodeError(Exception):
    """A value of the wrong type or shape. Like serde_yaml, the innermost value that knows its place in
    the document gives the error its path and position on the way out."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.place: tuple[str, int, int] | None = None

    def at(self, path: str, node: YamlNode) -> _DecodeError:
        if self.place is None:
            self.place = (path, node.line, node.column)
        return self

    def __str__(self) -> str:
        if self.place is None:
            return self.message
        path, line, column = self.place
        return (f"{path}: " if path else "") + self.message + _position(line, column)


# Reads one value from a node and the path that leads to it.
_Reader = Callable[[YamlNode, str], Any]

# How Rust's Debug shows a string: these escaped, other unprintable characters and combining marks as
# \u{...}.
_RUST_ESCAPES = {"\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", '"': '\\"', "\0": "\\0"}
_RUST_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})


def _rust_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _RUST_ESCAPES:
            out.append(_RUST_ESCAPES[ch])
        elif ch != " " and unicodedata.category(ch) in _RUST_UNPRINTABLE:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return 'string "' + "".join(out) + '"'


def _rust_float(number: float) -> str:
    """Rust's Display of an f64 (every digit, no exponent), with the ``.0`` serde adds to whole numbers."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    text = format(Decimal(repr(number)), "f")
    return text if "." in text else text + ".0"


def _integer(text: str) -> int | None:
    """The value of an integer scalar; None when it is not one or too long for 128 bits (which spares
    converting thousands of digits)."""
    match = _RADIX_INT.fullmatch(text)
    if match:
        sign, hexadecimal, octal, binary = match.groups()
        number = int(hexadecimal, 16) if hexadecimal else int(octal, 8) if octal else int(binary, 2)
        return -number if sign == "-" else number
    if _DECIMAL_INT.fullmatch(text) and len(text) <= 41:
        return int(text)
    return None


def _float(text: str, *, tagged: bool) -> float | None:
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if (_TAGGED_FLOAT if tagged else _DECIMAL_FLOAT).fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else None
    return None


def _unexpected_scalar(node: YamlNode, expected: str) -> _DecodeError:
    """serde_yaml's invalid-type error for a scalar, which names the scalar by its type."""
    value, tag = node.value, node.tag
    unexpected = _rust_string(value)
    wrong_value: str | None = None
    if tag == _NULL_TAG:
        if node.explicit and value not in _NULL_WORDS:
            wrong_value = "null"
        else:
            unexpected = "unit value"
    elif tag == _BOOL_TAG:
        if value in _BOOL_WORDS:
            unexpected = f"boolean `{str(_BOOL_WORDS[value]).lower()}`"
        else:
            wrong_value = "a boolean"
    elif tag == _INT_TAG:
        number = _integer(value)
        if number is not None and -(2**63) <= number < 2**64:
            unexpected = f"integer `{number}`"
        elif number is not None and 0 <= number < 2**128:
            unexpected = f"integer `{number}` as u128"
        elif number is not None and -(2**127) <= number < 0:
            unexpected = f"integer `{number}` as i128"
        elif node.explicit:
            wrong_value = "an integer"
        elif _DECIMAL_INT.fullmatch(value) and math.isfinite(float(value)):
            # Too wide for any integer type: serde_yaml tries a float next.
            unexpected = f"floating point `{_rust_float(float(value))}`"
    elif tag == _FLOAT_TAG:
        real = _float(value, tagged=node.explicit)
        if real is not None:
            unexpected = f"floating point `{_rust_float(real)}`"
        elif node.explicit:
            wrong_value = "a float"
    if wrong_value is not None:
        return _DecodeError(f"invalid value: {_rust_string(value)}, expected {wrong_value}")
    return _DecodeError(f"invalid type: {unexpected}, expected {expected}")


def _invalid_type(node: YamlNode, expected: str) -> _DecodeError:
    if node.kind == "seq":
        return _DecodeError(f"invalid type: sequence, expected {expected}")
    if node.kind == "map":
        return _DecodeError(f"invalid type: map, expected {expected}")
    return _unexpected_scalar(node, expected)


def _whole(node: YamlNode) -> None:
    """Raise the parse error that cut ``node`` short, as serde_yaml does on reading past the break."""
    if node.broken is not None:
        raise node.broken


def _is_empty_value(node: YamlNode) -> bool:
    """``key:`` with nothing after it: serde_yaml reads it as an empty struct or sequence."""
    return node.kind == "scalar" and node.plain and not node.value


def _string_reader(expected: str) -> _Reader:
    """A string field: any scalar is taken as written (``123``, ``~`` and ``true`` too)."""

    def read(node: YamlNode, path: str) -> str:
        if node.kind == "scalar":
            return node.value
        raise _invalid_type(node, expected).at(path, node)

    return read


_read_string = _string_reader("a string")
_read_path = _string_reader("path string")


def _optional(inner: _Reader) -> _Reader:
    """An ``Option``: null when plain and empty or a null word, else ``inner``'s value."""

    def read(node: YamlNode, path: str) -> Any:
        if node.kind == "scalar" and node.plain and node.tag == _NULL_TAG:
            if not node.explicit or node.value in _NULL_WORDS:
                return None
            # Left for the enclosing struct to place, as serde_yaml does.
            raise _DecodeError(f"invalid value: {_rust_string(node.value)}, expected null")
        return inner(node, path)

    return read


def _struct(name: str, fields: Mapping[str, _Reader], required: Sequence[str] = ()) -> _Reader:
    """A struct: known keys read in document order (each at most once), others skipped."""

    def read(node: YamlNode, path: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        try:
            if node.kind == "map":
                items = node.items
            elif _is_empty_value(node):
                items = []
            else:
                raise _invalid_type(node, f"struct {name}")
            for index in range(0, len(items), 2):
                key = items[index]
                if key.kind != "scalar":
                    raise _invalid_type(key, "field identifier").at(path, key)
                if index + 1 == len(items):
                    _whole(node)
                value = items[index + 1]
                reader = fields.get(key.value)
                if reader is None:
                    _whole(value)
                    continue
                if key.value in values:
                    raise _DecodeError(f"duplicate field `{key.value}`")
                values[key.value] = reader(value, f"{path}.{key.value}" if path else key.value)
            _whole(node)
            for field_name in required:
                if field_name not in values:
                    raise _DecodeError(f"missing field `{field_name}`")
        except _DecodeError as exc:
            raise exc.at(path, node) from None
        return values

    return read


def _sequence(item: _Reader) -> _Reader:
    def read(node: YamlNode, path: str) -> list[Any]:
        try:
            if node.kind == "seq":
                items = node.items
            elif _is_empty_value(node):
                items = []
            else:
                raise _invalid_type(node, "a sequence")
            values = [item(child, f"{path}[{index}]") for index, child in enumerate(items)]
            _whole(node)
        except _DecodeError as exc:
            raise exc.at(path, node) from None
        return values

    return read


def _decode(document: YamlDocument, reader: _Reader) -> Any:
    value = reader(document.root, "")
    if document.more:
        raise YamlError("deserializing from YAML containing more than one document is not supported")
    return value


def sanitize_single_line(raw: str) -> str:
    """Runs of whitespace (line breaks included) become one space; ends trimmed."""
    return " ".join(raw.split())


# ------------------------------------------------------------------------------------------------
# Skills


class SkillInterface(TypedDict):
    displayName: str | None
    shortDescription: str | None
    iconSmall: str | None
    iconLarge: str | None
    brandColor: str | None
    defaultPrompt: str | None


class SkillToolDependency(TypedDict, total=False):
    type: str
    value: str
    description: str
    transport: str
    command: str
    url: str


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    short_description: str | None
    interface: SkillInterface | None
    dependencies: list[SkillToolDependency] | None
    path: Path
    scope: SkillScope

    def to_wire(self, *, enabled: bool) -> dict[str, Any]:
        """A ``SkillMetadata`` of skills/list: absent optional parts are left out, as the reference does."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.short_description is not None:
            out["shortDescription"] = self.short_description
        if self.interface is not None:
            out["interface"] = dict(self.interface)
        if self.dependencies is not None:
            out["dependencies"] = {"tools": [dict(tool) for tool in self.dependencies]}
        out["path"] = str(self.path)
        out["scope"] = self.scope
        out["enabled"] = enabled
        return out


@dataclass(frozen=True)
class SkillError:
    path: Path
    message: str

    def to_wire(self) -> dict[str, str]:
        return {"path": str(self.path), "message": self.message}


@dataclass
class SkillLoadOutcome:
    skills: list[Skill] = field(default_factory=list)
    errors: list[SkillError] = field(default_factory=list)


class SkillParseError(Exception):
    pass


def _canonical(path: Path) -> Path | None:
    try:
        return Path(os.path.realpath(path, strict=True))
    except (OSError, ValueError):
        return None


def canonical_or_same(path: Path) -> Path:
    """The path with symlinks resolved if it exists, else as given (like the reference's dunce)."""
    return _canonical(path) or path


def extract_frontmatter(contents: str) -> str | None:
    """The lines between a leading ``---`` line and the next one; None if there are none."""
    lines = contents.split("\n")
    if contents.endswith("\n"):
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not lines or lines[0].strip() != "---":
        return None
    collected: list[str] = []
    for line in lines[1:]:
        if line.strip() == "---":
            return "\n".join(collected) if collected else None
        collected.append(line)
    return None


def _check_length(value: str, limit: int, field_name: str) -> None:
    if not value:
        raise SkillParseError(f"missing field `{field_name}`")
    if len(value) > limit:
        raise SkillParseError(f"invalid {field_name}: exceeds maximum length of {limit} characters")


def parse_skill_file(path: Path, scope: SkillScope) -> Skill:
    """One skill from its SKILL.md; raises SkillParseError with the reference's message."""
    try:
        contents = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise SkillParseError("failed to read file: stream did not contain valid UTF-8") from None
    except OSError as exc:
        raise SkillParseError(f"failed to read file: {exc.strerror or exc} (os error {exc.errno})") from None
    frontmatter = extract_frontmatter(contents)
    if frontmatter is None:
        raise SkillParseError("missing YAML frontmatter delimited by ---")
    try:
        name, description, short = _frontmatter_fields(frontmatter)
    except (YamlError, _DecodeError) as exc:
        raise SkillParseError(f"invalid YAML: {exc}") from None
    name = sanitize_single_line(name)
    description = sanitize_single_line(description)
    short = sanitize_single_line(short) if short is not None else None
    short = short or None
    interface, dependencies = load_skill_metadata(path)
    _check_length(name, MAX_NAME_LEN, "name")
    _check_length(description, MAX_DESCRIPTION_LEN, "description")
    if short is not None:
        _check_length(short, MAX_DESCRIPTION_LEN, "metadata.short-description")
    return Skill(
        name=name,
        description=description,
        short_description=short,
        interface=interface,
        dependencies=dependencies,
        path=canonical_or_same(path),
        scope=scope,
    )


_FRONTMATTER = _struct(
    "SkillFrontmatter",
    {
        "name": _read_string,
        "description": _read_string,
        "metadata": _struct("SkillFrontmatterMetadata", {"short-description": _optional(_read_string)}),
    },
    required=("name", "description"),
)


def _frontmatter_fields(frontmatter: str) -> tuple[str, str, str | None]:
    values = _decode(parse_yaml(frontmatter), _FRONTMATTER)
    metadata = values.get("metadata") or {}
    return values["name"], values["description"], metadata.get("short-description")


def _resolve_str(value: str | None, limit: int, field_name: str) -> str | None:
    if value is None:
        return None
    value = sanitize_single_line(value)
    if not value:
        log.warning("ignoring %s: value is empty", field_name)
        return None
    if len(value) > limit:
        log.warning("ignoring %s: exceeds maximum length of %d characters", field_name, limit)
        return None
    return value


def _resolve_color(value: str | None, field_name: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"#[0-9A-Fa-f]{6}", value):
        return value
    log.warning("ignoring %s: expected #RRGGBB, got %s", field_name, value)
    return None


def _resolve_icon(skill_dir: Path, value: str | None, field_name: str) -> str | None:
    """Icons must be relative paths under the skill's ``assets/``."""
    if not value:
        return None
    relative = PurePosixPath(value)
    if relative.is_absolute():
        log.warning("ignoring %s: icon must be a relative assets path", field_name)
        return None
    if ".." in relative.parts:
        log.warning("ignoring %s: icon path must not contain '..'", field_name)
        return None
    if not relative.parts or relative.parts[0] != "assets":
        log.warning("ignoring %s: icon path must be under assets/", field_name)
        return None
    return str(skill_dir.joinpath(*relative.parts))


_INTERFACE_FIELDS = ("display_name", "short_description", "icon_small", "icon_large", "brand_color",
                     "default_prompt")
_TOOL_FIELDS = ("type", "value", "description", "transport", "command", "url")
_TOOL_LIMITS = {"type": MAX_NAME_LEN, "transport": MAX_NAME_LEN}


def load_skill_metadata(skill_path: Path) -> tuple[SkillInterface | None, list[SkillToolDependency] | None]:
    """``interface`` and ``dependencies`` from ``agents/openai.yaml``; problems only get logged."""
    skill_dir = skill_path.parent
    metadata_path = skill_dir / METADATA_DIR / METADATA_FILENAME
    if not metadata_path.exists():
        return None, None
    try:
        contents = metadata_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("ignoring %s: failed to read %s: %s", metadata_path, METADATA_FILENAME, exc)
        return None, None
    try:
        interface_raw, tools_raw = _metadata_fields(contents)
    except (YamlError, _DecodeError) as exc:
        log.warning("ignoring %s: invalid %s: %s", metadata_path, METADATA_FILENAME, exc)
        return None, None
    interface: SkillInterface | None = None
    if interface_raw is not None:
        interface = {
            "displayName": _resolve_str(
                interface_raw.get("display_name"), MAX_NAME_LEN, "interface.display_name"
            ),
            "shortDescription": _resolve_str(
                interface_raw.get("short_description"), MAX_DESCRIPTION_LEN, "interface.short_description"
            ),
            "iconSmall": _resolve_icon(skill_dir, interface_raw.get("icon_small"), "interface.icon_small"),
            "iconLarge": _resolve_icon(skill_dir, interface_raw.get("icon_large"), "interface.icon_large"),
            "brandColor": _resolve_color(interface_raw.get("brand_color"), "interface.brand_color"),
            "defaultPrompt": _resolve_str(
                interface_raw.get("default_prompt"), MAX_DESCRIPTION_LEN, "interface.default_prompt"
            ),
        }
        if all(value is None for value in interface.values()):
            interface = None
    tools: list[SkillToolDependency] = []
    for raw in tools_raw or []:
        tool = _resolve_tool(raw)
        if tool is not None:
            tools.append(tool)
    return interface, (tools or None)


def _resolve_tool(raw: Mapping[str, str | None]) -> SkillToolDependency | None:
    """One dependency, or None when its type or value is missing or unusable (logged)."""
    tool: dict[str, str] = {}
    for name in _TOOL_FIELDS:
        label = f"dependencies.tools.{name}"
        required = name in ("type", "value")
        text = raw.get(name)
        if text is None:
            if required:
                log.warning("ignoring %s: value is missing", label)
                return None
            continue
        resolved = _resolve_str(text, _TOOL_LIMITS.get(name, MAX_DESCRIPTION_LEN), label)
        if resolved is not None:
            tool[name] = resolved
        elif required:
            return None
    return cast(SkillToolDependency, tool)


_INTERFACE = _struct("Interface", {
    name: _optional(_read_path if name.startswith("icon_") else _read_string) for name in _INTERFACE_FIELDS
})
_DEPENDENCY_TOOL = _struct("DependencyTool", {name: _optional(_read_string) for name in _TOOL_FIELDS})
_METADATA_FILE = _struct("SkillMetadataFile", {
    "interface": _optional(_INTERFACE),
    "dependencies": _optional(_struct("Dependencies", {"tools": _sequence(_DEPENDENCY_TOOL)})),
})


def _metadata_fields(
    contents: str,
) -> tuple[dict[str, str | None] | None, list[dict[str, str | None]] | None]:
    values = _decode(parse_yaml(contents), _METADATA_FILE)
    dependencies = values.get("dependencies")
    return values.get("interface"), (dependencies.get("tools") if dependencies else None)


def skill_roots(config: Config) -> list[tuple[Path, SkillScope]]:
    """Where skills are searched for the configuration of one cwd, highest precedence first."""
    roots: list[tuple[Path, SkillScope]] = []
    for layer in reversed(config.layers):
        if layer.kind == "project" and layer.dot_codex_folder is not None:
            roots.append((layer.dot_codex_folder / SKILLS_DIR_NAME, "repo"))
        elif layer.kind == "user" and layer.file is not None:
            user_skills = layer.file.parent / SKILLS_DIR_NAME
            roots.append((user_skills, "user"))
            roots.append((user_skills / SYSTEM_SKILLS_DIR_NAME, "system"))
        elif layer.kind == "system" and layer.file is not None:
            roots.append((layer.file.parent / SKILLS_DIR_NAME, "admin"))
    return roots


def discover_skills(roots: Iterable[tuple[Path, SkillScope]]) -> SkillLoadOutcome:
    outcome = SkillLoadOutcome()
    for root, scope in roots:
        _discover_under_root(root, scope, outcome)
    seen: set[Path] = set()
    unique: list[Skill] = []
    for skill in outcome.skills:
        if skill.path not in seen:
            seen.add(skill.path)
            unique.append(skill)
    unique.sort(key=lambda s: (_SCOPE_RANK[s.scope], s.name, str(s.path)))
    outcome.skills = unique
    return outcome


def _discover_under_root(root: Path, scope: SkillScope, outcome: SkillLoadOutcome) -> None:
    start = _canonical(root)
    if start is None or not start.is_dir():
        return
    follow_symlinks = scope != "system"
    visited = {start}
    queue: deque[tuple[Path, int]] = deque([(start, 0)])
    truncated = False

    def enqueue(path: Path, depth: int) -> None:
        nonlocal truncated
        if depth > MAX_SCAN_DEPTH:
            return
        if len(visited) >= MAX_DIRS_PER_ROOT:
            truncated = True
            return
        if path not in visited:
            visited.add(path)
            queue.append((path, depth))

    while queue:
        directory, depth = queue.popleft()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            log.error("failed to read skills dir %s: %s", directory, exc)
            continue
        # scandir's order is the directory's own (as the reference's read_dir): not sorted.
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    if not follow_symlinks:
                        continue
                    if Path(entry.path).is_dir():
                        target = _canonical(path)
                        if target is not None:
                            enqueue(target, depth + 1)
                    continue
                if entry.is_dir(follow_symlinks=False):
                    target = _canonical(path)
                    if target is not None:
                        enqueue(target, depth + 1)
                    continue
                is_file = entry.is_file(follow_symlinks=False)
            except OSError as exc:
                log.error("failed to stat skills entry %s: %s", path, exc)
                continue
            if is_file and entry.name == SKILLS_FILENAME:
                try:
                    outcome.skills.append(parse_skill_file(path, scope))
                except SkillParseError as exc:
                    if scope != "system":
                        outcome.errors.append(SkillError(path, str(exc)))
    if truncated:
        log.warning("skills scan truncated after %d directories (root: %s)", MAX_DIRS_PER_ROOT, start)


def disabled_skill_paths(config: Config) -> set[Path]:
    """Skill paths that ``[[skills.config]]`` entries disable (``enabled = false``)."""
    skills = config.raw.get("skills")
    entries = skills.get("config") if isinstance(skills, dict) else None
    disabled: set[Path] = set()
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        path = canonical_or_same(Path(entry["path"]))
        if entry.get("enabled") is False:
            disabled.add(path)
        elif entry.get("enabled") is True:
            disabled.discard(path)
    return disabled


# ------------------------------------------------------------------------------------------------
# skills/config/write


class SkillConfigWriteError(Exception):
    pass


def normalize_skill_config_path(path: str) -> str:
    return str(canonical_or_same(Path(path))) if path else path


def set_skill_enabled(config_file: Path, skill_path: str, enabled: bool) -> bool:
    """Record in config.toml whether the skill at ``skill_path`` is enabled: disabling adds (or
    updates) a ``[[skills.config]]`` entry with ``enabled = false``, enabling removes the entry (and the
    tables it leaves empty). Entries match by canonical path. Returns whether the file changed; raises
    SkillConfigWriteError if it cannot be read, parsed or written."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError
    from tomlkit.items import AoT, Table

    from .config import toml_syntax_error_snippet
    from .config_edit import write_atomically

    try:
        text = config_file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise SkillConfigWriteError(str(exc)) from None
    syntax = toml_syntax_error_snippet(text, config_file)
    if syntax is not None:
        raise SkillConfigWriteError(syntax)
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise SkillConfigWriteError(str(exc)) from None
    target = normalize_skill_config_path(skill_path)

    def matches(entry: Any) -> bool:
        value = entry.get("path") if isinstance(entry, Table) else None
        return isinstance(value, str) and normalize_skill_config_path(value) == target

    skills = doc.get("skills")
    if not isinstance(skills, Table):
        if enabled:
            return False
        if "skills" in doc:
            del doc["skills"]
        skills = tomlkit.table(is_super_table=True)
        doc.append("skills", skills)
    overrides = skills.get("config")
    if not isinstance(overrides, AoT):
        if enabled:
            return False
        if "config" in skills:
            del skills["config"]
        overrides = tomlkit.aot()
        skills.append("config", overrides)
    index = next((i for i, entry in enumerate(overrides) if matches(entry)), None)
    if enabled:
        if index is None:
            return False
        del overrides[index]
        if len(overrides) == 0:
            del skills["config"]
            if len(skills) == 0:
                del doc["skills"]
    elif index is not None:
        overrides[index]["path"] = target
        overrides[index]["enabled"] = False
    else:
        entry = tomlkit.table()
        entry.add("path", target)
        entry.add("enabled", False)
        if len(overrides) > 0 and not overrides[-1].as_string().endswith("\n\n"):
            # A blank line between entries, as the reference writes them.
            entry.trivia.indent = "\n"
        overrides.append(entry)
    new_text = _keep_trailing_newlines(text, tomlkit.dumps(doc))
    try:
        write_atomically(config_file, new_text)
    except OSError as exc:
        raise SkillConfigWriteError(str(exc)) from None
    return True


def _keep_trailing_newlines(original: str, edited: str) -> str:
    """tomlkit ties the blank lines at the end of the file to the last table (they move or stay
    behind when tables are added or removed); the reference keeps the file's own ending."""
    if not edited.strip():
        return edited
    wanted = max(len(original) - len(original.rstrip("\n")), 1)
    return edited.rstrip("\n") + "\n" * wanted
