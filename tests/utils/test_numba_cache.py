import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mmfeat


def test_kernels_cache_in_the_user_cache_dir_never_inside_the_package(tmp_path):
    package = Path(mmfeat.__file__).parent
    start = time.time() - 1
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["MMFEAT_CACHE_DIR"] = str(tmp_path / "cache")
    code = textwrap.dedent(
        """
        import json
        import numba
        import numpy as np
        from mmfeat.features.image import ColorHistogramExtractor
        from mmfeat.utils._numba import cache_dir
        ColorHistogramExtractor().fit().transform(np.zeros((2, 8, 8, 3)))
        print(json.dumps([numba.config.CACHE_DIR, cache_dir()]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    used, expected = json.loads(proc.stdout.strip().splitlines()[-1])
    assert used == expected == str(tmp_path / "cache" / "numba")
    assert list((tmp_path / "cache" / "numba").rglob("*.nbi"))
    fresh = [p for p in package.rglob("*.nb[ic]") if p.stat().st_mtime >= start]
    assert fresh == []


def test_a_user_chosen_numba_cache_dir_is_kept(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "mine"))
    code = "import numba, mmfeat.utils._numba; print(numba.config.CACHE_DIR)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "mine")


def _make_read_only(root):
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


def _make_writable(root):
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o755)


def test_the_cache_works_from_a_read_only_install(tmp_path):
    # A copy of the package in a read-only folder, as a system site-packages:
    # the first process compiles into the user cache, the second loads the
    # kernel from it (a cache hit, no new file), and the package stays clean.
    # (Run as root the mode bits are not enforced; what is checked then is
    # that nothing is written beside the sources and the hit comes from the
    # user cache.)
    site = tmp_path / "site"
    shutil.copytree(
        Path(mmfeat.__file__).parent,
        site / "mmfeat",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    _make_read_only(site)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["MMFEAT_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(site)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    code = textwrap.dedent(
        """
        import json
        import numpy as np
        import mmfeat
        from mmfeat.features.image import ColorHistogramExtractor
        from mmfeat.features.image._color_kernels import _hsv_histograms
        ColorHistogramExtractor().fit().transform(np.zeros((2, 8, 8, 3)))
        stats = _hsv_histograms.stats
        print(json.dumps([mmfeat.__file__, sum(stats.cache_hits.values()),
                          sum(stats.cache_misses.values())]))
        """
    )
    runs = []
    try:
        for _ in range(2):
            proc = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
                stdin=subprocess.DEVNULL,
                cwd=tmp_path,
            )
            assert proc.returncode == 0, proc.stderr
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            files = sorted((tmp_path / "cache").rglob("*.nb[ic]"))
            runs[-1].append([(str(p), p.stat().st_mtime_ns) for p in files])
        (where, hits1, misses1, files1), (_, hits2, misses2, files2) = runs
        assert where.startswith(str(site))
        assert (hits1, misses1) == (0, 1)  # compiled and written to the cache
        assert (hits2, misses2) == (1, 0)  # loaded from it
        assert files1 and files2 == files1  # nothing new, nothing rewritten
        assert not [p for p in site.rglob("*") if p.suffix in (".nbi", ".nbc")]
    finally:
        _make_writable(site)
