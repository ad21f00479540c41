"""Duplicate and leakage detection: recall, precision, time and memory.

(a) The corrupted fashion sample (``_quality_data.corrupted_fashion``): 2% of
    the training records are copied into the test part with the photo
    re-encoded (JPEG 60, resized by 0.9) and the title lightly edited.
    ``find_duplicates(train, test, columns={"image": "image", "title":
    "text"})`` should find them: recall and precision of those pairs (pairs
    it reports that were not injected count as false positives, although
    some are real near-identical products of the sample).
(b) Synthetic records (a 32x32 picture and a title each, 2% planted near
    copies: brightness +8% and noise; a dropped word or a case change) at
    10k, 30k and 100k rows, one table: time, peak memory (tracemalloc for
    Python/NumPy allocations, and the growth of the process's peak RSS,
    each size in its own process) and recall of the planted pairs.
(c) Hashing speed: mmfeat's pHash (read_image + DCT) against the
    ``imagehash`` package's ``phash`` (PIL) on the same fashion files.

Usage::

    MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_duplicates.py
"""

import multiprocessing as mp
import resource
import tempfile
import time
import tracemalloc

import cv2
import numpy as np
import pandas as pd
from _common import median_time, parser, report, report_table
from _quality_data import corrupted_fashion

from mmfeat.quality._duplicates import (
    _hamming_pairs,
    _image_signature,
    find_duplicates,
)

_WORDS = None


def _rss_mib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def leakage(workdir):
    df = corrupted_fashion(workdir, seed=0)
    train = df[df["split"] == "train"]
    test = df[df["split"] == "test"].reset_index(drop=True)
    pos = {label: k for k, label in enumerate(train.index)}
    truth = {(pos[d], k) for k, d in enumerate(test["duplicate_of"]) if d >= 0}
    train = train.reset_index(drop=True)
    rows = []
    for require in ("all", "any"):
        t0 = time.perf_counter()
        out = find_duplicates(
            train,
            test,
            columns={"image": "image", "title": "text"},
            require=require,
            n_jobs=2,
        )
        seconds = time.perf_counter() - t0
        found = set(zip(out["row"], out["other_row"]))
        tp = len(found & truth)
        rows.append(
            dict(
                case=f"fashion train x test, require={require!r}",
                rows=f"{len(train)} x {len(test)}",
                injected=len(truth),
                reported=len(found),
                recall=tp / len(truth),
                precision=tp / max(len(found), 1),
                seconds=seconds,
            )
        )
    return rows, train, test


def _synthetic(n, seed=0):
    """n records, the last 2% near copies of earlier ones; returns X, truth."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{k:04d}" for k in range(3000)])
    n_dup = n // 50
    n_base = n - n_dup
    small = rng.integers(0, 230, size=(n_base, 8, 8), dtype=np.uint8)
    images = [cv2.resize(s, (32, 32), interpolation=cv2.INTER_LINEAR) for s in small]
    lengths = rng.integers(5, 11, size=n_base)
    titles = [" ".join(rng.choice(vocab, size=k, replace=False)) for k in lengths]
    src = rng.choice(n_base, size=n_dup, replace=False)
    truth = set()
    for k, i in enumerate(src):
        img = images[i].astype(np.float32) * 1.08 + rng.normal(0, 2, (32, 32))
        images.append(np.clip(img, 0, 255).astype(np.uint8))
        words = titles[i].split()
        if k % 2:
            del words[int(rng.integers(len(words)))]
            titles.append(" ".join(words))
        else:
            titles.append(titles[i].upper())
        truth.add((int(i), n_base + k))
    return pd.DataFrame({"image": images, "title": titles}), truth


def _scale_case(n, queue):
    X, truth = _synthetic(n)
    spec = {"image": "image", "title": "text"}
    base_rss = _rss_mib()
    t0 = time.perf_counter()
    out = find_duplicates(X, columns=spec)
    seconds = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()  # a second call: tracing slows allocations down
    find_duplicates(X, columns=spec)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t0 = time.perf_counter()
    find_duplicates(X, columns={"title": "text"})
    text_seconds = time.perf_counter() - t0
    # the bucket search alone, on n random 64-bit hashes (1% near copies)
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2)
    hashes[-n // 100 :] = hashes[: n // 100] ^ np.uint64(0b101)
    t0 = time.perf_counter()
    _hamming_pairs(hashes, 3)
    search_seconds = time.perf_counter() - t0
    found = set(zip(out["row"], out["other_row"]))
    queue.put(
        dict(
            case=f"synthetic image + title, {n:,} rows",
            rows=f"{n:,}",
            planted=len(truth),
            reported=len(found),
            recall=len(found & truth) / len(truth),
            precision=len(found & truth) / max(len(found), 1),
            seconds=seconds,
            text_only_s=text_seconds,
            search_s=search_seconds,
            traced_peak_mib=peak / 2**20,
            rss_growth_mib=peak_rss - base_rss,
            input_mib=n * 32 * 32 / 2**20,
        )
    )


def scale(sizes):
    ctx = mp.get_context("spawn")
    rows = []
    for n in sizes:
        queue = ctx.Queue()
        proc = ctx.Process(target=_scale_case, args=(n, queue))
        proc.start()
        rows.append(queue.get())
        proc.join()
    return rows


def hashing(paths, repeat):
    import imagehash
    from PIL import Image

    def ours():
        for p in paths:
            _image_signature(p)

    def peer():
        for p in paths:
            with Image.open(p) as im:
                imagehash.phash(im)

    return [
        (
            f"pHash of {len(paths)} fashion JPEGs",
            median_time(ours, repeat=repeat),
            median_time(peer, repeat=repeat),
            len(paths),
            "imagehash.phash",
        )
    ]


def main():
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args()
    sizes = [10_000, 30_000, 100_000] + ([300_000] if args.large else [])
    with tempfile.TemporaryDirectory() as workdir:
        fashion, train, _ = leakage(workdir)
        paths = [p for p in train["image"] if not p.startswith(workdir)][:200]
        hashed = hashing(paths, args.repeat)
    report_table(
        "(a) injected train/test duplicates, fashion sample",
        [
            ("case", "case", ""),
            ("rows", "rows", ""),
            ("injected", "injected", "d"),
            ("reported", "reported", "d"),
            ("recall", "recall", ".3f"),
            ("precision", "precision", ".3f"),
            ("seconds", "s", ".2f"),
        ],
        fashion,
        args,
    )
    big = scale(sizes)
    report_table(
        "(b) synthetic records, one table (each size in a fresh process)",
        [
            ("rows", "rows", ""),
            ("planted", "planted", "d"),
            ("reported", "reported", "d"),
            ("recall", "recall", ".3f"),
            ("precision", "precision", ".3f"),
            ("seconds", "image+text s", ".2f"),
            ("text_only_s", "text s", ".2f"),
            ("search_s", "pHash search s", ".3f"),
            ("traced_peak_mib", "traced MiB", ".1f"),
            ("rss_growth_mib", "RSS growth MiB", ".1f"),
            ("input_mib", "input MiB", ".1f"),
        ],
        big,
        args,
    )
    report("(c) image hashing (decode + pHash), 1 thread", hashed, args)


if __name__ == "__main__":
    main()
