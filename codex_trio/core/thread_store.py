"""The stored threads under ``$CODEX_HOME``: listing, lookup, archiving and names.

Behaviour follows the reference (Codex 0.94.0) as observed against its app-server: which rollouts are
listed, their previews, page sizes, cursors and their errors, the nextCursor rules of its paging loop
(``tests/fixtures/reference_rollouts`` records its answers). The reference re-reads the head of every
rollout it walks past, from the newest, on every page; with tens of thousands of rollouts users wait
tens of seconds. Here:

- a created_at page walks the date directories newest first and jumps straight to the cursor (file
  names carry the creation time and the id), so a page touches only the files it returns;
- what a rollout's head says is cached, keyed by (size, mtime) and re-read whenever those change, and
  the cache is persisted in ``$CODEX_HOME/.codex-trio/thread_index.v1.json`` so a new process starts
  warm. Directory listings are cached by the directory's mtime. Nothing cached is trusted without a
  ``stat``, so files another process (the reference itself) writes, moves or deletes show up at once;
  entries whose mtime is within two seconds of when they were read are re-checked, since a
  coarse-grained clock could hide a change made in the same tick;
- a head is read as far as the reference reads it, but most lines are told apart by their first bytes
  (record type, payload type, role, injected context) and only what the summary shows is parsed as
  JSON; reading stops once nothing further could change the summary. When reads are seen to wait for
  the disk, the kernel is asked to read the next rollouts ahead of the scan.

Known differences from the reference, all deliberate:
- the reference stops after 10,000 files per request, so older threads can never be listed; there is
  no such cap here;
- updated_at pages are ordered by (mtime in whole seconds, id), the resolution of the cursor, where
  the reference orders by milliseconds and can skip threads updated in the same second as a page's
  last one.

Filesystem work runs in a worker thread (``trio.to_thread``), one request at a time per store.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, NamedTuple

import trio

from codex_trio.core.rollout import (
    _SESSION_PREFIX_TAGS,
    ARCHIVED_SESSIONS_SUBDIR,
    FILE_TIMESTAMP_FORMAT,
    ROLLOUT_ITEM_TYPES,
    SESSIONS_SUBDIR,
    SKILL_INSTRUCTIONS_OPEN_TAG,
    USER_INSTRUCTIONS_LEGACY_OPEN_TAG,
    USER_INSTRUCTIONS_PREFIX,
    JsonObject,
    Rollout,
    RolloutLine,
    Turn,
    parse_file_timestamp,
    parse_rollout_file_name,
    parse_rollout_line,
    parse_timestamp,
    parse_uuid,
    preview_from_first_message,
    read_rollout,
    reconstruct_turns,
    user_message_text,
)

from ..protocol.v2 import GitInfo, Thread
from ..rpc.errors import RpcError

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
# How much of a rollout the reference reads to list it: the first 10 records (session_meta and
# response items) for the preview, and up to 200 more lines looking for a user_message event. It stops
# as soon as it has seen a session_meta and a user_message event, though: a thread whose first
# user_message event comes before any message the user typed (a review's relayed prompt) has no preview,
# so it is not listed, and thread/read shows it with preview "" whatever comes later.
HEAD_RECORD_LIMIT = 10
USER_EVENT_SCAN_LIMIT = 200
# Sources listed when the client does not ask for others.
INTERACTIVE_SOURCES = ("cli", "vscode")
SESSION_INDEX_FILE = "session_index.jsonl"
INDEX_DIR = ".codex-trio"
INDEX_FILE = "thread_index.v1.json"
# 2: heads end at the first user_message event (entries of version 1 may have read past it).
_INDEX_VERSION = 2
# A cache entry read within this long of the file's (or directory's) mtime is re-checked next time.
_RACY_NS = 2_000_000_000
# Save the persisted index at most this often while paging (and always on the last page).
_INDEX_SAVE_INTERVAL_NS = 5_000_000_000
# A rollout's head read from the page cache takes some 40 us; one that waits for the disk, from
# ~150 us (a fast SSD) to milliseconds. Once most reads of a stretch are slower than this (a busy CPU
# slows down a few, not most), the kernel is asked to read the next rollouts ahead of the scan, so
# that the disk works while the scan parses.
_SLOW_SCAN_S = 100e-6
_SCAN_STRETCH = 32
_READ_AHEAD = 64

INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603

SortKey = Literal["created_at", "updated_at"]


class ThreadStoreError(RpcError):
    """A failure with the JSON-RPC error code and message the reference sends for it: raised through a
    handler, it is the error response as it is."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message, code=code)


class RolloutReadError(Exception):
    """A rollout that cannot describe a thread (empty, or not starting with session metadata)."""


def _io_error_text(exc: OSError) -> str:
    # Rust's io::Error prints like this, and the reference's messages embed it.
    if exc.errno is not None:
        return f"{os.strerror(exc.errno)} (os error {exc.errno})"
    return str(exc)


# --------------------------------------------------------------------------------------------------
# Wire shapes
# --------------------------------------------------------------------------------------------------




def session_source_to_v2(source: Any) -> Any:
    """The v2 ``SessionSource`` for the ``source`` recorded in a session_meta."""
    if source in ("cli", "vscode", "exec", "unknown"):
        return source
    if source == "mcp":
        return "appServer"
    if isinstance(source, dict) and "subagent" in source:
        return {"subAgent": source["subagent"]}
    return "unknown"


def source_kind_matches(source: Any, kinds: Sequence[str]) -> bool:
    """Whether a recorded source is one of the v2 ``ThreadSourceKind``s."""
    sub = source.get("subagent") if isinstance(source, dict) else None
    for kind in kinds:
        if kind in ("cli", "vscode", "exec", "unknown") and source == kind:
            return True
        if kind == "appServer" and source == "mcp":
            return True
        if sub is None:
            continue
        if kind == "subAgent":
            return True
        if (kind == "subAgentReview" and sub == "review") or (kind == "subAgentCompact" and sub == "compact"):
            return True
        if kind == "subAgentThreadSpawn" and isinstance(sub, dict) and "thread_spawn" in sub:
            return True
        if kind == "subAgentOther" and isinstance(sub, dict) and "other" in sub:
            return True
    return False


# --------------------------------------------------------------------------------------------------
# What the head of a rollout says
# --------------------------------------------------------------------------------------------------


