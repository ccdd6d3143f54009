"""Logits over a dataset and a task's metrics: what the training loop's evaluation, predict.py and the
demo's report all compute, written once.

    logits = predict_logits(model_or_runner, dataset, batch_size=64, pad_token_id=0)
    evaluate = task_evaluator(spec, {"dev": dev_set}, batch_size=64, pad_token_id=0)   # evaluate(model) -> metrics

`model_or_runner` is a paddle.nn.Layer (run eagerly without gradients) or any inference runner
(inference.py: batch dict of int64 arrays -> logits). Examples are run in batches of similar length
(little padding) and the logits come back in the dataset's order. Under paddle.distributed.launch each
process runs its share of the batches and every process gets the whole array, so metrics cover the whole
dev set (and a --cache_teacher_logits cache the whole training set).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from tinybert import errors
from tinybert.data import features
from tinybert import inference
from tinybert.data import metrics
from tinybert.training import trainer

Items = Sequence[Mapping[str, np.ndarray]]


def _as_runner(model_or_runner: Any) -> inference.Runner:
    import paddle

    if isinstance(model_or_runner, paddle.nn.Layer):
        return inference.EagerModel(model_or_runner)
    return model_or_runner


def _lengths(dataset: Items) -> np.ndarray:
    lengths = getattr(dataset, "lengths", None)
    if lengths is not None:
        return np.asarray(lengths)
    return np.array([len(item["input_ids"]) for item in dataset], dtype=np.int64)


def predict_logits(model_or_runner: Any, dataset: Items, batch_size: int, pad_token_id: int = 0,
                   desc: str | None = None) -> np.ndarray:
    """Logits [N, num_outputs] for every item of `dataset`, in the dataset's order (float32).

    Under paddle.distributed.launch process r runs batches r, r + world, ... and every process gets the
    whole array. The processes exchange their logits after each round of one batch each, not once at the
    end: on CPU (gloo) a collective fails when the processes reach it more than 30 s apart, which a
    single exchange after a long prediction (the teacher over a training set) would risk.

    desc: show a progress bar with this title (on stderr, on terminals)."""
    if len(dataset) == 0:
        raise errors.UserError("nothing to predict: the dataset is empty")
    run = _as_runner(model_or_runner)
    rank, world = trainer.rank(), trainer.world_size()
    batches = features.inference_batches(_lengths(dataset), batch_size)
    result: np.ndarray | None = None
    for start in tqdm(range(0, len(batches), world), desc=desc, unit="round" if world > 1 else "batch",
                      file=sys.stderr, leave=False, disable=desc is None):
        mine = []
        if start + rank < len(batches):
            ids = batches[start + rank]
            batch = features.collate([dataset[i] for i in ids], pad_token_id)
            mine.append((ids, np.asarray(run(batch), dtype=np.float32).reshape(len(ids), -1)))
        for ids, out in _gathered(mine, world):
            if result is None:  # the first round always holds process 0's batch
                result = np.zeros((len(dataset), out.shape[1]), dtype=np.float32)
            result[ids] = out
    return result


def _gathered(mine: list, world: int) -> list:
    """Every process's items of `mine`, process 0's first."""
    if world == 1:
        return mine
    import paddle.distributed as dist

    parts: list[list] = []
    dist.all_gather_object(parts, mine)
    return [item for part in parts for item in part]


def dataset_labels(dataset: Items) -> np.ndarray:
    labels = getattr(dataset, "labels", None)
    return np.asarray(labels) if labels is not None else np.asarray([item["label"] for item in dataset])


def task_evaluator(spec: Any, dev_sets: Mapping[str, Items], batch_size: int, pad_token_id: int = 0
                   ) -> Callable[[Any], dict[str, float]]:
    """evaluate(model) for a task: logits over each dev split (whole split, all processes), the task's
    metrics, MNLI's two dev sets merged (mismatched suffixed "_mm"); `.main_metric` is the task's."""

    def evaluate(model: Any) -> dict[str, float]:
        per_split = {}
        for split, data in dev_sets.items():
            logits = predict_logits(model, data, batch_size, pad_token_id)
            preds = metrics.logits_to_predictions(spec, logits)
            per_split[split] = metrics.compute_metrics(spec, preds, dataset_labels(data))
        return metrics.merge_split_metrics(per_split)

    evaluate.main_metric = spec.main_metric
    return evaluate
