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

The parts live beside this module: the networks, their building and loading
and the device helpers in ``_cnn_nets`` (torch, imported on first use), the
fine-tuning loop in ``_cnn_finetune``, the torch/torchvision imports in
``_cnn_deps``; the nvJPEG decoder is :class:`mmfeat.io.GpuJpegDecoder` and the
background thread :func:`mmfeat.utils._parallel.in_background`.
"""

import copy
import os

import numpy as np
from joblib import effective_n_jobs
from sklearn.utils import check_random_state
from tqdm import tqdm

from mmfeat.exceptions import MmfeatError, ParameterError
from mmfeat.features.image._base import BaseImageExtractor, numeric_stack
from mmfeat.features.image._cnn_deps import (
    import_onnx,
    import_onnxruntime,
    import_torch,
    import_torchvision,
)
from mmfeat.io import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_PIXELS,
    GpuJpegDecoder,
    read_image,
)
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._item_errors import report_item_errors
from mmfeat.utils._items import as_item_list, is_missing
from mmfeat.utils._parallel import in_background, prefetch_batches
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

# what a model file may ask for: image sides, pixels in one batch, the
# built-in network's width and embedding, and parameters in any network
_MAX_SIDE = 8192
_MAX_BATCH_PIXELS = 1 << 28
_MAX_SIMPLE = 4096
_MAX_PARAMETERS = 1 << 30


def _nets():
    """The torch side (``_cnn_nets``), imported on first use.

    torch is imported first through :func:`~._cnn_deps.import_torch`, so a
    missing install raises the ImportError that says what to install.
    """
    import_torch()
    from mmfeat.features.image import _cnn_nets

    return _cnn_nets


# --------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------
def _size_pair(value, name="image_size"):
    """``value`` as (height, width): an int is a square's side, else a pair."""

    def side(v):
        return (
            isinstance(v, (int, np.integer))
            and not isinstance(v, bool)
            and 1 <= v <= _MAX_SIDE
        )

    if side(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(side, value)):
        return int(value[0]), int(value[1])
    raise ParameterError(
        f"{name} must be an integer (the side of a square) or a (height, width) "
        f"pair of integers, each from 1 to {_MAX_SIDE}; got {value!r}"
    )


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


