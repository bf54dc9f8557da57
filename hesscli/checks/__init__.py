"""``hesscli check``: specs of curvature expectations (``spec``), their kinds
(``registry``) and their evaluation (``run``) with the same analyses the commands use."""
