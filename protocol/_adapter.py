# Adaptation between protocol 4.x and 5.x messages, so kernels that still speak 4.x work.
# adapt_to_v5 is applied to every decoded message whose header version is below 5 (or
# missing); adapt_to_v4 rewrites the requests a client sends when the kernel said it
# speaks 4.x. Rules kept here: the results agree with jupyter_client.adapter on
# well-formed 4.x input (one deliberate difference: execute_result's JSON string is
# decoded too); content that is already 5.x-shaped passes through; error/aborted
# replies keep their content; the input message is never mutated; malformed 4.x
# content raises MessageFormatError, nothing else.
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._errors import MessageFormatError
from ._message import Message

_V4_TO_V5_TYPES = {
    "pyout": "execute_result",
    "pyin": "execute_input",
    "pyerr": "error",
    "object_info_request": "inspect_request",
    "object_info_reply": "inspect_reply",
}
_V5_TO_V4_TYPES = {v: k for k, v in _V4_TO_V5_TYPES.items()}


def _joined(v: object) -> object:
    """A 4.x version list (``[4, 1]``) as the 5.x string (``"4.1"``); other values unchanged."""
    return ".".join(str(x) for x in v) if isinstance(v, (list, tuple)) else v


def _kernel_info_reply_v5(c: dict[str, Any]) -> dict[str, Any]:
    for key in ("protocol_version", "ipython_version"):
        if key in c:
            c[key] = _joined(c[key])
    c.setdefault("protocol_version", "4.1")
    if "language" not in c:  # already 5.x-shaped
        return c
    language = c.pop("language")
    if isinstance(language, str) and language.startswith("python") and "ipython_version" in c:
        c["implementation"] = "ipython"
        c["implementation_version"] = c.pop("ipython_version")
    info = dict(c.get("language_info") or {})
    info.setdefault("name", language)
    if "language_version" in c:
        info.setdefault("version", _joined(c.pop("language_version")))
    c["language_info"] = info
    c.setdefault("banner", "")
    return c


def _execute_request_v5(c: dict[str, Any]) -> dict[str, Any]:
    names = c.pop("user_variables", None) or []
    exprs = c["user_expressions"] = dict(c.get("user_expressions") or {})
    for name in names:
        exprs[name] = name
    return c


def _execute_reply_v5(c: dict[str, Any]) -> dict[str, Any]:
    exprs = c["user_expressions"] = dict(c.get("user_expressions") or {})
    exprs.update(c.pop("user_variables", None) or {})
    if "payload" in c:
        payloads = []
        for p in c["payload"] or ():
            if p.get("source") == "page" and "text" in p:  # pager payloads became a mime bundle
                p = dict(p)
                p["data"] = {**(p.get("data") or {}), "text/plain": p.pop("text")}
            payloads.append(p)
        c["payload"] = payloads
    return c


def _complete_request_v5(c: dict[str, Any]) -> dict[str, Any]:
    if "line" not in c:
        return c
    line = c["line"]
    return {"code": line, "cursor_pos": c.get("cursor_pos", len(line))}


def _complete_reply_v5(c: dict[str, Any]) -> dict[str, Any]:
    if "matched_text" not in c:
        return c
    matched = c["matched_text"] or ""
    return {
        "status": "ok",
        "matches": c.get("matches", []),
        "cursor_start": -len(matched) if matched else None,  # relative to the cursor; None: start == end
        "cursor_end": None,
        "metadata": {},
    }


def _inspect_request_v5(c: dict[str, Any]) -> dict[str, Any]:
    if "oname" not in c:
        return c
    name = c["oname"]
    return {"code": name, "cursor_pos": len(name), "detail_level": c.get("detail_level", 0)}


def _first(c: Mapping[str, Any], keys: tuple[str, ...]) -> list[str]:
    for key in keys:
        if c.get(key):
            return [c[key]]
    return []


def _inspect_reply_v5(c: dict[str, Any]) -> dict[str, Any]:
    if "data" in c:
        return c
    found = c.get("found", False)
    data = {}
    if found:
        lines = _first(c, ("call_def", "init_definition", "definition"))
        lines += _first(c, ("call_docstring", "init_docstring", "docstring"))
        data["text/plain"] = "\n".join(lines) if lines else "<empty docstring>"
    return {"status": "ok", "found": found, "data": data, "metadata": {}}


def _stream_v5(c: dict[str, Any]) -> dict[str, Any]:
    if "data" in c:
        c["text"] = c.pop("data")
    return c


def _json_mime_v5(c: dict[str, Any]) -> dict[str, Any]:
    data = c.get("data")
    if isinstance(data, dict) and isinstance(data.get("application/json"), str):
        try:
            c["data"] = {**data, "application/json": json.loads(data["application/json"])}
        except (ValueError, RecursionError):
            pass
    return c


