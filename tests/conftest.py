"""Fixtures several test modules share, built with builders.py; the repository root on sys.path."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from builders import (GLUE_DIR, fetch_asset_or_skip, safety_workspace, save_masked_lm, save_tiny_model,
                      write_augmentation_glove, write_vocab)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the scripts, imported by their tests
# No test reaches a real address: a name or task missing locally fails at once (tinybert/download.py, which
# reads these, and huggingface_hub, imported only when a hub name is fetched); tests/test_fetch.py lifts this
# for its own server on 127.0.0.1.
os.environ["TINYBERT_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture
def vocab_dir(tmp_path: Path) -> Path:
    """A folder holding a tiny vocab.txt (about 85 tokens)."""
    folder = tmp_path / "vocab"
    write_vocab(folder)
    return folder


@pytest.fixture
def glue_dir() -> Path:
    if not GLUE_DIR.is_dir():
        pytest.skip(f"real GLUE data not found at {GLUE_DIR}")
    return GLUE_DIR


@pytest.fixture
def tiny_bert(tmp_path: Path) -> Path:
    """A randomly initialised 2-layer BERT encoder folder with the tiny vocabulary (like a converted model)."""
    from tinybert.models import modeling

    return save_tiny_model(tmp_path / "tiny_bert", modeling.BertModel, num_attention_heads=2)


@pytest.fixture(scope="module")
def random_dir(tmp_path_factory) -> Path:
    """A tiny masked-LM with random weights, for the augmentation."""
    return save_masked_lm(tmp_path_factory.mktemp("random"), seed=3)


@pytest.fixture(scope="module")
def glove_file(tmp_path_factory) -> Path:
    """The augmentation's GloVe file (builders.GLOVE_WORDS)."""
    return write_augmentation_glove(tmp_path_factory.mktemp("glove") / "glove.txt")


@pytest.fixture(scope="session")
def minilm_hf_dir() -> Path:
    """all-MiniLM-L6-v2 as Hugging Face ships it (config.json, model.safetensors, vocab.txt)."""
    return fetch_asset_or_skip("minilm")


@pytest.fixture(scope="session")
def minilm_dir(minilm_hf_dir: Path, tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 converted once per test session into this project's layout (BertModel)."""
    from tinybert.models.convert import convert_hf_checkpoint

    return convert_hf_checkpoint(minilm_hf_dir, tmp_path_factory.mktemp("minilm") / "converted")


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """The safety and writer tests' shared, read-only inputs (builders.safety_workspace), once per module."""
    return safety_workspace(tmp_path_factory.mktemp("safety"))
