"""The one builder of inference runners: Paddle Inference, ONNX Runtime and eager Paddle.

A runner is called with a batch dict of int64 arrays and returns the model's output as a numpy array.
export_model.py, predict.py, demo.py, the benchmarks and the augmentation's masked-LM all get their
runners here, so the pass list (exact GELU), the thread count and the GPU card are decided once.

    predictor = load_predictor("infer_model")                 # exported folder or training checkpoint
    logits = predictor.run(batch)                             # batch: input_ids, token_type_ids, attention_mask

    static_graph(layer, input_spec, "tmp/graph")              # paddle.jit.save of any Layer
    run = paddle_inference_runner("tmp/graph.json", "tmp/graph.pdiparams", input_names)
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tinybert.models import checkpoints
from tinybert import errors
from tinybert.device import gpu_card, set_device

INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")
MODEL_FILE, PARAMS_FILE, ONNX_FILE = "model.json", "model.pdiparams", "model.onnx"
INT8_ONNX_FILE = "model_int8.onnx"  # export_model.py --quantize int8, run by ONNX Runtime
# DynamicQuantizeLinear, which the quantized graph computes activations' scales with, is an opset 11 op.
QUANTIZE_MIN_OPSET = 11
INFERENCE_CONFIG = "inference_config.json"
ONNX_OPSET = 17
# oneDNN caches one compiled kernel set per input shape; prediction sees many sequence lengths, so the cache
# is bounded (Paddle's default keeps every shape and grows without limit).
ONEDNN_CACHE_SHAPES = 16
# Passes removed from Paddle Inference's CPU pipeline: the fused oneDNN FC+GELU computes the tanh
# approximation, not BERT's erf GELU (logits then differ from eager by ~1e-4); without it they agree to ~1e-8.
CPU_PASSES_REMOVED = ("fc_activation_fuse_pass",)

Batch = Mapping[str, np.ndarray]
Runner = Callable[[Batch], np.ndarray]


# ----------------------------------------------------------------------------------------------
# Threads and devices


def default_cpu_threads() -> int:
    """The cores this process may use: OMP_NUM_THREADS when set (shards run side by side), else the
    cores a container or taskset allows (fewer than the machine may have)."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_eager_threads(threads: int | None) -> None:
    """Math-library threads for eager Paddle on CPU (Paddle starts with one unless OMP_NUM_THREADS is set)."""
    import paddle

    paddle.base.core.set_num_threads(threads or default_cpu_threads())


def _int64_inputs(batch: Batch, names: Sequence[str] = INPUT_NAMES) -> list[np.ndarray]:
    missing = [name for name in names if name not in batch]
    if missing:
        raise ValueError(f"batch lacks {missing}")
    return [np.ascontiguousarray(batch[name], dtype=np.int64) for name in names]


# ----------------------------------------------------------------------------------------------
# Static graphs and Paddle Inference


def static_graph(layer: Any, input_spec: Sequence[Any], prefix: str | os.PathLike) -> Path:
    """paddle.jit.save of a Layer in eval mode; returns the graph file (PREFIX.json, Paddle 3's PIR form)."""
    import paddle

    layer.eval()  # dropout off in the traced graph
    static = paddle.jit.to_static(layer, input_spec=list(input_spec), full_graph=True)
    with warnings.catch_warnings():  # tracing asks tensors for .place, which PIR graphs lack; harmless
        warnings.filterwarnings("ignore", message=".*do not have 'place' interface")
        paddle.jit.save(static, str(prefix), input_spec=list(input_spec))
    graph = Path(f"{prefix}.json")
    if not graph.is_file():  # older paddle writes .pdmodel; the runners read the PIR json form
        raise RuntimeError(f"paddle.jit.save did not write {graph}")
    return graph


