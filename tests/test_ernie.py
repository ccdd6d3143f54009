"""ERNIE 1.0 and 3.0 (modeling.Ernie*): outputs equal PaddleNLP's, folders load both ways, PaddleNLP's config
defaults and cache names, masked-LM candidates, and whole distillation pipelines with an ERNIE teacher.

References: tests/data/ernie_<name>/ and ernie_reference.npz, made once by tests/data/make_ernie_references.py
with PaddleNLP 2.8.1 in a scratch virtualenv (never a dependency); the ours -> PaddleNLP direction runs that
script's --check in the venv at PADDLENLP_PYTHON when it exists.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from tinybert.augmentation import augment
from tinybert.models import checkpoints
from tinybert.distillation import distill
from tinybert import errors
import export_model
import finetune_teacher
from tinybert.models import configs, modeling
import predict
import task_distill
from tinybert.data import tasks
from tinybert.training import trainer, trainstate
from builders import DATA, PADDLENLP_PYTHON, TINY_WORDS, write_vocab
from tinybert.models.modeling import ErnieConfig, ErnieForMaskedLM, ErnieForSequenceClassification, ErnieModel
from tinybert.data.tokenization import BertTokenizer

META = json.loads((DATA / "ernie_reference.json").read_text())
REF = np.load(DATA / "ernie_reference.npz")
NAMES = list(META["models"])  # ernie1_cls, ernie1_mlm, ernie3_cls, ernie3_mlm
REF_SCRIPT = DATA / "make_ernie_references.py"


def ref_inputs() -> dict[str, paddle.Tensor]:
    return {k: paddle.to_tensor(np.array(v, dtype="int64")) for k, v in META["input"].items()}


def our_class(name: str):
    return getattr(modeling, META["models"][name])


def config_of(name: str, **kw) -> ErnieConfig:
    return ErnieConfig(**{**META["configs"][name.split("_")[0]], **kw})


def randomise(model, seed: int) -> None:
    """Every parameter random (LayerNorm scales near 1): each weight and bias shapes the outputs."""
    rng = np.random.default_rng(seed)
    for pname, p in model.named_parameters():
        value = rng.normal(0.0, 0.2, p.shape) + (1.0 if "norm" in pname and pname.endswith("weight") else 0.0)
        p.set_value(value.astype("float32"))


def run_pnlp_check(folders: list[Path]) -> dict:
    """make_ernie_references.py --check in the PaddleNLP venv: {folder: load report and logits}."""
    if not PADDLENLP_PYTHON.exists():
        pytest.skip(f"no PaddleNLP 2.8.1 scratch venv at {PADDLENLP_PYTHON} (set $PADDLENLP_PYTHON; see tests/data/make_ernie_references.py)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(PADDLENLP_PYTHON), str(REF_SCRIPT), "--check", *map(str, folders)],
                          capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


# ---- PaddleNLP -> ours --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_paddlenlp_folders_load_with_paddlenlps_outputs(name, capsys):
    model = our_class(name).from_pretrained(DATA / f"ernie_{name}")
    err = capsys.readouterr().err
    assert "unused weights" not in err and "newly initialised" not in err  # every weight used, none missing
    assert isinstance(model.config, ErnieConfig) and model.config.use_task_id == name.startswith("ernie3")
    out = model(**ref_inputs(), output_hidden_states=True, output_attention_scores=True)
    np.testing.assert_allclose(out.logits.numpy(), REF[f"{name}/logits"], atol=1e-5)
    if name.endswith("_cls"):
        want = REF[f"{name}/hidden_states"]
        assert len(out.hidden_states) == len(want) == 3  # [0]: the embeddings, as PaddleNLP's
        for got, ref in zip(out.hidden_states, want):
            np.testing.assert_allclose(got.numpy(), ref, atol=1e-5)
        # PaddleNLP returns softmax probabilities; ours are the scores before mask and softmax.
        mask = np.array(META["input"]["attention_mask"], dtype="float32")
        bias = paddle.to_tensor(((1.0 - mask) * modeling.MASK_NEGATIVE)[:, None, None, :])
        for scores, probs in zip(out.attention_scores, REF[f"{name}/attentions"]):
            np.testing.assert_allclose(F.softmax(scores + bias, axis=-1).numpy(), probs, atol=1e-5)


def test_explicit_task_ids_reach_the_task_type_embeddings():
    model = ErnieModel.from_pretrained(DATA / "ernie_ernie3_cls")
    task_ids = paddle.to_tensor(np.array(META["task_ids"], dtype="int64"))
    out = model(**ref_inputs(), task_type_ids=task_ids)
    np.testing.assert_allclose(out.last_hidden_state.numpy(), REF["ernie3_cls/task_ids_last_hidden_state"], atol=1e-5)
    # Without task ids every token has config.task_id (0), as PaddleNLP's classifier and masked-LM do.
    zeros = model(**ref_inputs(), task_type_ids=paddle.zeros_like(task_ids)).last_hidden_state.numpy()
    np.testing.assert_array_equal(model(**ref_inputs()).last_hidden_state.numpy(), zeros)


def test_pad_token_reads_as_a_zero_embedding_and_task_id_comes_from_the_config():
    model = ErnieModel.from_pretrained(DATA / "ernie_ernie3_cls")
    words = model.embeddings.word_embeddings
    assert np.abs(words.weight.numpy()[0]).sum() > 0  # the [PAD] row is not zero in the weights...
    assert not words(paddle.to_tensor([[0]])).numpy().any()  # ...but reads as zeros (PaddleNLP's padding_idx)
    paddle.seed(0)
    two = ErnieModel(config_of("ernie3", task_id=2))
    two.eval()
    ids = ref_inputs()["input_ids"]
    np.testing.assert_array_equal(two(ids).last_hidden_state.numpy(),
                                  two(ids, task_type_ids=paddle.full_like(ids, 2)).last_hidden_state.numpy())


def test_ernie_1_uses_relu_and_its_mlm_head_the_configs_activation():
    model = ErnieForMaskedLM.from_pretrained(DATA / "ernie_ernie1_mlm")
    assert model.config.hidden_act == "relu"
    assert model.ernie.encoder.layers[0].act is F.relu and model.cls.predictions.act is F.relu
    assert model.cls.predictions.decoder.weight is model.ernie.embeddings.word_embeddings.weight
    positions = np.array([1, 4, 9, 12], dtype="int64")  # flat indices into B*S
    some = model(**ref_inputs(), masked_positions=paddle.to_tensor(positions)).logits.numpy()
    np.testing.assert_allclose(some, REF["ernie1_mlm/logits"].reshape(-1, 64)[positions], atol=1e-5)


@pytest.mark.parametrize("cls", [ErnieModel, ErnieForSequenceClassification, ErnieForMaskedLM])
def test_forward_contract_as_berts(cls):
    paddle.seed(1)
    model = cls(config_of("ernie3"))
    model.eval()
    out = model(**ref_inputs(), output_hidden_states=True, output_attention_scores=True)
    assert len(out.hidden_states) == 3 and all(h.shape == [2, 8, 32] for h in out.hidden_states)
    assert len(out.attention_scores) == 2 and all(a.shape == [2, 4, 8, 8] for a in out.attention_scores)
    assert out.pooler_output.shape == [2, 32]
    part = model(**ref_inputs(), output_hidden_states=True, num_layers=1)  # intermediate distillation's call
    assert len(part.hidden_states) == 2 and part.pooler_output is None and part.logits is None
    np.testing.assert_array_equal(part.hidden_states[1].numpy(), out.hidden_states[1].numpy())
    assert modeling.model_class("ernie", {ErnieModel: "base", ErnieForMaskedLM: "mlm"}.get(cls, "classification")) is cls


# ---- ours -> PaddleNLP, and the configs -----------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_our_saved_keys_equal_paddlenlps(name, tmp_path):
    """Without PaddleNLP: what we save from a PaddleNLP folder has exactly its weight names and shapes."""
    theirs = checkpoints.load_state(DATA / f"ernie_{name}" / "model_state.pdparams")
    our_class(name).from_pretrained(DATA / f"ernie_{name}").save_pretrained(tmp_path)
    ours = checkpoints.load_state(tmp_path / "model_state.pdparams")
    assert sorted(ours) == sorted(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    paddle.seed(5)
    fresh = our_class(name)(config_of(name))  # a model built here has the same names
    assert sorted(fresh.state_dict()) == sorted(theirs)


@pytest.fixture(scope="module")
def our_folders(tmp_path_factory) -> dict[str, tuple[Path, Path, np.ndarray]]:
    """Each reference model class built here with random weights: saved with both configs, and again with
    PaddleNLP 2.x's model_config.json alone. {name: (both, legacy only, our logits)}."""
    root = tmp_path_factory.mktemp("ernie_ours")
    folders = {}
    for i, name in enumerate(NAMES):
        paddle.seed(20 + i)
        model = our_class(name)(config_of(name))
        randomise(model, 200 + i)
        model.eval()
        both, legacy = root / name / "both", root / name / "legacy"
        model.save_pretrained(both)
        shutil.copytree(both, legacy)
        (legacy / checkpoints.CONFIG_JSON).unlink()
        folders[name] = (both, legacy, model(**ref_inputs()).logits.numpy())
    return folders


