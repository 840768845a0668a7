"""The voice-agent frameworks users already run, on top of livestate's drivers.

``genai_client`` is a stand-in for ``google.genai.Client`` whose live sessions are livestate sessions;
``pipecat`` and ``livekit`` plug it into those frameworks' Gemini Live services. Each needs its framework
installed (the ``pipecat`` and ``livekit`` extras); importing this package imports none of them.
"""
