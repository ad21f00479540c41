import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from mmfeat import collect_item_errors
from mmfeat.datasets import load_pascal_sentences
from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.text import TfidfExtractor

TEXTS = [
    "Red cotton shirt for men",
    "Blue leather shoe",
    "red leather wallet",
    "Cotton socks, pack of three",
]


def test_tfidf_word_block_equals_tfidf_vectorizer(data_home):
    texts = load_pascal_sentences(data_home=data_home).frame["text"].tolist()
    ours = TfidfExtractor(word_ngram_range=(1, 2), char_ngram_range=None, min_df=2)
    ours.fit(texts)
    ref = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(texts)
    X, R = ours.transform(texts), ref.transform(texts)
    assert sp.issparse(X) and X.format == "csr"
    np.testing.assert_allclose(X.toarray(), R.toarray(), atol=1e-12)
    names = ours.get_feature_names_out()
    assert list(names[:3]) == [f"w_{t}" for t in ref.get_feature_names_out()[:3]]


def test_tfidf_word_and_char_blocks_weighted_then_normalised():
    ext = TfidfExtractor(
        word_ngram_range=(1, 1), char_ngram_range=(2, 3), char_weight=0.5
    )
    X = ext.fit_transform(TEXTS)
    kw = dict(sublinear_tf=True, norm=None)
    words = TfidfVectorizer(**kw).fit_transform(TEXTS)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), **kw).fit_transform(
        TEXTS
    )
    ref = normalize(sp.hstack([words, 0.5 * chars]).tocsr())
    np.testing.assert_allclose(X.toarray(), ref.toarray(), atol=1e-12)
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0)


def test_tfidf_char_ngrams_work_without_spaces():
    texts = ["我喜欢红色的衬衫", "他买了蓝色的鞋子", "红色的钱包"]
    ext = TfidfExtractor(
        word_ngram_range=None, char_ngram_range=(1, 2), char_analyzer="char"
    )
    X = ext.fit_transform(texts)
    names = list(ext.get_feature_names_out())
    assert "c_红色" in names
    sim = (X @ X.T).toarray()
    assert sim[0, 2] > sim[0, 1]  # the two red items are closer


@pytest.mark.parametrize("missing", [None, float("nan"), "", "   ", pd.NA])
def test_tfidf_missing_texts_give_nan_rows(missing):
    col = pd.Series(TEXTS[:2] + [missing] + TEXTS[2:], dtype=object)
    ext = TfidfExtractor().fit(col)
    X = ext.transform(col)
    assert X.shape[0] == 5
    assert np.isnan(X[2].toarray()).all()
    assert not np.isnan(X[[0, 1, 3, 4]].toarray()).any()
    full = TfidfExtractor().fit(TEXTS).transform(TEXTS)
    np.testing.assert_allclose(X[[0, 1, 3, 4]].toarray(), full.toarray())
    zero = TfidfExtractor(missing="zero").fit(col).transform(col)
    assert zero[2].nnz == 0


def test_tfidf_non_text_items_named_or_recorded():
    with pytest.raises(InputError, match=r"row 1 \(int\): expected a text"):
        TfidfExtractor().fit(["a text", 42])
    ext = TfidfExtractor(on_error="missing").fit(["a text", b"bytes", "more text"])
    with collect_item_errors() as errors:
        X = ext.transform(["a text", b"bytes"])
    assert np.isnan(X[1].toarray()).all()
    assert [(e.row, e.source) for e in errors] == [(1, "bytes")]


def test_tfidf_parameter_errors():
    with pytest.raises(ParameterError, match="enable at least one block"):
        TfidfExtractor(word_ngram_range=None, char_ngram_range=None).fit(TEXTS)
    with pytest.raises(ParameterError, match="no non-empty text"):
        TfidfExtractor().fit([None, ""])


@pytest.mark.parametrize("method", ["fit", "fit_transform"])
@pytest.mark.parametrize(
    "params, match",
    [
        ({"norm": "l3"}, "The 'norm' parameter of TfidfExtractor"),
        ({"min_df": 1.5}, "The 'min_df' parameter of TfidfExtractor"),
        ({"word_ngram_range": (2, 1)}, r"word_ngram_range must have min_n <= max_n"),
        ({"char_ngram_range": (0, 3)}, r"char_ngram_range must be None or a \(min_n"),
        ({"token_pattern": "("}, r"token_pattern='\(' is not a regular expression"),
        ({"token_pattern": r"(a)(b)"}, "has 2 capturing groups"),
        ({"min_df": 3, "max_df": 1}, r"the word block cannot be learnt .*min_df"),
        ({"stop_words": ["red", "blue"], "word_ngram_range": (1, 1)}, "stop_words"),
    ],
)
def test_tfidf_every_bad_parameter_is_a_parameter_error(method, params, match):
    with pytest.raises(ParameterError, match=match):
        getattr(TfidfExtractor(**params), method)(["red", "blue red", "red blue"])


def test_transform_with_every_text_missing_gives_missing_rows():
    ext = TfidfExtractor().fit(["red shirt", "blue shoe", "red shoe"])
    out = ext.transform([None, float("nan"), "  "])
    assert out.shape == (3, ext.vocabulary_size_)
    assert np.isnan(out.toarray()).all()
    zero = TfidfExtractor(missing="zero").fit(["red shirt", "blue shoe"])
    assert zero.transform([None, None]).nnz == 0
