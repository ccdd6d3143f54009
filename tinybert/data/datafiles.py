"""Rows of data files, read and written: tab-separated files in a fixed column layout (GLUE's), JSON Lines
files in a fixed record layout (CLUE's), and users' CSV, TSV and JSON Lines.

    rows = open_table(Path("reviews.csv"), "csv", Columns("review", None, "stars"))
    for line, row in rows.read_numbered():      # row: a list of fields (a dict for JSONL)
        rows.texts(row), rows.label(row)
    out.write(rows.header_text() + rows.row_text(rows.with_text(row, 0, "new text")))

This is the one reader of every script (training, prediction, augmentation), so that one file reads
the same way everywhere:
- streamed line by line, UTF-8 checked per line (a BOM dropped), so every message has a line number;
- one row per line: a CSV field whose quote does not close on its own line is an error at that line
  (left open, the quote would swallow the rows after it);
- the header (CSV, TSV, the GLUE files that have one) is read and checked up front, names stripped;
- a bad row is a DataError naming file and line, unless skip_bad_rows: then it is left out and
  reported once the file is read (BadRows);
- an empty file, or a file with only a header, is an error, whoever reads it;
- rows are written back in their own format (header_text, row_text), for augmentation.

What a file holds is described as data, by the caller: Columns (a user's column names), Layout (where
the fields of a GLUE file sit), ClueLayout (which keys of a CLUE record make its texts), LabelRule (what
a label may be). This module knows no task: tasks.py says which layout and labels each task's files have,
and calls open_glue, open_clue or open_table; nothing here calls back.
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence, TextIO, Union

from tinybert.errors import DataError, UserError

Row = Union[list[str], dict[str, Any]]

UNCLOSED_QUOTE = ("unclosed quote: the field that opens on this line does not end on it "
                  "(texts must be one line; close the quote or remove the line break)")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
               ".ndjson": "jsonl"}


# ----------------------------------------------------------------------------------------------
# Bad rows, files and lines


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


def open_binary(path: Path) -> BinaryIO:
    """The file opened for reading, or a DataError naming it: missing, a folder, unreadable."""
    try:
        if not path.exists():
            raise DataError(path, None, "file not found")
        if path.is_dir():
            raise DataError(path, None, "is a folder, not a file")
        return open(path, "rb")
    except OSError as e:
        raise DataError(path, None, f"cannot read: {e.strerror or e}") from None


def _decode(raw: bytes, line_no: int) -> tuple[str | None, str | None]:
    """(text without its line end, None) or (None, what is wrong)."""
    if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):  # MRPC's files start with a BOM
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1})"
    return text.rstrip("\n").removesuffix("\r"), None


def decoded_lines(path: Path, bad: BadRows) -> Iterator[tuple[int, str]]:
    """(line number, text) per line, streamed; a line that is not UTF-8 goes to `bad`.

    Splitting bytes on b"\\n" (not text on every Unicode line break) keeps a row whole even when its
    text holds odd separators; a final line without newline (CoLA dev) is read like the others.
    The file is opened now, not at the first next(): a missing file is reported up front."""
    f = open_binary(path)

    def lines() -> Iterator[tuple[int, str]]:
        with f:
            for line_no, raw in enumerate(f, start=1):
                text, problem = _decode(raw, line_no)
                if problem:
                    bad.handle(line_no, problem)
                else:
                    yield line_no, text

    return lines()


def first_line(path: Path) -> str | None:
    """The first line (a header), strictly decoded; None for an empty file."""
    with open_binary(path) as f:
        raw = f.readline()
    if not raw:
        return None
    text, problem = _decode(raw, 1)
    if problem:
        raise DataError(path, 1, problem)
    return text


def _is_empty(path: Path) -> bool:
    with open_binary(path) as f:
        return not f.read(1)


def stream_lines(stream: TextIO | BinaryIO, name: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of a stream such as stdin: bytes checked as UTF-8 like a file's lines."""
    source = getattr(stream, "buffer", stream)
    for line_no, raw in enumerate(source, start=1):
        if isinstance(raw, str):
            yield line_no, (raw[1:] if line_no == 1 and raw.startswith("\ufeff") else raw).rstrip("\r\n")
            continue
        text, problem = _decode(raw, line_no)
        if problem:
            raise DataError(name, line_no, problem)
        yield line_no, text


