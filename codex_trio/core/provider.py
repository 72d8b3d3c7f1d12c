"""A model provider as configured under ``[model_providers.<id>]`` in config.toml.

Shared by the config loader (which builds it) and the model client (which uses it), so it lives apart
from both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Defaults of the reference for providers that do not set them.
DEFAULT_REQUEST_MAX_RETRIES = 4
DEFAULT_STREAM_MAX_RETRIES = 5
DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000


@dataclass(frozen=True)
class ModelProviderInfo:
    id: str
    name: str
    base_url: str
    wire_api: str = "responses"
    # Name of the environment variable that holds the API key for this provider, if any.
    env_key: str | None = None
    # Whether the provider expects OpenAI credentials (API key or ChatGPT tokens from auth.json).
    requires_openai_auth: bool = False
    request_max_retries: int = DEFAULT_REQUEST_MAX_RETRIES
    stream_max_retries: int = DEFAULT_STREAM_MAX_RETRIES
    stream_idle_timeout_ms: int = DEFAULT_STREAM_IDLE_TIMEOUT_MS
    http_headers: dict[str, str] = field(default_factory=dict)
    # Header name -> environment variable whose value is sent in that header when set.
    env_http_headers: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)
