"""mmfeat's own estimator checks for raw-input estimators.

scikit-learn's ``check_estimator`` feeds estimators 2-D numeric matrices; an
extractor whose ``X`` is a column of images, clips or strings declares that in
its tags and is skipped there. These checks take its place, in the manner of
``check_samplers_*`` in imbalanced-learn: each ``check_extractor_*`` takes an
estimator instance, builds small synthetic items of the modality its tags
declare (:func:`mmfeat.utils.discovery.item_modality`) and raises
``AssertionError`` when a contract is broken.

Use :func:`parametrize_with_mmfeat_checks` in a test module, or
:func:`check_mmfeat_estimator` to run every check at once.
"""

import inspect
import io
import pickle
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mmfeat.exceptions import InputError
from mmfeat.utils._item_errors import collect_item_errors
from mmfeat.utils._tags import get_item_tags

__all__ = [
    "check_captioner_bad_item",
    "check_captioner_grid_search",
    "check_captioner_input_containers",
    "check_captioner_missing_item",
    "check_captioner_pickle",
    "check_captioner_predict",
    "check_captioner_predict_changes_nothing",
    "check_extractor_bad_item",
    "check_extractor_clone",
    "check_extractor_feature_names",
    "check_extractor_fit_returns_self",
    "check_extractor_get_set_params",
    "check_extractor_init_stores_params",
    "check_extractor_input_containers",
    "check_extractor_missing_item",
    "check_extractor_pickle",
    "check_extractor_pipeline_grid_search",
    "check_extractor_random_state",
    "check_extractor_state_checked_on_load",
    "check_extractor_transform_changes_nothing",
    "check_segmenter_bad_item",
    "check_segmenter_grid_search",
    "check_segmenter_input_containers",
    "check_segmenter_missing_item",
    "check_segmenter_pickle",
    "check_segmenter_predict",
    "check_segmenter_predict_changes_nothing",
    "check_segmenter_random_state",
    "check_segmenter_state_checked_on_load",
    "check_mmfeat_estimator",
    "make_test_items",
    "make_test_masks",
    "make_test_targets",
    "parametrize_with_mmfeat_checks",
    "estimator_test_instances",
    "estimator_test_params",
    "yield_mmfeat_checks",
]

_N_ITEMS = 8


# --------------------------------------------------------------------------
# Synthetic items
# --------------------------------------------------------------------------
def _image(rng, i, size=64):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    freq = 2 + (i % 4)
    img = 0.5 + 0.25 * np.sin(2 * np.pi * freq * (xx if i % 2 else yy))
    img += 0.2 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < (0.1 + 0.03 * i) ** 2)
    img += 0.05 * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def make_test_items(modality, *, n=_N_ITEMS, random_state=0, folder=None):
    """Build ``n`` small synthetic items of ``modality`` and two-class labels.

    Items mix the encodings an extractor must accept: arrays, encoded bytes
    and (when ``folder`` is given) file paths.

    Parameters
    ----------
    modality : {"image", "audio", "text"}
        Kind of items.
    n : int, default=8
        Number of items (half of each class).
    random_state : int, default=0
        Seed.
    folder : str or Path, default=None
        Where to write the file-path items; ``None`` uses no paths.

    Returns
    -------
    items : list
        The items.
    y : ndarray of int, shape (n,)
        Labels 0/1, which the items' content does depend on.
    """
    rng = np.random.default_rng(random_state)
    y = np.arange(n) % 2
    items = []
    for i in range(n):
        if modality == "image":
            img = _image(rng, i)
            if i % 4 == 1:  # an RGB uint8 array
                img = (np.dstack([img, img[::-1], img.T]) * 255).astype(np.uint8)
            elif i % 4 == 2:  # PNG bytes
                import cv2

                img = cv2.imencode(".png", (img * 255).astype(np.uint8))[1].tobytes()
            elif i % 4 == 3 and folder is not None:
                import cv2

                path = Path(folder) / f"item_{i}.png"
                cv2.imwrite(str(path), (img * 255).astype(np.uint8))
                img = str(path)
            items.append(img)
        elif modality == "audio":
            sr = 8000
            t = np.arange(int(0.5 * sr)) / sr
            f0 = 300 + 400 * y[i] + 25 * i
            clip = 0.5 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(t.size)
            clip = clip.astype(np.float32)
            if i % 4 == 2:
                import soundfile as sf

                buf = io.BytesIO()
                sf.write(buf, clip, sr, format="WAV", subtype="PCM_16")
                clip = buf.getvalue()
            elif i % 4 == 3 and folder is not None:
                import soundfile as sf

                path = Path(folder) / f"item_{i}.wav"
                sf.write(path, clip, sr, subtype="PCM_16")
                clip = str(path)
            items.append(clip)
        elif modality == "text":
            words = ["red shirt cotton", "blue shoe leather", "green bag canvas"]
            extra = ["casual summer", "formal winter"][y[i]]
            items.append(f"{words[i % 3]} {extra} item {i}")
        else:
            raise ValueError(f"unknown modality {modality!r}")
    return items, y


