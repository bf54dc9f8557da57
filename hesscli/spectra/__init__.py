"""Spectra from curvature: the one entry point and policy (:mod:`.policy`), the dense
vs matrix-free choice by memory (:mod:`.paths`), the dense eigen-solve, Lanczos and
ARPACK extremes, stochastic Lanczos quadrature and trace estimators. Numerics only:
nothing here prints.
"""
