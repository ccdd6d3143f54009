"""Tasks: the nine GLUE tasks read from their original TSV files, users' own CSV/TSV/JSONL data,
features (batched tokenization) and batches (dynamic padding, optional length bucketing).

    spec, data = load_task_data(args, splits=("train", "dev"))    # args from add_data_args(parser)
    train = encode_examples(tokenizer, data["train"], 128, spec)
    for ids in batch_indices(train.lengths, 32, shuffle=True, seed=42, epoch=0):
        batch = collate([train[i] for i in ids], tokenizer.pad_token_id)

GLUE files are read exactly as `download_glue_data.py` wrote them: split on tabs, quoting off (the
sentences hold quote characters), each task's own columns, header or not. Every bad row is an error
naming the file and line (errors.DataError), unless --skip_bad_rows, which reports what it skipped.
MNLI's dev and test sets come in two files each: asking for "dev" gives "dev_matched" and
"dev_mismatched" (see dev_splits()).
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, TextIO

import numpy as np
from tqdm import tqdm

from errors import DataError, UserError
from metrics import CUSTOM_MAIN_METRIC, MAIN_METRIC

# ----------------------------------------------------------------------------------------------
# The GLUE tasks


@dataclass(frozen=True)
class Layout:
    """Where the fields sit in one GLUE file: its column names, and which columns hold the texts,
    the label and the example index (the id a submission file repeats)."""
    columns: tuple[str, ...]
    text_a: int
    text_b: int | None = None
    label: int | None = None
    index: int | None = None
    has_header: bool = True

    @property
    def text_columns(self) -> tuple[int, ...]:
        return (self.text_a,) if self.text_b is None else (self.text_a, self.text_b)


@dataclass(frozen=True)
class TaskSpec:
    """One task: its label list (None = regression), main metric, files and column layouts.

    Users' own data get a TaskSpec too (is_glue False, no files or layouts: their columns come
    from the command-line flags)."""
    name: str
    labels: list[str] | None
    main_metric: str
    files: dict[str, str] = field(default_factory=dict)  # split -> file name in the task folder
    layouts: dict[str, Layout] = field(default_factory=dict)  # split -> layout
    submission_files: dict[str, str] = field(default_factory=dict)  # test split -> GLUE file name
    is_glue: bool = True

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def label2id(self) -> dict[str, int] | None:
        return None if self.labels is None else {label: i for i, label in enumerate(self.labels)}

    @property
    def id2label(self) -> dict[int, str] | None:
        return None if self.labels is None else dict(enumerate(self.labels))

    @property
    def is_pair(self) -> bool:
        return any(layout.text_b is not None for layout in self.layouts.values())

    def splits_for(self, split: str) -> list[str]:
        """The files a split name stands for: MNLI's "dev" is dev_matched and dev_mismatched."""
        if split in self.files:
            return [split]
        expanded = [s for s in self.files if s.startswith(split + "_")]
        if not expanded:
            raise UserError(f"{self.name} has no {split!r} split (it has: {', '.join(self.files)})")
        return expanded

    def layout(self, split: str) -> Layout:
        """The layout of a split, or of the file type it names ("dev" of MNLI: dev_matched's)."""
        return self.layouts[self.splits_for(split)[0]]


def _splits(train: Layout, dev: Layout, test: Layout, submission: str) -> dict[str, Any]:
    """The usual three files, train.tsv, dev.tsv and test.tsv."""
    return dict(files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
                layouts={"train": train, "dev": dev, "test": test},
                submission_files={"test": submission})


def _glue_task(name: str, labels: list[str] | None, **splits: Any) -> TaskSpec:
    return TaskSpec(name=name, labels=labels, main_metric=MAIN_METRIC[name], **splits)


_COLA = Layout(("source", "label", "original_label", "sentence"), text_a=3, label=1, has_header=False)
_SST = Layout(("sentence", "label"), text_a=0, label=1)
_SINGLE_TEST = Layout(("index", "sentence"), text_a=1, index=0)
_MRPC = ("#1 ID", "#2 ID", "#1 String", "#2 String")
_STS = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")
_MNLI = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
         "sentence1_parse", "sentence2_parse", "sentence1", "sentence2")
