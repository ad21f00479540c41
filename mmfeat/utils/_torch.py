"""torch for the estimators that use it: the import, the device, the threads.

torch is the optional ``cnn`` extra. Everything here imports it inside the
functions, so importing this module (and mmfeat) neither needs nor loads it.
"""

import contextlib
import re

from joblib import effective_n_jobs

from mmfeat.exceptions import ParameterError

__all__ = ["import_torch", "resolve_device", "torch_threads"]


def import_torch(purpose):
    """``torch``, or an ImportError (``name="torch"``) naming ``purpose``."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs PyTorch, which is not installed: pip install "
            "'mmfeat[cnn]'. On a machine without an NVIDIA GPU install a CPU build "
            "of torch first (pip install torch --index-url "
            "https://download.pytorch.org/whl/cpu), so pip does not fetch the "
            "multi-GB CUDA build",
            name="torch",
        ) from exc
    return torch


def resolve_device(device):
    """The torch.device for ``device`` ("auto", "cpu", "cuda", "cuda:N")."""
    import torch

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
            "of torch on a machine with an NVIDIA GPU. A fitted model: "
            "model.set_params(device='cpu')"
        )
    index = int(match.group(1)) if match.group(1) else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise ParameterError(
            f"device={device!r} but torch sees {count} GPU(s) (cuda:0 to "
            f"cuda:{count - 1}); choose one of those, or device='auto'"
        )
    return torch.device("cuda", index)


@contextlib.contextmanager
def torch_threads(n_jobs, device):
    """Run the body with ``n_jobs`` torch CPU threads (joblib semantics), restored.

    Only on a CPU device: with a GPU, torch's own setting stays (its CPU
    threads then copy batches into pinned memory).
    """
    import torch

    before = torch.get_num_threads()
    n = max(1, effective_n_jobs(n_jobs)) if device.type == "cpu" else None
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
