"""The augmented file's protocol: where it is written, its progress record, and when it is complete.

An output is written as `<name>.partial` and takes its real name only when every example is in it, so a
file under its real name is complete. Beside it, `<name>.progress.json` records the settings (the input's
content hash among them), how many examples are done and the file's size then: a resumed run cuts the
partial file back to that size and goes on. Each completion mark comes after what it certifies: the record
says complete once the partial file holds every example, and the rename to the real name comes last, so a
kill between the two leaves a partial file that --resume only renames. One run writes an output at a time
(data_augmentation.py holds it: checkpoints.lock_output). Parts of one output (shards, processes) are files of their own, each with its own record, joined into
the output once they are all complete.

data_augmentation.py writes by this protocol (runner.py); a stage that reads an augmented file asks
`require_complete` first.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Sequence

from tinybert.errors import DataError, UserError
from tinybert.models import checkpoints

PARTIAL_SUFFIX = ".partial"
PROGRESS_SUFFIX = ".progress.json"
# Settings a later version records that an earlier run's record lacks: not compared, so such a run resumes.
LATER_SETTINGS = ("input_hash",)


def augmented_path(train_file: Path) -> Path:
    """Where data_augmentation.py writes a training file's augmented copy, and --use_aug reads it:
    train.tsv -> train_aug.tsv (the name the original recipe reads), train.json -> train_aug.json."""
    return train_file.with_name(f"{train_file.stem}_aug{train_file.suffix}")


def partial_path(path: Path) -> Path:
    """Where an output is written until it is complete."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


def progress_path(path: Path) -> Path:
    return path.with_name(path.name + PROGRESS_SUFFIX)


def written_paths(output: Path) -> list[Path]:
    """Every path a run writes for `output`: the file, its partial file, its progress record, its lock."""
    return [output, partial_path(output), progress_path(output), checkpoints.lock_path(output)]


def shard_path(output: Path, shard_id: int, num_shards: int) -> Path:
    if num_shards == 1:
        return output
    return output.with_name(f"{output.stem}.shard-{shard_id}-of-{num_shards}{output.suffix}")


def process_path(output: Path, rank: int, world: int) -> Path:
    return output.with_name(f"{output.stem}.process-{rank}-of-{world}{output.suffix}")


def require_complete(path: Path) -> None:
    """A DataError when `path` is an unfinished augmentation: only its `.partial` file exists, or (a file an
    older data_augmentation.py wrote in place) its progress record says the run stopped part-way. A file
    that does not exist at all passes: its reader reports it."""
    if not path.exists() and partial_path(path).exists():
        raise DataError(path, None, f"not finished: {partial_path(path).name} is the output of an interrupted "
                                    "data_augmentation.py run; finish it with the same command and --resume")
    record = progress_path(path)
    if not path.exists() or not record.is_file():
        return
    try:
        complete = json.loads(record.read_text(encoding="utf-8")).get("complete", True)
    except (OSError, ValueError, AttributeError):
        return  # not our record: the file is judged by its own content
    if complete is False:
        raise DataError(path, None, f"not finished ({record.name} says the augmentation stopped part-way); "
                                    "finish it with the same data_augmentation.py command and --resume")


# ----------------------------------------------------------------------------------------------
# The progress record


@dataclass
class Counts:
    """What a chunk gave: sentences (text sides) augmented, new samples, sentences with fewer than N."""
    sentences: int = 0
    samples: int = 0
    short: int = 0


