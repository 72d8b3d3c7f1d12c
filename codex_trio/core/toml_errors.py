"""Where a malformed TOML text goes wrong, worded and placed as the reference's TOML crates say it.

codex-trio parses TOML with tomllib; the reference (Codex CLI 0.94.0) uses the Rust `toml` 0.9 /
`toml_edit` 0.24 crates, whose lexer and parser live in `toml_parser` 1.0. A client shows their
diagnostics verbatim (``configWarning`` details and range, "error deriving config: <file>:L:C: ...",
the "TOML parse error at line N, column M" snippets of config writes and requirements), so when
tomllib rejects a text this module re-reads it the way those crates do and finds the error they
would report first.

The crates work in two passes and report the first error either pass finds:
1. lexing and parsing into a flat event stream, with error recovery (every syntax error, plus
   invalid comment characters and lone carriage returns, in document order);
2. building the tables from the events, which decodes keys and scalars (escapes, numbers, dates,
   bare words) and detects duplicate keys and table redefinitions, in document order.
Pass 2 only matters when pass 1 found nothing, so it may assume a well-formed event stream.

Offsets here are indices into the Python string; positions are turned into the reference's 1-based
line/column (columns in characters, computed on UTF-8 bytes exactly as the crates do) at the end.

The reference accepts a few texts tomllib rejects (TOML 1.1 additions: newlines and a trailing comma
in inline tables, ``\\e`` and ``\\xHH`` escapes, times without seconds; a leading BOM; ``a = { x }``).
For those ``find_syntax_error`` returns None: there is no reference wording to reproduce.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, NoReturn

__all__ = [
    "TomlSyntaxError",
    "error_positions",
    "error_snippet",
    "find_syntax_error",
]


class TomlSyntaxError(NamedTuple):
    """The first error the reference reports for a text: its message and the offending span in
    UTF-8 byte offsets, as the crates count (``end`` exclusive; ``start == end`` for a point)."""

    message: str
    start: int
    end: int


class _Found(Exception):
    """Raised at the first error reported: the reference keeps only that one.

    ``start`` and ``end`` are string indices. ``narrow_end`` makes the span end one byte into its
    last character, as for the crate's invalid-key spans, which are built per character but one
    byte wide (so a key like `clé` gets a single caret under the `é`)."""

    def __init__(self, message: str, start: int, end: int, *, narrow_end: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end
        self.narrow_end = narrow_end

    def error(self, text: str) -> TomlSyntaxError:
        start = _byte_offset(text, self.start)
        if self.narrow_end and self.end > self.start:
            end = _byte_offset(text, self.end - 1) + 1
        else:
            end = _byte_offset(text, self.end)
        return TomlSyntaxError(self.message, start, end)


# ---------------------------------------------------------------------------------------------
# Messages: a description, then what was expected (literals in backticks, "newline" for \n,
# "nothing" for an empty list, no suffix at all when the crate gives no expectation).


def _message(description: str, expected: Sequence[str] | None) -> str:
    if expected is None:
        return description
    if not expected:
        return f"{description}, expected nothing"
    return f"{description}, expected {', '.join(expected)}"


def _lit(text: str) -> str:
    return "newline" if text == "\n" else f"`{text}`"


_KEY_CHARS = ("letters", "numbers", _lit("-"), _lit("_"))
_ESCAPES = tuple(_lit(c) for c in ("b", "e", "f", "n", "r", "\\", '"', "x", "u", "U"))


# ---------------------------------------------------------------------------------------------
# Lexer


_DOT, _EQUALS, _COMMA = "dot", "equals", "comma"
_LBRACKET, _RBRACKET, _LBRACE, _RBRACE = "[", "]", "{", "}"
_WS, _COMMENT, _NEWLINE, _EOF, _ATOM = "ws", "comment", "newline", "eof", "atom"
_LIT, _BASIC, _ML_LIT, _ML_BASIC = "literal", "basic", "ml-literal", "ml-basic"
_STRINGS = (_LIT, _BASIC, _ML_LIT, _ML_BASIC)
_PUNCT = {".": _DOT, "=": _EQUALS, ",": _COMMA, "[": _LBRACKET, "]": _RBRACKET, "{": _LBRACE, "}": _RBRACE}
# An atom runs until one of these; quotes are left out on purpose (a missing opening quote).
_ATOM_END = frozenset(".=,[]{} \t#\r\n")


class _Token(NamedTuple):
    kind: str
    start: int
    end: int


_COMMENT_END = re.compile(r"[\r\n]")
_LITERAL_STOP = re.compile(r"['\n]")
_BASIC_STOP = re.compile(r'["\\\n]')


def _find_first(text: str, pattern: re.Pattern[str], start: int) -> int:
    """Index of the first match of the one-character ``pattern`` at or after ``start``, or -1."""
    found = pattern.search(text, start)
    return -1 if found is None else found.start()


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    n = len(text)
    i = 1 if text.startswith("\ufeff") else 0
    while i < n:
        c = text[i]
        if c in _PUNCT:
            kind, j = _PUNCT[c], i + 1
        elif c in " \t":
            kind, j = _WS, i
            while j < n and text[j] in " \t":
                j += 1
        elif c == "#":
            kind, j = _COMMENT, _find_first(text, _COMMENT_END, i)
            j = n if j == -1 else j
        elif c == "\r":
            kind, j = _NEWLINE, i + (2 if text.startswith("\n", i + 1) else 1)
        elif c == "\n":
            kind, j = _NEWLINE, i + 1
        elif text.startswith("'''", i):
            kind, end = _ML_LIT, text.find("'''", i + 3)
            j = n if end == -1 else end + 3
            for _ in range(2):
                if j < n and text[j] == "'":
                    j += 1
        elif c == "'":
            kind, end = _LIT, _find_first(text, _LITERAL_STOP, i + 1)
            j = n if end == -1 else (end + 1 if text[end] == "'" else end)
        elif text.startswith('"""', i):
            kind, j = _ML_BASIC, _lex_ml_basic(text, i + 3)
        elif c == '"':
            kind, j = _BASIC, _lex_basic(text, i + 1)
        else:
            kind, j = _ATOM, i + 1
            while j < n and text[j] not in _ATOM_END:
                j += 1
        tokens.append(_Token(kind, i, j))
        i = j
    tokens.append(_Token(_EOF, n, n))
    return tokens


def _lex_basic(text: str, j: int) -> int:
    n = len(text)
    while True:
        k = _find_first(text, _BASIC_STOP, j)
        if k == -1:
            return n
        if text[k] == '"':
            return k + 1
        if text[k] == "\n":
            return k  # an unclosed string ends at the line's end
        j = k + 1
        if j < n and text[j] in '\\"':
            j += 1


