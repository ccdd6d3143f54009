"""Export a trained (Tiny)BERT classifier as a static inference model, and the runners that load one.

    python export_model.py --model_path OUTPUT/best_model --output_path infer_model [--onnx]

A trained folder (what training or distillation saved: weights, config, tokenizer files) becomes:

    model.json, model.pdiparams   static graph for Paddle Inference, dynamic batch and sequence length;
                                  inputs input_ids, token_type_ids, attention_mask (int64 [B, S]), output logits
    model.onnx                    with --onnx, converted by paddle2onnx (optional: pip install paddle2onnx)
    vocab.txt, tokenizer_config.json
    inference_config.json         number of outputs and label names, task name, max_seq_length, model type

After writing, the script runs one padded batch through the eager model and through each exported model
and fails if their logits differ by more than --atol.

The same module holds the three runners that predict.py and benchmarks/inference_speed.py share; each is
called with a batch dict of int64 arrays and returns logits as a numpy array:
`PaddleInferenceModel` (oneDNN on CPU), `OnnxModel` (ONNX Runtime) and `EagerModel` (a paddle.nn.Layer).
"""
from __future__ import annotations

import cli  # noqa: F401  (sets MKL_DEBUG_CPU_TYPE before paddle loads)


import errors
import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")
MODEL_FILE, PARAMS_FILE, ONNX_FILE = "model.json", "model.pdiparams", "model.onnx"
INFERENCE_CONFIG = "inference_config.json"
ONNX_OPSET = 17
# oneDNN caches one compiled kernel set per input shape; prediction sees many sequence lengths, so the cache
# is bounded (Paddle's default keeps every shape and grows without limit).
ONEDNN_CACHE_SHAPES = 16

Batch = Mapping[str, np.ndarray]


# --------------------------------------------------------------------------------------------- runners

def default_cpu_threads() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_eager_threads(threads: int | None) -> None:
    """Math-library threads for eager Paddle on CPU (Paddle starts with one unless OMP_NUM_THREADS is set)."""
    import paddle

    paddle.base.core.set_num_threads(threads or default_cpu_threads())


def _int64_inputs(batch: Batch) -> list[np.ndarray]:
    missing = [name for name in INPUT_NAMES if name not in batch]
    if missing:
        raise ValueError(f"batch lacks {missing}")
    return [np.ascontiguousarray(batch[name], dtype=np.int64) for name in INPUT_NAMES]


def is_exported_dir(path: str | Path) -> bool:
    """True for a folder that export_model.py wrote (a static graph), False for a training checkpoint."""
    return (Path(path) / MODEL_FILE).is_file() and (Path(path) / PARAMS_FILE).is_file()


class PaddleInferenceModel:
    """An exported model run by Paddle Inference: oneDNN kernels and fused passes on CPU, CUDA on GPU."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", cpu_threads: int | None = None,
                 use_onednn: bool = True):
        from paddle import inference

        model_dir = Path(model_dir)
        if not is_exported_dir(model_dir):
            raise errors.UserError(f"{model_dir} holds no exported model ({MODEL_FILE} + {PARAMS_FILE}); "
                                "run export_model.py first")
        config = inference.Config(str(model_dir / MODEL_FILE), str(model_dir / PARAMS_FILE))
        if device == "gpu":
            cli.set_device("gpu")  # the one-line error when this paddle build has no CUDA
            config.enable_use_gpu(256, cli.gpu_card())
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(cpu_threads or default_cpu_threads())
            if not use_onednn:
                config.disable_onednn()  # it is on by default in Paddle 3 CPU builds
            else:
                config.enable_onednn()
                config.set_onednn_cache_capacity(ONEDNN_CACHE_SHAPES)
                # The fused oneDNN FC+GELU computes the tanh approximation, not BERT's erf GELU (logits
                # then differ from eager by ~1e-4); with GELU left a separate op they agree to ~1e-8.
                config.delete_pass("fc_activation_fuse_pass")
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        names = self.predictor.get_input_names()
        if sorted(names) != sorted(INPUT_NAMES):
            raise errors.UserError(f"{model_dir / MODEL_FILE} takes inputs {names}, expected {list(INPUT_NAMES)}")
        self.inputs = [self.predictor.get_input_handle(name) for name in INPUT_NAMES]
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def __call__(self, batch: Batch) -> np.ndarray:
        for handle, array in zip(self.inputs, _int64_inputs(batch)):
            handle.reshape(list(array.shape))
            handle.copy_from_cpu(array)
        self.predictor.run()
        return self.output.copy_to_cpu()


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise errors.UserError("ONNX Runtime is not installed (it is optional): pip install onnxruntime "
                            "(or onnxruntime-gpu)") from None
    return onnxruntime


class OnnxModel:
    """An exported model.onnx run by ONNX Runtime."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", cpu_threads: int | None = None):
        ort = import_onnxruntime()
        path = Path(model_dir) / ONNX_FILE
        if not path.is_file():
            raise errors.UserError(f"{path} not found: export with `export_model.py --onnx`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads or default_cpu_threads()
        options.inter_op_num_threads = 1  # a BERT graph is one chain of ops: nothing to run side by side
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if device == "gpu":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise errors.UserError("--device gpu with ONNX Runtime needs the onnxruntime-gpu package")
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": cli.gpu_card()}))
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: Batch) -> np.ndarray:
        arrays = dict(zip(INPUT_NAMES, _int64_inputs(batch)))
        return self.session.run(None, {name: arrays[name] for name in self.input_names})[0]


