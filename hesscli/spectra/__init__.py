"""Spectra from curvature: the dense eigen-solve, Lanczos and ARPACK extremes,
stochastic Lanczos quadrature and trace estimators, and the one dense vs
matrix-free path policy. Numerics only: nothing here prints.
"""
