"""A run's own state (tinybert/training/trainstate.py): the checkpoint decision, the files of last/, and
resuming a run saved in the old pickled format."""
from __future__ import annotations

import importlib.util
import json
import os
import pickle
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import pytest

from tinybert.errors import DataError
from tinybert.training import trainer, trainstate

DATA = Path(__file__).resolve().parent / "data"


def _data_script(name: str):
    """A script of tests/data (it made a fixture there) as a module, for its settings and builders."""
    spec = importlib.util.spec_from_file_location(name, DATA / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


old_run = _data_script("make_old_last_run")


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


def test_resumed_old_run_writes_its_state_in_the_new_format(tmp_path):
    """After the resume, last/ holds no pickle of the run's state: safetensors and JSON only."""
    out = tmp_path / "old"
    shutil.copytree(DATA / "old_last_run", out)
    old_run.train(out, resume=True)
    names = {p.name for p in (out / trainer.LAST_DIR).iterdir()}
    assert {trainstate.OPTIMIZER_FILE, trainstate.OPTIMIZER_JSON, trainstate.RNG_FILE,
            trainstate.EXTRA_PARAMS_FILE, trainstate.STATE_FILE} <= names
    assert not names & {trainstate.LEGACY_OPTIMIZER_FILE, trainstate.LEGACY_RNG_FILE,
                        trainstate.LEGACY_EXTRA_PARAMS_FILE}
    rng = json.loads((out / trainer.LAST_DIR / trainstate.RNG_FILE).read_text())
    assert len(rng) == 1 and sorted(rng[0]) == ["numpy", "paddle", "python"]


class Hostile:
    """Unpickling it runs a shell command that creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", [trainstate.LEGACY_OPTIMIZER_FILE, trainstate.LEGACY_RNG_FILE,
                                  trainstate.LEGACY_EXTRA_PARAMS_FILE])
def test_an_old_run_state_that_would_run_code_is_refused(tmp_path, name):
    out = tmp_path / "old"
    shutil.copytree(DATA / "old_last_run", out)
    marker = tmp_path / "MARKER"
    (out / trainer.LAST_DIR / name).write_bytes(pickle.dumps({"evil": Hostile(marker)}, protocol=2))
    path = out / trainer.LAST_DIR / name
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: refused to load: it would call posix.system"):
        old_run.train(out, resume=True)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------- the decision

DEFAULTS = dict(save_steps=10, checkpoint_minutes=5.0, checkpoint_budget=0.02)


def due(step=10, epoch_end=False, final=False, since_last=400.0, last_write_seconds=1.0, **config) -> bool:
    return trainstate.checkpoint_due(step, epoch_end=epoch_end, final=final, since_last=since_last,
                                     last_write_seconds=last_write_seconds, **{**DEFAULTS, **config})


def test_the_end_always_writes():
    assert due(final=True, step=7, since_last=0.0, last_write_seconds=1e6)


def test_a_save_step_writes_once_the_minutes_have_passed():
    assert due(step=10, since_last=300.0)
    assert not due(step=10, since_last=299.0)
    assert not due(step=11, since_last=10_000.0)  # not a save step
    assert due(step=20, since_last=0.0, checkpoint_minutes=0, checkpoint_budget=0)  # every save step


def test_an_epoch_end_writes_whenever_affordable():
    assert due(step=7, epoch_end=True, since_last=50.0, last_write_seconds=1.0)  # 50 s x 2% = 1 s
    assert not due(step=7, epoch_end=True, since_last=49.0, last_write_seconds=1.0)
    assert due(step=10, epoch_end=True, since_last=60.0, last_write_seconds=1.0)  # a save step as well


def test_the_budget_holds_back_even_a_due_save_step():
    assert not due(step=10, since_last=400.0, last_write_seconds=9.0)  # 400 s x 2% = 8 s < 9 s
    assert due(step=10, since_last=400.0, last_write_seconds=9.0, checkpoint_budget=0)  # 0: no limit


# ------------------------------------------------------------------------------------------ random state

def _draws() -> tuple:
    return paddle.rand([5]).numpy().tolist(), np.random.rand(5).tolist(), [random.random() for _ in range(5)]


def test_rng_state_through_json_reproduces_draws():
    paddle.seed(5)
    np.random.seed(6)
    random.seed(7)
    np.random.standard_normal()  # numpy's cached Gaussian is part of the state
    _draws()
    plain = json.loads(json.dumps(trainstate.capture_rng_state()))
    generator = plain["paddle"][0]
    assert sorted(generator) == ["device", "engine", "offset", "seed"] and generator["seed"] == 5
    assert generator["engine"].replace(" ", "").isdigit()
    first = _draws()
    _draws()
    trainstate.restore_rng_state(plain, "rng_state.json")
    assert _draws() == first


@pytest.mark.parametrize("plain, message", [
    ([1, 2], "not an RNG state: a list"),
    ({"paddle": "x"}, "'paddle' is not a list"),
    ({"paddle": [{"device": -1, "seed": 1, "offset": 0, "engine": "$(touch x)"}]}, "numbers separated by spaces"),
    ({"paddle": [{"device": -1, "seed": 1, "engine": "1 2"}]}, "numbers separated by spaces"),
    ({"numpy": ("MT19937", np.zeros(3, "uint32"), 0, 0, 0.0)}, "not a usable RNG state"),
    ({"python": (3, (1, 2), None)}, "not a usable RNG state"),
])
def test_malformed_rng_state(plain: Any, message: str) -> None:
    with pytest.raises(DataError, match="^rng_state.pth: ") as info:
        trainstate.restore_rng_state(plain, "rng_state.pth")
    assert message in str(info.value)
