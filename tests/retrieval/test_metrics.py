import numpy as np
import pytest

from mmfeat import ParameterError
from mmfeat.retrieval import mean_average_precision, precision_at_k, recall_at_k


def test_average_precision_by_hand():
    # query "a"; gallery labels a b a b a; ranking puts relevant at ranks 1, 3, 4
    gallery = ["a", "b", "a", "b", "a"]
    ranking = [[0, 1, 2, 4, 3]]
    # precisions at the hits: 1/1, 2/3, 3/4; R = 3
    expected = (1 + 2 / 3 + 3 / 4) / 3
    assert mean_average_precision(["a"], gallery, ranking) == pytest.approx(expected)
    # two queries: the mean of their APs
    ranking2 = [[0, 1, 2, 4, 3], [1, 3, 0, 2, 4]]  # "b": hits at ranks 1, 2
    assert mean_average_precision(["a", "b"], gallery, ranking2) == pytest.approx(
        (expected + 1.0) / 2
    )


def test_map_at_k_and_partial_rankings():
    gallery = ["a", "b", "a", "b", "a"]
    # only the top 2: one hit at rank 1; normalised by min(R, k) = 2
    assert mean_average_precision(["a"], gallery, [[0, 1]], k=2) == pytest.approx(0.5)
    # -1 pads a short ranking and never counts as a hit
    assert mean_average_precision(["a"], gallery, [[1, -1, -1]]) == 0.0


def test_n_relevant_for_leave_one_out():
    gallery = ["a", "a", "b"]
    # query 0 is left out of its own results: one relevant item remains
    ranking = [[1, 2]]
    assert mean_average_precision(["a"], gallery, ranking) == pytest.approx(0.5)
    assert mean_average_precision(
        ["a"], gallery, ranking, n_relevant=[1]
    ) == pytest.approx(1.0)


def test_precision_and_recall_at_k_by_hand():
    gallery = np.array([0, 1, 0, 1, 0])
    ranking = [[0, 1, 2, 4], [1, 0, 2, 3]]
    assert precision_at_k([0, 1], gallery, ranking, k=2) == pytest.approx(
        (1 / 2 + 1 / 2) / 2
    )
    assert precision_at_k([0, 1], gallery, ranking, k=4) == pytest.approx(
        (3 / 4 + 2 / 4) / 2
    )
    assert recall_at_k([0, 1], gallery, ranking, k=2) == pytest.approx(
        (1 / 3 + 1 / 2) / 2
    )
    assert recall_at_k([0, 1], gallery, ranking, k=4) == pytest.approx(1.0)


def test_perfect_and_worst_rankings():
    y = np.repeat([0, 1], 5)
    best = np.array([np.argsort(y != v, kind="stable") for v in y])
    worst = best[:, ::-1]
    assert mean_average_precision(y, y, best) == pytest.approx(1.0)
    assert mean_average_precision(y, y, worst) < 0.4


def test_bad_rankings_are_refused():
    with pytest.raises(ParameterError, match="one row per query"):
        mean_average_precision(["a", "b"], ["a"], [[0]])
    with pytest.raises(ParameterError, match="gallery position 3"):
        mean_average_precision(["a"], ["a", "b"], [[3]])
    with pytest.raises(ParameterError, match="k must be"):
        precision_at_k(["a"], ["a"], [[0]], k=0)
