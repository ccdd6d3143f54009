"""A run's own state: what OUTPUT_DIR/last holds besides the model, when it is written, and how a run
continues from it. trainer.py runs the loop and calls in here.

    last/
        trainer_state.json          step, best so far, the settings that fix the data order, the command
        optimizer.safetensors       AdamW's moments and beta powers, by stable parameter names
        optimizer.json              the learning-rate schedule's and the AMP loss scaler's state
        rng_state.json              paddle's, numpy's and Python's random state of every process, as numbers
        extra_params.safetensors    tensors trained outside the model (e.g. the distillation's W_h)

None of these files holds code, so reading them runs none. A `last/` written before this layout
(optimizer.pdopt, rng_state.pdparams, extra_params.pdparams: pickles) is still resumed, read through
models/safe_pickle.py's restricted unpickler (`_read_legacy_state`).

When to write last/ is one decision, `checkpoint_due`.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from tinybert import errors
from tinybert.models import checkpoints, safe_pickle
from tinybert.training.config import RESUME_FREE

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE, OPTIMIZER_JSON = "optimizer.safetensors", "optimizer.json"
RNG_FILE = "rng_state.json"
EXTRA_PARAMS_FILE = "extra_params.safetensors"
# The pickled files of a last/ written before the layout above; read only to resume such a run.
LEGACY_OPTIMIZER_FILE, LEGACY_RNG_FILE, LEGACY_EXTRA_PARAMS_FILE = (
    "optimizer.pdopt", "rng_state.pdparams", "extra_params.pdparams")
EVAL_RESULTS_FILE = "eval_results.json"
# Settings that fix which items each step sees: resuming with a different value would not continue the same run.
DATA_ORDER_KEYS = ("num_examples", "batch_size", "gradient_accumulation_steps", "world_size", "seed",
                   "group_by_length")
_MASTER = "master_weights/"  # key prefix of AMP's float32 master weights in optimizer.safetensors


# ---------------------------------------------------------------------------------------- the decision

def checkpoint_due(step: int, *, epoch_end: bool, final: bool, since_last: float, last_write_seconds: float,
                   save_steps: int, checkpoint_minutes: float, checkpoint_budget: float) -> bool:
    """Whether to write last/ after `step`.

    A resumable last/ costs seconds (weights and Adam moments), so it is written at the end always, and
    otherwise only while writing stays under `checkpoint_budget` of the time (the last write's seconds against
    the seconds since it ended; 0: no limit): then at an epoch's end, or at a save step once
    `checkpoint_minutes` have passed since the last one.
    """
    if final:
        return True
    affordable = not checkpoint_budget or since_last * checkpoint_budget >= last_write_seconds
    if not affordable:
        return False
    return epoch_end or (step % save_steps == 0 and since_last >= 60 * checkpoint_minutes)


# ---------------------------------------------------------------------------------- step and best so far

def is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@dataclass
class TrainState:
    """The step and the best evaluation so far (trainer_state.json holds these fields)."""
    global_step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    last_metrics: dict[str, float] = field(default_factory=dict)
    main_metric: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any], main_metric: str | None) -> "TrainState":
        state = cls(**{k: record[k] for k in asdict(cls())})
        state.main_metric = state.main_metric or main_metric
        if not is_finite(state.best_metric):  # a NaN "best" saved by an older version blocks nothing
            state.best_metric = state.best_step = None
        return state

    def record_evaluation(self, metrics: dict[str, float], key: str) -> bool:
        """Note an evaluation at the current step; True when it is the best so far. A NaN (correlations of
        constant predictions) is never best, and never blocks a later best."""
        self.main_metric, self.last_metrics = key, metrics
        if not self.improves(metrics[key]):
            return False
        self.best_metric, self.best_step, self.best_metrics = metrics[key], self.global_step, metrics
        return True

    def improves(self, value: Any) -> bool:
        return is_finite(value) and (self.best_metric is None or value > self.best_metric)

    def adopt_best_model(self, results_file: Path) -> None:
        """best_model may be newer than last when a run stopped between writing the two: take its record."""
        if not results_file.exists():
            return
        best = checkpoints.read_json(results_file, "evaluation record")
        key = best.get("main_metric")
        if key in best and self.improves(best[key]):
            self.best_metric, self.best_step = best[key], best["step"]
            self.best_metrics = {k: v for k, v in best.items() if k not in ("step", "main_metric")}


def saved_step(folder: Path) -> int | None:
    """The step of the run saved in `folder` (last/), or None when none has been written yet."""
    path = Path(folder) / STATE_FILE
    return checkpoints.read_json(path, "trainer state")["global_step"] if path.exists() else None


def read_record(folder: Path) -> dict[str, Any]:
    return checkpoints.read_json(Path(folder) / STATE_FILE, "trainer state")


def data_order_changes(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The settings of DATA_ORDER_KEYS that differ between a saved run and this one, as 'key old -> new'."""
    saved = {"group_by_length": False, **saved}  # a run saved before the setting existed drew random batches
    return [f"{k} {saved.get(k)} -> {now[k]}" for k in DATA_ORDER_KEYS if saved.get(k) != now[k]]


