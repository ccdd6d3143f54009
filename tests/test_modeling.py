"""modeling.py: the forward contract, numbers against plain numpy, checkpoints in PaddleNLP's layout."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

from tinybert.models import checkpoints
from tinybert import errors
from tinybert.models import configs, modeling
from tinybert.models.modeling import (BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel, TinyBertModel,
                      TinyBertForSequenceClassification)
from numpy_bert import forward_ours


ALL_CLASSES = [BertModel, BertForSequenceClassification, BertForMaskedLM, TinyBertModel,
               TinyBertForSequenceClassification]


def tiny_config(**kw) -> BertConfig:
    d = dict(vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48,
             max_position_embeddings=40, fit_size=48, num_labels=3)
    d.update(kw)
    return BertConfig(**d)


def make(cls, seed=0, **kw):
    paddle.seed(seed)
    model = cls(tiny_config(**kw))
    model.eval()
    return model


# Two rows: the second padded by 3. Pairs: token_type 1 on the second segment.
IDS = np.array([[2, 10, 11, 12, 3, 20, 21, 3], [2, 13, 14, 3, 22, 0, 0, 0]], dtype="int64")
TYPES = np.array([[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 0, 0, 0]], dtype="int64")
MASK = (IDS != 0).astype("int64")


def run(model, **kw):
    return model(paddle.to_tensor(IDS), paddle.to_tensor(TYPES), paddle.to_tensor(MASK), **kw)


def state_numpy(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_forward_contract_shapes(cls):
    model = make(cls)
    out = run(model, output_hidden_states=True, output_attention_scores=True)
    B, S, H, L, heads = 2, 8, 32, 3, 4
    assert out.last_hidden_state.shape == [B, S, H]
    assert out.pooler_output.shape == [B, H]
    assert len(out.hidden_states) == L + 1 and all(h.shape == [B, S, H] for h in out.hidden_states)
    assert len(out.attention_scores) == L and all(a.shape == [B, heads, S, S] for a in out.attention_scores)
    np.testing.assert_array_equal(out.hidden_states[-1].numpy(), out.last_hidden_state.numpy())
    expected_logits = {BertForSequenceClassification: [B, 3], TinyBertForSequenceClassification: [B, 3],
                       BertForMaskedLM: [B, S, 60]}.get(cls)
    assert (out.logits is None) if expected_logits is None else (out.logits.shape == expected_logits)
    assert model.base is (model if cls in (BertModel, TinyBertModel) else getattr(model, model.base_model_prefix))

    plain = run(model)
    assert plain.hidden_states is None and plain.attention_scores is None


@pytest.mark.parametrize("cls", [BertForSequenceClassification, TinyBertForSequenceClassification])
def test_encoder_and_heads_equal_numpy(cls):
    """Every hidden state, pre-softmax score (before the mask) and the logits, from the weights in numpy."""
    model = make(cls, seed=1, layer_norm_eps=1e-12)
    out = run(model, output_hidden_states=True, output_attention_scores=True)
    state = state_numpy(model)
    prefix = model.base_model_prefix + "."
    ref = forward_ours(state, model.config.to_dict(), IDS, TYPES, MASK, prefix=prefix)
    for got, want in zip(out.hidden_states, ref["hidden_states"]):
        np.testing.assert_allclose(got.numpy(), want, atol=2e-5)
    for got, want in zip(out.attention_scores, ref["attention_scores"]):
        np.testing.assert_allclose(got.numpy(), want, atol=2e-5)
    # Padded keys carry real (unmasked) scores: the mask is applied after these are taken.
    assert np.abs(out.attention_scores[0].numpy()[1, :, :, 5:]).max() > 0
    np.testing.assert_allclose(out.pooler_output.numpy(), ref["pooled"], atol=2e-5)
    w, b = state["classifier.weight"], state["classifier.bias"]
    pooled = ref["pooled"] if cls is BertForSequenceClassification else np.maximum(ref["pooled"], 0)  # TinyBERT: ReLU
    np.testing.assert_allclose(out.logits.numpy(), pooled @ w + b, atol=2e-5)


def test_layer_norm_epsilon_comes_from_config():
    model = make(BertModel, layer_norm_eps=1e-5)
    eps = {layer._epsilon for layer in model.sublayers() if isinstance(layer, paddle.nn.LayerNorm)}
    assert eps == {1e-5}
    assert {l._epsilon for l in make(BertModel).sublayers() if isinstance(l, paddle.nn.LayerNorm)} == {1e-12}


def test_padding_does_not_change_real_tokens():
    model = make(BertModel)
    full = run(model).last_hidden_state.numpy()
    alone = model(paddle.to_tensor(IDS[1:, :5]), paddle.to_tensor(TYPES[1:, :5])).last_hidden_state.numpy()
    np.testing.assert_allclose(full[1, :5], alone[0], atol=1e-5)


def test_mask_forms_agree_and_none_masks_pad_tokens():
    model = make(BertModel)
    ids, types = paddle.to_tensor(IDS), paddle.to_tensor(TYPES)
    as_int = model(ids, types, paddle.to_tensor(MASK)).last_hidden_state.numpy()
    as_bool = model(ids, types, paddle.to_tensor(MASK.astype(bool))).last_hidden_state.numpy()
    as_none = model(ids, types).last_hidden_state.numpy()  # PaddleNLP: pad_token_id positions are masked
    np.testing.assert_array_equal(as_int, as_bool)
    np.testing.assert_allclose(as_int, as_none, atol=1e-6)


def test_num_layers_runs_only_the_first_layers():
    model = make(BertForSequenceClassification)
    full = run(model, output_hidden_states=True, output_attention_scores=True)
    part = run(model, output_hidden_states=True, output_attention_scores=True, num_layers=2)
    assert len(part.hidden_states) == 3 and len(part.attention_scores) == 2
    assert part.logits is None and part.pooler_output is None
    for a, b in zip(part.hidden_states, full.hidden_states):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Naming every layer still skips pooler and classifier: intermediate distillation wants states only.
    every = run(model, output_hidden_states=True, num_layers=3)
    assert every.pooler_output is None and every.logits is None
    np.testing.assert_array_equal(every.last_hidden_state.numpy(), full.last_hidden_state.numpy())
    with pytest.raises(ValueError):
        run(model, num_layers=4)


def test_masked_lm_positions_and_tied_decoder():
    model = make(BertForMaskedLM)
    full = run(model).logits.numpy()                       # [B, S, V]
    positions = np.array([1, 9, 12], dtype="int64")         # flat indices into B*S
    some = run(model, masked_positions=paddle.to_tensor(positions)).logits.numpy()
    assert some.shape == (3, 60)
    np.testing.assert_allclose(some, full.reshape(-1, 60)[positions], atol=1e-5)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


def test_tinybert_fit_dense_maps_to_teacher_width():
    model = make(TinyBertForSequenceClassification, fit_size=48)
    assert model.tinybert.fit_dense.weight.shape == [32, 48]  # Paddle Linear: [in, out]
    h = run(model, output_hidden_states=True).hidden_states[2]
    assert model.tinybert.fit_dense(h).shape == [2, 8, 48]


def test_tinybert_fit_denses_come_with_the_checkpoint_and_are_saved(tmp_path):
    """PaddleNLP v2's per-layer projections: none in a new model, L+1 when the checkpoint has them."""
    model = make(TinyBertForSequenceClassification, fit_size=48)
    assert not hasattr(model.tinybert, "fit_denses")
    model.save_pretrained(tmp_path / "v1")
    assert not hasattr(TinyBertForSequenceClassification.from_pretrained(tmp_path / "v1").tinybert, "fit_denses")
    model.tinybert.add_fit_denses()
    w = model.tinybert.fit_denses[2].weight.numpy()
    assert len(model.tinybert.fit_denses) == 4 and w.shape == (32, 48) and 0.01 < w.std() < 0.03  # L+1; N(0, 0.02)
    model.save_pretrained(tmp_path / "v2")
    loaded = TinyBertForSequenceClassification.from_pretrained(tmp_path / "v2")
    assert sorted(loaded.state_dict()) == sorted(model.state_dict())
    for i in range(4):
        np.testing.assert_array_equal(loaded.tinybert.fit_denses[i].weight.numpy(),
                                      model.tinybert.fit_denses[i].weight.numpy())
    base = TinyBertModel.from_pretrained(tmp_path / "v2")  # the bare encoder finds them too
    np.testing.assert_array_equal(base.fit_denses[1].bias.numpy(), model.tinybert.fit_denses[1].bias.numpy())


