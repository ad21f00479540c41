import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import FunctionTransformer

from mmfeat import ParameterError
from mmfeat.features.image import HOGExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.retrieval import (
    CrossModalRetriever,
    NearestNeighborRetriever,
    mean_average_precision,
)


@pytest.fixture
def blobs(rng):
    y = np.repeat(np.arange(4), 15)
    centres = rng.normal(size=(4, 8)) * 3
    return centres[y] + rng.normal(size=(60, 8)), y


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_matches_sklearn_nearest_neighbors(blobs, metric):
    X, _ = blobs
    gallery, queries = X[:45], X[45:]
    retriever = NearestNeighborRetriever(
        metric=metric, n_neighbors=7, query_chunk_size=4
    ).fit(gallery)
    idx, scores = retriever.query(queries)
    ref = NearestNeighbors(n_neighbors=7, metric=metric, algorithm="brute")
    dist, ref_idx = ref.fit(gallery).kneighbors(queries)
    np.testing.assert_array_equal(idx, ref_idx)
    want = 1 - dist if metric == "cosine" else -dist
    np.testing.assert_allclose(scores, want, atol=1e-9)
    assert (np.diff(scores, axis=1) <= 1e-12).all()  # best first


def test_leave_one_out_excludes_the_query_itself(blobs):
    X, y = blobs
    idx, _ = NearestNeighborRetriever(n_neighbors=5).fit(X).query()
    assert idx.shape == (60, 5)
    assert not (idx == np.arange(60)[:, None]).any()
    assert (
        mean_average_precision(
            y,
            y,
            NearestNeighborRetriever().fit(X).query(k=59)[0],
            n_relevant=np.full(60, 14),
        )
        > 0.9
    )


def test_unusable_gallery_and_query_rows(blobs):
    X, _ = blobs
    gallery = X[:20].copy()
    gallery[[3, 7]] = np.nan
    retriever = NearestNeighborRetriever(n_neighbors=18).fit(gallery)
    np.testing.assert_array_equal(
        retriever.gallery_rows_, np.delete(np.arange(20), [3, 7])
    )
    queries = X[20:23].copy()
    queries[1] = np.nan
    idx, scores = retriever.query(queries)
    assert not np.isin(idx, [3, 7]).any()
    assert (idx[1] == -1).all() and np.isnan(scores[1]).all()
    assert (idx[[0, 2]] >= 0).all()
    with pytest.raises(ValueError, match="no usable gallery row"):
        NearestNeighborRetriever().fit(np.full((3, 2), np.nan))


def test_raw_images_through_an_extractor_and_grid_search(rng):
    images = [rng.random((32, 32)) for _ in range(12)]
    retriever = NearestNeighborRetriever(
        HOGExtractor(image_size=(32, 32)), n_neighbors=3
    ).fit(images)
    idx, scores = retriever.query(images[:2])
    assert idx[:, 0].tolist() == [0, 1]  # an image is nearest to itself
    np.testing.assert_allclose(scores[:, 0], 1.0)
    assert clone(retriever).get_params()["n_neighbors"] == 3
    # as a transformer it drops into pipelines and searches
    assert retriever.transform(images[:2]).shape[0] == 2
    search = GridSearchCV(
        NearestNeighborRetriever(),
        {"n_neighbors": [1, 2]},
        cv=2,
        scoring=lambda est, X, y=None: 0.0,
    )
    search.fit(np.vstack([im.ravel() for im in images]))


def test_parameters_are_checked(blobs):
    X, _ = blobs
    with pytest.raises(ParameterError, match="metric"):
        NearestNeighborRetriever(metric="manhattan").fit(X)
    with pytest.raises(ParameterError, match="k must be"):
        NearestNeighborRetriever().fit(X).query(X, k=0)


@pytest.mark.parametrize(
    "params",
    [
        {"n_neighbors": 0},
        {"query_chunk_size": 2.5},
        {"metric": "manhattan"},
        {"transformer": "hog"},
        {"n_jobs": "all"},
    ],
)
def test_nearest_neighbor_bad_parameters_name_the_parameter(blobs, params):
    X, _ = blobs
    (name,) = params
    with pytest.raises(
        ParameterError, match=f"The '{name}' parameter of NearestNeighborRetriever"
    ):
        NearestNeighborRetriever(**params).fit(X)


def _paired(rng, n_per=20):
    """Titles and 'photos' (feature vectors) of three classes."""
    words = {0: "red striped shirt", 1: "blue denim jeans", 2: "black leather bag"}
    y = np.repeat(np.arange(3), n_per)
    centres = rng.normal(size=(3, 6)) * 2
    photos = list(centres[y] + rng.normal(size=(len(y), 6)))
    titles = [words[c] + " " + rng.choice(["new", "classic", "sale"]) for c in y]
    return pd.DataFrame({"photo": photos, "title": titles}), y


