# Private files: connection files, state and token files are written 0600, atomically
# (a temp file in the same dir, fsync, rename), in dirs that are 0700 when we create them.
from __future__ import annotations

import os
import stat
from pathlib import Path


def ensure_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` (and parents) with mode 0700; tighten an existing dir we own.

    Example:
        >>> ensure_private_dir("/tmp/jv-doc-example")          # doctest: +SKIP
    """
    p = Path(path)
    p.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = p.stat()
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077 and not st.st_mode & stat.S_ISVTX:
        os.chmod(p, 0o700)
    return p


def write_private_file(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write `data` to `path` with mode 0600, atomically: readers see the old or the new
    file, never a partial one, and never a moment with looser permissions."""
    p = Path(path)
    ensure_private_dir(p.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        remove_quietly(tmp)
        raise
    return p


def remove_quietly(path: str | os.PathLike[str]) -> bool:
    """Remove a file if it exists; returns whether it was removed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
