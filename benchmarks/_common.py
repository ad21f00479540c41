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


def median_time(func, *, repeat):
    """Warm up with one call, then time ``repeat`` calls; return the median (s)."""
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