def split_csv_line(text: str) -> tuple[list[str] | None, str | None]:
    """(fields, None) or (None, what is wrong) for one CSV line, with the csv module's quoting.

    A quoted field must end on its line: parsed with an empty line after it, a record that reaches
    into that line had its quote left open."""
    if '"' not in text and "\r" not in text:  # the common case, without the csv machinery
        return (text.split(",") if text else []), None
    reader = csv.reader((text, ""))
    try:
        fields = next(reader, [])
    except csv.Error as e:
        if "new-line character" in str(e):  # the csv module's words for a lone \r
            return None, "bad CSV: a carriage return (\\r) inside an unquoted field"
        return None, f"bad CSV: {e}"
    if reader.line_num > 1:
        return None, UNCLOSED_QUOTE
    return fields, None


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice is refused (json.loads would keep the last one silently)."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return record


def parse_json_line(text: str) -> tuple[dict | None, str | None]:
    """(object, None) or (None, what is wrong) for one line of a JSON Lines file (users' or CLUE's)."""
    if not text.strip():
        return None, "empty line"
    try:
        record = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        return None, f"not a JSON object: {e.msg}"
    except _DuplicateKey as e:
        return None, f"the key {e.key!r} appears twice in one object (which value is meant?)"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    return record, None


# ----------------------------------------------------------------------------------------------
# What a file holds, described by the caller (tasks.py for the tasks' files)


