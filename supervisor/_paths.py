# Where Jupyter keeps things (data, runtime and kernelspec dirs), computed the way
# jupyter_core does so jupervisor and Jupyter see the same kernels and connection files,
# plus jupervisor's own state and runtime dirs. Every function takes an `env` mapping
# (default os.environ) so callers and tests never need to mutate the process env.
from __future__ import annotations

import os
import site
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

import platformdirs

APPNAME = "jupyter"
_FALSE = ("no", "n", "false", "off", "0", "0.0")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _flag(env: Mapping[str, str], name: str) -> bool:
    return name in env and env[name].lower() not in _FALSE


def _home(env: Mapping[str, str]) -> str:
    return str(Path(env.get("HOME") or Path.home()).expanduser().resolve())


def jupyter_data_dir(env: Mapping[str, str] | None = None) -> str:
    """JUPYTER_DATA_DIR, else the platform's user data dir for Jupyter."""
    e = _env(env)
    if e.get("JUPYTER_DATA_DIR"):
        return e["JUPYTER_DATA_DIR"]
    if _flag(e, "JUPYTER_PLATFORM_DIRS"):
        return platformdirs.user_data_dir(APPNAME, appauthor=False)
    home = _home(e)
    if sys.platform == "darwin":
        return str(Path(home, "Library", "Jupyter"))
    return str(Path(e.get("XDG_DATA_HOME") or Path(home, ".local", "share"), "jupyter"))


def jupyter_runtime_dir(env: Mapping[str, str] | None = None) -> str:
    """JUPYTER_RUNTIME_DIR, else ``<data dir>/runtime`` (where connection files live).

    Example:
        >>> jupyter_runtime_dir({"JUPYTER_RUNTIME_DIR": "/tmp/rt"})
        '/tmp/rt'
    """
    e = _env(env)
    if e.get("JUPYTER_RUNTIME_DIR"):
        return e["JUPYTER_RUNTIME_DIR"]
    return str(Path(jupyter_data_dir(e), "runtime"))


def _system_paths(e: Mapping[str, str]) -> list[str]:
    if _flag(e, "JUPYTER_PLATFORM_DIRS"):
        return platformdirs.site_data_dir(APPNAME, appauthor=False, multipath=True).split(os.pathsep)
    return ["/usr/local/share/jupyter", "/usr/share/jupyter"]


def _prefer_env(e: Mapping[str, str]) -> bool:
    if "JUPYTER_PREFER_ENV_PATH" in e:
        return _flag(e, "JUPYTER_PREFER_ENV_PATH")
    owned = os.access(sys.prefix, os.W_OK)
    if sys.prefix != sys.base_prefix and owned:
        return True
    conda = e.get("CONDA_PREFIX")
    return bool(conda and sys.prefix.startswith(conda) and e.get("CONDA_DEFAULT_ENV", "base") != "base" and owned)


def jupyter_path(*subdirs: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The data dirs Jupyter searches, highest priority first: JUPYTER_PATH, then user and
    environment dirs (environment first in a venv or with JUPYTER_PREFER_ENV_PATH), then
    system dirs.

    Example:
        >>> jupyter_path("kernels", env={"JUPYTER_PATH": "/a"})[0]
        '/a/kernels'
    """
    e = _env(env)
    paths: list[str] = []
    if e.get("JUPYTER_PATH"):
        paths.extend(p.rstrip(os.sep) for p in e["JUPYTER_PATH"].split(os.pathsep) if p)
    user = [jupyter_data_dir(e)]
    if site.ENABLE_USER_SITE:
        userbase = site.getuserbase()
        if userbase:
            userdir = str(Path(userbase, "share", "jupyter"))
            if userdir not in user:
                user.append(userdir)
    system = _system_paths(e)
    env_dirs = [p for p in [str(Path(sys.prefix, "share", "jupyter"))] if p not in system]
    paths.extend(env_dirs + user if _prefer_env(e) else user + env_dirs)
    paths.extend(p for p in system if p not in paths)
    return [str(Path(p, *subdirs)) for p in paths] if subdirs else paths


def jupervisor_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """JUPERVISOR_STATE_DIR (or systemd's STATE_DIRECTORY), else the user state dir."""
    e = _env(env)
    given = e.get("JUPERVISOR_STATE_DIR") or e.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(given) if given else Path(platformdirs.user_state_dir("jupervisor", appauthor=False))


def jupervisor_runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """JUPERVISOR_RUNTIME_DIR (or systemd's RUNTIME_DIRECTORY), else the user runtime dir."""
    e = _env(env)
    given = e.get("JUPERVISOR_RUNTIME_DIR") or e.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if given:
        return Path(given)
    with warnings.catch_warnings():  # no XDG_RUNTIME_DIR (containers, CI): platformdirs' fallback is fine
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_runtime_dir("jupervisor", appauthor=False))
