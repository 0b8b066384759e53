# The `jupervisor` command line: one entry point with subcommands. Each subcommand is a
# small function over the public API; every mistake a person can make is one line on
# stderr and a non-zero exit, never a traceback.
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import trio

from . import open_supervisor
from .actors import JupervisorError


class CLIError(Exception):
    """A mistake on the command line or in its inputs: printed as one line, exit 2."""


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


async def _run_code(kernel_name: str, code: str) -> int:
    async with open_supervisor() as sup:
        kernel = await sup.start_kernel(kernel_name)
        result = await kernel.execute(code, on_output=_print_output)
        return 0 if result.ok else 1


def _cmd_run(args: argparse.Namespace) -> int:
    if args.code is not None:
        code = args.code
    elif args.file == "-":
        code = sys.stdin.read()
    elif args.file:
        try:
            with open(args.file, encoding="utf-8") as f:
                code = f.read()
        except OSError as exc:
            raise CLIError(f"cannot read {args.file}: {exc.strerror}") from None
    else:
        raise CLIError("run: give a FILE, '-' for stdin, or -c CODE")
    return trio.run(_run_code, args.kernel, code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jupervisor", description="Supervise and drive Jupyter kernels.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run code on a supervised kernel and stream its outputs")
    run.add_argument("file", nargs="?", help="a file of code, or - for stdin")
    run.add_argument("-c", dest="code", help="code to run")
    run.add_argument("--kernel", default="python3", help="kernelspec name (default: python3)")
    run.set_defaults(func=_cmd_run)
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
    except (JupervisorError, LookupError, ValueError) as exc:
        print(f"jupervisor: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
