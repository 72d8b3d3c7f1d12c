"""What a thread announces when it starts, compared with the reference (Codex CLI 0.94.0).

- a deprecation notice (legacy ``codex/event/deprecation_notice``, then v2 ``deprecationNotice``, for v1
  conversations too) per deprecated setting the config uses, on every new, resumed or forked thread;
- "Under-development features enabled: ..." for every new, resumed or forked thread (v2 and v1) whose
  config turns on a feature the reference ships as under development;
- "This session was recorded with model ..." for a thread resumed (not forked) with another model
  than the one its rollout last ran a turn with.

The two warnings are legacy ``codex/event/warning`` events only (the 0.94.0 protocol has no v2
notification for them). The reference's outcomes are in tests/fixtures/warnings/ (see the README
there): one per config variation, and whole transcripts of the v2 and v1 start paths.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from e2e_util import TranscriptClient, capture, is_method, write_config
from schema_check import ProtocolValidator

from codex_trio.core.config import Config, load_config, parse_cli_overrides
from codex_trio.core.rollout import Rollout
from codex_trio.core.startup_warnings import (
    model_mismatch_warning,
    startup_warnings,
    unstable_features_warning,
)
from codex_trio.testing import mock_responses as mr
from codex_trio.testing.harness import open_server

FIXTURES = Path(__file__).parent / "fixtures" / "warnings"
FEATURES = "[features]\nsqlite = true\napply_patch_freeform = true\n"
NEVER = {"approvalPolicy": "never", "sandbox": "danger-full-access"}
Message = dict[str, Any]

# The requests that start (or announce) a thread, whose answers and announcements are compared.
START_METHODS = frozenset(
    {
        "thread/start",
        "thread/resume",
        "thread/fork",
        "newConversation",
        "resumeConversation",
        "forkConversation",
        "addConversationListener",
    }
)
ANNOUNCEMENTS = frozenset(
    {"thread/started", "sessionConfigured", "codex/event/warning", "codex/event/mcp_startup_complete"}
)
# Deprecated settings (and a feature under development) for the config.toml of the deprecation test.
DEPRECATIONS = "[features]\nconnectors = false\nsqlite = true\n[tools]\nweb_search = false\n"
DOCS = "https://github.com/openai/codex/blob/main/docs/config.md#feature-flags"
WEB_SEARCH_DETAILS = 'Set `web_search` to `"live"`, `"cached"`, or `"disabled"` in config.toml.'


# --- the config rules, case by case ---------------------------------------------------------------

CASES: dict[str, dict[str, Any]] = json.loads((FIXTURES / "feature_cases.json").read_text(encoding="utf-8"))


DEPRECATION_CASES: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "deprecation_cases.json").read_text(encoding="utf-8")
)


def case_config(case: dict[str, Any], codex_home: Path) -> tuple[Config, bool | None]:
    """The config a thread of ``case`` starts with, and newConversation's includeApplyPatchTool."""
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(case["config"], encoding="utf-8")
    config = load_config(
        codex_home,
        cli_overrides=parse_cli_overrides(case["cli"]),
        cwd=codex_home.parent,
        env={"HOME": str(codex_home.parent), "CODEX_HOME": str(codex_home)},
        system_config_path=None,
        requirements_path=None,
    )
    v1 = case["newConversation"]
    if v1 is None:
        return config.derive(case["thread_config"]), None
    # As newConversation passes them (see processors/conversations.py).
    keys = {"profile": v1.get("profile"), "include_apply_patch_tool": v1.get("includeApplyPatchTool")}
    config = config.derive({key: value for key, value in keys.items() if value is not None})
    return config, v1.get("includeApplyPatchTool")


