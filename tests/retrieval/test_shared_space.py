"""SharedSpaceEmbedder: a CrossModalRetriever's space as a transformer."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import FunctionTransformer

import mmfeat
from mmfeat.exceptions import ParameterError
from mmfeat.generation import NearestNeighborCaptioner
from mmfeat.retrieval import CrossModalRetriever, SharedSpaceEmbedder


def _as_matrix():
    return FunctionTransformer(lambda col: np.stack(list(col)))


def _paired(rng, n_per=15):
    y = np.repeat([0, 1, 2], n_per)
    X = pd.DataFrame(
        {
            "photo": list(np.eye(3)[y] + 0.2 * rng.random((len(y), 3))),
            "title": list(np.eye(3)[y][:, ::-1] + 0.2 * rng.random((len(y), 3))),
        }
    )
    return X, y


def _retriever():
    return CrossModalRetriever(
        [("image", _as_matrix(), "photo"), ("text", _as_matrix(), "title")],
        method="semantic",
    )


def test_embeds_one_modality_without_the_other_column(rng):
    X, y = _paired(rng)
    retriever = _retriever().fit(X, y)
    emb = SharedSpaceEmbedder(FrozenEstimator(retriever), "image").fit(X[["photo"]])
    E = emb.transform(X[["photo"]])
    np.testing.assert_allclose(E, retriever.embed(X, "image"))
    assert (E.argmax(axis=1) == y).mean() > 0.9  # class posteriors
    # cloning keeps a frozen retriever fitted; an unfitted one is fitted here
    assert clone(emb).fit(X[["photo"]]).retriever_ is emb.retriever_
    own = SharedSpaceEmbedder(_retriever(), "text").fit(X, y)
    assert own.transform(X[["title"]]).shape == (len(X), 3)
    with pytest.raises(ParameterError, match="unknown modality"):
        SharedSpaceEmbedder(FrozenEstimator(retriever), "audio").fit(X)


def test_a_captioner_in_the_shared_space_saves_and_loads(rng, tmp_path):
    X, y = _paired(rng)
    # numeric columns and identity transformers: nothing to trust on load
    wide = pd.DataFrame(
        np.hstack([np.stack(X.photo), np.stack(X.title)]),
        columns=["p0", "p1", "p2", "t0", "t1", "t2"],
    )
    photo = ["p0", "p1", "p2"]
    retriever = CrossModalRetriever(
        [
            ("image", FunctionTransformer(), photo),
            ("text", FunctionTransformer(), ["t0", "t1", "t2"]),
        ],
        method="semantic",
    ).fit(wide, y)
    titles = [f"{['red', 'blue', 'green'][c]} shirt {i % 4}" for i, c in enumerate(y)]
    captioner = NearestNeighborCaptioner(
        SharedSpaceEmbedder(FrozenEstimator(retriever), "image"), n_neighbors=5
    ).fit(wide[photo], titles)
    pred = captioner.predict(wide[photo])
    colour = np.array([t.split()[0] for t in pred])
    assert (colour == np.array(["red", "blue", "green"])[y]).mean() > 0.9
    mmfeat.save(captioner, tmp_path / "c.skops")
    loaded = mmfeat.load(tmp_path / "c.skops")
    assert loaded.predict(wide[photo]).tolist() == pred.tolist()
