"""GLUE and CLUE metrics: accuracy, F1, Matthews correlation, Pearson/Spearman, and each task's metric
family (CLUE's classification tasks: accuracy).

    preds = logits_to_predictions(spec, logits)          # class ids, or scores for STS-B
    compute_metrics(spec, preds, labels)                 # SST-2: {"acc": 0.91}
    merge_split_metrics({"dev_matched": {...}, "dev_mismatched": {...}})   # MNLI: {"acc": .., "acc_mm": ..}

Labels and predictions are class ids (the position in the task's label list), or float scores for
regression. The formulas are scikit-learn's and scipy's, as in GLUE's own scoring. A task (its
TaskSpec, tasks.py) says which metric is its main one; this module imports no task code.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

# scikit-learn and scipy are imported inside the functions: they take about a second to load.


def accuracy(preds: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score
    return float(accuracy_score(labels, preds))


def acc_and_f1(preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Binary F1 of the positive class (label id 1: "paraphrase"/"duplicate"), as GLUE scores it."""
    from sklearn.metrics import f1_score
    acc = accuracy(preds, labels)
    f1 = float(f1_score(labels, preds, pos_label=1, average="binary", zero_division=0))
    return {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}


def mcc(preds: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import matthews_corrcoef
    return float(matthews_corrcoef(labels, preds))


def correlations(preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Pearson, Spearman and their mean; NaN when either side is constant (correlation undefined)."""
    from scipy.stats import pearsonr, spearmanr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant input; NaN says it already
        pearson = float(pearsonr(preds, labels)[0])
        spearman = float(spearmanr(preds, labels)[0])
    return {"pearson": pearson, "spearman": spearman, "corr": (pearson + spearman) / 2}


def compute_metrics(spec: Any, preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Metrics of one evaluation split of a task (a TaskSpec: tasks.get_task(name) for a GLUE task).

    The family follows the task's main metric: Matthews correlation (CoLA), accuracy and F1
    (MRPC, QQP), correlations (regression), else accuracy (the other GLUE tasks, every CLUE task),
    plus macro F1 for users' data of more than two classes."""
    if isinstance(spec, str):
        raise TypeError(f"compute_metrics takes a task spec, not the name {spec!r}: use tasks.get_task")
    preds, labels = np.asarray(preds), np.asarray(labels)
    if preds.shape[0] != labels.shape[0]:
        raise ValueError(f"{preds.shape[0]} predictions for {labels.shape[0]} labels")
    if spec.is_regression:
        return correlations(preds.astype(np.float64), labels.astype(np.float64))
    preds, labels = preds.astype(np.int64), labels.astype(np.int64)
    if spec.main_metric == "mcc":
        return {"mcc": mcc(preds, labels)}
    if spec.main_metric == "acc_and_f1":
        return acc_and_f1(preds, labels)
    result = {"acc": accuracy(preds, labels)}
    if not spec.is_benchmark and spec.num_labels > 2:  # users' many-class data: macro F1 shows rare classes
        from sklearn.metrics import f1_score
        result["macro_f1"] = float(f1_score(labels, preds, average="macro", zero_division=0))
    return result


def merge_split_metrics(per_split: dict[str, dict[str, float]]) -> dict[str, float]:
    """One metrics dict from several dev splits: the first split's names unchanged (the main metric
    lives there), the others suffixed, e.g. MNLI's dev_mismatched accuracy becomes "acc_mm"."""
    merged: dict[str, float] = {}
    for i, (split, metrics) in enumerate(per_split.items()):
        suffix = "" if i == 0 else "_" + _split_suffix(split)
        merged.update({f"{name}{suffix}": value for name, value in metrics.items()})
    return merged


def _split_suffix(split: str) -> str:
    return {"dev_matched": "m", "dev_mismatched": "mm"}.get(split, split)


def logits_to_predictions(spec: Any, logits: np.ndarray) -> np.ndarray:
    """Class ids (argmax) for classification, the single output column for regression."""
    logits = np.asarray(logits)
    if spec.is_regression:
        return logits.reshape(logits.shape[0], -1)[:, 0].astype(np.float32)
    return logits.argmax(-1).astype(np.int64)
