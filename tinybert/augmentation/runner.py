"""Augmenting a whole file: rows in chunks, each chunk's rows written and recorded (outputs.py's protocol),
a contiguous share of the examples per shard or per process, and the shares joined into the one file a
single process writes. data_augmentation.py is the command line around it.

Each example draws from its own random generator seeded with (seed, example index), so the output does not
depend on the batch size, the number of shards or the number of processes.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tinybert import errors
from tinybert.augmentation import augment
from tinybert.augmentation.outputs import (Counts, Progress, finished_output, load_part, mark_complete,
                                           merge_files, open_output, partial_path, process_path, shard_path)
from tinybert.data import datafiles
from tinybert.errors import UserError
from tinybert.models import checkpoints
from tinybert.training import trainer

CHUNK_EXAMPLES = 256  # examples per unit of work: candidates, sampling, writing, then a progress record


def shard_range(total: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    """Contiguous example ranges, so the shards' outputs concatenated equal a single run's output."""
    return total * shard_id // num_shards, total * (shard_id + 1) // num_shards


def summary(progress: Progress, N: int | None) -> str:
    """The run's last line: what the output holds and how many sentences yielded fewer than N."""
    return (f"{progress.done} examples -> {progress.done + progress.samples} rows ({progress.done} originals + "
            f"{progress.samples} new samples from {progress.sentences} sentences); {progress.short} of "
            f"{progress.sentences} sentences yielded fewer than N={N} distinct new samples")


def augment_rows(rows: datafiles.Rows, finder: augment.CandidateFinder, config: augment.AugmentConfig,
                 first_index: int, examples: Sequence[Any], counts: Counts | None = None) -> list[str]:
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


def run_augmentation(rows: datafiles.Rows, finder: augment.CandidateFinder, config: augment.AugmentConfig,
                     output: Path, settings: dict[str, Any], shard_id: int = 0, num_shards: int = 1,
                     resume: bool = False, overwrite: bool = False, max_chunks: int | None = None,
                     verbose: bool = True) -> Progress:
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
                checkpoints.hook("augmentation.chunk")
                bar.update(len(chunk))
        except KeyboardInterrupt:
            bar.close()
            raise errors.Interrupted(f"after {progress.done} of {end - start} examples; they are kept in "
                                     f"{partial_path(output)}", resumable=True) from None
        bar.close()
    if index == end:
        mark_complete(output, progress)
    return progress


