"""Reproducible benchmarks: ``python -m bench`` (or ``scripts/dev bench``)."""
