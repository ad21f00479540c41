"""The CNN extractor's networks, and how they are built, loaded and run.

- the networks: :class:`SimpleCNN`, the built-in backbone, and
  :class:`GlobalPool`;
- embedding: the forward pass up to one layer (:func:`embed`), then global
  pooling of its output (:func:`pool`);
- building: a backbone from the extractor's parameters (:func:`build_backbone`)
  and again from its fitted spec (:func:`rebuild_backbone`), torchvision
  models by name, state dicts from files (:func:`load_weights`), and the
  default layer of each family (:func:`resolve_layer`);
- running: the device, the autocast precision, the CPU threads, and the
  module placed on its device (:func:`placed`);
- export: the fitted network, from uint8 pixels to pooled features, as one
  ONNX graph (:func:`onnx_graph`) that :mod:`._cnn_onnx` scores without torch.

This module uses torch throughout. :mod:`mmfeat.features.image._cnn` imports
it inside its methods, after :func:`~._cnn_deps.import_torch` has said what to
install when torch is missing, so ``import mmfeat`` neither needs nor loads
torch. Without torch it still imports (for doctest collection) but defines
no network.
"""

import contextlib
import copy
import os

from mmfeat.exceptions import MmfeatError, ParameterError
from mmfeat.features.image._cnn_deps import import_torch, import_torchvision
from mmfeat.utils._torch import resolve_device, torch_threads

try:
    torch = import_torch()
except ImportError:  # the cnn extra is absent; the extractor says so first
    torch = None

__all__ = [
    "SIMPLE_EMBED",
    "SIMPLE_WIDTH",
    "GlobalPool",
    "SimpleCNN",
    "autocast",
    "autocast_dtype",
    "backbone_label",
    "build_backbone",
    "embed",
    "layer_module",
    "load_weights",
    "normaliser",
    "onnx_graph",
    "placed",
    "pool",
    "rebuild_backbone",
    "resolve_device",
    "resolve_layer",
    "runs_on",
    "torch_threads",
]

SIMPLE_WIDTH = 32
SIMPLE_EMBED = 256

# Known torchvision families: the name of their last feature map (N, C, H, W),
# which ``pooling`` then turns into a vector. Other models give the input of
# their last Linear layer (the penultimate, already pooled, embedding).
_TRUNKS = ("layer4", "features", "trunk_output", "conv5", "layers")
_TOKEN_MAPS = ("swin", "maxvit", "vit")  # "features" there is not (N, C, H, W)
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


# --------------------------------------------------------------------------
# The networks
# --------------------------------------------------------------------------
if torch is not None:  # an nn.Module subclass needs torch to be defined

    class GlobalPool(torch.nn.Module):
        """Global pooling of (N, C, H, W) maps or (N, L, C) tokens to (N, k*C)."""

        def __init__(self, pooling="avg"):
            super().__init__()
            self.pooling = pooling

        def forward(self, x):
            """Pool ``x`` (see :func:`pool`)."""
            return pool(x, self.pooling)

    class SimpleCNN(torch.nn.Module):
        """Three conv/BN/ReLU/max-pool stages, global pooling, a dense layer.

        The small network of the classic image-classification examples:
        3x3 convolutions of ``width``, ``2*width`` and ``4*width`` channels,
        each followed by batch normalisation, ReLU and 2x2 max pooling (so an
        image shrinks 8 times), then global pooling and a fully connected
        layer of ``embed_dim`` units with ReLU, whose output is the feature
        vector.
        """

        def __init__(self, width=SIMPLE_WIDTH, embed_dim=SIMPLE_EMBED, pooling="avg"):
            super().__init__()
            nn = torch.nn
            chans = (3, width, 2 * width, 4 * width)
            for i in range(3):
                stage = nn.Sequential(
                    nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False),
                    nn.BatchNorm2d(chans[i + 1]),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                )
                self.add_module(f"stage{i + 1}", stage)
            self.pool = GlobalPool(pooling)
            factor = 2 if pooling == "avg+max" else 1
            self.fc = nn.Sequential(
                nn.Linear(factor * chans[-1], embed_dim), nn.ReLU(inplace=True)
            )

        def forward(self, x):
            """The ``embed_dim`` features of a (N, 3, H, W) batch."""
            x = self.stage3(self.stage2(self.stage1(x)))
            return self.fc(self.pool(x))


