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

The front matter is read by a small YAML reader covering what skill files use (block and flow
collections, plain, quoted and block scalars, comments). Anchors, aliases and tags are refused.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
# A small YAML reader


class YamlError(Exception):
    """Invalid YAML; ``str()`` reads like the reference's messages (with a 1-based position)."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} at line {line} column {column}")


NodeKind = Literal["scalar", "seq", "map", "null"]


@dataclass
class Node:
    kind: NodeKind
    value: Any
    line: int
    column: int
    # A flow collection left open until the end of the text. serde_yaml reads events in order, so a
    # value of the wrong type there is reported before the syntax error; see _expect_map and _string.
    error: YamlError | None = None

    def describe(self) -> str:
        """How serde_yaml names a value of the wrong type."""
        if self.kind == "seq":
            return "sequence"
        if self.kind == "map":
            return "map"
        if self.kind == "null":
            return "unit value"
        return f'string "{self.value}"'


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
    "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0",
    "L": "\u2028", "P": "\u2029",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def _is_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


_COMMENT = re.compile(r"(^|[ \t])#")
_MAPPING_COLON = re.compile(r":(\s|$)")


def _strip_comment(text: str) -> str:
    """A plain scalar's text without a trailing `` # comment``."""
    match = _COMMENT.search(text)
    return (text[: match.start()] if match else text).strip()


def _is_item(content: str) -> bool:
    return content == "-" or content.startswith(("- ", "-\t"))


def _unescape(text: str, line: int, column: int) -> str:
    """The value of a double-quoted scalar's text (``line``/``column`` locate it, 0-based)."""
    out: list[str] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch != "\\":
            out.append(ch)
            pos += 1
            continue
        code = text[pos + 1 : pos + 2]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            pos += 2
        elif code in _HEX_ESCAPES:
            width = _HEX_ESCAPES[code]
            digits = text[pos + 2 : pos + 2 + width]
            if len(digits) != width or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise YamlError("did not find expected hexdecimal number", line + 1, column + 1)
            out.append(chr(int(digits, 16)))
            pos += 2 + width
        else:
            message = "found unknown escape character while parsing a quoted scalar"
            raise YamlError(message, line + 1, column + 1)
    return "".join(out)


def _split_key(content: str) -> tuple[str, int] | None:
    """``(key, offset just past the colon)`` when ``content`` starts a ``key: value`` entry."""
    if not content or content[0] in "[{#" or _is_item(content):
        return None
    if content[0] in "'\"":
        end = _closing_quote(content, 1, content[0])
        if end is None:
            return None
        after = content[end + 1 :]
        gap = len(after) - len(after.lstrip(" "))
        if not _MAPPING_COLON.match(after, gap):
            return None
        raw = content[1:end]
        key = raw.replace("''", "'") if content[0] == "'" else _unescape(raw, 0, 0)
        return key, end + 1 + gap + 1
    colon = _MAPPING_COLON.search(content)
    comment = _COMMENT.search(content)
    if colon is None or (comment is not None and comment.start() < colon.start()):
        return None
    key = content[: colon.start()].rstrip()
    return (key, colon.start() + 1) if key else None


def _closing_quote(line: str, pos: int, quote: str) -> int | None:
    while pos < len(line):
        ch = line[pos]
        if quote == "'" and ch == "'":
            if line[pos + 1 : pos + 2] == "'":
                pos += 2
                continue
            return pos
        if quote == '"':
            if ch == "\\":
                pos += 2
                continue
            if ch == '"':
                return pos
        pos += 1
    return None


def _fold(parts: Sequence[str]) -> str:
    """Line folding of plain and quoted scalars: a line break is a space, an empty line a newline."""
    out = parts[0] if parts else ""
    blank = 0
    for part in parts[1:]:
        if part == "":
            blank += 1
            continue
        out += ("\n" * blank if blank else " ") + part
        blank = 0
    return out


