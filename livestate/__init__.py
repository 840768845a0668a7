"""livestate: keep Gemini Live API sessions alive.

A pure, I/O-free, event-sourced state machine: parsed server messages and transport facts go in as events,
commands come out for a transport to carry out.
"""

from livestate import commands, events, notices, wire
from livestate.buffer import ReplayBuffer
from livestate.errors import LiveStateError, ProtocolError, UsageError
from livestate.machine import SessionState
from livestate.policy import Backend, CloseAction, CloseRule, SessionConfig
from livestate.session import Session, SessionSnapshot

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "CloseAction",
    "CloseRule",
    "LiveStateError",
    "ProtocolError",
    "ReplayBuffer",
    "Session",
    "SessionConfig",
    "SessionSnapshot",
    "SessionState",
    "UsageError",
    "__version__",
    "commands",
    "events",
    "notices",
    "wire",
]