def test_config_round_trip_and_labels():
    c = tiny_config(label2id={"neg": 0, "pos": 1})
    assert c.num_labels == 2 and c.id2label == {0: "neg", 1: "pos"} and not c.is_regression
    back = BertConfig.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c
    assert tiny_config(num_labels=1).is_regression


def test_model_class_and_count_parameters():
    assert modeling.model_class("tinybert", "classification") is TinyBertForSequenceClassification
    assert modeling.model_class("BERT", "mlm") is BertForMaskedLM
    with pytest.raises(errors.UserError):
        modeling.model_class("gpt", "base")
    model = make(BertForMaskedLM)
    # The tied decoder matrix counts once.
    names = {k: v for k, v in model.state_dict().items() if k != "cls.predictions.decoder.weight"
             and k != "cls.predictions.decoder.bias"}
    assert modeling.count_parameters(model) == sum(int(np.prod(v.shape)) for v in names.values())


# ---- checkpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize("safe", [False, True])
def test_save_load_round_trip_identical_logits(tmp_path, safe):
    model = make(TinyBertForSequenceClassification, label2id={"a": 0, "b": 1, "c": 2})
    model.save_pretrained(tmp_path, safe_serialization=safe)
    files = sorted(p.name for p in tmp_path.iterdir())
    weights = "model.safetensors" if safe else "model_state.pdparams"
    assert files == sorted(["config.json", "model_config.json", weights])
    loaded = TinyBertForSequenceClassification.from_pretrained(tmp_path)
    np.testing.assert_array_equal(run(loaded).logits.numpy(), run(model).logits.numpy())
    assert loaded.config.id2label == {0: "a", 1: "b", 2: "c"}
    np.testing.assert_array_equal(loaded.tinybert.fit_dense.weight.numpy(), model.tinybert.fit_dense.weight.numpy())


