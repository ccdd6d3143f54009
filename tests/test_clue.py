"""CLUE classification tasks: every reader on files in CLUE's own JSON-lines layout (CLUE/<TASK>/, the
folders CLUE's zips unpack to, PaddleNLP's cache), labels and their order, the "-" rows, how the fields make
text_a/text_b, bad rows, submission files, and the scripts on top (finetune_teacher.py, predict.py).

The fixtures are invented rows in each task's real format (keys as in CLUE's README and PaddleNLP's
paddlenlp/datasets/clue.py); no real CLUE data is needed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from builders import (ABSTRACT, CLUE_FILES, PAIRS, WSC_1, as_tuples, jsonl, make_checkpoint, parse,
                      reference_probabilities, write_clue, wsc)

import finetune_teacher
from tinybert.data import metrics
import predict
from tinybert.data import tasks
from tinybert.errors import DataError, UserError
from tinybert.data.tasks import Example


# What each file reads as: (text_a, text_b, label, guid). The texts follow PaddleNLP's CLUE example
# (run_clue_classifier.py, convert_example): CSL's text_a is its keywords joined with spaces and text_b
# the abstract; CLUEWSC2020's one text marks the candidate _..._ and the pronoun [...].
WSC_1_MARKED = "这时候放在_床_上枕头旁边的手机响了，我感到奇怪，因为欠费已被停机两个月，现在[它]突然响了。"
EXPECTED: dict[tuple[str, str], list[tuple]] = {
    ("AFQMC", "train"): [("双十一花呗提额在哪", "里可以提花呗额度", "0", "0"), ("花呗如何还款", "花呗怎么还款", "1", "1")],
    ("AFQMC", "dev"): [("借呗能用多久", "借呗可以用多长时间", "1", "0")],
    ("AFQMC", "test"): [("蚂蚁借呗怎么开通", "如何开通借呗", None, "0"), ("花呗账单", "余额宝收益", None, "1")],
    ("TNEWS", "train"): [("江疏影甜甜圈自拍，迷之角度竟这么好看", None, "102", "0"), ("《王者荣耀》新英雄上线", None, "116", "1")],
    ("TNEWS", "dev"): [("老人讲述当年的故事", None, "100", "0")],
    ("TNEWS", "test"): [("上港主场迎战恒大", None, None, "0")],
    ("IFLYTEK", "train"): [("朴朴快送超市创立于2016年，专注于打造移动端30分钟即时配送一站式购物平台", None, "110", "0"),
                           ("滴滴出行，一键叫车", None, "0", "1")],
    ("IFLYTEK", "dev"): [("一款工具App", None, "118", "0")],
    ("IFLYTEK", "test"): [("高德地图，导航更准", None, None, "0")],
    ("OCNLI", "train"): [("身上裹一件工厂发的棉大衣,手插在袖筒里", "身上至少一件衣服", "entailment", "0"),
                         ("东、中、西部地区要加强多种形式的合作", "东部地区发展最快", "neutral", "2")],
    ("OCNLI", "dev"): [("今天下雨了", "今天是晴天", "contradiction", "1")],
    ("OCNLI", "test"): [("他买了一辆新车", "他有车", None, "0")],
    ("CMNLI", "train"): [("从概念上讲，奶油略读有两个基本维度", "产品和地理是奶油略读的关键", "neutral", "0"),
                         ("你知道在这个季节里", "你知道这个季节", "entailment", "1")],
    ("CMNLI", "dev"): [("新的权利已经足够好了", "每个人都很喜欢最新的福利", "neutral", "0")],
    ("CMNLI", "test"): [("是的，他们说", "他们什么也没说", None, "0")],
    ("CLUEWSC2020", "train"): [(WSC_1_MARKED, None, "false", "261"), ("[它]就在桌子上，_那本书_你找到了吗？", None, "true", "262")],
    ("CLUEWSC2020", "dev"): [("这时候放在床上枕头旁边的_手机_响了，我感到奇怪，因为欠费已被停机两个月，现在[它]突然响了。",
                              None, "true", "0")],
    ("CLUEWSC2020", "test"): [("这时候放在床上_枕头_旁边的手机响了，我感到奇怪，因为欠费已被停机两个月，现在[它]突然响了。",
                               None, None, "0")],
    ("CSL", "train"): [("水声学 FFT 波束形成 3维成像声呐", ABSTRACT, "1", "1"), ("水声学 电子商务", ABSTRACT, "0", "2")],
    ("CSL", "dev"): [("声呐", ABSTRACT, "1", "3")],
    ("CSL", "test"): [("波束形成 遗传算法", ABSTRACT, None, "0")],
}


# --------------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("task", list(CLUE_FILES))
def test_every_clue_task_reads_its_original_layout(tmp_path, task, capsys):
    clue = write_clue(tmp_path / "CLUE", [task])
    spec, data = tasks.load_task_data(parse("--task_name", task, "--clue_dir", str(clue)),
                                      splits=("train", "dev", "test"))
    assert (spec.name, spec.benchmark, spec.main_metric) == (task, "CLUE", "acc")
    assert set(data) == {"train", "dev", "test"}
    for split, examples in data.items():
        assert as_tuples(examples) == EXPECTED[(task, split)], (task, split)
    assert spec.is_pair == (EXPECTED[(task, "train")][0][1] is not None)


def test_line_numbers_and_ids(tmp_path, capsys):
    clue = write_clue(tmp_path, ["OCNLI", "CLUEWSC2020", "TNEWS"])
    train = tasks.read_glue_examples(clue / "OCNLI" / "train.50k.json", "ocnli")
    assert [e.line for e in train] == [1, 3] and [e.guid for e in train] == ["0", "2"]  # the file's "id"
    assert [e.guid for e in tasks.read_glue_examples(clue / "CLUEWSC2020" / "train.json", "cluewsc")] == ["261", "262"]
    # TNEWS's training rows have no id: numbered 0, 1, ... (not "train-0" as in GLUE files)
    assert [e.guid for e in tasks.read_glue_examples(clue / "TNEWS" / "train.json", "tnews")] == ["0", "1"]
    test10 = tasks.read_glue_examples(clue / "TNEWS" / "test1.0.json", "tnews")  # split from the file name
    assert as_tuples(test10) == [("股市今天大涨", None, None, "0")]


def test_clue_folders_zip_folders_data_dir_and_paddlenlp_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "ppnlp"))
    want = EXPECTED[("AFQMC", "train")]
    # CLUE_DIR/AFQMC (any case), CLUE_DIR/afqmc_public (as CLUE's afqmc_public.zip unpacks), CLUE_DIR/cluewsc
    for i, name in enumerate([lambda t: t, str.lower, lambda t: f"{t.lower()}_public"]):
        clue = write_clue(tmp_path / f"clue{i}", ["AFQMC"], folder_name=name)
        assert as_tuples(tasks.load_task_data(parse("--task_name", "afqmc", "--clue_dir", str(clue)))[1]["train"]) == want
    wsc_dir = write_clue(tmp_path / "wsc", ["CLUEWSC2020"], folder_name=lambda t: "cluewsc")
    data = tasks.load_task_data(parse("--task_name", "CLUEWSC", "--clue_dir", str(wsc_dir)))[1]
    assert as_tuples(data["train"]) == EXPECTED[("CLUEWSC2020", "train")]
    # --data_dir: the task's folder, or a folder holding it
    clue = write_clue(tmp_path / "CLUE", ["AFQMC", "OCNLI"])
    for data_dir in (clue / "AFQMC", clue):
        assert as_tuples(tasks.load_task_data(parse("--task_name", "AFQMC", "--data_dir", str(data_dir)))[1]["train"]) == want
    # --glue_dir is the same flag (one benchmark folder), and the library takes the folder as glue_dir
    assert parse("--clue_dir", "X").glue_dir == "X" == parse("--glue_dir", "X").glue_dir

    with pytest.raises(UserError) as e:  # nothing given, nothing cached: where it looked, one line
        tasks.load_task_data(parse("--task_name", "ocnli"))
    cache = tmp_path / "ppnlp" / "datasets" / "Clue" / "ocnli_public"
    assert "\n" not in str(e.value) and "--clue_dir CLUE_DIR" in str(e.value)
    assert f"looked for train.50k.json in PaddleNLP's cache, {cache}" in str(e.value)
    # PaddleNLP's cache: $PPNLP_HOME/datasets/Clue/<task>_public/<file> (paddlenlp/datasets/clue.py)
    write_clue(tmp_path / "ppnlp" / "datasets" / "Clue", ["OCNLI", "CSL"], folder_name=lambda t: f"{t.lower()}_public")
    spec, data = tasks.load_task_data(parse("--task_name", "OCNLI"), splits=("train", "dev", "test"))
    assert as_tuples(data["train"]) == EXPECTED[("OCNLI", "train")]
    assert as_tuples(tasks.load_task_data(parse("--task_name", "csl"))[1]["dev"]) == EXPECTED[("CSL", "dev")]


def test_missing_clue_file_names_the_file(tmp_path):
    clue = write_clue(tmp_path, ["AFQMC"])
    (clue / "AFQMC" / "dev.json").unlink()
    with pytest.raises(DataError) as e:
        tasks.load_task_data(parse("--task_name", "afqmc", "--clue_dir", str(clue)))
    assert e.value.path == str(clue / "AFQMC" / "dev.json")
    assert e.value.problem == "file not found (the AFQMC dev file; --clue_dir)"


def test_clue_10_test_sets_of_tnews_and_cluewsc(tmp_path):
    clue = write_clue(tmp_path, ["TNEWS", "CLUEWSC2020"])
    data = tasks.load_task_data(parse("--task_name", "tnews", "--clue_dir", str(clue)), splits=("test", "test1.0"))[1]
    assert as_tuples(data["test1.0"]) == [("股市今天大涨", None, None, "0")]
    data = tasks.load_task_data(parse("--task_name", "cluewsc2020", "--clue_dir", str(clue)), splits=("test1.0",))[1]
    assert as_tuples(data["test1.0"]) == [("[它]就在_桌子_上，那本书你找到了吗？", None, None, "0")]
    # A --test_file named test1.0.json is that split (its submission file is CLUE 1.0's)
    given = tasks.load_task_data(parse("--task_name", "TNEWS", "--test_file", str(clue / "TNEWS" / "test1.0.json")),
                                 splits=("test",))[1]
    assert list(given) == ["test1.0"]


def test_train_file_with_a_clue_task_reads_clue_format(tmp_path, capsys):
    clue = write_clue(tmp_path / "CLUE", ["CSL"])
    aug = tmp_path / "train_aug.json"
    aug.write_text(CLUE_FILES["CSL"]["train.json"] + jsonl({"id": 9, "abst": "摘要", "keyword": ["词"], "label": "0"}),
                   encoding="utf-8")
    spec, data = tasks.load_task_data(parse("--task_name", "CSL", "--clue_dir", str(clue), "--train_file", str(aug)))
    assert as_tuples(data["train"])[-1] == ("词", "摘要", "0", "9") and len(data["train"]) == 3
    assert as_tuples(data["dev"]) == EXPECTED[("CSL", "dev")]
    # --file_format jsonl: one's own JSON Lines columns, the task's labels still checked
    own = tmp_path / "own.jsonl"
    own.write_text(jsonl({"q": "句子", "y": "1"}, {"q": "另一句", "y": "0"}), encoding="utf-8")
    data = tasks.load_task_data(parse("--task_name", "afqmc", "--train_file", str(own), "--dev_file", str(own),
                                      "--file_format", "jsonl", "--text_a_column", "q", "--label_column", "y"))[1]
    assert as_tuples(data["train"]) == [("句子", None, "1", "0"), ("另一句", None, "0", "1")]
    assert tasks.resolve_format(aug, "auto", spec) == "clue"
    assert tasks.resolve_format(tmp_path / "x.jsonl", "auto", spec) == "clue"
    assert tasks.resolve_format(aug, "auto") == "jsonl" and tasks.resolve_format(aug, "jsonl", spec) == "jsonl"
    with pytest.raises(UserError, match="--file_format glue is for GLUE tasks"):
        tasks.resolve_format(aug, "glue", spec)


# ------------------------------------------------------------------------------ names, labels, metric


def test_task_names_are_case_insensitive():
    for name in ("afqmc", "AFQMC", "Afqmc"):
        assert tasks.get_task(name).name == "AFQMC"
    for name in ("cluewsc2020", "CLUEWSC2020", "CLUEWSC", "cluewsc", "clue_wsc"):
        assert tasks.get_task(name).name == "CLUEWSC2020"
    assert list(tasks.CLUE_TASKS) == ["AFQMC", "TNEWS", "IFLYTEK", "OCNLI", "CMNLI", "CLUEWSC2020", "CSL"]
    assert list(tasks.GLUE_TASKS)[0] == "CoLA" and len(tasks.GLUE_TASKS) == 9  # GLUE's table untouched
    assert tasks.is_task("tnews") and not tasks.is_glue_task("tnews") and tasks.is_glue_task("sst2")
    with pytest.raises(UserError, match=r"unknown task 'wsc'.*CLUE tasks are AFQMC, TNEWS"):
        tasks.get_task("wsc")


def test_label_lists_follow_paddlenlp():
    """In PaddleNLP's order (paddlenlp/datasets/clue.py): what a PaddleNLP-trained checkpoint's outputs mean."""
    labels = {name: spec.labels for name, spec in tasks.CLUE_TASKS.items()}
    assert labels == {
        "AFQMC": ["0", "1"],
        "TNEWS": ["100", "101", "102", "103", "104", "106", "107", "108", "109", "110", "112", "113", "114", "115", "116"],
        "IFLYTEK": [str(i) for i in range(119)],
        "OCNLI": ["entailment", "contradiction", "neutral"],
        "CMNLI": ["contradiction", "entailment", "neutral"],
        "CLUEWSC2020": ["true", "false"],
        "CSL": ["0", "1"],
    }
    assert tasks.get_task("ocnli").label2id == {"entailment": 0, "contradiction": 1, "neutral": 2}
    assert tasks.get_task("cluewsc").id2label == {0: "true", 1: "false"}
    with pytest.raises(UserError, match=r"orders its labels \[contradiction, entailment, neutral\] but OCNLI uses"):
        tasks.check_label_order(tasks.get_task("ocnli"), tasks.get_task("cmnli").label2id)
    with pytest.raises(UserError, match="labels are fixed"):
        tasks.load_task_data(parse("--task_name", "csl", "--labels", "1,0"))


def test_metric_is_accuracy_for_every_clue_task():
    rng = np.random.default_rng(0)
    for spec in tasks.CLUE_TASKS.values():
        preds, labels = rng.integers(0, spec.num_labels, 50), rng.integers(0, spec.num_labels, 50)
        assert spec.main_metric == "acc"
        assert metrics.compute_metrics(spec, preds, labels) == {"acc": pytest.approx(float((preds == labels).mean()))}
    # (users' own many-class data also get macro F1; CLUE tasks are scored as CLUE scores them)
    assert "macro_f1" in metrics.compute_metrics(tasks.custom_task("x", ["a", "b", "c"]), [0, 1, 2], [0, 1, 1])


# ------------------------------------------------------------------------------------- "-" rows


def test_rows_labelled_dash_are_left_out_of_ocnli_and_cmnli(tmp_path, capsys):
    """PaddleNLP's Clue._read skips label "-" in OCNLI train/dev and CMNLI dev; here in CMNLI train too."""
    clue = write_clue(tmp_path, ["OCNLI", "CMNLI"])
    for task in ("OCNLI", "CMNLI"):
        spec, data = tasks.load_task_data(parse("--task_name", task, "--clue_dir", str(clue)), splits=("train", "dev"))
        assert as_tuples(data["dev"]) == EXPECTED[(task, "dev")]
        assert "-" not in {e.label for split in data.values() for e in split}
    err = capsys.readouterr().err
    assert f"note: {clue / 'OCNLI' / 'train.50k.json'}: left out 1 rows labelled '-'" in err
    assert err.count("left out 1 rows labelled '-'") == 3  # OCNLI train, dev; CMNLI dev
    cmnli_train = clue / "CMNLI" / "train.json"
    cmnli_train.write_text(CLUE_FILES["CMNLI"]["train.json"] + jsonl({"sentence1": "甲", "sentence2": "乙", "label": "-"}),
                           encoding="utf-8")
    assert len(tasks.read_glue_examples(cmnli_train, "cmnli")) == 2
    only_dash = tmp_path / "dev.json"
    only_dash.write_text(jsonl({"sentence1": "甲", "sentence2": "乙", "label": "-"}) * 2, encoding="utf-8")
    with pytest.raises(DataError, match="no data rows: all 2 rows are left out"):
        tasks.read_glue_examples(only_dash, "ocnli")
    # Elsewhere "-" is no label: AFQMC's is an error like any unknown label.
    afqmc = tmp_path / "AFQMC" / "train.json"
    afqmc.parent.mkdir()
    afqmc.write_text(jsonl({"sentence1": "甲", "sentence2": "乙", "label": "-"}), encoding="utf-8")
    with pytest.raises(DataError, match=r"train.json:1: unknown label '-' in column 'label' \(AFQMC labels: 0, 1\)"):
        tasks.read_glue_examples(afqmc, "afqmc")


