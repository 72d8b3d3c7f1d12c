"""The turn's aggregated diff: every file an ``apply_patch`` touched during a turn, compared with
how it was before the turn first touched it (``turn/diff/updated``).

Like the reference, the tracker snapshots a file when a patch is about to change it for the first
time in the turn, follows it through moves, and compares the snapshot with the file on disk each
time the diff is asked for (so later edits by other means show up too). The output is a git-style
diff: ``diff --git a/<path> b/<path>``, mode lines, ``index <blob>..<blob>`` with git blob hashes,
``---``/``+++`` lines and hunks with three lines of context. Paths are shown relative to the git
work tree they are in, or absolute (which gives the reference's ``a//abs/path``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import PurePosixPath

from .apply_patch import PatchPlan, unified_diff

ZERO_OID = "0000000000000000000000000000000000000000"
DEV_NULL = "/dev/null"
REGULAR = "100644"
EXECUTABLE = "100755"
SYMLINK = "120000"

# Rust's whitespace, for the reference's "is the diff blank" check.
_RUST_WS = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob with this content."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def _file_mode(path: str) -> str | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return SYMLINK
    return EXECUTABLE if info.st_mode & 0o111 else REGULAR


def _blob(path: str, mode: str) -> bytes | None:
    """What git would store for the path (a symlink's target for a link), None when absent."""
    if not os.path.exists(path):
        return None
    try:
        if mode == SYMLINK:
            return os.fsencode(os.readlink(path))
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class _Baseline:
    path: str
    content: bytes
    mode: str
    # ZERO_OID when the file did not exist before the turn touched it.
    oid: str


class TurnDiffTracker:
    """One turn's view of what its patches changed. Not thread-safe; one per turn."""

    def __init__(self) -> None:
        self._next_id = 0
        # Current path -> file id (a file keeps its id across moves).
        self._id_by_path: dict[str, int] = {}
        self._baselines: dict[int, _Baseline] = {}
        self._current_path: dict[int, str] = {}
        self._git_roots: list[str] = []
        # A big rewritten file is slow to diff; it is asked for again after every later patch.
        self._hunks_cache: dict[tuple[int, str, str, str], str] = {}

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def on_patch_begin(self, plan: PatchPlan) -> None:
        """Call before the patch is applied: snapshots the files it names that this turn has not
        touched yet (a missing file counts as absent, shown as ``/dev/null``) and records moves."""
        for path, change in plan.changes.items():
            if path not in self._id_by_path:
                file_id = self._new_id()
                self._id_by_path[path] = file_id
                self._current_path[file_id] = path
                self._baselines[file_id] = self._snapshot(path)
            if change["type"] == "update" and change["move_path"] is not None:
                dest = change["move_path"]
                file_id = self._id_by_path.pop(path)
                self._current_path[file_id] = dest
                self._id_by_path[dest] = file_id

    def _snapshot(self, path: str) -> _Baseline:
        if not os.path.exists(path):
            return _Baseline(path, b"", REGULAR, ZERO_OID)
        mode = _file_mode(path) or REGULAR
        content = _blob(path, mode) or b""
        return _Baseline(path, content, mode, git_blob_oid(content))

    def unified_diff(self) -> str | None:
        """The turn's diff against the snapshots, files sorted by shown path; None when it is
        empty. Reads the current files."""
        ids = sorted(self._baselines, key=lambda i: self._display(self._current_path.get(i, "")))
        out = ""
        for file_id in ids:
            out += self._file_diff(file_id)
            # The reference adds a newline after every file, even one with no diff while nothing
            # precedes it (so a diff can start with a blank line).
            if not out.endswith("\n"):
                out += "\n"
        return out if out.strip(_RUST_WS) else None

    def _file_diff(self, file_id: int) -> str:
        baseline = self._baselines[file_id]
        current = self._current_path.get(file_id, baseline.path)
        current_mode = _file_mode(current) or REGULAR
        right = _blob(current, current_mode)
        left_present = baseline.oid != ZERO_OID
        left = baseline.content if left_present else None
        if left == right:
            return ""
        left_shown = self._display(baseline.path)
        right_shown = self._display(current)
        right_oid = git_blob_oid(right) if right is not None else ZERO_OID
        is_add = not left_present and right is not None
        is_delete = left_present and right is None
        out = [f"diff --git a/{left_shown} b/{right_shown}\n"]
        if is_add:
            out.append(f"new file mode {current_mode}\n")
        elif is_delete:
            out.append(f"deleted file mode {baseline.mode}\n")
        elif baseline.mode != current_mode:
            out.append(f"old mode {baseline.mode}\nnew mode {current_mode}\n")
        out.append(f"index {baseline.oid}..{right_oid}\n")
        old_header = f"a/{left_shown}" if left_present else DEV_NULL
        new_header = f"b/{right_shown}" if right is not None else DEV_NULL
        left_text, right_text = _text(left), _text(right)
        textual = (
            (left_text is not None and right_text is not None)
            or (is_add and right_text is not None)
            or (is_delete and left_text is not None)
        )
        if textual:
            key = (file_id, right_oid, old_header, new_header)
            hunks = self._hunks_cache.get(key)
            if hunks is None:
                header = (old_header, new_header)
                hunks = unified_diff(left_text or "", right_text or "", context=3, header=header)
                self._hunks_cache[key] = hunks
            out.append(hunks)
        else:
            out.append(f"--- {old_header}\n+++ {new_header}\nBinary files differ\n")
        return "".join(out)

    def _git_root(self, path: str) -> str | None:
        start = path if os.path.isdir(path) else os.path.dirname(path)
        if not start:
            return None
        start_parts = PurePosixPath(start).parts
        for root in self._git_roots:
            root_parts = PurePosixPath(root).parts
            if start_parts[: len(root_parts)] == root_parts:
                return root
        probe = start
        while True:
            marker = os.path.join(probe, ".git")
            if os.path.isdir(marker) or os.path.isfile(marker):
                if probe not in self._git_roots:
                    self._git_roots.append(probe)
                return probe
            parent = os.path.dirname(probe)
            if parent == probe or not parent:
                return None
            probe = parent

    def _display(self, path: str) -> str:
        """The path as the diff shows it: relative to its git work tree, else as it is."""
        root = self._git_root(path) if path else None
        shown = path
        if root is not None:
            try:
                shown = str(PurePosixPath(path).relative_to(root))
            except ValueError:
                shown = path
            if shown == ".":
                shown = ""
        return shown.replace("\\", "/")
