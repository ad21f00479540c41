"""PixelFeatures: a per-pixel filter bank (ilastik's and scikit-image's families)."""

import functools
import math
import numbers
import queue
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from joblib import cpu_count, effective_n_jobs
from sklearn.base import BaseEstimator, TransformerMixin

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.io import read_image
from mmfeat.segmentation._filters import (
    _eig2,
    _gradient_magnitude,
    _hpass,
    _products,
    _skimage_maps,
    _skimage_pixels,
    _vpass,
    _vpass_t,
    gaussian_weights,
)
from mmfeat.segmentation._io import MAX_CHANNELS, read_channel_map
from mmfeat.utils._docstrings import fill_doc
from mmfeat.utils._items import as_item_list, is_missing, item_source
from mmfeat.utils._parallel import map_items
from mmfeat.utils._sklearn_compat import (
    Integral,
    StrOptions,
    _fit_context,
    check_is_fitted,
)
from mmfeat.utils._state import CheckedStateMixin, state_error
from mmfeat.utils._tags import with_item_tags

__all__ = [
    "FAMILIES",
    "MAX_SIGMA",
    "PixelFeatures",
    "pixel_feature_names",
    "pixel_features",
    "skimage_sigmas",
]

#: Number of output maps per channel and sigma of each family.
FAMILIES = {
    "gaussian": ("gaussian",),
    "log": ("log",),
    "gradient": ("gradient",),
    "dog": ("dog",),
    "structure": ("structure1", "structure2"),
    "hessian": ("hessian1", "hessian2"),
    "intensity": ("intensity",),
    "edges": ("edges",),
    "texture": ("texture1", "texture2"),
}
#: The largest sigma accepted (kernel radius 4 * sigma = 256 pixels).
MAX_SIGMA = 64.0
#: The smallest sigma accepted.
MIN_SIGMA = 0.1
#: The second scale of "dog" and the outer scale of "structure", as ilastik.
DOG_RATIO = 0.66
STRUCTURE_OUTER = 0.5
TRUNCATE = 4.0
_ROW_ALIGN = 64
#: The same for the fused scikit-image path, whose passes run over blocks of
#: 16 rows laid end to end (one remainder per block, not per row).
_FUSED_ALIGN = 16
_COLORS = {"grey": ("I",), "rgb": ("R", "G", "B"), "lab": ("L", "a", "b")}
_ILASTIK_DEFAULT = ("gaussian", "log", "gradient", "dog", "structure", "hessian")


def skimage_sigmas(sigma_min=0.5, sigma_max=16, num_sigma=None):
    """The sigmas of :func:`skimage.feature.multiscale_basic_features`.

    Parameters
    ----------
    sigma_min, sigma_max : float, default=0.5, 16
        Smallest and largest scale.
    num_sigma : int, default=None
        Number of scales, log-spaced; ``None``: ``sigma_min`` times powers
        of 2, as scikit-image.

    Returns
    -------
    sigmas : tuple of float

    Examples
    --------
    >>> skimage_sigmas()
    (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    """
    for name, v in (("sigma_min", sigma_min), ("sigma_max", sigma_max)):
        if not (isinstance(v, numbers.Real) and math.isfinite(v) and v > 0):
            raise ParameterError(f"{name} must be a positive number; got {v!r}")
    if sigma_max < sigma_min:
        raise ParameterError(
            f"sigma_max={sigma_max} must be at least sigma_min={sigma_min}"
        )
    if num_sigma is None:
        num_sigma = int(np.log2(sigma_max) - np.log2(sigma_min) + 1)
    elif not isinstance(num_sigma, numbers.Integral) or num_sigma < 1:
        raise ParameterError(f"num_sigma must be a positive int; got {num_sigma!r}")
    s = np.logspace(
        np.log2(sigma_min), np.log2(sigma_max), num=num_sigma, base=2, endpoint=True
    )
    return tuple(float(v) for v in s)


