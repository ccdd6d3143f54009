"""cli.py: the scripts' shared flags: --device auto, --n_gpu, defaults shown in --help, the resume command."""
from __future__ import annotations

import argparse

import paddle
import pytest

from tinybert import cli
from tinybert import errors
from builders import python_in_clean_env


def test_device_auto_is_the_gpu_only_when_cuda_and_a_gpu_are_there(monkeypatch, capsys):
    monkeypatch.setattr(paddle, "is_compiled_with_cuda", lambda: False)
    assert cli.resolve_device("auto") == "cpu"
    assert "no CUDA GPU visible" in capsys.readouterr().err
    monkeypatch.setattr(paddle, "is_compiled_with_cuda", lambda: True)
    monkeypatch.setattr(paddle.device.cuda, "device_count", lambda: 2)
    assert cli.resolve_device("auto") == "gpu"
    assert cli.resolve_device("cpu") == "cpu"


def test_n_gpu_above_one_is_refused_with_the_launch_command(monkeypatch):
    parser = argparse.ArgumentParser()
    cli.add_device_args(parser)
    monkeypatch.delenv("PADDLE_TRAINERS_NUM", raising=False)
    with pytest.raises(errors.UserError, match=r"paddle.distributed.launch --gpus 0,1 task_distill.py"):
        cli.check_n_gpu(parser.parse_args(["--n_gpu", "2"]), "task_distill.py")
    cli.check_n_gpu(parser.parse_args(["--n_gpu", "1"]), "task_distill.py")  # one is what runs: fine
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")  # under the launcher: each process has its card
    cli.check_n_gpu(parser.parse_args(["--n_gpu", "2"]), "task_distill.py")


def test_help_shows_every_default():
    parser = argparse.ArgumentParser(formatter_class=cli.HelpFormatter)
    cli.add_training_args(parser)
    text = parser.format_help()
    for flag, default in (("--weight_decay", "0.0"), ("--max_grad_norm", "0.0"), ("--adam_epsilon", "1e-06"),
                          ("--checkpoint_minutes", "5.0"), ("--checkpoint_budget", "0.02")):
        assert flag in text and f"(default: {default})" in text


def test_resume_command_repeats_the_run_with_resume():
    got = cli.resume_command("task_distill.py", ["--output_dir", "out dir", "--overwrite_output_dir", "--T", "2"])
    assert got == "python task_distill.py --output_dir 'out dir' --T 2 --resume"


@pytest.mark.parametrize("flags, visualdl, folder", [
    ([], True, None),                                   # default: OUTPUT_DIR/visualdl
    (["--logging_dir", "runs/vdl"], True, "runs/vdl"),
    (["--logging_dir", "none"], False, None),
    (["--logging_dir", "None"], False, None),
])
def test_logging_dir_flag_turns_visualdl_on_by_default_and_off_with_none(flags, visualdl, folder):
    from tinybert.training import trainer

    parser = argparse.ArgumentParser()
    cli.add_training_args(parser)
    config = cli.train_config(parser.parse_args(["--output_dir", "out", *flags]))
    assert (config.visualdl, config.logging_dir) == (visualdl, folder)
    expected = None if not visualdl else trainer.Path(folder or "out/visualdl")
    assert trainer.logging_dir(config) == expected


def test_group_by_length_flag_and_its_negation():
    parser = argparse.ArgumentParser()
    cli.add_training_args(parser)
    parser.set_defaults(group_by_length=True)  # what the distillation stages do
    assert cli.train_config(parser.parse_args(["--output_dir", "o"])).group_by_length is True
    assert cli.train_config(parser.parse_args(["--output_dir", "o", "--no_group_by_length"])).group_by_length is False


def test_each_process_gets_its_share_of_the_cores(monkeypatch):
    """Paddle's eager kernels default to one thread; the scripts give each process cores / local processes."""
    import os

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("PADDLE_LOCAL_SIZE", raising=False)
    assert cli.cpu_threads_per_process() == cores
    monkeypatch.setenv("PADDLE_LOCAL_SIZE", "2")  # paddle.distributed.launch --nproc_per_node 2
    assert cli.cpu_threads_per_process() == max(1, cores // 2)
    monkeypatch.setenv("PADDLE_LOCAL_SIZE", str(4 * cores))
    assert cli.cpu_threads_per_process() == 1


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
