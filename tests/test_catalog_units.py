"""The pure parts behind the catalogue methods: the model catalogue and its cache, paging, the skill
file reader and the config.toml edits of skills/config/write. Expectations come from the reference's
answers (tests/fixtures/catalog/) and from probing its decoder with one change at a time."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from codex_trio.core.config import DEFAULT_MODEL
from codex_trio.core.models import (
    BUNDLED_MODELS,
    CursorError,
    ModelsDecodeError,
    ModelsFetchError,
    ModelsRequest,
    decode_model,
    decode_models,
    fetch_models,
    merge_remote,
    page_bounds,
    parse_timestamp,
    picker,
    read_cache,
    write_cache,
)
from codex_trio.core.skills import (
    SkillParseError,
    YamlError,
    discover_skills,
    extract_frontmatter,
    parse_skill_file,
    parse_yaml,
    set_skill_enabled,
)

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


REMOTE = fixture("model_list_remote.json")


def remote_model(**changes: Any) -> dict[str, Any]:
    model = dict(REMOTE["models_body"]["models"][1])
    model.update(changes)
    return model


# ---- the catalogue ------------------------------------------------------------------------------


def test_the_bundled_catalogue_is_the_references_and_its_default_our_default_model() -> None:
    default = fixture("model_list.json")["calls"][0]
    assert default["params"] == {}
    assert picker(BUNDLED_MODELS, chatgpt=False) == default["answer"]["result"]["data"]
    assert picker(BUNDLED_MODELS, chatgpt=False)[0]["id"] == DEFAULT_MODEL


def test_a_remote_catalogue_replaces_by_slug_appends_and_sorts_by_priority() -> None:
    models, _ = decode_models(REMOTE["models_body"])
    merged = merge_remote(models)
    logged_out = REMOTE["logged_out"][0]
    chatgpt = REMOTE["chatgpt_tokens"][0]
    assert logged_out["params"] == chatgpt["params"] == {}
    assert picker(merged, chatgpt=False) == logged_out["answer"]["result"]["data"]
    assert picker(merged, chatgpt=True) == chatgpt["answer"]["result"]["data"]


# Probed on the reference one field at a time: without these its decoder refuses the whole answer.
REQUIRED = [
    "slug", "display_name", "supported_reasoning_levels", "shell_type", "visibility", "supported_in_api",
    "priority", "base_instructions", "supports_reasoning_summaries", "support_verbosity",
    "truncation_policy", "supports_parallel_tool_calls", "experimental_supported_tools",
]
OPTIONAL = [
    "description", "default_reasoning_level", "upgrade", "default_verbosity", "apply_patch_tool_type",
    "context_window", "reasoning_summary_format", "minimal_client_version", "model_messages",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_a_model_without_a_required_field_is_refused(name: str) -> None:
    model = remote_model()
    del model[name]
    with pytest.raises(ModelsDecodeError, match=f"missing field `{name}`"):
        decode_model(model)


@pytest.mark.parametrize("name", OPTIONAL)
def test_optional_fields_may_be_left_out(name: str) -> None:
    model = remote_model()
    model.pop(name, None)
    assert decode_model(model).slug == "gpt-5.2"


@pytest.mark.parametrize(
    "changes",
    [
        {"shell_type": "bogus"},
        {"apply_patch_tool_type": "bogus"},
        {"default_verbosity": "bogus"},
        {"truncation_policy": {"mode": "bogus", "limit": 1}},
        {"default_reasoning_level": "bogus"},
        {"supported_reasoning_levels": [{"effort": "bogus", "description": "x"}]},
        {"supported_reasoning_levels": [{"effort": "low"}]},
        {"visibility": "bogus"},
        {"priority": 1.0},
        {"priority": 2**31},
        {"upgrade": {"model": "x"}},
        {"context_window": 1.5},
        {"experimental_supported_tools": "x"},
        {"effective_context_window_percent": None},
        {"model_messages": {"instructions_template": 5}},
        {"supported_in_api": "yes"},
    ],
)
def test_values_of_the_wrong_type_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ModelsDecodeError):
        decode_model(remote_model(**changes))


def test_what_the_reference_accepts_and_how_it_shows_it() -> None:
    lenient = decode_model(remote_model(description=None, default_reasoning_level=None, model_messages={}))
    [shown] = [m for m in picker([lenient], chatgpt=False)]
    assert shown["description"] == ""
    assert shown["defaultReasoningEffort"] == "none"
    assert shown["supportsPersonality"] is False
    template = {"instructions_template": "Be {{ personality }}.", "instructions_variables": {
        "personality_default": "a", "personality_friendly": "b", "personality_pragmatic": None}}
    assert not decode_model(remote_model(model_messages=template)).supports_personality
    assert decode_model(remote_model(bogus_extra=1, visibility="none")).visibility == "none"
    with pytest.raises(ModelsDecodeError, match="missing field `models`"):
        decode_models({"data": []})
    with pytest.raises(ModelsDecodeError):
        decode_models({"models": None})


def test_two_entries_with_one_slug_keep_the_later() -> None:
    first = decode_model(remote_model(slug="same", description="first"))
    second = decode_model(remote_model(slug="same", description="second", priority=-1))
    merged = merge_remote([first, second])
    assert [m.description for m in merged if m.slug == "same"] == ["second"]
    assert picker(merged, chatgpt=False)[0]["description"] == "second"


# ---- paging -----------------------------------------------------------------------------------


def test_model_list_pages_match_the_reference() -> None:
    catalogue = picker(BUNDLED_MODELS, chatgpt=False)
    for call in fixture("model_list.json")["calls"]:
        params = call["params"]
        try:
            start, end = page_bounds(params.get("cursor"), params.get("limit"), len(catalogue), "models")
        except CursorError as exc:
            assert call["answer"]["error"] == {"code": -32600, "message": str(exc)}
            continue
        data = call["answer"]["result"]["data"]
        assert catalogue[start:end] == data
        expected_next = call["answer"]["result"]["nextCursor"]
        assert (str(end) if end < len(catalogue) else None) == expected_next


@pytest.mark.parametrize(
    ("cursor", "bounds"),
    [("+2", (2, 4)), ("007", (7, 9)), (" 2", None), ("2 ", None), ("1_0", None), ("", None), ("2.0", None)],
)
def test_cursors_are_unsigned_integers_as_rust_parses_them(
    cursor: str, bounds: tuple[int, int] | None
) -> None:
    if bounds is None:
        with pytest.raises(CursorError, match=f"invalid cursor: {cursor}$"):
            page_bounds(cursor, 2, 10, "models")
    else:
        assert page_bounds(cursor, 2, 10, "models") == bounds


# ---- models_cache.json ------------------------------------------------------------------------

NOW = datetime(2030, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def write_raw_cache(home: Path, fetched_at: str, models: Any = None) -> None:
    body = {"fetched_at": fetched_at, "models": REMOTE["models_body"]["models"] if models is None else models}
    (home / "models_cache.json").write_text(json.dumps(body), encoding="utf-8")


@pytest.mark.parametrize(
    ("fetched_at", "fresh"),
    [
        ("2030-05-01T11:55:00.123456789Z", True),
        ("2030-05-01T11:54:59Z", False),
        ("2030-05-01T13:55:00+02:00", True),
        ("2031-01-01T00:00:00Z", True),
        ("2030-05-01T12:00:00", False),
        ("yesterday", False),
    ],
)
def test_the_cache_stands_in_for_five_minutes(tmp_path: Path, fetched_at: str, fresh: bool) -> None:
    write_raw_cache(tmp_path, fetched_at)
    cached = read_cache(tmp_path, NOW)
    assert (cached is not None) == fresh
    if cached is not None:
        assert [m.slug for m in cached] == [m["slug"] for m in REMOTE["models_body"]["models"]]


def test_an_unreadable_cache_is_ignored(tmp_path: Path) -> None:
    assert read_cache(tmp_path, NOW) is None
    (tmp_path / "models_cache.json").write_text("{not json", encoding="utf-8")
    assert read_cache(tmp_path, NOW) is None
    write_raw_cache(tmp_path, "2030-05-01T12:00:00Z", models=[{"slug": "x"}])
    assert read_cache(tmp_path, NOW) is None


def test_the_cache_written_is_read_back(tmp_path: Path) -> None:
    raw = REMOTE["models_body"]["models"]
    write_cache(tmp_path, raw, '"v1"', NOW)
    data = json.loads((tmp_path / "models_cache.json").read_text(encoding="utf-8"))
    assert list(data) == ["fetched_at", "etag", "models"]
    assert parse_timestamp(data["fetched_at"]) == NOW
    assert read_cache(tmp_path, NOW + timedelta(seconds=299)) is not None
    assert read_cache(tmp_path, NOW + timedelta(seconds=301)) is None


# ---- fetching ---------------------------------------------------------------------------------


async def fetch_with(handler: Any) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await fetch_models(http, ModelsRequest("http://models.test/v1/", {"originator": "t"}))


async def test_a_good_answer_is_decoded_with_its_etag(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=REMOTE["models_body"], headers={"etag": '"abc"'})

    fetched = await fetch_with(handler)
    assert str(seen[0].url) == "http://models.test/v1/models?client_version=0.94.0"
    assert seen[0].headers["originator"] == "t"
    assert [m.slug for m in fetched.models] == [m["slug"] for m in REMOTE["models_body"]["models"]]
    assert fetched.etag == '"abc"'


async def test_server_errors_are_retried_and_client_errors_are_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    statuses: list[int] = []

    def failing(status: int) -> Any:
        def handler(request: httpx.Request) -> httpx.Response:
            statuses.append(status)
            return httpx.Response(status, json={"error": {"message": "no"}})

        return handler

    with pytest.raises(ModelsFetchError, match="unexpected status 404"):
        await fetch_with(failing(404))
    assert statuses == [404]
    statuses.clear()
    start = trio.current_time()
    with pytest.raises(ModelsFetchError, match="unexpected status 500"):
        await fetch_with(failing(500))
    # Five attempts, as the reference's OpenAI provider makes, with backoff between them.
    assert statuses == [500] * 5
    assert 2.5 < trio.current_time() - start < 3.5


async def test_an_endpoint_that_never_answers_is_given_up_on(autojump_clock: trio.testing.MockClock) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    start = trio.current_time()
    with pytest.raises(ModelsFetchError, match="timed out after 5s"):
        await fetch_with(handler)
    assert trio.current_time() - start == pytest.approx(5.0)


# ---- the skill file reader ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: b\nc: 'd''e'\n", {"a": "b", "c": "d'e"}),
        ('a: "x\\ty \\u00e9"\n', {"a": "x\ty \u00e9"}),
        ("a: |\n  one\n  two\n\nb: x\n", {"a": "one\ntwo\n", "b": "x"}),
        ("a: |-\n  one\n   two\n", {"a": "one\n two"}),
        ("a: >\n  one\n  two\n\n  three\n", {"a": "one two\nthree\n"}),
        ("a: plain\n  continued # comment\nb: 1\n", {"a": "plain continued", "b": "1"}),
        ("a: [x, 'y, z', {k: v}]\n", {"a": ["x", "y, z", {"k": "v"}]}),
        ("a:\n- one\n- two: 2\n  three: 3\nb: ~\n", {"a": ["one", {"two": "2", "three": "3"}], "b": None}),
        ("a:\n  b:\n    c: d # note\n# only a comment\n", {"a": {"b": {"c": "d"}}}),
        ("a: http://x.y/z#frag\n", {"a": "http://x.y/z#frag"}),
        ("a: [one,\n  two]\n", {"a": ["one", "two"]}),
    ],
)
def test_yaml_documents(text: str, expected: Any) -> None:
    def plain(node: Any) -> Any:
        if node.kind == "map":
            return {k: plain(v) for k, v in node.value.items()}
        if node.kind == "seq":
            return [plain(v) for v in node.value]
        return node.value

    assert plain(parse_yaml(text)) == expected


@pytest.mark.parametrize(
    "text",
    ["a: b: c\n", "a: x\n b: y\n", "a: 'open\n", "a: *ref\n", "a: 1\na: 2\n", "- a\nb: c\n", "a: @x\n"],
)
def test_invalid_yaml_is_refused(text: str) -> None:
    with pytest.raises(YamlError):
        parse_yaml(text)


def test_front_matter_is_found_as_rust_splits_lines() -> None:
    assert extract_frontmatter("---\r\nname: x\r\n---\r\nbody") == "name: x"
    assert extract_frontmatter("  ---  \nname: x\n---") == "name: x"
    assert extract_frontmatter("---\n---\n") is None
    assert extract_frontmatter("---\nname: x\n") is None
    assert extract_frontmatter("\ufeff---\nname: x\n---\n") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\nname: [a, b]\ndescription: d\n---\n",
         "invalid YAML: name: invalid type: sequence, expected a string at line 1 column 7"),
        ("---\nname: [unclosed\ndescription: x\n---\n",
         "invalid YAML: name: invalid type: sequence, expected a string at line 1 column 7"),
        ("---\ndescription: x\n---\n", "invalid YAML: missing field `name`"),
        ("---\nname: x\n---\n", "invalid YAML: missing field `description`"),
        ("---\nname: '  '\ndescription: x\n---\n", "missing field `name`"),
        ("---\nname: n\ndescription: x\nmetadata:\n  short-description: ''\n---\n", None),
        ("---\nname: " + "é" * 65 + "\ndescription: x\n---\n",
         "invalid name: exceeds maximum length of 64 characters"),
        ("no front matter", "missing YAML frontmatter delimited by ---"),
        ("---\nname: n\ndescription: x\nmetadata: [1]\n---\n",
         "invalid YAML: metadata: invalid type: sequence, expected struct SkillFrontmatterMetadata "
         "at line 3 column 11"),
    ],
)
def test_skill_files_fail_with_the_references_messages(
    tmp_path: Path, text: str, message: str | None
) -> None:
    path = tmp_path / "SKILL.md"
    path.write_text(text, encoding="utf-8")
    if message is None:
        assert parse_skill_file(path, "user").short_description is None
        return
    with pytest.raises(SkillParseError) as caught:
        parse_skill_file(path, "user")
    assert str(caught.value) == message


def test_system_skills_are_not_reported_and_symlinks_not_followed(tmp_path: Path) -> None:
    system = tmp_path / "skills" / ".system"
    (system / "broken").mkdir(parents=True)
    (system / "broken" / "SKILL.md").write_text("nothing", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "SKILL.md").write_text("---\nname: o\ndescription: d\n---\n", encoding="utf-8")
    os.symlink(outside, system / "linked")
    outcome = discover_skills([(system, "system")])
    assert (outcome.skills, outcome.errors) == ([], [])
    outcome = discover_skills([(tmp_path / "skills", "user")])
    assert outcome.skills == [] and outcome.errors == []


# ---- skills/config/write --------------------------------------------------------------------------


@pytest.mark.parametrize("sequence", ["plain_writes", "symlinked_skill", "existing_skills_table"])
def test_config_toml_changes_like_the_references(tmp_path: Path, sequence: str) -> None:
    data = fixture("skills_config_write.json")
    target = tmp_path / "outside" / "linked"
    target.mkdir(parents=True)
    (target / "SKILL.md").write_text("---\nname: l\ndescription: d\n---\n", encoding="utf-8")
    os.symlink(target, tmp_path / "link")
    places = {
        "{base}": data["base"],
        "{link}": str(tmp_path / "link" / "SKILL.md"),
        "{target}": str(target / "SKILL.md"),
    }

    def fill(text: str) -> str:
        for key, value in places.items():
            text = text.replace(key, value)
        return text

    config = tmp_path / "config.toml"
    steps = data["sequences"][sequence]
    config.write_text(fill(steps["initial"]), encoding="utf-8")
    for step in steps["steps"]:
        for op in step["ops"]:
            params = op["params"]
            set_skill_enabled(config, fill(params["path"]), params["enabled"])
        assert config.read_text(encoding="utf-8") == fill(step["after"])
