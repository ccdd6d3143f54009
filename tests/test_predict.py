"""predict.py on each input kind (stdin, CSV, TSV, JSONL, GLUE test files), its outputs, and its errors."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from builders import PAIRS, make_checkpoint, reference_probabilities

import export_model
from tinybert import inference
from tinybert.models import modeling
import predict


REVIEWS = ["a very good film", "this movie was awful and boring", "fun", "the plot is not funny but the actor is great",
           "i love this cat", "sad story"]
MNLI_COLUMNS = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Checkpoints and their exports, made once for the module."""
    root = tmp_path_factory.mktemp("models")
    folders = {
        "three": make_checkpoint(root / "three", labels=["negative", "neutral", "positive"]),
        "sst": make_checkpoint(root / "sst", model_type="bert", num_labels=2, seed=1),
        "mnli": make_checkpoint(root / "mnli", num_labels=3, seed=2),
        "score": make_checkpoint(root / "score", num_labels=1, seed=3),
    }
    tasks = {"sst": "SST-2", "mnli": "MNLI"}
    for name, folder in list(folders.items()):
        folders[name + "_export"] = root / (name + "_export")
        export_model.export_model(folder, folders[name + "_export"], task_name=tasks.get(name))
    return folders


def run(argv: list[str], stdin_text: str = "") -> str:
    """predict.main in this process; returns what it wrote to stdout."""
    stdout = io.StringIO()
    predict.main(argv, stdin=io.StringIO(stdin_text), stdout=stdout)
    return stdout.getvalue()


def read_tsv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def probabilities(rows: list[dict[str, str]], labels: list[str]) -> np.ndarray:
    return np.array([[float(row[f"prob_{label}"]) for label in labels] for row in rows])


LABELS = ["negative", "neutral", "positive"]


def test_stdin_lines_give_labels_and_probabilities_in_input_order(models):
    rows = read_tsv(run(["--model_path", str(models["three_export"]), "--batch_size", "4"],
                        "\n".join(REVIEWS) + "\n\n"))
    assert [row["text_a"] for row in rows] == REVIEWS
    assert [row["index"] for row in rows] == [str(i) for i in range(len(REVIEWS))]
    probs = probabilities(rows, LABELS)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs, reference_probabilities(models["three"], REVIEWS), atol=1e-5)
    assert [row["label"] for row in rows] == [LABELS[i] for i in probs.argmax(axis=1)]
    assert len({row["label"] for row in rows}) > 1  # the tiny model does not answer one label for all


def test_checkpoint_folder_runs_eagerly_with_the_same_results(models):
    exported = probabilities(read_tsv(run(["--model_path", str(models["three_export"])], "\n".join(REVIEWS))), LABELS)
    eager = probabilities(read_tsv(run(["--model_path", str(models["three"])], "\n".join(REVIEWS))), LABELS)
    np.testing.assert_allclose(eager, exported, atol=1e-5)


def test_stdin_and_file_predictions_have_one_format(models, tmp_path: Path):
    """TSV with a header line, whether the predictions go to stdout or to a file, from stdin or a file."""
    text = "\n".join(REVIEWS) + "\n"
    to_stdout = run(["--model_path", str(models["three_export"])], text)
    out = tmp_path / "predictions.tsv"
    run(["--model_path", str(models["three_export"]), "--output_file", str(out)], text)
    assert out.read_text() == to_stdout
    assert to_stdout.splitlines()[0].split("\t") == ["index", "text_a", "label", *(f"prob_{l}" for l in LABELS)]
    source = tmp_path / "reviews.tsv"
    source.write_text("text\n" + text)
    from_file = run(["--model_path", str(models["three_export"]), "--test_file", str(source)])
    assert from_file.splitlines()[0] == to_stdout.splitlines()[0]
    assert [r["label"] for r in read_tsv(from_file)] == [r["label"] for r in read_tsv(to_stdout)]


