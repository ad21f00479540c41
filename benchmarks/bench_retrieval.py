"""Retrieval MAP on the fashion sample: image -> image, text <-> image.

Article types with >= 20 items, stratified 70/30 split (seed 0); relevance =
same article type. The retrievers learn on the 70% and rank the 30%: each
test query against the test gallery (for image -> image, every test image
against the other test images). Peers in the same run: random ranking, plain
scikit-learn ``NearestNeighbors`` on HOG + colour histogram, and scikit-learn
CCA on SVD-100 TF-IDF and PCA-100 image features.

Usage::

    MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_retrieval.py
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cross_decomposition import CCA
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler, normalize

from mmfeat.features.image import (
    ColorHistogramExtractor,
    HOGExtractor,
    SIFTBoVWExtractor,
)
from mmfeat.features.text import TfidfExtractor
from mmfeat.retrieval import (
    CrossModalRetriever,
    NearestNeighborRetriever,
    mean_average_precision,
)

HERE = Path(__file__).resolve().parent


def _data_home():
    env = os.environ.get("MMFEAT_DATA_HOME")
    return Path(env) if env else HERE.parent.parent / "shared" / "data"


def _split(seed=0):
    root = _data_home() / "fashion_products_sample"
    labels = pd.read_csv(root / "labels.csv")
    counts = labels["articleType"].value_counts()
    labels = labels[labels["articleType"].isin(counts[counts >= 20].index)]
    frame = pd.DataFrame(
        {
            "image": [str(root / p) for p in labels["image_file"]],
            "title": labels["productDisplayName"].to_numpy(),
        }
    )
    y = labels["articleType"].to_numpy()
    return train_test_split(frame, y, test_size=0.3, stratify=y, random_state=seed)


def _hog_colour():
    return FeatureUnion(
        [
            ("hog", HOGExtractor(image_size=(64, 64))),
            ("colour", ColorHistogramExtractor(image_size=(64, 64))),
        ]
    )


def _loo(y, indices):
    """MAP of leave-one-out rankings (each query out of its own gallery)."""
    labels, counts = np.unique(y, return_counts=True)
    n_rel = pd.Series(counts, index=labels)[y].to_numpy() - 1
    return mean_average_precision(y, y, indices, n_relevant=n_rel)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    X_tr, X_te, y_tr, y_te = _split(args.seed)
    print(f"train {len(y_tr)}, test {len(y_te)}, {len(np.unique(y_tr))} types")
    rows = []

    def record(name, direction, value, seconds):
        rows.append((name, direction, value, seconds))
        print(f"  {name:<48}{direction:<16}{value:8.4f}{seconds:8.1f} s")

    rng = np.random.default_rng(0)
    rand = np.array([rng.permutation(len(y_te)) for _ in range(len(y_te))])
    record("random ranking", "any", mean_average_precision(y_te, y_te, rand), 0.0)

    # -- image -> image ------------------------------------------------------
    t = time.perf_counter()
    F = normalize(_hog_colour().fit_transform(X_te["image"]))
    nn = NearestNeighbors(n_neighbors=len(y_te)).fit(F)
    peer = nn.kneighbors(F, return_distance=False)[:, 1:]  # drop self
    record(
        "peer: sklearn NN, HOG + colour",
        "image->image",
        _loo(y_te, peer),
        time.perf_counter() - t,
    )

    t = time.perf_counter()
    r = NearestNeighborRetriever(_hog_colour()).fit(X_te["image"])
    idx, _ = r.query(k=len(y_te) - 1)
    record(
        "mmfeat NN, HOG + colour (cosine)",
        "image->image",
        _loo(y_te, idx),
        time.perf_counter() - t,
    )

    # richer descriptors, standardised and PCA-whitened (unsupervised, fitted
    # on the gallery itself), then cosine
    t = time.perf_counter()
    feats = make_pipeline(
        FeatureUnion(
            [
                ("hog", HOGExtractor(image_size=(64, 64))),
                ("colour", ColorHistogramExtractor(image_size=(64, 64))),
                (
                    "bovw",
                    SIFTBoVWExtractor(
                        n_words=256,
                        image_size=(128, 128),
                        pyramid_levels=(1, 2),
                        random_state=0,
                    ),
                ),
            ]
        ),
        StandardScaler(),
        PCA(n_components=128, whiten=True, random_state=0),
    )
    r = NearestNeighborRetriever(feats).fit(X_te["image"])
    idx, _ = r.query(k=len(y_te) - 1)
    record(
        "mmfeat NN, HOG+colour+BoVW, PCA-whitened",
        "image->image",
        _loo(y_te, idx),
        time.perf_counter() - t,
    )

    # -- cross-modal ---------------------------------------------------------
    t = time.perf_counter()
    tf = TfidfExtractor().fit(X_tr["title"])
    svd = TruncatedSVD(100, random_state=0).fit(tf.transform(X_tr["title"]))
    img = _hog_colour().fit(X_tr["image"])
    pca = PCA(100, random_state=0).fit(img.transform(X_tr["image"]))
    cca = CCA(n_components=10, max_iter=1000).fit(
        svd.transform(tf.transform(X_tr["title"])),
        pca.transform(img.transform(X_tr["image"])),
    )
    T, V = cca.transform(
        svd.transform(tf.transform(X_te["title"])),
        pca.transform(img.transform(X_te["image"])),
    )
    T, V = normalize(T), normalize(V)
    t2i = np.argsort(-(T @ V.T), axis=1)
    i2t = np.argsort(-(V @ T.T), axis=1)
    s = time.perf_counter() - t
    record(
        "peer: sklearn CCA(SVD-100 TF-IDF, PCA-100)",
        "text->image",
        mean_average_precision(y_te, y_te, t2i),
        s,
    )
    record(
        "peer: sklearn CCA(SVD-100 TF-IDF, PCA-100)",
        "image->text",
        mean_average_precision(y_te, y_te, i2t),
        s,
    )

    for method in ("cca", "semantic", "scm"):
        t = time.perf_counter()
        retriever = CrossModalRetriever(
            [("image", _hog_colour(), "image"), ("text", TfidfExtractor(), "title")],
            method=method,
        ).fit(X_tr, y_tr)
        a, _ = retriever.query(
            X_te, source="text", target="image", gallery=X_te, k=None
        )
        b, _ = retriever.query(
            X_te, source="image", target="text", gallery=X_te, k=None
        )
        s = time.perf_counter() - t
        record(
            f"mmfeat CrossModalRetriever({method!r})",
            "text->image",
            mean_average_precision(y_te, y_te, a),
            s,
        )
        record(
            f"mmfeat CrossModalRetriever({method!r})",
            "image->text",
            mean_average_precision(y_te, y_te, b),
            s,
        )


if __name__ == "__main__":
    main()
