"""The config API end to end: codex-trio as a stdio subprocess, every message checked against the
protocol schema. Results, error codes, texts and ``data`` are those the reference (Codex CLI 0.94.0)
gave for the same requests and files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from e2e_util import Agent, write_config
from schema_check import ProtocolValidator

from codex_trio.testing.harness import open_server

DEAD_BASE_URL = "http://127.0.0.1:9/v1"  # nothing here talks to the model
TYPED_FIELDS = [
    "model", "review_model", "model_context_window", "model_auto_compact_token_limit", "model_provider",
    "approval_policy", "sandbox_mode", "sandbox_workspace_write", "forced_chatgpt_workspace_id",
    "forced_login_method", "web_search", "tools", "profile", "profiles", "instructions",
    "developer_instructions", "compact_prompt", "model_reasoning_effort", "model_reasoning_summary",
    "model_verbosity", "analytics",
]
EMPTY_LAYER_VERSION = "sha256:" + hashlib.sha256(b"{}").hexdigest()
SETTINGS = """\
# settings written by hand
approval_policy = "never"  # no prompts

[tools]
view_image = false

[profiles.fast]
model = "fast-model"
model_reasoning_effort = "low"

[sandbox_workspace_write]
writable_roots = ["/tmp/x"]
network_access = true
"""


@asynccontextmanager
async def server(
    tmp_path: Path, settings: str = SETTINGS, args: Sequence[str] = ()
) -> AsyncIterator[tuple[Agent, Path]]:
    """The server with ``settings`` added to a config.toml for the mock provider (between its
    top-level keys and its provider table); yields it and the config file."""
    codex_home = tmp_path / "codex_home"
    write_config(codex_home, DEAD_BASE_URL)
    path = codex_home / "config.toml"
    head, provider = path.read_text(encoding="utf-8").split("[model_providers.", 1)
    path.write_text(f"{head}{settings}\n[model_providers.{provider}", encoding="utf-8")
    async with open_server(
        args,
        codex_home=codex_home,
        base_url=DEAD_BASE_URL,
        validator=ProtocolValidator(),
        env={"TZ": "UTC"},
    ) as srv:
        await srv.initialize(name="harness")
        yield Agent(srv, srv.root / "work"), path


def write_params(key: str, value: Any, strategy: str = "replace", **extra: Any) -> dict[str, Any]:
    return {"keyPath": key, "value": value, "mergeStrategy": strategy, **extra}


async def user_layer(agent: Agent) -> dict[str, Any]:
    result = await agent.result("config/read", {"includeLayers": True})
    layer: dict[str, Any] = next(x for x in result["layers"] if x["name"]["type"] == "user")
    return layer


async def test_config_read_shows_the_merged_config_its_origins_and_layers(tmp_path: Path) -> None:
    async with server(tmp_path, args=["-c", 'model_reasoning_summary="concise"', "-c", "foo.bar=3"]) as (
        agent,
        path,
    ):
        result = await agent.result("config/read", {"includeLayers": True})
        config = result["config"]
        assert list(config)[: len(TYPED_FIELDS)] == TYPED_FIELDS
        assert config["model"] == "mock-model"
        assert config["approval_policy"] == "never"
        assert config["model_reasoning_summary"] == "concise"
        assert config["review_model"] is None
        assert config["sandbox_workspace_write"] == {
            "writable_roots": ["/tmp/x"],
            "network_access": True,
            "exclude_tmpdir_env_var": False,
            "exclude_slash_tmp": False,
        }
        assert config["tools"] == {"web_search": None, "view_image": False}
        assert config["profiles"] == {
            "fast": {
                "model": "fast-model",
                "model_provider": None,
                "approval_policy": None,
                "model_reasoning_effort": "low",
                "model_reasoning_summary": None,
                "model_verbosity": None,
                "web_search": None,
                "chatgpt_base_url": None,
            }
        }
        assert config["foo"] == {"bar": 3}
        assert config["model_providers"]["mock_provider"]["name"] == "Mock"

        user = {"type": "user", "file": str(path)}
        assert [layer["name"] for layer in result["layers"]] == [
            {"type": "sessionFlags"},
            user,
            {"type": "system", "file": "/etc/codex/config.toml"},
        ]
        session, user_entry, system = result["layers"]
        assert session["config"] == {"model_reasoning_summary": "concise", "foo": {"bar": 3}}
        assert system == {"name": system["name"], "version": EMPTY_LAYER_VERSION, "config": {}}
        assert "disabledReason" not in user_entry
        compact = json.dumps(user_entry["config"], sort_keys=True, separators=(",", ":"))
        assert user_entry["version"] == "sha256:" + hashlib.sha256(compact.encode()).hexdigest()

        origins = result["origins"]
        assert origins["model"] == {"name": user, "version": user_entry["version"]}
        assert origins["sandbox_workspace_write.writable_roots.0"]["name"] == user
        assert origins["foo.bar"] == {"name": {"type": "sessionFlags"}, "version": session["version"]}
        assert origins["model_reasoning_summary"]["name"] == {"type": "sessionFlags"}
        assert "tools" not in origins and "tools.view_image" in origins

        without = await agent.result("config/read", {"includeLayers": False})
        assert "layers" not in without and without["config"] == config
        assert await agent.result("config/read", {}) == without


async def test_config_read_from_a_directory_adds_its_project_layers(tmp_path: Path) -> None:
    trusted, untrusted = tmp_path / "trusted", tmp_path / "other"
    for project in (trusted, untrusted):
        (project / ".git").mkdir(parents=True)
        (project / ".codex").mkdir()
        (project / ".codex" / "config.toml").write_text('model = "project-model"\n', encoding="utf-8")
    settings = f'[projects."{trusted}"]\ntrust_level = "trusted"\n'
    async with server(tmp_path, settings) as (agent, path):
        result = await agent.result("config/read", {"includeLayers": True, "cwd": str(trusted)})
        project = {"type": "project", "dotCodexFolder": str(trusted / ".codex")}
        assert result["config"]["model"] == "project-model"
        assert result["origins"]["model"]["name"] == project
        assert [layer["name"]["type"] for layer in result["layers"]] == ["project", "user", "system"]

        result = await agent.result("config/read", {"includeLayers": True, "cwd": str(untrusted)})
        assert result["config"]["model"] == "mock-model"
        assert result["origins"]["model"]["name"] == {"type": "user", "file": str(path)}
        assert result["layers"][0]["config"] == {"model": "project-model"}
        assert result["layers"][0]["disabledReason"] == (
            f"To load config.toml, add {untrusted} as a trusted project in {path}."
        )


async def test_an_invalid_config_is_reported_and_can_be_repaired(tmp_path: Path) -> None:
    async with server(tmp_path, 'approval_policy = "bogus"\n') as (agent, path):
        problem = (
            "unknown variant `bogus`, expected one of `untrusted`, `on-failure`, `on-request`, `never`"
        )
        error = await agent.error("config/read", {"includeLayers": False})
        keyed = f"{problem}\nin `approval_policy`\n"
        assert error == {"code": -32603, "message": f"invalid configuration: {keyed}"}
        error = await agent.error("config/read", {"includeLayers": False, "cwd": str(tmp_path)})
        line = path.read_text(encoding="utf-8").splitlines().index('approval_policy = "bogus"') + 1
        assert error == {
            "code": -32603,
            "message": f"failed to read configuration layers: {path}:{line}:19: {problem}",
        }
        error = await agent.error("getUserSavedConfig")
        assert error == {"code": -32603, "message": f"failed to parse config.toml: {keyed}"}
        error = await agent.error("config/value/write", write_params("model", "other"))
        assert error == {
            "code": -32600,
            "message": f"Invalid configuration: {problem}\nin `approval_policy`\n",
            "data": {"config_write_error_code": "configValidationError"},
        }
        repaired = await agent.result("config/value/write", write_params("approval_policy", "never"))
        assert repaired["status"] == "ok"
        assert (await agent.result("config/read", {}))["config"]["approval_policy"] == "never"


async def test_a_write_keeps_the_file_as_written_and_new_threads_use_it(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, path):
        before = path.read_text(encoding="utf-8")
        version = (await user_layer(agent))["version"]
        result = await agent.result(
            "config/value/write", write_params("model", "written-model", expectedVersion=version)
        )
        assert result == {
            "status": "ok",
            "version": (await user_layer(agent))["version"],
            "filePath": str(path),
            "overriddenMetadata": None,
        }
        assert result["version"] != version
        assert path.read_text(encoding="utf-8") == before.replace('"mock-model"', '"written-model"', 1)

        stale = await agent.error("config/value/write", write_params("model", "x", expectedVersion=version))
        assert stale == {
            "code": -32600,
            "message": "Configuration was modified since last read. Fetch latest version and retry.",
            "data": {"config_write_error_code": "configVersionConflict"},
        }

        await agent.result("config/value/write", write_params("tools.web_search", True, "upsert"))
        assert path.read_text(encoding="utf-8") == before.replace(
            '"mock-model"', '"written-model"', 1
        ).replace("view_image = false\n", "view_image = false\nweb_search = true\n")

        thread = await agent.start_thread()
        assert thread["model"] == "written-model"


async def test_a_refused_write_leaves_the_file_byte_for_byte(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, path):
        before = path.read_bytes()
        error = await agent.error(
            "config/batchWrite",
            {
                "edits": [
                    write_params("model", "fine"),
                    write_params("profiles.fast.model_verbosity", 3),
                ]
            },
        )
        assert error == {
            "code": -32600,
            "message": "Invalid configuration: invalid type: unit variant, expected string only\n"
            "in `profiles.fast.model_verbosity`\n",
            "data": {"config_write_error_code": "configValidationError"},
        }
        for params, code, message in [
            (write_params("", 1), "configValidationError", "keyPath must not be empty"),
            (write_params("nope.deeper", None), "configPathNotFound", "Path not found"),
            (write_params("model.sub", "v"), "configValidationError", "cannot set value on non-table parent"),
            (
                write_params("model", "x", filePath=str(tmp_path / "other.toml")),
                "configLayerReadonly",
                "Only writes to the user config are allowed",
            ),
        ]:
            error = await agent.error("config/value/write", params)
            assert error == {"code": -32600, "message": message, "data": {"config_write_error_code": code}}
        error = await agent.error("config/value/write", {"keyPath": "model", "mergeStrategy": "replace"})
        assert error == {"code": -32600, "message": "Invalid request: missing field `value`"}
        assert path.read_bytes() == before
        assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml"]


async def test_a_batch_applies_every_edit_in_one_write(tmp_path: Path) -> None:
    async with server(tmp_path) as (agent, path):
        result = await agent.result(
            "config/batchWrite",
            {
                "edits": [
                    write_params("profiles.fast", {"model_verbosity": "high"}, "upsert"),
                    write_params("profiles.slow", {"model": "slow-model"}),
                    write_params("approval_policy", None),
                ],
                "expectedVersion": (await user_layer(agent))["version"],
            },
        )
        assert result["status"] == "ok"
        config = (await agent.result("config/read", {}))["config"]
        assert config["approval_policy"] is None
        assert config["profiles"]["fast"]["model"] == "fast-model"
        assert config["profiles"]["fast"]["model_verbosity"] == "high"
        assert config["profiles"]["slow"]["model"] == "slow-model"
        text = path.read_text(encoding="utf-8")
        assert "approval_policy" not in text and "# settings written by hand\n" in text


async def test_a_value_hidden_by_a_session_flag_is_written_and_reported(tmp_path: Path) -> None:
    async with server(tmp_path, args=["-c", 'model="flag-model"']) as (agent, path):
        result = await agent.result("config/value/write", write_params("model", "file-model"))
        session = (await agent.result("config/read", {"includeLayers": True}))["layers"][0]
        assert result["status"] == "okOverridden"
        assert result["overriddenMetadata"] == {
            "message": "Overridden by session flags",
            "overridingLayer": {"name": {"type": "sessionFlags"}, "version": session["version"]},
            "effectiveValue": "flag-model",
        }
        assert 'model = "file-model"' in path.read_text(encoding="utf-8")


async def test_requirements_and_the_saved_config(tmp_path: Path) -> None:
    async with server(tmp_path, args=["-c", 'model_reasoning_summary="concise"']) as (agent, _):
        assert await agent.result("configRequirements/read") == {"requirements": None}
        saved = await agent.result("getUserSavedConfig")
        assert saved == {
            "config": {
                "approvalPolicy": "never",
                "sandboxMode": None,
                "sandboxSettings": {
                    "writableRoots": ["/tmp/x"],
                    "networkAccess": True,
                    "excludeTmpdirEnvVar": False,
                    "excludeSlashTmp": False,
                },
                "forcedChatgptWorkspaceId": None,
                "forcedLoginMethod": None,
                "model": "mock-model",
                "modelReasoningEffort": None,
                # The -c override is not part of what is saved.
                "modelReasoningSummary": None,
                "modelVerbosity": None,
                "tools": {"webSearch": None, "viewImage": False},
                "profile": None,
                "profiles": {
                    "fast": {
                        "model": "fast-model",
                        "modelProvider": None,
                        "approvalPolicy": None,
                        "modelReasoningEffort": "low",
                        "modelReasoningSummary": None,
                        "modelVerbosity": None,
                        "chatgptBaseUrl": None,
                    }
                },
            }
        }


async def test_set_default_model_is_saved_and_used_by_new_threads(tmp_path: Path) -> None:
    async with server(tmp_path, 'model_reasoning_effort = "low"  # effort\n') as (agent, path):
        chosen = {"model": "chosen-model", "reasoningEffort": "high"}
        assert await agent.result("setDefaultModel", chosen) == {}
        text = path.read_text(encoding="utf-8")
        assert 'model = "chosen-model"\n' in text
        assert 'model_reasoning_effort = "high"  # effort\n' in text
        thread = await agent.start_thread()
        assert (thread["model"], thread["reasoningEffort"]) == ("chosen-model", "high")

        assert await agent.result("setDefaultModel", {"model": "other-model", "reasoningEffort": None}) == {}
        assert "model_reasoning_effort" not in path.read_text(encoding="utf-8")
        error = await agent.error("setDefaultModel", {"model": "x", "reasoningEffort": "ultra"})
        assert error["message"] == (
            "Invalid request: unknown variant `ultra`, expected one of `none`, `minimal`, `low`, "
            "`medium`, `high`, `xhigh`"
        )


async def test_a_server_started_with_a_broken_config_warns_each_client_after_initialize(
    tmp_path: Path,
) -> None:
    codex_home = tmp_path / "codex_home"
    codex_home.mkdir()
    config = codex_home / "config.toml"
    config.write_text('model = "m"\napproval_policy = "bogus"\n', encoding="utf-8")
    async with open_server(codex_home=codex_home, validator=ProtocolValidator()) as srv:
        init = await srv.call_result("initialize", {"clientInfo": {"name": "c", "version": "1"}})
        assert "userAgent" in init
        # Right after the answer, before the client says `initialized` (the reference's order and fields).
        real = config.resolve()
        assert await srv.receive() == {
            "method": "configWarning",
            "params": {
                "summary": "Invalid configuration; using defaults.",
                "details": f"{real}:2:19: unknown variant `bogus`, expected one of `untrusted`, `on-failure`,"
                " `on-request`, `never`",
                "path": str(real),
                "range": {"start": {"line": 2, "column": 19}, "end": {"line": 2, "column": 25}},
            },
        }
        await srv.notify("initialized")
        reply = await srv.call("thread/start", {})
        assert reply["error"]["message"].startswith(f"error deriving config: {real}:2:19: unknown variant")

    # A usable config: no warning at all.
    config.write_text('model = "m"\n', encoding="utf-8")
    async with open_server(codex_home=codex_home, validator=ProtocolValidator()) as srv:
        await srv.initialize()
        assert "thread" in await srv.call_result("thread/start", {})
        assert [n["method"] for n in srv.notifications if n["method"] == "configWarning"] == []
