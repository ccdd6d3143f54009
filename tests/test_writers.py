"""Every writer, however it is run next to another or stopped: one writer per output, any kill at any
instant, a resumed run only the one that was started, every path written checked against the inputs.

Each rule is tested at its mechanism (checkpoints.py's lock and atomic writers, trainstate.py's identity,
outputs.py's protocol) and for each script that writes. Concurrent writers and kills are real processes: the
writers' test hooks (checkpoints.hook) pause a process at a named point (TINYBERT_PAUSE_AT) or kill it there
with SIGKILL (TINYBERT_KILL_AT). Fixtures are test_safety.py's tiny ones.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from builders import (LABELS, ROOT, augment_argv, distill_argv, finetune_argv, run, run_predict, save_tiny_model,
                      snapshot, user_error)

import convert_checkpoint
import data_augmentation
import export_model
import finetune_teacher
import task_distill
from tinybert.augmentation import outputs
from tinybert.errors import UserError
from tinybert.models import checkpoints, modeling
from tinybert.training import trainer, trainstate
from tinybert.training.config import RESUME_FREE

KILLED = -signal.SIGKILL


# ============================================================================================ processes


def command(script: str, argv: list) -> list[str]:
    return [sys.executable, str(ROOT / script), *map(str, argv)]


def hooked_env(**hooks: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYBERT_")}
    return {**env, **hooks}


def run_killed_at(point: str, script: str, argv: list) -> None:
    """Run a script in a process that kills itself (SIGKILL) at `point`; it must have got there."""
    done = subprocess.run(command(script, argv), env=hooked_env(TINYBERT_KILL_AT=point), cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == KILLED, f"not killed at {point}:\n{done.stderr[-3000:]}"


class Paused:
    """A script in a process paused at `point` (holding what it holds there) until killed."""

    def __init__(self, script: str, argv: list, point: str = "output_locked", code: str | None = None):
        cmd = [sys.executable, "-c", code] if code else command(script, argv)
        self.proc = subprocess.Popen(cmd, env=hooked_env(TINYBERT_PAUSE_AT=f"{point}:120"), cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seen = []
        for line in self.proc.stderr:
            seen.append(line)
            if line.startswith(f"paused at {point}"):
                return
        raise AssertionError(f"never paused at {point}:\n{''.join(seen)[-3000:]}")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> "Paused":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def refused_by(paused: Paused, code: int, err: str, output: Path) -> None:
    line = user_error(code, err, output, "is being written by another process", f"pid {paused.proc.pid} on ")
    assert ".py" in line  # the holder's command


# ============================================================================================ rule 1: the lock

LOCKER = """
import sys
from tinybert.models import checkpoints, modeling
checkpoints.lock_output(sys.argv[1], "--out")
"""


def test_lock_refuses_a_second_process_and_is_taken_over_from_a_dead_one(tmp_path):
    out = tmp_path / "out"
    holder = Paused("", [], code=LOCKER.replace("sys.argv[1]", repr(str(out))))
    with pytest.raises(UserError, match=rf"--out {out} is being written by another process "
                                        rf"\(pid {holder.proc.pid} on .*\); wait for it to end"):
        checkpoints.lock_output(out, "--out")
    holder.kill()  # SIGKILL: its lock file stays, its lock goes with it
    assert checkpoints.lock_path(out).exists()
    checkpoints.lock_output(out, "--out")
    checkpoints.lock_output(out, "--out")  # this process holds it already: a no-op
    holder_record = json.loads(checkpoints.lock_path(out).read_text())
    assert holder_record["pid"] == os.getpid()
    checkpoints.unlock_output(out)
    assert not checkpoints.lock_path(out).exists()


def test_temporary_names_are_unique_per_writer(tmp_path):
    with checkpoints.atomic_path(tmp_path / "a.json") as one, checkpoints.atomic_path(tmp_path / "a.json") as two:
        assert one != two and one.suffix == two.suffix == ".json" and str(os.getpid()) in one.name
        one.write_text("1")
        two.write_text("2")
    assert (tmp_path / "a.json").read_text() == "1"  # the last rename wins, and no temporary is left
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize("script", ["task_distill", "finetune_teacher", "export_model", "convert_checkpoint",
                                    "data_augmentation"])
def test_second_writer_is_refused_naming_the_first(w, tmp_path, capsys, script):
    out = tmp_path / ("out.tsv" if script == "data_augmentation" else "out")
    argv = {"task_distill": lambda: distill_argv(w, out),
            "finetune_teacher": lambda: finetune_argv(w, out),
            "export_model": lambda: ["--model_path", w.teacher, "--output_path", out],
            "convert_checkpoint": lambda: ["--from_hf", w.hf, "--output_dir", out],
            "data_augmentation": lambda: augment_argv(w, w.data / "train.tsv", out)}[script]()
    module = {"task_distill": task_distill, "finetune_teacher": finetune_teacher, "export_model": export_model,
              "convert_checkpoint": convert_checkpoint, "data_augmentation": data_augmentation}[script]
    with Paused(script + ".py", argv) as first:
        before = snapshot(tmp_path)
        code, err, _ = run(module, argv, capsys)
        refused_by(first, code, err, out)
        assert snapshot(tmp_path) == before  # nothing of the first one's touched
    code, err, _ = run(module, argv, capsys)  # the first one died holding it: taken over
    assert code == 0, err
    assert out.exists() and not checkpoints.lock_path(out).exists()


def test_processes_of_one_launch_share_the_output(tmp_path, monkeypatch):
    """Under paddle.distributed.launch only process 0 holds the output; the others are not refused."""
    out = tmp_path / "out"
    with Paused("", [], code=LOCKER.replace("sys.argv[1]", repr(str(out)))):
        monkeypatch.setenv("PADDLE_TRAINER_ID", "1")
        monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")
        config = trainer.TrainConfig(output_dir=str(out))
        trainer.hold_output(config)  # process 1: no lock taken, no refusal
        trainer.release_output(config)


# ============================================================================================ rule 2: kills

SWAPPER = """
import sys
from pathlib import Path
from tinybert.models import checkpoints, modeling
if sys.argv[2] == "no-exchange":
    checkpoints._exchange = lambda a, b: False
