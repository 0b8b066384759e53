# Settings: TOML files loaded into frozen values, validated at start and on reload. A bad
# value raises SettingsError naming the file, the dotted key, what was expected and what
# came. The token is never logged; by default it is generated and written 0600.
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .actors import Backoff, KernelOptions, LivenessConfig, OnExhausted, RestartPolicy, RestartType, Strategy


@attrs.define(kw_only=True, auto_exc=True)
class SettingsError(ValueError):
    """A settings file has an unknown key or a value of the wrong type or range."""

    source: str
    key: str
    expected: str
    got: Any

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: expected {self.expected}, got {self.got!r}"


@attrs.frozen(kw_only=True)
class DaemonSettings:
    bind: str = "127.0.0.1"
    port: int = 8889
    unix_socket: str | None = None
    token: str | None = None
    base_url: str = "/"
    state_dir: str | None = None
    runtime_dir: str | None = None
    keep_kernels_on_stop: bool = False
    adopt_kernels: bool = True
    max_kernels: int = 0
    max_kernels_per_spec: Mapping[str, int] = attrs.field(factory=dict)
    warm_pools: Mapping[str, int] = attrs.field(factory=dict)
    cull_idle_timeout_s: float = 0.0
    cull_interval_s: float = 300.0
    cull_busy: bool = False
    cull_connected: bool = False
    log_level: str = "info"


@attrs.frozen(kw_only=True)
class Settings:
    """Everything the daemon (and embedders, if they like) configure."""

    daemon: DaemonSettings = DaemonSettings()
    kernels: KernelOptions = KernelOptions()
    restart: RestartPolicy = RestartPolicy()
    per_kernelspec: Mapping[str, RestartPolicy] = attrs.field(factory=dict)

    def policy_for(self, kernel_name: str) -> RestartPolicy:
        return self.per_kernelspec.get(kernel_name, self.restart)


# key -> (type check, expected text); floats accept ints, never bools
def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_CHECKS = {
    "number >= 0": lambda v: _num(v) and v >= 0,
    "number > 0": lambda v: _num(v) and v > 0,
    "integer >= 0": lambda v: _int(v) and v >= 0,
    "integer >= 1": lambda v: _int(v) and v >= 1,
    "port number": lambda v: _int(v) and 0 <= v <= 65535,
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "table of integers >= 0": lambda v: isinstance(v, dict) and all(_int(x) and x >= 0 for x in v.values()),
}

_SCHEMA: dict[str, dict[str, str | tuple[str, ...]]] = {
    "daemon": {
        "bind": "string", "port": "port number", "unix_socket": "string", "token": "string", "base_url": "string",
        "state_dir": "string", "runtime_dir": "string", "keep_kernels_on_stop": "boolean", "adopt_kernels": "boolean",
        "max_kernels": "integer >= 0", "log_level": ("debug", "info", "warning", "error"),
        "max_kernels_per_spec": "table of integers >= 0", "warm_pools": "table of integers >= 0",
        "cull_idle_timeout_s": "number >= 0", "cull_interval_s": "number > 0", "cull_busy": "boolean",
        "cull_connected": "boolean",
    },
    "kernels": {
        "start_timeout_s": "number > 0", "shutdown_request_timeout_s": "number >= 0", "terminate_timeout_s": "number >= 0",
        "kill_timeout_s": "number >= 0", "heartbeat_interval_s": "number > 0", "transport": ("tcp", "ipc"),
        "ip": "string", "start_retries": "integer >= 1", "preload": "boolean",
        "iopub_busy_poll_s": "number >= 0",
    },
    "liveness": {
        "heartbeat_misses": "integer >= 1", "start_grace_s": "number >= 0", "probe_interval_s": "number > 0",
        "probe_timeout_s": "number > 0", "probes": "boolean",
    },
    "restart": {
        "restart": tuple(t.value for t in RestartType), "strategy": tuple(s.value for s in Strategy),
        "max_restarts": "integer >= 0", "within_s": "number > 0", "on_exhausted": tuple(o.value for o in OnExhausted),
        "backoff_initial_s": "number >= 0", "backoff_factor": "number >= 0", "backoff_max_s": "number >= 0",
        "backoff_jitter": "number >= 0", "backoff_reset_after_s": "number >= 0",
    },
}


def _check(source: str, section: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise SettingsError(source=source, key=section, expected="a table", got=table)
    schema = _SCHEMA["restart" if section.startswith("restart.") else section]
    for key, value in table.items():
        rule = schema.get(key)
        dotted = f"{section}.{key}"
        if rule is None:
            raise SettingsError(source=source, key=dotted, expected=f"one of {', '.join(sorted(schema))}", got=key)
        if isinstance(rule, tuple):
            if value not in rule:
                raise SettingsError(source=source, key=dotted, expected=" or ".join(map(repr, rule)), got=value)
        elif not _CHECKS[rule](value):
            raise SettingsError(source=source, key=dotted, expected=f"a {rule}", got=value)
    return table


def _policy(t: Mapping[str, Any], base: RestartPolicy) -> RestartPolicy:
    b = base.backoff
    backoff = Backoff(
        initial_s=t.get("backoff_initial_s", b.initial_s), factor=max(1.0, t.get("backoff_factor", b.factor)),
        max_s=t.get("backoff_max_s", b.max_s), jitter=min(1.0, t.get("backoff_jitter", b.jitter)),
        reset_after_s=t.get("backoff_reset_after_s", b.reset_after_s),
    )
    return RestartPolicy(
        restart=t.get("restart", base.restart), strategy=t.get("strategy", base.strategy),
        max_restarts=t.get("max_restarts", base.max_restarts), within_s=t.get("within_s", base.within_s),
        backoff=backoff, on_exhausted=t.get("on_exhausted", base.on_exhausted),
    )


def settings_from_mapping(data: Mapping[str, Any], source: str = "<settings>") -> Settings:
    """Validate a decoded TOML document into Settings.

    Raises:
        SettingsError: an unknown section or key, or a bad value (names source and key).
    """
    for section in data:
        if section not in _SCHEMA:
            raise SettingsError(source=source, key=section, expected=f"one of {', '.join(_SCHEMA)}", got=section)
    d = _check(source, "daemon", data.get("daemon", {}))
    k = _check(source, "kernels", data.get("kernels", {}))
    lv = _check(source, "liveness", data.get("liveness", {}))
    restart_table = dict(data.get("restart", {}))
    overrides = restart_table.pop("kernelspec", {})
    r = _check(source, "restart", restart_table)
    default_policy = _policy(r, RestartPolicy())
    per = {}
    for name, table in (overrides or {}).items():
        per[name] = _policy(_check(source, f"restart.kernelspec.{name}", table), default_policy)
    kernels = KernelOptions(**k, liveness=LivenessConfig(**lv))
    return Settings(daemon=DaemonSettings(**d), kernels=kernels, restart=default_policy, per_kernelspec=per)


def load_settings(path: str | Path) -> Settings:
    """Load and validate a TOML settings file.

    Raises:
        SettingsError: the file is not valid TOML, or a key or value is wrong.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(source=str(p), key="", expected="a readable file", got=exc.strerror) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(source=str(p), key="", expected="valid TOML", got=str(exc)) from None
    return settings_from_mapping(data, str(p))
