"""The captioners on real photos: the fashion sample and Pascal Sentences."""

import os

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from mmfeat.datasets import load_fashion_products, load_pascal_sentences
from mmfeat.evaluation import attribute_slot_accuracy, bleu_scores, cider_d_score
from mmfeat.generation import (
    AttributeCaptioner,
    HybridCaptioner,
    NearestNeighborCaptioner,
    make_image_features,
)

_SLOTS = ["gender", "articleType"]


@pytest.fixture(scope="module")
def fashion(data_home):
    frame = load_fashion_products(
        data_home=data_home, target="articleType", min_count=50
    ).frame
    frame = frame.groupby("articleType", group_keys=False).head(45)
    train, test = train_test_split(
        frame, test_size=0.3, stratify=frame.articleType, random_state=0
    )
    features = make_image_features().fit(train.path.tolist())
    return (
        train.reset_index(drop=True),
        test.reset_index(drop=True),
        features.transform(train.path.tolist()),
        features.transform(test.path.tolist()),
    )


def test_captions_name_the_photo_far_more_often_than_a_random_title(fashion):
    train, test, Ftr, Fte = fashion
    rng = np.random.default_rng(0)
    random_titles = rng.choice(train.title.to_numpy(), len(test))
    truth = test[_SLOTS]
    chance = attribute_slot_accuracy(random_titles, truth)
    chance_cider = cider_d_score(test.title, random_titles)
    for consensus in (None, "cider"):
        model = NearestNeighborCaptioner("passthrough", consensus=consensus)
        pred = model.fit(Ftr, train.title).predict(Fte)
        acc = attribute_slot_accuracy(pred, truth)
        # 14 article types: a random title names the right one ~1 time in 14
        assert acc["articleType"] > chance["articleType"] + 0.3, (consensus, acc)
        assert acc["gender"] > chance["gender"] + 0.1, (consensus, acc)
        assert cider_d_score(test.title, pred) > 3 * chance_cider
        assert bleu_scores(test.title, pred)["BLEU-4"] > 0.05


def test_attribute_template_and_hybrid_on_real_photos(fashion):
    train, test, Ftr, Fte = fashion
    template = AttributeCaptioner("{gender} {articleType}", "passthrough")
    pred = template.fit(Ftr, train[_SLOTS]).predict(Fte)
    acc = attribute_slot_accuracy(pred, test[_SLOTS])
    # the template writes the predicted values: slot accuracy is accuracy
    table = template.predict_attributes(Fte)
    assert acc["articleType"] == pytest.approx(
        (table.articleType == test.articleType).mean()
    )
    assert acc["articleType"] > 0.6
    hybrid = HybridCaptioner(_SLOTS, text_column="title", transformer="passthrough")
    hyb = hybrid.fit(Ftr, train[["title", *_SLOTS]]).predict(Fte)
    plain = NearestNeighborCaptioner("passthrough").fit(Ftr, train.title).predict(Fte)
    # re-ranking by the predicted type names the type more often
    assert (
        attribute_slot_accuracy(hyb, test[_SLOTS])["articleType"]
        >= attribute_slot_accuracy(plain, test[_SLOTS])["articleType"]
    )


def test_pascal_sentences_smoke(data_home):
    """47 photos with five captions each: a smoke test, not a benchmark."""
    frame = load_pascal_sentences(data_home=data_home).frame
    frame = frame[frame.image_path.map(lambda p: isinstance(p, str))]
    frame = frame[[os.path.exists(p) for p in frame.image_path]]
    assert len(frame) >= 40
    train, test = frame.iloc[:-7], frame.iloc[-7:]
    model = NearestNeighborCaptioner(n_neighbors=10).fit(
        pd.DataFrame({"image": train.image_path}), list(train.captions)
    )
    pred = model.predict(pd.DataFrame({"image": test.image_path}))
    seen = {c for caps in train.captions for c in caps}
    assert all(p in seen for p in pred)  # a training caption, transferred
    assert 0 < cider_d_score(list(test.captions), pred) < 10
    assert 0 <= bleu_scores(list(test.captions), pred)["BLEU-1"] <= 1