def _lex_ml_basic(text: str, j: int) -> int:
    n = len(text)
    while True:
        close, escape = text.find('"""', j), text.find("\\", j)
        if close == -1 and escape == -1:
            j = n
            break
        if escape != -1 and (close == -1 or escape < close):
            j = escape + 1
            if j < n and text[j] in '\\"':
                j += 1
            continue
        j = close + 3
        break
    for _ in range(2):
        if j < n and text[j] == '"':
            j += 1
    return j


# ---------------------------------------------------------------------------------------------
# Pass 1: tokens to events


_SIMPLE_KEY, _KEY_SEP, _KEY_VAL_SEP, _SCALAR = "simple-key", "key-sep", "key-val-sep", "scalar"
_STD_OPEN, _STD_CLOSE, _AOT_OPEN, _AOT_CLOSE = "std-open", "std-close", "aot-open", "aot-close"
_ARRAY_OPEN, _ARRAY_CLOSE = "array-open", "array-close"
_INLINE_OPEN, _INLINE_CLOSE = "inline-open", "inline-close"
_VALUE_SEP, _ERROR = "value-sep", "error"


class _Event(NamedTuple):
    kind: str
    start: int
    end: int
    encoding: str | None = None  # the string kind of a key or scalar; None when unquoted


_NEEDS_KEY, _NEEDS_EQUALS, _NEEDS_VALUE, _NEEDS_COMMA = "key", "=", "value", ","
_STATE_EXPECTED = {
    _NEEDS_KEY: ["key"],
    _NEEDS_EQUALS: [_lit("=")],
    _NEEDS_VALUE: ["value"],
    _NEEDS_COMMA: [_lit(",")],
}
_KEY_STOP = frozenset({_EQUALS, _COMMA, _LBRACKET, _RBRACKET, _LBRACE, _RBRACE, _COMMENT, _NEWLINE, _EOF})
_VALUE_LIKE = frozenset({_DOT, _EQUALS, _COMMA, _LBRACKET, _RBRACKET, _LBRACE, _RBRACE, _ATOM, *_STRINGS})


