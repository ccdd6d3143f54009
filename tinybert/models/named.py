"""PaddleNLP's built-in model names and where PaddleNLP downloads their files from, and the download itself.

A name such as bert-base-uncased or tinybert-6l-768d-v2 that is neither a local folder nor in PaddleNLP's
cache is fetched from the addresses PaddleNLP uses for it, into PaddleNLP's own cache layout, so the two
share one copy:

    $PPNLP_HOME/models/NAME/model_state.pdparams    the weights (PaddleNLP 2.8 renames the download so)
    $PPNLP_HOME/models/NAME/<vocabulary's name>     e.g. bert-base-uncased-vocab.txt, as downloaded

The config is PaddleNLP's own table too (configs.BUILTIN_CONFIGS): PaddleNLP downloads none for these names.
MODEL_FILES is PaddleNLP's table (PaddleNLP's model and tokenizer classes' pretrained_resource_files_map),
copied as it stands, http included: download.address() fetches bj.bcebos.com over https.
tests/test_fetch.py compares it with PaddleNLP's classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinybert import download
from tinybert.models import checkpoints

PADDLENLP_VERSION = "2.8.1"  # MODEL_FILES is this version's table
WEIGHTS_NAME = checkpoints.WEIGHTS_PDPARAMS  # PaddleNLP 2.8 saves every downloaded .pdparams under this name


@dataclass(frozen=True)
class ModelFiles:
    weights: str  # address of NAME.pdparams
    vocab: str    # address of the vocabulary


MODEL_FILES: dict[str, ModelFiles] = {
    "bert-base-uncased": ModelFiles(
        "https://bj.bcebos.com/paddlenlp/models/transformers/bert-base-uncased.pdparams",
        "https://bj.bcebos.com/paddle-hapi/models/bert/bert-base-uncased-vocab.txt"),
    "bert-base-cased": ModelFiles(
        "http://bj.bcebos.com/paddlenlp/models/transformers/bert/bert-base-cased.pdparams",
        "https://bj.bcebos.com/paddle-hapi/models/bert/bert-base-cased-vocab.txt"),
    "bert-large-uncased": ModelFiles(
        "https://bj.bcebos.com/paddlenlp/models/transformers/bert-large-uncased.pdparams",
        "https://bj.bcebos.com/paddle-hapi/models/bert/bert-large-uncased-vocab.txt"),
    "bert-base-chinese": ModelFiles(
        "http://bj.bcebos.com/paddlenlp/models/transformers/bert/bert-base-chinese.pdparams",
        "https://bj.bcebos.com/paddle-hapi/models/bert/bert-base-chinese-vocab.txt"),
    "tinybert-4l-312d": ModelFiles(
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-4l-312d.pdparams",
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-4l-312d-vocab.txt"),
    "tinybert-4l-312d-v2": ModelFiles(
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-4l-312d-v2.pdparams",
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-4l-312d-v2-vocab.txt"),
    "tinybert-4l-312d-zh": ModelFiles(
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-4l-312d-zh.pdparams",
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-4l-312d-zh-vocab.txt"),
    "tinybert-6l-768d": ModelFiles(
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-6l-768d.pdparams",
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-6l-768d-vocab.txt"),
    "tinybert-6l-768d-v2": ModelFiles(
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-6l-768d-v2.pdparams",
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-6l-768d-v2-vocab.txt"),
    "tinybert-6l-768d-zh": ModelFiles(
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-6l-768d-zh.pdparams",
        "http://bj.bcebos.com/paddlenlp/models/transformers/tinybert/tinybert-6l-768d-zh-vocab.txt"),
    "ernie-1.0": ModelFiles(
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie/ernie_v1_chn_base.pdparams",
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie/vocab.txt"),
    "ernie-3.0-base-zh": ModelFiles(
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie_3.0/ernie_3.0_base_zh.pdparams",
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie_3.0/ernie_3.0_base_zh_vocab.txt"),
    "ernie-3.0-medium-zh": ModelFiles(
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie_3.0/ernie_3.0_medium_zh.pdparams",
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie_3.0/ernie_3.0_medium_zh_vocab.txt"),
    "ernie-3.0-mini-zh": ModelFiles(
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie_3.0/ernie_3.0_mini_zh.pdparams",
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie_3.0/ernie_3.0_mini_zh_vocab.txt"),
    "ernie-3.0-micro-zh": ModelFiles(
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie_3.0/ernie_3.0_micro_zh.pdparams",
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie_3.0/ernie_3.0_micro_zh_vocab.txt"),
    "ernie-3.0-nano-zh": ModelFiles(
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie_3.0/ernie_3.0_nano_zh.pdparams",
        "https://bj.bcebos.com/paddlenlp/models/transformers/ernie_3.0/ernie_3.0_nano_zh_vocab.txt"),
}


def cache_folder(name: str) -> Path:
    """PaddleNLP's cache folder of a name: $PPNLP_HOME/models/NAME."""
    return download.paddlenlp_home() / "models" / name


def has_vocab(folder: Path) -> bool:
    return any(folder.glob("*vocab.txt"))


def is_complete(folder: Path) -> bool:
    """Weights and a vocabulary are there (any name PaddleNLP has used for either)."""
    return folder.is_dir() and checkpoints.find_weights(folder) is not None and has_vocab(folder)


def fetch_named(name: str) -> Path:
    """The cache folder of a PaddleNLP name, downloading what it lacks (under a lock: one process of a
    distributed launch downloads, the others wait and find the files there)."""
    folder = cache_folder(name)
    if is_complete(folder):
        return folder
    files = MODEL_FILES[name]
    with download.entry_lock(folder):
        if checkpoints.find_weights(folder) is None:
            download.fetch(files.weights, folder / WEIGHTS_NAME, what=f"the weights of {name}")
        if not has_vocab(folder):
            vocab_name = files.vocab.rsplit("/", 1)[-1]
            download.fetch(files.vocab, folder / vocab_name, what=f"the vocabulary of {name}")
    return folder