class EagerModel:
    """A paddle.nn.Layer classifier in eval mode, called like the exported runners."""

    def __init__(self, model):
        self.model = model
        self.model.eval()

    def __call__(self, batch: Batch) -> np.ndarray:
        import paddle

        with paddle.no_grad():
            inputs = [paddle.to_tensor(array) for array in _int64_inputs(batch)]
            return self.model(*inputs).logits.numpy()


# ---------------------------------------------------------------------------------------------- export

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
    import paddle
    from paddle.static import InputSpec

    wrapper = _logits_only(model)
    wrapper.eval()  # dropout off in the traced graph (a new Layer starts in training mode)
    spec = [InputSpec([None, None], "int64", name) for name in INPUT_NAMES]
    static = paddle.jit.to_static(wrapper, input_spec=spec, full_graph=True)
    with warnings.catch_warnings():  # tracing asks tensors for .place, which PIR graphs lack; harmless
        warnings.filterwarnings("ignore", message=".*do not have 'place' interface")
        paddle.jit.save(static, str(Path(output_dir) / Path(MODEL_FILE).stem), input_spec=spec)
    if not is_exported_dir(output_dir):  # older paddle writes .pdmodel; the runners read the PIR json form
        raise RuntimeError(f"paddle.jit.save wrote {sorted(os.listdir(output_dir))}, expected {MODEL_FILE}")


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


