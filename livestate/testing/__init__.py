"""Test helpers shipped with livestate: hypothesis strategies (``livestate.testing.strategies``, needs the
``hypothesis`` package) and, with the ``websockets`` extra, an embedded fake Live server."""
