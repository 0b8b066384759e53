"""Test kernels: real processes that speak the Jupyter protocol, some deliberately broken."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from jupervisor.protocol import KernelSpec

TOYKERNEL = Path(__file__).with_name("toykernel.py")


def toy_spec(*behaviours: str, name: str = "toy", interrupt_mode: str = "signal") -> KernelSpec:
    """A KernelSpec that runs the toy kernel with the given behaviours."""
    return KernelSpec(
        name=name,
        argv=(sys.executable, str(TOYKERNEL), "-f", "{connection_file}"),
        display_name="Toy",
        language="toy",
        interrupt_mode=interrupt_mode,
        env={"TOYKERNEL_BEHAVIOUR": ",".join(behaviours)},
    )


def toy_kernelspec_dir(root: Path, behaviours: Sequence[str] = (), name: str = "toy") -> Path:
    """Write a kernelspec dir for the toy kernel under `root` and return it."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "kernel.json").write_text(json.dumps(toy_spec(*behaviours, name=name).to_dict()))
    return d
