"""Checks every message the server emits against the vendored app-server protocol schema.

Usage in a test::

    v = ProtocolValidator()
    v.observe_client(request)          # everything the test sends
    v.check_server(reply)              # everything the server sends, in order

`check_server` raises `ProtocolViolation` (an AssertionError) naming the message, the schema and
the failing path. The schema files live in tests/schema/ (see its README); they are the per-type
files written by `codex app-server generate-json-schema`. The bundle
`codex_app_server_protocol.schemas.json` is vendored too but not used here: it merges the v1 and v2
namespaces and loses types whose names collide (its EventMsg carries the v2 camelCase
CodexErrorInfo, its v2 WebSearchAction the snake_case tags), while each per-type file is
self-contained and exact.

Compiled validators are cached per process: a test run validates tens of thousands of messages.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal, NoReturn

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

SCHEMA_DIR: Final = Path(__file__).resolve().parent / "schema"

# ClientRequest methods whose response type is not found by the naming rule
# "<dir>/<Name>Params.json -> <dir>/<Name>Response.json" (the params type has another stem, or
# the method takes no params at all). Taken from the client_request_definitions! table of
# codex-rs/app-server-protocol/src/protocol/common.rs; test_schema_check.py proves each entry
# is needed and the resulting mapping is total.
RESPONSE_SCHEMA_EXCEPTIONS: Final[Mapping[str, str]] = {
    # params: none
    "config/mcpServer/reload": "v2/McpServerRefreshResponse.json",
    "account/logout": "v2/LogoutAccountResponse.json",
    "account/rateLimits/read": "v2/GetAccountRateLimitsResponse.json",
    "configRequirements/read": "v2/ConfigRequirementsReadResponse.json",
    "loginChatGpt": "v1/LoginChatGptResponse.json",
    "logoutChatGpt": "v1/LogoutChatGptResponse.json",
    "getUserSavedConfig": "v1/GetUserSavedConfigResponse.json",
    "getUserAgent": "v1/GetUserAgentResponse.json",
    "userInfo": "v1/UserInfoResponse.json",
    # params and response named differently
    "config/value/write": "v2/ConfigWriteResponse.json",
    "config/batchWrite": "v2/ConfigWriteResponse.json",
    "addConversationListener": "v1/AddConversationSubscriptionResponse.json",
    "removeConversationListener": "v1/RemoveConversationSubscriptionResponse.json",
}

LEGACY_EVENT_PREFIX: Final = "codex/event/"

MessageKind = Literal["response", "error", "notification", "legacy_event", "server_request"]

_MAX_SHOWN = 600


class ProtocolViolation(AssertionError):
    """A server message that breaks the protocol schema or the request/response bookkeeping."""


# ---------------------------------------------------------------------------------------------
# Schema loading (cached per process; the files never change during a run)


@functools.cache
def load_schema(rel: str) -> dict[str, Any]:
    """The parsed schema file `rel` (a path relative to tests/schema/)."""
    with (SCHEMA_DIR / rel).open(encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{rel}: not a JSON object")
    return data


@functools.cache
def _validator(rel: str, pointer: str = "") -> Validator:
    """A compiled validator for the sub-schema at `pointer` (e.g. "/oneOf/3") of file `rel`.

    A sub-schema's `$ref`s point at the file's own `#/definitions`, so those are grafted onto it.
    """
    root = load_schema(rel)
    schema: Any = root
    for part in pointer.split("/")[1:]:
        schema = schema[int(part)] if isinstance(schema, list) else schema[part]
    if pointer:
        schema = {**schema, "definitions": root.get("definitions", {})}
    return _dialect(rel)(schema)


@functools.cache
def _dialect(rel: str) -> type[Validator]:
    """The validator class the file declares (draft-07 for all of them), after checking the file
    against that dialect's metaschema once."""
    root = load_schema(rel)
    cls: type[Validator] = validator_for(root, default=Draft7Validator)
    cls.check_schema(root)
    return cls


