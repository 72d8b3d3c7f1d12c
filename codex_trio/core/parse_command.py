"""Best-effort summaries of a shell command, for display (``parsed_cmd`` / ``commandActions``).

The reference summarises every command it runs into a list of "parsed commands": reads of a file,
listings, searches, or ``unknown``. Clients show these instead of the raw script, so the shapes and
the heuristics follow the reference (Codex 0.94), including its quoting of words when it rebuilds a
command line.

Two helpers are shared with :mod:`codex_trio.core.safety`: :func:`parse_plain_commands`, which
accepts only scripts made of plain words joined by ``&&``, ``||``, ``;``, ``|`` and newlines, and
:func:`extract_shell_script`, which recognises ``bash -lc "<script>"`` style argv.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import pwd
import re
import shutil
from collections.abc import Sequence
from typing import Any

ParsedCommand = dict[str, Any]

NUL_COMMAND = "<command included NUL byte>"

_CONNECTORS = frozenset({"&&", "||", "|", ";"})


# ---------------------------------------------------------------------------------------------
# Words: splitting and quoting the way the reference's `shlex` crate does


def shlex_split(text: str) -> list[str] | None:
    """POSIX-style word splitting; ``None`` for an unterminated quote or a trailing backslash.

    Unlike Python's :func:`shlex.split`, a ``#`` that starts a word begins a comment, and inside
    double quotes a backslash is dropped only before ``$ ` " \\`` and newlines.
    """
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\n":
            i += 1
            continue
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        word: list[str] = []
        while i < n and text[i] not in " \t\n":
            ch = text[i]
            if ch == '"':
                i += 1
                while True:
                    if i >= n:
                        return None
                    c = text[i]
                    if c == '"':
                        i += 1
                        break
                    if c == "\\":
                        if i + 1 >= n:
                            return None
                        nxt = text[i + 1]
                        if nxt in '$`"\\':
                            word.append(nxt)
                        elif nxt != "\n":
                            word.append("\\" + nxt)
                        i += 2
                        continue
                    word.append(c)
                    i += 1
            elif ch == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    return None
                word.append(text[i + 1 : end])
                i = end + 1
            elif ch == "\\":
                if i + 1 >= n:
                    return None
                if text[i + 1] != "\n":
                    word.append(text[i + 1])
                i += 2
            else:
                word.append(ch)
                i += 1
        words.append("".join(word))
    return words


def _unquoted_ok(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c in "+-./:@]_")


def _single_quoted_ok(c: str) -> bool:
    return c not in "'^\\"


def _double_quoted_ok(c: str) -> bool:
    return c not in "`$!^"


def shlex_quote(word: str) -> str:
    """Quote one word for a shell, choosing per chunk: bare, single quotes, or double quotes.

    Non-ASCII characters are always quoted, as the reference does; an empty word is ``''``.
    """
    if not word:
        return "''"
    out: list[str] = []
    i, n = 0, len(word)
    bare, single, double = 1, 2, 4
    while i < n:
        ok = bare | single | double
        j = i
        if word[j] == "^":
            ok = single
            j += 1
        while j < n:
            c = word[j]
            cur = ok
            if not _unquoted_ok(c):
                cur &= ~bare
            if c.isascii():
                if not _single_quoted_ok(c):
                    cur &= ~single
                if not _double_quoted_ok(c):
                    cur &= ~double
            if cur == 0:
                break
            ok = cur
            j += 1
        chunk = word[i:j]
        if ok & bare:
            out.append(chunk)
        elif ok & single:
            out.append("'" + chunk + "'")
        else:
            out.append('"' + re.sub(r'([$`"\\])', r"\\\1", chunk) + '"')
        i = j
    return "".join(out)


def shlex_join(argv: Sequence[str]) -> str:
    """The command line the reference shows for an argv (``bash -lc 'echo hi'``)."""
    if any("\0" in word for word in argv):
        return NUL_COMMAND
    return " ".join(shlex_quote(word) for word in argv)


