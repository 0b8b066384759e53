"""The installed `jupervisor` command, run as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.integration

EXE = shutil.which("jupervisor", path=str(Path(sys.executable).parent)) or "jupervisor"


def jv(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, input=input, timeout=timeout)


def test_run_code_streams_and_sets_the_exit_code() -> None:
    ok = jv("run", "-c", "import sys\nprint('out'); print('err', file=sys.stderr)\n6 * 7")
    assert ok.returncode == 0
    assert ok.stdout == "out\n42\n" and "err\n" in ok.stderr
    bad = jv("run", "-c", "1/0")
    assert bad.returncode == 1 and "ZeroDivisionError" in bad.stderr
    piped = jv("run", "-", input="print('from stdin')")
    assert piped.returncode == 0 and piped.stdout == "from stdin\n"


def test_person_errors_are_one_line_and_nonzero(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    for args in (
        ("run", "--kernel", "no-such-kernel", "-c", "1"),
        ("run", str(tmp_path / "missing.py")),
        ("run", str(broken)),
        ("run",),
        ("kernelspec", "remove", "-f", "no-such-kernel"),
    ):
        r = jv(*args)
        assert r.returncode != 0, args
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("jupervisor: "), (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert jv("run", "--timeout", "soon", "-c", "1").returncode == 2  # argparse's own one-line usage error


def test_help_on_every_subcommand() -> None:
    for args in (("--help",), ("run", "--help"), ("start", "--help"), ("kernelspec", "--help"), ("kernelspec", "install", "--help")):
        r = jv(*args)
        assert r.returncode == 0 and "usage:" in r.stdout


def _notebook(path: Path, *sources: str, tags=None) -> Path:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    if tags:
        for i, t in tags.items():
            nb.cells[i].metadata["tags"] = t
    nbformat.write(nb, str(path))
    return path


def test_run_notebook_with_parameters_off_a_terminal(tmp_path: Path) -> None:
    src = _notebook(tmp_path / "nb.ipynb", "n = 1", "print(n + 1)", tags={0: ["parameters"]})
    out = tmp_path / "out.ipynb"
    r = jv("run", str(src), "-o", str(out), "-p", "n", "41")
    assert r.returncode == 0, r.stderr
    assert "cell 2 ok" in r.stderr and "\r" not in r.stderr  # plain log lines, no progress bar
    done = nbformat.read(str(out), as_version=4)
    assert done.cells[2].outputs[0]["text"] == "42\n"


def test_parallel_notebooks_all_correct(tmp_path: Path) -> None:
    paths = [str(_notebook(tmp_path / f"nb{i}.ipynb", f"print({i} * 3)")) for i in range(8)]
    r = jv("run", "--parallel", "4", *paths, timeout=300)
    assert r.returncode == 0, r.stderr
    for i, p in enumerate(paths):
        done = nbformat.read(p.replace(".ipynb", ".out.ipynb"), as_version=4)
        assert done.cells[0].outputs[0]["text"] == f"{i * 3}\n"


def test_failing_notebook_exit_code(tmp_path: Path) -> None:
    src = _notebook(tmp_path / "fail.ipynb", "raise RuntimeError('nope')")
    r = jv("run", str(src))
    assert r.returncode == 1 and "RuntimeError: nope" in r.stderr


def test_kernelspec_install_list_remove(tmp_path: Path) -> None:
    env = {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTER_PATH": str(tmp_path / "extra")}
    src = tmp_path / "myspec"
    src.mkdir()
    (src / "kernel.json").write_text(json.dumps({"argv": ["python3", "-m", "x", "{connection_file}"], "display_name": "Mine", "language": "python"}))
    assert jv("kernelspec", "install", str(src), "--user", "--name", "mine", env=env).returncode == 0
    listed = json.loads(jv("kernelspec", "list", "--json", env=env).stdout)["kernelspecs"]
    assert listed["mine"]["spec"]["display_name"] == "Mine"
    assert listed["mine"]["resource_dir"] == str(tmp_path / "data" / "kernels" / "mine")
    seen_by_jupyter = subprocess.run(
        [sys.executable, "-c", "import json; from jupyter_client.kernelspec import KernelSpecManager as K; "
         "print(json.dumps(K().find_kernel_specs()))"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    assert json.loads(seen_by_jupyter)["mine"] == listed["mine"]["resource_dir"]
    r = jv("kernelspec", "remove", "mine", "-f", env=env)
    assert r.returncode == 0 and not (tmp_path / "data" / "kernels" / "mine").exists()
    assert "mine" not in json.loads(jv("kernelspec", "list", "--json", env=env).stdout)["kernelspecs"]


def test_start_runs_a_kernel_jupyter_clients_can_attach_to(tmp_path: Path) -> None:
    import signal

    from jupyter_client import BlockingKernelClient

    proc = subprocess.Popen([EXE, "start"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        cf = lines[1].split(":", 1)[1].strip()
        assert lines[2].strip() == f"Attach with:    jupyter console --existing {cf}".strip()
        assert oct(Path(cf).stat().st_mode & 0o777) == "0o600"
        kc = BlockingKernelClient(connection_file=cf)
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        reply = kc.execute_interactive("x = 6 * 7", timeout=30)
        assert reply["content"]["status"] == "ok"
        kc.stop_channels()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert not Path(cf).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
