"""Writing the files codex-trio shares with the reference in $CODEX_HOME (auth.json, config.toml, the
models cache): whole or not at all, and readable by their owner only."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str, *, follow_symlinks: bool = False) -> None:
    """Replace ``path`` with ``text``: a temporary file in the same directory, flushed to disk, renamed
    over it, so readers see the old file or the new one, never a torn one. The file is 0600 from the
    moment it exists (mkstemp creates it so), like the reference writes these files: they can hold
    credentials. ``follow_symlinks``: replace a symlink's target rather than the link."""
    target = Path(os.path.realpath(path)) if follow_symlinks else path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    # The rename itself must reach the disk too; not every filesystem lets a directory be synced.
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
