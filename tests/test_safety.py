"""What a user relies on when a file, a flag or a run goes wrong, script by script (the seven rules).

Every script is driven in this process (`script.main([...])`). A user's mistake must end with exit code 2
and exactly one line `error: ...` (the last on stderr) naming the file, and its line for text files, with no
traceback and nothing written or changed; an interruption ends with 130, `interrupted: ...` and, when
there is something to continue, `to continue: python SCRIPT ... --resume`.

Fixtures are tiny (16-32 wide, 1-2 layers, the builders vocabulary) and built once for the module.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest


from tinybert.models import checkpoints
import convert_checkpoint
import data_augmentation
from tinybert.augmentation import outputs, runner
from tinybert.distillation import distill
from tinybert.training import evaluation
import export_model
import finetune_teacher
import task_distill
from tinybert.training import trainer, trainstate

from builders import (BAD_UTF8_CSV, BATCH, GOOD_CSV, N_DEV, N_TRAIN, UNCLOSED_CSV, argv_of, as_safetensors,
                      augment_argv, copy_tree, distill_argv, finetune_argv, forbid_heavy_work, interrupted,
                      read_log, run, run_predict, snapshot, truncate, user_error, write_csv, write_hostile)


# ============================================================================================ rule 1
# Every file a user passes is read through one loader: each way it can be broken is one line.


def broken_weights(w: SimpleNamespace, tmp_path: Path, which: str, kind: str) -> tuple[Path, Path]:
    """(a copy of a model folder with its weights file truncated, that file)."""
    folder = copy_tree(getattr(w, which), tmp_path / f"{which}_{kind}")
    if kind == "safetensors":
        as_safetensors(folder)
    name = checkpoints.WEIGHTS_SAFETENSORS if kind == "safetensors" else checkpoints.WEIGHTS_PDPARAMS
    return folder, truncate(folder / name)


@pytest.mark.parametrize("kind", ["pdparams", "safetensors"])
@pytest.mark.parametrize("role", ["teacher", "student"])
def test_truncated_weights_task_distill(w, tmp_path, capsys, role, kind):
    folder, weights = broken_weights(w, tmp_path, role, kind)
    before = snapshot(folder)
    out = tmp_path / "out"
    code, err, _ = run(task_distill, distill_argv(w, out, **{role: folder}), capsys)
    user_error(code, err, weights)
    assert snapshot(folder) == before and not out.exists()


@pytest.mark.parametrize("kind", ["pdparams", "safetensors"])
def test_truncated_weights_data_augmentation(w, tmp_path, capsys, kind):
    folder, weights = broken_weights(w, tmp_path, "mlm", kind)
    train = write_csv(tmp_path / "train.csv", GOOD_CSV)
    before = snapshot(folder, train)
    out = tmp_path / "aug.csv"
    code, err, _ = run(data_augmentation, augment_argv(w, train, out, mlm=folder), capsys)
    user_error(code, err, weights)
    assert snapshot(folder, train) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["train.csv", folder.name])  # no output, no .partial


@pytest.mark.parametrize("kind", ["pdparams", "safetensors"])
def test_truncated_weights_export_model(w, tmp_path, capsys, kind):
    folder, weights = broken_weights(w, tmp_path, "teacher", kind)
    before = snapshot(folder)
    out = tmp_path / "infer"
    code, err, _ = run(export_model, ["--model_path", folder, "--output_path", out], capsys)
    user_error(code, err, weights)
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no output, no staging folder


def test_truncated_hf_safetensors_convert_checkpoint(w, tmp_path, capsys):
    hf = copy_tree(w.hf, tmp_path / "hf")
    weights = truncate(hf / "model.safetensors")
    before = snapshot(hf)
    code, err, _ = run(convert_checkpoint, ["--from_hf", hf, "--output_dir", tmp_path / "ours"], capsys)
    user_error(code, err, weights)
    assert snapshot(hf) == before and sorted(p.name for p in tmp_path.iterdir()) == ["hf"]


NOT_JSON = '{\n  "hidden_size": 32,\n  "num_hidden_layers": 2\n  "oops": [\n}\n'  # broken on line 4


def broken_config(folder: Path, name: str) -> Path:
    """The folder's `name` made not JSON; with model_config.json, config.json is removed so it is the one read."""
    if name == checkpoints.CONFIG_PADDLENLP:
        (folder / checkpoints.CONFIG_JSON).unlink()
    path = folder / name
    path.write_text(NOT_JSON, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["config.json", "model_config.json"])
