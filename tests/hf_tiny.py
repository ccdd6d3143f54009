"""A tiny Hugging Face BERT's config and seeded weights under Hugging Face's names, in numpy only: shared by
the tests and by tests/data/make_pytorch_model_bin.py, which runs in a scratch venv with torch and no paddle."""
from __future__ import annotations

import numpy as np

HF_CFG = dict(vocab_size=50, hidden_size=24, num_hidden_layers=2, num_attention_heads=3, intermediate_size=40,
              hidden_act="gelu", max_position_embeddings=32, type_vocab_size=3, layer_norm_eps=1e-12,
              model_type="bert", pad_token_id=0)


def hf_state(cfg: dict, seed: int = 0, mlm: bool = False, classifier: int = 0,
             prefix: str = "bert.") -> dict[str, np.ndarray]:
    """Random weights under Hugging Face's names and shapes (Linear weight [out, in]); the encoder's names
    start with `prefix` ("bert." in a model with a head, "" in a bare BertModel)."""
    rng = np.random.default_rng(seed)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    r = lambda *shape: rng.normal(0, 0.3, shape).astype("float32")  # noqa: E731
    s = {"embeddings.word_embeddings.weight": r(V, H),
         "embeddings.position_embeddings.weight": r(cfg["max_position_embeddings"], H),
         "embeddings.token_type_embeddings.weight": r(cfg["type_vocab_size"], H),
         "embeddings.LayerNorm.weight": 1 + r(H), "embeddings.LayerNorm.bias": r(H),
         "embeddings.position_ids": np.arange(cfg["max_position_embeddings"])[None],
         "pooler.dense.weight": r(H, H), "pooler.dense.bias": r(H)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name, shape in [("attention.self.query", (H, H)), ("attention.self.key", (H, H)),
                            ("attention.self.value", (H, H)), ("attention.output.dense", (H, H)),
                            ("intermediate.dense", (I, H)), ("output.dense", (H, I))]:
            s[p + name + ".weight"], s[p + name + ".bias"] = r(*shape), r(shape[0])
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            s[p + ln + ".weight"], s[p + ln + ".bias"] = 1 + r(H), r(H)
    s = {prefix + k: v for k, v in s.items()}
    if mlm:
        s.update({"cls.predictions.transform.dense.weight": r(H, H), "cls.predictions.transform.dense.bias": r(H),
                  "cls.predictions.transform.LayerNorm.weight": 1 + r(H),
                  "cls.predictions.transform.LayerNorm.bias": r(H), "cls.predictions.bias": r(V),
                  "cls.predictions.decoder.weight": s[prefix + "embeddings.word_embeddings.weight"],
                  "cls.seq_relationship.weight": r(2, H), "cls.seq_relationship.bias": r(2)})
    if classifier:
        s["classifier.weight"], s["classifier.bias"] = r(classifier, H), r(classifier)
    return s
