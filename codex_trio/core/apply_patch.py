"""The ``apply_patch`` engine: the Codex patch format, its verification and its atomic application.

A patch looks like::

    *** Begin Patch
    *** Add File: hello.txt
    +hello
    *** Update File: src/app.py
    *** Move to: src/main.py
    @@ def main():
    -    print("hi")
    +    print("hello")
    *** Delete File: old.txt
    *** End Patch

Three steps, each matching what the reference (Codex CLI 0.94.0) shows the model and the client:

* :func:`plan_patch` parses the text and checks it against the files (nothing is written). Its
  :class:`PatchVerificationError` carries the exact text the model receives
  (``apply_patch verification failed: …``), and its :class:`PatchPlan` carries the per-file changes
  in the ``FileChange`` shape of ``patch_apply_begin``.
* :func:`apply_plan` replays the hunks in order against the files as they are then, like the
  reference's ``apply_patch`` process, and returns its summary
  (``Success. Updated the following files:\\nA hello.txt\\n…``). Unlike the reference it is
  all-or-nothing: every file is replaced through a temporary file and ``os.replace``, and when a
  step fails every earlier step is undone before :class:`PatchApplyError` is raised with the text
  the reference prints on stderr.
* :func:`extract_shell_patch` recognises ``apply_patch`` given to the shell tool
  (``["apply_patch", patch]``, or a ``bash -lc`` heredoc with an optional ``cd dir &&``), which
  the reference runs as a patch rather than as a process.

:func:`unified_diff` renders a text diff the way the reference's diff library does (Myers'
algorithm with its clean-up pass, the same hunk grouping and headers); the turn diff tracker uses
it too.

Everything here is synchronous and does small blocking file I/O: reading and writing the files a
patch names, plus a diff of each updated file (bounded by :data:`DIFF_DEADLINE_SECONDS`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Literal, TypedDict

from .exec import ExecError

# --------------------------------------------------------------------------------------------
# Errors

VERIFICATION_FAILED_PREFIX = "apply_patch verification failed: "
EMPTY_PATCH_MESSAGE = "patch rejected: empty patch"
IMPLICIT_INVOCATION_MESSAGE = (
    'patch detected without explicit call to apply_patch. Rerun as ["apply_patch", "<patch>"]'
)


class PatchError(Exception):
    """A patch that was not applied. ``message`` is the text the reference shows for it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PatchVerificationError(PatchError):
    """Refused before anything was written: a malformed patch, a file that cannot be read, context
    that does not match, an empty patch or a patch given to the shell without ``apply_patch``.
    ``message`` is exactly the tool output the model receives; the reference starts no
    ``fileChange`` item for these."""


class PatchApplyError(PatchError):
    """Writing failed part-way; every change already made was undone. ``message`` is what the
    reference's ``apply_patch`` process prints on stderr (newline-terminated): it is the
    ``patch_apply_end`` stderr, and the model receives it as a command that exited with code 1."""


class PatchCwdError(PatchApplyError):
    """The directory the patch is relative to does not exist (or is not a directory). The
    reference cannot start its ``apply_patch`` process there; ``message`` is its spawn error text,
    which is both the ``patch_apply_end`` stderr and, verbatim, the model's tool output."""


# --------------------------------------------------------------------------------------------
# The parsed patch

BEGIN_PATCH = "*** Begin Patch"
END_PATCH = "*** End Patch"
ADD_FILE = "*** Add File: "
DELETE_FILE = "*** Delete File: "
UPDATE_FILE = "*** Update File: "
MOVE_TO = "*** Move to: "
END_OF_FILE = "*** End of File"
HEREDOC_OPENERS = ("<<EOF", "<<'EOF'", '<<"EOF"')

# Rust's notion of whitespace (the Unicode White_Space property), used by the reference's trims.
# Python's str.strip() without arguments also strips \x1c-\x1f, which Rust keeps.
_RUST_WS = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _trim(text: str) -> str:
    return text.strip(_RUST_WS)


def _trim_end(text: str) -> str:
    return text.rstrip(_RUST_WS)


@dataclass(frozen=True)
class AddFile:
    path: str
    contents: str


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class UpdateChunk:
    """One ``@@`` section: ``old_lines`` (context and removed lines) become ``new_lines``."""

    context: str | None
    old_lines: tuple[str, ...]
    new_lines: tuple[str, ...]
    end_of_file: bool


@dataclass(frozen=True)
class UpdateFile:
    path: str
    move_path: str | None
    chunks: tuple[UpdateChunk, ...]


Hunk = AddFile | DeleteFile | UpdateFile


@dataclass(frozen=True)
class Patch:
    # The patch lines between (and including) the Begin/End markers, without a heredoc wrapper.
    text: str
    hunks: tuple[Hunk, ...]


class _ParseError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _invalid_patch(reason: str) -> _ParseError:
    return _ParseError(f"invalid patch: {reason}")


def _invalid_hunk(reason: str, line_number: int) -> _ParseError:
    return _ParseError(f"invalid hunk at line {line_number}, {reason}")