@pytest.mark.parametrize("name", NAMES)
def test_either_config_form_loads_here(name, our_folders):
    both, legacy, logits = our_folders[name]
    for folder in (both, legacy):
        loaded = our_class(name).from_pretrained(folder)
        assert loaded.config.use_task_id == name.startswith("ernie3")
        np.testing.assert_allclose(loaded(**ref_inputs()).logits.numpy(), logits, atol=1e-6)
    old = json.loads((legacy / checkpoints.CONFIG_PADDLENLP).read_text())
    assert old["init_class"] == META["models"][name] and old["init_args"][0]["init_class"] == "ErnieModel"
    new = json.loads((both / checkpoints.CONFIG_JSON).read_text())
    assert new["model_type"] == "ernie" and new["architectures"] == [META["models"][name]]


def test_folders_saved_here_load_in_paddlenlp_with_every_weight_used(our_folders):
    folders = [f for both, legacy, _ in our_folders.values() for f in (both, legacy)]
    report = run_pnlp_check(folders)
    for name, (both, legacy, logits) in our_folders.items():
        for folder in (both, legacy):
            r = report[str(folder)]
            assert (r["missing"], r["unexpected"], r["mismatched"]) == ([], [], []), (folder, r)
            assert r["class"] == META["models"][name] and r["use_task_id"] == name.startswith("ernie3")
            np.testing.assert_allclose(np.array(r["logits"]), logits, atol=1e-5)