# ---------------------------------------------------------------------------------------------
# Shell scripts made only of plain words


_SHELL_NAMES = frozenset({"bash", "zsh", "sh"})
# Words that open a construct (not a plain command) when they are the command's name.
_RESERVED_COMMAND_NAMES = frozenset(
    {
        "if", "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until", "do",
        "done", "function", "{", "}", "!", "[", "[[", "]]", "((", "declare", "typeset", "export",
        "readonly", "local", "unset", "unsetenv",
    }
)  # fmt: skip
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_WORD_BREAK = frozenset(" \t\n|&;<>()'\"`$")


class _NotPlain(Exception):
    """The script uses something beyond plain words and the allowed operators."""


def _shell_type(program: str) -> str | None:
    name = program
    while True:
        if name in _SHELL_NAMES:
            return name
        stem = posixpath.splitext(posixpath.basename(name))[0]
        if not stem or stem == name:
            return None
        name = stem


def extract_shell_script(argv: Sequence[str]) -> tuple[str, str] | None:
    """``(shell, script)`` for ``[<bash|zsh|sh path>, "-lc"|"-c", script]``, else ``None``."""
    if len(argv) != 3 or argv[1] not in ("-lc", "-c") or _shell_type(argv[0]) is None:
        return None
    return argv[0], argv[2]


def _read_word(script: str, i: int) -> tuple[str, int, bool]:
    """One word starting at ``i``: its text, the index after it, and whether it was one bare word.

    Bare text keeps its backslashes; single quotes are stripped; a double-quoted part keeps its
    raw content and must hold no expansion.
    """
    parts: list[str] = []
    kinds: list[str] = []
    n = len(script)
    while i < n and script[i] not in " \t\n|&;<>()":
        ch = script[i]
        if ch == "'":
            end = script.find("'", i + 1)
            if end < 0:
                raise _NotPlain
            parts.append(script[i + 1 : end])
            kinds.append("raw")
            i = end + 1
        elif ch == '"':
            j = i + 1
            while j < n and script[j] != '"':
                if script[j] in "$`":
                    raise _NotPlain
                j += 2 if script[j] == "\\" else 1
            if j >= n:
                raise _NotPlain
            parts.append(script[i + 1 : j])
            kinds.append("string")
            i = j + 1
        elif ch in "`$":
            raise _NotPlain
        else:
            j = i
            while j < n and script[j] not in _WORD_BREAK:
                if script[j] == "\\":
                    if j + 1 >= n:
                        raise _NotPlain
                    if script[j + 1] == "\n":
                        raise _NotPlain
                    j += 2
                else:
                    j += 1
            parts.append(script[i:j])
            kinds.append("bare")
            i = j
    text = "".join(parts)
    if len(parts) > 1 and not text:
        raise _NotPlain
    return text, i, kinds == ["bare"]


def parse_plain_commands(script: str) -> list[list[str]] | None:
    """The commands of a script made only of plain words joined by ``&&``, ``||``, ``;``, ``|``
    or newlines; ``None`` when it uses anything else (redirections, expansions, substitutions,
    subshells, assignments, comments, control flow, background jobs, syntax errors)."""
    try:
        return _parse_plain(script)
    except _NotPlain:
        return None