def test_saved_configs_have_both_forms(tmp_path):
    make(BertForSequenceClassification).save_pretrained(tmp_path)
    old = json.loads((tmp_path / "model_config.json").read_text())
    assert old["init_class"] == "BertForSequenceClassification" and old["num_classes"] == 3
    assert old["init_args"][0]["init_class"] == "BertModel" and old["init_args"][0]["hidden_size"] == 32
    new = json.loads((tmp_path / "config.json").read_text())
    assert new["architectures"] == ["BertForSequenceClassification"] and new["model_type"] == "bert"
    assert new["layer_norm_eps"] == 1e-12 and len(new["id2label"]) == 3


@pytest.mark.parametrize("keep", ["model_config.json", "config.json"])
def test_either_config_form_loads(tmp_path, keep):
    model = make(BertForSequenceClassification)
    model.save_pretrained(tmp_path)
    (tmp_path / ({"model_config.json", "config.json"} - {keep}).pop()).unlink()
    loaded = BertForSequenceClassification.from_pretrained(tmp_path)
    assert loaded.config.num_labels == 3
    np.testing.assert_array_equal(run(loaded).logits.numpy(), run(model).logits.numpy())


def test_paddlenlp_base_model_folder_into_classifier(tmp_path, capsys):
    """A PaddleNLP base-model folder (flat model_config.json, keys without 'bert.', type_vocab_size unset)."""
    base = make(BertModel, type_vocab_size=16)
    state = state_numpy(base)
    paddle.save(state, str(tmp_path / "model_state.pdparams"))
    cfg = {k: v for k, v in base.config.to_dict().items() if k in modeling.ENCODER_FIELDS and k != "type_vocab_size"}
    (tmp_path / "model_config.json").write_text(json.dumps({**cfg, "init_class": "BertModel"}))
    model = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    err = capsys.readouterr().err
    assert "newly initialised" in err and "classifier" in err
    assert model.config.type_vocab_size == 16 and model.config.num_labels == 2
    np.testing.assert_array_equal(model.bert.embeddings.word_embeddings.weight.numpy(),
                                  state["embeddings.word_embeddings.weight"])
    # The other way round: a head checkpoint into the bare encoder drops the 'bert.' prefix.
    model.save_pretrained(tmp_path / "cls")
    bare = BertModel.from_pretrained(tmp_path / "cls")
    assert "unused weights" in capsys.readouterr().err
    np.testing.assert_array_equal(run(bare).last_hidden_state.numpy(), run(model.bert).last_hidden_state.numpy())


