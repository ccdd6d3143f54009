"""demo.py end to end in quick mode, on tiny local stand-ins for the three downloaded assets (no network):
a 2-layer Hugging Face BERT folder, a small GloVe text file and a five-topic article folder."""
from __future__ import annotations

import json
import random
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

import demo
from tinybert.training import runlog
from builders import HF_CFG, TINY_WORDS, hf_state, write_hf_folder

TOPIC_WORDS = {"business": ["year", "new", "time"], "entertainment": ["movie", "film", "actor"],
               "politics": ["said", "says", "man"], "sports": ["play", "quick", "big"],
               "tech": ["blue", "green", "red"]}


def write_stand_ins(root: Path) -> list[str]:
    vocab_words = TINY_WORDS
    cfg = {**HF_CFG, "vocab_size": 5 + 11 + len(vocab_words), "hidden_size": 32, "num_attention_heads": 4,
           "intermediate_size": 48, "max_position_embeddings": 64, "type_vocab_size": 2}
    hf = write_hf_folder(root / "hf", hf_state(cfg), cfg, words=vocab_words)  # real words: more than [UNK]
    rng = random.Random(0)
    for topic, words in TOPIC_WORDS.items():
        folder = root / "bbc" / topic
        folder.mkdir(parents=True)
        for i in range(12):
            body = " ".join(rng.choice(words + ["the", "a", "it", "is"]) for _ in range(30))
            (folder / f"{i:03d}.txt").write_text(f"{words[0]} {words[1]} news\n\n{body}.\n", encoding="utf-8")
    vectors = np.random.default_rng(0).normal(size=(len(vocab_words), 8))
    (root / "glove.txt").write_text(
        "".join(w + " " + " ".join(f"{x:.4f}" for x in v) + "\n" for w, v in zip(vocab_words, vectors)))
    return ["--minilm_dir", str(hf), "--bbc_dir", str(root / "bbc"), "--glove", str(root / "glove.txt")]


STAGES = ("assets", "data", "convert", "teacher", "augment", "distill", "predict", "export_teacher",
          "export_student")


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory) -> dict:
    """One quick demo run into a fresh folder: its folder and command line."""
    root = tmp_path_factory.mktemp("demo")
    stand_ins = write_stand_ins(root / "assets")
    out = root / "out"
    argv = ["--quick", "--output_dir", str(out), "--student_layers", "1", *stand_ins]
    demo.main(argv)
    return {"out": out, "argv": argv}


def test_quick_demo_runs_every_stage(quick_demo):
    out = quick_demo["out"]
    for stage in STAGES:
        assert (out / "stages" / f"{stage}.done").is_file(), stage
        assert (out / "stages" / f"{stage}.log").is_file() or stage in ("assets", "data"), stage
    report = json.loads((out / "report.json").read_text())
    teacher, student = report["models"]["teacher"], report["models"]["student"]
    assert (teacher["layers"], student["layers"]) == (2, 1)
    assert student["parameters"] < teacher["parameters"]
    for row in (teacher, student):
        assert 0.0 <= row["dev_accuracy"] <= 1.0
        assert row["latency_b1_ms"] > 0 and row["latency_b32_ms"] > 0 and row["size_mb"] > 0
    assert (out / "report.png").stat().st_size > 10_000
    assert (out / "curves.png").stat().st_size > 10_000
    text = (out / "report.md").read_text()
    assert "| teacher | 2 |" in text and "![training curves](curves.png)" in text
    # A smoke run says so first: its numbers must not pass for the demo's.
    assert text.splitlines()[0] == demo.SMOKE_LINE and "numbers mean nothing" in demo.SMOKE_LINE
    assert report["smoke_run"] is True
    # Training data: a 20% dev split of 60 articles, and the augmented file holds originals + 1 sample each.
    train_rows = (out / "data" / "train.tsv").read_text().splitlines()
    aug_rows = (out / "data" / "train_aug.tsv").read_text().splitlines()
    assert train_rows[0] == "text\tlabel" and len(train_rows) - 1 == 50
    assert len(aug_rows) - 1 == 2 * (len(train_rows) - 1)


