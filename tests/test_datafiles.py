"""datafiles.py, the one reader and writer of rows: GLUE layouts and users' CSV/TSV/JSONL, strict reading
(one row per line, UTF-8 per line, no empty or header-only files), --skip_bad_rows, writing rows back,
and the same verdict on a bad file whichever script reads it (training, augmentation, prediction)."""
from __future__ import annotations

import ast
import json
import types
from pathlib import Path

import numpy as np
import pytest

from tinybert.data import datafiles
from tinybert.data import tasks
from tinybert.data.datafiles import Columns, LabelRule
from tinybert.errors import DataError, UserError
from builders import BOM, GLUE_FILES, ROOT, run_main, write_glue, write_vectors



def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def read_error(rows_or_call) -> DataError:
    with pytest.raises(DataError) as e:
        rows = rows_or_call()
        list(rows.read())
    return e.value


# ---------------------------------------------------------------------------------------- GLUE rows


def test_raw_rows_round_trip_in_the_same_format(tmp_path):
    glue = write_glue(tmp_path, ["MRPC", "CoLA"])
    for task, name in (("MRPC", "train.tsv"), ("CoLA", "dev.tsv")):
        table = tasks.task_rows(glue / task / name, task)
        header, rows = table.header, table.read_numbered()
        out = tmp_path / f"{task}_copy.tsv"
        with datafiles.open_output(out) as f:
            if header:
                f.write(datafiles.tab_line(header))
            for _, fields in rows:
                f.write(datafiles.tab_line(fields))
        original = GLUE_FILES[task][name].lstrip(BOM)
        assert out.read_text(encoding="utf-8") == original.rstrip("\n") + "\n"
        assert table.header_text() + "".join(map(table.row_text, table.read())) == original.rstrip("\n") + "\n"
    assert tasks.get_task("mrpc").layout("train").text_columns == (3, 4)
    assert tasks.get_task("CoLA").layout("train").text_columns == (3,)
    assert tasks.get_task("mnli").layout("dev").text_columns == (8, 9)


def test_raw_rows_stream_and_rewrite_texts(tmp_path):
    glue = write_glue(tmp_path, ["QNLI"])
    table = tasks.task_rows(glue / "QNLI" / "train.tsv", "qnli")
    header, rows = table.header, table.read_numbered()
    assert header == ["index", "question", "sentence", "label"]
    line, fields = next(rows)
    assert line == 2
    out = tmp_path / "train_aug.tsv"
    with datafiles.open_output(out) as f:
        f.write(datafiles.tab_line(header))
        for i in tasks.get_task("qnli").layout("train").text_columns:
            fields[i] = fields[i].upper()
        f.write(datafiles.tab_line(fields))
        with pytest.raises(ValueError, match="tab"):
            f.write(datafiles.tab_line(["0", "a\tb", "c", "entailment"]))
    assert tasks.read_glue_examples(out, "qnli")[0].text_a == "WHEN DID THE THIRD DIGIMON SERIES BEGIN?"
    with pytest.raises(UserError, match="exists"):
        datafiles.open_output(out)


def test_glue_file_with_only_its_header_or_nothing(tmp_path):
    header_only = write(tmp_path / "SST-2" / "train.tsv", "sentence\tlabel\n")
    error = read_error(lambda: tasks.task_rows(header_only, "SST-2"))
    assert str(error) == f"{header_only}: no data rows (only a header)"
    empty = write(tmp_path / "SST-2" / "dev.tsv", "")
    error = read_error(lambda: tasks.task_rows(empty, "SST-2"))
    assert (error.line, error.problem) == (None, "empty file; expected the SST-2 header (sentence | label)")
    no_header = write(tmp_path / "CoLA" / "train.tsv", "")
    assert read_error(lambda: tasks.task_rows(no_header, "CoLA")).problem == "empty file"


# ------------------------------------------------------------------------------ strict CSV reading


def test_csv_unclosed_quote_is_an_error_where_the_field_opens(tmp_path):
    path = write(tmp_path / "data.csv", 'text,label\nfine,a\n"never closed,b\nswallowed,a\nthis too,b\n')
    error = read_error(lambda: datafiles.open_table(path, "csv", Columns()))
    assert str(error) == (f"{path}:3: unclosed quote: the field that opens on this line does not end on it "
                          f"(texts must be one line; close the quote or remove the line break)")


