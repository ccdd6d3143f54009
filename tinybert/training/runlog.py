"""A training run's log: train_log.jsonl, mirrored as VisualDL scalars, and curves drawn from it as a PNG.

    log = RunLog(out / "train_log.jsonl", out / "visualdl")   # logging_dir None: the JSONL file only
    log.write({"step": 10, "epoch": 0.5, "loss": 1.2, "lr": 1e-4, "loss_hidden": 0.8})
    log.close()
    plot_curves([out], out / "curves.png")

VisualDL tags, with the record's "step" as x-axis: step records give train/loss, train/lr,
train/examples_per_s and train/loss_* (one per loss term); evaluations ({"eval": {...}}) give eval/NAME;
the start record's "reference_metrics" (the teacher's dev metrics) give reference/NAME. Other events
(checkpoint, resume, stop, end) stay in the JSONL file only.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import time
from pathlib import Path
from typing import Any

from tinybert.models import checkpoints
from tinybert import errors

LOG_FILE = "train_log.jsonl"
# Not plotted: the x-axis itself, and epoch (the same axis in other units).
_NOT_SCALARS = {"step", "epoch", "time"}
INTERMEDIATE_TERMS = ("loss_emb", "loss_hidden", "loss_attn")
PREDICTION_TERMS = ("loss_pred", "loss_hard")


def _number(value: Any) -> float | None:
    """A finite int or float as float, else None: strings, bools, NaN and inf are not plotted
    (VisualDL's charts break on non-finite points)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def scalars(record: dict[str, Any]) -> tuple[int, dict[str, float]] | None:
    """The (step, {tag: value}) a log record contributes to VisualDL, or None for one with none."""
    if record.get("event") == "start":
        reference = record.get("reference_metrics") or {}
        values = {f"reference/{k}": _number(v) for k, v in reference.items()}
        step = record.get("step", 0)
    elif "event" in record or "step" not in record:
        return None
    elif isinstance(record.get("eval"), dict):
        values = {f"eval/{k}": _number(v) for k, v in record["eval"].items()}
        step = record["step"]
    else:
        values = {f"train/{k}": _number(v) for k, v in record.items() if k not in _NOT_SCALARS}
        step = record["step"]
    values = {tag: v for tag, v in values.items() if v is not None}
    if not values or _number(step) is None:
        return None
    return int(step), values


class RunLog:
    """Appends one JSON object per line to jsonl_path (opened per write, so a crash loses nothing) and,
    when logging_dir is given, the record's scalars to one VisualDL writer kept open until close().
    enabled=False (any process but rank 0) writes nothing."""

    def __init__(self, jsonl_path: Path, logging_dir: Path | None, enabled: bool = True, append: bool = False):
        self.path = Path(jsonl_path)
        self.enabled = enabled
        self.logging_dir = Path(logging_dir) if enabled and logging_dir is not None else None
        self.append = append
        if self.logging_dir is not None:
            _import_log_writer()  # a missing VisualDL is said before training starts
        # Opened at the first scalar: a run that stops before it (a refused --resume) leaves the folder as it was.
        self.writer = None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), **record}
        with errors.naming(self.path), open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        found = scalars(record) if self.logging_dir is not None else None
        if found is not None:
            if self.writer is None:
                self.writer = _open_writer(self.logging_dir, self.append)
            step, values = found
            for tag, value in values.items():
                self.writer.add_scalar(tag=tag, value=value, step=step)
            # LogWriter queues records for a daemon thread that dies with the process: wait for it here,
            # so a crash or Ctrl-C loses at most the record being written (a few ms per logging step).
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.logging_dir = None  # nothing more goes to VisualDL after close


def _import_log_writer():
    try:
        from visualdl import LogWriter
    except ImportError:
        raise errors.UserError("--logging_dir needs VisualDL: pip install visualdl, or pass --logging_dir none")
    return LogWriter