# ------------------------------------------------------------------------------------ bad rows

GOOD_AFQMC = jsonl({"sentence1": "甲", "sentence2": "乙", "label": "1"})


@pytest.mark.parametrize("task, name, text, line, problem", [
    ("AFQMC", "train.json", GOOD_AFQMC + '{"sentence1": "甲", "sentence2": \n', 2, "not a JSON object: Expecting value"),
    ("AFQMC", "train.json", GOOD_AFQMC + "\n" + GOOD_AFQMC, 2, "empty line"),
    ("AFQMC", "train.json", GOOD_AFQMC + '["甲", "乙", "1"]\n', 2, "not a JSON object"),
    ("AFQMC", "train.json", GOOD_AFQMC + jsonl({"sentence1": "甲", "label": "1"}), 2, "no 'sentence2' key"),
    ("AFQMC", "train.json", GOOD_AFQMC + jsonl({"sentence1": "甲", "sentence2": "乙"}), 2, "no 'label' key"),
    ("AFQMC", "dev.json", GOOD_AFQMC + jsonl({"sentence1": "甲", "sentence2": "乙", "label": "2"}), 2,
     "unknown label '2' in column 'label' (AFQMC labels: 0, 1)"),
    ("AFQMC", "train.json", GOOD_AFQMC + jsonl({"sentence1": 7, "sentence2": "乙", "label": "1"}), 2,
     "'sentence1' is int, not text"),
    ("TNEWS", "train.json", jsonl({"label": "105", "sentence": "新闻"}), 1, "unknown label '105' in column 'label' "
     "(TNEWS labels: 100, 101, 102, 103, 104, 106"),
    ("IFLYTEK", "dev.json", jsonl({"label": "1", "sentence": "  "}), 1, "empty text in column 'sentence'"),
    ("CSL", "train.json", jsonl({"id": 1, "abst": "摘要", "keyword": "水声学", "label": "1"}), 1,
     "'keyword' is str, not a list of texts"),
    ("CSL", "train.json", jsonl({"id": 1, "abst": "摘要", "keyword": [], "label": "1"}), 1,
     "empty text in column 'keyword'"),
    ("CLUEWSC2020", "train.json", jsonl({**wsc(WSC_1, "床", "它", label="true"),
                                         "target": {"span1_text": "床", "span1_index": 5, "span2_text": "它",
                                                    "span2_index": 36}}), 1,
     "target's span2_text '它' is not at span2_index 36 of 'text'"),
    ("CLUEWSC2020", "test.json", jsonl({"id": 0, "text": WSC_1}), 1, "no 'target' key"),
])
def test_bad_rows_name_file_line_and_problem(tmp_path, task, name, text, line, problem):
    path = tmp_path / task / name
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as e:
        tasks.read_glue_examples(path, task)
    assert (e.value.path, e.value.line) == (str(path), line)
    assert problem in e.value.problem
    assert str(e.value).startswith(f"{path}:{line}: ")


