"""The shared training loop, on a tiny bag-of-embeddings classifier (no BERT needed).

Toy task: label 1 when token 3 occurs in the sequence. Learnable in a few dozen steps.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from tinybert.models import checkpoints
from tinybert import errors
from tinybert.training import evaluation
from tinybert.data import features
from tinybert.training import trainer, trainstate


VOCAB = 12


class ToyClassifier(paddle.nn.Layer):
    def __init__(self, hidden: int = 16, dropout: float = 0.0):
        super().__init__()
        self.embed = paddle.nn.Embedding(VOCAB, hidden)
        self.norm = paddle.nn.LayerNorm(hidden)
        self.dropout = paddle.nn.Dropout(dropout)
        self.classifier = paddle.nn.Linear(hidden, 2)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        mask = attention_mask.astype("float32").unsqueeze(-1)
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        return self.classifier(self.dropout(self.norm(pooled)))


class ToyData(list):
    """Variable-length items with input_ids and label; `.lengths` like features.EncodedDataset."""

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(item["input_ids"]) for item in self])


def toy_data(n: int, seed: int = 0) -> ToyData:
    rng = np.random.default_rng(seed)
    items = ToyData()
    for _ in range(n):
        ids = rng.integers(4, VOCAB, size=int(rng.integers(3, 9)))
        label = int(rng.random() < 0.5)
        if label:
            ids[rng.integers(len(ids))] = 3
        items.append({"input_ids": ids.astype("int64"), "label": np.int64(label)})
    return items


def toy_loss(model, batch):
    logits = model(batch["input_ids"], attention_mask=batch["attention_mask"])
    loss = F.cross_entropy(logits, batch["label"])
    acc = float((logits.argmax(-1) == batch["label"]).astype("float32").mean())
    return loss, {"train_acc": acc}


def toy_evaluate(dev):
    def evaluate(model):
        logits = evaluation.predict_logits(model, dev, batch_size=16)
        labels = np.array([item["label"] for item in dev])
        return {"acc": float((logits.argmax(-1) == labels).mean()), "neg_loss": 0.0}
    evaluate.main_metric = "acc"
    return evaluate


def make_args(output_dir: Path, **overrides) -> trainer.TrainConfig:
    defaults = dict(learning_rate=0.05, batch_size=8, max_steps=12, save_steps=4, logging_steps=2,
                    warmup_proportion=0.1, seed=7, weight_decay=0.01, max_grad_norm=1.0,
                    checkpoint_minutes=0, checkpoint_budget=0)  # a checkpoint at every save step
    return trainer.TrainConfig(output_dir=str(output_dir), **{**defaults, **overrides})


def new_model(dropout: float = 0.0, seed: int = 0) -> ToyClassifier:
    trainer.set_seed(seed)
    return ToyClassifier(dropout=dropout)


def weights(model) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def read_log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / trainer.LOG_FILE).read_text().splitlines()]


# ------------------------------------------------------------------------------------------------ tests

def test_loss_decreases_best_and_last_written_and_loadable(tmp_path, capsys):
    train, dev = toy_data(96, seed=1), toy_data(40, seed=2)
    model = new_model()
    out = tmp_path / "run"
    summary = trainer.train(model, train, toy_loss, make_args(out, max_steps=36, save_steps=12),
                            evaluate=toy_evaluate(dev))
    log = read_log(out)
    steps = [r for r in log if "loss" in r and "step" in r and "eval" not in r and "event" not in r]
    assert [r["step"] for r in steps] == list(range(2, 37, 2))  # every --logging_steps
    assert {"lr", "epoch", "train_acc"} <= set(steps[0])
    assert np.mean([r["loss"] for r in steps[-3:]]) < 0.5 * steps[0]["loss"]
    evals = [r for r in log if "eval" in r]
    assert [r["step"] for r in evals] == [12, 24, 36]
    assert summary["best_metric"] >= 0.85 and summary["main_metric"] == "acc"
    assert summary["best_metric"] == max(r["eval"]["acc"] for r in evals)

    best = json.loads((out / "best_model" / trainer.EVAL_RESULTS_FILE).read_text())
    assert best["step"] == summary["best_step"] and best["acc"] == summary["best_metric"]
    state = json.loads((out / "last" / trainer.STATE_FILE).read_text())
    assert state["global_step"] == 36
    for folder in ("last", "best_model"):  # the run's settings travel with each model (export reads them)
        record = json.loads((out / folder / checkpoints.TRAINING_ARGS).read_text())
        assert record["batch_size"] == 8 and record["max_steps"] == 36
    # last holds the final weights; best_model reloads to its recorded accuracy.
    reloaded = new_model(seed=99)
    checkpoints.load_model_weights(reloaded, out / "last")
    for k, v in weights(model).items():
        np.testing.assert_array_equal(weights(reloaded)[k], v)
    checkpoints.load_model_weights(reloaded, out / "best_model")
    assert toy_evaluate(dev)(reloaded)["acc"] == pytest.approx(best["acc"])
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp folders left
    printed = capsys.readouterr().out
    assert f"best acc {summary['best_metric']:.4f} at step {summary['best_step']}" in printed.splitlines()[-1]


def test_learning_rate_schedule_warmup_then_linear_decay():
    got = [trainer.linear_schedule_factor(s, 2, 10) for s in range(11)]
    assert got == pytest.approx([0, 0.5, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0])


def test_logged_learning_rate_follows_schedule(tmp_path):
    out = tmp_path / "run"
    trainer.train(new_model(), toy_data(64), toy_loss,
                  make_args(out, max_steps=10, logging_steps=1, warmup_proportion=0.2, learning_rate=0.1))
    lrs = [r["lr"] for r in read_log(out) if "lr" in r]
    # lr logged after step s is the one step s+1 uses: factor(s) with 2 warm-up steps of 10
    assert lrs == pytest.approx([0.1 * trainer.linear_schedule_factor(s, 2, 10) for s in range(1, 11)])


def test_one_adamw_step_matches_numpy_with_clipping_and_no_decay_on_bias_and_layernorm(tmp_path):
    """One step, warm-up 0: w <- w (1 - lr wd) - lr m^/(sqrt(v^) + eps) on clipped gradients."""
    data = toy_data(8)
    model = new_model()
    before = weights(model)
    batch = trainer.to_tensors(features.collate(list(data)))
    loss, _ = toy_loss(model, batch)
    loss.backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    model.clear_gradients()
    lr, wd, eps, clip = 0.1, 0.3, 1e-6, 0.05
    trainer.train(model, data, toy_loss, make_args(tmp_path / "run", max_steps=1, warmup_proportion=0.0,
                                                   learning_rate=lr, weight_decay=wd, adam_epsilon=eps,
                                                   max_grad_norm=clip, batch_size=8))
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads.values()))
    assert norm > clip  # the clip is active
    b1, b2 = 0.9, 0.999
    after = weights(model)
    for name, w in before.items():
        g = grads[name] * clip / norm
        m_hat, v_hat = (1 - b1) * g / (1 - b1), (1 - b2) * g ** 2 / (1 - b2)
        decay = 0.0 if name.endswith("bias") or name.startswith("norm.") else wd
        expected = w * (1 - lr * decay) - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(after[name], expected, rtol=1e-4, atol=1e-6, err_msg=name)


def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
    data = toy_data(48)
    a, b = new_model(), new_model()
    trainer.train(a, data, toy_loss, make_args(tmp_path / "a", batch_size=16, max_steps=3))
    trainer.train(b, data, toy_loss, make_args(tmp_path / "b", batch_size=8, gradient_accumulation_steps=2,
                                               max_steps=3))
    for k, v in weights(a).items():
        np.testing.assert_allclose(weights(b)[k], v, rtol=1e-5, atol=1e-6)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("grouped", [False, True])
def test_resume_ends_with_the_same_weights_as_a_straight_run(tmp_path, grouped):
    train, dev = toy_data(60, seed=3), toy_data(20, seed=4)
    kw = dict(max_steps=12, save_steps=4, gradient_accumulation_steps=2, batch_size=6,  # 5 steps/epoch
              group_by_length=grouped)
    straight = new_model(dropout=0.2)
    trainer.train(straight, train, toy_loss, make_args(tmp_path / "straight", **kw), evaluate=toy_evaluate(dev))

    calls = {"n": 0}

    def crashing_loss(model, batch):
        calls["n"] += 1
        if calls["n"] > 2 * 10:  # dies during step 11; last was saved at step 10, the end of epoch 2
            raise Interrupt()
        return toy_loss(model, batch)

    out = tmp_path / "interrupted"
    with pytest.raises(Interrupt):
        trainer.train(new_model(dropout=0.2), train, crashing_loss, make_args(out, **kw),
                      evaluate=toy_evaluate(dev))
    assert json.loads((out / "last" / trainer.STATE_FILE).read_text())["global_step"] == 10

    resumed = new_model(dropout=0.2, seed=123)  # different init: everything must come from `last`
    summary = trainer.train(resumed, train, toy_loss, make_args(out, resume=True, **kw),
                            evaluate=toy_evaluate(dev))
    assert summary["global_step"] == 12
    for k, v in weights(straight).items():
        np.testing.assert_allclose(weights(resumed)[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    assert any(r.get("event") == "resume" and r["step"] == 10 for r in read_log(out))


def test_resume_refuses_a_different_data_order(tmp_path):
    out = tmp_path / "run"
    trainer.train(new_model(), toy_data(32), toy_loss, make_args(out, max_steps=4, save_steps=2))
    with pytest.raises(errors.UserError, match="batch_size 8 -> 4"):
        trainer.train(new_model(), toy_data(32), toy_loss, make_args(out, max_steps=4, batch_size=4, resume=True))
    with pytest.raises(errors.UserError, match="group_by_length False -> True"):
        trainer.train(new_model(), toy_data(32), toy_loss, make_args(out, max_steps=4, group_by_length=True,
                                                                     resume=True))


def test_same_seed_same_result(tmp_path):
    train, dev = toy_data(48), toy_data(16, seed=5)
    runs = []
    for name in ("a", "b"):
        model = new_model(dropout=0.3)
        summary = trainer.train(model, train, toy_loss, make_args(tmp_path / name, max_steps=8),
                                evaluate=toy_evaluate(dev))
        losses = [r["loss"] for r in read_log(tmp_path / name) if "loss" in r and "event" not in r]
        runs.append((summary["best_metrics"], losses, weights(model)))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    for k in runs[0][2]:
        np.testing.assert_array_equal(runs[0][2][k], runs[1][2][k])


def test_failure_while_saving_keeps_the_previous_checkpoint(tmp_path):
    out = tmp_path / "run"
    saves = {"n": 0}

    def flaky_save(model, folder):
        saves["n"] += 1
        paddle.save(model.state_dict(), str(folder / "model_state.pdparams"))
        if saves["n"] == 2:
            (folder / "half_written.bin").write_bytes(b"\0" * 10)
            raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        trainer.train(new_model(), toy_data(32), toy_loss, make_args(out, max_steps=6, save_steps=2),
                      save_model=flaky_save)
    last = out / "last"
    assert json.loads((last / trainer.STATE_FILE).read_text())["global_step"] == 2
    assert not (last / "half_written.bin").exists()
    assert sorted(p.name for p in out.iterdir()) == ["last", checkpoints.OUTPUT_MARK, trainer.LOG_FILE, trainer.VISUALDL_DIR]
    checkpoints.load_model_weights(new_model(), last)

    # A crash between the two renames of a save leaves only '.last.old': resume puts it back.
    last.rename(out / ".last.old")
    summary = trainer.train(new_model(), toy_data(32), toy_loss, make_args(out, max_steps=6, save_steps=2,
                                                                           resume=True))
    assert summary["global_step"] == 6 and (last / trainer.STATE_FILE).exists()


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    calls = {"n": 0}

    def exploding_loss(model, batch):
        calls["n"] += 1
        loss, logs = toy_loss(model, batch)
        return (loss * float("nan") if calls["n"] == 5 else loss), logs

    with pytest.raises(trainer.TrainingDiverged, match=r"loss is nan at step 5 \(losses are read every --logging_steps: steps 5-6\);.*last good checkpoint .*step 4"):
        trainer.train(new_model(), toy_data(64), exploding_loss, make_args(out, max_steps=10, save_steps=2))
    assert json.loads((out / "last" / trainer.STATE_FILE).read_text())["global_step"] == 4
    model = new_model()
    checkpoints.load_model_weights(model, out / "last")
    assert all(np.isfinite(v).all() for v in weights(model).values())
    assert read_log(out)[-1]["event"] == "stop" and read_log(out)[-1]["step"] == 5


def test_output_folder_protection(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = make_args(out, max_steps=2, save_steps=2)
    with pytest.raises(errors.UserError, match="not empty.*--overwrite_output_dir"):
        trainer.train(new_model(), toy_data(16), toy_loss, args)
    with pytest.raises(errors.UserError, match="--resume: no saved run"):
        trainer.train(new_model(), toy_data(16), toy_loss, make_args(out, max_steps=2, resume=True))
    with pytest.raises(errors.UserError, match="contradict"):
        trainer.train(new_model(), toy_data(16), toy_loss, make_args(out, resume=True, overwrite_output_dir=True))
    # --overwrite_output_dir replaces only a folder this project wrote: the user's folder is refused.
    with pytest.raises(errors.UserError, match="replaces only a folder this project wrote"):
        trainer.train(new_model(), toy_data(16), toy_loss,
                      make_args(out, max_steps=2, save_steps=2, overwrite_output_dir=True))
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # In a folder of ours an old best_model (of another run) is removed, the user's own files stay.
    checkpoints.mark_output(out, "trainer.py")
    (out / "best_model").mkdir()
    (out / "best_model" / "eval_results.json").write_text("{}")
    summary = trainer.train(new_model(), toy_data(16), toy_loss,
                            make_args(out, max_steps=2, save_steps=2, overwrite_output_dir=True))
    assert summary["global_step"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["last", "notes.txt", checkpoints.OUTPUT_MARK, trainer.LOG_FILE,
                                                 trainer.VISUALDL_DIR]


def test_amp_on_cpu_says_once_it_has_no_effect(tmp_path, capsys):
    if paddle.get_device().startswith("gpu"):
        pytest.skip("CPU behaviour")
    trainer.train(new_model(), toy_data(16), toy_loss, make_args(tmp_path / "run", max_steps=3, amp=True))
    assert capsys.readouterr().out.count("--amp has no effect on CPU") == 1


def test_predict_logits_keeps_the_dataset_order():
    data = toy_data(23)
    model = new_model()
    model.eval()
    got = evaluation.predict_logits(model, data, batch_size=5)
    for i in (0, 7, 22):
        batch = trainer.to_tensors(features.collate([data[i]]))
        np.testing.assert_allclose(got[i], model(**{k: batch[k] for k in ("input_ids", "attention_mask")})
                                   .numpy()[0], rtol=1e-5, atol=1e-6)


def test_bad_settings_are_user_errors(tmp_path):
    with pytest.raises(errors.UserError, match="--batch_size must be at least 1"):
        trainer.train(new_model(), toy_data(8), toy_loss, make_args(tmp_path / "r", batch_size=0))
    with pytest.raises(errors.UserError, match="nothing to train"):
        trainer.train(new_model(), toy_data(8), toy_loss, make_args(tmp_path / "r", max_steps=-1,
                                                                    num_train_epochs=0))


DIST_SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
import numpy as np
import paddle
from tinybert.training import evaluation
from tinybert.training import trainer, trainstate
from test_trainer import make_args, new_model, toy_data, toy_evaluate, toy_loss, weights
from pathlib import Path
out = Path({out!r})
model = new_model()
evaluate = toy_evaluate(toy_data(21, seed=9))
summary = trainer.train(model, toy_data(20), toy_loss,
                        make_args(out / "run", batch_size=4, max_steps=3, save_steps=3), evaluate=evaluate)
logits = evaluation.predict_logits(model, toy_data(21, seed=9), batch_size=4)
rank = trainer.rank()
np.savez(out / f"rank{{rank}}.npz", logits=logits, world=trainer.world_size(),
         best=summary["best_metric"], **weights(model))
grouped = new_model()  # length-grouped batches with accumulation: each process's slice of the same batches
trainer.train(grouped, toy_data(40), toy_loss, make_args(out / "grouped", batch_size=2, max_steps=4, save_steps=4,
              group_by_length=True, gradient_accumulation_steps=2))
np.savez(out / f"grouped{{rank}}.npz", **weights(grouped))
"""


