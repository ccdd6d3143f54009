"""TinyBERT's data augmentation (Jiao et al., 2020, Algorithm 1): candidates for every word and the sampling
of new sentences. runner.py runs it over a whole file (outputs.py: the file protocol), data_augmentation.py
is the command line.

Which words are replaced: as in both reference implementations (the released TinyBERT code,
huawei-noah/Pretrained-Language-Model TinyBERT/data_augmentation.py, and PaddleNLP's TinyBERT example
data_augmentation.py), only words made of the letters a-z (after lower-casing) that are not stop words;
punctuation, numbers, words with other characters and stop words such as "not", "no" and "the" stay.
STOP_WORDS is the references' list (their `StopWordsList`, 173 words): NLTK's English stop words without
its question words (what, which, who, whom, when, where, why, how), plus "'s" and "'re".
AugmentConfig.replace_all_words gives every word candidates instead (special tokens excepted).

Chinese (AugmentConfig.language "zh"; detect_language chooses for the command line's --language auto):
words come from the segmenter jieba (ChineseSegmenter) instead of BERT's basic tokenizer, which would cut
Chinese into single characters. The same rules then apply: a one-character word is one word piece in the
Chinese BERT/ERNIE vocabularies, so it gets masked-LM candidates; a longer word gets its nearest
neighbours from the word vectors (word2vec's text format, as the public Chinese vector collections ship,
loads as GloVe's does). Replaceable are words of CJK characters only that are not CHINESE_STOP_WORDS, and
words of the letters a-z that are not STOP_WORDS; digits, punctuation (full-width too) and other tokens
stay. Samples are joined back as the text was written (join_words): no space between Chinese words, the
input's spaces kept, a space between two Latin words.

For each sentence, split into words:
- a word that BERT keeps as one word piece gets K candidates from the masked-LM: the word is replaced by
  [MASK] and the K most likely tokens are taken, the word itself excluded. The model sees the masked
  sentence alone (mlm_input "single", the paper's input) or the masked sentence, [SEP], then the original
  sentence ("pair", the released code's input, which shows the model the word);
- a longer word gets its K nearest GloVe words by cosine similarity, itself excluded;
- a word with no candidates stays.
Then each of N draws replaces each word with probability p by a uniformly drawn candidate; as in the
references, the distinct draws that differ from the original are kept (at most N, fewer when draws repeat).

Speed: many masked sentences go through one forward pass without gradients, batched by length, with
the vocabulary projection (as costly as the encoder for a small BERT) and the last encoder layer computed
only at the masked word; on CPU the model runs through Paddle Inference with oneDNN (inference.py).
Each example draws from its own random generator seeded with (seed, example index), so the output does
not depend on the batch size or on how the work is split.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from tinybert.data import features
from tinybert import inference
from tinybert.errors import UserError
from tinybert.settings import setting
from tinybert.augmentation.glove import GloVe
from tinybert.data.tokenization import SPECIAL_TOKENS

BANNED_LOGIT = -1e9   # added to the logits of tokens that may not be candidates
MLM_INPUTS = ("input_ids", "token_type_ids", "attention_mask", "masked_positions", "word_ids")

# The stop words both references never replace (their `StopWordsList`, 173 words, here in their order): NLTK's
# English list of 179 words without its eight question words (what, which, who, whom, when, where, why, how,
# which the references do replace), plus "'s" and "'re". Words with an apostrophe can never pass the
# letters-only test; they are kept so that the list is the references' whole list.
STOP_WORDS = frozenset("""
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves
    he him his himself she she's her hers herself it it's its itself they them their theirs themselves
    this that that'll these those am is are was were be been being have has had having
    do does did doing a an the and but if or because as until while of at by for with about against between
    into through during before after above below to from up down in out on off over under again further
    then once here there all any both each few more most other some such no nor not
    only own same so than too very s t can will just don don't should should've now d ll m o re ve y
    ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn
    isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren
    weren't won won't wouldn wouldn't
    's 're