def test_paddlenlp_defaults_fill_missing_fields(tmp_path):
    """PaddleNLP's ErnieConfig defaults (type_vocab_size 16, not BERT's 2), in both config forms."""
    flat = ErnieConfig.from_dict({})
    legacy = ErnieConfig.from_dict({"init_args": [{"init_class": "ErnieModel"}], "init_class": "ErnieModel"})
    for c in (flat, legacy):
        assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == \
            (30522, 768, 12, 12, 3072)
        assert (c.type_vocab_size, c.pad_token_id, c.max_position_embeddings, c.hidden_act) == (16, 0, 512, "gelu")
        assert (c.use_task_id, c.task_type_vocab_size, c.task_id, c.layer_norm_eps) == (False, 3, 0, 1e-12)
    # PaddleNLP's ERNIE computes with epsilon 1e-12 whatever the config says (its _init_weights sets it).
    assert ErnieConfig(hidden_size=32, num_attention_heads=4, layer_norm_eps=1e-5).layer_norm_eps == 1e-12
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "ernie", "hidden_size": 32,
                                                      "num_attention_heads": 4, "dropout": 0.3, "num_classes": 5}))
    c = modeling.read_config(tmp_path)
    assert isinstance(c, ErnieConfig) and c.type_vocab_size == 16 and c.num_labels == 5 and c.classifier_dropout == 0.3


@pytest.mark.parametrize("config, expected", [
    ({"config.json": {"model_type": "ernie"}}, "ernie"),
    ({"config.json": {"architectures": ["ErnieForMaskedLM"]}}, "ernie"),
    ({"model_config.json": {"init_class": "ErnieForSequenceClassification",
                            "init_args": [{"init_class": "ErnieModel"}]}}, "ernie"),
    ({"model_config.json": {"vocab_size": 10, "init_class": "ErnieModel"}}, "ernie"),
    ({"config.json": {"architectures": ["TinyBertForSequenceClassification"], "model_type": "tinybert"}}, "tinybert"),
    ({"config.json": {"model_type": "bert"}}, "bert"),
    ({"config.json": {"hidden_size": 8}}, "bert"),  # names no class: BERT
])
def test_model_type_detection(tmp_path, config, expected):
    for file, d in config.items():
        (tmp_path / file).write_text(json.dumps(d))
    assert checkpoints.model_type(tmp_path) == expected


