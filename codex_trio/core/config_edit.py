"""Changing ``$CODEX_HOME/config.toml`` for the config API, the way the reference (Codex 0.94.0) does.

Each edit is first applied to the parsed user layer with the reference's rules (a dotted key path,
``replace`` or ``upsert``, ``null`` to remove); the result is validated as a whole, together with the
other layers, before anything touches the disk. The same change is then made to the file's text with
tomlkit, so comments, key order and formatting outside the changed values stay as they were; the new
text is read back and compared with the intended table before it atomically replaces the file.

tomlkit is imported by the functions that write: starting the server must not load it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import files
from .config import (
    CONFIG_TOML_FILE,
    SYSTEM_CONFIG_TOML,
    ConfigError,
    ConfigLayer,
    effective_table,
    load_config_layers,
    parse_config_text,
    toml_syntax_error_snippet,
    toml_to_json,
    validate_config_value,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

if TYPE_CHECKING:
    from tomlkit.container import Container
    from tomlkit.items import Item

log = logging.getLogger(__name__)

MergeStrategy = Literal["replace", "upsert"]
WriteErrorCode = Literal[
    "configLayerReadonly",
    "configVersionConflict",
    "configValidationError",
    "configPathNotFound",
    "configSchemaUnknownKey",
    "userLayerNotFound",
]

VERSION_CONFLICT_MESSAGE = (
    "Configuration was modified since last read. Fetch latest version and retry."
)
READONLY_MESSAGE = "Only writes to the user config are allowed"
I64_MIN, I64_MAX, U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


class ConfigWriteError(Exception):
    """A refused write; the client sees ``message`` with ``{"config_write_error_code": code}``."""

    def __init__(self, code: WriteErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: WriteErrorCode = code
        self.message = message


class ConfigServiceError(Exception):
    """The configuration could not be read or persisted; ``str()`` is ``<context>: <detail>``."""

    def __init__(self, context: str, detail: str) -> None:
        super().__init__(f"{context}: {detail}")
        self.context = context
        self.detail = detail


@dataclass(frozen=True)
class ValueEdit:
    key_path: str
    # Parsed JSON; None removes the key.
    value: Any
    merge_strategy: MergeStrategy


@dataclass(frozen=True)
class WriteResult:
    file_path: Path
    version: str
    # The protocol's OverriddenMetadata, when a higher layer hides what was written.
    overridden: dict[str, Any] | None


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
# (key path, new value or MISSING to remove it)
Change = tuple[Sequence[str], Any]


# ---------------------------------------------------------------------------------------------
# Edits on the parsed table (the reference's rules)


class _PathNotFound(Exception):
    pass


class _MergeError(Exception):
    pass


def parse_key_path(key_path: str) -> list[str]:
    """``a.b.c`` split on every dot (so ``a..b`` has an empty middle key, as for the reference)."""
    if not key_path.strip():
        raise ConfigWriteError("configValidationError", "keyPath must not be empty")
    return key_path.split(".")


def json_to_toml(value: Any) -> Any:
    """A JSON value as a TOML value; ValueError(message) for what TOML cannot hold."""
    if value is None:
        raise ValueError("invalid type: null, expected any valid TOML value")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if I64_MIN <= value <= I64_MAX:
            return value
        if 0 <= value <= U64_MAX:
            raise ValueError("u64 value was too large")
        # Beyond 64 bits JSON numbers are parsed as floats.
        return float(value)
    if isinstance(value, list):
        return [json_to_toml(item) for item in value]
    if isinstance(value, dict):
        return {key: json_to_toml(item) for key, item in value.items()}
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equality of TOML values that, unlike ``==``, tells ``1``, ``1.0`` and ``true`` apart."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(same_value(a[k], b[k]) for k in a)
        )
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list)
            and isinstance(b, list)
            and len(a) == len(b)
            and all(same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, float) != isinstance(b, float):
        return False
    return bool(a == b)


def value_at_path(root: Any, segments: Sequence[str]) -> Any:
    """The value at ``segments`` (array elements by index), or MISSING."""
    current = root
    for segment in segments:
        if isinstance(current, dict):
            if segment not in current:
                return MISSING
            current = current[segment]
        elif isinstance(current, list):
            try:
                index = int(segment)
            except ValueError:
                return MISSING
            if not 0 <= index < len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def _merge_into(base: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    for key, value in overlay.items():
        existing = base.get(key)
        if isinstance(existing, dict) and isinstance(value, dict):
            _merge_into(existing, value)
        else:
            base[key] = value


def apply_merge(
    root: dict[str, Any], segments: Sequence[str], value: Any, strategy: MergeStrategy
) -> None:
    """Set (or with ``value`` MISSING, remove) ``segments`` in ``root``.

    Missing tables on the way are created; a non-table on the way is replaced by a table, except the
    direct parent, which is refused. ``upsert`` of a table onto a table merges them (recursively);
    anything else replaces.
    """
    if value is MISSING:
        _clear_path(root, segments)
        return
    *parents, last = segments
    container = root
    for depth, segment in enumerate(parents):
        child = container.get(segment)
        if child is None or (not isinstance(child, dict) and depth < len(parents) - 1):
            child = {}
            container[segment] = child
        elif not isinstance(child, dict):
            raise _MergeError("cannot set value on non-table parent")
        container = child
    existing = container.get(last)
    if strategy == "upsert" and isinstance(existing, dict) and isinstance(value, dict):
        _merge_into(existing, value)
        return
    container[last] = value


def _clear_path(root: dict[str, Any], segments: Sequence[str]) -> None:
    *parents, last = segments
    container: Any = root
    for segment in parents:
        if not isinstance(container, dict) or segment not in container:
            raise _PathNotFound
        container = container[segment]
    if not isinstance(container, dict):
        raise _PathNotFound
    container.pop(last, None)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value


def _set_plain(root: dict[str, Any], segments: Sequence[str], value: Any) -> None:
    """What a Change does to the parsed table (used to check the edited text)."""
    *parents, last = segments
    container = root
    for segment in parents:
        child = container.get(segment)
        if not isinstance(child, dict):
            if value is MISSING:
                return
            child = {}
            container[segment] = child
        container = child
    if value is MISSING:
        container.pop(last, None)
    else:
        container[last] = _deep_copy(value)


def _without_empty_tables(value: Any) -> Any:
    # Removing the last key of an implicit table ([a.b] alone under `a`) leaves nothing to write
    # for `a`; the parsed file then lacks the empty table the edited table still has.
    if isinstance(value, dict):
        pruned = {key: _without_empty_tables(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item != {}}
    if isinstance(value, list):
        return [_without_empty_tables(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------
# Edits on the file text (tomlkit)


def _is_table(item: Any) -> bool:
    # tomlkit's tables (Table, InlineTable, and the proxy of a table split across the file) are
    # dicts; arrays of tables are lists.
    return isinstance(item, dict)


def _body(container: Any) -> list[tuple[Any, Any]]:
    from tomlkit.container import Container
    from tomlkit.items import Table

    if isinstance(container, Container):
        return container.body
    if isinstance(container, Table):
        return container.value.body
    return []


def _is_inline_child(container: Any, key: str) -> bool:
    """Whether the table at ``key`` is written inline (``{...}`` or dotted keys): its new sub-tables
    must then be inline tables too, not ``[headers]``."""
    from tomlkit.items import InlineTable

    if isinstance(container[key], InlineTable):
        return True
    return any(k is not None and k.key == key and k.is_dotted() for k, _ in _body(container))


def _string_item(text: str) -> Item:
    """A string as the reference chooses its form: multi-line for text with line breaks, literal
    when that avoids escapes, escaped otherwise."""
    import tomlkit

    lines = text.split("\n")
    printable = all(ch >= " " or ch == "\t" for line in lines for ch in line) and "\x7f" not in text
    if (
        len(lines) > 1
        and printable
        # Blank lines stay escaped: the edited text's blank-line tidying must not reach inside.
        and all(lines)
        and '"""' not in text
        and "\\" not in text
        and not text.endswith('"')
    ):
        return tomlkit.string(text, multiline=True)
    if len(lines) == 1 and printable and ('"' in text or "\\" in text) and "'" not in text:
        return tomlkit.string(text, literal=True)
    return tomlkit.string(text)


