"""The package's version, in a module of its own so that any layer can read it
without importing :mod:`hesscli` itself (whose lazy names reach the API)."""

__version__ = "0.1.0"
