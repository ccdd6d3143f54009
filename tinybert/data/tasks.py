"""Tasks: the nine GLUE tasks and the seven CLUE classification tasks (labels, main metric, files and
layouts), users' own tasks, finding and reading a task's data into Examples, and submission files.

    config = settings.from_args(DataConfig, args)        # flags from settings.add_flags(parser, DataConfig)
    spec, data = load_task_data(config, splits=("train", "dev"))
    train = features.encode_examples(tokenizer, data["train"], 128, spec)

Reading one file is a straight path down: load_task_data -> split_paths (which file holds a split) ->
read_examples -> open_data_file (which format: resolve_format; which layout and labels: task_rows or
own_rows) -> datafiles.open_glue / open_clue / open_table (the one reader, the same rules for every
script) -> examples_from (rows into Examples). datafiles knows no task; this module describes each
task's files to it (datafiles.Layout, ClueLayout, LabelRule). MNLI's dev and test sets come in two
files each: asking for "dev" gives "dev_matched" and "dev_mismatched" (see dev_splits()). CLUE's files
are JSON Lines (train.json, dev.json, test.json), each task with its own keys (its ClueLayout).
"""
from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from tinybert.data import datafiles, sources
from tinybert.data.datafiles import ClueLayout, Columns, LabelRule, Layout
from tinybert.errors import DataError, UserError
from tinybert.settings import setting

# The one table of main metrics: it picks OUTPUT_DIR/best_model. For MRPC/QQP and STS-B the combined
# scores (mean of accuracy and F1; mean of Pearson and Spearman) so that neither half is traded away;
# MNLI's "acc" is the matched dev set's accuracy (the mismatched one is reported as "acc_mm").
# metrics.compute_metrics computes the metric family a task's main metric names.
MAIN_METRIC: dict[str, str] = {
    "CoLA": "mcc",
    "SST-2": "acc",
    "MRPC": "acc_and_f1",
    "STS-B": "corr",
    "QQP": "acc_and_f1",
    "MNLI": "acc",
    "QNLI": "acc",
    "RTE": "acc",
    "WNLI": "acc",
}
# CLUE's classification tasks are all scored by accuracy (CLUE's leaderboard; METRIC_CLASSES of PaddleNLP's
# examples/benchmark/clue/classification/run_clue_classifier.py).
CLUE_MAIN_METRIC = "acc"
# Users' own data: accuracy for classification, mean correlation for regression.
CUSTOM_MAIN_METRIC = {"classification": "acc", "regression": "corr"}

# ----------------------------------------------------------------------------------------------
# The GLUE tasks


@dataclass(frozen=True)
class TaskSpec:
    """One task: its label list (None = regression), main metric, files and layouts (GLUE's Layout,
    CLUE's ClueLayout), and the benchmark it belongs to ("GLUE", "CLUE").

    Users' own data get a TaskSpec too (benchmark None, no files or layouts: their columns come
    from the command-line flags)."""
    name: str
    labels: list[str] | None
    main_metric: str
    files: dict[str, str] = field(default_factory=dict)  # split -> file name in the task folder
    layouts: dict[str, Layout | ClueLayout] = field(default_factory=dict)  # split -> its layout
    submission_files: dict[str, str] = field(default_factory=dict)  # test split -> the benchmark's file name
    benchmark: str | None = "GLUE"
    aliases: tuple[str, ...] = ()  # other names of the task (and of its folder): CLUEWSC for CLUEWSC2020

    @property
    def is_glue(self) -> bool:
        return self.benchmark == "GLUE"

    @property
    def is_clue(self) -> bool:
        return self.benchmark == "CLUE"

    @property
    def is_benchmark(self) -> bool:
        """A GLUE or CLUE task (fixed labels, files, metric, submission format), not one's own data."""
        return self.benchmark is not None

    @property
    def cache_folder(self) -> str:
        """The task's folder in PaddleNLP's dataset cache: Glue/SST-2, Clue/afqmc_public (the folder
        CLUE's afqmc_public.zip unpacks to)."""
        return f"{self.name.lower()}_public" if self.is_clue else self.name

    @property
    def folder_names(self) -> tuple[str, ...]:
        """Names the task's folder goes by in a benchmark folder (any case, with or without - and _)."""
        return tuple(dict.fromkeys((self.name, self.cache_folder) + self.aliases))

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

    def layout(self, split: str) -> Layout | ClueLayout:
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

