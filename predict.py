"""Predict with a trained model: labels and probabilities (scores for regression) for new texts.

    # a GLUE test set -> the file the GLUE server takes (OUT/SST-2.tsv; MNLI gives MNLI-m.tsv and MNLI-mm.tsv)
    python predict.py --model_path infer_model --task_name SST-2 --glue_dir GLUE --glue_submission OUT
    # a CLUE test set -> CLUE's submission file (OUT/afqmc_predict.json: {"id": 0, "label": "1"} per line)
    python predict.py --model_path infer_model --task_name AFQMC --clue_dir CLUE --submission_dir OUT
    # your own CSV/TSV/JSONL file (column flags as in training) -> TSV or JSONL by extension
    python predict.py --model_path infer_model --test_file reviews.csv --output_file predictions.jsonl
    # lines on stdin (a TAB between the two sentences of a pair) -> TSV on stdout
    echo "a gripping, funny film" | python predict.py --model_path infer_model

--model_path is a folder written by export_model.py (run by Paddle Inference with oneDNN, or ONNX Runtime
with --runtime onnxruntime; an `export_model.py --quantize int8` folder runs its INT8 model with ONNX Runtime
unless --runtime says otherwise) or a training checkpoint folder (run eagerly by Paddle). Texts are tokenized
in batches, sorted by length so that little padding is computed, and written back in input order.
"""
from __future__ import annotations

from tinybert import cli

import argparse
import contextlib
import csv
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence, TextIO

import numpy as np

from tinybert.models import checkpoints
from tinybert.data import datafiles
from tinybert import errors
from tinybert import settings
from tinybert.device import DeviceConfig, resolve_device
from tinybert.training import evaluation
from tinybert.data import features
from tinybert import inference
from tinybert.data import tasks
from tinybert.data.tasks import Example, TaskSpec


STDIN = "-"


# ------------------------------------------------------------------------------------------- outputs

def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)  # exp of non-positive numbers cannot overflow
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------- inputs

def read_lines(stream: TextIO, name: str = "<stdin>") -> list[Example]:
    """One example per line; a TAB splits a sentence pair. Blank lines are left out (and counted).
    Bytes are checked as UTF-8 line by line, as in files (datafiles.stream_lines)."""
    examples, blank = [], 0
    for line_no, line in datafiles.stream_lines(stream, name):
        if not line.strip():
            blank += 1
            continue
        text_a, sep, text_b = line.partition("\t")
        if sep and not text_b.strip():
            raise errors.DataError(name, line_no, "nothing after the TAB (the second sentence of a pair)")
        examples.append(Example(text_a, text_b if sep else None, None, str(len(examples)), line_no))
    if blank:
        print(f"note: {name}: {blank} blank lines left out", file=sys.stderr)
    if not examples:
        raise errors.UserError(f"{name}: no text to predict")
    return examples


def resolve_task(config: tasks.DataConfig, glue_submission: str | None,
                 predictor: inference.Predictor) -> TaskSpec | None:
    """The GLUE or CLUE task to read and write by, when there is one, checked against the model's outputs.

    A task recorded at export is used when task flags (--data_dir, --glue_dir/--clue_dir,
    --glue_submission/--submission_dir) are given without --task_name."""
    name = config.task_name
    if name is None and (config.data_dir or config.glue_dir or glue_submission) and predictor.task_name:
        name = predictor.task_name
    if not tasks.is_task(name):
        return None
    spec = tasks.get_task(name)
    if spec.num_labels != predictor.num_labels:
        raise errors.UserError(f"the model has {predictor.num_labels} outputs but {spec.name} has "
                            f"{spec.num_labels} {'(a score)' if spec.is_regression else 'labels'}")
    if predictor.labels:
        tasks.check_label_order(spec, {label: i for i, label in enumerate(predictor.labels)})
    return spec


def load_inputs(args: argparse.Namespace, predictor: inference.Predictor,
                stdin: TextIO) -> tuple[TaskSpec, dict[str, list[Example]]]:
    """(spec, {split: examples}): the GLUE test set, the user's file, or lines on stdin.

    The task and labels are the model's where the flags leave them open; they go to the library in
    the DataConfig (args stay as parsed)."""
    config = settings.from_args(tasks.DataConfig, args)
    spec = resolve_task(config, args.glue_submission, predictor)
    from_stdin = config.test_file == STDIN or (spec is None and not config.test_file)
    if spec is not None:
        config = dataclasses.replace(config, task_name=spec.name)
    else:  # the model says what the labels are (or that it predicts a score)
        config = dataclasses.replace(config, labels=inference.own_labels(config.labels, predictor.labels,
                                                                         predictor.num_labels),
                                     regression=predictor.is_regression)
    if from_stdin:
        if stdin.isatty():
            print("reading texts from stdin, one per line (a TAB between the sentences of a pair); "
                  "end with Ctrl-D", file=sys.stderr)
        return spec or tasks.custom_task(config.task_name, config.labels), {"test": read_lines(stdin)}
    return tasks.load_task_data(config, splits=("test",))


