"""Bag-of-visual-words encoding: mmfeat's kernel vs scikit-learn and NumPy.

Run: ``python benchmarks/bench_bovw.py [--repeat N] [--json FILE] [--large]``.

1. Encoding 100,000 128-d descriptors (100 images x 1,000) into k = 1,024
   words (and k = 256, hard): mmfeat's kernel vs ``MiniBatchKMeans.predict`` +
   ``np.bincount`` (hard), and vs the equivalent NumPy for a (1, 2, 4)
   spatial pyramid, soft assignment over the 5 nearest words, and VLAD
   (k = 64). Outputs are checked equal before timing.
2. End to end from files: dense SIFT (step 8, 16-pixel patches) on fashion
   photos resized to 256x256, encoded with a pyramid, vs a plain OpenCV loop
   that only reads and computes the descriptors. OpenCV's own thread count
   is set to the row's thread count for both sides.

3. Hard assignment of real descriptors: dense SIFT (RootSIFT, as
   ``SIFTBoVWExtractor``'s default) of 100 fashion photos, against words
   learned on 30 other photos; blank patches give all-zero descriptors
   (a third of them here), which mmfeat's kernel does not multiply.

At 2 threads, scikit-learn's predict uses 2 OpenMP threads and NumPy's BLAS
2 threads; mmfeat uses 2 numba threads with single-threaded BLAS inside. At
1 thread every peer model is fitted under ``threadpool_limits(1)``:
``KMeans.predict`` takes its OpenMP thread count from the one at fit time,
so a limit around ``predict`` alone left it on every core (the "1 thread"
peer rows before 2026-12-03 ran on 2).
Ratio = peer time / mmfeat time (> 1: mmfeat faster).
"""

import cv2
import numpy as np
from _common import median_time, parser, report
from sklearn.cluster import MiniBatchKMeans
from threadpoolctl import threadpool_limits

from mmfeat.datasets import load_fashion_products
from mmfeat.features.image import SIFTBoVWExtractor, sift_descriptors
from mmfeat.features.image._bovw_kernels import (
    SOFT,
    VLAD,
    _assign,
    _bow_encode,
    pyramid_cells,
)
from mmfeat.utils._numba import numba_threads


def ours(desc, offsets, pos, codebook, n_jobs, **kw):
    with numba_threads(n_jobs):
        return _bow_encode(desc, offsets, pos, codebook, **kw)


def our_words(desc, codebook):
    words = np.empty((len(desc), 1), np.int64)
    half_sq = (0.5 * (codebook.astype(np.float64) ** 2).sum(1)).astype(np.float32)
    with threadpool_limits(1, user_api="blas"):
        _assign(
            desc,
            np.ascontiguousarray(codebook.T),
            half_sq,
            1,
            1.0,
            words,
            np.empty((len(desc), 1)),
        )
    return words[:, 0]


def check_ties(desc, codebook, ours_, theirs):
    """Assignments may differ only on float32 near-ties, and only rarely."""
    diff = np.flatnonzero(ours_ != theirs)
    assert len(diff) <= 1e-4 * len(desc), f"{len(diff)} assignments differ"
    x = desc[diff].astype(np.float64)
    c = codebook.astype(np.float64)
    d_ours = ((x - c[ours_[diff]]) ** 2).sum(1)
    d_theirs = ((x - c[theirs[diff]]) ** 2).sum(1)
    # float32 distances carry an error relative to |x|^2 + |c|^2, not to d^2
    scale = (x**2).sum(1) + (c[theirs[diff]] ** 2).sum(1)
    assert np.all(np.abs(d_ours - d_theirs) <= 1e-6 * scale), "not a near tie"
    return len(diff)


def np_hard(desc, item, n_items, km, k):
    labels = km.predict(desc)
    hist = np.bincount(item * k + labels, minlength=n_items * k).reshape(n_items, k)
    return hist


