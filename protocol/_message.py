# Message values: Header, Message, Request, and the Session that mints new messages.
# Rules kept here: values are frozen; a new msg_id is "<session>_<pid>_<counter>" as
# jupyter_client >= 7 makes it; dates are aware UTC datetimes; JSON encoding and
# decoding of the four dict parts lives in one place (`dumps`/`loads`).
from __future__ import annotations

import base64
import datetime as _dt
import getpass
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._errors import MessageFormatError

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

PROTOCOL_VERSION = "5.4"
"""The version jupervisor writes into headers (the same as jupyter_client 8)."""

UTC = _dt.timezone.utc
_EMPTY: Mapping[str, Any] = {}


def utcnow() -> _dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return _dt.datetime.now(UTC)


def format_date(value: _dt.datetime) -> str:
    """Render a datetime as ISO-8601 with a ``Z`` suffix for UTC.

    Example:
        >>> format_date(_dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
        '2024-01-02T03:04:05.000006Z'
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    else:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_date(value: object, part: str = "header") -> _dt.datetime:
    """Parse an ISO-8601 date from a header; naive dates are read as UTC.

    Raises:
        MessageFormatError: the value is not an ISO-8601 string.
    """
    if isinstance(value, _dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = _dt.datetime.fromisoformat(value)
        except ValueError:
            raise MessageFormatError(part=part, reason=f"date {value!r} is not ISO-8601") from None
    else:
        raise MessageFormatError(part=part, reason=f"date must be a string, got {type(value).__name__}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _json_default(obj: object) -> object:
    if isinstance(obj, _dt.datetime):
        return format_date(obj)
    if isinstance(obj, _dt.date):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _dumps_std(obj: object) -> bytes:
    # strict UTF-8: a lone surrogate raises UnicodeEncodeError (a ValueError) here rather than
    # going out as bytes no peer (this module included) accepts as UTF-8 JSON
    return json.dumps(
        obj, default=_json_default, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")


def _loads_std(data: bytes) -> Any:
    return json.loads(data if isinstance(data, (bytes, bytearray, str)) else bytes(data))


if _orjson is not None:
    _ORJSON_OPTS = _orjson.OPT_UTC_Z | _orjson.OPT_NAIVE_UTC | _orjson.OPT_NON_STR_KEYS

    def dumps(obj: object) -> bytes:
        """Serialize one message part to UTF-8 JSON bytes (orjson, as jupyter_client uses
        when it is installed; the stdlib codec for anything orjson refuses)."""
        try:
            return _orjson.dumps(obj, default=_json_default, option=_ORJSON_OPTS)
        except TypeError:  # integers beyond 64 bits, or a default() failure: let the stdlib decide
            return _dumps_std(obj)

    _json_loads = _orjson.loads
else:  # pragma: no cover - orjson is a dependency, but the stdlib path must stay correct
    dumps = _dumps_std
    _json_loads = _loads_std


def loads(data: bytes, part: str) -> dict[str, Any]:
    """Parse one message part, which must be a JSON object.

    Raises:
        MessageFormatError: not UTF-8, not JSON, too deep, or not an object.
    """
    try:
        value = _json_loads(data)
    except (ValueError, RecursionError) as exc:
        raise MessageFormatError(part=part, reason=f"not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise MessageFormatError(part=part, reason=f"expected a JSON object, got {type(value).__name__}")
    return value


_PART_NAMES = ("header", "parent_header", "metadata", "content")

if _orjson is not None:
    _odumps = _orjson.dumps

    def _dumps_parts(header: object, parent: object, metadata: object, content: object) -> list[bytes]:
        try:
            return [
                _odumps(header, default=_json_default, option=_ORJSON_OPTS),
                _odumps(parent, default=_json_default, option=_ORJSON_OPTS),
                _odumps(metadata, default=_json_default, option=_ORJSON_OPTS),
                _odumps(content, default=_json_default, option=_ORJSON_OPTS),
            ]
        except TypeError:
            return [dumps(header), dumps(parent), dumps(metadata), dumps(content)]

else:  # pragma: no cover

    def _dumps_parts(header: object, parent: object, metadata: object, content: object) -> list[bytes]:
        return [dumps(header), dumps(parent), dumps(metadata), dumps(content)]


def _loads_parts(parts: Sequence[bytes]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Parse the four JSON parts at once; on any failure, name the first bad part.

    Raises:
        MessageFormatError: a part is not UTF-8 JSON, too deep, or not an object.
    """
    try:
        h, p, m, c = _json_loads(parts[0]), _json_loads(parts[1]), _json_loads(parts[2]), _json_loads(parts[3])
    except (ValueError, RecursionError):
        h = p = m = c = None
    if type(h) is dict and type(p) is dict and type(m) is dict and type(c) is dict:
        return h, p, m, c
    for data, name in zip(parts, _PART_NAMES):
        loads(data, name)
    raise AssertionError("unreachable: one part failed to parse")  # pragma: no cover


def new_session_id() -> str:
    """Return a session id shaped like jupyter_client's (``xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx``)."""
    h = uuid.uuid4().hex
    return f"{h[:8]}-{h[8:]}"