def test_bad_bytes_empty_files_and_skip_bad_rows(tmp_path, capsys):
    clue = write_clue(tmp_path / "CLUE", ["AFQMC"])
    train = clue / "AFQMC" / "train.json"
    train.write_bytes(GOOD_AFQMC.encode() + b'{"sentence1": "caf\xe9", "sentence2": "b", "label": "1"}\n'
                      + jsonl({"sentence1": "甲", "sentence2": "乙", "label": "9"}).encode() + b"\n"
                      + GOOD_AFQMC.encode())
    with pytest.raises(DataError, match=r"train.json:2: not valid UTF-8 \(byte 0xe9"):
        tasks.load_task_data(parse("--task_name", "afqmc", "--clue_dir", str(clue)))
    spec, data = tasks.load_task_data(parse("--task_name", "afqmc", "--clue_dir", str(clue), "--skip_bad_rows"))
    assert [e.line for e in data["train"]] == [1, 5]
    err = capsys.readouterr().err
    assert f"{train}: skipped 3 bad rows (--skip_bad_rows) at lines 2, 3, 4; first: line 2: not valid UTF-8" in err
    (clue / "AFQMC" / "dev.json").write_text("")
    with pytest.raises(DataError, match=r"dev.json: empty file"):
        tasks.load_task_data(parse("--task_name", "afqmc", "--clue_dir", str(clue), "--skip_bad_rows"))


