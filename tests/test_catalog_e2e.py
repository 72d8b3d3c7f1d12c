"""The catalogue methods end to end: codex-trio as a stdio subprocess against the mock on 127.0.0.1,
every message it writes checked against the protocol schema.

Expected answers are the reference's (Codex CLI 0.94.0, run with the same requests; captures in
tests/fixtures/catalog/), except where codex-trio cannot do what the reference does (MCP servers,
ChatGPT apps, sending feedback): there the client gets an error naming the limitation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jwt
from e2e_util import Agent, agent

from codex_trio.testing.mock_responses import open_mock_responses

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


async def answer(client: Agent, method: str, params: Any) -> dict[str, Any]:
    """The reply as the fixtures record it: ``{"result": ...}`` or ``{"error": ...}``."""
    reply, _ = await client.call(method, params)
    return {key: value for key, value in reply.items() if key != "id"}


def models_requests(mock: Any) -> list[Any]:
    return mock.requests_to("models", "GET")


def chatgpt_id_token(account: str = "org-x") -> str:
    claims = {
        "email": "user@example.com",
        "https://api.openai.com/auth": {"chatgpt_plan_type": "pro", "chatgpt_account_id": account},
    }
    return jwt.encode(claims, "k" * 32, algorithm="HS256")


# ---- model/list -------------------------------------------------------------------------------


async def test_model_list_answers_the_reference_catalogue_page_by_page(tmp_path: Path) -> None:
    async with open_mock_responses() as mock, agent(mock, tmp_path / "home", tmp_path / "work") as client:
        calls = fixture("model_list.json")["calls"]
        for call in calls:
            assert await answer(client, "model/list", call["params"]) == call["answer"], call["params"]
        # Each call asked OpenAI's /models (here OPENAI_BASE_URL, answering 404) and fell back.
        asked = models_requests(mock)
        assert len(asked) == len(calls)
        assert asked[0].query == "client_version=0.94.0"
        assert asked[0].headers["originator"] == "harness"
        assert asked[0].headers["version"] == "0.94.0"
        assert asked[0].headers["user-agent"].startswith("harness/0.94.0 (")
        assert "authorization" not in asked[0].headers

        # Logged in with an API key the reference never asks.
        assert await client.result("account/login/start", {"type": "apiKey", "apiKey": "sk-test"}) == {
            "type": "apiKey"
        }
        assert await answer(client, "model/list", {}) == calls[0]["answer"]
        assert len(models_requests(mock)) == len(calls)


async def test_a_remote_catalogue_is_merged_cached_and_filtered_by_login(tmp_path: Path) -> None:
    remote = fixture("model_list_remote.json")
    codex_home = tmp_path / "home"
    async with (
        open_mock_responses(models=remote["models_body"]) as mock,
        agent(mock, codex_home, tmp_path / "work") as client,
    ):
        for call in remote["logged_out"]:
            assert await answer(client, "model/list", call["params"]) == call["answer"], call["params"]
        # One request; the answer is kept in models_cache.json and stands in for the next ones.
        assert len(models_requests(mock)) == 1
        cache = json.loads((codex_home / "models_cache.json").read_text(encoding="utf-8"))
        assert list(cache) == ["fetched_at", "models"]
        assert [m["slug"] for m in cache["models"]] == [m["slug"] for m in remote["models_body"]["models"]]

        # With ChatGPT tokens the request carries them, and models not offered in the API show too.
        (codex_home / "models_cache.json").unlink()
        login = {"type": "chatgptAuthTokens", "idToken": chatgpt_id_token(), "accessToken": "access-1"}
        assert await client.result("account/login/start", login) == {"type": "chatgptAuthTokens"}
        for call in remote["chatgpt_tokens"]:
            assert await answer(client, "model/list", call["params"]) == call["answer"], call["params"]
        asked = models_requests(mock)
        assert len(asked) == 2
        assert asked[1].headers["authorization"] == "Bearer access-1"
        assert asked[1].headers["chatgpt-account-id"] == "org-x"


async def test_a_fresh_cache_file_is_used_and_an_unusable_answer_changes_nothing(tmp_path: Path) -> None:
    remote = fixture("model_list_remote.json")
    codex_home = tmp_path / "home"
    codex_home.mkdir()
    # Written by another process a moment ago: the reference uses it without asking.
    (codex_home / "models_cache.json").write_text(
        json.dumps({"fetched_at": "2999-01-01T00:00:00Z", "models": remote["models_body"]["models"]}),
        encoding="utf-8",
    )
    junk = {"data": [{"id": "gpt-4o", "object": "model"}]}
    async with open_mock_responses(models=junk) as mock, agent(mock, codex_home, tmp_path / "work") as client:
        assert await answer(client, "model/list", {}) == remote["logged_out"][0]["answer"]
        assert models_requests(mock) == []

        # Stale: asked again. The answer is not a catalogue, so the last good one stays.
        (codex_home / "models_cache.json").write_text(
            json.dumps({"fetched_at": "2000-01-01T00:00:00Z", "models": []}), encoding="utf-8"
        )
        assert await answer(client, "model/list", {}) == remote["logged_out"][0]["answer"]
        assert len(models_requests(mock)) == 1


# ---- collaboration modes ----------------------------------------------------------------------


async def test_collaboration_modes_are_the_reference_presets(tmp_path: Path) -> None:
    async with open_mock_responses() as mock, agent(mock, tmp_path / "home", tmp_path / "work") as client:
        result = await client.result("collaborationMode/list", {})
        expected = fixture("collaboration_modes.json")["data"]
        shown = [{k: v for k, v in m.items() if k != "developer_instructions"} for m in result["data"]]
        assert shown == expected
        # Instructions a client sends back with the mode; ours, not the reference's text.
        assert all(m["developer_instructions"].strip() for m in result["data"])
        assert "<proposed_plan>" in result["data"][0]["developer_instructions"]
        # Any params will do, but not none at all.
        assert await client.result("collaborationMode/list", {"unknown": 1}) == result
        assert await client.error("collaborationMode/list", None) == {
            "code": -32600,
            "message": "Invalid request: missing field `params`",
        }


# ---- skills -----------------------------------------------------------------------------------

SKILL_FILES = {
    "{codex_home}/skills/demo/SKILL.md": (
        "---\nname: demo-skill\ndescription: |-\n  does things\n  carefully\nmetadata:\n"
        "  short-description: short   summary\n---\n\n# Body\n"
    ),
    "{codex_home}/skills/demo/agents/openai.yaml": (
        'interface:\n  display_name: "Demo Skill"\n  short_description: Demo short\n'
        "  icon_small: ./assets/small.svg\n  icon_large: /abs/large.png\n"
        '  brand_color: "#ABCDEF"\n  default_prompt: Use demo\n'
        "dependencies:\n  tools:\n    - type: env_var\n      value: GITHUB_TOKEN\n      description: token\n"
        "    - type: mcp\n      value: github\n      transport: streamable_http\n"
        "      url: https://example.com/mcp\n    - value: missing-type\n"
    ),
    "{codex_home}/skills/nested/a/b/SKILL.md": "---\nname: nested\ndescription: d\n---\n",
    "{codex_home}/skills/.hidden/SKILL.md": "---\nname: hidden\ndescription: d\n---\n",
    "{codex_home}/skills/bad-nofm/SKILL.md": "no frontmatter here\n",
    "{codex_home}/skills/bad-noname/SKILL.md": "---\ndescription: x\n---\n",
    "{codex_home}/skills/bad-longname/SKILL.md": "---\nname: " + "n" * 65 + "\ndescription: x\n---\n",
    "{codex_home}/skills/bad-yaml/SKILL.md": "---\nname: [unclosed\ndescription: x\n---\n",
    "{codex_home}/skills/bad-emptyname/SKILL.md": "---\nname: '   '\ndescription: x\n---\n",
    "{codex_home}/skills/bad-intname/SKILL.md": "---\nname: 123\ndescription: x\n---\n",
    "{codex_home}/skills/bad-unclosed/SKILL.md": "---\nname: x\ndescription: x\n",
    "{codex_home}/skills/dup/SKILL.md": "---\nname: demo-skill\ndescription: duplicate name\n---\n",
    "{codex_home}/skills/noshort/SKILL.md": "---\nname: plain\ndescription: plain desc\n---\n",
    "{codex_home}/skills/a/b/c/d/e/f/g/SKILL.md": "---\nname: too-deep\ndescription: d\n---\n",
    "{codex_home}/skills/a/b/c/d/e/f/SKILL.md": "---\nname: deep6\ndescription: d\n---\n",
    "{codex_home}/skills/lower/skill.md": "---\nname: lower\ndescription: d\n---\n",
    "{codex_home}/skills/extra/SKILL.md": (
        "---\nname: extra\ndescription: d\nlicense: MIT\nallowed-tools: [a]\nmetadata:\n"
        "  shortDescription: alias short\n---\n"
    ),
    "{codex_home}/skills/iconbad/SKILL.md": "---\nname: iconbad\ndescription: d\n---\n",
    "{codex_home}/skills/iconbad/agents/openai.yaml": (
        "interface:\n  icon_small: ../x.svg\n  icon_large: other/x.png\n  brand_color: red\n"
    ),
    "{codex_home}/skills/ifaceempty/SKILL.md": "---\nname: ifaceempty\ndescription: d\n---\n",
    "{codex_home}/skills/ifaceempty/agents/openai.yaml": "interface:\n  display_name: '  '\n",
    "{codex_home}/skills/badyamlmeta/SKILL.md": "---\nname: badyamlmeta\ndescription: d\n---\n",
    "{codex_home}/skills/badyamlmeta/agents/openai.yaml": "interface: [\n",
    "{codex_home}/skills/crlf/SKILL.md": "---\r\nname: crlf\r\ndescription: d\r\n---\r\n",
    "{codex_home}/skills/quoted/SKILL.md": "---\nname: \"quoted name\"\ndescription: 'it''s folded'\n---\n",
    "{codex_home}/skills/folded/SKILL.md": (
        "---\nname: folded\ndescription: >\n  line one\n  line two\n\n  para\n---\n"
    ),
    "{home}/outside/linked/SKILL.md": "---\nname: linked\ndescription: via symlink\n---\n",
    "{work}/.codex/skills/r/SKILL.md": "---\nname: repo-skill\ndescription: from repo\n---\n",
    "{work}/.codex/skills/dupuser/SKILL.md": "---\nname: plain\ndescription: repo plain\n---\n",
}


def fill(value: Any, places: dict[str, str]) -> Any:
    text = json.dumps(value)
    for name, path in places.items():
        text = text.replace("{" + name + "}", path)
    return json.loads(text)


def with_sorted_errors(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Errors come in the directory's own order, which depends on the filesystem.
    return [{**entry, "errors": sorted(entry["errors"], key=lambda e: e["path"])} for entry in data]


async def test_skills_are_listed_and_disabled_like_the_reference(tmp_path: Path) -> None:
    codex_home = tmp_path / "home"
    async with open_mock_responses() as mock, agent(mock, codex_home, tmp_path / "work") as client:
        root = Path(os.path.realpath(client.server.root))
        places = {
            "codex_home": os.path.realpath(codex_home),
            "work": str(root / "work"),
            "home": str(root / "home"),
        }
        for name, text in SKILL_FILES.items():
            path = Path(fill(name, places))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode())
        os.symlink(Path(places["home"]) / "outside" / "linked", codex_home / "skills" / "link")
        (root / "work" / "sub").mkdir()
        config = codex_home / "config.toml"
        config.write_text(
            config.read_text()
            + f'\n[[skills.config]]\npath = "{codex_home}/skills/demo/SKILL.md"\nenabled = false\n'
            + f'\n[[skills.config]]\npath = "{codex_home}/skills/link/SKILL.md"\nenabled = false\n',
            encoding="utf-8",
        )

        for expected in fixture("skills_list.json")["answers"]:
            params = fill(expected["params"], places)
            result = await client.result("skills/list", params)
            assert with_sorted_errors(result["data"]) == with_sorted_errors(fill(expected["data"], places))

        # Listings are kept per cwd until asked to look again.
        added = codex_home / "skills" / "added" / "SKILL.md"
        added.parent.mkdir()
        added.write_text("---\nname: added\ndescription: later\n---\n")
        listed = (await client.result("skills/list", {}))["data"][0]["skills"]
        assert "added" not in [s["name"] for s in listed]
        listed = (await client.result("skills/list", {"forceReload": True}))["data"][0]["skills"]
        assert "added" in [s["name"] for s in listed]

        # Enabling the disabled skill removes its entry from config.toml; the listing follows.
        demo = f"{places['codex_home']}/skills/demo/SKILL.md"
        assert await client.result("skills/config/write", {"path": demo, "enabled": True}) == {
            "effectiveEnabled": True
        }
        assert f'path = "{demo}"' not in config.read_text()
        listed = (await client.result("skills/list", {}))["data"][0]["skills"]
        assert [s["enabled"] for s in listed if s["path"] == demo] == [True]

        assert await client.error("skills/list", {"cwds": [1]}) == {
            "code": -32600,
            "message": "Invalid request: invalid type: integer `1`, expected path string",
        }
        assert await client.error("skills/list", {"cwds": None}) == {
            "code": -32600,
            "message": "Invalid request: invalid type: null, expected a sequence",
        }
        assert await client.error("skills/config/write", {"path": "x"}) == {
            "code": -32600,
            "message": "Invalid request: missing field `enabled`",
        }


async def test_skills_list_reports_an_unreadable_config_per_cwd(tmp_path: Path) -> None:
    codex_home = tmp_path / "home"
    async with open_mock_responses() as mock, agent(mock, codex_home, tmp_path / "work") as client:
        config = codex_home / "config.toml"
        text = config.read_text() + '\n[features]\napps = "yes"\n'
        config.write_text(text, encoding="utf-8")
        line = text.splitlines().index('apps = "yes"') + 1
        problem = f'{config}:{line}:8: invalid type: string "yes", expected a boolean'
        cwd = str(Path(os.path.realpath(client.server.root)) / "work")
        assert await client.result("skills/list", {}) == {
            "data": [{"cwd": cwd, "skills": [], "errors": [{"path": cwd, "message": problem}]}]
        }
        # The methods that re-read config.toml report it as the reference does.
        rereading = (("app/list", {}), ("mcpServerStatus/list", {}), ("config/mcpServer/reload", None))
        for method, params in rereading:
            assert await client.error(method, params) == {
                "code": -32603,
                "message": f"failed to reload config: {problem}",
            }, method
        # model/list does not depend on it.
        assert len((await client.result("model/list", {}))["data"]) == 4


# ---- apps, MCP servers, feedback -----------------------------------------------------------------


async def test_apps_mcp_and_feedback_answer_like_the_reference_or_name_the_limitation(tmp_path: Path) -> None:
    codex_home = tmp_path / "home"
    async with open_mock_responses() as mock, agent(mock, codex_home, tmp_path / "work") as client:
        config = codex_home / "config.toml"
        base = config.read_text()
        empty = {"data": [], "nextCursor": None}
        # Nothing configured: the reference's answers.
        assert await client.result("app/list", {}) == empty
        assert await client.result("app/list", {"cursor": "x", "limit": 0}) == empty
        assert await client.result("mcpServerStatus/list", {}) == empty
        assert await client.result("mcpServerStatus/list", {"cursor": "0"}) == empty
        assert await client.error("mcpServerStatus/list", {"cursor": "1"}) == {
            "code": -32600,
            "message": "cursor 1 exceeds total MCP servers 0",
        }
        assert await client.error("mcpServerStatus/list", {"cursor": "x"}) == {
            "code": -32600,
            "message": "invalid cursor: x",
        }
        assert await client.result("config/mcpServer/reload", None) == {}
        assert await client.error("mcpServer/oauth/login", {"name": "foo"}) == {
            "code": -32600,
            "message": "No MCP server named 'foo' found.",
        }

        # Disabled servers: listed without connecting, as the reference does.
        config.write_text(
            base
            + '\n[mcp_servers.a0]\ncommand = "/nonexistent"\nenabled = false\n'
            + '\n[mcp_servers.h2]\nurl = "http://127.0.0.1:9/mcp"\nbearer_token_env_var = "TOK"\n'
            + "enabled = false\n",
            encoding="utf-8",
        )
        nothing: dict[str, Any] = {"tools": {}, "resources": [], "resourceTemplates": []}
        a0 = {"name": "a0", **nothing, "authStatus": "unsupported"}
        h2 = {"name": "h2", **nothing, "authStatus": "bearerToken"}
        assert await client.result("mcpServerStatus/list", {}) == {"data": [a0, h2], "nextCursor": None}
        assert await client.result("mcpServerStatus/list", {"limit": 1}) == {"data": [a0], "nextCursor": "1"}
        assert await client.result("mcpServerStatus/list", {"cursor": "2"}) == empty
        assert await client.error("mcpServer/oauth/login", {"name": "a0"}) == {
            "code": -32600,
            "message": "OAuth login is only supported for streamable HTTP servers.",
        }
        assert await client.error("mcpServer/oauth/login", {"name": "h2"}) == {
            "code": -32603,
            "message": (
                "failed to login to MCP server 'h2': "
                "OAuth login to MCP servers is not supported by codex-trio"
            ),
        }
        assert await client.result("config/mcpServer/reload", None) == {}

        # An enabled server would be started by the reference: refused, naming the limitation.
        config.write_text(base + '\n[mcp_servers.docs]\ncommand = "docs-mcp"\n', encoding="utf-8")
        assert await client.error("mcpServerStatus/list", {}) == {
            "code": -32603,
            "message": "MCP servers are not supported by codex-trio (cannot reach: docs)",
        }
        assert await client.error("config/mcpServer/reload", None) == {
            "code": -32603,
            "message": (
                "failed to reload MCP servers: MCP servers are not supported by codex-trio (configured: docs)"
            ),
        }

        # Apps: the reference would ask the ChatGPT connectors directory.
        config.write_text(base + "\n[features]\napps = true\n", encoding="utf-8")
        assert await client.error("app/list", {}) == {
            "code": -32603,
            "message": "failed to list apps: ChatGPT apps (connectors) are not supported by codex-trio",
        }

        # Feedback: the reference's checks, then no upload (codex-trio sends it nowhere).
        bad_thread = {"classification": "bug", "includeLogs": False, "threadId": "nope"}
        assert await client.error("feedback/upload", bad_thread) == {
            "code": -32600,
            "message": (
                "invalid thread id: invalid character: expected an optional prefix of `urn:uuid:` "
                "followed by [0-9a-fA-F-], found `n` at 1"
            ),
        }
        assert await client.error("feedback/upload", {"classification": "bug", "includeLogs": True}) == {
            "code": -32603,
            "message": "failed to upload feedback: codex-trio does not send feedback to any service",
        }
        config.write_text(base + "\n[feedback]\nenabled = false\n", encoding="utf-8")
        assert await client.result("config/mcpServer/reload", None) == {}
        assert await client.error("feedback/upload", {"classification": "bug", "includeLogs": False}) == {
            "code": -32600,
            "message": "sending feedback is disabled by configuration",
        }
        assert await client.error("feedback/upload", {"classification": "bug"}) == {
            "code": -32600,
            "message": "Invalid request: missing field `includeLogs`",
        }
        # Nothing of this went over the network.
        assert [r.path for r in mock.requests] == []