_MNLI_DEV = Layout(_MNLI + ("label1", "label2", "label3", "label4", "label5", "gold_label"), 8, 9, 15, 0)
_MNLI_TEST = Layout(_MNLI, 8, 9, index=0)
_QNLI = Layout(("index", "question", "sentence", "label"), 1, 2, label=3, index=0)
_QNLI_TEST = Layout(("index", "question", "sentence"), 1, 2, index=0)
_NLI = Layout(("index", "sentence1", "sentence2", "label"), 1, 2, label=3, index=0)
_NLI_TEST = Layout(("index", "sentence1", "sentence2"), 1, 2, index=0)
_QQP = Layout(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"), 3, 4, label=5, index=0)

# Label lists in the order of the original GLUE processors (BERT's run_classifier.py) and PaddleNLP's
# Glue dataset: MNLI is contradiction, entailment, neutral. (HF `datasets` numbers MNLI
# entailment, neutral, contradiction; a teacher trained that way is caught by check_label_order.)
GLUE_TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in [
    _glue_task("CoLA", ["0", "1"], **_splits(_COLA, _COLA, _SINGLE_TEST, "CoLA.tsv")),
    _glue_task("SST-2", ["0", "1"], **_splits(_SST, _SST, _SINGLE_TEST, "SST-2.tsv")),
    _glue_task("MRPC", ["0", "1"], **_splits(
        Layout(("Quality",) + _MRPC, 3, 4, label=0), Layout(("Quality",) + _MRPC, 3, 4, label=0),
        Layout(("index",) + _MRPC, 3, 4, index=0), "MRPC.tsv")),
    _glue_task("STS-B", None, **_splits(
        Layout(_STS + ("score",), 7, 8, 9, 0), Layout(_STS + ("score",), 7, 8, 9, 0),
        Layout(_STS, 7, 8, index=0), "STS-B.tsv")),
    _glue_task("QQP", ["0", "1"], **_splits(
        _QQP, _QQP, Layout(("id", "question1", "question2"), 1, 2, index=0), "QQP.tsv")),
    _glue_task(
        "MNLI", ["contradiction", "entailment", "neutral"],
        files={"train": "train.tsv", "dev_matched": "dev_matched.tsv",
               "dev_mismatched": "dev_mismatched.tsv", "test_matched": "test_matched.tsv",
               "test_mismatched": "test_mismatched.tsv"},
        layouts={"train": Layout(_MNLI + ("label1", "gold_label"), 8, 9, 11, 0),
                 "dev_matched": _MNLI_DEV, "dev_mismatched": _MNLI_DEV,
                 "test_matched": _MNLI_TEST, "test_mismatched": _MNLI_TEST},
        submission_files={"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"}),
    _glue_task("QNLI", ["entailment", "not_entailment"], **_splits(_QNLI, _QNLI, _QNLI_TEST, "QNLI.tsv")),
    _glue_task("RTE", ["entailment", "not_entailment"], **_splits(_NLI, _NLI, _NLI_TEST, "RTE.tsv")),
    _glue_task("WNLI", ["0", "1"], **_splits(_NLI, _NLI, _NLI_TEST, "WNLI.tsv")),
]}