@dataclass(frozen=True)
class Columns:
    """Which columns (CSV/TSV header names, JSONL keys) hold the texts and the label."""
    text_a: str = "text"
    text_b: str | None = None
    label: str = "label"


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
class ClueLayout:
    """Where the fields sit in one CLUE JSON-lines file and how they become text_a and text_b, by the
    rules of PaddleNLP's CLUE fine-tuning example (examples/benchmark/clue/classification/
    run_clue_classifier.py, convert_example); tasks.py says which task has which:
    - kind "text": the keys hold the texts as they are;
    - kind "keywords": text_a is the keyword list under `text_a` joined with spaces, text_b the text
      under `text_b`;
    - kind "wsc" (a Winograd schema): one text, the one under `text_a` with the two spans of its
      "target" marked: the candidate noun (span1_text at character span1_index) between underscores,
      the pronoun (span2_text at span2_index) in square brackets, e.g. 这时候放在_床_上枕头旁边的手机响了，
      ...现在[它]突然响了。 Each span must be found at its index (PaddleNLP asserts it; here it is a bad row).
    `index`: the keys that hold an example's id (the first one present), repeated in submission files.
    `skip_labels`: labels whose rows are left out, not errors (the NLI tasks' "-")."""
    text_a: str
    text_b: str | None = None
    label: str | None = "label"
    index: tuple[str, ...] = ("id", "idx")
    kind: str = "text"
    skip_labels: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys the texts are made from."""
        extra = ("target",) if self.kind == "wsc" else ()
        return tuple(k for k in (self.text_a, self.text_b) if k is not None) + extra

    @property
    def rewritable(self) -> bool:
        """Whether each text is one field as it is (augmentation can write a new text back)."""
        return self.kind == "text"

    def texts(self, record: dict) -> tuple[list[str] | None, str | None]:
        """([text_a] or [text_a, text_b], None), or (None, what is wrong with the record)."""
        for key in self.keys:
            if key not in record:
                return None, f"no {key!r} key"
        if self.kind == "keywords":
            words = record[self.text_a]
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                return None, f"{self.text_a!r} is {type(words).__name__}, not a list of texts"
            texts = [" ".join(words), record[self.text_b]]
        elif self.kind == "wsc":
            text, problem = _wsc_text(record[self.text_a], record["target"], self.text_a)
            if problem:
                return None, problem
            texts = [text]
        else:
            texts = [record[k] for k in (self.text_a, self.text_b) if k is not None]
        for key, text in zip((self.text_a, self.text_b), texts):
            problem = text_problem(text, key)
            if problem:
                return None, problem
        return texts, None


def _wsc_text(text: Any, target: Any, key: str) -> tuple[str | None, str | None]:
    """A Winograd schema's one text: `text` with the candidate (span1) between underscores and the pronoun
    (span2) in square brackets, the marks inserted exactly where PaddleNLP's convert_example inserts them."""
    problem = text_problem(text, key)
    if problem:
        return None, problem
    if not isinstance(target, dict):
        return None, (f"'target' is {type(target).__name__}, not an object "
                      f"(span1_text, span1_index, span2_text, span2_index)")
    spans = []
    for n in (1, 2):
        span, at = target.get(f"span{n}_text"), target.get(f"span{n}_index")
        if not isinstance(span, str) or not span:
            return None, f"target has no span{n}_text"
        if not isinstance(at, int) or isinstance(at, bool) or at < 0:
            return None, f"target's span{n}_index is {at!r}, not a character position"
        if text[at:at + len(span)] != span:
            return None, f"target's span{n}_text {span!r} is not at span{n}_index {at} of {key!r}"
        spans.append((span, at))
    (query, q), (pronoun, p) = spans
    chars = list(text)
    if p > q:  # the candidate comes first: mark it, then the pronoun (2 characters further on)
        chars.insert(q, "_")
        chars.insert(q + len(query) + 1, "_")
        chars.insert(p + 2, "[")
        chars.insert(p + len(pronoun) + 3, "]")
    else:
        chars.insert(p, "[")
        chars.insert(p + len(pronoun) + 1, "]")
        chars.insert(q + 2, "_")
        chars.insert(q + len(query) + 3, "_")
    return "".join(chars), None


@dataclass(frozen=True)
class LabelRule:
    """What a label column may hold: a finite number (regression), else non-empty text that is one
    of `names` when those are known (None: the labels come from the data). `task` names the label
    list in messages ("SST-2 labels: 0, 1")."""
    names: tuple[str, ...] | None = None
    regression: bool = False
    task: str | None = None


def parse_score(value: Any) -> float | None:
    """A finite float, or None."""
    if isinstance(value, bool):
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if math.isfinite(score) else None


def label_text(value: Any) -> str | None:
    """A class label as text, by one rule for every file: text as written (stripped); a JSON number that
    is whole is its integer text, so 1, 1.0 and "1" are one class ("1"), while the text "1.0" stays
    "1.0"; another number as Python writes it (0.5); null is an empty label; None for NaN or inf."""
    if value is None:
        return ""
    if isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def read_label(value: Any, column: str, rule: LabelRule) -> tuple[str | float | None, str | None]:
    """(label, None), or (None, what is wrong with it)."""
    if rule.regression:
        score = parse_score(value)
        if score is None:
            return None, f"score {value!r} in column {column!r} is not a number"
        return score, None
    label = label_text(value)
    if label is None:
        return None, f"label {value!r} in column {column!r} is not a class name (a non-finite number)"
    if not label:
        return None, f"empty label in column {column!r}"
    if rule.names is not None and label not in rule.names:
        owner = f"{rule.task} labels" if rule.task else "labels"
        return None, f"unknown label {label!r} in column {column!r} ({owner}: {', '.join(rule.names)})"
    return label, None


