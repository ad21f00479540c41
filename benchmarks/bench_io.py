"""ImageReader vs a plain ``cv2.imread`` loop on the fashion sample.

Run: ``MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_io.py``.
Both sides produce the same arrays (checked): RGB float32 in [0, 1], and
uint8 gray. The plain loop is serial, as users write it; ImageReader runs at
n_jobs=1 and n_jobs=2. Ratio = loop time / ImageReader time (>1: mmfeat faster).
"""

import cv2
import numpy as np
from _common import median_time, parser, report

from mmfeat.datasets import load_fashion_products
from mmfeat.io import ImageReader

PEER = "cv2.imread loop"


def plain_rgb(paths):
    out = []
    for p in paths:
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255)
    return out


def plain_gray_u8(paths):
    return [cv2.imread(p, cv2.IMREAD_GRAYSCALE) for p in paths]


def main():
    args = parser(__doc__).parse_args()
    paths = load_fashion_products().frame["path"].tolist()
    if not args.large:
        paths = paths[:1000]
    n = len(paths)
    # correctness first
    ref = plain_rgb(paths[:50])
    got = ImageReader(mode="rgb").fit_transform(paths[:50])
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a, b, atol=1e-6)
    ref = plain_gray_u8(paths[:50])
    got = ImageReader(mode="gray", dtype="uint8").fit_transform(paths[:50])
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)

    rows = []
    peer_rgb = median_time(lambda: plain_rgb(paths), repeat=args.repeat)
    peer_gray = median_time(lambda: plain_gray_u8(paths), repeat=args.repeat)
    for n_jobs in (1, 2):
        ours = median_time(
            lambda n_jobs=n_jobs: ImageReader(mode="rgb", n_jobs=n_jobs).fit_transform(
                paths
            ),
            repeat=args.repeat,
        )
        rows.append(
            (f"rgb float32, n_jobs={n_jobs}", ours, peer_rgb, n, "cv2.imread loop")
        )
        ours = median_time(
            lambda n_jobs=n_jobs: ImageReader(
                mode="gray", dtype="uint8", n_jobs=n_jobs
            ).fit_transform(paths),
            repeat=args.repeat,
        )
        rows.append(
            (f"gray uint8, n_jobs={n_jobs}", ours, peer_gray, n, "cv2.imread loop")
        )
    report(f"ImageReader on {n} fashion JPEGs (225x300)", rows, args)


if __name__ == "__main__":
    main()
