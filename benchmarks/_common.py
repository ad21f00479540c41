"""Shared helpers for the benchmark scripts: timing, tables, JSON output."""

import argparse
import json
import os
import platform
import statistics
import time


def parser(description):
    """Return a parser with the common ``--json``, ``--repeat`` and ``--large``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    p.add_argument("--large", action="store_true", help="bigger inputs")
    return p


#: Seconds to wait before a case: the previous case's idle thread pools
#: must not take cores from this one (OpenBLAS's workers spin about 0.1 s
#: after a multi-threaded call; mmfeat's 2-thread MFCC on a 60 s clip ran
#: at half speed right after the librosa peer's run).
SETTLE_S = 0.3


def median_time(func, *, repeat):
    """Settle, warm up with one call, time ``repeat`` calls; return the median (s)."""
    time.sleep(SETTLE_S)
    func()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine():
    """One line naming the machine the numbers came from."""
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def report(title, rows, args, *, unit="items/s"):
    """Print rows of (case, mmfeat_s, peer_s, n_items, peer_name) and the ratios."""
    print(f"\n{title}\n{machine()}")
    print(f"{'case':<40}{'mmfeat ' + unit:>18}{'peer ' + unit:>16}{'ratio':>8}  peer")
    out = []
    for case, ours, peer, n, peer_name in rows:
        ratio = peer / ours
        print(
            f"{case:<40}{n / ours:>18,.0f}{n / peer:>16,.0f}{ratio:>7.2f}x  {peer_name}"
        )
        out.append(
            dict(
                case=case, mmfeat_s=ours, peer_s=peer, n=n, ratio=ratio, peer=peer_name
            )
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"title": title, "machine": machine(), "rows": out}, fh, indent=2)
    return out


def report_table(title, columns, rows, args, *, extra=None):
    """Print ``rows`` (dicts) under ``columns`` (key, header, format); JSON too.

    ``format`` is a format spec such as ``".2%"``; ``""`` marks a text column
    (left-aligned). A missing value prints as an empty cell. ``extra`` is
    stored beside the rows in the JSON.
    """
    print(f"\n{title}\n{machine()}")
    cells = [
        [
            "" if row.get(key) is None else format(row[key], fmt)
            for key, _, fmt in columns
        ]
        for row in rows
    ]
    widths = [
        max([len(header)] + [len(c[i]) for c in cells])
        for i, (_, header, _) in enumerate(columns)
    ]
    left = [fmt == "" for _, _, fmt in columns]  # text left, numbers right

    def join(values):
        return "  ".join(
            v.ljust(w) if lft else v.rjust(w) for v, w, lft in zip(values, widths, left)
        ).rstrip()

    line = join([h for _, h, _ in columns])
    print(line)
    print("-" * len(line))
    for c in cells:
        print(join(c))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"title": title, "machine": machine(), "rows": rows, **(extra or {})},
                fh,
                indent=2,
                default=str,
            )
