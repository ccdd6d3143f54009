"""The configs of PaddleNLP's built-in model names (bert-base-uncased, tinybert-4l-312d, ernie-3.0-base-zh, ...).

PaddleNLP's cache folder of a built-in name ($PPNLP_HOME/models/NAME) holds the weights and the vocabulary
but, in older PaddleNLP versions, no model config: the config is PaddleNLP's own table, copied here.
modeling.read_config falls back to it when a folder of one of these names has no config file. The names
are those of named.MODEL_FILES (the download addresses); tests/test_fetch.py checks both against PaddleNLP.
"""
from __future__ import annotations

from typing import Any

_BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  intermediate_size=3072, type_vocab_size=2)
_TINYBERT_4L = dict(vocab_size=30522, hidden_size=312, num_hidden_layers=4, num_attention_heads=12,
                    intermediate_size=1200, type_vocab_size=2)
_TINYBERT_6L = {**_BERT_BASE, "num_hidden_layers": 6}
# ERNIE: PaddleNLP's ernie/configuration.py.
_ERNIE_3 = dict(vocab_size=40000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072, max_position_embeddings=2048, type_vocab_size=4, use_task_id=True,
                task_type_vocab_size=16)

# name -> config fields (the rest keep the config class's defaults)
BUILTIN_CONFIGS: dict[str, dict[str, Any]] = {
    "bert-base-uncased": _BERT_BASE,
    "bert-base-cased": {**_BERT_BASE, "vocab_size": 28996},
    "bert-large-uncased": {**_BERT_BASE, "hidden_size": 1024, "num_hidden_layers": 24,
                           "num_attention_heads": 16, "intermediate_size": 4096},
    "bert-base-chinese": {**_BERT_BASE, "vocab_size": 21128},
    "tinybert-4l-312d": _TINYBERT_4L,
    "tinybert-4l-312d-v2": _TINYBERT_4L,
    "tinybert-6l-768d": _TINYBERT_6L,
    "tinybert-6l-768d-v2": _TINYBERT_6L,
    "tinybert-4l-312d-zh": {**_TINYBERT_4L, "vocab_size": 21128},
    "tinybert-6l-768d-zh": {**_TINYBERT_6L, "vocab_size": 21128},
    "ernie-1.0": dict(vocab_size=18000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072, hidden_act="relu", max_position_embeddings=513, type_vocab_size=2),
    "ernie-3.0-base-zh": {**_ERNIE_3, "task_type_vocab_size": 3},
    "ernie-3.0-medium-zh": {**_ERNIE_3, "num_hidden_layers": 6},
    "ernie-3.0-mini-zh": {**_ERNIE_3, "hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536},
    "ernie-3.0-micro-zh": {**_ERNIE_3, "hidden_size": 384, "num_hidden_layers": 4, "intermediate_size": 1536},
    "ernie-3.0-nano-zh": {**_ERNIE_3, "hidden_size": 312, "num_hidden_layers": 4, "intermediate_size": 1248},
}


def builtin_config(name: str) -> dict[str, Any] | None:
    """The config fields of a PaddleNLP built-in name, or None for any other name."""
    fields = BUILTIN_CONFIGS.get(name)
    return dict(fields) if fields is not None else None
