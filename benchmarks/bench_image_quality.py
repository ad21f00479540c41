"""Image-issue detection: mmfeat's find_image_issues vs cleanvision's Imagelab.

Both tools read the same JPEG files of the corrupted fashion sample
(``_quality_data.corrupted_fashion``: 3% of the photos blurred, darkened or
over-exposed, the truth in ``image_issue``) in the same run. For each issue
type (blurry, dark, light) it prints each tool's precision and recall at its
defaults (mmfeat's "auto" and "fixed" thresholds), mmfeat's recall at
cleanvision's precision (mmfeat's threshold on its own score chosen to reach
that precision; precision 1.0 where cleanvision flags nothing), the average
precision of each tool's score, and the throughput of both (median of
``--repeat`` runs): cleanvision with its own ``multiprocessing`` pool at
``n_jobs=1`` and ``2``, mmfeat at ``n_jobs=1`` and ``2``.

Run: ``MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_image_quality.py``
"""

import contextlib
import io
import tempfile
import warnings

import numpy as np
from _common import machine, median_time, parser, report, report_table
from _quality_data import corrupted_fashion
from sklearn.metrics import average_precision_score

from mmfeat.features.image import ImageQuality
from mmfeat.quality import find_image_issues
from mmfeat.quality._image import _RULES

ISSUES = ("blurry", "dark", "light")


def _cleanvision(paths, n_jobs):
    from cleanvision import Imagelab

    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            lab = Imagelab(filepaths=list(paths))
            lab.find_issues({t: {} for t in ISSUES}, n_jobs=n_jobs, verbose=False)
    return lab.issues


def _pr(pred, truth):
    tp = int((pred & truth).sum())
    flagged = int(pred.sum())
    precision = tp / flagged if flagged else None
    return flagged, precision, tp / truth.sum()


def _recall_at_precision(score, truth, target):
    """Best recall of ``score >= t`` (higher: more of an issue) at >= ``target``."""
    order = np.argsort(-score, kind="stable")
    s, t = score[order], truth[order]
    tp = np.cumsum(t)
    n = np.arange(1, len(s) + 1)
    # only cut between distinct scores
    last = np.r_[s[1:] != s[:-1], True]
    ok = last & (tp / n >= target - 1e-12)
    if not ok.any():
        return 0.0, None
    i = int(np.flatnonzero(ok)[np.argmax(tp[ok])])
    return tp[i] / t.sum(), float(s[i])


def _oriented(issue, scores):
    """mmfeat's score for ``issue``, oriented so that higher = more of an issue."""
    rule = _RULES[issue]
    x = scores[rule.score].to_numpy(dtype=float)
    if rule.log:
        x = np.log(np.maximum(x, 1e-300))
    return -x if rule.side == "low" else x


def main():
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(repeat=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-iq-") as work:
        df = corrupted_fashion(work, seed=0)
        paths = df["image"].tolist()
        truth_all = df["image_issue"].fillna("none").to_numpy()
        n = len(paths)

        # warm numba and the page cache, then check both tools see every file
        quality = ImageQuality().set_output(transform="pandas").fit()
        scores = quality.transform(paths)
        assert scores.notna().all().all()
        cv = _cleanvision(paths, n_jobs=1)
        found = {m: find_image_issues(scores, thresholds=m) for m in ("auto", "fixed")}

        rows = []
        for issue in ISSUES:
            truth = truth_all == issue
            cv_pred = cv[f"is_{issue}_issue"].to_numpy(dtype=bool)
            cv_score = -cv[f"{issue}_score"].to_numpy(dtype=float)  # low = issue
            flagged, prec, rec = _pr(cv_pred, truth)
            rows.append(
                dict(
                    issue=issue,
                    tool="cleanvision (defaults)",
                    flagged=flagged,
                    precision=prec,
                    recall=rec,
                    ap=average_precision_score(truth, cv_score),
                )
            )
            ours = _oriented(issue, scores)
            for mode, table in found.items():
                pred = np.zeros(n, bool)
                pred[table.loc[table["issue"] == issue, "row"].to_numpy()] = True
                flagged, p_, r_ = _pr(pred, truth)
                rows.append(
                    dict(
                        issue=issue,
                        tool=f'mmfeat thresholds="{mode}"',
                        flagged=flagged,
                        precision=p_,
                        recall=r_,
                        ap=average_precision_score(truth, ours),
                    )
                )
            target = prec if prec is not None else 1.0
            r_at, _ = _recall_at_precision(ours, truth, target)
            cv_at, _ = _recall_at_precision(cv_score, truth, target)
            note = "" if prec is not None else " (cv flags none: at 1.0)"
            rows.append(
                dict(
                    issue=issue,
                    tool=f"mmfeat @ cleanvision's precision{note}",
                    precision=target,
                    recall=r_at,
                )
            )
            rows.append(
                dict(
                    issue=issue,
                    tool=f"cleanvision best threshold @ {target:.2f}",
                    precision=target,
                    recall=cv_at,
                )
            )
        report_table(
            f"Image issues on the corrupted fashion sample ({n} images, "
            f"{int((truth_all != 'none').sum())} corrupted)",
            [
                ("issue", "issue", ""),
                ("tool", "tool / setting", ""),
                ("flagged", "flagged", "d"),
                ("precision", "precision", ".2f"),
                ("recall", "recall", ".2f"),
                ("ap", "avg precision", ".3f"),
            ],
            rows,
            args,
        )

        timings = []
        for nj in (1, 2):
            t_cv = median_time(
                lambda nj=nj: _cleanvision(paths, nj), repeat=args.repeat
            )
            for ours_nj in (1, 2):
                t_ours = median_time(
                    lambda o=ours_nj: find_image_issues(
                        paths, issues=list(ISSUES), n_jobs=o
                    ),
                    repeat=args.repeat,
                )
                timings.append(
                    (
                        f"mmfeat n_jobs={ours_nj} vs cv n_jobs={nj}",
                        t_ours,
                        t_cv,
                        n,
                        f"cleanvision {nj} process{'es' if nj > 1 else ''}",
                    )
                )
        args.json = None  # the accuracy table holds the JSON
        report(
            "Throughput (blurry + dark + light, decode included)",
            timings,
            args,
            unit="img/s",
        )
        print(f"\n{machine()}")


if __name__ == "__main__":
    main()
