# The request API a user holds for one kernel: execute, stream, complete, inspect,
# history, is_complete, kernel_info, comm_info. It is the same for a kernel we
# supervise (`Kernel`, in _handle.py) and a kernel someone else started (`connect`):
# both give it a way to get the kernel's current channel actors.
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio

from .actors import ChannelSet, Exchange, StdinHandler, call
from .actors import ExecuteTimeout, RequestTimeout
from ._outputs import OUTPUT_TYPES, OutputCollector, to_output
from .protocol import (
    Message,
    Request,
    comm_info_request,
    complete_request,
    execute_request,
    history_request,
    inspect_request,
    is_complete_request,
    kernel_info_request,
)


@attrs.frozen
class ErrorInfo:
    """An error raised by user code in the kernel."""

    ename: str
    evalue: str
    traceback: tuple[str, ...]


@attrs.frozen(kw_only=True)
class ExecuteResult:
    """The outcome of one execute_request.

    Attributes:
        status: ``ok``, ``error`` or ``aborted`` (from the reply).
        execution_count: The kernel's execution counter for this request.
        outputs: nbformat v4 output dicts (display updates and clear_output applied).
        stdout: Everything printed to stdout.
        stderr: Everything printed to stderr.
        result: The text/plain of the execute_result, if any.
        data: The execute_result's mime bundle, if any.
        error: The error, if the code raised.
        reply: The execute_reply content.
    """

    status: str
    execution_count: int | None
    outputs: tuple[dict[str, Any], ...]
    stdout: str
    stderr: str
    result: str | None
    data: Mapping[str, Any] | None
    error: ErrorInfo | None
    reply: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "ok"


ChannelsGetter = Callable[[], Awaitable[ChannelSet]]


