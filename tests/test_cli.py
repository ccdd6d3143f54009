"""cli.py and settings.py: the scripts' shared flags: --device auto, --n_gpu, every flag's help and default shown
once in --help, settings declared once as dataclass fields, the resume command."""
from __future__ import annotations

import argparse
import functools
import importlib
import dataclasses
import re
from dataclasses import dataclass

import paddle
import pytest

import tinybert
from tinybert import cli, device, errors, settings
from tinybert.data import tasks
from tinybert.data.datafiles import Columns
from tinybert.data.features import EncodeConfig
from tinybert.distillation.config import DistillConfig
from tinybert.training.config import TrainConfig
from builders import ROOT, python_in_clean_env

SCRIPTS = ("finetune_teacher", "data_augmentation", "task_distill", "export_model", "predict", "convert_checkpoint",
           "demo", "ablation", "plot_log")


def test_device_auto_is_the_gpu_only_when_cuda_and_a_gpu_are_there(monkeypatch, capsys):
    monkeypatch.setattr(paddle, "is_compiled_with_cuda", lambda: False)
    assert device.resolve_device("auto") == "cpu"
    assert "no CUDA GPU visible" in capsys.readouterr().err
    monkeypatch.setattr(paddle, "is_compiled_with_cuda", lambda: True)
    monkeypatch.setattr(paddle.device.cuda, "device_count", lambda: 2)
    assert device.resolve_device("auto") == "gpu"
    assert device.resolve_device("cpu") == "cpu"


def test_n_gpu_above_one_is_refused_with_the_launch_command(monkeypatch):
    parser = argparse.ArgumentParser()
    settings.add_flags(parser, device.DeviceConfig)

    def check(*argv: str) -> None:
        settings.from_args(device.DeviceConfig, parser.parse_args(list(argv))).check_n_gpu("task_distill.py")

    monkeypatch.delenv("PADDLE_TRAINERS_NUM", raising=False)
    with pytest.raises(errors.UserError, match=r"paddle.distributed.launch --gpus 0,1 task_distill.py"):
        check("--n_gpu", "2")
    check("--n_gpu", "1")  # one is what runs: fine
    check()
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")  # under the launcher: each process has its card
    check("--n_gpu", "2")


class GotParser(BaseException):
    """Raised in place of parsing: carries the script's parser out of its main()."""


def script_parser(name: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser a top-level script builds (its main() stopped where it would parse the command line)."""
    def grab(parser, args=None, namespace=None):
        raise GotParser(parser)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", grab)
    module = importlib.import_module(name)
    with pytest.raises(GotParser) as got:
        module.main([])
    return got.value.args[0]


def shown_help(parser: argparse.ArgumentParser) -> dict[argparse.Action, str]:
    """Each flag's help as --help prints it (with the default the formatter adds), on one line."""
    formatter = parser._get_formatter()
    return {a: " ".join(formatter._expand_help(a).split()) for a in parser._actions
            if a.option_strings and a.help is not argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)}


def test_every_top_level_script_is_listed():
    mains = {p.stem for p in ROOT.glob("*.py") if "def main(" in p.read_text(encoding="utf-8")}
    assert mains == set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_flag_has_help_and_shows_its_default_once(name, monkeypatch):
    parser = script_parser(name, monkeypatch)
    shown = shown_help(parser)
    assert shown
    by_dest: dict[str, list[str]] = {}
    for action, text in shown.items():
        assert action.help and action.help.strip(), f"{name}: {action.option_strings} has no help"
        defaults = re.findall(r"\(default: ([^)]*)\)", text)
        assert len(defaults) <= 1, (name, action.option_strings, text)
        by_dest.setdefault(action.dest, []).extend(defaults)
    for dest, defaults in by_dest.items():  # --X and --no_X: one of them states the default
        assert len(defaults) <= 1, f"{name}: the default of {dest} is printed {len(defaults)} times: {defaults}"


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_shows_every_default(name, monkeypatch):
    """Every flag with a default (not None, not required) shows it; a None default is shown unless the help
    says in words what happens without the flag."""
    shown = shown_help(script_parser(name, monkeypatch))
    checked = 0
    for action, text in shown.items():
        if action.required or isinstance(action, settings.TurnOff):
            assert "(default:" not in text, (name, action.option_strings, text)
        elif action.default is None and "default" in action.help.lower():
            assert "(default: None)" not in text
        else:
            assert text.endswith(f"(default: {action.default})"), (name, action.option_strings, text)
            checked += 1
    assert checked >= 1


