# Connection files of the kernels we start: written 0600 (atomically, in a 0700 dir)
# to Jupyter's runtime dir, so `jupyter console --existing` finds them.
from __future__ import annotations

from pathlib import Path

import attrs

from ._files import ensure_private_dir, remove_quietly, write_private_file
from ._paths import jupyter_runtime_dir
from .protocol import ConnectionInfo


@attrs.define
class RuntimeConnectionFiles:
    """Writes ``kernel-<id>.json`` files into one directory (default: Jupyter's runtime dir)."""

    _directory: Path | None = None

    @property
    def directory(self) -> Path:
        if self._directory is None:
            self._directory = Path(jupyter_runtime_dir())
        ensure_private_dir(self._directory)
        return self._directory

    def write(self, kernel_id: str, info: ConnectionInfo) -> Path:
        path = self.directory / f"kernel-{kernel_id}.json"
        write_private_file(path, info.to_json())
        return path

    def remove(self, path: Path) -> None:
        remove_quietly(path)
