"""NeuralFusionClassifier: one network over every modality (torch)."""

import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

import mmfeat
from mmfeat import collect_item_errors
from mmfeat.evaluation import fusion_report, mask_modality
from mmfeat.exceptions import InputError, ModelStateError, ParameterError
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import NeuralFusionClassifier, get_modalities, predict_with_presence
from mmfeat.fusion._neural import weight_shapes
from tests.fusion._helpers import av_data, numeric_data, small_hog

try:
    import torch
except ImportError:  # the extra is not installed
    torch = None

NO_TORCH = (
    "torch is not installed, so NeuralFusionClassifier cannot run: pip install "
    "torch==2.13.0 (a CPU build) or 'mmfeat[cnn]'"
)


@pytest.fixture(autouse=True)
def _needs_torch(request):
    """Skip (fail in CI) without torch, except the test about its absence."""
    if torch is None and "without_torch" not in request.node.name:
        if os.environ.get("CI"):
            pytest.fail(NO_TORCH)
        pytest.skip(NO_TORCH)


def _numeric(**kw):
    params = {
        "hidden_size": 16,
        "learning_rate": 1e-2,
        "random_state": 0,
        "device": "cpu",
        **kw,
    }
    return NeuralFusionClassifier(
        [("a", "passthrough", ["a"]), ("b", "passthrough", ["b"])], **params
    )


def _av(**kw):
    params = {"hidden_size": 32, "random_state": 0, "device": "cpu", **kw}
    return NeuralFusionClassifier(
        [
            ("image", small_hog(on_error="missing"), "image"),
            ("text", TfidfExtractor(), "text"),
        ],
        **params,
    )


