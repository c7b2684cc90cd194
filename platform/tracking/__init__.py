"""Runs and what they produce: status, scores, metric curves, artifacts, jobs, provenance."""
