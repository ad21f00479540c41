"""Data and modality builders shared by the late-fusion and stacking tests."""

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mmfeat.features.image import HOGExtractor
from mmfeat.features.text import TfidfExtractor


def numeric_data(n=120, seed=0, labels=(0, 1), noise_b=1.0):
    """Columns ``a`` (informative), ``b`` (weaker), ``c`` (pure noise), ``z``.

    ``a = k + N(0, 0.5)`` and ``b = k + N(0, noise_b)`` for class index ``k``;
    ``z`` is an extra numeric column no modality reads.
    """
    rng = np.random.default_rng(seed)
    k = rng.permutation(np.arange(n) % len(labels))
    frame = pd.DataFrame(
        {
            "a": k + rng.normal(0, 0.5, n),
            "b": k + rng.normal(0, noise_b, n),
            "c": rng.normal(0, 1.0, n),
            "z": rng.normal(0, 1.0, n),
        }
    )
    y = np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[k]
    return frame, y


def ab_estimators(a=None, b=None):
    return [
        ("a", a if a is not None else LogisticRegression(), ["a"]),
        ("b", b if b is not None else LogisticRegression(), ["b"]),
    ]


def own_proba(model, name, X, cols):
    return model.named_estimators_[name].predict_proba(X[cols])


WORDS = {
    0: ["red", "shirt", "cotton", "summer", "tee"],
    1: ["blue", "jeans", "denim", "winter", "boot"],
}


def av_data(n=60, seed=0, image_noise=0.2, text_flip=0.0):
    """An image column (16x16 arrays, object) and a text column; 2 classes.

    Class 0: horizontal stripes and "red shirt" words; class 1: vertical
    stripes and "blue jeans" words. With ``text_flip`` the text of a row is
    drawn from the other class's words with that probability.
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    images, texts = [], []
    stripes = (np.arange(16) // 2 % 2).astype(float)
    for label in y:
        image = np.tile(stripes[:, None], (1, 16))
        if label == 1:
            image = image.T
        images.append(
            np.clip(image + image_noise * rng.standard_normal((16, 16)), 0, 1)
        )
        src = 1 - label if rng.random() < text_flip else label
        words = rng.choice(WORDS[src], size=3, replace=False).tolist()
        texts.append(" ".join(words))
    frame = pd.DataFrame(
        {
            "image": pd.Series(images, dtype=object),
            "text": pd.Series(texts, dtype=object),
        }
    )
    return frame, y


def small_hog(**kw):
    return HOGExtractor(
        image_size=(16, 16), pixels_per_cell=(4, 4), cells_per_block=(2, 2), **kw
    )


def av_modalities(text_final=None, **hog_kw):
    return [
        ("image", make_pipeline(small_hog(**hog_kw), LogisticRegression()), "image"),
        (
            "text",
            make_pipeline(TfidfExtractor(), text_final or LogisticRegression()),
            "text",
        ),
    ]


def expect_columns(expected):
    """A transformer that fails unless it is given exactly ``expected``."""

    def check(X):
        if isinstance(expected, str):
            assert isinstance(X, pd.Series) and X.name == expected, X
        else:
            assert isinstance(X, pd.DataFrame), type(X)
            assert list(X.columns) == expected, list(X.columns)
        return np.asarray(X, dtype=float).reshape(len(X), -1)

    return FunctionTransformer(check)
