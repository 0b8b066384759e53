# HMAC signing of the four message parts and the bounded replay window.
# Rules kept here: schemes are "hmac-<hashlib name>"; an empty key means unsigned;
# comparison uses hmac.compare_digest; a digest is recorded only after it verified.
from __future__ import annotations

import collections
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import attrs

from ._errors import ReplayError, SignatureError

_compare_digest = hmac.compare_digest


def _digestmod(scheme: str) -> str:
    prefix, _, name = scheme.partition("-")
    if prefix != "hmac" or not name:
        raise ValueError(f"signature_scheme must be 'hmac-<hash>', got {scheme!r}")
    if name not in hashlib.algorithms_available:
        raise ValueError(f"signature_scheme {scheme!r}: unknown hash {name!r}")
    return name


@attrs.frozen(repr=False)
class Signer:
    """Signs and verifies messages with one key and scheme.

    Args:
        key: The shared key; ``b""`` disables signing.
        scheme: ``hmac-sha256`` (default) or another ``hmac-<hashlib name>``.

    Example:
        >>> s = Signer(b"secret")
        >>> s.verify(s.sign([b"{}", b"{}", b"{}", b"{}"]), [b"{}", b"{}", b"{}", b"{}"])
    """

    key: bytes = attrs.field(converter=lambda k: k.encode() if isinstance(k, str) else bytes(k))
    scheme: str = "hmac-sha256"
    _proto: Any = attrs.field(init=False, default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        digest = _digestmod(self.scheme)
        if self.key:
            # a keyed HMAC state copied per message: the key schedule is paid once. CPython's
            # OpenSSL-backed _hashlib object copies about 3x faster than hmac.HMAC's wrapper.
            try:
                import _hashlib

                proto = _hashlib.hmac_new(self.key, digestmod=digest)
            except (ImportError, AttributeError, ValueError):
                proto = hmac.new(self.key, digestmod=digest)
            object.__setattr__(self, "_proto", proto)

    def __repr__(self) -> str:  # never show the key
        return f"Signer(scheme={self.scheme!r}, signed={bool(self.key)})"

    @property
    def enabled(self) -> bool:
        return bool(self.key)

    def sign(self, parts: Sequence[bytes]) -> bytes:
        """Return the hex signature of the four serialized parts (``b""`` when unsigned).

        Example:
            >>> Signer(b"").sign([b"{}", b"{}", b"{}", b"{}"])
            b''
        """
        proto = self._proto
        if proto is None:
            return b""
        h = proto.copy()
        h.update(b"".join(parts))  # the same digest as updating part by part
        return h.hexdigest().encode("ascii")

    def verify(self, signature: bytes, parts: Sequence[bytes]) -> None:
        """Check a signature (any bytes-like object) in constant time.

        Raises:
            SignatureError: unsigned while a key is set, or a mismatch.
        """
        proto = self._proto
        if proto is None:
            return
        if not signature:
            raise SignatureError(reason="message is unsigned but a key is set")
        h = proto.copy()
        h.update(b"".join(parts))
        if not _compare_digest(signature, h.hexdigest().encode("ascii")):
            raise SignatureError(reason="HMAC does not match")


@attrs.define
class ReplayWindow:
    """Remembers the last ``size`` verified signatures and refuses repeats.

    Unlike jupyter_client, which records a digest before checking it (so a forged
    message can poison the history), the caller records only after verifying.

    Example:
        >>> w = ReplayWindow(size=2)
        >>> w.record(b"a"); w.record(b"b"); w.record(b"c"); w.record(b"a")
    """

    size: int = 65536
    _seen: set[bytes] = attrs.field(factory=set, init=False)
    _order: collections.deque[bytes] = attrs.field(factory=collections.deque, init=False)

    def record(self, signature: bytes) -> None:
        """Record a verified signature.

        Raises:
            ReplayError: the signature was seen within the window.
        """
        if not signature or self.size <= 0:
            return
        if signature in self._seen:
            raise ReplayError()
        self._seen.add(signature)
        self._order.append(signature)
        if len(self._order) > self.size:
            self._seen.discard(self._order.popleft())

    def __len__(self) -> int:
        return len(self._order)