def text_problem(value: Any, name: str) -> str | None:
    """What is wrong with a text field (not text, or blank), or None: the rule of every reader."""
    if not isinstance(value, str):
        return f"{name!r} is {type(value).__name__}, not text"
    if not value.strip():
        return f"empty text in column {name!r}"
    return None


def detect_format(path: Path, file_format: str = "auto") -> str:
    """csv, tsv or jsonl: the one given, or by the file's extension."""
    if file_format != "auto":
        return file_format
    suffix = path.suffix.lower()
    if suffix not in _EXTENSIONS:
        raise UserError(f"{path}: cannot tell the format from {suffix or 'no extension'!r}; "
                        f"give --file_format csv, tsv or jsonl")
    return _EXTENSIONS[suffix]


# ----------------------------------------------------------------------------------------------
# Opening a file: header and emptiness checked now, rows as they are read


def open_glue(path: str | Path, task: str, layout: Layout, labels: LabelRule,
              skip_bad_rows: bool = False) -> GlueRows:
    """A GLUE file's rows: header checked now, every row checked (columns, UTF-8, texts, label) as read."""
    return GlueRows(Path(path), task, layout, labels, skip_bad_rows)


def open_clue(path: str | Path, task: str, layout: ClueLayout, labels: LabelRule,
              skip_bad_rows: bool = False) -> ClueRows:
    """A CLUE file's rows: every record checked (JSON, keys, texts, label) as it is read."""
    return ClueRows(Path(path), task, layout, labels, skip_bad_rows)


def open_table(path: str | Path, fmt: str, columns: Columns, labels: LabelRule = LabelRule(),
               need_label: bool = True, skip_bad_rows: bool = False) -> Rows:
    """A user's CSV, TSV or JSONL file. need_label: the label column must be there (not in test files);
    when it is there, every row's label is checked by `labels`."""
    path = Path(path)
    if fmt == "jsonl":
        return JsonlRows(path, columns, labels, need_label, skip_bad_rows)
    if fmt in ("csv", "tsv"):
        return TableRows(path, fmt, columns, labels, need_label, skip_bad_rows)
    raise ValueError(f"not a table format: {fmt!r}")


