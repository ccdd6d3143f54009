"""Shared command-line plumbing: the scripts' common flags, their set-up, and the one-line error edge."""
from __future__ import annotations

import argparse
import functools
import os
import shlex
import signal
import sys
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from tinybert import cpu_threads_per_process  # noqa: F401  (re-exported for the scripts)
from tinybert.device import set_device
from tinybert.errors import Interrupted, UserError, non_utf8_argument, os_error_line
from tinybert.settings import TurnOff

if TYPE_CHECKING:  # imported where used, after the environment is set up
    from tinybert.data import tasks
    from tinybert.training.config import TrainConfig

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows every flag's default once and keeps the script's docstring as written. No default is
    shown for a required flag, for the --no_NAME of a boolean setting (its --NAME says it), or for a flag
    whose default is None and whose help states its default (--N: per task)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.required or isinstance(action, TurnOff):
            return action.help
        if action.default is None and "default" in (action.help or "").lower():
            return action.help
        return super()._get_help_string(action)


def run_main(main: Callable[..., None]) -> Callable[..., None]:
    """Decorator for a script's main(): UserError becomes 'error: ...' on stderr and exit code 2; Ctrl-C
    and SIGTERM stop with exit code 130, saying what was kept and the command that resumes the run.

    Operating-system errors (a read-only or full disk, a missing folder, no permission) are the user's to
    fix too: one line naming the path and the reason, exit code 2. Arguments holding bytes that are not
    UTF-8 are refused before anything runs: such names cannot be recorded in JSON or passed to Paddle."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        argv = args[0] if args and isinstance(args[0], (list, tuple)) else kwargs.get("argv")
        bad = non_utf8_argument(list(sys.argv[1:] if argv is None else argv))
        if bad:
            print(f"error: the argument {bad}: give file and folder names as UTF-8 text", file=sys.stderr)
            sys.exit(2)
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
        except OSError as e:
            print(f"error: {os_error_line(e)}", file=sys.stderr)
            sys.exit(2)
        except UnicodeEncodeError as e:
            if "surrogate" not in e.reason:
                raise  # not a name from the file system: a bug here
            print(f"error: a file or folder name holds bytes that are not UTF-8 "
                  f"({e.object[max(0, e.start - 40):e.end + 20]!r}); rename it", file=sys.stderr)
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


def check_n_gpu(n: int | None, script: str) -> None:
    """--n_gpu N > 1 outside a launcher: say how to start N processes instead of ignoring it."""
    if n is None or n <= 1 or int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1:
        return
    cards = ",".join(str(i) for i in range(n))
    raise UserError(f"--n_gpu {n}: one process drives one device here; start {n} processes with "
                    f"python -m paddle.distributed.launch --gpus {cards} {script} ... (without --n_gpu)")


def start_training(config: TrainConfig, device: str, n_gpu: int | None, script: str,
                   inputs: Mapping[str, str | os.PathLike | None]) -> str:
    """A training script's first second, before any data or model is loaded: --n_gpu, the output folder
    (neither one of the run's `inputs`, flag -> path, nor a folder it may not write), the device and the
    process group. Returns the device chosen (--device auto resolved)."""
    from tinybert.models import checkpoints
    from tinybert.training import trainer

    check_n_gpu(n_gpu, script)
    checkpoints.check_not_an_input(config.output_dir, "--output_dir", dict(inputs))
    trainer.check_output_dir(config)
    device = set_device(device)
    trainer.init_distributed()
    return device


def check_max_seq_length(value: int, positions: int, whose: str = "the model's", minimum: int | None = None,
                         where: str = "") -> None:
    """--max_seq_length against a model's position embeddings (and, given `minimum`, room for [CLS] and
    [SEP]), before the model loads: the embedding lookup would otherwise fail deep inside Paddle."""
    if value > positions:
        raise UserError(f"--max_seq_length {value} is more than {whose} {positions} position embeddings{where}; "
                        "lower it")
    if minimum is not None and value < minimum:
        raise UserError(f"--max_seq_length {value} leaves no room for text beside [CLS] and [SEP]")


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