def _default_username() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError without a passwd entry
        return "username"


@attrs.frozen(kw_only=True)
class Header:
    """A message header.

    Attributes:
        msg_id: Unique id of the message.
        msg_type: The message type, such as ``execute_request``.
        username: The sender's user name.
        session: The sender's session id.
        date: When the message was made (aware, UTC).
        version: The protocol version, such as ``"5.4"``.
        extra: Any other header fields (``subshell_id`` ...), kept for round trips.
    """

    msg_id: str
    msg_type: str
    username: str = ""
    session: str = ""
    date: _dt.datetime = attrs.field(factory=utcnow)
    version: str = PROTOCOL_VERSION
    extra: Mapping[str, Any] = _EMPTY

    def to_dict(self) -> dict[str, Any]:
        """The header as the JSON object the wire carries (date left as a datetime)."""
        d: dict[str, Any] = {
            "msg_id": self.msg_id,
            "msg_type": self.msg_type,
            "username": self.username,
            "session": self.session,
            "date": self.date,
            "version": self.version,
        }
        if self.extra:
            d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], part: str = "header") -> Header:
        """Build a header from a decoded JSON object.

        Missing ``date`` is filled with now; missing ``version`` is read as ``"4.0"``
        (what old kernels send), missing or null ``username``/``session`` as ``""``.
        Keys beyond the six standard ones are kept in ``extra``.

        Raises:
            MessageFormatError: msg_id or msg_type missing or not strings, another
                standard field not a string, or a date that is not ISO-8601.

        Example:
            >>> Header.from_dict({"msg_id": "a", "msg_type": "status", "version": "5.3"}).version
            '5.3'
        """
        get = d.get
        msg_id = get("msg_id")
        msg_type = get("msg_type")
        if type(msg_id) is not str or type(msg_type) is not str:
            if not isinstance(msg_id, str) or not isinstance(msg_type, str):
                raise MessageFormatError(part=part, reason="msg_id and msg_type must be strings")
            msg_id, msg_type = str(msg_id), str(msg_type)
        username = get("username")
        session = get("session")
        version = get("version", "4.0")
        if type(username) is not str or type(session) is not str or type(version) is not str:
            username, session, version = _text(username, "username", part), _text(session, "session", part), _text(
                version, "version", part, "4.0"
            )
        raw_date = get("date")
        if type(raw_date) is str:
            try:
                date = _fromisoformat(raw_date)
            except ValueError:
                raise MessageFormatError(part=part, reason=f"date {raw_date[:64]!r} is not ISO-8601") from None
            if date.tzinfo is None:
                date = date.replace(tzinfo=UTC)
        elif raw_date is None:
            date = utcnow()
        else:
            date = parse_date(raw_date, part)
        extra = _EMPTY if d.keys() <= _HEADER_KEYS else {k: v for k, v in d.items() if k not in _HEADER_KEYS}
        return _make_header(msg_id, msg_type, username, session, date, version, extra)


_HEADER_KEYS = frozenset({"msg_id", "msg_type", "username", "session", "date", "version"})
_fromisoformat = _dt.datetime.fromisoformat