def test_stdin_pairs_split_on_tab(models):
    lines = "".join(f"{a}\t{b}\n" for a, b in PAIRS)
    rows = read_tsv(run(["--model_path", str(models["three_export"])], lines))
    assert [(row["text_a"], row["text_b"]) for row in rows] == PAIRS
    expected = reference_probabilities(models["three"], [a for a, _ in PAIRS], [b for _, b in PAIRS])
    np.testing.assert_allclose(probabilities(rows, LABELS), expected, atol=1e-5)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_own_files_to_jsonl(models, tmp_path: Path, fmt: str):
    source = tmp_path / f"reviews.{fmt}"
    if fmt == "jsonl":
        source.write_text("".join(json.dumps({"review": text, "id": i}) + "\n" for i, text in enumerate(REVIEWS)))
    else:
        with open(source, "w", newline="") as f:
            writer = csv.writer(f, delimiter="," if fmt == "csv" else "\t")
            writer.writerow(["id", "review"])
            writer.writerows(enumerate(REVIEWS))
    out = tmp_path / "predictions.jsonl"
    run(["--model_path", str(models["three_export"]), "--test_file", str(source), "--text_a_column", "review",
         "--output_file", str(out), "--batch_size", "2"])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text_a"] for r in records] == REVIEWS
    probs = np.array([[r["probabilities"][label] for label in LABELS] for r in records])
    np.testing.assert_allclose(probs, reference_probabilities(models["three"], REVIEWS), atol=1e-5)
    assert [r["label"] for r in records] == [LABELS[i] for i in probs.argmax(axis=1)]


def test_regression_model_writes_scores(models, tmp_path: Path):
    out = tmp_path / "scores.tsv"
    run(["--model_path", str(models["score_export"]), "--output_file", str(out)], "\n".join(REVIEWS))
    rows = read_tsv(out.read_text())
    assert list(rows[0]) == ["index", "text_a", "score"]
    model = modeling.load_classifier(models["score"])
    from tinybert.data.tokenization import BertTokenizer

    ids = BertTokenizer.from_pretrained(models["score"])(REVIEWS[:1])["input_ids"][0]
    expected = inference.EagerModel(model)({"input_ids": np.array([ids]), "token_type_ids": np.zeros((1, len(ids))),
                                               "attention_mask": np.ones((1, len(ids)))})[0, 0]
    assert float(rows[0]["score"]) == pytest.approx(float(expected), abs=1e-5)


