"""SuperpixelSegmenter: region statistics, context, scribbles, modalities, files."""

import re

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

import mmfeat
from mmfeat.exceptions import (
    InputError,
    ModelStateError,
    ParameterError,
    UntrustedModelError,
)
from mmfeat.segmentation import PixelFeatures, SuperpixelSegmenter
from mmfeat.segmentation._superpixel import (
    neighbour_mean,
    region_adjacency,
    region_geometry,
    region_histograms,
    region_labels,
    region_statistics,
)

FAST = PixelFeatures(sigmas=(1.0, 3.0), features=("gaussian", "gradient"), color="grey")
RAW = PixelFeatures(sigmas=(1.0,), features=("gaussian",), color="raw")


def _rf(n=30):
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


def _accuracy(pred, masks):
    return float(np.mean([(p == m).mean() for p, m in zip(pred, masks)]))


def _random_regions(rng, h=23, w=31, n=9):
    """Blocky region ids 0..n-1, each present (a coarse random map, upsampled)."""
    coarse = rng.integers(0, n, size=(6, 8))
    coarse.ravel()[:n] = np.arange(n)
    ids = cv2.resize(coarse.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    ids = ids.astype(np.intp)
    assert set(np.unique(ids)) == set(range(n))
    return ids


# ------------------------------------------------------ region statistics
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_region_statistics_match_a_naive_loop(rng, dtype):
    ids = _random_regions(rng)
    n = ids.max() + 1
    values = (rng.standard_normal((ids.size, 4)) * 3 + 100).astype(dtype)
    mean, std = region_statistics(values, ids.ravel(), n)
    for r in range(n):
        sel = values[ids.ravel() == r].astype(np.float64)
        np.testing.assert_allclose(mean[r], sel.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(std[r], sel.std(axis=0), rtol=1e-4, atol=1e-5)
    assert mean.dtype == std.dtype == np.float32


def test_region_histograms_geometry_and_labels_match_a_naive_loop(rng):
    ids = _random_regions(rng)
    n = ids.max() + 1
    img = rng.random((*ids.shape, 3)).astype(np.float32)
    img[0, 0] = 1.0  # the top edge falls in the last bin
    hist = region_histograms(img, ids.ravel(), n, 5)
    geom = region_geometry(ids, n)
    mask = rng.integers(0, 4, size=ids.shape)
    labels = region_labels(mask, ids.ravel(), n, min_labelled=0.6)
    h, w = ids.shape
    for r in range(n):
        sel = ids == r
        for c in range(3):
            ref, _ = np.histogram(img[sel][:, c], bins=5, range=(0, 1))
            np.testing.assert_allclose(
                hist[r, 5 * c : 5 * c + 5], ref / sel.sum(), atol=1e-6
            )
        rr, cc = np.nonzero(sel)
        aspect = (rr.max() - rr.min() + 1) / (cc.max() - cc.min() + 1)
        np.testing.assert_allclose(
            geom[r],
            [rr.mean() / (h - 1), cc.mean() / (w - 1), sel.mean(), np.log(aspect)],
            rtol=1e-5,
        )
        m = mask[sel]
        lab = m[m > 0]
        counts = np.bincount(lab, minlength=4)
        expect = 0 if lab.size < 0.6 * m.size else int(np.argmax(counts))
        assert labels[r] == expect


def test_region_adjacency_and_neighbour_mean_match_a_naive_loop(rng):
    ids = _random_regions(rng)
    n = ids.max() + 1
    a, b, length = region_adjacency(ids, n)
    ref = {}
    h, w = ids.shape
    for i in range(h):
        for j in range(w):
            for di, dj in ((0, 1), (1, 0)):
                if i + di < h and j + dj < w and ids[i, j] != ids[i + di, j + dj]:
                    p, q = sorted((ids[i, j], ids[i + di, j + dj]))
                    ref[(p, q)] = ref.get((p, q), 0) + 1
    assert dict(zip(zip(a.tolist(), b.tolist()), length.tolist())) == ref
    values = rng.random((n, 3))
    out = neighbour_mean(values, (a, b, length), n)
    for r in range(n):
        nb = [(q if p == r else p, c) for (p, q), c in ref.items() if r in (p, q)]
        num = sum(c * values[k] for k, c in nb)
        np.testing.assert_allclose(out[r], num / sum(c for _, c in nb))
    one = np.zeros((4, 4), dtype=np.intp)  # one region: no neighbours
    edges = region_adjacency(one, 1)
    np.testing.assert_array_equal(neighbour_mean(values[:1], edges, 1), values[:1])


# ---------------------------------------------------------- segmentation
def _context_task(rng, n_images):
    """Targets (class 2 in bright zones, 3 in dark ones) look alike inside.

    Grid cells of 8 pixels: the cells left (or right) of a random column
    are bright (0.8), the rest dark (0.2), and a fifth of the cells are
    targets of 0.5 in either zone; only a cell's neighbours tell a class-2 target from a
    class-3 one.
    """
    images, masks = [], []
    for _ in range(n_images):
        split = rng.integers(3, 6)
        bright = np.zeros((8, 8), dtype=bool)
        bright[:, :split] = True
        if rng.random() < 0.5:
            bright = ~bright
        target = rng.random((8, 8)) < 0.2
        value = np.where(target, 0.5, np.where(bright, 0.8, 0.2))
        label = np.where(target, np.where(bright, 2, 3), 1)
        up = np.ones((8, 8))
        img = np.kron(value, up) + 0.05 * rng.standard_normal((64, 64))
        images.append(np.clip(img, 0, 1).astype(np.float32))
        masks.append(np.kron(label, up).astype(np.uint8))
    return images, masks


def test_region_context_tells_apart_what_a_region_alone_cannot(rng):
    Xtr, ytr = _context_task(rng, 12)
    Xte, yte = _context_task(rng, 6)
    truth = np.concatenate([m.ravel() for m in yte])
    target = truth > 1

    def target_accuracy(descriptors):
        seg = SuperpixelSegmenter(
            FAST,
            regions="grid",
            region_size=8,
            descriptors=descriptors,
            classifier=_rf(),
            random_state=0,
        ).fit(Xtr, ytr)
        pred = np.concatenate([p.ravel() for p in seg.predict(Xte)])
        return (pred[target] == truth[target]).mean()

    alone = target_accuracy(("histogram",))
    with_context = target_accuracy(("histogram", "context"))
    assert with_context > 0.9
    assert with_context > alone + 0.25


def test_scribbles_segment_the_whole_image(rng):
    train = [_textures(rng) for _ in range(5)]
    scribbles = []
    for _, mask in train:
        s = np.zeros_like(mask)
        for c in (1, 2):
            region = ndimage.binary_erosion(mask == c, iterations=3)
            s.ravel()[np.flatnonzero(region)[::9]] = c
        assert (s > 0).mean() < 0.15  # scribbles: most pixels unlabelled
        scribbles.append(s)
    images = [i for i, _ in train]
    seg = SuperpixelSegmenter(FAST, n_segments=60, classifier=_rf(), random_state=0)
    seg.fit(images, scribbles)
    test = [_textures(rng) for _ in range(3)]
    pred = seg.predict([i for i, _ in test])
    assert _accuracy(pred, [m for _, m in test]) > 0.85
    assert list(seg.classes_) == [1, 2] and pred[0].dtype == np.uint8
    # a labelled share of 50 % leaves out every scribbled region
    with pytest.raises(InputError, match="no training row"):
        seg.set_params(min_labelled=0.5).fit(images, scribbles)


def test_region_sampling_is_bounded_and_balanced(rng):
    data = [_textures(rng) for _ in range(3)]
    seg = SuperpixelSegmenter(
        FAST,
        regions="grid",
        region_size=4,
        n_regions_per_image=20,
        class_balance=True,
        classifier=_rf(5),
        random_state=0,
    ).fit([i for i, _ in data], [m for _, m in data])
    assert seg.n_regions_fit_ == 3 * 20
    assert seg.n_images_fit_ == 3
    n = len(seg.descriptor_names_)
    assert seg.estimator_.n_features_in_ == n == seg.impute_.shape[0]


def test_smoothing_keeps_regions_constant_and_normalised(rng):
    data = [_textures(rng) for _ in range(3)]
    images, masks = [i for i, _ in data], [m for _, m in data]
    seg = SuperpixelSegmenter(FAST, n_segments=50, classifier=_rf(5), random_state=0)
    raw = seg.fit(images, masks).predict_proba(images)
    smooth = seg.set_params(smoothing=0.7).predict_proba(images)
    for p, q in zip(raw, smooth):
        np.testing.assert_allclose(q.sum(axis=2), 1.0, atol=1e-5)
        assert q.dtype == np.float32 and q.shape == p.shape
        assert len(np.unique(q.reshape(-1, 2), axis=0)) <= 60
        # neighbours pull a region towards them: less extreme probabilities
        assert np.abs(q - 0.5).mean() < np.abs(p - 0.5).mean()


# ------------------------------------------------------------ modalities
def _depth_task(rng, n, size=48):
    """Two classes told apart by depth only: the image is the same noise."""
    rows, masks = [], []
    for _ in range(n):
        near = np.zeros((size, size), dtype=bool)
        r0, c0 = rng.integers(0, size // 2, size=2)
        near[r0 : r0 + size // 2, c0 : c0 + size // 2] = True
        img = np.clip(0.5 + 0.2 * rng.standard_normal((size, size)), 0, 1)
        depth = np.where(near, 2.0, 10.0) + 0.3 * rng.standard_normal((size, size))
        rows.append({"image": img.astype(np.float32), "depth": depth.astype("f4")})
        masks.append((1 + near).astype(np.uint8))
    return pd.DataFrame(rows), masks


def _mm(**kw):
    return SuperpixelSegmenter(
        [("image", FAST, "image"), ("depth", RAW, "depth")],
        n_segments=80,
        classifier=_rf(),
        random_state=0,
        **kw,
    )


def test_image_and_depth_beat_the_image_alone(rng):
    Xtr, ytr = _depth_task(rng, 8)
    Xte, yte = _depth_task(rng, 4)
    both = _mm().fit(Xtr, ytr)
    alone = SuperpixelSegmenter(
        FAST, n_segments=80, classifier=_rf(), random_state=0
    ).fit(Xtr["image"], ytr)
    s_both = both.score(Xte, yte)
    s_alone = alone.score(Xte["image"], yte)
    assert s_both > 0.75
    assert s_both > s_alone + 0.25
    assert any(n.startswith("depth__mean_") for n in both.descriptor_names_)
    assert any(n.startswith("context__depth__") for n in both.descriptor_names_)


def test_a_missing_modality_is_imputed_and_regions_come_from_the_rest(rng):
    Xtr, ytr = _depth_task(rng, 6)
    seg = _mm().fit(Xtr, ytr)
    X = Xtr.iloc[:3].copy()
    X.at[1, "depth"] = None
    X.at[2, "image"] = None
    out = seg.predict(X)
    assert all(o is not None and o.shape == (48, 48) for o in out)
    # row 1: the depth blocks take their training means (the image alone
    # cannot tell the classes apart); row 2: no image, so the regions come
    # from the depth map and its statistics still segment
    assert (out[2] == ytr[2]).mean() > 0.8


# ------------------------------------------------------------- bad input
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
    seg = SuperpixelSegmenter(FAST, n_segments=30, classifier=_rf(5))
    _row_error(
        lambda: seg.fit([i for i, _ in data], masks), 2, "mask2.png", "45x48", "48x48"
    )
    with mmfeat.collect_item_errors() as errors:
        seg.set_params(on_error="missing").fit([i for i, _ in data], masks)
    assert [(e.row, e.modality) for e in errors] == [(2, "mask")]
    assert seg.n_images_fit_ == 2


def test_unreadable_file_names_the_row_and_tiny_images_predict(rng, tmp_path):
    data = [_textures(rng) for _ in range(3)]
    seg = SuperpixelSegmenter(FAST, n_segments=30, classifier=_rf(5), random_state=0)
    seg.fit([i for i, _ in data], [m for _, m in data])
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    _row_error(lambda: seg.predict([data[0][0], str(bad)]), 1, "broken.png")
    for shape in ((1, 1), (1, 7), (2, 2)):
        out = seg.predict([np.full(shape, 0.5, dtype=np.float32)])[0]
        assert out.shape == shape


def test_nan_in_a_depth_map_names_the_row(rng):
    X, y = _depth_task(rng, 4)
    depth = X.loc[3, "depth"].copy()
    depth[5, 7] = np.nan
    X.at[3, "depth"] = depth
    _row_error(lambda: _mm().fit(X, y), 3, "NaN")


def test_single_class_training_set_is_a_clear_error(rng):
    data = [_textures(rng) for _ in range(2)]
    masks = [np.full_like(m, 2) for _, m in data]
    with pytest.raises(InputError, match="at least two classes.*add 1"):
        SuperpixelSegmenter(FAST, n_segments=20, classifier=_rf(5)).fit(
            [i for i, _ in data], masks
        )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"descriptors": ("mean", "hog")}, "descriptors"),
        ({"descriptors": ("context",)}, "context"),
        ({"regions": "felzenszwalb"}, "regions"),
        ({"smoothing": 1.5}, "smoothing"),
        ({"min_labelled": -0.1}, "min_labelled"),
        ({"n_segments": 0}, "n_segments"),
    ],
)
def test_bad_parameters_raise_parameter_error(rng, params, match):
    img, mask = _textures(rng)
    with pytest.raises(ParameterError, match=re.escape(match)):
        SuperpixelSegmenter(FAST, classifier=_rf(5), **params).fit([img], [mask])


