"""finetune_teacher.py end to end on a tiny BERT and toy GLUE-format files (seconds)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

import finetune_teacher
from tinybert.models import modeling
from tinybert.training import trainer
from builders import sentences, write_toy_sst2, write_toy_stsb
from tinybert.data.tokenization import BertTokenizer


def run(model_dir: Path, data_dir: Path, out: Path, *extra: str, task: str = "SST-2") -> dict:
    return finetune_teacher.main([
        "--model_type", "bert", "--model_name_or_path", str(model_dir), "--task_name", task,
        "--data_dir", str(data_dir), "--max_seq_length", "16", "--batch_size", "16", "--learning_rate", "5e-3",
        "--max_steps", "60", "--logging_steps", "5", "--save_steps", "20", "--warmup_proportion", "0.1",
        "--output_dir", str(out), "--device", "cpu", *extra])


def test_finetunes_a_tiny_bert_and_keeps_a_loadable_best_model(tmp_path, tiny_bert):
    data = write_toy_sst2(tmp_path / "SST-2")
    out = tmp_path / "out"
    summary = run(tiny_bert, data, out)
    assert summary["main_metric"] == "acc" and summary["best_metric"] >= 0.85
    best = out / "best_model"
    for name in ("model_state.pdparams", "model_config.json", "config.json", "vocab.txt", "tokenizer_config.json",
                 "eval_results.json"):
        assert (best / name).is_file(), name
    assert json.loads((best / "config.json").read_text())["label2id"] == {"0": 0, "1": 1}
    assert json.loads((best / "model_config.json").read_text())["num_classes"] == 2

    # The saved teacher reloads and scores what the run recorded.
    model = modeling.BertForSequenceClassification.from_pretrained(best)
    tokenizer = BertTokenizer.from_pretrained(best)
    dev = sentences(48, 2)  # dev.tsv
    enc = tokenizer([s for s, _ in dev], max_seq_length=16)
    correct = 0
    for ids, types, (_, label) in zip(enc["input_ids"], enc["token_type_ids"], dev):
        logits = model(paddle.to_tensor([ids]), token_type_ids=paddle.to_tensor([types])).logits
        correct += int(logits.numpy().argmax() == label)
    recorded = json.loads((best / "eval_results.json").read_text())
    assert correct / len(dev) == pytest.approx(recorded["acc"])
    assert recorded["step"] == summary["best_step"]
    assert (out / "last" / trainer.STATE_FILE).is_file()


def test_resume_from_the_script(tmp_path, tiny_bert):
    data = write_toy_sst2(tmp_path / "SST-2", n_train=48)
    straight = run(tiny_bert, data, tmp_path / "a", "--max_steps", "8", "--save_steps", "4")
    run(tiny_bert, data, tmp_path / "b", "--max_steps", "4", "--save_steps", "4")
    # continuing a 4-step run to 8 steps changes its schedule, so compare the step count and log only
    resumed = run(tiny_bert, data, tmp_path / "b", "--max_steps", "8", "--save_steps", "4", "--resume")
    assert resumed["global_step"] == straight["global_step"] == 8
    log = [json.loads(line) for line in (tmp_path / "b" / trainer.LOG_FILE).read_text().splitlines()]
    assert [r["event"] for r in log if r.get("event") not in (None, "checkpoint")] == ["start", "end", "resume", "end"]
    # Checkpoints at epoch ends (3 steps an epoch) and each run's end; the end record says their cost.
    assert [r["step"] for r in log if r.get("event") == "checkpoint"] == [3, 4, 6, 8]
    assert log[-1]["checkpoints"] == 2 and log[-1]["checkpoint_seconds"] >= 0


def test_max_train_examples_trains_on_the_seeded_sample(tmp_path, tiny_bert):
    from tinybert.data import tasks

    data = write_toy_sst2(tmp_path / "SST-2", n_train=48)
    summary = run(tiny_bert, data, tmp_path / "out", "--max_train_examples", "20", "--max_steps", "2")
    log = [json.loads(line) for line in (tmp_path / "out" / trainer.LOG_FILE).read_text().splitlines()]
    start = next(r for r in log if r.get("event") == "start")
    assert start["num_examples"] == 20 and start["args"]["max_train_examples"] == 20
    assert summary["global_step"] == 2
    rows = list(range(48))
    assert tasks.sample_rows(rows, 20, 42) == sorted(tasks.sample_rows(rows, 20, 42)) != rows[:20]


def test_checkpoint_with_another_label_order_is_refused(tmp_path, tiny_bert, capsys):
    config = json.loads((tiny_bert / "config.json").read_text())
    config.update(label2id={"1": 0, "0": 1}, id2label={"0": "1", "1": "0"}, num_labels=2)
    (tiny_bert / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit) as exit_info:
        run(tiny_bert, write_toy_sst2(tmp_path / "SST-2"), tmp_path / "out")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "orders its labels [1, 0]" in err and err.count("\n") == 1


def test_non_empty_output_folder_is_refused_before_any_work(tmp_path, tiny_bert, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(SystemExit):
        run(tiny_bert, tmp_path / "no_such_data", out)
    assert "--overwrite_output_dir" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_regression_task_trains_one_output_with_mse(tmp_path, tiny_bert):
    summary = run(tiny_bert, write_toy_stsb(tmp_path / "STS-B"), tmp_path / "out", "--max_steps", "4",
                  "--save_steps", "4", task="sts-b")
    assert summary["main_metric"] == "corr" and {"pearson", "spearman"} <= set(summary["last_metrics"])
    config = json.loads((tmp_path / "out" / "best_model" / "model_config.json").read_text())
    assert config["num_classes"] == 1


class FixedLogits(paddle.nn.Layer):
    def __init__(self, logits):
        super().__init__()
        self.logits = paddle.to_tensor(logits)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        return modeling.ModelOutput(logits=self.logits)


def test_loss_is_cross_entropy_or_mse_as_numpy_computes_it():
    logits = np.array([[1.0, -2.0, 0.5], [0.1, 0.2, 3.0]], dtype="float32")
    labels = np.array([2, 0])
    batch = {"input_ids": paddle.zeros([2, 3], "int64"), "token_type_ids": paddle.zeros([2, 3], "int64"),
             "attention_mask": paddle.ones([2, 3], "int64"), "label": paddle.to_tensor(labels)}
    loss, _ = finetune_teacher.sequence_classification_loss(FixedLogits(logits), batch)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert float(loss) == pytest.approx(-log_softmax[[0, 1], labels].mean(), rel=1e-5)

    scores = np.array([[1.5], [4.0]], dtype="float32")
    batch["label"] = paddle.to_tensor(np.array([2.0, 3.0], dtype="float32"))
    loss, _ = finetune_teacher.sequence_classification_loss(FixedLogits(scores), batch)
    assert float(loss) == pytest.approx(((1.5 - 2.0) ** 2 + (4.0 - 3.0) ** 2) / 2, rel=1e-5)
