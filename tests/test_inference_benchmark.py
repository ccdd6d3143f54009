"""benchmarks/inference_speed.py: FLOPs formula, timing bookkeeping, and a --quick run end to end."""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from builders import ROOT


def load_benchmark():
    spec = importlib.util.spec_from_file_location("inference_speed", ROOT / "benchmarks" / "inference_speed.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["inference_speed"] = module
    spec.loader.exec_module(module)
    return module


bench = load_benchmark()


def matmul_flops(shape, seq_len: int, num_labels: int = 2) -> int:
    """2 m k n for every matrix product of the forward pass, listed one by one."""
    s, h, f, heads = seq_len, shape.hidden, shape.ffn, shape.heads
    d = h // heads
    per_layer = [(s, h, h)] * 4                    # Q, K, V, output projections
    per_layer += [(s, d, s)] * heads               # Q K^T, per head
    per_layer += [(s, s, d)] * heads               # P V, per head
    per_layer += [(s, h, f), (s, f, h)]            # feed-forward
    products = per_layer * shape.layers + [(1, h, h), (1, h, num_labels)]  # pooler, classifier on [CLS]
    return int(sum(2 * m * k * n for m, k, n in products))


@pytest.mark.parametrize("shape", bench.SHAPES + bench.QUICK_SHAPES, ids=lambda s: f"{s.name}-{s.hidden}")
def test_flops_formula_counts_every_matrix_product(shape):
    for seq_len in (16, 64, 128):
        assert bench.flops_per_sequence(shape, seq_len) == matmul_flops(shape, seq_len)


def test_paper_shapes_flops():
    teacher, tiny4, tiny6 = bench.SHAPES
    # BERT-base at 128 tokens: about 22 GFLOPs; TinyBERT4 about 18x fewer, TinyBERT6 2x fewer.
    assert bench.flops_per_sequence(teacher, 128) / 1e9 == pytest.approx(22.4, abs=0.1)
    assert bench.flops_per_sequence(teacher, 128) / bench.flops_per_sequence(tiny4, 128) == pytest.approx(17.9, abs=0.1)
    assert bench.flops_per_sequence(teacher, 128) / bench.flops_per_sequence(tiny6, 128) == pytest.approx(2.0, abs=0.01)


def test_rounds_alternate_and_medians_give_speedup():
    calls: list[str] = []

    def runner(name):
        return lambda batch: calls.append(name)

    times = bench.time_in_rounds({"teacher": runner("teacher"), "student": runner("student")}, {}, rounds=4,
                                 warmup=1, min_round_time=0.0)
    assert [len(v) for v in times.values()] == [4, 4]
    timed = calls[2:]  # after one warm-up call each, one call per round each (min_round_time 0)
    assert timed == ["teacher", "student", "student", "teacher"] * 2

    rows = bench.summarize({"teacher": [1.0, 3.0, 2.0], "student": [0.2, 0.1, 0.4]}, "eager", 32, 128, "teacher")
    by_model = {row["model"]: row for row in rows}
    assert by_model["student"]["median_ms"] == pytest.approx(200.0)
    assert by_model["student"]["speedup"] == pytest.approx(2.0 / 0.2)
    assert by_model["student"]["throughput"] == pytest.approx(32 / 0.2)
    assert by_model["teacher"]["speedup"] == pytest.approx(1.0)
    q1, q3 = np.percentile([1.0, 3.0, 2.0], [25, 75])
    assert by_model["teacher"]["spread"] == pytest.approx((q3 - q1) / 2.0)


def test_quick_run_end_to_end(tmp_path: Path, capsys):
    out_json = tmp_path / "speed.json"
    bench.main(["--quick", "--cpu_threads", "1", "--output_json", str(out_json)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"tinybert4_speedup: \d+\.\dx", lines[-1])
    result = json.loads(out_json.read_text())
    assert result["quick"] and result["threads"] == 1
    backends = {row["backend"] for row in result["rows"]}
    assert {"eager", "paddle_inference"} <= backends
    has_ort = importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("paddle2onnx")
    assert ("onnxruntime" in backends) == bool(has_ort)
    settings = {(row["batch"], row["seq"]) for row in result["rows"]}
    assert settings == set(bench.QUICK_SETTINGS)
    has_int8 = bool(has_ort) and importlib.util.find_spec("ml_dtypes") is not None
    int8_rows = [row for row in result["rows"] if row["backend"] == "onnxruntime_int8"]
    assert len(int8_rows) == (len(settings) if has_int8 else 0)
    assert all(row["model"] == "tinybert4_int8" for row in int8_rows)
    float_backends = backends - {"onnxruntime_int8"}
    assert len(result["rows"]) == len(float_backends) * len(settings) * 3 + len(int8_rows)
    gate = next(r for r in result["rows"] if (r["backend"], r["model"], r["batch"], r["seq"]) ==
                ("paddle_inference", "tinybert4", 4, 16))
    assert lines[-1] == f"tinybert4_speedup: {gate['speedup']:.1f}x"
    if has_int8:  # the INT8 student against the float student and teacher of the same rounds
        def median(backend, model):
            return next(r["median_ms"] for r in result["rows"] if (r["backend"], r["model"], r["batch"], r["seq"])
                        == (backend, model, 4, 16))

        int8_ms = median("onnxruntime_int8", "tinybert4_int8")
        assert f"int8_student_speedup: {median('paddle_inference', 'tinybert4') / int8_ms:.2f}x" in lines
        assert f"int8_teacher_speedup: {median('paddle_inference', 'teacher') / int8_ms:.1f}x" in lines
        assert result["int8"]["student_speedup"] == pytest.approx(median("paddle_inference", "tinybert4") / int8_ms)
    assert all(row["median_ms"] > 0 and len(row["seconds"]) == 3 for row in result["rows"])
    assert result["params"]["teacher"] > result["params"]["tinybert6"] > result["params"]["tinybert4"]


def test_bad_flags_are_one_line_errors(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--quick", "--backends", "eager,tensorrt"])
    assert exit_info.value.code == 2
    assert "unknown --backends ['tensorrt']" in capsys.readouterr().err
    existing = tmp_path / "speed.json"
    existing.write_text("{}")
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--output_json", str(existing)])
    assert "exists" in capsys.readouterr().err


def test_gpu_without_cuda_build_is_a_one_line_error(capsys):
    import paddle

    if paddle.is_compiled_with_cuda():
        pytest.skip("this paddle has CUDA: --device gpu is a real run here")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--quick", "--device", "gpu"])
    assert exit_info.value.code == 2
    assert "paddlepaddle-gpu" in capsys.readouterr().err


def test_int8_row_is_left_out_with_a_reason(monkeypatch):
    assert "CPU kernels" in bench.int8_unavailable("gpu")

    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)  # import fails as if not installed
    note = bench.int8_unavailable("cpu")
    assert note.startswith("tinybert4_int8 left out: ") and "pip install onnxruntime onnx ml_dtypes" in note
