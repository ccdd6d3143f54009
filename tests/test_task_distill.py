"""Both TinyBERT stages on a tiny learnable toy task (GLUE SST-2 format) with a tiny teacher trained here.

Toy task: label 1 when the sentence holds a positive word, 0 when it holds a negative one.
Teacher: 4 layers x 32 wide, 4 heads. Students: 2 layers, 16 wide (fit_dense to 32) or 32 wide.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import paddle
import pytest

from tinybert.distillation import distill
from tinybert import errors
from tinybert.training import evaluation
from tinybert.data import features
from tinybert.models import modeling
import task_distill
from tinybert.data import tasks
from tinybert.training import trainer
from builders import PADDLENLP_PYTHON, batch_of, sentences, train_toy_teacher, write_toy_sst2, write_vocab
from tinybert.data.tokenization import BertTokenizer


TEACHER = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64,
               max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict:
    """The SST-2-format task folder and a teacher fine-tuned on it (saved like finetune_teacher.py)."""
    root = tmp_path_factory.mktemp("distill")
    data_dir = write_toy_sst2(root / "SST-2")
    teacher_dir = root / "teacher"
    teacher = train_toy_teacher(teacher_dir, sentences(96, 1), learning_rate=3e-3, max_seq_length=32, **TEACHER)
    tokenizer = BertTokenizer.from_pretrained(teacher_dir)
    spec = tasks.get_task("SST-2")
    dev = sentences(48, 2)
    dev_batch = batch_of(tokenizer, spec, dev)
    preds = teacher(dev_batch["input_ids"], dev_batch["token_type_ids"], dev_batch["attention_mask"]).logits
    acc = float((preds.numpy().argmax(-1) == np.array([y for _, y in dev])).mean())
    assert acc >= 0.9, f"fixture teacher too weak ({acc})"
    return {"root": root, "data_dir": data_dir, "teacher_dir": teacher_dir, "spec": spec,
            "tokenizer": tokenizer, "teacher_acc": acc}


def distill_args(toy: dict, output_dir: Path, *extra: str) -> list[str]:
    return ["--task_name", "SST-2", "--data_dir", str(toy["data_dir"]), "--teacher_path", str(toy["teacher_dir"]),
            "--max_seq_length", "32", "--batch_size", "16", "--logging_steps", "1", "--save_steps", "1000",
            "--output_dir", str(output_dir), "--device", "cpu", "--warmup_proportion", "0", *extra]


def read_log(output_dir: Path) -> list[dict]:
    lines = (output_dir / trainer.LOG_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def parse(toy: dict, *extra: str):
    """The DistillConfig of a command line (checked, stage and projection resolved)."""
    return task_distill.parse_args(distill_args(toy, toy["root"] / "unused", *extra)).distill


def models(toy: dict, *extra: str):
    args = parse(toy, *extra)
    teacher = distill.load_teacher(args.teacher_path, args.teacher_model_type, toy["spec"])
    student = distill.build_student(args.model_type, toy["spec"], teacher, toy["tokenizer"], args.model_name_or_path,
                                    args.student_config)
    return args, teacher, student


# -------------------------------------------------------------------------------------------- losses

def test_no_gradient_reaches_the_teacher_and_the_teacher_stops_at_the_deepest_mapped_layer(toy):
    _, teacher, student = models(toy, "--student_config", "num_hidden_layers=2,hidden_size=16,intermediate_size=32")
    calls = []
    for i, layer in enumerate(teacher.base.encoder.layers):
        layer.register_forward_post_hook(lambda layer, inp, out, i=i: calls.append(i))
    for name, model in (("teacher", teacher), ("student", student)):  # no pooler work in this stage
        model.base.pooler.register_forward_post_hook(lambda layer, inp, out, name=name: calls.append(name))
    projection = distill.fit_projection(student, teacher)
    assert projection == [student.tinybert.fit_dense] * 3  # one W for the embeddings and both layers
    loss_fn = distill.intermediate_loss_fn(teacher, [1, 2], projection, {"emb": 1, "hidden": 1, "attn": 1})
    batch = batch_of(toy["tokenizer"], toy["spec"], sentences(8, 5))
    loss, logs = loss_fn(student, batch)
    loss.backward()
    assert calls == [0, 1]  # teacher layers 3 and 4 never ran (bottom map g = 1, 2)
    assert set(logs) == {"loss_emb", "loss_hidden", "loss_attn"}
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in teacher.parameters())
    assert float(student.tinybert.fit_dense.weight.grad.abs().sum()) > 0
    assert float(student.tinybert.encoder.layers[0].self_attn.q_proj.weight.grad.abs().sum()) > 0
    assert student.classifier.weight.grad is None  # the classifier takes no part in stage 1


def test_equal_width_tinybert_student_is_projected_by_default(toy):
    """As the original TinyBERT and PaddleNLP: W_h also when student and teacher are both 32 wide."""
    args, teacher, student = models(toy, "--student_config", "num_hidden_layers=2", "--intermediate_distill")
    assert args.projection == "always" and student.config.hidden_size == teacher.config.hidden_size
    projection = distill.fit_projection(student, teacher, args.projection)
    assert projection == [student.tinybert.fit_dense] * 3
    weights = {"emb": 1, "hidden": 1, "attn": 1}
    batch = batch_of(toy["tokenizer"], toy["spec"], sentences(8, 5))
    student.eval()  # no dropout: the two losses differ only by the projection
    loss, logs = distill.intermediate_loss_fn(teacher, [2, 4], projection, weights)(student, batch)
    _, plain = distill.intermediate_loss_fn(teacher, [2, 4], None, weights)(student, batch)
    assert abs(logs["loss_hidden"] - plain["loss_hidden"]) > 1e-3 and abs(logs["loss_emb"] - plain["loss_emb"]) > 1e-3
    loss.backward()
    assert float(student.tinybert.fit_dense.weight.grad.abs().sum()) > 0
    trained = {id(p) for p in distill.trainable_parameters(student, "intermediate", projection)}
    assert id(student.tinybert.fit_dense.weight) in trained


def test_projection_when_narrower_restores_unprojected_equal_widths(toy):
    args, teacher, student = models(toy, "--student_config", "num_hidden_layers=2", "--projection", "when_narrower")
    assert distill.fit_projection(student, teacher, args.projection) is None
    trained = {id(p) for p in distill.trainable_parameters(student, "intermediate", None)}
    assert id(student.tinybert.fit_dense.weight) not in trained
    # a narrower student is still projected
    args, teacher, student = models(toy, "--student_config", "num_hidden_layers=2,hidden_size=16",
                                    "--projection", "when_narrower")
    assert distill.fit_projection(student, teacher, args.projection) == [student.tinybert.fit_dense] * 3


def test_bert_student_has_no_projection_at_equal_width_and_a_distillation_w_h_when_narrower(toy):
    args, teacher, student = models(toy, "--model_type", "bert", "--student_config", "num_hidden_layers=2")
    assert args.projection == "when_narrower" and not hasattr(student.base, "fit_dense")
    for mode in distill.PROJECTION_MODES:
        assert distill.fit_projection(student, teacher, mode) is None
    _, teacher, narrow = models(toy, "--model_type", "bert", "--student_config", "num_hidden_layers=2,hidden_size=16")
    projection = distill.fit_projection(narrow, teacher)  # no fit_dense of its own: W_h from the distillation
    assert isinstance(projection[0], distill.DistillProjection) and projection == [projection[0]] * 3
    assert projection[0].weight.shape == [16, 32]


def test_regression_prediction_stage_gradient_is_not_zero(toy):
    """STS-B: one output; soft cross-entropy over it would be constant, so MSE is used."""
    paddle.seed(1)
    config = modeling.BertConfig(vocab_size=toy["tokenizer"].vocab_size, num_labels=1, **TEACHER)
    teacher = modeling.BertForSequenceClassification(config)
    teacher.eval()
    student = modeling.TinyBertForSequenceClassification(modeling.BertConfig(
        **{**config.to_dict(), "num_hidden_layers": 2, "hidden_size": 16, "intermediate_size": 32, "fit_size": 32}))
    spec = tasks.get_task("STS-B")
    batch = batch_of(toy["tokenizer"], toy["spec"], sentences(8, 6))
    batch["label"] = paddle.rand([8]) * 5
    loss, _ = distill.prediction_loss_fn(teacher, 1.0, spec.is_regression)(student, batch)
    loss.backward()
    assert float(loss) > 0
    assert float(student.classifier.weight.grad.abs().sum()) > 0
    assert float(student.tinybert.encoder.layers[0].linear1.weight.grad.abs().sum()) > 0


# -------------------------------------------------------------------------------------------- students

def test_init_from_teacher_copies_embeddings_and_mapped_layers(toy):
    args, teacher, student = models(toy, "--student_config", "num_hidden_layers=2", "--init_from_teacher")
    distill.init_student_from_teacher(student, teacher, [2, 4])
    s, t = student.base, teacher.base
    np.testing.assert_array_equal(s.embeddings.word_embeddings.weight.numpy(),
                                  t.embeddings.word_embeddings.weight.numpy())
    for m, n in [(0, 1), (1, 3)]:  # student layers 1, 2 <- teacher layers 2, 4 (0-based 1, 3)
        for name, value in s.encoder.layers[m].state_dict().items():
            np.testing.assert_array_equal(value.numpy(), t.encoder.layers[n].state_dict()[name].numpy())
    assert student.config.label2id == {"0": 0, "1": 1} and student.config.fit_size == 32


def test_init_from_teacher_needs_the_teachers_width(toy):
    _, teacher, student = models(toy, "--student_config", "num_hidden_layers=2,hidden_size=16", "--init_from_teacher")
    with pytest.raises(errors.UserError, match="teacher's widths"):
        distill.init_student_from_teacher(student, teacher, [2, 4])


def test_student_from_a_general_tinybert_folder_and_from_a_config_file(toy, tmp_path):
    general = tmp_path / "general"
    cfg = modeling.BertConfig(vocab_size=toy["tokenizer"].vocab_size, hidden_size=16, num_hidden_layers=2,
                              num_attention_heads=4, intermediate_size=32, max_position_embeddings=64, fit_size=32)
    modeling.TinyBertModel(cfg).save_pretrained(general)  # PaddleNLP layout, no classifier
    toy["tokenizer"].save_pretrained(general)
    _, _, student = models(toy, "--model_name_or_path", str(general))
    assert isinstance(student, modeling.TinyBertForSequenceClassification)
    assert student.config.num_hidden_layers == 2 and student.config.num_labels == 2

    (tmp_path / "student.json").write_text(json.dumps({"num_hidden_layers": 3, "hidden_size": 16}))
    _, _, student = models(toy, "--student_config", str(tmp_path / "student.json"))
    assert (student.config.num_hidden_layers, student.config.hidden_size, student.config.fit_size) == (3, 16, 32)
    assert student.config.vocab_size == toy["tokenizer"].vocab_size  # the rest from the teacher

    other = tmp_path / "other_vocab"
    modeling.TinyBertModel(cfg).save_pretrained(other)
    write_vocab(other, ["zebra", "yak"])
    with pytest.raises(errors.UserError, match="differs from the teacher's vocabulary"):
        models(toy, "--model_name_or_path", str(other))


def test_saved_student_reloads_with_identical_logits(toy, tmp_path):
    _, _, student = models(toy, "--student_config", "num_hidden_layers=2,hidden_size=16,intermediate_size=32")
    student.eval()
    batch = batch_of(toy["tokenizer"], toy["spec"], sentences(6, 7))
    inputs = distill.model_inputs(batch)
    save = distill.make_save_model(toy["tokenizer"], {"stage": "prediction"})
    save(student, tmp_path / "s")
    reloaded = modeling.TinyBertForSequenceClassification.from_pretrained(tmp_path / "s")
    np.testing.assert_array_equal(student(**inputs).logits.numpy(), reloaded(**inputs).logits.numpy())
    np.testing.assert_array_equal(student.tinybert.fit_dense.weight.numpy(),
                                  reloaded.tinybert.fit_dense.weight.numpy())
    assert (tmp_path / "s" / "vocab.txt").is_file()
    assert json.loads((tmp_path / "s" / "config.json").read_text())["label2id"] == {"0": 0, "1": 1}


# -------------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("extra, message", [
    (["--student_config", "num_hidden_layers=2", "--layer_map", "1,2,3"], "has 3 entries"),
    (["--student_config", "num_hidden_layers=2", "--layer_map", "2,9"], "out of range"),
    (["--student_config", "num_hidden_layers=2,num_attention_heads=2", "--intermediate_distill"],
     "as many heads"),
    (["--student_config", "num_hidden_layers=2", "--intermediate_distill", "--stage", "prediction"], "contradict"),
    ([], "no student"),
    (["--student_config", "depth=2"], "key=value pairs"),
    (["--model_name_or_path", "x", "--init_from_teacher"], "needs --student_config"),
    (["--student_config", "num_hidden_layers=2", "--model_type", "bert", "--projection", "always"],
     "--projection always needs a student with fit_dense"),
])
def test_user_errors(toy, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as e:
        task_distill.main(distill_args(toy, tmp_path / "out", *extra))
    assert e.value.code == 2
    assert message in capsys.readouterr().err


# -------------------------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def stage1(toy) -> Path:
    """Intermediate stage: a random 2-layer, 16-wide student (fit_dense to the teacher's 32)."""
    out = toy["root"] / "stage1"
    task_distill.main(distill_args(toy, out, "--intermediate_distill", "--student_config",
                                   "num_hidden_layers=2,hidden_size=16,intermediate_size=32",
                                   "--learning_rate", "1e-2", "--num_train_epochs", "6"))
    return out


def test_intermediate_stage_loss_falls_and_saves_the_student_with_fit_dense(toy, stage1):
    steps = [r for r in read_log(stage1) if "loss" in r and "step" in r and "event" not in r]
    assert len(steps) == 36  # 96 examples / 16 = 6 steps x 6 epochs
    first, last = np.mean([r["loss"] for r in steps[:3]]), np.mean([r["loss"] for r in steps[-3:]])
    assert last < 0.8 * first, (first, last)  # about 0.5-0.65 over seeds
    assert {"loss_emb", "loss_hidden", "loss_attn"} <= set(steps[0])
    folder = stage1 / trainer.LAST_DIR
    state = paddle.load(str(folder / "model_state.pdparams"))
    assert list(state["tinybert.fit_dense.weight"].shape) == [16, 32]
    assert json.loads((folder / distill.DISTILL_INFO_FILE).read_text())["layer_map"] == [2, 4]
    assert (folder / "vocab.txt").is_file()


def test_prediction_stage_from_the_intermediate_student_beats_chance(toy, stage1, tmp_path, capsys):
    out = tmp_path / "stage2"
    summary = task_distill.main(distill_args(toy, out, "--model_name_or_path", str(stage1 / trainer.LAST_DIR),
                                             "--learning_rate", "1e-2", "--num_train_epochs", "6",
                                             "--save_steps", "6", "--T", "1"))
    assert summary["main_metric"] == "acc"
    assert summary["best_metric"] >= 0.75, summary  # chance is 0.5 (balanced dev set)
    assert summary["teacher_metrics"]["acc"] == pytest.approx(toy["teacher_acc"])
    best = out / trainer.BEST_DIR
    results = json.loads((best / trainer.EVAL_RESULTS_FILE).read_text())
    assert results["acc"] == summary["best_metric"]
    # the best checkpoint reloads and scores what was recorded
    reloaded = modeling.TinyBertForSequenceClassification.from_pretrained(best)
    dev = features.encode_examples(toy["tokenizer"], tasks.read_glue_examples(toy["data_dir"] / "dev.tsv", "SST-2"),
                                32, toy["spec"])
    logits = evaluation.predict_logits(reloaded, dev, 16, 0)
    assert float((logits.argmax(-1) == dev.labels).mean()) == pytest.approx(results["acc"])


def test_cached_teacher_logits_give_the_same_losses(toy, tmp_path):
    common = ["--student_config", "num_hidden_layers=2,hidden_size=16,intermediate_size=32,hidden_dropout_prob=0.1",
              "--max_steps", "5", "--learning_rate", "1e-2", "--T", "2", "--alpha", "0.5"]
    task_distill.main(distill_args(toy, tmp_path / "plain", *common))
    task_distill.main(distill_args(toy, tmp_path / "cached", *common, "--cache_teacher_logits"))
    plain = [r for r in read_log(tmp_path / "plain") if "loss_pred" in r]
    cached = [r for r in read_log(tmp_path / "cached") if "loss_pred" in r]
    assert len(plain) == len(cached) == 5
    assert len({round(r["loss"], 6) for r in plain}) > 1  # the weights moved: later steps check the trajectory
    for a, b in zip(plain, cached):
        for key in ("loss", "loss_pred", "loss_hard"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6)
    weights = [paddle.load(str(tmp_path / run / trainer.LAST_DIR / "model_state.pdparams")) for run in ("plain", "cached")]
    for name, value in weights[0].items():
        np.testing.assert_allclose(weights[1][name].numpy(), value.numpy(), rtol=1e-4, atol=1e-5)


def test_use_aug_trains_on_train_aug_tsv(toy, tmp_path):
    data_dir = write_toy_sst2(tmp_path / "SST-2")
    rows = ["sentence\tlabel"] + [f"{s}\t{y}" for s, y in sentences(40, 9)]
    (data_dir / "train_aug.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    args = distill_args(toy, tmp_path / "out", "--student_config", "num_hidden_layers=1", "--max_steps", "1",
                        "--use_aug")
    args[args.index("--data_dir") + 1] = str(data_dir)
    task_distill.main(args)
    assert read_log(tmp_path / "out")[0]["num_examples"] == 40


# -------------------------------------------------------------------------------------------- PaddleNLP v2

V2_DIR = Path(__file__).parent / "data" / "paddlenlp_tinybert_v2"
V2_REFERENCE = json.loads((V2_DIR.parent / "paddlenlp_tinybert_v2_reference.json").read_text())


def v2_logits(model) -> np.ndarray:
    model.eval()
    inputs = {k: paddle.to_tensor(np.array(v, dtype="int64")) for k, v in V2_REFERENCE["input"].items()}
    return model(**inputs).logits.numpy()


@pytest.fixture(scope="module")
def v2_stage1(toy) -> Path:
    """One intermediate step from PaddleNLP's v2-style folder (32 wide, as the teacher: equal widths)."""
    out = toy["root"] / "v2_stage1"
    task_distill.main(distill_args(toy, out, "--intermediate_distill", "--model_name_or_path", str(V2_DIR),
                                   "--max_steps", "1", "--learning_rate", "1e-3"))
    return out / trainer.LAST_DIR


def test_paddlenlp_v2_fit_denses_load_with_paddlenlps_logits(capsys):
    """Made by tests/data/make_tinybert_fit_denses.py with PaddleNLP 2.8.1: every weight is used here."""
    model = modeling.TinyBertForSequenceClassification.from_pretrained(V2_DIR)
    assert "unused weights" not in capsys.readouterr().err
    assert len(model.tinybert.fit_denses) == 3
    np.testing.assert_allclose(v2_logits(model), V2_REFERENCE["logits"], atol=1e-5)


def test_paddlenlp_v2_fit_denses_are_trained_and_saved_with_paddlenlps_keys(v2_stage1):
    before = modeling.checkpoints.load_state(V2_DIR / "model_state.pdparams")
    after = modeling.checkpoints.load_state(v2_stage1 / "model_state.pdparams")
    assert sorted(after) == sorted(before)  # "every weight used": PaddleNLP finds exactly what it saved
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert {f"tinybert.fit_denses.{i}.weight" for i in range(3)} <= changed  # W_0 (embeddings), W_1, W_2
    assert not {k for k in changed if k.startswith(("tinybert.fit_dense.", "tinybert.pooler.", "classifier."))}
    assert "tinybert.encoder.layers.1.linear1.weight" in changed
    reloaded = modeling.TinyBertForSequenceClassification.from_pretrained(v2_stage1)
    np.testing.assert_array_equal(reloaded.tinybert.fit_denses[0].weight.numpy(),
                                  after["tinybert.fit_denses.0.weight"])


def test_paddlenlp_loads_the_distilled_v2_folder_with_every_weight_used(v2_stage1):
    if not PADDLENLP_PYTHON.exists():
        pytest.skip(f"no PaddleNLP 2.8.1 scratch venv at {PADDLENLP_PYTHON} (set $PADDLENLP_PYTHON; see tests/data/make_tinybert_fit_denses.py)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([str(PADDLENLP_PYTHON), str(V2_DIR.parent / "make_tinybert_fit_denses.py"), "--check",
                          str(v2_stage1)], capture_output=True, text=True, env=env, timeout=300)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    report = json.loads(lines[-1][len("RESULT "):])
    assert (report["missing"], report["unexpected"], report["mismatched"]) == ([], [], [])
    assert report["num_fit_denses"] == 3
    ours = v2_logits(modeling.TinyBertForSequenceClassification.from_pretrained(v2_stage1))
    np.testing.assert_allclose(np.array(report["logits"]), ours, atol=1e-5)


