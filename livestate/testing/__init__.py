"""Test helpers shipped with livestate: hypothesis strategies (``livestate.testing.strategies``, needs the
``hypothesis`` package); with the ``websockets`` extra, an embedded fake Live server
(``livestate.testing.server``) and the demo; TLS contexts for it (``livestate.testing.tls``, needs
``cryptography``); and a synchronous reference transport (``livestate.testing.reference``)."""
