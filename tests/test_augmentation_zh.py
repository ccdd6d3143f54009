"""Chinese augmentation (--language zh|auto): jieba's words, one-character words through the masked-LM,
longer words through word vectors in word2vec's text format, Chinese stop words, output without spaces.

The masked-LM is tiny, over a vocabulary of single CJK characters; its head is rigged as in
test_augmentation.py (LayerNorm scale zero: the logits are the decoder bias whatever the input), so its
candidates are known in advance: RANKING, best first, special tokens and the masked word left out."""
from __future__ import annotations

import json
import re
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from tinybert.augmentation import augment
import data_augmentation as da
from builders import run_augmentation as run, save_masked_lm, write_vectors

RANKING = ["[UNK]", "棒", "妙", "美", "坏"]
# Single CJK characters, the rigged head's tokens, and two Latin words (one word piece each).
VOCAB = list("他不喜欢这部电影票价元我们今天看了一很好的真片子爱") + RANKING[1:] + ["hello", "world"]
# Three clusters of word vectors: each word's nearest neighbours are the other two of its cluster.
CLUSTERS = [["电影", "影片", "片子"], ["喜欢", "喜爱", "爱好"], ["票价", "价格", "房价"]]
EXTRA_WORDS = ["赞", "，", "的"]


@pytest.fixture(scope="module", autouse=True)
def private_jieba_cache(tmp_path_factory):
    """jieba's cache in a folder of the tests' own, not ~/.cache; a fresh segmenter for this module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
        augment.chinese_segmenter.cache_clear()
        yield
    augment.chinese_segmenter.cache_clear()


@pytest.fixture(scope="module")
def zh_model(tmp_path_factory) -> Path:
    return save_masked_lm(tmp_path_factory.mktemp("zh_mlm"), ranking=RANKING, words=VOCAB)


def write_word2vec(path: Path, header: bool = True, seed: int = 0) -> Path:
    """A word2vec-format text file ("count dim" first) of Chinese words, trailing spaces as sgns files have."""
    rng = np.random.default_rng(seed)
    rows = []
    for cluster in CLUSTERS:
        base = rng.normal(size=8)
        rows += [(w, base + 0.05 * rng.normal(size=8)) for w in cluster]
    rows += [(w, rng.normal(size=8)) for w in EXTRA_WORDS]
    return write_vectors(path, [w for w, _ in rows], np.array([v for _, v in rows]), header, trailing_space=True)


@pytest.fixture(scope="module")
def zh_vectors(tmp_path_factory) -> Path:
    return write_word2vec(tmp_path_factory.mktemp("zh_vectors") / "sgns.tiny.txt")


def neighbours(word: str) -> set[str]:
    return next(set(c) - {word} for c in CLUSTERS if word in c)


def zh_finder(model_dir: Path, vectors: Path, **config) -> augment.CandidateFinder:
    from tinybert.models import modeling
    from tinybert.augmentation.glove import load_glove
    from tinybert.data.tokenization import BertTokenizer

    config = augment.AugmentConfig(language="zh", **config)
    tok = BertTokenizer.from_pretrained(model_dir)
    model = modeling.BertForMaskedLM.from_pretrained(model_dir)
    mlm = augment.MaskedLMPredictor(model, tok, config.K, config.batch_size, "eager")
    return augment.CandidateFinder(tok, load_glove(vectors, verbose=False), mlm, config)


def write_rows(path: Path, texts: list[str]) -> Path:
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(texts)), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# Words: jieba, quiet and deterministic


def test_jieba_segments_a_chinese_sentence_quietly_and_the_same_way_each_time(tmp_path, capfd):
    segmenter = augment.ChineseSegmenter(cache_dir=tmp_path)  # builds jieba's prefix dictionary
    assert capfd.readouterr().err == ""  # no "Building prefix dict ..." on stderr
    assert (tmp_path / "jieba-0.42.1.cache").is_file()  # its cache is ours, not /tmp/jieba.cache
    text = "我们今天去看了一部很好的电影，票价 35 元。"
    words = ["我们", "今天", "去", "看", "了", "一部", "很", "好", "的", "电影", "，", "票价", " ", "35", " ",
             "元", "。"]
    assert segmenter.words(text) == words
    again = augment.ChineseSegmenter(cache_dir=tmp_path)  # from the cache: the same words
    assert again.words(text) == words and augment.chinese_segmenter().words(text) == words
    assert capfd.readouterr().err == ""
    # Special tokens stay whole; a run of spaces is one " " word, none at either end.
    assert segmenter.words("  他没有来 [MASK]了   ") == ["他", "没有", "来", " ", "[MASK]", "了"]
    assert segmenter.words("我喜欢 hello  world") == ["我", "喜欢", " ", "hello", " ", "world"]


def test_join_puts_no_space_between_chinese_words_and_keeps_latin_words_apart():
    assert augment.join_words(["他", "看", "了", "电影", "，", "35", "元", "！"], "zh") == "他看了电影，35元！"
    assert augment.join_words(["我", "喜欢", " ", "hello", " ", "world"], "zh") == "我喜欢 hello world"
    assert augment.join_words(["我", "用", "BERT", "模型"], "zh") == "我用BERT模型"
    assert augment.join_words(["我", "use", "BERT", "模型"], "zh") == "我use BERT模型"  # never "useBERT"
    assert augment.join_words(["the", "movie", "."], "en") == "the movie ."  # English: as before
    # Unchanged words give the text back (runs of spaces made one), whatever jieba cut: full-width digits
    # and letters, accented Latin letters, dictionary words holding Latin letters.
    segmenter = augment.chinese_segmenter()
    for text in ["ＮＬＰ模型３５元", "café很好", "买TT恤", "卡拉OK2房", "版本v2.0发布", "C++和Python3",
                 "a[MASK]b", "他说：“好！”", "我喜欢 hello world"]:
        assert augment.join_words(segmenter.words(text), "zh") == text, segmenter.words(text)
    assert augment.join_words(segmenter.words("  我  喜欢\t电影 "), "zh") == "我 喜欢 电影"
    assert segmenter.words("ＮＬＰ３５") == ["ＮＬＰ３５"] and segmenter.words("café") == ["café"]


def test_which_chinese_words_are_replaceable():
    assert all(augment.replaceable(w, "zh") for w in ["电影", "好", "票价", "喜欢", "movie", "BERT", "什么"])
    # Chinese stop words, English stop words, digits, full-width punctuation, mixed or other tokens: never.
    assert not any(augment.replaceable(w, "zh") for w in ["的", "了", "和", "是", "在", "就", "都", "而", "及",
                                                         "与", "着", "或", "一个", "没有", "我们", "你们",
                                                         "他们", "这", "那", "不", "the", "not", "35", "３５",
                                                         "，", "。", "！", "电影2", "café", " ", ""])
    assert {"的", "了", "一个", "没有", "我们"} <= augment.CHINESE_STOP_WORDS
    assert all(augment.is_chinese(w) for w in augment.CHINESE_STOP_WORDS)
    # English text keeps the references' rule: Chinese words are never replaced there.
    assert not augment.replaceable("电影") and augment.replaceable("movie")


def test_language_detection():
    assert augment.detect_language(["我们今天去看了一部很好的电影，票价 35 元。"]) == "zh"
    assert augment.detect_language(["我用TensorFlow和PyTorch训练模型"]) == "zh"  # 8 characters, 2 words
    assert augment.detect_language(["the movie was good", "I visited 北京 yesterday"]) == "en"
    assert augment.detect_language(["123 ，。！", ""]) == augment.detect_language([]) == "en"


# ----------------------------------------------------------------------------------------------
# Candidates: one character -> masked-LM, longer words -> word vectors


def test_one_character_words_go_to_the_masked_lm_and_longer_words_to_word_vectors(zh_model, zh_vectors):
    finder = zh_finder(zh_model, zh_vectors, K=2)
    # A vocabulary of single CJK characters: a one-character word is one word piece.
    assert finder.tokenizer.tokenize("好") == ["好"] and finder.tokenizer.tokenize("电影") == ["电", "影"]
    words = finder.words("他看了很好的电影，票价35元！真赞")
    assert words == ["他", "看", "了", "很", "好", "的", "电影", "，", "票价", "35", "元", "！", "真赞"]
    found = dict(zip(words, finder([words])[0]))
    # The rigged masked-LM's best two, [UNK] and the word itself left out.
    assert found["看"] == ("棒", "妙") and found["好"] == ("棒", "妙") and found["元"] == ("棒", "妙")
    assert set(found["电影"]) == neighbours("电影") and set(found["票价"]) == neighbours("票价")
    # Stop words, digits and full-width punctuation have none; a word without a vector has none.
    assert [found[w] for w in ["他", "了", "很", "的", "，", "35", "！", "真赞"]] == [()] * 8
    # The masked-LM sees the sentence's characters, one of them masked.
    seen = []
    real = finder.mlm.top_k
    finder.mlm.top_k = lambda ids, types, mask, word_ids: (seen.append((ids, mask)),
                                                           real(ids, types, mask, word_ids))[1]
    finder([["电影", "很", "好"]])
    (ids,), (mask,) = seen[0]
    tok = finder.tokenizer
    assert ids == tok.convert_tokens_to_ids(["[CLS]", "电", "影", "很", "[MASK]", "[SEP]"]) and mask == 4


def test_a_one_character_word_missing_from_the_vocabulary_gets_word_vectors(zh_model, zh_vectors):
    finder = zh_finder(zh_model, zh_vectors, K=2)
    assert finder.tokenizer.tokenize("赞") == ["[UNK]"]
    assert len(finder([["赞"]])[0][0]) == 2  # not a word piece of the vocabulary: its nearest vectors


# ----------------------------------------------------------------------------------------------
# The command line


def test_chinese_rows_keep_stop_words_digits_and_punctuation_and_get_no_spaces(zh_model, zh_vectors, tmp_path,
                                                                               capsys):
    texts = ["他不喜欢这部电影，票价35元！", "我喜欢 hello world"]
    source = write_rows(tmp_path / "train.tsv", texts)
    out = tmp_path / "aug.tsv"
    code, err = run(["--pretrained_bert_model", zh_model, "--word_vectors", zh_vectors, "--train_file", source,
                     "--output_file", out, "--language", "zh", "--N", 300, "--p", 1.0, "--K", 2,
                     "--engine", "eager"], capsys)
    assert code == 0, err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "text\tlabel" and lines[1] == f"{texts[0]}\t0"
    second = lines.index(f"{texts[1]}\t1")
    first_new = [line.split("\t")[0] for line in lines[2:second]]
    # p=1: every word with candidates replaced: 喜欢, 电影, 票价 by their vectors' neighbours, 元 by the
    # masked-LM; 他 不 (stop words), 这部 (no vector), "，" "35" "！" as they were. 2^4 samples, no spaces.
    options = [["他不"], sorted(neighbours("喜欢")), ["这部"], sorted(neighbours("电影")), ["，"],
               sorted(neighbours("票价")), ["35"], ["棒", "妙"], ["！"]]
    assert sorted(first_new) == sorted("".join(p) for p in product(*options))
    assert all(" " not in text for text in first_new)
    # Mixed text: the Latin words (one word piece: masked-LM) keep the spaces they had, none is added.
    second_new = [line.split("\t")[0] for line in lines[second + 1:]]
    pattern = re.compile(f"我({'|'.join(neighbours('喜欢'))}) (棒|妙) (棒|妙)")
    assert len(second_new) == 8 and all(pattern.fullmatch(t) for t in second_new), second_new
    assert {line.split("\t")[1] for line in lines[2:second]} == {"0"}


def test_language_auto_detects_chinese_and_english(zh_model, zh_vectors, tmp_path, capsys):
    source = write_rows(tmp_path / "train.tsv", ["他看了很好的电影", "票价35元", "这部电影很好看"])
    common = ["--pretrained_bert_model", zh_model, "--glove_embs", zh_vectors, "--train_file", source,
              "--N", 5, "--engine", "eager"]
    outputs = {}
    for language in ("auto", "zh", "en"):
        out = tmp_path / f"{language}.tsv"
        flag = [] if language == "auto" else ["--language", language]
        code, err = run(common + flag + ["--output_file", out], capsys)
        assert code == 0, err
        outputs[language] = out.read_bytes()
        if language == "auto":
            assert "--language auto: zh (Chinese)" in err
    assert outputs["auto"] == outputs["zh"]
    assert len(outputs["zh"].decode().splitlines()) > 4  # new samples
    # English rules on Chinese text: BERT cuts it into characters, none of which is a-z: nothing changes.
    assert outputs["en"].decode().splitlines()[1:] == ["他看了很好的电影\t0", "票价35元\t1", "这部电影很好看\t0"]
    settings = json.loads((tmp_path / "zh.tsv.progress.json").read_text(encoding="utf-8"))["settings"]
    assert settings["language"] == "zh" and settings["segmenter"] == "jieba 0.42.1, accurate mode with HMM"


def test_an_english_run_is_unchanged_by_language_auto(tmp_path, capsys):
    words = ["movie", "film", "picture", "good", "great", "fine"]
    vectors = tmp_path / "glove.txt"
    vectors.write_text("".join(w + " " + " ".join(f"{x:.4f}" for x in np.random.default_rng(i).normal(size=4))
                               + "\n" for i, w in enumerate(words)), encoding="utf-8")
    source = write_rows(tmp_path / "train.tsv", ["the movie was good", "a fine film"])
    common = ["--mlm", "none", "--glove_embs", vectors, "--train_file", source, "--N", 6, "--p", 1.0]
    code, auto_err = run(common + ["--output_file", tmp_path / "auto.tsv"], capsys)
    assert code == 0 and "--language" not in auto_err, auto_err
    code, err = run(common + ["--output_file", tmp_path / "en.tsv", "--language", "en"], capsys)
    assert code == 0, err
    def said(text: str) -> list[str]:  # stderr without the progress bar
        return [line for line in text.replace("\r", "\n").splitlines() if line and "ex/s" not in line]

    assert said(auto_err.replace("auto.tsv", "en.tsv")) == said(err)  # an English run says what it said
    assert (tmp_path / "auto.tsv").read_bytes() == (tmp_path / "en.tsv").read_bytes()
    rows = (tmp_path / "en.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[1] == "the movie was good\t0" and all(len(r.split("\t")[0].split(" ")) in (3, 4) for r in rows[1:])
    # English runs record no language: a run started before --language existed still resumes.
    settings = json.loads((tmp_path / "en.tsv.progress.json").read_text(encoding="utf-8"))["settings"]
    assert "language" not in settings


def test_word_vectors_is_the_glove_embs_flag():
    parser = da.build_parser()
    assert parser.parse_args(["--word_vectors", "v.txt"]).glove_embs == "v.txt"
    assert parser.parse_args(["--glove_embs", "v.txt"]).glove_embs == "v.txt"
    assert parser.parse_args([]).language == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["--language", "fr"])
