"""The config loader against what the reference (Codex 0.94.0) does with the same config.toml.

Expected messages and values were observed by running the reference app-server with these files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from codex_trio.core.config import (
    DEFAULT_CHATGPT_AUTH_REFRESH_TIMEOUT_MS,
    Config,
    ConfigError,
    TextPosition,
    ThreadOverrides,
    find_codex_home,
    load_config,
    load_config_layers,
    parse_cli_overrides,
)
from codex_trio.core.provider import ModelProviderInfo

APPROVAL_VARIANTS = "expected one of `untrusted`, `on-failure`, `on-request`, `never`"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def codex_home(tmp_path: Path) -> Path:
    path = tmp_path / "codex_home"
    path.mkdir()
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def write_config(codex_home: Path, text: str) -> Path:
    path = codex_home / "config.toml"
    path.write_text(text)
    return path


def load(
    codex_home: Path,
    home: Path,
    cwd: Path,
    *,
    overrides: Sequence[str] = (),
    env: dict[str, str] | None = None,
    profile: str | None = None,
    typed: ThreadOverrides | None = None,
) -> Config:
    full_env = {"HOME": str(home)}
    full_env.update(env or {})
    return load_config(
        codex_home,
        cli_overrides=parse_cli_overrides(overrides),
        profile=profile,
        cwd=cwd,
        env=full_env,
        overrides=typed,
        system_config_path=None,
    )


# -- CODEX_HOME ---------------------------------------------------------------------------------


def test_codex_home_from_env_is_canonical(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert find_codex_home({"CODEX_HOME": str(link), "HOME": "/nowhere"}) == real


def test_codex_home_missing_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(ConfigError) as info:
        find_codex_home({"CODEX_HOME": str(missing)})
    assert str(info.value) == f'CODEX_HOME points to "{missing}", but that path does not exist'


def test_codex_home_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("")
    with pytest.raises(ConfigError) as info:
        find_codex_home({"CODEX_HOME": str(a_file)})
    assert str(info.value) == f'CODEX_HOME points to "{a_file}", but that path is not a directory'


def test_codex_home_defaults_to_dot_codex_even_when_empty(home: Path) -> None:
    assert find_codex_home({"HOME": str(home)}) == home / ".codex"
    assert find_codex_home({"HOME": str(home), "CODEX_HOME": ""}) == home / ".codex"


def test_codex_home_without_home_is_an_error() -> None:
    with pytest.raises(ConfigError, match="Could not find home directory"):
        find_codex_home({})


# -- -c overrides --------------------------------------------------------------------------------


def test_cli_overrides_parse_toml_values_else_raw_strings() -> None:
    assert parse_cli_overrides(
        [
            "model=o3",
            "model_context_window = 1000",
            'model="quoted"',
            "sandbox_workspace_write.writable_roots=['/a', '/b']",
            "shell_environment_policy={inherit = 'all'}",
            "features.x=true",
            "chatgpt_base_url=http://h/?a=b",
        ]
    ) == [
        ("model", "o3"),
        ("model_context_window", 1000),
        ("model", "quoted"),
        ("sandbox_workspace_write.writable_roots", ["/a", "/b"]),
        ("shell_environment_policy", {"inherit": "all"}),
        ("features.x", True),
        ("chatgpt_base_url", "http://h/?a=b"),
    ]


def test_cli_override_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_cli_overrides(["noequals"])
    assert str(info.value) == "Invalid override (missing '='): noequals"
    with pytest.raises(ConfigError, match="Empty key in override: =x"):
        parse_cli_overrides(["=x"])


# -- defaults ------------------------------------------------------------------------------------


def test_defaults_without_config_file(codex_home: Path, home: Path, workdir: Path) -> None:
    config = load(codex_home, home, workdir)
    assert config.codex_home == codex_home
    assert config.cwd == workdir
    assert config.model == "gpt-5.2-codex"
    assert config.model_provider_id == "openai"
    assert config.model_provider == ModelProviderInfo(
        id="openai",
        name="OpenAI",
        base_url=None,  # chosen per request from the login
        wire_api="responses",
        requires_openai_auth=True,
        http_headers={"version": "0.94.0"},
        env_http_headers={
            "OpenAI-Organization": "OPENAI_ORGANIZATION",
            "OpenAI-Project": "OPENAI_PROJECT",
        },
    )
    assert set(config.model_providers) == {"openai", "ollama", "ollama-chat", "lmstudio"}
    assert config.approval_policy == "on-request"
    assert config.sandbox_mode == "read-only"
    assert config.sandbox_workspace_write.writable_roots == ()
    assert not config.sandbox_workspace_write.network_access
    assert config.model_reasoning_effort is None
    assert config.model_reasoning_summary == "auto"
    assert config.model_verbosity is None
    assert config.base_instructions is None
    assert config.developer_instructions is None
    assert config.chatgpt_base_url == "https://chatgpt.com/backend-api/"
    assert config.forced_login_method is None
    assert config.forced_chatgpt_workspace_id is None
    assert config.cli_auth_credentials_store == "file"
    assert config.features == {}
    assert config.web_search is None
    assert config.chatgpt_auth_refresh_timeout_ms == DEFAULT_CHATGPT_AUTH_REFRESH_TIMEOUT_MS == 10000
    assert config.active_profile is None
    assert config.raw == {}
    assert [layer.kind for layer in config.layers] == ["user"]
    assert config.user_layer.file == codex_home / "config.toml"


def test_builtin_oss_providers(codex_home: Path, home: Path, workdir: Path) -> None:
    providers = load(codex_home, home, workdir).model_providers
    assert providers["ollama"] == ModelProviderInfo(
        id="ollama", name="gpt-oss", base_url="http://localhost:11434/v1", wire_api="responses"
    )
    assert providers["ollama-chat"].wire_api == "chat"
    assert providers["ollama-chat"].base_url == "http://localhost:11434/v1"
    assert providers["lmstudio"].base_url == "http://localhost:1234/v1"
    assert not providers["lmstudio"].requires_openai_auth
    moved = load(codex_home, home, workdir, env={"CODEX_OSS_PORT": "9999"}).model_providers
    assert moved["lmstudio"].base_url == "http://localhost:9999/v1"


def test_openai_base_url_from_env(codex_home: Path, home: Path, workdir: Path) -> None:
    config = load(codex_home, home, workdir, env={"OPENAI_BASE_URL": "http://127.0.0.1:5/v1"})
    assert config.model_provider.base_url == "http://127.0.0.1:5/v1"
    blank = load(codex_home, home, workdir, env={"OPENAI_BASE_URL": "  "})
    # A blank OPENAI_BASE_URL is no base URL: the login decides per request.
    assert blank.model_provider.base_url is None
    assert blank.model_provider.api_base_url(chatgpt_auth=False) == "https://api.openai.com/v1"
    assert blank.model_provider.api_base_url(chatgpt_auth=True) == "https://chatgpt.com/backend-api/codex"


# -- values from config.toml ---------------------------------------------------------------------


def test_values_from_the_file(codex_home: Path, home: Path, workdir: Path) -> None:
    write_config(
        codex_home,
        """