def test_csv_skip_bad_rows_leaves_out_the_unclosed_line_only(tmp_path, capsys):
    path = write(tmp_path / "data.csv", 'text,label\nfine,a\n"never closed,b\nread again,a\n"x ""y"" z",b\n')
    rows = datafiles.open_table(path, "csv", Columns(), skip_bad_rows=True)
    assert [(line, row) for line, row in rows.read_numbered()] == [
        (2, ["fine", "a"]), (4, ["read again", "a"]), (5, ['x "y" z', "b"])]
    assert list(rows.read()) == [["fine", "a"], ["read again", "a"], ['x "y" z', "b"]]  # read again: same
    err = capsys.readouterr().err
    assert err.count("skipped 1 bad rows") == 1 and "first: line 3: unclosed quote" in err  # reported once


def test_csv_quoting_rules_stay_the_csv_modules(tmp_path):
    path = write(tmp_path / "data.csv", 'id,text,label\n1,"a, b",x\n2,"say ""hi""",y\n3,plain "quote,z\n4,,x\n')
    rows = datafiles.open_table(path, "csv", Columns(), skip_bad_rows=True)
    assert [rows.texts(r) for r in rows.read()] == [["a, b"], ['say "hi"'], ['plain "quote']]  # line 5: no text


def test_bad_utf8_names_the_line_and_can_be_skipped(tmp_path, capsys):
    path = write(tmp_path / "data.csv", b"text,label\nfine,a\nok,b\ncaf\xe9,a\nmore,b\n")
    error = read_error(lambda: datafiles.open_table(path, "csv", Columns()))
    assert (error.line, error.problem) == (4, "not valid UTF-8 (byte 0xe9 at byte 4)")
    rows = datafiles.open_table(path, "csv", Columns(), skip_bad_rows=True)
    assert [line for line, _ in rows.read_numbered()] == [2, 3, 5]
    assert "skipped 1 bad rows (--skip_bad_rows) at lines 4;" in capsys.readouterr().err
    header = write(tmp_path / "header.tsv", b"te\xffxt\tlabel\nfine\ta\n")  # a header is never skipped
    with pytest.raises(DataError, match=r"header.tsv:1: not valid UTF-8"):
        datafiles.open_table(header, "tsv", Columns(), skip_bad_rows=True)


@pytest.mark.parametrize("fmt, text, problem", [
    ("csv", "text,label\n", "no data rows (only a header)"),
    ("tsv", "text\tlabel\n", "no data rows (only a header)"),
    ("csv", "", "empty file; expected a header line naming the columns"),
    ("jsonl", "", "empty file"),
])
def test_empty_and_header_only_files_are_errors(tmp_path, fmt, text, problem):
    path = write(tmp_path / f"data.{fmt}", text)
    error = read_error(lambda: datafiles.open_table(path, fmt, Columns()))
    assert str(error) == f"{path}: {problem}"


def test_all_rows_bad_under_skip_is_an_error_too(tmp_path, capsys):
    path = write(tmp_path / "data.csv", "text,label\n,a\n  ,b\n")
    error = read_error(lambda: datafiles.open_table(path, "csv", Columns(), skip_bad_rows=True))
    assert error.problem == "no data rows: all 2 rows are bad (--skip_bad_rows)"
    assert "skipped 2 bad rows" in capsys.readouterr().err


def test_missing_folder_and_unreadable_files_name_the_file(tmp_path):
    for make, problem in ((lambda p: p, "file not found"), (lambda p: (p.mkdir(), p)[1], "is a folder, not a file")):
        path = make(tmp_path / f"x{len(problem)}.csv")
        error = read_error(lambda: datafiles.open_table(path, "csv", Columns()))
        assert (error.path, error.line, error.problem) == (str(path), None, problem)


def test_header_names_are_stripped(tmp_path):
    path = write(tmp_path / "data.csv", " id , text ,label \n1,hello,a\n")
    rows = datafiles.open_table(path, "csv", Columns())
    assert rows.names == ["id", "text", "label"] and rows.header == [" id ", " text ", "label "]
    assert [(rows.texts(r), rows.label(r)) for r in rows.read()] == [(["hello"], "a")]
    assert rows.header_text() == " id , text ,label \n"  # written back as it was


def test_a_wrong_column_flag_is_one_error_on_the_header_line(tmp_path):
    path = write(tmp_path / "data.tsv", "review\tstars\ngood\t5\n")
    with pytest.raises(DataError, match=r"data.tsv:1: no column 'text' \(columns: review, stars\); "
                                        r"name the right one with --text_a_column"):
        datafiles.open_table(path, "tsv", Columns())
    rows = datafiles.open_table(path, "tsv", Columns("review"), need_label=False)  # a test file: label optional
    assert rows.label_key is None and list(rows.read()) == [["good", "5"]]