def test_missing_encoder_weight_is_an_error(tmp_path):
    model = make(BertModel)
    state = state_numpy(model)
    del state["encoder.layers.1.linear1.weight"]
    paddle.save(state, str(tmp_path / "model_state.pdparams"))
    (tmp_path / "config.json").write_text(json.dumps(model.config.to_dict()))
    with pytest.raises(errors.UserError, match="encoder weights missing"):
        BertModel.from_pretrained(tmp_path)


def test_encoder_shape_mismatch_is_an_error(tmp_path):
    make(BertModel).save_pretrained(tmp_path)
    with pytest.raises(errors.UserError, match="shape"):
        BertModel.from_pretrained(tmp_path, intermediate_size=64)


def test_masked_lm_needs_mlm_weights(tmp_path):
    make(BertForSequenceClassification).save_pretrained(tmp_path / "cls")
    assert not checkpoints.has_mlm_head(tmp_path / "cls")
    with pytest.raises(errors.UserError, match="masked-LM head"):
        BertForMaskedLM.from_pretrained(tmp_path / "cls")
    mlm = make(BertForMaskedLM)
    mlm.save_pretrained(tmp_path / "mlm")
    assert checkpoints.has_mlm_head(tmp_path / "mlm")
    loaded = BertForMaskedLM.from_pretrained(tmp_path / "mlm")
    np.testing.assert_array_equal(run(loaded).logits.numpy(), run(mlm).logits.numpy())


def test_old_paddlenlp_mlm_names_load(tmp_path):
    """Older PaddleNLP files: cls.predictions.decoder_weight (tied) and only decoder_bias."""
    mlm = make(BertForMaskedLM)
    state = state_numpy(mlm)
    state["cls.predictions.decoder_weight"] = state.pop("cls.predictions.decoder.weight")
    del state["cls.predictions.decoder.bias"]
    paddle.save(state, str(tmp_path / "model_state.pdparams"))
    (tmp_path / "config.json").write_text(json.dumps(mlm.config.to_dict()))
    loaded = BertForMaskedLM.from_pretrained(tmp_path)
    np.testing.assert_array_equal(run(loaded).logits.numpy(), run(mlm).logits.numpy())


def test_hugging_face_folder_asks_for_conversion(tmp_path):
    from safetensors.numpy import save_file
    save_file({"encoder.layer.0.attention.self.query.weight": np.zeros((4, 4), "float32")},
              str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(tiny_config().to_dict()))
    with pytest.raises(errors.UserError, match="convert_checkpoint.py"):
        BertModel.from_pretrained(tmp_path)


# ---- other checkpoint layouts: checkpoints.KEY_LAYOUTS, one case each -------------------------------


def keys_of(cls, **kw) -> list[str]:
    return list(state_numpy(make(cls, **kw)))


def bert_keys_under_tinybert() -> tuple[list[str], type, list[str]]:
    """A BERT classifier's checkpoint (bert.*) for a TinyBERT classifier: the encoder under tinybert.*."""
    ours = [k for k in keys_of(TinyBertForSequenceClassification) if not k.startswith("tinybert.fit_dense")]
    return keys_of(BertForSequenceClassification), TinyBertForSequenceClassification, ours


def tinybert_keys_under_bert() -> tuple[list[str], type, list[str]]:
    ours = keys_of(BertForSequenceClassification) + ["bert.fit_dense.weight", "bert.fit_dense.bias"]
    return keys_of(TinyBertForSequenceClassification), BertForSequenceClassification, ours


