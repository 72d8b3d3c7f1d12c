"""The four JSON-RPC message kinds, parsed the way the reference parses them, and their encoding.

On output the ``"jsonrpc"`` member is omitted (as the reference does); on input it is accepted and ignored.
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias, TypeGuard

RequestId: TypeAlias = "int | str"
JsonValue: TypeAlias = Any


# Fields are set past the immutability guard, as a frozen dataclass does.
_set = object.__setattr__


class _Message:
    """An immutable message with value equality, like a frozen dataclass. Written out by hand: four
    dataclasses take ~2 ms to define, which a server answering initialize on start-up notices."""

    __slots__ = ()
    # The fields, in order.
    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Message)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")


class Request(_Message):
    __slots__ = _fields = ("id", "method", "params", "has_params")
    id: RequestId
    method: str
    params: JsonValue
    # Whether "params" was present at all: the reference tells a missing member from null for some
    # methods only through serde's defaults, so keep the distinction.
    has_params: bool

    def __init__(
        self, id: RequestId, method: str, params: JsonValue = None, has_params: bool = False
    ) -> None:
        _set(self, "id", id)
        _set(self, "method", method)
        _set(self, "params", params)
        _set(self, "has_params", has_params)


class Notification(_Message):
    __slots__ = _fields = ("method", "params")
    method: str
    params: JsonValue

    def __init__(self, method: str, params: JsonValue = None) -> None:
        _set(self, "method", method)
        _set(self, "params", params)


class Response(_Message):
    __slots__ = _fields = ("id", "result")
    id: RequestId
    result: JsonValue

    def __init__(self, id: RequestId, result: JsonValue) -> None:
        _set(self, "id", id)
        _set(self, "result", result)


class ErrorResponse(_Message):
    __slots__ = _fields = ("id", "code", "message", "data")
    id: RequestId
    code: int
    message: str
    data: JsonValue

    def __init__(self, id: RequestId, code: int, message: str, data: JsonValue = None) -> None:
        _set(self, "id", id)
        _set(self, "code", code)
        _set(self, "message", message)
        _set(self, "data", data)


Message: TypeAlias = "Request | Notification | Response | ErrorResponse"


class NotAMessage(ValueError):
    """The bytes are not JSON, or the JSON is not a JSON-RPC message. Never answered, only logged."""


def _is_id(value: object) -> TypeGuard[int | str]:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def parse_message(raw: bytes | str) -> Message:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        # The error text carries a position but no content, so it is safe to log.
        raise NotAMessage(f"malformed JSON: {exc}") from None
    return message_from_json(obj)


def message_from_json(obj: object) -> Message:
    if not isinstance(obj, dict):
        raise NotAMessage(f"not a JSON-RPC message: a JSON {type(obj).__name__}")
    method = obj.get("method")
    msg_id = obj.get("id")
    if isinstance(method, str):
        if _is_id(msg_id):
            return Request(msg_id, method, obj.get("params"), "params" in obj)
        return Notification(method, obj.get("params"))
    if _is_id(msg_id):
        if "error" in obj and "result" not in obj:
            err = obj["error"]
            if (
                isinstance(err, dict)
                and isinstance(err.get("code"), int)
                and isinstance(err.get("message"), str)
            ):
                return ErrorResponse(msg_id, err["code"], err["message"], err.get("data"))
            raise NotAMessage("error response without a valid error object")
        return Response(msg_id, obj.get("result"))
    raise NotAMessage("not a JSON-RPC message: no method and no id")


def to_json(message: Message) -> dict[str, Any]:
    if isinstance(message, Request):
        out: dict[str, Any] = {"id": message.id, "method": message.method}
        if message.params is not None:
            out["params"] = message.params
        return out
    if isinstance(message, Notification):
        out = {"method": message.method}
        if message.params is not None:
            out["params"] = message.params
        return out
    if isinstance(message, Response):
        return {"id": message.id, "result": message.result}
    error: dict[str, Any] = {"code": message.code, "message": message.message}
    if message.data is not None:
        error["data"] = message.data
    return {"error": error, "id": message.id}


def encode(obj: dict[str, Any]) -> bytes:
    """One message as compact JSON (no newline; the transport frames it)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (possible in strings a client sent us) cannot be UTF-8; escape it instead.
        return json.dumps(obj, separators=(",", ":")).encode("ascii")
