"""Tiny PaddleNLP ERNIE 1.0 and ERNIE 3.0 models (classifier and masked-LM) with reference outputs, and the
PaddleNLP side of tests/test_ernie.py's round trip. PaddleNLP is never a dependency of this project: this runs
once, in a scratch virtualenv outside the repository.

    python -m venv /tmp/pnlp-venv
    /tmp/pnlp-venv/bin/pip install paddlepaddle==3.3.1 paddlenlp==2.8.1 huggingface_hub==0.23.5 \
        datasets==2.19.2 aistudio-sdk==0.2.6 pyarrow==17.0.0 "numpy<2"
    /tmp/pnlp-venv/bin/python tests/data/make_ernie_references.py tests/data

(The tests find this venv's Python by $PADDLENLP_PYTHON; default: pnlp-venv/bin/python in the temporary folder.)

make (OUT_DIR): for each of MODELS, a PaddleNLP 2.8.1 model (2 layers x 32 wide, vocabulary of 64) whose
    every parameter is then set to seeded random values (LayerNorm scales near 1), so that each weight, bias
    and LayerNorm shapes the outputs, and the [PAD] row of the word embeddings is not zero (PaddleNLP's
    ERNIE reads it as zeros). Saved with PaddleNLP's save_pretrained into OUT_DIR/ernie_<name>/ (config.json
    + model_state.pdparams). Outputs on INPUT go to OUT_DIR/ernie_reference.npz:
        <name>/logits            [2, 3] for classifiers, [2, 8, 64] for masked-LMs
        <name>/hidden_states     classifiers only, [3, 2, 8, 32]: the embedding output and both layers'
        <name>/attentions        classifiers only, [2, 2, 4, 8, 8]: softmax probabilities (PaddleNLP returns
                                 those, not the pre-softmax scores)
        ernie3_cls/task_ids_last_hidden_state   the bare ErnieModel with TASK_IDS given explicitly
    and versions, configs and input to OUT_DIR/ernie_reference.json. When the repository's modeling.py
    imports here, each folder is also loaded with it and the differences printed.
--check FOLDER...: load each FOLDER with PaddleNLP's class named in its config (config.json's architectures,
    else model_config.json's init_class) and print one line "RESULT {json}": per folder the load report
    (missing, unexpected and mismatched keys), the class and the logits on INPUT.
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import paddle
import paddlenlp.transformers as pnlp

# Small enough that the four folders stay under 300 KB (a tied decoder matrix is saved twice by PaddleNLP).
TINY = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=8,
            max_position_embeddings=10, num_labels=3)
CONFIGS = {
    "ernie1": {**TINY, "hidden_act": "relu", "type_vocab_size": 2},                       # ERNIE 1.0: no task ids
    "ernie3": {**TINY, "hidden_act": "gelu", "type_vocab_size": 4, "use_task_id": True, "task_type_vocab_size": 3},
}
MODELS = {  # name: (config, PaddleNLP class)
    "ernie1_cls": ("ernie1", pnlp.ErnieForSequenceClassification),
    "ernie1_mlm": ("ernie1", pnlp.ErnieForMaskedLM),
    "ernie3_cls": ("ernie3", pnlp.ErnieForSequenceClassification),
    "ernie3_mlm": ("ernie3", pnlp.ErnieForMaskedLM),
}
INPUT = dict(  # row 2 is padded: its [PAD] ids must read as zero embeddings and be masked
    input_ids=[[1, 17, 30, 41, 55, 2, 48, 2], [1, 60, 33, 2, 63, 0, 0, 0]],
    token_type_ids=[[0, 0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 0, 0, 0]],
    attention_mask=[[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0]],
)
TASK_IDS = [[0, 1, 2, 1, 0, 2, 1, 0], [2, 2, 1, 1, 0, 0, 0, 0]]


def tensors() -> dict:
    return {k: paddle.to_tensor(np.array(v, dtype="int64")) for k, v in INPUT.items()}


def randomise(model, seed: int) -> None:
    """Every parameter to N(0, 0.2), LayerNorm scales to 1 + N(0, 0.2); a tied weight is set once."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        value = rng.normal(0.0, 0.2, p.shape)
        if "norm" in name and name.endswith("weight"):
            value += 1.0
        p.set_value(value.astype("float32"))