# --------------------------------------------------------------------------------------------- outputs

def prediction_records(spec: TaskSpec, examples: Sequence[Example], logits: np.ndarray,
                       split: str | None = None) -> Iterable[dict]:
    """One dict per example: index, texts, then label and probabilities, or score."""
    probs = None if spec.is_regression else softmax(logits)
    for i, example in enumerate(examples):
        record = {"split": split} if split else {}
        record.update(index=example.guid, text_a=example.text_a)
        if example.text_b is not None:
            record["text_b"] = example.text_b
        if probs is None:
            record["score"] = float(logits[i, 0])
        else:
            record["label"] = spec.labels[int(probs[i].argmax())]
            record["probabilities"] = {label: float(p) for label, p in zip(spec.labels, probs[i])}
        yield record


def write_jsonl(records: Iterable[dict], f: TextIO) -> None:
    for record in records:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_tsv(records: Iterable[dict], f: TextIO, spec: TaskSpec, pair: bool, with_split: bool) -> None:
    """A header, then one row per example; probabilities as prob_<label> columns (6 decimals)."""
    columns = (["split"] if with_split else []) + ["index", "text_a"] + (["text_b"] if pair else [])
    columns += ["score"] if spec.is_regression else ["label"] + [f"prob_{label}" for label in spec.labels]
    # csv quotes a field only when it holds a TAB, quote or line break, so plain texts stay plain.
    writer = csv.writer(f, delimiter="\t", lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        row = ([r["split"]] if with_split else []) + [r["index"], r["text_a"]] + ([r.get("text_b", "")] if pair else [])
        if spec.is_regression:
            row.append(f"{r['score']:.6f}")
        else:
            row += [r["label"]] + [f"{r['probabilities'][label]:.6f}" for label in spec.labels]
        writer.writerow(row)


def output_format(args: argparse.Namespace) -> str:
    if args.output_format != "auto":
        return args.output_format
    if args.output_file and args.output_file != STDIN and Path(args.output_file).suffix.lower() == ".jsonl":
        return "jsonl"
    return "tsv"


def write_outputs(args: argparse.Namespace, spec: TaskSpec, data: dict[str, list[Example]],
                  logits: dict[str, np.ndarray], stdout: TextIO) -> list[str]:
    """Write every requested output; returns where they went."""
    written = []
    if args.glue_submission:
        from tinybert.data.metrics import logits_to_predictions

        for split, examples in data.items():
            preds = logits_to_predictions(spec, logits[split])
            written.append(str(tasks.write_submission(spec, examples, preds, args.glue_submission, split,
                                                      overwrite=args.overwrite)))
    if args.output_file or not args.glue_submission:
        with_split = len(data) > 1
        records = (r for split, examples in data.items()
                   for r in prediction_records(spec, examples, logits[split], split if with_split else None))
        pair = any(e.text_b is not None for examples in data.values() for e in examples)
        to_stdout = not args.output_file or args.output_file == STDIN
        path = None if to_stdout else Path(args.output_file)
        # A file is written under a temporary name and renamed when complete: a full disk leaves none.
        with contextlib.nullcontext(stdout) if to_stdout else checkpoints.atomic_file(path) as f:
            if output_format(args) == "jsonl":
                write_jsonl(records, f)
            else:
                write_tsv(records, f, spec, pair, with_split)
        written.append("stdout" if to_stdout else str(path))
    return written


def check_outputs_free(args: argparse.Namespace) -> None:
    """Refuse before predicting, not after: nothing is overwritten without --overwrite_output_dir."""
    inputs = {"--model_path": args.model_path, "--test_file": None if args.test_file == STDIN else args.test_file}
    if args.output_file and args.output_file != STDIN:
        path = Path(args.output_file)
        checkpoints.check_not_an_input(path, "--output_file", inputs)
        if path.exists() and not args.overwrite:
            raise errors.UserError(f"{path} exists; pass --overwrite_output_dir to replace it")
        if not path.parent.is_dir():
            raise errors.UserError(f"{path.parent} does not exist (the folder of --output_file)")


# ------------------------------------------------------------------------------------------------ main

@dataclasses.dataclass(frozen=True)
class RecordedLength(features.EncodeConfig):
    """predict.py's --max_seq_length: the length recorded at export unless given."""
    max_seq_length: int | None = settings.like(features.EncodeConfig, "max_seq_length", default=None,
                                               help="Truncation length (default: the one recorded at export, "
                                                    "else 128).")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=cli.HelpFormatter, epilog=__doc__)
    parser.add_argument("--model_path", required=True,
                        help="Folder from export_model.py, or a trained checkpoint folder.")
    parser.add_argument("--runtime", choices=inference.RUNTIMES, default=None,
                        help="For an exported folder: Paddle Inference, or ONNX Runtime (needs model.onnx). "
                             "Default: the runtime the export recorded, i.e. ONNX Runtime running model_int8.onnx "
                             "for a --quantize int8 export (where paddle_inference runs its float graph), "
                             "else paddle_inference.")
    # --test_file - (or no data) reads stdin
    settings.add_flags(parser, tasks.DataConfig, skip=("train_file", "dev_file", "regression"))
    parser.add_argument("--output_file", default=None,
                        help="Where to write predictions: .tsv or .jsonl (default: TSV on stdout).")
    parser.add_argument("--output_format", choices=["auto", "tsv", "jsonl"], default="auto",
                        help="Format of --output_file (auto: by extension; stdout: TSV).")
    parser.add_argument("--glue_submission", "--submission_dir", dest="glue_submission", default=None, metavar="DIR",
                        help="Write the benchmark's submission file(s) of the test set here: GLUE's DIR/SST-2.tsv "
                             "(MNLI-m.tsv, MNLI-mm.tsv), CLUE's DIR/afqmc_predict.json (tnews11_predict.json, ...).")
    parser.add_argument("--overwrite_output_dir", "--overwrite", dest="overwrite", action="store_true",
                        help="Replace existing output files.")
    parser.add_argument("--batch_size", type=int, default=32, help="Examples per forward pass.")
    settings.add_flags(parser, RecordedLength)
    settings.add_flags(parser, DeviceConfig, choices={"device": ("auto", "cpu", "gpu")}, skip=("n_gpu",))
    parser.add_argument("--cpu_threads", type=int, default=None,
                        help="CPU threads (default: every core this process may use).")
    return parser.parse_args(argv)


