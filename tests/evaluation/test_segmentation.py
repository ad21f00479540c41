import pickle

import matplotlib
import numpy as np
import pytest
import skimage.metrics
from sklearn.base import BaseEstimator
from sklearn.metrics import confusion_matrix, f1_score, jaccard_score
from sklearn.model_selection import GridSearchCV, KFold

from mmfeat.evaluation import (
    adapted_rand_error,
    boundary_f1,
    dice_score,
    iou_score,
    make_segmentation_scorer,
    mean_iou,
    pixel_accuracy,
    plot_segmentation,
    segmentation_confusion,
    segmentation_report,
    variation_of_information,
)
from mmfeat.exceptions import InputError, ParameterError

matplotlib.use("Agg")

SIZES = [(13, 17), (8, 8), (21, 5)]


def _blocky(rng, shape, n_labels, block=3, low=1):
    """Random labels in blocks, so that masks have regions and boundaries."""
    small = rng.integers(
        low, n_labels + 1, size=(-(-shape[0] // block), -(-shape[1] // block))
    )
    return np.kron(small, np.ones((block, block), dtype=small.dtype))[
        : shape[0], : shape[1]
    ]


@pytest.fixture
def masks():
    """Truth with unlabelled (0) pixels and predictions, of different sizes."""
    rng = np.random.default_rng(0)
    trues, preds = [], []
    for shape in SIZES:
        t = _blocky(rng, shape, 4, low=0)
        p = np.where(
            rng.random(shape) < 0.7, np.where(t == 0, 1, t), rng.integers(1, 5, shape)
        )
        trues.append(t)
        preds.append(p)
    return trues, preds


def _flat(trues, preds, ignore_label=0):
    t = np.concatenate([a.ravel() for a in trues])
    p = np.concatenate([a.ravel() for a in preds])
    if ignore_label is None:
        return t, p
    keep = t != ignore_label
    return t[keep], p[keep]


def _naive_counts(trues, preds, labels, ignore_label=0):
    """Per-class TP, truth and predicted pixel counts, one class at a time."""
    tp, nt, npred = [], [], []
    for c in labels:
        a = b = d = 0
        for t, p in zip(trues, preds):
            valid = (
                np.ones(t.shape, bool) if ignore_label is None else t != ignore_label
            )
            a += np.sum((t == c) & (p == c) & valid)
            b += np.sum((t == c) & valid)
            d += np.sum((p == c) & valid)
        tp.append(a)
        nt.append(b)
        npred.append(d)
    return np.array(tp, float), np.array(nt, float), np.array(npred, float)


# --------------------------------------------------------------------------
# confusion and per-class metrics against references


def test_segmentation_confusion_matches_sklearn(masks):
    trues, preds = masks
    labels, cm = segmentation_confusion(trues, preds)
    t, p = _flat(trues, preds)
    assert labels.tolist() == sorted(set(t) | set(p))
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, confusion_matrix(t, p, labels=labels))
    sub, cm_sub = segmentation_confusion(trues, preds, labels=[3, 1])
    assert sub.tolist() == [3, 1]
    np.testing.assert_array_equal(cm_sub, confusion_matrix(t, p, labels=[3, 1]))


def test_segmentation_confusion_hand_computed():
    t = np.array([[0, 1, 1], [2, 2, 2]])
    p = np.array([[2, 1, 2], [2, 2, 1]])
    labels, cm = segmentation_confusion(t, p)
    # scored pixels (truth, pred): (1,1) (1,2) (2,2) (2,2) (2,1)
    assert labels.tolist() == [1, 2]
    assert cm.tolist() == [[1, 1], [1, 2]]
    _, cm_all = segmentation_confusion(t, p, ignore_label=None)
    assert cm_all.tolist() == [[0, 0, 1], [0, 1, 1], [0, 1, 2]]


@pytest.mark.parametrize("kind", ["iou", "dice"])
def test_class_scores_match_naive_loop(masks, kind):
    trues, preds = masks
    fn = iou_score if kind == "iou" else dice_score
    labels = np.arange(1, 5)
    tp, nt, npred = _naive_counts(trues, preds, labels)
    if kind == "iou":
        per_class, micro = tp / (nt + npred - tp), tp.sum() / (nt + npred - tp).sum()
    else:
        per_class, micro = 2 * tp / (nt + npred), 2 * tp.sum() / (nt + npred).sum()
    np.testing.assert_allclose(fn(trues, preds, average=None), per_class)
    assert fn(trues, preds) == pytest.approx(per_class.mean())
    assert fn(trues, preds, average="micro") == pytest.approx(micro)
    assert fn(trues, preds, average="weighted") == pytest.approx(
        np.average(per_class, weights=nt)
    )


@pytest.mark.parametrize("average", [None, "macro", "micro", "weighted"])
def test_iou_and_dice_match_sklearn_on_flattened_pixels(masks, average):
    trues, preds = masks
    t, p = _flat(trues, preds)
    for labels in (None, [2, 4]):
        np.testing.assert_allclose(
            iou_score(trues, preds, labels=labels, average=average),
            jaccard_score(t, p, labels=labels, average=average),
        )
        np.testing.assert_allclose(
            dice_score(trues, preds, labels=labels, average=average),
            f1_score(t, p, labels=labels, average=average),
        )


def test_mean_iou_is_macro_iou(masks):
    trues, preds = masks
    assert mean_iou(trues, preds) == iou_score(trues, preds, average="macro")
    assert mean_iou(trues, preds, per_image=True) == iou_score(
        trues, preds, per_image=True
    )


def test_metrics_hand_computed():
    t = np.array([[0, 1, 1], [2, 2, 2]])
    p = np.array([[2, 1, 2], [2, 2, 1]])
    # class 1: TP 1, FP 1, FN 1; class 2: TP 2, FP 1, FN 1
    np.testing.assert_allclose(iou_score(t, p, average=None), [1 / 3, 2 / 4])
    np.testing.assert_allclose(dice_score(t, p, average=None), [2 / 4, 4 / 6])
    assert pixel_accuracy(t, p) == pytest.approx(3 / 5)
    assert pixel_accuracy(t, p, ignore_label=None) == pytest.approx(3 / 6)
    assert iou_score(t, p, average="micro") == pytest.approx(3 / 7)


def test_pixel_accuracy_matches_naive(masks):
    trues, preds = masks
    t, p = _flat(trues, preds)
    assert pixel_accuracy(trues, preds) == pytest.approx(np.mean(t == p))
    each = [np.mean(a[a != 0] == b[a != 0]) for a, b in zip(trues, preds)]
    assert pixel_accuracy(trues, preds, per_image=True) == pytest.approx(np.mean(each))


def test_per_image_is_the_mean_over_images(masks):
    trues, preds = masks
    each = [
        iou_score(a, b, labels=[1, 2, 3, 4], average=None) for a, b in zip(trues, preds)
    ]
    expected = np.nanmean(np.array(each), axis=0)
    np.testing.assert_allclose(
        iou_score(trues, preds, average=None, per_image=True), expected
    )
    macro = np.mean([np.nanmean(e) for e in each])
    assert iou_score(trues, preds, per_image=True) == pytest.approx(macro)
    assert iou_score(trues, preds, per_image=True) != pytest.approx(
        iou_score(trues, preds)
    )


def test_stack_equals_list_and_one_image_equals_list_of_one():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 4, size=(3, 9, 11))
    p = rng.integers(1, 4, size=(3, 9, 11))
    assert iou_score(t, p) == iou_score(list(t), list(p))
    assert dice_score(t[0], p[0]) == dice_score([t[0]], [p[0]])


