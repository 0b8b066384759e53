# The job runner: notebooks (and code) run on supervised kernels with the semantics job
# runners know from nbclient and papermill, and results they can trust when a kernel
# crashes, hangs or is OOM-killed:
# - per-cell timeout (interrupt, then restart if the interrupt does not take) and a
#   whole-job deadline;
# - allow_errors and the `raises-exception` tag; `skip-execution` cells are skipped;
# - papermill parameters: a cell tagged `injected-parameters` after the `parameters` cell;
# - outputs, execution counts and nbclient's `execution` timing metadata written back;
# - a kernel death ends the cell at once with a typed error naming the cause and cell;
#   the whole job is retried only for infrastructure failures (a failed start, or a death
#   before the cell produced any output), never for errors in user code;
# - input() gets a clear error (no stdin handler), never a hang.
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import attrs
import nbformat
import trio

from ._supervisor import Supervisor
from .actors import (
    ExecuteTimeout,
    JupervisorError,
    KernelDied,
    KernelStartError,
    RestartPolicy,
    RestartType,
    event,
)
from .protocol import KernelState

log = logging.getLogger("jupervisor.jobs")


# ---- progress events ---------------------------------------------------------------
@attrs.frozen
class CellStarted:
    index: int
    source: str


@attrs.frozen
class CellOutput:
    index: int
    output: Mapping[str, Any]


@attrs.frozen
class CellFinished:
    index: int
    status: str
    duration_s: float


@attrs.frozen
class JobRetry:
    attempt: int
    reason: str


JobEvent: TypeAlias = CellStarted | CellOutput | CellFinished | JobRetry


# ---- errors ------------------------------------------------------------------------
@attrs.define(kw_only=True, auto_exc=True)
class CellExecutionError(JupervisorError, RuntimeError):
    """A cell raised an error (and neither allow_errors nor `raises-exception` applied)."""

    cell: int
    ename: str
    evalue: str

    def __str__(self) -> str:
        return f"cell {self.cell} raised {self.ename}: {self.evalue}"


@attrs.define(kw_only=True, auto_exc=True)
class CellTimeoutError(JupervisorError, TimeoutError):
    """A cell ran past its timeout."""

    cell: int
    timeout_s: float

    def __str__(self) -> str:
        return f"cell {self.cell} did not finish within {self.timeout_s:g}s (interrupted)"


@attrs.define(kw_only=True, auto_exc=True)
class KernelDiedInCell(JupervisorError, RuntimeError):
    """The kernel died while a cell ran."""

    cell: int
    cause: str
    detail: str

    def __str__(self) -> str:
        return f"the kernel died in cell {self.cell} ({self.cause}: {self.detail})"


@attrs.frozen(kw_only=True)
class JobOptions:
    """How to run a notebook job."""

    kernel_name: str | None = None
    cell_timeout_s: float | None = None
    deadline_s: float | None = None
    allow_errors: bool = False
    parameters: Mapping[str, Any] = attrs.field(factory=dict)
    retries: int = 1
    interrupt_grace_s: float = 5.0
    cwd: str | None = None


@attrs.frozen(kw_only=True)
class JobResult:
    """What a job did.

    Attributes:
        notebook: The executed notebook (nbformat node), outputs written back.
        status: ``ok``, ``error``, ``timeout``, ``died`` or ``start_failed``.
        error: The error that ended the job, if any.
        attempts: How many times the job ran (1 + infrastructure retries).
        cells_run: Code cells executed in the final attempt.
    """

    notebook: Any
    status: str
    error: BaseException | None
    attempts: int
    cells_run: int

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _tags(cell: Any) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def inject_parameters(nb: Any, parameters: Mapping[str, Any]) -> None:
    """Insert a cell tagged ``injected-parameters`` after the ``parameters`` cell (or first),
    replacing an earlier injected cell, and record the parameters in the metadata.

    Raises:
        ValueError: a value has no Python literal form (its repr does not round-trip).
    """
    import ast

    lines = []
    for name, value in parameters.items():
        if not name.isidentifier():
            raise ValueError(f"parameter name {name!r} is not a valid identifier")
        text = repr(value)
        try:
            ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ValueError(f"parameter {name!r}: {text} is not a Python literal") from None
        lines.append(f"{name} = {text}")
    cells = [c for c in nb.cells if "injected-parameters" not in _tags(c)]
    at = next((i + 1 for i, c in enumerate(cells) if "parameters" in _tags(c)), 0)
    cell = nbformat.v4.new_code_cell("# Parameters\n" + "\n".join(lines), metadata={"tags": ["injected-parameters"]})
    cells.insert(at, cell)
    nb.cells = cells
    nb.metadata.setdefault("papermill", {})["parameters"] = dict(parameters)


async def run_notebook(
    sup: Supervisor,
    notebook: Any,
    options: JobOptions = JobOptions(),
    *,
    on_event: Callable[[JobEvent], Any] | None = None,
) -> JobResult:
    """Execute a notebook (an nbformat node, or a path) on a fresh supervised kernel.

    Example:
        >>> result = await run_notebook(sup, "report.ipynb", JobOptions(parameters={"n": 3}))  # doctest: +SKIP
        >>> nbformat.write(result.notebook, "out.ipynb")
    """
    nb = nbformat.read(str(notebook), as_version=4) if isinstance(notebook, (str, Path)) else notebook
    if options.parameters:
        inject_parameters(nb, options.parameters)
    kernel_name = options.kernel_name or nb.metadata.get("kernelspec", {}).get("name") or "python3"
    emit = on_event or (lambda ev: None)
    attempt = 0
    while True:
        attempt += 1
        status, error, cells_run, retry_reason = await _attempt(sup, nb, kernel_name, options, emit)
        if retry_reason is None or attempt > options.retries:
            event(log, "job.finished", status=status, attempts=attempt, cells_run=cells_run)
            return JobResult(notebook=nb, status=status, error=error, attempts=attempt, cells_run=cells_run)
        event(log, "job.retry", logging.WARNING, attempt=attempt, reason=retry_reason)
        emit(JobRetry(attempt, retry_reason))


