"""Transports that carry out a Session's commands: ``websockets`` (asyncio) and ``genai`` (the official
google-genai SDK), both on the shared ``executor``; ``redact`` keeps secrets out of their logs."""
