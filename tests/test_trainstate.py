"""A run's own state (tinybert/training/trainstate.py): the checkpoint decision, the files of last/, and
resuming a run saved in the old pickled format."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from tinybert.training import trainer

DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(DATA))
import make_old_last_run as old_run  # noqa: E402


def read_log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / trainer.LOG_FILE).read_text().splitlines()]


def test_a_run_saved_in_the_old_format_resumes_to_the_weights_of_a_straight_run(tmp_path):
    """tests/data/old_last_run: stopped at step 3 of 6 by the code of before (pickled optimizer, RNG and
    extra-tensor files). Resumed now, it ends with exactly the tensors of an uninterrupted run."""
    out = tmp_path / "old"
    shutil.copytree(DATA / "old_last_run", out)
    resumed_summary, resumed = old_run.train(out, resume=True)
    straight_summary, straight = old_run.train(tmp_path / "straight")
    assert resumed_summary["global_step"] == straight_summary["global_step"] == old_run.RUN_STEPS
    assert sorted(resumed) == sorted(straight)
    for name, value in straight.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    for key in ("best_metric", "best_step", "best_metrics", "last_metrics", "train_loss"):
        assert resumed_summary[key] == straight_summary[key], key
    log = read_log(out)
    assert any(r.get("event") == "resume" and r["step"] == old_run.SAVE_STEP for r in log)
    losses = {r["step"]: r["loss"] for r in log if "loss" in r and "event" not in r}
    straight_losses = {r["step"]: r["loss"] for r in read_log(tmp_path / "straight") if "loss" in r and "event" not in r}
    assert losses == straight_losses
