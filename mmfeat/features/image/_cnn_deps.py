"""The CNN extractor's optional dependencies, imported in one place.

torch is the ``mmfeat[cnn]`` extra and torchvision is optional on top of it:
every import of either in the CNN code goes through these two functions, so
a missing or broken install always says what to do.
"""

__all__ = ["TORCH_HINT", "import_torch", "import_torchvision"]

TORCH_HINT = (
    "CNNExtractor needs PyTorch, which is not installed: pip install 'mmfeat[cnn]'. "
    "On a machine without an NVIDIA GPU install a CPU build of torch first "
    "(pip install torch --index-url https://download.pytorch.org/whl/cpu), so pip "
    "does not fetch the multi-GB CUDA build"
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
