# The preloaded interpreter ("zygote") for ipykernel kernels. Run by path with the
# kernelspec's own python:  PYTHON _preload_server.py FD
#
# It imports ipykernel (about 0.4 s of a kernel's start-up) once, then forks a kernel for
# each request that arrives on the SOCK_SEQPACKET socket FD, so a kernel answers in the
# time its app takes to initialise. Standard library only: the kernel's interpreter may
# not have jupervisor installed.
#
# Wire (one JSON object per datagram):
#   server -> client  {"ready": PID, "threads": N}       once, after the imports
#   client -> server  {"argv": [...], "env": {...}, "cwd": str|null} + SCM_RIGHTS [stdout, stderr]
#   server -> client  {"pid": PID} or {"error": "..."}   one per request, in order
#   server -> client  {"exited": PID, "returncode": RC}  when a kernel ends (negative: signal)
# EOF on FD (the supervisor closed it or died) ends the server; its kernels then notice
# their parent changed (JPY_PARENT_PID names this process) and exit.
import json
import os
import select
import signal
import socket
import sys
import threading


def _preload() -> None:
    import ipykernel.kernelapp  # noqa: F401  (IPython, zmq, tornado, jupyter_client)
    import ipykernel.ipkernel  # noqa: F401

    try:
        import ipykernel.debugger  # noqa: F401  (debugpy: a third of the app's own start-up)
    except Exception:
        pass


def _run_kernel(sock: socket.socket, wake_r: int, wake_w: int, request: dict, fds: list) -> None:
    """In the forked child: become the kernel described by `request`, never return."""
    code = 1
    try:
        os.setsid()
        _name_process(b"ipykernel")  # top/ps -o comm; the command line stays the server's
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        os.close(wake_r)
        os.close(wake_w)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in {devnull, *fds} - {0, 1, 2}:
            os.close(fd)
        cwd = request.get("cwd")
        if cwd:
            os.chdir(cwd)
        env = dict(request["env"])
        if "JPY_PARENT_PID" in env:  # ipykernel exits when its parent changes: we are that parent
            env["JPY_PARENT_PID"] = str(os.getppid())
        os.environ.clear()
        os.environ.update(env)
        import ipykernel_launcher  # noqa: F401  (what `python -m ipykernel_launcher` runs)
        from ipykernel import kernelapp

        # ipykernel read JPY_PARENT_PID into a trait default at import (in the server): pass it on
        kwargs = {"parent_handle": int(env["JPY_PARENT_PID"])} if "JPY_PARENT_PID" in env else {}
        sys.argv = [ipykernel_launcher.__file__, *request["argv"][3:]]
        # no cwd on sys.path: ipykernel_launcher removes it and the app decides (main() took
        # the server's own dir out)
        try:
            kernelapp.IPKernelApp.launch_instance(**kwargs)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()  # what interpreter exit would run; module teardown is skipped
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _name_process(name: bytes) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass


def main() -> None:
    # run by path, python put this file's directory first on sys.path: jupervisor's own
    # modules must not shadow anything ipykernel or the kernel's users import
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    sock = socket.socket(fileno=int(sys.argv[1]))
    _preload()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sock.send(json.dumps({"ready": os.getpid(), "threads": threading.active_count()}).encode())
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                rc = os.waitstatus_to_exitcode(status)
                sock.send(json.dumps({"exited": pid, "returncode": rc}).encode())
        if sock in ready:
            data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
            if not data:
                return
            try:
                request = json.loads(data)
                pid = os.fork()
            except Exception as exc:
                for fd in fds:
                    os.close(fd)
                sock.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
                continue
            if pid == 0:
                _run_kernel(sock, wake_r, wake_w, request, fds)
            for fd in fds:
                os.close(fd)
            sock.send(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    main()