def paddle_inference_runner(model_file: str | os.PathLike, params_file: str | os.PathLike,
                            input_names: Sequence[str], device: str = "cpu", cpu_threads: int | None = None,
                            use_onednn: bool = True, onednn_cache: int = ONEDNN_CACHE_SHAPES) -> Runner:
    """A Paddle Inference predictor as a function of a batch dict: oneDNN kernels and fused passes on
    CPU (minus CPU_PASSES_REMOVED), CUDA on this process's GPU card. Inputs are fed by name."""
    from paddle import inference

    config = inference.Config(str(model_file), str(params_file))
    if device == "gpu":
        set_device("gpu")  # the one-line error when this paddle build has no CUDA
        config.enable_use_gpu(256, gpu_card())
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(cpu_threads or default_cpu_threads())
        if use_onednn:
            config.enable_onednn()
            config.set_onednn_cache_capacity(onednn_cache)
            for name in CPU_PASSES_REMOVED:
                config.delete_pass(name)
        else:
            config.disable_onednn()  # it is on by default in Paddle 3 CPU builds
    config.disable_glog_info()
    predictor = inference.create_predictor(config)
    have = predictor.get_input_names()
    if sorted(have) != sorted(input_names):
        raise errors.UserError(f"{model_file} takes inputs {have}, expected {list(input_names)}")
    handles = [predictor.get_input_handle(name) for name in input_names]
    output = predictor.get_output_handle(predictor.get_output_names()[0])

    def run(batch: Batch) -> np.ndarray:
        for handle, array in zip(handles, _int64_inputs(batch, input_names)):
            handle.reshape(list(array.shape))
            handle.copy_from_cpu(array)
        predictor.run()
        return output.copy_to_cpu()

    return run


def _logits_only(model):
    """A Layer whose forward takes the three inputs positionally and returns only the logits tensor,
    so the static graph has exactly the inputs and output that a deployment sees."""
    import paddle

    class LogitsOnly(paddle.nn.Layer):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, token_type_ids, attention_mask):
            return self.inner(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask).logits

    return LogitsOnly(model)


def save_static_model(model, output_dir: str | Path) -> None:
    """paddle.jit.save with dynamic batch and sequence length: writes model.json + model.pdiparams."""
    from paddle.static import InputSpec

    spec = [InputSpec([None, None], "int64", name) for name in INPUT_NAMES]
    static_graph(_logits_only(model), spec, Path(output_dir) / Path(MODEL_FILE).stem)


def convert_to_onnx(output_dir: str | Path, opset_version: int = ONNX_OPSET) -> Path:
    """model.json + model.pdiparams -> model.onnx through paddle2onnx (an optional dependency)."""
    try:
        import paddle2onnx
    except ImportError:
        raise errors.UserError("--onnx needs paddle2onnx, an optional dependency: pip install paddle2onnx") from None
    output_dir = Path(output_dir)
    target = output_dir / ONNX_FILE
    # optimize_tool="none": paddle2onnx's default Polygraphy pass pip-installs packages at run time, and its
    # onnxoptimizer pass list has a typo in 2.1.0; ONNX Runtime folds constants itself when it loads the model.
    with stdout_to_stderr():  # its progress lines would otherwise mix with a script's results on stdout
        paddle2onnx.export(str(output_dir / MODEL_FILE), str(output_dir / PARAMS_FILE), str(target),
                           opset_version=opset_version, optimize_tool="none")
    if not target.is_file():  # paddle2onnx logs a failure instead of raising it
        raise errors.UserError(f"paddle2onnx could not convert {output_dir / MODEL_FILE} (see its log above)")
    return target


def import_onnx_quantization():
    """onnxruntime.quantization, or the one-line error naming what to install (it also needs onnx and
    ml_dtypes, which a bare onnxruntime install lacks)."""
    import importlib

    try:  # by full name, so that the ml_dtypes this needs is found missing here, not mid-export
        quantization = importlib.import_module("onnxruntime.quantization")
    except ImportError as e:
        raise errors.UserError(f"--quantize int8 needs ONNX Runtime's quantization tools ({e.name} is missing): "
                               "pip install onnxruntime onnx ml_dtypes") from None
    return quantization


@contextlib.contextmanager
def quiet_quantization():
    """The quantizer logs a line per MatMul it leaves in float and ONNX Runtime warns about every unused
    constant of paddle2onnx's graph: neither is for the user."""
    import logging

    import onnxruntime

    onnxruntime.set_default_logger_severity(3)
    logging.disable(logging.INFO)
    try:
        with stdout_to_stderr():
            yield
    finally:
        logging.disable(logging.NOTSET)
        onnxruntime.set_default_logger_severity(2)  # ONNX Runtime's default: warnings


