"""Check checkpoint compatibility with PaddleNLP both ways, and write the PaddleNLP-saved folders that
tests/test_modeling.py loads (PaddleNLP is never a dependency of this project; this runs once, outside it).

    python -m venv /tmp/venv-pnlp
    /tmp/venv-pnlp/bin/pip install paddlepaddle==3.3.1 paddlenlp==2.8.1 huggingface_hub==0.23.5 \
        datasets==2.19.2 aistudio-sdk==0.2.6 pyarrow==17.0.0 "numpy<2"
    /tmp/venv-pnlp/bin/python tests/data/make_paddlenlp_reference.py tests/data

1. PaddleNLP -> ours: tiny PaddleNLP 2.8.1 BertForSequenceClassification, TinyBertForSequenceClassification
   and BertForMaskedLM (seeded random weights) are saved with PaddleNLP's save_pretrained into
   tests/data/paddlenlp_<class>/ (config.json + model_state.pdparams); their logits and last hidden
   states on fixed inputs go to tests/data/paddlenlp_reference.npz.
2. ours -> PaddleNLP: the same classes of ours are saved with our save_pretrained (with config.json, and
   again with only model_config.json) and loaded with PaddleNLP's from_pretrained; the logits must be
   identical (max abs diff printed, asserted below 1e-6).
"""
import json
import shutil
import importlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import paddle
import paddlenlp.transformers as pnlp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root
modeling = importlib.import_module("tinybert.models.modeling")

CONFIG = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
              max_position_embeddings=40, type_vocab_size=2, num_labels=3, fit_size=48)
IDS = np.array([[2, 10, 11, 12, 3, 20, 21, 3], [2, 13, 14, 3, 22, 0, 0, 0]], dtype="int64")
TYPES = np.array([[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 0, 0, 0]], dtype="int64")
MASK = (IDS != 0).astype("int64")
PAIRS = [  # (PaddleNLP class, config class, our class, folder name)
    (pnlp.BertForSequenceClassification, pnlp.BertConfig, modeling.BertForSequenceClassification, "bert_cls"),
    (pnlp.TinyBertForSequenceClassification, pnlp.TinyBertConfig, modeling.TinyBertForSequenceClassification,
     "tinybert_cls"),
    (pnlp.BertForMaskedLM, pnlp.BertConfig, modeling.BertForMaskedLM, "bert_mlm"),
]


def pnlp_outputs(model):
    out = model(paddle.to_tensor(IDS), token_type_ids=paddle.to_tensor(TYPES), attention_mask=paddle.to_tensor(MASK),
                output_hidden_states=True, return_dict=True)
    return out.logits.numpy(), out.hidden_states[-1].numpy()


def our_outputs(model):
    out = model(paddle.to_tensor(IDS), paddle.to_tensor(TYPES), paddle.to_tensor(MASK))
    return out.logits.numpy(), out.last_hidden_state.numpy()


def main(out_dir: str) -> None:
    out_dir = Path(out_dir)
    arrays = {}
    for i, (pcls, pcfg, ours, name) in enumerate(PAIRS):
        # 1. PaddleNLP -> ours
        paddle.seed(100 + i)
        pmodel = pcls(pcfg(**CONFIG))
        pmodel.eval()
        folder = out_dir / f"paddlenlp_{name}"
        shutil.rmtree(folder, ignore_errors=True)
        pmodel.save_pretrained(str(folder))
        logits, hidden = pnlp_outputs(pmodel)
        arrays[f"{name}/logits"], arrays[f"{name}/last_hidden_state"] = logits, hidden
        mine = our_outputs(ours.from_pretrained(folder))
        print(f"PaddleNLP {pcls.__name__} -> ours: max abs diff logits {np.abs(mine[0] - logits).max():.2e}, "
              f"hidden {np.abs(mine[1] - hidden).max():.2e}")

        # 2. ours -> PaddleNLP, from config.json and from model_config.json alone
        paddle.seed(200 + i)
        model = ours(modeling.BertConfig(**CONFIG))
        model.eval()
        want = our_outputs(model)[0]
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            for form in ("config.json", "model_config.json"):
                if form == "model_config.json":
                    (Path(tmp) / "config.json").unlink()
                loaded = pcls.from_pretrained(tmp)
                loaded.eval()
                got = pnlp_outputs(loaded)[0]
                diff = np.abs(got - want).max()
                print(f"ours -> PaddleNLP {pcls.__name__} ({form}): max abs diff logits {diff:.2e}")
                assert diff < 1e-6
    np.savez(out_dir / "paddlenlp_reference.npz", **arrays)
    meta = {"paddlenlp": __import__("paddlenlp").__version__, "paddle": paddle.__version__, "config": CONFIG}
    (out_dir / "paddlenlp_reference.json").write_text(json.dumps(meta) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
