"""Settings files: the shipped defaults load; every mistake names the file and the key."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from jupervisor._settings import Settings, SettingsError, load_settings, settings_from_mapping
from jupervisor.actors import RestartType

CONFIG = Path(__file__).resolve().parents[1] / "config"


def test_shipped_config_is_exactly_the_defaults() -> None:
    assert load_settings(CONFIG / "jupervisor.toml") == Settings()


@pytest.mark.parametrize(
    "doc, key, expected",
    [
        ({"daemon": {"port": "80"}}, "daemon.port", "a port number"),
        ({"daemon": {"port": True}}, "daemon.port", "a port number"),
        ({"kernels": {"heartbeat_interval_s": -1}}, "kernels.heartbeat_interval_s", "a number > 0"),
        ({"kernels": {"transport": "udp"}}, "kernels.transport", "'tcp' or 'ipc'"),
        ({"kernels": {"iopub_busy_poll_s": "1ms"}}, "kernels.iopub_busy_poll_s", "a number >= 0"),
        ({"restart": {"restart": "sometimes"}}, "restart.restart", "'permanent'"),
        ({"restart": {"kernelspec": {"ir": {"max_restarts": 1.5}}}}, "restart.kernelspec.ir.max_restarts", "integer"),
        ({"daemon": {"colour": "blue"}}, "daemon.colour", "one of"),
        ({"network": {}}, "network", "one of"),
    ],
)
def test_bad_values_name_file_and_key(doc: dict, key: str, expected: str) -> None:
    with pytest.raises(SettingsError) as e:
        settings_from_mapping(doc, "/etc/jv.toml")
    assert e.value.key == key and expected in str(e.value) and str(e.value).startswith("/etc/jv.toml: ")


def test_per_kernelspec_overrides_and_ints_for_floats(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text("[restart]\nmax_restarts = 2\nwithin_s = 30\n[restart.kernelspec.ir]\nrestart = 'transient'\n")
    s = load_settings(p)
    assert s.policy_for("python3").max_restarts == 2 and s.policy_for("python3").within_s == 30
    ir = s.policy_for("ir")
    assert ir.restart is RestartType.TRANSIENT and ir.max_restarts == 2
    p.write_text("[daemon\n")
    with pytest.raises(SettingsError, match="valid TOML"):
        load_settings(p)


def test_systemd_unit_has_what_operators_need() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(CONFIG / "jupervisor.service")
    svc = unit["Service"]
    assert svc["Type"] == "notify" and svc["Restart"] == "on-failure" and svc["KillMode"] == "mixed"
    assert float(svc["RestartSec"]) >= 1 and int(svc["WatchdogSec"]) > 0
    assert svc["RuntimeDirectory"] == svc["StateDirectory"] == "jupervisor"
    assert "daemon --config" in svc["ExecStart"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / "jupervisor.service"
    exe = shutil.which("true")
    unit.write_text((CONFIG / "jupervisor.service").read_text().replace("/opt/jupervisor/bin/jupervisor", exe))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
