"""Accuracy of CNNExtractor features on the fashion sample, on the CPU.

Run: ``MMFEAT_DATA_HOME=../shared/data python benchmarks/bench_accuracy_cnn.py``
with mmfeat and torch importable (``PYTHONPATH=.``); add ``--json FILE`` for
a JSON copy, ``--large`` for 96x72 images and more epochs, ``--resnet18`` to
add a fine-tuned torchvision resnet18 (slow on a CPU; needs torchvision),
``--bovw`` to add the SIFT bag of visual words and its fusion
(``--repeat`` is ignored: nothing here is a timing). About 10 minutes on 2
busy cores (640 s measured with the wider fusion grid of an earlier run): 5
minutes of fine-tuning, 2 of fused cross-validation; fixed seeds.

Measured (2 shared cores, torch 2.13 CPU): random "simple" 71.9% test,
fine-tuned "simple" 77.7%, HOG 86.6%, fine-tuned CNN + HOG fused 89.2%.

Data: the fashion-product sample, the 14 article types with at least 50
items (1,908 photos), stratified 70/30 split with seed 0, as in
``bench_accuracy_image.py``.

Cases, each features + ``StandardScaler`` + ``LinearSVC`` with C chosen by
3-fold cross-validation on the training part:

- ``CNNExtractor(backbone="simple")`` with random weights (no training): the
  floor a network gives without labels;
- the same network fine-tuned on the training part (``fine_tune_epochs``,
  AdamW, cosine schedule, flips and shifts), then used as a feature
  extractor; no pretrained weights anywhere, no network access;
- ``HOGExtractor`` (128x96, 16-pixel cells, 3x3 blocks, as in
  ``bench_accuracy_image.py``);
- CNN and HOG fused with :func:`mmfeat.fusion.make_fuser`
  (``block_norm="standard"``: each block standardised and scaled to unit
  expected row norm, so the block weights act; the HOG weight and C chosen
  by cross-validation; no scaler after the fuser, it would undo the
  weights); the fuser reuses the fine-tuned extractor as fitted (it is not
  trained again).

The table gives feature width, CV accuracy of the chosen C, test accuracy
and seconds per case.
"""

import time

import numpy as np
from _common import parser, report_table
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mmfeat.datasets import load_fashion_products
from mmfeat.features.image import CNNExtractor, HOGExtractor, SIFTBoVWExtractor
from mmfeat.fusion import make_fuser

SEED = 0
N_JOBS = 2
HOG_SIZE = (128, 96)  # (height, width), the photos' 3:4 aspect


def log(msg):
    print(msg, flush=True)


