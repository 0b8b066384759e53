"""`jupervisor ps`, `--prune`, `shutdown` and `diagram` over real processes and a real Jupyter server."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .helpers import wait_jupyter_server

pytestmark = pytest.mark.integration

EXE = shutil.which("jupervisor", path=str(Path(sys.executable).parent)) or "jupervisor"


def jv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=60)


def wait_file(p: Path) -> None:
    deadline = time.monotonic() + 30
    while not (p.exists() and p.stat().st_size > 0):
        assert time.monotonic() < deadline, p
        time.sleep(0.05)


def wait_answers(cf: Path) -> None:
    """Block until the kernel behind `cf` answers kernel_info (its start-up is over)."""
    from jupervisor import blocking

    wait_file(cf)
    with blocking.connect(cf) as k:
        k.kernel_info(timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ps_prune_shutdown_and_diagram(jupyter_dirs: Path, tmp_path: Path) -> None:
    runtime = jupyter_dirs
    runtime.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    try:
        # 1. a kernel jupervisor runs
        ours = subprocess.Popen([EXE, "start"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(ours)
        ours_line = ours.stdout.readline()
        ours_id = ours_line.split()[1]
        # 2. a kernel started by hand
        hand_cf = runtime / "kernel-byhand.json"
        hand = subprocess.Popen([sys.executable, "-m", "ipykernel_launcher", "-f", str(hand_cf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(hand)
        # 3. a stale file: its kernel was killed
        stale_cf = runtime / "kernel-stale.json"
        stale = subprocess.Popen([sys.executable, "-m", "ipykernel_launcher", "-f", str(stale_cf)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_file(stale_cf)
        wait_file(hand_cf)
        stale.kill()  # ipykernel writes its connection file after binding: the file is complete
        stale.wait()
        # 4. a real Jupyter server that owns a kernel and a session
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--port={port}", "--ip=127.0.0.1", "--no-browser",
             "--allow-root", "--IdentityProvider.token=srv", f"--ServerApp.root_dir={tmp_path}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"),
        )
        procs.append(server)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "token srv"}, timeout=60) as c:
            wait_jupyter_server(c, tmp_path / "server.log")
            sess = c.post("/api/sessions", json={"path": "work/analysis.ipynb", "type": "notebook",
                                                   "kernel": {"name": "python3"}}).json()
            server_kid = sess["kernel"]["id"]
        # ps probes with a short timeout; a kernel still starting on a loaded machine would read "busy"
        for kid in (ours_id, "byhand", server_kid):
            wait_answers(next(runtime.parent.rglob(f"kernel-{kid}.json")))

        started = time.monotonic()
        r = jv("ps", "--json", "--probe-timeout", "3")  # generous: this machine also runs other tests
        elapsed = time.monotonic() - started
        assert r.returncode == 0, r.stderr
        inv = json.loads(r.stdout)
        rows = {k["kernel_id"]: k for k in inv["kernels"]}
        assert rows[ours_id]["owner"] == "jupervisor" and rows[ours_id]["state"] == "idle"
        assert rows["byhand"]["pid"] == hand.pid and rows["byhand"]["state"] == "idle"
        assert rows["byhand"]["owner"] == "unknown"
        assert rows["stale"]["state"] == "dead" and rows["stale"]["pid"] is None
        assert rows[server_kid]["owner"] == "server" and rows[server_kid]["notebook"] == "work/analysis.ipynb"
        assert rows[server_kid]["server"].startswith(f"http://127.0.0.1:{port}")
        assert server.pid in rows[server_kid]["parents"] and rows[server_kid]["state"] == "idle"
        assert all(s["reachable"] for s in inv["servers"])
        assert elapsed < 30

        pruned = jv("ps", "--prune", "--probe-timeout", "3")
        assert pruned.stdout.strip() == f"removed {stale_cf}"
        assert not stale_cf.exists() and hand_cf.exists()

        diagram = jv("diagram").stdout
        assert diagram.startswith("flowchart LR")
        for needle in (f"k_{server_kid.replace('-', '_')}", f"p{hand.pid}", "session work/analysis.ipynb",
                       f"p{server.pid} -. parent of .-> p{rows[server_kid]['pid']}", "server0 --> s0_0"):
            assert needle in diagram, needle

        down = jv("shutdown", "byhand")
        assert down.returncode == 0 and "shut down" in down.stdout
        assert hand.wait(10) == 0
        assert jv("shutdown", "no-such-kernel").returncode == 2
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
