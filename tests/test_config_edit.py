"""Editing config.toml (codex_trio.core.config_edit) and the config API's checks in core.config:
the reference's merge rules and messages (Codex 0.94.0, observed with config/value/write and
config/batchWrite), and edits that leave the rest of the file as the user wrote it."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_trio.core import config_edit
from codex_trio.core.config import (
    ConfigError,
    load_config_layers,
    load_requirements,
    validate_config_value,
)
from codex_trio.core.config_edit import (
    ConfigServiceError,
    ConfigWriteError,
    MergeStrategy,
    ValueEdit,
    WriteResult,
    edit_toml_text,
    set_default_model,
    write_user_config,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ORIGINAL = """\
# My settings
model = "gpt-5"  # the default
approval_policy = "never"

[profiles.fast]
model = "fast-model"  # quick

[model_providers.local]
name = "Local"
base_url = "http://127.0.0.1:9/v1"
"""


def write(
    home: Path,
    *edits: tuple[str, Any, MergeStrategy],
    expected_version: str | None = None,
    file_path: str | None = None,
    overrides: list[tuple[str, object]] | None = None,
) -> WriteResult:
    return write_user_config(
        home,
        [ValueEdit(key, value, strategy) for key, value, strategy in edits],
        file_path=file_path,
        expected_version=expected_version,
        cli_overrides=overrides or [],
        env={"HOME": str(home)},
        system_config_path=None,
    )


def refused(home: Path, *edits: tuple[str, Any, MergeStrategy], **kwargs: Any) -> ConfigWriteError:
    with pytest.raises(ConfigWriteError) as info:
        write(home, *edits, **kwargs)
    return info.value


def user_version(home: Path) -> str:
    layers = load_config_layers(home, env={"HOME": str(home)}, system_config_path=None)
    return next(layer for layer in layers if layer.kind == "user").version


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text(ORIGINAL, encoding="utf-8")
    return tmp_path


def text(home: Path) -> str:
    return (home / "config.toml").read_text(encoding="utf-8")


# ---- where edits land ---------------------------------------------------------------------------


def test_replacing_a_value_keeps_its_comment_and_everything_else(home: Path) -> None:
    write(home, ("model", "gpt-5.2", "replace"))
    assert text(home) == ORIGINAL.replace('"gpt-5"  # the default', '"gpt-5.2"  # the default')


def test_a_dotted_key_creates_its_table_at_the_end(home: Path) -> None:
    write(home, ("tools.web_search", True, "upsert"))
    assert text(home) == ORIGINAL + "\n[tools]\nweb_search = true\n"


def test_a_new_top_level_key_goes_before_the_first_table(home: Path) -> None:
    write(home, ("model_verbosity", "low", "replace"))
    assert text(home) == ORIGINAL.replace(
        'approval_policy = "never"\n', 'approval_policy = "never"\nmodel_verbosity = "low"\n'
    )


def test_a_new_key_of_an_existing_table_goes_at_its_end(home: Path) -> None:
    write(home, ("profiles.fast.model_verbosity", "high", "replace"))
    assert text(home) == ORIGINAL.replace(
        '# quick\n', '# quick\nmodel_verbosity = "high"\n'
    )


def test_a_new_profile_joins_the_other_profiles(home: Path) -> None:
    write(home, ("profiles.slow.model", "slow-model", "replace"))
    assert text(home) == ORIGINAL.replace(
        '# quick\n', '# quick\n\n[profiles.slow]\nmodel = "slow-model"\n'
    )


def test_replacing_a_table_drops_what_the_new_value_lacks(home: Path) -> None:
    write(home, ("model_providers.local", {"name": "Renamed", "wire_api": "responses"}, "replace"))
    assert text(home).endswith('[model_providers.local]\nname = "Renamed"\nwire_api = "responses"\n')


def test_upserting_a_table_merges_it_into_the_existing_one(home: Path) -> None:
    write(home, ("profiles.fast", {"model_reasoning_effort": "high"}, "upsert"))
    assert text(home) == ORIGINAL.replace(
        '# quick\n', '# quick\nmodel_reasoning_effort = "high"\n'
    )


def test_a_new_table_value_is_written_with_sorted_keys_and_sub_tables(home: Path) -> None:
    value = {"command": "npx", "args": ["-y", "srv"], "env": {"TOKEN_FILE": "/run/t"}}
    write(home, ("mcp_servers.docs", value, "replace"))
    assert text(home) == ORIGINAL + (
        '\n[mcp_servers.docs]\nargs = ["-y", "srv"]\ncommand = "npx"\n'
        '\n[mcp_servers.docs.env]\nTOKEN_FILE = "/run/t"\n'
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "tools = { view_image = true } # kept\n",
            "tools = { view_image = true, web_search = true} # kept\n",
        ),
        ("tools.view_image = true\n", "tools.view_image = true\ntools.web_search = true\n"),
    ],
)
def test_inline_and_dotted_tables_stay_as_they_are(tmp_path: Path, before: str, after: str) -> None:
    (tmp_path / "config.toml").write_text(before, encoding="utf-8")
    write(tmp_path, ("tools.web_search", True, "upsert"))
    assert text(tmp_path) == after


def test_a_table_under_dotted_keys_is_written_inline(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('tools.view_image = true\nmodel = "m"\n', encoding="utf-8")
    write(tmp_path, ("tools.extra", {"k": 1}, "replace"))
    assert tomllib.loads(text(tmp_path)) == {"tools": {"view_image": True, "extra": {"k": 1}}, "model": "m"}
    assert text(tmp_path).startswith("tools.view_image = true\n")


def test_arrays_and_arrays_of_tables_are_written_inline(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[[x]]\na = 1\n", encoding="utf-8")
    write(tmp_path, ("x", [{"a": 2}, {"b": [1, 2]}], "replace"), ("notify", ["say", "done"], "replace"))
    assert tomllib.loads(text(tmp_path)) == {"x": [{"a": 2}, {"b": [1, 2]}], "notify": ["say", "done"]}


def test_null_removes_the_key_and_keeps_the_rest(home: Path) -> None:
    write(home, ("approval_policy", None, "replace"))
    assert text(home) == ORIGINAL.replace('approval_policy = "never"\n', "")


def test_removing_a_missing_key_changes_nothing(home: Path) -> None:
    result = write(home, ("profiles.fast.nothing", None, "replace"))
    assert text(home) == ORIGINAL
    assert result.version == user_version(home)


def test_edits_of_a_batch_apply_in_order(home: Path) -> None:
    write(home, ("model", "b", "replace"), ("model", "c", "replace"), ("tools.view_image", False, "upsert"))
    assert tomllib.loads(text(home))["model"] == "c"
    assert tomllib.loads(text(home))["tools"] == {"view_image": False}


@pytest.mark.parametrize(
    "value",
    [
        'say "hi"', "C:\\path", "it's", "two\nlines", "x\n\n\ny", "\nleading", "tab\there", "ünï",
        "both'\"", 'x"""y',
    ],
)
def test_strings_read_back_exactly(tmp_path: Path, value: str) -> None:
    new = edit_toml_text("k = 1\n", [(["s"], value)])
    assert tomllib.loads(new) == {"k": 1, "s": value}


