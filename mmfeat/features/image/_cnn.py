"""CNNExtractor: deep features of a column of images, on a GPU when there is one.

torch is an optional extra (``mmfeat[cnn]``): it is imported inside the
methods, so this module (and :mod:`mmfeat.features.image`) imports without it.
torchvision is optional on top of that: its model names and the GPU JPEG
decoder are used when it imports; the built-in ``"simple"`` backbone and any
``torch.nn.Module`` need torch alone.

The extraction loop is a two-stage pipeline. A background thread decodes the
next batch (OpenCV in ``num_workers`` threads, or nvJPEG on the GPU), stacks it
as uint8 into pinned host memory and starts its host-to-device copy on a side
CUDA stream, while the main thread runs the backbone on the current batch
(``torch.inference_mode``, bf16 autocast and channels-last memory on the GPU)
and fetches the previous batch's features. Only uint8 pixels cross the bus;
the scaling to float and the mean/std normalisation happen on the device.
"""

import copy
import os
import queue
import re
import threading

import numpy as np
from joblib import effective_n_jobs
from sklearn.utils import check_random_state
from tqdm import tqdm

from mmfeat.exceptions import InputError, MmfeatError, ParameterError
from mmfeat.features.image._base import BaseImageExtractor, numeric_stack
from mmfeat.io import (
    DEFAULT_MAX_PIXELS,
    check_image_header,
    read_image,
    sniff_image_format,
)
from mmfeat.utils._items import (
    as_item_list,
    is_missing,
    item_source,
    read_source_bytes,
)
from mmfeat.utils._parallel import ItemError, prefetch_batches
from mmfeat.utils._sklearn_compat import (
    HasMethods,
    Integral,
    Interval,
    Real,
    StrOptions,
    _fit_context,
    check_is_fitted,
)
from mmfeat.utils._state import reviewed_setstate, state_error

__all__ = ["CNNExtractor"]

#: ImageNet channel statistics (RGB, in [0, 1]), torchvision's normalisation.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_TORCH_HINT = (
    "CNNExtractor needs PyTorch, which is not installed: pip install 'mmfeat[cnn]'. "
    "On a machine without an NVIDIA GPU install a CPU build of torch first "
    "(pip install torch --index-url https://download.pytorch.org/whl/cpu), so pip "
    "does not fetch the multi-GB CUDA build"
)

# Known torchvision families: the name of their last feature map (N, C, H, W),
# which ``pooling`` then turns into a vector. Other models give the input of
# their last Linear layer (the penultimate, already pooled, embedding).
_TRUNKS = ("layer4", "features", "trunk_output", "conv5", "layers")
_TOKEN_MAPS = ("swin", "maxvit", "vit")  # "features" there is not (N, C, H, W)

_SIMPLE_WIDTH = 32
_SIMPLE_EMBED = 256
# what a model file may ask for: image sides, pixels in one batch, the
# built-in network's width and embedding, and parameters in any network
_MAX_SIDE = 8192
_MAX_BATCH_PIXELS = 1 << 28
_MAX_SIMPLE = 4096
_MAX_PARAMETERS = 1 << 30
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


# --------------------------------------------------------------------------
# Optional imports
# --------------------------------------------------------------------------
def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(_TORCH_HINT, name="torch") from exc
    return torch


def _import_torchvision(purpose):
    try:
        import torchvision
    except Exception as exc:  # ImportError, or a torch/torchvision mismatch
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise ImportError(
            f"{purpose} needs torchvision, which does not import here ({reason}). "
            "Install the torchvision release built for your torch (pip install "
            "torchvision), or use backbone='simple' or your own torch.nn.Module, "
            "which need torch alone",
            name="torchvision",
        ) from exc
    return torchvision


# --------------------------------------------------------------------------
# torch modules, defined on first use (torch is optional); module-level
# ``__getattr__`` lets pickle find them by name once torch is there
# --------------------------------------------------------------------------
_PARTS = {}


def _torch_parts():
    if _PARTS:
        return _PARTS
    torch = _import_torch()
    nn = torch.nn

    class _GlobalPool(nn.Module):
        """Global pooling of (N, C, H, W) maps or (N, L, C) tokens to (N, k*C)."""

        def __init__(self, pooling="avg"):
            super().__init__()
            self.pooling = pooling

        def forward(self, x):
            return _pool(x, self.pooling)

    class _SimpleCNN(nn.Module):
        """Three conv/BN/ReLU/max-pool stages, global pooling, a dense layer.

        The small network of the classic image-classification examples:
        3x3 convolutions of ``width``, ``2*width`` and ``4*width`` channels,
        each followed by batch normalisation, ReLU and 2x2 max pooling (so an
        image shrinks 8 times), then global pooling and a fully connected
        layer of ``embed_dim`` units with ReLU, whose output is the feature
        vector.
        """

        def __init__(self, width=_SIMPLE_WIDTH, embed_dim=_SIMPLE_EMBED, pooling="avg"):
            super().__init__()
            chans = (3, width, 2 * width, 4 * width)
            for i in range(3):
                stage = nn.Sequential(
                    nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False),
                    nn.BatchNorm2d(chans[i + 1]),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                )
                self.add_module(f"stage{i + 1}", stage)
            self.pool = _GlobalPool(pooling)
            factor = 2 if pooling == "avg+max" else 1
            self.fc = nn.Sequential(
                nn.Linear(factor * chans[-1], embed_dim), nn.ReLU(inplace=True)
            )

        def forward(self, x):
            x = self.stage3(self.stage2(self.stage1(x)))
            return self.fc(self.pool(x))

    for cls in (_GlobalPool, _SimpleCNN):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    _PARTS.update(_GlobalPool=_GlobalPool, _SimpleCNN=_SimpleCNN)
    return _PARTS


def __getattr__(name):
    if name in ("_GlobalPool", "_SimpleCNN"):
        return _torch_parts()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _pool(x, pooling):
    """Pool a layer's output into one vector per image.

    (N, C, H, W) maps are pooled over H and W, (N, L, C) token sequences over
    L; 2-D output is taken as it is, anything else is flattened.
    """
    if isinstance(x, (tuple, list)):  # (namedtuple) outputs: the main one
        x = x[0]
    if x.ndim == 2:
        return x
    if x.ndim in (3, 4):
        dims = (2, 3) if x.ndim == 4 else (1,)
        if pooling == "avg":
            return x.mean(dims)
        if pooling == "max":
            return x.amax(dims)
        import torch

        return torch.cat([x.mean(dims), x.amax(dims)], dim=1)
    return x.flatten(1)