class Rows:
    """A data file's rows in its own format: read (as often as needed), checked, and written back.

    A row is its list of fields (GLUE, CSV, TSV) or its object (JSONL). `text_fields` are the
    indices or keys of its texts, `label_key` of its label (None: no label column), `id_key` of
    the example id (GLUE files with an index column)."""

    fmt = ""

    def __init__(self, path: Path, skip_bad_rows: bool = False):
        self.path, self.skip_bad_rows = Path(path), skip_bad_rows
        self.header: list[str] | None = None
        self.text_fields: list[Any] = []
        self.label_key: Any = None
        self.id_key: Any = None
        self.label_rule = LabelRule()
        self._reported = False

    # -- reading
    def read(self) -> Iterator[Row]:
        """Every good row, from the start of the file."""
        return (row for _, row in self.read_numbered())

    def read_numbered(self) -> Iterator[tuple[int, Row]]:
        """(line number, row) for every good row, from the start of the file."""
        bad = BadRows(self.path, self.skip_bad_rows)
        return self._rows(decoded_lines(self.path, bad), bad)

    def _rows(self, lines: Iterator[tuple[int, str]], bad: BadRows) -> Iterator[tuple[int, Row]]:
        good, left_out = 0, 0
        for line_no, text in lines:
            if line_no == 1 and self.header is not None:
                continue
            row, problem = self._parse(line_no, text)
            if problem is None and self._left_out(row):
                left_out += 1
                continue
            if problem is None:
                problem = self._problem(row)
            if problem:
                bad.handle(line_no, problem)
                continue
            good += 1
            yield line_no, row
        if not self._reported:  # once, though augmentation reads the file twice
            bad.report()
            if left_out:
                print(f"note: {self.path}: left out {left_out} rows {self._left_out_why()}", file=sys.stderr)
            self._reported = True
        if not good:
            raise DataError(self.path, None, self._no_rows(bad, left_out))

    def _no_rows(self, bad: BadRows, left_out: int = 0) -> str:
        if bad.lines and left_out:
            return (f"no data rows: {len(bad.lines)} rows are bad (--skip_bad_rows) and {left_out} left out "
                    f"({self._left_out_why()})")
        if bad.lines:
            return f"no data rows: all {len(bad.lines)} rows are bad (--skip_bad_rows)"
        if left_out:
            return f"no data rows: all {left_out} rows are left out ({self._left_out_why()})"
        return "no data rows (only a header)" if self.header is not None else "empty file"

    def _left_out(self, row: Any) -> bool:
        """Rows the task's references leave out by design (not bad rows): CLUE's NLI rows labelled "-"."""
        return False

    def _left_out_why(self) -> str:
        return ""

    def _parse(self, line_no: int, text: str) -> tuple[Any, str | None]:
        raise NotImplementedError

    def _problem(self, row: Any) -> str | None:
        raise NotImplementedError

    def _label_problem(self, value: Any, column: str) -> str | None:
        return read_label(value, column, self.label_rule)[1]

    # -- values
    def texts(self, row: Row) -> list[str]:
        return [row[k] for k in self.text_fields]

    def example_id(self, row: Row) -> str | None:
        """The row's own id (a GLUE index column, a CLUE record's "id"), or None: then it is numbered."""
        return None if self.id_key is None else row[self.id_key]

    def label(self, row: Row) -> str | float | None:
        """The row's label: text, or a float for regression; None without a label column."""
        if self.label_key is None:
            return None
        return read_label(row[self.label_key], str(self.label_key), self.label_rule)[0]

    # -- writing
    def with_text(self, row: Row, side: int, text: str) -> Row:
        """A copy of the row with text number `side` replaced; everything else as it was."""
        new = dict(row) if isinstance(row, dict) else list(row)
        new[self.text_fields[side]] = text
        return new

    def header_text(self) -> str:
        return "" if self.header is None else self.row_text(self.header)

    def row_text(self, row: Row) -> str:
        return tab_line(row)


class GlueRows(Rows):
    """A GLUE task's TSV file in one layout: tab-separated, quoting off, the task's header (or none)."""

    fmt = "glue"

    def __init__(self, path: Path, task: str, layout: Layout, labels: LabelRule, skip_bad_rows: bool = False):
        super().__init__(path, skip_bad_rows)
        self.task, self.layout, self.label_rule = task, layout, labels
        self.text_fields = list(layout.text_columns)
        self.label_key, self.id_key = layout.label, layout.index
        names = " | ".join(layout.columns)
        if layout.has_header:
            first = first_line(self.path)
            if first is None:
                raise DataError(self.path, None, f"empty file; expected the {task} header ({names})")
            self.header = first.split("\t")
            self._check_header()
        elif _is_empty(self.path):
            raise DataError(self.path, None, "empty file")

    def _check_header(self) -> None:
        """The header must have the layout's columns; the ones read must carry their GLUE names."""
        columns, header = self.layout.columns, self.header
        names = " | ".join(columns)
        if len(header) != len(columns):
            raise DataError(self.path, 1, f"the header has {len(header)} columns, a {self.task} file of this "
                                          f"kind has {len(columns)} ({names})")
        layout = self.layout
        for i in (layout.text_a, layout.text_b, layout.label, layout.index):
            if i is not None and header[i].strip().lower() != columns[i].lower():
                raise DataError(self.path, 1, f"column {i + 1} of the header is {header[i]!r}, expected "
                                              f"{columns[i]!r} ({self.task} columns: {names})")

    def _parse(self, line_no: int, text: str) -> tuple[list[str], None]:
        return text.split("\t"), None

    def _problem(self, fields: list[str]) -> str | None:
        columns = self.layout.columns
        if len(fields) != len(columns):
            return f"expected {len(columns)} tab-separated columns ({' | '.join(columns)}), found {len(fields)}"
        for i in self.text_fields:
            if not fields[i].strip():
                return f"empty text in column {columns[i]!r}"
        if self.label_key is not None:
            return self._label_problem(fields[self.label_key], columns[self.label_key])
        return None


