"""The turn diff tracker. Every captured reference turn is also replayed, diff for diff, by
tests/test_apply_patch.py::test_replays_reference_capture; these cover the remaining behaviour."""

from __future__ import annotations

import os
from pathlib import Path

from codex_trio.core import apply_patch as ap
from codex_trio.core.turn_diff import TurnDiffTracker, git_blob_oid

HELLO_OID = "ce013625030ba8dba906f756967f9e9ca394464a"  # "hello\n", as the reference printed it
ZERO = "0" * 40
OLD_BLOB = b"\xff\x00"
NEW_BLOB = b"\xfe\x00"


def oid(*lines: str) -> str:
    """The blob id of a text file with these lines."""
    return git_blob_oid("".join(f"{line}\n" for line in lines).encode())


def patch(*lines: str) -> str:
    return "\n".join(["*** Begin Patch", *lines, "*** End Patch"])


def apply(tracker: TurnDiffTracker, cwd: Path, *lines: str) -> None:
    plan = ap.plan_patch(patch(*lines), cwd)
    tracker.on_patch_begin(plan)
    ap.apply_plan(plan)


def test_blob_ids_are_gits() -> None:
    assert git_blob_oid(b"hello\n") == HELLO_OID
    assert git_blob_oid(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def test_nothing_touched_is_no_diff(tmp_path: Path) -> None:
    assert TurnDiffTracker().unified_diff() is None


def test_added_file_outside_git_shows_absolute_paths(tmp_path: Path) -> None:
    tracker = TurnDiffTracker()
    apply(tracker, tmp_path, "*** Add File: hello.txt", "+hello")
    p = f"{tmp_path}/hello.txt"
    assert tracker.unified_diff() == (
        f"diff --git a/{p} b/{p}\nnew file mode 100644\nindex {ZERO}..{HELLO_OID}\n"
        f"--- /dev/null\n+++ b/{p}\n@@ -0,0 +1 @@\n+hello\n"
    )


def test_paths_are_relative_to_the_work_tree_even_a_linked_one(tmp_path: Path) -> None:
    # A linked worktree or submodule has a .git file rather than a directory.
    (tmp_path / ".git").write_text("gitdir: /elsewhere\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    tracker = TurnDiffTracker()
    apply(tracker, tmp_path / "src", "*** Update File: a.txt", "@@", "-a", "+b")
    assert tracker.unified_diff() == (
        f"diff --git a/src/a.txt b/src/a.txt\nindex {oid('a')}..{oid('b')}\n"
        "--- a/src/a.txt\n+++ b/src/a.txt\n@@ -1 +1 @@\n-a\n+b\n"
    )


def test_baseline_is_taken_once_and_later_edits_by_other_means_show(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    target = tmp_path / "a.txt"
    target.write_text("1\n2\n")
    tracker = TurnDiffTracker()
    apply(tracker, tmp_path, "*** Update File: a.txt", "@@", "-1", "+one")
    apply(tracker, tmp_path, "*** Update File: a.txt", "@@", "-2", "+two")
    target.write_text("one\ntwo\nthree\n")
    assert tracker.unified_diff() == (
        f"diff --git a/a.txt b/a.txt\nindex {oid('1', '2')}..{oid('one', 'two', 'three')}\n"
        "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,3 @@\n-1\n-2\n+one\n+two\n+three\n"
    )


def test_changes_undone_within_the_turn_leave_no_diff(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    tracker = TurnDiffTracker()
    apply(tracker, tmp_path, "*** Update File: a.txt", "@@", "-a", "+b")
    apply(tracker, tmp_path, "*** Update File: a.txt", "@@", "-b", "+a")
    # Like the reference: the lone file without a diff still contributes its newline, and a
    # blank diff is reported as none.
    assert tracker.unified_diff() is None


def test_a_file_without_diff_sorted_first_leaves_a_blank_line(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "b.txt").write_text("b\n")
    tracker = TurnDiffTracker()
    apply(tracker, tmp_path, "*** Add File: a.txt", "+a")
    apply(tracker, tmp_path, "*** Delete File: a.txt", "*** Delete File: b.txt")
    assert tracker.unified_diff() == (
        f"\ndiff --git a/b.txt b/b.txt\ndeleted file mode 100644\nindex {oid('b')}..{ZERO}\n"
        "--- a/b.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-b\n"
    )


def test_moves_are_followed_and_shown_as_renames(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "a.txt").write_text("x\n")
    tracker = TurnDiffTracker()
    apply(tracker, tmp_path, "*** Update File: a.txt", "*** Move to: b.txt", "@@", "-x", "+y")
    apply(tracker, tmp_path, "*** Update File: b.txt", "*** Move to: c/d.txt", "@@", "-y", "+z")
    assert tracker.unified_diff() == (
        f"diff --git a/a.txt b/c/d.txt\nindex {oid('x')}..{oid('z')}\n"
        "--- a/a.txt\n+++ b/c/d.txt\n@@ -1 +1 @@\n-x\n+z\n"
    )


def test_mode_changes_and_binary_contents(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    script = tmp_path / "run.sh"
    script.write_text("echo\n")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(OLD_BLOB)
    tracker = TurnDiffTracker()
    apply(tracker, tmp_path, "*** Update File: run.sh", "@@", "-echo", "+echo hi")
    tracker.on_patch_begin(ap.plan_patch(patch("*** Add File: blob.bin", "+x"), tmp_path))
    script.chmod(0o755)
    blob.write_bytes(NEW_BLOB)
    assert tracker.unified_diff() == (
        f"diff --git a/blob.bin b/blob.bin\nindex {git_blob_oid(OLD_BLOB)}..{git_blob_oid(NEW_BLOB)}\n"
        "--- a/blob.bin\n+++ b/blob.bin\nBinary files differ\n"
        f"diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n"
        f"index {oid('echo')}..{oid('echo hi')}\n"
        "--- a/run.sh\n+++ b/run.sh\n@@ -1 +1 @@\n-echo\n+echo hi\n"
    )


def test_symlinks_are_compared_by_target(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "one.txt").write_text("1\n")
    link = tmp_path / "link"
    os.symlink("one.txt", link)
    tracker = TurnDiffTracker()
    tracker.on_patch_begin(ap.plan_patch(patch("*** Delete File: link"), tmp_path))
    link.unlink()
    assert tracker.unified_diff() == (
        f"diff --git a/link b/link\ndeleted file mode 120000\nindex {git_blob_oid(b'one.txt')}..{ZERO}\n"
        "--- a/link\n+++ /dev/null\n@@ -1 +0,0 @@\n-one.txt\n\\ No newline at end of file\n"
    )