class Prefit(TransformerMixin, BaseEstimator):
    """A fitted transformer that ``fit`` (and cloning) leave as it is."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return self.estimator.transform(X)

    def get_feature_names_out(self, input_features=None):
        return self.estimator.get_feature_names_out()

    def __sklearn_clone__(self):
        return self


def svc(C, scale):
    """LinearSVC, after a StandardScaler for a single block (``scale``)."""
    svm = LinearSVC(C=C, max_iter=5000)
    return make_pipeline(StandardScaler(), svm) if scale else svm


def svc_cv(F, y, tr, cv, Cs, scale=True):
    """(best C, its CV accuracy) of (scaler +) LinearSVC on the training rows."""
    best = None
    for C in Cs:
        model = svc(C, scale)
        acc = cross_val_score(model, F[tr], y[tr], cv=cv).mean()
        log(f"  CV {acc:.2%}  C={C}")
        if best is None or acc > best[1]:
            best = (C, acc)
    return best


def svc_test(F, y, tr, te, C, scale=True):
    return svc(C, scale).fit(F[tr], y[tr]).score(F[te], y[te])


def main():
    p = parser(__doc__)
    p.add_argument("--resnet18", action="store_true", help="add torchvision resnet18")
    p.add_argument("--bovw", action="store_true", help="add SIFT BoVW and its fusion")
    args = p.parse_args()
    t0 = time.perf_counter()
    fashion = load_fashion_products(min_count=50)
    frame = fashion.frame[["path"]]
    paths = frame["path"].to_numpy()
    y = fashion.target.to_numpy()
    tr, te = train_test_split(
        np.arange(len(y)), test_size=0.3, stratify=y, random_state=SEED
    )
    log(
        f"Fashion: {len(y)} photos, {len(fashion.target_names)} article types; "
        f"{len(tr)} train, {len(te)} test"
    )
    cv = StratifiedKFold(3, shuffle=True, random_state=SEED)
    Cs = (0.001, 0.01, 0.1)
    fused_Cs = (0.3, 1.0, 3.0)  # rows of unit norm per block: larger C
    size = (96, 72) if args.large else (64, 48)
    epochs = 16 if args.large else 12
    cnn_kw = dict(
        image_size=size,
        batch_size=32,
        learning_rate=3e-3,
        num_workers=N_JOBS,
        n_jobs=N_JOBS,
        device="cpu",
        random_state=SEED,
    )
    rows, blocks, fitted = [], {}, {}

    def case(key, label, F, seconds, Cs=Cs):
        blocks[key] = F
        log(f"{label}: C by 3-fold CV on the training part")
        C, cv_acc = svc_cv(F, y, tr, cv, Cs)
        rows.append(
            dict(
                case=f"{label}, LinearSVC C={C:g}",
                dims=F.shape[1],
                val=cv_acc,
                test=svc_test(F, y, tr, te, C),
                seconds=seconds,
            )
        )

    h, w = size
    clock = time.perf_counter()
    random_cnn = CNNExtractor(**cnn_kw).fit()
    F = random_cnn.transform(paths)
    case(
        "cnn0", f'CNN "simple" {h}x{w}, random weights', F, time.perf_counter() - clock
    )

    clock = time.perf_counter()
    log(f'fine-tuning "simple" at {h}x{w} for {epochs} epochs on the training part')
    tuned = CNNExtractor(fine_tune_epochs=epochs, **cnn_kw)
    tuned.fit(paths[tr], y[tr])
    log("  loss per epoch: " + " ".join(f"{v:.3f}" for v in tuned.loss_curve_))
    fitted["cnn"] = tuned
    case(
        "cnn",
        f'CNN "simple" {h}x{w}, fine-tuned {epochs} epochs',
        tuned.transform(paths),
        time.perf_counter() - clock,
    )

    if args.resnet18:
        clock = time.perf_counter()
        res_epochs = 6
        log(f"fine-tuning resnet18 at 112x112 for {res_epochs} epochs (slow on CPU)")
        res = CNNExtractor(
            backbone="resnet18",
            fine_tune_epochs=res_epochs,
            **dict(cnn_kw, image_size=(112, 112), learning_rate=1e-3),
        ).fit(paths[tr], y[tr])
        case(
            "resnet18",
            f"CNN resnet18 112x112, fine-tuned {res_epochs} epochs",
            res.transform(paths),
            time.perf_counter() - clock,
        )

    clock = time.perf_counter()
    hog = HOGExtractor(
        image_size=HOG_SIZE, pixels_per_cell=(16, 16), cells_per_block=(3, 3), n_jobs=2
    )
    fitted["hog"] = hog.fit(paths[tr])
    case(
        "hog",
        f"HOGExtractor {HOG_SIZE[0]}x{HOG_SIZE[1]}, 16px cells, 3x3 blocks",
        hog.transform(paths),
        time.perf_counter() - clock,
    )

    if args.bovw:
        clock = time.perf_counter()
        bovw = SIFTBoVWExtractor(
            n_words=256,
            sizes=(16, 24),
            pyramid_levels=(1, 2, 4),
            max_descriptors_per_image=100,
            image_size=HOG_SIZE,
            random_state=SEED,
            n_jobs=N_JOBS,
        ).fit(paths[tr])
        fitted["bovw"] = bovw
        # the scaled 5,376-wide pyramid histograms: LinearSVC at C >= 0.1 runs
        # for many minutes without converging, and CV falls with C already
        case(
            "bovw",
            "SIFTBoVWExtractor 256 words",
            bovw.transform(paths),
            0.0,
            Cs=(0.001, 0.01),
        )
        rows[-1]["seconds"] = time.perf_counter() - clock

    def fused(names, weights):
        fuser = make_fuser(
            {n: (Prefit(fitted[n]), "path") for n in names},
            weights=weights,
            block_norm="standard",
        )
        return fuser.fit(frame.iloc[tr]).transform(frame)

    for names in [("cnn", "hog")] + ([("cnn", "hog", "bovw")] if args.bovw else []):
        clock = time.perf_counter()
        label = " + ".join(
            n.upper() if n != "cnn" else "CNN (fine-tuned)" for n in names
        )
        log(f"fused {label}: weights of the other blocks (CNN 1) and C by 3-fold CV")
        best = None
        for wt in (0.5, 1.0):
            weights = {n: wt for n in names if n != "cnn"}
            F = fused(names, weights)
            C, acc = svc_cv(F, y, tr, cv, fused_Cs, scale=False)
            log(f"  weights {weights}: CV {acc:.2%}")
            if best is None or acc > best[2]:
                best = (weights, C, acc, F)
        weights, C, cv_acc, F = best
        rows.append(
            dict(
                case=f"fused {label} {weights}, make_fuser, LinearSVC C={C:g}",
                dims=F.shape[1],
                val=cv_acc,
                test=svc_test(F, y, tr, te, C, scale=False),
                seconds=time.perf_counter() - clock,
            )
        )

    total = time.perf_counter() - t0
    columns = [
        ("case", "case", ""),
        ("dims", "dims", ",d"),
        ("val", "CV", ".2%"),
        ("test", "test", ".2%"),
        ("seconds", "s", ".0f"),
    ]
    report_table(
        f"Fashion sample, 14 article types: CNN features + LinearSVC on the CPU "
        f"({'large' if args.large else 'default'} profile, {total:.0f} s in all)",
        columns,
        rows,
        args,
        extra=dict(seconds=total, loss_curve=tuned.loss_curve_),
    )


if __name__ == "__main__":
    main()
