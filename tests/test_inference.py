"""inference.py is the one builder of Paddle Inference runners: export's parity check, predict.py and the
augmentation's masked-LM all go through paddle_inference_runner, with the same CPU pass list (exact GELU)."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import paddle
import pytest

from tinybert.augmentation import augment
import export_model
from tinybert import inference
from tinybert import errors
from tinybert.models import modeling
from builders import make_checkpoint, random_batch, write_vocab
from tinybert.data.tokenization import BertTokenizer


def test_export_predict_and_augmentation_build_the_same_runner(tmp_path: Path, monkeypatch):
    calls: list[tuple] = []
    real = inference.paddle_inference_runner

    def recording(model_file, params_file, input_names, device="cpu", cpu_threads=None, use_onednn=True,
                  onednn_cache=inference.ONEDNN_CACHE_SHAPES):
        calls.append((Path(model_file).name, tuple(input_names), device, use_onednn))
        return real(model_file, params_file, input_names, device, cpu_threads, use_onednn, onednn_cache)

    monkeypatch.setattr(inference, "paddle_inference_runner", recording)
    folder = make_checkpoint(tmp_path / "ckpt", labels=["a", "b", "c"])
    export_model.export_model(folder, tmp_path / "infer")                  # the parity check
    predictor = inference.load_predictor(tmp_path / "infer")                # predict.py, demo.py
    write_vocab(tmp_path / "mlm")
    tok = BertTokenizer.from_pretrained(tmp_path / "mlm")
    paddle.seed(0)
    mlm = modeling.BertForMaskedLM(modeling.BertConfig(vocab_size=tok.vocab_size, hidden_size=16,
                                                       num_hidden_layers=1, num_attention_heads=2,
                                                       intermediate_size=32, max_position_embeddings=32))
    top = augment.MaskedLMPredictor(mlm, tok, 3, 4, "inference")            # data_augmentation.py
    assert top.engine == "inference"
    assert [c[0] for c in calls] == ["model.json", "model.json", "mlm_topk.json"]
    assert all(c[2] == "cpu" and c[3] for c in calls)  # one device rule, oneDNN with the same passes
    assert calls[0][1] == calls[1][1] == inference.INPUT_NAMES
    batch = {name: np.ones((1, 4), dtype=np.int64) for name in inference.INPUT_NAMES}
    assert predictor.run(batch).shape == (1, 3)
    # The passes are BERT's: exact erf GELU (the fused FC+GELU's tanh approximation is off by ~1e-4).
    batch = random_batch(4, 12, seed=1)
    eager = inference.EagerModel(modeling.load_classifier(folder))
    np.testing.assert_allclose(predictor.run(batch), eager(batch), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """A checkpoint and its export with model.onnx beside the Paddle graph (ONNX when paddle2onnx is there)."""
    root = tmp_path_factory.mktemp("exported")
    checkpoint = make_checkpoint(root / "ckpt", labels=["a", "b", "c"], seed=2)
    onnx = bool(importlib.util.find_spec("paddle2onnx")) and bool(importlib.util.find_spec("onnxruntime"))
    export_model.export_model(checkpoint, root / "infer", onnx=onnx)
    return {"checkpoint": checkpoint, "export": root / "infer"}


@pytest.mark.parametrize("source, runtime, expected", [
    ("checkpoint", None, "eager"),
    ("export", None, "paddle_inference"),
    ("export", "paddle_inference", "paddle_inference"),
    ("export", "onnxruntime", "onnxruntime"),
])
def test_each_runtime_gives_the_eager_models_logits(exported, source, runtime, expected):
    if expected == "onnxruntime" and not (exported["export"] / inference.ONNX_FILE).is_file():
        pytest.skip("paddle2onnx or onnxruntime is not installed")
    predictor = inference.load_predictor(exported[source], runtime=runtime)
    assert predictor.runtime == expected
    assert (predictor.num_labels, predictor.labels) == (3, ["a", "b", "c"])
    eager = inference.EagerModel(modeling.load_classifier(exported["checkpoint"]))
    for batch in (random_batch(1, 5, seed=3), random_batch(6, 20, seed=4)):  # dynamic batch and length
        logits = predictor.run(batch)
        assert logits.shape == (len(batch["input_ids"]), 3)
        np.testing.assert_allclose(logits, eager(batch), rtol=0, atol=1e-5)


def test_a_runtime_that_cannot_run_the_folder_is_a_one_line_error(exported, tmp_path):
    with pytest.raises(errors.UserError, match="is a training checkpoint; --runtime onnxruntime needs a folder"):
        inference.load_predictor(exported["checkpoint"], runtime="onnxruntime")
    with pytest.raises(errors.DataError, match="unknown runtime 'tensorrt'"):
        inference.load_predictor(exported["export"], runtime="tensorrt")
    with pytest.raises(errors.UserError, match="no such folder"):
        inference.load_predictor(tmp_path / "missing")
    if (exported["export"] / inference.ONNX_FILE).is_file():
        paddle_only = tmp_path / "paddle_only"
        shutil.copytree(exported["export"], paddle_only)
        (paddle_only / inference.ONNX_FILE).unlink()
        with pytest.raises(errors.UserError, match="model.onnx not found: export with `export_model.py --onnx`"):
            inference.load_predictor(paddle_only, runtime="onnxruntime")