def _normalize(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def get_task(name: str) -> TaskSpec:
    """A GLUE task by name, any case, with or without the hyphen: sst-2, SST-2, sst2."""
    for spec in GLUE_TASKS.values():
        if _normalize(spec.name) == _normalize(name):
            return spec
    raise UserError(f"unknown task {name!r}: GLUE tasks are {', '.join(GLUE_TASKS)} "
                    f"(for your own data give --train_file/--dev_file)")


def is_glue_task(name: str | None) -> bool:
    return name is not None and any(_normalize(s) == _normalize(name) for s in GLUE_TASKS)


def custom_task(name: str | None, labels: list[str] | None) -> TaskSpec:
    """A user's own task: classification over `labels`, or regression when labels is None."""
    kind = "regression" if labels is None else "classification"
    return TaskSpec(name=name or "custom", labels=labels, main_metric=CUSTOM_MAIN_METRIC[kind],
                    is_glue=False)


def check_label_order(spec: TaskSpec, label2id: dict[str, int] | None) -> None:
    """Refuse a checkpoint whose classifier numbers the labels differently from the task.

    With MNLI in the other common order a teacher scores about 10% accuracy, silently; here it is
    an error naming both orders. Checkpoints without label names (None, or HF's LABEL_0..) only
    need the right number of outputs."""
    if not label2id:
        return
    theirs = [label for label, _ in sorted(label2id.items(), key=lambda item: int(item[1]))]
    ours = spec.labels or ["(one regression output)"]
    generic = all(label == f"LABEL_{i}" for i, label in enumerate(theirs))
    if len(theirs) != spec.num_labels:
        raise UserError(f"the checkpoint has {len(theirs)} labels [{', '.join(theirs)}] but {spec.name} "
                        f"has {spec.num_labels}: [{', '.join(ours)}]")
    if generic or spec.labels is None or [s.lower() for s in theirs] == [s.lower() for s in spec.labels]:
        return
    same_set = sorted(map(str.lower, theirs)) == sorted(map(str.lower, spec.labels))
    what = "orders its labels" if same_set else "has labels"
    raise UserError(f"the checkpoint {what} [{', '.join(theirs)}] but {spec.name} uses "
                    f"[{', '.join(spec.labels)}]: its predictions would be read as the wrong labels")


# ----------------------------------------------------------------------------------------------
# Examples and reading files


@dataclass(slots=True)
class Example:
    """One example: texts, label (label name, float score, or None for test sets), an id (the
    file's index column where it has one) and the 1-based line in the file, for error messages."""
    text_a: str
    text_b: str | None
    label: str | float | None
    guid: str
    line: int


class BadRows:
    """Rows left out under --skip_bad_rows, reported once the file is read: nothing vanishes silently."""

    def __init__(self, path: Path | str, skip: bool):
        self.path, self.skip = str(path), skip
        self.lines: list[int] = []
        self.first_problem = ""

    def handle(self, line: int, problem: str) -> None:
        """Raise the DataError, or remember the line when skipping."""
        if not self.skip:
            raise DataError(self.path, line, problem)
        if not self.lines:
            self.first_problem = f"line {line}: {problem}"
        self.lines.append(line)

    def report(self) -> None:
        if not self.lines:
            return
        shown = ", ".join(map(str, self.lines[:50])) + (" ..." if len(self.lines) > 50 else "")
        print(f"warning: {self.path}: skipped {len(self.lines)} bad rows (--skip_bad_rows) at lines "
              f"{shown}; first: {self.first_problem}", file=sys.stderr)


def _decoded_lines(path: Path, bad: BadRows) -> Iterator[tuple[int, str]]:
    """(line number, text) per line: UTF-8 checked line by line, BOM and line ending removed.

    Splitting bytes on b"\\n" (and not text on every Unicode line break) keeps a row whole even when
    its text holds odd separators; a final line without newline (CoLA dev) is read like the others."""
    _check_file(path)  # now, not at the first next(): a missing file is reported up front

    def lines() -> Iterator[tuple[int, str]]:
        with open(path, "rb") as f:
            for line_no, raw in enumerate(f, start=1):
                if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):  # MRPC's files start with a BOM
                    raw = raw[3:]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    bad.handle(line_no, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1})")
                    continue
                yield line_no, text.rstrip("\n").removesuffix("\r")

    return lines()


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(path, None, "file not found" if not path.exists() else "not a file")


def _infer_split(spec: TaskSpec, path: Path) -> str:
    """dev.tsv -> dev, test_matched.tsv -> test_matched, anything else (train_aug.tsv) -> train."""
    stem = path.name.removesuffix(".tsv")
    return stem if stem in spec.files or stem in ("dev", "test") else "train"


def read_glue_table(path: str | Path, task: str | TaskSpec, split: str | None = None,
                    skip_bad_rows: bool = False) -> tuple[list[str] | None, Iterator[tuple[int, list[str]]]]:
    """Stream a GLUE file's raw rows: (header or None, iterator of (line number, fields)).

    Every row is checked (column count, UTF-8, non-empty texts, known label) before it is yielded,
    so what an augmenter copies out is valid. The split (hence the layout) comes from the file name
    unless given; files under other names (train_aug.tsv) are read as train files."""
    spec = get_task(task) if isinstance(task, str) else task
    path = Path(path)
    split = split or _infer_split(spec, path)
    layout = spec.layout(split)
    bad = BadRows(path, skip_bad_rows)
    lines = _decoded_lines(path, bad)
    header = None
    if layout.has_header:
        first = next(lines, None)
        if first is None:
            raise DataError(path, 1, f"empty file; expected the {spec.name} header "
                                     f"({_tab_names(layout.columns)})")
        header = first[1].split("\t")
        _check_header(path, spec, layout, header)

    def rows() -> Iterator[tuple[int, list[str]]]:
        for line_no, text in lines:
            fields = text.split("\t")
            problem = _glue_row_problem(spec, layout, fields)
            if problem:
                bad.handle(line_no, problem)
            else:
                yield line_no, fields
        bad.report()

    return header, rows()


def _tab_names(columns: Sequence[str]) -> str:
    return " | ".join(columns)


def _check_header(path: Path, spec: TaskSpec, layout: Layout, header: list[str]) -> None:
    """The header must have the layout's columns; the ones read must carry their GLUE names."""
    if len(header) != len(layout.columns):
        raise DataError(path, 1, f"the header has {len(header)} columns, a {spec.name} file of this kind "
                                 f"has {len(layout.columns)} ({_tab_names(layout.columns)})")
    for i in (layout.text_a, layout.text_b, layout.label, layout.index):
        if i is not None and header[i].strip().lower() != layout.columns[i].lower():
            raise DataError(path, 1, f"column {i + 1} of the header is {header[i]!r}, expected "
                                     f"{layout.columns[i]!r} ({spec.name} columns: {_tab_names(layout.columns)})")


