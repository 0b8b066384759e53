# Structured log lines: a fixed dotted event name plus key=value fields, rendered by one
# helper. Callers never pass keys or tokens as fields.
from __future__ import annotations

import logging


def event(log: logging.Logger, name: str, /, level: int = logging.INFO, **fields: object) -> None:
    """Log `event=<name> k=v ...`; the fields also ride on the record as `fields`.

    Example:
        >>> event(logging.getLogger("x"), "kernel.ready", kernel_id="k1")
    """
    if not log.isEnabledFor(level):
        return
    text = " ".join(f"{k}={v!r}" if isinstance(v, str) and (" " in v or not v) else f"{k}={v}" for k, v in fields.items())
    log.log(level, "event=%s %s", name, text, extra={"event": name, "fields": fields})
