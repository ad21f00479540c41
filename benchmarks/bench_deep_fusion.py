"""Deep fusion and FusionSearchCV against every classical fusion and each modality.

1. Audio-visual digits (``load_av_digits``, USPS's split; the models of
   ``make_av_digits_model``: HOG / MFCC + RBF SVC; ``groups=`` the
   recording): each modality alone, early, late (equal and learned weights),
   stacking (the non-negative meta-model), deep fusion
   (``NeuralFusionClassifier`` on the same HOG and MFCC features) and
   ``FusionSearchCV`` (3 folds). Target: deep >= the best classical fusion;
   auto never more than 0.3 points below the best single modality.
2. Fashion sample, photo + title, articleType / usage / gender / baseColour
   (the splits, features and models of ``bench_accuracy_fusion.py``): the
   same methods. Same targets.
3. Weak-modality stress test (articleType): the photo replaced by a 4-bin
   grey-level histogram. Target: every fusion method >= the title alone
   minus 0.3 points.
4. Missing photos at test time (articleType): 0, 25, 50, 75, 100% of the
   test photos masked, deep fusion with and without modality dropout.
   Target: with it, no worse than the title-only model at 100%.
5. Fit time of deep fusion on the CPU (2 threads).

Run: ``MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_deep_fusion.py``
(``--only av|fashion|stress|missing``; about 25 minutes on 2 cores).
"""

import time

import numpy as np
from _common import parser, report_table
from bench_accuracy_fusion import SEED, TARGETS, _fashion, _image_blocks
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC, LinearSVC

from mmfeat.datasets import load_av_digits
from mmfeat.evaluation import mask_modality
from mmfeat.features.image import ColorHistogramExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import (
    FusionSearchCV,
    LateFusionClassifier,
    ModalityStackingClassifier,
    NeuralFusionClassifier,
    make_fuser,
)
from mmfeat.recipes import make_av_digits_model

N_JOBS = 2


def log(msg):
    print(msg, flush=True)


def _candidates(search):
    res = search.cv_results_
    shown = ", ".join(
        f"{c} {s:.4f}" for c, s in zip(res["candidate"], res["mean_test_score"])
    )
    return f"  auto's cross-validated candidates: {shown}"


def _acc(model, X, y):
    return float(np.mean(model.predict(X) == y))


def _timed_fit(model, X, y, **params):
    t0 = time.perf_counter()
    model.fit(X, y, **params)
    return model, time.perf_counter() - t0


def _deep(modalities, **kw):
    return NeuralFusionClassifier(
        [(name, est[:-1], cols) for name, est, cols in modalities],
        random_state=SEED,
        n_jobs=N_JOBS,
        **kw,
    )


def _compare(mods, early, X_tr, y_tr, X_te, y_te, groups=None):
    """Accuracy of every method on one split; returns (rows, fitted models)."""
    g = {} if groups is None else {"groups": groups}
    out, fitted = {}, {}
    late = LateFusionClassifier(mods, weights="learn", cv=5, n_jobs=N_JOBS)
    late, secs = _timed_fit(late, X_tr, y_tr, **g)
    probas = late.modality_proba(X_te)
    classes = late.classes_
    for name in late.modality_names_:
        out[f"{name} alone"] = (
            float(np.mean(classes[probas[name].argmax(1)] == y_te)),
            None,
        )
    out["late (learned)"] = (_acc(late, X_te, y_te), secs)
    fitted["late (learned)"] = late
    models = {
        "early": early,
        "late (equal)": LateFusionClassifier(mods, n_jobs=N_JOBS),
        "stacking": ModalityStackingClassifier(mods, cv=5, n_jobs=N_JOBS),
        "deep": _deep(mods),
        "auto": FusionSearchCV(mods, cv=3, random_state=SEED, n_jobs=N_JOBS),
    }
    for name, model in models.items():
        params = g if name not in ("early", "deep") else {}
        model, secs = _timed_fit(model, X_tr, y_tr, **params)
        out[name] = (_acc(model, X_te, y_te), secs)
        fitted[name] = model
        log(f"  {name}: {out[name][0]:.4f} ({secs:.0f} s)")
    return out, fitted


def _summary_row(label, out, fitted):
    singles = {k: v[0] for k, v in out.items() if k.endswith(" alone")}
    best_single = max(singles.values())
    classical = max(
        out[k][0] for k in ("early", "late (equal)", "late (learned)", "stacking")
    )
    auto = fitted["auto"]
    return dict(
        data=label,
        **{k: v[0] for k, v in out.items()},
        best_single=best_single,
        best_classical=classical,
        auto_pick=auto.best_candidate_,
        deep_s=out["deep"][1],
        deep_ok="yes" if out["deep"][0] >= classical else "NO",
        auto_ok="yes" if out["auto"][0] >= best_single - 0.003 else "NO",
    )


COLUMNS = [
    ("data", "data", ""),
    ("single", "best single", ".4f"),
    ("early", "early", ".4f"),
    ("late (equal)", "late equal", ".4f"),
    ("late (learned)", "late learned", ".4f"),
    ("stacking", "stacking", ".4f"),
    ("deep", "deep", ".4f"),
    ("auto", "auto", ".4f"),
    ("auto_pick", "auto picked", ""),
    ("deep_s", "deep fit s", ".0f"),
    ("deep_ok", "deep >= classical", ""),
    ("auto_ok", "auto >= single - 0.3", ""),
]


