"""The Live API wire model: attrs classes for every message in both directions, and the codec."""

from livestate.wire import client as _client
from livestate.wire import content as _content
from livestate.wire import server as _server
from livestate.wire.client import *  # noqa: F403
from livestate.wire.client import __all__ as _client_all
from livestate.wire.codec import DEFAULT_MAX_FRAME_BYTES, WireMessage, decode, decode_client, encode
from livestate.wire.content import *  # noqa: F403
from livestate.wire.content import __all__ as _content_all
from livestate.wire.scalars import Duration, Int64, JsonObject, MessageIndex, compact_repr
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

# Wire messages have many optional fields; their reprs show only the ones present.
for _module in (_client, _content, _server):
    for _name in _module.__all__:
        _cls = getattr(_module, _name)
        if isinstance(_cls, type) and hasattr(_cls, "__attrs_attrs__"):
            _cls.__repr__ = compact_repr  # type: ignore[assignment,method-assign]
