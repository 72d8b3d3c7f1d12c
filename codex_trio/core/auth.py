"""Which credentials a provider's requests carry.

API keys come from the provider's ``env_key`` variable, or, for providers that need OpenAI auth, from
``OPENAI_API_KEY`` or the ``OPENAI_API_KEY`` field of ``$CODEX_HOME/auth.json`` (the reference's
format). ChatGPT tokens and their refresh plug in here too: the model client only sees an AuthProvider.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .model_client import ApiKeyAuth, AuthProvider, NoAuth
from .provider import ModelProviderInfo

log = logging.getLogger(__name__)

AUTH_FILE = "auth.json"


class AuthFileError(Exception):
    pass


def read_auth_file(codex_home: Path) -> dict[str, Any] | None:
    path = codex_home / AUTH_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthFileError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position only: the content holds secrets.
        raise AuthFileError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise AuthFileError(f"{path} does not hold a JSON object")
    return data


def auth_for_provider(
    provider: ModelProviderInfo, *, env: Mapping[str, str], codex_home: Path
) -> AuthProvider:
    if provider.env_key:
        key = env.get(provider.env_key, "").strip()
        if key:
            return ApiKeyAuth(key)
    if provider.requires_openai_auth:
        key = env.get("OPENAI_API_KEY", "").strip()
        if key:
            return ApiKeyAuth(key)
        try:
            stored = read_auth_file(codex_home)
        except AuthFileError as exc:
            log.error("%s", exc)
            stored = None
        if stored and isinstance(stored.get("OPENAI_API_KEY"), str) and stored["OPENAI_API_KEY"]:
            return ApiKeyAuth(stored["OPENAI_API_KEY"])
    return NoAuth()
