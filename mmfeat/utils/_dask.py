"""Where parallel work runs: a Dask cluster, warm joblib workers, capped threads.

:func:`parallel_backend` sends joblib work (batch scoring, every ``n_jobs``)
to a Dask cluster; :func:`warm_workers` starts joblib's worker processes
while the caller does something else, each watching its parent
(:func:`exit_with_parent`) so that none outlives it; :func:`single_threaded`
caps OpenCV's and BLAS's threads; :func:`count_cores` says how many cores an
``n_jobs`` asks for on this machine, never more than it has.
"""

import contextlib
import importlib
import os
import threading
import time

from joblib import Parallel, cpu_count, delayed, effective_n_jobs
from joblib.parallel import get_active_backend

from mmfeat.exceptions import ParameterError

__all__ = [
    "count_cores",
    "dask_active",
    "effective_count",
    "exit_with_parent",
    "parallel_backend",
    "pid_alive",
    "single_threaded",
    "warm_workers",
    "worker_kwargs",
]

# what a scoring worker imports before its first chunk
WARM_MODULES = (
    "mmfeat.features.audio",
    "mmfeat.features.image",
    "mmfeat.features.text",
    "mmfeat.scoring",
)


@contextlib.contextmanager
def parallel_backend(scheduler, *, n_jobs=-1):
    """Run mmfeat's parallel work on a Dask cluster, through joblib.

    Inside the ``with`` block, :func:`~mmfeat.scoring.score_file` (and every
    estimator's ``n_jobs``) dispatches to the cluster's workers with
    joblib's Dask backend.

    Parameters
    ----------
    scheduler : str or dask.distributed.Client
        The scheduler's address (``"tcp://host:8786"``) or a client. A client
        made here is closed on exit.
    n_jobs : int, default=-1
        Parallel tasks; -1 uses every worker thread of the cluster.

    Yields
    ------
    client : dask.distributed.Client
    """
    try:
        from dask.distributed import Client
    except ImportError:  # pragma: no cover - depends on the environment
        raise ParameterError(
            "a Dask scheduler needs dask.distributed: "
            "python -m pip install 'mmfeat[distributed]'"
        ) from None
    import joblib

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        with joblib.parallel_config(backend="dask", n_jobs=n_jobs):
            yield client
    finally:
        if own:
            client.close()


def dask_active():
    """Whether the active joblib backend is Dask's (inside :func:`parallel_backend`)."""
    backend, _ = get_active_backend()
    return "Dask" in type(backend).__name__


def count_cores(n_jobs, *, name="n_jobs"):
    """The cores ``n_jobs`` asks for here, and whether it asked for more.

    joblib's counting (``None``: 1, -1: every core, -2: all but one), then
    lowered to the machine's cores (:func:`joblib.cpu_count`: CPU affinity
    and container quotas counted): more threads or processes than cores
    only compete, and a model file or a typo asking for 20000 would start
    20000.

    Parameters
    ----------
    n_jobs : int or None
        The request.
    name : str, default="n_jobs"
        How the caller calls it in messages (``"--n-jobs"``).

    Returns
    -------
    n : int
        At least 1, at most the cores.
    lowered : bool
        True when ``n_jobs`` asked for more than the cores.

    Raises
    ------
    ParameterError
        For 0 or a value that is not an int.
    """
    if n_jobs is None:
        return 1, False
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int):
        raise ParameterError(f"{name} must be None or an int; got {n_jobs!r}")
    if n_jobs == 0:
        raise ParameterError(f"{name} must not be 0; give 1, a count, or -1 (all)")
    cores = cpu_count()
    n = effective_count(n_jobs, cores)
    return (cores, True) if n > cores else (n, False)


def effective_count(n_jobs, cores):
    """The count joblib makes of a non-zero int ``n_jobs`` (-1: ``cores``).

    No joblib context is consulted, and nothing is capped: 20000 stays
    20000 (:func:`count_cores` caps; ``cap_resources`` compares a model's
    own requests with it).
    """
    return n_jobs if n_jobs > 0 else max(cores + 1 + n_jobs, 1)


@contextlib.contextmanager
def single_threaded(limit):
    """OpenCV and BLAS threads capped at ``limit`` (None: unchanged)."""
    if limit is None:
        yield
        return
    import cv2
    from threadpoolctl import threadpool_limits

    before = cv2.getNumThreads()
    cv2.setNumThreads(limit)
    try:
        with threadpool_limits(limits=limit):
            yield
    finally:
        cv2.setNumThreads(before)


def pid_alive(pid):
    """Whether process ``pid`` exists on this machine (a zombie counts as dead)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


# processes in which a parent watch runs (a forked child does not inherit it)
_WATCHING = set()
_WATCH_INTERVAL = 0.2


def exit_with_parent(parent):
    """In a worker process: end it as soon as ``parent`` (the scorer) dies.

    joblib's loky workers are children of the scoring process but outlive a
    ``SIGKILL`` of it (they wait minutes for work before exiting). A daemon
    thread polls ``os.getppid()``, which changes the moment the parent dies
    (the worker is handed to init), and ends the worker. Linux's
    ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that
    started the worker ends, and loky starts workers from short-lived
    threads (:func:`warm_workers`, its executor manager), so it would kill
    healthy workers.
    """
    me = os.getpid()
    if parent is None or parent == me or me in _WATCHING:
        return
    if os.getppid() != parent:
        if not pid_alive(parent):
            os._exit(1)  # orphaned before the watch started
        return  # started by someone else (a Dask worker, a nested pool)
    _WATCHING.add(me)

    def watch():
        while os.getppid() == parent:
            time.sleep(_WATCH_INTERVAL)
        os._exit(1)

    threading.Thread(target=watch, name="mmfeat-exit-with-parent", daemon=True).start()


def worker_kwargs():
    """``Parallel`` arguments that make loky start each worker watching us.

    Every worker, busy or idle, runs :func:`exit_with_parent` as it starts
    (the same arguments in :func:`warm_workers` and the scoring loop let
    joblib reuse the warmed workers). Other backends get nothing here; their
    workers start the watch with their first task.
    """
    backend, _ = get_active_backend()
    if type(backend).__name__ != "LokyBackend":
        return {}
    return {"initializer": exit_with_parent, "initargs": (os.getpid(),)}


def _warm(parent, modules):
    """Import ``modules`` (in a worker process)."""
    exit_with_parent(parent)
    for name in modules:
        importlib.import_module(name)
    return os.getpid()


def warm_workers(n_jobs, *, modules=WARM_MODULES):
    """Start ``n_jobs`` joblib worker processes in the background.

    A worker spends seconds importing scikit-learn, OpenCV, numba and mmfeat
    before its first task; ``mmfeat score`` starts them while it loads the
    model, so that time overlaps. Returns the thread; join it before
    scoring (joblib then reuses the started workers). Each worker ends when
    this process dies, however it dies.

    Parameters
    ----------
    n_jobs : int
        Workers, joblib counting.
    modules : sequence of str, default=WARM_MODULES
        Modules each worker imports.

    Returns
    -------
    thread : threading.Thread
        Started; daemonic.
    """
    n = effective_n_jobs(n_jobs)
    parent = os.getpid()
    kwargs = worker_kwargs()
    modules = tuple(modules)
    thread = threading.Thread(
        target=lambda: Parallel(n_jobs=n_jobs, **kwargs)(
            delayed(_warm)(parent, modules) for _ in range(n)
        ),
        daemon=True,
    )
    thread.start()
    return thread
