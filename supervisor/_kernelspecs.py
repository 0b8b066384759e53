# Kernelspec discovery, installation and removal in Jupyter's directories and priority
# order (the first directory that has a name wins), so jupervisor and Jupyter see the
# same kernels. If no `python3` kernelspec is installed, the one ipykernel ships is
# offered, as jupyter_client does.
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import attrs

from ._paths import jupyter_data_dir, jupyter_path
from .protocol import KernelSpec, KernelSpecError

NATIVE_KERNEL_NAME = "python3"
_VALID_NAME = re.compile(r"^[a-z0-9._-]+$", re.IGNORECASE)


@attrs.define(kw_only=True, auto_exc=True)
class NoSuchKernelSpec(LookupError):
    """No kernelspec has this name."""

    name: str
    searched: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"no kernelspec named {self.name!r} (looked in: {', '.join(self.searched) or 'nowhere'})"


def _native_resources() -> Path | None:
    spec = importlib.util.find_spec("ipykernel")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0], "resources")


def _native_spec(resource_dir: Path) -> KernelSpec:
    return KernelSpec(
        name=NATIVE_KERNEL_NAME,
        resource_dir=str(resource_dir),
        argv=(sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"),
        display_name="Python 3 (ipykernel)",
        language="python",
        metadata={"debugger": True},
    )


def find_kernel_specs(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every kernelspec name found, mapped to its resource dir (first dir wins).

    Example:
        >>> "python3" in find_kernel_specs()                          # doctest: +SKIP
        True
    """
    found: dict[str, str] = {}
    for kernels_dir in jupyter_path("kernels", env=env):
        d = Path(kernels_dir)
        if not d.is_dir():
            continue
        try:
            entries = sorted(d.iterdir())
        except OSError:
            continue
        for entry in entries:
            name = entry.name.lower()
            if _VALID_NAME.match(name) and name not in found and (entry / "kernel.json").is_file():
                found[name] = str(entry)
    if NATIVE_KERNEL_NAME not in found:
        native = _native_resources()
        if native is not None:
            found[NATIVE_KERNEL_NAME] = str(native)
    return found


def get_kernel_spec(name: str, env: Mapping[str, str] | None = None) -> KernelSpec:
    """The kernelspec called `name` (case-insensitive).

    Raises:
        NoSuchKernelSpec: none of Jupyter's kernel dirs has it.
        KernelSpecError: its kernel.json is malformed (the message names the file and field).
    """
    specs = find_kernel_specs(env)
    resource_dir = specs.get(name.lower())
    if resource_dir is None:
        raise NoSuchKernelSpec(name=name, searched=tuple(jupyter_path("kernels", env=env)))
    path = Path(resource_dir, "kernel.json")
    if name.lower() == NATIVE_KERNEL_NAME and not path.exists():
        return _native_spec(Path(resource_dir))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KernelSpecError(source=str(path), field="", reason=f"cannot read: {exc}") from None
    return KernelSpec.from_json(text, name=name.lower(), resource_dir=resource_dir, source=str(path))


def _install_root(user: bool, prefix: str | None, env: Mapping[str, str] | None) -> Path:
    if user:
        return Path(jupyter_data_dir(env), "kernels")
    if prefix:
        return Path(prefix, "share", "jupyter", "kernels")
    return Path(sys.prefix, "share", "jupyter", "kernels")


def install_kernel_spec(
    source_dir: str | Path,
    *,
    name: str | None = None,
    user: bool = False,
    prefix: str | None = None,
    replace: bool = True,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Copy a kernelspec dir into Jupyter's kernels dir; returns where it went.

    Raises:
        KernelSpecError: the source has no valid kernel.json.
        ValueError: the name is not a valid kernelspec name.
        FileExistsError: it exists and `replace` is False.
    """
    src = Path(source_dir)
    kernel_name = (name or src.resolve().name).lower()
    if not _VALID_NAME.match(kernel_name):
        raise ValueError(f"invalid kernelspec name {kernel_name!r}: use letters, digits, '.', '_' and '-'")
    kernel_json = src / "kernel.json"
    try:
        text = kernel_json.read_text(encoding="utf-8")
    except OSError as exc:
        raise KernelSpecError(source=str(kernel_json), field="", reason=f"cannot read: {exc.strerror}") from None
    KernelSpec.from_json(text, name=kernel_name, resource_dir=str(src), source=str(kernel_json))
    dest = _install_root(user, prefix, env) / kernel_name
    if dest.exists():
        if not replace:
            raise FileExistsError(f"kernelspec {kernel_name!r} exists at {dest}")
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest)
    return dest


def remove_kernel_spec(name: str, env: Mapping[str, str] | None = None) -> Path:
    """Delete an installed kernelspec dir; returns the dir removed.

    Raises:
        NoSuchKernelSpec: no installed kernelspec of that name.
    """
    specs = find_kernel_specs(env)
    resource_dir = specs.get(name.lower())
    if resource_dir is None or not Path(resource_dir, "kernel.json").exists():
        raise NoSuchKernelSpec(name=name, searched=tuple(jupyter_path("kernels", env=env)))
    shutil.rmtree(resource_dir)
    return Path(resource_dir)


def kernel_spec_summary(env: Mapping[str, str] | None = None) -> dict[str, dict[str, object]]:
    """``{name: {"resource_dir": ..., "spec": kernel.json dict}}`` like ``jupyter kernelspec list --json``;
    a malformed spec is listed with an ``error`` instead of failing the whole listing."""
    out: dict[str, dict[str, object]] = {}
    for name, resource_dir in find_kernel_specs(env).items():
        try:
            out[name] = {"resource_dir": resource_dir, "spec": get_kernel_spec(name, env).to_dict()}
        except (KernelSpecError, json.JSONDecodeError) as exc:
            out[name] = {"resource_dir": resource_dir, "error": str(exc)}
    return out
