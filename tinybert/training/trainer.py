"""The one training loop shared by every stage (teacher fine-tuning, both TinyBERT distillation stages).

A stage supplies only its loss: `loss_fn(model, batch) -> (loss, logs)`. This module owns the loop: AdamW
without decay on biases and LayerNorm, linear warm-up then linear decay, gradient clipping and accumulation,
periodic evaluation with the best checkpoint kept, a NaN stop, data parallelism under
`python -m paddle.distributed.launch`, AMP on GPU, a JSONL log and a progress bar. A run's own state (what
last/ holds besides the model, when it is written, resuming from it) is trainstate.py's.

Data: `train_data` is any sequence of items (dicts of numpy arrays), e.g. features.EncodedDataset. Which items
each step draws is features.Plan's: an epoch is a permutation of the items drawn from (seed, epoch) only, so a
resumed run sees exactly the batches that an uninterrupted run would have seen. With group_by_length (the
distillation stages' default) the permutation is then sorted by length within pools of 50 global batches and
the batches shuffled (features.batch_indices), so batches stay random but carry little padding.

Data parallelism: every process draws the same global batch of `batch_size * world_size` items and takes its own
slice; gradients are averaged across processes, so W processes make the same update as one process on the
combined batch. The averaging is Paddle's own engine, paddle.DataParallel, whose all-reduce of gradient buckets
overlaps the backward pass. It wraps a small Layer that holds the model (and any extra trained tensors) and calls
the stage's loss_fn, so loss_fn still gets the model itself with its attributes (student.tinybert.fit_dense).

Host synchronisation: a step never reads a value from the device. Loss terms stay tensors until a logging step
(or a checkpoint) reads the window at once (LossWindow); a NaN then names the steps of its window.

Checkpoint layout (OUTPUT_DIR):
    last/         the latest state: what save_model writes (model, tokenizer, labels) plus the run's own state
                  (trainstate.py: trainer_state.json, optimizer, RNG); `--resume` continues from here.
    best_model/   what save_model writes, at the best evaluation so far, plus eval_results.json.
    train_log.jsonl   one JSON object per logged step, evaluation, resume and stop.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import paddle
import paddle.distributed as dist
from tqdm.auto import tqdm

from tinybert.models import checkpoints
from tinybert import errors
from tinybert.data import features
from tinybert.training import runlog, trainstate
from tinybert.training.config import TrainConfig
from tinybert.training.trainstate import EVAL_RESULTS_FILE, STATE_FILE, TrainState


Batch = dict[str, paddle.Tensor]
LossFn = Callable[[paddle.nn.Layer, Batch], "tuple[paddle.Tensor, dict[str, float]]"]

LAST_DIR, BEST_DIR = "last", "best_model"
LOG_FILE = runlog.LOG_FILE  # train_log.jsonl: runlog.py writes and reads it
VISUALDL_DIR = "visualdl"  # the default --logging_dir, inside OUTPUT_DIR


class TrainingDiverged(errors.UserError):
    """The loss became NaN or infinite; the checkpoints on disk are from before it happened."""


# ------------------------------------------------------------------------------------ processes and seeds

def init_distributed() -> None:
    """Join the process group when started by paddle.distributed.launch (a no-op for a single process).

    Call after the device is set. On CPU Paddle uses gloo; init_parallel_env() takes no arguments here
    (the launcher's --devices flag fails on CPU: use --nproc_per_node).
    """
    if dist.get_world_size() > 1 and not dist.is_initialized():
        dist.init_parallel_env()


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main_process() -> bool:
    """Only rank 0 writes files and prints."""
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def set_seed(seed: int) -> None:
    """Seed paddle, numpy and random (call before building a model so its random init is reproducible)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    paddle.seed(seed)


def _make_deterministic() -> None:
    # cuDNN picks the fastest, sometimes non-deterministic, kernels unless told not to. CPU kernels are
    # deterministic already.
    if paddle.is_compiled_with_cuda():
        for flag in ("FLAGS_cudnn_deterministic", "FLAGS_embedding_deterministic"):
            try:
                paddle.set_flags({flag: True})
            except (ValueError, RuntimeError):  # a flag this paddle build does not have
                pass


# -------------------------------------------------------------------------------------------------- batches

def to_tensors(batch: dict[str, np.ndarray]) -> Batch:
    return {k: paddle.to_tensor(v) for k, v in batch.items()}


# ------------------------------------------------------------------------------------ optimizer, schedule

def linear_schedule_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier: linear rise 0 -> 1 over warmup_steps, then linear fall to 0 at total_steps."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def parameter_names(model: paddle.nn.Layer, params: Sequence[paddle.Tensor]) -> dict[str, str]:
    """paddle's internal parameter name -> a name stable across processes (model path, or extra.i)."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    names, extra = {}, 0
    for p in params:
        if id(p) in by_id:
            names[p.name] = by_id[id(p)]
        else:
            names[p.name] = f"extra.{extra}"
            extra += 1
    return names


def no_decay_names(model: paddle.nn.Layer, params: Sequence[paddle.Tensor]) -> set[str]:
    """Internal names of the biases and LayerNorm weights, which BERT's recipe exempts from weight decay."""
    exempt = set()
    for _, layer in model.named_sublayers(include_self=True):
        if isinstance(layer, paddle.nn.LayerNorm):
            exempt.update(p.name for p in layer.parameters(include_sublayers=False))
    for name, p in model.named_parameters():
        if name.endswith("bias") or "norm" in name.lower():
            exempt.add(p.name)
    # Tensors trained alongside the model but outside it: vectors are biases or norm scales.
    in_model = {id(p) for p in model.parameters()}
    exempt.update(p.name for p in params if id(p) not in in_model and p.ndim <= 1)
    return exempt


def build_optimizer(model: paddle.nn.Layer, params: Sequence[paddle.Tensor], config: TrainConfig,
                    total_steps: int) -> tuple[paddle.optimizer.AdamW, paddle.optimizer.lr.LambdaDecay]:
    """AdamW with decoupled weight decay on weight matrices only, linear warm-up/decay, global-norm clipping."""
    warmup = config.warmup_steps or int(config.warmup_proportion * total_steps)
    scheduler = paddle.optimizer.lr.LambdaDecay(
        config.learning_rate, lambda step: linear_schedule_factor(step, warmup, total_steps))
    exempt = no_decay_names(model, params)
    clip = paddle.nn.ClipGradByGlobalNorm(config.max_grad_norm) if config.max_grad_norm > 0 else None
    optimizer = paddle.optimizer.AdamW(
        learning_rate=scheduler, parameters=list(params), weight_decay=config.weight_decay,
        epsilon=config.adam_epsilon, grad_clip=clip, apply_decay_param_fun=lambda name: name not in exempt)
    return optimizer, scheduler

def _mean_over_processes(values: paddle.Tensor, world: int) -> paddle.Tensor:
    if world == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world


# ------------------------------------------------------------------------------------------- checkpoints

def default_save_model(model: paddle.nn.Layer, folder: Path) -> None:
    """save_pretrained when the model has it, else its state dict as model_state.pdparams."""
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(folder)
    else:
        checkpoints.save_weights({k: v.numpy() for k, v in model.state_dict().items()}, Path(folder))


def launch_rank() -> int:
    """This process's rank in a paddle.distributed.launch job (PADDLE_TRAINER_ID), known before the process
    group exists; 0 without a launcher."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def hold_output(config: TrainConfig) -> None:
    """The run's hold on its output folder (checkpoints.lock_output) for as long as it trains. Only the
    launcher's process 0 takes it: the other processes of one run share the folder."""
    if launch_rank() == 0:
        checkpoints.lock_output(config.output_dir, "--output_dir")


def release_output(config: TrainConfig) -> None:
    if launch_rank() == 0:
        checkpoints.unlock_output(config.output_dir)


def run_args(config: TrainConfig) -> dict[str, Any]:
    """The settings a run records: the config's, then the script's whole command line."""
    settings = {k: v for k, v in asdict(config).items() if k not in ("run_args", "identity")}
    return {**settings, **config.run_args}


def check_output_dir(config: TrainConfig) -> None:
    """Refuse a non-empty output folder unless --resume, or --overwrite_output_dir on a folder this project
    wrote; changes nothing. A folder left by a run that failed before its first checkpoint (only the log)
    does not block the corrected rerun. --resume continues only the same run: the same script and stage,
    settings and inputs (trainstate.run_changes). Scripts call this before loading data; train(), a public
    function that may be called without a script, keeps its own call so no caller can skip the guard."""
    output_dir = Path(config.output_dir)
    if config.resume:
        check_same_run(config, output_dir / LAST_DIR)
        return
    if _failed_before_first_checkpoint(output_dir):
        return
    if output_dir.exists() and output_dir.is_dir() and any(output_dir.iterdir()) and not config.overwrite_output_dir:
        raise errors.UserError(f"output folder {output_dir} is not empty; pass --overwrite_output_dir to "
                               "start afresh there or --resume to continue the run saved in it")
    checkpoints.check_output_folder(output_dir, "--output_dir", config.overwrite_output_dir,
                                    "--overwrite_output_dir")


def check_same_run(config: TrainConfig, last: Path) -> None:
    """The run saved in `last` (or in a complete version an interrupted save left beside it) is the one this
    command continues."""
    saved = next((d for d in (last, *checkpoints.complete_leftovers(last)) if (d / STATE_FILE).exists()), None)
    if saved is None:
        raise errors.UserError(f"--resume: no saved run in {last} (it is written every --save_steps)")
    record, args = trainstate.read_record(saved), run_args(config)
    kinds = trainstate.other_kind(record, args, config.identity)
    if kinds:
        raise errors.UserError(f"--resume: {last} holds a run of {kinds[0]}, not of {kinds[1]}; resume it with "
                               "the command that started it, or start afresh in another --output_dir")
    changed = trainstate.run_changes(record, args, config.identity)
    if changed:
        raise errors.UserError(f"--resume: this command differs from the run saved in {last}: {'; '.join(changed)}; "
                               "resume with the run's own settings and files, or start afresh with "
                               "--overwrite_output_dir (docs/operations.md lists what may change on --resume)")


def _failed_before_first_checkpoint(output_dir: Path) -> bool:
    """A folder of ours without a resumable checkpoint whose log ends in a stop (a NaN, Ctrl-C) or holds
    nothing else: the run cannot be continued, so its corrected rerun may start afresh there."""
    if not output_dir.is_dir() or (output_dir / LAST_DIR).exists():
        return False
    # A checkpoint a kill interrupted while it was being written holds nothing to resume.
    unfinished = {p.name for name in (LAST_DIR, BEST_DIR) for p in checkpoints.unfinished_leftovers(output_dir / name)}
    names = {p.name for p in output_dir.iterdir()} - unfinished
    if not names or not names <= {LOG_FILE, checkpoints.OUTPUT_MARK, BEST_DIR, VISUALDL_DIR}:
        return False
    if names <= {LOG_FILE, checkpoints.OUTPUT_MARK, VISUALDL_DIR}:
        return True
    lines = (output_dir / LOG_FILE).read_text(encoding="utf-8").splitlines() if LOG_FILE in names else []
    try:
        return bool(lines) and json.loads(lines[-1]).get("event") == "stop"
    except ValueError:
        return False


def logging_dir(config: TrainConfig) -> Path | None:
    """Where the VisualDL records go: --logging_dir, else OUTPUT_DIR/visualdl; None when turned off."""
    if not config.visualdl:
        return None
    return Path(config.logging_dir) if config.logging_dir else Path(config.output_dir) / VISUALDL_DIR


def prepare_output_dir(config: TrainConfig) -> None:
    """check_output_dir, then (rank 0) finish an interrupted save, or clear our old outputs for a fresh run."""
    check_output_dir(config)
    barrier()  # every process has checked before rank 0 changes anything
    output_dir = Path(config.output_dir)
    if is_main_process():
        if config.resume:
            checkpoints.recover_dir(output_dir / LAST_DIR)
            checkpoints.recover_dir(output_dir / BEST_DIR)
        else:
            # Only what a run writes: a stale best_model of another run must not pose as this one's.
            for name in (LAST_DIR, BEST_DIR):
                for d in (output_dir / name, *checkpoints.dir_leftovers(output_dir / name)):
                    shutil.rmtree(d, ignore_errors=True)
            (output_dir / LOG_FILE).unlink(missing_ok=True)
            shutil.rmtree(output_dir / VISUALDL_DIR, ignore_errors=True)  # the old run's curves, like its log
            output_dir.mkdir(parents=True, exist_ok=True)
            checkpoints.mark_output(output_dir, "trainer.py")
    barrier()


# ---------------------------------------------------------------------------------- multi-process agreement

def agreed(decision: bool, world: int) -> bool:
    """Rank 0's decision on every process: a decision from each one's own clock could differ, and the
    checkpoint it starts has collectives that every process must enter."""
    if world == 1:
        return decision
    flag = paddle.to_tensor([int(decision)], dtype="int64")
    dist.broadcast(flag, src=0)
    return bool(int(flag.numpy()[0]))


def _print(msg: str) -> None:
    if is_main_process():
        tqdm.write(msg)


# ------------------------------------------------------------------------------------------------------ AMP

def amp_setting(config: TrainConfig) -> str | None:
    """The AMP dtype to train in, or None for float32 (--amp off, or on CPU, where auto_cast casts nothing)."""
    if not config.amp:
        return None
    if not paddle.get_device().startswith("gpu"):
        _print("note: --amp has no effect on CPU (paddle.amp.auto_cast only casts on GPU); training in float32")
        return None
    if config.amp_dtype == "bfloat16" and not paddle.amp.is_bfloat16_supported():
        raise errors.UserError("--amp_dtype bfloat16: this GPU has no bfloat16 support; use float16")
    return config.amp_dtype


class Amp:
    """Mixed precision: auto_cast around the forward pass, and for float16 a loss scaler around backward and
    the optimizer step. With dtype None every part is a plain float32 step."""

    def __init__(self, dtype: str | None):
        self.dtype = dtype
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if dtype == "float16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(enable=True, dtype=self.dtype, level="O1")

    def backward(self, loss: paddle.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, optimizer: paddle.optimizer.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()


# ------------------------------------------------------------------------------------ reading the losses

class LossWindow:
    """The [loss, *logged terms] of every step since the last logging step, kept on the device until `read`
    takes them at once: the loop's one read from the device, at logging steps and before checkpoints. A
    non-finite loss calls `stop(value, step, (first, last step of the window))`, which raises: training stops
    there, before any checkpoint of the weights it produced is written."""

    def __init__(self, world: int, stop: Callable[[float, int, tuple[int, int]], None]):
        self.world, self.stop = world, stop
        self.values: list[paddle.Tensor] = []
        self.examples, self.began = 0, time.time()

    def add(self, values: paddle.Tensor, examples: int) -> None:
        self.values.append(values)
        self.examples += examples

    def read(self, last_step: int) -> np.ndarray:
        """The window's [steps, 1 + terms] values, averaged over processes."""
        values = _mean_over_processes(paddle.stack(self.values), self.world).numpy()
        bad = np.flatnonzero(~np.isfinite(values[:, 0]))
        if len(bad):
            first = last_step - len(self.values) + 1
            self.stop(float(values[bad[0], 0]), first + int(bad[0]), (first, last_step))
        return values

    def take(self, last_step: int) -> tuple[list[float], float]:
        """The window's mean values and examples per second; a new window begins."""
        mean = self.read(last_step).mean(axis=0).tolist()
        rate = self.examples / max(time.time() - self.began, 1e-9)
        self.values, self.examples, self.began = [], 0, time.time()
        return mean, rate

    def exclude(self, seconds: float) -> None:
        """Throughput counts training time only: not the seconds spent evaluating and checkpointing."""
        self.began += seconds


# -------------------------------------------------------------------------------------------- the loop

class Trainer:
    """One run of the loop; `train()` below is the public entry point."""

    def __init__(self, model, train_data, loss_fn, config: TrainConfig, evaluate, save_model, parameters,
                 main_metric, collate_fn, reference_metrics=None):
        self.model, self.train_data, self.loss_fn, self.config = model, train_data, loss_fn, config
        self.evaluate, self.save_model = evaluate, save_model or default_save_model
        self.main_metric = main_metric or getattr(evaluate, "main_metric", None)
        self.collate = collate_fn or features.collate  # padding with 0 unless collate_fn says otherwise
        self.out = Path(config.output_dir)
        self.world, self.rank = world_size(), rank()
        self.params = [p for p in (parameters if parameters is not None else model.parameters())
                       if not p.stop_gradient]
        names = parameter_names(model, self.params)
        self.plan = features.make_plan(train_data, config, self.world)
        self.reference_metrics = reference_metrics
        if self.plan.micro_batches_per_epoch == 0:
            raise errors.UserError(f"{len(train_data)} training examples are fewer than the {self.world} processes")
        self.optimizer, self.scheduler = build_optimizer(model, self.params, config, self.plan.total_steps)
        self.amp = Amp(amp_setting(config))
        self.parts = trainstate.RunParts(
            self.optimizer, self.scheduler, self.amp.scaler, names,
            {names[p.name]: p for p in self.params if names[p.name].startswith("extra.")})
        self.state = TrainState(main_metric=self.main_metric)
        self.log = runlog.RunLog(self.out / LOG_FILE, logging_dir(config), enabled=is_main_process(),
                                 append=config.resume)
        self.window = LossWindow(self.world, self._stop_diverged)
        self.engine: paddle.nn.Layer | None = None  # made in run(), after a resume has loaded the weights
        self.frozen: list[paddle.Tensor] = []  # the model's untrained tensors, frozen while several processes train
        self.log_keys: list[str] = []
        self.last_loss: float | None = None
        self.last_checkpoint_end, self.last_checkpoint_seconds = time.time(), 0.0
        self.checkpoint_seconds, self.checkpoint_count = 0.0, 0

    # -- the loop
    def run(self) -> dict[str, Any]:
        config, plan = self.config, self.plan
        if config.resume:
            self.resume()
        else:
            start_record = {"event": "start", "world_size": self.world, "num_examples": len(self.train_data),
                            "steps_per_epoch": plan.steps_per_epoch, "total_steps": plan.total_steps,
                            "args": run_args(self.config)}
            if self.reference_metrics:
                start_record["reference_metrics"] = self.reference_metrics
            self.log.write(start_record)
        # Under several processes paddle.DataParallel broadcasts rank 0's weights (the model's and the extra
        # tensors) as it is made: processes seeded alike build identical models already, this covers the rest.
        self.engine = self._make_engine()
        total, start = plan.total_steps, self.state.global_step
        _print(f"training: {len(self.train_data)} examples, {self.world} process(es) x batch {config.batch_size} x "
               f"accumulation {config.gradient_accumulation_steps}, {plan.steps_per_epoch} steps/epoch, "
               f"{total} steps")
        began = time.time()
        bar = tqdm(total=total, initial=start, desc="train", disable=not is_main_process(), dynamic_ncols=True)
        try:
            self._loop(bar)
        except KeyboardInterrupt:
            bar.close()
            self._stop_interrupted()
        finally:  # an error message must start a line of its own, not follow the bar
            bar.close()
            for p in self.frozen:
                p.stop_gradient = False
            self.log.close()
        if start >= total:
            _print(f"the saved run had already reached step {start} of {total}; nothing to train")
        return self._summary(time.time() - began)

    def _loop(self, bar) -> None:
        config, plan, total = self.config, self.plan, self.plan.total_steps
        self.model.train()
        epoch, skip = divmod(self.state.global_step, plan.steps_per_epoch)
        self.window.began = time.time()  # throughput from the first step, not from the set-up
        while self.state.global_step < total:
            for step_batches in plan.steps_of_epoch(epoch)[skip:]:
                self.window.add(self.train_step(step_batches), sum(len(micro) for micro in step_batches))
                self.state.global_step += 1
                step = self.state.global_step
                bar.update(1)
                if step % config.logging_steps == 0 or step == total:
                    self._log_window(bar)
                final, epoch_end = step == total, step % plan.steps_per_epoch == 0
                save_step = step % config.save_steps == 0 or final
                if save_step or epoch_end:
                    paused = time.time()
                    if save_step:
                        self._check_window(step)
                        self._evaluate()
                    if agreed(self._checkpoint_due(step, epoch_end, final), self.world):
                        if not save_step:
                            self._check_window(step)
                        self.save_last()
                    self.window.exclude(time.time() - paused)
                if step >= total:
                    break
            epoch, skip = epoch + 1, 0

    def _checkpoint_due(self, step: int, epoch_end: bool, final: bool) -> bool:
        c = self.config
        return trainstate.checkpoint_due(
            step, epoch_end=epoch_end, final=final, since_last=time.time() - self.last_checkpoint_end,
            last_write_seconds=self.last_checkpoint_seconds, save_steps=c.save_steps,
            checkpoint_minutes=c.checkpoint_minutes, checkpoint_budget=c.checkpoint_budget)

    def _check_window(self, step: int) -> None:
        """No checkpoint (nor evaluation) of weights a NaN may have touched: read the unlogged steps first."""
        if self.window.values:
            self.window.read(step)

    # -- one optimizer step
    def _make_engine(self) -> paddle.nn.Layer:
        """The loss as a Layer over the trained tensors; under several processes, in paddle.DataParallel."""
        module = LossModule(self.model, self.loss_fn, list(self.parts.extra_params.values()))
        if self.world == 1:
            return module
        # Tensors the optimizer does not train are frozen so the reducer waits for no gradient of theirs;
        # find_unused_parameters covers trained ones a loss leaves out (a projection under --hidden_weight 0).
        trained = {id(p) for p in self.params}
        self.frozen = [p for p in self.model.parameters() if not p.stop_gradient and id(p) not in trained]
        for p in self.frozen:
            p.stop_gradient = True
        return paddle.DataParallel(module, find_unused_parameters=True)

    def train_step(self, step_batches: list[np.ndarray]) -> paddle.Tensor:
        """Forward/backward each micro-batch, average gradients over processes, take one AdamW step.

        Returns [loss, *logs values] of this process, averaged over micro-batches, as a tensor on the
        device: nothing here waits for the device to finish.
        """
        total: paddle.Tensor | None = None
        for i, micro in enumerate(step_batches):
            own = features.shard(micro, self.rank, self.world)
            # Weighting by this process's share makes the averaged gradient the mean over the whole
            # micro-batch even when it does not split evenly; dividing by the number of micro-batches
            # makes accumulation a mean too.
            weight = len(own) * self.world / len(micro) / len(step_batches)
            batch = to_tensors(self.collate([self.train_data[int(j)] for j in own]))
            last = i == len(step_batches) - 1  # gradients are all-reduced with the last micro-batch only
            no_sync = contextlib.nullcontext() if last or self.world == 1 else self.engine.no_sync()
            with self.amp.autocast(), no_sync:
                loss, logs = self.engine(batch)
                self.amp.backward(loss.astype("float32") * weight)
            values = paddle.stack([_scalar(loss)] + [_scalar(v) for v in logs.values()])
            # Weighted by this process's share, so the mean over processes is the micro-batch's mean.
            values = values * (len(own) * self.world / len(micro))
            total = values if total is None else total + values
            self.log_keys = list(logs)
        self.amp.step(self.optimizer)
        self.optimizer.clear_grad()
        self.scheduler.step()
        return total / len(step_batches)

    # -- logging and stopping
    def _log_window(self, bar) -> None:
        mean, rate = self.window.take(self.state.global_step)
        lr = self.optimizer.get_lr()
        record = {"step": self.state.global_step,
                  "epoch": round(self.state.global_step / self.plan.steps_per_epoch, 4),
                  "loss": mean[0], "lr": lr, "examples_per_s": round(rate, 2),
                  **dict(zip(self.log_keys, mean[1:]))}
        self.log.write(record)
        bar.set_postfix(loss=f"{mean[0]:.4f}", lr=f"{lr:.2e}")
        self.last_loss = mean[0]

    def _stop_diverged(self, value: float, step: int, window: tuple[int, int]) -> None:
        saved = trainstate.saved_step(self.out / LAST_DIR)
        kept = ("no resumable checkpoint had been saved yet" if saved is None
                else f"the last good checkpoint is {self.out / LAST_DIR} (step {saved})")
        self.log.write({"event": "stop", "reason": "non-finite loss", "step": step, "loss": str(value),
                        "window": list(window)})
        seen = f" (losses are read every --logging_steps: steps {window[0]}-{window[1]})" if window[0] < window[1] else ""
        raise TrainingDiverged(f"loss is {value} at step {step}{seen}; training stopped ({kept}). "
                               "Try a lower --learning_rate, or check the data")

    def _stop_interrupted(self) -> None:
        saved = trainstate.saved_step(self.out / LAST_DIR)
        self.log.write({"event": "stop", "reason": "interrupted", "step": self.state.global_step,
                        "checkpoint_step": saved})
        if saved is None:
            raise errors.Interrupted(f"at step {self.state.global_step}, before the first checkpoint "
                                     f"(--save_steps {self.config.save_steps}); nothing to resume: run the "
                                     "command again")
        raise errors.Interrupted(f"at step {self.state.global_step}; the last checkpoint is {self.out / LAST_DIR} "
                                 f"(step {saved})", resumable=True)

    def _summary(self, seconds: float) -> dict[str, Any]:
        s = self.state
        summary = {"global_step": s.global_step, "train_seconds": round(seconds, 1),
                   "train_loss": self.last_loss, "main_metric": s.main_metric,
                   "best_metric": s.best_metric, "best_step": s.best_step, "best_metrics": s.best_metrics,
                   "last_metrics": s.last_metrics, "last_dir": str(self.out / LAST_DIR),
                   "checkpoints": self.checkpoint_count, "checkpoint_seconds": round(self.checkpoint_seconds, 2),
                   "best_model_dir": str(self.out / BEST_DIR) if s.best_step is not None else None}
        self.log.write({"event": "end", **summary})
        if s.best_step is not None:
            line = (f"done: {s.global_step} steps in {seconds:.0f}s; best {s.main_metric} {s.best_metric:.4f} "
                    f"at step {s.best_step} in {self.out / BEST_DIR}; latest in {self.out / LAST_DIR}")
        else:
            line = f"done: {s.global_step} steps in {seconds:.0f}s; model in {self.out / LAST_DIR}"
        _print(line)
        return summary

    # -- evaluation and the best model
    def _evaluate(self) -> None:
        if self.evaluate is None:
            return
        step = self.state.global_step
        metrics = {k: float(v) for k, v in self.evaluate(self.model).items()}
        self.model.train()
        key = self.state.main_metric or next(iter(metrics))
        if key not in metrics:
            raise errors.UserError(f"main metric {key!r} is not among the evaluation results {sorted(metrics)}")
        improved = self.state.record_evaluation(metrics, key)
        if improved:
            self.save_best()
        self.log.write({"step": step, "eval": metrics, "best_metric": self.state.best_metric,
                        "best_step": self.state.best_step})
        if improved:
            verdict = " (best so far)"
        elif self.state.best_metric is None:
            verdict = f" ({key} is not a number: not a best model)"
        else:
            verdict = f" (best {key} {self.state.best_metric:.4f} at step {self.state.best_step})"
        _print(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) + verdict)

    def save_best(self) -> None:
        if is_main_process():
            def write(folder: Path) -> None:
                self._write_model(folder)
                results = {"step": self.state.global_step, "main_metric": self.state.main_metric,
                           **self.state.best_metrics}
                checkpoints.write_json(folder / EVAL_RESULTS_FILE, results)
            checkpoints.atomic_dir(self.out / BEST_DIR, write)
        barrier()

    # -- the run's state in last/ (trainstate.py writes and reads it)
    def _record(self) -> dict[str, Any]:
        """trainer_state.json: the step, the best so far, and the settings that fix the data order."""
        return {**asdict(self.state), "epoch": self.state.global_step / self.plan.steps_per_epoch,
                "steps_per_epoch": self.plan.steps_per_epoch, "total_steps": self.plan.total_steps,
                "num_examples": len(self.train_data), "batch_size": self.config.batch_size,
                "gradient_accumulation_steps": self.config.gradient_accumulation_steps,
                "world_size": self.world, "seed": self.config.seed, "group_by_length": self.config.group_by_length,
                "args": run_args(self.config), "identity": self.config.identity}

    def _write_model(self, folder: Path) -> None:
        """What save_model writes, plus the run's settings: export_model.py reads the task and length there."""
        self.save_model(self.model, folder)
        checkpoints.write_json(folder / checkpoints.TRAINING_ARGS, run_args(self.config))

    def save_last(self) -> None:
        rng_states: list = []
        local_rng = trainstate.capture_rng_state()
        if self.world > 1:
            dist.all_gather_object(rng_states, local_rng)
        else:
            rng_states = [local_rng]
        began = time.time()
        if is_main_process():
            def write(folder: Path) -> None:
                self._write_model(folder)
                if checkpoints.find_weights(folder) is None:
                    default_save_model(self.model, folder)
                trainstate.write_state(folder, self.parts, rng_states, self._record())
            checkpoints.atomic_dir(self.out / LAST_DIR, write)
        barrier()
        self.last_checkpoint_end = time.time()
        self.last_checkpoint_seconds = self.last_checkpoint_end - began
        self.checkpoint_seconds += self.last_checkpoint_seconds
        self.checkpoint_count += 1
        self.log.write({"event": "checkpoint", "step": self.state.global_step,
                        "seconds": round(self.last_checkpoint_seconds, 3)})

    def resume(self) -> None:
        """Restore model, optimizer, schedule, step, RNG and best-so-far from OUTPUT_DIR/last."""
        last = self.out / LAST_DIR
        saved, now = trainstate.read_record(last), self._record()
        changed = trainstate.data_order_changes(saved, now)
        if changed:
            raise errors.UserError(f"--resume: these settings differ from the saved run, so it cannot continue "
                                   f"with the same data order: {', '.join(changed)}")
        if saved["total_steps"] != now["total_steps"]:
            _print(f"note: total steps changed from {saved['total_steps']} to {now['total_steps']}; "
                   "the learning-rate schedule follows the new total")
        checkpoints.load_model_weights(self.model, last)
        trainstate.restore_state(last, self.parts, self.rank)
        self.state = TrainState.from_record(saved, self.main_metric)
        self.state.adopt_best_model(self.out / BEST_DIR / EVAL_RESULTS_FILE)
        self.log.write({"event": "resume", "step": self.state.global_step})
        _print(f"resumed from {last} at step {self.state.global_step}")


class LossModule(paddle.nn.Layer):
    """The model and any extra trained tensors under one Layer whose forward is the stage's loss: the unit
    paddle.DataParallel wraps, so its reducer sees every trained tensor and the loss_fn still gets the model."""

    def __init__(self, model: paddle.nn.Layer, loss_fn: LossFn, extra: Sequence[paddle.Tensor] = ()):
        super().__init__()
        self.model = model
        for i, p in enumerate(extra):
            self.add_parameter(f"extra_{i}", p)
        self.loss_fn = loss_fn

    def forward(self, batch: Batch):
        return self.loss_fn(self.model, batch)




def _scalar(value: Any) -> paddle.Tensor:
    """A logged value as a float32 scalar tensor, detached (a float from an older loss_fn is wrapped)."""
    if isinstance(value, paddle.Tensor):
        return value.detach().astype("float32").reshape([])
    return paddle.to_tensor(float(value), dtype="float32")


def train(model: paddle.nn.Layer, train_data: Sequence[dict[str, np.ndarray]], loss_fn: LossFn,
          config: TrainConfig, evaluate: Callable[[paddle.nn.Layer], dict[str, float]] | None = None,
          save_model: Callable[[paddle.nn.Layer, Path], None] | None = None,
          parameters: Sequence[paddle.Tensor] | None = None, *, main_metric: str | None = None,
          collate_fn: Callable[[list], dict[str, np.ndarray]] | None = None,
          reference_metrics: dict[str, float] | None = None) -> dict[str, Any]:
    """Train `model` on `train_data` by minimising `loss_fn`; returns a summary dict.

    loss_fn(model, batch) -> (scalar loss tensor, {name: float} extra values to log); batch is a dict of
    tensors (this process's slice of the global batch). evaluate(model) -> metrics dict runs on every process
    (use evaluation.predict_logits, which splits the data and gathers); the main metric (higher is better) picks
    OUTPUT_DIR/best_model: `main_metric`, else evaluate.main_metric, else the first key. save_model(model, dir)
    writes a checkpoint folder (default: save_pretrained). `parameters` (default: the model's trainable ones)
    may include tensors outside the model; they are checkpointed too.

    Summary keys: global_step, train_seconds, train_loss, main_metric, best_metric, best_step, best_metrics,
    last_metrics, last_dir, best_model_dir. reference_metrics (the teacher's dev metrics) go into the log's
    start record, for curves drawn against them.
    """
    init_distributed()
    _make_deterministic()
    hold_output(config)  # already held when a script started the run (cli.start_training)
    try:
        prepare_output_dir(config)
        set_seed(config.seed + rank())  # dropout masks differ across processes, as they would across a larger batch
        trainer = Trainer(model, train_data, loss_fn, config, evaluate, save_model, parameters, main_metric,
                          collate_fn, reference_metrics)
        summary = trainer.run()
        barrier()
    finally:
        release_output(config)
    return summary
