import os
import pickle
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mmfeat import collect_item_errors
from mmfeat.datasets import load_fashion_products, load_usps
from mmfeat.exceptions import InputError, ParameterError
from mmfeat.features.image import CNNExtractor
from mmfeat.io import read_image
from mmfeat.utils.estimator_checks import make_test_items

try:
    import torch
except ImportError:  # the extra is not installed
    torch = None


def _torchvision_imports():
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


HAS_TORCHVISION = torch is not None and _torchvision_imports()
NO_TORCH = (
    "torch is not installed, so CNNExtractor cannot run: pip install "
    "torch==2.13.0 (a CPU build) or 'mmfeat[cnn]'"
)


@pytest.fixture(autouse=True)
def _needs_torch(request):
    """Skip (fail in CI) without torch, except the tests about its absence."""
    if torch is None and not request.node.name.startswith("test_cnn_without_torch"):
        if os.environ.get("CI"):
            pytest.fail(NO_TORCH)
        pytest.skip(NO_TORCH)


@pytest.fixture
def images(rng):
    items, y = make_test_items("image", n=12)
    return items, y


def _tiny():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(5, 7, 1)
    )


def assert_features_close(actual, desired):
    """CNN features that must agree, up to float32 rounding.

    Never compare them exactly: oneDNN may pick another convolution algorithm
    for another batch shape or thread count, and the last bits then differ.
    """
    np.testing.assert_allclose(actual, desired, rtol=1e-5, atol=1e-6)


