"""Dense SIFT: mmfeat's numba descriptor vs OpenCV's ``SIFT.compute``.

256x256 gray images decoded from the JPEGs of the fashion sample
($MMFEAT_DATA_HOME/fashion_products_sample). Cases: the bare descriptor
stage (``dsift_batch`` on a stack vs a ``cv2.SIFT.compute`` loop on the same
grid) and end-to-end ``SIFTBoVWExtractor.transform`` with
``descriptor="numba"`` (gaussian, flat) vs ``"opencv"``, on the decoded
arrays and on the same images as 256x256 JPEG files (decoding in both); at 1
and 2 threads (the peer at 2 threads: a 2-thread ThreadPoolExecutor over
images). Also the
mean per-descriptor correlation with OpenCV. ``--accuracy``: BoVW + linear
SVM accuracy on ``masterCategory`` with each descriptor.
"""

import csv
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from _common import median_time, parser, report

from mmfeat.features.image import SIFTBoVWExtractor
from mmfeat.features.image._dsift_kernels import FLAT, GAUSSIAN, dsift_batch
from mmfeat.features.image._sift_bovw import _dense_grid, _grid_arrays
from mmfeat.utils._numba import numba_threads

ROOT = os.path.join(
    os.environ.get("MMFEAT_DATA_HOME", "data"), "fashion_products_sample"
)


def load(n):
    with open(os.path.join(ROOT, "labels.csv")) as fh:
        rows = list(csv.DictReader(fh))[:n]
    imgs = [
        cv2.resize(cv2.imread(os.path.join(ROOT, r["image_file"]), 0), (256, 256))
        for r in rows
    ]
    return imgs, [r["masterCategory"] for r in rows]


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--accuracy", action="store_true")
    args = p.parse_args()
    imgs, labels = load(args.n)
    stack = np.stack(imgs)
    step, sizes = 8, (16,)
    arrays, _ = _grid_arrays(256, 256, step, sizes)
    kps, _ = _dense_grid(256, 256, step, sizes)
    sift = cv2.SIFT_create()

    a = dsift_batch(stack[:20], *arrays, GAUSSIAN)
    corr = []
    for im, d in zip(imgs[:20], a):
        _, ref = sift.compute(im, kps)
        for x, y in zip(d, ref):
            if x.std() > 0 and y.std() > 0:
                corr.append(np.corrcoef(x, y)[0, 1])
    print(f"mean per-descriptor correlation with OpenCV: {np.mean(corr):.3f}")

    def cv_loop(threads):
        def one(im):
            return cv2.SIFT_create().compute(im, kps)[1]

        if threads == 1:
            return lambda: [sift.compute(im, kps) for im in imgs]
        pool = ThreadPoolExecutor(threads)
        return lambda: list(pool.map(one, imgs))

    tmp = tempfile.TemporaryDirectory()
    files = []
    for k, im in enumerate(imgs):
        files.append(os.path.join(tmp.name, f"{k}.jpg"))
        cv2.imwrite(files[-1], im, [cv2.IMWRITE_JPEG_QUALITY, 95])

    rows = []
    cv2.setNumThreads(1)
    for threads in (1, 2):
        peer = cv_loop(threads)
        for name, win in (("gaussian", GAUSSIAN), ("flat", FLAT)):

            def ours(win=win, threads=threads):
                with numba_threads(threads):
                    dsift_batch(stack, *arrays, win)

            t_ours = median_time(ours, repeat=args.repeat)
            t_peer = median_time(peer, repeat=args.repeat)
            rows.append(
                (
                    f"descriptors {name}, {threads} thr",
                    t_ours,
                    t_peer,
                    len(imgs),
                    "cv2.SIFT.compute",
                )
            )
        ref = SIFTBoVWExtractor(
            n_words=64, descriptor="opencv", random_state=0, n_jobs=threads
        ).fit(imgs[:50])
        for name in ("gaussian", "flat"):
            est = SIFTBoVWExtractor(
                n_words=64, window=name, random_state=0, n_jobs=threads
            ).fit(imgs[:50])
            # decoded arrays; JPEG files (decoding on both sides) once
            inputs = [("", imgs)] + [("JPEG files ", files)] * (name == "gaussian")
            for what, column in inputs:
                t_ours = median_time(
                    lambda c=column: est.transform(c), repeat=args.repeat
                )
                t_peer = median_time(
                    lambda c=column: ref.transform(c), repeat=args.repeat
                )
                case = f"BoVW transform {what}{name}, {threads} thr"
                rows.append((case, t_ours, t_peer, len(imgs), "descriptor='opencv'"))
    report("Dense SIFT (256x256, step 8, size 16)", rows, args, unit="img/s")
    tmp.cleanup()

    if args.accuracy:
        from sklearn.model_selection import cross_val_score
        from sklearn.pipeline import make_pipeline
        from sklearn.svm import LinearSVC

        imgs, labels = load(1000)
        for desc, win in (
            ("opencv", "gaussian"),
            ("numba", "gaussian"),
            ("numba", "flat"),
        ):
            pipe = make_pipeline(
                SIFTBoVWExtractor(
                    n_words=128, descriptor=desc, window=win, random_state=0, n_jobs=2
                ),
                LinearSVC(C=1.0),
            )
            acc = cross_val_score(pipe, imgs, labels, cv=3).mean()
            print(f"accuracy {desc:>6} {win:<8}: {100 * acc:.2f}%")


if __name__ == "__main__":
    main()