# ----------------------------------------------------------------------------------------------
# The CLUE classification tasks


def _clue_task(name: str, labels: list[str], layout: ClueLayout, submission: str, train_file: str = "train.json",
               v10_submission: str | None = None, aliases: tuple[str, ...] = ()) -> TaskSpec:
    """A CLUE task: train/dev/test .json files (and CLUE 1.0's test1.0.json for TNEWS and CLUEWSC2020,
    which PaddleNLP also reads); the test files have no label."""
    test = dataclasses.replace(layout, label=None, skip_labels=())
    files = {"train": train_file, "dev": "dev.json", "test": "test.json"}
    layouts = {"train": layout, "dev": layout, "test": test}
    submissions = {"test": submission}
    if v10_submission:
        files["test1.0"], layouts["test1.0"], submissions["test1.0"] = "test1.0.json", test, v10_submission
    return TaskSpec(name=name, labels=labels, main_metric=CLUE_MAIN_METRIC, files=files, layouts=layouts,
                    submission_files=submissions, benchmark="CLUE", aliases=aliases)


# AFQMC, OCNLI and CMNLI: sentence1 / sentence2; TNEWS and IFLYTEK: sentence; CSL: keywords and abstract;
# CLUEWSC2020: a Winograd schema (its text with the spans of its "target" marked).
_PAIR = ClueLayout("sentence1", "sentence2")
_SENTENCE = ClueLayout("sentence")
_NLI_CLUE = ClueLayout("sentence1", "sentence2", skip_labels=("-",))

# Label lists in PaddleNLP's order (paddlenlp/datasets/clue.py, Clue.BUILDER_CONFIGS[task]["labels"]): a
# checkpoint fine-tuned with PaddleNLP numbers its outputs this way. OCNLI and CMNLI differ from each other.
# Files: the folders of CLUE's <task>_public.zip (also PaddleNLP's cache, $PPNLP_HOME/datasets/Clue/<task>_public);
# OCNLI's training file is train.50k.json. Submission names: CLUE 1.1's, as PaddleNLP's run_clue_classifier.py
# --do_predict writes them ({"id": ..., "label": ...} per line).
TNEWS_LABELS = ["100", "101", "102", "103", "104", "106", "107", "108", "109", "110", "112", "113", "114", "115",
                "116"]
CLUE_TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in [
    _clue_task("AFQMC", ["0", "1"], _PAIR, "afqmc_predict.json"),
    _clue_task("TNEWS", TNEWS_LABELS, _SENTENCE, "tnews11_predict.json", v10_submission="tnews10_predict.json"),
    _clue_task("IFLYTEK", [str(i) for i in range(119)], _SENTENCE, "iflytek_predict.json"),
    _clue_task("OCNLI", ["entailment", "contradiction", "neutral"], _NLI_CLUE, "ocnli_50k_predict.json",
               train_file="train.50k.json"),
    _clue_task("CMNLI", ["contradiction", "entailment", "neutral"], _NLI_CLUE, "cmnli_predict.json"),
    _clue_task("CLUEWSC2020", ["true", "false"], ClueLayout("text", kind="wsc"), "cluewsc11_predict.json",
               v10_submission="cluewsc10_predict.json", aliases=("CLUEWSC",)),
    _clue_task("CSL", ["0", "1"], ClueLayout("keyword", "abst", kind="keywords"), "csl_predict.json"),
]}
# Every named task, GLUE's then CLUE's.
TASKS: dict[str, TaskSpec] = {**GLUE_TASKS, **CLUE_TASKS}