def _check_sigmas(sigmas):
    if isinstance(sigmas, numbers.Real):
        sigmas = (sigmas,)
    try:
        values = [float(s) for s in sigmas]
        ok = all(isinstance(s, numbers.Real) for s in sigmas)
    except (TypeError, ValueError):
        ok = False
    if not ok or not values:
        raise ParameterError(
            f"sigmas must be a non-empty sequence of numbers in [{MIN_SIGMA}, "
            f"{MAX_SIGMA:g}]; got {sigmas!r}"
        )
    for s in values:
        if not (math.isfinite(s) and MIN_SIGMA <= s <= MAX_SIGMA):
            raise ParameterError(
                f"every sigma must lie in [{MIN_SIGMA}, {MAX_SIGMA:g}] pixels (the "
                f"kernel reaches 4 sigma); got {s!r} in sigmas={tuple(values)}"
            )
    if len({_fmt(s) for s in values}) != len(values):
        raise ParameterError(f"sigmas must be distinct; got {tuple(values)}")
    return tuple(values)


def _check_features(features):
    if isinstance(features, str):
        features = (features,)
    try:
        names = list(features)
    except TypeError:
        names = None
    if not names or not all(isinstance(f, str) for f in names):
        raise ParameterError(
            f"features must be a non-empty sequence of family names from "
            f"{sorted(FAMILIES)}; got {features!r}"
        )
    unknown = [f for f in names if f not in FAMILIES]
    if unknown:
        raise ParameterError(
            f"unknown feature famil{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
            f"choose from {sorted(FAMILIES)}"
        )
    if len(set(names)) != len(names):
        raise ParameterError(f"features lists a family twice: {names}")
    return tuple(names)


def _check_color(color):
    if color not in ("grey", "rgb", "lab", "raw"):
        raise ParameterError(
            f"color must be 'grey', 'rgb', 'lab' or 'raw'; got {color!r}"
        )
    return color


def _fmt(s):
    return format(float(s), ".6g")


def _channel_names(color, n_channels):
    if color == "raw":
        if not isinstance(n_channels, numbers.Integral) or n_channels < 1:
            raise ParameterError(
                f"color='raw' needs n_channels (a positive int); got {n_channels!r}"
            )
        return tuple(f"c{i}" for i in range(int(n_channels)))
    return _COLORS[color]


def pixel_feature_names(sigmas, features, color, position, n_channels=None):
    """Names of the output maps of :func:`pixel_features`, in column order.

    Columns run channel by channel, then sigma by sigma, then family by
    family in the order of ``features``; the position channels come last.

    Parameters
    ----------
    sigmas : sequence of float
        Scales.
    features : sequence of str
        Families.
    color : {"grey", "rgb", "lab", "raw"}
        Channel set (``grey`` is ``I``, ``rgb`` ``R G B``, ``lab`` ``L a b``,
        ``raw`` ``c0 c1 ...``).
    position : bool
        Whether ``pos_row`` and ``pos_col`` are appended.
    n_channels : int, default=None
        Channel count; needed for ``color="raw"`` only.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> pixel_feature_names([1.6], ["gaussian", "hessian"], "grey", True)
    ['I_gaussian_s1.6', 'I_hessian1_s1.6', 'I_hessian2_s1.6', 'pos_row', 'pos_col']
    """
    sigmas = _check_sigmas(sigmas)
    features = _check_features(features)
    channels = _channel_names(_check_color(color), n_channels)
    names = [
        f"{c}_{m}_s{_fmt(s)}"
        for c in channels
        for s in sigmas
        for f in features
        for m in FAMILIES[f]
    ]
    if position:
        names += ["pos_row", "pos_col"]
    return names


def _n_features(sigmas, features, n_channels, position):
    per = sum(len(FAMILIES[f]) for f in features)
    return n_channels * len(sigmas) * per + (2 if position else 0)


