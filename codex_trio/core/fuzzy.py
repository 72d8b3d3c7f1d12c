"""Fuzzy file search as the reference does it for ``fuzzyFileSearch``.

Two halves, both reproducing what the reference's clients see:

- the matcher scores a path the way the reference's matcher (nucleo, configured for paths) does: the
  same query syntax (space-separated atoms; ``^`` prefix, ``$`` suffix, ``'`` substring, ``!`` negation,
  backslash escapes), smart case, latin-letter folding, the same bonuses and gap penalties, the same
  optimal alignment (and so the same highlight indices, counted in graphemes);
- the walk visits the roots like the reference's (ripgrep's ``ignore`` walker with hidden files shown,
  symlinks followed and ``.gitignore``/``.ignore``/``.git/info/exclude``/global excludes honoured, also
  from the directories above each root), and keeps the best 50 matches.

The walk is synchronous and meant for a worker thread: it checks a stop flag, a deadline and an entry
budget as it goes, and returns the best matches found so far when any of them trips.
"""

from __future__ import annotations

import heapq
import os
import re
import stat
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

# --------------------------------------------------------------------------------------------------
# Characters
# --------------------------------------------------------------------------------------------------

# Character classes, ordered as the matcher compares them ("greater than delimiter" means a word char).
WHITESPACE, NON_WORD, DELIMITER, LOWER, UPPER, LETTER, NUMBER = range(7)

SCORE_MATCH = 16
PENALTY_GAP_START = 3
PENALTY_GAP_EXTENSION = 1
BONUS_BOUNDARY = SCORE_MATCH // 2
BONUS_CAMEL123 = BONUS_BOUNDARY - PENALTY_GAP_START
BONUS_NON_WORD = BONUS_BOUNDARY
BONUS_CONSECUTIVE = PENALTY_GAP_START + PENALTY_GAP_EXTENSION
BONUS_FIRST_CHAR_MULTIPLIER = 2
# Matching paths: only "/" delimits, and a word start after whitespace earns no more than elsewhere.
BONUS_BOUNDARY_WHITE = BONUS_BOUNDARY
BONUS_BOUNDARY_DELIMITER = BONUS_BOUNDARY + 1
INITIAL_CLASS = DELIMITER

# The optimal matcher works in a fixed scratch area; bigger problems fall back to the greedy matcher.
_MAX_MATRIX_CELLS = 100 * 1024
_SCRATCH_BYTES = 2048 * 4 + 2048 + 2048 * 2 + 2048 * 8 + _MAX_MATRIX_CELLS
_MAX_NEEDLE_LEN = 2048


def _ascii_class(o: int) -> int:
    if 97 <= o <= 122:
        return LOWER
    if 65 <= o <= 90:
        return UPPER
    if 48 <= o <= 57:
        return NUMBER
    if o in (9, 10, 12, 13, 32):
        return WHITESPACE
    if o == 47:
        return DELIMITER
    return NON_WORD


_ASCII_CLASSES = [_ascii_class(o) for o in range(128)]


def _bonus(prev: int, cls: int) -> int:
    if cls > DELIMITER:
        if prev == WHITESPACE:
            return BONUS_BOUNDARY_WHITE
        if prev == DELIMITER:
            return BONUS_BOUNDARY_DELIMITER
        if prev == NON_WORD:
            return BONUS_BOUNDARY
    if (prev == LOWER and cls == UPPER) or (prev != NUMBER and cls == NUMBER):
        return BONUS_CAMEL123
    if cls == WHITESPACE:
        return BONUS_BOUNDARY_WHITE
    if cls == NON_WORD:
        return BONUS_NON_WORD
    return 0


# BONUS[prev][cls]
_BONUS = [[_bonus(p, c) for c in range(7)] for p in range(7)]


@lru_cache(maxsize=4096)
def _unicode_class(c: str) -> int:
    if c.islower():
        return LOWER
    if c.isupper():
        return UPPER
    if unicodedata.category(c)[0] == "N":
        return NUMBER
    if c.isalpha():
        return LETTER
    if c.isspace():
        return WHITESPACE
    return NON_WORD


def char_class(c: str) -> int:
    o = ord(c)
    return _ASCII_CLASSES[o] if o < 128 else _unicode_class(c)


_LATIN_NAME = re.compile(r"LATIN (SMALL|CAPITAL) LETTER ([A-Z])(?: WITH .*|)$")
# Letters whose folding neither their decomposition nor their name gives.
_LATIN_SPECIAL = {
    "\u00a1": "!",
    "\u00bf": "?",
    "\u00ba": "0",
    "\u00df": "s",
    "\u0131": "i",
    "\u0237": "j",
    "\u0149": "n",
}


@lru_cache(maxsize=4096)
def normalize_char(c: str) -> str:
    """The ASCII letter a latin letter with diacritics (or a super/subscript) stands for; other
    characters are returned unchanged."""
    o = ord(c)
    if o < 0xA0 or o >= 0x20A0 or 0x2A0 <= o < 0x1E00 or 0x1F00 <= o < 0x2070:
        return c
    special = _LATIN_SPECIAL.get(c)
    if special is not None:
        return special
    decomposed = unicodedata.normalize("NFKD", c)
    if (
        decomposed
        and decomposed[0].isascii()
        and decomposed[0].isalnum()
        and all(unicodedata.combining(d) for d in decomposed[1:])
    ):
        return decomposed[0]
    m = _LATIN_NAME.match(unicodedata.name(c, ""))
    if m is not None:
        letter = m.group(2)
        return letter.lower() if m.group(1) == "SMALL" else letter
    return c