def test_texts_made_of_several_fields_cannot_be_rewritten(tmp_path):
    clue = write_clue(tmp_path, ["CSL", "AFQMC"])
    rows = tasks.task_rows(clue / "CSL" / "train.json", "csl")
    with pytest.raises(UserError, match="CSL's texts are made from several fields"):
        rows.with_text(next(rows.read()), 0, "新")
    rows = tasks.task_rows(clue / "AFQMC" / "train.json", "afqmc")  # plain texts are written back in place
    row = next(rows.read())
    assert json.loads(rows.row_text(rows.with_text(row, 1, "新句子"))) == {**row, "sentence2": "新句子"}
    assert rows.header_text() == ""


# ---------------------------------------------------------------------------------- submissions


def test_submission_file_names_are_clues():
    """CLUE 1.1's names as PaddleNLP's run_clue_classifier.py --do_predict writes them (1.0's for test1.0)."""
    names = {name: spec.submission_files for name, spec in tasks.CLUE_TASKS.items()}
    assert names == {"AFQMC": {"test": "afqmc_predict.json"},
                     "TNEWS": {"test": "tnews11_predict.json", "test1.0": "tnews10_predict.json"},
                     "IFLYTEK": {"test": "iflytek_predict.json"},
                     "OCNLI": {"test": "ocnli_50k_predict.json"},
                     "CMNLI": {"test": "cmnli_predict.json"},
                     "CLUEWSC2020": {"test": "cluewsc11_predict.json", "test1.0": "cluewsc10_predict.json"},
                     "CSL": {"test": "csl_predict.json"}}


