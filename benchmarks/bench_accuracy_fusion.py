"""Fusion accuracy on real data, every method against each modality alone.

1. Audio-visual digits (``load_av_digits``: USPS image + FSDD recording of the
   same digit, USPS's train/test split): image alone (HOG + SVC), audio alone
   (MFCC + SVC), early fusion (``MultimodalFuser`` + SVC), late fusion (equal
   and learned weights) and stacking. Each FSDD recording is paired with
   several images, so the model-level methods get ``groups=`` the recording
   (out-of-fold and calibration folds never split one). Target: fused
   >= 99.8% and above the best single modality.
2. Fashion sample, photo + title, for ``articleType`` (classes with >= 50
   items), ``usage``, ``gender`` and ``baseColour`` (>= 30 items), stratified
   70/30, seed 0: image alone (HOG + colour histogram + SVC), title alone
   (TF-IDF + LinearSVC), early fusion (all three blocks + LinearSVC), late
   fusion with learned weights, stacking. Targets: the best fusion beats the
   best single modality on articleType and usage; on gender and baseColour
   fusion is never more than 0.5 points below the title alone.
3. Missing-modality robustness (articleType): the photo masked in 50% and
   100% of the test rows. Target: late fusion and stacking lose at most half
   the gap between fused and title-only accuracy at 50%, and are no worse
   than the title-only model at 100%.
4. Overhead: ``MultimodalFuser`` vs ``ColumnTransformer`` with the same
   transformers (fit_transform on the fashion photos + titles). Target
   <= 1.05x.

Run: ``MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_accuracy_fusion.py``
(about 5 minutes on 2 cores; ``--only av|fashion|overhead``).
"""

import time

import numpy as np
from _common import median_time, parser, report, report_table
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC, LinearSVC

from mmfeat.datasets import load_av_digits, load_fashion_products
from mmfeat.evaluation import fusion_report, mask_modality
from mmfeat.features.image import ColorHistogramExtractor, HOGExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import LateFusionClassifier, ModalityStackingClassifier, make_fuser
from mmfeat.io import ImageReader
from mmfeat.recipes import make_av_digits_model

SEED = 0
N_JOBS = 2
FASHION_SIZE = (128, 96)
TARGETS = {"articleType": 50, "usage": 30, "gender": 30, "baseColour": 30}


def log(msg):
    print(msg, flush=True)


def _fitted(model, X, y, groups=None):
    t0 = time.perf_counter()
    if groups is not None:
        model.fit(X, y, groups=groups)
    else:
        model.fit(X, y)
    return model, time.perf_counter() - t0


# -- audio-visual digits ---------------------------------------------------------
def run_av(args):
    bunch = load_av_digits(random_state=SEED)
    frame = bunch.frame[["image", "audio", "split"]]
    y = np.asarray(bunch.target)
    train = (frame["split"] == "train").to_numpy()
    X_tr, X_te, y_tr, y_te = frame[train], frame[~train], y[train], y[~train]
    groups = X_tr["audio"].to_numpy()

    # the models of `mmfeat demo`, from the shared recipe
    def av(kind, **kwargs):
        return make_av_digits_model(kind, n_jobs=N_JOBS, random_state=SEED, **kwargs)

    models = {
        "early fusion (fuser, standard blocks) + SVC": (av("early"), None),
        "late fusion, equal weights": (av("late"), groups),
        "late fusion, learned weights": (av("late", weights="learn"), groups),
        "stacking (logistic meta-model)": (av("stacking"), groups),
    }
    rows = []
    best_single = 0.0
    for name, (model, g) in models.items():
        model, secs = _fitted(model, X_tr, y_tr, g)
        rep = fusion_report(model, X_te, y_te)
        if name == "late fusion, equal weights":
            for m in ("image", "audio"):
                rows.append(
                    dict(
                        method=f"{m} alone (SVC)",
                        accuracy=rep.loc[m, "accuracy"],
                        macro_f1=rep.loc[m, "macro_f1"],
                    )
                )
                best_single = max(best_single, rep.loc[m, "accuracy"])
        extra = getattr(model, "weights_", None)
        rows.append(
            dict(
                method=name,
                accuracy=rep.loc["fused", "accuracy"],
                macro_f1=rep.loc["fused", "macro_f1"],
                fit_s=secs,
                note=""
                if extra is None
                else ", ".join(f"{k} {v:.2f}" for k, v in extra.items()),
            )
        )
        log(f"  {name}: {rep.loc['fused', 'accuracy']:.4f} ({secs:.0f} s)")
    report_table(
        f"Audio-visual digits ({train.sum()} train / {(~train).sum()} test); "
        f"target fused >= 99.8% and > best single {best_single:.4f}",
        [
            ("method", "method", ""),
            ("accuracy", "accuracy", ".4f"),
            ("macro_f1", "macro F1", ".4f"),
            ("fit_s", "fit s", ".0f"),
            ("note", "weights", ""),
        ],
        rows,
        args,
    )