def _to_item(value: Any, inline: bool, created: list[Any]) -> Item:
    """A new item for ``value``; the [tables] it makes are added to ``created``."""
    import tomlkit

    if isinstance(value, dict):
        # New tables list their keys sorted, values before sub-tables, like the reference writes them.
        keys = sorted(value, key=lambda k: (isinstance(value[k], dict), k))
        if inline:
            inline_table = tomlkit.inline_table()
            for key in keys:
                inline_table[key] = _to_item(value[key], True, created)
            return inline_table
        only_tables = bool(value) and all(isinstance(v, dict) for v in value.values())
        table = tomlkit.table(is_super_table=only_tables)
        for key in keys:
            table[key] = _to_item(value[key], False, created)
        if not only_tables:
            created.append(table)
        return table
    if isinstance(value, list):
        array = tomlkit.array()
        for element in value:
            array.append(_to_item(element, True, created))
        return array
    if isinstance(value, str):
        return _string_item(value)
    return tomlkit.item(value)


def _put(container: Any, key: str, item: Item) -> None:
    from tomlkit.container import OutOfOrderTableProxy
    from tomlkit.items import AoT, Table

    if key in container:
        old = container[key]
        if isinstance(old, (Table, AoT, OutOfOrderTableProxy)) != isinstance(item, (Table, AoT)):
            # A key/value cannot take the place of a [table] (it would land in the table above it),
            # nor the other way round: remove, then add where tomlkit puts that kind of item.
            del container[key]
    container[key] = item


