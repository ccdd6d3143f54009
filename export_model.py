"""Export a trained (Tiny)BERT classifier as a static inference model.

    python export_model.py --model_path OUTPUT/best_model --output_path infer_model [--onnx]

A trained folder (what training or distillation saved: weights, config, tokenizer files) becomes:

    model.json, model.pdiparams   static graph for Paddle Inference, dynamic batch and sequence length;
                                  inputs input_ids, token_type_ids, attention_mask (int64 [B, S]), output logits
    model.onnx                    with --onnx, converted by paddle2onnx (optional: pip install paddle2onnx)
    vocab.txt, tokenizer_config.json
    inference_config.json         number of outputs and label names, task name, max_seq_length, model type

After writing, the script runs one padded batch through the eager model and through each exported model
and fails if their logits differ by more than --atol. The runners that load the folder are inference.py's.
"""
from __future__ import annotations

import cli  # noqa: F401  (sets MKL_DEBUG_CPU_TYPE before paddle loads)

import argparse
from pathlib import Path

import numpy as np

import checkpoints
import errors
import inference
import modeling
from inference import INFERENCE_CONFIG, INPUT_NAMES
from tokenization import BertTokenizer

ONNX_OPSET = inference.ONNX_OPSET


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


def export_model(model_path: str | Path, output_path: str | Path, *, onnx: bool = False,
                 task_name: str | None = None, max_seq_length: int | None = None, model_type: str | None = None,
                 overwrite: bool = False, atol: float = 1e-5, opset_version: int = ONNX_OPSET) -> dict:
    """Export, write the tokenizer and inference_config.json beside, check parity. Returns the config
    written, with 'max_abs_diff' (per runtime) added."""
    import paddle

    output_path = Path(output_path)
    folder = checkpoints.resolve_model_dir(model_path)
    checkpoints.check_not_an_input(output_path, "--output_path", {"--model_path": folder})
    checkpoints.check_output_folder(output_path, "--output_path", overwrite, "--overwrite")
    positions = modeling.read_config(folder).max_position_embeddings  # checked before the model loads
    trained = checkpoints.training_args(folder)  # the task and length the model was trained with
    task_name = task_name or trained.get("task_name")
    max_seq_length = max_seq_length or trained.get("max_seq_length") or min(128, positions)
    cli.check_max_seq_length(max_seq_length, positions)
    paddle.set_device("cpu")  # export and the check both run on CPU; the graph itself is device-free
    model_type = model_type or checkpoints.model_type(folder)
    model = modeling.load_classifier(folder, model_type)
    tokenizer = BertTokenizer.from_pretrained(folder)
    info = {
        "model_type": model_type,
        "task_name": task_name,
        "num_labels": model.config.num_labels,  # 1: regression, the output is a score
        "labels": inference.known_labels(model.config, task_name),
        "max_seq_length": max_seq_length,
        "max_position_embeddings": model.config.max_position_embeddings,
        "inputs": list(INPUT_NAMES),
        "output": "logits",
        "onnx": onnx,
        "paddle_version": paddle.__version__,
    }
    diffs: dict[str, float] = {}

    def write(staging: Path) -> None:  # a failed export or parity check leaves nothing half-written
        inference.save_static_model(model, staging)
        if onnx:
            inference.convert_to_onnx(staging, opset_version)
        tokenizer.save_pretrained(staging)
        checkpoints.write_json(staging / INFERENCE_CONFIG, info)
        diffs.update(parity(model, staging, onnx, atol))
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--model_path", required=True,
                        help="Trained classification folder (weights, config, vocab.txt).")
    parser.add_argument("--output_path", required=True, help="Folder to write the exported model to.")
    parser.add_argument("--onnx", action="store_true",
                        help="Also write model.onnx (needs paddle2onnx; running it needs onnxruntime).")
    parser.add_argument("--opset_version", type=int, default=ONNX_OPSET, help="ONNX opset for --onnx.")
    parser.add_argument("--task_name", default=None,
                        help="GLUE task the model was trained on (default: the one its training run recorded): "
                             "checked against the checkpoint's labels and recorded for predict.py.")
    parser.add_argument("--max_seq_length", type=int, default=None,
                        help="Truncation length that predict.py will use by default (default: the one the model "
                             "was trained with, else 128 or fewer when the model has fewer positions).")
    parser.add_argument("--model_type", choices=["bert", "tinybert", "ernie"], default=None,
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