class _Parser:
    """The event parser: same token-level decisions, recovery and error order as the crate's."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0
        self.events: list[_Event] = []

    # -- plumbing

    def error(self, description: str, expected: Sequence[str] | None, start: int, end: int) -> NoReturn:
        raise _Found(_message(description, expected), start, end)

    def emit(self, kind: str, start: int, end: int, encoding: str | None = None) -> None:
        self.events.append(_Event(kind, start, end, encoding))

    def next_token(self) -> _Token | None:
        if self.pos >= len(self.tokens):
            return None
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def first(self, offset: int = 0) -> _Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def next_if(self, kind: str) -> _Token | None:
        token = self.first()
        if token is not None and token.kind == kind:
            self.pos += 1
            return token
        return None

    def previous_end(self, skip: frozenset[str]) -> int:
        """The end of the last consumed token whose kind is not in ``skip`` (0 if none)."""
        for token in reversed(self.tokens[: self.pos]):
            if token.kind not in skip:
                return token.end
        return 0

    def whitespace(self, token: _Token) -> None:
        self.emit(_WS, token.start, token.end)

    def newline(self, token: _Token) -> None:
        if self.text[token.start : token.end] == "\r":
            self.error("carriage return must be followed by newline", [_lit("\n")], token.end, token.end)
        self.emit(_NEWLINE, token.start, token.end)

    def comment(self, token: _Token) -> None:
        for i in range(token.start, token.end):
            code = ord(self.text[i])
            if not (code == 0x09 or 0x20 <= code <= 0x7E or code >= 0x80):
                self.error("invalid comment character", ["printable characters"], i, i)
        self.emit(_COMMENT, token.start, token.end)

    def opt_whitespace(self) -> None:
        token = self.next_if(_WS)
        if token is not None:
            self.whitespace(token)

    # -- document

    def document(self) -> None:
        while (token := self.next_token()) is not None:
            kind = token.kind
            if kind == _LBRACKET:
                self.on_table(token)
            elif kind == _RBRACKET:
                self.error("missing table open", [_lit("[")], token.start, token.start)
            elif kind == _ATOM or kind in _STRINGS:
                self.on_expression_key(token)
            elif kind == _EQUALS:
                self.emit(_SIMPLE_KEY, token.start, token.start)
                self.on_key_val_sep(token)
            elif kind == _DOT:
                self.on_expression_dot(token)
            elif kind in (_COMMA, _RBRACE, _LBRACE):
                self.error("invalid key-value pair", ["key"], token.start, token.start)
            elif kind == _WS:
                self.whitespace(token)
            elif kind == _NEWLINE:
                self.newline(token)
            elif kind == _COMMENT:
                self.on_comment(token)
            else:
                break

    def on_table(self, open_token: _Token) -> None:
        second = self.next_if(_LBRACKET)
        is_array = second is not None
        if second is not None:
            self.emit(_AOT_OPEN, open_token.start, second.end)
        else:
            self.emit(_STD_OPEN, open_token.start, open_token.end)
        self.opt_whitespace()
        valid_key = self.key("invalid table")
        self.opt_whitespace()
        success = False
        close = self.next_if(_RBRACKET)
        if close is not None:
            if is_array:
                second_close = self.next_if(_RBRACKET)
                if second_close is None:
                    self.error("unclosed array table", [_lit("]")], close.end, close.end)
                else:
                    self.emit(_AOT_CLOSE, close.start, second_close.end)
                    success = True
            else:
                self.emit(_STD_CLOSE, close.start, close.end)
                success = True
        elif valid_key:
            end = self.previous_end(frozenset({_WS}))
            if is_array:
                self.error("unclosed array table", [_lit("]]")], end, end)
            self.error("unclosed table", [_lit("]")], end, end)
        if success:
            self.ws_comment_newline()
        else:
            self.ignore_to_newline()

    def key(self, invalid_description: str) -> bool:
        found = self._simple_key()
        if found is None:
            end = self.previous_end(frozenset({_WS, _COMMENT, _NEWLINE, _EOF}))
            self.error(invalid_description, ["key"], end, end)
            return False
        return self.opt_dot_keys() if found else False

    def _simple_key(self) -> bool | None:
        """Reads one simple key, emitting it: True when one was read, False when the key stopped
        short (an empty key is emitted), None at the end of the input."""
        while (token := self.next_token()) is not None:
            kind = token.kind
            if kind in _KEY_STOP:
                self.emit(_SIMPLE_KEY, token.start, token.start)
                self.pos -= 1
                return False
            if kind == _WS:
                self.whitespace(token)
                continue
            if kind == _DOT:
                self.emit(_SIMPLE_KEY, token.start, token.start)
                self.emit(_KEY_SEP, token.start, token.end)
                continue
            self.emit(_SIMPLE_KEY, token.start, token.end, _encoding(token))
            return True
        return None

    def opt_dot_keys(self) -> bool:
        """The rest of a dotted key; False when a dot is not followed by a key."""
        self.opt_whitespace()
        while (dot := self.next_if(_DOT)) is not None:
            self.emit(_KEY_SEP, dot.start, dot.end)
            found = self._simple_key()
            if found is False:
                return False
            if found:
                self.opt_whitespace()
            else:
                self.emit(_SIMPLE_KEY, dot.end, dot.end)
        return True

    def on_expression_key(self, key_token: _Token) -> None:
        self.emit(_SIMPLE_KEY, key_token.start, key_token.end, _encoding(key_token))
        self._key_rest_and_value("key with no value")

    def on_expression_dot(self, dot: _Token) -> None:
        self.emit(_SIMPLE_KEY, dot.start, dot.start)
        self.pos -= 1
        self._key_rest_and_value("missing value for key")

    def _key_rest_and_value(self, no_equals: str) -> None:
        """The dotted rest of a key, then ``=`` and the value; ``no_equals`` is the error without ``=``."""
        self.opt_dot_keys()
        self.opt_whitespace()
        equals = self.next_if(_EQUALS)
        if equals is None:
            peek = self.first()
            if peek is not None:
                self.error(no_equals, [_lit("=")], peek.start, peek.start)
            self.ignore_to_newline()
            return
        self.on_key_val_sep(equals)

    def on_key_val_sep(self, equals: _Token) -> None:
        self.emit(_KEY_VAL_SEP, equals.start, equals.end)
        self.opt_whitespace()
        self.value()
        self.ws_comment_newline()

    # -- values

    def value(self) -> None:
        token = self.next_token()
        if token is None:
            end = self.previous_end(frozenset({_WS, _COMMENT, _NEWLINE, _EOF}))
            self.error("missing value", ["value"], end, end)
            return
        kind = token.kind
        if kind in (_COMMENT, _COMMA, _NEWLINE, _EOF, _WS):
            self.emit(_SCALAR, token.start, token.start)  # an empty value, rejected by pass 2
            self.pos -= 1
        elif kind == _EQUALS:
            self.error("extra `=`", [], token.start, token.end)
        elif kind == _LBRACE:
            self.on_inline_table(token)
        elif kind == _RBRACE:
            self.error("missing inline table opening", [_lit("{")], token.start, token.start)
        elif kind == _LBRACKET:
            self.on_array(token)
        elif kind == _RBRACKET:
            self.error("missing array opening", [_lit("[")], token.start, token.start)
        else:
            self.on_scalar(token)

    def on_scalar(self, token: _Token) -> None:
        end = token.end
        if token.kind in (_DOT, _ATOM):
            # Unquoted words (and dots) run together, across single spaces before another word:
            # `gpt 5` is one bad value, not a value followed by junk.
            while (peek := self.first()) is not None:
                if peek.kind in (_DOT, _ATOM):
                    end = peek.end
                    self.pos += 1
                elif peek.kind == _WS:
                    after = self.first(1)
                    if after is None or after.kind != _ATOM:
                        break
                    end = after.end
                    self.pos += 2
                else:
                    break
        self.emit(_SCALAR, token.start, end, _encoding(token))

    def on_array(self, open_token: _Token) -> None:
        self.emit(_ARRAY_OPEN, open_token.start, open_token.end)
        needs_value = True
        while (token := self.next_token()) is not None:
            kind = token.kind
            if kind == _COMMENT:
                self.on_comment(token)
            elif kind == _WS:
                self.whitespace(token)
            elif kind == _NEWLINE:
                self.newline(token)
            elif kind == _EOF:
                self.error("unclosed array", [_lit("]")], token.start, token.end)
            elif kind == _COMMA:
                if needs_value:
                    self.error("extra comma in array", ["value"], token.start, token.end)
                self.emit(_VALUE_SEP, token.start, token.end)
                needs_value = True
            elif kind == _EQUALS:
                self.error("unexpected `=` in array", ["value", _lit("]")], token.start, token.end)
            elif kind == _RBRACKET:
                self.emit(_ARRAY_CLOSE, token.start, token.end)
                return
            else:
                if not needs_value:
                    self.error(
                        "missing comma between array elements", [_lit(",")], token.start, token.start
                    )
                if kind == _LBRACE:
                    self.on_inline_table(token)
                elif kind == _RBRACE:
                    self.error("missing inline table opening", [_lit("{")], token.start, token.start)
                elif kind == _LBRACKET:
                    self.on_array(token)
                else:
                    self.on_scalar(token)
                needs_value = False
        end = self.previous_end(frozenset({_WS, _COMMENT, _NEWLINE, _EOF}))
        self.error("unclosed array", [_lit("]")], end, end)

    def on_inline_table(self, open_token: _Token) -> None:
        self.emit(_INLINE_OPEN, open_token.start, open_token.end)
        state = _NEEDS_KEY
        while (token := self.next_token()) is not None:
            kind = token.kind
            expected = _STATE_EXPECTED[state]
            if kind == _COMMENT:
                self.on_comment(token)
            elif kind == _WS:
                self.whitespace(token)
            elif kind == _NEWLINE:
                self.newline(token)
            elif kind == _EOF:
                self.error("unclosed inline table", [_lit("}")], token.start, token.end)
            elif kind == _COMMA:
                if state != _NEEDS_COMMA:
                    self.error("extra comma in inline table", expected, token.start, token.start)
                self.emit(_VALUE_SEP, token.start, token.end)
                state = _NEEDS_KEY
            elif kind == _EQUALS:
                if state in (_NEEDS_VALUE, _NEEDS_COMMA):
                    self.error(
                        "extra assignment between key-value pairs", expected, token.start, token.start
                    )
                if state == _NEEDS_KEY:
                    self.emit(_SIMPLE_KEY, token.start, token.start)
                self.emit(_KEY_VAL_SEP, token.start, token.end)
                state = _NEEDS_VALUE
            elif kind in (_LBRACE, _LBRACKET):
                if state in (_NEEDS_KEY, _NEEDS_COMMA):
                    self.error("missing key for inline table element", expected, token.start, token.start)
                if state == _NEEDS_EQUALS:
                    self.error(
                        "missing assignment between key-value pairs", expected, token.start, token.start
                    )
                if kind == _LBRACE:
                    self.on_inline_table(token)
                else:
                    self.on_array(token)
                state = _NEEDS_COMMA
            elif kind == _RBRACE:
                self.emit(_INLINE_CLOSE, token.start, token.end)
                return
            elif kind == _RBRACKET:
                if state != _NEEDS_VALUE:
                    self.error("invalid inline table element", expected, token.start, token.start)
                self.error("missing array opening", [_lit("[")], token.start, token.start)
            else:
                if state == _NEEDS_EQUALS:
                    self.error(
                        "missing assignment between key-value pairs", expected, token.start, token.start
                    )
                if state == _NEEDS_COMMA:
                    self.error(
                        "missing comma between key-value pairs", expected, token.start, token.start
                    )
                if state == _NEEDS_VALUE:
                    self.on_scalar(token)
                    state = _NEEDS_COMMA
                else:
                    if kind == _DOT:
                        self.emit(_SIMPLE_KEY, token.start, token.start)
                        self.pos -= 1
                    else:
                        self.emit(_SIMPLE_KEY, token.start, token.end, _encoding(token))
                    self.opt_dot_keys()
                    state = _NEEDS_EQUALS
        end = self.previous_end(frozenset({_WS, _COMMENT, _NEWLINE, _EOF}))
        self.error("unclosed inline table", [_lit("}")], end, end)

    # -- line ends

    def ws_comment_newline(self) -> None:
        while (token := self.next_token()) is not None:
            kind = token.kind
            if kind in _VALUE_LIKE:
                self.error("unexpected key or value", [_lit("\n"), _lit("#")], token.start, token.start)
            if kind == _COMMENT:
                self.on_comment(token)
                return
            if kind == _WS:
                self.whitespace(token)
                continue
            if kind == _NEWLINE:
                self.newline(token)
            return

    def on_comment(self, token: _Token) -> None:
        self.comment(token)
        following = self.next_token()
        if following is not None and following.kind == _NEWLINE:
            self.newline(following)
        # A comment runs to the line's end, so nothing else can follow it.

    def ignore_to_newline(self) -> None:
        while (token := self.next_token()) is not None:
            kind = token.kind
            if kind in _VALUE_LIKE:
                self.emit(_ERROR, token.start, token.end)
            elif kind == _COMMENT:
                self.on_comment(token)
                return
            elif kind == _WS:
                self.whitespace(token)
            elif kind == _NEWLINE:
                self.newline(token)
                return
            else:
                return


def _encoding(token: _Token) -> str | None:
    return token.kind if token.kind in _STRINGS else None


# ---------------------------------------------------------------------------------------------
# Pass 2 decoders: keys, strings and scalars (spans are relative to the raw text, rebased by the
# caller)


class _Raw:
    """The text of one key or scalar and where it starts in the document."""

    def __init__(self, text: str, event: _Event) -> None:
        self.s = text[event.start : event.end]
        self.base = event.start
        self.encoding = event.encoding

    def fail(
        self,
        description: str,
        expected: Sequence[str] | None,
        start: int,
        end: int,
        *,
        narrow_end: bool = False,
    ) -> NoReturn:
        message = _message(description, expected)
        raise _Found(message, self.base + start, self.base + end, narrow_end=narrow_end)


def _literal_char(c: str) -> bool:
    code = ord(c)
    return code == 0x09 or 0x20 <= code <= 0x26 or 0x28 <= code <= 0x7E or code >= 0x80


def _basic_unescaped(c: str) -> bool:
    code = ord(c)
    return (code >= 0x20 and code != 0x7F and c != '"' and c != "\\") or c == "\t"


def _decode_literal(raw: _Raw) -> None:
    s, n = raw.s, len(raw.s)
    if not s.startswith("'"):
        raw.fail("invalid literal string", [_lit("'")], 0, 0)
    if n < 2 or not s.endswith("'"):
        raw.fail("invalid literal string", [_lit("'")], n, n)
    for i in range(1, n - 1):
        if not _literal_char(s[i]):
            raw.fail("invalid literal string", ["non-single-quote visible characters"], i, i)


def _strip_start_newline(s: str, i: int) -> int:
    if s.startswith("\n", i):
        return i + 1
    if s.startswith("\r\n", i):
        return i + 2
    return i


def _decode_ml_literal(raw: _Raw) -> None:
    s, n = raw.s, len(raw.s)
    description = "invalid multi-line literal string"
    if not s.startswith("'''"):
        raw.fail(description, [_lit("'")], 0, 0)
    i = _strip_start_newline(s, 3)
    if n - i < 3 or not s.endswith("'''"):
        raw.fail(description, [_lit("'")], n, n)
    stop = n - 3
    while i < stop:
        c = s[i]
        if c == "\r":
            if not s.startswith("\n", i + 1) or i + 1 >= stop:
                raw.fail("carriage return must be followed by newline", [_lit("\n")], i + 1, i + 1)
        elif c not in "'\n" and not _literal_char(c):
            raw.fail(description, ["non-single-quote characters"], i, i)
        i += 1


def _escape(raw: _Raw, i: int, stop: int) -> int:
    """Check the escape whose letter is at ``i`` (after the backslash); returns the next index."""
    s = raw.s
    if i >= stop:
        raw.fail("missing escaped value", _ESCAPES, i, i)
    letter = s[i]
    width = {"x": 2, "u": 4, "U": 8}.get(letter)
    if width is None:
        if letter not in 'befnrt\\"':
            raw.fail("missing escaped value", _ESCAPES, i, i)
        return i + 1
    j = i + 1
    while j < stop and j - (i + 1) < width and s[j] in "0123456789abcdefABCDEF":
        j += 1
    if j - (i + 1) != width:
        raw.fail("too few unicode value digits", ["unicode hexadecimal value"], j, j)
    value = int(s[i + 1 : j], 16)
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        raw.fail("invalid value", ["unicode hexadecimal value"], i + 1, i + 1)
    return j


def _decode_basic(raw: _Raw) -> None:
    s, n = raw.s, len(raw.s)
    description = "invalid basic string"
    if not s.startswith('"'):
        raw.fail(description, [_lit('"')], 0, 0)
    if n <= 1 or not s.endswith('"'):
        raw.fail(description, [_lit('"')], n, n)
    i, stop = 1, n - 1
    while i < stop:
        c = s[i]
        if c == "\\":
            i = _escape(raw, i + 1, stop)
        elif _basic_unescaped(c):
            i += 1
        else:
            j = i
            while j < stop and not (_basic_unescaped(s[j]) or s[j] == "\\"):
                j += 1
            raw.fail(description, ["non-double-quote visible characters", _lit("\\")], i, j)


def _decode_ml_basic(raw: _Raw) -> None:
    s, n = raw.s, len(raw.s)
    description = "invalid multi-line basic string"
    if not s.startswith('"""'):
        raw.fail(description, [_lit('"')], 0, 0)
    i = _strip_start_newline(s, 3)
    if n - i < 3 or not s.endswith('"""'):
        raw.fail(description, [_lit('"')], n, n)
    stop = n - 3
    while i < stop:
        c = s[i]
        if c == "\\":
            i += 1
            escaped_newline = i < stop and s[i] in " \t\r\n"
            i = _escaped_newline(raw, i, stop) if escaped_newline else _escape(raw, i, stop)
        elif c == "\r":
            if s.startswith("\n", i + 1) and i + 1 < stop:
                i += 2
            else:
                raw.fail("carriage return must be followed by newline", [_lit("\n")], i + 1, i + 1)
        elif _basic_unescaped(c) or c in '"\n':
            i += 1
        else:
            j = i
            while j < stop and not (_basic_unescaped(s[j]) or s[j] in '"\n\\\r'):
                j += 1
            raw.fail(description, [_lit("\\"), "characters"], i, j)


