"""ablation.py end to end on a tiny SST-2-format task: a 4-layer, 16-wide teacher trained here, a 2-layer
student initialised from it, tiny GloVe vectors for the augmentation, three steps per stage, one seed."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import paddle
import pytest

import ablation
from tinybert.training import evaluation
from tinybert.data import features
from tinybert.models import modeling
from tinybert.data import tasks
from tinybert.training import trainer
from builders import (FILLER, NEGATIVE, POSITIVE, run_main, sentences, train_toy_teacher, write_toy_sst2,
                      write_vectors, write_vocab)
from tinybert.data.tokenization import BertTokenizer

SMALL = dict(hidden_size=16, num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def dev_examples(data_dir: Path) -> list[tasks.Example]:
    return tasks.read_glue_examples(data_dir / "dev.tsv", "SST-2")


def accuracy(model_dir: Path, data_dir: Path) -> float:
    """Dev accuracy of a saved classifier, computed here (argmax of its logits against the labels)."""
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    model = modeling.load_classifier(model_dir)
    model.eval()
    spec = tasks.get_task("SST-2")
    encoded = features.encode_examples(tokenizer, dev_examples(data_dir), 24, spec)
    logits = evaluation.predict_logits(model, encoded, 64, tokenizer.pad_token_id)
    return float((logits.argmax(-1) == np.asarray(encoded.labels)).mean())


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("ablation")
    task_dir = write_toy_sst2(root / "glue" / "SST-2", n_train=48, n_dev=24)
    words = POSITIVE + NEGATIVE + FILLER
    glove = write_vectors(root / "glove.txt", words, np.random.default_rng(0).normal(size=(len(words), 8)))

    pretrained = root / "pretrained"  # a bare encoder, as a converted model: ablation.py fine-tunes it
    n_tokens = len(write_vocab(pretrained).read_text().split())
    paddle.seed(0)
    modeling.BertModel(modeling.BertConfig(vocab_size=n_tokens, num_hidden_layers=4, **SMALL)).save_pretrained(
        pretrained)

    teacher_dir = root / "teacher"  # a fine-tuned teacher
    train_toy_teacher(teacher_dir, sentences(48, 1), learning_rate=1e-2, max_seq_length=24, num_hidden_layers=4,
                      **SMALL)
    assert accuracy(teacher_dir, task_dir) >= 0.9, f"fixture teacher too weak ({accuracy(teacher_dir, task_dir)})"
    return {"root": root, "glue": root / "glue", "glove": glove, "teacher": teacher_dir, "pretrained": pretrained}


def args_for(toy: dict, out: Path, *extra: str) -> list[str]:
    return ["--task_name", "sst-2", "--glue_dir", str(toy["glue"]), "--student_config", "num_hidden_layers=2",
            "--init_from_teacher", "--glove_embs", str(toy["glove"]), "--aug_N", "2", "--max_train_examples", "32",
            "--max_seq_length", "24", "--batch_size", "8", "--learning_rate", "5e-3", "--intermediate_steps", "3",
            "--prediction_steps", "4", "--seeds", "1", "--output_dir", str(out), "--device", "cpu", *extra]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """main() as the shell runs it: (exit code, stdout, stderr)."""
    return run_main(ablation.main, argv, capsys)[:3]


def events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "ablation_log.jsonl").read_text().splitlines()]


def start_args(stage_dir: Path) -> dict:
    first = json.loads((stage_dir / trainer.LOG_FILE).read_text().splitlines()[0])
    return first["args"]


def test_shards_cover_every_unit_once():
    units = ablation.all_units(list(ablation.VARIANTS), [1, 2, 3])
    shares = [ablation.shard_units(units, i, 3) for i in range(3)]
    assert sorted(u for share in shares for u in share) == sorted(units)
    assert len(units) == len(set(units)) == 8 * 3


def test_every_variant_runs_in_two_shards_and_the_table_lists_them(toy, capsys):
    out = toy["root"] / "two_shards"
    argv = args_for(toy, out, "--teacher_path", str(toy["teacher"]), "--num_shards", "2")
    units = ablation.all_units(list(ablation.VARIANTS), [1])

    code, stdout, err = run([*argv, "--shard_id", "0"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (out / "results").iterdir()) == sorted(
        f"{v}-seed{s}.json" for v, s in ablation.shard_units(units, 0, 2))
    assert not (out / "ablation.md").exists()  # not the last shard
    code, stdout, err = run([*argv, "--shard_id", "1"], capsys)
    assert code == 0, err
    finished = [(e["variant"], e["seed"]) for e in events(out) if e.get("action") == "finished"]
    assert sorted(finished) == sorted(units)  # each unit ran exactly once over both shards
    assert (out / "ablation.md").exists()
    # Shards finish in any order: shard 0 finishing after shard 1 finds every unit done and writes the table.
    (out / "ablation.md").unlink()
    code, stdout, err = run([*argv, "--shard_id", "0"], capsys)
    assert code == 0 and (out / "ablation.md").exists(), err

    # The data: a 32-row subset of the 48 training rows, augmented beside it in the task's layout.
    data_dir = out / "data" / "SST-2"
    original = (toy["glue"] / "SST-2" / "train.tsv").read_text().splitlines()
    subset = (data_dir / "train.tsv").read_text().splitlines()
    assert subset[0] == original[0] and len(subset) == 33 and set(subset[1:]) <= set(original[1:])
    assert len((data_dir / "train_aug.tsv").read_text().splitlines()) > len(subset)

    # Each variant's flags reached its stages.
    def flags(variant: str, stage: str) -> dict:
        return start_args(out / "runs" / variant / "seed1" / stage)
    assert flags("full", "intermediate")["use_aug"] and not flags("no_aug", "intermediate")["use_aug"]
    assert not flags("no_aug", "prediction")["use_aug"]
    assert flags("no_attn", "intermediate")["attn_weight"] == 0 and flags("full", "intermediate")["attn_weight"] == 1
    assert flags("no_hidden", "intermediate")["hidden_weight"] == 0
    assert flags("no_emb", "intermediate")["emb_weight"] == 0
    assert (flags("no_pred", "prediction")["pred_weight"], flags("no_pred", "prediction")["alpha"]) == (0, 1)
    assert flags("top", "intermediate")["layer_map"] == "top"
    assert flags("bottom", "intermediate")["layer_map"] == "bottom"
    for variant, _ in units:
        assert flags(variant, "intermediate")["max_steps"] == 3 and flags(variant, "prediction")["max_steps"] == 4

    # Numbers: each result is its final student's dev accuracy, the teacher's is the teacher's, recomputed here.
    results = {v: json.loads((out / "results" / f"{v}-seed1.json").read_text()) for v, _ in units}
    teacher_acc = accuracy(toy["teacher"], data_dir)
    for variant, r in results.items():
        assert r["teacher_value"] == pytest.approx(teacher_acc)
        final_student = out / "runs" / variant / "seed1" / "prediction" / trainer.LAST_DIR
        assert r["value"] == pytest.approx(accuracy(final_student, data_dir))
    report = json.loads((out / "ablation.json").read_text())
    assert list(report["rows"]) == list(ablation.TABLE_ROWS) and report["missing"] == []
    for row, r in report["rows"].items():
        value = results[ablation.RUN_OF_ROW.get(row, row)]["value"]
        assert r["mean"] == pytest.approx(value) and r["std"] == 0 and r["seeds"] == [1]
        assert r["percent_of_teacher"] == pytest.approx(100 * value / teacher_acc)
        assert r["paper_tinybert4"] == ablation.PAPER_TINYBERT4[row] and r["steps"] == [3, 4]
    assert report["rows"]["uniform"] == report["rows"]["full"]
    assert report["total_minutes"] >= sum(r["minutes"] for r in results.values()) - 0.01  # both rounded
    table = (out / "ablation.md").read_text()
    for row in ablation.TABLE_ROWS:
        line = next(ln for ln in table.splitlines() if ln.startswith(f"| {row} |"))
        assert f"{100 * report['rows'][row]['mean']:.2f} ± 0.00" in line
    assert "| no_aug |" in stdout and "total time" in stdout  # the table is printed too
    assert (out / "ablation.png").read_bytes()[:4] == b"\x89PNG"


# Loaded by every stage's Python (a sitecustomize on PYTHONPATH): Ctrl-C at the 2nd training step of the
# stage whose --output_dir ends in STOP_STAGE.
STOP_HOOK = '''
import os, sys
if any(a.endswith(os.environ.get("STOP_STAGE", "(none)")) for a in sys.argv):
    from tinybert import cli  # first, as the scripts import it
    from tinybert.training import trainer
    real_step, calls = trainer.Trainer.train_step, []

    def step_then_stop(self, batches):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_step(self, batches)

    trainer.Trainer.train_step = step_then_stop
'''


def test_an_interrupted_ablation_continues_and_skips_what_finished(toy, tmp_path, capsys, monkeypatch):
    out = toy["root"] / "interrupted"
    argv = args_for(toy, out, "--teacher_model_name_or_path", str(toy["pretrained"]), "--teacher_steps", "4",
                    "--variants", "full,no_emb")
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(STOP_HOOK)
    # The hook runs before the script's folder joins sys.path: it must find this repository's tinybert too.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "hook"), str(Path(ablation.__file__).parent)]))
    monkeypatch.setenv("STOP_STAGE", str(Path("runs", "no_emb", "seed1", "prediction")))
    code, _, err = run(argv, capsys)
    assert code == 130 and len(err.strip().splitlines()) == 1 and err.startswith("interrupted:"), err
    assert (out / "teacher" / "best_model").is_dir()
    assert (out / "results" / "full-seed1.json").exists() and not (out / "results" / "no_emb-seed1.json").exists()
    kept = {p: p.stat().st_mtime_ns for p in (out / "results" / "full-seed1.json", out / "stages" / "teacher.done",
                                              out / "stages" / "augment.done")}
    assert "interrupted: at step 1," in (out / "runs" / "no_emb" / "seed1" / "prediction.log").read_text()
    monkeypatch.delenv("STOP_STAGE")
    before = len(events(out))

    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    rerun = events(out)[before:]
    assert {(e.get("step"), e["action"]) for e in rerun if "step" in e} == {
        ("data", "skipped"), ("augment", "skipped"), ("teacher", "skipped")}
    assert [(e["variant"], e.get("stage"), e["action"]) for e in rerun if "variant" in e] == [
        ("full", None, "skipped"), ("no_emb", "intermediate", "skipped"), ("no_emb", "prediction", "restarted"),
        ("no_emb", None, "finished")]
    result = json.loads((out / "results" / "no_emb-seed1.json").read_text())
    assert (result["intermediate_steps"], result["prediction_steps"]) == (3, 4)
    assert list(json.loads((out / "ablation.json").read_text())["rows"]) == ["full", "no_emb", "uniform"]
    assert "top seed 1" not in stdout

    # The same folder with another budget would mix incomparable results: refused before any work.
    code, _, err = run([*argv, "--prediction_steps", "5"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--prediction_steps 4, now 5" in err, err

    # A finished unit whose input changed (here the teacher) runs again, and the log says why.
    teacher_model = out / "teacher" / "best_model"
    (teacher_model / "note.txt").write_text("changed")
    before = len(events(out))
    code, stdout, err = run([*argv, "--variants", "full"], capsys)
    assert code == 0, err
    rerun = [e for e in events(out)[before:] if "variant" in e]
    assert [(e["stage"], e["action"]) for e in rerun if "stage" in e] == [
        ("intermediate", "restarted"), ("prediction", "restarted")]
    assert rerun[0]["reason"] == f"input {teacher_model} changed (note.txt)"
    assert f"rerun: input {teacher_model} changed (note.txt)" in stdout


@pytest.mark.parametrize("extra, message", [
    (["--teacher_path", "T", "--variants", "full,nope"], "--variants: unknown variant nope"),
    (["--teacher_path", "T", "--num_shards", "2", "--shard_id", "2"], "--shard_id must lie in [0, 1]"),
    (["--teacher_path", "T", "--seeds", "1,x"], "--seeds must be comma-separated integers"),
    ([], "give the teacher as --teacher_path"),
    (["--teacher_path", "T", "--report_only"], "no finished results to report yet"),
])
def test_a_bad_flag_is_a_one_line_error(toy, tmp_path, capsys, extra, message):
    code, _, err = run(args_for(toy, tmp_path / "out", *extra), capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_the_training_rows_are_never_read_from_inside_the_output_folder(toy, tmp_path, capsys):
    """--data_dir inside --output_dir (say, an earlier ablation's data) would be overwritten by the subset."""
    out = tmp_path / "out"
    data = out / "data" / "SST-2"
    data.mkdir(parents=True)
    train = toy["glue"] / "SST-2" / "train.tsv"
    (data / "train.tsv").write_bytes(train.read_bytes())
    argv = [a if a != str(toy["glue"]) else str(tmp_path / "unused") for a in args_for(toy, out)]
    argv[argv.index("--glue_dir"):argv.index("--glue_dir") + 2] = ["--data_dir", str(data)]
    code, _, err = run([*argv, "--teacher_path", str(toy["teacher"])], capsys)
    assert code == 2 and "--output_dir" in err and "contains the input --data_dir" in err, err
    assert (data / "train.tsv").read_bytes() == train.read_bytes()
