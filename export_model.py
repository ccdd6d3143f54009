"""Export a trained (Tiny)BERT classifier as a static inference model.

    python export_model.py --model_path OUTPUT/best_model --output_path infer_model [--onnx]
    python export_model.py --model_path OUTPUT/best_model --output_path infer_int8 --quantize int8 \
        [--task_name SST-2 --data_dir GLUE/SST-2 | --dev_file dev.csv]     # INT8 for ONNX Runtime

A trained folder (what training or distillation saved: weights, config, tokenizer files) becomes:

    model.json, model.pdiparams   static graph for Paddle Inference, dynamic batch and sequence length;
                                  inputs input_ids, token_type_ids, attention_mask (int64 [B, S]), output logits
    model.onnx                    with --onnx, converted by paddle2onnx (optional: pip install paddle2onnx)
    model_int8.onnx               with --quantize int8 (which implies --onnx): ONNX Runtime's dynamic
                                  quantization (int8 weights); predict.py runs it with ONNX Runtime by default
    vocab.txt, tokenizer_config.json
    inference_config.json         number of outputs and label names, task name, max_seq_length, model type

After writing, the script runs one padded batch through the eager model and through each exported model
and fails if their logits differ by more than --atol. The INT8 model differs by design: its difference is
printed, and with dev data (--data_dir/--glue_dir or --dev_file) the dev metrics of the float model (Paddle
Inference) and of the INT8 one are printed and recorded in inference_config.json ("dev_metrics").
The runners that load the folder are inference.py's.
"""
from __future__ import annotations

from tinybert import cli

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from tinybert.models import checkpoints
from tinybert import errors, settings
from tinybert.training import evaluation
from tinybert.data import features
from tinybert import inference
from tinybert.models import modeling
from tinybert.data import tasks
from tinybert.inference import INFERENCE_CONFIG, INPUT_NAMES
from tinybert.data.tokenization import BertTokenizer

ONNX_OPSET = inference.ONNX_OPSET
QUANTIZE_CHOICES = ("int8",)


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


def max_logit_difference(reference, runner, batch: inference.Batch) -> float:
    """Largest absolute difference between two runners' logits on one batch."""
    return float(np.abs(reference(batch) - runner(batch)).max())


def has_dev_data(data: tasks.DataConfig | None) -> bool:
    """Dev data is evaluated only where the user pointed at files (not PaddleNLP's cache)."""
    return data is not None and bool(data.dev_file or data.data_dir or data.glue_dir)


def check_quantize(quantize: str | None, opset_version: int) -> None:
    """--quantize's combinations that cannot work, refused before anything is exported."""
    if quantize is None:
        return
    if quantize not in QUANTIZE_CHOICES:
        raise errors.UserError(f"--quantize {quantize}: choose from {', '.join(QUANTIZE_CHOICES)}")
    if opset_version < inference.QUANTIZE_MIN_OPSET:
        raise errors.UserError(f"--quantize int8 needs --opset_version {inference.QUANTIZE_MIN_OPSET} or later "
                               f"(the quantized graph's ops), not {opset_version}")
    inference.import_onnxruntime()
    inference.import_onnx_quantization()


def load_dev_sets(data: tasks.DataConfig, task_name: str | None, labels: list[str] | None, num_labels: int,
                  tokenizer, max_seq_length: int) -> tuple[tasks.TaskSpec, dict]:
    """(spec, {dev split: encoded rows}): a task's dev files, or the user's --dev_file read with the
    model's labels (or a score) unless --labels names them."""
    data = dataclasses.replace(data, task_name=data.task_name or task_name)
    if not tasks.is_task(data.task_name):  # the model says what the labels are (or that it predicts a score)
        data = dataclasses.replace(data, labels=inference.own_labels(data.labels, labels, num_labels),
                                   regression=num_labels == 1 or data.regression)
    spec, splits = tasks.load_task_data(data, splits=("dev",))
    if spec.num_labels != num_labels:
        raise errors.UserError(f"the model has {num_labels} outputs but {spec.name} has {spec.num_labels}")
    encoded = {}
    for split, examples in splits.items():
        encoded[split] = features.encode_examples(tokenizer, examples, max_seq_length, spec)
        if encoded[split].labels is None:
            raise errors.UserError(f"{data.dev_file or split}: no labels in the dev rows, so there is no "
                                   "metric to compare; give a labelled dev file")
    return spec, encoded