def outputs(model, name: str) -> dict:
    model.eval()
    out = model(**tensors(), output_hidden_states=True, output_attentions=True, return_dict=True)
    arrays = {f"{name}/logits": out.logits.numpy()}
    if name.endswith("_cls"):  # the masked-LMs share the encoder code: their logits are enough
        arrays[f"{name}/hidden_states"] = np.stack([h.numpy() for h in out.hidden_states])
        arrays[f"{name}/attentions"] = np.stack([a.numpy() for a in out.attentions])
    return arrays


def make(out_dir: Path) -> None:
    arrays = {}
    for i, (name, (config_name, cls)) in enumerate(MODELS.items()):
        paddle.seed(10 + i)
        model = cls(pnlp.ErnieConfig(**CONFIGS[config_name]))
        randomise(model, 100 + i)
        model.eval()
        folder = out_dir / f"ernie_{name}"
        shutil.rmtree(folder, ignore_errors=True)
        model.save_pretrained(str(folder))
        arrays.update(outputs(model, name))
        if name == "ernie3_cls":
            task_ids = paddle.to_tensor(np.array(TASK_IDS, dtype="int64"))
            out = model.ernie(**tensors(), task_type_ids=task_ids, return_dict=True)
            arrays[f"{name}/task_ids_last_hidden_state"] = out.last_hidden_state.numpy()
        size = sum(f.stat().st_size for f in folder.iterdir())
        print(f"wrote {folder} ({size} bytes, {len(model.state_dict())} weights)")
    np.savez_compressed(out_dir / "ernie_reference.npz", **arrays)
    meta = {"paddlenlp": __import__("paddlenlp").__version__, "paddle": paddle.__version__, "configs": CONFIGS,
            "models": {name: cls.__name__ for name, (_, cls) in MODELS.items()}, "input": INPUT,
            "task_ids": TASK_IDS}
    (out_dir / "ernie_reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    try:  # the other direction, when this environment can import the repository
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from tinybert.models import modeling
    except ImportError as e:
        print(f"not checked against modeling.py ({e})")
        return
    for name, (_, cls) in MODELS.items():
        ours = getattr(modeling, cls.__name__).from_pretrained(out_dir / f"ernie_{name}")
        diff = np.abs(ours(**tensors()).logits.numpy() - arrays[f"{name}/logits"]).max()
        print(f"PaddleNLP {cls.__name__} ({name}) -> ours: max abs diff logits {diff:.2e}")


def class_of(folder: Path):
    config = folder / "config.json"
    if config.is_file():
        return getattr(pnlp, json.loads(config.read_text())["architectures"][0])
    return getattr(pnlp, json.loads((folder / "model_config.json").read_text())["init_class"])


def check(folders: list[str]) -> None:
    results = {}
    for folder in map(Path, folders):
        cls = class_of(folder)
        report = {"class": cls.__name__}
        load = cls._load_pretrained_model.__func__

        def recording_load(klass, *args, **kwargs):
            model, missing, unexpected, mismatched = load(klass, *args, **kwargs)
            report.update(missing=sorted(missing), unexpected=sorted(unexpected),
                          mismatched=sorted(str(m[0]) for m in mismatched))
            return model, missing, unexpected, mismatched

        cls._load_pretrained_model = classmethod(recording_load)
        try:
            model = cls.from_pretrained(str(folder))
        finally:
            del cls._load_pretrained_model  # back to the inherited one
        model.eval()
        report["logits"] = model(**tensors(), return_dict=True).logits.numpy().tolist()
        report["use_task_id"] = bool(model.config.use_task_id)
        results[str(folder)] = report
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        check(sys.argv[2:])
    else:
        make(Path(sys.argv[1]))
