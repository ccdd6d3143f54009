"""The TinyBERT distillation losses (Jiao et al. 2020, "TinyBERT: Distilling BERT for Natural Language
Understanding", Sec. 3.1), one function per equation.

    L_embd = MSE(E^S W_e, E^T)                          (Eq. 9)   embedding_mse
    L_hidn = MSE(H^S W_h, H^T)                          (Eq. 8)   hidden_mse
    L_attn = 1/h sum_{i=1..h} MSE(A_i^S, A_i^T)         (Eq. 7)   attention_mse   (A: pre-softmax scores)
    L_pred = CE(z^T / t, z^S / t)                       (Eq. 10)  soft_cross_entropy
    L_model = sum_m L_layer(S_m, T_g(m))                (Eq. 11)  intermediate_loss (layers 0..M)

Superscript S is the student, T the teacher; W_e and W_h are the student's learnable projections to the
teacher's width: one for every state (`fit_dense`, as in the released code one projection serves both), or
one per student state (`fit_denses[m]` for state m, as PaddleNLP's v2 TinyBERT).
Regression tasks replace L_pred with `prediction_mse` (a softmax over one logit is constant).
Every MSE is a mean over elements, so loss values do not grow with batch size or sequence length.
"""
from __future__ import annotations

from typing import Callable, Sequence

import paddle
import paddle.nn.functional as F

Tensor = paddle.Tensor