# -- without torch ---------------------------------------------------------------
def test_cnn_without_torch_imports_and_explains():
    code = textwrap.dedent(
        """
        import sys

        class NoTorch:  # as if torch were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoTorch())
        from mmfeat.features.image import CNNExtractor, HOGExtractor
        from mmfeat.utils.discovery import all_estimators
        assert "CNNExtractor" in dict(all_estimators())
        assert CNNExtractor.get_test_params() == []
        cnn = CNNExtractor(image_size=(16, 16))
        try:
            cnn.fit()
        except ImportError as exc:
            assert exc.name == "torch", exc.name
            print(exc)
        else:
            raise AssertionError("fit without torch did not raise")
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    # keep the caller's path (packages installed beside, e.g. with --target)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'mmfeat[cnn]'" in done.stdout
    assert "CPU build of torch" in done.stdout


# -- shapes, names, determinism -------------------------------------------------
def test_cnn_output_shape_and_feature_names(images):
    items, _ = images
    cnn = CNNExtractor(image_size=(32, 32), random_state=0)
    out = cnn.fit_transform(items)
    assert out.shape == (12, 256) and out.dtype == np.float64
    assert np.isfinite(out).all()
    assert cnn.layer_ == "fc"
    names = cnn.get_feature_names_out()
    assert list(names[:2]) == ["cnn_0", "cnn_1"] and len(names) == 256
    frame = cnn.set_output(transform="pandas").transform(items)
    assert list(frame.columns) == list(names)


def test_cnn_docstring_example():
    images = np.random.default_rng(0).random((4, 32, 32))
    cnn = CNNExtractor(image_size=(32, 32), random_state=0)
    assert cnn.fit_transform(images).shape == (4, 256)


def test_cnn_random_state_gives_equal_features_and_keeps_global_rng(images):
    items, y = images
    before = torch.get_rng_state()
    a = CNNExtractor(image_size=(16, 16), random_state=3).fit_transform(items)
    b = CNNExtractor(image_size=(16, 16), random_state=3).fit_transform(items)
    c = CNNExtractor(image_size=(16, 16), random_state=4).fit_transform(items)
    assert_features_close(a, b)
    assert not np.allclose(a, c)
    ft = dict(image_size=(16, 16), fine_tune_epochs=2, random_state=0, batch_size=4)
    d = CNNExtractor(**ft).fit(items, y).transform(items)
    e = CNNExtractor(**ft).fit(items, y).transform(items)
    assert_features_close(d, e)
    assert torch.equal(before, torch.get_rng_state())


def test_cnn_stack_fast_path_equals_items(rng):
    stack = (rng.random((6, 20, 20, 3)) * 255).astype(np.uint8)
    cnn = CNNExtractor(image_size=(20, 20), random_state=0, batch_size=4).fit()
    assert_features_close(cnn.transform(stack), cnn.transform(list(stack)))
    gray = rng.random((5, 20, 20))
    assert_features_close(cnn.transform(gray), cnn.transform(list(gray)))


# -- pooling, layers, backbones ---------------------------------------------------
def test_cnn_pooling_variants(images):
    items, _ = images
    kw = dict(image_size=(32, 32), layer="stage3", random_state=0)
    avg = CNNExtractor(pooling="avg", **kw).fit_transform(items)
    mx = CNNExtractor(pooling="max", **kw).fit_transform(items)
    both = CNNExtractor(pooling="avg+max", **kw).fit_transform(items)
    assert avg.shape[1] == mx.shape[1] == 128 and both.shape[1] == 256
    assert_features_close(both, np.hstack([avg, mx]))
    assert (mx >= avg - 1e-6).all()


def test_cnn_layer_selection(images):
    items, _ = images
    widths = {"stage1": 32, "stage2": 64, "stage3": 128, "fc": 256}
    for layer, width in widths.items():
        cnn = CNNExtractor(image_size=(16, 16), layer=layer, random_state=0)
        assert cnn.fit_transform(items).shape == (12, width)
        assert cnn.layer_ == layer
    with pytest.raises(
        ParameterError, match="layer='stage9' is not a submodule.*stage1"
    ):
        CNNExtractor(image_size=(16, 16), layer="stage9").fit()


def test_cnn_user_module_backbone_matches_direct_forward(images):
    items, _ = images
    module = _tiny()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    cnn = CNNExtractor(
        backbone=module,
        image_size=(16, 16),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        device="cpu",  # the fp32 reference below runs on the CPU
    )
    out = cnn.fit_transform(items)
    assert out.shape == (12, 7) and cnn.layer_ == ""
    pixels = np.stack(
        [read_image(it, mode="rgb", size=(16, 16), dtype="uint8") for it in items]
    )
    x = (torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        ref = module(x).mean((2, 3)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    # fine-tuning trains a copy: the module passed in is left as it was
    CNNExtractor(backbone=module, image_size=(16, 16), fine_tune_epochs=1).fit(
        items, np.arange(12) % 2
    )
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k])
    assert module(torch.zeros(1, 3, 8, 8)).shape == (1, 7, 8, 8)


def test_cnn_user_module_layer_by_name(images):
    items, _ = images
    cnn = CNNExtractor(backbone=_tiny(), layer="0", image_size=(16, 16))
    assert cnn.fit_transform(items).shape == (12, 5)


@pytest.mark.skipif(HAS_TORCHVISION, reason="torchvision imports here")
def test_cnn_named_backbone_without_torchvision_says_what_to_do():
    with pytest.raises(ImportError, match="needs torchvision.*backbone='simple'"):
        CNNExtractor(backbone="resnet18").fit()


@pytest.mark.skipif(not HAS_TORCHVISION, reason="torchvision does not import here")
def test_cnn_torchvision_backbone(images):
    items, _ = images
    cnn = CNNExtractor(backbone="resnet18", image_size=(64, 64), random_state=0)
    out = cnn.fit_transform(items)
    assert out.shape == (12, 512) and cnn.layer_ == "layer4"
    again = CNNExtractor(backbone="resnet18", image_size=(64, 64), random_state=0)
    assert_features_close(out, again.fit_transform(items))
    loaded = pickle.loads(pickle.dumps(cnn))
    assert_features_close(out, loaded.transform(items))
    vit = CNNExtractor(backbone="mobilenet_v3_small", image_size=(64, 64)).fit()
    assert vit.layer_ == "features"
    with pytest.raises(ParameterError, match="not a torchvision model"):
        CNNExtractor(backbone="resnet_eighteen").fit()
    with pytest.raises(ParameterError, match="not weights of torchvision's resnet18"):
        CNNExtractor(backbone="resnet18", weights="NO_SUCH_WEIGHTS").fit()


# -- device and precision -----------------------------------------------------------
@pytest.mark.skipif(
    torch is not None and torch.cuda.is_available(), reason="a GPU is present"
)
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cnn_cuda_without_gpu_says_what_to_do(device):
    with pytest.raises(ParameterError, match=f"device='{device}'.*device='cpu'"):
        CNNExtractor(device=device, image_size=(16, 16)).fit()


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu"])
def test_cnn_unknown_device(device):
    with pytest.raises(ParameterError, match="'auto', 'cpu', 'cuda' or 'cuda:N'"):
        CNNExtractor(device=device, image_size=(16, 16)).fit()


def test_cnn_bf16_features_close_to_fp32(images):
    items, _ = images
    cnn = CNNExtractor(image_size=(32, 32), random_state=0, device="cpu").fit()
    fp32 = cnn.set_params(precision="fp32").transform(items)
    bf16 = cnn.set_params(precision="bf16").transform(items)
    assert not np.array_equal(fp32, bf16)
    scale = np.abs(fp32).max()
    np.testing.assert_allclose(bf16, fp32, atol=0.05 * scale)


def test_cnn_decode_gpu_on_cpu_device_decodes_on_cpu(images):
    items, _ = images
    cnn = CNNExtractor(image_size=(16, 16), random_state=0, device="cpu").fit()
    ref = cnn.transform(items)
    assert_features_close(cnn.set_params(decode="gpu").transform(items), ref)


# -- weights ----------------------------------------------------------------------
def test_cnn_weights_path_errors(tmp_path):
    with pytest.raises(ParameterError, match="is not an existing file.*state_dict"):
        CNNExtractor(weights=str(tmp_path / "none.pt"), image_size=(16, 16)).fit()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ParameterError, match="cannot read weights"):
        CNNExtractor(weights=junk, image_size=(16, 16)).fit()
    wrong = tmp_path / "wrong.pt"
    torch.save(_tiny().state_dict(), wrong)
    with pytest.raises(ParameterError, match="do not fit backbone='simple'"):
        CNNExtractor(weights=wrong, image_size=(16, 16)).fit()
    with pytest.raises(ParameterError, match="only for torchvision"):
        CNNExtractor(weights="IMAGENET1K_V1", image_size=(16, 16)).fit()
    with pytest.raises(ParameterError, match="only for torchvision"):
        CNNExtractor(backbone=_tiny(), weights="DEFAULT", image_size=(16, 16)).fit()


def test_cnn_weights_path_loads_a_saved_state_dict(images, tmp_path):
    items, y = images
    kw = dict(image_size=(16, 16), random_state=0)
    tuned = CNNExtractor(fine_tune_epochs=2, **kw).fit(items, y)
    path = tmp_path / "tuned.pt"
    torch.save({"state_dict": tuned.module_.state_dict()}, path)
    loaded = CNNExtractor(weights=str(path), **dict(kw, random_state=5)).fit()
    assert_features_close(loaded.transform(items), tuned.transform(items))
    user = CNNExtractor(backbone=_tiny(), image_size=(16, 16)).fit()
    path2 = tmp_path / "tiny.pth"
    torch.save(user.module_.state_dict(), path2)
    other = CNNExtractor(backbone=_tiny(), weights=path2, image_size=(16, 16)).fit()
    assert_features_close(other.transform(items), user.transform(items))


# -- pickling -----------------------------------------------------------------------
def test_cnn_pickle_keeps_cpu_arrays_and_rebuilds(images):
    items, y = images
    cnn = CNNExtractor(image_size=(16, 16), fine_tune_epochs=1, random_state=0)
    ref = cnn.fit(items, y).transform(items)
    state = cnn.__getstate__()
    assert "module_" not in state
    arrays = state["_module_state_"]
    assert arrays and all(isinstance(a, np.ndarray) for a in arrays.values())
    loaded = pickle.loads(pickle.dumps(cnn))
    assert isinstance(loaded.module_, torch.nn.Module) and not loaded.module_.training
    assert_features_close(loaded.transform(items), ref)
    np.testing.assert_array_equal(loaded.classes_, [0, 1])


def test_cnn_transform_leaves_the_network_as_it_is(images):
    """A network not ready for the call's device runs as a copy, not moved."""
    items, _ = images
    cnn = CNNExtractor(image_size=(16, 16), random_state=0, device="cpu").fit()
    ref = cnn.transform(items)
    module = cnn.module_
    where = {k: (v.device, v.data_ptr()) for k, v in module.state_dict().items()}
    module.train()  # not ready to run: transform must not switch it back
    assert_features_close(cnn.transform(items), ref)
    assert cnn.module_ is module and module.training
    assert where == {
        k: (v.device, v.data_ptr()) for k, v in module.state_dict().items()
    }


def test_cnn_fitted_on_gpu_scores_on_cpu(images):
    """Simulated: a GPU fit (bf16 autocast, device="cuda", bf16 weights).

    The loaded extractor has fp32 weights on the CPU and scores there.
    """
    items, y = images
    cnn = CNNExtractor(image_size=(16, 16), random_state=0, precision="bf16")
    cnn.fit(items, y)
    on_gpu = cnn.transform(items)  # what bf16 autocast gives
    cnn.module_.to(torch.bfloat16)  # weights in another dtype than fp32
    cnn.set_params(device="cuda")  # and the fit's device setting
    loaded = pickle.loads(pickle.dumps(cnn))
    params = list(loaded.module_.parameters())
    # fp32 weights, on the GPU when device="cuda" resolves here, else the CPU
    where = "cuda" if torch.cuda.is_available() else "cpu"
    assert {(p.device.type, p.dtype) for p in params} == {(where, torch.float32)}
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="set_params\\(device='cpu'\\)"):
            loaded.transform(items)
    on_cpu = loaded.set_params(device="auto", precision="auto").transform(items)
    scale = np.abs(on_cpu).max()
    np.testing.assert_allclose(on_cpu, on_gpu, atol=0.05 * scale)