model = "o3"
approval_policy = "never"
sandbox_mode = "workspace-write"
model_reasoning_effort = "xhigh"
model_reasoning_summary = "detailed"
model_verbosity = "low"
developer_instructions = "be brief"
chatgpt_base_url = "http://127.0.0.1:1/backend-api/"
forced_login_method = "api"
forced_chatgpt_workspace_id = "  org-1  "
cli_auth_credentials_store = "keyring"
web_search = "live"
chatgpt_auth_refresh_timeout_ms = 2500
some_future_key = { whatever = 1 }

[sandbox_workspace_write]
writable_roots = ["/abs", "rel/dir", "~/in-home"]
network_access = true
exclude_tmpdir_env_var = true
exclude_slash_tmp = true
unknown_key = 1

[features]
apply_patch_freeform = true
unknown_feature = false

[tools]
web_search = true
view_image = false

[shell_environment_policy]
inherit = "core"
set = { FOO = "bar" }
""",
    )
    config = load(codex_home, home, workdir)
    assert config.model == "o3"
    assert config.approval_policy == "never"
    assert config.sandbox_mode == "workspace-write"
    assert config.sandbox_workspace_write.writable_roots == (
        Path("/abs"),
        codex_home / "rel/dir",
        home / "in-home",
    )
    assert config.sandbox_workspace_write.network_access
    assert config.sandbox_workspace_write.exclude_tmpdir_env_var
    assert config.sandbox_workspace_write.exclude_slash_tmp
    assert config.model_reasoning_effort == "xhigh"
    assert config.model_reasoning_summary == "detailed"
    assert config.model_verbosity == "low"
    assert config.developer_instructions == "be brief"
    assert config.chatgpt_base_url == "http://127.0.0.1:1/backend-api/"
    assert config.forced_login_method == "api"
    assert config.forced_chatgpt_workspace_id == "org-1"
    assert config.cli_auth_credentials_store == "keyring"
    assert config.web_search == "live"
    assert config.chatgpt_auth_refresh_timeout_ms == 2500
    assert config.features == {"apply_patch_freeform": True, "unknown_feature": False}
    assert config.tools.web_search is True
    assert config.tools.view_image is False
    assert config.shell_environment_policy == {"inherit": "core", "set": {"FOO": "bar"}}
    assert config.raw["some_future_key"] == {"whatever": 1}
    assert config.user_layer.config["model"] == "o3"


def test_user_defined_provider_with_every_key(codex_home: Path, home: Path, workdir: Path) -> None:
    write_config(
        codex_home,
        """
