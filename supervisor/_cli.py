# The `jupervisor` command line: one entry point with subcommands. Each subcommand is a
# small function over the public API; every mistake a person can make is one line on
# stderr and a non-zero exit, never a traceback.
from __future__ import annotations

import argparse
import ast
import json
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
