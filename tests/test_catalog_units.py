"""The pure parts behind the catalogue methods: the model catalogue and its cache, paging, the skill
file reader and the config.toml edits of skills/config/write. Expectations come from the reference's
answers (tests/fixtures/catalog/) and from probing its decoder with one change at a time."""

from __future__ import annotations

import json
import logging
import math
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import yaml

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
    YamlNode,
    discover_skills,
    extract_frontmatter,
    load_skill_metadata,
    parse_skill_file,
    parse_yaml,
    set_skill_enabled,
    yaml_core_loader,
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

LIBYAML = pytest.mark.skipif(
    not yaml.__with_libyaml__, reason="syntax errors read like the reference's only with PyYAML's libyaml"
)


def plain_value(node: YamlNode) -> Any:
    if node.kind == "map":
        pairs = zip(node.items[::2], node.items[1::2], strict=True)
        return {key.value: plain_value(value) for key, value in pairs}
    if node.kind == "seq":
        return [plain_value(item) for item in node.items]
    return None if node.tag == "tag:yaml.org,2002:null" else node.value


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
        ("a: &x [1]\nb: *x\n", {"a": ["1"], "b": ["1"]}),
    ],
)
def test_yaml_documents(text: str, expected: Any) -> None:
    document = parse_yaml(text)
    assert plain_value(document.root) == expected
    assert not document.more


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # YAML 1.1 (PyYAML's own schema) would read these as booleans, numbers or dates.
        ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("y", "y"),
        ("2001-12-14", "2001-12-14"), ("017", "017"), ("1_000", "1_000"), ("12:30", "12:30"),
        ("0X1F", "0X1F"), ("<<", "<<"), ("=", "="), ("++.inf", "++.inf"), ("inf", "inf"),
        ("true", True), ("True", True), ("FALSE", False),
        ("~", None), ("null", None), ("Null", None), ("NULL", None), ("", None),
        ("0", 0), ("-0", 0), ("+12", 12), ("0o17", 15), ("0x1F", 31), ("-0x1F", -31), ("0b101", 5),
        ("1.", 1.0), (".5", 0.5), ("1e5", 100000.0), ("-1.5E-3", -0.0015),
        (".inf", math.inf), ("+.INF", math.inf), ("-.Inf", -math.inf),
        ("'true'", "true"), ('"0x1F"', "0x1F"),
    ],
)
@pytest.mark.parametrize("libyaml", [True, False])
def test_the_loader_reads_plain_scalars_as_serde_yaml_does(
    monkeypatch: pytest.MonkeyPatch, libyaml: bool, text: str, value: Any
) -> None:
    if libyaml and not yaml.__with_libyaml__:
        pytest.skip("PyYAML was built without libyaml")
    monkeypatch.setattr(yaml, "__with_libyaml__", libyaml)
    loader = yaml_core_loader()
    assert issubclass(loader, yaml.CSafeLoader if libyaml else yaml.SafeLoader)
    loaded = yaml.load(f"key: {text}\n", Loader=loader)
    assert loaded == {"key": value}
    assert type(loaded["key"]) is type(value)
    assert math.isnan(yaml.load("key: .NaN", Loader=loader)["key"])


def test_a_break_is_raised_when_nothing_before_it_could_be_read() -> None:
    for text in ("]", "*nowhere"):
        with pytest.raises(YamlError):
            parse_yaml(text)
    # Otherwise the collections it cuts short carry it, and what was read before it is kept.
    document = parse_yaml("a: b\nc: [x\n")
    assert plain_value(document.root) == {"a": "b", "c": ["x"]}
    [_, b, _, x] = document.root.items
    assert document.root.broken is not None and x.broken is document.root.broken
    assert b.broken is None


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


