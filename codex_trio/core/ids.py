"""Thread, conversation and login ids: UUIDs, read the way the reference's uuid parser reads them."""

from __future__ import annotations

import re

_UUID_HYPHENATED = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UUID_SIMPLE = re.compile(r"[0-9a-fA-F]{32}")


def parse_uuid(text: str) -> str | None:
    """Canonical (lowercase, hyphenated) form of a UUID in any form the reference's parser takes."""
    body = text
    if body.startswith("urn:uuid:"):
        body = body[len("urn:uuid:") :]
    elif body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    if _UUID_HYPHENATED.fullmatch(body):
        return body.lower()
    if body is text and _UUID_SIMPLE.fullmatch(body):
        low = body.lower()
        return f"{low[:8]}-{low[8:12]}-{low[12:16]}-{low[16:20]}-{low[20:]}"
    return None


def uuid_error(text: str) -> str:
    """Why ``text`` is not a UUID, in the words of the reference's uuid parser."""
    body = text[9:] if text.lower().startswith("urn:uuid:") else text
    for index, ch in enumerate(body, start=1):
        if not (ch in "-" or ch.isdigit() or ch.lower() in "abcdef"):
            return (
                "invalid character: expected an optional prefix of `urn:uuid:` followed by "
                f"[0-9a-fA-F-], found `{ch}` at {index}"
            )
    return f"invalid length: expected length 32 for simple format, found {len(body.replace('-', ''))}"
