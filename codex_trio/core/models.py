"""The model catalogue a client shows in its model picker (``model/list``), and the collaboration-mode
presets (``collaborationMode/list``).

How the reference (Codex CLI 0.94.0) builds the picker, as observed:

- It carries a catalogue of nine models (``BUNDLED_MODELS``); four of them are visible in the picker.
- Unless logged in with an API key, it asks ``GET {base}/models?client_version=0.94.0`` for the current
  catalogue, where ``base`` is OPENAI_BASE_URL, else the ChatGPT backend when logged in with ChatGPT
  tokens, else the OpenAI API. Whatever the configured model provider is, this goes to OpenAI.
- A successful answer (``{"models": [ModelInfo, ...]}``) is merged into the bundled catalogue: an entry
  replaces the bundled one with the same slug, a new slug is appended. The answer is kept in
  ``$CODEX_HOME/models_cache.json``; while that file is less than five minutes old it stands in for the
  request (also across processes). An answer that fails to decode, or any HTTP error, leaves the
  catalogue as it was.
- The picker is the catalogue sorted by ``priority`` (stable), keeping the entries whose visibility is
  ``list`` and, unless logged in with ChatGPT, that are ``supported_in_api``. The first one is the
  default.

One deliberate difference: without OPENAI_BASE_URL and without ChatGPT tokens the reference asks the
OpenAI API anonymously, which cannot succeed (it wants credentials, and its ``/models`` has another
format), after about 3 s of retries. We skip that request: the answer is the same, at once.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import trio

from .. import REFERENCE_VERSION
from ..rpc.decode import unexpected
from .files import write_atomically
from .provider import DEFAULT_REQUEST_MAX_RETRIES
from .rollout import parse_timestamp

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

MODELS_CACHE_FILE = "models_cache.json"
MODELS_CACHE_TTL = timedelta(seconds=300)
# Our bound on one catalogue refresh, retries included (the reference has none; its retries on an
# unreachable endpoint take about 3 s).
MODELS_REFRESH_TIMEOUT_SECONDS = 5.0
PERSONALITY_PLACEHOLDER = "{{ personality }}"

REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
VISIBILITIES = ("list", "hide", "none")
SHELL_TYPES = ("default", "local", "unified_exec", "disabled", "shell_command")
APPLY_PATCH_TOOL_TYPES = ("freeform", "function")
TRUNCATION_MODES = ("bytes", "tokens")
VERBOSITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class ModelInfo:
    """One catalogue entry: the fields the picker is built from."""

    slug: str
    display_name: str
    description: str | None
    default_reasoning_level: str | None
    # (effort, description) pairs, in the order a client lists them.
    supported_reasoning_levels: tuple[tuple[str, str], ...]
    visibility: str
    supported_in_api: bool
    priority: int
    supports_personality: bool = False


class ReasoningEffortOption(TypedDict):
    reasoningEffort: str
    description: str


class Model(TypedDict):
    """An entry of ``model/list``'s ``data``."""

    id: str
    model: str
    displayName: str
    description: str
    supportedReasoningEfforts: list[ReasoningEffortOption]
    defaultReasoningEffort: str
    supportsPersonality: bool
    isDefault: bool


# ------------------------------------------------------------------------------------------------
# The bundled catalogue (interface data: clients show these names and descriptions)

_FAST = "Fast responses with lighter reasoning"
_BALANCED = "Balances speed and reasoning depth for everyday tasks"
_DEEPER = "Greater reasoning depth for complex problems"
_EXTRA_DEEP = "Extra high reasoning depth for complex problems"
_FASTEST = "Fastest responses with limited reasoning"
_ADAPTIVE = "Dynamically adjusts reasoning based on the task"
_MAXIMAL = "Maximizes reasoning depth for complex or ambiguous problems"
_SOME = "Balances speed with some reasoning; useful for straightforward queries and short explanations"
_SOLID = "Provides a solid balance of reasoning depth and latency for general-purpose tasks"
_EXTRA = "Extra high reasoning for complex problems"
_LITTLE = "Fastest responses with little reasoning"
_CODEX_EFFORTS = (("low", _FAST), ("medium", _BALANCED), ("high", _DEEPER), ("xhigh", _EXTRA_DEEP))
_CODEX_MINI_EFFORTS = (("medium", _ADAPTIVE), ("high", _MAXIMAL))
_CODEX_LEGACY_EFFORTS = (("low", _FASTEST), ("medium", _ADAPTIVE), ("high", _MAXIMAL))
_GENERAL_EFFORTS = (("low", _SOME), ("medium", _SOLID), ("high", _MAXIMAL))