# -------------------------------------------------------------------------------- --teacher_runtime, --pred_weight

def test_teacher_runtime_and_pred_weight_flags(toy):
    args = parse(toy, "--student_config", "num_hidden_layers=2")
    assert args.teacher_runtime == distill.DEFAULT_TEACHER_RUNTIME and args.pred_weight == 1.0
    args = parse(toy, "--student_config", "num_hidden_layers=2", "--teacher_runtime", "eager", "--pred_weight", "0",
                 "--alpha", "1")
    assert (args.teacher_runtime, args.pred_weight, args.alpha) == ("eager", 0.0, 1.0)
    # the intermediate stage has no L_pred: --pred_weight 0 alone is fine there
    assert parse(toy, "--student_config", "num_hidden_layers=2", "--intermediate_distill",
                 "--pred_weight", "0").pred_weight == 0


@pytest.mark.parametrize("extra, message", [
    (["--pred_weight", "-1"], "--pred_weight must be a number >= 0"),
    (["--pred_weight", "nan"], "--pred_weight must be a number >= 0"),
    (["--pred_weight", "0"], "--pred_weight 0 and --alpha 0 leave the prediction stage no loss"),
    (["--teacher_runtime", "jit"], "invalid choice: 'jit'"),
    (["--intermediate_distill", "--emb_weight", "0", "--hidden_weight", "0", "--attn_weight", "0"],
     "the intermediate stage has nothing to distil"),
])
def test_teacher_runtime_and_pred_weight_user_errors(toy, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as e:
        task_distill.main(distill_args(toy, tmp_path / "out", "--student_config", "num_hidden_layers=2", *extra))
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_pred_weight_scales_l_pred_and_zero_leaves_the_label_loss(toy):
    _, teacher, student = models(toy, "--student_config", "num_hidden_layers=2,hidden_size=16,intermediate_size=32")
    student.eval()
    rows = sentences(8, 4)
    batch = batch_of(toy["tokenizer"], toy["spec"], rows)
    labels = np.array([y for _, y in rows])
    batch["label"] = paddle.to_tensor(labels)
    inputs = distill.model_inputs(batch)
    s = student(**inputs).logits.numpy().astype("float64")
    t = teacher(**inputs).logits.numpy().astype("float64")

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    soft = float(-(np.exp(log_softmax(t)) * log_softmax(s)).sum(-1).mean())  # T = 1
    hard = float(-log_softmax(s)[np.arange(len(labels)), labels].mean())

    loss, logs = distill.prediction_loss_fn(teacher, 1.0, False, alpha=0.0, pred_weight=0.25)(student, batch)
    assert float(loss) == pytest.approx(0.25 * soft, rel=1e-5)
    assert float(logs["loss_pred"]) == pytest.approx(soft, rel=1e-5)  # logged unweighted
    loss, logs = distill.prediction_loss_fn(teacher, 1.0, False, alpha=1.0, pred_weight=0.0)(student, batch)
    assert float(loss) == pytest.approx(hard, rel=1e-5)  # "w/o Pred": the labels only
    assert float(logs["loss_hard"]) == pytest.approx(hard, rel=1e-5)


def test_intermediate_stage_logs_the_same_losses_with_every_teacher_runtime(toy, tmp_path):
    common = ["--intermediate_distill", "--student_config", "num_hidden_layers=2,hidden_size=16,intermediate_size=32",
              "--max_steps", "3", "--learning_rate", "1e-2"]
    runs = {}
    for runtime in distill.TEACHER_RUNTIMES:
        task_distill.main(distill_args(toy, tmp_path / runtime, *common, "--teacher_runtime", runtime))
        runs[runtime] = [r for r in read_log(tmp_path / runtime) if "loss_attn" in r]
    assert len(runs["eager"]) == 3 and len({round(r["loss"], 6) for r in runs["eager"]}) > 1
    for runtime in ("static", "inference"):
        assert len(runs[runtime]) == 3
        for a, b in zip(runs["eager"], runs[runtime]):
            for key in ("loss", "loss_emb", "loss_hidden", "loss_attn"):
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (runtime, key)


def test_prediction_stage_without_l_pred_records_the_teachers_metrics(toy, tmp_path):
    out = tmp_path / "wo_pred"
    summary = task_distill.main(distill_args(toy, out, "--student_config", "num_hidden_layers=1", "--max_steps", "2",
                                             "--pred_weight", "0", "--alpha", "1"))
    steps = [r for r in read_log(out) if "loss_hard" in r]
    assert len(steps) == 2
    for r in steps:  # the total is the label loss alone
        assert r["loss"] == pytest.approx(r["loss_hard"], rel=1e-5)
    start = next(r for r in read_log(out) if r.get("event") == "start")
    assert start["reference_metrics"] == pytest.approx(summary["teacher_metrics"])
    assert json.loads((out / trainer.LAST_DIR / distill.DISTILL_INFO_FILE).read_text())["pred_weight"] == 0
