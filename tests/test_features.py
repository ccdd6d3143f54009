"""features.py: batched tokenization, the one collate (padding) for every caller, the training batch
order (shuffle, length buckets) and the inference order (by length)."""
from __future__ import annotations

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
