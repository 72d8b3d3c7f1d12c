"""Code review (review/start): what a target asks the reviewer, how the reviewer is instructed, and what
its answer becomes in the thread that asked for the review.

A review runs like the reference's: a turn of the reviewed thread whose work is done by a separate
reviewer thread (its own id, history, rollout and review instructions). The reviewer's turn is an
ordinary turn; :class:`ReviewRun` relays its events into the reviewed turn the way the reference does
(hiding the reviewer's own messages in favour of the structured result), parses the final message as a
review (findings with locations, an overall verdict), and leaves the reviewed thread with two messages
that tell its model what the review found.

The wording of the prompts is ours; the output format (field names, the text rendering of findings, the
user-facing hints) is the interface clients and models rely on and matches the reference.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import trio

from . import events as ev
from .instructions import message

if TYPE_CHECKING:
    from .thread import ActiveTurn, CodexThread
    from .tools import ClientChannel, Decision

log = logging.getLogger(__name__)

REVIEW_FALLBACK_MESSAGE = "Reviewer failed to output a response."
# What the reviewed thread's assistant says when the review ended without a result (interrupted, or the
# reviewer failed): the reference's words, which clients show as the agent message.
REVIEW_INTERRUPTED_MESSAGE = "Review was interrupted. Please re-run /review and wait for it to complete."
# The id of the agent message item that carries the rendered review.
REVIEW_ASSISTANT_ITEM_ID = "review_rollout_assistant"
# Each git command that prepares a review prompt may take this long (as the reference bounds them).
GIT_TIMEOUT_SECONDS = 5.0

REVIEW_INSTRUCTIONS = """\
# Reviewing a code change

You review a change someone else wrote, the way a careful colleague would before it is merged. Read the
change (the task below says which: uncommitted work, a branch, a commit, or something the user
describes), read as much of the surrounding code as you need to understand it, and report the problems
that its author would want to know about. You may run read-only commands such as `git diff`, `git show`,
`git log`, `rg` or `cat`; do not modify files.

## What counts as a finding

Report an issue only when all of these hold:
- it is introduced by this change (not something that was already there);
- it has a real effect: a bug, a crash, data loss, a security hole, a performance problem that matters,
  broken behaviour for some input, or code that will clearly mislead the next reader;
- you can point at the lines that cause it and explain concretely how it goes wrong (which input, which
  sequence of calls), without guessing at intentions the author did not state;
- the author would fix it if told, rather than call it a matter of taste.

Leave out style preferences, naming debates, speculative "might be an issue" remarks, and anything a
formatter or linter would settle. One issue is one finding: do not repeat it per call site. If the change
is fine, say so and report no findings; an empty list is a good result.

## Writing a finding

- `title`: one short line, starting with the priority tag `[P0]`, `[P1]`, `[P2]` or `[P3]`, then the
  problem in plain words.
- `body`: a few sentences: what is wrong, when it happens, and what it breaks. Quote at most a few lines
  of code, in backticks. Be matter-of-fact; no praise, no blame.
- `priority`: 0 = must be fixed before anything else (data loss, security, nothing works); 1 = a real
  bug that should block the change; 2 = should be fixed soon; 3 = minor.
- `confidence_score`: between 0.0 and 1.0, how sure you are that the problem is real.
- `code_location`: the absolute path of the file and the smallest line range (`start`, `end`, inclusive)
  that shows the problem. The range must lie within the lines the change touches.

## Verdict

Finish with an overall verdict: `overall_correctness` is "patch is correct" when nothing blocks the
change and "patch is incorrect" otherwise; `overall_explanation` gives the reason in one to three
sentences; `overall_confidence_score` (0.0 to 1.0) says how sure you are of the verdict.

## Output

Your final message must be exactly one JSON object of this shape, with no Markdown fences and no text
around it:

