"""Numba compile flags, set once, and a thread-count context for kernels.

Every kernel is cached on disk (``cache=True``, as librosa does), parallel
ones included: without the cache each new process (a joblib or Dask worker,
every ``mmfeat score`` run) spent about 6 s compiling HOG and 2 s the colour
histogram before its first image; with it, 0.3 s. ``fastmath`` stays off:
kernels are checked bit-for-bit-ish against reference libraries, and
reassociation would break that.
"""

import contextlib

import numba
from joblib import effective_n_jobs

__all__ = ["JIT_PARALLEL", "JIT_SERIAL", "numba_threads"]

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
