"""A wheel built from the tree installs and imports all three packages, outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_wheel_installs_and_imports_all_three_packages(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        cwd=tmp_path,
    )
    wheel = next(dist.glob("jupervisor-*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        check=True,
    )
    code = (
        "import sys, jupervisor, jupervisor.actors, jupervisor.protocol\n"
        "for m in (jupervisor, jupervisor.actors, jupervisor.protocol): print(m.__file__)\n"
        "print(jupervisor.open_supervisor.__module__)\n"
    )
    # -S: no site-packages at all (so no editable install); dependencies come from this
    # interpreter's site dirs appended after the fresh target.
    import site

    deps = os.pathsep.join(site.getsitepackages())
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{target}{os.pathsep}{deps}"}
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    ).stdout.split()
    assert all(p.startswith(str(target)) for p in out[:3]), out
    assert out[0].endswith("jupervisor/__init__.py")
    assert out[1].endswith("jupervisor/actors/__init__.py")
    assert out[2].endswith("jupervisor/protocol/__init__.py")
    assert out[3] == "jupervisor._supervisor"
    # the preload server is run by path with the kernel's python: it must ship as a file
    assert (target / "jupervisor" / "actors" / "_preload_server.py").is_file()
