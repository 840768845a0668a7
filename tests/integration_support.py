"""Shared by the framework integration tests: TLS clients, fault plans, time-scaled options, ledger checks."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
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


# --- Vertex AI service-account credentials, offline --------------------------------------------------------

#: The audience google-auth's service-account assertions carry.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
#: The access token the loopback token endpoint grants.
VERTEX_TOKEN = "offline-vertex-token"


class TokenEndpoint:
    """A loopback OAuth token endpoint (plain HTTP on 127.0.0.1, in a thread: google-auth refreshes
    synchronously, from inside the event loop) that grants :data:`VERTEX_TOKEN` for an hour to any signed
    JWT-bearer assertion that verifies with the service account's public key. ``grants`` lists the claims of
    each assertion it accepted."""

    def __init__(self, public_pem: bytes) -> None:
        self.public_pem = public_pem
        self.grants: list[dict[str, Any]] = []
        self.refused: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                from google.auth import jwt

                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                try:
                    # google-auth signs for Google's token endpoint whatever the token_uri
                    claims = jwt.decode(
                        form["assertion"][0], certs=endpoint.public_pem, audience=GOOGLE_TOKEN_URI
                    )
                except Exception as exc:  # a bad assertion is refused, as Google's endpoint would
                    endpoint.refused.append(repr(exc))
                    self._reply(400, {"error": "invalid_grant"})
                    return
                endpoint.grants.append(claims)
                self._reply(200, {"access_token": VERTEX_TOKEN, "expires_in": 3600, "token_type": "Bearer"})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"

    def __enter__(self) -> TokenEndpoint:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


@contextmanager
def vertex_service_account() -> Iterator[tuple[str, TokenEndpoint]]:
    """``(service-account JSON, its token endpoint)``: a throwaway RSA key whose ``token_uri`` is a loopback
    :class:`TokenEndpoint`, so the real google-auth refresh (what pipecat's Vertex service does on
    construction) signs an assertion and fetches a token without leaving the machine."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with TokenEndpoint(public_pem) as endpoint:
        info = {
            "type": "service_account",
            "project_id": "test",
            "private_key_id": "offline-key",
            "private_key": private_pem.decode(),
            "client_email": "livestate-test@test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": endpoint.uri,
        }
        yield json.dumps(info), endpoint
