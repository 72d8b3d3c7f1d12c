"""Rollout files: the on-disk record of a thread, byte-compatible with the reference (Codex 0.94.0).

A rollout is ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-YYYY-MM-DDTHH-MM-SS-<thread id>.jsonl`` (local
time, like the reference). Each line is ``{"timestamp": "...Z", "type": ..., "payload": ...}`` in compact
JSON. The first line is the ``session_meta``; a fork starts with its own meta, then the parent's meta,
then the parent's items. The reference reads and writes these files too, so the format must match
exactly: threads written by either server are listed, read and resumed by the other.

Writes happen on the event loop, synchronously: a line is a few KB appended to a local file, which
costs microseconds (page cache), far less than a hop to a worker thread, and keeps the lines of one
thread in order without extra locking. Each line goes out in a single ``write`` on an unbuffered
descriptor, so a killed server loses at most the line it was writing and readers (ours and the
reference's) skip a torn last line. Whole-file reads can be large, so :func:`aread_rollout` runs them in
a worker thread.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypedDict, cast

import trio

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired

from ..protocol.v2 import Turn
from .ids import parse_uuid

SESSIONS_SUBDIR = "sessions"
ARCHIVED_SESSIONS_SUBDIR = "archived_sessions"

JsonObject = dict[str, Any]
# A Responses API item as the reference stores it (``{"type": "message", ...}``, ``function_call``...).
ResponseItem = JsonObject

RolloutItemType = Literal["session_meta", "response_item", "event_msg", "turn_context", "compacted"]
ROLLOUT_ITEM_TYPES: frozenset[str] = frozenset(
    {"session_meta", "response_item", "event_msg", "turn_context", "compacted"}
)


class RolloutItem(TypedDict):
    """One record of a rollout, without the time it was written."""

    type: RolloutItemType
    payload: JsonObject


class RolloutLine(TypedDict):
    timestamp: str
    type: RolloutItemType
    payload: JsonObject


class GitInfo(TypedDict, total=False):
    commit_hash: str | None
    branch: str | None
    repository_url: str | None


class BaseInstructions(TypedDict):
    text: str


class SessionMetaPayload(TypedDict):
    """The payload of a ``session_meta`` line, keys in the order the reference writes them."""

    id: str
    forked_from_id: NotRequired[str]
    timestamp: str
    cwd: str
    originator: str
    cli_version: str
    source: NotRequired[Any]
    model_provider: NotRequired[str | None]
    base_instructions: NotRequired[BaseInstructions]
    git: NotRequired[GitInfo]


class CompactedPayload(TypedDict):
    message: str
    replacement_history: NotRequired[list[ResponseItem]]


# --------------------------------------------------------------------------------------------------
# Persistence policy (codex-rs/core/src/rollout/policy.rs at 0.94.0)
# --------------------------------------------------------------------------------------------------

PERSISTED_RESPONSE_ITEM_TYPES: frozenset[str] = frozenset(
    {
        "message",
        "reasoning",
        "local_shell_call",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "web_search_call",
        "ghost_snapshot",
        "compaction",
    }
)

# Everything else (deltas, exec/patch/mcp begin-end, plan updates, errors, warnings, task start and
# completion...) is live-only: it never reaches the file.
PERSISTED_EVENT_MSG_TYPES: frozenset[str] = frozenset(
    {
        "user_message",
        "agent_message",
        "agent_reasoning",
        "agent_reasoning_raw_content",
        "token_count",
        "context_compacted",
        "entered_review_mode",
        "exited_review_mode",
        "thread_rolled_back",
        "undo_completed",
        "turn_aborted",
    }
)


def is_persisted(item: RolloutItem) -> bool:
    """Whether the reference would write ``item`` to the rollout."""
    kind = item["type"]
    if kind == "response_item":
        return item["payload"].get("type") in PERSISTED_RESPONSE_ITEM_TYPES
    if kind == "event_msg":
        return item["payload"].get("type") in PERSISTED_EVENT_MSG_TYPES
    return kind in ROLLOUT_ITEM_TYPES


def response_item(payload: ResponseItem) -> RolloutItem:
    return {"type": "response_item", "payload": payload}


def event_msg(payload: JsonObject) -> RolloutItem:
    return {"type": "event_msg", "payload": payload}


def turn_context(payload: JsonObject) -> RolloutItem:
    return {"type": "turn_context", "payload": payload}


def compacted(payload: CompactedPayload) -> RolloutItem:
    return {"type": "compacted", "payload": cast(JsonObject, payload)}


# --------------------------------------------------------------------------------------------------
# Times, names and ids
# --------------------------------------------------------------------------------------------------

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """``2026-11-21T14:39:40.045Z``: UTC with milliseconds, as every rollout timestamp."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_timestamp(text: str) -> datetime | None:
    """Parse an RFC 3339 timestamp (what the reference accepts for ``session_meta.timestamp``)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    micro = int((fraction + "000000")[:6]) if fraction else 0
    if match.group(8):
        tz = timezone.utc
    else:
        offset = timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
        tz = timezone(-offset if match.group(9) == "-" else offset)
    try:
        return datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=tz)
    except ValueError:
        return None


FILE_TIMESTAMP_FORMAT = "%Y-%m-%dT%H-%M-%S"
_FILE_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})")


def parse_file_timestamp(text: str) -> datetime | None:
    """Parse the ``YYYY-MM-DDTHH-MM-SS`` of a rollout name or list cursor (naive, as the reference)."""
    match = _FILE_TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def parse_rollout_file_name(name: str) -> tuple[datetime, str] | None:
    """``(file timestamp, thread id)`` of ``rollout-YYYY-MM-DDTHH-MM-SS-<uuid>.jsonl``, else None."""
    if not (name.startswith("rollout-") and name.endswith(".jsonl")):
        return None
    core = name[len("rollout-") : -len(".jsonl")]
    # Like the reference: the id is the longest suffix after a '-' that parses as a UUID.
    index = core.rfind("-")
    while index >= 0:
        thread_id = parse_uuid(core[index + 1 :])
        if thread_id is not None:
            stamp = parse_file_timestamp(core[:index])
            return None if stamp is None else (stamp, thread_id)
        index = core.rfind("-", 0, index)
    return None


def rollout_file_name(created: datetime, thread_id: str) -> str:
    local = created.astimezone()
    return f"rollout-{local.strftime(FILE_TIMESTAMP_FORMAT)}-{thread_id}.jsonl"


def rollout_path_for(codex_home: Path, thread_id: str, created: datetime) -> Path:
    """Where the reference puts a thread created at ``created``: dated by local time."""
    local = created.astimezone()
    day_dir = codex_home / SESSIONS_SUBDIR / f"{local.year:04d}" / f"{local.month:02d}" / f"{local.day:02d}"
    return day_dir / rollout_file_name(created, thread_id)


def new_thread_id(now: datetime | None = None) -> str:
    """A UUIDv7 (time-ordered) like the reference's thread ids."""
    moment = now if now is not None else utc_now()
    millis = int(moment.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(secrets.token_bytes(10), "big")
    rand_a = rand >> 68
    rand_b = rand & ((1 << 62) - 1)
    value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def encode_line(line: RolloutLine) -> bytes:
    """Compact JSON like serde_json: no spaces, non-ASCII kept as UTF-8."""
    try:
        text = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        # A lone surrogate cannot be UTF-8; keep the line valid JSON rather than lose it.
        return json.dumps(line, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


@dataclass(frozen=True)
class SessionMetaFields:
    """What a new thread records about itself in its ``session_meta`` line."""

    cwd: str
    originator: str
    cli_version: str
    model_provider: str | None
    base_instructions: str | None = None
    # ``"vscode"`` is what the reference's app-server threads record.
    source: Any = "vscode"
    git: GitInfo | None = None


def build_session_meta(
    thread_id: str,
    fields: SessionMetaFields,
    created: datetime,
    forked_from_id: str | None = None,
) -> SessionMetaPayload:
    meta: dict[str, Any] = {"id": thread_id}
    if forked_from_id is not None:
        meta["forked_from_id"] = forked_from_id
    meta["timestamp"] = format_timestamp(created)
    meta["cwd"] = fields.cwd
    meta["originator"] = fields.originator
    meta["cli_version"] = fields.cli_version
    meta["source"] = fields.source
    meta["model_provider"] = fields.model_provider
    if fields.base_instructions is not None:
        meta["base_instructions"] = {"text": fields.base_instructions}
    if fields.git is not None:
        meta["git"] = dict(fields.git)
    return cast(SessionMetaPayload, meta)


class RolloutWriter:
    """Appends records to one thread's rollout. Owned by that thread's task; not shared."""

    def __init__(self, path: Path, thread_id: str, fd: int, clock: Clock) -> None:
        self.path = path
        self.thread_id = thread_id
        self._fd: int | None = fd
        self._clock = clock

    @classmethod
    def create(
        cls,
        codex_home: Path,
        thread_id: str,
        fields: SessionMetaFields,
        *,
        created: datetime | None = None,
        forked_from_id: str | None = None,
        clock: Clock = utc_now,
    ) -> RolloutWriter:
        """Create the rollout of a new thread and write its ``session_meta`` line."""
        created_at = created if created is not None else clock()
        path = rollout_path_for(codex_home, thread_id, created_at)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _O_CLOEXEC, 0o666)
        writer = cls(path, thread_id, fd, clock)
        meta = build_session_meta(thread_id, fields, created_at, forked_from_id)
        try:
            writer.append([{"type": "session_meta", "payload": cast(JsonObject, meta)}])
        except BaseException:
            writer.close()
            raise
        return writer

    @classmethod
    def open_existing(cls, path: Path, *, clock: Clock = utc_now) -> RolloutWriter:
        """Reopen a rollout to continue it (thread/resume appends to the same file)."""
        parsed = parse_rollout_file_name(path.name)
        if parsed is None:
            raise ValueError(f"not a rollout file name: {path.name}")
        fd = os.open(path, os.O_RDWR | os.O_APPEND | _O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            # A torn last line (killed writer) must not swallow the first line we append.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                _write_all(fd, b"\n")
        except BaseException:
            os.close(fd)
            raise
        return cls(path, parsed[1], fd, clock)

    def append(self, items: Iterable[RolloutItem]) -> int:
        """Write the persisted ones among ``items``, one line each; returns how many were written."""
        if self._fd is None:
            raise ValueError("rollout writer is closed")
        written = 0
        for item in items:
            if not is_persisted(item):
                continue
            line: RolloutLine = {
                "timestamp": format_timestamp(self._clock()),
                "type": item["type"],
                "payload": item["payload"],
            }
            _write_all(self._fd, encode_line(line))
            written += 1
        return written

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RolloutWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def fork_rollout(
    codex_home: Path,
    parent: Rollout,
    *,
    thread_id: str,
    fields: SessionMetaFields,
    created: datetime | None = None,
    clock: Clock = utc_now,
) -> RolloutWriter:
    """Start the rollout of a fork of ``parent``, as thread/fork does.

    The new file holds its own ``session_meta`` (with ``forked_from_id``), then every record of the
    parent (its ``session_meta`` included) stamped with the time of the copy. The caller appends the
    fork's initial context and its turns to the returned writer. This writes the whole parent at once;
    for a very long parent, call it through ``trio.to_thread.run_sync``.
    """
    parent_id = parent.thread_id
    if parent_id is None:
        raise ValueError(f"rollout at {parent.path} does not start with session metadata")
    writer = RolloutWriter.create(
        codex_home, thread_id, fields, created=created, forked_from_id=parent_id, clock=clock
    )
    try:
        writer.append(parent.items)
    except BaseException:
        writer.close()
        raise
    return writer


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _valid_session_meta(payload: JsonObject) -> bool:
    return all(
        isinstance(payload.get(key), str) for key in ("id", "timestamp", "cwd", "originator", "cli_version")
    ) and (parse_uuid(payload["id"]) is not None)


def _valid_payload(kind: str, payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    if kind == "session_meta":
        return _valid_session_meta(payload)
    if kind in ("response_item", "event_msg"):
        return isinstance(payload.get("type"), str)
    if kind == "compacted":
        return isinstance(payload.get("message"), str)
    return True


def parse_rollout_line(raw: bytes | str) -> RolloutLine | None:
    """A line as the reference reads it; None for blank, torn, unknown or malformed lines."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind not in ROLLOUT_ITEM_TYPES or not isinstance(value.get("timestamp"), str):
        return None
    payload = value.get("payload")
    if not _valid_payload(kind, payload):
        return None
    return cast(RolloutLine, value)


@dataclass
class Rollout:
    path: Path
    lines: list[RolloutLine]
    # Lines that could not be read (torn last line, unknown record types, garbage).
    skipped: int = 0

    @property
    def meta(self) -> SessionMetaPayload | None:
        """The first ``session_meta`` (a fork's own, not its parent's)."""
        for line in self.lines:
            if line["type"] == "session_meta":
                return cast(SessionMetaPayload, line["payload"])
        return None

    @property
    def thread_id(self) -> str | None:
        meta = self.meta
        return None if meta is None else parse_uuid(meta["id"])

    @property
    def items(self) -> list[RolloutItem]:
        return [{"type": line["type"], "payload": line["payload"]} for line in self.lines]


def read_rollout(path: Path) -> Rollout:
    """Read a whole rollout. Blocking; use :func:`aread_rollout` from async code."""
    lines: list[RolloutLine] = []
    skipped = 0
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            line = parse_rollout_line(raw)
            if line is None:
                skipped += 1
            else:
                lines.append(line)
    return Rollout(path=path, lines=lines, skipped=skipped)


async def aread_rollout(path: Path) -> Rollout:
    return await trio.to_thread.run_sync(read_rollout, path)


# --------------------------------------------------------------------------------------------------
# User messages as the reference recognises them (event_mapping::parse_turn_item)
# --------------------------------------------------------------------------------------------------

USER_INSTRUCTIONS_PREFIX = "# AGENTS.md instructions for "
USER_INSTRUCTIONS_LEGACY_OPEN_TAG = "<user_instructions>"
SKILL_INSTRUCTIONS_OPEN_TAG = "<skill>"
_SESSION_PREFIX_TAGS = ("<environment_context>", "<turn_aborted>", "<user_shell_command>")
# Where a legacy client's prompt starts inside the first message; previews show what follows.
USER_MESSAGE_BEGIN = "## My request for Codex:"


def user_message_text(item: ResponseItem) -> str | None:
    """The text of a message the user typed, or None for anything else.

    Context the server injects as user-role messages (AGENTS.md instructions, skills, environment
    context, the interrupt marker, shell command records) is not a user message. The text is the
    concatenation of the text parts; an image-only message is a user message with text "".
    """
    if item.get("type") != "message" or item.get("role") != "user":
        return None
    content = item.get("content")
    if not isinstance(content, list):
        return None
    if len(content) == 1 and isinstance(content[0], dict) and content[0].get("type") == "input_text":
        only = content[0].get("text")
        if isinstance(only, str) and only.startswith(
            (USER_INSTRUCTIONS_PREFIX, USER_INSTRUCTIONS_LEGACY_OPEN_TAG, SKILL_INSTRUCTIONS_OPEN_TAG)
        ):
            return None
    parts: list[str] = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "input_text":
            continue
        text = part.get("text")
        if not isinstance(text, str):
            continue
        if text.lstrip().lower().startswith(_SESSION_PREFIX_TAGS):
            return None
        parts.append(text)
    return "".join(parts)


def preview_from_first_message(text: str) -> str:
    index = text.find(USER_MESSAGE_BEGIN)
    if index < 0:
        return text
    return text[index + len(USER_MESSAGE_BEGIN) :].strip()


# --------------------------------------------------------------------------------------------------
# Turns for thread/read, thread/resume and thread/fork (app-server-protocol thread_history at 0.94.0)
# --------------------------------------------------------------------------------------------------

class _TurnBuilder:
    """Rebuilds turns from the persisted event messages, with synthetic ``turn-N``/``item-N`` ids."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self.current: Turn | None = None
        self.next_turn = 1
        self.next_item = 1

    def _item_id(self) -> str:
        item_id = f"item-{self.next_item}"
        self.next_item += 1
        return item_id

    def _new_turn(self) -> Turn:
        turn: Turn = {"id": f"turn-{self.next_turn}", "items": [], "status": "completed", "error": None}
        self.next_turn += 1
        return turn

    def _ensure_turn(self) -> Turn:
        if self.current is None:
            self.current = self._new_turn()
        return self.current

    def _finish_turn(self) -> None:
        turn, self.current = self.current, None
        if turn is not None and turn["items"]:
            self.turns.append(turn)

    def handle(self, event: JsonObject) -> None:
        kind = event.get("type")
        if kind == "user_message":
            self._finish_turn()
            turn = self._new_turn()
            turn["items"].append(
                {"type": "userMessage", "id": self._item_id(), "content": _user_inputs(event)}
            )
            self.current = turn
        elif kind == "agent_message":
            text = event.get("message")
            if isinstance(text, str) and text:
                turn = self._ensure_turn()
                turn["items"].append({"type": "agentMessage", "id": self._item_id(), "text": text})
        elif kind in ("agent_reasoning", "agent_reasoning_raw_content"):
            self._reasoning(event, "summary" if kind == "agent_reasoning" else "content")
        elif kind == "turn_aborted":
            target = self.current if self.current is not None else (self.turns[-1] if self.turns else None)
            if target is not None:
                target["status"] = "interrupted"
        elif kind == "thread_rolled_back":
            self._rollback(event.get("num_turns"))

    def _reasoning(self, event: JsonObject, field_name: str) -> None:
        text = event.get("text")
        if not isinstance(text, str) or not text:
            return
        turn = self._ensure_turn()
        last = turn["items"][-1] if turn["items"] else None
        if last is not None and last.get("type") == "reasoning":
            last[field_name].append(text)
            return
        item: JsonObject = {"type": "reasoning", "id": self._item_id(), "summary": [], "content": []}
        item[field_name].append(text)
        turn["items"].append(item)

    def _rollback(self, num_turns: Any) -> None:
        self._finish_turn()
        count = num_turns if isinstance(num_turns, int) and num_turns >= 0 else 0
        if count >= len(self.turns):
            self.turns.clear()
        elif count:
            del self.turns[-count:]
        # Ids continue from what is left, so a rebuilt thread never shows a gap.
        self.next_turn = len(self.turns) + 1
        self.next_item = sum(len(turn["items"]) for turn in self.turns) + 1

    def finish(self) -> list[Turn]:
        self._finish_turn()
        return self.turns


def _user_inputs(event: JsonObject) -> list[JsonObject]:
    content: list[JsonObject] = []
    message = event.get("message")
    if isinstance(message, str) and message.strip():
        elements = event.get("text_elements")
        text_elements = list(elements) if isinstance(elements, list) else []
        content.append({"type": "text", "text": message, "text_elements": text_elements})
    images = event.get("images")
    if isinstance(images, list):
        content.extend({"type": "image", "url": url} for url in images if isinstance(url, str))
    local_images = event.get("local_images")
    if isinstance(local_images, list):
        content.extend({"type": "localImage", "path": p} for p in local_images if isinstance(p, str))
    return content


def _items_of(source: Rollout | Iterable[RolloutItem]) -> Iterable[RolloutItem]:
    return source.items if isinstance(source, Rollout) else source


def reconstruct_turns(source: Rollout | Iterable[RolloutItem]) -> list[Turn]:
    """The turns the reference shows for a stored thread.

    Only persisted event messages count: user messages open turns, agent messages and reasoning fill
    them, ``turn_aborted`` marks a turn interrupted and ``thread_rolled_back`` drops the last turns.
    Tool calls and failed-turn errors are not persisted, so they do not appear. Nor do a review's
    ``entered_review_mode``/``exited_review_mode``, which the reference skips when it rebuilds turns: a
    review shows as the reviewer's prompt twice (it is relayed with its legacy echo), the second time
    with the review's message.
    """
    builder = _TurnBuilder()
    for item in _items_of(source):
        if item["type"] == "event_msg":
            builder.handle(item["payload"])
    return builder.finish()


# --------------------------------------------------------------------------------------------------
# Model history for thread/resume
# --------------------------------------------------------------------------------------------------

# Prior user text a legacy compaction keeps (the reference's 20,000 tokens at 4 bytes a token).
COMPACTED_USER_MESSAGES_MAX_BYTES = 80_000
_NO_SUMMARY = "(no summary available)"


def _is_model_visible(item: ResponseItem) -> bool:
    kind = item.get("type")
    if kind == "message":
        return item.get("role") != "system"
    return kind in PERSISTED_RESPONSE_ITEM_TYPES and kind != "ghost_snapshot"


def drop_last_user_turns(history: list[ResponseItem], num_turns: int) -> list[ResponseItem]:
    """History without its last ``num_turns`` user turns (what thread/rollback removes)."""
    if num_turns <= 0:
        return history
    starts = [i for i, item in enumerate(history) if user_message_text(item) is not None]
    if not starts:
        return history
    cut = starts[0] if num_turns >= len(starts) else starts[-num_turns]
    return history[:cut]


def _user_message(text: str) -> ResponseItem:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _compacted_history(
    history: list[ResponseItem], summary: str, initial_context: Sequence[ResponseItem]
) -> list[ResponseItem]:
    kept: list[str] = []
    budget = COMPACTED_USER_MESSAGES_MAX_BYTES
    for item in reversed(history):
        text = user_message_text(item)
        if text is None or budget <= 0:
            continue
        encoded = text.encode("utf-8")
        if len(encoded) <= budget:
            kept.append(text)
            budget -= len(encoded)
        else:
            kept.append(encoded[-budget:].decode("utf-8", "ignore"))
            budget = 0
    rebuilt = list(initial_context)
    rebuilt.extend(_user_message(text) for text in reversed(kept))
    rebuilt.append(_user_message(summary or _NO_SUMMARY))
    return rebuilt


def history_for_resume(
    source: Rollout | Iterable[RolloutItem], *, initial_context: Sequence[ResponseItem] = ()
) -> list[ResponseItem]:
    """The model input to continue a stored thread from, in order.

    Response items are replayed; ``thread_rolled_back`` drops the last N user turns; a ``compacted``
    record replaces everything before it with its ``replacement_history`` or, for rollouts that lack
    one, with the earlier user messages plus the summary (after ``initial_context``). Ghost snapshots
    and system messages are not model input and are left out. The server appends a fresh initial
    context after this history before the next turn, as the reference does.
    """
    history: list[ResponseItem] = []
    for item in _items_of(source):
        kind, payload = item["type"], item["payload"]
        if kind == "response_item":
            if _is_model_visible(payload):
                history.append(payload)
        elif kind == "compacted":
            replacement = payload.get("replacement_history")
            if isinstance(replacement, list):
                history = [p for p in replacement if isinstance(p, dict) and _is_model_visible(p)]
            else:
                message = payload.get("message")
                history = _compacted_history(
                    history, message if isinstance(message, str) else "", initial_context
                )
        elif kind == "event_msg" and payload.get("type") == "thread_rolled_back":
            num = payload.get("num_turns")
            history = drop_last_user_turns(history, num if isinstance(num, int) else 0)
    return history
