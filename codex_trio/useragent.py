"""The User-Agent string, composed the way the reference composes it.

``<originator>/<version> (<OS> <OS version>; <arch>) <terminal> (<client name>; <client version>)``
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping
from pathlib import Path

from . import REFERENCE_VERSION

_OS_NAMES = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "fedora": "Fedora",
    "centos": "CentOS",
    "rhel": "Red Hat Enterprise Linux",
    "alpine": "Alpine Linux",
    "arch": "Arch Linux",
    "opensuse": "openSUSE",
    "opensuse-leap": "openSUSE",
    "linuxmint": "Mint",
    "nixos": "NixOS",
    "amzn": "Amazon Linux AMI",
    "rocky": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "manjaro": "Manjaro",
    "pop": "Pop",
    "gentoo": "Gentoo Linux",
}
_HEADER_SAFE = re.compile(r"[^A-Za-z0-9._/-]")


def _read_os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return values
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def _semantic(version: str) -> str:
    """Versions print as major.minor.patch when they are numeric, like the reference's os_info."""
    parts = version.split(".")
    if 1 <= len(parts) <= 3 and all(p.isdigit() for p in parts):
        numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
        return ".".join(str(n) for n in numbers)
    return version or "Unknown"


def os_description() -> tuple[str, str]:
    system = platform.system()
    if system == "Linux":
        release = _read_os_release()
        name = _OS_NAMES.get(release.get("ID", "").lower(), "Linux")
        return name, _semantic(release.get("VERSION_ID", ""))
    if system == "Darwin":
        return "Mac OS", _semantic(platform.mac_ver()[0])
    if system == "Windows":
        return "Windows", _semantic(platform.version())
    return system or "Unknown", _semantic(platform.release())


def terminal_name(env: Mapping[str, str]) -> str:
    def with_version(name: str, version: str | None) -> str:
        return f"{name}/{version}" if version else name

    if env.get("TERM_PROGRAM"):
        name = with_version(env["TERM_PROGRAM"], env.get("TERM_PROGRAM_VERSION"))
    elif env.get("WEZTERM_VERSION"):
        name = with_version("WezTerm", env["WEZTERM_VERSION"])
    elif env.get("KITTY_WINDOW_ID") or "kitty" in env.get("TERM", ""):
        name = "kitty"
    elif env.get("ALACRITTY_SOCKET") or env.get("TERM") == "alacritty":
        name = "Alacritty"
    elif env.get("KONSOLE_VERSION"):
        name = with_version("Konsole", env["KONSOLE_VERSION"])
    elif env.get("GNOME_TERMINAL_SCREEN"):
        name = "gnome-terminal"
    elif env.get("VTE_VERSION"):
        name = with_version("VTE", env["VTE_VERSION"])
    elif env.get("WT_SESSION"):
        name = "WindowsTerminal"
    else:
        name = env.get("TERM") or "unknown"
    return _HEADER_SAFE.sub("_", name)


def _header_safe(text: str) -> str:
    return "".join(ch if " " <= ch <= "~" else "_" for ch in text)


def user_agent(
    originator: str,
    *,
    client_name: str | None = None,
    client_version: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    env = os.environ if env is None else env
    os_name, os_version = os_description()
    arch = platform.machine() or "unknown"
    prefix = (
        f"{originator}/{REFERENCE_VERSION} ({os_name} {os_version}; {arch}) {terminal_name(env)}"
    )
    suffix = ""
    if client_name is not None:
        inner = f"{client_name}; {client_version or ''}".strip()
        if inner:
            suffix = f" ({inner})"
    return _header_safe(prefix + suffix)