def test_ignore_label_behaviour(masks):
    trues, preds = masks
    t_all, p_all = _flat(trues, preds, ignore_label=None)
    # None scores every pixel: 0 becomes a class like any other
    np.testing.assert_allclose(
        iou_score(trues, preds, average=None, ignore_label=None),
        jaccard_score(t_all, p_all, average=None),
    )
    # another ignore value drops that truth label and keeps 0
    keep = t_all != 3
    np.testing.assert_allclose(
        iou_score(trues, preds, average=None, ignore_label=3),
        jaccard_score(t_all[keep], p_all[keep], average=None),
    )
    # changing predictions on unlabelled pixels changes nothing
    moved = [np.where(t == 0, 4, p) for t, p in zip(trues, preds)]
    assert iou_score(trues, moved) == iou_score(trues, preds)
    assert pixel_accuracy(trues, moved) == pixel_accuracy(trues, preds)
    assert boundary_f1(trues, moved) == boundary_f1(trues, preds)


def test_labels_outside_data_and_zero_division():
    t = np.array([[1, 1, 2]])
    p = np.array([[1, 2, 2]])
    scores = iou_score(t, p, labels=[1, 2, 7], average=None)
    assert np.isnan(scores[2])
    assert iou_score(t, p, labels=[1, 2, 7]) == pytest.approx(np.mean(scores[:2]))
    zeros = iou_score(t, p, labels=[1, 2, 7], average=None, zero_division=0.0)
    assert zeros[2] == 0.0
    assert iou_score(t, p, labels=[1, 2, 7], zero_division=0.0) == pytest.approx(
        np.mean(zeros)
    )


