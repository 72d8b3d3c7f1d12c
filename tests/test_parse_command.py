"""parse_command: the summaries shown for a command, checked against what the reference produced."""

from __future__ import annotations

from typing import Any

import pytest

from codex_trio.core.parse_command import (
    NUL_COMMAND,
    extract_shell_script,
    parse_command,
    parse_plain_commands,
    shell_command_argv,
    shlex_join,
    shlex_quote,
    shlex_split,
)

# (argv, parsed_cmd) pairs the reference (Codex 0.94) reported in exec_command_begin for these
# commands, captured by running it against a scripted model.
REFERENCE_CASES: list[tuple[list[str], list[dict[str, Any]]]] = [
    (["bash", "-lc", "cd foo"], []),
    (["bash", "-lc", "cd foo && cd bar"], []),
    (
        ["bash", "-lc", "cd foo && cat a.txt"],
        [{"type": "read", "cmd": "cat a.txt", "name": "a.txt", "path": "foo/a.txt"}],
    ),
    (
        ["bash", "-lc", "cd foo; cd bar && cat x"],
        [{"type": "read", "cmd": "cat x", "name": "x", "path": "foo/bar/x"}],
    ),
    (
        ["bash", "-lc", "cd -- -weird && cat foo.txt"],
        [{"type": "read", "cmd": "cat foo.txt", "name": "foo.txt", "path": "-weird/foo.txt"}],
    ),
    (
        ["bash", "-lc", "cd dir1 dir2 && cat foo.txt"],
        [{"type": "read", "cmd": "cat foo.txt", "name": "foo.txt", "path": "dir2/foo.txt"}],
    ),
    (
        ["bash", "-lc", "cd /abs && cat rel.txt && cat /etc/hostname"],
        [
            {"type": "read", "cmd": "cat rel.txt", "name": "rel.txt", "path": "/abs/rel.txt"},
            {"type": "read", "cmd": "cat /etc/hostname", "name": "hostname", "path": "/etc/hostname"},
        ],
    ),
    (
        [
            "bash",
            "-lc",
            "rg --version && node -v && pnpm -v && rg --files | wc -l && rg --files | head -n 40",
        ],
        [
            {"type": "search", "cmd": "rg --version", "query": None, "path": None},
            {"type": "unknown", "cmd": "node -v"},
            {"type": "unknown", "cmd": "pnpm -v"},
            {"type": "list_files", "cmd": "rg --files", "path": None},
        ],
    ),
    (
        ["bash", "-lc", 'rg -n "navigate-to-route" -S'],
        [{"type": "search", "cmd": "rg -n navigate-to-route -S", "query": "navigate-to-route", "path": None}],
    ),
    (
        ["bash", "-lc", 'rg -n "BUG|FIXME|TODO|XXX|HACK" -S | head -n 200'],
        [
            {
                "type": "search",
                "cmd": "rg -n 'BUG|FIXME|TODO|XXX|HACK' -S",
                "query": "BUG|FIXME|TODO|XXX|HACK",
                "path": None,
            }
        ],
    ),
    (
        ["bash", "-lc", "rg --files webview/src | sed -n"],
        [{"type": "list_files", "cmd": "rg --files webview/src", "path": "webview"}],
    ),
    (
        [
            "bash",
            "-lc",
            "rg -l QkBindingController presentation/src/main/java"
            " | xargs perl -pi -e 's/QkBindingController/QkController/g'",
        ],
        [
            {
                "type": "search",
                "cmd": "rg -l QkBindingController presentation/src/main/java",
                "query": "QkBindingController",
                "path": "java",
            },
            {"type": "unknown", "cmd": "xargs perl -pi -e s/QkBindingController/QkController/g"},
        ],
    ),
    (
        ["bash", "-lc", "cat webview/README.md"],
        [{"type": "read", "cmd": "cat webview/README.md", "name": "README.md", "path": "webview/README.md"}],
    ),
    (
        ["bash", "-lc", "bat --theme TwoDark README.md"],
        [{"type": "read", "cmd": "bat --theme TwoDark README.md", "name": "README.md", "path": "README.md"}],
    ),
    (
        ["bash", "-lc", "less -p TODO README.md"],
        [{"type": "read", "cmd": "less -p TODO README.md", "name": "README.md", "path": "README.md"}],
    ),
    (
        ["bash", "-lc", "more README.md"],
        [{"type": "read", "cmd": "more README.md", "name": "README.md", "path": "README.md"}],
    ),
    (["bash", "-lc", "ls -la | sed -n '1,120p'"], [{"type": "list_files", "cmd": "ls -la", "path": None}]),
    (
        ["bash", "-lc", "eza --color=always src"],
        [{"type": "list_files", "cmd": "eza '--color=always' src", "path": "src"}],
    ),
    (["bash", "-lc", "tree -L 2 src"], [{"type": "list_files", "cmd": "tree -L 2 src", "path": "src"}]),
    (["bash", "-lc", "du -d 2 ."], [{"type": "list_files", "cmd": "du -d 2 .", "path": "."}]),
    (
        ["bash", "-lc", "head -n 50 Cargo.toml"],
        [{"type": "read", "cmd": "head -n 50 Cargo.toml", "name": "Cargo.toml", "path": "Cargo.toml"}],
    ),
    (
        ["bash", "-lc", "head Cargo.toml"],
        [{"type": "read", "cmd": "head Cargo.toml", "name": "Cargo.toml", "path": "Cargo.toml"}],
    ),
    (
        ["bash", "-lc", "tail -n +522 README.md"],
        [{"type": "read", "cmd": "tail -n +522 README.md", "name": "README.md", "path": "README.md"}],
    ),
    (
        ["bash", "-lc", "tail -n+10 README.md"],
        [{"type": "read", "cmd": "tail -n+10 README.md", "name": "README.md", "path": "README.md"}],
    ),
    (
        ["bash", "-lc", "head -n50 Cargo.toml"],
        [{"type": "read", "cmd": "head -n50 Cargo.toml", "name": "Cargo.toml", "path": "Cargo.toml"}],
    ),
    (
        ["bash", "-lc", "cat tui/Cargo.toml | sed -n '1,200p'"],
        [
            {
                "type": "read",
                "cmd": "cat tui/Cargo.toml | sed -n '1,200p'",
                "name": "Cargo.toml",
                "path": "tui/Cargo.toml",
            }
        ],
    ),
    (
        ["bash", "-lc", "nl -ba core/src/parse_command.rs | sed -n '1200,1720p'"],
        [
            {
                "type": "read",
                "cmd": "nl -ba core/src/parse_command.rs | sed -n '1200,1720p'",
                "name": "parse_command.rs",
                "path": "core/src/parse_command.rs",
            }
        ],
    ),
    (
        ["bash", "-lc", "sed -n '2000,2200p' tui/src/history_cell.rs"],
        [
            {
                "type": "read",
                "cmd": "sed -n '2000,2200p' tui/src/history_cell.rs",
                "name": "history_cell.rs",
                "path": "tui/src/history_cell.rs",
            }
        ],
    ),
    (
        ["bash", "-lc", "awk '{print $1}' Cargo.toml"],
        [{"type": "read", "cmd": "awk '{print $1}' Cargo.toml", "name": "Cargo.toml", "path": "Cargo.toml"}],
    ),
    (
        ["bash", "-lc", 'printf "\\n===== ansi-escape/Cargo.toml =====\\n"; cat -- ansi-escape/Cargo.toml'],
        [
            {
                "type": "read",
                "cmd": "cat -- ansi-escape/Cargo.toml",
                "name": "Cargo.toml",
                "path": "ansi-escape/Cargo.toml",
            }
        ],
    ),
    (["bash", "-lc", "yes | rg --files"], [{"type": "list_files", "cmd": "rg --files", "path": None}]),
    (
        ["bash", "-lc", "sed -n '260,640p' exec/src/event_processor_with_human_output.rs | nl -ba"],
        [
            {
                "type": "read",
                "cmd": "sed -n '260,640p' exec/src/event_processor_with_human_output.rs | nl -ba",
                "name": "event_processor_with_human_output.rs",
                "path": "exec/src/event_processor_with_human_output.rs",
            }
        ],
    ),
    (
        ["bash", "-lc", "rg foo ; echo done"],
        [
            {"type": "search", "cmd": "rg foo", "query": "foo", "path": None},
            {"type": "unknown", "cmd": "echo done"},
        ],
    ),
    (
        ["bash", "-lc", "rg foo || echo done"],
        [
            {"type": "search", "cmd": "rg foo", "query": "foo", "path": None},
            {"type": "unknown", "cmd": "echo done"},
        ],
    ),
    (
        [
            "bash",
            "-lc",
            "pwd; ls -la; rg --files -g '!target' | wc -l; rg -n '^\\[workspace\\]' -n Cargo.toml || true",
        ],
        [
            {"type": "unknown", "cmd": "pwd"},
            {"type": "list_files", "cmd": "ls -la", "path": None},
            {"type": "list_files", "cmd": "rg --files -g '!target'", "path": None},
            {
                "type": "search",
                "cmd": "rg -n '^'\"\\\\[workspace\\\\]\" -n Cargo.toml",
                "query": "^\\[workspace\\]",
                "path": "Cargo.toml",
            },
        ],
    ),
    (["bash", "-lc", "true && rg --files"], [{"type": "list_files", "cmd": "rg --files", "path": None}]),
    (["bash", "-lc", "rg --files || true"], [{"type": "list_files", "cmd": "rg --files", "path": None}]),
    (
        ["bash", "-lc", "git grep TODO src"],
        [{"type": "search", "cmd": "git grep TODO src", "query": "TODO", "path": "src"}],
    ),
    (
        ["bash", "-lc", "git ls-files --exclude target src"],
        [{"type": "list_files", "cmd": "git ls-files --exclude target src", "path": "src"}],
    ),
    (["bash", "-lc", "fd -t f src/"], [{"type": "list_files", "cmd": "fd -t f src/", "path": "src"}]),
    (
        ["bash", "-lc", "fd main src"],
        [{"type": "search", "cmd": "fd main src", "query": "main", "path": "src"}],
    ),
    (
        ["bash", "-lc", "find . -name '*.rs'"],
        [{"type": "search", "cmd": "find . -name '*.rs'", "query": "*.rs", "path": "."}],
    ),
    (["bash", "-lc", "find src -type f"], [{"type": "list_files", "cmd": "find src -type f", "path": "src"}]),
    (
        ["bash", "-lc", "python -c \"import os; print(os.listdir('.'))\""],
        [{"type": "list_files", "cmd": "python -c \"import os; print(os.listdir('.'))\"", "path": None}],
    ),
    (
        ["bash", "-lc", "grep -R CODEX -n core/src/spawn.rs"],
        [
            {
                "type": "search",
                "cmd": "grep -R CODEX -n core/src/spawn.rs",
                "query": "CODEX",
                "path": "spawn.rs",
            }
        ],
    ),
    (
        ["bash", "-lc", "egrep -R TODO src"],
        [{"type": "search", "cmd": "egrep -R TODO src", "query": "TODO", "path": "src"}],
    ),
    (
        ["bash", "-lc", "ls --time-style=long-iso ./dist"],
        [{"type": "list_files", "cmd": "ls '--time-style=long-iso' ./dist", "path": "."}],
    ),
    (
        ["bash", "-lc", "rg --colors=never -n foo src"],
        [{"type": "search", "cmd": "rg '--colors=never' -n foo src", "query": "foo", "path": "src"}],
    ),
    (["bash", "-lc", "git status | wc -l"], [{"type": "unknown", "cmd": "git status"}]),
    (["bash", "-lc", "echo foo > bar"], [{"type": "unknown", "cmd": "echo foo > bar"}]),
    (
        ["bash", "-lc", "ag TODO src"],
        [{"type": "search", "cmd": "ag TODO src", "query": "TODO", "path": "src"}],
    ),
    (
        ["bash", "-lc", "sed -n -e 10p file.txt"],
        [{"type": "read", "cmd": "sed -n -e 10p file.txt", "name": "file.txt", "path": "file.txt"}],
    ),
    (
        ["bash", "-lc", "sed -n 10p -- file.txt"],
        [{"type": "read", "cmd": "sed -n 10p -- file.txt", "name": "file.txt", "path": "file.txt"}],
    ),
    (["bash", "-lc", "cat a b"], [{"type": "unknown", "cmd": "cat a b"}]),
    (["bash", "-lc", 'echo ""'], [{"type": "unknown", "cmd": "echo ''"}]),
    (["bash", "-lc", "ls 'a b'/c"], [{"type": "list_files", "cmd": "ls 'a b/c'", "path": "c"}]),
    (
        ["bash", "-lc", "grep -e foo -e bar src/x.rs"],
        [{"type": "search", "cmd": "grep -e foo -e bar src/x.rs", "query": "foo", "path": "x.rs"}],
    ),
    (["bash", "-lc", "tail -f log.txt"], [{"type": "unknown", "cmd": "tail -f log.txt"}]),
    (
        ["bash", "-lc", "ls -la && echo hi"],
        [{"type": "list_files", "cmd": "ls -la", "path": None}, {"type": "unknown", "cmd": "echo hi"}],
    ),
    (["bash", "-lc", "echo hi && ls"], [{"type": "list_files", "cmd": "ls", "path": None}]),
    (["bash", "-lc", "nl -ba && ls"], [{"type": "list_files", "cmd": "ls", "path": None}]),
    (["bash", "-lc", "head -c 100 file"], [{"type": "unknown", "cmd": "head -c 100 file"}]),
    (["bash", "-lc", "tail -c +10 file"], [{"type": "unknown", "cmd": "tail -c +10 file"}]),
    (
        ["bash", "-lc", "cat fé.txt"],
        [{"type": "read", "cmd": "cat 'fé.txt'", "name": "fé.txt", "path": "fé.txt"}],
    ),
    (["bash", "-lc", "echo a'b'c"], [{"type": "unknown", "cmd": "echo abc"}]),
    (
        ["bash", "-lc", "ls -I '*.test.js'"],
        [{"type": "list_files", "cmd": "ls -I '*.test.js'", "path": None}],
    ),
    (
        ["bash", "-lc", 'rg -g"*.py" foo'],
        [{"type": "search", "cmd": "rg '-g*.py' foo", "query": "foo", "path": None}],
    ),
    (["bash", "-lc", "ls |\n wc -l"], [{"type": "list_files", "cmd": "ls", "path": None}]),
    (["bash", "-lc", "git -C . log"], [{"type": "unknown", "cmd": "git -C . log"}]),
    (["bash", "-lc", "sort x | uniq -c"], [{"type": "unknown", "cmd": "sort x | uniq -c"}]),
    (["bash", "-lc", "xargs -n1 echo"], [{"type": "unknown", "cmd": "xargs -n1 echo"}]),
    (
        ["bash", "-lc", "cat x | xargs sed -i s/a/b/"],
        [
            {"type": "read", "cmd": "cat x", "name": "x", "path": "x"},
            {"type": "unknown", "cmd": "xargs sed -i s/a/b/"},
        ],
    ),
    (["bash", "-lc", "wc -l a.txt"], [{"type": "unknown", "cmd": "wc -l a.txt"}]),
    (["bash", "-lc", "head -n 5"], [{"type": "unknown", "cmd": "head -n 5"}]),
    (
        ["bash", "-lc", "awk -f prog.awk data.txt"],
        [{"type": "read", "cmd": "awk -f prog.awk data.txt", "name": "data.txt", "path": "data.txt"}],
    ),
    (["bash", "-lc", "ls; ls"], [{"type": "list_files", "cmd": "ls", "path": None}]),
    (["bash", "-lc", 'echo a\\"b'], [{"type": "unknown", "cmd": 'echo "a\\\\\\"b"'}]),
    (
        ["bash", "-lc", "grep -- -x file"],
        [{"type": "search", "cmd": "grep -- -x file", "query": "-x", "path": "file"}],
    ),
    (
        ["bash", "-lc", "rg -A 2 foo src/lib.rs"],
        [{"type": "search", "cmd": "rg -A 2 foo src/lib.rs", "query": "foo", "path": "lib.rs"}],
    ),
    (["bash", "-lc", "cat ./src/"], [{"type": "read", "cmd": "cat ./src/", "name": ".", "path": "./src/"}]),
    (
        ["bash", "-lc", "nl -s '  ' file.rs"],
        [{"type": "read", "cmd": "nl -s '  ' file.rs", "name": "file.rs", "path": "file.rs"}],
    ),
    (["ls", "-la"], [{"type": "list_files", "cmd": "ls -la", "path": None}]),
    (["yes", "|", "rg", "--files"], [{"type": "list_files", "cmd": "rg --files", "path": None}]),
    (
        ["cat", "a.txt", "|", "head"],
        [
            {"type": "read", "cmd": "cat a.txt", "name": "a.txt", "path": "a.txt"},
            {"type": "unknown", "cmd": "head"},
        ],
    ),
    (["cd", "x", "&&", "cat", "y"], [{"type": "read", "cmd": "cat y", "name": "y", "path": "x/y"}]),
    (["rg", "--files"], [{"type": "list_files", "cmd": "rg --files", "path": None}]),
    (["bash", "-lc", "ls", "extra"], [{"type": "unknown", "cmd": "bash -lc ls extra"}]),
    (
        ["/bin/zsh", "-lc", "cat README.md"],
        [{"type": "read", "cmd": "cat README.md", "name": "README.md", "path": "README.md"}],
    ),
    (["sh", "-c", "ls src"], [{"type": "list_files", "cmd": "ls src", "path": "src"}]),
    (["git", "status"], [{"type": "unknown", "cmd": "git status"}]),
    (["grep", "-R", "x", "."], [{"type": "search", "cmd": "grep -R x .", "query": "x", "path": "."}]),
    ([], [{"type": "unknown", "cmd": ""}]),
    (["bash", "-lc", "base64 existing.txt"], [{"type": "unknown", "cmd": "base64 existing.txt"}]),
    (["bash", "-lc", "numfmt 1000"], [{"type": "unknown", "cmd": "numfmt 1000"}]),
    (["bash", "-lc", "tac existing.txt"], [{"type": "unknown", "cmd": "tac existing.txt"}]),
    (
        ["bash", "-lc", "rg --pre x foo"],
        [{"type": "search", "cmd": "rg --pre x foo", "query": "x", "path": "foo"}],
    ),
    (["bash", "-lc", "rg -z foo"], [{"type": "search", "cmd": "rg -z foo", "query": "foo", "path": None}]),
    (["bash", "-lc", "git branch"], [{"type": "unknown", "cmd": "git branch"}]),
    (["bash", "-lc", "git branch --show-current"], [{"type": "unknown", "cmd": "git branch --show-current"}]),
    (["bash", "-lc", "git -c a=b status"], [{"type": "unknown", "cmd": "git -c 'a=b' status"}]),
    (["bash", "-lc", "git log --output=x"], [{"type": "unknown", "cmd": "git log '--output=x'"}]),
    (["bash", "-lc", "git diff --ext-diff"], [{"type": "unknown", "cmd": "git diff --ext-diff"}]),
    (
        ["bash", "-lc", "nl -ba existing.txt"],
        [{"type": "read", "cmd": "nl -ba existing.txt", "name": "existing.txt", "path": "existing.txt"}],
    ),
    (["bash", "-lc", "which ls"], [{"type": "unknown", "cmd": "which ls"}]),
    (["bash", "-lc", "expr 1 + 1"], [{"type": "unknown", "cmd": "expr 1 + 1"}]),
    (["bash", "-lc", "cd / && ls"], [{"type": "list_files", "cmd": "ls", "path": None}]),
    (["bash", "-lc", "git -C . status"], [{"type": "unknown", "cmd": "git -C . status"}]),
    (["bash", "-lc", "find . -type f"], [{"type": "list_files", "cmd": "find . -type f", "path": "."}]),
    (
        ["bash", "-lc", "grep -r foo ."],
        [{"type": "search", "cmd": "grep -r foo .", "query": "foo", "path": "."}],
    ),
    (["bash", "-lc", "rg foo"], [{"type": "search", "cmd": "rg foo", "query": "foo", "path": None}]),
    (
        ["bash", "-lc", "head -n 1 existing.txt"],
        [{"type": "read", "cmd": "head -n 1 existing.txt", "name": "existing.txt", "path": "existing.txt"}],
    ),
    (["bash", "-lc", "true"], [{"type": "unknown", "cmd": "true"}]),
    (["bash", "-lc", "uname -a"], [{"type": "unknown", "cmd": "uname -a"}]),
    (["bash", "-lc", "stat existing.txt"], [{"type": "unknown", "cmd": "stat existing.txt"}]),
    (["bash", "-lc", "git show HEAD"], [{"type": "unknown", "cmd": "git show HEAD"}]),
    (["bash", "-lc", "sed -n 1p"], [{"type": "unknown", "cmd": "sed -n 1p"}]),
    (
        ["bash", "-lc", "sed -n 1p a b c"],
        [{"type": "read", "cmd": "sed -n 1p a b c", "name": "a", "path": "a"}],
    ),
    (["bash", "-lc", "ls ''"], [{"type": "list_files", "cmd": "ls ''", "path": ""}]),
    (["bash", "-lc", 'echo "a b"'], [{"type": "unknown", "cmd": "echo 'a b'"}]),
    (["bash", "-lc", "echo a\\ b"], [{"type": "unknown", "cmd": 'echo "a\\\\ b"'}]),
    (["bash", "-lc", "ls *.txt"], [{"type": "list_files", "cmd": "ls '*.txt'", "path": "*.txt"}]),
    (["bash", "-lc", "ls ~"], [{"type": "list_files", "cmd": "ls '~'", "path": "~"}]),
    (["bash", "-lc", "echo {a,b}"], [{"type": "unknown", "cmd": "echo '{a,b}'"}]),
    (["bash", "-lc", "echo hi # c"], [{"type": "unknown", "cmd": "echo hi # c"}]),
    (
        ["bash", "-lc", "ls\npwd"],
        [{"type": "list_files", "cmd": "ls", "path": None}, {"type": "unknown", "cmd": "pwd"}],
    ),
    (["bash", "-lc", "ls &"], [{"type": "unknown", "cmd": "ls &"}]),
    (
        ["bash", "-lc", "cat existing.txt | head"],
        [{"type": "read", "cmd": "cat existing.txt", "name": "existing.txt", "path": "existing.txt"}],
    ),
    (["bash", "-lc", "whoami"], [{"type": "unknown", "cmd": "whoami"}]),
    (["bash", "-lc", "id"], [{"type": "unknown", "cmd": "id"}]),
    (["bash", "-lc", "git status --porcelain"], [{"type": "unknown", "cmd": "git status --porcelain"}]),
    (["bash", "-lc", "git log --oneline -n 3"], [{"type": "unknown", "cmd": "git log --oneline -n 3"}]),
    (["bash", "-lc", "git --no-pager diff"], [{"type": "unknown", "cmd": "git --no-pager diff"}]),
    (["bash", "-lc", "git diff --textconv"], [{"type": "unknown", "cmd": "git diff --textconv"}]),
    (
        ["bash", "-lc", "ls -la | grep x"],
        [
            {"type": "list_files", "cmd": "ls -la", "path": None},
            {"type": "search", "cmd": "grep x", "query": "x", "path": None},
        ],
    ),
    (
        ["bash", "-lc", "cat -- existing.txt"],
        [{"type": "read", "cmd": "cat -- existing.txt", "name": "existing.txt", "path": "existing.txt"}],
    ),
    (["bash", "-lc", "echo '$HOME'"], [{"type": "unknown", "cmd": "echo '$HOME'"}]),
    (["bash", "-lc", 'echo "$HOME"'], [{"type": "unknown", "cmd": 'echo "$HOME"'}]),
    (["bash", "-lc", 'echo "a\\$b"'], [{"type": "unknown", "cmd": "echo \"a\\\\\"'$b'"}]),
    (
        ["bash", "-lc", "ls && cat existing.txt | wc -l"],
        [
            {"type": "list_files", "cmd": "ls", "path": None},
            {"type": "read", "cmd": "cat existing.txt", "name": "existing.txt", "path": "existing.txt"},
        ],
    ),
    (["bash", "-lc", "ls > out.txt"], [{"type": "unknown", "cmd": "ls > out.txt"}]),
    (["bash", "-lc", "git status"], [{"type": "unknown", "cmd": "git status"}]),
    (
        ["bash", "-lc", "sed -n 1,2p existing.txt"],
        [
            {
                "type": "read",
                "cmd": "sed -n '1,2p' existing.txt",
                "name": "existing.txt",
                "path": "existing.txt",
            }
        ],
    ),
    (
        ["bash", "-lc", "find . -name x -delete"],
        [{"type": "search", "cmd": "find . -name x -delete", "query": "x", "path": "."}],
    ),
    (
        ["bash", "-lc", "cat <<'EOF' > hd.txt\nhi\nEOF"],
        [{"type": "unknown", "cmd": "cat <<'EOF' > hd.txt\nhi\nEOF"}],
    ),
    (["bash", "-lc", "echo $HOME"], [{"type": "unknown", "cmd": "echo $HOME"}]),
    (["bash", "-lc", "FOO=1 ls"], [{"type": "unknown", "cmd": "FOO=1 ls"}]),
    (
        ["bash", "-lc", "ls; pwd || true"],
        [{"type": "list_files", "cmd": "ls", "path": None}, {"type": "unknown", "cmd": "pwd"}],
    ),
    (["bash", "-lc", "rm -fr zz"], [{"type": "unknown", "cmd": "rm -fr zz"}]),
    (["bash", "-lc", "rm -Rf zz"], [{"type": "unknown", "cmd": "rm -Rf zz"}]),
    (["bash", "-lc", "rm --force zz"], [{"type": "unknown", "cmd": "rm --force zz"}]),
    (["bash", "-lc", "git branch -D foo"], [{"type": "unknown", "cmd": "git branch -D foo"}]),
    (["bash", "-lc", "git rm zz"], [{"type": "unknown", "cmd": "git rm zz"}]),
    (["bash", "-lc", "/usr/bin/git reset"], [{"type": "unknown", "cmd": "/usr/bin/git reset"}]),
    (["bash", "-lc", "rm -r -f zz"], [{"type": "unknown", "cmd": "rm -r -f zz"}]),
    (["bash", "-lc", "echo a && rm -rf zz"], [{"type": "unknown", "cmd": "rm -rf zz"}]),
    (["/bin/bash", "-lc", "echo hi"], [{"type": "unknown", "cmd": "echo hi"}]),
    (["/bin/bash", "-c", "echo hi"], [{"type": "unknown", "cmd": "echo hi"}]),
    (["/bin/bash", "-lc", "touch k2.txt"], [{"type": "unknown", "cmd": "touch k2.txt"}]),
    (
        ["/bin/bash", "-lc", "python3 -c 'print(1)' > k3.txt"],
        [{"type": "unknown", "cmd": "python3 -c 'print(1)' > k3.txt"}],
    ),
    (
        ["/bin/bash", "-lc", "touch k4.txt && rm k4.txt"],
        [{"type": "unknown", "cmd": "touch k4.txt"}, {"type": "unknown", "cmd": "rm k4.txt"}],
    ),
    (
        ["/bin/bash", "-lc", "cat existing.txt"],
        [{"type": "read", "cmd": "cat existing.txt", "name": "existing.txt", "path": "existing.txt"}],
    ),
    (["bash", "-lc", "echo start; touch f.txt"], [{"type": "unknown", "cmd": "touch f.txt"}]),
]


