"""Shared command-line plumbing: the scripts' common flags, their set-up, and the one-line error edge."""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shlex
import signal
import sys
import warnings
from typing import TYPE_CHECKING, Callable, Sequence

from tinybert import cpu_threads_per_process  # noqa: F401  (re-exported for the scripts)
from tinybert.errors import Interrupted, UserError

if TYPE_CHECKING:  # imported where used, after the environment is set up
    from tinybert.data import tasks

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows every flag's default and keeps the script's docstring as written; a flag whose default
    is None and whose help states its default (--N: per task) is not also given "(default: None)"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None and "default" in (action.help or "").lower():
            return action.help
        return super()._get_help_string(action)


def run_main(main: Callable[..., None]) -> Callable[..., None]:
    """Decorator for a script's main(): UserError becomes 'error: ...' on stderr and exit code 2; Ctrl-C
    and SIGTERM stop with exit code 130, saying what was kept and the command that resumes the run."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        argv = args[0] if args and isinstance(args[0], (list, tuple)) else kwargs.get("argv")
        previous = _stop_on_sigterm()
        try:
            return main(*args, **kwargs)
        except Interrupted as e:
            print(f"interrupted: {e}", file=sys.stderr)
            if e.resumable:
                script = os.path.basename(getattr(sys.modules.get(main.__module__), "__file__", "") or sys.argv[0])
                print(f"to continue: {resume_command(script, argv)}", file=sys.stderr)
            sys.exit(130)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted before any work was saved", file=sys.stderr)
            sys.exit(130)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def _stop_on_sigterm():
    """SIGTERM (a scheduler's kill) stops a run like Ctrl-C: its handlers keep what can be kept."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (a test runner's worker): leave signals alone
        return None


def resume_command(script: str, argv: Sequence[str] | None = None) -> str:
    """The command line that was run, with --resume (and without --overwrite_output_dir / --overwrite)."""
    args = list(sys.argv[1:] if argv is None else argv)
    args = [a for a in args if a not in ("--overwrite_output_dir", "--overwrite", "--resume")] + ["--resume"]
    return " ".join(shlex.quote(a) for a in ["python", script, *args])


def add_device_args(parser: argparse.ArgumentParser, devices: Sequence[str] = ("cpu", "gpu", "xpu", "npu"),
                    n_gpu: bool = True) -> None:
    """--device (and, for training scripts, --n_gpu) as in the PaddleNLP recipes."""
    parser.add_argument("--device", default="auto", choices=["auto", *devices],
                        help="Device to run on; auto: a GPU when this paddle has CUDA and one is visible, else the CPU.")
    if n_gpu:
        parser.add_argument("--n_gpu", type=int, default=None,
                            help="PaddleNLP's flag for several GPUs: refused above 1 with the launch command "
                                 "to use instead (python -m paddle.distributed.launch --gpus 0,1 SCRIPT ...).")


def check_n_gpu(args: argparse.Namespace, script: str) -> None:
    """--n_gpu N > 1 outside a launcher: say how to start N processes instead of ignoring it."""
    n = getattr(args, "n_gpu", None)
    if n is None or n <= 1 or int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1:
        return
    cards = ",".join(str(i) for i in range(n))
    raise UserError(f"--n_gpu {n}: one process drives one device here; start {n} processes with "
                    f"python -m paddle.distributed.launch --gpus {cards} {script} ... (without --n_gpu)")