@cli.run_main
def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
    args = parse_args(argv)
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    if args.batch_size < 1:
        raise errors.UserError("--batch_size must be at least 1")
    check_outputs_free(args)
    args.device = resolve_device(args.device)
    predictor = inference.load_predictor(args.model_path, args.device, args.cpu_threads, args.runtime)
    max_seq_length = args.max_seq_length or predictor.max_seq_length
    cli.check_max_seq_length(max_seq_length, predictor.max_positions)
    spec, data = load_inputs(args, predictor, stdin)
    if args.glue_submission:
        if not spec.is_benchmark:
            raise errors.UserError("--glue_submission needs a GLUE --task_name or a CLUE one "
                                   "(or a model exported with one)")
        for split in data:
            if split not in spec.submission_files:
                raise errors.UserError(f"{spec.name}'s {spec.benchmark} submission files are for the splits "
                                       f"{', '.join(spec.submission_files)}, not {split!r}: a --test_file named as "
                                       f"one of the task's test files "
                                       f"({', '.join(spec.files[s] for s in spec.submission_files)}) says which")
            target = Path(args.glue_submission) / spec.submission_files[split]
            checkpoints.check_not_an_input(target, "--glue_submission", {"--model_path": args.model_path,
                                                                          "--test_file": args.test_file})
            if target.is_file() and not args.overwrite:
                raise errors.UserError(f"{target} exists; pass --overwrite_output_dir to replace it")

    start, count, logits = time.perf_counter(), 0, {}
    for split, examples in data.items():
        encoded = features.encode_examples(predictor.tokenizer, examples, max_seq_length, spec)
        logits[split] = evaluation.predict_logits(predictor.run, encoded, args.batch_size,
                                                  predictor.tokenizer.pad_token_id, desc=f"predicting {split}")
        count += len(examples)
    seconds = time.perf_counter() - start
    written = write_outputs(args, spec, data, logits, stdout)
    print(f"predicted {count} examples with {predictor.runtime} on {args.device} in {seconds:.1f}s "
          f"({count / max(seconds, 1e-9):.0f}/s) -> {', '.join(written)}", file=sys.stderr)


if __name__ == "__main__":
    main()
