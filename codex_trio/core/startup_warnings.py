"""What a thread announces when it starts, before mcp_startup_complete, in the reference's order.

In Codex 0.94.0, every new, resumed or forked thread (v2 or v1) sends:

1. one ``deprecation_notice`` per deprecated setting its config uses (the v2 projection adds a
   ``deprecationNotice`` after each): the old feature names and switches (see core/features.py), then
   ``experimental_instructions_file`` in any layer or profile, then a provider on the "chat" wire API;
2. a ``warning`` when the config turns on a feature the reference ships as "under development"
   (unless ``suppress_unstable_features_warning`` is set);
3. for a resumed thread (not a fork), a ``warning`` when its model differs from the one its rollout
   last ran a turn with.

None of them is written to the rollout. The rules were read off the reference by running it (see
tests/test_warnings_e2e.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from . import events as ev
from .config import CONFIG_TOML_FILE, Config
from .events import EventMsg
from .features import ResolvedFeatures, resolve_features
from .rollout import Rollout

# The feature keys whose stage is "under development" in 0.94.0 (`codex features list`).
UNDER_DEVELOPMENT_FEATURES = frozenset(
    {
        "apply_patch_freeform",
        "child_agents_md",
        "collab",
        "elevated_windows_sandbox",
        "exec_policy",
        "experimental_windows_sandbox",
        "powershell_utf8",
        "remote_compaction",
        "remote_models",
        "responses_websockets",
        "runtime_metrics",
        "skill_env_var_dependency_prompt",
        "sqlite",
    }
)

# The id of the event that carries the model warning: the reference sends it from the first internal
# turn of the resumed session.
MODEL_MISMATCH_EVENT_ID = "auto-compact-0"

INSTRUCTIONS_FILE_SUMMARY = (
    "`experimental_instructions_file` is deprecated and ignored. Use `model_instructions_file` instead."
)
INSTRUCTIONS_FILE_DETAILS = (
    "Move the setting to `model_instructions_file` in config.toml (or under a profile) to load "
    "instructions from a file."
)
CHAT_WIRE_API_SUMMARY = (
    'Support for the "chat" wire API is deprecated and will soon be removed. Update your model '
    'provider definition in config.toml to use wire_api = "responses".'
)


def deprecation_notices(config: Config, resolved: ResolvedFeatures) -> list[EventMsg]:
    """The ``deprecation_notice`` events for a thread started with ``config``, in order."""
    notices = [ev.deprecation_notice(usage.summary(), usage.details()) for usage in resolved.legacy_usages]
    if config.uses_deprecated_instructions_file:
        notices.append(ev.deprecation_notice(INSTRUCTIONS_FILE_SUMMARY, INSTRUCTIONS_FILE_DETAILS))
    if config.model_provider.wire_api == "chat":
        notices.append(ev.deprecation_notice(CHAT_WIRE_API_SUMMARY))
    return notices


def unstable_features_warning(config: Config, *, include_apply_patch_tool: bool | None = None) -> str | None:
    """The "Under-development features enabled" text for a thread started with ``config``, if any."""
    resolved = resolve_features(config, include_apply_patch_tool=include_apply_patch_tool)
    return _unstable_features_warning(config, resolved)


def _unstable_features_warning(config: Config, resolved: ResolvedFeatures) -> str | None:
    # Only keys the merged `[features]` table (config files and session overrides, not profiles) sets
    # to true under their canonical name are named, in key order, and only while still enabled once
    # profiles and overrides are applied.
    if config.raw.get("suppress_unstable_features_warning") is True:
        return None
    table = config.raw.get("features")
    if not isinstance(table, Mapping):
        return None
    enabled = resolved.enabled
    keys = [
        key
        for key in sorted(table)
        if table[key] is True and key in UNDER_DEVELOPMENT_FEATURES and enabled.get(key, False)
    ]
    if not keys:
        return None
    path = config.codex_home / CONFIG_TOML_FILE
    return (
        f"Under-development features enabled: {', '.join(keys)}. Under-development features are "
        "incomplete and may behave unpredictably. To suppress this warning, set "
        f"`suppress_unstable_features_warning = true` in {path}."
    )


def recorded_model(rollout: Rollout) -> str | None:
    """The model of the rollout's last recorded turn context (a rollback does not take it back)."""
    for line in reversed(rollout.lines):
        if line["type"] == "turn_context":
            model = line["payload"].get("model")
            return model if isinstance(model, str) else None
    return None


def model_mismatch_warning(rollout: Rollout, model: str) -> str | None:
    """The warning for resuming a thread last run with another model than ``model``, if it was."""
    previous = recorded_model(rollout)
    if previous is None or previous == model:
        return None
    return (
        f"This session was recorded with model `{previous}` but is resuming with `{model}`. "
        f"Consider switching back to `{previous}` as it may affect Codex performance."
    )


def startup_warnings(
    config: Config, *, include_apply_patch_tool: bool | None = None, resumed: Rollout | None = None
) -> list[tuple[str, EventMsg]]:
    """The events (event id, event) a thread started with ``config`` announces, in the reference's
    order: the deprecation notices, the feature warning, then, for a thread resumed from ``resumed``
    (forks are not), the model warning. ``include_apply_patch_tool``: newConversation's field."""
    resolved = resolve_features(config, include_apply_patch_tool=include_apply_patch_tool)
    events: list[tuple[str, EventMsg]] = [("", notice) for notice in deprecation_notices(config, resolved)]
    unstable = _unstable_features_warning(config, resolved)
    if unstable is not None:
        events.append(("", ev.warning(unstable)))
    mismatch = model_mismatch_warning(resumed, config.model) if resumed is not None else None
    if mismatch is not None:
        events.append((MODEL_MISMATCH_EVENT_ID, ev.warning(mismatch)))
    return events