class Progress:
    """`<output>.progress.json`: the settings, how many examples are done and the output's size then, and
    what they gave: sentences (text sides) augmented, new samples written, sentences with fewer than N.

    Written after each chunk (output flushed first), so a resumed run cuts the output back to the last
    recorded size and continues from the next example."""

    def __init__(self, output: Path, settings: dict[str, Any]):
        self.output, self.path, self.settings = output, progress_path(output), settings
        self.done, self.bytes, self.header_bytes, self.complete = 0, 0, 0, False
        self.sentences, self.samples, self.short = 0, 0, 0

    def add(self, counts: Counts) -> None:
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
                            f"or unreadable; use --overwrite_output_dir to start over") from None
        old = state.get("settings", {})
        changed = [k for k in sorted(set(old) | set(self.settings)) if old.get(k) != self.settings.get(k)
                   and not (k in LATER_SETTINGS and k not in old)]
        if "input_hash" in changed:
            raise UserError(f"cannot resume {self.output}: its input {self.settings.get('input')} has changed "
                            f"since the run began (other content); use --overwrite to start over")
        if changed:
            k = changed[0]
            raise UserError(f"cannot resume {self.output}: it was made with {k}={old.get(k)!r}, now "
                            f"{k}={self.settings.get(k)!r}; use the same settings, or --overwrite_output_dir")
        self.done, self.bytes = int(state["examples_done"]), int(state["bytes"])
        self.header_bytes, self.complete = int(state.get("header_bytes", 0)), bool(state.get("complete"))
        self.sentences, self.samples = int(state.get("sentences", 0)), int(state.get("samples", 0))
        self.short = int(state.get("short", 0))
        size = data_file.stat().st_size if data_file.exists() else -1
        if size < self.bytes:
            raise UserError(f"cannot resume {data_file}: it is shorter than its progress record says "
                            f"({size} < {self.bytes} bytes); use --overwrite_output_dir to start over")

    def restart(self) -> None:
        """Nothing done yet: a run that starts the output from the beginning."""
        self.done, self.bytes, self.header_bytes, self.complete = 0, 0, 0, False
        self.sentences, self.samples, self.short = 0, 0, 0

    def save(self) -> None:
        state = {"settings": self.settings, "examples_done": self.done, "bytes": self.bytes,
                 "header_bytes": self.header_bytes, "complete": self.complete,
                 "sentences": self.sentences, "samples": self.samples, "short": self.short}
        checkpoints.write_json(self.path, state)


# ----------------------------------------------------------------------------------------------
# Writing: start, continue, finish


def finished_output(output: Path, progress: Progress, resume: bool, overwrite: bool) -> bool:
    """True when a resumed run's output is already complete (its record loaded into `progress`); an
    existing output is refused unless the run resumes or overwrites it."""
    if resume and output.exists():
        progress.load()
        if progress.complete:
            return True
    if output.exists() and not overwrite and not resume:
        raise UserError(f"{output} exists; pass --resume to continue it, --overwrite_output_dir to replace it, "
                        f"or choose another --output_file")
    return False


def open_output(output: Path, progress: Progress, resume: bool, overwrite: bool) -> BinaryIO | None:
    """The unfinished output opened for appending at the right place; None when a resumed run is complete."""
    partial = partial_path(output)
    if finished_output(output, progress, resume, overwrite):
        return None
    continuing = resume and partial.exists()
    if continuing:
        progress.load(partial)
        if progress.complete:  # stopped between its record and its rename: every example is in it
            partial.replace(output)
            return None
        with open(partial, "r+b") as f:  # drop what came after the last recorded chunk
            f.truncate(progress.bytes)
    elif partial.exists() and not overwrite:
        raise UserError(f"{partial} is the output of an interrupted run; pass --resume to continue it, or "
                        f"--overwrite_output_dir to start over")
    elif resume:
        print(f"note: {output} has no unfinished run to resume; starting from the beginning", file=sys.stderr)
    if not continuing:  # what a record of an unfinished output said is no longer true
        progress.restart()
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        return open(partial, "ab" if continuing else "wb")  # bytes: the recorded sizes are exact offsets
    except OSError as e:
        raise UserError(f"cannot write {partial}: {e.strerror}; choose another --output_file") from None


def mark_complete(output: Path, progress: Progress) -> None:
    """The completion marks, each after what it certifies: the record says the partial file holds every
    example, then the file takes its real name."""
    progress.complete = True
    progress.save()
    checkpoints.hook("augmentation.recorded")
    partial_path(output).replace(output)
    checkpoints.hook("augmentation.named")


def load_part(part: Path, settings: dict[str, Any]) -> Progress:
    """The record of a part of an output (a shard, a process's share), checked against `settings`."""
    record = Progress(part, settings)
    record.load()
    return record


def merge_files(output: Path, parts: Sequence[tuple[Path, Progress]], settings: dict[str, Any]) -> Progress:
    """Concatenate the complete outputs of consecutive example ranges into `output` (the first one's
    header only) by the protocol (its partial file, its record, its real name); then remove the parts and
    their records, which a kill before that leaves for the merge to be done again."""
    partial = partial_path(output)
    with open(partial, "wb") as out:
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
    merged.bytes, merged.header_bytes = partial.stat().st_size, parts[0][1].header_bytes
    mark_complete(output, merged)
    for part, record in parts:
        part.unlink()
        record.path.unlink()
    return merged
