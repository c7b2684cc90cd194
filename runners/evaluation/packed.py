"""Packed log-likelihood scoring for lm-eval (Prepacking, Zhao et al. 2024).

lm-eval's HFLM scores each (context, continuation) request as its own row of a padded
batch and projects every position onto the vocabulary. `PackedHFLM` instead:

* gives each distinct model input one forward pass (requests whose input is the same,
  e.g. one-token answers to one prompt, share it, as lm-eval's logits cache does);
* bin-packs the inputs, longest first, into rows as long as the longest input, and runs
  several rows per forward pass; inside a row each sequence sees only itself through a
  block-diagonal causal attention mask, with position ids restarting at 0, so every
  token gets the logits it would get alone (to floating-point tolerance);
* projects onto the vocabulary only the positions that score a continuation token
  (transformers' boolean `logits_to_keep`), not every context position.

Scores equal the unpacked path's to floating-point tolerance; the first call checks
that on a few requests against lm-eval's own implementation and falls back to it for
good, with a warning, if a model does not honour the mask or position ids.
Everything else (generation, rolling log-likelihoods of seq2seq models) is HFLM's.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from lm_eval.models.huggingface import HFLM  # type: ignore[import-untyped]

from runners.training.modeling import attention_kernels

logger = logging.getLogger(__name__)

Request = tuple[Any, list[int], list[int]]  # (cache key, context tokens, continuation tokens)

# Requests re-scored the unpacked way on the first call, to check the packed scores.
VERIFY_REQUESTS = 4
# Row length floor: short prompts (COPA's ~25 tokens) share rows of this many tokens;
# on SmolLM2 (CPU) 128 beat the longest prompt alone, 256 and 512.
PACK_TOKENS = 128


@dataclass(frozen=True)
class PackedRow:
    """Sequences laid end to end: (input index, start offset) pairs and the used length."""

    members: tuple[tuple[int, int], ...]
    length: int


def pack_rows(lengths: Sequence[int], capacity: int) -> list[PackedRow]:
    """First-fit decreasing: each input, longest first, goes into the first row it fits."""
    if any(n > capacity for n in lengths):
        raise ValueError(f"an input is longer than the row capacity {capacity}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    members: list[list[tuple[int, int]]] = []
    used: list[int] = []
    for i in order:
        n = lengths[i]
        for r, filled in enumerate(used):
            if filled + n <= capacity:
                members[r].append((i, filled))
                used[r] = filled + n
                break
        else:
            members.append([(i, 0)])
            used.append(n)
    return [PackedRow(members=tuple(m), length=u) for m, u in zip(members, used, strict=True)]


def packed_inputs(
    rows: Sequence[PackedRow],
    inputs: Sequence[Sequence[int]],
    *,
    pad_token_id: int,
    mask_dtype: torch.dtype,
    device: torch.device | str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input_ids and position_ids (batch, L) and the additive attention mask
    (batch, 1, L, L): a token attends to the earlier tokens of its own sequence only.

    Padding at the end of a row forms one more block of its own, so that no row of the
    mask is empty (its outputs are never read).
    """
    width = max(row.length for row in rows)
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    segments = torch.full((len(rows), width), -1, dtype=torch.long)
    for b, row in enumerate(rows):
        for segment, (i, start) in enumerate(row.members):
            n = len(inputs[i])
            ids[b, start : start + n] = torch.tensor(inputs[i], dtype=torch.long)
            positions[b, start : start + n] = torch.arange(n)
            segments[b, start : start + n] = segment
        positions[b, row.length :] = torch.arange(width - row.length)
    same = segments[:, :, None] == segments[:, None, :]
    index = torch.arange(width)
    causal = index[None, :] <= index[:, None]
    allowed = (same & causal)[:, None, :, :]
    mask = torch.zeros(allowed.shape, dtype=mask_dtype)
    mask.masked_fill_(~allowed, torch.finfo(mask_dtype).min)
    return ids.to(device), positions.to(device), mask.to(device)


