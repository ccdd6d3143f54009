"""Inference speed of a BERT-base-shaped teacher against the TinyBERT4 and TinyBERT6 students.

    python benchmarks/inference_speed.py                  # CPU, every core this process may use
    python benchmarks/inference_speed.py --device gpu
    python benchmarks/inference_speed.py --quick          # tiny shapes, a few seconds (the tests run this)

Speed does not depend on weight values, so the models have random weights. For each runtime (eager Paddle,
Paddle Inference with oneDNN, ONNX Runtime when onnxruntime and paddle2onnx are installed) and each setting
(batch 1 for latency, batch 32 for throughput; sequence length 128 and 64), the three models run in turn,
round after round, so that load from other processes slows all of them alike; every number is the median over
rounds. A round of a fast model repeats its call until it has run --min_round_time seconds.

The INT8 student (TinyBERT4 through `export_model.py --quantize int8`'s path, run by ONNX Runtime) takes its
turns in Paddle Inference's rounds, beside the float models it is compared with: its rows say onnxruntime_int8,
and `int8_student_speedup: <ratio>x` is TinyBERT4's median time on Paddle Inference (the float default) over
the INT8 student's at the largest setting; `int8_teacher_speedup` is the float teacher's over it.
It is left out, with a note, when onnxruntime's quantization tools or paddle2onnx are missing, or on GPU.

The last line is the gate: `tinybert4_speedup: <ratio>x`, the teacher's median time over TinyBERT4's with
Paddle Inference at the run's largest setting (batch 32, sequence length 128).
"""
from __future__ import annotations

from pathlib import Path


from tinybert import cli

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from tinybert import errors
from tinybert.device import set_device
from tinybert import inference

BACKENDS = ("eager", "paddle_inference", "paddle_inference_no_onednn", "onnxruntime")
DEFAULT_BACKENDS = ("eager", "paddle_inference", "onnxruntime")
GATE_BACKEND, GATE_STUDENT = "paddle_inference", "tinybert4"
# The INT8 student: GATE_STUDENT quantized, timed in GATE_BACKEND's rounds, reported as its own runtime.
INT8_MODEL, INT8_BACKEND = "tinybert4_int8", "onnxruntime_int8"


@dataclass(frozen=True)
class Shape:
    name: str
    model_type: str  # "bert" or "tinybert": which modeling class is built
    layers: int
    hidden: int
    heads: int
    ffn: int


# The paper's models: BERT-base teacher; TinyBERT4 (4 layers, 312 wide, FFN 1200); TinyBERT6 (6 layers, 768).
SHAPES = (
    Shape("teacher", "bert", 12, 768, 12, 3072),
    Shape("tinybert4", "tinybert", 4, 312, 12, 1200),
    Shape("tinybert6", "tinybert", 6, 768, 12, 3072),
)
VOCAB_SIZE, MAX_POSITIONS = 30522, 512
SETTINGS = ((1, 128), (32, 128), (1, 64), (32, 64))  # (batch, sequence length)

# --quick: the same pipeline on shapes small enough for a test.
QUICK_SHAPES = (
    Shape("teacher", "bert", 3, 64, 4, 256),
    Shape("tinybert4", "tinybert", 1, 32, 4, 64),
    Shape("tinybert6", "tinybert", 2, 64, 4, 256),
)
QUICK_VOCAB_SIZE, QUICK_MAX_POSITIONS = 100, 64
QUICK_SETTINGS = ((1, 16), (4, 16))


# ---------------------------------------------------------------------------------------- model facts

def flops_per_sequence(shape: Shape, seq_len: int, num_labels: int = 2) -> int:
    """Forward FLOPs for one sequence, counting a multiply-add as 2 (embedding look-ups, softmax,
    LayerNorm and GELU are left out: they are a few percent).

    Per layer: Q, K, V and output projections 4 S H^2; attention scores Q K^T and context P V 2 S^2 H;
    feed-forward 2 S H F. Then the pooler H^2 and the classifier H C on the [CLS] vector."""
    s, h, f = seq_len, shape.hidden, shape.ffn
    per_layer = 4 * s * h * h + 2 * s * s * h + 2 * s * h * f
    return 2 * (shape.layers * per_layer + h * h + h * num_labels)


def build_model(shape: Shape, vocab_size: int, max_positions: int, num_labels: int = 2):
    """A randomly initialised sequence classifier of the given shape, in eval mode."""
    from tinybert.models import modeling

    config = modeling.BertConfig(vocab_size=vocab_size, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                                 num_attention_heads=shape.heads, intermediate_size=shape.ffn,
                                 max_position_embeddings=max_positions, num_labels=num_labels)
    model = modeling.model_class(shape.model_type, "classification")(config)
    model.eval()
    return model