def make_test_masks(images):
    """One two-class mask per image: 2 where the image is brighter than its median.

    Labels follow mmfeat's convention (1 and 2 are classes, 0 would be
    unlabelled); a border of the mask is left unlabelled, as scribbles are.
    """
    from mmfeat.io import read_image

    masks = []
    for item in images:
        img = read_image(item)
        mask = np.where(img > np.median(img), 2, 1).astype(np.uint8)
        mask[:2] = 0
        masks.append(mask)
    return masks


def _bad_item(modality):
    return {"image": "no/such/image.png", "audio": "no/such/clip.wav"}.get(
        modality, 3.5j
    )


# --------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------
def _is_item_output(out):
    return isinstance(out, np.ndarray) and out.dtype == object and out.ndim == 1


def _n_rows(out):
    return out.shape[0] if hasattr(out, "shape") else len(out)


def _dense(out):
    if sparse.issparse(out):
        return out.toarray()
    if isinstance(out, pd.DataFrame):
        return out.to_numpy()
    return np.asarray(out)


def _assert_same_output(a, b, msg):
    assert _n_rows(a) == _n_rows(b), f"{msg}: {_n_rows(a)} rows vs {_n_rows(b)}"
    if _is_item_output(a) or _is_item_output(b):
        for i, (u, v) in enumerate(zip(a, b)):
            if u is None or v is None:
                assert u is None and v is None, f"{msg}: row {i} missing in one only"
            else:
                np.testing.assert_allclose(
                    np.asarray(u, dtype=float),
                    np.asarray(v, dtype=float),
                    rtol=1e-6,
                    atol=1e-7,
                    err_msg=f"{msg}: row {i}",
                )
        return
    np.testing.assert_allclose(_dense(a), _dense(b), rtol=1e-6, atol=1e-7, err_msg=msg)


def _row_is_missing(out, i):
    if _is_item_output(out):
        return out[i] is None
    row = _dense(
        out[i : i + 1] if not isinstance(out, pd.DataFrame) else out.iloc[i : i + 1]
    )
    return bool(np.isnan(row).all())


def _summarise(column):
    """Fixed-length statistics of each item, so any reader feeds a classifier."""
    rows = []
    for item in column:
        a = np.asarray(item, dtype=float)
        rows.append([a.mean(), a.std(), a.min(), a.max()])
    return np.asarray(rows)


def _fitted(estimator, items, y):
    est = clone(estimator)
    return est.fit(items, y), est.transform(items)


class _Env:
    """Synthetic items for one estimator, with file paths in a temp folder."""

    def __init__(self, estimator):
        tags = get_item_tags(estimator)
        self.modality = tags.modality
        self._tmp = tempfile.TemporaryDirectory(prefix="mmfeat-checks-")
        self.items, self.y = make_test_items(self.modality, folder=self._tmp.name)
        self.kind = tags.target
        if tags.segmenter:
            self.y = make_test_masks(self.items)
        elif tags.target is not None:
            self.y = make_test_targets(tags.target, self.y)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._tmp.cleanup()


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------
def check_extractor_init_stores_params(estimator):
    """``__init__`` stores its arguments unchanged and sets nothing else."""
    cls = type(estimator)
    params = estimator.get_params(deep=False)
    sig = inspect.signature(cls.__init__)
    names = [p for p in sig.parameters if p != "self"]
    assert sorted(params) == sorted(names), (
        f"{cls.__name__}.get_params() keys {sorted(params)} differ from __init__ "
        f"arguments {sorted(names)}"
    )
    fresh = cls(**params)
    fitted_attrs = [
        a for a in vars(fresh) if a.endswith("_") and not a.startswith("__")
    ]
    assert not fitted_attrs, (
        f"{cls.__name__}.__init__ sets fitted attributes {fitted_attrs}"
    )
    for name in names:
        assert getattr(fresh, name) is params[name], (
            f"{cls.__name__}.__init__ changed parameter {name!r}"
        )


def check_extractor_clone(estimator):
    """``clone`` gives an unfitted estimator with equal parameters."""
    with _Env(estimator) as env:
        est = clone(estimator).fit(env.items, env.y)
        cloned = clone(est)
    assert cloned.get_params() == est.get_params() or repr(cloned) == repr(est)
    fitted = [a for a in vars(cloned) if a.endswith("_") and not a.startswith("__")]
    assert not fitted, f"clone kept fitted attributes {fitted}"


