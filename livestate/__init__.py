"""livestate: keep Gemini Live API sessions alive.

A pure, I/O-free, event-sourced state machine: parsed server messages and transport facts go in as events,
commands come out for a transport to carry out.
"""

from livestate import wire
from livestate.errors import LiveStateError, ProtocolError, UsageError

__version__ = "0.1.0"

__all__ = ["LiveStateError", "ProtocolError", "UsageError", "__version__", "wire"]
