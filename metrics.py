"""GLUE metrics: accuracy, F1, Matthews correlation, Pearson/Spearman, and each task's main metric.

    preds = logits_to_predictions(spec, logits)          # class ids, or scores for STS-B
    compute_metrics("SST-2", preds, labels)              # {"acc": 0.91}
    merge_split_metrics({"dev_matched": {...}, "dev_mismatched": {...}})   # MNLI: {"acc": .., "acc_mm": ..}

Labels and predictions are class ids (the position in the task's label list), or float scores for
regression. The formulas are scikit-learn's and scipy's, as in GLUE's own scoring.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

# scikit-learn and scipy are imported inside the functions: they take about a second to load, and
# every script imports this module (through tasks.py) for MAIN_METRIC alone.

# The one table of main metrics: it picks OUTPUT_DIR/best_model. For MRPC/QQP and STS-B the combined
# scores (mean of accuracy and F1; mean of Pearson and Spearman) so that neither half is traded away;
# MNLI's "acc" is the matched dev set's accuracy (the mismatched one is reported as "acc_mm").
MAIN_METRIC: dict[str, str] = {
    "CoLA": "mcc",
    "SST-2": "acc",
    "MRPC": "acc_and_f1",
    "STS-B": "corr",
    "QQP": "acc_and_f1",
    "MNLI": "acc",
    "QNLI": "acc",
    "RTE": "acc",
    "WNLI": "acc",
}
# Users' own data: accuracy for classification, mean correlation for regression.
CUSTOM_MAIN_METRIC = {"classification": "acc", "regression": "corr"}

# Which metric family each GLUE task reports.
_KIND = {"CoLA": "mcc", "MRPC": "acc_f1", "QQP": "acc_f1", "STS-B": "corr"}


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


def compute_metrics(task_name_or_spec: Any, preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Metrics of one evaluation split: a GLUE task by name or spec, or a user's own task (spec)."""
    import tasks  # here, not at the top: tasks imports MAIN_METRIC from this module

    spec = (tasks.get_task(task_name_or_spec) if isinstance(task_name_or_spec, str)
            else task_name_or_spec)
    preds, labels = np.asarray(preds), np.asarray(labels)
    if preds.shape[0] != labels.shape[0]:
        raise ValueError(f"{preds.shape[0]} predictions for {labels.shape[0]} labels")
    if spec.is_regression:
        return correlations(preds.astype(np.float64), labels.astype(np.float64))
    preds, labels = preds.astype(np.int64), labels.astype(np.int64)
    kind = _KIND.get(spec.name) if spec.is_glue else None
    if kind == "mcc":
        return {"mcc": mcc(preds, labels)}
    if kind == "acc_f1":
        return acc_and_f1(preds, labels)
    result = {"acc": accuracy(preds, labels)}
    if not spec.is_glue and spec.num_labels > 2:  # users' many-class data: macro F1 shows rare classes
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