def export_model(model_path: str | Path, output_path: str | Path, *, onnx: bool = False,
                 task_name: str | None = None, max_seq_length: int | None = None, model_type: str | None = None,
                 overwrite: bool = False, atol: float = 1e-5, opset_version: int = ONNX_OPSET,
                 quantize: str | None = None, data: tasks.DataConfig | None = None, batch_size: int = 32) -> dict:
    """Export, write the tokenizer and inference_config.json beside, check parity. Returns the config
    written, with 'max_abs_diff' (per runtime) added.

    quantize "int8": also model.onnx and model_int8.onnx, the latter the runtime recorded for predict.py.
    data: where dev rows are (--data_dir/--glue_dir or --dev_file); their metrics for the float export
    and, with quantize, the INT8 one are recorded as 'dev_metrics'."""
    import paddle

    check_quantize(quantize, opset_version)
    onnx = onnx or quantize is not None
    if batch_size < 1:
        raise errors.UserError("--batch_size must be at least 1")
    output_path = Path(output_path)
    folder = checkpoints.resolve_model_dir(model_path)
    checkpoints.check_not_an_input(output_path, "--output_path", {"--model_path": folder})
    with checkpoints.writing(output_path, "--output_path"):  # one export into a folder at a time
        checkpoints.recover_dir(output_path)  # an earlier export a kill interrupted, before judging the folder
        checkpoints.check_output_folder(output_path, "--output_path", overwrite, "--overwrite_output_dir")
        positions = modeling.read_config(folder).max_position_embeddings  # checked before the model loads
        trained = checkpoints.training_args(folder)  # the task and length the model was trained with
        task_name = task_name or trained.get("task_name")
        max_seq_length = max_seq_length or trained.get("max_seq_length") or min(128, positions)
        cli.check_max_seq_length(max_seq_length, positions)
        paddle.set_device("cpu")  # export and the check both run on CPU; the graph itself is device-free
        model_type = model_type or checkpoints.model_type(folder)
        model = modeling.load_classifier(folder, model_type)
        tokenizer = BertTokenizer.from_pretrained(folder)
        labels = inference.known_labels(model.config, task_name)
        dev = None
        if has_dev_data(data):  # read before exporting: a data mistake costs no export
            dev = load_dev_sets(data, task_name, labels, model.config.num_labels, tokenizer, max_seq_length)
        elif quantize:
            print("note: no dev data given (--data_dir, --glue_dir or --dev_file): the INT8 model's metric is "
                  "not compared with the float one's")
        info = {
            "model_type": model_type,
            "task_name": task_name,
            "num_labels": model.config.num_labels,  # 1: regression, the output is a score
            "labels": labels,
            "max_seq_length": max_seq_length,
            "max_position_embeddings": model.config.max_position_embeddings,
            "vocab_size": model.config.vocab_size,  # predict.py checks the folder's vocab.txt against it
            "inputs": list(INPUT_NAMES),
            "output": "logits",
            "onnx": onnx,
            "quantize": quantize,
            "runtime": "onnxruntime" if quantize else "paddle_inference",  # what predict.py runs by default
            "paddle_version": paddle.__version__,
        }
        if quantize:
            info["quantized_model"] = inference.INT8_ONNX_FILE
            info["quantization"] = ("onnxruntime dynamic: int8 weights per output channel (7-bit range), "
                                    "uint8 activations scaled per batch")
        diffs: dict[str, float] = {}

        def write(staging: Path) -> None:  # a failed export or parity check leaves nothing half-written
            inference.save_static_model(model, staging)
            if onnx:
                inference.convert_to_onnx(staging, opset_version)
            if quantize:
                inference.quantize_onnx(staging)
            tokenizer.save_pretrained(staging)
            diffs.update(parity(model, staging, onnx, atol))
            if quantize:
                diffs["onnxruntime_int8"] = int8_difference(model, staging)
            if dev is not None:
                info["dev_metrics"] = dev_metrics(staging, *dev, batch_size, tokenizer.pad_token_id, quantize)
            checkpoints.write_json(staging / INFERENCE_CONFIG, info)
            checkpoints.mark_output(staging, "export_model.py")

        checkpoints.atomic_dir(output_path, write)
        return {**info, "max_abs_diff": diffs}


def parity(model, folder: Path, onnx: bool, atol: float) -> dict[str, float]:
    """Largest logit difference of each exported runtime from the eager model; an error above the bound."""
    batch = parity_batch(model.config.vocab_size)
    eager = inference.EagerModel(model)
    diffs = {"paddle_inference": max_logit_difference(eager, inference.exported_runner(folder), batch)}
    if onnx:
        try:
            diffs["onnxruntime"] = max_logit_difference(eager, inference.onnx_runner(folder), batch)
        except errors.UserError as e:  # converted fine, but nothing here to run it
            print(f"ONNX parity not checked: {e}")
    # float32 sums in another order differ in the last bits, so the bound scales with the logits' size.
    bound = atol * max(1.0, float(np.abs(eager(batch)).max()))
    for runtime, diff in diffs.items():
        print(f"parity {runtime}: max |logit difference| = {diff:.2e}")
        if not diff <= bound:
            raise errors.UserError(f"{runtime} logits differ from the eager model's by {diff:.2e} "
                                   f"(> {bound:.2e}, from --atol {atol:g}); the export is not trustworthy")
    return diffs