def _bundled(
    slug: str, description: str, efforts: tuple[tuple[str, str], ...], visibility: str, priority: int
) -> ModelInfo:
    return ModelInfo(
        slug=slug,
        display_name=slug,
        description=description,
        default_reasoning_level="medium",
        supported_reasoning_levels=efforts,
        visibility=visibility,
        supported_in_api=True,
        priority=priority,
    )


BUNDLED_MODELS: tuple[ModelInfo, ...] = (
    _bundled("gpt-5.2-codex", "Latest frontier agentic coding model.", _CODEX_EFFORTS, "list", 1),
    _bundled(
        "gpt-5.2",
        "Latest frontier model with improvements across knowledge, reasoning and coding",
        (*_GENERAL_EFFORTS, ("xhigh", _EXTRA)),
        "list",
        2,
    ),
    _bundled(
        "gpt-5.1-codex-max",
        "Codex-optimized flagship for deep and fast reasoning.",
        _CODEX_EFFORTS,
        "list",
        3,
    ),
    _bundled("gpt-5.1-codex", "Optimized for codex.", _CODEX_LEGACY_EFFORTS, "hide", 4),
    _bundled(
        "gpt-5.1-codex-mini",
        "Optimized for codex. Cheaper, faster, but less capable.",
        _CODEX_MINI_EFFORTS,
        "list",
        5,
    ),
    _bundled("gpt-5.1", "Broad world knowledge with strong general reasoning.", _GENERAL_EFFORTS, "hide", 6),
    _bundled("gpt-5-codex", "Optimized for codex.", _CODEX_LEGACY_EFFORTS, "hide", 7),
    _bundled(
        "gpt-5",
        "Broad world knowledge with strong general reasoning.",
        (("minimal", _LITTLE), *_GENERAL_EFFORTS),
        "hide",
        8,
    ),
    _bundled(
        "gpt-5-codex-mini",
        "Optimized for codex. Cheaper, faster, but less capable.",
        _CODEX_MINI_EFFORTS,
        "hide",
        9,
    ),
)


# ------------------------------------------------------------------------------------------------
# The picker


def merge_remote(remote: Iterable[ModelInfo], base: Sequence[ModelInfo] = BUNDLED_MODELS) -> list[ModelInfo]:
    """The catalogue once ``remote`` (a /models answer, in its order) is applied to ``base``."""
    merged = list(base)
    for model in remote:
        index = next((i for i, known in enumerate(merged) if known.slug == model.slug), None)
        if index is None:
            merged.append(model)
        else:
            merged[index] = model
    return merged


def picker(catalogue: Iterable[ModelInfo], *, chatgpt: bool) -> list[Model]:
    """``model/list``'s entries: visible models by priority, the first one the default."""
    ordered = sorted(catalogue, key=lambda m: m.priority)
    visible = [m for m in ordered if m.visibility == "list" and (chatgpt or m.supported_in_api)]
    return [
        {
            "id": m.slug,
            "model": m.slug,
            "displayName": m.display_name,
            "description": m.description or "",
            "supportedReasoningEfforts": [
                {"reasoningEffort": effort, "description": text}
                for effort, text in m.supported_reasoning_levels
            ],
            "defaultReasoningEffort": m.default_reasoning_level or "none",
            "supportsPersonality": m.supports_personality,
            "isDefault": index == 0,
        }
        for index, m in enumerate(visible)
    ]


# ------------------------------------------------------------------------------------------------
# Reading a /models answer, with the reference's rules for what it accepts


class ModelsDecodeError(Exception):
    """The answer does not have the shape the reference accepts; ``str()`` says why (for the log)."""


class _Table:
    """Typed reads from one JSON object of the answer, failing like serde (the path is for the log)."""

    def __init__(self, value: Any, path: str, name: str) -> None:
        if not isinstance(value, dict):
            raise _invalid(path, value, f"struct {name}")
        self.obj: Mapping[str, Any] = value
        self.path = path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def get(self, key: str, *, required: bool) -> Any:
        if key not in self.obj:
            if required:
                raise ModelsDecodeError(f"{self.path}: missing field `{key}`")
            return None
        return self.obj[key]

    def string(self, key: str, *, required: bool = True) -> str | None:
        value = self.get(key, required=required)
        return None if value is None and not required else _string(value, self._at(key))

    def boolean(self, key: str) -> bool:
        value = self.get(key, required=True)
        if not isinstance(value, bool):
            raise _invalid(self._at(key), value, "a boolean")
        return value

    def integer(self, key: str, bits: int, *, required: bool = True) -> int | None:
        value = self.get(key, required=required)
        if value is None and not required:
            return None
        if type(value) is not int:
            raise _invalid(self._at(key), value, f"i{bits}")
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise ModelsDecodeError(f"{self._at(key)}: invalid value: integer `{value}`, expected i{bits}")
        return value

    def variant(self, key: str, variants: Sequence[str], *, required: bool = True) -> str | None:
        value = self.string(key, required=required)
        if value is not None and value not in variants:
            raise ModelsDecodeError(f"{self._at(key)}: unknown variant `{value}`")
        return value

    def table(self, key: str, name: str, *, required: bool = True) -> _Table | None:
        value = self.get(key, required=required)
        return None if value is None and not required else _Table(value, self._at(key), name)

    def sequence(self, key: str) -> list[Any]:
        value = self.get(key, required=True)
        if not isinstance(value, list):
            raise _invalid(self._at(key), value, "a sequence")
        return value


