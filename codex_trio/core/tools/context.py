"""What a tool handler works with: the call, the turn it runs in, and the way to the client."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .. import events as ev
from ..safety import PrefixRule, parse_rules

if TYPE_CHECKING:
    from ..turn_diff import TurnDiffTracker
    from .spec import ToolsConfig

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

# The core's review decisions (the legacy ReviewDecision): what an approval answer means for the call.
Decision = Literal["approved", "approved_for_session", "denied", "abort"] | JsonObject


class FunctionCallError(Exception):
    """A tool call that went wrong in a way the model should hear about: ``message`` becomes the call's
    output and the turn goes on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TurnAborted(Exception):
    """The client answered an approval with ``cancel``: the turn ends as if interrupted."""


class ClientChannel(Protocol):
    """The way from a running turn to the client that owns it. Each method is given the request event
    the core has already emitted, and answers with the client's reply; a client that fails the request
    or goes away yields the reference's fallback (a denial, or None)."""

    async def approve(self, turn_id: str, request: ev.EventMsg) -> Decision: ...

    async def request_user_input(self, turn_id: str, request: ev.EventMsg) -> Mapping[str, Any] | None: ...

    async def call_dynamic_tool(self, turn_id: str, request: ev.EventMsg) -> Mapping[str, Any] | None: ...


class NoClient:
    """For turns nobody can be asked about (no owning connection): every approval is refused."""

    async def approve(self, turn_id: str, request: ev.EventMsg) -> Decision:
        return "denied"

    async def request_user_input(self, turn_id: str, request: ev.EventMsg) -> Mapping[str, Any] | None:
        return None

    async def call_dynamic_tool(self, turn_id: str, request: ev.EventMsg) -> Mapping[str, Any] | None:
        return None


@dataclass(frozen=True)
class ToolCall:
    """One call from a model response: a function call (JSON arguments), a freeform custom tool call
    (raw input) or a local_shell call (an action object)."""

    kind: Literal["function", "custom", "local_shell"]
    name: str
    call_id: str
    payload: Any

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ToolCall:
        kind = item.get("type")
        if kind == "custom_tool_call":
            return cls(
                "custom", str(item.get("name", "")), str(item.get("call_id", "")), item.get("input", "")
            )
        if kind == "local_shell_call":
            call_id = item.get("call_id") or item.get("id") or ""
            return cls("local_shell", "local_shell", str(call_id), item.get("action") or {})
        return cls(
            "function", str(item.get("name", "")), str(item.get("call_id", "")), item.get("arguments", "")
        )

    def json_arguments(self) -> Any:
        """The function call's arguments, parsed; the model hears about arguments that aren't JSON."""
        if self.kind != "function":
            return self.payload
        try:
            return json.loads(self.payload or "{}")
        except (TypeError, ValueError) as exc:
            raise FunctionCallError(f"failed to parse function arguments: {exc}") from None

    def output_item(self, output: str, success: bool | None = None) -> JsonObject:
        """The history item that answers this call."""
        if self.kind == "custom":
            return {"type": "custom_tool_call_output", "call_id": self.call_id, "output": output}
        return {"type": "function_call_output", "call_id": self.call_id, "output": output}


@dataclass
class SessionApprovals:
    """What the user allowed: commands and patched paths "for the session" (the thread's lifetime),
    and command prefixes accepted as execpolicy amendments (kept in ``rules_file`` too, like the
    reference's rules/default.rules)."""

    commands: set[Hashable] = field(default_factory=set)
    paths: set[Path] = field(default_factory=set)
    rules: list[PrefixRule] = field(default_factory=list)
    rules_file: Path | None = None

    @classmethod
    def load(cls, rules_file: Path | None) -> SessionApprovals:
        rules: list[PrefixRule] = []
        if rules_file is not None:
            try:
                rules = parse_rules(rules_file.read_text(encoding="utf-8"))
            except FileNotFoundError:
                pass  # no rule saved yet: the usual case
            except (OSError, ValueError, SyntaxError) as exc:
                log.warning("ignoring the rules in %s: %s", rules_file, exc)
        return cls(rules=rules, rules_file=rules_file)

    def save_rule(self, line: str) -> None:
        if self.rules_file is None:
            return
        try:
            self.rules_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.rules_file, "a", encoding="utf-8") as f:
                f.write(line)
        except OSError as exc:
            # The approval still holds for this session; only its memory across sessions is lost.
            log.warning("could not save the rule to %s: %s", self.rules_file, exc)


@dataclass
class ToolContext:
    """One turn's view for the tool handlers."""

    thread_id: str
    turn_id: str
    cwd: Path
    approval_policy: str
    sandbox_policy: Mapping[str, Any]
    collaboration_mode: str
    tools: ToolsConfig
    emit: Callable[[ev.EventMsg], Awaitable[None]]
    client: ClientChannel
    approvals: SessionApprovals
    diff: TurnDiffTracker
    env: Mapping[str, str]
    shell_environment_policy: Mapping[str, Any]
    # Uses up one submission id, as the reference's Op for an approval answer does.
    next_id: Callable[[], str]
    # Items the model should see right before this call's output (a saved rule's notice) and right
    # after it (view_image's picture).
    before_output: list[JsonObject] = field(default_factory=list)
    extra_items: list[JsonObject] = field(default_factory=list)
    # What the model hears of this call when the turn ends while it runs (cancel, interrupt), when
    # the handler settled it first; otherwise "aborted by user".
    aborted_output: str | None = None
