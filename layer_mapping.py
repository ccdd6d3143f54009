"""Which teacher layer each student layer learns from: the mapping function g(m) of TinyBERT.

TinyBERT (Jiao et al. 2020, Sec. 3.1) distils a teacher of N layers into a student of M layers with a
mapping n = g(m): student layer m learns from teacher layer g(m). Layer 0 is the embedding layer
(g(0) = 0) and the prediction layer maps to the prediction layer. The paper's default, the "uniform"
strategy, is g(m) = m * N / M.

Indexing into the model outputs (see modeling.py): `hidden_states` has L+1 entries with [0] = embeddings,
so layer n's output is `hidden_states[n]`; `attention_scores` has L entries, so layer n's scores are
`attention_scores[n - 1]`. For a 6-layer student of a 12-layer teacher, g(m) = 2m, so student attention
m-1 = 0..5 reads teacher attention 2m-1 = 1, 3, ..., 11 (the "2i+1" of the released code) and student
hidden state m reads teacher hidden state 2m. For a 4-layer student g(m) = 3m (hidden states 3, 6, 9, 12).
"""
from __future__ import annotations

import logging
from typing import Sequence

from tinybert.errors import UserError

log = logging.getLogger(__name__)

STRATEGIES = ("uniform", "top", "bottom")


def build_layer_map(num_student_layers: int, num_teacher_layers: int,
                    strategy: str | Sequence[int] = "uniform") -> list[int]:
    """g(1..M): the 1-based teacher layer for each student layer 1..M.

    strategy:
      "uniform" g(m) = m * N / M, rounded to the nearest layer when N is not a multiple of M (logged);
      "top"     the last M teacher layers, N-M+1..N;
      "bottom"  the first M teacher layers, 1..M;
      a list of M teacher layers, e.g. [3, 6, 9, 12] (also given as the string "3,6,9,12").
    """
    M, N = num_student_layers, num_teacher_layers
    if M < 1 or N < 1:
        raise UserError(f"layer map needs at least one layer in student and teacher (student {M}, teacher {N})")
    if isinstance(strategy, str) and strategy not in STRATEGIES:
        strategy = parse_layer_map(strategy)
    if not isinstance(strategy, str):
        return _check_explicit(list(strategy), M, N)

    if M > N:
        raise UserError(f"the student has more layers ({M}) than the teacher ({N}): the '{strategy}' "
                        f"map needs M <= N; give an explicit --layer_map with {M} teacher layers instead")
    if strategy == "top":
        return list(range(N - M + 1, N + 1))
    if strategy == "bottom":
        return list(range(1, M + 1))
    # uniform: round half up (not Python's round-half-even) so the map does not depend on parity.
    layer_map = [int(m * N / M + 0.5) for m in range(1, M + 1)]
    if N % M:
        log.warning("teacher depth %d is not a multiple of student depth %d: uniform map g(m) = m*%d/%d "
                    "rounded to %s", N, M, N, M, layer_map)
    return layer_map


def parse_layer_map(text: str) -> str | list[int]:
    """--layer_map value: a strategy name or comma-separated teacher layers ("3,6,9,12")."""
    text = text.strip()
    if text.lower() in STRATEGIES:
        return text.lower()
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--layer_map {text!r}: expected one of {', '.join(STRATEGIES)} or "
                        f"comma-separated teacher layer numbers such as 3,6,9,12") from None


def _check_explicit(layer_map: list[int], M: int, N: int) -> list[int]:
    if len(layer_map) != M:
        raise UserError(f"layer map {layer_map} has {len(layer_map)} entries; the student has {M} layers "
                        f"and needs exactly one teacher layer each")
    bad = [n for n in layer_map if not 1 <= n <= N]
    if bad:
        raise UserError(f"layer map {layer_map}: teacher layer(s) {bad} out of range; the teacher has "
                        f"layers 1..{N} (0 is the embeddings, which are always matched to the student's)")
    return [int(n) for n in layer_map]


def describe_layer_map(layer_map: Sequence[int]) -> str:
    """One log line: 'student layer -> teacher layer' pairs, embeddings included."""
    pairs = ", ".join(f"{m}->{n}" for m, n in enumerate(layer_map, start=1))
    return f"layer map (student -> teacher): emb->emb, {pairs}"