def _wanted_columns(columns: Columns, need_label: bool) -> list[tuple[str, str]]:
    """(flag, column) pairs a file must have."""
    wanted = [("--text_a_column", columns.text_a), ("--text_b_column", columns.text_b)]
    if need_label:
        wanted.append(("--label_column", columns.label))
    return [(flag, name) for flag, name in wanted if name is not None]


def _check_columns(path: Path, line: int, have: Sequence[Any], wanted: list[tuple[str, str]]) -> None:
    """The first record names the columns; a wrong column flag is one error, not one per row."""
    for flag, name in wanted:
        if name not in have:
            raise DataError(path, line, f"no column {name!r} (columns: {', '.join(map(str, have))}); "
                                        f"name the right one with {flag}")


class TableRows(Rows):
    """A user's CSV (standard quoting, one row per line) or TSV (tabs, quoting off) with a header."""

    def __init__(self, path: Path, fmt: str, columns: Columns, labels: LabelRule, need_label: bool = True,
                 skip_bad_rows: bool = False):
        super().__init__(path, skip_bad_rows)
        self.fmt, self.label_rule = fmt, labels
        first = first_line(self.path)
        if first is None:
            raise DataError(self.path, None, "empty file; expected a header line naming the columns")
        header, problem = self._parse(1, first)
        if problem:
            raise DataError(self.path, 1, problem)
        self.header = header
        self.names = [name.strip() for name in header]
        _check_columns(self.path, 1, self.names, _wanted_columns(columns, need_label))
        self.text_fields = [self.names.index(name) for name in (columns.text_a, columns.text_b) if name is not None]
        self.label_key = self.names.index(columns.label) if columns.label in self.names else None

    def _parse(self, line_no: int, text: str) -> tuple[list[str] | None, str | None]:
        if self.fmt == "csv":
            return split_csv_line(text)
        return text.split("\t"), None

    def _problem(self, fields: list[str]) -> str | None:
        if len(fields) != len(self.names):
            return f"expected {len(self.names)} columns ({', '.join(self.names)}), found {len(fields)}"
        for i in self.text_fields:
            problem = text_problem(fields[i], self.names[i])
            if problem:
                return problem
        if self.label_key is not None:
            return self._label_problem(fields[self.label_key], self.names[self.label_key])
        return None

    def row_text(self, row: list[str]) -> str:
        return csv_line(row) if self.fmt == "csv" else tab_line(row)


class JsonlRows(Rows):
    """A user's JSON Lines file: one object per line. The first object decides whether the label key
    is there (test files may lack it); written back, an object keeps its other keys as they were."""

    fmt = "jsonl"

    def __init__(self, path: Path, columns: Columns, labels: LabelRule, need_label: bool = True,
                 skip_bad_rows: bool = False):
        super().__init__(path, skip_bad_rows)
        self.columns, self.label_rule = columns, labels
        self.wanted = _wanted_columns(columns, need_label)
        self.text_fields = [name for name in (columns.text_a, columns.text_b) if name is not None]
        self._first_seen = False
        if _is_empty(self.path):
            raise DataError(self.path, None, "empty file")

    def read_numbered(self) -> Iterator[tuple[int, Row]]:
        self._first_seen = False
        return super().read_numbered()

    def _parse(self, line_no: int, text: str) -> tuple[dict | None, str | None]:
        record, problem = parse_json_line(text)
        if problem:
            return None, problem
        if not self._first_seen:
            _check_columns(self.path, line_no, list(record), self.wanted)
            self.label_key = self.columns.label if self.columns.label in record else None
            self._first_seen = True
        return record, None

    def _problem(self, record: dict) -> str | None:
        if self.label_key is not None and self.label_key not in record:
            return f"no {self.label_key!r} key"
        for name in self.text_fields:
            if name not in record:
                return f"no {name!r} key"
            problem = text_problem(record[name], name)
            if problem:
                return problem
        if self.label_key is not None:
            return self._label_problem(record[self.label_key], self.label_key)
        return None

    def row_text(self, row: dict) -> str:
        return json.dumps(row, ensure_ascii=False) + "\n"