# -- missing and bad items ----------------------------------------------------------
def test_cnn_missing_and_bad_items(images, tmp_path):
    items, _ = images
    # fp32 on the CPU: the good rows are batched differently below, and a
    # GPU's bf16 autocast would differ by more than float32 rounding
    cnn = CNNExtractor(
        image_size=(16, 16), random_state=0, batch_size=5, device="cpu"
    ).fit()
    ref = cnn.transform(items)
    ok, buf = cv2.imencode(".jpg", (np.ones((20, 20, 3)) * 127).astype(np.uint8))
    truncated = buf.tobytes()[:-50]
    col = list(items)
    col[1], col[4], col[7] = None, str(tmp_path / "gone.png"), truncated
    with pytest.raises(InputError, match="row 4 .*gone.png.*not found"):
        cnn.transform(col)
    with collect_item_errors() as errors:
        out = cnn.set_params(on_error="missing").transform(col)
    assert [e.row for e in errors] == [4, 7]
    assert "JPEG" in errors[1].reason
    assert not hasattr(cnn, "errors_")
    assert np.isnan(out[[1, 4, 7]]).all()
    keep = [i for i in range(12) if i not in (1, 4, 7)]
    # the good rows are batched differently (oneDNN may pick another
    # convolution algorithm per batch shape): equal to float32 rounding
    assert_features_close(out[keep], ref[keep])
    assert cnn.transform([None, None]).shape == (2, 256)
    assert cnn.transform([]).shape == (0, 256)