def quantize_onnx(output_dir: str | Path) -> Path:
    """model.onnx -> model_int8.onnx by ONNX Runtime's dynamic quantization: the weights of every
    MatMul/Gemm with constant weights become int8 (per output channel), activations are quantized to
    uint8 per batch at run time, so no calibration data is needed; attention's activation-by-activation
    products, softmax, GELU and LayerNorm stay float.

    reduce_range (7-bit weights) because on CPUs without VNNI (AVX2, plain AVX-512) ONNX Runtime's
    u8 x s8 kernel sums pairs of products in int16, which 8-bit weights can overflow."""
    quantization = import_onnx_quantization()
    from onnxruntime.quantization.shape_inference import quant_pre_process

    output_dir = Path(output_dir)
    source, target = output_dir / ONNX_FILE, output_dir / INT8_ONNX_FILE
    if not source.is_file():
        raise errors.UserError(f"{source} not found: quantization starts from the float ONNX export")
    with tempfile.TemporaryDirectory(prefix="quantize-") as tmp, quiet_quantization():
        # paddle2onnx stores weights as Constant nodes, which the quantizer does not treat as weights;
        # ONNX Runtime's pre-processing folds them into initializers.
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantization.quantize_dynamic(str(prepared), str(target), weight_type=quantization.QuantType.QInt8,
                                      per_channel=True, reduce_range=True)
    return target


def is_exported_dir(path: str | os.PathLike) -> bool:
    """True for a folder that export_model.py wrote (a static graph), False for a training checkpoint."""
    return (Path(path) / MODEL_FILE).is_file() and (Path(path) / PARAMS_FILE).is_file()


def exported_runner(model_dir: str | os.PathLike, device: str = "cpu", cpu_threads: int | None = None,
                    use_onednn: bool = True) -> Runner:
    """An exported classifier run by Paddle Inference."""
    model_dir = Path(model_dir)
    if not is_exported_dir(model_dir):
        raise errors.UserError(f"{model_dir} holds no exported model ({MODEL_FILE} + {PARAMS_FILE}); "
                               "run export_model.py first")
    try:
        return paddle_inference_runner(model_dir / MODEL_FILE, model_dir / PARAMS_FILE, INPUT_NAMES, device,
                                       cpu_threads, use_onednn)
    except (RuntimeError, ValueError, OSError) as e:  # Paddle's C++ errors for a damaged graph or params
        raise errors.DataError(model_dir / PARAMS_FILE, None, f"cannot load the exported model "
                               f"({errors.first_line(e)}); export it again with export_model.py") from None



# ----------------------------------------------------------------------------------------------
# ONNX Runtime


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise errors.UserError("ONNX Runtime is not installed (it is optional): pip install onnxruntime "
                               "(or onnxruntime-gpu)") from None
    return onnxruntime


def onnx_runner(model_dir: str | os.PathLike, device: str = "cpu", cpu_threads: int | None = None,
                file_name: str = ONNX_FILE) -> Runner:
    """An exported model.onnx (or file_name, e.g. INT8_ONNX_FILE) run by ONNX Runtime."""
    ort = import_onnxruntime()
    path = Path(model_dir) / file_name
    if not path.is_file():
        flag = "--quantize int8" if file_name == INT8_ONNX_FILE else "--onnx"
        raise errors.UserError(f"{path} not found: export with `export_model.py {flag}`")
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads or default_cpu_threads()
    options.inter_op_num_threads = 1  # a BERT graph is one chain of ops: nothing to run side by side
    options.log_severity_level = 3
    providers: list[Any] = ["CPUExecutionProvider"]
    if device == "gpu":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise errors.UserError("--device gpu with ONNX Runtime needs the onnxruntime-gpu package")
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": gpu_card()}))
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # ONNX Runtime's own error types for a damaged file
        raise errors.DataError(path, None, f"cannot load the ONNX model ({errors.first_line(e)}); "
                               "export it again with export_model.py --onnx") from None
    names = [i.name for i in session.get_inputs()]

    def run(batch: Batch) -> np.ndarray:
        arrays = dict(zip(INPUT_NAMES, _int64_inputs(batch)))
        return session.run(None, {name: arrays[name] for name in names})[0]

    return run


# ----------------------------------------------------------------------------------------------
# Eager Paddle