def _escaped_newline(raw: _Raw, i: int, stop: int) -> int:
    """A backslash ending a line in a multi-line basic string: it eats the blank that follows."""
    s = raw.s
    while i < stop and s[i] in " \t":
        i += 1
    if i < stop and s[i] == "\n":
        i += 1
    elif i < stop and s[i] == "\r":
        i += 1
        if i < stop and s[i] == "\n":
            i += 1
        else:
            raw.fail("carriage return must be followed by newline", [_lit("\n")], i, i)
    else:
        raw.fail("invalid multi-line basic string", [_lit("\n")], i, i)
    while True:
        begin = i
        while i < stop and s[i] in " \t\n":
            i += 1
        if i < stop and s[i] == "\r":
            if i + 1 < stop and s[i + 1] == "\n":
                i += 2
            else:
                raw.fail("carriage return must be followed by newline", [_lit("\n")], i + 1, i + 1)
        if i == begin:
            return i


def _decode_string(raw: _Raw) -> None:
    if raw.encoding == _LIT:
        _decode_literal(raw)
    elif raw.encoding == _BASIC:
        _decode_basic(raw)
    elif raw.encoding == _ML_LIT:
        _decode_ml_literal(raw)
    else:
        _decode_ml_basic(raw)


def _unquoted_key_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c in "-_")