class _Stop(Exception):
    """Raised by the capture hook: the rest of the forward pass is not needed."""


def _embed(module, x, layer_module, take_input, pooling):
    """Forward ``x`` to ``layer_module`` (the whole module if None) and pool."""
    if layer_module is None:
        return _pool(module(x), pooling)
    captured = []

    def grab_output(_mod, _inp, out):
        captured.append(out)
        raise _Stop

    def grab_input(_mod, inp):
        captured.append(inp[0])
        raise _Stop

    handle = (
        layer_module.register_forward_pre_hook(grab_input)
        if take_input
        else layer_module.register_forward_hook(grab_output)
    )
    try:
        module(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not captured:
        raise MmfeatError(
            "the backbone's forward pass did not reach the selected layer; choose "
            "a layer that forward() calls"
        )
    return _pool(captured[0], pooling)


# --------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------
def _size_pair(value, name="image_size"):
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(
            isinstance(v, (int, np.integer))
            and not isinstance(v, bool)
            and 1 <= v <= _MAX_SIDE
            for v in value
        )
    )
    if not ok:
        raise ParameterError(
            f"{name} must be a (height, width) pair of integers from 1 to "
            f"{_MAX_SIDE}; got {value!r}"
        )
    return int(value[0]), int(value[1])


def _triple(value, name, *, positive=False):
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        vals = ()
    if len(vals) != 3 or not all(np.isfinite(vals)) or (positive and min(vals) <= 0):
        what = "positive numbers" if positive else "numbers"
        raise ParameterError(
            f"{name} must be three {what}, one per RGB channel, on the [0, 1] pixel "
            f"scale (ImageNet: {IMAGENET_MEAN if name == 'mean' else IMAGENET_STD}); "
            f"got {value!r}"
        )
    return vals


def _is_weights_path(weights):
    if isinstance(weights, os.PathLike):
        return True
    return (
        "/" in weights
        or os.sep in weights
        or weights.lower().endswith(_WEIGHT_SUFFIXES)
        or os.path.isfile(weights)
    )


def _resolve_device(device, torch):
    """The torch.device for ``device`` ("auto", "cpu", "cuda", "cuda:N")."""
    if not isinstance(device, str):
        raise ParameterError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}"
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if match is None:
        raise ParameterError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}"
        )
    if not torch.cuda.is_available():
        why = (
            f"this torch ({torch.__version__}) is a CPU build"
            if torch.version.cuda is None
            else "torch sees no GPU (no NVIDIA device or driver)"
        )
        raise ParameterError(
            f"device={device!r} but {why}. Use device='auto' (the GPU when there is "
            "one, else the CPU) or device='cpu'; for the GPU, install a CUDA build "
            "of torch on a machine with an NVIDIA GPU. A fitted extractor: "
            "extractor.set_params(device='cpu')"
        )
    index = int(match.group(1)) if match.group(1) else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise ParameterError(
            f"device={device!r} but torch sees {count} GPU(s) (cuda:0 to "
            f"cuda:{count - 1}); choose one of those, or device='auto'"
        )
    return torch.device("cuda", index)


def _autocast_dtype(precision, device, torch):
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    return torch.bfloat16


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _torch_threads:
    """Run the body with ``n_jobs`` torch CPU threads (joblib semantics), restored.

    Only on a CPU device: with a GPU, torch's own setting stays (its CPU
    threads then copy batches into pinned memory).
    """

    def __init__(self, torch, n_jobs, device):
        self.torch = torch
        self.n = max(1, effective_n_jobs(n_jobs)) if device.type == "cpu" else None

    def __enter__(self):
        self.before = self.torch.get_num_threads()
        if self.n is not None and self.n != self.before:
            self.torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self.torch.get_num_threads() != self.before:
            self.torch.set_num_threads(self.before)
        return False


def _autocast(device, dtype, torch):
    if dtype is None:
        return _nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# --------------------------------------------------------------------------
# Background batches
# --------------------------------------------------------------------------
class _Failure:
    def __init__(self, exc):
        self.exc = exc


_DONE = object()