# -- fashion ----------------------------------------------------------------------
def _fashion(target, min_count):
    data = load_fashion_products(target=target, min_count=min_count)
    frame = data.frame[["path", "title"]].copy()
    y = data.target.to_numpy()
    # decode each photo once; the extractors then work on arrays
    reader = ImageReader(mode="rgb", size=FASHION_SIZE, dtype="uint8", n_jobs=N_JOBS)
    images = reader.fit_transform(frame["path"])
    frame["image"] = list(images)
    tr, te = train_test_split(
        np.arange(len(y)), test_size=0.3, stratify=y, random_state=SEED
    )
    return frame.iloc[tr], frame.iloc[te], y[tr], y[te]


def _image_blocks():
    return {
        "hog": (
            HOGExtractor(pixels_per_cell=(16, 16), cells_per_block=(3, 3)),
            "image",
        ),
        "color": (ColorHistogramExtractor(), "image"),
    }


def _fashion_models():
    image = make_pipeline(make_fuser(_image_blocks()), SVC(C=10, random_state=SEED))
    title = make_pipeline(TfidfExtractor(), LinearSVC(C=1.0))
    mods = [("image", image, ["image"]), ("title", title, "title")]
    early = make_pipeline(
        make_fuser({**_image_blocks(), "title": (TfidfExtractor(), "title")}),
        LinearSVC(C=1.0),
    )
    return {
        "early fusion (fuser) + LinearSVC": early,
        "late fusion, learned weights": LateFusionClassifier(
            mods, weights="learn", cv=5, n_jobs=N_JOBS
        ),
        "stacking (logistic meta-model)": ModalityStackingClassifier(
            mods, cv=5, n_jobs=N_JOBS
        ),
    }


