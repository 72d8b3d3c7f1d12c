"""Wire types of the account API: v2 ``account/*`` and the legacy v1 auth methods."""

# No ``from __future__ import annotations``: with evaluated annotations a TypedDict is built without
# compiling each one from a string, about twice as fast, and every server start builds these.
import math
from typing import Annotated, Literal, TypedDict

from ..rpc.decode import Tagged

# The auth mode as clients see it (v2 AuthMode; v1 authMethod).
AuthMode = Literal["apikey", "chatgpt", "chatgptAuthTokens"]
PlanType = Literal["free", "go", "plus", "pro", "team", "business", "enterprise", "edu", "unknown"]


# ---- params (decoded by the router) -----------------------------------------------------------


class ApiKeyLogin(TypedDict):
    type: Literal["apiKey"]
    apiKey: str


class ChatgptLogin(TypedDict):
    type: Literal["chatgpt"]


class ChatgptAuthTokensLogin(TypedDict):
    type: Literal["chatgptAuthTokens"]
    idToken: str
    accessToken: str


LoginAccountParams = Annotated[
    ApiKeyLogin | ChatgptLogin | ChatgptAuthTokensLogin, Tagged("LoginAccountParams")
]


class CancelLoginAccountParams(TypedDict):
    loginId: str


class GetAccountParams(TypedDict):
    # serde(default): a missing key means false.
    refreshToken: bool | None


class LoginApiKeyParams(TypedDict):
    apiKey: str


class CancelLoginChatGptParams(TypedDict):
    # A Uuid in the reference: the processor checks it and answers with serde's uuid wording.
    loginId: str


class GetAuthStatusParams(TypedDict):
    includeToken: bool | None
    refreshToken: bool | None


# ---- server -> client request ----------------------------------------------------------------


class ChatgptAuthTokensRefreshParams(TypedDict):
    reason: Literal["unauthorized"]
    previousAccountId: str | None


class ChatgptAuthTokensRefreshResponse(TypedDict):
    idToken: str
    accessToken: str


# ---- results and notifications -----------------------------------------------------------------


class ApiKeyAccount(TypedDict):
    type: Literal["apiKey"]


class ChatgptAccount(TypedDict):
    type: Literal["chatgpt"]
    email: str
    planType: PlanType


Account = ApiKeyAccount | ChatgptAccount


class GetAccountResponse(TypedDict):
    account: Account | None
    requiresOpenaiAuth: bool


class GetAuthStatusResponse(TypedDict):
    authMethod: AuthMode | None
    authToken: str | None
    requiresOpenaiAuth: bool | None


class RateLimitWindow(TypedDict):
    # An integer on the wire (int32): see used_percent_to_v2.
    usedPercent: int
    windowDurationMins: int | None
    resetsAt: int | None


def used_percent_to_v2(value: float) -> int:
    """Rust's ``f64::round``, as the reference rounds: halves go away from zero (12.5 -> 13)."""
    rounded = math.floor(abs(value) + 0.5)
    return int(math.copysign(rounded, value))


class CreditsSnapshot(TypedDict):
    hasCredits: bool
    unlimited: bool
    balance: str | None


class RateLimitSnapshot(TypedDict):
    primary: RateLimitWindow | None
    secondary: RateLimitWindow | None
    credits: CreditsSnapshot | None
    planType: PlanType | None


class AccountLoginCompletedNotification(TypedDict):
    loginId: str | None
    success: bool
    error: str | None


class AccountUpdatedNotification(TypedDict):
    authMode: AuthMode | None


class LoginChatGptCompleteNotification(TypedDict):
    loginId: str
    success: bool
    error: str | None


class AuthStatusChangeNotification(TypedDict):
    authMethod: AuthMode | None
