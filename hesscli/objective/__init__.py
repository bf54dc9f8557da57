"""Objective loading: files and built-ins, points and checkpoints, ``-p`` parameters,
the pytree layout that names flat indices, and the bound flat :class:`Objective`.

Nothing here imports JAX at import time (``hesscli problems`` and ``--help`` stay light).
"""
