"""``hesscli check``: specs of curvature expectations (``spec``), the keys ``expect:``
accepts (``registry``), their evaluation (``run``) with the API's functions and the
one expectation engine (:mod:`hesscli.expect`), and what a check found with its
document (``report``)."""