def test_a_rerun_skips_every_stage_and_a_changed_setting_reruns_the_stages_it_changes(quick_demo, capsys):
    out, argv = quick_demo["out"], quick_demo["argv"]
    capsys.readouterr()
    demo.main(argv)  # a rerun recomputes only the report
    printed = capsys.readouterr().out
    assert printed.count("done in an earlier run, skipped") == len(STAGES)
    assert "$ python" not in printed

    student_mark = (out / "stages" / "predict.done").read_text()
    demo.main([*argv, "--prediction_lr", "0.0002"])  # same folder, another setting of the prediction stage
    printed = capsys.readouterr().out
    skipped = [s for s in STAGES if f"] {s}: done in an earlier run, skipped" in printed]
    assert skipped == ["assets", "data", "convert", "teacher", "augment", "distill", "export_teacher"]
    assert "rerun: --learning_rate 0.0001 -> 0.0002" in printed  # predict: its setting changed
    assert f"rerun: input {out / 'student' / 'best_model'} changed" in printed  # export_student: its input
    assert printed.count("$ python") == 2
    assert (out / "stages" / "predict.done").read_text() != student_mark
    assert "rerun: --learning_rate 0.0001 -> 0.0002" in (out / "stages" / "predict.log").read_text()


def test_quick_and_full_runs_write_to_their_own_folders():
    assert demo.parse_args(["--quick"]).output_dir == "demo_output_quick"
    assert demo.parse_args([]).output_dir == "demo_output"
    assert demo.parse_args(["--quick", "--output_dir", "x"]).output_dir == "x"


def test_missing_article_folder_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e:
        demo.main(["--quick", "--output_dir", str(tmp_path / "out"), "--bbc_dir", str(tmp_path / "empty"),
                   "--minilm_dir", str(tmp_path), "--glove", str(tmp_path / "g.txt")])
    assert e.value.code == 2
    assert "no topic folders" in capsys.readouterr().err


def report_rows() -> dict[str, dict]:
    row = {"layers": 2, "hidden_size": 32, "dev_accuracy": 0.9, "parameters": 2e6, "size_mb": 8.0,
           "latency_b1_ms": 2.0, "latency_b32_ms": 20.0}
    return {"teacher": row, "student": {**row, "layers": 1, "dev_accuracy": 0.8, "parameters": 1e6,
                                        "latency_b32_ms": 10.0}}


def test_report_draws_the_training_curves_of_the_stages(tmp_path):
    """The report step alone, on synthetic logs of the three training stages (one not run: no log)."""
    def log(folder: Path, records: list[dict]) -> Path:
        folder.mkdir(parents=True)
        (folder / runlog.LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
        return folder

    teacher = log(tmp_path / "teacher", [{"step": s, "loss": 1 / s} for s in (1, 2)]
                  + [{"step": 2, "eval": {"acc": 0.9}}])
    inter = log(tmp_path / "student_intermediate",
                [{"step": s, "loss": 3 / s, "loss_emb": 1 / s, "loss_hidden": 1 / s, "loss_attn": 1 / s}
                 for s in (1, 2)])
    summary = demo.write_report(tmp_path, report_rows(), ["a note"], [teacher, inter, tmp_path / "student"])

    assert "2.00x faster at batch 32" in summary
    text = (tmp_path / "report.md").read_text()
    assert text.splitlines()[0] == "# TinyBERT demo report"  # not a smoke run: no warning
    assert "![teacher vs student](report.png)" in text and "![training curves](curves.png)" in text
    assert text.index("curves.png") < text.index("- a note")
    height, width = matplotlib.image.imread(tmp_path / "curves.png").shape[:2]
    assert width > 3 * height  # three panels: intermediate losses, teacher fine-tuning loss, dev accuracy

    (tmp_path / "curves.png").unlink()
    demo.write_report(tmp_path, report_rows(), [], [tmp_path / "student"])  # no logs: no curves
    assert not (tmp_path / "curves.png").exists()
    assert "curves.png" not in (tmp_path / "report.md").read_text()
