"""GLUE readers on files written in the exact GLUE layouts, the real files' row counts, users' own
data, bad input, label order, features and batches, submission files."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinybert.data import tasks
from tinybert.errors import DataError, UserError
from tinybert.data.tasks import Example
from builders import BOM, GLUE_FILES, QUOTED, ROOT, as_tuples, parse, row, write_glue

# What each file must read as: (text_a, text_b, label, guid) per row.
EXPECTED: dict[tuple[str, str], list[tuple]] = {
    ("CoLA", "train"): [('He said "stop" twice.', None, "1", "train-0"), ("Himself likes John.", None, "0", "train-1")],
    ("CoLA", "dev"): [("The sailors rode the breeze.", None, "1", "dev-0"),
                      ("The more does Bill smoke.", None, "0", "dev-1")],
    ("CoLA", "test"): [("Bill whistled past the house.", None, None, "0"), ('"Go," he said.', None, None, "1")],
    ("SST-2", "train"): [("hide new secretions from the parental units ", None, "0", "train-0"),
                         ('a " quoted " charmer ', None, "1", "train-1")],
    ("SST-2", "dev"): [("unflinchingly bleak and desperate ", None, "0", "dev-0")],
    ("SST-2", "test"): [("uneasy mishmash of styles and genres .", None, None, "0")],
    ("MRPC", "train"): [('He called him " the witness " .', QUOTED, "1", "train-0")],
    ("MRPC", "dev"): [("Magnarelli said Racicot hated the regime .", "His wife said so .", "0", "dev-0")],
    ("MRPC", "test"): [("PCCW 's chief will report to Mr So .", "The chief will report to So .", None, "0")],
    ("STS-B", "train"): [("A plane is taking off.", "An air plane is taking off.", 5.0, "0")],
    ("STS-B", "dev"): [("A man is dancing.", "A man wearing a hat is dancing.", 3.8, "0")],
    ("STS-B", "test"): [("A girl is styling her hair.", "A girl is brushing her hair.", None, "0")],
    ("QQP", "train"): [("How is the life of a math student?", 'What is "jlpt5"?', "0", "133273")],
    ("QQP", "dev"): [("Why are African-Americans so beautiful?", "Why are hispanics so beautiful?", "1", "201359")],
    ("QQP", "test"): [("Would Trump and Putin scare you?", "Could Trump restore relations with Russia?", None, "0")],
    ("MNLI", "train"): [("Conceptually cream skimming has two dimensions.", "Product and geography make it work.",
                         "neutral", "0")],
    ("MNLI", "dev_matched"): [("The new rights are nice enough", "Everyone really likes the newest benefits ",
                               "neutral", "0")],
    ("MNLI", "dev_mismatched"): [("Your contribution helped.", "Your contribution did not help.", "contradiction",
                                  "0")],
    ("MNLI", "test_matched"): [("Hierbas is a sweet liqueur.", "It is sweet.", None, "0")],
    ("MNLI", "test_mismatched"): [("What have you decided?", "Have you decided?", None, "0")],
    ("QNLI", "train"): [("When did the third Digimon series begin?", "Unlike the two seasons before it.",
                         "not_entailment", "0")],
    ("QNLI", "dev"): [("What came into force?", 'The "new" constitution came into force.', "entailment", "0")],
    ("QNLI", "test"): [("What organization is devoted to Jihad?", "For some decades the Brotherhood was quiet.",
                        None, "0")],
    ("RTE", "train"): [("No Weapons of Mass Destruction Found in Iraq Yet.", "Weapons Found in Iraq.",
                        "not_entailment", "0")],
    ("RTE", "dev"): [("Dana Reeve has died of lung cancer.", "Dana Reeve died.", "entailment", "0")],
    ("RTE", "test"): [("Mangla was summoned after Nidhi Shukla.", "Shukla is related to Mangla.", None, "0")],
    ("WNLI", "train"): [("I stuck a pin through a carrot. It had a hole.", "The carrot had a hole.", "1", "0")],
    ("WNLI", "dev"): [("The drain is clogged with hair. It has to be cleaned.", "The hair has to be cleaned.",
                       "0", "0")],
    ("WNLI", "test"): [("Maude and Dora saw the trains.", "Horses ran away.", None, "0")],
}


# ---------------------------------------------------------------------------------------------- GLUE


@pytest.mark.parametrize("task", list(GLUE_FILES))
def test_every_glue_task_reads_its_original_layout(tmp_path, task):
    glue = write_glue(tmp_path / "glue", [task])
    spec, data = tasks.load_task_data(parse("--task_name", task, "--glue_dir", str(glue)),
                                      splits=("train", "dev", "test"))
    assert spec.name == task
    assert set(data) == {split for (t, split) in EXPECTED if t == task}
    for split, examples in data.items():
        assert as_tuples(examples) == EXPECTED[(task, split)], (task, split)


def test_line_numbers_count_the_header_and_the_file_without_final_newline(tmp_path):
    glue = write_glue(tmp_path, ["CoLA", "SST-2"])
    dev = tasks.read_glue_examples(glue / "CoLA" / "dev.tsv", "cola")
    assert [e.line for e in dev] == [1, 2]  # no header in CoLA
    train = tasks.read_glue_examples(glue / "SST-2" / "train.tsv", "sst2")
    assert [e.line for e in train] == [2, 3]


def test_task_names_are_case_insensitive():
    for name in ("sst-2", "SST-2", "sst2", "Sst_2"):
        assert tasks.get_task(name).name == "SST-2"
    assert tasks.get_task("sts-b").name == "STS-B" and tasks.get_task("MnLi").name == "MNLI"
    assert list(tasks.GLUE_TASKS) == ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"]
    with pytest.raises(UserError, match="unknown task 'sst5'.*CoLA, SST-2"):
        tasks.get_task("sst5")


def test_label_lists_follow_glue_and_paddlenlp():
    labels = {name: spec.labels for name, spec in tasks.GLUE_TASKS.items()}
    assert labels == {"CoLA": ["0", "1"], "SST-2": ["0", "1"], "MRPC": ["0", "1"], "STS-B": None,
                      "QQP": ["0", "1"], "MNLI": ["contradiction", "entailment", "neutral"],
                      "QNLI": ["entailment", "not_entailment"], "RTE": ["entailment", "not_entailment"],
                      "WNLI": ["0", "1"]}
    mnli = tasks.get_task("mnli")
    assert mnli.label2id == {"contradiction": 0, "entailment": 1, "neutral": 2}
    assert mnli.id2label == {0: "contradiction", 1: "entailment", 2: "neutral"}
    assert tasks.get_task("sts-b").is_regression and tasks.get_task("sts-b").num_labels == 1


def test_mnli_dev_is_matched_and_mismatched(tmp_path):
    glue = write_glue(tmp_path, ["MNLI"])
    spec, data = tasks.load_task_data(parse("--task_name", "mnli", "--data_dir", str(glue / "MNLI")))
    assert list(data) == ["train", "dev_matched", "dev_mismatched"]
    assert tasks.dev_splits(data) == ["dev_matched", "dev_mismatched"]
    own_dev = tmp_path / "dev.tsv"  # a dev file of one's own, in MNLI's dev layout
    own_dev.write_text(GLUE_FILES["MNLI"]["dev_mismatched.tsv"])
    spec, data = tasks.load_task_data(parse("--task_name", "mnli", "--data_dir", str(glue / "MNLI"),
                                            "--dev_file", str(own_dev)))
    assert list(data) == ["train", "dev"] and as_tuples(data["dev"]) == EXPECTED[("MNLI", "dev_mismatched")]
    assert as_tuples(tasks.read_glue_examples(own_dev, "mnli")) == EXPECTED[("MNLI", "dev_mismatched")]


def test_real_glue_files_have_the_row_counts_of_sources_md(glue_dir):
    table = re.findall(r"^\| ([\w-]+)/(\w+)\.tsv \| \S+ \| \S+ \| (\d+) \(", (glue_dir / "SOURCES.md").read_text(),
                       flags=re.M)
    assert len(table) >= 20
    for task, split, rows in table:
        examples = tasks.read_glue_examples(glue_dir / task / f"{split}.tsv", task, split)
        assert len(examples) == int(rows), f"{task}/{split}.tsv"
    # The label counts SOURCES.md quotes.
    sst = tasks.read_glue_examples(glue_dir / "SST-2" / "train.tsv", "sst-2")
    assert sum(e.label == "1" for e in sst) == 37569
    mrpc = tasks.read_glue_examples(glue_dir / "MRPC" / "train.tsv", "mrpc")
    assert (sum(e.label == "1" for e in mrpc), sum(e.label == "0" for e in mrpc)) == (2474, 1194)
    qnli = tasks.read_glue_examples(glue_dir / "QNLI" / "dev.tsv", "qnli")
    assert (sum(e.label == "entailment" for e in qnli), sum(e.label == "not_entailment" for e in qnli)) == (2702, 2761)
    stsb = tasks.read_glue_examples(glue_dir / "STS-B" / "train.tsv", "sts-b")
    assert all(0.0 <= e.label <= 5.0 for e in stsb)


# ------------------------------------------------------------------------------ finding the data


def test_data_dir_glue_dir_and_paddlenlp_cache(tmp_path, monkeypatch):
    glue = write_glue(tmp_path / "glue", ["SST-2"], folder_name=lambda t: t.lower())  # ./sst-2 also found
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "ppnlp"))
    by_glue_dir = tasks.load_task_data(parse("--task_name", "SST-2", "--glue_dir", str(glue)))[1]
    by_data_dir = tasks.load_task_data(parse("--task_name", "sst2", "--data_dir", str(glue / "sst-2")))[1]
    assert as_tuples(by_glue_dir["train"]) == as_tuples(by_data_dir["train"]) == EXPECTED[("SST-2", "train")]

    with pytest.raises(UserError) as e:  # nothing given, nothing cached: one line saying where it looked
        tasks.load_task_data(parse("--task_name", "SST-2"))
    cache = tmp_path / "ppnlp" / "datasets" / "Glue" / "SST-2"
    assert "\n" not in str(e.value) and str(cache) in str(e.value) and "--glue_dir" in str(e.value)

    write_glue(tmp_path / "ppnlp" / "datasets" / "Glue", ["SST-2"])  # PaddleNLP's layout: Glue/SST-2/train.tsv
    spec, data = tasks.load_task_data(parse("--task_name", "SST-2"))
    assert as_tuples(data["dev"]) == EXPECTED[("SST-2", "dev")]


def test_missing_glue_file_names_the_file(tmp_path):
    glue = write_glue(tmp_path, ["RTE"])
    (glue / "RTE" / "dev.tsv").unlink()
    with pytest.raises(DataError) as e:
        tasks.load_task_data(parse("--task_name", "rte", "--data_dir", str(glue / "RTE")))
    assert e.value.path == str(glue / "RTE" / "dev.tsv") and "file not found" in e.value.problem


def test_train_file_with_a_glue_task_reads_glue_format(tmp_path):
    glue = write_glue(tmp_path, ["MRPC"])
    aug = tmp_path / "train_aug.tsv"
    aug.write_text(GLUE_FILES["MRPC"]["train.tsv"].lstrip(BOM) + row("0", "1", "2", "An extra one .", "Another ."))
    spec, data = tasks.load_task_data(parse("--task_name", "MRPC", "--data_dir", str(glue / "MRPC"),
                                            "--train_file", str(aug)))
    assert [e.text_a for e in data["train"]] == ['He called him " the witness " .', "An extra one ."]
    assert as_tuples(data["dev"]) == EXPECTED[("MRPC", "dev")]


# ------------------------------------------------------------------------------------- bad input


def bad_file(tmp_path: Path, task: str, name: str, text: str | bytes) -> Path:
    path = tmp_path / task / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_the_format_rule_is_one_function(tmp_path):
    tsv, csv_file = tmp_path / "train_aug.tsv", tmp_path / "mine.csv"
    assert tasks.resolve_format(tsv, "auto", tasks.get_task("SST-2")) == "glue"  # .tsv of a GLUE task
    assert tasks.resolve_format(tsv, "auto") == "tsv"
    assert tasks.resolve_format(tsv, "tsv", tasks.get_task("SST-2")) == "tsv"
    assert tasks.resolve_format(csv_file, "auto", tasks.get_task("SST-2")) == "csv"
    assert tasks.resolve_format(tmp_path / "x.ndjson") == "jsonl"
    with pytest.raises(UserError, match="--file_format glue needs a GLUE --task_name"):
        tasks.resolve_format(tsv, "glue")
    with pytest.raises(UserError, match="cannot tell the format from '.txt'"):
        tasks.resolve_format(tmp_path / "x.txt")
    with pytest.raises(UserError, match=r"unknown --file_format 'xml' \(auto, glue, csv, tsv, jsonl\)"):
        tasks.resolve_format(tsv, "xml")


@pytest.mark.parametrize("task, text, line, problem", [
    ("SST-2", row("sentence", "label") + row("fine", "1") + row("a tab\tinside", "0"), 3,
     "expected 2 tab-separated columns (sentence | label), found 3"),
    ("CoLA", row("gj04", "1", "", "Fine.") + row("gj04", "1", "Missing a column."), 2,
     "expected 4 tab-separated columns"),
    ("SST-2", row("sentence", "label") + row("fine", "positive"), 2, "unknown label 'positive' in column 'label'"),
    ("RTE", row("index", "sentence1", "sentence2", "label") + row("0", "A.", "B.", "neutral"), 2,
     "unknown label 'neutral' in column 'label' (RTE labels: entailment, not_entailment)"),
    ("SST-2", row("sentence", "label") + row("fine", "1") + row("  ", "1"), 3, "empty text in column 'sentence'"),
    ("STS-B", row("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
                  "sentence2", "score") + row("0", "g", "f", "y", "0", "n", "n", "A.", "B.", "n/a"), 2,
     "score 'n/a' in column 'score' is not a number"),
    ("SST-2", row("sentence", "label") + row("fine", "1") + "\n", 3, "found 1"),
])
def test_bad_rows_name_file_line_and_problem(tmp_path, task, text, line, problem):
    path = bad_file(tmp_path, task, "train.tsv", text)
    with pytest.raises(DataError) as e:
        tasks.read_glue_examples(path, task)
    assert (e.value.path, e.value.line) == (str(path), line)
    assert problem in e.value.problem
    assert str(e.value).startswith(f"{path}:{line}: ")


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = bad_file(tmp_path, "SST-2", "dev.tsv", b"sentence\tlabel\nfine\t1\ncaf\xe9 latte\t1\n")
    with pytest.raises(DataError) as e:
        tasks.read_glue_examples(path, "SST-2")
    assert e.value.line == 3 and "not valid UTF-8 (byte 0xe9" in e.value.problem


def test_wrong_header_is_caught_on_line_1(tmp_path):
    path = bad_file(tmp_path, "SST-2", "train.tsv", row("index", "sentence") + row("0", "x"))
    with pytest.raises(DataError, match=r"train.tsv:1: column 1 of the header is 'index', expected 'sentence'"):
        tasks.read_glue_examples(path, "SST-2")


def test_skip_bad_rows_reports_how_many_and_which(tmp_path, capsys):
    text = (row("sentence", "label") + row("good one", "1") + row("bad\ttab", "1") + row("good two", "0")
            + row("", "1")).encode() + b"\xff\xfe\t0\n" + row("good three", "1").encode()
    path = bad_file(tmp_path, "SST-2", "train.tsv", text)
    examples = tasks.read_glue_examples(path, "SST-2", skip_bad_rows=True)
    assert [e.text_a for e in examples] == ["good one", "good two", "good three"]
    err = capsys.readouterr().err
    assert f"{path}: skipped 3 bad rows (--skip_bad_rows) at lines 3, 5, 6;" in err
    assert "first: line 3: expected 2 tab-separated columns" in err


def test_bad_input_exits_with_one_line_and_no_traceback(tmp_path):
    path = bad_file(tmp_path, "SST-2", "train.tsv", row("sentence", "label") + row("fine", "1") + row("x", "2"))
    bad_file(tmp_path, "SST-2", "dev.tsv", row("sentence", "label") + row("fine", "1"))
    script = tmp_path / "read.py"
    script.write_text("import argparse\nfrom tinybert import cli, settings\nfrom tinybert.data import tasks\n"
                      "@cli.run_main\n"
                      "def main():\n"
                      "    p = argparse.ArgumentParser(); settings.add_flags(p, tasks.DataConfig)\n"
                      "    tasks.load_task_data(settings.from_args(tasks.DataConfig, p.parse_args()))\n"
                      "main()\n")
    done = subprocess.run([sys.executable, str(script), "--task_name", "sst-2", "--data_dir", str(path.parent)],
                          capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 2
    assert done.stderr == f"error: {path}:3: unknown label '2' in column 'label' (SST-2 labels: 0, 1)\n"


# ------------------------------------------------------------------------------ users' own data


def test_custom_csv_tsv_jsonl(tmp_path):
    csv_file = tmp_path / "train.csv"
    csv_file.write_text('id,review,stars\n1,"Good, very good",pos\n2,"a ""quoted"" one",neg\n'
                        "3,plain,pos\n", encoding="utf-8")
    tsv_file = tmp_path / "dev.tsv"
    tsv_file.write_text("stars\treview\nneg\t\"unbalanced quote\n", encoding="utf-8")
    jsonl_file = tmp_path / "test.jsonl"
    jsonl_file.write_text(json.dumps({"review": "no label here"}) + "\n", encoding="utf-8")
    spec, data = tasks.load_task_data(parse(
        "--train_file", str(csv_file), "--dev_file", str(tsv_file), "--test_file", str(jsonl_file),
        "--text_a_column", "review", "--label_column", "stars"), splits=("train", "dev", "test"))
    assert (spec.name, spec.labels, spec.is_glue, spec.main_metric) == ("custom", ["neg", "pos"], False, "acc")
    assert as_tuples(data["train"]) == [("Good, very good", None, "pos", "0"),
                                        ('a "quoted" one', None, "neg", "1"), ("plain", None, "pos", "2")]
    assert [e.line for e in data["train"]] == [2, 3, 4]
    # A quoted field may not span lines (one row per line): the line where it opens is the error.
    multi = tmp_path / "multi.csv"
    multi.write_text('id,review,stars\n1,"Good, very good",pos\n2,"a ""quoted""\nsecond line",neg\n'
                     "3,plain,pos\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"multi.csv:3: unclosed quote"):
        tasks.load_task_data(parse("--train_file", str(multi), "--text_a_column", "review",
                                   "--label_column", "stars"), splits=("train",))
    assert as_tuples(data["dev"]) == [('"unbalanced quote', None, "neg", "0")]
    assert as_tuples(data["test"]) == [("no label here", None, None, "0")]


def test_custom_pairs_given_labels_and_regression(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in [
        {"q": "a", "p": "b", "y": 2}, {"q": "c", "p": "d", "y": 10}, {"q": "e", "p": "f", "y": 2}]) + "\n")
    spec, data = tasks.load_task_data(parse("--task_name", "mine", "--train_file", str(train),
                                            "--text_a_column", "q", "--text_b_column", "p", "--label_column", "y"),
                                      splits=("train",))
    assert spec.name == "mine" and spec.labels == ["2", "10"]  # integer labels sort as numbers
    assert as_tuples(data["train"])[1] == ("c", "d", "10", "1")
    spec, _ = tasks.load_task_data(parse("--train_file", str(train), "--text_a_column", "q", "--label_column", "y",
                                         "--labels", "10,2,7"), splits=("train",))
    assert spec.labels == ["10", "2", "7"]
    spec, data = tasks.load_task_data(parse("--train_file", str(train), "--text_a_column", "q",
                                            "--label_column", "y", "--regression"), splits=("train",))
    assert spec.is_regression and spec.main_metric == "corr" and [e.label for e in data["train"]] == [2.0, 10.0, 2.0]


def test_custom_bad_input(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\nfine,a\nalso fine,b\n")
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\nok,a\nnew,c\n")
    with pytest.raises(DataError, match=r"dev.csv:3: unknown label 'c' in column 'label' \(labels: a, b\)"):
        tasks.load_task_data(parse("--train_file", str(train), "--dev_file", str(dev)))
    with pytest.raises(DataError, match=r"train.csv:1: no column 'sentence' \(columns: text, label\); "
                                        r"name the right one with --text_a_column"):
        tasks.load_task_data(parse("--train_file", str(train), "--text_a_column", "sentence"), splits=("train",))
    scores = tmp_path / "scores.jsonl"
    scores.write_text('{"text": "a", "label": 1.5}\n{"text": "b", "label": "high"}\n')
    with pytest.raises(DataError, match=r"scores.jsonl:2: score 'high' in column 'label' is not a number"):
        tasks.load_task_data(parse("--train_file", str(scores), "--regression"), splits=("train",))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a", "label": "x"}\n{"text": "", "label": "x"}\n')
    with pytest.raises(DataError, match=r"broken.jsonl:2: empty text in column 'text'"):
        tasks.load_task_data(parse("--train_file", str(broken)), splits=("train",))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"text,label\nfine,a\ncaf\xe9,b\n")
    with pytest.raises(DataError, match=r"latin.csv:3: not valid UTF-8"):
        tasks.load_task_data(parse("--train_file", str(latin)), splits=("train",))
    with pytest.raises(DataError, match=r"missing.csv: file not found"):
        tasks.load_task_data(parse("--train_file", str(tmp_path / "missing.csv")), splits=("train",))
    with pytest.raises(UserError, match="no dev data: give --dev_file"):
        tasks.load_task_data(parse("--train_file", str(train)))


# --------------------------------------------------------------------------------- label order


def test_label_order_mismatch_names_both_orders():
    mnli = tasks.get_task("MNLI")
    tasks.check_label_order(mnli, {"contradiction": 0, "entailment": 1, "neutral": 2})
    tasks.check_label_order(mnli, None)  # a checkpoint without label names
    tasks.check_label_order(mnli, {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2})
    with pytest.raises(UserError) as e:  # the HF `datasets` order
        tasks.check_label_order(mnli, {"entailment": 0, "neutral": 1, "contradiction": 2})
    assert ("orders its labels [entailment, neutral, contradiction] but MNLI uses "
            "[contradiction, entailment, neutral]") in str(e.value)
    with pytest.raises(UserError, match=r"has 2 labels \[LABEL_0, LABEL_1\] but MNLI has 3"):
        tasks.check_label_order(mnli, {"LABEL_0": 0, "LABEL_1": 1})
    with pytest.raises(UserError, match=r"has labels \[negative, positive\] but SST-2 uses \[0, 1\]"):
        tasks.check_label_order(tasks.get_task("sst-2"), {"negative": 0, "positive": 1})
    tasks.check_label_order(tasks.get_task("sts-b"), {"LABEL_0": 0})
    tasks.check_label_order(tasks.get_task("rte"), {"Entailment": 0, "Not_Entailment": 1})  # case aside


# ---------------------------------------------------------------------------------- submissions


def test_glue_submission_files(tmp_path):
    mnli = tasks.get_task("mnli")
    examples = [Example("a", "b", None, "0", 2), Example("c", "d", None, "1", 3)]
    path = tasks.write_submission(mnli, examples, np.array([2, 0]), tmp_path, split="test_matched")
    assert path == tmp_path / "MNLI-m.tsv"
    assert path.read_text() == "index\tprediction\n0\tneutral\n1\tcontradiction\n"
    assert tasks.write_submission(mnli, examples, [1, 1], tmp_path, "test_mismatched").name == "MNLI-mm.tsv"
    with pytest.raises(UserError, match="exists"):
        tasks.write_submission(mnli, examples, [1, 1], tmp_path, "test_matched")
    stsb = tasks.write_submission(tasks.get_task("STS-B"), examples, np.array([4.25, 0.1234]), tmp_path)
    assert stsb.name == "STS-B.tsv" and stsb.read_text() == "index\tprediction\n0\t4.250\n1\t0.123\n"
    sst = tasks.write_submission(tasks.get_task("sst2"), examples[:1], [1], tmp_path)
    assert sst.name == "SST-2.tsv" and sst.read_text() == "index\tprediction\n0\t1\n"
    names = {spec.name: sorted(spec.submission_files.values()) for spec in tasks.GLUE_TASKS.values()}
    assert names["MNLI"] == ["MNLI-m.tsv", "MNLI-mm.tsv"] and names["QNLI"] == ["QNLI.tsv"]
    assert not any("AX" in n for files in names.values() for n in files)


def test_submission_from_a_test_file_keeps_its_index(tmp_path):
    glue = write_glue(tmp_path / "glue", ["QQP"])
    spec, data = tasks.load_task_data(parse("--task_name", "qqp", "--glue_dir", str(glue)), splits=("test",))
    path = tasks.write_submission(spec, data["test"], [1], tmp_path / "out")
    assert path.read_text() == "index\tprediction\n0\t1\n"
    custom = tasks.custom_task("mine", ["neg", "pos"])
    out = tasks.write_predictions(custom, data["test"], [0], tmp_path / "out" / "predictions.tsv")
    assert out.read_text() == "index\tprediction\n0\tneg\n"
