import json
import os
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