@lru_cache(maxsize=4096)
def to_lower(c: str) -> str:
    folded = c.casefold()
    return folded if len(folded) == 1 else c


def _is_upper(c: str) -> bool:
    return to_lower(c) != c


def _norm_class(c: str, ignore_case: bool, normalize: bool) -> tuple[str, int]:
    """A haystack character as the matcher compares it, and its class."""
    o = ord(c)
    if o < 128:
        cls = _ASCII_CLASSES[o]
        if ignore_case and cls == UPPER:
            return chr(o + 32), cls
        return c, cls
    cls = _unicode_class(c)
    fold = cls == UPPER
    if normalize:
        c = normalize_char(c)
        fold = True
    if fold and ignore_case:
        c = to_lower(c)
    return c, cls


def _norm(c: str, ignore_case: bool, normalize: bool) -> str:
    """A character as the prefilters and exact comparisons see it."""
    o = ord(c)
    if o < 128:
        return chr(o + 32) if ignore_case and 65 <= o <= 90 else c
    if normalize:
        c = normalize_char(c)
    if ignore_case:
        c = to_lower(c)
    return c


# Grapheme clusters: the matcher sees one character per grapheme (its first code point).
_ZWJ = "\u200d"


def _is_control(c: str) -> bool:
    if c in ("\u200c", _ZWJ):
        return False
    return unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cf")


def _is_extend(c: str) -> bool:
    o = ord(c)
    if o == 0x200C or 0x1F3FB <= o <= 0x1F3FF or 0xE0020 <= o <= 0xE007F or 0xFF9E <= o <= 0xFF9F:
        return True
    return unicodedata.category(c) in ("Mn", "Me", "Mc")


def _hangul(c: str) -> str:
    o = ord(c)
    if 0x1100 <= o <= 0x115F or 0xA960 <= o <= 0xA97C:
        return "L"
    if 0x1160 <= o <= 0x11A7 or 0xD7B0 <= o <= 0xD7C6:
        return "V"
    if 0x11A8 <= o <= 0x11FF or 0xD7CB <= o <= 0xD7FB:
        return "T"
    if 0xAC00 <= o <= 0xD7A3:
        return "LV" if (o - 0xAC00) % 28 == 0 else "LVT"
    return ""


def _is_pictographic(c: str) -> bool:
    o = ord(c)
    return 0x1F000 <= o <= 0x1FAFF or 0x2600 <= o <= 0x27BF or 0x2B00 <= o <= 0x2BFF or o in (0xA9, 0xAE)


def _is_regional(c: str) -> bool:
    return 0x1F1E6 <= ord(c) <= 0x1F1FF


def _joins(last: str, c: str, regional_run: int) -> bool:
    """Whether ``c`` continues the grapheme cluster that ``last`` is in (UAX #29, near enough)."""
    if last == "\r" and c == "\n":
        return True
    if _is_control(last) or _is_control(c) or c in "\r\n":
        return False
    if _is_extend(c) or c == _ZWJ or (last == _ZWJ and _is_pictographic(c)):
        return True
    if _is_regional(last) and _is_regional(c):
        return regional_run % 2 == 1
    h_last, h = _hangul(last), _hangul(c)
    return bool(h_last and h) and (
        (h_last == "L" and h in ("L", "V", "LV", "LVT"))
        or (h_last in ("LV", "V") and h in ("V", "T"))
        or (h_last in ("LVT", "T") and h == "T")
    )


def grapheme_heads(text: str) -> str:
    """The first code point of each extended grapheme cluster of ``text``."""
    out: list[str] = []
    last = ""
    regional_run = 0
    for c in text:
        if not last or not _joins(last, c, regional_run):
            out.append(c)
        regional_run = regional_run + 1 if _is_regional(c) else 0
        last = c
    return "".join(out)


@dataclass(frozen=True)
class Haystack:
    """A path as the matcher indexes it: the path itself when it is plain ASCII, else one character
    per grapheme."""

    text: str
    ascii: bool

    @staticmethod
    def of(path: str) -> Haystack:
        if path.isascii() and "\r\n" not in path:
            return Haystack(path, True)
        return Haystack(grapheme_heads(path), False)


# --------------------------------------------------------------------------------------------------
# Query atoms
# --------------------------------------------------------------------------------------------------

FUZZY, SUBSTRING, PREFIX, POSTFIX, EXACT = range(5)
# What the anchored atoms skip at the ends of a path: ASCII whitespace in ASCII paths, Unicode
# White_Space in the others.
_ASCII_WHITESPACE = " \t\n\x0c\r"
_UNICODE_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True)
class Atom:
    needle: str
    ascii: bool
    kind: int
    negative: bool
    ignore_case: bool
    normalize: bool


def _unescape(needle: str) -> str:
    """``\\`` before whitespace escapes it; any other backslash stays."""
    out: list[str] = []
    saw_backslash = False
    for c in needle:
        if saw_backslash:
            if c.isspace():
                out.append(c)
                saw_backslash = False
                continue
            out.append("\\")
        saw_backslash = c == "\\"
        if not saw_backslash:
            out.append(c)
    if saw_backslash:
        out.append("\\")
    return "".join(out)


def _make_atom(text: str, kind: int, negative: bool, append_dollar: bool) -> Atom:
    if text.isascii():
        needle = _unescape(text)
        ignore_case = not any("A" <= c <= "Z" for c in needle)
        normalize = True
        ascii_needle = True
    else:
        needle = _unescape(grapheme_heads(text))
        ignore_case = not any(_is_upper(c) for c in needle)
        normalize = all(normalize_char(c) == c for c in needle)
        ascii_needle = False
    if append_dollar:
        needle += "$"
    return Atom(needle, ascii_needle, kind, negative, ignore_case, normalize)