def test_submission_files_hold_id_and_label_per_line(tmp_path):
    examples = [Example("甲", "乙", None, "0", 1), Example("丙", "丁", None, "1", 2), Example("戊", "己", None, "2", 3)]
    path = tasks.write_submission(tasks.get_task("ocnli"), examples, np.array([2, 0, 1]), tmp_path)
    assert path == tmp_path / "ocnli_50k_predict.json"
    assert path.read_text() == ('{"id": 0, "label": "neutral"}\n{"id": 1, "label": "entailment"}\n'
                                '{"id": 2, "label": "contradiction"}\n')
    tnews = tasks.write_submission(tasks.get_task("tnews"), examples[:2], [0, 14], tmp_path, split="test1.0")
    assert tnews.name == "tnews10_predict.json"
    assert [json.loads(line) for line in tnews.read_text().splitlines()] == [{"id": 0, "label": "100"},
                                                                            {"id": 1, "label": "116"}]
    with pytest.raises(UserError, match="exists"):
        tasks.write_submission(tasks.get_task("tnews"), examples[:2], [0, 14], tmp_path, split="test1.0")
    with pytest.raises(UserError, match="no CLUE submission file for AFQMC split 'test1.0'"):
        tasks.write_submission(tasks.get_task("afqmc"), examples, [0, 0, 0], tmp_path, split="test1.0")
    odd = tasks.write_submission(tasks.get_task("csl"), [Example("a", "b", None, "x-7", 1)], [1], tmp_path)
    assert odd.read_text() == '{"id": "x-7", "label": "1"}\n'  # an id that is no number stays text


