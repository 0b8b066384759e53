# Adaptation between protocol 4.x and 5.x messages, so kernels that still speak 4.x work.
# adapt_to_v5 is applied to every decoded message whose header version is not 5.x;
# adapt_to_v4 rewrites the requests a client sends when the kernel said it speaks 4.x.
# Error/aborted replies skip content adaptation, as the spec's adapter does.
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs

from ._message import Header, Message

_V4_TO_V5_TYPES = {
    "pyout": "execute_result",
    "pyin": "execute_input",
    "pyerr": "error",
    "object_info_request": "inspect_request",
    "object_info_reply": "inspect_reply",
}
_V5_TO_V4_TYPES = {v: k for k, v in _V4_TO_V5_TYPES.items()}


def _version_string(v: object) -> str:
    if isinstance(v, (list, tuple)):
        return ".".join(str(x) for x in v)
    return str(v) if v is not None else ""


def _kernel_info_reply_v5(c: dict[str, Any]) -> None:
    c["protocol_version"] = _version_string(c.get("protocol_version", "4.1"))
    lang = c.pop("language", "")
    lang_version = _version_string(c.pop("language_version", ""))
    c.setdefault("language_info", {"name": lang, "version": lang_version})
    if "ipython_version" in c:
        c.setdefault("implementation", "ipython")
        c.setdefault("implementation_version", _version_string(c.pop("ipython_version")))
    c.setdefault("implementation", lang)
    c.setdefault("banner", "")


def _execute_v5(c: dict[str, Any]) -> None:
    user_vars = c.pop("user_variables", None)
    exprs = c.setdefault("user_expressions", {})
    if isinstance(user_vars, dict):
        exprs.update(user_vars)
    for payload in c.get("payload", []) or []:
        if payload.get("source") == "page" and "text" in payload:
            payload["data"] = {"text/plain": payload.pop("text")}


def _complete_request_v5(c: dict[str, Any]) -> None:
    code = c.pop("block", None) or c.pop("line", "") or ""
    c.pop("text", None)
    c["code"] = code
    c.setdefault("cursor_pos", len(code))


def _complete_reply_v5(c: dict[str, Any]) -> None:
    matched = c.pop("matched_text", "") or ""
    c.setdefault("cursor_start", None if not matched else -len(matched))
    c.setdefault("cursor_end", None)
    c.setdefault("metadata", {})


def _inspect_request_v5(c: dict[str, Any]) -> None:
    code = c.pop("oname", "") or ""
    c["code"] = code
    c["cursor_pos"] = len(code)
    c.setdefault("detail_level", 0)


def _inspect_reply_v5(c: dict[str, Any]) -> None:
    found = bool(c.pop("found", False))
    text = c.get("source") if c.get("detail_level") == 1 else None
    text = text or c.get("docstring") or c.get("definition") or c.get("call_docstring") or ""
    keep = {"status": c.get("status", "ok")}
    c.clear()
    c.update(keep, found=found, data={"text/plain": text} if found else {}, metadata={})


def _stream_v5(c: dict[str, Any]) -> None:
    if "data" in c and "text" not in c:
        c["text"] = c.pop("data")


def _display_v5(c: dict[str, Any]) -> None:
    c.pop("source", None)
    data = c.get("data")
    if isinstance(data, dict) and isinstance(data.get("application/json"), str):
        try:
            data["application/json"] = json.loads(data["application/json"])
        except ValueError:
            pass


def _input_request_v5(c: dict[str, Any]) -> None:
    c.setdefault("password", False)


_TO_V5: dict[str, Callable[[dict[str, Any]], None]] = {
    "kernel_info_reply": _kernel_info_reply_v5,
    "execute_request": _execute_v5,
    "execute_reply": _execute_v5,
    "complete_request": _complete_request_v5,
    "complete_reply": _complete_reply_v5,
    "inspect_request": _inspect_request_v5,
    "inspect_reply": _inspect_reply_v5,
    "stream": _stream_v5,
    "display_data": _display_v5,
    "execute_result": _display_v5,
    "input_request": _input_request_v5,
}


def _with(msg: Message, msg_type: str, version: str, content: dict[str, Any]) -> Message:
    header = attrs.evolve(msg.header, msg_type=msg_type, version=version)
    return attrs.evolve(msg, header=header, content=content)


def adapt_to_v5(msg: Message) -> Message:
    """Rewrite a 4.x message as the equivalent 5.x message.

    Example:
        >>> from ._message import Session
        >>> old = Session().message("pyout", {"data": {}, "execution_count": 1})
        >>> old = attrs.evolve(old, header=attrs.evolve(old.header, version="4.1"))
        >>> adapt_to_v5(old).msg_type
        'execute_result'
    """
    msg_type = _V4_TO_V5_TYPES.get(msg.msg_type, msg.msg_type)
    content = json.loads(json.dumps(dict(msg.content), default=str))  # deep copy of plain JSON
    if content.get("status") not in ("error", "aborted") and msg_type in _TO_V5:
        _TO_V5[msg_type](content)
    return _with(msg, msg_type, "5.0", content)


def adapt_to_v4(msg: Message) -> Message:
    """Rewrite a 5.x request a client sends as the 4.x request an old kernel expects."""
    c = dict(msg.content)
    t = msg.msg_type
    if t == "execute_request":
        c.setdefault("user_variables", [])
    elif t == "complete_request":
        code, pos = c.pop("code", ""), c.get("cursor_pos", 0)
        line_start = code.rfind("\n", 0, pos) + 1
        c.update(text="", line=code[line_start:pos], block=None, cursor_pos=pos - line_start)
    elif t == "inspect_request":
        code = c.pop("code", "")
        c.pop("cursor_pos", None)
        c["oname"] = code
    return _with(msg, _V5_TO_V4_TYPES.get(t, t), "4.1", c)


__all__ = ["adapt_to_v4", "adapt_to_v5", "Header"]