@functools.cache
def _variants(rel: str, tag: str) -> dict[str, int]:
    """tag value -> index in the file's top-level oneOf (a serde internally tagged enum)."""
    found: dict[str, int] = {}
    for index, branch in enumerate(load_schema(rel)["oneOf"]):
        values = branch["properties"][tag]["enum"]
        if len(values) != 1 or tag not in branch.get("required", ()):
            raise ValueError(f"{rel}#/oneOf/{index}: {tag!r} is not a required single-value tag")
        if values[0] in found:
            raise ValueError(f"{rel}: {tag} {values[0]!r} appears twice")
        found[values[0]] = index
    return found


def client_request_methods() -> frozenset[str]:
    return frozenset(_variants("ClientRequest.json", "method"))


def server_notification_methods() -> frozenset[str]:
    return frozenset(_variants("ServerNotification.json", "method"))


def server_request_methods() -> frozenset[str]:
    return frozenset(_variants("ServerRequest.json", "method"))


def event_msg_types() -> frozenset[str]:
    return frozenset(_variants("EventMsg.json", "type"))


@functools.cache
def response_schemas() -> Mapping[str, str]:
    """ClientRequest method -> its response schema file (relative to tests/schema/)."""
    mapping: dict[str, str] = {}
    request = load_schema("ClientRequest.json")
    for method, index in _variants("ClientRequest.json", "method").items():
        if method in RESPONSE_SCHEMA_EXCEPTIONS:
            rel = RESPONSE_SCHEMA_EXCEPTIONS[method]
        else:
            ref = request["oneOf"][index]["properties"]["params"].get("$ref")
            if not isinstance(ref, str) or not ref.endswith("Params"):
                raise LookupError(f"{method}: no params type to derive a response from; add it to "
                                  "RESPONSE_SCHEMA_EXCEPTIONS")
            stem = ref.rsplit("/", 1)[-1][: -len("Params")]
            params_file = f"{stem}Params.json"
            homes = [d for d in ("v2", "v1", ".") if (SCHEMA_DIR / d / params_file).is_file()]
            if len(homes) != 1:
                raise LookupError(f"{method}: {params_file} found in {homes or 'no directory'}")
            rel = str(PurePosixPath(homes[0], f"{stem}Response.json"))
        if not (SCHEMA_DIR / rel).is_file():
            raise LookupError(f"{method}: response schema {rel} does not exist")
        mapping[method] = rel
    return mapping


def response_schema_for(method: str) -> str | None:
    """The response schema file for a client request method, None if it is not a known method."""
    return response_schemas().get(method)


@functools.cache
def _legacy_event_validator(event_type: str) -> Validator:
    """Validator for the params of codex/event/<event_type>: {id, msg: EventMsg, conversationId}."""
    root = load_schema("EventMsg.json")
    branch = root["oneOf"][_variants("EventMsg.json", "type")[event_type]]
    schema = {
        "type": "object",
        "required": ["id", "msg", "conversationId"],
        # The reference serializes its Event {id, msg} and inserts conversationId: nothing else.
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "msg": branch,
            "conversationId": {"type": "string"},
        },
        "definitions": root.get("definitions", {}),
    }
    return _dialect("EventMsg.json")(schema)


# ---------------------------------------------------------------------------------------------
# Helpers


