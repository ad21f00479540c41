"""PixelSegmenter: sampling, auto-context, modalities, bad input, persistence."""

import re

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV

import mmfeat
from mmfeat.exceptions import InputError, ParameterError, UntrustedModelError
from mmfeat.segmentation import (
    PixelFeatures,
    PixelSegmenter,
    context_features,
)
from mmfeat.segmentation._base import sample_pixels

FAST = PixelFeatures(sigmas=(1.0, 3.0), features=("gaussian", "gradient"), color="grey")
RAW = PixelFeatures(sigmas=(1.0, 3.0), features=("gaussian",), color="raw")


def _rf(n=20):
    return RandomForestClassifier(n_estimators=n, max_depth=10, random_state=0)


def _textures(rng, size=48):
    """Stripes (class 2) on noise (class 1) inside a random rectangle."""
    yy, xx = np.mgrid[0:size, 0:size]
    noise = 0.5 + 0.15 * rng.standard_normal((size, size))
    stripes = 0.5 + 0.3 * np.sin(xx * 1.3)
    mask = np.ones((size, size), dtype=np.uint8)
    r0, c0 = rng.integers(4, size // 2, size=2)
    mask[r0 : r0 + size // 3, c0 : c0 + size // 3] = 2
    img = np.where(mask == 2, stripes, noise)
    return np.clip(img, 0, 1).astype(np.float32), mask


def _two_modality(rng, n, size=48):
    """Four classes = {noise, stripes} x {far, near}: each map knows half.

    The image says which texture, the depth map how far; only both together
    tell the four classes apart.
    """
    rows, masks = [], []
    for _ in range(n):
        img, tex = _textures(rng, size)
        near = np.zeros((size, size), dtype=bool)
        r0, c0 = rng.integers(0, size // 2, size=2)
        near[r0 : r0 + size // 2, c0 : c0 + size // 2] = True
        depth = np.where(near, 2.0, 10.0) + 0.3 * rng.standard_normal((size, size))
        masks.append((tex + 2 * near).astype(np.uint8))  # 1..4
        rows.append({"image": img, "depth": depth.astype(np.float32)})
    return pd.DataFrame(rows), masks


def _accuracy(pred, masks):
    return float(np.mean([(p == m).mean() for p, m in zip(pred, masks)]))


# --------------------------------------------------------------- sampling
def test_sample_pixels_balances_classes_and_skips_unlabelled():
    mask = np.zeros((50, 50), dtype=np.int32)
    mask[:40] = 1
    mask[45:, :10] = 2  # 50 pixels of class 2, 2000 of class 1
    idx = sample_pixels(mask, 200, balance=True, rng=np.random.RandomState(0))
    labels = mask.ravel()[idx]
    assert (labels > 0).all()
    assert (labels == 2).sum() == 50 and (labels == 1).sum() == 100
    assert len(np.unique(idx)) == len(idx)
    idx = sample_pixels(mask, 200, balance=False, rng=np.random.RandomState(0))
    assert len(idx) == 200 and (mask.ravel()[idx] > 0).all()
    assert len(sample_pixels(mask, None, balance=False, rng=None)) == 2050


def test_training_pixels_do_not_grow_with_image_size(rng):
    small = [_textures(rng, 48) for _ in range(3)]
    big = [
        (cv2.resize(i, (192, 192)), cv2.resize(m, (192, 192), interpolation=0))
        for i, m in small
    ]
    for data in (small, big):
        seg = PixelSegmenter(FAST, classifier=_rf(5), n_samples_per_image=300)
        seg.fit([i for i, _ in data], [m for _, m in data])
        assert seg.n_pixels_fit_ <= 3 * 300
        assert seg.n_images_fit_ == 3
    assert seg.n_pixels_fit_ == 3 * 300  # balanced classes, both plentiful


# ---------------------------------------------------------- segmentation
def test_scribbles_segment_the_whole_image(rng):
    train = [_textures(rng) for _ in range(4)]
    scribbles = []
    for _, mask in train:
        s = np.zeros_like(mask)
        eroded = [ndimage.binary_erosion(mask == c, iterations=3) for c in (1, 2)]
        for c, region in zip((1, 2), eroded):
            pts = np.flatnonzero(region)[::7]
            s.ravel()[pts] = c
        assert (s > 0).mean() < 0.2  # scribbles: most pixels unlabelled
        scribbles.append(s)
    seg = PixelSegmenter(FAST, classifier=_rf(), random_state=0)
    seg.fit([i for i, _ in train], scribbles)
    test = [_textures(rng) for _ in range(3)]
    pred = seg.predict([i for i, _ in test])
    assert _accuracy(pred, [m for _, m in test]) > 0.9
    assert seg.score([i for i, _ in test], [m for _, m in test]) > 0.75
    assert list(seg.classes_) == [1, 2] and pred[0].dtype == np.uint8


def test_images_of_different_sizes_in_one_batch(rng):
    data = [_textures(rng, s) for s in (40, 56, 72)]
    seg = PixelSegmenter(FAST, classifier=_rf(5), random_state=0)
    seg.fit([i for i, _ in data], [m for _, m in data])
    pred = seg.predict([i for i, _ in data])
    assert [p.shape for p in pred] == [m.shape for _, m in data]


def test_context_features_match_a_naive_reference(rng):
    proba = rng.random((20, 30, 2)).astype(np.float32)
    proba /= proba.sum(axis=2, keepdims=True)
    out = context_features(proba, (1.5, 4.0))
    assert out.shape == (20, 30, 2 * 4)
    for c in range(2):
        p = proba[:, :, c].astype(np.float64)
        base = 4 * c
        np.testing.assert_array_equal(out[:, :, base], proba[:, :, c])
        for j, s in enumerate((1.5, 4.0)):
            # OpenCV's kernel covers +-4 sigma; scipy's with truncate=4
            ref = ndimage.gaussian_filter(p, s, mode="reflect", truncate=4.0)
            np.testing.assert_allclose(out[:, :, base + 1 + j], ref, atol=2e-3)
        np.testing.assert_allclose(out[:, :, base + 3], p.mean(), rtol=1e-5)


def test_autocontext_adds_stages_and_keeps_accuracy(rng):
    train = [_textures(rng) for _ in range(6)]
    test = [_textures(rng) for _ in range(3)]
    scores = {}
    for stages in (0, 2):
        seg = PixelSegmenter(
            FAST, classifier=_rf(), autocontext=stages, cv=3, random_state=0
        )
        seg.fit([i for i, _ in train], [m for _, m in train])
        assert len(seg.estimators_) == stages + 1
        scores[stages] = seg.score([i for i, _ in test], [m for _, m in test])
    # the context sees the neighbourhood: it cleans the speckle of stage 0
    assert scores[2] >= scores[0] - 0.01, scores


def test_smoothing_gives_normalised_probabilities(rng):
    train = [_textures(rng) for _ in range(3)]
    seg = PixelSegmenter(FAST, classifier=_rf(5), smoothing=2.0, random_state=0)
    seg.fit([i for i, _ in train], [m for _, m in train])
    proba = seg.predict_proba([train[0][0]])[0]
    np.testing.assert_allclose(proba.sum(axis=2), 1.0, atol=1e-5)
    assert proba.dtype == np.float32


# --------------------------------------------------------------- modalities
@pytest.fixture(scope="module")
def two_modality():
    rng = np.random.default_rng(1)
    return _two_modality(rng, 6), _two_modality(rng, 4)


def _mm(fusion, **kw):
    return PixelSegmenter(
        [("image", FAST, "image"), ("depth", RAW, "depth")],
        classifier=_rf(),
        fusion=fusion,
        random_state=0,
        **kw,
    )


@pytest.mark.parametrize(("fusion", "margin"), [("feature", 0.2), ("late", 0.1)])
def test_fused_modalities_beat_each_alone(two_modality, fusion, margin):
    (X, y), (Xt, yt) = two_modality
    fused = _mm(fusion).fit(X, y)
    miou = fused.score(Xt, yt)
    alone = {}
    for name, trans in (("image", FAST), ("depth", RAW)):
        seg = PixelSegmenter([(name, trans, name)], classifier=_rf(), random_state=0)
        alone[name] = seg.fit(X, y).score(Xt, yt)
    # mean IoU over the four classes: either map alone confuses two pairs;
    # late fusion averages probabilities, so it can only break the ties
    assert miou > max(alone.values()) + margin, (miou, alone)
    assert fused.modalities_ == ["image", "depth"]


def test_late_fusion_learns_weights_and_falls_back_when_a_modality_is_missing(
    two_modality,
):
    (X, y), (Xt, yt) = two_modality
    seg = _mm("late").fit(X, y)
    w = seg.stage_weights_[0]
    assert w.shape == (2,) and np.isclose(w.sum(), 1.0) and (w > 0).all()
    Xm = Xt.copy()
    Xm.loc[1, "depth"] = None
    with mmfeat.collect_item_errors() as errors:
        proba = seg.predict_proba(Xm)
    assert not list(errors)  # missing is not an error
    image_only = seg.estimators_[0][0].predict_proba(
        FAST.fit([0]).transform([Xt.loc[1, "image"]])[0].reshape(-1, 4)
    )
    np.testing.assert_allclose(proba[1].reshape(-1, 4), image_only, atol=1e-6)
    full = seg.predict_proba(Xt)
    for i in (0, 2, 3):
        np.testing.assert_array_equal(proba[i], full[i])


def test_feature_fusion_weights_and_grid_search_over_a_modality(two_modality):
    (X, y), _ = two_modality
    seg = _mm("feature", weights={"depth": 0.0})
    search = GridSearchCV(seg, {"image__sigmas": [(1.0,), (1.0, 3.0)]}, cv=2)
    search.fit(X, np.array(y, dtype=object))
    assert set(search.cv_results_["param_image__sigmas"]) == {(1.0,), (1.0, 3.0)}
    assert search.best_estimator_.get_params()["image__sigmas"] in ((1.0,), (1.0, 3.0))


def test_grid_search_over_sigmas_of_one_transformer(rng):
    data = [_textures(rng) for _ in range(4)]
    X = np.empty(4, dtype=object)
    X[:] = [i for i, _ in data]
    y = np.empty(4, dtype=object)
    y[:] = [m for _, m in data]
    seg = PixelSegmenter(FAST, classifier=_rf(5), random_state=0)
    search = GridSearchCV(seg, {"features__sigmas": [(1.0,), (2.0, 4.0)]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["features__sigmas"] in ((1.0,), (2.0, 4.0))


# ---------------------------------------------------------------- bad input
def _row_error(func, row, *words):
    with pytest.raises(InputError) as info:
        func()
    assert info.value.row == row, str(info.value)
    for w in words:
        assert w in str(info.value), str(info.value)
    return info.value


def test_mask_of_another_size_names_row_and_file(rng, tmp_path):
    data = [_textures(rng) for _ in range(3)]
    path = tmp_path / "mask2.png"
    cv2.imwrite(str(path), data[2][1][:-3])
    masks = [data[0][1], data[1][1], str(path)]
    seg = PixelSegmenter(FAST, classifier=_rf(5))
    _row_error(
        lambda: seg.fit([i for i, _ in data], masks), 2, "mask2.png", "45x48", "48x48"
    )


def test_all_unlabelled_mask_raises_or_is_a_recorded_skip(rng):
    data = [_textures(rng) for _ in range(3)]
    masks = [m for _, m in data]
    masks[1] = np.zeros_like(masks[1])
    images = [i for i, _ in data]
    seg = PixelSegmenter(FAST, classifier=_rf(5))
    _row_error(lambda: seg.fit(images, masks), 1, "no labelled pixel")
    with mmfeat.collect_item_errors() as errors:
        seg.set_params(on_error="missing").fit(images, masks)
    assert [(e.row, e.modality) for e in errors] == [(1, "mask")]
    assert seg.n_images_fit_ == 2


def test_single_class_training_set_is_a_clear_error(rng):
    data = [_textures(rng) for _ in range(2)]
    masks = [np.full_like(m, 2) for _, m in data]
    with pytest.raises(InputError, match="at least two classes.*add 1"):
        PixelSegmenter(FAST, classifier=_rf(5)).fit([i for i, _ in data], masks)


def test_nan_in_a_depth_map_names_the_row(two_modality):
    (X, y), _ = two_modality
    X = X.copy()
    depth = X.loc[3, "depth"].copy()
    depth[5, 7] = np.nan
    X.at[3, "depth"] = depth
    _row_error(lambda: _mm("feature").fit(X, y), 3, "NaN")


def test_depth_map_of_another_size_names_row_and_file(two_modality, tmp_path):
    (X, y), _ = two_modality
    X = X.copy()
    path = tmp_path / "depth4.npy"
    np.save(path, np.ones((20, 20), dtype=np.float32))
    X.at[4, "depth"] = str(path)
    _row_error(lambda: _mm("late").fit(X, y), 4, "depth4.npy", "aligned")
    with mmfeat.collect_item_errors() as errors:
        seg = _mm("late", on_error="missing").fit(X, y)
    assert [(e.row, e.source) for e in errors] == [(4, str(path))]
    assert seg.n_images_fit_ == 6  # the image of row 4 still trains


def test_unreadable_file_and_tiny_images(rng, tmp_path):
    data = [_textures(rng) for _ in range(3)]
    seg = PixelSegmenter(FAST, classifier=_rf(5), random_state=0)
    seg.fit([i for i, _ in data], [m for _, m in data])
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    _row_error(lambda: seg.predict([data[0][0], str(bad)]), 1, "broken.png")
    for shape in ((1, 1), (1, 7), (2, 2)):
        out = seg.predict([np.full(shape, 0.5, dtype=np.float32)])[0]
        assert out.shape == shape
    with pytest.raises(InputError, match="two training images"):
        PixelSegmenter(FAST, classifier=_rf(5), autocontext=1).fit(
            [data[0][0]], [data[0][1]]
        )


def test_jpeg_mask_file_is_refused_with_the_reason(rng, tmp_path):
    img, mask = _textures(rng)
    path = tmp_path / "m.jpg"
    cv2.imwrite(str(path), mask * 100)
    seg = PixelSegmenter(FAST, classifier=_rf(5))
    _row_error(lambda: seg.fit([img], [str(path)]), 0, "JPEG", "lossy")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"weights": "learn"}, "fusion='late'"),
        ({"weights": {"colour": 1.0}}, "unknown modalities"),
        ({"context_sigmas": (0.0,)}, "context_sigmas"),
        ({"features": "pixels"}, "features"),
        ({"n_samples_per_image": 0}, "n_samples_per_image"),
    ],
)
def test_bad_parameters_raise_parameter_error(rng, params, match):
    img, mask = _textures(rng)
    with pytest.raises(ParameterError, match=re.escape(match)):
        params = {"features": FAST, **params}
        PixelSegmenter(classifier=_rf(5), **params).fit([img], [mask])


def test_table_without_modalities_is_refused(two_modality):
    (X, y), _ = two_modality
    with pytest.raises(ParameterError, match="features names no modality"):
        PixelSegmenter(FAST).fit(X, y)


# ------------------------------------------------------------- persistence
def test_save_and_load_without_trusting_anything(rng, tmp_path):
    from sklearn.linear_model import LogisticRegression

    # the segmenter's own state (stages, scalers, weights, the features)
    # rebuilds without code: a linear classifier's file needs no trust
    data = [_textures(rng) for _ in range(3)]
    seg = PixelSegmenter(
        [("image", FAST, "image"), ("other", FAST, "other")],
        classifier=LogisticRegression(max_iter=200),
        fusion="late",
        autocontext=1,
        random_state=0,
    )
    X = pd.DataFrame({"image": [i for i, _ in data], "other": [i.T for i, _ in data]})
    seg.fit(X, [m for _, m in data])
    path = tmp_path / "seg.skops"
    mmfeat.save(seg, path)
    loaded = mmfeat.load(path)
    for a, b in zip(seg.predict_proba(X), loaded.predict_proba(X)):
        np.testing.assert_array_equal(a, b)


def test_the_default_classifier_loads_when_its_trees_are_trusted(rng, tmp_path):
    data = [_textures(rng) for _ in range(2)]
    seg = PixelSegmenter(FAST, random_state=0).set_params(
        classifier=None, n_samples_per_image=300
    )
    seg.fit([i for i, _ in data], [m for _, m in data])
    path = tmp_path / "hgb.skops"
    mmfeat.save(seg, path)
    tree = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    with pytest.raises(UntrustedModelError, match=re.escape(tree)):
        mmfeat.load(path)
    loaded = mmfeat.load(path, trusted=[tree])
    np.testing.assert_array_equal(
        seg.predict([data[0][0]])[0], loaded.predict([data[0][0]])[0]
    )


def test_a_random_forest_segmenter_loads_when_its_trees_are_trusted(rng, tmp_path):
    data = [_textures(rng) for _ in range(2)]
    seg = PixelSegmenter(FAST, classifier=_rf(3), random_state=0)
    seg.fit([i for i, _ in data], [m for _, m in data])
    path = tmp_path / "rf.skops"
    mmfeat.save(seg, path)
    with pytest.raises(UntrustedModelError, match="sklearn.tree._tree.Tree"):
        mmfeat.load(path)
    loaded = mmfeat.load(path, trusted=["sklearn.tree._tree.Tree"])
    np.testing.assert_array_equal(
        seg.predict([data[0][0]])[0], loaded.predict([data[0][0]])[0]
    )


def test_pipeline_and_grid_search_with_a_segmentation_scorer(rng, tmp_path):
    from sklearn.pipeline import Pipeline

    from mmfeat.evaluation import make_segmentation_scorer
    from mmfeat.io import ImageReader

    data = [_textures(rng) for _ in range(4)]
    paths = []
    for i, (img, _) in enumerate(data):
        paths.append(str(tmp_path / f"im{i}.png"))
        cv2.imwrite(paths[-1], (img * 255).astype(np.uint8))
    masks = np.empty(4, dtype=object)
    masks[:] = [m for _, m in data]
    pipe = Pipeline(
        [
            ("read", ImageReader()),
            ("seg", PixelSegmenter(FAST, classifier=_rf(5), random_state=0)),
        ]
    )
    search = GridSearchCV(
        pipe,
        {"seg__classifier__max_depth": [1, 10], "seg__features__sigmas": [(1.0, 3.0)]},
        scoring=make_segmentation_scorer("foreground_iou", label=2),
        cv=2,
    )
    search.fit(np.array(paths, dtype=object), masks)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["seg__classifier__max_depth"] == 10, scores
    pred = search.predict(np.array(paths, dtype=object))
    assert [p.shape for p in pred] == [m.shape for m in masks]


# ------------------------------------------------- review regressions
def test_late_fusion_with_only_a_zero_weight_modality_present_is_defined(
    two_modality,
):
    (X, y), (Xt, _) = two_modality
    seg = _mm("late", weights={"image": 1.0, "depth": 0.0}).fit(X, y)
    Xm = Xt.copy()
    Xm.loc[0, "image"] = None
    proba = seg.predict_proba(Xm)[0]
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=2), 1.0, atol=1e-5)
    depth_only = seg.estimators_[0][1].predict_proba(
        RAW.fit([Xt.loc[0, "depth"]]).transform([Xt.loc[0, "depth"]])[0].reshape(-1, 2)
    )
    np.testing.assert_allclose(proba.reshape(-1, 4), depth_only, atol=1e-6)