def _glue_row_problem(spec: TaskSpec, layout: Layout, fields: list[str]) -> str | None:
    """What is wrong with one row, or None."""
    if len(fields) != len(layout.columns):
        return (f"expected {len(layout.columns)} tab-separated columns ({_tab_names(layout.columns)}), "
                f"found {len(fields)}")
    for i in layout.text_columns:
        if not fields[i].strip():
            return f"empty text in column {layout.columns[i]!r}"
    if layout.label is not None:
        return _label_problem(spec, fields[layout.label], layout.columns[layout.label])
    return None


def _label_problem(spec: TaskSpec, value: str, column: str) -> str | None:
    if spec.labels is None:
        return None if _parse_score(value) is not None else f"score {value!r} in column {column!r} is not a number"
    if value.strip() not in spec.label2id:
        return f"unknown label {value!r} in column {column!r} ({spec.name} labels: {', '.join(spec.labels)})"
    return None


def _parse_score(value: Any) -> float | None:
    """A finite float, or None."""
    if isinstance(value, bool):
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if math.isfinite(score) else None


def read_glue_examples(path: str | Path, task: str | TaskSpec, split: str | None = None,
                       skip_bad_rows: bool = False) -> list[Example]:
    """All examples of a GLUE file (see read_glue_table for the checks)."""
    spec = get_task(task) if isinstance(task, str) else task
    split = split or _infer_split(spec, Path(path))
    layout = spec.layout(split)
    _, rows = read_glue_table(path, spec, split, skip_bad_rows)
    examples = []
    for k, (line_no, fields) in enumerate(rows):
        label = None
        if layout.label is not None:
            raw = fields[layout.label]
            label = _parse_score(raw) if spec.is_regression else raw.strip()
        examples.append(Example(
            text_a=fields[layout.text_a],
            text_b=None if layout.text_b is None else fields[layout.text_b],
            label=label,
            guid=fields[layout.index] if layout.index is not None else f"{split}-{k}",
            line=line_no))
    return examples


def glue_text_columns(task: str | TaskSpec, split: str = "train") -> tuple[int, ...]:
    """Indices of the text columns in a row of `split` (1 or 2): what an augmenter rewrites."""
    spec = get_task(task) if isinstance(task, str) else task
    return spec.layout(split).text_columns