def _unwrap(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


def _assign(container: Any, key: str, value: Any, inline: bool, created: list[Any]) -> None:
    if key in container:
        current = container[key]
        if same_value(_unwrap(current), value):
            return
        if isinstance(value, dict) and _is_table(current):
            child_inline = inline or _is_inline_child(container, key)
            for stale in [k for k in current if k not in value]:
                del current[stale]
            kept = [k for k in value if k in current]
            added = sorted(
                (k for k in value if k not in current), key=lambda k: (isinstance(value[k], dict), k)
            )
            for child in kept + added:
                _assign(current, child, value[child], child_inline, created)
            return
    _put(container, key, _to_item(value, inline, created))


def _apply_change(
    doc: Container, segments: Sequence[str], value: Any, created: list[Any]
) -> None:
    *parents, last = segments
    container: Any = doc
    inline = False
    for depth, segment in enumerate(parents):
        if segment not in container or not _is_table(container[segment]):
            if value is MISSING:
                return
            if inline:
                new: Any = _to_item({}, True, created)
            else:
                import tomlkit

                # Only the innermost new table gets a [header]; those above it stay implicit.
                implicit = depth < len(parents) - 1 or isinstance(value, dict)
                new = tomlkit.table(is_super_table=implicit)
                if not implicit:
                    created.append(new)
            _put(container, segment, new)
        inline = inline or _is_inline_child(container, segment)
        container = container[segment]
    if value is MISSING:
        if last in container:
            del container[last]
        return
    _assign(container, last, value, inline, created)


def edit_toml_text(text: str, changes: Sequence[Change]) -> str:
    """``text`` with ``changes`` made, keeping everything else as written.

    Raises ValueError if the edited text would not parse back to the intended table (tomlkit could
    not express the change in place); nothing is written then.
    """
    import tomlkit

    doc = tomlkit.parse(text)
    expected = tomllib.loads(text)
    created: list[Any] = []
    for segments, value in changes:
        _apply_change(doc, segments, value, created)
        _set_plain(expected, segments, value)
    # A blank line after each new [table] separates it from a table that follows; added once all
    # changes are made, so that no later key lands after it.
    for table in created:
        table.add(tomlkit.nl())
    new_text = tomlkit.dumps(doc)
    if "\n\n\n" not in text:
        # tomlkit also puts a blank line before a table it appends: one is enough.
        while "\n\n\n" in new_text:
            new_text = new_text.replace("\n\n\n", "\n\n")
    if not text.endswith("\n\n"):
        new_text = new_text.rstrip("\n") + "\n" if new_text.strip() else ""
    if not text.startswith("\n"):
        new_text = new_text.lstrip("\n")
    try:
        parsed = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"the edited file is not valid TOML: {err}") from err
    if not same_value(_without_empty_tables(parsed), _without_empty_tables(expected)):
        raise ValueError("the edited file does not read back as the intended configuration")
    return new_text


