"""Each TinyBERT loss against a plain numpy formula of the paper's equation."""
from __future__ import annotations

from tinybert import errors
from types import SimpleNamespace

import numpy as np
import paddle
import pytest


from losses import (attention_mse, embedding_mse, hidden_mse, intermediate_loss, prediction_loss,
                    prediction_mse, soft_cross_entropy)

rng = np.random.default_rng(0)


def t(a: np.ndarray, stop_gradient: bool = True) -> paddle.Tensor:
    x = paddle.to_tensor(a)
    x.stop_gradient = stop_gradient
    return x


def np_log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("T", [1.0, 2.0, 0.5])
def test_soft_cross_entropy_matches_numpy(T):
    zs, zt = rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(5, 3)).astype("float32")
    expected = np.mean(-(np.exp(np_log_softmax(zt / T)) * np_log_softmax(zs / T)).sum(-1))
    assert float(soft_cross_entropy(t(zs), t(zt), T)) == pytest.approx(expected, rel=1e-5)


def test_soft_cross_entropy_is_num_classes_times_the_original_codes_mean():
    zs, zt = rng.normal(size=(4, 2)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    original = np.mean(-np.exp(np_log_softmax(zt)) * np_log_softmax(zs))  # mean over batch and classes
    assert float(soft_cross_entropy(t(zs), t(zt), 1.0)) == pytest.approx(2 * original, rel=1e-5)


def test_prediction_mse_and_regression_gradient():
    zs = rng.normal(size=(6, 1)).astype("float32")
    zt = rng.normal(size=(6, 1)).astype("float32")
    assert float(prediction_mse(t(zs), t(zt))) == pytest.approx(np.mean((zs - zt) ** 2), rel=1e-5)
    student = t(zs, stop_gradient=False)
    # soft cross-entropy over one logit: constant, no gradient (the seed's STS-B bug) ...
    soft_cross_entropy(student, t(zt), 1.0).backward()
    assert float(np.abs(student.grad.numpy()).max()) == 0.0
    student.clear_gradient()
    # ... the regression prediction loss has one.
    loss, logs = prediction_loss(student, t(zt), is_regression=True)
    loss.backward()
    assert np.abs(student.grad.numpy()).max() > 0
    assert set(logs) == {"loss_pred"}


def test_prediction_loss_hard_label_term():
    zs, zt = rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")
    labels = np.array([0, 2, 1, 2], dtype="int64")
    hard = -np.mean(np_log_softmax(zs)[np.arange(4), labels])
    soft = float(soft_cross_entropy(t(zs), t(zt), 2.0))
    loss, logs = prediction_loss(t(zs), t(zt), 2.0, labels=t(labels), alpha=0.5)
    assert float(loss) == pytest.approx(soft + 0.5 * hard, rel=1e-5)
    assert float(logs["loss_hard"]) == pytest.approx(hard, rel=1e-5)


def test_embedding_and_hidden_mse_with_projection():
    hs = rng.normal(size=(2, 5, 8)).astype("float32")
    ht = rng.normal(size=(2, 5, 12)).astype("float32")
    W = rng.normal(size=(8, 12)).astype("float32")
    b = rng.normal(size=(12,)).astype("float32")
    proj = paddle.nn.Linear(8, 12)
    proj.weight.set_value(W)
    proj.bias.set_value(b)
    expected = np.mean((hs @ W + b - ht) ** 2)
    assert float(hidden_mse(t(hs), t(ht), proj)) == pytest.approx(expected, rel=1e-5)
    assert float(embedding_mse(t(hs), t(ht), proj)) == pytest.approx(expected, rel=1e-5)
    same = rng.normal(size=(2, 5, 12)).astype("float32")
    assert float(hidden_mse(t(same), t(ht))) == pytest.approx(np.mean((same - ht) ** 2), rel=1e-5)
    with pytest.raises(ValueError, match="widths differ.*fit_dense"):  # a bug: fit_projection gives every W_h
        hidden_mse(t(hs), t(ht))


def np_attention_mse(s: np.ndarray, te: np.ndarray, mask: np.ndarray) -> float:
    """1/h sum_i MSE(A_i^S, A_i^T) over (query, key) pairs with both positions real."""
    B, h, S, _ = s.shape
    per_head = []
    for i in range(h):
        sq = [(s[b, i, q, k] - te[b, i, q, k]) ** 2
              for b in range(B) for q in range(S) for k in range(S) if mask[b, q] and mask[b, k]]
        per_head.append(np.mean(sq))
    return float(np.mean(per_head))


def test_attention_mse_without_padding_is_plain_mse():
    s, te = rng.normal(size=(2, 3, 4, 4)).astype("float32"), rng.normal(size=(2, 3, 4, 4)).astype("float32")
    plain = np.mean((s - te) ** 2)
    assert float(attention_mse(t(s), t(te))) == pytest.approx(plain, rel=1e-5)
    ones = np.ones((2, 4), dtype="int64")
    assert float(attention_mse(t(s), t(te), t(ones))) == pytest.approx(plain, rel=1e-5)


def test_attention_mse_ignores_padded_queries_and_keys():
    s, te = rng.normal(size=(3, 2, 5, 5)).astype("float32"), rng.normal(size=(3, 2, 5, 5)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype="int64")
    expected = np_attention_mse(s, te, mask)
    assert float(attention_mse(t(s), t(te), t(mask))) == pytest.approx(expected, rel=1e-5)
    assert float(attention_mse(t(s), t(te), t(mask.astype(bool)))) == pytest.approx(expected, rel=1e-5)
    # whatever sits at padded rows/columns does not change the loss
    s2 = s.copy()
    s2[1, :, 3:, :] = 1e4
    s2[2, :, :, 2:] = -1e4
    assert float(attention_mse(t(s2), t(te), t(mask))) == pytest.approx(expected, rel=1e-5)


def test_attention_mse_head_mismatch_is_a_clear_error():
    """A programming error here: users are told of differing head counts by DistillConfig.check_models."""
    with pytest.raises(ValueError, match=r"shapes differ: student \[1, 2, 3, 3\], teacher \[1, 4, 3, 3\]"):
        attention_mse(t(np.zeros((1, 2, 3, 3), "float32")), t(np.zeros((1, 4, 3, 3), "float32")))


def fake_output(L: int, H: int, heads: int, B: int = 2, S: int = 4, stop_gradient: bool = True):
    return SimpleNamespace(
        hidden_states=tuple(t(rng.normal(size=(B, S, H)).astype("float32"), stop_gradient) for _ in range(L + 1)),
        attention_scores=tuple(t(rng.normal(size=(B, heads, S, S)).astype("float32"), stop_gradient)
                               for _ in range(L)))


def test_intermediate_loss_pairs_layers_by_the_map():
    stu, tea = fake_output(2, 6, 2), fake_output(4, 6, 2)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], dtype="int64")
    total, logs = intermediate_loss(stu, tea, [2, 4], t(mask), weights={"attn": 0.5})
    h = lambda x: x.numpy()  # noqa: E731
    emb = np.mean((h(stu.hidden_states[0]) - h(tea.hidden_states[0])) ** 2)
    hid = sum(np.mean((h(stu.hidden_states[m]) - h(tea.hidden_states[n])) ** 2) for m, n in [(1, 2), (2, 4)])
    att = sum(np_attention_mse(h(stu.attention_scores[m - 1]), h(tea.attention_scores[n - 1]), mask)
              for m, n in [(1, 2), (2, 4)])
    assert float(logs["loss_emb"]) == pytest.approx(emb, rel=1e-5)
    assert float(logs["loss_hidden"]) == pytest.approx(hid, rel=1e-5)
    assert float(logs["loss_attn"]) == pytest.approx(att, rel=1e-5)
    assert float(total) == pytest.approx(emb + hid + 0.5 * att, rel=1e-5)
    total, logs = intermediate_loss(stu, tea, [2, 4], t(mask), weights={"emb": 0, "attn": 0})
    assert set(logs) == {"loss_hidden"} and float(total) == pytest.approx(hid, rel=1e-5)