model_provider = "mock"

[model_providers.mock]
name = "Mock"
base_url = "http://127.0.0.1:8080/v1"
wire_api = "responses"
env_key = "MOCK_API_KEY"
requires_openai_auth = true
request_max_retries = 0
stream_max_retries = 250
stream_idle_timeout_ms = 1234
http_headers = { "X-Static" = "1" }
env_http_headers = { "X-From-Env" = "MOCK_HEADER" }
query_params = { api-version = "2025-04-01" }

[model_providers.bare]
name = "Bare"

[model_providers.openai]
name = "Mine"
base_url = "http://127.0.0.1:9/ignored"
""",
    )
    config = load(codex_home, home, workdir)
    assert config.model_provider_id == "mock"
    assert config.model_provider == ModelProviderInfo(
        id="mock",
        name="Mock",
        base_url="http://127.0.0.1:8080/v1",
        wire_api="responses",
        env_key="MOCK_API_KEY",
        requires_openai_auth=True,
        request_max_retries=0,
        stream_max_retries=100,  # clamped like the reference
        stream_idle_timeout_ms=1234,
        http_headers={"X-Static": "1"},
        env_http_headers={"X-From-Env": "MOCK_HEADER"},
        query_params={"api-version": "2025-04-01"},
    )
    bare = config.model_providers["bare"]
    assert bare.wire_api == "chat"  # 0.94.0 still defaults to the chat wire API
    assert (bare.request_max_retries, bare.stream_max_retries) == (4, 5)
    assert bare.stream_idle_timeout_ms == 300_000
    # The reference keeps its built-in when a user entry reuses the id.
    assert config.model_providers["openai"].name == "OpenAI"


# -- profiles ------------------------------------------------------------------------------------

PROFILES = """
model = "top"
model_reasoning_effort = "low"
profile = "fast"

[profiles.fast]
model = "fast-model"
approval_policy = "never"
model_reasoning_effort = "minimal"
features = { from_profile = true }

[profiles.deep]
model = "deep-model"
sandbox_mode = "danger-full-access"