def check_extractor_get_set_params(estimator):
    """``set_params(**get_params())`` is a no-op round trip."""
    est = clone(estimator)
    before = est.get_params(deep=False)
    est.set_params(**before)
    after = est.get_params(deep=False)
    assert before.keys() == after.keys()
    for k in before:
        assert before[k] is after[k] or repr(before[k]) == repr(after[k]), k


def check_extractor_fit_returns_self(estimator):
    """``fit`` returns the estimator itself."""
    with _Env(estimator) as env:
        est = clone(estimator)
        assert est.fit(env.items, env.y) is est, (
            f"{type(est).__name__}.fit must return self"
        )


def check_extractor_input_containers(estimator):
    """A list, object array, Series and one-column DataFrame give one output."""
    with _Env(estimator) as env:
        est, ref = _fitted(estimator, env.items, env.y)
        assert _n_rows(ref) == len(env.items), (
            f"output has {_n_rows(ref)} rows for {len(env.items)} items"
        )
        arr = np.empty(len(env.items), dtype=object)
        arr[:] = env.items
        for name, X in [
            ("object ndarray", arr),
            ("Series", pd.Series(env.items, dtype=object)),
            (
                "one-column DataFrame",
                pd.DataFrame({"col": pd.Series(env.items, dtype=object)}),
            ),
        ]:
            _assert_same_output(ref, est.transform(X), f"transform({name}) vs list")


def check_extractor_pickle(estimator):
    """A fitted estimator pickles and gives identical output after loading."""
    with _Env(estimator) as env:
        est, ref = _fitted(estimator, env.items, env.y)
        loaded = pickle.loads(pickle.dumps(est))
        _assert_same_output(ref, loaded.transform(env.items), "after pickle round trip")


def check_extractor_state_checked_on_load(estimator):
    """Rebuilding a fitted estimator from a file checks its fitted state.

    Model files are hostile until checked: the estimator must validate its
    parameters and fitted attributes when unpickled or loaded by skops
    (:class:`~mmfeat.utils._state.CheckedStateMixin`), so an output size
    edited in the file is refused instead of reaching a kernel.
    """
    from mmfeat.exceptions import ModelStateError
    from mmfeat.utils._state import CheckedStateMixin

    assert isinstance(estimator, CheckedStateMixin), (
        f"{type(estimator).__name__} does not check its fitted state on load: "
        "derive it from mmfeat.utils._state.CheckedStateMixin"
    )
    with _Env(estimator) as env:
        est, _ = _fitted(estimator, env.items, env.y)
        n_out = getattr(est, "n_features_out_", None)
        if not isinstance(n_out, (int, np.integer)):
            return  # readers: nothing sized to check beyond the parameters
        blob = pickle.dumps(est)
        state = dict(est.__getstate__())
        state["n_features_out_"] = int(n_out) + 1
        tampered = type(est).__new__(type(est))
        try:
            tampered.__setstate__(state)
        except ModelStateError:
            pickle.loads(blob)  # the untouched state still loads
            return
        raise AssertionError(
            f"{type(est).__name__} accepted n_features_out_={n_out + 1} (fitted "
            f"{n_out}) when rebuilt: its _check_fitted_state must compare the "
            "output size with what the parameters and fitted arrays give"
        )


def check_extractor_missing_item(estimator):
    """A ``None``/NaN item gives a missing row; the other rows are unchanged."""
    with _Env(estimator) as env:
        est, ref = _fitted(estimator, env.items, env.y)
        items = list(env.items)
        items[1] = None
        items[3] = float("nan")
        out = est.transform(items)
        assert _n_rows(out) == len(items), (
            f"transform returned {_n_rows(out)} rows for {len(items)} items "
            "(missing items must keep their rows)"
        )
        for i in (1, 3):
            assert _row_is_missing(out, i), (
                f"row {i} (missing item) is not a missing row"
            )
        keep = [i for i in range(len(items)) if i not in (1, 3)]
        _assert_same_output(
            ref[keep] if not isinstance(ref, pd.DataFrame) else ref.iloc[keep],
            out[keep] if not isinstance(out, pd.DataFrame) else out.iloc[keep],
            "rows next to missing items changed",
        )