def test_config_not_json_predict_checkpoint(w, tmp_path, capsys, name):
    folder = copy_tree(w.teacher, tmp_path / "ckpt")
    path = broken_config(folder, name)
    text = write_csv(tmp_path / "test.csv", GOOD_CSV)
    before = snapshot(folder, text)
    out = tmp_path / "pred.tsv"
    code, err, _ = run_predict(["--model_path", folder, "--test_file", text, "--output_file", out], capsys)
    user_error(code, err, f"{path}:4")
    assert snapshot(folder, text) == before and not out.exists()


@pytest.mark.parametrize("name", ["config.json", "model_config.json"])
def test_config_not_json_export_model(w, tmp_path, capsys, name):
    folder = copy_tree(w.teacher, tmp_path / "ckpt")
    path = broken_config(folder, name)
    before = snapshot(folder)
    code, err, _ = run(export_model, ["--model_path", folder, "--output_path", tmp_path / "infer"], capsys)
    user_error(code, err, f"{path}:4")
    assert snapshot(folder) == before and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_config_not_json_convert_checkpoint(w, tmp_path, capsys):
    hf = copy_tree(w.hf, tmp_path / "hf")
    path = hf / "config.json"
    path.write_text(NOT_JSON, encoding="utf-8")
    before = snapshot(hf)
    code, err, _ = run(convert_checkpoint, ["--from_hf", hf, "--output_dir", tmp_path / "ours"], capsys)
    user_error(code, err, f"{path}:4")
    assert snapshot(hf) == before and sorted(p.name for p in tmp_path.iterdir()) == ["hf"]


def test_inference_config_not_json_predict(w, tmp_path, capsys):
    folder = copy_tree(w.exported, tmp_path / "infer")
    path = folder / "inference_config.json"
    path.write_text('{\n  "num_labels": 2,\n  "labels": ["0" "1"],\n  "max_seq_length": 64\n}\n',
                    encoding="utf-8")  # a comma missing on line 3
    before = snapshot(folder)
    out = tmp_path / "pred.tsv"
    code, err, _ = run_predict(["--model_path", folder, "--output_file", out], capsys)
    user_error(code, err, f"{path}:3")
    assert snapshot(folder) == before and not out.exists()


def test_truncated_pdiparams_predict(w, tmp_path, capsys):
    folder = copy_tree(w.exported, tmp_path / "infer")
    params = truncate(folder / "model.pdiparams")
    before = snapshot(folder)
    out = tmp_path / "pred.tsv"
    code, err, _ = run_predict(["--model_path", folder, "--output_file", out], capsys)
    user_error(code, err, params)
    assert snapshot(folder) == before and not out.exists()


def test_non_utf8_csv_data_augmentation(w, tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", BAD_UTF8_CSV)
    before = snapshot(train)
    code, err, _ = run(data_augmentation, augment_argv(w, train, tmp_path / "aug.csv"), capsys)
    user_error(code, err, f"{train}:4")
    assert snapshot(train) == before and sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]


def test_non_utf8_csv_predict(w, tmp_path, capsys):
    test = write_csv(tmp_path / "test.csv", BAD_UTF8_CSV)
    before = snapshot(test)
    code, err, _ = run_predict(["--model_path", w.exported, "--test_file", test, "--output_file",
                                tmp_path / "pred.tsv"], capsys)
    user_error(code, err, f"{test}:4")
    assert snapshot(test) == before and sorted(p.name for p in tmp_path.iterdir()) == ["test.csv"]