def write_glue_sst2(folder: Path, sentences: list[str]) -> Path:
    folder.mkdir(parents=True)
    with open(folder / "test.tsv", "w") as f:
        f.write("index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, s in enumerate(sentences)))
    return folder


def test_glue_test_file_to_submission(models, tmp_path: Path):
    glue = tmp_path / "glue"
    write_glue_sst2(glue / "SST-2", REVIEWS)
    # The task recorded at export (SST-2) is used: --task_name may be left out with GLUE flags.
    run(["--model_path", str(models["sst_export"]), "--glue_dir", str(glue),
         "--glue_submission", str(tmp_path / "out")])
    lines = (tmp_path / "out" / "SST-2.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction"
    assert [line.split("\t")[0] for line in lines[1:]] == [str(i) for i in range(len(REVIEWS))]
    expected = reference_probabilities(models["sst"], REVIEWS).argmax(axis=1)
    assert [line.split("\t")[1] for line in lines[1:]] == [str(i) for i in expected]


def test_mnli_writes_matched_and_mismatched_submissions(models, tmp_path: Path):
    data = tmp_path / "MNLI"
    data.mkdir()
    for split in ("test_matched", "test_mismatched"):
        with open(data / f"{split}.tsv", "w") as f:
            f.write("\t".join(MNLI_COLUMNS) + "\n")
            for i, (a, b) in enumerate(PAIRS):
                f.write("\t".join([str(i), "0", "0", "fiction", "", "", "", "", a, b]) + "\n")
    out = tmp_path / "out"
    tsv = run(["--model_path", str(models["mnli_export"]), "--task_name", "mnli", "--data_dir", str(data),
               "--glue_submission", str(out), "--output_file", "-"])
    expected = reference_probabilities(models["mnli"], [a for a, _ in PAIRS], [b for _, b in PAIRS]).argmax(axis=1)
    labels = ["contradiction", "entailment", "neutral"]  # GLUE's MNLI order, recorded at export
    for name in ("MNLI-m.tsv", "MNLI-mm.tsv"):
        lines = (out / name).read_text().splitlines()
        assert lines[0] == "index\tprediction"
        assert [line.split("\t")[1] for line in lines[1:]] == [labels[i] for i in expected]
    rows = read_tsv(tsv)  # both splits in one table, told apart by a split column
    assert [row["split"] for row in rows] == ["test_matched"] * 3 + ["test_mismatched"] * 3


def test_real_glue_sst2_test_set(models, glue_dir: Path, tmp_path: Path):
    run(["--model_path", str(models["sst_export"]), "--task_name", "SST-2", "--glue_dir", str(glue_dir),
         "--glue_submission", str(tmp_path), "--batch_size", "128"])
    lines = (tmp_path / "SST-2.tsv").read_text().splitlines()
    with open(glue_dir / "SST-2" / "test.tsv") as f:
        n_test = sum(1 for _ in f) - 1
    assert len(lines) == n_test + 1
    assert {line.split("\t")[1] for line in lines[1:]} <= {"0", "1"}


def test_onnx_runtime_gives_the_same_probabilities(models, tmp_path: Path):
    pytest.importorskip("paddle2onnx")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "onnx_export"
    export_model.export_model(models["three"], out, onnx=True)
    onnx_rows = read_tsv(run(["--model_path", str(out), "--runtime", "onnxruntime"], "\n".join(REVIEWS)))
    np.testing.assert_allclose(probabilities(onnx_rows, LABELS), reference_probabilities(models["three"], REVIEWS),
                               atol=1e-5)


def one_line_error(argv: list[str], capsys, stdin_text: str = "x\n") -> str:
    with pytest.raises(SystemExit) as exit_info:
        run(argv, stdin_text)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ")
    return err[-1]


def test_user_mistakes_are_one_line_errors(models, tmp_path: Path, capsys):
    export = str(models["three_export"])
    existing = tmp_path / "out.tsv"
    existing.write_text("keep")
    assert "--overwrite" in one_line_error(["--model_path", export, "--output_file", str(existing)], capsys)
    assert existing.read_text() == "keep"
    assert "3 outputs but SST-2 has 2" in one_line_error(["--model_path", export, "--task_name", "sst-2"], capsys)
    assert "differ from the model's" in one_line_error(["--model_path", export, "--labels", "a,b,c"], capsys)
    assert "no such folder" in one_line_error(["--model_path", str(tmp_path / "nope")], capsys)
    assert "no text" in one_line_error(["--model_path", export], capsys, stdin_text="\n")
    assert "position embeddings" in one_line_error(["--model_path", export, "--max_seq_length", "100"], capsys)
    assert "needs a GLUE --task_name" in one_line_error(["--model_path", export, "--glue_submission", str(tmp_path)],
                                                        capsys)
    # model.onnx missing, or onnxruntime itself: either way the message names what to do
    assert "onnx" in one_line_error(["--model_path", export, "--runtime", "onnxruntime"], capsys).lower()


def test_int8_export_runs_unchanged_and_agrees_with_float(models, tmp_path: Path, capsys):
    pytest.importorskip("paddle2onnx")
    pytest.importorskip("onnxruntime.quantization")
    out = tmp_path / "int8"
    export_model.export_model(models["three"], out, quantize="int8")
    capsys.readouterr()
    texts = "\n".join(REVIEWS + [a for a, _ in PAIRS] + [b for _, b in PAIRS])
    int8_rows = read_tsv(run(["--model_path", str(out)], texts))  # no --runtime: the export's INT8 model
    assert "with onnxruntime int8 on cpu" in capsys.readouterr().err
    float_rows = read_tsv(run(["--model_path", str(models["three_export"])], texts))
    assert [r["text_a"] for r in int8_rows] == [r["text_a"] for r in float_rows]
    agree = np.mean([a["label"] == b["label"] for a, b in zip(int8_rows, float_rows)])
    assert agree >= 0.75  # 12 rows; quantization may flip a near tie (test_export bounds the logits)
    int8_probs, float_probs = probabilities(int8_rows, LABELS), probabilities(float_rows, LABELS)
    assert np.abs(int8_probs - float_probs).mean() <= 0.05
    assert np.abs(int8_probs - float_probs).max() > 0  # the INT8 model ran, not the float graph
    # --runtime paddle_inference runs the float graph kept in the INT8 export: the float export's numbers
    kept = read_tsv(run(["--model_path", str(out), "--runtime", "paddle_inference"], texts))
    np.testing.assert_allclose(probabilities(kept, LABELS), float_probs, rtol=0, atol=2e-6)
