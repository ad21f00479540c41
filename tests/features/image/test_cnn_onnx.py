"""CNNExtractor(inference="onnx"): the exported graph, scored with onnxruntime."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mmfeat
from mmfeat import collect_item_errors
from mmfeat.exceptions import InputError, MmfeatError, ParameterError
from mmfeat.features.image import CNNExtractor
from mmfeat.utils.estimator_checks import make_test_items

try:
    import onnx
    import onnxruntime  # noqa: F401
    import torch
except ImportError:  # an extra is not installed
    onnx = torch = None

MISSING = (
    "CNNExtractor(inference='onnx') needs torch, onnx and onnxruntime: pip install "
    "torch==2.13.0 (a CPU build), then '.[test]' (or 'mmfeat[onnx]')"
)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


@pytest.fixture(autouse=True)
def _needs_onnx():
    """Skip (fail in CI) without torch, onnx and onnxruntime."""
    if onnx is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)


def assert_as_torch(actual, desired):
    """The ONNX features equal torch's up to float32 rounding (the issue: 1e-4)."""
    np.testing.assert_allclose(actual, desired, rtol=1e-4, atol=1e-5)


def _pixels(n=6, size=(32, 32), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), np.uint8)


class _Residual(torch.nn.Module if torch is not None else object):
    """A small ResNet/MobileNet-like network: skip connection, hardswish, pooling."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.block = torch.nn.Sequential(
            torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.Hardswish()
        )
        self.head = torch.nn.Sequential(
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5)
        )

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = x + self.block(x)
        return self.head(x)


class _Branchy(torch.nn.Module if torch is not None else object):
    """A forward pass whose steps depend on the pixel values: not traceable."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 4, 3)
        self.b = torch.nn.Conv2d(3, 4, 5)

    def forward(self, x):
        return self.a(x) if float(x.mean()) > 0 else self.b(x)


# -- features equal to torch's --------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(layer="stage2", pooling="avg+max"),
        dict(layer="stage1", pooling="max", mean=(0.5, 0.5, 0.5), std=(0.2, 0.3, 0.4)),
        dict(backbone="residual"),
        dict(backbone="residual", layer="block", pooling="avg+max"),
    ],
    ids=["simple", "stage2-avg+max", "stage1-max-own-stats", "residual", "block"],
)
def test_onnx_features_equal_torch_features(params):
    params = dict(params)
    if params.get("backbone") == "residual":
        params["backbone"] = _Residual()
    X = _pixels(7, (40, 24))
    torch_cnn = CNNExtractor(image_size=(40, 24), random_state=0, **params).fit()
    onnx_cnn = CNNExtractor(
        image_size=(40, 24), random_state=0, inference="onnx", **params
    ).fit()
    assert onnx_cnn.onnx_model_.dtype == np.uint8 and onnx_cnn.onnx_model_.ndim == 1
    assert not hasattr(torch_cnn, "onnx_model_")
    want = torch_cnn.transform(X)
    got = onnx_cnn.transform(X)
    assert got.shape == want.shape == (7, onnx_cnn.n_features_out_)
    assert got.dtype == np.float64
    assert_as_torch(got, want)
    # a float stack and a grey stack go through the same uint8 pixels
    assert_as_torch(onnx_cnn.transform(X / 255.0), want)
    grey = X[..., 0]
    assert_as_torch(onnx_cnn.transform(grey), torch_cnn.transform(grey))


def test_onnx_batches_threads_and_file_items_give_the_same_features():
    items, y = make_test_items("image", n=12)
    cnn = CNNExtractor(
        image_size=(32, 32), random_state=0, fine_tune_epochs=1, inference="onnx"
    ).fit(items, y)
    want = cnn.set_params(inference="torch").transform(items)  # the same network
    # batches of 5, 5 and 2, two threads in onnxruntime and two decoding
    cnn.set_params(inference="onnx", batch_size=5, n_jobs=2, num_workers=2)
    assert_as_torch(cnn.transform(items), want)


def test_onnx_reports_bad_items_and_keeps_rows_aligned(tmp_path):
    good = _pixels(3, (20, 20))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    items = [good[0], None, str(bad), good[1], good[2]]
    cnn = CNNExtractor(
        image_size=(20, 20), random_state=0, inference="onnx", on_error="missing"
    ).fit()
    with collect_item_errors() as errors:
        out = cnn.transform(items)
    assert np.isnan(out[[1, 2]]).all() and np.isfinite(out[[0, 3, 4]]).all()
    assert [e.row for e in errors] == [2] and "bad.jpg" in str(errors[0].source)
    ref = CNNExtractor(image_size=(20, 20), random_state=0).fit().transform(good)
    assert_as_torch(out[[0, 3, 4]], ref)
    with pytest.raises(Exception, match="bad.jpg"):
        cnn.set_params(on_error="raise").transform(items)


