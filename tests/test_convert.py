"""convert_checkpoint.py: Hugging Face BERT folders into our layout, checked against numpy and against
transformers on the real all-MiniLM-L6-v2."""
from __future__ import annotations

from tinybert import errors
import json
import subprocess
import sys

import numpy as np
import paddle
import pytest


from builders import DATA, HF_CFG, ROOT, hf_state, write_hf_folder
from tinybert.models.convert import convert_hf_checkpoint
from tinybert.models.modeling import BertForMaskedLM, BertForSequenceClassification, BertModel
from numpy_bert import forward_hf, gelu, layer_norm
from tinybert.data.tokenization import BertTokenizer

IDS = np.array([[2, 20, 21, 22, 3, 30, 31, 3], [2, 23, 3, 32, 33, 3, 0, 0]], dtype="int64")
TYPES = np.array([[0, 0, 0, 0, 0, 1, 2, 2], [0, 0, 0, 1, 1, 1, 0, 0]], dtype="int64")
MASK = (IDS != 0).astype("int64")


def run(model, **kw):
    return model(paddle.to_tensor(IDS), paddle.to_tensor(TYPES), paddle.to_tensor(MASK),
                 output_hidden_states=True, output_attention_scores=True, **kw)


def test_small_hf_checkpoint_matches_numpy(tmp_path):
    """Encoder (type_vocab_size 3 from the config), pooler and classifier against numpy on HF's own layout."""
    state = hf_state(HF_CFG, classifier=4)
    out_dir = convert_hf_checkpoint(write_hf_folder(tmp_path / "hf", state, id2label={i: f"L{i}" for i in range(4)}),
                                    tmp_path / "ours")
    assert {"model_state.pdparams", "model_config.json", "config.json", "vocab.txt",
            "tokenizer_config.json"} <= {p.name for p in out_dir.iterdir()}
    model = BertForSequenceClassification.from_pretrained(out_dir)
    assert model.config.type_vocab_size == 3 and model.config.num_labels == 4
    out = run(model)
    ref = forward_hf(state, HF_CFG, IDS, TYPES, MASK, prefix="bert.")
    for got, want in zip(out.hidden_states, ref["hidden_states"]):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-4)
    for got, want in zip(out.attention_scores, ref["attention_scores"]):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-4)
    logits = ref["pooled"] @ state["classifier.weight"].T + state["classifier.bias"]
    np.testing.assert_allclose(out.logits.numpy(), logits, atol=1e-4)
    # Tokenizer files came along, lower-casing included.
    assert BertTokenizer.from_pretrained(out_dir).do_lower_case is False


def test_masked_lm_head_is_converted(tmp_path, capsys):
    state = hf_state(HF_CFG, mlm=True)
    del state["bert.pooler.dense.weight"], state["bert.pooler.dense.bias"]  # HF's MLM models have no pooler
    out_dir = convert_hf_checkpoint(write_hf_folder(tmp_path / "hf", state), tmp_path / "ours",
                                    safe_serialization=True)
    assert (out_dir / "model.safetensors").is_file() and not (out_dir / "model_state.pdparams").exists()
    assert "pooler" in capsys.readouterr().err  # reported as newly initialised
    model = BertForMaskedLM.from_pretrained(out_dir)
    out = run(model)
    h = forward_hf(state, HF_CFG, IDS, TYPES, MASK, prefix="bert.")["hidden_states"][-1]
    t = gelu(h @ state["cls.predictions.transform.dense.weight"].T + state["cls.predictions.transform.dense.bias"])
    t = layer_norm(t, state["cls.predictions.transform.LayerNorm.weight"],
                   state["cls.predictions.transform.LayerNorm.bias"], 1e-12)
    logits = t @ state["bert.embeddings.word_embeddings.weight"].T + state["cls.predictions.bias"]
    np.testing.assert_allclose(out.logits.numpy(), logits, atol=1e-4)


