"""Scoring and the CLI under hostile model files, records and machines.

Promises, one test (or two) each:

- A model file cannot choose how many threads or processes run: a saved
  model whose extractors and classifiers ask for ``n_jobs=20000`` runs with
  one thread (and one BLAS/OpenCV thread) in ``mmfeat extract`` and
  ``mmfeat score`` alike; ``--n-jobs`` above the machine's cores is lowered.
- One record that runs the model out of memory is that record's error (an
  error-report line saying "out of memory"), the other records are scored,
  in ``score_file`` and in ``mmfeat score`` with worker processes; with
  ``on_error="raise"`` it is an ``InputError`` naming the row. A chunk where
  every record runs out of memory stops the run with one line (the machine,
  not a record, is short of memory).
- With ``confine_to_root`` (``--confine-to-root``), image paths that leave
  the root (``..``, absolute, or a symlink pointing out) are not read, are
  reported per row, and the rows are kept; paths under the root still work.
  Without it, such paths are read (the documented default).
- A command that cannot write (missing folder, a file where a folder should
  be, a file-size limit) ends with one ``mmfeat <command>: error:`` line and
  what to do, status 2, no traceback, and is not killed by ``SIGXFSZ``.

Every attack is built here, in ``tmp_path``. Tests that could start threads
or allocate if a defence regressed run in a child under an address-space
limit and a timeout (``_limits.run_limited``), or behind a guard that fails
the test instead of starting the threads.
"""

import json
import os
import sys

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import mmfeat
from mmfeat import InputError, ParameterError
from mmfeat.cli import main
from mmfeat.features.image import HOGExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import LateFusionClassifier
from mmfeat.scoring import BatchScorer, score_file
from tests.scoring._records import absolute, make_records
from tests.security._limits import run_limited

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ATTACK_N_JOBS = 20000


def _image_title_model(folder, n=16):
    """A late-fusion HOG + title model fitted on ``n`` records in ``folder``."""
    records = make_records(folder, n=n)
    records.to_csv(folder / "records.csv", index=False)
    X = absolute(records, folder)[["image", "title"]]
    hog = HOGExtractor(
        image_size=(32, 32), pixels_per_cell=(8, 8), cells_per_block=(2, 2)
    )
    model = LateFusionClassifier(
        [
            ("image", make_pipeline(hog, LogisticRegression()), "image"),
            ("title", make_pipeline(TfidfExtractor(), LogisticRegression()), "title"),
        ],
        cv=2,
    ).fit(X, records["label"])
    return model, records


def _last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- a model file cannot choose its threads ----------------------------------
_THREAD_PROBE = """
import json, os, sys, threading, time
sys.path.insert(0, {repo!r})
import cv2
import joblib
from threadpoolctl import threadpool_info
from mmfeat.cli import main
from mmfeat.features.image import HOGExtractor

GUARD = joblib.cpu_count()
seen = {{"hog": [], "parallel": [], "cv2": [], "blas": [], "threads": 0}}

def busiest():
    while True:
        seen["threads"] = max(seen["threads"], len(os.listdir("/proc/self/task")))
        time.sleep(0.005)

threading.Thread(target=busiest, daemon=True).start()

init = joblib.Parallel.__init__
def counted_init(self, *args, **kwargs):
    n = kwargs.get("n_jobs", args[0] if args else None)
    seen["parallel"].append(n)
    if n is not None and joblib.effective_n_jobs(n) > GUARD:
        # the defence regressed: fail here instead of starting the threads
        raise SystemExit("Parallel(n_jobs=%r) asked for" % (n,))
    init(self, *args, **kwargs)
joblib.Parallel.__init__ = counted_init

transform = HOGExtractor.transform
def watched(self, X):
    n = self.get_params()["n_jobs"]
    seen["hog"].append(n)
    seen["cv2"].append(cv2.getNumThreads())
    seen["blas"].extend(
        i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"
    )
    if n is not None and joblib.effective_n_jobs(n) > GUARD:
        raise SystemExit("HOGExtractor(n_jobs=%r) asked for" % (n,))
    return transform(self, X)
HOGExtractor.transform = watched

status = {{}}
for name, argv in {runs!r}.items():
    before = {{k: len(v) for k, v in seen.items() if isinstance(v, list)}}
    status[name] = main(argv)
    status[name + "_hog"] = seen["hog"][before["hog"]:]
time.sleep(0.05)
print(json.dumps({{"status": status, **seen, "cores": GUARD}}))
"""