def _normalize(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _find_task(name: str | None) -> TaskSpec | None:
    if name is None:
        return None
    wanted = _normalize(name)
    for spec in TASKS.values():
        if wanted in {_normalize(n) for n in (spec.name,) + spec.aliases}:
            return spec
    return None


def get_task(name: str) -> TaskSpec:
    """A GLUE or CLUE task by name, any case, with or without - and _: sst-2, SST-2, sst2; afqmc, AFQMC;
    cluewsc2020, CLUEWSC."""
    spec = _find_task(name)
    if spec is None:
        raise UserError(f"unknown task {name!r}: GLUE tasks are {', '.join(GLUE_TASKS)}; CLUE tasks are "
                        f"{', '.join(CLUE_TASKS)} (for your own data give --train_file/--dev_file)")
    return spec


def is_task(name: str | None) -> bool:
    """Whether `name` is a GLUE or CLUE task."""
    return _find_task(name) is not None


def is_glue_task(name: str | None) -> bool:
    """Whether `name` is one of the nine GLUE tasks (is_task: GLUE or CLUE)."""
    spec = _find_task(name)
    return spec is not None and spec.is_glue


def custom_task(name: str | None, labels: list[str] | None) -> TaskSpec:
    """A user's own task: classification over `labels`, or regression when labels is None."""
    kind = "regression" if labels is None else "classification"
    return TaskSpec(name=name or "custom", labels=labels, main_metric=CUSTOM_MAIN_METRIC[kind],
                    benchmark=None)


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
# Finding the data: --data_dir, --glue_dir/TASK (--clue_dir/TASK), or PaddleNLP's cache

# --file_format's values besides auto (a CLUE task's own layout is chosen by auto only).
FORMATS = ("glue", "csv", "tsv", "jsonl")


@dataclass(frozen=True)
class DataConfig:
    """Where a script's data is and how to read it. Each field is also the data flag of every script that
    reads data (settings.py; a script leaves out the ones it does not read with add_flags(skip=...)), so
    that no library function reads an argparse Namespace; it is checked when built."""
    task_name: str | None = setting(
        None, "A GLUE or CLUE task (SST-2, MNLI, AFQMC, ...; any case), or a name for your own data.", group="data")
    data_dir: str | None = setting(
        None, "The task's folder (GLUE: train.tsv, dev.tsv, ...; CLUE: train.json, ...).", group="data")
    # --clue_dir is the same flag: one folder per task of either benchmark.
    glue_dir: str | None = setting(
        None, "Folder of one folder per task (GLUE_DIR/SST-2/train.tsv); without it or --data_dir, PaddleNLP's "
              "dataset cache (downloaded there on first use).",
        aliases=("--clue_dir",), group="data")
    # Single files replacing a split's: one's own data, or a task's file in its own format (train_aug.tsv).
    train_file: str | None = setting(
        None, "Training file: your own CSV, TSV or JSONL, or a file in the task's format (train_aug.tsv).",
        group="data")
    dev_file: str | None = setting(None, "Evaluation file (same formats as --train_file).", group="data")
    test_file: str | None = setting(None, "Unlabelled file to predict (same formats).", group="data")
    file_format: str = setting(
        "auto", "Format of --*_file (auto: by extension, in the task's layout for a GLUE or CLUE task; csv/tsv "
                "need a header line).",
        choices=("auto", *FORMATS), group="data")
    text_a_column: str = setting("text", "Column (or JSONL key) of the first text.", group="data")
    text_b_column: str | None = setting(None, "Column of the second text, for pair tasks.", group="data")
    label_column: str = setting("label", "Column of the label.", group="data")
    labels: list[str] | None = setting(
        None, "Comma-separated label list of your own data, in class-id order (default: the labels of the "
              "training file, sorted).", group="data", text=str)
    regression: bool = setting(False, "Your own data has numeric scores, not classes.", group="data")
    skip_bad_rows: bool = setting(
        False, "Leave out malformed rows (reported) instead of stopping.", group="data")

    def __post_init__(self) -> None:
        if isinstance(self.labels, str):  # --labels "a, b,c" -> ["a", "b", "c"]; frozen: set while built
            object.__setattr__(self, "labels", [x.strip() for x in self.labels.split(",") if x.strip()] or None)

    @property
    def columns(self) -> Columns:
        """Which columns of one's own files hold the texts and the label."""
        return Columns(self.text_a_column, self.text_b_column, self.label_column)

    def file_for(self, split: str) -> str | None:
        """The --train_file/--dev_file/--test_file standing for a split (dev_matched -> dev_file)."""
        kind = split.split("_")[0]
        return {"train": self.train_file, "dev": self.dev_file, "test": self.test_file}.get(kind)


def task_of(config: DataConfig) -> TaskSpec | None:
    """The GLUE or CLUE task the config names (its --labels/--regression checked against it), or None
    for one's own data. A name that is no such task, without any file of one's own, is an error."""
    if is_task(config.task_name):
        spec = get_task(config.task_name)
        if config.labels and config.labels != spec.labels:
            raise UserError(f"{spec.name}'s labels are fixed ({', '.join(spec.labels or ['a score'])}); "
                            f"--labels is for your own data")
        if config.regression and not spec.is_regression:
            raise UserError(f"{spec.name} is a classification task; --regression is for your own data")
        return spec
    if config.task_name and not any(config.file_for(s) for s in ("train", "dev", "test")):
        get_task(config.task_name)  # raises: unknown task, and how to give one's own files
    return None


def paddlenlp_cache(benchmark: str = "GLUE") -> Path:
    """PaddleNLP's dataset cache of a benchmark: $PPNLP_HOME/datasets/Glue or Clue (sources.py)."""
    return sources.benchmark_folder(benchmark)


def _task_subdir(root: Path, spec: TaskSpec, default: str | None = None) -> Path:
    """ROOT/SST-2, also found as ROOT/sst-2 or ROOT/SST2; a CLUE task's as ROOT/AFQMC, ROOT/afqmc or
    ROOT/afqmc_public (the folder of CLUE's zip and of PaddleNLP's cache), ROOT/CLUEWSC for CLUEWSC2020.
    Not found: ROOT/`default` (or the task's name), for the message."""
    names = spec.folder_names
    for name in names:
        if (root / name).is_dir():
            return root / name
    if root.is_dir():
        wanted = {_normalize(name) for name in names}
        for child in sorted(root.iterdir()):
            if child.is_dir() and _normalize(child.name) in wanted:
                return child
    return root / (default or spec.name)


def resolve_task_file(spec: TaskSpec, split: str, data_dir: str | None = None,
                      glue_dir: str | None = None) -> Path:
    """The file of one split: in --data_dir (or its TASK subfolder), --glue_dir/TASK (--clue_dir/TASK),
    or PaddleNLP's cache (Glue/SST-2/train.tsv, Clue/afqmc_public/train.json), downloaded there on first
    use from PaddleNLP's addresses (sources.fetch_task). Nothing is downloaded when a folder is given."""
    name = spec.files[split]
    flag = "--clue_dir" if spec.is_clue else "--glue_dir"
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
        raise DataError(path, None, f"file not found (the {spec.name} {split} file; {flag})")
    path = _task_subdir(paddlenlp_cache(spec.benchmark), spec, spec.cache_folder) / name
    if path.is_file():
        return path
    missing = (f"no {spec.name} data: give --data_dir TASK_DIR or {flag} {spec.benchmark}_DIR "
               f"(looked for {name} in PaddleNLP's cache, {path.parent})")
    try:  # not there: PaddleNLP's archive (MRPC: Microsoft's files), every split at once
        sources.fetch_task(spec.benchmark, spec.name)
    except UserError as e:
        raise UserError(f"{missing}; {e}") from None
    path = paddlenlp_cache(spec.benchmark) / spec.cache_folder / name
    if path.is_file():
        return path
    raise UserError(missing)


def split_paths(config: DataConfig, spec: TaskSpec | None, split: str) -> dict[str, Path]:
    """{split: file} of one split asked for: --<split>_file, else the task's files (MNLI's "dev" is
    dev_matched and dev_mismatched). A --test_file named as one of the task's several test files
    (test_matched.tsv, CLUE 1.0's test1.0.json) stands for that split: its submission file is that one's."""
    explicit = config.file_for(split)
    if explicit:
        path = Path(explicit).expanduser()
        if spec is not None and split == "test" and _infer_split(spec, path) in spec.submission_files:
            split = _infer_split(spec, path)
        return {split: path}
    if spec is None:
        raise UserError(f"no {split} data: give --{split.split('_')[0]}_file (or a GLUE or CLUE --task_name)")
    return {s: resolve_task_file(spec, s, config.data_dir, config.glue_dir) for s in spec.splits_for(split)}


def _infer_split(spec: TaskSpec, path: Path) -> str:
    """dev.tsv -> dev, test_matched.tsv -> test_matched, test1.0.json -> test1.0 (a task's own file
    names), anything else (train_aug.tsv, train_aug.json) -> train."""
    for split, name in spec.files.items():
        if path.name == name:
            return split
    stem = path.name.removesuffix(".tsv").removesuffix(".jsonl").removesuffix(".json")
    return stem if stem in spec.files or stem in ("dev", "test") else "train"


# ----------------------------------------------------------------------------------------------
# Opening a file: its format, then its layout and labels, read by datafiles


def resolve_format(path: Path, file_format: str = "auto", spec: TaskSpec | None = None) -> str:
    """How a file is read: glue, clue, csv, tsv or jsonl. The one rule for every script: a .tsv file
    given with a GLUE task is in that task's GLUE layout, a .json or .jsonl file given with a CLUE task
    in that task's CLUE layout (unless --file_format says otherwise)."""
    glue_task, clue_task = spec is not None and spec.is_glue, spec is not None and spec.is_clue
    if clue_task:
        if file_format == "glue":
            raise UserError(f"{path}: --file_format glue is for GLUE tasks; a CLUE task reads its .json/.jsonl "
                            f"files in the task's own layout (--file_format auto)")
        if file_format == "auto" and path.suffix.lower() in (".json", ".jsonl"):
            return "clue"
    if file_format == "glue" or (file_format == "auto" and glue_task and path.suffix.lower() == ".tsv"):
        if not glue_task:
            raise UserError(f"{path}: --file_format glue needs a GLUE --task_name "
                            f"(for your own tab-separated file give --file_format tsv)")
        return "glue"
    if file_format not in ("auto",) + FORMATS:
        raise UserError(f"unknown --file_format {file_format!r} (auto, {', '.join(FORMATS)})")
    return datafiles.detect_format(path, file_format)


def label_rule(spec: TaskSpec | None) -> LabelRule:
    """What the label column of this task's files may hold (spec None: labels not known yet)."""
    if spec is None:
        return LabelRule()
    if spec.is_regression:
        return LabelRule(regression=True, task=spec.name if spec.is_benchmark else None)
    return LabelRule(names=tuple(spec.labels), task=spec.name if spec.is_benchmark else None)


def _as_spec(task: str | TaskSpec) -> TaskSpec:
    return get_task(task) if isinstance(task, str) else task


def task_rows(path: str | Path, task: str | TaskSpec, split: str | None = None,
              skip_bad_rows: bool = False) -> datafiles.GlueRows | datafiles.ClueRows:
    """A GLUE or CLUE file's raw rows in the task's layout of `split` (by default from the file name;
    files under other names, such as train_aug.tsv or train_aug.json, are train files)."""
    spec, path = _as_spec(task), Path(path)
    layout = spec.layout(split or _infer_split(spec, path))
    open_rows = datafiles.open_clue if spec.is_clue else datafiles.open_glue
    return open_rows(path, spec.name, layout, label_rule(spec), skip_bad_rows)


def own_rows(path: str | Path, columns: Columns, spec: TaskSpec | None, split: str, file_format: str = "auto",
             skip_bad_rows: bool = False, need_label: bool = True) -> datafiles.Rows:
    """A user's own file (CSV/TSV/JSONL). Its label column is needed unless it is a test file (or
    need_label is False: augmentation copies whatever the rows hold)."""
    path = Path(path)
    fmt = resolve_format(path, file_format)
    return datafiles.open_table(path, fmt, columns, label_rule(spec),
                                need_label and not split.startswith("test"), skip_bad_rows)


def open_data_file(path: str | Path, config: DataConfig, spec: TaskSpec | None, split: str,
                   need_label: bool = True) -> datafiles.Rows:
    """One file of the data, in the format resolve_format decides: a GLUE or CLUE task's own layout, or
    the user's format with the config's columns."""
    path = Path(path).expanduser()
    fmt = resolve_format(path, config.file_format, spec)
    if fmt in ("glue", "clue"):
        return task_rows(path, spec, split, config.skip_bad_rows)
    return own_rows(path, config.columns, spec, split, fmt, config.skip_bad_rows, need_label)


# ----------------------------------------------------------------------------------------------
# Examples from a file's rows


@dataclass(slots=True)
class Example:
    """One example: texts, label (label name, float score, or None for test sets), an id (the
    file's index column where it has one) and the 1-based line in the file, for error messages."""
    text_a: str
    text_b: str | None
    label: str | float | None
    guid: str
    line: int


def examples_from(rows: datafiles.Rows, split: str = "") -> list[Example]:
    """Examples of every good row; the id is the file's own (an index column, a CLUE record's "id"),
    else a running number: "train-0", ... in GLUE files, "0", ... in others (as PaddleNLP's CLUE
    submissions number them)."""
    id_prefix = f"{split}-" if rows.fmt == "glue" else ""
    examples = []
    pair = len(rows.text_fields) > 1
    for line, row in rows.read_numbered():
        texts = rows.texts(row)
        guid = rows.example_id(row)
        if guid is None:
            guid = f"{id_prefix}{len(examples)}"
        examples.append(Example(texts[0], texts[1] if pair else None, rows.label(row), guid, line))
    return examples


def read_examples(path: str | Path, config: DataConfig, spec: TaskSpec | None, split: str) -> list[Example]:
    """The examples of one file of the data (see open_data_file)."""
    return examples_from(open_data_file(path, config, spec, split), split)


def load_task_data(config: DataConfig, splits: Sequence[str] = ("train", "dev")
                   ) -> tuple[TaskSpec, dict[str, list[Example]]]:
    """Read the splits the config points at: (spec, {split: examples}).

    A GLUE or CLUE task reads its files from data_dir, glue_dir/TASK or PaddleNLP's cache; train_file
    (and dev_file/test_file) replace single files. Without a task name, the files are the user's
    own, their classes config.labels or those of the training file. MNLI's "dev" yields the keys
    dev_matched and dev_mismatched (unless dev_file)."""
    spec = task_of(config)
    if spec is not None:
        return spec, {split: read_examples(path, config, spec, split)
                      for want in splits for split, path in split_paths(config, spec, want).items()}
    return _load_custom(config, splits)


# --max_train_examples of every script that trains or augments (and ablation.py's training rows).
SAMPLE_HELP = "A random sample of N training rows, drawn with --seed (0: all rows)."


def sample_indices(total: int, count: int, seed: int) -> list[int]:
    """The rows a seeded sample of `count` of `total` keeps, in file order: all of them when count is 0
    or not below total."""
    if count < 0:
        raise UserError(f"--max_train_examples must be >= 0 (0: all rows), got {count}")
    if not count or count >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), count))


