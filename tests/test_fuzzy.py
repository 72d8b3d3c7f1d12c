"""The fuzzy matcher and the walk of ``fuzzyFileSearch`` (codex_trio.core.fuzzy), without a server.

tests/fixtures/utilities/fuzzy_scores.json holds the reference's answers (Codex CLI 0.94.0) for
hundreds of queries over two trees: 45 generated paths (mixed case, digits, separators, spaces) and a
few paths of some 2000 characters (long enough for the matcher's greedy fallback). Every matching path
is listed with its score and highlight indices; the others do not match.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from codex_trio.core.fuzzy import Haystack, IgnoreFile, grapheme_heads, match_path, parse_query, search_files
from codex_trio.core.git_diff import repo_root, rust_debug_path

FIXTURE = json.loads((Path(__file__).parent / "fixtures/utilities/fuzzy_scores.json").read_text("utf-8"))


@pytest.mark.parametrize("tree", ["random", "long"])
def test_scores_and_indices_match_the_reference(tree: str) -> None:
    paths = FIXTURE[tree]["paths"]
    hays = [(p, Haystack.of(p)) for p in paths]
    for query, expected in FIXTURE[tree]["cases"]:
        atoms = parse_query(query)
        got = []
        for path, hay in hays:
            indices: list[int] = []
            score = match_path(atoms, hay, indices)
            if score is not None:
                got.append([path, score, sorted(set(indices))])
        got.sort(key=lambda m: (-m[1], m[0]))
        assert got == expected, query


def test_query_syntax() -> None:
    hay = Haystack.of("src/main.rs")
    assert match_path(parse_query("^src"), hay) is not None
    assert match_path(parse_query("^main"), hay) is None
    assert match_path(parse_query("rs$"), hay) is not None
    assert match_path(parse_query("'ain"), hay) is not None
    assert match_path(parse_query("'mrs"), hay) is None  # a substring, not a subsequence
    assert match_path(parse_query("main !test"), hay) is not None
    assert match_path(parse_query("main !src"), hay) is None
    # Smart case: an upper-case letter makes the atom case-sensitive.
    assert match_path(parse_query("Main"), hay) is None
    # Whitespace separates atoms unless escaped; scores of atoms add up.
    both = match_path(parse_query("src main"), hay)
    assert both == (match_path(parse_query("src"), hay) or 0) + (match_path(parse_query("main"), hay) or 0)
    assert match_path(parse_query("my\\ file"), Haystack.of("my file.txt")) is not None
    assert parse_query("   ") == []


def test_haystacks_count_graphemes() -> None:
    assert grapheme_heads("e\u0301clair") == "eclair"
    assert grapheme_heads("a\r\nb") == "a\rb"
    assert grapheme_heads("\U0001f1eb\U0001f1f7x") == "\U0001f1ebx"
    assert Haystack.of("e\u0301clair.txt") == Haystack("eclair.txt", False)
    indices: list[int] = []
    assert match_path(parse_query("clair"), Haystack.of("e\u0301clair.txt"), indices) is not None
    assert indices == [1, 2, 3, 4, 5]
    # Latin letters fold to ASCII for ASCII queries.
    assert match_path(parse_query("cafe"), Haystack.of("café.txt")) is not None


@pytest.mark.parametrize(
    ("rules", "path", "is_dir", "verdict"),
    [
        ("*.log\n", "a/b/x.log", False, True),
        ("*.log\n!keep.log\n", "keep.log", False, False),
        ("/top.txt\n", "top.txt", False, True),
        ("/top.txt\n", "sub/top.txt", False, None),
        ("build/\n", "build", True, True),
        ("build/\n", "build", False, None),
        ("docs/**/gen.txt\n", "docs/gen.txt", False, True),
        ("docs/**/gen.txt\n", "docs/a/b/gen.txt", False, True),
        ("**/n2/**\n", "d/n2/x/y", False, True),
        ("foo/**\n", "foo", True, None),
        ("*.{tmp,bak}\n", "x.bak", False, True),
        ("[ab]z.txt\n", "bz.txt", False, True),
        ("[!c]z.txt\n", "cz.txt", False, None),
        ("x?.txt\n", "xa.txt", False, True),
        ("x?.txt\n", "x/.txt", False, None),
        ("\\#hash\n", "#hash", False, True),
        ("# comment\n", "# comment", False, None),
        ("trail  \n", "trail", False, True),
        ("sp\\ ace\\ \n", "sp ace ", False, True),
    ],
)
def test_ignore_rules(rules: str, path: str, is_dir: bool, verdict: bool | None) -> None:
    assert IgnoreFile.parse(rules).matched(path, is_dir) is verdict


def endless_tree(base: Path, depth: int = 22) -> Path:
    for level in range(depth + 1):
        (base / f"d{level}").mkdir(parents=True)
    for level in range(depth):
        for name in ("a", "b"):
            (base / f"d{level}" / name).symlink_to(f"../d{level + 1}")
    (base / f"d{depth}" / "bottom.txt").write_text("")
    return base / "d0"


def test_the_walk_is_bounded(tmp_path: Path) -> None:
    root = str(endless_tree(tmp_path))
    started = time.monotonic()
    found = search_files("bottom", [root], base_dir="/", env={}, stop=threading.Event(), time_budget=0.3)
    assert time.monotonic() - started < 3
    assert found and all(m.file_name == "bottom.txt" for m in found)
    few = search_files("bottom", [root], base_dir="/", env={}, stop=threading.Event(), entry_budget=1000)
    assert 0 < len(few) <= 50
    stop = threading.Event()
    stop.set()
    assert search_files("bottom", [root], base_dir="/", env={}, stop=stop) == []


class StopAfter(threading.Event):
    """A stop flag that is raised once the walk has looked at it ``checks`` times."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = checks

    def is_set(self) -> bool:
        self.checks -= 1
        return self.checks < 0


def test_a_stop_ends_a_running_walk_with_what_it_found(tmp_path: Path) -> None:
    root = str(endless_tree(tmp_path))
    stop = StopAfter(20)
    found = search_files("bottom", [root], base_dir="/", env={}, stop=stop)
    assert stop.checks == -1  # stopped at the first check after the flag went up
    assert len(found) == 50 and all(m.file_name == "bottom.txt" for m in found)


def test_an_ignore_file_that_is_a_fifo_is_skipped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".gitignore")
    (tmp_path / "main.py").write_text("")
    found = search_files("main", [str(tmp_path)], base_dir="/", env={}, stop=threading.Event())
    assert [m.path for m in found] == ["main.py"]


def test_git_helpers(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "a" / "b").mkdir(parents=True)
    assert repo_root("a/b", str(tmp_path / "repo")) == str(tmp_path / "repo")
    assert repo_root(str(tmp_path / "repo" / "a"), "/") == str(tmp_path / "repo")
    assert repo_root(str(tmp_path), "/") is None
    assert rust_debug_path('a"b\\c\nd\té\x07\u0301') == '"a\\"b\\\\c\\nd\\té\\u{7}\\u{301}"'
