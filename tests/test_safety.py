"""safety: approval/sandbox decisions, checked against what the reference (Codex 0.94) was seen to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codex_trio.core import safety
from codex_trio.core.safety import (
    ExecAssessment,
    PatchAssessment,
    PrefixRule,
    amendment_saved_message,
    approval_outcome,
    assess_exec,
    assess_patch,
    command_might_be_dangerous,
    decision_from_v2,
    exec_approval_key,
    format_allow_rule,
    is_known_safe_command,
    is_likely_sandbox_denied,
    parse_rules,
    patch_allowed_in_sandbox,
    patch_approval_keys,
    retry_decision,
    retry_without_sandbox_allowed,
    writable_roots,
)

CWD = Path("/w")
RO: dict[str, Any] = {"type": "readOnly"}
WS: dict[str, Any] = {
    "type": "workspaceWrite",
    "writableRoots": [],
    "networkAccess": False,
    "excludeTmpdirEnvVar": True,
    "excludeSlashTmp": True,
}
DFA: dict[str, Any] = {"type": "dangerFullAccess"}
SANDBOXES = {"read-only": RO, "workspace-write": WS, "danger-full-access": DFA}
RESTRICTED = ("read-only", "workspace-write")

TOUCH = ["bash", "-lc", "touch a.txt"]
SAFE = ["bash", "-lc", "ls && cat f | wc -l"]
RM_RF = ["bash", "-lc", "rm -rf zz"]


def bash(script: str) -> list[str]:
    return ["bash", "-lc", script]


def exec_(
    argv: list[str], policy: str, sandbox: str, permissions: str | None = None, **kw: Any
) -> ExecAssessment:
    return assess_exec(
        argv,
        cwd=CWD,
        approval_policy=policy,
        sandbox_policy=SANDBOXES[sandbox],
        sandbox_permissions=permissions,
        **kw,
    )


# ---------------------------------------------------------------------------------------------
# Known-safe and dangerous commands (each probed against the reference under `untrusted`)


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "-la"],
        ["git", "status"],
        ["/bin/ls"],
        ["zsh", "-lc", "ls"],
        ["/bin/zsh", "-lc", "cat README.md"],
        *(
            bash(s)
            for s in [
                "ls && cat existing.txt | wc -l",
                "git status",
                "sed -n 1,2p existing.txt",
                "sed -n 1p",
                "ls; pwd || true",
                "base64 existing.txt",
                "numfmt 1000",
                "tac existing.txt",
                "git branch",
                "git branch -D foo",
                "git log --output=x",
                "git diff --ext-diff",
                "git show HEAD",
                "nl -ba existing.txt",
                "which ls",
                "expr 1 + 1",
                "cd / && ls",
                "find . -type f",
                "grep -r foo .",
                "rg foo",
                "head -n 1 existing.txt",
                "true",
                "uname -a",
                "stat existing.txt",
                "ls ''",
                'echo "a b"',
                "echo a\\ b",
                "ls *.txt",
                "echo {a,b}",
                "ls\npwd",
                "whoami",
                "id",
                "cat -- existing.txt",
                "echo '$HOME'",
                'echo "a\\$b"',
                'echo ""',
            ]
        ),
    ],
)
def test_known_safe(argv: list[str]) -> None:
    assert is_known_safe_command(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["touch", "x"],
        [],
        ["git"],
        ["yes", "|", "rg", "--files"],
        *(
            bash(s)
            for s in [
                "touch a.txt",
                "ls > out.txt",
                "find . -name x -delete",
                "find . -fprint x",
                "cat <<'EOF' > hd.txt\nhi\nEOF",
                "echo $HOME",
                'echo "$HOME"',
                "FOO=1 ls",
                "rg --pre x foo",
                "rg --pre=x foo",
                "rg -z foo",
                "git -c a=b status",
                "git -C . status",
                "git --no-pager diff",
                "sed -n 1p a b c",
                "sed -n -e 10p file.txt",
                "echo hi # c",
                "ls &",
                "base64 -o out existing.txt",
                "bat README.md",
                "sort x | uniq -c",
                "ls && touch a",
            ]
        ),
    ],
)
def test_not_known_safe(argv: list[str]) -> None:
    assert not is_known_safe_command(argv)


@pytest.mark.parametrize(
    ("argv", "dangerous"),
    [
        (bash("git reset --hard"), True),
        (bash("git rm zz"), True),
        (bash("/usr/bin/git reset"), True),
        (bash("rm -rf zz"), True),
        (bash("rm -f zz"), True),
        (bash("sudo rm -rf zz"), True),
        (bash("echo a && rm -rf zz"), True),
        (["rm", "-rf", "zz"], True),
        (bash("git -C . reset --hard"), False),
        (bash("git push --force"), False),
        (bash("git branch -D foo"), False),
        (bash("rm -fr zz"), False),
        (bash("rm -Rf zz"), False),
        (bash("rm --force zz"), False),
        (bash("rm -r -f zz"), False),
        (bash("rm -rf zz > log"), False),
    ],
)
def test_dangerous(argv: list[str], dangerous: bool) -> None:
    assert command_might_be_dangerous(argv) is dangerous


# ---------------------------------------------------------------------------------------------
# assess_exec: every policy, sandbox and permissions combination


@pytest.mark.parametrize("policy", ["untrusted", "on-failure", "never"])
@pytest.mark.parametrize("sandbox", list(SANDBOXES))
def test_escalation_outside_on_request_is_rejected_before_anything(policy: str, sandbox: str) -> None:
    names = {"untrusted": "UnlessTrusted", "on-failure": "OnFailure", "never": "Never"}
    result = exec_(TOUCH, policy, sandbox, "require_escalated", justification="why")
    assert result == ExecAssessment(
        action="reject",
        sandboxed=False,
        reason=f"approval policy is {names[policy]}; reject command — you should not ask for escalated "
        f"permissions if the approval policy is {names[policy]}",
    )


@pytest.mark.parametrize("sandbox", list(SANDBOXES))
def test_untrusted_asks_for_anything_not_known_safe(sandbox: str) -> None:
    result = exec_(TOUCH, "untrusted", sandbox)
    assert result == ExecAssessment(
        action="ask",
        sandboxed=sandbox in RESTRICTED,
        reason=None,
        proposed_execpolicy_amendment=["touch", "a.txt"],
    )
    assert exec_(TOUCH, "untrusted", sandbox, justification="please").reason == "please"


@pytest.mark.parametrize("policy", ["untrusted", "on-failure", "on-request", "never"])
@pytest.mark.parametrize("sandbox", list(SANDBOXES))
def test_known_safe_commands_run_under_every_policy(policy: str, sandbox: str) -> None:
    result = exec_(SAFE, policy, sandbox)
    assert result == ExecAssessment(
        action="run", sandboxed=sandbox in RESTRICTED, proposed_execpolicy_amendment=["ls"]
    )


@pytest.mark.parametrize("policy", ["on-failure", "never"])
@pytest.mark.parametrize("sandbox", list(SANDBOXES))
def test_on_failure_and_never_run_without_asking(policy: str, sandbox: str) -> None:
    result = exec_(bash("echo start; touch f.txt"), policy, sandbox)
    # The amendment is the first command the heuristics allowed: it goes with the retry request
    # after a sandbox denial (seen as ["echo", "start"] in the reference).
    assert result == ExecAssessment(
        action="run", sandboxed=sandbox in RESTRICTED, proposed_execpolicy_amendment=["echo", "start"]
    )


@pytest.mark.parametrize("sandbox", list(SANDBOXES))
def test_on_request_runs_plain_commands_in_the_sandbox(sandbox: str) -> None:
    result = exec_(TOUCH, "on-request", sandbox)
    assert result.action == "run"
    assert result.sandboxed is (sandbox in RESTRICTED)


@pytest.mark.parametrize("sandbox", RESTRICTED)
def test_on_request_asks_for_escalation_with_the_justification(sandbox: str) -> None:
    result = exec_(TOUCH, "on-request", sandbox, "require_escalated", justification="need to write")
    assert result == ExecAssessment(
        action="ask",
        sandboxed=False,
        reason="need to write",
        proposed_execpolicy_amendment=["touch", "a.txt"],
    )


def test_on_request_escalation_under_full_access_just_runs() -> None:
    result = exec_(TOUCH, "on-request", "danger-full-access", "require_escalated", justification="why")
    assert result.action == "run"
    assert result.sandboxed is False


@pytest.mark.parametrize("sandbox", RESTRICTED)
def test_on_request_escalated_known_safe_command_runs_unsandboxed(sandbox: str) -> None:
    result = exec_(bash("ls"), "on-request", sandbox, "require_escalated", justification="why")
    assert result.action == "run"
    assert result.sandboxed is False


@pytest.mark.parametrize("policy", ["untrusted", "on-failure", "on-request"])
@pytest.mark.parametrize("sandbox", list(SANDBOXES))
def test_dangerous_commands_are_asked_about(policy: str, sandbox: str) -> None:
    result = exec_(bash("git reset --hard"), policy, sandbox)
    assert result.action == "ask"
    assert result.proposed_execpolicy_amendment == ["git", "reset", "--hard"]


@pytest.mark.parametrize("sandbox", list(SANDBOXES))
def test_dangerous_commands_are_forbidden_under_never(sandbox: str) -> None:
    assert exec_(RM_RF, "never", sandbox) == ExecAssessment(
        action="forbidden", sandboxed=False, reason="`bash -lc 'rm -rf zz'` rejected: blocked by policy"
    )
    direct = exec_(["rm", "-rf", "zz"], "never", sandbox)
    assert direct.reason == "`rm -rf zz` rejected: blocked by policy"


def test_unparseable_script_is_proposed_whole() -> None:
    result = exec_(bash("ls > out.txt"), "untrusted", "danger-full-access")
    assert result.action == "ask"
    assert result.proposed_execpolicy_amendment == ["bash", "-lc", "ls > out.txt"]


def test_empty_argv_is_asked_about_under_untrusted() -> None:
    result = exec_([], "untrusted", "danger-full-access")
    assert result.action == "ask"
    assert result.proposed_execpolicy_amendment == []


def test_the_model_suggested_prefix_is_proposed_as_is() -> None:
    for prefix in (["touch"], ["python3"]):
        result = exec_(
            bash("touch k.txt && rm k.txt"),
            "on-request",
            "read-only",
            "require_escalated",
            justification="why",
            prefix_rule=prefix,
        )
        assert result.action == "ask"
        assert result.proposed_execpolicy_amendment == prefix


def test_session_approval_is_per_command_cwd_and_permissions() -> None:
    approved = {exec_approval_key(TOUCH, CWD, None)}
    again = exec_(TOUCH, "untrusted", "read-only", approved_for_session=approved)
    assert again == ExecAssessment(
        action="run", sandboxed=True, proposed_execpolicy_amendment=["touch", "a.txt"], user_approved=True
    )
    elsewhere = assess_exec(
        TOUCH, cwd="/tmp", approval_policy="untrusted", sandbox_policy=RO, approved_for_session=approved
    )
    assert elsewhere.action == "ask"
    escalated_ok = {exec_approval_key(TOUCH, CWD, "require_escalated")}
    assert exec_(TOUCH, "untrusted", "read-only", approved_for_session=escalated_ok).action == "ask"
    on_request = exec_(
        TOUCH,
        "on-request",
        "read-only",
        "require_escalated",
        justification="w",
        approved_for_session=escalated_ok,
    )
    assert on_request.action == "run" and on_request.sandboxed is False and on_request.user_approved


def test_allow_rule_runs_without_sandbox_and_partial_match_still_asks() -> None:
    rules = [PrefixRule(pattern=("touch",))]
    allowed = exec_(bash("touch a2.txt"), "untrusted", "read-only", rules=rules)
    assert allowed == ExecAssessment(action="run", sandboxed=False)
    partial = exec_(bash("touch a3.txt && rm a3.txt"), "untrusted", "read-only", rules=rules)
    assert partial.action == "ask"
    assert partial.proposed_execpolicy_amendment == ["rm", "a3.txt"]


def test_forbidden_and_prompt_rules() -> None:
    rules = parse_rules(
        'prefix_rule(pattern=["git", ["push", "pull"]], decision="forbidden")\n'
        'prefix_rule(pattern=["curl"], decision="forbidden", justification="use the fetch tool")\n'
        'prefix_rule(pattern=["make"], decision="prompt", justification="builds are slow")\n'
        'prefix_rule(pattern=["npm"], decision="prompt")\n'
    )
    assert exec_(bash("git push origin"), "on-failure", "read-only", rules=rules) == ExecAssessment(
        action="forbidden",
        sandboxed=False,
        reason="`bash -lc 'git push origin'` rejected: policy forbids commands starting with `git push`",
    )
    assert exec_(bash("git status"), "untrusted", "read-only", rules=rules).action == "run"
    curl = exec_(["curl", "x"], "never", "danger-full-access", rules=rules)
    assert curl.reason == "`curl x` rejected: use the fetch tool"
    make = exec_(bash("make all"), "on-failure", "read-only", rules=rules)
    assert make == ExecAssessment(
        action="ask", sandboxed=True, reason="`bash -lc 'make all'` requires approval: builds are slow"
    )
    npm = exec_(["npm", "i"], "on-request", "read-only", rules=rules)
    assert npm.reason == "`npm i` requires approval by policy"
    assert exec_(["npm", "i"], "never", "read-only", rules=rules) == ExecAssessment(
        action="forbidden",
        sandboxed=False,
        reason="approval required by policy, but AskForApproval is set to Never",
    )


def test_rules_files() -> None:
    line = format_allow_rule(["touch", "t7.txt"])
    assert line == 'prefix_rule(pattern=["touch", "t7.txt"], decision="allow")\n'
    assert parse_rules(line + format_allow_rule(["ls"])) == [
        PrefixRule(pattern=("touch", "t7.txt")),
        PrefixRule(pattern=("ls",)),
    ]
    assert amendment_saved_message(["touch"]) == 'Approved command prefix saved:\n- ["touch"]'
    assert (
        amendment_saved_message(["touch", "t7.txt"])
        == 'Approved command prefix saved:\n- ["touch", "t7.txt"]'
    )
    for bad in (
        "prefix_rule(pattern=[",
        'prefix_rule(pattern=["a"], decision="maybe")',
        "prefix_rule(pattern=[])",
    ):
        with pytest.raises(ValueError):
            parse_rules(bad)


def test_unknown_policy_is_an_error() -> None:
    with pytest.raises(ValueError):
        exec_(TOUCH, "sometimes", "read-only")
    with pytest.raises(ValueError):
        safety.sandbox_kind({"type": "bogus"})


# ---------------------------------------------------------------------------------------------
# After a sandbox denial


@pytest.mark.parametrize(
    ("policy", "exec_retry", "patch_retry"),
    [
        ("on-failure", True, True),
        ("untrusted", True, True),
        ("on-request", False, True),
        ("never", False, False),
    ],
)
def test_retry_without_sandbox(policy: str, exec_retry: bool, patch_retry: bool) -> None:
    assert retry_without_sandbox_allowed(policy) is exec_retry
    assert retry_without_sandbox_allowed(policy, "patch") is patch_retry
    assert retry_decision("exec", policy, user_approved=False) == ("ask" if exec_retry else "no_retry")
    assert retry_decision("exec", policy, user_approved=True) == ("run" if exec_retry else "no_retry")
    assert retry_decision("exec", policy, user_approved=False, cached_for_session=True) == (
        "run" if exec_retry else "no_retry"
    )
    # A patch's retry request does not look at the session's approved files.
    assert retry_decision("patch", policy, user_approved=False, cached_for_session=True) == (
        "ask" if patch_retry else "no_retry"
    )
    assert safety.RETRY_WITHOUT_SANDBOX_REASON == "command failed; retry without sandbox?"


@pytest.mark.parametrize(
    ("exit_code", "stdout", "stderr", "denied"),
    [
        (3, "", "", False),
        (127, "", "", False),
        (2, "", "", False),
        (1, "", "", False),
        (2, "", "Permission denied\n", True),
        (126, "operation not permitted\n", "", True),
        (1, "", "touch: cannot touch 'f.txt': Read-only file system\n", True),
        (101, "", b"panicked at linux-sandbox/src/main.rs", True),
        (159, "", "", True),
        (0, "landlock", "", False),
    ],
)
def test_sandbox_denial_detection(exit_code: int, stdout: str, stderr: str | bytes, denied: bool) -> None:
    assert is_likely_sandbox_denied(exit_code, stdout, stderr, sandboxed=True) is denied
    assert is_likely_sandbox_denied(exit_code, stdout, stderr, sandboxed=False) is False


def test_timeouts_are_not_sandbox_denials() -> None:
    assert not is_likely_sandbox_denied(1, "", "Permission denied", sandboxed=True, timed_out=True)


# ---------------------------------------------------------------------------------------------
# Patches


OUTSIDE = Path("/elsewhere/x.txt")


@pytest.mark.parametrize(
    ("policy", "sandbox", "paths", "expected"),
    [
        ("on-request", "workspace-write", ["in1.txt"], PatchAssessment("run", True, auto_approved=True)),
        ("on-request", "workspace-write", [OUTSIDE], PatchAssessment("ask", True)),
        ("on-request", "workspace-write", ["in.txt", OUTSIDE], PatchAssessment("ask", True)),
        (
            "never",
            "workspace-write",
            [OUTSIDE],
            PatchAssessment(
                "reject",
                False,
                "patch rejected: writing outside of the project; rejected by user approval settings",
            ),
        ),
        ("never", "workspace-write", ["in.txt"], PatchAssessment("run", True, auto_approved=True)),
        ("on-failure", "workspace-write", [OUTSIDE], PatchAssessment("run", True, auto_approved=True)),
        ("on-request", "read-only", ["in5.txt"], PatchAssessment("ask", True)),
        (
            "never",
            "read-only",
            ["in7.txt"],
            PatchAssessment(
                "reject",
                False,
                "patch rejected: writing outside of the project; rejected by user approval settings",
            ),
        ),
        ("on-failure", "read-only", ["in8.txt"], PatchAssessment("run", True, auto_approved=True)),
        ("untrusted", "workspace-write", ["in.txt"], PatchAssessment("ask", True)),
        ("untrusted", "danger-full-access", ["in.txt"], PatchAssessment("ask", False)),
        ("on-request", "danger-full-access", [OUTSIDE], PatchAssessment("run", False, auto_approved=True)),
        ("never", "danger-full-access", [OUTSIDE], PatchAssessment("run", False, auto_approved=True)),
        (
            "on-request",
            "workspace-write",
            [],
            PatchAssessment("reject", False, "patch rejected: empty patch"),
        ),
    ],
)
def test_assess_patch(policy: str, sandbox: str, paths: list[Path | str], expected: PatchAssessment) -> None:
    result = assess_patch(
        [Path(p) for p in paths], cwd=CWD, approval_policy=policy, sandbox_policy=SANDBOXES[sandbox]
    )
    assert result == expected


def test_patch_session_approval_covers_only_remembered_files() -> None:
    approved = set(patch_approval_keys([Path("s1.txt")], CWD))
    assert approved == {Path("/w/s1.txt")}
    again = assess_patch(
        [Path("./s1.txt")],
        cwd=CWD,
        approval_policy="untrusted",
        sandbox_policy=DFA,
        approved_for_session=approved,
    )
    assert again == PatchAssessment("run", False, user_approved=True)
    more = assess_patch(
        [Path("s1.txt"), Path("s3.txt")],
        cwd=CWD,
        approval_policy="untrusted",
        sandbox_policy=DFA,
        approved_for_session=approved,
    )
    assert more.action == "ask"


def test_git_and_codex_folders_stay_read_only(tmp_path: Path) -> None:
    (tmp_path / ".git" / "hooks").mkdir(parents=True)
    (tmp_path / ".codex").mkdir()
    common = {"cwd": tmp_path, "approval_policy": "on-request", "sandbox_policy": WS}
    assert assess_patch([Path("src/a.py")], **common).action == "run"
    assert assess_patch([Path(".git/hooks/x")], **common).action == "ask"
    assert assess_patch([Path(".codex/config.toml")], **common).action == "ask"
    assert assess_patch([Path(".gitignore")], **common).action == "run"
    assert assess_patch([Path("sub/../../escape.txt")], **common).action == "ask"


def test_worktree_git_file_protects_its_gitdir(tmp_path: Path) -> None:
    (tmp_path / "gitdata").mkdir()
    (tmp_path / ".git").write_text("gitdir: gitdata\n")
    assert not patch_allowed_in_sandbox([Path(".git")], cwd=tmp_path, sandbox_policy=WS)
    assert not patch_allowed_in_sandbox([Path("gitdata/HEAD")], cwd=tmp_path, sandbox_policy=WS)
    assert patch_allowed_in_sandbox([Path("gitdatax/HEAD"), Path("a.txt")], cwd=tmp_path, sandbox_policy=WS)


def test_writable_roots(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    policy = {
        "type": "workspaceWrite",
        "writableRoots": [str(extra)],
        "networkAccess": False,
        "excludeTmpdirEnvVar": False,
        "excludeSlashTmp": False,
    }
    roots = [r.root for r in writable_roots(policy, Path("/w"), env={"TMPDIR": "/var/tmpdir"})]
    assert roots == [extra, Path("/w"), Path("/tmp"), Path("/var/tmpdir")]
    excluded = dict(policy, excludeTmpdirEnvVar=True, excludeSlashTmp=True)
    assert [r.root for r in writable_roots(excluded, Path("/w"), env={"TMPDIR": "/var/tmpdir"})] == [
        extra,
        Path("/w"),
    ]
    legacy = {"type": "workspace-write", "writable_roots": [], "exclude_slash_tmp": True}
    assert [r.root for r in writable_roots(legacy, Path("/w"), env={})] == [Path("/w")]
    assert writable_roots(RO, Path("/w")) == []
    assert writable_roots(DFA, Path("/w")) == []
    assert patch_allowed_in_sandbox([Path("/tmp/x")], cwd=Path("/w"), sandbox_policy=policy, env={})
    assert patch_allowed_in_sandbox([extra / "y"], cwd=Path("/w"), sandbox_policy=policy, env={})
    assert not patch_allowed_in_sandbox([Path("/etc/x")], cwd=Path("/w"), sandbox_policy=policy, env={})
    assert not patch_allowed_in_sandbox([Path("x")], cwd=Path("/w"), sandbox_policy=RO)
    assert patch_allowed_in_sandbox(
        [Path("/etc/x")], cwd=Path("/w"), sandbox_policy={"type": "externalSandbox"}
    )


# ---------------------------------------------------------------------------------------------
# Client answers


@pytest.mark.parametrize("kind", ["exec", "patch"])
@pytest.mark.parametrize(
    ("response", "decision", "item_status"),
    [
        ({"decision": "accept"}, "approved", None),
        ({"decision": "acceptForSession"}, "approved_for_session", None),
        ({"decision": "decline"}, "denied", "declined"),
        ({"decision": "cancel"}, "abort", "declined"),
        ({"decision": "bogus"}, "denied", "declined"),
        ({"decision": "accept", "extra": 1}, "approved", None),
        ({}, "denied", "declined"),
        (None, "denied", "declined"),
        ("accept", "denied", "declined"),
    ],
)
def test_v2_decisions(kind: str, response: Any, decision: str, item_status: str | None) -> None:
    assert decision_from_v2(response, kind) == decision
    outcome = approval_outcome(response, kind)
    assert (outcome.decision, outcome.item_status) == (decision, item_status)


def test_accept_with_execpolicy_amendment() -> None:
    answer = {"decision": {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["touch"]}}}
    assert decision_from_v2(answer, "exec") == {
        "approved_execpolicy_amendment": {"proposed_execpolicy_amendment": ["touch"]}
    }
    # File changes have no such decision: the answer is unreadable, so it declines.
    assert decision_from_v2(answer, "patch") == "denied"
    for bad in (
        {"decision": {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": "touch"}}},
        {"decision": {"acceptWithExecpolicyAmendment": {}}},
        {"decision": {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": []}, "accept": None}},
    ):
        assert decision_from_v2(bad, "exec") == "denied"


@pytest.mark.parametrize("kind", ["exec", "patch"])
def test_error_reply_fails_the_item(kind: str) -> None:
    outcome = approval_outcome({"decision": "accept"}, kind, client_error=True)
    assert (outcome.decision, outcome.item_status) == ("denied", "failed")


@pytest.mark.parametrize(
    ("argv", "amendment"),
    [
        (["cd", "x", "&&", "cat", "y"], ["cd", "x", "&&", "cat", "y"]),
        (["rg", "--files"], ["rg", "--files"]),
        (["/bin/zsh", "-lc", "cat README.md"], ["cat", "README.md"]),
    ],
)
def test_known_safe_command_carries_its_amendment_for_the_retry_request(
    argv: list[str], amendment: list[str]
) -> None:
    # Seen when these failed in the reference's sandbox under `untrusted`: no first approval, then
    # the retry request proposed exactly these words.
    result = exec_(argv, "untrusted", "read-only")
    assert result == ExecAssessment(action="run", sandboxed=True, proposed_execpolicy_amendment=amendment)
    assert retry_decision("exec", "untrusted", user_approved=result.user_approved) == "ask"