HISTORY = re.compile(r"behaviou?r before|used to|no longer|previously|as before|formerly|old behaviou?r", re.I)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_says_what_a_flag_does_not_its_history(name, monkeypatch):
    parser = script_parser(name, monkeypatch)
    for action, text in shown_help(parser).items():
        assert not HISTORY.search(text), (name, action.option_strings, text)
    assert not HISTORY.search(parser.description or "")


def test_task_distill_help_is_short_enough_to_read(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    parser = script_parser("task_distill", monkeypatch)
    text = parser.format_help()
    assert len(text.splitlines()) < 170
    assert text.splitlines()[0].endswith(" --teacher_path TEACHER_PATH --output_dir OUTPUT_DIR [options]")
    # grouped as the recipe's command reads: models, distillation, data, training, then the device
    titles = [line[:-1] for line in text.splitlines() if line and not line[0].isspace() and line.endswith(":")]
    assert titles == ["options", "models", "distillation", "data", "training", "device"]


def test_training_flags_show_the_train_config_defaults_and_a_scripts_own():
    parser = argparse.ArgumentParser(formatter_class=cli.HelpFormatter)
    settings.add_flags(parser, TrainConfig, defaults={"learning_rate": 5e-5, "group_by_length": True})
    shown = {a.dest if not isinstance(a, settings.TurnOff) else "no_" + a.dest: text
             for a, text in shown_help(parser).items()}
    defaults = TrainConfig(output_dir="x")
    for name in ("weight_decay", "max_grad_norm", "adam_epsilon", "checkpoint_minutes", "checkpoint_budget",
                 "num_train_epochs", "batch_size", "amp_dtype", "amp", "seed"):
        assert shown[name].endswith(f"(default: {getattr(defaults, name)})"), name
    assert shown["learning_rate"].endswith("(default: 5e-05)")
    assert shown["group_by_length"].endswith("(default: True)")
    negation = shown["no_group_by_length"]
    assert negation.startswith("Turn off --group_by_length") and "default" not in negation
    assert "(default:" not in shown["output_dir"]  # required


def test_resume_command_repeats_the_run_with_resume():
    got = cli.resume_command("task_distill.py", ["--output_dir", "out dir", "--overwrite_output_dir", "--T", "2"])
    assert got == "python task_distill.py --output_dir 'out dir' --T 2 --resume"


def test_resume_hint_names_the_script_as_it_was_typed(tmp_path, monkeypatch):
    script = tmp_path / "sub" / "task_distill.py"
    script.parent.mkdir()
    script.write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["sub/task_distill.py", "--T", "2"])
    assert cli.typed_script(str(script)) == "sub/task_distill.py"
    assert cli.resume_command(cli.typed_script(str(script))) == "python sub/task_distill.py --T 2 --resume"
    monkeypatch.setattr("sys.argv", ["pytest"])  # main() called from Python: the module's file name
    assert cli.typed_script(str(script)) == "task_distill.py"


def test_overwrite_is_an_alias_of_overwrite_output_dir_everywhere(monkeypatch):
    for name in ("finetune_teacher", "task_distill", "data_augmentation", "export_model", "predict",
                 "convert_checkpoint"):
        parser = script_parser(name, monkeypatch)
        flags = {o: a.dest for a in parser._actions for o in a.option_strings}
        assert flags["--overwrite_output_dir"] == flags["--overwrite"], name


@pytest.mark.parametrize("flags, visualdl, folder", [
    ([], True, None),                                   # default: OUTPUT_DIR/visualdl
    (["--logging_dir", "runs/vdl"], True, "runs/vdl"),
    (["--logging_dir", "none"], False, None),
    (["--logging_dir", "None"], False, None),
])
def test_logging_dir_flag_turns_visualdl_on_by_default_and_off_with_none(flags, visualdl, folder):
    from tinybert.training import trainer

    parser = argparse.ArgumentParser()
    settings.add_flags(parser, TrainConfig)
    config = settings.from_args(TrainConfig, parser.parse_args(["--output_dir", "out", *flags]))
    assert (config.visualdl, config.logging_dir) == (visualdl, folder)
    expected = None if not visualdl else trainer.Path(folder or "out/visualdl")
    assert trainer.logging_dir(config) == expected