def _rust_lines(text: str) -> list[str]:
    # str::lines(): split at "\n", drop one "\r" ending each line, no empty line after a final "\n".
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _strict_body(lines: list[str]) -> list[str]:
    first = _trim(lines[0]) if lines else None
    last = _trim(lines[-1]) if lines else None
    if first == BEGIN_PATCH and last == END_PATCH:
        return lines
    if first is not None and first != BEGIN_PATCH:
        raise _invalid_patch("The first line of the patch must be '*** Begin Patch'")
    raise _invalid_patch("The last line of the patch must be '*** End Patch'")


def _patch_lines(lines: list[str]) -> list[str]:
    """The lines from Begin to End marker; a patch wrapped in a ``<<'EOF'`` heredoc (as a model may
    pass it to ``apply_patch`` without a shell) is unwrapped first, as the reference does."""
    try:
        return _strict_body(lines)
    except _ParseError as original:
        if len(lines) >= 4 and lines[0] in HEREDOC_OPENERS and lines[-1].endswith("EOF"):
            return _strict_body(lines[1:-1])
        raise original from None


def _parse_chunk(
    lines: list[str], start: int, line_number: int, first_chunk: bool
) -> tuple[UpdateChunk, int]:
    """One chunk starting at ``lines[start]``; returns it and how many lines it took."""
    if start >= len(lines):
        raise _invalid_hunk("Update hunk does not contain any lines", line_number)
    head = lines[start]
    if head == "@@":
        context: str | None = None
        skip = 1
    elif head.startswith("@@ "):
        context = head[3:]
        skip = 1
    elif first_chunk:
        # The first chunk of a file may start straight with diff lines.
        context = None
        skip = 0
    else:
        raise _invalid_hunk(
            f"Expected update hunk to start with a @@ context marker, got: '{head}'", line_number
        )
    if start + skip >= len(lines):
        raise _invalid_hunk("Update hunk does not contain any lines", line_number + 1)
    old: list[str] = []
    new: list[str] = []
    end_of_file = False
    taken = 0
    for line in islice(lines, start + skip, None):
        if line == END_OF_FILE:
            if taken == 0:
                raise _invalid_hunk("Update hunk does not contain any lines", line_number + 1)
            end_of_file = True
            taken += 1
            break
        marker = line[:1]
        if marker == "":
            old.append("")
            new.append("")
        elif marker == " ":
            old.append(line[1:])
            new.append(line[1:])
        elif marker == "+":
            new.append(line[1:])
        elif marker == "-":
            old.append(line[1:])
        else:
            if taken == 0:
                raise _invalid_hunk(
                    f"Unexpected line found in update hunk: '{line}'. Every line should start with "
                    "' ' (context line), '+' (added line), or '-' (removed line)",
                    line_number + 1,
                )
            # Anything else starts the next chunk or hunk.
            break
        taken += 1
    return UpdateChunk(context, tuple(old), tuple(new), end_of_file), taken + skip


def _parse_hunk(lines: list[str], start: int, line_number: int) -> tuple[Hunk, int]:
    header = _trim(lines[start])
    if header.startswith(ADD_FILE):
        taken = 1
        contents: list[str] = []
        for line in islice(lines, start + 1, None):
            if not line.startswith("+"):
                break
            contents.append(line[1:] + "\n")
            taken += 1
        return AddFile(header[len(ADD_FILE) :], "".join(contents)), taken
    if header.startswith(DELETE_FILE):
        return DeleteFile(header[len(DELETE_FILE) :]), 1
    if header.startswith(UPDATE_FILE):
        path = header[len(UPDATE_FILE) :]
        index = start + 1
        taken = 1
        move_path = None
        if index < len(lines) and lines[index].startswith(MOVE_TO):
            move_path = lines[index][len(MOVE_TO) :]
            index += 1
            taken += 1
        chunks: list[UpdateChunk] = []
        while index < len(lines):
            line = lines[index]
            if _trim(line) == "":
                index += 1
                taken += 1
                continue
            if line.startswith("*"):
                break
            chunk, used = _parse_chunk(lines, index, line_number + taken, not chunks)
            chunks.append(chunk)
            index += used
            taken += used
        if not chunks:
            raise _invalid_hunk(f"Update file hunk for path '{path}' is empty", line_number)
        return UpdateFile(path, move_path, tuple(chunks)), taken
    raise _invalid_hunk(
        f"'{header}' is not a valid hunk header. Valid hunk headers: "
        "'*** Add File: {path}', '*** Delete File: {path}', '*** Update File: {path}'",
        line_number,
    )


def _parse(text: str) -> Patch:
    lines = _patch_lines(_rust_lines(_trim(text)))
    body = lines[1:-1]
    hunks: list[Hunk] = []
    index = 0
    # Line numbers in errors count the Begin marker as line 1.
    line_number = 2
    while index < len(body):
        hunk, used = _parse_hunk(body, index, line_number)
        hunks.append(hunk)
        index += used
        line_number += used
    return Patch("\n".join(lines), tuple(hunks))


def parse_patch(text: str) -> Patch:
    """Parse the patch text. Raises :class:`PatchVerificationError` with the model's text."""
    try:
        return _parse(text)
    except _ParseError as exc:
        raise PatchVerificationError(VERIFICATION_FAILED_PREFIX + exc.text) from None


def _parses(text: str) -> bool:
    try:
        _parse(text)
    except _ParseError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Locating chunks in a file and computing its new contents


def _normalise_punctuation(text: str) -> str:
    return _trim(text).translate(_PUNCTUATION)