""".split())
_LETTERS_ONLY = re.compile("[a-z]+")

LANGUAGES = ("en", "zh")
# CJK ideographs: the code points BERT's tokenizer treats as Chinese characters (its _is_chinese_char: the
# CJK Unified Ideographs, Extensions A-E and the compatibility ideographs), each one word piece in Chinese
# vocabularies. Full-width punctuation (，。！) and digits are not among them.
_CJK_CLASS = ("\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002b73f"
              "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\U0002f800-\U0002fa1f")
_CJK_CHAR = re.compile(f"[{_CJK_CLASS}]")
_CJK_WORD = re.compile(f"[{_CJK_CLASS}]+")
_OTHER_LETTERS = re.compile(f"[^\\W\\d_{_CJK_CLASS}]+")  # a run of letters of other scripts: "BERT", "café"

# Chinese stop words, never replaced (as STOP_WORDS are in English text). The references have no Chinese
# list; this one is ours, written for this project in the spirit of the English one: common function words
# (pronouns and demonstratives, structural, aspect and modal particles, prepositions, conjunctions, auxiliary
# verbs, negations, degree and linking adverbs, a few measure words). As in English, question words
# (什么, 谁, 哪, 怎么, 为什么) are not in it, and negations (不, 没, 没有, 无, 非, 别, 未) are, so that a
# sentence's polarity stays.
CHINESE_STOP_WORDS = frozenset("""
    我 你 您 他 她 它 我们 你们 您们 他们 她们 它们 咱 咱们 自己 大家 人家 别人
    这 那 这个 那个 这些 那些 这里 那里 这儿 那儿 这样 那样 这么 那么 这种 那种 此 其 之 该 各 每 某 本
    的 地 得 了 着 过 所 吗 呢 吧 啊 呀 哦 嘛 啦 么 罢了 而已
    在 从 自 向 往 对 对于 关于 把 被 给 让 跟 同 比 为 为了 以 由 于 按 按照 依 据 到 至 除了 通过
    和 与 及 以及 或 或者 还是 而 而且 并 并且 但 但是 可是 不过 然而 因为 所以 因此 如果 假如 虽然
    即使 尽管 于是 然后 而是 还有 只是 就是 只要 只有 否则 要是
    是 有 会 能 可以 可能 要 应该 将 已 已经 曾 曾经 正在
    不 没 没有 无 非 别 未 不是 不会 不能
    也 还 又 再 就 才 都 只 仅 很 太 更 最 非常 比较 十分 挺 一直 一起 一样
    一 一个 一些 一种 一下 个 些 等 等等 上 下 中 里 内 之后 之前 以后 以前 时 时候
