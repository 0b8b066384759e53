# Turning iopub messages into nbformat v4 outputs, the way a notebook front end does:
# consecutive stream messages of the same name are coalesced, update_display_data
# replaces the outputs that share its display_id, clear_output empties the list (at
# once, or before the next output when wait=True). Job runners write these outputs
# straight into notebooks.
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .protocol import Message

OUTPUT_TYPES = frozenset({"stream", "display_data", "execute_result", "error", "update_display_data", "clear_output"})


def to_output(msg: Message) -> dict[str, Any] | None:
    """The nbformat output dict for one iopub message, or None if it is not an output.

    Example:
        >>> to_output(Session().message("stream", {"name": "stdout", "text": "hi"}))   # doctest: +SKIP
        {'output_type': 'stream', 'name': 'stdout', 'text': 'hi'}
    """
    c = msg.content
    t = msg.msg_type
    if t == "stream":
        return {"output_type": "stream", "name": c.get("name", "stdout"), "text": c.get("text", "")}
    if t in ("display_data", "update_display_data"):
        return {"output_type": "display_data", "data": dict(c.get("data", {})), "metadata": dict(c.get("metadata", {}))}
    if t == "execute_result":
        return {
            "output_type": "execute_result",
            "execution_count": c.get("execution_count"),
            "data": dict(c.get("data", {})),
            "metadata": dict(c.get("metadata", {})),
        }
    if t == "error":
        return {
            "output_type": "error",
            "ename": c.get("ename", ""),
            "evalue": c.get("evalue", ""),
            "traceback": list(c.get("traceback", [])),
        }
    return None


@attrs.define
class OutputCollector:
    """Accumulates the outputs of one request (or one notebook cell)."""

    outputs: list[dict[str, Any]] = attrs.field(factory=list)
    _clear_pending: bool = False
    _display_index: dict[str, list[int]] = attrs.field(factory=dict)

    def feed(self, msg: Message) -> dict[str, Any] | None:
        """Apply one iopub message; returns the output it produced (None if none)."""
        t = msg.msg_type
        if t == "clear_output":
            if msg.content.get("wait"):
                self._clear_pending = True
            else:
                self._clear()
            return None
        out = to_output(msg)
        if out is None:
            return None
        display_id = _display_id(msg.content)
        if t == "update_display_data":
            for i in self._display_index.get(display_id or "", []):
                self.outputs[i] = {**out}
            return out
        if self._clear_pending:
            self._clear()
        if out["output_type"] == "stream" and self.outputs:
            last = self.outputs[-1]
            if last["output_type"] == "stream" and last["name"] == out["name"]:
                last["text"] += out["text"]
                return out
        if display_id:
            self._display_index.setdefault(display_id, []).append(len(self.outputs))
        self.outputs.append(out)
        return out

    def _clear(self) -> None:
        self.outputs.clear()
        self._display_index.clear()
        self._clear_pending = False

    def text(self, stream_name: str) -> str:
        """All text of one stream (stdout or stderr) still shown."""
        return "".join(o["text"] for o in self.outputs if o["output_type"] == "stream" and o["name"] == stream_name)


def _display_id(content: Mapping[str, Any]) -> str | None:
    transient = content.get("transient") or {}
    did = transient.get("display_id") if isinstance(transient, Mapping) else None
    return did if isinstance(did, str) else None