_PUNCTUATION = str.maketrans(
    {
        **{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"},
        **{c: "'" for c in "\u2018\u2019\u201a\u201b"},
        **{c: '"' for c in "\u201c\u201d\u201e\u201f"},
        **{c: " " for c in "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"},
    }
)


def seek_sequence(lines: Sequence[str], pattern: Sequence[str], start: int, end_of_file: bool) -> int | None:
    """Where ``pattern`` occurs in ``lines`` at or after ``start`` (at the end first when
    ``end_of_file``), trying ever looser comparisons in the reference's order: exact, ignoring
    trailing whitespace, ignoring surrounding whitespace, then also folding typographic
    punctuation (dashes, quotes, odd spaces) to ASCII."""
    if not pattern:
        return start
    if len(pattern) > len(lines):
        return None
    first = len(lines) - len(pattern) if end_of_file else start
    positions = range(first, len(lines) - len(pattern) + 1)
    for fold in (_same, _trim_end, _trim, _normalise_punctuation):
        wanted = [fold(p) for p in pattern]
        folded: dict[int, str] = {}
        for i in positions:
            for j, expected in enumerate(wanted):
                line = folded.get(i + j)
                if line is None:
                    line = folded[i + j] = fold(lines[i + j])
                if line != expected:
                    break
            else:
                return i
    return None


def _same(text: str) -> str:
    return text


class _ComputeError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _file_lines(contents: str) -> list[str]:
    lines = contents.split("\n")
    # A final newline ends the last line rather than starting an empty one.
    if lines[-1] == "":
        lines.pop()
    return lines


def _replacements(
    lines: list[str], shown_path: str, chunks: Sequence[UpdateChunk]
) -> list[tuple[int, int, list[str]]]:
    found_at: list[tuple[int, int, list[str]]] = []
    cursor = 0
    for chunk in chunks:
        if chunk.context is not None:
            where = seek_sequence(lines, [chunk.context], cursor, False)
            if where is None:
                raise _ComputeError(f"Failed to find context '{chunk.context}' in {shown_path}")
            cursor = where + 1
        if not chunk.old_lines:
            # Pure additions go at the end of the file (before a trailing empty line).
            at = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
            found_at.append((at, 0, list(chunk.new_lines)))
            continue
        pattern = list(chunk.old_lines)
        replacement = list(chunk.new_lines)
        where = seek_sequence(lines, pattern, cursor, chunk.end_of_file)
        if where is None and pattern[-1] == "":
            # A trailing empty line stands for the file's final newline, which the split dropped.
            pattern = pattern[:-1]
            if replacement and replacement[-1] == "":
                replacement = replacement[:-1]
            where = seek_sequence(lines, pattern, cursor, chunk.end_of_file)
        if where is None:
            raise _ComputeError(
                f"Failed to find expected lines in {shown_path}:\n" + "\n".join(chunk.old_lines)
            )
        found_at.append((where, len(pattern), replacement))
        cursor = where + len(pattern)
    found_at.sort(key=lambda r: r[0])
    return found_at


def _updated_contents(original: str, shown_path: str, chunks: Sequence[UpdateChunk]) -> str:
    lines = _file_lines(original)
    for at, old_len, replacement in reversed(_replacements(lines, shown_path, chunks)):
        del lines[at : at + old_len]
        lines[at:at] = replacement
    if not lines or lines[-1] != "":
        lines.append("")
    return "\n".join(lines)


def _read_text(path: str) -> str:
    """read_to_string: raises OSError, or ValueError for contents that are not UTF-8."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("stream did not contain valid UTF-8") from None


def _read_error_text(exc: Exception) -> str:
    return ExecError.from_os_error(exc).message if isinstance(exc, OSError) else str(exc)


# --------------------------------------------------------------------------------------------
# Text diff, as the reference's diff library (similar 2.x, Myers) renders it

# A diff op: [tag, old_index, old_len, new_index, new_len]. An insertion has old_len 0 and a
# deletion new_len 0; an equal run has old_len == new_len.
_EQ, _DEL, _INS, _REP = 0, 1, 2, 3

# Past this, Myers stops refining and reports the rest as a plain replacement (the library's own
# fallback when given a deadline). The reference sets none; only pathological inputs (thousands
# of lines all different) get this far in Python.
DIFF_DEADLINE_SECONDS = 1.0


# Below this many lines a range is searched directly rather than first checked for common lines.
_DISJOINT_CHECK_SIZE = 64


def _disjoint_middle_snake(n: int, m: int) -> tuple[int, int]:
    """Where Myers' middle-snake search splits two non-empty sequences that share no element.

    With no diagonal moves the furthest-reaching point on diagonal k after d steps is at
    x = (d + k) / 2 in both directions, so the search's overlap test first holds at
    d = ceil((n + m) / 2) (independently of k) and stops at the first diagonal, from the top, that
    it checks there. This gives the same split as running the search, in constant time, which
    matters for a rewritten file (the search itself is quadratic then)."""
    delta = n - m
    if delta & 1:
        # Odd delta: found by the forward search.
        d = (n + m + 1) // 2
        k = min(d, delta + d - 1)
        x = (d + k) // 2
        return x, x - k
    d = (n + m) // 2
    k = min(d, delta + d)
    x = (d + k) // 2
    return n - x, m - (x - k)


class _Myers:
    """Myers' linear-space divide-and-conquer diff over interned lines, emitting raw ops in the
    order the reference's implementation does (so ambiguous alignments come out the same)."""

    def __init__(self, old: list[int], new: list[int], deadline: float) -> None:
        self.old = old
        self.new = new
        self.deadline = deadline
        size = (len(old) + len(new) + 1) // 2 + 1
        self.offset = size
        self.vf = [0] * (2 * size)
        self.vb = [0] * (2 * size)
        self.ops: list[list[int]] = []

    def _prefix(self, os_: int, oe: int, ns: int, ne: int) -> int:
        return _common_prefix(self.old, os_, oe, self.new, ns, ne)

    def _suffix(self, os_: int, oe: int, ns: int, ne: int) -> int:
        return _common_suffix(self.old, os_, oe, self.new, ns, ne)

    def _middle_snake(self, os_: int, oe: int, ns: int, ne: int) -> tuple[int, int] | None:
        n = oe - os_
        m = ne - ns
        delta = n - m
        odd = delta & 1 == 1
        vf, vb, off = self.vf, self.vb, self.offset
        old, new = self.old, self.new
        vf[1 + off] = 0
        vb[1 + off] = 0
        for d in range((n + m + 1) // 2 + 1):
            if time.monotonic() > self.deadline:
                return None
            for k in range(d, -d - 1, -2):
                if k == -d or (k != d and vf[k - 1 + off] < vf[k + 1 + off]):
                    x = vf[k + 1 + off]
                else:
                    x = vf[k - 1 + off] + 1
                y = x - k
                x0, y0 = x, y
                if x < n and 0 <= y < m and old[os_ + x] == new[ns + y]:
                    x += self._prefix(os_ + x, oe, ns + y, ne)
                vf[k + off] = x
                if odd and abs(k - delta) <= d - 1 and vf[k + off] + vb[delta - k + off] >= n:
                    return x0 + os_, y0 + ns
            for k in range(d, -d - 1, -2):
                if k == -d or (k != d and vb[k - 1 + off] < vb[k + 1 + off]):
                    x = vb[k + 1 + off]
                else:
                    x = vb[k - 1 + off] + 1
                y = x - k
                if x < n and 0 <= y < m and old[os_ + n - x - 1] == new[ns + m - y - 1]:
                    advance = self._suffix(os_, os_ + n - x, ns, ns + m - y)
                    x += advance
                    y += advance
                vb[k + off] = x
                if not odd and abs(k - delta) <= d and vb[k + off] + vf[delta - k + off] >= n:
                    return n - x + os_, m - y + ns
        return None

    def run(self, os_: int, oe: int, ns: int, ne: int, disjoint: bool = False) -> None:
        """Diff old[os_:oe] against new[ns:ne]. ``disjoint``: the two share no line."""
        prefix = self._prefix(os_, oe, ns, ne)
        if prefix:
            self.ops.append([_EQ, os_, prefix, ns, prefix])
        os_ += prefix
        ns += prefix
        suffix = self._suffix(os_, oe, ns, ne)
        oe -= suffix
        ne -= suffix
        if os_ >= oe and ns >= ne:
            pass
        elif ns >= ne:
            self.ops.append([_DEL, os_, oe - os_, ns, 0])
        elif os_ >= oe:
            self.ops.append([_INS, os_, 0, ns, ne - ns])
        else:
            if not disjoint and (oe - os_) + (ne - ns) >= _DISJOINT_CHECK_SIZE:
                disjoint = set(self.old[os_:oe]).isdisjoint(self.new[ns:ne])
            if disjoint:
                x, y = _disjoint_middle_snake(oe - os_, ne - ns)
                snake: tuple[int, int] | None = (os_ + x, ns + y)
            else:
                snake = self._middle_snake(os_, oe, ns, ne)
            if snake is None:
                self.ops.append([_DEL, os_, oe - os_, ns, 0])
                self.ops.append([_INS, os_, 0, ns, ne - ns])
            else:
                x, y = snake
                self.run(os_, x, ns, y, disjoint)
                self.run(x, oe, y, ne, disjoint)
        if suffix:
            self.ops.append([_EQ, oe, suffix, ne, suffix])


def _shift(op: list[int], offset: int, length: int) -> None:
    # Moves an op's start by ``offset`` and changes its length by ``length``.
    op[1] += offset
    op[3] += offset
    if op[0] in (_EQ, _DEL):
        op[2] += length
    if op[0] in (_EQ, _INS):
        op[4] += length


def _empty(op: list[int]) -> bool:
    return op[2] == 0 and op[4] == 0


def _common_suffix(old: list[int], o_start: int, o_end: int, new: list[int], n_start: int, n_end: int) -> int:
    limit = min(o_end - o_start, n_end - n_start)
    count = 0
    while count < limit and old[o_end - count - 1] == new[n_end - count - 1]:
        count += 1
    return count


def _common_prefix(old: list[int], o_start: int, o_end: int, new: list[int], n_start: int, n_end: int) -> int:
    limit = min(o_end - o_start, n_end - n_start)
    count = 0
    while count < limit and old[o_start + count] == new[n_start + count]:
        count += 1
    return count


def _slide_up(ops: list[list[int]], old: list[int], new: list[int], at: int) -> int:
    while at > 0:
        this, prev = ops[at], ops[at - 1]
        pair = (this[0], prev[0])
        if pair[1] == _EQ:
            # Only insertions slide: the library compares against the op's new-side range, which
            # is empty for a deletion; an emptied neighbour is still dropped.
            shared = 0
            if this[0] == _INS:
                shared = _common_suffix(old, prev[1], prev[1] + prev[2], new, this[3], this[3] + this[4])
            if shared:
                if at + 1 < len(ops) and ops[at + 1][0] == _EQ:
                    _shift(ops[at + 1], -shared, shared)
                else:
                    end = this[3] + this[4]
                    ops.insert(at + 1, [_EQ, prev[1] + prev[2] - shared, shared, end - shared, shared])
                _shift(ops[at], -shared, 0)
                _shift(ops[at - 1], 0, -shared)
                if _empty(ops[at - 1]):
                    del ops[at - 1]
                    at -= 1
            elif _empty(prev):
                del ops[at - 1]
                at -= 1
            else:
                break
        elif pair in ((_INS, _DEL), (_DEL, _INS)):
            ops[at - 1], ops[at] = ops[at], ops[at - 1]
            at -= 1
        elif pair == (_INS, _INS):
            _shift(ops[at - 1], 0, this[4])
            del ops[at]
            at -= 1
        elif pair == (_DEL, _DEL):
            _shift(ops[at - 1], 0, this[2])
            del ops[at]
            at -= 1
        else:
            break
    return at


def _slide_down(ops: list[list[int]], old: list[int], new: list[int], at: int) -> int:
    while at + 1 < len(ops):
        this, nxt = ops[at], ops[at + 1]
        pair = (this[0], nxt[0])
        if pair[1] == _EQ:
            shared = 0
            if this[0] == _INS:
                shared = _common_prefix(old, nxt[1], nxt[1] + nxt[2], new, this[3], this[3] + this[4])
            if shared:
                if at > 0 and ops[at - 1][0] == _EQ:
                    _shift(ops[at - 1], 0, shared)
                else:
                    ops.insert(at, [_EQ, nxt[1], shared, this[3], shared])
                    at += 1
                _shift(ops[at], shared, 0)
                _shift(ops[at + 1], shared, -shared)
                if _empty(ops[at + 1]):
                    del ops[at + 1]
            elif _empty(nxt):
                del ops[at + 1]
            else:
                break
        elif pair in ((_INS, _DEL), (_DEL, _INS)):
            ops[at], ops[at + 1] = ops[at + 1], ops[at]
            at += 1
        elif pair == (_INS, _INS):
            _shift(ops[at], 0, nxt[4])
            del ops[at + 1]
        elif pair == (_DEL, _DEL):
            _shift(ops[at], 0, nxt[2])
            del ops[at + 1]
        else:
            break
    return at


def _compact(ops: list[list[int]], old: list[int], new: list[int]) -> None:
    for tag in (_DEL, _INS):
        at = 0
        while at < len(ops):
            if ops[at][0] == tag:
                at = _slide_up(ops, old, new, at)
                at = _slide_down(ops, old, new, at)
            at += 1


def _merge_replacements(ops: list[list[int]]) -> list[list[int]]:
    """Adjacent deletions and insertions become one replacement; equal runs merge."""
    out: list[list[int]] = []
    pending_eq: list[int] | None = None
    pending_del: list[int] | None = None
    pending_ins: list[int] | None = None

    def flush_changes() -> None:
        nonlocal pending_del, pending_ins
        if pending_del is not None and pending_ins is not None:
            out.append([_REP, pending_del[1], pending_del[2], pending_ins[3], pending_ins[4]])
        elif pending_del is not None:
            out.append(pending_del)
        elif pending_ins is not None:
            out.append(pending_ins)
        pending_del = pending_ins = None

    def flush_eq() -> None:
        nonlocal pending_eq
        if pending_eq is not None:
            out.append(pending_eq)
            pending_eq = None

    for op in ops:
        if op[0] == _EQ:
            flush_changes()
            if pending_eq is None:
                pending_eq = list(op)
            else:
                pending_eq[2] += op[2]
                pending_eq[4] += op[4]
        elif op[0] == _DEL:
            flush_eq()
            if pending_del is None:
                pending_del = list(op)
            else:
                pending_del[2] += op[2]
        else:
            flush_eq()
            if pending_ins is None:
                pending_ins = list(op)
            else:
                pending_ins[4] += op[4]
    flush_eq()
    flush_changes()
    return out


def _group(ops: list[list[int]], radius: int) -> list[list[list[int]]]:
    if not ops:
        return []
    ops = [list(op) for op in ops]
    first, last = ops[0], ops[-1]
    if first[0] == _EQ:
        cut = max(first[2] - radius, 0)
        first[1] += cut
        first[3] += cut
        first[2] -= cut
        first[4] -= cut
    if last[0] == _EQ:
        keep = min(last[2], radius)
        last[2] = last[4] = keep
    groups: list[list[list[int]]] = []
    pending: list[list[int]] = []
    for op in ops:
        if op[0] == _EQ and op[2] > radius * 2:
            pending.append([_EQ, op[1], radius, op[3], radius])
            groups.append(pending)
            cut = max(op[2] - radius, 0)
            pending = [[_EQ, op[1] + cut, op[2] - cut, op[3] + cut, op[2] - cut]]
            continue
        pending.append(op)
    if not (len(pending) == 0 or (len(pending) == 1 and pending[0][0] == _EQ)):
        groups.append(pending)
    return groups


def split_lines(text: str) -> list[str]:
    """Lines with their terminators, ending at "\\n", "\\r\\n" or a lone "\\r"."""
    return re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)


def _range_text(start: int, end: int) -> str:
    length = max(end - start, 0)
    if length == 1:
        return str(start + 1)
    # An empty range is reported at the line before it.
    return f"{start if length == 0 else start + 1},{length}"


def _diff_ops(old_lines: list[str], new_lines: list[str]) -> list[list[int]]:
    ids: dict[str, int] = {}
    old = [ids.setdefault(line, len(ids)) for line in old_lines]
    new = [ids.setdefault(line, len(ids)) for line in new_lines]
    myers = _Myers(old, new, time.monotonic() + DIFF_DEADLINE_SECONDS)
    myers.run(0, len(old), 0, len(new))
    ops = myers.ops
    _compact(ops, old, new)
    return _merge_replacements(ops)


def _render_line(sign: str, line: str) -> str:
    if line.endswith(("\n", "\r")):
        return sign + line
    return f"{sign}{line}\n\\ No newline at end of file\n"


def _hunk_lines(group: list[list[int]], old_lines: list[str], new_lines: list[str]) -> Iterator[str]:
    for tag, o_start, o_len, n_start, n_len in group:
        if tag == _EQ:
            for line in old_lines[o_start : o_start + o_len]:
                yield _render_line(" ", line)
            continue
        if tag in (_DEL, _REP):
            for line in old_lines[o_start : o_start + o_len]:
                yield _render_line("-", line)
        if tag in (_INS, _REP):
            for line in new_lines[n_start : n_start + n_len]:
                yield _render_line("+", line)


def unified_diff(old: str, new: str, *, context: int, header: tuple[str, str] | None = None) -> str:
    """A line diff in unified format as the reference renders it: ``@@ -a,b +c,d @@`` hunks with
    ``context`` lines around changes, ``\\ No newline at end of file`` markers, and ``--- a`` /
    ``+++ b`` lines first when ``header`` is given. Empty when the texts are equal."""
    old_lines = split_lines(old)
    new_lines = split_lines(new)
    out: list[str] = []
    for group in _group(_diff_ops(old_lines, new_lines), context):
        if header is not None and not out:
            out.append(f"--- {header[0]}\n+++ {header[1]}\n")
        first, last = group[0], group[-1]
        old_range = _range_text(first[1], last[1] + last[2])
        new_range = _range_text(first[3], last[3] + last[4])
        out.append(f"@@ -{old_range} +{new_range} @@\n")
        out.extend(_hunk_lines(group, old_lines, new_lines))
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Planning


class AddFileChange(TypedDict):
    type: Literal["add"]
    content: str


class DeleteFileChange(TypedDict):
    type: Literal["delete"]
    content: str


class UpdateFileChange(TypedDict):
    type: Literal["update"]
    unified_diff: str
    move_path: str | None


FileChange = AddFileChange | DeleteFileChange | UpdateFileChange


@dataclass(frozen=True)
class PatchPlan:
    """A verified patch, ready for approval and :func:`apply_plan`."""

    # The directory the patch's relative paths are resolved against.
    cwd: Path
    patch: Patch
    # The legacy FileChange map of patch_apply_begin/end, keyed by absolute path. A path named by
    # several hunks keeps the last one, as the reference's map does.
    changes: dict[str, FileChange]


def _resolve(cwd: str, path: str) -> str:
    # Path::join: an absolute path replaces the base; nothing is normalised.
    return os.path.join(cwd, path)


def plan_patch(text: str, cwd: str | os.PathLike[str]) -> PatchPlan:
    """Parse ``text`` and check every hunk against the files under ``cwd``; writes nothing.

    Each hunk is checked against the files as they are now (not as earlier hunks would leave them),
    like the reference. Raises :class:`PatchVerificationError` with the model's text."""
    patch = parse_patch(text)
    if not patch.hunks:
        raise PatchVerificationError(EMPTY_PATCH_MESSAGE)
    base = os.fspath(cwd)
    changes: dict[str, FileChange] = {}
    for hunk in patch.hunks:
        path = _resolve(base, hunk.path)
        if isinstance(hunk, AddFile):
            changes[path] = {"type": "add", "content": hunk.contents}
            continue
        if isinstance(hunk, DeleteFile):
            try:
                content = _read_text(path)
            except (OSError, ValueError) as exc:
                raise PatchVerificationError(
                    f"{VERIFICATION_FAILED_PREFIX}Failed to read {path}: {_read_error_text(exc)}"
                ) from None
            changes[path] = {"type": "delete", "content": content}
            continue
        try:
            original = _read_text(path)
        except (OSError, ValueError) as exc:
            raise PatchVerificationError(
                f"{VERIFICATION_FAILED_PREFIX}Failed to read file to update {path}: {_read_error_text(exc)}"
            ) from None
        try:
            updated = _updated_contents(original, path, hunk.chunks)
        except _ComputeError as exc:
            raise PatchVerificationError(VERIFICATION_FAILED_PREFIX + exc.text) from None
        changes[path] = {
            "type": "update",
            "unified_diff": unified_diff(original, updated, context=1),
            "move_path": None if hunk.move_path is None else _resolve(base, hunk.move_path),
        }
    return PatchPlan(cwd=Path(base), patch=patch, changes=changes)


# --------------------------------------------------------------------------------------------
# Applying


class _StepFailed(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _side_name(path: str, purpose: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{purpose}-{secrets.token_hex(6)}")


class _Journal:
    """What has been changed so far, to undo it if a later step fails."""

    def __init__(self) -> None:
        # ("dir", path) | ("created", path) | ("replaced", path, backup) | ("removed", path, backup)
        self.steps: list[tuple[str, ...]] = []

    def make_parents(self, target: str, shown: str) -> None:
        parent = os.path.dirname(target)
        if not parent:
            return
        missing: list[str] = []
        probe = parent
        while probe and not os.path.lexists(probe):
            missing.append(probe)
            upper = os.path.dirname(probe)
            if upper == probe:
                break
            probe = upper
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError:
            # Keep whatever part was made so it is removed again on rollback.
            for directory in reversed(missing):
                if os.path.isdir(directory):
                    self.steps.append(("dir", directory))
            raise _StepFailed(f"Failed to create parent directories for {shown}") from None
        for directory in reversed(missing):
            self.steps.append(("dir", directory))

    def write(self, target: str, content: str, failure: str) -> None:
        # Like fs::write, writing through a symlink changes the file it points to.
        real = os.path.realpath(target) if os.path.islink(target) else target
        temp = _side_name(real, "tmp")
        backup: str | None = None
        try:
            try:
                existing = os.stat(real)
            except FileNotFoundError:
                existing = None
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), real)
            # 0o666 lets the umask decide a new file's mode, as for any newly created file.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                if existing is not None:
                    os.fchmod(fd, stat.S_IMODE(existing.st_mode))
                data = content.encode("utf-8")
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            if existing is not None:
                backup = self._backup(real)
            os.replace(temp, real)
        except OSError:
            for leftover in (temp, backup):
                if leftover is not None:
                    _unlink_quietly(leftover)
            raise _StepFailed(failure) from None
        self.steps.append(("replaced", real, backup) if backup is not None else ("created", real))

    @staticmethod
    def _backup(path: str) -> str:
        backup = _side_name(path, "orig")
        try:
            os.link(path, backup)
        except OSError:
            # No hard links here: keep a copy instead.
            with open(path, "rb") as f:
                data = f.read()
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        return backup

    def remove(self, target: str, failure: str) -> None:
        try:
            info = os.lstat(target)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), target)
            # Renamed aside rather than unlinked, so a rollback can put it back as it was.
            backup = _side_name(target, "removed")
            os.rename(target, backup)
        except OSError:
            raise _StepFailed(failure) from None
        self.steps.append(("removed", target, backup))

    def rollback(self) -> None:
        for step in reversed(self.steps):
            try:
                if step[0] == "dir":
                    os.rmdir(step[1])
                elif step[0] == "created":
                    os.unlink(step[1])
                elif step[0] == "replaced":
                    os.replace(step[2], step[1])
                else:
                    os.rename(step[2], step[1])
            except OSError:
                # Best effort: carry on restoring the rest.
                continue
        self.steps.clear()

    def commit(self) -> None:
        for step in self.steps:
            if step[0] in ("replaced", "removed"):
                _unlink_quietly(step[2])
        self.steps.clear()


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normpath(a) == os.path.normpath(b)


