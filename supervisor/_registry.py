# The daemon's kernel registry: which kernels it supervises (id, kernelspec, pid,
# connection info), rewritten atomically (0600) on every change, so a daemon started again
# after a crash or SIGKILL can re-adopt the kernels that are still alive.
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import attrs

from ._files import remove_quietly, write_private_file
from .actors import Adoption, event
from .protocol import ConnectionInfo, ConnectionInfoError

log = logging.getLogger("jupervisor.registry")


@attrs.frozen
class Entry:
    kernel_id: str
    kernel_name: str
    adoption: Adoption


@attrs.define
class Registry:
    """A JSON file in the state dir."""

    path: Path

    def save(self, kernels: list[Any]) -> None:
        rows = []
        for k in kernels:
            info = k.connection_info
            if info is None or k.pid is None or k.connection_file is None:
                continue
            rows.append({"id": k.id, "name": k.kernel_name, "pid": k.pid, "connection_file": str(k.connection_file),
                         "connection": info.to_dict()})
        write_private_file(self.path, json.dumps({"version": 1, "kernels": rows}, indent=1))

    def load(self) -> list[Entry]:
        """The entries of the last run; a damaged file is reported and treated as empty."""
        try:
            data = json.loads(self.path.read_text())
            rows = data["kernels"]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError) as exc:
            event(log, "registry.unreadable", logging.ERROR, path=str(self.path), error=type(exc).__name__)
            return []
        out = []
        for row in rows:
            try:
                info = ConnectionInfo.from_dict(row["connection"], source=str(self.path))
                out.append(Entry(row["id"], row["name"], Adoption(pid=int(row["pid"]), info=info,
                                                                  connection_file=Path(row["connection_file"]))))
            except (KeyError, TypeError, ValueError, ConnectionInfoError) as exc:
                event(log, "registry.bad_entry", logging.WARNING, error=str(exc)[:200])
        return out

    def clear(self) -> None:
        remove_quietly(self.path)