def test_unprefixed_base_model_and_cli(tmp_path):
    """HF BertModel files have no 'bert.' prefix; the script runs end to end and refuses to overwrite."""
    state = {k[len("bert."):]: v for k, v in hf_state(HF_CFG).items()}
    hf = write_hf_folder(tmp_path / "hf", state)
    cmd = [sys.executable, str(ROOT / "convert_checkpoint.py"), "--from_hf", str(hf), "--output_dir",
           str(tmp_path / "ours")]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    model = BertModel.from_pretrained(tmp_path / "ours")
    ref = forward_hf(state, HF_CFG, IDS, TYPES, MASK)
    np.testing.assert_allclose(run(model).last_hidden_state.numpy(), ref["hidden_states"][-1], atol=1e-4)
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    last = again.stderr.strip().splitlines()[-1]
    assert again.returncode == 2 and last.startswith("error:") and "not empty" in last
    assert "Traceback" not in again.stderr


def test_layer_norm_gamma_and_beta_of_older_checkpoints_are_converted(tmp_path):
    """bert-base-uncased's own checkpoint names LayerNorm's parameters gamma and beta: the same model as
    weight and bias."""
    state = hf_state(HF_CFG)
    old_names = {(k[:-len("weight")] + "gamma" if "LayerNorm" in k and k.endswith("weight") else
                  k[:-len("bias")] + "beta" if "LayerNorm" in k and k.endswith("bias") else k): v
                 for k, v in state.items()}
    assert any(k.endswith("LayerNorm.gamma") for k in old_names)
    ours = BertModel.from_pretrained(convert_hf_checkpoint(write_hf_folder(tmp_path / "hf", state), tmp_path / "a"))
    old = BertModel.from_pretrained(convert_hf_checkpoint(write_hf_folder(tmp_path / "old", old_names),
                                                          tmp_path / "b"))
    np.testing.assert_array_equal(run(old).last_hidden_state.numpy(), run(ours).last_hidden_state.numpy())


def test_bad_inputs_are_user_errors(tmp_path):
    out, tmp_path = tmp_path / "out", tmp_path / "hf"
    tmp_path.mkdir()
    with pytest.raises(errors.UserError, match="config.json"):
        convert_hf_checkpoint(tmp_path, out)
    (tmp_path / "config.json").write_text(json.dumps({**HF_CFG, "model_type": "roberta"}))
    with pytest.raises(errors.UserError, match="not BERT"):
        convert_hf_checkpoint(tmp_path, out)
    (tmp_path / "config.json").write_text(json.dumps(HF_CFG))
    (tmp_path / "pytorch_model.bin").write_bytes(b"")  # read without torch: an empty file is named, one line
    with pytest.raises(errors.DataError, match=r"pytorch_model\.bin: .*PyTorch's zip format") as e:
        convert_hf_checkpoint(tmp_path, out)
    assert "\n" not in str(e.value)


# ---- the real model ------------------------------------------------------------------------------


def test_minilm_matches_transformers(minilm_dir):
    """all-MiniLM-L6-v2 converted reproduces Hugging Face transformers within 1e-4 (max abs), for every
    hidden state and every layer's pre-softmax scores, on single sentences and padded sentence pairs.

    Reference: tests/data/minilm_reference.npz, produced once by tests/data/make_minilm_reference.py with
    transformers' BertModel (eager attention, float32, CPU) in a scratch virtualenv; the scores are
    Q K^T / sqrt(d_head) computed from forward hooks on each layer's query and key projections. Inputs
    (ids, token types, mask) are stored with the outputs, so this test does not depend on our tokenizer.
    Padded positions are compared too: both mask values (-1e4 here, the dtype's minimum there) give padded
    keys exactly zero weight in float32, so every position is determined.
    """
    ref = np.load(DATA / "minilm_reference.npz")
    model = BertModel.from_pretrained(minilm_dir)
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    for case in ("single0", "single1", "pairs"):
        ids, types, mask = (ref[f"{case}/{k}"] for k in ("input_ids", "token_type_ids", "attention_mask"))
        out = model(paddle.to_tensor(ids), paddle.to_tensor(types), paddle.to_tensor(mask),
                    output_hidden_states=True, output_attention_scores=True)
        hidden = np.stack([h.numpy() for h in out.hidden_states])
        scores = np.stack([s.numpy() for s in out.attention_scores])
        dh = np.abs(hidden - ref[f"{case}/hidden_states"]).max()
        ds = np.abs(scores - ref[f"{case}/scores"]).max()
        print(f"{case}: max abs diff hidden {dh:.2e}, scores {ds:.2e}")
        assert dh < 1e-4 and ds < 1e-4