def _as_matrix():
    return FunctionTransformer(lambda col: np.stack(list(col)))


@pytest.mark.parametrize("method", ["cca", "semantic", "scm"])
def test_cross_modal_retrieves_the_right_class(rng, method):
    data, labels = _paired(rng, n_per=40)
    train = np.arange(120) % 2 == 0
    X, y = data[train].reset_index(drop=True), labels[train]
    Xte, yte = data[~train].reset_index(drop=True), labels[~train]
    # word features: in these four-word toy titles the character n-grams of
    # the one noise word outweigh the three class words in an unsupervised
    # 5-dimensional reduction
    words = TfidfExtractor(word_ngram_range=(1, 2), char_ngram_range=None)
    retriever = CrossModalRetriever(
        [("image", _as_matrix(), "photo"), ("text", words, "title")],
        method=method,
        reduce_dim=5,
    ).fit(X, None if method == "cca" else y)
    for source, target in [("text", "image"), ("image", "text")]:
        idx, scores = retriever.query(
            Xte, source=source, target=target, gallery=Xte, k=None
        )
        assert idx.shape == (60, 60)
        assert mean_average_precision(yte, yte, idx) > 0.8, (method, source)
        assert (np.diff(scores, axis=1) <= 1e-9).all()
    assert retriever.embed(Xte, "text").shape[0] == 60


def test_cross_modal_skips_unusable_items_and_checks_parameters(rng):
    X, y = _paired(rng)
    model = CrossModalRetriever(
        [("image", _as_matrix(), "photo"), ("text", TfidfExtractor(), "title")],
        method="semantic",
    )
    Xm = X.copy()
    Xm.loc[4, "title"] = None  # a missing title: row left out of training
    model.fit(Xm, y)
    assert model.n_pairs_ == 59
    idx, _ = model.query(Xm.head(6), source="text", target="image", gallery=X)
    assert (idx[4] == -1).all() and (idx[[0, 1, 2, 3, 5]] >= 0).all()
    with pytest.raises(ParameterError, match="needs y"):
        clone(model).fit(X)
    with pytest.raises(ParameterError, match="two"):
        CrossModalRetriever([("image", _as_matrix(), "photo")]).fit(X, y)
    with pytest.raises(ParameterError, match="unknown modality"):
        model.embed(X, "audio")
    with pytest.raises(ParameterError, match="method"):
        CrossModalRetriever(model.estimators, method="pls").fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 0}, "The 'n_components' parameter of CrossModalRetriever"),
        ({"reduce_dim": -1}, "The 'reduce_dim' parameter of CrossModalRetriever"),
        ({"classifier": NearestNeighbors()}, "The 'classifier' parameter"),
        ({"estimators": "image"}, "The 'estimators' parameter of CrossModalRetriever"),
    ],
)
def test_cross_modal_bad_parameters_name_the_parameter(rng, params, match):
    X, y = _paired(rng)
    est = [("image", _as_matrix(), "photo"), ("text", TfidfExtractor(), "title")]
    with pytest.raises(ParameterError, match=match):
        CrossModalRetriever(**{"estimators": est, **params}).fit(X, y)


def test_cross_modal_tables_checked_with_sklearn_messages(rng):
    X, y = _paired(rng)
    model = CrossModalRetriever(
        [("image", _as_matrix(), "photo"), ("text", TfidfExtractor(), "title")],
        method="semantic",
    ).fit(X, y)
    assert list(model.feature_names_in_) == ["photo", "title"]
    with pytest.raises(ValueError, match="seen at fit time, yet now missing:\n- photo"):
        model.embed(X[["title"]], "text")
    with pytest.raises(ValueError, match="feature names should match"):
        model.embed(X.rename(columns={"photo": "image"}), "text")
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        model.embed(X["title"], "text")
    F = np.ones((10, 2)) + np.arange(20).reshape(10, 2) % 3
    every = slice(0, None)
    ident = [("a", FunctionTransformer(), every), ("b", FunctionTransformer(), every)]
    cca = CrossModalRetriever(ident, method="cca", n_components=1).fit(F)
    with pytest.raises(ValueError, match="X has 1 features, but CrossModalRetriever"):
        cca.embed(F[:, :1], "a")
    F[3, 1] = np.inf
    with pytest.raises(ValueError, match="Input contains infinity"):
        CrossModalRetriever(ident, method="cca").fit(F)