def check_extractor_bad_item(estimator):
    """A bad item raises ``InputError`` naming its row, or is recorded."""
    if "on_error" not in estimator.get_params():
        return
    with _Env(estimator) as env:
        items = list(env.items)
        bad = _bad_item(env.modality)
        items[2] = bad
        est = clone(estimator).set_params(on_error="raise").fit(env.items, env.y)
        try:
            est.transform(items)
        except InputError as exc:
            assert exc.row == 2, f"InputError names row {exc.row}, expected 2"
            assert "row 2" in str(exc), str(exc)
        else:
            raise AssertionError(
                "a bad item did not raise InputError with on_error='raise'"
            )
        est = clone(estimator).set_params(on_error="missing").fit(env.items, env.y)
        with collect_item_errors() as errors:
            out = est.transform(items)
        assert _n_rows(out) == len(items), "a bad item changed the number of rows"
        assert _row_is_missing(out, 2), "a bad item did not become a missing row"
        rows = [e.row for e in errors]
        assert rows == [2], (
            f"collect_item_errors should report row 2 only; got {list(errors)}"
        )


def check_extractor_transform_changes_nothing(estimator):
    """``transform`` leaves the estimator as ``fit`` left it (nested parts too).

    scikit-learn's ``check_dict_unchanged`` for raw items, and deeper: the
    attributes are compared by identity and the whole estimator by its
    :func:`joblib.hash`, so state that a call leaves behind (a record of the
    last call's bad rows, a lazily built cache) fails the check. Bad and
    missing items are in the column, so the error path runs too.
    """
    import joblib

    with _Env(estimator) as env:
        items = list(env.items)
        params = {"on_error": "missing"} if "on_error" in estimator.get_params() else {}
        est = clone(estimator).set_params(**params).fit(env.items, env.y)
        if params:
            items[2] = _bad_item(env.modality)
        items[1] = None
        before = dict(vars(est))
        digest = joblib.hash(est)
        est.transform(items)
        after = vars(est)
        added = sorted(set(after) - set(before))
        assert not added, f"transform set new attributes {added}"
        changed = sorted(k for k in before if after.get(k) is not before[k])
        assert not changed, f"transform replaced attributes {changed}"
        assert joblib.hash(est) == digest, (
            "transform changed the estimator's state (a nested part or an "
            "attribute's content)"
        )


def check_extractor_feature_names(estimator):
    """``get_feature_names_out`` matches the number of output columns."""
    with _Env(estimator) as env:
        est, out = _fitted(estimator, env.items, env.y)
    if _is_item_output(out):
        return  # readers output items, not features
    names = est.get_feature_names_out()
    assert len(names) == out.shape[1], f"{len(names)} names for {out.shape[1]} columns"
    assert len(set(names)) == len(names), "feature names are not unique"


def check_extractor_random_state(estimator):
    """Two fits with the same ``random_state`` give the same output."""
    if "random_state" not in estimator.get_params():
        return
    with _Env(estimator) as env:
        est = clone(estimator).set_params(random_state=0)
        _, a = _fitted(est, env.items, env.y)
        _, b = _fitted(est, env.items, env.y)
        _assert_same_output(a, b, "same random_state, different output")


def check_extractor_pipeline_grid_search(estimator):
    """The estimator works in a ``Pipeline`` inside ``GridSearchCV``."""
    with _Env(estimator) as env:
        est = clone(estimator)
        _, out = _fitted(est, env.items, env.y)
        steps = [("est", est)]
        if _is_item_output(out):
            steps.append(("summary", FunctionTransformer(_summarise)))
        steps.append(("clf", LogisticRegression()))
        pipe = Pipeline(steps)
        grid = [
            {f"est__{k}": [v] for k, v in p.items()}
            for p in estimator_test_params(type(est))
        ]
        grid = [g for g in grid if g] or [{"clf__C": [0.1, 1.0]}]
        search = GridSearchCV(pipe, grid, cv=2, error_score="raise")
        arr = np.empty(len(env.items), dtype=object)
        arr[:] = env.items
        search.fit(arr, env.y)
        pred = search.predict(arr)
        assert pred.shape == (len(env.items),)