def _writable(arr):
    return np.require(arr, requirements=["C", "W"])


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
@fill_doc
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
    image_size : int or tuple of int (height, width), default=(224, 224)
        Every image is resized to this size; an int ``n`` is ``(n, n)``.
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
        ``set_params(device=...)``: ``transform`` on another device than
        ``module_``'s runs a copy of the network there (copied at each call;
        ``module_`` stays as it is).
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
    inference : {"torch", "onnx"}, default="torch"
        What computes the features in ``transform``. ``"torch"``: the
        network itself, on ``device``. ``"onnx"``: ``fit`` also exports the
        fitted network (normalisation, forward pass to ``layer_`` and
        pooling, fp32) as one ONNX graph, ``onnx_model_``, and
        ``transform`` runs it with onnxruntime on the CPU, in ``n_jobs``
        threads, whatever ``device`` says; features agree with torch's to
        float32 rounding (``fit`` checks that on a probe batch), scoring is
        several times faster than torch eager on a CPU, and a saved model
        then scores where onnxruntime is installed but torch is not. Needs
        the ``mmfeat[onnx]`` extra (onnxruntime and onnx); fitting still
        needs torch.
    %(on_error_features)s
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
        The fitted backbone, in eval mode, on the device that ``device``
        resolved to in ``fit`` (after loading: where it resolves to then,
        else the CPU); pickled as a CPU state dict.
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
    onnx_model_ : ndarray of uint8
        The serialised ONNX graph from uint8 (n, H, W, 3) images to the
        features (only with ``inference="onnx"``, or after
        :meth:`export_onnx`).
    n_features_in_ : int
        Always 1: one column of images.

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
    Loading needs torch (and torchvision for torchvision backbones), except
    for a model holding ``onnx_model_``: without torch it loads and scores
    with ``inference="onnx"``, and keeps its weights for saving again. The
    graph in a model file is checked before it runs: standard operators of
    the kinds a CNN exports to, no subgraphs or external data, the input and
    output mmfeat exports, and every tensor's size known (shape inference),
    so a batch's memory is bounded.

    ``transform`` changes no attribute: bad items are reported to
    :func:`mmfeat.collect_item_errors`, not stored, and the network is
    placed on its device by ``fit`` and by loading, never by ``transform``.

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
    >>> cnn = CNNExtractor(image_size=32, random_state=0)
    >>> cnn.fit_transform(images).shape  # doctest: +SKIP
    (4, 256)
    """

    _parameter_constraints = {
        "backbone": [str, HasMethods(["forward", "state_dict"])],
        "weights": [str, os.PathLike, None],
        "layer": [str, None],
        "pooling": [StrOptions({"avg", "max", "avg+max"})],
        "image_size": [Integral, tuple, list],  # values: _size_pair
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
        "inference": [StrOptions({"torch", "onnx"})],
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
        inference="torch",
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
        self.inference = inference
        self.on_error = on_error
        self.random_state = random_state
        self.verbose = verbose

    # -- building the backbone -------------------------------------------------
    def _backbone_name(self):
        return _nets().backbone_label(self.backbone)

    def _layer_module(self, module):
        return _nets().layer_module(module, self.layer_)

    def _seed(self):
        return int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )

    def _embed(self, module, x):
        """Features of a normalised batch: forward to ``layer_``, then pool."""
        return _nets().embed(
            module, x, self._layer_module(module), self._take_input_, self.pooling
        )

    def _width(self, module, size):
        """The feature width of ``module`` on one image of ``size``."""
        torch = import_torch()
        with torch.inference_mode():
            return int(self._embed(module, torch.zeros((1, 3, *size))).shape[1])

    # -- device helpers ----------------------------------------------------------
    def _module_for(self, device):
        """The network to run on ``device``; ``module_`` is left as it is.

        That is ``module_`` itself where fit (or loading) placed it, else a
        copy placed on ``device`` for this call only: ``transform`` changes
        no state, not even the device of the weights.
        """
        nets = _nets()
        module = self.module_
        if nets.runs_on(module, device) and not module.training:
            return module
        return nets.placed(copy.deepcopy(module), device)

    def _normaliser(self, device):
        return _nets().normaliser(
            _triple(self.mean, "mean"), _triple(self.std, "std", positive=True), device
        )

    # -- reading ---------------------------------------------------------------
    def _reader_options(self):
        """The :func:`~mmfeat.io.read_image` options of every item, limits too.

        The GPU decoder holds files to the same limits.
        """
        return dict(
            mode="rgb",
            size=_size_pair(self.image_size),
            resize=self.resize,
            dtype="uint8",
            max_pixels=DEFAULT_MAX_PIXELS,
            max_file_bytes=DEFAULT_MAX_FILE_BYTES,
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
        options = self._reader_options()
        h, w = options["size"]
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
                view[slot[0]] = read_image(slot[1], **options)
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

    def _device_batches(self, items, stack, device):
        """Yield (start, rows, tensor, layout, errors, event); runs in a thread.

        On CUDA the uint8 batch is staged in pinned memory and copied on a
        side stream; ``event`` marks the end of that copy (None on the CPU).
        """
        torch = import_torch()
        if device.type != "cuda":
            for start, rows, batch, errs in self._host_batches(items, stack=stack):
                x = None if batch is None else torch.from_numpy(_writable(batch))
                yield start, rows, x, "nhwc", errs, None
            return
        copy_stream = torch.cuda.Stream(device)
        if self.decode == "gpu" and stack is None:
            options = self._reader_options()
            decoder = GpuJpegDecoder(
                torch,
                import_torchvision("decode='gpu'"),
                device,
                size=options["size"],
                resize=options["resize"],
                max_pixels=options["max_pixels"],
                max_file_bytes=options["max_file_bytes"],
                batch_size=self.batch_size,
                num_workers=self.num_workers,
                on_error=self.on_error,
            )
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
        nets = _nets()
        size = _size_pair(self.image_size)
        _triple(self.mean, "mean")
        _triple(self.std, "std", positive=True)
        if self.inference == "onnx":  # before any training: say what is missing
            import_onnx("CNNExtractor(inference='onnx') exporting its network")
            import_onnxruntime("CNNExtractor(inference='onnx') checking its export")
        device = nets.resolve_device(self.device)
        seed = self._seed()
        module, spec = nets.build_backbone(
            self.backbone, self.weights, pooling=self.pooling, seed=seed
        )
        self.layer_, self._take_input_ = nets.resolve_layer(
            module, spec, self.layer, self._backbone_name()
        )
        self._spec_ = spec
        module.eval()
        try:
            width = self._width(module, size)
        except (RuntimeError, ValueError) as exc:
            raise ParameterError(
                f"image_size={size} does not work with "
                f"backbone={self._backbone_name()} ({str(exc).splitlines()[0]}); "
                "use larger images (the built-in 'simple' backbone needs at "
                "least 8x8)"
            ) from None
        self.n_features_out_ = width
        # placed once, here: transform finds it on its device, moves nothing
        self.module_ = nets.placed(module, device)
        if self.fine_tune_epochs > 0:
            if X is None or y is None:
                raise ParameterError(
                    f"fine_tune_epochs={self.fine_tune_epochs} trains the backbone on "
                    "labels: call fit(X, y), or set fine_tune_epochs=0"
                )
            with nets.torch_threads(self.n_jobs, device):
                self._fine_tune(X, y, device, seed)
        self.n_features_in_ = 1
        if self.inference == "onnx":
            self.export_onnx()
        elif hasattr(self, "onnx_model_"):  # from an earlier fit
            del self.onnx_model_
        return self

    def export_onnx(self):
        """Export the fitted network as ``onnx_model_``, for ``inference="onnx"``.

        ``fit`` calls this with ``inference="onnx"``; call it on an extractor
        fitted with ``inference="torch"`` (a long fine-tuning, say), then
        ``set_params(inference="onnx")``, rather than fitting again. The
        graph maps uint8 (n, H, W, 3) images of ``image_size`` to the pooled
        features, in fp32; its features on a probe batch of random images
        are checked against the torch network's (within 1e-4, relative to
        their scale). Needs torch, onnx and onnxruntime.

        Returns
        -------
        self : CNNExtractor
            With ``onnx_model_`` set.

        Raises
        ------
        MmfeatError
            If the exported graph disagrees with the network (a forward pass
            whose steps depend on the pixel values cannot be traced) or uses
            an operator mmfeat does not run.
        """
        check_is_fitted(self, "n_features_out_")
        from mmfeat.features.image import _cnn_onnx

        nets = _nets()
        torch = nets.torch
        import_onnxruntime("CNNExtractor.export_onnx checking its export")
        size = _size_pair(self.image_size)
        mean, std = _triple(self.mean, "mean"), _triple(self.std, "std", positive=True)
        cpu = torch.device("cpu")
        module = self._module_for(cpu)
        graph, notes = nets.onnx_graph(
            module,
            self.layer_,
            self._take_input_,
            self.pooling,
            mean,
            std,
            size,
            (_cnn_onnx.INPUT_NAME, _cnn_onnx.OUTPUT_NAME),
        )
        graph = np.frombuffer(graph, dtype=np.uint8).copy()
        graph.setflags(write=False)  # checked once per content: keep it so
        probe = np.random.default_rng(0).integers(0, 256, (2, *size, 3), np.uint8)
        try:
            session, rows = _cnn_onnx.session_for(
                graph, image_size=size, n_features=self.n_features_out_, threads=1
            )
        except _cnn_onnx.GraphError as exc:
            raise MmfeatError(
                f"the ONNX export of backbone={self._backbone_name()} cannot be "
                f"scored by mmfeat ({exc}); use inference='torch'"
            ) from None
        got = _cnn_onnx.run_graph(session, rows, probe)
        with torch.inference_mode():
            x = self._normaliser(cpu)(torch.from_numpy(probe), "nhwc")
            want = self._embed(module, x).float().numpy()
        gap = float(np.max(np.abs(got - want)))
        if not gap <= 1e-4 * max(1.0, float(np.max(np.abs(want)))):
            raise MmfeatError(
                f"the ONNX export of backbone={self._backbone_name()} differs from "
                f"the network by {gap:.3g} on a probe batch: its forward pass "
                "probably depends on the pixel values (branches or loops), which "
                "the exporter cannot trace; use inference='torch'"
                + (f" (the tracer warned: {notes[0]})" if notes else "")
            )
        self.onnx_model_ = graph
        return self

    def _decoded(self, X):
        """Every item decoded once: uint8 (n, H, W, 3) images and a present mask.

        Items that cannot be read are reported (see
        :func:`mmfeat.collect_item_errors`) and left out of the mask.
        """
        items, stack = self._column(X)
        n = len(stack) if stack is not None else len(items)
        images = np.empty((n, *_size_pair(self.image_size), 3), dtype=np.uint8)
        present = np.zeros(n, dtype=bool)
        # read in this thread: prefetch_batches reports the bad items here
        for start, rows, batch, _ in self._host_batches(items, stack=stack):
            if batch is not None:
                images[start + rows] = batch
                present[start + rows] = True
        return images, present

    def trainable_encoder(self, X):
        """The fitted backbone as an encoder another model trains end to end.

        For a composite with its own loss (deep fusion:
        :class:`~mmfeat.fusion.NeuralFusionClassifier` with
        ``end_to_end=True``): it optimises ``module``'s parameters together
        with its own, through ``forward``; the extractor's ``transform``
        then gives the features of the trained backbone.

        Parameters
        ----------
        X : column of images
            Paths, bytes, arrays or missing values.

        Returns
        -------
        images : ndarray of shape (n_samples, H, W, 3), uint8
            The items decoded once (``image_size``); undefined where not
            ``present``.
        present : ndarray of bool, shape (n_samples,)
            Rows whose item was read (the others are reported).
        forward : callable
            ``forward(batch, train)``: a uint8 NHWC torch tensor (on the
            CPU) to the features, shape ``(len(batch), n_features_out_)``,
            on the backbone's device, with gradients. ``train=True`` puts
            the backbone in training mode and flips and shifts the images
            at random (seeded by ``random_state``), as fine-tuning does;
            ``False`` is evaluation mode, no augmentation.
        module : torch.nn.Module
            ``module_`` itself, trained in place by the caller.
        """
        check_is_fitted(self, "n_features_out_")
        from mmfeat.features.image._cnn_finetune import augment

        nets = _nets()
        torch = nets.torch
        images, present = self._decoded(X)
        module = self.module_
        device = next(iter(module.parameters())).device
        layer_module = self._layer_module(module)
        normalise = self._normaliser(device)
        gen = torch.Generator().manual_seed(self._seed() + 2)

        def forward(batch, train):
            module.train(train)
            x = normalise(batch.to(device), "nhwc")
            if train:
                x = augment(x, gen)
            return nets.embed(module, x, layer_module, self._take_input_, self.pooling)

        return images, present, forward, module

    def _fine_tune(self, X, y, device, seed):
        """Decode the training items once, then train (``_cnn_finetune``)."""
        from mmfeat.features.image._cnn_finetune import fine_tune

        nets = _nets()
        torch = nets.torch
        images, present = self._decoded(X)
        n = len(images)
        y = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
        if len(y) != n:
            raise ParameterError(f"X has {n} items but y has {len(y)} labels")
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
        module = self.module_  # on ``device``, where fit placed it
        layer_module = self._layer_module(module)
        self.loss_curve_ = fine_tune(
            module,
            torch.from_numpy(images[keep]),
            torch.from_numpy(target.astype(np.int64)),
            forward=lambda x: nets.embed(
                module, x, layer_module, self._take_input_, self.pooling
            ),
            n_features=self.n_features_out_,
            n_classes=len(classes),
            epochs=self.fine_tune_epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            normalise=self._normaliser(device),
            device=device,
            autocast_dtype=nets.autocast_dtype(self.precision, device),
            seed=seed,
            verbose=self.verbose,
        )

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
        if self.inference == "onnx":
            return self._transform_onnx(X)
        try:
            nets = _nets()
        except ImportError as exc:
            if getattr(self, "onnx_model_", None) is None:
                raise
            raise ImportError(
                f"{exc}. This model also holds an exported ONNX graph: "
                "set_params(inference='onnx') scores it with onnxruntime, "
                "without torch",
                name="torch",
            ) from exc
        torch = nets.torch
        device = nets.resolve_device(self.device)
        items, stack = self._column(X)
        n = len(stack) if stack is not None else len(items)
        out = np.full((n, self.n_features_out_), np.nan, dtype=np.float64)
        if n == 0:
            return out
        module = self._module_for(device)
        layer_module = self._layer_module(module)
        normalise = self._normaliser(device)
        autocast = nets.autocast_dtype(self.precision, device)
        batches = in_background(
            lambda: self._device_batches(items, stack, device),
            depth=2,
            name="mmfeat-cnn-batches",
        )
        bar = tqdm(total=n, desc="CNNExtractor", disable=not self.verbose, unit="img")
        pending = None

        def collect(job):
            rows, feats = job
            out[rows] = feats.float().cpu().numpy()

        try:
            with (
                nets.torch_threads(self.n_jobs, device),
                torch.inference_mode(),
                nets.autocast(device, autocast),
            ):
                for start, rows, x, layout, errs, event in batches:
                    # decoded in the producer thread, which has no open log
                    report_item_errors(errs)
                    bar.update(min(self.batch_size, n - start))
                    if x is None:
                        continue
                    if event is not None:
                        stream = torch.cuda.current_stream(device)
                        stream.wait_event(event)
                        x.record_stream(stream)
                    feats = nets.embed(
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

    def _transform_onnx(self, X):
        """``transform`` with onnxruntime on the CPU: no torch needed."""
        from mmfeat.features.image import _cnn_onnx

        graph = getattr(self, "onnx_model_", None)
        if graph is None:
            raise ParameterError(
                "inference='onnx' but this CNNExtractor was fitted with "
                "inference='torch' and holds no ONNX graph: call export_onnx() "
                "(needs torch), or fit with inference='onnx'"
            )
        size = _size_pair(self.image_size)
        try:
            session, rows = _cnn_onnx.session_for(
                graph,
                image_size=size,
                n_features=self.n_features_out_,
                threads=max(1, effective_n_jobs(self.n_jobs)),
            )
        except _cnn_onnx.GraphError as exc:
            raise ParameterError(
                f"onnx_model_ does not run with these parameters ({exc}): a "
                "model file was edited, or image_size changed since the export; "
                "call export_onnx() again (needs torch)"
            ) from None
        items, stack = self._column(X)
        n = len(stack) if stack is not None else len(items)
        out = np.full((n, self.n_features_out_), np.nan, dtype=np.float64)
        if n == 0:
            return out
        batches = in_background(
            lambda: self._host_batches(items, stack=stack),
            depth=2,
            name="mmfeat-cnn-onnx-batches",
        )
        bar = tqdm(total=n, desc="CNNExtractor", disable=not self.verbose, unit="img")
        try:
            for start, ok, batch, errs in batches:
                report_item_errors(errs)  # decoded in the producer thread
                bar.update(min(self.batch_size, n - start))
                if batch is not None:
                    out[start + ok] = _cnn_onnx.run_graph(session, rows, batch)
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
            torch = import_torch()
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
        state.setdefault("inference", "torch")  # saved before mmfeat had it
        arrays = state.pop("_module_state_", None)
        # CheckedStateMixin: parameters and the plain fitted state first
        super().__setstate__(state)
        if arrays is None:
            return
        try:
            nets = _nets()
        except ImportError as exc:
            if hasattr(self, "onnx_model_"):
                # scores with onnxruntime; the weights are kept to save again
                self._check_weights(arrays)
                self._module_state_ = arrays
                return
            raise ImportError(
                f"this pickled CNNExtractor holds a torch network. {exc}",
                name="torch",
            ) from exc
        torch = nets.torch
        self._check_network_state(arrays)
        module = nets.rebuild_backbone(self._spec_, self.backbone)
        # load_state_dict copies into the new module's (fp32, CPU) tensors
        module.load_state_dict({k: torch.from_numpy(a) for k, a in arrays.items()})
        if self.layer_ and self.layer_ not in dict(module.named_modules()):
            raise state_error(self, f"layer_={self.layer_!r} is not in the network")
        module.eval()
        # the output width, as fit measured it: one image of image_size
        try:
            width = self._width(module, _size_pair(self.image_size))
        except (RuntimeError, ValueError) as exc:
            raise state_error(self, f"the network fails on one image ({exc})") from None
        if width != self.n_features_out_:
            raise state_error(
                self,
                f"n_features_out_={self.n_features_out_} but the network gives "
                f"{width} features",
            )
        # where fit would place it: the device ``device`` resolves to here, or
        # the CPU when it resolves to none (transform then says what to do)
        try:
            device = nets.resolve_device(self.device)
        except ParameterError:
            device = torch.device("cpu")
        self.module_ = nets.placed(module, device)

    def _check_fitted_state(self):
        self._check_onnx_state()
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

    def _check_onnx_state(self):
        """``onnx_model_``: bytes within bounds, and a graph mmfeat runs.

        The graph itself (:func:`~._cnn_onnx.check_graph`, with the onnx
        package) is checked when ``inference="onnx"`` will run it; otherwise
        it is checked when it first runs.
        """
        graph = getattr(self, "onnx_model_", None)
        if graph is None:
            return
        from mmfeat.features.image import _cnn_onnx

        if not (
            isinstance(graph, np.ndarray)
            and graph.dtype == np.uint8
            and graph.ndim == 1
            and 0 < graph.size <= _cnn_onnx.MAX_GRAPH_BYTES
        ):
            raise state_error(
                self,
                "onnx_model_ is not a 1-D uint8 array of at most "
                f"{_cnn_onnx.MAX_GRAPH_BYTES} bytes",
            )
        # read-only, as export_onnx leaves it: its check is then remembered
        graph.setflags(write=False)
        if self.inference == "onnx":
            try:
                _cnn_onnx.check_array(
                    graph,
                    image_size=_size_pair(self.image_size),
                    n_features=int(self.n_features_out_),
                )
            except _cnn_onnx.GraphError as exc:
                raise state_error(self, f"onnx_model_: {exc}") from None

    def _check_weights(self, arrays):
        """The stored weights are named numeric arrays, within the bound."""
        if not isinstance(arrays, dict) or not all(
            isinstance(k, str) and isinstance(a, np.ndarray) and a.dtype.kind in "fiub"
            for k, a in arrays.items()
        ):
            raise state_error(
                self, "the stored network weights are not named numeric arrays"
            )
        if sum(a.size for a in arrays.values()) > _MAX_PARAMETERS:
            raise state_error(self, f"over {_MAX_PARAMETERS} stored weights")

    def _check_network_state(self, arrays):
        """The stored weights against the network the spec describes.

        The network is first built on PyTorch's ``meta`` device, which
        allocates nothing, so a spec asking for a huge network costs only
        its shapes; every stored array must then match a parameter or
        buffer of the same name and shape, and nothing may be missing.
        """
        self._check_weights(arrays)
        stored = {k: tuple(a.shape) for k, a in arrays.items()}
        if self._spec_["kind"] == "module":
            return  # the user's own module, held (and trusted) as a parameter
        nets = _nets()
        with nets.torch.device("meta"):
            ref = nets.rebuild_backbone(self._spec_, self.backbone)
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
            torch = import_torch()
        except ImportError:
            return []
        tiny = torch.nn.Sequential(
            torch.nn.Conv2d(3, 6, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(6, 8, 3, stride=2),
        )
        # every set names the keys any other set changes: the grid-search
        # check applies each set to the estimator built from another
        common = dict(
            layer=None,
            fine_tune_epochs=0,
            pooling="avg",
            inference="torch",
            random_state=0,
        )
        try:
            import_onnx()
            import_onnxruntime()
        except ImportError:
            onnx_sets = []
        else:
            onnx_sets = [
                dict(
                    common,
                    backbone="simple",
                    image_size=(16, 16),
                    pooling="avg+max",
                    inference="onnx",
                )
            ]
        return [
            dict(common, backbone="simple", image_size=(16, 16), batch_size=4),
            dict(
                common,
                backbone=tiny,
                image_size=12,  # an int: a square
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
            *onnx_sets,
        ]
