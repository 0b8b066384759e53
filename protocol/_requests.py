# Builders for every request a client sends, with the messaging spec 5.x defaults.
# Each returns a Request (channel, msg_type, content); a Session turns it into a Message.
# Rules kept here: arguments are checked before anything is built, and a bad one raises
# ValueError naming the argument, what was expected and what came.
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._message import Request, _make_request


def _fail(name: str, expected: str, value: object) -> ValueError:
    return ValueError(f"{name} must be {expected}, got {value!r}"[:300])


def _str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(name, "a string", value)
    return value


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _fail(name, "True or False", value)
    return value


def _int(name: str, value: object, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, "an int", value)
    if minimum is not None and value < minimum:
        raise _fail(name, f"an int >= {minimum}", value)
    return value


def _optional_int(name: str, value: object, *, minimum: int | None = None) -> int | None:
    return None if value is None else _int(name, value, minimum=minimum)


def _cursor(code: str, cursor_pos: object) -> int:
    if cursor_pos is None:
        return len(code)
    pos = _int("cursor_pos", cursor_pos, minimum=0)
    if pos > len(code):
        raise _fail("cursor_pos", f"at most len(code) = {len(code)}", pos)
    return pos


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

    ``store_history`` is forced off when ``silent`` is set, as the spec says.

    Raises:
        ValueError: an argument has the wrong type (the message names it).

    Example:
        >>> execute_request("1 + 1").content["code"]
        '1 + 1'
    """
    if type(code) is not str:
        _str("code", code)
    if type(silent) is not bool or type(store_history) is not bool:
        _bool("silent", silent), _bool("store_history", store_history)
    if type(allow_stdin) is not bool or type(stop_on_error) is not bool:
        _bool("allow_stdin", allow_stdin), _bool("stop_on_error", stop_on_error)
    if user_expressions:
        if not isinstance(user_expressions, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in user_expressions.items()
        ):
            raise _fail("user_expressions", "a mapping of str to str", user_expressions)
        exprs = dict(user_expressions)
    elif user_expressions is None or isinstance(user_expressions, Mapping):
        exprs = {}
    else:
        raise _fail("user_expressions", "a mapping of str to str", user_expressions)
    return _make_request(
        "shell",
        "execute_request",
        {
            "code": code,
            "silent": silent,
            "store_history": store_history and not silent,
            "user_expressions": exprs,
            "allow_stdin": allow_stdin,
            "stop_on_error": stop_on_error,
        },
    )


def complete_request(code: str, cursor_pos: int | None = None) -> Request:
    """Build a ``complete_request``; ``cursor_pos`` defaults to the end of ``code``.

    Raises:
        ValueError: ``code`` is not a string, or ``cursor_pos`` not an int in ``0..len(code)``.

    Example:
        >>> complete_request("pri").content
        {'code': 'pri', 'cursor_pos': 3}
    """
    code = _str("code", code)
    return _make_request("shell", "complete_request", {"code": code, "cursor_pos": _cursor(code, cursor_pos)})


def inspect_request(code: str, cursor_pos: int | None = None, detail_level: int = 0) -> Request:
    """Build an ``inspect_request`` (detail_level 0 or 1).

    Raises:
        ValueError: ``code`` is not a string, ``cursor_pos`` not in ``0..len(code)``, or
            ``detail_level`` not 0 or 1.

    Example:
        >>> inspect_request("len", detail_level=1).content["detail_level"]
        1
    """
    code = _str("code", code)
    pos = _cursor(code, cursor_pos)
    if isinstance(detail_level, bool) or detail_level not in (0, 1):
        raise _fail("detail_level", "0 or 1", detail_level)
    return _make_request(
        "shell", "inspect_request", {"code": code, "cursor_pos": pos, "detail_level": detail_level}
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
    """Build a ``history_request`` (hist_access_type: range, tail or search).

    ``session`` and ``start`` may be negative (counted back from the current one), as in IPython.

    Raises:
        ValueError: ``hist_access_type`` is not range/tail/search, or another argument
            has the wrong type (``n`` must be >= 0).

    Example:
        >>> history_request(hist_access_type="tail", n=5).content["n"]
        5
    """
    if hist_access_type not in ("range", "tail", "search"):
        raise _fail("hist_access_type", "'range', 'tail' or 'search'", hist_access_type)
    content: dict[str, Any] = {
        "raw": _bool("raw", raw),
        "output": _bool("output", output),
        "hist_access_type": hist_access_type,
    }
    if hist_access_type == "range":
        content.update(
            session=_int("session", session), start=_int("start", start), stop=_optional_int("stop", stop)
        )
    elif hist_access_type == "tail":
        content.update(n=10 if n is None else _int("n", n, minimum=0))
    else:
        if pattern is not None:
            _str("pattern", pattern)
        content.update(pattern=pattern or "*", unique=_bool("unique", unique), n=_optional_int("n", n, minimum=0))
    return _make_request("shell", "history_request", content)


def kernel_info_request(channel: str = "shell") -> Request:
    """Build a ``kernel_info_request`` (on shell, or on control since 5.5).

    Raises:
        ValueError: ``channel`` is not ``shell`` or ``control``.

    Example:
        >>> kernel_info_request("control").channel
        'control'
    """
    if channel not in ("shell", "control"):
        raise _fail("channel", "'shell' or 'control'", channel)
    return _make_request(channel, "kernel_info_request", {})


def comm_info_request(target_name: str | None = None) -> Request:
    """Build a ``comm_info_request``, optionally filtered by target name.

    Raises:
        ValueError: ``target_name`` is neither None nor a string.

    Example:
        >>> comm_info_request("jupyter.widget").content
        {'target_name': 'jupyter.widget'}
    """
    if target_name is None:
        return _make_request("shell", "comm_info_request", {})
    return _make_request("shell", "comm_info_request", {"target_name": _str("target_name", target_name)})


def is_complete_request(code: str) -> Request:
    """Build an ``is_complete_request``.

    Raises:
        ValueError: ``code`` is not a string.

    Example:
        >>> is_complete_request("for i in x:").content
        {'code': 'for i in x:'}
    """
    return _make_request("shell", "is_complete_request", {"code": _str("code", code)})


def input_reply(value: str) -> Request:
    """Build an ``input_reply`` for the stdin channel.

    Raises:
        ValueError: ``value`` is not a string.

    Example:
        >>> input_reply("yes").channel
        'stdin'
    """
    return _make_request("stdin", "input_reply", {"value": _str("value", value)})


def shutdown_request(*, restart: bool = False) -> Request:
    """Build a ``shutdown_request`` for the control channel.

    Raises:
        ValueError: ``restart`` is not a bool.

    Example:
        >>> shutdown_request(restart=True).content
        {'restart': True}
    """
    return _make_request("control", "shutdown_request", {"restart": _bool("restart", restart)})


def interrupt_request() -> Request:
    """Build an ``interrupt_request`` for the control channel (interrupt_mode "message").

    Example:
        >>> interrupt_request().msg_type
        'interrupt_request'
    """
    return _make_request("control", "interrupt_request", {})


def debug_request(dap_request: Mapping[str, Any]) -> Request:
    """Build a ``debug_request`` carrying one Debug Adapter Protocol request body.

    Raises:
        ValueError: ``dap_request`` is not a mapping.

    Example:
        >>> debug_request({"type": "request", "seq": 1, "command": "initialize"}).channel
        'control'
    """
    if not isinstance(dap_request, Mapping):
        raise _fail("dap_request", "a mapping (a DAP request body)", dap_request)
    return _make_request("control", "debug_request", dict(dap_request))