def parity_batch(vocab_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Three rows of random ids, two of them padded, so that masking is part of the check."""
    rng = np.random.default_rng(seed)
    lengths = [11, 7, 3]
    input_ids = rng.integers(5, vocab_size, size=(len(lengths), max(lengths)), dtype=np.int64)
    attention_mask = (np.arange(max(lengths))[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    token_type_ids = np.zeros_like(input_ids)
    token_type_ids[:, 5:] = 1
    return {"input_ids": input_ids * attention_mask, "token_type_ids": token_type_ids * attention_mask,
            "attention_mask": attention_mask}


def max_logit_difference(reference, runner, batch: Batch) -> float:
    """Largest absolute difference between two runners' logits on one batch."""
    return float(np.abs(reference(batch) - runner(batch)).max())


def known_labels(config, task_name: str | None) -> list[str] | None:
    """The label names of a classifier's outputs, in output order, or None when nothing names them
    (a regression model, or a checkpoint with only HF's LABEL_0.. placeholders and no task given).
    A task whose labels disagree with the checkpoint's is an error, not a silent relabelling."""
    import tasks

    spec = tasks.get_task(task_name) if tasks.is_glue_task(task_name) else None
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


def detect_model_type(model_path: Path) -> str:
    """'bert' or 'tinybert', from the class name or model_type that the saved config records."""
    for name in ("config.json", "model_config.json"):
        path = model_path / name
        if not path.is_file():
            continue
        saved = json.loads(path.read_text(encoding="utf-8"))
        names = [saved.get("model_type", ""), saved.get("init_class", ""), *saved.get("architectures", [])]
        text = " ".join(str(n) for n in names).lower()
        if "tinybert" in text:
            return "tinybert"
        if "bert" in text:
            return "bert"
    return "bert"  # a plain BERT config (e.g. an HF folder) names no TinyBERT class


def load_trained_model(model_path: str | Path, model_type: str | None = None):
    """A trained classification folder -> (model in eval mode, tokenizer, model_type)."""
    import modeling
    from tokenization import BertTokenizer

    path = modeling.resolve_model_dir(str(model_path))
    model_type = model_type or detect_model_type(path)
    model = modeling.model_class(model_type, "classification").from_pretrained(str(path))
    model.eval()
    return model, BertTokenizer.from_pretrained(str(path)), model_type


def export_model(model_path: str | Path, output_path: str | Path, *, onnx: bool = False,
                 task_name: str | None = None, max_seq_length: int | None = None, model_type: str | None = None,
                 overwrite: bool = False, atol: float = 1e-5, opset_version: int = ONNX_OPSET) -> dict:
    """Export, write the tokenizer and inference_config.json beside, check parity. Returns the config
    written, with 'max_abs_diff' (per runtime) added."""
    import paddle

    output_path = Path(output_path)
    if output_path.exists() and not output_path.is_dir():
        raise errors.UserError(f"{output_path} is a file; --output_path names the folder to export to")
    if output_path.exists() and any(output_path.iterdir()) and not overwrite:
        raise errors.UserError(f"{output_path} exists and is not empty; pass --overwrite to replace it")
    paddle.set_device("cpu")  # export and the check both run on CPU; the graph itself is device-free
    model, tokenizer, model_type = load_trained_model(model_path, model_type)
    max_seq_length = max_seq_length or min(128, model.config.max_position_embeddings)
    if max_seq_length > model.config.max_position_embeddings:
        raise errors.UserError(f"--max_seq_length {max_seq_length} is more than the model's "
                            f"{model.config.max_position_embeddings} position embeddings")

    # Build in a sibling folder and move it into place at the end: a failed export leaves nothing half-written.
    output_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_path.name}.", dir=output_path.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the export is an ordinary folder
    try:
        save_static_model(model, staging)
        if onnx:
            convert_to_onnx(staging, opset_version)
        tokenizer.save_pretrained(str(staging))
        info = {
            "model_type": model_type,
            "task_name": task_name,
            "num_labels": model.config.num_labels,  # 1: regression, the output is a score
            "labels": known_labels(model.config, task_name),
            "max_seq_length": max_seq_length,
            "max_position_embeddings": model.config.max_position_embeddings,
            "inputs": list(INPUT_NAMES),
            "output": "logits",
            "onnx": onnx,
            "paddle_version": paddle.__version__,
        }
        (staging / INFERENCE_CONFIG).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

        batch = parity_batch(model.config.vocab_size)
        eager = EagerModel(model)
        diffs = {"paddle_inference": max_logit_difference(eager, PaddleInferenceModel(staging), batch)}
        if onnx:
            try:
                diffs["onnxruntime"] = max_logit_difference(eager, OnnxModel(staging), batch)
            except errors.UserError as e:  # converted fine, but nothing here to run it
                print(f"ONNX parity not checked: {e}")
        # float32 sums in another order differ in the last bits, so the bound scales with the logits' size.
        bound = atol * max(1.0, float(np.abs(eager(batch)).max()))
        for runtime, diff in diffs.items():
            print(f"parity {runtime}: max |logit difference| = {diff:.2e}")
            if not diff <= bound:
                raise errors.UserError(f"{runtime} logits differ from the eager model's by {diff:.2e} "
                                    f"(> {bound:.2e}, from --atol {atol:g}); the export is not trustworthy")
        if output_path.exists():
            shutil.rmtree(output_path)
        staging.rename(output_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {**info, "max_abs_diff": diffs}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_path", required=True,
                        help="Trained classification folder (weights, config, vocab.txt).")
    parser.add_argument("--output_path", required=True, help="Folder to write the exported model to.")
    parser.add_argument("--onnx", action="store_true",
                        help="Also write model.onnx (needs paddle2onnx; running it needs onnxruntime).")
    parser.add_argument("--opset_version", type=int, default=ONNX_OPSET, help="ONNX opset for --onnx.")
    parser.add_argument("--task_name", default=None,
                        help="GLUE task the model was trained on: checked against the checkpoint's labels and "
                             "recorded for predict.py (its labels name the outputs when the checkpoint does not).")
    parser.add_argument("--max_seq_length", type=int, default=None,
                        help="Truncation length that predict.py will use by default "
                             "(default: 128, or fewer when the model has fewer positions).")
    parser.add_argument("--model_type", choices=["bert", "tinybert"], default=None,
                        help="Model class; read from the saved config when omitted.")
    parser.add_argument("--atol", type=float, default=1e-5,
                        help="Largest accepted logit difference between the eager and exported models "
                             "(times the largest |logit| when that is above 1).")
    parser.add_argument("--overwrite", action="store_true", help="Replace a non-empty --output_path.")
    return parser.parse_args(argv)


@cli.run_main
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    info = export_model(args.model_path, args.output_path, onnx=args.onnx, task_name=args.task_name,
                        max_seq_length=args.max_seq_length, model_type=args.model_type,
                        overwrite=args.overwrite, atol=args.atol, opset_version=args.opset_version)
    files = sorted(p.name for p in Path(args.output_path).iterdir())
    print(f"exported {info['model_type']} model to {args.output_path}: {', '.join(files)}")


if __name__ == "__main__":
    main()