""".split())

# N (new samples per sentence) per GLUE task: the released code's and PaddleNLP's `default_params`. Other
# tasks (STS-B, whose key there is misspelt "STS-b", and WNLI) and one's own data get their --N default.
TASK_SAMPLES = {"CoLA": 30, "SST-2": 20, "MRPC": 30, "QQP": 10, "MNLI": 10, "QNLI": 20, "RTE": 30}
DEFAULT_SAMPLES = 30


def samples_for_task(task: str | None) -> int:
    """The references' N for a GLUE task's canonical name (tasks.GLUE_TASKS), 30 for anything else."""
    return TASK_SAMPLES.get(task or "", DEFAULT_SAMPLES)


def is_chinese(word: str) -> bool:
    """Whether `word` is made of CJK ideographs only."""
    return _CJK_WORD.fullmatch(word) is not None


def replaceable(word: str, language: str = "en") -> bool:
    """The references' rule: a word gets candidates when, lower-cased, it is made of the letters a-z only
    and is not a stop word. In Chinese text ("zh") a word of CJK characters only that is not one of
    CHINESE_STOP_WORDS gets candidates too."""
    if language == "zh" and is_chinese(word):
        return word not in CHINESE_STOP_WORDS
    lower = word.lower()
    return _LETTERS_ONLY.fullmatch(lower) is not None and lower not in STOP_WORDS


DETECT_ROWS = 100  # --language auto looks at the texts of this many first rows


def detect_language(texts: Iterable[str]) -> str:
    """ "zh" when the texts hold at least as many CJK characters as words of other letters (runs of
    letters that are not CJK: "BERT", "movie"), and at least one CJK character; "en" otherwise.

    One Chinese character counts as much as one English word, so Chinese text with English terms in it
    is Chinese, and English text quoting a Chinese name is English; digits, punctuation (full-width
    included), spaces and symbols do not count."""
    cjk = other = 0
    for text in texts:
        cjk += len(_CJK_CHAR.findall(text))
        other += len(_OTHER_LETTERS.findall(text))
    return "zh" if cjk > 0 and cjk >= other else "en"


def join_words(words: Sequence[str], language: str = "en") -> str:
    """A sentence from its words. English: single spaces between words (the references' join). Chinese:
    the words as they stand, so no space between Chinese words and the input's spaces (single " " words,
    ChineseSegmenter.words) where they were, plus a space wherever two letters or digits of other scripts
    would otherwise meet ("use" + "BERT"), so two Latin words never run together. The segmenter's words of
    a text never meet so, and join_words gives the text back, its runs of whitespace made single spaces."""
    if language != "zh":
        return " ".join(words)
    out: list[str] = []
    for word in words:
        if out and word and _word_char(out[-1][-1:]) and _word_char(word[0]):
            out.append(" ")
        out.append(word)
    return "".join(out)


def _word_char(ch: str) -> bool:
    return ch.isalnum() and _CJK_CHAR.match(ch) is None


# ----------------------------------------------------------------------------------------------
# Chinese words: jieba


JIEBA_VERSION = "0.42.1"  # requirements.txt's pin
_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")  # kept whole


class ChineseSegmenter:
    """Words of Chinese text from jieba: its accurate mode with its HMM for words missing from its
    dictionary (jieba's default `cut`), in-sentence spaces kept as single " " words.

    Deterministic: a private jieba.Tokenizer over the dictionary jieba ships (words added to jieba's global
    tokenizer by other code do not change it); its prefix-dictionary cache is ours, named by jieba's version
    (never a shared /tmp/jieba.cache another program or jieba version wrote); and jieba's log, which says
    "Building prefix dict..." on stderr, is set to warnings only."""

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        try:
            import jieba
        except ImportError:
            raise UserError(f"Chinese augmentation needs the word segmenter jieba: pip install "
                            f"jieba=={JIEBA_VERSION}") from None
        jieba.setLogLevel(logging.WARNING)
        self._tk = jieba.Tokenizer()
        self._tk.cache_file = str(Path(_jieba_cache_dir(cache_dir)) / f"jieba-{jieba.__version__}.cache")
        self._tk.initialize()

    def cut(self, text: str) -> list[str]:
        """jieba's words, whitespace included as it yields it (one word per whitespace character)."""
        return list(self._tk.cut(text, cut_all=False, HMM=True))

    def words(self, text: str) -> list[str]:
        """The words of a text: special tokens such as [MASK] kept whole, each run of whitespace inside the
        text one " " word, none at either end. Pieces that jieba cuts from one run of letters or digits of
        other scripts ("caf" "é", full-width "３" "５") are joined again, so join_words gives the text back."""
        words: list[str] = []
        for i, part in enumerate(_SPECIAL_SPLIT.split(text)):
            if i % 2:
                words.append(part)
                continue
            for word in self.cut(part):
                if word.isspace():
                    if words and words[-1] != " ":
                        words.append(" ")
                elif words and words[-1] not in SPECIAL_TOKENS and _word_char(words[-1][-1]) and \
                        _word_char(word[0]):
                    words[-1] += word
                else:
                    words.append(word)
        while words and words[-1] == " ":
            words.pop()
        return words


def _jieba_cache_dir(cache_dir: str | os.PathLike | None) -> str:
    """A folder of our own for jieba's cache: $XDG_CACHE_HOME (or ~/.cache)/tinybert_paddle/jieba, else a
    new temporary folder (jieba then builds its dictionary each run)."""
    folder = Path(cache_dir) if cache_dir is not None else \
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinybert_paddle" / "jieba"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return str(folder)
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="tinybert-jieba-")


def segmenter_name() -> str:
    """The segmenter and its settings, as a resumed run's record holds them (another jieba may cut differently)."""
    from importlib import metadata

    try:
        return f"jieba {metadata.version('jieba')}, accurate mode with HMM"
    except metadata.PackageNotFoundError:
        raise UserError(f"Chinese augmentation needs the word segmenter jieba: pip install "
                        f"jieba=={JIEBA_VERSION}") from None


@functools.lru_cache(maxsize=1)
def chinese_segmenter() -> ChineseSegmenter:
    """The process's one segmenter (jieba's dictionary loads once)."""
    return ChineseSegmenter()


# ----------------------------------------------------------------------------------------------
# Settings


