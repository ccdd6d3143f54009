"""A plain-numpy BERT forward pass: the reference the Paddle model and the converter are checked against.

Written from the BERT paper's formulas, not from modeling.py. `linear(name)` gives (W [in, out], b);
two adapters read weights by our (PaddleNLP) names or by Hugging Face names.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import erf


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def bert_forward(get: Callable[[str], np.ndarray], linear: Callable[[str], tuple], cfg: dict,
                 input_ids: np.ndarray, token_type_ids: np.ndarray, mask: np.ndarray) -> dict:
    """get(part) -> array; linear(part) -> (W [in, out], b). Parts use generic names (see adapters)."""
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731  (float64 so the reference is exact)
    eps, heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]
    B, S = input_ids.shape
    x = f64(get("word"))[input_ids] + f64(get("pos"))[np.arange(S)][None] + f64(get("type"))[token_type_ids]
    x = layer_norm(x, f64(get("emb_ln_g")), f64(get("emb_ln_b")), eps)
    hidden, scores_all = [x], []
    bias = (1.0 - mask[:, None, None, :].astype(np.float64)) * -1e4
    for i in range(cfg["num_hidden_layers"]):
        lin = lambda p: tuple(f64(t) for t in linear(f"{i}.{p}"))  # noqa: E731
        H = x.shape[-1]
        d = H // heads

        def proj(p):
            w, b = lin(p)
            return (x @ w + b).reshape(B, S, heads, d).transpose(0, 2, 1, 3)

        q, k, v = proj("q"), proj("k"), proj("v")
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)  # before mask and softmax
        ctx = (softmax(scores + bias) @ v).transpose(0, 2, 1, 3).reshape(B, S, H)
        w, b = lin("o")
        x = layer_norm(x + ctx @ w + b, f64(get(f"{i}.ln1_g")), f64(get(f"{i}.ln1_b")), eps)
        w1, b1 = lin("ff1")
        w2, b2 = lin("ff2")
        x = layer_norm(x + gelu(x @ w1 + b1) @ w2 + b2, f64(get(f"{i}.ln2_g")), f64(get(f"{i}.ln2_b")), eps)
        hidden.append(x)
        scores_all.append(scores)
    out = {"hidden_states": hidden, "attention_scores": scores_all}
    try:
        w, b = (f64(t) for t in linear("pooler"))
        out["pooled"] = np.tanh(x[:, 0] @ w + b)
    except KeyError:
        pass
    return out


# Our (PaddleNLP) names; Linear weights are stored [in, out].
OURS = {"word": "embeddings.word_embeddings.weight", "pos": "embeddings.position_embeddings.weight",
        "type": "embeddings.token_type_embeddings.weight", "emb_ln_g": "embeddings.layer_norm.weight",
        "emb_ln_b": "embeddings.layer_norm.bias", "ln1_g": "encoder.layers.{i}.norm1.weight",
        "ln1_b": "encoder.layers.{i}.norm1.bias", "ln2_g": "encoder.layers.{i}.norm2.weight",
        "ln2_b": "encoder.layers.{i}.norm2.bias", "q": "encoder.layers.{i}.self_attn.q_proj",
        "k": "encoder.layers.{i}.self_attn.k_proj", "v": "encoder.layers.{i}.self_attn.v_proj",
        "o": "encoder.layers.{i}.self_attn.out_proj", "ff1": "encoder.layers.{i}.linear1",
        "ff2": "encoder.layers.{i}.linear2", "pooler": "pooler.dense"}

# Hugging Face names; Linear weights are stored [out, in].
HF = {"word": "embeddings.word_embeddings.weight", "pos": "embeddings.position_embeddings.weight",
      "type": "embeddings.token_type_embeddings.weight", "emb_ln_g": "embeddings.LayerNorm.weight",
      "emb_ln_b": "embeddings.LayerNorm.bias", "ln1_g": "encoder.layer.{i}.attention.output.LayerNorm.weight",
      "ln1_b": "encoder.layer.{i}.attention.output.LayerNorm.bias",
      "ln2_g": "encoder.layer.{i}.output.LayerNorm.weight", "ln2_b": "encoder.layer.{i}.output.LayerNorm.bias",
      "q": "encoder.layer.{i}.attention.self.query", "k": "encoder.layer.{i}.attention.self.key",
      "v": "encoder.layer.{i}.attention.self.value", "o": "encoder.layer.{i}.attention.output.dense",
      "ff1": "encoder.layer.{i}.intermediate.dense", "ff2": "encoder.layer.{i}.output.dense",
      "pooler": "pooler.dense"}


def _split(part: str) -> tuple[str, str]:
    i, _, p = part.partition(".") if part[0].isdigit() else ("", "", part)
    return i, p


def adapters(state: dict[str, np.ndarray], table: dict[str, str], prefix: str = "", transpose: bool = False):
    def get(part):
        i, p = _split(part)
        return state[prefix + table[p].format(i=i)]

    def linear(part):
        i, p = _split(part)
        name = prefix + table[p].format(i=i)
        w = state[name + ".weight"]
        return (w.T if transpose else w), state[name + ".bias"]

    return get, linear


def forward_ours(state, cfg, input_ids, token_type_ids, mask, prefix=""):
    get, linear = adapters(state, OURS, prefix)
    return bert_forward(get, linear, cfg, input_ids, token_type_ids, mask)


def forward_hf(state, cfg, input_ids, token_type_ids, mask, prefix=""):
    get, linear = adapters(state, HF, prefix, transpose=True)
    return bert_forward(get, linear, cfg, input_ids, token_type_ids, mask)