def _parse_atom(raw: str) -> Atom:
    atom = raw
    negative = False
    if atom.startswith("!"):
        atom = atom[1:]
        negative = True
    elif atom.startswith("\\!"):
        atom = atom[1:]
    kind = FUZZY
    if atom.startswith("^"):
        atom, kind = atom[1:], PREFIX
    elif atom.startswith("'"):
        atom, kind = atom[1:], SUBSTRING
    elif atom.startswith("\\^") or atom.startswith("\\'"):
        atom = atom[1:]
    append_dollar = False
    if atom.endswith("\\$"):
        append_dollar = True
        atom = atom[:-2]
    elif atom.endswith("$"):
        kind = POSTFIX if kind == FUZZY else EXACT
        atom = atom[:-1]
    if negative and kind == FUZZY:
        kind = SUBSTRING
    return _make_atom(atom, kind, negative, append_dollar)


def _split_atoms(query: str) -> Iterator[str]:
    current: list[str] = []
    saw_backslash = False
    for c in query:
        if c.isspace() and not saw_backslash:
            yield "".join(current)
            current = []
            continue
        saw_backslash = c == "\\"
        current.append(c)
    yield "".join(current)


def parse_query(query: str) -> list[Atom]:
    """The atoms of a query; an empty list matches every path with score 0."""
    atoms = (_parse_atom(part) for part in _split_atoms(query))
    return [a for a in atoms if a.needle]


# --------------------------------------------------------------------------------------------------
# Matching one atom
# --------------------------------------------------------------------------------------------------


class _Prepared:
    """One haystack's characters as an atom's case/normalization settings make them."""

    __slots__ = ("ascii", "classes", "dp", "pre", "raw")

    def __init__(self, hay: Haystack, ignore_case: bool, normalize: bool) -> None:
        self.raw = hay.text
        self.ascii = hay.ascii
        if hay.ascii:
            lowered = hay.text.lower() if ignore_case else hay.text
            self.dp = lowered
            self.pre = lowered
            self.classes = [_ASCII_CLASSES[ord(c)] for c in hay.text]
        else:
            pairs = [_norm_class(c, ignore_case, normalize) for c in hay.text]
            self.dp = "".join(p[0] for p in pairs)
            self.classes = [p[1] for p in pairs]
            self.pre = "".join(_norm(c, ignore_case, normalize) for c in hay.text)


def _calculate_score(h: _Prepared, needle: str, start: int, end: int, indices: list[int] | None) -> int:
    classes = h.classes
    dp = h.dp
    prev = classes[start - 1] if start > 0 else INITIAL_CLASS
    cls = classes[start]
    first_bonus = _BONUS[prev][cls]
    score = SCORE_MATCH + first_bonus * BONUS_FIRST_CHAR_MULTIPLIER
    prev = cls
    if indices is not None:
        indices.append(start)
    n = len(needle)
    needle_char = needle[1] if n > 1 else needle[0]
    pos = 2
    in_gap = False
    consecutive = 1
    for i in range(start + 1, end):
        cls = classes[i]
        if dp[i] == needle_char:
            if indices is not None:
                indices.append(i)
            bonus = _BONUS[prev][cls]
            if consecutive:
                if bonus >= BONUS_BOUNDARY and bonus > first_bonus:
                    first_bonus = bonus
                bonus = max(bonus, first_bonus, BONUS_CONSECUTIVE)
            else:
                first_bonus = bonus
            score += SCORE_MATCH + bonus
            in_gap = False
            consecutive += 1
            if pos < n:
                needle_char = needle[pos]
                pos += 1
        else:
            score = max(0, score - (PENALTY_GAP_EXTENSION if in_gap else PENALTY_GAP_START))
            in_gap = True
            consecutive = 0
        prev = cls
    return score


def _scratch_fits(length: int, n: int, char_size: int) -> bool:
    if length * n > _MAX_MATRIX_CELLS or length > 0xFFFF or n > _MAX_NEEDLE_LEN:
        return False
    size = char_size * length + length
    size += size % 2
    size += 2 * n
    size += (-size) % 8
    size += 8 * (length + 1 - n) + (length + 1 - n) * n
    return size <= _SCRATCH_BYTES


def _greedy(
    h: _Prepared, needle: str, start: int, end: int, ascii_pair: bool, indices: list[int] | None
) -> int | None:
    pre = h.pre
    if not ascii_pair and len(needle) > 1:
        # Find where a forward greedy match of the rest of the needle ends.
        pos = 1
        found = False
        for i in range(end, len(pre)):
            if pre[i] == needle[pos]:
                pos += 1
                if pos == len(needle):
                    end = i + 1
                    found = True
                    break
        if not found:
            return None
    # Then shrink it from the back, so the match is as tight as a greedy pass can make it.
    pos = len(needle) - 1
    for i in range(end - 1, start - 1, -1):
        if pre[i] == needle[pos]:
            if pos == 0:
                start = i
                break
            pos -= 1
    return _calculate_score(h, needle, start, end, indices)


