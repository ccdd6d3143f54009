"""Chinese text: our tokenizer gives PaddleNLP's BertTokenizer and ErnieTokenizer ids on mixed Chinese,
English, digits, full-width punctuation and symbols.

Reference: tests/data/tokenization_zh_reference.json, made once by tests/data/make_tokenization_zh.py with
PaddleNLP 2.8.1's (slow, pure-Python) BertTokenizer and ErnieTokenizer, lower-casing and not, on the test
vocabulary tests/data/tokenization_zh_vocab.txt (CJK characters and ##pieces, full-width punctuation,
symbols, digits and numbers, full-width digits and letters, English words and word pieces), which the same
script wrote. No PaddleNLP is needed here: only the stored ids.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from builders import DATA
from tinybert.data.tokenization import BertTokenizer, read_vocab

VOCAB = DATA / "tokenization_zh_vocab.txt"
REFERENCE = json.loads((DATA / "tokenization_zh_reference.json").read_text(encoding="utf-8"))


@pytest.fixture
def zh_folder(tmp_path: Path) -> Path:
    """A model folder with only the Chinese test vocabulary (as PaddleNLP's cache holds one)."""
    folder = tmp_path / "zh"
    folder.mkdir()
    shutil.copy(VOCAB, folder / "vocab.txt")
    return folder


@pytest.mark.parametrize("case", sorted(REFERENCE["cases"]))
def test_ids_equal_paddlenlp_bert_and_ernie(case):
    ref = REFERENCE["cases"][case]
    tok = BertTokenizer(read_vocab(VOCAB), do_lower_case=case.endswith("_uncased"))
    for single in ref["singles"]:
        assert tok.tokenize(single["text"]) == single["tokens"], single["text"]
        assert tok([single["text"]], max_seq_length=512)["input_ids"][0] == single["input_ids"], single["text"]
    for pair in ref["pairs"]:
        enc = tok([pair["text_a"]], [pair["text_b"]], max_seq_length=pair["max_length"])
        assert enc["input_ids"][0] == pair["input_ids"], pair
        assert enc["token_type_ids"][0] == pair["token_type_ids"], pair


def test_the_reference_covers_what_it_should():
    cases = REFERENCE["cases"]
    assert set(cases) == {"bert_uncased", "bert_cased", "ernie_uncased", "ernie_cased"}
    # On this text PaddleNLP's two tokenizers agree: one tokenizer serves BERT and ERNIE folders.
    assert cases["bert_uncased"] == cases["ernie_uncased"] and cases["bert_cased"] == cases["ernie_cased"]
    tokens = {t for s in cases["bert_uncased"]["singles"] for t in s["tokens"]}
    assert {"￥", "℃", "×", "€", "，", "。", "（", "【", "100", "##5", "iphone", "##believ", "[UNK]"} <= tokens
    texts = "".join(s["text"] for s in cases["bert_uncased"]["singles"])
    assert "\u3000" in texts and "１２３" in texts and "ＡＢＣ" in texts


def test_folder_without_config_splits_symbols_like_paddlenlp(zh_folder):
    tok = BertTokenizer.from_pretrained(zh_folder)
    assert tok.split_symbols and tok.tokenize("￥5999，25℃") == ["￥", "5999", "，", "2", "##5", "℃"]
    assert tok.basic_tokenize("北京2020年€100") == ["北", "京", "2020", "年", "€", "100"]
    tok.save_pretrained(zh_folder)  # the choice is written down and read back
    assert json.loads((zh_folder / "tokenizer_config.json").read_text())["split_symbols"] is True
    assert BertTokenizer.from_pretrained(zh_folder).split_symbols


def test_hugging_face_folders_keep_berts_rule(zh_folder):
    """Google's BERT and Hugging Face's BertTokenizer split on punctuation only: "€100" is one word."""
    (zh_folder / "tokenizer.json").write_text("{}")  # the `tokenizers` file PaddleNLP's slow tokenizers never write
    hf = BertTokenizer.from_pretrained(zh_folder)
    assert not hf.split_symbols and hf.basic_tokenize("北京€100") == ["北", "京", "€100"]
    (zh_folder / "tokenizer.json").unlink()
    (zh_folder / "config.json").write_text(json.dumps({"model_type": "bert", "transformers_version": "4.8.2"}))
    assert not BertTokenizer.from_pretrained(zh_folder).split_symbols
    (zh_folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "split_symbols": True}))
    assert BertTokenizer.from_pretrained(zh_folder).split_symbols  # a written choice wins
    hf.save_pretrained(zh_folder / "saved")
    assert not BertTokenizer.from_pretrained(zh_folder / "saved").split_symbols
