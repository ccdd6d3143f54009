"""Under paddle.distributed.launch (2 CPU processes, gloo): data_augmentation.py writes the file one process
writes, even when one process finishes its part 31 s after the other, and task_distill.py's
--cache_teacher_logits has each process run the teacher on its share only and trains as one process on the
same global batch, even when one process predicts 32 s slower than the other (gloo's collectives give up
after 30 s).

Each launch costs about 15-30 s, so there are two; the file protocol of the augmentation's processes
(resume per process, manual shards composed with processes) is tested in this process, rank by rank.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import paddle
import pytest

from tinybert.augmentation import augment, outputs, runner
from tinybert import errors
from tinybert.training import evaluation
from tinybert.models import modeling
from tinybert.data import tasks
import task_distill
from tinybert.training import trainer
from builders import ROOT, SENTENCES, run_augmentation as run, save_tiny_model, summary_of, write_sst2
from tinybert.data.tokenization import BertTokenizer


def launch(tmp_path: Path, script: Path, *args: str) -> str:
    """Run `script` under paddle.distributed.launch with 2 CPU processes; returns the workers' logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PADDLE_", "FLAGS_selected"))}
    logs = tmp_path / "logs"
    proc = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
                           "--log_dir", str(logs), str(script), *map(str, args)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    text = "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace") for p in sorted(logs.glob("workerlog.*")))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + text[-4000:]
    return text


# ---------------------------------------------------------------------------------------------- augmentation

def aug_args(model_dir: Path, glove: Path, source: Path, output: Path) -> list[str]:
    return ["--pretrained_bert_model", str(model_dir), "--glove_embs", str(glove), "--task_name", "SST-2",
            "--train_file", str(source), "--N", "4", "--engine", "eager", "--output_file", str(output)]


AUG_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import time

import data_augmentation
from tinybert.augmentation import runner
from tinybert.training import trainer

real = runner.run_augmentation


def late(*args, **kwargs):
    if trainer.rank() == 1:  # its part done 31 s after process 0's: more than gloo's 30 s timeout
        time.sleep(31)
    return real(*args, **kwargs)