class ClueRows(Rows):
    """A CLUE task's JSON Lines file (train.json, dev.json, test.json, ...): one object per line, read by
    the rules of every JSONL file (UTF-8 per line, an object per line, a blank line is a bad row), each
    record checked against the task's ClueLayout: its keys, the texts they make, its label. Rows with a
    label the layout leaves out (OCNLI's and CMNLI's "-") are not bad rows: they are left out and counted."""

    fmt = "clue"

    def __init__(self, path: Path, task: str, layout: ClueLayout, labels: LabelRule, skip_bad_rows: bool = False):
        super().__init__(path, skip_bad_rows)
        self.task, self.layout, self.label_rule = task, layout, labels
        self.text_fields = [key for key in (layout.text_a, layout.text_b) if key is not None]
        self.label_key = layout.label
        if _is_empty(self.path):
            raise DataError(self.path, None, "empty file")

    def _parse(self, line_no: int, text: str) -> tuple[dict | None, str | None]:
        return parse_json_line(text)

    def _left_out(self, record: dict) -> bool:
        return self.label_key is not None and record.get(self.label_key) in self.layout.skip_labels

    def _left_out_why(self) -> str:
        labels = ", ".join(repr(label) for label in self.layout.skip_labels)
        return f"labelled {labels} (annotators did not agree), as PaddleNLP's CLUE reader does"

    def _problem(self, record: dict) -> str | None:
        problem = self.layout.texts(record)[1]
        if problem:
            return problem
        if self.label_key is not None:
            if self.label_key not in record:
                return f"no {self.label_key!r} key"
            return self._label_problem(record[self.label_key], self.label_key)
        return None

    def texts(self, row: dict) -> list[str]:
        return self.layout.texts(row)[0]

    def example_id(self, row: dict) -> str | None:
        for key in self.layout.index:
            if key in row:
                return str(row[key])
        return None

    def with_text(self, row: dict, side: int, text: str) -> dict:
        if not self.layout.rewritable:
            raise UserError(f"{self.path}: {self.task}'s texts are made from several fields "
                            f"({', '.join(self.layout.keys)}), so they cannot be rewritten one by one")
        return super().with_text(row, side, text)

    def row_text(self, row: dict) -> str:
        return json.dumps(row, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------------------------
# Writing rows


def tab_line(fields: Sequence[str]) -> str:
    """One GLUE/TSV row: tab-separated, quoting off. A tab or line break inside a field would shift
    the columns of every later reader, so it is refused."""
    for value in fields:
        if "\t" in value or "\n" in value or "\r" in value:
            raise ValueError(f"a tab-separated field cannot hold a tab or line break: {value!r}")
    return "\t".join(fields) + "\n"


def csv_line(fields: Sequence[str]) -> str:
    """One CSV row, quoted where needed. Line breaks are refused: the reader takes one row per line."""
    for value in fields:
        if "\n" in value or "\r" in value:
            raise ValueError(f"a CSV field cannot hold a line break: {value!r}")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue()


def refuse_existing(path: Path, overwrite: bool) -> None:
    """An output file is never replaced by accident."""
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; remove it or choose another output path")


def open_output(path: str | Path, overwrite: bool = False) -> TextIO:
    """A file to write rows into: UTF-8, "\\n" line ends on every OS, never replacing one by accident."""
    path = Path(path)
    refuse_existing(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", encoding="utf-8", newline="\n")
