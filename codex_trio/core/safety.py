"""Approval and sandbox decisions for commands and patches, as the reference (Codex 0.94) makes them.

Pure functions: the tool framework asks here before it runs a command or a patch and does what the
answer says (run, ask the client, or refuse), and asks again after a sandbox denial whether it may
retry without the sandbox. Nothing here runs a process or touches the network; the only filesystem
access is the check for protected ``.git``/``.codex`` folders under a writable root.

Texts the model or the client sees (rejections, reasons) are the reference's, byte for byte.
"""

from __future__ import annotations

import ast
import json
import os
import posixpath
from collections.abc import Hashable, Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .parse_command import is_valid_sed_n_arg, parse_shell_lc_plain_commands, shlex_join

# The core's answer to an approval (the legacy ReviewDecision): one of the four strings, or
# {"approved_execpolicy_amendment": {"proposed_execpolicy_amendment": [...]}}.
ReviewDecision = Literal["approved", "approved_for_session", "denied", "abort"] | dict[str, Any]
Decision = Literal["allow", "prompt", "forbidden"]

REJECTED_EXEC = "exec command rejected by user"
REJECTED_PATCH = "patch rejected by user"
RETRY_WITHOUT_SANDBOX_REASON = "command failed; retry without sandbox?"
PROMPT_CONFLICT_REASON = "approval required by policy, but AskForApproval is set to Never"
PATCH_OUTSIDE_PROJECT = "writing outside of the project; rejected by user approval settings"
AMENDMENT_SAVED_PREFIX = "Approved command prefix saved:"

# How the reference spells the policies in texts the model sees (Rust Debug names).
_POLICY_DEBUG = {
    "untrusted": "UnlessTrusted",
    "on-failure": "OnFailure",
    "on-request": "OnRequest",
    "never": "Never",
}

# Output that suggests the sandbox, not the command, made it fail (case-insensitive).
_SANDBOX_DENIED_KEYWORDS = (
    "operation not permitted",
    "permission denied",
    "read-only file system",
    "seccomp",
    "sandbox",
    "landlock",
    "failed to write file",
)
# Exit codes a shell uses for its own errors: without a keyword they are not a denial.
_QUICK_REJECT_EXIT_CODES = (2, 126, 127)
_SIGSYS_EXIT_CODE = 128 + 31


# ---------------------------------------------------------------------------------------------
# Sandbox policies (the v2 shapes; the legacy kebab-case ones are accepted too)


def sandbox_kind(
    sandbox_policy: Mapping[str, Any],
) -> Literal["read-only", "workspace-write", "danger", "external"]:
    kind = sandbox_policy.get("type")
    if kind in ("readOnly", "read-only"):
        return "read-only"
    if kind in ("workspaceWrite", "workspace-write"):
        return "workspace-write"
    if kind in ("dangerFullAccess", "danger-full-access"):
        return "danger"
    if kind in ("externalSandbox", "external-sandbox"):
        return "external"
    raise ValueError(f"unknown sandbox policy type: {kind!r}")


def _policy_field(sandbox_policy: Mapping[str, Any], camel: str, snake: str, default: Any) -> Any:
    if camel in sandbox_policy:
        return sandbox_policy[camel]
    return sandbox_policy.get(snake, default)


def uses_platform_sandbox(sandbox_policy: Mapping[str, Any]) -> bool:
    """Whether commands run inside our sandbox at all (not under full access or an external one)."""
    return sandbox_kind(sandbox_policy) in ("read-only", "workspace-write")


@dataclass(frozen=True)
class WritableRoot:
    """A folder the sandbox lets commands write under, minus its protected subfolders."""

    root: Path
    read_only_subpaths: tuple[Path, ...] = ()

    def is_path_writable(self, path: Path) -> bool:
        if not _is_within(path, self.root):
            return False
        return not any(_is_within(path, sub) for sub in self.read_only_subpaths)


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _normalize(path: Path) -> Path:
    # `..` and `.` are resolved lexically, without touching the filesystem (the file may not
    # exist yet), as the reference does before comparing with the roots.
    return Path(posixpath.normpath(str(path))) if str(path) else path