def test_onnx_transform_changes_no_attribute():
    cnn = CNNExtractor(image_size=(16, 16), random_state=0, inference="onnx").fit()
    before = {k: v for k, v in vars(cnn).items() if k != "module_"}
    cnn.transform(_pixels(3, (16, 16)))
    after = {k: v for k, v in vars(cnn).items() if k != "module_"}
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert after[key] is value, key


# -- exporting a model fitted with torch, and what cannot be exported -----------
def test_export_onnx_converts_an_extractor_fitted_with_torch():
    X = _pixels(4, (24, 24))
    cnn = CNNExtractor(image_size=(24, 24), random_state=0).fit()
    want = cnn.transform(X)
    cnn.set_params(inference="onnx")
    with pytest.raises(ParameterError, match="export_onnx"):
        cnn.transform(X)
    assert cnn.export_onnx() is cnn
    assert_as_torch(cnn.transform(X), want)
    # a new size needs a new export, and says so
    cnn.set_params(image_size=(32, 32))
    with pytest.raises(ParameterError, match="image_size changed since the export"):
        cnn.transform(_pixels(2, (32, 32)))
    # refitting with torch drops the stale graph
    cnn.set_params(inference="torch").fit()
    assert not hasattr(cnn, "onnx_model_")


def test_a_network_that_branches_on_its_input_is_refused_at_fit():
    cnn = CNNExtractor(backbone=_Branchy(), image_size=(16, 16), inference="onnx")
    with pytest.raises(MmfeatError, match="cannot trace; use inference='torch'"):
        cnn.fit()