@pytest.mark.parametrize("name", sorted(CASES))
def test_feature_warning_is_the_references_for_each_config(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    codex_home = tmp_path / "codex_home"
    config, include_apply_patch_tool = case_config(case, codex_home)
    text = unstable_features_warning(config, include_apply_patch_tool=include_apply_patch_tool)
    expected = case["warning"]
    if expected is not None:
        expected = expected.replace("<codex_home>", str(codex_home))
    assert text == expected


@pytest.mark.parametrize("name", sorted(DEPRECATION_CASES))
def test_deprecation_notices_are_the_references_for_each_config(name: str, tmp_path: Path) -> None:
    case = DEPRECATION_CASES[name]
    codex_home = tmp_path / "codex_home"
    config, include_apply_patch_tool = case_config(case, codex_home)
    events = startup_warnings(config, include_apply_patch_tool=include_apply_patch_tool)
    # Thread-level events (id ""): the notices first, in the reference's order, then the warning.
    assert [event_id for event_id, _ in events] == [""] * len(events)
    notices = [msg for _, msg in events if msg["type"] == "deprecation_notice"]
    assert [{"summary": n["summary"], "details": n.get("details")} for n in notices] == case["notices"]
    # Like the reference's legacy event, a notice without details leaves the field out.
    assert all(n.get("details", "absent") is not None for n in notices)
    rest = events[len(notices) :]
    assert [msg["type"] for _, msg in rest] == ["warning"] * len(rest)
    expected = [w.replace("<codex_home>", str(codex_home)) for w in case["warnings"]]
    assert [msg["message"] for _, msg in rest] == expected


def _rollout(*lines: Message) -> Rollout:
    return Rollout(path=Path("rollout.jsonl"), lines=list(lines))  # type: ignore[arg-type]


def test_model_warning_compares_the_last_recorded_turn_model() -> None:
    meta = {"type": "session_meta", "payload": {"id": "t"}}

    def context(model: str) -> Message:
        return {"type": "turn_context", "payload": {"model": model, "cwd": "/"}}

    rolled_back = {"type": "event_msg", "payload": {"type": "thread_rolled_back", "num_turns": 1}}
    # Like the reference: no turn yet, no warning; the last turn's model counts, even rolled back.
    assert model_mismatch_warning(_rollout(meta), "other-model") is None
    assert model_mismatch_warning(_rollout(meta, context("a"), context("b")), "b") is None
    assert model_mismatch_warning(_rollout(meta, context("b"), context("a"), rolled_back), "a") is None
    assert model_mismatch_warning(_rollout(meta, context("mock-model")), "other-model") == (
        "This session was recorded with model `mock-model` but is resuming with `other-model`. "
        "Consider switching back to `mock-model` as it may affect Codex performance."
    )


# --- the start paths end to end -------------------------------------------------------------------


@asynccontextmanager
async def client(
    mock: mr.MockResponses,
    codex_home: Path,
    transcript: list[Message],
    *,
    top: str = "",
    tables: str = FEATURES,
) -> AsyncIterator[TranscriptClient]:
    """codex-trio for ``mock`` with the two features on (or the given top-level keys and tables); its
    messages join ``transcript``."""
    write_config(codex_home, mock.base_url)
    text = (codex_home / "config.toml").read_text(encoding="utf-8")
    (codex_home / "config.toml").write_text(f"{top}\n{text}\n{tables}", encoding="utf-8")
    async with open_server(
        codex_home=codex_home, base_url=mock.base_url, validator=ProtocolValidator(), env={"TZ": "UTC"}
    ) as server:
        await server.initialize(name="harness")
        yield TranscriptClient(server, transcript)


def announcements(transcript: Sequence[Message], codex_home: str) -> list[tuple[str, list[Any]]]:
    """Per thread-starting request: its answer and the announcements up to the next request, in order;
    a warning as (id, text, whether it names the thread the request started or resumed), a deprecation
    notice as ("deprecation_notice", id, summary, details, whether it names that thread) and its v2
    twin as ("deprecationNotice", summary, details)."""
    sections: list[tuple[str, Message, list[Message]]] = []
    for entry in transcript:
        m = entry["msg"]
        if entry["dir"] == "C":
            sections.append((str(m.get("method")), m.get("params") or {}, []))
        elif sections:
            sections[-1][2].append(m)
    out: list[tuple[str, list[Any]]] = []
    for method, params, messages in sections:
        if method not in START_METHODS:
            continue
        results = [m["result"] for m in messages if "result" in m and "method" not in m]
        result = results[0] if results else {}
        subject = (
            result.get("conversationId")
            or (result.get("thread") or {}).get("id")
            or params.get("conversationId")
        )
        section: list[Any] = []
        for m in messages:
            note = m.get("method")
            if note is None:
                section.append("result" if "result" in m else "error")
            elif note == "codex/event/warning":
                warning = m["params"]
                text = warning["msg"]["message"].replace(codex_home, "<codex_home>")
                section.append((warning["id"], text, warning["conversationId"] == subject))
            elif note == "codex/event/deprecation_notice":
                event = m["params"]
                notice = event["msg"]
                # The legacy event leaves out absent details: "missing" tells it from a null.
                details = notice.get("details", "missing")
                same = event["conversationId"] == subject
                section.append((note[12:], event["id"], notice["summary"], details, same))
            elif note == "deprecationNotice":
                section.append((note, m["params"]["summary"], m["params"]["details"]))
            elif note in ANNOUNCEMENTS:
                section.append(note)
        out.append((method, section))
    return out


def reference(name: str) -> list[Message]:
    lines = (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def warnings_only(sections: list[tuple[str, list[Any]]]) -> list[tuple[str, list[Any]]]:
    return [(method, [e for e in section if isinstance(e, tuple)]) for method, section in sections]


async def test_v2_start_resume_and_fork_warn_like_the_reference(tmp_path: Path) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    transcript: list[Message] = []
    async with mr.open_mock_responses(mr.text("Hello.")) as mock:
        async with client(mock, home, transcript) as c:
            thread_id = (await c.result("thread/start", {"cwd": str(work), **NEVER}))["thread"]["id"]
            await c.until(is_method("codex/event/mcp_startup_complete"))
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "hi", "text_elements": []}]}
            await c.result("turn/start", turn)
            await c.until(is_method("turn/completed"))
            quiet = {"cwd": str(work), **NEVER, "config": {"suppress_unstable_features_warning": True}}
            await c.result("thread/start", quiet)
            await c.until(is_method("codex/event/mcp_startup_complete"))
            await c.quiet()
        async with client(mock, home, transcript) as c:
            await c.result("thread/resume", {"threadId": thread_id, "model": "other-model"})
            await c.quiet()
            await c.result("thread/fork", {"threadId": thread_id, "model": "third-model"})
            await c.until(is_method("thread/started"))
            await c.quiet()

    ours = announcements(transcript, str(home.resolve()))
    theirs = announcements(reference("v2_start_resume_fork"), "<dir>/codex_home")
    # The reference lets its events race its answers; which warnings each start sends is not left to
    # chance.
    assert warnings_only(ours) == warnings_only(theirs)
    feature = (
        "",
        "Under-development features enabled: apply_patch_freeform, sqlite. Under-development features are"
        " incomplete and may behave unpredictably. To suppress this warning, set"
        " `suppress_unstable_features_warning = true` in <codex_home>/config.toml.",
        True,
    )
    model = (
        "auto-compact-0",
        "This session was recorded with model `mock-model` but is resuming with `other-model`. Consider"
        " switching back to `mock-model` as it may affect Codex performance.",
        True,
    )
    # In the order the reference sends them most of the time (and always for thread/start, as in its
    # capture approvals_turn.jsonl): after thread/started, before mcp_startup_complete; a resumed or
    # forked thread's (and its mcp_startup_complete) before the answer.
    assert ours == [
        ("thread/start", ["result", "thread/started", feature, "codex/event/mcp_startup_complete"]),
        ("thread/start", ["result", "thread/started", "codex/event/mcp_startup_complete"]),
        ("thread/resume", [feature, model, "codex/event/mcp_startup_complete", "result"]),
        ("thread/fork", [feature, "codex/event/mcp_startup_complete", "result", "thread/started"]),
    ]
    captured = [m.get("method", "result") for m in capture("approvals_turn.jsonl")[1:5]]
    assert captured == ["result", "thread/started", "codex/event/warning", "codex/event/mcp_startup_complete"]