def _read_channels(item, color, *, source=None):
    """One item as float32 channels (C, H, W), C-contiguous; InputError if bad."""
    if color == "raw":
        # (H, W, C) float32, C >= 1, finite: read_channel_map checks all that
        img = read_channel_map(item, source=source)
    elif color == "grey":
        img = read_image(item, mode="gray")[:, :, None]
    else:
        img = read_image(item, mode="rgb")
        if color == "lab":
            from skimage.color import rgb2lab

            img = rgb2lab(img.astype(np.float64)).astype(np.float32)
    return np.ascontiguousarray(np.moveaxis(img, 2, 0), dtype=np.float32)


@functools.lru_cache(maxsize=256)
def _weights(sigma, order):
    w, parity = gaussian_weights(sigma, order, TRUNCATE)
    w.flags.writeable = False
    return w, parity


def _stack_weights(sigma, orders):
    ws = [_weights(sigma, o) for o in orders]
    return (
        np.stack([w for w, _ in ws]),
        np.asarray([p for _, p in ws], dtype=np.int64),
    )


def _separable(src, sigma, v_orders, h_orders, wd):
    """Gaussian-derivative maps of ``src``: {(v, h): map} for the pairs asked.

    One vertical pass per derivative order of rows (``v_orders``), then one
    horizontal pass per order of columns that each of those needs.
    """
    v_orders = sorted(v_orders)
    w, par = _stack_weights(sigma, tuple(v_orders))
    h, wd = src.shape
    vert = np.empty((len(v_orders), h, wd), dtype=np.float32)
    _vpass(src, w, par, vert)
    maps = {}
    for k, vo in enumerate(v_orders):
        hos = sorted(h_orders[vo])
        w, par = _stack_weights(sigma, tuple(hos))
        res = np.empty((len(hos), h, wd), dtype=np.float32)
        _hpass(vert[k], w, par, res, wd)
        for m, ho in enumerate(hos):
            maps[(vo, ho)] = res[m]
    return maps


def _smooth(src, sigma, wd):
    """Gaussian smoothing of each plane of ``src`` (K, H, Wp), image width ``wd``."""
    w, par = _stack_weights(sigma, (0,))
    out = np.empty_like(src)
    tmp = np.empty((1,) + src.shape[1:], dtype=np.float32)
    for k in range(src.shape[0]):
        _vpass(src[k], w, par, tmp)
        _hpass(tmp[0], w, par, out[k : k + 1], wd)
    return out


def _needed(features):
    """The Gaussian-derivative maps (row order, column order) the families use."""
    fams = set(features)
    need = set()
    if fams & {"gaussian", "dog", "intensity", "edges", "texture"}:
        need.add((0, 0))
    if fams & {"gradient", "structure"}:
        need |= {(0, 1), (1, 0)}
    if fams & {"log", "hessian"}:
        need |= {(0, 2), (2, 0)}
    if "hessian" in fams:
        need.add((1, 1))
    v_orders = {v for v, _ in need}
    return v_orders, {v: {ho for vo, ho in need if vo == v} for v in v_orders}


def _sigma_planes(src, s, features, planes, col, wd):
    """Every family of one channel ``src`` at one sigma into ``planes[col:]``.

    ``src`` and the planes are (H, Wp): the image is ``[:, :wd]``.
    """
    h, wp = src.shape
    v_orders, h_orders = _needed(features)
    g = _separable(src, s, v_orders, h_orders, wd)
    sk_cols = {}
    for f in features:
        if f == "gaussian":
            planes[col] = g[(0, 0)]
        elif f == "log":
            np.add(g[(2, 0)], g[(0, 2)], out=planes[col])
        elif f == "gradient":
            _gradient_magnitude(g[(0, 1)], g[(1, 0)], planes, col)
        elif f == "dog":
            inner = _separable(src, DOG_RATIO * s, {0}, {0: {0}}, wd)[(0, 0)]
            np.subtract(g[(0, 0)], inner, out=planes[col])
        elif f == "structure":
            prod = np.empty((3, h, wp), dtype=np.float32)
            _products(g[(1, 0)], g[(0, 1)], prod)
            a = _smooth(prod, STRUCTURE_OUTER * s, wd)
            _eig2(a[0], a[1], a[2], planes, col)
        elif f == "hessian":
            _eig2(g[(2, 0)], g[(1, 1)], g[(0, 2)], planes, col)
        else:
            sk_cols[f] = col
        col += len(FAMILIES[f])
    if sk_cols:
        _skimage_maps(
            g[(0, 0)],
            planes,
            sk_cols.get("intensity", -1),
            sk_cols.get("edges", -1),
            sk_cols.get("texture", -1),
            wd,
        )