def test_onnx_fit_without_onnx_says_what_to_install():
    code = textwrap.dedent(
        """
        import sys

        class NoOnnx:  # as if the onnx extra were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("onnx", "onnxruntime"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoOnnx())
        from mmfeat.features.image import CNNExtractor
        assert all(p["inference"] == "torch" for p in CNNExtractor.get_test_params())
        try:
            CNNExtractor(image_size=16, inference="onnx").fit()
        except ImportError as exc:
            print(exc)
        else:
            raise AssertionError("fit without onnx did not raise")
        """
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert "pip install 'mmfeat[onnx]'" in done.stdout


def test_a_graph_is_checked_once_and_not_kept_alive_by_the_caches(monkeypatch):
    import gc
    import weakref

    from mmfeat.features.image import _cnn_onnx

    cnn = CNNExtractor(image_size=(16, 16), random_state=0, inference="onnx").fit()
    assert not cnn.onnx_model_.flags.writeable
    calls = []
    check = _cnn_onnx.check_graph

    def counted(*args, **kwargs):
        calls.append(1)
        return check(*args, **kwargs)

    monkeypatch.setattr(_cnn_onnx, "check_graph", counted)
    X = _pixels(2, (16, 16))
    want = cnn.set_params(n_jobs=2).transform(X)  # a new session, same graph
    again = pickle.loads(pickle.dumps(cnn))  # loading checks the same bytes
    np.testing.assert_array_equal(again.transform(X), want)
    assert calls == []  # fit checked this graph already
    # another graph (an edited copy) is hashed and checked anew
    edited = again.onnx_model_.copy()
    edited[-1] ^= 0xFF
    with pytest.raises(_cnn_onnx.GraphError):
        _cnn_onnx.check_array(
            edited, image_size=(16, 16), n_features=cnn.n_features_out_
        )
    assert calls == [1]
    graphs = [weakref.ref(cnn.onnx_model_), weakref.ref(again.onnx_model_)]
    del cnn, again
    gc.collect()
    assert all(ref() is None for ref in graphs)


# -- persistence, with and without torch -----------------------------------------
def test_onnx_extractor_pickles_and_saves(tmp_path):
    X = _pixels(4, (16, 16))
    cnn = CNNExtractor(image_size=(16, 16), random_state=0, inference="onnx").fit()
    want = cnn.transform(X)
    again = pickle.loads(pickle.dumps(cnn))
    np.testing.assert_array_equal(again.onnx_model_, cnn.onnx_model_)
    np.testing.assert_array_equal(again.transform(X), want)
    mmfeat.save(cnn, tmp_path / "cnn.skops")
    loaded = mmfeat.load(tmp_path / "cnn.skops")
    np.testing.assert_array_equal(loaded.transform(X), want)
    # the torch network came back too
    assert_as_torch(loaded.set_params(inference="torch").transform(X), want)


def test_old_pickles_without_inference_load_as_torch():
    cnn = CNNExtractor(image_size=(16, 16), random_state=0).fit()
    state = cnn.__getstate__()
    del state["inference"]
    old = CNNExtractor.__new__(CNNExtractor)
    old.__setstate__(state)
    assert old.inference == "torch"
    X = _pixels(2, (16, 16))
    np.testing.assert_array_equal(old.transform(X), cnn.transform(X))


NO_TORCH = """
import sys

class NoTorch:  # as if torch were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTorch())
"""


def _run_python(code, *args):
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_a_model_fitted_with_torch_scores_with_mmfeat_score_without_torch(tmp_path):
    import pandas as pd

    from mmfeat.recipes import make_default_model
    from tests.scoring._records import make_records

    records = make_records(tmp_path, n=30, seed=2)
    records.to_csv(tmp_path / "records.csv", index=False)
    X = records[["image", "title"]].copy()
    X["image"] = [str(tmp_path / p) for p in X["image"]]
    model = make_default_model(
        {"image": "image", "text": "title"}, image_features=("cnn-onnx",)
    ).fit(X, records["label"])
    cnn = model.named_estimators_["image"][0]
    assert cnn.inference == "onnx" and hasattr(cnn, "onnx_model_")
    mmfeat.save(model, tmp_path / "model.skops")
    want = model.predict_proba(X)
    feats = cnn.transform(X["image"])
    np.save(tmp_path / "feats.npy", feats)
    code = NO_TORCH + textwrap.dedent(
        """
        import numpy as np
        import pandas as pd

        import mmfeat
        from mmfeat.cli import main

        folder = sys.argv[1]
        model = mmfeat.load(f"{folder}/model.skops")
        assert "torch" not in sys.modules
        cnn = model.named_estimators_["image"][0]
        assert not hasattr(cnn, "module_")
        records = pd.read_csv(f"{folder}/records.csv")
        images = [f"{folder}/{p}" for p in records["image"]]
        np.testing.assert_allclose(
            cnn.transform(images), np.load(f"{folder}/feats.npy"), rtol=1e-5,
            atol=1e-6,
        )
        # saved again without torch: the weights are kept
        mmfeat.save(model, f"{folder}/again.skops")
        status = main(
            ["score", f"{folder}/model.skops", f"{folder}/records.csv",
             "-o", f"{folder}/scored.csv", "--no-progress"]
        )
        assert status == 0, status
        try:
            cnn.set_params(inference="torch").transform(images[:1])
        except ImportError as exc:
            assert exc.name == "torch", exc.name
            assert "set_params(inference='onnx')" in str(exc), exc
        else:
            raise AssertionError("torch inference without torch did not raise")
        print("scored without torch")
        """
    )
    done = _run_python(code, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "scored without torch" in done.stdout
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert len(scored) == len(records)
    proba = scored[[f"proba_{c}" for c in model.classes_]].to_numpy()
    np.testing.assert_allclose(proba, want, atol=1e-6)
    # the file saved without torch still holds the network for torch
    again = mmfeat.load(tmp_path / "again.skops")
    again_cnn = again.named_estimators_["image"][0].set_params(inference="torch")
    assert_as_torch(again_cnn.transform(X["image"]), feats)


# -- hostile graphs ---------------------------------------------------------------
def _graph(nodes, initializers=(), out_dims=("n", 1), in_dims=("n", 8, 8, 3)):
    h = onnx.helper
    model = h.make_model(
        h.make_graph(
            nodes,
            "g",
            [h.make_tensor_value_info("images", onnx.TensorProto.UINT8, in_dims)],
            [h.make_tensor_value_info("features", onnx.TensorProto.FLOAT, out_dims)],
            initializer=list(initializers),
        ),
        opset_imports=[h.make_opsetid("", 17)],
    )
    return model.SerializeToString()


def _check(graph, n_features=1):
    from mmfeat.features.image._cnn_onnx import check_graph

    return check_graph(graph, image_size=(8, 8), n_features=n_features)


def _flatten_mean():
    h = onnx.helper
    return [
        h.make_node("Cast", ["images"], ["f"], to=onnx.TensorProto.FLOAT),
        h.make_node("Flatten", ["f"], ["flat"], axis=1),
        h.make_node("ReduceMean", ["flat"], ["features"], axes=[1], keepdims=1),
    ]


def _ints(name, values):
    return onnx.numpy_helper.from_array(np.asarray(values, np.int64), name)


def test_check_graph_accepts_a_plain_graph_and_sizes_its_tensors():
    graph = _graph(_flatten_mean())
    assert _check(graph) == 8 * 8 * 3


@pytest.mark.parametrize(
    "attack, reason",
    [
        ("garbage", "not an ONNX model"),
        ("expand", "not an operator mmfeat exports"),
        ("custom-domain", "not an operator mmfeat exports"),
        ("external-data", "external file"),
        ("subgraph", "not an operator mmfeat exports"),
        ("wrong-input", "the graph's input is not"),
        ("wrong-output", "the graph's output is not"),
        ("huge-tensor", "elements per image"),
    ],
)
def test_check_graph_refuses_hostile_graphs(attack, reason):
    from mmfeat.features.image._cnn_onnx import GraphError

    h = onnx.helper
    axes = _ints("last", [-1])
    if attack == "garbage":
        graph = b"\x08\x07garbage" * 10
    elif attack == "expand":  # allocates by a value from the file
        shape = _ints("shape", [1 << 20, 1, 1, 1, 1])
        nodes = [
            h.make_node("Cast", ["images"], ["f"], to=onnx.TensorProto.FLOAT),
            h.make_node("Expand", ["f", "shape"], ["big"]),
            *_flatten_mean()[1:],
        ]
        graph = _graph(nodes, [axes, shape])
    elif attack == "custom-domain":
        nodes = _flatten_mean()
        nodes[0] = h.make_node("Cast", ["images"], ["f"], domain="evil.ops", to=1)
        graph = _graph(nodes, [axes])
    elif attack == "external-data":
        w = onnx.numpy_helper.from_array(np.ones(4, np.int64), "w")
        onnx.external_data_helper.set_external_data(w, location="../../etc/passwd")
        w.ClearField("raw_data")
        graph = _graph(_flatten_mean(), [w])
    elif attack == "subgraph":
        branch = h.make_graph([], "b", [], [])
        nodes = [
            h.make_node("If", ["c"], ["f"], then_branch=branch, else_branch=branch),
            *_flatten_mean()[1:],
        ]
        graph = _graph(nodes, [axes])
    elif attack == "wrong-input":
        graph = _graph(_flatten_mean(), [axes], in_dims=("n", 8, 8, 4))
    elif attack == "wrong-output":
        graph = _graph(_flatten_mean(), [axes], out_dims=("n", 2))
    else:  # broadcasting grows a tensor 64-fold per node from 64 numbers
        nodes = [h.make_node("Cast", ["images"], ["t0"], to=onnx.TensorProto.FLOAT)]
        inits = [axes, _ints("one", [1])]
        for k in range(4):
            inits.append(onnx.numpy_helper.from_array(np.ones(64, np.float32), f"g{k}"))
            nodes.append(h.make_node("Unsqueeze", [f"t{k}", "last"], [f"u{k}"]))
            nodes.append(h.make_node("Add", [f"u{k}", f"g{k}"], [f"t{k + 1}"]))
        nodes += [
            h.make_node(
                "ReduceMean", ["t4"], ["m"], axes=list(range(1, 8)), keepdims=0
            ),
            h.make_node("Unsqueeze", ["m", "one"], ["features"]),
        ]
        graph = _graph(nodes, inits)
    with pytest.raises(GraphError, match=reason):
        _check(graph)


def test_an_edited_graph_in_a_model_file_is_refused_at_load(tmp_path):
    cnn = CNNExtractor(image_size=(8, 8), random_state=0, inference="onnx").fit()
    h = onnx.helper
    shape = _ints("shape", [1 << 20, 1, 1, 1, 1])
    nodes = [
        h.make_node("Cast", ["images"], ["f"], to=onnx.TensorProto.FLOAT),
        h.make_node("Expand", ["f", "shape"], ["big"]),
        h.make_node("Flatten", ["big"], ["flat"], axis=1),
        h.make_node("MatMul", ["flat", "w"], ["features"]),
    ]
    w = onnx.numpy_helper.from_array(
        np.zeros((192, cnn.n_features_out_), np.float32), "w"
    )
    evil = _graph(nodes, [shape, w], out_dims=("n", cnn.n_features_out_))
    cnn.onnx_model_ = np.frombuffer(evil, np.uint8).copy()
    mmfeat.save(cnn, tmp_path / "evil.skops")
    with pytest.raises(
        InputError, match="ModelStateError: CNNExtractor: onnx_model_.*Expand"
    ):
        mmfeat.load(tmp_path / "evil.skops")
    # not a byte array at all
    cnn.onnx_model_ = np.zeros(4, np.float64)
    mmfeat.save(cnn, tmp_path / "floats.skops")
    with pytest.raises(InputError, match="onnx_model_ is not a 1-D uint8 array"):
        mmfeat.load(tmp_path / "floats.skops")
