"""Batch scoring: throughput at --n-jobs 1 and 2, and flat memory.

Fits a HOG + BoVW + TF-IDF late-fusion model with ``mmfeat fit`` on the
fashion sample (photos + titles, article types with >= 50 items), then times
``mmfeat score`` on the sample's records at ``--n-jobs 1`` and ``2`` (rows/s as
the command reports it: reading, extraction, prediction and writing, without
the interpreter start and the model load), and measures the peak RSS of the
scoring process (the operating system's accounting, ``wait4``) for 2,000 and
20,000 records.

``--scale`` (issue 19) scores ``--big`` records (the sample repeated) at
``--n-jobs 1``, ``--n-jobs 2`` and on a 2-worker Dask ``LocalCluster`` on
127.0.0.1 (one thread per worker, started here and passed as
``--scheduler``): rows/s, the scoring process's peak RSS, and the scaling
efficiency (rate / (workers x the 1-worker rate)).

Usage::

    MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_scoring.py
    python benchmarks/bench_scoring.py --repeat 3 --big 20000 --small 2000
    python benchmarks/bench_scoring.py --scale --big 20000
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def _data_home():
    env = os.environ.get("MMFEAT_DATA_HOME")
    return Path(env) if env else HERE.parent.parent / "shared" / "data"


def _mmfeat(*args):
    """Run ``mmfeat``; return its stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "mmfeat", *map(str, args)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"mmfeat {args[0]} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def _peak_rss_mib(*args):
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmfeat", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out = proc.stdout.read()  # until the process closes it, at exit
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)  # its own peak RSS, in KiB
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mmfeat {args[0]} failed")
    return out, usage.ru_maxrss / 1024


def _rate(text):
    return float(re.search(r"\((\d+) rows/s", text).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--big", type=int, default=20000)
    parser.add_argument("--chunk-size", type=int, default=250)
    parser.add_argument(
        "--scale", action="store_true", help="only the 1 / 2 / Dask scaling runs"
    )
    args = parser.parse_args()

    fashion = _data_home() / "fashion_products_sample"
    labels = pd.read_csv(fashion / "labels.csv")
    counts = labels["articleType"].value_counts()
    labels = labels[labels["articleType"].isin(counts[counts >= 50].index)]
    work = Path(tempfile.mkdtemp(prefix="bench_scoring_"))
    (work / "images").symlink_to(fashion / "images")
    labels.to_csv(work / "records.csv", index=False)
    model = work / "model.skops"
    out = _mmfeat(
        "fit",
        "--data",
        work / "records.csv",
        "--image-col",
        "image_file",
        "--text-col",
        "productDisplayName",
        "--label-col",
        "articleType",
        "--image-features",
        "hog,bovw",
        "--fusion",
        "late",
        "--test-size",
        "0.3",
        "-o",
        model,
    )
    print(out)
    print(f"records: {len(labels)} ({labels['articleType'].nunique()} types)")
    if args.scale:
        return _scale(labels, work, model, args)

    rates = {1: [], 2: []}
    for _ in range(args.repeat):
        for n_jobs in (1, 2):
            text = _mmfeat(
                "score",
                model,
                work / "records.csv",
                "-o",
                work / "pred.parquet",
                "--n-jobs",
                n_jobs,
                "--chunk-size",
                args.chunk_size,
                "--id-col",
                "id",
                "--no-progress",
            )
            rates[n_jobs].append(_rate(text))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(
        "\nthroughput, HOG + BoVW + TF-IDF late fusion (rows/s, median of "
        f"{args.repeat}):"
    )
    for k in (1, 2):
        print(f"  --n-jobs {k}: {med[k]:8.1f}   runs {rates[k]}")
    print(f"  speed-up 2 vs 1: {med[2] / med[1]:.2f}x (target >= 1.7x)")

    rss = {}
    for n in (args.small, args.big):
        reps = -(-n // len(labels))
        big = pd.concat([labels] * reps, ignore_index=True).head(n)
        big["id"] = range(n)
        path = work / f"records_{n}.csv"
        big.to_csv(path, index=False)
        text, peak = _peak_rss_mib(
            "score",
            model,
            path,
            "-o",
            work / f"pred_{n}.parquet",
            "--n-jobs",
            1,
            "--chunk-size",
            args.chunk_size,
            "--id-col",
            "id",
            "--no-progress",
        )
        rss[n] = peak
        print(f"\npeak RSS scoring {n:,} rows: {peak:.0f} MiB ({text.strip()})")
    print(
        f"\npeak RSS ratio {args.big:,} / {args.small:,} rows: "
        f"{rss[args.big] / rss[args.small]:.3f} (target <= 1.2)"
    )


def _repeated(labels, work, n):
    reps = -(-n // len(labels))
    big = pd.concat([labels] * reps, ignore_index=True).head(n)
    big["id"] = range(n)
    path = work / f"records_{n}.csv"
    big.to_csv(path, index=False)
    return path


def _own_peak_rss_mib():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _scale(labels, work, model, args):
    """Score ``args.big`` rows at 1 and 2 workers and on a local Dask cluster."""
    from dask.distributed import Client, LocalCluster

    path = _repeated(labels, work, args.big)
    common = ["--chunk-size", args.chunk_size, "--id-col", "id", "--no-progress"]
    results = {}
    for name, extra in (
        ("--n-jobs 1", ["--n-jobs", 1]),
        ("--n-jobs 2", ["--n-jobs", 2]),
    ):
        text, peak = _peak_rss_mib(
            "score", model, path, "-o", work / "pred_scale.parquet", *extra, *common
        )
        results[name] = (_rate(text), peak)
        print(f"{name}: {text.strip()}  peak RSS {peak:.0f} MiB", flush=True)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        text, peak = _peak_rss_mib(
            "score",
            model,
            path,
            "-o",
            work / "pred_scale.parquet",
            "--scheduler",
            cluster.scheduler_address,
            *common,
        )
        with Client(cluster) as client:  # each worker's own peak RSS
            worker_rss = list(client.run(_own_peak_rss_mib).values())
    name = "Dask LocalCluster, 2 workers"
    results[name] = (_rate(text), peak)
    print(
        f"{name}: {text.strip()}  client peak RSS {peak:.0f} MiB, worker peak RSS "
        f" {', '.join(f'{r:.0f}' for r in worker_rss)} MiB",
        flush=True,
    )
    one = results["--n-jobs 1"][0]
    print(f"\nscoring {args.big:,} records, HOG + BoVW + TF-IDF late fusion")
    print(f"{'run':<32}{'rows/s':>8}{'speed-up':>10}{'efficiency':>12}{'peak RSS':>10}")
    for name, (rate, peak) in results.items():
        workers = 1 if name.endswith(" 1") else 2
        print(
            f"{name:<32}{rate:>8.0f}{rate / one:>9.2f}x{rate / one / workers:>11.0%}"
            f"{peak:>7.0f} MiB"
        )


if __name__ == "__main__":
    main()
