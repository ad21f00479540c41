"""Tests for MultimodalFuser, make_fuser and fusion_weight_grid."""

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.image import HOGExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import MultimodalFuser, fusion_weight_grid, make_fuser

# ---------------------------------------------------------------- helpers


def _hog(**kw):
    # 16x16 images, 2x2 cells of 8x8, 1x1 blocks: 4 cells * 9 bins = 36 features
    params = dict(image_size=(16, 16), pixels_per_cell=(8, 8), cells_per_block=(1, 1))
    params.update(kw)
    return HOGExtractor(**params)


_WORDS = {
    0: ["red", "shirt", "cotton", "summer", "tee"],
    1: ["blue", "jeans", "denim", "winter", "boot"],
}


def _multimodal_frame(n=40, seed=0, missing=()):
    """An image column (object, 16x16 arrays) and a text column; 2 classes.

    Class 0: horizontal stripes + "red shirt" words; class 1: vertical stripes
    + "blue jeans" words. Rows in ``missing`` get ``None`` in both columns.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    images, texts = [], []
    for label in y:
        stripes = (np.arange(16) // 2 % 2).astype(float)
        image = np.tile(stripes[:, None], (1, 16))
        if label == 1:
            image = image.T
        images.append(np.clip(image + 0.2 * rng.random((16, 16)), 0, 1))
        words = rng.choice(_WORDS[label], size=3, replace=False).tolist()
        words += rng.choice(_WORDS[1 - label], size=1).tolist()
        texts.append(" ".join(words))
    for i in missing:
        images[i] = None
        texts[i] = None
    frame = pd.DataFrame(
        {
            "image": pd.Series(images, dtype=object),
            "text": pd.Series(texts, dtype=object),
        }
    )
    return frame, y


@pytest.fixture
def numbers():
    """The small numeric table of the docstring example."""
    return pd.DataFrame({"a": [3.0, 0.0], "b": [4.0, 2.0], "c": [1.0, -5.0]})


def _two_blocks(**kwargs):
    return MultimodalFuser(
        [("left", "passthrough", ["a", "b"]), ("right", "passthrough", ["c"])],
        **kwargs,
    )


def _random_table(rng, n=30, left=5, right=3):
    data = np.hstack(
        [rng.normal(2.0, 3.0, (n, left)), rng.normal(-1.0, 0.5, (n, right))]
    )
    cols = [f"l{i}" for i in range(left)] + [f"r{i}" for i in range(right)]
    return pd.DataFrame(data, columns=cols), cols[:left], cols[left:]


def _block(F, fuser, name):
    F = F.toarray() if sp.issparse(F) else np.asarray(F)
    return F[:, fuser.output_indices_[name]]


# ---------------------------------------------------------------- block_norm + weights


def test_l2_then_weight_hand_computed(numbers):
    fuser = _two_blocks(weights={"left": 2.0, "right": 0.5})
    F = fuser.fit_transform(numbers)
    # left rows (3, 4) -> (0.6, 0.8), (0, 2) -> (0, 1); right |c| -> sign(c)
    expected = np.array([[1.2, 1.6, 0.5], [0.0, 2.0, -0.5]])
    np.testing.assert_allclose(F, expected)
    assert isinstance(F, np.ndarray)
    assert fuser.weights_ == {"left": 2.0, "right": 0.5}


def test_l2_row_norms_of_each_block_equal_its_weight(rng):
    X, left, right = _random_table(rng)
    fuser = MultimodalFuser(
        [("left", StandardScaler(), left), ("right", "passthrough", right)],
        weights={"left": 3.0, "right": 0.25},
    )
    F = fuser.fit_transform(X)
    assert F.shape == (30, 8)
    np.testing.assert_allclose(np.linalg.norm(_block(F, fuser, "left"), axis=1), 3.0)
    np.testing.assert_allclose(np.linalg.norm(_block(F, fuser, "right"), axis=1), 0.25)


def test_weights_default_to_one_for_blocks_left_out(numbers):
    fuser = _two_blocks(weights={"right": 2.0})
    F = fuser.fit_transform(numbers)
    np.testing.assert_allclose(F, [[0.6, 0.8, 2.0], [0.0, 1.0, -2.0]])
    assert fuser.weights_ == {"left": 1.0, "right": 2.0}


def test_standard_norm_centres_and_gives_unit_mean_squared_row_norm(rng):
    X, left, right = _random_table(rng, n=50)
    fuser = MultimodalFuser(
        [("left", "passthrough", left), ("right", "passthrough", right)],
        block_norm="standard",
        weights={"left": 2.0, "right": 0.5},
    )
    F = fuser.fit_transform(X)
    for name, cols, w in [("left", left, 2.0), ("right", right, 0.5)]:
        B = _block(F, fuser, name)
        np.testing.assert_allclose(B.mean(axis=0), 0.0, atol=1e-12)
        # sum_j var_j / var_j / d = 1 exactly with population std
        np.testing.assert_allclose((B**2).sum(axis=1).mean(), w**2)
        raw = X[cols].to_numpy()
        hand = (raw - raw.mean(0)) / raw.std(0) / np.sqrt(len(cols)) * w
        np.testing.assert_allclose(B, hand)


def test_standard_norm_uses_training_statistics_on_new_rows(rng):
    X, left, right = _random_table(rng, n=40)
    fuser = MultimodalFuser([("left", "passthrough", left)], block_norm="standard")
    fuser.fit(X.iloc[:30])
    train = X.iloc[:30][left].to_numpy()
    new = X.iloc[30:][left].to_numpy()
    hand = (new - train.mean(0)) / train.std(0) / np.sqrt(len(left))
    np.testing.assert_allclose(fuser.transform(X.iloc[30:]), hand)


def test_standard_norm_constant_feature_is_not_divided_by_zero():
    X = pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": [0.0, 1.0, 2.0]})
    F = MultimodalFuser([("x", "passthrough", ["a", "b"])], block_norm="standard")
    out = F.fit_transform(X)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0], 0.0)


def test_no_norm_only_weights(numbers):
    F = _two_blocks(block_norm=None, weights={"left": 2.0}).fit_transform(numbers)
    np.testing.assert_allclose(F, [[6.0, 8.0, 1.0], [0.0, 4.0, -5.0]])


def test_block_norm_per_block_dict(numbers):
    # left as it is, right left out of the dict -> default "l2"
    F = _two_blocks(block_norm={"left": None}).fit_transform(numbers)
    np.testing.assert_allclose(F, [[3.0, 4.0, 1.0], [0.0, 2.0, -1.0]])
    F = _two_blocks(block_norm={"left": "l2", "right": None}).fit_transform(numbers)
    np.testing.assert_allclose(F, [[0.6, 0.8, 1.0], [0.0, 1.0, -5.0]])


def test_weight_zero_zeroes_the_block(numbers):
    fuser = _two_blocks(weights={"left": 0.0}, missing_indicator=True)
    F = fuser.fit_transform(numbers)
    np.testing.assert_array_equal(_block(F, fuser, "left"), 0.0)
    np.testing.assert_allclose(_block(F, fuser, "right"), [[1.0, 0.0], [-1.0, 0.0]])


def test_weights_accept_ints_and_numpy_floats(numbers):
    F1 = _two_blocks(weights={"left": 2, "right": np.float32(0.5)}).fit_transform(
        numbers
    )
    F2 = _two_blocks(weights={"left": 2.0, "right": 0.5}).fit_transform(numbers)
    np.testing.assert_allclose(F1, F2)


# ---------------------------------------------------------------- parameter errors


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weights": {"left": 1.0, "middle": 2.0}},
        {"block_norm": {"middle": "l2"}},
        {"impute": {"middle": "mean"}},
        {"missing_indicator": ["left", "middle"]},
    ],
    ids=["weights", "block_norm", "impute", "missing_indicator"],
)
def test_unknown_block_names_raise(numbers, kwargs):
    with pytest.raises(ParameterError, match="middle"):
        _two_blocks(**kwargs).fit(numbers)


@pytest.mark.parametrize(
    "weight", [-1.0, float("nan"), float("inf"), True, False, "1", None, [1.0]]
)
def test_bad_weight_values_raise(numbers, weight):
    with pytest.raises(ParameterError, match="left"):
        _two_blocks(weights={"left": weight}).fit(numbers)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weights": [1.0, 2.0]},
        {"weights": 2.0},
        {"block_norm": "L2"},
        {"block_norm": {"left": "max"}},
        {"impute": "median"},
        {"impute": {"right": 0}},
        {"sparse_output": "yes"},
        {"remainder": "scale"},
    ],
)
def test_bad_parameter_values_raise(numbers, kwargs):
    with pytest.raises(ParameterError):
        _two_blocks(**kwargs).fit(numbers)


@pytest.mark.parametrize(
    "transformers",
    [[], None, [("a", "passthrough")], [("a", "nothing", ["a"])], [("a", 3, ["a"])]],
)
def test_bad_transformers_raise(numbers, transformers):
    with pytest.raises(ParameterError):
        MultimodalFuser(transformers).fit(numbers)


def test_missing_indicator_none_raises_parameter_error(numbers):
    # BUG: set(None) -> TypeError "'NoneType' object is not iterable"
    with pytest.raises(ParameterError, match="missing_indicator"):
        _two_blocks(missing_indicator=None).fit(numbers)


def test_missing_indicator_string_is_not_split_into_characters():
    # BUG: a str is iterated as characters: blocks "a" and "b" with
    # missing_indicator="ab" silently flags both instead of refusing "ab"
    X = pd.DataFrame({"a": [1.0, np.nan], "b": [np.nan, 2.0]})
    fuser = MultimodalFuser(
        [("a", "passthrough", ["a"]), ("b", "passthrough", ["b"])],
        missing_indicator="ab",
    )
    with pytest.raises(ParameterError, match="missing_indicator"):
        fuser.fit(X)


def test_parameters_are_only_validated_in_fit(numbers):
    fuser = _two_blocks(weights={"nope": -1}, block_norm="bad")
    assert fuser.get_params()["block_norm"] == "bad"
    with pytest.raises(ParameterError):
        fuser.fit(numbers)


# ---------------------------------------------------------------- imputation


@pytest.fixture
def with_gap():
    # a missing row in the left block, present in the right one
    return pd.DataFrame(
        {"a": [3.0, 1.0, np.nan], "b": [4.0, 2.0, np.nan], "c": [1.0, -5.0, 2.0]}
    )


def test_impute_zero_gives_a_zero_row(with_gap):
    F = _two_blocks(impute="zero").fit_transform(with_gap)
    np.testing.assert_allclose(F[:, :2], [[0.6, 0.8], [1 / 5**0.5, 2 / 5**0.5], [0, 0]])
    np.testing.assert_allclose(F[:, 2], [1.0, -1.0, 1.0])


def test_impute_mean_uses_training_rows_only(with_gap):
    fuser = _two_blocks(impute="mean", block_norm=None)
    F = fuser.fit_transform(with_gap)
    # mean over the two present rows: (2, 3)
    np.testing.assert_allclose(F[2, :2], [2.0, 3.0])
    new = pd.DataFrame(
        {"a": [np.nan, 100.0, np.nan], "b": [np.nan, 200.0, np.nan], "c": [0.0, 1, 2]}
    )
    np.testing.assert_allclose(
        fuser.transform(new)[:, :2], [[2.0, 3.0], [100.0, 200.0], [2.0, 3.0]]
    )


def test_impute_mean_then_l2(with_gap):
    F = _two_blocks(impute="mean").fit_transform(with_gap)
    np.testing.assert_allclose(F[2, :2], np.array([2.0, 3.0]) / 13**0.5)


def test_impute_mean_then_standard_gives_a_zero_row(with_gap):
    fuser = _two_blocks(impute="mean", block_norm="standard")
    F = fuser.fit_transform(with_gap)
    np.testing.assert_allclose(F[2, :2], 0.0, atol=1e-12)
    # statistics come from the present rows only: (3, 4) and (1, 2) -> +-1
    np.testing.assert_allclose(F[:2, :2], np.array([[1, 1], [-1, -1]]) / 2**0.5)


def test_impute_per_block_dict(with_gap):
    X = with_gap.assign(c=[1.0, np.nan, 3.0])
    fuser = _two_blocks(impute={"left": "mean"}, block_norm=None)
    F = fuser.fit_transform(X)
    np.testing.assert_allclose(F[2, :2], [2.0, 3.0])  # mean
    assert F[1, 2] == 0.0  # right left out -> "zero"


def test_missing_indicator_column_names_and_values(with_gap):
    fuser = _two_blocks(missing_indicator=True, weights={"left": 2.0})
    F = fuser.fit_transform(with_gap)
    names = fuser.get_feature_names_out().tolist()
    assert names == [
        "left__a",
        "left__b",
        "left__missing",
        "right__c",
        "right__missing",
    ]
    # the flag is scaled by the block weight
    np.testing.assert_allclose(F[:, 2], [0.0, 0.0, 2.0])
    np.testing.assert_allclose(F[:, 4], [0.0, 0.0, 0.0])
    new = pd.DataFrame({"a": [1.0, np.nan], "b": [1.0, np.nan], "c": [np.nan, 1.0]})
    Fn = fuser.transform(new)
    np.testing.assert_allclose(Fn[:, 2], [0.0, 2.0])
    np.testing.assert_allclose(Fn[:, 4], [1.0, 0.0])


def test_missing_indicator_list_flags_only_named_blocks(with_gap):
    fuser = _two_blocks(missing_indicator=["left"])
    F = fuser.fit_transform(with_gap)
    assert fuser.get_feature_names_out().tolist() == [
        "left__a",
        "left__b",
        "left__missing",
        "right__c",
    ]
    np.testing.assert_allclose(F[:, 2], [0.0, 0.0, 1.0])


def test_missing_items_from_extractors_are_imputed():
    X, _ = _multimodal_frame(12, missing=[3])
    fuser = make_fuser(
        {"image": _hog(), "text": TfidfExtractor()},
        sparse_output=False,
        missing_indicator=True,
    )
    F = fuser.fit_transform(X)
    assert np.isfinite(F).all()
    np.testing.assert_array_equal(_block(F, fuser, "image")[3, :-1], 0.0)
    np.testing.assert_array_equal(_block(F, fuser, "text")[3, :-1], 0.0)
    assert _block(F, fuser, "image")[3, -1] == 1.0
    assert _block(F, fuser, "text")[3, -1] == 1.0
    assert _block(F, fuser, "image")[:, -1].sum() == 1.0


# ---------------------------------------------------------------- sparse and dense


def test_sparse_text_and_dense_image_give_csr_with_auto():
    X, _ = _multimodal_frame(20)
    fuser = make_fuser({"image": _hog(), "text": TfidfExtractor()})
    F = fuser.fit_transform(X)
    assert sp.issparse(F) and F.format == "csr"
    assert F.shape[0] == 20
    assert F.shape[1] == 36 + len(
        fuser.named_transformers_["text"].get_feature_names_out()
    )
    # the text block keeps its sparsity (its nnz equals TF-IDF's)
    text = TfidfExtractor().fit_transform(X["text"])
    assert F[:, fuser.output_indices_["text"]].nnz == text.nnz
    np.testing.assert_allclose(
        sp.linalg.norm(F[:, fuser.output_indices_["text"]], axis=1), 1.0
    )
    np.testing.assert_allclose(
        sp.linalg.norm(F[:, fuser.output_indices_["image"]], axis=1), 1.0
    )
    dense = clone(fuser).set_params(sparse_output=False).fit_transform(X)
    assert isinstance(dense, np.ndarray)
    np.testing.assert_allclose(dense, F.toarray())


def test_sparse_output_true_for_dense_only_blocks(numbers):
    F = _two_blocks(sparse_output=True).fit_transform(numbers)
    assert sp.issparse(F) and F.format == "csr"
    np.testing.assert_allclose(F.toarray(), [[0.6, 0.8, 1.0], [0.0, 1.0, -1.0]])
    assert isinstance(_two_blocks().fit_transform(numbers), np.ndarray)


def test_sparse_output_false_densifies_text():
    X, _ = _multimodal_frame(10)
    F = make_fuser({"text": TfidfExtractor()}, sparse_output=False).fit_transform(X)
    assert isinstance(F, np.ndarray)


@pytest.mark.parametrize("impute", ["zero", "mean"])
def test_sparse_block_with_missing_rows_is_imputed_without_densifying(impute):
    X, _ = _multimodal_frame(12, missing=[2, 5])
    fuser = make_fuser(
        {"text": TfidfExtractor()}, impute=impute, block_norm=None, weights={"text": 2}
    )
    F = fuser.fit_transform(X)
    assert sp.issparse(F) and F.format == "csr"
    assert not np.isnan(F.data).any()
    present = [i for i in range(12) if i not in (2, 5)]
    tfidf = TfidfExtractor().fit(X["text"])
    T = tfidf.transform(X["text"].iloc[present])
    np.testing.assert_allclose(F[present].toarray(), 2 * T.toarray())
    # only the present rows' entries (plus the fill of the missing ones) are stored
    if impute == "zero":
        np.testing.assert_array_equal(F[[2, 5]].toarray(), 0.0)
        assert F.nnz == T.nnz
    else:
        mean = np.asarray(T.mean(axis=0)).ravel()
        np.testing.assert_allclose(F[[2, 5]].toarray(), 2 * np.vstack([mean, mean]))
        assert F.nnz == T.nnz + 2 * np.count_nonzero(mean)
    # new rows: fill from the training rows
    G = fuser.transform(pd.DataFrame({"text": [None, "red shirt"]}, dtype=object))
    assert sp.issparse(G)
    expected = 0.0 if impute == "zero" else 2 * mean
    np.testing.assert_allclose(G[0].toarray().ravel(), expected)


def test_sparse_block_standard_is_scaled_not_centred():
    X, _ = _multimodal_frame(16)
    fuser = make_fuser({"text": TfidfExtractor()}, block_norm="standard")
    F = fuser.fit_transform(X)
    assert sp.issparse(F)
    T = TfidfExtractor().fit_transform(X["text"]).toarray()
    std = T.std(axis=0)
    std[std < 1e-12] = 1.0
    np.testing.assert_allclose(F.toarray(), T / std / np.sqrt(T.shape[1]))


# ---------------------------------------------------------------- names and output


def test_feature_names_have_block_prefixes():
    X, _ = _multimodal_frame(12)
    hog, tfidf = _hog(), TfidfExtractor()
    fuser = make_fuser({"image": hog, "text": tfidf})
    F = fuser.fit_transform(X)
    names = fuser.get_feature_names_out()
    assert len(names) == F.shape[1]
    text_names = fuser.named_transformers_["text"].get_feature_names_out()
    expected = [f"image__hog_{i}" for i in range(36)] + [
        f"text__{n}" for n in text_names
    ]
    assert names.tolist() == expected


def test_set_output_pandas_gives_named_dataframe(numbers):
    frame = numbers.set_axis([10, 20])
    fuser = _two_blocks(missing_indicator=["right"]).set_output(transform="pandas")
    out = fuser.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist() == ["left__a", "left__b", "right__c", "right__missing"]
    assert out.index.tolist() == [10, 20]
    np.testing.assert_allclose(out.to_numpy(), [[0.6, 0.8, 1, 0], [0, 1, -1, 0]])
    pd.testing.assert_frame_equal(fuser.transform(frame), out)


def test_set_output_pandas_with_extractors():
    X, _ = _multimodal_frame(10)
    fuser = make_fuser({"image": _hog()}).set_output(transform="pandas")
    out = fuser.fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist() == [f"image__hog_{i}" for i in range(36)]


def test_drop_and_passthrough_blocks(numbers):
    fuser = MultimodalFuser(
        [("left", "drop", ["a", "b"]), ("right", "passthrough", ["c"])],
        block_norm=None,
    )
    F = fuser.fit_transform(numbers)
    np.testing.assert_allclose(F, [[1.0], [-5.0]])
    assert fuser.get_feature_names_out().tolist() == ["right__c"]
    assert fuser.weights_ == {"left": 1.0, "right": 1.0}


def test_set_params_block_to_drop():
    X, _ = _multimodal_frame(10)
    fuser = make_fuser({"image": _hog(), "text": TfidfExtractor()})
    F = fuser.set_params(text="drop").fit_transform(X)
    assert isinstance(F, np.ndarray) and F.shape == (10, 36)


def test_remainder_passthrough_appends_columns_as_they_are(numbers):
    fuser = MultimodalFuser(
        [("left", "passthrough", ["a", "b"])],
        remainder="passthrough",
        weights={"left": 2.0},
    )
    F = fuser.fit_transform(numbers)
    np.testing.assert_allclose(F, [[1.2, 1.6, 1.0], [0.0, 2.0, -5.0]])
    assert fuser.get_feature_names_out().tolist() == [
        "left__a",
        "left__b",
        "remainder__c",
    ]
    assert fuser.n_features_in_ == 3
    assert fuser.feature_names_in_.tolist() == ["a", "b", "c"]
    F = MultimodalFuser([("left", "passthrough", ["a", "b"])]).fit_transform(numbers)
    assert F.shape == (2, 2)  # remainder="drop"


def test_numpy_input_with_integer_columns():
    X = np.array([[3.0, 4.0, 1.0], [0.0, 2.0, -5.0]])
    fuser = MultimodalFuser([("l", "passthrough", [0, 1]), ("r", "passthrough", [2])])
    np.testing.assert_allclose(fuser.fit_transform(X), [[0.6, 0.8, 1], [0, 1, -1]])
    assert fuser.get_feature_names_out().tolist() == ["l__x0", "l__x1", "r__x2"]


def test_verbose_prints_block_progress(numbers, capsys):
    _two_blocks(verbose=True).fit(numbers)
    out = capsys.readouterr().out
    assert "left" in out and "right" in out


# ---------------------------------------------------------------- fitting behaviour


def test_n_jobs_2_matches_n_jobs_1():
    X, _ = _multimodal_frame(16, missing=[4])
    kw = dict(
        weights={"image": 0.5, "text": 2.0}, impute="mean", missing_indicator=True
    )
    F1 = make_fuser({"image": _hog(), "text": TfidfExtractor()}, n_jobs=1, **kw)
    F2 = make_fuser({"image": _hog(), "text": TfidfExtractor()}, n_jobs=2, **kw)
    A = F1.fit_transform(X)
    B = F2.fit_transform(X)
    assert (A != B).nnz == 0
    assert (F1.transform(X) != F2.transform(X)).nnz == 0
    assert F1.get_feature_names_out().tolist() == F2.get_feature_names_out().tolist()


def test_fit_transform_equals_fit_then_transform():
    X, _ = _multimodal_frame(16, missing=[1])
    fuser = make_fuser(
        {"image": _hog(), "text": TfidfExtractor()},
        block_norm={"image": "standard"},
        impute="mean",
        missing_indicator=["text"],
    )
    A = fuser.fit_transform(X)
    B = clone(fuser).fit(X).transform(X)
    np.testing.assert_allclose(A.toarray(), B.toarray())


def _word_lengths(column):
    return np.array([[float(len(w)) for w in str(s).split()] for s in column])


def test_transform_with_different_block_width_raises():
    fuser = MultimodalFuser(
        [("words", FunctionTransformer(_word_lengths), "text")], block_norm=None
    )
    fuser.fit(pd.DataFrame({"text": ["ab cde", "f gh"]}))
    with pytest.raises(InputError, match="words"):
        fuser.transform(pd.DataFrame({"text": ["ab cd ef", "g h i"]}))


def test_transform_before_fit_raises(numbers):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        _two_blocks().transform(numbers)


def test_infinite_feature_raises_input_error():
    X = pd.DataFrame({"a": [1.0, np.inf]})
    with pytest.raises(InputError, match="infinite"):
        MultimodalFuser([("x", "passthrough", ["a"])]).fit(X)


def test_non_numeric_passthrough_block_gives_a_clear_input_error():
    X, _ = _multimodal_frame(6)
    fuser = MultimodalFuser([("text", "passthrough", ["text"])])
    with pytest.raises(InputError, match="text.*non-numeric"):
        fuser.fit(X)
    fuser = MultimodalFuser([("image", "passthrough", ["image"])])
    with pytest.raises(InputError, match="image"):
        fuser.fit(X)


def test_clone_and_pickle_round_trip():
    X, _ = _multimodal_frame(16, missing=[2])
    fuser = make_fuser(
        {"image": _hog(), "text": TfidfExtractor()},
        weights={"text": 0.5},
        impute="mean",
        missing_indicator=True,
    )
    cloned = clone(fuser)
    assert cloned is not fuser
    assert cloned.get_params(deep=False).keys() == fuser.get_params(deep=False).keys()
    assert cloned.weights == {"text": 0.5}
    assert cloned.transformers[0][1] is not fuser.transformers[0][1]
    assert not hasattr(cloned, "column_transformer_")
    F = fuser.fit_transform(X)
    restored = pickle.loads(pickle.dumps(fuser))
    G = restored.transform(X)
    assert (fuser.transform(X) != G).nnz == 0  # bit-identical
    # fit_transform and transform agree to rounding (TF-IDF's own last ulp)
    np.testing.assert_allclose(G.toarray(), F.toarray(), rtol=0, atol=1e-15)
    assert restored.get_feature_names_out().tolist() == (
        fuser.get_feature_names_out().tolist()
    )
    np.testing.assert_allclose(cloned.fit_transform(X).toarray(), F.toarray())


def test_nested_params_get_and_set():
    X, _ = _multimodal_frame(10)
    fuser = make_fuser({"image": _hog(), "text": TfidfExtractor()})
    params = fuser.get_params()
    assert params["image__orientations"] == 9
    assert "text__word_ngram_range" in params
    assert params["image"] is fuser.transformers[0][1]
    assert fuser.set_params(sparse_output=False).fit_transform(X).shape[1] > 36
    assert fuser.output_indices_["image"] == slice(0, 36)
    fuser.set_params(image__orientations=6, weights={"image": 2.0})
    assert fuser.transformers[0][1].orientations == 6
    F = fuser.fit_transform(X)
    assert fuser.output_indices_["image"] == slice(0, 24)  # 4 cells * 6 bins
    np.testing.assert_allclose(np.linalg.norm(_block(F, fuser, "image"), axis=1), 2.0)
    # replacing a whole block keeps its columns
    fuser.set_params(image=_hog(orientations=4))
    assert fuser.transformers[0][2] == "image"
    fuser.fit(X)
    assert fuser.output_indices_["image"] == slice(0, 16)


def test_fitted_attributes():
    X, _ = _multimodal_frame(10)
    hog = _hog()
    fuser = make_fuser({"image": hog, "text": TfidfExtractor()}).fit(X)
    # the user's transformer is cloned, never fitted in place
    assert not hasattr(hog, "n_features_out_")
    assert isinstance(fuser.named_transformers_["image"], HOGExtractor)
    assert fuser.named_transformers_["image"].n_features_out_ == 36
    names = [name for name, _, _ in fuser.transformers_]
    assert names[:2] == ["image", "text"]
    assert fuser.n_features_in_ == 2
    assert fuser.feature_names_in_.tolist() == ["image", "text"]


# ---------------------------------------------------------------- model selection


def test_grid_search_over_fusion_weights():
    X, y = _multimodal_frame(40)
    grid = fusion_weight_grid(image=[0.0, 1.0], text=[0.0, 1.0, 2.0])
    assert len(grid) == 5
    pipe = Pipeline(
        [
            ("fuser", make_fuser({"image": _hog(), "text": TfidfExtractor()})),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    )
    search = GridSearchCV(pipe, {"fuser__weights": grid}, cv=2)
    search.fit(X, y)
    assert search.best_params_["fuser__weights"] in grid
    assert len(search.cv_results_["params"]) == 5
    assert search.best_score_ > 0.9
    assert search.predict(X).shape == (40,)


def test_imblearn_pipeline_with_smote():
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import Pipeline as ImbPipeline
    from sklearn.svm import SVC

    X, y = _multimodal_frame(40)
    keep = np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:8]]
    X, y = X.iloc[keep].reset_index(drop=True), y[keep]
    pipe = ImbPipeline(
        [
            (
                "fuser",
                make_fuser(
                    {"image": _hog(), "text": TfidfExtractor()}, sparse_output=False
                ),
            ),
            ("smote", SMOTE(k_neighbors=3, random_state=0)),
            ("svc", SVC()),
        ]
    )
    pipe.fit(X, y)
    pred = pipe.predict(X)
    assert pred.shape == (len(y),)
    assert set(pred) <= {0, 1}
    assert (pred == y).mean() > 0.9


def test_real_fashion_products_image_and_title(data_home):
    from mmfeat.datasets import load_fashion_products

    bunch = load_fashion_products(data_home=data_home, target="masterCategory")
    frame = bunch.frame
    keep = frame["masterCategory"].isin(["Apparel", "Footwear"])
    frame = frame[keep].groupby("masterCategory").head(15).reset_index(drop=True)
    y = frame["masterCategory"].to_numpy()
    fuser = make_fuser(
        {
            "image": (_hog(image_size=(32, 32), cells_per_block=(2, 2)), "path"),
            "title": (TfidfExtractor(), "title"),
        },
        weights={"image": 0.5, "title": 2.0},
    )
    F = fuser.fit_transform(frame, y)
    assert sp.issparse(F) and F.shape[0] == 30
    np.testing.assert_allclose(
        sp.linalg.norm(F[:, fuser.output_indices_["image"]], axis=1), 0.5
    )
    np.testing.assert_allclose(
        sp.linalg.norm(F[:, fuser.output_indices_["title"]], axis=1), 2.0
    )
    clf = Pipeline([("fuser", fuser), ("clf", LogisticRegression(max_iter=500))])
    assert clf.fit(frame, y).score(frame, y) > 0.9


# ---------------------------------------------------------------- make_fuser


def test_make_fuser_names_blocks_after_columns():
    hog, tfidf = _hog(), TfidfExtractor()
    fuser = make_fuser({"image": hog, "text": tfidf}, weights={"text": 2.0})
    assert isinstance(fuser, MultimodalFuser)
    assert fuser.transformers == [("image", hog, "image"), ("text", tfidf, "text")]
    assert fuser.weights == {"text": 2.0}


def test_make_fuser_with_transformer_and_columns():
    hog, tfidf = _hog(), TfidfExtractor()
    fuser = make_fuser(
        {"photo": (hog, "image"), "text": tfidf, "nums": ("drop", ["x"])}
    )
    assert fuser.transformers == [
        ("photo", hog, "image"),
        ("text", tfidf, "text"),
        ("nums", "drop", ["x"]),
    ]
    X, _ = _multimodal_frame(8)
    F = fuser.set_params(sparse_output=False).fit_transform(X.assign(x=1.0))
    assert fuser.get_feature_names_out()[0] == "photo__hog_0"
    assert F.shape[0] == 8


@pytest.mark.parametrize(
    "blocks", [{}, None, [("image", "passthrough")], {"image": (_hog(),)}]
)
def test_make_fuser_bad_blocks_raise(blocks):
    with pytest.raises(ParameterError):
        make_fuser(blocks)


def test_make_fuser_bad_kwargs_raise_in_fit(numbers):
    fuser = make_fuser({"a": "passthrough"}, weights={"b": 1.0})
    with pytest.raises(ParameterError, match="b"):
        fuser.fit(numbers)
    with pytest.raises(TypeError):
        make_fuser({"a": "passthrough"}, not_a_param=1)


# ---------------------------------------------------------------- fusion_weight_grid


def test_fusion_weight_grid_is_the_product_in_order():
    grid = fusion_weight_grid(image=[0.5, 1], text=[1, 2], audio=[3])
    assert grid == [
        {"image": 0.5, "text": 1.0, "audio": 3.0},
        {"image": 0.5, "text": 2.0, "audio": 3.0},
        {"image": 1.0, "text": 1.0, "audio": 3.0},
        {"image": 1.0, "text": 2.0, "audio": 3.0},
    ]
    assert all(isinstance(v, float) for g in grid for v in g.values())


def test_fusion_weight_grid_leaves_out_all_zero():
    grid = fusion_weight_grid(image=[0, 1], text=[0, 1])
    assert grid == [
        {"image": 0.0, "text": 1.0},
        {"image": 1.0, "text": 0.0},
        {"image": 1.0, "text": 1.0},
    ]


def test_fusion_weight_grid_scalar_and_arrays():
    assert fusion_weight_grid(image=2) == [{"image": 2.0}]
    assert fusion_weight_grid(image=np.array([1.0, 2.0])) == [
        {"image": 1.0},
        {"image": 2.0},
    ]


@pytest.mark.parametrize(
    "values", [[], [-1.0], [1.0, float("nan")], [float("inf")], -2.0]
)
def test_fusion_weight_grid_bad_numbers_raise(values):
    with pytest.raises(ParameterError, match="image"):
        fusion_weight_grid(image=values, text=[1.0])


@pytest.mark.parametrize("values", [["x"], [None], [1.0, "heavy"], None])
def test_fusion_weight_grid_non_numbers_raise_parameter_error(values):
    # BUG: float("x") / float(None) escape as a bare ValueError / TypeError
    with pytest.raises(ParameterError, match="image"):
        fusion_weight_grid(image=values)


def test_fusion_weight_grid_string_is_not_split_into_characters():
    # BUG: image="12" is iterated as characters and gives weights 1.0 and 2.0
    with pytest.raises(ParameterError, match="image"):
        fusion_weight_grid(image="12")


def test_fusion_weight_grid_needs_a_block():
    with pytest.raises(ParameterError):
        fusion_weight_grid()


def test_fusion_weight_grid_entries_are_valid_fuser_weights(numbers):
    grid = fusion_weight_grid(left=[0, 1.5], right=[0, 2])
    for weights in grid:
        F = _two_blocks(weights=weights).fit_transform(numbers)
        np.testing.assert_allclose(np.linalg.norm(F[:, :2], axis=1), weights["left"])


# ---------------------------------------------------------------- found in review


def test_get_params_and_set_params_accept_anything_until_fit():
    # BUG: the _transformers property unpacks self.transformers without the
    # try/except ColumnTransformer has, so get_params/set_params/clone crash
    # on a bad value (sklearn's check_do_not_raise_errors_in_init_or_set_params)
    for value in [-1, "helloworld", [1], {}]:
        fuser = MultimodalFuser(value)
        assert fuser.get_params()["transformers"] is value
        clone(fuser)
        fuser.set_params(transformers=value, weights=value)
        with pytest.raises(ParameterError):
            fuser.fit(np.ones((3, 2)))


@pytest.mark.parametrize("fmt", ["coo", "dia", "lil", "dok", "bsr"])
def test_sparse_input_in_any_format(fmt):
    # BUG: ColumnTransformer cannot index coo/dia/... matrices ("object is not
    # subscriptable"), while the fuser's tags say it takes sparse input
    X = sp.random(8, 4, density=0.5, format=fmt, random_state=0)
    fuser = MultimodalFuser(
        [("x", "passthrough", [0, 1]), ("y", "passthrough", [2, 3])]
    )
    F = fuser.fit_transform(X)
    expected = fuser.fit_transform(X.tocsr())
    np.testing.assert_allclose(F.toarray(), expected.toarray())


def test_one_dimensional_input_raises_value_error():
    # BUG: a 1-D array reaches ColumnTransformer's indexing and raises a bare
    # IndexError ("tuple index out of range") instead of a ValueError that
    # says to reshape the data
    fuser = MultimodalFuser([("x", "passthrough", [0])])
    with pytest.raises(ValueError, match="[Rr]eshape"):
        fuser.fit(np.arange(5.0))
    fuser.fit(np.ones((3, 1)))
    with pytest.raises(ValueError, match="[Rr]eshape"):
        fuser.transform(np.arange(5.0))


@pytest.mark.parametrize("impute", ["zero", "mean"])
def test_partially_missing_rows_same_for_sparse_and_dense(impute):
    # BUG: the sparse path clears the whole row when any feature is NaN, the
    # dense one fills only the NaN features ("value put into missing features")
    D = np.array([[1.0, 2.0], [10.0, np.nan], [5.0, 6.0]])
    fuser = MultimodalFuser(
        [("x", "passthrough", [0, 1])], block_norm=None, impute=impute
    )
    dense = fuser.fit_transform(D)
    sparse = fuser.fit_transform(sp.csr_matrix(D))
    np.testing.assert_allclose(sparse.toarray(), dense)


def test_zero_imputed_row_is_not_an_outlier_under_standard_norm(rng):
    # BUG (design): with block_norm="standard", impute="zero" fills 0 *before*
    # centring, so a missing row becomes -mean/std: with HOG-like features
    # (mean 0.3, std 0.02) its block norm is ~15 while present rows have ~1,
    # so one missing image outweighs every other block whatever the weights.
    # Sparse blocks (scaled, not centred) and l2 blocks keep such a row at 0.
    H = 0.3 + 0.02 * rng.standard_normal((50, 36))
    H[0] = np.nan
    fuser = MultimodalFuser(
        [("x", "passthrough", slice(0, None))], block_norm="standard"
    )
    F = fuser.fit_transform(H)
    np.testing.assert_allclose(F[0], 0.0, atol=1e-12)


class _CountingScaler(StandardScaler):
    """A StandardScaler that counts its fits (class-wide, in this process)."""

    fits = 0

    def fit(self, X, y=None, sample_weight=None):
        type(self).fits += 1
        return super().fit(X, y, sample_weight)


def test_memory_caches_block_features_across_weights(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    y = (X["a"] + 0.3 * rng.normal(size=40) > 0).astype(int)
    grid = {"multimodalfuser__weights": fusion_weight_grid(a=[0.5, 1, 2], b=[1])}

    def search(memory):
        _CountingScaler.fits = 0
        fuser = make_fuser(
            {"a": (_CountingScaler(), ["a"]), "b": (StandardScaler(), ["b"])},
            memory=memory,
        )
        model = make_pipeline(fuser, LogisticRegression())
        found = GridSearchCV(model, grid, cv=3).fit(X, y)
        return _CountingScaler.fits, found

    uncached, plain = search(None)
    cached, with_memory = search(str(tmp_path / "cache"))
    assert uncached == 3 * 3 + 1  # every weight re-fits every fold, + refit
    assert cached == 3 + 1  # one fit per fold (and the refit on all rows)
    assert plain.best_params_ == with_memory.best_params_
    np.testing.assert_allclose(
        plain.cv_results_["mean_test_score"], with_memory.cv_results_["mean_test_score"]
    )


class _CountingReader(StandardScaler):
    """Counts its transforms; refuses (reports) row 0 as a bad item."""

    transforms = 0

    def transform(self, X, copy=None):
        from mmfeat.utils._item_errors import ItemError, report_item_errors

        type(self).transforms += 1
        out = super().transform(X, copy=copy)
        out[0] = np.nan
        report_item_errors([ItemError(0, "a.png", "unreadable")])
        return out


def test_memory_caches_held_out_features_and_still_reports_their_errors(tmp_path):
    from mmfeat import collect_item_errors

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30)})
    y = (X["a"] > 0).astype(int)
    fuser = make_fuser(
        {"a": (_CountingReader(), ["a"]), "b": (StandardScaler(), ["b"])},
        memory=str(tmp_path / "cache"),
    )
    model = make_pipeline(fuser, LogisticRegression()).fit(X, y)
    _CountingReader.transforms = 0
    for weights in ({"a": 1.0}, {"a": 2.0}, {"a": 0.5}):
        model.set_params(multimodalfuser__weights=weights).fit(X, y)
        with collect_item_errors() as errors:
            model.predict(X)
        # reported on every call, cache hit or not
        assert [(e.row, e.modality) for e in errors] == [(0, "a")]
    # fit_transform is cached by Pipeline(memory=); transform once, by the block
    assert _CountingReader.transforms == 1