def _optimal(
    h: _Prepared,
    needle: str,
    start: int,
    greedy_end: int,
    end: int,
    ascii_pair: bool,
    indices: list[int] | None,
) -> int | None:
    """The best-scoring alignment of ``needle`` within ``[start, end)`` (a Smith-Waterman style table
    with nucleo's scoring and its tie rules, which decide the highlight indices)."""
    n = len(needle)
    length = end - start
    if not _scratch_fits(length, n, 1 if h.ascii else 4):
        return _greedy(h, needle, start, greedy_end, ascii_pair, indices)
    w = h.dp[start:end]
    classes = h.classes
    prev = classes[start - 1] if start > 0 else INITIAL_CLASS
    bonus = [0] * length
    for i in range(length):
        cls = classes[start + i]
        bonus[i] = _BONUS[prev][cls]
        prev = cls
    # The first column where each needle character can match (greedily, left to right).
    row_offs = [0] * n
    k = 0
    matched = False
    for i, c in enumerate(w):
        if c == needle[k]:
            row_offs[k] = i
            if k < n - 1:
                k += 1
            else:
                matched = True
                break
    if not matched:
        return None

    m_score = [0] * length  # 0: this needle char cannot end here
    m_bonus = [0] * length
    m_matched = [False] * length
    first = needle[0]
    for j in range(length - n + 1):
        if w[j] == first:
            m_score[j] = bonus[j] * BONUS_FIRST_CHAR_MULTIPLIER + SCORE_MATCH
            m_bonus[j] = bonus[j]
    keep = indices is not None
    m_rows: list[list[bool]] = [m_matched]
    p_rows: list[list[bool]] = []
    for k in range(n - 1):
        next_off = row_offs[k + 1] - 1
        next_char = needle[k + 1]
        n_score = [0] * length
        n_bonus = [0] * length
        n_matched = [False] * length
        p_from_m = [False] * length if keep else m_matched
        prev_p = 0
        prev_m = 0
        for j in range(row_offs[k], length - n + k + 1):
            gap_open = prev_m - PENALTY_GAP_START if prev_m > PENALTY_GAP_START else 0
            gap_extend = prev_p - PENALTY_GAP_EXTENSION if prev_p > PENALTY_GAP_EXTENSION else 0
            if gap_open > gap_extend:
                p = gap_open
                if keep:
                    p_from_m[j] = True
            else:
                p = gap_extend
            m = m_score[j]
            if j >= next_off and w[j + 1] == next_char:
                b = bonus[j + 1]
                if m == 0:
                    n_score[j + 1] = p + b + SCORE_MATCH
                    n_bonus[j + 1] = b
                else:
                    consecutive = max(m_bonus[j], BONUS_CONSECUTIVE)
                    if b >= BONUS_BOUNDARY and b > consecutive:
                        consecutive = b
                    via_match = m + max(consecutive, b)
                    via_skip = p + b
                    if via_match > via_skip:
                        n_score[j + 1] = via_match + SCORE_MATCH
                        n_bonus[j + 1] = consecutive
                        n_matched[j + 1] = True
                    else:
                        n_score[j + 1] = via_skip + SCORE_MATCH
                        n_bonus[j + 1] = b
            prev_p = p
            prev_m = m
        m_score, m_bonus, m_matched = n_score, n_bonus, n_matched
        if keep:
            p_rows.append(p_from_m)
            m_rows.append(n_matched)

    best = -1
    best_j = 0
    for j in range(row_offs[n - 1], length):
        if m_score[j] >= best:
            best = m_score[j]
            best_j = j
    if indices is not None:
        found = [0] * n
        found[n - 1] = start + best_j
        in_m = m_rows[n - 1][best_j]
        row = n - 2
        col = best_j - 1
        while col >= row_offs[row]:
            if in_m:
                found[row] = start + col
                follow = m_rows[row][col]
                if row == 0:
                    break
                row -= 1
            else:
                follow = p_rows[row][col]
            col -= 1
            in_m = follow
        indices.extend(found)
    return best


def _find_ascii(text: str, c: str, begin: int, stop: int) -> Iterator[int]:
    i = text.find(c, begin, stop)
    while i >= 0:
        yield i
        i = text.find(c, i + 1, stop)


def _best_first_char(
    h: _Prepared, positions: Iterator[int], accept: Callable[[int], bool]
) -> tuple[int, int]:
    """Among candidate start positions, the first with the best boundary bonus (stopping early at a
    bonus that cannot be beaten)."""
    best, best_pos = 0, 0
    classes = h.classes
    for i in positions:
        prev = classes[i - 1] if i > 0 else INITIAL_CLASS
        b = _BONUS[prev][classes[i]]
        score = b * BONUS_FIRST_CHAR_MULTIPLIER + SCORE_MATCH
        if score > best and accept(i):
            best, best_pos = score, i
            if b >= BONUS_BOUNDARY_WHITE:
                break
    return best, best_pos


def _one_char(h: _Prepared, c: str, start: int, indices: list[int] | None) -> int | None:
    """A one-character needle: its best-placed occurrence."""
    if h.ascii:
        best, pos = _best_first_char(h, _find_ascii(h.dp, c, 0, len(h.dp)), lambda _i: True)
        if best == 0:
            return None
    else:
        best, pos = 0, 0
        classes = h.classes
        prev = classes[start - 1] if start > 0 else INITIAL_CLASS
        for i in range(start, len(h.dp)):
            if h.dp[i] != c:
                continue
            b = _BONUS[prev][classes[i]]
            prev = classes[i]
            score = b * BONUS_FIRST_CHAR_MULTIPLIER + SCORE_MATCH
            if score > best:
                best, pos = score, i
                if b >= BONUS_BOUNDARY_WHITE:
                    break
    if indices is not None:
        indices.append(pos)
    return best


def _prefilter_ascii(h: _Prepared, needle: str) -> tuple[int, int, int] | None:
    text = h.pre
    n = len(needle)
    start = text.find(needle[0], 0, len(text) - n + 1)
    if start < 0:
        return None
    pos = start + 1
    for c in needle[1:]:
        i = text.find(c, pos)
        if i < 0:
            return None
        pos = i + 1
    last = text.rfind(needle[-1], pos)
    return start, pos, (last + 1 if last >= 0 else pos)