@attrs.define(eq=False)
class KernelClient:
    """Requests to one kernel. Every method waits for the reply (and, where the kernel
    publishes one, the idle status), so outputs are complete when it returns.

    Raises (every method):
        KernelDied: the kernel died while the request was in flight.
        RequestTimeout: no complete answer within `timeout`.
    """

    id: str
    _get_channels: ChannelsGetter

    async def request(
        self, req: Request, *, timeout: float | None = None, wait_for_idle: bool = True, stdin: StdinHandler | None = None
    ):
        """Send any built request and return its Answer (reply plus iopub messages)."""
        return await call(await self._get_channels(), req, timeout=timeout, wait_for_idle=wait_for_idle, stdin=stdin)

    async def _reply(self, req: Request, timeout: float | None) -> dict[str, Any]:
        answer = await self.request(req, timeout=timeout)
        return dict(answer.content)

    async def execute(
        self,
        code: str,
        *,
        timeout: float | None = None,
        stdin: StdinHandler | None = None,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
        stop_on_error: bool = True,
        on_output: Callable[[dict[str, Any]], Any] | None = None,
    ) -> ExecuteResult:
        """Run code and wait for its reply and idle status.

        Args:
            code: The code.
            timeout: Seconds for the whole execution (None: no limit).
            stdin: Answers ``input()``; without it the kernel refuses input with an error.
            silent: Do not broadcast or count the execution.
            store_history: Keep it in the kernel's history.
            user_expressions: Expressions to evaluate after the code.
            stop_on_error: Abort queued executions after an error.
            on_output: Called with each nbformat output dict as it arrives.

        Raises:
            ExecuteTimeout: it did not finish within `timeout`.
            KernelDied: the kernel died meanwhile (cause, exit code or signal).

        Example:
            >>> r = await kernel.execute("print(1); 2 + 3")       # doctest: +SKIP
            >>> r.stdout, r.result
            ('1\\n', '5')
        """
        collector = OutputCollector()
        streams = {"stdout": [], "stderr": []}
        req = execute_request(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=stdin is not None,
            stop_on_error=stop_on_error,
        )
        channels = await self._get_channels()
        ex = Exchange(channels, req, stdin=stdin, iopub_types=OUTPUT_TYPES)
        try:
            with trio.fail_after(float("inf") if timeout is None else timeout):
                async with ex:
                    async for msg in ex:
                        if msg is ex.reply:
                            continue
                        out = collector.feed(msg)
                        if out is not None:
                            if out["output_type"] == "stream" and out["name"] in streams:
                                streams[out["name"]].append(out["text"])
                            if on_output is not None:
                                on_output(out)
        except trio.TooSlowError:
            raise ExecuteTimeout(kernel_id=self.id, msg_type="execute_request", timeout_s=timeout or 0) from None
        return _result(ex.reply, collector, streams)

    async def stream(
        self, code: str, *, timeout: float | None = None, stdin: StdinHandler | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Run code and yield its nbformat outputs as they arrive (raw, not coalesced).

        Example:
            >>> async for out in kernel.stream("for i in range(3): print(i)"):   # doctest: +SKIP
            ...     print(out["text"], end="")
        """
        channels = await self._get_channels()
        req = execute_request(code, allow_stdin=stdin is not None)
        deadline = trio.current_time() + (float("inf") if timeout is None else timeout)
        async with Exchange(channels, req, stdin=stdin, iopub_types=OUTPUT_TYPES) as ex:
            while True:
                msg = None
                with trio.move_on_at(deadline):
                    try:
                        msg = await ex.__anext__()
                    except StopAsyncIteration:
                        return
                if msg is None:
                    raise ExecuteTimeout(kernel_id=self.id, msg_type="execute_request", timeout_s=timeout or 0)
                if msg is not ex.reply:
                    out = to_output(msg)
                    if out is not None:
                        yield out  # never inside a cancel scope: the consumer runs here

    async def complete(self, code: str, cursor_pos: int | None = None, *, timeout: float | None = 30) -> dict[str, Any]:
        """Ask for completions; returns the complete_reply content."""
        return await self._reply(complete_request(code, cursor_pos), timeout)

    async def inspect(
        self, code: str, cursor_pos: int | None = None, detail_level: int = 0, *, timeout: float | None = 30
    ) -> dict[str, Any]:
        """Ask for introspection; returns the inspect_reply content."""
        return await self._reply(inspect_request(code, cursor_pos, detail_level), timeout)

    async def history(self, *, timeout: float | None = 30, **kwargs: Any) -> dict[str, Any]:
        """Ask for history (keywords as in ``protocol.history_request``); returns the reply content."""
        return await self._reply(history_request(**kwargs), timeout)

    async def is_complete(self, code: str, *, timeout: float | None = 30) -> dict[str, Any]:
        """Ask whether `code` is complete; returns the is_complete_reply content."""
        return await self._reply(is_complete_request(code), timeout)

    async def kernel_info(self, *, timeout: float | None = 30) -> dict[str, Any]:
        """Return the kernel_info_reply content."""
        return await self._reply(kernel_info_request(), timeout)

    async def comm_info(self, target_name: str | None = None, *, timeout: float | None = 30) -> dict[str, Any]:
        """Return the comm_info_reply content."""
        return await self._reply(comm_info_request(target_name), timeout)


def _result(reply: Message | None, collector: OutputCollector, streams: dict[str, list[str]]) -> ExecuteResult:
    content = dict(reply.content) if reply is not None else {}
    result = data = None
    error = None
    for out in collector.outputs:
        if out["output_type"] == "execute_result":
            data = out["data"]
            result = data.get("text/plain")
        elif out["output_type"] == "error":
            error = ErrorInfo(out["ename"], out["evalue"], tuple(out["traceback"]))
    status = str(content.get("status", "ok"))
    if error is None and status == "error":
        error = ErrorInfo(str(content.get("ename", "")), str(content.get("evalue", "")), tuple(content.get("traceback", [])))
    return ExecuteResult(
        status=status,
        execution_count=content.get("execution_count"),
        outputs=tuple(collector.outputs),
        stdout="".join(streams["stdout"]),
        stderr="".join(streams["stderr"]),
        result=result,
        data=data,
        error=error,
        reply=content,
    )


__all__ = ["ErrorInfo", "ExecuteResult", "KernelClient", "RequestTimeout"]
