"""The features a thread's configuration turns on or off, and the deprecated names it used to do so.

Codex 0.94.0 settles features from several places, each later one overriding the earlier:

1. the top-level legacy switches ``experimental_use_freeform_apply_patch`` and
   ``experimental_use_unified_exec_tool``, and ``[tools].web_search`` (``web_search_request`` is
   another spelling of that key there);
2. the ``[features]`` table, key by key in sorted order, where old names still set their feature;
3. the active profile's legacy switches (``include_apply_patch_tool``, then
   ``experimental_use_freeform_apply_patch``, ``experimental_use_unified_exec_tool``,
   ``tools_web_search``), then its ``features`` table;
4. newConversation's ``includeApplyPatchTool``.

"Top level" is the merged table of every config layer, so ``-c`` overrides and thread/start's
``config`` map count as config.toml does. A top-level ``include_apply_patch_tool`` is not read at all.

Every old name that sets something is recorded once (and ``[features].web_search_request`` /
``web_search_cached``, whose canonical names are themselves deprecated, whenever present); a thread
announces each as a deprecation notice, ordered by the name recorded. These rules were read off the
reference by running it (see tests/test_warnings_e2e.py and tests/fixtures/warnings/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Config

# Old names a `[features]` table may use, and the feature each one sets.
FEATURE_ALIASES: Mapping[str, str] = {
    "connectors": "apps",
    "enable_experimental_windows_sandbox": "experimental_windows_sandbox",
    "experimental_use_unified_exec_tool": "unified_exec",
    "experimental_use_freeform_apply_patch": "apply_patch_freeform",
    "include_apply_patch_tool": "apply_patch_freeform",
    "web_search": "web_search_request",
}

# Canonical `[features]` keys that are deprecated in favour of the top-level `web_search` mode: the
# name each is recorded under.
_DEPRECATED_FEATURE_KEYS: Mapping[str, str] = {
    "web_search_request": "features.web_search_request",
    "web_search_cached": "features.web_search_cached",
}

# Recorded for `[tools].web_search` (or a profile's `tools_web_search`).
_TOOLS_WEB_SEARCH = "tools.web_search"

# The legacy switches read at the top level, and in a profile, in the order they are applied.
_TOP_LEVEL_SWITCHES: Mapping[str, str] = {
    "experimental_use_freeform_apply_patch": "apply_patch_freeform",
    "experimental_use_unified_exec_tool": "unified_exec",
}
_PROFILE_SWITCHES: Mapping[str, str] = {
    "include_apply_patch_tool": "apply_patch_freeform",
    "experimental_use_freeform_apply_patch": "apply_patch_freeform",
    "experimental_use_unified_exec_tool": "unified_exec",
}

_WEB_SEARCH_FEATURES = frozenset({"web_search_request", "web_search_cached"})
# How a notice names a recorded web-search setting.
_WEB_SEARCH_LABELS: Mapping[str, str] = {
    "web_search": "[features].web_search",
    _TOOLS_WEB_SEARCH: "[tools].web_search",
    "features.web_search_request": "[features].web_search_request",
    "features.web_search_cached": "[features].web_search_cached",
}
_FEATURE_FLAGS_DOC = "https://github.com/openai/codex/blob/main/docs/config.md#feature-flags"


@dataclass(frozen=True, order=True)
class LegacyUsage:
    """A deprecated setting the configuration used: the name it was recorded under (which orders the
    notices) and the feature it set."""

    alias: str
    feature: str

    def summary(self) -> str:
        if self.feature in _WEB_SEARCH_FEATURES:
            label = _WEB_SEARCH_LABELS.get(self.alias, self.alias)
            return f"`{label}` is deprecated. Use `web_search` instead."
        return f"`{self.alias}` is deprecated. Use `[features].{self.feature}` instead."

    def details(self) -> str:
        if self.feature in _WEB_SEARCH_FEATURES:
            return 'Set `web_search` to `"live"`, `"cached"`, or `"disabled"` in config.toml.'
        return (
            f"Enable it with `--enable {self.feature}` or `[features].{self.feature}` in config.toml. "
            f"See {_FEATURE_FLAGS_DOC} for details."
        )


@dataclass(frozen=True)
class ResolvedFeatures:
    """What a configuration settles about features."""

    # The features it turns on (True) or off (False); the ones nothing sets are absent.
    enabled: Mapping[str, bool]
    # The deprecated settings it used, once each, in the order their notices go out.
    legacy_usages: tuple[LegacyUsage, ...]
    # The web search mode: "disabled" | "cached" | "live", or None when nothing chose one.
    web_search: str | None


class _Resolver:
    def __init__(self) -> None:
        self.enabled: dict[str, bool] = {}
        self.usages: set[LegacyUsage] = set()

    def set(self, feature: str, value: bool, alias: str | None = None) -> None:
        self.enabled[feature] = value
        if alias is not None:
            self.usages.add(LegacyUsage(alias, feature))

    def switches(self, table: Mapping[str, Any], switches: Mapping[str, str]) -> None:
        for key, feature in switches.items():
            value = table.get(key)
            if isinstance(value, bool):
                self.set(feature, value, key)

    def tools_web_search(self, value: Any) -> None:
        if isinstance(value, bool):
            self.set("web_search_request", value, _TOOLS_WEB_SEARCH)

    def features_table(self, table: Any) -> None:
        if not isinstance(table, Mapping):
            return
        # Sorted, as the reference walks it: an old name can undo the canonical key it sorts before.
        for key in sorted(table):
            value = table[key]
            if not isinstance(value, bool):
                continue
            deprecated = _DEPRECATED_FEATURE_KEYS.get(key)
            if deprecated is not None:
                self.usages.add(LegacyUsage(deprecated, key))
            feature = FEATURE_ALIASES.get(key)
            if feature is None:
                self.set(key, value)
            else:
                self.set(feature, value, key)


def active_profile(config: Config) -> Mapping[str, Any]:
    """The table of the profile ``config`` runs with (empty when none)."""
    profiles = config.raw.get("profiles")
    if config.active_profile is None or not isinstance(profiles, Mapping):
        return {}
    profile = profiles.get(config.active_profile)
    return profile if isinstance(profile, Mapping) else {}


def resolve_features(config: Config, *, include_apply_patch_tool: bool | None = None) -> ResolvedFeatures:
    """The features ``config`` settles (see the module's docstring for the order), with
    newConversation's ``includeApplyPatchTool`` applied last."""
    raw = config.raw
    profile = active_profile(config)
    resolver = _Resolver()
    resolver.switches(raw, _TOP_LEVEL_SWITCHES)
    tools = raw.get("tools")
    if isinstance(tools, Mapping):
        resolver.tools_web_search(tools.get("web_search", tools.get("web_search_request")))
    resolver.features_table(raw.get("features"))
    resolver.switches(profile, _PROFILE_SWITCHES)
    resolver.tools_web_search(profile.get("tools_web_search"))
    resolver.features_table(profile.get("features"))
    if include_apply_patch_tool is not None:
        resolver.set("apply_patch_freeform", include_apply_patch_tool, "include_apply_patch_tool")
    enabled = resolver.enabled
    mode = profile.get("web_search")
    if mode is None:
        mode = raw.get("web_search")
    if mode is None:
        # An explicit mode wins; otherwise the cached search outranks the live one.
        if enabled.get("web_search_cached"):
            mode = "cached"
        elif enabled.get("web_search_request"):
            mode = "live"
    return ResolvedFeatures(
        enabled=enabled,
        legacy_usages=tuple(sorted(resolver.usages)),
        web_search=mode if isinstance(mode, str) else None,
    )