def test_a_folder_of_the_other_family_is_a_clear_error():
    with pytest.raises(errors.UserError, match="holds a model of type ernie.*--model_type ernie") as e:
        modeling.BertForSequenceClassification.from_pretrained(DATA / "ernie_ernie1_cls")
    assert "\n" not in str(e.value)
    with pytest.raises(errors.UserError, match="holds a model of type bert"):
        ErnieForMaskedLM.from_pretrained(DATA / "paddlenlp_bert_mlm")
    assert isinstance(modeling.load_masked_lm(DATA / "ernie_ernie3_mlm"), ErnieForMaskedLM)
    assert type(modeling.load_masked_lm(DATA / "paddlenlp_bert_mlm")) is modeling.BertForMaskedLM
    assert isinstance(modeling.load_classifier(DATA / "ernie_ernie3_cls"), ErnieForSequenceClassification)


# ---- PaddleNLP's model cache ----------------------------------------------------------------------

# The sizes of PaddleNLP 2.8.1's built-in ERNIE names (paddlenlp/transformers/ernie/configuration.py).
BUILTIN = {  # name: (hidden, layers, intermediate, vocab, positions, type_vocab, use_task_id, task_types, act)
    "ernie-1.0": (768, 12, 3072, 18000, 513, 2, False, 3, "relu"),
    "ernie-3.0-base-zh": (768, 12, 3072, 40000, 2048, 4, True, 3, "gelu"),
    "ernie-3.0-medium-zh": (768, 6, 3072, 40000, 2048, 4, True, 16, "gelu"),
    "ernie-3.0-mini-zh": (384, 6, 1536, 40000, 2048, 4, True, 16, "gelu"),
    "ernie-3.0-micro-zh": (384, 4, 1536, 40000, 2048, 4, True, 16, "gelu"),
    "ernie-3.0-nano-zh": (312, 4, 1248, 40000, 2048, 4, True, 16, "gelu"),
}


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("weights", ["model_state.pdparams", "download"])
def test_cache_names_resolve_with_builtin_configs(tmp_path, monkeypatch, name, weights):
    """What PaddleNLP keeps in $PPNLP_HOME/models/NAME for a built-in name: weights (2.8: model_state.pdparams;
    older: the download's name) and vocabulary files, no config."""
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path))
    folder = tmp_path / "models" / name
    folder.mkdir(parents=True)
    download = {"ernie-1.0": "ernie_v1_chn_base"}.get(name, name.replace("-", "_"))
    (folder / ("model_state.pdparams" if weights == "model_state.pdparams" else f"{download}.pdparams")).write_bytes(b"")
    (folder / f"{download}_vocab.txt").write_text("[PAD]\n")
    assert checkpoints.resolve_model_dir(name) == folder
    assert checkpoints.model_type(folder) == "ernie"
    c = modeling.read_config(folder)
    assert isinstance(c, ErnieConfig)
    assert (c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.vocab_size, c.max_position_embeddings,
            c.type_vocab_size, c.use_task_id, c.task_type_vocab_size, c.hidden_act) == BUILTIN[name]
    assert c.num_attention_heads == 12


@pytest.mark.parametrize("weights", ["model_state.pdparams", "ernie_3_0_tiny_test.pdparams"])
def test_a_cache_name_loads_with_paddlenlps_logits(tmp_path, monkeypatch, weights):
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path))
    monkeypatch.setitem(configs.BUILTIN_CONFIGS, "ernie-3.0-tiny-test", {**META["configs"]["ernie3"]})
    folder = tmp_path / "models" / "ernie-3.0-tiny-test"
    folder.mkdir(parents=True)
    shutil.copy(DATA / "ernie_ernie3_cls" / "model_state.pdparams", folder / weights)
    model = modeling.load_classifier("ernie-3.0-tiny-test")  # the family from the name: no config there
    assert isinstance(model, ErnieForSequenceClassification)
    np.testing.assert_allclose(model(**ref_inputs()).logits.numpy(), REF["ernie3_cls/logits"], atol=1e-5)


