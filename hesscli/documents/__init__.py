"""The JSON documents: each result as the dict its command prints with ``--format json``.

One module per document (``hesscli.<name>/1`` schemas in :mod:`hesscli.schemas`).
Pure functions from frozen results to plain data; no Rich, no printing, so the
Python API (:mod:`hesscli.api`) and the CLI build the same document.
"""