def old_mlm_head() -> tuple[list[str], type, list[str]]:
    """Older PaddleNLP: the tied matrix as decoder_weight, the bias only as decoder_bias."""
    ours = keys_of(BertForMaskedLM)
    theirs = [k for k in ours if k not in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")]
    ours.remove("cls.predictions.decoder.weight")  # tied to the word embeddings: never read from a file
    return theirs + ["cls.predictions.decoder_weight"], BertForMaskedLM, ours


def head_into_base() -> tuple[list[str], type, list[str]]:
    return keys_of(BertForSequenceClassification), BertModel, keys_of(BertModel) + ["classifier.weight",
                                                                                  "classifier.bias"]


def base_into_head() -> tuple[list[str], type, list[str]]:
    ours = [k for k in keys_of(TinyBertForSequenceClassification) if not k.startswith("classifier.")]
    return keys_of(TinyBertModel), TinyBertForSequenceClassification, ours


def same_weight(a: str, b: str) -> bool:
    """Whether two names denote one weight: up to the encoder prefix and the decoder bias's alias."""
    def bare(k: str) -> str:
        k = k.replace("cls.predictions.decoder_bias", "cls.predictions.decoder.bias")
        return k.split(".", 1)[1] if k.startswith(("bert.", "tinybert.", "ernie.")) else k
    return bare(a) == bare(b)


LAYOUT_CASES = {
    "older PaddleNLP masked-LM head": [old_mlm_head],
    "BERT's prefix for TinyBERT's, or the other way round": [bert_keys_under_tinybert, tinybert_keys_under_bert],
    "a head model's checkpoint, for a base model": [head_into_base],
    "a base model's checkpoint, for a head model": [base_into_head],
}


def test_every_checkpoint_layout_has_a_case():
    assert set(LAYOUT_CASES) | {"Hugging Face (refused: convert it first)"} == {
        name for name, _ in checkpoints.KEY_LAYOUTS}


@pytest.mark.parametrize("case", [c for cases in LAYOUT_CASES.values() for c in cases], ids=lambda c: c.__name__)
def test_checkpoint_layout_keys_map_to_ours(case):
    theirs, cls, ours = case()
    state = {k: np.full([1], i, "float32") for i, k in enumerate(theirs)}
    mapped = checkpoints.to_our_names(state, cls.base_model_prefix, cls.is_base_model)
    assert sorted(mapped) == sorted(ours)
    # Each of our weights holds the value of its own counterpart, not of some other weight.
    for key, value in mapped.items():
        assert same_weight(key, theirs[int(value[0])]), (key, theirs[int(value[0])])
    # A state already in our names passes through unchanged.
    assert checkpoints.to_our_names({k: np.zeros(1) for k in ours}, cls.base_model_prefix,
                                    cls.is_base_model).keys() == set(ours)


@pytest.mark.parametrize("prefix,is_base", [("bert", True), ("bert", False), ("tinybert", False), ("ernie", False)])
def test_hugging_face_layout_is_refused(prefix, is_base):
    for key in ("encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.output.dense.bias"):
        with pytest.raises(errors.UserError, match="convert_checkpoint.py --from_hf"):
            checkpoints.to_our_names({key: np.zeros(1)}, prefix, is_base)


def test_from_pretrained_returns_eval_mode(tmp_path):
    make(BertForSequenceClassification).save_pretrained(tmp_path)
    model = BertForSequenceClassification.from_pretrained(tmp_path)
    assert not model.training
    np.testing.assert_array_equal(run(model).logits.numpy(), run(model).logits.numpy())


# ---- name resolution ---------------------------------------------------------------------------


def test_bare_name_resolves_to_paddlenlp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "ppnlp"))
    cached = tmp_path / "ppnlp" / "models" / "tinybert-test"
    model = make(TinyBertForSequenceClassification)
    model.save_pretrained(cached)
    assert checkpoints.resolve_model_dir("tinybert-test") == cached
    loaded = TinyBertForSequenceClassification.from_pretrained("tinybert-test")
    np.testing.assert_array_equal(run(loaded).logits.numpy(), run(model).logits.numpy())