# --------------------------------------------------------------------------
# Embedding: forward to a layer, then pool
# --------------------------------------------------------------------------
def pool(x, pooling):
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
        return torch.cat([x.mean(dims), x.amax(dims)], dim=1)
    return x.flatten(1)


class _Stop(Exception):
    """Raised by the capture hook: the rest of the forward pass is not needed."""


def embed(module, x, layer_module, take_input, pooling):
    """Forward ``x`` to ``layer_module`` (the whole module if None) and pool."""
    if layer_module is None:
        return pool(module(x), pooling)
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
    return pool(captured[0], pooling)


# --------------------------------------------------------------------------
# Building: parameters -> (module on the CPU, spec); spec -> module
# --------------------------------------------------------------------------
def backbone_label(backbone):
    """``backbone`` as error messages show it: a name, or a module's class."""
    return repr(backbone) if isinstance(backbone, str) else type(backbone).__name__


def _is_weights_path(weights):
    if isinstance(weights, os.PathLike):
        return True
    return (
        "/" in weights
        or os.sep in weights
        or weights.lower().endswith(_WEIGHT_SUFFIXES)
        or os.path.isfile(weights)
    )


def build_backbone(backbone, weights, *, pooling, seed):
    """(module on the CPU, rebuild spec) for the parameters, weights loaded.

    The spec is what a model file stores besides the weights: ``kind``
    ``"simple"`` (with its width, embedding and pooling), ``"torchvision"``
    (with the model's name) or ``"module"`` (the ``backbone`` parameter
    itself). Random initialisation is seeded by ``seed`` without touching
    torch's global random state.
    """
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
                width=SIMPLE_WIDTH,
                embed_dim=SIMPLE_EMBED,
                pooling=pooling,
            )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                module = rebuild_backbone(spec, backbone)
        else:
            if named:
                module = _torchvision_model(backbone, weights)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    module = _torchvision_model(backbone, None)
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
        load_weights(module, weights, backbone_label(backbone))
    return module, spec


def rebuild_backbone(spec, backbone):
    """A fresh module (random weights) of the network ``spec`` describes.

    Under ``torch.device("meta")`` it allocates nothing, which the checks of
    a model file use to compare shapes before building anything.
    """
    kind = spec["kind"]
    if kind == "simple":
        return SimpleCNN(
            width=spec["width"], embed_dim=spec["embed_dim"], pooling=spec["pooling"]
        )
    if kind == "torchvision":
        return _torchvision_model(spec["name"], None)
    return copy.deepcopy(backbone).to("cpu")


def _torchvision_model(name, weights):
    tv = import_torchvision(f"backbone={name!r}")
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
        raise MmfeatError(
            f"cannot get the {name} weights {w.name!r} ({exc}). They are "
            "downloaded once and cached under "
            f"{os.path.join(torch.hub.get_dir(), 'checkpoints')}: run once on a "
            f"machine that is online, copy the file {os.path.basename(w.url)} "
            "into that folder, or pass weights='path/to/state_dict.pt'"
        ) from None


def load_weights(module, weights, label):
    """Load the state dict saved at path ``weights`` into ``module``.

    Only tensors are read (``torch.load(weights_only=True)``); a checkpoint
    dict with a ``"state_dict"``, ``"model_state_dict"`` or ``"model"`` entry
    and the ``module.`` prefix of ``DataParallel`` are accepted. ``label``
    names the backbone in errors.
    """
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
            f"the weights in {path!r} do not fit backbone={label}: "
            f"{' '.join(line.strip() for line in lines[:4])}"
        ) from None


def resolve_layer(module, spec, layer, label):
    """(layer name, take its input?) for the ``layer`` parameter.

    ``None`` picks the family's default: the dense layer of ``"simple"``,
    the last feature map of known torchvision families, else the input of
    the last Linear layer; ``""`` is the module's own output.
    """
    modules = dict(module.named_modules())
    if layer is not None:
        if layer not in modules or layer == "":
            names = [n for n in modules if n][:40]
            raise ParameterError(
                f"layer={layer!r} is not a submodule of backbone={label}; choose "
                f"one of {names}" + (" ..." if len(modules) > 41 else "")
            )
        return layer, False
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