def apply_plan(plan: PatchPlan) -> str:
    """Apply the patch, all or nothing, and return the reference's summary, e.g.
    ``"Success. Updated the following files:\\nA hello.txt\\nM existing.txt\\nD gone.txt\\n"``
    (paths as written in the patch: added, then modified (a moved file under its new name), then
    deleted).

    The hunks are replayed in order against the files as they are now (a file changed since
    :func:`plan_patch` is read again), like the reference's ``apply_patch`` process. Raises
    :class:`PatchApplyError` (stderr text) after undoing every change, or :class:`PatchCwdError`."""
    base = os.fspath(plan.cwd)
    try:
        if not stat.S_ISDIR(os.stat(base).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), base)
    except OSError as exc:
        raise PatchCwdError(ExecError.from_os_error(exc).model_text) from None
    if not plan.patch.hunks:
        raise PatchApplyError("No files were modified.\n")
    journal = _Journal()
    added: list[str] = []
    modified: list[str] = []
    deleted: list[str] = []
    try:
        for hunk in plan.patch.hunks:
            path = _resolve(base, hunk.path)
            if isinstance(hunk, AddFile):
                journal.make_parents(path, hunk.path)
                journal.write(path, hunk.contents, f"Failed to write file {hunk.path}")
                added.append(hunk.path)
            elif isinstance(hunk, DeleteFile):
                journal.remove(path, f"Failed to delete file {hunk.path}")
                deleted.append(hunk.path)
            else:
                try:
                    original = _read_text(path)
                except (OSError, ValueError) as exc:
                    raise _StepFailed(
                        f"Failed to read file to update {hunk.path}: {_read_error_text(exc)}"
                    ) from None
                try:
                    updated = _updated_contents(original, hunk.path, hunk.chunks)
                except _ComputeError as exc:
                    raise _StepFailed(exc.text) from None
                if hunk.move_path is None:
                    journal.write(path, updated, f"Failed to write file {hunk.path}")
                    modified.append(hunk.path)
                    continue
                dest = _resolve(base, hunk.move_path)
                journal.make_parents(dest, hunk.move_path)
                # The reference writes the destination and then deletes the source, which loses
                # the file when both are the same; here that is an in-place update.
                moving_onto_itself = _same_file(path, dest)
                journal.write(dest, updated, f"Failed to write file {hunk.move_path}")
                if not moving_onto_itself:
                    journal.remove(path, f"Failed to remove original {hunk.path}")
                modified.append(hunk.move_path)
    except _StepFailed as exc:
        journal.rollback()
        raise PatchApplyError(exc.text + "\n") from None
    except BaseException:
        journal.rollback()
        raise
    journal.commit()
    lines = ["Success. Updated the following files:\n"]
    lines += [f"A {p}\n" for p in added]
    lines += [f"M {p}\n" for p in modified]
    lines += [f"D {p}\n" for p in deleted]
    return "".join(lines)