def _parse_plain(script: str) -> list[list[str]]:
    commands: list[list[str]] = []
    current: list[str] = []
    # After "&&", "||" or "|" another command must follow (newlines may come first).
    need_command = False
    i, n = 0, len(script)
    while i < n:
        ch = script[i]
        if ch in " \t":
            i += 1
        elif ch == "\\" and script.startswith("\\\n", i):
            i += 2
        elif ch == "\n":
            if current:
                commands.append(current)
                current = []
                need_command = False
            i += 1
        elif ch == ";":
            if not current or script.startswith(";;", i) or script.startswith(";&", i):
                raise _NotPlain
            commands.append(current)
            current = []
            need_command = False
            i += 1
        elif ch in "&|":
            op = script[i : i + 2]
            if op in ("&&", "||"):
                i += 2
            elif ch == "|" and op != "|&":
                i += 1
            else:
                raise _NotPlain  # background job or |&
            if not current:
                raise _NotPlain
            commands.append(current)
            current = []
            need_command = True
        elif ch in "<>()#":
            # Redirections, subshells and comments (a `#` inside a word is read with the word).
            raise _NotPlain
        else:
            word, i, bare = _read_word(script, i)
            if not current and (not bare or word in _RESERVED_COMMAND_NAMES or _ASSIGNMENT.match(word)):
                raise _NotPlain
            current.append(word)
            need_command = False
    if current:
        commands.append(current)
    elif need_command:
        raise _NotPlain
    return commands


def parse_shell_lc_plain_commands(argv: Sequence[str]) -> list[list[str]] | None:
    """The plain commands inside ``bash -lc "<script>"`` (see :func:`parse_plain_commands`)."""
    extracted = extract_shell_script(argv)
    if extracted is None:
        return None
    return parse_plain_commands(extracted[1])


# ---------------------------------------------------------------------------------------------
# The shell_command tool


def default_shell_path() -> str:
    """The bash the ``shell_command`` tool runs: the user's login shell when it is bash (the
    reference puts its path in the argv, e.g. ``/bin/bash``), else bash from ``PATH``."""
    try:
        login_shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        login_shell = ""
    if login_shell and _shell_type(login_shell) == "bash" and os.access(login_shell, os.X_OK):
        return login_shell
    return shutil.which("bash") or "/bin/bash"


def shell_command_argv(command: str, login: bool = True, shell: str | None = None) -> list[str]:
    """The argv the reference runs for a ``shell_command`` call: ``[<bash>, "-lc", command]``, or
    ``-c`` when the model passed ``login: false``."""
    return [shell if shell is not None else default_shell_path(), "-lc" if login else "-c", command]


# ---------------------------------------------------------------------------------------------
# Summaries


def _read(cmd: str, name: str, path: str) -> ParsedCommand:
    return {"type": "read", "cmd": cmd, "name": name, "path": path}


def _list_files(cmd: str, path: str | None) -> ParsedCommand:
    return {"type": "list_files", "cmd": cmd, "path": path}


def _search(cmd: str, query: str | None, path: str | None) -> ParsedCommand:
    return {"type": "search", "cmd": cmd, "query": query, "path": path}


def _unknown(cmd: str) -> ParsedCommand:
    return {"type": "unknown", "cmd": cmd}


def _all_digits(s: str) -> bool:
    # An empty string counts, as with the reference's `chars().all(..)`.
    return all("0" <= c <= "9" for c in s)


def is_valid_sed_n_arg(arg: str | None) -> bool:
    """``N p`` or ``N,M p`` (e.g. ``10p``, ``1,200p``)."""
    if arg is None or not arg.endswith("p"):
        return False
    parts = arg[:-1].split(",")
    return len(parts) in (1, 2) and all(p and _all_digits(p) for p in parts)


def _trim_at_connector(tokens: Sequence[str]) -> list[str]:
    for idx, token in enumerate(tokens):
        if token in _CONNECTORS:
            return list(tokens[:idx])
    return list(tokens)


def _split_on_connectors(tokens: Sequence[str]) -> list[list[str]]:
    out: list[list[str]] = []
    cur: list[str] = []
    for token in tokens:
        if token in _CONNECTORS:
            if cur:
                out.append(cur)
                cur = []
        else:
            cur.append(token)
    if cur:
        out.append(cur)
    return out


def short_display_path(path: str) -> str:
    """The last useful component of a path (``webview/src`` → ``webview``)."""
    trimmed = path.replace("\\", "/").rstrip("/")
    for part in reversed(trimmed.split("/")):
        if part and part not in ("build", "dist", "node_modules", "src"):
            return part
    return trimmed


