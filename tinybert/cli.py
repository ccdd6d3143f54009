"""Shared command-line plumbing: the scripts' set-up and the one-line error edge. The scripts' common flags
are settings of the configs (settings.py: tasks.DataConfig, device.DeviceConfig, TrainConfig, ...)."""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from tinybert.device import DeviceConfig, set_device
from tinybert.errors import Interrupted, UserError, non_utf8_argument, os_error_line
from tinybert.settings import TurnOff

if TYPE_CHECKING:  # imported where used: most scripts never train
    from tinybert.data import tasks
    from tinybert.training.config import TrainConfig


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows every flag's default once and keeps the script's docstring as written. No default is
    shown for a required flag, for the --no_NAME of a boolean setting (its --NAME says it), or for a flag
    whose default is None and whose help states its default (--N: per task)."""

    def _format_usage(self, usage, actions, groups, prefix) -> str:
        # One short line: the required flags and positionals, then [options] (each flag is listed below).
        if usage is None:
            needed = [self._format_args(a, a.dest.upper()) if not a.option_strings
                      else f"{a.option_strings[0]} {self._metavar_formatter(a, a.dest.upper())(1)[0]}"
                      for a in actions if a.required or not a.option_strings]
            usage = " ".join(["%(prog)s", *needed, "[options]"])
        return super()._format_usage(usage, actions, groups, prefix)

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
                script = typed_script(getattr(sys.modules.get(main.__module__), "__file__", None))
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


def typed_script(module_file: str | None) -> str:
    """The script as the user typed it (sys.argv[0], e.g. ../tinybert/task_distill.py) when it is the one
    running; else (main() called from Python) the module's file name."""
    typed = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if module_file is None:
        return typed or "SCRIPT"
    if typed and os.path.isfile(typed) and os.path.samefile(typed, module_file):
        return typed
    return os.path.basename(module_file)


def resume_command(script: str, argv: Sequence[str] | None = None) -> str:
    """The command line that was run, with --resume (and without --overwrite_output_dir / --overwrite)."""
    args = list(sys.argv[1:] if argv is None else argv)
    args = [a for a in args if a not in ("--overwrite_output_dir", "--overwrite", "--resume")] + ["--resume"]
    return " ".join(shlex.quote(a) for a in ["python", script, *args])


def start_training(config: TrainConfig, devices: DeviceConfig, script: str,
                   inputs: Mapping[str, str | os.PathLike | None],
                   data: tasks.DataConfig | None = None) -> TrainConfig:
    """A training script's first second, before any data or model is loaded: --n_gpu, the run's outputs
    (--output_dir and --logging_dir: neither one of the run's `inputs`, flag -> path, and the output folder one
    this run may write and holds for as long as it trains), the run's identity (the script and the content of
    each input, model folders and `data`'s files), --resume's check that the saved run is this one, the device
    and the process group. Returns `config` with its identity: train with that one."""
    from tinybert.models import checkpoints
    from tinybert.training import trainer, trainstate

    devices.check_n_gpu(script)
    for flag, output in (("--output_dir", config.output_dir), ("--logging_dir", config.logging_dir)):
        if output:
            checkpoints.check_not_an_input(output, flag, dict(inputs))
    trainer.hold_output(config)
    try:
        given = {flag: path for flag, path in inputs.items() if flag not in ("--train_file", "--dev_file")}
        config = dataclasses.replace(config, identity=trainstate.run_identity(
            script, {**given, **data_files(data, ("train", "dev"))}))
        trainer.check_output_dir(config)
    except BaseException:
        trainer.release_output(config)
        raise
    set_device(devices.device)
    trainer.init_distributed()
    return config


def data_files(data: tasks.DataConfig | None, splits: Sequence[str]) -> dict[str, Path]:
    """{"train file": path, ...}: the files `data` names for each split, found as the loader finds them; a
    split it cannot find is left to the loader to report."""
    from tinybert.data import tasks  # noqa: F811

    found: dict[str, Path] = {}
    if data is None:
        return found
    spec = tasks.task_of(data)
    for split in splits:
        try:
            found.update({f"{name} file": path for name, path in tasks.split_paths(data, spec, split).items()})
        except UserError:
            pass
    return {name: path for name, path in found.items() if path.is_file()}


def check_max_seq_length(value: int, positions: int, whose: str = "the model's", minimum: int | None = None,
                         where: str = "") -> None:
    """--max_seq_length against a model's position embeddings (and, given `minimum`, room for [CLS] and
    [SEP]), before the model loads: the embedding lookup would otherwise fail deep inside Paddle."""
    if value > positions:
        raise UserError(f"--max_seq_length {value} is more than {whose} {positions} position embeddings{where}; "
                        "lower it")
    if minimum is not None and value < minimum:
        raise UserError(f"--max_seq_length {value} leaves no room for text beside [CLS] and [SEP]")