def _open_writer(logging_dir: Path, append: bool):
    """A VisualDL LogWriter on logging_dir. A resumed run (append) continues the record file already there:
    VisualDL shows only the newest file of a folder, so a second file would hide the first run's curves. A
    fresh run starts a file of its own, which is then the one shown."""
    LogWriter = _import_log_writer()
    if logging_dir.exists() and not logging_dir.is_dir():
        raise errors.UserError(f"--logging_dir {logging_dir} is a file; give a folder, or pass --logging_dir none")
    existing = sorted((p.name for p in logging_dir.glob("*vdlrecords*") if p.is_file()), reverse=True)
    # VisualDL prints a note when it appends to a file; the trainer already says the run resumed.
    with contextlib.redirect_stdout(io.StringIO()):
        return LogWriter(logdir=str(logging_dir), file_name=existing[0] if append and existing else "")


# ------------------------------------------------------------------------------------------ curves

class Curves:
    """One run's log, reduced to what is plotted: the last value per step (a resumed run logs the
    steps after its checkpoint again) and the last start record's reference metrics."""

    def __init__(self, name: str):
        self.name = name
        self.train: dict[int, dict[str, float]] = {}
        self.eval: dict[int, dict[str, float]] = {}
        self.reference: dict[str, float] = {}

    def add(self, record: dict[str, Any]) -> None:
        found = scalars(record)
        if found is None:
            return
        step, values = found
        if record.get("event") == "start":
            self.reference = {tag.split("/", 1)[1]: v for tag, v in values.items()}
        elif "eval" in record:
            self.eval[step] = {tag.split("/", 1)[1]: v for tag, v in values.items()}
        else:
            self.train[step] = {tag.split("/", 1)[1]: v for tag, v in values.items()}

    def series(self, table: dict[int, dict[str, float]], key: str) -> tuple[list[int], list[float]]:
        steps = [s for s in sorted(table) if key in table[s]]
        return steps, [table[s][key] for s in steps]

    def is_intermediate(self) -> bool:
        return any(k in values for values in self.train.values() for k in INTERMEDIATE_TERMS)


def log_file(run: Path) -> Path:
    """A run folder's train_log.jsonl, or the given file itself."""
    run = Path(run)
    return run / LOG_FILE if run.is_dir() else run


def read_curves(run: Path) -> Curves:
    path = log_file(run)
    if not path.is_file():
        raise errors.DataError(path, None, f"no such file; give a {LOG_FILE} or the run folder holding one")
    name = path.parent.name if path.name == LOG_FILE else path.stem
    curves = Curves(name or str(path))
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise errors.DataError(path, number, f"not UTF-8 text (byte 0x{raw[e.start]:02x}); is this a "
                                                     f"{LOG_FILE}?") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                raise errors.DataError(path, number, f"not a JSON line ({e.msg}); is this a {LOG_FILE}?")
            if not isinstance(record, dict):
                raise errors.DataError(path, number, f"expected a JSON object, found {type(record).__name__}")
            curves.add(record)
    return curves


TEACHER_COLOR = "black"   # the teacher's reference lines, never a student's colour
LOG_SCALE_RATIO = 10       # a loss axis turns logarithmic only when its values span a decade or more


def _label(run: Curves, key: str, several: bool) -> str:
    return f"{run.name}: {key}" if several else key


