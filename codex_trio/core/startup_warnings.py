"""The warnings a thread announces when it starts (``warning`` events, before mcp_startup_complete).

Two exist in Codex 0.94.0:

- every new, resumed or forked thread warns when its config turns on a feature the reference ships
  as "under development" (unless ``suppress_unstable_features_warning`` is set);
- a resumed thread (not a fork) warns when its model differs from the one its rollout last ran a
  turn with.

The rules below were read off the reference by running it (see tests/test_warnings_e2e.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import events as ev
from .config import CONFIG_TOML_FILE, Config
from .events import EventMsg
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

# Old names a `[features]` table may still use, and the feature each one sets. Only their effect
# counts here: the warning itself names canonical keys only.
FEATURE_ALIASES: Mapping[str, str] = {
    "connectors": "apps",
    "enable_experimental_windows_sandbox": "experimental_windows_sandbox",
    "experimental_use_unified_exec_tool": "unified_exec",
    "experimental_use_freeform_apply_patch": "apply_patch_freeform",
    "include_apply_patch_tool": "apply_patch_freeform",
}

# Top-level (or profile) booleans that predate `[features]`, and what they set.
_LEGACY_TOGGLES: Mapping[str, str] = {
    "include_apply_patch_tool": "apply_patch_freeform",
    "experimental_use_freeform_apply_patch": "apply_patch_freeform",
    "experimental_use_unified_exec_tool": "unified_exec",
}

# The legacy toggles the reference reads at the top level of a config (not include_apply_patch_tool).
_TOP_LEVEL_TOGGLES = ("experimental_use_freeform_apply_patch", "experimental_use_unified_exec_tool")

# The id of the event that carries the model warning: the reference sends it from the first internal
# turn of the resumed session.
MODEL_MISMATCH_EVENT_ID = "auto-compact-0"


def _apply_legacy(enabled: dict[str, bool], table: Mapping[str, Any], keys: Iterable[str]) -> None:
    for key in keys:
        value = table.get(key)
        if isinstance(value, bool):
            enabled[_LEGACY_TOGGLES[key]] = value


def _apply_features(enabled: dict[str, bool], table: Any) -> None:
    if not isinstance(table, Mapping):
        return
    # Sorted: the reference walks the table as an ordered map, so an alias can undo its canonical key.
    for key in sorted(table):
        value = table[key]
        if isinstance(value, bool):
            enabled[FEATURE_ALIASES.get(key, key)] = value


def effective_features(config: Config, *, include_apply_patch_tool: bool | None = None) -> dict[str, bool]:
    """The features the config sets, after every layer of precedence the reference applies: the
    top-level legacy toggles (apply_patch/unified_exec ones only: the reference ignores a top-level
    ``include_apply_patch_tool``), ``[features]``, the active profile's legacy toggles, its
    ``features``, then newConversation's ``includeApplyPatchTool``. Features nothing sets are absent."""
    raw = config.raw
    enabled: dict[str, bool] = {}
    _apply_legacy(enabled, raw, _TOP_LEVEL_TOGGLES)
    _apply_features(enabled, raw.get("features"))
    profiles = raw.get("profiles")
    profile = None
    if config.active_profile is not None and isinstance(profiles, Mapping):
        profile = profiles.get(config.active_profile)
    if isinstance(profile, Mapping):
        _apply_legacy(enabled, profile, _LEGACY_TOGGLES)
        _apply_features(enabled, profile.get("features"))
    if include_apply_patch_tool is not None:
        enabled["apply_patch_freeform"] = include_apply_patch_tool
    return enabled


def unstable_features_warning(config: Config, *, include_apply_patch_tool: bool | None = None) -> str | None:
    """The "Under-development features enabled" text for a thread started with ``config``, if any.

    Only keys the merged `[features]` table (config files and session overrides, not profiles) sets
    to true under their canonical name are named, in key order, and only while still enabled once
    profiles and overrides are applied."""
    if config.raw.get("suppress_unstable_features_warning") is True:
        return None
    table = config.raw.get("features")
    if not isinstance(table, Mapping):
        return None
    enabled = effective_features(config, include_apply_patch_tool=include_apply_patch_tool)
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
    """The warning events (event id, event) a thread started with ``config`` announces, in the
    reference's order: the feature one, then, for a thread resumed from ``resumed`` (forks are not),
    the model one."""
    events: list[tuple[str, EventMsg]] = []
    unstable = unstable_features_warning(config, include_apply_patch_tool=include_apply_patch_tool)
    if unstable is not None:
        events.append(("", ev.warning(unstable)))
    mismatch = model_mismatch_warning(resumed, config.model) if resumed is not None else None
    if mismatch is not None:
        events.append((MODEL_MISMATCH_EVENT_ID, ev.warning(mismatch)))
    return events
