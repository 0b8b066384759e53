"""Notebook jobs on real kernels: outputs, errors, parameters, timeouts, deaths, input, parallel runs."""

from __future__ import annotations

import nbformat
import pytest
import trio
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import jupervisor
from jupervisor._jobs import (
    CellExecutionError,
    CellTimeoutError,
    JobOptions,
    JobRetry,
    KernelDiedInCell,
    run_notebook,
    run_notebooks,
)

pytestmark = pytest.mark.integration


def nb(*cells) -> nbformat.NotebookNode:
    notebook = new_notebook(cells=list(cells))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def code(src: str, *tags: str):
    return new_code_cell(src, metadata={"tags": list(tags)} if tags else {})


async def test_outputs_of_every_kind_are_written_back() -> None:
    notebook = nb(
        new_markdown_cell("# title"),
        code("import sys\nprint('a'); print('b')\nprint('err', file=sys.stderr)"),
        code("from IPython.display import display, HTML, clear_output\ndisplay(HTML('<i>h</i>'))\n41 + 1"),
        code("print('gone')\nclear_output()\nprint('kept')"),
        code("raise ValueError('expected')", "raises-exception"),
        code("this_is_skipped()", "skip-execution"),
        code("'after'"),
    )
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            result = await run_notebook(sup, notebook)
    assert result.ok and result.cells_run == 5
    c = result.notebook.cells
    assert c[1].outputs == [
        {"output_type": "stream", "name": "stdout", "text": "a\nb\n"},
        {"output_type": "stream", "name": "stderr", "text": "err\n"},
    ]
    assert c[2].outputs[0]["data"]["text/html"] == "<i>h</i>" and c[2].outputs[1]["data"]["text/plain"] == "42"
    assert [o["text"] for o in c[3].outputs] == ["kept\n"]
    assert c[4].outputs[0]["ename"] == "ValueError"
    assert c[5].outputs == [] and c[5].execution_count is None
    assert [cell.execution_count for cell in c if cell.cell_type == "code" and cell.execution_count] == [1, 2, 3, 4, 5]
    assert set(c[1].metadata["execution"]) >= {"iopub.status.busy", "shell.execute_reply", "iopub.status.idle"}
    nbformat.validate(result.notebook)


async def test_error_stops_the_job_unless_allowed() -> None:
    notebook = nb(code("1/0"), code("'not reached'"))
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            stopped = await run_notebook(sup, notebook)
            allowed = await run_notebook(sup, nb(code("1/0"), code("'reached'")), JobOptions(allow_errors=True))
    assert stopped.status == "error" and isinstance(stopped.error, CellExecutionError)
    assert stopped.error.cell == 0 and stopped.error.ename == "ZeroDivisionError" and stopped.attempts == 1
    assert stopped.notebook.cells[1].outputs == []
    assert allowed.ok and allowed.notebook.cells[1].outputs[0]["data"]["text/plain"] == "'reached'"


async def test_parameters_are_injected_after_the_parameters_cell() -> None:
    notebook = nb(code("n = 1\nname = 'x'", "parameters"), code("print(n * 2, name)"))
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            result = await run_notebook(sup, notebook, JobOptions(parameters={"n": 21, "name": "job"}))
    cells = result.notebook.cells
    assert cells[1].metadata["tags"] == ["injected-parameters"] and "n = 21" in cells[1].source
    assert cells[2].outputs[0]["text"] == "42 job\n"
    assert result.notebook.metadata["papermill"]["parameters"] == {"n": 21, "name": "job"}
    with pytest.raises(ValueError, match="not a Python literal"):
        from jupervisor._jobs import inject_parameters

        inject_parameters(nb(), {"bad": object()})


async def test_cell_past_its_timeout_is_interrupted() -> None:
    notebook = nb(code("import time\ntime.sleep(30)"), code("'not reached'"))
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            result = await run_notebook(sup, notebook, JobOptions(cell_timeout_s=1.0))
    assert result.status == "timeout" and isinstance(result.error, CellTimeoutError)
    assert result.error.cell == 0 and result.attempts == 1
    assert result.notebook.cells[0].outputs[0]["ename"] == "CellTimeoutError"


async def test_kernel_killed_in_a_cell_ends_it_at_once_and_is_not_retried_after_output() -> None:
    notebook = nb(code("print('before', flush=True)\nimport os, time\ntime.sleep(0.2)\nos.kill(os.getpid(), 9)"))
    events = []
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            result = await run_notebook(sup, notebook, on_event=events.append)
    assert result.status == "died" and isinstance(result.error, KernelDiedInCell)
    assert result.error.cell == 0 and "SIGKILL" in result.error.detail
    assert result.attempts == 1 and not any(isinstance(e, JobRetry) for e in events)


async def test_death_before_any_output_is_an_infrastructure_failure_and_retried(tmp_path) -> None:
    marker = tmp_path / "died-once"
    src = f"import os\nif not os.path.exists({str(marker)!r}):\n    open({str(marker)!r}, 'w').close()\n    os.kill(os.getpid(), 9)\n'second try'"
    events = []
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            result = await run_notebook(sup, nb(code(src)), JobOptions(retries=1), on_event=events.append)
    assert result.ok and result.attempts == 2
    assert [type(e).__name__ for e in events if isinstance(e, JobRetry)] == ["JobRetry"]
    assert result.notebook.cells[0].outputs[0]["data"]["text/plain"] == "'second try'"


async def test_input_in_a_job_is_a_clear_error_not_a_hang() -> None:
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(60):
            result = await run_notebook(sup, nb(code("input('name? ')")))
    assert result.status == "error" and result.error.ename == "StdinNotImplementedError"


async def test_parallel_runs_each_correct() -> None:
    jobs = [(nb(code("n = 0", "parameters"), code("import os\nprint(n * n)")), JobOptions(parameters={"n": i})) for i in range(6)]
    async with jupervisor.open_supervisor() as sup:
        with trio.fail_after(120):
            results = await run_notebooks(sup, jobs, parallel=3)
    assert [r.notebook.cells[2].outputs[0]["text"] for r in results] == [f"{i * i}\n" for i in range(6)]


def test_blocking_job_api() -> None:
    import jupervisor.blocking

    result = jupervisor.blocking.run_notebook(nb(code("n = 0", "parameters"), code("n + 1")), jupervisor.JobOptions(parameters={"n": 9}))
    assert result.ok and result.notebook.cells[2].outputs[0]["data"]["text/plain"] == "10"