def _per_task_help() -> str:
    by_n: dict[int, list[str]] = {}
    for task, n in TASK_SAMPLES.items():
        by_n.setdefault(n, []).append(task)
    listed = "; ".join(f"{', '.join(names)} {n}" for n, names in sorted(by_n.items()))
    return f"{listed}; other tasks (STS-B, WNLI) and your own data {DEFAULT_SAMPLES}"


@dataclass(frozen=True)
class AugmentConfig:
    """How sentences are augmented; checked when built. Each field is also data_augmentation.py's flag
    (settings.py); the command line's --N, --language and --max_seq_length default to None, auto and None,
    which the script resolves (per task, from the texts, from the masked-LM) before building it."""
    N: int = setting(20, "Draws per sentence; the distinct ones that differ from the original are written (at most "
                         "N new samples). Default: the references' per-task N, which an explicit --N overrides: "
                         f"{_per_task_help()}.")
    p: float = setting(0.4, "Probability of replacing each word.")
    K: int = setting(15, "Candidates per word (--M is the references' name).", aliases=("--M",))
    seed: int = setting(42, "Random seed: each example draws from a generator seeded with (seed, example index).")
    # False: only letters-only words that are not STOP_WORDS get candidates (the references).
    replace_all_words: bool = setting(
        False, "Give every word candidates, stop words, punctuation and numbers included; without it only words "
               "of the letters a-z that are not stop words get them, as in the references (and in Chinese text "
               "words of CJK characters that are not Chinese stop words).")
    mlm_input: str = setting(
        "single", "single: the masked sentence alone (the paper); pair: masked sentence [SEP] original (the "
                  "released code; the model sees the word, so candidates are near-synonyms).",
        choices=("single", "pair"))
    max_seq_length: int = setting(
        128, "Word pieces the masked-LM sees (a window around each masked word); default 128, or the model's "
             "position embeddings when fewer.")
    batch_size: int = setting(64, "Masked sentences per forward pass.")
    language: str = setting(
        "en", "en: BERT's words, joined by spaces; zh: Chinese words from jieba, Chinese stop words, no spaces "
              f"between Chinese words; auto: zh when the first {DETECT_ROWS} rows hold at least as many CJK "
              "characters as words of other letters, else en.", choices=("auto", *LANGUAGES))

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if self.N < 1:
            raise UserError(f"--N must be at least 1 (new samples per sentence), got {self.N}")
        if not 0.0 <= self.p <= 1.0:
            raise UserError(f"--p must lie in [0, 1] (probability of replacing a word), got {self.p}")
        if self.K < 1:
            raise UserError(f"--K must be at least 1 (candidates per word), got {self.K}")
        if self.mlm_input not in ("single", "pair"):
            raise UserError(f"--mlm_input must be single or pair, got {self.mlm_input!r}")
        if self.max_seq_length < 5:
            raise UserError(f"--max_seq_length must be at least 5, got {self.max_seq_length}")
        if self.batch_size < 1:
            raise UserError(f"--batch_size must be at least 1, got {self.batch_size}")
        if self.language not in LANGUAGES:
            raise UserError(f"--language must be one of {', '.join(LANGUAGES)}, got {self.language!r}")


# ----------------------------------------------------------------------------------------------
# Masked-LM candidates