@pytest.mark.parametrize(
    ("argv", "expected"), REFERENCE_CASES, ids=[" ".join(c[0])[:60] for c in REFERENCE_CASES]
)
def test_parse_command_matches_reference(argv: list[str], expected: list[dict[str, Any]]) -> None:
    assert parse_command(argv) == expected


def test_echo_hi_is_unknown() -> None:
    assert parse_command(["bash", "-lc", "echo hi"]) == [{"type": "unknown", "cmd": "echo hi"}]


def test_cd_joins_paths_of_later_reads() -> None:
    assert parse_command(["bash", "-lc", "cd a && cd b/c && cat ../d.txt"]) == [
        {"type": "read", "cmd": "cat ../d.txt", "name": "d.txt", "path": "a/b/c/../d.txt"}
    ]


def test_consecutive_duplicates_are_collapsed() -> None:
    assert parse_command(["bash", "-lc", "ls && ls && pwd && ls"]) == [
        {"type": "list_files", "cmd": "ls", "path": None},
        {"type": "unknown", "cmd": "pwd"},
        {"type": "list_files", "cmd": "ls", "path": None},
    ]


def test_only_formatting_helpers_keep_the_whole_script() -> None:
    assert parse_command(["bash", "-lc", "wc -l | sort"]) == [{"type": "unknown", "cmd": "wc -l | sort"}]