async def _attempt(
    sup: Supervisor, nb: Any, kernel_name: str, options: JobOptions, emit: Callable[[JobEvent], Any]
) -> tuple[str, BaseException | None, int, str | None]:
    """One run of the whole notebook; returns (status, error, cells run, retry reason or None)."""
    try:
        kernel = await sup.start_kernel(kernel_name, cwd=options.cwd, restart=RestartPolicy(restart=RestartType.TEMPORARY))
    except KernelStartError as exc:
        return "start_failed", exc, 0, f"kernel failed to start: {exc.reason}"
    cells_run = 0
    try:
        with trio.fail_after(options.deadline_s if options.deadline_s is not None else float("inf")):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or "skip-execution" in _tags(cell) or not cell.source.strip():
                    continue
                cells_run += 1
                outcome = await _run_cell(kernel, index, cell, options, emit)
                if outcome is not None:
                    status, error, infra = outcome
                    return status, error, cells_run, infra
        return "ok", None, cells_run, None
    except trio.TooSlowError:
        return "timeout", TimeoutError(f"the job ran past its {options.deadline_s:g}s deadline"), cells_run, None
    finally:
        with trio.CancelScope(shield=True):
            try:
                await kernel.shutdown()
            except JupervisorError:
                pass


async def _run_cell(
    kernel: Any, index: int, cell: Any, options: JobOptions, emit: Callable[[JobEvent], Any]
) -> tuple[str, BaseException, str | None] | None:
    """Run one cell; None when the job goes on, else (status, error, retry reason)."""
    cell.outputs = []
    cell.execution_count = None
    timing: dict[str, str] = {"iopub.status.busy": _now()}
    emit(CellStarted(index, cell.source))
    started = trio.current_time()
    seen_output = False

    def on_output(out: Mapping[str, Any]) -> None:
        nonlocal seen_output
        seen_output = True
        emit(CellOutput(index, out))

    try:
        result = await kernel.execute(cell.source, timeout=options.cell_timeout_s, on_output=on_output)
    except ExecuteTimeout:
        await _stop_runaway(kernel, options.interrupt_grace_s)
        emit(CellFinished(index, "timeout", trio.current_time() - started))
        err = CellTimeoutError(cell=index, timeout_s=options.cell_timeout_s or 0)
        cell.outputs = [nbformat.v4.new_output("error", ename="CellTimeoutError", evalue=str(err), traceback=[str(err)])]
        return "timeout", err, None
    except KernelDied as exc:
        emit(CellFinished(index, "died", trio.current_time() - started))
        err = KernelDiedInCell(cell=index, cause=exc.cause, detail=exc.detail or str(exc))
        cell.outputs = [nbformat.v4.new_output("error", ename="KernelDied", evalue=str(err), traceback=[str(err)])]
        return "died", err, (None if seen_output else f"kernel died before cell {index} produced output")
    timing["shell.execute_reply"] = timing["iopub.status.idle"] = _now()
    cell.metadata["execution"] = timing  # nbformat copies dicts on assignment: set it complete
    cell.execution_count = result.execution_count
    cell.outputs = [nbformat.from_dict(o) for o in result.outputs]
    emit(CellFinished(index, result.status, trio.current_time() - started))
    if result.status == "error" and not options.allow_errors and "raises-exception" not in _tags(cell):
        e = result.error
        return "error", CellExecutionError(cell=index, ename=e.ename if e else "", evalue=e.evalue if e else ""), None
    return None


async def _stop_runaway(kernel: Any, grace_s: float) -> None:
    """Interrupt a cell past its timeout; restart the kernel if the interrupt does not take."""
    try:
        await kernel.interrupt()
        with trio.move_on_after(grace_s) as waited:
            await kernel.wait_for_state(KernelState.IDLE)
        if waited.cancelled_caught:
            await kernel.restart()
    except JupervisorError:
        pass


async def run_notebooks(
    sup: Supervisor,
    jobs: Sequence[tuple[Any, JobOptions]],
    *,
    parallel: int = 4,
    on_event: Callable[[int, JobEvent], Any] | None = None,
) -> list[JobResult]:
    """Run several notebooks concurrently, each on its own kernel, at most `parallel` at once."""
    limiter = trio.CapacityLimiter(max(1, parallel))
    results: list[JobResult | None] = [None] * len(jobs)

    async def one(i: int, nb: Any, opts: JobOptions) -> None:
        async with limiter:
            emit = (lambda ev: on_event(i, ev)) if on_event else None
            results[i] = await run_notebook(sup, nb, opts, on_event=emit)

    async with trio.open_nursery() as n:
        for i, (nb, opts) in enumerate(jobs):
            n.start_soon(one, i, nb, opts)
    return [r for r in results if r is not None]