def sample_rows(items: Sequence[Any], count: int, seed: int) -> list[Any]:
    """The items of sample_indices(len(items), count, seed)."""
    return [items[i] for i in sample_indices(len(items), count, seed)]


class SampledRows:
    """A file's Rows restricted to a seeded sample of them (sample_indices), still streamed: what
    data_augmentation.py --max_train_examples augments. Everything else is the file's Rows."""

    def __init__(self, rows: datafiles.Rows, count: int, seed: int):
        self.rows = rows
        self.keep = frozenset(sample_indices(sum(1 for _ in rows.read()), count, seed))

    def read(self) -> Iterable[datafiles.Row]:
        return (row for i, row in enumerate(self.rows.read()) if i in self.keep)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rows, name)


def _load_custom(config: DataConfig, splits: Sequence[str]) -> tuple[TaskSpec, dict[str, list[Example]]]:
    if config.data_dir or config.glue_dir:
        raise UserError("--data_dir/--glue_dir/--clue_dir need a GLUE or CLUE --task_name "
                        f"({', '.join(TASKS)}); for your own data give --train_file/--dev_file")
    paths = {split: split_paths(config, None, split)[split] for split in splits}
    spec = None
    if config.regression:
        spec = custom_task(config.task_name, None)
    elif config.labels:
        spec = custom_task(config.task_name, list(config.labels))
    data = {}
    if spec is None:
        # Labels come from the data: the training file, or else the labelled files given.
        source = [s for s in splits if s == "train"] or [s for s in splits if not s.startswith("test")]
        if not source:
            raise UserError("the labels of your own data are unknown: give --labels (or a training file)")
        for split in source:
            data[split] = read_examples(paths[split], config, None, split)
        found = {e.label for split in source for e in data[split] if e.label is not None}
        if not found:
            raise UserError(f"no labelled rows in {paths[source[0]]}: cannot tell the classes")
        spec = custom_task(config.task_name, _sorted_labels(found))
    for split in splits:
        if split not in data:
            data[split] = read_examples(paths[split], config, spec, split)
    return spec, {split: data[split] for split in splits}