{
  "findings": [
    {
      "title": "<[P0]-[P3] tag, then a short description>",
      "body": "<what goes wrong, when, and why>",
      "confidence_score": <number from 0.0 to 1.0>,
      "priority": <integer 0-3>,
      "code_location": {
        "absolute_file_path": "<absolute path>",
        "line_range": {"start": <line>, "end": <line>}
      }
    }
  ],
  "overall_correctness": "patch is correct" | "patch is incorrect",
  "overall_explanation": "<one to three sentences>",
  "overall_confidence_score": <number from 0.0 to 1.0>
}
"""


class ReviewLineRange(TypedDict):
    start: int
    end: int


class ReviewCodeLocation(TypedDict):
    absolute_file_path: str
    line_range: ReviewLineRange


class ReviewFinding(TypedDict):
    title: str
    body: str
    # The reference keeps scores as f32; None stands for a score too large for one (serialized null).
    confidence_score: float | None
    priority: int
    code_location: ReviewCodeLocation


class ReviewOutput(TypedDict):
    """The structured result of a review (the ``review_output`` of ``exited_review_mode``)."""

    findings: list[ReviewFinding]
    overall_correctness: str
    overall_explanation: str
    overall_confidence_score: float | None


class InvalidReviewTarget(Exception):
    """A review/start target that names nothing to review; the message is what the client sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ------------------------------------------------------------------------------------------------
# Targets

# Unicode White_Space, what the reference's str::trim strips (str.strip also strips a few control
# characters that are not whitespace there).
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def _trim(text: str) -> str:
    return text.strip(_WHITESPACE)


def normalize_target(target: Mapping[str, Any]) -> dict[str, Any]:
    """The target as the review runs it: its strings trimmed, a blank title dropped. Raises
    :class:`InvalidReviewTarget` when the branch, sha or instructions are blank."""
    kind = target["type"]
    if kind == "uncommittedChanges":
        return {"type": kind}
    if kind == "baseBranch":
        branch = _trim(target["branch"])
        if not branch:
            raise InvalidReviewTarget("branch must not be empty")
        return {"type": kind, "branch": branch}
    if kind == "commit":
        sha = _trim(target["sha"])
        if not sha:
            raise InvalidReviewTarget("sha must not be empty")
        title = _trim(target.get("title") or "") or None
        return {"type": kind, "sha": sha, "title": title}
    if kind == "custom":
        instructions = _trim(target["instructions"])
        if not instructions:
            raise InvalidReviewTarget("instructions must not be empty")
        return {"type": kind, "instructions": instructions}
    raise ValueError(f"unknown review target {kind!r}")


def user_facing_hint(target: Mapping[str, Any]) -> str:
    """How clients label a review of ``target`` (the enteredReviewMode item, the turn's user message)."""
    kind = target.get("type")
    if kind == "uncommittedChanges":
        return "current changes"
    if kind == "baseBranch":
        return f"changes against '{target['branch']}'"
    if kind == "commit":
        short_sha = str(target["sha"])[:7]
        title = target.get("title")
        return f"commit {short_sha}: {title}" if title is not None else f"commit {short_sha}"
    if kind == "custom":
        return _trim(str(target["instructions"]))
    raise ValueError(f"unknown review target {kind!r}")


async def review_prompt(
    target: Mapping[str, Any], cwd: Path, env: Mapping[str, str] | None = None
) -> str:
    """What the reviewer is asked to review: the user's own words for a custom review, otherwise a
    request naming the changes and the git command that shows them."""
    kind = target["type"]
    if kind == "uncommittedChanges":
        return (
            "Review the work in progress in this repository: every staged, unstaged and untracked "
            "change (see `git status`, `git diff --staged` and `git diff`). Report the issues you find, "
            "most important first."
        )
    if kind == "baseBranch":
        branch = target["branch"]
        base = await merge_base(cwd, branch, env)
        if base is not None:
            return (
                f"Review what the current branch changes compared with the base branch '{branch}'. "
                f"The two diverge at commit {base}, so `git diff {base}` shows the changes to review. "
                "Report the issues you find, most important first."
            )
        return (
            f"Review what the current branch changes compared with the base branch '{branch}'. First "
            f"find where they diverge: `git merge-base HEAD {branch}` (or, when '{branch}' tracks an "
            f"upstream branch, `git merge-base HEAD {branch}@{{upstream}}`), then review the output of "
            "`git diff` against that commit. Report the issues you find, most important first."
        )
    if kind == "commit":
        sha = target["sha"]
        title = target.get("title")
        named = f'commit {sha}, titled "{title}"' if title is not None else f"commit {sha}"
        return (
            f"Review the changes made by {named} (`git show {sha}` shows them). Report the issues you "
            "find, most important first."
        )
    if kind == "custom":
        return _trim(str(target["instructions"]))
    raise ValueError(f"unknown review target {kind!r}")


