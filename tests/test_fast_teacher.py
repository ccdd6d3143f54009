"""The intermediate stage's teacher on a fast path (distill.TeacherRunner): the static (paddle.jit.to_static)
and inference (Paddle Inference, oneDNN) runtimes return the states of the plain eager forward pass, for
BERT and ERNIE teachers, padded batches of changing lengths and layer maps of every depth; the loss computed
from them is the eager loss."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from tinybert.distillation import distill
from tinybert import errors
from tinybert.models import modeling

VOCAB = 60
SMALL = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
FAST = ("static", "inference")
TOL = dict(rtol=1e-5, atol=1e-5)


def randomise(model: paddle.nn.Layer, seed: int) -> None:
    """Every weight random and large enough to matter (LayerNorm scales near 1)."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        value = rng.normal(0.0, 0.2, p.shape) + (1.0 if "norm" in name and name.endswith("weight") else 0.0)
        p.set_value(value.astype("float32"))


def frozen(model: modeling.PretrainedBert) -> modeling.PretrainedBert:
    model.eval()
    for p in model.parameters():
        p.stop_gradient = True
    return model


@pytest.fixture(scope="module", params=["bert", "ernie"])
def teacher(request) -> modeling.PretrainedBert:
    paddle.seed(0)
    if request.param == "bert":
        model = modeling.BertForSequenceClassification(modeling.BertConfig(**SMALL))
    else:  # ERNIE 3.0: relu, the [PAD] row read as zeros, task-type embeddings
        config = modeling.ErnieConfig(**SMALL, hidden_act="relu", type_vocab_size=4, use_task_id=True)
        model = modeling.ErnieForSequenceClassification(config)
    randomise(model, 1)
    return frozen(model)