def _fold_block(lines: Sequence[str]) -> str:
    """A folded (``>``) block scalar: a line break becomes a space, except around more-indented
    lines; each empty line stands for one newline (the break before it is dropped)."""
    out = lines[0] if lines else ""
    for previous, line in itertools.pairwise(lines):
        if line == "":
            out += "\n"
        elif previous == "":
            out += line
        elif line[:1] in " \t" or previous[:1] in " \t":
            out += "\n" + line
        else:
            out += " " + line
    return out


class _YamlReader:
    """Recursive descent over lines; ``self.i`` is the next line not yet consumed. Positions in
    errors are 1-based, columns are 0-based internally."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.i = 0

    def _indent(self, index: int) -> int:
        line = self.lines[index]
        count = len(line) - len(line.lstrip(" "))
        if line[count : count + 1] == "\t":
            raise self._error("found a tab character where an indentation space is expected", index, count)
        return count

    def _skip_blank(self) -> None:
        while self.i < len(self.lines) and _is_blank(self.lines[self.i]):
            self.i += 1

    def _error(self, message: str, index: int, column: int) -> YamlError:
        return YamlError(message, index + 1, column + 1)

    # -- structure ------------------------------------------------------------------------------

    def document(self) -> Node:
        self._skip_blank()
        if self.i >= len(self.lines):
            return Node("null", None, 1, 1)
        node = self._block(self._indent(self.i), parent=-1)
        self._skip_blank()
        if self.i < len(self.lines):
            raise self._error("did not find expected <document start>", self.i, self._indent(self.i))
        return node

    def _block(self, indent: int, parent: int) -> Node:
        """The node whose text starts at column ``indent`` of the current line."""
        content = self.lines[self.i][indent:]
        if _is_item(content):
            return self._sequence(indent)
        if _split_key(content) is not None:
            return self._mapping(indent)
        return self._inline_value(self.i, indent, parent)

    def _mapping(self, indent: int) -> Node:
        start = self.i
        entries: dict[str, Node] = {}
        while True:
            self._skip_blank()
            if self.i >= len(self.lines):
                break
            current = self._indent(self.i)
            if current < indent:
                break
            split = _split_key(self.lines[self.i][indent:]) if current == indent else None
            if split is None:
                raise self._error("did not find expected key", self.i, current)
            key, value_offset = split
            if key in entries:
                raise self._error(f'duplicate entry with key "{key}"', self.i, indent)
            entries[key] = self._after_key(self.i, indent + value_offset, indent)
        return Node("map", entries, start + 1, indent + 1)

    def _sequence(self, indent: int) -> Node:
        start = self.i
        items: list[Node] = []
        while True:
            self._skip_blank()
            if self.i >= len(self.lines) or self._indent(self.i) != indent:
                break
            line = self.lines[self.i]
            if not _is_item(line[indent:]):
                break
            rest = line[indent + 1 :]
            if _strip_comment(rest) == "":
                self.i += 1
                items.append(self._nested(indent, self.i - 1, indent + 1, same_indent_sequence=False))
                continue
            # "- item": the item is laid out where its text starts, as if the dash were a space.
            offset = indent + 1 + (len(rest) - len(rest.lstrip(" ")))
            self.lines[self.i] = line[:indent] + " " + rest
            items.append(self._block(offset, parent=indent))
        return Node("seq", items, start + 1, indent + 1)

    def _nested(self, parent: int, line: int, column: int, *, same_indent_sequence: bool) -> Node:
        """The value of a key or dash with nothing after it: the more indented block below, else null.
        A mapping's value may also be a sequence at the key's own indentation."""
        self._skip_blank()
        if self.i < len(self.lines):
            indent = self._indent(self.i)
            sequence_here = same_indent_sequence and _is_item(self.lines[self.i][indent:])
            if indent > parent or (indent == parent and sequence_here):
                return self._block(indent, parent)
        return Node("null", None, line + 1, column + 1)

    def _after_key(self, index: int, offset: int, indent: int) -> Node:
        rest = self.lines[index][offset:]
        column = offset + (len(rest) - len(rest.lstrip(" \t")))
        if _strip_comment(rest) == "":
            self.i = index + 1
            return self._nested(indent, index, column, same_indent_sequence=True)
        return self._inline_value(index, column, indent)

    def _inline_value(self, index: int, column: int, parent: int) -> Node:
        """A value starting at ``column`` of line ``index``; consumes through its last line."""
        text = self.lines[index][column:]
        first = text[:1]
        if first in ("|", ">"):
            return self._block_scalar(index, column, parent)
        if first in ("'", '"'):
            return self._quoted(index, column)
        if first in ("[", "{"):
            return self._flow(index, column)
        if first in ("&", "*", "!"):
            raise self._error("anchors, aliases and tags are not supported", index, column)
        if first in ("@", "`", "%"):
            raise self._error("found character that cannot start any token", index, column)
        if _is_item(text) or text.startswith("? "):
            raise self._error("block sequence entries are not allowed in this context", index, column)
        return self._plain(index, column, parent)

    # -- scalars --------------------------------------------------------------------------------

    def _plain(self, index: int, column: int, parent: int) -> Node:
        first_line = self.lines[index][column:]
        parts = [_strip_comment(first_line)]
        self._check_plain(parts[0], index, column)
        self.i = index + 1
        # A comment ends a plain scalar; so does a line that is not more indented than its parent.
        ended = _COMMENT.search(first_line) is not None
        blank = 0
        j = self.i
        while not ended and j < len(self.lines):
            line = self.lines[j]
            if line.strip() == "":
                blank += 1
                j += 1
                continue
            if line.lstrip().startswith("#") or self._indent(j) <= parent:
                break
            piece = _strip_comment(line)
            self._check_plain(piece, j, self._indent(j))
            parts.extend([""] * blank + [piece])
            blank = 0
            ended = _COMMENT.search(line) is not None
            j += 1
            self.i = j
        value = _fold(parts)
        if len(parts) == 1 and value in _NULLS:
            return Node("null", None, index + 1, column + 1)
        return Node("scalar", value, index + 1, column + 1)

    def _check_plain(self, text: str, index: int, column: int) -> None:
        if _MAPPING_COLON.search(text):
            raise self._error("mapping values are not allowed in this context", index, column)

    def _quoted(self, index: int, column: int) -> Node:
        quote = self.lines[index][column]
        pieces: list[str] = []
        line_index, pos = index, column + 1
        while True:
            line = self.lines[line_index]
            end = _closing_quote(line, pos, quote)
            if end is not None:
                pieces.append(line[pos:end])
                break
            pieces.append(line[pos:])
            line_index += 1
            if line_index >= len(self.lines):
                kind = "single" if quote == "'" else "double"
                message = f"found unexpected end of stream while scanning a {kind}-quoted scalar"
                raise self._error(message, index, column)
            pos = 0
        if _strip_comment(self.lines[line_index][end + 1 :]):
            raise self._error("did not find expected key", line_index, end + 1)
        self.i = line_index + 1
        if len(pieces) == 1:
            raw = pieces[0]
        else:
            raw = _fold([pieces[0].rstrip(" \t"), *(piece.strip(" \t") for piece in pieces[1:])])
        value = raw.replace("''", "'") if quote == "'" else _unescape(raw, index, column)
        return Node("scalar", value, index + 1, column + 1)

    def _block_scalar(self, index: int, column: int, parent: int) -> Node:
        header = _strip_comment(self.lines[index][column:])
        match = re.fullmatch(r"([|>])(?:([+-]?)([1-9]?)|([1-9])([+-]))", header)
        if match is None:
            raise self._error("did not find expected comment or line break", index, column)
        style = match.group(1)
        chomp = match.group(2) or match.group(5) or ""
        digit = match.group(3) or match.group(4)
        content_indent = max(parent, 0) + int(digit) if digit else None
        self.i = index + 1
        body: list[str] = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip() == "":
                body.append("")
                self.i += 1
                continue
            indent = len(line) - len(line.lstrip(" "))
            if content_indent is None:
                if indent <= parent:
                    break
                content_indent = indent
            if indent < content_indent:
                break
            body.append(line[content_indent:])
            self.i += 1
        trailing = 0
        while body and body[-1] == "":
            body.pop()
            trailing += 1
        text = "\n".join(body) if style == "|" else _fold_block(body)
        if not body:
            value = "\n" * trailing if chomp == "+" else ""
        elif chomp == "-":
            value = text
        elif chomp == "+":
            value = text + "\n" * (trailing + 1)
        else:
            value = text + "\n"
        return Node("scalar", value, index + 1, column + 1)

    def _flow(self, index: int, column: int) -> Node:
        text = self.lines[index][column:]
        last = index
        while True:
            parser = _FlowParser(text, index, column)
            try:
                node = parser.parse()
                break
            except _NeedMore:
                last += 1
                if last >= len(self.lines):
                    closing = "]" if text[0] == "[" else "}"
                    message = f"did not find expected ',' or '{closing}'"
                    return self._broken(index, column, self._error(message, index, column))
                text += "\n" + self.lines[last]
            except YamlError as exc:
                return self._broken(index, column, exc)
        # Only the end of the last line can follow the collection.
        if _strip_comment(text[parser.pos :]):
            raise self._error("did not find expected <document start>", last, column)
        self.i = last + 1
        return node

    def _broken(self, index: int, column: int, error: YamlError) -> Node:
        """A flow collection that does not parse: what follows it cannot be read either, so the rest of
        the text goes with it; its type is known from its first character."""
        self.i = len(self.lines)
        if self.lines[index][column] == "[":
            return Node("seq", [], index + 1, column + 1, error)
        return Node("map", {}, index + 1, column + 1, error)


# What may follow the colon of a key inside a flow collection.
_FLOW_VALUE_START = ("", " ", "\n", ",", "]", "}")


class _NeedMore(Exception):
    """The flow collection continues on the next line."""


class _FlowParser:
    """``[...]`` and ``{...}`` collections, possibly spread over several lines."""

    def __init__(self, text: str, line: int, column: int) -> None:
        self.text = text
        self.pos = 0
        self.line = line
        self.column = column

    def _error(self, message: str) -> YamlError:
        return YamlError(message, self.line + 1, self.column + 1)

    def _skip(self) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\n":
                self.pos += 1
            elif ch == "#" and (self.pos == 0 or self.text[self.pos - 1] in " \t\n"):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                break

    def parse(self) -> Node:
        self._skip()
        if self.pos >= len(self.text):
            raise _NeedMore
        ch = self.text[self.pos]
        if ch in "[{":
            return self._collection("]" if ch == "[" else "}")
        if ch in "'\"":
            end = _closing_quote(self.text, self.pos + 1, ch)
            if end is None:
                raise _NeedMore
            raw = " ".join(part.strip() for part in self.text[self.pos + 1 : end].split("\n"))
            self.pos = end + 1
            value = raw.replace("''", "'") if ch == "'" else _unescape(raw, self.line, self.column)
            return Node("scalar", value, self.line + 1, self.column + 1)
        if ch in "&*!":
            raise self._error("anchors, aliases and tags are not supported")
        start = self.pos
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in ",]}\n" or (c == ":" and self.text[self.pos + 1 : self.pos + 2] in _FLOW_VALUE_START):
                break
            self.pos += 1
        value = self.text[start : self.pos].strip()
        if value in _NULLS:
            return Node("null", None, self.line + 1, self.column + 1)
        return Node("scalar", value, self.line + 1, self.column + 1)

    def _collection(self, closing: str) -> Node:
        self.pos += 1
        items: list[Node] = []
        entries: dict[str, Node] = {}
        while True:
            self._skip()
            if self.pos >= len(self.text):
                raise _NeedMore
            if self.text[self.pos] == closing:
                self.pos += 1
                break
            key = self.parse()
            self._skip()
            if self.pos >= len(self.text):
                raise _NeedMore
            if closing == "}":
                value = Node("null", None, key.line, key.column)
                if self.text[self.pos] == ":":
                    self.pos += 1
                    value = self.parse()
                if key.kind not in ("scalar", "null"):
                    raise self._error("flow mapping keys must be scalars")
                entries[str(key.value or "")] = value
            else:
                items.append(key)
            self._skip()
            if self.pos >= len(self.text):
                raise _NeedMore
            if self.text[self.pos] == ",":
                self.pos += 1
            elif self.text[self.pos] != closing:
                raise self._error(f"did not find expected ',' or '{closing}'")
        if closing == "}":
            return Node("map", entries, self.line + 1, self.column + 1)
        return Node("seq", items, self.line + 1, self.column + 1)


def parse_yaml(text: str) -> Node:
    """The document in ``text`` (raises YamlError)."""
    return _YamlReader(text).document()


# ------------------------------------------------------------------------------------------------
# Typed reading, with serde_yaml's wording


class _TypeError(Exception):
    pass


def _expect_map(node: Node, path: str, struct: str) -> dict[str, Node]:
    if node.kind != "map":
        raise _type_error(node, path, f"struct {struct}")
    _check_complete(node)
    return dict(node.value)


def _check_all_complete(node: Node) -> None:
    _check_complete(node)
    children = node.value.values() if node.kind == "map" else node.value if node.kind == "seq" else ()
    for child in children:
        _check_all_complete(child)


def _check_complete(node: Node) -> None:
    """Raise the syntax error of an unterminated collection once nothing else was wrong before it."""
    if node.error is not None:
        raise node.error


def _type_error(node: Node, path: str, expected: str) -> _TypeError:
    prefix = f"{path}: " if path else ""
    where = f"at line {node.line} column {node.column}"
    return _TypeError(f"{prefix}invalid type: {node.describe()}, expected {expected} {where}")


def _string(node: Node, path: str, *, optional: bool) -> str | None:
    if node.kind == "scalar":
        return str(node.value)
    if node.kind == "null" and optional:
        return None
    raise _type_error(node, path, "a string")


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
        document = parse_yaml(frontmatter)
        name, description, short = _frontmatter_fields(document)
    except (YamlError, _TypeError) as exc:
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


def _frontmatter_fields(document: Node) -> tuple[str, str, str | None]:
    entries = _expect_map(document, "", "SkillFrontmatter")
    found: dict[str, str | None] = {}
    short: str | None = None
    for key, node in entries.items():
        if key in ("name", "description"):
            found[key] = _string(node, key, optional=False)
        elif key == "metadata" and node.kind != "null":
            for sub_key, sub in _expect_map(node, key, "SkillFrontmatterMetadata").items():
                if sub_key == "short-description":
                    short = _string(sub, f"{key}.{sub_key}", optional=True)
                _check_complete(sub)
        _check_complete(node)
    for required in ("name", "description"):
        if required not in found:
            raise _TypeError(f"missing field `{required}`")
    return str(found["name"]), str(found["description"]), short


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
        document = parse_yaml(contents)
        _check_all_complete(document)
        interface_raw, tools_raw = _metadata_fields(document)
    except (YamlError, _TypeError) as exc:
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


def _metadata_fields(
    document: Node,
) -> tuple[dict[str, str | None] | None, list[dict[str, str | None]] | None]:
    if document.kind == "null":
        return None, None
    entries = _expect_map(document, "", "SkillMetadataFile")
    interface: dict[str, str | None] | None = None
    tools: list[dict[str, str | None]] | None = None
    for key, node in entries.items():
        if key == "interface" and node.kind != "null":
            interface = {}
            for sub_key, sub in _expect_map(node, key, "Interface").items():
                if sub_key in _INTERFACE_FIELDS:
                    interface[sub_key] = _string(sub, f"{key}.{sub_key}", optional=True)
        elif key == "dependencies" and node.kind != "null":
            tools = []
            for sub_key, sub in _expect_map(node, key, "Dependencies").items():
                if sub_key != "tools":
                    continue
                if sub.kind != "seq":
                    raise _type_error(sub, f"{key}.tools", "a sequence")
                for i, item in enumerate(sub.value):
                    path = f"{key}.tools[{i}]"
                    tools.append({
                        name: _string(value, f"{path}.{name}", optional=True)
                        for name, value in _expect_map(item, path, "DependencyTool").items()
                        if name in _TOOL_FIELDS
                    })
    return interface, tools


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
        text = config_file.read_text(encoding="utf-8")
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