def _decode_key(raw: _Raw) -> None:
    if raw.encoding == _ML_LIT or raw.encoding == _ML_BASIC:
        kind = "literal" if raw.encoding == _ML_LIT else "basic"
        expected = ["basic string", "literal string"]
        raw.fail(f"keys cannot be multi-line {kind} strings", expected, 0, len(raw.s))
    if raw.encoding is not None:
        _decode_string(raw)
        return
    s = raw.s
    if not s:
        raw.fail("unquoted keys cannot be empty", _KEY_CHARS, 0, 0)
    for i, c in enumerate(s):
        if not _unquoted_key_char(c):
            # The first run of invalid characters; the crate only extends a run past characters
            # one byte long, and its spans end one byte into their last character.
            j = i + 1
            while j < len(s) and s[j - 1].isascii() and not _unquoted_key_char(s[j]):
                j += 1
            raw.fail("invalid unquoted key", _KEY_CHARS, i, j, narrow_end=True)


# Scalar kinds as pass 2 sees them.
_STRING, _BOOLEAN, _DATETIME, _FLOAT, _INTEGER = "string", "boolean", "datetime", "float", "integer"
_RADIX_NAMES = {16: "hexadecimal", 8: "octal", 2: "binary", 10: "integer"}
_RADIX_DIGITS = {16: "0123456789abcdefABCDEF", 8: "01234567", 2: "01", 10: "0123456789"}
# Words whose first letter makes the crate read a boolean or a special float (and say so when the
# rest does not match: `True` is an invalid boolean, `none` an invalid float).
_SYMBOLS = (("tT", "true", _BOOLEAN), ("fF", "false", _BOOLEAN), ("iI", "inf", _FLOAT), ("nN", "nan", _FLOAT))


class _Scalar(NamedTuple):
    kind: str
    radix: int = 10
    digits_at: int = 0  # where an integer's digits begin (after a radix prefix)


def _decode_scalar(raw: _Raw) -> _Scalar:
    if raw.encoding is not None:
        _decode_string(raw)
        return _Scalar(_STRING)
    s = raw.s
    if not s:
        return _invalid(raw)
    first = s[0]
    if first in "+-":
        return _sign_prefix(raw, 1)
    if first == "_" or first in "123456789":
        return _datetime_or_number(raw, 0)
    if first == "0":
        return _zero_prefix(raw, 0, signed=False)
    if first == ".":
        _ensure_float(raw, 0)
        return _number(raw, 0, _FLOAT)
    for letters, symbol, kind in _SYMBOLS:
        if first in letters:
            if s != symbol:
                if " " in s:
                    return _invalid(raw)
                raw.fail(f"invalid {kind}", [_lit(symbol)], 0, len(s))
            return _Scalar(kind)
    return _invalid(raw)


def _invalid(raw: _Raw) -> _Scalar:
    s = raw.s
    for ending, expected in (("'''", "'''"), ('"""', '"""'), ("'", "'"), ('"', '"')):
        if s.endswith(ending):
            raw.fail("missing opening quote", [_lit(expected)], 0, 0)
    raw.fail("string values must be quoted", ["literal string"], 0, len(s))
    return _Scalar(_STRING)


def _sign_prefix(raw: _Raw, at: int) -> _Scalar:
    s = raw.s
    if at >= len(s):
        return _invalid(raw)
    first = s[at]
    if first in "+-":
        raw.fail("redundant numeric sign", [], at, at + 1)
    if first == "_" or first in "123456789":
        return _datetime_or_number(raw, at)
    if first == "0":
        return _zero_prefix(raw, at, signed=True)
    if first == ".":
        _ensure_float(raw, 0)
        return _number(raw, 0, _FLOAT)
    for letters, symbol in (("iI", "inf"), ("nN", "nan")):
        if first in letters:
            if s[at:] != symbol:
                raw.fail("invalid float", [_lit(symbol)], at, len(s))
            return _Scalar(_FLOAT)
    return _invalid(raw)


def _zero_prefix(raw: _Raw, at: int, *, signed: bool) -> _Scalar:
    s = raw.s
    if len(s) - at == 1:
        return _number(raw, 0, _INTEGER)
    letter = s[at + 1]
    radix = {"x": 16, "o": 8, "b": 2, "d": 10}.get(letter.lower())
    if radix is None:
        return _datetime_or_number(raw, at)
    if signed:
        raw.fail("integers with a radix cannot be signed", [], 0, 1)
    if radix == 10:
        raw.fail("redundant integer number prefix", [], 0, 2)
    if letter.isupper():
        raw.fail("radix must be lowercase", [_lit("0" + letter.lower())], at, at + 2)
    digits = at + 2
    if s.startswith(("+", "-"), digits):
        sign = min(i for i in (s.find("+"), s.find("-")) if i != -1)
        raw.fail("unexpected sign", [], sign, sign + 1)
    for i in range(digits, len(s)):
        if s[i] not in _RADIX_DIGITS[radix] and s[i] != "_":
            raw.fail(f"invalid {_RADIX_NAMES[radix]} number", None, i, i)
    return _number(raw, digits, _INTEGER, radix)