def _same_item(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a is b or a == b


def check_sampler_fit_resample(estimator):
    """``fit_resample`` keeps every input row first and in order, adds rows."""
    with _Env(estimator) as env:
        est = clone(estimator)
        X_res, y_res = est.fit_resample(env.items, env.y)
        n = len(env.items)
        assert len(X_res) == len(y_res) >= n, (
            f"fit_resample gave {len(X_res)} rows and {len(y_res)} labels for {n}"
        )
        for i in range(n):
            assert _same_item(X_res[i], env.items[i]), f"input row {i} changed"
        assert np.array_equal(np.asarray(y_res)[:n], np.asarray(env.y))
        assert not hasattr(est, "transform"), (
            "a sampler must not have transform (pipelines would call it at "
            "predict time)"
        )


def check_sampler_random_state(estimator):
    """Equal ``random_state`` gives equal resampling, also after pickling."""
    if "random_state" not in estimator.get_params():
        return
    with _Env(estimator) as env:
        a = clone(estimator).set_params(random_state=0)
        b = pickle.loads(pickle.dumps(clone(a)))
        Xa, ya = a.fit_resample(env.items, env.y)
        Xb, yb = b.fit_resample(env.items, env.y)
        assert np.array_equal(np.asarray(ya), np.asarray(yb))
        for i, (u, v) in enumerate(zip(Xa, Xb)):
            assert _same_item(u, v), f"row {i} differs with the same random_state"


# --------------------------------------------------------------------------
# Segmenters: fit(images, masks), predict -> one label image per row
# --------------------------------------------------------------------------
def _fitted_segmenter(estimator, env, **params):
    return clone(estimator).set_params(**params).fit(env.items, env.y)


def _assert_same_maps(a, b, msg):
    assert len(a) == len(b), f"{msg}: {len(a)} rows vs {len(b)}"
    for i, (u, v) in enumerate(zip(a, b)):
        if u is None or v is None:
            assert u is None and v is None, f"{msg}: row {i} missing in one only"
        else:
            np.testing.assert_allclose(
                u, v, rtol=1e-5, atol=1e-6, err_msg=f"{msg}: row {i}"
            )


def check_segmenter_predict(estimator):
    """One label image per row, of its image's size, holding ``classes_`` only.

    ``predict_proba`` maps sum to one and agree with ``predict``.
    """
    with _Env(estimator) as env:
        est = _fitted_segmenter(estimator, env)
        labels = est.predict(env.items)
        proba = est.predict_proba(env.items)
        assert len(labels) == len(env.items) == len(proba)
        for i, (lab, p, mask) in enumerate(zip(labels, proba, env.y)):
            assert lab.shape == mask.shape, f"row {i}: {lab.shape} vs {mask.shape}"
            assert set(np.unique(lab)) <= set(est.classes_.tolist()), f"row {i}"
            assert p.shape == (*mask.shape, len(est.classes_)), f"row {i}: {p.shape}"
            np.testing.assert_allclose(p.sum(axis=2), 1.0, atol=1e-4)
            np.testing.assert_array_equal(lab, est.classes_[np.argmax(p, axis=2)])
        assert 0 not in est.classes_, "0 (unlabelled) became a class"


def check_segmenter_input_containers(estimator):
    """A list, object array, Series and one-column DataFrame predict the same."""
    with _Env(estimator) as env:
        est = _fitted_segmenter(estimator, env)
        ref = est.predict_proba(env.items)
        arr = np.empty(len(env.items), dtype=object)
        arr[:] = env.items
        for name, X in [
            ("object ndarray", arr),
            ("Series", pd.Series(env.items, dtype=object)),
            (
                "one-column DataFrame",
                pd.DataFrame({"c": pd.Series(env.items, dtype=object)}),
            ),
        ]:
            _assert_same_maps(ref, est.predict_proba(X), f"predict_proba({name})")


def check_segmenter_pickle(estimator):
    """A fitted segmenter pickles and predicts the same after loading."""
    with _Env(estimator) as env:
        est = _fitted_segmenter(estimator, env)
        loaded = pickle.loads(pickle.dumps(est))
        _assert_same_maps(
            est.predict_proba(env.items), loaded.predict_proba(env.items), "pickle"
        )


def check_segmenter_state_checked_on_load(estimator):
    """A model file whose classes were edited is refused when rebuilt."""
    from mmfeat.exceptions import ModelStateError
    from mmfeat.utils._state import CheckedStateMixin

    assert isinstance(estimator, CheckedStateMixin)
    with _Env(estimator) as env:
        est = _fitted_segmenter(estimator, env)
    state = dict(est.__getstate__())
    state["classes_"] = np.array([0, 1])  # 0 is 'unlabelled', never a class
    tampered = type(est).__new__(type(est))
    try:
        tampered.__setstate__(state)
    except ModelStateError:
        return
    raise AssertionError(f"{type(est).__name__} accepted classes_=[0, 1] on load")


def check_segmenter_missing_item(estimator):
    """A missing image gives ``None``; the other rows are unchanged."""
    with _Env(estimator) as env:
        est = _fitted_segmenter(estimator, env)
        ref = est.predict_proba(env.items)
        items = list(env.items)
        items[1] = None
        out = est.predict_proba(items)
        assert out[1] is None, "a missing image did not give None"
        keep = [i for i in range(len(items)) if i != 1]
        _assert_same_maps([ref[i] for i in keep], [out[i] for i in keep], "neighbours")
        masks = list(env.y)
        with collect_item_errors():
            est2 = clone(estimator).set_params(on_error="missing").fit(items, masks)
        assert est2.n_images_fit_ == len(items) - 1


def check_segmenter_bad_item(estimator):
    """A bad image or a mask of the wrong size names its row, or is recorded."""
    with _Env(estimator) as env:
        items = list(env.items)
        items[2] = _bad_item(env.modality)
        est = _fitted_segmenter(estimator, env, on_error="raise")
        try:
            est.predict(items)
        except InputError as exc:
            assert exc.row == 2 and "row 2" in str(exc), str(exc)
        else:
            raise AssertionError("a bad image did not raise InputError")
        masks = list(env.y)
        masks[3] = masks[3][:-1]
        try:
            clone(estimator).set_params(on_error="raise").fit(env.items, masks)
        except InputError as exc:
            assert exc.row == 3 and "mask" in str(exc), str(exc)
        else:
            raise AssertionError("a mask of the wrong size did not raise InputError")
        est = _fitted_segmenter(estimator, env, on_error="missing")
        with collect_item_errors() as errors:
            out = est.predict(items)
        assert out[2] is None and all(out[i] is not None for i in (0, 1, 3))
        assert [e.row for e in errors] == [2], list(errors)
        with collect_item_errors() as errors:
            clone(est).fit(env.items, masks)
        assert [e.row for e in errors] == [3], list(errors)


def check_segmenter_predict_changes_nothing(estimator):
    """``predict`` and ``predict_proba`` leave the segmenter as ``fit`` left it."""
    import joblib

    with _Env(estimator) as env:
        est = _fitted_segmenter(estimator, env, on_error="missing")
        items = list(env.items)
        items[1] = None
        items[2] = _bad_item(env.modality)
        before = dict(vars(est))
        digest = joblib.hash(est)
        est.predict(items)
        est.predict_proba(items)
        assert sorted(vars(est)) == sorted(before), "predict set new attributes"
        changed = sorted(k for k in before if vars(est)[k] is not before[k])
        assert not changed, f"predict replaced attributes {changed}"
        assert joblib.hash(est) == digest, "predict changed the segmenter's state"


def check_segmenter_random_state(estimator):
    """Equal ``random_state`` gives equal probability maps."""
    with _Env(estimator) as env:
        a = _fitted_segmenter(estimator, env, random_state=0).predict_proba(env.items)
        b = _fitted_segmenter(estimator, env, random_state=0).predict_proba(env.items)
        _assert_same_maps(a, b, "same random_state, different maps")


def check_segmenter_grid_search(estimator):
    """``GridSearchCV`` over the segmenter works with its default score (mean IoU)."""
    with _Env(estimator) as env:
        grid = [
            {k: [v] for k, v in p.items()}
            for p in estimator_test_params(type(estimator))
        ][:1]
        arr = np.empty(len(env.items), dtype=object)
        arr[:] = env.items
        masks = np.empty(len(env.y), dtype=object)
        masks[:] = env.y
        search = GridSearchCV(clone(estimator), grid, cv=2, error_score="raise")
        search.fit(arr, masks)
        assert 0.0 <= search.best_score_ <= 1.0, search.best_score_
        assert len(search.predict(arr)) == len(arr)


_SEGMENTER_CHECKS = [
    check_extractor_init_stores_params,
    check_extractor_clone,
    check_extractor_get_set_params,
    check_extractor_fit_returns_self,
    check_segmenter_predict,
    check_segmenter_input_containers,
    check_segmenter_pickle,
    check_segmenter_state_checked_on_load,
    check_segmenter_missing_item,
    check_segmenter_bad_item,
    check_segmenter_predict_changes_nothing,
    check_segmenter_random_state,
    check_segmenter_grid_search,
]


# --------------------------------------------------------------------------
# Captioners: fit(images, texts | attributes | tags), predict -> one per row
# --------------------------------------------------------------------------
_COLOURS = ("red", "blue")
_TYPES = ("shirt", "shoe")


def make_test_targets(kind, labels):
    """Targets of a captioner for the two-class ``labels`` of the test items.

    ``kind`` is the captioner's ``item_tags.target``: ``"text"`` gives one
    caption per row, ``"attributes"`` a table with columns ``a``, ``b``
    (attributes) and ``text`` (the caption), ``"tags"`` a list of tags per
    row. All of them depend on the label, as the items do.
    """
    labels = np.asarray(labels)
    colour = [_COLOURS[v] for v in labels]
    kind_ = [_TYPES[v] for v in labels]
    texts = [
        f"{c} cotton {t} style {i % 3}" for i, (c, t) in enumerate(zip(colour, kind_))
    ]
    if kind == "text":
        return texts
    if kind == "attributes":
        return pd.DataFrame({"a": colour, "b": kind_, "text": texts})
    if kind == "tags":
        return [
            [c, t] + (["striped"] if i % 2 else [])
            for i, (c, t) in enumerate(zip(colour, kind_))
        ]
    raise ValueError(f"unknown captioner target {kind!r}")


def _fitted_captioner(estimator, env, **params):
    return clone(estimator).set_params(**params).fit(env.items, env.y)


def _assert_same_outputs(a, b, msg):
    assert len(a) == len(b), f"{msg}: {len(a)} rows vs {len(b)}"
    for i, (u, v) in enumerate(zip(a, b)):
        assert u == v, f"{msg}: row {i}: {u!r} vs {v!r}"


def check_captioner_predict(estimator):
    """One output per row: a text (or a list of tags) that depends on the row."""
    with _Env(estimator) as env:
        est = _fitted_captioner(estimator, env)
        out = est.predict(env.items)
        assert isinstance(out, np.ndarray) and out.dtype == object and out.ndim == 1
        assert len(out) == len(env.items)
        for i, v in enumerate(out):
            if env.kind == "tags":
                assert isinstance(v, list) and all(isinstance(t, str) for t in v), (
                    f"row {i}: {v!r} is not a list of tags"
                )
                assert set(v) <= set(est.classes_), f"row {i}: {v!r}"
            else:
                assert isinstance(v, str) and v, f"row {i}: {v!r} is not a text"
        if hasattr(est, "predict_candidates"):
            cands = est.predict_candidates(env.items, k=2)
            assert len(cands) == len(env.items)
            for i, c in enumerate(cands):
                assert 1 <= len(c) <= 2, f"row {i}: {len(c)} candidates"
                scores = [s for _, s in c]
                assert scores == sorted(scores, reverse=True), f"row {i}: {scores}"
                assert c[0][0] == out[i], f"row {i}: predict is not the best candidate"


def check_captioner_input_containers(estimator):
    """A list, object array, Series and one-column DataFrame predict the same."""
    with _Env(estimator) as env:
        est = _fitted_captioner(estimator, env)
        ref = est.predict(env.items)
        arr = np.empty(len(env.items), dtype=object)
        arr[:] = env.items
        for name, X in [
            ("object ndarray", arr),
            ("Series", pd.Series(env.items, dtype=object)),
            (
                "one-column DataFrame",
                pd.DataFrame({"c": pd.Series(env.items, dtype=object)}),
            ),
        ]:
            _assert_same_outputs(ref, est.predict(X), f"predict({name})")


def check_captioner_pickle(estimator):
    """A fitted captioner pickles and predicts the same after loading."""
    with _Env(estimator) as env:
        est = _fitted_captioner(estimator, env)
        loaded = pickle.loads(pickle.dumps(est))
        _assert_same_outputs(
            est.predict(env.items), loaded.predict(env.items), "pickle"
        )


def check_captioner_missing_item(estimator):
    """A missing photo gives ``None``, the other rows are unchanged; fit skips it."""
    with _Env(estimator) as env:
        est = _fitted_captioner(estimator, env)
        ref = est.predict(env.items)
        items = list(env.items)
        items[1] = None
        out = est.predict(items)
        assert out[1] is None, f"a missing photo gave {out[1]!r}"
        keep = [i for i in range(len(items)) if i != 1]
        _assert_same_outputs([ref[i] for i in keep], [out[i] for i in keep], "others")
        with collect_item_errors():
            clone(estimator).set_params(on_error="missing").fit(items, env.y)


def check_captioner_bad_item(estimator):
    """An unreadable photo names its row, or is recorded and gets ``None``."""
    with _Env(estimator) as env:
        items = list(env.items)
        items[2] = _bad_item(env.modality)
        est = _fitted_captioner(estimator, env, on_error="raise")
        try:
            est.predict(items)
        except InputError as exc:
            assert exc.row == 2 and "row 2" in str(exc), str(exc)
        else:
            raise AssertionError("an unreadable photo did not raise InputError")
        est = _fitted_captioner(estimator, env, on_error="missing")
        with collect_item_errors() as errors:
            out = est.predict(items)
        assert out[2] is None and all(out[i] is not None for i in (0, 1, 3))
        assert [e.row for e in errors] == [2], list(errors)
        with collect_item_errors() as errors:
            clone(est).fit(items, env.y)
        assert [e.row for e in errors] == [2], list(errors)


def check_captioner_predict_changes_nothing(estimator):
    """``predict`` and ``predict_candidates`` leave the captioner as it was."""
    import joblib

    with _Env(estimator) as env:
        est = _fitted_captioner(estimator, env, on_error="missing")
        items = list(env.items)
        items[1] = None
        items[2] = _bad_item(env.modality)
        before = dict(vars(est))
        digest = joblib.hash(est)
        est.predict(items)
        if hasattr(est, "predict_candidates"):
            est.predict_candidates(items, k=2)
        assert sorted(vars(est)) == sorted(before), "predict set new attributes"
        changed = sorted(k for k in before if vars(est)[k] is not before[k])
        assert not changed, f"predict replaced attributes {changed}"
        assert joblib.hash(est) == digest, "predict changed the captioner's state"


def check_captioner_grid_search(estimator):
    """``GridSearchCV`` over the captioner works with its default score."""
    with _Env(estimator) as env:
        grid = [
            {k: [v] for k, v in p.items()}
            for p in estimator_test_params(type(estimator))
        ][:1]
        arr = np.empty(len(env.items), dtype=object)
        arr[:] = env.items
        search = GridSearchCV(clone(estimator), grid, cv=2, error_score="raise")
        search.fit(arr, env.y)
        assert np.isfinite(search.best_score_), search.best_score_
        assert len(search.predict(arr)) == len(arr)


_CAPTIONER_CHECKS = [
    check_extractor_init_stores_params,
    check_extractor_clone,
    check_extractor_get_set_params,
    check_extractor_fit_returns_self,
    check_captioner_predict,
    check_captioner_input_containers,
    check_captioner_pickle,
    check_captioner_missing_item,
    check_captioner_bad_item,
    check_captioner_predict_changes_nothing,
    check_captioner_grid_search,
]


_SAMPLER_CHECKS = [
    check_extractor_init_stores_params,
    check_extractor_clone,
    check_extractor_get_set_params,
    check_extractor_fit_returns_self,
    check_sampler_fit_resample,
    check_sampler_random_state,
]

_CHECKS = [
    check_extractor_init_stores_params,
    check_extractor_clone,
    check_extractor_get_set_params,
    check_extractor_fit_returns_self,
    check_extractor_input_containers,
    check_extractor_pickle,
    check_extractor_state_checked_on_load,
    check_extractor_missing_item,
    check_extractor_bad_item,
    check_extractor_transform_changes_nothing,
    check_extractor_feature_names,
    check_extractor_random_state,
    check_extractor_pipeline_grid_search,
]


def estimator_test_params(cls):
    """Parameter sets for fast tests: ``cls.get_test_params()`` or ``[{}]``."""
    getter = getattr(cls, "get_test_params", None)
    return list(getter()) if getter is not None else [{}]


def estimator_test_instances(cls):
    """One instance of ``cls`` per parameter set of :func:`estimator_test_params`."""
    return [cls(**p) for p in estimator_test_params(cls)]


def yield_mmfeat_checks(estimator):
    """Yield every mmfeat check that applies to ``estimator``.

    Samplers (estimators with ``fit_resample`` and no ``transform``, such as
    the augmenters) get the sampler checks instead of the extractor ones, and
    segmenters (tagged ``item_tags.segmenter``) the segmenter checks, and
    captioners (tagged with an ``item_tags.target``) the captioner checks.
    """
    tags = get_item_tags(estimator)
    if tags.segmenter:
        yield from _SEGMENTER_CHECKS
    elif tags.target is not None:
        yield from _CAPTIONER_CHECKS
    elif hasattr(estimator, "fit_resample"):
        yield from _SAMPLER_CHECKS
    else:
        yield from _CHECKS


def check_mmfeat_estimator(estimator):
    """Run every mmfeat check on ``estimator``; raise on the first failure."""
    with warnings.catch_warnings():
        for check in yield_mmfeat_checks(estimator):
            check(estimator)


def parametrize_with_mmfeat_checks(estimators):
    """A ``pytest.mark.parametrize`` over (estimator, check) pairs.

    Parameters
    ----------
    estimators : list of estimator instances
        Raw-input estimators to check.

    Returns
    -------
    decorator : pytest mark
        Parametrizes the arguments ``estimator`` and ``check``.
    """
    import pytest

    cases, ids = [], []
    for est in estimators:
        for check in yield_mmfeat_checks(est):
            cases.append((est, check))
            ids.append(f"{est!r}-{check.__name__}")
    return pytest.mark.parametrize("estimator, check", cases, ids=ids)
