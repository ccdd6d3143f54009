"""inference.py is the one builder of Paddle Inference runners: export's parity check, predict.py and the
augmentation's masked-LM all go through paddle_inference_runner, with the same CPU pass list (exact GELU)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import paddle

from tinybert.augmentation import augment
import export_model
from tinybert import inference
from tinybert.models import modeling
from conftest import write_vocab
from test_export import make_checkpoint
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
    assert "fc_activation_fuse_pass" in inference.CPU_PASSES_REMOVED  # exact erf GELU, not tanh
    batch = {name: np.ones((1, 4), dtype=np.int64) for name in inference.INPUT_NAMES}
    assert predictor.run(batch).shape == (1, 3)
