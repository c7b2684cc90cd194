"""Evaluation-only runners (decoders through lm-eval)."""
