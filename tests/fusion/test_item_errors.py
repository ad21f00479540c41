"""Bad items are reported at any n_jobs, whatever runs the work.

The fusion models run their parts in parallel (``n_jobs``): threads, loky
processes or a Dask cluster through joblib. Each part's refused items come
back with its result (``mmfeat.collect_item_errors``), so the rows reported
with ``n_jobs=2`` are exactly those reported with ``n_jobs=1``; and no
estimator keeps a record of the last call.
"""

import os

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import mmfeat
from mmfeat.features.image import HOGExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import (
    LateFusionClassifier,
    ModalityStackingClassifier,
    MultimodalFuser,
    get_modalities,
    make_fuser,
    predict_with_presence,
)
from mmfeat.scoring import score_frame

N = 24


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Images and titles; row 5's image is a text file named .png, row 9's
    title is a number, row 13 has no image at all."""
    import cv2

    folder = tmp_path_factory.mktemp("items")
    rng = np.random.default_rng(0)
    y = np.arange(N) % 2
    paths, titles = [], []
    for i in range(N):
        img = rng.integers(0, 60, (32, 32), dtype=np.uint8)
        if y[i]:
            img[:, 16:] += 150  # a vertical edge the HOG sees
        path = folder / f"{i}.png"
        cv2.imwrite(str(path), img)
        paths.append(str(path))
        titles.append(("red leather shoe" if y[i] else "blue cotton shirt") + f" {i}")
    bad = folder / "bad.png"
    bad.write_text("this is not an image")
    paths[5] = str(bad)
    titles[9] = 42
    paths[13] = None
    X = pd.DataFrame({"image": paths, "title": pd.Series(titles, dtype=object)})
    return X, y


def _image():
    return make_pipeline(
        HOGExtractor(image_size=(32, 32), on_error="missing"), LogisticRegression()
    )


def _text():
    return make_pipeline(TfidfExtractor(on_error="missing"), LogisticRegression())


def _model(kind, n_jobs):
    if kind == "fuser":
        fuser = make_fuser(
            {
                "image": HOGExtractor(image_size=(32, 32), on_error="missing"),
                "title": TfidfExtractor(on_error="missing"),
            },
            n_jobs=n_jobs,
        )
        return make_pipeline(fuser, LogisticRegression())
    modalities = [("image", _image(), "image"), ("title", _text(), "title")]
    if kind == "late":
        return LateFusionClassifier(modalities, cv=3, n_jobs=n_jobs)
    return ModalityStackingClassifier(modalities, cv=3, n_jobs=n_jobs)


def _reported(model, X):
    with mmfeat.collect_item_errors() as errors:
        proba = model.predict_proba(X)
    return sorted((e.row, e.modality) for e in errors), proba


EXPECTED = [(5, "image"), (9, "title")]


@pytest.fixture(scope="module")
def fitted(table):
    X, y = table
    return {kind: _model(kind, 1).fit(X, y) for kind in ("fuser", "late", "stack")}


@pytest.mark.parametrize("kind", ["fuser", "late", "stack"])
@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_two_jobs_report_exactly_the_rows_one_job_reports(fitted, table, kind, backend):
    X, _ = table
    one = fitted[kind]
    want, proba_one = _reported(one, X)
    assert want == EXPECTED
    two = one.set_params(**{_n_jobs_param(one): 2})
    try:
        with joblib.parallel_backend(backend, n_jobs=2):
            got, proba_two = _reported(two, X)
    finally:
        one.set_params(**{_n_jobs_param(one): 1})
    assert got == want
    np.testing.assert_allclose(proba_two, proba_one, rtol=1e-7, atol=1e-9)


def _n_jobs_param(model):
    return "multimodalfuser__n_jobs" if hasattr(model, "steps") else "n_jobs"


@pytest.mark.parametrize("kind", ["late", "fuser"])
def test_fit_reports_bad_training_items_with_the_users_rows(table, kind):
    X, y = table
    with mmfeat.collect_item_errors() as errors:
        _model(kind, 2).fit(X, y)
    # the out-of-fold fits see each bad row too; each is reported once, with
    # its row in X (not its position in a fold or among the present rows)
    assert sorted((e.row, e.modality) for e in errors) == EXPECTED


def test_score_frame_reports_bad_rows_at_any_n_jobs(fitted, table):
    X, _ = table
    tables = {}
    for n_jobs in (1, 2):
        model = fitted["late"].set_params(n_jobs=n_jobs)
        _, err = score_frame(model, X, return_errors=True)
        tables[n_jobs] = err[["row", "column", "source"]].values.tolist()
    fitted["late"].set_params(n_jobs=1)
    assert [r[:2] for r in tables[1]] == [[5, "image"], [9, "title"]]
    assert tables[2] == tables[1]


def test_a_dask_cluster_reports_the_same_rows(fitted, table):
    distributed = pytest.importorskip("distributed")
    X, _ = table
    want = {kind: _reported(fitted[kind], X)[0] for kind in fitted}
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    ) as cluster:
        with distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 2
            with joblib.parallel_backend("dask"):
                for kind, model in fitted.items():
                    model.set_params(**{_n_jobs_param(model): 2})
                    try:
                        got, _ = _reported(model, X)
                    finally:
                        model.set_params(**{_n_jobs_param(model): 1})
                    assert got == want[kind], kind


def test_presence_comes_with_the_prediction(fitted, table):
    X, _ = table
    for kind in ("late", "stack"):
        proba, presence = fitted[kind].predict_proba_with_presence(X)
        np.testing.assert_allclose(proba, fitted[kind].predict_proba(X))
        assert list(presence.columns) == ["image", "title"]
        assert presence.dtypes.eq(bool).all()
        assert not presence["image"][[5, 13]].any() and not presence["title"][9]
        assert presence.to_numpy().sum() == 2 * N - 3
    pipe = fitted["fuser"]
    F, presence = pipe[0].transform_with_presence(X)
    assert F.shape[0] == N and list(presence.columns) == ["image", "title"]
    assert np.flatnonzero(~presence["image"]).tolist() == [5, 13]
    assert np.flatnonzero(~presence["title"]).tolist() == [9]
    proba, same = predict_with_presence(pipe, X)
    np.testing.assert_allclose(proba, pipe.predict_proba(X))
    pd.testing.assert_frame_equal(same, presence)


def test_predicting_leaves_no_state_on_any_part(fitted, table):
    X, _ = table
    for model in fitted.values():
        digest = joblib.hash(model)
        _reported(model, X)
        predict_with_presence(model, X)
        assert joblib.hash(model) == digest


def test_get_modalities_is_one_answer_for_every_model_shape(fitted):
    from sklearn.model_selection import GridSearchCV

    for kind, model in fitted.items():
        mods = get_modalities(model)
        assert [(m.name, m.columns) for m in mods] == [
            ("image", ["image"]),
            ("title", ["title"]),
        ], kind
        assert all(
            hasattr(m.estimator, "transform" if kind == "fuser" else "predict")
            for m in mods
        )
    search = GridSearchCV(_model("late", 1), {"weights": [None]}, cv=2)
    search.estimator = fitted["late"]
    search.best_estimator_ = fitted["late"]
    assert [m.name for m in get_modalities(search)] == ["image", "title"]
    plain = LogisticRegression().fit(pd.DataFrame({"a": [0.0, 1.0]}), [0, 1])
    assert [(m.name, m.columns) for m in get_modalities(plain)] == [("X", ["a"])]


def test_models_fitted_on_bad_items_round_trip_through_mmfeat_load(
    fitted, table, tmp_path
):
    X, _ = table
    for kind, model in fitted.items():
        path = tmp_path / f"{kind}.skops"
        mmfeat.save(model, path)
        loaded = mmfeat.load(path)
        np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_a_raised_bad_item_names_the_users_row_in_ensembles(table):
    X, y = table
    X = X.copy()
    X.loc[[0, 1], "image"] = None  # rows 0-1 absent: the bad file is row 5
    strict = [
        (
            "image",
            make_pipeline(HOGExtractor(image_size=(32, 32)), LogisticRegression()),
            "image",
        ),
        ("title", _text(), "title"),
    ]
    with pytest.raises(mmfeat.InputError, match=r"row 5 \("):
        LateFusionClassifier(strict, cv=3).fit(X, y)
    model = _model("late", 1).fit(X, y)
    model.set_params(image__hogextractor__on_error="raise")
    fitted_hog = model.estimators_[0].steps[0][1]
    fitted_hog.set_params(on_error="raise")
    with pytest.raises(mmfeat.InputError, match=r"row 5 \("):
        model.predict_proba(X)


def test_nested_fusers_keep_their_own_presence(table):
    X, y = table
    inner = make_fuser({"image": HOGExtractor(image_size=(32, 32), on_error="missing")})
    outer = MultimodalFuser(
        [
            ("both", inner, ["image"]),
            ("image", TfidfExtractor(on_error="missing"), "title"),
        ]
    ).fit(X, y)
    _, presence = outer.transform_with_presence(X)
    # the outer block "image" is the titles (row 9 bad); the inner fuser's
    # own "image" block (rows 5 and 13) must not overwrite it
    assert np.flatnonzero(~presence["image"]).tolist() == [9]
    # the inner fuser imputes its missing rows: the outer block has them all
    assert presence["both"].all()


def test_memory_reads_a_rewritten_file_again(tmp_path):
    import cv2

    path = tmp_path / "a.png"
    img = np.zeros((32, 32), np.uint8)
    cv2.imwrite(str(path), img)
    X = pd.DataFrame({"image": [str(path)] * 2, "n": [0.0, 1.0]})
    fuser = make_fuser(
        {
            "image": HOGExtractor(image_size=(32, 32), on_error="missing"),
            "n": ("passthrough", ["n"]),
        },
        memory=str(tmp_path / "cache"),
        block_norm=None,
    ).fit(X)
    before = fuser.transform(X)
    img[:, 16:] = 255  # an edge: other HOG features
    cv2.imwrite(str(path), img)
    os.utime(path, ns=(1, 10**18))  # a different modification time for sure
    after = fuser.transform(X)
    assert not np.allclose(before, after)