# -- without torch ---------------------------------------------------------------
def test_neural_fusion_without_torch_imports_and_explains():
    code = textwrap.dedent(
        """
        import sys

        class NoTorch:  # as if torch were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        from mmfeat.fusion import NeuralFusionClassifier
        assert NeuralFusionClassifier.get_test_params() == []
        model = NeuralFusionClassifier([("a", "passthrough", [0])])
        try:
            model.fit(np.zeros((4, 1)), [0, 1, 0, 1])
        except ImportError as exc:
            assert exc.name == "torch", exc.name
            print(exc)
        else:
            raise AssertionError("fit without torch did not raise")
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=path),
    )
    assert done.returncode == 0, done.stderr
    assert "NeuralFusionClassifier needs PyTorch" in done.stdout
    assert "CPU build of torch" in done.stdout


# -- the network -------------------------------------------------------------------
@pytest.mark.parametrize("fusion", ["concat", "gated"])
@pytest.mark.parametrize("wide", [True, False])
def test_weight_shapes_name_every_parameter_of_the_network(fusion, wide):
    from mmfeat.fusion._neural_net import build_network

    spec = {
        "inputs": [("dense", 7), ("sparse", 11)],
        "hidden_size": 5,
        "dropout": 0.1,
        "fusion": fusion,
        "n_classes": 3,
        "wide": wide,
    }
    net = build_network(spec)
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == weight_shapes(spec)


def test_sparse_first_layer_equals_the_dense_one():
    """The EmbeddingBag path is the product of the CSR rows with the weights."""
    import scipy.sparse as sp

    from mmfeat.fusion._neural_net import _batch_inputs, build_network

    rng = np.random.default_rng(0)
    dense = rng.random((6, 9)).astype(np.float32)
    dense[dense < 0.6] = 0.0
    base = {"hidden_size": 4, "dropout": 0.0, "fusion": "concat", "n_classes": 2}
    net_d = build_network({**base, "inputs": [("dense", 9)], "wide": True}, seed=1)
    net_s = build_network({**base, "inputs": [("sparse", 9)], "wide": True}, seed=1)
    state = {k: v.clone() for k, v in net_d.state_dict().items()}
    with torch.no_grad():
        state["wide.0.weight"] = torch.randn(2, 9)
        net_d.load_state_dict(state)
        state["encoders.0.first.weight"] = state["encoders.0.first.weight"].T.clone()
        state["wide.0.weight"] = state["wide.0.weight"].T.clone()
        net_s.load_state_dict(state)
    rows = np.arange(6)
    present = np.ones((6, 1), dtype=bool)
    net_d.eval()
    net_s.eval()
    with torch.no_grad():
        out_d, _ = net_d(
            _batch_inputs([dense], rows, present, "cpu"), torch.from_numpy(present)
        )
        out_s, _ = net_s(
            _batch_inputs([sp.csr_matrix(dense)], rows, present, "cpu"),
            torch.from_numpy(present),
        )
    np.testing.assert_allclose(out_s.numpy(), out_d.numpy(), rtol=1e-5, atol=1e-6)


# -- learning ------------------------------------------------------------------------
def test_learns_from_both_modalities_and_beats_the_weak_one():
    X, y = numeric_data(n=240, noise_b=1.0)
    model = _numeric().fit(X.iloc[:160], y[:160])
    acc = model.score(X.iloc[160:], y[160:])
    weak = (
        LogisticRegression()
        .fit(X[["b"]].iloc[:160], y[:160])
        .score(X[["b"]].iloc[160:], y[160:])
    )
    assert acc >= 0.85 and acc > weak
    assert model.classes_.tolist() == [0, 1]
    assert len(model.validation_scores_) == model.n_iter_ == len(model.loss_curve_)
    assert 0 <= model.best_epoch_ < model.n_iter_
    assert model.n_training_rows_ == {"a": 160, "b": 160}


def test_image_and_text_with_a_sparse_text_block():
    X, y = av_data(n=80, image_noise=0.3, text_flip=0.2)
    model = _av().fit(X.iloc[:60], y[:60])
    assert model.network_spec_["inputs"][1][0] == "sparse"  # TF-IDF never densified
    assert model.feature_scaling_[1] is None
    assert model.score(X.iloc[60:], y[60:]) >= 0.9


def test_modality_dropout_teaches_the_network_to_score_rows_without_a_modality():
    X, y = numeric_data(n=400, noise_b=0.8)
    train, test = slice(0, 300), slice(300, None)
    only_b = LogisticRegression().fit(X[["b"]][train], y[train])
    X_masked = mask_modality(X.iloc[test], ["a"])
    model = _numeric(modality_dropout=0.5).fit(X[train], y[train])
    proba = model.predict_proba(X_masked)
    assert np.isfinite(proba).all()
    assert (
        model.score(X_masked, y[test]) >= only_b.score(X[["b"]][test], y[test]) - 0.05
    )
    # the missing embeddings are learnt from the dropped modalities; with no
    # dropout and every training row complete they get no gradient (only
    # AdamW's decay shrinks them a little)
    from mmfeat.fusion._neural_net import build_network

    never = _numeric(modality_dropout=0.0).fit(X[train], y[train])
    for fitted, moved in ((never, False), (model, True)):
        start = build_network(fitted.network_spec_, seed=_seed_of(fitted))
        start = start.missing.detach().numpy()
        change = np.linalg.norm(fitted.network_weights_["missing"] - start)
        assert bool(change > 0.5 * np.linalg.norm(start)) is moved


def _seed_of(model):
    from sklearn.utils import check_random_state

    return int(check_random_state(model.random_state).randint(np.iinfo(np.int32).max))


def test_reproducible_and_leaves_torch_global_random_state_alone():
    X, y = numeric_data(n=120)
    before = torch.get_rng_state().clone()
    a = _numeric().fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), before)
    b = _numeric().fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = _numeric(random_state=1).fit(X, y).predict_proba(X)
    assert not np.allclose(a, c)


def test_predict_changes_no_attribute():
    X, y = av_data(n=40)
    model = _av(fusion="gated", max_epochs=5).fit(X, y)
    before = joblib.hash(model)
    model.predict_proba(X)
    model.modality_weights(X)
    model.predict_proba_with_presence(X)
    assert joblib.hash(model) == before


def test_gated_weights_per_row_sum_to_one():
    X, y = numeric_data(n=160)
    model = _numeric(fusion="gated").fit(X, y)
    w = model.modality_weights(X)
    assert list(w.columns) == ["a", "b"]
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-5)
    assert not hasattr(_numeric().fit(X, y), "modality_weights")


def test_class_weight_balanced_finds_more_of_the_rare_class():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(270, int), np.ones(30, int)]
    X = pd.DataFrame(
        {"a": y * 1.0 + rng.normal(0, 0.8, 300), "b": rng.normal(0, 1, 300)}
    )
    recall = {}
    for cw in (None, "balanced"):
        model = _numeric(class_weight=cw, early_stopping=False, max_epochs=40).fit(X, y)
        recall[cw] = (model.predict(X)[y == 1] == 1).mean()
    assert recall["balanced"] > recall[None]
    with pytest.raises(ParameterError, match="not in y"):
        _numeric(class_weight={7: 2.0}).fit(X, y)


def test_sample_weight_zero_is_leaving_the_row_out_of_the_loss():
    X, y = numeric_data(n=120)
    sw = np.ones(len(y))
    sw[:10] = 0.0
    model = _numeric(early_stopping=False, max_epochs=10).fit(X, y, sample_weight=sw)
    assert np.isfinite(model.loss_curve_).all()
    with pytest.raises(ValueError, match="non-zero"):
        _numeric().fit(X, y, sample_weight=np.zeros(len(y)))


def test_warm_start_continues_the_fitted_network():
    X, y = numeric_data(n=120)
    model = _numeric(warm_start=True, early_stopping=False, max_epochs=3).fit(X, y)
    first = model.network_weights_["head.4.weight"].copy()
    model.fit(X, y)
    assert model.n_iter_ == 3
    # continued, not restarted: a fresh fit of 3 epochs gives other weights
    fresh = _numeric(early_stopping=False, max_epochs=3).fit(X, y)
    assert not np.allclose(model.network_weights_["head.4.weight"], first)
    assert not np.allclose(
        model.network_weights_["head.4.weight"], fresh.network_weights_["head.4.weight"]
    )
    with pytest.raises(ParameterError, match="new classes"):
        model.fit(X, np.where(y == 1, 2, y))


# -- missing and bad items ------------------------------------------------------
def test_unreadable_items_are_reported_with_their_rows_and_modality(tmp_path):
    X, y = av_data(n=40)
    X = X.copy()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    X.loc[3, "image"] = str(bad)
    X.loc[5, "image"] = None
    with collect_item_errors() as log:
        model = _av(max_epochs=5).fit(X, y)
    assert [(e.row, e.modality) for e in log] == [(3, "image")]
    assert model.n_training_rows_["image"] == 38
    _, presence = model.predict_proba_with_presence(X)
    assert presence["image"].tolist()[3] is False and presence["text"].all()


def test_rows_missing_every_modality_raise_or_get_the_prior():
    X, y = numeric_data(n=80)
    model = _numeric(max_epochs=5).fit(X, y)
    X2 = X.iloc[:3].copy()
    X2.loc[X2.index[1], ["a", "b"]] = np.nan
    with pytest.raises(InputError, match="every modality") as err:
        model.predict(X2)
    assert err.value.row == 1
    model.set_params(all_missing="prior")
    np.testing.assert_allclose(model.predict_proba(X2)[1], model.class_prior_)


def test_fit_errors_are_clear():
    X, y = numeric_data(n=40)
    with pytest.raises(ParameterError, match="triple"):
        NeuralFusionClassifier([("a", "passthrough")]).fit(X, y)
    with pytest.raises(ParameterError, match="transformer"):
        NeuralFusionClassifier([("a", LogisticRegression(), ["a"])]).fit(X, y)
    with pytest.raises(ValueError, match="one class"):
        _numeric().fit(X, np.zeros(len(y)))
    texts = pd.DataFrame({"t": ["a b"] * 40})
    with pytest.raises(InputError, match="not numbers"):
        NeuralFusionClassifier([("t", "passthrough", ["t"])], device="cpu").fit(
            texts, y
        )
    empty = X.assign(a=np.nan)
    with pytest.raises(InputError, match="no training row"):
        _numeric().fit(empty, y)


# -- the scikit-learn contract and mmfeat's tools --------------------------------------
def test_grid_search_over_width_dropout_and_learning_rate():
    X, y = numeric_data(n=120)
    search = GridSearchCV(
        _numeric(max_epochs=10),
        {"hidden_size": [8, 16], "dropout": [0.0, 0.3], "learning_rate": [1e-2]},
        cv=2,
    ).fit(X, y)
    assert set(search.best_params_) == {"hidden_size", "dropout", "learning_rate"}
    assert search.best_estimator_.network_spec_["hidden_size"] in (8, 16)


def test_pickle_and_save_load_score_alike(tmp_path):
    X, y = av_data(n=40)
    model = _av(max_epochs=5).fit(X, y)
    expected = model.predict_proba(X)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(model)).predict_proba(X), expected
    )
    path = tmp_path / "deep.skops"
    mmfeat.save(model, path)
    loaded = mmfeat.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert all(a.dtype == np.float32 for a in loaded.network_weights_.values())


@pytest.mark.parametrize(
    "tamper, match",
    [
        (
            lambda s: s["network_weights_"].update(
                missing=np.zeros((5, 5), np.float32)
            ),
            "missing",
        ),
        (lambda s: s["network_spec_"].update(hidden_size=1 << 20), "hidden_size"),
        (
            lambda s: s["network_spec_"]["inputs"].__setitem__(0, ("dense", 10**9)),
            "input",
        ),
        (
            lambda s: s["feature_scaling_"].__setitem__(0, (np.zeros(1), np.zeros(1))),
            "scaling",
        ),
    ],
)
def test_a_tampered_state_is_refused_before_torch_sees_it(tamper, match):
    X, y = numeric_data(n=40)
    model = _numeric(max_epochs=2).fit(X, y)
    state = model.__getstate__()
    state = {
        **state,
        "network_weights_": dict(state["network_weights_"]),
        "network_spec_": {
            **state["network_spec_"],
            "inputs": list(state["network_spec_"]["inputs"]),
        },
        "feature_scaling_": list(state["feature_scaling_"]),
    }
    tamper(state)
    fresh = NeuralFusionClassifier.__new__(NeuralFusionClassifier)
    with pytest.raises(ModelStateError, match=match):
        fresh.__setstate__(state)


def test_fusion_tools_see_its_modalities():
    X, y = av_data(n=40)
    model = _av(max_epochs=5).fit(X, y)
    mods = get_modalities(model)
    assert [(m.name, m.columns) for m in mods] == [
        ("image", ["image"]),
        ("text", ["text"]),
    ]
    proba, presence = predict_with_presence(model, X)
    assert proba.shape == (40, 2) and list(presence.columns) == ["image", "text"]
    report = fusion_report(model, X, y)
    assert list(report.index) == ["image", "text", "fused"]


def test_end_to_end_trains_the_cnn_backbone_with_the_network():
    from mmfeat.features.image import CNNExtractor

    X, y = av_data(n=48, image_noise=0.3)

    def model(end_to_end):
        cnn = CNNExtractor(image_size=16, random_state=0, device="cpu")
        return NeuralFusionClassifier(
            [("image", cnn, "image"), ("text", TfidfExtractor(), "text")],
            hidden_size=16,
            max_epochs=4,
            early_stopping=False,
            end_to_end=end_to_end,
            random_state=0,
            device="cpu",
        ).fit(X, y)

    frozen, joint = model(False), model(True)
    fresh = CNNExtractor(image_size=16, random_state=0, device="cpu").fit()

    def weights(extractor):
        return [p.detach().numpy().copy() for p in extractor.module_.parameters()]

    same = [
        np.array_equal(a, b)
        for a, b in zip(weights(fresh), weights(frozen.transformers_[0][1]))
    ]
    moved = [
        np.array_equal(a, b)
        for a, b in zip(weights(fresh), weights(joint.transformers_[0][1]))
    ]
    assert all(same) and not any(moved)
    # the trained backbone scores through transform, and survives pickling
    proba = joint.predict_proba(X)
    assert joint.score(X, y) >= 0.9
    np.testing.assert_allclose(
        pickle.loads(pickle.dumps(joint)).predict_proba(X), proba, rtol=1e-5, atol=1e-6
    )
    assert not joint.transformers_[0][1].module_.training
