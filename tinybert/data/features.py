"""Features and batches: batched tokenization, the one collate (dynamic padding), and the orders in
which examples are batched, for training (shuffled, optionally bucketed) and for inference (by length).
A training run's batching plan (`Plan`: which items each optimizer step draws, on which process) lives here
too: batching plans live with batching.

    data = encode_examples(tokenizer, examples, 128, spec)
    for ids in batch_indices(data.lengths, 32, shuffle=True, seed=42, epoch=0):
        batch = collate([data[i] for i in ids], tokenizer.pad_token_id)
    for ids in inference_batches(data.lengths, 64):          # predictions go back to out[ids]
        ...
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from tinybert.settings import setting

if TYPE_CHECKING:  # annotations only
    from tinybert.data.tasks import Example, TaskSpec


@dataclass(frozen=True)
class EncodeConfig:
    """--max_seq_length, the one setting of encoding: declared here for every script that encodes text
    (settings.add_flags; a script's own default with defaults=..., DistillConfig's copy with settings.like).
    Checked against a model's position embeddings where the model is known (cli.check_max_seq_length)."""
    max_seq_length: int = setting(128, "Longer inputs are truncated (longest text first); at most the position "
                                       "embeddings of each model.")


# Sequences padded with 0 besides input_ids (which takes the tokenizer's pad id); all int64.
_INT64_KEYS = ("input_ids", "token_type_ids", "attention_mask")


class EncodedDataset:
    """Tokenized examples, stored flat (one array of all token ids plus offsets) to stay small.

    Item i is {"input_ids", "token_type_ids": int64 [len_i], "label": int64 or float32 scalar};
    test sets have no "label". `.lengths` holds every sequence length, for batch_indices."""

    def __init__(self, input_ids: list[list[int]], token_type_ids: list[list[int]],
                 labels: np.ndarray | None):
        self.lengths = np.fromiter(map(len, input_ids), dtype=np.int64, count=len(input_ids))
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        total = int(self.offsets[-1])
        self.ids = np.fromiter(itertools.chain.from_iterable(input_ids), dtype=np.int32, count=total)
        self.types = np.fromiter(itertools.chain.from_iterable(token_type_ids), dtype=np.int8, count=total)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        start, end = self.offsets[i], self.offsets[i + 1]
        item = {"input_ids": self.ids[start:end].astype(np.int64),
                "token_type_ids": self.types[start:end].astype(np.int64)}
        if self.labels is not None:
            item["label"] = self.labels[i]
        return item


def encode_labels(spec: TaskSpec, examples: Sequence[Example]) -> np.ndarray | None:
    """Label ids (int64) or scores (float32); None when no example has a label (a test set)."""
    if all(e.label is None for e in examples):
        return None
    if any(e.label is None for e in examples):
        missing = next(e for e in examples if e.label is None)
        raise ValueError(f"example {missing.guid} (line {missing.line}) has no label while others do")
    if spec.is_regression:
        return np.array([e.label for e in examples], dtype=np.float32)
    label2id = spec.label2id
    return np.array([label2id[e.label] for e in examples], dtype=np.int64)


def encode_examples(tokenizer: Any, examples: Sequence[Example], max_seq_length: int, spec: TaskSpec,
                    chunk_size: int = 4096) -> EncodedDataset:
    """Tokenize in batches (the fast tokenizer runs a whole chunk at once): [CLS] a [SEP] (b [SEP]),
    longest-first truncation to max_seq_length, no padding (collate pads per batch)."""
    input_ids: list[list[int]] = []
    token_type_ids: list[list[int]] = []
    pair = any(e.text_b is not None for e in examples)
    quiet = True if len(examples) < 20000 else None  # None: tqdm shows the bar on terminals only
    with tqdm(total=len(examples), desc="tokenizing", unit="ex", disable=quiet, leave=False) as bar:
        for start in range(0, len(examples), chunk_size):
            chunk = examples[start:start + chunk_size]
            texts_a = [e.text_a for e in chunk]
            texts_b = [e.text_b or "" for e in chunk] if pair else None
            encoded = tokenizer(texts_a, texts_b, max_seq_length=max_seq_length)
            input_ids.extend(encoded["input_ids"])
            token_type_ids.extend(encoded["token_type_ids"])
            bar.update(len(chunk))
    return EncodedDataset(input_ids, token_type_ids, encode_labels(spec, examples))


def collate(items: Sequence[dict[str, Any]], pad_token_id: int = 0) -> dict[str, np.ndarray]:
    """One batch from items (dicts of arrays), padded to the longest sequence of this batch, not to
    max_seq_length, so short batches stay cheap.

    Values of unequal length are right-padded: input_ids with pad_token_id, other sequences
    (token_type_ids, ...) with 0. Scalars and fixed-shape values (label, teacher_logits) are
    stacked. An attention_mask (1 real token, 0 padding) is added when the items have input_ids and
    no mask of their own. input_ids, token_type_ids and attention_mask come out int64: [B, L]."""
    batch: dict[str, np.ndarray] = {}
    for key in items[0]:
        arrays = [np.asarray(item[key]) for item in items]
        if arrays[0].ndim == 0 or len({a.shape for a in arrays}) == 1:
            batch[key] = np.stack(arrays)
        else:
            batch[key] = _pad(arrays, pad_token_id if key == "input_ids" else 0)
    if "input_ids" in batch and "attention_mask" not in batch:
        lengths = np.array([len(item["input_ids"]) for item in items])
        batch["attention_mask"] = np.arange(batch["input_ids"].shape[1])[None, :] < lengths[:, None]
    for key in _INT64_KEYS:
        if key in batch:
            batch[key] = batch[key].astype(np.int64, copy=False)
    return batch