def train_config(parser: argparse.ArgumentParser, *flags: str) -> TrainConfig:
    return settings.from_args(TrainConfig, parser.parse_args(["--output_dir", "o", *flags]))


def test_group_by_length_flag_and_its_negation():
    for turn_on in ({"defaults": {"group_by_length": True}}, {}):  # add_flags(defaults=...), or set_defaults
        parser = argparse.ArgumentParser(formatter_class=cli.HelpFormatter)
        settings.add_flags(parser, TrainConfig, **turn_on)
        if not turn_on:
            parser.set_defaults(group_by_length=True)  # what a script did before add_flags took defaults
        assert train_config(parser).group_by_length is True
        assert train_config(parser, "--no_group_by_length").group_by_length is False
        assert train_config(parser, "--group_by_length").group_by_length is True
        text = " ".join(parser.format_help().split())
        assert text.count("(default: True)") == 1  # on --group_by_length only
    parser = argparse.ArgumentParser()
    settings.add_flags(parser, TrainConfig)
    assert settings.from_args(TrainConfig, parser.parse_args(["--output_dir", "o"])).group_by_length is False


def test_training_flags_keep_their_aliases_types_and_checks():
    parser = argparse.ArgumentParser()
    settings.add_flags(parser, TrainConfig)
    parse = functools.partial(train_config, parser)
    assert parse("--use_amp").amp is True and parse("--amp").amp is True and parse().amp is False
    config = parse("--max_steps", "7", "--learning_rate", "0.5", "--amp_dtype", "bfloat16", "--seed", "3")
    assert (config.max_steps, config.learning_rate, config.amp_dtype, config.seed) == (7, 0.5, "bfloat16", 3)
    assert type(config.max_steps) is int and type(config.learning_rate) is float
    with pytest.raises(SystemExit):
        parser.parse_args(["--output_dir", "o", "--amp_dtype", "float8"])
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --output_dir is required
    with pytest.raises(errors.UserError, match="--batch_size must be at least 1"):
        parse("--batch_size", "0")  # the check lives in TrainConfig: no script repeats it
    with pytest.raises(errors.UserError, match="contradict"):
        parse("--resume", "--overwrite_output_dir")


@dataclass(frozen=True)
class Example:
    name: str = settings.setting(help="A required text.")
    count: int = settings.setting(2, "How many.", aliases=("--n",), group="numbers")
    rate: float | None = settings.setting(None, "A rate (default: none).", group="numbers")
    fast: bool = settings.setting(True, "Go fast.", negation="Turn off --fast.")
    derived: int = 0  # no setting(): no flag

    def __post_init__(self):
        if self.count < 0:
            raise errors.UserError(f"--count must be >= 0, got {self.count}")


def test_a_setting_is_declared_once_and_becomes_a_flag():
    parser = argparse.ArgumentParser(formatter_class=cli.HelpFormatter)
    settings.add_flags(parser, Example, defaults={"count": 5})
    options = {o for a in parser._actions for o in a.option_strings}
    assert options == {"-h", "--help", "--name", "--count", "--n", "--rate", "--fast", "--no_fast"}
    assert "numbers" in [g.title for g in parser._action_groups]
    got = settings.from_args(Example, parser.parse_args(["--name", "x", "--n", "3", "--rate", "0.5", "--no_fast"]))
    assert got == Example(name="x", count=3, rate=0.5, fast=False)
    assert settings.from_args(Example, parser.parse_args(["--name", "x"])) == Example(name="x", count=5)
    with pytest.raises(errors.UserError, match="--count must be >= 0"):
        settings.from_args(Example, parser.parse_args(["--name", "x", "--count", "-1"]))
    with pytest.raises(ValueError, match="lacks"):
        settings.add_flags(argparse.ArgumentParser(), Example, defaults={"speed": 1})
    with pytest.raises(ValueError, match="needs its help"):
        settings.setting(1)