def merge_shards(output: Path, num_shards: int, settings: dict[str, Any], overwrite: bool) -> None:
    """Concatenate complete shard outputs into `output` (one header), then remove the shard files."""
    if output.exists() and not overwrite:
        raise UserError(f"{output} exists; pass --overwrite_output_dir to replace it")
    parts = []
    for shard in range(num_shards):
        part = shard_path(output, shard, num_shards)
        if not part.exists():
            raise UserError(f"shard {shard} of {num_shards} is missing ({part}); run it with --shard_id {shard}")
        record = load_part(part, {**settings, "shard": [shard, num_shards]})
        if not record.complete:
            raise UserError(f"shard {shard} of {num_shards} is not finished ({part}); rerun it with --resume")
        parts.append((part, record))
    merged = merge_files(output, parts, settings)
    print(f"merged {num_shards} shards into {output}: {summary(merged, settings.get('N'))}", file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# Several processes: paddle.distributed.launch
#
# Process r of W does shard r of W (of the manual shard it is given, cut again) into its own file, with
# its own progress record, so --resume continues each; once all are done, process 0 joins the parts into
# the file a single process writes. A failed process makes the launcher stop the others, so the waits
# need no timeout.

POLL_SECONDS = 0.5
SHARED_SECONDS = 10.0  # how long a network file system may take to show another machine's new file


@dataclass(frozen=True)
class Launch:
    """This process's place in a paddle.distributed.launch job. `wait(what)` returns once every process
    has called it with the same `what` (said in a message while this one waits)."""
    rank: int
    world: int
    wait: Callable[[str], None]


def launched() -> bool:
    """Started by paddle.distributed.launch with more than one process (PADDLE_TRAINERS_NUM)."""
    import paddle.distributed as dist

    return dist.get_world_size() > 1


@contextlib.contextmanager
def holding(output: Path) -> Iterator[None]:
    """This run's hold on its output file (checkpoints.lock_output) while the block writes it; under the
    launcher process 0 holds it for all (the others write only their own parts)."""
    if launched_rank() != 0:
        yield
        return
    with checkpoints.writing(output, "--output_file"):
        yield


def launched_rank() -> int:
    """This process's rank under paddle.distributed.launch (PADDLE_TRAINER_ID), 0 without it."""
    import paddle.distributed as dist

    return dist.get_rank() if launched() else 0


def join_launch(output: Path) -> Launch | None:
    """None for a single process. Under the launcher: join the process group and check that every process
    sees `output`'s folder as process 0 does (a launch over several machines needs a folder they all
    share); a UserError on every process otherwise. Call after the device is set."""
    if not launched():
        return None
    trainer.init_distributed()
    launch = Launch(trainer.rank(), trainer.world_size(), wait_for_all)
    check_shared_folder(output, launch.rank, launch.world)
    return launch


def wait_for_all(what: str) -> None:
    """A barrier that waits as long as it takes. gloo's barrier fails when the processes reach it more
    than 30 s apart, and the parts finish minutes apart; so each process counts itself in the process
    group's key-value store and polls the count, and the gloo barrier after it (the processes are then
    less than a poll apart) keeps any process from leaving the store before all have seen the count."""
    from paddle.base import core

    store = core.create_or_get_global_tcp_store()
    key = f"tinybert.augmentation: {what}"
    arrived = store.add(key, 1)
    if arrived < trainer.world_size():
        print(f"waiting for {what}", file=sys.stderr)
    while arrived < trainer.world_size():
        time.sleep(POLL_SECONDS)
        arrived = store.add(key, 0)
    trainer.barrier()


def check_shared_folder(output: Path, rank: int, world: int) -> None:
    """Process 0 writes a probe file beside `output`; a process that does not see it within SHARED_SECONDS
    is on a machine that does not share the folder, and the launch is refused on every process."""
    import paddle.distributed as dist

    tokens: list[str | None] = []
    dist.all_gather_object(tokens, os.urandom(6).hex() if rank == 0 else None)
    probe = output.with_name(f".{output.name}.launch-check")
    if rank == 0:
        checkpoints.write_text(probe, tokens[0])
    trainer.barrier()
    seen: list[bool] = []
    dist.all_gather_object(seen, shows(probe, tokens[0], SHARED_SECONDS))
    if rank == 0:
        probe.unlink(missing_ok=True)
    blind = [r for r, ok in enumerate(seen) if not ok]
    if blind:
        raise UserError(f"process {', '.join(map(str, blind))} of {world} does not see the files process 0 "
                        f"writes in {output.parent}: a launch over several machines needs an --output_file in "
                        f"a folder they all share; or run one launch per machine with --num_shards/--shard_id")


def shows(path: Path, text: str, seconds: float) -> bool:
    """Whether `path` holds `text` within `seconds` (this launch's probe, not one an earlier launch left)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if path.read_text(encoding="utf-8") == text:
                return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)


def check_same_world(output: Path, world: int) -> None:
    """--resume under the launcher continues each process's part, so the number of processes must stay."""
    pattern = f"{output.stem}.process-*-of-*{output.suffix}*"
    other = sorted({p.name for p in output.parent.glob(pattern) if f"-of-{world}{output.suffix}" not in p.name})
    if other:
        raise UserError(f"{output.parent / other[0]} is the part of a launch with another number of processes; "
                        f"resume with that many processes (--nproc_per_node x nodes), or pass --overwrite_output_dir")


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
        return merged if launch.rank == 0 else None
    if resume:
        check_same_world(output, launch.world)
    models_loaded = "process 0 to load the models"
    if launch.rank != 0:
        launch.wait(models_loaded)
    finder = make_finder()
    if launch.rank == 0:
        launch.wait(models_loaded)
    part = process_path(output, launch.rank, launch.world)
    mine = run_augmentation(rows, finder, config, part, part_settings(settings, launch.rank, launch.world),
                            shard_id * launch.world + launch.rank, num_shards * launch.world, resume, overwrite,
                            verbose=verbose)
    if not mine.complete:  # stopped early (max_chunks: tests)
        return None
    if launch.rank != 0:
        print(f"process {launch.rank} of {launch.world}: {mine.done} examples done in {part}; process 0 "
              f"joins the parts into {output}", file=sys.stderr)
    launch.wait("the other processes' parts")
    if launch.rank != 0:
        return None
    paths = [process_path(output, r, launch.world) for r in range(launch.world)]
    parts = [(path, load_part(path, part_settings(settings, r, launch.world))) for r, path in enumerate(paths)]
    return merge_files(output, parts, settings)


def part_settings(settings: dict[str, Any], rank: int, world: int) -> dict[str, Any]:
    """A process's part records its place too, so a resumed launch continues each part with its own."""
    return {**settings, "process": [rank, world]}