def test_all_unlabelled_gives_zero_division():
    t = [np.zeros((4, 4), int), np.zeros((2, 3), int)]
    p = [np.ones((4, 4), int), np.full((2, 3), 2)]
    for fn in (iou_score, dice_score, mean_iou, pixel_accuracy, boundary_f1):
        assert np.isnan(fn(t, p))
        assert fn(t, p, zero_division=0.0) == 0.0
    assert iou_score(t, p, average=None).shape == (0,)
    assert np.isnan(iou_score(t, p, per_image=True))
    assert np.isnan(adapted_rand_error(t, p)).all()
    assert np.isnan(variation_of_information(t, p)).all()
    # an unlabelled image among labelled ones is left out of per-image means
    t2, p2 = t + [np.array([[1, 2]])], p + [np.array([[1, 2]])]
    assert iou_score(t2, p2, per_image=True) == 1.0
    assert pixel_accuracy(t2, p2, per_image=True) == 1.0
    assert boundary_f1(t2, p2) == 1.0


def test_empty_input_gives_zero_division():
    assert np.isnan(iou_score([], []))
    assert pixel_accuracy([], [], zero_division=1.0) == 1.0


def test_negative_and_large_labels_match_sklearn():
    rng = np.random.default_rng(2)
    values = np.array([-3, 7, 100_000])
    t = [values[rng.integers(0, 3, s)] for s in SIZES]
    p = [values[rng.integers(0, 3, s)] for s in SIZES]
    tf, pf = _flat(t, p)
    np.testing.assert_allclose(
        iou_score(t, p, average=None), jaccard_score(tf, pf, average=None)
    )
    labels, cm = segmentation_confusion(t, p, labels=[100_000, -3])
    np.testing.assert_array_equal(cm, confusion_matrix(tf, pf, labels=[100_000, -3]))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint64])
def test_integer_dtypes_agree(masks, dtype):
    trues, preds = masks
    cast = [a.astype(dtype) for a in trues], [a.astype(dtype) for a in preds]
    np.testing.assert_array_equal(
        iou_score(*cast, average=None), iou_score(trues, preds, average=None)
    )
    assert boundary_f1(*cast) == boundary_f1(trues, preds)
    assert adapted_rand_error(*cast) == adapted_rand_error(trues, preds)


def test_bool_and_integral_float_masks_are_accepted():
    t = np.array([[True, False], [True, True]])
    assert iou_score(t, t, ignore_label=None) == 1.0
    f = np.array([[1.0, 2.0], [2.0, 2.0]])
    assert iou_score(f, f.astype(int)) == 1.0


# --------------------------------------------------------------------------
# bad input


def test_mismatched_shapes_name_the_row():
    t = [np.ones((4, 5), int), np.ones((4, 5), int)]
    p = [np.ones((4, 5), int), np.ones((4, 6), int)]
    for fn in (iou_score, pixel_accuracy, boundary_f1, segmentation_confusion):
        with pytest.raises(InputError, match=r"row 1.*\(4, 5\).*\(4, 6\)") as info:
            fn(t, p)
        assert info.value.row == 1
    with pytest.raises(ValueError, match="row 1"):
        segmentation_report(t, p)