def test_cnn_fine_tune_leaves_out_missing_and_bad_items(images):
    items, y = images
    col = list(items)
    col[0], col[5] = None, "no/such/file.png"
    labels = np.asarray(y, dtype=object)
    labels[3] = None
    cnn = CNNExtractor(image_size=(16, 16), fine_tune_epochs=1, on_error="missing")
    with collect_item_errors() as errors:
        cnn.fit(col, labels)
    assert [e.row for e in errors] == [5]
    assert len(cnn.loss_curve_) == 1
    with pytest.raises(InputError, match="row 5"):
        CNNExtractor(image_size=(16, 16), fine_tune_epochs=1).fit(col, labels)
    with pytest.raises(ParameterError, match="fit\\(X, y\\)"):
        CNNExtractor(image_size=(16, 16), fine_tune_epochs=1).fit(items)
    with pytest.raises(ParameterError, match="two classes"):
        CNNExtractor(image_size=(16, 16), fine_tune_epochs=1).fit(items, [1] * 12)


def test_cnn_image_size_int_is_a_square(images, rng):
    items, _ = images
    square = CNNExtractor(image_size=16, random_state=0).fit()
    pair = CNNExtractor(image_size=(16, 16), random_state=0).fit()
    assert_features_close(square.transform(items), pair.transform(items))
    stack = (rng.random((3, 16, 16, 3)) * 255).astype(np.uint8)  # the fast path
    assert square.transform(stack).shape == (3, 256)
    assert CNNExtractor(image_size=np.int64(16)).fit().n_features_out_ == 256
    loaded = pickle.loads(pickle.dumps(square))
    assert_features_close(loaded.transform(items), square.transform(items))


@pytest.mark.parametrize(
    "size", [0, -3, 9000, True, (16, 0), (16,), (16, 16, 3), (16.0, 16), "16", 16.0]
)
def test_cnn_bad_image_size_raises_parameter_error(size):
    with pytest.raises(ParameterError, match="image_size"):
        CNNExtractor(image_size=size).fit()


def test_cnn_parameter_errors():
    with pytest.raises(ParameterError, match="image_size=\\(4, 4\\).*at least 8x8"):
        CNNExtractor(image_size=(4, 4)).fit()
    with pytest.raises(ParameterError, match="image_size must be an integer"):
        CNNExtractor(image_size=(16, 0)).fit()
    with pytest.raises(ParameterError, match="mean must be three numbers"):
        CNNExtractor(image_size=(16, 16), mean=(0.5, 0.5)).fit()
    with pytest.raises(ParameterError, match="std must be three positive"):
        CNNExtractor(image_size=(16, 16), std=(0.5, 0, 0.5)).fit()
    with pytest.raises(ValueError, match="backbone"):
        CNNExtractor(backbone=3).fit()