class EagerModel:
    """A paddle.nn.Layer classifier, called like the exported runners (eval mode, no gradients).

    The layer's training mode is restored after each call, so a model being trained can be evaluated."""

    def __init__(self, model: Any):
        self.model = model

    def __call__(self, batch: Batch) -> np.ndarray:
        import paddle

        was_training = self.model.training
        self.model.eval()
        try:
            with paddle.no_grad():  # by name: a model may take fewer inputs (no token types)
                inputs = {name: paddle.to_tensor(np.asarray(batch[name], dtype=np.int64))
                          for name in INPUT_NAMES if name in batch}
                out = self.model(**inputs)
                logits = out.logits if hasattr(out, "logits") else out
                return logits.astype("float32").numpy()
        finally:
            if was_training:
                self.model.train()


# ----------------------------------------------------------------------------------------------
# A model ready to predict: runner, tokenizer, labels


@dataclass
class Predictor:
    """A model ready to run: `run(batch) -> logits` plus what reading its outputs needs."""
    run: Runner
    tokenizer: Any
    num_labels: int                # 1: regression (the output is a score)
    labels: list[str] | None       # output names, None when the model names none
    task_name: str | None          # the task recorded at export or training, if any
    max_seq_length: int
    max_positions: int
    runtime: str                   # paddle_inference, onnxruntime, onnxruntime int8 or eager

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1


RUNTIMES = ("paddle_inference", "onnxruntime")


def read_inference_config(model_dir: Path) -> dict[str, Any]:
    """inference_config.json, every field predict.py reads checked for its type and range."""
    path = Path(model_dir) / INFERENCE_CONFIG
    if not path.is_file():
        raise errors.UserError(f"{path} is missing: re-export the model with export_model.py")
    info = checkpoints.read_json(path, "inference config")
    if not isinstance(info, dict) or not isinstance(info.get("num_labels"), int):
        raise errors.DataError(path, None, "not an inference config (no num_labels); re-export the model")
    problem = _config_problem(info)
    if problem:
        raise errors.DataError(path, None, f"{problem}; re-export the model with export_model.py")
    return info


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _config_problem(info: dict[str, Any]) -> str | None:
    """What is wrong with an inference config's fields, or None."""
    if not _is_count(info["num_labels"]):
        return f"num_labels is {info['num_labels']!r}, not a positive number"
    for key in ("max_seq_length", "max_position_embeddings", "vocab_size"):
        if info.get(key) is not None and not _is_count(info[key]):
            return f"{key} is {info[key]!r}, not a positive number"
    labels = info.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            return f"labels is {labels!r}, not a list of names"
        if len(labels) != info["num_labels"] or len(set(labels)) != len(labels):
            return f"labels names {len(labels)} distinct outputs ({', '.join(labels)}) but num_labels is {info['num_labels']}"
    if (info.get("max_seq_length") or 0) > (info.get("max_position_embeddings") or 512):
        return f"max_seq_length {info['max_seq_length']} is more than max_position_embeddings"
    return None


def _hint(e: Exception) -> str:
    """Paddle's own reason ('[Hint: Expected ids[i] < row_number, ...]') rather than its first line."""
    hints = [line.strip() for line in str(e).splitlines() if "Hint:" in line]
    return hints[0][:160] if hints else errors.first_line(e, 160)


