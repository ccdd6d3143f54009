"""Speed of the intermediate distillation stage: every speed feature on against all of them off.

    python benchmarks/distill_speed.py                 # BERT-base-shaped teacher, TinyBERT4 student, real SST-2
    python benchmarks/distill_speed.py --quick         # tiny shapes, a few seconds (the tests run this)

Setup (issue 14): real SST-2 training rows (a seeded sample of --rows of them, from --glue_dir), tokenized with
all-MiniLM-L6-v2's vocabulary (BERT-base's uncased WordPiece), batch 32, max_seq_length 64; a teacher of
BERT-base's shape (12 x 768) and a TinyBERT4 student (4 x 312, FFN 1200), random weights (speed does not depend
on them), uniform layer map, all three loss terms. One epoch over the rows is run through trainer.train, the
way task_distill.py runs it, in two settings:

    plain   random batches, the eager teacher, every loss term read from the device at every step
            (what the loop did before: float(loss) per step), one CPU thread (Paddle's own default,
            FLAGS_paddle_num_threads=1, which the scripts used to keep)
    fast    length-grouped batches, the teacher on --teacher_runtime (the default of task_distill.py),
            losses read at logging steps only, every core this process may use (the scripts' default now)

The settings alternate, round after round, so load from other processes slows both alike; each number is a
median over rounds. Checkpoint writing is subtracted. Compiling the static teacher happens once, before the
rounds (a real epoch is thousands of steps). Then one step of each setting is profiled part by part (teacher,
student forward and losses, backward, optimizer), and the prediction stage with --cache_teacher_logits is
timed (examples/s, and the cache's own cost).

The gate line: `distill_epoch_speedup: <ratio>x`, plain's median epoch time over fast's.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import tinybert
from tinybert import cli

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import paddle

from tinybert import assets
from tinybert.distillation import distill
from tinybert import errors
from tinybert.training import evaluation
from tinybert.data import features
import layer_mapping
from tinybert.models import modeling
from tinybert.data import tasks
from tinybert.training import trainer
from tinybert.data.tokenization import BertTokenizer


@dataclass(frozen=True)
class Setting:
    name: str
    group_by_length: bool
    teacher_runtime: str
    read_every_step: bool
    threads: int

    def use(self) -> None:
        """Paddle's eager kernels on this setting's number of threads."""
        paddle.base.core.set_num_threads(self.threads)


# ------------------------------------------------------------------------------------------ set-up

def sst2_examples(glue_dir: Path, rows: int, seed: int) -> list:
    """A seeded sample of SST-2's training rows (the length distribution of the real set)."""
    if not (glue_dir / "SST-2" / "train.tsv").is_file():
        raise errors.UserError(f"{glue_dir / 'SST-2' / 'train.tsv'} not found: pass --glue_dir (the folder holding "
                               "SST-2/)")
    _, data = tasks.load_task_data(tasks.DataConfig(task_name="SST-2", glue_dir=str(glue_dir)), splits=("train",))
    train = data["train"]
    pick = np.random.default_rng(seed).choice(len(train), size=min(rows, len(train)), replace=False)
    return [train[int(i)] for i in np.sort(pick)]


def build_models(quick: bool, vocab_size: int) -> tuple[modeling.PretrainedBert, modeling.PretrainedBert]:
    if quick:
        t = modeling.BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                                intermediate_size=128)
        s = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    else:
        t = modeling.BertConfig(vocab_size=vocab_size)  # BERT-base: 12 x 768, 12 heads, FFN 3072
        s = dict(hidden_size=312, num_hidden_layers=4, num_attention_heads=12, intermediate_size=1200)
    trainer.set_seed(0)
    teacher = modeling.model_class("bert", "classification")(t)
    teacher.eval()
    for p in teacher.parameters():
        p.stop_gradient = True
    student_config = modeling.model_class("tinybert", "classification").config_class.from_dict(
        {**t.to_dict(), **s, "fit_size": t.hidden_size})
    student = modeling.model_class("tinybert", "classification")(student_config)
    return teacher, student


def fresh_student(student: modeling.PretrainedBert, initial: dict) -> modeling.PretrainedBert:
    student.set_state_dict(initial)
    return student


def with_reads_every_step(loss_fn: trainer.LossFn) -> trainer.LossFn:
    """The loop before issue 14 read each logged value from the device every step."""
    def read(model, batch):
        loss, logs = loss_fn(model, batch)
        float(loss)
        for value in logs.values():
            float(value)
        return loss, logs
    return read


# ------------------------------------------------------------------------------------------ measures

