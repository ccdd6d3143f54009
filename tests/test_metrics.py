"""Each GLUE metric against values worked out by hand (and plain numpy formulas)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinybert.data import tasks
from tinybert.data.metrics import compute_metrics, logits_to_predictions, merge_split_metrics
from tinybert.data.tasks import MAIN_METRIC


def test_accuracy_sst2():
    # 3 of 4 right.
    assert compute_metrics(tasks.get_task("sst-2"), [1, 0, 1, 1], [1, 0, 0, 1]) == {"acc": 0.75}


@pytest.mark.parametrize("task", ["MRPC", "qqp"])
def test_f1_and_acc_and_f1(task):
    # tp=2 (0, 3), fp=1 (2), fn=0, tn=1: precision 2/3, recall 1, F1 = 2*(2/3)/(2/3+1) = 0.8.
    result = compute_metrics(tasks.get_task(task), np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]))
    assert result == pytest.approx({"acc": 0.75, "f1": 0.8, "acc_and_f1": 0.775})


def test_f1_is_of_the_positive_class():
    # Flipping which class counts as positive changes F1: tp=0, fp=0, fn=1 -> F1 = 0 (sklearn's 0/0 -> 0).
    assert compute_metrics(tasks.get_task("mrpc"), [0, 0], [1, 0])["f1"] == 0.0


def test_matthews_correlation_cola():
    preds, labels = np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1])
    # tp=2, tn=1, fp=1, fn=1: (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2-1)/sqrt(3*3*2*2) = 1/6
    assert compute_metrics(tasks.get_task("CoLA"), preds, labels) == pytest.approx({"mcc": 1 / 6})
    assert compute_metrics(tasks.get_task("cola"), labels, labels)["mcc"] == pytest.approx(1.0)


def test_pearson_spearman_and_mean_stsb():
    preds, labels = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 10.0])
    # Pearson: deviations (-1.5, -.5, .5, 1.5) and (-3, -2, -1, 6): 14 / sqrt(5 * 50). Ranks agree: Spearman 1.
    pearson = 14 / math.sqrt(250)
    np.testing.assert_allclose(pearson, np.corrcoef(preds, labels)[0, 1])
    result = compute_metrics(tasks.get_task("STS-B"), preds, labels)
    assert result == pytest.approx({"pearson": pearson, "spearman": 1.0, "corr": (pearson + 1.0) / 2})
    # Spearman on ranks: preds (1,2,3) vs labels (1,3,2): ranks deviations (-1,0,1), (-1,1,0) -> 1/2.
    assert compute_metrics(tasks.get_task("sts-b"), [0.1, 0.2, 0.3], [1.0, 5.0, 2.0])["spearman"] == pytest.approx(0.5)


def test_constant_predictions_give_nan_correlation():
    assert math.isnan(compute_metrics(tasks.get_task("stsb"), [2.0, 2.0, 2.0], [1.0, 2.0, 3.0])["pearson"])


def test_mnli_matched_and_mismatched():
    spec = tasks.get_task("mnli")
    matched = compute_metrics(spec, [0, 1, 2, 2], [0, 1, 2, 1])
    mismatched = compute_metrics(spec, [0, 0, 2, 2], [0, 1, 2, 1])
    merged = merge_split_metrics({"dev_matched": matched, "dev_mismatched": mismatched})
    assert merged == {"acc": 0.75, "acc_mm": 0.5}
    assert merge_split_metrics({"dev": {"acc": 0.5}}) == {"acc": 0.5}


def test_custom_many_classes_report_macro_f1():
    spec = tasks.custom_task("topics", ["a", "b", "c"])
    # Per class F1: a: tp1 fp0 fn1 -> 2/3; b: tp1 fp1 fn0 -> 2/3; c: tp1 fp0 fn0 -> 1. Mean 7/9.
    result = compute_metrics(spec, [0, 1, 1, 2], [0, 1, 0, 2])
    assert result == pytest.approx({"acc": 0.75, "macro_f1": 7 / 9})
    assert compute_metrics(tasks.custom_task("s", None), [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])["corr"] == pytest.approx(1)


def test_main_metric_table_names_a_computed_metric_for_every_task():
    rng = np.random.default_rng(0)
    assert set(MAIN_METRIC) == set(tasks.GLUE_TASKS)
    assert MAIN_METRIC == {"CoLA": "mcc", "SST-2": "acc", "MRPC": "acc_and_f1", "STS-B": "corr",
                           "QQP": "acc_and_f1", "MNLI": "acc", "QNLI": "acc", "RTE": "acc", "WNLI": "acc"}
    for name, spec in tasks.GLUE_TASKS.items():
        assert spec.main_metric == MAIN_METRIC[name]
        if spec.is_regression:
            result = compute_metrics(spec, rng.normal(size=8), rng.normal(size=8))
        else:
            result = compute_metrics(spec, rng.integers(0, spec.num_labels, 8), rng.integers(0, spec.num_labels, 8))
        assert spec.main_metric in result


def test_logits_to_predictions():
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]], dtype=np.float32)
    preds = logits_to_predictions(tasks.get_task("mnli"), logits)
    assert preds.tolist() == [1, 0] and preds.dtype == np.int64
    scores = logits_to_predictions(tasks.get_task("sts-b"), np.array([[4.5], [0.25]], dtype=np.float32))
    assert scores.tolist() == [4.5, 0.25]


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        compute_metrics(tasks.get_task("sst2"), [0, 1, 1], [0, 1])


def test_a_task_name_is_not_a_spec():
    with pytest.raises(TypeError, match="tasks.get_task"):
        compute_metrics("sst-2", [0], [0])


def test_metrics_imports_no_task_code():
    """No cycle: metrics needs no task code, tasks owns the main-metric table."""
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys; from tinybert.data import metrics; assert 'tinybert.data.tasks' not in sys.modules, 'metrics imported tasks'"
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
