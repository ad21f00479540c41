"""Small models and records for the output and table attacks, built in tmp.

``write_models(folder)`` writes ``slowmodel.py``: a classifier over two
numeric columns that can be held in the middle of a run, so a test can
catch the run while it works (kill it, start a second one beside it).
Child processes get ``folder`` on ``PYTHONPATH``, so joblib's workers can
unpickle it too.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd

SLOW_MODEL = '''
import os
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class SlowClassifier(ClassifierMixin, BaseEstimator):
    """Predicts ``a > b``.

    After ``hold_after`` chunks (in one process), and while the file
    ``hold`` exists, a chunk waits (touching ``<hold>.waiting-<pid>``), so a
    test can catch a run at work and let it go on when it wants.
    """

    def __init__(self, hold=None, hold_after=0):
        self.hold = hold
        self.hold_after = hold_after

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(["a", "b"], dtype=object)
        self.n_features_in_ = 2
        return self

    def predict_proba(self, X):
        self.calls_ = getattr(self, "calls_", 0) + 1
        if self.hold and self.calls_ > self.hold_after and os.path.exists(self.hold):
            open(f"{self.hold}.waiting-{os.getpid()}", "w").close()
            while os.path.exists(self.hold):
                time.sleep(0.01)
        X = np.asarray(X, dtype=float)
        p = 1.0 / (1.0 + np.exp(-(X[:, 0] - X[:, 1]) / 10.0))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]
'''


def write_records(path, n, *, seed=0):
    """A CSV (or Parquet) of ``n`` records with numeric columns ``a``, ``b``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": [f"r{i:06d}" for i in range(n)],
            "a": rng.integers(0, 100, n),
            "b": rng.integers(0, 100, n),
        }
    )
    if str(path).endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return frame


def write_models(folder):
    """Write ``slowmodel.py`` into ``folder``; return the folder."""
    (folder / "slowmodel.py").write_text(SLOW_MODEL)
    return folder


def child_env(folder):
    """Environment for a child (and its joblib workers) that imports slowmodel."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(folder), os.getcwd(), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    env.setdefault("NUMBA_NUM_THREADS", "1")
    return env


# a child that scores records.csv with the slow model and prints a JSON summary
SCORE_CHILD = """
import json, sys
from slowmodel import SlowClassifier
from mmfeat.scoring import score_file

records, output, hold, hold_after, chunk_size, n_jobs, resume = sys.argv[1:8]
model = SlowClassifier(hold=hold or None, hold_after=int(hold_after)).fit(None, None)
try:
    summary = score_file(
        model, records, output, chunk_size=int(chunk_size), n_jobs=int(n_jobs),
        id_column="id", resume=resume == "1", model_id="slow",
    )
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    sys.exit(2)
print(json.dumps({k: v for k, v in summary.items() if k != "seconds"}))
"""


def start_scoring(
    folder,
    records,
    output,
    *,
    chunk_size,
    hold=None,
    hold_after=0,
    n_jobs=1,
    resume=False,
    log=None,
):
    """Start a child Python scoring ``records`` into ``output``; return Popen.

    With ``hold`` (a file that exists), the run waits after ``hold_after``
    chunks until the file is removed. With ``log`` (an open file), stdout
    and stderr go there instead of pipes: pipes that surviving workers
    inherited would keep ``communicate()`` waiting for them.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(SCORE_CHILD),
            str(records),
            str(output),
            "" if hold is None else str(hold),
            str(hold_after),
            str(chunk_size),
            str(n_jobs),
            "1" if resume else "0",
        ],
        stdout=subprocess.PIPE if log is None else log,
        stderr=subprocess.PIPE if log is None else log,
        text=True,
        env=child_env(folder),
        cwd=str(folder),
    )