def _datetime_or_number(raw: _Raw, at: int) -> _Scalar:
    s = raw.s
    digit_end = at
    while digit_end < len(s) and s[digit_end].isdigit() and s[digit_end].isascii():
        digit_end += 1
    if digit_end == len(s):
        if s.startswith("0", at):
            raw.fail("unexpected leading zero", [], at, at + 1)
        return _number(raw, 0, _INTEGER)
    rest = s[digit_end:]
    if rest.startswith(("-", ":")):
        return _Scalar(_DATETIME)
    if " " in rest:
        return _invalid(raw)
    if any(c in rest for c in ".eE"):
        _ensure_float(raw, at)
        return _number(raw, 0, _FLOAT)
    if rest.startswith("_"):
        if s.startswith("0", at):
            raw.fail("unexpected leading zero", [], at, at + 1)
        return _number(raw, 0, _INTEGER)
    return _invalid(raw)


def _ensure_float(raw: _Raw, at: int) -> None:
    s = raw.s
    i = _ensure_digits(raw, at, zero_prefix=False, description="invalid mantissa")
    if s.startswith(".", i):
        i = _ensure_digits(raw, i + 1, zero_prefix=True, description="invalid fraction")
    if s.startswith(("e", "E"), i):
        i += 1
        if s.startswith(("+", "-"), i):
            i += 1
        i = _ensure_digits(raw, i, zero_prefix=True, description="invalid exponent")
    if i < len(s):
        raw.fail("invalid float", [], i, len(s))


def _ensure_digits(raw: _Raw, at: int, *, zero_prefix: bool, description: str) -> int:
    s = raw.s
    i, count = at, 0
    while i < len(s) and (s[i] == "_" or (s[i].isdigit() and s[i].isascii())):
        count += s[i] != "_"
        i += 1
    if count == 0:
        raw.fail(description, ["digits"], at, at)
    if count > 1 and s.startswith("0", at) and not zero_prefix:
        raw.fail("unexpected leading zero", [], at, at + 1)
    return i


def _number(raw: _Raw, at: int, kind: str, radix: int = 10) -> _Scalar:
    """The underscore rules shared by integers and floats (``at``: where the digits begin)."""
    s = raw.s
    stream = s[at:]
    if "_" in stream:
        if stream.startswith("_"):
            raw.fail("`_` may only go between digits", [], 0, 1)
        if len(stream) > 1 and stream.endswith("_"):
            raw.fail("`_` may only go between digits", [], len(s) - 1, len(s))
        digits = "0123456789" if kind == _FLOAT else _RADIX_DIGITS[16]
        offset = at
        for part in stream.split("_"):
            start, end = offset, offset + len(part)
            if start > 0 and (part[:1] or "0") not in digits:
                raw.fail("`_` may only go between digits", None, start - 1, start)
            if len(part) > 1 and end < len(s) and part[-1] not in digits:
                raw.fail("`_` may only go between digits", None, end, end + 1)
            if not part and start != 0 and end != len(s):
                raw.fail("`_` may only go between digits", None, start, start + 1)
            offset = end + 1
    return _Scalar(kind, radix, at)


def _check_float(raw: _Raw, event: _Event) -> None:
    digits = raw.s.replace("_", "")
    try:
        value = float(digits)
    except ValueError:
        raise _Found("invalid float", event.start, event.end) from None
    if math.isinf(value) and not digits.lstrip("+-").isalpha():
        raise _Found("floating-point number overflowed", event.start, event.end)


def _check_integer(raw: _Raw, scalar: _Scalar, event: _Event) -> None:
    """What the decoder let through must still convert: stray characters (``300_00'0``) and
    values beyond the crate's 128-bit integers are reported as an overflow, as the crate does.
    (Values beyond 64 bits but within 128 only fail later, when the settings are read.)"""
    digits = raw.s[scalar.digits_at :].replace("_", "")
    unsigned = digits[1:] if digits[:1] in ("+", "-") else digits
    valid = bool(unsigned) and all(c in _RADIX_DIGITS[scalar.radix] for c in unsigned)
    if valid and -(2**127) <= int(digits, scalar.radix) < 2**127:
        return
    raise _Found("integer number overflowed", event.start, event.end)


# ---------------------------------------------------------------------------------------------
# Dates and times (the toml_datetime wording: "invalid <what>, expected <expected>")


class _DatetimeError(Exception):
    def __init__(self, what: str | None = None, expected: str | None = None) -> None:
        text = f"invalid {what}" if what else "invalid datetime"
        if expected:
            text += f", expected {expected}"
        super().__init__(text)


def _datetime_tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    i = 0
    kinds = {"-": "-", ":": ":", "T": "T", "t": "T", " ": " ", "Z": "Z", "z": "Z", "+": "+", ".": "."}
    while i < len(text):
        c = text[i]
        if "0" <= c <= "9":
            j = i
            while j < len(text) and "0" <= text[j] <= "9":
                j += 1
            tokens.append(("digits", text[i:j]))
            i = j
        elif c in kinds:
            tokens.append((kinds[c], c))
            i += 1
        else:
            tokens.append(("unknown", text[i:]))
            break
    return tokens