def add_training_args(parser: argparse.ArgumentParser) -> None:
    """Flags common to every training stage (trainer.TrainConfig). A stage changes defaults with
    parser.set_defaults(...)."""
    from tinybert.training.trainer import TrainConfig

    d = TrainConfig(output_dir="")
    g = parser.add_argument_group("training")
    g.add_argument("--output_dir", required=True, help="Folder for best_model/, last/ and train_log.jsonl.")
    g.add_argument("--overwrite_output_dir", action="store_true",
                   help="Start afresh in a non-empty output folder (removes its last/, best_model/ and log).")
    g.add_argument("--resume", action="store_true", help="Continue the run saved in OUTPUT_DIR/last.")
    g.add_argument("--learning_rate", type=float, default=d.learning_rate, help="Peak learning rate of AdamW.")
    g.add_argument("--num_train_epochs", type=float, default=d.num_train_epochs,
                   help="Epochs (ignored when --max_steps > 0).")
    g.add_argument("--max_steps", type=int, default=d.max_steps,
                   help="Optimizer steps in total; overrides epochs if > 0.")
    g.add_argument("--batch_size", type=int, default=d.batch_size,
                   help="Examples per device per forward pass (the global batch is this x devices x accumulation).")
    g.add_argument("--gradient_accumulation_steps", type=int, default=d.gradient_accumulation_steps,
                   help="Forward/backward passes summed before each optimizer step.")
    g.add_argument("--warmup_proportion", type=float, default=d.warmup_proportion,
                   help="Fraction of the steps over which the learning rate rises linearly from 0.")
    g.add_argument("--warmup_steps", type=int, default=d.warmup_steps,
                   help="Warm-up length in steps; overrides --warmup_proportion when > 0.")
    g.add_argument("--weight_decay", type=float, default=d.weight_decay,
                   help="AdamW decoupled weight decay (never applied to biases and LayerNorm).")
    g.add_argument("--adam_epsilon", type=float, default=d.adam_epsilon, help="Epsilon of AdamW.")
    g.add_argument("--max_grad_norm", type=float, default=d.max_grad_norm,
                   help="Clip the global gradient norm; 0 = off.")
    g.add_argument("--seed", type=int, default=d.seed, help="Seed of the data order, dropout and new weights.")
    g.add_argument("--logging_steps", type=int, default=d.logging_steps,
                   help="Log the mean loss every N optimizer steps.")
    g.add_argument("--save_steps", type=int, default=d.save_steps,
                   help="Evaluate every N optimizer steps (keeping the best in OUTPUT_DIR/best_model) and consider "
                        "a resumable checkpoint in OUTPUT_DIR/last: it is written at such a step when "
                        "--checkpoint_minutes have passed since the last one, at an epoch's end, and always at the "
                        "end, each only while writing stays under --checkpoint_budget of the time.")
    g.add_argument("--checkpoint_minutes", type=float, default=d.checkpoint_minutes,
                   help="Least minutes between two resumable checkpoints (0: at every --save_steps).")
    g.add_argument("--checkpoint_budget", type=float, default=d.checkpoint_budget,
                   help="Largest share of the run's time spent writing checkpoints (0: no limit).")
    g.add_argument("--amp", "--use_amp", dest="amp", action="store_true",
                   help="Mixed precision on GPU (no effect on CPU).")
    g.add_argument("--amp_dtype", default=d.amp_dtype, choices=["float16", "bfloat16"],
                   help="Half type for --amp; float16 uses dynamic loss scaling.")
    g.add_argument("--group_by_length", action="store_true", default=d.group_by_length,
                   help="Length-grouped batches: shuffled, then sorted by length within pools of 50 batches and the "
                        "batches shuffled, so each carries little padding.")
    g.add_argument("--no_group_by_length", dest="group_by_length", action="store_false",
                   help="Plain random batches (padded to their longest row).")
    g.add_argument("--logging_dir", default=None,
                   help="Folder of the VisualDL records of losses, learning rate, throughput and dev metrics "
                        "(default OUTPUT_DIR/visualdl; 'none' writes none). View: visualdl --logdir FOLDER.")


def train_config(args: argparse.Namespace):
    """The trainer.TrainConfig of the parsed flags, checked; the whole command line goes in run_args."""
    from tinybert.training.trainer import TrainConfig

    names = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("run_args", "visualdl")]
    run_args = {k: v for k, v in vars(args).items()
                if isinstance(v, (str, int, float, bool, type(None), list))}
    settings = {k: getattr(args, k) for k in names}
    off = isinstance(settings["logging_dir"], str) and settings["logging_dir"].lower() == "none"
    settings["logging_dir"], settings["visualdl"] = (None if off else settings["logging_dir"]), not off
    config = TrainConfig(**settings, run_args=run_args)
    config.check()
    return config


def start_training(args: argparse.Namespace, script: str):
    """A training script's first second: its TrainConfig checked, --n_gpu, the output folder (before any
    data or model is loaded), the device and the process group. Returns the TrainConfig."""
    from tinybert.training import trainer

    config = train_config(args)
    check_n_gpu(args, script)
    trainer.check_output_dir(config)
    args.device = set_device(args.device)
    trainer.init_distributed()
    return config


def check_max_seq_length(value: int, positions: int, whose: str = "the model's", minimum: int | None = None,
                         where: str = "") -> None:
    """--max_seq_length against a model's position embeddings (and, given `minimum`, room for [CLS] and
    [SEP]), before the model loads: the embedding lookup would otherwise fail deep inside Paddle."""
    if value > positions:
        raise UserError(f"--max_seq_length {value} is more than {whose} {positions} position embeddings{where}; "
                        "lower it")
    if minimum is not None and value < minimum:
        raise UserError(f"--max_seq_length {value} leaves no room for text beside [CLS] and [SEP]")


def gpu_card() -> int:
    """This process's GPU: paddle.distributed.launch tells each process its own (--gpus 2,3 gives 2 and 3)."""
    card = os.environ.get("FLAGS_selected_gpus") or os.environ.get("PADDLE_LOCAL_RANK") or "0"
    return int(card.split(",")[0])