def _in_background(make_iter, depth=2):
    """Iterate ``make_iter()`` in a thread, ``depth`` items ahead; re-raise errors."""
    q = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(obj):
        while not stop.is_set():
            try:
                q.put(obj, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            for item in make_iter():
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))

    thread = threading.Thread(target=run, name="mmfeat-cnn-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


def _writable(arr):
    return arr if arr.flags.writeable and arr.flags.c_contiguous else arr.copy()


def _to_uint8(stack):
    """A numeric (n, H, W, C) stack as uint8, exactly as ``read_image`` scales it."""
    if stack.dtype == np.uint8:
        return stack
    if stack.dtype.kind == "b":
        return stack.astype(np.uint8) * np.uint8(255)
    unit = np.clip(stack.astype(np.float32), 0, 1)
    return np.rint(unit * np.float32(255)).astype(np.uint8)


# --------------------------------------------------------------------------
# The extractor
# --------------------------------------------------------------------------
@reviewed_setstate
class CNNExtractor(BaseImageExtractor):
    """Deep CNN features of each image, on a GPU when torch sees one.

    A convolutional network (the *backbone*) turns each image into the
    output of one of its layers: by default its last feature map, pooled
    over the image into one vector (the penultimate-layer embedding that
    transfer learning uses). The vectors fuse and stack like any other mmfeat
    block.

    Stages, per batch of ``batch_size`` images:

    1. decoding: each item is read as an RGB uint8 image of ``image_size``
       (:func:`~mmfeat.io.read_image` in ``num_workers`` threads, or nvJPEG
       on the GPU with ``decode="gpu"``), in a background thread that runs
       one batch ahead of the network;
    2. transfer: the uint8 batch goes through pinned host memory to the
       device on a side stream (non-blocking), overlapping the previous
       batch's compute;
    3. normalisation on the device: ``(pixel / 255 - mean) / std``;
    4. the forward pass up to ``layer`` (the rest of the network is skipped)
       under ``torch.inference_mode``, with bf16 autocast and channels-last
       memory format on the GPU;
    5. pooling of the layer's output (``pooling``) into one vector.

    With ``fine_tune_epochs > 0``, ``fit(X, y)`` first trains the backbone
    with a linear head on the labels (cross-entropy, AdamW, cosine learning
    rate schedule, random horizontal flips and shifts), which is how a
    randomly initialised network becomes useful offline on real data.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="simple"
        ``"simple"``: a small built-in CNN (three conv/batch-norm/ReLU/max-pool
        stages of 32, 64 and 128 channels, global pooling and a dense layer
        of 256 units) for data sets too small or too far from ImageNet; it
        needs torch alone. A torchvision model name (``"resnet18"``,
        ``"resnet50"``, ``"efficientnet_b0"``, ``"mobilenet_v3_large"``, ...)
        needs torchvision. A ``torch.nn.Module``: your own network (a copy is
        used; the module you pass is not changed).
    weights : str, path-like or None, default=None
        ``None``: random initialisation (seeded by ``random_state``; a module
        you pass keeps its own weights). A torchvision weights name
        (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...; torchvision backbones only)
        is downloaded once into torch's cache, the only case where the
        network is used. A path: a state dict saved with
        ``torch.save(model.state_dict(), path)`` (a checkpoint dict with a
        ``"state_dict"`` key works too).
    layer : str, default=None
        Name of the submodule whose output is the feature (as in
        ``dict(model.named_modules())``, e.g. ``"layer3"`` of a ResNet,
        ``"stage2"`` of ``"simple"``). ``None``: the dense layer of
        ``"simple"``; the last feature map of torchvision ResNet/VGG/DenseNet/
        EfficientNet/MobileNet/ConvNeXt/RegNet models (otherwise the input of
        the last linear layer); the output of a module you pass.
    pooling : {"avg", "max", "avg+max"}, default="avg"
        Global pooling of a 4-D feature map (and of the token axis of 3-D
        output): mean, maximum, or both concatenated (twice the width).
    image_size : tuple of int (height, width), default=(224, 224)
        Every image is resized to this size.
    resize : {"exact", "pad"}, default="exact"
        Stretch to ``image_size``, or fit inside it keeping the aspect ratio
        and pad with black.
    mean : tuple of float, default=(0.485, 0.456, 0.406)
        Per-channel (RGB) mean subtracted from pixels in [0, 1].
    std : tuple of float, default=(0.229, 0.224, 0.225)
        Per-channel (RGB) standard deviation the pixels are divided by.
    fine_tune_epochs : int, default=0
        Epochs of supervised training of the backbone (with a linear head)
        on ``y`` in ``fit``. 0 uses the backbone as it is.
    learning_rate : float, default=1e-3
        Peak AdamW learning rate of the fine-tuning (decayed to 0 along a
        cosine). Use about 1e-4 for pretrained weights.
    batch_size : int, default=64
        Images per forward pass (and per training step). 256 suits a large
        GPU.
    num_workers : int, default=None
        Threads decoding images (OpenCV releases the GIL). ``None`` means 1
        unless a joblib context says otherwise; -1 uses every core, which a
        GPU needs to be fed from JPEG files.
    n_jobs : int, default=None
        Threads of torch's CPU kernels during ``fit`` and ``transform`` on a
        CPU device (``torch.set_num_threads``, restored afterwards). ``None``
        means 1 unless a joblib context says otherwise; -1 uses every core.
        On a GPU, torch's own thread setting is left as it is.
    device : {"auto", "cpu", "cuda"} or "cuda:N", default="auto"
        Where the network runs; ``"auto"`` is the GPU when torch sees one,
        else the CPU. Resolved at each call, so a fitted extractor moves with
        ``set_params(device=...)``.
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        Autocast precision of the forward pass: ``"auto"`` is bf16 on a GPU
        and fp32 on the CPU. Weights stay fp32; features are float64.
    decode : {"cpu", "gpu"}, default="cpu"
        ``"gpu"`` decodes JPEG files and bytes with nvJPEG
        (``torchvision.io.decode_jpeg(device="cuda")``) and resizes them on
        the GPU (bilinear with antialiasing), when the extractor runs on a
        CUDA device; other formats, and every item on a CPU device, are
        decoded on the CPU. Resizing differs slightly from OpenCV's, so the
        features are close to, not equal to, those of ``"cpu"``.
    on_error : {"raise", "missing"}, default="raise"
        A bad item raises :class:`~mmfeat.exceptions.InputError` naming its
        row, source and reason, or becomes a NaN row recorded in ``errors_``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation of ``"simple"`` and torchvision backbones
        without weights, and the shuffling and augmentation of the
        fine-tuning (through torch generators; torch's global random state
        is left as it was).
    verbose : int, default=0
        Progress bars when > 0.

    Attributes
    ----------
    module_ : torch.nn.Module
        The fitted backbone (on the device of the last call; pickled as a CPU
        state dict).
    layer_ : str
        The submodule whose output (or, for the penultimate embedding of
        some torchvision models, whose input) is taken; ``""`` is the
        backbone's output.
    n_features_out_ : int
        Length of each feature vector.
    classes_ : ndarray
        Labels of the fine-tuning head (only with ``fine_tune_epochs > 0``).
    loss_curve_ : list of float
        Mean training loss of each fine-tuning epoch (only with
        ``fine_tune_epochs > 0``).
    n_features_in_ : int
        Always 1: one column of images.
    errors_ : list of ItemError
        Items the last ``transform`` (or the fine-tuning) turned into NaN
        rows (or left out).

    See Also
    --------
    HOGExtractor : Histograms of oriented gradients, no training needed.
    SIFTBoVWExtractor : Bag of visual words on SIFT descriptors.

    Notes
    -----
    Pixels reach the network as 8-bit values: float images are rounded to
    ``round(255 * x)`` first, as :func:`~mmfeat.io.read_image` does with
    ``dtype="uint8"``. Grey images are repeated into three channels.

    Pickling keeps the weights as CPU NumPy arrays (never CUDA tensors), and
    loading rebuilds the network, so an extractor fitted on a GPU scores on
    a CPU-only machine with ``device="auto"`` or ``"cpu"``; features then
    agree within bf16 precision (identical with ``precision="fp32"``).
    Loading needs torch (and torchvision for torchvision backbones).

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren and J. Sun, "Deep Residual Learning for
       Image Recognition", CVPR 2016.
    .. [2] J. Donahue et al., "DeCAF: A Deep Convolutional Activation Feature
       for Generic Visual Recognition", ICML 2014.
    .. [3] I. Loshchilov and F. Hutter, "Decoupled Weight Decay
       Regularization", ICLR 2019 (AdamW); "SGDR: Stochastic Gradient Descent
       with Warm Restarts", ICLR 2017 (cosine schedule).

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).random((4, 32, 32))
    >>> cnn = CNNExtractor(image_size=(32, 32), random_state=0)
    >>> cnn.fit_transform(images).shape  # doctest: +SKIP
    (4, 256)
    """

    _parameter_constraints = {
        "backbone": [str, HasMethods(["forward", "state_dict"])],
        "weights": [str, os.PathLike, None],
        "layer": [str, None],
        "pooling": [StrOptions({"avg", "max", "avg+max"})],
        "image_size": [tuple, list],
        "resize": [StrOptions({"exact", "pad"})],
        "mean": [tuple, list, np.ndarray],
        "std": [tuple, list, np.ndarray],
        "fine_tune_epochs": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "num_workers": [Integral, None],
        "n_jobs": [Integral, None],
        "device": [str],
        "precision": [StrOptions({"auto", "fp32", "bf16", "fp16"})],
        "decode": [StrOptions({"cpu", "gpu"})],
        "on_error": [StrOptions({"raise", "missing"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        backbone="simple",
        weights=None,
        layer=None,
        pooling="avg",
        image_size=(224, 224),
        resize="exact",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        fine_tune_epochs=0,
        learning_rate=1e-3,
        batch_size=64,
        num_workers=None,
        n_jobs=None,
        device="auto",
        precision="auto",
        decode="cpu",
        on_error="raise",
        random_state=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.image_size = image_size
        self.resize = resize
        self.mean = mean
        self.std = std
        self.fine_tune_epochs = fine_tune_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.n_jobs = n_jobs
        self.device = device
        self.precision = precision
        self.decode = decode
        self.on_error = on_error
        self.random_state = random_state
        self.verbose = verbose

    # -- building the backbone -------------------------------------------------
    def _build(self, torch, seed):
        """Return (module on CPU, rebuild spec) for the parameters, weights loaded."""
        backbone, weights = self.backbone, self.weights
        named = isinstance(weights, str) and not _is_weights_path(weights)
        if isinstance(backbone, str):
            if backbone == "simple":
                if named:
                    raise ParameterError(
                        f"weights={weights!r} names pretrained weights, which exist "
                        "only for torchvision backbones; backbone='simple' takes "
                        "weights=None or the path of a state dict"
                    )
                spec = dict(
                    kind="simple",
                    width=_SIMPLE_WIDTH,
                    embed_dim=_SIMPLE_EMBED,
                    pooling=self.pooling,
                )
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    module = self._rebuild(spec, torch)
            else:
                if named:
                    module = self._torchvision_model(backbone, weights)
                else:
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(seed)
                        module = self._torchvision_model(backbone, None)
                spec = dict(kind="torchvision", name=backbone)
        else:
            if not isinstance(backbone, torch.nn.Module):
                raise ParameterError(
                    "backbone must be 'simple', a torchvision model name or a "
                    f"torch.nn.Module; got {type(backbone).__name__}"
                )
            if named:
                raise ParameterError(
                    f"weights={weights!r} names pretrained weights, which exist only "
                    "for torchvision backbone names; a torch.nn.Module backbone "
                    "takes weights=None (its own) or the path of a state dict"
                )
            module = copy.deepcopy(backbone).to("cpu")
            spec = dict(kind="module")
        if weights is not None and not named:
            self._load_weights(module, weights, torch)
        return module, spec

    def _rebuild(self, spec, torch):
        kind = spec["kind"]
        if kind == "simple":
            return _torch_parts()["_SimpleCNN"](
                width=spec["width"],
                embed_dim=spec["embed_dim"],
                pooling=spec["pooling"],
            )
        if kind == "torchvision":
            return self._torchvision_model(spec["name"], None)
        return copy.deepcopy(self.backbone).to("cpu")

    def _torchvision_model(self, name, weights):
        tv = _import_torchvision(f"backbone={name!r}")
        available = tv.models.list_models()
        if name not in available:
            close = [m for m in available if name.lower()[:4] in m][:8]
            raise ParameterError(
                f"backbone={name!r} is not a torchvision model; use 'simple', a "
                f"torch.nn.Module, or a name such as {close or available[:8]} "
                "(torchvision.models.list_models() lists all)"
            )
        if weights is None:
            return tv.models.get_model(name, weights=None)
        try:
            enum = tv.models.get_model_weights(name)
            key = weights.split(".")[-1]
            w = enum.DEFAULT if key == "DEFAULT" else enum[key]
        except (KeyError, ValueError):
            raise ParameterError(
                f"weights={weights!r} are not weights of torchvision's {name}; "
                f"choose 'DEFAULT' or one of {[w.name for w in enum]}, a state-dict "
                "path, or None"
            ) from None
        try:
            return tv.models.get_model(name, weights=w)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError
            import torch

            raise MmfeatError(
                f"cannot get the {name} weights {w.name!r} ({exc}). They are "
                "downloaded once and cached under "
                f"{os.path.join(torch.hub.get_dir(), 'checkpoints')}: run once on a "
                f"machine that is online, copy the file {os.path.basename(w.url)} "
                "into that folder, or pass weights='path/to/state_dict.pt'"
            ) from None

    def _load_weights(self, module, weights, torch):
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ParameterError(
                f"weights={path!r} is not an existing file. Give the path of a state "
                "dict saved with torch.save(model.state_dict(), path), None for "
                "random initialisation, or, with a torchvision backbone, a weights "
                "name such as 'DEFAULT' (downloaded once)"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ParameterError(
                f"cannot read weights from {path!r}: {str(exc).splitlines()[0]}. "
                "Expected a file written by torch.save(model.state_dict(), path)"
            ) from None
        if isinstance(state, dict):
            for key in ("state_dict", "model_state_dict", "model"):
                if isinstance(state.get(key), dict):
                    state = state[key]
                    break
        if not isinstance(state, dict):
            raise ParameterError(
                f"weights file {path!r} holds a {type(state).__name__}, not a state "
                "dict; save it with torch.save(model.state_dict(), path)"
            )
        if state and all(k.startswith("module.") for k in state):  # DataParallel
            state = {k[len("module.") :]: v for k, v in state.items()}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            lines = str(exc).strip().splitlines()
            raise ParameterError(
                f"the weights in {path!r} do not fit backbone={self._backbone_name()}: "
                f"{' '.join(line.strip() for line in lines[:4])}"
            ) from None

    def _backbone_name(self):
        b = self.backbone
        return repr(b) if isinstance(b, str) else type(b).__name__

    def _resolve_layer(self, module, spec):
        """(layer name, take its input?) for the ``layer`` parameter."""
        modules = dict(module.named_modules())
        if self.layer is not None:
            if self.layer not in modules or self.layer == "":
                names = [n for n in modules if n][:40]
                raise ParameterError(
                    f"layer={self.layer!r} is not a submodule of "
                    f"backbone={self._backbone_name()}; choose one of {names}"
                    + (" ..." if len(modules) > 41 else "")
                )
            return self.layer, False
        if spec["kind"] == "simple":
            return "fc", False
        if spec["kind"] == "module":
            return "", False
        name = spec["name"]
        if not name.startswith(_TOKEN_MAPS):
            for trunk in _TRUNKS:
                if trunk in modules:
                    return trunk, False
        linears = [n for n, m in modules.items() if type(m).__name__ == "Linear"]
        if linears:
            return linears[-1], True
        return "", False

    def _layer_module(self, module):
        if not self.layer_:
            return None
        return dict(module.named_modules())[self.layer_]

    def _seed(self):
        return int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )

    # -- device helpers ----------------------------------------------------------
    def _on_device(self, torch, device):
        """``module_`` on ``device`` (channels-last on CUDA), in eval mode."""
        module = self.module_
        param = next(iter(module.parameters()), None)
        if param is not None and param.device != device:
            module.to(device)
        if device.type == "cuda":
            module.to(memory_format=torch.channels_last)
        return module.eval()

    def _normaliser(self, torch, device):
        mean = torch.tensor(_triple(self.mean, "mean"), device=device) * 255
        std = torch.tensor(_triple(self.std, "std", positive=True), device=device) * 255
        mean, std = mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1)

        def normalise(x, layout):
            if layout == "nhwc":
                x = x.permute(0, 3, 1, 2)  # a channels-last view, no copy
            x = (x.float() - mean) / std
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            return x

        return normalise

    # -- reading ---------------------------------------------------------------
    def _read(self, item):
        return read_image(
            item,
            mode="rgb",
            size=_size_pair(self.image_size),
            resize=self.resize,
            dtype="uint8",
        )

    def _host_batches(self, items, *, stack=None, pinned=None):
        """Yield (start, rows, uint8 (b, H, W, 3) batch, errors) per batch.

        Each decoding thread writes its image straight into its slot of the
        batch buffer; ``pinned(shape)`` makes that buffer a pinned torch
        tensor (for CUDA), else it is a NumPy array. ``rows`` are the
        batch's readable items (the others are missing or bad).
        """
        bs = self.batch_size
        if stack is not None:
            for start in range(0, len(stack), bs):
                part = _to_uint8(stack[start : start + bs])
                if part.shape[3] == 1:
                    part = np.repeat(part, 3, axis=3)
                yield start, np.arange(len(part)), part, []
            return
        h, w = _size_pair(self.image_size)
        # (slot in its batch, item): each decode writes straight into its slot
        slots = [
            None if is_missing(item) else (k % bs, item) for k, item in enumerate(items)
        ]
        decoded = all(isinstance(s[1], np.ndarray) for s in slots if s is not None)

        def make_batch(start, chunk):
            shape = (len(chunk), h, w, 3)
            batch = pinned(shape) if pinned is not None else np.empty(shape, np.uint8)
            view = batch.numpy() if pinned is not None else batch

            def read_into(slot):
                view[slot[0]] = self._read(slot[1])
                return True

            return read_into, (batch, view)

        for start, (batch, view), done, errs in prefetch_batches(
            make_batch,
            slots,
            bs,
            n_jobs=1 if decoded else self.num_workers,  # arrays: no threads
            on_error=self.on_error,
        ):
            rows = np.asarray([k for k, ok in enumerate(done) if ok], dtype=int)
            if len(rows) == 0:
                batch = None
            elif len(rows) < len(done):
                batch = view[rows]  # a compact copy (a NumPy array)
            yield start, rows, batch, errs

    def _device_batches(self, items, stack, torch, device):
        """Yield (start, rows, tensor, layout, errors, event); runs in a thread.

        On CUDA the uint8 batch is staged in pinned memory and copied on a
        side stream; ``event`` marks the end of that copy (None on the CPU).
        """
        if device.type != "cuda":
            for start, rows, batch, errs in self._host_batches(items, stack=stack):
                x = None if batch is None else torch.from_numpy(_writable(batch))
                yield start, rows, x, "nhwc", errs, None
            return
        copy_stream = torch.cuda.Stream(device)
        if self.decode == "gpu" and stack is None:
            tv = _import_torchvision("decode='gpu'")
            decoder = _GpuDecoder(self, tv, torch, device)
            yield from decoder.batches(items, copy_stream)
            return

        def pinned(shape):
            return torch.empty(shape, dtype=torch.uint8, pin_memory=True)

        for start, rows, batch, errs in self._host_batches(
            items, stack=stack, pinned=pinned
        ):
            if batch is None:
                yield start, rows, None, "nhwc", errs, None
                continue
            if isinstance(batch, np.ndarray):  # arrays, or a compacted batch
                host = pinned(batch.shape)
                host.copy_(torch.from_numpy(_writable(batch)))  # multi-threaded
            else:
                host = batch
            with torch.cuda.stream(copy_stream):
                x = host.to(device, non_blocking=True)
                event = torch.cuda.Event()
                event.record(copy_stream)
            yield start, rows, x, "nhwc", errs, event

    def _column(self, X):
        """(items, stack): the column as items, or as a numeric stack to slice."""
        size = _size_pair(self.image_size)
        for mode in ("rgb", "gray"):
            stack = numeric_stack(X, mode=mode, size=size)
            if stack is not None and (
                stack.dtype == np.uint8 or stack.dtype.kind in "fb"
            ):
                return None, stack
        return as_item_list(X, stack_ndim=3), None

    # -- fit ---------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Build the backbone; with ``fine_tune_epochs > 0``, train it on ``y``.

        Parameters
        ----------
        X : column of images, default=None
            Paths, bytes, arrays or missing values. Needed only for
            fine-tuning.
        y : array-like of shape (n_samples,), default=None
            Class labels for fine-tuning; ignored when ``fine_tune_epochs`` is 0.

        Returns
        -------
        self : CNNExtractor
            The fitted extractor.
        """
        torch = _import_torch()
        size = _size_pair(self.image_size)
        _triple(self.mean, "mean")
        _triple(self.std, "std", positive=True)
        device = _resolve_device(self.device, torch)
        seed = self._seed()
        module, spec = self._build(torch, seed)
        self.layer_, self._take_input_ = self._resolve_layer(module, spec)
        self._spec_ = spec
        self.module_ = module.eval()
        with torch.inference_mode():
            probe = torch.zeros((1, 3, *size))
            try:
                out = _embed(
                    module,
                    probe,
                    self._layer_module(module),
                    self._take_input_,
                    self.pooling,
                )
            except (RuntimeError, ValueError) as exc:
                raise ParameterError(
                    f"image_size={size} does not work with "
                    f"backbone={self._backbone_name()} ({str(exc).splitlines()[0]}); "
                    "use larger images (the built-in 'simple' backbone needs at "
                    "least 8x8)"
                ) from None
        self.n_features_out_ = int(out.shape[1])
        self.errors_ = []
        if self.fine_tune_epochs > 0:
            if X is None or y is None:
                raise ParameterError(
                    f"fine_tune_epochs={self.fine_tune_epochs} trains the backbone on "
                    "labels: call fit(X, y), or set fine_tune_epochs=0"
                )
            with _torch_threads(torch, self.n_jobs, device):
                self._fine_tune(X, y, torch, device, seed)
        self.n_features_in_ = 1
        return self

    def _fine_tune(self, X, y, torch, device, seed):
        items, stack = self._column(X)
        n = len(stack) if stack is not None else len(items)
        y = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
        if len(y) != n:
            raise ParameterError(f"X has {n} items but y has {len(y)} labels")
        images = np.empty((n, *_size_pair(self.image_size), 3), dtype=np.uint8)
        present = np.zeros(n, dtype=bool)
        errors = []
        for start, rows, batch, errs in self._host_batches(items, stack=stack):
            errors.extend(errs)
            if batch is not None:
                images[start + rows] = batch
                present[start + rows] = True
        self.errors_ = errors
        labelled = np.asarray([not is_missing(v) for v in y], dtype=bool)
        keep = np.flatnonzero(present & labelled)
        labels = np.asarray([y[i] for i in keep])  # the labels' own dtype
        classes, target = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ParameterError(
                "fine-tuning needs at least two classes among the readable, labelled "
                f"items; got {len(classes)}"
            )
        self.classes_ = classes
        images = torch.from_numpy(images[keep])
        target = torch.from_numpy(target.astype(np.int64))

        nn, F = torch.nn, torch.nn.functional
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            head = nn.Linear(self.n_features_out_, len(classes))
        module = self._on_device(torch, device).train()
        head.to(device)
        params = list(module.parameters()) + list(head.parameters())
        optimiser = torch.optim.AdamW(params, lr=self.learning_rate, weight_decay=1e-4)
        bs = min(self.batch_size, len(keep))
        per_epoch = len(keep) // bs + (len(keep) % bs > 1)  # no step on 1 image (BN)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimiser, T_max=max(1, self.fine_tune_epochs * per_epoch)
        )
        normalise = self._normaliser(torch, device)
        layer_module = self._layer_module(module)
        autocast = _autocast_dtype(self.precision, device, torch)
        # fp16 gradients underflow without loss scaling (bf16 and fp32 do not)
        scaler = torch.amp.GradScaler(
            device.type, enabled=autocast == torch.float16 and device.type == "cuda"
        )
        cuda = device.type == "cuda"
        if cuda:
            images = images.pin_memory()
        self.loss_curve_ = []
        bar = tqdm(
            total=self.fine_tune_epochs * per_epoch,
            desc="CNNExtractor fine-tuning",
            disable=not self.verbose,
            unit="step",
        )
        try:
            for _ in range(self.fine_tune_epochs):
                order = torch.randperm(len(keep), generator=gen)
                total, seen = 0.0, 0
                for step in range(per_epoch):
                    idx = order[step * bs : (step + 1) * bs]
                    x = images[idx].to(device, non_blocking=cuda)
                    yb = target[idx].to(device, non_blocking=cuda)
                    x = _augment(normalise(x, "nhwc"), gen, torch)
                    with _autocast(device, autocast, torch):
                        emb = _embed(
                            module, x, layer_module, self._take_input_, self.pooling
                        )
                        loss = F.cross_entropy(head(emb.float()), yb)
                    optimiser.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimiser)
                    scaler.update()
                    schedule.step()
                    total += float(loss.detach()) * len(idx)
                    seen += len(idx)
                    bar.update(1)
                self.loss_curve_.append(total / max(seen, 1))
        finally:
            bar.close()
            module.eval()

    # -- transform ---------------------------------------------------------------
    def transform(self, X):
        """Compute the CNN feature vector of each image.

        Parameters
        ----------
        X : list, 1-D array, Series, one-column DataFrame, or ndarray stack
            Paths, bytes, arrays or missing values; a numeric stack of shape
            (n, H, W, 3) or (n, H, W) already of ``image_size`` (uint8, or
            floats in [0, 1]) skips per-item decoding.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out_)
            One vector per row; NaN rows for missing (or, with
            ``on_error="missing"``, bad) items.
        """
        check_is_fitted(self, "n_features_out_")
        torch = _import_torch()
        device = _resolve_device(self.device, torch)
        items, stack = self._column(X)
        n = len(stack) if stack is not None else len(items)
        out = np.full((n, self.n_features_out_), np.nan, dtype=np.float64)
        self.errors_ = []
        if n == 0:
            return out
        module = self._on_device(torch, device)
        layer_module = self._layer_module(module)
        normalise = self._normaliser(torch, device)
        autocast = _autocast_dtype(self.precision, device, torch)
        batches = _in_background(
            lambda: self._device_batches(items, stack, torch, device), depth=2
        )
        bar = tqdm(total=n, desc="CNNExtractor", disable=not self.verbose, unit="img")
        pending = None

        def collect(job):
            rows, feats = job
            out[rows] = feats.float().cpu().numpy()

        try:
            with (
                _torch_threads(torch, self.n_jobs, device),
                torch.inference_mode(),
                _autocast(device, autocast, torch),
            ):
                for start, rows, x, layout, errs, event in batches:
                    self.errors_.extend(errs)
                    bar.update(min(self.batch_size, n - start))
                    if x is None:
                        continue
                    if event is not None:
                        stream = torch.cuda.current_stream(device)
                        stream.wait_event(event)
                        x.record_stream(stream)
                    feats = _embed(
                        module,
                        normalise(x, layout),
                        layer_module,
                        self._take_input_,
                        self.pooling,
                    )
                    if pending is not None:  # the GPU is busy with this batch now
                        collect(pending)
                    pending = (start + rows, feats)
                if pending is not None:
                    collect(pending)
        finally:
            batches.close()
            bar.close()
        return out

    def get_feature_names_out(self, input_features=None):
        """Names ``cnn_0`` ... ``cnn_{n-1}``.

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        names : ndarray of str
            One name per output column.
        """
        check_is_fitted(self, "n_features_out_")
        return np.asarray(
            [f"cnn_{i}" for i in range(self.n_features_out_)], dtype=object
        )

    # -- pickling: weights as CPU arrays, the module rebuilt on load -------------
    def __getstate__(self):
        state = dict(super().__getstate__())
        module = state.pop("module_", None)
        if module is not None:
            torch = _import_torch()
            arrays = {}
            for key, value in module.state_dict().items():
                value = value.detach().to("cpu").contiguous()
                if value.dtype in (torch.bfloat16, torch.float16):
                    value = value.float()  # NumPy has no bfloat16; fp32 on CPUs
                arrays[key] = value.numpy().copy()
            state["_module_state_"] = arrays
        return state

    def __setstate__(self, state):
        state = dict(state)
        arrays = state.pop("_module_state_", None)
        # CheckedStateMixin: parameters and the plain fitted state first
        super().__setstate__(state)
        if arrays is None:
            return
        try:
            torch = _import_torch()
        except ImportError as exc:
            raise ImportError(
                f"this pickled CNNExtractor holds a torch network. {exc}",
                name="torch",
            ) from exc
        self._check_network_state(arrays, torch)
        module = self._rebuild(self._spec_, torch)
        # load_state_dict copies into the new module's (fp32, CPU) tensors
        module.load_state_dict({k: torch.from_numpy(a) for k, a in arrays.items()})
        if self.layer_ and self.layer_ not in dict(module.named_modules()):
            raise state_error(self, f"layer_={self.layer_!r} is not in the network")
        module.eval()
        # the output width, as fit measured it: one image of image_size
        with torch.inference_mode():
            probe = torch.zeros((1, 3, *_size_pair(self.image_size)))
            try:
                width = _embed(
                    module,
                    probe,
                    self._layer_module(module),
                    self._take_input_,
                    self.pooling,
                ).shape[1]
            except (RuntimeError, ValueError) as exc:
                raise state_error(
                    self, f"the network fails on one image ({exc})"
                ) from None
        if width != self.n_features_out_:
            raise state_error(
                self,
                f"n_features_out_={self.n_features_out_} but the network gives "
                f"{width} features",
            )
        self.module_ = module

    def _check_fitted_state(self):
        h, w = _size_pair(self.image_size)
        if self.batch_size * h * w > _MAX_BATCH_PIXELS:
            raise state_error(
                self,
                f"batch_size={self.batch_size} images of {h}x{w} exceed "
                f"{_MAX_BATCH_PIXELS} pixels per batch",
            )
        spec = self._spec_
        if not isinstance(spec, dict) or spec.get("kind") not in (
            "simple",
            "torchvision",
            "module",
        ):
            raise state_error(self, f"_spec_={spec!r} is not a network description")
        if spec["kind"] == "simple":
            for key in ("width", "embed_dim"):
                v = spec.get(key)
                if not (
                    isinstance(v, int)
                    and not isinstance(v, bool)
                    and 1 <= v <= _MAX_SIMPLE
                ):
                    raise state_error(
                        self,
                        f"_spec_[{key!r}]={v!r} is not an integer in "
                        f"[1, {_MAX_SIMPLE}]",
                    )
            if spec.get("pooling") not in ("avg", "max", "avg+max"):
                raise state_error(self, f"_spec_ pooling {spec.get('pooling')!r}")
        elif spec["kind"] == "torchvision" and not isinstance(spec.get("name"), str):
            raise state_error(self, f"_spec_ names no torchvision model: {spec!r}")
        if not isinstance(self.layer_, str):
            raise state_error(self, f"layer_={self.layer_!r} is not a layer name")
        n = self.n_features_out_
        if not (isinstance(n, (int, np.integer)) and 1 <= n <= 1 << 24):
            raise state_error(self, f"n_features_out_={n!r}")

    def _check_network_state(self, arrays, torch):
        """The stored weights against the network the spec describes.

        The network is first built on PyTorch's ``meta`` device, which
        allocates nothing, so a spec asking for a huge network costs only
        its shapes; every stored array must then match a parameter or
        buffer of the same name and shape, and nothing may be missing.
        """
        if not isinstance(arrays, dict) or not all(
            isinstance(k, str) and isinstance(a, np.ndarray) and a.dtype.kind in "fiub"
            for k, a in arrays.items()
        ):
            raise state_error(
                self, "the stored network weights are not named numeric arrays"
            )
        stored = {k: tuple(a.shape) for k, a in arrays.items()}
        if sum(int(np.prod(s)) for s in stored.values()) > _MAX_PARAMETERS:
            raise state_error(self, f"over {_MAX_PARAMETERS} stored weights")
        if self._spec_["kind"] == "module":
            return  # the user's own module, held (and trusted) as a parameter
        with torch.device("meta"):
            ref = self._rebuild(self._spec_, torch)
        want = {k: tuple(t.shape) for k, t in ref.state_dict().items()}
        if want != stored:
            extra = sorted(set(stored) - set(want))[:3]
            missing = sorted(set(want) - set(stored))[:3]
            shapes = [
                f"{k} {stored[k]} (expected {want[k]})"
                for k in want
                if k in stored and stored[k] != want[k]
            ][:3]
            raise state_error(
                self,
                "the stored weights do not fit the network its spec describes "
                f"({self._spec_}): unexpected {extra}, missing {missing}, "
                f"wrong shapes {shapes}",
            )

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks (none without torch).

        Without torch there is nothing to check here;
        ``tests/features/image/test_cnn.py`` then skips with the reason
        (outside CI) or fails (in CI).
        """
        try:
            import torch
        except ImportError:
            return []
        tiny = torch.nn.Sequential(
            torch.nn.Conv2d(3, 6, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(6, 8, 3, stride=2),
        )
        # every set names the keys any other set changes: the grid-search
        # check applies each set to the estimator built from another
        common = dict(layer=None, fine_tune_epochs=0, pooling="avg", random_state=0)
        return [
            dict(common, backbone="simple", image_size=(16, 16), batch_size=4),
            dict(
                common,
                backbone=tiny,
                image_size=(12, 12),
                pooling="avg+max",
                device="cpu",
            ),
            dict(
                common,
                backbone="simple",
                image_size=(16, 16),
                layer="stage2",
                pooling="max",
                fine_tune_epochs=1,
            ),
        ]


def _augment(x, gen, torch):
    """Random horizontal flips and shifts (up to 1/8 of the side) of a batch.

    One ``grid_sample`` with nearest sampling: whole-pixel shifts, edges
    repeated, so nothing is blurred. Random numbers come from ``gen`` (CPU).
    """
    n, _, h, w = x.shape
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    shift_px = torch.stack(
        [
            torch.randint(-(w // 8), w // 8 + 1, (n,), generator=gen),
            torch.randint(-(h // 8), h // 8 + 1, (n,), generator=gen),
        ],
        dim=1,
    ).float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = flip
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = shift_px[:, 0] * 2 / w
    theta[:, 1, 2] = shift_px[:, 1] * 2 / h
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(
        x, grid, mode="nearest", padding_mode="border", align_corners=False
    )


class _GpuDecoder:
    """JPEG batches decoded by nvJPEG and resized on the GPU (``decode="gpu"``).

    Files are read and checked on the CPU in threads (missing file, empty,
    decompression bomb, truncation: the same checks and messages as
    :func:`~mmfeat.io.read_image`); JPEG streams are decoded on the GPU in
    one call per batch; other formats, and any JPEG nvJPEG refuses, go
    through :func:`~mmfeat.io.read_image` on the CPU.
    """

    def __init__(self, extractor, tv, torch, device):
        self.ext = extractor
        self.tv = tv
        self.torch = torch
        self.device = device
        self.size = _size_pair(extractor.image_size)
        self.exif = True  # apply EXIF orientation, as the CPU decoder does
        self.exif_works = False

    def _fetch(self, item):
        source = item_source(item)
        if isinstance(item, np.ndarray):
            return "image", self.ext._read(item)
        if not isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)):
            return "image", self.ext._read(item)  # raises the clear InputError
        buf = read_source_bytes(item, kind="image file")
        fmt = sniff_image_format(buf)
        if fmt != "JPEG":
            return "image", self.ext._read(item)
        # the CPU reader's guard: a size in the header, within the pixel
        # limit, and no visible truncation, before nvJPEG sees a byte
        check_image_header(buf, fmt, max_pixels=DEFAULT_MAX_PIXELS, source=source)
        return "jpeg", (item, np.frombuffer(bytearray(buf), dtype=np.uint8))

    def _decode(self, datas):
        torch, io = self.torch, self.tv.io
        tensors = [torch.from_numpy(d) for d in datas]
        kwargs = dict(mode=io.ImageReadMode.RGB, device=self.device)
        if self.exif:
            try:
                out = io.decode_jpeg(tensors, apply_exif_orientation=True, **kwargs)
            except (TypeError, RuntimeError, NotImplementedError):
                if self.exif_works:
                    raise  # a bad stream in this batch
                out = io.decode_jpeg(tensors, **kwargs)  # raises for bad streams
                self.exif = False  # this torchvision cannot rotate on the GPU
                return out
            self.exif_works = True
            return out
        return io.decode_jpeg(tensors, **kwargs)

    def _target(self, h, w):
        out_h, out_w = self.size
        if self.ext.resize == "exact":
            return out_h, out_w
        scale = min(out_h / h, out_w / w)
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _resized(self, images):
        """(3, h, w) uint8 GPU images to (3, H, W) at ``image_size``.

        Images of one size are resized in one call (bilinear, antialiased,
        as a downscale should be); ``resize="pad"`` centres them on black.
        """
        torch = self.torch
        out_h, out_w = self.size
        out = [None] * len(images)
        groups = {}
        for k, img in enumerate(images):
            groups.setdefault(tuple(img.shape[1:]), []).append(k)
        for (h, w), ks in groups.items():
            th, tw = self._target(h, w)
            if (h, w) == (th, tw):
                res = torch.stack([images[k] for k in ks])
            else:
                res = torch.nn.functional.interpolate(
                    torch.stack([images[k] for k in ks]).float(),
                    size=(th, tw),
                    mode="bilinear",
                    antialias=True,
                    align_corners=False,
                )
                res = res.round_().clamp_(0, 255).to(torch.uint8)
            if (th, tw) != (out_h, out_w):
                canvas = torch.zeros(
                    (len(ks), 3, out_h, out_w), dtype=torch.uint8, device=res.device
                )
                top, left = (out_h - th) // 2, (out_w - tw) // 2
                canvas[:, :, top : top + th, left : left + tw] = res
                res = canvas
            for k, r in zip(ks, res):
                out[k] = r
        return out

    def batches(self, items, stream):
        """Yield (start, rows, uint8 (b, 3, H, W) on the GPU, "nchw", errors, event)."""
        torch, ext = self.torch, self.ext
        bs = ext.batch_size
        for start, _, values, errs in prefetch_batches(
            lambda start, chunk: (self._fetch, None),
            items,
            bs,
            n_jobs=ext.num_workers,
            on_error=ext.on_error,
        ):
            batch = event = None
            with torch.cuda.stream(stream):
                images, rows = self._images(values, start, errs)
                if images:
                    batch = torch.stack(images)
                    event = torch.cuda.Event()
                    event.record(stream)
            yield start, np.asarray(rows, dtype=int), batch, "nchw", sorted(errs), event

    def _images(self, values, start, errs):
        """Decode and resize the fetched items of one batch, on the GPU."""
        torch, ext = self.torch, self.ext
        present = [i for i, v in enumerate(values) if v is not None]
        jpeg = [i for i in present if values[i][0] == "jpeg"]
        decoded = {}
        if jpeg:
            datas = [values[i][1][1] for i in jpeg]
            try:
                decoded = dict(zip(jpeg, self._decode(datas)))
            except RuntimeError:  # one bad stream fails the whole call
                for i, data in zip(jpeg, datas):
                    try:
                        decoded[i] = self._decode([data])[0]
                    except RuntimeError:
                        pass  # the CPU decides below
        images, rows = [], []
        for i in present:
            kind, payload = values[i]
            if i in decoded:
                images.append(decoded[i])
                rows.append(i)
                continue
            if kind == "jpeg":  # nvJPEG refused it: decode on the CPU
                try:
                    payload = ext._read(payload[0])
                except InputError as exc:
                    if ext.on_error == "raise":
                        raise exc.with_row(start + i) from None
                    errs.append(ItemError(start + i, exc.source, exc.reason))
                    continue
            host = torch.from_numpy(_writable(payload)).permute(2, 0, 1)
            images.append(host.to(self.device))  # already at image_size
            rows.append(i)
        return self._resized(images), rows
