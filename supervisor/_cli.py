# The `jupervisor` command line: one entry point with subcommands. Each subcommand is a
# small function over the public API; every mistake a person can make is one line on
# stderr and a non-zero exit, never a traceback.
from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from ._kernelspecs import NoSuchKernelSpec, install_kernel_spec, kernel_spec_summary, remove_kernel_spec
from ._supervisor import open_supervisor
from .actors import JupervisorError
from .protocol import ConnectionInfoError, KernelSpecError


class CLIError(Exception):
    """A mistake on the command line or in its inputs: printed as one line, exit 2."""


# ---- run code ----------------------------------------------------------------------
def _print_output(out: dict[str, Any]) -> None:
    kind = out["output_type"]
    if kind == "stream":
        stream = sys.stderr if out["name"] == "stderr" else sys.stdout
        stream.write(out["text"])
        stream.flush()
    elif kind in ("display_data", "execute_result"):
        text = out.get("data", {}).get("text/plain")
        if text is not None:
            print(text, flush=True)
    elif kind == "error":
        print("\n".join(out.get("traceback") or [f"{out['ename']}: {out['evalue']}"]), file=sys.stderr, flush=True)


async def _run_code(kernel_name: str, code: str, timeout: float | None) -> int:
    async with open_supervisor() as sup:
        kernel = await sup.start_kernel(kernel_name)
        result = await kernel.execute(code, on_output=_print_output, timeout=timeout)
        return 0 if result.ok else 1


