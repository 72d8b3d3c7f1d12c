"""Configuration: ``$CODEX_HOME/config.toml`` and its layers, resolved like the reference (Codex 0.94.0).

Layers, lowest precedence first (each one a TOML table, merged key by key, tables recursively):

- system: ``/etc/codex/config.toml`` (listed even when the file does not exist);
- user: ``$CODEX_HOME/config.toml`` (same);
- project: each ``.codex/config.toml`` from the project root down to ``cwd``. They are listed but
  disabled (not merged) unless the project is trusted in ``[projects."<path>"]``;
- session flags: ``-c key=value`` overrides, plus the dotted ``config`` map of ``thread/start``.

On top of the merged table, the selected profile (``--profile`` or ``profile = "..."``) overrides the
keys a profile may carry, and then the typed per-thread overrides (``model``, ``cwd``, ...) win over
everything. A profile therefore beats ``-c model=...``, as it does in the reference.

Errors read like the reference's serde/toml messages. A bad value that comes from a file is
reported as ``<file>:<line>:<column>: <message>``, and one that comes from an override as
``<message>\\nin `<dotted.key>`\\n``. Unknown keys are ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

from codex_trio import REFERENCE_VERSION
from codex_trio.core.provider import (
    DEFAULT_REQUEST_MAX_RETRIES,
    DEFAULT_STREAM_IDLE_TIMEOUT_MS,
    DEFAULT_STREAM_MAX_RETRIES,
    ModelProviderInfo,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ApprovalPolicy = Literal["untrusted", "on-failure", "on-request", "never"]
SandboxMode = Literal["read-only", "workspace-write", "danger-full-access"]
TrustLevel = Literal["trusted", "untrusted"]
LayerKind = Literal["system", "user", "project", "sessionFlags"]
KeyPath = tuple["str | int", ...]

CONFIG_TOML_FILE = "config.toml"
SYSTEM_CONFIG_TOML = Path("/etc/codex/config.toml")
# What an administrator allows (allowed approval policies, sandbox modes...): see ConfigRequirements.
SYSTEM_REQUIREMENTS_TOML = Path("/etc/codex/requirements.toml")

# The default model preset of 0.94.0 (models_manager presets; `model/list` marks it isDefault, and
# thread/start answers with it when no model is configured).
DEFAULT_MODEL = "gpt-5.2-codex"
DEFAULT_MODEL_PROVIDER_ID = "openai"
DEFAULT_CHATGPT_BASE_URL = "https://chatgpt.com/backend-api/"
# Our own setting (the reference hard-codes 10 s): how long to wait for the client's answer to
# `account/chatgptAuthTokens/refresh`.
DEFAULT_CHATGPT_AUTH_REFRESH_TIMEOUT_MS = 10_000

OPENAI_PROVIDER_ID = "openai"
OLLAMA_OSS_PROVIDER_ID = "ollama"
OLLAMA_CHAT_PROVIDER_ID = "ollama-chat"
LMSTUDIO_OSS_PROVIDER_ID = "lmstudio"
DEFAULT_OLLAMA_PORT = 11434
DEFAULT_LMSTUDIO_PORT = 1234
# The reference clamps user-configured retry counts to this.
MAX_RETRIES_CAP = 100

APPROVAL_POLICIES: tuple[ApprovalPolicy, ...] = ("untrusted", "on-failure", "on-request", "never")
SANDBOX_MODES: tuple[SandboxMode, ...] = ("read-only", "workspace-write", "danger-full-access")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
REASONING_SUMMARIES = ("auto", "concise", "detailed", "none")
VERBOSITIES = ("low", "medium", "high")
PERSONALITIES = ("friendly", "pragmatic")
WEB_SEARCH_MODES = ("disabled", "cached", "live")
FORCED_LOGIN_METHODS = ("chatgpt", "api")
WIRE_APIS = ("responses", "chat")


# ---------------------------------------------------------------------------------------------
# Errors


class TextPosition(NamedTuple):
    line: int  # 1-based
    column: int  # 1-based


class TextRange(NamedTuple):
    start: TextPosition
    end: TextPosition  # inclusive: the last character of the offending text


class ConfigError(Exception):
    """A configuration that cannot be used; ``str(err)`` is what the reference prints.

    ``message`` is the bare serde/toml text, ``key`` the dotted key it is about (when known),
    ``file`` and ``range`` where it sits (when it comes from a file). ``keyed_message()`` is the
    form the reference uses when it validates a merged table (``config/read``, ``config/value/write``).
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        file: Path | None = None,
        range: TextRange | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.file = file
        self.range = range

    def keyed_message(self) -> str:
        if self.key is None:
            return self.message
        return f"{self.message}\nin `{self.key}`\n"

    def __str__(self) -> str:
        if self.file is not None and self.range is not None:
            start = self.range.start
            return f"{self.file}:{start.line}:{start.column}: {self.message}"
        return self.keyed_message()


class RequirementsViolation(ConfigError):
    """The approval policy or sandbox mode a configuration resolves to is one the administrator's
    requirements forbid.

    The files themselves are fine: ``unconstrained`` is the configuration they describe, from which
    per-thread overrides can still derive an allowed one (the reference resolves every thread/start
    anew, so ``thread/start {"approvalPolicy": "never"}`` works while config.toml's own choice does
    not).
    """

    def __init__(self, message: str, unconstrained: Config) -> None:
        super().__init__(message)
        self.unconstrained = unconstrained


class _ValueError(Exception):
    """A value that does not fit its schema, at ``path`` (relative to the table validated)."""

    def __init__(self, message: str, path: KeyPath) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


# ---------------------------------------------------------------------------------------------
# CODEX_HOME and -c overrides


def _debug_quote(text: str) -> str:
    # Rust's `{:?}` for a path, as in the reference's CODEX_HOME messages.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _home_dir(env: Mapping[str, str]) -> Path | None:
    home = env.get("HOME")
    if home:
        return Path(home)
    return None


def find_codex_home(env: Mapping[str, str]) -> Path:
    """``$CODEX_HOME`` (which must be an existing directory; canonicalized), else ``~/.codex``.

    An empty ``CODEX_HOME`` counts as unset. The default is not required to exist.
    """
    value = env.get("CODEX_HOME")
    if value:
        path = Path(value)
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists()
        except OSError as err:
            raise ConfigError(f"failed to read CODEX_HOME {_debug_quote(value)}: {err}") from err
        if not exists:
            raise ConfigError(
                f"CODEX_HOME points to {_debug_quote(value)}, but that path does not exist"
            )
        if not is_dir:
            raise ConfigError(
                f"CODEX_HOME points to {_debug_quote(value)}, but that path is not a directory"
            )
        try:
            return path.resolve(strict=True)
        except OSError as err:
            raise ConfigError(
                f"failed to canonicalize CODEX_HOME {_debug_quote(value)}: {err}"
            ) from err
    home = _home_dir(env)
    if home is None:
        raise ConfigError("Could not find home directory")
    return home / ".codex"


def _parse_toml_value(raw: str) -> object:
    return tomllib.loads(f"_x_ = {raw}")["_x_"]


def parse_cli_overrides(items: Iterable[str]) -> list[tuple[str, object]]:
    """Parse ``-c key=value`` items: a dotted key, and a TOML value or else the raw string.

    Only the first ``=`` splits, so values may contain ``=``; both halves are trimmed. So
    ``model=o3`` gives the string ``"o3"`` and ``retries=3`` the integer 3.
    """
    parsed: list[tuple[str, object]] = []
    for item in items:
        key, sep, raw_value = item.partition("=")
        if not sep:
            raise ConfigError(f"Invalid override (missing '='): {item}")
        key = key.strip()
        if not key:
            raise ConfigError(f"Empty key in override: {item}")
        value_text = raw_value.strip()
        try:
            value = _parse_toml_value(value_text)
        except tomllib.TOMLDecodeError:
            value = value_text
        parsed.append((key, value))
    return parsed


def apply_dotted_override(table: dict[str, Any], dotted_key: str, value: object) -> None:
    """Set ``dotted_key`` in ``table``, creating (or replacing non-table) intermediate tables."""
    parts = dotted_key.split(".")
    current = table
    for part in parts[:-1]:
        nxt = current.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            current[part] = nxt
        current = nxt
    current[parts[-1]] = value


