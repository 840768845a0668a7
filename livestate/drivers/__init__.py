"""Transports that carry out a Session's commands: ``websockets`` (asyncio) and, later, google-genai."""