def _id_key(value: Any) -> str | None:
    """A hashable identity for a JSON-RPC id; "1" and 1 are different ids."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return json.dumps(value)


def _shown(msg: Any) -> str:
    try:
        text = json.dumps(msg, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(msg)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + f"... ({len(text)} chars)"


def _json_path(prefix: str, error: ValidationError) -> str:
    path = prefix
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _first_error(validator: Validator, instance: Any) -> tuple[ValidationError, int] | None:
    if validator.is_valid(instance):
        return None
    errors = list(validator.iter_errors(instance))
    best = best_match(errors)
    assert best is not None
    return best, len(errors)


# ---------------------------------------------------------------------------------------------


class ProtocolValidator:
    """Tracks one connection in both directions and validates what the server emits.

    strict: a response or error whose id matches no request the client sent (or one already
    answered) fails. With strict=False such replies are only checked for their generic shape.
    """

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self.messages_checked = 0
        # id key -> FIFO of (id, method): a client may send an id again, even before the reply.
        self._pending: dict[str, deque[tuple[Any, str]]] = {}
        self._answered: set[str] = set()
        # id key -> (id, method) of server->client requests the client has not answered yet.
        self._server_pending: dict[str, tuple[Any, str]] = {}

    # -- client side ---------------------------------------------------------------------------

    def observe_client(self, msg: Any) -> None:
        """Record a message the client sent. Malformed input (sent on purpose) is ignored."""
        if not isinstance(msg, Mapping) or "id" not in msg:
            return
        key = _id_key(msg["id"])
        if key is None:
            return
        if "method" in msg:
            method = msg["method"]
            method = method if isinstance(method, str) else repr(method)
            self._pending.setdefault(key, deque()).append((msg["id"], method))
            self._answered.discard(key)
        elif "result" in msg or "error" in msg:
            self._server_pending.pop(key, None)

    @property
    def unanswered_client_requests(self) -> list[tuple[Any, str]]:
        """(id, method) of client requests the server has not replied to yet."""
        return [entry for queue in self._pending.values() for entry in queue]

    @property
    def unanswered_server_requests(self) -> list[tuple[Any, str]]:
        """(id, method) of server->client requests the client has not answered yet."""
        return list(self._server_pending.values())

    # -- server side ---------------------------------------------------------------------------

    def check_all(self, messages: Iterable[Any]) -> None:
        for msg in messages:
            self.check_server(msg)

    def check_server(self, msg: Any) -> MessageKind:
        """Validate one message the server emitted; returns what kind of message it was."""
        self.messages_checked += 1
        label = f"server message #{self.messages_checked}"
        if not isinstance(msg, Mapping):
            self._fail(label, f"is a {type(msg).__name__}, not a JSON object", msg)
        if "jsonrpc" in msg:
            self._fail(label, 'carries a "jsonrpc" key; the reference server never sends it', msg)
        keys = set(msg)
        if keys == {"id", "result"}:
            self._check_response(label, msg)
            return "response"
        if keys == {"id", "error"}:
            self._check_error(label, msg)
            return "error"
        if {"id", "method"} <= keys <= {"id", "method", "params"}:
            self._check_server_request(label, msg)
            return "server_request"
        if "method" in keys and keys <= {"method", "params"}:
            method = msg["method"]
            if isinstance(method, str) and method.startswith(LEGACY_EVENT_PREFIX):
                self._check_legacy_event(label, msg, method[len(LEGACY_EVENT_PREFIX) :])
                return "legacy_event"
            self._check_notification(label, msg)
            return "notification"
        self._fail(label, f"is no JSON-RPC message shape (keys {sorted(keys)})", msg)

    def _check_response(self, label: str, msg: Mapping[str, Any]) -> None:
        self._validate(label, "response", _validator("JSONRPCResponse.json"), msg, "$", msg,
                       "JSONRPCResponse.json")
        method = self._take_pending(label, msg)
        if method is None:
            return
        rel = response_schema_for(method)
        if rel is None:
            self._fail(label, f"is a result for {method!r}, which is no ClientRequest method; "
                       "only an error may answer it", msg)
        self._validate(label, f"response to {method!r}", _validator(rel), msg["result"],
                       "$.result", msg, rel)

    def _check_error(self, label: str, msg: Mapping[str, Any]) -> None:
        self._validate(label, "error response", _validator("JSONRPCError.json"), msg, "$", msg,
                       "JSONRPCError.json")
        self._take_pending(label, msg)

    def _check_notification(self, label: str, msg: Mapping[str, Any]) -> None:
        method = msg["method"]
        index = _variants("ServerNotification.json", "method").get(method)
        if index is None:
            self._fail(label, f"has notification method {method!r}, which is not a "
                       "ServerNotification (nor codex/event/*)", msg)
        where = f"ServerNotification.json#/oneOf/{index}"
        self._validate(label, f"notification {method!r}",
                       _validator("ServerNotification.json", f"/oneOf/{index}"), msg, "$", msg,
                       where)

    def _check_legacy_event(self, label: str, msg: Mapping[str, Any], event_type: str) -> None:
        if event_type not in _variants("EventMsg.json", "type"):
            self._fail(label, f"is a legacy event {event_type!r}, which is no EventMsg type", msg)
        params = msg.get("params")
        inner = params.get("msg") if isinstance(params, Mapping) else None
        msg_type = inner.get("type") if isinstance(inner, Mapping) else None
        if msg_type != event_type:
            self._fail(label, f"is codex/event/{event_type} but its params.msg.type is "
                       f"{msg_type!r}", msg)
        self._validate(label, f"legacy event {event_type!r}", _legacy_event_validator(event_type),
                       params, "$.params", msg,
                       f"{{id, msg: EventMsg.json {event_type!r} variant, conversationId}}")

    def _check_server_request(self, label: str, msg: Mapping[str, Any]) -> None:
        method = msg["method"]
        index = _variants("ServerRequest.json", "method").get(method)
        if index is None:
            self._fail(label, f"is a request with method {method!r}, which is not a "
                       "ServerRequest", msg)
        self._validate(label, f"server request {method!r}",
                       _validator("ServerRequest.json", f"/oneOf/{index}"), msg, "$", msg,
                       f"ServerRequest.json#/oneOf/{index}")
        key = _id_key(msg["id"])
        assert key is not None  # RequestId was validated just above
        if key in self._server_pending:
            self._fail(label, f"reuses id {msg['id']!r} of the unanswered server request "
                       f"{self._server_pending[key][1]!r}", msg)
        self._server_pending[key] = (msg["id"], method)

    # -- bookkeeping and reporting ---------------------------------------------------------------

    def _take_pending(self, label: str, msg: Mapping[str, Any]) -> str | None:
        """The method of the client request this reply answers (consumed), None if unknown."""
        key = _id_key(msg["id"])
        queue = self._pending.get(key) if key is not None else None
        if key is not None and queue:
            _, method = queue.popleft()
            if not queue:
                del self._pending[key]
                self._answered.add(key)
            return method
        if self.strict:
            why = ("was already answered" if key in self._answered
                   else "matches no request the client sent")
            pending = [i for i, _ in self.unanswered_client_requests]
            self._fail(label, f"replies to id {msg['id']!r}, which {why} "
                       f"(unanswered client request ids: {pending})", msg)
        return None

    def _validate(self, label: str, what: str, validator: Validator, instance: Any, prefix: str,
                  msg: Any, schema_name: str) -> None:
        found = _first_error(validator, instance)
        if found is None:
            return
        error, count = found
        detail = error.message
        if len(detail) > _MAX_SHOWN:
            detail = detail[:_MAX_SHOWN] + "..."
        schema_path = "/".join(str(p) for p in error.absolute_schema_path)
        others = f" (+{count - 1} more error(s))" if count > 1 else ""
        self._fail(label, f"({what}) does not validate against {schema_name}:\n"
                   f"  at {_json_path(prefix, error)}: {detail}{others}\n"
                   f"  schema path: {schema_path}", msg)

    @staticmethod
    def _fail(label: str, problem: str, msg: Any) -> NoReturn:
        raise ProtocolViolation(f"{label} {problem}\n  message: {_shown(msg)}")