def test_model_file_asking_for_20000_threads_runs_one_in_extract_and_score(tmp_path):
    model, _ = _image_title_model(tmp_path)
    # the attack: every fitted part asks for 20000 threads (public set_params)
    model.set_params(n_jobs=ATTACK_N_JOBS)
    for pipe in model.named_estimators_.values():
        pipe.set_params(
            **{k: ATTACK_N_JOBS for k in pipe.get_params() if k.endswith("n_jobs")}
        )
    assert model.named_estimators_["image"][0].n_jobs == ATTACK_N_JOBS
    path = mmfeat.save(model, tmp_path / "greedy.skops")
    records = str(tmp_path / "records.csv")
    runs = {
        "extract": ["extract", str(path), records, "--modality", "image", "-o"]
        + [str(tmp_path / "f.parquet")],
        "score": ["score", str(path), records, "-o", str(tmp_path / "p.csv")]
        + ["--no-progress"],
        "extract_flag": ["extract", str(path), records, "--modality", "image"]
        + ["-o", str(tmp_path / "g.parquet"), "--n-jobs", str(ATTACK_N_JOBS)],
    }
    out = run_limited(
        _THREAD_PROBE.format(repo=REPO, runs=runs), memory_mb=1024, timeout=240
    )
    assert not out.timed_out and not out.crashed, out.stderr[-2000:]
    got = out.result
    assert got is not None, out.stderr[-2000:]
    assert got["status"] == {
        "extract": 0,
        "score": 0,
        "extract_flag": 0,
        "extract_hog": got["status"]["extract_hog"],
        "score_hog": got["status"]["score_hog"],
        "extract_flag_hog": got["status"]["extract_flag_hog"],
    }, out.stderr[-2000:]
    # the extractor ran, and with one thread, on both paths
    assert got["status"]["extract_hog"] and set(got["status"]["extract_hog"]) == {1}
    assert got["status"]["score_hog"] and set(got["status"]["score_hog"]) == {1}
    # --n-jobs 20000 is lowered to the cores, not obeyed
    assert set(got["status"]["extract_flag_hog"]) == {got["cores"]}
    assert f"more than the {got['cores']} cores" in out.stderr
    assert all(n in (None, 1, got["cores"]) for n in got["parallel"])
    assert set(got["cv2"][:2]) == {1} and set(got["blas"]) <= {1, got["cores"]}
    assert got["threads"] < 200  # the unpatched extract started 19,835


# -- one record out of memory -------------------------------------------------
_CLAIMED_SIZE = '''
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class ClaimedSize(TransformerMixin, BaseEstimator):
    """Reads a file whose first line says how many bytes to decode into.

    A file claiming 2**62 bytes makes the allocation fail (MemoryError), as
    a decompression bomb would.
    """

    def fit(self, X, y=None):
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        items = np.asarray(X, dtype=object).ravel().tolist()
        out = []
        for path in items:
            with open(path, encoding="utf-8") as fh:
                n = int(fh.readline())
            buf = np.zeros(n, dtype=np.uint8)
            out.append([float(len(buf) + buf.sum())])
        return np.asarray(out)
'''

BOMB_ROWS = {3: "titled", 6: "untitled"}