def _sorted_labels(labels: Iterable[str]) -> list[str]:
    """Labels found in a training file, in a fixed order: numerically when they are all integers."""
    labels = set(labels)
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def dev_splits(data: dict[str, Any]) -> list[str]:
    """The evaluation splits among load_task_data's keys: ["dev"], or MNLI's matched and mismatched."""
    return [split for split in data if split.startswith("dev")]


def read_glue_examples(path: str | Path, task: str | TaskSpec, split: str | None = None,
                       skip_bad_rows: bool = False) -> list[Example]:
    """All examples of a GLUE or CLUE file (datafiles checks every row as it is read); the split by
    default from the file name."""
    spec = _as_spec(task)
    split = split or _infer_split(spec, Path(path))
    return examples_from(task_rows(path, spec, split, skip_bad_rows), split)


def read_custom_examples(path: str | Path, columns: Columns, spec: TaskSpec | None, split: str,
                         file_format: str = "auto", skip_bad_rows: bool = False) -> list[Example]:
    """Examples of a user's file. spec None: classification labels not known yet (the training
    file of a task whose labels come from the data), so any non-empty label is accepted."""
    return examples_from(own_rows(path, columns, spec, split, file_format, skip_bad_rows))


# ----------------------------------------------------------------------------------------------
# Predictions and submission files (GLUE, CLUE)


