"""features.py: batched tokenization, the one collate (padding) for every caller, the training batch
order (shuffle, length buckets), a run's batching plan, and the inference order (by length)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tinybert.data import features
from tinybert.data import tasks
from tinybert.data.tasks import Example


@pytest.fixture
def tokenizer(vocab_dir):
    from tinybert.data.tokenization import BertTokenizer, read_vocab
    # Built from vocab.txt directly: from_pretrained also loads modeling (and paddle, ~2 s) for its cache rules.
    return BertTokenizer(read_vocab(vocab_dir / "vocab.txt"), do_lower_case=True)


def test_encode_examples_batched_with_pairs_and_labels(tokenizer):
    spec = tasks.get_task("RTE")
    examples = [Example("the dog was good", "it is", "entailment", "0", 2),
                Example("a cat", "the film was not very good", "not_entailment", "1", 3),
                Example("the movie", "the plot", "entailment", "2", 4)]
    data = features.encode_examples(tokenizer, examples, max_seq_length=8, spec=spec, chunk_size=2)
    direct = tokenizer([e.text_a for e in examples], [e.text_b for e in examples], max_seq_length=8)
    assert len(data) == 3
    for i in range(3):
        assert data[i]["input_ids"].tolist() == direct["input_ids"][i]
        assert data[i]["token_type_ids"].tolist() == direct["token_type_ids"][i]
        assert data[i]["input_ids"].dtype == np.int64
    assert data.lengths.tolist() == [len(ids) for ids in direct["input_ids"]]
    assert max(data.lengths) <= 8
    assert [int(data[i]["label"]) for i in range(3)] == [0, 1, 0]
    assert data[0]["label"].dtype == np.int64


def test_encode_regression_and_unlabelled(tokenizer):
    stsb = tasks.get_task("sts-b")
    data = features.encode_examples(tokenizer, [Example("a dog", "a cat", 3.8, "0", 2)], 16, stsb)
    assert data[0]["label"].dtype == np.float32 and float(data[0]["label"]) == pytest.approx(3.8)
    test = features.encode_examples(tokenizer, [Example("a dog", None, None, "0", 2)], 16, tasks.get_task("sst2"))
    assert "label" not in test[0] and test[0]["input_ids"].tolist() == [2] + tokenizer.convert_tokens_to_ids(
        ["a", "dog"]) + [3]


def test_collate_pads_to_the_longest_in_the_batch():
    items = [{"input_ids": np.array([2, 7, 3]), "token_type_ids": np.array([0, 0, 0]), "label": np.int64(1)},
             {"input_ids": np.array([2, 7, 8, 9, 3]), "token_type_ids": np.array([0, 0, 0, 1, 1]),
              "label": np.int64(0)}]
    batch = features.collate(items, pad_token_id=0)
    np.testing.assert_array_equal(batch["input_ids"], [[2, 7, 3, 0, 0], [2, 7, 8, 9, 3]])
    np.testing.assert_array_equal(batch["token_type_ids"], [[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]])
    np.testing.assert_array_equal(batch["attention_mask"], [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(batch["label"], [1, 0])
    assert all(batch[k].dtype == np.int64 for k in ("input_ids", "token_type_ids", "attention_mask", "label"))
    assert features.collate(items[:1], pad_token_id=0)["input_ids"].shape == (1, 3)  # not max_seq_length


def test_batch_indices_deterministic_complete_and_bucketed():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 128, size=1000)
    plain = features.batch_indices(lengths, 32, shuffle=False)
    assert plain[0] == list(range(32)) and len(plain[-1]) == 1000 - 31 * 32
    a = features.batch_indices(lengths, 32, shuffle=True, seed=1, epoch=0)
    assert a == features.batch_indices(lengths, 32, shuffle=True, seed=1, epoch=0)
    assert a != features.batch_indices(lengths, 32, shuffle=True, seed=1, epoch=1)
    assert a != features.batch_indices(lengths, 32, shuffle=True, seed=2, epoch=0)
    for batches in (a, features.batch_indices(lengths, 32, shuffle=True, seed=1, epoch=0, bucket=True),
                    features.batch_indices(lengths, 32, shuffle=False, bucket=True)):
        assert sorted(i for b in batches for i in b) == list(range(1000))  # every example exactly once
        assert all(len(b) == 32 for b in batches[:-1] if len(b) != 1000 % 32)

    def padded_tokens(batches):
        return sum(len(b) * lengths[b].max() for b in batches)

    bucketed = features.batch_indices(lengths, 32, shuffle=True, seed=1, epoch=0, bucket=True)
    assert padded_tokens(bucketed) < 0.7 * padded_tokens(a)
    assert bucketed == features.batch_indices(lengths, 32, shuffle=True, seed=1, epoch=0, bucket=True)


def test_sst2_train_real_file_tokenizes_and_batches(glue_dir, tokenizer):
    spec = tasks.get_task("sst-2")
    examples = tasks.read_glue_examples(glue_dir / "SST-2" / "dev.tsv", spec)
    data = features.encode_examples(tokenizer, examples, 64, spec)
    batches = features.batch_indices(data.lengths, 32, shuffle=True, seed=0, bucket=True)
    assert sum(len(b) for b in batches) == 872
    batch = features.collate([data[i] for i in batches[0]], tokenizer.pad_token_id)
    assert batch["input_ids"].shape[1] == data.lengths[batches[0]].max() <= 64


# ------------------------------------------------------------------------ collate for every caller


def test_collate_of_items_without_token_types_pads_with_zero_and_adds_the_mask():
    """The trainer's items (input_ids and a label only): what default_collate did."""
    items = [{"input_ids": np.array([5, 6, 7], dtype=np.int64), "label": np.int64(1)},
             {"input_ids": np.array([8], dtype=np.int64), "label": np.int64(0)}]
    batch = features.collate(items)
    assert set(batch) == {"input_ids", "label", "attention_mask"}
    np.testing.assert_array_equal(batch["input_ids"], [[5, 6, 7], [8, 0, 0]])
    np.testing.assert_array_equal(batch["attention_mask"], [[1, 1, 1], [1, 0, 0]])
    assert batch["attention_mask"].dtype == np.int64