@pytest.mark.parametrize(
    ("t", "p", "match"),
    [
        ([np.ones((2, 2), int)] * 2, [np.ones((2, 2), int)], "2 label images.*1"),
        (np.ones((2, 2)), np.full((2, 2), 1.5), "row 0.*non-integer"),
        (np.ones((2, 2)), np.full((2, 2), np.nan), "row 0.*non-finite"),
        (np.ones((2, 2, 2, 2), int), np.ones((2, 2, 2, 2), int), "shape"),
        ([np.ones(3, int)], [np.ones(3, int)], r"row 0.*\(H, W\)"),
        ([np.array([["a"]])], [np.array([["a"]])], "dtype"),
    ],
)
def test_bad_masks_are_input_errors(t, p, match):
    with pytest.raises(InputError, match=match):
        iou_score(t, p)


def test_absurd_label_counts_are_refused():
    t = np.arange(1, 300 * 300 + 1).reshape(300, 300)
    with pytest.raises(InputError, match="more than 65536 distinct labels"):
        iou_score(t, t)
    small = np.arange(1, 70 * 70 + 1).reshape(70, 70)
    with pytest.raises(InputError, match="more than 4096 distinct labels"):
        segmentation_confusion(small, small)
    # region metrics use a sparse table and take any number of regions
    pairs = np.repeat(np.arange(1, 200 * 400 + 1), 2).reshape(400, 400)
    assert adapted_rand_error(pairs, pairs) == pytest.approx((0.0, 1.0, 1.0))


@pytest.mark.parametrize(
    ("fn", "kwargs"),
    [
        (iou_score, {"average": "binary"}),
        (dice_score, {"ignore_label": 0.5}),
        (boundary_f1, {"tolerance": -1}),
        (adapted_rand_error, {"alpha": 2.0}),
        (iou_score, {"labels": [1, 1]}),
        (iou_score, {"labels": [[1, 2]]}),
    ],
)
def test_bad_parameters_raise_parameter_error(fn, kwargs):
    t = np.ones((3, 3), int)
    with pytest.raises(ParameterError):
        fn(t, t, **kwargs)


# --------------------------------------------------------------------------
# boundary F1


def _naive_boundaries(m, valid):
    h, w = m.shape
    out = np.zeros((h, w), bool)
    for i in range(h):
        for j in range(w):
            if not valid[i, j]:
                continue
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                a, b = i + di, j + dj
                if 0 <= a < h and 0 <= b < w and valid[a, b] and m[a, b] != m[i, j]:
                    out[i, j] = True
    return out


def _naive_matched(src, dst, tol):
    """Share of src boundary pixels with a dst boundary pixel within tol."""
    a, b = np.argwhere(src), np.argwhere(dst)
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(axis=1)
    return np.mean(d <= tol)


def _naive_bf(trues, preds, tol):
    f1s, ps, rs = [], [], []
    for t, p in zip(trues, preds):
        valid = t != 0
        bt, bp = _naive_boundaries(t, valid), _naive_boundaries(p, valid)
        prec, rec = _naive_matched(bp, bt, tol), _naive_matched(bt, bp, tol)
        ps.append(prec)
        rs.append(rec)
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return np.mean(f1s), np.mean(ps), np.mean(rs)


@pytest.mark.parametrize("tolerance", [0, 1, 2.5])
def test_boundary_f1_matches_naive(tolerance):
    rng = np.random.default_rng(3)
    trues = [_blocky(rng, s, 3, low=0) for s in SIZES]
    preds = [np.roll(_blocky(rng, s, 3, block=4), 1, axis=1) for s in SIZES]
    got = boundary_f1(trues, preds, tolerance=tolerance, return_precision_recall=True)
    np.testing.assert_allclose(got, _naive_bf(trues, preds, tolerance))


