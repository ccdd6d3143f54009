"""A run saved in the old format of a run's own state, for tests/test_trainstate.py's legacy-resume test.

Run once, with the code of commit e0f129f (before a run's state moved to safetensors + JSON), from the
repository root:

    python tests/data/make_old_last_run.py tests/data/old_last_run

It trains a tiny TinyBERT classifier (1 layer x 16 wide, vocabulary of 40, dropout 0.1) with two tensors
outside the model (a bias and a W_h-like projection, as a distillation stage adds) for RUN_STEPS steps,
checkpointing every SAVE_STEP steps, and stops it by an exception during step SAVE_STEP + 1. OUT_DIR is then
that run's output folder: last/ at step SAVE_STEP with the old pickled files optimizer.pdopt,
rng_state.pdparams and extra_params.pdparams, best_model/ and train_log.jsonl.

The model, data, loss and settings are defined here once; the test imports them to resume the saved run with
the current code and to run the same training straight through.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F

from tinybert.models import modeling
from tinybert.training import trainer

RUN_STEPS, SAVE_STEP = 6, 3
CONFIG = dict(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
              max_position_embeddings=16, fit_size=16, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


class Stop(Exception):
    """Ends the run part-way, as a crash would."""


def build() -> tuple[paddle.nn.Layer, list[paddle.Tensor]]:
    """The seeded model and the two tensors trained beside it (a bias, a projection)."""
    trainer.set_seed(0)
    model = modeling.TinyBertForSequenceClassification(modeling.BertConfig(**CONFIG))
    bias = paddle.create_parameter([2], "float32", default_initializer=paddle.nn.initializer.Constant(0.0))
    projection = paddle.create_parameter([16, 16], "float32",
                                         default_initializer=paddle.nn.initializer.Normal(std=0.1))
    return model, [bias, projection]


def data(n: int = 24, seed: int = 1) -> list[dict[str, np.ndarray]]:
    """Label 1 when token 7 occurs; variable lengths 4-11."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        ids = rng.integers(5, 40, size=int(rng.integers(4, 12)))
        label = int(rng.random() < 0.5)
        if label:
            ids[rng.integers(len(ids))] = 7
        items.append({"input_ids": ids.astype("int64"), "token_type_ids": np.zeros(len(ids), "int64"),
                      "label": np.int64(label)})
    return items


def make_loss(extra: list[paddle.Tensor], stop_after: int | None = None):
    """Cross-entropy plus a small term on the projected last hidden state; raises Stop after `stop_after`
    calls."""
    bias, projection = extra
    calls = {"n": 0}

    def loss_fn(model, batch):
        calls["n"] += 1
        if stop_after is not None and calls["n"] > stop_after:
            raise Stop()
        out = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], output_hidden_states=True)
        ce = F.cross_entropy(out.logits + bias, batch["label"])
        aux = (paddle.matmul(out.hidden_states[-1], projection) ** 2).mean()
        return ce + 0.1 * aux, {"aux": aux}

    return loss_fn


def evaluate(model) -> dict[str, float]:
    from tinybert.training import evaluation

    dev = data(12, seed=2)
    logits = evaluation.predict_logits(model, dev, batch_size=6)
    return {"acc": float((logits.argmax(-1) == np.array([d["label"] for d in dev])).mean())}


evaluate.main_metric = "acc"


def config(output_dir: Path, **overrides) -> trainer.TrainConfig:
    settings = dict(learning_rate=1e-3, batch_size=4, max_steps=RUN_STEPS, save_steps=SAVE_STEP, logging_steps=1,
                    warmup_proportion=0.2, seed=11, weight_decay=0.01, max_grad_norm=1.0, checkpoint_minutes=0,
                    checkpoint_budget=0, visualdl=False)
    return trainer.TrainConfig(output_dir=str(output_dir), **{**settings, **overrides})


def train(output_dir: Path, stop_after: int | None = None, resume: bool = False) -> tuple[dict, dict]:
    """The run's summary and its final tensors (the model's and the extra ones, by name)."""
    model, extra = build()
    summary = trainer.train(model, data(), make_loss(extra, stop_after), config(output_dir, resume=resume),
                            evaluate=evaluate, parameters=list(model.parameters()) + extra)
    tensors = {k: v.numpy() for k, v in model.state_dict().items()}
    tensors.update({f"extra.{i}": p.numpy() for i, p in enumerate(extra)})
    return summary, tensors


def main(out_dir: str) -> None:
    out = Path(out_dir)
    shutil.rmtree(out, ignore_errors=True)
    try:
        train(out, stop_after=SAVE_STEP)  # batch 4, no accumulation: one loss call a step
    except Stop:
        pass
    last = out / trainer.LAST_DIR
    print(sorted(p.name for p in last.iterdir()))
    print(sum(p.stat().st_size for p in out.rglob("*") if p.is_file()), "bytes")


if __name__ == "__main__":
    main(sys.argv[1])
