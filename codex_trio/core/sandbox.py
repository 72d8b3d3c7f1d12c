"""The sandbox for commands the agent runs: bubblewrap (``bwrap``) on Linux.

A sandboxed command sees the whole filesystem read-only; in ``workspace-write`` its writable roots
(the cwd, configured roots, /tmp and $TMPDIR unless excluded) are bound read-write again, except a
top-level ``.git`` under each root, which stays read-only like the reference's workspace-write
policy. Without network access the command gets its own network namespace (only a loopback with
nothing listening) and a seccomp filter that makes ``socket()`` fail with EPERM for anything but
AF_UNIX, so a tool sees "Operation not permitted" as under the reference's Linux sandbox, and the
failure is recognisable as a sandbox denial.

The command runs in its own PID namespace whose init dies with bwrap (``--die-with-parent``), so
killing bwrap's process group takes every process of the command with it, even ones that called
setsid().
"""

from __future__ import annotations

import os
import platform
import shutil
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

SandboxMode = Literal["read-only", "workspace-write"]

# The variable the reference sets in a command's environment when its network is cut off.
NETWORK_DISABLED_ENV = "CODEX_SANDBOX_NETWORK_DISABLED"


class SandboxError(Exception):
    """A sandbox policy that cannot be turned into a sandbox."""


@dataclass(frozen=True)
class SandboxSpec:
    mode: SandboxMode
    # workspace-write: the cwd, configured roots and temp dirs; read-only: none.
    writable_roots: tuple[Path, ...]
    network: bool


def sandbox_spec(policy_v2: Mapping[str, Any], cwd: Path, env: Mapping[str, str]) -> SandboxSpec | None:
    """The sandbox for a v2 ``SandboxPolicy``; None when commands run unsandboxed (full access, or an
    external sandbox the client vouches for)."""
    kind = policy_v2.get("type")
    if kind in ("dangerFullAccess", "externalSandbox"):
        return None
    if kind == "readOnly":
        return SandboxSpec("read-only", (), network=False)
    if kind != "workspaceWrite":
        raise SandboxError(f"unknown sandbox policy type {kind!r}")
    roots: list[Path] = [cwd]
    roots.extend(Path(p) for p in policy_v2.get("writableRoots") or ())
    if not policy_v2.get("excludeSlashTmp"):
        roots.append(Path("/tmp"))
    tmpdir = env.get("TMPDIR")
    # Like the reference, a relative TMPDIR is not a root (it would depend on the cwd).
    if not policy_v2.get("excludeTmpdirEnvVar") and tmpdir and os.path.isabs(tmpdir):
        roots.append(Path(tmpdir))
    unique = tuple(dict.fromkeys(Path(os.path.normpath(r)) for r in roots if r.is_absolute()))
    return SandboxSpec("workspace-write", unique, network=bool(policy_v2.get("networkAccess")))


def network_env(policy_v2: Mapping[str, Any]) -> dict[str, str]:
    """What a command's environment gains under ``policy_v2``: the reference marks a restricted
    network, external sandboxes included (run_exec adds it itself for the sandboxes it builds)."""
    kind = policy_v2.get("type")
    if kind == "dangerFullAccess":
        restricted = False
    elif kind == "externalSandbox":
        restricted = policy_v2.get("networkAccess") != "enabled"
    elif kind == "workspaceWrite":
        restricted = not policy_v2.get("networkAccess")
    else:
        restricted = True
    return {NETWORK_DISABLED_ENV: "1"} if restricted else {}


def bwrap_path() -> str | None:
    found = shutil.which("bwrap")
    if found:
        return found
    # The server's PATH may be minimal; Debian's package installs here.
    return "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None


def sandbox_available() -> bool:
    return bwrap_path() is not None