def _prefilter_unicode(h: _Prepared, needle: str, only_start: bool) -> tuple[int, int] | None:
    text = h.pre
    start = text.find(needle[0], 0, len(text) - len(needle) + 1)
    if start < 0:
        return None
    if only_start:
        return start, start + 1
    last = text.rfind(needle[-1], start + 1)
    if last < 0:
        return None
    return start, last + 1


def _exact(h: _Prepared, needle: str, start: int, end: int, indices: list[int] | None) -> int | None:
    if len(needle) != end - start or not needle:
        return None
    if h.pre[start:end] != needle:
        return None
    return _calculate_score(h, needle, start, end, indices)


def _fuzzy(h: _Prepared, atom: Atom, indices: list[int] | None) -> int | None:
    needle = atom.needle
    n = len(needle)
    size = len(h.raw)
    if n > size:
        return None
    if n == size:
        return _exact(h, needle, 0, size, indices)
    if h.ascii:
        if not atom.ascii:
            return None
        if n == 1:
            return _one_char(h, needle, 0, indices)
        bounds = _prefilter_ascii(h, needle)
        if bounds is None:
            return None
        start, greedy_end, end = bounds
        if n == end - start:
            return _calculate_score(h, needle, start, greedy_end, indices)
        return _optimal(h, needle, start, greedy_end, end, True, indices)
    if n == 1:
        found = _prefilter_unicode(h, needle, True)
        return None if found is None else _one_char(h, needle, found[0], indices)
    span = _prefilter_unicode(h, needle, False)
    if span is None:
        return None
    start, end = span
    if n == end - start:
        return _exact(h, needle, start, end, indices)
    return _optimal(h, needle, start, start + 1, end, False, indices)


def _substring(h: _Prepared, atom: Atom, indices: list[int] | None) -> int | None:
    needle = atom.needle
    n = len(needle)
    size = len(h.raw)
    if n > size:
        return None
    if n == size:
        return _exact(h, needle, 0, size, indices)
    if h.ascii:
        if not atom.ascii:
            return None
        if n == 1:
            return _one_char(h, needle, 0, indices)
        best, pos = _substring_ascii_start(h, atom)
        if best == 0:
            return None
        return _calculate_score(h, needle, pos, pos + n, indices)
    if n == 1:
        found = _prefilter_unicode(h, needle, True)
        return None if found is None else _one_char(h, needle, found[0], indices)
    span = _prefilter_unicode(h, needle, False)
    if span is None:
        return None
    if not atom.ascii:
        return _optimal(h, needle, span[0], span[0] + 1, span[1], False, indices)
    return _substring_unicode(h, needle, span[0], indices)


def _substring_unicode(h: _Prepared, needle: str, start: int, indices: list[int] | None) -> int | None:
    """A multi-character ASCII needle as a substring of a non-ASCII path, as the reference finds it
    (which is what clients see): a match may not end at the path's last character, and the boundary
    class before each candidate is that of the previous candidate."""
    best, pos = 0, 0
    classes = h.classes
    dp, pre = h.dp, h.pre
    n = len(needle)
    prev = classes[start - 1] if start > 0 else INITIAL_CLASS
    rest = needle[1:]
    for i in range(start, len(dp) - n):
        if dp[i] != needle[0]:
            continue
        b = _BONUS[prev][classes[i]]
        prev = classes[i]
        score = b * BONUS_FIRST_CHAR_MULTIPLIER + SCORE_MATCH
        if score > best and pre[i + 1 : i + n] == rest:
            best, pos = score, i
            if b >= BONUS_BOUNDARY_WHITE:
                break
    if best == 0:
        return None
    return _calculate_score(h, needle, pos, pos + n, indices)


def _nonoverlapping(text: str, needle: str, stop: int) -> Iterator[int]:
    i = text.find(needle, 0, stop)
    while i >= 0:
        yield i
        i = text.find(needle, i + len(needle), stop)


def _substring_ascii_start(h: _Prepared, atom: Atom) -> tuple[int, int]:
    raw, needle = h.raw, atom.needle
    n, size = len(needle), len(raw)
    if atom.ignore_case:
        first_letter = next((i for i, c in enumerate(needle) if "a" <= c <= "z"), None)
        if first_letter is not None:
            rest = needle[1:]
            lowered = h.pre

            def tail_matches(i: int) -> bool:
                return lowered[i + 1 : min(i + n, size)] == rest

            if first_letter == 0:
                candidates = _find_ascii(lowered, needle[0], 0, size - n + 1)
            elif first_letter == 1:
                candidates = _find_ascii(raw, needle[0], 0, size - n + 1)
            else:
                # The reference looks this case up case-sensitively.
                candidates = _nonoverlapping(raw, needle, size - n + first_letter)
            return _best_first_char(h, candidates, tail_matches)
    # Case-sensitive (or letter-free) needles: plain substring occurrences; the class of the needle's
    # first character stands for the haystack's.
    first_class = _ASCII_CLASSES[ord(needle[0])]
    best, best_pos = 0, 0
    for i in _nonoverlapping(raw, needle, size):
        prev = h.classes[i - 1] if i > 0 else INITIAL_CLASS
        b = _BONUS[prev][first_class]
        score = b * BONUS_FIRST_CHAR_MULTIPLIER + SCORE_MATCH
        if score > best:
            best, best_pos = score, i
            if b >= BONUS_BOUNDARY_WHITE:
                break
    return best, best_pos