def random_batch(batch_size: int, seq_len: int, vocab_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Full-length rows (no padding): every setting times exactly batch x seq_len tokens."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(5, vocab_size, size=(batch_size, seq_len), dtype=np.int64)
    token_type_ids = np.zeros_like(input_ids)
    token_type_ids[:, seq_len // 2:] = 1
    return {"input_ids": input_ids, "token_type_ids": token_type_ids,
            "attention_mask": np.ones_like(input_ids)}


# ----------------------------------------------------------------------------------------------- timing

def seconds_per_call(run: Callable, batch: dict, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        run(batch)
    return (time.perf_counter() - start) / calls


def time_in_rounds(runners: dict[str, Callable], batch: dict, rounds: int, warmup: int,
                   min_round_time: float, progress=None) -> dict[str, list[float]]:
    """Seconds per call for each runner, one value per round; runners take turns within a round.

    The last warm-up call (the first ones build kernels and caches) sets how many calls a round makes."""
    calls = {}
    for name, run in runners.items():
        estimate = min(seconds_per_call(run, batch, 1) for _ in range(max(1, warmup)))
        calls[name] = max(1, math.ceil(min_round_time / max(estimate, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(rounds):
        order = list(runners) if r % 2 == 0 else list(reversed(runners))  # no model always goes first
        for name in order:
            times[name].append(seconds_per_call(runners[name], batch, calls[name]))
        if progress is not None:
            progress.update(1)
    return times


def make_runner(backend: str, model, export_dir: Path, device: str, threads: int) -> Callable:
    if backend == "eager":
        return inference.EagerModel(model)
    if backend == "paddle_inference":
        return inference.exported_runner(export_dir, device, threads)
    if backend == "paddle_inference_no_onednn":
        return inference.exported_runner(export_dir, device, threads, use_onednn=False)
    if backend == "onnxruntime":
        return inference.onnx_runner(export_dir, device, threads)
    raise ValueError(backend)


def available_backends(requested: list[str], device: str) -> tuple[list[str], list[str]]:
    """(backends to run, one note per backend left out and why)."""
    chosen, notes = [], []
    for backend in requested:
        if backend == "onnxruntime":
            try:
                import onnxruntime
                import paddle2onnx  # noqa: F401
            except ImportError as e:
                notes.append(f"onnxruntime left out: {e.name} is not installed (pip install onnxruntime paddle2onnx)")
                continue
            if device == "gpu" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                notes.append("onnxruntime left out: no CUDAExecutionProvider (pip install onnxruntime-gpu)")
                continue
        if backend == "paddle_inference_no_onednn" and device == "gpu":
            notes.append("paddle_inference_no_onednn left out: oneDNN is a CPU library")
            continue
        chosen.append(backend)
    return chosen, notes


def int8_unavailable(device: str) -> str | None:
    """Why the INT8 student cannot run here, or None when it can."""
    if device == "gpu":
        return "tinybert4_int8 left out: ONNX Runtime's dynamic INT8 kernels are CPU kernels"
    try:
        import paddle2onnx  # noqa: F401

        inference.import_onnxruntime()
        inference.import_onnx_quantization()
    except (ImportError, errors.UserError) as e:
        return f"tinybert4_int8 left out: {errors.first_line(e)}"
    return None


# ------------------------------------------------------------------------------------------------ report

def machine_description(device: str, threads: int) -> str:
    import paddle

    if device == "gpu":
        where = f"GPU {paddle.device.cuda.get_device_name()}"
    else:
        cpu = platform.processor() or "CPU"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        where = f"CPU {cpu}, {os.cpu_count()} cores, {threads} threads used"
    versions = [f"paddle {paddle.__version__}"]
    try:
        import onnxruntime

        versions.append(f"onnxruntime {onnxruntime.__version__}")
    except ImportError:
        pass
    return f"{where}; {', '.join(versions)}"


def format_models(shapes: tuple[Shape, ...], params: dict[str, int], seq_len: int) -> list[str]:
    teacher_flops = flops_per_sequence(shapes[0], seq_len)
    lines = [f"{'model':<10} {'layers':>6} {'hidden':>6} {'heads':>5} {'ffn':>5} {'params':>9} "
             f"{f'GFLOPs/seq@{seq_len}':>16} {'FLOPs ratio':>11}"]
    for shape in shapes:
        flops = flops_per_sequence(shape, seq_len)
        lines.append(f"{shape.name:<10} {shape.layers:>6} {shape.hidden:>6} {shape.heads:>5} {shape.ffn:>5} "
                     f"{params[shape.name] / 1e6:>8.2f}M {flops / 1e9:>16.3f} {teacher_flops / flops:>10.1f}x")
    return lines


def format_results(rows: list[dict]) -> list[str]:
    lines = [f"{'runtime':<27} {'batch':>5} {'seq':>4}  {'model':<14} {'ms/batch':>10} {'seq/s':>9} "
             f"{'spread':>7} {'speedup':>8}"]
    for row in rows:
        lines.append(f"{row['backend']:<27} {row['batch']:>5} {row['seq']:>4}  {row['model']:<14} "
                     f"{row['median_ms']:>10.2f} {row['throughput']:>9.1f} {row['spread']:>6.0%} "
                     f"{row['speedup']:>7.1f}x")
    return lines


def summarize(times: dict[str, list[float]], backend: str, batch: int, seq: int, teacher: str) -> list[dict]:
    """One row per model: median time, throughput, spread (interquartile range / median), speedup."""
    teacher_median = statistics.median(times[teacher])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        q1, q3 = np.percentile(values, [25, 75])
        rows.append({"backend": backend, "batch": batch, "seq": seq, "model": name,
                     "median_ms": median * 1e3, "throughput": batch / median, "spread": (q3 - q1) / median,
                     "speedup": teacher_median / median, "rounds": len(values),
                     "seconds": [round(v, 6) for v in values]})
    return rows


# -------------------------------------------------------------------------------------------------- main

def run_benchmark(shapes: tuple[Shape, ...], settings: tuple[tuple[int, int], ...], backends: list[str],
                  device: str, threads: int, rounds: int, warmup: int, min_round_time: float,
                  vocab_size: int, max_positions: int, log: Callable[[str], None] = print,
                  int8: bool = False) -> dict:
    import paddle
    from tqdm import tqdm

    from tinybert.models import modeling

    paddle.seed(0)
    models = {shape.name: build_model(shape, vocab_size, max_positions) for shape in shapes}
    params = {name: modeling.count_parameters(model) for name, model in models.items()}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tinybert-bench-") as tmp:
        export_dirs = {}
        if any(b != "eager" for b in backends):
            for name, model in tqdm(models.items(), desc="export", leave=False):
                export_dirs[name] = Path(tmp) / name
                export_dirs[name].mkdir()
                inference.save_static_model(model, export_dirs[name])
                if "onnxruntime" in backends or (int8 and name == GATE_STUDENT):
                    inference.convert_to_onnx(export_dirs[name])
            if int8:
                inference.quantize_onnx(export_dirs[GATE_STUDENT])
        progress = tqdm(total=len(backends) * len(settings) * rounds, desc="rounds", leave=False)
        for backend in backends:
            runners = {name: make_runner(backend, model, export_dirs.get(name), device, threads)
                       for name, model in models.items()}
            if int8 and backend == GATE_BACKEND:
                runners[INT8_MODEL] = inference.onnx_runner(export_dirs[GATE_STUDENT], device, threads,
                                                            inference.INT8_ONNX_FILE)
            for batch_size, seq_len in settings:
                batch = random_batch(batch_size, seq_len, vocab_size)
                times = time_in_rounds(runners, batch, rounds, warmup, min_round_time, progress)
                for row in summarize(times, backend, batch_size, seq_len, teacher=shapes[0].name):
                    if row["model"] == INT8_MODEL:
                        row["backend"] = INT8_BACKEND
                    rows.append(row)
            del runners  # free one runtime's copies of the weights before loading the next
        progress.close()
    return {"params": params, "rows": rows}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="Device to time on.")
    parser.add_argument("--cpu_threads", type=int, default=None,
                        help="Threads for every runtime (default: every core this process may use).")
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                        help=f"Comma-separated, from {', '.join(BACKENDS)}; paddle_inference is always run "
                             "(it is the gate); onnxruntime is skipped with a note when not installed.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed rounds per setting (the median is kept).")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed calls per model before the rounds.")
    parser.add_argument("--min_round_time", type=float, default=0.5,
                        help="Seconds a round of one model lasts at least (fast models repeat their call).")
    parser.add_argument("--quick", action="store_true",
                        help="Tiny shapes, batch 1 and 4, sequence length 16, 3 rounds: checks the pipeline.")
    parser.add_argument("--output_json", default=None, help="Also write every number to this JSON file.")
    return parser.parse_args(argv)


@cli.run_main
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    threads = args.cpu_threads or inference.default_cpu_threads()
    requested = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(requested) - set(BACKENDS))
    if unknown:
        raise errors.UserError(f"unknown --backends {unknown}; choose from {', '.join(BACKENDS)}")
    if GATE_BACKEND not in requested:
        requested.insert(0, GATE_BACKEND)
    if args.output_json and Path(args.output_json).exists():
        raise errors.UserError(f"{args.output_json} exists; remove it or choose another --output_json")
    set_device(args.device)
    inference.set_eager_threads(threads)
    backends, notes = available_backends(requested, args.device)
    int8_note = int8_unavailable(args.device)
    notes += [int8_note] if int8_note else []

    if args.quick:
        shapes, settings, vocab, positions = QUICK_SHAPES, QUICK_SETTINGS, QUICK_VOCAB_SIZE, QUICK_MAX_POSITIONS
        rounds, min_round_time = min(args.rounds, 3), min(args.min_round_time, 0.02)
    else:
        shapes, settings, vocab, positions = SHAPES, SETTINGS, VOCAB_SIZE, MAX_POSITIONS
        rounds, min_round_time = args.rounds, args.min_round_time

    print(f"machine: {machine_description(args.device, threads)}")
    for note in notes:
        print(note)
    result = run_benchmark(shapes, settings, backends, args.device, threads, rounds, args.warmup,
                           min_round_time, vocab, positions, int8=int8_note is None)
    gate_batch, gate_seq = max(settings)
    print(f"medians over {rounds} rounds; speedup = teacher's time / model's time, same runtime and setting")
    print("\n".join(format_models(shapes, result["params"], gate_seq)))
    print()
    print("\n".join(format_results(result["rows"])))
    int8 = None
    if int8_note is None:
        int8 = int8_speedups(result["rows"], gate_batch, gate_seq, teacher=shapes[0].name)
        result["int8"] = int8
    if args.output_json:
        info = {"device": args.device, "threads": threads, "quick": args.quick,
                "machine": machine_description(args.device, threads), "shapes": [asdict(s) for s in shapes]}
        Path(args.output_json).write_text(json.dumps({**info, **result}, indent=2) + "\n", encoding="utf-8")
    gate = next(r for r in result["rows"] if r["backend"] == GATE_BACKEND and r["model"] == GATE_STUDENT
                and (r["batch"], r["seq"]) == (gate_batch, gate_seq))
    flops_ratio = flops_per_sequence(shapes[0], gate_seq) / flops_per_sequence(shapes[1], gate_seq)
    print(f"gate: teacher / tinybert4 time, {GATE_BACKEND}, batch {gate_batch}, sequence length {gate_seq}; "
          f"the paper reports 9.4x, the FLOPs ratio {flops_ratio:.1f}x bounds it")
    if int8 is not None:
        print(f"int8: {INT8_MODEL} on ONNX Runtime {int8['int8_ms']:.2f} ms/batch, {GATE_STUDENT} on "
              f"{GATE_BACKEND} {int8['float_ms']:.2f} ms, teacher {int8['teacher_ms']:.2f} ms "
              f"(batch {gate_batch}, sequence length {gate_seq}, medians of the same rounds)")
        print(f"int8_student_speedup: {int8['student_speedup']:.2f}x")
        print(f"int8_teacher_speedup: {int8['teacher_speedup']:.1f}x")
    print(f"tinybert4_speedup: {gate['speedup']:.1f}x")


def int8_speedups(rows: list[dict], batch: int, seq: int, teacher: str) -> dict[str, float]:
    """The INT8 student's median against the float student's and the float teacher's (Paddle Inference),
    all timed in the same rounds."""
    def median_ms(backend: str, model: str) -> float:
        return next(r["median_ms"] for r in rows if (r["backend"], r["model"], r["batch"], r["seq"]) ==
                    (backend, model, batch, seq))

    int8_ms = median_ms(INT8_BACKEND, INT8_MODEL)
    float_ms, teacher_ms = median_ms(GATE_BACKEND, GATE_STUDENT), median_ms(GATE_BACKEND, teacher)
    return {"int8_ms": int8_ms, "float_ms": float_ms, "teacher_ms": teacher_ms,
            "student_speedup": float_ms / int8_ms, "teacher_speedup": teacher_ms / int8_ms}


if __name__ == "__main__":
    main()