def loss_lines(run: Curves, keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """(key, legend label) of the loss lines to draw for one run: the total "loss" first, and each term
    that is not the total itself (with alpha 0 the prediction stage's loss is loss_pred: one line, labelled
    "loss = loss_pred", rather than two lines drawn one on the other)."""
    total = run.series(run.train, "loss")
    lines, same = [], []
    for key in keys[1:]:
        steps, values = run.series(run.train, key)
        if not steps:
            continue
        if (steps, values) == total:
            same.append(key)
        else:
            lines.append((key, key))
    if total[0]:
        lines.insert(0, ("loss", " = ".join(["loss", *same])))
    return lines


def use_log_scale(values: list[float]) -> bool:
    """Logarithmic only for positive values spanning LOG_SCALE_RATIO or more: a narrow range reads better
    on a linear axis (no 6.92e-1 ticks)."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= LOG_SCALE_RATIO


def metric_limits(values: list[float]) -> tuple[float, float]:
    """The dev-metric axis: from 0 (or -1 for a metric that went negative, such as MCC) to at least 1, so
    a small gap looks small."""
    low = -1.0 if values and min(values) < 0 else 0.0
    return low, max(1.0, max(values, default=1.0)) * 1.02


def _plot_losses(ax, runs: list[Curves], keys: tuple[str, ...], several: bool) -> None:
    plotted: list[float] = []
    for run in runs:
        for key, label in loss_lines(run, keys):
            steps, values = run.series(run.train, key)
            total = key == "loss"  # the total on top, thicker; its terms thinner beneath it
            ax.plot(steps, values, label=_label(run, label, several), linewidth=2.2 if total else 1.3,
                    linestyle="-" if total else "--", zorder=3 if total else 2,
                    marker="." if len(steps) < 30 else None)
            plotted += values
    if use_log_scale(plotted):
        import matplotlib.ticker

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log axis)" if use_log_scale(plotted) else "loss")


def _plot_metrics(ax, runs: list[Curves], several: bool) -> None:
    drawn: set[tuple[str, float]] = set()
    plotted: list[float] = []
    for run in runs:
        for key in sorted({k for values in run.eval.values() for k in values}):
            steps, values = run.series(run.eval, key)
            ax.plot(steps, values, marker="o", linewidth=1.8, label=_label(run, key, several))
            ax.annotate(f"{values[-1]:.3f}", (steps[-1], values[-1]), textcoords="offset points",
                        xytext=(4, -12), fontsize="small")
            plotted += values
            if key in run.reference and (key, run.reference[key]) not in drawn:
                drawn.add((key, run.reference[key]))
                ax.axhline(run.reference[key], color=TEACHER_COLOR, linestyle=":", linewidth=1.5,
                           label=f"teacher {key} {run.reference[key]:.4f}")
                plotted.append(run.reference[key])
    ax.set_ylim(*metric_limits(plotted))
    ax.set_xlabel("step")
    ax.set_ylabel("dev metric (axis from 0)" if metric_limits(plotted)[0] == 0 else "dev metric (axis from -1)")


def plot_curves(runs: list[Path], out_png: Path, title: str | None = None) -> Path:
    """Draw the training curves of one or more runs (train_log.jsonl files or run folders) as a PNG:
    intermediate-stage losses (total and per term), prediction-stage / fine-tuning losses, and dev metrics
    (lines with their points, the last value written) with the teacher's reference as a black dotted line,
    on an axis from 0. Loss axes are linear unless their values span a decade. Panels without data are
    left out. Returns out_png."""
    if not runs:
        raise errors.UserError("no run given: pass one or more train_log.jsonl files or run folders")
    curves = [read_curves(Path(r)) for r in runs]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = curves_figure(curves, title, names=", ".join(str(log_file(Path(r))) for r in runs))
    out_png = Path(out_png)
    with checkpoints.atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out_png


def curves_figure(curves: list[Curves], title: str | None = None, names: str = ""):
    """The matplotlib Figure of plot_curves: one panel per stage kind with data, then the dev metrics."""
    import matplotlib.pyplot as plt

    several = len(curves) > 1
    intermediate = [c for c in curves if c.is_intermediate()]
    prediction = [c for c in curves if not c.is_intermediate()]
    panels = []
    if any(c.train for c in intermediate):
        panels.append(("intermediate-layer distillation",
                       lambda ax: _plot_losses(ax, intermediate, ("loss", *INTERMEDIATE_TERMS), several)))
    if any(c.train for c in prediction):
        panels.append(("prediction stage / fine-tuning",
                       lambda ax: _plot_losses(ax, prediction, ("loss", *PREDICTION_TERMS), several)))
    if any(c.eval for c in curves):
        panels.append(("dev metrics", lambda ax: _plot_metrics(ax, curves, several)))
    if not panels:
        raise errors.UserError(f"{names or ', '.join(c.name for c in curves)}: no logged steps or evaluations to plot")

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    for ax, (panel_title, draw) in zip(axes[0], panels):
        draw(ax)
        ax.set_title(panel_title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