def test_intermediate_loss_per_layer_projections_use_the_students_state_index():
    """A list of projections: W_m for student state m (PaddleNLP v2's fit_denses[m]), whatever g(m) is."""
    stu, tea = fake_output(2, 4, 2), fake_output(4, 6, 2)
    projections = [paddle.nn.Linear(4, 6) for _ in range(3)]
    total, logs = intermediate_loss(stu, tea, [2, 4], None, projections, weights={"attn": 0})
    h = lambda x: x.numpy()  # noqa: E731
    W = lambda m, x: x @ projections[m].weight.numpy() + projections[m].bias.numpy()  # noqa: E731
    emb = np.mean((W(0, h(stu.hidden_states[0])) - h(tea.hidden_states[0])) ** 2)
    hid = sum(np.mean((W(m, h(stu.hidden_states[m])) - h(tea.hidden_states[n])) ** 2) for m, n in [(1, 2), (2, 4)])
    assert float(logs["loss_emb"]) == pytest.approx(emb, rel=1e-5)
    assert float(logs["loss_hidden"]) == pytest.approx(hid, rel=1e-5)
    shared, _ = intermediate_loss(stu, tea, [2, 4], None, projections[1], weights={"attn": 0})
    listed, _ = intermediate_loss(stu, tea, [2, 4], None, [projections[1]] * 3, weights={"attn": 0})
    assert float(shared) == pytest.approx(float(listed), rel=1e-6)  # one callable = the same W for every state


def test_pred_weight_scales_the_soft_term_and_zero_leaves_the_hard_label_loss():
    """pred_weight 0 with alpha 1 is fine-tuning on the labels (the paper's w/o Pred ablation)."""
    rng = np.random.default_rng(3)
    zs, zt = rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(5, 3)).astype("float32")
    labels = np.array([0, 2, 1, 1, 0])
    soft, _ = prediction_loss(t(zs), t(zt), 2.0)
    only_labels, logs = prediction_loss(t(zs), t(zt), 2.0, labels=t(labels), alpha=1.0, pred_weight=0.0)
    log_probs = zs - np.log(np.exp(zs).sum(-1, keepdims=True))
    hard = -log_probs[np.arange(5), labels].mean()
    assert float(only_labels) == pytest.approx(hard, rel=1e-5)
    assert float(logs["loss_pred"]) == pytest.approx(float(soft), rel=1e-5)  # still logged, not trained on
    half, _ = prediction_loss(t(zs), t(zt), 2.0, pred_weight=0.5)
    assert float(half) == pytest.approx(0.5 * float(soft), rel=1e-5)
    with pytest.raises(ValueError, match="no loss left"):  # DistillConfig refuses these weights
        prediction_loss(t(zs), t(zt), 2.0, pred_weight=0.0)


def test_a_wrong_call_is_a_value_error_not_a_user_error():
    """losses.py is tensor code: a call it cannot serve is a bug (ValueError, with its traceback); the
    flags that would lead there are refused earlier, with the flag named (DistillConfig)."""
    stu, tea = fake_output(1, 4, 2), fake_output(2, 4, 2)
    with pytest.raises(ValueError, match="all intermediate loss weights are 0") as e:
        intermediate_loss(stu, tea, [2], None, weights={"emb": 0, "hidden": 0, "attn": 0})
    assert not isinstance(e.value, errors.UserError)