# ------------------------------------------------------------------------------------------- JSONL


def test_jsonl_blank_line_is_a_bad_row(tmp_path, capsys):
    path = write(tmp_path / "data.jsonl", '{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"}\n')
    error = read_error(lambda: datafiles.open_table(path, "jsonl", Columns()))
    assert str(error) == f"{path}:2: empty line"
    rows = datafiles.open_table(path, "jsonl", Columns(), skip_bad_rows=True)
    assert [rows.label(r) for r in rows.read()] == ["x", "y"]


def test_jsonl_rows_are_checked_and_written_back_with_their_other_keys(tmp_path):
    path = write(tmp_path / "data.jsonl", '{"q": "a b", "extra": [1], "y": 2}\n[1]\n{"q": 3, "y": 1}\n'
                                          '{"q": "c", "y": 1}\n{"q": "d"}\n')
    rows = datafiles.open_table(path, "jsonl", Columns("q", None, "y"), skip_bad_rows=True)
    good = list(rows.read_numbered())
    assert [line for line, _ in good] == [1, 4]  # 2: not an object, 3: no text, 5: no label
    row = good[0][1]
    assert rows.label(row) == "2" and rows.texts(row) == ["a b"]
    new = rows.with_text(row, 0, "new words")
    assert json.loads(rows.row_text(new)) == {"q": "new words", "extra": [1], "y": 2} and row["q"] == "a b"
    assert rows.header_text() == ""


# -------------------------------------------------------------------------------- writing, labels


def test_csv_rows_are_written_with_csv_quoting_on_one_line(tmp_path):
    path = write(tmp_path / "data.csv", 'id,text,label\n1,"a, b",x\n')
    rows = datafiles.open_table(path, "csv", Columns())
    row = next(rows.read())
    assert rows.row_text(rows.with_text(row, 0, 'new "one", ok')) == '1,"new ""one"", ok",x\n'
    assert rows.header_text() == "id,text,label\n"
    with pytest.raises(ValueError, match="line break"):
        rows.row_text(["1", "two\nlines", "x"])


def test_label_rules():
    rule = LabelRule(names=("0", "1"), task="SST-2")
    assert datafiles.read_label(" 1 ", "label", rule) == ("1", None)
    assert datafiles.read_label("2", "label", rule)[1] == "unknown label '2' in column 'label' (SST-2 labels: 0, 1)"
    assert datafiles.read_label("", "y", LabelRule())[1] == "empty label in column 'y'"
    assert datafiles.read_label(7, "y", LabelRule()) == ("7", None)
    assert datafiles.read_label("4.5", "s", LabelRule(regression=True)) == (4.5, None)
    assert datafiles.read_label(True, "s", LabelRule(regression=True))[1] == "score True in column 's' is not a number"


def test_stdin_lines_are_checked_as_utf8():
    import io

    assert list(datafiles.stream_lines(io.BytesIO(b"\xef\xbb\xbfone\r\ntwo\n"), "<stdin>")) == [(1, "one"), (2, "two")]
    assert list(datafiles.stream_lines(io.StringIO("one\ntwo"), "<stdin>")) == [(1, "one"), (2, "two")]
    with pytest.raises(DataError, match=r"<stdin>:2: not valid UTF-8"):
        list(datafiles.stream_lines(io.BytesIO(b"one\ncaf\xe9\n"), "<stdin>"))


# ------------------------------------------------------------- the same verdict in every script

GLOVE_WORDS = ["fine", "good", "ok", "great", "more", "text", "cafe", "also"]

BAD_FILES = {  # name -> (file name, contents, the error after "path")
    "unclosed quote": ("data.csv", 'text,label\nfine,a\n"never closed,b\nok,a\nmore,b\n',
                       ":3: " + datafiles.UNCLOSED_QUOTE),
    "bad byte": ("data.csv", b"text,label\nfine,a\nok,b\ncaf\xe9,a\nmore,b\n",
                 ":4: not valid UTF-8 (byte 0xe9 at byte 4)"),
    "header only": ("data.csv", "text,label\n", ": no data rows (only a header)"),
    "blank jsonl line": ("data.jsonl", '{"text": "fine", "label": "a"}\n\n{"text": "ok", "label": "b"}\n',
                         ":2: empty line"),
}