# --------------------------------------------------------------------------------------- the run's identity

def run_identity(script: str, inputs: dict[str, str | Path | None]) -> dict[str, str]:
    """What defines a run besides its settings: the script, and each input's content hash (name -> file or
    model folder), so a moved input is the same input and an edited one is not. A value that names no file
    (--student_config's inline fields) stands for itself."""
    return {"script": script, **{name: checkpoints.content_hash(path) if Path(path).exists() else str(path)
                                 for name, path in inputs.items() if path}}


def other_kind(saved: dict[str, Any], args: dict[str, Any], identity: dict[str, str]) -> tuple[str, str] | None:
    """(the saved run's kind, this command's) when they are not the same script and stage, else None."""
    then = (saved.get("identity", {}).get("script"), saved.get("args", {}).get("stage"))
    now = (identity.get("script"), args.get("stage"))
    scripts_differ = then[0] is not None and now[0] is not None and then[0] != now[0]
    if not scripts_differ and then[1] == now[1]:
        return None
    return _kind(*then), _kind(*now)


def _kind(script: str | None, stage: str | None) -> str:
    name = script or "a training script"
    return f"{name}'s {stage} stage" if stage else name


def run_changes(saved: dict[str, Any], args: dict[str, Any], identity: dict[str, str]) -> list[str]:
    """What differs between a saved run (its trainer_state.json) and this command: every setting but those of
    RESUME_FREE as '--key old -> new', and each input whose content differs. Settings and inputs a record
    written by an older version lacks are not compared."""
    then = saved.get("args", {})
    changes = [f"--{k} {_shown(then[k])} -> {_shown(args[k])}" for k in sorted(then.keys() & args.keys())
               if k not in RESUME_FREE and then[k] != args[k]]
    known = saved.get("identity", {})
    for name in sorted((known.keys() | identity.keys()) - {"script"}) if known else ():
        if name not in identity:
            changes.append(f"{name} not given now")
        elif name not in known:
            changes.append(f"{name} given now, not then")
        elif known[name] != identity[name]:
            changes.append(f"{name} has other content")
    return changes


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


# ------------------------------------------------------------------------------------ the optimizer's keys

def rename_optimizer_state(state: dict, names: dict[str, str]) -> dict:
    """Re-key an optimizer state dict from one process's internal parameter names to other names.

    Paddle keys accumulators as '<param name>_<accumulator>' (e.g. linear_3.w_0_moment1_0), and internal
    names depend on how many layers a process created before, so they are translated to stable names.
    """
    by_length = sorted(names, key=len, reverse=True)
    out: dict[str, Any] = {}
    for key, value in state.items():
        if key == "master_weights":
            out[key] = {names.get(k, k): v for k, v in value.items()}
            continue
        old = next((n for n in by_length if key.startswith(n + "_")), None)
        out[key if old is None else names[old] + key[len(old):]] = value
    return out


