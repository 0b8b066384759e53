"""The daemon as operators run it: a subprocess with a settings file, behind a real Jupyter server
(`--gateway-url`), with a real notify socket, tokens and private dirs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from .helpers import wait_jupyter_server

pytestmark = pytest.mark.integration

EXE = shutil.which("jupervisor", path=str(Path(sys.executable).parent)) or "jupervisor"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, tmp: Path, token: str = "t0ken-for-tests", env: dict | None = None, extra: str = "") -> None:
        self.token = token
        self.state, self.runtime = tmp / "state", tmp / "runtime"
        self.config = tmp / "jupervisor.toml"
        self.config.write_text(
            f'[daemon]\nport = 0\ntoken = "{token}"\nstate_dir = "{self.state}"\nruntime_dir = "{self.runtime}"\n'
            f'log_level = "info"\n{extra}'
        )
        self.proc = subprocess.Popen([EXE, "daemon", "--config", str(self.config)], stderr=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})})
        self.log: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            self.log.append(line)
            m = re.search(r"event=daemon.ready urls=(\S+)", line)
            if m:
                self.url = m.group(1).split(",")[0]
                return
        raise AssertionError("daemon did not become ready: " + "".join(self.log))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        self.log.extend(self.proc.stderr.readlines())
        return rc


@pytest.fixture
def daemon(tmp_path: Path):
    d = Daemon(tmp_path)
    yield d
    if d.proc.poll() is None:
        d.stop()


def test_token_required_and_private_dirs(daemon: Daemon) -> None:
    with httpx.Client(base_url=daemon.url, timeout=30) as c:
        assert c.get("/api/kernels").status_code == 401
        wrong = c.get("/api/kernels", headers={"Authorization": "token wrong"})
        assert wrong.status_code == 403 and "kernel" not in wrong.text
        ok = c.get("/api/kernels", headers={"Authorization": f"token {daemon.token}"})
        assert ok.status_code == 200 and ok.json() == []
        specs = c.get("/api/kernelspecs", params={"token": daemon.token}).json()
        assert specs["default"] == "python3" and "python3" in specs["kernelspecs"]
        r = c.post("/api/kernels", json={"name": "python3"}, headers={"Authorization": f"token {daemon.token}"})
        assert r.status_code == 201
        kid = r.json()["id"]
        assert c.get(f"/api/kernels/{kid}x", headers={"Authorization": f"token {daemon.token}"}).status_code == 404
    for d in (daemon.state, daemon.runtime):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    files = [p for p in daemon.runtime.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert (daemon.runtime / "token").read_text() == daemon.token
    assert daemon.stop() == 0
    assert all(daemon.token not in line for line in daemon.log)
    assert not list((daemon.runtime / "kernels").glob("kernel-*.json"))


def test_bad_settings_name_the_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[kernels]\nheartbeat_interval_s = 'fast'\n")
    r = subprocess.run([EXE, "daemon", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip() == f"jupervisor: {cfg}: kernels.heartbeat_interval_s: expected a number > 0, got 'fast'"


def test_notify_socket_protocol(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    d = Daemon(tmp_path, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    try:
        got: list[tuple[float, str]] = []

        def read_until(pred, limit: float = 10) -> None:
            end = time.monotonic() + limit
            while time.monotonic() < end:
                data = sock.recv(4096).decode()
                got.append((time.monotonic(), data))
                if pred(data):
                    return
            raise AssertionError(f"not seen; got {got}")

        read_until(lambda s: "READY=1" in s)
        pings = []
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            data = sock.recv(4096).decode()
            got.append((time.monotonic(), data))
            if data == "WATCHDOG=1":
                pings.append(time.monotonic())
        assert 5 <= len(pings) <= 10  # every 0.2 s (half of WATCHDOG_USEC) over 1.5 s
        d.proc.send_signal(signal.SIGHUP)
        read_until(lambda s: "RELOADING=1" in s)
        assert re.search(r"MONOTONIC_USEC=\d+", got[-1][1])
        read_until(lambda s: s == "READY=1")
        d.proc.send_signal(signal.SIGTERM)
        read_until(lambda s: "STOPPING=1" in s)
        assert d.proc.wait(30) == 0
        assert any("STATUS=" in s for _, s in got)
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        sock.close()


def test_jupyter_server_uses_the_daemon_as_its_gateway(daemon: Daemon, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--port={port}", "--ip=127.0.0.1", "--no-browser", "--allow-root",
         "--IdentityProvider.token=srvtoken", f"--ServerApp.root_dir={tmp_path}", f"--gateway-url={daemon.url}",
         f"--GatewayClient.auth_token={daemon.token}", "--GatewayClient.request_timeout=60"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"), text=True,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": "token srvtoken"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            wait_jupyter_server(c, tmp_path / "server.log")
            kernel = c.post("/api/kernels", json={"name": "python3"}).json()
            kid = kernel["id"]
            assert kid in [k["id"] for k in c.get("/api/kernels").json()]
            with httpx.Client(base_url=daemon.url, timeout=30) as g:  # the gateway really hosts it
                assert kid in [k["id"] for k in g.get("/api/kernels", headers={"Authorization": f"token {daemon.token}"}).json()]
            out = asyncio.run(_execute_over_ws(f"ws://127.0.0.1:{port}/api/kernels/{kid}/channels?token=srvtoken", "print(6 * 7)"))
            assert out == "42\n"
            assert c.post(f"/api/kernels/{kid}/interrupt").status_code == 204
            r = c.post(f"/api/kernels/{kid}/restart")
            assert r.status_code == 200
            out = asyncio.run(_execute_over_ws(f"ws://127.0.0.1:{port}/api/kernels/{kid}/channels?token=srvtoken", "print('after restart')"))
            assert out == "after restart\n"
            assert c.delete(f"/api/kernels/{kid}").status_code == 204
            assert kid not in [k["id"] for k in c.get("/api/kernels").json()]
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


async def _execute_over_ws(url: str, code: str) -> str:
    import uuid

    from tornado.websocket import websocket_connect

    ws = await websocket_connect(url)
    session = uuid.uuid4().hex
    msg_id = uuid.uuid4().hex
    msg = {
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session, "username": "t",
                   "date": "2026-01-01T00:00:00.000000Z", "version": "5.4"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }
    await ws.write_message(json.dumps(msg))
    text, replied, idle = "", False, False
    deadline = time.monotonic() + 30
    while not (replied and idle):
        raw = await asyncio.wait_for(ws.read_message(), timeout=max(0.1, deadline - time.monotonic()))
        assert raw is not None, "websocket closed"
        m = json.loads(raw)
        if m.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "stream":
            text += m["content"]["text"]
        elif m["msg_type"] == "execute_reply":
            replied = True
        elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            idle = True
    ws.close()
    return text


@pytest.mark.parametrize("preload", [False, True], ids=["execd", "forked"])
def test_sigkilled_daemon_readopts_its_kernels_with_their_state(tmp_path: Path, preload: bool) -> None:
    """Kernels outlive a SIGKILLed daemon (adopt_kernels), exec'd or forked by its (now gone) preload server."""
    d = Daemon(tmp_path, extra="" if preload else "[kernels]\npreload = false\n")
    if preload:  # both kernels below are forked once the daemon's preload server is ready
        deadline = time.monotonic() + 30
        while not any("event=preload.ready" in line for line in d.log):
            assert time.monotonic() < deadline, "".join(d.log)
            d.log.append(d.proc.stderr.readline())
    auth = {"Authorization": f"token {d.token}"}
    with httpx.Client(base_url=d.url, headers=auth, timeout=60) as c:
        kid = c.post("/api/kernels", json={"name": "python3"}).json()["id"]
        gone_kid = c.post("/api/kernels", json={"name": "python3"}).json()["id"]
    ws = lambda url, code: asyncio.run(_execute_over_ws(f"{url.replace('http', 'ws')}/api/kernels/{kid}/channels?token={d.token}", code))  # noqa: E731
    assert ws(d.url, "secret = 41\nprint(secret + 1)") == "42\n"
    deadline = time.monotonic() + 10
    while len(json.loads((d.state / "kernels.json").read_text())["kernels"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    registry = json.loads((d.state / "kernels.json").read_text())
    pids = {row["id"]: row["pid"] for row in registry["kernels"]}
    assert set(pids) == {kid, gone_kid}
    assert (psutil.Process(pids[kid]).ppid() == d.proc.pid) is not preload  # forked: the preload server's child
    d.proc.kill()
    d.proc.wait(10)
    os.kill(pids[gone_kid], signal.SIGKILL)  # this one dies while no daemon watches
    assert psutil_alive(pids[kid])  # the other outlives the daemon on purpose (adopt_kernels)
    d2 = Daemon(tmp_path)
    try:
        assert any("event=daemon.readopted adopted=1 cleaned=1" in line for line in d2.log)
        with httpx.Client(base_url=d2.url, headers=auth, timeout=60) as c:
            assert [k["id"] for k in c.get("/api/kernels").json()] == [kid]
            assert ws(d2.url, "print(secret + 1)") == "42\n"  # its state is intact
            os.kill(pids[kid], signal.SIGKILL)  # supervision resumed: it is restarted
            deadline = time.monotonic() + 30
            while True:  # a new process is registered and answers (a stale "idle" may precede the death notice)
                model = c.get(f"/api/kernels/{kid}").json()
                registered = {row["id"]: row["pid"] for row in json.loads((d.state / "kernels.json").read_text())["kernels"]}
                if model["execution_state"] == "idle" and registered.get(kid) not in (None, pids[kid]):
                    break
                assert time.monotonic() < deadline, model
                time.sleep(0.1)
            assert ws(d2.url, "print('restarted', 'secret' in dir())") == "restarted False\n"
        assert d2.stop() == 0
    finally:
        if d2.proc.poll() is None:
            d2.proc.kill()
        _kill_kernels_under(tmp_path)  # adopted kernels outlive daemons on purpose: never leave them behind


def _kill_kernels_under(root: Path) -> None:
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        if any(str(root) in arg for arg in p.info.get("cmdline") or []):
            try:
                p.kill()
            except psutil.Error:
                pass


def psutil_alive(pid: int) -> bool:
    import psutil

    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def test_limits_warm_pools_and_idle_culling(tmp_path: Path) -> None:
    extra = ("max_kernels_per_spec = { python3 = 2 }\nwarm_pools = { python3 = 1 }\n"
             "cull_idle_timeout_s = 1.0\ncull_interval_s = 0.5\n")
    d = Daemon(tmp_path, extra=extra)
    auth = {"Authorization": f"token {d.token}"}
    try:
        with httpx.Client(base_url=d.url, headers=auth, timeout=60) as c:
            deadline = time.monotonic() + 60
            while c.get("/api").json()["jupervisor"]["warm_pools"].get("python3", 0) < 1:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            a = c.post("/api/kernels", json={"name": "python3"})
            b = c.post("/api/kernels", json={"name": "python3"})
            assert a.status_code == b.status_code == 201
            refused = c.post("/api/kernels", json={"name": "python3"})
            assert refused.status_code == 403 and "limit" in refused.json()["message"]
            deadline = time.monotonic() + 30
            while c.get("/api/kernels").json():  # both idle for over a second: culled
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert d.stop() == 0
        assert sum("event=gateway.cull" in line for line in d.log) == 2
        assert any("event=kernel.from_warm_pool" in line for line in d.log)
    finally:
        if d.proc.poll() is None:
            d.proc.kill()


def test_v1_websocket_subprotocol_direct_to_the_daemon(daemon: Daemon) -> None:
    from jupervisor.protocol import V1_PROTOCOL, Session, decode_v1, encode_v1, execute_request

    async def run() -> tuple[str | None, str]:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        auth = {"Authorization": f"token {daemon.token}"}
        async with httpx.AsyncClient(base_url=daemon.url, headers=auth, timeout=60) as c:
            kid = (await c.post("/api/kernels", json={"name": "python3"})).json()["id"]
        req = HTTPRequest(f"{daemon.url.replace('http', 'ws')}/api/kernels/{kid}/channels", headers=auth)
        ws = await websocket_connect(req, subprotocols=[V1_PROTOCOL])
        s = Session()
        msg = s.request(execute_request("print('v1 ok')"))
        await ws.write_message(encode_v1("shell", msg), binary=True)
        text = ""
        while True:
            raw = await asyncio.wait_for(ws.read_message(), timeout=30)
            channel, m = decode_v1(raw)
            if m.parent_id != msg.msg_id:
                continue
            if m.msg_type == "stream":
                text += m.content["text"]
            if channel == "iopub" and m.msg_type == "status" and m.content["execution_state"] == "idle":
                break
        proto = ws.selected_subprotocol
        ws.close()
        return proto, text

    proto, text = asyncio.run(run())
    assert proto == V1_PROTOCOL and text == "v1 ok\n"


def test_reconnecting_client_gets_the_iopub_it_missed(daemon: Daemon) -> None:
    """A client drops its websocket while its code prints; reconnecting with the same
    session_id replays what it missed, in order."""
    from jupervisor.protocol import Session, decode_json, encode_json, execute_request

    async def run() -> list[str]:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        auth = {"Authorization": f"token {daemon.token}"}
        async with httpx.AsyncClient(base_url=daemon.url, headers=auth, timeout=60) as c:
            kid = (await c.post("/api/kernels", json={"name": "python3"})).json()["id"]
        url = f"{daemon.url.replace('http', 'ws')}/api/kernels/{kid}/channels?session_id=abc"
        ws = await websocket_connect(HTTPRequest(url, headers=auth))
        s = Session()
        # it starts printing only after we dropped the connection (we drop it at execute_input)
        msg = s.request(execute_request("import time\ntime.sleep(0.5)\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.2)"))
        await ws.write_message(encode_json("shell", msg))
        while True:  # wait until it runs, then drop the connection
            channel, m = decode_json(await asyncio.wait_for(ws.read_message(), 30))
            if m.parent_id == msg.msg_id and m.msg_type == "execute_input":
                break
        ws.close()
        await asyncio.sleep(1.5)  # the code prints while nobody is connected
        ws = await websocket_connect(HTTPRequest(url, headers=auth))
        text = []
        while True:
            channel, m = decode_json(await asyncio.wait_for(ws.read_message(), 30))
            if m.parent_id != msg.msg_id:
                continue
            if m.msg_type == "stream":
                text.append(m.content["text"])
            if m.msg_type == "status" and m.content["execution_state"] == "idle":
                break
        ws.close()
        return text

    assert "".join(asyncio.run(run())) == "0\n1\n2\n3\n4\n"


def test_cli_talks_to_the_running_daemon(daemon: Daemon) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([EXE, "kernels", "--url", daemon.url, "--token", daemon.token, *args],
                              capture_output=True, text=True, timeout=120)

    started = cli("start", "python3")
    assert started.returncode == 0, started.stderr
    kid = started.stdout.strip()
    assert kid in cli("list").stdout
    out = cli("exec", kid, "x = 20\nprint(x + 22)")
    assert out.returncode == 0 and out.stdout == "42\n"
    assert cli("exec", kid, "1/0").returncode == 1
    assert cli("interrupt", kid).returncode == 0
    assert cli("restart", kid).returncode == 0
    assert cli("exec", kid, "print('x' in dir())").stdout == "False\n"
    assert cli("stop", kid).returncode == 0
    assert kid not in cli("list").stdout
    missing = cli("stop", "no-such-kernel")
    assert missing.returncode == 2 and missing.stderr.startswith("jupervisor: stop: HTTP 404")
    wrong = subprocess.run([EXE, "kernels", "--url", daemon.url, "--token", "nope", "list"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "HTTP 403" in wrong.stderr


def test_unix_socket_and_socket_activation(tmp_path: Path) -> None:
    sock_path = tmp_path / "api.sock"
    (tmp_path / "a").mkdir()
    d = Daemon(tmp_path / "a", extra=f'unix_socket = "{sock_path}"\n')
    try:
        transport = httpx.HTTPTransport(uds=str(sock_path))
        with httpx.Client(transport=transport, base_url="http://jupervisor", timeout=30) as c:
            assert c.get("/api/kernels").status_code == 401
            assert c.get("/api/kernels", headers={"Authorization": f"token {d.token}"}).json() == []
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    # socket activation: systemd hands the daemon a listening socket as fd 3
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    (tmp_path / "b").mkdir()
    cfg = tmp_path / "b" / "jv.toml"
    cfg.write_text(f'[daemon]\nport = 1\ntoken = "sa"\nstate_dir = "{tmp_path}/b/s"\nruntime_dir = "{tmp_path}/b/r"\n')
    launcher = ("import os, sys; os.environ['LISTEN_PID'] = str(os.getpid()); os.environ['LISTEN_FDS'] = '1'; "
                "os.execv(sys.argv[1], sys.argv[1:])")
    proc = subprocess.Popen([sys.executable, "-c", launcher, EXE, "daemon", "--config", str(cfg)],
                            pass_fds=(3,), preexec_fn=lambda: os.dup2(listener.fileno(), 3), stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        while "event=daemon.ready" not in proc.stderr.readline():
            assert time.monotonic() < deadline
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            assert c.get("/api/kernels", headers={"Authorization": "token sa"}).json() == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()


def test_kernel_env_from_the_start_request(daemon: Daemon) -> None:
    auth = {"Authorization": f"token {daemon.token}"}
    with httpx.Client(base_url=daemon.url, headers=auth, timeout=60) as c:
        r = c.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_TEAM": "blue", "SECRET_THING": "no"}})
        kid = r.json()["id"]
        model = c.get(f"/api/kernels/{kid}").json()
    assert set(model) == {"id", "name", "last_activity", "execution_state", "connections"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", model["last_activity"])
    url = f"{daemon.url.replace('http', 'ws')}/api/kernels/{kid}/channels?token={daemon.token}"
    out = asyncio.run(_execute_over_ws(url, "import os; print(os.environ.get('KERNEL_TEAM'), os.environ.get('SECRET_THING'))"))
    assert out == "blue None\n"  # KERNEL_* reach the kernel; nothing else from the request does