# --------------------------------------------------------------------------------------------
# apply_patch given to the shell tool

APPLY_PATCH_COMMANDS = ("apply_patch", "applypatch")


@dataclass(frozen=True)
class ShellPatch:
    """A shell command that the reference runs as a patch."""

    # The patch text (an argument, or a heredoc's body), for plan_patch.
    patch: str
    # The directory its paths are relative to: the command's cwd, or the ``cd`` target in it.
    cwd: Path


def _shell_name(program: str) -> str:
    name = program.rsplit("/", 1)[-1]
    stem, dot, _ = name.rpartition(".")
    return (stem if dot and stem else name).lower()


def _shell_script(argv: Sequence[str]) -> str | None:
    """The script of ``[shell, flag, script]`` for the shells and flags the reference knows."""
    if len(argv) == 4 and _shell_name(argv[0]) in ("pwsh", "powershell") and argv[1].lower() == "-noprofile":
        argv = [argv[0], argv[2], argv[3]]
    if len(argv) != 3:
        return None
    shell, flag, script = _shell_name(argv[0]), argv[1], argv[2]
    if shell in ("bash", "zsh", "sh") and flag in ("-lc", "-c"):
        return script
    if shell in ("pwsh", "powershell") and flag.lower() == "-command":
        return script
    if shell == "cmd" and flag.lower() == "/c":
        return script
    return None


