"""Make the Chinese tokenization reference of tests/test_tokenization_zh.py: PaddleNLP's own ids.

Run ONCE, outside the project's environment, in a scratch virtualenv holding PaddleNLP (2.8.1 was used):

    python -m venv /tmp/pnlp-venv && /tmp/pnlp-venv/bin/pip install paddlepaddle paddlenlp==2.8.1
    /tmp/pnlp-venv/bin/python tests/data/make_tokenization_zh.py tests/data

(The tests find this venv's Python by $PADDLENLP_PYTHON; default: pnlp-venv/bin/python in the temporary folder.)

It writes
  tokenization_zh_vocab.txt       a small WordPiece vocabulary: the five special tokens, ASCII punctuation,
                                  CJK characters (some also as ##pieces, as Chinese BERT vocabularies have),
                                  full-width punctuation, symbols (￥ ℃ × € ...), digits and numbers,
                                  full-width digits and letters, English words and word pieces. Characters
                                  left out of it on purpose come out as [UNK].
  tokenization_zh_reference.json  for PaddleNLP's BertTokenizer and ErnieTokenizer built on that vocabulary,
                                  lower-casing (their default) and not: the tokens and input_ids of each
                                  single text, and input_ids/token_type_ids of sentence pairs truncated
                                  longest-first to max_length.
The project's tokenizer is never imported here; the test compares it with these stored values.
"""
import json
import sys
from pathlib import Path

import paddlenlp
from paddlenlp.transformers import BertTokenizer, ErnieTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ASCII_PUNCT = list(".,!?'\"-:;()$%&*+/<=>@[]^_`{|}~#\\")
CJK = list("我爱北京天安门今天气很好价格是元人民币中国的在有一个了不和这上们来到时大地为说生年着就那要下以会可"
           "也你对能而自之都然于学么如里去后小多心想把看起经发动用模型数据训练蒸馏推理中文英文混合测试结果速度"
           "快倍比手机电脑温湿风苹果约号与箭头摄氏空格制表换行全角半角字母数字成语")
CJK_PIECES = ["##" + c for c in "京门气好型据练果度"]
FULL_WIDTH_PUNCT = list("，。！？：；“”‘’（）【】《》、…—～％＋－＝＠＃＆＊／＼｜")
SYMBOLS = list("￥℃°×÷€£¥©®™→←↑§±√∞♥☆★")
DIGITS = [str(i) for i in range(10)] + ["10", "12", "100", "2020", "2023", "5999", "899",
                                        "##0", "##1", "##2", "##3", "##5", "##9", "##00"]
FULL_WIDTH = list("０１２３４５６７８９ＡＢＣａｂｃ")
ENGLISH = ["the", "a", "is", "and", "iphone", "##s", "bert", "ernie", "paddle", "##nlp", "nlp", "model", "gpu",
           "cpu", "ai", "un", "##believ", "##able", "app", "##le", "apple", "ok", "wi", "##fi", "5g", "##g", "kg",
           "km", "h", "c", "mb", "cafe", "naive", "tiny", "##bert", "distill", "##ation", "token", "##izer",
           "test", "##ing", "x", "e", "m", "l"]

TEXTS = [
    "我爱北京天安门。",
    "今天天气很好，价格是100元人民币！",
    "iPhone 12的价格：￥5999（约$899）～",
    "气温25℃，湿度80％，风速3×4 km/h。",
    "ERNIE和BERT都是PaddleNLP的模型；GPU比CPU快10倍？",
    "《中国的AI》——“说”与‘看’【2020年】……",
    "全角数字１２３０和半角123混合，全角字母ＡＢＣ与ａｂｃ",
    "unbelievable的app，WiFi和5G都ok！",
    "€100、£20、¥30、©2023、®、™和→箭头←↑",
    "  空格\t制表\n换行\u3000全角空格  ",
    "Café naïve 和 TinyBERT 的 distillation 测试",
    "温度°C ±3 √2 ∞ ♥☆★ §5 ÷号",
    "数据：１０kg／２３ml＝？＆＠＃＊",
    # No special tokens typed in a text ("[MASK]"): PaddleNLP 2.8.1's BertTokenizer keeps [MASK] and [CLS]
    # whole but splits [UNK] into [ UNK ], its ErnieTokenizer splits all three; this project keeps all five.
    "tokenizer测试testing123abc中文English混合",
    "supercalifragilisticexpialidocious" * 3 + "很长的词",
]
PAIRS = [
    ("今天天气很好，我们去北京天安门。", "天气好吗？", 12),
    ("iPhone 12的价格是￥5999", "苹果手机多少钱？约$899～", 16),
    ("训练和推理速度：快10倍", "TinyBERT蒸馏模型比BERT小", 14),
    ("短", "一个很长的第二句话，里面有中文、English、数字2020和符号℃×€。", 20),
]


def vocabulary() -> list[str]:
    tokens = []
    for token in SPECIALS + ASCII_PUNCT + CJK + CJK_PIECES + FULL_WIDTH_PUNCT + SYMBOLS + DIGITS + FULL_WIDTH + ENGLISH:
        if token not in tokens:
            tokens.append(token)
    return tokens


def reference(tokenizer) -> dict:
    singles = [{"text": text, "tokens": tokenizer.tokenize(text), "input_ids": tokenizer(text)["input_ids"]}
               for text in TEXTS]
    pairs = []
    for a, b, max_length in PAIRS:
        enc = tokenizer(a, text_pair=b, max_length=max_length, truncation=True)
        pairs.append({"text_a": a, "text_b": b, "max_length": max_length, "input_ids": enc["input_ids"],
                      "token_type_ids": enc["token_type_ids"]})
    return {"singles": singles, "pairs": pairs}


def main(out_dir: Path) -> None:
    vocab_path = out_dir / "tokenization_zh_vocab.txt"
    vocab_path.write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")
    cases = {}
    for name, cls in (("bert", BertTokenizer), ("ernie", ErnieTokenizer)):
        for lower in (True, False):
            cases[f"{name}_{'uncased' if lower else 'cased'}"] = reference(cls(str(vocab_path), do_lower_case=lower))
    result = {"produced_by": f"paddlenlp {paddlenlp.__version__} BertTokenizer and ErnieTokenizer (slow, "
                             f"Python), tokenization_zh_vocab.txt; tests/data/make_tokenization_zh.py",
              "cases": cases}
    (out_dir / "tokenization_zh_reference.json").write_text(json.dumps(result, ensure_ascii=False, indent=None),
                                                             encoding="utf-8")
    print(f"wrote {vocab_path} ({len(vocabulary())} tokens) and tokenization_zh_reference.json")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