def _skip_flag_values(args: Sequence[str], flags_with_vals: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip_next = False
    for i, arg in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if arg == "--":
            out.extend(args[i + 1 :])
            break
        if arg.startswith("--") and "=" in arg:
            continue
        if arg in flags_with_vals:
            if i + 1 < len(args):
                skip_next = True
            continue
        out.append(arg)
    return out


def _positional_operands(args: Sequence[str], flags_with_vals: Sequence[str]) -> list[str]:
    out: list[str] = []
    after_double_dash = False
    skip_next = False
    for i, arg in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if after_double_dash:
            out.append(arg)
            continue
        if arg == "--":
            after_double_dash = True
            continue
        if arg.startswith("--") and "=" in arg:
            continue
        if arg in flags_with_vals:
            if i + 1 < len(args):
                skip_next = True
            continue
        if arg.startswith("-"):
            continue
        out.append(arg)
    return out


def _first_non_flag_operand(args: Sequence[str], flags_with_vals: Sequence[str]) -> str | None:
    operands = _positional_operands(args, flags_with_vals)
    return operands[0] if operands else None


def _single_non_flag_operand(args: Sequence[str], flags_with_vals: Sequence[str]) -> str | None:
    operands = _positional_operands(args, flags_with_vals)
    return operands[0] if len(operands) == 1 else None


def _non_flags(args: Sequence[str], flags_with_vals: Sequence[str]) -> list[str]:
    return [a for a in _skip_flag_values(args, flags_with_vals) if not a.startswith("-")]


def _sed_read_path(args: Sequence[str]) -> str | None:
    args = _trim_at_connector(args)
    if "-n" not in args:
        return None
    has_range = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-e", "--expression"):
            if is_valid_sed_n_arg(args[i + 1] if i + 1 < len(args) else None):
                has_range = True
            i += 2
            continue
        if arg in ("-f", "--file"):
            i += 2
            continue
        i += 1
    if not has_range:
        has_range = any(not a.startswith("-") and is_valid_sed_n_arg(a) for a in args)
    if not has_range:
        return None
    non_flags = _non_flags(args, ("-e", "-f", "--expression", "--file"))
    if not non_flags:
        return None
    if is_valid_sed_n_arg(non_flags[0]):
        return non_flags[1] if len(non_flags) > 1 else None
    return non_flags[0]


def _awk_data_file_operand(args: Sequence[str]) -> str | None:
    if not args:
        return None
    args = _trim_at_connector(args)
    has_script_file = any(a in ("-f", "--file") for a in args)
    non_flags = _non_flags(args, ("-F", "-v", "-f", "--field-separator", "--assign", "--file"))
    if has_script_file:
        return non_flags[0] if non_flags else None
    return non_flags[1] if len(non_flags) >= 2 else None


def _xargs_subcommand(tokens: Sequence[str]) -> list[str] | None:
    if not tokens or tokens[0] != "xargs":
        return None
    i = 1
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            rest = list(tokens[i + 1 :])
            return rest or None
        if not token.startswith("-"):
            return list(tokens[i:])
        i += 2 if token in ("-E", "-e", "-I", "-L", "-n", "-P", "-s") else 1
    return None


def _has_in_place_flag(tokens: Sequence[str]) -> bool:
    return any(t.startswith("-i") or t.startswith("-pi") for t in tokens)


def _is_mutating_xargs(tokens: Sequence[str]) -> bool:
    sub = _xargs_subcommand(tokens)
    if not sub:
        return False
    head, tail = sub[0], sub[1:]
    if head in ("perl", "ruby"):
        return _has_in_place_flag(tail)
    if head == "sed":
        return _has_in_place_flag(tail) or "--in-place" in tail
    if head == "rg":
        return "--replace" in tail
    return False


def _is_count(s: str, plus: bool) -> bool:
    return _all_digits(s) or (plus and s.startswith("+") and _all_digits(s[1:]))


def is_small_formatting_command(tokens: Sequence[str]) -> bool:
    """Pipeline helpers (``wc``, ``head -n 40``, ``sort``…) that a summary leaves out."""
    if not tokens:
        return False
    cmd = tokens[0]
    if cmd in ("wc", "tr", "cut", "sort", "uniq", "tee", "column", "yes", "printf"):
        return True
    if cmd == "xargs":
        return not _is_mutating_xargs(tokens)
    if cmd == "awk":
        return _awk_data_file_operand(tokens[1:]) is None
    if cmd in ("head", "tail"):
        if len(tokens) == 1:
            return True
        if len(tokens) == 2:
            return tokens[1].startswith("-")
        if len(tokens) == 3:
            flag, count = tokens[1], tokens[2]
            if cmd == "head":
                return flag in ("-n", "-c") and _all_digits(count)
            return flag in ("-n", "-c") and _is_count(count, plus=True)
        return False
    if cmd == "sed":
        return _sed_read_path(tokens[1:]) is None
    return False


def _parse_grep_like(main_cmd: Sequence[str], args: Sequence[str]) -> ParsedCommand:
    args = _trim_at_connector(args)
    operands: list[str] = []
    pattern: str | None = None
    after_double_dash = False
    it = iter(args)
    for arg in it:
        if after_double_dash:
            operands.append(arg)
            continue
        if arg == "--":
            after_double_dash = True
            continue
        if arg in ("-e", "--regexp", "-f", "--file"):
            value = next(it, None)
            if value is not None and pattern is None:
                pattern = value
            continue
        if arg in ("-m", "--max-count", "-C", "--context", "-A", "--after-context", "-B", "--before-context"):
            next(it, None)
            continue
        if arg.startswith("-"):
            continue
        operands.append(arg)
    has_pattern = pattern is not None
    query = pattern if has_pattern else (operands[0] if operands else None)
    path_index = 0 if has_pattern else 1
    path = short_display_path(operands[path_index]) if len(operands) > path_index else None
    return _search(shlex_join(main_cmd), query, path)


def _is_pathish(s: str) -> bool:
    return s in (".", "..") or s.startswith("./") or s.startswith("../") or "/" in s or "\\" in s


def _fd_query_and_path(tail: Sequence[str]) -> tuple[str | None, str | None]:
    non_flags = _non_flags(
        _trim_at_connector(tail), ("-t", "--type", "-e", "--extension", "-E", "--exclude", "--search-path")
    )
    if len(non_flags) == 1:
        one = non_flags[0]
        return (None, short_display_path(one)) if _is_pathish(one) else (one, None)
    if len(non_flags) >= 2:
        return non_flags[0], short_display_path(non_flags[1])
    return None, None


def _find_query_and_path(tail: Sequence[str]) -> tuple[str | None, str | None]:
    args = _trim_at_connector(tail)
    path: str | None = None
    for a in args:
        if not a.startswith("-") and a not in ("!", "(", ")"):
            path = short_display_path(a)
            break
    query: str | None = None
    for i, a in enumerate(args):
        if a in ("-name", "-iname", "-path", "-regex"):
            if i + 1 < len(args):
                query = args[i + 1]
            break
    return query, path


_PYTHON_FILE_WALKERS = (
    "os.walk", "os.listdir", "os.scandir", "glob.glob", "glob.iglob", "pathlib.Path", ".rglob(",
)  # fmt: skip


def _python_walks_files(args: Sequence[str]) -> bool:
    args = _trim_at_connector(args)
    for i, arg in enumerate(args):
        if arg == "-c" and i + 1 < len(args):
            script = args[i + 1]
            return any(needle in script for needle in _PYTHON_FILE_WALKERS)
    return False


def _is_python(cmd: str) -> bool:
    return cmd in ("python", "python2", "python3") or cmd.startswith("python2.") or cmd.startswith("python3.")


def _read_of(main_cmd: Sequence[str], path: str | None) -> ParsedCommand:
    if path is None:
        return _unknown(shlex_join(main_cmd))
    return _read(shlex_join(main_cmd), short_display_path(path), path)


def _is_line_count(value: str, plus: bool) -> bool:
    """The value of ``-n``: digits (an empty string passes for ``head``, as in the reference), or
    for ``tail`` an optional ``+`` followed by at least one digit."""
    if not plus:
        return _all_digits(value)
    stripped = value.removeprefix("+")
    return stripped != "" and _all_digits(stripped)


def _head_tail_read(main_cmd: Sequence[str], tail: Sequence[str], plus: bool) -> ParsedCommand:
    valid_n = False
    if tail and tail[0] == "-n":
        valid_n = len(tail) > 1 and _is_line_count(tail[1], plus)
    elif tail and tail[0].startswith("-n"):
        valid_n = _is_line_count(tail[0][2:], plus)
    if valid_n:
        # Skip a separate `-n N` at the front; the first operand that is not a flag is the file.
        rest = tail[2:] if tail[0] == "-n" and _is_line_count(tail[1], plus) else tail
        for candidate in rest:
            if not candidate.startswith("-"):
                return _read(shlex_join(main_cmd), short_display_path(candidate), candidate)
    if len(tail) == 1 and not tail[0].startswith("-"):
        return _read(shlex_join(main_cmd), short_display_path(tail[0]), tail[0])
    return _unknown(shlex_join(main_cmd))


_LS_FLAGS = ("-I", "-w", "--block-size", "--format", "--time-style", "--color", "--quoting-style")
_EZA_FLAGS = ("-I", "--ignore-glob", "--color", "--sort", "--time-style", "--time")
_RG_FLAGS = (
    "-g", "--glob", "--iglob", "-t", "--type", "--type-add", "--type-not", "-m", "--max-count", "-A", "-B",
    "-C", "--context", "--max-depth",
)  # fmt: skip
_AG_FLAGS = ("-G", "-g", "--file-search-regex", "--ignore-dir", "--ignore-file", "--path-to-ignore")
_BAT_FLAGS = (
    "--theme",
    "--language",
    "--style",
    "--terminal-width",
    "--tabs",
    "--line-range",
    "--map-syntax",
)
_LESS_FLAGS = (
    "-p", "-P", "-x", "-y", "-z", "-j", "--pattern", "--prompt", "--tabs", "--shift", "--jump-target",
)  # fmt: skip


def summarize_command(main_cmd: Sequence[str]) -> ParsedCommand:
    """The summary of one simple command (already split from its pipeline/sequence)."""
    if not main_cmd:
        return _unknown(shlex_join(main_cmd))
    head, tail = main_cmd[0], list(main_cmd[1:])
    joined = shlex_join(main_cmd)
    if head in ("ls", "eza", "exa"):
        path = _first_non_flag_operand(tail, _LS_FLAGS if head == "ls" else _EZA_FLAGS)
        return _list_files(joined, short_display_path(path) if path is not None else None)
    if head == "tree":
        path = _first_non_flag_operand(tail, ("-L", "-P", "-I", "--charset", "--filelimit", "--sort"))
        return _list_files(joined, short_display_path(path) if path is not None else None)
    if head == "du":
        path = _first_non_flag_operand(
            tail, ("-d", "--max-depth", "-B", "--block-size", "--exclude", "--time-style")
        )
        return _list_files(joined, short_display_path(path) if path is not None else None)
    if head in ("rg", "rga", "ripgrep-all"):
        args = _trim_at_connector(tail)
        non_flags = _non_flags(args, _RG_FLAGS)
        if "--files" in args:
            return _list_files(joined, short_display_path(non_flags[0]) if non_flags else None)
        query = non_flags[0] if non_flags else None
        path = short_display_path(non_flags[1]) if len(non_flags) > 1 else None
        return _search(joined, query, path)
    if head == "git":
        if tail and tail[0] == "grep":
            return _parse_grep_like(main_cmd, tail[1:])
        if tail and tail[0] == "ls-files":
            path = _first_non_flag_operand(tail[1:], ("--exclude", "--exclude-from", "--pathspec-from-file"))
            return _list_files(joined, short_display_path(path) if path is not None else None)
        return _unknown(joined)
    if head == "fd":
        query, path = _fd_query_and_path(tail)
        return _search(joined, query, path) if query is not None else _list_files(joined, path)
    if head == "find":
        query, path = _find_query_and_path(tail)
        return _search(joined, query, path) if query is not None else _list_files(joined, path)
    if head in ("grep", "egrep", "fgrep"):
        return _parse_grep_like(main_cmd, tail)
    if head in ("ag", "ack", "pt"):
        non_flags = _non_flags(_trim_at_connector(tail), _AG_FLAGS)
        query = non_flags[0] if non_flags else None
        path = short_display_path(non_flags[1]) if len(non_flags) > 1 else None
        return _search(joined, query, path)
    if head == "cat" or head == "more":
        return _read_of(main_cmd, _single_non_flag_operand(tail, ()))
    if head in ("bat", "batcat"):
        return _read_of(main_cmd, _single_non_flag_operand(tail, _BAT_FLAGS))
    if head == "less":
        return _read_of(main_cmd, _single_non_flag_operand(tail, _LESS_FLAGS))
    if head == "head":
        return _head_tail_read(main_cmd, tail, plus=False)
    if head == "tail":
        return _head_tail_read(main_cmd, tail, plus=True)
    if head == "awk":
        return _read_of(main_cmd, _awk_data_file_operand(tail))
    if head == "nl":
        candidates = [
            c for c in _skip_flag_values(tail, ("-s", "-w", "-v", "-i", "-b")) if not c.startswith("-")
        ]
        return _read_of(main_cmd, candidates[0] if candidates else None)
    if head == "sed":
        return _read_of(main_cmd, _sed_read_path(tail))
    if _is_python(head):
        return _list_files(joined, None) if _python_walks_files(tail) else _unknown(joined)
    return _unknown(joined)


def _cd_target(args: Sequence[str]) -> str | None:
    target: str | None = None
    for i, arg in enumerate(args):
        if arg == "--":
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith("-"):
            continue
        target = arg
    return target


def _join_paths(base: str, rel: str) -> str:
    if posixpath.isabs(rel) or re.match(r"^[A-Za-z]:\\", rel) or rel.startswith("\\\\") or not base:
        return rel
    return posixpath.join(base, rel)


def _first_word(cmd: str) -> str | None:
    words = shlex_split(cmd)
    return words[0] if words else None


def _simplify_once(commands: list[ParsedCommand]) -> list[ParsedCommand] | None:
    if len(commands) <= 1:
        return None
    first = commands[0]
    if first["type"] == "unknown" and _first_word(first["cmd"]) == "echo":
        return commands[1:]
    for idx, pc in enumerate(commands):
        if pc["type"] == "unknown" and _first_word(pc["cmd"]) == "cd":
            if idx + 1 < len(commands):
                return commands[:idx] + commands[idx + 1 :]
            break
    for idx, pc in enumerate(commands):
        if pc["type"] == "unknown" and pc["cmd"] == "true":
            return commands[:idx] + commands[idx + 1 :]
    for idx, pc in enumerate(commands):
        if pc["type"] == "unknown":
            words = shlex_split(pc["cmd"])
            if words and words[0] == "nl" and all(w.startswith("-") for w in words[1:]):
                return commands[:idx] + commands[idx + 1 :]
    return None


def _summarize_with_cd(parts: Sequence[Sequence[str]]) -> list[ParsedCommand]:
    commands: list[ParsedCommand] = []
    cwd: str | None = None
    for tokens in parts:
        if tokens and tokens[0] == "cd":
            target = _cd_target(tokens[1:])
            if target is not None:
                cwd = target if cwd is None else _join_paths(cwd, target)
            continue
        parsed = summarize_command(tokens)
        if parsed["type"] == "read" and cwd is not None:
            parsed["path"] = _join_paths(cwd, parsed["path"])
        commands.append(parsed)
    return commands


def _simplify(commands: list[ParsedCommand]) -> list[ParsedCommand]:
    while (nxt := _simplify_once(commands)) is not None:
        commands = nxt
    return commands


def _parse_shell_script(script: str) -> list[ParsedCommand]:
    all_commands = parse_plain_commands(script)
    if not all_commands:
        return [_unknown(script)]
    script_tokens = shlex_split(script)
    if script_tokens is None:
        script_tokens = [script]
    had_multiple = len(all_commands) > 1
    filtered = [tokens for tokens in all_commands if not is_small_formatting_command(tokens)]
    if not filtered:
        return [_unknown(script)]
    commands = _summarize_with_cd(filtered)
    if len(commands) > 1:
        commands = [pc for pc in commands if not (pc["type"] == "unknown" and pc["cmd"] == "true")]
        commands = _simplify(commands)
    if len(commands) == 1:
        # A lone read/listing/search is credited with the whole script when it had no
        # connectors; after a pipeline with `sed -n` the whole script is the "read".
        had_connectors = had_multiple or any(t in _CONNECTORS for t in script_tokens)
        pc = commands[0]
        if pc["type"] == "read":
            if not had_connectors:
                pc["cmd"] = shlex_join(script_tokens)
            elif "|" in script_tokens and any(
                a == "sed" and b == "-n" for a, b in itertools.pairwise(script_tokens)
            ):
                pc["cmd"] = script
        elif pc["type"] in ("list_files", "search") and not had_connectors:
            pc["cmd"] = shlex_join(script_tokens)
    return commands


def _powershell_script(argv: Sequence[str]) -> str | None:
    if len(argv) < 3:
        return None
    stem = posixpath.splitext(posixpath.basename(argv[0].replace("\\", "/")))[0].lower()
    if stem not in ("powershell", "pwsh"):
        return None
    for i, arg in enumerate(argv[1:], start=1):
        lowered = arg.lower()
        if lowered in ("-command", "-c"):
            return argv[i + 1] if i + 2 == len(argv) else None
        if not lowered.startswith("-"):
            return None
    return None


def _normalize_tokens(argv: Sequence[str]) -> list[str]:
    if len(argv) >= 2 and argv[1] == "|" and argv[0] in ("yes", "y", "no", "n"):
        return list(argv[2:])
    if len(argv) == 3 and argv[0] in ("bash", "zsh") and argv[1] in ("-c", "-lc"):
        words = shlex_split(argv[2])
        return words if words is not None else list(argv)
    return list(argv)


def _parse_command_impl(argv: Sequence[str]) -> list[ParsedCommand]:
    extracted = extract_shell_script(argv)
    if extracted is not None:
        return _parse_shell_script(extracted[1])
    ps_script = _powershell_script(argv)
    if ps_script is not None:
        return [_unknown(ps_script)]
    normalized = _normalize_tokens(argv)
    parts = _split_on_connectors(normalized) if any(t in _CONNECTORS for t in normalized) else [normalized]
    return _simplify(_summarize_with_cd(parts))


def parse_command(argv: Sequence[str]) -> list[ParsedCommand]:
    """The reference's ``parsed_cmd`` for an argv: ``read`` / ``list_files`` / ``search`` /
    ``unknown`` entries in execution order, consecutive duplicates collapsed.

    ``["bash", "-lc", "echo hi"]`` gives ``[{"type": "unknown", "cmd": "echo hi"}]``;
    ``["bash", "-lc", "cd src && cat a.py | head"]`` gives a ``read`` of ``src/a.py``.
    """
    deduped: list[ParsedCommand] = []
    for pc in _parse_command_impl(argv):
        if not deduped or deduped[-1] != pc:
            deduped.append(pc)
    return deduped
