# Connection info: the value a connection file holds (transport, ip, five ports, key,
# signature scheme, kernel name), to and from the JSON Jupyter writes. Unknown keys
# (jupyter_session, curve keys, ...) survive a round trip in `extra`. No file I/O here.
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import ConnectionInfoError
from ._signing import Signer, _digestmod

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
_KNOWN = frozenset({"transport", "ip", "key", "signature_scheme", "kernel_name", *(f"{c}_port" for c in CHANNELS)})


@attrs.frozen(kw_only=True, repr=False)
class ConnectionInfo:
    """Where a kernel listens and how its messages are signed.

    Example:
        >>> info = ConnectionInfo(ip="127.0.0.1", shell_port=1, iopub_port=2, stdin_port=3,
        ...                       control_port=4, hb_port=5, key=b"k")
        >>> info.endpoint("hb")
        'tcp://127.0.0.1:5'
    """

    transport: str = "tcp"
    ip: str = "127.0.0.1"
    shell_port: int = 0
    iopub_port: int = 0
    stdin_port: int = 0
    control_port: int = 0
    hb_port: int = 0
    key: bytes = b""
    signature_scheme: str = "hmac-sha256"
    kernel_name: str = ""
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def __repr__(self) -> str:  # never show the key
        ports = ", ".join(f"{c}={self.port(c)}" for c in CHANNELS)
        return f"ConnectionInfo({self.transport}://{self.ip} {ports}, kernel_name={self.kernel_name!r})"

    def port(self, channel: str) -> int:
        """The port of one channel (``shell``, ``iopub``, ``stdin``, ``control``, ``hb``)."""
        return int(getattr(self, f"{channel}_port"))

    def endpoint(self, channel: str) -> str:
        """The ZeroMQ endpoint a client connects to for ``channel``."""
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{self.port(channel)}"
        ip = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"tcp://{ip}:{self.port(channel)}"

    def signer(self) -> Signer:
        """A Signer for this kernel's key and scheme."""
        return Signer(self.key, self.signature_scheme)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of a Jupyter connection file (key as text)."""
        d: dict[str, Any] = dict(self.extra)
        d.update({f"{c}_port": self.port(c) for c in CHANNELS})
        d.update(
            ip=self.ip,
            key=self.key.decode("utf-8", "surrogateescape"),
            transport=self.transport,
            signature_scheme=self.signature_scheme,
            kernel_name=self.kernel_name,
        )
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<connection info>") -> ConnectionInfo:
        """Read connection info from a connection file's JSON object.

        Raises:
            ConnectionInfoError: a port is missing or not an int in 0..65535, or another
                field has the wrong type; the message names the source and key.
        """
        if not isinstance(d, Mapping):
            raise ConnectionInfoError(source=source, field="", reason=f"expected a JSON object, got {type(d).__name__}")

        def text(key: str, default: str) -> str:
            v = d.get(key, default)
            if v is None:
                return default
            if not isinstance(v, str):
                raise ConnectionInfoError(source=source, field=key, reason=f"expected a string, got {v!r}")
            return v

        ports = {}
        for c in CHANNELS:
            v = d.get(f"{c}_port")
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
                raise ConnectionInfoError(source=source, field=f"{c}_port", reason=f"expected a port number, got {v!r}")
            ports[f"{c}_port"] = v
        transport = text("transport", "tcp")
        if transport not in ("tcp", "ipc"):
            raise ConnectionInfoError(source=source, field="transport", reason=f"expected 'tcp' or 'ipc', got {transport!r}")
        scheme = text("signature_scheme", "hmac-sha256")
        try:
            _digestmod(scheme)
        except ValueError as exc:
            raise ConnectionInfoError(source=source, field="signature_scheme", reason=str(exc)) from None
        return cls(
            transport=transport,
            ip=text("ip", "127.0.0.1") or "127.0.0.1",
            key=text("key", "").encode("utf-8", "surrogateescape"),
            signature_scheme=scheme,
            kernel_name=text("kernel_name", ""),
            extra={k: v for k, v in d.items() if k not in _KNOWN},
            **ports,
        )

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "<connection info>") -> ConnectionInfo:
        """Parse a connection file's text.

        Raises:
            ConnectionInfoError: not JSON, or see :meth:`from_dict`.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConnectionInfoError(source=source, field="", reason=f"not valid JSON: {exc}") from None
        return cls.from_dict(data, source)