async def test_v1_new_resume_and_fork_warn_like_the_reference(tmp_path: Path) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    transcript: list[Message] = []
    async with mr.open_mock_responses(mr.text("Hello.")) as mock:
        async with client(mock, home, transcript) as c:
            new = {"cwd": str(work), "approvalPolicy": "never", "includeApplyPatchTool": False}
            started = await c.result("newConversation", new)
            cid = started["conversationId"]
            await c.result("addConversationListener", {"conversationId": cid})
            await c.until(is_method("codex/event/mcp_startup_complete"))
            message = {"conversationId": cid, "items": [{"type": "text", "data": {"text": "hi"}}]}
            await c.result("sendUserMessage", message)
            await c.until(is_method("codex/event/task_complete"))
            await c.quiet()
        async with client(mock, home, transcript) as c:
            resume = {"path": started["rolloutPath"], "overrides": {"model": "other-model"}}
            await c.result("resumeConversation", resume)
            await c.result("addConversationListener", {"conversationId": cid})
            await c.until(is_method("codex/event/mcp_startup_complete"))
            fork = {"conversationId": cid, "overrides": {"model": "other-model"}}
            forked = await c.result("forkConversation", fork)
            await c.result("addConversationListener", {"conversationId": forked["conversationId"]})
            await c.until(is_method("codex/event/mcp_startup_complete"))
            await c.quiet()

    ours = announcements(transcript, str(home.resolve()))
    assert ours == announcements(reference("v1_new_resume_fork"), "<dir>/codex_home")
    # newConversation's includeApplyPatchTool:false turned the feature off: only sqlite is named; as a
    # deprecated setting it is noticed, to the v1 listener in both forms.
    first_listener = ours[1][1]
    summary = "`include_apply_patch_tool` is deprecated. Use `[features].apply_patch_freeform` instead."
    assert [e[2] for e in first_listener if e[0] == "deprecation_notice"] == [summary]
    assert [e[1] for e in first_listener if e[0] == "deprecationNotice"] == [summary]
    warning = [e[1] for e in first_listener if e[0] == ""]
    assert len(warning) == 1 and warning[0].startswith("Under-development features enabled: sqlite. ")


