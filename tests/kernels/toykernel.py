"""A small real Jupyter kernel for tests and benchmarks, with switchable misbehaviours.

Run as ``python toykernel.py -f CONNECTION_FILE [--behaviour NAME[=VALUE]] ...``; behaviours
also come from ``TOYKERNEL_BEHAVIOUR`` (comma separated) so a kernelspec can select them.
It binds the five sockets of the connection file and speaks messaging 5.x: kernel_info,
execute (Python code in a persistent namespace; stdout as stream, the last expression as
execute_result, errors as error), input via stdin, shutdown and interrupt on control, busy/idle
around every request. It imports little, so hundreds can run at once.

Behaviours: crash-on-start, hang-on-start, slow-start=S, no-heartbeat, ignore-shutdown,
ignore-sigterm, die-on-sigint, forge-signatures (every other iopub/shell message signed with a
wrong key), exit-after=S.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import signal
import sys
import threading
import time

import zmq

from jupervisor.protocol import ConnectionInfo, ReplayWindow, Session, Signer, decode, encode


def parse_behaviours(argv: list[str]) -> dict[str, str]:
    items = [b for b in os.environ.get("TOYKERNEL_BEHAVIOUR", "").split(",") if b]
    items += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--behaviour"]
    return dict((b.split("=", 1) + [""])[:2] for b in items)


class Toy:
    def __init__(self, info: ConnectionInfo, behaviours: dict[str, str]) -> None:
        self.b = behaviours
        self.info = info
        self.signer = info.signer()
        self.forger = Signer(b"not-the-key")
        self.session = Session()
        self.replay = ReplayWindow()
        self.ns: dict = {}
        self.count = 0
        self.sent = 0
        ctx = zmq.Context()
        self.ctx = ctx
        self.shell = self._bind(zmq.ROUTER, "shell")
        self.control = self._bind(zmq.ROUTER, "control")
        self.stdin = self._bind(zmq.ROUTER, "stdin")
        self.iopub = self._bind(zmq.XPUB, "iopub")
        hb = self._bind(zmq.REP, "hb")
        if "no-heartbeat" not in self.b:
            threading.Thread(target=self._echo, args=(hb,), daemon=True).start()

    def _bind(self, kind: int, channel: str) -> zmq.Socket:
        s = self.ctx.socket(kind)
        s.linger = 0
        s.bind(self.info.endpoint(channel))
        return s

    def _echo(self, hb: zmq.Socket) -> None:
        while True:
            hb.send(hb.recv())

    def send(self, sock: zmq.Socket, msg_type: str, content: dict, parent, idents=()) -> None:
        msg = self.session.message(msg_type, content, parent=parent)
        self.sent += 1
        forge = "forge-signatures" in self.b and self.sent % 2 == 0 and msg_type not in ("status", "execute_reply")
        sock.send_multipart(encode(msg, self.forger if forge else self.signer, list(idents)))

    def publish(self, msg_type: str, content: dict, parent) -> None:
        self.send(self.iopub, msg_type, content, parent, [f"kernel.toy.{msg_type}".encode()])

    def status(self, state: str, parent) -> None:
        self.publish("status", {"execution_state": state}, parent)

    def kernel_info(self) -> dict:
        return {
            "status": "ok", "protocol_version": "5.3", "implementation": "toy", "implementation_version": "1",
            "language_info": {"name": "toy", "version": "1", "mimetype": "text/plain", "file_extension": ".py"},
            "banner": "toy kernel", "help_links": [],
        }

    def run(self) -> None:
        self.status("starting", None)
        poller = zmq.Poller()
        for s in (self.shell, self.control, self.iopub):
            poller.register(s, zmq.POLLIN)
        deadline = time.monotonic() + float(self.b["exit-after"]) if "exit-after" in self.b else None
        parent_pid = int(os.environ.get("JPY_PARENT_PID", "0") or 0)
        while True:
            if deadline and time.monotonic() > deadline:
                os._exit(0)
            if parent_pid and os.getppid() != parent_pid:
                os._exit(0)  # our supervisor is gone
            for sock, _ in poller.poll(500):
                frames = sock.recv_multipart()
                if sock is self.iopub:
                    if frames and frames[0][:1] == b"\x01":
                        self.publish("iopub_welcome", {"subscription": frames[0][1:].decode()}, None)
                    continue
                try:
                    env = decode(frames, self.signer, self.replay)
                except ValueError:
                    continue
                self.handle(sock, env.idents, env.message)

    def handle(self, sock: zmq.Socket, idents, msg) -> None:
        t = msg.msg_type
        self.status("busy", msg)
        if t == "kernel_info_request":
            self.send(sock, "kernel_info_reply", self.kernel_info(), msg, idents)
        elif t == "execute_request":
            self.execute(sock, idents, msg)
        elif t == "shutdown_request":
            self.send(sock, "shutdown_reply", {"status": "ok", "restart": msg.content.get("restart", False)}, msg, idents)
            self.status("idle", msg)
            if "ignore-shutdown" not in self.b:
                os._exit(0)
            return
        elif t == "interrupt_request":
            self.send(sock, "interrupt_reply", {"status": "ok"}, msg, idents)
        elif t.endswith("_request"):
            self.send(sock, t.replace("_request", "_reply"), {"status": "ok"}, msg, idents)
        self.status("idle", msg)

    def execute(self, sock, idents, msg) -> None:
        self.count += 1
        code = msg.content.get("code", "")
        self.publish("execute_input", {"code": code, "execution_count": self.count}, msg)
        out = io.StringIO()
        allow_stdin = msg.content.get("allow_stdin", False)

        def toy_input(prompt: str = "") -> str:
            if not allow_stdin:
                raise RuntimeError("input not allowed")
            self.send(self.stdin, "input_request", {"prompt": prompt, "password": False}, msg, idents)
            reply = decode(self.stdin.recv_multipart(), self.signer).message
            return reply.content.get("value", "")

        self.ns["input"] = toy_input
        try:
            tree = ast.parse(code)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            with contextlib.redirect_stdout(out):
                exec(compile(tree, "<toy>", "exec"), self.ns)
                value = eval(compile(ast.Expression(last.value), "<toy>", "eval"), self.ns) if last else None
            if out.getvalue():
                self.publish("stream", {"name": "stdout", "text": out.getvalue()}, msg)
            if value is not None:
                self.publish("execute_result", {"execution_count": self.count, "data": {"text/plain": repr(value)}, "metadata": {}}, msg)
            reply = {"status": "ok", "execution_count": self.count, "user_expressions": {}}
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything, KeyboardInterrupt included
            if out.getvalue():
                self.publish("stream", {"name": "stdout", "text": out.getvalue()}, msg)
            err = {"ename": type(exc).__name__, "evalue": str(exc), "traceback": [f"{type(exc).__name__}: {exc}"]}
            self.publish("error", err, msg)
            reply = {"status": "error", "execution_count": self.count, **err}
        self.send(sock, "execute_reply", reply, msg, idents)


def main(argv: list[str]) -> None:
    b = parse_behaviours(argv)
    if "crash-on-start" in b:
        sys.stderr.write("toykernel: crashing on start as asked\n")
        sys.exit(3)
    if "hang-on-start" in b:
        while True:
            time.sleep(3600)
    if "slow-start" in b:
        time.sleep(float(b["slow-start"] or 5))
    signal.signal(signal.SIGINT, signal.SIG_DFL if "die-on-sigint" in b else signal.default_int_handler)
    if "ignore-sigterm" in b:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    path = argv[argv.index("-f") + 1]
    with open(path) as f:
        info = ConnectionInfo.from_dict(json.load(f), source=path)
    Toy(info, b).run()


if __name__ == "__main__":
    main(sys.argv[1:])