# The reference's answers (codex 0.94.0, skills/list) for these front matters: a dict for a skill it
# lists, else the error it gives. serde_yaml takes any scalar where a string is wanted, names the type of
# a wrong value by YAML 1.2's core schema, decodes as far as the parser got before a syntax error, and
# leaves the position out at line 1 column 1.
BASE = "name: x\ndescription: y\n"
METADATA_STRUCT = "expected struct SkillFrontmatterMetadata"
FRONT_MATTER: list[Any] = [
    ("name: ~\ndescription: true", {"name": "~", "description": "true"}),
    ("name: 0x1F\ndescription: !!str 5", {"name": "0x1F", "description": "5"}),
    ("name: &a x\ndescription: *a", {"name": "x", "description": "x"}),
    (BASE + "metadata:\n  short-description: 12", {"name": "x", "shortDescription": "12"}),
    (BASE + "metadata: {short-description: NULL}", {"name": "x", "shortDescription": None}),
    (BASE + "metadata:", {"name": "x", "shortDescription": None}),
    (BASE + "metadata: &m\n  short-description: s\nfoo: *m", {"shortDescription": "s"}),
    (BASE + "? complex\n: value\nfoo: [" + "[" * 200 + "]" * 201, {"name": "x"}),
    ("name:\ndescription: x", "missing field `name`"),
    ("# only a comment", "invalid YAML: missing field `name` at line 2 column 1"),
    ("\nname: x\nname: y\ndescription: z",
     "invalid YAML: duplicate field `name` at line 2 column 1"),
    (BASE + "metadata:\n  short-description: a\n  short-description: b",
     "invalid YAML: metadata: duplicate field `short-description` at line 4 column 3"),
    ("[a]: b\nname: x\ndescription: y",
     "invalid YAML: invalid type: sequence, expected field identifier"),
    ("just a string",
     'invalid YAML: invalid type: string "just a string", expected struct SkillFrontmatter'),
    ("name: {a: b}\ndescription: x",
     "invalid YAML: name: invalid type: map, expected a string at line 1 column 7"),
    (BASE + "metadata:\n  short-description: [a]", "invalid YAML: metadata.short-description: invalid type: "
     "sequence, expected a string at line 4 column 22"),
    (BASE + "metadata:\n  short-description: !!null x",
     'invalid YAML: metadata: invalid value: string "x", expected null at line 4 column 3'),
    *(
        (BASE + f"metadata: {value}", f"invalid YAML: metadata: {message} at line 3 column 11")
        for value, message in [
            ("5", "invalid type: integer `5`, " + METADATA_STRUCT),
            ("0b101", "invalid type: integer `5`, " + METADATA_STRUCT),
            ("-0x8000000000000000", "invalid type: integer `-9223372036854775808`, " + METADATA_STRUCT),
            ("0x10000000000000000", f"invalid type: integer `{2**64}` as u128, " + METADATA_STRUCT),
            ("-9223372036854775809", f"invalid type: integer `{-(2**63) - 1}` as i128, " + METADATA_STRUCT),
            # Too wide for 128 bits: a float.
            ("1234567890" * 4, "invalid type: floating point `12345678901234568" + "0" * 23 + ".0`, "
             + METADATA_STRUCT),
            ("True", "invalid type: boolean `true`, " + METADATA_STRUCT),
            ("~", "invalid type: unit value, " + METADATA_STRUCT),
            ("NULL", "invalid type: unit value, " + METADATA_STRUCT),
            ("-1e3", "invalid type: floating point `-1000.0`, " + METADATA_STRUCT),
            ("1e-7", "invalid type: floating point `0.0000001`, " + METADATA_STRUCT),
            ("-0.0", "invalid type: floating point `-0.0`, " + METADATA_STRUCT),
            (".NaN", "invalid type: floating point `NaN`, " + METADATA_STRUCT),
            ("+.inf", "invalid type: floating point `inf`, " + METADATA_STRUCT),
            ("1e400", 'invalid type: string "1e400", ' + METADATA_STRUCT),
            ("yes", 'invalid type: string "yes", ' + METADATA_STRUCT),
            ("007", 'invalid type: string "007", ' + METADATA_STRUCT),
            ("''", 'invalid type: string "", ' + METADATA_STRUCT),
            # Rust's Debug escapes.
            ('"a\\tb\\"c\u00e9\u00a0\\u0301\\\\"',
             'invalid type: string "a\\tb\\"c\u00e9\\u{a0}\\u{301}\\\\", ' + METADATA_STRUCT),
            ("!!int 5", "invalid type: integer `5`, " + METADATA_STRUCT),
            ("!!float 5", "invalid type: floating point `5.0`, " + METADATA_STRUCT),
            ("!!bool yes", 'invalid value: string "yes", expected a boolean'),
            ("!!int 017", 'invalid value: string "017", expected an integer'),
            ("!!float x", 'invalid value: string "x", expected a float'),
            ("!!null ''", 'invalid value: string "", expected null'),
        ]
    ),
    # A wrong type before the text breaks is what is reported; a break is reported once reached.
    ("name: [a]\ndescription: x\nbad: a: b",
     "invalid YAML: name: invalid type: sequence, expected a string at line 1 column 7"),
    ("name: x\ndescription: [\n ]\nfoo",
     "invalid YAML: description: invalid type: sequence, expected a string at line 2 column 14"),
    (BASE + "foo: *nope", "invalid YAML: unknown anchor at line 3 column 6"),
    ("*nope", "invalid YAML: unknown anchor"),
    (BASE + "...\nfoo: bar",
     "invalid YAML: deserializing from YAML containing more than one document is not supported"),
    ("{name: x, description: y} ]",
     "invalid YAML: deserializing from YAML containing more than one document is not supported"),
    pytest.param(BASE + "foo: [1, 2", "invalid YAML: did not find expected ',' or ']' at line 4 column 1, "
                 "while parsing a flow sequence at line 3 column 6", marks=LIBYAML),
    pytest.param("a: b: c", "invalid YAML: mapping values are not allowed in this context at line 1 column 5",
                 marks=LIBYAML),
    pytest.param("name: 'open\ndescription: x", "invalid YAML: found unexpected end of stream at line 2 "
                 "column 15, while scanning a quoted scalar at line 1 column 7", marks=LIBYAML),
    pytest.param("name: x\n\tdescription: y", "invalid YAML: found a tab character that violates "
                 "indentation at line 2 column 1, while scanning a plain scalar at line 1 column 7",
                 marks=LIBYAML),
    pytest.param('name: x\ndescription: "a\\x4"', "invalid YAML: did not find expected hexadecimal number at "
                 "line 2 column 18, while parsing a quoted scalar at line 2 column 14", marks=LIBYAML),
    pytest.param(BASE + "]", "invalid YAML: did not find expected key at line 3 column 1, while parsing a "
                 "block mapping", marks=LIBYAML),
    pytest.param("name: x\x01\ndescription: y",
                 "invalid YAML: control characters are not allowed at position 7", marks=LIBYAML),
    pytest.param("name: @x\ndescription: y", "invalid YAML: found character that cannot start any token at "
                 "line 1 column 7, while scanning for the next token", marks=LIBYAML),
]