def _invalid(path: str, value: object, expected: str) -> ModelsDecodeError:
    return ModelsDecodeError(f"{path}: invalid type: {unexpected(value)}, expected {expected}")


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _invalid(path, value, "a string")
    return value


def _supports_personality(messages: _Table | None) -> bool:
    """A template with the personality placeholder and all three personality texts."""
    if messages is None:
        return False
    template = messages.string("instructions_template", required=False)
    variables = messages.table("instructions_variables", "ModelInstructionsVariables", required=False)
    texts = [
        variables.string(name, required=False) if variables is not None else None
        for name in ("personality_default", "personality_friendly", "personality_pragmatic")
    ]
    return template is not None and PERSONALITY_PLACEHOLDER in template and None not in texts


def decode_model(obj: Any, path: str = "model") -> ModelInfo:
    """One ``ModelInfo`` of a /models answer; raises ModelsDecodeError where the reference's decoder
    fails (required fields, types and enum values; unknown fields are ignored)."""
    m = _Table(obj, path, "ModelInfo")
    levels: list[tuple[str, str]] = []
    for i, level in enumerate(m.sequence("supported_reasoning_levels")):
        entry = _Table(level, f"{path}.supported_reasoning_levels[{i}]", "ReasoningEffortPreset")
        levels.append((str(entry.variant("effort", REASONING_EFFORTS)), str(entry.string("description"))))
    m.variant("shell_type", SHELL_TYPES)
    upgrade = m.table("upgrade", "ModelInfoUpgrade", required=False)
    if upgrade is not None:
        upgrade.string("model")
        upgrade.string("migration_markdown")
    m.string("base_instructions")
    m.boolean("supports_reasoning_summaries")
    m.boolean("support_verbosity")
    m.variant("default_verbosity", VERBOSITIES, required=False)
    m.variant("apply_patch_tool_type", APPLY_PATCH_TOOL_TYPES, required=False)
    truncation = m.table("truncation_policy", "TruncationPolicyConfig")
    assert truncation is not None
    truncation.variant("mode", TRUNCATION_MODES)
    truncation.integer("limit", 64)
    m.boolean("supports_parallel_tool_calls")
    m.integer("context_window", 64, required=False)
    m.integer("auto_compact_token_limit", 64, required=False)
    if "effective_context_window_percent" in m.obj:
        # Defaulted when missing, but null is refused.
        m.integer("effective_context_window_percent", 64)
    for i, tool in enumerate(m.sequence("experimental_supported_tools")):
        _string(tool, f"{path}.experimental_supported_tools[{i}]")
    return ModelInfo(
        slug=str(m.string("slug")),
        display_name=str(m.string("display_name")),
        description=m.string("description", required=False),
        default_reasoning_level=m.variant("default_reasoning_level", REASONING_EFFORTS, required=False),
        supported_reasoning_levels=tuple(levels),
        visibility=str(m.variant("visibility", VISIBILITIES)),
        supported_in_api=m.boolean("supported_in_api"),
        priority=int(m.integer("priority", 32) or 0),
        supports_personality=_supports_personality(
            m.table("model_messages", "ModelMessages", required=False)
        ),
    )


def decode_models(payload: Any) -> tuple[list[ModelInfo], list[Any]]:
    """The models of a ``{"models": [...]}`` body, decoded and as sent (for the cache)."""
    raw = _Table(payload, "response", "ModelsResponse").sequence("models")
    return [decode_model(entry, f"models[{i}]") for i, entry in enumerate(raw)], list(raw)


# ------------------------------------------------------------------------------------------------
# $CODEX_HOME/models_cache.json

