"""Cold start: a fresh process's time to its first HOG / MFCC / colour / BoVW output.

Run: ``MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_cold_start.py
[--repeat N]``.

Each case is a new Python process that imports mmfeat, unpickles one fitted
extractor and transforms one item (a fashion photo, or an FSDD recording for
MFCC). Three times are reported, medians of ``--repeat`` processes: the
process's wall time as its parent sees it (interpreter start included), and
inside it, the time to import mmfeat and the extractor's module, and the time
of the first ``transform`` (where numba loads, or compiles, its kernels).

- **cold**: an empty numba cache (``MMFEAT_CACHE_DIR`` pointing at a new
  folder), so every kernel the transform needs is compiled;
- **warm**: the same folder after the cold run;
- **read-only install**: mmfeat installed with ``pip install --target`` into a
  folder made read-only (as a system site-packages is), imported from there,
  cold then warm; the package folder must stay free of cache files;
- **score workers**: ``mmfeat score --n-jobs 2`` on 40 records with a small
  HOG + TF-IDF model, run twice on one fresh cache folder: the second run's
  worker processes must write no new cache files (they load what the first
  run compiled).

Target (issue 19): <= 1 s to the first output with a warm cache.
"""

import os
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import machine, parser

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CHILD = r"""
import sys, time
t0 = time.perf_counter()
import pickle
import mmfeat, mmfeat.features.image, mmfeat.features.audio
t1 = time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    est = pickle.load(fh)
out = est.transform([sys.argv[2]])
t2 = time.perf_counter()
assert out.shape[0] == 1
print(f"{t1 - t0:.4f} {t2 - t1:.4f} {mmfeat.__file__}")
"""


def _data_home():
    env = os.environ.get("MMFEAT_DATA_HOME")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _child(pickle_path, item, cache, pythonpath=None):
    env = dict(os.environ, MMFEAT_CACHE_DIR=str(cache))
    env.pop("NUMBA_CACHE_DIR", None)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(pickle_path), str(item)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),  # never the repository's own mmfeat
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    imp, first, where = proc.stdout.split()
    return wall, float(imp), float(first), where


def _cases(work, fashion, fsdd):
    from mmfeat.features.audio import MFCCExtractor
    from mmfeat.features.image import (
        ColorHistogramExtractor,
        HOGExtractor,
        SIFTBoVWExtractor,
    )

    photos = [
        str(fashion / p) for p in pd.read_csv(fashion / "labels.csv")["image_file"][:20]
    ]
    wav = str(sorted((fsdd / "recordings").glob("*.wav"))[0])
    import pickle

    cases = {}
    for name, est, fit_on, item in (
        ("HOG", HOGExtractor(), photos[:2], photos[0]),
        ("colour histogram", ColorHistogramExtractor(), photos[:2], photos[0]),
        (
            "SIFT BoVW",
            SIFTBoVWExtractor(n_words=32, random_state=0),
            photos,
            photos[0],
        ),
        ("MFCC", MFCCExtractor(), [wav], wav),
    ):
        est.fit(fit_on)
        path = work / f"{name.replace(' ', '_')}.pkl"
        with open(path, "wb") as fh:
            pickle.dump(est, fh)
        cases[name] = (path, item)
    return cases


def _cache_files(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.suffix in (".nbi", ".nbc"))


def _row(label, runs):
    wall = statistics.median(r[0] for r in runs)
    imp = statistics.median(r[1] for r in runs)
    first = statistics.median(r[2] for r in runs)
    print(f"  {label:<34}{wall:>8.2f}{imp:>9.2f}{first:>9.2f}")
    return wall


def _read_only_install(work):
    target = work / "ro_site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    for root, dirs, files in os.walk(target):
        for name in dirs + files:
            p = os.path.join(root, name)
            os.chmod(
                p, os.stat(p).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
            )
    os.chmod(target, 0o555)
    return target