_HEREDOC_SCRIPT = re.compile(
    r"""\s*
    (?:cd[ \t]+(?:'(?P<cd_raw>[^']*)'|"(?P<cd_str>[^"$`\\]+)"|(?P<cd_word>[^\s;&|<>()'"`$\\]+))
       [ \t]*&&\s*)?
    (?:apply_patch|applypatch)[ \t]*<<(?P<dash>-?)[ \t]*
    (?:'(?P<d_raw>[^'\n]+)'|"(?P<d_str>[^"\n]+)"|(?P<d_word>[^\s;&|<>()'"`]+))
    [ \t]*\n""",
    re.VERBOSE,
)


def _heredoc(script: str) -> tuple[str, str | None] | None:
    """``apply_patch <<'EOF' … EOF``, optionally after ``cd <dir> &&``, as the whole script:
    the heredoc's body (without trailing newlines) and the ``cd`` directory."""
    match = _HEREDOC_SCRIPT.match(script)
    if match is None:
        return None
    delimiter = match.group("d_raw") or match.group("d_str") or match.group("d_word")
    lines = script[match.end() :].split("\n")
    for index, line in enumerate(lines):
        candidate = line.lstrip("\t") if match.group("dash") else line
        if candidate.rstrip("\r") != delimiter:
            continue
        if any(rest.strip() for rest in lines[index + 1 :]):
            return None
        body = "\n".join(lines[:index]).rstrip("\n")
        if not body:
            return None
        cd = match.group("cd_raw")
        if cd is None:
            cd = match.group("cd_str") or match.group("cd_word")
        return body, cd
    return None