def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_cache(codex_home: Path, now: datetime) -> list[ModelInfo] | None:
    """The cached answer while it is fresh; None when missing, stale or unreadable (logged)."""
    path = codex_home / MODELS_CACHE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.error("failed to load models cache: %s", exc)
        return None
    try:
        data = json.loads(text)
        table = _Table(data, "cache", "ModelsCache")
        fetched_text = str(table.string("fetched_at"))
        fetched_at = parse_timestamp(fetched_text)
        if fetched_at is None:
            raise ModelsDecodeError(f"cache.fetched_at: invalid timestamp {fetched_text!r}")
        table.string("etag", required=False)
        models, _ = decode_models(data)
    except (ValueError, ModelsDecodeError) as exc:
        log.error("failed to load models cache: %s", exc)
        return None
    # A timestamp in the future counts as fresh, as in the reference.
    return models if now - fetched_at <= MODELS_CACHE_TTL else None


def write_cache(codex_home: Path, raw_models: Sequence[Any], etag: str | None, now: datetime) -> None:
    """Keep an answer for later requests (and other processes); failures are only logged."""
    cache: dict[str, Any] = {"fetched_at": format_timestamp(now)}
    if etag is not None:
        cache["etag"] = etag
    cache["models"] = list(raw_models)
    text = json.dumps(cache, indent=2, ensure_ascii=False)
    path = codex_home / MODELS_CACHE_FILE
    try:
        write_atomically(path, text)
    except OSError as exc:
        log.error("failed to write models cache: %s", exc)


# ------------------------------------------------------------------------------------------------
# Fetching


class ModelsFetchError(Exception):
    pass


@dataclass(frozen=True)
class ModelsRequest:
    """Where and how to ask for the catalogue."""

    base_url: str
    headers: Mapping[str, str]
    max_retries: int = DEFAULT_REQUEST_MAX_RETRIES

    @property
    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/models?client_version={REFERENCE_VERSION}"


@dataclass(frozen=True)
class FetchedModels:
    models: list[ModelInfo]
    raw: list[Any]
    etag: str | None


async def fetch_models(http: httpx.AsyncClient, request: ModelsRequest) -> FetchedModels:
    """``GET {base}/models``: retried on transport errors and 5xx like the reference's OpenAI provider,
    within ``MODELS_REFRESH_TIMEOUT_SECONDS`` overall. Raises ModelsFetchError."""
    import random

    import httpx

    from .model_client import backoff

    rng = random.Random()
    with trio.move_on_after(MODELS_REFRESH_TIMEOUT_SECONDS):
        attempt = 0
        while True:
            try:
                response = await http.get(request.url, headers=dict(request.headers))
            except httpx.HTTPError as exc:
                problem = f"error sending request for url ({request.url}): {type(exc).__name__}"
                retry = True
            else:
                if response.status_code == 200:
                    return _decode_response(response)
                snippet = response.text[:300]
                problem = f"unexpected status {response.status_code}: {snippet}, url: {request.url}"
                retry = response.status_code >= 500
            if not retry or attempt >= request.max_retries:
                raise ModelsFetchError(problem)
            attempt += 1
            await trio.sleep(backoff(attempt, rng))
    raise ModelsFetchError(f"timed out after {MODELS_REFRESH_TIMEOUT_SECONDS:g}s: {request.url}")


def _decode_response(response: httpx.Response) -> FetchedModels:
    try:
        payload = json.loads(response.content)
        models, raw = decode_models(payload)
    except (ValueError, ModelsDecodeError) as exc:
        raise ModelsFetchError(f"failed to decode models response: {exc}") from None
    etag = response.headers.get("etag")
    return FetchedModels(models, raw, etag or None)


# ------------------------------------------------------------------------------------------------
# The server's catalogue


class ModelsCatalog:
    """The catalogue one server holds between requests, as the reference's models manager: starts as
    the bundled one, replaced on every successful refresh (from the cache file or the network)."""

    def __init__(self, codex_home: Path) -> None:
        self.codex_home = codex_home
        self.catalogue: list[ModelInfo] = list(BUNDLED_MODELS)

    async def refresh(
        self,
        http: httpx.AsyncClient | None,
        request: ModelsRequest | None,
        *,
        now: datetime | None = None,
    ) -> None:
        """Bring the catalogue up to date: the cache file while fresh, else ``request`` (None: no
        request to make). Failures are logged and keep the current catalogue."""
        moment = now or datetime.now(timezone.utc)
        cached = read_cache(self.codex_home, moment)
        if cached is not None:
            self.catalogue = merge_remote(cached)
            return
        if request is None or http is None:
            return
        try:
            fetched = await fetch_models(http, request)
        except ModelsFetchError as exc:
            log.error("failed to refresh available models: %s", exc)
            return
        self.catalogue = merge_remote(fetched.models)
        write_cache(self.codex_home, fetched.raw, fetched.etag, datetime.now(timezone.utc))

    def models(self, *, chatgpt: bool) -> list[Model]:
        return picker(self.catalogue, chatgpt=chatgpt)