def run_fashion(args):
    rows, robust = [], []
    for target, min_count in TARGETS.items():
        X_tr, X_te, y_tr, y_te = _fashion(target, min_count)
        log(
            f"\nfashion {target}: {len(y_tr)} train / {len(y_te)} test, "
            f"{len(np.unique(y_tr))} classes"
        )
        singles, fused = {}, {}
        for name, model in _fashion_models().items():
            model, secs = _fitted(model, X_tr, y_tr)
            rep = fusion_report(model, X_te, y_te)
            if name.startswith("late"):
                singles = {m: rep.loc[m, "accuracy"] for m in ("image", "title")}
                late = model
            if name.startswith("stacking"):
                stack = model
            fused[name] = rep.loc["fused", "accuracy"]
            log(f"  {name}: {fused[name]:.4f} ({secs:.0f} s)")
        best_single = max(singles.values())
        best_fused = max(fused.values())
        need = "beat" if target in ("articleType", "usage") else "within 0.5 pt"
        ok = (
            best_fused > best_single
            if need == "beat"
            else min(fused.values()) >= singles["title"] - 0.005
        )
        rows.append(
            dict(
                target=target,
                image=singles["image"],
                title=singles["title"],
                **{k.split(" ")[0]: v for k, v in fused.items()},
                weights=", ".join(f"{k} {v:.2f}" for k, v in late.weights_.items()),
                goal=need,
                met="yes" if ok else "NO",
            )
        )
        if target == "articleType":
            title_only = singles["title"]
            for frac in (0.5, 1.0):
                rng = np.random.default_rng(SEED)
                rows_masked = rng.permutation(len(X_te))[: int(frac * len(X_te))]
                X_m = mask_modality(X_te, ["image"], rows_masked)
                for name, model in (("late (learned)", late), ("stacking", stack)):
                    full = fused[
                        "late fusion, learned weights"
                        if name.startswith("late")
                        else "stacking (logistic meta-model)"
                    ]
                    acc = float(np.mean(model.predict(X_m) == y_te))
                    limit = full - (full - title_only) / 2 if frac < 1 else title_only
                    robust.append(
                        dict(
                            method=name,
                            missing=frac,
                            accuracy=acc,
                            fused_full=full,
                            title_only=title_only,
                            limit=limit,
                            met="yes" if acc >= limit - 1e-12 else "NO",
                        )
                    )
    report_table(
        "Fashion sample, photo + title (stratified 70/30, seed 0): accuracy",
        [
            ("target", "target", ""),
            ("image", "image alone", ".4f"),
            ("title", "title alone", ".4f"),
            ("early", "early", ".4f"),
            ("late", "late (learned)", ".4f"),
            ("stacking", "stacking", ".4f"),
            ("weights", "learned weights", ""),
            ("goal", "goal", ""),
            ("met", "met", ""),
        ],
        rows,
        args,
    )
    report_table(
        "Missing photos at test time (articleType)",
        [
            ("method", "method", ""),
            ("missing", "photo missing", ".0%"),
            ("accuracy", "accuracy", ".4f"),
            ("fused_full", "no photo missing", ".4f"),
            ("title_only", "title alone", ".4f"),
            ("limit", "must reach", ".4f"),
            ("met", "met", ""),
        ],
        robust,
        args,
    )


# -- overhead ------------------------------------------------------------------------
def run_overhead(args):
    X_tr, _, y_tr, _ = _fashion("articleType", 50)

    def blocks():
        return [
            (
                "hog",
                HOGExtractor(pixels_per_cell=(16, 16), cells_per_block=(3, 3)),
                "image",
            ),
            ("title", TfidfExtractor(), "title"),
        ]

    fuser = make_fuser({n: (t, c) for n, t, c in blocks()})
    ct = ColumnTransformer(blocks())
    fuser.fit(X_tr, y_tr)
    ct.fit(X_tr, y_tr)
    cases = [
        (
            "fit_transform, HOG + TF-IDF blocks",
            lambda: fuser.fit_transform(X_tr, y_tr),
            lambda: ct.fit_transform(X_tr, y_tr),
        ),
        (
            "transform, HOG + TF-IDF blocks",
            lambda: fuser.transform(X_tr),
            lambda: ct.transform(X_tr),
        ),
    ]
    rows = []
    for case, ours, peer in cases:
        # alternate the two so drift in machine load hits both alike
        t_ours, t_peer = [], []
        for _ in range(args.repeat):
            t_ours.append(median_time(ours, repeat=1))
            t_peer.append(median_time(peer, repeat=1))
        rows.append(
            (
                case,
                float(np.median(t_ours)),
                float(np.median(t_peer)),
                len(X_tr),
                "ColumnTransformer",
            )
        )
    out = report(
        "MultimodalFuser (l2 blocks, weights) vs ColumnTransformer, same "
        "transformers; ratio = peer/mmfeat (>= 0.95 means <= 1.05x time)",
        rows,
        args,
        unit="rows/s",
    )
    return out


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--only", choices=("av", "fashion", "overhead"))
    args = p.parse_args()
    if args.only in (None, "av"):
        run_av(args)
    if args.only in (None, "fashion"):
        run_fashion(args)
    if args.only in (None, "overhead"):
        run_overhead(args)


if __name__ == "__main__":
    main()