def test_two_processes_make_the_update_of_one_process_on_the_combined_batch(tmp_path):
    """paddle.distributed.launch, 2 CPU processes (gloo) x batch 4 == 1 process x batch 8.

    20 examples: global batches of 8, 8 and 4 (the last split 2 + 2); the dev set of 21 splits 11 + 10.
    """
    tests = Path(__file__).resolve().parent
    script = tmp_path / "dist_train.py"
    script.write_text(textwrap.dedent(DIST_SCRIPT.format(root=str(tests.parent), tests=str(tests),
                                                         out=str(tmp_path))))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PADDLE_", "FLAGS_selected"))}
    proc = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
                           "--log_dir", str(tmp_path / "logs"), str(script)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted((tmp_path / "logs").glob("*")))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + logs

    one = new_model()
    dev = toy_data(21, seed=9)
    summary = trainer.train(one, toy_data(20), toy_loss,
                            make_args(tmp_path / "single", batch_size=8, max_steps=3, save_steps=3),
                            evaluate=toy_evaluate(dev))
    expected_logits = evaluation.predict_logits(one, dev, batch_size=4)
    for rank in (0, 1):
        got = np.load(tmp_path / f"rank{rank}.npz")
        assert int(got["world"]) == 2
        for k, v in weights(one).items():
            np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
        # Each process predicted half of the dev set; both hold all 21 rows, in order.
        np.testing.assert_allclose(got["logits"], expected_logits, rtol=1e-5, atol=1e-5)
        assert float(got["best"]) == pytest.approx(summary["best_metric"])
    assert (tmp_path / "run" / "last").is_dir()  # written by rank 0
    grouped = new_model()
    trainer.train(grouped, toy_data(40), toy_loss, make_args(tmp_path / "grouped1", batch_size=4, max_steps=4,
                                                             save_steps=4, group_by_length=True,
                                                             gradient_accumulation_steps=2))
    for rank in (0, 1):
        got = np.load(tmp_path / f"grouped{rank}.npz")
        for k, v in weights(grouped).items():
            np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-6, err_msg=f"grouped {k}")