def np_pyramid(desc, item, pos, n_items, km, k, levels, counts, labels=None):
    labels = km.predict(desc) if labels is None else labels
    blocks = []
    for n in levels:
        cy = np.minimum((pos[:, 0] * n).astype(int), n - 1)
        cx = np.minimum((pos[:, 1] * n).astype(int), n - 1)
        cell = cy * n + cx
        idx = (item * n * n + cell) * k + labels
        h = np.bincount(idx, minlength=n_items * n * n * k).reshape(n_items, -1)
        blocks.append(h / counts[:, None])
    out = np.sqrt(np.hstack(blocks))
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def np_soft(desc, item, n_items, codebook, k, nn, sigma, counts):
    d2 = (
        (desc.astype(np.float64) ** 2).sum(1)[:, None]
        - 2 * desc @ codebook.T
        + (codebook.astype(np.float64) ** 2).sum(1)[None]
    )
    near = np.argpartition(d2, nn, axis=1)[:, :nn]
    nd = np.take_along_axis(d2, near, 1)
    w = np.exp(-(nd - nd.min(1, keepdims=True)) / (2 * sigma**2))
    w /= w.sum(1, keepdims=True)
    out = np.zeros(n_items * k)
    np.add.at(out, (item[:, None] * k + near).ravel(), w.ravel())
    out = np.sqrt(out.reshape(n_items, k) / counts[:, None])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def np_vlad(desc, item, n_items, km, codebook, labels=None):
    labels = km.predict(desc) if labels is None else labels
    k, d = codebook.shape
    out = np.zeros((n_items, k, d))
    np.add.at(out, (item, labels), desc - codebook[labels])
    norms = np.linalg.norm(out, axis=2, keepdims=True)
    out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0).reshape(
        n_items, -1
    )
    out = np.sign(out) * np.sqrt(np.abs(out))
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def plain_dense_sift(paths, size=256, step=8, patch=16):
    sift = cv2.SIFT_create()
    half = patch / 2
    grid = np.arange(half, size - half + 1e-9, step)
    kps = [cv2.KeyPoint(float(x), float(y), patch / 6, 0) for y in grid for x in grid]
    out = []
    for p in paths:
        img = cv2.resize(
            cv2.imread(p, cv2.IMREAD_GRAYSCALE),
            (size, size),
            interpolation=cv2.INTER_AREA,
        )
        out.append(sift.compute(img, kps)[1])
    return out


def fit_peers(train, k):
    """The peer vocabularies (k, 64 and 256 words) on ``train``."""
    km = MiniBatchKMeans(k, random_state=0, n_init=1, max_iter=5, batch_size=4096)
    km64 = MiniBatchKMeans(64, random_state=0, n_init=1, batch_size=4096)
    km256 = MiniBatchKMeans(256, random_state=0, n_init=1, max_iter=5, batch_size=4096)
    return km.fit(train), km64.fit(train), km256.fit(train)


def dense_sift(paths):
    out = []
    for p in paths:
        img = cv2.resize(
            cv2.imread(p, cv2.IMREAD_GRAYSCALE),
            (256, 256),
            interpolation=cv2.INTER_AREA,
        )
        out.append(sift_descriptors(img, step=8, sizes=(16,))[0])
    return out