def masked_input(pieces: Sequence[int], pos: int, mode: str, max_len: int, cls_id: int, sep_id: int,
                 mask_id: int) -> tuple[list[int], list[int], int]:
    """(input_ids, token_type_ids, index of [MASK]) for the word piece at `pos` masked.

    single: [CLS] masked [SEP]; pair: [CLS] masked [SEP] original [SEP]. A sentence longer than the
    budget is cut to a window centred on the masked word (the same window on both sides of a pair)."""
    budget = max_len - 2 if mode == "single" else (max_len - 3) // 2
    start = min(max(0, pos - budget // 2), max(0, len(pieces) - budget))
    window = list(pieces[start:start + budget])
    masked = list(window)
    masked[pos - start] = mask_id
    ids = [cls_id] + masked + [sep_id]
    types = [0] * len(ids)
    if mode == "pair":
        ids += window + [sep_id]
        types += [1] * (len(window) + 1)
    return ids, types, 1 + pos - start


def banned_tokens(tokenizer) -> np.ndarray:
    """Tokens that are never candidates: special tokens ([CLS], [unused0], ...) and ## continuations."""
    banned = np.zeros(tokenizer.vocab_size, dtype=bool)
    for token, i in tokenizer.vocab.items():
        if i < len(banned) and (token.startswith("##") or (token.startswith("[") and token.endswith("]"))):
            banned[i] = True
    return banned


def _build_topk_layer(model, banned: np.ndarray, k: int):
    """A layer mapping (ids, types, mask, flat [MASK] positions, word ids) to the top-k token ids there.

    Exactly the masked-LM's computation, restricted to what the candidates need: the last encoder layer
    runs its query, feed-forward and output only at the masked word (its keys and values still at every
    position), and the vocabulary projection only there too."""
    import paddle
    import paddle.nn as nn
    import paddle.nn.functional as F

    from tinybert.models import modeling

    base, head = model.base, model.cls.predictions
    pad_id, vocab = model.config.pad_token_id, model.config.vocab_size

    class MaskedWordTopK(nn.Layer):
        def __init__(self):
            super().__init__()
            self.base, self.head = base, head
            bias = np.where(banned[:vocab], BANNED_LOGIT, 0.0).astype("float32")
            if len(bias) < vocab:
                bias = np.concatenate([bias, np.full(vocab - len(bias), BANNED_LOGIT, "float32")])
            self.register_buffer("banned_bias", paddle.to_tensor(bias), persistable=True)

        def forward(self, input_ids, token_type_ids, attention_mask, masked_positions, word_ids):
            x = self.base.embeddings(input_ids, token_type_ids)
            mask_bias = modeling.attention_bias(input_ids, attention_mask, pad_id, x.dtype)
            layers = self.base.encoder.layers
            for layer in layers[:-1]:
                x, _ = layer(x, mask_bias)
            h = last_layer_at(layers[-1], x, mask_bias, masked_positions)
            logits = self.head(h) + self.banned_bias
            logits = logits + BANNED_LOGIT * F.one_hot(word_ids, vocab)  # the word itself
            return paddle.topk(logits, k)[1]

    def last_layer_at(layer, x, mask_bias, masked_positions):
        """The post-LayerNorm encoder layer's output at one position per row: [B, H]."""
        attn = layer.self_attn
        hidden = x.shape[-1]
        heads, d = attn.num_heads, attn.head_dim
        x_m = paddle.gather(x.reshape([-1, hidden]), masked_positions)            # [B, H]
        q = attn.q_proj(x_m).reshape([-1, heads, 1, d])
        k_ = attn.split_heads(attn.k_proj(x))                                     # [B, heads, S, d]
        v = attn.split_heads(attn.v_proj(x))
        scores = paddle.matmul(q, k_, transpose_y=True) * (d ** -0.5)             # [B, heads, 1, S]
        probs = F.softmax(scores + mask_bias, axis=-1)
        context = paddle.matmul(probs, v).reshape([-1, heads * d])
        h = layer.norm1(x_m + attn.out_proj(context))
        return layer.norm2(h + layer.linear2(layer.act(layer.linear1(h))))

    layer = MaskedWordTopK()
    layer.eval()
    return layer


class MaskedLMPredictor:
    """Top-K masked-word candidates from a BertForMaskedLM, many masked sentences per forward pass.

    engine "inference" runs the model through Paddle Inference (oneDNN on CPU), "eager" in dygraph;
    "auto" is the first on CPU (falling back to the second if the export fails) and eager on GPUs, where
    batching alone keeps the device busy."""

    def __init__(self, model, tokenizer, k: int, batch_size: int = 64, engine: str = "auto",
                 device: str = "cpu", cpu_threads: int | None = None):
        self.tokenizer, self.batch_size = tokenizer, batch_size
        self.k = min(k, model.config.vocab_size)
        self.banned = banned_tokens(tokenizer)
        self.layer = _build_topk_layer(model, self.banned, self.k)
        self.engine = "eager"
        self._predictor = None
        if engine == "inference" or (engine == "auto" and device == "cpu"):
            try:
                self._predictor = _inference_runner(self.layer, device, cpu_threads)
                self.engine = "inference"
            except Exception as e:  # an export problem must not stop the augmentation
                if engine == "inference":
                    raise UserError(f"could not set up Paddle Inference for the masked-LM: {e}") from None
                print(f"note: Paddle Inference unavailable ({type(e).__name__}: {e}); running eagerly",
                      file=sys.stderr)

    def top_k(self, input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]],
              mask_index: Sequence[int], word_ids: Sequence[int]) -> np.ndarray:
        """[n, K] token ids, best first: the predictions at each row's [MASK], banned tokens and the
        masked word itself excluded. Rows are batched by length (little padding)."""
        n = len(input_ids)
        out = np.zeros((n, self.k), dtype=np.int64)
        for rows in features.inference_batches([len(ids) for ids in input_ids], self.batch_size):
            batch = features.collate([{"input_ids": input_ids[i], "token_type_ids": token_type_ids[i]}
                                      for i in rows], self.tokenizer.pad_token_id)
            width = batch["input_ids"].shape[1]
            batch["masked_positions"] = (np.arange(len(rows), dtype=np.int64) * width
                                         + np.array([mask_index[i] for i in rows], dtype=np.int64))
            batch["word_ids"] = np.array([word_ids[i] for i in rows], dtype=np.int64)
            out[rows] = self._run(batch)
        return out

    def _run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        if self._predictor is not None:
            return self._predictor(batch)
        import paddle

        with paddle.no_grad():
            return self.layer(*[paddle.to_tensor(batch[n]) for n in MLM_INPUTS]).numpy()