async def _git(cwd: Path, env: Mapping[str, str] | None, *args: str) -> str | None:
    """The trimmed output of a git command that succeeded in time, else None."""
    with trio.move_on_after(GIT_TIMEOUT_SECONDS):
        try:
            result = await trio.run_process(
                ["git", *args],
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=b"",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        except OSError:
            return None
        if result.returncode != 0:
            return None
        text = result.stdout.decode("utf-8", errors="replace").strip()
        return text or None
    return None


async def merge_base(cwd: Path, branch: str, env: Mapping[str, str] | None = None) -> str | None:
    """Where HEAD and ``branch`` diverge. When the branch tracks an upstream that has commits the local
    branch lacks, the upstream is the better base (it is what the changes would be merged into)."""
    if await _git(cwd, env, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}") is None:
        return None
    base = branch
    upstream = await _git(
        cwd, env, "rev-parse", "--abbrev-ref", "--symbolic-full-name", f"{branch}@{{upstream}}"
    )
    if upstream is not None:
        ahead = await _git(cwd, env, "rev-list", "--count", f"{branch}..{upstream}")
        if ahead is not None and ahead.isdigit() and int(ahead) > 0:
            base = upstream
    return await _git(cwd, env, "merge-base", "HEAD", base)


# ------------------------------------------------------------------------------------------------
# The reviewer's answer

_F32_MAX = 3.4028234663852886e38
_I32 = (-(2**31), 2**31 - 1)
_U32 = (0, 2**32 - 1)


class _NotAReview(Exception):
    pass


def _f32(value: Any) -> float | None:
    """A JSON number as the reference keeps it (an f32, widened again when serialized)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _NotAReview
    number = float(value)
    if math.isinf(number) or abs(number) > _F32_MAX:
        # Rust's `as f32` saturates to infinity, which JSON can only write as null.
        return None
    widened: float = struct.unpack("<f", struct.pack("<f", number))[0]
    return widened


def _int(value: Any, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise _NotAReview
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise _NotAReview
    return value


def _obj(value: Any, *keys: str) -> dict[str, Any]:
    if not isinstance(value, dict) or any(key not in value for key in keys):
        raise _NotAReview
    return value


def _finding(value: Any) -> ReviewFinding:
    raw = _obj(value, "title", "body", "confidence_score", "priority", "code_location")
    location = _obj(raw["code_location"], "absolute_file_path", "line_range")
    lines = _obj(location["line_range"], "start", "end")
    return {
        "title": _str(raw["title"]),
        "body": _str(raw["body"]),
        "confidence_score": _f32(raw["confidence_score"]),
        "priority": _int(raw["priority"], _I32),
        "code_location": {
            "absolute_file_path": _str(location["absolute_file_path"]),
            "line_range": {"start": _int(lines["start"], _U32), "end": _int(lines["end"], _U32)},
        },
    }


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _NotAReview
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise _NotAReview


def _strict_review(text: str) -> ReviewOutput:
    """``text`` as exactly one review object, as strictly as the reference's serde decoding takes it
    (every field present and of its type, no duplicate keys; unknown keys ignored)."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except ValueError:
        raise _NotAReview from None
    raw = _obj(value, "findings", "overall_correctness", "overall_explanation", "overall_confidence_score")
    findings = raw["findings"]
    if not isinstance(findings, list):
        raise _NotAReview
    return {
        "findings": [_finding(item) for item in findings],
        "overall_correctness": _str(raw["overall_correctness"]),
        "overall_explanation": _str(raw["overall_explanation"]),
        "overall_confidence_score": _f32(raw["overall_confidence_score"]),
    }


def parse_review_output(text: str) -> ReviewOutput:
    """The review in the reviewer's last message: the whole text as a review object, else the span from
    its first ``{`` to its last ``}``, else the text itself as the explanation of a review without
    findings."""
    try:
        return _strict_review(text)
    except _NotAReview:
        pass
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and start < end:
        try:
            return _strict_review(text[start : end + 1])
        except _NotAReview:
            pass
    return {
        "findings": [],
        "overall_correctness": "",
        "overall_explanation": text,
        "overall_confidence_score": 0.0,
    }


def _rust_lines(text: str) -> list[str]:
    # str::lines: split on "\n", drop one trailing "\r" per line, no empty last line.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def findings_block(findings: list[Any]) -> str:
    """The findings as the reference lists them: a heading, then per finding a ``- title — path:start-end``
    line and its body indented. Starts with a newline (callers strip or join it)."""
    lines = ["", "Full review comments:" if len(findings) > 1 else "Review comment:"]
    for finding in findings:
        location = finding["code_location"]
        line_range = location["line_range"]
        lines.append("")
        lines.append(
            f"- {finding['title']} — {location['absolute_file_path']}:"
            f"{line_range['start']}-{line_range['end']}"
        )
        lines.extend(f"  {body_line}" for body_line in _rust_lines(str(finding["body"])))
    return "\n".join(lines)


def render_review_output(output: Mapping[str, Any] | None) -> str:
    """The review as text: the explanation, then the findings. It is the exitedReviewMode item's text
    and the reviewed thread's assistant message."""
    if output is None:
        return REVIEW_FALLBACK_MESSAGE
    sections: list[str] = []
    explanation = str(output.get("overall_explanation", "")).strip()
    if explanation:
        sections.append(explanation)
    findings = output.get("findings") or []
    if findings:
        block = findings_block(findings).strip()
        if block:
            sections.append(block)
    return "\n\n".join(sections) if sections else REVIEW_FALLBACK_MESSAGE


def review_result_messages(output: ReviewOutput | None) -> tuple[str, str]:
    """What the reviewed thread's history keeps of a review: a user-side note for its model, and the
    assistant message the user sees."""
    if output is None:
        note = (
            "<user_action>\n"
            "  <context>The user started a code review, but it stopped before the reviewer produced "
            "a result. If the user asks about it, explain that the review did not finish and can be "
            "run again.</context>\n"
            "  <action>review</action>\n"
            "</user_action>\n"
        )
        return note, REVIEW_INTERRUPTED_MESSAGE
    results = output["overall_explanation"].strip()
    if output["findings"]:
        results += "\n" + findings_block(list(output["findings"]))
    note = (
        "<user_action>\n"
        "  <context>The user ran a code review. Below is everything the reviewer reported; the user "
        "may ask you to address some of these comments.</context>\n"
        "  <action>review</action>\n"
        "  <results>\n"
        f"  {results}\n"
        "  </results>\n"
        "</user_action>\n"
    )
    return note, render_review_output(output)


# ------------------------------------------------------------------------------------------------
# Running a review

# Reviewer events the reviewed turn never shows: streaming deltas of hidden messages, the reviewer's own
# usage, and its thread-level announcements.
_HIDDEN_EVENTS = frozenset(
    {
        "agent_message_delta",
        "agent_message_content_delta",
        "agent_reasoning_delta",
        "token_count",
        "session_configured",
        "thread_name_updated",
    }
)
_CLIENT_REQUEST_EVENTS = frozenset(
    {
        "exec_approval_request",
        "apply_patch_approval_request",
        "request_user_input",
        "dynamic_tool_call_request",
    }
)


def _legacy_echoes(msg: ev.EventMsg) -> list[ev.EventMsg]:
    """The legacy events the reference derives again from a relayed item event: its reviewed session
    re-sends each relayed event with its legacy forms, so these appear twice (once from the reviewer,
    once from the relay)."""
    kind = msg["type"]
    if kind == "item_completed":
        item = msg["item"]
        if item.get("type") == "UserMessage":
            parts = item.get("content") or []
            text = "\n".join(p["text"] for p in parts if p.get("type") == "text")
            images = [p["image_url"] for p in parts if p.get("type") == "image"]
            local = [p["path"] for p in parts if p.get("type") == "local_image"]
            return [ev.user_message(text, images, local)]
        if item.get("type") == "Reasoning":
            return [ev.agent_reasoning(text) for text in item.get("summary_text") or []]
        return []
    if kind == "reasoning_content_delta":
        return [ev.agent_reasoning_delta(msg["delta"])]
    if kind == "reasoning_raw_content_delta":
        return [ev.agent_reasoning_raw_content_delta(msg["delta"])]
    return []


class ReviewerChannel:
    """The reviewer's way to the client: the reviewed thread's, with requests filed under the reviewed
    turn (the client knows nothing of the reviewer's own turn)."""

    def __init__(self, client: ClientChannel, turn_id: str) -> None:
        self._client = client
        self._turn_id = turn_id

    def _retarget(self, request: ev.EventMsg) -> ev.EventMsg:
        return {**request, "turn_id": self._turn_id} if "turn_id" in request else request

    async def approve(self, turn_id: str, request: ev.EventMsg) -> Decision:
        return await self._client.approve(self._turn_id, self._retarget(request))

    async def request_user_input(self, turn_id: str, request: ev.EventMsg) -> Mapping[str, Any] | None:
        return await self._client.request_user_input(self._turn_id, self._retarget(request))

    async def call_dynamic_tool(self, turn_id: str, request: ev.EventMsg) -> Mapping[str, Any] | None:
        return await self._client.call_dynamic_tool(self._turn_id, self._retarget(request))


class ReviewRun:
    """One review turn of ``thread``, run as the turn's task by :meth:`run`, which builds the reviewer
    thread with the given factory: that thread's event sink must be :meth:`relay` (and its client a
    :class:`ReviewerChannel`)."""

    def __init__(self, thread: CodexThread, turn: ActiveTurn, target: dict[str, Any]) -> None:
        self.thread = thread
        self.turn = turn
        self.target = target
        self.hint = user_facing_hint(target)
        self.output: ReviewOutput | None = None
        # The reviewer's last agent message, held back: only the final one is hidden, as the result.
        self._held: ev.EventMsg | None = None

    async def _forward(self, msg: ev.EventMsg) -> None:
        await self.thread.emit(self.turn.id, msg)

    async def relay(self, _turn_id: str, msg: ev.EventMsg) -> None:
        """The reviewer thread's event sink: what the reviewed turn shows of the reviewer's work."""
        kind = msg["type"]
        if kind in _HIDDEN_EVENTS:
            return
        if kind == "item_completed" and msg["item"].get("type") == "AgentMessage":
            return
        if kind == "agent_message":
            held, self._held = self._held, msg
            if held is not None:
                await self._forward(held)
            return
        if kind == "task_complete":
            last = msg.get("last_agent_message")
            self.output = parse_review_output(last) if isinstance(last, str) else None
            return
        if kind == "turn_aborted":
            self.output = None
            return
        if kind in _CLIENT_REQUEST_EVENTS and "turn_id" in msg:
            msg = {**msg, "turn_id": self.turn.id}
        await self._forward(msg)
        for echo in _legacy_echoes(msg):
            await self._forward(echo)

    async def run(
        self, make_reviewer: Callable[[], Awaitable[CodexThread]], env: Mapping[str, str] | None = None
    ) -> None:
        """The whole review turn: announce it, run the reviewer's turn (which an interrupt of this turn
        stops), then record and report the result. A reviewer that cannot be set up (its rollout cannot
        be created) ends the review without a result, as the reference's failed sub-agent does."""
        thread, turn = self.thread, self.turn

        async def work() -> None:
            await thread.emit(turn.id, ev.entered_review_mode(self.target, self.hint))
            try:
                reviewer = await make_reviewer()
            except OSError as exc:
                log.error("could not start the reviewer: %s", exc)
                return
            prompt = await review_prompt(self.target, reviewer.settings.cwd, env)
            await reviewer.emit("", ev.mcp_startup_complete())
            reviewer_turn = reviewer.begin_turn(cancel_scope=turn.cancel_scope)
            await reviewer.run_turn(reviewer_turn, [{"type": "text", "text": prompt, "text_elements": []}])

        async def finish(interrupted: bool) -> None:
            await exit_review_mode(thread, turn.id, None if interrupted else self.output)

        await thread.run_delegated_turn(turn, work, finish)


async def exit_review_mode(thread: CodexThread, turn_id: str, output: ReviewOutput | None) -> None:
    """Ends review mode in ``thread``: its history gets the review's note and assistant message, and
    clients get ``exited_review_mode`` and the assistant message item, in the reference's order."""
    note, text = review_result_messages(output)
    thread.record_items([message("user", note)])
    await thread.emit(turn_id, ev.exited_review_mode(dict(output) if output is not None else None))
    thread.record_items([message("assistant", text)])
    item = {
        "type": "AgentMessage",
        "id": REVIEW_ASSISTANT_ITEM_ID,
        "content": [{"type": "Text", "text": text}],
    }
    await thread.emit(turn_id, ev.item_started(thread.id, turn_id, dict(item)))
    await thread.emit(turn_id, ev.item_completed(thread.id, turn_id, dict(item)))
    await thread.emit(turn_id, ev.agent_message(text))