def check_export_agrees(run: Runner, info: dict[str, Any], tokenizer: Any, model_dir: Path) -> None:
    """One row through the exported model, as long as its recorded positions and holding the last token of
    the vocabulary: the output must have num_labels columns. A config that disagrees with the model
    (edited, or copied from another export) is one line here, not a traceback or wrong labels later."""
    path = Path(model_dir) / INFERENCE_CONFIG
    vocab_size = info.get("vocab_size")
    if vocab_size is not None:
        from tinybert.data.tokenization import VOCAB_FILE, check_vocab_fits

        check_vocab_fits(Path(model_dir) / VOCAB_FILE, tokenizer.vocab_size, vocab_size, "the exported model's")
    length = int(info.get("max_position_embeddings") or info.get("max_seq_length") or 128)
    ids = np.full((1, length), tokenizer.pad_token_id, dtype=np.int64)
    ids[0, :3] = [tokenizer.cls_token_id, tokenizer.vocab_size - 1, tokenizer.sep_token_id]
    batch = {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": np.ones_like(ids)}
    try:
        width = np.asarray(run(batch)).shape[-1]
    except Exception as e:  # Paddle's or ONNX Runtime's error for a position or token id past the tables
        raise errors.DataError(path, None, f"disagrees with the exported model: a row of {length} tokens "
                               f"(max_position_embeddings) holding token id {tokenizer.vocab_size - 1} (the last of "
                               f"vocab.txt) fails ({_hint(e)}); re-export the model") from None
    if width != info["num_labels"]:
        raise errors.DataError(path, None, f"num_labels is {info['num_labels']}, but the exported model has "
                                           f"{width} outputs; re-export the model")


def load_predictor(model_path: str | os.PathLike, device: str = "cpu", cpu_threads: int | None = None,
                   runtime: str | None = None) -> Predictor:
    """An exported folder (Paddle Inference or ONNX Runtime) or a checkpoint folder (eager Paddle).

    runtime None: the one the export recorded (ONNX Runtime for an INT8 export), else Paddle Inference.
    ONNX Runtime on an INT8 export runs model_int8.onnx; Paddle Inference runs the float graph beside it."""
    from tinybert.data.tokenization import BertTokenizer

    path = Path(model_path)
    if not path.is_dir():
        raise errors.UserError(f"--model_path {model_path}: no such folder")
    tokenizer = BertTokenizer.from_pretrained(path)
    if is_exported_dir(path):
        info = read_inference_config(path)
        runtime = runtime or info.get("runtime") or "paddle_inference"
        if runtime not in RUNTIMES:
            raise errors.DataError(path / INFERENCE_CONFIG, None, f"unknown runtime {runtime!r} "
                                   f"(expected one of {', '.join(RUNTIMES)}); re-export the model")
        int8 = runtime == "onnxruntime" and info.get("quantize") == "int8"
        if runtime == "onnxruntime":
            run = onnx_runner(path, device, cpu_threads, INT8_ONNX_FILE if int8 else ONNX_FILE)
        else:
            run = exported_runner(path, device, cpu_threads)
        check_export_agrees(run, info, tokenizer, path)
        return Predictor(run, tokenizer, int(info["num_labels"]), info.get("labels"), info.get("task_name"),
                         int(info.get("max_seq_length") or 128), int(info.get("max_position_embeddings") or 512),
                         f"{runtime} int8" if int8 else runtime)
    if runtime == "onnxruntime":
        raise errors.UserError(f"{path} is a training checkpoint; --runtime onnxruntime needs a folder "
                               "written by `export_model.py --onnx`")
    from tinybert.models import modeling

    set_device(device)
    if device == "cpu":
        set_eager_threads(cpu_threads)
    model = modeling.load_classifier(path)
    config = model.config
    return Predictor(EagerModel(model), tokenizer, config.num_labels, known_labels(config, None), None,
                     min(128, config.max_position_embeddings), config.max_position_embeddings, "eager")


def own_labels(given: list[str] | None, labels: list[str] | None, num_labels: int) -> list[str] | None:
    """Label names for the user's own data read for a model: --labels, else the model's (`labels`), else
    0..n-1; None for a model that predicts a score (one output)."""
    if num_labels == 1:
        if given:
            raise errors.UserError("the model predicts a score (one output); --labels is for classifiers")
        return None
    if given:
        if len(given) != num_labels:
            raise errors.UserError(f"--labels names {len(given)} labels but the model has {num_labels} outputs")
        if labels and given != labels:
            raise errors.UserError(f"--labels [{', '.join(given)}] differ from the model's [{', '.join(labels)}]")
        return given
    return labels or [str(i) for i in range(num_labels)]


def known_labels(config: Any, task_name: str | None) -> list[str] | None:
    """The label names of a classifier's outputs, in output order, or None when nothing names them
    (a regression model, or a checkpoint with only HF's LABEL_0.. placeholders and no task given).
    A task whose labels disagree with the checkpoint's is an error, not a silent relabelling."""
    from tinybert.data import tasks

    spec = tasks.get_task(task_name) if tasks.is_task(task_name) else None
    if spec is not None:
        if spec.num_labels != config.num_labels:
            raise errors.UserError(f"the checkpoint has {config.num_labels} outputs but {spec.name} has "
                                   f"{spec.num_labels} {'(a score)' if spec.is_regression else 'labels'}")
        tasks.check_label_order(spec, config.label2id)
    if config.num_labels == 1:
        return None
    id2label = config.id2label or {}
    if id2label and not all(str(id2label[i]) == f"LABEL_{i}" for i in range(config.num_labels)):
        return [str(id2label[i]) for i in range(config.num_labels)]
    return list(spec.labels) if spec is not None else None


@contextlib.contextmanager
def stdout_to_stderr():
    """Send everything written to file descriptor 1 (C++ code included) to stderr for a while."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