_SKIMAGE_FAMILIES = frozenset({"intensity", "edges", "texture"})


def _row_chunks(h, n):
    step = -(-h // max(1, n))
    return [(i, min(i + step, h)) for i in range(0, h, step)]


def _compute(chans, sigmas, features, position, n_threads=1):
    """The (H, W, F) float32 feature stack of channels (C, H, W).

    Per channel: one task per sigma (largest first) computes the maps as
    planes (contiguous rows, so the kernels vectorise); then the planes are
    interleaved into the output row by row. With scikit-image's families
    only, every channel is smoothed at every sigma first (one task each),
    then the maps are computed from rows of all those planes in pixel
    order and written in one pass over the output. Tasks and row chunks
    run on ``n_threads`` threads (the kernels release the GIL).
    """
    n_c, h, wd = chans.shape
    per_sigma = sum(len(FAMILIES[f]) for f in features)
    n_plane = per_sigma * len(sigmas)
    out = np.empty((h, wd, _n_features(sigmas, features, n_c, position)), np.float32)
    # rows padded to a multiple of 64 floats: every vectorised row loop then
    # runs whole vector iterations, with no scalar remainder (which cost as
    # much as the rest of a 300-pixel row)
    fused = set(features) <= _SKIMAGE_FAMILIES
    align = _FUSED_ALIGN if fused else _ROW_ALIGN
    wp = -(-wd // align) * align
    # largest sigma first: the costliest task starts first
    order = sorted(range(len(sigmas)), key=lambda k: -sigmas[k])
    chunks = _row_chunks(h, n_threads)
    pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None

    def run(func, jobs):
        if pool is None or len(jobs) < 2:
            for job in jobs:
                func(*job)
        else:
            list(pool.map(lambda job: func(*job), jobs))

    try:
        if fused:
            offsets, col = {}, 0
            for f in features:
                offsets[f] = col
                col += len(FAMILIES[f])
            # every channel's smoothed planes side by side per pixel, in
            # output order: the maps are then computed and written pixel by
            # pixel, every output row once, with no transpose
            n_s = len(sigmas)
            gs = np.empty((n_c * n_s, h, wp), dtype=np.float32)
            # each channel padded and extended by the largest radius (edge
            # rows), once for all sigmas; per thread, one transposed
            # intermediate (extended the same way) and the pass buffer
            big_r = max(len(_weights(s, 0)[0]) // 2 for s in sigmas)
            srcs = [
                np.pad(_padded(chans[c], wp), ((big_r, big_r), (0, 0)), mode="edge")
                for c in range(n_c)
            ]
            hp = -(-h // align) * align
            scratches = queue.SimpleQueue()
            for _ in range(n_threads):
                scratches.put(
                    (
                        np.empty((wd + 2 * big_r, hp), np.float32),
                        np.empty(16 * max(wp, hp), np.float32),
                    )
                )
            run(
                _smooth_task,
                [
                    (srcs[c], sigmas[k], gs, c * n_s + k, wd, scratches)
                    for k in order
                    for c in range(n_c)
                ],
            )
            run(
                _skimage_pixels,
                [
                    (
                        gs,
                        out,
                        per_sigma,
                        offsets.get("intensity", -1),
                        offsets.get("edges", -1),
                        offsets.get("texture", -1),
                        i0,
                        i1,
                    )
                    for i0, i1 in chunks
                ],
            )
        else:
            planes = np.empty((n_plane, h, wp), dtype=np.float32)
            for c in range(n_c):
                src = _padded(chans[c], wp)
                jobs = [
                    (src, sigmas[k], features, planes, k * per_sigma, wd) for k in order
                ]
                run(_sigma_planes, jobs)
                run(
                    _interleave,
                    [(planes, out, c * n_plane, wd, i0, i1) for i0, i1 in chunks],
                )
    finally:
        if pool is not None:
            pool.shutdown()
    if position:
        col = n_c * n_plane
        rows = np.arange(h, dtype=np.float32) / (h - 1) if h > 1 else np.full(1, 0.5)
        cols = np.arange(wd, dtype=np.float32) / (wd - 1) if wd > 1 else np.full(1, 0.5)
        out[:, :, col] = rows[:, None]
        out[:, :, col + 1] = cols[None, :]
    return out


def _padded(chan, wp):
    """``chan`` (H, W) with each row padded to ``wp`` by its last value."""
    h, wd = chan.shape
    src = np.empty((h, wp), dtype=np.float32)
    src[:, :wd] = chan
    src[:, wd:] = chan[:, wd - 1 :]
    return src


def _smooth_task(src, sigma, gs, k, wd, scratches):
    """``gs[k]`` (H, Wp) = the image in ``src`` smoothed at ``sigma``.

    ``src`` (H + 2 R, Wp) is the padded channel (width ``wd``) with ``R``
    copies of its first and last rows around it, ``R`` at least the
    largest radius. Each pass writes its result transposed, so the
    horizontal pass is a vertical one too (aligned loads) and the second
    transposes back. The buffers come from ``scratches`` (a queue, one set
    per thread).
    """
    w, par = _stack_weights(sigma, (0,))
    h = gs.shape[1]
    tmp, buf = scratches.get()
    try:
        _vpass_t(src, h, w, par, tmp, (tmp.shape[0] - wd) // 2, buf)
        _vpass_t(tmp, wd, w, par, gs[k], 0, buf)
    finally:
        scratches.put((tmp, buf))


def _interleave(planes, out, col0, wd, i0, i1):
    """``out[i0:i1, :, col0:col0 + K] = planes[:, i0:i1, :wd]`` (numpy copy)."""
    out[i0:i1, :, col0 : col0 + planes.shape[0]] = planes[:, i0:i1, :wd].transpose(
        1, 2, 0
    )


def _n_threads(n_jobs):
    """Threads for ``n_jobs`` (joblib semantics), never more than the cores."""
    return max(1, min(effective_n_jobs(n_jobs), cpu_count()))


def pixel_features(
    image,
    *,
    sigmas=(0.7, 1.0, 1.6, 3.5, 5.0, 10.0),
    features=_ILASTIK_DEFAULT,
    color="rgb",
    position=False,
    n_jobs=None,
):
    """Per-pixel filter-bank features of one image, ilastik's or scikit-image's.

    Every family is computed per channel and per sigma from one set of
    separable Gaussian(-derivative) passes (``G``, ``Gx``, ``Gy``,
    ``Gxx``, ``Gyy``, ``Gxy``), shared by all families that need them; the
    passes are float32 numba kernels parallel over rows.

    Families (ilastik's, Sommer et al. 2011):

    - ``"gaussian"``: Gaussian smoothing ``G``;
    - ``"log"``: Laplacian of Gaussian ``Gxx + Gyy``
      (``scipy.ndimage.gaussian_laplace``);
    - ``"gradient"``: gradient magnitude of Gaussian ``sqrt(Gx**2 + Gy**2)``
      (``scipy.ndimage.gaussian_gradient_magnitude``);
    - ``"dog"``: difference of Gaussians ``G(sigma) - G(0.66 sigma)``, the
      second scale ilastik uses;
    - ``"structure"``: the two eigenvalues (descending) of the structure
      tensor with inner scale ``sigma`` (Gaussian-derivative gradients) and
      outer scale ``0.5 sigma`` (smoothing of ``Gx**2``, ``Gx Gy``,
      ``Gy**2``), ilastik's scales;
    - ``"hessian"``: the two eigenvalues (descending) of the Hessian of
      Gaussian ``[[Gyy, Gxy], [Gxy, Gxx]]``, not scale-normalised (as
      ilastik and ``gaussian_filter(order=...)``).

    And scikit-image's (:func:`skimage.feature.multiscale_basic_features`),
    equal to it with ``features=("intensity", "edges", "texture")``,
    ``sigmas=skimage_sigmas()`` and ``color="rgb"`` (its
    ``channel_axis=-1``): ``"intensity"`` (``G``), ``"edges"`` (Sobel
    magnitude of ``G``), ``"texture"`` (eigenvalues of the Hessian of ``G``
    by ``np.gradient`` finite differences, descending).

    Parameters
    ----------
    image : str, path-like, bytes or ndarray
        One image (read by :func:`~mmfeat.io.read_image`, values in [0, 1]),
        or with ``color="raw"`` a channel map of any finite values (H x W or
        H x W x C array, ``.npy`` or image file).
    sigmas : sequence of float, default=(0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
        Scales in pixels, each in [0.1, 64]; ilastik's defaults without 0.3.
    features : sequence of str, default=("gaussian", "log", "gradient", \
"dog", "structure", "hessian")
        Families, in output order within each sigma.
    color : {"grey", "rgb", "lab", "raw"}, default="rgb"
        Channels: BT.601 grey (1), RGB (3), CIE Lab (3, from
        :func:`skimage.color.rgb2lab`, unscaled: L in [0, 100], a and b
        about [-100, 100]) or the map's own channels (``"raw"``).
    position : bool, default=False
        Append ``row / (H - 1)`` and ``col / (W - 1)`` (0.5 on a side of
        length 1).
    n_jobs : int, default=None
        Threads (joblib semantics, ``None`` is 1, at most the cores), one
        task per sigma of a channel; the kernels release the GIL.

    Returns
    -------
    features : ndarray of shape (H, W, F), float32, C-contiguous
        Columns named by :func:`pixel_feature_names`.

    Notes
    -----
    Boundary mode ``"nearest"`` (the edge pixel repeats) for every filter:
    scikit-image's Gaussian default, SciPy's ``mode="nearest"``; kernels
    are truncated at 4 sigma, as SciPy's. Images smaller than a kernel are
    fine (indices clamp). Memory: the output, ``4 F`` bytes per pixel,
    plus the planes of one channel (``4 F / C`` bytes per pixel, rows
    padded to a multiple of 64 pixels) and, per running sigma task (one per
    thread), at most about 64 bytes per pixel (three vertical passes, six
    derivative maps, the structure tensor). With scikit-image's families
    only: the output, the smoothed planes of every channel (``4 C S``
    bytes per pixel for ``S`` sigmas), the channels extended by the largest
    kernel radius and one intermediate plane per thread. Threads
    (``n_jobs``) run one task per sigma: a per-row ``prange`` would meet a
    barrier at every pass, which on a busy machine waits for a core.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((32, 40, 3))
    >>> pixel_features(img, sigmas=[1.0, 2.0], features=["gaussian"]).shape
    (32, 40, 6)
    """
    sigmas = _check_sigmas(sigmas)
    features = _check_features(features)
    color = _check_color(color)
    if not isinstance(position, (bool, np.bool_)):
        raise ParameterError(f"position must be True or False; got {position!r}")
    chans = _read_channels(image, color)
    return _compute(chans, sigmas, features, bool(position), _n_threads(n_jobs))


@fill_doc
class PixelFeatures(CheckedStateMixin, TransformerMixin, BaseEstimator):
    """Per-pixel filter-bank features of each image of a column.

    :func:`pixel_features` over a column of images, for pixel classifiers:
    each row becomes one float32 array (H, W, F), images may differ in
    size. See :func:`pixel_features` for the families, the boundary mode
    and the memory use.

    Parameters
    ----------
    sigmas : sequence of float, default=(0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
        Scales in pixels, each in [0.1, 64].
    features : sequence of str, default=("gaussian", "log", "gradient", \
"dog", "structure", "hessian")
        Families, from ``"gaussian"``, ``"log"``, ``"gradient"``, ``"dog"``,
        ``"structure"``, ``"hessian"`` (ilastik's) and ``"intensity"``,
        ``"edges"``, ``"texture"`` (scikit-image's).
    color : {"grey", "rgb", "lab", "raw"}, default="rgb"
        Channels the filters run on; ``"raw"`` takes channel maps of any
        finite values (depth, disparity, precomputed features).
    position : bool, default=False
        Append the normalised row and column of each pixel.
    %(on_error_items)s
    n_jobs : int, default=None
        Threads (joblib semantics, ``None`` is 1): decoding threads, then
        one image per thread (the kernels release the GIL); a single image
        gets one task per sigma instead.
    verbose : int, default=0
        Progress bar when > 0.

    Attributes
    ----------
    n_channels_in_ : int
        Channels per image (1 grey, 3 RGB/Lab, learned from the first
        readable map for ``"raw"``).
    n_features_out_ : int
        F, the maps per pixel.
    n_features_in_ : int
        Always 1: one column of images.

    See Also
    --------
    pixel_features : The same for one image.
    skimage_sigmas : scikit-image's default scales.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.random((20, 30, 3)), rng.random((16, 16, 3))]
    >>> pf = PixelFeatures(sigmas=[1.0], features=["gaussian", "hessian"])
    >>> [a.shape for a in pf.fit_transform(images)]
    [(20, 30, 9), (16, 16, 9)]
    """

    _parameter_constraints = {
        "sigmas": [tuple, list, np.ndarray],
        "features": [tuple, list, str],
        "color": [StrOptions({"grey", "rgb", "lab", "raw"})],
        "position": ["boolean"],
        "on_error": [StrOptions({"raise", "missing"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        sigmas=(0.7, 1.0, 1.6, 3.5, 5.0, 10.0),
        features=_ILASTIK_DEFAULT,
        color="rgb",
        position=False,
        on_error="raise",
        n_jobs=None,
        verbose=0,
    ):
        self.sigmas = sigmas
        self.features = features
        self.color = color
        self.position = position
        self.on_error = on_error
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []
        return with_item_tags(tags, modality="image", reads_files=True)

    def _settings(self):
        return (
            _check_sigmas(self.sigmas),
            _check_features(self.features),
            _check_color(self.color),
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Check the parameters; for ``color="raw"`` learn the channel count.

        Parameters
        ----------
        X : column of images, default=None
            Needed for ``color="raw"`` only (the first readable map sets
            ``n_channels_in_``).
        y : None
            Ignored.

        Returns
        -------
        self : PixelFeatures
            The fitted transformer.
        """
        sigmas, features, color = self._settings()
        if color == "raw":
            if X is None:
                raise ParameterError(
                    "PixelFeatures(color='raw').fit needs X, to learn the "
                    "number of channels of the maps"
                )
            n_channels = None
            for row, item in enumerate(as_item_list(X, stack_ndim=3)):
                if is_missing(item):
                    continue
                try:
                    n_channels = _read_channels(item, "raw").shape[0]
                    break
                except InputError as exc:
                    if self.on_error == "raise":
                        raise exc.with_row(row) from None
            if n_channels is None:
                raise ParameterError(
                    "PixelFeatures.fit saw no readable channel map to learn the "
                    "number of channels from"
                )
        else:
            n_channels = len(_COLORS[color])
        self.n_channels_in_ = int(n_channels)
        self.n_features_out_ = _n_features(
            sigmas, features, self.n_channels_in_, bool(self.position)
        )
        self.n_features_in_ = 1
        return self

    def _check_fitted_state(self):
        sigmas, features, color = self._settings()
        n_c = self.n_channels_in_
        if not (
            isinstance(n_c, (int, np.integer))
            and not isinstance(n_c, bool)
            and 1 <= n_c <= MAX_CHANNELS
        ):
            raise state_error(
                self, f"n_channels_in_={n_c!r} is not an int in [1, {MAX_CHANNELS}]"
            )
        if color != "raw" and n_c != len(_COLORS[color]):
            raise state_error(
                self,
                f"n_channels_in_={n_c} but color={color!r} has "
                f"{len(_COLORS[color])} channels",
            )
        want = _n_features(sigmas, features, int(n_c), bool(self.position))
        if self.n_features_out_ != want:
            raise state_error(
                self,
                f"n_features_out_={self.n_features_out_!r} but the parameters "
                f"and n_channels_in_={n_c} give {want}",
            )

    def _read(self, item, source=None):
        chans = _read_channels(item, self.color, source=source)
        if chans.shape[0] != self.n_channels_in_:
            raise InputError(
                f"channel map has {chans.shape[0]} channels but PixelFeatures "
                f"was fitted on maps of {self.n_channels_in_}",
                source=source or item_source(item),
            )
        return chans

    def features_of(self, image, *, row=None, source=None):
        """The (H, W, F) features of one image with the fitted settings.

        Parameters
        ----------
        image : str, path-like, bytes or ndarray
            One image (or channel map for ``color="raw"``), decoded or not.
        row : int, default=None
            The row it came from, named in an :class:`~mmfeat.InputError`.
        source : str, default=None
            Where it came from (a file name), for messages; default: the
            path, or ``"array"`` / ``"bytes"``.

        Returns
        -------
        features : ndarray of shape (H, W, n_features_out_), float32
        """
        check_is_fitted(self, "n_features_out_")
        sigmas, features, _ = self._settings()
        try:
            chans = self._read(image, source=source)
        except InputError as exc:
            raise exc.with_row(row) from None
        return self._encode(chans, sigmas, features, _n_threads(self.n_jobs))

    def _encode(self, chans, sigmas, features, n_threads=1):
        out = _compute(chans, sigmas, features, bool(self.position), n_threads)
        if out.shape[2] != self.n_features_out_:
            raise state_error(
                self,
                f"n_features_out_={self.n_features_out_} but the settings give "
                f"{out.shape[2]} maps",
            )
        return out

    def transform(self, X):
        """Compute the feature stack of each image.

        Parameters
        ----------
        X : list, 1-D array, Series or one-column DataFrame
            Paths, bytes, arrays or missing values (a numeric stack
            (n, H, W[, C]) is taken row by row).

        Returns
        -------
        features : ndarray of object, shape (n_samples,)
            One float32 array (H, W, n_features_out_) per row; ``None`` for
            missing (or, with ``on_error="missing"``, bad) items.
        """
        check_is_fitted(self, "n_features_out_")
        sigmas, features, _ = self._settings()
        items = as_item_list(X, stack_ndim=3)
        chans, _ = map_items(
            self._read,
            items,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            desc=type(self).__name__,
            on_error=self.on_error,
        )
        out = np.empty(len(items), dtype=object)
        todo = [i for i, c in enumerate(chans) if c is not None]
        n_threads = _n_threads(self.n_jobs)
        if n_threads == 1 or len(todo) < 2:
            # one image (or one thread): its sigmas run in parallel instead
            for i in todo:
                out[i] = self._encode(chans[i], sigmas, features, n_threads)
        else:  # one image per thread; the kernels release the GIL
            with ThreadPoolExecutor(n_threads) as pool:
                stacks = pool.map(
                    lambda i: self._encode(chans[i], sigmas, features), todo
                )
                for i, stack in zip(todo, stacks):
                    out[i] = stack
        return out

    def get_feature_names_out(self, input_features=None):
        """Names such as ``R_gaussian_s1.6``, ``L_hessian1_s3.5``, ``pos_row``.

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        names : ndarray of str
            One name per map (the last axis of each output array).
        """
        check_is_fitted(self, "n_features_out_")
        sigmas, features, color = self._settings()
        return np.asarray(
            pixel_feature_names(
                sigmas, features, color, bool(self.position), self.n_channels_in_
            ),
            dtype=object,
        )

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks."""
        return [
            {"sigmas": (1.0,), "features": ("gaussian", "hessian")},
            {
                "sigmas": (0.7, 2.0),
                "features": ("log", "gradient", "dog", "structure"),
                "color": "grey",
                "position": True,
            },
            {"sigmas": (1.0,), "features": ("intensity", "edges", "texture")},
        ]
