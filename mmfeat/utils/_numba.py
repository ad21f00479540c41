"""Numba compile flags, set once, and a thread-count context for kernels.

Every kernel is cached on disk (``cache=True``, as librosa does), parallel
ones included: without the cache each new process (a joblib or Dask worker,
every ``mmfeat score`` run) spent about 6 s compiling HOG and 2 s the colour
histogram before its first image; with it, 0.3 s. ``fastmath`` stays off:
kernels are checked bit-for-bit-ish against reference libraries, and
reassociation would break that.

The cache never goes inside the installed package: numba's default writes
``__pycache__`` files beside the sources in ``site-packages/mmfeat``, which
pip does not remove, and that left-over folder then shadows a later
editable install (and a read-only install cannot cache at all). Unless
``NUMBA_CACHE_DIR`` is set, the cache is ``$MMFEAT_CACHE_DIR/numba``, else
``$XDG_CACHE_HOME/mmfeat/numba`` (``~/.cache/mmfeat/numba``; on Windows
``%LOCALAPPDATA%/mmfeat/numba``). Setting it is process-wide: other numba
users in the same process without their own cache folder cache there too.
"""

import contextlib
import os

import numba
from joblib import effective_n_jobs

__all__ = [
    "JIT_PARALLEL",
    "JIT_SERIAL",
    "cache_dir",
    "numba_threads",
    "one_blas_thread",
]


def cache_dir():
    """The folder mmfeat's numba kernels are cached in (see the module notes)."""
    if os.environ.get("MMFEAT_CACHE_DIR"):
        base = os.environ["MMFEAT_CACHE_DIR"]
    elif os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = os.path.join(os.environ["LOCALAPPDATA"], "mmfeat")
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache"
        )
        base = os.path.join(xdg, "mmfeat")
    return os.path.join(base, "numba")


def _use_user_cache():
    if numba.config.CACHE_DIR:  # NUMBA_CACHE_DIR: the user chose
        return
    folder = cache_dir()
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".probe-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.unlink(probe)
    except OSError:
        return  # not writable: numba's own fallbacks apply
    numba.config.CACHE_DIR = folder


# before any kernel module applies JIT_SERIAL / JIT_PARALLEL
_use_user_cache()

JIT_SERIAL = dict(nogil=True, cache=True, fastmath=False)
JIT_PARALLEL = dict(nogil=True, cache=True, parallel=True, fastmath=False)


@contextlib.contextmanager
def numba_threads(n_jobs):
    """Run the body with ``n_jobs`` numba threads (joblib semantics).

    ``None`` means 1 unless a joblib context says otherwise, ``-1`` all cores;
    the count is capped at numba's pool size and restored afterwards.
    """
    n = max(1, min(effective_n_jobs(n_jobs), numba.config.NUMBA_NUM_THREADS))
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(before)


_controller = None


def one_blas_thread():
    """Context: BLAS on one thread, for a product between parallel kernels.

    numba's threads spin-wait after each parallel kernel, and BLAS's own
    threads beside them slow both down. A ``ThreadpoolController`` found once
    makes each use about 10 us (``threadpool_limits`` rediscovers the
    libraries, about 0.3 ms).
    """
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
