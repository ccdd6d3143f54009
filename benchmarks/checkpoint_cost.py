"""What writing checkpoints costs in the intermediate stage of the seed's recipe (--save_steps 10).

    python benchmarks/checkpoint_cost.py --glue_dir ../shared/glue --max_steps 300

A BERT-base-shaped teacher (random weights: the cost depends on shapes only) and a 6-layer, 768-wide
student initialised from it, real SST-2 rows, batch 32, max_seq_length 64, `--save_steps 10`, run twice
with task_distill.py: with the default cadence (a resumable checkpoint at most every --checkpoint_minutes,
under --checkpoint_budget of the time) and with a checkpoint at every save step, as before. Both runs' numbers
come from their train_log.jsonl: the checkpoint records' seconds against the whole stage's seconds. The
last line is `checkpoint_share: <default>% (every save step: <old>%)`.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from tinybert import cli

import argparse
import json
import subprocess
import tempfile


def make_teacher(folder: Path, vocab_dir: Path, train_tsv: Path) -> None:
    """A BERT-base-shaped SST-2 classifier with random weights, in our checkpoint layout."""
    from tinybert.models import modeling
    from tinybert.data.tokenization import BertTokenizer

    config = modeling.BertConfig(num_labels=2, label2id={"0": 0, "1": 1})
    modeling.BertForSequenceClassification(config).save_pretrained(folder)
    BertTokenizer.from_pretrained(vocab_dir).save_pretrained(folder)


def run(teacher: Path, data_dir: Path, out: Path, max_steps: int, extra: list[str]) -> dict:
    cmd = [sys.executable, str(ROOT / "task_distill.py"), "--model_type", "tinybert", "--student_config",
           "num_hidden_layers=6", "--init_from_teacher", "--task_name", "SST-2", "--data_dir", str(data_dir),
           "--intermediate_distill", "--max_seq_length", "64", "--batch_size", "32", "--T", "1",
           "--teacher_model_type", "bert", "--teacher_path", str(teacher), "--learning_rate", "5e-5",
           "--max_steps", str(max_steps), "--logging_steps", "10", "--save_steps", "10",
           "--output_dir", str(out), "--device", "cpu", *extra]
    subprocess.run(cmd, check=True)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    writes = [r["seconds"] for r in log if r.get("event") == "checkpoint"]
    end = log[-1]
    return {"steps": end["global_step"], "train_seconds": end["train_seconds"], "checkpoints": len(writes),
            "checkpoint_seconds": round(sum(writes), 1),
            "seconds_per_checkpoint": round(sum(writes) / max(1, len(writes)), 2),
            "share": 100 * sum(writes) / end["train_seconds"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=cli.HelpFormatter)
    p.add_argument("--glue_dir", required=True, help="GLUE folder with SST-2/train.tsv and dev.tsv.")
    p.add_argument("--rows", type=int, default=20000, help="SST-2 training rows used.")
    p.add_argument("--max_steps", type=int, default=300, help="Steps of the default-cadence run.")
    p.add_argument("--old_steps", type=int, default=60, help="Steps of the every-save-step run.")
    p.add_argument("--cache_dir", default=None, help="Asset cache (all-MiniLM-L6-v2's vocab.txt).")
    args = p.parse_args()
    from tinybert import assets

    vocab_dir = assets.fetch("minilm", Path(args.cache_dir) if args.cache_dir else None)
    with tempfile.TemporaryDirectory(prefix="ckpt-cost-") as tmp:
        tmp = Path(tmp)
        data_dir = tmp / "SST-2"
        data_dir.mkdir()
        source = Path(args.glue_dir) / "SST-2"
        lines = (source / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
        (data_dir / "train.tsv").write_text("".join(lines[:args.rows + 1]), encoding="utf-8")
        (data_dir / "dev.tsv").write_text((source / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
        teacher = tmp / "teacher"
        make_teacher(teacher, vocab_dir, data_dir / "train.tsv")
        new = run(teacher, data_dir, tmp / "default", args.max_steps, [])
        old = run(teacher, data_dir, tmp / "every", args.old_steps,
                  ["--checkpoint_minutes", "0", "--checkpoint_budget", "0"])
    for name, r in (("default cadence", new), ("every save step", old)):
        print(f"{name}: {r['steps']} steps in {r['train_seconds']:.0f} s, {r['checkpoints']} checkpoints "
              f"({r['seconds_per_checkpoint']:.1f} s each, {r['checkpoint_seconds']:.0f} s in all): "
              f"{r['share']:.1f}% of the stage")
    print(f"checkpoint_share: {new['share']:.2f}% (every save step: {old['share']:.1f}%)")


if __name__ == "__main__":
    main()