runner.run_augmentation = late
data_augmentation.main(sys.argv[1:])
"""


def test_two_launched_processes_write_the_single_processes_file(random_dir, glove_file, tmp_path, capsys):
    source = write_sst2(tmp_path / "train.tsv", SENTENCES + SENTENCES[::-1] + SENTENCES[:3])  # 19 rows
    single = tmp_path / "single.tsv"
    code, err = run(aug_args(random_dir, glove_file, source, single), capsys)
    assert code == 0, err
    launched = tmp_path / "out" / "launched.tsv"
    script = tmp_path / "late_augmentation.py"
    script.write_text(textwrap.dedent(AUG_SCRIPT.format(root=str(ROOT))))
    logs = launch(tmp_path, script, *aug_args(random_dir, glove_file, source, launched))
    assert launched.read_bytes() == single.read_bytes()
    assert summary_of(logs) == summary_of(err)  # process 0's line: the whole file's counts
    assert "process 1 of 2: 10 examples done" in logs  # its half: examples 9-18 of 0-18
    # Only the output and its progress record are left: no parts, no markers.
    assert sorted(p.name for p in launched.parent.iterdir()) == ["launched.tsv", "launched.tsv.progress.json"]
    code, err = run(aug_args(random_dir, glove_file, source, launched) + ["--resume"], capsys)
    assert code == 0 and "already complete" in err and summary_of(err) == summary_of(logs)


def finder(model_dir: Path, glove: Path, config: augment.AugmentConfig) -> augment.CandidateFinder:
    from tinybert.augmentation.glove import load_glove

    tok = BertTokenizer.from_pretrained(model_dir)
    mlm = augment.MaskedLMPredictor(modeling.BertForMaskedLM.from_pretrained(model_dir), tok, config.K,
                                    config.batch_size, "eager")
    return augment.CandidateFinder(tok, load_glove(glove, verbose=False), mlm, config)


def run_rank(rank: int, rows, make_finder, config, output: Path, settings: dict | None = None,
             events: list | None = None, world: int = 2, **kwargs):
    """One launched process of `world`, run here, after the processes of higher rank (so that process 0
    finds their parts done and joins them): its waits return at once and are recorded in `events`, as
    are its model loads ("load")."""
    events = events if events is not None else []

    def loading():
        events.append("load")
        return make_finder()

    launch_ = runner.Launch(rank, world, events.append)
    return runner.run_launched(launch_, loading, rows, config, output, settings or {"N": config.N},
                               verbose=False, **kwargs)


def test_launched_processes_resume_their_own_parts_and_compose_with_shards(random_dir, glove_file, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(runner, "CHUNK_EXAMPLES", 2)
    config = augment.AugmentConfig(N=3, K=5)
    rows = tasks.task_rows(write_sst2(tmp_path / "train.tsv", SENTENCES * 2), "SST-2", "train")  # 16 rows
    found = finder(random_dir, glove_file, config)
    straight = tmp_path / "straight.tsv"
    runner.run_augmentation(rows, found, config, straight, {"N": 3}, verbose=False)

    # A launch interrupted after process 1's first chunk (process 0 never started): process 1's part is
    # its own file, unfinished; the final output does not exist.
    out = tmp_path / "out.tsv"
    real = runner.run_augmentation
    monkeypatch.setattr(runner, "run_augmentation", lambda *a, **k: real(*a, **k, max_chunks=1))
    assert run_rank(1, rows, lambda: found, config, out) is None
    monkeypatch.setattr(runner, "run_augmentation", real)
    part1 = outputs.process_path(out, 1, 2)
    assert outputs.partial_path(part1).exists() and not out.exists()
    # Relaunched with --resume: process 1 continues its part, process 0 does its own and joins. Process 0
    # loads the models first (only it writes GloVe's cache); every process waits for the parts before
    # process 0 joins them.
    events = {1: [], 0: []}
    assert run_rank(1, rows, lambda: found, config, out, resume=True, events=events[1]) is None
    merged = run_rank(0, rows, lambda: found, config, out, resume=True, events=events[0])
    parts_done = "the other processes' parts"
    assert events == {1: ["process 0 to load the models", "load", parts_done],
                      0: ["load", "process 0 to load the models", parts_done]}
    assert out.read_bytes() == straight.read_bytes()
    assert merged.done == 16 and merged.complete
    assert sorted(p.name for p in tmp_path.glob("out*")) == ["out.tsv", "out.tsv.progress.json"]
    assert not list(tmp_path.glob(".out.tsv.*"))
    # Resumed again: complete, on every process, without loading the models or waiting.
    events = {1: [], 0: []}
    assert run_rank(1, rows, lambda: found, config, out, resume=True, events=events[1]) is None
    assert run_rank(0, rows, lambda: found, config, out, resume=True, events=events[0]).done == 16
    assert events == {1: [], 0: []}

    # --num_shards 2 on two machines, each a launch of 2 processes: 4 parts, then --merge_shards.
    sharded = tmp_path / "sharded.tsv"
    for shard in (1, 0):
        part = outputs.shard_path(sharded, shard, 2)
        for rank in (1, 0):
            run_rank(rank, rows, lambda: found, config, part, {"N": 3, "shard": [shard, 2]},
                     shard_id=shard, num_shards=2)
    runner.merge_shards(sharded, 2, {"N": 3}, overwrite=False)
    assert sharded.read_bytes() == straight.read_bytes()


def test_resume_refuses_another_number_of_processes(random_dir, glove_file, tmp_path, monkeypatch):
    config = augment.AugmentConfig(N=3, K=5)
    rows = tasks.task_rows(write_sst2(tmp_path / "train.tsv", SENTENCES), "SST-2", "train")
    out = tmp_path / "out.tsv"
    real = runner.run_augmentation
    monkeypatch.setattr(runner, "run_augmentation", lambda *a, **k: real(*a, **k, max_chunks=0))
    run_rank(1, rows, lambda: None, config, out)  # a part started, nothing done
    monkeypatch.setattr(runner, "run_augmentation", real)
    with pytest.raises(errors.UserError, match=r"out.process-1-of-2.tsv.*another number of processes"):
        run_rank(0, rows, lambda: None, config, out, world=3, resume=True)


# ---------------------------------------------------------------------------------------------- teacher logits

CACHE_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import time

from tinybert import cli  # noqa: F401
import numpy as np

from tinybert.training import evaluation
from tinybert.data import features
import task_distill
from tinybert.training import trainer

real_predict, real_collate = evaluation.predict_logits, features.collate


def recording(model, dataset, batch_size, pad_token_id=0, desc=None):
    # The cache's call: count the rows this process runs the teacher on, keep what it returns.
    if not (desc or "").startswith("teacher logits"):
        return real_predict(model, dataset, batch_size, pad_token_id, desc)
    rows = []

    def counting(items, pad):
        rows.append(len(items))
        if trainer.rank() == 1:  # its 2 of the 5 batches: 32 s behind process 0, more than gloo's 30 s timeout
            time.sleep(16)
        return real_collate(items, pad)

    evaluation.features.collate = counting
    try:
        logits = real_predict(model, dataset, batch_size, pad_token_id, desc)
    finally:
        evaluation.features.collate = real_collate
    np.savez({out!r} + f"/cache{{trainer.rank()}}.npz", rows=sum(rows), total=len(dataset), logits=logits,
             world=trainer.world_size())
    return logits


evaluation.predict_logits = recording
task_distill.main(sys.argv[1:])
"""