def _display_data_v5(c: dict[str, Any]) -> dict[str, Any]:
    c.pop("source", None)
    return _json_mime_v5(c)


def _input_request_v5(c: dict[str, Any]) -> dict[str, Any]:
    c.setdefault("password", False)
    return c


# Each takes a shallow copy of the content and returns the 5.x content; nested values
# they change are copied first, so the message they came from is left as it was.
_TO_V5: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "kernel_info_reply": _kernel_info_reply_v5,
    "execute_request": _execute_request_v5,
    "execute_reply": _execute_reply_v5,
    "complete_request": _complete_request_v5,
    "complete_reply": _complete_reply_v5,
    "inspect_request": _inspect_request_v5,
    "inspect_reply": _inspect_reply_v5,
    "stream": _stream_v5,
    "display_data": _display_data_v5,
    "execute_result": _json_mime_v5,  # jupyter_client leaves this one as a string
    "input_request": _input_request_v5,
}


def _with(msg: Message, msg_type: str, version: str, content: Mapping[str, Any]) -> Message:
    header = attrs.evolve(msg.header, msg_type=msg_type, version=version)
    return attrs.evolve(msg, header=header, content=content)


def adapt_to_v5(msg: Message) -> Message:
    """Rewrite a 4.x message as the equivalent 5.x message.

    Raises:
        MessageFormatError: the 4.x content has the wrong shape to adapt
            (for example a ``payload`` that is not a list of objects).

    Example:
        >>> from ._message import Session
        >>> old = Session().message("pyout", {"data": {}, "execution_count": 1})
        >>> old = attrs.evolve(old, header=attrs.evolve(old.header, version="4.1"))
        >>> adapt_to_v5(old).msg_type
        'execute_result'
    """
    msg_type = _V4_TO_V5_TYPES.get(msg.msg_type, msg.msg_type)
    content: Mapping[str, Any] = msg.content
    adapt = _TO_V5.get(msg_type)
    if adapt is not None and content.get("status") not in ("error", "aborted"):
        try:
            content = adapt(dict(content))
        except (TypeError, AttributeError, ValueError, KeyError, RecursionError) as exc:
            raise MessageFormatError(
                part="content", reason=f"4.x {msg.msg_type} cannot be adapted to 5.x ({exc.__class__.__name__})"
            ) from None
    return _with(msg, msg_type, "5.0", content)


def _line_at(code: str, cursor_pos: int) -> tuple[str, int]:
    """The line of ``code`` holding the cursor (with its line break) and the cursor's
    position in it, counting lines as ``str.splitlines`` does."""
    line = ""
    for line in code.splitlines(keepends=True):
        if cursor_pos <= len(line):
            break
        cursor_pos -= len(line)
    return (line, cursor_pos) if code else ("", 0)


_CALL_ARGS = re.compile(r"\([^()]+\)")  # an innermost parenthesised group
_OPEN_CALL = re.compile(r"\([^(]*$")  # from the last unclosed "(" to the end
_DOTTED_NAME = re.compile(r"[a-z_][0-9a-z._]*", re.IGNORECASE)


def _object_name(code: str, cursor_pos: int) -> str:
    """The (dotted) name a 4.x ``object_info_request`` asks about: the last name on the
    cursor's line once closed calls are removed, preferring the callee of an open call."""
    line, _ = _line_at(code, cursor_pos)
    while True:
        shorter = _CALL_ARGS.sub("", line)
        if shorter == line:
            break
        line = shorter
    names = _DOTTED_NAME.findall(_OPEN_CALL.sub("", line))
    return names[-1] if names else ""


def adapt_to_v4(msg: Message) -> Message:
    """Rewrite a 5.x request a client sends as the 4.x request an old kernel expects.

    Raises:
        ValueError: the request's ``code``/``cursor_pos`` have the wrong types.

    Example:
        >>> from ._message import Session
        >>> adapt_to_v4(Session().message("inspect_request", {"code": "f(x", "cursor_pos": 3})).content
        {'oname': 'f', 'detail_level': 0}
    """
    c = dict(msg.content)
    t = msg.msg_type
    if t in ("complete_request", "inspect_request"):
        code, pos = c.get("code", ""), c.get("cursor_pos")
        pos = len(code) if pos is None else pos
        if not isinstance(code, str) or isinstance(pos, bool) or not isinstance(pos, int):
            raise ValueError(f"{t}: code must be a string and cursor_pos an int, got {code!r}, {pos!r}")
        if t == "complete_request":
            line, line_pos = _line_at(code, pos)
            c = {"text": "", "line": line, "block": None, "cursor_pos": line_pos}
        else:
            c = {"oname": _object_name(code, pos), "detail_level": c.get("detail_level", 0)}
    elif t == "execute_request":
        c.setdefault("user_variables", [])
    return _with(msg, _V5_TO_V4_TYPES.get(t, t), "4.1", c)


__all__ = ["adapt_to_v4", "adapt_to_v5"]