def extract_shell_patch(argv: Sequence[str], cwd: str | os.PathLike[str]) -> ShellPatch | None:
    """The patch in a shell command that the reference runs as ``apply_patch`` instead of as a
    process, or None for an ordinary command.

    Recognised: ``["apply_patch" | "applypatch", patch]``, and a ``bash|zsh|sh -c|-lc`` (also
    ``pwsh``/``powershell -Command``, ``cmd /c``) script that is exactly ``apply_patch <<DELIM``
    … ``DELIM``, optionally preceded by ``cd <dir> &&``. A patch given without ``apply_patch``
    (a bare patch as the command or as the script) raises :class:`PatchVerificationError`, as the
    reference refuses it. The returned text may still be malformed: :func:`plan_patch` reports that.
    """
    script = _shell_script(argv)
    if (len(argv) == 1 and _parses(argv[0])) or (script is not None and _parses(script)):
        raise PatchVerificationError(VERIFICATION_FAILED_PREFIX + IMPLICIT_INVOCATION_MESSAGE)
    base = os.fspath(cwd)
    if len(argv) == 2 and argv[0] in APPLY_PATCH_COMMANDS:
        return ShellPatch(argv[1], Path(base))
    if script is None:
        return None
    found = _heredoc(script)
    if found is None:
        return None
    body, cd = found
    return ShellPatch(body, Path(base if cd is None else os.path.join(base, cd)))
