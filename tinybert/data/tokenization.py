"""BERT's WordPiece tokenizer on the `tokenizers` library (Rust, batched).

Pipeline, as in BERT: clean text and split CJK characters, lower-case and strip accents (uncased
vocabularies), split on whitespace and punctuation (and symbols, as PaddleNLP's BertTokenizer and
ErnieTokenizer do: see BertTokenizer), then greedy longest-match WordPiece against vocab.txt. Pairs become [CLS] a [SEP] b [SEP] with token_type_ids 0...0 1...1; no padding here
(the collate function pads each batch to its longest row).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer, Sequence, Split

from tinybert.models import checkpoints
from tinybert import errors


VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")
# PaddleNLP's _is_symbol: Unicode category S*, and U+00AD U+00B2 U+00BA U+3007 U+00B5 U+00D8 U+014B U+01B1.
_SYMBOLS = "[\\p{S}\u00ad\u00b2\u00ba\u3007\u00b5\u00d8\u014b\u01b1]"


def read_vocab(path: Path) -> dict[str, int]:
    """One token per line; the line number (0-based) is the id. A broken file is one DataError naming it;
    so is a token on two lines (one of its ids would never be produced, and WordPiece's lookup of the
    other can turn the word into [UNK])."""
    vocab: dict[str, int] = {}
    try:
        with open(path, "rb") as f:
            for i, raw in enumerate(f):
                try:
                    token = raw.decode("utf-8").rstrip("\n").rstrip("\r")
                except UnicodeDecodeError:
                    raise errors.DataError(path, i + 1, "not UTF-8 text: a vocab.txt holds one token per "
                                                        "line") from None
                if token in vocab:
                    raise errors.DataError(path, i + 1, f"token {token!r} is already on line {vocab[token] + 1}: "
                                                        "each token must appear once") from None
                vocab[token] = i
    except OSError as e:
        raise errors.DataError(path, None, f"cannot read the vocabulary: {e.strerror}") from None
    if not vocab:
        raise errors.DataError(path, None, "empty vocabulary")
    return vocab


def find_vocab(folder: Path) -> Path | None:
    """The folder's vocabulary: vocab.txt, else PaddleNLP cache's one NAME-vocab.txt (or an older
    ernie_3.0_..._vocab.txt); None when there is none."""
    folder = Path(folder)
    if (folder / VOCAB_FILE).is_file():
        return folder / VOCAB_FILE
    found = sorted(folder.glob("*vocab.txt"))
    return found[0] if len(found) == 1 else None


def check_vocab_fits(vocab_path: Path, tokens: int, embeddings: int, whose: str = "the model's") -> None:
    """A vocabulary longer than the model's word embeddings gives ids the embedding lookup fails on
    (inside Paddle, at the first such token): refused when model and vocabulary meet."""
    if tokens > embeddings:
        raise errors.DataError(vocab_path, None, f"{tokens} tokens, but {whose} word embeddings hold {embeddings} "
                                                 f"(vocab_size): tokens {embeddings} to {tokens - 1} have no "
                                                 "embedding; use the vocab.txt the model was trained with")


def check_folder_vocab(folder: Path, embeddings: int, whose: str = "the model's") -> None:
    """The folder's own vocabulary (if it has one) against `embeddings` rows."""
    path = find_vocab(folder)
    if path is not None:
        check_vocab_fits(path, len(read_vocab(path)), embeddings, whose)


# Characters of a text's head per token kept. English runs about 5 characters per WordPiece token and
# Chinese about 1; a head that holds too few tokens grows (BertTokenizer._encode_heads), so this only
# sets how often that happens.
HEAD_CHARS_PER_TOKEN = 10
# A cut between two CJK ideographs is a word boundary: the normaliser puts spaces around each.
_CJK = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]")


def _head(text: str, size: int) -> str:
    """The text, or for a text longer than `size` characters its longest head of at most `size`
    characters that ends at a word boundary: after a space, tab or line break, or between two CJK
    ideographs. Only there no word of the head can join a word after it ("" when there is none)."""
    if len(text) <= size:
        return text
    cut = max(text.rfind(" ", 0, size), text.rfind("\t", 0, size), text.rfind("\n", 0, size)) + 1
    for p in range(size, max(cut, size - 256), -1):  # CJK text has no spaces: look near the end
        if _CJK.match(text, p - 1) and _CJK.match(text, p):
            return text[:p]
    return text[:cut]