def _read_text(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None


# ---- run notebooks -----------------------------------------------------------------
def _parse_params(pairs: Sequence[Sequence[str]]) -> dict[str, Any]:
    params = {}
    for name, raw in pairs:
        if not name.isidentifier():
            raise CLIError(f"-p {name}: not a valid parameter name")
        try:
            params[name] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            params[name] = raw  # a bare word is a string, as papermill takes it
    return params


class _Progress:
    """Cells done / total on a terminal; plain log lines elsewhere."""

    def __init__(self, names: list[str], totals: list[int]) -> None:
        self.tty = sys.stderr.isatty()
        self.names, self.totals = names, totals
        self.done = [0] * len(names)
        self.start = trio.current_time()

    def __call__(self, job: int, ev: Any) -> None:
        from ._jobs import CellFinished, CellStarted, JobRetry

        name = self.names[job]
        elapsed = trio.current_time() - self.start
        if isinstance(ev, CellFinished):
            self.done[job] += 1
            if not self.tty:
                print(f"{name}: cell {ev.index} {ev.status} in {ev.duration_s:.2f}s", file=sys.stderr, flush=True)
        elif isinstance(ev, JobRetry):
            print(f"{name}: retrying ({ev.reason})", file=sys.stderr, flush=True)
        elif isinstance(ev, CellStarted) and not self.tty:
            print(f"{name}: cell {ev.index} started", file=sys.stderr, flush=True)
        if self.tty:
            parts = [f"{n}: {d}/{t}" for n, d, t in zip(self.names, self.done, self.totals)]
            sys.stderr.write(f"\r[{elapsed:6.1f}s] " + "  ".join(parts) + "\x1b[K")
            sys.stderr.flush()


async def _run_notebooks(args: argparse.Namespace, paths: list[str]) -> int:
    import nbformat

    from ._jobs import JobOptions, run_notebooks

    notebooks = []
    for p in paths:
        try:
            notebooks.append(nbformat.read(p, as_version=4))
        except OSError as exc:
            raise CLIError(f"cannot read {p}: {exc.strerror}") from None
        except Exception as exc:  # nbformat raises several types for bad JSON or schema
            raise CLIError(f"{p} is not a valid notebook: {str(exc).splitlines()[0]}") from None
    opts = JobOptions(
        kernel_name=args.kernel_given,
        cell_timeout_s=args.timeout,
        allow_errors=args.allow_errors,
        parameters=_parse_params(args.param or []),
    )
    totals = [sum(1 for c in nb.cells if c.cell_type == "code" and c.source.strip()) for nb in notebooks]
    progress = _Progress([Path(p).name for p in paths], totals)
    async with open_supervisor() as sup:
        results = await run_notebooks(sup, [(nb, opts) for nb in notebooks], parallel=args.parallel, on_event=progress)
    if progress.tty:
        sys.stderr.write("\n")
    failed = 0
    for path, result in zip(paths, results):
        out = args.output if (args.output and len(paths) == 1) else str(Path(path).with_suffix(".out.ipynb"))
        nbformat.write(result.notebook, out)
        line = f"{path}: {result.status} ({result.cells_run} cells, {result.attempts} attempt(s)) -> {out}"
        if result.error is not None:
            line += f": {result.error}"
            failed += 1
        print(line, file=sys.stderr)
    return 1 if failed else 0


def _cmd_run(args: argparse.Namespace) -> int:
    files = args.files or []
    notebooks = [f for f in files if f.endswith(".ipynb")]
    if notebooks:
        if len(notebooks) != len(files):
            raise CLIError("run: give either notebooks or one code file, not both")
        if len(notebooks) > 1 and args.parallel is None:
            raise CLIError("run: several notebooks need --parallel N")
        args.parallel = args.parallel or 1
        return trio.run(_run_notebooks, args, notebooks)
    if args.code is not None:
        code = args.code
    elif len(files) == 1:
        code = _read_text(files[0])
    elif not files:
        raise CLIError("run: give a FILE, '-' for stdin, or -c CODE")
    else:
        raise CLIError("run: give one code file (several are for notebooks)")
    return trio.run(_run_code, args.kernel_given or "python3", code, args.timeout)


# ---- start a kernel in the foreground ------------------------------------------------
async def _start(kernel_name: str) -> int:
    async with open_supervisor() as sup:
        kernel = await sup.start_kernel(kernel_name)
        print(f"Kernel {kernel.id} ({kernel_name}) is running, pid {kernel.pid}.", flush=True)
        print(f"Connection file: {kernel.connection_file}", flush=True)
        print(f"Attach with:    jupyter console --existing {kernel.connection_file}", flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                print(f"Shutting down on {signal.Signals(signum).name}.", flush=True)
                break
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    return trio.run(_start, args.kernel)


# ---- kernelspecs -----------------------------------------------------------------------
def _cmd_kernelspec(args: argparse.Namespace) -> int:
    if args.action == "list":
        specs = kernel_spec_summary()
        if args.json:
            print(json.dumps({"kernelspecs": specs}, indent=1))
        else:
            width = max((len(n) for n in specs), default=0)
            print("Available kernels:")
            for name, info in sorted(specs.items()):
                print(f"  {name.ljust(width)}    {info['resource_dir']}")
        return 0
    if args.action == "install":
        if args.user and args.prefix:
            raise CLIError("kernelspec install: --user and --prefix exclude each other")
        dest = install_kernel_spec(args.source, name=args.name, user=args.user, prefix=args.prefix)
        print(f"Installed kernelspec {dest.name} in {dest.parent}")
        return 0
    if not args.force and sys.stdin.isatty():
        answer = input(f"Remove kernelspec {args.name}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1
    removed = remove_kernel_spec(args.name)
    print(f"Removed {removed}")
    return 0


# ---- inventory ---------------------------------------------------------------------------
def _cmd_ps(args: argparse.Namespace) -> int:
    from ._inventory import prune, take_inventory

    inv = trio.run(lambda: take_inventory(args.dir or [], timeout=args.probe_timeout))
    if args.prune:
        for path in prune(inv):
            print(f"removed {path}")
        return 0
    if args.json:
        print(json.dumps(inv.to_dict(), indent=1))
        return 0
    cols = ("KERNEL", "NAME", "OWNER", "PID", "PPID", "STATE", "CPU%", "RSS", "UPTIME", "CONNECTION FILE")
    rows = [cols]
    for k in inv.kernels:
        rows.append((k.kernel_id[:12], k.kernel_name or "-", k.owner + (f" {k.notebook}" if k.notebook else ""),
                     str(k.pid or "-"), str(k.ppid or "-"), k.state,
                     "-" if k.cpu_percent is None else f"{k.cpu_percent:.1f}",
                     "-" if k.rss is None else f"{k.rss / 2**20:.0f}M",
                     "-" if k.uptime_s is None else f"{k.uptime_s:.0f}s", k.connection_file or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for s in inv.servers:
        if not s.reachable:
            print(f"server {s.url} did not answer ({s.error})", file=sys.stderr)
    return 0


def _cmd_shutdown(args: argparse.Namespace) -> int:
    from ._inventory import take_inventory

    inv = trio.run(take_inventory)
    matches = [k for k in inv.kernels if k.kernel_id.startswith(args.kernel) or k.connection_file == args.kernel]
    if len(matches) != 1:
        raise CLIError(f"shutdown: {'no kernel' if not matches else 'several kernels'} match {args.kernel!r}")
    row = matches[0]
    return trio.run(_shutdown_one, row, args.force)


async def _shutdown_one(row: Any, force: bool) -> int:
    import psutil

    from ._connect import connect

    asked = False
    if row.connection_file:
        try:
            with trio.move_on_after(5):
                async with connect(row.connection_file, connect_timeout_s=1) as kernel:
                    await kernel.shutdown(timeout=5)
                    asked = True
        except (JupervisorError, OSError):
            pass
    if row.pid:
        with trio.move_on_after(5):
            while psutil.pid_exists(row.pid) and psutil.Process(row.pid).status() != psutil.STATUS_ZOMBIE:
                await trio.sleep(0.05)
        alive = psutil.pid_exists(row.pid) and psutil.Process(row.pid).status() != psutil.STATUS_ZOMBIE
        if alive and force:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(row.pid, sig)
                except OSError:
                    pass
                with trio.move_on_after(3):
                    while psutil.pid_exists(row.pid) and psutil.Process(row.pid).status() != psutil.STATUS_ZOMBIE:
                        await trio.sleep(0.05)
            print(f"kernel {row.kernel_id} stopped with signals")
            return 0
        if alive:
            raise CLIError(f"kernel {row.kernel_id} did not stop (use --force to signal it)")
    print(f"kernel {row.kernel_id} shut down" + ("" if asked else " (it was not answering)"))
    return 0


def _cmd_diagram(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    from ._inventory import mermaid, take_inventory

    inv = trio.run(take_inventory)
    text = mermaid(inv)
    if args.format == "mermaid":
        if args.output:
            Path(args.output).write_text(text + "\n")
        else:
            print(text)
        return 0
    dot = shutil.which("dot")
    if dot is None:
        raise CLIError("diagram --format svg needs Graphviz's 'dot' (apt-get install graphviz); "
                       "--format mermaid works without it")
    svg = subprocess.run([dot, "-Tsvg"], input=_mermaid_to_dot(text), capture_output=True, text=True, check=True).stdout
    if args.output:
        Path(args.output).write_text(svg)
    else:
        print(svg)
    return 0


def _mermaid_to_dot(text: str) -> str:
    import re

    out = ["digraph kernels {", "  rankdir=LR; node [shape=box, fontname=Helvetica];"]
    for line in text.splitlines()[1:]:
        m = re.match(r'\s*(\w+)\["(.*)"\]$', line)
        if m:
            out.append(f'  {m.group(1)} [label="{m.group(2)}"];')
            continue
        m = re.match(r"\s*(\w+)\s+(-->|-\. parent of \.->)\s+(\w+)", line)
        if m:
            style = ' [style=dashed, label="parent of"]' if m.group(2) != "-->" else ""
            out.append(f"  {m.group(1)} -> {m.group(3)}{style};")
    out.append("}")
    return "\n".join(out)


# ---- talking to a running daemon ---------------------------------------------------------
def _daemon_client(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    from ._paths import jupervisor_runtime_dir

    token = args.token or os.environ.get("JUPERVISOR_TOKEN")
    if token is None:
        path = jupervisor_runtime_dir() / "token"
        try:
            token = path.read_text().strip()
        except OSError:
            raise CLIError(f"no token: pass --token, set JUPERVISOR_TOKEN, or make {path} readable") from None
    return args.url.rstrip("/"), {"Authorization": f"token {token}"}


async def _kernels(args: argparse.Namespace) -> int:
    import httpx

    url, auth = _daemon_client(args)
    try:
        async with httpx.AsyncClient(base_url=url, headers=auth, timeout=120) as c:
            if args.action == "list":
                r = await c.get("/api/kernels")
            elif args.action == "start":
                r = await c.post("/api/kernels", json={"name": args.name})
            elif args.action == "stop":
                r = await c.delete(f"/api/kernels/{args.kernel}")
            elif args.action in ("restart", "interrupt"):
                r = await c.post(f"/api/kernels/{args.kernel}/{args.action}")
            else:
                return await _exec_remote(url, auth, args.kernel, args.code)
    except httpx.TransportError as exc:
        raise CLIError(f"cannot reach the daemon at {url}: {type(exc).__name__}") from None
    if r.status_code >= 400:
        message = r.json().get("message", r.reason_phrase) if r.content else r.reason_phrase
        raise CLIError(f"{args.action}: HTTP {r.status_code}: {message}")
    if args.action == "list":
        for k in r.json():
            print(f"{k['id']}  {k['name']}  {k['execution_state']}  connections={k['connections']}  last_activity={k['last_activity']}")
    elif args.action == "start":
        print(r.json()["id"])
    return 0


async def _exec_remote(url: str, auth: dict[str, str], kernel_id: str, code: str) -> int:
    from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

    from .protocol import Session, decode_json, encode_json, execute_request

    session = Session()
    msg = session.request(execute_request(code, allow_stdin=False))
    status = "ok"
    ws_url = url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
    headers = [(k.lower().encode(), v.encode()) for k, v in auth.items()]
    try:
        async with open_websocket_url(ws_url, extra_headers=headers) as ws:
            await ws.send_message(encode_json("shell", msg))
            replied = idle = False
            while not (replied and idle):
                channel, m = decode_json(await ws.get_message())
                if m.parent_id != msg.msg_id:
                    continue
                if m.msg_type == "execute_reply":
                    replied, status = True, str(m.content.get("status"))
                elif m.msg_type == "status" and m.content.get("execution_state") == "idle":
                    idle = True
                elif channel == "iopub":
                    from ._outputs import to_output

                    out = to_output(m)
                    if out is not None:
                        _print_output(out)
    except (HandshakeError, ConnectionClosed, OSError) as exc:
        raise CLIError(f"exec: the daemon closed the kernel's websocket ({type(exc).__name__})") from None
    return 0 if status == "ok" else 1


def _cmd_kernels(args: argparse.Namespace) -> int:
    return trio.run(_kernels, args)


# ---- the daemon ------------------------------------------------------------------------
def _cmd_daemon(args: argparse.Namespace) -> int:
    from ._daemon import run_daemon, setup_logging
    from ._settings import Settings, load_settings

    path = args.config
    if path is None and Path("config/jupervisor.toml").is_file():
        path = "config/jupervisor.toml"
    settings = load_settings(path) if path else Settings()  # a bad file: one line, exit 2
    setup_logging(settings.daemon.log_level)
    trio.run(run_daemon, path)
    return 0


# ---- the parser ------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jupervisor", description="Supervise and drive Jupyter kernels.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run code or notebooks on supervised kernels", description=(
        "Run a code file, -c CODE or stdin ('-') and stream its outputs; or execute notebooks."))
    run.add_argument("files", nargs="*", metavar="FILE", help="a code file, '-', or notebooks (.ipynb)")
    run.add_argument("-c", dest="code", help="code to run")
    run.add_argument("--kernel", dest="kernel_given", help="kernelspec name (default: python3 or the notebook's)")
    run.add_argument("-o", "--output", help="where to write the executed notebook (one notebook)")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a notebook parameter")
    run.add_argument("--timeout", type=float, help="per-cell (or per-run) timeout in seconds")
    run.add_argument("--parallel", type=int, metavar="N", help="run up to N notebooks at once")
    run.add_argument("--allow-errors", action="store_true", help="keep going after a cell raises")
    run.set_defaults(func=_cmd_run)

    start = sub.add_parser("start", help="run one supervised kernel in the foreground")
    start.add_argument("--kernel", default="python3", help="kernelspec name (default: python3)")
    start.set_defaults(func=_cmd_start)

    ps = sub.add_parser("ps", help="list every kernel on this machine, its owner and whether it lives")
    ps.add_argument("--json", action="store_true", help="print JSON")
    ps.add_argument("--dir", action="append", help="also look for connection files here")
    ps.add_argument("--prune", action="store_true", help="delete connection files of dead kernels")
    ps.add_argument("--probe-timeout", type=float, default=0.5, help="seconds per probe (default 0.5)")
    ps.set_defaults(func=_cmd_ps)

    sd = sub.add_parser("shutdown", help="ask any kernel to shut down (signals only with --force)")
    sd.add_argument("kernel", help="a kernel id (or its start) or connection file")
    sd.add_argument("--force", action="store_true", help="SIGTERM then SIGKILL if it does not stop")
    sd.set_defaults(func=_cmd_shutdown)

    dg = sub.add_parser("diagram", help="servers, sessions, kernels and processes as a picture")
    dg.add_argument("--format", choices=("mermaid", "svg"), default="mermaid")
    dg.add_argument("-o", "--output", help="write to this file")
    dg.set_defaults(func=_cmd_diagram)

    kernels = sub.add_parser("kernels", help="list, start, stop, restart, interrupt or exec on a running daemon")
    kernels.add_argument("--url", default=os.environ.get("JUPERVISOR_URL", "http://127.0.0.1:8889"),
                         help="the daemon's API (default: $JUPERVISOR_URL or http://127.0.0.1:8889)")
    kernels.add_argument("--token", help="API token (default: $JUPERVISOR_TOKEN or the daemon's token file)")
    k_sub = kernels.add_subparsers(dest="action", metavar="ACTION", required=True)
    k_sub.add_parser("list", help="list the daemon's kernels")
    k_start = k_sub.add_parser("start", help="start a kernel")
    k_start.add_argument("name", nargs="?", default="python3")
    for action in ("stop", "restart", "interrupt"):
        k_sub.add_parser(action, help=f"{action} a kernel").add_argument("kernel")
    k_exec = k_sub.add_parser("exec", help="run code on a kernel and stream its output")
    k_exec.add_argument("kernel")
    k_exec.add_argument("code")
    kernels.set_defaults(func=_cmd_kernels)

    daemon = sub.add_parser("daemon", help="run the supervision daemon with its HTTP/WebSocket API")
    daemon.add_argument("--config", help="settings file (default: config/jupervisor.toml if present)")
    daemon.set_defaults(func=_cmd_daemon)

    ks = sub.add_parser("kernelspec", help="list, install or remove kernelspecs")
    ks_sub = ks.add_subparsers(dest="action", metavar="ACTION", required=True)
    ks_list = ks_sub.add_parser("list", help="list kernelspecs where Jupyter looks")
    ks_list.add_argument("--json", action="store_true", help="print JSON")
    ks_install = ks_sub.add_parser("install", help="install a kernelspec directory")
    ks_install.add_argument("source", metavar="DIR")
    ks_install.add_argument("--user", action="store_true", help="install for this user")
    ks_install.add_argument("--prefix", help="install under PREFIX/share/jupyter/kernels")
    ks_install.add_argument("--name", help="install under this name")
    ks_remove = ks_sub.add_parser("remove", help="remove an installed kernelspec")
    ks_remove.add_argument("name")
    ks_remove.add_argument("-f", "--force", action="store_true", help="do not ask")
    ks.set_defaults(func=_cmd_kernelspec)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"jupervisor: {exc}", file=sys.stderr)
        return 2
    except (NoSuchKernelSpec, KernelSpecError, ConnectionInfoError, FileExistsError, ValueError) as exc:
        print(f"jupervisor: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except JupervisorError as exc:
        print(f"jupervisor: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
