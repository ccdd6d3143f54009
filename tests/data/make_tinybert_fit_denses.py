"""A PaddleNLP TinyBERT with per-layer projections (fit_denses, as in PaddleNLP's v2 general TinyBERT), and
the PaddleNLP side of tests/test_task_distill.py's round trip. PaddleNLP is never a dependency of this
project: this runs in a scratch virtualenv outside the repository.

    python -m venv /tmp/pnlp-venv
    /tmp/pnlp-venv/bin/pip install paddlepaddle==3.3.1 paddlenlp==2.8.1 huggingface_hub==0.23.5 \
        datasets==2.19.2 aistudio-sdk==0.2.6 pyarrow==17.0.0 "numpy<2"
    /tmp/pnlp-venv/bin/python tests/data/make_tinybert_fit_denses.py tests/data

(The tests find this venv's Python by $PADDLENLP_PYTHON; default: pnlp-venv/bin/python in the temporary folder.)

make (OUT_DIR): a seeded random PaddleNLP 2.8.1 TinyBertForSequenceClassification, 2 layers x 32 wide,
    fit_size 32 (as wide as the test's teacher: the tinybert-6l-768d-v2 case), saved with PaddleNLP's
    save_pretrained into OUT_DIR/paddlenlp_tinybert_v2/. PaddleNLP's TinyBertModel always builds both
    fit_dense and fit_denses (num_hidden_layers + 1 Linear layers), so the folder holds both. Its logits on
    INPUT go to OUT_DIR/paddlenlp_tinybert_v2_reference.json. When the repository's modeling.py imports
    here, the folder is also loaded with it and the logits difference printed.
--check FOLDER: load FOLDER with PaddleNLP's TinyBertForSequenceClassification.from_pretrained and print one
    line "RESULT {json}": the load report (missing, unexpected and mismatched keys) and the logits on INPUT.
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import paddle
import paddlenlp.transformers as pnlp

FOLDER = "paddlenlp_tinybert_v2"
REFERENCE = "paddlenlp_tinybert_v2_reference.json"
CONFIG = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=64, type_vocab_size=2, num_labels=2, fit_size=32, initializer_range=0.2)
INPUT = dict(
    input_ids=[[2, 17, 30, 41, 55, 3, 0, 0], [2, 60, 71, 3, 80, 90, 99, 3]],
    token_type_ids=[[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]],
    attention_mask=[[1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]],
)


def logits_of(model) -> np.ndarray:
    model.eval()
    tensors = {k: paddle.to_tensor(np.array(v, dtype="int64")) for k, v in INPUT.items()}
    return model(**tensors, return_dict=True).logits.numpy()


def make(out_dir: Path) -> None:
    paddle.seed(7)
    model = pnlp.TinyBertForSequenceClassification(pnlp.TinyBertConfig(**CONFIG))
    folder = out_dir / FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(str(folder))
    logits = logits_of(model)
    keys = sorted(model.state_dict())
    meta = {"paddlenlp": __import__("paddlenlp").__version__, "paddle": paddle.__version__, "config": CONFIG,
            "input": INPUT, "logits": logits.tolist()}
    (out_dir / REFERENCE).write_text(json.dumps(meta) + "\n")
    print(f"wrote {folder} ({sum(f.stat().st_size for f in folder.iterdir())} bytes, {len(keys)} weights, "
          f"{sum('fit_denses.' in k for k in keys) // 2} fit_denses)")
    try:  # the other direction, when this environment can import the repository
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from tinybert.models import modeling
    except ImportError as e:
        print(f"not checked against modeling.py ({e})")
        return
    ours = modeling.TinyBertForSequenceClassification.from_pretrained(folder)
    tensors = [paddle.to_tensor(np.array(INPUT[k], dtype="int64")) for k in INPUT]
    print(f"PaddleNLP -> ours: max abs diff logits {np.abs(ours(*tensors).logits.numpy() - logits).max():.2e}")


def check(folder: str) -> None:
    report = {}
    load = pnlp.TinyBertForSequenceClassification._load_pretrained_model.__func__

    def recording_load(cls, *args, **kwargs):
        model, missing, unexpected, mismatched = load(cls, *args, **kwargs)
        report.update(missing=sorted(missing), unexpected=sorted(unexpected),
                      mismatched=sorted(str(m[0]) for m in mismatched))
        return model, missing, unexpected, mismatched

    pnlp.TinyBertForSequenceClassification._load_pretrained_model = classmethod(recording_load)
    model = pnlp.TinyBertForSequenceClassification.from_pretrained(folder)
    report["logits"] = logits_of(model).tolist()
    report["num_fit_denses"] = len(model.tinybert.fit_denses)
    print("RESULT " + json.dumps(report))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        check(sys.argv[2])
    else:
        make(Path(sys.argv[1]))