def _check_datetime(text: str) -> None:
    """Raise _DatetimeError worded like toml_datetime for what it rejects."""
    tokens = _datetime_tokens(text)
    pos = 0

    def take(what: str | None, expected: str, kind: str) -> str:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos][0] != kind:
            raise _DatetimeError(what, expected)
        pos += 1
        return tokens[pos - 1][1]

    def peek() -> str | None:
        return tokens[pos][0] if pos < len(tokens) else None

    take(None, "year or hour", "digits")
    if peek() not in ("-", ":"):
        raise _DatetimeError(None, "`-` (YYYY-MM) or `:` (HH:MM)")
    has_date = peek() == "-"
    if has_date:
        year = tokens[0][1]
        pos += 1
        month = take("date", "month", "digits")
        take("date", "`-` (MM-DD)", "-")
        day = take("date", "day", "digits")
        if len(year) != 4:
            raise _DatetimeError("date", "a four-digit year (YYYY)")
        if len(month) != 2:
            raise _DatetimeError("date", "a two-digit month (MM)")
        if len(day) != 2:
            raise _DatetimeError("date", "a two-digit day (DD)")
        y, m, d = int(year), int(month), int(day)
        if not 1 <= m <= 12:
            raise _DatetimeError("date", "month between 01 and 12")
        leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
        days = 29 if m == 2 and leap else 28 if m == 2 else 30 if m in (4, 6, 9, 11) else 31
        if not 1 <= d <= days:
            raise _DatetimeError("date", f"day between 01 and {days:02d}")
        if pos < len(tokens):
            if peek() not in ("T", " "):
                raise _DatetimeError("date-time", "`T` between date and time")
            pos += 1
            has_time = True
        else:
            has_time = False
    else:
        pos = 0
        has_time = True
    if has_time:
        hour = take("time", "hour", "digits")
        take("time", "`:` (HH:MM)", ":")
        minute = take("time", "minute", "digits")
        second = None
        if peek() == ":":
            pos += 1
            second = take("time", "second", "digits")
            if peek() == ".":
                pos += 1
                take("time", "nanosecond", "digits")
        if len(hour) != 2:
            raise _DatetimeError("time", "a two-digit hour (HH)")
        if len(minute) != 2:
            raise _DatetimeError("time", "a two-digit minute (MM)")
        if second is not None and len(second) != 2:
            raise _DatetimeError("time", "a two-digit second (SS)")
        if int(hour) > 23:
            raise _DatetimeError("time", "hour between 00 and 23")
        if int(minute) > 59:
            raise _DatetimeError("time", "minute between 00 and 59")
        if second is not None and int(second) > 60:
            raise _DatetimeError("time", "second between 00 and 60")
    if has_date and has_time and pos < len(tokens):
        kind = tokens[pos][0]
        pos += 1
        if kind in ("+", "-"):
            hours = take("offset", "hour", "digits")
            take("offset", "`:` (HH:MM)", ":")
            minutes = take("offset", "minute", "digits")
            if len(hours) != 2:
                raise _DatetimeError("offset", "a two-digit hour (HH)")
            if len(minutes) != 2:
                raise _DatetimeError("offset", "a two-digit minute (MM)")
            if int(hours) > 23:
                raise _DatetimeError("offset", "hours between 00 and 23")
            if int(minutes) > 59:
                raise _DatetimeError("offset", "minutes between 00 and 59")
        elif kind != "Z":
            raise _DatetimeError("offset", "`Z`, +OFFSET, -OFFSET")
    if pos < len(tokens):
        raise _DatetimeError()


# ---------------------------------------------------------------------------------------------
# Pass 2: events to tables (key decoding, scalar decoding, duplicate keys, table redefinitions)


@dataclass
class _Table:
    implicit: bool = False
    dotted: bool = False
    inline: bool = False
    entries: dict[str, _Entry] = field(default_factory=dict)


@dataclass
class _Array:
    of_tables: bool
    items: list[_Table] = field(default_factory=list)


_Value = _Table | _Array | str  # str: the type name of a scalar ("integer", "string"...)


@dataclass
class _Entry:
    value: _Value
    key_start: int
    key_end: int


class _Key(NamedTuple):
    name: str
    start: int
    end: int


class _Header(NamedTuple):
    path: list[_Key]
    key: _Key | None
    is_array: bool


def _type_name(value: _Value) -> str:
    if isinstance(value, _Table):
        return "inline table" if value.inline else "table"
    if isinstance(value, _Array):
        return "array"
    return value


