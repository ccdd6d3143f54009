"""How long the input pipeline takes on SST-2 train (67,349 sentences): reading the GLUE file,
batched tokenization, and cutting it into padded batches. Seconds, not minutes.

    python benchmarks/tokenize_speed.py                      # vocabulary of all-MiniLM-L6-v2, fetched once
    python benchmarks/tokenize_speed.py --vocab MODEL_DIR --glue_dir GLUE_DIR --bucket
"""
from pathlib import Path

from tinybert import cli

import argparse
import time

import numpy as np

from tinybert import assets
from tinybert.data import features
from tinybert.data import tasks
from tinybert.data.tokenization import BertTokenizer, read_vocab

DEFAULT_GLUE = Path(__file__).resolve().parent.parent.parent / "shared" / "glue"


def load_tokenizer(vocab: str | None) -> BertTokenizer:
    """--vocab: a model folder or a vocab.txt; without it all-MiniLM-L6-v2's (uncased), fetched once."""
    if vocab is None:
        return BertTokenizer.from_pretrained(assets.fetch("minilm", quiet=False))
    path = Path(vocab)
    if path.is_file():
        return BertTokenizer(read_vocab(path), do_lower_case=True)
    return BertTokenizer.from_pretrained(path)


@cli.run_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", default=None, help="Model folder with vocab.txt, or a vocab.txt.")
    parser.add_argument("--glue_dir", default=str(DEFAULT_GLUE), help="Folder holding SST-2/train.tsv.")
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--bucket", action="store_true", help="Group similar lengths into a batch.")
    args = parser.parse_args()

    spec = tasks.get_task("SST-2")
    path = tasks.resolve_task_file(spec, "train", glue_dir=args.glue_dir)
    tokenizer = load_tokenizer(args.vocab)

    start = time.perf_counter()
    examples = tasks.read_glue_examples(path, spec, "train")
    read_s = time.perf_counter() - start

    start = time.perf_counter()
    data = features.encode_examples(tokenizer, examples, args.max_seq_length, spec)
    tokenize_s = time.perf_counter() - start

    start = time.perf_counter()
    batches = features.batch_indices(data.lengths, args.batch_size, shuffle=True, seed=0, bucket=args.bucket)
    padded = 0
    for ids in batches:
        batch = features.collate([data[i] for i in ids], tokenizer.pad_token_id)
        padded += batch["input_ids"].size
    batch_s = time.perf_counter() - start

    real = int(np.sum(data.lengths))
    print(f"SST-2 train: {len(examples)} sentences, {real} tokens (max_seq_length {args.max_seq_length})")
    print(f"read      {read_s:6.2f} s")
    print(f"tokenize  {tokenize_s:6.2f} s  ({len(examples) / tokenize_s:,.0f} sentences/s)")
    print(f"batch     {batch_s:6.2f} s  ({len(batches)} batches of {args.batch_size}, "
          f"{'bucketed' if args.bucket else 'shuffled'}; {real / padded:.0%} of padded positions are tokens)")
    print(f"total     {read_s + tokenize_s + batch_s:6.2f} s")


if __name__ == "__main__":
    main()