def _claimed_size_case(folder):
    """A model over blob files + titles, and records with two bomb rows."""
    (folder / "oomitems.py").write_text(_CLAIMED_SIZE)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    from oomitems import ClaimedSize

    (folder / "blobs").mkdir()
    rows = []
    for i in range(16):
        label = "big" if i % 2 else "small"
        blob = folder / "blobs" / f"{i}.txt"
        blob.write_text(f"{(50 if label == 'big' else 10) + i % 3}\n")
        words = "large heavy bulky" if label == "big" else "tiny light small"
        rows.append({"id": f"r{i}", "blob": str(blob), "title": words, "label": label})
    train = pd.DataFrame(rows)
    model = LateFusionClassifier(
        [
            ("blob", make_pipeline(ClaimedSize(), LogisticRegression()), "blob"),
            ("title", make_pipeline(TfidfExtractor(), LogisticRegression()), "title"),
        ],
        cv=2,
    ).fit(train[["blob", "title"]], train["label"])
    records = train.copy()
    for row, kind in BOMB_ROWS.items():
        bomb = folder / "blobs" / f"bomb{row}.txt"
        bomb.write_text(f"{2**62}\n")  # 4 EiB: the allocation cannot succeed
        records.loc[row, "blob"] = str(bomb)
        if kind == "untitled":
            records.loc[row, "title"] = None
    records.to_csv(folder / "records.csv", index=False)
    return model, records


def _check_bomb_rows(pred, errors, n=16):
    assert len(pred) == n
    untitled = [r for r, kind in BOMB_ROWS.items() if kind == "untitled"]
    assert pred["predict"].isna().tolist() == [i in untitled for i in range(n)]
    for row in BOMB_ROWS:
        mine = errors[errors["row"] == row]
        assert mine["reason"].str.contains("out of memory").any(), mine
        assert mine["reason"].str.contains("MemoryError").any(), mine
    # the titled bomb row is scored from its title; its error names the column
    titled = errors[errors["row"] == 3]
    assert titled["column"].tolist() == ["blob"]
    assert set(errors["row"]) == set(BOMB_ROWS)  # no other row is blamed


def test_out_of_memory_record_is_its_rows_error_and_score_file_goes_on(tmp_path):
    model, _ = _claimed_size_case(tmp_path)
    summary = score_file(
        model, tmp_path / "records.csv", tmp_path / "p.csv", chunk_size=8
    )
    assert summary["rows"] == 16 and summary["unscored"] == 1
    pred = pd.read_csv(tmp_path / "p.csv")
    errors = pd.read_csv(tmp_path / "p.errors.csv")
    _check_bomb_rows(pred, errors)


def test_out_of_memory_record_raises_an_input_error_naming_its_row(tmp_path):
    model, records = _claimed_size_case(tmp_path)
    scorer = BatchScorer(model, on_error="raise")
    with pytest.raises(InputError, match="out of memory") as info:
        scorer.score(records, start=100)
    assert info.value.row == 103
    assert "MemoryError" in info.value.reason


def test_a_machine_out_of_memory_stops_the_run_in_one_line(
    tmp_path, capsys, monkeypatch
):
    model, records = _claimed_size_case(tmp_path)
    path = mmfeat.save(model, tmp_path / "m.skops")
    calls = []

    def no_memory_left(self, X):
        calls.append(len(X))
        raise MemoryError("simulated: no memory left on this machine")

    # the machine, not a record: every attempt fails, whatever the rows
    monkeypatch.setattr(
        LateFusionClassifier, "predict_proba_with_presence", no_memory_left
    )
    with pytest.raises(MemoryError, match="every one of the 16 records"):
        BatchScorer(model).score(records)
    # halving, then each row without each modality: bounded, not retried per row
    assert len(calls) <= 2 * 16 - 1 + 16 * 2
    status = main(
        ["score", str(path), str(tmp_path / "records.csv"), "-o"]
        + [str(tmp_path / "b.csv"), "--chunk-size", "8", "--no-progress"]
        + ["--trusted", "oomitems.ClaimedSize"]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("mmfeat score: error: out of memory")
    assert "--chunk-size" in err and "--resume" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "b.csv")


_CLI_SCORE = """
import json, sys
sys.path.insert(0, {repo!r})
from mmfeat.cli import main
print(json.dumps(main({argv!r})))
"""