def test_an_edit_that_would_not_read_back_is_not_written(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands for any change tomlkit cannot express in place: the text is checked against the
    # intended table before it replaces the file.
    monkeypatch.setattr(config_edit, "_apply_change", lambda *args: None)
    with pytest.raises(ConfigServiceError) as info:
        write(home, ("model", "lost", "replace"))
    assert str(info.value) == (
        "failed to persist config.toml: the edited file does not read back as the intended configuration"
    )
    assert text(home) == ORIGINAL


def test_the_empty_key_between_two_dots_is_a_key(tmp_path: Path) -> None:
    write(tmp_path, ("a..b", 1, "replace"))
    assert tomllib.loads(text(tmp_path)) == {"a": {"": {"b": 1}}}


# ---- what is refused, and that a refusal leaves the file alone -----------------------------------


def test_an_invalid_value_is_refused_with_the_reference_text(home: Path) -> None:
    os.chmod(home / "config.toml", 0o640)
    before = (home / "config.toml").read_bytes()
    err = refused(home, ("model", "fine", "replace"), ("approval_policy", "bogus-policy", "replace"))
    assert err.code == "configValidationError"
    assert err.message == (
        "Invalid configuration: unknown variant `bogus-policy`, expected one of `untrusted`, "
        "`on-failure`, `on-request`, `never`\nin `approval_policy`\n"
    )
    assert (home / "config.toml").read_bytes() == before
    assert stat.S_IMODE(os.stat(home / "config.toml").st_mode) == 0o640
    assert sorted(p.name for p in home.iterdir()) == ["config.toml"]


@pytest.mark.parametrize(
    ("edit", "code", "message"),
    [
        (("", 1, "replace"), "configValidationError", "keyPath must not be empty"),
        (("  ", 1, "replace"), "configValidationError", "keyPath must not be empty"),
        (("nope.deeper", None, "replace"), "configPathNotFound", "Path not found"),
        (("model.sub", "v", "replace"), "configValidationError", "cannot set value on non-table parent"),
        (
            ("model.sub.x", "v", "replace"),
            "configValidationError",
            "Invalid configuration: invalid type: map, expected a string\nin `model`\n",
        ),
        (("x", 2**64 - 1, "replace"), "configValidationError", "invalid value: u64 value was too large"),
        (
            ("x", [1, None], "replace"),
            "configValidationError",
            "invalid value: invalid type: null, expected any valid TOML value",
        ),
        (
            ("profiles.fast.model_verbosity", 3, "replace"),
            "configValidationError",
            "Invalid configuration: invalid type: unit variant, expected string only\n"
            "in `profiles.fast.model_verbosity`\n",
        ),
        (
            ("model_instructions_file", "notes.md", "replace"),
            "configValidationError",
            "Invalid configuration: AbsolutePathBuf deserialized without a base path\n"
            "in `model_instructions_file`\n",
        ),
        (
            ("features.fast_mode", "yes", "replace"),
            "configValidationError",
            'Invalid configuration: invalid type: string "yes", expected a boolean\nin `features`\n',
        ),
    ],
)
def test_refusals(home: Path, edit: tuple[str, Any, MergeStrategy], code: str, message: str) -> None:
    err = refused(home, edit)
    assert (err.code, err.message) == (code, message)
    assert text(home) == ORIGINAL


def test_a_stale_version_is_a_conflict(home: Path) -> None:
    version = user_version(home)
    first = write(home, ("model", "a", "replace"), expected_version=version)
    assert first.version == user_version(home) != version
    err = refused(home, ("model", "b", "replace"), expected_version=version)
    assert (err.code, err.message) == (
        "configVersionConflict",
        "Configuration was modified since last read. Fetch latest version and retry.",
    )
    assert tomllib.loads(text(home))["model"] == "a"
    write(home, ("model", "b", "replace"), expected_version=first.version)


@pytest.mark.parametrize("path", ["config.toml", "/etc/codex/config.toml"])
def test_only_the_user_config_can_be_written(home: Path, path: str) -> None:
    err = refused(home, ("model", "x", "replace"), file_path=path)
    assert (err.code, err.message) == ("configLayerReadonly", "Only writes to the user config are allowed")


def test_the_user_config_may_be_named_by_path(home: Path) -> None:
    result = write(home, ("model", "x", "replace"), file_path=str(home / ".." / home.name / "config.toml"))
    assert result.file_path == home / "config.toml"


def test_a_written_file_is_private_like_the_reference_leaves_it(tmp_path: Path) -> None:
    write(tmp_path, ("model", "m1", "replace"))
    assert text(tmp_path) == 'model = "m1"\n'
    assert stat.S_IMODE(os.stat(tmp_path / "config.toml").st_mode) == 0o600
    # The reference resets the mode at every write (the file may hold credentials); so do we.
    os.chmod(tmp_path / "config.toml", 0o644)
    write(tmp_path, ("model", "m2", "replace"))
    assert stat.S_IMODE(os.stat(tmp_path / "config.toml").st_mode) == 0o600


def test_nothing_to_change_creates_no_file(tmp_path: Path) -> None:
    result = write(tmp_path, ("model", None, "replace"))
    assert not (tmp_path / "config.toml").exists()
    assert result.version == user_version(tmp_path)


def test_a_symlinked_config_is_written_through_the_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "codex.toml"
    real.parent.mkdir()
    real.write_text(ORIGINAL, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").symlink_to(real)
    write(home, ("model", "linked", "replace"))
    assert (home / "config.toml").is_symlink()
    assert tomllib.loads(real.read_text(encoding="utf-8"))["model"] == "linked"


def test_a_value_hidden_by_a_session_flag_is_reported(home: Path) -> None:
    result = write(
        home, ("model_verbosity", "low", "replace"), ("model", "b", "replace"), overrides=[("model", "flag")]
    )
    assert result.overridden is not None
    assert result.overridden["message"] == "Overridden by session flags"
    assert result.overridden["overridingLayer"]["name"] == {"type": "sessionFlags"}
    assert result.overridden["effectiveValue"] == "flag"
    again = write(home, ("model_verbosity", "high", "replace"), overrides=[("model", "flag")])
    assert again.overridden is None


def test_an_unreadable_config_is_a_service_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("model = \n", encoding="utf-8")
    with pytest.raises(ConfigServiceError) as info:
        write(tmp_path, ("model", "x", "replace"))
    assert str(info.value).startswith(f"failed to load configuration: {tmp_path / 'config.toml'}:1:")


# ---- setDefaultModel ----------------------------------------------------------------------------


def test_set_default_model_writes_and_removes_the_two_keys(home: Path) -> None:
    set_default_model(home, "gpt-x", "high", None)
    assert text(home).startswith('# My settings\nmodel = "gpt-x"  # the default\napproval_policy = "never"\n'
                                 'model_reasoning_effort = "high"\n')
    set_default_model(home, None, "low", None)
    table = tomllib.loads(text(home))
    assert "model" not in table and table["model_reasoning_effort"] == "low"
    set_default_model(home, None, None, None)
    assert "model_reasoning_effort" not in tomllib.loads(text(home))


def test_set_default_model_writes_into_the_active_profile(home: Path) -> None:
    set_default_model(home, "gpt-x", "high", "fast")
    table = tomllib.loads(text(home))
    assert table["model"] == "gpt-5"
    assert table["profiles"]["fast"] == {"model": "gpt-x", "model_reasoning_effort": "high"}


def test_set_default_model_reports_a_syntax_error_like_the_toml_crate(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('model = "m"\napproval_policy = \n', encoding="utf-8")
    with pytest.raises(ConfigServiceError) as info:
        set_default_model(tmp_path, "x", None, None)
    message = str(info.value)
    assert message.startswith(
        "failed to persist model selection: TOML parse error at line 2, column 19\n"
        "  |\n2 | approval_policy = \n  |                   ^\n"
    )


# ---- validation as the reference does it for a TOML value ----------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"approval_policy": True},
            "invalid type: unit variant, expected string only\nin `approval_policy`\n",
        ),
        (
            {"approval_policy": {"never": 1, "x": 2}},
            "wanted exactly 1 element, more than 1 element\nin `approval_policy`\n",
        ),
        ({"sandbox_workspace_write": {"writable_roots": ["rel"]}},
         "AbsolutePathBuf deserialized without a base path\nin `sandbox_workspace_write.writable_roots`\n"),
        ({"profiles": {"p": {"features": {"x": 1}}}},
         "invalid type: integer `1`, expected a boolean\nin `profiles.p.features`\n"),
        (
            {"mcp_oauth_callback_port": 70000},
            "invalid value: integer `70000`, expected u16\nin `mcp_oauth_callback_port`\n",
        ),
    ],
)
def test_value_validation_messages(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config_value(table)
    assert info.value.keyed_message() == message


def test_value_validation_accepts_a_variant_table_and_absolute_paths() -> None:
    validate_config_value({"approval_policy": {"never": {}}, "model_instructions_file": "/etc/i.md"})


# ---- requirements.toml --------------------------------------------------------------------------


def requirements(tmp_path: Path, body: str) -> Any:
    path = tmp_path / "requirements.toml"
    path.write_text(body, encoding="utf-8")
    return load_requirements(path)


def test_no_requirements_file_or_nothing_known_in_it_means_none(tmp_path: Path) -> None:
    assert load_requirements(tmp_path / "missing.toml") is None
    assert requirements(tmp_path, "") is None
    assert requirements(tmp_path, "foo = 1\n") is None


def test_requirements_are_read(tmp_path: Path) -> None:
    found = requirements(
        tmp_path,
        'allowed_approval_policies = ["never", "on-request"]\n'
        'allowed_sandbox_modes = ["read-only", "external-sandbox"]\nenforce_residency = "us"\n',
    )
    assert found.allowed_approval_policies == ("never", "on-request")
    assert found.allowed_sandbox_modes == ("read-only", "external-sandbox")
    assert found.enforce_residency == "us"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("allowed_approval_policies = []\n", "field `allowed_approval_policies` cannot be empty"),
        (
            'allowed_sandbox_modes = ["workspace-write"]\n',
            "invalid value for `allowed_sandbox_modes`: `[WorkspaceWrite]` is not in the allowed set "
            "must include 'read-only' to allow any SandboxPolicy (set by {path})",
        ),
        (
            'allowed_approval_policies = ["bogus"]\n',
            "Error parsing requirements file {path}: TOML parse error at line 1, column 30\n  |\n"
            '1 | allowed_approval_policies = ["bogus"]\n  |                              ^^^^^^^\n'
            "unknown variant `bogus`, expected one of `untrusted`, `on-failure`, `on-request`, `never`\n",
        ),
        (
            "[mcp_servers.x]\nfoo = 1\n",
            "Error parsing requirements file {path}: TOML parse error at line 1, column 1\n  |\n"
            "1 | [mcp_servers.x]\n  | ^^^^^^^^^^^^^^^\nmissing field `identity`\n",
        ),
    ],
)
def test_requirement_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        requirements(tmp_path, body)
    assert str(info.value) == message.format(path=tmp_path / "requirements.toml")
