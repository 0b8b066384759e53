# Kernelspecs: kernel.json parsed into a frozen KernelSpec, and argv/env templating.
# Rules kept here: a malformed file raises KernelSpecError naming the source and the
# field; `python`/`python3` as argv[0] maps to the running interpreter (as jupyter_client
# does); `${VAR}` in env values is substituted from the launching environment.
from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._errors import KernelSpecError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@attrs.frozen(kw_only=True)
class KernelSpec:
    """A kernel's launch description (kernel.json).

    Attributes:
        name: The kernelspec name (its directory name).
        resource_dir: The directory holding kernel.json and its resources.
        argv: The command line, with ``{connection_file}`` and friends unexpanded.
        display_name: The human name.
        language: The language name.
        interrupt_mode: ``signal`` (SIGINT) or ``message`` (interrupt_request).
        env: Extra environment variables, values may contain ``${VAR}``.
        metadata: Free-form metadata (``kernel_provisioner``, ``debugger``, ...).
        kernel_protocol_version: The protocol the kernel says it speaks.
    """

    name: str
    resource_dir: str = ""
    argv: tuple[str, ...]
    display_name: str = ""
    language: str = ""
    interrupt_mode: str = "signal"
    env: Mapping[str, str] = attrs.field(factory=dict)
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    kernel_protocol_version: str = "5.0"

    @classmethod
    def from_json(
        cls, data: str | bytes | Mapping[str, Any], *, name: str, resource_dir: str = "", source: str | None = None
    ) -> KernelSpec:
        """Parse kernel.json text (or its decoded object).

        Raises:
            KernelSpecError: not JSON, or a field missing or of the wrong type.

        Example:
            >>> KernelSpec.from_json('{"argv": ["python", "-f", "{connection_file}"], "display_name": "P",'
            ...                      ' "language": "python"}', name="p").argv[0]
            'python'
        """
        src = source or (f"{resource_dir}/kernel.json" if resource_dir else f"kernelspec {name!r}")
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise KernelSpecError(source=src, field="", reason=f"not valid JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise KernelSpecError(source=src, field="", reason=f"expected a JSON object, got {type(data).__name__}")

        def fail(field: str, expected: str) -> KernelSpecError:
            return KernelSpecError(source=src, field=field, reason=f"expected {expected}, got {data.get(field)!r}")

        argv = data.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise fail("argv", "a non-empty list of strings")
        strings = {}
        for key in ("display_name", "language"):
            v = data.get(key, "")
            if not isinstance(v, str):
                raise fail(key, "a string")
            strings[key] = v
        mode = data.get("interrupt_mode", "signal")
        if mode not in ("signal", "message"):
            raise fail("interrupt_mode", "'signal' or 'message'")
        env = data.get("env", {}) or {}
        if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise fail("env", "an object of strings")
        metadata = data.get("metadata", {}) or {}
        if not isinstance(metadata, Mapping):
            raise fail("metadata", "an object")
        version = data.get("kernel_protocol_version", "5.0")
        if not isinstance(version, str):
            raise fail("kernel_protocol_version", "a string")
        return cls(
            name=name,
            resource_dir=resource_dir,
            argv=tuple(argv),
            interrupt_mode=mode,
            env=dict(env),
            metadata=dict(metadata),
            kernel_protocol_version=version,
            **strings,
        )

    def to_dict(self) -> dict[str, Any]:
        """The kernel.json object."""
        return {
            "argv": list(self.argv),
            "display_name": self.display_name,
            "language": self.language,
            "interrupt_mode": self.interrupt_mode,
            "env": dict(self.env),
            "metadata": dict(self.metadata),
            "kernel_protocol_version": self.kernel_protocol_version,
        }

    def launch_argv(
        self, connection_file: str, *, prefix: str | None = None, python: str | None = None
    ) -> list[str]:
        """The argv to run, with ``{connection_file}``, ``{resource_dir}`` and ``{prefix}`` filled in.

        ``python``/``python3`` as argv[0] becomes ``python`` (default: ``sys.executable``).
        """
        values = {
            "connection_file": connection_file,
            "resource_dir": self.resource_dir,
            "prefix": sys.prefix if prefix is None else prefix,
        }

        def fill(arg: str) -> str:
            return re.sub(r"\{(connection_file|resource_dir|prefix)\}", lambda m: values[m.group(1)], arg)

        argv = [fill(a) for a in self.argv]
        if argv[0] in ("python", "python3", f"python{sys.version_info[0]}"):
            argv[0] = python or sys.executable
        return argv

    def launch_env(self, base: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for the kernel: ``base`` plus the spec's env (``${VAR}`` substituted
        from ``base``; unknown variables are left as written) plus ``extra``."""
        env = dict(base)
        for key, value in self.env.items():
            env[key] = _VAR.sub(lambda m: base.get(m.group(1), m.group(0)), value)
        if extra:
            env.update(extra)
        return env


def substitute(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Fill ``{name}`` placeholders in argv from ``values``, leaving unknown ones as written."""
    return [re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), a) for a in argv]
