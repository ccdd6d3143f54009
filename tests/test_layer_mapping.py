"""Layer maps g(m) against hand-written teacher indices, and the errors users see for impossible maps."""
from __future__ import annotations

from tinybert import errors
import logging

import pytest


from layer_mapping import build_layer_map, describe_layer_map, parse_layer_map


def test_uniform_6_of_12_matches_the_released_2i_plus_1_for_attention():
    g = build_layer_map(6, 12)
    assert g == [2, 4, 6, 8, 10, 12]
    # hidden_states[g(m)] and attention_scores[g(m)-1], 0-based as in the model output tuples
    assert [n - 1 for n in g] == [2 * i + 1 for i in range(6)]


def test_uniform_4_of_12_uses_every_third_layer():
    assert build_layer_map(4, 12) == [3, 6, 9, 12]
    assert [n - 1 for n in build_layer_map(4, 12)] == [2, 5, 8, 11]


def test_uniform_other_depths():
    assert build_layer_map(3, 6) == [2, 4, 6]
    assert build_layer_map(1, 12) == [12]
    assert build_layer_map(12, 12) == list(range(1, 13))


def test_uniform_rounds_non_divisible_depths_and_logs_it(caplog):
    with caplog.at_level(logging.WARNING):
        g = build_layer_map(5, 12)  # m*12/5 = 2.4, 4.8, 7.2, 9.6, 12
    assert g == [2, 5, 7, 10, 12]
    assert "not a multiple" in caplog.text and "[2, 5, 7, 10, 12]" in caplog.text
    assert build_layer_map(4, 6) == [2, 3, 5, 6]  # 1.5, 3, 4.5, 6 rounded half up
    assert build_layer_map(4, 5) == [1, 3, 4, 5]  # 1.25, 2.5, 3.75, 5


def test_top_and_bottom():
    assert build_layer_map(4, 12, "top") == [9, 10, 11, 12]
    assert build_layer_map(4, 12, "bottom") == [1, 2, 3, 4]


def test_explicit_list_and_string():
    assert build_layer_map(4, 12, [3, 6, 9, 12]) == [3, 6, 9, 12]
    assert build_layer_map(4, 12, "3,6,9,12") == [3, 6, 9, 12]
    assert build_layer_map(2, 12, " 1, 12 ") == [1, 12]
    assert parse_layer_map("TOP") == "top"
    assert parse_layer_map("2,4") == [2, 4]


@pytest.mark.parametrize("strategy, message", [
    ([3, 6, 9], "has 3 entries"),
    ([3, 6, 9, 13], "out of range"),
    ([0, 6, 9, 12], "out of range"),
    ("3,x", "comma-separated"),
    ("middle", "comma-separated"),
])
def test_impossible_maps_are_clear_errors(strategy, message):
    with pytest.raises(errors.UserError, match=message):
        build_layer_map(4, 12, strategy)


def test_student_deeper_than_teacher_needs_an_explicit_map():
    with pytest.raises(errors.UserError, match="more layers"):
        build_layer_map(6, 4)
    assert build_layer_map(3, 2, [1, 1, 2]) == [1, 1, 2]


def test_describe():
    assert describe_layer_map([3, 6]) == "layer map (student -> teacher): emb->emb, 1->3, 2->6"