@pytest.fixture
def glove_file(tmp_path) -> Path:  # this module's own words, in place of conftest's augmentation GloVe
    vectors = np.random.default_rng(0).normal(size=(len(GLOVE_WORDS), 4))
    return write_vectors(tmp_path / "glove" / "tiny.txt", GLOVE_WORDS, vectors)


def through_training(path: Path) -> str:
    with pytest.raises(DataError) as e:
        tasks.load_task_data(tasks.DataConfig(train_file=str(path)), splits=("train",))
    return str(e.value)


def through_augmentation(path: Path, glove: Path, capsys, *extra: str) -> tuple[int, str]:
    import data_augmentation

    argv = ["--mlm", "none", "--glove_embs", str(glove), "--train_file", str(path), "--N", "2", *extra]
    code, _, err, _ = run_main(data_augmentation.main, argv, capsys)
    return code, err


def through_prediction(path: Path) -> str:
    import predict

    model = types.SimpleNamespace(task_name=None, num_labels=2, labels=["a", "b"], is_regression=False)
    args = predict.parse_args(["--model_path", "unused", "--test_file", str(path)])
    with pytest.raises(DataError) as e:
        predict.load_inputs(args, model, stdin=None)
    return str(e.value)


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_every_script_gives_the_same_error_for_a_bad_file(case, tmp_path, glove_file, capsys):
    name, contents, problem = BAD_FILES[case]
    path = write(tmp_path / name, contents)
    expected = f"{path}{problem}"
    assert through_training(path) == expected
    assert through_prediction(path) == expected
    code, err = through_augmentation(path, glove_file, capsys)
    assert code == 2 and err.strip().splitlines()[-1] == f"error: {expected}" and "Traceback" not in err
    assert not list(tmp_path.glob("data_aug*"))  # nothing written


def test_augmentation_honours_skip_bad_rows(tmp_path, glove_file, capsys):
    name, contents, _ = BAD_FILES["unclosed quote"]
    path = write(tmp_path / name, contents)
    # One draw that replaces the word (p=1): one new row for "fine" and "ok"; "more" is a stop word, kept.
    code, err = through_augmentation(path, glove_file, capsys, "--skip_bad_rows", "--N", "1", "--p", "1.0")
    assert code == 0, err
    assert err.count("skipped 1 bad rows (--skip_bad_rows) at lines 3;") == 1
    rows = (tmp_path / "data_aug.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "text,label" and len(rows) == 1 + 2 * 2 + 1
    assert rows[1::2] == ["fine,a", "ok,a", "more,b"]  # lines 2, 4, 5; line 3 left out
    spec, data = tasks.load_task_data(tasks.DataConfig(train_file=str(tmp_path / "data_aug.csv")), ("train",))
    assert len(data["train"]) == 5  # the output reads back with the same rules


# ------------------------------------------------------------------------------------ import graph

SCRIPTS = {"task_distill", "predict", "export_model", "data_augmentation", "demo", "finetune_teacher",
           "convert_checkpoint"}


def project_imports(path: Path, top_level_only: bool) -> set[str]:
    """Project modules a file imports (module level only, or anywhere), TYPE_CHECKING blocks left out."""
    names = {p.stem for p in ROOT.glob("*.py")}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name.split(".")[0] for a in child.names if top or not top_level_only)
            elif isinstance(child, ast.ImportFrom) and child.module and (top or not top_level_only):
                found.add(child.module.split(".")[0])
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            visit(child, inner)

    visit(tree, True)
    return found & names


def test_no_import_cycle_and_no_library_imports_a_script():
    modules = {p.stem: p for p in ROOT.glob("*.py")}
    graph = {name: project_imports(path, top_level_only=True) - {name} for name, path in modules.items()}
    for name, path in modules.items():
        if name not in SCRIPTS:
            assert not project_imports(path, top_level_only=False) & SCRIPTS, f"{name} imports a script"

    def cycle_from(start: str, node: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for nxt in graph.get(node, ()):
            if nxt == start:
                return seen + (nxt,)
            if nxt not in seen:
                found = cycle_from(start, nxt, seen + (nxt,))
                if found:
                    return found
        return None

    for name in graph:
        assert cycle_from(name, name, (name,)) is None, name


def test_datafiles_knows_no_task():
    """One way only: tasks.py describes its files to datafiles (Layout, ClueLayout, LabelRule) and calls it;
    datafiles imports nothing of the project but its errors, so it never calls back."""
    tree = ast.parse((ROOT / "tinybert" / "data" / "datafiles.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {name for name in imported if name and name.startswith("tinybert")} == {"tinybert.errors"}