def test_a_failed_refit_leaves_the_earlier_model_whole(rng):
    data = [_textures(rng) for _ in range(3)]
    seg = PixelSegmenter(FAST, classifier=_rf(5), random_state=0)
    seg.fit([i for i, _ in data], [m for _, m in data])
    before = seg.predict_proba([data[0][0]])[0]
    three = data[0][1].copy()
    three[:4] = 3
    with pytest.raises(InputError, match="two training images"):
        seg.set_params(autocontext=1).fit([data[0][0]], [three])
    assert list(seg.classes_) == [1, 2]
    seg.set_params(autocontext=0)
    np.testing.assert_array_equal(seg.predict_proba([data[0][0]])[0], before)


def test_on_error_set_after_fit_applies_at_predict(rng):
    data = [_textures(rng) for _ in range(2)]
    seg = PixelSegmenter(FAST, classifier=_rf(5), random_state=0)
    seg.fit([i for i, _ in data], [m for _, m in data])
    seg.set_params(on_error="missing")
    with mmfeat.collect_item_errors() as errors:
        out = seg.predict([data[0][0], "no/such.png"])
    assert out[1] is None and [e.row for e in errors] == [1]
    assert seg.transformers_[0][1].on_error == "raise"  # the fitted part untouched


def test_a_missing_block_is_its_training_mean_without_standardising(two_modality):
    (X, y), _ = two_modality
    seg = _mm("feature", block_norm=None).fit(X, y)
    # the mean over the (class-balanced) sampled pixels: between the near (2)
    # and far (10) depths, never the 0 a zero fill would claim
    fill = seg.fill_values_["depth"]
    assert fill.shape == (2,) and (fill > 3.0).all() and (fill < 9.0).all()
    assert seg.scalers_ is None