def writable_roots(
    sandbox_policy: Mapping[str, Any], cwd: Path, env: Mapping[str, str] | None = None
) -> list[WritableRoot]:
    """The roots a workspace-write sandbox makes writable: the configured ones, the cwd, ``/tmp``
    (unless excluded) and ``$TMPDIR`` (unless excluded); each keeps its ``.git`` (and ``.codex``)
    read-only when present. Other policies have none (read-only) or need none (full access)."""
    if sandbox_kind(sandbox_policy) != "workspace-write":
        return []
    environ = os.environ if env is None else env
    roots = [Path(p) for p in _policy_field(sandbox_policy, "writableRoots", "writable_roots", []) or []]
    roots.append(Path(cwd))
    if (
        not _policy_field(sandbox_policy, "excludeSlashTmp", "exclude_slash_tmp", False)
        and Path("/tmp").is_dir()
    ):
        roots.append(Path("/tmp"))
    tmpdir = environ.get("TMPDIR", "")
    exclude_tmpdir = _policy_field(sandbox_policy, "excludeTmpdirEnvVar", "exclude_tmpdir_env_var", False)
    if not exclude_tmpdir and tmpdir and Path(tmpdir).is_absolute():
        roots.append(Path(tmpdir))
    return [
        WritableRoot(root=_normalize(root), read_only_subpaths=_protected_subpaths(root)) for root in roots
    ]


def _protected_subpaths(root: Path) -> tuple[Path, ...]:
    subpaths: list[Path] = []
    git = root / ".git"
    if git.is_dir():
        subpaths.append(_normalize(git))
    elif git.is_file():
        # A worktree's `.git` file points at the real git dir; both stay read-only.
        subpaths.append(_normalize(git))
        gitdir = _gitdir_from_pointer(git)
        if gitdir is not None:
            subpaths.append(gitdir)
    dot_codex = root / ".codex"
    if dot_codex.is_dir():
        subpaths.append(_normalize(dot_codex))
    return tuple(subpaths)


def _gitdir_from_pointer(pointer: Path) -> Path | None:
    try:
        text = pointer.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.startswith("gitdir:"):
            target = Path(line.removeprefix("gitdir:").strip())
            return _normalize(target if target.is_absolute() else pointer.parent / target)
    return None


# ---------------------------------------------------------------------------------------------
# Known-safe and dangerous commands


_SAFE_PROGRAMS = frozenset(
    {
        "cat", "cd", "cut", "echo", "expr", "false", "grep", "head", "id", "ls", "nl", "paste", "pwd", "rev",
        "seq", "stat", "tail", "tr", "true", "uname", "uniq", "wc", "which", "whoami", "numfmt", "tac",
    }
)  # fmt: skip
_UNSAFE_FIND_OPTIONS = frozenset(
    {"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fls", "-fprint", "-fprint0", "-fprintf"}
)
_READ_ONLY_GIT_SUBCOMMANDS = frozenset({"branch", "status", "log", "diff", "show"})


def _is_safe_to_call_with_exec(argv: Sequence[str]) -> bool:
    if not argv:
        return False
    program = posixpath.basename(argv[0])
    args = argv[1:]
    if program in _SAFE_PROGRAMS:
        return True
    if program == "base64":
        return not any(
            a in ("-o", "--output") or a.startswith("--output=") or (a.startswith("-o") and a != "-o")
            for a in args
        )
    if program == "find":
        return not any(a in _UNSAFE_FIND_OPTIONS for a in argv)
    if program == "rg":
        return not any(
            a in ("--search-zip", "-z")
            or a in ("--pre", "--hostname-bin")
            or a.startswith("--pre=")
            or a.startswith("--hostname-bin=")
            for a in argv
        )
    if program == "git":
        # 0.94 looks only at the word right after `git`: `git -C . status` is not known safe.
        return bool(args) and args[0] in _READ_ONLY_GIT_SUBCOMMANDS
    if program == "sed":
        return len(argv) <= 4 and len(argv) > 2 and argv[1] == "-n" and is_valid_sed_n_arg(argv[2])
    return False


def is_known_safe_command(argv: Sequence[str]) -> bool:
    """Read-only commands that run without asking even under ``untrusted``: ``ls``, ``cat``,
    ``git status``, ``sed -n 1,5p f``… and ``bash -lc "<script>"`` whose plain commands (joined by
    ``&&``, ``||``, ``;``, ``|``; no redirection, expansion or substitution) are all such."""
    argv = ["bash" if word == "zsh" else word for word in argv]
    if _is_safe_to_call_with_exec(argv):
        return True
    commands = parse_shell_lc_plain_commands(argv)
    return commands is not None and len(commands) > 0 and all(_is_safe_to_call_with_exec(c) for c in commands)


