"""Syntax errors in TOML files read like the reference's (Codex CLI 0.94.0, whose Rust TOML crates word
and place them): the message, the range a client gets in ``configWarning`` and the "<file>:L:C:" prefix,
and the "TOML parse error at line N, column M" snippet of config writes and requirements.

Every expectation in tests/fixtures/toml_errors/cases.json was captured from the reference: the
``configWarning`` it sent after ``initialize`` for a config.toml holding the text, and its
``setDefaultModel`` error for the same file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from schema_check import ProtocolValidator

from codex_trio.core.config import (
    ConfigError,
    TextPosition,
    TextRange,
    parse_config_text,
    toml_syntax_error_snippet,
)
from codex_trio.core.toml_errors import find_syntax_error
from codex_trio.testing.harness import open_server

FIXTURE = Path(__file__).parent / "fixtures" / "toml_errors" / "cases.json"
CASES: list[dict[str, Any]] = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]
REJECTED = [case for case in CASES if case["reference"] is not None]
ACCEPTED = [case for case in CASES if case["reference"] is None]


def test_the_fixture_covers_the_mistakes_people_make() -> None:
    names = {case["name"] for case in CASES}
    for name in ("unclosed_array_eof", "bare_word", "duplicate_table", "windows_path", "crlf_error",
                 "bom_error_line1", "non_ascii_before_error", "deep_in_long_file", "missing_value_eof"):
        assert name in names
    assert len(REJECTED) >= 150


@pytest.mark.parametrize("case", REJECTED, ids=[case["name"] for case in REJECTED])
def test_a_syntax_error_names_the_references_message_and_range(case: dict[str, Any], tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    expected = case["reference"]
    (line, column), (end_line, end_column) = expected["range"]
    with pytest.raises(ConfigError) as info:
        parse_config_text(case["text"], file, {})
    assert str(info.value) == f"{file}:{line}:{column}: {expected['message']}"
    assert info.value.message == expected["message"]
    assert info.value.file == file
    assert info.value.range == TextRange(TextPosition(line, column), TextPosition(end_line, end_column))


@pytest.mark.parametrize("case", REJECTED, ids=[case["name"] for case in REJECTED])
def test_a_syntax_error_snippet_is_laid_out_like_the_toml_crates(
    case: dict[str, Any], tmp_path: Path
) -> None:
    snippet = toml_syntax_error_snippet(case["text"], tmp_path / "config.toml")
    assert snippet == case["reference"]["snippet"]


@pytest.mark.parametrize("case", ACCEPTED, ids=[case["name"] for case in ACCEPTED])
def test_no_reference_wording_is_made_up_for_texts_the_reference_accepts(case: dict[str, Any]) -> None:
    # TOML 1.1 additions (newlines and trailing commas in inline tables, \e and \x escapes, times
    # without seconds) and a leading byte order mark: tomllib rejects them, the reference does not.
    assert find_syntax_error(case["text"]) is None


def test_a_valid_text_has_no_snippet(tmp_path: Path) -> None:
    text = 'model = "m"\r\n[tools]\nweb_search = true\n'
    assert toml_syntax_error_snippet(text, tmp_path / "config.toml") is None


def test_columns_count_characters_and_carets_count_bytes(tmp_path: Path) -> None:
    # The crates count columns in characters but measure the highlighted span in bytes.
    text = 'instructions = "日本語"\nmodel = gpt\nenabled = falseé\n'
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, tmp_path / "config.toml", {})
    assert info.value.range == TextRange(TextPosition(2, 9), TextPosition(2, 11))
    assert toml_syntax_error_snippet(text.replace("gpt", '"gpt"'), tmp_path / "config.toml") == (
        "TOML parse error at line 3, column 11\n"
        "  |\n"
        "3 | enabled = falseé\n"
        "  |           ^^^^^^^\n"
        "invalid boolean, expected `false`\n"
    )


async def test_a_server_started_with_a_config_syntax_error_warns_with_the_references_range(
    tmp_path: Path,
) -> None:
    codex_home = tmp_path / "codex_home"
    codex_home.mkdir()
    config = codex_home / "config.toml"
    config.write_text('model = "m"\napproval_policy = [\n', encoding="utf-8")
    real = config.resolve()
    problem = f"{real}:2:21: unclosed array, expected `]`"
    async with open_server(codex_home=codex_home, validator=ProtocolValidator()) as srv:
        await srv.call_result("initialize", {"clientInfo": {"name": "c", "version": "1"}})
        assert await srv.receive() == {
            "method": "configWarning",
            "params": {
                "summary": "Invalid configuration; using defaults.",
                "details": problem,
                "path": str(real),
                "range": {"start": {"line": 2, "column": 21}, "end": {"line": 2, "column": 21}},
            },
        }
        await srv.notify("initialized")
        reply = await srv.call("thread/start", {})
        assert reply["error"] == {"code": -32600, "message": f"error deriving config: {problem}"}
        reply = await srv.call("config/read", {})
        assert reply["error"] == {
            "code": -32603,
            "message": f"failed to read configuration layers: {problem}",
        }
        reply = await srv.call("setDefaultModel", {"model": "x", "reasoningEffort": None})
        assert reply["error"] == {
            "code": -32603,
            "message": "failed to persist model selection: TOML parse error at line 2, column 21\n"
            "  |\n"
            "2 | approval_policy = [\n"
            "  |                     ^\n"
            "unclosed array, expected `]`\n",
        }
