"""Curvature backends: value, gradient, Hessian-vector products, dense Hessians.

Every backend implements :class:`~hesscli.curvature.base.Curvature` and declares
its capabilities there (compiled HVP, linearizable objective, finite-difference
statistics, parallel layout); :func:`hesscli.curvature.choose.curvature_for` is
the one place that picks one: exact (JAX autodiff), finite differences, or the
sharded exact backend over a device mesh.
"""