# ---- masked-LM candidates (augment.py) --------------------------------------------------------------


def test_masked_lm_candidates_from_an_ernie_head(tmp_path):
    """augment's top-k layer (last layer only at [MASK], head only there) equals ErnieForMaskedLM's logits."""
    write_vocab(tmp_path, TINY_WORDS[:48])  # 5 specials + 11 punctuation + 48 words = the model's 64
    tokenizer = BertTokenizer.from_pretrained(tmp_path)
    model = ErnieForMaskedLM.from_pretrained(DATA / "ernie_ernie3_mlm")
    assert tokenizer.vocab_size == model.config.vocab_size == 64
    ids = [[2, 20, 4, 30, 3], [2, 40, 41, 42, 4, 3, 50, 51, 3], [2, 4, 3]]
    types = [[0] * 5, [0] * 6 + [1] * 3, [0] * 3]
    mask_index, word_ids = [2, 4, 1], [25, 43, 60]
    eager = augment.MaskedLMPredictor(model, tokenizer, k=5, batch_size=2, engine="eager")
    got = eager.top_k(ids, types, mask_index, word_ids)
    banned = augment.banned_tokens(tokenizer)
    for row, (i, t, m, w) in enumerate(zip(ids, types, mask_index, word_ids)):
        with paddle.no_grad():
            logits = model(paddle.to_tensor([i]), paddle.to_tensor([t])).logits.numpy()[0, m]
        logits = np.where(banned, -np.inf, logits)
        logits[w] = -np.inf
        np.testing.assert_array_equal(got[row], np.argsort(-logits)[:5])
    compiled = augment.MaskedLMPredictor(model, tokenizer, k=5, batch_size=2, engine="inference")
    np.testing.assert_array_equal(compiled.top_k(ids, types, mask_index, word_ids), got)


def test_data_augmentation_picks_ernie_from_the_folder(tmp_path, capsys):
    """data_augmentation.py with an ERNIE masked-LM folder (BertForMaskedLM would refuse it)."""
    import data_augmentation

    folder = tmp_path / "ernie_mlm"
    shutil.copytree(DATA / "ernie_ernie3_mlm", folder)
    write_vocab(folder, TINY_WORDS[:48])
    glove = tmp_path / "glove.txt"
    rng = np.random.default_rng(0)
    glove.write_text("".join(w + " " + " ".join(f"{x:.4f}" for x in rng.normal(size=4)) + "\n"
                             for w in ["good", "great", "fine", "film", "movie"]), encoding="utf-8")
    source = tmp_path / "train.tsv"
    source.write_text("text\tlabel\nthe movie was good\tpos\na bad film\tneg\n", encoding="utf-8")
    out = tmp_path / "aug.tsv"
    data_augmentation.main([str(a) for a in ["--pretrained_bert_model", folder, "--glove_embs", glove,
                                             "--train_file", source, "--output_file", out, "--N", 4, "--p", 1.0,
                                             "--K", 2, "--engine", "eager"]])
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "text\tlabel" and len(rows) > 3  # the originals and new samples
    assert "newly initialised" not in capsys.readouterr().err


# ---- distillation pipelines ------------------------------------------------------------------------

POSITIVE, NEGATIVE = ["good", "great", "fun", "happy", "love"], ["bad", "awful", "boring", "sad", "hate"]
FILLER = ["the", "movie", "film", "was", "is", "very", "it", "this", "story", "plot", "and"]
TEACHER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
               max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
               type_vocab_size=4, use_task_id=True, task_type_vocab_size=3)  # ERNIE 3.0: task ids
NARROW = "num_hidden_layers=1,hidden_size=16,intermediate_size=32"