def test_amp_code_path_runs_and_resumes(tmp_path, monkeypatch):
    """The GPU AMP path (auto_cast + float16 GradScaler) end to end; on CPU paddle makes both no-ops."""
    monkeypatch.setattr(trainer, "amp_setting", lambda config: "float16")
    out = tmp_path / "run"
    trainer.train(new_model(), toy_data(32), toy_loss, make_args(out, max_steps=4, save_steps=2))
    assert json.loads((out / "last" / trainstate.OPTIMIZER_JSON).read_text())["scaler"] is not None
    summary = trainer.train(new_model(), toy_data(32), toy_loss, make_args(out, max_steps=6, save_steps=2,
                                                                           resume=True))
    assert summary["global_step"] == 6 and math.isfinite(summary["train_loss"])


def test_extra_parameters_outside_the_model_are_trained_checkpointed_and_resumed(tmp_path):
    """`parameters` may hold tensors the model does not own (e.g. a projection a stage adds)."""
    data = toy_data(32)

    def run(out, crash_after=None, resume=False):
        model = new_model()
        scale = paddle.create_parameter([2], "float32", default_initializer=paddle.nn.initializer.Constant(1.0))
        calls = {"n": 0}

        def loss_fn(model, batch):
            calls["n"] += 1
            if crash_after is not None and calls["n"] > crash_after:
                raise Interrupt()
            logits = model(batch["input_ids"], attention_mask=batch["attention_mask"]) * scale
            return F.cross_entropy(logits, batch["label"]), {}

        trainer.train(model, data, loss_fn, make_args(out, max_steps=6, save_steps=3, resume=resume),
                      parameters=list(model.parameters()) + [scale])
        return model, scale

    model, scale = run(tmp_path / "straight")
    assert not np.allclose(scale.numpy(), 1.0)
    with pytest.raises(Interrupt):
        run(tmp_path / "b", crash_after=4)  # saved at step 3, dies in step 5
    resumed, resumed_scale = run(tmp_path / "b", resume=True)  # scale restarts at 1.0 unless restored
    np.testing.assert_allclose(resumed_scale.numpy(), scale.numpy(), rtol=1e-5, atol=1e-6)
    for k, v in weights(model).items():
        np.testing.assert_allclose(weights(resumed)[k], v, rtol=1e-5, atol=1e-6)