def format_prediction(spec: TaskSpec, pred: Any) -> str:
    """A prediction as GLUE expects it: the label name, or the score with three decimals."""
    if spec.is_regression:
        return f"{float(pred):.3f}"
    return spec.labels[int(pred)]


def _submission(path: Path, overwrite: bool):
    """A submission file to write, renamed into place when complete: a full disk or a crash leaves no
    half-written file that looks finished."""
    from tinybert.models import checkpoints

    datafiles.refuse_existing(path, overwrite)
    return checkpoints.atomic_file(path)


def write_predictions(spec: TaskSpec, examples: Sequence[Example], preds: Sequence[Any] | np.ndarray,
                      path: str | Path, overwrite: bool = False) -> Path:
    """`index<TAB>prediction` per example, with a header, in the examples' order."""
    if len(examples) != len(preds):
        raise ValueError(f"{len(preds)} predictions for {len(examples)} examples")
    path = Path(path)
    with _submission(path, overwrite) as f:
        f.write(datafiles.tab_line(["index", "prediction"]))
        for example, pred in zip(examples, preds):
            f.write(datafiles.tab_line([example.guid, format_prediction(spec, pred)]))
    return path


def write_clue_predictions(spec: TaskSpec, examples: Sequence[Example], preds: Sequence[Any] | np.ndarray,
                           path: str | Path, overwrite: bool = False) -> Path:
    """CLUE's submission format: one JSON object per line, {"id": ..., "label": "<label name>"}, in the
    test file's order. The id is the test record's own "id" (a number where it is one), else its
    position 0, 1, ... (PaddleNLP numbers them so; CLUE's test files number their records the same way)."""
    if len(examples) != len(preds):
        raise ValueError(f"{len(preds)} predictions for {len(examples)} examples")
    path = Path(path)
    with _submission(path, overwrite) as f:
        for example, pred in zip(examples, preds):
            guid = int(example.guid) if example.guid.isdecimal() else example.guid
            f.write(json.dumps({"id": guid, "label": format_prediction(spec, pred)}, ensure_ascii=False) + "\n")
    return path


def write_submission(spec: TaskSpec, examples: Sequence[Example], preds: Sequence[Any] | np.ndarray,
                     output_dir: str | Path, split: str = "test", overwrite: bool = False) -> Path:
    """OUTPUT_DIR/<the benchmark's file name>: for the GLUE server SST-2.tsv, MNLI-m.tsv (split
    test_matched) ...; for CLUE's afqmc_predict.json, tnews11_predict.json (tnews10_predict.json for
    split test1.0) ..."""
    if not spec.is_benchmark:
        raise UserError(f"{spec.name} is not a GLUE or CLUE task; use write_predictions")
    names = spec.submission_files
    if split not in names:
        raise UserError(f"no {spec.benchmark} submission file for {spec.name} split {split!r} "
                        f"(have: {', '.join(names)})")
    write = write_clue_predictions if spec.is_clue else write_predictions
    return write(spec, examples, preds, Path(output_dir) / names[split], overwrite)