def _atom_match(atom: Atom, hay: Haystack, indices: list[int] | None) -> int | None:
    h = _Prepared(hay, atom.ignore_case, atom.normalize)
    needle = atom.needle
    size = len(hay.text)
    if hay.ascii and not atom.ascii:
        return None
    if atom.kind == FUZZY:
        return _fuzzy(h, atom, indices)
    if atom.kind == SUBSTRING:
        return _substring(h, atom, indices)
    # Anchored atoms look past whitespace at the anchored ends, unless the needle starts (ends) with
    # whitespace itself.
    spaces = _ASCII_WHITESPACE if hay.ascii else _UNICODE_WHITESPACE
    lead = trail = 0
    if atom.kind in (PREFIX, EXACT) and not needle[0].isspace():
        lead = size - len(hay.text.lstrip(spaces))
    if atom.kind in (POSTFIX, EXACT) and not needle[-1].isspace():
        trail = size - len(hay.text.rstrip(spaces))
    if lead == size:
        lead = trail = 0
    if atom.kind == EXACT:
        return _exact(h, needle, lead, size - trail, indices)
    if atom.kind == PREFIX:
        if size - lead < len(needle):
            return None
        return _exact(h, needle, lead, lead + len(needle), indices)
    if size - trail < len(needle):
        return None
    return _exact(h, needle, size - trail - len(needle), size - trail, indices)


def match_path(atoms: Sequence[Atom], hay: Haystack, indices: list[int] | None = None) -> int | None:
    """The score of a path for a parsed query, or None when it does not match. With ``indices``, the
    matched character positions are appended to it (unsorted, possibly repeated across atoms)."""
    total = 0
    for atom in atoms:
        if atom.negative:
            if _atom_match(atom, hay, None) is not None:
                return None
            continue
        score = _atom_match(atom, hay, indices)
        if score is None:
            return None
        total += score
    return total


# --------------------------------------------------------------------------------------------------
# Ignore files
# --------------------------------------------------------------------------------------------------


def _glob_to_regex(glob: str) -> str:
    """A gitignore glob (ripgrep's dialect: ``*``/``?`` stop at ``/``, ``**`` spans directories when it
    is a whole component, ``[...]`` classes, ``{a,b}`` alternatives, backslash escapes) as a regex."""
    if glob == "**":
        return ".*"
    out: list[str] = []
    alternates: list[list[str]] | None = None
    target = out
    i = 0
    n = len(glob)
    while i < n:
        c = glob[i]
        if c == "\\":
            i += 1
            if i >= n:
                raise ValueError("dangling escape")
            target.append(re.escape(glob[i]))
        elif c == "?":
            target.append("[^/]")
        elif c == "*":
            if i + 1 < n and glob[i + 1] == "*":
                at_start = not out and alternates is None
                after_slash = i > 0 and glob[i - 1] == "/"
                nxt = glob[i + 2] if i + 2 < n else ""
                if at_start and nxt in ("", "/"):
                    target.append("(?:/?|.*/)" if nxt == "/" else ".*")
                    i += 3
                    continue
                if after_slash and nxt in ("", "/") and target and target[-1] == "/":
                    target.pop()
                    target.append("/.*" if nxt == "" else "(?:/|/.*/)")
                    i += 3
                    continue
                target.append("[^/]*[^/]*")
                i += 2
                continue
            target.append("[^/]*")
        elif c == "[":
            j = i + 1
            negated = j < n and glob[j] in "!^"
            if negated:
                j += 1
            items: list[str] = []
            if j < n and glob[j] == "]":
                items.append("\\]")
                j += 1
            while j < n and glob[j] != "]":
                if glob[j] == "-" and items and j + 1 < n and glob[j + 1] != "]":
                    items.append("-")
                else:
                    items.append(re.escape(glob[j]))
                j += 1
            if j >= n:
                raise ValueError("unclosed character class")
            target.append(("[^" if negated else "[") + "".join(items) + "]")
            i = j
        elif c == "{":
            if alternates is not None:
                raise ValueError("nested alternates")
            alternates = [[]]
            target = alternates[0]
        elif c == "," and alternates is not None:
            alternates.append([])
            target = alternates[-1]
        elif c == "}" and alternates is not None:
            out.append("(?:" + "|".join("".join(a) for a in alternates) + ")")
            alternates = None
            target = out
        elif c == "/":
            target.append("/")
        else:
            target.append(re.escape(c))
        i += 1
    if alternates is not None:
        raise ValueError("unclosed alternates")
    return "".join(out)


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    whitelist: bool
    only_dir: bool


class IgnoreFile:
    """The rules of one ignore file, matched against paths relative to ``base`` (its directory)."""

    def __init__(self, rules: list[_Rule]) -> None:
        self.rules = rules
        self.any = re.compile("|".join(f"(?:{r.regex.pattern})" for r in rules), re.DOTALL) if rules else None

    @staticmethod
    def parse(text: str) -> IgnoreFile:
        rules: list[_Rule] = []
        for raw_line in text.splitlines():
            rule = _parse_rule(raw_line)
            if rule is not None:
                rules.append(rule)
        return IgnoreFile(rules)

    def matched(self, path: str, is_dir: bool) -> bool | None:
        """True: ignored; False: explicitly kept (``!pattern``); None: no rule applies."""
        if self.any is None or self.any.fullmatch(path) is None:
            return None
        for rule in reversed(self.rules):
            if rule.only_dir and not is_dir:
                continue
            if rule.regex.fullmatch(path) is not None:
                return not rule.whitelist
        return None