def test_tampered_state_is_refused_on_load(rng):
    data = [_textures(rng) for _ in range(2)]
    seg = SuperpixelSegmenter(FAST, n_segments=20, classifier=_rf(3), random_state=0)
    seg.fit([i for i, _ in data], [m for _, m in data])
    state = dict(seg.__getstate__())
    state["impute_"] = state["impute_"][:-1]
    with pytest.raises(ModelStateError, match="impute_"):
        SuperpixelSegmenter.__new__(SuperpixelSegmenter).__setstate__(state)


# ------------------------------------------------------------- persistence
def test_save_and_load_without_trusting_anything(rng, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = _depth_task(rng, 3)
    seg = _mm().set_params(classifier=LogisticRegression(max_iter=500)).fit(X, y)
    path = tmp_path / "seg.skops"
    mmfeat.save(seg, path)
    loaded = mmfeat.load(path)
    for a, b in zip(seg.predict_proba(X), loaded.predict_proba(X)):
        np.testing.assert_array_equal(a, b)


def test_a_boosted_classifier_loads_when_its_trees_are_trusted(rng, tmp_path):
    data = [_textures(rng) for _ in range(2)]
    seg = SuperpixelSegmenter(
        FAST,
        n_segments=30,
        classifier=HistGradientBoostingClassifier(max_iter=5, random_state=0),
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


def test_precomputed_feature_maps_through_a_users_transformer(rng):
    from sklearn.preprocessing import FunctionTransformer

    # two channels of any values (not a photo), passed through as they are
    def as_maps(column):
        out = np.empty(len(column), dtype=object)
        out[:] = [None if c is None else np.asarray(c, np.float32) for c in column]
        return out

    data = []
    for _ in range(4):
        img, mask = _textures(rng)
        maps = np.dstack([img * 40.0 - 7.0, (mask == 2) * 3.0 + rng.random(mask.shape)])
        data.append((maps.astype(np.float32), mask))
    seg = SuperpixelSegmenter(
        FunctionTransformer(as_maps),
        regions="grid",
        region_size=6,
        classifier=_rf(10),
        random_state=0,
    )
    seg.fit([m for m, _ in data], [k for _, k in data])
    assert seg.n_features_["image"] == 2
    assert _accuracy(seg.predict([m for m, _ in data]), [k for _, k in data]) > 0.9