def real_descriptors(args):
    paths = load_fashion_products().frame["path"].tolist()
    per_image = dense_sift(paths[:100])
    desc = np.ascontiguousarray(np.concatenate(per_image), dtype=np.float32)
    train = np.concatenate(dense_sift(paths[100:130]))
    n = len(desc)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in per_image])])
    item = np.repeat(np.arange(len(per_image)), [len(d) for d in per_image])
    pos = np.zeros((n, 2))
    blank = float((~desc.any(axis=1)).mean())
    flat = pyramid_cells((1,))
    rows = []
    for j in (1, 2):
        for k in (1024, 256):
            with threadpool_limits(j):
                km = MiniBatchKMeans(
                    k, random_state=0, n_init=1, max_iter=5, batch_size=4096
                ).fit(train)
            codebook = km.cluster_centers_.astype(np.float32)
            words = our_words(desc, codebook)
            check_ties(desc, codebook, words, km.predict(desc))
            with threadpool_limits(j):
                peer = median_time(
                    lambda km=km, k=k: np_hard(desc, item, len(per_image), km, k),
                    repeat=args.repeat,
                )
            mine = median_time(
                lambda j=j, c=codebook: ours(desc, offsets, pos, c, j, cells=flat),
                repeat=args.repeat,
            )
            rows.append(
                (
                    f"hard, k={k}, fashion SIFT, {j} thr",
                    mine,
                    peer,
                    n,
                    "MiniBatchKMeans.predict+bincount",
                )
            )
    report(
        f"Hard assignment of {n:,} dense SIFT descriptors of 100 fashion photos "
        f"({blank:.0%} blank patches; descriptors/s)",
        rows,
        args,
        unit="desc/s",
    )