def test_non_utf8_csv_finetune_teacher(w, tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", BAD_UTF8_CSV)
    before = snapshot(train, w.teacher)
    out = tmp_path / "out"
    code, err, _ = run(finetune_teacher, finetune_argv(w, out, "--train_file", train), capsys)
    user_error(code, err, f"{train}:4")
    assert snapshot(train, w.teacher) == before and not out.exists()


def test_vocab_without_cls_convert_checkpoint(w, tmp_path, capsys):
    hf = copy_tree(w.hf, tmp_path / "hf")
    vocab = hf / "vocab.txt"
    vocab.write_text("".join(t + "\n" for t in vocab.read_text().split() if t != "[CLS]"), encoding="utf-8")
    before = snapshot(hf)
    out = tmp_path / "ours"
    code, err, _ = run(convert_checkpoint, ["--from_hf", hf, "--output_dir", out], capsys)
    user_error(code, err, vocab)
    assert snapshot(hf) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # no output folder, no staging sibling


def test_binary_glove_data_augmentation(w, tmp_path, capsys):
    glove = tmp_path / "glove" / "glove.txt"
    glove.parent.mkdir()
    glove.write_bytes(bytes(range(256)) * 8 + b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    train = write_csv(tmp_path / "train.csv", GOOD_CSV)
    before = snapshot(glove.parent, train)
    argv = augment_argv(w, train, tmp_path / "aug.csv")
    argv[argv.index("--glove_embs") + 1] = str(glove)
    code, err, _ = run(data_augmentation, argv, capsys)
    user_error(code, err, glove)
    assert snapshot(glove.parent, train) == before  # no cache written beside it either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glove", "train.csv"]


# ============================================================================================ rule 2
# Data files are strict, the same way in every script.


def data_run(script: str, w, tmp_path: Path, data_file: Path, capsys) -> tuple[int, str, Path]:
    """Run `script` with `data_file` as its training (or, predict.py, test) file; (code, stderr, output)."""
    if script == "finetune_teacher":
        out = tmp_path / "out"
        return (*run(finetune_teacher, finetune_argv(w, out, "--train_file", data_file), capsys)[:2], out)
    if script == "task_distill":
        out = tmp_path / "out"
        return (*run(task_distill, distill_argv(w, out, "--train_file", data_file), capsys)[:2], out)
    if script == "data_augmentation":
        out = tmp_path / "aug.csv"
        return (*run(data_augmentation, augment_argv(w, data_file, out), capsys)[:2], out)
    out = tmp_path / "pred.tsv"
    return (*run_predict(["--model_path", w.exported, "--test_file", data_file, "--output_file", out], capsys)[:2],
            out)


SCRIPTS_READING_DATA = ["finetune_teacher", "task_distill", "data_augmentation", "predict"]


@pytest.mark.parametrize("script", SCRIPTS_READING_DATA)
def test_unclosed_quote_names_line_3(w, tmp_path, capsys, script):
    bad = write_csv(tmp_path / "data" / "bad.csv", UNCLOSED_CSV)
    before = snapshot(bad.parent)
    code, err, out = data_run(script, w, tmp_path, bad, capsys)
    line = user_error(code, err, f"{bad}:3:")
    assert "quote" in line
    assert snapshot(bad.parent) == before and not out.exists()
    assert not outputs.partial_path(out).exists()


@pytest.mark.parametrize("content", ["", "text,label\n"], ids=["empty", "header_only"])
@pytest.mark.parametrize("script", SCRIPTS_READING_DATA)
def test_empty_and_header_only_csv_name_the_file(w, tmp_path, capsys, script, content):
    bad = write_csv(tmp_path / "data" / "bad.csv", content)
    code, err, out = data_run(script, w, tmp_path, bad, capsys)
    line = user_error(code, err, bad)
    assert "training examples are fewer than" not in line
    assert bad.read_text() == content and not out.exists() and not outputs.partial_path(out).exists()


@pytest.mark.parametrize("content", ["", "sentence\tlabel\n"], ids=["empty", "header_only"])
def test_finetune_teacher_glue_training_file_empty_or_header_only(w, tmp_path, capsys, content):
    data = copy_tree(w.data, tmp_path / "SST-2")
    (data / "train.tsv").write_text(content, encoding="utf-8")
    argv = finetune_argv(w, tmp_path / "out")
    argv[argv.index("--data_dir") + 1] = str(data)
    code, err, _ = run(finetune_teacher, argv, capsys)
    line = user_error(code, err, data / "train.tsv")
    assert "0 training examples are fewer than the 1 processes" not in err
    assert "fewer than" not in line
    assert not (tmp_path / "out").exists()


# ============================================================================================ rule 3
# Flags are checked before heavy work.


@pytest.mark.parametrize("script", ["task_distill", "finetune_teacher"])
def test_max_seq_length_above_positions_training_scripts(w, tmp_path, capsys, monkeypatch, script):
    forbid_heavy_work(monkeypatch)
    out = tmp_path / "out"
    module, argv = {"task_distill": (task_distill, distill_argv),
                    "finetune_teacher": (finetune_teacher, finetune_argv)}[script]
    code, err, _ = run(module, argv(w, out, "--max_seq_length", 65), capsys)
    user_error(code, err, "--max_seq_length", "64")
    assert not out.exists()


def test_max_seq_length_above_positions_export_model(w, tmp_path, capsys, monkeypatch):
    forbid_heavy_work(monkeypatch)
    out = tmp_path / "infer"
    code, err, _ = run(export_model, ["--model_path", w.teacher, "--output_path", out, "--max_seq_length", 65],
                       capsys)
    user_error(code, err, "--max_seq_length", "64")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_max_seq_length_above_positions_data_augmentation_then_rerun(w, tmp_path, capsys, monkeypatch):
    train = write_csv(tmp_path / "train.csv", GOOD_CSV)
    out = tmp_path / "aug.csv"
    with monkeypatch.context() as m:
        forbid_heavy_work(m)
        code, err, _ = run(data_augmentation, augment_argv(w, train, out, "--max_seq_length", 65, mlm=w.mlm), capsys)
    user_error(code, err, "--max_seq_length", "64")
    assert not out.exists() and not outputs.partial_path(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]
    code, err, _ = run(data_augmentation, augment_argv(w, train, out, "--max_seq_length", 32, mlm=w.mlm), capsys)
    assert code == 0, err  # the corrected command is not blocked by anything the refused one left
    assert out.is_file() and len(out.read_text().splitlines()) > len(GOOD_CSV.splitlines())


@pytest.mark.parametrize("value", ["nan", "0", "-1"])
def test_temperature_is_checked_task_distill(w, tmp_path, capsys, monkeypatch, value):
    forbid_heavy_work(monkeypatch)
    out = tmp_path / "out"
    code, err, _ = run(task_distill, distill_argv(w, out, "--T", value), capsys)
    line = user_error(code, err, "--T")
    assert "loss is nan" not in line and "step" not in line
    assert not out.exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_foreign_output_dir_refused_before_data_task_distill_cache_teacher_logits(w, tmp_path, capsys, monkeypatch,
                                                                                  overwrite):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    forbid_heavy_work(monkeypatch)
    began = time.perf_counter()
    extra = ["--cache_teacher_logits"] + (["--overwrite_output_dir"] if overwrite else [])
    code, err, _ = run(task_distill, distill_argv(w, out, *extra), capsys)
    seconds = time.perf_counter() - began
    user_error(code, err, out, "--overwrite_output_dir")
    assert seconds < 3, f"refused after {seconds:.1f}s"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"] and (out / "notes.txt").read_text() == "my notes"


@pytest.mark.parametrize("layer_map, needle", [("1,2,3", "[1, 2, 3]"), ("9,9", "[9, 9]")])
def test_bad_layer_map_refused_before_data_task_distill(w, tmp_path, capsys, monkeypatch, layer_map, needle):
    forbid_heavy_work(monkeypatch)
    out = tmp_path / "out"
    code, err, _ = run(task_distill, distill_argv(w, out, "--layer_map", layer_map), capsys)
    assert "layer map" in user_error(code, err, needle).lower()
    assert not out.exists()


# ============================================================================================ rule 4
# No output may be, contain, or lie inside an input, with or without the overwrite flag.


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("where", ["is", "inside"])
def test_output_dir_is_the_teacher_task_distill(w, tmp_path, capsys, overwrite, where):
    teacher = copy_tree(w.teacher, tmp_path / "teacher")
    before = snapshot(teacher)
    out = teacher if where == "is" else teacher / "distilled"
    extra = ["--overwrite_output_dir"] if overwrite else []
    code, err, _ = run(task_distill, distill_argv(w, out, *extra, teacher=teacher), capsys)
    user_error(code, err, "--teacher_path")
    assert snapshot(teacher) == before  # byte for byte


@pytest.mark.parametrize("where", ["is", "contains"])
def test_output_path_is_the_model_export_model(w, tmp_path, capsys, where):
    model = copy_tree(w.teacher, tmp_path / "models" / "ckpt")
    out = model if where == "is" else model.parent
    before = snapshot(tmp_path)
    code, err, _ = run(export_model, ["--model_path", model, "--output_path", out, "--overwrite"], capsys)
    user_error(code, err, "--model_path")
    assert snapshot(tmp_path) == before


def test_output_file_is_the_test_file_predict(w, tmp_path, capsys):
    test = write_csv(tmp_path / "test.csv", GOOD_CSV)
    code, err, _ = run_predict(["--model_path", w.exported, "--test_file", test, "--output_file", test,
                                "--overwrite"], capsys)
    user_error(code, err, "--test_file")
    assert test.read_text() == GOOD_CSV


def test_output_dir_is_the_hf_folder_convert_checkpoint(w, tmp_path, capsys):
    hf = copy_tree(w.hf, tmp_path / "hf")
    before = snapshot(hf)
    code, err, _ = run(convert_checkpoint, ["--from_hf", hf, "--output_dir", hf, "--overwrite_output_dir"], capsys)
    user_error(code, err, "--from_hf")
    assert snapshot(hf) == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_file_is_the_train_file_data_augmentation(w, tmp_path, capsys, overwrite):
    train = write_csv(tmp_path / "train.csv", GOOD_CSV)
    extra = ["--overwrite"] if overwrite else []
    code, err, _ = run(data_augmentation, augment_argv(w, train, train, *extra), capsys)
    user_error(code, err, "--train_file")
    assert train.read_text() == GOOD_CSV and sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("where", ["is", "inside"])
def test_output_dir_is_the_model_finetune_teacher(w, tmp_path, capsys, overwrite, where):
    model = copy_tree(w.teacher, tmp_path / "bert")
    before = snapshot(model)
    out = model if where == "is" else model / "finetuned"
    extra = ["--overwrite_output_dir"] if overwrite else []
    code, err, _ = run(finetune_teacher, finetune_argv(w, out, *extra, model=model), capsys)
    user_error(code, err, "--model_name_or_path")
    assert snapshot(model) == before


def users_folder(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes, not a model")
    return out


def overwrite_run(script: str, w, out: Path, capsys) -> tuple[int, str]:
    if script == "finetune_teacher":
        return run(finetune_teacher, finetune_argv(w, out, "--overwrite_output_dir"), capsys)[:2]
    if script == "task_distill":
        return run(task_distill, distill_argv(w, out, "--overwrite_output_dir"), capsys)[:2]
    if script == "export_model":
        return run(export_model, ["--model_path", w.teacher, "--output_path", out, "--overwrite"], capsys)[:2]
    return run(convert_checkpoint, ["--from_hf", w.hf, "--output_dir", out, "--overwrite_output_dir"], capsys)[:2]


OVERWRITING_SCRIPTS = ["finetune_teacher", "task_distill", "export_model", "convert_checkpoint"]


@pytest.mark.parametrize("script", OVERWRITING_SCRIPTS)
def test_overwrite_flag_refuses_a_users_folder(w, tmp_path, capsys, script):
    out = users_folder(tmp_path)
    code, err = overwrite_run(script, w, out, capsys)
    user_error(code, err, out, "notes.txt")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "my notes, not a model"


@pytest.mark.parametrize("script", OVERWRITING_SCRIPTS)
def test_overwrite_flag_replaces_a_folder_this_project_wrote(w, tmp_path, capsys, script):
    out = tmp_path / "out"
    (out / "last").mkdir(parents=True)
    checkpoints.mark_output(out, script + ".py")
    (out / "last" / "stale.txt").write_text("from an older run")
    (out / trainer.LOG_FILE).write_text(json.dumps({"event": "old run"}) + "\n")
    (out / "stale.txt").write_text("from an older run")
    code, err = overwrite_run(script, w, out, capsys)
    assert code == 0, err
    names = {p.name for p in out.iterdir()}
    assert not (out / "last" / "stale.txt").exists()
    if script in ("finetune_teacher", "task_distill"):
        assert (out / "last" / trainer.STATE_FILE).is_file()
        assert read_log(out)[0]["event"] == "start" and "old run" not in (out / trainer.LOG_FILE).read_text()
    else:
        assert "stale.txt" not in names and "last" not in names
        assert checkpoints.OUTPUT_MARK in names
        assert ("inference_config.json" if script == "export_model" else "model_state.pdparams") in names


# ============================================================================================ rule 5
# Completion marks and interruptions.


def test_interrupted_augmentation_is_only_partial_and_resumes(w, tmp_path, capsys, monkeypatch):
    data = copy_tree(w.data, tmp_path / "SST-2")
    out = data / "train_aug.tsv"
    argv = ["--mlm", "none", "--glove_embs", w.glove, "--task_name", "SST-2", "--data_dir", data, "--N", 2,
            "--p", 0.5]
    monkeypatch.setattr(runner, "CHUNK_EXAMPLES", 8)
    real = runner.augment_rows
    calls = []

    def stop_after_first_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "augment_rows", stop_after_first_chunk)
    code, err, _ = run(data_augmentation, argv, capsys)
    stop, command = interrupted(code, err)
    partial = outputs.partial_path(out)
    assert str(partial) in stop
    assert not out.exists() and partial.is_file()  # an unfinished output never has the real name
    monkeypatch.setattr(runner, "augment_rows", real)

    distill_out = tmp_path / "distilled"
    use_aug = distill_argv(w, distill_out, "--use_aug", data=data)
    code, err, _ = run(task_distill, use_aug, capsys)
    line = user_error(code, err, out)
    assert "data_augmentation.py" in line and "--resume" in line
    assert not distill_out.exists()

    code, err, _ = run(data_augmentation, argv_of(command, "data_augmentation.py"), capsys)
    assert code == 0, err
    assert out.is_file() and not partial.exists()
    rows = len(out.read_text().splitlines()) - 1
    assert rows > N_TRAIN
    code, err, _ = run(task_distill, use_aug, capsys)
    assert code == 0, err
    assert read_log(distill_out)[0]["num_examples"] == rows


def interrupt_at(step: int, real: Callable) -> Callable:
    calls = []

    def loss(model, batch):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real(model, batch)

    return loss


CHECKPOINT_EVERY_STEP = ["--checkpoint_minutes", 0, "--checkpoint_budget", 0, "--save_steps", 1]


def test_interrupted_finetune_teacher_prints_its_resume_command(w, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    argv = finetune_argv(w, out, "--max_steps", 4, *CHECKPOINT_EVERY_STEP)
    real = finetune_teacher.sequence_classification_loss
    monkeypatch.setattr(finetune_teacher, "sequence_classification_loss", interrupt_at(3, real))
    code, err, _ = run(finetune_teacher, argv, capsys)
    stop, command = interrupted(code, err)
    assert str(out / trainer.LAST_DIR) in stop and "step 2" in stop
    assert command.startswith("to continue: python finetune_teacher.py ")
    monkeypatch.setattr(finetune_teacher, "sequence_classification_loss", real)
    code, err, summary = run(finetune_teacher, argv_of(command, "finetune_teacher.py"), capsys)
    assert code == 0, err
    assert summary["global_step"] == 4
    assert {"event": "resume", "step": 2}.items() <= next(r for r in read_log(out) if r.get("event") == "resume").items()


def test_interrupted_task_distill_prints_its_resume_command(w, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    argv = distill_argv(w, out, "--intermediate_distill", "--max_steps", 4, *CHECKPOINT_EVERY_STEP)
    real = distill.intermediate_loss_fn
    monkeypatch.setattr(distill, "intermediate_loss_fn", lambda *a, **k: interrupt_at(3, real(*a, **k)))
    code, err, _ = run(task_distill, argv, capsys)
    stop, command = interrupted(code, err)
    assert str(out / trainer.LAST_DIR) in stop and "step 2" in stop
    assert command.startswith("to continue: python task_distill.py ")
    monkeypatch.setattr(distill, "intermediate_loss_fn", real)
    code, err, summary = run(task_distill, argv_of(command, "task_distill.py"), capsys)
    assert code == 0, err
    assert summary["global_step"] == 4


def nan_loss(real: Callable) -> Callable:
    def loss(model, batch):
        value, logs = real(model, batch)
        return value * float("nan"), logs

    return loss


@pytest.mark.parametrize("failure", ["interrupt", "nan"])
def test_failure_before_first_checkpoint_does_not_block_rerun_finetune_teacher(w, tmp_path, capsys, monkeypatch,
                                                                               failure):
    out = tmp_path / "out"
    argv = finetune_argv(w, out)
    real = finetune_teacher.sequence_classification_loss
    broken = interrupt_at(1, real) if failure == "interrupt" else nan_loss(real)
    monkeypatch.setattr(finetune_teacher, "sequence_classification_loss", broken)
    failed = run(finetune_teacher, argv, capsys)[:2]
    monkeypatch.setattr(finetune_teacher, "sequence_classification_loss", real)
    code, err, summary = run(finetune_teacher, argv, capsys)
    assert code == 0, err  # the corrected rerun, same --output_dir: not refused as "not empty"
    assert "not empty" not in err and summary["global_step"] == 2
    if failure == "interrupt":  # and the failed run said what happened, in one line
        interrupted(*failed, resumable=False)
    else:
        user_error(*failed, "step 1")


@pytest.mark.parametrize("failure", ["interrupt", "nan"])
def test_failure_before_first_checkpoint_does_not_block_rerun_task_distill(w, tmp_path, capsys, monkeypatch,
                                                                           failure):
    out = tmp_path / "out"
    argv = distill_argv(w, out, "--max_steps", 2)
    real = distill.prediction_loss_fn
    wrap = (lambda fn: interrupt_at(1, fn)) if failure == "interrupt" else nan_loss
    monkeypatch.setattr(distill, "prediction_loss_fn", lambda *a, **k: wrap(real(*a, **k)))
    failed = run(task_distill, argv, capsys)[:2]
    monkeypatch.setattr(distill, "prediction_loss_fn", real)
    code, err, summary = run(task_distill, argv, capsys)
    assert code == 0, err  # the corrected rerun, same --output_dir: not refused as "not empty"
    assert "not empty" not in err and summary["global_step"] == 2
    if failure == "interrupt":  # and the failed run said what happened, in one line
        interrupted(*failed, resumable=False)
    else:
        user_error(*failed, "step 1")


# ============================================================================================ rule 6
# Long work is only the work the run needs.


def test_cache_teacher_logits_only_for_the_steps_run(w, tmp_path, capsys, monkeypatch):
    lengths = []
    real = evaluation.predict_logits

    def recording(model, data, *args, **kwargs):
        lengths.append(len(data))
        return real(model, data, *args, **kwargs)

    monkeypatch.setattr(evaluation, "predict_logits", recording)
    out = tmp_path / "out"
    code, err, summary = run(task_distill, distill_argv(w, out, "--cache_teacher_logits", "--max_steps", 2), capsys)
    assert code == 0, err
    assert summary["global_step"] == 2
    training_set_calls = [n for n in lengths if n != N_DEV]  # the others evaluate teacher and student on dev
    assert training_set_calls == [2 * BATCH], lengths
    assert 2 * BATCH < N_TRAIN


# ============================================================================================ rule 7
# Loading weights never runs code.


def hostile_copy(src: Path, dst: Path, marker: Path) -> tuple[Path, Path]:
    folder = copy_tree(src, dst)
    return folder, write_hostile(folder / checkpoints.WEIGHTS_PDPARAMS, marker)


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_hostile_pickle_task_distill(w, tmp_path, capsys, role):
    marker = tmp_path / "MARKER"
    folder, weights = hostile_copy(getattr(w, role), tmp_path / role, marker)
    before = snapshot(folder)
    out = tmp_path / "out"
    code, err, _ = run(task_distill, distill_argv(w, out, **{role: folder}), capsys)
    user_error(code, err, weights)
    assert not marker.exists()
    assert snapshot(folder) == before and not out.exists()


def test_hostile_pickle_data_augmentation(w, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    folder, weights = hostile_copy(w.mlm, tmp_path / "mlm", marker)
    train = write_csv(tmp_path / "train.csv", GOOD_CSV)
    out = tmp_path / "aug.csv"
    code, err, _ = run(data_augmentation, augment_argv(w, train, out, mlm=folder), capsys)
    user_error(code, err, weights)
    assert not marker.exists()
    assert not out.exists() and not outputs.partial_path(out).exists()


def test_hostile_pickle_export_model(w, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    folder, weights = hostile_copy(w.teacher, tmp_path / "ckpt", marker)
    out = tmp_path / "infer"
    code, err, _ = run(export_model, ["--model_path", folder, "--output_path", out], capsys)
    user_error(code, err, weights)
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_hostile_pickle_predict_checkpoint(w, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    folder, weights = hostile_copy(w.teacher, tmp_path / "ckpt", marker)
    out = tmp_path / "pred.tsv"
    code, err, _ = run_predict(["--model_path", folder, "--output_file", out], capsys)
    user_error(code, err, weights)
    assert not marker.exists() and not out.exists()


@pytest.fixture(scope="module")
def finetuned(w, tmp_path_factory) -> Path:
    """A real finetune_teacher.py run of 2 steps, its resumable OUTPUT/last written at the end."""
    out = tmp_path_factory.mktemp("finetuned") / "out"
    summary = finetune_teacher.main([str(a) for a in finetune_argv(w, out, "--save_steps", 2)])
    assert summary["global_step"] == 2
    assert (out / trainer.LAST_DIR / trainstate.OPTIMIZER_FILE).is_file()
    assert (out / trainer.LAST_DIR / trainstate.RNG_FILE).is_file()
    return out


@pytest.mark.parametrize("name", [trainstate.OPTIMIZER_FILE, trainstate.RNG_FILE])
def test_hostile_pickle_in_last_on_resume_finetune_teacher(w, finetuned, tmp_path, capsys, name):
    marker = tmp_path / "MARKER"
    out = copy_tree(finetuned, tmp_path / "out")
    hostile = write_hostile(out / trainer.LAST_DIR / name, marker)
    before = snapshot(out)
    code, err, _ = run(finetune_teacher, finetune_argv(w, out, "--save_steps", 2, "--max_steps", 4, "--resume"),
                       capsys)
    user_error(code, err, hostile)
    assert not marker.exists()
    assert snapshot(out) == before
