"""Rendering: Rich tables for people, JSON for machines. Reads results, computes nothing."""