def test_scorer_reads_mask_files_and_counts_unreadable_rows_as_misses(rng, tmp_path):
    from mmfeat.evaluation import make_segmentation_scorer

    data = [_textures(rng) for _ in range(3)]
    seg = PixelSegmenter(FAST, classifier=_rf(5), random_state=0, on_error="missing")
    seg.fit([i for i, _ in data], [m for _, m in data])
    paths = []
    for i, (_, m) in enumerate(data):
        paths.append(str(tmp_path / f"m{i}.png"))
        cv2.imwrite(paths[-1], m)
    scorer = make_segmentation_scorer("mean_iou")
    images = [i for i, _ in data]
    full = scorer(seg, images, paths)
    assert full == pytest.approx(seg.score(images, [m for _, m in data]))
    with mmfeat.collect_item_errors():
        part = scorer(seg, [images[0], None, images[2]], paths)
    assert part == pytest.approx(seg.score([images[0], None, images[2]], paths))
    assert part < full


def test_score_names_the_row_of_an_unreadable_mask(rng):
    data = [_textures(rng) for _ in range(2)]
    seg = PixelSegmenter(FAST, classifier=_rf(5), random_state=0)
    seg.fit([i for i, _ in data], [m for _, m in data])
    _row_error(
        lambda: seg.score([i for i, _ in data], [data[0][1], "no/mask.png"]),
        1,
        "no/mask.png",
    )


def test_batch_scoring_sees_every_stage_classifier(rng):
    from mmfeat.scoring import cap_resources

    data = [_textures(rng) for _ in range(3)]
    seg = PixelSegmenter(
        FAST,
        classifier=RandomForestClassifier(n_estimators=3, n_jobs=64, random_state=0),
        autocontext=1,
        random_state=0,
    ).fit([i for i, _ in data], [m for _, m in data])
    changed = cap_resources(seg, n_jobs=1)
    assert all(c.n_jobs == 1 for stage in seg.estimators_ for c in stage)
    assert sum(old == 64 for _, name, old, _ in changed if name == "n_jobs") >= 2