def write_teacher(folder: Path) -> Path:
    """A random 2-layer teacher (equality needs no trained one); no dropout, so one and two processes
    draw nothing at random."""
    return save_tiny_model(folder, modeling.BertForSequenceClassification, seed=5,
                           label2id=tasks.get_task("SST-2").label2id)


def distill_args(tmp_path: Path, output_dir: Path, batch_size: int) -> list[str]:
    data = tmp_path / "SST-2"
    return ["--task_name", "SST-2", "--data_dir", str(data), "--teacher_path", str(tmp_path / "teacher"),
            "--student_config", "num_hidden_layers=1,hidden_size=16,intermediate_size=32", "--max_seq_length", "32",
            "--batch_size", str(batch_size), "--max_steps", "3", "--learning_rate", "1e-2", "--T", "2",
            "--alpha", "0.5", "--logging_steps", "1", "--save_steps", "1000", "--warmup_proportion", "0",
            "--cache_teacher_logits", "--output_dir", str(output_dir), "--device", "cpu"]


def test_cached_teacher_logits_split_between_two_processes_train_as_one(tmp_path, monkeypatch):
    data = tmp_path / "SST-2"
    data.mkdir()
    words = ["good", "bad", "fun", "sad", "the movie", "a film", "is very", "was not", "story", "plot"]
    rng = np.random.default_rng(0)
    for name, n in (("train.tsv", 20), ("dev.tsv", 9)):
        lines = [" ".join(rng.choice(words, size=int(rng.integers(1, 7)))) + f"\t{i % 2}" for i in range(n)]
        (data / name).write_text("sentence\tlabel\n" + "\n".join(lines) + "\n", encoding="utf-8")
    write_teacher(tmp_path / "teacher")

    script = tmp_path / "cache_distill.py"
    script.write_text(textwrap.dedent(CACHE_SCRIPT.format(root=str(ROOT), out=str(tmp_path))))
    launch(tmp_path, script, *distill_args(tmp_path, tmp_path / "two", batch_size=4))

    # One process, the same global batch of 8: its cache and its training.
    cached = []
    real = evaluation.predict_logits

    def keeping(*args, **kwargs):
        logits = real(*args, **kwargs)
        if kwargs.get("desc"):  # the cache's call
            cached.append(logits)
        return logits

    monkeypatch.setattr(evaluation, "predict_logits", keeping)
    task_distill.main(distill_args(tmp_path, tmp_path / "one", batch_size=8))
    assert len(cached) == 1
    expected = cached[0]

    parts = [np.load(tmp_path / f"cache{rank}.npz") for rank in (0, 1)]
    assert [int(p["world"]) for p in parts] == [2, 2]
    total = int(parts[0]["total"])
    assert total == len(expected) == 20  # 3 steps of 8, 8 and 4 (2 + 2) cover the 20 examples: all cached
    # Each process ran the teacher on its share only; both got every row back, in order.
    assert 0 < int(parts[0]["rows"]) < total and 0 < int(parts[1]["rows"]) < total
    assert int(parts[0]["rows"]) + int(parts[1]["rows"]) == total
    for p in parts:
        np.testing.assert_allclose(p["logits"], expected, rtol=1e-5, atol=1e-6)

    log = {run: [r for r in task_distill_log(tmp_path / run) if "loss_pred" in r] for run in ("one", "two")}
    assert len(log["one"]) == len(log["two"]) == 3
    assert len({round(r["loss"], 6) for r in log["one"]}) > 1  # the weights moved: later steps check the trajectory
    for a, b in zip(log["one"], log["two"]):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-6)
    weights = [paddle.load(str(tmp_path / run / trainer.LAST_DIR / "model_state.pdparams")) for run in ("one", "two")]
    assert weights[0].keys() == weights[1].keys()
    for name, value in weights[0].items():
        np.testing.assert_allclose(weights[1][name].numpy(), value.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def task_distill_log(output_dir: Path) -> list[dict]:
    lines = (output_dir / trainer.LOG_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]