class HeadSummary(NamedTuple):
    """What listing needs from a rollout; depends only on the file's content, so it is cacheable.

    A named tuple: one is built per rollout listed, and the persisted index stores them positionally.
    """

    # Whether a session_meta and a user_message event appear within the lines the listing reads.
    saw_meta: bool = False
    saw_user_event: bool = False
    # Whether the first record is a session_meta (a thread summary needs one).
    first_is_meta: bool = False
    # From the first session_meta.
    thread_id: str | None = None
    # Its timestamp in epoch seconds (0 if it does not parse), as createdAt shows it.
    created_at: int = 0
    cwd: str = ""
    cli_version: str = ""
    source: Any = "vscode"
    model_provider: str | None = None
    git: dict[str, Any] | None = None
    # The first message the user typed among the head records, as previews show it.
    preview: str | None = None


# Rollout lines written by the reference (and by us) start like this; lines that cannot matter to a
# listing are recognised from this prefix without parsing their (often large) payload.
_LINE_PREFIX = re.compile(
    rb'\{"timestamp":"[^"\\]*","type":"([a-z_]+)","payload":(?:\{"type":"([a-z_]+)"(?:,"role":"([a-z]+)")?)?'
)
# How a user message with one text part goes on after the prefix, and how it ends, as the reference
# writes it.
_ONE_TEXT_OPEN = b',"content":[{"type":"input_text","text":"'
_ONE_TEXT_CLOSE = b'"}]}}'
_ROLLOUT_KINDS = frozenset(kind.encode() for kind in ROLLOUT_ITEM_TYPES)
_NOT_USER_ROLES = (b"assistant", b"developer", b"system")
# Texts that make a single-part user-role message injected context rather than something the user
# typed (see rollout.user_message_text), as they start in JSON. Another spelling (escaped, upper case,
# leading blanks) is simply decoded and judged by user_message_text.
_CONTEXT_TEXT_STARTS = tuple(
    text.encode()
    for text in (
        USER_INSTRUCTIONS_PREFIX,
        USER_INSTRUCTIONS_LEGACY_OPEN_TAG,
        SKILL_INSTRUCTIONS_OPEN_TAG,
        *_SESSION_PREFIX_TAGS,
    )
)
_BASE_INSTRUCTIONS = b',"base_instructions":{"text":"'
_BLANKS = b" \t\r\n"
# Enough for the whole head of a typical rollout in one read (its session_meta alone is ~20 KB).
_READ_SIZE = 1 << 16
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _epoch_seconds(timestamp: str) -> int:
    moment = parse_timestamp(timestamp) if timestamp else None
    return int(moment.timestamp() // 1) if moment is not None else 0


def _string_end(buf: bytes, start: int, end: int) -> int:
    """Where the JSON string whose text starts at ``start`` closes (its quote), or -1 before ``end``."""
    at = start
    while True:
        at = buf.find(b'"', at, end)
        if at < 0:
            return -1
        backslashes = 0
        while buf[at - 1 - backslashes] == 0x5C:
            backslashes += 1
        if backslashes % 2 == 0:
            return at
        at += 1


def _parse_session_meta_line(buf: bytes, start: int = 0, end: int | None = None) -> RolloutLine | None:
    """Parse a session_meta line (``buf[start:end]``) without decoding its instructions, ~20 KB that
    listing never shows."""
    end = len(buf) if end is None else end
    at = buf.find(_BASE_INSTRUCTIONS, start, end)
    if at > start:
        # The instructions are the last key of the meta, but for git: find their end from the back.
        tail_from = max(at, end - 4096)
        close = buf.rfind(b'"},"git":', tail_from, end)
        if close < 0:
            stripped_end = len(buf[start:end].rstrip()) + start
            close = stripped_end - 4 if buf.endswith(b'"}}}', start, stripped_end) else -1
        if close > at:
            backslashes = 0
            while buf[close - 1 - backslashes] == 0x5C:
                backslashes += 1
            # An escaped quote means the guess is wrong; the full parse below decides then.
            if backslashes % 2 == 0:
                line = parse_rollout_line(buf[start:at] + buf[close + 2 : end])
                if line is not None:
                    return line
    return parse_rollout_line(buf[start:end])


_HEAD_FIELDS = HeadSummary._fields


def _head_summary(
    meta: JsonObject | None, first_is_meta: bool, preview: str | None, saw_meta: bool, saw_user: bool
) -> HeadSummary:
    if meta is None:
        return HeadSummary(saw_meta, saw_user, preview=preview)
    git = meta.get("git")
    provider = meta.get("model_provider")
    return HeadSummary(
        saw_meta,
        saw_user,
        first_is_meta,
        parse_uuid(meta["id"]),
        _epoch_seconds(meta["timestamp"]),
        meta["cwd"],
        meta["cli_version"],
        meta.get("source", "vscode"),
        provider if isinstance(provider, str) else None,
        git if isinstance(git, dict) else None,
        preview,
    )


def _summarize_head(records: list[tuple[str, JsonObject]], saw_meta: bool, saw_user: bool) -> HeadSummary:
    meta = next((payload for kind, payload in records if kind == "session_meta"), None)
    preview = None
    for kind, payload in records:
        if kind == "response_item":
            text = user_message_text(payload)
            if text is not None:
                preview = preview_from_first_message(text)
                break
    first_is_meta = bool(records) and records[0][0] == "session_meta"
    return _head_summary(meta, first_is_meta, preview, saw_meta, saw_user)


def _line_spans(path: str | Path) -> Iterator[tuple[bytes, int, int]]:
    """The lines of a file as (buffer, start, end), newlines excluded: read in large blocks and never
    copied line by line (a rollout's first line alone is ~20 KB that listing mostly skips)."""
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    try:
        buf = os.read(fd, _READ_SIZE)
        pos = 0
        while buf:
            newline = buf.find(b"\n", pos)
            if newline >= 0:
                yield buf, pos, newline
                pos = newline + 1
                continue
            more = os.read(fd, _READ_SIZE)
            if not more:
                if pos < len(buf):
                    yield buf, pos, len(buf)
                return
            buf, pos = buf[pos:] + more, 0
    finally:
        os.close(fd)


def _typed_text(text: str) -> str | None:
    """user_message_text of a user message with this one text part."""
    part = {"type": "input_text", "text": text}
    return user_message_text({"type": "message", "role": "user", "content": [part]})


def scan_list_head(path: str | Path) -> HeadSummary:
    """Read as much of a rollout as the reference does to list it. Blocking.

    The reference parses each line it reads; here most lines are classified from their first bytes,
    and reading stops as soon as nothing further could change the summary.
    """
    # The head records (session_meta and response items, at most HEAD_RECORD_LIMIT): only how many
    # there are, the first one's kind, the first session_meta and the first user message matter.
    records = 0
    first_is_meta = False
    meta: JsonObject | None = None
    preview: str | None = None
    saw_meta = saw_user = False
    scanned = 0
    for buf, start, end in _line_spans(path):
        if start == end or (buf[start] in _BLANKS and not buf[start:end].strip()):
            continue
        if scanned >= HEAD_RECORD_LIMIT and not (
            saw_meta and not saw_user and scanned < HEAD_RECORD_LIMIT + USER_EVENT_SCAN_LIMIT
        ):
            break
        scanned += 1
        head_full = records >= HEAD_RECORD_LIMIT
        match = _LINE_PREFIX.match(buf, start, end)
        line: RolloutLine | None
        if match is None:
            line = parse_rollout_line(buf[start:end])
        else:
            kind_bytes, payload_type, role = match.groups()
            if kind_bytes in (b"turn_context", b"compacted") or kind_bytes not in _ROLLOUT_KINDS:
                continue
            if kind_bytes == b"event_msg":
                if saw_user or (payload_type is not None and payload_type != b"user_message"):
                    continue
                line = parse_rollout_line(buf[start:end])
            elif kind_bytes == b"response_item":
                if head_full:
                    continue
                # Past the first user message only the number of records matters; other messages and
                # items just take a place (unless torn).
                if payload_type is not None and buf.endswith((b"}", b"}\r"), start, end):
                    if preview is not None or payload_type != b"message" or role in _NOT_USER_ROLES:
                        records += 1
                        continue
                    text_at = match.end() + len(_ONE_TEXT_OPEN)
                    if role == b"user" and buf.startswith(_ONE_TEXT_OPEN, match.end()):
                        text_end = _string_end(buf, text_at, end)
                        if text_end > 0 and buf[text_end:end].rstrip() == _ONE_TEXT_CLOSE:
                            # One text part: injected context is told from its first bytes, and only
                            # a message the user may have typed has its text decoded.
                            if not buf.startswith(_CONTEXT_TEXT_STARTS, text_at):
                                try:
                                    text = _typed_text(json.loads(buf[text_at - 1 : text_end + 1]))
                                except ValueError:
                                    continue  # not JSON after all: the reference skips the line
                                if text is not None:
                                    preview = preview_from_first_message(text)
                            records += 1
                            continue
                line = parse_rollout_line(buf[start:end])
            else:
                line = _parse_session_meta_line(buf, start, end)
        if line is None:
            continue
        kind = line["type"]
        if kind == "session_meta":
            saw_meta = True
            if not head_full:
                if records == 0:
                    first_is_meta = True
                records += 1
                if meta is None:
                    meta = line["payload"]
        elif kind == "response_item":
            if head_full:
                continue
            records += 1
            if preview is None:
                text = user_message_text(line["payload"])
                if text is not None:
                    preview = preview_from_first_message(text)
        elif kind == "event_msg" and line["payload"].get("type") == "user_message":
            saw_user = True
        else:
            continue
        if saw_user and saw_meta:
            break  # the head ends here (see HEAD_RECORD_LIMIT)
    return _head_summary(meta, first_is_meta, preview, saw_meta, saw_user)


def _head_lines(path: Path) -> Generator[RolloutLine, None, None]:
    """The lines of a rollout that can shape its head records, parsed; others are told from their first
    bytes and skipped."""
    for buf, start, end in _line_spans(path):
        match = _LINE_PREFIX.match(buf, start, end)
        if match is not None:
            kind, payload_type = match.group(1), match.group(2)
            if kind == b"event_msg":
                if payload_type is not None and payload_type != b"user_message":
                    continue
            elif kind not in (b"session_meta", b"response_item"):
                continue
        raw = buf[start:end]
        if not raw.strip():
            continue
        line = parse_rollout_line(raw)
        if line is not None:
            yield line


def _read_head_records(path: Path) -> list[tuple[str, JsonObject]]:
    """The head records of a rollout (see :func:`_head_records`). Blocking."""
    lines = _head_lines(path)
    try:
        return _head_records(lines)
    finally:
        lines.close()


def _head_records(lines: Iterable[RolloutLine]) -> list[tuple[str, JsonObject]]:
    """The first 10 session_meta/response records, however far into the file, up to where the head
    ends: once a session_meta and a user_message event have been seen (see HEAD_RECORD_LIMIT)."""
    records: list[tuple[str, JsonObject]] = []
    saw_meta = saw_user = False
    for line in lines:
        kind = line["type"]
        if kind in ("session_meta", "response_item"):
            records.append((kind, line["payload"]))
            if len(records) >= HEAD_RECORD_LIMIT:
                break
            saw_meta = saw_meta or kind == "session_meta"
        elif kind == "event_msg" and line["payload"].get("type") == "user_message":
            saw_user = True
        else:
            continue
        if saw_meta and saw_user:
            break
    return records


# --------------------------------------------------------------------------------------------------
# Thread summaries
# --------------------------------------------------------------------------------------------------


class ThreadSummary(NamedTuple):
    """A stored thread as the v2 ``Thread`` object describes it (without turns)."""

    id: str
    # Absolute path of the rollout.
    path: str
    preview: str
    model_provider: str
    created_at: int
    updated_at: int
    cwd: str
    cli_version: str
    # As recorded in the session_meta (``"vscode"``, ``"mcp"``, ``{"subagent": ...}``...).
    source: Any
    git: dict[str, Any] | None = None

    def to_thread(self, turns: Sequence[Turn] = ()) -> Thread:
        git_info: GitInfo | None = None
        if self.git is not None:
            git_info = {
                "sha": self.git.get("commit_hash"),
                "branch": self.git.get("branch"),
                "originUrl": self.git.get("repository_url"),
            }
        return {
            "id": self.id,
            "preview": self.preview,
            "modelProvider": self.model_provider,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "path": self.path,
            "cwd": self.cwd,
            "cliVersion": self.cli_version,
            "source": session_source_to_v2(self.source),
            "gitInfo": git_info,
            "turns": list(turns),
        }


def _summary_from_head(
    head: HeadSummary, path: str, mtime_ns: int | None, default_provider: str
) -> ThreadSummary:
    created_at = head.created_at
    return ThreadSummary(
        id=head.thread_id or "",
        path=path,
        preview=head.preview if head.preview is not None else "",
        model_provider=head.model_provider if head.model_provider is not None else default_provider,
        created_at=created_at,
        updated_at=mtime_ns // 1_000_000_000 if mtime_ns is not None else created_at,
        cwd=head.cwd,
        cli_version=head.cli_version,
        source=head.source,
        git=head.git,
    )


def summary_from_records(
    records: list[tuple[str, JsonObject]], path: Path, mtime_ns: int | None, default_provider: str
) -> ThreadSummary:
    """The summary thread/read, thread/resume and thread/start show for a rollout."""
    if not records:
        raise RolloutReadError(f"rollout at {path} is empty")
    if records[0][0] != "session_meta":
        raise RolloutReadError(f"rollout at {path} does not start with session metadata")
    return _summary_from_head(_summarize_head(records, True, True), str(path), mtime_ns, default_provider)


def read_thread_summary(path: Path, default_provider: str) -> ThreadSummary:
    """Blocking; see :meth:`ThreadStore.read_summary`."""
    records = _read_head_records(path)
    try:
        mtime_ns: int | None = os.stat(path).st_mtime_ns
    except OSError:
        mtime_ns = None
    return summary_from_records(records, path, mtime_ns, default_provider)


def normalize_thread_name(name: str) -> str | None:
    trimmed = name.strip()
    return trimmed or None


def _format_name_timestamp(now_ns: int) -> str:
    seconds, nanos = divmod(now_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


# --------------------------------------------------------------------------------------------------
# Listing engine (blocking; runs in a worker thread)
# --------------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1)


# The listing's internal records are plain classes with slots: typing.NamedTuple and dataclasses
# cost start-up time (a quarter of a millisecond each) that a server answering initialize notices.


class _Candidate:
    """A rollout met on a walk."""

    __slots__ = ("key", "path", "thread_id", "uid")

    def __init__(self, key: int, uid: int, thread_id: str, path: str) -> None:
        # Seconds of the sort timestamp read as UTC, and the id as an integer: the page order is
        # (key, uid) descending, the reference's (timestamp, uuid).
        self.key = key
        self.uid = uid
        self.thread_id = thread_id
        self.path = path


def _file_key(stamp: datetime) -> int:
    return int((stamp - _EPOCH).total_seconds())


def _format_cursor(key: int, thread_id: str) -> str:
    stamp = datetime.fromtimestamp(key, timezone.utc).replace(tzinfo=None)
    return f"{stamp.strftime(FILE_TIMESTAMP_FORMAT)}|{thread_id}"


def parse_cursor(token: str) -> tuple[int, int]:
    """``(key, uid)`` of a ``<YYYY-MM-DDTHH-MM-SS>|<uuid>`` cursor; raises the reference's error."""
    stamp_text, sep, id_text = token.partition("|")
    stamp = parse_file_timestamp(stamp_text) if sep else None
    thread_id = parse_uuid(id_text) if sep else None
    if stamp is None or thread_id is None:
        raise ThreadStoreError(INVALID_REQUEST, f"invalid cursor: {token}")
    return _file_key(stamp), int(thread_id.replace("-", ""), 16)


class _DirListing:
    __slots__ = ("entries", "listed_at_ns", "mtime_ns", "neg_keys")

    def __init__(
        self, mtime_ns: int, listed_at_ns: int, entries: list[Any], neg_keys: list[tuple[int, int]]
    ) -> None:
        self.mtime_ns = mtime_ns
        self.listed_at_ns = listed_at_ns
        self.entries = entries
        # For day directories: negated (key, uid) of ``entries``, ascending, for bisecting to a cursor.
        self.neg_keys = neg_keys


class _CachedHead:
    __slots__ = ("checked_at_ns", "head", "mtime_ns", "size")

    def __init__(self, size: int, mtime_ns: int, checked_at_ns: int, head: HeadSummary) -> None:
        self.size = size
        self.mtime_ns = mtime_ns
        self.checked_at_ns = checked_at_ns
        self.head = head


class _Filters:
    __slots__ = ("allowed_sources", "default_provider", "post_source_kinds", "providers")

    def __init__(
        self,
        allowed_sources: tuple[str, ...],
        post_source_kinds: tuple[str, ...] | None,
        providers: tuple[str, ...] | None,
        default_provider: str,
    ) -> None:
        self.allowed_sources = allowed_sources
        self.post_source_kinds = post_source_kinds
        self.providers = providers
        self.default_provider = default_provider

    def core_ok(self, head: HeadSummary) -> bool:
        if not (head.saw_meta and head.saw_user_event):
            return False
        if self.allowed_sources and head.source not in self.allowed_sources:
            return False
        if self.providers is not None:
            provider = head.model_provider if head.model_provider is not None else self.default_provider
            if provider not in self.providers:
                return False
        return True

    def app_ok(self, head: HeadSummary) -> bool:
        if not head.first_is_meta or head.preview is None:
            return False
        return self.post_source_kinds is None or source_kind_matches(head.source, self.post_source_kinds)


def _source_filters(source_kinds: Sequence[str] | None) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """(sources the scan keeps, kinds checked afterwards), as the reference splits them."""
    if not source_kinds:
        return INTERACTIVE_SOURCES, None
    kinds = tuple(source_kinds)
    if any(kind not in ("cli", "vscode") for kind in kinds):
        return (), kinds
    return tuple(dict.fromkeys(kinds)), kinds


def _numeric_dir(name: str, limit: int) -> int | None:
    body = name[1:] if name.startswith("+") else name
    if not body.isdigit() or not body.isascii():
        return None
    value = int(body)
    return value if value <= limit else None


_ROLLOUT_NAME = re.compile(
    r"rollout-(\d{4})-(\d\d)-(\d\d)T(\d\d)-(\d\d)-(\d\d)"
    r"-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl"
)


def _parse_name(name: str) -> tuple[int, str] | None:
    """(sort key, thread id) of a rollout's file name, or None if it names no rollout."""
    # The usual lowercase name in one regex; anything else the general (slower) parser decides.
    match = _ROLLOUT_NAME.fullmatch(name)
    if match is None:
        parsed = parse_rollout_file_name(name)
        return None if parsed is None else (_file_key(parsed[0]), parsed[1])
    year, month, day, hour, minute, second, thread_id = match.groups()
    try:
        stamp = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None
    return _file_key(stamp), thread_id


class _Scanner:
    """Caches and walks for one CODEX_HOME. Used by one worker thread at a time."""

    def __init__(self, codex_home: Path, persist_index: bool, clock_ns: Callable[[], int]) -> None:
        self.codex_home = codex_home
        self.persist_index = persist_index
        self.clock_ns = clock_ns
        # Keyed by path strings, which hash much faster than Paths.
        self.dirs: dict[str, _DirListing] = {}
        self.heads: dict[str, _CachedHead] = {}
        self.index_loaded = False
        self.dirty = False
        self.validated: set[str] = set()
        self.last_save_ns = 0
        self.read_ahead = False
        self.scans = self.slow_scans = 0
        # Files the kernel was asked to read ahead and that have not been scanned since.
        self.hinted: set[str] = set()

    # ---- persisted index ---------------------------------------------------------------------

    @property
    def index_path(self) -> Path:
        return self.codex_home / INDEX_DIR / INDEX_FILE

    def load_index(self) -> None:
        if self.index_loaded:
            return
        self.index_loaded = True
        if not self.persist_index:
            return
        try:
            with open(self.index_path, "rb") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return
        # Entries are positional: an index written with other fields is ignored, not misread.
        if not isinstance(data, dict) or data.get("version") != _INDEX_VERSION:
            return
        if data.get("fields") != list(_HEAD_FIELDS):
            return
        entries = data.get("entries")
        if not isinstance(entries, list):
            return
        home = str(self.codex_home)
        scanned, self.heads = self.heads, {}
        for entry in entries:
            try:
                rel, size, mtime_ns, checked_at_ns, *head = entry
                cached = _CachedHead(int(size), int(mtime_ns), int(checked_at_ns), HeadSummary(*head))
            except (TypeError, ValueError):
                continue
            self.heads[os.path.join(home, rel)] = cached
        # What this process read before the index wins; if it only confirmed settled entries of the
        # index, there is nothing new to save (a first page must not cost rewriting the whole index).
        confirmed = True
        for path, fresh in scanned.items():
            stored = self.heads.get(path)
            confirmed = confirmed and (
                stored is not None
                and stored.checked_at_ns - stored.mtime_ns > _RACY_NS
                and (stored.size, stored.mtime_ns, stored.head) == (fresh.size, fresh.mtime_ns, fresh.head)
            )
            self.heads[path] = fresh
        if confirmed:
            self.dirty = False

    def save_index(self, force: bool) -> None:
        # Saving before the index was read would replace it with what this process happened to see.
        if not (self.persist_index and self.dirty and self.index_loaded):
            return
        now = self.clock_ns()
        if not force and now - self.last_save_ns < _INDEX_SAVE_INTERVAL_NS:
            return
        prefix = os.path.join(str(self.codex_home), "")
        entries: list[list[Any]] = []
        for path, cached in self.heads.items():
            if not path.startswith(prefix) or (path not in self.validated and not os.path.exists(path)):
                continue
            entries.append(
                [path[len(prefix) :], cached.size, cached.mtime_ns, cached.checked_at_ns, *cached.head]
            )
        target = self.index_path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            document = {"version": _INDEX_VERSION, "fields": list(_HEAD_FIELDS), "entries": entries}
            data = json.dumps(document, separators=(",", ":"))
            with open(temp, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(temp, target)
        except OSError:
            # The index only saves work; failing to write it must not fail a listing.
            return
        self.dirty = False
        self.last_save_ns = now

    # ---- heads -------------------------------------------------------------------------------

    def head(self, path: str) -> tuple[HeadSummary, int] | None:
        """The head summary and mtime of a rollout, or None if it is gone or unreadable."""
        try:
            st = os.stat(path)
        except OSError:
            self.heads.pop(path, None)
            return None
        cached = self.heads.get(path)
        if (
            cached is not None
            and cached.size == st.st_size
            and cached.mtime_ns == st.st_mtime_ns
            and cached.checked_at_ns - cached.mtime_ns > _RACY_NS
        ):
            self.validated.add(path)
            return cached.head, st.st_mtime_ns
        checked_at = self.clock_ns()
        started = time.perf_counter()
        try:
            head = scan_list_head(path)
        except OSError:
            return None
        self._note_scan(time.perf_counter() - started)
        self.hinted.discard(path)
        self.heads[path] = _CachedHead(st.st_size, st.st_mtime_ns, checked_at, head)
        self.validated.add(path)
        self.dirty = True
        return head, st.st_mtime_ns

    def _note_scan(self, seconds: float) -> None:
        self.scans += 1
        if seconds > _SLOW_SCAN_S:
            self.slow_scans += 1
        if self.scans == _SCAN_STRETCH:
            self.read_ahead = self.read_ahead or 2 * self.slow_scans > _SCAN_STRETCH
            self.scans = self.slow_scans = 0

    def reading_ahead(self, candidates: Iterator[_Candidate]) -> Iterator[_Candidate]:
        """``candidates``, unchanged. Once reads have been seen to wait for the disk (the first listing
        after a boot reads thousands of rollouts that no cache holds), the kernel is asked to read the
        heads of the next few not yet cached before the scan gets to them."""
        window: deque[_Candidate] = deque()
        for cand in candidates:
            if not window and not self.read_ahead:
                yield cand
                continue
            window.append(cand)
            self._hint(cand.path)
            if len(window) > _READ_AHEAD:
                yield window.popleft()
        yield from window

    def _hint(self, path: str) -> None:
        if path in self.heads or path in self.hinted or not hasattr(os, "posix_fadvise"):
            return
        if len(self.hinted) > 16 * _READ_AHEAD:
            # Left over from walks a client did not follow to the end.
            self.hinted.clear()
        self.hinted.add(path)
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        except OSError:
            return
        try:
            os.posix_fadvise(fd, 0, _READ_SIZE, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)

    # ---- directories -------------------------------------------------------------------------

    def _listing(
        self,
        directory: str,
        build: Callable[[Iterator[os.DirEntry[str]]], tuple[list[Any], list[tuple[int, int]]]],
    ) -> _DirListing | None:
        try:
            mtime_ns = os.stat(directory).st_mtime_ns
        except OSError:
            self.dirs.pop(directory, None)
            return None
        cached = self.dirs.get(directory)
        if cached is not None and cached.mtime_ns == mtime_ns and cached.listed_at_ns - mtime_ns > _RACY_NS:
            return cached
        listed_at = self.clock_ns()
        try:
            with os.scandir(directory) as entries:
                listing = _DirListing(mtime_ns, listed_at, *build(entries))
        except OSError:
            return None
        self.dirs[directory] = listing
        return listing

    def subdirs(self, directory: str, limit: int) -> list[tuple[int, str]]:
        def build(entries: Iterator[os.DirEntry[str]]) -> tuple[list[Any], list[tuple[int, int]]]:
            found = []
            for entry in entries:
                value = _numeric_dir(entry.name, limit)
                if value is not None and entry.is_dir(follow_symlinks=False):
                    found.append((value, entry.path))
            found.sort(key=lambda pair: pair[0], reverse=True)
            return found, []

        listing = self._listing(directory, build)
        return listing.entries if listing is not None else []

    def rollout_files(self, directory: str) -> _DirListing | None:
        def build(entries: Iterator[os.DirEntry[str]]) -> tuple[list[Any], list[tuple[int, int]]]:
            found = []
            for entry in entries:
                parsed = _parse_name(entry.name)
                if parsed is None or not entry.is_file(follow_symlinks=False):
                    continue
                key, thread_id = parsed
                uid = int(thread_id.replace("-", ""), 16)
                found.append(_Candidate(key, uid, thread_id, entry.path))
            found.sort(key=lambda c: (c.key, c.uid), reverse=True)
            return found, [(-c.key, -c.uid) for c in found]

        return self._listing(directory, build)

    # ---- walks -------------------------------------------------------------------------------

    def day_dirs(
        self, root: str, newest: tuple[int, int, int] | None = None
    ) -> Iterator[tuple[tuple[int, int, int], str]]:
        """Day directories, newest first; with ``newest``, none after that day (and the years and
        months after it are not even listed)."""
        for year, year_path in self.subdirs(root, 0xFFFF):
            if newest is not None and year > newest[0]:
                continue
            for month, month_path in self.subdirs(year_path, 0xFF):
                if newest is not None and (year, month) > newest[:2]:
                    continue
                for day, day_path in self.subdirs(month_path, 0xFF):
                    if newest is None or (year, month, day) <= newest:
                        yield (year, month, day), day_path

    def created_order(self, root: str, flat: bool, anchor: tuple[int, int] | None) -> Iterator[_Candidate]:
        """Rollouts newest first by file name, after ``anchor``, as the reference walks them."""
        neg_anchor = (-anchor[0], -anchor[1]) if anchor is not None else None
        passed = anchor is None
        anchor_day = None
        if anchor is not None:
            stamp = datetime.fromtimestamp(anchor[0], timezone.utc)
            anchor_day = (stamp.year, stamp.month, stamp.day)
        # Directories are named after their files' dates: one newer than the cursor holds only files
        # before it in the order.
        directories = [root] if flat else (path for _, path in self.day_dirs(root, anchor_day))
        for directory in directories:
            listing = self.rollout_files(directory)
            if listing is None:
                continue
            start = 0
            if not passed and neg_anchor is not None:
                start = bisect.bisect_right(listing.neg_keys, neg_anchor)
                if start >= len(listing.entries):
                    continue
                passed = True
            yield from listing.entries[start:]

    def updated_order(self, root: str, flat: bool, anchor: tuple[int, int] | None) -> Iterator[_Candidate]:
        """Rollouts by last update (mtime, whole seconds), newest first, after ``anchor``.

        Every rollout is stat'ed each time: mtimes change without their directory changing.
        """
        if flat:
            listings = [self.rollout_files(root)]
        else:
            listings = [self.rollout_files(directory) for _, directory in self.day_dirs(root)]
        stat = os.stat
        keyed: list[tuple[int, int, _Candidate]] = []
        for listing in listings:
            if listing is None:
                continue
            for cand in listing.entries:
                try:
                    seconds = stat(cand.path).st_mtime_ns // 1_000_000_000
                except OSError:
                    continue
                keyed.append((seconds, cand.uid, cand))
        if anchor is not None:
            anchor_key, anchor_uid = anchor
            keyed = [e for e in keyed if e[0] < anchor_key or (e[0] == anchor_key and e[1] < anchor_uid)]
        # Ids are unique, so the candidates themselves are never compared.
        keyed.sort(reverse=True)
        for seconds, _, cand in keyed:
            yield _Candidate(seconds, cand.uid, cand.thread_id, cand.path)

    def _find_in(self, directory: str, thread_id: str) -> str | None:
        listing = self.rollout_files(directory) if os.path.isdir(directory) else None
        for cand in listing.entries if listing is not None else []:
            if cand.thread_id == thread_id:
                return cand.path
        return None

    def find(self, root: str, thread_id: str, flat: bool) -> str | None:
        if not os.path.isdir(root):
            return None
        if flat:
            return self._find_in(root, thread_id)
        # A thread id is a UUIDv7: its time says which day directory to look in first.
        millis = int(thread_id.replace("-", "")[:12], 16)
        try:
            created = datetime.fromtimestamp(millis / 1000, timezone.utc).astimezone()
        except (OverflowError, OSError, ValueError):
            created = None
        if created is not None:
            for shift in (0, -1, 1):
                try:
                    day = datetime.fromordinal(created.toordinal() + shift)
                except ValueError:
                    continue
                directory = os.path.join(root, f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}")
                found = self._find_in(directory, thread_id)
                if found is not None:
                    return found
        for _, directory in self.day_dirs(root):
            found = self._find_in(directory, thread_id)
            if found is not None:
                return found
        # The reference searches the whole tree for the id; rollouts outside YYYY/MM/DD still count.
        suffix = f"-{thread_id}.jsonl"
        for dirpath, _dirnames, filenames in os.walk(root):
            for name in filenames:
                if name.startswith("rollout-") and name.endswith(suffix):
                    return os.path.join(dirpath, name)
        return None


def _paginate(
    scanner: _Scanner,
    candidates: Iterator[_Candidate],
    limit: int,
    filters: _Filters,
) -> tuple[list[tuple[_Candidate, HeadSummary, int]], str | None]:
    """One thread/list page, reproducing the reference's paging loop.

    The reference asks its scanner for pages of ``remaining`` threads that pass the scan-level
    filters, then drops those without a preview or of other source kinds, and repeats until the page
    is full. nextCursor points at the last thread the scanner returned, and is set only if the scanner
    saw another rollout after it.
    """
    items: list[tuple[_Candidate, HeadSummary, int]] = []
    remaining = limit
    next_cursor: str | None = None
    pending: _Candidate | None = None
    while remaining > 0:
        scanned: list[tuple[_Candidate, HeadSummary, int]] = []
        more = False
        while True:
            cand = pending if pending is not None else next(candidates, None)
            pending = None
            if cand is None:
                break
            if len(scanned) == remaining:
                more = True
                pending = cand
                break
            loaded = scanner.head(cand.path)
            if loaded is not None and filters.core_ok(loaded[0]):
                scanned.append((cand, loaded[0], loaded[1]))
        items.extend(entry for entry in scanned if filters.app_ok(entry[1]))
        remaining = limit - len(items)
        next_cursor = _format_cursor(scanned[-1][0].key, scanned[-1][0].thread_id) if more else None
        if remaining == 0 or not more:
            break
    return items, next_cursor


class ThreadPage(NamedTuple):
    threads: list[ThreadSummary]
    next_cursor: str | None


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


class ThreadStore:
    """Threads stored under one CODEX_HOME. Safe to share between connections of one server."""

    def __init__(
        self,
        codex_home: Path,
        *,
        persist_index: bool = True,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.codex_home = codex_home
        self._clock_ns = clock_ns
        self._scanner = _Scanner(codex_home, persist_index, clock_ns)
        self._lock = trio.Lock()

    @property
    def sessions_dir(self) -> Path:
        return self.codex_home / SESSIONS_SUBDIR

    @property
    def archived_dir(self) -> Path:
        return self.codex_home / ARCHIVED_SESSIONS_SUBDIR

    async def _run(self, fn: Callable[[], Any]) -> Any:
        async with self._lock:
            return await trio.to_thread.run_sync(fn)

    # ---- listing -----------------------------------------------------------------------------

    async def list_threads(
        self,
        *,
        default_provider: str,
        cursor: str | None = None,
        limit: int | None = None,
        sort_key: SortKey = "created_at",
        model_providers: Sequence[str] | None = None,
        source_kinds: Sequence[str] | None = None,
        archived: bool = False,
    ) -> ThreadPage:
        """One page of thread/list, newest first.

        Arguments are the request's as sent: ``limit`` None means 25 and is clamped to 1..100;
        ``model_providers`` None means only ``default_provider`` (the configured provider) and [] means
        all; ``source_kinds`` None or [] means the interactive sources (cli, vscode). Rollouts that
        record no provider count as ``default_provider``. Raises ``ThreadStoreError`` ("invalid cursor:
        ...") for a cursor that does not parse.
        """
        anchor = parse_cursor(cursor) if cursor is not None else None
        page_size = min(max(limit if limit is not None else DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)
        allowed, post = _source_filters(source_kinds)
        if model_providers is None:
            providers: tuple[str, ...] | None = (default_provider,)
        else:
            providers = tuple(model_providers) or None
        filters = _Filters(allowed, post, providers, default_provider)
        root = str(self.archived_dir if archived else self.sessions_dir)

        def work() -> ThreadPage:
            scanner = self._scanner
            # A first created_at page reads only its own files, faster than loading the whole index;
            # the index pays off from the second page on (or for updated_at, which stats everything).
            if anchor is not None or sort_key == "updated_at":
                scanner.load_index()
            if not os.path.isdir(root):
                return ThreadPage([], None)
            if sort_key == "updated_at":
                candidates = scanner.updated_order(root, archived, anchor)
            else:
                candidates = scanner.created_order(root, archived, anchor)
            entries, next_cursor = _paginate(scanner, scanner.reading_ahead(candidates), page_size, filters)
            threads = [
                _summary_from_head(head, cand.path, mtime_ns, default_provider)
                for cand, head, mtime_ns in entries
            ]
            scanner.save_index(force=next_cursor is None)
            return ThreadPage(threads, next_cursor)

        result: ThreadPage = await self._run(work)
        return result

    async def flush_index(self) -> None:
        """Write the persisted index now if it changed (e.g. at shutdown)."""
        await self._run(lambda: self._scanner.save_index(force=True))

    # ---- lookup and reading ------------------------------------------------------------------

    @staticmethod
    def _canonical_id(thread_id: str) -> str:
        canonical = parse_uuid(thread_id)
        if canonical is None:
            raise ValueError(f"not a thread id: {thread_id!r}")
        return canonical

    async def find_rollout(self, thread_id: str) -> Path | None:
        """The rollout of a (not archived) thread under sessions/, or None."""
        canonical = self._canonical_id(thread_id)
        found: str | None = await self._run(
            lambda: self._scanner.find(str(self.sessions_dir), canonical, False)
        )
        return None if found is None else Path(found)

    async def find_archived(self, thread_id: str) -> Path | None:
        """The rollout of an archived thread under archived_sessions/, or None."""
        canonical = self._canonical_id(thread_id)
        found: str | None = await self._run(
            lambda: self._scanner.find(str(self.archived_dir), canonical, True)
        )
        return None if found is None else Path(found)

    async def read_summary(self, path: Path, *, default_provider: str) -> ThreadSummary:
        """The thread a rollout describes (thread/start, thread/read, thread/resume...).

        Raises ``RolloutReadError`` with the reference's text ("rollout at <path> is empty", "... does
        not start with session metadata") and ``OSError`` if the file cannot be read.
        """
        summary: ThreadSummary = await trio.to_thread.run_sync(read_thread_summary, path, default_provider)
        return summary

    async def read_thread(self, path: Path, *, default_provider: str, include_turns: bool) -> Thread:
        """The v2 Thread of a rollout, with its rebuilt turns when ``include_turns``."""
        if not include_turns:
            return (await self.read_summary(path, default_provider=default_provider)).to_thread()

        def work() -> Thread:
            rollout: Rollout = read_rollout(path)
            try:
                mtime_ns: int | None = os.stat(path).st_mtime_ns
            except OSError:
                mtime_ns = None
            summary = summary_from_records(_head_records(rollout.lines), path, mtime_ns, default_provider)
            return summary.to_thread(reconstruct_turns(rollout))

        thread: Thread = await trio.to_thread.run_sync(work)
        return thread

    # ---- archive -----------------------------------------------------------------------------

    async def archive(self, thread_id: str) -> Path:
        """Move a thread's rollout into archived_sessions/ (flat). Returns its new path.

        The caller shuts the thread down first if it is loaded. Raises ``ThreadStoreError`` with the
        reference's messages.
        """
        canonical = self._canonical_id(thread_id)
        path = await self.find_rollout(canonical)
        if path is None:
            raise ThreadStoreError(INVALID_REQUEST, f"no rollout found for thread id {canonical}")

        def work() -> Path:
            try:
                sessions = self.sessions_dir.resolve(strict=True)
            except OSError as exc:
                raise ThreadStoreError(
                    INTERNAL_ERROR,
                    f"failed to archive thread: unable to resolve sessions directory: {_io_error_text(exc)}",
                ) from exc
            try:
                resolved = path.resolve(strict=True)
            except OSError:
                resolved = None
            if resolved is None or not resolved.is_relative_to(sessions):
                raise ThreadStoreError(
                    INVALID_REQUEST, f"rollout path `{path}` must be in sessions directory"
                )
            if not resolved.name.endswith(f"{canonical}.jsonl"):
                raise ThreadStoreError(
                    INVALID_REQUEST, f"rollout path `{path}` does not match thread id {canonical}"
                )
            destination = self.archived_dir / resolved.name
            try:
                self.archived_dir.mkdir(parents=True, exist_ok=True)
                os.rename(resolved, destination)
            except OSError as exc:
                raise ThreadStoreError(
                    INTERNAL_ERROR, f"failed to archive thread: {_io_error_text(exc)}"
                ) from exc
            return destination

        destination: Path = await self._run(work)
        return destination

    async def unarchive(self, thread_id: str, *, default_provider: str) -> ThreadSummary:
        """Move an archived rollout back to sessions/YYYY/MM/DD/ and mark it updated now."""
        canonical = self._canonical_id(thread_id)
        path = await self.find_archived(canonical)
        if path is None:
            raise ThreadStoreError(INVALID_REQUEST, f"no archived rollout found for thread id {canonical}")

        def work() -> ThreadSummary:
            try:
                archived = self.archived_dir.resolve(strict=True)
            except OSError as exc:
                reason = _io_error_text(exc)
                message = f"failed to unarchive thread: unable to resolve archived directory: {reason}"
                raise ThreadStoreError(INTERNAL_ERROR, message) from exc
            try:
                resolved = path.resolve(strict=True)
            except OSError:
                resolved = None
            if resolved is None or not resolved.is_relative_to(archived):
                raise ThreadStoreError(
                    INVALID_REQUEST, f"rollout path `{path}` must be in archived directory"
                )
            name = resolved.name
            if not name.endswith(f"{canonical}.jsonl"):
                raise ThreadStoreError(
                    INVALID_REQUEST, f"rollout path `{path}` does not match thread id {canonical}"
                )
            date = name[len("rollout-") : len("rollout-") + 10] if name.startswith("rollout-") else ""
            if len(date) < 10:
                raise ThreadStoreError(INVALID_REQUEST, f"rollout path `{path}` missing filename timestamp")
            destination_dir = self.sessions_dir / date[0:4] / date[5:7] / date[8:10]
            destination = destination_dir / name
            try:
                destination_dir.mkdir(parents=True, exist_ok=True)
                os.rename(resolved, destination)
            except OSError as exc:
                raise ThreadStoreError(
                    INTERNAL_ERROR, f"failed to unarchive thread: {_io_error_text(exc)}"
                ) from exc
            try:
                st = os.stat(destination)
                os.utime(destination, ns=(st.st_atime_ns, self._clock_ns()))
            except OSError as exc:
                raise ThreadStoreError(
                    INTERNAL_ERROR, f"failed to update unarchived thread timestamp: {_io_error_text(exc)}"
                ) from exc
            try:
                return read_thread_summary(destination, default_provider)
            except (OSError, RolloutReadError) as exc:
                text = _io_error_text(exc) if isinstance(exc, OSError) else str(exc)
                raise ThreadStoreError(INTERNAL_ERROR, f"failed to read unarchived thread: {text}") from exc

        summary: ThreadSummary = await self._run(work)
        return summary

    # ---- names (session_index.jsonl) ---------------------------------------------------------

    async def set_name(self, thread_id: str, name: str) -> str:
        """Record a thread's name; returns it trimmed. The caller checks the thread is loaded."""
        canonical = self._canonical_id(thread_id)
        normalized = normalize_thread_name(name)
        if normalized is None:
            raise ThreadStoreError(INVALID_REQUEST, "thread name must not be empty")
        entry = {
            "id": canonical,
            "thread_name": normalized,
            "updated_at": _format_name_timestamp(self._clock_ns()),
        }
        data = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        index = self.codex_home / SESSION_INDEX_FILE

        def work() -> None:
            self.codex_home.mkdir(parents=True, exist_ok=True)
            fd = os.open(index, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)

        await trio.to_thread.run_sync(work)
        return normalized

    async def get_name(self, thread_id: str) -> str | None:
        """The latest name recorded for a thread, if any."""
        names = await self.get_names([thread_id])
        return names.get(self._canonical_id(thread_id))

    async def get_names(self, thread_ids: Sequence[str]) -> dict[str, str]:
        wanted = {self._canonical_id(t) for t in thread_ids}
        index = self.codex_home / SESSION_INDEX_FILE

        def work() -> dict[str, str]:
            names: dict[str, str] = {}
            try:
                with open(index, "rb") as handle:
                    for raw in handle:
                        try:
                            entry = json.loads(raw)
                        except ValueError:
                            continue
                        if not isinstance(entry, dict):
                            continue
                        entry_id, entry_name = entry.get("id"), entry.get("thread_name")
                        if isinstance(entry_id, str) and isinstance(entry_name, str):
                            canonical = parse_uuid(entry_id)
                            if canonical in wanted:
                                names[canonical] = entry_name
            except FileNotFoundError:
                pass
            return names

        result: dict[str, str] = await trio.to_thread.run_sync(work)
        return result