def test_boundary_f1_tolerance_and_edge_cases():
    t = np.ones((10, 10), int)
    t[:, 5:] = 2
    shifted = np.roll(t, 2, axis=1)
    shifted[:, :2] = 1
    assert boundary_f1(t, t, tolerance=0) == 1.0
    assert boundary_f1(t, shifted, tolerance=0) < 1.0
    assert boundary_f1(t, shifted, tolerance=1) < 1.0
    assert boundary_f1(t, shifted, tolerance=2) == 1.0
    flat = np.ones((10, 10), int)
    # no boundary in either: perfect; boundaries in one only: zero
    assert boundary_f1(flat, flat) == 1.0
    f1, precision, recall = boundary_f1(t, flat, return_precision_recall=True)
    assert (f1, recall) == (0.0, 0.0) and np.isnan(precision)


# --------------------------------------------------------------------------
# scikit-image region metrics


def test_region_metrics_match_skimage(masks):
    trues, preds = masks
    t, p = _flat(trues, preds, ignore_label=None)
    ref = skimage.metrics.adapted_rand_error(t, p, ignore_labels=(0,))
    np.testing.assert_allclose(adapted_rand_error(trues, preds), ref)
    ref_vi = skimage.metrics.variation_of_information(t, p, ignore_labels=(0,))
    np.testing.assert_allclose(variation_of_information(trues, preds), ref_vi)
    each = [
        skimage.metrics.variation_of_information(a, b, ignore_labels=(0,))
        for a, b in zip(trues, preds)
    ]
    np.testing.assert_allclose(
        variation_of_information(trues, preds, per_image=True), np.mean(each, axis=0)
    )
    each = [
        skimage.metrics.adapted_rand_error(a, b, alpha=0.3, ignore_labels=(0,))
        for a, b in zip(trues, preds)
    ]
    np.testing.assert_allclose(
        adapted_rand_error(trues, preds, alpha=0.3, per_image=True),
        np.mean(each, axis=0),
    )


def test_region_metrics_ignore_renaming():
    rng = np.random.default_rng(4)
    t = _blocky(rng, (12, 12), 3)
    p = _blocky(rng, (12, 12), 3)
    assert adapted_rand_error(t, p) == pytest.approx(adapted_rand_error(t, p + 10))
    np.testing.assert_allclose(
        variation_of_information(t, p), variation_of_information(t * 7, p)
    )
    assert variation_of_information(t, t).sum() == pytest.approx(0.0)


# --------------------------------------------------------------------------
# report


def test_segmentation_report_values(masks):
    trues, preds = masks
    report = segmentation_report(trues, preds, target_names={1: "sky", 3: "sea"})
    assert list(report.columns) == [
        "iou",
        "dice",
        "precision",
        "recall",
        "support",
        "score",
    ]
    assert list(report.index) == [
        "sky",
        "2",
        "sea",
        "4",
        "mean_iou",
        "pixel_accuracy",
        "boundary_f1",
    ]
    t, p = _flat(trues, preds)
    classes = report.iloc[:4]
    np.testing.assert_allclose(classes["iou"], iou_score(trues, preds, average=None))
    np.testing.assert_allclose(classes["dice"], dice_score(trues, preds, average=None))
    tp, nt, npred = _naive_counts(trues, preds, [1, 2, 3, 4])
    np.testing.assert_allclose(classes["precision"], tp / npred)
    np.testing.assert_allclose(classes["recall"], tp / nt)
    np.testing.assert_allclose(classes["support"], nt)
    assert report.loc["mean_iou", "score"] == pytest.approx(mean_iou(trues, preds))
    assert report.loc["pixel_accuracy", "score"] == pytest.approx(np.mean(t == p))
    assert report.loc["pixel_accuracy", "support"] == t.size
    assert report.loc["boundary_f1", "score"] == pytest.approx(
        boundary_f1(trues, preds)
    )


def test_segmentation_report_target_names():
    t = np.array([[1, 2, 2]])
    report = segmentation_report(t, t, target_names=["bg", "horse"])
    assert list(report.index[:2]) == ["bg", "horse"]
    with pytest.raises(ParameterError, match="target_names has 3 names.*2 classes"):
        segmentation_report(t, t, target_names=["a", "b", "c"])


# --------------------------------------------------------------------------
# scorer in a grid search


class ThresholdSegmenter(BaseEstimator):
    """Foreground (2) where a grey image is above t, background (1) elsewhere."""

    def __init__(self, t=0.5):
        self.t = t

    def fit(self, X, y):
        self.fitted_ = True
        return self

    def predict(self, X):
        return [np.where(np.asarray(x) > self.t, 2, 1) for x in X]