def test_old_cache_layout_name_pdparams_and_builtin_config(tmp_path, monkeypatch):
    """Older PaddleNLP caches hold only NAME.pdparams for built-in names; the config is PaddleNLP's table."""
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path))
    monkeypatch.setitem(configs.BUILTIN_CONFIGS, "tiny-builtin", dict(vocab_size=60, hidden_size=32,
                        num_hidden_layers=3, num_attention_heads=4, intermediate_size=48, max_position_embeddings=40))
    folder = tmp_path / "models" / "tiny-builtin"
    folder.mkdir(parents=True)
    base = make(TinyBertModel)
    paddle.save(state_numpy(base), str(folder / "tiny-builtin.pdparams"))
    loaded = TinyBertModel.from_pretrained("tiny-builtin")
    np.testing.assert_array_equal(run(loaded).last_hidden_state.numpy(), run(base).last_hidden_state.numpy())


def test_unknown_name_fails_at_once_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path))
    with pytest.raises(errors.UserError) as e:
        BertForSequenceClassification.from_pretrained("bert-base-unknown")
    msg = str(e.value)
    assert "\n" not in msg and "nothing is downloaded" in msg and "convert_checkpoint.py" in msg
    assert str(tmp_path / "models" / "bert-base-unknown") in msg
    # A PaddleNLP name is downloaded on first use; offline (as every test runs, conftest) it fails at once,
    # naming the file it looked for, the address and where to put the file.
    with pytest.raises(errors.UserError) as e:
        BertForSequenceClassification.from_pretrained("bert-base-uncased")
    msg = str(e.value)
    cached = tmp_path / "models" / "bert-base-uncased" / "model_state.pdparams"
    assert "\n" not in msg and "TINYBERT_OFFLINE=1" in msg and f"put that file at {cached}" in msg
    assert "https://bj.bcebos.com/paddlenlp/models/transformers/bert-base-uncased.pdparams" in msg


# ---- PaddleNLP compatibility ------------------------------------------------------------------


@pytest.mark.parametrize("name,cls", [("bert_cls", BertForSequenceClassification),
                                      ("tinybert_cls", TinyBertForSequenceClassification),
                                      ("bert_mlm", BertForMaskedLM)])
def test_paddlenlp_saved_folder_loads_with_same_outputs(name, cls, capsys):
    """Folders saved by PaddleNLP 2.8.1's own save_pretrained load here with PaddleNLP's logits.

    Reference: tests/data/paddlenlp_<name>/ and paddlenlp_reference.npz, produced once by
    tests/data/make_paddlenlp_reference.py in a scratch virtualenv with paddlenlp==2.8.1 (never a dependency).
    That script also checks the other direction: folders saved here load in PaddleNLP's from_pretrained (from
    config.json, and from model_config.json alone) with identical logits.
    """
    data = Path(__file__).parent / "data"
    ref = np.load(data / "paddlenlp_reference.npz")
    model = cls.from_pretrained(data / f"paddlenlp_{name}")
    if name == "tinybert_cls":  # PaddleNLP's TinyBERT also carries fit_denses (v2 distillation): loaded too
        assert "unused weights" not in capsys.readouterr().err
        assert len(model.tinybert.fit_denses) == model.config.num_hidden_layers + 1
    out = run(model)  # the same inputs as the generator script's
    np.testing.assert_allclose(out.logits.numpy(), ref[f"{name}/logits"], atol=1e-6)
    np.testing.assert_allclose(out.last_hidden_state.numpy(), ref[f"{name}/last_hidden_state"], atol=1e-6)


def test_initialisation_is_seeded_normal_and_fresh_heads_get_it(tmp_path):
    a, b = make(BertForSequenceClassification, initializer_range=0.5), make(BertForSequenceClassification,
                                                                            initializer_range=0.5)
    w = a.bert.encoder.layers[0].linear1.weight.numpy()
    assert 0.4 < w.std() < 0.6 and abs(w.mean()) < 0.05  # N(0, initializer_range), not Paddle's Xavier
    np.testing.assert_array_equal(w, b.bert.encoder.layers[0].linear1.weight.numpy())  # paddle.seed decides
    assert not a.classifier.bias.numpy().any()
    make(BertModel, initializer_range=0.5).save_pretrained(tmp_path)
    head = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=40)
    assert 0.4 < head.classifier.weight.numpy().std() < 0.6 and not head.classifier.bias.numpy().any()