def _parse_rule(line: str) -> _Rule | None:
    if line.startswith("#"):
        return None
    if not line.endswith("\\ "):
        line = line.rstrip()
    if not line:
        return None
    whitelist = False
    anchored = False
    if line.startswith("\\!") or line.startswith("\\#"):
        line = line[1:]
        anchored = line.startswith("/")
    else:
        if line.startswith("!"):
            whitelist = True
            line = line[1:]
        if line.startswith("/"):
            line = line[1:]
            anchored = True
    only_dir = False
    if line.endswith("/"):
        only_dir = True
        line = line[:-1]
        if line.endswith("\\"):
            line = line[:-1]
    glob = line
    if not anchored and "/" not in line and not (glob.startswith("**/") or glob == "**"):
        glob = "**/" + glob
    if glob.endswith("/**"):
        glob += "/*"
    try:
        regex = re.compile(_glob_to_regex(glob), re.DOTALL)
    except (ValueError, re.error):
        return None
    return _Rule(regex, whitelist, only_dir)


_MAX_RULES_FILE = 1 << 20


def _read_small_file(path: str) -> bytes | None:
    """The start of a regular file; None for anything else. Opening without blocking keeps a FIFO
    named like an ignore file from hanging the walk."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        size = 0
        while size < _MAX_RULES_FILE:
            chunk = os.read(fd, _MAX_RULES_FILE - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_ignore(path: str) -> IgnoreFile | None:
    data = _read_small_file(path)
    if data is None:
        return None
    rules = IgnoreFile.parse(data.decode("utf-8", errors="replace"))
    return rules if rules.rules else None


@dataclass
class _DirRules:
    """The ignore files of one directory: ``.ignore``, ``.gitignore`` and ``.git/info/exclude``."""

    ignore: IgnoreFile | None
    gitignore: IgnoreFile | None
    exclude: IgnoreFile | None

    @staticmethod
    def load(directory: str) -> _DirRules | None:
        rules = _DirRules(
            _read_ignore(os.path.join(directory, ".ignore")),
            _read_ignore(os.path.join(directory, ".gitignore")),
            _read_ignore(os.path.join(directory, ".git", "info", "exclude")),
        )
        return rules if rules.ignore or rules.gitignore or rules.exclude else None


_EXCLUDES_FILE = re.compile(rb'(?im)^\s*excludesfile\s*=\s*"?\s*(\S+?)\s*"?\s*$')


def global_excludes(env: Mapping[str, str]) -> IgnoreFile | None:
    """git's global excludes file (``core.excludesFile``, else ``$XDG_CONFIG_HOME/git/ignore``)."""
    home = env.get("HOME") or ""
    xdg = env.get("XDG_CONFIG_HOME") or ""
    configs = [os.path.join(home, ".gitconfig")] if home else []
    configs.append(os.path.join(xdg or os.path.join(home, ".config"), "git", "config"))
    path: str | None = None
    for config in configs:
        data = _read_small_file(config)
        found = _EXCLUDES_FILE.search(data) if data is not None else None
        if found is not None:
            value = found.group(1).decode("utf-8", errors="replace")
            if value.startswith("~/") and home:
                value = os.path.join(home, value[2:])
            path = value
            break
    if path is None:
        if not xdg and not home:
            return None
        path = os.path.join(xdg or os.path.join(home, ".config"), "git", "ignore")
    return _read_ignore(path)


# --------------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------------

MATCH_LIMIT = 50
# Bounds of one search: the reference has none, but a walk must not run away on a huge tree.
DEFAULT_TIME_BUDGET = 15.0
DEFAULT_ENTRY_BUDGET = 2_000_000
_CHECK_EVERY = 256


# Ignore files in force, each with the path (from the walk's root, or of the root from the directory
# above it) that its rules are matched relative to.
_Chain = list[tuple[str, _DirRules]]
# A directory's (device, inode).
_Ident = tuple[int, int]


class _OpenDir(NamedTuple):
    """A directory being walked: its walked path, its path from the root, the ignore files in force,
    itself and its ancestors (a symlink to one of them is skipped), and the entries left."""

    path: str
    rel: str
    chain: _Chain
    seen: frozenset[_Ident]
    entries: Iterator[os.DirEntry[str]]


@dataclass(frozen=True)
class FileMatch:
    root: str
    path: str
    file_name: str
    score: int
    indices: list[int]