def test_collate_stacks_fixed_shape_values_and_keeps_a_given_mask():
    items = [{"input_ids": np.array([2, 9, 3]), "token_type_ids": np.array([0, 0, 0]),
              "teacher_logits": np.array([0.5, -1.0], dtype=np.float32), "label": np.float32(2.5)},
             {"input_ids": np.array([2, 3]), "token_type_ids": np.array([0, 0]),
              "teacher_logits": np.array([1.5, 2.0], dtype=np.float32), "label": np.float32(0.5)}]
    batch = features.collate(items, pad_token_id=7)
    np.testing.assert_array_equal(batch["input_ids"], [[2, 9, 3], [2, 3, 7]])  # the tokenizer's pad id
    np.testing.assert_array_equal(batch["token_type_ids"], [[0, 0, 0], [0, 0, 0]])
    assert batch["teacher_logits"].shape == (2, 2) and batch["teacher_logits"].dtype == np.float32
    assert batch["label"].dtype == np.float32 and batch["label"].tolist() == [2.5, 0.5]
    own = [{"input_ids": np.array([1, 2]), "attention_mask": np.array([1, 0])},
           {"input_ids": np.array([3]), "attention_mask": np.array([1])}]
    np.testing.assert_array_equal(features.collate(own)["attention_mask"], [[1, 0], [1, 0]])


def test_collate_of_equal_lengths_is_a_plain_stack():
    items = [{"input_ids": [2, 5, 3]}, {"input_ids": [2, 6, 3]}]
    batch = features.collate(items, pad_token_id=0)
    assert batch["input_ids"].dtype == np.int64 and batch["attention_mask"].all()


# ---------------------------------------------------------------------------- inference order


def test_inference_batches_sort_by_length_and_cover_every_example_once():
    lengths = [5, 2, 9, 2, 7, 1]
    order = features.length_order(lengths)
    assert order.tolist() == [5, 1, 3, 0, 4, 2]  # shortest first, ties in their original order
    batches = features.inference_batches(lengths, 4)
    assert batches == [[5, 1, 3, 0], [4, 2]]
    assert features.batch_indices(lengths, 4, shuffle=False, bucket=True) == batches
    assert features.inference_batches([], 4) == []
    results = np.zeros(len(lengths))
    for ids in batches:  # results go back where they belong
        results[ids] = np.asarray(lengths)[ids] * 10
    assert results.tolist() == [50, 20, 90, 20, 70, 10]


# ------------------------------------------------------------------------------------------ training plans

@dataclass(frozen=True)
class Settings:
    """What features.make_plan reads from a run's settings (trainer.TrainConfig has these fields)."""
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    seed: int = 42
    num_train_epochs: float = 3
    max_steps: int = -1
    group_by_length: bool = False