def test_mutating_xargs_is_kept_in_a_pipeline() -> None:
    parsed = parse_command(["bash", "-lc", "rg -l foo | xargs sed -i s/a/b/"])
    assert parsed == [
        {"type": "search", "cmd": "rg -l foo", "query": "foo", "path": None},
        {"type": "unknown", "cmd": "xargs sed -i s/a/b/"},
    ]
    assert parse_command(["bash", "-lc", "rg -l foo | xargs echo"]) == [
        {"type": "search", "cmd": "rg -l foo", "query": "foo", "path": None}
    ]


def test_python_file_walkers_are_listings() -> None:
    assert parse_command(["python3", "-c", "import glob; print(glob.glob('*'))"]) == [
        {"type": "list_files", "cmd": "python3 -c \"import glob; print(glob.glob('*'))\"", "path": None}
    ]
    assert parse_command(["python3", "-c", "print(1)"]) == [
        {"type": "unknown", "cmd": "python3 -c 'print(1)'"}
    ]


def test_powershell_script_is_shown_as_is() -> None:
    assert parse_command(["pwsh", "-NoProfile", "-Command", "Get-ChildItem"]) == [
        {"type": "unknown", "cmd": "Get-ChildItem"}
    ]


@pytest.mark.parametrize(
    ("word", "quoted"),
    [
        ("plain-word_1.2/x:y@z+", "plain-word_1.2/x:y@z+"),
        ("", "''"),
        ("a b", "'a b'"),
        ("a=b", "'a=b'"),
        ("1,200p", "'1,200p'"),
        ("it's", '"it\'s"'),
        ("a\\ b", '"a\\\\ b"'),
        ("a\\$b", "\"a\\\\\"'$b'"),
        ("fé.txt", "'fé.txt'"),
        ("^x", "'^x'"),
        ("say!", "'say!'"),
    ],
)
def test_shlex_quote(word: str, quoted: str) -> None:
    assert shlex_quote(word) == quoted
    assert shlex_split(quoted) == [word]