def _pad(arrays: list[np.ndarray], fill: int) -> np.ndarray:
    longest = max(len(a) for a in arrays)
    padded = np.full((len(arrays), longest) + arrays[0].shape[1:], fill, dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        padded[i, :len(a)] = a
    return padded


def batch_indices(lengths: Sequence[int] | np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                  epoch: int = 0, bucket: bool = False, pool_batches: int = 50) -> list[list[int]]:
    """Example indices of every batch; the same (seed, epoch) gives the same batches. All examples
    are used (the last batch may be smaller).

    bucket=True groups sequences of similar length so less padding is computed: shuffled, then
    sorted by length within pools of `pool_batches` batches, then the batch order shuffled, so
    batches stay random while each is nearly uniform in length. Without shuffling, bucketing is
    inference_batches: the whole set sorted by length."""
    lengths = np.asarray(lengths)
    n = len(lengths)
    if bucket and not shuffle:
        return inference_batches(lengths, batch_size)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.arange(n)
    if bucket:
        pool = batch_size * pool_batches
        order = np.concatenate([chunk[length_order(lengths[chunk])]
                                for chunk in np.array_split(order, range(pool, n, pool))]) if n else order
    batches = [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]
    if bucket:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def length_order(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    """Indices that sort the examples by length, shortest first, ties in their original order.

    The order for inference: consecutive examples have about the same length, so a batch of them
    needs little padding. Results computed in this order go back with `out[order] = results`."""
    return np.argsort(np.asarray(lengths), kind="stable")


def inference_batches(lengths: Sequence[int] | np.ndarray, batch_size: int) -> list[list[int]]:
    """Batches of example indices for inference (evaluation, prediction, masked-LM candidates): the
    examples in length_order, cut into batches of `batch_size`. Each batch's indices say where its
    results belong (`out[ids] = model(batch)`)."""
    order = length_order(lengths)
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]


# ------------------------------------------------------------------------------------------ training plans

class BatchSettings(Protocol):
    """The settings that fix a run's batches (trainer.TrainConfig has them)."""

    @property
    def batch_size(self) -> int: ...
    @property
    def gradient_accumulation_steps(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def num_train_epochs(self) -> float: ...
    @property
    def max_steps(self) -> int: ...
    @property
    def group_by_length(self) -> bool: ...


def epoch_order(num_items: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled item order of one epoch, a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(num_items)


@dataclass
class Plan:
    """How items become optimizer steps: global micro-batches, grouped for gradient accumulation."""
    num_items: int
    batch_size: int          # per process
    world: int
    accumulation: int
    seed: int
    num_epochs: float
    max_steps: int
    lengths: np.ndarray | None = None   # every item's length; needed by group_by_length
    group_by_length: bool = False

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world

    @property
    def micro_batches_per_epoch(self) -> int:
        full, rest = divmod(self.num_items, self.global_batch)
        # A last micro-batch smaller than the number of processes would leave some process without data.
        return full + (1 if rest >= self.world else 0)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.micro_batches_per_epoch / self.accumulation)

    @property
    def total_steps(self) -> int:
        if self.max_steps > 0:
            return self.max_steps
        return max(1, math.ceil(self.num_epochs * self.steps_per_epoch))

    def steps_of_epoch(self, epoch: int) -> list[list[np.ndarray]]:
        """Optimizer steps of one epoch; each step is a list of global micro-batches (arrays of item indices)."""
        if self.group_by_length:
            if self.lengths is None or len(self.lengths) != self.num_items:
                raise ValueError("group_by_length needs the length of every item")
            batches = batch_indices(self.lengths, self.global_batch, shuffle=True, seed=self.seed,
                                    epoch=epoch, bucket=True)
            # The one short batch lands anywhere in the shuffled order; like the last one below, it is
            # dropped when it cannot give every process an item.
            micro = [np.asarray(b) for b in batches if len(b) >= self.world]
        else:
            order = epoch_order(self.num_items, self.seed, epoch)
            micro = [order[i:i + self.global_batch] for i in range(0, len(order), self.global_batch)]
            micro = micro[:self.micro_batches_per_epoch]
        return [micro[i:i + self.accumulation] for i in range(0, len(micro), self.accumulation)]


def data_lengths(data: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """Every item's sequence length: the dataset's `.lengths` (EncodedDataset and its wrappers), else counted."""
    lengths = getattr(data, "lengths", None)
    if lengths is None:
        lengths = [len(data[i]["input_ids"]) for i in range(len(data))]
    return np.asarray(lengths)


def make_plan(data: Sequence[dict[str, np.ndarray]], settings: BatchSettings, world: int) -> Plan:
    return Plan(len(data), settings.batch_size, world, settings.gradient_accumulation_steps, settings.seed,
                settings.num_train_epochs, settings.max_steps,
                data_lengths(data) if settings.group_by_length else None, settings.group_by_length)


def items_used(data: Sequence[dict[str, np.ndarray]], settings: BatchSettings, world: int) -> np.ndarray:
    """The sorted indices of every item a run with `settings` over `data` on `world` processes will draw (all
    of them once it spans an epoch): what a cache computed before training needs to cover."""
    plan = make_plan(data, settings, world)
    if plan.micro_batches_per_epoch == 0:
        return np.arange(0)
    used, steps, epoch = [], plan.total_steps, 0
    while steps > 0:
        for step in plan.steps_of_epoch(epoch)[:steps]:
            used.extend(step)
        steps -= plan.steps_per_epoch
        epoch += 1
    return np.unique(np.concatenate(used)) if used else np.arange(0)


def shard(indices: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's contiguous slice of a global micro-batch."""
    return np.array_split(indices, world)[rank]
