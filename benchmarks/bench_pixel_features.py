"""Pixel filter-bank speed: mmfeat's pixel_features vs scikit-image.

Run: ``python benchmarks/bench_pixel_features.py [--repeat N] [--json FILE]
[--large] [--n-images N]``.

Inputs: the first 20 Weizmann horse photos (``--large``: 60), each resized
with ``cv2.INTER_AREA`` to the size of its figure-ground mask, as the data's
``SOURCE.md`` prescribes (the segmentation protocol's resolution), RGB
float32 in [0, 1]. Needs ``MMFEAT_DATA_HOME`` (the shared data home).

Cases, in the same run:

- scikit-image's own feature set: ``skimage.feature.multiscale_basic_features
  (img, channel_axis=-1)`` with its defaults (intensity, Sobel edges and
  Hessian eigenvalues of Gaussians at sigma 0.5, 1, 2, 4, 8, 16; 72 maps on
  RGB) against ``pixel_features(img, features=("intensity", "edges",
  "texture"), sigmas=skimage_sigmas())``. The outputs are asserted equal
  (float32, max abs difference < 1e-4) on every image before timing.
- ilastik's default families (Gaussian, LoG, gradient magnitude, DoG,
  structure-tensor and Hessian eigenvalues at 0.7, 1, 1.6, 3.5, 5, 10;
  144 maps on RGB): mmfeat only (scikit-image has no such call), for scale.

Threads: scikit-image ``workers=1/2`` (its thread pool over sigmas),
mmfeat ``n_jobs=1/2`` (a thread pool over the sigmas of every channel,
then over row chunks). Reported in seconds per megapixel, wall clock,
medians of ``--repeat`` runs (lower is better); ratio = peer time / mmfeat
time. The three cases alternate within each repeat, so that the load of
a shared machine moves both sides of a ratio alike; the ratio of process
CPU times (all threads) is printed beside it.
"""

import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from _common import machine, parser
from skimage.feature import multiscale_basic_features

from mmfeat.segmentation import pixel_features, skimage_sigmas

SK_FEATURES = ("intensity", "edges", "texture")


def horse_photos(n):
    home = Path(os.environ.get("MMFEAT_DATA_HOME", "../shared/data"))
    folder = home / "weizmann_horses"
    images = []
    for i in range(1, n + 1):
        name = f"horse{i:03d}.jpg"
        mask = cv2.imread(str(folder / "figure_ground" / name), cv2.IMREAD_GRAYSCALE)
        photo = cv2.imread(str(folder / "rgb" / name))
        if mask is None or photo is None:
            raise SystemExit(f"cannot read {name} under {folder}: set MMFEAT_DATA_HOME")
        photo = cv2.resize(
            photo, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_AREA
        )
        images.append(np.ascontiguousarray(photo[:, :, ::-1], np.float32) / 255)
    return images


def main():
    p = parser(__doc__)
    p.add_argument("--n-images", type=int, default=None)
    args = p.parse_args()
    n = args.n_images or (60 if args.large else 20)
    images = horse_photos(n)
    mpix = sum(im.shape[0] * im.shape[1] for im in images) / 1e6
    sigmas = skimage_sigmas()

    def ours(j, features=SK_FEATURES, sig=sigmas):
        return [
            pixel_features(im, sigmas=sig, features=features, n_jobs=j) for im in images
        ]

    def peer(j):
        return [
            multiscale_basic_features(im, channel_axis=-1, workers=j) for im in images
        ]

    load_before = os.getloadavg()[0]
    err = max(float(np.abs(a - b).max()) for a, b in zip(ours(1), peer(1), strict=True))
    assert err < 1e-4, f"mmfeat differs from multiscale_basic_features by {err}"
    ilastik = (
        ("gaussian", "log", "gradient", "dog", "structure", "hessian"),
        (0.7, 1.0, 1.6, 3.5, 5.0, 10.0),
    )
    rows = []
    for j in (1, 2):
        # the cases alternate within each repeat, so a change of the load
        # on the shared machine falls on both sides of the ratio alike
        cases = {
            "ours": lambda j=j: ours(j),
            "peer": lambda j=j: peer(j),
            "ilastik": lambda j=j: ours(j, *ilastik),
        }
        wall = {k: [] for k in cases}
        cpu = {k: [] for k in cases}
        for f in cases.values():
            f()  # warm up
        for _ in range(args.repeat):
            for k, f in cases.items():
                t0, c0 = time.perf_counter(), time.process_time()
                f()
                wall[k].append(time.perf_counter() - t0)
                cpu[k].append(time.process_time() - c0)
        t = {k: statistics.median(v) for k, v in wall.items()}
        c = {k: statistics.median(v) for k, v in cpu.items()}
        rows.append(
            dict(
                threads=j,
                mmfeat_s_per_mpix=t["ours"] / mpix,
                skimage_s_per_mpix=t["peer"] / mpix,
                ratio=t["peer"] / t["ours"],
                ilastik_set_s_per_mpix=t["ilastik"] / mpix,
                mmfeat_cpu_s_per_mpix=c["ours"] / mpix,
                skimage_cpu_s_per_mpix=c["peer"] / mpix,
                cpu_ratio=c["peer"] / c["ours"],
            )
        )
    load = (load_before, os.getloadavg()[0])
    title = (
        f"Pixel features, {n} Weizmann horses at mask size "
        f"({mpix:.2f} Mpx, RGB), seconds per megapixel (median of {args.repeat})"
    )
    print(f"\n{title}\n{machine()}")
    print(f"load average (1 min) before / after: {load[0]:.1f} / {load[1]:.1f}")
    print(f"max |mmfeat - multiscale_basic_features| = {err:.1e}")
    print(
        f"{'threads':>7}  {'mmfeat (skimage set)':>21}  {'skimage':>9}  "
        f"{'ratio':>7}  {'mmfeat (ilastik set)':>21}  {'CPU-time ratio':>15}"
    )
    for r in rows:
        print(
            f"{r['threads']:>7}  {r['mmfeat_s_per_mpix']:>21.3f}  "
            f"{r['skimage_s_per_mpix']:>9.3f}  {r['ratio']:>6.1f}x  "
            f"{r['ilastik_set_s_per_mpix']:>21.3f}  {r['cpu_ratio']:>14.1f}x"
        )
    if args.json:
        import json

        with open(args.json, "w") as fh:
            json.dump(
                {
                    "title": title,
                    "machine": machine(),
                    "load_average": load,
                    "max_abs_diff": err,
                    "rows": rows,
                },
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
