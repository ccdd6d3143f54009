"""tests/data/hf_tiny_bert/pytorch_model.bin: a tiny Hugging Face BERT sequence classifier saved by torch.save
(PyTorch's zip format), for tests/test_fetch.py, which reads it without torch. torch is never a dependency of
this project: this runs once in a scratch virtualenv outside the repository.

    python -m venv /tmp/torch-venv
    /tmp/torch-venv/bin/pip install torch==2.13.0 numpy
    /tmp/torch-venv/bin/python tests/data/make_pytorch_model_bin.py tests/data/hf_tiny_bert

The weights are hf_tiny.hf_state(HF_CFG, seed=7, classifier=2) (seeded numpy: the test rebuilds them as
safetensors); the file holds float32 and int64 tensors, one tensor sharing another's storage (the tied masked-LM decoder)
and one stored transposed (a non-contiguous view), as real checkpoints do.
"""
import importlib
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
hf_tiny = importlib.import_module("hf_tiny")  # numpy only
HF_CFG, hf_state = hf_tiny.HF_CFG, hf_tiny.hf_state


def main(out_dir: str) -> None:
    weights = hf_state(HF_CFG, seed=7, classifier=2)
    state = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in weights.items()}
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]  # shared storage
    pooler = state["bert.pooler.dense.weight"]
    state["bert.pooler.dense.weight"] = pooler.t().contiguous().t()  # same values, column-major strides
    assert not state["bert.pooler.dense.weight"].is_contiguous()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    torch.save(state, str(Path(out_dir) / "pytorch_model.bin"))


if __name__ == "__main__":
    main(sys.argv[1])