@pytest.fixture
def grey_images():
    rng = np.random.default_rng(5)
    X, y = [], []
    for k in range(8):
        shape = (10 + k, 12)
        x = rng.random(shape)
        mask = np.where(x > 0.6, 2, 1)
        mask[rng.random(shape) < 0.2] = 0  # unlabelled
        X.append(x)
        y.append(mask)
    return X, y


@pytest.mark.parametrize(
    ("metric", "kwargs"),
    [
        ("mean_iou", {}),
        ("pixel_accuracy", {}),
        ("dice", {"average": "micro"}),
        ("boundary_f1", {"tolerance": 0}),
        ("foreground_iou", {"label": 2}),
        ("mean_iou", {"per_image": True}),
    ],
)
def test_scorer_picks_the_right_threshold(grey_images, metric, kwargs):
    X, y = grey_images
    scorer = make_segmentation_scorer(metric, **kwargs)
    search = GridSearchCV(
        ThresholdSegmenter(),
        {"t": [0.2, 0.4, 0.6, 0.8]},
        scoring=scorer,
        cv=KFold(2),
        error_score="raise",
    )
    search.fit(X, y)
    assert search.best_params_ == {"t": 0.6}
    assert search.best_score_ == pytest.approx(1.0)
    assert search.cv_results_["mean_test_score"][0] < 1.0


def test_scorer_pickles_and_scores_like_the_metric(grey_images):
    X, y = grey_images
    model = ThresholdSegmenter(t=0.5).fit(X, y)
    scorer = make_segmentation_scorer("foreground_iou", label=2, per_image=True)
    clone = pickle.loads(pickle.dumps(scorer))
    expected = iou_score(y, model.predict(X), labels=[2], average=None, per_image=True)
    assert clone(model, X, y) == pytest.approx(float(expected[0]))
    assert scorer(model, X, y) == clone(model, X, y)
    assert make_segmentation_scorer()(model, X, y) == pytest.approx(
        mean_iou(y, model.predict(X))
    )


def test_scorer_bad_arguments():
    with pytest.raises(ParameterError, match="metric"):
        make_segmentation_scorer("accuracy")
    with pytest.raises(ParameterError, match="needs label="):
        make_segmentation_scorer("foreground_iou")
    with pytest.raises(ParameterError, match="integer class label"):
        make_segmentation_scorer("foreground_iou", label="horse")
    with pytest.raises(ParameterError, match=r"unknown arguments \['tolerance'\]"):
        make_segmentation_scorer("mean_iou", tolerance=2)


# --------------------------------------------------------------------------
# plot


def test_plot_segmentation_axes_and_inputs_unchanged():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(6)
    image = rng.random((12, 14)).astype(np.float32)
    t = _blocky(rng, (12, 14), 3, low=0)
    p = _blocky(rng, (12, 14), 3)
    copies = [a.copy() for a in (image, t, p)]
    fig = plot_segmentation(image, t, p, target_names=["a", "b", "c"])
    assert len(fig.axes) == 4
    for a, b in zip((image, t, p), copies):
        np.testing.assert_array_equal(a, b)
    assert len(plot_segmentation(image, t).axes) == 2
    assert len(plot_segmentation(image).axes) == 1
    rgb = rng.random((12, 14, 3))
    _, axes = plt.subplots(1, 3)
    fig3 = plot_segmentation(rgb, y_pred=p, ax=[axes[0], axes[1]])
    assert fig3 is axes[0].figure
    assert len(axes[0].images) == 1 and len(axes[1].images) == 2
    plt.close("all")


def test_plot_segmentation_errors():
    import matplotlib.pyplot as plt

    image = np.zeros((5, 6))
    with pytest.raises(InputError, match=r"y_pred has shape \(5, 5\).*\(5, 6\)"):
        plot_segmentation(image, np.ones((5, 6), int), np.ones((5, 5), int))
    _, ax = plt.subplots()
    with pytest.raises(ParameterError, match="ax must hold 2 Axes"):
        plot_segmentation(image, np.ones((5, 6), int), ax=[ax])
    plt.close("all")
