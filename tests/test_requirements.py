"""An administrator's requirements.toml (allowed approval policies and sandbox modes) enforced like the
reference (Codex 0.94.0): read off it under bubblewrap with a fake /etc/codex (see
tests/test_requirements_e2e.py, which checks the real /etc path the same way).

What 0.94.0 does, and these tests pin:
- a configuration whose resolved approval policy or sandbox mode is not allowed is refused, whatever
  chose it (config.toml, a profile, `-c`, thread/start's typed fields or `config` map, the defaults or
  a project's trust level): there is no falling back to an allowed value;
- the approval policy is checked first; texts name the enum variants (`UnlessTrusted`, `ReadOnly`...)
  and the file: "invalid value for `approval_policy`: `UnlessTrusted` is not in the allowed set
  [Never, OnRequest] (set by <path>)";
- a turn/start override that is not allowed fails as a whole: the turn is answered and runs on the
  settings it had, an `error` notification names the override's own id, and turn/completed fails;
- the requirements are read again for every new thread, and a malformed file fails every thread.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from e2e_util import write_config
from memclient import MemoryClient, memory_transport_pair
from schema_check import ProtocolValidator

from codex_trio.app import AppServer, ServerOptions
from codex_trio.core.config import (
    Config,
    ConfigError,
    RequirementsViolation,
    load_config,
    load_config_layers,
    parse_cli_overrides,
    sandbox_mode_of_policy,
)
from codex_trio.testing import mock_responses as mr

INIT = {"clientInfo": {"name": "harness", "version": "0.0.1"}}
NEVER_OR_ON_REQUEST = 'allowed_approval_policies = ["never", "on-request"]\n'
READ_ONLY = 'allowed_sandbox_modes = ["read-only"]\n'


def approval_error(candidate: str, allowed: str, path: Path) -> str:
    return (
        f"invalid value for `approval_policy`: `{candidate}` is not in the allowed set [{allowed}] "
        f"(set by {path})"
    )


def sandbox_error(candidate: str, allowed: str, path: Path) -> str:
    return (
        f"invalid value for `sandbox_mode`: `{candidate}` is not in the allowed set [{allowed}] "
        f"(set by {path})"
    )


# -- loading a configuration ---------------------------------------------------------------------


class Files:
    def __init__(self, tmp_path: Path) -> None:
        self.codex_home = tmp_path / "codex_home"
        self.codex_home.mkdir()
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.work = tmp_path / "work"
        self.work.mkdir()
        self.requirements = tmp_path / "requirements.toml"

    def config(self, text: str) -> None:
        (self.codex_home / "config.toml").write_text(text, encoding="utf-8")

    def require(self, text: str) -> None:
        self.requirements.write_text(text, encoding="utf-8")

    def load(self, *, overrides: Sequence[str] = (), profile: str | None = None) -> Config:
        return load_config(
            self.codex_home,
            cli_overrides=parse_cli_overrides(overrides),
            profile=profile,
            cwd=self.work,
            env={"HOME": str(self.home)},
            system_config_path=None,
            requirements_path=self.requirements,
        )


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def test_without_a_requirements_file_nothing_changes(files: Files) -> None:
    files.config('approval_policy = "untrusted"\nsandbox_mode = "danger-full-access"\n')
    config = files.load()
    assert (config.approval_policy, config.sandbox_mode) == ("untrusted", "danger-full-access")
    assert config.requirements is None


def test_allowed_values_load_and_the_config_keeps_the_requirements(files: Files) -> None:
    files.require(NEVER_OR_ON_REQUEST + READ_ONLY)
    files.config('approval_policy = "never"\n')
    config = files.load()
    assert (config.approval_policy, config.sandbox_mode) == ("never", "read-only")
    assert config.requirements is not None
    assert config.requirements.allowed_approval_policies == ("never", "on-request")
    assert config.requirements.source == files.requirements


@pytest.mark.parametrize(
    ("config_text", "overrides", "profile", "message"),
    [
        ('approval_policy = "untrusted"\n', (), None, ("UnlessTrusted", "approval")),
        ('sandbox_mode = "workspace-write"\n', (), None, ("WorkspaceWrite", "sandbox")),
        ("", ['approval_policy="on-failure"'], None, ("OnFailure", "approval")),
        ("", ['sandbox_mode="danger-full-access"'], None, ("DangerFullAccess", "sandbox")),
        ('[profiles.p]\napproval_policy = "untrusted"\n', (), "p", ("UnlessTrusted", "approval")),
        # Both forbidden: the approval policy is reported.
        (
            'approval_policy = "on-failure"\nsandbox_mode = "danger-full-access"\n',
            (),
            None,
            ("OnFailure", "approval"),
        ),
    ],
)
def test_a_forbidden_choice_anywhere_is_refused(
    files: Files,
    config_text: str,
    overrides: Sequence[str],
    profile: str | None,
    message: tuple[str, str],
) -> None:
    files.require(NEVER_OR_ON_REQUEST + READ_ONLY)
    files.config(config_text)
    with pytest.raises(RequirementsViolation) as info:
        files.load(overrides=overrides, profile=profile)
    candidate, kind = message
    if kind == "approval":
        expected = approval_error(candidate, "Never, OnRequest", files.requirements)
    else:
        expected = sandbox_error(candidate, "ReadOnly", files.requirements)
    assert str(info.value) == expected


def test_forbidden_defaults_do_not_fall_back_to_an_allowed_value(files: Files) -> None:
    # The list keeps the file's order (and so does the message).
    files.require('allowed_approval_policies = ["on-failure", "never"]\n')
    files.config("")
    with pytest.raises(RequirementsViolation) as info:
        files.load()
    assert str(info.value) == approval_error("OnRequest", "OnFailure, Never", files.requirements)

    # A trusted project defaults to workspace-write.
    files.require(READ_ONLY)
    files.config(f'[projects."{files.work}"]\ntrust_level = "trusted"\n')
    with pytest.raises(RequirementsViolation) as info:
        files.load()
    assert str(info.value) == sandbox_error("WorkspaceWrite", "ReadOnly", files.requirements)


def test_overrides_derive_an_allowed_config_from_a_forbidden_one(files: Files) -> None:
    files.require(NEVER_OR_ON_REQUEST + READ_ONLY)
    files.config('approval_policy = "untrusted"\n')
    with pytest.raises(RequirementsViolation) as info:
        files.load()
    unconstrained = info.value.unconstrained
    assert unconstrained.approval_policy == "untrusted"

    derived = unconstrained.derive(approval_policy="never")
    assert (derived.approval_policy, derived.sandbox_mode) == ("never", "read-only")
    # Each derived config is checked: typed fields, the `config` map, and the approval policy first.
    with pytest.raises(ConfigError) as typed:
        derived.derive(approval_policy="on-failure", sandbox_mode="danger-full-access")
    assert str(typed.value) == approval_error("OnFailure", "Never, OnRequest", files.requirements)
    with pytest.raises(ConfigError) as mapped:
        derived.derive({"sandbox_mode": "workspace-write"})
    assert str(mapped.value) == sandbox_error("WorkspaceWrite", "ReadOnly", files.requirements)


def test_the_requirements_are_read_again_for_each_derived_config(files: Files) -> None:
    files.require(NEVER_OR_ON_REQUEST)
    files.config("")
    base = files.load()
    assert base.derive().approval_policy == "on-request"
    files.require('allowed_approval_policies = ["never"]\n')
    with pytest.raises(ConfigError) as info:
        base.derive()
    assert str(info.value) == approval_error("OnRequest", "Never", files.requirements)


def test_other_config_errors_come_before_the_requirements_check(files: Files) -> None:
    files.require(READ_ONLY)
    files.config('sandbox_mode = "danger-full-access"\nmodel_provider = "nope"\n')
    with pytest.raises(ConfigError) as info:
        files.load()
    assert not isinstance(info.value, RequirementsViolation)
    assert str(info.value) == "Model provider `nope` not found"


def test_a_malformed_requirements_file_fails_before_the_config_files(files: Files) -> None:
    files.require('allowed_approval_policies = ["bogus"]\n')
    files.config('approval_policy = "also-bogus"\n')
    expected = (
        f"Error parsing requirements file {files.requirements}: TOML parse error at line 1, column 30\n"
        "  |\n"
        '1 | allowed_approval_policies = ["bogus"]\n'
        "  |                              ^^^^^^^\n"
        "unknown variant `bogus`, expected one of `untrusted`, `on-failure`, `on-request`, `never`\n"
    )
    with pytest.raises(ConfigError) as info:
        files.load()
    assert str(info.value) == expected
    # Whatever reads the layers (config/read, config/value/write...) fails the same way.
    with pytest.raises(ConfigError) as layers:
        load_config_layers(
            files.codex_home,
            env={"HOME": str(files.home)},
            system_config_path=None,
            requirements_path=files.requirements,
        )
    assert str(layers.value) == expected


def test_violation_wording_for_sandbox_policies(files: Files) -> None:
    files.require('allowed_sandbox_modes = ["read-only", "external-sandbox"]\n')
    requirements = files.load().requirements
    assert requirements is not None
    assert requirements.violation(sandbox_mode=sandbox_mode_of_policy({"type": "externalSandbox"})) is None
    assert requirements.violation(
        sandbox_mode=sandbox_mode_of_policy({"type": "dangerFullAccess"})
    ) == sandbox_error("DangerFullAccess", "ReadOnly, ExternalSandbox", files.requirements)
    # No approval list: any approval policy goes.
    assert requirements.violation(approval_policy="untrusted") is None


# -- the server (in process) ---------------------------------------------------------------------


class Client:
    def __init__(self, client: MemoryClient, work: Path) -> None:
        self.client = client
        self.work = work
        self.next_id = 1

    async def call(self, method: str, params: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The reply, and the notifications written before it."""
        request_id = self.next_id
        self.next_id += 1
        await self.client.request(request_id, method, params)
        seen: list[dict[str, Any]] = []
        while True:
            msg = await self.client.receive(timeout=10)
            if msg.get("id") == request_id and "method" not in msg:
                return msg, seen
            seen.append(msg)

    async def error(self, method: str, params: Any = None) -> dict[str, Any]:
        reply, _ = await self.call(method, params)
        assert "error" in reply, reply
        error: dict[str, Any] = reply["error"]
        return error

    async def result(self, method: str, params: Any = None) -> Any:
        reply, _ = await self.call(method, params)
        assert "result" in reply, reply
        return reply["result"]

    async def until(self, *methods: str) -> list[dict[str, Any]]:
        """What the server writes up to (and including) the first notification of one of ``methods``."""
        seen: list[dict[str, Any]] = []
        while True:
            msg = await self.client.receive(timeout=10)
            seen.append(msg)
            if msg.get("method") in methods:
                return seen


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # The mock is on 127.0.0.1; a developer's proxy settings must not route around it.
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)


