"""Encoder fine-tuning: task encoding, models, parameter-efficient methods, training loops.

Everything here imports torch/transformers; only `runners.methods.*` run functions import
it, never a module the web side loads.
"""
