"""HOG throughput: mmfeat's HOGExtractor vs scikit-image and OpenCV.

Run: ``python benchmarks/bench_hog.py [--repeat N] [--json FILE] [--large]``.

Inputs: gray uint8 crops of scikit-image's bundled photographs, 1,000 of
64x128 (the pedestrian window) and 200 of 256x256. Parameters are OpenCV's
default descriptor: 9 orientations, 8x8-pixel cells, 2x2-cell blocks
(stride one cell), L2-Hys, so all three return 3,780 values per 64x128
image. Numbers are compared with scikit-image (mmfeat's output equals
``skimage.feature.hog(image / 255)``; checked here on a subset); OpenCV
interpolates votes and weights blocks, so it is a speed peer only.

Two threads: mmfeat uses numba threads over images; the peers run their
per-image call from a 2-thread pool (both release the GIL in their loops).
Ratio = peer time / mmfeat time (> 1: mmfeat faster).
"""

import argparse
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from _common import median_time, parser, report
from skimage import data
from skimage.feature import hog

from mmfeat.features.image import HOGExtractor


def crops(n, h, w, seed=0):
    """``n`` gray uint8 crops of size (h, w) from scikit-image's photographs."""
    rng = np.random.default_rng(seed)
    sources = [data.camera(), data.coins(), data.moon(), data.brick(), data.grass()]
    sources += [cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)]
    out = np.empty((n, h, w), np.uint8)
    for i in range(n):
        src = sources[i % len(sources)]
        if src.shape[0] < h or src.shape[1] < w:
            src = cv2.resize(src, (max(w, src.shape[1]), max(h, src.shape[0])))
        r = rng.integers(0, src.shape[0] - h + 1)
        c = rng.integers(0, src.shape[1] - w + 1)
        out[i] = src[r : r + h, c : c + w]
    return out


def sk_hog(img):
    return hog(
        img / 255.0, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)
    )


def threaded(func, images, n_jobs):
    if n_jobs == 1:
        return [func(im) for im in images]
    with ThreadPoolExecutor(n_jobs) as pool:
        return list(
            pool.map(func, images, chunksize=max(1, len(images) // (4 * n_jobs)))
        )


def main():
    args = parser(__doc__).parse_args()
    scale = 4 if args.large else 1
    cv2.setNumThreads(1)
    rows = []
    for n, (h, w) in [(1000 * scale, (128, 64)), (200 * scale, (256, 256))]:
        images = crops(n, h, w)
        ext = {
            j: HOGExtractor(cells_per_block=(2, 2), n_jobs=j).fit(images[:1])
            for j in (1, 2)
        }
        got = ext[1].transform(images[:20])
        ref = np.stack([sk_hog(im) for im in images[:20]])
        err = float(np.abs(got - ref).max())
        assert err < 1e-6, f"mmfeat differs from scikit-image by {err}"
        desc = cv2.HOGDescriptor((w, h), (16, 16), (8, 8), (8, 8), 9)
        assert desc.compute(images[0]).size == got.shape[1]
        sk_n = min(n, 200)  # scikit-image is slow: time a subset, scale per image
        for j in (1, 2):
            ours = median_time(lambda j=j: ext[j].transform(images), repeat=args.repeat)
            opencv = median_time(
                lambda j=j: threaded(desc.compute, images, j), repeat=args.repeat
            )
            sk = median_time(
                lambda j=j: threaded(sk_hog, images[:sk_n], j),
                repeat=max(1, args.repeat // 2),
            ) * (n / sk_n)
            case = f"{n} x {w}x{h}, {j} thread{'s' if j > 1 else ''}"
            rows.append((case, ours, sk, n, "skimage.feature.hog"))
            rows.append((case, ours, opencv, n, "cv2.HOGDescriptor"))
        print(f"{w}x{h}: max |mmfeat - skimage| = {err:.1e}")
    report("HOG throughput (images/s)", rows, args, unit="img/s")

    # A numeric stack that needs resizing (USPS-style 16x16 digits to 32x32):
    # the stack path (one vectorised scale, cv2.resize per image) against the
    # item-by-item path (read_image per item) the same images took before.
    digits = crops(9298, 16, 16, seed=1)
    hog16 = HOGExtractor(image_size=(32, 32), cells_per_block=(2, 2)).fit(digits[:1])
    assert np.array_equal(
        hog16.transform(digits[:300]), hog16.transform(list(digits[:300]))
    )
    stack_s = median_time(lambda: hog16.transform(digits), repeat=args.repeat)
    items_s = median_time(lambda: hog16.transform(list(digits)), repeat=args.repeat)
    report(
        "HOG of 9,298 16x16 digits resized to 32x32 (images/s)",
        [("numeric stack vs item by item", stack_s, items_s, len(digits), "items")],
        argparse.Namespace(json=None),
        unit="img/s",
    )


if __name__ == "__main__":
    main()
