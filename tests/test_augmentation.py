"""data_augmentation.py: candidates (masked-LM and GloVe), sampling, formats, determinism, resume, errors.

The masked-LM is tiny; its "rigged" variant has a head whose LayerNorm scale is zero, so its logits are
exactly the decoder bias whatever the input: the candidates are known in advance."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tinybert.augmentation import augment, outputs, runner
from tinybert import errors
from tinybert.data import tasks
from builders import (GLOVE_WORDS, SENTENCES, run_augmentation as run, save_masked_lm, summary_of, write_sst2,
                      write_vocab)


# Rigged head: the logit ranking, best first. "##ing" and "[UNK]" are never candidates.
RANKING = ["##ing", "good", "[UNK]", "great", "fine", "bad", "awful", "fun", "sad", "happy"]


@pytest.fixture(scope="module")
def rigged_dir(tmp_path_factory) -> Path:
    return save_masked_lm(tmp_path_factory.mktemp("rigged"), ranking=RANKING)


def load(model_dir: Path, config: augment.AugmentConfig, engine: str = "eager"):
    from tinybert.models import modeling
    from tinybert.data.tokenization import BertTokenizer

    tok = BertTokenizer.from_pretrained(model_dir)
    model = modeling.BertForMaskedLM.from_pretrained(model_dir)
    return tok, model, augment.MaskedLMPredictor(model, tok, config.K, config.batch_size, engine)


def finder_for(model_dir: Path, glove_file: Path, **config) -> augment.CandidateFinder:
    from tinybert.augmentation.glove import load_glove

    config = augment.AugmentConfig(**config)
    tok, _, predictor = load(model_dir, config)
    return augment.CandidateFinder(tok, load_glove(glove_file, verbose=False), predictor, config)


def blocks(out_rows: list, originals: list) -> list[list]:
    """The output split into one block per input example, each starting with the original row."""
    found, k = [], 0
    for row in out_rows:
        if k < len(originals) and row == originals[k]:
            found.append([row])
            k += 1
        else:
            assert found, f"{row} comes before the first original"
            found[-1].append(row)
    assert k == len(originals), "not every original row is in the output, in order"
    return found


# ----------------------------------------------------------------------------------------------
# Candidates


@pytest.mark.parametrize("mlm_input", ["single", "pair"])
def test_masked_lm_candidates_from_the_rigged_head(rigged_dir, glove_file, mlm_input):
    finder = finder_for(rigged_dir, glove_file, K=4, mlm_input=mlm_input)
    words = ["the", "good", "movie", "unbelievable", "[MASK]"]
    the, good, movie, unbelievable, mask = finder([words])[0]
    assert the == ()  # a stop word: never replaced by default
    # The K best tokens, banned ones (## pieces, [UNK]) and the masked word itself left out.
    assert movie == ("good", "great", "fine", "bad")
    assert good == ("great", "fine", "bad", "awful")
    # Several word pieces (un ##believ ##able): GloVe's nearest words instead.
    assert set(unbelievable[:3]) == {"incredible", "amazing", "astonishing"} and len(unbelievable) == 4
    assert mask == ()  # a special token has no candidates
    # Same masked input (single), different words: each excludes itself.
    good, great = [c[-1] for c in finder([["a", "good"], ["a", "great"]])]
    assert good == ("great", "fine", "bad", "awful") and great == ("good", "fine", "bad", "awful")


def test_fast_top_k_equals_the_full_models_predictions(random_dir):
    """Last layer and vocabulary projection only at the [MASK]: same result as the whole model."""
    import paddle

    config = augment.AugmentConfig(K=6, batch_size=3)
    tok, model, predictor = load(random_dir, config)
    sentences = [["the", "movie", "was", "good"], ["a", "cat"], ["it", "is", "a", "very", "big", "red", "dog"]]
    inputs = []
    for words in sentences:
        pieces = [tok.vocab[w] for w in words]
        for pos in range(len(words)):
            for mode in ("single", "pair"):
                ids, types, m = augment.masked_input(pieces, pos, mode, 64, tok.cls_token_id, tok.sep_token_id,
                                                tok.mask_token_id)
                inputs.append((ids, types, m, pieces[pos]))
    expected = []
    banned = augment.banned_tokens(tok)
    with paddle.no_grad():
        for ids, types, m, word in inputs:  # one at a time, full logits at every position
            logits = model(paddle.to_tensor([ids]), paddle.to_tensor([types])).logits.numpy()[0, m]
            logits[banned] = -np.inf
            logits[word] = -np.inf
            expected.append(np.argsort(-logits, kind="stable")[:6])
    args = [[x[i] for x in inputs] for i in range(4)]
    np.testing.assert_array_equal(predictor.top_k(*args), np.array(expected))
    inference = augment.MaskedLMPredictor(model, tok, 6, 4, "inference")
    assert inference.engine == "inference"
    np.testing.assert_array_equal(inference.top_k(*args), np.array(expected))


def test_paddle_inference_gives_the_eager_masked_lm_with_exact_gelu(tmp_path):
    """The augmentation's inference path (augment._inference_runner: Paddle Inference, oneDNN, the fused
    FC+GELU pass removed) computes BERT's erf GELU: its masked-LM logits and top-k equal eager Paddle's."""
    import paddle
    import paddle.nn.functional as F

    from tinybert.models import modeling
    from tinybert.data.tokenization import BertTokenizer

    write_vocab(tmp_path)
    tok = BertTokenizer.from_pretrained(tmp_path)
    config = modeling.BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, intermediate_size=128, max_position_embeddings=64,
                                 hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    paddle.seed(5)
    model = modeling.BertForMaskedLM(config)
    for layer in model.bert.encoder.layers:  # GELU inputs of order 1, where erf and tanh GELU differ by ~1e-3
        layer.linear1.weight.set_value(layer.linear1.weight * 25.0)
    model.cls.predictions.transform.weight.set_value(model.cls.predictions.transform.weight * 25.0)
    model.eval()

    class MaskedWordLogits(paddle.nn.Layer):  # the masked-LM's logits at each row's [MASK], the word banned
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, token_type_ids, attention_mask, masked_positions, word_ids):
            logits = self.model(input_ids, token_type_ids, attention_mask, masked_positions=masked_positions).logits
            return logits + augment.BANNED_LOGIT * F.one_hot(word_ids, config.vocab_size)

    sentences = [["the", "movie", "was", "good"], ["a", "very", "big", "red", "dog"],
                 ["she", "said", "it", "is", "fun"]]
    rows = []
    for words in sentences:
        pieces = tok.convert_tokens_to_ids(words)
        for pos in range(len(words)):
            rows.append((*augment.masked_input(pieces, pos, "single", 64, tok.cls_token_id, tok.sep_token_id,
                                               tok.mask_token_id), pieces[pos]))
    width = max(len(ids) for ids, _, _, _ in rows)
    batch = {"input_ids": np.array([ids + [0] * (width - len(ids)) for ids, _, _, _ in rows]),
             "token_type_ids": np.array([t + [0] * (width - len(t)) for _, t, _, _ in rows]),
             "attention_mask": np.array([[1] * len(ids) + [0] * (width - len(ids)) for ids, _, _, _ in rows]),
             "masked_positions": np.array([r * width + m for r, (_, _, m, _) in enumerate(rows)]),
             "word_ids": np.array([w for _, _, _, w in rows])}
    batch = {k: v.astype(np.int64) for k, v in batch.items()}
    layer = MaskedWordLogits()
    with paddle.no_grad():
        eager = layer(*[paddle.to_tensor(batch[n]) for n in augment.MLM_INPUTS]).numpy()
    served = augment._inference_runner(layer, "cpu")(batch)
    finite = eager > augment.BANNED_LOGIT / 2
    assert np.ptp(eager[finite]) > 0.5  # logits that differ
    np.testing.assert_allclose(served[finite], eager[finite], rtol=0, atol=1e-5)  # tanh GELU: 6e-5 off

    # The predictor's top-k through both engines: the same tokens in the same order.
    args = [[r[i] for r in rows] for i in range(4)]
    top = {engine: augment.MaskedLMPredictor(model, tok, 8, 5, engine).top_k(*args)
           for engine in ("eager", "inference")}
    np.testing.assert_array_equal(top["inference"], top["eager"])


def test_single_input_hides_the_word_and_pair_input_shows_it(rigged_dir, glove_file):
    for mode in ("single", "pair"):
        finder = finder_for(rigged_dir, glove_file, mlm_input=mode, replace_all_words=True)
        seen = []
        real = finder.mlm.top_k
        finder.mlm.top_k = lambda ids, types, mask, words: (seen.append((ids, types, mask, words)),
                                                             real(ids, types, mask, words))[1]
        finder([["the", "movie", "was", "good"]])
        ids, types, mask, words = seen[0]
        tok = finder.tokenizer
        sentence = tok.convert_tokens_to_ids(["the", "movie", "was", "good"])
        assert sorted(words) == sorted(sentence)
        for row, t, m, w in zip(ids, types, mask, words):
            masked = [tok.mask_token_id if x == w else x for x in sentence]
            assert row[m] == tok.mask_token_id
            if mode == "single":  # the paper's input: the masked sentence only; the word is nowhere
                assert row == [tok.cls_token_id] + masked + [tok.sep_token_id] and w not in row
                assert t == [0] * len(row)
            else:  # the released code's: masked sentence [SEP] original sentence
                assert row == [tok.cls_token_id] + masked + [tok.sep_token_id] + sentence + [tok.sep_token_id]
                assert t == [0] * 6 + [1] * 5


def test_long_sentences_get_a_window_around_the_masked_word():
    pieces = list(range(100, 140))  # 40 pieces
    ids, types, m = augment.masked_input(pieces, 30, "single", 12, 1, 2, 3)
    assert len(ids) == 12 and ids[m] == 3 and ids[0] == 1 and ids[-1] == 2
    assert ids[1:-1] == [3 if p == 130 else p for p in range(125, 135)]
    ids, types, m = augment.masked_input(pieces, 39, "pair", 13, 1, 2, 3)  # 5 pieces per side
    assert ids == [1, 135, 136, 137, 138, 3, 2, 135, 136, 137, 138, 139, 2] and m == 5
    assert types == [0] * 7 + [1] * 6
    ids, _, m = augment.masked_input(pieces, 0, "single", 12, 1, 2, 3)
    assert ids[1:3] == [3, 101] and m == 1


def test_the_references_rule_letters_only_and_not_a_stop_word():
    assert all(augment.replaceable(w) for w in ["movie", "Movie", "BAD", "unbelievable"])
    assert not any(augment.replaceable(w) for w in ["not", "no", "nor", "the", "The", "a", "is", "very", "don",
                                                    "t", "'s", "don't", ",", ".", "!", "42", "1st", "x-ray",
                                                    "café", ""])
    # The references' list: NLTK's English stop words without its question words, plus 's and 're.
    assert len(augment.STOP_WORDS) == 173 and {"'s", "'re", "ain", "mightn't", "y"} <= augment.STOP_WORDS
    assert all(augment.replaceable(w) for w in ["what", "which", "who", "whom", "when", "where", "why", "how"])


def test_stop_words_and_punctuation_get_no_candidates_unless_replace_all_words(rigged_dir, glove_file):
    words = ["it", "is", "not", "a", "bad", "movie", ",", "unbelievable", "!"]
    default = finder_for(rigged_dir, glove_file, K=3)([words])[0]
    assert [len(c) for c in default] == [0, 0, 0, 0, 3, 3, 0, 3, 0]
    assert default[4] == ("good", "great", "fine")  # "bad": the masked-LM's best three
    every = finder_for(rigged_dir, glove_file, K=3, replace_all_words=True)([words])[0]
    # it, is, not, a, ",", "!": one word piece each, so the masked-LM's best three
    assert [every[i] for i in (0, 1, 2, 3, 6, 8)] == [("good", "great", "fine")] * 6
    assert every[4:6] == default[4:6] and set(every[7]) == set(default[7])


def test_by_default_stop_words_punctuation_and_numbers_stay(tmp_path, capsys):
    words = ["movie", "film", "bad", "awful", "not", "never", "the", "a", "42", "17", ",", ";"]
    vectors = np.random.default_rng(1).normal(size=(len(words), 8))
    glove = tmp_path / "glove.txt"
    glove.write_text("".join(w + " " + " ".join(f"{x:.4f}" for x in v) + "\n" for w, v in zip(words, vectors)),
                     encoding="utf-8")
    source = write_sst2(tmp_path / "train.tsv", ["the movie is not bad , 42"])
    common = ["--mlm", "none", "--glove_embs", glove, "--task_name", "SST-2", "--train_file", source, "--p", 1.0,
              "--N", 6]
    original = "the movie is not bad , 42".split()
    for flag, changed in (([], {1, 4}), (["--replace_all_words"], {0, 1, 3, 4, 5, 6})):
        out = tmp_path / f"out{len(flag)}.tsv"
        code, err = run(common + flag + ["--output_file", out], capsys)
        assert code == 0, err
        new = [r.split("\t")[0].split(" ") for r in out.read_text(encoding="utf-8").splitlines()[2:]]
        assert len(new) >= 3
        for sample in new:  # p=1: exactly the words with candidates change ("is" has no GloVe vector)
            assert len(sample) == 7
            assert {i for i in range(7) if sample[i] != original[i]} == changed, (flag, sample)
            assert all(sample[i] in words for i in changed)


# ----------------------------------------------------------------------------------------------
# Sampling: N, p, K


def test_n_p_k_semantics_over_many_samples():
    K, N, p = 5, 4000, 0.3
    words = ["w0", "w1", "w2", "w3", "stay"]
    candidates = [tuple(f"{w}_c{j}" for j in range(K)) for w in words[:4]] + [()]
    samples = augment.draw_sentences(words, candidates, N, p, np.random.default_rng(0))  # before dedup
    assert len(samples) == N
    grid = np.array([s.split(" ") for s in samples])
    assert (grid[:, 4] == "stay").all()  # no candidates: never replaced
    replaced = grid[:, :4] != np.array(words[:4])
    sigma = np.sqrt(p * (1 - p) / N)
    assert abs(replaced.mean(axis=0) - p).max() < 4 * sigma  # each word, with probability p
    for i in range(4):  # a uniformly drawn candidate: each about 1/K of the replacements
        picks = grid[replaced[:, i], i]
        assert set(picks) == set(candidates[i])
        counts = np.array([np.sum(picks == c) for c in candidates[i]])
        expected = len(picks) / K
        assert np.abs(counts - expected).max() < 4 * np.sqrt(expected)
    # Independence between words: both replaced about p^2 of the time.
    both = (replaced[:, 0] & replaced[:, 1]).mean()
    assert abs(both - p * p) < 4 * np.sqrt(p * p * (1 - p * p) / N)
    assert augment.draw_sentences(words, candidates, 3, 0.0, np.random.default_rng(1)) == [" ".join(words)] * 3
    assert augment.sample_sentences(words, candidates, 3, 0.0, np.random.default_rng(1)) == []  # all unchanged
    assert all(" ".join(words[:4]) not in s for s in augment.draw_sentences(words, candidates, 50, 1.0,
                                                                      np.random.default_rng(2)))
    # The samples are the draws, in order, without repeats and without the sentence itself.
    draws = augment.draw_sentences(words, candidates, 40, 0.3, np.random.default_rng(5))
    kept = augment.sample_sentences(words, candidates, 40, 0.3, np.random.default_rng(5))
    assert kept == list(dict.fromkeys(d for d in draws if d != " ".join(words)))
    assert len(set(draws)) < 40 and 0 < len(kept) < 40


def test_k_candidates_per_word_and_n_rows_per_side(rigged_dir, glove_file, tmp_path, capsys):
    source = write_sst2(tmp_path / "train.tsv", ["the movie"])
    out = tmp_path / "aug.tsv"
    code, err = run(["--pretrained_bert_model", rigged_dir, "--glove_embs", glove_file, "--task_name", "sst-2",
                     "--train_file", source, "--output_file", out, "--N", 300, "--p", 1.0, "--K", 3,
                     "--engine", "eager", "--replace_all_words"], capsys)
    assert code == 0, err
    rows = out.read_text(encoding="utf-8").splitlines()
    # p=1: both words replaced, each by one of its K=3 candidates: the 9 pairs, each once, out of 300 draws.
    assert rows[:2] == ["sentence\tlabel", "the movie \t0"] and len(rows) == 2 + 9
    pairs = [tuple(r.split("\t")[0].split(" ")) for r in rows[2:]]
    top3 = ("good", "great", "fine")  # the K=3 candidates of "the" and of "movie"
    assert sorted(pairs) == sorted((a, b) for a in top3 for b in top3)
    assert {r.split("\t")[1] for r in rows[1:]} == {"0"}  # labels unchanged
    assert "1 examples -> 10 rows (1 originals + 9 new samples from 1 sentences); 1 of 1 sentences yielded " \
           "fewer than N=300" in err

    # --M is the references' name of --K.
    code, err = run(["--pretrained_bert_model", rigged_dir, "--glove_embs", glove_file, "--task_name", "sst-2",
                     "--train_file", source, "--output_file", out, "--N", 300, "--p", 1.0, "--M", 2,
                     "--engine", "eager", "--replace_all_words", "--overwrite"], capsys)
    assert code == 0, err
    pairs = {tuple(r.split("\t")[0].split(" ")) for r in out.read_text(encoding="utf-8").splitlines()[2:]}
    assert pairs == {(a, b) for a in ("good", "great") for b in ("good", "great")}


def test_samples_are_distinct_and_never_the_original(rigged_dir, glove_file, tmp_path, capsys):
    # K=1: each word's one candidate is the rigged head's best other token ("good"; "great" for "good").
    source = write_sst2(tmp_path / "train.tsv", ["Red dog.", "it is not", "the movie was good"])
    out = tmp_path / "aug.tsv"
    code, err = run(["--pretrained_bert_model", rigged_dir, "--glove_embs", glove_file, "--task_name", "SST-2",
                     "--train_file", source, "--output_file", out, "--K", 1, "--engine", "eager"], capsys)
    assert code == 0, err
    rows = [r.split("\t")[0] for r in out.read_text(encoding="utf-8").splitlines()[1:]]
    red, stop, movie = blocks(rows, ["Red dog. ", "it is not ", "the movie was good "])
    # Two words, one candidate each: 3 sentences differ from the original, each written once out of 20 draws;
    # the unchanged draw is not written, not even as "red dog ." (the references compare with the raw text).
    assert len(red) == 1 + 3 and sorted(red[1:]) == ["good dog .", "good good .", "red good ."]
    assert stop == ["it is not "]  # stop words only: no sample
    assert len(movie) == 1 + 3 and sorted(movie[1:]) == ["the good was good", "the good was great",
                                                         "the movie was great"]
    assert summary_of(err) == {"examples": 3, "rows": 9, "originals": 3, "samples": 6, "sentences": 3,
                               "short": 3, "sentences2": 3, "N": 20}
    assert err.strip().splitlines()[-1] == (
        f"wrote {out}: 3 examples -> 9 rows (3 originals + 6 new samples from 3 sentences); 3 of 3 sentences "
        f"yielded fewer than N=20 distinct new samples")


def test_n_per_task_as_in_the_references():
    expected = {"CoLA": 30, "SST-2": 20, "MRPC": 30, "STS-B": 30, "QQP": 10, "MNLI": 10, "QNLI": 20, "RTE": 30,
                "WNLI": 30}
    assert {task: augment.samples_for_task(task) for task in tasks.GLUE_TASKS} == expected
    assert augment.samples_for_task(None) == augment.samples_for_task("my-task") == 30


@pytest.mark.parametrize("task, n", [("SST-2", 20), ("sst-2", 20), ("MNLI", 10), ("RTE", 30), ("WNLI", 30)])
def test_n_is_the_tasks_unless_given(task, n, glove_file, tmp_path, capsys):
    folder = tmp_path / task
    rows = write_glue_train(folder, task, n=1)
    common = ["--mlm", "none", "--glove_embs", glove_file, "--task_name", task, "--data_dir", folder, "--p", 1.0,
              "--overwrite"]
    record = folder / "train_aug.tsv.progress.json"
    code, err = run(common, capsys)
    assert code == 0, err
    found = summary_of(err)
    assert found["N"] == n and json.loads(record.read_text())["settings"]["N"] == n
    sides = len(tasks.get_task(task).layout("train").text_columns)
    assert found["sentences"] == sides and sides <= found["samples"] <= n * sides
    code, err = run(common + ["--N", 3], capsys)  # an explicit --N wins
    assert code == 0, err
    assert summary_of(err)["N"] == 3 and json.loads(record.read_text())["settings"]["N"] == 3
    out = list(tasks.task_rows(folder / "train_aug.tsv", task, "train").read())
    assert out[0] == rows[0] and 1 + sides <= len(out) <= 1 + 3 * sides


def test_each_example_has_its_own_random_stream():
    a = augment.example_rng(7, 3).random(5)
    np.testing.assert_array_equal(a, augment.example_rng(7, 3).random(5))
    assert not np.array_equal(a, augment.example_rng(7, 4).random(5))
    assert not np.array_equal(a, augment.example_rng(8, 3).random(5))


# ----------------------------------------------------------------------------------------------
# Formats: every GLUE task, pairs, custom files


def glue_row(layout: tasks.Layout, spec: tasks.TaskSpec, k: int) -> list[str]:
    fields = [f"x{k}" for _ in layout.columns]
    if layout.index is not None:
        fields[layout.index] = str(k)
    if layout.label is not None:
        fields[layout.label] = "2.5" if spec.labels is None else spec.labels[k % len(spec.labels)]
    fields[layout.text_a] = ["the movie was good", "a cafe , not a film", "unbelievable"][k % 3]
    if layout.text_b is not None:  # every text has words with GloVe neighbours
        fields[layout.text_b] = ["it is a fun film", "the dog said hello to the coffee"][k % 2]
    return fields


def write_glue_train(folder: Path, task: str, n: int = 3) -> list[list[str]]:
    """A GLUE task's train.tsv of n rows (glue_row) in its layout; returns the rows."""
    spec = tasks.get_task(task)
    layout = spec.layout("train")
    rows = [glue_row(layout, spec, k) for k in range(n)]
    folder.mkdir(parents=True, exist_ok=True)
    header = "\t".join(layout.columns) + "\n" if layout.has_header else ""
    (folder / "train.tsv").write_text(header + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return rows


@pytest.mark.parametrize("task", list(tasks.GLUE_TASKS))
def test_glue_format_round_trip(task, glove_file, tmp_path, capsys):
    spec = tasks.get_task(task)
    layout = spec.layout("train")
    rows = [glue_row(layout, spec, k) for k in range(3)]
    source = tmp_path / task / "train.tsv"
    source.parent.mkdir()
    header = "\t".join(layout.columns) + "\n" if layout.has_header else ""
    source.write_text(header + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    code, err = run(["--mlm", "none", "--glove_embs", glove_file, "--task_name", task, "--data_dir",
                     tmp_path / task, "--N", 2, "--p", 1.0], capsys)
    assert code == 0, err
    out = tmp_path / task / "train_aug.tsv"  # the default output, beside train.tsv
    out_table = tasks.task_rows(out, spec, "train")
    out_header, out_rows = out_table.header, list(out_table.read())
    assert out_header == (list(layout.columns) if layout.has_header else None)
    examples = tasks.read_glue_examples(out, spec, "train")
    assert len(examples) == len(out_rows)
    found = summary_of(err)
    assert (found["examples"], found["rows"], found["N"]) == (3, len(out_rows), 2)
    assert found["sentences"] == 3 * len(layout.text_columns)
    for original, block in zip(rows, blocks(out_rows, rows)):
        new, changed = block[1:], []
        for fields in new:  # each new row changes one text side; label, ids and the other text stay
            diff = [i for i in range(len(fields)) if fields[i] != original[i]]
            assert len(diff) == 1 and diff[0] in layout.text_columns, (original, fields)
            changed.append(diff[0])
        assert changed == sorted(changed)  # first side's rows, then the second's
        for side in layout.text_columns:  # p=1 changes every sentence: 1 or 2 distinct samples per side
            texts = [fields[side] for fields in new if fields[side] != original[side]]
            assert 1 <= len(texts) <= 2 and len(set(texts)) == len(texts)


def test_pair_sides_are_augmented_one_at_a_time(rigged_dir, glove_file, tmp_path, capsys):
    source = tmp_path / "RTE" / "train.tsv"
    source.parent.mkdir()
    source.write_text("index\tsentence1\tsentence2\tlabel\n0\tThe movie was good.\tIt is fun.\tentailment\n",
                      encoding="utf-8")
    code, err = run(["--pretrained_bert_model", rigged_dir, "--glove_embs", glove_file, "--task_name", "RTE",
                     "--data_dir", source.parent, "--N", 3, "--p", 1.0, "--engine", "eager"], capsys)
    assert code == 0, err
    rows = [r.split("\t") for r in (source.parent / "train_aug.tsv").read_text().splitlines()[1:]]
    assert len(rows) == 1 + 3 + 3
    assert rows[0] == ["0", "The movie was good.", "It is fun.", "entailment"]
    for r in rows[1:4]:  # first side new, second side the original
        assert r[2] == "It is fun." and r[1] != "The movie was good." and len(r[1].split()) == 5
    for r in rows[4:]:  # second side new, first side the original (not an earlier augmented one)
        assert r[1] == "The movie was good." and r[2] != "It is fun." and len(r[2].split()) == 4
    assert all(r[0] == "0" and r[3] == "entailment" for r in rows)


def test_real_glue_files(glue_dir, tmp_path, capsys):
    for task in ["CoLA", "SST-2", "MRPC", "STS-B", "RTE"]:
        folder = tmp_path / task
        folder.mkdir()
        with open(glue_dir / task / "train.tsv", "rb") as f:  # BOM, no header (CoLA): as they come
            (folder / "train.tsv").write_bytes(b"".join(f.readline() for _ in range(5)))
        # GloVe vectors for every word of the file, so that its words have neighbours.
        words = sorted(set(re.findall(r"[a-z]+", (folder / "train.tsv").read_text(encoding="utf-8-sig").lower())))
        vectors = np.random.default_rng(0).normal(size=(len(words), 8))
        glove = tmp_path / f"glove-{task}.txt"
        glove.write_text("".join(w + " " + " ".join(f"{x:.4f}" for x in v) + "\n" for w, v in zip(words, vectors)),
                         encoding="utf-8")
        code, err = run(["--mlm", "none", "--glove_embs", glove, "--task_name", task, "--glue_dir",
                         tmp_path, "--N", 2], capsys)
        assert code == 0, f"{task}: {err}"
        spec = tasks.get_task(task)
        original = tasks.read_glue_examples(folder / "train.tsv", spec, "train")
        augmented = tasks.read_glue_examples(folder / "train_aug.tsv", spec, "train")
        key = [(e.text_a, e.text_b, e.label) for e in original]
        found = blocks([(e.text_a, e.text_b, e.label) for e in augmented], key)
        sides = len(spec.layout("train").text_columns)
        assert all(1 <= len(block) <= 1 + 2 * sides for block in found), task
        assert all(row[2] == block[0][2] for block in found for row in block)  # labels unchanged
        assert len(augmented) > len(original)  # some samples
        counts = summary_of(err)
        assert (counts["examples"], counts["rows"], counts["sentences"]) == (len(original), len(augmented),
                                                                          len(original) * sides), task


def test_custom_csv_and_jsonl(glove_file, tmp_path, capsys):
    source = tmp_path / "mine.csv"
    source.write_text('id,text,label\n1,"the movie, good",pos\n2,a cafe,neg\n', encoding="utf-8")
    code, err = run(["--mlm", "none", "--glove_embs", glove_file, "--train_file", source, "--N", 2, "--p", 1.0],
                    capsys)
    assert code == 0, err
    rows = list(csv.reader(open(tmp_path / "mine_aug.csv", encoding="utf-8")))
    assert rows[0] == ["id", "text", "label"] and rows[1] == ["1", "the movie, good", "pos"]
    first, second = blocks(rows[1:], [["1", "the movie, good", "pos"], ["2", "a cafe", "neg"]])
    assert 2 <= len(first) <= 3 and 2 <= len(second) <= 3
    assert {r[2] for r in first} == {"pos"} and {r[2] for r in second} == {"neg"}
    for _, text, _ in first[1:]:  # p=1: both words replaced by GloVe words; "the" and "," stay
        the, movie, comma, good = text.split(" ")
        assert (the, comma) == ("the", ",") and {movie, good} <= set(GLOVE_WORDS)
        assert movie != "movie" and good != "good"
    for _, text, _ in second[1:]:
        a, cafe = text.split(" ")
        assert a == "a" and cafe in GLOVE_WORDS and cafe != "cafe"
    assert summary_of(err)["rows"] == len(rows) - 1

    source = tmp_path / "mine.jsonl"
    source.write_text('{"q": "the movie", "a": "good cafe", "y": 1, "extra": [1]}\n', encoding="utf-8")
    code, err = run(["--mlm", "none", "--glove_embs", glove_file, "--train_file", source, "--text_a_column", "q",
                     "--text_b_column", "a", "--N", 2, "--p", 1.0], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in open(tmp_path / "mine_aug.jsonl", encoding="utf-8")]
    assert len(records) == 5 and all(r["y"] == 1 and r["extra"] == [1] for r in records)
    assert [r["a"] for r in records[1:3]] == ["good cafe"] * 2 and [r["q"] for r in records[3:]] == ["the movie"] * 2


def test_max_train_examples_augments_the_seeded_sample_training_takes(glove_file, tmp_path, capsys):
    """sst2_400.tsv writes sst2_400_aug.tsv (and its .progress.json) beside it; with --max_train_examples only
    the rows tasks.sample_indices keeps, in file order, each followed by its samples."""
    from tinybert.data import tasks

    texts = [f"the movie number {i}" for i in range(20)]
    source = tmp_path / "sst2_400.tsv"
    source.write_text("sentence\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(texts)))
    code, err = run(["--mlm", "none", "--glove_embs", glove_file, "--train_file", source, "--task_name", "SST-2",
                     "--N", 1, "--p", 1.0, "--max_train_examples", 6, "--seed", 7], capsys)
    assert code == 0, err
    out = tmp_path / "sst2_400_aug.tsv"
    assert (tmp_path / "sst2_400_aug.tsv.progress.json").is_file()
    rows = [line.split("\t") for line in out.read_text().splitlines()[1:]]
    originals = [r[0] for r in rows if r[0] in texts]
    assert originals == [texts[i] for i in tasks.sample_indices(20, 6, 7)]
    assert summary_of(err)["examples"] == 6
    assert tasks.sample_indices(20, 6, 7) != tasks.sample_indices(20, 6, 8)
    assert tasks.sample_indices(5, 6, 7) == tasks.sample_indices(5, 0, 7) == list(range(5))


# ----------------------------------------------------------------------------------------------
# GloVe only


def test_a_folder_without_masked_lm_weights_is_an_error_and_mlm_none_uses_glove(glove_file, tmp_path, capsys):
    from tinybert.models import modeling
    from tinybert.augmentation.glove import load_glove

    folder = tmp_path / "encoder_only"  # a sentence encoder or fine-tuned classifier: no cls.predictions.*
    write_vocab(folder)
    modeling.BertModel(modeling.BertConfig(vocab_size=86, hidden_size=32, num_hidden_layers=1,
                                           num_attention_heads=4, intermediate_size=64)).save_pretrained(folder)
    source = write_sst2(tmp_path / "train.tsv", ["unbelievable movie", "good cafe"])
    common = ["--glove_embs", glove_file, "--task_name", "SST-2", "--train_file", source, "--p", 1.0]
    code, err = run(common + ["--pretrained_bert_model", folder, "--output_file", tmp_path / "a.tsv"], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"error: {folder} has no masked-LM head (cls.predictions.*): its candidates would all come from GloVe; "
        f"pass --mlm none to use GloVe for every word, or give a BERT with its masked-LM head"]
    assert not (tmp_path / "a.tsv").exists() and not list(tmp_path.glob("a.tsv*"))
    for extra in ([], ["--pretrained_bert_model", folder]):  # GloVe only, with or without the folder's vocabulary
        out = tmp_path / f"b{len(extra)}.tsv"
        code, err = run(common + ["--mlm", "none", "--output_file", out, *extra], capsys)
        assert code == 0, err
        rows = out.read_text().splitlines()
        assert rows[:2] == ["sentence\tlabel", "unbelievable movie \t0"]
        new = [row.split("\t")[0] for row in rows[2:] if row.split("\t")[1] == "0"]
        # SST-2's N=20 draws; p=1: both words replaced by one of their GloVe neighbours; repeats dropped.
        candidates = load_glove(glove_file, verbose=False).nearest(["unbelievable", "movie"], 15)
        assert new == augment.sample_sentences(["unbelievable", "movie"], candidates, 20, 1.0,
                                               augment.example_rng(42, 0))
        assert 15 <= len(new) <= 20 and len(set(new)) == len(new)
        assert all(a != "unbelievable" and b != "movie" and {a, b} <= set(GLOVE_WORDS)
                   for a, b in (t.split() for t in new))


# ----------------------------------------------------------------------------------------------
# Determinism, shards, resume


def test_same_file_whatever_the_batch_size_and_shards(random_dir, glove_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "CHUNK_EXAMPLES", 3)
    source = write_sst2(tmp_path / "train.tsv", SENTENCES)
    common = ["--pretrained_bert_model", random_dir, "--glove_embs", glove_file, "--task_name", "SST-2",
              "--train_file", source, "--N", 4, "--engine", "eager"]
    outputs, summaries = [], []
    for batch_size in (1, 5, 64):
        out = tmp_path / f"bs{batch_size}.tsv"
        code, err = run(common + ["--batch_size", batch_size, "--output_file", out], capsys)
        assert code == 0, err
        outputs.append(out.read_bytes())
        summaries.append(summary_of(err))
    assert outputs[0] == outputs[1] == outputs[2] and summaries[0] == summaries[1] == summaries[2]
    found = summaries[0]
    assert len(outputs[0].splitlines()) == 1 + found["rows"] and found["examples"] == len(SENTENCES)
    assert len(SENTENCES) < found["rows"] <= len(SENTENCES) * 5 and found["N"] == 4

    merged = tmp_path / "sharded.tsv"
    for shard in (2, 0, 1):
        code, err = run(common + ["--output_file", merged, "--num_shards", 3, "--shard_id", shard], capsys)
        assert code == 0, err
    code, err = run(common + ["--output_file", merged, "--num_shards", 3, "--merge_shards"], capsys)
    assert code == 0, err
    assert merged.read_bytes() == outputs[0]
    assert summary_of(err) == found  # the shards' counts, added up
    assert sorted(p.name for p in tmp_path.glob("sharded*")) == ["sharded.tsv", "sharded.tsv.progress.json"]


def test_resume_after_an_interruption_gives_the_straight_runs_file(random_dir, glove_file, tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.setattr(runner, "CHUNK_EXAMPLES", 2)
    source = write_sst2(tmp_path / "train.tsv", SENTENCES)
    common = ["--pretrained_bert_model", random_dir, "--glove_embs", glove_file, "--task_name", "SST-2",
              "--train_file", source, "--N", 3, "--engine", "eager"]
    straight = tmp_path / "straight.tsv"
    code, err = run(common + ["--output_file", straight], capsys)
    assert code == 0, err
    counts = summary_of(err)

    # An interrupted run: two chunks recorded, then killed in the middle of writing a row.
    out = tmp_path / "resumed.tsv"
    real = runner.run_augmentation
    monkeypatch.setattr(runner, "run_augmentation", lambda *a, **k: real(*a, **k, max_chunks=2))
    assert run(common + ["--output_file", out], capsys)[0] == 0
    monkeypatch.setattr(runner, "run_augmentation", real)
    partial = outputs.partial_path(out)  # an unfinished output never has the real name
    assert not out.exists()
    with open(partial, "a", encoding="utf-8") as f:
        f.write("half a row with no newli")
    assert len(partial.read_text().splitlines()) < len(straight.read_text().splitlines())
    with pytest.raises(errors.DataError, match="interrupted data_augmentation.py run.*--resume"):
        outputs.require_complete(out)  # what a stage reading an augmented file asks (task_distill's --use_aug)
    with pytest.raises(errors.DataError, match="file not found"):  # no reader takes the partial file for it
        tasks.load_task_data(tasks.DataConfig(task_name="SST-2", train_file=str(out)), splits=("train",))

    code, err = run(common + ["--output_file", out], capsys)  # not told to resume: refused
    assert code == 2 and "--resume" in err
    code, err = run(common + ["--output_file", out, "--resume", "--N", 4], capsys)  # other settings: refused
    assert code == 2 and "N=3" in err and "N=4" in err
    code, err = run(common + ["--output_file", out, "--resume"], capsys)
    assert code == 0, err
    assert out.read_bytes() == straight.read_bytes()
    assert summary_of(err) == counts  # the counts of the chunks done before the interruption are kept
    code, err = run(common + ["--output_file", out, "--resume"], capsys)
    assert code == 0 and "already complete" in err and out.read_bytes() == straight.read_bytes()
    assert summary_of(err) == counts


def test_a_file_is_complete_under_its_own_name_and_with_its_record_complete(tmp_path):
    out = tmp_path / "train_aug.tsv"
    outputs.require_complete(out)  # missing: its reader says so
    outputs.partial_path(out).write_text("sentence\tlabel\n")
    with pytest.raises(errors.DataError, match=r"train_aug.tsv.partial is the output of an interrupted"):
        outputs.require_complete(out)
    # Written in place by an older data_augmentation.py: its record decides.
    out.write_text("sentence\tlabel\n")
    record = outputs.progress_path(out)
    record.write_text(json.dumps({"complete": False}))
    with pytest.raises(errors.DataError, match=r"train_aug.tsv.progress.json says the augmentation stopped"):
        outputs.require_complete(out)
    record.write_text(json.dumps({"complete": True}))
    outputs.require_complete(out)
    record.write_text("[]")  # not our record: the file is judged by its content
    outputs.require_complete(out)


# ----------------------------------------------------------------------------------------------
# Bad input: one line, exit code 2


@pytest.fixture
def sst2_file(tmp_path) -> Path:
    return write_sst2(tmp_path / "data" / "train.tsv", ["the movie was good"])


@pytest.mark.parametrize("change, message", [
    ({"--glove_embs": "missing.txt"}, "GloVe file not found"),
    ({"--glove_embs": "empty.txt"}, "has no word vectors"),
    ({"--glove_embs": "binary.txt"}, "not UTF-8"),
    ({"--glove_embs": "folder"}, "folder without GloVe files"),
    ({"--pretrained_bert_model": "novocab"}, "no vocab.txt"),
    ({"--N": "0"}, "--N must be at least 1"),
    ({"--p": "1.5"}, r"--p must lie in \[0, 1\]"),
    ({"--p": "-0.1"}, r"--p must lie in \[0, 1\]"),
    ({"--K": "0"}, "--K must be at least 1"),
    ({"--M": "0"}, "--K must be at least 1"),  # --M: the references' name of --K
    ({"--output_file": "exists.tsv"}, "exists; pass --resume"),
    ({"--shard_id": "3", "--num_shards": "2"}, "--shard_id must lie in"),
    ({"--train_file": "nothere.tsv"}, "file not found"),
])
def test_bad_input_is_one_line(change, message, rigged_dir, glove_file, sst2_file, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    (tmp_path / "folder").mkdir()
    (tmp_path / "novocab").mkdir()
    (tmp_path / "exists.tsv").write_text("keep me\n")
    args = {"--pretrained_bert_model": str(rigged_dir), "--glove_embs": str(glove_file), "--task_name": "SST-2",
            "--train_file": str(sst2_file), "--output_file": str(tmp_path / "out.tsv"), "--engine": "eager"}
    for flag, value in change.items():
        numeric = flag.lstrip("-") in ("N", "p", "K", "M", "shard_id", "num_shards")
        args[flag] = value if numeric else str(tmp_path / value)
    code, err = run([x for kv in args.items() for x in kv], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert "Traceback" not in err and [line for line in lines if line.startswith("error: ")] == lines[-1:], err
    assert re.search(message, lines[-1]), lines[-1]
    assert (tmp_path / "exists.tsv").read_text() == "keep me\n"


def test_the_benchmarks_reference_gives_the_pair_inputs_output(random_dir, glove_file, tmp_path):
    """benchmarks/augmentation_speed.py times a one-word-at-a-time reference: it must do the same work."""
    import importlib.util

    from tinybert.augmentation.glove import load_glove

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "augmentation_speed.py"
    spec = importlib.util.spec_from_file_location("augmentation_speed", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    config = augment.AugmentConfig(mlm_input="pair", N=3, K=5)
    tok, model, predictor = load(random_dir, config)
    glove = load_glove(glove_file, verbose=False)
    rows = tasks.task_rows(write_sst2(tmp_path / "train.tsv", SENTENCES[:4]), "SST-2", "train")
    bench.Reference(model, tok, glove, config).augment_file(rows, tmp_path / "reference.tsv")
    runner.run_augmentation(rows, augment.CandidateFinder(tok, glove, predictor, config), config,
                            tmp_path / "fast.tsv", {}, verbose=False)
    assert (tmp_path / "fast.tsv").read_text() == (tmp_path / "reference.tsv").read_text()