def epoch_seconds(setting: Setting, loss_fn, student, initial, data, args, out: Path) -> float:
    """One epoch of the intermediate stage through trainer.train; checkpoint writing subtracted."""
    steps = -(-len(data) // args.batch_size)
    config = trainer.TrainConfig(
        output_dir=str(out), overwrite_output_dir=True, learning_rate=5e-5, num_train_epochs=1,
        batch_size=args.batch_size, logging_steps=1 if setting.read_every_step else steps, save_steps=10**9,
        checkpoint_minutes=10**6, group_by_length=setting.group_by_length, visualdl=False, seed=args.seed)
    student = fresh_student(student, initial)
    summary = trainer.train(student, data, loss_fn, config,
                            parameters=distill.trainable_parameters(student, "intermediate", args.projection),
                            collate_fn=args.collate)
    return summary["train_seconds"] - summary["checkpoint_seconds"]


def profile_step(setting: Setting, run_teacher, student, layer_map, projection, data, args,
                 repeats: int) -> dict[str, float]:
    """Median seconds of each part of one intermediate step over `repeats` batches of this setting's order."""
    params = distill.trainable_parameters(student, "intermediate", projection)
    config = trainer.TrainConfig(output_dir="unused", learning_rate=5e-5, max_steps=10**6)
    optimizer, _ = trainer.build_optimizer(student, params, config, 10**6)
    plan = features.make_plan(data, trainer.TrainConfig(output_dir="unused", batch_size=args.batch_size,
                                                        group_by_length=setting.group_by_length, seed=args.seed), 1)
    batches = [b[0] for b in plan.steps_of_epoch(0)[:repeats]]
    parts: dict[str, list[float]] = {"teacher": [], "student forward + losses": [], "backward": [],
                                     "optimizer": []}
    student.train()
    with paddle.no_grad():  # a static teacher compiles on its first call: not part of a step
        run_teacher(distill.model_inputs(trainer.to_tensors(args.collate([data[int(i)] for i in batches[0]]))))
    for ids in batches:
        batch = trainer.to_tensors(args.collate([data[int(i)] for i in ids]))
        inputs = distill.model_inputs(batch)
        began = time.perf_counter()
        t_out = run_teacher(inputs)
        _sync(t_out.hidden_states[0])
        t1 = time.perf_counter()
        s_out = student.base(**inputs, output_hidden_states=True, output_attention_scores=True,
                             num_layers=student.config.num_hidden_layers)
        loss, logs = distill.losses.intermediate_loss(s_out, t_out, layer_map, batch["attention_mask"], projection,
                                                      None)
        _sync(loss)
        t2 = time.perf_counter()
        loss.backward()
        _sync(params[0].grad)
        t3 = time.perf_counter()
        optimizer.step()
        optimizer.clear_grad()
        _sync(params[0])
        t4 = time.perf_counter()
        for name, seconds in zip(parts, (t1 - began, t2 - t1, t3 - t2, t4 - t3)):
            parts[name].append(seconds)
    return {name: statistics.median(v) for name, v in parts.items()}


def _sync(tensor) -> None:
    """Wait for the device (a no-op cost on CPU, where kernels run synchronously)."""
    if tensor is not None and paddle.is_compiled_with_cuda():
        paddle.device.synchronize()


def prediction_stage(teacher, student, initial, data, args, out: Path) -> dict[str, float]:
    """The prediction stage for one epoch with the teacher's logits cached first (--cache_teacher_logits)."""
    began = time.perf_counter()
    logits = evaluation.predict_logits(teacher, data, args.batch_size, 0)
    cache_seconds = time.perf_counter() - began
    cached = distill.WithTeacherLogits(data, logits)
    config = trainer.TrainConfig(output_dir=str(out), overwrite_output_dir=True, learning_rate=5e-5,
                                 num_train_epochs=1, batch_size=args.batch_size, logging_steps=10**9,
                                 save_steps=10**9, checkpoint_minutes=10**6, group_by_length=True,
                                 visualdl=False, seed=args.seed)
    student = fresh_student(student, initial)
    loss_fn = distill.prediction_loss_fn(teacher, 1.0, False)
    summary = trainer.train(student, cached, loss_fn, config,
                            parameters=distill.trainable_parameters(student, "prediction", None),
                            collate_fn=args.collate)
    seconds = summary["train_seconds"] - summary["checkpoint_seconds"]
    return {"cache_seconds": cache_seconds, "train_seconds": seconds,
            "train_examples_per_s": len(data) / seconds,
            "examples_per_s_with_cache": len(data) / (seconds + cache_seconds)}


# ------------------------------------------------------------------------------------------ main

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=cli.HelpFormatter)
    p.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "glue"),
                   help="The GLUE folder holding SST-2/train.tsv.")
    p.add_argument("--rows", type=int, default=1024, help="SST-2 training rows in the epoch (a seeded sample).")
    p.add_argument("--rounds", type=int, default=3, help="Epochs per setting, alternating; medians are reported.")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--teacher_runtime", default=distill.DEFAULT_TEACHER_RUNTIME, choices=distill.TEACHER_RUNTIMES,
                   help="The fast setting's teacher (default: task_distill.py's default).")
    p.add_argument("--profile_steps", type=int, default=8, help="Steps profiled part by part per setting.")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--quick", action="store_true", help="Tiny models and few rows: a smoke run for the tests.")
    p.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.rounds, args.profile_steps = min(args.rows, 96), 1, 2
    return args


