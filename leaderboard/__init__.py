"""Benchmark definitions, metrics, official suite scores and social-choice ranking.

Pure Python with numpy/scipy: this package imports neither Django nor torch, so the
platform, the runners and researchers' own scripts share one definition of each.
"""
