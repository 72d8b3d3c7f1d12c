"""Errors of the JSON-RPC session, in both directions."""

from __future__ import annotations

from typing import Any

# The reference answers every failure of a client request with -32600, whatever its cause.
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
OVERLOADED = -32001
OVERLOADED_MESSAGE = "Server overloaded; retry later."


class RpcError(Exception):
    """Raised by a handler: becomes the error response to the client's request."""

    def __init__(self, message: str, *, code: int = INVALID_REQUEST, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(reason: str) -> RpcError:
    """A request whose params do not fit its method, worded like the reference."""
    return RpcError(f"Invalid request: {reason}")


class ClientRequestError(Exception):
    """Base of what ``Connection.send_request`` raises when no result comes back."""


class ClientReturnedError(ClientRequestError):
    """The client answered a server->client request with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: client returned error {code}: {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class RequestTimeout(ClientRequestError):
    def __init__(self, method: str, timeout: float) -> None:
        super().__init__(f"{method}: no reply within {timeout:g}s")
        self.method = method
        self.timeout = timeout


class ConnectionClosed(ClientRequestError):
    def __init__(self, method: str = "") -> None:
        super().__init__(f"{method}: connection closed" if method else "connection closed")
        self.method = method
