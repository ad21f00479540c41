"""Label issues, mismatched pairs and learning curves on real data (issue 17).

Label issues and mismatched pairs: the corrupted fashion sample
(``_quality_data.corrupted_fashion``: 5% of labels flipped, 3% of photos
swapped between records of different types, 3% of photos degraded, 2% of
records duplicated into the test part; fixed seeds, truth kept apart). One
late-fusion model (HOG + colour -> SVC on the photo, TF-IDF -> LinearSVC on
the title, learned weights) gives out-of-fold probabilities of each
modality and of the fusion on the same 5 folds; the peer is cleanlab on the
best single modality (the title), in the same run:

- label issues: AUPRC of the flipped labels and their recall in the top 5%
  of rows, for cleanlab's self-confidence ranking on the title alone, on
  the photo alone, and for mmfeat's ``find_label_issues`` (the fused
  posteriors); precision/recall of the ``is_issue`` flags;
- mismatched pairs (no peer): AUPRC of the swapped photos for
  ``find_mismatched_pairs`` and for each of its two signals alone.

Learning curves (``--curves``): fashion (photo + title, 14 article types)
and audio-visual digits (USPS + FSDD), 5 to 100 examples per class, 3
seeded repeats, each modality alone and late fusion, with and without
augmentation (fashion: ``ImageAugmenter``).

    python benchmarks/bench_quality.py [--seeds 0 1] [--curves]
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import parser, report_table
from _quality_data import corrupted_fashion
from sklearn.metrics import average_precision_score
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC, LinearSVC

from mmfeat.features.image import ColorHistogramExtractor, HOGExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import FusionSearchCV, LateFusionClassifier, make_fuser
from mmfeat.quality import (
    cross_val_modality_proba,
    find_label_issues,
    find_mismatched_pairs,
    learning_curve_report,
)

N_JOBS = 2


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def _image_model():
    blocks = {
        "hog": (
            HOGExtractor(
                image_size=(128, 96),
                pixels_per_cell=(16, 16),
                cells_per_block=(3, 3),
                on_error="missing",
            ),
            "image",
        ),
        "color": (
            ColorHistogramExtractor(image_size=(64, 48), on_error="missing"),
            "image",
        ),
    }
    return make_pipeline(make_fuser(blocks), SVC(C=10, random_state=0))


def _title_model():
    return make_pipeline(TfidfExtractor(), LinearSVC(C=1.0))


def fashion_model(weights="learn"):
    return LateFusionClassifier(
        [("image", _image_model(), ["image"]), ("title", _title_model(), "title")],
        weights=weights,
        cv=3,
    )


def _recall_at(score, truth, frac=0.05):
    k = int(round(frac * len(score)))
    top = np.argsort(-score, kind="stable")[:k]
    return truth[top].sum() / truth.sum()


def _self_confidence(proba, labels):
    from cleanlab.rank import get_label_quality_scores

    p = proba / proba.sum(1, keepdims=True)
    return get_label_quality_scores(labels, p, method="self_confidence")


def run_issues(seed, rows, pair_rows):
    with tempfile.TemporaryDirectory() as tmp:
        df = corrupted_fashion(Path(tmp), seed=seed)
        X, y = df[["image", "title"]], df["label"].to_numpy()
        log(f"\ncorrupted fashion, seed {seed}: {len(df)} records")
        t0 = time.perf_counter()
        oof = cross_val_modality_proba(fashion_model(), X, y, cv=5, n_jobs=N_JOBS)
        t_oof = time.perf_counter() - t0
        flip = df["label_flipped"].to_numpy()
        swap = df["photo_swapped"].to_numpy()

        def add(method, score, flags=None):
            row = dict(
                seed=seed,
                method=method,
                auprc=average_precision_score(flip, score),
                recall5=_recall_at(score, flip),
            )
            if flags is not None:
                row["flag_precision"] = flip[flags].mean() if flags.any() else 0.0
                row["flag_recall"] = flags[flip].mean()
            rows.append(row)
            log(f"  {method}: AUPRC {row['auprc']:.3f}")

        from cleanlab.filter import find_label_issues as cl_find

        for name in ("title", "image"):
            p = np.nan_to_num(oof.modality_proba[name], nan=1.0 / len(oof.classes))
            p = p / p.sum(1, keepdims=True)
            add(
                f"cleanlab, {name} alone",
                1 - _self_confidence(p, oof.labels),
                cl_find(oof.labels, p),
            )
        t0 = time.perf_counter()
        issues = find_label_issues(fashion_model(), X, y, oof=oof).sort_values("row")
        t_rank = time.perf_counter() - t0
        add(
            "mmfeat find_label_issues (fused)",
            issues["score"].to_numpy(),
            issues["is_issue"].to_numpy(),
        )
        t0 = time.perf_counter()
        pairs = find_mismatched_pairs(fashion_model(), X, y, oof=oof)
        t_pairs = time.perf_counter() - t0
        pairs = pairs.sort_values("row")
        for method, score in (
            ("find_mismatched_pairs", pairs["score"]),
            ("posterior gap alone", pairs["posterior_gap"]),
            ("retrieval rank alone", pairs["retrieval_rank"]),
        ):
            pair_rows.append(
                dict(
                    seed=seed,
                    method=method,
                    auprc=average_precision_score(swap, score),
                    recall5=_recall_at(score.to_numpy(), swap),
                )
            )
        suspects = pairs.set_index("row").loc[np.flatnonzero(swap), "suspect"]
        pair_rows.append(
            dict(
                seed=seed,
                method="suspect = image, on swapped rows",
                auprc=float((suspects == "image").mean()),
            )
        )
        log(
            f"  out-of-fold fits {t_oof:.0f} s, label ranking {t_rank:.1f} s, "
            f"mismatched pairs (with the retriever folds) {t_pairs:.0f} s"
        )


def run_curves(args):
    from mmfeat.datasets import load_av_digits, load_fashion_products
    from mmfeat.preprocessing import ImageAugmenter
    from mmfeat.recipes import make_av_digits_model

    sizes = [5, 10, 20, 50, 100]
    out = []
    frame = load_fashion_products(target="articleType", min_count=50).frame
    X = frame[["path", "title"]].rename(columns={"path": "image"})
    y = frame["articleType"].to_numpy()

    def fashion_models(fusions=True):
        models = {
            "image": LateFusionClassifier([("image", _image_model(), ["image"])]),
            "title": LateFusionClassifier([("title", _title_model(), "title")]),
            "late fusion": fashion_model(weights=None),
        }
        if fusions:  # the fusions that learn how much each modality counts
            models["late, learned"] = fashion_model(weights="learn")
            models["auto"] = FusionSearchCV(
                list(fashion_model().estimators),
                candidates=["single", "late", "late-learned", "stacking"],
                cv=3,
            )
        return models

    t0 = time.perf_counter()
    report = learning_curve_report(
        fashion_models, X, y, n_per_class=sizes, n_repeats=3, n_jobs=N_JOBS
    )
    log(f"fashion curves {time.perf_counter() - t0:.0f} s")
    out.append(("fashion articleType (photo + title)", report))
    t0 = time.perf_counter()
    report = learning_curve_report(
        lambda: fashion_models(fusions=False),
        X,
        y,
        n_per_class=sizes,
        n_repeats=3,
        n_jobs=N_JOBS,
        augmenter=ImageAugmenter(column="image", n_copies=1, random_state=0),
    )
    log(f"fashion curves with augmentation {time.perf_counter() - t0:.0f} s")
    out.append(
        ("fashion articleType (photo + title), with and without ImageAugmenter", report)
    )

    bunch = load_av_digits(random_state=0)
    Xa = bunch.frame[["image", "audio"]]
    ya = np.asarray(bunch.target)
    mods = make_av_digits_model("late", n_jobs=1, random_state=0).estimators

    def av_models():
        return {
            "image": LateFusionClassifier([mods[0]]),
            "audio": LateFusionClassifier([mods[1]]),
            "late fusion": LateFusionClassifier(list(mods)),
            "late, learned": LateFusionClassifier(list(mods), weights="learn", cv=3),
        }

    t0 = time.perf_counter()
    report = learning_curve_report(
        av_models, Xa, ya, n_per_class=sizes, n_repeats=3, n_jobs=N_JOBS
    )
    log(f"audio-visual curves {time.perf_counter() - t0:.0f} s")
    out.append(("audio-visual digits (image + audio)", report))

    for title, report in out:
        s = report.summary().reset_index()
        adv = report.fusion_advantage().reset_index()
        rows = []
        for _, r in adv.iterrows():
            part = s[(s.augmented == r.augmented) & (s.n_per_class == r.n_per_class)]
            row = dict(
                augmented="yes" if r.augmented else "no",
                n=int(r.n_per_class),
                advantage=r.advantage,
                advantage_std=r.advantage_std,
                best_single=r.best_single,
            )
            for _, m in part.iterrows():
                row[m.model] = m.test_mean
                row[f"{m.model} gap"] = m.gap_mean
            rows.append(row)
        names = list(s.model.unique())
        columns = [("augmented", "aug", ""), ("n", "n/class", "d")]
        for m in names:
            columns += [(m, m, ".3f"), (f"{m} gap", f"{m} train-test", ".3f")]
        columns += [
            ("best_single", "best single", ""),
            ("advantage", "fused - best single", "+.3f"),
            ("advantage_std", "sd", ".3f"),
        ]
        report_table(f"Learning curves: {title}", columns, rows, args)


LABEL_COLUMNS = [
    ("seed", "seed", "d"),
    ("method", "label-issue ranking", ""),
    ("auprc", "AUPRC", ".3f"),
    ("recall5", "recall@5%", ".3f"),
    ("flag_precision", "is_issue precision", ".3f"),
    ("flag_recall", "is_issue recall", ".3f"),
]
PAIR_COLUMNS = [
    ("seed", "seed", "d"),
    ("method", "mismatched-pair ranking", ""),
    ("auprc", "AUPRC (or share)", ".3f"),
    ("recall5", "recall@5%", ".3f"),
]


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--curves", action="store_true", help="also the learning curves")
    p.add_argument("--no-issues", action="store_true")
    args = p.parse_args()
    if not args.no_issues:
        rows, pair_rows = [], []
        for seed in args.seeds:
            run_issues(seed, rows, pair_rows)
        report_table("Label issues (5% flipped labels)", LABEL_COLUMNS, rows, args)
        report_table(
            "Mismatched pairs (3% swapped photos)", PAIR_COLUMNS, pair_rows, args
        )
    if args.curves:
        run_curves(args)


if __name__ == "__main__":
    main()