def test_mmfeat_score_reports_the_out_of_memory_record_from_its_workers(tmp_path):
    model, _ = _claimed_size_case(tmp_path)
    path = mmfeat.save(model, tmp_path / "m.skops")
    argv = ["score", str(path), str(tmp_path / "records.csv"), "-o"]
    argv += [str(tmp_path / "p.parquet"), "--chunk-size", "4", "--n-jobs", "2"]
    argv += ["--no-progress", "--trusted", "oomitems.ClaimedSize"]
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), REPO])}
    out = run_limited(
        _CLI_SCORE.format(repo=REPO, argv=argv), memory_mb=1024, timeout=240, env=env
    )
    assert not out.timed_out and not out.crashed, out.stderr[-2000:]
    assert out.result == 0, out.stderr[-2000:]
    assert "16 records" in out.stdout and "15 with a prediction" in out.stdout
    pred = pd.read_parquet(tmp_path / "p.parquet")
    errors = pd.read_csv(tmp_path / "p.errors.csv")
    _check_bomb_rows(pred, errors)


# -- paths confined to the root -----------------------------------------------
def _escape_routes(tmp_path):
    """Records under ``root`` naming a real image outside it three ways."""
    root = tmp_path / "root"
    root.mkdir()
    model, records = _image_title_model(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    secret.write_bytes((root / records.loc[0, "image"]).read_bytes())
    (root / "images" / "link.png").symlink_to(secret)
    routes = {
        1: "../outside/secret.png",  # relative, climbing out
        2: str(secret),  # absolute
        3: "images/link.png",  # a symlink inside the root pointing out
    }
    for row, value in routes.items():
        records.loc[row, "image"] = value
    records.to_csv(root / "records.csv", index=False)
    return model, records, root, routes


def _check_refused(errors, routes, n):
    refused = errors[errors["reason"].str.contains("resolves outside the root")]
    assert sorted(refused["row"]) == sorted(routes)
    assert set(refused["column"]) == {"image"}
    assert set(refused["source"]) == set(routes.values())
    assert len(errors) == len(routes)  # the paths inside the root read fine
    assert n == 16


def test_confine_to_root_refuses_escaping_paths_and_keeps_their_rows(tmp_path):
    model, records, root, routes = _escape_routes(tmp_path)
    # without confinement every route is read: the documented default
    _, open_errors = BatchScorer(model, root=root).score(records)
    assert open_errors.empty
    summary = score_file(
        model, root / "records.csv", tmp_path / "p.csv", confine_to_root=True
    )
    pred = pd.read_csv(tmp_path / "p.csv")
    errors = pd.read_csv(tmp_path / "p.errors.csv")
    assert summary["unscored"] == 0 and pred["predict"].notna().all()
    _check_refused(errors, routes, len(pred))
    _, found = BatchScorer(model, root=root, confine_to_root=True).score(records)
    _check_refused(found, routes, len(records))
    with pytest.raises(InputError, match="resolves outside the root") as info:
        BatchScorer(model, root=root, confine_to_root=True, on_error="raise").score(
            records
        )
    assert info.value.row == 1 and info.value.source == routes[1]
    with pytest.raises(ParameterError, match="needs a root"):
        BatchScorer(model, confine_to_root=True)


def test_confine_to_root_flag_in_score_extract_and_fit(tmp_path, capsys):
    model, records, root, routes = _escape_routes(tmp_path)
    path = mmfeat.save(model, tmp_path / "m.skops")
    data = str(root / "records.csv")
    status = main(
        ["score", str(path), data, "-o", str(tmp_path / "p.csv"), "--no-progress"]
        + ["--confine-to-root"]
    )
    assert status == 0, capsys.readouterr().err
    _check_refused(pd.read_csv(tmp_path / "p.errors.csv"), routes, 16)
    status = main(
        ["extract", str(path), data, "--modality", "image", "--confine-to-root"]
        + ["-o", str(tmp_path / "f.parquet")]
    )
    assert status == 0, capsys.readouterr().err
    feats = pd.read_parquet(tmp_path / "f.parquet")
    assert len(feats) == 16
    assert feats.iloc[sorted(routes), 1:].isna().all(axis=None)  # never read
    assert feats.drop(index=list(routes)).iloc[:, 1:].notna().all(axis=None)
    _check_refused(pd.read_csv(tmp_path / "f.errors.csv"), routes, 16)
    capsys.readouterr()
    status = main(
        ["fit", "--data", data, "--image-col", "image", "--text-col", "title"]
        + ["--label-col", "label", "--image-features", "hog", "--test-size", "0"]
        + ["--confine-to-root", "-o", str(tmp_path / "fit.skops")]
    )
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "3 path(s) in 'image' resolve outside" in out.err
    assert "(rows [1, 2, 3])" in out.err


# -- writing fails: one line, what to do -------------------------------------
def test_unwritable_outputs_are_one_error_line_before_any_work(tmp_path, capsys):
    model, _ = _image_title_model(tmp_path)
    path = str(mmfeat.save(model, tmp_path / "m.skops"))
    data = str(tmp_path / "records.csv")
    (tmp_path / "plain").write_text("a file, not a folder")
    for where in ("missing/sub/p.parquet", "plain/p.parquet"):
        out = str(tmp_path / where)
        for argv in (
            ["score", path, data, "-o", out, "--no-progress"],
            ["extract", path, data, "--modality", "image", "-o", out],
            ["fit", "--data", data, "--text-col", "title", "--label-col", "label"]
            + ["-o", out.replace(".parquet", ".skops")],
        ):
            status = main(argv)
            said = capsys.readouterr()
            assert status == 2, (argv, said.err)
            assert said.err.startswith(f"mmfeat {argv[0]}: error: "), said.err
            assert len(said.err.strip().splitlines()) == 1, said.err
            assert "Traceback" not in said.err
            assert "create the folder" in said.err or "not a folder" in said.err
            assert "held-out" not in said.out and "records," not in said.out
            assert not os.path.exists(out)


_FILE_LIMIT = """
import json, resource, sys
sys.path.insert(0, {repo!r})
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from mmfeat.cli import main
print(json.dumps([main(argv) for argv in {runs!r}]))
"""


def test_file_size_limit_is_one_error_line_not_a_kill(tmp_path):
    model, records = _image_title_model(tmp_path)
    path = str(mmfeat.save(model, tmp_path / "m.skops"))
    big = pd.concat([records] * 40, ignore_index=True)  # 640 rows
    big.to_csv(tmp_path / "big.csv", index=False)
    size = os.path.getsize(path)
    limit = 16 * 1024
    assert size > limit  # the model file alone would not fit
    runs = [
        ["score", path, str(tmp_path / "big.csv"), "-o", str(tmp_path / "p.csv")]
        + ["--no-progress", "--chunk-size", "640"],
        ["fit", "--data", str(tmp_path / "records.csv"), "--text-col", "title"]
        + ["--label-col", "label", "--test-size", "0", "-o"]
        + [str(tmp_path / "fit.skops")],
    ]
    out = run_limited(
        _FILE_LIMIT.format(repo=REPO, limit=limit, runs=runs),
        memory_mb=1024,
        timeout=240,
    )
    assert not out.crashed, f"killed by signal {-out.returncode}: {out.stderr[-800:]}"
    assert not out.timed_out
    assert out.result == [2, 2], out.stderr[-2000:]
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("mmfeat ")]
    assert [ln.split(":")[0] for ln in lines] == ["mmfeat score", "mmfeat fit"]
    assert "ulimit -f" in lines[0], lines[0]
    # mmfeat.save words EFBIG as a type problem (see the report): at least
    # the errno's reason is in the one line
    assert "File too large" in lines[1] or "ulimit -f" in lines[1], lines[1]
    assert "Traceback" not in out.stderr
    assert not os.path.exists(tmp_path / "p.csv")
    assert json.loads(_last_line(out.stdout)) == [2, 2]