def _inference_runner(layer, device: str, cpu_threads: int | None = None) -> inference.Runner:
    """Export the layer to a static graph and load it into Paddle Inference (inference.py: fused kernels,
    oneDNN on CPU with exact GELU, no Python per operator)."""
    from paddle.static import InputSpec

    specs = [InputSpec([None, None], "int64", n) for n in MLM_INPUTS[:3]] + \
            [InputSpec([None], "int64", n) for n in MLM_INPUTS[3:]]
    with tempfile.TemporaryDirectory(prefix="tinybert-aug-") as tmp:
        graph = inference.static_graph(layer, specs, os.path.join(tmp, "mlm_topk"))
        # Kernels are made per input shape; the masked-LM sees many, so more of them are kept.
        return inference.paddle_inference_runner(graph, graph.with_suffix(".pdiparams"), MLM_INPUTS, device,
                                                 cpu_threads, onednn_cache=64)  # reads the files now


# ----------------------------------------------------------------------------------------------
# Candidates for every word of many sentences


class CandidateFinder:
    """Candidates per word: masked-LM predictions for single-piece words, GloVe neighbours for the rest;
    none for special tokens, spaces and, unless config.replace_all_words, for words that are not
    `replaceable` (in config.language)."""

    def __init__(self, tokenizer, glove: GloVe | None, mlm: MaskedLMPredictor | None, config: AugmentConfig):
        self.tokenizer, self.glove, self.mlm, self.config = tokenizer, glove, mlm, config
        self.special = {t for t in tokenizer.vocab if t.startswith("[") and t.endswith("]")}
        self.segmenter = chinese_segmenter() if config.language == "zh" else None

    def words(self, text: str) -> list[str]:
        """English: BERT's basic tokenizer (lower-cased for uncased vocabularies, punctuation split). Chinese:
        jieba's words as written (ChineseSegmenter.words)."""
        if self.segmenter is not None:
            return self.segmenter.words(text)
        return self.tokenizer.basic_tokenize(text)

    def join(self, words: Sequence[str]) -> str:
        """A sentence from words (join_words in config.language)."""
        return join_words(words, self.config.language)

    def __call__(self, sentences: Sequence[Sequence[str]]) -> list[list[tuple[str, ...]]]:
        """For each sentence (a list of words), a tuple of candidates per word."""
        result: list[list[tuple[str, ...]]] = [[() for _ in s] for s in sentences]
        pieces = self._word_pieces(sentences) if self.mlm is not None else None
        glove_words: list[tuple[int, int, str]] = []
        queries = []  # (sentence, word, flat pieces, piece position, word id)
        for si, words in enumerate(sentences):
            flat: list[int] = []
            starts = []
            if pieces is not None:
                for wp in pieces[si]:
                    starts.append(len(flat))
                    flat += wp
            for wi, word in enumerate(words):
                if word in self.special or word.isspace() or not (self.config.replace_all_words
                                                                    or replaceable(word, self.config.language)):
                    continue
                if pieces is not None and len(pieces[si][wi]) == 1 and pieces[si][wi][0] != self.tokenizer.unk_token_id:
                    queries.append((si, wi, flat, starts[wi], pieces[si][wi][0]))
                else:
                    glove_words.append((si, wi, word))
        if queries:
            self._masked_lm(queries, result)
        if glove_words and self.glove is not None:
            neighbours = self.glove.nearest([w for _, _, w in glove_words], self.config.K)
            for (si, wi, _), found in zip(glove_words, neighbours):
                result[si][wi] = found
        return result

    def _word_pieces(self, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Word-piece ids of every word, one batched tokenizer call."""
        flat_words = [w for s in sentences for w in s]
        if not flat_words:
            return [[] for _ in sentences]
        encoded = self.tokenizer(flat_words, max_seq_length=1 << 20)["input_ids"]
        out, k = [], 0
        for s in sentences:
            out.append([ids[1:-1] for ids in encoded[k:k + len(s)]])  # drop [CLS] and [SEP]
            k += len(s)
        return out

    def _masked_lm(self, queries: list, result: list[list[tuple[str, ...]]]) -> None:
        c, tok = self.config, self.tokenizer
        built = [masked_input(flat, pos, c.mlm_input, c.max_seq_length, tok.cls_token_id, tok.sep_token_id,
                              tok.mask_token_id) for _, _, flat, pos, _ in queries]
        # Identical queries (repeated sentences) are predicted once. The masked word is part of the key:
        # with `single` input, "good" and "bad" in the same place share the input but not the exclusion.
        unique: dict[tuple[int, ...], int] = {}
        slot = [unique.setdefault((q[4], *ids), len(unique)) for q, (ids, _, _) in zip(queries, built)]
        first = {}
        for qi, s in enumerate(slot):
            first.setdefault(s, qi)
        rows = [first[s] for s in range(len(unique))]
        top = self.mlm.top_k([built[i][0] for i in rows], [built[i][1] for i in rows],
                             [built[i][2] for i in rows], [queries[i][4] for i in rows])
        k = top.shape[1]
        tokens = tok.convert_ids_to_tokens(top.reshape(-1).tolist())
        per_row = [tuple(tokens[r * k:(r + 1) * k]) for r in range(len(rows))]
        for (si, wi, _, _, _), s in zip(queries, slot):
            result[si][wi] = per_row[s]


# ----------------------------------------------------------------------------------------------
# Sampling (Algorithm 1, lines 12-18)


def example_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of one example: a function of (seed, example index) only."""
    return np.random.default_rng([seed, index])


def draw_sentences(words: Sequence[str], candidates: Sequence[Sequence[str]], N: int, p: float,
                   rng: np.random.Generator, join: Callable[[Sequence[str]], str] = " ".join) -> list[str]:
    """N draws, repeats and unchanged ones included: each word is replaced, with probability p, by one of
    its candidates drawn uniformly; a word without candidates stays. Words are joined by `join`: single
    spaces, or CandidateFinder.join (Chinese: join_words)."""
    n_words = len(words)
    replace = rng.random((N, n_words)) < p
    pick = rng.random((N, n_words))
    sizes = np.array([len(c) for c in candidates], dtype=np.int64)
    choice = np.minimum((pick * sizes).astype(np.int64), np.maximum(sizes - 1, 0))
    replace &= sizes > 0
    out = []
    for n in range(N):
        new = [candidates[i][choice[n, i]] if replace[n, i] else words[i] for i in range(n_words)]
        out.append(join(new))
    return out


def sample_sentences(words: Sequence[str], candidates: Sequence[Sequence[str]], N: int, p: float,
                     rng: np.random.Generator, original: str | None = None,
                     join: Callable[[Sequence[str]], str] = " ".join) -> list[str]:
    """The new samples of one sentence, as the references make them: N draws (draw_sentences), of which
    each draw seen for the first time is kept, in order, unless it equals the sentence itself (its words
    joined by `join`, or `original`, the text as it was read). At most N; fewer when draws repeat or
    leave the sentence unchanged, none when no word has candidates."""
    seen = {join(words)} if original is None else {join(words), original}
    out = []
    for text in draw_sentences(words, candidates, N, p, rng, join):
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out