# -- real data ----------------------------------------------------------------------
def test_cnn_jpeg_files_equal_decoded_arrays(data_home):
    paths = load_fashion_products(data_home=data_home).frame["path"][:10].tolist()
    cnn = CNNExtractor(image_size=(48, 36), random_state=0, num_workers=2).fit()
    arrays = [read_image(p, mode="rgb", dtype="uint8") for p in paths]
    assert_features_close(cnn.transform(paths), cnn.transform(arrays))


def test_cnn_fine_tuning_improves_linear_probe(data_home):
    usps = load_usps(data_home=data_home)
    split = usps.frame["split"].to_numpy()
    train = np.flatnonzero(split == "train")[:1000]
    test = np.flatnonzero(split == "test")[:600]
    images, y = usps.images, usps.target.to_numpy()
    kw = dict(image_size=(16, 16), batch_size=64, random_state=0)

    def probe(cnn):  # a linear probe: closed form, so quick on a busy machine
        clf = make_pipeline(StandardScaler(), RidgeClassifier(alpha=10.0))
        clf.fit(cnn.transform(images[train]), y[train])
        return clf.score(cnn.transform(images[test]), y[test])

    random_init = probe(CNNExtractor(**kw).fit())  # 86% here
    tuned = CNNExtractor(fine_tune_epochs=4, learning_rate=3e-3, **kw)
    tuned_acc = probe(tuned.fit(images[train], y[train]))  # 90% here
    assert tuned.loss_curve_[-1] < tuned.loss_curve_[0] / 2
    assert tuned_acc > random_init + 0.02, (random_init, tuned_acc)
    assert tuned_acc > 0.88, tuned_acc


# -- the GPU decoder's CPU side (decode="gpu"; its GPU side needs CUDA) -------------
class _NoNvjpeg:
    """A torchvision whose nvJPEG refuses every stream."""

    class io:
        class ImageReadMode:
            RGB = "RGB"

        @staticmethod
        def decode_jpeg(*args, **kwargs):
            raise RuntimeError("nvJPEG refused the stream")


@pytest.fixture
def opened(monkeypatch):
    """The files opened from now on, in order."""
    names = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        names.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    return names


def _photo_files(tmp_path):
    yy, xx = np.mgrid[0:20, 0:24]
    img = np.stack([xx * 10, yy * 12, (xx + yy) * 5], axis=2).astype(np.uint8)
    png, jpg = tmp_path / "a.png", tmp_path / "a.jpg"
    cv2.imwrite(str(png), img)
    cv2.imwrite(str(jpg), img)
    return str(png), str(jpg)


def test_gpu_decoder_reads_each_file_once(tmp_path, opened):
    from mmfeat.io import GpuJpegDecoder

    png, jpg = _photo_files(tmp_path)
    options = dict(mode="rgb", size=(16, 16), dtype="uint8")
    expected = {path: read_image(path, **options) for path in (png, jpg)}
    opened.clear()
    decoder = GpuJpegDecoder(torch, _NoNvjpeg, torch.device("cpu"), size=(16, 16))
    kind, image = decoder._fetch(png)  # not a JPEG: decoded from the bytes read
    assert kind == "image" and opened == [png]
    np.testing.assert_array_equal(image, expected[png])
    fetched = decoder._fetch(jpg)
    assert fetched[0] == "jpeg" and opened == [png, jpg]
    # nvJPEG refuses it: the CPU decodes the bytes already read, not the file
    (out,), rows = decoder._images([fetched], 0, [])
    assert rows == [0] and opened == [png, jpg]
    np.testing.assert_array_equal(out.permute(1, 2, 0).numpy(), expected[jpg])


def test_gpu_decoder_keeps_the_pixel_limit_it_is_given(tmp_path):
    from mmfeat.io import GpuJpegDecoder

    png, jpg = _photo_files(tmp_path)  # 24x20 = 480 pixels
    decoder = GpuJpegDecoder(
        torch, _NoNvjpeg, torch.device("cpu"), size=(16, 16), max_pixels=400
    )
    for path in (png, jpg):
        with pytest.raises(InputError, match="over max_pixels=400"):
            decoder._fetch(path)
    with pytest.raises(InputError, match="image file not found"):
        decoder._fetch(str(tmp_path / "gone.jpg"))