def soft_cross_entropy(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """L_pred = CE(z^T/t, z^S/t): mean over the batch of -sum_c softmax(z^T/t)_c * log_softmax(z^S/t)_c.

    Scale: the original TinyBERT code takes `.mean()` over batch AND classes, so its value is this one
    divided by the number of classes C (for SST-2 ours is twice as large). Under Adam, which is nearly
    invariant to the loss scale, this matters only where the term is mixed with another (--alpha).
    Hinton-style KD multiplies by t^2 to keep gradient sizes equal across temperatures; the paper does not,
    and neither do we: at temperature t this loss is 1/t^2 of t^2-scaled KD (the same at the recipe's t = 1).
    Its gradient equals that of KL(teacher || student), which differs by the teacher's entropy, a constant.
    """
    teacher_probs = F.softmax(teacher_logits / temperature, axis=-1)
    student_log_probs = F.log_softmax(student_logits / temperature, axis=-1)
    return -(teacher_probs * student_log_probs).sum(axis=-1).mean()


def prediction_mse(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Prediction-layer loss for regression (STS-B): MSE between student and teacher outputs.

    Soft cross-entropy over a single logit is softmax([z]) = [1] for both, a constant with zero gradient.
    """
    return F.mse_loss(student_logits, teacher_logits)


def embedding_mse(student_emb: Tensor, teacher_emb: Tensor,
                  projection: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """L_embd = MSE(E^S W_e, E^T), mean over all elements; `projection` is W_e (student fit_dense).

    Without a projection the widths must match.
    """
    return _projected_mse(student_emb, teacher_emb, projection, "embedding")


def hidden_mse(student_hidden: Tensor, teacher_hidden: Tensor,
               projection: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """L_hidn = MSE(H^S W_h, H^T), mean over all elements; `projection` is W_h (student fit_dense).

    Padded positions are included, as in the paper and the released code (their hidden states are still
    well defined: padding only changes what real tokens attend to).
    """
    return _projected_mse(student_hidden, teacher_hidden, projection, "hidden state")


def _projected_mse(student: Tensor, teacher: Tensor, projection, what: str) -> Tensor:
    if projection is not None:
        student = projection(student)
    if student.shape[-1] != teacher.shape[-1]:  # distill.fit_projection gives every narrower student a W_h
        raise ValueError(f"{what} widths differ (student {student.shape[-1]}, teacher {teacher.shape[-1]}): "
                        f"the student needs fit_dense with fit_size = {teacher.shape[-1]}")
    return F.mse_loss(student, teacher)


def attention_mse(student_scores: Tensor, teacher_scores: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """L_attn = 1/h sum_i MSE(A_i^S, A_i^T) on pre-softmax scores [B, h, S, S], over real positions only.

    A pair (query q, key k) counts when both q and k are real tokens (attention_mask 1 = real, 0 = pad);
    each head's MSE is the mean over all counted pairs of the batch, then heads are averaged. With no
    padding (or attention_mask None) this equals the plain element-wise MSE.

    Scale against the original code: it feeds scores with the -10000 padding mask already added, zeroes
    every value <= -100 (the padded keys) and averages over all B*h*S*S elements, padded query rows
    included; those rows and the zeroed keys add to the count, so its loss is smaller on padded batches and
    the padded query rows still pull on the student. Here neither happens.
    """
    if student_scores.shape != teacher_scores.shape:  # head counts: DistillConfig.check_models tells the user
        raise ValueError(f"attention score shapes differ: student {list(student_scores.shape)}, "
                         f"teacher {list(teacher_scores.shape)}")
    # float32 even under AMP: sums over B*h*S*S squared scores overflow float16.
    squared = (student_scores.astype("float32") - teacher_scores.astype("float32")) ** 2
    if attention_mask is None:
        return squared.mean()
    real = attention_mask.astype(squared.dtype)               # [B, S]
    pairs = real.unsqueeze([1, 3]) * real.unsqueeze([1, 2])   # [B, 1, S, S]: query real AND key real
    num_heads = squared.shape[1]
    return (squared * pairs).sum() / (pairs.sum() * num_heads)


def intermediate_loss(student_out, teacher_out, layer_map: Sequence[int], attention_mask: Tensor | None,
                      projection: Callable[[Tensor], Tensor] | Sequence[Callable[[Tensor], Tensor]] | None = None,
                      weights: dict[str, float] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """L_model over layers 0..M (Eq. 11): L_embd + sum_m L_hidn(m) + sum_m L_attn(m).

    student_out/teacher_out carry `hidden_states` (L+1, [0] = embeddings) and `attention_scores` (L);
    student layer m (1-based) learns from teacher layer g(m) = layer_map[m-1]: hidden_states[m] against
    hidden_states[g(m)] and attention_scores[m-1] against attention_scores[g(m)-1].
    projection: one W for every student state, a list or tuple with W_m for student state m (W_0 = W_e), or None.
    weights: multipliers for the "emb", "hidden" and "attn" terms (default 1 each; 0 skips a term).
    Returns the total and a dict of each summed term (detached tensors: the trainer reads them at logging
    steps only, so a step does not wait for the device).
    """
    w = {"emb": 1.0, "hidden": 1.0, "attn": 1.0, **(weights or {})}
    if not isinstance(projection, (list, tuple)):
        projection = [projection] * len(student_out.hidden_states)  # one W (or None) for every state
    terms: dict[str, Tensor] = {}
    if w["emb"]:
        terms["emb"] = embedding_mse(student_out.hidden_states[0], teacher_out.hidden_states[0], projection[0])
    if w["hidden"]:
        terms["hidden"] = paddle.add_n([
            hidden_mse(student_out.hidden_states[m], teacher_out.hidden_states[n], projection[m])
            for m, n in enumerate(layer_map, start=1)])
    if w["attn"]:
        terms["attn"] = paddle.add_n([
            attention_mse(student_out.attention_scores[m - 1], teacher_out.attention_scores[n - 1], attention_mask)
            for m, n in enumerate(layer_map, start=1)])
    if not terms:  # DistillConfig refuses these weights
        raise ValueError("all intermediate loss weights are 0: nothing to distil")
    total = paddle.add_n([w[name] * value for name, value in terms.items()])
    return total, {f"loss_{name}": value.detach() for name, value in terms.items()}


def prediction_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0,
                    is_regression: bool = False, labels: Tensor | None = None,
                    alpha: float = 0.0, pred_weight: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Prediction stage: pred_weight * L_pred (soft cross-entropy at temperature t, or MSE for regression),
    plus alpha * the hard-label loss (cross-entropy with the gold labels, MSE for regression) when alpha > 0.
    pred_weight 0 with alpha 1 is plain fine-tuning on the labels (the paper's "w/o Pred" ablation).

    Returns the total and the logged terms (detached tensors).
    """
    if is_regression:
        soft = prediction_mse(student_logits, teacher_logits)
    else:
        soft = soft_cross_entropy(student_logits, teacher_logits, temperature)
    logs = {"loss_pred": soft.detach()}
    if not alpha:
        if not pred_weight:
            raise ValueError("pred_weight 0 and alpha 0: no loss left")  # DistillConfig refuses these
        return pred_weight * soft if pred_weight != 1 else soft, logs
    if labels is None:
        raise ValueError("alpha > 0 needs the gold labels")
    if is_regression:
        hard = F.mse_loss(student_logits.reshape([-1]), labels.astype(student_logits.dtype).reshape([-1]))
    else:
        hard = F.cross_entropy(student_logits, labels.reshape([-1, 1]).astype("int64"))
    logs["loss_hard"] = hard.detach()
    return pred_weight * soft + alpha * hard, logs
