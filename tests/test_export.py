"""export_model.py: the static graph's files, dynamic shapes, parity with the eager model, labels, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinybert.models import checkpoints
from tinybert import errors
import export_model
from tinybert import inference
from tinybert.models import modeling
from builders import make_checkpoint, random_batch


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "ckpt", labels=["negative", "neutral", "positive"])


def eager_runner(folder: Path) -> inference.EagerModel:
    model = modeling.load_classifier(folder)
    return inference.EagerModel(model)


def test_export_writes_model_tokenizer_and_labels(checkpoint: Path, tmp_path: Path):
    out = tmp_path / "infer"
    info = export_model.export_model(checkpoint, out)
    names = {p.name for p in out.iterdir()}
    assert {"model.json", "model.pdiparams", "vocab.txt", "tokenizer_config.json", "inference_config.json"} <= names
    assert "model.onnx" not in names
    assert (out / "vocab.txt").read_text() == (checkpoint / "vocab.txt").read_text()
    saved = json.loads((out / "inference_config.json").read_text())
    assert saved["labels"] == ["negative", "neutral", "positive"]
    assert saved["num_labels"] == 3
    assert saved["model_type"] == "tinybert"
    assert saved["inputs"] == ["input_ids", "token_type_ids", "attention_mask"]
    assert saved["max_seq_length"] == 64  # the model has 64 positions: fewer than the usual 128
    assert info["max_abs_diff"]["paddle_inference"] <= 1e-5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


@pytest.mark.parametrize("use_onednn", [True, False])
def test_paddle_inference_matches_eager_for_any_batch_and_length(checkpoint: Path, tmp_path: Path,
                                                                  use_onednn: bool):
    out = tmp_path / "infer"
    export_model.export_model(checkpoint, out)
    eager = eager_runner(checkpoint)
    static = inference.exported_runner(out, cpu_threads=1, use_onednn=use_onednn)
    for batch_size, seq_len, seed in [(1, 5, 0), (4, 23, 1), (7, 64, 2), (2, 9, 3)]:  # dynamic B and S
        batch = random_batch(batch_size, seq_len, seed)
        expected = eager(batch)
        got = static(batch)
        assert got.shape == (batch_size, 3)
        assert np.abs(expected).max() > 0.1  # the bound below is not met by tiny numbers alone
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_bert_regression_model_exports(tmp_path: Path):
    checkpoint = make_checkpoint(tmp_path / "ckpt", model_type="bert", num_labels=1)
    out = tmp_path / "infer"
    export_model.export_model(checkpoint, out, max_seq_length=32)
    saved = json.loads((out / "inference_config.json").read_text())
    assert (saved["model_type"], saved["num_labels"], saved["labels"], saved["max_seq_length"]) == ("bert", 1, None, 32)
    batch = random_batch(3, 12, 0)
    np.testing.assert_allclose(inference.exported_runner(out)(batch), eager_runner(checkpoint)(batch),
                               rtol=0, atol=1e-5)


def test_onnx_export_matches_eager(checkpoint: Path, tmp_path: Path):
    pytest.importorskip("paddle2onnx")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "infer"
    info = export_model.export_model(checkpoint, out, onnx=True)
    assert (out / "model.onnx").is_file()
    assert info["max_abs_diff"]["onnxruntime"] <= 1e-5
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "token_type_ids", "attention_mask"]
    runner, eager = inference.onnx_runner(out, cpu_threads=1), eager_runner(checkpoint)
    for batch_size, seq_len, seed in [(1, 4, 0), (5, 31, 1)]:
        batch = random_batch(batch_size, seq_len, seed)
        np.testing.assert_allclose(runner(batch), eager(batch), rtol=0, atol=1e-5)


def test_onnx_without_paddle2onnx_says_what_to_install(checkpoint: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "paddle2onnx", None)  # import fails as if not installed
    with pytest.raises(errors.UserError, match="pip install paddle2onnx"):
        export_model.export_model(checkpoint, tmp_path / "infer", onnx=True)
    assert not (tmp_path / "infer").exists()  # nothing half-written


def test_task_names_unnamed_outputs_and_wrong_task_is_refused(tmp_path: Path):
    checkpoint = make_checkpoint(tmp_path / "ckpt", num_labels=2)  # config.json says LABEL_0, LABEL_1
    export_model.export_model(checkpoint, tmp_path / "a")
    assert json.loads((tmp_path / "a" / "inference_config.json").read_text())["labels"] is None
    export_model.export_model(checkpoint, tmp_path / "b", task_name="sst-2")
    saved = json.loads((tmp_path / "b" / "inference_config.json").read_text())
    assert (saved["labels"], saved["task_name"]) == (["0", "1"], "sst-2")
    with pytest.raises(errors.UserError, match="2 outputs but MNLI has 3"):
        export_model.export_model(checkpoint, tmp_path / "c", task_name="mnli")


def test_existing_output_is_kept_unless_overwrite(checkpoint: Path, tmp_path: Path):
    out = tmp_path / "infer"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(errors.UserError, match="--overwrite"):
        export_model.export_model(checkpoint, out)
    assert (out / "keep.txt").read_text() == "mine"
    # --overwrite replaces only a folder this project wrote: the user's folder is refused, and kept.
    with pytest.raises(errors.UserError, match="replaces only a folder this project wrote"):
        export_model.export_model(checkpoint, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"
    ours = tmp_path / "ours"
    export_model.export_model(checkpoint, ours)
    (ours / "stale.txt").write_text("from an older export")
    export_model.export_model(checkpoint, ours, overwrite=True)
    assert inference.is_exported_dir(ours) and not (ours / "stale.txt").exists()


def test_command_line_export_and_one_line_errors(checkpoint: Path, tmp_path: Path, capsys):
    export_model.main(["--model_path", str(checkpoint), "--output_path", str(tmp_path / "infer")])
    out = capsys.readouterr().out
    assert "parity paddle_inference" in out and "exported tinybert model" in out
    with pytest.raises(SystemExit) as exit_info:
        export_model.main(["--model_path", str(tmp_path / "missing"), "--output_path", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "missing" in err
    with pytest.raises(SystemExit):
        export_model.main(["--model_path", str(checkpoint), "--output_path", str(tmp_path / "y"),
                           "--max_seq_length", "65"])
    assert "64 position embeddings" in capsys.readouterr().err


def test_runner_refuses_a_folder_without_an_export(checkpoint: Path):
    with pytest.raises(errors.UserError, match="export_model.py"):
        inference.exported_runner(checkpoint)


def test_task_and_length_come_from_the_checkpoints_own_training_record(tmp_path: Path):
    """A student distilled at 64 on SST-2 exports with task SST-2 and length 64, not None and 128."""
    folder = make_checkpoint(tmp_path / "ckpt", labels=["0", "1"])
    (folder / checkpoints.TRAINING_ARGS).write_text(json.dumps({"task_name": "SST-2", "max_seq_length": 24}))
    info = export_model.export_model(folder, tmp_path / "infer")
    written = json.loads((tmp_path / "infer" / inference.INFERENCE_CONFIG).read_text())
    assert (info["task_name"], info["max_seq_length"]) == ("SST-2", 24)
    assert (written["task_name"], written["max_seq_length"], written["labels"]) == ("SST-2", 24, ["0", "1"])
    info = export_model.export_model(folder, tmp_path / "infer2", max_seq_length=16)  # a flag still wins
    assert info["max_seq_length"] == 16


# ----------------------------------------------------------------------------------------- INT8 export

THREE = ["negative", "neutral", "positive"]
DEV_TEXTS = ["a very good film", "this movie was awful and boring", "fun", "sad story", "i love this cat",
             "the plot is not funny but the actor is great", "a big red dog", "she is happy", "he said it was fine",
             "the old man walked in the night"]


def write_dev_csv(path: Path, labels: list[str]) -> Path:
    rows = [f'"{text}",{labels[i % len(labels)]}' for i, text in enumerate(DEV_TEXTS * 2)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def accuracy_of(runner, folder: Path, dev_file: Path) -> float:
    """Accuracy computed here, row by row without padding: the reference for the recorded metric."""
    from tinybert.data.tokenization import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(folder)
    texts, labels = zip(*[line.rsplit(",", 1) for line in dev_file.read_text().splitlines()[1:]])
    hits = 0
    for text, label in zip(texts, labels):
        ids = tokenizer([text.strip('"')], None, max_seq_length=64)["input_ids"][0]
        batch = {"input_ids": np.array([ids]), "token_type_ids": np.zeros((1, len(ids)), dtype=np.int64),
                 "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        hits += THREE[int(runner(batch)[0].argmax())] == label
    return hits / len(texts)


@pytest.fixture
def int8_export(checkpoint: Path, tmp_path: Path) -> tuple[Path, Path, dict]:
    pytest.importorskip("paddle2onnx")
    pytest.importorskip("onnxruntime.quantization")
    from tinybert.data import tasks

    dev_file = write_dev_csv(tmp_path / "dev.csv", THREE)
    out = tmp_path / "int8"
    info = export_model.export_model(checkpoint, out, quantize="int8", data=tasks.DataConfig(dev_file=str(dev_file)))
    return out, dev_file, info


def test_int8_export_is_what_predict_runs_and_stays_close_to_float(checkpoint: Path, int8_export):
    out, _, info = int8_export
    names = {p.name for p in out.iterdir()}
    assert {"model.json", "model.pdiparams", "model.onnx", "model_int8.onnx", "inference_config.json"} <= names
    saved = json.loads((out / "inference_config.json").read_text())
    assert (saved["quantize"], saved["runtime"], saved["quantized_model"]) == ("int8", "onnxruntime", "model_int8.onnx")
    assert saved["onnx"] is True  # the float ONNX graph is the quantizer's input, and is kept
    # int8 weights: the quantized file is well under the float one (4 bytes a weight)
    assert (out / "model_int8.onnx").stat().st_size < 0.6 * (out / "model.onnx").stat().st_size
    predictor = inference.load_predictor(out, cpu_threads=1)  # no runtime given: the export's own
    assert predictor.runtime == "onnxruntime int8"
    assert inference.load_predictor(out, runtime="paddle_inference").runtime == "paddle_inference"
    eager = eager_runner(checkpoint)
    for batch_size, seq_len, seed in [(16, 20, 0), (8, 64, 1)]:
        batch = random_batch(batch_size, seq_len, seed)
        expected, got = eager(batch), predictor.run(batch)
        assert got.shape == expected.shape
        scale = np.abs(expected).max()
        assert scale > 0.5
        # Activations are rounded to 8 bits of each batch's range and weights to 7 bits of each channel's:
        # about 1% per matrix product, compounding over the 2 layers, pooler and classifier to a few
        # percent. A wrong scale or zero point is off by the logits' own size, far above this.
        assert np.abs(got - expected).mean() <= 0.05 * scale
        assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.85
        assert np.abs(got - expected).max() > 1e-5  # it is quantized, not the float graph under another name
    assert 0 < info["max_abs_diff"]["onnxruntime_int8"] <= 0.5 * max(1.0, scale)


def test_int8_export_records_float_and_int8_dev_metrics(checkpoint: Path, int8_export):
    out, dev_file, info = int8_export
    saved = json.loads((out / "inference_config.json").read_text())
    assert saved["dev_metrics"] == info["dev_metrics"]
    float_runner = inference.exported_runner(out)
    int8_runner = inference.onnx_runner(out, file_name=inference.INT8_ONNX_FILE)
    assert saved["dev_metrics"]["float"]["acc"] == pytest.approx(accuracy_of(float_runner, out, dev_file))
    assert saved["dev_metrics"]["int8"]["acc"] == pytest.approx(accuracy_of(int8_runner, out, dev_file))


def test_int8_command_line_prints_both_metrics_and_refuses_bad_combinations(checkpoint: Path, tmp_path: Path,
                                                                           capsys, monkeypatch):
    pytest.importorskip("paddle2onnx")
    pytest.importorskip("onnxruntime.quantization")
    dev_file = write_dev_csv(tmp_path / "dev.csv", THREE)
    export_model.main(["--model_path", str(checkpoint), "--output_path", str(tmp_path / "int8"),
                       "--quantize", "int8", "--dev_file", str(dev_file), "--batch_size", "4"])
    out = capsys.readouterr().out
    assert "dev float (paddle_inference, 20 rows): acc " in out and "dev int8 (onnxruntime, 20 rows): acc " in out
    assert "int8 onnxruntime: max |logit difference|" in out

    def one_line_error(argv: list[str]) -> str:
        with pytest.raises(SystemExit) as exit_info:
            export_model.main(["--model_path", str(checkpoint), "--output_path", str(tmp_path / "bad")] + argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert not (tmp_path / "bad").exists()  # refused before anything is written
        return err

    assert "--opset_version 11 or later" in one_line_error(["--quantize", "int8", "--opset_version", "10"])
    assert "differ from the model's" in one_line_error(["--quantize", "int8", "--dev_file", str(dev_file),
                                                        "--labels", "a,b,c"])
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("text\na good film\nsad story\n")
    assert "--label_column" in one_line_error(["--quantize", "int8", "--dev_file", str(unlabelled)])
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime.quantization", None)  # as if not installed
    assert "pip install onnxruntime onnx ml_dtypes" in one_line_error(["--quantize", "int8"])
