"""Checks, threads, warnings, labels and shared docstrings used across layers."""