[features]
from_top = true
from_profile = false
"""


def test_profile_selected_in_the_file(codex_home: Path, home: Path, workdir: Path) -> None:
    write_config(codex_home, PROFILES)
    config = load(codex_home, home, workdir)
    assert config.active_profile == "fast"
    assert config.model == "fast-model"
    assert config.approval_policy == "never"
    assert config.model_reasoning_effort == "minimal"
    assert config.features == {"from_top": True, "from_profile": True}


def test_profile_argument_beats_the_file(codex_home: Path, home: Path, workdir: Path) -> None:
    write_config(codex_home, PROFILES)
    config = load(codex_home, home, workdir, profile="deep")
    assert config.active_profile == "deep"
    assert config.model == "deep-model"
    assert config.sandbox_mode == "danger-full-access"
    assert config.model_reasoning_effort == "low"  # not in the profile: top level


def test_profile_beats_cli_override_of_the_same_key(
    codex_home: Path, home: Path, workdir: Path
) -> None:
    write_config(codex_home, PROFILES)
    config = load(codex_home, home, workdir, overrides=["model=cli-model", "profiles.fast.model=x"])
    assert config.model == "x"


def test_missing_profile_is_an_error(codex_home: Path, home: Path, workdir: Path) -> None:
    write_config(codex_home, 'profile = "missing"\n')
    with pytest.raises(ConfigError) as info:
        load(codex_home, home, workdir)
    assert str(info.value) == "config profile `missing` not found"


# -- -c overrides applied ------------------------------------------------------------------------


def test_cli_overrides_beat_the_file(codex_home: Path, home: Path, workdir: Path) -> None:
    write_config(
        codex_home,
        'approval_policy = "bogus"\n[model_providers.mock]\nname = "m"\nbase_url = "http://a/v1"\n',
    )
    config = load(
        codex_home,
        home,
        workdir,
        overrides=[
            "approval_policy=never",
            "model_provider=mock",
            "model_providers.mock.base_url=http://127.0.0.1:7/v1",
            "model_providers.mock.wire_api=responses",
            "model_context_window=1000",
        ],
    )
    # The bad file value is shadowed, so it is never looked at.
    assert config.approval_policy == "never"
    assert config.model_provider.base_url == "http://127.0.0.1:7/v1"
    assert config.model_provider.wire_api == "responses"
    assert config.model_provider.name == "m"
    assert config.raw["model_context_window"] == 1000
    session = config.layers[-1]
    assert session.kind == "sessionFlags"
    assert session.name_json() == {"type": "sessionFlags"}


def test_layer_versions_match_the_reference(codex_home: Path, home: Path, workdir: Path) -> None:
    config = load(codex_home, home, workdir, overrides=["model_reasoning_effort=high"])
    # Both hashes as the reference's config/read reported them.
    assert config.user_layer.version == (
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert config.layers[-1].version == (
        "sha256:9f62d11aab3f8b5b21f3d072462d90fca216aa763e6e6e37800257691da7f867"
    )
    assert [layer.kind for layer in config.layers_high_to_low()] == ["sessionFlags", "user"]


def test_system_layer_sits_below_the_user_layer(
    tmp_path: Path, codex_home: Path, home: Path, workdir: Path
) -> None:
    system = tmp_path / "system.toml"
    system.write_text('model = "system-model"\nmodel_verbosity = "high"\n')
    write_config(codex_home, 'model = "user-model"\n')
    config = load_config(
        codex_home, cwd=workdir, env={"HOME": str(home)}, system_config_path=system
    )
    assert config.model == "user-model"
    assert config.model_verbosity == "high"
    assert config.layers[0].name_json() == {"type": "system", "file": str(system)}


# -- errors --------------------------------------------------------------------------------------


def test_broken_toml_names_file_line_and_column(
    codex_home: Path, home: Path, workdir: Path
) -> None:
    path = write_config(codex_home, 'model = "ok"\n[model_providers.x]\nname = \n')
    with pytest.raises(ConfigError) as info:
        load(codex_home, home, workdir)
    assert str(info.value) == f"{path}:3:8: string values must be quoted, expected literal string"
    assert info.value.file == path
    assert info.value.range is not None
    assert info.value.range.start == TextPosition(line=3, column=8)


def test_unknown_enum_value_in_the_file(codex_home: Path, home: Path, workdir: Path) -> None:
    path = write_config(codex_home, 'model = "x"\napproval_policy = "bogus"\n')
    with pytest.raises(ConfigError) as info:
        load(codex_home, home, workdir)
    err = info.value
    assert str(err) == f"{path}:2:19: unknown variant `bogus`, {APPROVAL_VARIANTS}"
    assert err.key == "approval_policy"
    assert err.range is not None
    assert (err.range.end.line, err.range.end.column) == (2, 25)
    assert err.keyed_message() == (
        f"unknown variant `bogus`, {APPROVAL_VARIANTS}\nin `approval_policy`\n"
    )


def test_unknown_enum_value_in_an_unselected_profile(
    codex_home: Path, home: Path, workdir: Path
) -> None:
    path = write_config(codex_home, '[profiles.p]\nsandbox_mode = "bogus"\n')
    with pytest.raises(ConfigError) as info:
        load(codex_home, home, workdir)
    assert str(info.value) == (
        f"{path}:2:16: unknown variant `bogus`, expected one of `read-only`, "
        "`workspace-write`, `danger-full-access`"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model = 5\n", "1:9: invalid type: integer `5`, expected a string"),
        ("model = [1]\n", "1:9: invalid type: sequence, expected a string"),
        ('model_context_window = "x"\n', '1:24: invalid type: string "x", expected i64'),
        ("approval_policy = 5\n", "1:19: wanted string or table"),
        ('notify = ["a", 2]\n', "1:16: invalid type: integer `2`, expected a string"),
        ('[features]\nfoo = "x"\n', '2:7: invalid type: string "x", expected a boolean'),
        ("mcp_oauth_callback_port = 70000\n", "1:27: invalid value: integer `70000`, expected u16"),
        ("features = 1\n", "1:12: invalid type: integer `1`, expected struct FeaturesToml"),
        (
            '[model_providers.x]\nname = "x"\nhttp_headers = { a = 1 }\n',
            "3:22: invalid type: integer `1`, expected a string",
        ),
        (
            '[model_providers.x]\nname = "x"\nwire_api = "bogus"\n',
            "3:12: unknown variant `bogus`, expected `responses` or `chat`",
        ),
        ('[model_providers.x]\nbase_url = "http://a"\n', "1:1: missing field `name`"),
    ],
)
def test_wrong_values_read_like_the_reference(
    codex_home: Path, home: Path, workdir: Path, text: str, expected: str
) -> None:
    path = write_config(codex_home, text)
    with pytest.raises(ConfigError) as info:
        load(codex_home, home, workdir)
    assert str(info.value) == f"{path}:{expected}"


def test_wrong_value_from_an_override_names_the_key(
    codex_home: Path, home: Path, workdir: Path
) -> None:
    with pytest.raises(ConfigError) as info:
        load(codex_home, home, workdir, overrides=["model_providers.mock.base_url=5"])
    assert str(info.value) == (
        "invalid type: integer `5`, expected a string\nin `model_providers.mock.base_url`\n"
    )
    assert info.value.file is None


def test_unknown_model_provider(codex_home: Path, home: Path, workdir: Path) -> None:
    write_config(codex_home, 'model_provider = "nope"\n')
    with pytest.raises(ConfigError) as info:
        load(codex_home, home, workdir)
    assert str(info.value) == "Model provider `nope` not found"
    # 0.94.0 has no built-in `oss` provider.
    with pytest.raises(ConfigError, match="Model provider `oss` not found"):
        load(codex_home, home, workdir, overrides=["model_provider=oss"])


# -- instructions --------------------------------------------------------------------------------


def test_model_instructions_file_relative_to_the_config(
    codex_home: Path, home: Path, workdir: Path
) -> None:
    (codex_home / "instr.md").write_text("  from the file  \n")
    write_config(codex_home, 'model_instructions_file = "instr.md"\n')
    assert load(codex_home, home, workdir).base_instructions == "from the file"
    typed = ThreadOverrides(base_instructions="typed")
    assert load(codex_home, home, workdir, typed=typed).base_instructions == "typed"


def test_model_instructions_file_errors(codex_home: Path, home: Path, workdir: Path) -> None:
    write_config(codex_home, 'model_instructions_file = "missing.md"\n')
    with pytest.raises(ConfigError) as info:
        load(codex_home, home, workdir)
    assert str(info.value) == (
        f"failed to read model instructions file {codex_home / 'missing.md'}: "
        "No such file or directory (os error 2)"
    )
    (codex_home / "empty.md").write_text("\n \n")
    write_config(codex_home, 'model_instructions_file = "empty.md"\n')
    with pytest.raises(ConfigError) as info:
        load(codex_home, home, workdir)
    assert str(info.value) == f"model instructions file is empty: {codex_home / 'empty.md'}"


def test_experimental_instructions_file_is_ignored_but_flagged(
    codex_home: Path, home: Path, workdir: Path
) -> None:
    (codex_home / "old.md").write_text("old")
    write_config(codex_home, 'experimental_instructions_file = "old.md"\n')
    config = load(codex_home, home, workdir)
    assert config.base_instructions is None
    assert config.uses_deprecated_instructions_file
    write_config(codex_home, 'model_instructions_file = "old.md"\n')
    config = load(codex_home, home, workdir)
    assert config.base_instructions == "old"
    assert not config.uses_deprecated_instructions_file


# -- project trust -------------------------------------------------------------------------------


def test_trusted_project_layer_and_defaults(codex_home: Path, home: Path, workdir: Path) -> None:
    (workdir / ".codex").mkdir()
    (workdir / ".codex" / "config.toml").write_text('model = "project-model"\n')
    write_config(codex_home, f'[projects."{workdir}"]\ntrust_level = "trusted"\n')
    config = load(codex_home, home, workdir)
    assert config.project_trust_level == "trusted"
    assert config.model == "project-model"
    assert config.approval_policy == "on-request"
    assert config.sandbox_mode == "workspace-write"
    project = next(layer for layer in config.layers if layer.kind == "project")
    assert project.enabled
    assert project.name_json() == {"type": "project", "dotCodexFolder": str(workdir / ".codex")}


def test_untrusted_and_unknown_projects(codex_home: Path, home: Path, workdir: Path) -> None:
    (workdir / ".codex").mkdir()
    (workdir / ".codex" / "config.toml").write_text('model = "project-model"\n')
    user_file = codex_home / "config.toml"

    write_config(codex_home, "")
    unknown = load(codex_home, home, workdir)
    assert (unknown.model, unknown.approval_policy, unknown.sandbox_mode) == (
        "gpt-5.2-codex",
        "on-request",
        "read-only",
    )
    layer = next(layer for layer in unknown.layers if layer.kind == "project")
    assert layer.disabled_reason == (
        f"To load config.toml, add {workdir} as a trusted project in {user_file}."
    )
    assert layer.config == {"model": "project-model"}

    write_config(codex_home, f'[projects."{workdir}"]\ntrust_level = "untrusted"\n')
    untrusted = load(codex_home, home, workdir)
    assert (untrusted.model, untrusted.approval_policy, untrusted.sandbox_mode) == (
        "gpt-5.2-codex",
        "untrusted",
        "workspace-write",
    )
    layer = next(layer for layer in untrusted.layers if layer.kind == "project")
    assert layer.disabled_reason == (
        f"{workdir} is marked as untrusted in {user_file}. To load config.toml, mark it trusted."
    )


def test_trust_of_the_git_root_applies_to_subdirectories(
    codex_home: Path, home: Path, workdir: Path
) -> None:
    (workdir / ".git").mkdir()
    sub = workdir / "pkg" / "mod"
    sub.mkdir(parents=True)
    write_config(codex_home, f'[projects."{workdir.resolve()}"]\ntrust_level = "trusted"\n')
    assert load(codex_home, home, sub).sandbox_mode == "workspace-write"


def test_layers_without_cwd_have_no_project_layers(
    codex_home: Path, home: Path, workdir: Path
) -> None:
    (workdir / ".codex").mkdir()
    layers = load_config_layers(codex_home, env={"HOME": str(home)}, system_config_path=None)
    assert [layer.kind for layer in layers] == ["user"]


# -- derive --------------------------------------------------------------------------------------


def test_derive_with_dotted_keys_and_typed_fields(
    codex_home: Path, home: Path, workdir: Path, tmp_path: Path
) -> None:
    write_config(
        codex_home,
        PROFILES + '\n[model_providers.mock]\nname = "m"\nbase_url = "http://127.0.0.1:1/v1"\n',
    )
    base = load(codex_home, home, workdir)
    derived = base.derive(
        {
            "model": "ignored-by-profile",
            "model_provider": "mock",
            "model_providers.mock.base_url": "http://127.0.0.1:2/v1",
            "sandbox_workspace_write": {"network_access": True},
            "model_verbosity": "high",
        }
    )
    assert derived.model == "fast-model"  # the profile beats the dotted `model`, as in 0.94.0
    assert derived.model_provider.base_url == "http://127.0.0.1:2/v1"
    assert derived.sandbox_workspace_write.network_access
    assert derived.model_verbosity == "high"
    assert base.model_provider_id == "openai"  # the original is untouched

    other = tmp_path / "other"
    other.mkdir()
    typed = derived.derive(
        model="typed-model",
        approval_policy="untrusted",
        sandbox_mode="danger-full-access",
        developer_instructions="dev",
        base_instructions="base",
        cwd=other,
    )
    assert typed.model == "typed-model"
    assert typed.approval_policy == "untrusted"
    assert typed.sandbox_mode == "danger-full-access"
    assert typed.developer_instructions == "dev"
    assert typed.base_instructions == "base"
    assert typed.cwd == other
    assert typed.model_provider.base_url == "http://127.0.0.1:2/v1"  # earlier overrides stay


def test_derive_errors(codex_home: Path, home: Path, workdir: Path) -> None:
    base = load(codex_home, home, workdir)
    with pytest.raises(ConfigError) as info:
        base.derive({"approval_policy": "bogus"})
    assert str(info.value) == f"unknown variant `bogus`, {APPROVAL_VARIANTS}\nin `approval_policy`\n"
    with pytest.raises(ConfigError, match="Model provider `nope` not found"):
        base.derive(model_provider="nope")
    with pytest.raises(ConfigError, match="config profile `nope` not found"):
        base.derive({"profile": "nope"})
    with pytest.raises(ConfigError, match="in `sandbox_mode`"):
        base.derive(sandbox_mode="bogus")