def _components(path: str) -> list[str]:
    """A path's components as Rust's ``Path::components`` yields them ("." dropped but at the start)."""
    parts: list[str] = []
    if path.startswith("/"):
        parts.append("/")
    for i, part in enumerate(p for p in path.split("/") if p):
        if part == "." and (i > 0 or parts):
            continue
        parts.append(part)
    return parts


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class _Search:
    atoms: list[Atom]
    roots: list[str]
    base_dir: str
    global_rules: IgnoreFile | None
    stop: threading.Event
    deadline: float
    entry_budget: int
    root_parts: list[list[str]] = field(default_factory=list)
    # (score, -length, -order, root index, relative path) of the best matches so far.
    best: list[tuple[int, int, int, int, str]] = field(default_factory=list)
    order: int = 0
    entries: int = 0
    stopped: bool = False

    def __post_init__(self) -> None:
        self.root_parts = [_components(r) for r in self.roots]

    def _abs(self, path: str) -> str:
        return os.path.join(self.base_dir, path)

    def should_stop(self) -> bool:
        self.entries += 1
        if self.entries % _CHECK_EVERY == 0 and (
            self.stop.is_set() or time.monotonic() > self.deadline or self.entries > self.entry_budget
        ):
            self.stopped = True
        return self.stopped

    def add(self, walked: str) -> None:
        """A file the walk found, as its path relative to the deepest root containing it."""
        parts = _components(walked)
        chosen = -1
        for i, rp in enumerate(self.root_parts):
            if parts[: len(rp)] == rp and (chosen < 0 or len(self.root_parts[chosen]) < len(rp)):
                chosen = i
        if chosen < 0:
            return
        rel = "/".join(parts[len(self.root_parts[chosen]) :])
        self.order += 1
        if not self.atoms:
            # An empty query matches everything with score 0; the reference keeps the first ones found.
            if len(self.best) < MATCH_LIMIT:
                self.best.append((0, 0, -self.order, chosen, rel))
            else:
                self.stopped = True
            return
        hay = Haystack.of(rel)
        score = match_path(self.atoms, hay)
        if score is None:
            return
        key = (score, -len(hay.text), -self.order, chosen, rel)
        if len(self.best) < MATCH_LIMIT:
            heapq.heappush(self.best, key)
        elif key > self.best[0]:
            heapq.heapreplace(self.best, key)

    def walk_root(self, root: str) -> None:
        try:
            st = os.stat(self._abs(root))
        except (OSError, ValueError):
            return
        if not stat.S_ISDIR(st.st_mode):
            self.add(root)
            return
        self._walk(root, self._parent_rules(root), (st.st_dev, st.st_ino))

    def _parent_rules(self, root: str) -> _Chain:
        """The ignore files of the directories above a root (nearest first), each with the root's path
        relative to it."""
        real = os.path.realpath(self._abs(root))
        found: _Chain = []
        child = real
        parent = os.path.dirname(child)
        while parent != child:
            rules = _DirRules.load(parent)
            if rules is not None:
                found.append((os.path.relpath(real, parent), rules))
            child, parent = parent, os.path.dirname(parent)
        return found

    def _ignored(
        self,
        rel: str,
        name: str,
        walked: str,
        is_dir: bool,
        chain: _Chain,
        parents: _Chain,
    ) -> bool:
        kinds: list[bool | None] = [None, None, None]  # .ignore, .gitignore, exclude
        for prefix, rules in reversed(chain):
            candidate = rel[len(prefix) + 1 :] if prefix else rel
            _consult(rules, candidate, is_dir, kinds)
        for root_from_parent, rules in parents:
            # The reference pairs parent rules with the root path plus the entry's own name.
            _consult(rules, f"{root_from_parent}/{name}", is_dir, kinds)
        for verdict in kinds:
            if verdict is not None:
                return verdict
        if self.global_rules is not None:
            candidate = walked[2:] if walked.startswith("./") else walked
            return self.global_rules.matched(candidate.lstrip("/"), is_dir) is True
        return False

    def _walk(self, root: str, parents: _Chain, root_ident: _Ident) -> None:
        """Depth first, each directory's entries by name; iterative, as trees can be deeper than
        Python's recursion limit."""
        stack: list[_OpenDir] = []

        def enter(directory: str, rel_dir: str, chain: _Chain, seen: frozenset[_Ident]) -> None:
            rules = _DirRules.load(self._abs(directory))
            if rules is not None:
                chain = [*chain, (rel_dir, rules)]
            try:
                with os.scandir(self._abs(directory)) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                return
            stack.append(_OpenDir(directory, rel_dir, chain, seen, iter(entries)))

        enter(root, "", [], frozenset([root_ident]))
        while stack and not self.stopped:
            directory, rel_dir, chain, seen, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            if self.should_stop():
                return
            name = entry.name
            if not _is_utf8(name):
                continue
            walked = os.path.join(directory, name)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                if entry.is_symlink():
                    target = os.stat(entry.path)
                    is_dir = stat.S_ISDIR(target.st_mode)
                    ident = (target.st_dev, target.st_ino)
                else:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    st = entry.stat(follow_symlinks=False) if is_dir else None
                    ident = (st.st_dev, st.st_ino) if st is not None else (0, 0)
            except OSError:
                continue
            if self._ignored(rel, name, walked, is_dir, chain, parents):
                continue
            if not is_dir:
                self.add(walked)
            elif ident not in seen:  # else a symlink back to a directory being walked
                enter(walked, rel, chain, seen | {ident})

    def results(self) -> list[FileMatch]:
        out: list[FileMatch] = []
        for score, _length, _order, root_index, rel in self.best:
            indices: list[int] = []
            if self.atoms:
                match_path(self.atoms, Haystack.of(rel), indices)
            out.append(
                FileMatch(
                    root=self.roots[root_index],
                    path=rel,
                    file_name=rel.rsplit("/", 1)[-1],
                    score=score,
                    indices=sorted(set(indices)),
                )
            )
        out.sort(key=lambda m: (-m.score, m.path))
        return out


def _consult(rules: _DirRules, candidate: str, is_dir: bool, kinds: list[bool | None]) -> None:
    for slot, file in enumerate((rules.ignore, rules.gitignore, rules.exclude)):
        if kinds[slot] is None and file is not None:
            kinds[slot] = file.matched(candidate, is_dir)


def search_files(
    query: str,
    roots: Sequence[str],
    *,
    base_dir: str,
    env: Mapping[str, str],
    stop: threading.Event,
    time_budget: float = DEFAULT_TIME_BUDGET,
    entry_budget: int = DEFAULT_ENTRY_BUDGET,
) -> list[FileMatch]:
    """The best matches for ``query`` under ``roots`` (relative roots are taken from ``base_dir``),
    best first. Blocking: run it in a worker thread. Setting ``stop``, exhausting ``time_budget``
    seconds or visiting ``entry_budget`` entries ends the walk with the matches found so far."""
    search = _Search(
        atoms=parse_query(query),
        roots=list(roots),
        base_dir=base_dir,
        global_rules=global_excludes(env),
        stop=stop,
        deadline=time.monotonic() + time_budget,
        entry_budget=entry_budget,
    )
    search.stopped = stop.is_set()
    for root in search.roots:
        if search.stopped:
            break
        search.walk_root(root)
    return search.results()
