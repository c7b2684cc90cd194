"""Integrations with training libraries; each imports its library only when it is imported."""