def test_a_script_leaves_out_narrows_and_requires_settings():
    parser = argparse.ArgumentParser()
    settings.add_flags(parser, Example, defaults={"name": "y"}, skip=("count",))
    assert "--count" not in parser._option_string_actions
    assert settings.from_args(Example, parser.parse_args(["--rate", "0.5"])) == Example(name="y", count=2, rate=0.5)
    with pytest.raises(SystemExit):
        parser.parse_args(["--count", "2"])
    with pytest.raises(ValueError, match="not among its choices"):
        settings.add_flags(argparse.ArgumentParser(), device.DeviceConfig, choices={"device": ("tpu",)})
    required = argparse.ArgumentParser()
    settings.add_flags(required, Example, defaults={"count": dataclasses.MISSING})
    assert required._option_string_actions["--count"].required


def test_the_data_flags_are_the_data_config():
    parser = argparse.ArgumentParser()
    settings.add_flags(parser, tasks.DataConfig, skip=("train_file", "dev_file", "regression"))
    settings.add_flags(parser, device.DeviceConfig, choices={"device": ("auto", "cpu", "gpu")}, skip=("n_gpu",))
    args = parser.parse_args(["--clue_dir", "C", "--labels", "b, a,", "--test_file", "t.csv",
                              "--text_b_column", "q", "--file_format", "csv"])
    assert args.labels == "b, a,"  # the command line is recorded as typed
    data = settings.from_args(tasks.DataConfig, args)
    assert data == tasks.DataConfig(glue_dir="C", labels=["b", "a"], test_file="t.csv", text_b_column="q",
                                    file_format="csv")
    assert data.columns == Columns("text", "q", "label") and data.train_file is None and not data.regression
    assert parser._option_string_actions["--file_format"].choices == ("auto", *tasks.FORMATS)
    for bad in (["--train_file", "x"], ["--regression"], ["--device", "xpu"], ["--n_gpu", "2"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_a_setting_shared_by_two_configs_is_one_flag():
    shared = {f.name: f for f in dataclasses.fields(EncodeConfig)}["max_seq_length"].metadata["flag"]
    copy = {f.name: f for f in dataclasses.fields(DistillConfig)}["max_seq_length"]
    assert copy.default == 128 and copy.metadata["flag"] == {**shared, "group": "distillation"}


def test_each_process_gets_its_share_of_the_cores(monkeypatch):
    """Paddle's eager kernels default to one thread; the scripts give each process cores / local processes."""
    import os

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("PADDLE_LOCAL_SIZE", raising=False)
    assert tinybert.cpu_threads_per_process() == cores
    monkeypatch.setenv("PADDLE_LOCAL_SIZE", "2")  # paddle.distributed.launch --nproc_per_node 2
    assert tinybert.cpu_threads_per_process() == max(1, cores // 2)
    monkeypatch.setenv("PADDLE_LOCAL_SIZE", str(4 * cores))
    assert tinybert.cpu_threads_per_process() == 1


# What the child reports: the two variables after `import tinybert`, and Paddle's thread flag.
ENVIRONMENT_REPORT = """
import json, os, sys
{first}
import tinybert
import paddle
print(json.dumps({{"mkl": os.environ.get("MKL_DEBUG_CPU_TYPE"), "threads": os.environ.get("FLAGS_paddle_num_threads"),
                  "flag": paddle.get_flags("FLAGS_paddle_num_threads")["FLAGS_paddle_num_threads"],
                  "share": tinybert.cpu_threads_per_process()}}))
"""


@pytest.mark.parametrize("first", ["", "import paddle"], ids=["tinybert first", "paddle first"])
@pytest.mark.parametrize("local_size", [None, "2"])
def test_importing_tinybert_sets_the_environment_paddle_needs(first, local_size):
    """In a clean environment, whichever of paddle and tinybert comes first: MKL's AMD code path, and
    Paddle's eager kernels on this process's share of the cores (cores / PADDLE_LOCAL_SIZE)."""
    import json
    import os

    cores = len(os.sched_getaffinity(0))
    share = max(1, cores // int(local_size or 1))
    env = {"PADDLE_LOCAL_SIZE": local_size} if local_size else {}
    got = json.loads(python_in_clean_env(ENVIRONMENT_REPORT.format(first=first), **env))
    assert got == {"mkl": "5", "threads": str(share), "flag": share, "share": share}


def test_the_users_own_settings_are_kept():
    import json

    got = json.loads(python_in_clean_env(ENVIRONMENT_REPORT.format(first=""), MKL_DEBUG_CPU_TYPE="4",
                                         FLAGS_paddle_num_threads="3"))
    assert (got["mkl"], got["threads"], got["flag"]) == ("4", "3", 3)