# ------------------------------------------------------------------------------------------ random state

def capture_rng_state() -> dict[str, Any]:
    """paddle's, numpy's and Python's RNG state now, as plain numbers and strings (JSON holds it)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"paddle": [_generator_to_plain(g) for g in paddle.get_rng_state()],
            "numpy": [kind, key.tolist(), int(pos), int(has_gauss), float(gauss)],
            "python": [version, list(internal), gauss_next]}


def restore_rng_state(plain: Any, source: str = "RNG state") -> None:
    """Set the RNGs to what capture_rng_state() returned (also its older form, which kept numpy's key as an
    array and the states as tuples); a malformed record is a DataError naming `source`."""
    if not isinstance(plain, dict):
        raise errors.DataError(source, None, f"not an RNG state: a {type(plain).__name__}, expected a dict")
    generators = None
    if "paddle" in plain:
        if not isinstance(plain["paddle"], (list, tuple)):
            raise errors.DataError(source, None, "not an RNG state: 'paddle' is not a list of generator states")
        generators = [_generator_from_plain(g, source) for g in plain["paddle"]]
    try:
        if generators is not None:
            paddle.set_rng_state(generators)
        if "numpy" in plain:
            kind, key, *rest = plain["numpy"]
            np.random.set_state((kind, np.asarray(key, dtype=np.uint32), *rest))
        if "python" in plain:
            version, internal, gauss_next = plain["python"]
            random.setstate((version, tuple(internal), gauss_next))
    except Exception as e:  # the setters raise ValueError, TypeError, IndexError, RuntimeError...
        raise errors.DataError(source, None, f"not a usable RNG state ({type(e).__name__}: "
                                             f"{errors.first_line(e)})") from None


def _generator_to_plain(generator: Any) -> dict[str, Any]:
    """A paddle GeneratorState by its own __getstate__, the engine as text."""
    device, seed, offset, engine = generator.__getstate__()
    return {"device": int(device), "seed": int(seed), "offset": int(offset), "engine": bytes(engine).decode("ascii")}


def _generator_from_plain(g: Any, source: str) -> Any:
    fields = ("device", "seed", "offset", "engine")
    if (not isinstance(g, dict) or sorted(g) != sorted(fields) or not all(type(g[k]) is int for k in fields[:3])
            or type(g["engine"]) is not str or not re.fullmatch(r"\d+( \d+)*", g["engine"])):
        raise errors.DataError(source, None, "not an RNG state: a paddle generator state should be "
                                             "{device, seed, offset: int, engine: numbers separated by spaces}")
    cls = type(paddle.get_rng_state()[0])
    generator = cls.__new__(cls)  # pybind11 objects unpickle this way too: __new__, then __setstate__
    generator.__setstate__((g["device"], g["seed"], g["offset"], list(g["engine"].encode("ascii"))))
    return generator


# ----------------------------------------------------------------------------------- writing and reading

@dataclass
class RunParts:
    """What a run's state is saved from and restored into."""
    optimizer: paddle.optimizer.Optimizer
    scheduler: paddle.optimizer.lr.LRScheduler
    scaler: paddle.amp.GradScaler | None
    names: dict[str, str]                  # paddle's internal parameter name -> a stable name
    extra_params: dict[str, paddle.Tensor]  # stable name -> a tensor trained outside the model


@dataclass
class _Saved:
    optimizer: dict[str, Any]  # by stable names, arrays
    scheduler: dict[str, Any]
    scaler: dict[str, Any] | None
    rng: Any                   # this process's record
    extra: dict[str, np.ndarray]