def _score_workers(work, fashion, args):
    labels = pd.read_csv(fashion / "labels.csv")
    counts = labels["articleType"].value_counts()
    labels = labels[labels["articleType"].isin(counts.index[:3])].head(120)
    (work / "images").symlink_to(fashion / "images")
    labels.to_csv(work / "records.csv", index=False)
    labels.head(40).to_csv(work / "score.csv", index=False)
    cache = work / "score_cache"
    env = dict(os.environ, MMFEAT_CACHE_DIR=str(cache))
    env.pop("NUMBA_CACHE_DIR", None)

    def mmfeat(*argv):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mmfeat", *map(str, argv)],
            check=True,
            capture_output=True,
            env=env,
            cwd=work,
        )
        return time.perf_counter() - t0

    mmfeat(
        "fit", "--data", work / "records.csv", "--image-col", "image_file",
        "--text-col", "productDisplayName", "--label-col", "articleType",
        "--image-features", "hog", "--fusion", "late", "-o", work / "model.skops",
    )  # fmt: skip
    score = (
        "score", work / "model.skops", work / "score.csv", "-o", work / "p.csv",
        "--n-jobs", 2, "--chunk-size", 10, "--no-progress",
    )  # fmt: skip
    shutil.rmtree(cache, ignore_errors=True)
    first = mmfeat(*score)
    before = {p: p.stat().st_mtime_ns for p in _cache_files(cache)}
    walls = [mmfeat(*score) for _ in range(args.repeat)]
    after = {p: p.stat().st_mtime_ns for p in _cache_files(cache)}
    new = [p for p in after if p not in before]
    rewritten = [p for p in after if p in before and after[p] != before[p]]
    print("\nmmfeat score --n-jobs 2, 40 records, HOG + TF-IDF late fusion (s):")
    print(f"  first run, empty cache           {first:8.2f}")
    print(f"  later runs (median)              {statistics.median(walls):8.2f}")
    print(
        f"  cache files after the first run: {len(before)}; written by the later "
        f"runs: {len(new)} new, {len(rewritten)} rewritten"
    )
    return not new and not rewritten


def main():
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(repeat=5)
    args = p.parse_args()
    data = _data_home()
    fashion, fsdd = data / "fashion_products_sample", data / "fsdd"
    work = Path(tempfile.mkdtemp(prefix="bench_cold_start_"))
    try:
        cases = _cases(work, fashion, fsdd)
        print(f"\nCold start, one item per fresh process\n{machine()}")
        print(f"  {'case':<34}{'wall s':>8}{'import':>9}{'first':>9}")
        worst_warm = 0.0
        for name, (path, item) in cases.items():
            cold = []
            for i in range(args.repeat):
                cache = work / f"cache_{name.replace(' ', '_')}_{i}"
                cold.append(_child(path, item, cache))
            _row(f"{name}, cold cache", cold)
            warm = [_child(path, item, cache) for _ in range(args.repeat)]
            worst_warm = max(worst_warm, _row(f"{name}, warm cache", warm))

        target = _read_only_install(work)
        path, item = cases["HOG"]
        cache = work / "cache_ro"
        cold = [_child(path, item, cache, pythonpath=target)]
        where = cold[0][3]
        assert where.startswith(str(target)), where
        _row("HOG, read-only install, cold", cold)
        warm = [
            _child(path, item, cache, pythonpath=target) for _ in range(args.repeat)
        ]
        _row("HOG, read-only install, warm", warm)
        stray = [
            p
            for p in target.rglob("*")
            if p.suffix in (".nbi", ".nbc") or p.name == "numba"
        ]
        print(f"  cache files inside the read-only package: {len(stray)}")
        print(f"  (imported from {where})")

        clean = _score_workers(work, fashion, args)
        print(
            f"\nwarm-cache wall time, worst extractor: {worst_warm:.2f} s "
            f"(target <= 1 s); score workers reuse the cache: {clean}"
        )
    finally:
        for root, dirs, _ in os.walk(work):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        os.chmod(work, 0o755)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