def test_checkpoint_cadence_follows_minutes_budget_and_epoch_ends(tmp_path):
    """--save_steps evaluates; last/ is written only when --checkpoint_minutes have passed (or at an epoch's
    end, or at the end), and each write is a log record; the end record sums their cost."""
    out = tmp_path / "run"
    trainer.train(new_model(), toy_data(32), toy_loss,
                  make_args(out, max_steps=-1, num_train_epochs=3, save_steps=1, checkpoint_minutes=60,
                            checkpoint_budget=0.02), evaluate=toy_evaluate(toy_data(8)))
    log = read_log(out)
    assert [r["step"] for r in log if "eval" in r] == list(range(1, 13))  # 32 examples / batch 8, 3 epochs
    written = [r for r in log if r.get("event") == "checkpoint"]
    assert [r["step"] for r in written][-1] == 12 and len(written) < 12 and {4, 8} >= {
        r["step"] for r in written[:-1]}  # never before an epoch's end: 60 minutes have not passed
    assert all(r["seconds"] >= 0 for r in written)
    assert log[-1]["checkpoints"] == len(written)
    assert log[-1]["checkpoint_seconds"] == pytest.approx(sum(r["seconds"] for r in written), abs=0.01)

def test_a_nan_metric_is_never_best_and_never_blocks_a_later_best(tmp_path):
    """STS-B's first evaluation can be NaN (constant predictions): it must not become the best, also not
    after --resume (a NaN saved by an older version included)."""
    values = iter([float("nan"), 0.5, float("nan"), 0.7])

    def evaluate(model):
        return {"corr": next(values)}
    evaluate.main_metric = "corr"

    out = tmp_path / "run"
    summary = trainer.train(new_model(), toy_data(32), toy_loss, make_args(out, max_steps=4, save_steps=2),
                            evaluate=evaluate)
    assert summary["best_metric"] == 0.5 and summary["best_step"] == 4
    state = json.loads((out / "last" / trainer.STATE_FILE).read_text())
    state.update(best_metric=float("nan"), best_step=2)  # what an older version could have saved
    (out / "last" / trainer.STATE_FILE).write_text(json.dumps(state))
    (out / "best_model" / trainer.EVAL_RESULTS_FILE).write_text(
        json.dumps({"step": 2, "main_metric": "corr", "corr": float("nan")}))
    summary = trainer.train(new_model(), toy_data(32), toy_loss,
                            make_args(out, max_steps=8, save_steps=2, resume=True), evaluate=evaluate)
    assert summary["best_metric"] == 0.7 and summary["best_step"] == 8


