"""Which device this process runs on: --device auto resolved, the paddle device selected, the GPU card
paddle.distributed.launch gave this process. Scripts (through cli) and inference.py share it."""
from __future__ import annotations

import os
import sys

from tinybert.errors import UserError


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
