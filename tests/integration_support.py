"""Shared by the framework integration tests: TLS clients, fault plans, time-scaled options, ledger checks."""

from __future__ import annotations

import ssl
from typing import Any

from google import genai
from google.genai import types

from livestate.testing.server import FakeLiveServer, Fault, FaultPlan

#: The only SessionConfig fields the integration tests change: time scaling.
FAST: dict[str, Any] = {
    "backoff_initial": 0.02,
    "backoff_max": 0.2,
    "goaway_margin": 0.05,
    "guard_window": 0.2,
    "setup_timeout": 3.0,
}


#: Faults around message ``m{trigger}``: goAway mid-utterance, an abrupt drop, both, a rejected resume.
def plans(trigger: str) -> dict[str, FaultPlan]:
    """The four fault plans of the integration tests, each firing right after client text ``trigger``."""
    return {
        "goaway": FaultPlan(faults=(Fault(kind="goaway", on_text=trigger),), go_away_time_left=0.3),
        "drop": FaultPlan(faults=(Fault(kind="drop", on_text=trigger),)),
        "both": FaultPlan(
            faults=(
                Fault(kind="goaway", on_text=trigger),
                Fault(kind="drop", connection=2, after_messages=3),
            ),
            go_away_time_left=0.3,
        ),
        "rejected": FaultPlan(
            faults=(Fault(kind="reject_next_resume", on_text=trigger), Fault(kind="drop", on_text=trigger))
        ),
    }


def http_options(server: FakeLiveServer, client_ssl: ssl.SSLContext) -> types.HttpOptions:
    """Point google-genai at the fake server over TLS (an API key makes the SDK use wss://)."""
    return types.HttpOptions(
        base_url=server.url.replace("wss://", "https://"), async_client_args={"ssl": client_ssl}
    )


def sdk_client(server: FakeLiveServer, client_ssl: ssl.SSLContext, *, vertex: bool) -> genai.Client:
    """A real google-genai client for the fake server (Vertex express mode with an API key when ``vertex``)."""
    options = http_options(server, client_ssl)
    if vertex:
        return genai.Client(vertexai=True, api_key="test-key", http_options=options)
    return genai.Client(api_key="test-key", http_options=options)


def everything(server: FakeLiveServer) -> list[str]:
    """Every tag any logical session of the server consumed, in order."""
    return [tag for session in server.sessions for tag in session.conversation]


def lost(server: FakeLiveServer, sent: list[str]) -> list[str]:
    """What the framework was given that no server conversation holds."""
    have = set(everything(server))
    return [tag for tag in sent if tag not in have]


def duplicated(server: FakeLiveServer, sent: list[str]) -> list[str]:
    """Tags the framework was given once that a single conversation holds more than once."""
    wanted = set(sent)
    extra = []
    for session in server.sessions:
        seen: set[str] = set()
        for tag in session.conversation:
            if tag in wanted and tag in seen:
                extra.append(tag)
            seen.add(tag)
    return extra


#: The fault kinds each plan must have produced on the server.
EXPECTED_FAULTS = {"goaway": {"goaway"}, "drop": {"drop"}, "both": {"goaway", "drop"}, "rejected": {"drop"}}


def assert_fired(server: FakeLiveServer, fault: str) -> None:
    """The plan's faults all happened (a test whose fault never fired proves nothing)."""
    kinds = {kind for _, kind in server.faults_done}
    assert EXPECTED_FAULTS[fault] <= kinds, (fault, server.faults_done)
    if fault == "rejected":
        assert server.rejected_resumes == 1


def most_copies(server: FakeLiveServer, sent: list[str]) -> int:
    """The most times one conversation holds any one tag the framework was given (handle-only replays may
    repeat a message once: what the guard window kept)."""
    wanted = set(sent)
    return max(
        (s.conversation.count(t) for s in server.sessions for t in set(s.conversation) & wanted), default=0
    )
