"""The CNN extractor's optional dependencies, imported in one place.

torch is the ``mmfeat[cnn]`` extra and torchvision is optional on top of it;
onnxruntime and onnx are the ``mmfeat[onnx]`` extra of ``inference="onnx"``.
Every import of any of them in the CNN code goes through these functions, so
a missing or broken install always says what to do.
"""

__all__ = [
    "ONNX_HINT",
    "TORCH_HINT",
    "import_onnx",
    "import_onnxruntime",
    "import_torch",
    "import_torchvision",
]

TORCH_HINT = (
    "CNNExtractor needs PyTorch, which is not installed: pip install 'mmfeat[cnn]'. "
    "On a machine without an NVIDIA GPU install a CPU build of torch first "
    "(pip install torch --index-url https://download.pytorch.org/whl/cpu), so pip "
    "does not fetch the multi-GB CUDA build"
)

ONNX_HINT = (
    "CNNExtractor(inference='onnx') needs onnxruntime and onnx, which are not both "
    "installed: pip install 'mmfeat[onnx]'"
)


def import_torch():
    """``torch``, or an ImportError (``name="torch"``) saying how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(TORCH_HINT, name="torch") from exc
    return torch


def import_torchvision(purpose):
    """``torchvision``, or an ImportError naming ``purpose`` and the alternatives.

    torchvision can fail to import for more than its absence (a build for
    another torch raises RuntimeError or AttributeError on import), so any
    exception becomes the same clear ImportError.
    """
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


def _import_onnx_package(name, purpose):
    try:
        return __import__(name)
    except ImportError as exc:
        raise ImportError(f"{purpose}: {ONNX_HINT}", name=name) from exc


def import_onnxruntime(purpose="scoring with inference='onnx'"):
    """``onnxruntime``, or an ImportError naming ``purpose`` and the extra."""
    return _import_onnx_package("onnxruntime", purpose)


def import_onnx(purpose="an ONNX graph"):
    """``onnx`` (exports and checks graphs), or an ImportError saying what to do."""
    return _import_onnx_package("onnx", purpose)
