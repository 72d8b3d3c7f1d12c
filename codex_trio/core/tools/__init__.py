"""The tools a turn offers the model and the handlers that run them."""

from .context import ClientChannel, Decision, NoClient, SessionApprovals, ToolCall, ToolContext, TurnAborted
from .router import run_calls
from .spec import ToolsConfig, tool_specs

__all__ = [
    "ClientChannel",
    "Decision",
    "NoClient",
    "SessionApprovals",
    "ToolCall",
    "ToolContext",
    "ToolsConfig",
    "TurnAborted",
    "run_calls",
    "tool_specs",
]