class Items(list):
    """n items of lengths 3-8 with input_ids; `.lengths` as features.EncodedDataset has it."""

    def __init__(self, n: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        super().__init__({"input_ids": np.arange(int(rng.integers(3, 9)))} for _ in range(n))

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(item["input_ids"]) for item in self])


def test_an_epoch_order_is_a_function_of_seed_and_epoch_only():
    a = features.epoch_order(50, 7, 2)
    assert sorted(a.tolist()) == list(range(50))
    np.testing.assert_array_equal(a, features.epoch_order(50, 7, 2))
    assert not np.array_equal(a, features.epoch_order(50, 7, 3))


def test_a_plan_splits_micro_batches_among_processes_and_groups_them_for_accumulation():
    settings = Settings(batch_size=2, gradient_accumulation_steps=2, seed=1)
    plan = features.make_plan(Items(22), settings, 2)  # global batches of 4: 5 full, one of 2
    assert (plan.global_batch, plan.micro_batches_per_epoch, plan.steps_per_epoch, plan.total_steps) == (4, 6, 3, 9)
    steps = plan.steps_of_epoch(0)
    assert [len(step) for step in steps] == [2, 2, 2]
    micro = [b for step in steps for b in step]
    np.testing.assert_array_equal(np.concatenate(micro), features.epoch_order(22, 1, 0))  # every item once
    # A last micro-batch of 1 item cannot give both processes one: dropped.
    short = features.make_plan(Items(21), settings, 2)
    assert short.micro_batches_per_epoch == 5
    assert len(np.concatenate([b for step in short.steps_of_epoch(0) for b in step])) == 20
    np.testing.assert_array_equal(features.shard(np.arange(5), 0, 2), [0, 1, 2])
    np.testing.assert_array_equal(features.shard(np.arange(5), 1, 2), [3, 4])


def test_data_lengths_from_the_dataset_or_counted():
    items = Items(5)
    np.testing.assert_array_equal(features.data_lengths(items), items.lengths)
    np.testing.assert_array_equal(features.data_lengths(list(items)), items.lengths)


@pytest.mark.parametrize("grouped", [False, True])
def test_items_used_covers_exactly_the_steps_run(grouped):
    data = Items(40)
    used = features.items_used(data, Settings(batch_size=4, max_steps=2, seed=3, group_by_length=grouped), 1)
    plan = features.Plan(40, 4, 1, 1, 3, 3, 2, data.lengths, grouped)
    expected = np.unique(np.concatenate([b for step in plan.steps_of_epoch(0)[:2] for b in step]))
    np.testing.assert_array_equal(used, expected)
    assert len(used) == 8
    whole = Settings(batch_size=4, num_train_epochs=1.5, seed=3, group_by_length=grouped)
    np.testing.assert_array_equal(features.items_used(data, whole, 1), np.arange(40))
    # Two processes draw global batches of 8: two steps use 16 items.
    assert len(features.items_used(data, Settings(batch_size=4, max_steps=2, seed=3, group_by_length=grouped), 2)) == 16


def test_length_grouped_batches_are_random_complete_and_barely_padded():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 60, size=3000)
    grouped = features.Plan(3000, 32, 1, 1, 7, 1, -1, lengths, True)
    plain = features.Plan(3000, 32, 1, 1, 7, 1, -1, lengths, False)

    def padded_tokens(plan, epoch):
        return sum(len(b) * lengths[b].max() for step in plan.steps_of_epoch(epoch) for b in step)

    epoch0 = [b for step in grouped.steps_of_epoch(0) for b in step]
    assert sorted(np.concatenate(epoch0).tolist()) == list(range(3000))  # every item once
    assert len(epoch0) == plain.micro_batches_per_epoch
    # The data's own tokens are lengths.sum(); random batches pad to about their longest (~1.8x here).
    assert padded_tokens(grouped, 0) < 1.1 * lengths.sum()
    assert padded_tokens(plain, 0) > 1.6 * lengths.sum()
    again = [b for step in grouped.steps_of_epoch(0) for b in step]
    assert all((a == b).all() for a, b in zip(epoch0, again))  # a function of (seed, epoch): exact resume
    epoch1 = [b for step in grouped.steps_of_epoch(1) for b in step]
    assert not all(len(a) == len(b) and (a == b).all() for a, b in zip(epoch0, epoch1))
    # Not sorted overall: consecutive batches' lengths are unrelated.
    means = [lengths[b].mean() for b in epoch0]
    assert abs(np.corrcoef(means[:-1], means[1:])[0, 1]) < 0.2
