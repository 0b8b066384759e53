"""The Jupyter wire protocol, sans-io: bytes and dicts in, frozen values out.

Nothing here does I/O or imports trio or zmq.
"""

from ._adapter import adapt_to_v4 as adapt_to_v4
from ._adapter import adapt_to_v5 as adapt_to_v5
from ._connection import CHANNELS as CHANNELS
from ._connection import ConnectionInfo as ConnectionInfo
from ._errors import ConnectionInfoError as ConnectionInfoError
from ._errors import FramingError as FramingError
from ._errors import IllegalTransition as IllegalTransition
from ._errors import KernelSpecError as KernelSpecError
from ._errors import MessageFormatError as MessageFormatError
from ._errors import ProtocolError as ProtocolError
from ._errors import ReplayError as ReplayError
from ._errors import SignatureError as SignatureError
from ._framing import DELIM as DELIM
from ._framing import Envelope as Envelope
from ._framing import decode as decode
from ._framing import encode as encode
from ._framing import serialize_parts as serialize_parts
from ._kernelspec import KernelSpec as KernelSpec
from ._lifecycle import TRANSITIONS as TRANSITIONS
from ._lifecycle import KernelState as KernelState
from ._lifecycle import LifecycleEvent as LifecycleEvent
from ._lifecycle import is_alive as is_alive
from ._lifecycle import next_state as next_state
from ._message import PROTOCOL_VERSION as PROTOCOL_VERSION
from ._message import Header as Header
from ._message import Message as Message
from ._message import Request as Request
from ._message import Session as Session
from ._message import dumps as dumps
from ._message import format_date as format_date
from ._message import loads as loads
from ._message import new_session_id as new_session_id
from ._message import parse_date as parse_date
from ._message import utcnow as utcnow
from ._requests import comm_info_request as comm_info_request
from ._requests import complete_request as complete_request
from ._requests import debug_request as debug_request
from ._requests import execute_request as execute_request
from ._requests import history_request as history_request
from ._requests import input_reply as input_reply
from ._requests import inspect_request as inspect_request
from ._requests import interrupt_request as interrupt_request
from ._requests import is_complete_request as is_complete_request
from ._requests import kernel_info_request as kernel_info_request
from ._requests import shutdown_request as shutdown_request
from ._signing import ReplayWindow as ReplayWindow
from ._signing import Signer as Signer
from ._websocket import V1_PROTOCOL as V1_PROTOCOL
from ._websocket import decode_json as decode_json
from ._websocket import decode_v1 as decode_v1
from ._websocket import encode_json as encode_json
from ._websocket import encode_v1 as encode_v1