@asynccontextmanager
async def served(
    tmp_path: Path,
    requirements: str,
    *,
    config: str = "",
    codex_home: Path | None = None,
    mock: mr.MockResponses,
) -> AsyncIterator[Client]:
    home = codex_home or tmp_path / "codex_home"
    if codex_home is None:
        write_config(home, mock.base_url)
        # Top-level keys go before the provider's table.
        file = home / "config.toml"
        file.write_text(config + file.read_text(encoding="utf-8"), encoding="utf-8")
    requirements_path = tmp_path / "requirements.toml"
    requirements_path.write_text(requirements, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {"CODEX_HOME": str(home), "HOME": str(tmp_path), "PATH": os.defpath, "TZ": "UTC"}
    app = AppServer(ServerOptions(env=env, requirements_path=requirements_path))
    transport, memory = memory_transport_pair(ProtocolValidator())
    async with trio.open_nursery() as nursery:
        await nursery.start(app.run)
        await nursery.start(app.serve_transport, transport)
        client = Client(memory, work)
        await client.result("initialize", INIT)
        await memory.send({"method": "initialized"})
        yield client
        nursery.cancel_scope.cancel()


@pytest.mark.usefixtures("no_proxies")
async def test_thread_start_fork_and_new_conversation_refuse_forbidden_policies(tmp_path: Path) -> None:
    path = tmp_path / "requirements.toml"
    async with mr.open_mock_responses() as mock, served(
        tmp_path, NEVER_OR_ON_REQUEST + READ_ONLY, mock=mock
    ) as client:
        cwd = str(client.work)
        started = await client.result("thread/start", {"cwd": cwd})
        assert (started["approvalPolicy"], started["sandbox"]) == ("on-request", {"type": "readOnly"})
        never = await client.result("thread/start", {"cwd": cwd, "approvalPolicy": "never"})
        assert never["approvalPolicy"] == "never"

        cases = [
            ({"approvalPolicy": "untrusted"}, approval_error("UnlessTrusted", "Never, OnRequest", path)),
            ({"approvalPolicy": "on-failure"}, approval_error("OnFailure", "Never, OnRequest", path)),
            ({"sandbox": "workspace-write"}, sandbox_error("WorkspaceWrite", "ReadOnly", path)),
            (
                {"config": {"sandbox_mode": "danger-full-access"}},
                sandbox_error("DangerFullAccess", "ReadOnly", path),
            ),
            (
                {"approvalPolicy": "untrusted", "sandbox": "danger-full-access"},
                approval_error("UnlessTrusted", "Never, OnRequest", path),
            ),
        ]
        for params, message in cases:
            expected = {"code": -32600, "message": f"error deriving config: {message}"}
            assert await client.error("thread/start", {"cwd": cwd, **params}) == expected
        thread_id = started["thread"]["id"]
        assert await client.error("thread/fork", {"threadId": thread_id, "sandbox": "workspace-write"}) == {
            "code": -32600,
            "message": f"error deriving config: {sandbox_error('WorkspaceWrite', 'ReadOnly', path)}",
        }
        assert await client.error("newConversation", {"cwd": cwd, "approvalPolicy": "untrusted"}) == {
            "code": -32600,
            "message": f"error deriving config: {approval_error('UnlessTrusted', 'Never, OnRequest', path)}",
        }


@pytest.mark.usefixtures("no_proxies")
async def test_a_forbidden_default_fails_every_thread_that_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "requirements.toml"
    async with mr.open_mock_responses() as mock, served(
        tmp_path, 'allowed_approval_policies = ["never"]\n', mock=mock
    ) as client:
        message = f"error deriving config: {approval_error('OnRequest', 'Never', path)}"
        cwd = str(client.work)
        assert await client.error("thread/start", {"cwd": cwd}) == {"code": -32600, "message": message}
        assert await client.error("newConversation", {"cwd": cwd}) == {"code": -32600, "message": message}


@pytest.mark.usefixtures("no_proxies")
async def test_a_forbidden_config_file_choice_fails_threads_that_keep_it(tmp_path: Path) -> None:
    path = tmp_path / "requirements.toml"
    async with mr.open_mock_responses() as mock, served(
        tmp_path, NEVER_OR_ON_REQUEST, config='approval_policy = "untrusted"\n', mock=mock
    ) as client:
        assert await client.error("thread/start", {"cwd": str(client.work)}) == {
            "code": -32600,
            "message": f"error deriving config: {approval_error('UnlessTrusted', 'Never, OnRequest', path)}",
        }


@pytest.mark.usefixtures("no_proxies")
async def test_an_allowed_override_beats_a_forbidden_config_file_choice(tmp_path: Path) -> None:
    async with mr.open_mock_responses() as mock, served(
        tmp_path, NEVER_OR_ON_REQUEST, config='approval_policy = "untrusted"\n', mock=mock
    ) as client:
        started = await client.result("thread/start", {"cwd": str(client.work), "approvalPolicy": "never"})
        assert started["approvalPolicy"] == "never"


@pytest.mark.usefixtures("no_proxies")
async def test_a_forbidden_turn_override_fails_alone_and_the_turn_runs_as_before(tmp_path: Path) -> None:
    path = tmp_path / "requirements.toml"
    async with mr.open_mock_responses() as mock, served(
        tmp_path, NEVER_OR_ON_REQUEST + READ_ONLY, mock=mock
    ) as client:
        started = await client.result("thread/start", {"cwd": str(client.work)})
        thread_id = started["thread"]["id"]
        message = approval_error("UnlessTrusted", "Never, OnRequest", path)
        turn = {
            "threadId": thread_id,
            "input": [{"type": "text", "text": "hello", "text_elements": []}],
            "approvalPolicy": "untrusted",
            "model": "other-model",
        }
        answer = await client.result("turn/start", turn)
        # The rejected override used up id 0, as the reference's separate operation does.
        assert answer == {"turn": {"id": "1", "items": [], "status": "inProgress", "error": None}}
        seen = await client.until("turn/completed")
        methods = [m["method"] for m in seen]
        assert methods[:3] == ["turn/started", "codex/event/error", "error"]
        assert seen[1]["params"]["id"] == "0"
        assert seen[1]["params"]["msg"] == {
            "type": "error",
            "message": message,
            "codex_error_info": "bad_request",
        }
        error = {"message": message, "codexErrorInfo": "badRequest", "additionalDetails": None}
        assert seen[2]["params"] == {
            "error": error,
            "willRetry": False,
            "threadId": thread_id,
            "turnId": "0",
        }
        assert seen[-1]["params"]["turn"] == {"id": "1", "items": [], "status": "failed", "error": error}
        # The turn ran, on the model it had: nothing of the rejected override applied.
        assert [r.body["model"] for r in mock.requests if r.path.endswith("/responses")] == ["mock-model"]

        sandbox = {**turn, "approvalPolicy": None, "sandboxPolicy": {"type": "dangerFullAccess"}}
        answer = await client.result("turn/start", sandbox)
        assert answer["turn"]["id"] == "3"
        seen = await client.until("turn/completed")
        errors = [m["params"] for m in seen if m["method"] == "error"]
        assert [e["error"]["message"] for e in errors] == [
            sandbox_error("DangerFullAccess", "ReadOnly", path)
        ]
        assert errors[0]["turnId"] == "2"

        allowed = {**turn, "approvalPolicy": "never"}
        await client.result("turn/start", allowed)
        seen = await client.until("turn/completed")
        assert not [m for m in seen if m["method"] == "error"]
        assert seen[-1]["params"]["turn"]["status"] == "completed"
        assert [r.body["model"] for r in mock.requests if r.path.endswith("/responses")][-1] == "other-model"


@pytest.mark.usefixtures("no_proxies")
async def test_resume_refuses_forbidden_overrides(tmp_path: Path) -> None:
    path = tmp_path / "requirements.toml"
    async with mr.open_mock_responses() as mock:
        async with served(tmp_path, "", mock=mock) as client:
            started = await client.result("thread/start", {"cwd": str(client.work)})
            thread_id = started["thread"]["id"]
            await client.result(
                "turn/start",
                {"threadId": thread_id, "input": [{"type": "text", "text": "hi", "text_elements": []}]},
            )
            await client.until("turn/completed")
        # A new server over the same CODEX_HOME, now under requirements.
        async with served(
            tmp_path, NEVER_OR_ON_REQUEST + READ_ONLY, codex_home=tmp_path / "codex_home", mock=mock
        ) as client:
            assert await client.error(
                "thread/resume", {"threadId": thread_id, "approvalPolicy": "untrusted"}
            ) == {
                "code": -32600,
                "message": "error deriving config: "
                + approval_error("UnlessTrusted", "Never, OnRequest", path),
            }
            resumed = await client.result("thread/resume", {"threadId": thread_id, "approvalPolicy": "never"})
            assert resumed["approvalPolicy"] == "never"


@pytest.mark.usefixtures("no_proxies")
async def test_a_malformed_requirements_file_fails_every_thread(tmp_path: Path) -> None:
    path = tmp_path / "requirements.toml"
    async with mr.open_mock_responses() as mock, served(
        tmp_path, 'allowed_sandbox_modes = ["workspace-write"]\n', mock=mock
    ) as client:
        message = (
            "error deriving config: invalid value for `allowed_sandbox_modes`: `[WorkspaceWrite]` is not "
            f"in the allowed set must include 'read-only' to allow any SandboxPolicy (set by {path})"
        )
        for params in ({}, {"approvalPolicy": "never", "sandbox": "read-only"}):
            assert await client.error("thread/start", {"cwd": str(client.work), **params}) == {
                "code": -32600,
                "message": message,
            }


# The two below need the changes proposed for processors/command.py and processors/conversations.py
# (see the session-3 "requirements" report); remove the markers when they land.


@pytest.mark.usefixtures("no_proxies")
async def test_command_exec_refuses_a_forbidden_sandbox_policy(tmp_path: Path) -> None:
    path = tmp_path / "requirements.toml"
    async with mr.open_mock_responses() as mock, served(tmp_path, READ_ONLY, mock=mock) as client:
        for policy, name in (
            ({"type": "dangerFullAccess"}, "DangerFullAccess"),
            ({"type": "externalSandbox"}, "ExternalSandbox"),
        ):
            assert await client.error("command/exec", {"command": ["true"], "sandboxPolicy": policy}) == {
                "code": -32600,
                "message": f"invalid sandbox policy: {sandbox_error(name, 'ReadOnly', path)}",
            }
        assert await client.error(
            "execOneOffCommand", {"command": ["true"], "sandboxPolicy": {"type": "danger-full-access"}}
        ) == {
            "code": -32600,
            "message": f"invalid sandbox policy: {sandbox_error('DangerFullAccess', 'ReadOnly', path)}",
        }


@pytest.mark.usefixtures("no_proxies")
async def test_send_user_turn_with_forbidden_policies_runs_no_turn(tmp_path: Path) -> None:
    path = tmp_path / "requirements.toml"
    async with mr.open_mock_responses() as mock, served(
        tmp_path, NEVER_OR_ON_REQUEST + READ_ONLY, mock=mock
    ) as client:
        started = await client.result("newConversation", {"cwd": str(client.work), "approvalPolicy": "never"})
        cid = started["conversationId"]
        await client.result("addConversationListener", {"conversationId": cid})
        await client.until("codex/event/mcp_startup_complete")
        turn = {
            "conversationId": cid,
            "items": [{"type": "text", "data": {"text": "hello", "text_elements": []}}],
            "cwd": str(client.work),
            "approvalPolicy": "untrusted",
            "sandboxPolicy": {"type": "read-only"},
            "model": "other-model",
            "effort": None,
            "summary": "auto",
        }
        assert await client.result("sendUserTurn", turn) == {}
        seen = await client.until("codex/event/error", "codex/event/task_started")
        assert seen[-1]["method"] == "codex/event/error"
        assert seen[-1]["params"]["id"] == "0"
        assert seen[-1]["params"]["msg"]["message"] == approval_error(
            "UnlessTrusted", "Never, OnRequest", path
        )
        allowed = {**turn, "approvalPolicy": "never", "model": "mock-model"}
        assert await client.result("sendUserTurn", allowed) == {}
        seen = await client.until("codex/event/task_complete")
        # Only the allowed turn ran (id 1): nothing started for the refused one.
        assert [m["params"]["id"] for m in seen if m["method"] == "codex/event/task_started"] == ["1"]
        assert [r.body["model"] for r in mock.requests if r.path.endswith("/responses")] == ["mock-model"]
