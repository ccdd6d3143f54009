"""Shared command-line plumbing: environment set-up before paddle loads, one-line user errors.

Import this module first in every script (before paddle):

    import cli  # noqa: F401  (sets MKL_DEBUG_CPU_TYPE before paddle loads)
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import warnings
from typing import Callable

from errors import UserError

# Paddle's bundled MKL picks a slow code path on AMD CPUs unless told otherwise (about 2x on matmuls).
os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
# Paddle prints a ccache warning on every import; it means nothing to a user running a script.
os.environ.setdefault("GLOG_minloglevel", "2")
warnings.filterwarnings("ignore", message="No ccache found")
# set_state_dict warns once per weight a checkpoint lacks; modeling.py reports those in one info line.
warnings.filterwarnings("ignore", message="Skip loading for")


def run_main(main: Callable[..., None]) -> Callable[..., None]:
    """Decorator for a script's main(): UserError becomes 'error: ...' on stderr and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


def add_device_args(parser: argparse.ArgumentParser) -> None:
    """--device and --n_gpu as in the PaddleNLP recipes."""
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu", "xpu", "npu"],
                        help="Device to run on.")
    parser.add_argument("--n_gpu", type=int, default=1,
                        help="Accepted for PaddleNLP compatibility; launch several processes with "
                             "`python -m paddle.distributed.launch` instead.")


def gpu_card() -> int:
    """This process's GPU: paddle.distributed.launch tells each process its own (--gpus 2,3 gives 2 and 3)."""
    card = os.environ.get("FLAGS_selected_gpus") or os.environ.get("PADDLE_LOCAL_RANK") or "0"
    return int(card.split(",")[0])


def set_device(device: str) -> None:
    """Select the paddle device, with a one-line error when this paddle build lacks it."""
    import paddle

    if device == "gpu" and not paddle.is_compiled_with_cuda():
        raise UserError("--device gpu asked for, but this paddle build has no CUDA: "
                        "install paddlepaddle-gpu (see README), or use --device cpu")
    if device == "gpu":
        paddle.set_device(f"gpu:{gpu_card()}")
    else:
        paddle.set_device(device)
