"""Curvature backends: value, gradient, Hessian-vector products, dense Hessians.

All backends share the small interface of :class:`~hesscli.curvature.base.Curvature`
and are interchangeable: exact (JAX autodiff), finite differences, matrix-free.
"""