def open_glue_output(path: str | Path, overwrite: bool = False) -> TextIO:
    """A file to write GLUE rows into: UTF-8, "\\n" line ends on every OS, never replacing one by accident."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; remove it or choose another output path")
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", encoding="utf-8", newline="\n")


def write_glue_row(f: TextIO, fields: Sequence[str]) -> None:
    """One row, tab-separated, quoting off as in GLUE. A tab or line break inside a field would
    shift the columns of every later reader, so it is refused."""
    for value in fields:
        if "\t" in value or "\n" in value or "\r" in value:
            raise ValueError(f"a GLUE field cannot hold a tab or line break: {value!r}")
    f.write("\t".join(fields) + "\n")


# ----------------------------------------------------------------------------------------------
# Users' own data: CSV, TSV, JSONL


@dataclass(frozen=True)
class Columns:
    """Which columns (CSV/TSV header names, JSONL keys) hold the texts and the label."""
    text_a: str = "text"
    text_b: str | None = None
    label: str = "label"


def detect_format(path: Path, file_format: str = "auto") -> str:
    if file_format != "auto":
        return file_format
    suffix = path.suffix.lower()
    formats = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
               ".ndjson": "jsonl"}
    if suffix not in formats:
        raise UserError(f"{path}: cannot tell the format from {suffix or 'no extension'!r}; "
                        f"give --file_format csv, tsv or jsonl")
    return formats[suffix]


def _table_records(path: Path, fmt: str, bad: BadRows) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, {column: value}) per record; a str in place of the dict is that row's problem."""
    if fmt == "jsonl":
        for line_no, text in _decoded_lines(path, bad):
            try:
                record = json.loads(text)
            except json.JSONDecodeError as e:
                yield line_no, f"not a JSON object: {e.msg}" if text.strip() else "empty line"
                continue
            yield line_no, record if isinstance(record, dict) else "not a JSON object"
        return
    if fmt == "tsv":  # plain tabs, quoting off, like GLUE
        rows: Iterable[tuple[int, list[str]]] = ((n, t.split("\t")) for n, t in _decoded_lines(path, bad))
    else:
        rows = _csv_rows(path)
    header: list[str] | None = None
    for line_no, fields in rows:
        if header is None:
            header = [name.strip() for name in fields]
            continue
        if len(fields) != len(header):
            yield line_no, f"expected {len(header)} columns ({', '.join(header)}), found {len(fields)}"
        else:
            yield line_no, dict(zip(header, fields))
    if header is None:
        raise DataError(path, 1, "empty file; expected a header line naming the columns")


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """CSV with standard quoting (a quoted field may span lines; its record gets its first line)."""
    _check_file(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        # A CSV record may span lines, so one bad byte cannot be skipped row by row.
        raise DataError(path, data[:e.start].count(b"\n") + 1, "not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    try:
        for fields in reader:
            yield start, fields
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(path, reader.line_num, f"bad CSV: {e}") from None


def read_custom_examples(path: str | Path, columns: Columns, spec: TaskSpec | None, split: str,
                         file_format: str = "auto", skip_bad_rows: bool = False) -> list[Example]:
    """Examples of a user's file. spec None: classification labels not known yet (the training
    file of a task whose labels come from the data), so any non-empty label is accepted."""
    path = Path(path)
    fmt = detect_format(path, file_format)
    bad = BadRows(path, skip_bad_rows)
    examples = []
    label_seen = None  # whether this file has the label column (test files may not)
    for line_no, record in _table_records(path, fmt, bad):
        if isinstance(record, str):
            bad.handle(line_no, record)
            continue
        if label_seen is None:
            _check_columns(path, line_no, record, columns, fmt, split)
            label_seen = columns.label in record
        problem, example = _custom_example(record, columns, spec, label_seen, len(examples), line_no)
        if problem:
            bad.handle(line_no, problem)
        else:
            examples.append(example)
    bad.report()
    return examples


def _check_columns(path: Path, line: int, record: dict, columns: Columns, fmt: str, split: str) -> None:
    """The first record names the columns; a wrong column flag is one error, not one per row."""
    wanted = [("--text_a_column", columns.text_a), ("--text_b_column", columns.text_b)]
    if not split.startswith("test"):
        wanted.append(("--label_column", columns.label))
    where = 1 if fmt != "jsonl" else line
    for flag, name in wanted:
        if name is not None and name not in record:
            raise DataError(path, where, f"no column {name!r} (columns: {', '.join(map(str, record))}); "
                                         f"name the right one with {flag}")


def _custom_example(record: dict, columns: Columns, spec: TaskSpec | None, has_label: bool, k: int,
                    line: int) -> tuple[str | None, Example | None]:
    """(problem, None) or (None, the example) for one record."""
    if columns.label not in record and has_label:
        return f"no {columns.label!r} key", None
    texts = []
    for name in (columns.text_a, columns.text_b):
        if name is None:
            texts.append(None)
            continue
        if name not in record:
            return f"no {name!r} key", None
        value = record[name]
        if not isinstance(value, str):
            return f"{name!r} is {type(value).__name__}, not text", None
        if not value.strip():
            return f"empty text in column {name!r}", None
        texts.append(value)
    label: str | float | None = None
    if has_label:
        raw = record[columns.label]
        if spec is not None and spec.is_regression:
            label = _parse_score(raw)
            if label is None:
                return f"score {raw!r} in column {columns.label!r} is not a number", None
        else:
            label = str(raw).strip() if raw is not None else ""
            if not label:
                return f"empty label in column {columns.label!r}", None
            if spec is not None and label not in spec.label2id:
                return (f"unknown label {label!r} in column {columns.label!r} "
                        f"(labels: {', '.join(spec.labels)})"), None
    return None, Example(texts[0], texts[1], label, str(k), line)


def _sorted_labels(labels: Iterable[str]) -> list[str]:
    """Labels found in a training file, in a fixed order: numerically when they are all integers."""
    labels = set(labels)
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


# ----------------------------------------------------------------------------------------------
# Finding the data: --data_dir, --glue_dir/TASK, or PaddleNLP's cache


def add_data_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data")
    g.add_argument("--task_name", default=None,
                   help=f"GLUE task ({', '.join(GLUE_TASKS)}; any case), or a name for your own data.")
    g.add_argument("--data_dir", default=None,
                   help="Folder with the task's GLUE files (train.tsv, dev.tsv, ...).")
    g.add_argument("--glue_dir", default=None,
                   help="Folder holding one folder per GLUE task (GLUE_DIR/SST-2/train.tsv, ...). Without "
                        "--data_dir or --glue_dir, PaddleNLP's dataset cache ($PPNLP_HOME/datasets/Glue, "
                        "default ~/.paddlenlp/datasets/Glue) is used.")
    g.add_argument("--train_file", default=None,
                   help="Training file: CSV, TSV or JSONL of your own, or for a GLUE task a file in that "
                        "task's GLUE format (e.g. train_aug.tsv from data_augmentation.py).")
    g.add_argument("--dev_file", default=None, help="Evaluation file (same formats as --train_file).")
    g.add_argument("--test_file", default=None, help="Unlabelled file to predict (same formats).")
    g.add_argument("--file_format", default="auto", choices=["auto", "glue", "csv", "tsv", "jsonl"],
                   help="Format of --*_file: by extension (auto), where .tsv with a GLUE task means "
                        "that task's GLUE layout; csv/tsv need a header line.")
    g.add_argument("--text_a_column", default="text", help="Column (or JSONL key) of the first text.")
    g.add_argument("--text_b_column", default=None, help="Column of the second text, for pair tasks.")
    g.add_argument("--label_column", default="label", help="Column of the label.")
    g.add_argument("--labels", default=None,
                   help="Comma-separated label list of your own data, in class-id order "
                        "(default: the labels of the training file, sorted).")
    g.add_argument("--regression", action="store_true",
                   help="Your own data has a numeric score to predict, not classes.")
    g.add_argument("--skip_bad_rows", action="store_true",
                   help="Leave out malformed rows (reported with their line numbers) instead of stopping.")


def paddlenlp_glue_cache() -> Path:
    """Where PaddleNLP's load_dataset('glue', ...) keeps the GLUE files."""
    home = Path(os.environ.get("PPNLP_HOME", Path.home() / ".paddlenlp")).expanduser()
    return home / "datasets" / "Glue"


def _task_subdir(root: Path, spec: TaskSpec) -> Path:
    """ROOT/SST-2, also found as ROOT/sst-2 or ROOT/SST2."""
    exact = root / spec.name
    if exact.is_dir() or not root.is_dir():
        return exact
    for child in sorted(root.iterdir()):
        if child.is_dir() and _normalize(child.name) == _normalize(spec.name):
            return child
    return exact


def resolve_glue_file(spec: TaskSpec, split: str, data_dir: str | None = None,
                      glue_dir: str | None = None) -> Path:
    """The file of one split: in --data_dir (or its TASK subfolder), --glue_dir/TASK, or the cache."""
    name = spec.files[split]
    if data_dir:
        root = Path(data_dir).expanduser()
        for folder in (root, _task_subdir(root, spec)):
            if (folder / name).is_file():
                return folder / name
        raise DataError(root / name, None, f"file not found (the {spec.name} {split} file; --data_dir)")
    if glue_dir:
        path = _task_subdir(Path(glue_dir).expanduser(), spec) / name
        if path.is_file():
            return path
        raise DataError(path, None, f"file not found (the {spec.name} {split} file; --glue_dir)")
    path = _task_subdir(paddlenlp_glue_cache(), spec) / name
    if path.is_file():
        return path
    raise UserError(f"no {spec.name} data: give --data_dir TASK_DIR or --glue_dir GLUE_DIR "
                    f"(looked for {name} in PaddleNLP's cache, {path.parent})")


def _file_flag(args: argparse.Namespace, split: str) -> str | None:
    kind = split.split("_")[0]  # dev_matched -> dev
    return getattr(args, f"{kind}_file", None) if kind in ("train", "dev", "test") else None


def load_task_data(args: argparse.Namespace, splits: Sequence[str] = ("train", "dev"),
                   labels: list[str] | None = None) -> tuple[TaskSpec, dict[str, list[Example]]]:
    """Read the splits the flags of add_data_args point at: (spec, {split: examples}).

    A GLUE task reads its files from --data_dir, --glue_dir/TASK or PaddleNLP's cache; --train_file
    (and --dev_file/--test_file) replace single files. Without a GLUE task name, the files are the
    user's own. MNLI's "dev" yields the keys dev_matched and dev_mismatched (unless --dev_file).
    `labels` (e.g. from a checkpoint's id2label) names the classes of own data read without a
    training file."""
    skip = getattr(args, "skip_bad_rows", False)
    if is_glue_task(args.task_name):
        spec = get_task(args.task_name)
        _check_glue_flags(args, spec)
        return spec, {split: examples for want in splits
                      for split, examples in _load_glue_split(args, spec, want, skip).items()}
    if args.task_name and not any(_file_flag(args, s) for s in ("train", "dev", "test")):
        get_task(args.task_name)  # raises: unknown task, and how to give one's own files
    return _load_custom(args, splits, labels, skip)


def _check_glue_flags(args: argparse.Namespace, spec: TaskSpec) -> None:
    given = getattr(args, "labels", None)
    if given and _split_labels(given) != spec.labels:
        raise UserError(f"{spec.name}'s labels are fixed ({', '.join(spec.labels or ['a score'])}); "
                        f"--labels is for your own data")
    if getattr(args, "regression", False) and not spec.is_regression:
        raise UserError(f"{spec.name} is a classification task; --regression is for your own data")


def _load_glue_split(args: argparse.Namespace, spec: TaskSpec, split: str, skip: bool) -> dict[str, list[Example]]:
    explicit = _file_flag(args, split)
    if explicit:
        path = Path(explicit).expanduser()
        fmt = args.file_format
        if fmt == "glue" or (fmt == "auto" and path.suffix.lower() == ".tsv"):
            return {split: read_glue_examples(path, spec, split, skip)}
        columns = Columns(args.text_a_column, args.text_b_column, args.label_column)
        return {split: read_custom_examples(path, columns, spec, split, fmt, skip)}
    return {s: read_glue_examples(resolve_glue_file(spec, s, args.data_dir, args.glue_dir), spec, s, skip)
            for s in spec.splits_for(split)}


def _split_labels(text: str) -> list[str]:
    return [label.strip() for label in text.split(",") if label.strip()]


def _load_custom(args: argparse.Namespace, splits: Sequence[str], labels: list[str] | None,
                 skip: bool) -> tuple[TaskSpec, dict[str, list[Example]]]:
    if args.data_dir or args.glue_dir:
        raise UserError("--data_dir/--glue_dir need a GLUE --task_name "
                        f"({', '.join(GLUE_TASKS)}); for your own data give --train_file/--dev_file")
    columns = Columns(args.text_a_column, args.text_b_column, args.label_column)
    paths = {}
    for split in splits:
        path = _file_flag(args, split)
        if not path:
            flag = f"--{split.split('_')[0]}_file"
            raise UserError(f"no {split} data: give {flag} (or a GLUE --task_name)")
        paths[split] = Path(path).expanduser()
    if getattr(args, "labels", None):
        labels = _split_labels(args.labels)
    spec = custom_task(args.task_name, None) if args.regression else None
    if spec is None and labels:
        spec = custom_task(args.task_name, labels)

    def read(split: str, spec: TaskSpec | None) -> list[Example]:
        return read_custom_examples(paths[split], columns, spec, split, args.file_format, skip)

    data = {}
    if spec is None:
        # Labels come from the data: the training file, or else the labelled files given.
        source = [s for s in splits if s == "train"] or [s for s in splits if not s.startswith("test")]
        if not source:
            raise UserError("the labels of your own data are unknown: give --labels (or a training file)")
        for split in source:
            data[split] = read(split, None)
        found = {e.label for split in source for e in data[split] if e.label is not None}
        if not found:
            raise UserError(f"no labelled rows in {paths[source[0]]}: cannot tell the classes")
        spec = custom_task(args.task_name, _sorted_labels(found))
    for split in splits:
        if split not in data:
            data[split] = read(split, spec)
    return spec, {split: data[split] for split in splits}


def dev_splits(data: dict[str, Any]) -> list[str]:
    """The evaluation splits among load_task_data's keys: ["dev"], or MNLI's matched and mismatched."""
    return [split for split in data if split.startswith("dev")]


# ----------------------------------------------------------------------------------------------
# Features and batches


class EncodedDataset:
    """Tokenized examples, stored flat (one array of all token ids plus offsets) to stay small.

    Item i is {"input_ids", "token_type_ids": int64 [len_i], "label": int64 or float32 scalar};
    test sets have no "label". `.lengths` holds every sequence length, for batch_indices."""

    def __init__(self, input_ids: list[list[int]], token_type_ids: list[list[int]],
                 labels: np.ndarray | None):
        self.lengths = np.fromiter(map(len, input_ids), dtype=np.int64, count=len(input_ids))
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        total = int(self.offsets[-1])
        self.ids = np.fromiter(itertools.chain.from_iterable(input_ids), dtype=np.int32, count=total)
        self.types = np.fromiter(itertools.chain.from_iterable(token_type_ids), dtype=np.int8, count=total)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        start, end = self.offsets[i], self.offsets[i + 1]
        item = {"input_ids": self.ids[start:end].astype(np.int64),
                "token_type_ids": self.types[start:end].astype(np.int64)}
        if self.labels is not None:
            item["label"] = self.labels[i]
        return item


def encode_labels(spec: TaskSpec, examples: Sequence[Example]) -> np.ndarray | None:
    """Label ids (int64) or scores (float32); None when no example has a label (a test set)."""
    if all(e.label is None for e in examples):
        return None
    if any(e.label is None for e in examples):
        missing = next(e for e in examples if e.label is None)
        raise ValueError(f"example {missing.guid} (line {missing.line}) has no label while others do")
    if spec.is_regression:
        return np.array([e.label for e in examples], dtype=np.float32)
    label2id = spec.label2id
    return np.array([label2id[e.label] for e in examples], dtype=np.int64)


def encode_examples(tokenizer: Any, examples: Sequence[Example], max_seq_length: int, spec: TaskSpec,
                    chunk_size: int = 4096) -> EncodedDataset:
    """Tokenize in batches (the fast tokenizer runs a whole chunk at once): [CLS] a [SEP] (b [SEP]),
    longest-first truncation to max_seq_length, no padding (collate pads per batch)."""
    input_ids: list[list[int]] = []
    token_type_ids: list[list[int]] = []
    pair = any(e.text_b is not None for e in examples)
    quiet = True if len(examples) < 20000 else None  # None: tqdm shows the bar on terminals only
    with tqdm(total=len(examples), desc="tokenizing", unit="ex", disable=quiet, leave=False) as bar:
        for start in range(0, len(examples), chunk_size):
            chunk = examples[start:start + chunk_size]
            texts_a = [e.text_a for e in chunk]
            texts_b = [e.text_b or "" for e in chunk] if pair else None
            encoded = tokenizer(texts_a, texts_b, max_seq_length=max_seq_length)
            input_ids.extend(encoded["input_ids"])
            token_type_ids.extend(encoded["token_type_ids"])
            bar.update(len(chunk))
    return EncodedDataset(input_ids, token_type_ids, encode_labels(spec, examples))


def collate(items: Sequence[dict[str, np.ndarray]], pad_token_id: int) -> dict[str, np.ndarray]:
    """Pad to the longest sequence of this batch (not max_seq_length): [B, L] int64 input_ids,
    token_type_ids, attention_mask (1 real, 0 pad); labels and other per-example values stacked."""
    longest = max(len(item["input_ids"]) for item in items)
    batch = {"input_ids": np.full((len(items), longest), pad_token_id, dtype=np.int64),
             "token_type_ids": np.zeros((len(items), longest), dtype=np.int64),
             "attention_mask": np.zeros((len(items), longest), dtype=np.int64)}
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        batch["input_ids"][row, :n] = item["input_ids"]
        batch["token_type_ids"][row, :n] = item["token_type_ids"]
        batch["attention_mask"][row, :n] = 1
    for key in items[0]:
        if key not in batch:
            batch[key] = np.stack([item[key] for item in items])
    return batch


def batch_indices(lengths: Sequence[int] | np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                  epoch: int = 0, bucket: bool = False, pool_batches: int = 50) -> list[list[int]]:
    """Example indices of every batch; the same (seed, epoch) gives the same batches. All examples
    are used (the last batch may be smaller).

    bucket=True groups sequences of similar length so less padding is computed: shuffled, then
    sorted by length within pools of `pool_batches` batches, then the batch order shuffled, so
    batches stay random while each is nearly uniform in length. Without shuffling, bucketing sorts
    the whole set by length (fast evaluation): the indices say where each prediction belongs."""
    lengths = np.asarray(lengths)
    n = len(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.arange(n)
    if bucket:
        pool = batch_size * pool_batches if shuffle else max(n, 1)
        order = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")]
                                for chunk in np.array_split(order, range(pool, n, pool))]) if n else order
    batches = [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]
    if bucket and shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


# ----------------------------------------------------------------------------------------------
# Predictions and GLUE submission files


def format_prediction(spec: TaskSpec, pred: Any) -> str:
    """A prediction as GLUE expects it: the label name, or the score with three decimals."""
    if spec.is_regression:
        return f"{float(pred):.3f}"
    return spec.labels[int(pred)]


def write_predictions(spec: TaskSpec, examples: Sequence[Example], preds: Sequence[Any] | np.ndarray,
                      path: str | Path, overwrite: bool = False) -> Path:
    """`index<TAB>prediction` per example, with a header, in the examples' order."""
    if len(examples) != len(preds):
        raise ValueError(f"{len(preds)} predictions for {len(examples)} examples")
    path = Path(path)
    with open_glue_output(path, overwrite) as f:
        write_glue_row(f, ["index", "prediction"])
        for example, pred in zip(examples, preds):
            write_glue_row(f, [example.guid, format_prediction(spec, pred)])
    return path


def write_glue_submission(spec: TaskSpec, examples: Sequence[Example], preds: Sequence[Any] | np.ndarray,
                          output_dir: str | Path, split: str = "test", overwrite: bool = False) -> Path:
    """OUTPUT_DIR/<GLUE name>.tsv for the GLUE server: SST-2.tsv, MNLI-m.tsv (split test_matched) ..."""
    if not spec.is_glue:
        raise UserError(f"{spec.name} is not a GLUE task; use write_predictions")
    names = spec.submission_files
    if split not in names:
        raise UserError(f"no GLUE submission file for {spec.name} split {split!r} (have: {', '.join(names)})")
    return write_predictions(spec, examples, preds, Path(output_dir) / names[split], overwrite)
