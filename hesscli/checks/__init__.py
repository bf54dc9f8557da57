"""``hesscli check``: specs of curvature expectations (``spec``), the keys ``expect:``
accepts (``registry``) and their evaluation (``run``) through the Python API and the
one expectation engine (:mod:`hesscli.expect`)."""