def write_atomically(path: Path, text: str) -> None:
    """Replace config.toml (its target, if a symlink: the reference writes through links) atomically;
    like the reference, the result is 0600 whatever the file's mode was."""
    files.write_atomically(path, text, follow_symlinks=True)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------------------------------------
# config/value/write and config/batchWrite


def _same_file(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _override_message(layer: ConfigLayer) -> str:
    if layer.kind == "system":
        return f"Overridden by managed config (system): {layer.file}"
    if layer.kind == "project":
        return f"Overridden by project config: {layer.dot_codex_folder}/{CONFIG_TOML_FILE}"
    if layer.kind == "sessionFlags":
        return "Overridden by session flags"
    return f"Overridden by user config: {layer.file}"


def _overridden(
    layers: Sequence[ConfigLayer], effective: Mapping[str, Any], segments: Sequence[str]
) -> dict[str, Any] | None:
    """Where a value written to the user layer is not what takes effect: which layer decides."""
    user = next((layer for layer in layers if layer.kind == "user"), None)
    if user is None:
        return None
    user_value = value_at_path(user.config, segments)
    effective_value = value_at_path(effective, segments)
    if user_value is not MISSING and effective_value is not MISSING:
        if same_value(user_value, effective_value):
            return None
    elif user_value is MISSING and effective_value is MISSING:
        return None
    for layer in reversed(layers):
        if value_at_path(layer.config, segments) is not MISSING:
            return {
                "message": _override_message(layer),
                "overridingLayer": {"name": layer.name_json(), "version": layer.version},
                "effectiveValue": (
                    None if effective_value is MISSING else toml_to_json(effective_value)
                ),
            }
    return None


def _invalid(err: ConfigError) -> ConfigWriteError:
    return ConfigWriteError("configValidationError", f"Invalid configuration: {err.keyed_message()}")


def write_user_config(
    codex_home: Path,
    edits: Sequence[ValueEdit],
    *,
    file_path: str | None,
    expected_version: str | None,
    cli_overrides: Sequence[tuple[str, object]],
    env: Mapping[str, str],
    system_config_path: Path | None = SYSTEM_CONFIG_TOML,
) -> WriteResult:
    """Apply ``edits`` to the user's config.toml, all or nothing.

    Raises ConfigWriteError for what the client asked wrong (another file, a stale version, a bad
    key path or value, a result that is not a valid configuration) and ConfigServiceError when the
    configuration cannot be read or the file written. A refused write leaves the file untouched.
    """
    user_file = codex_home / CONFIG_TOML_FILE
    target = user_file
    if file_path is not None:
        provided = Path(file_path)
        if not provided.is_absolute() or not _same_file(provided, user_file):
            raise ConfigWriteError("configLayerReadonly", READONLY_MESSAGE)
        target = Path(os.path.normpath(provided))

    try:
        layers = load_config_layers(
            codex_home,
            cli_overrides=cli_overrides,
            env=env,
            system_config_path=system_config_path,
        )
    except ConfigError as err:
        raise ConfigServiceError("failed to load configuration", str(err)) from err
    user_index = next(i for i, layer in enumerate(layers) if layer.kind == "user")
    user_layer = layers[user_index]
    if expected_version is not None and expected_version != user_layer.version:
        raise ConfigWriteError("configVersionConflict", VERSION_CONFLICT_MESSAGE)

    user_config = _deep_copy(user_layer.config)
    changes: list[Change] = []
    edited_paths: list[list[str]] = []
    for edit in edits:
        segments = parse_key_path(edit.key_path)
        before = _deep_copy(value_at_path(user_config, segments))
        if edit.value is None:
            value = MISSING
        else:
            try:
                value = json_to_toml(edit.value)
            except ValueError as err:
                raise ConfigWriteError("configValidationError", f"invalid value: {err}") from None
        try:
            apply_merge(user_config, segments, value, edit.merge_strategy)
        except _PathNotFound:
            raise ConfigWriteError("configPathNotFound", "Path not found") from None
        except _MergeError as err:
            raise ConfigWriteError("configValidationError", str(err)) from None
        after = value_at_path(user_config, segments)
        unchanged = (before is MISSING and after is MISSING) or (
            before is not MISSING and after is not MISSING and same_value(before, after)
        )
        if not unchanged:
            changes.append((segments, _deep_copy(after)))
        edited_paths.append(segments)

    try:
        validate_config_value(user_config)
    except ConfigError as err:
        raise _invalid(err) from None
    updated = list(layers)
    updated[user_index] = ConfigLayer(kind="user", file=user_layer.file, config=user_config)
    effective = effective_table(updated)
    try:
        validate_config_value(effective)
    except ConfigError as err:
        raise _invalid(err) from None

    version = user_layer.version
    if changes:
        original = _read_text(user_file)
        try:
            new_text = edit_toml_text(original, changes)
        except ValueError as err:
            log.error("config.toml edit not applied: %s", err)
            raise ConfigServiceError("failed to persist config.toml", str(err)) from err
        try:
            write_atomically(user_file, new_text)
        except OSError as err:
            raise ConfigServiceError("failed to persist config.toml", str(err)) from err
        # The version of what the next read will find (an emptied implicit table is not written).
        written = parse_config_text(new_text, user_file, env)
        version = ConfigLayer(kind="user", file=user_file, config=written).version
        updated[user_index] = ConfigLayer(kind="user", file=user_layer.file, config=written)
        effective = effective_table(updated)

    overridden = None
    for segments in edited_paths:
        overridden = _overridden(updated, effective, segments)
        if overridden is not None:
            break
    return WriteResult(file_path=target, version=version, overridden=overridden)


# ---------------------------------------------------------------------------------------------
# setDefaultModel


def set_default_model(
    codex_home: Path, model: str | None, reasoning_effort: str | None, profile: str | None
) -> None:
    """Write ``model`` and ``model_reasoning_effort`` (removing those that are None) at the top of
    config.toml, or in ``[profiles.<profile>]`` when a profile is active. No validation, like the
    reference: this only records the client's choice."""
    context = "failed to persist model selection"
    user_file = codex_home / CONFIG_TOML_FILE
    original = _read_text(user_file)
    syntax = toml_syntax_error_snippet(original, user_file)
    if syntax is not None:
        raise ConfigServiceError(context, syntax)
    base = ["profiles", profile] if profile is not None else []
    changes: list[Change] = [
        ([*base, "model"], model if model is not None else MISSING),
        ([*base, "model_reasoning_effort"], reasoning_effort if reasoning_effort is not None else MISSING),
    ]
    try:
        new_text = edit_toml_text(original, changes)
    except ValueError as err:
        log.error("config.toml edit not applied: %s", err)
        raise ConfigServiceError(context, str(err)) from err
    if new_text == original and user_file.exists():
        return
    try:
        write_atomically(user_file, new_text)
    except OSError as err:
        raise ConfigServiceError(context, str(err)) from err