def _is_dangerous_to_call_with_exec(argv: Sequence[str]) -> bool:
    if not argv:
        return False
    program = argv[0]
    second = argv[1] if len(argv) > 1 else None
    if program.endswith("git"):
        return second in ("reset", "rm")
    if program == "rm":
        return second in ("-f", "-rf")
    if program == "sudo":
        return _is_dangerous_to_call_with_exec(argv[1:])
    return False


def command_might_be_dangerous(argv: Sequence[str]) -> bool:
    """``git reset``, ``git rm``, ``rm -f``/``rm -rf`` (also behind ``sudo``, and inside a plain
    ``bash -lc`` script): never run without asking; refused outright under ``never``."""
    if _is_dangerous_to_call_with_exec(argv):
        return True
    commands = parse_shell_lc_plain_commands(argv)
    return commands is not None and any(_is_dangerous_to_call_with_exec(c) for c in commands)


# ---------------------------------------------------------------------------------------------
# Execpolicy rules (`prefix_rule(...)` in $CODEX_HOME/rules/*.rules)


@dataclass(frozen=True)
class PrefixRule:
    """Commands starting with ``pattern`` get ``decision``. A pattern element may be a tuple of
    alternatives (``["git", ["status", "log"]]`` in the rules file)."""

    pattern: tuple[str | tuple[str, ...], ...]
    decision: Decision = "allow"
    justification: str | None = None

    def matches(self, argv: Sequence[str]) -> bool:
        if not self.pattern or len(argv) < len(self.pattern):
            return False
        for want, have in zip(self.pattern, argv[: len(self.pattern)], strict=True):
            if isinstance(want, tuple):
                if have not in want:
                    return False
            elif have != want:
                return False
        return True

    def shown_prefix(self, argv: Sequence[str]) -> list[str]:
        return list(argv[: len(self.pattern)])


_SEVERITY: dict[Decision, int] = {"allow": 0, "prompt": 1, "forbidden": 2}