async def test_deprecation_notices_on_every_start_path_like_the_reference(tmp_path: Path) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    top = 'experimental_instructions_file = "/nonexistent/instructions.md"'
    transcript: list[Message] = []
    async with mr.open_mock_responses(mr.text("Hello."), mr.text("Hello.")) as mock:
        async with client(mock, home, transcript, top=top, tables=DEPRECATIONS) as c:
            thread_id = (await c.result("thread/start", {"cwd": str(work), **NEVER}))["thread"]["id"]
            await c.until(is_method("codex/event/mcp_startup_complete"))
            turn = {"threadId": thread_id, "input": [{"type": "text", "text": "hi", "text_elements": []}]}
            await c.result("turn/start", turn)
            await c.until(is_method("turn/completed"))
            more = {"cwd": str(work), **NEVER, "config": {"features.web_search_request": True}}
            await c.result("thread/start", more)
            await c.until(is_method("codex/event/mcp_startup_complete"))
            new = {"cwd": str(work), "approvalPolicy": "never", "includeApplyPatchTool": True}
            started = await c.result("newConversation", new)
            cid = started["conversationId"]
            await c.result("addConversationListener", {"conversationId": cid})
            await c.until(is_method("codex/event/mcp_startup_complete"))
            message = {"conversationId": cid, "items": [{"type": "text", "data": {"text": "hi"}}]}
            await c.result("sendUserMessage", message)
            await c.until(is_method("codex/event/task_complete"))
            await c.quiet()
        async with client(mock, home, transcript, top=top, tables=DEPRECATIONS) as c:
            await c.result("thread/resume", {"threadId": thread_id})
            fork = {"threadId": thread_id, "config": {"experimental_use_freeform_apply_patch": True}}
            await c.result("thread/fork", fork)
            await c.until(is_method("thread/started"))
            resume = {"path": started["rolloutPath"], "overrides": {"includeApplyPatchTool": False}}
            await c.result("resumeConversation", resume)
            await c.result("addConversationListener", {"conversationId": cid})
            await c.until(is_method("codex/event/mcp_startup_complete"))
            forked = await c.result("forkConversation", {"conversationId": cid, "overrides": {}})
            await c.result("addConversationListener", {"conversationId": forked["conversationId"]})
            await c.until(is_method("codex/event/mcp_startup_complete"))
            await c.quiet()

    ours = announcements(transcript, str(home.resolve()))
    theirs = announcements(reference("deprecations_start_paths"), "<dir>/codex_home")
    assert warnings_only(ours) == warnings_only(theirs)

    def notice(summary: str, details: str) -> list[tuple[Any, ...]]:
        return [("deprecation_notice", "", summary, details, True), ("deprecationNotice", summary, details)]

    def old_name(name: str, feature: str) -> list[tuple[Any, ...]]:
        details = (
            f"Enable it with `--enable {feature}` or `[features].{feature}` in config.toml. See {DOCS} for"
            " details."
        )
        return notice(f"`{name}` is deprecated. Use `[features].{feature}` instead.", details)

    def web_search(label: str) -> list[tuple[Any, ...]]:
        return notice(f"`{label}` is deprecated. Use `web_search` instead.", WEB_SEARCH_DETAILS)

    connectors = old_name("connectors", "apps")
    include = old_name("include_apply_patch_tool", "apply_patch_freeform")
    freeform = old_name("experimental_use_freeform_apply_patch", "apply_patch_freeform")
    tools = web_search("[tools].web_search")
    request = web_search("[features].web_search_request")
    instructions = notice(
        "`experimental_instructions_file` is deprecated and ignored. Use `model_instructions_file` instead.",
        "Move the setting to `model_instructions_file` in config.toml (or under a profile) to load"
        " instructions from a file.",
    )
    warning = (
        "",
        "Under-development features enabled: sqlite. Under-development features are incomplete and may behave"
        " unpredictably. To suppress this warning, set `suppress_unstable_features_warning = true` in"
        " <codex_home>/config.toml.",
        True,
    )
    # Sorted by the name each setting was recorded under, before the feature warning, on every path;
    # each start's own settings (thread config, includeApplyPatchTool) join the config file's.
    assert warnings_only(ours) == [
        ("thread/start", [*connectors, *tools, *instructions, warning]),
        ("thread/start", [*connectors, *request, *tools, *instructions, warning]),
        ("newConversation", []),
        ("addConversationListener", [*connectors, *include, *tools, *instructions, warning]),
        ("thread/resume", [*connectors, *tools, *instructions, warning]),
        ("thread/fork", [*connectors, *freeform, *tools, *instructions, warning]),
        ("resumeConversation", []),
        ("addConversationListener", [*connectors, *include, *tools, *instructions, warning]),
        ("forkConversation", []),
        ("addConversationListener", [*connectors, *tools, *instructions, warning]),
    ]
    # All before mcp_startup_complete.
    for _, section in ours:
        if "codex/event/mcp_startup_complete" in section:
            done = section.index("codex/event/mcp_startup_complete")
            assert all(not isinstance(e, tuple) for e in section[done:])
