"""Shared fixtures: every test runs with private Jupyter dirs, so it never touches the
user's runtime dir and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def jupyter_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private JUPYTER_RUNTIME_DIR / JUPERVISOR_* dirs for each test."""
    root = tmp_path_factory.mktemp("jupyter")
    runtime = root / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JUPERVISOR_RUNTIME_DIR", str(root / "jv-runtime"))
    monkeypatch.setenv("JUPERVISOR_STATE_DIR", str(root / "jv-state"))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return runtime


def open_fds() -> set[int]:
    """The file descriptors this process has open now."""
    return {int(fd) for fd in os.listdir("/proc/self/fd")}