def int8_difference(model, folder: Path) -> float:
    """Largest logit difference of the INT8 model from the eager one: printed, not bounded (quantization
    changes logits by design; the dev metrics tell whether that matters)."""
    batch = parity_batch(model.config.vocab_size)
    diff = max_logit_difference(inference.EagerModel(model), int8_runner(folder), batch)
    print(f"int8 onnxruntime: max |logit difference| = {diff:.2e} (quantization error, not checked against --atol)")
    return diff


def int8_runner(folder: Path) -> inference.Runner:
    return inference.onnx_runner(folder, file_name=inference.INT8_ONNX_FILE)


def dev_metrics(folder: Path, spec: tasks.TaskSpec, dev_sets: dict, batch_size: int, pad_token_id: int,
                quantize: str | None) -> dict[str, dict[str, float]]:
    """The task's dev metrics of the float export (Paddle Inference) and of the INT8 one, printed."""
    evaluate = evaluation.task_evaluator(spec, dev_sets, batch_size, pad_token_id)
    runners = {"float": ("paddle_inference", inference.exported_runner(folder))}
    if quantize:
        runners[quantize] = ("onnxruntime", int8_runner(folder))
    results = {}
    rows = sum(len(rows) for rows in dev_sets.values())
    for name, (runtime, run) in runners.items():
        results[name] = evaluate(run)
        shown = ", ".join(f"{key} {value:.4f}" for key, value in results[name].items())
        print(f"dev {name} ({runtime}, {rows} rows): {shown}")
    return results


@dataclasses.dataclass(frozen=True)
class RecordedLength(features.EncodeConfig):
    """export_model.py's --max_seq_length: recorded for predict.py; the training run's unless given."""
    max_seq_length: int | None = settings.like(
        features.EncodeConfig, "max_seq_length", default=None,
        help="Truncation length that predict.py will use by default (default: the one the model was trained "
             "with, else 128 or fewer when the model has fewer positions).")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--model_path", required=True,
                        help="Trained classification folder (weights, config, vocab.txt).")
    parser.add_argument("--output_path", required=True, help="Folder to write the exported model to.")
    parser.add_argument("--onnx", action="store_true",
                        help="Also write model.onnx (needs paddle2onnx; running it needs onnxruntime).")
    parser.add_argument("--opset_version", type=int, default=ONNX_OPSET, help="ONNX opset for --onnx.")
    parser.add_argument("--quantize", choices=QUANTIZE_CHOICES, default=None,
                        help="Also write model_int8.onnx (ONNX Runtime dynamic quantization; implies --onnx) and "
                             "record ONNX Runtime as the folder's runtime for predict.py. Needs onnxruntime, "
                             "onnx and ml_dtypes.")
    parser.add_argument("--batch_size", type=int, default=32, help="Batch size of the dev evaluation.")
    # --task_name: the task the model was trained on (default: the one its training run recorded), checked
    # against the checkpoint's labels and recorded for predict.py; with --data_dir/--glue_dir/--dev_file,
    # the dev rows to report the float and INT8 metrics on.
    settings.add_flags(parser, tasks.DataConfig, skip=("train_file", "test_file", "regression"))
    settings.add_flags(parser, RecordedLength)
    parser.add_argument("--model_type", choices=["bert", "tinybert", "ernie"], default=None,
                        help="Model class; read from the saved config when omitted.")
    parser.add_argument("--atol", type=float, default=1e-5,
                        help="Largest accepted logit difference between the eager and exported models "
                             "(times the largest |logit| when that is above 1).")
    parser.add_argument("--overwrite_output_dir", "--overwrite", dest="overwrite", action="store_true",
                        help="Replace a non-empty --output_path this project wrote.")
    return parser.parse_args(argv)


@cli.run_main
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    info = export_model(args.model_path, args.output_path, onnx=args.onnx, task_name=args.task_name,
                        max_seq_length=args.max_seq_length, model_type=args.model_type,
                        overwrite=args.overwrite, atol=args.atol, opset_version=args.opset_version,
                        quantize=args.quantize, data=settings.from_args(tasks.DataConfig, args),
                        batch_size=args.batch_size)
    files = sorted(p.name for p in Path(args.output_path).iterdir())
    print(f"exported {info['model_type']} model to {args.output_path}: {', '.join(files)}")


if __name__ == "__main__":
    main()