def main():
    args = parser(__doc__).parse_args()
    rng = np.random.default_rng(0)
    n_items, per_item, k = 100, 1000, 1024
    n = n_items * per_item
    desc = np.sqrt(rng.random((n, 128), dtype=np.float32) / 64).astype(np.float32)
    pos = rng.random((n, 2))
    offsets = np.arange(0, n + 1, per_item)
    item = np.repeat(np.arange(n_items), per_item)
    counts = np.full(n_items, float(per_item))
    # vocabularies learned on other descriptors, as in real use (a word that
    # coincides with a descriptor makes exact ties)
    train = np.sqrt(rng.random((20000, 128), dtype=np.float32) / 64).astype(np.float32)
    # predict runs on the OpenMP threads of its fit (see the notes): one set
    # of peer models per thread count; the output checks use the 2-thread set
    peers = {}
    for j in (1, 2):
        with threadpool_limits(j):
            peers[j] = fit_peers(train, k)
    km, km64, km256 = peers[2]
    codebook = km.cluster_centers_.astype(np.float32)
    cb64 = km64.cluster_centers_.astype(np.float32)
    cb256 = km256.cluster_centers_.astype(np.float32)
    flat = pyramid_cells((1,))
    pyr = pyramid_cells((1, 2, 4))

    # equal outputs first (assignments: equal up to float32 near-ties)
    words = our_words(desc, codebook)
    n_ties = check_ties(desc, codebook, words, km.predict(desc))
    hard = ours(desc, offsets, pos, codebook, 2, cells=flat, power=False, l2=False)
    ref = np.bincount(item * k + words, minlength=n_items * k).reshape(n_items, k)
    np.testing.assert_allclose(hard * per_item, ref)
    np.testing.assert_allclose(
        ours(desc, offsets, pos, codebook, 2, cells=pyr),
        np_pyramid(desc, item, pos, n_items, km, k, (1, 2, 4), counts, labels=words),
        atol=1e-9,
    )
    sub = slice(0, 20 * per_item)
    # soft: the 5th and 6th nearest words can be float32 near-ties, which
    # move a little weight; allow that on at most 0.1% of the entries
    soft_ours = ours(
        desc[sub],
        offsets[:21],
        pos[sub],
        codebook,
        2,
        cells=flat,
        method=SOFT,
        n_neighbors=5,
        bandwidth=0.05,
    )
    soft_ref = np_soft(desc[sub], item[sub], 20, codebook, k, 5, 0.05, counts[:20])
    soft_diff = np.abs(soft_ours - soft_ref)
    assert (soft_diff > 1e-6).mean() <= 1e-3 and soft_diff.max() < 0.01
    n_ties += check_ties(desc, cb256, our_words(desc, cb256), km256.predict(desc))
    words64 = our_words(desc, cb64)
    n_ties += check_ties(desc, cb64, words64, km64.predict(desc))
    np.testing.assert_allclose(
        ours(desc, offsets, pos, cb64, 2, cells=flat, method=VLAD),
        np_vlad(desc, item, n_items, km64, cb64, labels=words64),
        atol=1e-5,
    )
    print(f"outputs checked; {n_ties} float32 near-ties went to the other word")

    rows = []
    r = args.repeat
    for j in (1, 2):
        km, km64, km256 = peers[j]
        codebook = km.cluster_centers_.astype(np.float32)
        cb64 = km64.cluster_centers_.astype(np.float32)
        cb256 = km256.cluster_centers_.astype(np.float32)
        with threadpool_limits(j):
            peer = {
                "hard": median_time(
                    lambda: np_hard(desc, item, n_items, km, k), repeat=r
                ),
                "hard256": median_time(
                    lambda: np_hard(desc, item, n_items, km256, 256), repeat=r
                ),
                "pyramid": median_time(
                    lambda: np_pyramid(
                        desc, item, pos, n_items, km, k, (1, 2, 4), counts
                    ),
                    repeat=r,
                ),
                "soft": median_time(
                    lambda: np_soft(desc, item, n_items, codebook, k, 5, 0.05, counts),
                    repeat=max(1, r // 2),
                ),
                "vlad": median_time(
                    lambda: np_vlad(desc, item, n_items, km64, cb64), repeat=r
                ),
            }
        mine = {
            "hard": median_time(
                lambda j=j: ours(desc, offsets, pos, codebook, j, cells=flat), repeat=r
            ),
            "hard256": median_time(
                lambda j=j: ours(desc, offsets, pos, cb256, j, cells=flat), repeat=r
            ),
            "pyramid": median_time(
                lambda j=j: ours(desc, offsets, pos, codebook, j, cells=pyr), repeat=r
            ),
            "soft": median_time(
                lambda j=j: ours(
                    desc,
                    offsets,
                    pos,
                    codebook,
                    j,
                    cells=flat,
                    method=SOFT,
                    n_neighbors=5,
                    bandwidth=0.05,
                ),
                repeat=r,
            ),
            "vlad": median_time(
                lambda j=j: ours(desc, offsets, pos, cb64, j, cells=flat, method=VLAD),
                repeat=r,
            ),
        }
        names = {
            "hard": ("hard, k=1024", "MiniBatchKMeans.predict+bincount"),
            "hard256": ("hard, k=256", "MiniBatchKMeans.predict+bincount"),
            "pyramid": ("hard + pyramid (1,2,4), k=1024", "predict + NumPy pyramid"),
            "soft": ("soft (5 nearest), k=1024", "NumPy GEMM+argpartition"),
            "vlad": ("VLAD, k=64", "predict + NumPy VLAD"),
        }
        for key, (case, peer_name) in names.items():
            rows.append((f"{case}, {j} thr", mine[key], peer[key], n, peer_name))
    report(
        "BoVW encoding of 100,000 descriptors (descriptors/s)",
        rows,
        args,
        unit="desc/s",
    )
    real_descriptors(args)

    paths = load_fashion_products().frame["path"].tolist()[: 400 if args.large else 100]
    rows = []
    for j in (1, 2):
        cv2.setNumThreads(j)  # OpenCV's own threads, the same for both sides
        ext = SIFTBoVWExtractor(
            n_words=256,
            image_size=(256, 256),
            step=8,
            sizes=(16,),
            root_sift=False,
            random_state=0,
            n_jobs=j,
        ).fit(paths[:20])
        mine = median_time(lambda ext=ext: ext.transform(paths), repeat=max(1, r // 2))
        plain = median_time(lambda: plain_dense_sift(paths), repeat=max(1, r // 2))
        rows.append(
            (
                f"dense SIFT + pyramid, {j} thr",
                mine,
                plain,
                len(paths),
                "cv2 dense-SIFT loop (no encoding)",
            )
        )
    report("End to end from JPEG files, 256x256 (images/s)", rows, args, unit="img/s")


if __name__ == "__main__":
    main()
