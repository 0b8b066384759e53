"""Jupyter paths, private files and kernelspec discovery, compared with jupyter_core/jupyter_client."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from jupervisor._files import ensure_private_dir, remove_quietly, write_private_file
from jupervisor._kernelspecs import (
    NoSuchKernelSpec,
    find_kernel_specs,
    get_kernel_spec,
    install_kernel_spec,
    remove_kernel_spec,
)
from jupervisor._paths import jupyter_data_dir, jupyter_path, jupyter_runtime_dir
from jupervisor.protocol import KernelSpecError


def _spec_dir(root: Path, name: str, display: str) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "kernel.json").write_text(json.dumps({"argv": ["x", "{connection_file}"], "display_name": display, "language": "x"}))
    return d


def test_paths_match_jupyter_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_core import paths as jc

    monkeypatch.setenv("JUPYTER_PATH", f"{tmp_path}/a{os.pathsep}{tmp_path}/b")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    for prefer in ("1", "0"):
        monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", prefer)
        assert jupyter_path("kernels") == jc.jupyter_path("kernels")
    assert jupyter_data_dir() == jc.jupyter_data_dir()
    monkeypatch.delenv("JUPYTER_RUNTIME_DIR")
    assert jupyter_runtime_dir() == jc.jupyter_runtime_dir() == str(tmp_path / "data" / "runtime")
    assert jupyter_runtime_dir({"JUPYTER_RUNTIME_DIR": "/x"}) == "/x"


def test_kernelspecs_found_in_priority_order_and_as_jupyter_client_finds_them(tmp_path: Path, monkeypatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    first, second = tmp_path / "first" / "kernels", tmp_path / "second" / "kernels"
    _spec_dir(first, "toy", "first wins")
    _spec_dir(second, "toy", "shadowed")
    _spec_dir(second, "Other", "other")
    monkeypatch.setenv("JUPYTER_PATH", f"{tmp_path / 'first'}{os.pathsep}{tmp_path / 'second'}")
    specs = find_kernel_specs()
    assert specs["toy"] == str(first / "toy") and specs["other"] == str(second / "Other")
    assert get_kernel_spec("toy").display_name == "first wins"
    assert get_kernel_spec("TOY").name == "toy"
    assert specs == KernelSpecManager().find_kernel_specs()
    with pytest.raises(NoSuchKernelSpec) as e:
        get_kernel_spec("nope")
    assert str(first) in str(e.value)


def test_malformed_kernel_json_error_names_the_file(tmp_path: Path, monkeypatch) -> None:
    d = tmp_path / "kernels" / "broken"
    d.mkdir(parents=True)
    (d / "kernel.json").write_text('{"argv": "not a list"}')
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    with pytest.raises(KernelSpecError) as e:
        get_kernel_spec("broken")
    assert str(d / "kernel.json") in str(e.value) and "argv" in str(e.value)


def test_install_list_remove_round_trip(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    src = _spec_dir(tmp_path / "src", "mine", "Mine")
    dest = install_kernel_spec(src, user=True)
    assert dest == tmp_path / "data" / "kernels" / "mine"
    assert get_kernel_spec("mine").display_name == "Mine"
    with pytest.raises(FileExistsError):
        install_kernel_spec(src, user=True, replace=False)
    assert install_kernel_spec(src, name="other", prefix=str(tmp_path / "pre")).parent == tmp_path / "pre" / "share" / "jupyter" / "kernels"
    assert remove_kernel_spec("mine") == dest and not dest.exists()
    with pytest.raises(NoSuchKernelSpec):
        remove_kernel_spec("mine")
    with pytest.raises(ValueError, match="invalid kernelspec name"):
        install_kernel_spec(src, name="bad name", user=True)


def test_private_files_are_0600_in_0700_dirs_and_atomic(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state" / "registry.json"
    write_private_file(target, '{"a": 1}')
    write_private_file(target, b'{"a": 2}')
    assert json.loads(target.read_text()) == {"a": 2}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in target.parent.iterdir()) == ["registry.json"]  # no temp files left
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    ensure_private_dir(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700
    assert remove_quietly(target) and not remove_quietly(target)