checkpoints.atomic_dir(Path(sys.argv[1]), lambda d: (d / "version").write_text("new"))
"""


@pytest.mark.parametrize("point,exchange", [("out.complete", "exchange"), ("out.swapped", "exchange"),
                                            ("out.complete", "no-exchange"), ("out.set_aside", "no-exchange")])
@pytest.mark.parametrize("first", [True, False])
def test_atomic_dir_killed_at_each_instant_keeps_a_complete_version(tmp_path, point, exchange, first):
    out = tmp_path / "out"
    if not first:
        out.mkdir()
        (out / "version").write_text("old")
    done = subprocess.run([sys.executable, "-c", SWAPPER, str(out), exchange], env=hooked_env(TINYBERT_KILL_AT=point),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    if done.returncode != KILLED:  # a first version is renamed in, never exchanged: no such point
        assert (first, point, exchange) == (True, "out.swapped", "exchange") and done.returncode == 0, done.stderr
    if exchange == "exchange" and not first:
        assert (out / "version").read_text() in ("old", "new")  # one step: the name never disappears
    checkpoints.recover_dir(out)  # what the next writer does first
    kept = "old" if (not first and point == "out.complete") else "new"
    assert (out / "version").read_text() == kept
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_recovery_prefers_the_new_complete_version_and_never_deletes_the_only_one(tmp_path):
    out = tmp_path / "out"
    for name, text in ((".out.old-1-a", "old"), (".out.new-2-b", "new"), (".out.tmp-3-c", "half")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "version").write_text(text)
    assert checkpoints.complete_leftovers(out)[0].name == ".out.new-2-b"
    checkpoints.recover_dir(out)
    assert (out / "version").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out"]
    (tmp_path / "out").rename(tmp_path / ".out.old")  # an older version's name for the set-aside folder
    checkpoints.recover_dir(out)
    assert (out / "version").read_text() == "new"


def test_task_distill_killed_before_its_first_checkpoint_takes_its_name_resumes(w, tmp_path, capsys):
    out = tmp_path / "out"
    argv = distill_argv(w, out, "--max_steps", 2)
    run_killed_at("last.complete", "task_distill.py", argv)
    assert not (out / "last").exists() and checkpoints.complete_leftovers(out / "last")
    code, err, _ = run(task_distill, argv, capsys)  # a plain rerun keeps it: it is a run to resume
    user_error(code, err, "--resume")
    code, err, summary = run(task_distill, distill_argv(w, out, "--max_steps", 4, "--resume"), capsys)
    assert code == 0, err
    log = [json.loads(line) for line in (out / trainer.LOG_FILE).read_text().splitlines()]
    assert [r["step"] for r in log if r.get("event") == "resume"] == [2]
    assert summary["global_step"] == 4 and not checkpoints.dir_leftovers(out / "last")


@pytest.mark.parametrize("point", ["x.complete", "x.swapped"])
def test_export_overwrite_killed_leaves_the_old_or_the_new_export(w, tmp_path, capsys, point):
    out = tmp_path / "x"
    assert run(export_model, ["--model_path", w.teacher, "--output_path", out], capsys)[0] == 0
    other = save_tiny_model(tmp_path / "teacher2", modeling.model_class("bert", "classification"), seed=7,
                            label2id=LABELS, initializer_range=0.2)
    run_killed_at(point, "export_model.py", ["--model_path", other, "--output_path", out, "--overwrite"])
    rows = tmp_path / "rows.csv"
    rows.write_text("text\nthe movie was good\n")
    code, err, _ = run_predict(["--model_path", out, "--test_file", rows], capsys)
    assert code == 0, err  # the folder is there, whole
    code, err, _ = run(export_model, ["--model_path", other, "--output_path", out, "--overwrite"], capsys)
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".x")] == []


def test_convert_killed_before_its_folder_takes_its_name_is_kept(w, tmp_path, capsys):
    out = tmp_path / "converted"
    run_killed_at("converted.complete", "convert_checkpoint.py", ["--from_hf", w.hf, "--output_dir", out])
    code, err, _ = run(convert_checkpoint, ["--from_hf", w.hf, "--output_dir", out], capsys)
    user_error(code, err, out, "--overwrite_output_dir")  # recovered first, so the rerun finds it complete
    assert (out / checkpoints.WEIGHTS_PDPARAMS).is_file()


@pytest.mark.parametrize("point", ["augmentation.chunk", "augmentation.recorded", "augmentation.named"])
def test_augmentation_killed_at_each_mark_resumes_to_the_whole_file(w, tmp_path, capsys, point):
    whole = tmp_path / "whole.tsv"
    assert run(data_augmentation, augment_argv(w, w.data / "train.tsv", whole), capsys)[0] == 0
    out = tmp_path / "out.tsv"
    run_killed_at(point, "data_augmentation.py", augment_argv(w, w.data / "train.tsv", out))
    assert out.exists() == (point == "augmentation.named")
    code, err, _ = run(data_augmentation, augment_argv(w, w.data / "train.tsv", out, "--resume"), capsys)
    assert code == 0, err
    assert out.read_bytes() == whole.read_bytes()
    assert json.loads(outputs.progress_path(out).read_text())["complete"] is True


def test_augmentation_resume_never_empties_a_finished_file(w, tmp_path, capsys):
    """A record left saying unfinished beside a finished file (the older order of the marks): --resume
    writes the file again beside it, and the finished one is replaced only by a whole one."""
    out = tmp_path / "out.tsv"
    assert run(data_augmentation, augment_argv(w, w.data / "train.tsv", out), capsys)[0] == 0
    whole = out.read_bytes()
    record = json.loads(outputs.progress_path(out).read_text())
    outputs.progress_path(out).write_text(json.dumps({**record, "complete": False}))
    code, err, _ = run(data_augmentation, augment_argv(w, w.data / "train.tsv", out, "--resume"), capsys)
    assert code == 0, err
    assert out.read_bytes() == whole


# ============================================================================================ rule 3: identity


def test_run_changes_lists_every_setting_but_the_free_ones_and_each_input():
    saved = {"args": {"learning_rate": 5e-5, "logging_steps": 10, "max_seq_length": 32, "stage": "prediction"},
             "identity": {"script": "task_distill.py", "--teacher_path": "a", "train file": "b"}}
    args = {"learning_rate": 1e-4, "logging_steps": 99, "max_seq_length": 32, "stage": "prediction"}
    identity = {"script": "task_distill.py", "--teacher_path": "c", "train file": "b"}
    assert "logging_steps" in RESUME_FREE and "learning_rate" not in RESUME_FREE
    assert trainstate.run_changes(saved, args, identity) == ["--learning_rate 5e-05 -> 0.0001",
                                                             "--teacher_path has other content"]
    assert trainstate.other_kind(saved, args, identity) is None
    assert trainstate.other_kind(saved, {**args, "stage": "intermediate"}, identity) == (
        "task_distill.py's prediction stage", "task_distill.py's intermediate stage")
    legacy = {"args": saved["args"]}  # written before identities: its inputs cannot be compared
    assert trainstate.run_changes(legacy, {**args, "learning_rate": 5e-5}, identity) == []


def test_content_hash_follows_content_not_place(tmp_path, w):
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("x\t1\n")
    b.write_text("x\t1\n")
    assert checkpoints.content_hash(a) == checkpoints.content_hash(b)
    b.write_text("x\t0\n")  # the same size
    assert checkpoints.content_hash(a) != checkpoints.content_hash(b)
    folder = tmp_path / "teacher"
    shutil.copytree(w.teacher, folder)
    (folder / "notes.txt").write_text("not part of the model")
    assert checkpoints.content_hash(folder) == checkpoints.content_hash(w.teacher)


@pytest.fixture
def saved_run(w, tmp_path, capsys) -> Path:
    out = tmp_path / "run"
    code, err, _ = run(task_distill, distill_argv(w, out, "--max_steps", 2), capsys)
    assert code == 0, err
    return out


def edited_data(w, tmp_path: Path) -> Path:
    """The training data with its labels swapped: the same rows, the same size, other content."""
    folder = tmp_path / "edited"
    folder.mkdir()
    (folder / "dev.tsv").write_bytes((w.data / "dev.tsv").read_bytes())
    swapped = (w.data / "train.tsv").read_text().replace("\t1\n", "\tX\n").replace("\t0\n", "\t1\n").replace("\tX\n", "\t0\n")
    (folder / "train.tsv").write_text(swapped)
    assert (folder / "train.tsv").stat().st_size == (w.data / "train.tsv").stat().st_size
    return folder


@pytest.mark.parametrize("change,needle", [
    ("teacher", "--teacher_path has other content"),
    ("data", "train file has other content"),
    (["--max_seq_length", 16], "--max_seq_length 32 -> 16"),
    (["--learning_rate", "1e-3"], "--learning_rate 5e-05 -> 0.001"),
    (["--intermediate_distill"], "holds a run of task_distill.py's prediction stage, not of task_distill.py's "
                                 "intermediate stage"),
])
def test_task_distill_resume_refuses_another_run(w, saved_run, tmp_path, capsys, change, needle):
    kwargs, extra = {}, []
    if change == "teacher":
        kwargs["teacher"] = save_tiny_model(tmp_path / "teacher2", modeling.model_class("bert", "classification"), seed=7,
                            label2id=LABELS, initializer_range=0.2)
    elif change == "data":
        kwargs["data"] = edited_data(w, tmp_path)
    else:
        extra = change
    before = snapshot(saved_run)
    code, err, _ = run(task_distill, distill_argv(w, saved_run, "--max_steps", 4, "--resume", *extra, **kwargs), capsys)
    user_error(code, err, "--resume", needle)
    assert snapshot(saved_run) == before


def test_task_distill_resume_with_free_settings_and_moved_inputs(w, saved_run, tmp_path, capsys):
    moved = tmp_path / "moved_teacher"
    shutil.copytree(w.teacher, moved)
    code, err, summary = run(task_distill, distill_argv(w, saved_run, "--max_steps", 4, "--resume", "--logging_steps",
                                                        2, "--save_steps", 3, "--logging_dir", tmp_path / "vdl",
                                                        teacher=moved), capsys)
    assert code == 0, err
    assert summary["global_step"] == 4


def test_intermediate_run_resumed_as_the_prediction_stage_is_one_line(w, tmp_path, capsys):
    out = tmp_path / "stage1"
    assert run(task_distill, distill_argv(w, out, "--intermediate_distill"), capsys)[0] == 0
    code, err, _ = run(task_distill, distill_argv(w, out, "--max_steps", 2, "--resume"), capsys)
    user_error(code, err, "intermediate stage, not of task_distill.py's prediction stage")


def test_finetune_teacher_resume_refuses_another_learning_rate(w, tmp_path, capsys):
    out = tmp_path / "ft"
    assert run(finetune_teacher, finetune_argv(w, out), capsys)[0] == 0
    code, err, _ = run(finetune_teacher, finetune_argv(w, out, "--resume", "--learning_rate", "2e-3"), capsys)
    user_error(code, err, "--learning_rate 0.001 -> 0.002")


def test_augmentation_resume_refuses_an_input_edited_to_the_same_size(w, tmp_path, capsys):
    source = tmp_path / "train.tsv"
    source.write_bytes((w.data / "train.tsv").read_bytes())
    out = tmp_path / "out.tsv"
    run_killed_at("augmentation.chunk", "data_augmentation.py", augment_argv(w, source, out))
    folder = edited_data(w, tmp_path)
    source.write_bytes((folder / "train.tsv").read_bytes())
    code, err, _ = run(data_augmentation, augment_argv(w, source, out, "--resume"), capsys)
    user_error(code, err, f"cannot resume {out}: its input", "has changed", "--overwrite")


# ============================================================================================ rule 8


@pytest.mark.parametrize("script", ["task_distill", "finetune_teacher"])
def test_logging_dir_inside_an_input_is_refused(w, tmp_path, capsys, script):
    inside = w.teacher / "visualdl"
    argv = (distill_argv if script == "task_distill" else finetune_argv)(w, tmp_path / "out", "--logging_dir", inside)
    before = snapshot(w.teacher)
    code, err, _ = run(task_distill if script == "task_distill" else finetune_teacher, argv, capsys)
    user_error(code, err, "--logging_dir", "lies inside the input")
    assert snapshot(w.teacher) == before and not (tmp_path / "out").exists()


def test_augmentation_side_file_that_is_an_input_is_refused(w, tmp_path, capsys):
    out = tmp_path / "out.tsv"
    glove = outputs.progress_path(out)  # the word vectors, where the run would keep its progress record
    glove.write_bytes(w.glove.read_bytes())
    argv = augment_argv(w, w.data / "train.tsv", out)
    argv[argv.index(w.glove)] = glove
    code, err, _ = run(data_augmentation, argv, capsys)
    user_error(code, err, "is the input --glove_embs")
    assert glove.read_bytes() == w.glove.read_bytes() and not out.exists()
