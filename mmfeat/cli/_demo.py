"""``mmfeat demo``: real metrics on the embedded digits and, when present, AV digits."""

import time

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from mmfeat.datasets import load_av_digits, load_digits_images
from mmfeat.evaluation import fusion_report
from mmfeat.exceptions import DataNotFoundError
from mmfeat.features.audio import MFCCExtractor
from mmfeat.features.image import HOGExtractor
from mmfeat.fusion import LateFusionClassifier, ModalityStackingClassifier, make_fuser

__all__ = ["run_demo"]


def _scores(y_true, y_pred):
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro recall": recall_score(y_true, y_pred, average="macro"),
        "macro F1": f1_score(y_true, y_pred, average="macro"),
    }


def _print_table(title, rows, out):
    print(f"\n{title}", file=out)
    print(
        f"  {'model':<34}{'accuracy':>10}{'macro recall':>14}{'macro F1':>10}", file=out
    )
    for name, s in rows:
        print(
            f"  {name:<34}{s['accuracy']:>10.4f}{s['macro recall']:>14.4f}"
            f"{s['macro F1']:>10.4f}",
            file=out,
        )


def _svc(random_state):
    return SVC(C=10, random_state=random_state)


def _pixels(images):
    return np.stack([np.asarray(im, dtype=np.float32).ravel() for im in images])


def _embedded(random_state, out):
    bunch = load_digits_images()
    frame = bunch.frame[["image"]]
    y = np.asarray(bunch.target)
    X_tr, X_te, y_tr, y_te = train_test_split(
        frame, y, test_size=0.25, stratify=y, random_state=random_state
    )
    # two views of one image, fused at feature level: pixels and HOG
    pixels = FunctionTransformer(_pixels, feature_names_out="one-to-one")
    hog = HOGExtractor(pixels_per_cell=(2, 2), cells_per_block=(2, 2))
    rows = []
    for name, blocks in [
        ("pixels + SVC", {"pixels": (pixels, "image")}),
        ("HOG + SVC", {"hog": (hog, "image")}),
        (
            "fused pixels+HOG + SVC",
            {"pixels": (pixels, "image"), "hog": (hog, "image")},
        ),
    ]:
        model = make_pipeline(
            make_fuser(blocks, block_norm="standard"),
            SVC(C=10, random_state=random_state),
        ).fit(X_tr, y_tr)
        rows.append((name, _scores(y_te, model.predict(X_te))))
    _print_table(
        f"Embedded data: scikit-learn digits, 8x8 images "
        f"({len(y_tr)} train / {len(y_te)} test, stratified)",
        rows,
        out,
    )


def _av_digits(data_home, n_jobs, random_state, out):
    bunch = load_av_digits(data_home=data_home, random_state=random_state)
    frame = bunch.frame[["image", "audio", "split"]]
    y = np.asarray(bunch.target)
    train = (frame["split"] == "train").to_numpy()
    X_tr, X_te = frame[train], frame[~train]
    t0 = time.perf_counter()

    def hog():
        return HOGExtractor(
            pixels_per_cell=(4, 4), cells_per_block=(2, 2), n_jobs=n_jobs
        )

    def mfcc():
        return MFCCExtractor(
            sr=8000,
            n_fft=256,
            hop_length=64,
            n_mels=40,
            n_mfcc=20,
            deltas=2,
            pooling=("mean", "std", "min", "max"),
            n_jobs=n_jobs,
        )

    modalities = [
        ("image", make_pipeline(hog(), StandardScaler(), _svc(random_state)), "image"),
        ("audio", make_pipeline(mfcc(), StandardScaler(), _svc(random_state)), "audio"),
    ]
    models = {
        "early fusion (fuser + SVC)": make_pipeline(
            make_fuser({"image": hog(), "audio": mfcc()}, block_norm="standard"),
            _svc(random_state),
        ),
        "late fusion (equal weights)": LateFusionClassifier(modalities, n_jobs=n_jobs),
        "stacking (logistic meta-model)": ModalityStackingClassifier(
            modalities, cv=3, n_jobs=n_jobs
        ),
    }
    rows = []
    for name, model in models.items():
        if isinstance(model, (LateFusionClassifier, ModalityStackingClassifier)):
            # each recording is paired with several images: keep it in one fold
            model.fit(X_tr, y[train], groups=X_tr["audio"].to_numpy())
        else:
            model.fit(X_tr, y[train])
        if isinstance(model, LateFusionClassifier):
            report = fusion_report(model, X_te, y[~train])
            for modality in ("image", "audio"):
                rows.append((f"{modality} alone (SVC)", _scores_from(report, modality)))
        rows.append((name, _scores(y[~train], model.predict(X_te))))
    _print_table(
        f"Audio-visual digits: USPS image + FSDD recording "
        f"({train.sum()} train / {(~train).sum()} test, "
        f"{time.perf_counter() - t0:.1f} s)",
        rows,
        out,
    )


def _scores_from(report, modality):
    row = report.loc[modality]
    return {
        "accuracy": row["accuracy"],
        "macro recall": row["macro_recall"],
        "macro F1": row["macro_f1"],
    }


def run_demo(*, data_home=None, n_jobs=None, embedded_only=False, random_state=0, out):
    """Run the demo and print its tables to ``out``; return 0."""
    print("mmfeat demo", file=out)
    _embedded(random_state, out)
    if embedded_only:
        return 0
    try:
        _av_digits(data_home, n_jobs, random_state, out)
    except DataNotFoundError as exc:
        print(
            f"\nAudio-visual digits skipped: {exc}\n"
            "(The embedded part above needs no data.)",
            file=out,
        )
    return 0