def test_defaults_are_paddlenlps():
    """PaddleNLP's GLUE fine-tuning and TinyBERT example: AdamW eps 1e-6, no weight decay, no clipping,
    10% warm-up, logging and evaluation every 100 steps."""
    d = trainer.TrainConfig(output_dir="x")
    assert (d.adam_epsilon, d.weight_decay, d.max_grad_norm, d.warmup_proportion) == (1e-6, 0.0, 0.0, 0.1)
    assert (d.logging_steps, d.save_steps, d.learning_rate) == (100, 100, 1e-4)


def test_a_run_reads_the_device_only_at_logging_steps(tmp_path, monkeypatch):
    reads = []
    original = trainer.LossWindow.read
    monkeypatch.setattr(trainer.LossWindow, "read",
                        lambda self, last_step: reads.append(len(self.values)) or original(self, last_step))

    def tensor_loss(model, batch):  # logs as tensors, as the distillation losses return them
        logits = model(batch["input_ids"], attention_mask=batch["attention_mask"])
        return F.cross_entropy(logits, batch["label"]), {"mean_logit": logits.mean()}

    trainer.train(new_model(), toy_data(64), tensor_loss,
                  make_args(tmp_path / "run", max_steps=12, save_steps=12, logging_steps=4))
    assert reads == [4, 4, 4]
    steps = [r for r in read_log(tmp_path / "run") if "loss" in r and "step" in r]
    assert [r["step"] for r in steps] == [4, 8, 12]
    assert all(r["examples_per_s"] > 0 and math.isfinite(r["mean_logit"]) for r in steps)
    # A checkpoint between logging steps reads the unlogged steps first (a NaN there stops the run before
    # the checkpoint), and the logging step then still reports its whole window.
    reads.clear()
    trainer.train(new_model(), toy_data(64), tensor_loss,
                  make_args(tmp_path / "run2", max_steps=12, save_steps=6, logging_steps=4))
    assert reads == [4, 2, 4, 4]
    logged = [r for r in read_log(tmp_path / "run2") if "loss" in r and "step" in r]
    assert [r["step"] for r in logged] == [4, 8, 12] and all(r["examples_per_s"] > 0 for r in logged)