def run_av(args, rows):
    bunch = load_av_digits(random_state=SEED)
    frame = bunch.frame[["image", "audio", "split"]]
    y = np.asarray(bunch.target)
    train = (frame["split"] == "train").to_numpy()
    X_tr, X_te, y_tr, y_te = frame[train], frame[~train], y[train], y[~train]
    log(f"\naudio-visual digits: {train.sum()} train / {(~train).sum()} test")
    mods = make_av_digits_model("late", n_jobs=N_JOBS, random_state=SEED).estimators
    early = make_av_digits_model("early", n_jobs=N_JOBS, random_state=SEED)
    out, fitted = _compare(
        mods, early, X_tr, y_tr, X_te, y_te, groups=X_tr["audio"].to_numpy()
    )
    row = _summary_row("audio-visual digits", out, fitted)
    row["single"] = row["best_single"]
    rows.append(row)
    log(_candidates(fitted["auto"]))


def _fashion_mods(image=None):
    image = image or make_pipeline(
        make_fuser(_image_blocks()), SVC(C=10, random_state=SEED)
    )
    title = make_pipeline(TfidfExtractor(), LinearSVC(C=1.0))
    return [("image", image, ["image"]), ("title", title, "title")]


def _fashion_early(image_blocks=None):
    blocks = image_blocks or _image_blocks()
    return make_pipeline(
        make_fuser({**blocks, "title": (TfidfExtractor(), "title")}), LinearSVC(C=1.0)
    )


def run_fashion(args, rows):
    for target, min_count in TARGETS.items():
        X_tr, X_te, y_tr, y_te = _fashion(target, min_count)
        log(f"\nfashion {target}: {len(y_tr)} train / {len(y_te)} test")
        out, fitted = _compare(
            _fashion_mods(), _fashion_early(), X_tr, y_tr, X_te, y_te
        )
        row = _summary_row(f"fashion {target}", out, fitted)
        row["single"] = row["best_single"]
        rows.append(row)
        log(_candidates(fitted["auto"]))


def run_stress(args):
    X_tr, X_te, y_tr, y_te = _fashion("articleType", 50)
    grey = ColorHistogramExtractor(bins=(1, 1, 4))  # 4 bins of grey level
    image = make_pipeline(grey, SVC(C=10, random_state=SEED))
    early = make_pipeline(
        make_fuser(
            {
                "grey": (ColorHistogramExtractor(bins=(1, 1, 4)), "image"),
                "title": (TfidfExtractor(), "title"),
            }
        ),
        LinearSVC(C=1.0),
    )
    log("\nweak-modality stress test (articleType, 4-bin grey histogram)")
    out, fitted = _compare(_fashion_mods(image), early, X_tr, y_tr, X_te, y_te)
    title = out["title alone"][0]
    rows = [
        dict(
            method=k,
            accuracy=v[0],
            title=title,
            ok="yes" if v[0] >= title - 0.003 else "NO",
        )
        for k, v in out.items()
        if not k.endswith(" alone")
    ]
    rows.insert(
        0, dict(method="image alone (grey histogram)", accuracy=out["image alone"][0])
    )
    report_table(
        "Weak-modality stress test, fashion articleType: the photo as a 4-bin grey "
        "histogram; target every fusion >= title alone - 0.3 points",
        [
            ("method", "method", ""),
            ("accuracy", "accuracy", ".4f"),
            ("title", "title alone", ".4f"),
            ("ok", "met", ""),
        ],
        rows,
        args,
        extra={
            "auto_picked": fitted["auto"].best_candidate_,
            "learned_weights": fitted["late (learned)"].weights_,
        },
    )
    log(_candidates(fitted["auto"]))
    log(f"  learned late-fusion weights: {fitted['late (learned)'].weights_}")


def run_missing(args):
    X_tr, X_te, y_tr, y_te = _fashion("articleType", 50)
    mods = _fashion_mods()
    title = LateFusionClassifier([mods[1]]).fit(X_tr, y_tr)
    title_acc = _acc(title, X_te, y_te)
    rows = []
    for p in (0.25, 0.0):
        model, secs = _timed_fit(_deep(mods, modality_dropout=p), X_tr, y_tr)
        log(f"  deep, modality dropout {p}: fitted in {secs:.0f} s")
        rng = np.random.default_rng(SEED)
        order = rng.permutation(len(X_te))
        row = dict(method=f"deep, modality dropout {p}", fit_s=secs)
        for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
            X_m = mask_modality(X_te, ["image"], order[: int(round(frac * len(X_te)))])
            row[f"m{int(frac * 100)}"] = _acc(model, X_m, y_te)
        row["ok"] = "yes" if row["m100"] >= title_acc - 1e-12 else "NO"
        rows.append(row)
    rows.append(
        dict(
            method="title alone",
            m0=title_acc,
            m25=title_acc,
            m50=title_acc,
            m75=title_acc,
            m100=title_acc,
        )
    )
    report_table(
        "Missing photos at test time, fashion articleType, deep fusion; target with "
        "modality dropout >= title alone at 100%",
        [("method", "method", "")]
        + [(f"m{k}", f"{k}% missing", ".4f") for k in (0, 25, 50, 75, 100)]
        + [("fit_s", "fit s", ".0f"), ("ok", "met", "")],
        rows,
        args,
    )


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--only", choices=("av", "fashion", "stress", "missing"))
    args = p.parse_args()
    rows = []
    if args.only in (None, "av"):
        run_av(args, rows)
    if args.only in (None, "fashion"):
        run_fashion(args, rows)
    if rows:
        report_table(
            "Deep fusion and FusionSearchCV (auto) against classical fusion: test "
            "accuracy",
            COLUMNS,
            rows,
            args,
        )
    if args.only in (None, "stress"):
        run_stress(args)
    if args.only in (None, "missing"):
        run_missing(args)


if __name__ == "__main__":
    main()