def layer_module(module, name):
    """The submodule called ``name``; None for ``""`` (the whole module)."""
    return dict(module.named_modules())[name] if name else None


# --------------------------------------------------------------------------
# Running: device, precision, threads, placement, normalisation
# --------------------------------------------------------------------------
def autocast_dtype(precision, device):
    """The autocast dtype of ``precision`` on ``device``; None for fp32."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    return torch.bfloat16


def autocast(device, dtype):
    """``torch.autocast`` to ``dtype``, or no autocast for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def runs_on(module, device):
    """Whether every parameter and buffer of ``module`` is on ``device``."""
    tensors = [*module.parameters(), *module.buffers()]
    return all(t.device == device for t in tensors)


def placed(module, device):
    """``module`` moved to ``device`` (channels-last on CUDA), in eval mode."""
    module.to(device)
    if device.type == "cuda":
        module.to(memory_format=torch.channels_last)
    return module.eval()


def normaliser(mean, std, device):
    """``normalise(x, layout)``: uint8 pixels to ``(x / 255 - mean) / std``.

    ``x`` is an (N, H, W, C) (``layout="nhwc"``) or (N, C, H, W) uint8 batch
    on ``device``; the result is float (N, C, H, W), channels-last on CUDA.
    """
    mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255

    def normalise(x, layout):
        if layout == "nhwc":
            x = x.permute(0, 3, 1, 2)  # a channels-last view, no copy
        x = (x.float() - mean) / std
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    return normalise


# --------------------------------------------------------------------------
# Export: the fitted network as one ONNX graph, uint8 pixels to features
# --------------------------------------------------------------------------
def onnx_graph(module, layer_name, take_input, pooling, mean, std, size, names):
    """The serialised ONNX graph of the pooled features of ``module``.

    A CPU fp32 copy of ``module`` (eval mode) is traced by torch's
    TorchScript exporter (opset 17) on a batch of two images of ``size``,
    with the batch axis dynamic; its input is ``names[0]``, uint8 of shape
    (n, H, W, 3), its output ``names[1]``, float (n, features).

    Returns the graph's bytes and the tracer's warnings (a step that
    depends on the pixel values, which the trace fixes to the example's
    path); the exporter's own deprecation notices are silenced, and a
    network it cannot export raises :class:`~mmfeat.exceptions.MmfeatError`.
    """
    import io
    import warnings

    from mmfeat.features.image._cnn_deps import import_onnx

    import_onnx("exporting the network (inference='onnx')")

    class Exported(torch.nn.Module):
        """uint8 NHWC batch -> normalise -> forward to the layer -> pool, fp32."""

        def __init__(self, module, layer_name, take_input, pooling, normalise):
            super().__init__()
            self.module = module
            self.layer_name = layer_name
            self.take_input = take_input
            self.pooling = pooling
            self.normalise = normalise

        def forward(self, x):
            layer = layer_module(self.module, self.layer_name)
            x = self.normalise(x, "nhwc")
            return embed(self.module, x, layer, self.take_input, self.pooling).float()

    cpu = torch.device("cpu")
    net = copy.deepcopy(module).to(cpu).float().eval()
    wrapped = Exported(
        net, layer_name, take_input, pooling, normaliser(mean, std, cpu)
    ).eval()
    example = torch.zeros((2, *size, 3), dtype=torch.uint8)
    buf = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", torch.jit.TracerWarning)
        try:
            torch.onnx.export(
                wrapped,
                (example,),
                buf,
                dynamo=False,
                opset_version=17,
                input_names=[names[0]],
                output_names=[names[1]],
                dynamic_axes={names[0]: {0: "n"}, names[1]: {0: "n"}},
            )
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise MmfeatError(
                f"torch cannot export this network to ONNX ({type(exc).__name__}: "
                f"{reason}); use inference='torch'"
            ) from exc
    notes = [str(w.message).splitlines()[0] for w in caught]
    return buf.getvalue(), notes