def test_shlex_join() -> None:
    assert shlex_join(["bash", "-lc", "echo hi"]) == "bash -lc 'echo hi'"
    assert shlex_join([]) == ""
    assert shlex_join(["echo", "a\0b"]) == NUL_COMMAND


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a 'b c' \"d e\"", ["a", "b c", "d e"]),
        ("foo #bar\nbaz", ["foo", "baz"]),
        ("foo#bar", ["foo#bar"]),
        ('"a\\$b\\x"', ["a$b\\x"]),
        ("a\\ b", ["a b"]),
        ("'unterminated", None),
        ("trailing\\", None),
    ],
)
def test_shlex_split(text: str, words: list[str] | None) -> None:
    assert shlex_split(text) == words


@pytest.mark.parametrize(
    ("script", "commands"),
    [
        ("ls -1", [["ls", "-1"]]),
        ("ls && pwd; echo 'hi there' | wc -l", [["ls"], ["pwd"], ["echo", "hi there"], ["wc", "-l"]]),
        ("ls\npwd", [["ls"], ["pwd"]]),
        ("ls |\n wc -l", [["ls"], ["wc", "-l"]]),
        ("ls;", [["ls"]]),
        ('rg -n "foo" -g"*.py"', [["rg", "-n", "foo", "-g*.py"]]),
        ("grep -n 'pattern' -g'*.txt'", [["grep", "-n", "pattern", "-g*.txt"]]),
        ('echo ""', [["echo", ""]]),
        ("echo a\\ b", [["echo", "a\\ b"]]),
        ('echo "a\\$b"', [["echo", "a\\$b"]]),
        ("echo {a,b} *.txt ~", [["echo", "{a,b}", "*.txt", "~"]]),
        ("", []),
    ],
)
def test_plain_scripts_are_split_into_commands(script: str, commands: list[list[str]]) -> None:
    assert parse_plain_commands(script) == commands