# ------------------------------------------------------------------------------------------------
# Paging (model/list, mcpServerStatus/list)


class CursorError(Exception):
    pass


_USIZE_TEXT = re.compile(r"\+?[0-9]+")


def page_bounds(cursor: str | None, limit: int | None, total: int, noun: str) -> tuple[int, int]:
    """``(start, end)`` of a page whose cursor is a stringified offset, with the reference's errors
    (``noun`` names the items: "models", "MCP servers"). A missing limit means everything, 0 means 1."""
    start = 0
    if cursor is not None:
        if not _USIZE_TEXT.fullmatch(cursor) or int(cursor) >= 2**64:
            raise CursorError(f"invalid cursor: {cursor}")
        start = int(cursor)
        if start > total:
            raise CursorError(f"cursor {start} exceeds total {noun} {total}")
    size = total if limit is None else limit
    end = min(start + max(size, 1), total)
    return start, end


def next_cursor(end: int, total: int) -> str | None:
    return str(end) if end < total else None


# ------------------------------------------------------------------------------------------------
# Collaboration modes


class CollaborationModeMask(TypedDict):
    name: str
    mode: str | None
    model: str | None
    reasoning_effort: str | None
    developer_instructions: str | None


# The names, modes and reasoning efforts are the reference's; the instructions are our own words (the
# reference's are long prompts of its own). They only reach the model when a client sends the preset
# back in turn/start.
_PLAN_INSTRUCTIONS = """\
# Plan mode

You are planning together with the user; nothing gets changed yet. Stay in this mode until a developer \
message ends it, whatever the user's wording: a request to do the work becomes a request to plan it.

- Explore before you ask: read files, search the code, inspect configuration, run checks that change \
nothing tracked by the repository. Do not edit files, apply patches or run commands meant to carry out \
the work.
- Ask the user only about what the environment cannot tell you: goals, preferences and trade-offs. Use \
the `request_user_input` tool for such questions when it is available, a few at a time.
- `update_plan` tracks progress on work; it is not this mode, and it is not for presenting the plan.

When the plan is complete enough that someone else could implement it without further decisions, \
present it once, wrapped in a `<proposed_plan>` block (keep the tags exactly as written, whatever the \
language of the plan):

<proposed_plan>
the plan, in Markdown
</proposed_plan>

Do not end by asking whether to proceed: the user leaves plan mode when they want the work done.
"""

_CODE_INSTRUCTIONS = "Code mode: carry out the user's requests directly.\n"

_PAIR_INSTRUCTIONS = """\
# Collaboration style: pair programming

Work with the user in small steps they can follow. Before anything large or slow (long test runs, \
sweeping changes), check that they agree. Explain your reasoning as you go and match the depth to \
their signals. When several approaches are reasonable, lay them out briefly with their trade-offs and \
let the user choose. Keep the plan tool up to date when the work has several steps.

When debugging, treat it as a joint effort: ask the user for what only they can see (a browser \
console, a screenshot, the output of a command on their machine).
"""

_EXECUTE_INSTRUCTIONS = """\
# Collaboration style: execute

Carry the task through on your own, without checking in along the way.

- When something is unspecified, choose a sensible default, note it as an assumption, and keep going; \
ask only if a wrong guess would be costly or irreversible.
- Keep the plan tool current for work with several steps, and report progress at natural milestones.
- Verify the result (build, tests, a quick manual check) before you finish.
- End with a short summary: what you did, the assumptions you made, and anything left open.
"""

COLLABORATION_MODE_PRESETS: tuple[CollaborationModeMask, ...] = (
    {
        "name": "Plan",
        "mode": "plan",
        "model": None,
        "reasoning_effort": "medium",
        "developer_instructions": _PLAN_INSTRUCTIONS,
    },
    {
        "name": "Code",
        "mode": "code",
        "model": None,
        "reasoning_effort": None,
        "developer_instructions": _CODE_INSTRUCTIONS,
    },
    {
        "name": "Pair Programming",
        "mode": "pair_programming",
        "model": None,
        "reasoning_effort": "medium",
        "developer_instructions": _PAIR_INSTRUCTIONS,
    },
    {
        "name": "Execute",
        "mode": "execute",
        "model": None,
        "reasoning_effort": "high",
        "developer_instructions": _EXECUTE_INSTRUCTIONS,
    },
)
