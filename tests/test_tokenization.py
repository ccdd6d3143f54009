"""tokenization.py: BERT's WordPiece pipeline, pair layout, truncation, files, and parity with BERT's
reference tokenizer on the real MiniLM (bert-base-uncased) vocabulary."""
from __future__ import annotations

from tinybert import errors
import json
import random

import pytest


from builders import DATA, write_vocab
from tinybert.data.tokenization import BertTokenizer, truncate_longest_first



@pytest.fixture
def tok(vocab_dir) -> BertTokenizer:
    return BertTokenizer.from_pretrained(vocab_dir)


def test_wordpiece_lowercase_accents_punctuation(tok):
    assert tok.tokenize("Unbelievable!") == ["un", "##believ", "##able", "!"]
    assert tok.tokenize("The CAFÉ was naïve.") == ["the", "cafe", "was", "naive", "."]
    assert tok.tokenize("dogs walked") == ["dog", "##s", "walk", "##ed"]
    assert tok.tokenize("xylophone") == ["[UNK]"]
    assert tok.basic_tokenize("Café, \"naïve\"-ish [MASK]!") == ["cafe", ",", '"', "naive", '"', "-", "ish",
                                                                  "[MASK]", "!"]
    # A literal [MASK] (augmentation writes it) stays one token.
    assert tok.tokenize("the [MASK] was good") == ["the", "[MASK]", "was", "good"]


def test_special_ids_and_conversions(tok):
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
    ids = tok.convert_tokens_to_ids(["the", "movie", "nonexistent"])
    assert ids[2] == tok.unk_token_id and tok.convert_ids_to_tokens(ids[:2]) == ["the", "movie"]
    assert tok.vocab_size == len(tok.vocab) == len(tok)


def test_single_and_pair_layout_without_padding(tok):
    single = tok(["the movie", "good"], max_seq_length=16)
    the, movie, good = tok.convert_tokens_to_ids(["the", "movie", "good"])
    assert single["input_ids"] == [[2, the, movie, 3], [2, good, 3]]  # rows keep their own length
    assert single["token_type_ids"] == [[0, 0, 0, 0], [0, 0, 0]]
    pair = tok(["the movie"], ["good"], max_seq_length=16)
    assert pair["input_ids"] == [[2, the, movie, 3, good, 3]]
    assert pair["token_type_ids"] == [[0, 0, 0, 0, 1, 1]]


def _iterative_longest_first(la, lb, budget):
    """The definition: remove one token at a time from the longer sequence (the second on ties)."""
    while la + lb > budget:
        if la > lb:
            la -= 1
        else:
            lb -= 1
    return la, lb


def test_truncation_is_longest_first():
    rng = random.Random(0)
    for _ in range(2000):
        la, lb, budget = rng.randint(0, 40), rng.randint(0, 40), rng.randint(1, 50)
        assert truncate_longest_first(la, lb, budget) == _iterative_longest_first(la, lb, budget), (la, lb, budget)


def test_truncation_in_encoding(tok):
    a = " ".join(["good"] * 10)
    b = " ".join(["bad"] * 3)
    enc = tok([a], [b], max_seq_length=10)  # budget 7: a cut to 4, b keeps 3
    assert len(enc["input_ids"][0]) == 10
    assert enc["token_type_ids"][0] == [0] * 6 + [1] * 4
    single = tok([a], max_seq_length=5)
    assert len(single["input_ids"][0]) == 5 and single["input_ids"][0][-1] == tok.sep_token_id
    with pytest.raises(errors.UserError):
        tok([a], [b], max_seq_length=3)


def test_lower_case_from_config_or_flag(tmp_path):
    folder = tmp_path / "cased"
    write_vocab(folder, ["Movie", "movie", "caf", "##é"])
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    cased = BertTokenizer.from_pretrained(folder)
    assert cased.tokenize("Movie movie café") == ["Movie", "movie", "caf", "##é"]  # no accent stripping
    assert BertTokenizer.from_pretrained(folder, do_lower_case=True).tokenize("Movie") == ["movie"]


def test_missing_vocab_is_a_user_error(tmp_path):
    with pytest.raises(errors.UserError, match="vocab.txt"):
        BertTokenizer.from_pretrained(tmp_path)


def test_save_pretrained_round_trip(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["do_lower_case"] is True
    again = BertTokenizer.from_pretrained(tmp_path)
    assert again.vocab == tok.vocab
    text = ["The café was unbelievable!"]
    assert again(text) == tok(text)


def test_batched_equals_one_by_one(tok):
    texts = ["the movie was good", "a very bad film, really!", "", "naïve cafe"]
    batch = tok(texts, texts[::-1], max_seq_length=12)
    for i, (a, b) in enumerate(zip(texts, texts[::-1])):
        one = tok([a], [b], max_seq_length=12)
        assert one["input_ids"][0] == batch["input_ids"][i]


def test_same_ids_as_reference_wordpiece_on_minilm_vocab(minilm_hf_dir):
    """Ids equal those of BERT's reference tokenizer on the all-MiniLM-L6-v2 (bert-base-uncased) vocab.

    Reference: tests/data/minilm_tokenizer_reference.json, produced once by tests/data/make_minilm_reference.py
    with transformers' slow, pure-Python BertTokenizer (accented, punctuation-heavy, mixed-script and
    whitespace-odd text; pairs truncated longest-first).
    """
    ref = json.loads((DATA / "minilm_tokenizer_reference.json").read_text(encoding="utf-8"))
    tok = BertTokenizer.from_pretrained(minilm_hf_dir)
    assert tok.do_lower_case is True  # from the folder's tokenizer_config.json
    for case in ref["singles"]:
        assert tok.tokenize(case["text"]) == case["tokens"], case["text"]
        assert tok([case["text"]], max_seq_length=512)["input_ids"][0] == case["input_ids"], case["text"]
    for case in ref["pairs"]:
        enc = tok([case["text_a"]], [case["text_b"]], max_seq_length=case["max_length"])
        assert enc["input_ids"][0] == case["input_ids"]
        assert enc["token_type_ids"][0] == case["token_type_ids"]