def batch(batch_size: int, length: int, seed: int) -> dict[str, paddle.Tensor]:
    """Rows of different real lengths, padded with id 0 to `length`; two segments of token types."""
    rng = np.random.default_rng(seed)
    real = rng.integers(2, length + 1, batch_size)
    real[0] = length  # one row fills the batch, as collate pads to the longest
    mask = (np.arange(length)[None, :] < real[:, None]).astype("int64")
    ids = rng.integers(5, VOCAB, (batch_size, length)) * mask
    types = ((np.arange(length)[None, :] >= real[:, None] // 2) * mask).astype("int64")
    return {"input_ids": paddle.to_tensor(ids), "token_type_ids": paddle.to_tensor(types),
            "attention_mask": paddle.to_tensor(mask)}


def reference(teacher: modeling.PretrainedBert, inputs: dict[str, paddle.Tensor]) -> modeling.ModelOutput:
    """The teacher's full eager forward pass, every layer: the states the runtimes must reproduce."""
    with paddle.no_grad():
        return teacher.base(**inputs, output_hidden_states=True, output_attention_scores=True)


def assert_states_equal(states: distill.TeacherStates, ref: modeling.ModelOutput, hidden, attn) -> None:
    assert sorted(states.hidden_states) == hidden and sorted(states.attention_scores) == attn
    for i in hidden:
        np.testing.assert_allclose(states.hidden_states[i].numpy(), ref.hidden_states[i].numpy(), **TOL)
    for i in attn:
        np.testing.assert_allclose(states.attention_scores[i].numpy(), ref.attention_scores[i].numpy(), **TOL)


@pytest.mark.parametrize("runtime", FAST)
def test_fast_runtime_states_equal_the_eager_forward_at_changing_padded_lengths(teacher, runtime):
    run = distill.TeacherRunner(teacher, [2, 4], {}, runtime)
    for length, batch_size in ((12, 3), (7, 5), (12, 2)):  # new lengths and batch sizes: one graph serves all
        inputs = batch(batch_size, length, seed=length + batch_size)
        states = run(inputs)
        assert states.hidden_states[4].shape == [batch_size, length, 32]
        assert states.attention_scores[3].shape == [batch_size, 4, length, length]
        assert_states_equal(states, reference(teacher, inputs), hidden=[0, 2, 4], attn=[1, 3])
        assert all(t.stop_gradient for t in states.hidden_states.values())


@pytest.mark.parametrize("runtime", distill.TEACHER_RUNTIMES)
@pytest.mark.parametrize("layer_map, depth", [([1, 2], 2), ([1, 3, 4], 4)])  # shallower than, as deep as
def test_the_teacher_runs_only_as_deep_as_the_layer_map_needs(teacher, runtime, layer_map, depth):
    run = distill.TeacherRunner(teacher, layer_map, {"emb": 1, "hidden": 1, "attn": 1}, runtime)
    assert run.depth == depth
    inputs = batch(3, 9, seed=4)
    hidden, attn = sorted({0, *layer_map}), sorted({n - 1 for n in layer_map})
    assert_states_equal(run(inputs), reference(teacher, inputs), hidden, attn)


def test_eager_runtime_skips_the_layers_below_the_map(teacher):
    calls = []
    hooks = [layer.register_forward_post_hook(lambda layer, inp, out, i=i: calls.append(i))
             for i, layer in enumerate(teacher.base.encoder.layers)]
    try:
        distill.TeacherRunner(teacher, [1, 2], {}, "eager")(batch(2, 6, seed=1))
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == [0, 1]


def test_a_weight_of_zero_computes_nothing_for_its_term():
    assert distill.needed_states([3, 6, 9, 12], {}) == ([0, 3, 6, 9, 12], [2, 5, 8, 11])
    assert distill.needed_states([3, 6], {"emb": 0}) == ([3, 6], [2, 5])
    assert distill.needed_states([3, 6], {"hidden": 0, "attn": 0}) == ([0], [])
    assert distill.needed_states([3, 6], {"attn": 0, "emb": 0}) == ([3, 6], [])


def test_missing_token_types_and_mask_take_the_models_defaults(teacher):
    inputs = batch(4, 8, seed=3)
    only_ids = {"input_ids": inputs["input_ids"]}  # pad id 0 marks the padding
    for runtime in FAST:
        states = distill.TeacherRunner(teacher, [2, 4], {}, runtime)(only_ids)
        assert_states_equal(states, reference(teacher, only_ids), hidden=[0, 2, 4], attn=[1, 3])


def student_of(teacher: modeling.PretrainedBert) -> modeling.PretrainedBert:
    config = modeling.BertConfig(**{**SMALL, "num_hidden_layers": 2, "hidden_size": 16, "intermediate_size": 32,
                                    "fit_size": teacher.config.hidden_size})
    paddle.seed(2)
    student = modeling.TinyBertForSequenceClassification(config)
    student.eval()  # no dropout: runs differ only by the teacher's runtime
    return student


@pytest.mark.parametrize("runtime", FAST)
def test_intermediate_loss_with_a_fast_teacher_equals_the_eager_loss(teacher, runtime):
    student = student_of(teacher)
    projection = distill.fit_projection(student, teacher)
    weights = {"emb": 1.0, "hidden": 0.5, "attn": 2.0}
    eager = distill.intermediate_loss_fn(teacher, [2, 4], projection, weights, teacher_runtime="eager")
    fast = distill.intermediate_loss_fn(teacher, [2, 4], projection, weights, teacher_runtime=runtime)
    for length in (10, 6):
        inputs = batch(4, length, seed=length)
        loss, logs = fast(student, inputs)
        want, want_logs = eager(student, inputs)
        np.testing.assert_allclose(float(loss), float(want), **TOL)
        assert set(logs) == set(want_logs) == {"loss_emb", "loss_hidden", "loss_attn"}
        for key, value in want_logs.items():
            np.testing.assert_allclose(float(logs[key]), float(value), **TOL)
    student.clear_gradients()
    loss.backward()  # the student learns from the fast teacher's states; the teacher gets nothing
    assert float(student.tinybert.encoder.layers[0].linear1.weight.grad.abs().sum()) > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_static_runtime_leaves_the_teacher_usable_eagerly(teacher):
    """Tracing must not change the teacher: its own forward still gives the same logits afterwards."""
    inputs = batch(3, 8, seed=9)
    with paddle.no_grad():
        before = teacher(**inputs).logits.numpy()
        distill.TeacherRunner(teacher, [2, 4], {}, "inference")(inputs)
        distill.TeacherRunner(teacher, [2, 4], {}, "static")(inputs)
        np.testing.assert_array_equal(teacher(**inputs).logits.numpy(), before)
    assert not teacher.training


def test_unknown_runtime_is_a_user_error(teacher):
    with pytest.raises(errors.UserError, match="--teacher_runtime jit: choose from eager, static, inference"):
        distill.TeacherRunner(teacher, [2, 4], {}, "jit")
