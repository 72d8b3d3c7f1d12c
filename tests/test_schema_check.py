"""The protocol validator must accept what the reference sends and reject what it would not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from schema_check import (
    RESPONSE_SCHEMA_EXCEPTIONS,
    SCHEMA_DIR,
    ProtocolValidator,
    ProtocolViolation,
    client_request_methods,
    load_schema,
    response_schema_for,
    response_schemas,
)

THREAD_ID = "019aa1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"

THREAD = {
    "id": THREAD_ID,
    "preview": "",
    "modelProvider": "mock_provider",
    "createdAt": 1763733600,
    "updatedAt": 1763733600,
    "path": f"/home/u/.codex/sessions/2025/11/21/rollout-2025-11-21T14-00-00-{THREAD_ID}.jsonl",
    "cwd": "/home/u/project",
    "cliVersion": "0.94.0",
    "source": "vscode",
    "gitInfo": None,
    "turns": [],
}

THREAD_START_RESULT = {
    "thread": THREAD,
    "model": "mock-model",
    "modelProvider": "mock_provider",
    "cwd": "/home/u/project",
    "approvalPolicy": "untrusted",
    "sandbox": {
        "type": "workspaceWrite",
        "writableRoots": [],
        "networkAccess": False,
        "excludeTmpdirEnvVar": False,
        "excludeSlashTmp": False,
    },
    "reasoningEffort": None,
}


INITIALIZE = {
    "id": 1,
    "method": "initialize",
    "params": {"clientInfo": {"name": "harness", "version": "0.0.1"}},
}
USER_AGENT = "harness/0.94.0 (Debian 12.0.0; x86_64) xterm (harness; 0.0.1)"


def legacy(event_type: str, msg: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": f"codex/event/{event_type}",
        "params": {"id": "0", "msg": msg, "conversationId": THREAD_ID},
    }


def initialized_validator(**kwargs: Any) -> ProtocolValidator:
    v = ProtocolValidator(**kwargs)
    v.observe_client(INITIALIZE)
    v.check_server({"id": 1, "result": {"userAgent": USER_AGENT}})
    v.observe_client({"method": "initialized"})
    return v


# -- responses ------------------------------------------------------------------------------------


def test_initialize_response_passes() -> None:
    v = ProtocolValidator()
    v.observe_client(INITIALIZE)
    kind = v.check_server({"id": 1, "result": {"userAgent": USER_AGENT}})
    assert kind == "response"
    assert v.unanswered_client_requests == []


def test_initialize_response_without_user_agent_fails() -> None:
    v = ProtocolValidator()
    v.observe_client(INITIALIZE)
    expected = r"v1/InitializeResponse\.json[\s\S]*'userAgent' is a required"
    with pytest.raises(ProtocolViolation, match=expected):
        v.check_server({"id": 1, "result": {}})


def test_result_is_checked_against_the_method_of_its_id() -> None:
    v = initialized_validator()
    v.observe_client({"id": 2, "method": "thread/start", "params": {"approvalPolicy": "untrusted"}})
    bad = copy.deepcopy(THREAD_START_RESULT)
    bad["sandbox"] = "workspace-write"  # the request spelling; the response uses the tagged object
    with pytest.raises(ProtocolViolation) as info:
        v.check_server({"id": 2, "result": bad})
    text = str(info.value)
    assert "response to 'thread/start'" in text
    assert "v2/ThreadStartResponse.json" in text
    assert "$.result.sandbox" in text

    v.observe_client({"id": 3, "method": "thread/start", "params": {}})
    assert v.check_server({"id": 3, "result": THREAD_START_RESULT}) == "response"


def test_string_ids_are_echoed_and_distinct_from_integers() -> None:
    v = initialized_validator()
    v.observe_client({"id": "abc", "method": "thread/archive", "params": {"threadId": THREAD_ID}})
    v.check_server({"id": "abc", "result": {}})
    v.observe_client({"id": "7", "method": "thread/archive", "params": {"threadId": THREAD_ID}})
    with pytest.raises(ProtocolViolation, match="replies to id 7, which matches no request"):
        v.check_server({"id": 7, "result": {}})


def test_response_for_unknown_id_fails_in_strict_mode() -> None:
    v = initialized_validator()
    v.observe_client({"id": 5, "method": "model/list", "params": {}})
    with pytest.raises(ProtocolViolation) as info:
        v.check_server({"id": 99, "result": {"data": [], "nextCursor": None}})
    assert "replies to id 99, which matches no request the client sent" in str(info.value)
    assert "unanswered client request ids: [5]" in str(info.value)


def test_response_for_unknown_id_is_only_shape_checked_when_not_strict() -> None:
    v = initialized_validator(strict=False)
    assert v.check_server({"id": 99, "result": {"anything": 1}}) == "response"
    with pytest.raises(ProtocolViolation, match=r"JSONRPCResponse\.json"):
        v.check_server({"id": None, "result": {}})


def test_second_response_to_the_same_request_fails() -> None:
    v = initialized_validator()
    v.observe_client({"id": 2, "method": "thread/loaded/list", "params": {}})
    v.check_server({"id": 2, "result": {"data": [THREAD_ID], "nextCursor": None}})
    with pytest.raises(ProtocolViolation, match="replies to id 2, which was already answered"):
        v.check_server({"id": 2, "result": {"data": [], "nextCursor": None}})
    # Once answered, the client may use the id again.
    v.observe_client({"id": 2, "method": "thread/loaded/list", "params": {}})
    v.check_server({"id": 2, "result": {"data": [], "nextCursor": None}})


def test_model_list_keeps_the_description_property() -> None:
    v = initialized_validator()
    v.observe_client({"id": 2, "method": "model/list", "params": {}})
    model = {
        "id": "mock-model",
        "model": "mock-model",
        "displayName": "mock-model",
        "description": "A model for tests.",
        "supportedReasoningEfforts": [{"reasoningEffort": "medium", "description": "Balanced."}],
        "defaultReasoningEffort": "medium",
        "supportsPersonality": False,
        "isDefault": True,
    }
    v.check_server({"id": 2, "result": {"data": [model], "nextCursor": None}})

    v.observe_client({"id": 3, "method": "model/list", "params": {}})
    without = {k: val for k, val in model.items() if k != "description"}
    with pytest.raises(ProtocolViolation, match="'description' is a required property"):
        v.check_server({"id": 3, "result": {"data": [without], "nextCursor": None}})


def test_result_for_a_method_outside_the_protocol_fails_but_an_error_passes() -> None:
    v = initialized_validator()
    v.observe_client({"id": 2, "method": "bogus/method", "params": {}})
    with pytest.raises(ProtocolViolation, match="'bogus/method', which is no ClientRequest method"):
        v.check_server({"id": 2, "result": {}})

    v.observe_client({"id": 3, "method": "bogus/method", "params": {}})
    error = {"code": -32600, "message": "Invalid request: unknown variant `bogus/method`"}
    assert v.check_server({"error": error, "id": 3}) == "error"


# -- errors ---------------------------------------------------------------------------------------


def test_error_shape_is_checked() -> None:
    v = initialized_validator()
    v.observe_client({"id": 2, "method": "config/value/write", "params": {}})
    v.check_server(
        {
            "error": {
                "code": -32600,
                "message": "Configuration was modified since last read.",
                "data": {"config_write_error_code": "configVersionConflict"},
            },
            "id": 2,
        }
    )
    v.observe_client({"id": 3, "method": "thread/read", "params": {"threadId": "nope"}})
    with pytest.raises(ProtocolViolation, match=r"JSONRPCError\.json[\s\S]*\$\.error\.code"):
        v.check_server({"error": {"code": "-32600", "message": "invalid thread id"}, "id": 3})


def test_error_for_unknown_id_fails() -> None:
    v = initialized_validator()
    with pytest.raises(ProtocolViolation, match="replies to id 42"):
        v.check_server({"error": {"code": -32600, "message": "Not initialized"}, "id": 42})


# -- framing --------------------------------------------------------------------------------------


def test_jsonrpc_key_fails_even_on_an_otherwise_valid_message() -> None:
    v = ProtocolValidator()
    v.observe_client(INITIALIZE)
    with pytest.raises(ProtocolViolation, match='carries a "jsonrpc" key'):
        v.check_server({"jsonrpc": "2.0", "id": 1, "result": {"userAgent": USER_AGENT}})


@pytest.mark.parametrize(
    "msg",
    [
        {"id": 1, "result": {}, "error": {"code": 1, "message": "x"}},
        {"id": 1},
        {"params": {}},
        {"method": "thread/started", "params": {"thread": THREAD}, "extra": 1},
        [],
        "text",
    ],
    ids=["result-and-error", "bare-id", "params-only", "extra-key", "array", "string"],
)
def test_non_message_shapes_fail(msg: Any) -> None:
    v = initialized_validator(strict=False)
    with pytest.raises(ProtocolViolation, match="server message #2"):
        v.check_server(msg)


def test_check_all_names_the_offending_message() -> None:
    v = initialized_validator()
    good = {"method": "thread/started", "params": {"thread": THREAD}}
    bad = {"method": "thread/started", "params": {}}
    with pytest.raises(ProtocolViolation, match="server message #4 "):
        v.check_all([good, good, bad, good])


# -- notifications --------------------------------------------------------------------------------


def test_thread_started_passes() -> None:
    v = initialized_validator()
    assert v.check_server({"method": "thread/started", "params": {"thread": THREAD}}) == "notification"


def test_thread_started_without_thread_fails() -> None:
    v = initialized_validator()
    with pytest.raises(ProtocolViolation) as info:
        v.check_server({"method": "thread/started", "params": {}})
    text = str(info.value)
    assert "notification 'thread/started'" in text
    assert "ServerNotification.json#/oneOf/" in text
    assert "'thread' is a required property" in text
    assert "at $.params:" in text


def test_unknown_notification_method_fails() -> None:
    v = initialized_validator()
    with pytest.raises(ProtocolViolation, match="'thread/exploded', which is not a ServerNotification"):
        v.check_server({"method": "thread/exploded", "params": {"threadId": THREAD_ID}})


def test_v2_error_notification_uses_camel_case_error_info() -> None:
    v = initialized_validator()
    params: dict[str, Any] = {
        "error": {
            "message": "server overloaded",
            "codexErrorInfo": "internalServerError",
            "additionalDetails": None,
        },
        "willRetry": False,
        "threadId": THREAD_ID,
        "turnId": "0",
    }
    v.check_server({"method": "error", "params": params})
    snake = copy.deepcopy(params)
    snake["error"]["codexErrorInfo"] = "internal_server_error"
    with pytest.raises(ProtocolViolation, match=r"\$\.params\.error\.codexErrorInfo"):
        v.check_server({"method": "error", "params": snake})


def test_many_deltas_validate() -> None:
    v = initialized_validator()
    delta = {
        "method": "item/agentMessage/delta",
        "params": {"threadId": THREAD_ID, "turnId": "0", "itemId": "msg_1", "delta": "x"},
    }
    v.check_all([delta] * 2000)
    assert v.messages_checked == 2001


# -- legacy codex/event stream ---------------------------------------------------------------------


def test_legacy_task_started_passes() -> None:
    v = initialized_validator()
    msg = {"type": "task_started", "model_context_window": None, "collaboration_mode_kind": "custom"}
    assert v.check_server(legacy("task_started", msg)) == "legacy_event"


def test_legacy_task_started_with_wrong_msg_fails() -> None:
    v = initialized_validator()
    msg = {"type": "task_started", "model_context_window": "large"}
    with pytest.raises(ProtocolViolation, match=r"\$\.params\.msg\.model_context_window"):
        v.check_server(legacy("task_started", msg))


def test_legacy_method_must_match_msg_type() -> None:
    v = initialized_validator()
    msg = {"type": "task_complete", "last_agent_message": "done"}
    with pytest.raises(ProtocolViolation, match=r"params\.msg\.type is 'task_complete'"):
        v.check_server(legacy("task_started", msg))


def test_legacy_event_params_are_exactly_id_msg_conversation_id() -> None:
    v = initialized_validator()
    startup = {"type": "mcp_startup_complete", "ready": [], "failed": [], "cancelled": []}
    good = legacy("mcp_startup_complete", startup)
    good["params"]["id"] = ""
    v.check_server(good)

    missing = copy.deepcopy(good)
    del missing["params"]["conversationId"]
    with pytest.raises(ProtocolViolation, match="'conversationId' is a required property"):
        v.check_server(missing)

    extra = copy.deepcopy(good)
    extra["params"]["threadId"] = THREAD_ID
    with pytest.raises(ProtocolViolation, match="Additional properties are not allowed"):
        v.check_server(extra)


def test_unknown_legacy_event_type_fails() -> None:
    v = initialized_validator()
    with pytest.raises(ProtocolViolation, match="'turn_exploded', which is no EventMsg type"):
        v.check_server(legacy("turn_exploded", {"type": "turn_exploded"}))


def test_legacy_error_uses_snake_case_error_info() -> None:
    # The bundled schema gets this wrong (camelCase), which is why EventMsg.json is used.
    v = initialized_validator()
    msg = {"type": "error", "message": "server overloaded", "codex_error_info": "internal_server_error"}
    v.check_server(legacy("error", msg))
    msg["codex_error_info"] = "internalServerError"
    with pytest.raises(ProtocolViolation, match=r"\$\.params\.msg\.codex_error_info"):
        v.check_server(legacy("error", msg))


# -- server -> client requests ----------------------------------------------------------------------


APPROVAL_REQUEST: dict[str, Any] = {
    "method": "item/commandExecution/requestApproval",
    "id": 0,
    "params": {
        "threadId": THREAD_ID,
        "turnId": "0",
        "itemId": "call_1",
        "reason": None,
        "command": "bash -lc 'mkdir -p made'",
        "cwd": "/home/u/project",
        "commandActions": [{"type": "unknown", "command": "mkdir -p made"}],
        "proposedExecpolicyAmendment": ["mkdir", "-p", "made"],
    },
}


def test_server_request_is_validated_and_tracked() -> None:
    v = initialized_validator()
    assert v.check_server(APPROVAL_REQUEST) == "server_request"
    assert v.unanswered_server_requests == [(0, "item/commandExecution/requestApproval")]

    with pytest.raises(ProtocolViolation, match="reuses id 0 of the unanswered server request"):
        v.check_server(APPROVAL_REQUEST)

    v.observe_client({"id": 0, "result": {"decision": "accept"}})
    assert v.unanswered_server_requests == []
    v.check_server({**APPROVAL_REQUEST, "id": 1})


def test_server_request_with_bad_params_fails() -> None:
    v = initialized_validator()
    bad = copy.deepcopy(APPROVAL_REQUEST)
    del bad["params"]["itemId"]
    with pytest.raises(ProtocolViolation, match=r"server request[\s\S]*'itemId' is a required property"):
        v.check_server(bad)


def test_unknown_server_request_method_fails() -> None:
    v = initialized_validator()
    with pytest.raises(ProtocolViolation, match="'item/tool/unknown', which is not a ServerRequest"):
        v.check_server({"method": "item/tool/unknown", "id": 0, "params": {}})


# -- the vendored schema and the method -> response mapping -----------------------------------------


def test_every_client_request_method_has_a_response_schema() -> None:
    mapping = response_schemas()
    assert set(mapping) == client_request_methods()
    for rel in mapping.values():
        assert (SCHEMA_DIR / rel).is_file(), rel
    assert response_schema_for("thread/start") == "v2/ThreadStartResponse.json"
    assert response_schema_for("initialize") == "v1/InitializeResponse.json"
    assert response_schema_for("fuzzyFileSearch") == "FuzzyFileSearchResponse.json"
    assert response_schema_for("bogus/method") is None


def test_every_response_type_is_reachable_from_a_method() -> None:
    used = set(response_schemas().values())
    generated = {
        str(path.relative_to(SCHEMA_DIR))
        for sub in ("v1", "v2")
        for path in (SCHEMA_DIR / sub).glob("*Response.json")
    }
    assert generated - used == set()


def test_every_exception_is_needed() -> None:
    request = load_schema("ClientRequest.json")
    params_of = {
        branch["properties"]["method"]["enum"][0]: branch["properties"]["params"].get("$ref", "")
        for branch in request["oneOf"]
    }
    for method, rel in RESPONSE_SCHEMA_EXCEPTIONS.items():
        assert method in params_of, method
        response_stem = Path(rel).name[: -len("Response.json")]
        params_stem = params_of[method].rsplit("/", 1)[-1][: -len("Params")]
        assert params_stem != response_stem, f"{method} follows the naming rule"


def _description_keywords(node: Any, in_properties: bool = False) -> int:
    if isinstance(node, dict):
        found = 0
        for key, value in node.items():
            if key == "description" and not in_properties:
                found += 1
            found += _description_keywords(value, key == "properties")
        return found
    if isinstance(node, list):
        return sum(_description_keywords(item) for item in node)
    return 0


def test_vendored_schema_has_no_prose_but_keeps_description_properties() -> None:
    files = sorted(SCHEMA_DIR.rglob("*.json"))
    assert len(files) == 160
    for path in files:
        assert _description_keywords(json.loads(path.read_text(encoding="utf-8"))) == 0, path
    model = load_schema("v2/ModelListResponse.json")["definitions"]["Model"]
    assert "description" in model["properties"]
    assert "description" in model["required"]
