"""The Live API wire model: attrs classes for every message in both directions, and the codec."""

from livestate.wire.client import *  # noqa: F403
from livestate.wire.client import __all__ as _client_all
from livestate.wire.codec import DEFAULT_MAX_FRAME_BYTES, WireMessage, decode, decode_client, encode
from livestate.wire.content import *  # noqa: F403
from livestate.wire.content import __all__ as _content_all
from livestate.wire.scalars import Duration, Int64, JsonObject, MessageIndex
from livestate.wire.server import *  # noqa: F403
from livestate.wire.server import __all__ as _server_all

__all__ = [
    *_client_all,
    *_content_all,
    *_server_all,
    "DEFAULT_MAX_FRAME_BYTES",
    "Duration",
    "Int64",
    "JsonObject",
    "MessageIndex",
    "WireMessage",
    "decode",
    "decode_client",
    "encode",
]