class PackedHFLM(HFLM):  # type: ignore[misc]
    """HFLM whose log-likelihood requests run packed (see the module docstring).

    `batch_size` counts packed rows per forward pass; a row holds `pack_tokens` tokens,
    or the longest input of the call where that is longer.
    """

    def __init__(self, *args: Any, pack_tokens: int = PACK_TOKENS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pack_tokens = pack_tokens
        self.packing = True
        self.verified = False
        self.forward_passes = 0
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def _loglikelihood_tokens(
        self,
        requests: list[Request],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[tuple[float, bool]]:
        if self.backend != "causal" or not self.packing or not requests:
            return list(
                super()._loglikelihood_tokens(
                    requests, disable_tqdm=disable_tqdm, override_bs=override_bs
                )
            )
        results, inside = self._packed(requests)
        if not self.verified:
            self.verified = True
            # Check requests that do not open their row: there a broken mask would show.
            picked = (inside or list(range(len(requests))))[:VERIFY_REQUESTS]
            reference = super()._loglikelihood_tokens(
                [requests[k] for k in picked], disable_tqdm=True
            )
            if not _agree([results[k] for k in picked], reference, self.model.dtype):
                logger.warning(
                    "packed log-likelihoods differ from the unpacked ones for %s; "
                    "scoring unpacked from now on",
                    type(self.model).__name__,
                )
                self.packing = False
                return list(super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm))
        for (cache_key, _, _), answer in zip(requests, results, strict=True):
            if cache_key is not None:
                self.cache_hook.add_partial("loglikelihood", cache_key, answer)
        return results

    def _packed(self, requests: list[Request]) -> tuple[list[tuple[float, bool]], list[int]]:
        """Answers in request order, and the requests whose input does not open its row."""
        # The model input of each request, left-truncated exactly as HFLM does.
        limit = self.max_length
        unique: dict[tuple[int, ...], int] = {}
        keys: list[int] = []
        for _, context, continuation in requests:
            if not context or not continuation or len(continuation) > limit:
                raise ValueError("lm-eval requests need a context and a short enough answer")
            model_input = tuple((context + continuation)[-(limit + 1) :][:-1])
            keys.append(unique.setdefault(model_input, len(unique)))
        inputs = list(unique)
        # Logits are needed for the last `scored[i]` positions of input i only.
        scored = [0] * len(inputs)
        for key, (_, _, continuation) in zip(keys, requests, strict=True):
            scored[key] = max(scored[key], len(continuation))
        lengths = [len(x) for x in inputs]
        capacity = max(max(lengths), self.pack_tokens)
        rows = pack_rows(lengths, capacity)
        rows.sort(key=lambda r: -r.length)
        per_forward = max(1, int(self.batch_size) if str(self.batch_size).isdigit() else 1)
        logits_of: dict[int, torch.Tensor] = {}
        for b in range(0, len(rows), per_forward):
            batch = rows[b : b + per_forward]
            logits_of.update(self._forward(batch, inputs, scored))
        later = {i for row in rows for i, start in row.members if start > 0}
        inside = [k for k, key in enumerate(keys) if key in later]
        results: list[tuple[float, bool]] = []
        for (_, _, continuation), key in zip(requests, keys, strict=True):
            logits = logits_of[key][-len(continuation) :]
            target = torch.tensor(continuation, dtype=torch.long, device=logits.device)
            greedy = bool((logits.argmax(dim=-1) == target).all())
            results.append((float(logits.gather(1, target[:, None]).sum()), greedy))
        return results, inside

    def _forward(
        self, batch: Sequence[PackedRow], inputs: Sequence[tuple[int, ...]], scored: list[int]
    ) -> dict[int, torch.Tensor]:
        """Log-softmaxed logits of the scored positions of every input in `batch`."""
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.eot_token_id
        ids, positions, mask = packed_inputs(
            batch, inputs, pad_token_id=pad, mask_dtype=self.model.dtype, device=self.device
        )
        keep = torch.zeros(ids.shape, dtype=torch.bool)
        spans = []  # (input index, first kept position, count), in keep's row-major order
        for b, row in enumerate(batch):
            for i, start in sorted(row.members, key=lambda m: m[1]):
                end = start + len(inputs[i])
                keep[b, end - scored[i] : end] = True
                spans.append((i, scored[i]))
        kwargs: dict[str, Any] = {"position_ids": positions, "attention_mask": mask}
        if self._keeps_logits:
            kwargs["logits_to_keep"] = keep.to(self.device)
        # Packed rows vary in width from batch to batch: kernels that plan per shape are out.
        with torch.inference_mode(), attention_kernels(self.device):
            with torch.autocast(
                device_type=self.device.type,
                dtype=self.mixed_precision_dtype,
                enabled=self.mixed_precision_dtype is not None,
            ):
                logits = self.model(ids, use_cache=False, **kwargs).logits
            if not self._keeps_logits:
                logits = logits[keep.to(logits.device)]
            logits = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        self.forward_passes += 1
        out: dict[int, torch.Tensor] = {}
        offset = 0
        for i, count in spans:
            out[i] = logits[offset : offset + count]
            offset += count
        return out


def _agree(
    packed: Sequence[tuple[float, bool]],
    reference: Sequence[tuple[float, bool]],
    dtype: torch.dtype,
) -> bool:
    # Half precision sums in another order shift log-likelihoods by more than fp32 does.
    rtol = 1e-3 if dtype == torch.float32 else 5e-2
    return all(
        math.isclose(p, r, rel_tol=rtol, abs_tol=rtol)
        for (p, _), (r, _) in zip(packed, reference, strict=True)
    )