@pytest.fixture(scope="module")
def afqmc_model(tmp_path_factory) -> dict[str, Path]:
    """A tiny 2-label checkpoint with AFQMC's labels, and its export recording the task."""
    import export_model

    root = tmp_path_factory.mktemp("afqmc")
    checkpoint = make_checkpoint(root / "ckpt", model_type="bert", num_labels=2, labels=["0", "1"], seed=4)
    export_model.export_model(checkpoint, root / "export", task_name="AFQMC")
    return {"checkpoint": checkpoint, "export": root / "export"}


def test_predict_writes_the_clue_submission(afqmc_model, tmp_path):
    clue = tmp_path / "CLUE"
    (clue / "afqmc_public").mkdir(parents=True)
    (clue / "afqmc_public" / "test.json").write_text(
        jsonl(*({"id": i, "sentence1": a, "sentence2": b} for i, (a, b) in enumerate(PAIRS))), encoding="utf-8")
    out = tmp_path / "out"
    # The task recorded at export is used; --submission_dir is --glue_submission's other name.
    predict.main(["--model_path", str(afqmc_model["export"]), "--clue_dir", str(clue), "--submission_dir", str(out)],
                 stdout=None)
    records = [json.loads(line) for line in (out / "afqmc_predict.json").read_text().splitlines()]
    expected = reference_probabilities(afqmc_model["checkpoint"], [a for a, _ in PAIRS], [b for _, b in PAIRS])
    assert records == [{"id": i, "label": str(k)} for i, k in enumerate(expected.argmax(axis=1))]
    assert sorted(p.name for p in out.iterdir()) == ["afqmc_predict.json"]