def parse_rules(text: str) -> list[PrefixRule]:
    """The ``prefix_rule(pattern=[...], decision="...", justification="...")`` calls of a rules
    file. Raises :class:`ValueError` for a file that is not valid or uses an unknown decision."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise ValueError(f"invalid rules file: {exc.msg} (line {exc.lineno})") from None
    rules: list[PrefixRule] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "prefix_rule"
        ):
            continue
        kwargs = {kw.arg: kw.value for kw in node.keywords if kw.arg is not None}
        try:
            pattern = ast.literal_eval(kwargs["pattern"])
            decision = ast.literal_eval(kwargs["decision"]) if "decision" in kwargs else "allow"
            justification = ast.literal_eval(kwargs["justification"]) if "justification" in kwargs else None
        except (KeyError, ValueError) as exc:
            raise ValueError(f"invalid prefix_rule on line {node.lineno}") from exc
        if decision not in _SEVERITY:
            raise ValueError(f"invalid decision {decision!r} on line {node.lineno}")
        if not isinstance(pattern, list) or not pattern:
            raise ValueError(f"invalid pattern on line {node.lineno}")
        elements: list[str | tuple[str, ...]] = []
        for element in pattern:
            if isinstance(element, str):
                elements.append(element)
            elif isinstance(element, list) and element and all(isinstance(e, str) for e in element):
                elements.append(tuple(element))
            else:
                raise ValueError(f"invalid pattern on line {node.lineno}")
        if justification is not None and not isinstance(justification, str):
            raise ValueError(f"invalid justification on line {node.lineno}")
        rules.append(PrefixRule(pattern=tuple(elements), decision=decision, justification=justification))
    return rules


def format_allow_rule(prefix: Sequence[str]) -> str:
    """The line the reference appends to ``$CODEX_HOME/rules/default.rules`` for an accepted
    execpolicy amendment: ``prefix_rule(pattern=["touch"], decision="allow")`` plus a newline."""
    words = ", ".join(json.dumps(word, ensure_ascii=False) for word in prefix)
    return f'prefix_rule(pattern=[{words}], decision="allow")\n'


def amendment_saved_message(prefix: Sequence[str]) -> str:
    """The developer message the reference adds to the history (before the call's output) when
    the user accepts a command with an execpolicy amendment."""
    return f"{AMENDMENT_SAVED_PREFIX}\n- {json.dumps(list(prefix), ensure_ascii=False)}"


# ---------------------------------------------------------------------------------------------
# Commands


def exec_approval_key(
    argv: Sequence[str], cwd: Path | str, sandbox_permissions: str | None = None
) -> tuple[tuple[str, ...], str, str]:
    """What an ``acceptForSession`` remembers: the same argv in the same cwd with the same
    sandbox permissions is not asked about again; any difference asks again."""
    return tuple(argv), str(cwd), sandbox_permissions or "use_default"


@dataclass(frozen=True)
class ExecAssessment:
    """What to do with a command before running it.

    ``action``:
      - ``"run"``: run it (``sandboxed`` says whether inside the sandbox);
      - ``"ask"``: send an approval request with ``reason`` and ``proposed_execpolicy_amendment``,
        then run it (sandboxed as ``sandboxed`` says) if approved;
      - ``"reject"``: answer the model with ``reason`` at once, before any item or event;
      - ``"forbidden"``: the command's item starts, then ends ``failed`` with ``reason`` as its
        output (exit code -1, no process), and the model gets ``reason``.

    ``user_approved`` is set when "run" comes from an earlier ``acceptForSession``: a retry after
    a sandbox denial then needs no new approval. ``proposed_execpolicy_amendment`` also goes with
    the retry request after a sandbox denial, for "run" as well.
    """

    action: Literal["run", "ask", "reject", "forbidden"]
    sandboxed: bool
    reason: str | None = None
    proposed_execpolicy_amendment: list[str] | None = None
    user_approved: bool = False


@dataclass(frozen=True)
class _Evaluation:
    decision: Decision
    matched_rules: tuple[tuple[PrefixRule, tuple[str, ...]], ...]
    heuristic_matches: tuple[tuple[Decision, tuple[str, ...]], ...]


def commands_for_policy(argv: Sequence[str]) -> list[list[str]]:
    """The commands a policy looks at: those of a plain ``bash -lc`` script, else the argv."""
    commands = parse_shell_lc_plain_commands(argv)
    return commands if commands else [list(argv)]


def _unmatched_decision(
    argv: Sequence[str], approval_policy: str, sandbox_policy: Mapping[str, Any], escalated: bool
) -> Decision:
    if is_known_safe_command(argv):
        return "allow"
    if command_might_be_dangerous(argv):
        return "forbidden" if approval_policy == "never" else "prompt"
    if approval_policy in ("never", "on-failure"):
        # Nothing to ask about: the sandbox is the protection.
        return "allow"
    if approval_policy == "untrusted":
        return "prompt"
    if approval_policy == "on-request":
        if not uses_platform_sandbox(sandbox_policy):
            return "allow"
        return "prompt" if escalated else "allow"
    raise ValueError(f"unknown approval policy: {approval_policy!r}")


def _evaluate(
    commands: Sequence[Sequence[str]],
    rules: Sequence[PrefixRule],
    approval_policy: str,
    sandbox_policy: Mapping[str, Any],
    escalated: bool,
) -> _Evaluation:
    decision: Decision = "allow"
    matched: list[tuple[PrefixRule, tuple[str, ...]]] = []
    heuristics: list[tuple[Decision, tuple[str, ...]]] = []
    for command in commands:
        hits = [rule for rule in rules if rule.matches(command)]
        if hits:
            matched.extend((rule, tuple(command)) for rule in hits)
            current = max((rule.decision for rule in hits), key=_SEVERITY.__getitem__)
        else:
            current = _unmatched_decision(command, approval_policy, sandbox_policy, escalated)
            heuristics.append((current, tuple(command)))
        if _SEVERITY[current] > _SEVERITY[decision]:
            decision = current
    return _Evaluation(decision, tuple(matched), tuple(heuristics))


def _most_specific(evaluation: _Evaluation, decision: Decision) -> tuple[PrefixRule, tuple[str, ...]] | None:
    hits = [(rule, cmd) for rule, cmd in evaluation.matched_rules if rule.decision == decision]
    return max(hits, key=lambda hit: len(hit[0].pattern)) if hits else None


def _forbidden_reason(argv: Sequence[str], evaluation: _Evaluation) -> str:
    command = shlex_join(argv)
    hit = _most_specific(evaluation, "forbidden")
    if hit is None:
        return f"`{command}` rejected: blocked by policy"
    rule, matched_command = hit
    if rule.justification is not None:
        return f"`{command}` rejected: {rule.justification}"
    prefix = shlex_join(rule.shown_prefix(matched_command))
    return f"`{command}` rejected: policy forbids commands starting with `{prefix}`"


def _prompt_reason(argv: Sequence[str], evaluation: _Evaluation) -> str | None:
    hit = _most_specific(evaluation, "prompt")
    if hit is None:
        return None
    command = shlex_join(argv)
    if hit[0].justification is not None:
        return f"`{command}` requires approval: {hit[0].justification}"
    return f"`{command}` requires approval by policy"


def escalation_rejection(approval_policy: str) -> str:
    """What the model hears when it asks for ``require_escalated`` outside ``on-request``."""
    name = _POLICY_DEBUG[approval_policy]
    return (
        f"approval policy is {name}; reject command — you should not ask for escalated permissions "
        f"if the approval policy is {name}"
    )


def assess_exec(
    argv: Sequence[str],
    *,
    cwd: Path | str,
    approval_policy: str,
    sandbox_policy: Mapping[str, Any],
    sandbox_permissions: str | None = None,
    justification: str | None = None,
    prefix_rule: Sequence[str] | None = None,
    approved_for_session: Set[Hashable] = frozenset(),
    rules: Sequence[PrefixRule] = (),
) -> ExecAssessment:
    """Decide what to do with a ``shell``/``shell_command``/``local_shell`` command.

    ``approved_for_session`` holds :func:`exec_approval_key` values of commands the user accepted
    for the session; ``rules`` are the execpolicy rules (from the rules files and amendments
    accepted in this session, see :func:`parse_rules`); ``prefix_rule`` is the model's suggested
    prefix, proposed to the user as the amendment when given.
    """
    if approval_policy not in _POLICY_DEBUG:
        raise ValueError(f"unknown approval policy: {approval_policy!r}")
    escalated = sandbox_permissions == "require_escalated"
    if escalated and approval_policy != "on-request":
        return ExecAssessment(action="reject", sandboxed=False, reason=escalation_rejection(approval_policy))
    commands = commands_for_policy(argv)
    evaluation = _evaluate(commands, rules, approval_policy, sandbox_policy, escalated)
    platform_sandbox = uses_platform_sandbox(sandbox_policy)
    if evaluation.decision == "forbidden":
        return ExecAssessment(action="forbidden", sandboxed=False, reason=_forbidden_reason(argv, evaluation))
    if evaluation.decision == "prompt":
        prompt_rule_matched = _most_specific(evaluation, "prompt") is not None
        if approval_policy == "never":
            return ExecAssessment(action="forbidden", sandboxed=False, reason=PROMPT_CONFLICT_REASON)
        amendment: list[str] | None = list(prefix_rule) if prefix_rule else None
        if amendment is None and not prompt_rule_matched:
            amendment = next((list(cmd) for d, cmd in evaluation.heuristic_matches if d == "prompt"), None)
        sandboxed = platform_sandbox and not escalated
        if exec_approval_key(argv, cwd, sandbox_permissions) in approved_for_session:
            return ExecAssessment(
                action="run", sandboxed=sandboxed, proposed_execpolicy_amendment=amendment, user_approved=True
            )
        reason = _prompt_reason(argv, evaluation)
        return ExecAssessment(
            action="ask",
            sandboxed=sandboxed,
            reason=reason if reason is not None else justification,
            proposed_execpolicy_amendment=amendment,
        )
    # Allowed. 0.94 skips the sandbox when any command matched an allow rule.
    allow_rule_matched = any(rule.decision == "allow" for rule, _ in evaluation.matched_rules)
    amendment = None
    if not evaluation.matched_rules:
        amendment = next((list(cmd) for d, cmd in evaluation.heuristic_matches if d == "allow"), None)
    return ExecAssessment(
        action="run",
        sandboxed=platform_sandbox and not escalated and not allow_rule_matched,
        proposed_execpolicy_amendment=amendment,
    )


def is_likely_sandbox_denied(
    exit_code: int, stdout: str | bytes, stderr: str | bytes, *, sandboxed: bool, timed_out: bool = False
) -> bool:
    """Whether a failed sandboxed run looks like the sandbox's doing: a denial word in its output
    (even with exit 2/126/127), or death by SIGSYS (seccomp). Anything else is the command's own
    failure and goes back to the model as is."""
    if not sandboxed or timed_out or exit_code == 0:
        return False
    for section in (stdout, stderr):
        text = section.decode("utf-8", "replace") if isinstance(section, bytes) else section
        lowered = text.lower()
        if any(keyword in lowered for keyword in _SANDBOX_DENIED_KEYWORDS):
            return True
    if exit_code in _QUICK_REJECT_EXIT_CODES:
        return False
    return exit_code == _SIGSYS_EXIT_CODE


def retry_without_sandbox_allowed(approval_policy: str, kind: Literal["exec", "patch"] = "exec") -> bool:
    """After a sandbox denial, whether the reference offers to rerun without the sandbox (asking
    with :data:`RETRY_WITHOUT_SANDBOX_REASON` unless already approved): commands under
    ``on-failure`` and ``untrusted``; patches under every policy but ``never``. Otherwise the
    failed output goes back to the model."""
    if approval_policy not in _POLICY_DEBUG:
        raise ValueError(f"unknown approval policy: {approval_policy!r}")
    if kind == "patch":
        return approval_policy != "never"
    return approval_policy in ("on-failure", "untrusted")


def retry_decision(
    kind: Literal["exec", "patch"],
    approval_policy: str,
    *,
    user_approved: bool,
    cached_for_session: bool = False,
) -> Literal["no_retry", "ask", "run"]:
    """The step after a sandbox denial: give the failure to the model (``no_retry``), ask with
    :data:`RETRY_WITHOUT_SANDBOX_REASON` (``ask``), or rerun unsandboxed at once (``run``: the user
    already approved this call, or, for commands, accepted the same one for the session)."""
    if not retry_without_sandbox_allowed(approval_policy, kind):
        return "no_retry"
    if user_approved or (kind == "exec" and cached_for_session):
        return "run"
    return "ask"


# ---------------------------------------------------------------------------------------------
# Patches


@dataclass(frozen=True)
class PatchAssessment:
    """What to do with an ``apply_patch`` call.

    ``action``: ``"run"`` (apply; ``auto_approved`` is what ``patch_apply_begin`` reports),
    ``"ask"`` (send ``item/fileChange/requestApproval`` with ``reason``/``grant_root``), or
    ``"reject"`` (answer the model with ``reason`` before any item). ``sandboxed``: the write is
    held to the sandbox's writable roots first (see :func:`patch_allowed_in_sandbox`).
    """

    action: Literal["run", "ask", "reject"]
    sandboxed: bool
    reason: str | None = None
    grant_root: str | None = None
    auto_approved: bool = False
    user_approved: bool = False


def _absolute(path: Path, cwd: Path) -> Path:
    return _normalize(path if path.is_absolute() else Path(cwd) / path)


def patch_allowed_in_sandbox(
    paths: Sequence[Path],
    *,
    cwd: Path,
    sandbox_policy: Mapping[str, Any],
    roots: Sequence[WritableRoot] | None = None,
    env: Mapping[str, str] | None = None,
) -> bool:
    """Whether every path (added, deleted, updated, or a move's destination) may be written under
    the policy: always under full/external access, never read-only, and under workspace-write
    only inside a writable root and outside its protected folders."""
    kind = sandbox_kind(sandbox_policy)
    if kind in ("danger", "external"):
        return True
    if kind == "read-only":
        return False
    usable = writable_roots(sandbox_policy, cwd, env) if roots is None else roots
    return all(any(root.is_path_writable(_absolute(p, cwd)) for root in usable) for p in paths)


def patch_approval_keys(paths: Sequence[Path], cwd: Path) -> list[Path]:
    """What ``acceptForSession`` on a patch remembers: each file, as an absolute path. A later
    patch is not asked about when all its files are remembered."""
    return [_absolute(p, cwd) for p in paths]


def assess_patch(
    paths: Sequence[Path],
    *,
    cwd: Path,
    approval_policy: str,
    sandbox_policy: Mapping[str, Any],
    approved_for_session: Set[Path] = frozenset(),
    roots: Sequence[WritableRoot] | None = None,
    env: Mapping[str, str] | None = None,
) -> PatchAssessment:
    """Decide what to do with a patch touching ``paths`` (relative to ``cwd`` or absolute; include
    a move's destination). ``approved_for_session`` holds :func:`patch_approval_keys` values."""
    if approval_policy not in _POLICY_DEBUG:
        raise ValueError(f"unknown approval policy: {approval_policy!r}")
    platform_sandbox = uses_platform_sandbox(sandbox_policy)
    if not paths:
        return PatchAssessment(action="reject", sandboxed=False, reason="patch rejected: empty patch")
    if approval_policy != "untrusted":
        constrained = patch_allowed_in_sandbox(
            paths, cwd=cwd, sandbox_policy=sandbox_policy, roots=roots, env=env
        )
        if constrained or approval_policy == "on-failure":
            return PatchAssessment(action="run", sandboxed=platform_sandbox, auto_approved=True)
        if approval_policy == "never":
            return PatchAssessment(
                action="reject", sandboxed=False, reason=f"patch rejected: {PATCH_OUTSIDE_PROJECT}"
            )
    keys = patch_approval_keys(paths, cwd)
    if all(key in approved_for_session for key in keys):
        return PatchAssessment(action="run", sandboxed=platform_sandbox, user_approved=True)
    return PatchAssessment(action="ask", sandboxed=platform_sandbox)


# ---------------------------------------------------------------------------------------------
# Client answers to v2 approval requests


@dataclass(frozen=True)
class ApprovalOutcome:
    """How the app-server turns a client's answer into the core's decision.

    ``item_status`` is the status of the ``item/completed`` the app-server sends at once for the
    pending item (``declined`` for decline/cancel/unreadable answers, ``failed`` for a JSON-RPC
    error reply), before the core's own failed completion; ``None`` when the call goes on.
    """

    decision: ReviewDecision
    item_status: Literal["declined", "failed"] | None


def decision_from_v2(response: Any, kind: str) -> ReviewDecision:
    """The core decision for a v2 approval response (the JSON-RPC ``result``):
    ``accept`` → ``approved``, ``acceptForSession`` → ``approved_for_session``,
    ``{"acceptWithExecpolicyAmendment": {"execpolicy_amendment": [...]}}`` (commands only) →
    ``{"approved_execpolicy_amendment": {"proposed_execpolicy_amendment": [...]}}``,
    ``decline`` → ``denied``, ``cancel`` → ``abort`` (the turn is interrupted). Anything else is
    read as ``decline``, as the reference does with an answer it cannot parse. ``kind`` is
    ``"exec"`` (item/commandExecution/requestApproval) or ``"patch"``
    (item/fileChange/requestApproval)."""
    return approval_outcome(response, kind).decision


def approval_outcome(response: Any, kind: str, *, client_error: bool = False) -> ApprovalOutcome:
    """:func:`decision_from_v2` plus the immediate item status; ``client_error=True`` for a
    JSON-RPC error reply (or a client gone before answering): ``denied`` with a ``failed`` item."""
    if client_error:
        return ApprovalOutcome("denied", "failed")
    decision = response.get("decision") if isinstance(response, Mapping) else None
    if decision == "accept":
        return ApprovalOutcome("approved", None)
    if decision == "acceptForSession":
        return ApprovalOutcome("approved_for_session", None)
    if decision == "cancel":
        return ApprovalOutcome("abort", "declined")
    if (
        kind == "exec"
        and isinstance(decision, Mapping)
        and set(decision) == {"acceptWithExecpolicyAmendment"}
    ):
        body = decision["acceptWithExecpolicyAmendment"]
        amendment = body.get("execpolicy_amendment") if isinstance(body, Mapping) else None
        if isinstance(amendment, list) and all(isinstance(word, str) for word in amendment):
            return ApprovalOutcome(
                {"approved_execpolicy_amendment": {"proposed_execpolicy_amendment": list(amendment)}}, None
            )
    return ApprovalOutcome("denied", "declined")