def _text(value: object, name: str, part: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise MessageFormatError(part=part, reason=f"{name} must be a string, got {type(value).__name__}")
    return str(value)


@attrs.frozen(kw_only=True)
class Message:
    """One Jupyter message: header, parent header, metadata, content and buffers.

    ``parent_header`` is kept as the JSON object received (``{}`` when there is
    no parent) so that relaying a message never rewrites it.
    """

    header: Header
    parent_header: Mapping[str, Any] = _EMPTY
    metadata: Mapping[str, Any] = _EMPTY
    content: Mapping[str, Any] = _EMPTY
    buffers: tuple[bytes, ...] = ()

    @property
    def msg_id(self) -> str:
        return self.header.msg_id

    @property
    def msg_type(self) -> str:
        return self.header.msg_type

    @property
    def parent_id(self) -> str | None:
        """The msg_id of the request this message answers, if any."""
        pid = self.parent_header.get("msg_id")
        return pid if isinstance(pid, str) else None

    def to_dict(self) -> dict[str, Any]:
        """The message as the dict jupyter_client users know (header dates as datetimes)."""
        header = self.header.to_dict()
        parent = dict(self.parent_header)
        if isinstance(parent.get("date"), str):
            try:
                parent["date"] = parse_date(parent["date"], "parent_header")
            except MessageFormatError:
                pass
        return {
            "header": header,
            "msg_id": self.header.msg_id,
            "msg_type": self.header.msg_type,
            "parent_header": parent,
            "metadata": dict(self.metadata),
            "content": dict(self.content),
            "buffers": list(self.buffers),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Message:
        """Build a message from a jupyter_client-shaped dict.

        Raises:
            MessageFormatError: the header or another part has the wrong shape.
        """
        header = d.get("header")
        if not isinstance(header, Mapping):
            raise MessageFormatError(part="header", reason="expected a mapping")
        parts = {}
        for name in ("parent_header", "metadata", "content"):
            value = d.get(name) or {}
            if not isinstance(value, Mapping):
                raise MessageFormatError(part=name, reason="expected a mapping")
            parts[name] = value
        parent = dict(parts["parent_header"])
        if isinstance(parent.get("date"), _dt.datetime):
            parent["date"] = format_date(parent["date"])
        return cls(
            header=Header.from_dict(header),
            parent_header=parent,
            metadata=parts["metadata"],
            content=parts["content"],
            buffers=tuple(bytes(b) for b in d.get("buffers") or ()),
        )


def _unchecked_constructor(cls: type, names: tuple[str, ...]) -> Any:
    """A positional constructor for a frozen slotted attrs class that stores the fields
    through the slot descriptors, skipping attrs' keyword ``__init__`` (about half its cost).

    Only for hot paths whose arguments are already known to be well formed. Raises at
    import time if ``names`` no longer lists the class's fields in order.
    """
    if tuple(f.name for f in attrs.fields(cls)) != names:
        raise TypeError(f"{cls.__name__} fields changed: update its unchecked constructor")
    setters = tuple(cls.__dict__[n].__set__ for n in names)
    new = object.__new__
    if len(setters) == 3:
        a0, a1, a2 = setters

        def make3(a: Any, b: Any, c: Any) -> Any:
            obj = new(cls)
            a0(obj, a), a1(obj, b), a2(obj, c)
            return obj

        return make3
    if len(setters) == 5:
        b0, b1, b2, b3, b4 = setters

        def make5(a: Any, b: Any, c: Any, d: Any, e: Any) -> Any:
            obj = new(cls)
            b0(obj, a), b1(obj, b), b2(obj, c), b3(obj, d), b4(obj, e)
            return obj

        return make5
    if len(setters) == 7:
        c0, c1, c2, c3, c4, c5, c6 = setters

        def make7(a: Any, b: Any, c: Any, d: Any, e: Any, f: Any, g: Any) -> Any:
            obj = new(cls)
            c0(obj, a), c1(obj, b), c2(obj, c), c3(obj, d), c4(obj, e), c5(obj, f), c6(obj, g)
            return obj

        return make7
    raise TypeError(f"no unchecked constructor for {len(setters)} fields")


_make_header = _unchecked_constructor(Header, ("msg_id", "msg_type", "username", "session", "date", "version", "extra"))
_make_message = _unchecked_constructor(Message, ("header", "parent_header", "metadata", "content", "buffers"))


@attrs.frozen
class Request:
    """A request a client sends, before it gets a header.

    Attributes:
        channel: ``shell``, ``control`` or ``stdin``.
        msg_type: The message type.
        content: The content dict.
    """

    channel: str
    msg_type: str
    content: Mapping[str, Any]


_make_request = _unchecked_constructor(Request, ("channel", "msg_type", "content"))


@attrs.define
class Session:
    """Mints messages for one client or kernel session.

    Holds the session id, the user name and the counter behind msg_ids; it does
    no I/O.

    Example:
        >>> s = Session(session_id="abc", pid=7)
        >>> s.message("kernel_info_request").msg_id
        'abc_7_0'
    """

    session_id: str = attrs.field(factory=new_session_id)
    username: str = attrs.field(factory=_default_username)
    pid: int = attrs.field(factory=os.getpid)
    _counter: int = attrs.field(default=0, init=False)

    def new_msg_id(self) -> str:
        """Return the next msg_id of this session."""
        n = self._counter
        self._counter = n + 1
        return f"{self.session_id}_{self.pid}_{n}"

    def header(self, msg_type: str) -> Header:
        """Return a fresh header of this session."""
        n = self._counter
        self._counter = n + 1
        return _make_header(
            f"{self.session_id}_{self.pid}_{n}",
            msg_type,
            self.username,
            self.session_id,
            _now(UTC),
            PROTOCOL_VERSION,
            _EMPTY,
        )

    def message(
        self,
        msg_type: str,
        content: Mapping[str, Any] | None = None,
        *,
        parent: Message | Header | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: Sequence[bytes] = (),
    ) -> Message:
        """Make a new message of this session.

        Args:
            msg_type: The message type.
            content: The content dict.
            parent: The message (or header) this one answers.
            metadata: The metadata dict.
            buffers: Raw binary buffers sent after the four parts.
        """
        if parent is None:
            parent_header: Mapping[str, Any] = {}
        else:
            if isinstance(parent, Message):
                parent_header = parent.header.to_dict()
            elif isinstance(parent, Header):
                parent_header = parent.to_dict()
            else:
                parent_header = dict(parent.get("header", parent))
            if isinstance(parent_header.get("date"), _dt.datetime):
                parent_header["date"] = format_date(parent_header["date"])
        return _make_message(
            self.header(msg_type),
            parent_header,
            {} if metadata is None else metadata,
            {} if content is None else content,
            buffers if type(buffers) is tuple else tuple(buffers),
        )

    def request(self, req: Request, *, metadata: Mapping[str, Any] | None = None) -> Message:
        """Make the message for a built request (see the builders in ``_requests``)."""
        return self.message(req.msg_type, req.content, metadata=metadata)


_now = _dt.datetime.now
