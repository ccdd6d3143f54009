"""Which device this process runs on: the --device and --n_gpu settings (DeviceConfig), --device auto
resolved, the paddle device selected, the GPU card paddle.distributed.launch gave this process. Scripts
(through cli) and inference.py share it."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from tinybert.errors import UserError
from tinybert.settings import setting

DEVICES = ("cpu", "gpu", "xpu", "npu")


@dataclass(frozen=True)
class DeviceConfig:
    """--device and --n_gpu as in the PaddleNLP recipes; a script offers fewer devices with
    settings.add_flags(choices={"device": ...}) and leaves out --n_gpu (training scripts only) with skip."""
    device: str = setting("auto", "auto: a CUDA GPU when one is visible, else the CPU.", choices=("auto", *DEVICES),
                          group="device")
    n_gpu: int | None = setting(
        None, "PaddleNLP's flag; above 1 it prints the launch command to use instead.", group="device")

    def check_n_gpu(self, script: str) -> None:
        """--n_gpu N > 1 outside a launcher: say how to start N processes instead of ignoring it."""
        n = self.n_gpu
        if n is None or n <= 1 or int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1:
            return
        cards = ",".join(str(i) for i in range(n))
        raise UserError(f"--n_gpu {n}: one process drives one device here; start {n} processes with "
                        f"python -m paddle.distributed.launch --gpus {cards} {script} ... (without --n_gpu)")


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
