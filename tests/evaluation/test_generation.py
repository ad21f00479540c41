"""Metrics of generated text against the reference scorers and hand-worked cases."""

import math

import numpy as np
import pandas as pd
import pytest
from pycocoevalcap.cider.cider_scorer import CiderScorer
from sacrebleu.metrics import BLEU

from mmfeat.evaluation import (
    attribute_slot_accuracy,
    bleu_scores,
    caption_recall_at_k,
    cider_d_score,
    generation_report,
    make_caption_scorer,
)
from mmfeat.exceptions import ParameterError
from mmfeat.utils._ngrams import tokenize

_VOCAB = "red blue shirt shoe men women cotton leather casual formal black".split()


def _sentence(rng):
    return " ".join(rng.choice(_VOCAB, rng.integers(1, 10)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cider_d_equals_the_coco_scorer(seed):
    rng = np.random.default_rng(seed)
    refs = [[_sentence(rng) for _ in range(rng.integers(1, 6))] for _ in range(60)]
    hyps = [_sentence(rng) for _ in range(60)]
    scorer = CiderScorer(n=4, sigma=6.0)
    for h, r in zip(hyps, refs):
        scorer += (h, r)
    want, want_items = scorer.compute_score()
    got, items = cider_d_score(refs, hyps, return_per_item=True)
    assert got == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(items, want_items, rtol=1e-12, atol=1e-15)


def test_cider_d_by_hand():
    # two documents: every n-gram is in one of them, so every IDF is log 2
    assert cider_d_score(["a b", "c d"], ["a b", "x y"]) == pytest.approx(2.5)
    # clipping: "a" three times against once; bigrams share nothing;
    # lengths (bigrams) 2 and 1
    got = cider_d_score(["a b", "c"], ["a a a", "c"], return_per_item=True)[1][0]
    want = 10 / 4 * (1 / (3 * math.sqrt(2))) * math.exp(-1 / 72)
    assert got == pytest.approx(want, rel=1e-12)


def test_cider_d_rows_and_missing_hypotheses():
    refs = ["red shirt", None, ["blue shoe", "blue leather shoe"]]
    hyps = ["red shirt", "anything", None]
    score, items = cider_d_score(refs, hyps, return_per_item=True)
    assert len(items) == 2 and items[1] == 0.0  # the missing hypothesis
    assert score == pytest.approx(items.mean())
    with pytest.raises(ParameterError, match="rows"):
        cider_d_score(refs, hyps[:2])
    with pytest.raises(ValueError, match="no row has a reference"):
        cider_d_score([None], ["x"])


def test_bleu_equals_sacrebleu_and_a_hand_case():
    rng = np.random.default_rng(3)
    refs = [_sentence(rng) for _ in range(40)]
    hyps = [_sentence(rng) for _ in range(40)]
    got = bleu_scores(refs, hyps)
    for n in range(1, 5):
        want = BLEU(max_ngram_order=n, lowercase=True).corpus_score(hyps, [refs])
        assert got[f"BLEU-{n}"] == pytest.approx(want.score / 100)
    # unigram precision 1, brevity penalty exp(1 - 3/2)
    assert bleu_scores(["the cat sat"], ["the cat"], max_order=1)[
        "BLEU-1"
    ] == pytest.approx(math.exp(-0.5))


def test_bleu_with_a_varying_number_of_references():
    refs = [["red cotton shirt", "a red shirt"], ["blue leather shoe"]]
    hyps = ["a red cotton shirt", "blue shoe"]
    got = bleu_scores(refs, hyps)["BLEU-2"]
    # sacrebleu's own streams, the second padded
    want = BLEU(max_ngram_order=2, lowercase=True).corpus_score(
        hyps, [["red cotton shirt", "blue leather shoe"], ["a red shirt", None]]
    )
    assert got == pytest.approx(want.score / 100)
    assert 0 < got < 1


def test_slot_accuracy_matches_words_plurals_and_all_words_of_a_value():
    truth = pd.DataFrame(
        {
            "articleType": ["Watches", "Sunglasses", "Casual Shoes", "Tshirts", None],
            "gender": ["Men", "Women", "Men", "Boys", "Men"],
        }
    )
    texts = [
        "Titan Men Black Watch",
        "Ray-Ban Women Sunglasses",
        "Puma Men Black Shoes",  # names "shoe" but not "casual"
        "Gini and Jony Boys Blue T-shirt",
        None,
    ]
    acc = attribute_slot_accuracy(texts, truth)
    assert acc["articleType"] == pytest.approx(3 / 4)
    assert acc["gender"] == pytest.approx(4 / 5)
    with pytest.raises(ParameterError, match="rows"):
        attribute_slot_accuracy(texts[:2], truth)


def test_recall_at_k_of_ranked_candidates():
    refs = ["Red Shirt", "blue shoe", None]
    cands = [
        [("a red shirt", 0.9), ("red shirt!", 0.5)],
        None,
        [("x", 1.0)],
    ]
    assert caption_recall_at_k(refs, cands, k=(1, 2)) == {
        "recall@1": 0.0,
        "recall@2": 0.5,
    }
    assert tokenize("red shirt!") == ["red", "shirt"]


class _Echo:
    """A stand-in captioner: the reference back, and no text for row 1."""

    def __init__(self, texts):
        self.texts = texts

    def predict(self, X):
        out = np.array(self.texts, dtype=object)
        out[1] = None
        return out


def test_generation_report_columns_and_coverage():
    texts = ["Nike Men Blue Tshirts", "Puma Women Heels", "Titan Men Watch"]
    truth = pd.DataFrame({"gender": ["Men", "Women", "Men"]})
    report = generation_report({"echo": _Echo(texts)}, None, texts, attributes=truth)
    row = report.loc["echo"]
    assert row["coverage"] == pytest.approx(2 / 3)
    assert row["slot_gender"] == pytest.approx(2 / 3)
    assert 0 < row["CIDEr-D"] < cider_d_score(texts, texts)
    assert {"BLEU-1", "BLEU-4", "seconds"} <= set(report.columns)


def test_caption_scorer_checks_its_metric():
    with pytest.raises(ParameterError, match="metric"):
        make_caption_scorer("meteor")
    texts = ["red cotton shirt", "blue shoe", "black watch"]
    assert make_caption_scorer("bleu1")(_Echo(texts), None, texts) < 1.0
    table = pd.DataFrame({"title": texts})
    scorer = make_caption_scorer("cider", text_column="title")
    assert scorer(_Echo(texts), None, table) == pytest.approx(
        cider_d_score(texts, _Echo(texts).predict(None))
    )