@pytest.mark.parametrize(("text", "expected"), FRONT_MATTER)
def test_front_matter_is_decoded_as_the_reference_decodes_it(
    tmp_path: Path, text: str, expected: dict[str, Any] | str
) -> None:
    path = tmp_path / "SKILL.md"
    path.write_text(f"---\n{text}\n---\nbody\n", encoding="utf-8")
    if isinstance(expected, str):
        with pytest.raises(SkillParseError) as caught:
            parse_skill_file(path, "user")
        assert str(caught.value) == expected
        return
    shown = parse_skill_file(path, "user").to_wire(enabled=True)
    shown.setdefault("shortDescription", None)
    assert {key: shown[key] for key in expected} == expected


# The reference's warnings for these agents/openai.yaml files (None: it lists the skill with what
# the file gives).
METADATA: list[Any] = [
    ("interface: 5", "interface: invalid type: integer `5`, expected struct Interface at line 1 column 12"),
    # The byte order mark counts as a column.
    ("\ufeffinterface: 5",
     "interface: invalid type: integer `5`, expected struct Interface at line 1 column 13"),
    ("interface: []", "interface: invalid type: sequence, expected struct Interface at line 1 column 12"),
    ("interface:\n  icon_small: [a]",
     "interface.icon_small: invalid type: sequence, expected path string at line 2 column 15"),
    ("interface:\n  display_name: [a",
     "interface.display_name: invalid type: sequence, expected a string at line 2 column 17"),
    ("interface:\n  display_name: A\n  display_name: B",
     "interface: duplicate field `display_name` at line 2 column 3"),
    ("dependencies:\n  tools: ~",
     "dependencies.tools: invalid type: unit value, expected a sequence at line 2 column 10"),
    ("dependencies:\n  tools:\n    type: env",
     "dependencies.tools: invalid type: map, expected a sequence at line 3 column 5"),
    ("dependencies:\n  tools:\n    - ~",
     "dependencies.tools[0]: invalid type: unit value, expected struct DependencyTool at line 3 column 7"),
    ("dependencies:\n  tools:\n    - type: a\n      type: b",
     "dependencies.tools[0]: duplicate field `type` at line 3 column 7"),
    ("dependencies:\n  tools:\n    - type: env_var\n      value: [a]",
     "dependencies.tools[0].value: invalid type: sequence, expected a string at line 4 column 14"),
    ("- a", "invalid type: sequence, expected struct SkillMetadataFile"),
    ("interface: {}\n...\n---\nfoo: 1",
     "deserializing from YAML containing more than one document is not supported"),
    pytest.param("interface:\n  display_name: 5\nfoo: [", "did not find expected node content at line 4 "
                 "column 1, while parsing a flow node", marks=LIBYAML),
    ("", None),
    ("# nothing", None),
    ("interface:\ndependencies:\n  tools:\npolicy: 5", None),
]


@pytest.mark.parametrize(("text", "warning"), METADATA)
def test_bad_metadata_files_are_logged_as_the_reference_logs_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, warning: str | None
) -> None:
    skill = tmp_path / "SKILL.md"
    (tmp_path / "agents").mkdir()
    metadata = tmp_path / "agents" / "openai.yaml"
    metadata.write_text(text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="codex_trio.core.skills"):
        assert load_skill_metadata(skill) == (None, None)
    expected = [] if warning is None else [f"ignoring {metadata}: invalid openai.yaml: {warning}"]
    assert [record.getMessage() for record in caplog.records] == expected


def test_metadata_values_are_read_as_the_reference_reads_them(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "openai.yaml").write_text(
        "interface: &i\n  display_name: yes\n  brand_color: '#ABCDEF'\n  short_description: NULL\n"
        "dependencies:\n  tools:\n    - type: mcp\n      value: 12\n      url: true\n      description: ~\n"
        "other: *i\n",
        encoding="utf-8",
    )
    interface, tools = load_skill_metadata(tmp_path / "SKILL.md")
    assert interface is not None
    assert (interface["displayName"], interface["brandColor"], interface["shortDescription"]) == (
        "yes", "#ABCDEF", None
    )
    assert tools == [{"type": "mcp", "value": "12", "url": "true"}]


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
