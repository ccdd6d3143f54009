"""The TinyBERT distillation library: data, models, distillation, augmentation, training, inference.

Importing any part of the package sets the process environment that Paddle reads when it loads. The scripts
import it before Paddle; when Paddle came first, the one setting that changes results afterwards, the CPU
thread count, is still applied (paddle.set_flags), while Paddle's start-up messages are not silenced.
"""
from __future__ import annotations

import os
import sys
import warnings


def cpu_threads_per_process() -> int:
    """This process's share of the cores it may run on: all of them alone, cores / N for each of the N
    processes paddle.distributed.launch starts on one machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = int(os.environ.get("PADDLE_LOCAL_SIZE") or 1)
    return max(1, cores // max(1, local))


def _set_environment() -> None:
    # Paddle's bundled MKL picks a slow code path on AMD CPUs unless told otherwise (about 2x on matmuls);
    # MKL reads this at its first call, which comes after any import.
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    # Paddle's eager CPU kernels run on one thread unless FLAGS_paddle_num_threads says otherwise (its
    # default is 1): training and eager inference get this process's share of the cores.
    os.environ.setdefault("FLAGS_paddle_num_threads", str(cpu_threads_per_process()))
    # Paddle prints a ccache warning on every import; it means nothing to a user running a script.
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", message="No ccache found")
    # set_state_dict warns once per weight a checkpoint lacks; modeling.py reports those in one info line.
    warnings.filterwarnings("ignore", message="Skip loading for")
    if "paddle" in sys.modules:  # paddle came first: its flags are read already, so set the one that matters
        sys.modules["paddle"].set_flags({"FLAGS_paddle_num_threads": int(os.environ["FLAGS_paddle_num_threads"])})


_set_environment()
