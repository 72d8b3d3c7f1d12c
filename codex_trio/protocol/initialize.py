"""Wire types of the initialize handshake."""

# No ``from __future__ import annotations``: with evaluated annotations a TypedDict is built without
# compiling each one from a string, about twice as fast, and every server start builds these.
from typing import TypedDict


class ClientInfo(TypedDict):
    name: str
    title: str | None
    version: str


class InitializeCapabilities(TypedDict):
    # Not in 0.94.0's schema; later reference versions added it, and serde ignores unknown members,
    # so clients may send it to either server.
    experimentalApi: bool | None
    optOutNotificationMethods: list[str] | None


class InitializeParams(TypedDict):
    clientInfo: ClientInfo
    capabilities: InitializeCapabilities | None


class InitializeResponse(TypedDict):
    userAgent: str
