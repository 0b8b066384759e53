# Builders for every request a client sends, with the messaging spec 5.x defaults.
# Each returns a Request (channel, msg_type, content); a Session turns it into a Message.
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._message import Request


def execute_request(
    code: str,
    *,
    silent: bool = False,
    store_history: bool = True,
    user_expressions: Mapping[str, str] | None = None,
    allow_stdin: bool = True,
    stop_on_error: bool = True,
) -> Request:
    """Build an ``execute_request`` for the shell channel.

    Example:
        >>> execute_request("1 + 1").content["code"]
        '1 + 1'
    """
    return Request(
        "shell",
        "execute_request",
        {
            "code": code,
            "silent": silent,
            "store_history": store_history and not silent,
            "user_expressions": dict(user_expressions or {}),
            "allow_stdin": allow_stdin,
            "stop_on_error": stop_on_error,
        },
    )


def complete_request(code: str, cursor_pos: int | None = None) -> Request:
    """Build a ``complete_request``; ``cursor_pos`` defaults to the end of ``code``."""
    return Request(
        "shell", "complete_request", {"code": code, "cursor_pos": len(code) if cursor_pos is None else cursor_pos}
    )


def inspect_request(code: str, cursor_pos: int | None = None, detail_level: int = 0) -> Request:
    """Build an ``inspect_request`` (detail_level 0 or 1)."""
    if detail_level not in (0, 1):
        raise ValueError(f"detail_level must be 0 or 1, got {detail_level!r}")
    return Request(
        "shell",
        "inspect_request",
        {"code": code, "cursor_pos": len(code) if cursor_pos is None else cursor_pos, "detail_level": detail_level},
    )


def history_request(
    *,
    raw: bool = True,
    output: bool = False,
    hist_access_type: str = "range",
    session: int = 0,
    start: int = 0,
    stop: int | None = None,
    n: int | None = None,
    pattern: str | None = None,
    unique: bool = False,
) -> Request:
    """Build a ``history_request`` (hist_access_type: range, tail or search)."""
    if hist_access_type not in ("range", "tail", "search"):
        raise ValueError(f"hist_access_type must be range, tail or search, got {hist_access_type!r}")
    content: dict[str, Any] = {"raw": raw, "output": output, "hist_access_type": hist_access_type}
    if hist_access_type == "range":
        content.update(session=session, start=start, stop=stop)
    elif hist_access_type == "tail":
        content.update(n=10 if n is None else n)
    else:
        content.update(pattern=pattern or "*", unique=unique, n=n)
    return Request("shell", "history_request", content)


def kernel_info_request(channel: str = "shell") -> Request:
    """Build a ``kernel_info_request`` (on shell, or on control since 5.5)."""
    return Request(channel, "kernel_info_request", {})


def comm_info_request(target_name: str | None = None) -> Request:
    """Build a ``comm_info_request``, optionally filtered by target name."""
    return Request("shell", "comm_info_request", {} if target_name is None else {"target_name": target_name})


def is_complete_request(code: str) -> Request:
    """Build an ``is_complete_request``."""
    return Request("shell", "is_complete_request", {"code": code})


def input_reply(value: str) -> Request:
    """Build an ``input_reply`` for the stdin channel."""
    return Request("stdin", "input_reply", {"value": value})


def shutdown_request(*, restart: bool = False) -> Request:
    """Build a ``shutdown_request`` for the control channel."""
    return Request("control", "shutdown_request", {"restart": restart})


def interrupt_request() -> Request:
    """Build an ``interrupt_request`` for the control channel (interrupt_mode "message")."""
    return Request("control", "interrupt_request", {})


def debug_request(dap_request: Mapping[str, Any]) -> Request:
    """Build a ``debug_request`` carrying one Debug Adapter Protocol request body."""
    return Request("control", "debug_request", dict(dap_request))