def read_only_subpaths(root: Path) -> list[Path]:
    """What stays read-only under a writable root: its ``.git`` (a directory, or a worktree's pointer
    file and the git directory it names)."""
    dot_git = root / ".git"
    out: list[Path] = []
    if dot_git.is_file():
        gitdir = _gitdir_from_pointer(dot_git)
        if gitdir is not None:
            out.append(gitdir)
        out.append(dot_git)
    elif dot_git.is_dir():
        out.append(dot_git)
    return out


def _gitdir_from_pointer(dot_git: Path) -> Path | None:
    try:
        text = dot_git.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    target = Path(text[len("gitdir:") :].strip())
    if not target.is_absolute():
        target = dot_git.parent / target
    target = Path(os.path.normpath(target))
    return target if target.exists() else None


def wrap_argv(
    argv: Sequence[str],
    spec: SandboxSpec,
    cwd: Path,
    *,
    seccomp_fd: int | None = None,
    bwrap: str | None = None,
) -> list[str]:
    """``argv`` run under bubblewrap per ``spec``. ``seccomp_fd`` is an inherited descriptor holding
    :func:`network_seccomp_program` (run_exec passes one when the network is off)."""
    exe = bwrap or bwrap_path() or "bwrap"
    # --new-session: no ioctl(TIOCSTI) into a terminal of ours. --unshare-pid + --die-with-parent: the
    # command's processes all live in a namespace that disappears with bwrap.
    args = [exe, "--new-session", "--die-with-parent", "--unshare-pid"]
    if not spec.network:
        args.append("--unshare-net")
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if spec.mode == "workspace-write":
        # bwrap cannot bind what does not exist; a missing root has nothing to protect or allow.
        # Parents first: a later bind of a parent would hide a nested root's mount.
        roots = sorted((r for r in spec.writable_roots if r.exists()), key=lambda r: len(r.parts))
        for root in roots:
            args += ["--bind", str(root), str(root)]
        # After every writable bind, so a nested root cannot re-open a protected path.
        for root in roots:
            for sub in read_only_subpaths(root):
                args += ["--ro-bind", str(sub), str(sub)]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    args += ["--chdir", str(cwd), "--", *argv]
    return args


# --- seccomp -----------------------------------------------------------------------------------
# A classic-BPF program for seccomp(2): socket() and socketpair() fail with EPERM unless the domain
# is AF_UNIX; everything else is allowed. Built by hand because the standard library has no
# libseccomp binding; bwrap installs it (--seccomp FD) just before exec'ing the command.

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_AND_K = 0x54
_BPF_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_EPERM = 1
_AF_UNIX = 1
_X32_SYSCALL_BIT = 0x40000000

# machine -> (AUDIT_ARCH_*, socket, socketpair)
_ARCHES = {
    "x86_64": (0xC000003E, 41, 53),
    "aarch64": (0xC00000B7, 198, 199),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def network_seccomp_program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where we do not know its syscall numbers
    (the network namespace alone then keeps the command off the network)."""
    arch = _ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, nr_socket, nr_socketpair = arch
    offset_nr, offset_arch, offset_arg0 = 0, 4, 16
    prog = [
        _insn(_BPF_LD_W_ABS, 0, 0, offset_arch),
        _insn(_BPF_JEQ_K, 0, 7, audit_arch),  # another ABI: allow (jump to ALLOW)
        _insn(_BPF_LD_W_ABS, 0, 0, offset_nr),
        _insn(_BPF_AND_K, 0, 0, 0xFFFFFFFF & ~_X32_SYSCALL_BIT),
        _insn(_BPF_JEQ_K, 1, 0, nr_socket),
        _insn(_BPF_JEQ_K, 0, 3, nr_socketpair),
        _insn(_BPF_LD_W_ABS, 0, 0, offset_arg0),
        _insn(_BPF_JEQ_K, 1, 0, _AF_UNIX),
        _insn(_BPF_RET_K, 0, 0, _RET_ERRNO | _EPERM),
        _insn(_BPF_RET_K, 0, 0, _RET_ALLOW),
    ]
    return b"".join(prog)
