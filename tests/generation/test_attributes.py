"""AttributeCaptioner, TagPredictor and HybridCaptioner."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

import mmfeat
from mmfeat.exceptions import InputError, ParameterError
from mmfeat.generation import (
    AttributeCaptioner,
    HybridCaptioner,
    TagPredictor,
    template_slots,
)
from mmfeat.generation._attributes import _best_threshold


def _catalogue(rng, n_per=10):
    """Features that tell colour (dims 0-1) and type (dims 2-3) apart."""
    rows, F = [], []
    for colour in ("Red", "Blue"):
        for kind in ("Shirts", "Shoes"):
            for i in range(n_per):
                f = np.zeros(6)
                f[0 if colour == "Red" else 1] = 1.0
                f[2 if kind == "Shirts" else 3] = 1.0
                F.append(f + 0.05 * rng.standard_normal(6))
                rows.append(
                    {
                        "colour": colour,
                        "type": kind,
                        "gender": "Men" if i % 2 else "Women",
                        "title": f"Brand{i} {colour} {kind[:-1]} cotton",
                    }
                )
    return np.array(F), pd.DataFrame(rows)


def test_template_slots_are_checked():
    assert template_slots("{a} and {b} {a}") == ["a", "b"]
    with pytest.raises(ParameterError, match="names no"):
        template_slots("plain text")
    with pytest.raises(ParameterError, match="plain column name"):
        template_slots("{a[0]}")
    with pytest.raises(ParameterError, match="malformed"):
        template_slots("{a")


def test_attribute_captioner_fills_the_template_with_the_likeliest_values(rng):
    F, y = _catalogue(rng)
    model = AttributeCaptioner("a {colour} {type}", "passthrough").fit(F, y)
    assert model.slots_ == ["colour", "type"]
    pred = model.predict(F)
    want = ("a " + y.colour + " " + y.type).tolist()
    assert (pred == np.array(want, dtype=object)).mean() == 1.0
    table = model.predict_attributes(F)
    assert list(table.columns) == ["colour", "colour_proba", "type", "type_proba"]
    assert ((table.colour_proba > 0.5) & (table.colour_proba <= 1.0)).all()
    proba = model.predict_attribute_proba(F)
    np.testing.assert_allclose(proba["type"].sum(axis=1), 1.0)
    assert model.score(F, y) == 1.0


def test_attribute_rows_missing_a_value_train_the_other_slots(rng):
    F, y = _catalogue(rng)
    y.loc[[0, 1, 2], "colour"] = np.nan
    y["constant"] = "Cotton"
    model = AttributeCaptioner("{colour} {constant}", "passthrough").fit(F, y)
    assert model.classes_[1].tolist() == ["Cotton"]
    assert set(model.predict(F)) <= {"Red Cotton", "Blue Cotton"}
    with pytest.raises(ParameterError, match="not columns of y"):
        AttributeCaptioner("{nothing}", "passthrough").fit(F, y)
    with pytest.raises(ParameterError, match="DataFrame"):
        AttributeCaptioner("{colour}", "passthrough").fit(F, y.colour.tolist())


def test_attribute_captioner_without_features_gives_none(rng):
    F, y = _catalogue(rng)
    F[5] = np.nan
    with mmfeat.collect_item_errors():
        model = AttributeCaptioner(
            "{colour}", "passthrough", classifier=LogisticRegression()
        ).fit(F, y)
    out = model.predict(F)
    assert out[5] is None and all(v is not None for i, v in enumerate(out) if i != 5)
    table = model.predict_attributes(F)
    assert table.colour[5] is None and np.isnan(table.colour_proba[5])


def test_tag_thresholds_maximise_f1_of_each_tag():
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    truth = np.array([1, 1, 0, 1, 0, 0], bool)
    t = _best_threshold(scores, truth)
    best = max(
        (2 * (truth & (scores >= c)).sum() / ((scores >= c).sum() + truth.sum()), c)
        for c in scores
    )
    assert (scores >= t).tolist() == (scores >= best[1]).tolist()
    assert _best_threshold(scores, np.zeros(6, bool)) == 0.5


def test_tag_predictor_learns_tags_and_skips_rare_ones(rng):
    F, y = _catalogue(rng)
    tags = [[c.lower(), t.lower()] for c, t in zip(y.colour, y.type)]
    tags[0] = tags[0] + ["rare"]
    model = TagPredictor("passthrough", cv=3).fit(F, tags)
    assert "rare" not in model.classes_
    assert set(model.classes_) == {"red", "blue", "shirts", "shoes"}
    pred = model.predict(F)
    exact = np.mean([set(p) == set(t) - {"rare"} for p, t in zip(pred, tags)])
    assert exact > 0.95
    assert model.score(F, tags) > 0.95
    S = model.predict_scores(F)
    assert S.shape == (len(F), 4)
    with pytest.raises(InputError, match="row 1"):
        TagPredictor("passthrough").fit(F, [["a"], "red, shoe"] + tags[2:])
    fixed = TagPredictor("passthrough", threshold=0.5).fit(F, tags)
    np.testing.assert_array_equal(fixed.thresholds_, 0.5)


def test_hybrid_corrects_neighbours_of_the_wrong_type(rng):
    # type is in dims 2-3 only weakly; colour dominates the similarity
    F, y = _catalogue(rng, n_per=12)
    F[:, 2:4] *= 0.2
    q = np.zeros((1, 6))
    q[0, 0], q[0, 3] = 1.0, 0.2  # a red shoe
    nn = HybridCaptioner(
        ["type"],
        text_column="title",
        transformer="passthrough",
        n_neighbors=24,
        agreement_weight=0.0,
    ).fit(F, y)
    hybrid = HybridCaptioner(
        ["type"],
        text_column="title",
        transformer="passthrough",
        n_neighbors=24,
        agreement_weight=3.0,
        classifier=LogisticRegression(C=100),
    ).fit(F, y)
    assert "Shoe" in hybrid.predict(q)[0]
    assert hybrid.predict_candidates(q, k=3)[0][0][0] == hybrid.predict(q)[0]
    attrs = hybrid.predict_attributes(q)
    assert attrs.type[0] == "Shoes"
    assert nn.predict(F).shape == (len(F),)


def test_hybrid_in_grid_search_and_saved(rng, tmp_path):
    F, y = _catalogue(rng)
    search = GridSearchCV(
        HybridCaptioner(["colour"], text_column="title", transformer="passthrough"),
        {"agreement_weight": [0.0, 1.0]},
        cv=2,
    ).fit(F, y)
    assert np.isfinite(search.best_score_)
    model = search.best_estimator_
    mmfeat.save(model, tmp_path / "h.skops")
    assert (
        mmfeat.load(tmp_path / "h.skops").predict(F).tolist()
        == model.predict(F).tolist()
    )
    with pytest.raises(ParameterError, match="no column"):
        HybridCaptioner(["size"], text_column="title", transformer="passthrough").fit(
            F, y
        )


def test_attribute_and_tag_models_save_and_load(rng, tmp_path):
    F, y = _catalogue(rng)
    att = AttributeCaptioner("{colour} {type}", "passthrough").fit(F, y)
    mmfeat.save(att, tmp_path / "a.skops")
    assert (
        mmfeat.load(tmp_path / "a.skops").predict(F).tolist() == att.predict(F).tolist()
    )
    tags = [[c, t] for c, t in zip(y.colour, y.type)]
    tp = TagPredictor("passthrough").fit(F, tags)
    mmfeat.save(tp, tmp_path / "t.skops")
    loaded = mmfeat.load(tmp_path / "t.skops")
    assert [list(p) for p in loaded.predict(F)] == [list(p) for p in tp.predict(F)]


def test_hybrid_attributes_of_a_row_without_features_are_none(rng):
    F, y = _catalogue(rng)
    model = HybridCaptioner(
        ["colour", "type"], text_column="title", transformer="passthrough"
    ).fit(F, y)
    Q = F[:3].copy()
    Q[1] = np.nan
    table = model.predict_attributes(Q)
    assert list(table.columns) == ["colour", "colour_proba", "type", "type_proba"]
    assert table.colour[1] is None and np.isnan(table.type_proba[1])
    assert table.colour[0] == y.colour[0] and table.colour_proba[0] > 0.5
    assert model.predict(Q)[1] is None


def test_attribute_state_whose_classes_disagree_is_refused(rng):
    from mmfeat.exceptions import ModelStateError

    F, y = _catalogue(rng)
    model = AttributeCaptioner("{colour}", "passthrough").fit(F, y)
    state = dict(model.__getstate__())
    state["classes_"] = [np.array(["Red", "Blue", "Green"], dtype=object)]
    with pytest.raises(ModelStateError, match="colour"):
        AttributeCaptioner.__new__(AttributeCaptioner).__setstate__(state)


def test_a_tag_whose_best_cut_is_noise_keeps_the_default_cut():
    rng = np.random.default_rng(1)
    scores = rng.normal(0.0, 0.05, 200)
    truth = np.zeros(200, bool)
    truth[[3, 70]] = True  # two positives, scored like the rest
    assert _best_threshold(scores, truth) == 0.5
    # a tag the scores separate is tuned below 0.5
    scores = np.where(np.arange(200) < 50, 0.3, 0.0) + rng.normal(0, 0.01, 200)
    truth = np.arange(200) < 50
    cut = _best_threshold(scores, truth)
    assert 0.0 < cut < 0.3 and ((scores >= cut) == truth).all()


def test_more_tampered_attribute_tag_and_hybrid_state_is_refused(rng):
    from mmfeat.exceptions import ModelStateError

    F, y = _catalogue(rng)
    att = AttributeCaptioner("{colour} {type}", "passthrough").fit(F, y)
    for edit, match in [
        (dict(template="{colour} {size}"), "size"),
        (dict(classes_=[np.array(["Red", "Blue"], dtype=object)] * 2), "colour"),
    ]:
        state = {**att.__getstate__(), **edit}
        with pytest.raises(ModelStateError, match=match):
            AttributeCaptioner.__new__(AttributeCaptioner).__setstate__(state)
    tags = [[c, t] for c, t in zip(y.colour, y.type)]
    tp = TagPredictor("passthrough", min_count=1).fit(F, tags)
    state = {**tp.__getstate__(), "thresholds_": np.full(len(tp.classes_), np.nan)}
    with pytest.raises(ModelStateError, match="thresholds_"):
        TagPredictor.__new__(TagPredictor).__setstate__(state)
    hyb = HybridCaptioner(["colour"], text_column="title", transformer="passthrough")
    hyb.fit(F, y)
    inner = hyb.captioner_.set_params(transformer=None)
    state = {**hyb.__getstate__(), "captioner_": inner}
    with pytest.raises(ModelStateError, match="passthrough"):
        HybridCaptioner.__new__(HybridCaptioner).__setstate__(state)


def test_scores_check_that_y_matches_x(rng):
    F, y = _catalogue(rng)
    att = AttributeCaptioner("{colour} {type}", "passthrough").fit(F, y)
    with pytest.raises(ParameterError, match="rows"):
        att.score(F, y.head(5))
    with pytest.raises(ParameterError, match="no column"):
        att.score(F, y[["colour"]])
    tags = [[c, t] for c, t in zip(y.colour, y.type)]
    tp = TagPredictor("passthrough").fit(F, tags)
    with pytest.raises(ParameterError, match="entries for"):
        tp.score(F, tags[:5])
    unknown = [pd.NA if i == 0 else t for i, t in enumerate(tags)]
    with pytest.raises(InputError, match="row 0"):
        TagPredictor("passthrough").fit(F, unknown)
    with mmfeat.collect_item_errors() as errors:
        TagPredictor("passthrough", on_error="missing").fit(F, unknown)
    assert [e.row for e in errors] == [0]


def test_multilabel_classifier_scores_take_the_positive_class_column(rng):
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.neighbors import KNeighborsClassifier

    F, y = _catalogue(rng)
    tags = [[c, t] for c, t in zip(y.colour, y.type)]
    tp = TagPredictor(
        "passthrough", estimator=MultiOutputClassifier(KNeighborsClassifier(3))
    ).fit(F, tags)
    assert tp.score(F, tags) > 0.95