def merge_tables(base: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    """Merge ``overlay`` into ``base``: tables merge recursively, anything else replaces."""
    for key, value in overlay.items():
        existing = base.get(key)
        if isinstance(existing, dict) and isinstance(value, dict):
            merge_tables(existing, value)
        else:
            base[key] = _deep_copy(value)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Where values sit in a TOML text (for file:line:column messages)


class _TomlPositions:
    """Maps key paths of a (valid) TOML document to the text range of their value.

    Also maps table paths to their ``[header]`` (or to the first dotted key that created them), for
    errors about a table as a whole such as a missing field. Array elements use int indices.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.values: dict[KeyPath, tuple[int, int]] = {}
        self.tables: dict[KeyPath, tuple[int, int]] = {}
        self._line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._line_starts.append(i + 1)
        self._aot_counts: dict[KeyPath, int] = {}
        # Positions are a nicety: a construct this scanner does not follow leaves the rest
        # unmapped, and errors there fall back to the keyed message.
        with contextlib.suppress(IndexError, ValueError):
            self._document()

    def position(self, offset: int) -> TextPosition:
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return TextPosition(line=lo + 1, column=offset - self._line_starts[lo] + 1)

    def range_of(self, span: tuple[int, int]) -> TextRange:
        return TextRange(self.position(span[0]), self.position(span[1]))

    def locate(self, path: KeyPath) -> TextRange | None:
        span = self.values.get(path) or self.tables.get(path)
        return self.range_of(span) if span is not None else None

    # -- scanning ----------------------------------------------------------------------------

    def _skip_ws(self, i: int, newlines: bool) -> int:
        text = self.text
        while i < len(text):
            ch = text[i]
            if ch in " \t" or (newlines and ch in "\r\n"):
                i += 1
            elif ch == "#":
                while i < len(text) and text[i] != "\n":
                    i += 1
            else:
                break
        return i

    def _document(self) -> None:
        text = self.text
        i = 0
        table: KeyPath = ()
        while True:
            i = self._skip_ws(i, newlines=True)
            if i >= len(text):
                return
            if text.startswith("[[", i):
                start = i
                keys, i = self._key(i + 2)
                i = self._skip_ws(i, newlines=False)
                end = i + 1  # the second ']'
                i += 2
                path = tuple(keys)
                index = self._aot_counts.get(path, 0)
                self._aot_counts[path] = index + 1
                table = (*path, index)
                self.tables.setdefault(path, (start, end))
                self.tables[table] = (start, end)
            elif text[i] == "[":
                start = i
                keys, i = self._key(i + 1)
                i = self._skip_ws(i, newlines=False)
                end = i
                i += 1
                table = tuple(keys)
                self.tables.setdefault(table, (start, end))
            else:
                i = self._key_value(i, table)

    def _key_value(self, i: int, table: KeyPath) -> int:
        key_start = i
        keys, i = self._key(i)
        i = self._skip_ws(i, newlines=False)
        if self.text[i] != "=":
            raise ValueError("expected '='")
        i = self._skip_ws(i + 1, newlines=False)
        for depth in range(1, len(keys)):
            self.tables.setdefault((*table, *keys[:depth]), (key_start, key_start))
        return self._value(i, (*table, *keys))

    def _key(self, i: int) -> tuple[list[str], int]:
        text = self.text
        keys: list[str] = []
        while True:
            i = self._skip_ws(i, newlines=False)
            ch = text[i]
            if ch == '"':
                end = self._basic_string_end(i)
                keys.append(_unescape_basic(text[i + 1 : end]))
                i = end + 1
            elif ch == "'":
                end = text.index("'", i + 1)
                keys.append(text[i + 1 : end])
                i = end + 1
            else:
                start = i
                while i < len(text) and (text[i].isalnum() or text[i] in "_-"):
                    i += 1
                if i == start:
                    raise ValueError("expected a key")
                keys.append(text[start:i])
            i = self._skip_ws(i, newlines=False)
            if i < len(text) and text[i] == ".":
                i += 1
                continue
            return keys, i

    def _basic_string_end(self, i: int) -> int:
        text = self.text
        j = i + 1
        while text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        return j

    def _value(self, i: int, path: KeyPath) -> int:
        """Record the value starting at ``i``; returns the offset just past it."""
        text = self.text
        start = i
        if text.startswith('"""', i):
            j = i + 3
            while not text.startswith('"""', j):
                j += 2 if text[j] == "\\" else 1
            while j + 3 < len(text) and text[j + 3] == '"':  # up to two quotes may end the body
                j += 1
            end = j + 2
        elif text.startswith("'''", i):
            j = text.index("'''", i + 3)
            while j + 3 < len(text) and text[j + 3] == "'":
                j += 1
            end = j + 2
        elif text[i] == '"':
            end = self._basic_string_end(i)
        elif text[i] == "'":
            end = text.index("'", i + 1)
        elif text[i] == "[":
            j = i + 1
            index = 0
            while True:
                j = self._skip_ws(j, newlines=True)
                if text[j] == "]":
                    break
                j = self._value(j, (*path, index))
                index += 1
                j = self._skip_ws(j, newlines=True)
                if text[j] == ",":
                    j += 1
            end = j
        elif text[i] == "{":
            j = i + 1
            while True:
                j = self._skip_ws(j, newlines=True)
                if text[j] == "}":
                    break
                j = self._key_value(j, path)
                j = self._skip_ws(j, newlines=True)
                if text[j] == ",":
                    j += 1
            end = j
        else:
            j = i
            while j < len(text) and text[j] not in ",]}#\r\n":
                j += 1
            end = j - 1
            while end > start and text[end] in " \t":
                end -= 1
        self.values.setdefault(path, (start, end))
        return end + 1


def _unescape_basic(body: str) -> str:
    try:
        decoded = json.loads(f'"{body}"')
    except ValueError:
        return body
    return decoded if isinstance(decoded, str) else body


# ---------------------------------------------------------------------------------------------
# Reading TOML files


_TOMLLIB_POSITION = " (at line "


def _syntax_error(file: Path, text: str, err: Exception) -> ConfigError:
    """``err`` (tomllib's rejection of ``text``) as the reference reports it: its TOML crates'
    message and range (toml_errors). The few texts those crates accept but tomllib does not (TOML
    1.1 additions) have no reference wording; tomllib's own is kept for them."""
    from .toml_errors import error_positions, find_syntax_error

    found = find_syntax_error(text)
    if found is not None:
        start, end = error_positions(text, found)
        where = TextRange(TextPosition(*start), TextPosition(*end))
        return ConfigError(found.message, file=file, range=where)
    message = str(err)
    line = getattr(err, "lineno", None)
    column = getattr(err, "colno", None)
    cut = message.rfind(_TOMLLIB_POSITION)
    if cut != -1:
        tail = message[cut + len(_TOMLLIB_POSITION) :].rstrip(")")
        head, _, col_text = tail.partition(", column ")
        if line is None and head.isdigit() and col_text.isdigit():
            line, column = int(head), int(col_text)
        message = message[:cut]
    if isinstance(line, int) and isinstance(column, int):
        position = TextPosition(line, column)
        return ConfigError(message, file=file, range=TextRange(position, position))
    return ConfigError(f"{file}: {message}", file=file)


def _read_toml(file: Path) -> tuple[dict[str, Any], str] | None:
    """The parsed table and the text of ``file``, or None if it does not exist."""
    try:
        # Bytes, not text mode: newline translation would hide carriage returns, which the
        # reference counts in columns and rejects when alone.
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ConfigError(f"Failed to read config file {file}: {err}") from err
    except UnicodeDecodeError:
        raise ConfigError(f"Failed to read config file {file}: stream did not contain valid UTF-8") from None
    try:
        # The reference skips a leading byte order mark; tomllib does not.
        table = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as err:
        raise _syntax_error(file, text, err) from err
    return table, text


# ---------------------------------------------------------------------------------------------
# Schema of config.toml (the subset the reference validates that matters here; unknown keys pass)


def _toml_unexpected(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return f"floating point `{int(value)}.0`"
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return "string " + json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "sequence"
    if isinstance(value, dict):
        return "map"
    return "datetime"


def _variants_text(variants: Sequence[str]) -> str:
    if len(variants) == 1:
        return f"`{variants[0]}`"
    if len(variants) == 2:
        return f"`{variants[0]}` or `{variants[1]}`"
    return "one of " + ", ".join(f"`{v}`" for v in variants)


def unknown_variant_message(value: str, variants: Sequence[str]) -> str:
    return f"unknown variant `{value}`, expected {_variants_text(variants)}"


Validator = Callable[[Any, KeyPath], None]


def _invalid(value: object, expected: str, path: KeyPath) -> _ValueError:
    return _ValueError(f"invalid type: {_toml_unexpected(value)}, expected {expected}", path)


def _string(expected: str = "a string") -> Validator:
    def check(value: Any, path: KeyPath) -> None:
        if not isinstance(value, str):
            raise _invalid(value, expected, path)

    return check


_STR = _string()
_PATH = _string("path string")


def _bool(value: Any, path: KeyPath) -> None:
    if not isinstance(value, bool):
        raise _invalid(value, "a boolean", path)


def _integer(name: str, low: int, high: int) -> Validator:
    def check(value: Any, path: KeyPath) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(value, name, path)
        if not low <= value <= high:
            raise _ValueError(f"invalid value: integer `{value}`, expected {name}", path)

    return check


_I64 = _integer("i64", -(2**63), 2**63 - 1)
_U64 = _integer("u64", 0, 2**64 - 1)
_U16 = _integer("u16", 0, 2**16 - 1)
_USIZE = _integer("usize", 0, 2**64 - 1)


def _enum(variants: Sequence[str]) -> Validator:
    def check(value: Any, path: KeyPath) -> None:
        if isinstance(value, dict):
            # serde also accepts an enum as a one-entry table naming the variant.
            if len(value) != 1:
                raise _ValueError("wanted exactly 1 element, more than 1 element", path)
            value = next(iter(value))
        if not isinstance(value, str):
            raise _ValueError("wanted string or table", path)
        if value not in variants:
            raise _ValueError(unknown_variant_message(value, variants), path)

    return check


def _seq(item: Validator) -> Validator:
    def check(value: Any, path: KeyPath) -> None:
        if not isinstance(value, list):
            raise _invalid(value, "a sequence", path)
        for index, element in enumerate(value):
            item(element, (*path, index))

    return check


def _map(item: Validator, expected: str = "a map") -> Validator:
    def check(value: Any, path: KeyPath) -> None:
        if not isinstance(value, dict):
            raise _invalid(value, expected, path)
        for key in sorted(value):
            item(value[key], (*path, key))

    return check


def _any(value: Any, path: KeyPath) -> None:
    return None


def _struct(name: str, fields: Mapping[str, Validator], required: Sequence[str] = ()) -> Validator:
    def check(value: Any, path: KeyPath) -> None:
        if not isinstance(value, dict):
            raise _invalid(value, f"struct {name}", path)
        # Like a serde struct over toml's sorted table: fields in key order, then missing ones.
        for key in sorted(value):
            validator = fields.get(key)
            if validator is not None:
                validator(value[key], (*path, key))
        for key in required:
            if key not in value:
                raise _ValueError(f"missing field `{key}`", path)

    return check


_APPROVAL = _enum(APPROVAL_POLICIES)
_SANDBOX = _enum(SANDBOX_MODES)
_EFFORT = _enum(REASONING_EFFORTS)
_SUMMARY = _enum(REASONING_SUMMARIES)
_VERBOSITY = _enum(VERBOSITIES)
_PERSONALITY = _enum(PERSONALITIES)
_WEB_SEARCH = _enum(WEB_SEARCH_MODES)
_FEATURES = _map(_bool, expected="struct FeaturesToml")
_ANALYTICS = _struct("AnalyticsConfigToml", {"enabled": _bool})

_PROVIDER = _struct(
    "ModelProviderInfo",
    {
        "name": _STR,
        "base_url": _STR,
        "env_key": _STR,
        "env_key_instructions": _STR,
        "experimental_bearer_token": _STR,
        "wire_api": _enum(WIRE_APIS),
        "query_params": _map(_STR),
        "http_headers": _map(_STR),
        "env_http_headers": _map(_STR),
        "request_max_retries": _U64,
        "stream_max_retries": _U64,
        "stream_idle_timeout_ms": _U64,
        "requires_openai_auth": _bool,
        "supports_websockets": _bool,
    },
    required=("name",),
)

_PROFILE = _struct(
    "ConfigProfile",
    {
        "model": _STR,
        "model_provider": _STR,
        "approval_policy": _APPROVAL,
        "sandbox_mode": _SANDBOX,
        "model_reasoning_effort": _EFFORT,
        "model_reasoning_summary": _SUMMARY,
        "model_verbosity": _VERBOSITY,
        "personality": _PERSONALITY,
        "chatgpt_base_url": _STR,
        "model_instructions_file": _PATH,
        "experimental_instructions_file": _PATH,
        "experimental_compact_prompt_file": _PATH,
        "include_apply_patch_tool": _bool,
        "experimental_use_unified_exec_tool": _bool,
        "experimental_use_freeform_apply_patch": _bool,
        "tools_web_search": _bool,
        "tools_view_image": _bool,
        "web_search": _WEB_SEARCH,
        "analytics": _ANALYTICS,
        "features": _FEATURES,
        "oss_provider": _STR,
    },
)

_CONFIG = _struct(
    "ConfigToml",
    {
        "model": _STR,
        "review_model": _STR,
        "model_provider": _STR,
        "model_context_window": _I64,
        "model_auto_compact_token_limit": _I64,
        "approval_policy": _APPROVAL,
        "shell_environment_policy": _struct(
            "ShellEnvironmentPolicyToml",
            {
                "inherit": _enum(("core", "all", "none")),
                "ignore_default_excludes": _bool,
                "exclude": _seq(_STR),
                "set": _map(_STR),
                "include_only": _seq(_STR),
                "experimental_use_profile": _bool,
            },
        ),
        "sandbox_mode": _SANDBOX,
        "sandbox_workspace_write": _struct(
            "SandboxWorkspaceWrite",
            {
                "writable_roots": _seq(_PATH),
                "network_access": _bool,
                "exclude_tmpdir_env_var": _bool,
                "exclude_slash_tmp": _bool,
            },
        ),
        "notify": _seq(_STR),
        "instructions": _STR,
        "developer_instructions": _STR,
        "model_instructions_file": _PATH,
        "experimental_instructions_file": _PATH,
        "compact_prompt": _STR,
        "experimental_compact_prompt_file": _PATH,
        "forced_chatgpt_workspace_id": _STR,
        "forced_login_method": _enum(FORCED_LOGIN_METHODS),
        "cli_auth_credentials_store": _enum(("file", "keyring", "auto", "ephemeral")),
        "mcp_servers": _map(_any),
        "mcp_oauth_credentials_store": _enum(("auto", "file", "keyring")),
        "mcp_oauth_callback_port": _U16,
        "model_providers": _map(_PROVIDER),
        "project_doc_max_bytes": _USIZE,
        "project_doc_fallback_filenames": _seq(_STR),
        "tool_output_token_limit": _USIZE,
        "profile": _STR,
        "profiles": _map(_PROFILE),
        "history": _struct(
            "History", {"persistence": _enum(("save-all", "none")), "max_bytes": _USIZE}
        ),
        "file_opener": _enum(("vscode", "vscode-insiders", "windsurf", "cursor", "none")),
        "hide_agent_reasoning": _bool,
        "show_raw_agent_reasoning": _bool,
        "model_reasoning_effort": _EFFORT,
        "model_reasoning_summary": _SUMMARY,
        "model_verbosity": _VERBOSITY,
        "model_supports_reasoning_summaries": _bool,
        "personality": _PERSONALITY,
        "chatgpt_base_url": _STR,
        "projects": _map(_struct("ProjectConfig", {"trust_level": _enum(("trusted", "untrusted"))})),
        "web_search": _WEB_SEARCH,
        "tools": _struct(
            "ToolsToml", {"web_search": _bool, "web_search_request": _bool, "view_image": _bool}
        ),
        "features": _FEATURES,
        "suppress_unstable_features_warning": _bool,
        "project_root_markers": _seq(_STR),
        "check_for_update_on_startup": _bool,
        "disable_paste_burst": _bool,
        "analytics": _ANALYTICS,
        "feedback": _struct("FeedbackConfigToml", {"enabled": _bool}),
        "windows_wsl_setup_acknowledged": _bool,
        "oss_provider": _STR,
        "experimental_use_unified_exec_tool": _bool,
        "experimental_use_freeform_apply_patch": _bool,
        # Ours, not the reference's.
        "chatgpt_auth_refresh_timeout_ms": _U64,
    },
)

# Keys whose values are paths: relative ones are resolved against the directory of the layer that
# sets them, and `~` is expanded, before layers are merged. "*" matches any key.
_PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("model_instructions_file",),
    ("experimental_instructions_file",),
    ("experimental_compact_prompt_file",),
    ("sandbox_workspace_write", "writable_roots", "[]"),
    ("profiles", "*", "model_instructions_file"),
    ("profiles", "*", "experimental_instructions_file"),
    ("profiles", "*", "experimental_compact_prompt_file"),
)


def _resolve_path_text(value: str, base_dir: Path, home: Path | None) -> str:
    if home is not None and (value == "~" or value.startswith("~/")):
        return str(home / value[2:]) if value != "~" else str(home)
    path = Path(value)
    return str(path if path.is_absolute() else base_dir / path)


def _resolve_paths(table: dict[str, Any], base_dir: Path, home: Path | None) -> None:
    def walk(node: Any, pattern: tuple[str, ...]) -> Any:
        if not pattern:
            return _resolve_path_text(node, base_dir, home) if isinstance(node, str) else node
        head, rest = pattern[0], pattern[1:]
        if head == "[]":
            if isinstance(node, list):
                return [walk(item, rest) for item in node]
            return node
        if not isinstance(node, dict):
            return node
        keys = list(node) if head == "*" else [head] if head in node else []
        for key in keys:
            node[key] = walk(node[key], rest)
        return node

    for pattern in _PATH_KEYS:
        walk(table, pattern)


def _lookup(table: Mapping[str, Any], path: KeyPath) -> tuple[bool, Any]:
    node: Any = table
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return False, None
            node = node[part]
        else:
            if not isinstance(node, dict) or part not in node:
                return False, None
            node = node[part]
    return True, node


def _dotted(path: KeyPath) -> str:
    return ".".join(part for part in path if isinstance(part, str))


# ---------------------------------------------------------------------------------------------
# Layers


@dataclass(frozen=True)
class ConfigLayer:
    """One layer of the stack, as ``config/read`` lists it."""

    kind: LayerKind
    # The config.toml for system/user/project layers (for project layers, `dot_codex_folder`
    # is what the protocol names); None for session flags.
    file: Path | None
    config: dict[str, Any] = field(repr=False)
    disabled_reason: str | None = None
    source_text: str | None = field(default=None, repr=False, compare=False)

    @property
    def dot_codex_folder(self) -> Path | None:
        return self.file.parent if self.kind == "project" and self.file is not None else None

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None

    @property
    def version(self) -> str:
        """``sha256:<hex>`` of the compact, key-sorted JSON of the table, like the reference."""
        data = json.dumps(
            self.config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
        return "sha256:" + hashlib.sha256(data.encode("utf-8")).hexdigest()

    def name_json(self) -> dict[str, str]:
        """The layer's ``name`` object in ``config/read`` (``ConfigLayerSource``)."""
        if self.kind == "sessionFlags":
            return {"type": "sessionFlags"}
        if self.kind == "project":
            return {"type": "project", "dotCodexFolder": str(self.dot_codex_folder)}
        return {"type": self.kind, "file": str(self.file)}

    def locate(self, path: KeyPath) -> TextRange | None:
        if self.source_text is None:
            return None
        return _TomlPositions(self.source_text).locate(path)


def _file_layer(kind: LayerKind, file: Path, home: Path | None) -> ConfigLayer:
    loaded = _read_toml(file)
    if loaded is None:
        return ConfigLayer(kind=kind, file=file, config={})
    table, text = loaded
    _resolve_paths(table, file.parent, home)
    return ConfigLayer(kind=kind, file=file, config=table, source_text=text)


def _session_layer(
    overrides: Sequence[tuple[str, object]], base_dir: Path, home: Path | None
) -> ConfigLayer | None:
    if not overrides:
        return None
    table: dict[str, Any] = {}
    for key, value in overrides:
        if value is None:
            continue  # JSON null from a thread/start `config` map: nothing to set
        apply_dotted_override(table, key, _deep_copy(value))
    _resolve_paths(table, base_dir, home)
    return ConfigLayer(kind="sessionFlags", file=None, config=table)


def _merged(layers: Iterable[ConfigLayer]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer.enabled:
            merge_tables(merged, layer.config)
    return merged


def _locate_error(err: _ValueError, layers: Sequence[ConfigLayer]) -> ConfigError:
    """Attribute a merged-table error to the highest layer that sets the offending value."""
    key = _dotted(err.path)
    for layer in reversed(layers):
        if not layer.enabled:
            continue
        found, _ = _lookup(layer.config, err.path)
        if not found:
            continue
        position = layer.locate(err.path)
        if layer.file is not None and position is not None:
            return ConfigError(err.message, key=key, file=layer.file, range=position)
        return ConfigError(err.message, key=key)
    return ConfigError(err.message, key=key)


def _validate(table: Mapping[str, Any], layers: Sequence[ConfigLayer]) -> None:
    try:
        _CONFIG(table, ())
    except _ValueError as err:
        raise _locate_error(err, layers) from None


def _find_git_common_dir(start: Path) -> Path | None:
    """The common .git directory of the repository containing ``start`` (worktrees included)."""
    for directory in (start, *start.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            try:
                content = dot_git.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                return None
            if not content.startswith("gitdir:"):
                return None
            git_dir = Path(content[len("gitdir:") :].strip())
            if not git_dir.is_absolute():
                git_dir = directory / git_dir
            try:
                common = (git_dir / "commondir").read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                return git_dir
            common_dir = Path(common)
            return common_dir if common_dir.is_absolute() else git_dir / common_dir
    return None


def _repo_root_for_trust(cwd: Path) -> Path | None:
    """Like the reference's resolve_root_git_project_for_trust: worktrees map to the main repo."""
    common = _find_git_common_dir(cwd)
    if common is None:
        return None
    return common.resolve().parent


def _find_project_root(cwd: Path, markers: Sequence[str]) -> Path:
    if not markers:
        return cwd
    for directory in (cwd, *cwd.parents):
        if any((directory / marker).exists() for marker in markers):
            return directory
    return cwd


def _project_trust(projects: Any) -> dict[str, TrustLevel]:
    trust: dict[str, TrustLevel] = {}
    if isinstance(projects, dict):
        for key, project in projects.items():
            if isinstance(project, dict) and project.get("trust_level") in ("trusted", "untrusted"):
                trust[key] = project["trust_level"]
    return trust


def _project_layers(
    cwd: Path,
    merged_so_far: Mapping[str, Any],
    codex_home: Path,
    user_file: Path,
    home: Path | None,
) -> list[ConfigLayer]:
    markers_value = merged_so_far.get("project_root_markers")
    markers = list(markers_value) if isinstance(markers_value, list) else [".git"]
    project_root = _find_project_root(cwd, markers)
    repo_root = _repo_root_for_trust(cwd)
    trust = _project_trust(merged_so_far.get("projects"))

    def decision(directory: Path) -> tuple[TrustLevel | None, str]:
        for candidate in (directory, project_root, repo_root):
            if candidate is not None and str(candidate) in trust:
                return trust[str(candidate)], str(candidate)
        return None, str(repo_root if repo_root is not None else project_root)

    dirs: list[Path] = []
    for directory in (cwd, *cwd.parents):
        dirs.append(directory)
        if directory == project_root:
            break
    dirs.reverse()

    try:
        codex_home_real = codex_home.resolve()
    except OSError:
        codex_home_real = codex_home
    layers: list[ConfigLayer] = []
    for directory in dirs:
        dot_codex = directory / ".codex"
        if not dot_codex.is_dir():
            continue
        if dot_codex == codex_home or dot_codex.resolve() == codex_home_real:
            continue
        level, trust_key = decision(directory)
        if level == "trusted":
            reason = None
        elif level == "untrusted":
            reason = (
                f"{trust_key} is marked as untrusted in {user_file}. "
                "To load config.toml, mark it trusted."
            )
        else:
            reason = f"To load config.toml, add {trust_key} as a trusted project in {user_file}."
        config_file = dot_codex / CONFIG_TOML_FILE
        try:
            loaded = _read_toml(config_file)
        except ConfigError as err:
            if level == "trusted":
                raise ConfigError(
                    f"Error parsing project config file {config_file}: {err.message}",
                    file=err.file,
                    range=err.range,
                ) from err
            layers.append(ConfigLayer("project", config_file, {}, disabled_reason=reason))
            continue
        if loaded is None:
            # An empty .codex folder still counts as a layer, and is never disabled.
            layers.append(ConfigLayer("project", config_file, {}))
            continue
        table, text = loaded
        _resolve_paths(table, dot_codex, home)
        layers.append(
            ConfigLayer("project", config_file, table, disabled_reason=reason, source_text=text)
        )
    return layers


def load_config_layers(
    codex_home: Path,
    *,
    cli_overrides: Sequence[tuple[str, object]] = (),
    cwd: Path | None = None,
    env: Mapping[str, str],
    system_config_path: Path | None = SYSTEM_CONFIG_TOML,
    requirements_path: Path | None = SYSTEM_REQUIREMENTS_TOML,
) -> tuple[ConfigLayer, ...]:
    """Read the layer stack, lowest precedence first. Project layers only when ``cwd`` is given.

    Raises ConfigError for unreadable or malformed TOML, and for invalid values in the layers
    that decide project trust. The requirements file is read first and must be valid too: the
    reference loads it with the layers, so a broken one fails everything that reads them.
    """
    if requirements_path is not None:
        load_requirements(requirements_path)
    home = _home_dir(env)
    base: list[ConfigLayer] = []
    if system_config_path is not None:
        base.append(_file_layer("system", system_config_path, home))
    user_file = codex_home / CONFIG_TOML_FILE
    base.append(_file_layer("user", user_file, home))
    session = _session_layer(cli_overrides, cwd if cwd is not None else codex_home, home)
    layers = list(base)
    if cwd is not None:
        before_projects = [*base, *([session] if session is not None else [])]
        merged_so_far = _merged(before_projects)
        _validate(merged_so_far, before_projects)
        layers.extend(_project_layers(cwd, merged_so_far, codex_home, user_file, home))
    if session is not None:
        layers.append(session)
    return tuple(layers)


# ---------------------------------------------------------------------------------------------
# Providers


def _non_blank(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value is not None and value.strip() else None


def built_in_model_providers(env: Mapping[str, str]) -> dict[str, ModelProviderInfo]:
    """The providers compiled into 0.94.0: openai, ollama, ollama-chat, lmstudio (no ``oss``)."""
    oss_base_url = _non_blank(env, "CODEX_OSS_BASE_URL")

    def oss(provider_id: str, default_port: int, wire_api: str) -> ModelProviderInfo:
        base_url = oss_base_url
        if base_url is None:
            port = default_port
            port_text = _non_blank(env, "CODEX_OSS_PORT")
            if port_text is not None and port_text.isdigit() and int(port_text) < 2**16:
                port = int(port_text)
            base_url = f"http://localhost:{port}/v1"
        return ModelProviderInfo(id=provider_id, name="gpt-oss", base_url=base_url, wire_api=wire_api)

    return {
        OPENAI_PROVIDER_ID: ModelProviderInfo(
            id=OPENAI_PROVIDER_ID,
            name="OpenAI",
            # Unset: chosen per request from the login (see ModelProviderInfo.api_base_url).
            base_url=_non_blank(env, "OPENAI_BASE_URL"),
            wire_api="responses",
            requires_openai_auth=True,
            http_headers={"version": REFERENCE_VERSION},
            env_http_headers={
                "OpenAI-Organization": "OPENAI_ORGANIZATION",
                "OpenAI-Project": "OPENAI_PROJECT",
            },
        ),
        OLLAMA_OSS_PROVIDER_ID: oss(OLLAMA_OSS_PROVIDER_ID, DEFAULT_OLLAMA_PORT, "responses"),
        OLLAMA_CHAT_PROVIDER_ID: oss(OLLAMA_CHAT_PROVIDER_ID, DEFAULT_OLLAMA_PORT, "chat"),
        LMSTUDIO_OSS_PROVIDER_ID: oss(LMSTUDIO_OSS_PROVIDER_ID, DEFAULT_LMSTUDIO_PORT, "responses"),
    }


def _provider_from_toml(provider_id: str, table: Mapping[str, Any]) -> ModelProviderInfo:
    def retries(key: str, default: int) -> int:
        value = table.get(key)
        return min(value if isinstance(value, int) else default, MAX_RETRIES_CAP)

    idle = table.get("stream_idle_timeout_ms")
    return ModelProviderInfo(
        id=provider_id,
        name=table["name"],
        # Unset: the OpenAI API, or the ChatGPT backend while logged in with ChatGPT tokens, chosen
        # per request (see ModelProviderInfo.api_base_url).
        base_url=table.get("base_url"),
        # In 0.94.0 an unset wire_api still means the (deprecated) Chat Completions API.
        wire_api=table.get("wire_api", "chat"),
        env_key=table.get("env_key"),
        requires_openai_auth=bool(table.get("requires_openai_auth", False)),
        request_max_retries=retries("request_max_retries", DEFAULT_REQUEST_MAX_RETRIES),
        stream_max_retries=retries("stream_max_retries", DEFAULT_STREAM_MAX_RETRIES),
        stream_idle_timeout_ms=idle if isinstance(idle, int) else DEFAULT_STREAM_IDLE_TIMEOUT_MS,
        http_headers=dict(table.get("http_headers") or {}),
        env_http_headers=dict(table.get("env_http_headers") or {}),
        query_params=dict(table.get("query_params") or {}),
    )


def model_providers_from(
    raw: Mapping[str, Any], env: Mapping[str, str]
) -> dict[str, ModelProviderInfo]:
    """Built-ins plus ``[model_providers.*]``; a user entry with a built-in's id is ignored."""
    providers = built_in_model_providers(env)
    configured = raw.get("model_providers")
    if isinstance(configured, dict):
        for provider_id, table in configured.items():
            if provider_id not in providers:
                providers[provider_id] = _provider_from_toml(provider_id, table)
    return providers


# ---------------------------------------------------------------------------------------------
# Config


class SandboxWorkspaceWrite(NamedTuple):
    writable_roots: tuple[Path, ...] = ()
    network_access: bool = False
    exclude_tmpdir_env_var: bool = False
    exclude_slash_tmp: bool = False


class ToolsConfig(NamedTuple):
    """``[tools]``: legacy toggles (``web_search`` is deprecated in favour of top-level web_search)."""

    web_search: bool | None = None
    view_image: bool | None = None


class ThreadOverrides(NamedTuple):
    """The typed fields of ``thread/start`` (and the CLI's flags); they beat profile and file."""

    model: str | None = None
    model_provider: str | None = None
    cwd: Path | None = None
    approval_policy: str | None = None
    sandbox_mode: str | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    personality: str | None = None

    def over(self, base: ThreadOverrides) -> ThreadOverrides:
        """These overrides, falling back to ``base`` for the fields left unset."""
        merged = {
            name: getattr(self, name) if getattr(self, name) is not None else getattr(base, name)
            for name in self._fields
        }
        return ThreadOverrides(**merged)


class _LoadInputs(NamedTuple):
    """Everything a Config was built from, so derive() can rebuild it with more overrides."""

    codex_home: Path
    env: Mapping[str, str]
    system_config_path: Path | None
    requirements_path: Path | None
    cli_overrides: tuple[tuple[str, object], ...]
    profile: str | None
    overrides: ThreadOverrides
    cwd: Path


@dataclass(frozen=True)
class Config:
    """The effective configuration of a server or of one thread (see ``derive``)."""

    codex_home: Path
    cwd: Path
    model: str
    model_provider_id: str
    model_provider: ModelProviderInfo
    model_providers: Mapping[str, ModelProviderInfo]
    approval_policy: ApprovalPolicy
    sandbox_mode: SandboxMode
    # Applies when sandbox_mode is workspace-write.
    sandbox_workspace_write: SandboxWorkspaceWrite
    model_reasoning_effort: str | None
    model_reasoning_summary: str
    model_verbosity: str | None
    personality: str | None
    # From thread/start's baseInstructions, else the contents of model_instructions_file.
    base_instructions: str | None
    developer_instructions: str | None
    compact_prompt: str | None
    chatgpt_base_url: str
    forced_login_method: str | None
    forced_chatgpt_workspace_id: str | None
    cli_auth_credentials_store: str
    features: Mapping[str, bool]
    tools: ToolsConfig
    # "disabled" | "cached" | "live", or None when nothing chose (the turn then decides).
    web_search: str | None
    shell_environment_policy: Mapping[str, Any]
    chatgpt_auth_refresh_timeout_ms: int
    active_profile: str | None
    # The trust of the cwd's project in [projects], if any.
    project_trust_level: TrustLevel | None
    # True when some layer sets the deprecated experimental_instructions_file (the reference then
    # sends a deprecationNotice).
    uses_deprecated_instructions_file: bool
    # The merged table of all enabled layers (profiles not applied). Out of repr because a
    # config.toml may hold secrets (experimental_bearer_token, mcp server env).
    raw: Mapping[str, Any] = field(repr=False)
    # Lowest precedence first.
    layers: tuple[ConfigLayer, ...] = field(repr=False)
    _inputs: _LoadInputs = field(repr=False, compare=False)
    # The administrator's requirements this configuration was checked against (None: no file). A
    # thread keeps them: its later per-turn overrides must satisfy them too.
    requirements: ConfigRequirements | None = field(default=None, repr=False)

    @property
    def user_layer(self) -> ConfigLayer:
        return next(layer for layer in self.layers if layer.kind == "user")

    def layers_high_to_low(self) -> list[ConfigLayer]:
        """The order in which ``config/read`` lists layers."""
        return list(reversed(self.layers))

    def derive(
        self,
        overrides: Mapping[str, object] | Sequence[tuple[str, object]] = (),
        *,
        model: str | None = None,
        model_provider: str | None = None,
        cwd: Path | None = None,
        approval_policy: str | None = None,
        sandbox_mode: str | None = None,
        base_instructions: str | None = None,
        developer_instructions: str | None = None,
        personality: str | None = None,
    ) -> Config:
        """A new Config with per-thread overrides, like thread/start builds one.

        ``overrides`` are dotted keys (thread/start's ``config`` map) layered like ``-c`` after the
        existing ones; the keyword arguments are the typed thread/start fields. A relative ``cwd``
        is taken relative to this config's cwd. Files are re-read only for a new cwd's project
        layers and for instruction files.
        """
        items = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
        typed = ThreadOverrides(
            model=model,
            model_provider=model_provider,
            cwd=(self.cwd / cwd) if cwd is not None else None,
            approval_policy=approval_policy,
            sandbox_mode=sandbox_mode,
            base_instructions=base_instructions,
            developer_instructions=developer_instructions,
            personality=personality,
        ).over(self._inputs.overrides)
        inputs = _LoadInputs(
            codex_home=self._inputs.codex_home,
            env=self._inputs.env,
            system_config_path=self._inputs.system_config_path,
            requirements_path=self._inputs.requirements_path,
            cli_overrides=(*self._inputs.cli_overrides, *items),
            profile=self._inputs.profile,
            overrides=typed,
            cwd=typed.cwd if typed.cwd is not None else self._inputs.cwd,
        )
        base_layers = tuple(layer for layer in self.layers if layer.kind in ("system", "user"))
        return _build(inputs, base_layers)


def load_config(
    codex_home: Path,
    *,
    cli_overrides: Sequence[tuple[str, object]] = (),
    profile: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str],
    overrides: ThreadOverrides | None = None,
    system_config_path: Path | None = SYSTEM_CONFIG_TOML,
    requirements_path: Path | None = SYSTEM_REQUIREMENTS_TOML,
) -> Config:
    """Load the effective configuration for ``cwd`` (default: the process's working directory).

    ``cli_overrides`` come from parse_cli_overrides(); ``profile`` is ``--profile`` and beats the
    file's ``profile``; ``overrides`` are typed overrides that beat everything.

    ``requirements_path`` is the administrator's requirements file (None: none). A configuration
    whose approval policy or sandbox mode it forbids raises RequirementsViolation; as in the
    reference (0.94.0) that holds for defaults too: nothing falls back to an allowed value.
    """
    typed = overrides if overrides is not None else ThreadOverrides()
    effective_cwd = typed.cwd if typed.cwd is not None else cwd
    if effective_cwd is None:
        effective_cwd = Path.cwd()
    elif not effective_cwd.is_absolute():
        effective_cwd = Path.cwd() / effective_cwd
    inputs = _LoadInputs(
        codex_home=codex_home,
        env=dict(env),
        system_config_path=system_config_path,
        requirements_path=requirements_path,
        cli_overrides=tuple(cli_overrides),
        profile=profile,
        overrides=typed,
        cwd=effective_cwd,
    )
    return _build(inputs, None)


def _check_typed(value: str | None, validator: Validator, key: str) -> None:
    if value is None:
        return
    try:
        validator(value, (key,))
    except _ValueError as err:
        raise ConfigError(err.message, key=key) from None


def _read_instructions_file(path_text: str, what: str) -> str:
    path = Path(path_text)
    try:
        contents = path.read_text(encoding="utf-8")
    except OSError as err:
        detail = f"{err.strerror} (os error {err.errno})" if err.strerror else str(err)
        raise ConfigError(f"failed to read {what} {path}: {detail}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"failed to read {what} {path}: {err}") from err
    trimmed = contents.strip()
    if not trimmed:
        raise ConfigError(f"{what} is empty: {path}")
    return trimmed


def _trimmed_or_none(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _uses_deprecated_instructions_file(layers: Iterable[ConfigLayer]) -> bool:
    for layer in layers:
        if not layer.enabled:
            continue
        if "experimental_instructions_file" in layer.config:
            return True
        profiles = layer.config.get("profiles")
        if isinstance(profiles, dict) and any(
            isinstance(p, dict) and "experimental_instructions_file" in p
            for p in profiles.values()
        ):
            return True
    return False


def _build(inputs: _LoadInputs, base_layers: tuple[ConfigLayer, ...] | None) -> Config:
    env = inputs.env
    home = _home_dir(env)
    typed = inputs.overrides
    _check_typed(typed.approval_policy, _APPROVAL, "approval_policy")
    _check_typed(typed.sandbox_mode, _SANDBOX, "sandbox_mode")
    _check_typed(typed.personality, _PERSONALITY, "personality")
    # Read anew for every derived config too: the reference picks up an administrator's change at
    # the next thread/start.
    requirements = (
        load_requirements(inputs.requirements_path) if inputs.requirements_path is not None else None
    )

    if base_layers is None:
        layers = load_config_layers(
            inputs.codex_home,
            cli_overrides=inputs.cli_overrides,
            cwd=inputs.cwd,
            env=env,
            system_config_path=inputs.system_config_path,
            requirements_path=None,
        )
    else:
        session = _session_layer(inputs.cli_overrides, inputs.cwd, home)
        before_projects = [*base_layers, *([session] if session is not None else [])]
        merged_so_far = _merged(before_projects)
        _validate(merged_so_far, before_projects)
        user_file = inputs.codex_home / CONFIG_TOML_FILE
        projects = _project_layers(inputs.cwd, merged_so_far, inputs.codex_home, user_file, home)
        layers = (*base_layers, *projects, *([session] if session is not None else []))

    raw = _merged(layers)
    _validate(raw, layers)

    profile_name = inputs.profile if inputs.profile is not None else raw.get("profile")
    profile: Mapping[str, Any] = {}
    if profile_name is not None:
        found = (raw.get("profiles") or {}).get(profile_name)
        if found is None:
            raise ConfigError(f"config profile `{profile_name}` not found")
        profile = found

    def pick(key: str, profile_key: str | None = None) -> Any:
        value = profile.get(profile_key or key)
        return value if value is not None else raw.get(key)

    features: dict[str, bool] = dict(raw.get("features") or {})
    features.update(profile.get("features") or {})

    providers = model_providers_from(raw, env)
    provider_id = typed.model_provider or pick("model_provider") or DEFAULT_MODEL_PROVIDER_ID
    provider = providers.get(provider_id)
    if provider is None:
        raise ConfigError(f"Model provider `{provider_id}` not found")

    cwd = inputs.cwd
    trust = _project_trust(raw.get("projects"))
    trust_level: TrustLevel | None = trust.get(str(cwd))
    if trust_level is None:
        repo_root = _repo_root_for_trust(cwd)
        if repo_root is not None:
            trust_level = trust.get(str(repo_root))

    approval = typed.approval_policy or pick("approval_policy")
    if approval is None:
        approval = "untrusted" if trust_level == "untrusted" else "on-request"
    sandbox = typed.sandbox_mode or pick("sandbox_mode")
    if sandbox is None:
        # Any explicit trust decision about the project means workspace-write.
        sandbox = "workspace-write" if trust_level is not None else "read-only"

    sww = raw.get("sandbox_workspace_write") or {}
    workspace_write = SandboxWorkspaceWrite(
        writable_roots=tuple(Path(p) for p in sww.get("writable_roots", [])),
        network_access=bool(sww.get("network_access", False)),
        exclude_tmpdir_env_var=bool(sww.get("exclude_tmpdir_env_var", False)),
        exclude_slash_tmp=bool(sww.get("exclude_slash_tmp", False)),
    )

    base_instructions = typed.base_instructions
    if base_instructions is None:
        instructions_file = pick("model_instructions_file")
        if instructions_file is not None:
            base_instructions = _read_instructions_file(
                instructions_file, "model instructions file"
            )
    compact_prompt = _trimmed_or_none(raw.get("compact_prompt"))
    if compact_prompt is None:
        compact_file = pick("experimental_compact_prompt_file")
        if compact_file is not None:
            compact_prompt = _read_instructions_file(
                compact_file, "experimental compact prompt file"
            )

    tools_table = raw.get("tools") or {}
    tools_web_search = profile.get("tools_web_search")
    if tools_web_search is None:
        tools_web_search = tools_table.get("web_search", tools_table.get("web_search_request"))
    tools_view_image = profile.get("tools_view_image")
    if tools_view_image is None:
        tools_view_image = tools_table.get("view_image")
    tools = ToolsConfig(web_search=tools_web_search, view_image=tools_view_image)

    web_search = pick("web_search")
    if web_search is None:
        if features.get("web_search_cached"):
            web_search = "cached"
        elif features.get("web_search_request", tools_web_search):
            web_search = "live"

    refresh_timeout = raw.get("chatgpt_auth_refresh_timeout_ms")
    config = Config(
        codex_home=inputs.codex_home,
        cwd=cwd,
        model=typed.model or pick("model") or DEFAULT_MODEL,
        model_provider_id=provider_id,
        model_provider=provider,
        model_providers=providers,
        approval_policy=cast(ApprovalPolicy, approval),
        sandbox_mode=cast(SandboxMode, sandbox),
        sandbox_workspace_write=workspace_write,
        model_reasoning_effort=pick("model_reasoning_effort"),
        model_reasoning_summary=pick("model_reasoning_summary") or "auto",
        model_verbosity=pick("model_verbosity"),
        personality=typed.personality or pick("personality"),
        base_instructions=base_instructions,
        developer_instructions=(
            typed.developer_instructions
            if typed.developer_instructions is not None
            else raw.get("developer_instructions")
        ),
        compact_prompt=compact_prompt,
        chatgpt_base_url=pick("chatgpt_base_url") or DEFAULT_CHATGPT_BASE_URL,
        forced_login_method=raw.get("forced_login_method"),
        forced_chatgpt_workspace_id=_trimmed_or_none(raw.get("forced_chatgpt_workspace_id")),
        cli_auth_credentials_store=raw.get("cli_auth_credentials_store") or "file",
        features=features,
        tools=tools,
        web_search=web_search,
        shell_environment_policy=dict(raw.get("shell_environment_policy") or {}),
        chatgpt_auth_refresh_timeout_ms=(
            refresh_timeout
            if isinstance(refresh_timeout, int)
            else DEFAULT_CHATGPT_AUTH_REFRESH_TIMEOUT_MS
        ),
        active_profile=profile_name,
        project_trust_level=trust_level,
        uses_deprecated_instructions_file=_uses_deprecated_instructions_file(layers),
        raw=raw,
        layers=tuple(layers),
        _inputs=inputs,
        requirements=requirements,
    )
    if requirements is not None:
        # Last, as in the reference: a missing provider or instructions file is reported first.
        violation = requirements.violation(
            approval_policy=config.approval_policy, sandbox_mode=config.sandbox_mode
        )
        if violation is not None:
            raise RequirementsViolation(violation, config)
    return config


# ---------------------------------------------------------------------------------------------
# The config API (config/read, config/value/write, configRequirements/read)

# A value the reference checks as a TOML value (not as file text) words an enum of the wrong type
# differently, and cannot resolve a relative path: there is no file to resolve it against.
_VALUE_ENUM_TYPE_MESSAGE = "invalid type: unit variant, expected string only"
_RELATIVE_PATH_MESSAGE = "AbsolutePathBuf deserialized without a base path"


def toml_to_json(value: Any) -> Any:
    """A parsed TOML value as JSON (dates and times as their TOML text)."""
    if isinstance(value, dict):
        return {key: toml_to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [toml_to_json(item) for item in value]
    # Dates and times are the only values JSON has no form for.
    return value.isoformat() if hasattr(value, "isoformat") else value


def effective_table(layers: Iterable[ConfigLayer]) -> dict[str, Any]:
    """The merged table of the enabled layers, lowest precedence first."""
    return _merged(layers)


def parse_config_text(text: str, file: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """A config.toml text parsed as its layer would hold it (relative paths resolved)."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _syntax_error(file, text, err) from err
    _resolve_paths(table, file.parent, _home_dir(env))
    return table


def _first_relative_path(table: Mapping[str, Any]) -> KeyPath | None:
    found: list[KeyPath] = []

    def walk(node: Any, pattern: tuple[str, ...], path: KeyPath) -> None:
        if not pattern:
            if isinstance(node, str) and not Path(node).is_absolute():
                found.append(path)
            return
        head, rest = pattern[0], pattern[1:]
        if head == "[]":
            if isinstance(node, list):
                for index, item in enumerate(node):
                    walk(item, rest, (*path, index))
            return
        if not isinstance(node, dict):
            return
        for key in sorted(node) if head == "*" else [head] if head in node else []:
            walk(node[key], rest, (*path, key))

    for pattern in _PATH_KEYS:
        walk(table, pattern, ())
    return min(found, key=_path_sort_key) if found else None


def _path_sort_key(path: KeyPath) -> tuple[tuple[int, int, str], ...]:
    return tuple((1, 0, part) if isinstance(part, str) else (0, part, "") for part in path)


def _value_error_key(path: KeyPath) -> str:
    # The feature maps are flattened into their struct: serde reports the struct, not the entry.
    if path[:1] == ("features",):
        path = path[:1]
    elif len(path) > 2 and path[0] == "profiles" and path[2] == "features":
        path = path[:3]
    return _dotted(path)


def validate_config_value(table: Mapping[str, Any]) -> None:
    """Check a whole config table the way the reference checks a TOML value (config/read's merged
    table, config/value/write's result): ConfigError with the keyed message, no file position."""
    type_error: _ValueError | None = None
    try:
        _CONFIG(table, ())
    except _ValueError as err:
        type_error = err
    relative = _first_relative_path(table)
    if relative is not None and (
        type_error is None or _path_sort_key(relative) < _path_sort_key(type_error.path)
    ):
        raise ConfigError(_RELATIVE_PATH_MESSAGE, key=_dotted(relative))
    if type_error is not None:
        message = type_error.message
        if message == "wanted string or table":
            message = _VALUE_ENUM_TYPE_MESSAGE
        raise ConfigError(message, key=_value_error_key(type_error.path))


def toml_error_snippet(text: str, where: TextRange, message: str) -> str:
    """An error about ``text`` in the toml crate's layout: position, the line with carets, message."""
    lines = text.splitlines() or [""]
    line_no = min(where.start.line, len(lines))
    line = lines[line_no - 1]
    column = where.start.column
    if where.end.line == where.start.line:
        width = max(1, where.end.column - column + 1)
    else:
        width = max(1, len(line) - column + 1)
    gutter = " " * len(str(line_no))
    return (
        f"TOML parse error at line {line_no}, column {column}\n"
        f"{gutter} |\n"
        f"{line_no} | {line}\n"
        f"{gutter} | {' ' * (column - 1)}{'^' * width}\n"
        f"{message}\n"
    )


def toml_syntax_error_snippet(text: str, file: Path) -> str | None:
    """None when ``text`` is valid TOML, else its syntax error as the toml crate lays it out
    ("TOML parse error at line N, column M", the line, carets, the message)."""
    try:
        tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as err:
        from .toml_errors import error_snippet, find_syntax_error

        found = find_syntax_error(text)
        if found is not None:
            return error_snippet(text, found)
        located = _syntax_error(file, text, err)
        if located.range is None:
            return located.message
        return toml_error_snippet(text, located.range, located.message)
    return None


_SANDBOX_REQUIREMENT_MODES = (*SANDBOX_MODES, "external-sandbox")
_SANDBOX_REQUIREMENT_NAMES = {
    "read-only": "ReadOnly",
    "workspace-write": "WorkspaceWrite",
    "danger-full-access": "DangerFullAccess",
    "external-sandbox": "ExternalSandbox",
}
# How the reference names approval policies in its requirement errors (its enum's variant names).
_APPROVAL_REQUIREMENT_NAMES = {
    "untrusted": "UnlessTrusted",
    "on-failure": "OnFailure",
    "on-request": "OnRequest",
    "never": "Never",
}
# A v2 SandboxPolicy's `type` -> the sandbox mode requirements speak of.
_SANDBOX_POLICY_MODES = {
    "readOnly": "read-only",
    "workspaceWrite": "workspace-write",
    "dangerFullAccess": "danger-full-access",
    "externalSandbox": "external-sandbox",
}


def sandbox_mode_of_policy(policy: Mapping[str, Any]) -> str:
    """The sandbox mode (``read-only``, ..., ``external-sandbox``) of a v2 SandboxPolicy."""
    return _SANDBOX_POLICY_MODES[policy["type"]]

_MCP_IDENTITY = _struct("McpServerRequirement", {"identity": _any}, required=("identity",))
_REQUIREMENTS = _struct(
    "ConfigRequirementsToml",
    {
        "allowed_approval_policies": _seq(_APPROVAL),
        "allowed_sandbox_modes": _seq(_enum(_SANDBOX_REQUIREMENT_MODES)),
        "mcp_servers": _map(_MCP_IDENTITY),
        "enforce_residency": _enum(("us",)),
        "rules": _any,
    },
)
_REQUIREMENT_KEYS = (
    "allowed_approval_policies",
    "allowed_sandbox_modes",
    "mcp_servers",
    "enforce_residency",
    "rules",
)


def _enum_name(value: Any) -> str:
    # serde accepts a one-entry table naming the variant.
    return next(iter(value)) if isinstance(value, dict) else str(value)


@dataclass(frozen=True)
class ConfigRequirements:
    """``/etc/codex/requirements.toml``: what an administrator allows, as configRequirements/read
    reports it. Sandbox modes keep ``external-sandbox``, which the protocol does not list."""

    allowed_approval_policies: tuple[str, ...] | None = None
    allowed_sandbox_modes: tuple[str, ...] | None = None
    enforce_residency: str | None = None
    mcp_servers: Mapping[str, Any] | None = None
    rules: Mapping[str, Any] | None = None
    # The file they come from: errors name it.
    source: Path | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, key) is None for key in _REQUIREMENT_KEYS)

    def _not_allowed(self, field_name: str, candidate: str, allowed: Iterable[str]) -> str:
        return (
            f"invalid value for `{field_name}`: `{candidate}` is not in the allowed set "
            f"[{', '.join(allowed)}] (set by {self.source})"
        )

    def violation(
        self, *, approval_policy: str | None = None, sandbox_mode: str | None = None
    ) -> str | None:
        """Why these settings are not allowed, worded like the reference; None when they are. The
        approval policy is checked first, as the reference does. ``sandbox_mode`` may be
        ``external-sandbox`` (see sandbox_mode_of_policy)."""
        policies = self.allowed_approval_policies
        if approval_policy is not None and policies is not None and approval_policy not in policies:
            return self._not_allowed(
                "approval_policy",
                _APPROVAL_REQUIREMENT_NAMES[approval_policy],
                (_APPROVAL_REQUIREMENT_NAMES[p] for p in policies),
            )
        modes = self.allowed_sandbox_modes
        if sandbox_mode is not None and modes is not None and sandbox_mode not in modes:
            return self._not_allowed(
                "sandbox_mode",
                _SANDBOX_REQUIREMENT_NAMES[sandbox_mode],
                (_SANDBOX_REQUIREMENT_NAMES[m] for m in modes),
            )
        return None


def load_requirements(path: Path = SYSTEM_REQUIREMENTS_TOML) -> ConfigRequirements | None:
    """The requirements in ``path``; None when it is missing or sets nothing the reference knows.

    Raises ConfigError worded like the reference for malformed files and impossible requirements.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Failed to read requirements file {path}: {err}") from err
    prefix = f"Error parsing requirements file {path}: "
    try:
        table = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(prefix + (toml_syntax_error_snippet(text, path) or str(err))) from err
    try:
        _REQUIREMENTS(table, ())
    except _ValueError as err:
        where = _TomlPositions(text).locate(err.path)
        if where is None:
            raise ConfigError(prefix + err.message) from None
        raise ConfigError(prefix + toml_error_snippet(text, where, err.message)) from None

    set_by = f"(set by {path})"
    lists: dict[str, tuple[str, ...] | None] = {}
    for key in ("allowed_approval_policies", "allowed_sandbox_modes"):
        values = table.get(key)
        if values is None:
            lists[key] = None
            continue
        if not values:
            raise ConfigError(f"field `{key}` cannot be empty")
        lists[key] = tuple(_enum_name(v) for v in values)
    sandbox_modes = lists["allowed_sandbox_modes"]
    if sandbox_modes is not None and "read-only" not in sandbox_modes:
        names = ", ".join(_SANDBOX_REQUIREMENT_NAMES[mode] for mode in sandbox_modes)
        raise ConfigError(
            f"invalid value for `allowed_sandbox_modes`: `[{names}]` is not in the allowed set "
            f"must include 'read-only' to allow any SandboxPolicy {set_by}"
        )
    rules = table.get("rules")
    if isinstance(rules, dict) and rules.get("prefix_rules") == []:
        raise ConfigError(
            f"invalid rules in requirements {set_by}: rules prefix_rules cannot be empty"
        )
    residency = table.get("enforce_residency")
    requirements = ConfigRequirements(
        allowed_approval_policies=lists["allowed_approval_policies"],
        allowed_sandbox_modes=sandbox_modes,
        enforce_residency=_enum_name(residency) if residency is not None else None,
        mcp_servers=table.get("mcp_servers"),
        rules=rules if isinstance(rules, dict) else None,
        source=path,
    )
    return None if requirements.is_empty() else requirements
