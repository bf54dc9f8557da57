"""Analyses: pure functions from curvature to plain frozen dataclasses (no printing)."""
