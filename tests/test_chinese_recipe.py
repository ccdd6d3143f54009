"""README's Chinese recipe, every command as written, on tiny fixtures: an ERNIE 3.0 teacher fine-tuned on a
CLUE task (AFQMC in CLUE's layout), Chinese augmentation (jieba, an ERNIE masked-LM, word2vec-format vectors)
into train_aug.json, both distillation stages with --use_aug into a narrower ERNIE student (a distillation
W_h), export and a CLUE submission file."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

import data_augmentation
import export_model
import finetune_teacher
from tinybert.models import modeling
import predict
import task_distill
from builders import run_main, write_clue, write_vectors, write_vocab
from tinybert.data.tokenization import BertTokenizer

TEXTS = "双十一花呗提额在哪里可以提花呗额度如何还款怎么借能用多久长时间蚂蚁开通账单余额宝收益"


def run(main, argv: list[str], capsys) -> str:
    code, _, err, _ = run_main(main, argv, capsys)
    assert code == 0, err
    return err


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zh")
    chars = sorted(set(TEXTS))
    ernie = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 max_position_embeddings=64, use_task_id=True, task_type_vocab_size=3)
    folders = {}
    for name, cls in (("teacher_base", modeling.ErnieForSequenceClassification), ("mlm", modeling.ErnieForMaskedLM)):
        folder = root / name
        write_vocab(folder, chars)
        tokenizer = BertTokenizer.from_pretrained(folder)
        paddle.seed(0)
        cls(modeling.ErnieConfig(vocab_size=tokenizer.vocab_size, **ernie)).save_pretrained(folder)
        folders[name] = folder
    rng = np.random.default_rng(0)
    words = ["花呗", "借呗", "还款", "额度", "开通", "账单", "收益", "余额"]
    folders["vectors"] = write_vectors(root / "sgns.tiny.word", words, rng.normal(size=(len(words), 8)), header=True)
    folders["clue"] = write_clue(root / "CLUE", ["AFQMC"])
    folders["root"] = root
    return folders


def test_the_chinese_recipe_runs_as_written(fixtures, capsys, monkeypatch):
    root, clue = fixtures["root"], fixtures["clue"]
    monkeypatch.chdir(root)
    run(finetune_teacher.main, ["--model_type", "ernie", "--model_name_or_path", fixtures["teacher_base"],
                                "--task_name", "AFQMC", "--clue_dir", clue, "--max_seq_length", 32,
                                "--batch_size", 2, "--learning_rate", "2e-5", "--max_steps", 2, "--logging_steps", 1,
                                "--save_steps", 500, "--output_dir", "teacher/AFQMC", "--device", "cpu"], capsys)
    teacher = root / "teacher/AFQMC/best_model"
    assert json.loads((teacher / "config.json").read_text())["use_task_id"] is True

    err = run(data_augmentation.main, ["--pretrained_bert_model", fixtures["mlm"], "--word_vectors",
                                       fixtures["vectors"], "--clue_dir", clue, "--task_name", "AFQMC",
                                       "--language", "zh", "--N", 4], capsys)
    augmented = clue / "AFQMC" / "train_aug.json"
    rows = [json.loads(line) for line in augmented.read_text(encoding="utf-8").splitlines()]
    assert "wrote" in err and len(rows) > 2 and rows[0]["sentence1"] == "双十一花呗提额在哪"
    assert all(" " not in r["sentence1"] + r["sentence2"] for r in rows)  # no spaces between Chinese words
    assert {r["label"] for r in rows} == {"0", "1"}

    common = ["--task_name", "AFQMC", "--clue_dir", clue, "--use_aug", "--max_seq_length", 32, "--batch_size", 4,
              "--teacher_model_type", "ernie", "--teacher_path", teacher, "--logging_steps", 1, "--device", "cpu"]
    run(task_distill.main, ["--model_type", "ernie", "--student_config", "num_hidden_layers=1,hidden_size=16",
                            *common, "--intermediate_distill", "--learning_rate", "5e-5", "--max_steps", 2,
                            "--save_steps", 10, "--output_dir", "student/AFQMC-1"], capsys)
    stage1 = root / "student/AFQMC-1/last"
    assert (stage1 / "distill_projection.pdparams").is_file()  # the narrower ERNIE student's W_h
    run(task_distill.main, ["--model_type", "ernie", "--model_name_or_path", stage1, *common,
                            "--learning_rate", "3e-5", "--max_steps", 2, "--save_steps", 100,
                            "--output_dir", "student/AFQMC-2"], capsys)

    info = export_model.export_model(root / "student/AFQMC-2/best_model", root / "infer/AFQMC")
    assert (info["task_name"], info["max_seq_length"], info["model_type"]) == ("AFQMC", 32, "ernie")
    run(predict.main, ["--model_path", root / "infer/AFQMC", "--task_name", "AFQMC", "--clue_dir", clue,
                       "--submission_dir", root / "submission"], capsys)
    lines = (root / "submission" / "afqmc_predict.json").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["label"] in ("0", "1") for line in lines)