def resolve_device(device: str) -> str:
    """--device auto -> "gpu" when this paddle build has CUDA and a GPU is visible, else "cpu" (said once)."""
    if device != "auto":
        return device
    import paddle

    found = paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    chosen = "gpu" if found else "cpu"
    print(f"device: {chosen} (--device auto: {'a CUDA GPU is visible' if found else 'no CUDA GPU visible'})",
          file=sys.stderr)
    return chosen


def set_device(device: str) -> str:
    """Select the paddle device (auto resolved), with a one-line error when this paddle build lacks it."""
    import paddle

    device = resolve_device(device)
    if device == "gpu" and not paddle.is_compiled_with_cuda():
        raise UserError("--device gpu asked for, but this paddle build has no CUDA: "
                        "install paddlepaddle-gpu (see README), or use --device cpu")
    if device == "gpu":
        paddle.set_device(f"gpu:{gpu_card()}")
    else:
        paddle.set_device(device)
    return device


# ------------------------------------------------------------------------------------------ data flags

SPLITS = ("train", "dev", "test")
_FILE_HELP = {
    "train": "Training file: CSV, TSV or JSONL of your own, or for a GLUE or CLUE task a file in that task's "
             "own format (e.g. train_aug.tsv from data_augmentation.py; a CLUE task's .json).",
    "dev": "Evaluation file (same formats as --train_file).",
    "test": "Unlabelled file to predict (same formats).",
}


def add_data_args(parser: argparse.ArgumentParser, splits: tuple[str, ...] = SPLITS, labels: bool = True,
                  regression: bool = True) -> None:
    """The data flags (PaddleNLP's names) of a script that reads `splits`: --train_file etc. only for
    those, --labels/--regression only where the script reads them, so --help shows what counts.
    data_config(args) turns them into the tasks.DataConfig the library takes."""
    from tinybert.data import tasks  # noqa: F811

    g = parser.add_argument_group("data")
    g.add_argument("--task_name", default=None,
                   help=f"GLUE task ({', '.join(tasks.GLUE_TASKS)}) or CLUE task ({', '.join(tasks.CLUE_TASKS)}); "
                        f"any case; or a name for your own data.")
    g.add_argument("--data_dir", default=None,
                   help="Folder with the task's files (GLUE: train.tsv, dev.tsv, ...; CLUE: train.json, dev.json, "
                        "test.json).")
    g.add_argument("--glue_dir", "--clue_dir", dest="glue_dir", default=None,
                   help="Folder holding one folder per task: GLUE_DIR/SST-2/train.tsv, ..., or CLUE_DIR/AFQMC/train.json "
                        "(also CLUE_DIR/afqmc_public/, as CLUE's zips unpack). Without --data_dir or this, PaddleNLP's "
                        "dataset cache ($PPNLP_HOME/datasets/Glue or .../Clue, default ~/.paddlenlp/datasets) is used.")
    for split in splits:
        g.add_argument(f"--{split}_file", default=None, help=_FILE_HELP[split])
    g.add_argument("--file_format", default="auto", choices=["auto", "glue", "csv", "tsv", "jsonl"],
                   help="Format of --*_file: by extension (auto), where .tsv with a GLUE task means "
                        "that task's GLUE layout and .json/.jsonl with a CLUE task that task's CLUE layout; "
                        "csv/tsv need a header line.")
    g.add_argument("--text_a_column", default="text", help="Column (or JSONL key) of the first text.")
    g.add_argument("--text_b_column", default=None, help="Column of the second text, for pair tasks.")
    g.add_argument("--label_column", default="label", help="Column of the label.")
    if labels:
        g.add_argument("--labels", default=None,
                       help="Comma-separated label list of your own data, in class-id order "
                            "(default: the labels of the training file, sorted).")
    if regression:
        g.add_argument("--regression", action="store_true",
                       help="Your own data has a numeric score to predict, not classes.")
    g.add_argument("--skip_bad_rows", action="store_true",
                   help="Leave out malformed rows (reported with their line numbers) instead of stopping.")


def split_labels(text: str | None) -> list[str] | None:
    """--labels "a, b,c" -> ["a", "b", "c"]; None when not given."""
    if not text:
        return None
    return [label.strip() for label in text.split(",") if label.strip()] or None


def data_config(args: argparse.Namespace) -> tasks.DataConfig:
    """The tasks.DataConfig of the flags add_data_args added (flags a script lacks take their defaults)."""
    from tinybert.data import tasks  # noqa: F811

    return tasks.DataConfig(
        task_name=args.task_name, data_dir=args.data_dir, glue_dir=args.glue_dir,
        train_file=getattr(args, "train_file", None), dev_file=getattr(args, "dev_file", None),
        test_file=getattr(args, "test_file", None), file_format=args.file_format,
        columns=tasks.Columns(args.text_a_column, args.text_b_column, args.label_column),
        labels=split_labels(getattr(args, "labels", None)), regression=getattr(args, "regression", False),
        skip_bad_rows=args.skip_bad_rows)