def truncate_longest_first(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths after dropping tokens one at a time from the end of the longer text (b on ties)."""
    if len_a + len_b <= budget:
        return len_a, len_b
    short = min(len_a, len_b)
    if budget - short >= short:  # only the longer text is cut
        return (budget - short, len_b) if len_a > len_b else (len_a, budget - short)
    return (budget + 1) // 2, budget // 2  # both cut to about half; a keeps the odd token


def _hugging_face_folder(folder: Path) -> bool:
    """A tokenizer folder written by Hugging Face transformers: it has tokenizer.json (the `tokenizers`
    library's file; PaddleNLP's BertTokenizer and ErnieTokenizer never write one), or its config.json
    names a transformers_version."""
    if (folder / "tokenizer.json").is_file():
        return True
    config_path = folder / "config.json"
    if not config_path.is_file():
        return False
    config = checkpoints.read_json(config_path, "model config")
    return isinstance(config, dict) and "transformers_version" in config


class BertTokenizer:
    """split_symbols: also split off every symbol character (Unicode categories S*: ￥ ℃ × € © → ...,
    and the few others PaddleNLP lists) as punctuation is: what PaddleNLP's BertTokenizer and
    ErnieTokenizer do (their BasicTokenizer splits on _is_punctuation or _is_symbol). Google's BERT and
    Hugging Face's BertTokenizer split on punctuation only (split_symbols False): "€4" stays one word."""

    def __init__(self, vocab: dict[str, int], do_lower_case: bool = True, split_symbols: bool = True):
        self.vocab = dict(vocab)
        self.do_lower_case = do_lower_case
        self.split_symbols = split_symbols
        missing = [t for t in SPECIAL_TOKENS if t not in self.vocab]
        if missing:
            raise errors.UserError(f"vocabulary lacks the special tokens {missing}")
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.pad_token_id = self.vocab["[PAD]"]
        self.unk_token_id = self.vocab["[UNK]"]
        self.cls_token_id = self.vocab["[CLS]"]
        self.sep_token_id = self.vocab["[SEP]"]
        self.mask_token_id = self.vocab["[MASK]"]

        tk = Tokenizer(WordPiece(self.vocab, unk_token="[UNK]", max_input_chars_per_word=100))
        # strip_accents=None: accents are stripped exactly when lower-casing, as in BERT.
        tk.normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                       lowercase=do_lower_case)
        tk.pre_tokenizer = BertPreTokenizer()
        if split_symbols:  # after the whitespace/punctuation split: each symbol becomes a word of its own
            tk.pre_tokenizer = Sequence([BertPreTokenizer(), Split(Regex(_SYMBOLS), behavior="isolated")])
        # "[MASK]" typed in a text stays one token (augmentation writes it), never split or lower-cased.
        tk.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in SPECIAL_TOKENS])
        self._tk = tk

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, do_lower_case: bool | None = None) -> "BertTokenizer":
        """vocab.txt from a folder (or PaddleNLP's cache); lower-casing from the flag, else tokenizer_config.json.

        Symbols are split off (PaddleNLP's rule) unless tokenizer_config.json says "split_symbols": false
        (save_pretrained writes it) or the folder is a Hugging Face one (BERT's rule, kept by conversion)."""
        folder = checkpoints.resolve_model_dir(name_or_dir)  # same folder / cache rules as the model
        vocab_path = find_vocab(folder)
        if vocab_path is None:
            raise errors.UserError(f"{folder}: no {VOCAB_FILE} found (the tokenizer needs the model's vocabulary)")
        config_path = folder / TOKENIZER_CONFIG
        config = checkpoints.read_json(config_path, "tokenizer config") if config_path.is_file() else {}
        config = config if isinstance(config, dict) else {}
        if do_lower_case is None:
            # BERT's and PaddleNLP's default, except the built-in cased vocabularies (bert-base-cased, ...).
            do_lower_case = not (folder.name.endswith("-cased") or "-cased-" in folder.name)
            do_lower_case = bool(config.get("do_lower_case", do_lower_case))
        split_symbols = config.get("split_symbols")
        if split_symbols is None:
            split_symbols = not _hugging_face_folder(folder)
        try:
            return cls(read_vocab(vocab_path), do_lower_case=do_lower_case, split_symbols=bool(split_symbols))
        except errors.DataError:
            raise
        except errors.UserError as e:  # e.g. special tokens missing: name the file they are missing from
            raise errors.DataError(vocab_path, None, str(e)) from None

    def save_pretrained(self, save_dir: str | os.PathLike) -> None:
        """vocab.txt (ids in order) and tokenizer_config.json, readable by PaddleNLP and transformers."""
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        tokens = [self.ids_to_tokens[i] for i in sorted(self.ids_to_tokens)]
        checkpoints.write_text(save_dir / VOCAB_FILE, "\n".join(tokens) + "\n")
        config = {"tokenizer_class": "BertTokenizer", "do_lower_case": self.do_lower_case,
                  "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                  "mask_token": "[MASK]", "split_symbols": self.split_symbols}
        checkpoints.write_json(save_dir / TOKENIZER_CONFIG, config)

    # -- tokens -----------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return self.vocab_size

    def basic_tokenize(self, text: str) -> list[str]:
        """Words before WordPiece: normalised (lower-cased/accent-stripped when uncased), punctuation split."""
        words: list[str] = []
        for i, part in enumerate(_SPECIAL_SPLIT.split(text)):
            if i % 2:  # a special token such as [MASK], kept whole
                words.append(part)
            elif part:
                normalized = self._tk.normalizer.normalize_str(part)
                words += [w for w, _ in self._tk.pre_tokenizer.pre_tokenize_str(normalized)]
        return words

    def tokenize(self, text: str) -> list[str]:
        """Word pieces, e.g. 'unbelievable' -> ['un', '##believ', '##able']."""
        return self._tk.encode(text, add_special_tokens=False).tokens

    def convert_tokens_to_ids(self, tokens: str | list[str]):
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | list[int]):
        if isinstance(ids, int):
            return self.ids_to_tokens[ids]
        return [self.ids_to_tokens[int(i)] for i in ids]

    # -- model inputs -----------------------------------------------------------------------------

    def _encode_heads(self, texts: list[str], keep: int) -> list[list[int]]:
        """Token ids of each text, the first `keep` of them exactly those of the whole text, without
        tokenizing a long text whole (one 5.5 MB field cost 730 MB of memory to keep 16 tokens).

        A long text is cut to a head of HEAD_CHARS_PER_TOKEN characters per token kept, at a word
        boundary (_head), so the head's tokens are the text's first tokens. A head that yields fewer
        than `keep` tokens (long runs of spaces, words longer than the bound) grows 4x until it
        does or is the whole text: no token the model would keep is dropped."""
        size = keep * HEAD_CHARS_PER_TOKEN
        heads = [_head(text, size) for text in texts]
        ids = [e.ids for e in self._tk.encode_batch(heads, add_special_tokens=False)]
        for i, text in enumerate(texts):
            grown = size
            while len(ids[i]) < keep and len(heads[i]) < len(text):
                grown *= 4
                heads[i] = _head(text, grown)
                ids[i] = self._tk.encode(heads[i], add_special_tokens=False).ids
        return ids

    def __call__(self, texts_a: list[str] | str, texts_b: list[str] | str | None = None,
                 max_seq_length: int = 128) -> dict[str, list[list[int]]]:
        """[CLS] a [SEP] (b [SEP]) ids and token_type_ids, longest-first truncation, no padding."""
        if isinstance(texts_a, str):
            texts_a = [texts_a]
        if isinstance(texts_b, str):
            texts_b = [texts_b]
        pairs = texts_b is not None
        if pairs and len(texts_b) != len(texts_a):
            raise ValueError(f"{len(texts_a)} first texts but {len(texts_b)} second texts")
        budget = max_seq_length - (3 if pairs else 2)
        if budget < (2 if pairs else 1):
            raise errors.UserError(f"max_seq_length={max_seq_length} leaves no room for text")

        # budget + 1 tokens of each text decide the truncation exactly as the whole text would.
        ids_a = self._encode_heads(list(texts_a), budget + 1)
        ids_b = self._encode_heads(list(texts_b), budget + 1) if pairs else None
        cls, sep = self.cls_token_id, self.sep_token_id
        input_ids, token_type_ids = [], []
        for i, a in enumerate(ids_a):
            if pairs:
                b = ids_b[i]
                na, nb = truncate_longest_first(len(a), len(b), budget)
                row = [cls] + a[:na] + [sep] + b[:nb] + [sep]
                types = [0] * (na + 2) + [1] * (nb + 1)
            else:
                row = [cls] + a[:budget] + [sep]
                types = [0] * len(row)
            input_ids.append(row)
            token_type_ids.append(types)
        return {"input_ids": input_ids, "token_type_ids": token_type_ids}