class _Builder:
    def __init__(self, text: str, events: list[_Event]) -> None:
        self.text = text
        self.events = events
        self.pos = 0
        self.root = _Table()
        self.current = _Table()
        self.header: _Header | None = None

    def fail(self, message: str, key: _Key) -> NoReturn:
        raise _Found(message, key.start, key.end)

    def next_event(self) -> _Event | None:
        if self.pos >= len(self.events):
            return None
        self.pos += 1
        return self.events[self.pos - 1]

    def peek(self, offset: int = 0) -> str | None:
        index = self.pos + offset
        return self.events[index].kind if index < len(self.events) else None

    def document(self) -> None:
        while (event := self.next_event()) is not None:
            if event.kind in (_STD_OPEN, _AOT_OPEN):
                self.finish_table()
                header = self.on_header(event.kind == _AOT_OPEN)
                self.start_table(header)
            elif event.kind == _SIMPLE_KEY:
                path, key = self.on_key(event)
                following = self.next_event()
                if following is not None and following.kind == _WS:
                    following = self.next_event()
                if following is None or following.kind != _KEY_VAL_SEP:
                    break
                if self.peek() == _WS:
                    self.pos += 1
                value = self.value()
                self.capture(path, key, value)
        self.finish_table()

    def on_key(self, first: _Event) -> tuple[list[_Key], _Key]:
        parts = [first]
        while self.peek() == _KEY_SEP or (self.peek() == _WS and self.peek(1) == _KEY_SEP):
            while (event := self.next_event()) is not None and event.kind != _SIMPLE_KEY:
                pass
            if event is None:
                break
            parts.append(event)
        keys = []
        for part in parts:
            raw = _Raw(self.text, part)
            _decode_key(raw)
            keys.append(_Key(_key_name(raw), part.start, part.end))
        return keys[:-1], keys[-1]

    def on_header(self, is_array: bool) -> _Header:
        path: list[_Key] = []
        key: _Key | None = None
        while (event := self.next_event()) is not None:
            if event.kind in (_STD_CLOSE, _AOT_CLOSE):
                break
            if event.kind == _SIMPLE_KEY:
                path, key = self.on_key(event)
        return _Header(path, key, is_array)

    def value(self) -> _Value:
        event = self.next_event()
        if event is None:
            return "integer"
        if event.kind == _INLINE_OPEN:
            return self.inline_table()
        if event.kind == _ARRAY_OPEN:
            return self.array()
        if event.kind == _SCALAR:
            return self.scalar(event)
        return "integer"

    def scalar(self, event: _Event) -> str:
        raw = _Raw(self.text, event)
        scalar = _decode_scalar(raw)
        if scalar.kind == _DATETIME:
            try:
                _check_datetime(raw.s)
            except _DatetimeError as err:
                raise _Found(str(err), event.start, event.end) from None
        elif scalar.kind == _FLOAT:
            _check_float(raw, event)
        elif scalar.kind == _INTEGER:
            _check_integer(raw, scalar, event)
        return scalar.kind

    def array(self) -> _Array:
        while (event := self.next_event()) is not None:
            if event.kind == _ARRAY_CLOSE:
                break
            if event.kind == _INLINE_OPEN:
                self.inline_table()
            elif event.kind == _ARRAY_OPEN:
                self.array()
            elif event.kind == _SCALAR:
                self.scalar(event)
        return _Array(of_tables=False)

    def inline_table(self) -> _Table:
        result = _Table(inline=True)
        current: tuple[list[_Key], _Key] | None = None
        value: _Value | None = None
        while (event := self.next_event()) is not None:
            kind = event.kind
            if kind == _SIMPLE_KEY:
                current = self.on_key(event)
            elif kind == _INLINE_OPEN:
                value = self.inline_table()
            elif kind == _ARRAY_OPEN:
                value = self.array()
            elif kind == _SCALAR:
                value = self.scalar(event)
            elif kind in (_VALUE_SEP, _INLINE_CLOSE):
                # A key without a value (`{ x }`, `{ x = }`) is dropped, not an error.
                if current is not None and value is not None:
                    self.insert_inline(result, current[0], current[1], value)
                current, value = None, None
                if kind == _INLINE_CLOSE:
                    break
        return result

    def insert_inline(self, result: _Table, path: list[_Key], key: _Key, value: _Value) -> None:
        table = result
        for part in path:
            entry = table.entries.get(part.name)
            if entry is None:
                child = _Table(implicit=True, dotted=True, inline=True)
                table.entries[part.name] = _Entry(child, part.start, part.end)
                table = child
            elif isinstance(entry.value, _Table):
                if not entry.value.implicit:
                    self.fail("duplicate key", part)
                table = entry.value
            else:
                self.fail(f"cannot extend value of type {_type_name(entry.value)} with a dotted key", part)
        if table.dotted == (not path) or key.name in table.entries:
            self.fail("duplicate key", key)
        table.entries[key.name] = _Entry(value, key.start, key.end)

    def descend(self, table: _Table, path: list[_Key], dotted: bool) -> _Table:
        for part in path:
            entry = table.entries.get(part.name)
            if entry is None:
                child = _Table(implicit=True, dotted=dotted)
                table.entries[part.name] = _Entry(child, part.start, part.end)
                table = child
                continue
            found = entry.value
            if isinstance(found, _Array):
                if not found.of_tables:
                    self.fail("cannot extend value of type array with a dotted key", part)
                table = found.items[-1]
            elif isinstance(found, _Table):
                if found.inline:
                    self.fail("cannot extend value of type inline table with a dotted key", part)
                if dotted and found.implicit:
                    found.dotted = True
                if dotted and not found.implicit:
                    self.fail("duplicate key", part)
                table = found
            else:
                self.fail(f"cannot extend value of type {found} with a dotted key", part)
        return table

    def capture(self, path: list[_Key], key: _Key, value: _Value) -> None:
        parent = self.descend(self.current, path, dotted=bool(path))
        if path and not parent.implicit:
            self.fail("duplicate key", key)
        if key.name in parent.entries:
            self.fail("duplicate key", key)
        parent.entries[key.name] = _Entry(value, key.start, key.end)

    def finish_table(self) -> None:
        finished, self.current = self.current, _Table()
        header, self.header = self.header, None
        if header is None:
            self.root = finished
            return
        if header.key is None:
            return
        parent = self.descend(self.root, header.path, dotted=False)
        if header.is_array:
            entry = parent.entries.get(header.key.name)
            if entry is None:
                entry = _Entry(_Array(of_tables=True), header.key.start, header.key.end)
                parent.entries[header.key.name] = entry
            if not isinstance(entry.value, _Array) or not entry.value.of_tables:
                self.fail("duplicate key", header.key)
            assert isinstance(entry.value, _Array)
            entry.value.items.append(finished)
        else:
            parent.entries[header.key.name] = _Entry(finished, header.key.start, header.key.end)

    def start_table(self, header: _Header) -> None:
        if not header.is_array and header.key is not None:
            parent = self.descend(self.root, header.path, dotted=False)
            old = parent.entries.pop(header.key.name, None)
            if old is not None:
                found = old.value
                if isinstance(found, _Table) and found.implicit and not found.dotted:
                    self.current = found
                else:
                    self.fail("duplicate key", header.key)
        self.current.implicit = False
        self.current.dotted = False
        self.header = header


_SIMPLE_ESCAPES = {"b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}


def _key_name(raw: _Raw) -> str:
    """A key's decoded name (only called on keys that decoded without error)."""
    if raw.encoding == _LIT:
        return raw.s[1:-1]
    if raw.encoding != _BASIC:
        return raw.s
    body, out, i = raw.s[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        letter = body[i + 1]
        width = {"x": 2, "u": 4, "U": 8}.get(letter)
        if width is None:
            out.append(_SIMPLE_ESCAPES[letter])
            i += 2
        else:
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Public API


def find_syntax_error(text: str) -> TomlSyntaxError | None:
    """The error the reference reports first for ``text``, or None when it would accept it."""
    try:
        parser = _Parser(text, _lex(text))
        parser.document()
        _Builder(text, parser.events).document()
    except _Found as found:
        return found.error(text)
    except RecursionError:
        # Values nested hundreds deep: the reference stops at its own depth limit, with a wording
        # not reproduced here.
        return None
    return None


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _position(data: bytes, index: int) -> tuple[int, int]:
    """0-based (line, column) of byte ``index`` the way the crates compute it: columns count
    characters, an index past the end continues the last line, and an index inside a character
    falls back to counting bytes."""
    if not data:
        return 0, index
    safe = min(index, len(data) - 1)
    overshoot = index - safe
    line_start = data.rfind(b"\n", 0, safe) + 1
    line = data.count(b"\n", 0, line_start)
    try:
        column = len(data[line_start : safe + 1].decode("utf-8")) - 1
    except UnicodeDecodeError:
        column = safe - line_start
    return line, column + overshoot


def error_positions(text: str, error: TomlSyntaxError) -> tuple[tuple[int, int], tuple[int, int]]:
    """1-based ((line, column), (line, column)) of the error's first and last character, as the
    reference's diagnostics give them (``configWarning`` range, "<file>:L:C:" prefixes)."""
    data = text.encode("utf-8")
    start, end = error.start, error.end
    last = end - 1 if end > start else end
    (line, column), (end_line, end_column) = _position(data, start), _position(data, last)
    if not data:
        return (1, 1), (1, 1)
    return (line + 1, column + 1), (end_line + 1, end_column + 1)


def error_snippet(text: str, error: TomlSyntaxError) -> str:
    """The toml crate's rendering of the error: position, the line with carets, the message."""
    line, column = _position(text.encode("utf-8"), error.start)
    lines = text.split("\n")
    content = lines[line] if line < len(lines) else ""
    # One caret per byte of the span, at most to the end of the line (whose length the crate also
    # takes in bytes, against a column in characters).
    width = max(0, min(error.end - error.start, len(content.encode("utf-8")) - column))
    gutter = " " * (len(str(line + 1)) + 1)
    return (
        f"TOML parse error at line {line + 1}, column {column + 1}\n"
        f"{gutter}|\n"
        f"{line + 1} | {content}\n"
        f"{gutter}|{' ' * (column + 1)}{'^' * max(1, width)}\n"
        f"{error.message}\n"
    )