def write_state(folder: Path, parts: RunParts, rng_states: list[dict[str, Any]], record: dict[str, Any]) -> None:
    """The run's state into `folder` (being filled by checkpoints.atomic_dir), beside the model."""
    folder = Path(folder)
    opt = rename_optimizer_state({k: v for k, v in parts.optimizer.state_dict().items() if k != "LR_Scheduler"},
                                 parts.names)
    master = opt.pop("master_weights", {})
    tensors = {**opt, **{_MASTER + k: v for k, v in master.items()}}
    _save_arrays({k: v.numpy() for k, v in tensors.items()}, folder / OPTIMIZER_FILE)
    checkpoints.write_json(folder / OPTIMIZER_JSON, {
        "scheduler": _plain(parts.scheduler.state_dict()),
        "scaler": _plain(parts.scaler.state_dict()) if parts.scaler else None})
    if parts.extra_params:
        _save_arrays({k: p.numpy() for k, p in parts.extra_params.items()}, folder / EXTRA_PARAMS_FILE)
    checkpoints.write_json(folder / RNG_FILE, rng_states)
    checkpoints.write_json(folder / STATE_FILE, record)


def restore_state(folder: Path, parts: RunParts, rank: int) -> None:
    """Optimizer, schedule, loss scale, extra tensors and this process's RNG from `folder` (last/)."""
    folder = Path(folder)
    legacy = not (folder / OPTIMIZER_FILE).exists() and (folder / LEGACY_OPTIMIZER_FILE).exists()
    saved = _read_legacy_state(folder, rank) if legacy else _read_state(folder, rank)
    for k, p in parts.extra_params.items():
        p.set_value(saved.extra[k])
    current = {stable: internal for internal, stable in parts.names.items()}
    parts.optimizer.set_state_dict(rename_optimizer_state(saved.optimizer, current))
    parts.scheduler.set_state_dict(saved.scheduler)
    if parts.scaler is not None and saved.scaler:
        parts.scaler.load_state_dict(saved.scaler)
    restore_rng_state(saved.rng, str(folder / (LEGACY_RNG_FILE if legacy else RNG_FILE)))


def _read_state(folder: Path, rank: int) -> _Saved:
    tensors = checkpoints.load_state(folder / OPTIMIZER_FILE)
    optimizer: dict[str, Any] = {k: v for k, v in tensors.items() if not k.startswith(_MASTER)}
    master = {k[len(_MASTER):]: v for k, v in tensors.items() if k.startswith(_MASTER)}
    if master:
        optimizer["master_weights"] = master
    rest = checkpoints.read_json(folder / OPTIMIZER_JSON, "optimizer state")
    if not isinstance(rest, dict) or "scheduler" not in rest:
        raise errors.DataError(folder / OPTIMIZER_JSON, None, "not an optimizer state: no 'scheduler'")
    scaler = rest.get("scaler")
    if scaler:
        scaler = {k: np.asarray(v, dtype=np.float32) if k == "scale" else v for k, v in scaler.items()}
    extra = checkpoints.load_state(folder / EXTRA_PARAMS_FILE) if (folder / EXTRA_PARAMS_FILE).exists() else {}
    rng_file = folder / RNG_FILE
    return _Saved(optimizer, rest["scheduler"], scaler, _own_rng(checkpoints.read_json(rng_file, "RNG state"),
                                                                 rank, rng_file), extra)


def _read_legacy_state(folder: Path, rank: int) -> _Saved:
    """A last/ written before optimizer.safetensors: pickles, read through the restricted unpickler."""
    opt = safe_pickle.load(folder / LEGACY_OPTIMIZER_FILE, "optimizer state")
    extra_file = folder / LEGACY_EXTRA_PARAMS_FILE
    extra = checkpoints.load_state(extra_file) if extra_file.exists() else {}
    rng_file = folder / LEGACY_RNG_FILE
    rng = _own_rng(safe_pickle.load(rng_file, "RNG state"), rank, rng_file)
    return _Saved(opt["optimizer"], opt["scheduler"], opt.get("scaler"), rng, extra)


def _own_rng(records: Any, rank: int, path: Path) -> Any:
    if not isinstance(records, list) or len(records) <= rank:
        raise errors.DataError(path, None, f"holds no RNG state for process {rank}; "
                                           "resume with the number of processes the run was saved with")
    return records[rank]


def _save_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    with checkpoints.atomic_path(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp))


def _plain(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict of numbers and small arrays as JSON values."""
    return {k: v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v for k, v in state.items()}