def write_rows(path: Path, n: int, seed: int, sep: str) -> None:
    rng = np.random.default_rng(seed)
    lines = [sep.join(["text", "label"])]
    for i in range(n):
        label = i % 2
        words = list(rng.choice(FILLER, size=3)) + [str(rng.choice(POSITIVE if label else NEGATIVE))]
        lines.append(sep.join([" ".join(words), ["neg", "pos"][label]]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def ernie_teacher(tmp_path_factory) -> dict:
    """Own data (CSV train, TSV dev and test) and an ERNIE 3.0 teacher: finetune_teacher.py, 2 steps."""
    root = tmp_path_factory.mktemp("ernie_pipeline")
    base = root / "ernie3_base"
    write_vocab(base)
    vocab_size = BertTokenizer.from_pretrained(base).vocab_size
    paddle.seed(0)
    ErnieModel(ErnieConfig(vocab_size=vocab_size, **TEACHER)).save_pretrained(base)
    write_rows(root / "train.csv", 32, 1, ",")
    write_rows(root / "dev.tsv", 16, 2, "\t")
    write_rows(root / "test.tsv", 6, 3, "\t")
    finetune_teacher.main(["--model_type", "ernie", "--model_name_or_path", str(base),
                           "--train_file", str(root / "train.csv"), "--dev_file", str(root / "dev.tsv"),
                           "--max_seq_length", "32", "--batch_size", "8", "--max_steps", "2", "--logging_steps", "1",
                           "--output_dir", str(root / "teacher"), "--device", "cpu"])
    return {"root": root, "teacher": root / "teacher" / "best_model", "base": base, "vocab_size": vocab_size}


def distill_args(t: dict, out: Path, *extra: str) -> list[str]:
    return ["--teacher_model_type", "ernie", "--teacher_path", str(t["teacher"]),
            "--train_file", str(t["root"] / "train.csv"), "--dev_file", str(t["root"] / "dev.tsv"),
            "--max_seq_length", "32", "--batch_size", "8", "--logging_steps", "1", "--learning_rate", "1e-3",
            "--warmup_proportion", "0", "--output_dir", str(out), "--device", "cpu", *extra]


def test_the_teacher_is_an_ernie_3_classifier(ernie_teacher):
    teacher = modeling.load_classifier(ernie_teacher["teacher"])
    assert isinstance(teacher, ErnieForSequenceClassification) and teacher.config.use_task_id
    assert teacher.config.label2id == {"neg": 0, "pos": 1}


@pytest.mark.parametrize("student_type", ["ernie", "tinybert"])
def test_pipeline_with_an_ernie_teacher(ernie_teacher, student_type, capsys):
    """Intermediate stage, prediction stage, export, predict: a narrower student of either family."""
    root = ernie_teacher["root"] / student_type
    stage1, stage2 = root / "stage1", root / "stage2"
    task_distill.main(distill_args(ernie_teacher, stage1, "--model_type", student_type, "--student_config", NARROW,
                                   "--intermediate_distill", "--max_steps", "2"))
    last = stage1 / trainer.LAST_DIR
    state = checkpoints.load_state(last / "model_state.pdparams")
    projection = last / distill.PROJECTION_FILE
    if student_type == "ernie":  # W_h of the distillation: beside the student, not in its weights
        assert "W_h of the distillation" in capsys.readouterr().out
        saved = checkpoints.load_state(projection)
        assert saved["weight"].shape == (16, 32) and saved["bias"].shape == (32,)
        assert (last / trainstate.EXTRA_PARAMS_FILE).is_file()
        # Exactly the names PaddleNLP saves for an ERNIE 3.0 classifier (the reference has one layer more).
        theirs = checkpoints.load_state(DATA / "ernie_ernie3_cls" / "model_state.pdparams")
        assert sorted(state) == sorted(k for k in theirs if ".layers.1." not in k)
    else:  # the student's own fit_dense
        assert not projection.exists() and state["tinybert.fit_dense.weight"].shape == (16, 32)

    task_distill.main(distill_args(ernie_teacher, stage2, "--model_type", student_type,
                                   "--model_name_or_path", str(last), "--max_steps", "2"))
    best = stage2 / trainer.BEST_DIR
    assert not (best / distill.PROJECTION_FILE).exists()  # not needed at inference
    exported = root / "exported"
    export_model.main(["--model_path", str(best), "--output_path", str(exported)])
    info = json.loads((exported / "inference_config.json").read_text())
    assert info["model_type"] == student_type and info["labels"] == ["neg", "pos"]
    out = io.StringIO()
    texts = [line.split("\t")[0] for line in (ernie_teacher["root"] / "test.tsv").read_text().splitlines()[1:]]
    predict.main(["--model_path", str(exported)], stdin=io.StringIO("\n".join(texts) + "\n"), stdout=out)
    rows = [line.split("\t") for line in out.getvalue().splitlines()]
    assert rows[0] == ["index", "text_a", "label", "prob_neg", "prob_pos"] and len(rows) == 1 + 6
    assert all(r[2] in ("neg", "pos") and abs(float(r[3]) + float(r[4]) - 1) < 1e-5 for r in rows[1:])


@pytest.fixture(scope="module")
def ernie_stage1(ernie_teacher) -> Path:
    """One intermediate step of a narrower ERNIE student (16 wide; the teacher is 32): OUTPUT_DIR/last."""
    out = ernie_teacher["root"] / "ernie_stage1"
    task_distill.main(distill_args(ernie_teacher, out, "--model_type", "ernie", "--student_config", NARROW,
                                   "--intermediate_distill", "--max_steps", "1"))
    return out / trainer.LAST_DIR


def test_an_ernie_student_folder_loads_in_paddlenlp(ernie_stage1):
    report = run_pnlp_check([ernie_stage1])[str(ernie_stage1)]
    assert (report["missing"], report["unexpected"], report["mismatched"]) == ([], [], [])
    assert report["use_task_id"]
    ours = ErnieForSequenceClassification.from_pretrained(ernie_stage1)  # the reference ids < 64 < its 86
    np.testing.assert_allclose(np.array(report["logits"]), ours(**ref_inputs()).logits.numpy(), atol=1e-5)


def test_a_narrower_ernie_students_projection_is_restored_on_resume(ernie_teacher, monkeypatch):
    """Interrupted after step 2 and resumed to step 4: the same projection and student as a straight run."""
    common = ("--model_type", "ernie", "--student_config", NARROW, "--intermediate_distill", "--max_steps", "4",
              "--save_steps", "1", "--checkpoint_minutes", "0", "--checkpoint_budget", "0")  # last/ at every step
    straight, resumed = ernie_teacher["root"] / "straight", ernie_teacher["root"] / "resumed"
    task_distill.main(distill_args(ernie_teacher, straight, *common))

    real = distill.intermediate_loss_fn
    calls = []

    def interrupting(*args, **kwargs):
        loss_fn = real(*args, **kwargs)

        def wrapped(model, batch):
            calls.append(1)
            if len(calls) == 3:  # during step 3: last/ holds step 2
                raise KeyboardInterrupt
            return loss_fn(model, batch)
        return wrapped

    monkeypatch.setattr(distill, "intermediate_loss_fn", interrupting)
    with pytest.raises(SystemExit) as e:
        task_distill.main(distill_args(ernie_teacher, resumed, *common))
    assert e.value.code == 130
    at_step_2 = checkpoints.load_state(resumed / trainer.LAST_DIR / distill.PROJECTION_FILE)
    monkeypatch.setattr(distill, "intermediate_loss_fn", real)
    task_distill.main(distill_args(ernie_teacher, resumed, *common, "--resume"))

    a = checkpoints.load_state(straight / trainer.LAST_DIR / distill.PROJECTION_FILE)
    b = checkpoints.load_state(resumed / trainer.LAST_DIR / distill.PROJECTION_FILE)
    for k in ("weight", "bias"):
        np.testing.assert_allclose(b[k], a[k], atol=1e-6)
    assert not np.allclose(at_step_2["weight"], b["weight"])  # it was trained on after the resume
    sa = checkpoints.load_state(straight / trainer.LAST_DIR / "model_state.pdparams")
    sb = checkpoints.load_state(resumed / trainer.LAST_DIR / "model_state.pdparams")
    for k in sa:
        np.testing.assert_allclose(sb[k], sa[k], atol=1e-6, err_msg=k)


def test_a_new_intermediate_run_continues_the_saved_projection(ernie_teacher, ernie_stage1):
    """Stage 1 again from stage 1's output (a new run, not --resume): its W_h goes on from the saved one."""
    parsed = task_distill.parse_args(distill_args(ernie_teacher, ernie_teacher["root"] / "unused", "--model_type",
                                                  "ernie", "--model_name_or_path", str(ernie_stage1),
                                                  "--intermediate_distill"))
    args = parsed.distill
    spec = tasks.load_task_data(parsed.data, ("train",))[0]
    teacher = distill.load_teacher(args.teacher_path, "ernie", spec)
    tokenizer = BertTokenizer.from_pretrained(args.teacher_path)
    student = distill.build_student("ernie", spec, teacher, tokenizer, str(ernie_stage1))
    projection = distill.fit_projection(student, teacher, args.projection, str(ernie_stage1))
    saved = checkpoints.load_state(ernie_stage1 / distill.PROJECTION_FILE)
    np.testing.assert_array_equal(distill.distill_projection(projection).weight.numpy(), saved["weight"])
    params = distill.trainable_parameters(student, "intermediate", projection)
    assert params[-2] is projection[0].weight and params[-1] is projection[0].bias


# ---- errors -----------------------------------------------------------------------------------------


def test_mismatched_vocabularies_and_labels_are_one_line_errors(ernie_teacher, tmp_path, capsys):
    def fails(*extra: str) -> str:
        with pytest.raises(SystemExit) as e:
            task_distill.main(distill_args(ernie_teacher, tmp_path / "out", *extra))
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        return err

    config = ErnieConfig(vocab_size=ernie_teacher["vocab_size"], hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=32, max_position_embeddings=64)
    other_vocab = tmp_path / "other_vocab"
    ErnieModel(config).save_pretrained(other_vocab)
    write_vocab(other_vocab, ["zebra", "yak"] + TINY_WORDS[2:])
    assert "differs from the teacher's vocabulary" in fails("--model_type", "ernie", "--model_name_or_path",
                                                            str(other_vocab))
    small = tmp_path / "small_vocab"
    ErnieModel(ErnieConfig(**{**config.to_dict(), "vocab_size": 40})).save_pretrained(small)
    assert "smaller than the teacher's vocabulary" in fails("--model_type", "ernie", "--model_name_or_path", str(small))
    three = tmp_path / "three_labels"
    ErnieForSequenceClassification(ErnieConfig(**{**config.to_dict(), "label2id": {"a": 0, "b": 1, "c": 2}})
                                   ).save_pretrained(three)
    assert "classifier for 3 labels but the teacher predicts 2" in fails("--model_type", "ernie",
                                                                       "--model_name_or_path", str(three))
    assert "holds a model of type ernie" in fails("--teacher_model_type", "bert", "--student_config", NARROW)
    assert "--projection always needs a student with fit_dense" in fails("--model_type", "ernie", "--student_config",
                                                                         NARROW, "--projection", "always")
    wrong = fails("--model_type", "ernie", "--student_config", "use_task_id=maybe")
    assert "expected true or false" in wrong


def test_cross_family_students_from_a_bert_teacher(tmp_path):
    """An ERNIE 3.0 student of a BERT teacher: fields BERT lacks get ERNIE's defaults, and initialising from
    the teacher copies the shared weights (the task-type embeddings stay the student's)."""
    paddle.seed(3)
    bert = modeling.BertConfig(vocab_size=86, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=48, max_position_embeddings=64, num_labels=2)
    c = distill.student_config("num_hidden_layers=1,use_task_id=true", bert, ErnieConfig)
    assert isinstance(c, ErnieConfig) and c.use_task_id and c.task_type_vocab_size == 3 and c.type_vocab_size == 2
    teacher = modeling.BertForSequenceClassification(bert)
    student = ErnieForSequenceClassification(ErnieConfig.from_dict({**c.to_dict(), "num_labels": 2}))
    task_types = student.ernie.embeddings.task_type_embeddings.weight.numpy()
    distill.init_student_from_teacher(student, teacher, [2])
    np.testing.assert_array_equal(student.ernie.embeddings.word_embeddings.weight.numpy(),
                                  teacher.bert.embeddings.word_embeddings.weight.numpy())
    np.testing.assert_array_equal(student.ernie.encoder.layers[0].linear1.weight.numpy(),
                                  teacher.bert.encoder.layers[1].linear1.weight.numpy())
    np.testing.assert_array_equal(student.ernie.embeddings.task_type_embeddings.weight.numpy(), task_types)