@pytest.mark.parametrize(
    "script",
    [
        "(ls)",
        "ls || (pwd && echo hi)",
        "ls > out.txt",
        "cat < in.txt",
        "echo hi & echo bye",
        "ls &",
        "ls |& cat",
        "echo $(pwd)",
        "echo `pwd`",
        "echo $HOME",
        'echo "hi $USER"',
        'rg -g"$VAR" pattern',
        "FOO=bar ls",
        "ls &&",
        "&& ls",
        "ls ;; pwd",
        "echo hi # comment",
        "if true; then ls; fi",
        "{ ls; }",
        "! ls",
        "'ls' -l",
        "export A=1",
        "cat <<'EOF'\nhi\nEOF",
        "echo 'unterminated",
    ],
)
def test_scripts_with_more_than_plain_words_are_refused(script: str) -> None:
    assert parse_plain_commands(script) is None


def test_extract_shell_script_accepts_bash_zsh_sh_paths() -> None:
    assert extract_shell_script(["/bin/bash", "-lc", "ls"]) == ("/bin/bash", "ls")
    assert extract_shell_script(["zsh", "-c", "ls"]) == ("zsh", "ls")
    assert extract_shell_script(["/usr/bin/sh", "-c", "ls"]) == ("/usr/bin/sh", "ls")
    assert extract_shell_script(["python3", "-c", "ls"]) is None
    assert extract_shell_script(["bash", "-x", "ls"]) is None
    assert extract_shell_script(["bash", "-lc", "ls", "extra"]) is None


def test_shell_command_argv_uses_login_flag() -> None:
    assert shell_command_argv("echo hi", shell="/bin/bash") == ["/bin/bash", "-lc", "echo hi"]
    assert shell_command_argv("echo hi", login=False, shell="/bin/bash") == ["/bin/bash", "-c", "echo hi"]
    program, flag, script = shell_command_argv("echo hi")
    assert program.endswith("bash") and flag == "-lc" and script == "echo hi"