@cli.run_main
def main(argv=None) -> dict:
    args = parse_args(argv)
    paddle.set_device("cpu")
    tokenizer = BertTokenizer.from_pretrained(assets.fetch("minilm"))
    examples = sst2_examples(Path(args.glue_dir), args.rows, args.seed)
    spec = tasks.get_task("SST-2")
    data = features.encode_examples(tokenizer, examples, args.max_seq_length, spec)
    args.collate = lambda items: features.collate(items, tokenizer.pad_token_id)  # noqa: E731
    teacher, student = build_models(args.quick, tokenizer.vocab_size)
    layer_map = layer_mapping.build_layer_map(student.config.num_hidden_layers, teacher.config.num_hidden_layers,
                                              "uniform")
    args.projection = distill.fit_projection(student, teacher, "always", None)
    initial = {k: v.clone() for k, v in student.state_dict().items()}
    weights = {"emb": 1.0, "hidden": 1.0, "attn": 1.0}
    settings = (Setting("plain", False, "eager", True, 1),
                Setting("fast", True, args.teacher_runtime, False, tinybert.cpu_threads_per_process()))
    loss_fns = {s.name: distill.intermediate_loss_fn(teacher, layer_map, args.projection, weights, s.teacher_runtime)
                for s in settings}
    loss_fns["plain"] = with_reads_every_step(loss_fns["plain"])
    padded = {s.name: padding_ratio(data, s, args) for s in settings}
    print(f"{len(data)} SST-2 rows, mean {data.lengths.mean():.1f} tokens; teacher {teacher.config.num_hidden_layers}"
          f" x {teacher.config.hidden_size}, student {student.config.num_hidden_layers} x "
          f"{student.config.hidden_size}; batch {args.batch_size}, max_seq_length {args.max_seq_length}; "
          f"{os.cpu_count()} CPUs", flush=True)
    for s in settings:
        print(f"  {s.name}: batches padded to {padded[s.name]:.2f}x the real tokens, {s.teacher_runtime} teacher, "
              f"{s.threads} thread(s), {'a read per step' if s.read_every_step else 'reads at logging steps'}",
              flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        warm = trainer.to_tensors(args.collate([data[i] for i in range(min(len(data), args.batch_size))]))
        for s in settings:  # compile the static teacher once, outside the timed epochs
            s.use()
            loss_fns[s.name](fresh_student(student, initial), warm)
        times: dict[str, list[float]] = {s.name: [] for s in settings}
        for r in range(args.rounds):
            for s in settings:
                s.use()
                seconds = epoch_seconds(s, loss_fns[s.name], student, initial, data, args, Path(tmp) / s.name)
                times[s.name].append(seconds)
                print(f"round {r + 1}: {s.name} epoch {seconds:.1f}s", flush=True)
        profiles = {}
        for s in settings:
            s.use()
            profiles[s.name] = profile_step(s, distill.TeacherRunner(teacher, layer_map, weights, s.teacher_runtime),
                                            fresh_student(student, initial), layer_map, args.projection, data,
                                            args, args.profile_steps)
        prediction = prediction_stage(teacher, student, initial, data, args, Path(tmp) / "prediction")

    medians = {name: statistics.median(v) for name, v in times.items()}
    speedup = medians["plain"] / medians["fast"]
    print("\nintermediate-stage epoch (median seconds): " +
          ", ".join(f"{n} {m:.1f}s ({len(data) / m:.1f} examples/s)" for n, m in medians.items()))
    print("\none step, part by part (median seconds):")
    print(f"  {'part':<26}" + "".join(f"{s.name:>10}" for s in settings))
    for part in profiles["plain"]:
        print(f"  {part:<26}" + "".join(f"{profiles[s.name][part]:>10.3f}" for s in settings))
    print(f"  {'total':<26}" + "".join(f"{sum(profiles[s.name].values()):>10.3f}" for s in settings))
    print(f"\nprediction stage, --cache_teacher_logits: {prediction['train_examples_per_s']:.1f} examples/s training "
          f"(cache: {prediction['cache_seconds']:.1f}s once; {prediction['examples_per_s_with_cache']:.1f} "
          "examples/s for a first epoch including it)")
    print(f"prediction_stage_examples_per_s: {prediction['train_examples_per_s']:.1f}")
    print(f"distill_epoch_speedup: {speedup:.2f}x")
    result = {"rows": len(data), "threads": {s.name: s.threads for s in settings}, "epoch_seconds": times, "median_epoch_seconds": medians, "padding": padded,
              "profile_seconds": profiles, "prediction_stage": prediction, "distill_epoch_speedup": speedup,
              "teacher_runtime": args.teacher_runtime, "quick": args.quick}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


def padding_ratio(data, setting: Setting, args) -> float:
    """Tokens computed (batch x its longest) over real tokens, for one epoch of this setting's batches."""
    plan = features.make_plan(data, trainer.TrainConfig(output_dir="unused", batch_size=args.batch_size,
                                                        group_by_length=setting.group_by_length, seed=args.seed), 1)
    padded = sum(len(b) * int(data.lengths[b].max()) for step in plan.steps_of_epoch(0) for b in step)
    return padded / int(data.lengths.sum())


if __name__ == "__main__":
    main()
