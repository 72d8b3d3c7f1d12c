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

# Where a provider without a base_url is reached. The reference chooses per request from the account's
# login, even when a provider's env_key supplies the key: ChatGPT tokens (browser login or handed in by
# the client) go to the ChatGPT backend; an API key login, or none, to the OpenAI API. config.toml's
# chatgpt_base_url plays no part in this; it only locates the account endpoints (usage, rate limits).
OPENAI_API_BASE_URL = "https://api.openai.com/v1"
CHATGPT_BACKEND_BASE_URL = "https://chatgpt.com/backend-api/codex"


@dataclass(frozen=True)
class ModelProviderInfo:
    id: str
    name: str
    # None when neither config.toml nor (for the built-in openai provider) OPENAI_BASE_URL sets one:
    # then ``api_base_url`` picks it for each request.
    base_url: str | None
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

    def api_base_url(self, *, chatgpt_auth: bool) -> str:
        """The base URL of a request made while the account is logged in with ChatGPT tokens
        (``chatgpt_auth``) or not.

        A configured base URL always wins, OPENAI_BASE_URL included, whatever the credentials.
        """
        if self.base_url is not None:
            return self.base_url
        return CHATGPT_BACKEND_BASE_URL if chatgpt_auth else OPENAI_API_BASE_URL