def test_predict_writes_clue_10_submission_from_a_test_file(tmp_path):
    labels = tasks.get_task("tnews").labels
    checkpoint = make_checkpoint(tmp_path / "tnews", model_type="bert", num_labels=len(labels), labels=labels)
    test10 = tmp_path / "tnews_public" / "test1.0.json"
    test10.parent.mkdir()
    test10.write_text(jsonl({"id": 5, "sentence": "股市今天大涨"}, {"id": 7, "sentence": "a very good film"}),
                      encoding="utf-8")
    predict.main(["--model_path", str(checkpoint), "--task_name", "tnews", "--test_file", str(test10),
                  "--glue_submission", str(tmp_path / "out"), "--output_file", str(tmp_path / "all.jsonl")])
    records = [json.loads(line) for line in (tmp_path / "out" / "tnews10_predict.json").read_text().splitlines()]
    assert [r["id"] for r in records] == [5, 7] and {r["label"] for r in records} <= set(labels)
    full = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert [r["label"] for r in full] == [r["label"] for r in records]


# ------------------------------------------------------------------------------- through the scripts


def test_bad_row_exits_2_with_one_line_from_finetune_teacher(tmp_path, tiny_bert, capsys):
    clue = write_clue(tmp_path / "CLUE", ["AFQMC"])
    train = clue / "AFQMC" / "train.json"
    train.write_text(GOOD_AFQMC + jsonl({"sentence1": "甲", "sentence2": "乙", "label": "2"}), encoding="utf-8")
    argv = ["--model_type", "bert", "--model_name_or_path", str(tiny_bert), "--task_name", "afqmc",
            "--clue_dir", str(clue), "--max_seq_length", "16", "--batch_size", "4", "--max_steps", "2",
            "--save_steps", "2", "--output_dir", str(tmp_path / "out"), "--device", "cpu"]
    with pytest.raises(SystemExit) as exit_info:
        finetune_teacher.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (f"error: {train}:2: unknown label '2' in column 'label' "
                                            f"(AFQMC labels: 0, 1)") and "Traceback" not in err
    summary = finetune_teacher.main(argv + ["--skip_bad_rows", "--overwrite_output_dir"])  # the bad row left out
    assert summary["main_metric"] == "acc" and "skipped 1 bad rows" in capsys.readouterr().err
    config = json.loads((tmp_path / "out" / "best_model" / "config.json").read_text())
    assert config["label2id"] == {"0": 0, "1": 1}


def test_bad_row_exits_2_with_one_line_from_predict(afqmc_model, tmp_path, capsys):
    clue = write_clue(tmp_path / "CLUE", ["AFQMC"])
    test = clue / "AFQMC" / "test.json"
    test.write_text(CLUE_FILES["AFQMC"]["test.json"] + jsonl({"id": 2, "sentence1": "甲"}), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["--model_path", str(afqmc_model["export"]), "--task_name", "AFQMC", "--clue_dir", str(clue),
                      "--submission_dir", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {test}:3: no 'sentence2' key"
    assert not out.exists()  # nothing written
    with pytest.raises(SystemExit):  # a 2-output model is not TNEWS's 15 labels
        predict.main(["--model_path", str(afqmc_model["export"]), "--task_name", "tnews", "--clue_dir", str(clue),
                      "--submission_dir", str(out)])
    assert "2 outputs but TNEWS has 15 labels" in capsys.readouterr().err