def test_a_run_that_stopped_before_its_first_resumable_checkpoint_does_not_block_its_rerun(tmp_path):
    """Evaluated (a best_model written) but stopped by a NaN before any last/: nothing can be resumed, so the
    corrected command runs in the same folder without --overwrite_output_dir."""
    out = tmp_path / "run"

    def nan_at_step_2(model, batch, calls={"n": 0}):
        calls["n"] += 1
        loss, logs = toy_loss(model, batch)
        return (loss * float("nan") if calls["n"] == 2 else loss), logs

    with pytest.raises(trainer.TrainingDiverged, match="no resumable checkpoint had been saved yet"):
        trainer.train(new_model(), toy_data(32), nan_at_step_2,
                      make_args(out, max_steps=4, save_steps=1, checkpoint_minutes=60),
                      evaluate=toy_evaluate(toy_data(8)))
    assert (out / "best_model").is_dir() and not (out / "last").exists()
    summary = trainer.train(new_model(), toy_data(32), toy_loss, make_args(out, max_steps=4, save_steps=2),
                            evaluate=toy_evaluate(toy_data(8)))
    assert summary["global_step"] == 4
    assert [r["event"] for r in read_log(out) if "event" in r][0] == "start"  # the failed run's log is gone


def test_visualdl_records_by_default_and_none_with_logging_dir_off(tmp_path):
    """Every training script's run writes VisualDL scalars (losses, lr, throughput, dev metric) beside its log."""
    from visualdl import LogReader

    out = tmp_path / "run"
    trainer.train(new_model(), toy_data(32), toy_loss, make_args(out, max_steps=4, save_steps=2),
                  evaluate=toy_evaluate(toy_data(16, seed=3)), reference_metrics={"acc": 0.9})
    files = list((out / trainer.VISUALDL_DIR).glob("*vdlrecords*"))
    assert len(files) == 1
    reader = LogReader(file_path=str(files[0]))
    tags = set(reader.get_tags()["scalar"])
    assert {"train/loss", "train/lr", "train/examples_per_s", "train/train_acc", "eval/acc", "reference/acc"} <= tags
    logged = [r for r in read_log(out) if "loss" in r and "step" in r]
    assert [s.id for s in reader.get_data("scalar", "train/loss")] == [r["step"] for r in logged]
    assert [s.value for s in reader.get_data("scalar", "train/loss")] == pytest.approx([r["loss"] for r in logged])
    quiet = tmp_path / "quiet"
    trainer.train(new_model(), toy_data(32), toy_loss, make_args(quiet, max_steps=2, save_steps=2, visualdl=False))
    assert not (quiet / trainer.VISUALDL_DIR).exists()
