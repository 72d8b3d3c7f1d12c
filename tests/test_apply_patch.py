"""The apply_patch engine against what the reference (Codex CLI 0.94.0) was seen to do.

tests/fixtures/apply_patch/*.json are captures of the reference applying patches given by a mock
model (as a freeform ``apply_patch`` call, or through the ``shell``/``shell_command`` tools): the
files before, each call's input, the tool output the model got back, the ``patch_apply_begin``
changes, the ``patch_apply_end`` stdout/stderr, the first ``turn_diff`` after the call and the files
at the end. ``<ROOT>`` stands for the workspace directory. Each fixture is replayed here through
plan_patch / apply_plan / extract_shell_patch and the TurnDiffTracker.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from codex_trio.core import apply_patch as ap
from codex_trio.core.turn_diff import TurnDiffTracker

FIXTURES = Path(__file__).parent / "fixtures" / "apply_patch"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))
EXEC_PREFIX_OK = "Exit code: 0\nWall time: 0 seconds\nOutput:\n"
EXEC_PREFIX_FAILED = "Exit code: 1\nWall time: 0 seconds\nOutput:\n"


def patch(*lines: str) -> str:
    return "\n".join(["*** Begin Patch", *lines, "*** End Patch"])


def load(case: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{case}.json").read_text())
    return data


def make_workspace(tmp_path: Path, setup: dict[str, Any]) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for rel, spec in setup["files"].items():
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if "base64" in spec:
            target.write_bytes(base64.b64decode(spec["base64"]))
        else:
            target.write_bytes(spec["text"].encode())
    for rel in setup["chmod_x"]:
        (work / rel).chmod(0o755)
    if setup["git"]:
        # A work tree marker is all the tracker looks for.
        (work / ".git").mkdir()
    return work


def snapshot(work: Path) -> dict[str, str]:
    files = {}
    for path in sorted(work.rglob("*")):
        rel = path.relative_to(work)
        if rel.parts[0] == ".git" or not path.is_file():
            continue
        files[str(rel)] = path.read_bytes().decode("utf-8", "replace")
    return files


def with_root(value: Any, root: str) -> Any:
    return json.loads(json.dumps(value).replace("<ROOT>", root))


def run_call(
    call: dict[str, Any], work: Path, tracker: TurnDiffTracker
) -> tuple[str | None, dict[str, Any] | None]:
    """What the model gets back for the call (None for a command the reference runs as a process)
    and the changes reported at patch begin (None when no patch began)."""
    if call["tool"] == "apply_patch":
        text, cwd = call["input"], work
    else:
        args = call["arguments"]
        argv = args["command"] if call["tool"] == "shell" else ["bash", "-lc", args["command"]]
        cwd = work / args["workdir"] if "workdir" in args else work
        try:
            found = ap.extract_shell_patch(argv, cwd)
        except ap.PatchVerificationError as exc:
            return exc.message, None
        if found is None:
            return None, None
        text, cwd = found.patch, found.cwd
    try:
        plan = ap.plan_patch(text, cwd)
    except ap.PatchVerificationError as exc:
        return exc.message, None
    tracker.on_patch_begin(plan)
    try:
        summary = ap.apply_plan(plan)
    except ap.PatchCwdError as exc:
        return exc.message, dict(plan.changes)
    except ap.PatchApplyError as exc:
        return EXEC_PREFIX_FAILED + exc.message, dict(plan.changes)
    return EXEC_PREFIX_OK + summary, dict(plan.changes)


def model_text(call: dict[str, Any]) -> str:
    """The reference's output for the call, unwrapped from the shell tool's JSON form."""
    output: str = call["output"]
    if call["tool"] != "apply_patch" and output.startswith("{"):
        inner: str = json.loads(output)["output"]
        code = json.loads(output)["metadata"]["exit_code"]
        return (EXEC_PREFIX_OK if code == 0 else EXEC_PREFIX_FAILED) + inner
    return output


@pytest.mark.parametrize("case", CASES)
def test_replays_reference_capture(case: str, tmp_path: Path) -> None:
    fixture = load(case)
    work = make_workspace(tmp_path, fixture["setup"])
    root = str(work)
    for index, outside in enumerate(fixture.get("outside_paths", [])):
        fixture = json.loads(json.dumps(fixture).replace(outside, str(tmp_path / f"zz-outside-{index}")))
    deviation = fixture.get("deviation", {})
    tracker = TurnDiffTracker()
    for call in fixture["calls"]:
        output, changes = run_call(call, work, tracker)
        if output is None:
            # Not a patch: the reference ran it as a command.
            assert call["changes"] is None
            continue
        assert output.replace(root, "<ROOT>") == model_text(call), call["call_id"]
        assert changes == with_root(call["changes"], root), call["call_id"]
        if "turn_diff" in call:
            expected = deviation.get("turn_diff", {}).get(call["call_id"], call["turn_diff"])
            assert tracker.unified_diff() == with_root(expected, root), call["call_id"]
    assert snapshot(work) == deviation.get("after", fixture["after"])


def test_summary_lists_added_then_modified_then_deleted_as_written(tmp_path: Path) -> None:
    (tmp_path / "existing.txt").write_text("one\n")
    (tmp_path / "gone.txt").write_text("bye\n")
    patch = (
        "*** Begin Patch\n*** Delete File: gone.txt\n*** Update File: existing.txt\n@@\n-one\n+ONE\n"
        "*** Add File: hello.txt\n+hello\n*** End Patch"
    )
    summary = ap.apply_plan(ap.plan_patch(patch, tmp_path))
    assert summary == "Success. Updated the following files:\nA hello.txt\nM existing.txt\nD gone.txt\n"


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(".*") if p.name != ".git")


def test_failure_part_way_undoes_every_earlier_change(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("k\n")
    (tmp_path / "gone.txt").write_text("bye\n")
    (tmp_path / "blocker").write_text("a file where a directory is needed\n")
    patch = (
        "*** Begin Patch\n*** Add File: new/dir/hello.txt\n+hi\n*** Update File: keep.txt\n@@\n-k\n+K\n"
        "*** Delete File: gone.txt\n*** Add File: blocker/x.txt\n+x\n*** End Patch"
    )
    plan = ap.plan_patch(patch, tmp_path)
    with pytest.raises(ap.PatchApplyError) as info:
        ap.apply_plan(plan)
    assert info.value.message == "Failed to create parent directories for blocker/x.txt\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "gone.txt", "keep.txt"]
    assert (tmp_path / "keep.txt").read_text() == "k\n"
    assert (tmp_path / "gone.txt").read_text() == "bye\n"
    assert leftovers(tmp_path) == []


def test_failed_move_keeps_the_source(tmp_path: Path) -> None:
    (tmp_path / "src.txt").write_text("line\n")
    (tmp_path / "blocker").write_text("")
    plan = ap.plan_patch(
        patch("*** Update File: src.txt", "*** Move to: blocker/dst.txt", "@@", "-line", "+line2"), tmp_path
    )
    with pytest.raises(ap.PatchApplyError) as info:
        ap.apply_plan(plan)
    assert info.value.message == "Failed to create parent directories for blocker/dst.txt\n"
    assert (tmp_path / "src.txt").read_text() == "line\n"
    assert leftovers(tmp_path) == []


def test_changes_made_after_planning_are_applied_against_the_new_contents(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("one\ntwo\n")
    plan = ap.plan_patch("*** Begin Patch\n*** Update File: a.txt\n@@\n-two\n+TWO\n*** End Patch", tmp_path)
    target.write_text("zero\none\ntwo\n")
    ap.apply_plan(plan)
    assert target.read_text() == "zero\none\nTWO\n"


def test_context_gone_by_apply_time_fails_with_the_patch_path(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("one\ntwo\n")
    plan = ap.plan_patch("*** Begin Patch\n*** Update File: a.txt\n@@\n-two\n+TWO\n*** End Patch", tmp_path)
    target.write_text("one\n")
    with pytest.raises(ap.PatchApplyError) as info:
        ap.apply_plan(plan)
    assert info.value.message == "Failed to find expected lines in a.txt:\ntwo\n"
    assert target.read_text() == "one\n"


def test_update_keeps_the_file_mode_and_new_files_follow_the_umask(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("echo a\n")
    script.chmod(0o751)
    text = patch("*** Update File: run.sh", "@@", "-echo a", "+echo A", "*** Add File: new.txt", "+n")
    ap.apply_plan(ap.plan_patch(text, tmp_path))
    assert stat.S_IMODE(script.stat().st_mode) == 0o751
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o666 & ~umask


def test_update_through_a_symlink_changes_the_linked_file(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("a\n")
    (tmp_path / "link.txt").symlink_to(real)
    ap.apply_plan(ap.plan_patch(patch("*** Update File: link.txt", "@@", "-a", "+b"), tmp_path))
    assert (tmp_path / "link.txt").is_symlink()
    assert real.read_text() == "b\n"


def test_missing_working_directory_is_a_spawn_error(tmp_path: Path) -> None:
    plan = ap.plan_patch("*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch", tmp_path / "missing")
    with pytest.raises(ap.PatchCwdError) as info:
        ap.apply_plan(plan)
    assert info.value.message == (
        'execution error: Io(Os { code: 2, kind: NotFound, message: "No such file or directory" })'
    )
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid patch: The last line of the patch must be '*** End Patch'"),
        ("*** Begin Patch", "invalid patch: The last line of the patch must be '*** End Patch'"),
        (
            "*** Begin Patch\n*** Add File: a\nnot a plus line\n*** End Patch",
            "invalid hunk at line 3, 'not a plus line' is not a valid hunk header. Valid hunk headers: "
            "'*** Add File: {path}', '*** Delete File: {path}', '*** Update File: {path}'",
        ),
        (
            "*** Begin Patch\n*** Update File: a\n@@\n-x\n@@\n*** End Patch",
            "invalid hunk at line 6, Update hunk does not contain any lines",
        ),
        (
            "*** Begin Patch\n*** Update File: a\n-x\n+y\nzzz\n*** End Patch",
            "invalid hunk at line 5, Expected update hunk to start with a @@ context marker, got: 'zzz'",
        ),
        (
            "<<'EOF'\n*** Begin Patch\n*** Add File: a\n+a\nEOF",
            "invalid patch: The last line of the patch must be '*** End Patch'",
        ),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ap.PatchVerificationError) as info:
        ap.parse_patch(text)
    assert info.value.message == ap.VERIFICATION_FAILED_PREFIX + message


def test_parse_tolerates_padding_and_heredoc_wrapping() -> None:
    # Padded markers are accepted where a hunk starts, but an update hunk ends only at a line
    # starting with "*" (the parse_probe capture shows the reference refusing "  *** Add File").
    patch = ap.parse_patch(
        '<<"EOF"\n  *** Begin Patch  \n*** Update File: a.py\n\n@@ def f():\n-    pass\n+    return 1\n'
        "*** End of File\n\n*** Add File: b.txt  \n+\n+b\n   *** End Patch\nEOF\n"
    )
    assert patch.hunks == (
        ap.UpdateFile(
            "a.py", None, (ap.UpdateChunk("def f():", ("    pass",), ("    return 1",), end_of_file=True),)
        ),
        ap.AddFile("b.txt", "\nb\n"),
    )
    assert patch.text.startswith("  *** Begin Patch  \n") and patch.text.endswith("   *** End Patch")


def test_seek_sequence_loosens_in_the_reference_order() -> None:
    lines = ["a  ", "  b", "x \u2013 \u201cy\u201d", "a"]
    assert ap.seek_sequence(lines, ["a"], 0, False) == 3
    assert ap.seek_sequence(lines, ["a"], 0, True) == 3
    assert ap.seek_sequence(lines, ["a", "b"], 0, False) == 0
    assert ap.seek_sequence(lines, ['x - "y"'], 0, False) == 2
    assert ap.seek_sequence(lines, ["nope"], 0, False) is None
    assert ap.seek_sequence(lines, [], 2, False) == 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["apply_patch", "*** Begin Patch"], ("*** Begin Patch", "")),
        (["applypatch", "x"], ("x", "")),
        (["bash", "-lc", "apply_patch <<'EOF'\n*** Begin\nbody\n\nEOF\n"], ("*** Begin\nbody", "")),
        (["/bin/zsh", "-c", "cd sub && applypatch <<PATCH\nP\nPATCH"], ("P", "sub")),
        (["bash", "-lc", "cd 'a b' &&\n  apply_patch <<\"X\"\nP\nX\n"], ("P", "a b")),
        (["bash", "-lc", 'cd "/abs dir" && apply_patch <<EOF\nP\nEOF'], ("P", "/abs dir")),
        (["pwsh", "-NoProfile", "-Command", "apply_patch <<'EOF'\nP\nEOF"], ("P", "")),
        (["cmd.exe", "/c", "apply_patch <<'EOF'\nP\nEOF"], ("P", "")),
        (["bash", "-lc", "apply_patch <<-'EOF'\nP\n\t\tEOF\n"], ("P", "")),
        (["bash", "-lc", "cd a && cd b && apply_patch <<'EOF'\nP\nEOF"], None),
        (["bash", "-lc", "cd a; apply_patch <<'EOF'\nP\nEOF"], None),
        (["bash", "-lc", "cd a b && apply_patch <<'EOF'\nP\nEOF"], None),
        (["bash", "-lc", "apply_patch <<'EOF'\nP\nEOF\necho done"], None),
        (["bash", "-lc", "apply_patch <<'EOF' && echo done\nP\nEOF"], None),
        (["bash", "-lc", "apply_patch x <<'EOF'\nP\nEOF"], None),
        (["bash", "-lc", "echo hi"], None),
        (["fish", "-c", "apply_patch <<'EOF'\nP\nEOF"], None),
        (["apply_patch"], None),
    ],
)
def test_extract_shell_patch(argv: list[str], expected: tuple[str, str] | None, tmp_path: Path) -> None:
    found = ap.extract_shell_patch(argv, tmp_path)
    if expected is None:
        assert found is None
    else:
        assert found == ap.ShellPatch(expected[0], Path(os.path.join(tmp_path, expected[1])))


@pytest.mark.parametrize(
    "argv",
    [
        ["*** Begin Patch\n*** Add File: a\n+a\n*** End Patch"],
        ["bash", "-lc", "*** Begin Patch\n*** Add File: a\n+a\n*** End Patch"],
    ],
)
def test_bare_patch_for_the_shell_is_refused(argv: list[str], tmp_path: Path) -> None:
    with pytest.raises(ap.PatchVerificationError) as info:
        ap.extract_shell_patch(argv, tmp_path)
    assert info.value.message == (
        "apply_patch verification failed: patch detected without explicit call to apply_patch. "
        'Rerun as ["apply_patch", "<patch>"]'
    )


@pytest.mark.parametrize(
    ("old", "new", "context", "expected"),
    [
        ("a\nb\nc\n", "a\nb\nc\n", 3, ""),
        ("", "x", 3, "@@ -0,0 +1 @@\n+x\n\\ No newline at end of file\n"),
        ("a\rb\n", "a\rc\n", 1, "@@ -1,2 +1,2 @@\n a\r-b\n+c\n"),
        (
            "1\n2\n3\n4\n5\n6\n7\n8\n9\n",
            "1\nX\n3\n4\n5\n6\n7\n8\nY\n",
            2,
            "@@ -1,4 +1,4 @@\n 1\n-2\n+X\n 3\n 4\n@@ -7,3 +7,3 @@\n 7\n 8\n-9\n+Y\n",
        ),
    ],
)
def test_unified_diff(old: str, new: str, context: int, expected: str) -> None:
    assert ap.unified_diff(old, new, context=context) == expected


def test_unified_diff_gives_up_refining_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ap, "DIFF_DEADLINE_SECONDS", -1.0)
    diff = ap.unified_diff("keep\na\nb\n", "keep\nb\nc\n", context=1)
    assert diff == "@@ -1,3 +1,3 @@\n keep\n-a\n-b\n+b\n+c\n"


def test_split_of_disjoint_sequences_matches_the_search() -> None:
    # The constant-time split used for ranges with no common line must be the one the search finds.
    for n in range(1, 40):
        for m in range(1, 40):
            myers = ap._Myers(list(range(n)), list(range(100, 100 + m)), deadline=float("inf"))
            assert myers._middle_snake(0, n, 0, m) == ap._disjoint_middle_snake(n, m), (n, m)


def test_rewritten_file_is_one_replacement() -> None:
    old = "".join(f"a{i}\n" for i in range(20000))
    new = "".join(f"b{i}\n" for i in range(20000))
    expected = "@@ -1,20000 +1,20000 @@\n" + "".join(f"-a{i}\n" for i in range(20000))
    expected += "".join(f"+b{i}\n" for i in range(20000))
    assert ap.unified_diff(old, new, context=3) == expected
